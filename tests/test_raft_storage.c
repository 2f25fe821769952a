/* test_raft_storage.c - the raft core over a host log storage: the in-memory
 * tail stays bounded, older entries are read back (lagging followers,
 * terms, committed entries after a restart), storage errors surface, and
 * the protocol behaves exactly as it does with the whole log in memory.
 *
 * Cluster tests use the deterministic harness (tests/helpers/raft_cluster.h)
 * whose storage is the modelled durable log; the error tests drive single
 * nodes by hand with a storage that fails on command. Each test prints the
 * memory it measured (the numbers docs/store.md quotes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/raft_cluster.h"

/* ------------------------------------------------------------ helpers --- */

/* Bytes the log of r holds in memory: entry structs plus their data. */
static uint64_t core_bytes(nk_raft *r)
{
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    return st.mem_bytes + st.mem_entries * sizeof(nk_raft_entry);
}

static raftc *quiet_cluster(uint64_t seed, uint64_t mem_entries, uint64_t mem_bytes)
{
    raftc_opts o;
    raftc_opts_default(&o, seed, 3);
    o.mem_entries = mem_entries;
    o.mem_bytes = mem_bytes;
    o.max_batch_bytes = 16 << 10;
    o.max_inflight_msgs = 8;
    o.max_inflight_bytes = 256 << 10;
    raftc *c;
    assert_int_equal(raftc_new(&o, &c), NK_OK);
    assert_true(raftc_elect(c, 2000));
    return c;
}

/* Propose `total` 100-byte entries on the leader, `per_step` per step,
 * checking the memory bound of every node after every step. Returns the
 * largest core_bytes seen on any node. */
static uint64_t write_and_watch(raftc *c, uint64_t total, uint32_t per_step, uint64_t bound_ents,
                                uint64_t bound_bytes)
{
    char buf[101];
    memset(buf, 'v', 100);
    buf[100] = 0;
    uint64_t done = 0, peak = 0;
    uint32_t guard = 0;
    while (done < total) {
        assert_true(++guard < 10 * (total / per_step + 1000)); /* bounded */
        uint64_t lead = raftc_leader(c);
        for (uint32_t k = 0; lead && k < per_step && done < total; k++) {
            snprintf(buf, 17, "%016llx", (unsigned long long)done);
            buf[16] = 'v';
            if (raftc_propose(c, lead, buf, NULL) == NK_OK) {
                done++;
            }
        }
        assert_int_equal(raftc_step(c), 0);
        for (uint32_t id = 1; id <= raftc_size(c); id++) {
            nk_raft *r = raftc_node(c, id);
            if (!r || !bound_ents) {
                continue;
            }
            nk_raft_status st;
            nk_raft_status_get(r, &st);
            /* The bound covers stable+applied entries; the unstable and
             * unapplied ones come on top: a follower learns the commit index
             * one round trip late (up to 10 steps of proposals here). */
            uint64_t slack = 12 * (uint64_t)per_step + 64;
            if (st.mem_entries > bound_ents + slack) {
                fail_msg("node %u: %llu entries in memory (first %llu last %llu stable %llu "
                         "applied %llu commit %llu)",
                         id, (unsigned long long)st.mem_entries,
                         (unsigned long long)st.mem_first_index, (unsigned long long)st.last_index,
                         (unsigned long long)st.stable_index, (unsigned long long)st.applied,
                         (unsigned long long)st.commit);
            }
            if (bound_bytes) {
                assert_true(st.mem_bytes <= bound_bytes + slack * 100);
            }
            uint64_t b = core_bytes(r);
            peak = b > peak ? b : peak;
        }
    }
    assert_true(raftc_wait_applied(c, total, 20000));
    return peak;
}

/* ------------------------------------------------------------- tests --- */

/* 100k proposals: with a storage every node's in-memory log stays under the
 * bound the whole time; without one it holds every entry. */
