/*
 * db.h - the storage engine: an LSM tree on the runtime interface.
 *
 * This is the engine's own API, used by the RESP server, the raftstore and
 * the simulator; nokv/nokv.h wraps it for embedders with blocking calls.
 *
 * Threading: an nk_db belongs to one runtime loop. Every function here runs
 * on the loop thread. Background work (memtable flush, compaction, WAL sync)
 * runs as runtime jobs; their completions come back on the loop thread.
 *
 * Writes: nk_db_write applies a batch atomically (consecutive sequence
 * numbers, one WAL record), then calls done:
 *   - sync = true: after the WAL record is durable (group commit: one fsync
 *     covers every write that arrived while the previous one ran);
 *   - sync = false: as soon as the record is in the WAL (page cache); a
 *     power loss may drop it, a process crash does not.
 * done may run before nk_db_write returns (sync = false, no stall).
 * Readers see a write as soon as nk_db_write returned NK_OK, before done (as
 * in Redis and RocksDB); done is what promises durability. A write queued
 * behind a stall is seen by latest-state point reads (nk_db_get) at once,
 * and by iterators once the queue drains.
 * When L0 or the immutable memtables pile up, writes are slowed down and
 * then queued until background work catches up: memory and L0 stay bounded.
 *
 * Reads: nk_db_get and iterators read at a snapshot (a sequence number);
 * NK_SEQ_MAX means "latest". Corruption is reported (NK_ECORRUPT + message
 * naming the file and offset), never returned as a value.
 *
 * Engine files in the workdir: CURRENT,
 * MANIFEST-<n>, <n>.sst, wal/<n>.log (MODE.json and LOCK belong to the
 * workdir layer).
 */
#ifndef NK_ENGINE_DB_H
#define NK_ENGINE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/batch.h"
#include "nokv/engine/bugs.h"
#include "nokv/engine/sst.h"
#include "nokv/rt.h"

typedef struct nk_db nk_db;

typedef struct nk_db_options {
    bool create_if_missing;       /* default true */
    size_t memtable_bytes;        /* default 64 MiB */
    unsigned max_immutable;       /* immutable memtables before writes stop; default 1 */
    size_t block_cache_bytes;     /* default 8 MiB */
    nk_sst_options sst;           /* block size, restart interval, bloom bits, compression */
    uint64_t target_file_bytes;   /* compaction output size; default 8 MiB */
    uint64_t level1_bytes;        /* default 64 MiB */
    unsigned level_multiplier;    /* default 10 */
    unsigned l0_compaction_trigger; /* default 4 */
    unsigned l0_slowdown;         /* default 12 */
    unsigned l0_stop;             /* default 20 */
    uint64_t wal_segment_bytes;   /* default 64 MiB */
    uint64_t manifest_rewrite_bytes; /* default 4 MiB */
    /* Salvage a damaged workdir (never the default; `nokv repair`,
     * `nokv serve --accept-data-loss`): open with what can be read instead
     * of refusing a WAL that lost durable records. What was given up is
     * logged at WARN and reported by nk_db_open_report; the manifest then
     * records the decision, so later opens are normal again. */
    bool accept_data_loss;
    /* A short-lived open that only flushes and lists its tables (`nokv
     * migrate init`): skip opening every table at open (each is still opened,
     * footer and index verified, on its first read) and start no compaction
     * (a running one would hold the close for its whole length). Flushes
     * and recovery are unchanged. Default false for both. */
    bool lazy_table_open;
    bool no_compaction;
    /* Test only: NK_BUG_* bits (bugs.h) the simulator plants to prove the
     * crash scenario catches a missing sync. 0 = none (always in production). */
    unsigned test_bugs;
} nk_db_options;

void nk_db_options_default(nk_db_options *o);

/*
 * Open (and recover) the database in `workdir`: load the manifest, replay
 * the WAL, delete leftovers of interrupted flushes/compactions. Synchronous.
 * The caller owns the workdir first (nokv/store/workdir.h: the LOCK and the
 * MODE.json gate live there, above the engine); opening one directory twice
 * is the caller's bug. NK_OK, NK_ECORRUPT, NK_ENOENT (missing and
 * !create_if_missing), or an I/O error; eb explains.
 */
int nk_db_open(nk_rt *rt, const char *workdir, const nk_db_options *o, nk_db **out,
               nk_errbuf *eb);

/* What the last open recovered, and (salvage) what it gave up. */
typedef struct nk_db_open_report {
    uint64_t tables;           /* live tables */
    uint64_t wal_segments;     /* WAL segments read */
    uint64_t wal_replayed;     /* WAL records replayed into the memtable */
    uint64_t last_seq;         /* newest sequence number recovered */
    bool wal_torn;             /* a torn tail was cut (never-durable data) */
    uint64_t wal_torn_bytes;
    bool data_lost;            /* accept_data_loss gave up durable records */
    uint64_t lost_lsn_from;    /* WAL records given up (inclusive) */
    uint64_t lost_lsn_to;      /* 0 = every record from lost_lsn_from on */
    uint64_t lost_seq_from;    /* sequence numbers known lost (0 = unknown) */
    uint64_t lost_seq_to;
} nk_db_open_report;

const nk_db_open_report *nk_db_open_report_get(const nk_db *db);

typedef void (*nk_db_done_fn)(void *arg, int status);

