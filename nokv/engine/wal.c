/* wal.c - segmented write-ahead log with group commit (see wal.h). */
#include "nokv/util/grow.h"
#include "nokv/engine/wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/logfile.h"
#include "nokv/engine/slice.h"
#include "nokv/util/coding.h"

#include <xxhash.h>

typedef struct seg {
    uint64_t number;
    uint64_t first_lsn;
} seg;

typedef struct waiter {
    nk_wal_sync_fn fn;
    void *arg;
} waiter;

/* One sync job. `work` reads only rt, files, dir and writes only status and
 * the counters; everything else is the loop thread's. */
typedef struct wal_job {
    nk_wal *w;
    nk_rt *rt;
    nk_file **files; /* fsync in this order (older segments first) */
    size_t nfiles;
    size_t nclose; /* files[0..nclose) are retired handles this job closes */
    char *dir;     /* non-NULL: dir_sync after the files */
    uint64_t target;
    uint64_t seg; /* newest segment when submitted: its entry is durable after */
    int status;
    uint64_t file_syncs;
    uint64_t dir_syncs;
    waiter *waiters;
    size_t nwaiters;
} wal_job;

struct nk_wal {
    nk_rt *rt;
    char *dir;
    nk_wal_options opts;
    int err; /* sticky fatal error */
    uint64_t last_lsn;
    uint64_t durable_lsn;

    nk_file *cur;
    uint64_t cur_size;
    bool cur_dirty;    /* written since the last job was submitted */
    nk_file **retired; /* rotated-away handles not yet handed to a job */
    size_t nretired;
    size_t cap_retired;
    bool dir_dirty; /* entries created/removed since the last job */

    seg *segs; /* live segments, oldest first; the last is `cur` */
    size_t nsegs;
    size_t cap_segs;
    uint64_t next_number;
    bool roll; /* start a new segment at the next append (nk_wal_roll) */

    wal_job *job;   /* in flight */
    waiter *queued; /* for the next job */
    size_t nqueued;
    size_t cap_queued;

    uint64_t durable_seg; /* newest segment whose creation is durable */
    /* Segments recovery found wholly redundant (their records are all in
     * tables): removed only once the new segment is durable, so a power loss
     * in between never leaves the directory without the segment the
     * manifest claims. */
    char **redundant;
    size_t nredundant;

    nk_buf scratch;
    /* Held records (nk_wal_appendv_held): framed, counted in cur_size and
     * last_lsn, not yet in the file. Written before anything else reaches
     * the file and before a sync job starts, so file order = lsn order and
     * every job still covers all it claims. */
    nk_buf held;
    nk_wal_recovery rec;
    nk_wal_stats stats;
};

void nk_wal_options_default(nk_wal_options *o)
{
    o->segment_size = NK_WAL_DEFAULT_SEGMENT_SIZE;
    o->replay_from = 0;
    o->min_segment = 0;
    o->min_durable = 0;
    o->salvage = false;
    o->test_bugs = 0;
}

static char *seg_path(const char *dir, uint64_t number)
{
    char name[32];
    snprintf(name, sizeof name, "%06" PRIu64 ".log", number);
    return nk_path_join(dir, name);
}

static void fail(nk_wal *w, int rc)
{
    if (w->err == NK_OK) {
        w->err = rc;
    }
}

/* ------------------------------------------------------------- writing --- */

/* Held bytes beyond this are written at once (bounded memory). */
#define HELD_MAX (4u * 1024u * 1024u)
#define HELD_KEEP (1u * 1024u * 1024u) /* larger held buffers are released */

/* Write the held records out (one append). Their lsns were handed out
 * already, so a failure here, a full disk included, is fatal. */
static int write_held(nk_wal *w)
{
    if (w->held.len == 0 || w->err != NK_OK) {
        return w->err;
    }
    int rc = nk_rt_file_append(w->rt, w->cur, w->held.data, w->held.len);
    w->stats.held_writes++;
    nk_buf_clear(&w->held);
    if (w->held.cap > HELD_KEEP) {
        nk_buf_free(&w->held);
    }
    if (rc != NK_OK) {
        fail(w, rc);
    }
    return rc;
}

/* Start a new segment holding lsns from last_lsn + 1. */
static int rotate(nk_wal *w)
{
    int hrc = write_held(w); /* they belong to the old segment */
    if (hrc != NK_OK) {
        return hrc;
    }
    uint64_t number = w->next_number;
    char *path = seg_path(w->dir, number);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_grow((void **)&w->segs, &w->cap_segs, w->nsegs, sizeof *w->segs);
    if (rc == NK_OK && w->cur != NULL) {
        rc = nk_grow((void **)&w->retired, &w->cap_retired, w->nretired, sizeof *w->retired);
    }
    nk_file *f = NULL;
    if (rc == NK_OK) {
        nk_logfile_hdr h = {NK_WAL_FILE_MAGIC, number, w->last_lsn + 1, w->durable_lsn};
        rc = nk_logfile_create(w->rt, path, &h, "wal.rotate.after_create", &f);
    }
    free(path);
    if (rc != NK_OK) {
        return rc;
    }
    w->next_number = number + 1;
    if (w->cur != NULL) {
        /* Synced (and closed) by the next job: its records may be unsynced. */
        w->retired[w->nretired++] = w->cur;
        w->stats.rotations++;
    }
    w->segs[w->nsegs++] = (seg){number, w->last_lsn + 1};
    w->cur = f;
    w->roll = false;
    w->cur_size = NK_LOGFILE_HDR_SIZE;
    w->cur_dirty = true;
    w->dir_dirty = true;
    return NK_OK;
}

