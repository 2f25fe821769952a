/*
 * test_coord.c - the coordinator: codec round trips and malformed input;
 * service + client on the simulated runtime (liveness, learned routing,
 * allocator fences across power loss, outages, queued reports, restarts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/coord/client.h"
#include "nokv/coord/service.h"
#include "nokv/proto/coord.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/proto/wire.h"
#include "sim/coord_app.h"
#include "sim/sim.h"

#define MS NK_NSEC_PER_MSEC
#define SEC NK_NSEC_PER_SEC

/* ------------------------------------------------------------ helpers --- */

static nk_region mkregion(uint64_t id, const char *start, const char *end, uint64_t ver,
                          uint64_t conf, uint32_t n_peers)
{
    nk_region r;
    nk_region_init_full(&r, id);
    assert_int_equal(nk_region_set_range(&r, start, strlen(start), end, strlen(end)), NK_OK);
    r.epoch.version = ver;
    r.epoch.conf_version = conf;
    for (uint32_t i = 0; i < n_peers; i++) {
        nk_region_peer p = {i + 1, id * 100 + i + 1, NK_RAFT_VOTER};
        assert_int_equal(nk_region_peer_set(&r, &p), NK_OK);
    }
    return r;
}

static nk_coord_region_report mkreport(uint64_t id, const char *start, const char *end,
                                       uint64_t ver, uint64_t conf, uint64_t term,
                                       uint64_t leader_store)
{
    nk_coord_region_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.region = mkregion(id, start, end, ver, conf, 3);
    rep.term = term;
    rep.leader_store_id = leader_store;
    rep.leader_peer_id = leader_store ? id * 100 + leader_store : 0;
    rep.applied_index = 10 * term;
    return rep;
}

/* --------------------------------------------------------------- codec --- */

static void roundtrip_req(nk_coord_req *q)
{
    nk_buf b = {0};
    nk_coord_req d;
    assert_int_equal(nk_coord_req_encode(q, &b), NK_OK);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &d), NK_OK);
    assert_int_equal(d.id, q->id);
    assert_int_equal(d.op, q->op);
    switch (q->op) {
    case NK_COORD_STORE_HEARTBEAT:
        assert_int_equal(d.hb.store_id, q->hb.store_id);
        assert_string_equal(d.hb.addr, q->hb.addr);
        assert_int_equal(d.hb.available, q->hb.available);
        break;
    case NK_COORD_REGION_REPORT:
        assert_int_equal(d.report.region.id, q->report.region.id);
        assert_int_equal(d.report.region.epoch.version, q->report.region.epoch.version);
        assert_int_equal(d.report.region.n_peers, q->report.region.n_peers);
        assert_int_equal(d.report.leader_peer_id, q->report.leader_peer_id);
        assert_int_equal(d.report.term, q->report.term);
        assert_int_equal(d.report.applied_index, q->report.applied_index);
        break;
    case NK_COORD_GET_REGION_BY_KEY:
    case NK_COORD_LIST_REGIONS:
        assert_int_equal(d.key_len, q->key_len);
        assert_memory_equal(d.key, q->key, q->key_len);
        assert_int_equal(d.limit, q->limit);
        break;
    default:
        assert_int_equal(d.region_id | d.store_id | d.count, q->region_id | q->store_id | q->count);
        break;
    }
    /* every strict prefix is refused, and so is every single flipped bit */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_true(nk_coord_req_decode(b.data, cut, &d) < 0);
    }
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x10;
        assert_true(nk_coord_req_decode(b.data, b.len, &d) < 0);
        b.data[i] ^= 0x10;
    }
    nk_buf_free(&b);
}

static void test_codec_requests_round_trip(void **state)
{
    (void)state;
    nk_coord_req q;
    memset(&q, 0, sizeof(q));
    q.id = 77;
    q.op = NK_COORD_STORE_HEARTBEAT;
    q.hb.store_id = 3;
    snprintf(q.hb.addr, sizeof(q.hb.addr), "127.0.0.1:20170");
    q.hb.region_count = 12;
    q.hb.leader_count = 4;
    q.hb.capacity = UINT64_C(1) << 40;
    q.hb.available = UINT64_C(1) << 39;
    roundtrip_req(&q);

    memset(&q, 0, sizeof(q));
    q.id = 78;
    q.op = NK_COORD_REGION_REPORT;
    q.report = mkreport(9, "a", "m", 4, 2, 7, 2);
    roundtrip_req(&q);

    memset(&q, 0, sizeof(q));
    q.id = UINT64_MAX;
    q.op = NK_COORD_GET_REGION_BY_KEY;
    q.key = (const uint8_t *)"user:42";
    q.key_len = 7;
    roundtrip_req(&q);
    q.op = NK_COORD_LIST_REGIONS;
    q.limit = 5;
    roundtrip_req(&q);

    const uint8_t ops[] = {NK_COORD_GET_REGION, NK_COORD_GET_STORE, NK_COORD_LIST_STORES,
                           NK_COORD_ALLOC_ID, NK_COORD_TSO};
    for (size_t i = 0; i < sizeof(ops); i++) {
        memset(&q, 0, sizeof(q));
        q.id = i + 1;
        q.op = ops[i];
        if (ops[i] == NK_COORD_GET_REGION) {
            q.region_id = 5;
        } else if (ops[i] == NK_COORD_GET_STORE) {
            q.store_id = 6;
        } else if (ops[i] != NK_COORD_LIST_STORES) {
            q.count = 1000;
        }
        roundtrip_req(&q);
    }
    /* the standalone report envelope (for localmeta's pending events) */
    nk_coord_region_report rep = mkreport(4, "", "k", 2, 3, 5, 1), back;
    nk_buf b = {0};
    assert_int_equal(nk_coord_report_encode(&rep, &b), NK_OK);
    assert_int_equal(nk_coord_report_decode(b.data, b.len, &back), NK_OK);
    assert_int_equal(back.region.id, 4);
    assert_int_equal(back.region.end_len, 1);
    assert_int_equal(back.leader_store_id, 1);
    /* a request envelope is not a report envelope */
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_REGION_REPORT;
    q.report = rep;
    nk_buf b2 = {0};
    assert_int_equal(nk_coord_req_encode(&q, &b2), NK_OK);
    assert_int_equal(nk_coord_report_decode(b2.data, b2.len, &back), NK_EPROTO);
    nk_buf_free(&b);
    nk_buf_free(&b2);
}

