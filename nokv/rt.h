/*
 * rt.h - the NoKV-C runtime interface.
 *
 * Everything in nokv/ reaches the outside world (clock, timers, randomness,
 * files, network, background work, failpoints, logging) through this header
 * and nothing else. Two backends implement it:
 *
 *   - the real runtime (disk/ + net/): POSIX files, an epoll loop, TCP on
 *     IPv4, a small worker-thread pool for jobs;  nk_rt_real_new() in
 *     net/rt_real.h.
 *   - the simulated runtime (sim/): many nodes in one process under a seeded
 *     scheduler with a simulated disk, network and clock; see sim/sim.h.
 *
 * One nk_rt object per node. A node is single-threaded: every callback
 * (timer, network, job done, shutdown) runs on the node's loop thread, one at
 * a time, so nokv/ needs no locks.
 *
 * Threading contract (real backend):
 *   - Loop-thread only: timers, network, job submission, nk_rt_stop.
 *   - Safe from a job's `work` function too: the file and directory calls,
 *     nk_rt_now, nk_log, nk_failpoint. A job touches only data it owns.
 *
 * Error contract: every fallible call returns NK_OK or a negative NK_E* code
 * (nokv/util/err.h). After a simulated crash every call of that node returns
 * NK_ECRASHED and has no effect; code should simply propagate the error.
 *
 * Determinism contract (enforced by tools/lint/determinism.sh): nokv/ never
 * calls the OS directly, never orders anything by pointer value, and never
 * hashes uninitialised bytes. Identifiers handed out by the runtime (timer,
 * connection and listener ids) are sequence numbers, never addresses.
 */
#ifndef NK_RT_H
#define NK_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/util/err.h"
#include "nokv/util/rand.h"

typedef struct nk_rt nk_rt;
typedef struct nk_file nk_file;     /* backend-defined open file */
typedef struct nk_dirlock nk_dirlock; /* backend-defined workdir lock */

/* ---------------------------------------------------------------- time --- */

#define NK_NSEC_PER_USEC UINT64_C(1000)
#define NK_NSEC_PER_MSEC UINT64_C(1000000)
#define NK_NSEC_PER_SEC UINT64_C(1000000000)

/* Monotonic time in nanoseconds since an arbitrary per-node origin. Never goes
 * backwards. In the simulator it follows the node's drifting clock. */
uint64_t nk_rt_now(nk_rt *rt);

/* Wall-clock time in nanoseconds since the Unix epoch: for display, and for
 * absolute deadlines a user states in wall time (Redis EXPIREAT/EX survive
 * restarts, so they cannot use the monotonic clock). Never for internal
 * ordering, timeouts or leases. Deterministic in the simulator. */
uint64_t nk_rt_wall(nk_rt *rt);

/* --------------------------------------------------------------- timers --- */

typedef void (*nk_timer_fn)(void *arg);

/*
 * Run fn(arg) once, delay_ns from now (node-local time). Timers fire in order
 * of (deadline, start sequence): two timers with the same deadline fire in the
 * order they were started. Returns a non-zero id, or 0 if the node has crashed
 * or the runtime is being freed (after nk_rt_stop the loop may run again, so
 * timers started then are kept).
 */
uint64_t nk_rt_timer_start(nk_rt *rt, uint64_t delay_ns, nk_timer_fn fn, void *arg);

/* Cancel a pending timer. Returns NK_OK, or NK_ENOENT if it already fired or
 * was cancelled (not an error worth logging). */
int nk_rt_timer_cancel(nk_rt *rt, uint64_t timer_id);

/* ---------------------------------------------------------- randomness --- */

/* The node's root seed: given explicitly (--seed, simulator) or, for the real
 * runtime without --seed, drawn once from the OS and logged at start-up. */
uint64_t nk_rt_seed(nk_rt *rt);

/* Initialise `out` as the node's stream called `name` (e.g. "raft"). Pure
 * function of (root seed, node id, name): the same name gives the same stream. */
