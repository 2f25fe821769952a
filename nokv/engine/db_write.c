/*
 * db_write.c - the write path: sequence numbers, WAL, memtable, group
 * commit, and stalls.
 *
 * A write is applied in one go on the loop thread: stamp consecutive
 * sequence numbers into the batch, append it to the WAL as one record (page
 * cache), insert its entries into the memtable, advance last_seq. A sync
 * write then waits for the WAL's durable lsn to pass its record; one WAL
 * sync job runs at a time and, when it finishes, covers every record
 * appended before it started, so N concurrent sync writes cost one fsync
 * each round (group commit).
 *
 * Stalls keep memory and L0 bounded under sustained writes:
 *   - stop: when max_immutable memtables wait for flush, or L0 has l0_stop
 *     files, new writes queue (in order) until background work catches up;
 *   - slowdown: at l0_slowdown L0 files, queued writes are released a few
 *     at a time per millisecond, giving compaction room to catch up before a
 *     hard stop is needed.
 * A write that finds older writes queued queues too, so order is preserved.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db_impl.h"
#include "nokv/util/coding.h"

#define SLOWDOWN_TICK_NS (1 * NK_NSEC_PER_MSEC)
#define SLOWDOWN_BATCHES_PER_TICK 8

typedef struct apply_ctx {
    nk_memtable *m;
    int rc;
} apply_ctx;

static int apply_one(void *arg, uint64_t seq, nk_ktype type, nk_slice key, nk_slice value)
{
    apply_ctx *a = arg;
    return nk_memtable_add(a->m, seq, type, key.data, key.len, value.data, value.len);
}

int nk_db_apply_batch(nk_memtable *m, const uint8_t *data, size_t len, nk_errbuf *eb)
{
    apply_ctx a = {m, NK_OK};
    return nk_batch_iterate(data, len, apply_one, &a, eb);
}

void nk_db_fail_waiters(nk_db *db, int status)
{
    db_waiter *w = db->waiters;
    size_t n = db->nwaiters;
    db->waiters = NULL;
    db->nwaiters = 0;
    db->cap_waiters = 0;
    for (size_t i = 0; i < n; i++) {
        w[i].done(w[i].arg, status);
    }
    free(w);
    while (db->pend_head != NULL) {
        db_pending *p = db->pend_head;
        db->pend_head = p->next;
        p->done(p->arg, status);
        nk_batch_free(&p->batch);
        free(p);
    }
    db->pend_tail = NULL;
}

static void sync_start(nk_db *db);

/* The WAL reports how far it is durable: release the writes it covers. */
static void sync_done(void *arg, int status, uint64_t durable_lsn)
{
    nk_db *db = arg;
    db->sync_running = false;
    db->st.syncs++;
    if (status != NK_OK) {
        nk_errbuf eb;
        nk_errbuf_set(&eb, "WAL sync failed: %s (the state of unsynced writes is unknown)",
                      nk_strerror(status));
        nk_db_set_bg_error(db, status, &eb);
        return;
    }
    db->st.durable_lsn = durable_lsn;
    size_t done = 0;
    while (done < db->nwaiters && db->waiters[done].lsn <= durable_lsn) {
        done++;
    }
    /* Copy out first: a done callback may write again and grow the queue. */
    db_waiter *ready = NULL;
    if (done > 0) {
        ready = malloc(done * sizeof(*ready));
        if (ready == NULL) {
            nk_db_set_bg_error(db, NK_ENOMEM, NULL);
            return;
        }
        memcpy(ready, db->waiters, done * sizeof(*ready));
        memmove(db->waiters, db->waiters + done, (db->nwaiters - done) * sizeof(*ready));
        db->nwaiters -= done;
    }
    if (db->nwaiters > 0) {
        sync_start(db);
    }
    for (size_t i = 0; i < done; i++) {
        ready[i].done(ready[i].arg, NK_OK);
    }
    free(ready);
    if (db->closing && db->job == NULL && !db->sync_running) {
        nk_db_finish_close(db);
    }
}

