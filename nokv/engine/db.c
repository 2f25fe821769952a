/*
 * db.c - open, recovery, close and statistics of the storage engine.
 *
 * Open, in order (each step can only make the workdir more consistent):
 *   1-2. (the caller's, nokv/store/workdir.h: take the owner lock, check the
 *        mode gate; the engine knows neither) create the directory if
 *        allowed;
 *   3. load the manifest: the last durable version (tables per level,
 *      last sequence, the WAL position below which everything is in tables);
 *   4. replay the WAL from that position into a fresh memtable (torn tails
 *      are cut, corruption is reported by the WAL);
 *   5. delete table files the manifest does not list: leftovers of a flush
 *      or compaction that crashed before its manifest edit;
 *   6. start background work (a replay may have left full memtables).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db_impl.h"
#include "nokv/util/names.h"

void nk_db_options_default(nk_db_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = true;
    o->memtable_bytes = 64u << 20;
    o->max_immutable = 1;
    o->block_cache_bytes = 8u << 20;
    nk_sst_options_default(&o->sst);
    o->target_file_bytes = 8u << 20;
    o->level1_bytes = 64u << 20;
    o->level_multiplier = 10;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown = 12;
    o->l0_stop = 20;
    o->wal_segment_bytes = 64u << 20;
    o->manifest_rewrite_bytes = 4u << 20;
}

static char *dup_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    while (la > 1 && a[la - 1] == '/') {
        la--;
    }
    char *p = malloc(la + lb + 2);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, a, la);
    p[la] = '\0';
    if (b != NULL) {
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* Create dir (and make its entry durable in the parent) when missing. */
static int ensure_dir(nk_rt *rt, const char *dir, bool create, nk_errbuf *eb)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, dir, &st);
    if (rc == NK_OK) {
        if (!st.is_dir) {
            nk_errbuf_set(eb, "%s exists and is not a directory", dir);
            return NK_ENOTDIR;
        }
        return NK_OK;
    }
    if (rc != NK_ENOENT) {
        nk_errbuf_set(eb, "%s: %s", dir, nk_errdesc(rc));
        return rc;
    }
    if (!create) {
        nk_errbuf_set(eb, "%s does not exist (create_if_missing is off)", dir);
        return NK_ENOENT;
    }
    rc = nk_rt_dir_create(rt, dir);
    if (rc != NK_OK && rc != NK_EEXIST) {
        nk_errbuf_set(eb, "cannot create %s: %s", dir, nk_errdesc(rc));
        return rc;
    }
    char parent[1024];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL) {
        snprintf(parent, sizeof(parent), ".");
    } else if (slash == parent) {
        parent[1] = '\0';
    } else {
        *slash = '\0';
    }
    rc = nk_rt_dir_sync(rt, parent);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot sync %s: %s", parent, nk_errdesc(rc));
    }
    return rc;
}

typedef struct replay_ctx {
    nk_db *db;
    nk_errbuf *eb;
    uint64_t replayed;
    uint64_t skipped;
} replay_ctx;

static int replay_one(void *arg, uint64_t lsn, const uint8_t *payload, size_t len)
{
    replay_ctx *rc = arg;
    nk_db *db = rc->db;
    uint64_t seq;
    uint32_t count;
    if (nk_batch_header(payload, len, &seq, &count) != NK_OK || count == 0) {
        nk_errbuf_set(rc->eb, "WAL record %" PRIu64 " holds no valid write batch", lsn);
        return NK_ECORRUPT;
    }
    if (seq + count - 1 <= db->persisted_seq) {
        rc->skipped++; /* already in a table */
        db->mem->last_lsn = lsn;
        return NK_OK;
    }
    if (seq > db->last_seq + 1 && db->o.accept_data_loss) {
        /* Salvage: the records holding these sequence numbers are gone. */
        nk_log(db->rt, NK_LOG_WARN,
               "engine: salvage: WAL record %" PRIu64 " starts at sequence %" PRIu64
               ": sequences %" PRIu64 "..%" PRIu64 " are lost",
               lsn, seq, db->last_seq + 1, seq - 1);
        if (db->report.lost_seq_from == 0) {
            db->report.lost_seq_from = db->last_seq + 1;
        }
        db->report.lost_seq_to = seq - 1;
        db->last_seq = seq - 1;
    }
    if (seq != db->last_seq + 1 && db->last_seq < db->seq_floor && seq > db->last_seq &&
        seq <= db->seq_floor + 1) {
        /* An ingest took the sequence numbers up to the floor (its tables
         * carry them): writes after it were numbered above, so the WAL
         * jumps over numbers no record ever held. */
        db->last_seq = seq - 1;
    }
    if (seq != db->last_seq + 1) {
        nk_errbuf_set(rc->eb,
                      "WAL record %" PRIu64 " starts at sequence %" PRIu64 ", expected %" PRIu64,
                      lsn, seq, db->last_seq + 1);
        return NK_ECORRUPT;
    }
    nk_errbuf eb;
    int r = nk_db_apply_batch(db->mem->m, payload, len, &eb);
    if (r != NK_OK) {
        nk_errbuf_wrap(&eb, "WAL record %" PRIu64, lsn);
        *rc->eb = eb;
        return r;
    }
    db->last_seq = seq + count - 1;
    db->mem->last_lsn = lsn;
    rc->replayed++;
    if (nk_memtable_usage(db->mem->m) >= db->o.memtable_bytes) {
        r = nk_db_rotate_memtable(db);
    }
    return r;
}

