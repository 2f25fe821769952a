/* main.c - the `nokv` command. Subcommands are dispatched from here. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "nokv/util/assert.h"

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
            "  check        verify every checksum of a workdir, offline (nokv check --help)\n"
            "  repair       open a damaged workdir accepting data loss (nokv repair --help)\n"
            "  version      print the version\n"
            "  help         this text\n");
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
        printf("nokv %s\n", NK_CLI_VERSION);
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
    if (strcmp(argv[1], "check") == 0) {
        return nk_cli_check(argc - 2, argv + 2);
    }
    fprintf(stderr, "nokv: unknown command '%s' (run 'nokv help')\n", argv[1]);
    return 2;
}
