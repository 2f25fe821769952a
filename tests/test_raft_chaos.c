/* test_raft_chaos.c - seeded chaos sweeps over the in-memory raft cluster
 * (tests/helpers/raft_cluster.h) until the simulator's raft_chaos scenario
 * exists.
 *
 * Each seed picks a 3- or 5-voter group (plus two spare nodes that join and
 * leave through membership changes) and runs a random workload (proposals on
 * whoever believes it leads, ReadIndex reads, conf changes, leader transfers)
 * under message drops, duplicates, delays, partitions, crashes that lose
 * unpersisted state, clock drift, slow persistence, log compaction and a
 * leader-killing nemesis. Every step is checked for election safety, log
 * matching, leader completeness, commit/apply safety and read
 * linearizability; after healing, liveness is checked.
 *
 * The same sweep with the test-only unsafe_commit_prev_term flag (a leader
 * commits earlier-term entries by counting replicas) must fail on some seed:
 * that proves the checkers catch a real safety bug.
 *
 * Replay one seed: RAFT_CHAOS_SEED=<n> [RAFT_CHAOS_TRACE=1] ./test_raft_chaos */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/raft_cluster.h"

#ifndef SWEEP_SEEDS
#define SWEEP_SEEDS 200
#endif
#ifndef SWEEP_STEPS
#define SWEEP_STEPS 6000
#endif
#ifndef KILL_PM
#define KILL_PM 20
#endif
#define LIVENESS_STEPS 6000

static void sweep_opts(raftc_opts *o, uint64_t seed, bool unsafe, bool trace)
{
    raftc_opts_default(o, seed, (seed % 2) ? 3 : 5);
    o->spares = 2;
    raftc_opts_chaos(o);
    o->leader_kill_pm = ((seed / 2) % 2) ? KILL_PM : 0;
    /* Vary the protocol knobs with the seed. */
    o->prevote = seed % 4 != 3;
    o->check_quorum = seed % 4 != 3;
    o->max_batch_bytes = (seed % 3 == 0) ? 4096 : 1; /* 1: one entry per append */
    o->max_inflight_msgs = (seed % 5 == 0) ? 1 : 8;
    o->election_ticks = (seed % 7 == 0) ? 5 : 10;
    o->heartbeat_ticks = 2;
    o->max_uncommitted_bytes = (seed % 5 == 0) ? 256 : 0; /* flow control at the leader */
    o->unsafe_commit_prev_term = unsafe;
    o->trace = trace;
    o->trace_msgs_after = getenv("RAFT_CHAOS_TRACE_MSGS") ? strtoull(getenv("RAFT_CHAOS_TRACE_MSGS"), NULL, 10) : UINT64_MAX;
}

static const raftc_workload k_workload = {
    .propose_pm = 800,
    .read_pm = 30,
    .conf_pm = 5,
    .transfer_pm = 3,
};

/* Run one seed; returns 0 when every check held. On failure copies the
 * message into err. */
static int run_seed(uint64_t seed, bool unsafe, bool liveness, bool trace, char *err, size_t cap,
                    raftc_stats *st)
{
    raftc_opts o;
    sweep_opts(&o, seed, unsafe, trace);
    raftc *c;
    assert_int_equal(raftc_new(&o, &c), NK_OK);
    int rc = raftc_run_workload(c, &k_workload, SWEEP_STEPS);
    if (rc == 0 && liveness && !raftc_check_liveness(c, LIVENESS_STEPS)) {
        rc = -1;
    }
    if (rc != 0) {
        snprintf(err, cap, "%s", raftc_error(c));
    }
    if (st) {
        raftc_stats_get(c, st);
    }
    raftc_free(c);
    return rc;
}

static void test_chaos_sweep(void **state)
{
    (void)state;
    const char *one = getenv("RAFT_CHAOS_SEED");
    bool trace = getenv("RAFT_CHAOS_TRACE") != NULL;
    uint64_t lo = 1, hi = SWEEP_SEEDS;
    if (one) {
        lo = hi = strtoull(one, NULL, 10);
    }
    raftc_stats tot;
    memset(&tot, 0, sizeof(tot));
    uint32_t failures = 0;
    char err[1024];
    for (uint64_t seed = lo; seed <= hi; seed++) {
        raftc_stats st;
        if (run_seed(seed, false, true, trace, err, sizeof(err), &st) != 0) {
            print_error("raft chaos FAILED: %s\n  replay: RAFT_CHAOS_SEED=%llu "
                        "RAFT_CHAOS_TRACE=1 ./test_raft_chaos\n",
                        err, (unsigned long long)seed);
            failures++;
        }
        tot.elections += st.elections;
        tot.max_committed += st.max_committed;
        tot.snapshots_installed += st.snapshots_installed;
        tot.crashes += st.crashes;
        tot.reads_served += st.reads_served;
        tot.msgs_sent += st.msgs_sent;
        tot.msgs_dropped += st.msgs_dropped;
    }
    print_message("raft chaos: %llu seeds, elections %llu, entries applied %llu, snapshots "
                  "installed %llu, crashes %llu, reads %llu, messages %llu (%llu dropped)\n",
                  (unsigned long long)(hi - lo + 1), (unsigned long long)tot.elections,
                  (unsigned long long)tot.max_committed,
                  (unsigned long long)tot.snapshots_installed, (unsigned long long)tot.crashes,
                  (unsigned long long)tot.reads_served, (unsigned long long)tot.msgs_sent,
                  (unsigned long long)tot.msgs_dropped);
    assert_int_equal(failures, 0);
    /* The sweep must actually exercise the interesting paths. */
    if (!one) {
        assert_true(tot.elections > 10 * SWEEP_SEEDS);
        assert_true(tot.snapshots_installed > SWEEP_SEEDS);
        assert_true(tot.reads_served > SWEEP_SEEDS);
    }
}

static void test_chaos_catches_broken_commit_rule(void **state)
{
    (void)state;
    uint32_t caught = 0;
    uint64_t first = 0;
    char err[1024], first_err[1024] = "";
    for (uint64_t seed = 1; seed <= SWEEP_SEEDS; seed++) {
        /* Safety only: the broken variant may also wedge (a follower refuses
         * to overwrite an entry it was told is committed). */
        if (run_seed(seed, true, false, false, err, sizeof(err), NULL) != 0) {
            if (!caught) {
                first = seed;
                snprintf(first_err, sizeof(first_err), "%s", err);
            }
            caught++;
        }
    }
    print_message("broken commit rule caught on %u of %u seeds; first: %s\n", caught,
                  SWEEP_SEEDS, first_err);
    assert_true(caught > 0);
    assert_true(first > 0);
}

static void test_chaos_deterministic(void **state)
{
    (void)state;
    /* One seed, one run: identical statistics twice. */
    for (uint64_t seed = 5; seed <= 6; seed++) {
        raftc_stats a, b;
        char err[1024];
        assert_int_equal(run_seed(seed, false, true, false, err, sizeof(err), &a), 0);
        assert_int_equal(run_seed(seed, false, true, false, err, sizeof(err), &b), 0);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_deterministic),
        cmocka_unit_test(test_chaos_sweep),
        cmocka_unit_test(test_chaos_catches_broken_commit_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