static void test_codec_responses_round_trip(void **state)
{
    (void)state;
    static nk_coord_resp p, d;
    memset(&p, 0, sizeof(p));
    p.id = 5;
    p.op = NK_COORD_LIST_REGIONS;
    p.n_regions = 3;
    p.regions = calloc(3, sizeof(*p.regions));
    p.regions[0].r = mkreport(1, "", "g", 1, 1, 1, 1);
    p.regions[1].r = mkreport(2, "g", "p", 2, 1, 3, 2);
    snprintf(p.regions[1].leader_addr, sizeof(p.regions[1].leader_addr), "s2:20170");
    p.regions[2].r = mkreport(3, "p", "", 2, 5, 1, 0);
    p.more = true;
    nk_buf b = {0};
    assert_int_equal(nk_coord_resp_encode(&p, &b), NK_OK);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_OK);
    assert_int_equal(d.n_regions, 3);
    assert_true(d.more);
    assert_int_equal(d.regions[1].r.region.id, 2);
    assert_string_equal(d.regions[1].leader_addr, "s2:20170");
    assert_int_equal(d.regions[2].r.leader_peer_id, 0);
    nk_coord_resp_free(&d);
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_true(nk_coord_resp_decode(b.data, cut, &d) < 0);
        assert_null(d.regions);
    }
    free(p.regions);

    memset(&p, 0, sizeof(p));
    p.id = 6;
    p.op = NK_COORD_LIST_STORES;
    p.n_stores = 2;
    p.stores = calloc(2, sizeof(*p.stores));
    p.stores[0].store_id = 1;
    p.stores[0].alive = true;
    p.stores[1].store_id = 2;
    p.stores[1].heartbeat_age_ms = NK_COORD_AGE_NEVER;
    assert_int_equal(nk_coord_resp_encode(&p, &b), NK_OK);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_OK);
    assert_int_equal(d.n_stores, 2);
    assert_true(d.stores[0].alive);
    assert_false(d.stores[1].alive);
    assert_true(d.stores[1].heartbeat_age_ms == NK_COORD_AGE_NEVER);
    nk_coord_resp_free(&d);
    free(p.stores);

    /* an error carries its code and text, and no result fields */
    memset(&p, 0, sizeof(p));
    p.id = 7;
    p.op = NK_COORD_GET_REGION;
    p.code = NK_COORD_NOT_FOUND;
    snprintf(p.msg, sizeof(p.msg), "region 9 is not known");
    assert_int_equal(nk_coord_resp_encode(&p, &b), NK_OK);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_OK);
    assert_int_equal(d.code, NK_COORD_NOT_FOUND);
    assert_string_equal(d.msg, "region 9 is not known");
    assert_int_equal(nk_coord_code_err(d.code), NK_ENOENT);

    memset(&p, 0, sizeof(p));
    p.id = 8;
    p.op = NK_COORD_TSO;
    p.first = 1000;
    p.count = 10;
    assert_int_equal(nk_coord_resp_encode(&p, &b), NK_OK);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_OK);
    assert_int_equal(d.first, 1000);
    assert_int_equal(d.count, 10);
    nk_buf_free(&b);
}

