/*
 * test_coord_real.c - the coordinator on the real runtime: real TCP on
 * 127.0.0.1 (port 0) and real files in a temporary workdir; recovery after a
 * restart of the service. Every wait is bounded by a loop-iteration budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/rt_real.h"
#include "nokv/coord/client.h"
#include "nokv/coord/service.h"

typedef struct result {
    int done, status;
    bool accepted;
    uint64_t first, count, region_id, leader_store;
    char leader_addr[NK_COORD_ADDR_MAX];
} result;

static void record(void *arg, int status, const nk_coord_resp *resp)
{
    result *r = arg;
    r->done++;
    r->status = status;
    if (resp != NULL) {
        r->accepted = resp->accepted;
        r->first = resp->first;
        r->count = resp->count;
        r->region_id = resp->region.r.region.id;
        r->leader_store = resp->region.r.leader_store_id;
        snprintf(r->leader_addr, sizeof(r->leader_addr), "%s", resp->region.leader_addr);
    }
}

static void wait_done(nk_rt *rt, result *r)
{
    for (int i = 0; i < 500 && !r->done; i++) {
        assert_int_equal(nk_rt_run_once(rt, 10 * NK_NSEC_PER_MSEC), NK_OK);
    }
    assert_int_equal(r->done, 1);
}

static void rm_tree(const char *dir)
{
    const char *names[] = {"COORD.fence", "COORD.meta", "COORD.fence.tmp", "COORD.meta.tmp",
                           "LOCK"};
    char p[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        (void)remove(p);
    }
    (void)remove(dir);
}

static void test_real_tcp_and_files_survive_restart(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/nokv-coord-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char wd[64];
    snprintf(wd, sizeof(wd), "%s/wd", tmpl);

    nk_rt_real_config rc = {
        .seed = 9, .seed_given = true, .log_level = NK_LOG_ERROR, .no_signals = true};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&rc, &rt), NK_OK);
    nk_coord_service_config sc = {.addr = "127.0.0.1:0", .workdir = wd, .window = 10};
    nk_coord_service *svc = NULL;
    nk_errbuf eb;
    assert_int_equal(nk_coord_service_start(rt, &sc, &svc, &eb), NK_OK);
    char addr[64];
    assert_int_equal(nk_coord_service_addr(svc, addr, sizeof(addr)), NK_OK);
    assert_non_null(strstr(addr, "127.0.0.1:"));

    nk_coord_client_config cc = {.addr = addr, .store_id = 1};
    nk_coord_client *c = NULL;
    assert_int_equal(nk_coord_client_new(rt, &cc, &c, NULL), NK_OK);
    result r = {0};
    nk_coord_store_hb hb = {.store_id = 1, .addr = "127.0.0.1:20170"};
    assert_int_equal(nk_coord_heartbeat(c, &hb, record, &r), NK_OK);
    wait_done(rt, &r);
    assert_int_equal(r.status, NK_OK);
    assert_true(r.accepted);

    static nk_coord_region_report rep;
    nk_region_init_full(&rep.region, 1);
    nk_region_peer p = {1, 101, NK_RAFT_VOTER};
    assert_int_equal(nk_region_peer_set(&rep.region, &p), NK_OK);
    rep.leader_peer_id = 101;
    rep.leader_store_id = 1;
    rep.term = 1;
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_report_region(c, &rep, record, &r), NK_OK);
    wait_done(rt, &r);
    assert_true(r.accepted);

    uint64_t last = 0;
    for (int i = 0; i < 30; i++) { /* crosses several fence windows */
        memset(&r, 0, sizeof(r));
        assert_int_equal(nk_coord_alloc_id(c, 3, record, &r), NK_OK);
        wait_done(rt, &r);
        assert_int_equal(r.status, NK_OK);
        assert_true(r.first >= last);
        last = r.first + r.count;
    }
    nk_coord_service_stats st;
    nk_coord_service_stats_get(svc, &st);
    assert_true(st.fence_writes >= 2 && st.fence_writes < 30);

    /* restart on the same workdir: everything is back, ids move on */
    nk_coord_service_free(svc);
    svc = NULL;
    assert_int_equal(nk_coord_service_start(rt, &sc, &svc, &eb), NK_OK);
    nk_coord_service_info info;
    nk_coord_service_info_get(svc, &info);
    assert_false(info.fresh);
    assert_int_equal(info.regions, 1);
    assert_int_equal(info.stores, 1);
    assert_true(info.next_id >= last);
    char addr2[64];
    assert_int_equal(nk_coord_service_addr(svc, addr2, sizeof(addr2)), NK_OK);
    nk_coord_client_free(c);
    cc.addr = addr2;
    assert_int_equal(nk_coord_client_new(rt, &cc, &c, NULL), NK_OK);
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_get_region_by_key(c, "any", 3, record, &r), NK_OK);
    wait_done(rt, &r);
    assert_int_equal(r.status, NK_OK);
    assert_int_equal(r.region_id, 1);
    assert_string_equal(r.leader_addr, "127.0.0.1:20170");
    memset(&r, 0, sizeof(r));
    assert_int_equal(nk_coord_alloc_id(c, 1, record, &r), NK_OK);
    wait_done(rt, &r);
    assert_true(r.first >= last);

    nk_coord_client_free(c);
    nk_coord_service_free(svc);
    nk_rt_real_free(rt);
    rm_tree(wd);
    (void)remove(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_tcp_and_files_survive_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
