/*
 * test_sim_net.c - the simulated network: order per connection, flap,
 * partitions (held traffic, connect timeouts), refusal, raw streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/util/coding.h"
#include "sim/sim.h"

#define MAXC 8

typedef struct peer {
    nk_rt *rt;
    int is_server;
    uint64_t listener;
    uint64_t conn[MAXC];
    int nconn;
    int connected;
    int connect_status;
    int closes;
    int close_reason;
    uint64_t next_expected; /* server: next seq */
    uint64_t received;
    int order_errors;
    uint8_t raw[4096];
    size_t raw_len;
    int raw_chunks;
} peer;

static peer g_peers[3];

static void on_accept(void *ctx, uint64_t l, uint64_t conn, const char *addr)
{
    peer *p = ctx;
    (void)l;
    (void)addr;
    if (p->nconn < MAXC) {
        p->conn[p->nconn++] = conn;
    }
}

static void on_connect(void *ctx, uint64_t conn, int status)
{
    peer *p = ctx;
    (void)conn;
    p->connect_status = status;
    if (status == NK_OK) {
        p->connected++;
    }
}

static void on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    peer *p = ctx;
    (void)conn;
    if (kind == NK_FRAME_RAW) {
        memcpy(p->raw + p->raw_len, data, len);
        p->raw_len += len;
        p->raw_chunks++;
        return;
    }
    assert_int_equal(len, 8);
    uint64_t seq = nk_get_u64(data);
    if (seq != p->next_expected) {
        p->order_errors++;
    }
    p->next_expected = seq + 1;
    p->received++;
}

static void on_close(void *ctx, uint64_t conn, int reason)
{
    peer *p = ctx;
    (void)conn;
    p->closes++;
    p->close_reason = reason;
}

static const nk_net_handlers handlers = {on_accept, on_connect, on_message, on_close};

static int peer_start(nk_rt *rt, void *cfg, void **state)
{
    peer *p = cfg;
    p->rt = rt;
    if (p->is_server) {
        assert_int_equal(nk_rt_listen(rt, "0.0.0.0:9000", &handlers, p, &p->listener), NK_OK);
    }
    *state = p;
    return NK_OK;
}

static void peer_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app peer_app = {"peer", peer_start, peer_stop};

static nk_sim *two_nodes(uint64_t seed, nk_sim_config *cfgout)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    if (cfgout != NULL) {
        cfg = *cfgout;
        cfg.seed = seed;
    }
    nk_sim *s = nk_sim_new(&cfg);
    memset(g_peers, 0, sizeof(g_peers));
    g_peers[1].is_server = 1;
    nk_sim_add_node(s, "c", &peer_app, &g_peers[0], NULL);
    nk_sim_add_node(s, "srv", &peer_app, &g_peers[1], NULL);
    nk_sim_node_start(s, 1);
    nk_sim_node_start(s, 2);
    return s;
}

static uint64_t connect_client(nk_sim *s, nk_conn_mode mode)
{
    uint64_t conn = 0;
    assert_int_equal(nk_rt_connect(g_peers[0].rt, "srv:9000", mode, &handlers, &g_peers[0], &conn),
                     NK_OK);
    nk_sim_run_until(s, nk_sim_now(s) + 500 * NK_NSEC_PER_MSEC);
    return conn;
}

static void send_seqs(uint64_t conn, uint64_t from, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint8_t b[8];
        nk_put_u64(b, from + i);
        assert_int_equal(nk_rt_send(g_peers[0].rt, conn, 1, b, 8), NK_OK);
    }
}

static void test_order_preserved_despite_latency_tail(void **state)
{
    (void)state;
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, 0);
    cfg.tail = (nk_ratio){1, 5}; /* many slow messages: ordering must still hold */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        nk_sim *s = two_nodes(seed, &cfg);
        uint64_t conn = connect_client(s, NK_CONN_FRAMED);
        assert_int_equal(g_peers[0].connected, 1);
        assert_int_equal(g_peers[1].nconn, 1);
        send_seqs(conn, 0, 500);
        assert_true(nk_rt_conn_pending(g_peers[0].rt, conn) > 0);
        nk_sim_run_until(s, nk_sim_now(s) + 5 * NK_NSEC_PER_SEC);
        assert_int_equal(g_peers[1].received, 500);
        assert_int_equal(g_peers[1].order_errors, 0);
        assert_int_equal(nk_rt_conn_pending(g_peers[0].rt, conn), 0);
        nk_sim_free(s);
    }
}

static void test_flap_breaks_both_ends_and_loses_in_flight(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(7, NULL);
    uint64_t conn = connect_client(s, NK_CONN_FRAMED);
    send_seqs(conn, 0, 100);
    nk_sim_net_break(s, 1, 2); /* before anything was delivered */
    nk_sim_run_until(s, nk_sim_now(s) + 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].closes, 1);
    assert_int_equal(g_peers[0].close_reason, NK_ECLOSED);
    assert_int_equal(g_peers[1].closes, 1);
    assert_true(g_peers[1].received < 100); /* in-flight data was lost */
    /* the dead id is gone */
    uint8_t b[8] = {0};
    assert_int_equal(nk_rt_send(g_peers[0].rt, conn, 1, b, 8), NK_ECLOSED);
    /* a refusal window makes reconnects fail fast, then they work again */
    nk_sim_net_refuse_until(s, 1, 2, nk_sim_now(s) + NK_NSEC_PER_SEC);
    connect_client(s, NK_CONN_FRAMED);
    assert_int_equal(g_peers[0].connect_status, NK_ECONNREFUSED);
    nk_sim_run_until(s, nk_sim_now(s) + NK_NSEC_PER_SEC);
    connect_client(s, NK_CONN_FRAMED);
    assert_int_equal(g_peers[0].connect_status, NK_OK);
    nk_sim_free(s);
}

