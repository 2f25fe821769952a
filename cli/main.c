/* main.c - the `nokv` command. Subcommands are dispatched from here. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "nokv/engine/batch.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/sst.h"
#include "nokv/engine/version_edit.h"
#include "nokv/proto/frame.h"
#include "nokv/util/assert.h"

/* CMake passes the commit and build type at configure time. */
#ifndef NOKV_GIT_COMMIT
#define NOKV_GIT_COMMIT "unknown"
#endif
#ifndef NOKV_BUILD_TYPE
#define NOKV_BUILD_TYPE "unknown"
#endif

/* GNU style: the first line is "program version", details after it. */
static void print_version(void)
{
    printf("nokv %s\n"
           "commit %s (%s build)\n"
           "on-disk formats: sst %u, manifest %u (version edit %u), log files (WAL, raft log) "
           "%u, write batch %u\n"
           "wire format: frame %u\n",
           NK_CLI_VERSION, NOKV_GIT_COMMIT, NOKV_BUILD_TYPE, NK_SST_FORMAT_VERSION,
           NK_MANIFEST_CURRENT_VERSION, NK_VEDIT_VERSION, NK_LOGFILE_VERSION, NK_BATCH_VERSION,
           NK_FRAME_VERSION);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nokv <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve        serve a database over the Redis protocol (nokv serve --help)\n"
            "  migrate      promote a standalone workdir to a cluster seed (nokv migrate help)\n"
            "  coordinator  run the cluster coordinator (nokv coordinator --help)\n"
            "  status       the cluster as the coordinator sees it (nokv status --help)\n"
            "  stats        what a stopped workdir holds: mode, engine, regions (nokv stats --help)\n"
            "  check        verify every checksum of a workdir, offline (nokv check --help)\n"
            "  repair       open a damaged workdir accepting data loss (nokv repair --help)\n"
            "  version      print the version, commit and format versions (also --version)\n"
            "  help         this text\n"
            "\n"
            "Every serving command takes --config FILE, --check-config, --log-level,\n"
            "--log-format, --log-file and --metrics-addr (see its --help).\n"
            "Documentation: docs/quickstart.md and docs/operations.md in the source tree;\n"
            "man pages nokv(1), nokv-migrate(1), nokv-sim(1).\n");
}

static void on_assert(const char *file, int line, const char *expr)
{
    fprintf(stderr, "nokv: internal invariant broken at %s:%d: %s; stopping (please report this)\n",
            file, line, expr);
}

int main(int argc, char **argv)
{
    nk_assert_set_handler(on_assert);
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) {
        return nk_cli_serve(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "migrate") == 0) {
        return nk_cli_migrate(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "coordinator") == 0) {
        return nk_cli_coordinator(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "status") == 0) {
        return nk_cli_status(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "repair") == 0) {
        return nk_cli_repair(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "stats") == 0) {
        return nk_cli_stats(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "check") == 0) {
        return nk_cli_check(argc - 2, argv + 2);
    }
    fprintf(stderr, "nokv: unknown command '%s' (run 'nokv help')\n", argv[1]);
    return 2;
}