void nk_rt_rand_stream(nk_rt *rt, const char *name, nk_rand *out);

/* ---------------------------------------------------------------- files --- */

/* Open flags (combine with |). Without NK_OPEN_WRITE the file is read-only.
 * EXCL without CREATE and TRUNC without WRITE are NK_EINVAL. */
#define NK_OPEN_READ 0x0u
#define NK_OPEN_WRITE 0x1u  /* read and write */
#define NK_OPEN_CREATE 0x2u /* create if missing (implies nothing about sync) */
#define NK_OPEN_EXCL 0x4u   /* with CREATE: fail with NK_EEXIST if present */
#define NK_OPEN_TRUNC 0x8u  /* truncate to 0 on open (needs WRITE) */

/*
 * Durability model (the simulator enforces it exactly; the real backend gets
 * it from the kernel):
 *   - file contents written with write_at/append become durable only after
 *     nk_rt_file_sync on that file;
 *   - creating, renaming or removing a directory entry becomes durable only
 *     after nk_rt_dir_sync on the directory that holds it;
 *   - on a crash, anything not yet durable may be kept, lost, or (for file
 *     data) torn at sector granularity. Readers must verify checksums.
 */
int nk_rt_file_open(nk_rt *rt, const char *path, unsigned flags, nk_file **out);

/* Read up to len bytes at off. *nread < len only at end of file. */
int nk_rt_file_read_at(nk_rt *rt, nk_file *f, uint64_t off, void *buf, size_t len,
                       size_t *nread);

/* Write exactly len bytes at off (extends the file if needed). */
int nk_rt_file_write_at(nk_rt *rt, nk_file *f, uint64_t off, const void *buf, size_t len);

/* Append len bytes at the current end of file. A file has at most one
 * handle that writes to it at a time (the real backend remembers the size
 * instead of asking the kernel before every append). */
int nk_rt_file_append(nk_rt *rt, nk_file *f, const void *buf, size_t len);

/* Make the file's data durable (fdatasync). On failure the state of unsynced
 * data is unknown: callers must treat it as lost (the PostgreSQL lesson). */
int nk_rt_file_sync(nk_rt *rt, nk_file *f);

int nk_rt_file_size(nk_rt *rt, nk_file *f, uint64_t *size);
int nk_rt_file_truncate(nk_rt *rt, nk_file *f, uint64_t size);

/* Close the handle. Does not sync. Always releases the handle. */
int nk_rt_file_close(nk_rt *rt, nk_file *f);

typedef struct nk_stat {
    bool is_dir;
    uint64_t size;
} nk_stat;

/* NK_ENOENT when the path does not exist. */
int nk_rt_stat(nk_rt *rt, const char *path, nk_stat *st);

/* Create one directory level. NK_EEXIST if it already exists. */
int nk_rt_dir_create(nk_rt *rt, const char *path);

/* A sorted (bytewise) list of entry names, without "." and "..". */
typedef struct nk_names {
    char **names;
    size_t count;
} nk_names;

int nk_rt_dir_list(nk_rt *rt, const char *path, nk_names *out);
void nk_names_free(nk_names *names);

/* Atomically replace `to` with `from` (POSIX rename semantics). */
int nk_rt_rename(nk_rt *rt, const char *from, const char *to);

/* Remove a file or an empty directory. */
int nk_rt_remove(nk_rt *rt, const char *path);

/*
 * Hard link: a second directory entry `to` for the file `from` (POSIX
 * link(2)). The data is shared, not copied: a write through either name is
 * seen through the other, and removing one name keeps the data for the
 * other. The new entry is durable only after nk_rt_dir_sync of the directory
 * that holds `to`, like any created entry. NK_EEXIST if `to` exists,
 * NK_EISDIR for a directory, NK_ENOENT if `from` is missing, NK_ENOTSUP when
 * the two paths are on different file systems (real backend: EXDEV).
 */
