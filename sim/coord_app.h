/*
 * coord_app.h - the production coordinator as a simulator app.
 *
 * For scenarios and tests that need a coordinator beside their stores:
 *   nk_sim_coord_cfg cfg = {.svc = {.addr = "coord:2379", .workdir = "/coord"}};
 *   nk_sim_add_node(s, "coord", &nk_sim_coord_app, &cfg, &id);
 * The node's state (nk_sim_node_state) is the nk_coord_service. A graceful
 * stop runs the service's shutdown; a crash frees it without I/O. A failed
 * start (e.g. a fence file that does not verify) leaves the message in
 * cfg->error.
 */
#ifndef NK_SIM_COORD_APP_H
#define NK_SIM_COORD_APP_H

#include "nokv/coord/service.h"
#include "sim/sim.h"

typedef struct nk_sim_coord_cfg {
    nk_coord_service_config svc;
    nk_errbuf error; /* why the last start failed */
} nk_sim_coord_cfg;

extern const nk_sim_app nk_sim_coord_app;

#endif /* NK_SIM_COORD_APP_H */
