/*
 * db_bg.c - background work: memtable flushes and leveled compaction.
 *
 * One background job at a time (flushes first). That keeps the manifest
 * single-writer without locks: only a job's `work` appends to it, on a
 * worker thread in real mode, and jobs never overlap. A job receives copies
 * of what it needs (file numbers, key ranges, the oldest snapshot) and opens
 * its own table handles without the block cache, so the loop thread keeps
 * serving reads from the same files concurrently.
 *
 * Durability protocol of every job: write the new tables, sync each file,
 * sync the workdir (their names), then append + sync the version edit to the
 * manifest. Only then (in `done`, on the loop) does the new version become
 * current and the inputs become deletable. A crash at any point before the
 * manifest edit leaves orphan tables, deleted at the next open.
 *
 * Compaction picking (leveled): level 0 scores by file count against
 * l0_compaction_trigger, level n by bytes against level1_bytes *
 * multiplier^(n-1). The highest score >= 1 wins. Level 0 compacts all of its
 * files with the overlapping level-1 files; level n >= 1 compacts one file
 * (round-robin by key, so every range gets its turn) with the overlapping
 * files of level n+1. A file with nothing to merge below is moved by a
 * manifest edit alone (a trivial move).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/compaction_pick.h"
#include "nokv/engine/db_impl.h"
#include "nokv/engine/iter.h"

typedef enum job_kind {
    JOB_FLUSH = 1,
    JOB_COMPACT,
    JOB_MOVE,
    JOB_EXCLUSIVE, /* another module's job that needs the manifest (ingest) */
} job_kind;

typedef struct job_input {
    uint64_t number;
    uint64_t size;
    int level;
} job_input;

typedef struct job_output {
    uint64_t number;
    uint64_t size;
    uint64_t xxh64; /* whole file, from the builder */
    nk_buf smallest;
    nk_buf largest;
    uint64_t min_seq;
    uint64_t max_seq;
} job_output;

typedef struct db_job {
    nk_db *db;
    nk_rt *rt;
    job_kind kind;
    char dir[1024];
    nk_manifest *manifest;
    nk_sst_options sst;
    uint64_t target_file_bytes;

    /* flush */
    nk_memref *imm;
    uint64_t imm_last_lsn;
    uint64_t imm_max_seq;
    uint64_t manifest_number; /* live MANIFEST when the job started */

    /* compaction */
    int level; /* inputs come from level and level + 1 */
    job_input *inputs;
    size_t ninputs;
    uint64_t smallest_snapshot;
    bool bottommost;
    nk_table_meta *move; /* JOB_MOVE: the file, level -> level + 1 */

    /* reserved file numbers [next_number, end_number); first_number: where
     * the reservation started (a failed job's outputs are removed) */
    uint64_t first_number;
    uint64_t next_number;
    uint64_t end_number;
    uint64_t next_file_for_edit;
    uint64_t last_seq_for_edit;
    unsigned test_bugs;            /* NK_BUG_* planted by the simulator */
    uint64_t wal_segment_for_edit; /* true WAL claims when the job started */
    uint64_t wal_durable_for_edit;

    /* JOB_EXCLUSIVE */
    nk_job_fn ext_work;
    nk_job_fn ext_done;
    nk_job_fn ext_abandon;
    void *ext_arg;

    job_output *outs;
    size_t nouts;
    uint64_t bytes_in;
    uint64_t bytes_out;
    int rc;
    nk_errbuf eb;
} db_job;

static void job_free(db_job *j)
{
    for (size_t i = 0; i < j->nouts; i++) {
        nk_buf_free(&j->outs[i].smallest);
        nk_buf_free(&j->outs[i].largest);
    }
    free(j->outs);
    free(j->inputs);
    free(j);
}

void nk_db_set_bg_error(nk_db *db, int rc, const nk_errbuf *eb)
{
    if (db->bg_error != NK_OK || rc == NK_OK) {
        return;
    }
    db->bg_error = rc;
    if (eb != NULL) {
        db->bg_msg = *eb;
    }
    db->st.background_error = rc;
    /* A failed flush or compaction leaves the on-disk state consistent (the
     * manifest decides), but continuing could pile up memory without bound:
     * the database turns read-only and says why. */
    nk_log(db->rt, NK_LOG_ERROR, "engine: background error %s: %s; writes are refused until "
                                 "the database is reopened",
           nk_errname(rc), eb ? eb->msg : "");
    nk_db_fail_waiters(db, rc);
}

/* ------------------------------------------------------------ table output --- */

typedef struct out_writer {
    db_job *j;
    nk_file *file;
    nk_sst_builder *b;
    job_output cur;
} out_writer;

static char *table_path(const db_job *j, uint64_t number, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%06" PRIu64 ".sst", j->dir, number);
    return buf;
}

static int out_open(out_writer *w)
{
    db_job *j = w->j;
    if (j->next_number >= j->end_number) {
        nk_errbuf_set(&j->eb, "compaction ran out of reserved file numbers");
        return NK_ERANGE;
    }
    memset(&w->cur, 0, sizeof(w->cur));
    w->cur.number = j->next_number++;
    char path[1100];
    table_path(j, w->cur.number, path, sizeof(path));
    int rc = nk_rt_file_open(j->rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &w->file);
    if (rc != NK_OK) {
        nk_errbuf_set(&j->eb, "cannot create table %s: %s", path, nk_errdesc(rc));
        return rc;
    }
    rc = nk_sst_builder_new(j->rt, w->file, &j->sst, &w->b);
    if (rc != NK_OK) {
        nk_rt_file_close(j->rt, w->file);
        w->file = NULL;
    }
    return rc;
}

