/*
 * dbiter.c - user-visible iteration over internal keys.
 *
 * Forward: the internal iterator sits ON the entry being shown (the newest
 * visible version of the current key). Reverse: it sits just BEFORE every
 * entry of the current key, and the key/value shown are copies in
 * saved_key/saved_val (the walk backwards meets a key's versions oldest
 * first, so the newest visible one is only known once the walk has passed
 * them all).
 */
#include "nokv/engine/dbiter.h"

#include <stdlib.h>

#include "nokv/engine/ikey.h"

struct nk_dbiter {
    nk_iter *in;
    uint64_t snap;
    nk_buf lower, upper;
    bool has_lower, has_upper;
    bool valid;
    bool forward;
    nk_buf saved_key; /* forward: key being skipped; reverse: current key */
    nk_buf saved_val; /* reverse: current value */
    nk_buf tmp;       /* seek keys */
    int status;
    nk_errbuf err;
};

int nk_dbiter_new(nk_iter *internal, const nk_dbiter_options *o, nk_dbiter **out)
{
    nk_dbiter *it = calloc(1, sizeof *it);
    if (it == NULL) {
        nk_iter_free(internal);
        return NK_ENOMEM;
    }
    it->in = internal;
    it->snap = o->snapshot > NK_SEQ_MAX ? NK_SEQ_MAX : o->snapshot;
    it->forward = true;
    int rc = NK_OK;
    if (o->lower != NULL) {
        it->has_lower = true;
        rc = nk_buf_assign(&it->lower, o->lower, o->lower_len);
    }
    if (rc == NK_OK && o->upper != NULL) {
        it->has_upper = true;
        rc = nk_buf_assign(&it->upper, o->upper, o->upper_len);
    }
    if (rc != NK_OK) {
        nk_dbiter_free(it);
        return rc;
    }
    *out = it;
    return NK_OK;
}

void nk_dbiter_free(nk_dbiter *it)
{
    if (it == NULL) {
        return;
    }
    nk_iter_free(it->in);
    nk_buf_free(&it->lower);
    nk_buf_free(&it->upper);
    nk_buf_free(&it->saved_key);
    nk_buf_free(&it->saved_val);
    nk_buf_free(&it->tmp);
    free(it);
}

static void fail(nk_dbiter *it, int rc, const char *what)
{
    it->valid = false;
    if (it->status != NK_OK) {
        return;
    }
    it->status = rc;
    if (what != NULL) {
        nk_errbuf_set(&it->err, "iterator: %s", what);
    }
}

/* Record the internal iterator's error if it stopped on one. */
static void check_in(nk_dbiter *it)
{
    if (!nk_iter_valid(it->in)) {
        int rc = nk_iter_status(it->in, &it->err);
        if (rc != NK_OK) {
            fail(it, rc, NULL);
        }
    }
}

static bool parse_in(nk_dbiter *it, nk_ikey *ik)
{
    nk_slice k = nk_iter_key(it->in);
    if (nk_ikey_parse(k.data, k.len, ik) != NK_OK) {
        fail(it, NK_ECORRUPT, "malformed internal key in the merged stream");
        return false;
    }
    return true;
}

static inline int ucmp(nk_slice a, const nk_buf *b)
{
    return nk_bytes_cmp(a.data, a.len, b->data, b->len);
}

