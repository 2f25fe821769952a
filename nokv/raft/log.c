/*
 * log.c - the raft log: a bounded in-memory tail over the host's storage.
 *
 * The log covers (snap_index, last]. Memory holds (mem_prev, last]: every
 * entry the host has not acknowledged durable (the "unstable" tail the next
 * Ready hands out) plus a bounded window of recent stable ones, which serves
 * followers that keep up without touching storage. Without a storage
 * (cfg.storage.entries NULL) nothing is ever dropped and mem_prev stays at
 * snap_index, which is the old all-in-memory behaviour.
 *
 * Entries in (snap_index, mem_prev] are read back through the storage
 * callbacks. That range is always inside the durable prefix (mem_prev <=
 * stable), so whatever the host returns there is what raft handed it; any
 * failure is recorded in l->err and the caller decides nothing from it.
 *
 * The tail is an array with a moving head: dropping from the front is O(1)
 * amortised (the live part moves down only when the head passed half the
 * capacity), and the array shrinks when it is mostly empty, so a burst of
 * unstable entries does not pin its peak allocation forever.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"
#include "nokv/util/assert.h"

void nk_rlog_init(nk_rlog *l, const nk_raft_storage *st)
{
    memset(l, 0, sizeof(*l));
    if (st != NULL && st->entries != NULL && st->term != NULL) {
        l->st = *st;
    }
}

static nk_raft_entry *mem_at(const nk_rlog *l, size_t k)
{
    return &l->ents[l->head + k];
}

static void clear_mem(nk_rlog *l)
{
    for (size_t k = 0; k < l->len; k++) {
        nk_raft_entry_clear(mem_at(l, k));
    }
    l->head = 0;
    l->len = 0;
    l->mem_bytes = 0;
}

void nk_rlog_free(nk_rlog *l)
{
    clear_mem(l);
    free(l->ents);
    memset(l, 0, sizeof(*l));
}

bool nk_rlog_has_storage(const nk_rlog *l)
{
    return l->st.entries != NULL;
}

uint64_t nk_rlog_last(const nk_rlog *l)
{
    return l->mem_prev + l->len;
}

uint64_t nk_rlog_last_term(const nk_rlog *l)
{
    return l->len ? mem_at(l, l->len - 1)->term : l->mem_prev_term;
}

int nk_rlog_term_peek(const nk_rlog *l, uint64_t i, uint64_t *t)
{
    if (i == l->mem_prev) {
        *t = l->mem_prev_term;
        return NK_OK;
    }
    if (i == l->snap_index) {
        *t = l->snap_term;
        return NK_OK;
    }
    if (i < l->snap_index || i > nk_rlog_last(l)) {
        return NK_ENOENT;
    }
    if (i > l->mem_prev) {
        *t = mem_at(l, (size_t)(i - l->mem_prev - 1))->term;
        return NK_OK;
    }
    /* snap_index < i < mem_prev: only a storage makes mem_prev move. */
    NK_ASSERT(nk_rlog_has_storage(l));
    if (l->err != NK_OK) {
        return l->err;
    }
    int rc = l->st.term(l->st.ctx, i, t);
    /* The entry is inside the durable prefix: "not found" means the host
     * lost it, which is corruption, not compaction. */
    return rc == NK_ENOENT ? NK_ECORRUPT : rc;
}

static void record(nk_rlog *l, int rc)
{
    if (rc != NK_OK && rc != NK_ENOENT && l->err == NK_OK) {
        l->err = rc;
    }
}

int nk_rlog_term(nk_rlog *l, uint64_t i, uint64_t *t)
{
    int rc = nk_rlog_term_peek(l, i, t);
    if (rc != NK_OK && rc != NK_ENOENT && i > l->snap_index && i < l->mem_prev) {
        record(l, rc);
    }
    return rc;
}

uint64_t nk_rlog_term0(nk_rlog *l, uint64_t i)
{
    uint64_t t = 0;
    if (nk_rlog_term(l, i, &t) != NK_OK) {
        return 0;
    }
    return t;
}

bool nk_rlog_match(nk_rlog *l, uint64_t i, uint64_t t)
{
    uint64_t lt;
    return nk_rlog_term(l, i, &lt) == NK_OK && lt == t;
}

const nk_raft_entry *nk_rlog_at(const nk_rlog *l, uint64_t i)
{
    if (i <= l->mem_prev || i > nk_rlog_last(l)) {
        return NULL;
    }
    return mem_at(l, (size_t)(i - l->mem_prev - 1));
}

/* Room for one more entry at the end of the tail. */
static int reserve(nk_rlog *l)
{
    if (l->head + l->len < l->cap) {
        return NK_OK;
    }
    if (l->head > 0 && l->head >= l->cap / 2) {
        memmove(l->ents, l->ents + l->head, l->len * sizeof(*l->ents));
        l->head = 0;
        return NK_OK;
    }
    size_t ncap = l->cap ? l->cap * 2 : 64;
    nk_raft_entry *n = realloc(l->ents, ncap * sizeof(*n));
    if (!n) {
        return NK_ENOMEM;
    }
    l->ents = n;
    l->cap = ncap;
    return NK_OK;
}

