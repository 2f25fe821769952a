/* block.c - prefix-compressed block builder and bounds-checked reader. */
#include "nokv/engine/block.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/util/coding.h"

/* ------------------------------------------------------------ builder --- */

void nk_block_builder_init(nk_block_builder *b, unsigned restart_interval)
{
    memset(b, 0, sizeof *b);
    b->interval = restart_interval ? restart_interval : NK_BLOCK_DEFAULT_RESTART_INTERVAL;
}

size_t nk_block_size_estimate(const nk_block_builder *b)
{
    if (b->finished) {
        return b->buf.len;
    }
    return b->buf.len + b->restarts.len + 4;
}

int nk_block_add(nk_block_builder *b, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen)
{
    if (b->finished) {
        return NK_EINVAL;
    }
    /* Offsets are u32 in the format: refuse anything that could overflow. */
    size_t worst = 3 * NK_VARINT64_MAX + 4;
    if (klen > UINT32_MAX || vlen > UINT32_MAX ||
        (uint64_t)nk_block_size_estimate(b) + worst + klen + vlen > UINT32_MAX) {
        return NK_ETOOBIG;
    }
    /* Reserve everything first so the appends below cannot fail half-way
     * and leave a half-written entry behind. */
    int rc = nk_buf_reserve(&b->buf, worst + klen + vlen);
    if (rc == NK_OK) {
        rc = nk_buf_reserve(&b->restarts, 4);
    }
    if (rc == NK_OK && klen > b->last_key.len) {
        rc = nk_buf_reserve(&b->last_key, klen - b->last_key.len);
    }
    if (rc != NK_OK) {
        return rc;
    }
    size_t shared = 0;
    if (b->count == 0 || b->since_restart >= b->interval) {
        (void)nk_buf_append_u32(&b->restarts, (uint32_t)b->buf.len);
        b->since_restart = 0;
    } else {
        size_t max = klen < b->last_key.len ? klen : b->last_key.len;
        while (shared < max && key[shared] == b->last_key.data[shared]) {
            shared++;
        }
    }
    (void)nk_buf_append_varint(&b->buf, shared);
    (void)nk_buf_append_varint(&b->buf, klen - shared);
    (void)nk_buf_append_varint(&b->buf, vlen);
    (void)nk_buf_append(&b->buf, key + shared, klen - shared);
    (void)nk_buf_append(&b->buf, val, vlen);
    b->last_key.len = shared; /* keep the common prefix, append the rest */
    (void)nk_buf_append(&b->last_key, key + shared, klen - shared);
    b->since_restart++;
    b->count++;
    return NK_OK;
}

int nk_block_finish(nk_block_builder *b, nk_slice *out)
{
    if (!b->finished) {
        int rc = nk_buf_reserve(&b->buf, b->restarts.len + 4);
        if (rc != NK_OK) {
            return rc;
        }
        (void)nk_buf_append(&b->buf, b->restarts.data, b->restarts.len);
        (void)nk_buf_append_u32(&b->buf, (uint32_t)(b->restarts.len / 4));
        b->finished = 1;
    }
    *out = nk_slice_make(b->buf.data, b->buf.len);
    return NK_OK;
}

void nk_block_reset(nk_block_builder *b)
{
    nk_buf_clear(&b->buf);
    nk_buf_clear(&b->restarts);
    nk_buf_clear(&b->last_key);
    b->since_restart = 0;
    b->count = 0;
    b->finished = 0;
}

void nk_block_builder_free(nk_block_builder *b)
{
    nk_buf_free(&b->buf);
    nk_buf_free(&b->restarts);
    nk_buf_free(&b->last_key);
    b->count = 0;
    b->finished = 0;
}

/* ------------------------------------------------------------- reader --- */

static inline uint32_t restart_at(const nk_block *blk, uint32_t i)
{
    return nk_get_u32(blk->data + blk->restarts_off + 4 * (size_t)i);
}

int nk_block_open(nk_block *blk, const uint8_t *data, size_t len, nk_errbuf *eb)
{
    if (len < 4) {
        nk_errbuf_set(eb, "block of %zu bytes is shorter than its restart count", len);
        return NK_ECORRUPT;
    }
    uint32_t n = nk_get_u32(data + len - 4);
    if (n > (len - 4) / 4) {
        nk_errbuf_set(eb, "block restart count %u does not fit in %zu bytes (at offset %zu)",
                      n, len, len - 4);
        return NK_ECORRUPT;
    }
    blk->data = data;
    blk->len = len;
    blk->nrestarts = n;
    blk->restarts_off = len - 4 - 4 * (size_t)n;
    if (n == 0 && blk->restarts_off != 0) {
        nk_errbuf_set(eb, "block has %zu bytes of entries but no restart points",
                      blk->restarts_off);
        return NK_ECORRUPT;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = restart_at(blk, i);
        bool ok = (i == 0) ? r == 0 : r > restart_at(blk, i - 1);
        if (!ok || r >= blk->restarts_off) {
            nk_errbuf_set(eb, "block restart point %u = %u is out of order or out of range "
                              "(entries end at %zu; at offset %zu)",
                          i, r, blk->restarts_off, blk->restarts_off + 4 * (size_t)i);
            return NK_ECORRUPT;
        }
    }
    return NK_OK;
}

