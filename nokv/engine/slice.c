/* slice.c - nk_buf growth. Doubling keeps appends amortised O(1). */
#include "nokv/engine/slice.h"

#include <stdlib.h>

#include "nokv/util/coding.h"
#include "nokv/util/err.h"

int nk_buf_reserve(nk_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len) {
        return NK_ENOMEM;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return NK_OK;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return NK_OK;
}

int nk_buf_append(nk_buf *b, const void *data, size_t len)
{
    int rc = nk_buf_reserve(b, len);
    if (rc != NK_OK) {
        return rc;
    }
    if (len) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    return NK_OK;
}

int nk_buf_append_u8(nk_buf *b, uint8_t v)
{
    return nk_buf_append(b, &v, 1);
}

int nk_buf_append_u32(nk_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    nk_put_u32(tmp, v);
    return nk_buf_append(b, tmp, sizeof tmp);
}

int nk_buf_append_u64(nk_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    nk_put_u64(tmp, v);
    return nk_buf_append(b, tmp, sizeof tmp);
}

int nk_buf_append_varint(nk_buf *b, uint64_t v)
{
    /* Encoded in place: the hottest append of block and codec building
     * (a temporary plus a memcpy call per varint showed in profiles). */
    if (b->cap - b->len < NK_VARINT64_MAX) {
        int rc = nk_buf_reserve(b, NK_VARINT64_MAX);
        if (rc != NK_OK) {
            return rc;
        }
    }
    b->len += nk_put_varint64(b->data + b->len, v);
    return NK_OK;
}

int nk_buf_assign(nk_buf *b, const void *data, size_t len)
{
    b->len = 0;
    return nk_buf_append(b, data, len);
}

void nk_buf_free(nk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
