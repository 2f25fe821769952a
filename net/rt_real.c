/*
 * rt_real.c - the real runtime: event loop, timers, jobs, signals, log,
 * failpoints, seed, and the nk_rt_ops table (network lives in tcp.c, files
 * in disk/posix_fs.c). Contract in rt_real.h; internals in rt_real_impl.h.
 */
#include "net/rt_real.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "disk/posix_fs.h"
#include "net/rt_real_impl.h"

#define DEFAULT_WORKERS 2u
#define MAX_WORKERS 256u
#define MAX_EVENTS 128
#define JOB_NAME_MAX 48

struct nk_real_job {
    nk_job_fn work;
    nk_job_fn done;
    void *arg;
    char name[JOB_NAME_MAX];
    nk_real_job *next;
};

/* ---------------------------------------------------------------- clock --- */

uint64_t nk_real_now(nk_real *r)
{
    (void)r;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NK_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t op_now(void *impl)
{
    return nk_real_now(impl);
}

static uint64_t op_wall(void *impl)
{
    (void)impl;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NK_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* --------------------------------------------------------------- timers --- */

uint64_t nk_real_timer_start(nk_real *r, uint64_t delay_ns, nk_timer_fn fn, void *arg)
{
    if (r->freeing || fn == NULL) {
        return 0;
    }
    uint64_t now = nk_real_now(r);
    uint64_t deadline = delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;
    uint64_t id = ++r->next_timer_id;
    if (nk_timer_heap_add(&r->timers, deadline, id, fn, arg) != NK_OK) {
        return 0;
    }
    return id;
}

int nk_real_timer_cancel(nk_real *r, uint64_t id)
{
    return nk_timer_heap_cancel(&r->timers, id, NULL);
}

static uint64_t op_timer_start(void *impl, uint64_t delay_ns, nk_timer_fn fn, void *arg)
{
    return nk_real_timer_start(impl, delay_ns, fn, arg);
}

static int op_timer_cancel(void *impl, uint64_t id)
{
    return nk_real_timer_cancel(impl, id);
}

/* ---------------------------------------------------------------- files --- */

static int op_file_open(void *impl, const char *path, unsigned flags, nk_file **out)
{
    (void)impl;
    return nk_posix_file_open(path, flags, out);
}

static int op_file_read_at(void *impl, nk_file *f, uint64_t off, void *buf, size_t len,
                           size_t *nread)
{
    (void)impl;
    return nk_posix_file_read_at(f, off, buf, len, nread);
}

static int op_file_write_at(void *impl, nk_file *f, uint64_t off, const void *buf, size_t len)
{
    (void)impl;
    return nk_posix_file_write_at(f, off, buf, len);
}

static int op_file_append(void *impl, nk_file *f, const void *buf, size_t len)
{
    (void)impl;
    return nk_posix_file_append(f, buf, len);
}

static int op_file_sync(void *impl, nk_file *f)
{
    int rc = nk_posix_file_sync(f);
    if (rc != NK_OK) {
        /* A failed fdatasync loses data silently unless someone says so. */
        nk_real *r = impl;
        nk_log(&r->rt, NK_LOG_ERROR, "file sync failed: %s", nk_errname(rc));
    }
    return rc;
}

static int op_file_size(void *impl, nk_file *f, uint64_t *size)
{
    (void)impl;
    return nk_posix_file_size(f, size);
}

static int op_file_truncate(void *impl, nk_file *f, uint64_t size)
{
    (void)impl;
    return nk_posix_file_truncate(f, size);
}

static int op_file_close(void *impl, nk_file *f)
{
    (void)impl;
    return nk_posix_file_close(f);
}

static int op_stat(void *impl, const char *path, nk_stat *st)
{
    (void)impl;
    return nk_posix_stat(path, st);
}

static int op_dir_create(void *impl, const char *path)
{
    (void)impl;
    return nk_posix_dir_create(path);
}

static int op_dir_list(void *impl, const char *path, nk_names *out)
{
    (void)impl;
    return nk_posix_dir_list(path, out);
}

static int op_rename(void *impl, const char *from, const char *to)
{
    (void)impl;
    return nk_posix_rename(from, to);
}

static int op_link(void *impl, const char *from, const char *to)
{
    (void)impl;
    return nk_posix_link(from, to);
}

static int op_dir_lock_held(void *impl, const char *dir, bool *held)
{
    (void)impl;
    return nk_posix_dir_lock_held(dir, held);
}

static int op_fs_avail(void *impl, const char *path, uint64_t *avail)
{
    (void)impl;
    return nk_posix_fs_avail(path, avail);
}

static int op_remove(void *impl, const char *path)
{
    (void)impl;
    return nk_posix_remove(path);
}

static int op_dir_sync(void *impl, const char *path)
{
    int rc = nk_posix_dir_sync(path);
    if (rc != NK_OK && rc != NK_ENOENT && rc != NK_ENOTDIR) {
        nk_real *r = impl;
        nk_log(&r->rt, NK_LOG_ERROR, "dir sync of %s failed: %s", path ? path : "(null)",
               nk_errname(rc));
    }
    return rc;
}

static int op_dir_lock(void *impl, const char *dir, nk_dirlock **out)
{
    (void)impl;
    return nk_posix_dir_lock(dir, out);
}

static void op_dir_unlock(void *impl, nk_dirlock *lock)
{
    (void)impl;
    nk_posix_dir_unlock(lock);
}

/* ----------------------------------------------------------------- jobs --- */

static void *worker_main(void *arg)
{
    nk_real *r = arg;
    pthread_mutex_lock(&r->job_mu);
    for (;;) {
        while (!r->job_shutdown && r->queue_head == NULL) {
            pthread_cond_wait(&r->job_cv, &r->job_mu);
        }
        if (r->job_shutdown) {
            break; /* queued jobs are discarded by nk_rt_real_free */
        }
        nk_real_job *j = r->queue_head;
        r->queue_head = j->next;
        if (r->queue_head == NULL) {
            r->queue_tail = NULL;
        }
        j->next = NULL;
        pthread_mutex_unlock(&r->job_mu);

        j->work(j->arg);

        pthread_mutex_lock(&r->job_mu);
        if (r->done_tail != NULL) {
            r->done_tail->next = j;
        } else {
            r->done_head = j;
        }
        r->done_tail = j;
        /* Wake the loop. An eventfd counter cannot lose a wake-up: the loop
         * drains the whole done list after every read. */
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(r->jobfd, &one, sizeof(one));
        } while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&r->job_mu);
    return NULL;
}

static int op_job_submit(void *impl, const char *name, nk_job_fn work, nk_job_fn done, void *arg)
{
    nk_real *r = impl;
    if (r->freeing) {
        return NK_ESTOPPED;
    }
    nk_real_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->work = work;
    j->done = done;
    j->arg = arg;
    snprintf(j->name, sizeof(j->name), "%s", name ? name : "job");
    pthread_mutex_lock(&r->job_mu);
    if (r->queue_tail != NULL) {
        r->queue_tail->next = j;
    } else {
        r->queue_head = j;
    }
    r->queue_tail = j;
    pthread_cond_signal(&r->job_cv);
    pthread_mutex_unlock(&r->job_mu);
    return NK_OK;
}

/* Loop side: run `done` of finished jobs, in completion order. */
static void jobs_event(nk_real *r)
{
    uint64_t cnt;
    while (read(r->jobfd, &cnt, sizeof(cnt)) < 0 && errno == EINTR) {
    }
    for (;;) {
        pthread_mutex_lock(&r->job_mu);
        nk_real_job *j = r->done_head;
        if (j != NULL) {
            r->done_head = j->next;
            if (r->done_head == NULL) {
                r->done_tail = NULL;
            }
        }
        bool more = r->done_head != NULL;
        pthread_mutex_unlock(&r->job_mu);
        if (j == NULL) {
            return;
        }
        j->done(j->arg);
        free(j);
        if (r->stop_requested) {
            if (more) {
                /* Re-arm so the rest runs on the next nk_rt_real_run. */
                uint64_t one = 1;
                while (write(r->jobfd, &one, sizeof(one)) < 0 && errno == EINTR) {
                }
            }
            return;
        }
    }
}

/* Free a list of jobs without running them; returns how many there were. */
static size_t free_job_list(nk_real_job *j)
{
    size_t n = 0;
    while (j != NULL) {
        nk_real_job *next = j->next;
        free(j);
        j = next;
        n++;
    }
    return n;
}

/* -------------------------------------------------------------- signals --- */

/*
 * Process-wide signal state. SIGTERM/SIGINT are blocked and read through each
 * runtime's signalfd; after the first one, an async handler that exits with
 * status 1 is installed and the loop thread unblocks them, so a second signal
 * ends the process even when the loop is stuck in a callback.
 */
static pthread_mutex_t g_sig_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned g_sig_users;
static bool g_sig_were_blocked; /* in the thread that created the first runtime */
static bool g_exit_handler_on;
static struct sigaction g_old_term, g_old_int;

static void term_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

/* What a runtime takes over: the termination signals plus SIGHUP (reopen
 * the log). SIGHUP stays blocked even after the first SIGTERM, so it can
 * never end the process by its default action. */
static void owned_sigset(sigset_t *set)
{
    term_sigset(set);
    sigaddset(set, SIGHUP);
}

static void exit_now_handler(int sig)
{
    (void)sig;
    static const char msg[] = "second termination signal: exiting now\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}

static void signals_acquire(void)
{
    sigset_t set, old;
    owned_sigset(&set);
    pthread_mutex_lock(&g_sig_mu);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    if (g_sig_users++ == 0) {
        g_sig_were_blocked = sigismember(&old, SIGTERM) == 1;
        /* Writes to a closed peer must return EPIPE, not kill the process. */
        signal(SIGPIPE, SIG_IGN);
    }
    pthread_mutex_unlock(&g_sig_mu);
}

static void signals_release(void)
{
    pthread_mutex_lock(&g_sig_mu);
    if (--g_sig_users == 0) {
        if (g_exit_handler_on) {
            sigaction(SIGTERM, &g_old_term, NULL);
            sigaction(SIGINT, &g_old_int, NULL);
            g_exit_handler_on = false;
        }
        if (!g_sig_were_blocked) {
            sigset_t set;
            owned_sigset(&set);
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        }
    }
    pthread_mutex_unlock(&g_sig_mu);
}

static void arm_second_signal_exit(void)
{
    pthread_mutex_lock(&g_sig_mu);
    if (!g_exit_handler_on) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = exit_now_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, &g_old_term);
        sigaction(SIGINT, &sa, &g_old_int);
        g_exit_handler_on = true;
    }
    pthread_mutex_unlock(&g_sig_mu);
    sigset_t set;
    term_sigset(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* this (loop) thread only */
}

static void reopen_log(nk_real *r);

static void signal_event(nk_real *r)
{
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(r->sigfd, &si, sizeof(si));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != (ssize_t)sizeof(si)) {
            return; /* EAGAIN: nothing more */
        }
        if (si.ssi_signo == SIGHUP) {
            reopen_log(r);
            continue;
        }
        const char *name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        if (r->signals_seen++ > 0) {
            nk_log(&r->rt, NK_LOG_ERROR, "second %s: exiting now", name);
            _exit(1);
        }
        nk_log(&r->rt, NK_LOG_WARN, "%s received: shutting down (send again to exit at once)",
               name);
        arm_second_signal_exit();
        if (r->shutdown_fn != NULL) {
            r->shutdown_fn(r->shutdown_arg);
        } else {
            r->stop_requested = true;
        }
        if (r->stop_requested) {
            return;
        }
    }
}

