/*
 * blockfmt.h - how a block is stored in a file: compression + checksum.
 *
 * A framed block is
 *
 *     payload | type u8 | checksum u64 (little-endian)
 *
 *   type      NK_COMP_NONE: payload is the raw block;
 *             NK_COMP_LZ4:  payload is  raw length varint | LZ4 block data.
 *   checksum  XXH64 (seed 0) of payload followed by the type byte.
 *
 * The encoder compresses with LZ4 only when that saves at least 1/8 of the
 * size; otherwise storing raw is cheaper to read. The decoder verifies the
 * checksum over the stored bytes BEFORE looking at the type or decompressing,
 * so damaged bytes never reach LZ4 or the block parser, and a damaged block
 * is reported as NK_ECORRUPT naming its file offset, never returned.
 *
 * Block handles (offset, size) locate a framed block in a file; size covers
 * the whole frame, trailer included. They are encoded as two varints.
 */
#ifndef NK_ENGINE_BLOCKFMT_H
#define NK_ENGINE_BLOCKFMT_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/util/err.h"

#define NK_BLOCK_TRAILER 9u /* type u8 + XXH64 u64 */
/* Largest raw block either side accepts: bounds the decoder's allocation. */
#define NK_BLOCK_MAX_RAW (1u << 30)

typedef enum nk_compression {
    NK_COMP_NONE = 0,
    NK_COMP_LZ4 = 1,
} nk_compression;

/*
 * Frame `raw` and append it to `out`. want = NK_COMP_LZ4 tries compression;
 * NK_COMP_NONE stores raw. *framed_len (may be NULL) gets the bytes appended
 * (what a block handle's size records). NK_OK, NK_ENOMEM, NK_ETOOBIG (raw >
 * NK_BLOCK_MAX_RAW) or NK_EINVAL (unknown compression).
 */
int nk_blockfmt_encode(const uint8_t *raw, size_t len, nk_compression want, nk_buf *out,
                       size_t *framed_len);

/* A decoded block: data/len is the raw block. When `owned` is non-NULL the
 * bytes were decompressed into it (free with nk_block_contents_free);
 * otherwise they borrow the input. */
typedef struct nk_block_contents {
    const uint8_t *data;
    size_t len;
    uint8_t *owned;
} nk_block_contents;

/*
 * Verify and unframe `len` bytes read from file offset `file_off` (used only
 * in messages). NK_OK, NK_ECORRUPT (eb says what and at which offset) or
 * NK_ENOMEM.
 */
int nk_blockfmt_decode(const uint8_t *in, size_t len, uint64_t file_off,
                       nk_block_contents *out, nk_errbuf *eb);
void nk_block_contents_free(nk_block_contents *c);

typedef struct nk_block_handle {
    uint64_t off;
    uint64_t size; /* framed size, trailer included */
} nk_block_handle;

/* Largest encoded handle: two varint64s. */
#define NK_BLOCK_HANDLE_MAX 20u

int nk_block_handle_append(nk_buf *out, nk_block_handle h);
/* Decode from [p, end); *used gets the bytes consumed. NK_ECORRUPT if
 * truncated or malformed. */
int nk_block_handle_decode(const uint8_t *p, const uint8_t *end, nk_block_handle *h,
                           size_t *used);

#endif /* NK_ENGINE_BLOCKFMT_H */
