/*
 * rt_real.h - the real (production) backend of nokv/rt.h.
 *
 * One nk_rt per process: an epoll loop on the thread that calls
 * nk_rt_real_run(), POSIX files (disk/posix_fs.h), IPv4 TCP, a small pthread
 * pool for jobs, SIGTERM/SIGINT handling and stderr logging.
 *
 * Lifecycle:
 *   nk_rt_real_new()  - create; blocks SIGTERM/SIGINT in the calling thread
 *                       (they are read through a signalfd, so call it before
 *                       starting other threads) and ignores SIGPIPE.
 *   nk_rt_real_run()  - run the loop on the calling thread until nk_rt_stop();
 *                       may be called again afterwards to resume.
 *   nk_rt_real_free() - stop the workers (a running `work` finishes, queued
 *                       jobs and finished-but-undelivered jobs are discarded
 *                       WITHOUT calling done), join them, close every
 *                       connection and listener without callbacks, drop
 *                       pending timers, free everything. Applications must
 *                       drain their own jobs (wait for every done) before
 *                       stopping if the job arguments own resources.
 *
 * Signals: SIGHUP reopens the log file (see below); the first SIGTERM/SIGINT runs the shutdown
 * handler on the loop thread (nk_rt_stop() if none is set); a second one exits the process at once
 * with status 1, even if the loop is stuck (an operator pressing Ctrl-C twice). The last
 * nk_rt_real_free() of the process restores the previous signal dispositions and unblocks the
 * signals in the calling thread.
 *
 * Timers and jobs: nk_rt_stop() only makes run() return; timers and jobs may
 * still be started (they run on the next run()). nk_rt_timer_start returns 0
 * and nk_rt_job_submit NK_ESTOPPED only once nk_rt_real_free has begun.
 * Jobs' `done` run in completion order. Timer callbacks started during a
 * round of due timers wait for the next round (no starvation of I/O).
 *
 * Network details beyond rt.h:
 *   - addresses are strictly "a.b.c.d:port" (decimal IPv4); anything else is
 *     NK_EADDR, as is a bind failure (address in use);
 *   - outgoing connects time out after 5 s (on_connect gets NK_ETIMEDOUT);
 *   - ids: connections and listeners are numbered 1, 2, 3... separately;
 *   - send/send_raw/close on an unknown or dead connection: NK_ECLOSED /
 *     NK_ECLOSED / NK_ENOENT; nk_rt_conn_pending of one: 0;
 *   - on an accepted connection whose first byte has not arrived yet, both
 *     nk_rt_send and nk_rt_send_raw are accepted (the peer decides the mode);
 *   - nk_rt_close keeps flushing queued bytes in the background for up to
 *     5 s, without any callback, then closes the socket.
 *
 * Failpoints (cfg->failpoints): NULL/"" or "name=action[,name=action...]",
 * action `error` (nk_failpoint returns NK_EFAILPOINT every time) or `crash`
 * (log, then _exit(137): a real process crash for integration tests). Names
 * use [A-Za-z0-9._-]. A malformed spec makes nk_rt_real_new fail NK_EINVAL.
 *
 * Log lines go to stderr (or cfg->log_file), one write(2) each, as
 *   2024-05-01T12:34:56.789Z INFO n1 message
 * (UTC wall time with milliseconds, level, node id, message), or with
 * log_format json as
 *   {"ts":"2024-05-01T12:34:56.789Z","level":"info","node":1,"msg":"message"}
 * (msg JSON-escaped). With log_file, a SIGHUP reopens the file (rename it,
 * send SIGHUP, the next line goes to a new file of the same name); a file
 * that cannot be reopened keeps the old one and says so in it. SIGHUP is
 * read through the signalfd like SIGTERM, so it never kills the process.
 */
#ifndef NK_NET_RT_REAL_H
#define NK_NET_RT_REAL_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/rt.h"

typedef enum nk_log_format {
    NK_LOG_FORMAT_TEXT = 0,
    NK_LOG_FORMAT_JSON = 1,
} nk_log_format;

typedef struct nk_rt_real_config {
    uint64_t seed;           /* root seed, used when seed_given */
    bool seed_given;         /* false: draw from getrandom() and log it at INFO */
    uint32_t node_id;        /* 0 means 1 */
    unsigned worker_threads; /* job workers; 0 means 2 */
    nk_log_level log_level;  /* lines below it are dropped */
    const char *failpoints;  /* NULL or "name=error,name2=crash" */
    bool no_signals;         /* leave SIGTERM/SIGINT to the host (embedded use):
                              * no shutdown handler is ever triggered */
    /* Where log lines go: NULL = stderr, else appended to this file, which
     * SIGHUP reopens (for logrotate); the runtime keeps a copy of the path. */
    const char *log_file;
    nk_log_format log_format; /* text (default) or one JSON object per line */
    /* Prefix text lines with the syslog priority "<3>".."<7>" so journald
     * keeps levels (the CLI sets it when JOURNAL_STREAM names stderr). */
    bool log_priority_prefix;
} nk_rt_real_config;

/* Parse "text" | "json". NK_OK or NK_EINVAL. */
int nk_log_format_parse(const char *s, nk_log_format *out);

/* Create a runtime. NK_OK, NK_EINVAL (bad config / failpoint spec),
 * NK_ENOMEM or NK_EIO (the OS refused epoll, eventfd, signalfd or threads). */
int nk_rt_real_new(const nk_rt_real_config *cfg, nk_rt **out);

/* Run the loop until nk_rt_stop(). NK_OK when stopped, NK_EINVAL if already
 * running, NK_EIO if epoll fails. */
int nk_rt_real_run(nk_rt *rt);

/* Tear down (see above). NULL is ignored. Not from inside a callback. */
void nk_rt_real_free(nk_rt *rt);

#endif /* NK_NET_RT_REAL_H */