static void op_set_shutdown_handler(void *impl, nk_shutdown_fn fn, void *arg)
{
    nk_real *r = impl;
    r->shutdown_fn = fn;
    r->shutdown_arg = arg;
}

static void op_stop(void *impl)
{
    nk_real *r = impl;
    r->stop_requested = true;
}

/* ------------------------------------------------------------------ log --- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;

int nk_log_format_parse(const char *s, nk_log_format *out)
{
    if (strcmp(s, "text") == 0) {
        *out = NK_LOG_FORMAT_TEXT;
    } else if (strcmp(s, "json") == 0) {
        *out = NK_LOG_FORMAT_JSON;
    } else {
        return NK_EINVAL;
    }
    return NK_OK;
}

static void write_all(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
}

/* Escape msg as a JSON string body into out; returns bytes written. */
static size_t json_escape(const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0' && o + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return o;
}

/* syslog priorities (sd-daemon SD_DEBUG..SD_ERR) for journald */
static int syslog_prio(nk_log_level level)
{
    switch (level) {
    case NK_LOG_DEBUG:
        return 7;
    case NK_LOG_INFO:
        return 6;
    case NK_LOG_WARN:
        return 4;
    default:
        return 3;
    }
}

static void op_log(void *impl, nk_log_level level, const char *msg)
{
    nk_real *r = impl;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[96];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    char line[2560];
    int n;
    if (r->log_format == NK_LOG_FORMAT_JSON) {
        char esc[2048];
        json_escape(msg, esc, sizeof(esc));
        char lvl[8];
        const char *ln = nk_log_level_name(level);
        size_t i = 0;
        for (; ln[i] != '\0' && i + 1 < sizeof(lvl); i++) {
            lvl[i] = (char)(ln[i] >= 'A' && ln[i] <= 'Z' ? ln[i] - 'A' + 'a' : ln[i]);
        }
        lvl[i] = '\0';
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"node\":%" PRIu32 ",\"msg\":\"%s\"}\n",
                     stamp, lvl, r->rt.node_id, esc);
    } else if (r->log_prio) {
        n = snprintf(line, sizeof(line), "<%d>%s %s n%" PRIu32 " %s\n", syslog_prio(level), stamp,
                     nk_log_level_name(level), r->rt.node_id, msg);
    } else {
        n = snprintf(line, sizeof(line), "%s %s n%" PRIu32 " %s\n", stamp, nk_log_level_name(level),
                     r->rt.node_id, msg);
    }
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if ((size_t)n >= sizeof(line)) {
        line[len - 1] = '\n'; /* truncated: still end the line */
    }
    /* One write per line, serialised, so lines from workers never interleave. */
    pthread_mutex_lock(&g_log_mu);
    write_all(r->log_fd, line, len);
    pthread_mutex_unlock(&g_log_mu);
}