/* Records up to this size are framed in w->scratch and written in one
 * append; larger ones are streamed from the caller's memory. */
#define COPY_RECORD_MAX (64u * 1024u)

/* Frame a small record (the pieces, concatenated) in w->scratch. NK_ENOMEM
 * before any write leaves the WAL usable. */
static int frame_small(nk_wal *w, const nk_slice *parts, size_t nparts, size_t len)
{
    nk_buf_clear(&w->scratch);
    int rc = nk_buf_reserve(&w->scratch, NK_LOGREC_OVERHEAD + len);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *p = w->scratch.data;
    nk_logrec_encode_header(p, NK_LOGREC_DATA, w->last_lsn + 1, w->durable_lsn, len);
    size_t off = NK_LOGREC_HDR_SIZE;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len) {
            memcpy(p + off, parts[i].data, parts[i].len);
            off += parts[i].len;
        }
    }
    nk_put_u64(p + off, XXH64(p, off, 0));
    w->scratch.len = off + 8;
    return NK_OK;
}

/* Write a large record straight from the caller's pieces: the checksum is
 * streamed over them, so the payload is never copied. */
static int write_streamed(nk_wal *w, const nk_slice *parts, size_t nparts, size_t len)
{
    uint8_t hdr[NK_LOGREC_HDR_SIZE];
    nk_logrec_encode_header(hdr, NK_LOGREC_DATA, w->last_lsn + 1, w->durable_lsn, len);
    XXH64_state_t *st = XXH64_createState();
    if (st == NULL) {
        return NK_ENOMEM;
    }
    XXH64_reset(st, 0);
    XXH64_update(st, hdr, sizeof hdr);
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len) {
            XXH64_update(st, parts[i].data, parts[i].len);
        }
    }
    uint8_t sum[8];
    nk_put_u64(sum, XXH64_digest(st));
    XXH64_freeState(st);
    int rc = nk_rt_file_append(w->rt, w->cur, hdr, sizeof hdr);
    for (size_t i = 0; rc == NK_OK && i < nparts; i++) {
        if (parts[i].len) {
            rc = nk_rt_file_append(w->rt, w->cur, parts[i].data, parts[i].len);
        }
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_append(w->rt, w->cur, sum, sizeof sum);
    }
    return rc;
}

static int appendv(nk_wal *w, const nk_slice *parts, size_t nparts, bool hold, uint64_t *lsn);

int nk_wal_appendv(nk_wal *w, const nk_slice *parts, size_t nparts, uint64_t *lsn)
{
    return appendv(w, parts, nparts, false, lsn);
}

int nk_wal_appendv_held(nk_wal *w, const nk_slice *parts, size_t nparts, uint64_t *lsn)
{
    return appendv(w, parts, nparts, true, lsn);
}

