/*
 * raft_wl.h - the `raft` workload of nokv-sim: shared between the node app
 * (sim/raft_node.c) and the world (sim/raft_world.c: clients, nemesis,
 * checkers). Not used outside sim/.
 *
 * The node app runs one nk_raft on the simulated runtime the way a server
 * would: ticks from a timer, messages over framed connections, a durable log
 * on the node's disk, a small replicated state machine, snapshots. The world
 * is the outside observer: it holds the checkers' knowledge (which survives
 * node crashes), plays the clients, and drives leader-targeted faults,
 * membership changes and leader transfers.
 *
 * Direction of calls:
 *   - world -> node (nk_sraft_node_*): only memory operations on the node's
 *     raft and queues, plus starting a zero-delay timer, so the node does its
 *     I/O later inside its own callbacks. The world never makes a node do
 *     file or network I/O from a global event: a failpoint crash there would
 *     free the node under the caller's feet.
 *   - node -> world (nk_sraft_world_*): checker hooks (observations) and
 *     client replies; they never call back into a node.
 */
#ifndef NK_SIM_RAFT_WL_H
#define NK_SIM_RAFT_WL_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/raft/raft.h"
#include "sim/workload.h"

#define NK_SRAFT_MAX_NODES 9
#define NK_SRAFT_MAX_KEYS 8
#define NK_SRAFT_MAX_CLIENTS 8
#define NK_SRAFT_PORT 7100

typedef struct nk_sraft_world nk_sraft_world;
typedef struct nk_sraft_node nk_sraft_node;

/* Per-node configuration handed to app->start. */
typedef struct nk_sraft_cfg {
    nk_sraft_world *w;
    uint32_t node;
} nk_sraft_cfg;

/* Options of the workload (docs/simulation.md, section `raft`). */
typedef struct nk_sraft_opts {
    uint32_t voters;   /* founding voters n1..nV */
    uint32_t learners; /* founding learners after them; the rest are spares */
    uint64_t tick_ns;  /* raft tick (node-local time) */
    uint32_t election_ticks;
    uint32_t heartbeat_ticks;
    uint32_t compact_every; /* compact when applied - snapshot >= this; 0 = never */
    uint32_t clients;
    uint32_t keys;
    bool conf_changes;
    bool transfers;
    bool nemesis;                            /* leader-targeted crashes, kills and partitions */
    uint64_t nemesis_min_ns, nemesis_max_ns; /* gap between nemesis actions */
    uint32_t fresh_leader_crash;             /* percent of new leaders crashed within ~40ms */
    uint32_t figure8;      /* percent of nemesis turns that start a figure-8 episode */
    uint32_t commit_crash; /* percent of leaders crashed right after their term's first commit */
    uint64_t batch_bytes;  /* max_batch_bytes; 0 = seeded per boot: 1 B (3 boots in 4) or 4 KiB */
    uint64_t within_ns;    /* liveness bound for client ops after `check mark` */
    bool bug_commit_prev_term;
} nk_sraft_opts;

/* ------------------------------------------------------ client protocol --- */

enum { NK_SRAFT_OP_WRITE = 1, NK_SRAFT_OP_READ = 2 };

enum nk_sraft_reply_status {
    NK_SRAFT_OK = 0,       /* done; for reads `value` holds the result */
    NK_SRAFT_REDIRECT = 1, /* not the leader (hint in `lead`, 0 = unknown) */
    NK_SRAFT_RETRY = 2,    /* this attempt failed without effect we know of */
};

typedef struct nk_sraft_req {
    uint32_t client;
    uint64_t seq;     /* the client's operation number; retries reuse it */
    uint64_t attempt; /* the client's attempt number (echoed) */
    uint8_t op;
    uint32_t key;
    uint64_t value; /* writes: unique value */
} nk_sraft_req;

/* ----------------------------------------------------- node -> world --- */

/* The world's view of a node after any event that touched its raft. */
void nk_sraft_world_observe(nk_sraft_world *w, uint32_t node, const nk_raft *r);
/* An entry was written to the node's log (log matching across all nodes). */
void nk_sraft_world_persisted(nk_sraft_world *w, uint32_t node, const nk_raft_entry *e,
                              uint64_t prev_term);
/* The state machine applied `index`: entry (term, hash), running chain and
 * the state's hash afterwards. */
void nk_sraft_world_applied(nk_sraft_world *w, uint32_t node, uint64_t index, uint64_t term,
                            uint64_t entry_hash, uint64_t chain, uint64_t state_hash);
/* The node installed a snapshot (state at `index`). */
void nk_sraft_world_installed(nk_sraft_world *w, uint32_t node, uint64_t index, uint64_t term,
                              uint64_t chain, uint64_t state_hash);
/* A log sync finished: everything up to `offset` of segment `seg` and the
 * hard state hs are promised durable. */
void nk_sraft_world_synced(nk_sraft_world *w, uint32_t node, uint64_t seg, uint64_t offset,
                           const nk_raft_hard_state *hs);
/* Recovery finished: what the node found. Checked against the promises. */
void nk_sraft_world_recovered(nk_sraft_world *w, uint32_t node, uint64_t seg, uint64_t valid_offset,
                              const nk_raft_hard_state *hs, uint64_t snap_index,
                              uint64_t last_index);
/* A reply to a client request (delivered after a client-network delay). */
void nk_sraft_world_reply(nk_sraft_world *w, uint32_t node, const nk_sraft_req *rq, int status,
                          uint64_t value, uint64_t lead);
/* A local invariant of the node broke (malformed entry, bad snapshot...). */
void nk_sraft_world_violation(nk_sraft_world *w, uint32_t node, const char *what);

const nk_sraft_opts *nk_sraft_world_opts(const nk_sraft_world *w);
uint32_t nk_sraft_world_nodes(const nk_sraft_world *w);
nk_sim *nk_sraft_world_sim(const nk_sraft_world *w);

/* ----------------------------------------------------- world -> node --- */

extern const nk_sim_app nk_sraft_app;

/* A client request arrives (memory only; the node answers through
 * nk_sraft_world_reply, now or after the entry applies). */
void nk_sraft_node_request(nk_sraft_node *a, const nk_sraft_req *rq);
/* Membership change / leader transfer on this node's raft (must be leader). */
int nk_sraft_node_conf_change(nk_sraft_node *a, uint8_t cc_type, uint64_t node);
int nk_sraft_node_transfer(nk_sraft_node *a, uint64_t target);
/* NULL while the node has no raft (failed boot). */
const nk_raft *nk_sraft_node_raft(const nk_sraft_node *a);
uint64_t nk_sraft_node_applied(const nk_sraft_node *a);

#endif /* NK_SIM_RAFT_WL_H */
