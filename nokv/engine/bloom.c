/* bloom.c - double-hashed bloom filter on XXH3. */
#include "nokv/engine/bloom.h"

#include <stdlib.h>

#include <xxhash.h>

#include "nokv/util/err.h"

uint64_t nk_bloom_hash(const uint8_t *key, size_t len)
{
    return XXH3_64bits(key, len);
}

void nk_bloom_builder_init(nk_bloom_builder *b, unsigned bits_per_key)
{
    if (bits_per_key == 0) {
        bits_per_key = NK_BLOOM_DEFAULT_BITS_PER_KEY;
    }
    if (bits_per_key > 100) {
        bits_per_key = 100;
    }
    b->hashes = NULL;
    b->count = 0;
    b->cap = 0;
    b->bits_per_key = bits_per_key;
}

int nk_bloom_add_hash(nk_bloom_builder *b, uint64_t h)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        if (cap > SIZE_MAX / sizeof(uint64_t)) {
            return NK_ENOMEM;
        }
        uint64_t *p = realloc(b->hashes, cap * sizeof(uint64_t));
        if (p == NULL) {
            return NK_ENOMEM;
        }
        b->hashes = p;
        b->cap = cap;
    }
    b->hashes[b->count++] = h;
    return NK_OK;
}

int nk_bloom_add(nk_bloom_builder *b, const uint8_t *key, size_t len)
{
    return nk_bloom_add_hash(b, nk_bloom_hash(key, len));
}

/* Probe positions: h1 + i*h2 in 64-bit arithmetic, reduced mod nbits. The
 * odd h2 can never be 0, so the k probes never collapse onto one bit. */
static inline uint64_t probe_h2(uint64_t h)
{
    return (h >> 32) | 1;
}

int nk_bloom_finish(nk_bloom_builder *b, nk_buf *out)
{
    unsigned k = (b->bits_per_key * 69 + 50) / 100; /* round(bits * ln 2) */
    if (k < 1) {
        k = 1;
    }
    if (k > NK_BLOOM_MAX_PROBES) {
        k = NK_BLOOM_MAX_PROBES;
    }
    /* A floor of 64 bits keeps tiny filters from saturating. */
    uint64_t nbits = (uint64_t)b->count * b->bits_per_key;
    if (nbits < 64) {
        nbits = 64;
    }
    size_t nbytes = (size_t)((nbits + 7) / 8);
    nbits = (uint64_t)nbytes * 8;
    int rc = nk_buf_reserve(out, nbytes + 2);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *bits = out->data + out->len;
    memset(bits, 0, nbytes);
    for (size_t i = 0; i < b->count; i++) {
        uint64_t h1 = b->hashes[i] & 0xffffffffu, h2 = probe_h2(b->hashes[i]);
        for (unsigned j = 0; j < k; j++) {
            uint64_t bit = (h1 + (uint64_t)j * h2) % nbits;
            bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        }
    }
    bits[nbytes] = (uint8_t)k;
    bits[nbytes + 1] = (uint8_t)NK_BLOOM_SCHEME;
    out->len += nbytes + 2;
    b->count = 0;
    return NK_OK;
}

void nk_bloom_builder_free(nk_bloom_builder *b)
{
    free(b->hashes);
    b->hashes = NULL;
    b->count = 0;
    b->cap = 0;
}

int nk_bloom_check(const uint8_t *filter, size_t len)
{
    if (len < 3 || filter[len - 1] != NK_BLOOM_SCHEME || filter[len - 2] < 1 ||
        filter[len - 2] > NK_BLOOM_MAX_PROBES) {
        return NK_ECORRUPT;
    }
    return NK_OK;
}

bool nk_bloom_may_contain_hash(const uint8_t *filter, size_t len, uint64_t h)
{
    if (nk_bloom_check(filter, len) != NK_OK) {
        return true;
    }
    unsigned k = filter[len - 2];
    uint64_t nbits = (uint64_t)(len - 2) * 8;
    uint64_t h1 = h & 0xffffffffu, h2 = probe_h2(h);
    for (unsigned j = 0; j < k; j++) {
        uint64_t bit = (h1 + (uint64_t)j * h2) % nbits;
        if ((filter[bit >> 3] & (1u << (bit & 7))) == 0) {
            return false;
        }
    }
    return true;
}

bool nk_bloom_may_contain(const uint8_t *filter, size_t len, const uint8_t *key, size_t klen)
{
    return nk_bloom_may_contain_hash(filter, len, nk_bloom_hash(key, klen));
}