static void sync_start(nk_db *db)
{
    if (db->sync_running || db->bg_error != NK_OK) {
        return;
    }
    int rc = nk_wal_sync_start(db->wal, sync_done, db);
    if (rc != NK_OK) {
        nk_errbuf eb;
        nk_errbuf_set(&eb, "cannot start a WAL sync: %s", nk_strerror(rc));
        nk_db_set_bg_error(db, rc, &eb);
        return;
    }
    db->sync_running = true;
}

static int add_waiter(nk_db *db, uint64_t lsn, nk_db_done_fn done, void *arg)
{
    if (db->nwaiters == db->cap_waiters) {
        size_t cap = db->cap_waiters ? db->cap_waiters * 2 : 64;
        db_waiter *nw = realloc(db->waiters, cap * sizeof(*nw));
        if (nw == NULL) {
            return NK_ENOMEM;
        }
        db->waiters = nw;
        db->cap_waiters = cap;
    }
    db->waiters[db->nwaiters++] = (db_waiter){lsn, done, arg};
    return NK_OK;
}

/* Apply one encoded batch now, numbering it from last_seq + 1. The caller's
 * bytes are read, never copied or modified: the sequence number goes into a
 * 13-byte copy of the batch header written as the head of the WAL record,
 * and the memtable is filled from the same bytes (a large value is thus held
 * once by the caller and once by the memtable, never more).
 * Errors here are fatal for the db: the WAL may hold a record the memtable
 * does not, so later writes must not pretend otherwise. Requests that cannot
 * be written at all (too large) are refused by nk_db_write before this. */
static int applied(nk_db *db, uint64_t lsn, uint32_t count, size_t len, bool sync,
                   nk_db_done_fn done, void *arg);

/* The WAL append failed: refuse alone what left no trace, fail the db
 * otherwise. Returns what apply_now returns. */
static int append_failed(nk_db *db, int rc, nk_db_done_fn done, void *arg)
{
    if (rc == NK_EFAILPOINT || (rc == NK_ENOSPC && nk_wal_status(db->wal) == NK_OK)) {
        /* Nothing was written (a full disk: the WAL cut its partial record
         * back): this write alone is refused, the db stays healthy and the
         * next write tries again. */
        return rc;
    }
    nk_errbuf eb;
    nk_errbuf_set(&eb, "WAL append failed: %s", nk_errdesc(rc));
    nk_db_set_bg_error(db, rc, &eb);
    done(arg, rc);
    return NK_OK;
}

static int apply_now(nk_db *db, const uint8_t *data, size_t len, uint32_t count, bool sync,
                     nk_db_done_fn done, void *arg)
{
    uint64_t seq = db->last_seq + 1;
    uint8_t hdr[NK_BATCH_HEADER];
    memcpy(hdr, data, NK_BATCH_HEADER);
    nk_put_u64(hdr + 1, seq);
    uint64_t lsn = 0;
    nk_slice parts[2] = {nk_slice_make(hdr, sizeof hdr),
                         nk_slice_make(data + NK_BATCH_HEADER, len - NK_BATCH_HEADER)};
    /* A sync write waits for a WAL sync anyway: its record may wait in
     * memory for the next sync job (wal.h), one file write per group. */
    int rc = sync ? nk_wal_appendv_held(db->wal, parts, 2, &lsn)
                  : nk_wal_appendv(db->wal, parts, 2, &lsn);
    if (rc != NK_OK) {
        return append_failed(db, rc, done, arg);
    }
    nk_errbuf eb;
    apply_ctx a = {db->mem->m, NK_OK};
    rc = nk_batch_iterate_at(data, len, seq, apply_one, &a, &eb);
    if (rc != NK_OK) {
        nk_errbuf_wrap(&eb, "memtable insert failed");
        nk_db_set_bg_error(db, rc, &eb);
        done(arg, rc);
        return NK_OK;
    }
    return applied(db, lsn, count, len, sync, done, arg);
}

/* After a batch reached the WAL (record lsn) and the memtable: advance the
 * counters, maybe freeze the memtable, and complete or queue the write. */
