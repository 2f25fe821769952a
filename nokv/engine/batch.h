/*
 * batch.h - atomic write batches and their encoding.
 *
 * A batch is the unit of atomicity: all of its operations get consecutive
 * sequence numbers and reach the WAL as one record, so after a crash either
 * all of them are recovered or none is.
 *
 * Encoding (also the WAL payload, see docs/formats.md):
 *     version u8 (= 1) | base seq u64 | count u32
 *     then `count` records: type u8 (NK_KT_PUT / NK_KT_DELETE)
 *                           | varint key length | key
 *                           | (put only) varint value length | value
 * Record i gets sequence number base + i. The base is written when the batch
 * is committed (nk_batch_set_seq); building a batch never needs it.
 */
#ifndef NK_ENGINE_BATCH_H
#define NK_ENGINE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/ikey.h"
#include "nokv/engine/slice.h"
#include "nokv/util/err.h"

#define NK_BATCH_VERSION 1u
#define NK_BATCH_HEADER 13u /* version + seq + count */
/*
 * Size limits. One write (a whole batch, encoded) must fit in one WAL record
 * (NK_LOGREC_MAX_PAYLOAD, 128 MiB): a batch is atomic because it is one
 * record. The value limit leaves room in that record for the largest key and
 * the batch framing, so a batch of one put of a NK_VALUE_MAX value always
 * fits; the RESP server's bulk limit (NK_SERVE_MAX_VALUE, standalone.h) sits
 * just below it, leaving room for the command layer's value envelope.
 * nk_db_write refuses a larger batch alone with NK_ETOOBIG: an oversized
 * request never reaches the WAL, so it cannot fail the engine.
 */
#define NK_KEY_MAX (64u * 1024u)                   /* largest user key */
#define NK_BATCH_MAX_BYTES (128u * 1024u * 1024u)  /* one encoded batch */
#define NK_VALUE_MAX ((127u * 1024u * 1024u) + 64u) /* largest value */

typedef struct nk_batch {
    nk_buf rep; /* header + records */
    uint32_t count;
    size_t bytes_keys_values; /* payload bytes, for accounting */
} nk_batch;

/* Start a fresh batch (the struct's previous contents are ignored, not
 * freed). Zero-initialised batches are also valid and empty. To reuse a
 * batch and keep its buffer, use nk_batch_clear. Decoding enforces the
 * same key and value limits as building. */
int nk_batch_init(nk_batch *b);
void nk_batch_free(nk_batch *b);
void nk_batch_clear(nk_batch *b);

/* Add operations. NK_EINVAL for an empty key, a key over NK_KEY_MAX or a value
 * over NK_VALUE_MAX; NK_ENOMEM. On error the batch is unchanged. */
int nk_batch_put(nk_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int nk_batch_delete(nk_batch *b, const void *key, size_t klen);
/* A put whose value is v1 ‖ v2. */
int nk_batch_put2(nk_batch *b, const void *key, size_t klen, const void *v1, size_t l1,
                  const void *v2, size_t l2);

static inline uint32_t nk_batch_count(const nk_batch *b)
{
    return b->count;
}

/* Stamp the base sequence number into the encoding (at commit time). */
void nk_batch_set_seq(nk_batch *b, uint64_t seq);

/* The encoded bytes (header + records). */
static inline nk_slice nk_batch_data(const nk_batch *b)
{
    return nk_slice_make(b->rep.data, b->rep.len);
}

/* Visit each operation of an encoded batch in order. The callback returns
 * NK_OK to go on or an error to stop (returned as is). A malformed encoding
 * is NK_ECORRUPT with the offset in eb. */
typedef int (*nk_batch_visit_fn)(void *arg, uint64_t seq, nk_ktype type, nk_slice key,
                                 nk_slice value);
int nk_batch_iterate(const uint8_t *data, size_t len, nk_batch_visit_fn fn, void *arg,
                     nk_errbuf *eb);

/* The same, numbering the records from `seq` instead of the base sequence
 * stored in the encoding (the write path stamps the sequence into the WAL
 * record without copying the caller's batch). */
int nk_batch_iterate_at(const uint8_t *data, size_t len, uint64_t seq, nk_batch_visit_fn fn,
                        void *arg, nk_errbuf *eb);

/* Header fields of an encoded batch (NK_ECORRUPT if too short or wrong version). */
int nk_batch_header(const uint8_t *data, size_t len, uint64_t *seq, uint32_t *count);

#endif /* NK_ENGINE_BATCH_H */
