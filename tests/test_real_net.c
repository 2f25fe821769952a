/*
 * test_real_net.c - the event loop, timers, jobs, TCP, signals, log and
 * failpoints of the real runtime (net/). Real sockets on 127.0.0.1 only;
 * every nk_rt_real_run is bounded by a guard timer that stops the loop and
 * fails the test instead of hanging; child processes are waited for with a
 * bounded poll and killed on timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/idmap.h"
#include "net/rt_real.h"
#include "net/rt_real_impl.h"
#include "net/timer_heap.h"
#include "nokv/proto/frame.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"

/* ------------------------------------------------------------- helpers --- */

static nk_rt *new_rt(void)
{
    nk_rt_real_config cfg = {.seed = 42, .seed_given = true, .log_level = NK_LOG_ERROR};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    assert_non_null(rt);
    return rt;
}

static bool g_timed_out;

static void guard_fire(void *arg)
{
    g_timed_out = true;
    nk_rt_stop(arg);
}

/* Run the loop until something calls nk_rt_stop; fail after `ms`. */
static void run_bounded(nk_rt *rt, unsigned ms)
{
    g_timed_out = false;
    uint64_t guard = nk_rt_timer_start(rt, ms * NK_NSEC_PER_MSEC, guard_fire, rt);
    assert_int_not_equal(guard, 0);
    assert_int_equal(nk_rt_real_run(rt), NK_OK);
    nk_rt_timer_cancel(rt, guard);
    assert_false(g_timed_out);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait for a child for at most `ms`; kill it on timeout. Returns the status. */
static int wait_child(pid_t pid, unsigned ms)
{
    int status = 0;
    for (unsigned waited = 0; waited < ms; waited += 5) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            return status;
        }
        sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("child %d did not finish within %u ms", (int)pid, ms);
    return status;
}

static void listen_any(nk_rt *rt, const nk_net_handlers *h, void *ctx, uint64_t *lid, char *addr,
                       size_t alen)
{
    assert_int_equal(nk_rt_listen(rt, "127.0.0.1:0", h, ctx, lid), NK_OK);
    assert_int_equal(nk_rt_listener_addr(rt, *lid, addr, alen), NK_OK);
}

/* -------------------------------------------------------------- timers --- */

static void noop_timer(void *arg)
{
    (void)arg;
}

static void test_timer_heap_order(void **state)
{
    (void)state;
    nk_timer_heap h = {0};
    /* Equal deadlines must come out in id (start) order, regardless of the
     * insertion pattern; cancelled ones never come out. */
    uint64_t deadlines[] = {50, 10, 50, 10, 30, 50, 10, 0, 30, 50};
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(
            nk_timer_heap_add(&h, deadlines[i], i + 1, noop_timer, (void *)(uintptr_t)i), NK_OK);
    }
    assert_int_equal(nk_timer_heap_cancel(&h, 3, NULL), NK_OK);
    assert_int_equal(nk_timer_heap_cancel(&h, 3, NULL), NK_ENOENT);
    void *arg = NULL;
    assert_int_equal(nk_timer_heap_cancel(&h, 7, &arg), NK_OK);
    assert_ptr_equal(arg, (void *)(uintptr_t)6);
    uint64_t next = 0;
    assert_true(nk_timer_heap_next(&h, &next));
    assert_int_equal(next, 0);

    nk_timer_fn fn;
    uint64_t id;
    /* Not due yet at now=5 (beyond the 0 deadline). */
    assert_true(nk_timer_heap_pop_due(&h, 5, UINT64_MAX, &fn, &arg, &id));
    assert_int_equal(id, 8);
    assert_false(nk_timer_heap_pop_due(&h, 5, UINT64_MAX, &fn, &arg, &id));
    /* max_id hides timers started after the round began. */
    assert_false(nk_timer_heap_pop_due(&h, 100, 1, &fn, &arg, &id));
    uint64_t want[] = {2, 4, 5, 9, 1, 6, 10};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_true(nk_timer_heap_pop_due(&h, 100, UINT64_MAX, &fn, &arg, &id));
        assert_int_equal(id, want[i]);
    }
    assert_int_equal(nk_timer_heap_count(&h), 0);
    assert_false(nk_timer_heap_next(&h, &next));

    /* Many random-ish timers with cancels: output is sorted by (deadline, id). */
    uint64_t x = 12345;
    for (uint64_t i = 1; i <= 2000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        assert_int_equal(nk_timer_heap_add(&h, (x >> 33) % 100, 100 + i, noop_timer, NULL), NK_OK);
    }
    for (uint64_t i = 1; i <= 2000; i += 3) {
        assert_int_equal(nk_timer_heap_cancel(&h, 100 + i, NULL), NK_OK);
    }
    uint64_t last_d = 0, last_id = 0;
    size_t popped = 0;
    while (nk_timer_heap_next(&h, &next)) {
        assert_true(nk_timer_heap_pop_due(&h, UINT64_MAX, UINT64_MAX, &fn, &arg, &id));
        assert_true(next > last_d || (next == last_d && id > last_id));
        assert_int_not_equal((id - 100 - 1) % 3, 0);
        last_d = next;
        last_id = id;
        popped++;
    }
    assert_int_equal(popped, 2000 - 667);
    nk_timer_heap_free(&h);
}

/* The id map against a plain array model, with heavy insert/delete churn
 * (backward-shift deletion must keep every probe chain intact). */
