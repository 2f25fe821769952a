/*
 * idmap.h - a small hash map from non-zero uint64 ids to pointers.
 *
 * The real runtime hands out sequential ids (timers, connections, listeners)
 * and must find the object behind an id in O(1), including ids that are
 * already dead (lookup then simply fails). Open addressing with linear
 * probing and backward-shift deletion: no tombstones, so the table never
 * degrades under churn. Not thread-safe (loop thread only).
 *
 * Iteration order is slot order, i.e. unspecified: callers that need an
 * order must sort the ids themselves.
 */
#ifndef NK_NET_IDMAP_H
#define NK_NET_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct nk_idmap {
    uint64_t *keys; /* 0 marks an empty slot */
    void **vals;
    size_t cap; /* power of two, or 0 before the first insert */
    size_t count;
} nk_idmap;

/* The value stored for id, or NULL. */
void *nk_idmap_get(const nk_idmap *m, uint64_t id);

/* Insert or replace (id != 0, val != NULL). NK_OK or NK_ENOMEM/NK_EINVAL. */
int nk_idmap_put(nk_idmap *m, uint64_t id, void *val);

/* Remove id; returns the value it had, or NULL if absent. */
void *nk_idmap_del(nk_idmap *m, uint64_t id);

/* Copy all values into a new malloc'ed array (*out, *n); NK_OK or NK_ENOMEM.
 * Lets a caller tear objects down without mutating the map mid-iteration. */
int nk_idmap_values(const nk_idmap *m, void ***out, size_t *n);

/* Free the table (not the values). */
void nk_idmap_free(nk_idmap *m);

#endif /* NK_NET_IDMAP_H */