static void test_codec_rejects_malformed(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_coord_req q;
    static nk_coord_resp d;
    /* unknown op */
    assert_int_equal(nk_wire_begin(&b, 0x4352, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, 99);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &q), NK_EPROTO);
    /* trailing bytes after a valid body */
    assert_int_equal(nk_wire_begin(&b, 0x4352, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_ALLOC_ID);
    nk_wire_put_uvar(&b, 10);
    nk_wire_put_u8(&b, 0);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &q), NK_EPROTO);
    /* a newer version than this build knows */
    assert_int_equal(nk_wire_begin(&b, 0x4352, 2), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_ALLOC_ID);
    nk_wire_put_uvar(&b, 10);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &q), NK_EPROTO);
    /* a key over the bound, declared in the length prefix */
    assert_int_equal(nk_wire_begin(&b, 0x4352, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_GET_REGION_BY_KEY);
    nk_wire_put_uvar(&b, NK_COORD_KEY_MAX + 1);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &q), NK_EPROTO);
    /* a report whose leader is not one of the region's peers */
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_REGION_REPORT;
    q.report = mkreport(1, "", "", 1, 1, 1, 2);
    q.report.leader_peer_id = 999;
    assert_int_equal(nk_coord_req_encode(&q, &b), NK_OK);
    assert_int_equal(nk_coord_req_decode(b.data, b.len, &q), NK_EPROTO);
    /* a response with a hostile list count */
    assert_int_equal(nk_wire_begin(&b, 0x4350, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_LIST_STORES);
    nk_wire_put_u8(&b, NK_COORD_OK);
    nk_wire_put_str(&b, "");
    nk_wire_put_uvar(&b, UINT64_C(1) << 40);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_EPROTO);
    /* an allocation of zero numbers, or one that wraps */
    assert_int_equal(nk_wire_begin(&b, 0x4350, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_ALLOC_ID);
    nk_wire_put_u8(&b, NK_COORD_OK);
    nk_wire_put_str(&b, "");
    nk_wire_put_uvar(&b, UINT64_MAX);
    nk_wire_put_uvar(&b, 2);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_EPROTO);
    /* a boolean that is neither 0 nor 1 */
    assert_int_equal(nk_wire_begin(&b, 0x4350, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_REGION_REPORT);
    nk_wire_put_u8(&b, NK_COORD_OK);
    nk_wire_put_str(&b, "");
    nk_wire_put_u8(&b, 2);
    nk_wire_end(&b);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_EPROTO);
    /* unknown code */
    assert_int_equal(nk_wire_begin(&b, 0x4350, 1), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_COORD_TSO);
    nk_wire_put_u8(&b, 17);
    nk_wire_put_str(&b, "");
    nk_wire_end(&b);
    assert_int_equal(nk_coord_resp_decode(b.data, b.len, &d), NK_EPROTO);
    /* encoders refuse what decoders would */
    memset(&q, 0, sizeof(q));
    q.op = 0;
    assert_int_equal(nk_coord_req_encode(&q, &b), NK_EINVAL);
    q.op = NK_COORD_GET_REGION_BY_KEY;
    q.key_len = NK_COORD_KEY_MAX + 1;
    q.key = calloc(1, q.key_len);
    assert_int_equal(nk_coord_req_encode(&q, &b), NK_ETOOBIG);
    free((void *)q.key);
    nk_buf_free(&b);
}

/* --------------------------------------------------------- sim world --- */

enum { COORD = 1, S1 = 2, S2 = 3 };

/* A store node: only its runtime is used; the test drives clients on it. */
static nk_rt *g_store_rt[4]; /* by node id */

static int store_start(nk_rt *rt, void *cfg, void **state)
{
    g_store_rt[(uintptr_t)cfg] = rt;
    *state = rt;
    return NK_OK;
}

static void store_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app store_app = {"store", store_start, store_stop};

static nk_sim_coord_cfg g_coord;

static nk_sim *world(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    memset(&g_coord, 0, sizeof(g_coord));
    g_coord.svc.addr = "coord:2379";
    g_coord.svc.workdir = "/coord";
    g_coord.svc.window = 100;
    nk_sim_add_node(s, "coord", &nk_sim_coord_app, &g_coord, NULL);
    nk_sim_add_node(s, "s1", &store_app, (void *)(uintptr_t)S1, NULL);
    nk_sim_add_node(s, "s2", &store_app, (void *)(uintptr_t)S2, NULL);
    assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
    assert_int_equal(nk_sim_node_start(s, S1), NK_OK);
    assert_int_equal(nk_sim_node_start(s, S2), NK_OK);
    return s;
}

static void run_for(nk_sim *s, uint64_t ns)
{
    nk_sim_run_until(s, nk_sim_now(s) + ns);
}

static nk_coord_client *client_on(uint32_t node, uint64_t store_id, uint64_t timeout_ns)
{
    nk_coord_client_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.addr = "coord:2379";
    cc.store_id = store_id;
    cc.timeout_ns = timeout_ns;
    cc.backoff_max_ns = 2 * SEC;
    nk_coord_client *c = NULL;
    assert_int_equal(nk_coord_client_new(g_store_rt[node], &cc, &c, NULL), NK_OK);
    return c;
}

/* One call's outcome. */
typedef struct result {
    int done;
    int status;
    uint8_t code;
    bool accepted, need_full;
    nk_coord_region_info region;
    nk_coord_store_info store;
    size_t n;
    uint64_t ids[8]; /* region or store ids of a list */
    bool more;
    uint64_t first, count;
} result;

static void record(void *arg, int status, const nk_coord_resp *resp)
{
    result *r = arg;
    r->done++;
    r->status = status;
    if (resp == NULL) {
        return;
    }
    r->code = resp->code;
    r->accepted = resp->accepted;
    r->need_full = resp->need_full_report;
    r->region = resp->region;
    r->store = resp->store;
    r->more = resp->more;
    r->first = resp->first;
    r->count = resp->count;
    r->n = resp->n_regions ? resp->n_regions : resp->n_stores;
    for (size_t i = 0; i < r->n && i < 8; i++) {
        r->ids[i] = resp->n_regions ? resp->regions[i].r.region.id : resp->stores[i].store_id;
    }
}

/* Run until the call completes (bounded by the simulated time given). */
static void wait_done(nk_sim *s, result *r, uint64_t max_ns)
{
    uint64_t end = nk_sim_now(s) + max_ns;
    while (!r->done && nk_sim_now(s) < end) {
        run_for(s, 10 * MS);
    }
    assert_int_equal(r->done, 1);
}

