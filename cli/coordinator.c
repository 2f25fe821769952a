/*
 * coordinator.c - `nokv coordinator`: run the coordinator service on the
 * real runtime (nokv/coord/service.h).
 *
 * Exit status: 0 after a graceful shutdown (SIGTERM/SIGINT: state written,
 * connections closed), 1 when it could not start or stopped with an error,
 * 2 for a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/coord/client.h"
#include "nokv/coord/service.h"
#include "nokv/server/metrics.h"

static void coordinator_usage(FILE *out)
{
    fprintf(out,
            "usage: nokv coordinator --workdir DIR [--addr HOST:PORT] [--id-start N]\n"
            "                        [--ts-start N] [--metrics-addr HOST:PORT]\n"
            "                        [--log-level L] [--log-format text|json] [--log-file PATH]\n"
            "                        [--config FILE] [--check-config]\n"
            "       nokv coordinator status [--coordinator-addr HOST:PORT]\n"
            "\n"
            "Run the cluster coordinator: store registry and liveness, region routing\n"
            "learned from store reports, ID allocation and a timestamp oracle.\n"
            "\n"
            "  --workdir DIR     where the registry, catalog and allocator fences live\n"
            "                    (created if missing; required)\n"
            "  --addr HOST:PORT  listen address (default 127.0.0.1:2379; port 0 picks one)\n"
            "  --id-start N      first ID of a fresh workdir, and a floor after restart\n"
            "  --ts-start N      the same for timestamps\n"
            "  --metrics-addr A  HTTP /metrics (Prometheus), /health, /ready (default "
            "off)\n" NK_CLI_LOG_HELP "\n"
            "IDs and timestamps are never handed out twice, even after a crash: each\n"
            "answer waits until the fence covering it is on disk.\n"
            "SIGTERM or SIGINT stops gracefully (exit 0).\n");
}

static int parse_u64(const char *flag, const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n == 0 || v[0] == '-') {
        fprintf(stderr, "nokv coordinator: %s wants a positive integer, got '%s'\n", flag, v);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

/* The coordinator and its status endpoint: /ready turns 503 at shutdown. */
typedef struct coord_run {
    nk_coord_service *svc;
    nk_status_server *status_srv;
    bool draining;
} coord_run;

static void on_shutdown(void *arg)
{
    coord_run *cr = arg;
    cr->draining = true;
    nk_cli_shutdown_begins();
    nk_coord_service_shutdown(cr->svc);
}

static int exit_status(void *arg)
{
    coord_run *cr = arg;
    return nk_coord_service_exit_status(cr->svc);
}

static void app_free(void *arg)
{
    coord_run *cr = arg;
    nk_status_server_free(cr->status_srv);
    nk_coord_service_free(cr->svc);
}

static void coord_metrics(void *ctx, nk_metrics *m)
{
    coord_run *cr = ctx;
    nk_metrics_coord(m, cr->svc);
}

static bool coord_ready(void *ctx, char *why, size_t len)
{
    coord_run *cr = ctx;
    if (cr->draining) {
        snprintf(why, len, "draining: shutting down");
        return false;
    }
    return true;
}

/* ------------------------------------------------ nokv coordinator status --- */

/* `nokv coordinator status [--coordinator-addr A] [-o table|json]` is the same
 * view as `nokv status --addr A`: one implementation (cli/status.c). */
static int coordinator_status(int argc, char **argv)
{
    const char *addr = "127.0.0.1:2379";
    const char *out = "table";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nokv coordinator status [--coordinator-addr HOST:PORT] [-o table|json]\n"
                   "\n"
                   "The stores and regions the coordinator knows (default address "
                   "127.0.0.1:2379);\nthe same as `nokv status --addr HOST:PORT`.\n");
            return 0;
        } else if (strcmp(argv[i], "--coordinator-addr") == 0 && i + 1 < argc) {
            addr = argv[++i];
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "nokv coordinator status: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    char *args[] = {"--addr", (char *)addr, "-o", (char *)out, NULL};
    return nk_cli_status(4, args);
}

