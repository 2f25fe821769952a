/*
 * skiplist.h - ordered map in an arena: the memtable's index.
 *
 * A skiplist of (key, value) byte strings, ordered by a caller-supplied
 * comparator (nk_key_cmp). Each insert copies key and value into the arena
 * next to the node, so one entry is one arena allocation and the skiplist
 * never frees anything: it lives exactly as long as its arena.
 *
 * Keys are unique: inserting a key that compares equal to an existing one
 * fails with NK_EEXIST and changes nothing. (Internal keys carry a sequence
 * number, so the engine never legitimately repeats one.)
 *
 * Node heights are drawn from the nk_rand stream given at init (copied into
 * the list), with branching factor 4 and at most NK_SKIPLIST_MAX_HEIGHT
 * levels: the same seed and the same inserts give the same shape, which
 * keeps the simulator deterministic.
 *
 * Level 0 is doubly linked, so an iterator moves backwards in O(1) and
 * reverse scans cost the same as forward ones.
 *
 * Concurrency: one writer, no concurrent readers while it writes. Once the
 * writer stops (the memtable becomes immutable) any number of readers may
 * iterate, e.g. a flush job; the job submission provides the ordering.
 */
#ifndef NK_ENGINE_SKIPLIST_H
#define NK_ENGINE_SKIPLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/arena.h"
#include "nokv/engine/slice.h"
#include "nokv/util/rand.h"

#define NK_SKIPLIST_MAX_HEIGHT 12

typedef struct nk_skipnode nk_skipnode;

typedef struct nk_skiplist {
    /* private */
    nk_arena *arena;
    nk_key_cmp cmp;
    nk_skipnode *head; /* sentinel; holds no key */
    nk_skipnode *tail; /* last node, or NULL when empty */
    int height;        /* levels in use, 1..MAX */
    size_t count;
    nk_rand rng;
} nk_skiplist;

/* Set up an empty list whose nodes live in `arena` (which must outlive it).
 * NK_OK or NK_ENOMEM. */
int nk_skiplist_init(nk_skiplist *sl, nk_arena *arena, nk_key_cmp cmp, const nk_rand *rng);

/* Copy (key, value) in. NK_OK, NK_EEXIST (equal key present; no change),
 * NK_ETOOBIG (key or value >= 4 GiB) or NK_ENOMEM (no change). */
int nk_skiplist_insert(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *val,
                       size_t vlen);
/* The same with the value given in two pieces (stored as v1 ‖ v2): a value
 * behind a small header is stored without first being copied next to it. */
int nk_skiplist_insert2(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *v1,
                        size_t l1, const uint8_t *v2, size_t l2);
/* insert2 that also gives the new node (NULL on failure), for an index kept
 * beside the list (the memtable's hash of user keys). */
int nk_skiplist_insert_node(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *v1,
                            size_t l1, const uint8_t *v2, size_t l2, const nk_skipnode **node);
/* Key and value of a node returned by insert_node; valid for the arena's life. */
nk_slice nk_skipnode_key(const nk_skipnode *n);
nk_slice nk_skipnode_value(const nk_skipnode *n);

static inline size_t nk_skiplist_count(const nk_skiplist *sl)
{
    return sl->count;
}

/* A position in the list. Keys and values it returns stay valid for the life
 * of the arena. Inserts do not invalidate an iterator (single-threaded use). */
typedef struct nk_skiplist_iter {
    const nk_skiplist *sl;
    const nk_skipnode *node; /* NULL: not positioned on an entry */
} nk_skiplist_iter;

void nk_skiplist_iter_init(nk_skiplist_iter *it, const nk_skiplist *sl);
bool nk_skiplist_iter_valid(const nk_skiplist_iter *it);
/* Requires valid. */
nk_slice nk_skiplist_iter_key(const nk_skiplist_iter *it);
nk_slice nk_skiplist_iter_value(const nk_skiplist_iter *it);
void nk_skiplist_iter_next(nk_skiplist_iter *it);
void nk_skiplist_iter_prev(nk_skiplist_iter *it);
void nk_skiplist_iter_first(nk_skiplist_iter *it);
void nk_skiplist_iter_last(nk_skiplist_iter *it);
/* First entry >= key (invalid if none). */
void nk_skiplist_iter_seek(nk_skiplist_iter *it, const uint8_t *key, size_t klen);
/* Last entry <= key (invalid if none). */
void nk_skiplist_iter_seek_for_prev(nk_skiplist_iter *it, const uint8_t *key, size_t klen);

#endif /* NK_ENGINE_SKIPLIST_H */