static void test_idmap_model(void **state)
{
    (void)state;
    enum { N = 4096 };
    static int vals[N];
    static bool present[N];
    memset(present, 0, sizeof(present));
    nk_idmap m = {0};
    uint64_t x = 99;
    size_t count = 0;
    for (int step = 0; step < 200000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t id = (x >> 40) % (N - 1) + 1;
        if ((x >> 20) & 1) {
            assert_int_equal(nk_idmap_put(&m, id, &vals[id]), NK_OK);
            count += present[id] ? 0 : 1;
            present[id] = true;
        } else {
            void *v = nk_idmap_del(&m, id);
            assert_ptr_equal(v, present[id] ? &vals[id] : NULL);
            count -= present[id] ? 1 : 0;
            present[id] = false;
        }
        if (step % 1000 == 0) {
            for (uint64_t k = 1; k < N; k++) {
                assert_ptr_equal(nk_idmap_get(&m, k), present[k] ? &vals[k] : NULL);
            }
        }
        assert_int_equal(m.count, count);
    }
    void **all;
    size_t n;
    assert_int_equal(nk_idmap_values(&m, &all, &n), NK_OK);
    assert_int_equal(n, count);
    free(all);
    assert_null(nk_idmap_get(&m, 0));
    assert_int_equal(nk_idmap_put(&m, 0, &vals[0]), NK_EINVAL);
    nk_idmap_free(&m);
}

typedef struct timer_ctx {
    nk_rt *rt;
    char order[32];
    size_t n;
    uint64_t victim; /* cancelled from inside a callback */
} timer_ctx;

typedef struct timer_arg {
    timer_ctx *tc;
    char name;
} timer_arg;

static void rec_timer(void *arg)
{
    timer_arg *ta = arg;
    timer_ctx *tc = ta->tc;
    tc->order[tc->n++] = ta->name;
    if (ta->name == 'B') {
        /* Re-entrancy: cancel a pending timer and start a new one. */
        assert_int_equal(nk_rt_timer_cancel(tc->rt, tc->victim), NK_OK);
    }
    if (ta->name == 'A') {
        nk_rt_stop(tc->rt);
    }
}

static void test_timers_fire_in_order(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    timer_ctx tc = {.rt = rt};
    timer_arg a = {&tc, 'A'}, b = {&tc, 'B'}, c = {&tc, 'C'}, d = {&tc, 'D'}, e = {&tc, 'E'},
              f = {&tc, 'F'}, v = {&tc, 'V'};
    uint64_t ms = NK_NSEC_PER_MSEC;
    uint64_t ia = nk_rt_timer_start(rt, 60 * ms, rec_timer, &a);
    uint64_t ib = nk_rt_timer_start(rt, 20 * ms, rec_timer, &b);
    uint64_t ic = nk_rt_timer_start(rt, 20 * ms, rec_timer, &c);
    uint64_t id = nk_rt_timer_start(rt, 0, rec_timer, &d);
    uint64_t ie = nk_rt_timer_start(rt, 40 * ms, rec_timer, &e);
    uint64_t iff = nk_rt_timer_start(rt, 40 * ms, rec_timer, &f);
    tc.victim = nk_rt_timer_start(rt, 50 * ms, rec_timer, &v);
    /* Ids are non-zero sequence numbers. */
    assert_true(ia > 0 && ib == ia + 1 && ic == ib + 1 && id == ic + 1 && ie == id + 1 &&
                iff == ie + 1 && tc.victim == iff + 1);
    assert_int_equal(nk_rt_timer_cancel(rt, ie), NK_OK);
    assert_int_equal(nk_rt_timer_cancel(rt, ie), NK_ENOENT);
    assert_int_equal(nk_rt_timer_cancel(rt, 0), NK_ENOENT);
    assert_int_equal(nk_rt_timer_cancel(rt, 999999), NK_ENOENT);

    uint64_t t0 = nk_rt_now(rt);
    run_bounded(rt, 5000);
    uint64_t t1 = nk_rt_now(rt);
    tc.order[tc.n] = '\0';
    assert_string_equal(tc.order, "DBCFA");
    assert_true(t1 - t0 >= 60 * ms);                         /* never early */
    assert_int_equal(nk_rt_timer_cancel(rt, ia), NK_ENOENT); /* already fired */
    assert_true(nk_rt_wall(rt) > 1600000000ull * NK_NSEC_PER_SEC);
    nk_rt_real_free(rt);
}

/* ----------------------------------------------------------------- jobs --- */

#define NJOBS 8

typedef struct job_ctx {
    nk_rt *rt;
    pthread_t loop_thread;
    pthread_t worker[NJOBS];
    bool worked[NJOBS];
    bool done_ok[NJOBS];
    int ndone;
} job_ctx;

typedef struct job_arg {
    job_ctx *jc;
    int i;
} job_arg;

static void job_work(void *arg)
{
    job_arg *ja = arg;
    ja->jc->worker[ja->i] = pthread_self();
    sleep_ms(5);
    ja->jc->worked[ja->i] = true;
}

static void job_done(void *arg)
{
    job_arg *ja = arg;
    job_ctx *jc = ja->jc;
    /* done runs on the loop thread, after work finished, off the worker. */
    jc->done_ok[ja->i] = pthread_equal(pthread_self(), jc->loop_thread) && jc->worked[ja->i] &&
                         !pthread_equal(jc->worker[ja->i], jc->loop_thread);
    if (++jc->ndone == NJOBS) {
        nk_rt_stop(jc->rt);
    }
}