int nk_rt_link(nk_rt *rt, const char *from, const char *to);

/* Bytes an unprivileged writer can still add under `path` (statvfs f_bavail
 * for real; capacity minus live data in the simulator, UINT64_MAX when the
 * simulated disk has no capacity limit). */
int nk_rt_fs_avail(nk_rt *rt, const char *path, uint64_t *avail);

/* Make the entries of directory `path` (creates, renames, removes) durable. */
int nk_rt_dir_sync(nk_rt *rt, const char *path);

/* Take the exclusive owner lock of a workdir (file `<dir>/LOCK`). NK_EBUSY if
 * another process (or simulated process) holds it. Released by unlock or by
 * the owner's death. */
int nk_rt_dir_lock(nk_rt *rt, const char *dir, nk_dirlock **out);
void nk_rt_dir_unlock(nk_rt *rt, nk_dirlock *lock);

/* Is the workdir lock held by someone (this process included)? Changes
 * nothing: no LOCK file is created or written (taking the lock records the
 * owner's pid in it), so a read-only command (`nokv migrate plan`) can ask.
 * *held = false when there is no LOCK file. */
int nk_rt_dir_lock_held(nk_rt *rt, const char *dir, bool *held);

/* -------------------------------------------------------------- network --- */

/*
 * Connections carry either *frames* or a *raw byte stream*:
 *   - framed: each nk_rt_send() is delivered whole, once, in order, with its
 *     `kind` (1..255), checksummed on the wire (see docs/formats.md). Used
 *     between NoKV processes (raft, admin, snapshot streams).
 *   - raw: bytes delivered in order as chunks of arbitrary size (kind 0).
 *     Used for client protocols such as RESP.
 * An accepted connection becomes framed if its first byte is the frame magic
 * (0x89), raw otherwise, so one listener serves every protocol.
 *
 * A connection can break at any time; on_close then reports why. After
 * on_close the id is dead and must not be used.
 */
#define NK_FRAME_RAW 0 /* kind of raw-stream chunks */
#define NK_FRAME_MAX (64u * 1024u * 1024u) /* largest frame payload */

typedef enum nk_conn_mode {
    NK_CONN_FRAMED = 1,
    NK_CONN_RAW = 2,
} nk_conn_mode;

typedef struct nk_net_handlers {
    /* A listener accepted `conn` from `peer_addr` ("ip:port" or sim node). */
    void (*on_accept)(void *ctx, uint64_t listener_id, uint64_t conn, const char *peer_addr);
    /* An outgoing connect finished: status NK_OK, or an error (refused,
     * timed out); on error the id is already dead and on_close is not called. */
    void (*on_connect)(void *ctx, uint64_t conn, int status);
    /* A frame (kind >= 1) or a raw chunk (kind == NK_FRAME_RAW) arrived. The
     * data is only valid during the call. */
    void (*on_message)(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data,
                       size_t len);
    /* The connection is gone. reason: NK_ECLOSED (peer closed or network
     * break), NK_EPROTO (bad frame: magic, checksum), NK_ETOOBIG (frame over
     * the limit), NK_EIO. Not called for connections closed locally. */
    void (*on_close)(void *ctx, uint64_t conn, int reason);
} nk_net_handlers;

/*
 * Listen on `addr` ("127.0.0.1:6380"; port 0 picks a free port, see
 * nk_rt_listener_addr). Accepted connections use `h` and `ctx`.
 */
int nk_rt_listen(nk_rt *rt, const char *addr, const nk_net_handlers *h, void *ctx,
                 uint64_t *listener_id);

/* The address actually bound ("127.0.0.1:41234"). */
int nk_rt_listener_addr(nk_rt *rt, uint64_t listener_id, char *buf, size_t len);

/* Stop listening; established connections stay open. */
int nk_rt_listener_close(nk_rt *rt, uint64_t listener_id);

