/*
 * serve.c - `nokv serve`: run the standalone server on the real runtime.
 *
 * Exit status: 0 after a graceful shutdown (SIGTERM/SIGINT: connections
 * closed, WAL fsynced), 1 when the server could not start or stopped with
 * an error, 2 for a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/migrate/mode.h"
#include "nokv/server/standalone.h"

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: nokv serve [--workdir DIR] [--addr HOST:PORT] [--sync always|group|none]\n"
            "                  [--memtable-mb N] [--cache-mb N] [--log-level L] [--log-format F]\n"
            "                  [--log-file PATH] [--metrics-addr HOST:PORT] [--accept-data-loss]\n"
            "                  [--config FILE] [--check-config]\n"
            "\n"
            "Serve the database in DIR over the Redis protocol (RESP2).\n"
            "\n"
            "  --workdir DIR     database directory, created if missing (default ./data)\n"
            "  --addr HOST:PORT  listen address (default 127.0.0.1:6380)\n"
            "  --sync POLICY     when a write is acknowledged (default always):\n"
            "                      always  after its WAL record is fsynced (group commit)\n"
            "                      group   at once; the WAL is fsynced every 10 ms\n"
            "                      none    at once; the OS decides when data reaches disk\n"
            "  --memtable-mb N   memtable size before a flush (default 64)\n"
            "  --cache-mb N      block cache size (default 8)\n" NK_CLI_LOG_HELP
            "  --metrics-addr HOST:PORT  serve GET /metrics (Prometheus), /health and\n"
            "                    /ready over HTTP on this address (default: off)\n"
            "  --accept-data-loss  open a workdir whose WAL lost acknowledged writes (removed\n"
            "                    or truncated segment) instead of refusing it; what is lost\n"
            "                    is logged and the decision recorded (see nokv repair)\n"
            "\n"
            "Limits: a value is at most 127 MiB (133169152 bytes, the protocol's bulk\n"
            "limit); one write - all keys and values of a SET, MSET or DEL together -\n"
            "at most 128 MiB. A larger request gets an error naming the limit; the\n"
            "server stays writable for everyone else.\n"
            "\n"
            "SIGTERM or SIGINT stops gracefully (exit 0); a second one exits at once.\n"
            "A workdir that was promoted to a cluster (MODE.json) is refused with the\n"
            "command to run instead. With --store-id N, the workdir is served as a store\n"
            "of a cluster (see nokv serve --store-id 1 --help).\n");
}

static int parse_mb(const char *flag, const char *v, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n == 0 || n > 65536) {
        fprintf(stderr, "nokv serve: %s wants a size in MiB (1..65536), got '%s'\n", flag, v);
        return -1;
    }
    *out = (size_t)n << 20;
    return 0;
}

static void on_shutdown(void *arg)
{
    nk_cli_shutdown_begins();
    nk_standalone_shutdown(arg);
}

static int exit_status(void *arg)
{
    return nk_standalone_exit_status(arg);
}

static void app_free(void *arg)
{
    nk_standalone_free(arg);
}

int nk_cli_serve(int argc, char **argv)
{
    /* --store-id (on the command line or in --config) means distributed mode */
    bool cluster = nk_cli_config_has(argc, argv, "store-id");
    int st = nk_cli_config_expand(
        "nokv serve", cluster ? nk_cli_serve_cluster_keys : nk_cli_serve_keys, &argc, &argv);
    if (st != 0) {
        return st;
    }
    if (cluster) {
        return nk_cli_serve_cluster(argc, argv);
    }
    nk_standalone_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.workdir = "./data";
    cfg.addr = "127.0.0.1:6380";
    cfg.sync = NK_SYNC_ALWAYS;
    cfg.version = NK_CLI_VERSION;
    nk_db_options_default(&cfg.db);
    /* Standalone workdirs only, until the distributed path exists: a promoted
     * or half-migrated workdir is refused with what to run instead. */
    cfg.allowed_modes = NK_MODE_BIT(NK_MODE_STANDALONE);
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_INFO;
    int lo = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            serve_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--accept-data-loss") == 0) {
            cfg.db.accept_data_loss = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "nokv serve: %s needs a value (see nokv serve --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--workdir") == 0) {
            cfg.workdir = v;
        } else if (strcmp(a, "--addr") == 0) {
            cfg.addr = v;
        } else if (strcmp(a, "--metrics-addr") == 0) {
            cfg.metrics_addr = v;
        } else if (strcmp(a, "--sync") == 0) {
            if (nk_sync_policy_parse(v, &cfg.sync) != NK_OK) {
                fprintf(stderr, "nokv serve: --sync must be always, group or none, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--memtable-mb") == 0) {
            if (parse_mb(a, v, &cfg.db.memtable_bytes) != 0) {
                return 2;
            }
        } else if (strcmp(a, "--cache-mb") == 0) {
            if (parse_mb(a, v, &cfg.db.block_cache_bytes) != 0) {
                return 2;
            }
        } else if ((lo = nk_cli_log_option("nokv serve", a, v, &rc)) != 0) {
            if (lo < 0) {
                return 2;
            }
        } else {
            fprintf(stderr, "nokv serve: unknown option '%s' (see nokv serve --help)\n", a);
            return 2;
        }
        i++;
    }

    if (nk_cli_check_only()) {
        return nk_cli_config_ok("nokv serve");
    }
    nk_rt *rt = NULL;
    if (nk_cli_rt_new("nokv serve", &rc, &rt) != NK_OK) {
        return 1;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    char note[1200];
    snprintf(note, sizeof(note), "STATUS=opening %s (recovery)", cfg.workdir);
    nk_cli_notify(rt, note); /* systemd shows it while the WAL replays */
    nk_standalone *s = NULL;
    int err = nk_standalone_start(rt, &cfg, &s, &eb);
    if (err != NK_OK) {
        return nk_cli_start_failed("nokv serve", rt, err, &eb);
    }
    char ready[160], bound[64] = "";
    (void)nk_standalone_addr(s, bound, sizeof(bound));
    snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving RESP on %s", bound);
    nk_cli_app app = {s, on_shutdown, exit_status, app_free, true};
    return nk_cli_run("nokv serve", rt, ready, &app);
}
