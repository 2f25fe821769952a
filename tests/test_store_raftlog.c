/*
 * test_store_raftlog.c - the store-wide raft log (nokv/store/raftlog.h) on
 * the simulator's crash-faithful disk:
 *   - entries, hard states and snapshots of interleaved regions read back
 *     identically after reopen; tail replacement survives reopen;
 *   - SNAPSHOT compact keeps the entries above it, RESET drops them all;
 *     DESTROY forgets a region (and it can come back fresh);
 *   - roll restates every live region, purge removes exactly the dead
 *     prefix, and reopen after purge rebuilds every region;
 *   - a tiny cache: entries are read back from the files and verified;
 *   - crashes with unsynced writes (many seeds): reopen never fails and
 *     yields a prefix of the writes that contains everything synced;
 *   - a flipped byte or a truncation of synced data is NK_ECORRUPT; a failed
 *     sync reaches the callback and makes the log refuse writes;
 *   - once on the real runtime (worker-thread fsync, reopen appends to the
 *     last segment).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "net/rt_real.h"
#include "nokv/engine/logfile.h"
#include "nokv/rt.h"
#include "nokv/store/raftlog.h"
#include "nokv/util/rand.h"
#include "sim/sim.h"

#define LOGDIR "/store/raftlog"
#define SEG1 LOGDIR "/000001.rlog"

/* ----------------------------------------------------------- sim setup --- */

static nk_rt *g_rt;
static int idle_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    g_rt = rt;
    *state = rt;
    return NK_OK;
}
static void idle_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}
static const nk_sim_app idle_app = {"idle", idle_start, idle_stop};

static nk_sim *sim_one(uint64_t seed, nk_rt **rt)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    cfg.log_level = NK_LOG_ERROR;
    nk_sim *s = nk_sim_new(&cfg);
    assert_non_null(s);
    assert_int_equal(nk_sim_add_node(s, "n1", &idle_app, NULL, NULL), NK_OK);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    *rt = g_rt;
    assert_int_equal(nk_rt_dir_create(*rt, "/store"), NK_OK);
    assert_int_equal(nk_rt_dir_sync(*rt, "/"), NK_OK);
    return s;
}

static void settle(nk_sim *s)
{
    nk_sim_run_until(s, nk_sim_now(s) + 50 * NK_NSEC_PER_MSEC);
}

static nk_raftlog *open_log(nk_rt *rt, uint64_t seg_bytes, uint64_t cache_bytes)
{
    nk_raftlog_options o = {seg_bytes, cache_bytes};
    nk_raftlog *l = NULL;
    nk_errbuf eb = {{0}};
    int rc = nk_raftlog_open(rt, LOGDIR, &o, &l, &eb);
    if (rc != NK_OK) {
        fail_msg("open failed: %s: %s", nk_errname(rc), eb.msg);
    }
    return l;
}

/* ------------------------------------------------------------- entries --- */

/* The data of (region, index, term): deterministic, length 0..300. */
static size_t data_of(uint64_t region, uint64_t index, uint64_t term, uint8_t *out)
{
    nk_rand r;
    nk_rand_derive(&r, region * 1000003u + term, "raftlog.data", index);
    size_t len = (size_t)nk_rand_below(&r, 301);
    nk_rand_bytes(&r, out, len);
    return len;
}

static uint8_t g_buf[64][301];

/* Entries [lo, hi) of region with the given term (hi - lo <= 64). */
static void stage_range(nk_raftlog *l, uint64_t region, uint64_t lo, uint64_t hi, uint64_t term)
{
    nk_raft_entry e[64];
    assert_true(hi - lo <= 64);
    for (uint64_t i = lo; i < hi; i++) {
        nk_raft_entry *x = &e[i - lo];
        x->index = i;
        x->term = term;
        x->type = i % 7 == 0 ? NK_RAFT_ENTRY_CONF : NK_RAFT_ENTRY_NORMAL;
        x->data = g_buf[i - lo];
        x->len = data_of(region, i, term, g_buf[i - lo]);
    }
    assert_int_equal(nk_raftlog_stage_entries(l, region, e, (size_t)(hi - lo)), NK_OK);
}

typedef struct synced {
    int calls;
    int rc;
} synced;

static void on_sync(void *arg, int rc)
{
    synced *y = arg;
    y->calls++;
    y->rc = rc;
}

/* Write what is staged and make it durable. */
static void commit(nk_sim *s, nk_raftlog *l)
{
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    assert_false(nk_raftlog_has_staged(l));
    synced y = {0, 1};
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
    assert_int_equal(y.calls, 0);
    settle(s);
    assert_int_equal(y.calls, 1);
    assert_int_equal(y.rc, NK_OK);
}

/* The region's entries [lo, hi) hold the model's data; term_of(i) gives the
 * term each was written with. */
typedef uint64_t (*term_fn)(uint64_t region, uint64_t index);

static void check_entries(nk_raftlog *l, uint64_t region, uint64_t lo, uint64_t hi, term_fn tf)
{
    nk_raft_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(nk_raftlog_entries(l, region, lo, hi, &v, &n), NK_OK);
    assert_int_equal(n, hi - lo);
    uint8_t want[301];
    for (size_t k = 0; k < n; k++) {
        uint64_t i = lo + k, t = tf(region, i);
        assert_int_equal(v[k].index, i);
        assert_int_equal(v[k].term, t);
        assert_int_equal(v[k].type, i % 7 == 0 ? NK_RAFT_ENTRY_CONF : NK_RAFT_ENTRY_NORMAL);
        size_t len = data_of(region, i, t, want);
        assert_int_equal(v[k].len, len);
        if (len > 0) {
            assert_memory_equal(v[k].data, want, len);
        }
        uint64_t term = 0;
        assert_int_equal(nk_raftlog_term(l, region, i, &term), NK_OK);
        assert_int_equal(term, t);
        nk_raft_entry_clear(&v[k]);
    }
    free(v);
}