/* Tables on disk that no version lists were being written when the process
 * died (their manifest edit never became durable): remove them. */
static void remove_orphans(nk_db *db)
{
    nk_names names;
    if (nk_rt_dir_list(db->rt, db->dir, &names) != NK_OK) {
        return;
    }
    for (size_t i = 0; i < names.count; i++) {
        uint64_t number = 0;
        if (!nk_name_number(names.names[i], strlen(names.names[i]), "", ".sst", &number)) {
            continue;
        }
        bool live = false;
        for (int l = 0; l < NK_LEVELS && !live; l++) {
            for (size_t k = 0; k < db->current->count[l]; k++) {
                live = live || db->current->files[l][k]->number == number;
            }
        }
        if (!live) {
            char path[1100];
            nk_db_table_path(db, number, path, sizeof(path));
            nk_log(db->rt, NK_LOG_INFO, "engine: removing orphan table %s", path);
            nk_rt_remove(db->rt, path);
        }
    }
    nk_names_free(&names);
}

/* Open every table the manifest lists (footer, index, filter, properties)
 * before anything is written: a missing or damaged table is refused at
 * open, naming it, instead of failing the first read of its keys later. */
static int open_tables(nk_db *db, nk_errbuf *eb)
{
    for (int l = 0; l < NK_LEVELS; l++) {
        for (size_t k = 0; k < db->current->count[l]; k++) {
            nk_sst *t = NULL;
            int rc = nk_db_table(db, db->current->files[l][k], &t, eb);
            if (rc != NK_OK) {
                nk_errbuf_wrap(eb,
                               "workdir %s: a table the manifest lists is unusable (run `nokv "
                               "check --workdir %s` for a full report; restore the file from a "
                               "backup)",
                               db->dir, db->dir);
                return rc;
            }
        }
    }
    return NK_OK;
}

static void db_free(nk_db *db)
{
    if (db->current != NULL) {
        nk_version_unref(db->current, nk_db_release_file, NULL);
    }
    if (db->mem != NULL) {
        nk_memref_unref(db->mem);
    }
    for (size_t i = 0; i < db->nimm; i++) {
        nk_memref_unref(db->imm[i]);
    }
    free(db->imm);
    if (db->cache != NULL) {
        nk_cache_free(db->cache);
    }
    for (int l = 0; l < NK_LEVELS; l++) {
        nk_buf_free(&db->compact_ptr[l]);
    }
    nk_batch_free(&db->wscratch);
    free(db->snaps);
    free(db->waiters);
    free(db->dir);
    free(db->wal_dir);
    free(db);
}

