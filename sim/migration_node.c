/*
 * migration_node.c - the apps a store node of the `migration` workload runs
 * besides nk_cluster (contract in sim/migration_wl.h):
 *   - the standalone server, nk_standalone (the `nokv serve` stack without
 *     --store-id): workdir gate, engine, RESP on nN:6380, sync always, so
 *     an OK is durable; a graceful stop runs its shutdown;
 *   - the operator's offline step on that machine: `nokv migrate plan`
 *     (first run only) and `nokv migrate init` through nk_migrate_plan and
 *     nk_migrate_init, the functions cli/migrate.c calls; the "process"
 *     exits (nk_rt_stop) when init is done;
 *   - a probe: nk_standalone_start on a workdir a migration is preparing,
 *     which must be refused (NK_EMODE); the process exits either way.
 * Nothing here reimplements the server or the migration.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/server/standalone.h"
#include "sim/migration_wl.h"

typedef struct mnode {
    nk_msim_world *m;
    nk_rt *rt;
    uint32_t node;
    nk_msim_phase phase;
    nk_standalone *sa;
    uint64_t exit_timer;
} mnode;

static void exit_fire(void *arg)
{
    mnode *n = arg;
    n->exit_timer = 0;
    nk_rt_stop(n->rt); /* the CLI process returns */
}

static void exit_soon(mnode *n)
{
    if (n->exit_timer == 0) {
        n->exit_timer = nk_rt_timer_start(n->rt, 0, exit_fire, n);
    }
}

static void on_sa_shutdown(void *arg)
{
    mnode *n = arg;
    if (n->sa != NULL) {
        nk_standalone_shutdown(n->sa); /* ends in nk_rt_stop once the engine closed */
    } else {
        exit_soon(n);
    }
}

static void sa_config(mnode *n, nk_standalone_config *sc, char *addr, size_t len)
{
    snprintf(addr, len, "n%u:%d", n->node, NK_CSIM_RESP_PORT);
    memset(sc, 0, sizeof(*sc));
    sc->workdir = "/data";
    sc->addr = addr;
    sc->sync = NK_SYNC_ALWAYS;
    nk_csim_db_options(nk_msim_world_opts(n->m), &sc->db);
    sc->version = "sim";
}

static void on_init_done(void *arg, int rc, const nk_init_result *r, const char *msg)
{
    mnode *n = arg;
    if (rc == NK_ECRASHED) {
        return; /* the node lost power inside init: the world sees it down */
    }
    nk_msim_world_init_done(n->m, rc, r, msg);
    exit_soon(n);
}

int nk_msim_node_start(void *ctx, nk_rt *rt, uint32_t node, void **state)
{
    nk_msim_world *m = ctx;
    nk_msim_phase phase = nk_msim_world_phase(m, node);
    if (phase == NK_MSIM_CLUSTER) {
        return NK_ENOENT;
    }
    mnode *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NK_ENOMEM;
    }
    n->m = m;
    n->rt = rt;
    n->node = node;
    n->phase = phase;
    *state = n;
    nk_rt_set_shutdown_handler(rt, on_sa_shutdown, n);
    char addr[32];
    nk_standalone_config sc;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = NK_OK;
    switch (phase) {
    case NK_MSIM_STANDALONE:
        sa_config(n, &sc, addr, sizeof(addr));
        rc = nk_standalone_start(rt, &sc, &n->sa, &eb);
        if (rc != NK_OK) {
            n->sa = NULL;
            if (rc != NK_ECRASHED) {
                char what[700];
                snprintf(what, sizeof(what), "nk_standalone_start failed: %s (%s)", nk_errname(rc),
                         eb.msg);
                nk_msim_world_violation(m, node, what);
            }
            free(n);
            *state = NULL;
            return rc;
        }
        return NK_OK;
    case NK_MSIM_PROBE:
        sa_config(n, &sc, addr, sizeof(addr));
        rc = nk_standalone_start(rt, &sc, &n->sa, &eb);
        if (rc == NK_ECRASHED) {
            free(n);
            *state = NULL;
            return rc;
        }
        nk_msim_world_probe_done(m, rc, eb.msg);
        if (rc == NK_OK) {
            nk_standalone_shutdown(n->sa); /* the world failed the run already */
        } else {
            n->sa = NULL;
            exit_soon(n);
        }
        return NK_OK;
    case NK_MSIM_INIT: {
        if (nk_msim_world_plan_wanted(m)) {
            nk_plan_result *pr = calloc(1, sizeof(*pr));
            if (pr == NULL) {
                free(n);
                *state = NULL;
                return NK_ENOMEM;
            }
            rc = nk_migrate_plan(rt, "/data", pr);
            if (rc == NK_ECRASHED) {
                free(pr);
                free(n);
                *state = NULL;
                return rc;
            }
            nk_msim_world_plan_done(m, rc, pr);
            free(pr);
        }
        nk_init_args ia = {"/data", 1, NK_CSIM_REGION, NK_MSIM_SEED_PEER + 1};
        nk_migrate_init(rt, &ia, on_init_done, n);
        return NK_OK;
    }
    case NK_MSIM_CLUSTER:
        break;
    }
    free(n);
    *state = NULL;
    return NK_EINVAL;
}

void nk_msim_node_stop(void *state, bool crashed)
{
    mnode *n = state;
    if (n == NULL) {
        return;
    }
    if (n->sa != NULL) {
        if (crashed) {
            nk_standalone_abandon(n->sa);
        } else {
            nk_standalone_free(n->sa);
        }
    }
    free(n);
}