static uint64_t term_is_region(uint64_t region, uint64_t index)
{
    (void)index;
    return region;
}

static void check_state(nk_raftlog *l, uint64_t region, uint64_t first, uint64_t last)
{
    nk_raftlog_region_state st;
    assert_int_equal(nk_raftlog_region(l, region, &st), NK_OK);
    assert_int_equal(st.region_id, region);
    assert_int_equal(st.first_index, first);
    assert_int_equal(st.last_index, last);
}

static size_t count_segments(nk_rt *rt)
{
    nk_names names = {0};
    assert_int_equal(nk_rt_dir_list(rt, LOGDIR, &names), NK_OK);
    size_t n = 0;
    for (size_t i = 0; i < names.count; i++) {
        n += strstr(names.names[i], ".rlog") != NULL;
    }
    nk_names_free(&names);
    return n;
}

/* ---------------------------------------------------------- round trip --- */

static void test_interleaved_regions_reopen(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(1, &rt);
    nk_raftlog *l = open_log(rt, 0, 0);
    uint64_t *ids = NULL;
    size_t n = 9;
    assert_int_equal(nk_raftlog_regions(l, &ids, &n), NK_OK);
    assert_int_equal(n, 0);
    free(ids);
    /* Regions 30, 10, 20 get 8 entries per batch each, 10 batches. */
    const uint64_t regs[3] = {30, 10, 20};
    for (uint64_t b = 0; b < 10; b++) {
        for (int r = 0; r < 3; r++) {
            stage_range(l, regs[r], 1 + 8 * b, 9 + 8 * b, regs[r]);
            nk_raft_hard_state hs = {regs[r], 7, 8 * b};
            assert_int_equal(nk_raftlog_stage_hard_state(l, regs[r], &hs), NK_OK);
        }
        assert_true(nk_raftlog_has_staged(l));
        commit(s, l);
        /* Reads see written records at once. */
        check_state(l, 10, 1, 8 + 8 * b);
    }
    nk_raftlog_stats st;
    nk_raftlog_stats_get(l, &st);
    assert_int_equal(st.syncs, 10);
    assert_int_equal(st.segments, 1);
    nk_raftlog_close(l);

    l = open_log(rt, 0, 0);
    assert_int_equal(nk_raftlog_regions(l, &ids, &n), NK_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 10);
    assert_int_equal(ids[1], 20);
    assert_int_equal(ids[2], 30);
    free(ids);
    for (int r = 0; r < 3; r++) {
        nk_raftlog_region_state rs;
        assert_int_equal(nk_raftlog_region(l, regs[r], &rs), NK_OK);
        assert_true(rs.has_hard_state);
        assert_false(rs.has_snapshot);
        assert_int_equal(rs.hs.term, regs[r]);
        assert_int_equal(rs.hs.vote, 7);
        assert_int_equal(rs.hs.commit, 72);
        assert_int_equal(rs.first_index, 1);
        assert_int_equal(rs.last_index, 80);
        check_entries(l, regs[r], 1, 81, term_is_region);
    }
    nk_raftlog_region_state rs;
    assert_int_equal(nk_raftlog_region(l, 40, &rs), NK_ENOENT);
    nk_raft_entry *v = NULL;
    assert_int_equal(nk_raftlog_entries(l, 10, 0, 3, &v, &n), NK_ENOENT);
    assert_int_equal(nk_raftlog_entries(l, 10, 80, 82, &v, &n), NK_ENOENT);
    assert_int_equal(nk_raftlog_entries(l, 10, 5, 5, &v, &n), NK_OK);
    assert_int_equal(n, 0);
    /* Staging that would leave a gap, or a region id 0, is refused. */
    nk_raft_entry gap = {1, 90, NK_RAFT_ENTRY_NORMAL, NULL, 0};
    assert_int_equal(nk_raftlog_stage_entries(l, 10, &gap, 1), NK_EINVAL);
    assert_int_equal(nk_raftlog_stage_entries(l, 0, &gap, 1), NK_EINVAL);
    assert_false(nk_raftlog_has_staged(l));
    /* A sync with nothing new still answers, asynchronously. */
    synced y = {0, 1};
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
    assert_int_equal(y.calls, 0);
    settle(s);
    assert_int_equal(y.calls, 1);
    assert_int_equal(y.rc, NK_OK);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ----------------------------------------------------- tail replacement --- */

static uint64_t term_replaced(uint64_t region, uint64_t index)
{
    (void)region;
    return index >= 6 ? 2 : 1;
}

static void test_tail_replacement(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(2, &rt);
    nk_raftlog *l = open_log(rt, 0, 0);
    stage_range(l, 5, 1, 11, 1);
    commit(s, l);
    /* Replace 6..10 by 6..8 of term 2: 9 and 10 are gone. */
    stage_range(l, 5, 6, 9, 2);
    commit(s, l);
    check_state(l, 5, 1, 8);
    check_entries(l, 5, 1, 9, term_replaced);
    uint64_t t;
    assert_int_equal(nk_raftlog_term(l, 5, 9, &t), NK_ENOENT);
    /* Staged replacement and extension in one batch, then more on top. */
    stage_range(l, 6, 1, 5, 1);
    stage_range(l, 6, 3, 5, 1);
    stage_range(l, 6, 5, 7, 1);
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    check_state(l, 6, 1, 6);
    commit(s, l);
    nk_raftlog_close(l);

    l = open_log(rt, 0, 0);
    check_state(l, 5, 1, 8);
    check_entries(l, 5, 1, 9, term_replaced);
    check_state(l, 6, 1, 6);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ------------------------------------------------ snapshots and destroy --- */

static void make_meta(nk_raft_snapshot_meta *m, uint64_t index, uint64_t term)
{
    memset(m, 0, sizeof *m);
    m->index = index;
    m->term = term;
    m->conf.n = 2;
    m->conf.m[0] = (nk_raft_member){3, NK_RAFT_VOTER};
    m->conf.m[1] = (nk_raft_member){9, NK_RAFT_LEARNER};
}

static void test_snapshot_compact_reset_destroy(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(3, &rt);
    nk_raftlog *l = open_log(rt, 0, 0);
    for (uint64_t r = 1; r <= 3; r++) {
        stage_range(l, r, 1, 11, r);
    }
    commit(s, l);
    nk_raft_snapshot_meta m;
    make_meta(&m, 5, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_OK); /* compact */
    make_meta(&m, 20, 4);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 2, &m, true), NK_OK); /* reset */
    stage_range(l, 2, 21, 23, 2);
    assert_int_equal(nk_raftlog_stage_destroy(l, 3), NK_OK);
    commit(s, l);

    for (int round = 0; round < 2; round++) {
        nk_raftlog_region_state st;
        assert_int_equal(nk_raftlog_region(l, 1, &st), NK_OK);
        assert_true(st.has_snapshot);
        assert_int_equal(st.snap.index, 5);
        assert_int_equal(st.snap.term, 1);
        assert_int_equal(st.snap.conf.n, 2);
        assert_int_equal(st.snap.conf.m[1].id, 9);
        assert_int_equal(st.snap.conf.m[1].role, NK_RAFT_LEARNER);
        assert_int_equal(st.first_index, 6);
        assert_int_equal(st.last_index, 10);
        check_entries(l, 1, 6, 11, term_is_region);
        uint64_t t = 0;
        assert_int_equal(nk_raftlog_term(l, 1, 5, &t), NK_OK);
        assert_int_equal(t, 1);
        assert_int_equal(nk_raftlog_term(l, 1, 4, &t), NK_ENOENT);
        nk_raft_entry *v = NULL;
        size_t n = 0;
        assert_int_equal(nk_raftlog_entries(l, 1, 5, 7, &v, &n), NK_ENOENT);

        assert_int_equal(nk_raftlog_region(l, 2, &st), NK_OK);
        assert_int_equal(st.snap.index, 20);
        assert_int_equal(st.first_index, 21);
        assert_int_equal(st.last_index, 22);
        check_entries(l, 2, 21, 23, term_is_region);
        assert_int_equal(nk_raftlog_term(l, 2, 20, &t), NK_OK);
        assert_int_equal(t, 4);
        assert_int_equal(nk_raftlog_term(l, 2, 10, &t), NK_ENOENT);

        assert_int_equal(nk_raftlog_region(l, 3, &st), NK_ENOENT);
        uint64_t *ids = NULL;
        assert_int_equal(nk_raftlog_regions(l, &ids, &n), NK_OK);
        assert_int_equal(n, 2);
        free(ids);
        nk_raftlog_close(l);
        l = open_log(rt, 0, 0);
    }
    /* Below the snapshot: refused. A destroyed region comes back fresh. */
    nk_raft_entry low = {1, 5, NK_RAFT_ENTRY_NORMAL, NULL, 0};
    assert_int_equal(nk_raftlog_stage_entries(l, 1, &low, 1), NK_EINVAL);
    make_meta(&m, 4, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_EINVAL);
    /* Indexes that would wrap are refused. */
    make_meta(&m, UINT64_MAX, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 4, &m, true), NK_EINVAL);
    make_meta(&m, UINT64_MAX >> 1, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 4, &m, true), NK_OK);
    nk_raft_entry wrap = {1, (UINT64_MAX >> 1) + 1, NK_RAFT_ENTRY_NORMAL, NULL, 0};
    assert_int_equal(nk_raftlog_stage_entries(l, 4, &wrap, 1), NK_EINVAL);
    assert_int_equal(nk_raftlog_stage_destroy(l, 4), NK_OK);
    nk_raft_entry two = {3, 2, NK_RAFT_ENTRY_NORMAL, NULL, 0};
    assert_int_equal(nk_raftlog_stage_entries(l, 3, &two, 1), NK_EINVAL);
    stage_range(l, 3, 1, 4, 3);
    nk_raft_hard_state hs = {3, 0, 0};
    assert_int_equal(nk_raftlog_stage_hard_state(l, 3, &hs), NK_OK);
    commit(s, l);
    nk_raftlog_close(l);
    l = open_log(rt, 0, 0);
    check_state(l, 3, 1, 3);
    check_entries(l, 3, 1, 4, term_is_region);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ------------------------------------------------ roll, restate, purge --- */