static void test_memory_bounded_100k(void **state)
{
    (void)state;
    const uint64_t total = 100000;
    raftc *c = quiet_cluster(11, 256, 64 << 10);
    uint64_t peak = write_and_watch(c, total, 64, 256, 64 << 10);
    uint64_t lead = raftc_leader(c);
    nk_raft_status st;
    nk_raft_status_get(raftc_node(c, lead), &st);
    assert_true(st.last_index >= total);
    assert_true(st.mem_entries <= 256);
    assert_true(st.mem_bytes <= 64 << 10);
    assert_true(st.mem_first_index > st.first_index); /* the rest lives in storage */
    uint64_t after = core_bytes(raftc_node(c, lead));
    assert_false(raftc_failed(c));
    raftc_free(c);

    /* The same writes with the whole log in memory (no storage). */
    c = quiet_cluster(11, 0, 0);
    write_and_watch(c, total, 64, 0, 0);
    lead = raftc_leader(c);
    nk_raft_status_get(raftc_node(c, lead), &st);
    assert_true(st.mem_entries >= total);
    uint64_t before = core_bytes(raftc_node(c, lead));
    raftc_free(c);
    print_message("raft core log memory after %llu x 100-byte proposals: %llu bytes without "
                  "storage, %llu bytes with storage (bound 256 entries / 64 KiB, peak %llu)\n",
                  (unsigned long long)total, (unsigned long long)before,
                  (unsigned long long)after, (unsigned long long)peak);
    assert_true(after * 50 < before);
}

/* A follower cut off for 50k entries catches up from read-back, in
 * messages no larger than max_batch_bytes, while no node's memory grows. */
static void test_lagging_follower_catches_up(void **state)
{
    (void)state;
    const uint64_t total = 50000;
    raftc *c = quiet_cluster(23, 128, 32 << 10);
    uint64_t lead = raftc_leader(c);
    uint64_t lag = lead == 3 ? 2 : 3;
    raftc_set_group(c, lag, 1);
    char buf[101];
    memset(buf, 'w', 100);
    buf[100] = 0;
    uint64_t done = 0;
    for (uint32_t guard = 0; done < total; guard++) {
        assert_true(guard < 100000);
        for (int k = 0; k < 64 && done < total; k++) {
            if (raftc_propose(c, lead, buf, NULL) == NK_OK) {
                done++;
            }
        }
        assert_int_equal(raftc_step(c), 0);
        assert_int_equal(raftc_leader(c), lead);
    }
    nk_raft_status st;
    nk_raft_status_get(raftc_node(c, lag), &st);
    uint64_t behind = total - st.last_index;
    assert_true(behind >= total - 10);
    uint64_t reads_before = raftc_storage_reads(c, lead);
    raftc_stats s0;
    raftc_stats_get(c, &s0);
    raftc_heal(c);
    uint64_t peak = 0;
    bool caught = false;
    for (uint32_t step = 0; step < 200000 && !caught; step++) {
        assert_int_equal(raftc_step(c), 0);
        for (uint64_t id = 1; id <= 3; id++) {
            nk_raft_status_get(raftc_node(c, id), &st);
            assert_true(st.mem_entries <= 128 + 512);
            uint64_t b = core_bytes(raftc_node(c, id));
            peak = b > peak ? b : peak;
        }
        caught = raftc_applied(c, lag) >= total;
    }
    assert_true(caught);
    raftc_stats s1;
    raftc_stats_get(c, &s1);
    nk_raft_status_get(raftc_node(c, lead), &st);
    /* The leader read the gap back (one storage call per message or term). */
    assert_true(st.readbacks >= behind - 128);
    assert_true(raftc_storage_reads(c, lead) > reads_before);
    /* Every append stayed within one message's byte budget (100-byte
     * entries, 16 KiB batches). */
    assert_true(s1.max_append_bytes <= 16 << 10);
    print_message("max append entries %llu\n", (unsigned long long)s1.max_append_entries);
    assert_true(s1.max_append_entries <= (16 << 10) / 100 + 1);
    assert_false(raftc_failed(c));
    print_message("follower %llu caught up %llu entries by read-back: leader read back %llu "
                  "entries, largest append %llu bytes / %llu entries, peak core log memory "
                  "%llu bytes on any node\n",
                  (unsigned long long)lag, (unsigned long long)behind,
                  (unsigned long long)st.readbacks, (unsigned long long)s1.max_append_bytes,
                  (unsigned long long)s1.max_append_entries, (unsigned long long)peak);
    raftc_free(c);
}

/* A leader whose storage fails while it must read back for a lagging
 * follower reports the error (the harness stops it); the others elect a
 * new leader and the follower still catches up; the failed node, restarted
 * with a healed storage, catches up too. */