static void test_jobs(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    job_ctx jc = {.rt = rt, .loop_thread = pthread_self()};
    job_arg args[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        args[i] = (job_arg){&jc, i};
        assert_int_equal(nk_rt_job_submit(rt, "test.job", job_work, job_done, &args[i]), NK_OK);
    }
    run_bounded(rt, 10000);
    assert_int_equal(jc.ndone, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_true(jc.done_ok[i]);
    }
    nk_rt_real_free(rt);
}

static void slow_work(void *arg)
{
    sleep_ms(50);
    *(int *)arg += 1;
}

static void never_done(void *arg)
{
    (void)arg;
    fail_msg("done must not run after nk_rt_real_free");
}

static void test_free_discards_jobs(void **state)
{
    (void)state;
    nk_rt_real_config cfg = {.seed_given = true, .worker_threads = 1, .log_level = NK_LOG_ERROR};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    int ran = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(nk_rt_job_submit(rt, "slow", slow_work, never_done, &ran), NK_OK);
    }
    sleep_ms(20);        /* let the single worker start the first one */
    nk_rt_real_free(rt); /* the running one finishes; the rest are dropped */
    assert_true(ran >= 1 && ran < 5);
}

/* ------------------------------------------------------------- network --- */

#define MAX_CONNS 8

typedef struct net_ctx {
    nk_rt *rt;
    /* server side */
    uint64_t srv_conns[MAX_CONNS];
    char peer[MAX_CONNS][48];
    int nsrv;
    int srv_close_reason[MAX_CONNS];
    int nsrv_close;
    uint64_t srv_closed_conn[MAX_CONNS];
    size_t srv_bytes;
    int srv_msgs;
    uint64_t last_msg_conn;
    int srv_close_after; /* close the conn from inside on_message after N msgs */
    bool srv_stop_on_msg;
    /* client side */
    int connect_status[MAX_CONNS];
    int nconnect;
    int cli_close_reason;
    int ncli_close;
    uint8_t *expect;
    size_t expect_len;
    uint8_t *got;
    size_t got_len;
    int cli_msgs;
    int want_msgs;
    uint8_t kinds[16];
    size_t lens[16];
    bool payload_ok;
} net_ctx;

static void srv_accept(void *ctx, uint64_t lid, uint64_t conn, const char *peer)
{
    (void)lid;
    net_ctx *nc = ctx;
    assert_true(nc->nsrv < MAX_CONNS);
    snprintf(nc->peer[nc->nsrv], sizeof(nc->peer[0]), "%s", peer);
    nc->srv_conns[nc->nsrv++] = conn;
}

static void srv_echo(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    net_ctx *nc = ctx;
    nc->srv_msgs++;
    nc->srv_bytes += len;
    nc->last_msg_conn = conn;
    if (nc->srv_stop_on_msg) {
        nk_rt_stop(nc->rt);
        return;
    }
    if (nc->srv_close_after > 0 && nc->srv_msgs == nc->srv_close_after) {
        assert_int_equal(nk_rt_close(nc->rt, conn), NK_OK);
        assert_int_equal(nk_rt_send(nc->rt, conn, 1, "x", 1), NK_ECLOSED);
        return;
    }
    if (kind == NK_FRAME_RAW) {
        assert_int_equal(nk_rt_send_raw(nc->rt, conn, data, len), NK_OK);
    } else {
        assert_int_equal(nk_rt_send(nc->rt, conn, kind, data, len), NK_OK);
    }
}

static void srv_close(void *ctx, uint64_t conn, int reason)
{
    net_ctx *nc = ctx;
    assert_true(nc->nsrv_close < MAX_CONNS);
    nc->srv_closed_conn[nc->nsrv_close] = conn;
    nc->srv_close_reason[nc->nsrv_close++] = reason;
}

static const nk_net_handlers srv_handlers = {
    .on_accept = srv_accept, .on_message = srv_echo, .on_close = srv_close};

static void cli_connect_record(void *ctx, uint64_t conn, int status)
{
    (void)conn;
    net_ctx *nc = ctx;
    nc->connect_status[nc->nconnect++] = status;
    if (status != NK_OK) {
        nk_rt_stop(nc->rt);
    }
}

static void cli_close_record(void *ctx, uint64_t conn, int reason)
{
    (void)conn;
    net_ctx *nc = ctx;
    nc->cli_close_reason = reason;
    nc->ncli_close++;
}

/* Framed echo: client sends three frames (one of 1 MiB), checks each reply. */
static const char *const small_payload = "hello, raft";

static void framed_on_connect(void *ctx, uint64_t conn, int status)
{
    net_ctx *nc = ctx;
    nc->connect_status[nc->nconnect++] = status;
    assert_int_equal(status, NK_OK);
    assert_int_equal(nk_rt_send(nc->rt, conn, 1, small_payload, strlen(small_payload)), NK_OK);
    assert_int_equal(nk_rt_send(nc->rt, conn, 2, NULL, 0), NK_OK);
    assert_int_equal(nk_rt_send(nc->rt, conn, 255, nc->expect, nc->expect_len), NK_OK);
    /* Raw bytes on a framed connection, and kind 0 frames, are refused. */
    assert_int_equal(nk_rt_send_raw(nc->rt, conn, "x", 1), NK_EINVAL);
    assert_int_equal(nk_rt_send(nc->rt, conn, NK_FRAME_RAW, "x", 1), NK_EINVAL);
    assert_true(nk_rt_conn_pending(nc->rt, conn) >= nc->expect_len);
}