static void test_roll_restate_purge(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(4, &rt);
    nk_raftlog *l = open_log(rt, 4096, 0);
    /* Region 9 only ever writes a hard state and a snapshot, in segment 1:
     * after the purge only the restatements keep them. */
    nk_raft_hard_state hs9 = {9, 2, 0};
    assert_int_equal(nk_raftlog_stage_hard_state(l, 9, &hs9), NK_OK);
    nk_raft_snapshot_meta m;
    make_meta(&m, 40, 9);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 9, &m, true), NK_OK);
    /* Regions 1..3: 10 entries per batch; region 3 never compacts. */
    uint64_t last = 0;
    for (uint64_t b = 0; b < 30; b++) {
        for (uint64_t r = 1; r <= 3; r++) {
            stage_range(l, r, last + 1, last + 11, r);
            nk_raft_hard_state hs = {r, r, last};
            assert_int_equal(nk_raftlog_stage_hard_state(l, r, &hs), NK_OK);
        }
        commit(s, l);
        last += 10;
    }
    nk_raftlog_stats st;
    nk_raftlog_stats_get(l, &st);
    assert_true(st.segments > 10);
    assert_int_equal(st.segments, count_segments(rt));
    unsigned removed = 99;
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_int_equal(removed, 0); /* region 3 holds entries in segment 1 */

    /* Compact 1 and 2 at 250, destroy 3: everything but the entries of 1
     * and 2 above 250 is dead. */
    make_meta(&m, 250, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_OK);
    make_meta(&m, 250, 2);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 2, &m, false), NK_OK);
    assert_int_equal(nk_raftlog_stage_destroy(l, 3), NK_OK);
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    /* Not durable yet: purge keeps everything. */
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_int_equal(removed, 0);
    synced y = {0, 1};
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
    settle(s);
    assert_int_equal(y.rc, NK_OK);
    size_t before = count_segments(rt);
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_true(removed > 0);
    assert_true(removed < before);
    assert_int_equal(count_segments(rt), before - removed);
    nk_stat sst;
    assert_int_equal(nk_rt_stat(rt, SEG1, &sst), NK_ENOENT);
    nk_raftlog_stats_get(l, &st);
    assert_int_equal(st.segments, before - removed);

    for (int round = 0; round < 2; round++) {
        nk_raftlog_region_state rs;
        assert_int_equal(nk_raftlog_region(l, 9, &rs), NK_OK);
        assert_true(rs.has_hard_state);
        assert_int_equal(rs.hs.vote, 2);
        assert_true(rs.has_snapshot);
        assert_int_equal(rs.snap.index, 40);
        assert_int_equal(rs.first_index, 41);
        assert_int_equal(rs.last_index, 40);
        for (uint64_t r = 1; r <= 2; r++) {
            assert_int_equal(nk_raftlog_region(l, r, &rs), NK_OK);
            assert_int_equal(rs.hs.commit, 290);
            assert_int_equal(rs.snap.index, 250);
            assert_int_equal(rs.first_index, 251);
            assert_int_equal(rs.last_index, 300);
            check_entries(l, r, 251, 301, term_is_region);
        }
        assert_int_equal(nk_raftlog_region(l, 3, &rs), NK_ENOENT);
        nk_raftlog_close(l);
        /* Crash before the reopen: everything needed was durable. */
        nk_sim_node_crash(s, 1);
        assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
        rt = g_rt;
        l = open_log(rt, 4096, 0);
    }
    /* Writing goes on after reopen; a second purge after compacting all
     * leaves only the current segment. */
    stage_range(l, 1, 301, 311, 1);
    commit(s, l);
    make_meta(&m, 310, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_OK);
    make_meta(&m, 300, 2);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 2, &m, false), NK_OK);
    commit(s, l);
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_int_equal(count_segments(rt), 1);
    nk_raftlog_close(l);
    l = open_log(rt, 4096, 0);
    check_state(l, 1, 311, 310);
    check_state(l, 2, 301, 300);
    check_state(l, 9, 41, 40);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ----------------------------------------------------------- tiny cache --- */