/* Give back most of an array that a burst grew: keep 2x the live part. */
static void maybe_shrink(nk_rlog *l)
{
    if (l->cap <= 256 || l->len >= l->cap / 4) {
        return;
    }
    if (l->head > 0) {
        memmove(l->ents, l->ents + l->head, l->len * sizeof(*l->ents));
        l->head = 0;
    }
    size_t ncap = l->cap / 2;
    nk_raft_entry *n = realloc(l->ents, ncap * sizeof(*n));
    if (n) { /* on failure the bigger array simply stays */
        l->ents = n;
        l->cap = ncap;
    }
}

int nk_rentry_copy(nk_raft_entry *dst, const nk_raft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len) {
        dst->data = malloc(src->len);
        if (!dst->data) {
            dst->len = 0;
            return NK_ENOMEM;
        }
        memcpy(dst->data, src->data, src->len);
    }
    return NK_OK;
}

int nk_rlog_append_copy(nk_rlog *l, const nk_raft_entry *e)
{
    if (e->index != nk_rlog_last(l) + 1) {
        return NK_EINVAL;
    }
    int rc = reserve(l);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_rentry_copy(mem_at(l, l->len), e);
    if (rc != NK_OK) {
        return rc;
    }
    l->len++;
    l->mem_bytes += e->len;
    return NK_OK;
}

int nk_rlog_append_owned(nk_rlog *l, uint64_t term, uint8_t type, uint8_t *data, size_t len)
{
    int rc = reserve(l);
    if (rc != NK_OK) {
        free(data);
        return rc;
    }
    nk_raft_entry *e = mem_at(l, l->len);
    e->term = term;
    e->index = nk_rlog_last(l) + 1;
    e->type = type;
    e->data = len ? data : NULL;
    e->len = len;
    if (!len) {
        free(data);
    }
    l->len++;
    l->mem_bytes += len;
    return NK_OK;
}

int nk_rlog_truncate_from(nk_rlog *l, uint64_t i)
{
    if (i > nk_rlog_last(l)) {
        return NK_OK;
    }
    if (i <= l->snap_index) {
        i = l->snap_index + 1;
    }
    if (i <= l->mem_prev) {
        /* The cut is below the tail (an uncommitted stable stretch that was
         * dropped from memory): the new boundary's term comes from storage. */
        uint64_t t;
        int rc = nk_rlog_term(l, i - 1, &t);
        if (rc != NK_OK) {
            return rc;
        }
        clear_mem(l);
        l->mem_prev = i - 1;
        l->mem_prev_term = t;
    } else {
        size_t keep = (size_t)(i - l->mem_prev - 1);
        for (size_t k = keep; k < l->len; k++) {
            l->mem_bytes -= mem_at(l, k)->len;
            nk_raft_entry_clear(mem_at(l, k));
        }
        l->len = keep;
    }
    /* The host's durable copy of the dropped tail is replaced when the new
     * entries are handed out, so they are no longer "stable". */
    if (l->stable > nk_rlog_last(l)) {
        l->stable = nk_rlog_last(l);
    }
    return NK_OK;
}

bool nk_rlog_up_to_date(const nk_rlog *l, uint64_t term, uint64_t index)
{
    uint64_t lt = nk_rlog_last_term(l);
    return term > lt || (term == lt && index >= nk_rlog_last(l));
}

uint64_t nk_rlog_find_conflict_by_term(nk_rlog *l, uint64_t index, uint64_t term)
{
    if (index > nk_rlog_last(l)) {
        index = nk_rlog_last(l);
    }
    /* Bounded by index - snap_index steps. */
    while (index > l->snap_index) {
        uint64_t t;
        if (nk_rlog_term(l, index, &t) != NK_OK || t <= term) {
            return index;
        }
        index--;
    }
    return index;
}

int nk_rlog_compact(nk_rlog *l, uint64_t i)
{
    if (i <= l->snap_index || i > nk_rlog_last(l)) {
        return NK_OK;
    }
    uint64_t t;
    int rc = nk_rlog_term(l, i, &t);
    if (rc != NK_OK) {
        return rc;
    }
    if (i > l->mem_prev) {
        size_t drop = (size_t)(i - l->mem_prev);
        for (size_t k = 0; k < drop; k++) {
            l->mem_bytes -= mem_at(l, k)->len;
            nk_raft_entry_clear(mem_at(l, k));
        }
        l->head += drop;
        l->len -= drop;
        if (l->len == 0) {
            l->head = 0;
        }
        l->mem_prev = i;
        l->mem_prev_term = t;
        maybe_shrink(l);
    }
    l->snap_index = i;
    l->snap_term = t;
    if (l->stable < i) {
        l->stable = i; /* covered by the host's durable snapshot */
    }
    return NK_OK;
}

