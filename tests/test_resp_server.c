/*
 * test_resp_server.c - the RESP server end to end.
 *
 * Part 1 runs the server on the REAL runtime (127.0.0.1, port 0) with the
 * in-memory backend completing writes asynchronously at random delays, and
 * talks to it from the test thread with plain blocking TCP sockets.
 * Part 2 runs it inside the simulator, with a client node whose raw byte
 * stream the simulated network splits at random boundaries, for several
 * seeds.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "net/rt_real.h"
#include "nokv/resp/membackend.h"
#include "nokv/resp/server.h"
#include "sim/sim.h"

/* ------------------------------------------------- real-runtime rig --- */

typedef struct rig {
    nk_rt *rt;
    pthread_t thread;
    nk_resp_server_options opt;
    unsigned fail_completions;
    bool barrier;           /* the backend offers a read barrier */
    unsigned fail_barriers; /* ...and the first ones fail with NK_EAGAIN */
    uint64_t done_max_ns;
    nk_membackend *mb;
    nk_resp_server *srv;
    char addr[64];
    atomic_int ready; /* 1 up, -1 failed */
    atomic_int stop;
    uint64_t poll_timer;
} rig;

static void rig_poll(void *arg)
{
    rig *r = arg;
    if (atomic_load(&r->stop)) {
        nk_resp_server_stop(r->srv);
        nk_rt_stop(r->rt);
        return;
    }
    r->poll_timer = nk_rt_timer_start(r->rt, 2 * NK_NSEC_PER_MSEC, rig_poll, r);
}

static void *rig_main(void *arg)
{
    rig *r = arg;
    nk_membackend_options mo = {.rt = r->rt,
                                .async = true,
                                .done_min_ns = 0,
                                .done_max_ns =
                                    r->done_max_ns ? r->done_max_ns : 2 * NK_NSEC_PER_MSEC,
                                .read_barrier = r->barrier};
    if (nk_membackend_new(&mo, &r->mb) != NK_OK ||
        nk_resp_server_start(r->rt, "127.0.0.1:0", nk_membackend_backend(r->mb), &r->opt,
                             &r->srv) != NK_OK ||
        nk_resp_server_addr(r->srv, r->addr, sizeof(r->addr)) != NK_OK) {
        atomic_store(&r->ready, -1);
        return NULL;
    }
    if (r->fail_completions) {
        nk_membackend_fail_completions(r->mb, r->fail_completions, NK_EIO);
    }
    if (r->fail_barriers) {
        nk_membackend_fail_barriers(r->mb, r->fail_barriers, NK_EAGAIN);
    }
    rig_poll(r);
    atomic_store(&r->ready, 1);
    nk_rt_real_run(r->rt);
    /* server first, then the backend (which completes what is in flight) */
    nk_resp_server_free(r->srv);
    nk_membackend_free(r->mb);
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void rig_start(rig *r)
{
    nk_rt_real_config cfg = {.seed = 11, .seed_given = true, .log_level = NK_LOG_WARN};
    assert_int_equal(nk_rt_real_new(&cfg, &r->rt), NK_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, rig_main, r), 0);
    for (int i = 0; i < 2000 && atomic_load(&r->ready) == 0; i++) {
        sleep_ms(1);
    }
    assert_int_equal(atomic_load(&r->ready), 1);
}

static void rig_stop(rig *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    nk_rt_real_free(r->rt);
}

static int cli_connect(const rig *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    snprintf(host, sizeof(host), "%s", r->addr);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, host, &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static void cli_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void cli_sends(int fd, const char *s)
{
    cli_send(fd, s, strlen(s));
}

/* Read exactly len bytes (fails on EOF or timeout). */
static void cli_read(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0) {
            fail_msg("read: got %zu of %zu bytes (%s)", got, len, n == 0 ? "EOF" : strerror(errno));
        }
        got += (size_t)n;
    }
}

static void cli_expect(int fd, const char *want)
{
    size_t n = strlen(want);
    char *buf = malloc(n + 1);
    cli_read(fd, buf, n);
    buf[n] = '\0';
    assert_string_equal(buf, want);
    free(buf);
}

