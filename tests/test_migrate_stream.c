/*
 * test_migrate_stream.c - the expand snapshot stream's window, against a
 * fake leader and a fake target served on 127.0.0.1 by this process (real
 * runtime). The target answers each chunk 5 ms late (a slow reader): the
 * rollout must keep several chunks in flight, yet never let more than the
 * window of chunks sit between the leader's reads and the target's
 * acknowledgements, and every file must arrive whole with the leader's
 * XXH64 (sent with its last chunk). The fake target refuses FinishImport,
 * which ends the rollout right after the stream. Every wait is bounded.
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
#include <xxhash.h>

#include <cmocka.h>

#include "net/rt_real.h"
#include "nokv/migrate/expand.h"
#include "nokv/proto/admin.h"
#include "nokv/proto/kinds.h"

#define NFILES 3
#define WINDOW 3u
#define CHUNK (64u * 1024u)

static const uint64_t sizes[NFILES] = {700001, 17, 333333};

typedef struct fake {
    nk_rt *rt;
    uint64_t l_listener, t_listener;
    char l_addr[64], t_addr[64];
    nk_buf out;
    nk_admin_req q;
    nk_admin_resp p;
    uint64_t file_xxh[NFILES];
    /* leader side */
    uint64_t read_pos[NFILES];
    uint64_t reads;
    /* target side */
    uint64_t recv[NFILES];
    XXH64_state_t *h[NFILES];
    bool hash_ok[NFILES];
    uint64_t acks;
    int bad; /* a chunk out of order or with the wrong bytes */
    /* delayed chunk answers, in order */
    struct {
        uint64_t conn, id, bytes;
    } late[64];
    unsigned nlate;
    uint64_t late_timer;
    uint64_t max_between; /* reads answered by the leader - chunks acknowledged */
    unsigned max_progress_inflight;
    bool done;
    int rc;
    char msg[800];
} fake;

static uint8_t byte_of(uint32_t f, uint64_t off)
{
    return (uint8_t)(f * 131u + off * 7u + off / 251u);
}

static void send_p(fake *x, uint64_t conn)
{
    assert_int_equal(nk_admin_resp_encode(&x->p, &x->out), NK_OK);
    assert_int_equal(nk_rt_send(x->rt, conn, NK_KIND_ADMIN_RESP, x->out.data, x->out.len), NK_OK);
}

static void resp_begin(fake *x, uint8_t op, uint64_t id)
{
    memset(&x->p, 0, offsetof(nk_admin_resp, manifest));
    x->p.manifest.n_files = 0;
    x->p.op = op;
    x->p.id = id;
}

static void late_fire(void *arg)
{
    fake *x = arg;
    x->late_timer = 0;
    if (x->nlate == 0) {
        return;
    }
    resp_begin(x, NK_ADMIN_SNAP_IMPORT_CHUNK, x->late[0].id);
    x->p.session = 9;
    x->p.bytes = x->late[0].bytes;
    uint64_t conn = x->late[0].conn;
    memmove(&x->late[0], &x->late[1], (x->nlate - 1) * sizeof(x->late[0]));
    x->nlate--;
    x->acks++;
    send_p(x, conn);
    if (x->nlate > 0) {
        x->late_timer = nk_rt_timer_start(x->rt, 5 * NK_NSEC_PER_MSEC, late_fire, x);
    }
}

static void desc_of(nk_region *d)
{
    memset(d, 0, sizeof(*d));
    d->id = 1;
    d->epoch.version = 1;
    d->epoch.conf_version = 1;
    d->n_peers = 1;
    d->peers[0].store_id = 1;
    d->peers[0].peer_id = 101;
    d->peers[0].role = NK_RAFT_VOTER;
}

