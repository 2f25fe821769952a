/*
 * migrate.c - `nokv migrate plan|init|status|report`: a thin caller of
 * nokv/migrate/ (the simulator's operator calls the same functions).
 *
 * Data goes to stdout (text, or JSON with --json); diagnostics to stderr as
 * "nokv migrate <cmd>: what failed (what to do)". Exit status:
 *   0  success (plan: the workdir can be promoted)
 *   2  usage error
 *   3  blocked precondition (plan found blockers; wrong mode; mismatched ids;
 *      conflicting local state; workdir in use or missing)
 *   4  unavailable (a service could not be reached)
 *   5  timeout
 *   6  I/O error or corruption
 *   1  anything else
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/migrate/init.h"
#include "nokv/migrate/plan.h"
#include "nokv/migrate/status.h"

enum {
    EXIT_OK = 0,
    EXIT_OTHER = 1,
    EXIT_USAGE = 2,
    EXIT_BLOCKED = 3,
    EXIT_UNAVAILABLE = 4,
    EXIT_TIMEOUT = 5,
    EXIT_IO = 6
};

static int exit_for(int rc)
{
    switch (rc) {
    case NK_OK:
        return EXIT_OK;
    case NK_EINVAL:
        return EXIT_USAGE;
    case NK_EMODE:
    case NK_EEXIST:
    case NK_EBUSY:
    case NK_ENOENT:
    case NK_ENOTDIR:
        return EXIT_BLOCKED;
    case NK_ECONNREFUSED:
    case NK_ECLOSED:
    case NK_EAGAIN:
        return EXIT_UNAVAILABLE;
    case NK_ETIMEDOUT:
        return EXIT_TIMEOUT;
    case NK_EIO:
    case NK_ECORRUPT:
    case NK_ENOSPC:
    case NK_ENOTSUP:
        return EXIT_IO;
    default:
        return EXIT_OTHER;
    }
}

static void migrate_usage(FILE *out)
{
    fprintf(out, "usage: nokv migrate <command> [options]\n"
                 "\n"
                 "Promote a standalone workdir into a single-store cluster seed (offline).\n"
                 "\n"
                 "commands:\n"
                 "  plan     read-only preflight: blockers and the exact next command\n"
                 "  init     promote the workdir (checkpointed; rerun resumes)\n"
                 "  status   local view: mode, ids, seed snapshot, checkpoint, resume hint\n"
                 "  report   plan + status: stage, summary, next steps, readiness\n"
                 "  expand           grow a region onto more stores (snapshot, learner,\n"
                 "                   catch-up, promote, verify)\n"
                 "  transfer-leader  move a region's leadership to a voter\n"
                 "  remove-peer      remove a peer (quorum-checked)\n"
                 "  status|report --addr STORE --region R   the cluster-aware view\n"
                 "\n"
                 "Run 'nokv migrate <command> --help' for its options. Exit status: 0 ok,\n"
                 "2 usage, 3 blocked precondition, 4 unavailable, 5 timeout, 6 I/O or\n"
                 "corruption, 1 other. Documentation: docs/migration.md.\n");
}

static void cmd_usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "init") == 0) {
        fprintf(out,
                "usage: nokv migrate init --workdir DIR --store ID --region ID --peer ID [--json]\n"
                "\n"
                "Promote the standalone workdir DIR (no server may be running on it) into a\n"
                "single-store cluster seed: mode preparing, local catalog with the full-range\n"
                "region (epoch 1/1, peer ID as the only voter), seed snapshot by hard links\n"
                "with per-file xxh64, initial raft state, mode seeded. Every stage is\n"
                "checkpointed in MIGRATION_PROGRESS.json: rerun the same command to resume\n"
                "after an interruption; a rerun on a seeded workdir with the same ids changes\n"
                "nothing; other ids are refused.\n"
                "\n"
                "  --workdir DIR   the workdir (required)\n"
                "  --store ID      this store's id, > 0 (required)\n"
                "  --region ID     the seed region's id, > 0 (required)\n"
                "  --peer ID       the seed peer's raft id, > 0 (required)\n"
                "  --json          print the result as JSON\n");
        return;
    }
    fprintf(out, "usage: nokv migrate %s --workdir DIR [--json]\n\n", cmd);
    if (strcmp(cmd, "plan") == 0) {
        fprintf(out, "Check, without changing a byte, whether DIR can be promoted: mode,\n"
                     "LOCK, engine recovery state, local catalog, raft log, free space.\n"
                     "Exit 0 when eligible, 3 when blocked (the blockers are printed).\n");
    } else if (strcmp(cmd, "status") == 0) {
        fprintf(out, "The local migration view of DIR: mode and ids, local catalog, seed\n"
                     "snapshot, checkpoint stage, resume hint and the next command.\n");
    } else {
        fprintf(out, "plan + status folded into a stage, a summary, the next steps and\n"
                     "ready_for_init / ready_for_serve.\n");
    }
    fprintf(out, "\n  --workdir DIR   the workdir (required)\n"
                 "  --json          print the result as JSON\n");
}

typedef struct args {
    const char *workdir;
    uint64_t store, region, peer;
    bool json;
} args;

static int parse_id(const char *cmd, const char *flag, const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n == 0 || v[0] == '-') {
        fprintf(stderr, "nokv migrate %s: %s wants a positive integer, got '%s'\n", cmd, flag, v);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

/* 0 parsed, 1 --help printed, -1 usage error (printed). */
static int parse(const char *cmd, int argc, char **argv, bool ids, args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            cmd_usage(stdout, cmd);
            return 1;
        }
        if (strcmp(f, "--json") == 0) {
            a->json = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool known = strcmp(f, "--workdir") == 0 ||
                     (ids && (strcmp(f, "--store") == 0 || strcmp(f, "--region") == 0 ||
                              strcmp(f, "--peer") == 0));
        if (!known) {
            if (!ids && (strcmp(f, "--addr") == 0 || strcmp(f, "--region") == 0)) {
                fprintf(stderr,
                        "nokv migrate %s: %s (the cluster-aware view) is not available in "
                        "this build; run without it for the local view\n",
                        cmd, f);
            } else {
                fprintf(stderr,
                        "nokv migrate %s: unknown option '%s' (see nokv migrate %s "
                        "--help)\n",
                        cmd, f, cmd);
            }
            return -1;
        }
        if (v == NULL) {
            fprintf(stderr, "nokv migrate %s: %s needs a value\n", cmd, f);
            return -1;
        }
        i++;
        if (strcmp(f, "--workdir") == 0) {
            a->workdir = v;
        } else if (parse_id(cmd, f, v,
                            strcmp(f, "--store") == 0    ? &a->store
                            : strcmp(f, "--region") == 0 ? &a->region
                                                         : &a->peer) != 0) {
            return -1;
        }
    }
    if (a->workdir == NULL || a->workdir[0] == '\0') {
        fprintf(stderr, "nokv migrate %s: --workdir is required (see nokv migrate %s --help)\n",
                cmd, cmd);
        return -1;
    }
    if (ids && (a->store == 0 || a->region == 0 || a->peer == 0)) {
        fprintf(stderr, "nokv migrate %s: --store, --region and --peer are all required\n", cmd);
        return -1;
    }
    return 0;
}