static void heartbeat(nk_sim *s, nk_coord_client *c, uint64_t store_id, const char *addr, result *r)
{
    nk_coord_store_hb hb;
    memset(&hb, 0, sizeof(hb));
    hb.store_id = store_id;
    snprintf(hb.addr, sizeof(hb.addr), "%s", addr);
    hb.region_count = 1;
    memset(r, 0, sizeof(*r));
    assert_int_equal(nk_coord_heartbeat(c, &hb, record, r), NK_OK);
    wait_done(s, r, 5 * SEC);
}

static void report(nk_sim *s, nk_coord_client *c, const nk_coord_region_report *rep, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(nk_coord_report_region(c, rep, record, r), NK_OK);
    wait_done(s, r, 5 * SEC);
}

static void by_key(nk_sim *s, nk_coord_client *c, const char *key, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(nk_coord_get_region_by_key(c, key, strlen(key), record, r), NK_OK);
    wait_done(s, r, 5 * SEC);
}

static void get_store(nk_sim *s, nk_coord_client *c, uint64_t id, result *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(nk_coord_get_store(c, id, record, r), NK_OK);
    wait_done(s, r, 5 * SEC);
}

/* ----------------------------------------------------------- liveness --- */

static void fill_stats(void *arg, nk_coord_store_hb *hb)
{
    hb->region_count = (uint64_t)(uintptr_t)arg;
    hb->leader_count = 1;
}

static void test_heartbeats_make_a_store_alive_and_silence_dead(void **state)
{
    (void)state;
    nk_sim *s = world(1);
    nk_coord_client *c1 = client_on(S1, 1, 0);
    nk_coord_client *c2 = client_on(S2, 2, 0);
    result r;
    get_store(s, c2, 1, &r);
    assert_int_equal(r.status, NK_ENOENT);
    assert_int_equal(r.code, NK_COORD_NOT_FOUND);

    nk_coord_reporter_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.store_id = 1;
    rc.addr = "s1:20170";
    rc.stats = fill_stats;
    rc.arg = (void *)(uintptr_t)7;
    nk_coord_reporter *rep = NULL;
    assert_int_equal(nk_coord_reporter_new(g_store_rt[S1], c1, &rc, &rep), NK_OK);
    run_for(s, 12 * SEC); /* longer than the 5 s timeout: beats keep it alive */
    get_store(s, c2, 1, &r);
    assert_int_equal(r.status, NK_OK);
    assert_true(r.store.alive);
    assert_string_equal(r.store.addr, "s1:20170");
    assert_int_equal(r.store.region_count, 7);
    assert_true(r.store.heartbeat_age_ms <= 1100);
    nk_coord_reporter_status st;
    nk_coord_reporter_status_get(rep, &st);
    assert_true(st.coordinator_up);
    assert_true(st.heartbeats_ok >= 10);
    assert_int_equal(st.heartbeats_failed, 0);

    /* the beats stop: after the timeout the store is dead */
    nk_coord_reporter_free(rep);
    run_for(s, 6 * SEC);
    get_store(s, c2, 1, &r);
    assert_int_equal(r.status, NK_OK);
    assert_false(r.store.alive);
    assert_true(r.store.heartbeat_age_ms >= 5000);

    /* a beat revives it; an address held by a live store is refused */
    heartbeat(s, c1, 1, "s1:20170", &r);
    assert_true(r.accepted);
    assert_false(r.need_full); /* known store */
    heartbeat(s, c2, 2, "s1:20170", &r);
    assert_int_equal(r.status, NK_OK);
    assert_false(r.accepted);
    heartbeat(s, c2, 2, "s2:20170", &r);
    assert_true(r.accepted);
    assert_true(r.need_full); /* a store the coordinator never saw */
    heartbeat(s, c2, 0, "s2:20170", &r);
    assert_int_equal(r.status, NK_EINVAL);
    heartbeat(s, c2, 1, "s1:20170", &r); /* c2 said HELLO as store 2 */
    assert_int_equal(r.status, NK_EINVAL);

    memset(&r, 0, sizeof(r));
    nk_coord_req q;
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_LIST_STORES;
    assert_int_equal(nk_coord_call(c2, &q, record, &r), NK_OK);
    wait_done(s, &r, 5 * SEC);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.ids[0], 1);
    assert_int_equal(r.ids[1], 2);
    nk_coord_client_free(c1);
    nk_coord_client_free(c2);
    nk_sim_free(s);
}

/* ------------------------------------------------------------ routing --- */