static void test_partition_holds_then_delivers_in_order(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(9, NULL);
    uint64_t conn = connect_client(s, NK_CONN_FRAMED);
    nk_sim_net_partition(s, 1, 2, true); /* c -> srv only */
    send_seqs(conn, 0, 50);
    nk_sim_run_until(s, nk_sim_now(s) + 3 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[1].received, 0);
    assert_true(nk_sim_net_blocked(s, 1, 2));
    assert_false(nk_sim_net_blocked(s, 2, 1));
    /* new connects across a partition time out */
    connect_client(s, NK_CONN_FRAMED);
    nk_sim_run_until(s, nk_sim_now(s) + 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].connect_status, NK_ETIMEDOUT);
    send_seqs(conn, 50, 50);
    nk_sim_net_heal(s, 1, 2);
    nk_sim_run_until(s, nk_sim_now(s) + 3 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[1].received, 100);
    assert_int_equal(g_peers[1].order_errors, 0);
    nk_sim_free(s);
}

static void test_refused_when_nobody_listens_or_node_down(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(11, NULL);
    uint64_t conn = 0;
    assert_int_equal(nk_rt_connect(g_peers[0].rt, "srv:9001", NK_CONN_FRAMED, &handlers,
                                   &g_peers[0], &conn),
                     NK_OK);
    nk_sim_run_until(s, nk_sim_now(s) + NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].connect_status, NK_ECONNREFUSED);
    assert_int_equal(nk_rt_connect(g_peers[0].rt, "nohost:1", NK_CONN_FRAMED, &handlers,
                                   &g_peers[0], &conn),
                     NK_EADDR);
    /* an established connection breaks when the server node crashes */
    uint64_t c2 = connect_client(s, NK_CONN_FRAMED);
    (void)c2;
    assert_int_equal(g_peers[0].connect_status, NK_OK);
    nk_sim_node_crash(s, 2);
    nk_sim_run_until(s, nk_sim_now(s) + NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].closes, 1);
    connect_client(s, NK_CONN_FRAMED);
    assert_int_equal(g_peers[0].connect_status, NK_ECONNREFUSED);
    nk_sim_free(s);
}

static void test_raw_stream_bytes_arrive_in_order_possibly_split(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(13, NULL);
    uint64_t conn = connect_client(s, NK_CONN_RAW);
    /* raw connections reject frames and vice versa */
    assert_int_equal(nk_rt_send(g_peers[0].rt, conn, 1, "x", 1), NK_EINVAL);
    uint8_t all[2000];
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)(i * 7);
    }
    for (size_t off = 0; off < sizeof(all); off += 100) {
        assert_int_equal(nk_rt_send_raw(g_peers[0].rt, conn, all + off, 100), NK_OK);
    }
    nk_sim_run_until(s, nk_sim_now(s) + 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[1].raw_len, sizeof(all));
    assert_memory_equal(g_peers[1].raw, all, sizeof(all));
    assert_true(g_peers[1].raw_chunks > 20); /* some sends arrived split */
    nk_sim_free(s);
}

static void test_local_close_reaches_peer_after_data(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(15, NULL);
    uint64_t conn = connect_client(s, NK_CONN_FRAMED);
    send_seqs(conn, 0, 20);
    assert_int_equal(nk_rt_close(g_peers[0].rt, conn), NK_OK);
    nk_sim_run_until(s, nk_sim_now(s) + 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[1].received, 20); /* data first, then the close */
    assert_int_equal(g_peers[1].closes, 1);
    assert_int_equal(g_peers[0].closes, 0); /* no callback for a local close */
    nk_sim_free(s);
}

static void test_send_before_connect_is_queued_or_lost_with_it(void **state)
{
    (void)state;
    nk_sim *s = two_nodes(17, NULL);
    uint64_t conn = 0;
    assert_int_equal(nk_rt_connect(g_peers[0].rt, "srv:9000", NK_CONN_FRAMED, &handlers,
                                   &g_peers[0], &conn),
                     NK_OK);
    send_seqs(conn, 0, 10); /* before on_connect */
    nk_sim_run_until(s, nk_sim_now(s) + NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].connect_status, NK_OK);
    assert_int_equal(g_peers[1].received, 10);
    assert_int_equal(g_peers[1].order_errors, 0);
    /* to a port nobody listens on: the send is accepted, the data lost */
    assert_int_equal(nk_rt_connect(g_peers[0].rt, "srv:9999", NK_CONN_FRAMED, &handlers,
                                   &g_peers[0], &conn),
                     NK_OK);
    send_seqs(conn, 10, 5);
    nk_sim_run_until(s, nk_sim_now(s) + NK_NSEC_PER_SEC);
    assert_int_equal(g_peers[0].connect_status, NK_ECONNREFUSED);
    assert_int_equal(g_peers[1].received, 10);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_preserved_despite_latency_tail),
        cmocka_unit_test(test_flap_breaks_both_ends_and_loses_in_flight),
        cmocka_unit_test(test_partition_holds_then_delivers_in_order),
        cmocka_unit_test(test_refused_when_nobody_listens_or_node_down),
        cmocka_unit_test(test_raw_stream_bytes_arrive_in_order_possibly_split),
        cmocka_unit_test(test_local_close_reaches_peer_after_data),
        cmocka_unit_test(test_send_before_connect_is_queued_or_lost_with_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
