/*
 * wal.h - the write-ahead log: segmented, checksummed, group-committed.
 *
 * Files: <dir>/NNNNNN.log (decimal segment number, at least 6 digits),
 * each a logfile.h file with magic NK_WAL_FILE_MAGIC ("nokv.wal") whose
 * records carry opaque payloads (the DB puts an encoded write batch there).
 * Record lsns are 1-based and contiguous across segments; a segment header
 * says which lsn the segment starts at. Segment numbers only grow.
 *
 * Writing
 * -------
 *   nk_wal_append writes one record into the current segment at once (the
 *   runtime's page cache); it is NOT durable yet. nk_wal_sync_start makes it
 *   durable: it submits ONE runtime job that fsyncs every segment written
 *   since the previous sync (and the WAL directory if a segment was created
 *   since), and reports the lsn that is now durable. While that job runs,
 *   further appends and sync requests accumulate; when it finishes, one new
 *   job covers them all (group commit: many writes, one sync).
 *
 *   Rotation: an append that would push the current segment past
 *   segment_size first starts a new segment (a segment always takes at least
 *   one record, so a huge record gets a segment of its own). The new
 *   segment's directory entry is made durable by the sync job before any
 *   record in it is reported durable.
 *
 *   Every record stores synced_upto = the durable lsn at the time it was
 *   written; a new segment's header stores it too. Those claims are what
 *   lets recovery tell a torn tail from corruption (logfile.h).
 *
 *   Disk full: an append that meets NK_ENOSPC cuts its partial record off
 *   again (truncate to the previous end) and returns NK_ENOSPC with the WAL
 *   still usable, as does a rotation that could not create its segment; the
 *   next append simply tries again.
 *
 *   Errors: an append or rotation error, or a failed sync, is FATAL for this
 *   WAL object: the state of unsynced data is unknown (the PostgreSQL fsync
 *   lesson), so every later append/sync returns that error (nk_wal_status)
 *   until the WAL is abandoned and reopened, which recovers from what is on
 *   disk. Only a failpoint error before anything was written
 *   ("wal.append.before") leaves the WAL usable.
 *
 * Recovery (nk_wal_open)
 * ----------------------
 * Segments are read in number order; records are checked (magic, type,
 * length, checksum, lsn contiguous) and handed to replay_cb in lsn order.
 * At the first bad spot, with P the lsn expected there:
 *   - if any intact record or header anywhere in the log (before or after the
 *     bad spot) claims synced_upto >= P, lsn P had been made durable, so this
 *     is CORRUPTION: open fails with NK_ECORRUPT, eb naming the segment file
 *     and the byte offset (and the record holding the claim);
 *   - otherwise it is a TORN TAIL (data never acknowledged): replay stops,
 *     the discarded byte count is reported (nk_wal_recovery_info, and a WARN
 *     log line), and before anything new is written the segment is truncated
 *     there and every later segment removed, durably.
 * So a pure crash never fails recovery and never loses an lsn that was
 * reported durable; corruption covered by a claim is always reported; a
 * corrupted payload is never returned.
 *
 * Claims reach the log three ways: every record (synced_upto at append
 * time), every segment header, and a MARK record the WAL appends right after
 * each successful sync (it becomes durable with the next sync, or with the
 * kernel's writeback; a clean nk_wal_close writes and syncs a final one).
 * The residual window: media damage to the last synced group when a power
 * loss also took the MARK written after it; that is indistinguishable from
 * a torn tail and is cut (reported in nk_wal_recovery and a WARN line).
 *
 * Then open makes everything it replayed durable (fsyncs every remaining
 * segment and the directory: after a process kill the replayed bytes may
 * still be only in the page cache) and starts a fresh segment whose header
 * claims the replayed lsns; durable_lsn == last_lsn == the last replayed
 * lsn. Records with lsn < opts.replay_from are read and checked but not
 * handed to replay_cb; if the first segment starts after replay_from, the
 * records in between are gone: NK_ECORRUPT. If the log ends before
 * replay_from (everything was flushed and old segments released), numbering
 * continues at replay_from: nk_wal_last_lsn and nk_wal_durable_lsn return
 * replay_from - 1, while nk_wal_recovery_info()->last_lsn still reports the
 * last lsn actually read.
 *
 * Threading: all calls on the loop thread (the one that runs job `done`s).
 * The sync job's work touches only its own copied state (file handles the
 * WAL keeps open until the job is done, a copy of the directory path).
 *
 * Failpoints: "wal.append.before" (before a record is written),
 * "wal.sync.before" (in the sync job, before the first fsync),
 * "wal.rotate.after_create" (new segment created, header not yet written),
 * "wal.repair.after_cut" (recovery truncated a torn tail, not yet synced),
 * "wal.open.after_segment" (open's new segment and directory synced, before
 * the owner records it).
 */
