/*
 * log.c - the in-memory raft log: every entry after the snapshot boundary.
 *
 * Raft keeps the whole uncompacted log in memory (the host bounds it with
 * nk_raft_compact), so terms and entries are always available without
 * reading storage. `stable` marks the durable prefix; entries above it are
 * the "unstable" tail that the next Ready hands to the host.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"

void nk_rlog_init(nk_rlog *l)
{
    memset(l, 0, sizeof(*l));
}

void nk_rlog_free(nk_rlog *l)
{
    for (size_t k = 0; k < l->len; k++) {
        nk_raft_entry_clear(&l->ents[k]);
    }
    free(l->ents);
    memset(l, 0, sizeof(*l));
}

uint64_t nk_rlog_last(const nk_rlog *l)
{
    return l->snap_index + l->len;
}

uint64_t nk_rlog_last_term(const nk_rlog *l)
{
    return l->len ? l->ents[l->len - 1].term : l->snap_term;
}

int nk_rlog_term(const nk_rlog *l, uint64_t i, uint64_t *t)
{
    if (i == l->snap_index) {
        *t = l->snap_term;
        return NK_OK;
    }
    if (i < l->snap_index || i > nk_rlog_last(l)) {
        return NK_ENOENT;
    }
    *t = l->ents[i - l->snap_index - 1].term;
    return NK_OK;
}

uint64_t nk_rlog_term0(const nk_rlog *l, uint64_t i)
{
    uint64_t t = 0;
    if (nk_rlog_term(l, i, &t) != NK_OK) {
        return 0;
    }
    return t;
}

bool nk_rlog_match(const nk_rlog *l, uint64_t i, uint64_t t)
{
    uint64_t lt;
    return nk_rlog_term(l, i, &lt) == NK_OK && lt == t;
}

const nk_raft_entry *nk_rlog_at(const nk_rlog *l, uint64_t i)
{
    if (i <= l->snap_index || i > nk_rlog_last(l)) {
        return NULL;
    }
    return &l->ents[i - l->snap_index - 1];
}

static int reserve(nk_rlog *l)
{
    if (l->len < l->cap) {
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
    rc = nk_rentry_copy(&l->ents[l->len], e);
    if (rc != NK_OK) {
        return rc;
    }
    l->len++;
    return NK_OK;
}

int nk_rlog_append_owned(nk_rlog *l, uint64_t term, uint8_t type, uint8_t *data, size_t len)
{
    int rc = reserve(l);
    if (rc != NK_OK) {
        free(data);
        return rc;
    }
    nk_raft_entry *e = &l->ents[l->len];
    e->term = term;
    e->index = nk_rlog_last(l) + 1;
    e->type = type;
    e->data = len ? data : NULL;
    e->len = len;
    if (!len) {
        free(data);
    }
    l->len++;
    return NK_OK;
}

void nk_rlog_truncate_from(nk_rlog *l, uint64_t i)
{
    if (i > nk_rlog_last(l)) {
        return;
    }
    if (i <= l->snap_index) {
        i = l->snap_index + 1;
    }
    size_t keep = (size_t)(i - l->snap_index - 1);
    for (size_t k = keep; k < l->len; k++) {
        nk_raft_entry_clear(&l->ents[k]);
    }
    l->len = keep;
    /* The host's durable copy of the dropped tail is replaced when the new
     * entries are handed out, so they are no longer "stable". */
    if (l->stable > nk_rlog_last(l)) {
        l->stable = nk_rlog_last(l);
    }
}

bool nk_rlog_up_to_date(const nk_rlog *l, uint64_t term, uint64_t index)
{
    uint64_t lt = nk_rlog_last_term(l);
    return term > lt || (term == lt && index >= nk_rlog_last(l));
}

uint64_t nk_rlog_find_conflict_by_term(const nk_rlog *l, uint64_t index, uint64_t term)
{
    if (index > nk_rlog_last(l)) {
        index = nk_rlog_last(l);
    }
    while (index > l->snap_index) {
        if (l->ents[index - l->snap_index - 1].term <= term) {
            return index;
        }
        index--;
    }
    return index;
}

void nk_rlog_compact(nk_rlog *l, uint64_t i)
{
    if (i <= l->snap_index || i > nk_rlog_last(l)) {
        return;
    }
    size_t drop = (size_t)(i - l->snap_index);
    uint64_t t = l->ents[drop - 1].term;
    for (size_t k = 0; k < drop; k++) {
        nk_raft_entry_clear(&l->ents[k]);
    }
    memmove(l->ents, l->ents + drop, (l->len - drop) * sizeof(*l->ents));
    l->len -= drop;
    l->snap_index = i;
    l->snap_term = t;
    if (l->stable < i) {
        l->stable = i; /* covered by the host's durable snapshot */
    }
}

void nk_rlog_reset(nk_rlog *l, uint64_t snap_index, uint64_t snap_term)
{
    for (size_t k = 0; k < l->len; k++) {
        nk_raft_entry_clear(&l->ents[k]);
    }
    l->len = 0;
    l->snap_index = snap_index;
    l->snap_term = snap_term;
    l->stable = snap_index;
    l->committed = snap_index;
    l->applying = snap_index;
    l->applied = snap_index;
}

int nk_rlog_slice(const nk_rlog *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                  nk_raft_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo > hi) {
        return NK_OK;
    }
    if (lo <= l->snap_index || hi > nk_rlog_last(l)) {
        return NK_ENOENT;
    }
    size_t cnt = 0;
    uint64_t bytes = 0;
    for (uint64_t i = lo; i <= hi; i++) {
        const nk_raft_entry *e = nk_rlog_at(l, i);
        if (cnt > 0 && max_bytes && bytes + e->len > max_bytes) {
            break;
        }
        bytes += e->len;
        cnt++;
    }
    nk_raft_entry *arr = calloc(cnt, sizeof(*arr));
    if (!arr) {
        return NK_ENOMEM;
    }
    for (size_t k = 0; k < cnt; k++) {
        if (nk_rentry_copy(&arr[k], nk_rlog_at(l, lo + k)) != NK_OK) {
            for (size_t j = 0; j < k; j++) {
                nk_raft_entry_clear(&arr[j]);
            }
            free(arr);
            return NK_ENOMEM;
        }
    }
    *out = arr;
    *n = cnt;
    return NK_OK;
}