static void framed_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data,
                              size_t len)
{
    net_ctx *nc = ctx;
    int i = nc->cli_msgs++;
    nc->kinds[i] = kind;
    nc->lens[i] = len;
    if (i == 0) {
        nc->payload_ok = len == strlen(small_payload) && memcmp(data, small_payload, len) == 0;
    } else if (i == 2) {
        nc->payload_ok =
            nc->payload_ok && len == nc->expect_len && memcmp(data, nc->expect, len) == 0;
    }
    if (nc->cli_msgs == nc->want_msgs) {
        assert_int_equal(nk_rt_conn_pending(nc->rt, conn), 0);
        nk_rt_stop(nc->rt);
    }
}

static void test_framed_echo(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt, .want_msgs = 3};
    nc.expect_len = 1024 * 1024;
    nc.expect = malloc(nc.expect_len);
    assert_non_null(nc.expect);
    for (size_t i = 0; i < nc.expect_len; i++) {
        nc.expect[i] = (uint8_t)(i ^ (i >> 8) ^ (i >> 16));
    }
    uint64_t lid;
    char addr[64];
    listen_any(rt, &srv_handlers, &nc, &lid, addr, sizeof(addr));

    nk_net_handlers ch = {.on_connect = framed_on_connect,
                          .on_message = framed_on_message,
                          .on_close = cli_close_record};
    uint64_t conn = 0;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &ch, &nc, &conn), NK_OK);
    assert_int_not_equal(conn, 0);
    run_bounded(rt, 10000);

    assert_int_equal(nc.nconnect, 1);
    assert_int_equal(nc.cli_msgs, 3);
    assert_int_equal(nc.kinds[0], 1);
    assert_int_equal(nc.kinds[1], 2);
    assert_int_equal(nc.lens[1], 0);
    assert_int_equal(nc.kinds[2], 255);
    assert_true(nc.payload_ok);
    assert_int_equal(nc.nsrv, 1);
    assert_int_equal(strncmp(nc.peer[0], "127.0.0.1:", 10), 0);
    assert_int_equal(nc.srv_msgs, 3);
    assert_int_equal(nc.nsrv_close, 0);
    assert_int_equal(nc.ncli_close, 0);

    /* Local close: no on_close on this side; the server sees NK_ECLOSED. */
    assert_int_equal(nk_rt_close(rt, conn), NK_OK);
    assert_int_equal(nk_rt_close(rt, conn), NK_ENOENT);
    assert_int_equal(nk_rt_send(rt, conn, 1, "x", 1), NK_ECLOSED);
    assert_int_equal(nk_rt_conn_pending(rt, conn), 0);
    nc.want_msgs = -1;
    /* Wait for the server's on_close. */
    for (int i = 0; i < 200 && nc.nsrv_close == 0; i++) {
        g_timed_out = false;
        uint64_t t = nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, guard_fire, rt);
        assert_int_equal(nk_rt_real_run(rt), NK_OK);
        nk_rt_timer_cancel(rt, t);
    }
    assert_int_equal(nc.nsrv_close, 1);
    assert_int_equal(nc.srv_close_reason[0], NK_ECLOSED);
    assert_int_equal(nc.ncli_close, 0);
    assert_int_equal(nk_rt_listener_close(rt, lid), NK_OK);
    assert_int_equal(nk_rt_listener_close(rt, lid), NK_ENOENT);
    free(nc.expect);
    nk_rt_real_free(rt);
}

/* Raw echo: bytes go through in order, in chunks of arbitrary size. */
static void raw_on_connect(void *ctx, uint64_t conn, int status)
{
    net_ctx *nc = ctx;
    nc->connect_status[nc->nconnect++] = status;
    assert_int_equal(status, NK_OK);
    /* Send in uneven pieces. */
    size_t off = 0, step = 1;
    while (off < nc->expect_len) {
        size_t n = nc->expect_len - off < step ? nc->expect_len - off : step;
        assert_int_equal(nk_rt_send_raw(nc->rt, conn, nc->expect + off, n), NK_OK);
        off += n;
        step = step * 3 + 1;
    }
    assert_int_equal(nk_rt_send(nc->rt, conn, 1, "x", 1), NK_EINVAL); /* raw conn */
}

static void raw_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    (void)conn;
    net_ctx *nc = ctx;
    assert_int_equal(kind, NK_FRAME_RAW);
    assert_true(nc->got_len + len <= nc->expect_len);
    memcpy(nc->got + nc->got_len, data, len);
    nc->got_len += len;
    nc->cli_msgs++;
    if (nc->got_len == nc->expect_len) {
        nk_rt_stop(nc->rt);
    }
}

static void test_raw_echo(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    /* RESP-looking text first (not the frame magic), then binary. */
    nc.expect_len = 300 * 1000;
    nc.expect = malloc(nc.expect_len);
    nc.got = malloc(nc.expect_len);
    assert_non_null(nc.expect);
    assert_non_null(nc.got);
    memcpy(nc.expect, "*1\r\n$4\r\nPING\r\n", 14);
    for (size_t i = 14; i < nc.expect_len; i++) {
        nc.expect[i] = (uint8_t)(i * 17u + 3u);
    }
    uint64_t lid;
    char addr[64];
    listen_any(rt, &srv_handlers, &nc, &lid, addr, sizeof(addr));
    nk_net_handlers ch = {
        .on_connect = raw_on_connect, .on_message = raw_on_message, .on_close = cli_close_record};
    uint64_t conn;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_RAW, &ch, &nc, &conn), NK_OK);
    run_bounded(rt, 10000);
    assert_int_equal(nc.got_len, nc.expect_len);
    assert_memory_equal(nc.got, nc.expect, nc.expect_len);
    assert_int_equal(nc.srv_bytes, nc.expect_len);
    assert_int_equal(nc.ncli_close, 0);
    assert_int_equal(nc.nsrv_close, 0);
    free(nc.expect);
    free(nc.got);
    nk_rt_real_free(rt);
}