static int appendv(nk_wal *w, const nk_slice *parts, size_t nparts, bool hold, uint64_t *lsn)
{
    if (w->err != NK_OK) {
        return w->err;
    }
    size_t len = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].len > NK_WAL_MAX_PAYLOAD || len + parts[i].len > NK_WAL_MAX_PAYLOAD) {
            return NK_ETOOBIG; /* refused before anything is written: still usable */
        }
        len += parts[i].len;
    }
    int rc = nk_failpoint(w->rt, "wal.append.before");
    if (rc != NK_OK) {
        if (rc != NK_EFAILPOINT) {
            fail(w, rc);
        }
        return rc;
    }
    uint64_t size = NK_LOGREC_OVERHEAD + (uint64_t)len;
    if (w->cur_size > NK_LOGFILE_HDR_SIZE &&
        (w->roll || w->cur_size + size > w->opts.segment_size)) {
        rc = rotate(w);
        if (rc == NK_ENOSPC) {
            return rc; /* no new segment (rotate removes it): still usable */
        }
        if (rc != NK_OK) {
            fail(w, rc);
            return rc;
        }
    }
    /* Hold a small record while a sync job runs: the next job cannot start
     * before this one ends, and it writes everything held in one append
     * first (one write per group commit instead of one per record). */
    hold = hold && w->job != NULL && len <= COPY_RECORD_MAX && w->held.len + size <= HELD_MAX;
    if (hold) {
        rc = frame_small(w, parts, nparts, len);
        if (rc == NK_OK) {
            rc = nk_buf_append(&w->held, w->scratch.data, w->scratch.len);
        }
        if (rc != NK_OK) {
            return rc; /* ENOMEM before any write: still usable */
        }
    } else {
        rc = write_held(w);
        if (rc != NK_OK) {
            return rc;
        }
    }
    if (hold) {
        /* framed and held above */
    } else if (len <= COPY_RECORD_MAX) {
        rc = frame_small(w, parts, nparts, len);
        if (rc != NK_OK) {
            return rc; /* ENOMEM before any write: still usable */
        }
        rc = nk_rt_file_append(w->rt, w->cur, w->scratch.data, w->scratch.len);
    } else {
        rc = write_streamed(w, parts, nparts, len);
    }
    if (rc == NK_ENOSPC && nk_rt_file_truncate(w->rt, w->cur, w->cur_size) == NK_OK) {
        /* Disk full: the partial record is cut off again, so the log is
         * exactly as before this append and stays usable; the caller
         * refuses this one write. */
        return rc;
    }
    if (rc != NK_OK) {
        fail(w, rc); /* a partial write may be in the file */
        return rc;
    }
    w->cur_size += size;
    w->cur_dirty = true;
    w->last_lsn++;
    w->stats.appends++;
    w->stats.bytes_appended += size;
    if (lsn != NULL) {
        *lsn = w->last_lsn;
    }
    return NK_OK;
}

int nk_wal_append2(nk_wal *w, const void *head, size_t head_len, const void *body, size_t body_len,
                   uint64_t *lsn)
{
    nk_slice parts[2] = {nk_slice_make(head, head_len), nk_slice_make(body, body_len)};
    return nk_wal_appendv(w, parts, 2, lsn);
}

int nk_wal_append(nk_wal *w, const void *payload, size_t len, uint64_t *lsn)
{
    return nk_wal_append2(w, payload, len, NULL, 0, lsn);
}

/* ---------------------------------------------------------------- sync --- */

static void job_free(nk_rt *rt, wal_job *j)
{
    for (size_t i = 0; i < j->nclose; i++) {
        (void)nk_rt_file_close(rt, j->files[i]);
    }
    free(j->files);
    free(j->dir);
    free(j->waiters);
    free(j);
}

static void job_work(void *arg)
{
    wal_job *j = arg;
    int rc = nk_failpoint(j->rt, "wal.sync.before");
    for (size_t i = 0; rc == NK_OK && i < j->nfiles; i++) {
        rc = nk_rt_file_sync(j->rt, j->files[i]);
        j->file_syncs++;
    }
    if (rc == NK_OK && j->dir != NULL) {
        rc = nk_rt_dir_sync(j->rt, j->dir);
        j->dir_syncs++;
    }
    j->status = rc;
}

static void job_done(void *arg);

/* Record the durability just achieved in the log itself: a MARK claiming
 * durable_lsn, written (not synced) right after the sync. Records appended
 * later carry the claim too, but after a sync followed by silence only this
 * mark lets the next recovery tell damage in the last synced group from a
 * torn tail (it reaches the disk with the next sync, or the kernel's own
 * writeback). Failing to write it fails the WAL like any append error. */
static void append_mark(nk_wal *w)
{
    nk_buf_clear(&w->scratch);
    int rc = nk_logrec_encode(&w->scratch, NK_LOGREC_MARK, w->last_lsn, w->durable_lsn, NULL, 0);
    if (rc == NK_OK) {
        /* Behind the held records (they come first in lsn order); the caller
         * writes the held bytes right after (job_done). */
        rc = nk_buf_append(&w->held, w->scratch.data, w->scratch.len);
    }
    if (rc != NK_OK) {
        fail(w, rc);
        return;
    }
    w->cur_size += w->scratch.len;
    w->cur_dirty = true;
    w->stats.marks++;
}

/* Submit one job covering everything appended so far and every queued
 * waiter. On failure nothing changed. */
static int submit(nk_wal *w)
{
    int hrc = write_held(w); /* the job must cover them */
    if (hrc != NK_OK) {
        return hrc;
    }
    wal_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->w = w;
    j->rt = w->rt;
    j->target = w->last_lsn;
    j->seg = w->nsegs ? w->segs[w->nsegs - 1].number : 0;
    j->files = malloc((w->nretired + 1) * sizeof *j->files);
    if (j->files == NULL || (w->dir_dirty && (j->dir = strdup(w->dir)) == NULL)) {
        free(j->files);
        free(j);
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < w->nretired; i++) {
        j->files[j->nfiles++] = w->retired[i];
    }
    j->nclose = j->nfiles;
    if (w->cur_dirty) {
        j->files[j->nfiles++] = w->cur;
    }
    int rc = nk_rt_job_submit(w->rt, "wal.sync", job_work, job_done, j);
    if (rc != NK_OK) {
        j->nclose = 0; /* the handles stay the WAL's */
        job_free(w->rt, j);
        return rc;
    }
    j->waiters = w->queued;
    j->nwaiters = w->nqueued;
    w->queued = NULL;
    w->nqueued = 0;
    w->cap_queued = 0;
    w->nretired = 0;
    w->cur_dirty = false;
    w->dir_dirty = false;
    w->job = j;
    w->stats.sync_jobs++;
    return NK_OK;
}

