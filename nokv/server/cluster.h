/*
 * cluster.h - the distributed-mode server: one store of a NoKV cluster, as
 * one app on a runtime (`nokv serve --store-id N ...`).
 *
 * Lifecycle:
 *   start     own the workdir (LOCK; MODE.json must be seeded or cluster, or
 *             the workdir must be new: an empty directory joins as a new
 *             store; a standalone database is refused with the migration
 *             command to run), open the engine, the data-plane state machine
 *             and the raftstore on --addr, seed region 1 when founding a
 *             cluster with --initial-cluster, serve RESP on --redis-addr
 *             through the cluster backend, then record mode `cluster`;
 *   shutdown  stop RESP, close the store, close the engine (fsync), unlock,
 *             nk_rt_stop();
 *   free / abandon as in standalone.h.
 *
 * Store addresses: from --initial-cluster, from every HELLO a store
 * receives, and with a coordinator from its GetStore (asked in the
 * background the first time raft needs a store it cannot dial; raft
 * retransmits, the answer lands in the store's address book). So a store
 * added later is reachable without restarting anyone.
 *
 * With coordinator_addr the store also runs the reporter (coord/client.h):
 * heartbeats with region and leader counts, and a region report for every
 * region it leads, on every change of leader or epoch (kept in LOCALMETA's
 * pending events until the coordinator answered it, so a restart re-delivers
 * it) and every 10 s. Nothing the store needs to serve waits on the
 * coordinator: it starts, elects, replicates and serves its hosted regions
 * from LOCALMETA while the coordinator is down. A workdir that hosts no
 * region yet (new store, no --initial-cluster) starts only with a
 * coordinator: it registers and waits for a leader to add a peer here.
 */
#ifndef NK_SERVER_CLUSTER_H
#define NK_SERVER_CLUSTER_H

#include <stdint.h>

#include "nokv/engine/db.h"
#include "nokv/store/store.h"

#define NK_CLUSTER_MAX_INITIAL 16

typedef struct nk_cluster_member {
    uint64_t store_id;
    char addr[128];
} nk_cluster_member;

typedef struct nk_cluster_config {
    const char *workdir;
    uint64_t store_id;
    const char *addr;             /* raft + admin service, "127.0.0.1:20170" */
    const char *redis_addr;       /* RESP, "127.0.0.1:6380" */
    const char *coordinator_addr; /* may be NULL */
    /* Founding members (store id = peer id of region 1, all voters), empty
     * when joining an existing cluster or serving a migrated seed. */
    nk_cluster_member initial[NK_CLUSTER_MAX_INITIAL];
    unsigned n_initial;
    uint64_t tick_ns; /* 0 = 100 ms */
    nk_db_options db;
    const char *version;
    /* Raft log tuning (0 = the raftstore's defaults); the simulator uses
     * small segments so rolls and purges run under its faults. */
    nk_raftlog_options raftlog;
    /* Checker hooks on the raftstore (store.h); NULL in production. */
    const nk_store_observer *obs;
    /* TEST ONLY (the simulator's planted bug, never set by `nokv serve`):
     * the cluster backend acknowledges a write when it is proposed instead
     * of after it committed and applied. */
    bool unsafe_ack_on_propose;
    /* TEST ONLY (planted bug of the simulator's `migration` workload): at
     * start, a region left APPLYING by an interrupted snapshot install is
     * not rolled back (nk_admin_service_new_ex). */
    bool unsafe_skip_install_rollback;
    const char *metrics_addr; /* NULL: no HTTP status endpoint (metrics.h) */
} nk_cluster_config;

typedef struct nk_cluster nk_cluster;

int nk_cluster_start(nk_rt *rt, const nk_cluster_config *cfg, nk_cluster **out, nk_errbuf *eb);
int nk_cluster_redis_addr(nk_cluster *c, char *buf, size_t len);
/* The status endpoint's bound address; NK_ENOENT without metrics_addr. */
int nk_cluster_metrics_addr(nk_cluster *c, char *buf, size_t len);
void nk_cluster_shutdown(nk_cluster *c);
int nk_cluster_exit_status(const nk_cluster *c);
void nk_cluster_free(nk_cluster *c);
void nk_cluster_abandon(nk_cluster *c);

/* For observers (the simulator's checkers) and tests: read-only use, never
 * across a shutdown. */
nk_store *nk_cluster_store(nk_cluster *c);
nk_db *nk_cluster_db(nk_cluster *c);
struct nk_kvsm *nk_cluster_kvsm(nk_cluster *c);
struct nk_kv_backend *nk_cluster_kv(nk_cluster *c);

/* Parse "1=127.0.0.1:20170,2=127.0.0.1:20171,..." into cfg->initial. */
int nk_cluster_parse_initial(const char *spec, nk_cluster_config *cfg, nk_errbuf *eb);

#endif /* NK_SERVER_CLUSTER_H */
