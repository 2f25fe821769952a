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
 * Store addresses: from --initial-cluster, and from every HELLO a store
 * receives (a store added later dials in and is then reachable without
 * restarting anyone).
 */
#ifndef NK_SERVER_CLUSTER_H
#define NK_SERVER_CLUSTER_H

#include <stdint.h>

#include "nokv/engine/db.h"

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

/* Parse "1=127.0.0.1:20170,2=127.0.0.1:20171,..." into cfg->initial. */
int nk_cluster_parse_initial(const char *spec, nk_cluster_config *cfg, nk_errbuf *eb);

#endif /* NK_SERVER_CLUSTER_H */
