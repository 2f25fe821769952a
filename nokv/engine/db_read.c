/*
 * db_read.c - point reads, iterators, snapshots and the table cache.
 *
 * Read order for a key: the mutable memtable, the immutable memtables
 * (newest first), level 0 (newest file first: L0 files overlap), then one
 * file per deeper level (files there are disjoint, found by binary search).
 * The first source that knows the key (a value or a tombstone) decides.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db_impl.h"
#include "nokv/engine/dbiter.h"
#include "nokv/engine/iter.h"

void nk_memref_unref(nk_memref *r)
{
    if (r != NULL && --r->refs == 0) {
        nk_memtable_free(r->m);
        free(r);
    }
}

void nk_db_table_path(const nk_db *db, uint64_t number, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%06" PRIu64 ".sst", db->dir, number);
}

/* Open a table on first use; it stays open while a version holds it. */
int nk_db_table(nk_db *db, nk_table_meta *f, nk_sst **out, nk_errbuf *eb)
{
    if (f->table != NULL) {
        *out = f->table;
        return NK_OK;
    }
    char path[1024];
    nk_db_table_path(db, f->number, path, sizeof(path));
    nk_file *file = NULL;
    int rc = nk_rt_file_open(db->rt, path, NK_OPEN_READ, &file);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "table %s listed in the manifest cannot be opened: %s", path,
                      nk_errdesc(rc));
        return rc == NK_ENOENT ? NK_ECORRUPT : rc;
    }
    rc = nk_sst_open(db->rt, file, f->number, path, db->cache, &f->table, eb);
    if (rc != NK_OK) {
        nk_rt_file_close(db->rt, file);
        return rc;
    }
    *out = f->table;
    return NK_OK;
}

/* A file no version holds any more: close it, and delete it if an edit
 * removed it (its replacement is already durable in the manifest). */
void nk_db_release_file(void *arg, nk_table_meta *f)
{
    nk_db *db = arg;
    if (f->table != NULL) {
        nk_sst_close(f->table);
        f->table = NULL;
    }
    if (f->obsolete && db != NULL) {
        nk_cache_erase_file(db->cache, f->number);
        char path[1024];
        nk_db_table_path(db, f->number, path, sizeof(path));
        int rc = nk_rt_remove(db->rt, path);
        if (rc != NK_OK && rc != NK_ENOENT && rc != NK_ECRASHED) {
            /* harmless: the next open deletes files the manifest does not list */
            nk_log(db->rt, NK_LOG_WARN, "engine: cannot delete obsolete table %s: %s", path,
                   nk_errdesc(rc));
        }
    }
    nk_buf_free(&f->smallest);
    nk_buf_free(&f->largest);
    free(f);
}