static void job_done(void *arg)
{
    wal_job *j = arg;
    nk_wal *w = j->w;
    w->job = NULL;
    w->stats.file_syncs += j->file_syncs;
    w->stats.dir_syncs += j->dir_syncs;
    if (j->status == NK_OK) {
        if (j->target > w->durable_lsn) {
            w->durable_lsn = j->target;
        }
        if (j->seg > w->durable_seg) {
            w->durable_seg = j->seg;
        }
        if (w->err == NK_OK) {
            append_mark(w);
        }
    } else {
        nk_log(w->rt, NK_LOG_ERROR, "wal: sync failed (%s); the log refuses writes until reopened",
               nk_errname(j->status));
        fail(w, j->status);
    }
    /* Requests that arrived meanwhile get one new job; if the WAL is failed
     * (or the submit fails) they learn the error now. */
    waiter *late = NULL;
    size_t nlate = 0;
    if (w->nqueued > 0) {
        int rc = w->err != NK_OK ? w->err : submit(w);
        if (rc != NK_OK) {
            fail(w, rc);
            late = w->queued;
            nlate = w->nqueued;
            w->queued = NULL;
            w->nqueued = 0;
            w->cap_queued = 0;
        }
    }
    /* No job follows: the mark (and anything held) goes to the file now. */
    (void)write_held(w);
    int status = j->status;
    int err = w->err;
    uint64_t durable = w->durable_lsn;
    waiter *ws = j->waiters;
    size_t nws = j->nwaiters;
    j->waiters = NULL;
    job_free(w->rt, j);
    /* No WAL state is touched from here on: callbacks may append or sync. */
    for (size_t i = 0; i < nws; i++) {
        ws[i].fn(ws[i].arg, status, durable);
    }
    for (size_t i = 0; i < nlate; i++) {
        late[i].fn(late[i].arg, err, durable);
    }
    free(ws);
    free(late);
}

int nk_wal_sync_start(nk_wal *w, nk_wal_sync_fn done, void *arg)
{
    if (w->err != NK_OK) {
        return w->err;
    }
    if (nk_grow((void **)&w->queued, &w->cap_queued, w->nqueued, sizeof *w->queued) != NK_OK) {
        return NK_ENOMEM;
    }
    w->queued[w->nqueued++] = (waiter){done, arg};
    if (w->job != NULL) {
        return NK_OK; /* joins the next job */
    }
    int rc = submit(w);
    if (rc != NK_OK) {
        w->nqueued--; /* the queue was empty: no job was running */
        if (rc != NK_ENOMEM) {
            fail(w, rc);
        }
    }
    return rc;
}

uint64_t nk_wal_durable_lsn(const nk_wal *w)
{
    return w->durable_lsn;
}

uint64_t nk_wal_durable_segment(const nk_wal *w)
{
    return w->durable_seg;
}

void nk_wal_roll(nk_wal *w)
{
    w->roll = true;
}

uint64_t nk_wal_last_lsn(const nk_wal *w)
{
    return w->last_lsn;
}

bool nk_wal_sync_pending(const nk_wal *w)
{
    return w->job != NULL;
}

int nk_wal_status(const nk_wal *w)
{
    return w->err;
}

const nk_wal_recovery *nk_wal_recovery_info(const nk_wal *w)
{
    return &w->rec;
}

void nk_wal_get_stats(const nk_wal *w, nk_wal_stats *out)
{
    *out = w->stats;
    out->current_segment = w->nsegs ? w->segs[w->nsegs - 1].number : 0;
    out->live_segments = w->nsegs;
}

/* ------------------------------------------------------------- release --- */

int nk_wal_release_upto(nk_wal *w, uint64_t lsn, uint64_t *removed, nk_errbuf *eb)
{
    uint64_t n = 0;
    int rc = NK_OK;
    /* segs[0] holds lsns [first_lsn, segs[1].first_lsn - 1]; the last
     * segment is the current one and always stays. */
    while (w->nsegs > 1 && w->segs[1].first_lsn - 1 <= lsn) {
        char *path = seg_path(w->dir, w->segs[0].number);
        if (path == NULL) {
            rc = NK_ENOMEM;
            break;
        }
        rc = nk_rt_remove(w->rt, path);
        if (rc == NK_ENOENT) {
            rc = NK_OK;
        }
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "wal: removing %s failed: %s", path, nk_errdesc(rc));
            free(path);
            break;
        }
        free(path);
        memmove(&w->segs[0], &w->segs[1], (w->nsegs - 1) * sizeof *w->segs);
        w->nsegs--;
        w->dir_dirty = true;
        n++;
    }
    w->stats.segments_removed += n;
    if (removed != NULL) {
        *removed = n;
    }
    return rc;
}