static void test_storage_error_stops_leader(void **state)
{
    (void)state;
    raftc *c = quiet_cluster(31, 16, 0);
    uint64_t lead = raftc_leader(c);
    uint64_t lag = lead == 3 ? 2 : 3;
    raftc_set_group(c, lag, 1);
    uint64_t last = 0;
    for (int k = 0; k < 200; k++) {
        assert_int_equal(raftc_propose(c, lead, "x", &last), NK_OK);
        assert_int_equal(raftc_step(c), 0);
    }
    for (int k = 0; k < 2000 && raftc_applied(c, lead) < last; k++) {
        assert_int_equal(raftc_step(c), 0);
    }
    assert_true(raftc_applied(c, lead) >= last);
    raftc_storage_fail(c, lead, NK_EIO);
    raftc_set_group(c, lag, 0);
    for (int k = 0; k < 300 && raftc_storage_failures(c) == 0; k++) {
        assert_int_equal(raftc_step(c), 0);
    }
    assert_int_equal(raftc_storage_failures(c), 1);
    assert_null(raftc_node(c, lead)); /* stopped, not ignored */
    assert_true(raftc_elect(c, 5000));
    assert_int_not_equal(raftc_leader(c), lead);
    uint64_t idx = 0;
    for (int k = 0; k < 100 && raftc_propose(c, raftc_leader(c), "after", &idx) != NK_OK; k++) {
        raftc_step(c);
    }
    assert_true(idx > last);
    /* Restart with the storage still failing: restore reports it. */
    assert_int_equal(raftc_restart(c, lead), NK_EIO);
    assert_null(raftc_node(c, lead));
    raftc_storage_fail(c, lead, NK_OK);
    assert_int_equal(raftc_restart(c, lead), NK_OK);
    bool all = false;
    for (int k = 0; k < 20000 && !all; k++) {
        assert_int_equal(raftc_step(c), 0);
        all = raftc_applied(c, 1) >= idx && raftc_applied(c, 2) >= idx &&
              raftc_applied(c, 3) >= idx;
    }
    assert_true(all);
    assert_false(raftc_failed(c));
    raftc_free(c);
}

/* A storage a test controls: a fixed log of n entries, failing on demand. */
typedef struct fake_store {
    uint64_t n;
    int fail_rc;
    uint64_t calls;
    bool bad_term; /* return a wrong term for entries (a corrupt read-back) */
} fake_store;

static int fake_term(void *ctx, uint64_t index, uint64_t *term)
{
    fake_store *f = ctx;
    f->calls++;
    if (f->fail_rc) {
        return f->fail_rc;
    }
    if (index == 0 || index > f->n) {
        return NK_ENOENT;
    }
    *term = 1;
    return NK_OK;
}

static int fake_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                        nk_raft_entry **out, size_t *n)
{
    fake_store *f = ctx;
    f->calls++;
    if (f->fail_rc) {
        return f->fail_rc;
    }
    if (lo == 0 || hi - 1 > f->n) {
        return NK_ENOENT;
    }
    size_t k = 0;
    while (lo + k < hi && (k == 0 || !max_bytes || (k + 1) * 10 <= max_bytes)) {
        k++;
    }
    nk_raft_entry *a = calloc(k, sizeof(*a));
    assert_non_null(a);
    for (size_t j = 0; j < k; j++) {
        uint64_t i = lo + j;
        a[j].index = i;
        a[j].term = f->bad_term ? 7 : 1;
        if (i == 1) {
            nk_raft_conf conf = {0};
            assert_int_equal(nk_raft_conf_set(&conf, 1, NK_RAFT_VOTER), NK_OK);
            assert_int_equal(nk_raft_conf_set(&conf, 2, NK_RAFT_VOTER), NK_OK);
            assert_int_equal(nk_raft_conf_set(&conf, 3, NK_RAFT_VOTER), NK_OK);
            /* A bootstrap entry, made by a real node. */
            nk_raft_config cfg;
            nk_raft_config_default(&cfg, 9, 1);
            nk_raft *b;
            assert_int_equal(nk_raft_new(&cfg, &b), NK_OK);
            assert_int_equal(nk_raft_bootstrap(b, &conf), NK_OK);
            nk_raft_ready rd;
            assert_int_equal(nk_raft_ready_get(b, &rd), NK_OK);
            a[j] = rd.entries[0];
            rd.entries[0].data = NULL;
            rd.entries[0].len = 0;
            nk_raft_ready_clear(&rd);
            nk_raft_free(b);
            continue;
        }
        a[j].len = 10;
        a[j].data = malloc(10);
        assert_non_null(a[j].data);
        memset(a[j].data, (int)(i & 0xff), 10);
    }
    *out = a;
    *n = k;
    return NK_OK;
}

