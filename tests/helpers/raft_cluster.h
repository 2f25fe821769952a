/*
 * raft_cluster.h - a deterministic in-memory cluster of nk_raft nodes for
 * tests (until the simulator's raft_chaos scenario exists).
 *
 * One seed drives everything (nk_rand streams): message delays, drops,
 * duplicates, partitions, node crashes and restarts, clock drift (per-node
 * tick length). Each node has a modelled durable store (hard state, snapshot,
 * log) that changes only when the harness processes one of its Readys; a
 * crash discards the raft object and everything not yet persisted, and a
 * restart rebuilds the node from the durable store (nk_raft_restore, or
 * nk_raft_restore_stored when the node has a storage: opts.mem_entries).
 * Messages travel encoded (nk_raft_msg_encode/decode), so the codec is
 * exercised too.
 *
 * After every step the harness checks, and records the first violation:
 *   - election safety: at most one leader per term
 *   - durable vote safety: a node never changes its vote within a term
 *   - log matching: two persisted entries with the same (index, term) have
 *     the same content and the same predecessor term
 *   - leader completeness: a newly elected leader holds every entry any node
 *     has applied so far
 *   - state machine safety: every node applies the same entry at each index
 *     (checked through a running hash chain, snapshots included)
 *   - reads: a read index is >= every index applied anywhere before the read
 *     was issued (linearizability of ReadIndex)
 *   - commit durability: a persisted commit index never exceeds the durable log
 * Symbols are prefixed raftc_ (the helper is linked into every test).
 */
#ifndef NK_TESTS_RAFT_CLUSTER_H
#define NK_TESTS_RAFT_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/raft/raft.h"

#define RAFTC_MAX_NODES 9

typedef struct raftc_opts {
    uint64_t seed;
    uint32_t voters; /* founding voters: ids 1..voters */
    uint32_t spares; /* empty nodes ids voters+1..voters+spares (join via conf change) */
    /* raft configuration template */
    uint32_t election_ticks;
    uint32_t heartbeat_ticks;
    uint32_t max_inflight_msgs;
    uint64_t max_inflight_bytes;
    uint64_t max_batch_bytes;
    uint64_t max_uncommitted_bytes;
    bool prevote;
    bool check_quorum;
    bool unsafe_commit_prev_term;
    /* time: a node ticks every tick_units (+/- drift_units per node) */
    uint32_t tick_units;
    uint32_t drift_units;
    /* faults, in per-mille per step unless noted */
    uint32_t delay_min; /* message delay in time units */
    uint32_t delay_max;
    uint32_t drop_pm;
    uint32_t dup_pm;
    uint32_t crash_pm;
    uint32_t restart_pm;
    uint32_t partition_pm;
    uint32_t heal_pm;
    uint32_t leader_kill_pm; /* crash (or isolate) the current leader */
    uint32_t ready_pm;      /* chance a node processes its Ready in a step */
    uint32_t compact_every; /* compact when applied - snapshot >= this (0 = never) */
    /* Log storage: with mem_entries > 0 each node's raft gets a storage over
     * the modelled durable log and keeps at most mem_entries (and mem_bytes,
     * 0 = no byte bound) stable+applied entries in memory; older ones are
     * read back. 0 = no storage (raft keeps the whole log). */
    uint64_t mem_entries;
    uint64_t mem_bytes;
    bool trace;             /* print events to stderr */
    uint64_t trace_msgs_after; /* with trace: also print deliveries after this time */
} raftc_opts;

typedef struct raftc raftc;

typedef struct raftc_stats {
    uint64_t steps;
    uint64_t msgs_sent;
    uint64_t msgs_dropped;
    uint64_t elections; /* distinct (term, leader) pairs seen */
    uint64_t max_term;
    uint64_t max_committed; /* highest index applied anywhere */
    uint64_t snapshots_installed;
    uint64_t crashes;
    uint64_t reads_served;
    uint64_t proposals;
    uint64_t max_append_bytes;   /* largest entry data bytes in one APPEND sent */
    uint64_t max_append_entries; /* most entries in one APPEND sent */
} raftc_stats;