/* The server closed: EOF (or reset) before `limit` more bytes. */
static void cli_expect_closed(int fd)
{
    char buf[4096];
    for (int i = 0; i < 100000; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return;
        }
        if (n < 0) {
            fail_msg("expected close, got %s", strerror(errno));
        }
    }
    fail_msg("connection never closed");
}

/* An INFO field through a fresh connection (the test thread never touches
 * server memory directly: it lives on the loop thread). */
static long long info_field(const rig *r, const char *field)
{
    int fd = cli_connect(r);
    cli_sends(fd, "INFO\r\n");
    char hdr[32];
    size_t h = 0;
    do {
        cli_read(fd, hdr + h, 1);
    } while (hdr[h++] != '\n' && h < sizeof(hdr) - 1);
    hdr[h] = '\0';
    int len = atoi(hdr + 1);
    char *body = malloc((size_t)len + 3);
    cli_read(fd, body, (size_t)len + 2);
    body[len] = '\0';
    close(fd);
    char key[96];
    snprintf(key, sizeof(key), "\n%s:", field);
    char *p = strstr(body, key);
    long long v = p ? atoll(p + strlen(key)) : -1;
    free(body);
    return v;
}

/* A text buffer for building pipelines and expected replies. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, tmp, (size_t)n + 1);
    b->len += (size_t)n;
}

/* A deterministic pipelined script and its exact replies: writes with
 * random completion delays must still be answered in request order. */
static void build_script(sbuf *req, sbuf *rep, int n)
{
    sb_addf(req, "%s", "");
    sb_addf(rep, "%s", "");
    for (int i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof(v), "v%d", i);
        if (i % 2) {
            sb_addf(req, "SET k%d %s\r\n", i % 17, v);
        } else {
            sb_addf(req, "*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$%d\r\n%s\r\n", i % 17 < 10 ? 2 : 3,
                    i % 17, vl, v);
        }
        sb_addf(rep, "+OK\r\n");
        sb_addf(req, "GET k%d\r\n", i % 17);
        sb_addf(rep, "$%d\r\n%s\r\n", vl, v);
        sb_addf(req, "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
        sb_addf(rep, ":%d\r\n", i + 1);
        if (i % 5 == 0) {
            sb_addf(req, "DEL k%d nope\r\nEXISTS k%d\r\n", i % 17, i % 17);
            sb_addf(rep, ":1\r\n:0\r\n");
        }
    }
}

static void test_real_pipelining_in_order(void **state)
{
    (void)state;
    rig r = {0};
    rig_start(&r);
    int fd = cli_connect(&r);
    sbuf req = {0}, rep = {0};
    build_script(&req, &rep, 1000);
    cli_send(fd, req.s, req.len);
    cli_expect(fd, rep.s);
    /* and request-reply, one at a time */
    cli_sends(fd, "PING\r\n");
    cli_expect(fd, "+PONG\r\n");
    cli_sends(fd, "GET k1\r\n");
    cli_expect(fd, "$4\r\nv987\r\n");
    close(fd);
    assert_true(info_field(&r, "total_commands_processed") >= 3000);
    free(req.s);
    free(rep.s);
    rig_stop(&r);
}

static void test_real_malformed_closes_only_that_connection(void **state)
{
    (void)state;
    rig r = {0};
    rig_start(&r);
    int a = cli_connect(&r);
    int b = cli_connect(&r);
    cli_sends(b, "SET x 1\r\n");
    cli_expect(b, "+OK\r\n");
    /* good requests before the bad one are answered first */
    cli_sends(a, "PING\r\n*1\r\nxyz");
    cli_expect(a, "+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n");
    cli_expect_closed(a);
    close(a);
    cli_sends(b, "GET x\r\n");
    cli_expect(b, "$1\r\n1\r\n");
    a = cli_connect(&r);
    cli_sends(a, "*-5x\r\n");
    cli_expect(a, "-ERR Protocol error: invalid multibulk length\r\n");
    cli_expect_closed(a);
    close(a);
    a = cli_connect(&r);
    cli_sends(a, "SET a \"unterminated\r\n");
    cli_expect(a, "-ERR Protocol error: unbalanced quotes in request\r\n");
    cli_expect_closed(a);
    close(a);
    cli_sends(b, "INCR x\r\n");
    cli_expect(b, ":2\r\n");
    close(b);
    assert_int_equal(info_field(&r, "total_protocol_errors"), 3);
    rig_stop(&r);
}