static void test_reports_build_routing_newest_epoch_wins(void **state)
{
    (void)state;
    nk_sim *s = world(2);
    nk_coord_client *c = client_on(S1, 0, 0); /* HELLO as no store: it beats for two */
    result r;
    heartbeat(s, c, 1, "s1:20170", &r);
    heartbeat(s, c, 2, "s2:20170", &r);
    by_key(s, c, "k", &r);
    assert_int_equal(r.status, NK_ENOENT);

    /* the seed region covers everything */
    nk_coord_region_report rep = mkreport(1, "", "", 1, 1, 1, 1);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    by_key(s, c, "k", &r);
    assert_int_equal(r.status, NK_OK);
    assert_int_equal(r.region.r.region.id, 1);
    assert_int_equal(r.region.r.leader_store_id, 1);
    assert_string_equal(r.region.leader_addr, "s1:20170");

    /* a leader change inside the epoch moves the leader; an older term does not */
    rep = mkreport(1, "", "", 1, 1, 3, 2);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    rep = mkreport(1, "", "", 1, 1, 2, 3);
    report(s, c, &rep, &r);
    assert_false(r.accepted);
    by_key(s, c, "zzz", &r);
    assert_int_equal(r.region.r.leader_store_id, 2);
    assert_int_equal(r.region.r.term, 3);
    assert_string_equal(r.region.leader_addr, "s2:20170");

    /* split: region 2 takes [m, ""), version 2: it supersedes region 1 */
    rep = mkreport(2, "m", "", 2, 1, 1, 1);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    by_key(s, c, "x", &r);
    assert_int_equal(r.region.r.region.id, 2);
    by_key(s, c, "a", &r);
    assert_int_equal(r.status, NK_ENOENT); /* the old descriptor is gone, not trusted */
    rep = mkreport(1, "", "m", 2, 1, 3, 2);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    by_key(s, c, "a", &r);
    assert_int_equal(r.region.r.region.id, 1);
    assert_int_equal(r.region.r.region.epoch.version, 2);
    by_key(s, c, "m", &r);
    assert_int_equal(r.region.r.region.id, 2);

    /* stale: the pre-split descriptor, and a conf change older than known */
    rep = mkreport(1, "", "", 1, 1, 9, 1);
    report(s, c, &rep, &r);
    assert_int_equal(r.status, NK_OK);
    assert_false(r.accepted);
    /* conflict: an overlapping range that is not newer */
    rep = mkreport(3, "c", "p", 2, 1, 1, 1);
    report(s, c, &rep, &r);
    assert_false(r.accepted);
    by_key(s, c, "d", &r);
    assert_int_equal(r.region.r.region.id, 1);
    /* a membership change of region 2 (conf_version 2) is learned */
    rep = mkreport(2, "m", "", 2, 2, 1, 1);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_get_region(c, 2, record, &r), NK_OK);
    wait_done(s, &r, 5 * SEC);
    assert_int_equal(r.region.r.region.epoch.conf_version, 2);

    /* merge: region 1 grows back over [m, "") with version 3 */
    rep = mkreport(1, "", "", 3, 1, 4, 1);
    report(s, c, &rep, &r);
    assert_true(r.accepted);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_get_region(c, 2, record, &r), NK_OK);
    wait_done(s, &r, 5 * SEC);
    assert_int_equal(r.status, NK_ENOENT);

    /* list in key order, one page at a time */
    rep = mkreport(1, "", "f", 4, 1, 4, 1);
    report(s, c, &rep, &r);
    rep = mkreport(5, "f", "", 4, 1, 1, 2);
    report(s, c, &rep, &r);
    nk_coord_req q;
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_LIST_REGIONS;
    q.limit = 1;
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_call(c, &q, record, &r), NK_OK);
    wait_done(s, &r, 5 * SEC);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], 1);
    assert_true(r.more);
    q.key = (const uint8_t *)"f";
    q.key_len = 1;
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_call(c, &q, record, &r), NK_OK);
    wait_done(s, &r, 5 * SEC);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], 5);
    assert_false(r.more);

    /* all of it survives a power loss: accepted means durable */
    nk_sim_node_crash(s, COORD);
    run_for(s, 100 * MS);
    assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
    nk_coord_service_info info;
    nk_coord_service_info_get(nk_sim_node_state(s, COORD), &info);
    assert_int_equal(info.regions, 2);
    assert_int_equal(info.stores, 2);
    run_for(s, 3 * SEC); /* the client reconnects */
    by_key(s, c, "g", &r);
    assert_int_equal(r.status, NK_OK);
    assert_int_equal(r.region.r.region.id, 5);
    assert_int_equal(r.region.r.region.epoch.version, 4);
    get_store(s, c, 2, &r);
    assert_int_equal(r.status, NK_OK);
    assert_false(r.store.alive); /* no beat since the restart */
    assert_true(r.store.heartbeat_age_ms == NK_COORD_AGE_NEVER);
    nk_coord_client_free(c);
    nk_sim_free(s);
}

/* ---------------------------------------------------------- allocator --- */

typedef struct alloc_run {
    nk_rt *rt;
    nk_coord_client *c;
    bool tso;
    nk_rand rnd;
    uint64_t last_end; /* every number below was handed out (or skipped) */
    uint64_t got, failed, dups;
    int outstanding;
    bool stop;
} alloc_run;

static void alloc_next(alloc_run *a);

static void alloc_retry(void *arg)
{
    alloc_run *a = arg;
    a->outstanding--; /* the timer counted as outstanding */
    alloc_next(a);
}

static void alloc_cb(void *arg, int status, const nk_coord_resp *resp)
{
    alloc_run *a = arg;
    a->outstanding--;
    if (status == NK_ESTOPPED) {
        return;
    }
    if (status == NK_OK) {
        if (resp->first < a->last_end) {
            a->dups++;
        }
        a->last_end = resp->first + resp->count;
        a->got++;
    } else {
        assert_true(status == NK_EAGAIN || status == NK_ETIMEDOUT);
        a->failed++;
        /* a failure during an outage comes back at once: retry a bit later */
        if (!a->stop) {
            a->outstanding++;
            nk_rt_timer_start(a->rt, 50 * MS, alloc_retry, a);
        }
        return;
    }
    alloc_next(a);
}