static void leader_msg(fake *x, uint64_t conn, const nk_admin_req *q)
{
    resp_begin(x, q->op, q->id);
    switch (q->op) {
    case NK_ADMIN_REGION_STATUS:
        x->p.known = x->p.hosted = true;
        x->p.role = NK_RAFT_LEADER;
        x->p.local_peer = 101;
        x->p.leader_peer = 101;
        x->p.leader_store = 1;
        x->p.applied_index = x->p.commit = 10;
        desc_of(&x->p.desc);
        break;
    case NK_ADMIN_SNAP_EXPORT:
        x->p.session = 7;
        desc_of(&x->p.manifest.desc);
        x->p.manifest.index = 10;
        x->p.manifest.term = 2;
        x->p.manifest.n_files = NFILES;
        for (uint32_t f = 0; f < NFILES; f++) {
            snprintf(x->p.manifest.files[f].name, NK_ADMIN_NAME_MAX, "%06u.sst", f + 1);
            x->p.manifest.files[f].size = sizes[f];
        }
        break;
    case NK_ADMIN_SNAP_READ: {
        if (q->session != 7 || q->file >= NFILES || q->offset != x->read_pos[q->file] ||
            q->max_len == 0 || q->max_len > CHUNK) {
            x->bad++;
            x->p.status = NK_ADMIN_INVALID;
            break;
        }
        uint64_t n = sizes[q->file] - q->offset < q->max_len ? sizes[q->file] - q->offset
                                                             : q->max_len;
        uint8_t *buf = malloc(n + 1);
        for (uint64_t i = 0; i < n; i++) {
            buf[i] = byte_of(q->file, q->offset + i);
        }
        x->read_pos[q->file] += n;
        x->reads++;
        if (x->reads - x->acks > x->max_between) {
            x->max_between = x->reads - x->acks;
        }
        x->p.data = nk_slice_make(buf, n);
        x->p.eof = x->read_pos[q->file] == sizes[q->file];
        x->p.xxh64 = x->p.eof ? x->file_xxh[q->file] : 0;
        send_p(x, conn);
        free(buf);
        return;
    }
    default:
        break; /* RELEASE and the rest: OK */
    }
    send_p(x, conn);
}

static void target_msg(fake *x, uint64_t conn, const nk_admin_req *q)
{
    resp_begin(x, q->op, q->id);
    switch (q->op) {
    case NK_ADMIN_REGION_STATUS:
        break; /* knows nothing of the region */
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
        x->p.session = 9;
        break;
    case NK_ADMIN_SNAP_IMPORT_CHUNK: {
        bool ok = q->session == 9 && q->file < NFILES && q->offset == x->recv[q->file] &&
                  q->offset + q->data.len <= sizes[q->file];
        for (size_t i = 0; ok && i < q->data.len; i++) {
            ok = q->data.data[i] == byte_of(q->file, q->offset + i);
        }
        if (!ok) {
            x->bad++;
            x->p.status = NK_ADMIN_INVALID;
            break;
        }
        XXH64_update(x->h[q->file], q->data.data, q->data.len);
        x->recv[q->file] += q->data.len;
        if (x->recv[q->file] == sizes[q->file]) {
            x->hash_ok[q->file] =
                q->xxh64 == x->file_xxh[q->file] && XXH64_digest(x->h[q->file]) == q->xxh64;
        }
        assert_true(x->nlate < 64);
        x->late[x->nlate].conn = conn;
        x->late[x->nlate].id = q->id;
        x->late[x->nlate].bytes = q->data.len;
        x->nlate++;
        if (x->late_timer == 0) {
            x->late_timer = nk_rt_timer_start(x->rt, 5 * NK_NSEC_PER_MSEC, late_fire, x);
        }
        return; /* answered late, in order */
    }
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        x->p.status = NK_ADMIN_INVALID;
        snprintf(x->p.msg, sizeof(x->p.msg), "the test stops after the stream");
        break;
    default:
        x->p.status = NK_ADMIN_INVALID;
        break;
    }
    send_p(x, conn);
}


static void on_accept(void *ctx, uint64_t listener, uint64_t conn, const char *peer)
{
    (void)ctx;
    (void)listener;
    (void)conn;
    (void)peer;
}

/* Which listener accepted a connection is not passed to on_message: each
 * listener gets its own handler table instead. */
static void on_message_l(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *d, size_t n)
{
    fake *x = ctx;
    if (kind == NK_KIND_ADMIN_REQ) {
        assert_int_equal(nk_admin_req_decode(d, n, &x->q), NK_OK);
        leader_msg(x, conn, &x->q);
    }
}

static void on_message_t(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *d, size_t n)
{
    fake *x = ctx;
    if (kind == NK_KIND_ADMIN_REQ) {
        assert_int_equal(nk_admin_req_decode(d, n, &x->q), NK_OK);
        target_msg(x, conn, &x->q);
    }
}

static void on_close(void *ctx, uint64_t conn, int reason)
{
    (void)ctx;
    (void)conn;
    (void)reason;
}

