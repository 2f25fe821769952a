/*
 * check.c - `nokv check --workdir D`: verify every checksum, offline.
 *
 * Read-only (nokv/engine/check.h): the manifest, every WAL record and every
 * block of every table. Prints one line per finding and a verdict.
 *
 * Exit status: 0 everything verified, 1 damage found (what a normal open
 * would refuse, or a read would fail on), 3 warnings only (nothing durable
 * is damaged: a torn WAL tail, orphan tables; the next open tidies them),
 * 2 usage error or the check could not run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/engine/check.h"

static void check_usage(FILE *out)
{
    fprintf(out, "usage: nokv check --workdir DIR [--quiet]\n"
                 "\n"
                 "Verify a stopped workdir offline, changing nothing: the manifest, every WAL\n"
                 "record (and that the WAL holds what the manifest says is durable), every\n"
                 "block of every table. Prints what is damaged.\n"
                 "\n"
                 "  --quiet   print only problems and the verdict\n"
                 "\n"
                 "exit status: 0 clean, 1 damaged, 3 warnings only (a torn WAL tail or\n"
                 "orphan tables, tidied by the next open), 2 usage error\n");
}

typedef struct out_ctx {
    bool quiet;
} out_ctx;

static void print_line(void *arg, nk_check_level level, const char *line)
{
    out_ctx *o = arg;
    static const char *const tag[] = {"ok", "WARN", "DAMAGED"};
    if (o->quiet && level == NK_CHECK_OK) {
        return;
    }
    printf("%-7s %s\n", tag[level], line);
}

int nk_cli_check(int argc, char **argv)
{
    const char *workdir = NULL;
    out_ctx o = {false};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            check_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--workdir") == 0 && i + 1 < argc) {
            workdir = argv[++i];
        } else if (strcmp(argv[i], "--quiet") == 0) {
            o.quiet = true;
        } else {
            fprintf(stderr, "nokv check: unknown option '%s' (see nokv check --help)\n", argv[i]);
            return 2;
        }
    }
    if (workdir == NULL) {
        fprintf(stderr, "nokv check: --workdir DIR is required\n");
        return 2;
    }
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_ERROR;
    rc.no_signals = true;
    rc.worker_threads = 1;
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv check: cannot start the runtime: %s\n", nk_strerror(err));
        return 2;
    }
    nk_check_summary sum;
    err = nk_db_check(rt, workdir, print_line, &o, &sum);
    nk_rt_real_free(rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv check: stopped: %s\n", nk_strerror(err));
        return 2;
    }
    static const char *const verdict[] = {"clean", "warnings only", "DAMAGED"};
    printf("%s: %s (%" PRIu64 " problems)\n", workdir, verdict[sum.verdict], sum.problems);
    return sum.verdict == NK_CHECK_OK ? 0 : (sum.verdict == NK_CHECK_DAMAGED ? 1 : 3);
}