/* Finish the current table: footer, sync, close; record it as an output. */
static int out_finish(out_writer *w)
{
    db_job *j = w->j;
    nk_sst_props props;
    memset(&props, 0, sizeof(props));
    uint64_t size = 0;
    int rc = nk_sst_builder_finish(w->b, &size, &props);
    uint64_t xxh64 = rc == NK_OK ? nk_sst_builder_file_xxh64(w->b) : 0;
    nk_sst_builder_free(w->b);
    w->b = NULL;
    if (rc == NK_OK && !(j->test_bugs & NK_BUG_TABLE_SYNC)) {
        rc = nk_rt_file_sync(j->rt, w->file);
    }
    nk_rt_file_close(j->rt, w->file);
    w->file = NULL;
    if (rc != NK_OK) {
        nk_sst_props_free(&props);
        nk_errbuf_set(&j->eb, "writing table %06" PRIu64 ": %s", w->cur.number, nk_errdesc(rc));
        return rc;
    }
    job_output *grown = realloc(j->outs, (j->nouts + 1) * sizeof(*grown));
    if (grown == NULL) {
        nk_sst_props_free(&props);
        return NK_ENOMEM;
    }
    j->outs = grown;
    job_output *o = &j->outs[j->nouts++];
    *o = w->cur;
    o->size = size;
    o->xxh64 = xxh64;
    o->min_seq = props.min_seq;
    o->max_seq = props.max_seq;
    o->smallest = props.smallest; /* take the buffers */
    o->largest = props.largest;
    memset(&props.smallest, 0, sizeof(props.smallest));
    memset(&props.largest, 0, sizeof(props.largest));
    nk_sst_props_free(&props);
    j->bytes_out += size;
    return NK_OK;
}

static void out_abandon(out_writer *w)
{
    if (w->b != NULL) {
        nk_sst_builder_free(w->b);
        w->b = NULL;
    }
    if (w->file != NULL) {
        nk_rt_file_close(w->j->rt, w->file);
        w->file = NULL;
    }
}

/* The edit that publishes the job's result; appended and synced. Runs in
 * the job's work: jobs never overlap, so the manifest has one writer. */
static int log_edit(db_job *j)
{
    int rc = nk_failpoint(j->rt, "engine.manifest.before_edit");
    if (rc != NK_OK) {
        return rc;
    }
    size_t ndel = j->kind == JOB_MOVE ? 1 : j->ninputs;
    size_t nadd = j->kind == JOB_MOVE ? 1 : j->nouts;
    uint32_t *dl = calloc(ndel + 1, sizeof(*dl));
    uint64_t *dn = calloc(ndel + 1, sizeof(*dn));
    nk_db_edit_add *adds = calloc(nadd + 1, sizeof(*adds));
    if (dl == NULL || dn == NULL || adds == NULL) {
        free(dl);
        free(dn);
        free(adds);
        return NK_ENOMEM;
    }
    nk_db_edit_desc d;
    memset(&d, 0, sizeof(d));
    d.next_file = j->next_file_for_edit;
    d.wal_segment = j->wal_segment_for_edit;
    d.wal_durable = j->wal_durable_for_edit;
    if (j->kind == JOB_MOVE) {
        nk_table_meta *f = j->move;
        dl[0] = (uint32_t)j->level;
        dn[0] = f->number;
        adds[0] = (nk_db_edit_add){(uint32_t)j->level + 1, f->number, f->size,
                                   nk_slice_make(f->smallest.data, f->smallest.len),
                                   nk_slice_make(f->largest.data, f->largest.len), f->min_seq,
                                   f->max_seq, f->has_xxh64, f->xxh64};
    } else {
        for (size_t i = 0; i < j->ninputs; i++) {
            dl[i] = (uint32_t)j->inputs[i].level;
            dn[i] = j->inputs[i].number;
        }
        uint32_t out_level = j->kind == JOB_FLUSH ? 0 : (uint32_t)j->level + 1;
        for (size_t i = 0; i < j->nouts; i++) {
            job_output *o = &j->outs[i];
            adds[i] = (nk_db_edit_add){out_level, o->number, o->size,
                                       nk_slice_make(o->smallest.data, o->smallest.len),
                                       nk_slice_make(o->largest.data, o->largest.len),
                                       o->min_seq, o->max_seq, true, o->xxh64};
        }
    }
    if (j->kind == JOB_FLUSH) {
        d.is_flush = true;
        d.flushed_seq = j->imm_max_seq;
        d.log_number = j->imm_last_lsn + 1;
    }
    d.del_level = dl;
    d.del_number = dn;
    d.ndel = ndel;
    d.add = adds;
    d.nadd = nadd;
    rc = nk_db_job_log_edit(j->manifest, &d, &j->eb);
    free(dl);
    free(dn);
    free(adds);
    return rc;
}

/* ----------------------------------------------------------------- flush --- */