/* ---------------------------------------------------------- open/close --- */

static void wal_free(nk_wal *w)
{
    if (w->job != NULL) {
        job_free(w->rt, w->job);
    }
    for (size_t i = 0; i < w->nretired; i++) {
        (void)nk_rt_file_close(w->rt, w->retired[i]);
    }
    if (w->cur != NULL) {
        (void)nk_rt_file_close(w->rt, w->cur);
    }
    for (size_t i = 0; i < w->nredundant; i++) {
        free(w->redundant[i]);
    }
    free(w->redundant);
    free(w->retired);
    free(w->segs);
    free(w->queued);
    free(w->dir);
    nk_buf_free(&w->scratch);
    nk_buf_free(&w->held);
    free(w);
}

void nk_wal_abandon_unused(nk_wal *w)
{
    if (w == NULL) {
        return;
    }
    if (w->stats.appends == 0 && w->stats.marks == 0 && w->nsegs > 0 && w->cur != NULL) {
        char *path = seg_path(w->dir, w->segs[w->nsegs - 1].number);
        (void)nk_rt_file_close(w->rt, w->cur);
        w->cur = NULL;
        if (path != NULL && nk_rt_remove(w->rt, path) == NK_OK) {
            (void)nk_rt_dir_sync(w->rt, w->dir);
        }
        free(path);
    }
    wal_free(w);
}

void nk_wal_abandon(nk_wal *w)
{
    if (w != NULL) {
        wal_free(w);
    }
}

static int sync_all(nk_wal *w)
{
    int rc = NK_OK;
    for (size_t i = 0; rc == NK_OK && i < w->nretired; i++) {
        rc = nk_rt_file_sync(w->rt, w->retired[i]);
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(w->rt, w->cur);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(w->rt, w->dir);
    }
    return rc;
}

int nk_wal_close(nk_wal *w, nk_errbuf *eb)
{
    if (w->job != NULL) {
        nk_errbuf_set(eb, "wal: close while a sync job is running");
        return NK_EBUSY;
    }
    int rc = w->err;
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "wal: closing a failed log (%s); reopen to recover", nk_errdesc(rc));
        wal_free(w);
        return rc;
    }
    rc = write_held(w);
    if (rc == NK_OK) {
        rc = sync_all(w);
    }
    if (rc == NK_OK) {
        /* Written after the sync, so its claim is true: the next recovery
         * can tell damage anywhere in the log from a torn tail. */
        w->durable_lsn = w->last_lsn;
        nk_buf_clear(&w->scratch);
        rc = nk_logrec_encode(&w->scratch, NK_LOGREC_MARK, w->last_lsn, w->durable_lsn, NULL, 0);
        if (rc == NK_OK) {
            rc = nk_rt_file_append(w->rt, w->cur, w->scratch.data, w->scratch.len);
        }
        if (rc == NK_OK) {
            rc = nk_rt_file_sync(w->rt, w->cur);
        }
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "wal: final sync of %s failed: %s", w->dir, nk_errdesc(rc));
    }
    wal_free(w);
    return rc;
}

typedef struct replay_ctx {
    nk_wal_replay_fn fn;
    void *arg;
    uint64_t from;
    uint64_t replayed;
} replay_ctx;

static int replay_one(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                      const uint8_t *payload, size_t len)
{
    (void)file_idx;
    (void)offset;
    replay_ctx *c = arg;
    if (lsn < c->from) {
        return NK_OK;
    }
    c->replayed++;
    return c->fn != NULL ? c->fn(c->arg, lsn, payload, len) : NK_OK;
}

static int check_reaches(nk_wal *w, const nk_logseg_file *files, size_t n, const nk_logscan_out *so,
                         nk_errbuf *eb);

/* The owner (the manifest) recorded that segment min_segment had been
 * created durably and that lsns up to min_durable were durable: a log that
 * does not reach both lost acknowledged writes to a removed, renamed or
 * truncated segment. Refuse it (the scan already refused damage at or below
 * min_durable inside the files it read). */
static int check_complete(nk_wal *w, const nk_logseg_file *files, size_t n, nk_logscan_out *so,
                          nk_errbuf *eb)
{
    int rc = check_reaches(w, files, n, so, eb);
    if (rc == NK_ECORRUPT && w->opts.salvage) {
        nk_log(w->rt, NK_LOG_WARN, "wal: salvage: accepting data loss: %s", eb->msg);
        uint64_t from = w->opts.replay_from > 1 ? w->opts.replay_from : 1;
        uint64_t reached = so->last_lsn + 1 > from ? so->last_lsn : from - 1;
        uint64_t lost_from = reached + 1;
        if (!so->salvaged || lost_from < so->lost_from) {
            so->lost_from = lost_from;
        }
        uint64_t newest = n > 0 ? files[n - 1].number : 0;
        if (newest < w->opts.min_segment) {
            so->lost_to = 0; /* whole segments are gone: no upper bound known */
        } else if (w->opts.min_durable > so->lost_to) {
            so->lost_to = w->opts.min_durable;
        }
        so->salvaged = true;
        return NK_OK;
    }
    return rc;
}

