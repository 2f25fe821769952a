/* common.c - flags and process plumbing shared by the `nokv` subcommands. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/sdnotify.h"

/* --shutdown-timeout: seconds a graceful stop may take (0 = no limit), and
 * the runtime it is timed on (set when the command reports READY). */
static uint64_t g_shutdown_timeout_s;
static nk_rt *g_rt;

int nk_cli_log_option(const char *cmd, const char *flag, const char *val, nk_rt_real_config *rc)
{
    if (strcmp(flag, "--shutdown-timeout") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || errno != 0 || *end != '\0' || n == 0 || n > 86400) {
            fprintf(stderr, "%s: --shutdown-timeout wants seconds (1..86400), got '%s'\n", cmd,
                    val);
            return -1;
        }
        g_shutdown_timeout_s = n;
        return 1;
    }
    if (strcmp(flag, "--log-level") == 0) {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(val, names[i]) == 0) {
                rc->log_level = (nk_log_level)i;
                return 1;
            }
        }
        fprintf(stderr, "%s: --log-level must be debug, info, warn or error, got '%s'\n", cmd, val);
        return -1;
    }
    if (strcmp(flag, "--log-format") == 0) {
        if (nk_log_format_parse(val, &rc->log_format) != NK_OK) {
            fprintf(stderr, "%s: --log-format must be text or json, got '%s'\n", cmd, val);
            return -1;
        }
        return 1;
    }
    if (strcmp(flag, "--log-file") == 0) {
        if (val[0] == '\0') {
            fprintf(stderr, "%s: --log-file needs a path\n", cmd);
            return -1;
        }
        rc->log_file = val;
        return 1;
    }
    return 0;
}

/* journald sets JOURNAL_STREAM=<dev>:<inode> of the stream it reads; only
 * when stderr is that stream do "<N>" priority prefixes mean something. */
void nk_cli_log_finish(nk_rt_real_config *rc)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    if (rc->log_file != NULL || rc->log_format != NK_LOG_FORMAT_TEXT || js == NULL ||
        fstat(2, &st) != 0) {
        return;
    }
    unsigned long long dev = 0, ino = 0;
    if (sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == (unsigned long long)st.st_dev &&
        ino == (unsigned long long)st.st_ino) {
        rc->log_priority_prefix = true;
    }
}

static void shutdown_deadline(void *arg)
{
    (void)arg;
    nk_log(g_rt, NK_LOG_ERROR,
           "graceful stop did not finish within --shutdown-timeout %" PRIu64
           " s: exiting now (status 1; the next start recovers from the WAL as after a crash)",
           g_shutdown_timeout_s);
    _exit(1);
}

void nk_cli_shutdown_begins(void)
{
    nk_cli_notify(NULL, "STOPPING=1"); /* systemd: stopping, not crashed */
    if (g_shutdown_timeout_s > 0 && g_rt != NULL) {
        (void)nk_rt_timer_start(g_rt, g_shutdown_timeout_s * NK_NSEC_PER_SEC, shutdown_deadline,
                                NULL);
    }
}

void nk_cli_notify(nk_rt *rt, const char *state)
{
    if (rt != NULL) {
        g_rt = rt;
    }
    if (nk_sd_notify(state) < 0 && rt != NULL) {
        nk_log(rt, NK_LOG_WARN, "systemd notify (%s) failed: NOTIFY_SOCKET unusable",
               strncmp(state, "READY", 5) == 0 ? "READY=1" : "state");
    }
}

int nk_cli_rt_new(const char *cmd, nk_rt_real_config *rc, nk_rt **out)
{
    nk_cli_log_finish(rc);
    rc->failpoints = getenv("NOKV_FAILPOINTS"); /* integration tests only */
    *out = NULL;
    int err = nk_rt_real_new(rc, out);
    if (err != NK_OK) {
        fprintf(stderr, "%s: cannot start the runtime: %s\n", cmd, nk_strerror(err));
    }
    return err;
}

int nk_cli_start_failed(const char *cmd, nk_rt *rt, int err, const nk_errbuf *eb)
{
    fprintf(stderr, "%s: %s\n", cmd, eb->msg[0] ? eb->msg : nk_strerror(err));
    nk_rt_real_free(rt);
    return 1;
}

int nk_cli_run(const char *cmd, nk_rt *rt, const char *ready, const nk_cli_app *app)
{
    nk_rt_set_shutdown_handler(rt, app->on_shutdown, app->app);
    nk_cli_notify(rt, ready); /* recovered and listening: systemd may start dependents */
    int err = nk_rt_real_run(rt);
    int status = app->exit_status(app->app);
    if (status == NK_EAGAIN && app->eagain_abandons) {
        fprintf(stderr, "%s: event loop failed (%s); exiting without cleanup\n", cmd,
                nk_strerror(err));
        return 1;
    }
    app->free(app->app);
    nk_rt_real_free(rt);
    if (err != NK_OK || status != NK_OK) {
        fprintf(stderr, "%s: stopped with an error: %s\n", cmd,
                nk_strerror(err != NK_OK ? err : status));
        return 1;
    }
    return 0;
}