static void flush_work(void *arg)
{
    db_job *j = arg;
    out_writer w = {.j = j};
    nk_iter *it = NULL;
    j->rc = nk_failpoint(j->rt, "flush.before_table");
    if (j->rc == NK_OK) {
        j->rc = nk_iter_memtable(j->imm->m, &it);
    }
    if (j->rc == NK_OK) {
        j->rc = out_open(&w);
    }
    if (j->rc == NK_OK) {
        for (nk_iter_first(it); nk_iter_valid(it) && j->rc == NK_OK; nk_iter_next(it)) {
            nk_slice k = nk_iter_key(it), v = nk_iter_value(it);
            j->rc = nk_sst_builder_add(w.b, k.data, k.len, v.data, v.len);
            j->bytes_in += k.len + v.len;
        }
    }
    if (j->rc == NK_OK) {
        j->rc = out_finish(&w);
    }
    out_abandon(&w);
    if (it != NULL) {
        nk_iter_free(it);
    }
    if (j->rc == NK_OK) {
        j->rc = nk_failpoint(j->rt, "flush.after_table");
    }
    if (j->rc == NK_OK) {
        j->rc = nk_rt_dir_sync(j->rt, j->dir);
    }
    if (j->rc == NK_OK) {
        j->rc = log_edit(j);
    }
}

/* ------------------------------------------------------------ compaction --- */

static int open_input(db_job *j, const job_input *in, nk_sst **t)
{
    char path[1100];
    table_path(j, in->number, path, sizeof(path));
    nk_file *f = NULL;
    int rc = nk_rt_file_open(j->rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        nk_errbuf_set(&j->eb, "compaction input %s: %s", path, nk_errdesc(rc));
        return rc;
    }
    rc = nk_sst_open(j->rt, f, in->number, path, NULL, t, &j->eb);
    if (rc != NK_OK) {
        nk_rt_file_close(j->rt, f);
    }
    return rc;
}

static void compact_work(void *arg)
{
    db_job *j = arg;
    nk_sst **tables = calloc(j->ninputs, sizeof(nk_sst *));
    nk_iter **kids = calloc(j->ninputs, sizeof(nk_iter *));
    nk_iter *merged = NULL;
    out_writer w = {.j = j};
    nk_buf last_user = {0};
    bool have_last = false;
    uint64_t last_seq_for_key = NK_SEQ_MAX;
    size_t nk = 0;

    j->rc = (tables && kids) ? nk_failpoint(j->rt, "compaction.before_merge") : NK_ENOMEM;
    for (size_t i = 0; i < j->ninputs && j->rc == NK_OK; i++) {
        j->rc = open_input(j, &j->inputs[i], &tables[i]);
        if (j->rc == NK_OK) {
            j->rc = nk_iter_sst(tables[i], NK_SST_NO_CACHE, &kids[nk]);
            nk += j->rc == NK_OK;
        }
        j->bytes_in += j->inputs[i].size;
    }
    if (j->rc == NK_OK) {
        j->rc = nk_iter_merge(kids, nk, &merged);
        nk = 0; /* the merge owns them now, even on error */
    }
    if (j->rc == NK_OK) {
        nk_iter_first(merged);
    }
    while (j->rc == NK_OK && nk_iter_valid(merged)) {
        nk_slice k = nk_iter_key(merged);
        nk_ikey ik;
        if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK) {
            nk_errbuf_set(&j->eb, "compaction met a malformed internal key");
            j->rc = NK_ECORRUPT;
            break;
        }
        bool same_user = have_last && nk_bytes_cmp(last_user.data, last_user.len, ik.ukey.data,
                                                   ik.ukey.len) == 0;
        if (!same_user) {
            last_seq_for_key = NK_SEQ_MAX;
        }
        bool drop = false;
        if (last_seq_for_key <= j->smallest_snapshot) {
            /* A newer version of this key is visible to every snapshot. */
            drop = true;
        } else if (ik.type == NK_KT_DELETE && ik.seq <= j->smallest_snapshot && j->bottommost) {
            /* Nothing older exists below, and no snapshot needs the delete. */
            drop = true;
        }
        last_seq_for_key = ik.seq;
        if (!drop) {
            /* Cut files only between user keys: levels >= 1 must be disjoint
             * by user key, so one key's versions never straddle two files. */
            if (w.b != NULL && !same_user &&
                nk_sst_builder_size(w.b) >= j->target_file_bytes) {
                j->rc = out_finish(&w);
            }
            if (j->rc == NK_OK && w.b == NULL) {
                j->rc = out_open(&w);
            }
            if (j->rc == NK_OK) {
                nk_slice v = nk_iter_value(merged);
                j->rc = nk_sst_builder_add(w.b, k.data, k.len, v.data, v.len);
            }
        }
        if (!same_user && j->rc == NK_OK) {
            j->rc = nk_buf_assign(&last_user, ik.ukey.data, ik.ukey.len);
            have_last = true;
        }
        nk_iter_next(merged);
    }
    if (j->rc == NK_OK && merged != NULL) {
        j->rc = nk_iter_status(merged, &j->eb);
    }
    if (j->rc == NK_OK && w.b != NULL) {
        j->rc = out_finish(&w);
    }
    out_abandon(&w);
    if (merged != NULL) {
        nk_iter_free(merged);
    }
    for (size_t i = 0; i < nk; i++) {
        nk_iter_free(kids[i]);
    }
    for (size_t i = 0; tables != NULL && i < j->ninputs; i++) {
        if (tables[i] != NULL) {
            nk_sst_close(tables[i]);
        }
    }
    free(tables);
    free(kids);
    nk_buf_free(&last_user);
    if (j->rc == NK_OK) {
        j->rc = nk_failpoint(j->rt, "compaction.after_tables");
    }
    if (j->rc == NK_OK && j->nouts > 0) {
        j->rc = nk_rt_dir_sync(j->rt, j->dir);
    }
    if (j->rc == NK_OK) {
        j->rc = log_edit(j);
    }
}

static void move_work(void *arg)
{
    db_job *j = arg;
    j->rc = log_edit(j);
}

/* ---------------------------------------------------------------- install --- */