#ifndef NK_ENGINE_WAL_H
#define NK_ENGINE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/bugs.h"
#include "nokv/engine/slice.h"
#include "nokv/rt.h"

#define NK_WAL_FILE_MAGIC UINT64_C(0x6c61772e766b6f6e) /* "nokv.wal" as LE bytes */
#define NK_WAL_DEFAULT_SEGMENT_SIZE (UINT64_C(64) << 20)
#define NK_WAL_MIN_SEGMENT_SIZE UINT64_C(4096)
#define NK_WAL_MAX_PAYLOAD (UINT32_C(1) << 27) /* NK_LOGREC_MAX_PAYLOAD */

typedef struct nk_wal nk_wal;

typedef struct nk_wal_options {
    uint64_t segment_size; /* rotate past this; default 64 MiB, min 4 KiB */
    uint64_t replay_from;  /* first lsn the caller still needs (0 or 1 = all) */
    /* What the caller's own durable metadata (the manifest) says the log
     * must hold; 0 = no claim. Recovery refuses (NK_ECORRUPT naming the
     * file, what is missing and what to do) a log whose newest segment is
     * older than min_segment, or that ends before min_durable; damage at or
     * below min_durable is corruption, never a torn tail. */
    uint64_t min_segment;
    uint64_t min_durable;
    /* Salvage a damaged log (an operator's explicit choice): open with what
     * can be read instead of refusing; what was given up is logged at WARN
     * and reported in nk_wal_recovery (salvaged, lost_from..lost_to). */
    bool salvage;
    unsigned test_bugs; /* NK_BUG_* (bugs.h), planted by the simulator; 0 */
} nk_wal_options;

void nk_wal_options_default(nk_wal_options *o);

/* One replayed record, in lsn order. The payload is valid only during the
 * call. Return NK_OK to continue; any other code aborts nk_wal_open with it
 * (nothing on disk is changed then). */
typedef int (*nk_wal_replay_fn)(void *arg, uint64_t lsn, const uint8_t *payload, size_t len);

/* What the last nk_wal_open found. */
typedef struct nk_wal_recovery {
    uint64_t segments;        /* segment files read */
    uint64_t records;         /* intact records read (replayed + skipped) */
    uint64_t replayed;        /* handed to replay_cb */
    uint64_t first_lsn;       /* of the oldest segment */
    uint64_t last_lsn;        /* last intact lsn (first_lsn - 1 if none) */
    bool torn;                /* a torn tail was cut */
    uint64_t torn_segment;    /* its segment number */
    uint64_t torn_offset;     /* byte offset of the cut in it */
    uint64_t discarded_bytes; /* bytes cut (that segment's tail + later segments) */
    bool salvaged;            /* salvage gave up lsns that were durable */
    uint64_t lost_from;       /* ...these (inclusive) */
    uint64_t lost_to;         /* 0 = no upper bound known (segments gone) */
} nk_wal_recovery;

/*
 * Open (creating `dir` if missing) and recover, as described above, then
 * position for appends. opts NULL = defaults. On failure replay_cb may
 * already have seen a valid prefix: the caller must discard what it built.
 * NK_OK, NK_ECORRUPT / NK_ENOTSUP (eb: file, offset, what to do),
 * NK_EINVAL (bad options), NK_ENOMEM, a file error, or replay_cb's code.
 */
int nk_wal_open(nk_rt *rt, const char *dir, const nk_wal_options *opts, nk_wal_replay_fn replay_cb,
                void *arg, nk_wal **out, nk_errbuf *eb);

const nk_wal_recovery *nk_wal_recovery_info(const nk_wal *w);

/* Read-only check (nokv check): verify every record checksum and header of
 * the log in `dir` and the opts claims (replay_from, min_segment,
 * min_durable) exactly as nk_wal_open would, without changing anything on
 * disk and without replaying. NK_OK (out->torn: a tail recovery would cut,
 * never-durable data), or what nk_wal_open would refuse with (eb). */
int nk_wal_check(nk_rt *rt, const char *dir, const nk_wal_options *opts, nk_wal_recovery *out,
                 nk_errbuf *eb);

/*
 * Append a record; *lsn (may be NULL) gets its lsn. Not durable until a sync
 * covering it reports success. NK_OK, NK_ETOOBIG (> NK_WAL_MAX_PAYLOAD),
 * NK_EFAILPOINT (nothing written; WAL still usable), or a fatal error (the
 * WAL is failed: see nk_wal_status).
 */
int nk_wal_append(nk_wal *w, const void *payload, size_t len, uint64_t *lsn);

/* The same for a payload given in two pieces (head then body, either may be
 * empty), written as one record. A large record is written straight from
 * the pieces (header, pieces, checksum: several appends, no copy), so a
 * 100 MiB value is not duplicated in memory; a small one is framed in a
 * reused buffer and written in one append. */
