/* iter.c - nk_iter adapters (memtable, table) and the merging iterator. */
#include "nokv/engine/iter.h"

#include <stdlib.h>

#include "nokv/engine/ikey.h"

void nk_iter_free(nk_iter *it)
{
    if (it != NULL) {
        it->ops->destroy(it);
    }
}

/* ----------------------------------------------------------- memtable --- */

typedef struct mem_iter {
    nk_iter base;
    nk_memtable_iter it;
} mem_iter;

static bool mem_valid(const nk_iter *it)
{
    return nk_skiplist_iter_valid(&((const mem_iter *)it)->it);
}
static void mem_first(nk_iter *it)
{
    nk_skiplist_iter_first(&((mem_iter *)it)->it);
}
static void mem_last(nk_iter *it)
{
    nk_skiplist_iter_last(&((mem_iter *)it)->it);
}
static void mem_seek(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_skiplist_iter_seek(&((mem_iter *)it)->it, k, n);
}
static void mem_seek_for_prev(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_skiplist_iter_seek_for_prev(&((mem_iter *)it)->it, k, n);
}
static void mem_next(nk_iter *it)
{
    nk_skiplist_iter_next(&((mem_iter *)it)->it);
}
static void mem_prev(nk_iter *it)
{
    nk_skiplist_iter_prev(&((mem_iter *)it)->it);
}
static nk_slice mem_key(const nk_iter *it)
{
    return nk_skiplist_iter_key(&((const mem_iter *)it)->it);
}
static nk_slice mem_value(const nk_iter *it)
{
    return nk_skiplist_iter_value(&((const mem_iter *)it)->it);
}
static int mem_status(const nk_iter *it, nk_errbuf *eb)
{
    (void)it;
    (void)eb;
    return NK_OK; /* memory cannot be corrupt in a way we could detect */
}
static void mem_destroy(nk_iter *it)
{
    free(it);
}

static const nk_iter_ops mem_ops = {
    mem_valid, mem_first, mem_last,  mem_seek,  mem_seek_for_prev, mem_next,
    mem_prev,  mem_key,   mem_value, mem_status, mem_destroy,
};

int nk_iter_memtable(const nk_memtable *m, nk_iter **out)
{
    mem_iter *it = malloc(sizeof *it);
    if (it == NULL) {
        return NK_ENOMEM;
    }
    it->base.ops = &mem_ops;
    nk_memtable_iter_init(&it->it, m);
    *out = &it->base;
    return NK_OK;
}

/* -------------------------------------------------------------- table --- */

typedef struct sst_iter {
    nk_iter base;
    nk_sst_iter *it;
} sst_iter;

static bool sst_valid(const nk_iter *it)
{
    return nk_sst_iter_valid(((const sst_iter *)it)->it);
}
static void sst_first(nk_iter *it)
{
    nk_sst_iter_first(((sst_iter *)it)->it);
}
static void sst_last(nk_iter *it)
{
    nk_sst_iter_last(((sst_iter *)it)->it);
}
static void sst_seek(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_sst_iter_seek(((sst_iter *)it)->it, k, n);
}
static void sst_seek_for_prev(nk_iter *it, const uint8_t *k, size_t n)
{
    nk_sst_iter_seek_for_prev(((sst_iter *)it)->it, k, n);
}
static void sst_next(nk_iter *it)
{
    nk_sst_iter_next(((sst_iter *)it)->it);
}
static void sst_prev(nk_iter *it)
{
    nk_sst_iter_prev(((sst_iter *)it)->it);
}
static nk_slice sst_key(const nk_iter *it)
{
    return nk_sst_iter_key(((const sst_iter *)it)->it);
}
static nk_slice sst_value(const nk_iter *it)
{
    return nk_sst_iter_value(((const sst_iter *)it)->it);
}
static int sst_status(const nk_iter *it, nk_errbuf *eb)
{
    return nk_sst_iter_status(((const sst_iter *)it)->it, eb);
}
static void sst_destroy(nk_iter *it)
{
    nk_sst_iter_free(((sst_iter *)it)->it);
    free(it);
}

static const nk_iter_ops sst_ops = {
    sst_valid, sst_first, sst_last,  sst_seek,   sst_seek_for_prev, sst_next,
    sst_prev,  sst_key,   sst_value, sst_status, sst_destroy,
};

