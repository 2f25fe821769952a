/*
 * cache.h - LRU cache of decoded blocks, bounded in bytes.
 *
 * Keyed by (file number, block offset): file numbers are never reused, so a
 * key names one immutable block forever and the cache never needs
 * invalidation for correctness; nk_cache_erase_file only frees memory early
 * when a table is deleted.
 *
 * Each entry has a charge (its bytes). When the total charge exceeds the
 * capacity, the least recently used entries that nobody holds are evicted
 * (deterministically: order is a pure function of the sequence of calls).
 * Entries held through a handle are never freed under the holder; they can
 * push usage above capacity until released.
 *
 * The cache owns inserted values and frees them with the given deleter when
 * they are evicted/erased/replaced AND no handle refers to them.
 *
 * Threading: NOT thread-safe, and nokv/ has no locks: use it from the node's
 * loop thread only. Background jobs (compaction, export) read tables without
 * the cache (see nk_sst_iter flags), which also keeps bulk scans from
 * flushing the hot set.
 */
#ifndef NK_ENGINE_CACHE_H
#define NK_ENGINE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct nk_cache nk_cache;
typedef struct nk_cache_handle nk_cache_handle;
typedef void (*nk_cache_deleter)(void *value);

typedef struct nk_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t inserts;
    uint64_t evictions;
    size_t usage;   /* total charge of entries still held by the cache or handles */
    size_t entries; /* entries findable by lookup */
} nk_cache_stats;

/* NK_OK or NK_ENOMEM. capacity 0 caches nothing beyond held handles. */
int nk_cache_new(size_t capacity_bytes, nk_cache **out);
/* Every handle must have been released. */
void nk_cache_free(nk_cache *c);

/* The entry for (file, off), pinned: release it with nk_cache_release. NULL
 * on a miss. Counts a hit or a miss and makes the entry most recent. */
nk_cache_handle *nk_cache_lookup(nk_cache *c, uint64_t file, uint64_t off);

/*
 * Insert value (ownership passes to the cache, even on error: the deleter
 * runs at once if the entry cannot be created). An existing entry for the
 * same key is replaced. *out (may be NULL) receives a pinned handle to the new
 * entry. Inserting can evict. NK_OK or NK_ENOMEM.
 */
int nk_cache_insert(nk_cache *c, uint64_t file, uint64_t off, void *value, size_t charge,
                    nk_cache_deleter deleter, nk_cache_handle **out);

void *nk_cache_value(const nk_cache_handle *h);
void nk_cache_release(nk_cache *c, nk_cache_handle *h);

/* Drop every entry of `file` (held ones are freed when released). */
void nk_cache_erase_file(nk_cache *c, uint64_t file);

nk_cache_stats nk_cache_get_stats(const nk_cache *c);
size_t nk_cache_capacity(const nk_cache *c);

#endif /* NK_ENGINE_CACHE_H */