/*
 * A corrupt frame closes only its own connection: attacker A writes a frame
 * with a bad checksum over a raw connection, attacker B an oversize header;
 * the server closes those two (NK_EPROTO, NK_ETOOBIG), and a well-behaved
 * framed client C, connected the whole time, still gets its echo afterwards.
 */
typedef struct corrupt_ctx {
    net_ctx nc;
    uint64_t good;
    bool good_connected;
    int good_replies;
    int bad_closed; /* client-side on_close of the attackers */
    int bad_close_reason[2];
} corrupt_ctx;

static void bad_on_connect(void *ctx, uint64_t conn, int status)
{
    corrupt_ctx *cc = ctx;
    assert_int_equal(status, NK_OK);
    uint8_t frame[NK_FRAME_HEADER_SIZE + 5];
    bool oversize = cc->nc.nconnect++ == 1;
    nk_frame_encode_header(frame, 3, "abcde", 5);
    memcpy(frame + NK_FRAME_HEADER_SIZE, "abcde", 5);
    if (oversize) {
        nk_put_u32(frame + 8, NK_FRAME_MAX + 1);
    } else {
        frame[NK_FRAME_HEADER_SIZE + 2] ^= 0x40; /* payload no longer matches */
    }
    assert_int_equal(nk_rt_send_raw(cc->nc.rt, conn, frame, sizeof(frame)), NK_OK);
}

static void bad_on_close(void *ctx, uint64_t conn, int reason)
{
    (void)conn;
    corrupt_ctx *cc = ctx;
    cc->bad_close_reason[cc->bad_closed++] = reason;
}

static void ignore_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)conn;
    (void)kind;
    (void)data;
    (void)len;
    fail_msg("the server must not echo a corrupt frame");
}

static void good_on_connect(void *ctx, uint64_t conn, int status)
{
    (void)conn;
    corrupt_ctx *cc = ctx;
    assert_int_equal(status, NK_OK);
    cc->good_connected = true;
}

static void good_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    (void)conn;
    corrupt_ctx *cc = ctx;
    assert_int_equal(kind, 9);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "ping", 4);
    cc->good_replies++;
    nk_rt_stop(cc->nc.rt);
}

static void good_close(void *ctx, uint64_t conn, int reason)
{
    (void)ctx;
    (void)conn;
    fail_msg("the good connection closed (reason %d)", reason);
}

static void poll_until(nk_rt *rt, bool (*cond)(void *), void *arg, unsigned max_ms)
{
    for (unsigned waited = 0; !cond(arg); waited += 5) {
        assert_true(waited < max_ms);
        uint64_t t = nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, guard_fire, rt);
        assert_int_equal(nk_rt_real_run(rt), NK_OK);
        nk_rt_timer_cancel(rt, t);
    }
}

static bool first_attacker_done(void *arg)
{
    corrupt_ctx *cc = arg;
    return cc->nc.nsrv_close == 1 && cc->bad_closed == 1 && cc->good_connected;
}

static bool second_attacker_done(void *arg)
{
    corrupt_ctx *cc = arg;
    return cc->nc.nsrv_close == 2 && cc->bad_closed == 2;
}

static void test_corrupt_frame_closes_only_that_conn(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    corrupt_ctx cc = {.nc = {.rt = rt}};
    uint64_t lid;
    char addr[64];
    listen_any(rt, &srv_handlers, &cc.nc, &lid, addr, sizeof(addr));

    nk_net_handlers good_h = {
        .on_connect = good_on_connect, .on_message = good_on_message, .on_close = good_close};
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &good_h, &cc, &cc.good), NK_OK);
    nk_net_handlers bad_h = {
        .on_connect = bad_on_connect, .on_message = ignore_message, .on_close = bad_on_close};
    uint64_t a, b;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_RAW, &bad_h, &cc, &a), NK_OK);
    poll_until(rt, first_attacker_done, &cc, 5000);
    assert_int_equal(cc.nc.srv_close_reason[0], NK_EPROTO);
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_RAW, &bad_h, &cc, &b), NK_OK);
    poll_until(rt, second_attacker_done, &cc, 5000);
    assert_int_equal(cc.nc.srv_close_reason[1], NK_ETOOBIG);
    assert_int_equal(cc.bad_close_reason[0], NK_ECLOSED);
    assert_int_equal(cc.bad_close_reason[1], NK_ECLOSED);
    assert_int_equal(cc.nc.nsrv, 3);
    assert_int_equal(cc.nc.srv_msgs, 0);

    /* The good connection still works, through a server-side connection
     * that is neither of the closed ones. */
    assert_int_equal(nk_rt_send(rt, cc.good, 9, "ping", 4), NK_OK);
    run_bounded(rt, 5000);
    assert_int_equal(cc.good_replies, 1);
    assert_int_equal(cc.nc.srv_msgs, 1);
    assert_true(cc.nc.last_msg_conn != cc.nc.srv_closed_conn[0]);
    assert_true(cc.nc.last_msg_conn != cc.nc.srv_closed_conn[1]);
    assert_int_equal(cc.nc.nsrv_close, 2);
    nk_rt_real_free(rt);
}