static int install(nk_db *db, db_job *j)
{
    nk_version_change *dels = calloc(j->ninputs + 1, sizeof(*dels));
    nk_version_change *adds = calloc(j->nouts + 1, sizeof(*adds));
    size_t nd = 0, na = 0;
    int rc = (dels && adds) ? NK_OK : NK_ENOMEM;
    if (rc == NK_OK && j->kind == JOB_MOVE) {
        dels[nd++] = (nk_version_change){(uint32_t)j->level, j->move->number, NULL};
        nk_table_meta *f = nk_table_meta_new(
            j->move->number, j->move->size,
            nk_slice_make(j->move->smallest.data, j->move->smallest.len),
            nk_slice_make(j->move->largest.data, j->move->largest.len), j->move->min_seq,
            j->move->max_seq);
        if (f == NULL) {
            rc = NK_ENOMEM;
        } else {
            f->has_xxh64 = j->move->has_xxh64;
            f->xxh64 = j->move->xxh64;
            adds[na++] = (nk_version_change){(uint32_t)j->level + 1, 0, f};
        }
    } else if (rc == NK_OK) {
        for (size_t i = 0; i < j->ninputs; i++) {
            dels[nd++] = (nk_version_change){(uint32_t)j->inputs[i].level, j->inputs[i].number,
                                             NULL};
        }
        uint32_t out_level = j->kind == JOB_FLUSH ? 0 : (uint32_t)j->level + 1;
        for (size_t i = 0; i < j->nouts && rc == NK_OK; i++) {
            job_output *o = &j->outs[i];
            nk_table_meta *f =
                nk_table_meta_new(o->number, o->size, nk_slice_make(o->smallest.data, o->smallest.len),
                                 nk_slice_make(o->largest.data, o->largest.len), o->min_seq,
                                 o->max_seq);
            if (f == NULL) {
                rc = NK_ENOMEM;
            } else {
                f->has_xxh64 = true;
                f->xxh64 = o->xxh64;
                adds[na++] = (nk_version_change){out_level, 0, f};
            }
        }
    }
    nk_version *nv = NULL;
    nk_errbuf eb;
    if (rc == NK_OK) {
        rc = nk_version_apply(db->current, dels, nd, adds, na, &nv, &eb);
    }
    if (rc != NK_OK) {
        for (size_t i = 0; i < na; i++) {
            nk_db_release_file(NULL, adds[i].file);
        }
    } else {
        if (j->kind == JOB_MOVE) {
            /* the table stays open under its new metadata */
            nk_table_meta *moved = adds[0].file;
            moved->table = j->move->table;
            j->move->table = NULL;
        }
        nk_version *old = db->current;
        db->current = nv;
        nk_version_unref(old, nk_db_release_file, db);
    }
    free(dels);
    free(adds);
    return rc;
}

static void clear_compacting(nk_db *db, db_job *j)
{
    for (size_t i = 0; i < j->ninputs; i++) {
        for (int l = 0; l < NK_LEVELS; l++) {
            for (size_t k = 0; k < db->current->count[l]; k++) {
                if (db->current->files[l][k]->number == j->inputs[i].number) {
                    db->current->files[l][k]->being_compacted = false;
                }
            }
        }
    }
    if (j->move != NULL) {
        j->move->being_compacted = false;
    }
}

static void finish_close_if_idle(nk_db *db);

/* A failed job's table files (its whole reservation; absent ones skipped). */
static void remove_outputs(nk_db *db, db_job *j)
{
    for (uint64_t n = j->first_number; n < j->end_number && n < db->next_file; n++) {
        char path[1100];
        nk_db_table_path(db, n, path, sizeof(path));
        (void)nk_rt_remove(db->rt, path);
    }
}

#define NOSPACE_RETRY_MIN (50 * NK_NSEC_PER_MSEC)
#define NOSPACE_RETRY_MAX (5 * NK_NSEC_PER_SEC)

static void nospace_retry(void *arg)
{
    nk_db *db = arg;
    db->nospace_timer = 0;
    nk_db_maybe_schedule(db);
    if (db->job == NULL) {
        /* Nothing left to retry: let writes find out for themselves (a
         * write that still meets a full disk is refused alone). */
        nk_db_leave_nospace(db);
    }
}

void nk_db_enter_nospace(nk_db *db, const nk_errbuf *eb)
{
    if (!db->nospace) {
        db->nospace = true;
        db->nospace_backoff = NOSPACE_RETRY_MIN;
        snprintf(db->nospace_msg.msg, sizeof(db->nospace_msg.msg), "%s", eb ? eb->msg : "");
        nk_log(db->rt, NK_LOG_ERROR,
               "engine: disk full in %s (%s); writes are refused with NK_ENOSPC and background "
               "work retries with backoff: free space and writes resume by themselves",
               db->dir, eb ? eb->msg : "no space left on device");
        db->st.nospace_events++;
    } else if (db->nospace_backoff < NOSPACE_RETRY_MAX) {
        db->nospace_backoff *= 2;
    }
    /* Writes queued behind the stall would wait for a flush that cannot
     * happen: refuse them now, like new ones. */
    while (db->pend_head != NULL) {
        db_pending *p = db->pend_head;
        db->pend_head = p->next;
        p->done(p->arg, NK_ENOSPC);
        nk_batch_free(&p->batch);
        free(p);
    }
    db->pend_tail = NULL;
    if (db->nospace_timer == 0 && !db->closing) {
        db->nospace_timer = nk_rt_timer_start(db->rt, db->nospace_backoff, nospace_retry, db);
    }
}

