/*
 * workload.h - what a scenario runs on its nodes, and how it is checked.
 *
 * A workload couples an app (production code booted on each node, see
 * nk_sim_app) with a checker that watches it from outside. The checker's
 * state ("world") survives node crashes: it is the observer's knowledge, the
 * way a client remembers which writes were acknowledged.
 *
 * Checkers report violations through nk_sim_fail(); the first one halts the
 * simulation and becomes the run's result.
 */
#ifndef NK_SIM_WORKLOAD_H
#define NK_SIM_WORKLOAD_H

#include "sim/sim.h"

typedef enum nk_sim_verdict {
    NK_SIM_PASS = 0,
    NK_SIM_SAFETY = 1,   /* an invariant broke: lost ack, wrong value, ... */
    NK_SIM_LIVENESS = 2, /* no progress within the bound after faults healed */
    NK_SIM_CRASH = 3,    /* the code under test aborted */
} nk_sim_verdict;

typedef struct nk_sim_result {
    nk_sim_verdict verdict;
    char what[512];
    uint64_t at_ns;
} nk_sim_result;

typedef struct nk_sim_workload {
    const char *name;
    const nk_sim_app *app;
    /* Create the shared checker state for a run with `nodes` nodes. */
    void *(*world_new)(nk_sim *s, nk_sim_result *res, uint32_t nodes);
    /* A `option key=value` line; NK_EINVAL for unknown keys or bad values. */
    int (*option)(void *world, const char *key, const char *value);
    /* Per-node configuration passed to app->start (owned by the world). */
    void *(*node_cfg)(void *world, uint32_t node);
    /* A timed `check NAME [key=value...]` step. NK_EINVAL if unknown. */
    int (*check)(void *world, const char *name, const char *args);
    /* End-of-run checks (every node that is up is still running). */
    void (*finish)(void *world);
    void (*world_free)(void *world);
} nk_sim_workload;

/* Record a violation (first one wins) and halt the simulation. */
void nk_sim_fail(nk_sim *s, nk_sim_result *res, nk_sim_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The workloads built into nokv-sim. */
extern const nk_sim_workload nk_sim_workload_echo;
extern const nk_sim_workload nk_sim_workload_raft; /* sim/raft_world.c */
extern const nk_sim_workload nk_sim_workload_engine;
extern const nk_sim_workload nk_sim_workload_cluster; /* sim/cluster_world.c */
extern const nk_sim_workload nk_sim_workload_coord; /* sim/coord_wl.c */
extern const nk_sim_workload nk_sim_workload_migration; /* sim/migration_world.c */

const nk_sim_workload *nk_sim_workload_find(const char *name);

#endif /* NK_SIM_WORKLOAD_H */