void nk_block_iter_init(nk_block_iter *it, const nk_block *blk, nk_key_cmp cmp)
{
    memset(it, 0, offsetof(nk_block_iter, key_inline));
    it->blk = blk;
    it->cmp = cmp;
    it->status = NK_OK;
    it->key.data = it->key_inline;
    it->key.cap = sizeof it->key_inline;
}

void nk_block_iter_free(nk_block_iter *it)
{
    if (it->key.data != it->key_inline) {
        free(it->key.data);
    }
    it->key.data = it->key_inline;
    it->key.len = 0;
    it->key.cap = sizeof it->key_inline;
    it->valid = false;
}

/* Room for a key of n bytes, keeping the first it->key.len. */
static bool key_room(nk_block_iter *it, size_t n)
{
    size_t cap = it->key.cap * 2;
    if (cap < n) {
        cap = n;
    }
    uint8_t *d = malloc(cap);
    if (d == NULL) {
        return false;
    }
    memcpy(d, it->key.data, it->key.len);
    if (it->key.data != it->key_inline) {
        free(it->key.data);
    }
    it->key.data = d;
    it->key.cap = cap;
    return true;
}

/* One-byte varints are the common case (lengths < 128). */
static inline size_t get_varint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    if (p < end && p[0] < 0x80) {
        *out = p[0];
        return 1;
    }
    return nk_get_varint64(p, end, out);
}

void nk_block_iter_error(const nk_block_iter *it, nk_errbuf *eb)
{
    if (it->status == NK_OK) {
        nk_errbuf_set(eb, "no error");
    } else if (it->status == NK_ENOMEM) {
        nk_errbuf_set(eb, "out of memory while decoding block entry at offset %zu",
                      it->err_off);
    } else {
        nk_errbuf_set(eb, "corrupt block entry at offset %zu: %s", it->err_off,
                      it->err_reason ? it->err_reason : "malformed");
    }
}

static bool fail(nk_block_iter *it, int status, size_t off, const char *reason)
{
    it->status = status;
    it->err_off = off;
    it->err_reason = reason;
    it->valid = false;
    return false;
}

/* Position before the entry at restart point idx. */
static void seek_restart(nk_block_iter *it, uint32_t idx)
{
    it->restart_idx = idx;
    it->key.len = 0;
    it->next_off = restart_at(it->blk, idx);
    it->valid = false;
}

/* Decode the entry at next_off. false at the end of the entries (valid ==
 * false, status OK) or on an error (status set). */
