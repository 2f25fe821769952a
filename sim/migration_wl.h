/*
 * migration_wl.h - the `migration` workload of nokv-sim: the whole
 * standalone -> seed -> cluster lifecycle (docs/migration.md) on simulated
 * nodes, built over the `cluster` workload's world (sim/cluster_wl.h: its
 * RESP clients, history and checkers are used as they are).
 *
 * Store node n1 first runs the standalone server (nk_standalone, what
 * `nokv serve` runs without --store-id); the operator (sim/migration_world.c)
 * stops it, boots `nokv migrate plan` + `nokv migrate init` on the same node
 * (the same functions the CLI calls), restarts it as nk_cluster store 1, and
 * drives the rollouts (nokv/migrate/expand.h) from the clients' node.
 * sim/migration_node.c holds the apps a store node runs besides nk_cluster.
 */
#ifndef NK_SIM_MIGRATION_WL_H
#define NK_SIM_MIGRATION_WL_H

#include <stdint.h>

#include "nokv/migrate/init.h"
#include "nokv/migrate/plan.h"
#include "sim/cluster_wl.h"

/* What a store node boots next. */
typedef enum nk_msim_phase {
    NK_MSIM_CLUSTER = 0,    /* nk_cluster (sim/cluster_node.c) */
    NK_MSIM_STANDALONE = 1, /* nk_standalone on /data, RESP on nN:6380 */
    NK_MSIM_INIT = 2,       /* plan (first run only) + nk_migrate_init, then exit */
    NK_MSIM_PROBE = 3,      /* nk_standalone_start only (must be refused), then exit */
} nk_msim_phase;

#define NK_MSIM_SEED_PEER 100 /* peer id of store N is 100 + N */

typedef struct nk_msim_world nk_msim_world;

/* ------------------------------------------------------ node -> world --- */

nk_msim_phase nk_msim_world_phase(nk_msim_world *m, uint32_t node);
const nk_csim_opts *nk_msim_world_opts(nk_msim_world *m);
bool nk_msim_world_plan_wanted(nk_msim_world *m);
void nk_msim_world_plan_done(nk_msim_world *m, int rc, const nk_plan_result *r);
void nk_msim_world_init_done(nk_msim_world *m, int rc, const nk_init_result *r, const char *msg);
void nk_msim_world_probe_done(nk_msim_world *m, int rc, const char *msg);
void nk_msim_world_violation(nk_msim_world *m, uint32_t node, const char *what);

/* ------------------------------------------------------ world -> node --- */

/* The alternative apps (nk_csim_alt.start/stop; ctx = the world). */
int nk_msim_node_start(void *ctx, nk_rt *rt, uint32_t node, void **state);
void nk_msim_node_stop(void *state, bool crashed);

#endif /* NK_SIM_MIGRATION_WL_H */