static void test_tiny_cache_reads_back(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(5, &rt);
    nk_raftlog *l = open_log(rt, 8192, 512);
    for (uint64_t b = 0; b < 10; b++) {
        stage_range(l, 1, 1 + 20 * b, 21 + 20 * b, 1);
        stage_range(l, 2, 1 + 20 * b, 21 + 20 * b, 2);
        commit(s, l);
    }
    nk_raftlog_stats st;
    nk_raftlog_stats_get(l, &st);
    assert_true(st.cache_bytes <= 512);
    assert_true(st.segments > 1);
    check_entries(l, 1, 1, 201, term_is_region);
    check_entries(l, 2, 150, 201, term_is_region);
    nk_raftlog_stats_get(l, &st);
    assert_true(st.readbacks > 100);
    nk_raftlog_close(l);
    l = open_log(rt, 8192, 512);
    check_entries(l, 2, 1, 201, term_is_region);
    nk_raftlog_stats_get(l, &st);
    assert_true(st.readbacks > 100);
    assert_true(st.cache_bytes <= 512);

    /* Read corruption on the disk: never a wrong entry. */
    nk_sim_disk_faults(s, 1, (nk_ratio){1, 1}, (nk_ratio){0, 0});
    nk_raft_entry *v = NULL;
    size_t n = 0;
    assert_int_equal(nk_raftlog_entries(l, 1, 1, 201, &v, &n), NK_ECORRUPT);
    assert_null(v);
    nk_sim_disk_faults(s, 1, (nk_ratio){0, 0}, (nk_ratio){0, 0});
    check_entries(l, 1, 1, 201, term_is_region);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ---------------------------------------------------------- corruption --- */

static void flip_byte(nk_rt *rt, const char *path, uint64_t off)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t b;
    size_t got = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, off, &b, 1, &got), NK_OK);
    assert_int_equal(got, 1);
    b ^= 0x20;
    assert_int_equal(nk_rt_file_write_at(rt, f, off, &b, 1), NK_OK);
    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);
    nk_rt_file_close(rt, f);
}

static void test_flipped_byte_is_corruption(void **state)
{
    (void)state;
    for (int last = 0; last < 2; last++) {
        nk_rt *rt;
        nk_sim *s = sim_one(6 + (uint64_t)last, &rt);
        nk_raftlog *l = open_log(rt, 0, 64);
        /* One batch per record: 3 entries of region 1 per write. */
        for (uint64_t b = 0; b < 4; b++) {
            stage_range(l, 1, 1 + 3 * b, 4 + 3 * b, 1);
            commit(s, l);
        }
        /* Damage the first record, or the last one (only the MARK written
         * after its sync claims it). Read-back sees it first. */
        uint64_t off = 48 + 40;
        if (last) {
            nk_stat st;
            assert_int_equal(nk_rt_stat(rt, SEG1, &st), NK_OK);
            off = st.size - NK_LOGREC_OVERHEAD - 40;
        }
        flip_byte(rt, SEG1, off);
        nk_raft_entry *v = NULL;
        size_t n = 0;
        uint64_t lo = last ? 10 : 1;
        assert_int_equal(nk_raftlog_entries(l, 1, lo, lo + 3, &v, &n), NK_ECORRUPT);
        nk_raftlog_close(l);
        nk_raftlog *l2 = NULL;
        nk_errbuf eb = {{0}};
        nk_raftlog_options o = {0, 64};
        assert_int_equal(nk_raftlog_open(rt, LOGDIR, &o, &l2, &eb), NK_ECORRUPT);
        assert_null(l2);
        assert_non_null(strstr(eb.msg, SEG1));
        assert_non_null(strstr(eb.msg, "offset"));
        nk_sim_free(s);
    }
}