/* Defaults: no faults, every Ready processed at once, election 10 ticks,
 * heartbeat 2, tick every 10 units, delays 1..5 units. */
void raftc_opts_default(raftc_opts *o, uint64_t seed, uint32_t voters);
/* Switch on a moderate fault mix (drops, dups, crashes, partitions, drift,
 * delayed persistence, compaction). */
void raftc_opts_chaos(raftc_opts *o);

int raftc_new(const raftc_opts *o, raftc **out);
void raftc_free(raftc *c);

/* Advance one time unit (ticks, deliveries, Ready processing, random faults
 * when enabled) and check every invariant. Returns 0, or -1 once a violation
 * was recorded (see raftc_error). */
int raftc_step(raftc *c);
int raftc_steps(raftc *c, uint32_t n);
const char *raftc_error(const raftc *c);
bool raftc_failed(const raftc *c);

/* Enable or disable the random faults of opts (manual ones still work). */
void raftc_set_chaos(raftc *c, bool on);

/* Node access. raftc_node returns NULL when the node is down. */
nk_raft *raftc_node(raftc *c, uint64_t id);
uint32_t raftc_size(const raftc *c); /* total node count (voters + spares) */
uint64_t raftc_leader(raftc *c);     /* live leader with the highest term, or 0 */
uint64_t raftc_applied(const raftc *c, uint64_t id);
void raftc_crash(raftc *c, uint64_t id);
int raftc_restart(raftc *c, uint64_t id);
/* Put node id in partition group g (nodes talk only within a group). */
void raftc_set_group(raftc *c, uint64_t id, uint32_t g);
void raftc_heal(raftc *c); /* every node back in group 0, restarts the dead */
/* Drop every message of `type` (0 = none) from now on. */
void raftc_drop_type(raftc *c, uint8_t type);

/* Propose on node id; NK_EAGAIN etc. from nk_raft_propose. */
int raftc_propose(raftc *c, uint64_t id, const char *data, uint64_t *index);
/* Issue a ReadIndex on node id; the harness checks the answer. */
int raftc_read(raftc *c, uint64_t id);

/* Run until pred(c, arg) holds or max steps pass; true if it held. */
bool raftc_run_until(raftc *c, bool (*pred)(raftc *, void *), void *arg, uint32_t max);
/* Run until some live leader exists. */
bool raftc_elect(raftc *c, uint32_t max);
/* Run until every live node whose configuration still includes it has
 * applied index. */
bool raftc_wait_applied(raftc *c, uint64_t index, uint32_t max);

/* Random workload for chaos runs: with the given per-mille chances per step
 * propose on the leader, read on a random node, change membership, transfer. */
typedef struct raftc_workload {
    uint32_t propose_pm;
    uint32_t read_pm;
    uint32_t conf_pm;
    uint32_t transfer_pm;
} raftc_workload;
int raftc_run_workload(raftc *c, const raftc_workload *w, uint32_t steps);

/* After healing, check liveness: a leader emerges and a new proposal is
 * applied by every live member within max steps. */
bool raftc_check_liveness(raftc *c, uint32_t max);

void raftc_stats_get(const raftc *c, raftc_stats *s);

/* Storage fault: node id's storage answers rc (e.g. NK_ECORRUPT, NK_EIO) to
 * every call from the next one on (NK_OK heals it for new incarnations).
 * The harness then expects that node's raft to report the error; it counts
 * nodes stopped that way in raftc_storage_failures. */
void raftc_storage_fail(raftc *c, uint64_t id, int rc);
uint32_t raftc_storage_failures(const raftc *c);
/* Storage calls and entries read back by node id's storage so far. */
uint64_t raftc_storage_reads(const raftc *c, uint64_t id);

/* The sequence of entries applied at indices 1..n as (term, hash) pairs
 * folded into one hash, from the harness's cross-node register; 0 when some
 * index up to n was never applied. Lets tests compare whole runs. */
uint64_t raftc_applied_digest(const raftc *c, uint64_t n);

#endif /* NK_TESTS_RAFT_CLUSTER_H */