static int open_log_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* SIGHUP: start a new file of the same name (logrotate renamed the old). */
static void reopen_log(nk_real *r)
{
    if (r->log_path == NULL) {
        nk_log(&r->rt, NK_LOG_INFO, "SIGHUP: logging to stderr, nothing to reopen");
        return;
    }
    int fd = open_log_file(r->log_path);
    if (fd < 0) {
        nk_log(&r->rt, NK_LOG_ERROR, "SIGHUP: cannot reopen log file %s: %s; keeping the old one",
               r->log_path, strerror(errno));
        return;
    }
    pthread_mutex_lock(&g_log_mu);
    int old = r->log_fd;
    r->log_fd = fd;
    pthread_mutex_unlock(&g_log_mu);
    close(old);
    nk_log(&r->rt, NK_LOG_INFO, "SIGHUP: reopened log file %s", r->log_path);
}

/* ----------------------------------------------------------- failpoints --- */

static bool fp_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static void free_failpoints(nk_real *r)
{
    for (size_t i = 0; i < r->nfps; i++) {
        free(r->fps[i].name);
    }
    free(r->fps);
    r->fps = NULL;
    r->nfps = 0;
}

/* Parse "name=error,name2=crash" (see rt_real.h). */
static int parse_failpoints(nk_real *r, const char *spec)
{
    if (spec == NULL || spec[0] == '\0') {
        return NK_OK;
    }
    const char *p = spec;
    for (;;) {
        const char *name = p;
        while (fp_name_char(*p)) {
            p++;
        }
        size_t nlen = (size_t)(p - name);
        if (nlen == 0 || *p != '=') {
            return NK_EINVAL;
        }
        p++;
        bool crash;
        if (strncmp(p, "error", 5) == 0) {
            crash = false;
            p += 5;
        } else if (strncmp(p, "crash", 5) == 0) {
            crash = true;
            p += 5;
        } else {
            return NK_EINVAL;
        }
        if (*p != ',' && *p != '\0') {
            return NK_EINVAL;
        }
        nk_real_failpoint *nf = realloc(r->fps, (r->nfps + 1) * sizeof(*nf));
        if (nf == NULL) {
            return NK_ENOMEM;
        }
        r->fps = nf;
        char *copy = malloc(nlen + 1);
        if (copy == NULL) {
            return NK_ENOMEM;
        }
        memcpy(copy, name, nlen);
        copy[nlen] = '\0';
        r->fps[r->nfps].name = copy;
        r->fps[r->nfps].crash = crash;
        r->nfps++;
        if (*p == '\0') {
            return NK_OK;
        }
        p++; /* ',' : another item must follow */
    }
}