static void alloc_next(alloc_run *a)
{
    if (a->stop) {
        return;
    }
    uint64_t count = 1 + nk_rand_below(&a->rnd, 60);
    int rc = a->tso ? nk_coord_tso(a->c, count, alloc_cb, a)
                    : nk_coord_alloc_id(a->c, count, alloc_cb, a);
    assert_int_equal(rc, NK_OK);
    a->outstanding++;
}

static void test_alloc_and_tso_never_repeat_across_power_loss(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        nk_sim *s = world(seed);
        alloc_run ids, tss;
        memset(&ids, 0, sizeof(ids));
        memset(&tss, 0, sizeof(tss));
        ids.c = client_on(S1, 1, SEC);
        tss.c = client_on(S2, 2, SEC);
        ids.rt = g_store_rt[S1];
        tss.rt = g_store_rt[S2];
        tss.tso = true;
        nk_sim_rand_stream(s, "alloc.ids", &ids.rnd);
        nk_sim_rand_stream(s, "alloc.tss", &tss.rnd);
        nk_rand faults;
        nk_sim_rand_stream(s, "faults", &faults);
        alloc_next(&ids);
        alloc_next(&tss);
        uint64_t crashes = 0;
        for (int round = 0; round < 6; round++) {
            run_for(s, nk_rand_between(&faults, 50, 1500) * MS);
            if (round == 2) {
                /* power loss between the fence's fsync and its rename */
                nk_sim_failpoint_arm(s, COORD, "coord.fence.before_rename", NK_SIM_FP_CRASH, 1,
                                     (nk_ratio){1, 1});
                run_for(s, 3 * SEC);
            } else {
                nk_sim_node_crash(s, COORD);
            }
            if (!nk_sim_node_up(s, COORD)) {
                crashes++;
            }
            run_for(s, nk_rand_between(&faults, 10, 800) * MS);
            if (!nk_sim_node_up(s, COORD)) {
                assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
            }
        }
        run_for(s, 4 * SEC);
        ids.stop = tss.stop = true;
        run_for(s, 3 * SEC);
        assert_true(crashes >= 5);
        assert_int_equal(ids.dups, 0);
        assert_int_equal(tss.dups, 0);
        assert_true(ids.got > 50);
        assert_true(tss.got > 50);
        assert_true(ids.failed > 0); /* the outages were seen, and survived */
        assert_int_equal(ids.outstanding, 0);
        assert_int_equal(tss.outstanding, 0);
        /* most requests cost no I/O: the fence moves in windows */
        nk_coord_service_stats st;
        nk_coord_service_stats_get(nk_sim_node_state(s, COORD), &st);
        assert_true(st.fence_writes < st.requests);
        nk_coord_client_free(ids.c);
        nk_coord_client_free(tss.c);
        nk_sim_free(s);
    }
}

/* ------------------------------------------------------------- outage --- */

static void test_client_fails_cleanly_while_down_and_recovers(void **state)
{
    (void)state;
    nk_sim *s = world(4);
    nk_coord_client *c = client_on(S1, 1, SEC);
    result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 2 * SEC);
    assert_int_equal(r.status, NK_OK);
    uint64_t before = r.first;

    nk_sim_node_crash(s, COORD);
    /* every call completes, with a retryable error, never hangs */
    result many[20];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 20; i++) {
        assert_int_equal(nk_coord_alloc_id(c, 1, record, &many[i]), NK_OK);
        run_for(s, 150 * MS);
    }
    run_for(s, 2 * SEC);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(many[i].done, 1);
        assert_true(many[i].status == NK_EAGAIN || many[i].status == NK_ETIMEDOUT);
    }
    nk_coord_client_stats cs;
    nk_coord_client_stats_get(c, &cs);
    assert_true(cs.connects >= 2); /* it kept trying */
    assert_true(cs.backoff_ns > 50 * MS);
    assert_int_equal(cs.pending, 0);

    /* back: the next attempt after the backoff connects and calls succeed */
    assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
    run_for(s, 3 * SEC);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 2 * SEC);
    assert_int_equal(r.status, NK_OK);
    assert_true(r.first > before);

    /* a partition: the connection stays open, answers stop; the request
     * times out, and the client drops the silent connection */
    nk_sim_net_partition(s, S1, COORD, false);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_tso(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 3 * SEC);
    assert_int_equal(r.status, NK_ETIMEDOUT);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_tso(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 3 * SEC);
    assert_true(r.status == NK_ETIMEDOUT || r.status == NK_EAGAIN);
    nk_sim_net_heal_all(s);
    run_for(s, 4 * SEC);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_tso(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 3 * SEC);
    assert_int_equal(r.status, NK_OK);

    /* freeing the client completes what is outstanding */
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_tso(c, 1, record, &r), NK_OK);
    nk_coord_client_free(c);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, NK_ESTOPPED);
    nk_sim_free(s);
}

static int g_full_reports, g_delivered, g_delivered_accepted;
static uint64_t g_delivered_conf2;

static void on_full_report(void *arg)
{
    (void)arg;
    g_full_reports++;
}

static void on_delivered(void *arg, const nk_coord_region_report *rep, bool accepted)
{
    (void)arg;
    g_delivered++;
    g_delivered_accepted += accepted;
    if (rep->region.id == 2) {
        g_delivered_conf2 = rep->region.epoch.conf_version;
    }
}

