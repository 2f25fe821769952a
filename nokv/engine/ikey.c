/* ikey.c - internal key encoding and order. */
#include "nokv/engine/ikey.h"

#include <string.h>

#include "nokv/util/coding.h"
#include "nokv/util/err.h"

size_t nk_ikey_encode(uint8_t *dst, const uint8_t *ukey, size_t ulen, uint64_t seq,
                      nk_ktype type)
{
    if (ulen) {
        memcpy(dst, ukey, ulen);
    }
    nk_put_u64(dst + ulen, nk_ikey_trailer(seq, type));
    return ulen + NK_IKEY_TRAILER;
}

int nk_ikey_append(nk_buf *b, const uint8_t *ukey, size_t ulen, uint64_t seq, nk_ktype type)
{
    int rc = nk_buf_reserve(b, nk_ikey_len(ulen));
    if (rc != NK_OK) {
        return rc;
    }
    b->len += nk_ikey_encode(b->data + b->len, ukey, ulen, seq, type);
    return NK_OK;
}

int nk_ikey_parse(const uint8_t *p, size_t len, nk_ikey *out)
{
    if (len < NK_IKEY_TRAILER) {
        return NK_ECORRUPT;
    }
    uint64_t tr = nk_get_u64(p + len - NK_IKEY_TRAILER);
    unsigned type = (unsigned)(tr & 0xff);
    if (!nk_ktype_valid(type)) {
        return NK_ECORRUPT;
    }
    out->ukey = nk_slice_make(p, len - NK_IKEY_TRAILER);
    out->seq = tr >> 8;
    out->type = (nk_ktype)type;
    return NK_OK;
}

/* 8 bytes as a big-endian number: comparing two is comparing the bytes. */
static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#elif !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
    v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
#endif
    return v;
}

/* nk_bytes_cmp without the memcmp call for short keys (the common case in
 * every seek and skiplist step); same result. */
static inline int user_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    if (n > 64) {
        return nk_bytes_cmp(a, alen, b, blen);
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load_be64(a + i), y = load_be64(b + i);
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    for (; i < n; i++) {
        if (a[i] != b[i]) {
            return a[i] < b[i] ? -1 : 1;
        }
    }
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

int nk_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen < NK_IKEY_TRAILER || blen < NK_IKEY_TRAILER) {
        return nk_bytes_cmp(a, alen, b, blen);
    }
    int c = user_cmp(a, alen - NK_IKEY_TRAILER, b, blen - NK_IKEY_TRAILER);
    if (c != 0) {
        return c;
    }
    uint64_t ta = nk_get_u64(a + alen - NK_IKEY_TRAILER);
    uint64_t tb = nk_get_u64(b + blen - NK_IKEY_TRAILER);
    /* Newer (larger trailer) first. */
    return ta > tb ? -1 : (ta < tb ? 1 : 0);
}
