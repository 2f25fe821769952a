/*
 * slice.h - borrowed byte ranges and growable byte buffers for the engine.
 *
 * nk_slice never owns its bytes: whoever hands one out states how long the
 * bytes stay valid (e.g. "until the memtable is freed", "until the iterator
 * moves"). nk_buf owns a malloc'd buffer and reports NK_ENOMEM instead of
 * aborting, so an engine can fail a write cleanly under memory pressure.
 */
#ifndef NK_ENGINE_SLICE_H
#define NK_ENGINE_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct nk_slice {
    const uint8_t *data;
    size_t len;
} nk_slice;

static inline nk_slice nk_slice_make(const void *data, size_t len)
{
    nk_slice s = {(const uint8_t *)data, len};
    return s;
}

/* Bytewise three-way comparison; a proper prefix sorts first. */
static inline int nk_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* A key comparator: three-way, over two encoded keys. The engine uses two:
 * nk_bytes_cmp (user keys) and nk_ikey_cmp (internal keys, ikey.h). */
typedef int (*nk_key_cmp)(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Growable owned buffer. Zero-initialise ({0}) to get an empty buffer. */
typedef struct nk_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} nk_buf;

/* Ensure room for `extra` more bytes. NK_OK or NK_ENOMEM (buffer unchanged). */
int nk_buf_reserve(nk_buf *b, size_t extra);
int nk_buf_append(nk_buf *b, const void *data, size_t len);
int nk_buf_append_u8(nk_buf *b, uint8_t v);
int nk_buf_append_u32(nk_buf *b, uint32_t v); /* little-endian */
int nk_buf_append_u64(nk_buf *b, uint64_t v); /* little-endian */
int nk_buf_append_varint(nk_buf *b, uint64_t v);
/* Replace the contents with `data` (which must not point into b). */
int nk_buf_assign(nk_buf *b, const void *data, size_t len);
static inline void nk_buf_clear(nk_buf *b)
{
    b->len = 0;
}
void nk_buf_free(nk_buf *b);

#endif /* NK_ENGINE_SLICE_H */