int nk_cli_coordinator(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "status") == 0) {
        return coordinator_status(argc - 1, argv + 1);
    }
    int st = nk_cli_config_expand("nokv coordinator", nk_cli_coordinator_keys, &argc, &argv);
    if (st != 0) {
        return st;
    }
    nk_coord_service_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = "127.0.0.1:2379";
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_INFO;
    int lo = 0;
    const char *metrics_addr = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            coordinator_usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "nokv coordinator: %s needs a value (see nokv coordinator --help)\n",
                    a);
            return 2;
        }
        if (strcmp(a, "--workdir") == 0) {
            cfg.workdir = v;
        } else if (strcmp(a, "--addr") == 0) {
            cfg.addr = v;
        } else if (strcmp(a, "--metrics-addr") == 0) {
            metrics_addr = v;
        } else if (strcmp(a, "--id-start") == 0) {
            if (parse_u64(a, v, &cfg.id_start) != 0) {
                return 2;
            }
        } else if (strcmp(a, "--ts-start") == 0) {
            if (parse_u64(a, v, &cfg.ts_start) != 0) {
                return 2;
            }
        } else if ((lo = nk_cli_log_option("nokv coordinator", a, v, &rc)) != 0) {
            if (lo < 0) {
                return 2;
            }
        } else {
            fprintf(stderr, "nokv coordinator: unknown option '%s' (see nokv coordinator --help)\n",
                    a);
            return 2;
        }
        i++;
    }
    if (cfg.workdir == NULL) {
        fprintf(stderr, "nokv coordinator: --workdir is required (it holds the allocator "
                        "fences that keep IDs unique across restarts)\n");
        return 2;
    }

    if (nk_cli_check_only()) {
        return nk_cli_config_ok("nokv coordinator");
    }
    nk_rt *rt = NULL;
    if (nk_cli_rt_new("nokv coordinator", &rc, &rt) != NK_OK) {
        return 1;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_coord_service *s = NULL;
    int err = nk_coord_service_start(rt, &cfg, &s, &eb);
    if (err != NK_OK) {
        return nk_cli_start_failed("nokv coordinator", rt, err, &eb);
    }
    nk_coord_service_info info;
    nk_coord_service_info_get(s, &info);
    char bound[128] = "";
    (void)nk_coord_service_addr(s, bound, sizeof(bound));
    printf("nokv coordinator %s: %s %s\n", NK_CLI_VERSION, info.fresh ? "initialised" : "recovered",
           cfg.workdir);
    printf("restored %zu regions, %zu stores; allocator starts id=%" PRIu64 " ts=%" PRIu64 "\n",
           info.regions, info.stores, info.next_id, info.next_ts);
    printf("listening on %s\n", bound);
    static coord_run cr;
    cr.svc = s;
    nk_status_server *status_srv = NULL;
    if (metrics_addr != NULL) {
        nk_status_source src = {&cr, "coordinator", NK_CLI_VERSION, coord_metrics, coord_ready};
        err = nk_status_server_start(rt, metrics_addr, &src, &status_srv);
        if (err != NK_OK) {
            fprintf(stderr, "nokv coordinator: cannot listen on --metrics-addr %s: %s\n",
                    metrics_addr, nk_strerror(err));
            nk_coord_service_free(s);
            nk_rt_real_free(rt);
            return 1;
        }
        (void)nk_status_server_addr(status_srv, bound, sizeof(bound));
        printf("metrics on http://%s/\n", bound);
    }
    fflush(stdout);
    cr.status_srv = status_srv;
    nk_cli_app app = {&cr, on_shutdown, exit_status, app_free, false};
    return nk_cli_run("nokv coordinator", rt, "READY=1\nSTATUS=coordinator serving", &app);
}
