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
#include "nokv/coord/service.h"

static void coordinator_usage(FILE *out)
{
    fprintf(out,
            "usage: nokv coordinator --workdir DIR [--addr HOST:PORT] [--id-start N]\n"
            "                        [--ts-start N] [--log-level debug|info|warn|error]\n"
            "\n"
            "Run the cluster coordinator: store registry and liveness, region routing\n"
            "learned from store reports, ID allocation and a timestamp oracle.\n"
            "\n"
            "  --workdir DIR     where the registry, catalog and allocator fences live\n"
            "                    (created if missing; required)\n"
            "  --addr HOST:PORT  listen address (default 127.0.0.1:2379; port 0 picks one)\n"
            "  --id-start N      first ID of a fresh workdir, and a floor after restart\n"
            "  --ts-start N      the same for timestamps\n"
            "  --log-level L     (default info)\n"
            "\n"
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

static void on_shutdown(void *arg)
{
    nk_coord_service_shutdown(arg);
}

int nk_cli_coordinator(int argc, char **argv)
{
    nk_coord_service_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = "127.0.0.1:2379";
    nk_log_level level = NK_LOG_INFO;
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
        } else if (strcmp(a, "--id-start") == 0) {
            if (parse_u64(a, v, &cfg.id_start) != 0) {
                return 2;
            }
        } else if (strcmp(a, "--ts-start") == 0) {
            if (parse_u64(a, v, &cfg.ts_start) != 0) {
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
                fprintf(stderr, "nokv coordinator: unknown --log-level '%s'\n", v);
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

    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = level;
    rc.failpoints = getenv("NOKV_FAILPOINTS"); /* integration tests only */
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv coordinator: cannot start the runtime: %s\n", nk_strerror(err));
        return 1;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_coord_service *s = NULL;
    err = nk_coord_service_start(rt, &cfg, &s, &eb);
    if (err != NK_OK) {
        fprintf(stderr, "nokv coordinator: %s\n", eb.msg[0] ? eb.msg : nk_strerror(err));
        nk_rt_real_free(rt);
        return 1;
    }
    nk_coord_service_info info;
    nk_coord_service_info_get(s, &info);
    char bound[128] = "";
    (void)nk_coord_service_addr(s, bound, sizeof(bound));
    printf("nokv coordinator %s: %s %s\n", NK_CLI_VERSION,
           info.fresh ? "initialised" : "recovered", cfg.workdir);
    printf("restored %zu regions, %zu stores; allocator starts id=%" PRIu64 " ts=%" PRIu64 "\n",
           info.regions, info.stores, info.next_id, info.next_ts);
    printf("listening on %s\n", bound);
    fflush(stdout);
    nk_rt_set_shutdown_handler(rt, on_shutdown, s);
    err = nk_rt_real_run(rt);
    int status = nk_coord_service_exit_status(s);
    nk_coord_service_free(s);
    nk_rt_real_free(rt);
    if (err != NK_OK || status != NK_OK) {
        fprintf(stderr, "nokv coordinator: stopped with an error: %s\n",
                nk_strerror(err != NK_OK ? err : status));
        return 1;
    }
    return 0;
}