static int applied(nk_db *db, uint64_t lsn, uint32_t count, size_t len, bool sync,
                   nk_db_done_fn done, void *arg)
{
    int rc;
    db->mem->last_lsn = lsn;
    db->last_seq += count;
    db->st.last_seq = db->last_seq;
    db->st.writes += count;
    db->st.write_bytes += len;

    if (nk_memtable_usage(db->mem->m) >= db->o.memtable_bytes) {
        if (nk_db_rotate_memtable(db) != NK_OK) {
            nk_db_set_bg_error(db, NK_ENOMEM, NULL);
        } else {
            nk_db_maybe_schedule(db);
        }
    }
    if (!sync) {
        done(arg, NK_OK);
        return NK_OK;
    }
    if (nk_wal_durable_lsn(db->wal) >= lsn) {
        done(arg, NK_OK);
        return NK_OK;
    }
    rc = add_waiter(db, lsn, done, arg);
    if (rc != NK_OK) {
        done(arg, rc);
        return NK_OK;
    }
    sync_start(db);
    return NK_OK;
}

typedef enum stall { STALL_NONE, STALL_SLOW, STALL_STOP } stall;

static stall stall_state(const nk_db *db)
{
    unsigned l0 = (unsigned)db->current->count[0];
    if (db->holding_writes || db->nimm >= db->o.max_immutable || l0 >= db->o.l0_stop) {
        return STALL_STOP;
    }
    if (l0 >= db->o.l0_slowdown) {
        return STALL_SLOW;
    }
    return STALL_NONE;
}

static void stall_tick(void *arg)
{
    nk_db *db = arg;
    db->stall_timer = 0;
    nk_db_process_pending(db);
}

/* Release queued writes as far as the stall state allows. */
void nk_db_process_pending(nk_db *db)
{
    unsigned released = 0;
    while (db->pend_head != NULL && db->bg_error == NK_OK) {
        stall s = stall_state(db);
        if (s == STALL_STOP) {
            db->st.stalls_stop++;
            nk_db_maybe_schedule(db);
            return; /* a job's done calls us again */
        }
        if (s == STALL_SLOW && released >= SLOWDOWN_BATCHES_PER_TICK) {
            if (db->stall_timer == 0) {
                db->st.stalls_slowdown++;
                db->stall_timer = nk_rt_timer_start(db->rt, SLOWDOWN_TICK_NS, stall_tick, db);
            }
            return;
        }
        db_pending *p = db->pend_head;
        db->pend_head = p->next;
        if (db->pend_head == NULL) {
            db->pend_tail = NULL;
        }
        nk_slice pd = nk_batch_data(&p->batch);
        int rc = apply_now(db, pd.data, pd.len, p->batch.count, p->sync, p->done, p->arg);
        if (rc != NK_OK) {
            p->done(p->arg, rc); /* refused: nothing of it was written */
        }
        nk_batch_free(&p->batch);
        free(p);
        released++;
    }
}

int nk_db_write(nk_db *db, const nk_batch *b, bool sync, nk_db_done_fn done, void *arg)
{
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    if (db->nospace) {
        return NK_ENOSPC; /* until a background retry finds space again */
    }
    if (b == NULL || nk_batch_count(b) == 0) {
        return NK_EINVAL;
    }
    if (db->last_seq + nk_batch_count(b) > NK_SEQ_MAX) {
        return NK_ERANGE;
    }
    nk_slice data = nk_batch_data(b);
    if (data.len < NK_BATCH_HEADER) {
        return NK_EINVAL;
    }
    if (data.len > NK_BATCH_MAX_BYTES) {
        /* Refused alone, before the WAL sees it: one oversized request must
         * never turn into an engine-wide write outage. */
        return NK_ETOOBIG;
    }
    if (db->pend_head == NULL && stall_state(db) == STALL_NONE) {
        /* The common case: apply at once, straight from the caller's bytes. */
        return apply_now(db, data.data, data.len, b->count, sync, done, arg);
    }
    db_pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NK_ENOMEM;
    }
    if (nk_buf_assign(&p->batch.rep, data.data, data.len) != NK_OK) {
        free(p);
        return NK_ENOMEM;
    }
    p->batch.count = b->count;
    p->batch.bytes_keys_values = b->bytes_keys_values;
    p->sync = sync;
    p->done = done;
    p->arg = arg;
    if (db->pend_tail != NULL) {
        db->pend_tail->next = p;
    } else {
        db->pend_head = p;
    }
    db->pend_tail = p;
    nk_db_process_pending(db);
    return NK_OK;
}