int nk_db_open(nk_rt *rt, const char *workdir, const nk_db_options *o, nk_db **out,
               nk_errbuf *eb)
{
    nk_db_options defaults;
    if (o == NULL) {
        nk_db_options_default(&defaults);
        o = &defaults;
    }
    nk_db *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return NK_ENOMEM;
    }
    db->rt = rt;
    db->o = *o;
    db->dir = dup_path(workdir, NULL);
    db->wal_dir = dup_path(workdir, "wal");
    if (db->dir == NULL || db->wal_dir == NULL) {
        db_free(db);
        return NK_ENOMEM;
    }
    nk_rt_rand_stream(rt, "engine.memtable", &db->rand);

    int rc = ensure_dir(rt, db->dir, o->create_if_missing, eb);
    if (rc == NK_OK) {
        rc = nk_cache_new(o->block_cache_bytes, &db->cache);
    }
    /* manifest: the last durable version */
    if (rc == NK_OK) {
        rc = nk_db_load_manifest(db, eb);
    }
    if (rc == NK_OK && !o->lazy_table_open) {
        rc = open_tables(db, eb);
    }
    if (rc == NK_OK) {
        rc = ensure_dir(rt, db->wal_dir, true, eb);
    }
    if (rc == NK_OK) {
        db->mem = calloc(1, sizeof(nk_memref));
        rc = db->mem ? nk_memtable_new(&db->rand, nk_db_arena_block(db), &db->mem->m) : NK_ENOMEM;
        if (db->mem != NULL) {
            db->mem->refs = 1;
        }
    }
    if (rc == NK_OK) {
        nk_wal_options wo;
        nk_wal_options_default(&wo);
        wo.segment_size = o->wal_segment_bytes;
        wo.replay_from = db->replay_from;
        wo.min_segment = db->wal_min_segment;
        wo.min_durable = db->wal_min_durable;
        wo.salvage = o->accept_data_loss;
        wo.test_bugs = o->test_bugs;
        replay_ctx rctx = {db, eb, 0, 0};
        rc = nk_wal_open(rt, db->wal_dir, &wo, replay_one, &rctx, &db->wal, eb);
        const nk_wal_recovery *ri = rc == NK_OK ? nk_wal_recovery_info(db->wal) : NULL;
        if (rc == NK_OK) {
            /* Everything replayed is durable now, in segments up to the new
             * one: record it, so that losing any of them is detected. After
             * a salvage the record replaces the old claims (they covered
             * what was just given up). */
            rc = nk_db_log_wal_claim(db, nk_wal_durable_segment(db->wal),
                                     nk_wal_durable_lsn(db->wal), ri->salvaged, eb);
            if (rc != NK_OK) {
                nk_errbuf_wrap(eb, "recording the WAL range in the manifest");
            }
        }
        if (rc == NK_OK) {
            db->report.wal_segments = ri->segments;
            db->report.wal_replayed = rctx.replayed;
            db->report.wal_torn = ri->torn;
            db->report.wal_torn_bytes = ri->discarded_bytes;
            db->report.data_lost = ri->salvaged || db->report.lost_seq_from != 0;
            db->report.lost_lsn_from = ri->lost_from;
            db->report.lost_lsn_to = ri->lost_to;
            if (db->report.data_lost) {
                char upto[64] = "(end unknown: whole segments are gone)";
                if (ri->lost_to != 0) {
                    snprintf(upto, sizeof upto, "%" PRIu64, ri->lost_to);
                }
                nk_log(rt, NK_LOG_WARN,
                       "engine: %s opened ACCEPTING DATA LOSS (operator's choice): WAL records "
                       "%" PRIu64 "..%s given up%s; recovered up to sequence %" PRIu64
                       "; the manifest now records this decision",
                       db->dir, ri->lost_from, upto,
                       db->report.lost_seq_from != 0 ? " (and the sequence gap logged above)" : "",
                       db->last_seq);
            }
        }
        if (rc == NK_OK) {
            nk_log(rt, NK_LOG_INFO,
                   "engine: opened %s: %zu tables, last seq %" PRIu64 ", WAL replayed %" PRIu64
                   " records%s",
                   db->dir, db->table_count_at_open, db->last_seq, rctx.replayed,
                   ri->torn ? " (torn tail cut)" : "");
        }
    }
    if (rc != NK_OK) {
        if (db->wal != NULL) {
            /* Leave no debris: the segment this open created is empty. */
            nk_wal_abandon_unused(db->wal);
        }
        nk_db_close_manifest(db);
        db_free(db);
        return rc;
    }
    if (db->last_seq < db->seq_floor) {
        db->last_seq = db->seq_floor; /* an ingest's tables hold numbers up to it */
    }
    db->st.last_seq = db->last_seq;
    db->report.tables = db->table_count_at_open;
    db->report.last_seq = db->last_seq;
    remove_orphans(db);
    nk_db_start_claims(db);
    nk_db_maybe_schedule(db);
    *out = db;
    return NK_OK;
}