void nk_db_leave_nospace(nk_db *db)
{
    if (db->nospace) {
        db->nospace = false;
        nk_log(db->rt, NK_LOG_INFO, "engine: space available again in %s: writes accepted",
               db->dir);
    }
}

static void job_done(void *arg)
{
    db_job *j = arg;
    nk_db *db = j->db;
    db->job = NULL;
    if (j->kind == JOB_EXCLUSIVE) {
        j->ext_done(j->ext_arg);
        job_free(j);
        nk_db_process_pending(db);
        nk_db_maybe_schedule(db);
        finish_close_if_idle(db);
        return;
    }
    if (j->rc == NK_ENOSPC && nk_manifest_status(db->manifest) == NK_OK) {
        /* Disk full: nothing was published (the manifest is intact), so
         * drop the partial tables, refuse writes with a clear error and try
         * again later; once space is freed the retry succeeds and writes
         * resume by themselves. */
        clear_compacting(db, j);
        remove_outputs(db, j);
        nk_errbuf eb = j->eb;
        nk_errbuf_wrap(&eb, "%s failed", j->kind == JOB_FLUSH ? "memtable flush" : "compaction");
        nk_db_enter_nospace(db, &eb);
    } else if (j->rc != NK_OK) {
        clear_compacting(db, j);
        nk_errbuf eb = j->eb;
        nk_errbuf_wrap(&eb, "%s failed", j->kind == JOB_FLUSH ? "memtable flush" : "compaction");
        nk_db_set_bg_error(db, j->rc, &eb);
    } else {
        nk_db_leave_nospace(db);
        if (j->wal_durable_for_edit > db->claimed_durable) {
            db->claimed_durable = j->wal_durable_for_edit;
        }
        int rc = install(db, j);
        if (rc != NK_OK) {
            clear_compacting(db, j);
            nk_db_set_bg_error(db, rc, NULL);
        } else if (j->kind == JOB_FLUSH) {
            /* the oldest immutable memtable is now a table */
            nk_memref_unref(db->imm[0]);
            memmove(&db->imm[0], &db->imm[1], (db->nimm - 1) * sizeof(nk_memref *));
            db->nimm--;
            db->persisted_seq = j->imm_max_seq;
            db->st.flushes++;
            nk_errbuf web;
            int wrc = nk_wal_release_upto(db->wal, j->imm_last_lsn, NULL, &web);
            if (wrc != NK_OK) {
                nk_log(db->rt, NK_LOG_WARN, "engine: could not delete old WAL segments: %s",
                       nk_strerror(wrc));
            }
            if (nk_manifest_number(db->manifest) != j->manifest_number) {
                /* This flush's edit went into a freshly rewritten manifest
                 * and its WAL segments are being removed: if the switch of
                 * CURRENT were not durable yet, the old manifest would need
                 * them. A crash step the scenario aims at. */
                (void)nk_failpoint(db->rt, "engine.flush.after_release_rewritten");
            }
        } else {
            db->st.compactions++;
            db->st.compaction_bytes_in += j->bytes_in;
            db->st.compaction_bytes_out += j->bytes_out;
        }
    }
    if (j->kind == JOB_FLUSH) {
        nk_memref_unref(j->imm);
    }
    job_free(j);
    nk_db_process_pending(db);
    nk_db_maybe_schedule(db);
    finish_close_if_idle(db);
}

/* ------------------------------------------------------------- scheduling --- */

static db_job *job_new(nk_db *db, job_kind kind)
{
    db_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return NULL;
    }
    j->db = db;
    j->rt = db->rt;
    j->kind = kind;
    snprintf(j->dir, sizeof(j->dir), "%s", db->dir);
    j->manifest = db->manifest;
    j->sst = db->o.sst;
    j->target_file_bytes = db->o.target_file_bytes;
    j->last_seq_for_edit = db->last_seq;
    j->test_bugs = db->o.test_bugs;
    j->manifest_number = db->manifest != NULL ? nk_manifest_number(db->manifest) : 0;
    if (db->wal != NULL) {
        j->wal_segment_for_edit = nk_wal_durable_segment(db->wal);
        j->wal_durable_for_edit = nk_wal_durable_lsn(db->wal);
    }
    return j;
}

static void reserve_numbers(nk_db *db, db_job *j, uint64_t n)
{
    j->first_number = db->next_file;
    j->next_number = db->next_file;
    j->end_number = db->next_file + n;
    db->next_file += n;
    j->next_file_for_edit = db->next_file;
}

static bool submit(nk_db *db, db_job *j, nk_job_fn work)
{
    int rc = nk_rt_job_submit(db->rt, j->kind == JOB_FLUSH ? "engine.flush" : "engine.compact",
                              work, job_done, j);
    if (rc != NK_OK) {
        if (j->kind == JOB_FLUSH) {
            nk_memref_unref(j->imm);
        }
        clear_compacting(db, j);
        job_free(j);
        return false;
    }
    db->job = j;
    return true;
}

static void user_range(nk_table_meta **fs, size_t n, nk_buf *lo, nk_buf *hi)
{
    for (size_t i = 0; i < n; i++) {
        nk_slice s = nk_ikey_user(fs[i]->smallest.data, fs[i]->smallest.len);
        nk_slice l = nk_ikey_user(fs[i]->largest.data, fs[i]->largest.len);
        if (i == 0 || nk_bytes_cmp(s.data, s.len, lo->data, lo->len) < 0) {
            nk_buf_assign(lo, s.data, s.len);
        }
        if (i == 0 || nk_bytes_cmp(l.data, l.len, hi->data, hi->len) > 0) {
            nk_buf_assign(hi, l.data, l.len);
        }
    }
}