static nk_raft *fake_node(fake_store *f, uint64_t mem_entries, uint64_t mem_bytes)
{
    nk_raft_config cfg;
    nk_raft_config_default(&cfg, 1, 7);
    cfg.storage.term = fake_term;
    cfg.storage.entries = fake_entries;
    cfg.storage.ctx = f;
    cfg.max_mem_entries = mem_entries;
    cfg.max_mem_bytes = mem_bytes;
    cfg.max_batch_bytes = 100;
    nk_raft *r;
    assert_int_equal(nk_raft_new(&cfg, &r), NK_OK);
    return r;
}

/* Restart over a stored log: only the tail comes into memory, committed
 * entries below it are read back for apply in bounded Readys, and a storage
 * failure in the middle is returned by every later call. */
static void test_restore_reads_back_and_errors_surface(void **state)
{
    (void)state;
    fake_store f = {.n = 1000};
    nk_raft *r = fake_node(&f, 32, 200);
    nk_raft_hard_state hs = {.term = 1, .vote = 0, .commit = 1000};
    assert_int_equal(nk_raft_restore_stored(r, &hs, NULL, 1000, 0), NK_OK);
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    assert_int_equal(st.last_index, 1000);
    assert_int_equal(st.mem_entries, 32);
    assert_int_equal(st.mem_first_index, 969);
    assert_int_equal(st.conf.n, 3); /* found by scanning the storage */
    uint64_t t = 0;
    assert_int_equal(nk_raft_term_at(r, 500, &t), NK_OK); /* read back */
    assert_int_equal(t, 1);
    /* Apply: the first Readys hand out at most 200 bytes read back. */
    uint64_t applied = 0;
    for (int k = 0; k < 3; k++) {
        assert_true(nk_raft_has_ready(r));
        nk_raft_ready rd;
        assert_int_equal(nk_raft_ready_get(r, &rd), NK_OK);
        assert_true(rd.n_committed >= 1 && rd.n_committed <= 21);
        assert_int_equal(rd.committed[0].index, applied + 1);
        for (size_t j = 0; j < rd.n_committed; j++) {
            assert_int_equal(rd.committed[j].index, applied + 1 + j);
        }
        applied += rd.n_committed;
        nk_raft_advance(r, &rd);
    }
    /* The storage breaks: the next Ready needs it and reports the error. */
    f.fail_rc = NK_EIO;
    assert_true(nk_raft_has_ready(r));
    nk_raft_ready rd;
    assert_int_equal(nk_raft_ready_get(r, &rd), NK_EIO);
    assert_int_equal(nk_raft_storage_error(r), NK_EIO);
    /* Sticky: the node refuses to go on even once the storage answers. */
    f.fail_rc = NK_OK;
    assert_true(nk_raft_has_ready(r));
    assert_int_equal(nk_raft_ready_get(r, &rd), NK_EIO);
    nk_raft_msg m = {.type = NK_RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1};
    assert_int_equal(nk_raft_step(r, &m), NK_EIO);
    assert_int_equal(nk_raft_propose(r, "x", 1, NULL, NULL), NK_EIO);
    assert_int_equal(nk_raft_read_index(r, 1), NK_EIO);
    nk_raft_free(r);

    /* A failing storage at restart fails the restore. */
    f.fail_rc = NK_ECORRUPT;
    r = fake_node(&f, 32, 0);
    assert_int_equal(nk_raft_restore_stored(r, &hs, NULL, 1000, 0), NK_ECORRUPT);
    assert_int_equal(nk_raft_storage_error(r), NK_ECORRUPT);
    nk_raft_free(r);

    /* Entries that do not join the log (wrong terms) are corruption. */
    f.fail_rc = NK_OK;
    r = fake_node(&f, 32, 0);
    assert_int_equal(nk_raft_restore_stored(r, &hs, NULL, 1000, 0), NK_OK);
    f.bad_term = true;
    assert_int_equal(nk_raft_ready_get(r, &rd), NK_ECORRUPT);
    assert_int_equal(nk_raft_storage_error(r), NK_ECORRUPT);
    nk_raft_free(r);

    /* A storage needs both callbacks. */
    nk_raft_config cfg;
    nk_raft_config_default(&cfg, 1, 7);
    cfg.storage.term = fake_term;
    assert_int_equal(nk_raft_new(&cfg, &r), NK_EINVAL);
}

/* A follower whose storage fails while answering a leader's probe for an
 * entry below its tail reports the error from nk_raft_step. */