static const nk_net_handlers lh = {.on_accept = on_accept, .on_message = on_message_l,
                                   .on_close = on_close};
static const nk_net_handlers th = {.on_accept = on_accept, .on_message = on_message_t,
                                   .on_close = on_close};

static void on_progress(void *ctx, const nk_rollout_progress *p)
{
    fake *x = ctx;
    if (p->inflight > x->max_progress_inflight) {
        x->max_progress_inflight = p->inflight;
    }
}

static void on_done(void *arg, int rc, const char *msg)
{
    fake *x = arg;
    x->done = true;
    x->rc = rc;
    snprintf(x->msg, sizeof(x->msg), "%s", msg);
}

static void test_window_under_slow_reader(void **state)
{
    (void)state;
    fake *x = calloc(1, sizeof(*x));
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_ERROR;
    rc.no_signals = true;
    assert_int_equal(nk_rt_real_new(&rc, &x->rt), NK_OK);
    for (uint32_t f = 0; f < NFILES; f++) {
        XXH64_state_t *h = XXH64_createState();
        XXH64_reset(h, 0);
        for (uint64_t i = 0; i < sizes[f]; i++) {
            uint8_t b = byte_of(f, i);
            XXH64_update(h, &b, 1);
        }
        x->file_xxh[f] = XXH64_digest(h);
        XXH64_freeState(h);
        x->h[f] = XXH64_createState();
        XXH64_reset(x->h[f], 0);
    }
    assert_int_equal(nk_rt_listen(x->rt, "127.0.0.1:0", &lh, x, &x->l_listener), NK_OK);
    assert_int_equal(nk_rt_listen(x->rt, "127.0.0.1:0", &th, x, &x->t_listener), NK_OK);
    assert_int_equal(nk_rt_listener_addr(x->rt, x->l_listener, x->l_addr, sizeof(x->l_addr)),
                     NK_OK);
    assert_int_equal(nk_rt_listener_addr(x->rt, x->t_listener, x->t_addr, sizeof(x->t_addr)),
                     NK_OK);

    nk_rollout_options o;
    memset(&o, 0, sizeof(o));
    o.kind = NK_ROLLOUT_EXPAND;
    o.leader_addr = x->l_addr;
    o.region_id = 1;
    o.n_targets = 1;
    o.targets[0].store_id = 2;
    o.targets[0].peer_id = 102;
    snprintf(o.targets[0].addr, sizeof(o.targets[0].addr), "%s", x->t_addr);
    o.chunk_bytes = CHUNK;
    o.window = WINDOW;
    o.progress = on_progress;
    o.ctx = x;
    nk_rollout *r = NULL;
    assert_int_equal(nk_rollout_start(x->rt, &o, on_done, x, &r), NK_OK);
    uint64_t deadline = nk_rt_now(x->rt) + 60 * NK_NSEC_PER_SEC;
    while (!x->done && nk_rt_now(x->rt) < deadline) {
        (void)nk_rt_run_once(x->rt, 10 * NK_NSEC_PER_MSEC);
    }
    assert_true(x->done);
    /* the stream finished: the rollout ends at the refused FinishImport */
    assert_int_not_equal(x->rc, NK_OK);
    assert_non_null(strstr(x->msg, "FinishImport"));
    assert_int_equal(x->bad, 0);
    for (uint32_t f = 0; f < NFILES; f++) {
        assert_int_equal(x->recv[f], sizes[f]);
        assert_true(x->hash_ok[f]); /* the leader's hash came with the last chunk */
    }
    /* several chunks in flight, never more than the window */
    assert_true(x->max_between >= 2);
    assert_true(x->max_between <= WINDOW);
    assert_true(x->max_progress_inflight <= WINDOW);
    nk_rollout_free(r);
    nk_rt_listener_close(x->rt, x->l_listener);
    nk_rt_listener_close(x->rt, x->t_listener);
    for (int i = 0; i < 10; i++) {
        (void)nk_rt_run_once(x->rt, NK_NSEC_PER_MSEC);
    }
    for (uint32_t f = 0; f < NFILES; f++) {
        XXH64_freeState(x->h[f]);
    }
    if (x->late_timer != 0) {
        nk_rt_timer_cancel(x->rt, x->late_timer);
    }
    nk_rt_real_free(x->rt);
    nk_buf_free(&x->out);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_under_slow_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
