/*
 * test_server_http.c - the status endpoint's HTTP server (nokv/server/http.h,
 * metrics.h) inside the simulator: requests split at arbitrary byte
 * boundaries, pipelined and keep-alive requests, HTTP/1.0 closing after the
 * reply, a malformed request closing only its connection, readiness
 * switching to 503, the idle timeout, and the text writer's escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/server/metrics.h"
#include "sim/sim.h"

static bool g_ready;

static void src_metrics(void *ctx, nk_metrics *m)
{
    (void)ctx;
    nk_metrics_counter(m, "test_things_total", "Things.", 42);
    nk_metrics_family(m, "test_level", "gauge", "Per level.");
    nk_metrics_sample(m, "test_level", "level=\"0\"", 7);
}

static bool src_ready(void *ctx, char *why, size_t len)
{
    (void)ctx;
    if (!g_ready) {
        snprintf(why, len, "region 1 has no leader");
    }
    return g_ready;
}

static int srv_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    nk_status_source src = {NULL, "test", "9.9.9", src_metrics, src_ready};
    nk_status_server *s = NULL;
    int rc = nk_status_server_start(rt, "0.0.0.0:9100", &src, &s);
    *state = s;
    return rc;
}

static void srv_stop(void *state, bool crashed)
{
    (void)crashed;
    nk_status_server_free(state);
}

static const nk_sim_app srv_app = {"status", srv_start, srv_stop};

typedef struct cli {
    nk_rt *rt;
    const char *req;
    char got[16384];
    size_t len;
    int closed;
} cli;

static void c_connect(void *ctx, uint64_t conn, int status)
{
    cli *c = ctx;
    assert_int_equal(status, NK_OK);
    size_t total = strlen(c->req), off = 0, step = 1;
    while (off < total) {
        size_t n = total - off < step ? total - off : step;
        assert_int_equal(nk_rt_send_raw(c->rt, conn, c->req + off, n), NK_OK);
        off += n;
        step = step * 5 % 13 + 1;
    }
}

static void c_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    (void)conn;
    cli *c = ctx;
    assert_int_equal(kind, NK_FRAME_RAW);
    assert_true(c->len + len < sizeof(c->got));
    memcpy(c->got + c->len, data, len);
    c->len += len;
    c->got[c->len] = '\0';
}

static void c_close(void *ctx, uint64_t conn, int reason)
{
    (void)conn;
    (void)reason;
    ((cli *)ctx)->closed++;
}

static const nk_net_handlers c_handlers = {NULL, c_connect, c_message, c_close};

static int cli_start(nk_rt *rt, void *cfg, void **state)
{
    cli *c = cfg;
    c->rt = rt;
    *state = c;
    uint64_t conn;
    return nk_rt_connect(rt, "srv:9100", NK_CONN_RAW, &c_handlers, c, &conn);
}

static void cli_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app cli_app = {"http-client", cli_start, cli_stop};

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void set_unready(nk_sim *s, void *arg)
{
    (void)s;
    (void)arg;
    g_ready = false;
}

static void start_node(nk_sim *s, void *arg)
{
    assert_int_equal(nk_sim_node_start(s, (uint32_t)(uintptr_t)arg), NK_OK);
}

static void test_sim_requests(void **state)
{
    (void)state;
    static cli c[4];
    for (uint64_t seed = 1; seed <= 6; seed++) {
        memset(c, 0, sizeof(c));
        g_ready = true;
        /* pipelined keep-alive requests, the last one HTTP/1.0: closed after it */
        c[0].req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                   "HEAD /ready HTTP/1.1\r\n\r\n"
                   "GET /nope?x=1 HTTP/1.1\r\n\r\n"
                   "GET /health HTTP/1.0\r\n\r\n"
                   "GET /health HTTP/1.1\r\n\r\n"; /* after the close: never answered */
        c[1].req = "GET /ready HTTP/1.1\r\nbroken header line\r\n\r\n";
        c[2].req = ""; /* connects, says nothing: the idle timeout closes it */
        c[3].req = "GET /ready HTTP/1.1\r\nConnection: close\r\n\r\n"; /* after unready */
        nk_sim_config cfg;
        nk_sim_config_default(&cfg, seed);
        nk_sim *s = nk_sim_new(&cfg);
        uint32_t srv, id[4];
        assert_int_equal(nk_sim_add_node(s, "srv", &srv_app, NULL, &srv), NK_OK);
        char name[8];
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof(name), "c%d", i);
            assert_int_equal(nk_sim_add_node(s, name, &cli_app, &c[i], &id[i]), NK_OK);
        }
        assert_int_equal(nk_sim_node_start(s, srv), NK_OK);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(nk_sim_node_start(s, id[i]), NK_OK);
        }
        nk_sim_at(s, 5 * NK_NSEC_PER_SEC, "unready", set_unready, NULL);
        nk_sim_at(s, 6 * NK_NSEC_PER_SEC, "start c3", start_node, (void *)(uintptr_t)id[3]);
        nk_sim_run_until(s, 10 * NK_NSEC_PER_SEC);
        /* c0: four answers in order, then closed */
        const char *g = c[0].got;
        const char *m = strstr(g, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4");
        const char *r = strstr(g, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 6\r\nConnection: keep-alive\r\n\r\nHTTP");
        const char *n = strstr(g, "HTTP/1.1 404 Not Found");
        const char *h = strstr(g, "Connection: close\r\n\r\nok\n");
        if (m == NULL || r == NULL || n == NULL || h == NULL || !(m < r && r < n && n < h)) {
            fail_msg("seed %llu: unexpected replies:\n%s", (unsigned long long)seed, g);
        }
        assert_int_equal(count(g, "HTTP/1.1 "), 4); /* HEAD: headers only; nothing after close */
        assert_non_null(strstr(g, "# HELP test_things_total Things.\n"
                                  "# TYPE test_things_total counter\ntest_things_total 42\n"));
        assert_non_null(strstr(g, "test_level{level=\"0\"} 7\n"));
        assert_non_null(strstr(g, "nokv_build_info{version=\"9.9.9\",role=\"test\"} 1\n"));
        assert_true(g[c[0].len - 1] == '\n' && strcmp(g + c[0].len - 3, "ok\n") == 0);
        assert_int_equal(c[0].closed, 1);
        /* c1: 400, closed; the server went on serving the others */
        assert_non_null(strstr(c[1].got, "HTTP/1.1 400 Bad Request"));
        assert_int_equal(c[1].closed, 1);
        /* c2: still open at 10 s (idle timeout 30 s) */
        assert_int_equal(c[2].closed, 0);
        /* c3: not ready */
        assert_non_null(strstr(c[3].got, "HTTP/1.1 503 Service Unavailable"));
        assert_non_null(strstr(c[3].got, "not ready: region 1 has no leader\n"));
        assert_int_equal(c[3].closed, 1);
        nk_sim_run_until(s, 60 * NK_NSEC_PER_SEC);
        assert_int_equal(c[2].closed, 1); /* idle: closed by the server */
        assert_int_equal(c[2].len, 0);
        nk_sim_free(s);
    }
}