static int check_reaches(nk_wal *w, const nk_logseg_file *files, size_t n, const nk_logscan_out *so,
                         nk_errbuf *eb)
{
    const nk_wal_options *o = &w->opts;
    uint64_t newest = n > 0 ? files[n - 1].number : 0;
    if (o->min_segment != 0 && newest < o->min_segment) {
        char want[32];
        snprintf(want, sizeof want, "%06" PRIu64 ".log", o->min_segment);
        if (n == 0) {
            nk_errbuf_set(eb,
                          "wal: %s/%s is missing and %s holds no segment at all: the manifest "
                          "records that segment %" PRIu64 " existed and that lsns up to %" PRIu64
                          " were durable, so acknowledged writes would be lost. Restore the "
                          "WAL files, or open with --accept-data-loss to discard them",
                          w->dir, want, w->dir, o->min_segment, o->min_durable);
        } else {
            nk_errbuf_set(eb,
                          "wal: %s/%s is missing: the newest segment is %s, but the manifest "
                          "records that segment %" PRIu64 " existed (lsns up to %" PRIu64
                          " durable). Restore the missing segment files, or open with "
                          "--accept-data-loss to discard what they held",
                          w->dir, want, files[n - 1].path, o->min_segment, o->min_durable);
        }
        return NK_ECORRUPT;
    }
    uint64_t from = o->replay_from > 1 ? o->replay_from : 1;
    uint64_t reached = so->last_lsn + 1 > from ? so->last_lsn : from - 1;
    if (o->min_durable > reached) {
        nk_errbuf_set(eb,
                      "wal: the log ends at lsn %" PRIu64 " (%s), but the manifest records "
                      "lsns up to %" PRIu64 " as durable: lsns %" PRIu64 "..%" PRIu64
                      " are missing (a segment was truncated, or a later one removed or "
                      "renamed). Restore the WAL files, or open with --accept-data-loss to "
                      "discard them",
                      reached, n > 0 ? files[n - 1].path : w->dir, o->min_durable, reached + 1,
                      o->min_durable);
        return NK_ECORRUPT;
    }
    return NK_OK;
}

/* Scan the segments, cut a torn tail, make what remains durable. Fills
 * w->segs, w->last_lsn, w->next_number and w->rec. */