int nk_iter_sst(nk_sst *t, unsigned flags, nk_iter **out)
{
    sst_iter *it = malloc(sizeof *it);
    if (it == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_sst_iter_new(t, flags, &it->it);
    if (rc != NK_OK) {
        free(it);
        return rc;
    }
    it->base.ops = &sst_ops;
    *out = &it->base;
    return NK_OK;
}

/* -------------------------------------------------------------- merge --- */

/*
 * Invariant, forward: every child is at an entry > the last yielded key (or
 * exhausted), and cur is the lowest-indexed child holding the smallest key.
 * Reverse: every child is at an entry < the last yielded key, cur holds the
 * largest. Moving consumes the yielded key in *every* child that holds it,
 * which is what removes duplicates across children.
 */
typedef struct merge_iter {
    nk_iter base;
    nk_iter **kids;
    size_t n;
    size_t cur; /* n: invalid */
    bool forward;
    int status;
    nk_errbuf err;
    nk_buf saved; /* next/prev: the current key, reused (no allocation per step) */
} merge_iter;

static int kid_cmp(const merge_iter *m, size_t a, size_t b)
{
    nk_slice x = nk_iter_key(m->kids[a]), y = nk_iter_key(m->kids[b]);
    return nk_ikey_cmp(x.data, x.len, y.data, y.len);
}

/* Pick the current child; record the first child error. */
static void pick(merge_iter *m)
{
    m->cur = m->n;
    for (size_t i = 0; i < m->n; i++) {
        if (!nk_iter_valid(m->kids[i])) {
            int rc = nk_iter_status(m->kids[i], &m->err);
            if (rc != NK_OK) {
                m->status = rc;
                m->cur = m->n;
                return;
            }
            continue;
        }
        if (m->cur == m->n) {
            m->cur = i;
            continue;
        }
        int c = kid_cmp(m, i, m->cur);
        if (m->forward ? c < 0 : c > 0) {
            m->cur = i; /* strict: ties keep the lower index */
        }
    }
}

static bool merge_valid(const nk_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return m->status == NK_OK && m->cur < m->n;
}

static void merge_first(nk_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    if (m->status != NK_OK) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        nk_iter_first(m->kids[i]);
    }
    m->forward = true;
    pick(m);
}

static void merge_last(nk_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    if (m->status != NK_OK) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        nk_iter_last(m->kids[i]);
    }
    m->forward = false;
    pick(m);
}

static void merge_seek(nk_iter *it, const uint8_t *k, size_t klen)
{
    merge_iter *m = (merge_iter *)it;
    if (m->status != NK_OK) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        nk_iter_seek(m->kids[i], k, klen);
    }
    m->forward = true;
    pick(m);
}

static void merge_seek_for_prev(nk_iter *it, const uint8_t *k, size_t klen)
{
    merge_iter *m = (merge_iter *)it;
    if (m->status != NK_OK) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        nk_iter_seek_for_prev(m->kids[i], k, klen);
    }
    m->forward = false;
    pick(m);
}

/* Copy of the current key: children move underneath it. */
static bool save_key(merge_iter *m, nk_buf *b)
{
    nk_slice k = nk_iter_key(m->kids[m->cur]);
    if (nk_buf_assign(b, k.data, k.len) != NK_OK) {
        m->status = NK_ENOMEM;
        nk_errbuf_set(&m->err, "merge iterator: out of memory");
        m->cur = m->n;
        return false;
    }
    return true;
}

static bool kid_at(const merge_iter *m, size_t i, const nk_buf *k)
{
    if (!nk_iter_valid(m->kids[i])) {
        return false;
    }
    nk_slice x = nk_iter_key(m->kids[i]);
    return nk_ikey_cmp(x.data, x.len, k->data, k->len) == 0;
}

static void merge_next(nk_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    if (!merge_valid(it)) {
        return;
    }
    nk_buf *k = &m->saved;
    if (!save_key(m, k)) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (!m->forward) {
            /* Reverse -> forward: bring every child to the first entry
             * after k (they are all before it now). */
            nk_iter_seek(m->kids[i], k->data, k->len);
        }
        if (kid_at(m, i, k)) {
            nk_iter_next(m->kids[i]);
        }
    }
    m->forward = true;
    pick(m);
}

static void merge_prev(nk_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    if (!merge_valid(it)) {
        return;
    }
    nk_buf *k = &m->saved;
    if (!save_key(m, k)) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (m->forward) {
            nk_iter_seek_for_prev(m->kids[i], k->data, k->len);
        }
        if (kid_at(m, i, k)) {
            nk_iter_prev(m->kids[i]);
        }
    }
    m->forward = false;
    pick(m);
}

static nk_slice merge_key(const nk_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return nk_iter_key(m->kids[m->cur]);
}

static nk_slice merge_value(const nk_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return nk_iter_value(m->kids[m->cur]);
}

static int merge_status(const nk_iter *it, nk_errbuf *eb)
{
    const merge_iter *m = (const merge_iter *)it;
    if (m->status != NK_OK && eb != NULL) {
        *eb = m->err;
    }
    return m->status;
}

static void merge_destroy(nk_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++) {
        nk_iter_free(m->kids[i]);
    }
    free(m->kids);
    nk_buf_free(&m->saved);
    free(m);
}

static const nk_iter_ops merge_ops = {
    merge_valid, merge_first, merge_last,  merge_seek,   merge_seek_for_prev, merge_next,
    merge_prev,  merge_key,   merge_value, merge_status, merge_destroy,
};

int nk_iter_merge(nk_iter **children, size_t n, nk_iter **out)
{
    merge_iter *m = calloc(1, sizeof *m);
    nk_iter **kids = calloc(n ? n : 1, sizeof *kids);
    if (m == NULL || kids == NULL) {
        free(m);
        free(kids);
        for (size_t i = 0; i < n; i++) {
            nk_iter_free(children[i]);
        }
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        kids[i] = children[i];
    }
    m->base.ops = &merge_ops;
    m->kids = kids;
    m->n = n;
    m->cur = n;
    m->forward = true;
    m->status = NK_OK;
    *out = &m->base;
    return NK_OK;
}