static bool try_compaction(nk_db *db)
{
    if (db->o.no_compaction) {
        return false;
    }
    int level = nk_pick_compaction_level(db->current, &db->o);
    if (level < 0) {
        return false;
    }
    nk_version *v = db->current;
    nk_table_meta **in = NULL;
    size_t nin = 0;
    if (level == 0) {
        in = malloc(v->count[0] * sizeof(*in));
        if (in == NULL) {
            return false;
        }
        for (size_t i = 0; i < v->count[0]; i++) {
            in[nin++] = v->files[0][i];
        }
    } else {
        /* round robin: the first file after the last compacted key */
        size_t pick = nk_pick_file_round_robin(
            v, level, nk_slice_make(db->compact_ptr[level].data, db->compact_ptr[level].len));
        in = malloc(sizeof(*in));
        if (in == NULL) {
            return false;
        }
        in[nin++] = v->files[level][pick];
    }
    nk_buf lo = {0}, hi = {0};
    user_range(in, nin, &lo, &hi);
    nk_table_meta **below = NULL;
    size_t nbelow = 0;
    nk_version_overlaps(v, level + 1, nk_slice_make(lo.data, lo.len),
                        nk_slice_make(hi.data, hi.len), &below, &nbelow);
    bool ok = true;
    db_job *j = NULL;
    if (nin == 1 && nbelow == 0) {
        j = job_new(db, JOB_MOVE);
        if (j != NULL) {
            j->level = level;
            j->move = in[0];
            in[0]->being_compacted = true;
            j->next_file_for_edit = db->next_file;
        }
    } else {
        j = job_new(db, JOB_COMPACT);
        if (j != NULL) {
            j->level = level;
            j->inputs = calloc(nin + nbelow, sizeof(job_input));
            ok = j->inputs != NULL;
            uint64_t total = 0;
            for (size_t i = 0; ok && i < nin + nbelow; i++) {
                nk_table_meta *f = i < nin ? in[i] : below[i - nin];
                j->inputs[j->ninputs++] = (job_input){f->number, f->size,
                                                      i < nin ? level : level + 1};
                f->being_compacted = true;
                total += f->size;
            }
            /* Tombstones may go only if no deeper level can hold the key:
             * check the union of every input's range, computed once. */
            nk_buf ulo = {0}, uhi = {0};
            nk_buf_assign(&ulo, lo.data, lo.len);
            nk_buf_assign(&uhi, hi.data, hi.len);
            if (nbelow > 0) {
                nk_buf blo = {0}, bhi = {0};
                user_range(below, nbelow, &blo, &bhi);
                if (nk_bytes_cmp(blo.data, blo.len, ulo.data, ulo.len) < 0) {
                    nk_buf_assign(&ulo, blo.data, blo.len);
                }
                if (nk_bytes_cmp(bhi.data, bhi.len, uhi.data, uhi.len) > 0) {
                    nk_buf_assign(&uhi, bhi.data, bhi.len);
                }
                nk_buf_free(&blo);
                nk_buf_free(&bhi);
            }
            j->bottommost = true;
            for (int l = level + 2; l < NK_LEVELS && j->bottommost; l++) {
                nk_table_meta **deeper = NULL;
                size_t nd = 0;
                int orc = nk_version_overlaps(v, l, nk_slice_make(ulo.data, ulo.len),
                                              nk_slice_make(uhi.data, uhi.len), &deeper, &nd);
                j->bottommost = orc == NK_OK && nd == 0; /* on doubt keep tombstones */
                free(deeper);
            }
            nk_buf_free(&ulo);
            nk_buf_free(&uhi);
            j->smallest_snapshot = nk_db_oldest_snapshot(db);
            reserve_numbers(db, j, total / (db->o.target_file_bytes ? db->o.target_file_bytes : 1) +
                                       nin + nbelow + 8);
        }
    }
    if (level > 0) {
        nk_buf_assign(&db->compact_ptr[level], hi.data, hi.len);
    }
    nk_buf_free(&lo);
    nk_buf_free(&hi);
    free(in);
    free(below);
    if (j == NULL || !ok) {
        if (j != NULL) {
            clear_compacting(db, j);
            job_free(j);
        }
        return false;
    }
    return submit(db, j, j->kind == JOB_MOVE ? move_work : compact_work);
}

static bool try_flush(nk_db *db)
{
    if (db->nimm == 0) {
        return false;
    }
    db_job *j = job_new(db, JOB_FLUSH);
    if (j == NULL) {
        return false;
    }
    j->imm = db->imm[0];
    j->imm->refs++;
    j->imm_last_lsn = j->imm->last_lsn;
    j->imm_max_seq = nk_memtable_max_seq(j->imm->m);
    reserve_numbers(db, j, 1);
    return submit(db, j, flush_work);
}