static int recover(nk_wal *w, nk_logseg_file *files, size_t n, nk_wal_replay_fn fn, void *arg,
                   nk_errbuf *eb)
{
    nk_rt *rt = w->rt;
    uint64_t from = w->opts.replay_from;
    const char **paths = malloc((n + 1) * sizeof *paths);
    uint64_t *numbers = malloc((n + 1) * sizeof *numbers);
    uint64_t *firsts = malloc((n + 1) * sizeof *firsts);
    int rc = NK_OK;
    if (paths == NULL || numbers == NULL || firsts == NULL ||
        nk_grow((void **)&w->segs, &w->cap_segs, n + 1, sizeof *w->segs) != NK_OK) {
        rc = NK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        paths[i] = files[i].path;
        numbers[i] = files[i].number;
    }
    replay_ctx ctx = {fn, arg, from, 0};
    nk_logscan_in in = {
        .magic = NK_WAL_FILE_MAGIC,
        .paths = paths,
        .numbers = numbers,
        .nfiles = n,
        .start_lsn = from > 1 ? from : 1,
        .max_first_lsn = from > 1 ? from : 0,
        .min_durable = w->opts.min_durable,
        .salvage = w->opts.salvage,
        .fn = replay_one,
        .arg = &ctx,
        .what = "wal",
    };
    nk_logscan_out so = {.file_first_lsn = firsts};
    rc = nk_logscan_run(rt, &in, &so, eb);
    if (rc != NK_OK) {
        goto out;
    }
    rc = check_complete(w, files, n, &so, eb);
    if (rc != NK_OK) {
        goto out;
    }
    size_t keep = n;
    if (so.torn) {
        keep = so.cut_file + (so.cut_offset >= NK_LOGFILE_HDR_SIZE ? 1 : 0);
    }
    uint64_t next_lsn = so.last_lsn + 1;
    if (next_lsn < in.start_lsn) {
        /* The caller's tables already hold lsns the log no longer has (a
         * flush of unsynced writes, then a crash): every record here is
         * redundant, and new records must continue after replay_from - 1. */
        next_lsn = in.start_lsn;
        keep = 0;
    }
    if (keep == 0 && n > 0) {
        w->redundant = calloc(n, sizeof *w->redundant);
        if (w->redundant == NULL) {
            rc = NK_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if ((w->redundant[i] = strdup(paths[i])) == NULL) {
                rc = NK_ENOMEM;
                goto out;
            }
            w->nredundant++;
        }
        keep = n; /* nothing removed here: see nk_wal_open */
    }
    rc = nk_logseg_cut_tail(rt, "wal", w->dir, paths, n, keep, so.torn, so.cut_file, so.cut_offset,
                            "wal.repair.after_cut",
                            (w->opts.test_bugs & NK_BUG_WAL_REPAIR_SYNC) != 0, eb);
    if (rc != NK_OK) {
        goto out;
    }
    if (w->nredundant > 0) {
        keep = 0; /* not segments of this log any more */
    }
    for (size_t i = 0; i < keep; i++) {
        w->segs[i] = (seg){numbers[i], firsts[i]};
    }
    w->nsegs = keep;
    w->last_lsn = next_lsn - 1;
    w->durable_lsn = w->last_lsn;
    w->next_number = n > 0 ? files[n - 1].number + 1 : 1;
    if (w->next_number <= w->opts.min_segment) {
        /* Every segment is gone, each redundant (see keep = 0 above): a
         * crash after they were removed and before the new one was durable.
         * Numbers never go back below what the manifest has seen. */
        w->next_number = w->opts.min_segment + 1;
    }
    w->rec = (nk_wal_recovery){
        .segments = n,
        .records = so.records,
        .replayed = ctx.replayed,
        .first_lsn = so.first_lsn,
        .last_lsn = so.last_lsn,
        .torn = so.torn,
        .torn_segment = so.torn ? numbers[so.cut_file] : 0,
        .torn_offset = so.torn ? so.cut_offset : 0,
        .discarded_bytes = so.discarded,
        .salvaged = so.salvaged,
        .lost_from = so.lost_from,
        .lost_to = so.lost_to,
    };
    if (so.torn) {
        /* Not "never acknowledged": a write acknowledged without a sync
         * (--sync group/none) may be here. What is certain is that no
         * surviving claim (record, MARK, segment header, manifest) says it
         * was durable, so no write acknowledged as durable is cut. */
        nk_log(rt, NK_LOG_WARN,
               "wal: torn tail in %s at offset %" PRIu64 ": lsn %" PRIu64
               " onward was never confirmed durable (no surviving sync claim covers it; "
               "durable through lsn %" PRIu64 "), discarded %" PRIu64 " bytes",
               paths[so.cut_file], so.cut_offset, so.last_lsn + 1,
               so.max_claim > w->opts.min_durable ? so.max_claim : w->opts.min_durable,
               so.discarded);
    }
    nk_log(rt, NK_LOG_INFO,
           "wal: recovered %" PRIu64 " records (lsn %" PRIu64 "..%" PRIu64
           ") from %zu segments, replayed %" PRIu64,
           so.records, so.first_lsn, so.last_lsn, n, ctx.replayed);
out:
    free(paths);
    free(numbers);
    free(firsts);
    return rc;
}

static int check_visit(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                       const uint8_t *payload, size_t len)
{
    (void)arg;
    (void)file_idx;
    (void)offset;
    (void)lsn;
    (void)payload;
    (void)len;
    return NK_OK; /* the scan already verified the record's checksum */
}

int nk_wal_check(nk_rt *rt, const char *dir, const nk_wal_options *opts, nk_wal_recovery *out,
                 nk_errbuf *eb)
{
    memset(out, 0, sizeof *out);
    nk_wal w;
    memset(&w, 0, sizeof w);
    w.rt = rt;
    w.dir = (char *)dir; /* only read by check_complete's messages */
    nk_wal_options_default(&w.opts);
    if (opts != NULL) {
        w.opts = *opts;
    }
    w.opts.salvage = false;
    nk_logseg_file *files = NULL;
    size_t n = 0;
    int rc = nk_logseg_list(rt, "wal", dir, ".log", &files, &n, eb);
    const char **paths = calloc(n + 1, sizeof *paths);
    uint64_t *numbers = calloc(n + 1, sizeof *numbers);
    if (rc == NK_OK && (paths == NULL || numbers == NULL)) {
        rc = NK_ENOMEM;
    }
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        paths[i] = files[i].path;
        numbers[i] = files[i].number;
    }
    uint64_t from = w.opts.replay_from;
    nk_logscan_out so;
    memset(&so, 0, sizeof so);
    if (rc == NK_OK) {
        nk_logscan_in in = {
            .magic = NK_WAL_FILE_MAGIC,
            .paths = paths,
            .numbers = numbers,
            .nfiles = n,
            .start_lsn = from > 1 ? from : 1,
            .max_first_lsn = from > 1 ? from : 0,
            .min_durable = w.opts.min_durable,
            .fn = check_visit,
            .what = "wal",
        };
        rc = nk_logscan_run(rt, &in, &so, eb);
    }
    if (rc == NK_OK) {
        rc = check_reaches(&w, files, n, &so, eb);
    }
    out->segments = n;
    out->records = so.records;
    out->first_lsn = so.first_lsn;
    out->last_lsn = so.last_lsn;
    out->torn = so.torn;
    out->torn_segment = so.torn && so.cut_file < n ? numbers[so.cut_file] : 0;
    out->torn_offset = so.torn ? so.cut_offset : 0;
    out->discarded_bytes = so.discarded;
    free(paths);
    free(numbers);
    nk_logseg_files_free(files, n);
    return rc;
}