static nk_rt *runtime(const char *cmd)
{
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_WARN;
    rc.failpoints = getenv("NOKV_FAILPOINTS"); /* integration tests only */
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv migrate %s: cannot start the runtime: %s\n", cmd, nk_strerror(err));
        return NULL;
    }
    return rt;
}

static void emit(json_t *j, nk_buf *text, bool as_json)
{
    if (as_json) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL) {
            fputs(s, stdout);
            fputc('\n', stdout);
            free(s);
        }
    } else if (text->len > 0) {
        fwrite(text->data, 1, text->len, stdout);
    }
    json_decref(j);
    nk_buf_free(text);
}

static int cmd_plan(int argc, char **argv)
{
    args a;
    int p = parse("plan", argc, argv, false, &a);
    if (p != 0) {
        return p > 0 ? EXIT_OK : EXIT_USAGE;
    }
    nk_rt *rt = runtime("plan");
    if (rt == NULL) {
        return EXIT_OTHER;
    }
    nk_plan_result *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        nk_rt_real_free(rt);
        return EXIT_OTHER;
    }
    (void)nk_migrate_plan(rt, a.workdir, r);
    nk_buf t = {0};
    if (!a.json) {
        nk_plan_text(r, &t);
    }
    emit(a.json ? nk_plan_json(r) : NULL, &t, a.json);
    int code = r->eligible ? EXIT_OK : EXIT_BLOCKED;
    if (!r->eligible) {
        fprintf(stderr,
                "nokv migrate plan: %s is not eligible: %s (fix the blockers, then run "
                "plan again)\n",
                a.workdir, r->blockers[0]);
    }
    free(r);
    nk_rt_real_free(rt);
    return code;
}

typedef struct init_wait {
    bool done;
    int rc;
    nk_init_result r;
    char msg[NK_ERRBUF_SIZE];
} init_wait;