/* Binary search a level >= 1 for the file whose range may hold ukey. */
static nk_table_meta *find_file(const nk_version *v, int level, const uint8_t *ukey, size_t ulen)
{
    size_t lo = 0, hi = v->count[level];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        nk_table_meta *f = v->files[level][mid];
        nk_slice largest = nk_ikey_user(f->largest.data, f->largest.len);
        if (nk_bytes_cmp(largest.data, largest.len, ukey, ulen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == v->count[level]) {
        return NULL;
    }
    nk_table_meta *f = v->files[level][lo];
    nk_slice smallest = nk_ikey_user(f->smallest.data, f->smallest.len);
    return nk_bytes_cmp(smallest.data, smallest.len, ukey, ulen) <= 0 ? f : NULL;
}

static bool in_range(const nk_table_meta *f, const uint8_t *ukey, size_t ulen)
{
    nk_slice s = nk_ikey_user(f->smallest.data, f->smallest.len);
    nk_slice l = nk_ikey_user(f->largest.data, f->largest.len);
    return nk_bytes_cmp(s.data, s.len, ukey, ulen) <= 0 &&
           nk_bytes_cmp(l.data, l.len, ukey, ulen) >= 0;
}

static int table_get(nk_db *db, nk_table_meta *f, const uint8_t *k, size_t klen, uint64_t snap,
                     nk_lookup *res, nk_buf *val, nk_errbuf *eb)
{
    nk_sst *t = NULL;
    int rc = nk_db_table(db, f, &t, eb);
    if (rc == NK_OK) {
        rc = nk_sst_get(t, k, klen, snap, res, val, NULL, eb);
    }
    return rc;
}

/* The newest operation on one key among the writes queued behind a stall. */
typedef struct pend_find {
    const uint8_t *key;
    size_t klen;
    bool found;
    nk_ktype type;
    nk_slice value;
} pend_find;

static int pend_visit(void *arg, uint64_t seq, nk_ktype type, nk_slice key, nk_slice value)
{
    pend_find *f = arg;
    (void)seq;
    if (key.len == f->klen && memcmp(key.data, f->key, key.len) == 0) {
        f->found = true; /* batches are visited oldest first: the last one wins */
        f->type = type;
        f->value = value;
    }
    return NK_OK;
}

int nk_db_get(nk_db *db, const void *key, size_t klen, uint64_t snap, nk_buf *val, nk_errbuf *eb)
{
    const uint8_t *k = key;
    if (klen == 0 || klen > NK_KEY_MAX) {
        return NK_EINVAL;
    }
    if (db->pend_head != NULL && (snap == 0 || snap > db->last_seq)) {
        /* A latest-state read must see writes the engine accepted but queued
         * behind a stall (db.h: visible once nk_db_write returned NK_OK), or
         * a read-modify-write on top of them (INCR, APPEND) would lose one. */
        pend_find f = {.key = k, .klen = klen};
        for (const db_pending *p = db->pend_head; p != NULL; p = p->next) {
            nk_slice d = nk_batch_data(&p->batch);
            int prc = nk_batch_iterate(d.data, d.len, pend_visit, &f, eb);
            if (prc != NK_OK) {
                return prc;
            }
        }
        if (f.found) {
            return f.type == NK_KT_PUT ? nk_buf_assign(val, f.value.data, f.value.len) : NK_ENOENT;
        }
    }
    if (snap == 0 || snap > db->last_seq) {
        snap = db->last_seq;
    }
    nk_lookup res = NK_LOOKUP_MISS;
    nk_slice v;
    int rc = nk_memtable_get(db->mem->m, k, klen, snap, &res, &v, NULL);
    for (size_t i = db->nimm; rc == NK_OK && res == NK_LOOKUP_MISS && i > 0; i--) {
        rc = nk_memtable_get(db->imm[i - 1]->m, k, klen, snap, &res, &v, NULL);
    }
    if (rc != NK_OK) {
        return rc;
    }
    if (res == NK_LOOKUP_VALUE) {
        return nk_buf_assign(val, v.data, v.len);
    }
    if (res == NK_LOOKUP_DELETED) {
        return NK_ENOENT;
    }
    /* Pin the version: a table read can finish a job's install in between
     * only on another thread, never here, but the pin keeps this honest if
     * reads ever yield. */
    nk_version *ver = db->current;
    nk_version_ref(ver);
    for (size_t i = ver->count[0]; rc == NK_OK && res == NK_LOOKUP_MISS && i > 0; i--) {
        nk_table_meta *f = ver->files[0][i - 1];
        if (in_range(f, k, klen)) {
            rc = table_get(db, f, k, klen, snap, &res, val, eb);
        }
    }
    for (int l = 1; rc == NK_OK && res == NK_LOOKUP_MISS && l < NK_LEVELS; l++) {
        nk_table_meta *f = find_file(ver, l, k, klen);
        if (f != NULL) {
            rc = table_get(db, f, k, klen, snap, &res, val, eb);
        }
    }
    nk_version_unref(ver, nk_db_release_file, db);
    if (rc != NK_OK) {
        return rc;
    }
    return res == NK_LOOKUP_VALUE ? NK_OK : NK_ENOENT;
}

/* ------------------------------------------------------------ snapshots --- */

uint64_t nk_db_last_seq(const nk_db *db)
{
    return db->last_seq;
}

uint64_t nk_db_snapshot(nk_db *db)
{
    uint64_t seq = db->last_seq;
    if (db->nsnaps > 0 && db->snaps[db->nsnaps - 1].seq == seq) {
        db->snaps[db->nsnaps - 1].count++;
        return seq;
    }
    db_snapshot *ns = realloc(db->snaps, (db->nsnaps + 1) * sizeof(*ns));
    if (ns == NULL) {
        return seq; /* unprotected but still a valid read point */
    }
    db->snaps = ns;
    db->snaps[db->nsnaps].seq = seq;
    db->snaps[db->nsnaps].count = 1;
    db->nsnaps++;
    return seq;
}

void nk_db_release_snapshot(nk_db *db, uint64_t seq)
{
    for (size_t i = 0; i < db->nsnaps; i++) {
        if (db->snaps[i].seq == seq) {
            if (--db->snaps[i].count == 0) {
                memmove(&db->snaps[i], &db->snaps[i + 1],
                        (db->nsnaps - i - 1) * sizeof(db_snapshot));
                db->nsnaps--;
            }
            return;
        }
    }
}

uint64_t nk_db_oldest_snapshot(const nk_db *db)
{
    return db->nsnaps > 0 ? db->snaps[0].seq : db->last_seq;
}

/* -------------------------------------------------------- level iterator --- */

/*
 * Concatenates the disjoint tables of one level (>= 1), opening each table
 * only when the iteration reaches it. Holds a version reference so its files
 * stay alive.
 */
typedef struct level_iter {
    nk_iter base;
    nk_db *db;
    nk_version *v;
    int level;
    size_t idx; /* current file */
    nk_iter *cur;
    int status;
    nk_errbuf eb;
} level_iter;

static bool li_valid(const nk_iter *it)
{
    const level_iter *li = (const level_iter *)it;
    return li->cur != NULL && nk_iter_valid(li->cur);
}

static bool li_open(level_iter *li, size_t idx)
{
    if (li->cur != NULL) {
        /* keep the first error of the table we leave */
        if (li->status == NK_OK) {
            li->status = nk_iter_status(li->cur, &li->eb);
        }
        nk_iter_free(li->cur);
        li->cur = NULL;
    }
    if (li->status != NK_OK || idx >= li->v->count[li->level]) {
        return false;
    }
    li->idx = idx;
    nk_sst *t = NULL;
    int rc = nk_db_table(li->db, li->v->files[li->level][idx], &t, &li->eb);
    if (rc == NK_OK) {
        rc = nk_iter_sst(t, 0, &li->cur);
    }
    if (rc != NK_OK) {
        li->status = rc;
        return false;
    }
    return true;
}

static void li_skip_forward(level_iter *li)
{
    while (li->cur != NULL && !nk_iter_valid(li->cur) && li->status == NK_OK) {
        if (nk_iter_status(li->cur, NULL) != NK_OK || !li_open(li, li->idx + 1)) {
            break;
        }
        nk_iter_first(li->cur);
    }
    if (li->cur != NULL && !nk_iter_valid(li->cur) && li->status == NK_OK) {
        li->status = nk_iter_status(li->cur, &li->eb);
    }
}

static void li_skip_backward(level_iter *li)
{
    while (li->cur != NULL && !nk_iter_valid(li->cur) && li->status == NK_OK) {
        if (nk_iter_status(li->cur, NULL) != NK_OK || li->idx == 0 || !li_open(li, li->idx - 1)) {
            break;
        }
        nk_iter_last(li->cur);
    }
    if (li->cur != NULL && !nk_iter_valid(li->cur) && li->status == NK_OK) {
        li->status = nk_iter_status(li->cur, &li->eb);
    }
}

static void li_first(nk_iter *it)
{
    level_iter *li = (level_iter *)it;
    if (li_open(li, 0)) {
        nk_iter_first(li->cur);
        li_skip_forward(li);
    }
}

static void li_last(nk_iter *it)
{
    level_iter *li = (level_iter *)it;
    size_t n = li->v->count[li->level];
    if (n > 0 && li_open(li, n - 1)) {
        nk_iter_last(li->cur);
        li_skip_backward(li);
    }
}

/* Index of the first file whose largest key is >= ikey. */
static size_t li_find(level_iter *li, const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = li->v->count[li->level];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        nk_table_meta *f = li->v->files[li->level][mid];
        if (nk_ikey_cmp(f->largest.data, f->largest.len, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void li_seek(nk_iter *it, const uint8_t *k, size_t klen)
{
    level_iter *li = (level_iter *)it;
    if (li_open(li, li_find(li, k, klen))) {
        nk_iter_seek(li->cur, k, klen);
        li_skip_forward(li);
    } else if (li->cur != NULL) {
        nk_iter_free(li->cur);
        li->cur = NULL;
    }
}

static void li_seek_for_prev(nk_iter *it, const uint8_t *k, size_t klen)
{
    level_iter *li = (level_iter *)it;
    size_t idx = li_find(li, k, klen);
    size_t n = li->v->count[li->level];
    if (idx == n) {
        idx = n == 0 ? 0 : n - 1; /* every file ends before k: last entry of the level */
    }
    if (li_open(li, idx)) {
        nk_iter_seek_for_prev(li->cur, k, klen);
        li_skip_backward(li);
    }
}

static void li_next(nk_iter *it)
{
    level_iter *li = (level_iter *)it;
    nk_iter_next(li->cur);
    li_skip_forward(li);
}

static void li_prev(nk_iter *it)
{
    level_iter *li = (level_iter *)it;
    nk_iter_prev(li->cur);
    li_skip_backward(li);
}

static nk_slice li_key(const nk_iter *it)
{
    return nk_iter_key(((const level_iter *)it)->cur);
}
static nk_slice li_value(const nk_iter *it)
{
    return nk_iter_value(((const level_iter *)it)->cur);
}

static int li_status(const nk_iter *it, nk_errbuf *eb)
{
    const level_iter *li = (const level_iter *)it;
    if (li->status != NK_OK) {
        if (eb != NULL) {
            *eb = li->eb;
        }
        return li->status;
    }
    return li->cur != NULL ? nk_iter_status(li->cur, eb) : NK_OK;
}

static void li_destroy(nk_iter *it)
{
    level_iter *li = (level_iter *)it;
    if (li->cur != NULL) {
        nk_iter_free(li->cur);
    }
    nk_version_unref(li->v, nk_db_release_file, li->db);
    free(li);
}

static const nk_iter_ops level_iter_ops = {
    .valid = li_valid,
    .first = li_first,
    .last = li_last,
    .seek = li_seek,
    .seek_for_prev = li_seek_for_prev,
    .next = li_next,
    .prev = li_prev,
    .key = li_key,
    .value = li_value,
    .status = li_status,
    .destroy = li_destroy,
};

static int level_iter_new(nk_db *db, nk_version *v, int level, nk_iter **out)
{
    level_iter *li = calloc(1, sizeof(*li));
    if (li == NULL) {
        return NK_ENOMEM;
    }
    li->base.ops = &level_iter_ops;
    li->db = db;
    li->v = v;
    nk_version_ref(v);
    li->level = level;
    *out = &li->base;
    return NK_OK;
}

/* ------------------------------------------------------ memtable pinning --- */

/* Wraps a memtable iterator so the memtable outlives it. */
typedef struct mem_iter {
    nk_iter base;
    nk_iter *inner;
    nk_memref *ref;
} mem_iter;

static bool mi_valid(const nk_iter *it)
{
    return nk_iter_valid(((const mem_iter *)it)->inner);
}
static void mi_first(nk_iter *it)
{
    nk_iter_first(((mem_iter *)it)->inner);
}
static void mi_last(nk_iter *it)
{
    nk_iter_last(((mem_iter *)it)->inner);
}
static void mi_seek(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_iter_seek(((mem_iter *)it)->inner, k, n);
}
static void mi_seek_for_prev(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_iter_seek_for_prev(((mem_iter *)it)->inner, k, n);
}
static void mi_next(nk_iter *it)
{
    nk_iter_next(((mem_iter *)it)->inner);
}
static void mi_prev(nk_iter *it)
{
    nk_iter_prev(((mem_iter *)it)->inner);
}
static nk_slice mi_key(const nk_iter *it)
{
    return nk_iter_key(((const mem_iter *)it)->inner);
}
static nk_slice mi_value(const nk_iter *it)
{
    return nk_iter_value(((const mem_iter *)it)->inner);
}
static int mi_status(const nk_iter *it, nk_errbuf *eb)
{
    return nk_iter_status(((const mem_iter *)it)->inner, eb);
}
static void mi_destroy(nk_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    nk_iter_free(mi->inner);
    nk_memref_unref(mi->ref);
    free(mi);
}

static const nk_iter_ops mem_iter_ops = {
    .valid = mi_valid,
    .first = mi_first,
    .last = mi_last,
    .seek = mi_seek,
    .seek_for_prev = mi_seek_for_prev,
    .next = mi_next,
    .prev = mi_prev,
    .key = mi_key,
    .value = mi_value,
    .status = mi_status,
    .destroy = mi_destroy,
};

static int mem_iter_new(nk_memref *ref, nk_iter **out)
{
    mem_iter *mi = calloc(1, sizeof(*mi));
    if (mi == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_iter_memtable(ref->m, &mi->inner);
    if (rc != NK_OK) {
        free(mi);
        return rc;
    }
    mi->base.ops = &mem_iter_ops;
    mi->ref = ref;
    ref->refs++;
    *out = &mi->base;
    return NK_OK;
}

/* ------------------------------------------------------------ db iterator --- */

struct nk_db_iter {
    nk_dbiter *it;
    nk_db *db;
    nk_version *v; /* pinned: the tables the iterator reads stay alive */
};

int nk_db_iter_new(nk_db *db, const nk_db_iter_options *o, nk_db_iter **out)
{
    nk_db_iter_options defaults;
    memset(&defaults, 0, sizeof(defaults));
    if (o == NULL) {
        o = &defaults;
    }
    nk_db_iter *di = calloc(1, sizeof(*di));
    size_t cap = 1 + db->nimm + db->current->count[0] + NK_LEVELS;
    nk_iter **kids = calloc(cap, sizeof(nk_iter *));
    if (di == NULL || kids == NULL) {
        free(di);
        free(kids);
        return NK_ENOMEM;
    }
    size_t n = 0;
    int rc = mem_iter_new(db->mem, &kids[n]);
    n += rc == NK_OK;
    for (size_t i = db->nimm; rc == NK_OK && i > 0; i--) {
        rc = mem_iter_new(db->imm[i - 1], &kids[n]);
        n += rc == NK_OK;
    }
    nk_version *v = db->current;
    nk_errbuf eb;
    for (size_t i = v->count[0]; rc == NK_OK && i > 0; i--) {
        /* L0 files one by one, newest first: their ranges overlap. */
        nk_sst *t = NULL;
        rc = nk_db_table(db, v->files[0][i - 1], &t, &eb);
        if (rc == NK_OK) {
            rc = nk_iter_sst(t, 0, &kids[n]);
            n += rc == NK_OK;
        }
    }
    for (int l = 1; rc == NK_OK && l < NK_LEVELS; l++) {
        if (v->count[l] > 0) {
            rc = level_iter_new(db, v, l, &kids[n]);
            n += rc == NK_OK;
        }
    }
    nk_iter *merged = NULL;
    if (rc == NK_OK) {
        rc = nk_iter_merge(kids, n, &merged); /* takes the children */
    } else {
        for (size_t i = 0; i < n; i++) {
            nk_iter_free(kids[i]);
        }
    }
    free(kids);
    if (rc != NK_OK) {
        free(di);
        return rc;
    }
    nk_dbiter_options dopt;
    memset(&dopt, 0, sizeof(dopt));
    dopt.snapshot = o->snapshot != 0 ? o->snapshot : db->last_seq;
    dopt.lower = o->lower.len > 0 ? o->lower.data : NULL;
    dopt.lower_len = o->lower.len;
    dopt.upper = o->upper.len > 0 ? o->upper.data : NULL;
    dopt.upper_len = o->upper.len;
    rc = nk_dbiter_new(merged, &dopt, &di->it); /* owns merged, even on error */
    if (rc != NK_OK) {
        free(di);
        return rc;
    }
    di->db = db;
    di->v = v;
    nk_version_ref(v);
    *out = di;
    return NK_OK;
}

void nk_db_iter_free(nk_db_iter *it)
{
    if (it == NULL) {
        return;
    }
    nk_dbiter_free(it->it);
    nk_version_unref(it->v, nk_db_release_file, it->db);
    free(it);
}

bool nk_db_iter_valid(const nk_db_iter *it)
{
    return nk_dbiter_valid(it->it);
}
nk_slice nk_db_iter_key(const nk_db_iter *it)
{
    return nk_dbiter_key(it->it);
}
nk_slice nk_db_iter_value(const nk_db_iter *it)
{
    return nk_dbiter_value(it->it);
}
void nk_db_iter_first(nk_db_iter *it)
{
    nk_dbiter_first(it->it);
}
void nk_db_iter_last(nk_db_iter *it)
{
    nk_dbiter_last(it->it);
}
void nk_db_iter_seek(nk_db_iter *it, const void *key, size_t klen)
{
    nk_dbiter_seek(it->it, key, klen);
}
void nk_db_iter_seek_for_prev(nk_db_iter *it, const void *key, size_t klen)
{
    nk_dbiter_seek_for_prev(it->it, key, klen);
}
void nk_db_iter_next(nk_db_iter *it)
{
    nk_dbiter_next(it->it);
}
void nk_db_iter_prev(nk_db_iter *it)
{
    nk_dbiter_prev(it->it);
}
int nk_db_iter_status(const nk_db_iter *it, nk_errbuf *eb)
{
    return nk_dbiter_status(it->it, eb);
}