static void test_reports_queued_during_outage_delivered_on_return(void **state)
{
    (void)state;
    nk_sim *s = world(5);
    nk_coord_client *c = client_on(S1, 1, SEC);
    nk_coord_reporter_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.store_id = 1;
    rc.addr = "s1:20170";
    rc.full_report = on_full_report;
    rc.delivered = on_delivered;
    g_full_reports = g_delivered = g_delivered_accepted = 0;
    nk_coord_reporter *rep = NULL;
    assert_int_equal(nk_coord_reporter_new(g_store_rt[S1], c, &rc, &rep), NK_OK);
    run_for(s, 2 * SEC);
    assert_int_equal(g_full_reports, 1); /* first contact: send everything */

    nk_sim_node_crash(s, COORD);
    run_for(s, 3 * SEC);
    nk_coord_reporter_status st;
    nk_coord_reporter_status_get(rep, &st);
    assert_false(st.coordinator_up);
    assert_true(st.heartbeats_failed >= 1);
    /* the store keeps changing while the coordinator is away */
    nk_coord_region_report r1 = mkreport(1, "", "h", 2, 1, 1, 1);
    nk_coord_region_report r2 = mkreport(2, "h", "", 2, 1, 1, 1);
    assert_int_equal(nk_coord_reporter_report(rep, &r1), NK_OK);
    assert_int_equal(nk_coord_reporter_report(rep, &r2), NK_OK);
    r2 = mkreport(2, "h", "", 2, 2, 2, 2); /* newer news for region 2 replaces the queued */
    assert_int_equal(nk_coord_reporter_report(rep, &r2), NK_OK);
    run_for(s, 5 * SEC);
    nk_coord_reporter_status_get(rep, &st);
    assert_int_equal(st.reports_queued, 2);
    assert_int_equal(st.reports_delivered, 0);

    assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
    run_for(s, 6 * SEC);
    nk_coord_reporter_status_get(rep, &st);
    assert_true(st.coordinator_up);
    assert_int_equal(st.reports_queued, 0);
    assert_int_equal(st.reports_delivered, 2);
    assert_int_equal(g_delivered, 2); /* the store may drop its durable copies now */
    assert_int_equal(g_delivered_accepted, 2);
    assert_int_equal(g_delivered_conf2, 2); /* only the newest report of region 2 went */
    assert_int_equal(g_full_reports, 1);    /* the store was remembered across the crash */
    result r;
    by_key(s, c, "z", &r);
    assert_int_equal(r.status, NK_OK);
    assert_int_equal(r.region.r.region.id, 2);
    assert_int_equal(r.region.r.region.epoch.conf_version, 2);
    assert_int_equal(r.region.r.leader_store_id, 2);
    by_key(s, c, "a", &r);
    assert_int_equal(r.region.r.region.id, 1);

    /* the reporter may go first; the client completes its calls safely */
    nk_coord_reporter_free(rep);
    run_for(s, 2 * SEC);
    nk_coord_client_free(c);
    nk_sim_free(s);
}

/* ------------------------------------------------- hostile connections --- */

static int g_closes;
static uint64_t g_raw_conn;

static void raw_accept(void *ctx, uint64_t l, uint64_t conn, const char *a)
{
    (void)ctx;
    (void)l;
    (void)conn;
    (void)a;
}
static void raw_connect(void *ctx, uint64_t conn, int status)
{
    (void)ctx;
    (void)conn;
    (void)status;
}
static void raw_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *d, size_t len)
{
    (void)ctx;
    (void)conn;
    (void)kind;
    (void)d;
    (void)len;
}
static void raw_close(void *ctx, uint64_t conn, int reason)
{
    (void)ctx;
    (void)reason;
    if (conn == g_raw_conn) {
        g_closes++;
    }
}

static const nk_net_handlers raw_handlers = {raw_accept, raw_connect, raw_message, raw_close};

static void hostile(nk_sim *s, bool with_hello, uint8_t kind, const void *data, size_t len)
{
    nk_rt *rt = g_store_rt[S2];
    assert_int_equal(
        nk_rt_connect(rt, "coord:2379", NK_CONN_FRAMED, &raw_handlers, NULL, &g_raw_conn), NK_OK);
    if (with_hello) {
        nk_hello h;
        memset(&h, 0, sizeof(h));
        h.service = NK_SERVICE_COORD;
        nk_buf b = {0};
        assert_int_equal(nk_hello_encode(&h, &b), NK_OK);
        assert_int_equal(nk_rt_send(rt, g_raw_conn, NK_KIND_HELLO, b.data, b.len), NK_OK);
        nk_buf_free(&b);
    }
    assert_int_equal(nk_rt_send(rt, g_raw_conn, kind, data, len), NK_OK);
    run_for(s, SEC);
}