/* ------------------------------------------------------ gathered writes --- */

/* Batch-encoded size of ops, or 0 when an op breaks a limit (*rc says). */
static size_t ops_size(const nk_db_op *ops, size_t n, int *rc)
{
    size_t total = NK_BATCH_HEADER;
    for (size_t i = 0; i < n; i++) {
        size_t vlen = ops[i].del ? 0 : ops[i].val_head.len + ops[i].val.len;
        if (ops[i].key.len == 0) {
            *rc = NK_EINVAL;
            return 0;
        }
        if (ops[i].key.len > NK_KEY_MAX || vlen > NK_VALUE_MAX) {
            *rc = NK_ETOOBIG;
            return 0;
        }
        total += 1 + nk_varint64_len(ops[i].key.len) + ops[i].key.len;
        if (!ops[i].del) {
            total += nk_varint64_len(vlen) + vlen;
        }
        if (total > NK_BATCH_MAX_BYTES) {
            *rc = NK_ETOOBIG;
            return 0;
        }
    }
    return total;
}

#define GATHER_MIN (64u * 1024u) /* smaller writes are simply copied */

/* The copying path: encode ops as an owned batch and write that. */
static int write_ops_copied(nk_db *db, const nk_db_op *ops, size_t n, bool sync,
                            nk_db_done_fn done, void *arg)
{
    /* nk_db_write copies what it keeps, so the buffer is free again when
     * it returns; a write from inside a done callback gets its own. */
    nk_batch local;
    nk_batch *b = &db->wscratch;
    int rc;
    if (db->wscratch_busy) {
        b = &local;
        rc = nk_batch_init(b);
    } else if (db->wscratch.rep.cap == 0) {
        rc = nk_batch_init(b);
    } else {
        nk_batch_clear(b);
        rc = NK_OK;
    }
    for (size_t i = 0; i < n && rc == NK_OK; i++) {
        rc = ops[i].del ? nk_batch_delete(b, ops[i].key.data, ops[i].key.len)
                        : nk_batch_put2(b, ops[i].key.data, ops[i].key.len, ops[i].val_head.data,
                                        ops[i].val_head.len, ops[i].val.data, ops[i].val.len);
    }
    if (rc == NK_OK) {
        bool was_busy = db->wscratch_busy;
        db->wscratch_busy = true;
        rc = nk_db_write(db, b, sync, done, arg);
        db->wscratch_busy = was_busy;
    }
    if (b == &local) {
        nk_batch_free(b);
    } else if (db->wscratch.rep.cap > GATHER_MIN) {
        nk_batch_free(b); /* stays small: only writes under GATHER_MIN use it */
    }
    return rc;
}