int nk_wal_append2(nk_wal *w, const void *head, size_t head_len, const void *body, size_t body_len,
                   uint64_t *lsn);

/* The same for any number of pieces. */
int nk_wal_appendv(nk_wal *w, const nk_slice *parts, size_t nparts, uint64_t *lsn);

/* appendv for a record whose writer waits for a sync anyway (a sync write):
 * while a sync job runs, a small record is held in memory instead of being
 * written at once; the next sync job writes every held record in one append
 * before it starts, so the records it reports durable are the same. Any
 * other append, a rotation and close write the held records first. The
 * difference to appendv: a crash of the process (not only of the machine)
 * loses held records, which no sync had covered yet, and a write error on
 * them (a full disk too) is fatal rather than refused per record. */
int nk_wal_appendv_held(nk_wal *w, const nk_slice *parts, size_t nparts, uint64_t *lsn);

/* Sync completion: status NK_OK and durable_lsn >= every lsn appended before
 * the matching nk_wal_sync_start; or the fatal error (durable_lsn is then the
 * last lsn known durable). Runs on the loop thread. It may append and start
 * syncs; it must not close or abandon the WAL. */
typedef void (*nk_wal_sync_fn)(void *arg, int status, uint64_t durable_lsn);

/*
 * Ask for everything appended so far to be made durable; done(arg, ...) is
 * called later, exactly once, from a job's completion (never from inside
 * this call), unless the node crashes first. If a sync job is already
 * running, the request joins the next one, started as soon as the running
 * one finishes. NK_OK (done will be called) or an error (done will not be
 * called): the WAL's fatal error, or the runtime's submit error.
 */
int nk_wal_sync_start(nk_wal *w, nk_wal_sync_fn done, void *arg);

uint64_t nk_wal_durable_lsn(const nk_wal *w); /* highest lsn reported durable */
/* Newest segment whose creation (directory entry) is known durable: a true
 * value for the owner to record as min_segment. */
uint64_t nk_wal_durable_segment(const nk_wal *w);
/* Start a new segment at the next append (the DB calls it when a memtable
 * is frozen, so the flush that follows can release whole segments: the WAL
 * then holds about one memtable, not up to segment_size). */
void nk_wal_roll(nk_wal *w);
uint64_t nk_wal_last_lsn(const nk_wal *w);    /* highest lsn appended */
bool nk_wal_sync_pending(const nk_wal *w);    /* a sync job is running */
int nk_wal_status(const nk_wal *w);           /* NK_OK or the fatal error */

/*
 * Remove the segments whose records are all <= lsn (the DB calls it once a
 * memtable flush made them redundant and the manifest says so). The current
 * segment is never removed. The removals become durable with the next sync
 * of the directory; a removal lost in a crash only brings back old records,
 * which replay_from skips. *removed (may be NULL) gets the count. NK_OK or a
 * file error (the WAL stays usable: the file is simply kept).
 */
int nk_wal_release_upto(nk_wal *w, uint64_t lsn, uint64_t *removed, nk_errbuf *eb);

typedef struct nk_wal_stats {
    uint64_t appends;
    uint64_t bytes_appended; /* framed record bytes */
    uint64_t sync_jobs;      /* jobs submitted */
    uint64_t file_syncs;     /* nk_rt_file_sync calls made by jobs */
    uint64_t dir_syncs;      /* nk_rt_dir_sync calls made by jobs */
    uint64_t rotations;
    uint64_t marks; /* MARK records written after successful syncs */
    uint64_t held_writes; /* appends of held records (nk_wal_appendv_held) */
    uint64_t segments_removed;
    uint64_t current_segment; /* number of the segment being written */
    uint64_t live_segments;
} nk_wal_stats;

void nk_wal_get_stats(const nk_wal *w, nk_wal_stats *out);

/*
 * Graceful close: waits for nothing (NK_EBUSY, WAL untouched, if a sync job
 * is running: call again from its done or later), fsyncs what is unsynced,
 * writes and fsyncs a MARK record claiming every lsn, closes and frees. The
 * fsyncs run on the calling thread. Returns NK_OK or the error (also the
 * WAL's earlier fatal error); on any result but NK_EBUSY the WAL is freed.
 */
int nk_wal_close(nk_wal *w, nk_errbuf *eb);

/*
 * Free without any I/O: after a simulated crash (the node's jobs will never
 * run), or after the runtime was freed. Frees an in-flight job's state too,
 * so never call it while a sync job's work may still run; pending done
 * callbacks are dropped. NULL is ignored.
 */
void nk_wal_abandon(nk_wal *w);

/* Free a WAL that was opened but never written to (the owner's open failed
 * after nk_wal_open): the empty segment the open created is removed, so a
 * refused open leaves no debris. With a sync job running, never. */
void nk_wal_abandon_unused(nk_wal *w);

#endif /* NK_ENGINE_WAL_H */