/* Start connecting; the result arrives through h->on_connect. */
int nk_rt_connect(nk_rt *rt, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                  void *ctx, uint64_t *conn);

/*
 * Sending: allowed as soon as nk_rt_connect (or on_accept) returned; bytes
 * queued before the connection is established are sent once it is, and lost
 * if the connect fails. On an id that is closed or unknown: NK_ECLOSED. A
 * send on a connection that broke but whose on_close has not run yet succeeds
 * and the data is lost, as with a real socket.
 */

/* Queue one frame (framed connections; kind 1..255, len <= NK_FRAME_MAX). */
int nk_rt_send(nk_rt *rt, uint64_t conn, uint8_t kind, const void *data, size_t len);

/* Queue raw bytes (raw connections). */
int nk_rt_send_raw(nk_rt *rt, uint64_t conn, const void *data, size_t len);

/* Bytes queued for sending and not yet written to the wire (0 for an unknown
 * id): a caller applies its own backpressure by checking this. */
size_t nk_rt_conn_pending(nk_rt *rt, uint64_t conn);

/* Close locally. Queued bytes are flushed best-effort; on_close is not called.
 * NK_ENOENT for an unknown id. Accepted connections share their listener's
 * ctx: servers map connection ids to their own per-connection state. */
int nk_rt_close(nk_rt *rt, uint64_t conn);

/* ----------------------------------------------------------------- jobs --- */

typedef void (*nk_job_fn)(void *arg);

/*
 * Run work(arg) in the background, then done(arg) on the loop thread. `name`
 * labels the job in logs and traces ("compaction", "snapshot.export"). The
 * real backend runs work on a worker thread; the simulator runs it at a
 * seeded simulated time. If the node crashes first, done never runs (and work
 * may or may not have run). Returns NK_OK or NK_ECRASHED/NK_ESTOPPED.
 */
int nk_rt_job_submit(nk_rt *rt, const char *name, nk_job_fn work, nk_job_fn done, void *arg);

/* ----------------------------------------------------------- failpoints --- */

/*
 * A named point where a fault can be injected: `name` says which step it
 * interrupts ("wal.after_append", "migrate.init.after_catalog"). Returns:
 *   NK_OK          - nothing armed, carry on (the common case);
 *   NK_EFAILPOINT  - the point was armed to fail: return this error;
 *   NK_ECRASHED    - the node was crashed here: propagate, nothing you do
 *                    from now on reaches disk or network.
 */
int nk_failpoint(nk_rt *rt, const char *name);

/* ------------------------------------------------------------------ log --- */

typedef enum nk_log_level {
    NK_LOG_DEBUG = 0,
    NK_LOG_INFO = 1,
    NK_LOG_WARN = 2,
    NK_LOG_ERROR = 3,
} nk_log_level;

/* Log a line. In the simulator it goes to the trace, so never log pointers,
 * host error strings or wall time. */