/*
 * Close: refuse new writes, wait for the running background job, sync the
 * WAL, release everything. done(arg, status) runs once everything is freed
 * (NK_OK, or the first error met while syncing). The db pointer is invalid
 * as soon as nk_db_close is called.
 */
void nk_db_close(nk_db *db, nk_db_done_fn done, void *arg);

/*
 * Free everything without any I/O and without calling any callback: the
 * node that ran this database has crashed (simulator), so its runtime will
 * never deliver the database's job, timer or WAL completions. Never call it
 * on a live runtime: a running job would then touch freed memory.
 */
void nk_db_abandon(nk_db *db);

/* Apply a batch (see the top of this file). The caller may reuse the batch
 * as soon as this returns. Returns NK_OK (done will be called exactly once),
 * or an error without calling done, the batch not applied: NK_EINVAL empty
 * batch, NK_ETOOBIG over NK_BATCH_MAX_BYTES, NK_ENOSPC disk full (refused
 * until background work finds space again: no restart needed),
 * NK_ESTOPPED closing, or the background error that made the db read-only.
 * A refused write leaves the db healthy. */
int nk_db_write(nk_db *db, const nk_batch *b, bool sync, nk_db_done_fn done, void *arg);

/* One operation of nk_db_write_ops. A put's value is val_head ‖ val: a small
 * header (the RESP layer's envelope) in front of a value that stays where
 * the caller has it. */
typedef struct nk_db_op {
    bool del;
    nk_slice key;
    nk_slice val_head;
    nk_slice val;
} nk_db_op;

/* nk_db_write for operations given in place (same result codes, same
 * atomicity, one WAL record): a large write is logged straight from the
 * caller's buffers and copied once, into the memtable, so a 100 MiB value
 * is not duplicated on its way in. The caller may free its buffers as soon
 * as this returns. */
int nk_db_write_ops(nk_db *db, const nk_db_op *ops, size_t n, bool sync, nk_db_done_fn done,
                    void *arg);

/* Make every write applied so far durable; done(arg, status) when it is
 * (group commit: joins a running WAL sync). Returns NK_OK (done will be
 * called) or an error without calling done. */
int nk_db_sync(nk_db *db, nk_db_done_fn done, void *arg);

/* Point read. NK_OK with the value in *val, NK_ENOENT if absent at snap. */
int nk_db_get(nk_db *db, const void *key, size_t klen, uint64_t snap, nk_buf *val,
              nk_errbuf *eb);

/* Snapshots: a sequence number whose versions compaction keeps. */
uint64_t nk_db_snapshot(nk_db *db);
void nk_db_release_snapshot(nk_db *db, uint64_t seq);
uint64_t nk_db_last_seq(const nk_db *db);

/* ------------------------------------------------------------ iterators --- */

typedef struct nk_db_iter nk_db_iter;

typedef struct nk_db_iter_options {
    uint64_t snapshot; /* 0 = latest at creation */
    nk_slice lower;    /* inclusive; empty = unbounded */
    nk_slice upper;    /* exclusive; empty = unbounded */
} nk_db_iter_options;

/* An iterator pins the memtables and tables it reads; free it promptly. */
int nk_db_iter_new(nk_db *db, const nk_db_iter_options *o, nk_db_iter **out);
void nk_db_iter_free(nk_db_iter *it);
bool nk_db_iter_valid(const nk_db_iter *it);
nk_slice nk_db_iter_key(const nk_db_iter *it);
nk_slice nk_db_iter_value(const nk_db_iter *it);
void nk_db_iter_first(nk_db_iter *it);
void nk_db_iter_last(nk_db_iter *it);
void nk_db_iter_seek(nk_db_iter *it, const void *key, size_t klen);
void nk_db_iter_seek_for_prev(nk_db_iter *it, const void *key, size_t klen);
void nk_db_iter_next(nk_db_iter *it);
void nk_db_iter_prev(nk_db_iter *it);
int nk_db_iter_status(const nk_db_iter *it, nk_errbuf *eb);

/* ---------------------------------------------------------------- stats --- */

typedef struct nk_db_stats {
    uint64_t last_seq;
    uint64_t durable_lsn;
    uint64_t writes;
    uint64_t write_bytes;
    uint64_t syncs;
    uint64_t stalls_slowdown;
    uint64_t stalls_stop;
    uint64_t flushes;
    uint64_t compactions;
    uint64_t compaction_bytes_in;
    uint64_t compaction_bytes_out;
    uint64_t files[7];
    uint64_t level_bytes[7];
    size_t memtable_bytes;
    unsigned immutables;
    size_t cache_bytes;
    uint64_t cache_hits;
    uint64_t cache_misses;
    int background_error;
    uint64_t nospace_events; /* times the disk was found full */
    bool nospace;            /* full now: writes refused until space is freed */
} nk_db_stats;

void nk_db_get_stats(const nk_db *db, nk_db_stats *s);

/* Flush every write applied so far into tables (not later ones: bounded even
 * under sustained writes); done(arg, status) once they are. Returns NK_OK
 * (done will be called, possibly at once) or an error. */
int nk_db_flush(nk_db *db, nk_db_done_fn done, void *arg);

/* Run flush of the current memtable and compactions until nothing is due;
 * done(arg, status) when idle (used by tests, benchmarks and close). */
void nk_db_wait_idle(nk_db *db, bool flush_memtable, nk_db_done_fn done, void *arg);

#endif /* NK_ENGINE_DB_H */
