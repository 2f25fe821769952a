/*
 * fuzz_sim.h - the one simulated node the storage fuzz targets run on.
 *
 * Files live on the simulator's in-memory disk, so a fuzzer does no real
 * I/O and every run starts from an empty disk. Included by fuzz_sst.c,
 * fuzz_wal.c and fuzz_manifest.c (each is its own program).
 */
#ifndef NK_FUZZ_SIM_H
#define NK_FUZZ_SIM_H

#include <stdbool.h>
#include <stdlib.h>

#include "sim/sim.h"

static nk_rt *g_rt;     /* the node's runtime, set by boot() */
static bool g_verbose;  /* NOKV_FUZZ_VERBOSE set: print what open said */

static int fuzz_app_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    g_rt = rt;
    *state = rt;
    return NK_OK;
}

static void fuzz_app_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app fuzz_app = {"fuzz", fuzz_app_start, fuzz_app_stop};

/* A fresh simulation with node n1 up; g_rt is its runtime. */
static nk_sim *boot(void)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, 1);
    cfg.log_level = NK_LOG_ERROR;
    nk_sim *s = nk_sim_new(&cfg);
    if (s == NULL || nk_sim_add_node(s, "n1", &fuzz_app, NULL, NULL) != NK_OK ||
        nk_sim_node_start(s, 1) != NK_OK) {
        abort();
    }
    return s;
}

#endif /* NK_FUZZ_SIM_H */