/* ----------------------------------------------------------------- close --- */

void nk_db_finish_close(nk_db *db)
{
    if (db->in_close_call || db->job != NULL || db->sync_running || db->region_ops != NULL) {
        return; /* called again when they finish */
    }
    nk_errbuf eb;
    nk_wal_stats ws;
    nk_wal_get_stats(db->wal, &ws);
    uint64_t last = nk_wal_last_lsn(db->wal);
    int rc = nk_wal_close(db->wal, &eb);
    if (rc != NK_OK) {
        nk_log(db->rt, NK_LOG_ERROR, "engine: closing the WAL: %s", eb.msg);
    } else {
        /* The close synced every lsn: claim them all, so even a truncation
         * of the last records is refused at the next open. */
        int mrc = nk_db_log_wal_claim(db, ws.current_segment, last, false, &eb);
        if (mrc != NK_OK) {
            nk_log(db->rt, NK_LOG_WARN, "engine: recording the WAL range at close: %s", eb.msg);
        }
    }
    db->wal = NULL;
    nk_db_close_manifest(db);
    nk_db_done_fn done = db->close_done;
    void *arg = db->close_arg;
    if (db->stall_timer != 0) {
        nk_rt_timer_cancel(db->rt, db->stall_timer);
    }
    if (db->nospace_timer != 0) {
        nk_rt_timer_cancel(db->rt, db->nospace_timer);
    }
    if (db->claim_timer != 0) {
        nk_rt_timer_cancel(db->rt, db->claim_timer);
    }
    db_free(db);
    if (done != NULL) {
        done(arg, rc);
    }
}

void nk_db_close(nk_db *db, nk_db_done_fn done, void *arg)
{
    db->closing = true;
    db->close_done = done;
    db->close_arg = arg;
    /* Writes still queued behind a stall will not run. */
    while (db->pend_head != NULL) {
        db_pending *p = db->pend_head;
        db->pend_head = p->next;
        p->done(p->arg, NK_ESTOPPED);
        nk_batch_free(&p->batch);
        free(p);
    }
    db->pend_tail = NULL;
    /* Callbacks fired from here must not free the db under our feet. */
    db->in_close_call = true;
    nk_db_maybe_schedule(db); /* fails flush waiters; starts nothing new */
    db->in_close_call = false;
    nk_db_finish_close(db);
}

void nk_db_abandon(nk_db *db)
{
    if (db == NULL) {
        return;
    }
    nk_db_abandon_job(db);
    nk_db_abandon_region_ops(db);
    nk_db_drop_idle_waiters(db);
    while (db->pend_head != NULL) {
        db_pending *p = db->pend_head;
        db->pend_head = p->next;
        nk_batch_free(&p->batch);
        free(p);
    }
    if (db->wal != NULL) {
        nk_wal_abandon(db->wal);
        db->wal = NULL;
    }
    nk_db_close_manifest(db);
    db_free(db);
}

/* ----------------------------------------------------------------- stats --- */

const nk_db_open_report *nk_db_open_report_get(const nk_db *db)
{
    return &db->report;
}

void nk_db_get_stats(const nk_db *db, nk_db_stats *s)
{
    *s = db->st;
    s->last_seq = db->last_seq;
    s->durable_lsn = nk_wal_durable_lsn(db->wal);
    for (int l = 0; l < NK_LEVELS; l++) {
        s->files[l] = db->current->count[l];
        s->level_bytes[l] = nk_version_level_bytes(db->current, l);
    }
    s->memtable_bytes = nk_memtable_usage(db->mem->m);
    for (size_t i = 0; i < db->nimm; i++) {
        s->memtable_bytes += nk_memtable_usage(db->imm[i]->m);
    }
    s->immutables = (unsigned)db->nimm;
    nk_cache_stats cs = nk_cache_get_stats(db->cache);
    s->cache_bytes = cs.usage;
    s->cache_hits = cs.hits;
    s->cache_misses = cs.misses;
    s->background_error = db->bg_error;
    s->nospace = db->nospace;
}