static void test_real_oversized_requests(void **state)
{
    (void)state;
    rig r = {0};
    r.opt.limits.max_bulk_len = 1024 * 1024;
    rig_start(&r);
    int a = cli_connect(&r);
    cli_sends(a, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    cli_expect(a, "-ERR Protocol error: invalid bulk length: 2000000 bytes is over the limit of "
                  "1048576 bytes per argument (proto-max-bulk-len)\r\n");
    cli_expect_closed(a);
    close(a);
    /* an inline request that never ends */
    a = cli_connect(&r);
    size_t n = 200 * 1024;
    char *junk = malloc(n);
    memset(junk, 'a', n);
    send(a, junk, n, MSG_NOSIGNAL); /* the server may close before taking it all */
    cli_expect(a, "-ERR Protocol error: too big inline request\r\n");
    cli_expect_closed(a);
    close(a);
    free(junk);
    /* a value exactly at the limit is fine */
    a = cli_connect(&r);
    size_t vl = 1024 * 1024;
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", vl);
    cli_sends(a, hdr);
    char *val = malloc(vl + 2);
    memset(val, 'v', vl);
    memcpy(val + vl, "\r\n", 2);
    cli_send(a, val, vl + 2);
    cli_expect(a, "+OK\r\n");
    cli_sends(a, "GET k\r\n");
    snprintf(hdr, sizeof(hdr), "$%zu\r\n", vl);
    cli_expect(a, hdr);
    char *back = malloc(vl + 2);
    cli_read(a, back, vl + 2);
    assert_memory_equal(back, val, vl + 2);
    close(a);
    free(val);
    free(back);
    rig_stop(&r);
}

static void test_real_quit_max_clients_output_limit(void **state)
{
    (void)state;
    rig r = {0};
    r.opt.max_clients = 3;
    r.opt.max_output_bytes = 256 * 1024;
    rig_start(&r);
    int a = cli_connect(&r);
    cli_sends(a, "PING\r\nQUIT\r\nPING\r\n");
    cli_expect(a, "+PONG\r\n+OK\r\n");
    cli_expect_closed(a);
    close(a);

    int c1 = cli_connect(&r), c2 = cli_connect(&r), c3 = cli_connect(&r);
    cli_sends(c3, "PING\r\n");
    cli_expect(c3, "+PONG\r\n");
    int c4 = cli_connect(&r);
    cli_expect(c4, "-ERR max number of clients reached\r\n");
    cli_expect_closed(c4);
    close(c4);
    close(c2);
    close(c3);
    /* The server must have seen c2 and c3 go before the next client
     * connects, or that one is over max_clients (INFO's own connection
     * counts: c1 + it = 2). */
    for (int i = 0; i < 500 && info_field(&r, "connected_clients") != 2; i++) {
        sleep_ms(10);
    }
    assert_int_equal(info_field(&r, "connected_clients"), 2);

    /* a client that pipelines big replies and never reads gets closed */
    int slow = cli_connect(&r);
    int rcv = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    static char big[64 * 1024 + 64];
    int h = snprintf(big, sizeof(big), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n", 64 * 1024);
    memset(big + h, 'x', 64 * 1024);
    memcpy(big + h + 64 * 1024, "\r\n", 2);
    cli_send(c1, big, (size_t)h + 64 * 1024 + 2);
    cli_expect(c1, "+OK\r\n");
    for (int i = 0; i < 2000; i++) {
        if (send(slow, "GET big\r\n", 9, MSG_NOSIGNAL) <= 0) {
            break; /* already closed by the server */
        }
    }
    long long closes = 0;
    for (int i = 0; i < 500 && closes < 1; i++) {
        sleep_ms(10);
        closes = info_field(&r, "client_output_buffer_limit_disconnections");
    }
    assert_int_equal(closes, 1);
    cli_expect_closed(slow);
    close(slow);
    cli_sends(c1, "PING\r\n");
    cli_expect(c1, "+PONG\r\n");
    close(c1);
    rig_stop(&r);
}

static void test_real_write_failure_and_shutdown_with_writes_in_flight(void **state)
{
    (void)state;
    rig r = {0};
    r.fail_completions = 1;
    rig_start(&r);
    int a = cli_connect(&r);
    cli_sends(a, "SET k 1\r\nGET k\r\n");
    /* the write's promise (+OK) is replaced, and the GET behind it waits */
    cli_expect(a, "-ERR write not confirmed durable: input/output error (NK_EIO); its effect "
                  "may or may not persist\r\n$1\r\n1\r\n");
    close(a);
    assert_int_equal(info_field(&r, "write_errors"), 1);
    rig_stop(&r);

    /* stop while writes wait 1 s for durability: nothing leaks or crashes */
    rig r2 = {0};
    r2.done_max_ns = NK_NSEC_PER_SEC;
    rig_start(&r2);
    a = cli_connect(&r2);
    cli_sends(a, "SET a 1\r\nSET b 2\r\nMSET c 3 d 4\r\n");
    sleep_ms(20);
    rig_stop(&r2);
    cli_expect_closed(a);
    close(a);
}

/* A backend with a read barrier (a replicated one): replies of reads wait
 * for it in request order; a failed barrier replaces the read's reply. */
static void test_real_read_barrier(void **state)
{
    (void)state;
    rig r = {0};
    r.barrier = true;
    r.fail_barriers = 1;
    rig_start(&r);
    int a = cli_connect(&r);
    cli_sends(a, "SET k 1\r\nGET k\r\n");
    cli_expect(a, "+OK\r\n-TRYAGAIN this store does not lead the key's region (NK_EAGAIN); "
                  "retry, or ask the leader\r\n");
    sbuf req = {0}, rep = {0};
    build_script(&req, &rep, 300); /* reads and writes interleaved */
    cli_send(a, req.s, req.len);
    cli_expect(a, rep.s);
    /* commands that touch no key need no barrier */
    cli_sends(a, "SET kx hi\r\nPING\r\nECHO x\r\nMULTI\r\nGET kx\r\nEXEC\r\n");
    cli_expect(a, "+OK\r\n+PONG\r\n$1\r\nx\r\n+OK\r\n+QUEUED\r\n*1\r\n$2\r\nhi\r\n");
    close(a);
    uint64_t barriers = nk_membackend_barriers(r.mb);
    rig_stop(&r);
    assert_true(barriers >= 2);
    free(req.s);
    free(rep.s);
}

/* --------------------------------------------------------- simulator --- */

typedef struct sim_srv {
    nk_membackend *mb;
    nk_resp_server *srv;
} sim_srv;

static int srv_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    sim_srv *s = calloc(1, sizeof(*s));
    nk_membackend_options mo = {
        .rt = rt, .async = true, .done_min_ns = 0, .done_max_ns = 3 * NK_NSEC_PER_MSEC};
    int rc = nk_membackend_new(&mo, &s->mb);
    if (rc == NK_OK) {
        rc = nk_resp_server_start(rt, "0.0.0.0:6380", nk_membackend_backend(s->mb), NULL, &s->srv);
    }
    if (rc != NK_OK) {
        nk_membackend_free(s->mb);
        free(s);
        return rc;
    }
    *state = s;
    return NK_OK;
}

static void srv_stop(void *state, bool crashed)
{
    (void)crashed;
    sim_srv *s = state;
    nk_resp_server_free(s->srv);
    nk_membackend_free(s->mb);
    free(s);
}

static const nk_sim_app srv_app = {"resp-server", srv_start, srv_stop};

typedef struct sim_cli {
    nk_rt *rt;
    const sbuf *req;
    sbuf got;
    int closed;
    uint64_t conn;
} sim_cli;

static void sc_connect(void *ctx, uint64_t conn, int status)
{
    sim_cli *c = ctx;
    assert_int_equal(status, NK_OK);
    /* send the script in pieces of varying size */
    size_t off = 0, step = 1;
    while (off < c->req->len) {
        size_t n = c->req->len - off < step ? c->req->len - off : step;
        assert_int_equal(nk_rt_send_raw(c->rt, conn, c->req->s + off, n), NK_OK);
        off += n;
        step = step * 3 % 997 + 1;
    }
}

static void sc_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    sim_cli *c = ctx;
    assert_int_equal(kind, NK_FRAME_RAW);
    if (c->got.len + len + 1 > c->got.cap) {
        c->got.cap = (c->got.len + len + 1) * 2;
        c->got.s = realloc(c->got.s, c->got.cap);
    }
    memcpy(c->got.s + c->got.len, data, len);
    c->got.len += len;
    c->got.s[c->got.len] = '\0';
}