static int op_failpoint(void *impl, const char *name)
{
    nk_real *r = impl;
    if (name == NULL) {
        return NK_OK;
    }
    /* Later items win, so "x=error,x=crash" means crash. */
    for (size_t i = r->nfps; i-- > 0;) {
        if (strcmp(r->fps[i].name, name) == 0) {
            if (r->fps[i].crash) {
                nk_log(&r->rt, NK_LOG_ERROR, "failpoint %s: crashing the process (exit 137)", name);
                _exit(137);
            }
            return NK_EFAILPOINT;
        }
    }
    return NK_OK;
}

/* ------------------------------------------------------------ ops table --- */

static int op_run_once(void *impl, uint64_t timeout_ns);

static const nk_rt_ops real_ops = {
    .now = op_now,
    .wall = op_wall,
    .timer_start = op_timer_start,
    .timer_cancel = op_timer_cancel,
    .file_open = op_file_open,
    .file_read_at = op_file_read_at,
    .file_write_at = op_file_write_at,
    .file_append = op_file_append,
    .file_sync = op_file_sync,
    .file_size = op_file_size,
    .file_truncate = op_file_truncate,
    .file_close = op_file_close,
    .stat = op_stat,
    .dir_create = op_dir_create,
    .dir_list = op_dir_list,
    .rename = op_rename,
    .remove = op_remove,
    .dir_sync = op_dir_sync,
    .dir_lock = op_dir_lock,
    .dir_unlock = op_dir_unlock,
    .link = op_link,
    .fs_avail = op_fs_avail,
    .dir_lock_held = op_dir_lock_held,
    .listen = nk_real_listen,
    .listener_addr = nk_real_listener_addr,
    .listener_close = nk_real_listener_close,
    .connect = nk_real_connect,
    .send = nk_real_send,
    .send_raw = nk_real_send_raw,
    .conn_pending = nk_real_conn_pending,
    .close = nk_real_close,
    .job_submit = op_job_submit,
    .failpoint = op_failpoint,
    .log = op_log,
    .set_shutdown_handler = op_set_shutdown_handler,
    .stop = op_stop,
    .run_once = op_run_once,
};

