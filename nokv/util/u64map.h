/*
 * u64map.h - a map from non-zero uint64 ids to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion. Keys are
 * the sequence-number ids the runtime hands out (timers, connections), so the
 * hash is a fixed mixer, never seeded from the OS: the same operations give
 * the same layout, and iteration order (nk_u64map_next) is deterministic.
 * Callers that expose an order to the outside world should still sort.
 */
#ifndef NK_UTIL_U64MAP_H
#define NK_UTIL_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct nk_u64map_slot {
    uint64_t key; /* 0 = empty */
    void *value;
} nk_u64map_slot;

typedef struct nk_u64map {
    nk_u64map_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} nk_u64map;

void nk_u64map_init(nk_u64map *m);
void nk_u64map_free(nk_u64map *m);

/* Insert or replace. key must be non-zero. NK_OK or NK_ENOMEM. */
int nk_u64map_put(nk_u64map *m, uint64_t key, void *value);

/* The value, or NULL when absent. */
void *nk_u64map_get(const nk_u64map *m, uint64_t key);

/* Remove and return the value (NULL when absent). */
void *nk_u64map_del(nk_u64map *m, uint64_t key);

/* Iterate: start with *pos = 0; returns 1 and fills key/value, or 0 at the end.
 * The map must not be modified during iteration. */
int nk_u64map_next(const nk_u64map *m, size_t *pos, uint64_t *key, void **value);

#endif /* NK_UTIL_U64MAP_H */