static void test_oversized_head(void **state)
{
    (void)state;
    static char big[NK_HTTP_MAX_REQUEST + 64];
    snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX: ");
    size_t l = strlen(big);
    memset(big + l, 'a', sizeof(big) - l - 1);
    static cli c;
    memset(&c, 0, sizeof(c));
    c.req = big;
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, 3);
    nk_sim *s = nk_sim_new(&cfg);
    uint32_t srv, id;
    assert_int_equal(nk_sim_add_node(s, "srv", &srv_app, NULL, &srv), NK_OK);
    assert_int_equal(nk_sim_add_node(s, "c0", &cli_app, &c, &id), NK_OK);
    assert_int_equal(nk_sim_node_start(s, srv), NK_OK);
    assert_int_equal(nk_sim_node_start(s, id), NK_OK);
    nk_sim_run_until(s, 5 * NK_NSEC_PER_SEC);
    assert_non_null(strstr(c.got, "HTTP/1.1 431 "));
    assert_int_equal(c.closed, 1);
    nk_sim_free(s);
}

static void test_escape(void **state)
{
    (void)state;
    char buf[64];
    nk_metrics_escape("a\"b\\c\nd", buf, sizeof(buf));
    assert_string_equal(buf, "a\\\"b\\\\c\\nd");
    nk_metrics_escape("abcdefgh", buf, 5); /* truncated, terminated */
    assert_true(strlen(buf) < 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_requests),
        cmocka_unit_test(test_oversized_head),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