/* ----------------------------------------------------------------- epoll --- */

static int ep_ctl(nk_real *r, int op, int fd, uint32_t events, unsigned tag, uint64_t id)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = ((uint64_t)tag << NK_EV_TAG_SHIFT) | (id & NK_EV_ID_MASK);
    return epoll_ctl(r->epfd, op, fd, &ev) == 0 ? NK_OK : NK_EIO;
}

int nk_real_ep_add(nk_real *r, int fd, uint32_t events, unsigned tag, uint64_t id)
{
    return ep_ctl(r, EPOLL_CTL_ADD, fd, events, tag, id);
}

int nk_real_ep_mod(nk_real *r, int fd, uint32_t events, unsigned tag, uint64_t id)
{
    return ep_ctl(r, EPOLL_CTL_MOD, fd, events, tag, id);
}

void nk_real_ep_del(nk_real *r, int fd)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, &ev);
}

/* ------------------------------------------------------------ lifecycle --- */

static nk_real *real_of(nk_rt *rt)
{
    return (nk_real *)rt->impl;
}

static void stop_workers(nk_real *r)
{
    pthread_mutex_lock(&r->job_mu);
    r->job_shutdown = true;
    pthread_cond_broadcast(&r->job_cv);
    pthread_mutex_unlock(&r->job_mu);
    for (unsigned i = 0; i < r->nworkers; i++) {
        pthread_join(r->workers[i], NULL);
    }
    r->nworkers = 0;
}

static void real_destroy(nk_real *r, bool signals_held)
{
    r->freeing = true;
    stop_workers(r);
    free(r->workers);
    if (r->queue_head != NULL || r->done_head != NULL) {
        /* Apps should drain their jobs first (rt_real.h); say so if not. */
        char first[JOB_NAME_MAX];
        snprintf(first, sizeof(first), "%s",
                 r->queue_head ? r->queue_head->name : r->done_head->name);
        size_t queued = free_job_list(r->queue_head);
        size_t finished = free_job_list(r->done_head);
        nk_log(&r->rt, NK_LOG_WARN,
               "runtime freed with %zu queued and %zu finished jobs undelivered (first: %s)",
               queued, finished, first);
    }
    r->queue_head = r->queue_tail = r->done_head = r->done_tail = NULL;
    nk_real_net_free_all(r);
    nk_timer_heap_free(&r->timers);
    free_failpoints(r);
    free(r->scratch);
    free(r->backlog);
    free(r->wpend);
    if (r->sigfd >= 0) {
        close(r->sigfd);
    }
    if (r->log_fd >= 0 && r->log_fd != STDERR_FILENO) {
        close(r->log_fd);
    }
    free(r->log_path);
    if (r->jobfd >= 0) {
        close(r->jobfd);
    }
    if (r->epfd >= 0) {
        close(r->epfd);
    }
    pthread_cond_destroy(&r->job_cv);
    pthread_mutex_destroy(&r->job_mu);
    if (signals_held) {
        signals_release();
    }
    free(r);
}