static void on_init(void *arg, int rc, const nk_init_result *r, const char *msg)
{
    init_wait *w = arg;
    w->done = true;
    w->rc = rc;
    w->r = *r;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
}

static int cmd_init(int argc, char **argv)
{
    args a;
    int p = parse("init", argc, argv, true, &a);
    if (p != 0) {
        return p > 0 ? EXIT_OK : EXIT_USAGE;
    }
    nk_rt *rt = runtime("init");
    if (rt == NULL) {
        return EXIT_OTHER;
    }
    init_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        nk_rt_real_free(rt);
        return EXIT_OTHER;
    }
    nk_init_args ia = {a.workdir, a.store, a.region, a.peer};
    nk_migrate_init(rt, &ia, on_init, w);
    /* Bounded: a flush and a sync, each far below this many loop turns. */
    for (long i = 0; i < 100L * 60 * 60 * 24 && !w->done; i++) {
        int rc = nk_rt_run_once(rt, 10 * NK_NSEC_PER_MSEC);
        if (rc != NK_OK && rc != NK_ETIMEDOUT) {
            fprintf(stderr, "nokv migrate init: event loop failed: %s\n", nk_strerror(rc));
            break;
        }
    }
    int code;
    if (!w->done) {
        fprintf(stderr, "nokv migrate init: did not finish; rerun it to resume\n");
        code = EXIT_TIMEOUT;
    } else if (w->rc != NK_OK) {
        fprintf(stderr, "nokv migrate init: %s\n", w->msg);
        if (w->rc != NK_EINVAL && w->rc != NK_EMODE) {
            fprintf(stderr,
                    "nokv migrate init: see 'nokv migrate status --workdir %s' for the "
                    "stage reached and the resume hint\n",
                    a.workdir);
        }
        code = exit_for(w->rc);
        if (code == EXIT_USAGE) {
            code = EXIT_BLOCKED;
        }
    } else {
        nk_buf t = {0};
        if (!a.json) {
            nk_init_text(&w->r, &t);
        }
        emit(a.json ? nk_init_json(&w->r) : NULL, &t, a.json);
        code = EXIT_OK;
    }
    free(w);
    nk_rt_real_free(rt);
    return code;
}

static int cmd_status_report(const char *cmd, int argc, char **argv)
{
    args a;
    int p = parse(cmd, argc, argv, false, &a);
    if (p != 0) {
        return p > 0 ? EXIT_OK : EXIT_USAGE;
    }
    nk_rt *rt = runtime(cmd);
    if (rt == NULL) {
        return EXIT_OTHER;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_buf t = {0};
    json_t *j = NULL;
    int rc;
    if (strcmp(cmd, "status") == 0) {
        nk_status_result *r = calloc(1, sizeof(*r));
        rc = r ? nk_migrate_status(rt, a.workdir, r, &eb) : NK_ENOMEM;
        if (rc == NK_OK) {
            if (a.json) {
                j = nk_status_json(r);
            } else {
                nk_status_text(r, &t);
            }
        }
        free(r);
    } else {
        nk_report_result *r = calloc(1, sizeof(*r));
        rc = r ? nk_migrate_report(rt, a.workdir, r, &eb) : NK_ENOMEM;
        if (rc == NK_OK) {
            if (a.json) {
                j = nk_report_json(r);
            } else {
                nk_report_text(r, &t);
            }
        }
        free(r);
    }
    nk_rt_real_free(rt);
    if (rc != NK_OK) {
        fprintf(stderr, "nokv migrate %s: %s\n", cmd, eb.msg[0] ? eb.msg : nk_strerror(rc));
        nk_buf_free(&t);
        return exit_for(rc);
    }
    emit(j, &t, a.json);
    return EXIT_OK;
}

int nk_cli_migrate(int argc, char **argv)
{
    if (argc < 1) {
        migrate_usage(stderr);
        fprintf(stderr, "nokv migrate: a subcommand is required\n");
        return EXIT_USAGE;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        migrate_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "plan") == 0) {
        return cmd_plan(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "init") == 0) {
        return cmd_init(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "expand") == 0 || strcmp(cmd, "transfer-leader") == 0 ||
        strcmp(cmd, "remove-peer") == 0) {
        return nk_cli_migrate_cluster(cmd, argc - 1, argv + 1);
    }
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "report") == 0) {
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--addr") == 0) {
                return nk_cli_migrate_cluster(cmd, argc - 1, argv + 1); /* cluster-aware view */
            }
        }
        return cmd_status_report(cmd, argc - 1, argv + 1);
    }
    fprintf(stderr, "nokv migrate: unknown subcommand '%s' (run 'nokv migrate help')\n", cmd);
    return EXIT_USAGE;
}
