/*
 * test_store_admin.c - the store's admin service and the snapshot chunk
 * stream on the real runtime: two cluster servers in one process on
 * 127.0.0.1 (store 1 founds region 1, store 2 is empty), the admin client
 * in between. The stream must refuse a corrupt chunk, a truncated stream, a
 * chunk out of order or past the manifest size, a file name that would
 * leave the staging directory (the connection is closed, the server lives),
 * and leave nothing hosted after any refusal; then a clean stream installs
 * the region, and a second import is refused (EXISTS). Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/rt_real.h"
#include "nokv/client/admin_client.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/server/cluster.h"

#define T_SEC NK_NSEC_PER_SEC

typedef struct world {
    nk_rt *rt;
    char dir[64];
    char a1[64], a2[64];
    nk_cluster *c1, *c2;
    nk_admin_client *l, *t;
    nk_admin_req *q;
    nk_admin_manifest m;
    uint8_t *files[NK_ADMIN_SNAP_MAX_FILES];
    uint64_t xxh[NK_ADMIN_SNAP_MAX_FILES]; /* the leader's hash, from the eof read */
} world;

static void free_port_addr(char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(out, cap, "127.0.0.1:%u", ntohs(sa.sin_port));
    close(fd);
}

static nk_cluster *start(world *w, uint64_t id, const char *addr, bool found)
{
    char wd[128], redis[64];
    snprintf(wd, sizeof(wd), "%s/s%llu", w->dir, (unsigned long long)id);
    free_port_addr(redis, sizeof(redis));
    nk_cluster_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.workdir = wd;
    cfg.store_id = id;
    cfg.addr = addr;
    cfg.redis_addr = redis;
    cfg.version = "test";
    nk_db_options_default(&cfg.db);
    if (found) {
        cfg.initial[0].store_id = id;
        snprintf(cfg.initial[0].addr, sizeof(cfg.initial[0].addr), "%s", addr);
        cfg.n_initial = 1;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_cluster *c = NULL;
    int rc = nk_cluster_start(w->rt, &cfg, &c, &eb);
    if (rc != NK_OK) {
        fprintf(stderr, "start store %llu: %s\n", (unsigned long long)id, eb.msg);
    }
    assert_int_equal(rc, NK_OK);
    return c;
}

static const nk_admin_resp *call(world *w, nk_admin_client *c, uint8_t op)
{
    w->q->op = op;
    w->q->region_id = 1;
    const nk_admin_resp *r = NULL;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_admin_client_call_sync(c, w->q, 10 * T_SEC, &r, &eb);
    if (rc != NK_OK) {
        fprintf(stderr, "%s\n", eb.msg);
    }
    assert_int_equal(rc, NK_OK);
    return r;
}

static void reset_req(world *w)
{
    memset(w->q, 0, offsetof(nk_admin_req, manifest));
}

static void spin(world *w, uint64_t ns)
{
    uint64_t end = nk_rt_now(w->rt) + ns;
    while (nk_rt_now(w->rt) < end) {
        (void)nk_rt_run_once(w->rt, 10 * NK_NSEC_PER_MSEC);
    }
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    w->q = calloc(1, sizeof(*w->q));
    snprintf(w->dir, sizeof(w->dir), "/tmp/nokv-admin.XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_ERROR;
    rc.no_signals = true;
    assert_int_equal(nk_rt_real_new(&rc, &w->rt), NK_OK);
    free_port_addr(w->a1, sizeof(w->a1));
    free_port_addr(w->a2, sizeof(w->a2));
    w->c1 = start(w, 1, w->a1, true);
    w->c2 = start(w, 2, w->a2, false);
    assert_int_equal(nk_admin_client_new(w->rt, w->a1, &w->l), NK_OK);
    assert_int_equal(nk_admin_client_new(w->rt, w->a2, &w->t), NK_OK);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    nk_admin_client_free(w->l);
    nk_admin_client_free(w->t);
    nk_cluster_shutdown(w->c1);
    nk_cluster_shutdown(w->c2);
    for (int i = 0; i < 2000 && (nk_cluster_exit_status(w->c1) == NK_EAGAIN ||
                                 nk_cluster_exit_status(w->c2) == NK_EAGAIN);
         i++) {
        (void)nk_rt_run_once(w->rt, 10 * NK_NSEC_PER_MSEC);
    }
    nk_cluster_free(w->c1);
    nk_cluster_free(w->c2);
    nk_rt_real_free(w->rt);
    for (uint32_t i = 0; i < NK_ADMIN_SNAP_MAX_FILES; i++) {
        free(w->files[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    assert_int_equal(system(cmd), 0);
    free(w->q);
    free(w);
    return 0;
}

/* Wait (bounded) until store 1 leads region 1; export it and pull every
 * file in small chunks. */
static void export_all(world *w)
{
    const nk_admin_resp *r = NULL;
    for (int i = 0; i < 100; i++) {
        reset_req(w);
        r = call(w, w->l, NK_ADMIN_REGION_STATUS);
        if (r->hosted && r->role == NK_RAFT_LEADER) {
            break;
        }
        spin(w, 50 * NK_NSEC_PER_MSEC);
    }
    assert_true(r->hosted && r->role == NK_RAFT_LEADER);
    reset_req(w);
    r = call(w, w->l, NK_ADMIN_SNAP_EXPORT);
    assert_int_equal(r->status, NK_ADMIN_OK);
    w->m = r->manifest;
    uint64_t session = r->session;
    assert_true(w->m.n_files >= 1);
    assert_true(w->m.index >= 5);
    for (uint32_t f = 0; f < w->m.n_files; f++) {
        w->files[f] = malloc(w->m.files[f].size + 1);
        uint64_t off = 0;
        for (int guard = 0; off < w->m.files[f].size && guard < 100000; guard++) {
            reset_req(w);
            w->q->session = session;
            w->q->file = f;
            w->q->offset = off;
            w->q->max_len = 100;
            r = call(w, w->l, NK_ADMIN_SNAP_READ);
            assert_int_equal(r->status, NK_ADMIN_OK);
            assert_true(r->data.len > 0 && r->data.len <= 100);
            memcpy(w->files[f] + off, r->data.data, r->data.len);
            off += r->data.len;
            assert_int_equal(r->eof, off == w->m.files[f].size);
            if (r->eof) {
                w->xxh[f] = r->xxh64;
            }
        }
        assert_int_equal(off, w->m.files[f].size);
    }
    reset_req(w);
    w->q->session = session;
    assert_int_equal(call(w, w->l, NK_ADMIN_SNAP_RELEASE)->status, NK_ADMIN_OK);
}

static uint64_t begin(world *w)
{
    reset_req(w);
    w->q->store_id = 2;
    w->q->peer_id = 102;
    w->q->manifest = w->m;
    const nk_admin_resp *r = call(w, w->t, NK_ADMIN_SNAP_IMPORT_BEGIN);
    assert_int_equal(r->status, NK_ADMIN_OK);
    return r->session;
}

/* Send file f from offset `from` up to `to` in 64-byte chunks; corrupt one
 * byte at `flip` (or none: UINT64_MAX). The last status. */
static uint8_t send_file(world *w, uint64_t session, uint32_t f, uint64_t from, uint64_t to,
                         uint64_t flip)
{
    uint8_t buf[64];
    uint8_t st = NK_ADMIN_OK;
    for (uint64_t off = from; off < to && st == NK_ADMIN_OK;) {
        size_t n = to - off < sizeof(buf) ? (size_t)(to - off) : sizeof(buf);
        memcpy(buf, w->files[f] + off, n);
        if (flip >= off && flip < off + n) {
            buf[flip - off] ^= 0x01;
        }
        reset_req(w);
        w->q->session = session;
        w->q->file = f;
        w->q->offset = off;
        w->q->data = nk_slice_make(buf, n);
        w->q->xxh64 = w->xxh[f]; /* read by the target with the file's last chunk */
        st = call(w, w->t, NK_ADMIN_SNAP_IMPORT_CHUNK)->status;
        off += n;
    }
    return st;
}

static uint8_t finish(world *w, uint64_t session, char *msg, size_t cap)
{
    reset_req(w);
    w->q->session = session;
    const nk_admin_resp *r = call(w, w->t, NK_ADMIN_SNAP_IMPORT_FINISH);
    snprintf(msg, cap, "%s", r->msg);
    return r->status;
}

static void assert_not_hosted(world *w)
{
    reset_req(w);
    const nk_admin_resp *r = call(w, w->t, NK_ADMIN_REGION_STATUS);
    assert_false(r->hosted);
    assert_false(r->known);
}

static void test_stream_refusals_then_install(void **state)
{
    world *w = *state;
    char msg[NK_ADMIN_MSG_MAX];
    export_all(w);
    assert_not_hosted(w);

    /* 1. one corrupt byte: the checksum at FinishImport catches it. */
    uint64_t s = begin(w);
    for (uint32_t f = 0; f < w->m.n_files; f++) {
        assert_int_equal(send_file(w, s, f, 0, w->m.files[f].size, f == 0 ? 3 : UINT64_MAX),
                         NK_ADMIN_OK);
    }
    assert_int_equal(finish(w, s, msg, sizeof(msg)), NK_ADMIN_CORRUPT);
    assert_non_null(strstr(msg, "xxh64"));
    assert_not_hosted(w);

    /* 2. truncated: the last file stops one byte short. */
    s = begin(w);
    for (uint32_t f = 0; f < w->m.n_files; f++) {
        uint64_t end = w->m.files[f].size - (f + 1 == w->m.n_files ? 1 : 0);
        assert_int_equal(send_file(w, s, f, 0, end, UINT64_MAX), NK_ADMIN_OK);
    }
    assert_int_equal(finish(w, s, msg, sizeof(msg)), NK_ADMIN_CORRUPT);
    assert_non_null(strstr(msg, "received"));
    assert_not_hosted(w);

    /* 3. a chunk that skips ahead, and one past the manifest's size. */
    s = begin(w);
    assert_int_equal(send_file(w, s, 0, 1, 2, UINT64_MAX), NK_ADMIN_INVALID);
    assert_int_equal(finish(w, s, msg, sizeof(msg)), NK_ADMIN_INVALID); /* session gone */
    s = begin(w);
    assert_int_equal(send_file(w, s, 0, 0, w->m.files[0].size, UINT64_MAX), NK_ADMIN_OK);
    reset_req(w);
    uint8_t extra = 0;
    w->q->session = s;
    w->q->offset = w->m.files[0].size;
    w->q->data = nk_slice_make(&extra, 1);
    assert_int_equal(call(w, w->t, NK_ADMIN_SNAP_IMPORT_CHUNK)->status, NK_ADMIN_INVALID);

    /* 4. a manifest that names the region with our store already in it. */
    reset_req(w);
    w->q->store_id = 2;
    w->q->peer_id = 1; /* taken: store 1 founded the region as peer 1 */
    w->q->manifest = w->m;
    assert_int_equal(call(w, w->t, NK_ADMIN_SNAP_IMPORT_BEGIN)->status, NK_ADMIN_EXISTS);

    /* 5. a clean stream installs before it publishes. */
    s = begin(w);
    for (uint32_t f = 0; f < w->m.n_files; f++) {
        assert_int_equal(send_file(w, s, f, 0, w->m.files[f].size, UINT64_MAX), NK_ADMIN_OK);
    }
    assert_int_equal(finish(w, s, msg, sizeof(msg)), NK_ADMIN_OK);
    reset_req(w);
    const nk_admin_resp *r = call(w, w->t, NK_ADMIN_REGION_STATUS);
    assert_true(r->hosted && r->known);
    assert_int_equal(r->local_peer, 102);
    assert_int_equal(r->applied_index, w->m.index);
    assert_non_null(nk_region_peer_by_id(&r->desc, 102));
    /* 6. a second import of the same region is refused. */
    reset_req(w);
    w->q->store_id = 2;
    w->q->peer_id = 102;
    w->q->manifest = w->m;
    assert_int_equal(call(w, w->t, NK_ADMIN_SNAP_IMPORT_BEGIN)->status, NK_ADMIN_EXISTS);
    /* Membership requests on a follower / non-leader get NOT_LEADER. */
    reset_req(w);
    w->q->peer_id = 102;
    r = call(w, w->t, NK_ADMIN_TRANSFER_LEADER);
    assert_true(r->status == NK_ADMIN_NOT_LEADER);
}

/* A frame that is not an admin request closes that connection only. */
typedef struct raw {
    bool closed, connected;
} raw;
static void raw_connect(void *ctx, uint64_t conn, int status)
{
    (void)conn;
    ((raw *)ctx)->connected = status == NK_OK;
}
static void raw_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *d, size_t n)
{
    (void)ctx;
    (void)conn;
    (void)kind;
    (void)d;
    (void)n;
}
static void raw_close(void *ctx, uint64_t conn, int reason)
{
    (void)conn;
    (void)reason;
    ((raw *)ctx)->closed = true;
}

static void test_malformed_frame_closes_connection(void **state)
{
    world *w = *state;
    static const nk_net_handlers h = {
        .on_connect = raw_connect, .on_message = raw_message, .on_close = raw_close};
    raw st = {0};
    uint64_t conn = 0;
    assert_int_equal(nk_rt_connect(w->rt, w->a2, NK_CONN_FRAMED, &h, &st, &conn), NK_OK);
    nk_hello hello = {.service = NK_SERVICE_ADMIN};
    nk_buf b = {0};
    assert_int_equal(nk_hello_encode(&hello, &b), NK_OK);
    assert_int_equal(nk_rt_send(w->rt, conn, NK_KIND_HELLO, b.data, b.len), NK_OK);
    const uint8_t junk[] = {0x41, 0x51, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
    assert_int_equal(nk_rt_send(w->rt, conn, NK_KIND_ADMIN_REQ, junk, sizeof(junk)), NK_OK);
    for (int i = 0; i < 300 && !st.closed; i++) {
        (void)nk_rt_run_once(w->rt, 10 * NK_NSEC_PER_MSEC);
    }
    assert_true(st.closed);
    nk_buf_free(&b);
    /* The service still answers everyone else. */
    reset_req(w);
    const nk_admin_resp *r = call(w, w->t, NK_ADMIN_STORE_STATUS);
    assert_int_equal(r->store_id, 2);
    assert_false(r->failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_refusals_then_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frame_closes_connection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