static void test_connect_refused(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    uint64_t lid;
    char addr[64];
    listen_any(rt, &srv_handlers, &nc, &lid, addr, sizeof(addr));
    assert_int_equal(nk_rt_listener_close(rt, lid), NK_OK); /* port now closed */

    nk_net_handlers ch = {.on_connect = cli_connect_record, .on_close = cli_close_record};
    uint64_t conn;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &ch, &nc, &conn), NK_OK);
    /* Queued before the result is known: allowed, and dropped with the conn. */
    assert_int_equal(nk_rt_send(rt, conn, 1, "early", 5), NK_OK);
    run_bounded(rt, 5000);
    assert_int_equal(nc.nconnect, 1);
    assert_int_equal(nc.connect_status[0], NK_ECONNREFUSED);
    assert_int_equal(nc.ncli_close, 0); /* failed connects get no on_close */
    assert_int_equal(nk_rt_send(rt, conn, 1, "x", 1), NK_ECLOSED);
    assert_int_equal(nk_rt_close(rt, conn), NK_ENOENT);
    nk_rt_real_free(rt);
}

/* A peer that never answers: a listener whose accept queue is full drops
 * SYNs, so the connect stays pending until the runtime's 5 s timeout. */
static void test_connect_timeout(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t slen = sizeof(sa);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fillers[i] >= 0);
        (void)connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    sleep_ms(50);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    nk_net_handlers ch = {.on_connect = cli_connect_record, .on_close = cli_close_record};
    uint64_t conn;
    uint64_t t0 = nk_rt_now(rt);
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &ch, &nc, &conn), NK_OK);
    run_bounded(rt, 15000);
    uint64_t waited = nk_rt_now(rt) - t0;
    assert_int_equal(nc.nconnect, 1);
    assert_int_equal(nc.connect_status[0], NK_ETIMEDOUT);
    assert_true(waited >= 5 * NK_NSEC_PER_SEC);
    assert_int_equal(nc.ncli_close, 0);
    nk_rt_real_free(rt);
    for (int i = 0; i < 4; i++) {
        close(fillers[i]);
    }
    close(lfd);
}

static void test_listener_addr_and_bad_addrs(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    uint64_t l1, l2;
    char addr[64];
    listen_any(rt, &srv_handlers, &nc, &l1, addr, sizeof(addr));
    assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
    long port = strtol(addr + 10, NULL, 10);
    assert_true(port > 0 && port <= 65535);
    char tiny[8];
    assert_int_equal(nk_rt_listener_addr(rt, l1, tiny, sizeof(tiny)), NK_ERANGE);
    assert_int_equal(nk_rt_listener_addr(rt, 12345, addr, sizeof(addr)), NK_ENOENT);

    /* The same port twice is "address in use". */
    assert_int_equal(nk_rt_listen(rt, addr, &srv_handlers, &nc, &l2), NK_EADDR);

    const char *bad[] = {"localhost:80", "127.0.0.1",  "127.0.0.1:",    "127.0.0:80", "1.2.3.4.5:6",
                         "256.0.0.1:80", "01.2.3.4:5", "1.2.3.4:65536", "1.2.3.4:5x", " 1.2.3.4:5",
                         "1.2.3.4:-1",   "",           "::1:80",        "1.2.3.4:007"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(nk_rt_listen(rt, bad[i], &srv_handlers, &nc, &l2), NK_EADDR);
    }
    uint64_t conn;
    nk_net_handlers ch = {.on_connect = cli_connect_record};
    assert_int_equal(nk_rt_connect(rt, "127.0.0.1:0", NK_CONN_RAW, &ch, &nc, &conn), NK_EADDR);
    assert_int_equal(nk_rt_connect(rt, "nope", NK_CONN_RAW, &ch, &nc, &conn), NK_EADDR);

    uint32_t ip;
    uint16_t p;
    assert_int_equal(nk_real_parse_addr("10.0.255.1:65535", false, &ip, &p), NK_OK);
    assert_int_equal(p, 65535);
    const uint8_t *ipb = (const uint8_t *)&ip; /* network order */
    assert_int_equal(ipb[0], 10);
    assert_int_equal(ipb[2], 255);
    assert_int_equal(ipb[3], 1);
    nk_rt_real_free(rt);
}

/* A callback may close its own connection: later frames already received
 * on it are not delivered, and no on_close follows. */
static void burst_on_connect(void *ctx, uint64_t conn, int status)
{
    net_ctx *nc = ctx;
    assert_int_equal(status, NK_OK);
    for (int i = 0; i < 5; i++) {
        uint8_t b = (uint8_t)i;
        assert_int_equal(nk_rt_send(nc->rt, conn, 4, &b, 1), NK_OK);
    }
}

static void test_close_inside_callback(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt, .srv_close_after = 2};
    uint64_t lid;
    char addr[64];
    listen_any(rt, &srv_handlers, &nc, &lid, addr, sizeof(addr));
    nk_net_handlers ch = {.on_connect = burst_on_connect, .on_close = cli_close_record};
    uint64_t conn;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &ch, &nc, &conn), NK_OK);
    /* The client sees the server's close as NK_ECLOSED. */
    for (unsigned waited = 0; nc.ncli_close == 0; waited += 5) {
        assert_true(waited < 5000);
        uint64_t t = nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, guard_fire, rt);
        assert_int_equal(nk_rt_real_run(rt), NK_OK);
        nk_rt_timer_cancel(rt, t);
    }
    assert_int_equal(nc.cli_close_reason, NK_ECLOSED);
    assert_int_equal(nc.srv_msgs, 2);
    assert_int_equal(nc.nsrv_close, 0);
    nk_rt_real_free(rt);
}

/* nk_rt_stop inside on_message returns from run; frames already buffered are
 * delivered by the next run, in order. */
