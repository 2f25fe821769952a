/*
 * db_manifest.c - the engine's side of the manifest: turn the recovered
 * version state into a live version at open, and describe each background
 * job's result as a version edit.
 *
 * What the counters mean (and why each job sets only some of them):
 *   - last_sequence: every write with a sequence number <= it is in a table.
 *     Only a flush may raise it, to the flushed memtable's largest seq
 *     (memtables flush oldest first, so everything older is in tables too).
 *     Recording the engine's current last_seq would be wrong: writes still
 *     in the memtable would then be skipped by the next WAL replay.
 *   - log_number: WAL records below it hold only flushed writes; replay
 *     starts there. Also flush-only.
 *   - next_file_number: above every number a job may have used, so a crashed
 *     job's orphan tables are never mistaken for live ones.
 *   - seq_floor: only an ingest by link sets it, to the largest sequence
 *     number in the tables it adds (numbered by another engine). It cannot
 *     be last_sequence: writes still in the memtable are below it and would
 *     be skipped by the next replay. Open raises last_seq to it, and replay
 *     accepts the one jump it causes in the WAL's numbering.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db_impl.h"

int nk_db_load_manifest(nk_db *db, nk_errbuf *eb)
{
    nk_manifest_options mo;
    nk_manifest_options_default(&mo);
    mo.rewrite_threshold = db->o.manifest_rewrite_bytes;
    mo.create_if_missing = db->o.create_if_missing;
    mo.test_bugs = db->o.test_bugs;
    int rc = nk_manifest_open(db->rt, db->dir, &mo, &db->manifest, eb);
    if (rc != NK_OK) {
        return rc;
    }
    const nk_version_state *vs = nk_manifest_state(db->manifest);
    size_t total = nk_vstate_file_count(vs);
    nk_version_change *adds = calloc(total + 1, sizeof(*adds));
    nk_version *empty = nk_version_new_empty();
    if (adds == NULL || empty == NULL) {
        free(adds);
        free(empty);
        return NK_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t l = 0; l < NK_NUM_LEVELS && rc == NK_OK; l++) {
        for (size_t i = 0; i < vs->levels[l].count; i++) {
            const nk_file_meta *fm = &vs->levels[l].files[i];
            nk_table_meta *t = nk_table_meta_new(
                fm->number, fm->size, nk_slice_make(fm->smallest.data, fm->smallest.len),
                nk_slice_make(fm->largest.data, fm->largest.len), fm->smallest_seq,
                fm->largest_seq);
            if (t == NULL) {
                rc = NK_ENOMEM;
                break;
            }
            t->has_xxh64 = fm->has_xxh64;
            t->xxh64 = fm->xxh64;
            adds[n++] = (nk_version_change){l, 0, t};
        }
    }
    if (rc == NK_OK) {
        rc = nk_version_apply(empty, NULL, 0, adds, n, &db->current, eb);
    }
    if (rc == NK_OK) {
        rc = nk_version_check(db->current, eb);
    }
    if (rc != NK_OK) {
        if (db->current == NULL) {
            for (size_t i = 0; i < n; i++) {
                nk_db_release_file(NULL, adds[i].file);
            }
        }
    }
    nk_version_unref(empty, nk_db_release_file, NULL);
    free(adds);
    if (rc != NK_OK) {
        return rc;
    }
    db->next_file = vs->next_file_number;
    db->last_seq = vs->last_sequence;
    db->persisted_seq = vs->last_sequence;
    db->seq_floor = vs->seq_floor;
    db->replay_from = vs->log_number;
    db->wal_min_segment = vs->wal_segment;
    db->wal_min_durable = vs->wal_durable;
    db->table_count_at_open = total;
    return NK_OK;
}

int nk_db_log_wal_claim(nk_db *db, uint64_t segment, uint64_t durable, bool reset, nk_errbuf *eb)
{
    if (db->manifest == NULL || nk_manifest_status(db->manifest) != NK_OK) {
        return NK_OK; /* nothing to add to: the manifest already failed */
    }
    nk_db_edit_desc d;
    memset(&d, 0, sizeof(d));
    d.next_file = db->next_file;
    d.wal_segment = segment;
    d.wal_durable = durable;
    d.wal_reset = reset;
    return nk_db_job_log_edit(db->manifest, &d, eb);
}

void nk_db_close_manifest(nk_db *db)
{
    if (db->manifest != NULL) {
        nk_manifest_close(db->manifest);
        db->manifest = NULL;
    }
}

int nk_db_job_log_edit(nk_manifest *m, const nk_db_edit_desc *d, nk_errbuf *eb)
{
    nk_version_edit e;
    nk_vedit_init(&e);
    int rc = NK_OK;
    nk_vedit_set_next_file_number(&e, d->next_file);
    if (d->wal_segment != 0) {
        nk_vedit_set_wal_segment(&e, d->wal_segment);
    }
    if (d->wal_durable != 0 || d->wal_reset) {
        nk_vedit_set_wal_durable(&e, d->wal_durable);
    }
    if (d->wal_reset) {
        nk_vedit_set_wal_segment(&e, d->wal_segment);
        e.wal_reset = true;
    }
    if (d->seq_floor != 0) {
        nk_vedit_set_seq_floor(&e, d->seq_floor);
    }
    if (d->is_flush) {
        nk_vedit_set_last_sequence(&e, d->flushed_seq);
        nk_vedit_set_log_number(&e, d->log_number);
    }
    for (size_t i = 0; i < d->ndel && rc == NK_OK; i++) {
        rc = nk_vedit_delete_file(&e, d->del_level[i], d->del_number[i]);
    }
    for (size_t i = 0; i < d->nadd && rc == NK_OK; i++) {
        const nk_db_edit_add *a = &d->add[i];
        rc = nk_vedit_add_file(&e, a->level, a->number, a->size, a->smallest.data,
                               a->smallest.len, a->largest.data, a->largest.len, a->min_seq,
                               a->max_seq);
        if (rc == NK_OK && a->has_xxh64) {
            nk_vedit_set_file_xxh64(&e, a->xxh64);
        }
    }
    if (rc == NK_OK) {
        rc = nk_manifest_log_edit(m, &e, eb);
    }
    nk_vedit_free(&e);
    return rc;
}
