/* cli.h - shared declarations of the `nokv` subcommands. */
#ifndef NK_CLI_H
#define NK_CLI_H

#define NK_CLI_VERSION "0.1.0-dev"

/* Subcommands: argv excludes the subcommand name; return the exit status. */
int nk_cli_serve(int argc, char **argv);
/* `nokv serve --store-id N ...` (distributed mode). */
int nk_cli_serve_cluster(int argc, char **argv);
int nk_cli_migrate(int argc, char **argv);
/* expand, transfer-leader, remove-peer, status/report --addr (migrate_cluster.c). */
int nk_cli_migrate_cluster(const char *cmd, int argc, char **argv);
int nk_cli_coordinator(int argc, char **argv);
int nk_cli_repair(int argc, char **argv);
int nk_cli_check(int argc, char **argv);
int nk_cli_status(int argc, char **argv);

#include <stdio.h>

#include "nokv/engine/db.h"

/* What an open recovered and (salvage) gave up, for operators (repair.c). */
void nk_cli_print_open_report(FILE *out, const char *workdir, const nk_db_open_report *r);

#endif
