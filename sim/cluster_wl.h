/*
 * cluster_wl.h - the `cluster` workload of nokv-sim: the production
 * distributed-mode server (nokv/server/cluster.h: workdir gate, engine,
 * data-plane state machine, raftstore, RESP through the cluster backend) on
 * every store node, clients speaking real RESP over the simulated network.
 * Shared between the store app (sim/cluster_node.c) and the world
 * (sim/cluster_world.c: clients, nemesis, checkers). Not used outside sim/.
 *
 * Direction of calls, as in the raft workload:
 *   - world -> node (nk_csim_node_*): memory only, or a zero-delay timer on
 *     the node's runtime, so any I/O happens later inside the node's own
 *     callback (a crash there cannot free the node under the world's feet);
 *   - node -> world (nk_csim_world_*): observations; they never call back
 *     into a node.
 */
#ifndef NK_SIM_CLUSTER_WL_H
#define NK_SIM_CLUSTER_WL_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/raft/raft.h"
#include "sim/workload.h"

#define NK_CSIM_MAX_STORES 9
#define NK_CSIM_RAFT_PORT 20170
#define NK_CSIM_RESP_PORT 6380
#define NK_CSIM_REGION 1

typedef struct nk_csim_world nk_csim_world;
typedef struct nk_csim_node nk_csim_node;

typedef struct nk_csim_cfg {
    nk_csim_world *w;
    uint32_t node;
} nk_csim_cfg;

/* Another app a store node may run instead of nk_cluster (the `migration`
 * workload: the standalone server, `nokv migrate init`). start returns
 * NK_ENOENT to run nk_cluster, else what the app's start returns. */
typedef struct nk_csim_alt {
    int (*start)(void *ctx, nk_rt *rt, uint32_t node, void **state);
    void (*stop)(void *state, bool crashed);
    void *ctx;
} nk_csim_alt;

typedef struct nk_csim_opts {
    uint64_t tick_ns;               /* raft tick of the stores */
    bool small_engine;              /* tiny memtables: flushes and compactions all the time */
    uint32_t compact_every;         /* raft log compaction policy (store.h); 0 = store default */
    uint64_t snapshot_lag;          /* members this far behind get an engine snapshot; 0 = default */
    bool bug_ack_on_propose;        /* the planted bug (nk_cluster_config) */
    bool bug_skip_install_rollback; /* planted bug (nk_cluster_config) */
    bool no_initial;                /* no --initial-cluster: migrated seeds and empty stores */
    const nk_csim_alt *alt;         /* NULL: every node runs nk_cluster */
    const char *coordinator_addr;   /* option coordinator=on: "coord:2379" */
} nk_csim_opts;

/* ----------------------------------------------------- node -> world --- */

const nk_csim_opts *nk_csim_world_opts(const nk_csim_world *w);
uint32_t nk_csim_world_stores(const nk_csim_world *w);
/* After any event that touched the node's raft (one leader per term). */
void nk_csim_world_observe(nk_csim_world *w, uint32_t node, const nk_raft *r);
/* The node's store or server broke (start failed, store invariant). */
void nk_csim_world_violation(nk_csim_world *w, uint32_t node, const char *what);
/* Answer to nk_csim_node_request_hash: the engine's user data at `applied`. */
void nk_csim_world_hash(nk_csim_world *w, uint32_t node, uint64_t gen, uint64_t applied,
                        uint64_t hash, uint64_t keys);

/* The engine options every store node uses (small buffers if asked). */
struct nk_db_options;
void nk_csim_db_options(const nk_csim_opts *o, struct nk_db_options *db);

/* ----------------------------------------------------- world -> node --- */

extern const nk_sim_app nk_csim_store_app;

/* The shared world's handles for a workload built over it (migration). */
nk_csim_opts *nk_csim_world_opts_mut(nk_csim_world *w);
nk_rt *nk_csim_world_client_rt(nk_csim_world *w); /* NULL before the clients' node booted */
/* Stores clients send to and convergence compares (bit n = store n);
 * default: every store. */
void nk_csim_world_set_members(nk_csim_world *w, uint32_t mask);
uint32_t nk_csim_world_members(const nk_csim_world *w);

/* NULL while the node's store is not serving (failed or stopping). */
const nk_raft *nk_csim_node_raft(const nk_csim_node *a);
uint64_t nk_csim_node_applied(const nk_csim_node *a);
bool nk_csim_node_failed(const nk_csim_node *a);
/* The node's raftstore; NULL while not serving nk_cluster. */
struct nk_store *nk_csim_node_store(const nk_csim_node *a);
/* Hash a full scan of the engine's user keys soon (a zero-delay timer on
 * the node); the answer comes through nk_csim_world_hash with `gen`. */
void nk_csim_node_request_hash(nk_csim_node *a, uint64_t gen);

#endif /* NK_SIM_CLUSTER_WL_H */