static void test_truncated_segment_is_corruption(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(8, &rt);
    nk_raftlog *l = open_log(rt, 4096, 0);
    for (uint64_t b = 0; b < 12; b++) {
        stage_range(l, 1, 1 + 10 * b, 11 + 10 * b, 1);
        commit(s, l);
    }
    nk_raftlog_stats st;
    nk_raftlog_stats_get(l, &st);
    assert_true(st.segments >= 3);
    nk_raftlog_close(l);
    nk_stat fst;
    assert_int_equal(nk_rt_stat(rt, SEG1, &fst), NK_OK);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, SEG1, NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_rt_file_truncate(rt, f, fst.size - 100), NK_OK);
    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);
    nk_rt_file_close(rt, f);
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_raftlog_open(rt, LOGDIR, NULL, &l, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, SEG1));
    nk_sim_free(s);
}

/* --------------------------------------------------------- sync failure --- */

static void test_sync_failure_reaches_callback(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(9, &rt);
    nk_raftlog *l = open_log(rt, 0, 0);
    stage_range(l, 1, 1, 6, 1);
    commit(s, l);
    nk_sim_disk_faults(s, 1, (nk_ratio){0, 0}, (nk_ratio){1, 1});
    stage_range(l, 1, 6, 9, 1);
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    synced y = {0, 1};
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
    settle(s);
    assert_int_equal(y.calls, 1);
    assert_int_equal(y.rc, NK_EIO);
    /* The state of the file is unknown now: no more writes. */
    nk_raft_hard_state hs = {1, 1, 1};
    assert_int_equal(nk_raftlog_stage_hard_state(l, 1, &hs), NK_EIO);
    assert_int_equal(nk_raftlog_write(l), NK_EIO);
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_EIO);
    nk_raftlog_close(l);
    nk_sim_disk_faults(s, 1, (nk_ratio){0, 0}, (nk_ratio){0, 0});
    nk_sim_node_crash(s, 1);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    rt = g_rt;
    l = open_log(rt, 0, 0);
    nk_raftlog_region_state rs;
    assert_int_equal(nk_raftlog_region(l, 1, &rs), NK_OK);
    assert_true(rs.last_index >= 5 && rs.last_index <= 8);
    check_entries(l, 1, 1, rs.last_index + 1, term_is_region);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* ---------------------------------------------------------- crash sweep --- */

/*
 * Batch b (1-based) of region r appends entries 4(b-1)+1 .. 4b and then sets
 * the hard state's commit to b, in one write with the other region's batch.
 * Any crash must leave, per region, a prefix: last index between the synced
 * and the written one, the hard state never ahead of its entries nor behind
 * what was synced, every entry intact, and never an error.
 */
static void test_crash_keeps_synced_prefix(void **state)
{
    (void)state;
    uint64_t lost = 0, purged = 0;
    for (uint64_t seed = 100; seed < 300; seed++) {
        nk_rt *rt;
        nk_sim *s = sim_one(seed, &rt);
        nk_rand rnd;
        nk_rand_derive(&rnd, seed, "test.raftlog.crash", 0);
        uint64_t written[3] = {0}, synced_b[3] = {0};
        for (int round = 0; round < 3; round++) {
            nk_raftlog *l = open_log(rt, 2048 + 512 * nk_rand_below(&rnd, 4), 1024);
            for (uint64_t r = 1; r <= 2; r++) {
                if (written[r] == 0) {
                    continue;
                }
                nk_raftlog_region_state rs;
                int rc = nk_raftlog_region(l, r, &rs);
                if (rc == NK_ENOENT) {
                    assert_int_equal(synced_b[r], 0); /* nothing of it was synced */
                    lost += written[r];
                    written[r] = 0;
                    continue;
                }
                assert_int_equal(rc, NK_OK);
                assert_true(rs.last_index >= 4 * synced_b[r]);
                assert_true(rs.last_index <= 4 * written[r]);
                assert_int_equal(rs.last_index % 4, 0);
                assert_true(rs.has_hard_state || synced_b[r] == 0);
                assert_int_equal(rs.first_index, rs.has_snapshot ? rs.snap.index + 1 : 1);
                assert_true(rs.first_index <= rs.last_index + 1);
                if (rs.has_hard_state) {
                    assert_true(rs.hs.commit * 4 <= rs.last_index);
                    assert_true(rs.hs.commit + 1 >= rs.last_index / 4);
                    assert_true(rs.hs.commit >= synced_b[r]);
                }
                check_entries(l, r, rs.first_index, rs.last_index + 1, term_is_region);
                lost += written[r] - rs.last_index / 4;
                written[r] = rs.last_index / 4;
                synced_b[r] = written[r];
            }
            unsigned nb = 3 + (unsigned)nk_rand_below(&rnd, 10);
            for (unsigned k = 0; k < nb; k++) {
                for (uint64_t r = 1; r <= 2; r++) {
                    uint64_t b = written[r] + 1;
                    stage_range(l, r, 4 * (b - 1) + 1, 4 * b + 1, r);
                    nk_raft_hard_state hs = {r, 1, b};
                    assert_int_equal(nk_raftlog_stage_hard_state(l, r, &hs), NK_OK);
                }
                /* Sometimes compact a region up to its previous batch, so
                 * that purge has dead segments to remove. */
                uint64_t cr = 1 + nk_rand_below(&rnd, 2);
                if (written[cr] > 0 && nk_rand_below(&rnd, 3) == 0) {
                    nk_raft_snapshot_meta m;
                    make_meta(&m, 4 * written[cr], cr);
                    assert_int_equal(nk_raftlog_stage_snapshot(l, cr, &m, false), NK_OK);
                }
                assert_int_equal(nk_raftlog_write(l), NK_OK);
                written[1]++;
                written[2]++;
                if (nk_rand_below(&rnd, 3) == 0) {
                    synced y = {0, 1};
                    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
                    settle(s);
                    assert_int_equal(y.rc, NK_OK);
                    synced_b[1] = written[1];
                    synced_b[2] = written[2];
                }
                if (nk_rand_below(&rnd, 2) == 0) {
                    unsigned removed = 0;
                    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
                    purged += removed;
                }
            }
            nk_raftlog_close(l);
            nk_sim_node_crash(s, 1);
            assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
            rt = g_rt;
        }
        nk_sim_free(s);
    }
    /* The sweep must actually lose unsynced batches sometimes. */
    print_message("crash sweep: 200 seeds x 3 crashes, %llu unsynced batches lost, %llu "
                  "segments purged\n",
                  (unsigned long long)lost, (unsigned long long)purged);
    assert_true(lost > 0);
    assert_true(purged > 0);
}

