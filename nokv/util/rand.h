/*
 * rand.h - seeded, integer-only pseudo-random streams.
 *
 * Every random decision in NoKV-C (raft election jitter, simulated faults,
 * workload keys) draws from an nk_rand stream. A stream is xoshiro256**
 * seeded through splitmix64. Streams are *named*: nk_rand_derive() mixes a
 * root seed with a name and an id, so adding a new consumer never shifts
 * the draws of the existing ones (a failing seed stays a failing seed).
 *
 * No floating point: probabilities are rationals (num/den), so results are
 * identical on every compiler and libm.
 */
#ifndef NK_UTIL_RAND_H
#define NK_UTIL_RAND_H

#include <stdbool.h>
#include <stdint.h>

typedef struct nk_rand {
    uint64_t s[4];
} nk_rand;

/* One splitmix64 step: advances *state and returns a well-mixed value. */
uint64_t nk_splitmix64(uint64_t *state);

/* Seed a stream directly from a 64-bit value. */
void nk_rand_seed(nk_rand *r, uint64_t seed);

/* Seed a stream from (root seed, name, id): stable, independent streams. */
void nk_rand_derive(nk_rand *r, uint64_t root, const char *name, uint64_t id);

/* Next raw 64-bit value. */
uint64_t nk_rand_next(nk_rand *r);

/* Uniform in [0, n); n == 0 returns 0. Unbiased (rejection sampling). */
uint64_t nk_rand_below(nk_rand *r, uint64_t n);

/* Uniform in [lo, hi] inclusive; requires lo <= hi. */
uint64_t nk_rand_between(nk_rand *r, uint64_t lo, uint64_t hi);

/* True with probability num/den (den > 0; num >= den is always true). */
bool nk_rand_chance(nk_rand *r, uint64_t num, uint64_t den);

/* Fill buf with random bytes. */
void nk_rand_bytes(nk_rand *r, void *buf, uint64_t len);

#endif /* NK_UTIL_RAND_H */
