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
int nk_cli_stats(int argc, char **argv);
int nk_cli_status(int argc, char **argv);

#include <stdbool.h>
#include <stdio.h>

#include "net/rt_real.h"
#include "nokv/engine/db.h"

/* --log-level, --log-format, --log-file, --shutdown-timeout (common.c): 1 when `flag` is one of
 * them and was applied to rc, 0 when it is not, -1 on a bad value (printed,
 * prefixed with cmd). */
int nk_cli_log_option(const char *cmd, const char *flag, const char *val, nk_rt_real_config *rc);
/* Last touches before nk_rt_real_new: journald priority prefixes. */
void nk_cli_log_finish(nk_rt_real_config *rc);
/* systemd readiness (net/sdnotify.h); a failure is logged through rt, which
 * is also remembered for nk_cli_shutdown_begins. */
void nk_cli_notify(nk_rt *rt, const char *state);
/* A graceful stop begins: STOPPING=1, and arm --shutdown-timeout (exit 1 if
 * the stop has not finished by then). */
void nk_cli_shutdown_begins(void);

/* --config FILE / --check-config (config.c). Keys a command accepts in
 * its file: flag names without "--", typed so a bad value names the line. */
typedef enum nk_cli_type {
    NK_CLI_T_STRING,
    NK_CLI_T_ADDR, /* HOST:PORT */
    NK_CLI_T_UINT, /* positive integer */
    NK_CLI_T_MB,   /* 1..65536 */
    NK_CLI_T_ENUM, /* one of choices "a|b|c" */
    NK_CLI_T_BOOL, /* true|false: a flag without value */
} nk_cli_type;

typedef struct nk_cli_key {
    const char *key;
    nk_cli_type type;
    const char *choices;
} nk_cli_key;

extern const nk_cli_key nk_cli_serve_keys[];
extern const nk_cli_key nk_cli_serve_cluster_keys[];
extern const nk_cli_key nk_cli_coordinator_keys[];

/* Replace argv by (settings of --config FILE as flags) + (argv without
 * --config FILE and --check-config): flags given later win. 0, or 2 after
 * printing an error that names the file and line. The new argv lives until
 * exit. */
int nk_cli_config_expand(const char *cmd, const nk_cli_key *keys, int *argc, char ***argv);
/* Is `--key` in argv, or `key` in the --config file? */
bool nk_cli_config_has(int argc, char **argv, const char *key);
/* --check-config was given: validate, print, exit 0 instead of starting. */
bool nk_cli_check_only(void);
int nk_cli_config_ok(const char *cmd);

/* Help text shared by the serving commands. */
#define NK_CLI_LOG_HELP                                                                            \
    "  --log-level L     debug|info|warn|error (default info)\n"                                   \
    "  --log-format F    text|json: one line per event (default text)\n"                           \
    "  --log-file PATH   append the log to PATH instead of stderr; SIGHUP reopens it\n"            \
    "  --shutdown-timeout S  a graceful stop taking longer than S seconds exits at\n"              \
    "                    once with status 1 (default: no limit)\n"                                 \
    "  --config FILE     read settings (key = value, flag names without --) from FILE;\n"          \
    "                    flags on the command line override them\n"                                \
    "  --check-config    validate the flags and FILE, print the verdict, exit 0 (valid)\n"         \
    "                    or 2 (invalid) without starting\n"

/* What an open recovered and (salvage) gave up, for operators (repair.c). */
void nk_cli_print_open_report(FILE *out, const char *workdir, const nk_db_open_report *r);

#endif