/* ------------------------------------------------ model-checked crashes --- */

/*
 * A reference model of what the log must hold, fed the same operations as
 * the log (one record each): entries with tail replacement, hard states,
 * compactions, resets and destroys over three regions. After each crash the
 * reopened log must equal the model after some prefix of the operations
 * that is at least as long as what was synced.
 */
#define MREG 3
#define MAXIDX 8192

typedef struct mregion {
    bool exists, has_hs, has_snap;
    nk_raft_hard_state hs;
    uint64_t snap_index, snap_term;
    uint64_t first, last;
    uint64_t term[MAXIDX];
} mregion;

typedef struct mop {
    uint8_t type; /* 1 entries, 2 hard state, 3 snapshot, 4 destroy */
    bool reset;
    uint64_t region, a, b, c;
} mop;

typedef struct model {
    mregion r[MREG + 1];
    mop *ops;
    size_t nops, cap;
} model;

static void mregion_init(mregion *r)
{
    memset(r, 0, sizeof *r);
    r->first = 1;
}

static void model_apply(model *m, const mop *o)
{
    mregion *r = &m->r[o->region];
    if (o->type == 4) {
        mregion_init(r);
        return;
    }
    r->exists = true;
    if (o->type == 1) {
        assert_true(o->b < MAXIDX);
        for (uint64_t i = o->a; i < o->b; i++) {
            r->term[i] = o->c;
        }
        r->last = o->b - 1;
    } else if (o->type == 2) {
        r->has_hs = true;
        r->hs = (nk_raft_hard_state){o->a, o->b, o->c};
    } else {
        r->has_snap = true;
        r->snap_index = o->a;
        r->snap_term = o->b;
        if (o->reset || o->a >= r->last) {
            r->last = o->a;
        }
        r->first = o->a + 1;
    }
}

static void model_at(const model *m, size_t k, model *out)
{
    for (int i = 0; i <= MREG; i++) {
        mregion_init(&out->r[i]);
    }
    for (size_t i = 0; i < k; i++) {
        model_apply(out, &m->ops[i]);
    }
}

static const mregion *g_cur_model;
static uint64_t term_from_model(uint64_t region, uint64_t index)
{
    return g_cur_model[region].term[index];
}

/* Does the log hold exactly the model state? */
static bool log_matches(nk_raftlog *l, const model *m)
{
    for (uint64_t id = 1; id <= MREG; id++) {
        const mregion *r = &m->r[id];
        nk_raftlog_region_state st;
        int rc = nk_raftlog_region(l, id, &st);
        if (!r->exists) {
            if (rc != NK_ENOENT) {
                return false;
            }
            continue;
        }
        if (rc != NK_OK || st.has_hard_state != r->has_hs || st.has_snapshot != r->has_snap ||
            st.first_index != r->first || st.last_index != r->last) {
            return false;
        }
        if (r->has_hs && (st.hs.term != r->hs.term || st.hs.vote != r->hs.vote ||
                          st.hs.commit != r->hs.commit)) {
            return false;
        }
        if (r->has_snap && (st.snap.index != r->snap_index || st.snap.term != r->snap_term)) {
            return false;
        }
        for (uint64_t i = r->first; i <= r->last; i++) {
            uint64_t t = 0;
            if (nk_raftlog_term(l, id, i, &t) != NK_OK || t != r->term[i]) {
                return false;
            }
        }
    }
    return true;
}

static void model_push(model *m, mop o)
{
    if (m->nops == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->ops = realloc(m->ops, m->cap * sizeof *m->ops);
        assert_non_null(m->ops);
    }
    m->ops[m->nops++] = o;
}

/* Stage one random valid operation on the log and record it in the model
 * (whose r[] is the state after every operation so far). */