/* Recovery removes redundant segments only after the new one is durable
 * (see nk_wal::redundant), so a power loss in between leaves the old files
 * followed by a new segment starting exactly at replay_from, with a gap in
 * lsns below it. Everything before such a file holds only lsns already in
 * tables: remove those files now (the newer one is listed, so it exists)
 * and recover from it. *skip counts the files removed. */
static int skip_redundant(nk_wal *w, const nk_logseg_file *files, size_t n, size_t *skip,
                          nk_errbuf *eb)
{
    *skip = 0;
    uint64_t from = w->opts.replay_from;
    if (n < 2 || from <= 1) {
        return NK_OK;
    }
    nk_logfile_hdr h;
    if (nk_logfile_read_hdr(w->rt, files[n - 1].path, NK_WAL_FILE_MAGIC, &h) != NK_OK ||
        h.number != files[n - 1].number || h.first_lsn != from) {
        return NK_OK; /* the scan decides what this file is */
    }
    int rc = NK_OK;
    for (size_t i = 0; rc == NK_OK && i + 1 < n; i++) {
        rc = nk_logfile_remove(w->rt, "wal", files[i].path, eb);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(w->rt, w->dir);
    }
    if (rc == NK_OK) {
        nk_log(w->rt, NK_LOG_INFO,
               "wal: removed %zu redundant segment(s) left by an interrupted recovery", n - 1);
        *skip = n - 1;
    }
    return rc;
}

int nk_wal_open(nk_rt *rt, const char *dir, const nk_wal_options *opts, nk_wal_replay_fn replay_cb,
                void *arg, nk_wal **out, nk_errbuf *eb)
{
    *out = NULL;
    nk_wal_options o;
    nk_wal_options_default(&o);
    if (opts != NULL) {
        o = *opts;
    }
    if (o.segment_size < NK_WAL_MIN_SEGMENT_SIZE) {
        nk_errbuf_set(eb, "wal: segment_size %" PRIu64 " is below the minimum %" PRIu64,
                      o.segment_size, NK_WAL_MIN_SEGMENT_SIZE);
        return NK_EINVAL;
    }
    nk_wal *w = calloc(1, sizeof *w);
    if (w == NULL || (w->dir = strdup(dir)) == NULL) {
        free(w);
        return NK_ENOMEM;
    }
    w->rt = rt;
    w->opts = o;
    nk_logseg_file *files = NULL;
    size_t n = 0;
    int rc = nk_logdir_ensure(rt, "wal", dir, eb);
    if (rc == NK_OK) {
        rc = nk_logseg_list(rt, "wal", dir, ".log", &files, &n, eb);
    }
    size_t skip = 0;
    if (rc == NK_OK) {
        rc = skip_redundant(w, files, n, &skip, eb);
    }
    if (rc == NK_OK) {
        rc = recover(w, files + skip, n - skip, replay_cb, arg, eb);
    }
    nk_logseg_files_free(files, n);
    if (rc == NK_OK) {
        /* A fresh segment whose header claims everything replayed: it is
         * all durable now. */
        rc = rotate(w);
        if (rc == NK_OK) {
            rc = nk_rt_file_sync(rt, w->cur);
        }
        if (rc == NK_OK && !(w->opts.test_bugs & NK_BUG_WAL_OPEN_DIRSYNC)) {
            rc = nk_rt_dir_sync(rt, dir);
        }
        if (rc == NK_OK) {
            rc = nk_failpoint(rt, "wal.open.after_segment");
        }
        if (rc == NK_OK && w->nredundant > 0) {
            for (size_t i = 0; rc == NK_OK && i < w->nredundant; i++) {
                rc = nk_logfile_remove(rt, "wal", w->redundant[i], eb);
            }
            if (rc == NK_OK) {
                rc = nk_rt_dir_sync(rt, dir);
            }
        }
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "wal: starting a new segment in %s failed: %s", dir, nk_errdesc(rc));
        }
        w->cur_dirty = false;
        w->dir_dirty = false;
        if (rc == NK_OK) {
            w->durable_seg = w->segs[w->nsegs - 1].number;
        }
    }
    if (rc != NK_OK) {
        wal_free(w);
        return rc;
    }
    *out = w;
    return NK_OK;
}