int nk_db_write_ops(nk_db *db, const nk_db_op *ops, size_t n, bool sync, nk_db_done_fn done,
                    void *arg)
{
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    if (db->nospace) {
        return NK_ENOSPC;
    }
    if (n == 0 || n > UINT32_MAX) {
        return NK_EINVAL;
    }
    int rc = NK_OK;
    size_t total = ops_size(ops, n, &rc);
    if (total == 0) {
        return rc;
    }
    if (db->last_seq + n > NK_SEQ_MAX) {
        return NK_ERANGE;
    }
    if (total < GATHER_MIN || db->pend_head != NULL || stall_state(db) != STALL_NONE) {
        /* small, or it must wait (a queued write owns a copy anyway) */
        return write_ops_copied(db, ops, n, sync, done, arg);
    }
    /* The record is the batch encoding, written from pieces: the framing
     * (header, types, keys, lengths) in one small buffer, each value from
     * the caller's memory. The memtable then copies each value once. */
    nk_buf frame = {0};
    nk_slice *parts = calloc(3 * n + 1, sizeof(*parts));
    size_t *cut = calloc(3 * n + 1, sizeof(*cut)); /* frame offsets ending each frame piece */
    if (parts == NULL || cut == NULL) {
        free(parts);
        free(cut);
        return NK_ENOMEM;
    }
    uint64_t seq = db->last_seq + 1;
    uint8_t hdr[NK_BATCH_HEADER];
    hdr[0] = NK_BATCH_VERSION;
    nk_put_u64(hdr + 1, seq);
    nk_put_u32(hdr + 9, (uint32_t)n);
    rc = nk_buf_append(&frame, hdr, sizeof hdr);
    /* pieces: frame[a..b) then external values, alternating */
    size_t np = 0, from = 0;
    for (size_t i = 0; i < n && rc == NK_OK; i++) {
        const nk_db_op *op = &ops[i];
        rc = nk_buf_append_u8(&frame, (uint8_t)(op->del ? NK_KT_DELETE : NK_KT_PUT));
        if (rc == NK_OK) {
            rc = nk_buf_append_varint(&frame, op->key.len);
        }
        if (rc == NK_OK) {
            rc = nk_buf_append(&frame, op->key.data, op->key.len);
        }
        if (rc == NK_OK && !op->del) {
            rc = nk_buf_append_varint(&frame, op->val_head.len + op->val.len);
            if (rc == NK_OK && op->val_head.len > 0) {
                rc = nk_buf_append(&frame, op->val_head.data, op->val_head.len);
            }
            if (rc == NK_OK && op->val.len > 0) {
                cut[np] = frame.len; /* frame piece ends here ... */
                parts[np++] = nk_slice_make(NULL, from);
                parts[np++] = op->val; /* ... the value follows from the caller */
                from = frame.len;
            }
        }
    }
    if (rc == NK_OK) {
        cut[np] = frame.len;
        parts[np++] = nk_slice_make(NULL, from);
        /* frame pieces were recorded as (NULL, start); resolve them now that
         * the buffer no longer moves */
        for (size_t i = 0; i < np; i++) {
            if (parts[i].data == NULL) {
                size_t start = parts[i].len;
                parts[i] = nk_slice_make(frame.data + start, cut[i] - start);
            }
        }
        uint64_t lsn = 0;
        rc = nk_wal_appendv(db->wal, parts, np, &lsn);
        if (rc != NK_OK) {
            rc = append_failed(db, rc, done, arg);
        } else {
            for (size_t i = 0; i < n && rc == NK_OK; i++) {
                const nk_db_op *op = &ops[i];
                rc = nk_memtable_add2(db->mem->m, seq + i, op->del ? NK_KT_DELETE : NK_KT_PUT,
                                      op->key.data, op->key.len, op->val_head.data,
                                      op->val_head.len, op->val.data, op->val.len);
            }
            if (rc != NK_OK) {
                nk_errbuf eb;
                nk_errbuf_set(&eb, "memtable insert failed: %s", nk_errdesc(rc));
                nk_db_set_bg_error(db, rc, &eb);
                done(arg, rc);
                rc = NK_OK;
            } else {
                rc = applied(db, lsn, (uint32_t)n, total, sync, done, arg);
            }
        }
    }
    nk_buf_free(&frame);
    free(parts);
    free(cut);
    return rc;
}

int nk_db_sync(nk_db *db, nk_db_done_fn done, void *arg)
{
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    uint64_t lsn = nk_wal_last_lsn(db->wal);
    if (nk_wal_durable_lsn(db->wal) >= lsn) {
        done(arg, NK_OK);
        return NK_OK;
    }
    int rc = add_waiter(db, lsn, done, arg);
    if (rc == NK_OK) {
        sync_start(db);
    }
    return rc;
}