static bool save(nk_dbiter *it, nk_buf *dst, nk_slice s)
{
    if (nk_buf_assign(dst, s.data, s.len) != NK_OK) {
        fail(it, NK_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

/* Forward: from the internal position, find the next visible put. With
 * `skipping`, entries of user keys <= saved_key are hidden. */
static void find_next(nk_dbiter *it, bool skipping)
{
    it->valid = false;
    while (it->status == NK_OK && nk_iter_valid(it->in)) {
        nk_ikey ik;
        if (!parse_in(it, &ik)) {
            return;
        }
        if (it->has_upper && ucmp(ik.ukey, &it->upper) >= 0) {
            return;
        }
        if (ik.seq <= it->snap) {
            if (ik.type == NK_KT_DELETE) {
                if (!save(it, &it->saved_key, ik.ukey)) {
                    return;
                }
                skipping = true;
            } else if (!skipping || ucmp(ik.ukey, &it->saved_key) > 0) {
                it->valid = true;
                return;
            }
        }
        nk_iter_next(it->in);
    }
    check_in(it);
}

/* Reverse: walk back over the previous user key's versions and keep the
 * newest visible one; skip keys whose newest visible version is a delete. */
static void find_prev(nk_dbiter *it)
{
    bool have = false; /* saved_key/saved_val hold a visible put */
    it->valid = false;
    while (it->status == NK_OK && nk_iter_valid(it->in)) {
        nk_ikey ik;
        if (!parse_in(it, &ik)) {
            return;
        }
        if (it->has_lower && ucmp(ik.ukey, &it->lower) < 0) {
            break;
        }
        if (!(it->has_upper && ucmp(ik.ukey, &it->upper) >= 0) && ik.seq <= it->snap) {
            if (have && ucmp(ik.ukey, &it->saved_key) < 0) {
                break; /* passed every version of the saved key */
            }
            if (ik.type == NK_KT_DELETE) {
                have = false;
            } else {
                if (!save(it, &it->saved_key, ik.ukey) ||
                    !save(it, &it->saved_val, nk_iter_value(it->in))) {
                    return;
                }
                have = true;
            }
        }
        nk_iter_prev(it->in);
    }
    check_in(it);
    it->valid = have && it->status == NK_OK;
}

bool nk_dbiter_valid(const nk_dbiter *it)
{
    return it->valid;
}

nk_slice nk_dbiter_key(const nk_dbiter *it)
{
    if (it->forward) {
        nk_slice k = nk_iter_key(it->in);
        return nk_ikey_user(k.data, k.len);
    }
    return nk_slice_make(it->saved_key.data, it->saved_key.len);
}

nk_slice nk_dbiter_value(const nk_dbiter *it)
{
    if (it->forward) {
        return nk_iter_value(it->in);
    }
    return nk_slice_make(it->saved_val.data, it->saved_val.len);
}

/* Internal seek key for (ukey, seq, type) in tmp. */
static bool seek_key(nk_dbiter *it, const uint8_t *ukey, size_t len, uint64_t seq,
                     nk_ktype type)
{
    nk_buf_clear(&it->tmp);
    if (nk_ikey_append(&it->tmp, ukey, len, seq, type) != NK_OK) {
        fail(it, NK_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

void nk_dbiter_seek(nk_dbiter *it, const uint8_t *ukey, size_t len)
{
    if (it->status != NK_OK) {
        return;
    }
    if (it->has_lower && nk_bytes_cmp(ukey, len, it->lower.data, it->lower.len) < 0) {
        ukey = it->lower.data;
        len = it->lower.len;
    }
    /* (ukey, snap, SEEK) sorts before every version of ukey visible at snap. */
    if (!seek_key(it, ukey, len, it->snap, NK_KT_SEEK)) {
        return;
    }
    nk_iter_seek(it->in, it->tmp.data, it->tmp.len);
    it->forward = true;
    find_next(it, false);
}

void nk_dbiter_first(nk_dbiter *it)
{
    if (it->status != NK_OK) {
        return;
    }
    if (it->has_lower) {
        nk_dbiter_seek(it, it->lower.data, it->lower.len);
        return;
    }
    nk_iter_first(it->in);
    it->forward = true;
    find_next(it, false);
}

void nk_dbiter_last(nk_dbiter *it)
{
    if (it->status != NK_OK) {
        return;
    }
    if (it->has_upper) {
        /* Last entry before every version of `upper`. */
        if (!seek_key(it, it->upper.data, it->upper.len, NK_SEQ_MAX, NK_KT_SEEK)) {
            return;
        }
        nk_iter_seek_for_prev(it->in, it->tmp.data, it->tmp.len);
    } else {
        nk_iter_last(it->in);
    }
    it->forward = false;
    find_prev(it);
}

void nk_dbiter_seek_for_prev(nk_dbiter *it, const uint8_t *ukey, size_t len)
{
    if (it->status != NK_OK) {
        return;
    }
    if (it->has_upper && nk_bytes_cmp(ukey, len, it->upper.data, it->upper.len) >= 0) {
        nk_dbiter_last(it);
        return;
    }
    /* (ukey, 0, DELETE) is the largest internal key of ukey: land on its
     * oldest version, or before it. */
    if (!seek_key(it, ukey, len, 0, NK_KT_DELETE)) {
        return;
    }
    nk_iter_seek_for_prev(it->in, it->tmp.data, it->tmp.len);
    it->forward = false;
    find_prev(it);
}

void nk_dbiter_next(nk_dbiter *it)
{
    if (!it->valid) {
        return;
    }
    if (!it->forward) {
        /* The internal iterator is just before the current key's versions
         * (or exhausted at the front); step onto them, then skip them. */
        it->forward = true;
        if (nk_iter_valid(it->in)) {
            nk_iter_next(it->in);
        } else {
            nk_iter_first(it->in);
        }
    } else {
        nk_slice k = nk_dbiter_key(it);
        if (!save(it, &it->saved_key, k)) {
            return;
        }
        nk_iter_next(it->in);
    }
    find_next(it, true);
}

void nk_dbiter_prev(nk_dbiter *it)
{
    if (!it->valid) {
        return;
    }
    if (it->forward) {
        /* Step back past every version of the current key (some may be
         * newer than the snapshot and sit before the shown one). */
        if (!save(it, &it->saved_key, nk_dbiter_key(it))) {
            return;
        }
        for (;;) {
            nk_iter_prev(it->in);
            if (!nk_iter_valid(it->in)) {
                break;
            }
            nk_ikey ik;
            if (!parse_in(it, &ik)) {
                return;
            }
            if (ucmp(ik.ukey, &it->saved_key) < 0) {
                break;
            }
        }
        it->forward = false;
    }
    find_prev(it);
}

int nk_dbiter_status(const nk_dbiter *it, nk_errbuf *eb)
{
    if (it->status != NK_OK && eb != NULL) {
        *eb = it->err;
    }
    return it->status;
}