void nk_log(nk_rt *rt, nk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *nk_log_level_name(nk_log_level level);

/* --------------------------------------------------------- node control --- */

/* This node's id (1-based in the simulator; 1 for a real process unless set). */
uint32_t nk_rt_node_id(nk_rt *rt);

typedef void (*nk_shutdown_fn)(void *arg);

/* Called once, on the loop thread, when the node is asked to stop gracefully
 * (SIGTERM/SIGINT for a real process, a scenario `stop` step in the sim). The
 * handler should finish its work and then call nk_rt_stop(). */
void nk_rt_set_shutdown_handler(nk_rt *rt, nk_shutdown_fn fn, void *arg);

/* Ask the loop to return once the current callback finishes. */
void nk_rt_stop(nk_rt *rt);

/*
 * Run the callbacks that are ready, waiting up to timeout_ns for at least one
 * to become ready. Only for blocking convenience APIs used outside a running
 * loop (the embedded C API waiting for a durable write, tools); never call it
 * from inside a callback (NK_EINVAL). The simulator drives its nodes itself
 * and returns NK_ENOTSUP.
 */
int nk_rt_run_once(nk_rt *rt, uint64_t timeout_ns);

/* ------------------------------------------------------ default runtime --- */

/*
 * A real runtime for embedders who do not run a loop of their own (the
 * blocking API of nokv/nokv.h). Declared here, defined by the real backend
 * (net/rt_real.c), in the way SQLite's core declares sqlite3_os_init and each
 * OS layer defines it: libnokv never links the OS layer by itself. Code in
 * the simulator never calls it.
 */
int nk_rt_default_new(unsigned worker_threads, nk_rt **out);
void nk_rt_default_free(nk_rt *rt);

/* ---------------------------------------------------- backend interface --- */

/*
 * The operations a backend implements. nokv/ code never calls these directly;
 * it uses the nk_rt_* functions above, which dispatch here.
 */
typedef struct nk_rt_ops {
    uint64_t (*now)(void *impl);
    uint64_t (*wall)(void *impl);
    uint64_t (*timer_start)(void *impl, uint64_t delay_ns, nk_timer_fn fn, void *arg);
    int (*timer_cancel)(void *impl, uint64_t id);

    int (*file_open)(void *impl, const char *path, unsigned flags, nk_file **out);
    int (*file_read_at)(void *impl, nk_file *f, uint64_t off, void *buf, size_t len,
                        size_t *nread);
    int (*file_write_at)(void *impl, nk_file *f, uint64_t off, const void *buf, size_t len);
    int (*file_append)(void *impl, nk_file *f, const void *buf, size_t len);
    int (*file_sync)(void *impl, nk_file *f);
    int (*file_size)(void *impl, nk_file *f, uint64_t *size);
    int (*file_truncate)(void *impl, nk_file *f, uint64_t size);
    int (*file_close)(void *impl, nk_file *f);
    int (*stat)(void *impl, const char *path, nk_stat *st);
    int (*dir_create)(void *impl, const char *path);
    int (*dir_list)(void *impl, const char *path, nk_names *out);
    int (*rename)(void *impl, const char *from, const char *to);
    int (*remove)(void *impl, const char *path);
    int (*dir_sync)(void *impl, const char *path);
    int (*dir_lock)(void *impl, const char *dir, nk_dirlock **out);
    void (*dir_unlock)(void *impl, nk_dirlock *lock);
    int (*link)(void *impl, const char *from, const char *to);
    int (*fs_avail)(void *impl, const char *path, uint64_t *avail);
    int (*dir_lock_held)(void *impl, const char *dir, bool *held);

    int (*listen)(void *impl, const char *addr, const nk_net_handlers *h, void *ctx,
                  uint64_t *listener_id);
    int (*listener_addr)(void *impl, uint64_t listener_id, char *buf, size_t len);
    int (*listener_close)(void *impl, uint64_t listener_id);
    int (*connect)(void *impl, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                   void *ctx, uint64_t *conn);
    int (*send)(void *impl, uint64_t conn, uint8_t kind, const void *data, size_t len);
    int (*send_raw)(void *impl, uint64_t conn, const void *data, size_t len);
    size_t (*conn_pending)(void *impl, uint64_t conn);
    int (*close)(void *impl, uint64_t conn);

    int (*job_submit)(void *impl, const char *name, nk_job_fn work, nk_job_fn done,
                      void *arg);
    int (*failpoint)(void *impl, const char *name);
    void (*log)(void *impl, nk_log_level level, const char *msg);
    void (*set_shutdown_handler)(void *impl, nk_shutdown_fn fn, void *arg);
    void (*stop)(void *impl);
    int (*run_once)(void *impl, uint64_t timeout_ns);
} nk_rt_ops;

struct nk_rt {
    const nk_rt_ops *ops;
    void *impl;
    uint32_t node_id;
    uint64_t seed;
    nk_log_level log_level; /* lines below this level are dropped before formatting */
};

#endif /* NK_RT_H */