static void sc_close(void *ctx, uint64_t conn, int reason)
{
    sim_cli *c = ctx;
    c->closed++;
}

static const nk_net_handlers sc_handlers = {NULL, sc_connect, sc_message, sc_close};

static sim_cli g_cli[2];

static int cli_start(nk_rt *rt, void *cfg, void **state)
{
    sim_cli *c = cfg;
    c->rt = rt;
    *state = c;
    return nk_rt_connect(rt, "srv:6380", NK_CONN_RAW, &sc_handlers, c, &c->conn);
}

static void cli_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app cli_app = {"resp-client", cli_start, cli_stop};

static void test_sim_pipelines_split_at_random_boundaries(void **state)
{
    (void)state;
    sbuf req = {0}, rep = {0};
    build_script(&req, &rep, 300);
    sbuf bad = {0};
    sb_addf(&bad, "PING\r\nGET zz\r\n*2\r\n$3\r\nGET\r\n$2\r\nzzXY");
    for (uint64_t seed = 1; seed <= 8; seed++) {
        nk_sim_config cfg;
        nk_sim_config_default(&cfg, seed);
        nk_sim *s = nk_sim_new(&cfg);
        memset(g_cli, 0, sizeof(g_cli));
        g_cli[0].req = &req;
        g_cli[1].req = &bad;
        uint32_t srv_id, c0, c1;
        assert_int_equal(nk_sim_add_node(s, "srv", &srv_app, NULL, &srv_id), NK_OK);
        assert_int_equal(nk_sim_add_node(s, "c0", &cli_app, &g_cli[0], &c0), NK_OK);
        assert_int_equal(nk_sim_add_node(s, "c1", &cli_app, &g_cli[1], &c1), NK_OK);
        assert_int_equal(nk_sim_node_start(s, srv_id), NK_OK);
        assert_int_equal(nk_sim_node_start(s, c0), NK_OK);
        assert_int_equal(nk_sim_node_start(s, c1), NK_OK);
        nk_sim_run_until(s, 20 * NK_NSEC_PER_SEC);
        if (g_cli[0].got.len != rep.len || memcmp(g_cli[0].got.s, rep.s, rep.len) != 0) {
            fail_msg("seed %llu: replies differ after %zu of %zu bytes", (unsigned long long)seed,
                     g_cli[0].got.len, rep.len);
        }
        assert_int_equal(g_cli[0].closed, 0);
        /* the bad client: its good requests answered, then the error, then closed */
        assert_string_equal(g_cli[1].got.s, "+PONG\r\n$-1\r\n"
                                            "-ERR Protocol error: expected CRLF after bulk\r\n");
        assert_int_equal(g_cli[1].closed, 1);
        free(g_cli[0].got.s);
        free(g_cli[1].got.s);
        nk_sim_free(s);
    }
    free(req.s);
    free(rep.s);
    free(bad.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_pipelining_in_order),
        cmocka_unit_test(test_real_malformed_closes_only_that_connection),
        cmocka_unit_test(test_real_oversized_requests),
        cmocka_unit_test(test_real_quit_max_clients_output_limit),
        cmocka_unit_test(test_real_write_failure_and_shutdown_with_writes_in_flight),
        cmocka_unit_test(test_real_read_barrier),
        cmocka_unit_test(test_sim_pipelines_split_at_random_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
