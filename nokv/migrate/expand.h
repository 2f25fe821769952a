/*
 * expand.h - growing a seeded region onto more stores, moving its
 * leadership, removing a peer: `nokv migrate expand | transfer-leader |
 * remove-peer`, as asynchronous operations over the admin client, so the CLI
 * (which drives the loop with nk_rt_run_once) and the simulator's operator
 * run exactly the same steps.
 *
 * expand, per target {store, peer, addr}, one target after the other:
 *   1. status of the leader (must lead the region) and of the target;
 *   2. a peer the leader lists but the target does not host is a ghost of
 *      an interrupted run: it is removed first;
 *   3. unless the target hosts the peer already: ExportRegionSnapshot on
 *      the leader, the files streamed in bounded chunks (ReadSnapshot ->
 *      ImportSnapshotChunk, a window of chunks in flight: see
 *      chunk_bytes / window below), FinishImport: the target
 *      verifies every checksum and installs before publishing;
 *   4. AddPeer (learner) on the leader, unless listed already;
 *   5. wait until the target's applied index reaches the leader's commit
 *      index at the time the learner was listed;
 *   6. PromotePeer; wait until the leader lists it as a voter;
 *   7. verify: the target hosts the peer as a voter at the leader's
 *      conf_version (leader membership and target state agree).
 * Every step is idempotent given the state it reads first, so a rerun after
 * any interruption resumes where the cluster is, never adding a ghost.
 * With a workdir, MIGRATION_PROGRESS.json records expand-rollout-started,
 * expand-target-pending and expand-target-hosted (completed_targets).
 *
 * transfer-leader: the peer must be a voter; TransferLeader, then wait until
 * the old leader follows the new one (and, given its address, the new
 * leader's store says it leads). remove-peer: refused by the store when it
 * would lose quorum (unless force); then wait until the leader no longer
 * lists it (and, given the removed store's address, until that store no
 * longer hosts it).
 *
 * Failpoint: "migrate.expand.after_add_learner" (the learner is proposed,
 * nothing after it ran).
 *
 * Every wait polls every poll_ns and gives up after stage_timeout_ns
 * (NK_ETIMEDOUT, with the stage in the message and "rerun to resume").
 */
#ifndef NK_MIGRATE_EXPAND_H
#define NK_MIGRATE_EXPAND_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/rt.h"

#define NK_EXPAND_MAX_TARGETS 8

typedef struct nk_expand_target {
    uint64_t store_id;
    uint64_t peer_id;
    char addr[128];
} nk_expand_target;

typedef enum nk_rollout_kind {
    NK_ROLLOUT_EXPAND = 1,
    NK_ROLLOUT_TRANSFER_LEADER = 2,
    NK_ROLLOUT_REMOVE_PEER = 3,
} nk_rollout_kind;

typedef struct nk_rollout_progress {
    const char *stage; /* e.g. "snapshot-stream", "catch-up" */
    unsigned target;   /* index into targets (expand) */
    uint64_t store_id, peer_id;
    uint64_t bytes_sent, bytes_total;
    uint64_t elapsed_ns; /* since the stage began */
    unsigned inflight;   /* snapshot-stream: chunks read or pushed, not yet acknowledged */
} nk_rollout_progress;

typedef struct nk_rollout_options {
    nk_rollout_kind kind;
    const char *leader_addr;
    uint64_t region_id;
    /* expand */
    nk_expand_target targets[NK_EXPAND_MAX_TARGETS];
    unsigned n_targets;
    /* transfer-leader / remove-peer */
    uint64_t peer_id;
    const char *peer_addr; /* the peer's store, for the final check; may be NULL */
    bool force;
    const char *workdir;       /* MIGRATION_PROGRESS.json; NULL = none */
    uint64_t poll_ns;          /* 0 = 200 ms */
    uint64_t stage_timeout_ns; /* 0 = 60 s */
    uint64_t rpc_timeout_ns;   /* 0 = 10 s (FinishImport: 10x) */
    /* snapshot stream: bytes per chunk (0 = NK_ADMIN_CHUNK_DEFAULT, at most
     * NK_ADMIN_CHUNK_MAX) and chunks in flight (0 = NK_ADMIN_SNAP_WINDOW, at
     * most NK_EXPAND_MAX_WINDOW): a chunk is read from the leader only while
     * fewer than `window` are read and not yet acknowledged by the target */
    uint32_t chunk_bytes;
    unsigned window;
    void (*progress)(void *ctx, const nk_rollout_progress *p); /* may be NULL */
    void *ctx;
} nk_rollout_options;

#define NK_EXPAND_MAX_WINDOW 8u

typedef struct nk_rollout nk_rollout;

/* rc NK_OK, or the failure: msg says what failed and what to do. */
typedef void (*nk_rollout_done_fn)(void *arg, int rc, const char *msg);

/* Start; done runs exactly once, later, on the loop. */
int nk_rollout_start(nk_rt *rt, const nk_rollout_options *o, nk_rollout_done_fn done, void *arg,
                     nk_rollout **out);
/* Stop and free (done is not called after this). */
void nk_rollout_free(nk_rollout *r);

/* Parse "STORE:PEER@HOST:PORT". */
int nk_expand_parse_target(const char *s, nk_expand_target *t);

#endif /* NK_MIGRATE_EXPAND_H */
