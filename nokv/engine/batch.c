/* batch.c - write batch building and decoding (see batch.h). */
#include "nokv/engine/batch.h"

#include "nokv/util/coding.h"

/* Reset to an empty batch, keeping the buffer's capacity. */
static int reset(nk_batch *b)
{
    b->count = 0;
    b->bytes_keys_values = 0;
    nk_buf_clear(&b->rep);
    uint8_t hdr[NK_BATCH_HEADER] = {0};
    hdr[0] = NK_BATCH_VERSION;
    return nk_buf_append(&b->rep, hdr, sizeof(hdr));
}

int nk_batch_init(nk_batch *b)
{
    /* A fresh batch: whatever the struct held is ignored (never freed), so
     * an uninitialised struct is fine. Reuse a batch with nk_batch_clear. */
    memset(b, 0, sizeof(*b));
    return reset(b);
}

void nk_batch_free(nk_batch *b)
{
    nk_buf_free(&b->rep);
    b->count = 0;
    b->bytes_keys_values = 0;
}

void nk_batch_clear(nk_batch *b)
{
    (void)reset(b); /* keeps capacity; only a never-used batch allocates */
}

static int ensure_header(nk_batch *b)
{
    return b->rep.len >= NK_BATCH_HEADER ? NK_OK : reset(b);
}

static int add(nk_batch *b, nk_ktype type, const void *key, size_t klen, const void *val,
               size_t vlen)
{
    if (klen == 0 || klen > NK_KEY_MAX || vlen > NK_VALUE_MAX) {
        return NK_EINVAL;
    }
    int rc = ensure_header(b);
    if (rc != NK_OK) {
        return rc;
    }
    size_t need = 1 + NK_VARINT64_MAX + klen + (type == NK_KT_PUT ? NK_VARINT64_MAX + vlen : 0);
    rc = nk_buf_reserve(&b->rep, need);
    if (rc != NK_OK) {
        return rc; /* nothing appended yet: the batch is unchanged */
    }
    /* With the room reserved these appends cannot fail. */
    nk_buf_append_u8(&b->rep, (uint8_t)type);
    nk_buf_append_varint(&b->rep, klen);
    nk_buf_append(&b->rep, key, klen);
    if (type == NK_KT_PUT) {
        nk_buf_append_varint(&b->rep, vlen);
        if (vlen > 0) {
            nk_buf_append(&b->rep, val, vlen);
        }
    }
    b->count++;
    nk_put_u32(b->rep.data + 9, b->count);
    b->bytes_keys_values += klen + vlen;
    return NK_OK;
}

int nk_batch_put(nk_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return add(b, NK_KT_PUT, key, klen, val, vlen);
}

int nk_batch_put2(nk_batch *b, const void *key, size_t klen, const void *v1, size_t l1,
                  const void *v2, size_t l2)
{
    size_t vlen = l1 + l2;
    if (klen == 0 || klen > NK_KEY_MAX || vlen > NK_VALUE_MAX || vlen < l1) {
        return NK_EINVAL;
    }
    int rc = ensure_header(b);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_buf_reserve(&b->rep, 1 + 2 * NK_VARINT64_MAX + klen + vlen);
    if (rc != NK_OK) {
        return rc;
    }
    nk_buf_append_u8(&b->rep, (uint8_t)NK_KT_PUT);
    nk_buf_append_varint(&b->rep, klen);
    nk_buf_append(&b->rep, key, klen);
    nk_buf_append_varint(&b->rep, vlen);
    if (l1 > 0) {
        nk_buf_append(&b->rep, v1, l1);
    }
    if (l2 > 0) {
        nk_buf_append(&b->rep, v2, l2);
    }
    b->count++;
    nk_put_u32(b->rep.data + 9, b->count);
    b->bytes_keys_values += klen + vlen;
    return NK_OK;
}

int nk_batch_delete(nk_batch *b, const void *key, size_t klen)
{
    return add(b, NK_KT_DELETE, key, klen, NULL, 0);
}

void nk_batch_set_seq(nk_batch *b, uint64_t seq)
{
    if (ensure_header(b) == NK_OK) {
        nk_put_u64(b->rep.data + 1, seq);
    }
}

int nk_batch_header(const uint8_t *data, size_t len, uint64_t *seq, uint32_t *count)
{
    if (len < NK_BATCH_HEADER || data[0] != NK_BATCH_VERSION) {
        return NK_ECORRUPT;
    }
    *seq = nk_get_u64(data + 1);
    *count = nk_get_u32(data + 9);
    return NK_OK;
}

int nk_batch_iterate(const uint8_t *data, size_t len, nk_batch_visit_fn fn, void *arg,
                     nk_errbuf *eb)
{
    uint64_t seq;
    uint32_t count;
    if (nk_batch_header(data, len, &seq, &count) != NK_OK) {
        nk_errbuf_set(eb, "write batch: bad header (length %zu)", len);
        return NK_ECORRUPT;
    }
    return nk_batch_iterate_at(data, len, seq, fn, arg, eb);
}

int nk_batch_iterate_at(const uint8_t *data, size_t len, uint64_t seq, nk_batch_visit_fn fn,
                        void *arg, nk_errbuf *eb)
{
    uint64_t stored_seq;
    uint32_t count;
    if (nk_batch_header(data, len, &stored_seq, &count) != NK_OK) {
        nk_errbuf_set(eb, "write batch: bad header (length %zu)", len);
        return NK_ECORRUPT;
    }
    const uint8_t *p = data + NK_BATCH_HEADER;
    const uint8_t *end = data + len;
    for (uint32_t i = 0; i < count; i++) {
        size_t off = (size_t)(p - data);
        if (p >= end || !nk_ktype_valid(*p)) {
            nk_errbuf_set(eb, "write batch: bad record type at offset %zu", off);
            return NK_ECORRUPT;
        }
        nk_ktype type = (nk_ktype)*p++;
        uint64_t klen = 0, vlen = 0;
        size_t n = nk_get_varint64(p, end, &klen);
        if (n == 0 || klen == 0 || klen > NK_KEY_MAX || klen > (uint64_t)(end - p - n)) {
            nk_errbuf_set(eb, "write batch: bad key length at offset %zu", off);
            return NK_ECORRUPT;
        }
        p += n;
        nk_slice key = nk_slice_make(p, (size_t)klen);
        p += klen;
        nk_slice val = nk_slice_make(NULL, 0);
        if (type == NK_KT_PUT) {
            n = nk_get_varint64(p, end, &vlen);
            if (n == 0 || vlen > NK_VALUE_MAX || vlen > (uint64_t)(end - p - n)) {
                nk_errbuf_set(eb, "write batch: bad value length at offset %zu", off);
                return NK_ECORRUPT;
            }
            p += n;
            val = nk_slice_make(p, (size_t)vlen);
            p += vlen;
        }
        int rc = fn(arg, seq + i, type, key, val);
        if (rc != NK_OK) {
            return rc;
        }
    }
    if (p != end) {
        nk_errbuf_set(eb, "write batch: %zu trailing bytes after %u records", (size_t)(end - p),
                      count);
        return NK_ECORRUPT;
    }
    return NK_OK;
}