int nk_rt_real_new(const nk_rt_real_config *cfg, nk_rt **out)
{
    if (cfg == NULL || out == NULL || cfg->log_level < NK_LOG_DEBUG ||
        cfg->log_level > NK_LOG_ERROR || cfg->worker_threads > MAX_WORKERS) {
        return NK_EINVAL;
    }
    *out = NULL;
    nk_real *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NK_ENOMEM;
    }
    r->epfd = r->jobfd = r->sigfd = -1;
    r->log_fd = STDERR_FILENO;
    r->log_format = cfg->log_format;
    r->log_prio = cfg->log_priority_prefix;
    r->rt.ops = &real_ops;
    r->rt.impl = r;
    r->rt.node_id = cfg->node_id ? cfg->node_id : 1;
    r->rt.log_level = cfg->log_level;
    pthread_mutex_init(&r->job_mu, NULL);
    pthread_cond_init(&r->job_cv, NULL);

    if (cfg->log_file != NULL && cfg->log_file[0] != '\0') {
        r->log_path = strdup(cfg->log_file);
        int fd = r->log_path != NULL ? open_log_file(r->log_path) : -1;
        if (fd < 0) {
            int e = errno;
            real_destroy(r, false);
            return r->log_path == NULL ? NK_ENOMEM : (e == EACCES ? NK_EACCES : NK_EIO);
        }
        r->log_fd = fd;
    }
    int rc = parse_failpoints(r, cfg->failpoints);
    if (rc != NK_OK) {
        real_destroy(r, false);
        return rc;
    }
    r->scratch = malloc(64 * 1024);
    if (r->scratch == NULL) {
        real_destroy(r, false);
        return NK_ENOMEM;
    }

    if (cfg->seed_given) {
        r->rt.seed = cfg->seed;
    } else {
        uint64_t s = 0;
        ssize_t n;
        do {
            n = getrandom(&s, sizeof(s), 0);
        } while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(s)) {
            real_destroy(r, false);
            return NK_EIO;
        }
        r->rt.seed = s;
    }

    /* Block before creating workers: threads inherit the mask, so the signals
     * can only be consumed through the signalfd. Embedded runtimes
     * (no_signals) leave the host's signal handling alone. */
    r->owns_signals = !cfg->no_signals;
    sigset_t set;
    owned_sigset(&set);
    if (r->owns_signals) {
        signals_acquire();
        r->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->jobfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->epfd < 0 || r->jobfd < 0 || (r->owns_signals && r->sigfd < 0) ||
        nk_real_ep_add(r, r->jobfd, EPOLLIN, NK_EV_JOBS, 0) != NK_OK ||
        (r->owns_signals && nk_real_ep_add(r, r->sigfd, EPOLLIN, NK_EV_SIGNAL, 0) != NK_OK)) {
        real_destroy(r, r->owns_signals);
        return NK_EIO;
    }

    unsigned nw = cfg->worker_threads ? cfg->worker_threads : DEFAULT_WORKERS;
    r->workers = calloc(nw, sizeof(*r->workers));
    if (r->workers == NULL) {
        real_destroy(r, r->owns_signals);
        return NK_ENOMEM;
    }
    /* Workers never take signals: they belong to the loop (or the host). */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    for (unsigned i = 0; i < nw; i++) {
        if (pthread_create(&r->workers[i], NULL, worker_main, r) != 0) {
            pthread_sigmask(SIG_SETMASK, &saved, NULL);
            real_destroy(r, r->owns_signals);
            return NK_EIO;
        }
        r->nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);

    if (cfg->seed_given) {
        nk_log(&r->rt, NK_LOG_INFO, "seed %" PRIu64 " (given)", r->rt.seed);
    } else {
        nk_log(&r->rt, NK_LOG_INFO,
               "seed %" PRIu64 " (drawn from the OS; --seed %" PRIu64 " reproduces it)", r->rt.seed,
               r->rt.seed);
    }
    *out = &r->rt;
    return NK_OK;
}