static void ordered_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data,
                               size_t len)
{
    (void)conn;
    (void)kind;
    net_ctx *nc = ctx;
    assert_int_equal(len, 1);
    assert_int_equal(data[0], nc->srv_msgs);
    nc->srv_msgs++;
    nk_rt_stop(nc->rt);
}

static void test_stop_inside_callback_keeps_frames(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    nk_net_handlers sh = {.on_message = ordered_on_message, .on_close = srv_close};
    uint64_t lid;
    char addr[64];
    listen_any(rt, &sh, &nc, &lid, addr, sizeof(addr));
    nk_net_handlers ch = {.on_connect = burst_on_connect, .on_close = cli_close_record};
    uint64_t conn;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_FRAMED, &ch, &nc, &conn), NK_OK);
    for (int i = 1; i <= 5; i++) {
        run_bounded(rt, 5000);
        assert_int_equal(nc.srv_msgs, i); /* exactly one frame per run */
    }
    assert_int_equal(nc.nsrv_close, 0);
    nk_rt_real_free(rt);
}

/* nk_rt_close flushes what was queued: a large raw write followed at once by
 * a close still reaches the peer completely, then the peer sees NK_ECLOSED. */
static void flush_on_connect(void *ctx, uint64_t conn, int status)
{
    net_ctx *nc = ctx;
    assert_int_equal(status, NK_OK);
    assert_int_equal(nk_rt_send_raw(nc->rt, conn, nc->expect, nc->expect_len), NK_OK);
    assert_int_equal(nk_rt_close(nc->rt, conn), NK_OK);
}

static void count_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    (void)conn;
    (void)kind;
    net_ctx *nc = ctx;
    memcpy(nc->got + nc->got_len, data, len);
    nc->got_len += len;
}

static void stop_on_close(void *ctx, uint64_t conn, int reason)
{
    srv_close(ctx, conn, reason);
    nk_rt_stop(((net_ctx *)ctx)->rt);
}

static void test_local_close_flushes(void **state)
{
    (void)state;
    nk_rt *rt = new_rt();
    net_ctx nc = {.rt = rt};
    nc.expect_len = 8 * 1024 * 1024; /* larger than the socket buffers */
    nc.expect = malloc(nc.expect_len);
    nc.got = malloc(nc.expect_len);
    assert_non_null(nc.expect);
    assert_non_null(nc.got);
    for (size_t i = 0; i < nc.expect_len; i++) {
        nc.expect[i] = (uint8_t)(i % 251u) | 1u; /* never 0x89 first: stays raw */
    }
    nc.expect[0] = 'R';
    nk_net_handlers sh = {.on_message = count_message, .on_close = stop_on_close};
    uint64_t lid;
    char addr[64];
    listen_any(rt, &sh, &nc, &lid, addr, sizeof(addr));
    nk_net_handlers ch = {.on_connect = flush_on_connect, .on_close = cli_close_record};
    uint64_t conn;
    assert_int_equal(nk_rt_connect(rt, addr, NK_CONN_RAW, &ch, &nc, &conn), NK_OK);
    run_bounded(rt, 10000);
    assert_int_equal(nc.nsrv_close, 1);
    assert_int_equal(nc.srv_close_reason[0], NK_ECLOSED);
    assert_int_equal(nc.got_len, nc.expect_len);
    assert_memory_equal(nc.got, nc.expect, nc.expect_len);
    assert_int_equal(nc.ncli_close, 0);
    free(nc.expect);
    free(nc.got);
    nk_rt_real_free(rt);
}

/* -------------------------------------------- seed, log and failpoints --- */

static void test_seed_and_node(void **state)
{
    (void)state;
    nk_rt_real_config cfg = {.seed = 7, .seed_given = true, .log_level = NK_LOG_ERROR};
    nk_rt *a = NULL, *b = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &a), NK_OK);
    assert_true(nk_rt_seed(a) == 7);
    assert_int_equal(nk_rt_node_id(a), 1);
    nk_rt_real_free(a);

    cfg.seed_given = false;
    cfg.node_id = 5;
    assert_int_equal(nk_rt_real_new(&cfg, &a), NK_OK);
    assert_int_equal(nk_rt_real_new(&cfg, &b), NK_OK);
    assert_int_equal(nk_rt_node_id(a), 5);
    assert_true(nk_rt_seed(a) != nk_rt_seed(b)); /* drawn from the OS */
    nk_rt_real_free(a);
    nk_rt_real_free(b);

    cfg.log_level = (nk_log_level)9;
    assert_int_equal(nk_rt_real_new(&cfg, &a), NK_EINVAL);
}

static void test_log_format(void **state)
{
    (void)state;
    char path[] = "/tmp/nokv-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);

    nk_rt_real_config cfg = {.seed = 3, .seed_given = true, .node_id = 7, .log_level = NK_LOG_INFO};
    nk_rt *rt = NULL;
    int rc = nk_rt_real_new(&cfg, &rt);
    if (rc == NK_OK) {
        nk_log(rt, NK_LOG_DEBUG, "hidden %d", 1);
        nk_log(rt, NK_LOG_WARN, "hello %d", 42);
        nk_rt_real_free(rt);
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(rc, NK_OK);

    char buf[1024] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    /* Line 1: the seed at INFO; line 2: our warning; DEBUG dropped. */
    assert_null(strstr(buf, "hidden"));
    char *l1 = buf;
    char *l2 = strchr(buf, '\n');
    assert_non_null(l2);
    l2++;
    assert_non_null(strstr(l1, " INFO n7 seed 3"));
    /* 2024-05-01T12:34:56.789Z WARN n7 hello 42\n */
    assert_true(strlen(l2) == 24 + strlen(" WARN n7 hello 42\n"));
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape[i] == 'd') {
            assert_true(l2[i] >= '0' && l2[i] <= '9');
        } else {
            assert_int_equal(l2[i], shape[i]);
        }
    }
    assert_string_equal(l2 + 24, " WARN n7 hello 42\n");
}

