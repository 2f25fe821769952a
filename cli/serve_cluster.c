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
    fprintf(out, "usage: nokv serve --store-id N [--workdir DIR] [--addr HOST:PORT]\n"
                 "                  [--redis-addr HOST:PORT] [--initial-cluster ID=HOST:PORT,...]\n"
                 "                  [--coordinator-addr HOST:PORT] [--log-level L]\n"
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
                 "  --log-level L          debug|info|warn|error (default info)\n"
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
    nk_cluster_shutdown(arg);
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
    nk_log_level level = NK_LOG_INFO;
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
        } else if (strcmp(a, "--redis-addr") == 0) {
            cfg.redis_addr = v;
        } else if (strcmp(a, "--coordinator-addr") == 0) {
            cfg.coordinator_addr = v;
        } else if (strcmp(a, "--initial-cluster") == 0) {
            if (nk_cluster_parse_initial(v, &cfg, &eb) != NK_OK) {
                fprintf(stderr, "nokv serve: %s\n", eb.msg);
                return 2;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            if (strcmp(v, "debug") == 0) {
                level = NK_LOG_DEBUG;
            } else if (strcmp(v, "info") == 0) {
                level = NK_LOG_INFO;
            } else if (strcmp(v, "warn") == 0) {
                level = NK_LOG_WARN;
            } else if (strcmp(v, "error") == 0) {
                level = NK_LOG_ERROR;
            } else {
                fprintf(stderr, "nokv serve: unknown --log-level '%s'\n", v);
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
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = level;
    rc.failpoints = getenv("NOKV_FAILPOINTS"); /* integration tests only */
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv serve: cannot start the runtime: %s\n", nk_strerror(err));
        return 1;
    }
    nk_cluster *c = NULL;
    err = nk_cluster_start(rt, &cfg, &c, &eb);
    if (err != NK_OK) {
        fprintf(stderr, "nokv serve: %s\n", eb.msg[0] ? eb.msg : nk_strerror(err));
        nk_rt_real_free(rt);
        return 1;
    }
    nk_rt_set_shutdown_handler(rt, on_shutdown, c);
    err = nk_rt_real_run(rt);
    int status = nk_cluster_exit_status(c);
    if (status == NK_EAGAIN) {
        fprintf(stderr, "nokv serve: event loop failed (%s); exiting without cleanup\n",
                nk_strerror(err));
        return 1;
    }
    nk_cluster_free(c);
    nk_rt_real_free(rt);
    if (err != NK_OK || status != NK_OK) {
        fprintf(stderr, "nokv serve: stopped with an error: %s\n",
                nk_strerror(err != NK_OK ? err : status));
        return 1;
    }
    return 0;
}
