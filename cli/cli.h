/* cli.h - shared declarations of the `nokv` subcommands. */
#ifndef NK_CLI_H
#define NK_CLI_H

#define NK_CLI_VERSION "0.1.0-dev"

/* Subcommands: argv excludes the subcommand name; return the exit status. */
int nk_cli_serve(int argc, char **argv);
/* `nokv serve --store-id N ...` (distributed mode). */
int nk_cli_serve_cluster(int argc, char **argv);
int nk_cli_migrate(int argc, char **argv);
int nk_cli_coordinator(int argc, char **argv);
int nk_cli_repair(int argc, char **argv);
int nk_cli_check(int argc, char **argv);

#include <stdio.h>

#include "net/rt_real.h"
#include "nokv/engine/db.h"

/* --log-level, --log-format, --log-file (common.c): 1 when `flag` is one of
 * them and was applied to rc, 0 when it is not, -1 on a bad value (printed,
 * prefixed with cmd). */
int nk_cli_log_option(const char *cmd, const char *flag, const char *val, nk_rt_real_config *rc);
/* Last touches before nk_rt_real_new: journald priority prefixes. */
void nk_cli_log_finish(nk_rt_real_config *rc);
/* systemd readiness (net/sdnotify.h); a failure is logged through rt. */
void nk_cli_notify(nk_rt *rt, const char *state);

/* Help text shared by the serving commands. */
#define NK_CLI_LOG_HELP                                                                            \
    "  --log-level L     debug|info|warn|error (default info)\n"                                   \
    "  --log-format F    text|json: one line per event (default text)\n"                           \
    "  --log-file PATH   append the log to PATH instead of stderr; SIGHUP reopens it\n"

/* What an open recovered and (salvage) gave up, for operators (repair.c). */
void nk_cli_print_open_report(FILE *out, const char *workdir, const nk_db_open_report *r);

#endif
