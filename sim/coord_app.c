/* coord_app.c - the coordinator service as a simulator app (see coord_app.h). */
#include "sim/coord_app.h"

#include <string.h>

static void on_shutdown(void *arg)
{
    nk_coord_service_shutdown(arg);
}

static int coord_app_start(nk_rt *rt, void *cfgp, void **state)
{
    nk_sim_coord_cfg *cfg = cfgp;
    nk_coord_service *s = NULL;
    memset(&cfg->error, 0, sizeof(cfg->error));
    int rc = nk_coord_service_start(rt, &cfg->svc, &s, &cfg->error);
    if (rc != NK_OK) {
        return rc;
    }
    nk_rt_set_shutdown_handler(rt, on_shutdown, s);
    *state = s;
    return NK_OK;
}

static void coord_app_stop(void *state, bool crashed)
{
    (void)crashed; /* free does no I/O: the same path after a crash */
    nk_coord_service_free(state);
}

const nk_sim_app nk_sim_coord_app = {"coordinator", coord_app_start, coord_app_stop};
