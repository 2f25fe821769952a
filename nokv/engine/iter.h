/*
 * iter.h - one iterator interface over every sorted source, and merging.
 *
 * The read path combines many sorted sources (the mutable memtable,
 * immutable memtables, SSTs): each is wrapped as an nk_iter over internal
 * keys, nk_iter_merge combines them into one stream in nk_ikey_cmp order,
 * and nk_dbiter (dbiter.h) turns that into what users see.
 *
 * Contract of every nk_iter:
 *   - starts unpositioned (invalid); first/last/seek/seek_for_prev position;
 *   - next/prev require valid; moving past either end makes it invalid;
 *   - key/value require valid and stay valid until the iterator moves;
 *   - status: NK_OK, or the (sticky) error that made it invalid, with the
 *     message in eb. Invalid + NK_OK means "end of data", nothing else;
 *   - seek(k): first entry >= k; seek_for_prev(k): last entry <= k.
 *
 * Adapters borrow their source: the memtable / table must outlive them.
 */
#ifndef NK_ENGINE_ITER_H
#define NK_ENGINE_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/memtable.h"
#include "nokv/engine/slice.h"
#include "nokv/engine/sst.h"
#include "nokv/util/err.h"

typedef struct nk_iter nk_iter;

typedef struct nk_iter_ops {
    bool (*valid)(const nk_iter *it);
    void (*first)(nk_iter *it);
    void (*last)(nk_iter *it);
    void (*seek)(nk_iter *it, const uint8_t *k, size_t klen);
    void (*seek_for_prev)(nk_iter *it, const uint8_t *k, size_t klen);
    void (*next)(nk_iter *it);
    void (*prev)(nk_iter *it);
    nk_slice (*key)(const nk_iter *it);
    nk_slice (*value)(const nk_iter *it);
    int (*status)(const nk_iter *it, nk_errbuf *eb);
    void (*destroy)(nk_iter *it);
} nk_iter_ops;

/* Implementations embed this as their first member. */
struct nk_iter {
    const nk_iter_ops *ops;
};

static inline bool nk_iter_valid(const nk_iter *it)
{
    return it->ops->valid(it);
}
static inline void nk_iter_first(nk_iter *it)
{
    it->ops->first(it);
}
static inline void nk_iter_last(nk_iter *it)
{
    it->ops->last(it);
}
static inline void nk_iter_seek(nk_iter *it, const uint8_t *k, size_t klen)
{
    it->ops->seek(it, k, klen);
}
static inline void nk_iter_seek_for_prev(nk_iter *it, const uint8_t *k, size_t klen)
{
    it->ops->seek_for_prev(it, k, klen);
}
static inline void nk_iter_next(nk_iter *it)
{
    it->ops->next(it);
}
static inline void nk_iter_prev(nk_iter *it)
{
    it->ops->prev(it);
}
static inline nk_slice nk_iter_key(const nk_iter *it)
{
    return it->ops->key(it);
}
static inline nk_slice nk_iter_value(const nk_iter *it)
{
    return it->ops->value(it);
}
/* eb may be NULL. */
static inline int nk_iter_status(const nk_iter *it, nk_errbuf *eb)
{
    return it->ops->status(it, eb);
}
/* NULL is ignored. */
void nk_iter_free(nk_iter *it);

/* Internal-key iterator over a memtable. NK_OK or NK_ENOMEM. */
int nk_iter_memtable(const nk_memtable *m, nk_iter **out);

/* Internal-key iterator over a table; flags as nk_sst_iter_new. */
int nk_iter_sst(nk_sst *t, unsigned flags, nk_iter **out);

/*
 * Merge n children (internal keys) into one stream in nk_ikey_cmp order. Takes
 * ownership of the children (freed with the merge, also on error). Order
 * children newest source first: when two children hold an identical
 * internal key, the lower-indexed child's entry is yielded and the other
 * skipped, so a key flushed to a table while still in its memtable is seen
 * once. The first child error stops the merge (status reports it). Cost per
 * step is O(n): meant for the tens of sources of one read.
 */
int nk_iter_merge(nk_iter **children, size_t n, nk_iter **out);

#endif /* NK_ENGINE_ITER_H */