static void test_follower_term_error_surfaces(void **state)
{
    (void)state;
    fake_store f = {.n = 1000};
    nk_raft *r = fake_node(&f, 16, 0);
    /* Uncommitted stored tail: commit 10, so the stored stretch above it can
     * still be cut by a leader; its terms come from storage. */
    nk_raft_hard_state hs = {.term = 2, .vote = 0, .commit = 10};
    assert_int_equal(nk_raft_restore_stored(r, &hs, NULL, 1000, 10), NK_OK);
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    assert_int_equal(st.mem_first_index, 985);
    nk_raft_msg m = {.type = NK_RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 2, .index = 500,
                     .log_term = 1, .commit = 10};
    /* Healthy: the term at 500 is read back and matches. */
    assert_int_equal(nk_raft_step(r, &m), NK_OK);
    f.fail_rc = NK_EIO;
    m.index = 600;
    assert_int_equal(nk_raft_step(r, &m), NK_EIO);
    assert_int_equal(nk_raft_storage_error(r), NK_EIO);
    nk_raft_free(r);
}

/* Property: with a storage (and a tiny tail) a chaos run is the same run as
 * with the whole log in memory: same committed sequence, same messages, same
 * elections, step for step. */
static void test_same_behaviour_as_in_memory(void **state)
{
    (void)state;
    const raftc_workload w = {.propose_pm = 800, .read_pm = 30, .conf_pm = 5, .transfer_pm = 3};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        raftc_stats st[2];
        uint64_t digest[2];
        for (int mode = 0; mode < 2; mode++) {
            raftc_opts o;
            raftc_opts_default(&o, seed, seed % 2 ? 3 : 5);
            o.spares = 2;
            raftc_opts_chaos(&o);
            o.max_batch_bytes = seed % 3 == 0 ? 4096 : 64;
            o.compact_every = seed % 4 == 0 ? 0 : 25;
            o.mem_entries = mode ? 2 + seed % 5 : 0;
            o.mem_bytes = 0; /* a byte bound re-chunks restarts' apply: other timing */
            raftc *c;
            assert_int_equal(raftc_new(&o, &c), NK_OK);
            int rc = raftc_run_workload(c, &w, 3000);
            if (rc != 0) {
                fail_msg("seed %llu mode %d: %s", (unsigned long long)seed, mode, raftc_error(c));
            }
            raftc_stats_get(c, &st[mode]);
            digest[mode] = raftc_applied_digest(c, st[mode].max_committed);
            raftc_free(c);
        }
        print_message("seed %llu: committed %llu/%llu msgs %llu/%llu elections %llu/%llu\n",
                      (unsigned long long)seed, (unsigned long long)st[0].max_committed,
                      (unsigned long long)st[1].max_committed, (unsigned long long)st[0].msgs_sent,
                      (unsigned long long)st[1].msgs_sent, (unsigned long long)st[0].elections,
                      (unsigned long long)st[1].elections);
        assert_true(st[0].max_committed > 10);
        assert_int_equal(st[0].max_committed, st[1].max_committed);
        assert_int_equal(digest[0], digest[1]);
        assert_int_equal(st[0].msgs_sent, st[1].msgs_sent);
        assert_int_equal(st[0].elections, st[1].elections);
        assert_int_equal(st[0].snapshots_installed, st[1].snapshots_installed);
        assert_int_equal(st[0].reads_served, st[1].reads_served);
    }
}

/* With a byte bound too (restarts apply in chunks), chaos stays safe. */
static void test_chaos_with_byte_bound(void **state)
{
    (void)state;
    const raftc_workload w = {.propose_pm = 800, .read_pm = 30, .conf_pm = 5, .transfer_pm = 3};
    for (uint64_t seed = 100; seed < 116; seed++) {
        raftc_opts o;
        raftc_opts_default(&o, seed, seed % 2 ? 3 : 5);
        o.spares = 2;
        raftc_opts_chaos(&o);
        o.leader_kill_pm = 20;
        o.compact_every = seed % 3 == 0 ? 0 : 40;
        o.mem_entries = 4;
        o.mem_bytes = 32;
        raftc *c;
        assert_int_equal(raftc_new(&o, &c), NK_OK);
        int rc = raftc_run_workload(c, &w, 4000);
        if (rc == 0 && !raftc_check_liveness(c, 6000)) {
            rc = -1;
        }
        if (rc != 0) {
            fail_msg("seed %llu: %s", (unsigned long long)seed, raftc_error(c));
        }
        raftc_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_bounded_100k),
        cmocka_unit_test(test_lagging_follower_catches_up),
        cmocka_unit_test(test_storage_error_stops_leader),
        cmocka_unit_test(test_restore_reads_back_and_errors_surface),
        cmocka_unit_test(test_follower_term_error_surfaces),
        cmocka_unit_test(test_same_behaviour_as_in_memory),
        cmocka_unit_test(test_chaos_with_byte_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