/* epoll_wait timeout in ms: round up so a timer is never woken for early. */
static int wait_timeout_ms(nk_real *r)
{
    if (r->backlog_len > 0) {
        return 0;
    }
    uint64_t deadline;
    if (!nk_timer_heap_next(&r->timers, &deadline)) {
        return -1;
    }
    uint64_t now = nk_real_now(r);
    if (deadline <= now) {
        return 0;
    }
    uint64_t ms = (deadline - now + NK_NSEC_PER_MSEC - 1) / NK_NSEC_PER_MSEC;
    return ms > 60000 ? 60000 : (int)ms;
}

static void fire_timers(nk_real *r)
{
    uint64_t now = nk_real_now(r);
    uint64_t max_id = r->next_timer_id;
    nk_timer_fn fn;
    void *arg;
    uint64_t id;
    while (!r->stop_requested && nk_timer_heap_pop_due(&r->timers, now, max_id, &fn, &arg, &id)) {
        fn(arg);
    }
}

/* One loop iteration: backlog, wait for events (up to timeout_ms, -1 =
 * until the next timer), dispatch them, fire due timers, reap closed
 * objects. Returns NK_OK or NK_EIO when epoll fails. */
static int loop_iteration(nk_real *r, int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    nk_real_net_backlog(r);
    if (nk_real_net_flush_writes(r)) {
        timeout_ms = 0;
    }
    if (r->stop_requested) {
        return NK_OK;
    }
    int n = epoll_wait(r->epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) {
            return NK_OK;
        }
        nk_log(&r->rt, NK_LOG_ERROR, "epoll_wait failed: %s", strerror(errno));
        return NK_EIO;
    }
    /* Level-triggered: events skipped because of a stop are reported
     * again by the next epoll_wait, so breaking out early loses nothing. */
    for (int i = 0; i < n && !r->stop_requested; i++) {
        unsigned tag = (unsigned)(evs[i].data.u64 >> NK_EV_TAG_SHIFT);
        uint64_t id = evs[i].data.u64 & NK_EV_ID_MASK;
        switch (tag) {
        case NK_EV_JOBS:
            jobs_event(r);
            break;
        case NK_EV_SIGNAL:
            signal_event(r);
            break;
        default:
            nk_real_net_event(r, tag, id, evs[i].events);
            break;
        }
    }
    fire_timers(r);
    nk_real_net_reap(r);
    return NK_OK;
}

int nk_rt_real_run(nk_rt *rt)
{
    nk_real *r = real_of(rt);
    if (r->running) {
        return NK_EINVAL;
    }
    r->running = true;
    r->stop_requested = false;
    int rc = NK_OK;
    while (!r->stop_requested && rc == NK_OK) {
        rc = loop_iteration(r, wait_timeout_ms(r));
    }
    nk_real_net_reap(r);
    r->running = false;
    return rc;
}

/* nk_rt_run_once: the same iteration, bounded by the caller's timeout, for
 * blocking convenience APIs (the embedded C API) outside a running loop. */
static int op_run_once(void *impl, uint64_t timeout_ns)
{
    nk_real *r = impl;
    if (r->running) {
        return NK_EINVAL; /* never from inside a callback */
    }
    int ms = wait_timeout_ms(r);
    uint64_t cap = (timeout_ns + NK_NSEC_PER_MSEC - 1) / NK_NSEC_PER_MSEC;
    if (cap > 60000) {
        cap = 60000;
    }
    if (ms < 0 || (uint64_t)ms > cap) {
        ms = (int)cap;
    }
    r->running = true;
    r->stop_requested = false;
    int rc = loop_iteration(r, ms);
    nk_real_net_reap(r);
    r->running = false;
    return rc;
}

void nk_rt_real_free(nk_rt *rt)
{
    if (rt == NULL) {
        return;
    }
    nk_real *r = real_of(rt);
    real_destroy(r, r->owns_signals);
}

/* The default runtime of nokv/rt.h: a real runtime with an OS-drawn seed,
 * quiet logging (warnings and errors only) for embedded use. */
int nk_rt_default_new(unsigned worker_threads, nk_rt **out)
{
    nk_rt_real_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.node_id = 1;
    cfg.worker_threads = worker_threads;
    cfg.log_level = NK_LOG_WARN;
    cfg.no_signals = true; /* the host application owns its signals */
    return nk_rt_real_new(&cfg, out);
}

void nk_rt_default_free(nk_rt *rt)
{
    nk_rt_real_free(rt);
}
