/*
 * serve_cluster.c - `nokv serve --store-id N ...`: one store of a cluster on
 * the real runtime (nokv/server/cluster.h). `nokv serve` hands over here as
 * soon as --store-id is given.
 *
 * Exit status: 0 after a graceful shutdown, 1 when the store could not start
 * or stopped with an error, 2 for a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/server/cluster.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nokv serve --store-id N [--workdir DIR] [--addr HOST:PORT]\n"
            "                  [--redis-addr HOST:PORT] [--initial-cluster ID=HOST:PORT,...]\n"
            "                  [--coordinator-addr HOST:PORT] [--metrics-addr HOST:PORT]\n"
            "                  [--log-level L] [--log-format F] [--log-file PATH]\n"
            "                  [--config FILE] [--check-config]\n"
            "\n"
            "Serve DIR as store N of a NoKV cluster (distributed mode).\n"
            "\n"
            "  --store-id N           this store's id (must match the workdir's)\n"
            "  --workdir DIR          default ./data; a workdir seeded by `nokv migrate\n"
            "                         init`, one already serving as a store, or a new one\n"
            "  --addr HOST:PORT       raft and admin service (default 127.0.0.1:20170)\n"
            "  --redis-addr HOST:PORT RESP clients (default 127.0.0.1:6380)\n"
            "  --initial-cluster LIST found a new cluster: every listed store hosts a\n"
            "                         voter of region 1 (peer id = store id); give the\n"
            "                         same list to each founding store\n"
            "  --coordinator-addr A   register with the coordinator at A: heartbeats,\n"
            "                         region reports (kept in LOCALMETA until answered),\n"
            "                         addresses of stores added later; with an empty\n"
            "                         workdir and no --initial-cluster the store joins\n"
            "                         and waits to be added as a peer. Serving never\n"
            "                         waits on the coordinator\n"
            "  --metrics-addr A       HTTP /metrics (Prometheus), /health, /ready\n"
            "                         (ready: every hosted region has a leader)\n" NK_CLI_LOG_HELP
            "\n"
            "Writes are acknowledged after their raft entry is committed (fsynced on a\n"
            "majority) and applied; reads are linearizable (ReadIndex). A store that does\n"
            "not lead region 1 relays requests to the leader (-TRYAGAIN when none is\n"
            "known).\n");
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n == 0) {
        return -1;
    }
    *out = n;
    return 0;
}

static void on_shutdown(void *arg)
{
    nk_cli_shutdown_begins();
    nk_cluster_shutdown(arg);
}

static int exit_status(void *arg)
{
    return nk_cluster_exit_status(arg);
}

static void app_free(void *arg)
{
    nk_cluster_free(arg);
}

int nk_cli_serve_cluster(int argc, char **argv)
{
    nk_cluster_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.workdir = "./data";
    cfg.addr = "127.0.0.1:20170";
    cfg.redis_addr = "127.0.0.1:6380";
    cfg.version = NK_CLI_VERSION;
    nk_db_options_default(&cfg.db);
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_INFO;
    int lo = 0;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "nokv serve: %s needs a value (see nokv serve --store-id 1 --help)\n",
                    a);
            return 2;
        }
        if (strcmp(a, "--store-id") == 0) {
            if (parse_u64(v, &cfg.store_id) != 0) {
                fprintf(stderr, "nokv serve: --store-id wants a positive integer, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--workdir") == 0) {
            cfg.workdir = v;
        } else if (strcmp(a, "--addr") == 0) {
            cfg.addr = v;
        } else if (strcmp(a, "--metrics-addr") == 0) {
            cfg.metrics_addr = v;
        } else if (strcmp(a, "--redis-addr") == 0) {
            cfg.redis_addr = v;
        } else if (strcmp(a, "--coordinator-addr") == 0) {
            cfg.coordinator_addr = v;
        } else if (strcmp(a, "--initial-cluster") == 0) {
            if (nk_cluster_parse_initial(v, &cfg, &eb) != NK_OK) {
                fprintf(stderr, "nokv serve: %s\n", eb.msg);
                return 2;
            }
        } else if ((lo = nk_cli_log_option("nokv serve", a, v, &rc)) != 0) {
            if (lo < 0) {
                return 2;
            }
        } else {
            fprintf(stderr,
                    "nokv serve: unknown option '%s' in distributed mode (see nokv "
                    "serve --store-id 1 --help)\n",
                    a);
            return 2;
        }
        i++;
    }
    if (cfg.store_id == 0) {
        fprintf(stderr, "nokv serve: distributed mode needs --store-id N\n");
        return 2;
    }
    if (nk_cli_check_only()) {
        return nk_cli_config_ok("nokv serve");
    }
    nk_rt *rt = NULL;
    if (nk_cli_rt_new("nokv serve", &rc, &rt) != NK_OK) {
        return 1;
    }
    nk_cluster *c = NULL;
    int err = nk_cluster_start(rt, &cfg, &c, &eb);
    if (err != NK_OK) {
        return nk_cli_start_failed("nokv serve", rt, err, &eb);
    }
    char ready[160], bound[64] = "";
    (void)nk_cluster_redis_addr(c, bound, sizeof(bound));
    snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving RESP on %s", bound);
    nk_cli_app app = {c, on_shutdown, exit_status, app_free, true};
    return nk_cli_run("nokv serve", rt, ready, &app);
}
