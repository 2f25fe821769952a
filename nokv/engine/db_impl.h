/*
 * db_impl.h - the state of an open database, shared by db.c (open, close,
 * recovery), db_write.c (write path), db_read.c (reads, iterators) and
 * db_bg.c (flush and compaction). Not part of any public API.
 */
#ifndef NK_ENGINE_DB_IMPL_H
#define NK_ENGINE_DB_IMPL_H

#include "nokv/engine/cache.h"
#include "nokv/engine/db.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/version_edit.h"
#include "nokv/engine/memtable.h"
#include "nokv/engine/version.h"
#include "nokv/engine/wal.h"

/* A memtable shared by the db and the iterators reading it. */
typedef struct nk_memref {
    nk_memtable *m;
    uint32_t refs;
    uint64_t last_lsn; /* highest WAL record whose writes it holds */
} nk_memref;

typedef struct db_waiter {
    uint64_t lsn;
    nk_db_done_fn done;
    void *arg;
} db_waiter;

/* A write waiting for a stall to clear. Owns a copy of the batch. */
typedef struct db_pending {
    struct db_pending *next;
    nk_batch batch;
    bool sync;
    nk_db_done_fn done;
    void *arg;
} db_pending;

typedef struct db_snapshot {
    uint64_t seq;
    uint32_t count;
} db_snapshot;

typedef struct db_flush_waiter {
    struct db_flush_waiter *next;
    uint64_t upto; /* done when persisted_seq >= upto */
    nk_db_done_fn done;
    void *arg;
} db_flush_waiter;

typedef struct db_idle_waiter {
    struct db_idle_waiter *next;
    bool flush_memtable;
    nk_db_done_fn done;
    void *arg;
} db_idle_waiter;

struct db_job;

struct nk_db {
    nk_rt *rt;
    char *dir;
    char *wal_dir;
    nk_db_options o;
    nk_cache *cache;
    nk_rand rand;

    nk_memref *mem;
    nk_memref **imm; /* oldest first */
    size_t nimm;
    nk_version *current;
    uint64_t last_seq;
    uint64_t next_file;
    uint64_t persisted_seq; /* every write <= this is in a table */
    uint64_t seq_floor;     /* numbers <= this are taken by ingested tables */
    uint64_t replay_from;   /* first WAL lsn the recovery needed */
    uint64_t wal_min_segment; /* the manifest's WAL claims (version_edit.h) */
    uint64_t wal_min_durable;
    size_t table_count_at_open;

    nk_wal *wal;
    nk_manifest *manifest; /* used by background jobs only (one at a time) */

    db_snapshot *snaps; /* sorted by seq */
    size_t nsnaps;

    db_waiter *waiters; /* sync writes waiting for the WAL, ordered by lsn */
    size_t nwaiters, cap_waiters;
    bool sync_running;

    db_pending *pend_head, *pend_tail; /* stalled writes, in arrival order */
    /* Encoding buffer of small gathered writes (nk_db_write_ops), kept
     * between writes: a malloc, reallocs and a free per SET otherwise. */
    nk_batch wscratch;
    bool wscratch_busy;
    uint64_t stall_timer;

    struct db_job *job; /* the one running background job, or NULL */
    db_idle_waiter *idle;
    struct db_slot_waiter *slot_waiters; /* nk_db_when_slot_free, in order */
    db_flush_waiter *flushers;

    nk_buf compact_ptr[NK_LEVELS]; /* user key where the next L>=1 pick starts */

    bool holding_writes;  /* an ingest is in progress: writes queue */
    struct region_op *region_ops; /* exports/ingests in flight */

    bool closing;
    bool in_close_call; /* inside nk_db_close: completion must not free */
    nk_db_done_fn close_done;
    void *close_arg;

    int bg_error;
    nk_errbuf bg_msg;
    bool nospace;             /* disk full: writes refused, jobs retried */
    uint64_t nospace_timer;   /* retry pending */
    uint64_t nospace_backoff; /* ns; doubles per failed retry */
    nk_errbuf nospace_msg;
    uint64_t claim_timer;     /* periodic WAL claim (db_bg.c) */
    bool claim_due;
    uint64_t claimed_durable; /* WAL lsn the manifest already claims */
    nk_db_stats st;
    nk_db_open_report report;
};