static void random_op(nk_raftlog *l, model *m, nk_rand *rnd, uint64_t *terms)
{
    uint64_t id = 1 + nk_rand_below(rnd, MREG);
    mregion *r = &m->r[id];
    uint64_t floor = r->has_snap ? r->snap_index : 0;
    uint64_t p = nk_rand_below(rnd, 100);
    mop o = {0, false, id, 0, 0, 0};
    if (p < 50) {
        uint64_t lo = r->last + 1;
        if (r->last > floor && nk_rand_below(rnd, 3) == 0) {
            uint64_t back = 1 + nk_rand_below(rnd, r->last - floor < 5 ? r->last - floor : 5);
            lo = r->last + 1 - back; /* replace a tail */
            terms[id]++;
        }
        uint64_t cnt = 1 + nk_rand_below(rnd, 6);
        o = (mop){1, false, id, lo, lo + cnt, terms[id]};
        stage_range(l, id, lo, lo + cnt, terms[id]);
    } else if (p < 70) {
        o = (mop){2, false, id, terms[id], nk_rand_below(rnd, 4), r->last};
        nk_raft_hard_state hs = {o.a, o.b, o.c};
        assert_int_equal(nk_raftlog_stage_hard_state(l, id, &hs), NK_OK);
    } else if (p < 88) {
        bool reset = p >= 82;
        uint64_t index, term;
        if (reset) {
            index = r->last + nk_rand_below(rnd, 10);
            term = terms[id];
        } else {
            index = floor + nk_rand_below(rnd, r->last - floor + 1);
            term = index == floor ? (r->has_snap ? r->snap_term : 0) : r->term[index];
        }
        o = (mop){3, reset, id, index, term, 0};
        nk_raft_snapshot_meta meta;
        make_meta(&meta, index, term);
        assert_int_equal(nk_raftlog_stage_snapshot(l, id, &meta, reset), NK_OK);
    } else if (p < 92) {
        o = (mop){4, false, id, 0, 0, 0};
        assert_int_equal(nk_raftlog_stage_destroy(l, id), NK_OK);
    } else {
        return;
    }
    model_push(m, o);
    model_apply(m, &m->ops[m->nops - 1]);
}

static void test_crash_model_check(void **state)
{
    (void)state;
    model *m = calloc(1, sizeof *m);
    model *at = calloc(1, sizeof *at);
    assert_non_null(m);
    assert_non_null(at);
    uint64_t lost_ops = 0, purged = 0, checks = 0;
    for (uint64_t seed = 1000; seed < 1100; seed++) {
        nk_rt *rt;
        nk_sim *s = sim_one(seed, &rt);
        nk_rand rnd;
        nk_rand_derive(&rnd, seed, "test.raftlog.model", 0);
        model_at(m, 0, m);
        m->nops = 0;
        uint64_t terms[MREG + 1] = {1, 1, 1, 1};
        size_t synced_ops = 0;
        for (int round = 0; round < 4; round++) {
            nk_raftlog *l = open_log(rt, 1024 + 1024 * nk_rand_below(&rnd, 3),
                                     256 + 1024 * nk_rand_below(&rnd, 2));
            /* Find the prefix the log holds: at least everything synced. */
            size_t k = m->nops + 1;
            for (size_t j = m->nops + 1; j-- > synced_ops;) {
                model_at(m, j, at);
                if (log_matches(l, at)) {
                    k = j;
                    break;
                }
            }
            if (k > m->nops) {
                fail_msg("seed %llu round %d: the reopened log matches no prefix of the %zu "
                         "operations that includes the %zu synced ones",
                         (unsigned long long)seed, round, m->nops, synced_ops);
            }
            lost_ops += m->nops - k;
            m->nops = k;
            model_at(m, k, m);
            for (uint64_t id = 1; id <= MREG; id++) {
                const mregion *r = &m->r[id];
                if (r->exists && r->last >= r->first) {
                    g_cur_model = m->r;
                    check_entries(l, id, r->first, r->last + 1, term_from_model);
                    checks++;
                }
            }
            synced_ops = k;
            unsigned batches = 4 + (unsigned)nk_rand_below(&rnd, 12);
            for (unsigned b = 0; b < batches; b++) {
                unsigned nops = 1 + (unsigned)nk_rand_below(&rnd, 4);
                for (unsigned i = 0; i < nops; i++) {
                    random_op(l, m, &rnd, terms);
                }
                assert_int_equal(nk_raftlog_write(l), NK_OK);
                assert_true(log_matches(l, m)); /* reads see written records */
                if (nk_rand_below(&rnd, 3) == 0) {
                    synced y = {0, 1};
                    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
                    settle(s);
                    assert_int_equal(y.rc, NK_OK);
                    synced_ops = m->nops;
                }
                if (nk_rand_below(&rnd, 3) == 0) {
                    unsigned removed = 0;
                    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
                    purged += removed;
                }
            }
            nk_raftlog_close(l);
            nk_sim_node_crash(s, 1);
            assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
            rt = g_rt;
        }
        nk_sim_free(s);
    }
    print_message("model check: 100 seeds x 4 crashes, %llu unsynced operations lost, %llu "
                  "segments purged, %llu region reads checked\n",
                  (unsigned long long)lost_ops, (unsigned long long)purged,
                  (unsigned long long)checks);
    assert_true(lost_ops > 0);
    assert_true(purged > 0);
    free(m->ops);
    free(m);
    free(at);
}

/* ------------------------------------------------------------ failpoints --- */

