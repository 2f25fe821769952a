/*
 * block.h - sorted key/value blocks with prefix-compressed keys.
 *
 * The unit of an SST: data blocks hold internal keys and values, the index
 * block holds one separator key per data block. A block is built in memory,
 * framed (compressed + checksummed, blockfmt.h) and written; a reader gets
 * the verified, decompressed bytes back and iterates them here.
 *
 * Format (all integers little-endian, varints LEB128 as in coding.h):
 *
 *     entry*        : shared varint | unshared varint | vlen varint
 *                     | key suffix[unshared] | value[vlen]
 *     restart[n]    : u32 each, offset of an entry whose shared == 0
 *     n             : u32
 *
 * Each key is stored as the number of bytes it shares with the previous key
 * plus the rest. Every `restart_interval` entries the full key is stored
 * (shared == 0) and its offset recorded: seek binary-searches the restart
 * keys, then scans at most one interval. An empty block is just n == 0.
 *
 * Reader contract: the bytes are untrusted. Every length and offset is
 * checked before use; malformed input makes the iterator invalid with status
 * NK_ECORRUPT and the byte offset (inside the block) where decoding failed.
 * It never reads outside [data, data + len). Corruption is sticky: after it,
 * every move leaves the iterator invalid. The reader does not verify that
 * keys are sorted (the checksum of the framing layer vouches for the bytes).
 */
#ifndef NK_ENGINE_BLOCK_H
#define NK_ENGINE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/util/err.h"

#define NK_BLOCK_DEFAULT_RESTART_INTERVAL 16u

/* ------------------------------------------------------------ builder --- */

typedef struct nk_block_builder {
    /* private */
    nk_buf buf;      /* entries, then (after finish) the restart array */
    nk_buf restarts; /* encoded u32 restart offsets */
    nk_buf last_key;
    unsigned interval;
    unsigned since_restart;
    size_t count;
    int finished;
} nk_block_builder;

/* restart_interval 0 selects the default; 1 stores every key in full (index
 * blocks, where binary search alone should find the entry). */
void nk_block_builder_init(nk_block_builder *b, unsigned restart_interval);

/* Append an entry. Keys must be added in strictly increasing order of the
 * comparator the readers will use (not checked here: the table builder
 * checks). NK_OK, NK_ENOMEM, NK_ETOOBIG (block would exceed 4 GiB), or
 * NK_EINVAL after finish without reset. */
int nk_block_add(nk_block_builder *b, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen);

/* Encoded size if finished now: used to cut blocks at a target size. */
size_t nk_block_size_estimate(const nk_block_builder *b);
static inline size_t nk_block_count(const nk_block_builder *b)
{
    return b->count;
}
/* The last key added (valid until the next add/reset). */
static inline nk_slice nk_block_last_key(const nk_block_builder *b)
{
    return nk_slice_make(b->last_key.data, b->last_key.len);
}

/* Finish the block; *out borrows the builder's buffer until reset/free. */
int nk_block_finish(nk_block_builder *b, nk_slice *out);
/* Forget everything and start a new block (keeps the buffers). */
void nk_block_reset(nk_block_builder *b);
void nk_block_builder_free(nk_block_builder *b);

/* ------------------------------------------------------------- reader --- */

/* A validated view of an encoded block; borrows data. */
typedef struct nk_block {
    const uint8_t *data;
    size_t len;
    size_t restarts_off; /* end of the entries = start of the restart array */
    uint32_t nrestarts;
} nk_block;

/* Check the restart array (count fits, offsets strictly increasing and inside
 * the entries, first is 0). NK_OK or NK_ECORRUPT with a message naming the
 * offset inside the block (eb may be NULL). */
int nk_block_open(nk_block *blk, const uint8_t *data, size_t len, nk_errbuf *eb);

typedef struct nk_block_iter {
    /* private */
    const nk_block *blk;
    nk_key_cmp cmp;
    size_t cur;      /* offset of the current entry */
    size_t next_off; /* offset of the entry after it */
    uint32_t restart_idx; /* restart interval holding `cur` */
    bool valid;
    int status;             /* NK_OK, NK_ECORRUPT or NK_ENOMEM; sticky */
    size_t err_off;         /* where in the block decoding failed */
    const char *err_reason; /* static text */
    nk_buf key;             /* data is key_inline until a key outgrows it */
    nk_slice val;
    uint8_t key_inline[64]; /* no allocation for ordinary keys */
} nk_block_iter;

/* The block view must outlive the iterator. Starts unpositioned. The
 * iterator points into itself (key_inline): initialise it where it lives and
 * never copy it by value. */
void nk_block_iter_init(nk_block_iter *it, const nk_block *blk, nk_key_cmp cmp);
void nk_block_iter_free(nk_block_iter *it);

static inline bool nk_block_iter_valid(const nk_block_iter *it)
{
    return it->valid;
}
/* Requires valid. key() is valid until the iterator moves; value() borrows
 * the block bytes. */
static inline nk_slice nk_block_iter_key(const nk_block_iter *it)
{
    return nk_slice_make(it->key.data, it->key.len);
}
static inline nk_slice nk_block_iter_value(const nk_block_iter *it)
{
    return it->val;
}
/* NK_OK while no error has been seen. */
static inline int nk_block_iter_status(const nk_block_iter *it)
{
    return it->status;
}
/* Describe the error (offset inside the block and what was wrong). */
void nk_block_iter_error(const nk_block_iter *it, nk_errbuf *eb);

void nk_block_iter_first(nk_block_iter *it);
void nk_block_iter_last(nk_block_iter *it);
/* Requires valid. */
void nk_block_iter_next(nk_block_iter *it);
void nk_block_iter_prev(nk_block_iter *it);
/* First entry >= target. */
void nk_block_iter_seek(nk_block_iter *it, const uint8_t *target, size_t tlen);
/* Last entry <= target. */
void nk_block_iter_seek_for_prev(nk_block_iter *it, const uint8_t *target, size_t tlen);

#endif /* NK_ENGINE_BLOCK_H */
