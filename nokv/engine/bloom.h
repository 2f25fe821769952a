/*
 * bloom.h - per-table bloom filter over user keys.
 *
 * Lets a point read skip an SST that cannot hold the key. Never a false
 * negative: a key that was added always answers "maybe". False positives
 * occur at a rate set by bits per key (default 10 -> about 1%).
 *
 * Hashing: one 64-bit XXH3 hash per key, then double hashing
 * (Kirsch-Mitzenmacher): probe i tests bit (h1 + i * h2) mod nbits, with
 * h1/h2 the two halves of the hash. k = bits_per_key * 0.69 (ln 2), computed
 * in integers so every build makes the same filter.
 *
 * Serialised form (part of the SST format; framed and checksummed by the
 * block layer, see blockfmt.h):
 *
 *     bits[nbytes] | k u8 | scheme u8 (= NK_BLOOM_SCHEME, currently 1)
 *
 * A reader that meets an unknown scheme or an impossible k answers "maybe"
 * for every key (a filter can only save work, never decide correctness);
 * nk_bloom_check tells the table reader the filter is unusable so it can
 * report it.
 */
#ifndef NK_ENGINE_BLOOM_H
#define NK_ENGINE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"

#define NK_BLOOM_DEFAULT_BITS_PER_KEY 10u
#define NK_BLOOM_SCHEME 1u
#define NK_BLOOM_MAX_PROBES 30u

/* The hash a filter is built from and probed with; callers that probe many
 * filters for one key hash once. */
uint64_t nk_bloom_hash(const uint8_t *key, size_t len);

typedef struct nk_bloom_builder {
    /* private */
    uint64_t *hashes;
    size_t count;
    size_t cap;
    unsigned bits_per_key;
} nk_bloom_builder;

/* bits_per_key 0 selects the default; values above 100 are clamped. */
void nk_bloom_builder_init(nk_bloom_builder *b, unsigned bits_per_key);
/* NK_OK or NK_ENOMEM. Adding the same key twice only costs space. */
int nk_bloom_add(nk_bloom_builder *b, const uint8_t *key, size_t len);
int nk_bloom_add_hash(nk_bloom_builder *b, uint64_t h);
static inline size_t nk_bloom_builder_count(const nk_bloom_builder *b)
{
    return b->count;
}
/* Append the serialised filter of every key added so far to `out`, then
 * forget the keys (the builder is reusable). NK_OK or NK_ENOMEM. */
int nk_bloom_finish(nk_bloom_builder *b, nk_buf *out);
void nk_bloom_builder_free(nk_bloom_builder *b);

/* false: key definitely not in the set. true: maybe (or filter unusable). */
bool nk_bloom_may_contain(const uint8_t *filter, size_t len, const uint8_t *key, size_t klen);
bool nk_bloom_may_contain_hash(const uint8_t *filter, size_t len, uint64_t h);

/* NK_OK if the filter is well formed, NK_ECORRUPT otherwise. */
int nk_bloom_check(const uint8_t *filter, size_t len);

#endif /* NK_ENGINE_BLOOM_H */