static void test_failpoints(void **state)
{
    (void)state;
    nk_rt_real_config cfg = {.seed_given = true,
                             .log_level = NK_LOG_ERROR,
                             .failpoints = "wal.after_append=error,migrate.init-x_1=error"};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    assert_int_equal(nk_failpoint(rt, "wal.after_append"), NK_EFAILPOINT);
    assert_int_equal(nk_failpoint(rt, "wal.after_append"), NK_EFAILPOINT); /* every hit */
    assert_int_equal(nk_failpoint(rt, "migrate.init-x_1"), NK_EFAILPOINT);
    assert_int_equal(nk_failpoint(rt, "wal.after"), NK_OK);
    assert_int_equal(nk_failpoint(rt, "other"), NK_OK);
    nk_rt_real_free(rt);

    const char *bad[] = {"=error",  "a=",        "a=boom",   "a=error,",  ",a=error",
                         "a error", "a=error b", "a=crashx", "a b=error", "a==error"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.failpoints = bad[i];
        rt = NULL;
        assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_EINVAL);
        assert_null(rt);
    }
    cfg.failpoints = "";
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    assert_int_equal(nk_failpoint(rt, "x"), NK_OK);
    nk_rt_real_free(rt);
}

static void test_failpoint_crash(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        nk_rt_real_config cfg = {.seed_given = true, .failpoints = "snap.before_publish=crash"};
        nk_rt *rt = NULL;
        if (nk_rt_real_new(&cfg, &rt) != NK_OK || nk_failpoint(rt, "other") != NK_OK) {
            _exit(3);
        }
        (void)nk_failpoint(rt, "snap.before_publish");
        _exit(4); /* not reached */
    }
    int status = wait_child(pid, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 137);
}

/* ------------------------------------------------------------- signals --- */

typedef struct sig_ctx {
    nk_rt *rt;
    int pipe_w;
    int handler_calls;
} sig_ctx;

static void send_sigterm(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
}

static void send_sigint(void *arg)
{
    (void)arg;
    kill(getpid(), SIGINT);
}

static void shutdown_record(void *arg)
{
    sig_ctx *sc = arg;
    sc->handler_calls++;
    char c = 'h';
    ssize_t w = write(sc->pipe_w, &c, 1);
    (void)w;
    /* Deliberately does not stop: a second signal must end the process. */
}

static void child_timeout(void *arg)
{
    (void)arg;
    _exit(5);
}

static void test_signals(void **state)
{
    (void)state;
    /* First signal with a handler: handler runs on the loop; second: exit 1. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        nk_rt_real_config cfg = {.seed_given = true};
        sig_ctx sc = {.pipe_w = p[1]};
        if (nk_rt_real_new(&cfg, &sc.rt) != NK_OK) {
            _exit(3);
        }
        nk_rt_set_shutdown_handler(sc.rt, shutdown_record, &sc);
        nk_rt_timer_start(sc.rt, 10 * NK_NSEC_PER_MSEC, send_sigterm, NULL);
        nk_rt_timer_start(sc.rt, 200 * NK_NSEC_PER_MSEC, send_sigint, NULL);
        nk_rt_timer_start(sc.rt, 5 * NK_NSEC_PER_SEC, child_timeout, NULL);
        nk_rt_real_run(sc.rt);
        _exit(4); /* the second signal must not return here */
    }
    close(p[1]);
    int status = wait_child(pid, 10000);
    char buf[8];
    ssize_t n = read(p[0], buf, sizeof(buf));
    close(p[0]);
    assert_int_equal(n, 1); /* the handler ran exactly once */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);

    /* Without a handler the first signal stops the loop; run returns. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        nk_rt_real_config cfg = {.seed_given = true};
        nk_rt *rt = NULL;
        if (nk_rt_real_new(&cfg, &rt) != NK_OK) {
            _exit(3);
        }
        nk_rt_timer_start(rt, 10 * NK_NSEC_PER_MSEC, send_sigint, NULL);
        nk_rt_timer_start(rt, 5 * NK_NSEC_PER_SEC, child_timeout, NULL);
        int rc = nk_rt_real_run(rt);
        nk_rt_real_free(rt);
        _exit(rc == NK_OK ? 0 : 6);
    }
    status = wait_child(pid, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_model),
        cmocka_unit_test(test_timer_heap_order),
        cmocka_unit_test(test_timers_fire_in_order),
        cmocka_unit_test(test_jobs),
        cmocka_unit_test(test_free_discards_jobs),
        cmocka_unit_test(test_framed_echo),
        cmocka_unit_test(test_raw_echo),
        cmocka_unit_test(test_corrupt_frame_closes_only_that_conn),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_listener_addr_and_bad_addrs),
        cmocka_unit_test(test_close_inside_callback),
        cmocka_unit_test(test_stop_inside_callback_keeps_frames),
        cmocka_unit_test(test_local_close_flushes),
        cmocka_unit_test(test_seed_and_node),
        cmocka_unit_test(test_log_format),
        cmocka_unit_test(test_failpoints),
        cmocka_unit_test(test_failpoint_crash),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