/* Move the mutable memtable to the immutable list and start a fresh one. */
int nk_db_rotate_memtable(nk_db *db)
{
    nk_memref *fresh = calloc(1, sizeof(*fresh));
    if (fresh == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_memtable_new(&db->rand, nk_db_arena_block(db), &fresh->m);
    nk_memref **grown = realloc(db->imm, (db->nimm + 1) * sizeof(nk_memref *));
    if (rc != NK_OK || grown == NULL) {
        if (fresh->m != NULL) {
            nk_memtable_free(fresh->m);
        }
        free(fresh);
        if (grown != NULL) {
            db->imm = grown;
        }
        return NK_ENOMEM;
    }
    db->imm = grown;
    fresh->refs = 1;
    fresh->last_lsn = db->mem->last_lsn;
    db->imm[db->nimm++] = db->mem;
    if (db->wal != NULL) {
        /* The frozen memtable's records end this segment: once it is
         * flushed the whole segment can go (WAL space is released at every
         * flush, not only every wal_segment_bytes). */
        nk_wal_roll(db->wal);
    }
    db->mem = fresh;
    return NK_OK;
}

typedef struct db_slot_waiter {
    struct db_slot_waiter *next;
    nk_db_slot_fn fn;
    void *arg;
} db_slot_waiter;

int nk_db_when_slot_free(nk_db *db, nk_db_slot_fn fn, void *arg)
{
    db_slot_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NK_ENOMEM;
    }
    w->fn = fn;
    w->arg = arg;
    db_slot_waiter **p = &db->slot_waiters;
    while (*p != NULL) {
        p = &(*p)->next;
    }
    *p = w;
    nk_db_maybe_schedule(db);
    return NK_OK;
}

/* Hand the free slot to the oldest waiter (it may take it or not), or tell
 * every waiter why it never will. true when a waiter was called. */
static bool serve_slot_waiters(nk_db *db, int status)
{
    bool served = false;
    if (status != NK_OK) {
        /* Detach first: a waiter finishing may complete the close. */
        db_slot_waiter *w = db->slot_waiters;
        db->slot_waiters = NULL;
        while (w != NULL) {
            db_slot_waiter *next = w->next;
            w->fn(w->arg, status);
            free(w);
            w = next;
            served = true;
        }
        return served;
    }
    while (db->slot_waiters != NULL && db->job == NULL) {
        db_slot_waiter *w = db->slot_waiters;
        db->slot_waiters = w->next;
        w->fn(w->arg, status);
        free(w);
        served = true;
        break; /* one at a time: the next waits for this one's job */
    }
    return served;
}

void nk_db_drop_idle_waiters(nk_db *db)
{
    while (db->slot_waiters != NULL) {
        db_slot_waiter *w = db->slot_waiters;
        db->slot_waiters = w->next;
        free(w);
    }
    db_idle_waiter *w = db->idle;
    db->idle = NULL;
    while (w != NULL) {
        db_idle_waiter *next = w->next;
        free(w);
        w = next;
    }
    db_flush_waiter *f = db->flushers;
    db->flushers = NULL;
    while (f != NULL) {
        db_flush_waiter *next = f->next;
        free(f);
        f = next;
    }
}

static void notify_idle(nk_db *db)
{
    db_idle_waiter *w = db->idle;
    db->idle = NULL;
    while (w != NULL) {
        db_idle_waiter *next = w->next;
        w->done(w->arg, db->bg_error);
        free(w);
        w = next;
    }
}

/* Complete flush waiters whose writes are all in tables now. */
static void notify_flushers(nk_db *db, int status)
{
    db_flush_waiter **p = &db->flushers;
    db_flush_waiter *ready = NULL;
    while (*p != NULL) {
        db_flush_waiter *w = *p;
        if (status != NK_OK || w->upto <= db->persisted_seq) {
            *p = w->next;
            w->next = ready;
            ready = w;
        } else {
            p = &w->next;
        }
    }
    while (ready != NULL) {
        db_flush_waiter *w = ready;
        ready = w->next;
        w->done(w->arg, status);
        free(w);
    }
}

static bool flush_wanted(const nk_db *db)
{
    for (db_flush_waiter *w = db->flushers; w != NULL; w = w->next) {
        if (w->upto > db->persisted_seq) {
            return true;
        }
    }
    return false;
}

int nk_db_flush(nk_db *db, nk_db_done_fn done, void *arg)
{
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    db_flush_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NK_ENOMEM;
    }
    /* What the memtables hold now (an ingest may have raised last_seq
     * above every write still in a memtable). */
    uint64_t upto = db->persisted_seq;
    for (size_t i = 0; i < db->nimm; i++) {
        uint64_t m = nk_memtable_max_seq(db->imm[i]->m);
        upto = m > upto ? m : upto;
    }
    if (nk_memtable_count(db->mem->m) > 0 && nk_memtable_max_seq(db->mem->m) > upto) {
        upto = nk_memtable_max_seq(db->mem->m);
    }
    w->upto = upto;
    w->done = done;
    w->arg = arg;
    w->next = db->flushers;
    db->flushers = w;
    notify_flushers(db, NK_OK); /* maybe already true */
    nk_db_maybe_schedule(db);
    return NK_OK;
}

/* ------------------------------------------------------------ WAL claims --- */

/* Every CLAIM_INTERVAL with new durable WAL records, when nothing else
 * runs, a tiny job records in the manifest how far the WAL is durable. Jobs
 * record it too, but an idle or write-only period would otherwise leave the
 * manifest's claim behind, and a WAL truncated or removed after a crash
 * could then lose acknowledged writes without recovery noticing. With this,
 * at most the last CLAIM_INTERVAL of writes relies on the WAL's own claims. */
#define CLAIM_INTERVAL NK_NSEC_PER_SEC

typedef struct claim_job {
    nk_db *db;
    nk_manifest *manifest;
    nk_db_edit_desc d;
    int rc;
    nk_errbuf eb;
} claim_job;

static void claim_work(void *arg)
{
    claim_job *c = arg;
    c->rc = nk_db_job_log_edit(c->manifest, &c->d, &c->eb);
}