static void test_failpoints(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(10, &rt);
    nk_raftlog *l = open_log(rt, 2048, 0);
    stage_range(l, 1, 1, 11, 1);
    commit(s, l);
    /* A failed sync job step reaches the callback. */
    nk_sim_failpoint_arm(s, 1, "raftlog.before_sync", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    stage_range(l, 1, 11, 13, 1);
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    synced y = {0, 1};
    assert_int_equal(nk_raftlog_sync(l, on_sync, &y), NK_OK);
    settle(s);
    assert_int_equal(y.rc, NK_EFAILPOINT);
    nk_raftlog_close(l);
    l = open_log(rt, 2048, 0);
    nk_raftlog_region_state rs;
    assert_int_equal(nk_raftlog_region(l, 1, &rs), NK_OK);
    assert_true(rs.last_index >= 10);
    /* A failure right after a roll (the segment exists, its restatement
     * does not) fails the log; a crash and reopen continue from a prefix. */
    nk_sim_failpoint_arm(s, 1, "raftlog.after_roll", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    int rc = NK_OK;
    uint64_t next = rs.last_index + 1;
    for (int k = 0; k < 20 && rc == NK_OK; k++) {
        stage_range(l, 1, next, next + 10, 1);
        rc = nk_raftlog_write(l);
        if (rc == NK_OK) {
            next += 10;
        }
    }
    assert_int_equal(rc, NK_EFAILPOINT);
    assert_int_equal(nk_raftlog_write(l), NK_EFAILPOINT);
    nk_raftlog_close(l);
    nk_sim_node_crash(s, 1);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    rt = g_rt;
    l = open_log(rt, 2048, 0);
    assert_int_equal(nk_raftlog_region(l, 1, &rs), NK_OK);
    assert_true(rs.last_index >= 10 && rs.last_index < next);
    check_entries(l, 1, 1, rs.last_index + 1, term_is_region);
    uint64_t hits = 0, fired = 0;
    nk_sim_failpoint_stats(s, "raftlog.after_roll", &hits, &fired);
    assert_int_equal(fired, 1);

    /* After the append, before memory learns of it: the log fails, and a
     * reopen finds the records (they reached the file). */
    uint64_t last = rs.last_index;
    nk_sim_failpoint_arm(s, 1, "raftlog.after_append", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    stage_range(l, 1, last + 1, last + 4, 1);
    assert_int_equal(nk_raftlog_write(l), NK_EFAILPOINT);
    check_state(l, 1, 1, last);
    assert_int_equal(nk_raftlog_sync(l, on_sync, NULL), NK_EFAILPOINT);
    nk_raftlog_close(l);
    l = open_log(rt, 2048, 0);
    check_state(l, 1, 1, last + 3);
    check_entries(l, 1, 1, last + 4, term_is_region);

    /* A failed removal leaves the log usable; the next purge finishes. */
    nk_raft_snapshot_meta m;
    make_meta(&m, last + 3, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_OK);
    commit(s, l);
    size_t before = count_segments(rt);
    assert_true(before > 1);
    nk_sim_failpoint_arm(s, 1, "raftlog.purge.before_remove", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    unsigned removed = 99;
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_EFAILPOINT);
    assert_int_equal(removed, 0);
    assert_int_equal(count_segments(rt), before);
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_int_equal(removed, before - 1);
    assert_int_equal(count_segments(rt), 1);
    stage_range(l, 1, last + 4, last + 6, 1);
    commit(s, l);
    nk_raftlog_close(l);
    l = open_log(rt, 2048, 0);
    check_state(l, 1, last + 4, last + 5);
    nk_raftlog_close(l);
    nk_sim_free(s);
}

/* -------------------------------------------------------- real runtime --- */

static void real_sync_done(void *arg, int rc)
{
    nk_rt *rt = arg;
    assert_int_equal(rc, NK_OK);
    nk_rt_stop(rt);
}

static void real_commit(nk_rt *rt, nk_raftlog *l)
{
    assert_int_equal(nk_raftlog_write(l), NK_OK);
    assert_int_equal(nk_raftlog_sync(l, real_sync_done, rt), NK_OK);
    assert_int_equal(nk_rt_real_run(rt), NK_OK);
}

static void rm_tree(nk_rt *rt, const char *dir)
{
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) == NK_OK) {
        for (size_t i = 0; i < names.count; i++) {
            char *p = nk_path_join(dir, names.names[i]);
            nk_stat st;
            if (nk_rt_stat(rt, p, &st) == NK_OK && st.is_dir) {
                rm_tree(rt, p);
            } else {
                nk_rt_remove(rt, p);
            }
            free(p);
        }
        nk_names_free(&names);
    }
    nk_rt_remove(rt, dir);
}

static void test_real_runtime(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/nokv-test-raftlog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char logdir[96];
    snprintf(logdir, sizeof logdir, "%s/raftlog", dir);
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    nk_raftlog_options o = {4096, 1024};
    nk_raftlog *l = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_raftlog_open(rt, logdir, &o, &l, &eb), NK_OK);
    for (uint64_t b = 0; b < 10; b++) {
        for (uint64_t r = 1; r <= 2; r++) {
            stage_range(l, r, 1 + 10 * b, 11 + 10 * b, r);
            nk_raft_hard_state hs = {r, r, 10 * b};
            assert_int_equal(nk_raftlog_stage_hard_state(l, r, &hs), NK_OK);
        }
        real_commit(rt, l);
    }
    nk_raft_snapshot_meta m;
    make_meta(&m, 60, 1);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 1, &m, false), NK_OK);
    make_meta(&m, 60, 2);
    assert_int_equal(nk_raftlog_stage_snapshot(l, 2, &m, false), NK_OK);
    real_commit(rt, l);
    unsigned removed = 0;
    assert_int_equal(nk_raftlog_purge(l, &removed), NK_OK);
    assert_true(removed > 0);
    check_entries(l, 1, 61, 101, term_is_region);
    nk_raftlog_close(l);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(nk_raftlog_open(rt, logdir, &o, &l, &eb), NK_OK);
        for (uint64_t r = 1; r <= 2; r++) {
            nk_raftlog_region_state st;
            assert_int_equal(nk_raftlog_region(l, r, &st), NK_OK);
            assert_int_equal(st.first_index, 61);
            assert_int_equal(st.last_index, 100 + 5 * (uint64_t)round);
            assert_int_equal(st.hs.commit, 90);
            check_entries(l, r, 61, st.last_index + 1, term_is_region);
            stage_range(l, r, st.last_index + 1, st.last_index + 6, r);
        }
        real_commit(rt, l);
        nk_raftlog_close(l);
    }
    rm_tree(rt, dir);
    nk_rt_real_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_regions_reopen),
        cmocka_unit_test(test_tail_replacement),
        cmocka_unit_test(test_snapshot_compact_reset_destroy),
        cmocka_unit_test(test_roll_restate_purge),
        cmocka_unit_test(test_tiny_cache_reads_back),
        cmocka_unit_test(test_flipped_byte_is_corruption),
        cmocka_unit_test(test_truncated_segment_is_corruption),
        cmocka_unit_test(test_sync_failure_reaches_callback),
        cmocka_unit_test(test_crash_keeps_synced_prefix),
        cmocka_unit_test(test_crash_model_check),
        cmocka_unit_test(test_failpoints),
        cmocka_unit_test(test_real_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