void nk_rlog_reset(nk_rlog *l, uint64_t snap_index, uint64_t snap_term)
{
    clear_mem(l);
    maybe_shrink(l);
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->mem_prev = snap_index;
    l->mem_prev_term = snap_term;
    l->stable = snap_index;
    l->committed = snap_index;
    l->applying = snap_index;
    l->applied = snap_index;
}

static void free_array(nk_raft_entry *a, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        nk_raft_entry_clear(&a[k]);
    }
    free(a);
}

/* Read [lo, hi] (hi <= mem_prev) back from the storage into *out, checking
 * that the host returned what was asked for. */
static int read_back(nk_rlog *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                     nk_raft_entry **out, size_t *n)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    nk_raft_entry *a = NULL;
    size_t na = 0;
    int rc = l->st.entries(l->st.ctx, lo, hi + 1, max_bytes, &a, &na);
    if (rc == NK_ENOENT) {
        rc = NK_ECORRUPT; /* inside the durable prefix: lost, not compacted */
    }
    if (rc == NK_OK && (na == 0 || na > hi - lo + 1)) {
        rc = NK_ECORRUPT;
    }
    for (size_t k = 0; rc == NK_OK && k < na; k++) {
        /* Terms never decrease along a log, so every stored entry's term
         * lies between the snapshot's and the tail boundary's. */
        if (a[k].index != lo + k || (a[k].len > 0 && a[k].data == NULL) ||
            (k > 0 && a[k].term < a[k - 1].term) || a[k].term < l->snap_term ||
            a[k].term > l->mem_prev_term) {
            rc = NK_ECORRUPT;
        }
    }
    /* The read-back stretch must join the tail: same term at mem_prev. */
    if (rc == NK_OK && a[na - 1].index == l->mem_prev && a[na - 1].term != l->mem_prev_term) {
        rc = NK_ECORRUPT;
    }
    if (rc != NK_OK) {
        if (a) {
            free_array(a, na);
        }
        record(l, rc);
        return rc;
    }
    l->readbacks += na;
    *out = a;
    *n = na;
    return NK_OK;
}

int nk_rlog_slice(nk_rlog *l, uint64_t lo, uint64_t hi, uint64_t max_bytes, nk_raft_entry **out,
                  size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo > hi) {
        return NK_OK;
    }
    if (lo <= l->snap_index || hi > nk_rlog_last(l)) {
        return NK_ENOENT;
    }
    nk_raft_entry *a = NULL;
    size_t na = 0;
    uint64_t bytes = 0;
    if (lo <= l->mem_prev) {
        uint64_t sh = hi < l->mem_prev ? hi : l->mem_prev;
        int rc = read_back(l, lo, sh, max_bytes, &a, &na);
        if (rc != NK_OK) {
            return rc;
        }
        for (size_t k = 0; k < na; k++) {
            bytes += a[k].len;
        }
        if (lo + na - 1 < sh || hi == sh) {
            *out = a; /* the byte limit stopped the storage, or nothing more wanted */
            *n = na;
            return NK_OK;
        }
        lo = sh + 1;
    }
    /* The in-memory part, continuing the same byte budget. */
    size_t cnt = 0;
    for (uint64_t i = lo; i <= hi; i++) {
        const nk_raft_entry *e = nk_rlog_at(l, i);
        if ((na + cnt) > 0 && max_bytes && bytes + e->len > max_bytes) {
            break;
        }
        bytes += e->len;
        cnt++;
    }
    nk_raft_entry *arr = realloc(a, (na + cnt ? na + cnt : 1) * sizeof(*arr));
    if (!arr) {
        if (a) {
            free_array(a, na);
        }
        return NK_ENOMEM;
    }
    memset(arr + na, 0, cnt * sizeof(*arr));
    for (size_t k = 0; k < cnt; k++) {
        if (nk_rentry_copy(&arr[na + k], nk_rlog_at(l, lo + k)) != NK_OK) {
            free_array(arr, na + k);
            return NK_ENOMEM;
        }
    }
    *out = arr;
    *n = na + cnt;
    return NK_OK;
}

void nk_rlog_trim(nk_rlog *l, uint64_t max_entries, uint64_t max_bytes)
{
    if (!nk_rlog_has_storage(l) || l->len == 0) {
        return;
    }
    uint64_t floor = l->stable < l->applied ? l->stable : l->applied;
    size_t drop = 0;
    uint64_t bytes = l->mem_bytes;
    /* Bounded by len. */
    while (drop < l->len && l->mem_prev + drop + 1 <= floor) {
        bool over = (max_entries && l->len - drop > max_entries) ||
                    (max_bytes && bytes > max_bytes);
        if (!over) {
            break;
        }
        bytes -= mem_at(l, drop)->len;
        drop++;
    }
    if (drop == 0) {
        return;
    }
    uint64_t t = mem_at(l, drop - 1)->term;
    for (size_t k = 0; k < drop; k++) {
        nk_raft_entry_clear(mem_at(l, k));
    }
    l->head += drop;
    l->len -= drop;
    if (l->len == 0) {
        l->head = 0;
    }
    l->mem_bytes = bytes;
    l->mem_prev += drop;
    l->mem_prev_term = t;
    maybe_shrink(l);
}