/* Arena block for memtables: a fraction of the memtable budget, so usage
 * (counted in whole blocks) tracks the data, even for small budgets. */
static inline size_t nk_db_arena_block(const nk_db *db)
{
    size_t b = db->o.memtable_bytes / 16;
    return b < 4096 ? 4096 : (b > (1u << 20) ? (1u << 20) : b);
}

/* db_read.c */
void nk_memref_unref(nk_memref *r);
int nk_db_table(nk_db *db, nk_table_meta *f, nk_sst **out, nk_errbuf *eb);
void nk_db_release_file(void *arg, nk_table_meta *f);
uint64_t nk_db_oldest_snapshot(const nk_db *db);
void nk_db_table_path(const nk_db *db, uint64_t number, char *buf, size_t len);

/* db_write.c */
int nk_db_apply_batch(nk_memtable *m, const uint8_t *data, size_t len, nk_errbuf *eb);
void nk_db_process_pending(nk_db *db);
void nk_db_fail_waiters(nk_db *db, int status);

/* db_manifest.c: the engine's side of the manifest */
int nk_db_load_manifest(nk_db *db, nk_errbuf *eb);
/* Record in the manifest (synchronously; only when no job runs: at open and
 * close) that WAL segment `segment` exists durably and lsns <= durable are
 * durable, so a later recovery refuses a WAL that lost them. */
int nk_db_log_wal_claim(nk_db *db, uint64_t segment, uint64_t durable, bool reset, nk_errbuf *eb);
void nk_db_close_manifest(nk_db *db);

/* A job's result, described for the manifest (built by the job itself). */
typedef struct nk_db_edit_add {
    uint32_t level;
    uint64_t number;
    uint64_t size;
    nk_slice smallest;
    nk_slice largest;
    uint64_t min_seq;
    uint64_t max_seq;
    bool has_xxh64; /* record the file's whole-file XXH64 (written as built) */
    uint64_t xxh64;
} nk_db_edit_add;

typedef struct nk_db_edit_desc {
    bool is_flush;
    uint64_t flushed_seq; /* flush: largest seq now in tables */
    uint64_t log_number;  /* flush: first WAL lsn still needed */
    uint64_t next_file;
    uint64_t wal_segment; /* WAL claims (version_edit.h); 0 = none */
    uint64_t wal_durable;
    bool wal_reset; /* salvage: replace the claims instead of raising them */
    uint64_t seq_floor; /* ingest: the added tables' largest seq (0 = none) */
    const uint32_t *del_level;
    const uint64_t *del_number;
    size_t ndel;
    const nk_db_edit_add *add;
    size_t nadd;
} nk_db_edit_desc;

int nk_db_job_log_edit(nk_manifest *m, const nk_db_edit_desc *d, nk_errbuf *eb);

/* db.c */
void nk_db_finish_close(nk_db *db);

/* db_bg.c */
void nk_db_maybe_schedule(nk_db *db);
void nk_db_set_bg_error(nk_db *db, int rc, const nk_errbuf *eb);
void nk_db_enter_nospace(nk_db *db, const nk_errbuf *eb);
void nk_db_leave_nospace(nk_db *db);
void nk_db_start_claims(nk_db *db);
int nk_db_rotate_memtable(nk_db *db);
void nk_db_abandon_job(nk_db *db);
int nk_db_run_exclusive(nk_db *db, const char *name, nk_job_fn work, nk_job_fn done,
                        nk_job_fn abandon, void *arg);
/* Call fn(arg, NK_OK) on the loop as soon as the background-job slot is
 * free (at once if it is), ahead of any flush or compaction, so fn can
 * nk_db_run_exclusive without waiting for the whole engine to go idle.
 * fn gets the db's error (or NK_ESTOPPED) instead when it closes or fails
 * first; after nk_db_abandon it is never called. */
typedef void (*nk_db_slot_fn)(void *arg, int status);
int nk_db_when_slot_free(nk_db *db, nk_db_slot_fn fn, void *arg);

/* region.c */
void nk_db_abandon_region_ops(nk_db *db);
void nk_db_drop_idle_waiters(nk_db *db);

#endif /* NK_ENGINE_DB_IMPL_H */