static void test_malformed_frames_close_only_that_connection(void **state)
{
    (void)state;
    nk_sim *s = world(6);
    nk_coord_client *good = client_on(S1, 1, SEC);
    result r;
    heartbeat(s, good, 1, "s1:1", &r);
    assert_true(r.accepted);

    g_closes = 0;
    nk_buf b = {0};
    nk_coord_req q;
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_ALLOC_ID;
    q.count = 1;
    assert_int_equal(nk_coord_req_encode(&q, &b), NK_OK);
    hostile(s, false, NK_KIND_COORD_REQ, b.data, b.len); /* no HELLO first */
    assert_int_equal(g_closes, 1);
    nk_hello h;
    memset(&h, 0, sizeof(h));
    h.service = NK_SERVICE_RAFT;
    nk_buf hb = {0};
    assert_int_equal(nk_hello_encode(&h, &hb), NK_OK);
    hostile(s, false, NK_KIND_HELLO, hb.data, hb.len); /* the wrong service */
    assert_int_equal(g_closes, 2);
    b.data[b.len - 1] ^= 1;
    hostile(s, true, NK_KIND_COORD_REQ, b.data, b.len); /* bad checksum */
    assert_int_equal(g_closes, 3);
    hostile(s, true, NK_KIND_RAFT_MSG, "x", 1); /* a kind of another service */
    assert_int_equal(g_closes, 4);
    nk_buf_free(&b);
    nk_buf_free(&hb);

    nk_coord_service_stats st;
    nk_coord_service_stats_get(nk_sim_node_state(s, COORD), &st);
    assert_int_equal(st.bad_frames, 4);
    /* the well-behaved client never noticed */
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(good, 3, record, &r), NK_OK);
    wait_done(s, &r, 2 * SEC);
    assert_int_equal(r.status, NK_OK);
    assert_int_equal(r.count, 3);
    nk_coord_client_stats cs;
    nk_coord_client_stats_get(good, &cs);
    assert_int_equal(cs.failures, 0);
    nk_coord_client_free(good);
    nk_sim_free(s);
}

/* ----------------------------------------------------- restart/corrupt --- */

static void test_graceful_restart_and_corrupt_files(void **state)
{
    (void)state;
    nk_sim *s = world(7);
    nk_coord_client *c = client_on(S1, 1, SEC);
    result r;
    heartbeat(s, c, 1, "s1:1", &r);
    nk_coord_region_report rep = mkreport(1, "", "", 1, 1, 1, 1);
    report(s, c, &rep, &r);
    /* leadership is soft state, but a graceful stop writes it */
    rep = mkreport(1, "", "", 1, 1, 2, 2);
    report(s, c, &rep, &r);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(c, 10, record, &r), NK_OK);
    wait_done(s, &r, 2 * SEC);
    uint64_t last = r.first + r.count;
    nk_sim_node_stop(s, COORD);
    run_for(s, SEC);
    assert_false(nk_sim_node_up(s, COORD));

    /* an --id-start above the fence is honoured */
    g_coord.svc.id_start = 1000000;
    assert_int_equal(nk_sim_node_start(s, COORD), NK_OK);
    nk_coord_service_info info;
    nk_coord_service_info_get(nk_sim_node_state(s, COORD), &info);
    assert_false(info.fresh);
    assert_int_equal(info.regions, 1);
    assert_int_equal(info.stores, 1);
    assert_int_equal(info.next_id, 1000000);
    run_for(s, 3 * SEC);
    by_key(s, c, "q", &r);
    assert_int_equal(r.region.r.leader_store_id, 2);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(c, 1, record, &r), NK_OK);
    wait_done(s, &r, 2 * SEC);
    assert_int_equal(r.first, 1000000);
    assert_true(r.first > last);

    /* a second coordinator on the same workdir is refused */
    nk_coord_service *dup = NULL;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(nk_coord_service_start(nk_sim_node_rt(s, COORD), &g_coord.svc, &dup, &eb),
                     NK_EBUSY);
    assert_non_null(strstr(eb.msg, "another coordinator"));

    /* a fence file that does not verify stops the start, naming the file
     * (on the idle node s2, driving the service by hand) */
    nk_rt *rt = g_store_rt[S2];
    nk_coord_service_config sc = g_coord.svc;
    sc.addr = "s2:2379";
    sc.workdir = "/c2";
    nk_coord_service *svc = NULL;
    assert_int_equal(nk_coord_service_start(rt, &sc, &svc, &eb), NK_OK);
    nk_coord_service_info_get(svc, &info);
    assert_true(info.fresh);
    nk_coord_service_free(svc);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, "/c2/COORD.fence", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 5, "\xff", 1), NK_OK);
    nk_rt_file_close(rt, f);
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(nk_coord_service_start(rt, &sc, &svc, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "COORD.fence"));
    assert_non_null(strstr(eb.msg, "--id-start"));
    /* and a catalog without its fence file is refused too */
    assert_int_equal(nk_rt_remove(rt, "/c2/COORD.fence"), NK_OK);
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(nk_coord_service_start(rt, &sc, &svc, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "no COORD.fence"));
    nk_coord_client_free(c);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_requests_round_trip),
        cmocka_unit_test(test_codec_responses_round_trip),
        cmocka_unit_test(test_codec_rejects_malformed),
        cmocka_unit_test(test_heartbeats_make_a_store_alive_and_silence_dead),
        cmocka_unit_test(test_reports_build_routing_newest_epoch_wins),
        cmocka_unit_test(test_alloc_and_tso_never_repeat_across_power_loss),
        cmocka_unit_test(test_client_fails_cleanly_while_down_and_recovers),
        cmocka_unit_test(test_reports_queued_during_outage_delivered_on_return),
        cmocka_unit_test(test_malformed_frames_close_only_that_connection),
        cmocka_unit_test(test_graceful_restart_and_corrupt_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