static void claim_done(void *arg)
{
    claim_job *c = arg;
    nk_db *db = c->db;
    if (c->rc == NK_OK) {
        db->claimed_durable = c->d.wal_durable;
    } else if (c->rc == NK_ENOSPC && nk_manifest_status(db->manifest) == NK_OK) {
        nk_db_enter_nospace(db, &c->eb);
    } else {
        nk_errbuf_wrap(&c->eb, "recording the WAL range in the manifest");
        nk_db_set_bg_error(db, c->rc, &c->eb);
    }
    free(c);
}

static void claim_abandon(void *arg)
{
    free(arg);
}

static bool try_claim(nk_db *db)
{
    if (!db->claim_due || db->wal == NULL || db->bg_error != NK_OK) {
        return false;
    }
    db->claim_due = false;
    uint64_t durable = nk_wal_durable_lsn(db->wal);
    if (durable <= db->claimed_durable) {
        return false;
    }
    claim_job *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return false;
    }
    c->db = db;
    c->manifest = db->manifest;
    c->d.next_file = db->next_file;
    c->d.wal_segment = nk_wal_durable_segment(db->wal);
    c->d.wal_durable = durable;
    if (nk_db_run_exclusive(db, "engine.claim", claim_work, claim_done, claim_abandon, c) != NK_OK) {
        free(c);
        return false;
    }
    return true;
}

static void claim_tick(void *arg)
{
    nk_db *db = arg;
    db->claim_timer = 0;
    if (db->closing) {
        return;
    }
    db->claim_due = true;
    nk_db_maybe_schedule(db);
    db->claim_timer = nk_rt_timer_start(db->rt, CLAIM_INTERVAL, claim_tick, db);
}

void nk_db_start_claims(nk_db *db)
{
    db->claimed_durable = nk_wal_durable_lsn(db->wal);
    db->claim_timer = nk_rt_timer_start(db->rt, CLAIM_INTERVAL, claim_tick, db);
}

void nk_db_maybe_schedule(nk_db *db)
{
    if (db->job != NULL || (db->nospace_timer != 0 && !db->closing)) {
        return; /* running, or backing off after a full disk */
    }
    if (db->closing) {
        /* The WAL holds everything not yet in a table: close needs no flush.
         * Whoever waited for one is told the db is going away. */
        notify_flushers(db, NK_ESTOPPED);
        notify_idle(db);
        (void)serve_slot_waiters(db, NK_ESTOPPED);
        return;
    }
    if (db->bg_error != NK_OK) {
        notify_flushers(db, db->bg_error);
        notify_idle(db);
        (void)serve_slot_waiters(db, db->bg_error);
        return;
    }
    if (serve_slot_waiters(db, NK_OK) && db->job != NULL) {
        return; /* the waiter took the slot (an ingest's manifest edit) */
    }
    notify_flushers(db, NK_OK);
    bool want_flush = false;
    for (db_idle_waiter *w = db->idle; w != NULL; w = w->next) {
        want_flush = want_flush || w->flush_memtable;
    }
    want_flush = want_flush || flush_wanted(db);
    if (want_flush && nk_memtable_count(db->mem->m) > 0 && db->nimm == 0) {
        if (nk_db_rotate_memtable(db) != NK_OK) {
            nk_db_set_bg_error(db, NK_ENOMEM, NULL);
            notify_idle(db);
            return;
        }
    }
    if (try_flush(db)) {
        return;
    }
    if (!db->closing && try_compaction(db)) {
        return;
    }
    if (!db->closing && try_claim(db)) {
        return;
    }
    /* nothing to do: idle */
    for (db_idle_waiter *w = db->idle; w != NULL; w = w->next) {
        w->flush_memtable = false;
    }
    notify_idle(db);
}

void nk_db_wait_idle(nk_db *db, bool flush_memtable, nk_db_done_fn done, void *arg)
{
    db_idle_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        done(arg, NK_ENOMEM);
        return;
    }
    w->flush_memtable = flush_memtable;
    w->done = done;
    w->arg = arg;
    w->next = db->idle;
    db->idle = w;
    nk_db_maybe_schedule(db);
}

static void finish_close_if_idle(nk_db *db)
{
    if (db->closing && db->job == NULL) {
        nk_db_finish_close(db);
    }
}

/* The node died: its job will never complete; free what it holds. */
void nk_db_abandon_job(nk_db *db)
{
    db_job *j = db->job;
    if (j == NULL) {
        return;
    }
    db->job = NULL;
    if (j->kind == JOB_FLUSH) {
        nk_memref_unref(j->imm);
    }
    if (j->kind == JOB_EXCLUSIVE && j->ext_abandon != NULL) {
        j->ext_abandon(j->ext_arg);
    }
    job_free(j);
}

static void exclusive_work(void *arg)
{
    db_job *j = arg;
    j->ext_work(j->ext_arg);
}

/* Run work/done in the background-job slot: no flush or compaction runs
 * meanwhile, so `work` may append to the manifest. Call only when the slot
 * is free (from a nk_db_wait_idle completion). */
int nk_db_run_exclusive(nk_db *db, const char *name, nk_job_fn work, nk_job_fn done,
                        nk_job_fn abandon, void *arg)
{
    if (db->job != NULL) {
        return NK_EBUSY;
    }
    db_job *j = job_new(db, JOB_EXCLUSIVE);
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->ext_work = work;
    j->ext_done = done;
    j->ext_abandon = abandon;
    j->ext_arg = arg;
    int rc = nk_rt_job_submit(db->rt, name, exclusive_work, job_done, j);
    if (rc != NK_OK) {
        job_free(j);
        return rc;
    }
    db->job = j;
    return NK_OK;
}
