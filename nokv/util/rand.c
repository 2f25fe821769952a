/* rand.c - xoshiro256** streams seeded by splitmix64. */
#include "nokv/util/rand.h"

#include <string.h>

#include <xxhash.h>

uint64_t nk_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nk_rand_seed(nk_rand *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = nk_splitmix64(&st);
    }
    /* xoshiro must not start from the all-zero state; splitmix64 makes that
     * practically impossible, but keep the invariant explicit. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) {
        r->s[0] = 1;
    }
}

void nk_rand_derive(nk_rand *r, uint64_t root, const char *name, uint64_t id)
{
    uint64_t h = XXH64(name, strlen(name), root);
    uint64_t st = h ^ (id * 0x9e3779b97f4a7c15ULL);
    nk_rand_seed(r, nk_splitmix64(&st));
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t nk_rand_next(nk_rand *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t nk_rand_below(nk_rand *r, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* Reject the top partial bucket so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = nk_rand_next(r);
    } while (x >= limit);
    return x % n;
}

uint64_t nk_rand_between(nk_rand *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    if (lo == 0 && hi == UINT64_MAX) {
        return nk_rand_next(r);
    }
    return lo + nk_rand_below(r, hi - lo + 1);
}

bool nk_rand_chance(nk_rand *r, uint64_t num, uint64_t den)
{
    if (den == 0 || num == 0) {
        return false;
    }
    if (num >= den) {
        return true;
    }
    return nk_rand_below(r, den) < num;
}

void nk_rand_bytes(nk_rand *r, void *buf, uint64_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t v = nk_rand_next(r);
        uint64_t n = len < 8 ? len : 8;
        memcpy(p, &v, (size_t)n);
        p += n;
        len -= n;
    }
}