static bool parse_next(nk_block_iter *it)
{
    const nk_block *blk = it->blk;
    size_t off = it->next_off;
    if (off >= blk->restarts_off) {
        it->valid = false;
        return false;
    }
    /* Track the restart interval. A restart point that falls inside an entry
     * means the two views of the block (scan vs. seek) disagree. */
    while (it->restart_idx + 1 < blk->nrestarts && restart_at(blk, it->restart_idx + 1) <= off) {
        if (restart_at(blk, it->restart_idx + 1) < off) {
            return fail(it, NK_ECORRUPT, off, "restart point inside an entry");
        }
        it->restart_idx++;
    }
    bool at_restart = restart_at(blk, it->restart_idx) == off;
    const uint8_t *p = blk->data + off;
    const uint8_t *end = blk->data + blk->restarts_off;
    uint64_t shared, unshared, vlen;
    size_t n;
    if ((n = get_varint(p, end, &shared)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad shared-length varint");
    }
    p += n;
    if ((n = get_varint(p, end, &unshared)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad key-length varint");
    }
    p += n;
    if ((n = get_varint(p, end, &vlen)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad value-length varint");
    }
    p += n;
    if (at_restart && shared != 0) {
        return fail(it, NK_ECORRUPT, off, "restart entry shares a prefix");
    }
    if (shared > it->key.len) {
        return fail(it, NK_ECORRUPT, off, "shared prefix longer than the previous key");
    }
    size_t room = (size_t)(end - p);
    if (unshared > room || vlen > room - unshared) {
        return fail(it, NK_ECORRUPT, off, "entry runs past the end of the block");
    }
    it->key.len = (size_t)shared;
    size_t klen = (size_t)shared + (size_t)unshared;
    if (klen > it->key.cap && !key_room(it, klen)) {
        return fail(it, NK_ENOMEM, off, "out of memory");
    }
    memcpy(it->key.data + shared, p, (size_t)unshared);
    it->key.len = klen;
    it->val = nk_slice_make(p + unshared, (size_t)vlen);
    it->cur = off;
    it->next_off = (size_t)(p + unshared + vlen - blk->data);
    it->valid = true;
    return true;
}

void nk_block_iter_first(nk_block_iter *it)
{
    if (it->status != NK_OK || it->blk->nrestarts == 0) {
        it->valid = false;
        return;
    }
    seek_restart(it, 0);
    (void)parse_next(it);
}

void nk_block_iter_last(nk_block_iter *it)
{
    if (it->status != NK_OK || it->blk->nrestarts == 0) {
        it->valid = false;
        return;
    }
    seek_restart(it, it->blk->nrestarts - 1);
    if (!parse_next(it)) {
        return;
    }
    while (it->next_off < it->blk->restarts_off) {
        if (!parse_next(it)) {
            return;
        }
    }
}

void nk_block_iter_next(nk_block_iter *it)
{
    if (it->status != NK_OK || !it->valid) {
        it->valid = false;
        return;
    }
    (void)parse_next(it);
}

void nk_block_iter_prev(nk_block_iter *it)
{
    if (it->status != NK_OK || !it->valid) {
        it->valid = false;
        return;
    }
    size_t orig = it->cur;
    uint32_t r = it->restart_idx;
    while (restart_at(it->blk, r) >= orig) {
        if (r == 0) {
            it->valid = false; /* was at the first entry */
            return;
        }
        r--;
    }
    seek_restart(it, r);
    /* Each entry is at least 3 bytes, so this scans at most one interval. */
    do {
        if (!parse_next(it)) {
            if (it->status == NK_OK) {
                fail(it, NK_ECORRUPT, orig, "entry chain does not reach the current entry");
            }
            return;
        }
    } while (it->next_off < orig);
    if (it->next_off != orig) {
        fail(it, NK_ECORRUPT, it->cur, "entry overlaps the next one");
    }
}

/* The key of the entry at restart point idx, in place, with the checks
 * parse_next makes of a restart entry (the restart array itself was checked
 * by nk_block_open). false with the iterator failed on damage. */
static bool restart_key(nk_block_iter *it, uint32_t idx, nk_slice *key)
{
    const nk_block *blk = it->blk;
    size_t off = restart_at(blk, idx);
    const uint8_t *p = blk->data + off;
    const uint8_t *end = blk->data + blk->restarts_off;
    uint64_t shared, unshared, vlen;
    size_t n;
    if ((n = get_varint(p, end, &shared)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad shared-length varint");
    }
    p += n;
    if ((n = get_varint(p, end, &unshared)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad key-length varint");
    }
    p += n;
    if ((n = get_varint(p, end, &vlen)) == 0) {
        return fail(it, NK_ECORRUPT, off, "bad value-length varint");
    }
    p += n;
    if (shared != 0) {
        return fail(it, NK_ECORRUPT, off, "restart entry shares a prefix");
    }
    size_t room = (size_t)(end - p);
    if (unshared > room || vlen > room - unshared) {
        return fail(it, NK_ECORRUPT, off, "entry runs past the end of the block");
    }
    *key = nk_slice_make(p, (size_t)unshared);
    return true;
}

void nk_block_iter_seek(nk_block_iter *it, const uint8_t *target, size_t tlen)
{
    if (it->status != NK_OK || it->blk->nrestarts == 0) {
        it->valid = false;
        return;
    }
    /* Largest restart whose key is < target; scan from there. A restart
     * entry holds its whole key, compared in place. */
    uint32_t left = 0, right = it->blk->nrestarts - 1;
    while (left < right) {
        uint32_t mid = left + (right - left + 1) / 2;
        nk_slice rk;
        if (!restart_key(it, mid, &rk)) {
            return;
        }
        if (it->cmp(rk.data, rk.len, target, tlen) < 0) {
            left = mid;
        } else {
            right = mid - 1;
        }
    }
    seek_restart(it, left);
    while (parse_next(it)) {
        if (it->cmp(it->key.data, it->key.len, target, tlen) >= 0) {
            return;
        }
    }
}

void nk_block_iter_seek_for_prev(nk_block_iter *it, const uint8_t *target, size_t tlen)
{
    nk_block_iter_seek(it, target, tlen);
    if (it->status != NK_OK) {
        return;
    }
    if (!it->valid) {
        nk_block_iter_last(it);
    } else if (it->cmp(it->key.data, it->key.len, target, tlen) > 0) {
        nk_block_iter_prev(it);
    }
}
