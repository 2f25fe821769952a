/*
 * memtable.h - the in-memory write buffer of the LSM.
 *
 * A memtable holds internal keys (ikey.h) and their values in an arena-backed
 * skiplist, sorted by nk_ikey_cmp. Every write (put or delete) is a new
 * entry; nothing is overwritten, so older versions stay readable by older
 * snapshots until the table is flushed.
 *
 * Lifecycle: the engine's loop thread is the single writer of the *mutable*
 * memtable. When it is full (nk_memtable_usage against the configured size)
 * the engine stops writing to it; from then on it is immutable and may be
 * read concurrently (a flush job iterates it while the loop thread still
 * serves gets from it). Freed only once nothing reads it.
 *
 * Values and keys returned by get and by iterators point into the arena and
 * stay valid until nk_memtable_free.
 */
#ifndef NK_ENGINE_MEMTABLE_H
#define NK_ENGINE_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/ikey.h"
#include "nokv/engine/skiplist.h"
#include "nokv/util/rand.h"

typedef struct nk_memtable nk_memtable;

/* rng: stream for skiplist heights (copied; e.g. nk_rt_rand_stream(rt,
 * "engine.memtable")). arena_block 0 = default. NK_OK or NK_ENOMEM. */
int nk_memtable_new(const nk_rand *rng, size_t arena_block, nk_memtable **out);
void nk_memtable_free(nk_memtable *m);

/*
 * Add one entry. seq must be <= NK_SEQ_MAX, type a valid nk_ktype (the value
 * of a delete is ignored and stored empty).
 * NK_OK, NK_EINVAL (bad seq or type), NK_EEXIST (this user key already has an
 * entry at this seq: a sequence number was reused, an engine bug),
 * NK_ETOOBIG, NK_ENOMEM. On error the memtable is unchanged.
 */
int nk_memtable_add(nk_memtable *m, uint64_t seq, nk_ktype type, const uint8_t *ukey,
                    size_t ulen, const uint8_t *val, size_t vlen);
/* The same with the value in two pieces (val ‖ val2), copied once. */
int nk_memtable_add2(nk_memtable *m, uint64_t seq, nk_ktype type, const uint8_t *ukey,
                     size_t ulen, const uint8_t *val, size_t vlen, const uint8_t *val2,
                     size_t vlen2);

typedef enum nk_lookup {
    NK_LOOKUP_MISS = 0,    /* no version at or below the snapshot here: look deeper */
    NK_LOOKUP_VALUE = 1,   /* newest visible version is a put; *val set */
    NK_LOOKUP_DELETED = 2, /* newest visible version is a delete: stop, key absent */
} nk_lookup;

/* The newest version of ukey with seq <= snap. *val is set for
 * NK_LOOKUP_VALUE; *seq_out (may be NULL) gets that version's seq for VALUE
 * and DELETED. Returns NK_OK, or NK_ENOMEM for a huge key (> 4 KiB needs a
 * temporary buffer). */
int nk_memtable_get(const nk_memtable *m, const uint8_t *ukey, size_t ulen, uint64_t snap,
                    nk_lookup *res, nk_slice *val, uint64_t *seq_out);

/* Bytes of memory held (arena usage): compare against the memtable size. */
size_t nk_memtable_usage(const nk_memtable *m);
size_t nk_memtable_count(const nk_memtable *m);
/* Smallest / largest seq added; both 0 when empty. The WAL uses these to
 * know which log segments a flushed memtable makes obsolete. */
uint64_t nk_memtable_min_seq(const nk_memtable *m);
uint64_t nk_memtable_max_seq(const nk_memtable *m);

/*
 * Iterate internal keys in nk_ikey_cmp order (all versions, deletes
 * included). Use the nk_skiplist_iter_* functions to move: key() is the
 * internal key, value() the value; seek() takes an internal key.
 */
typedef nk_skiplist_iter nk_memtable_iter;
void nk_memtable_iter_init(nk_memtable_iter *it, const nk_memtable *m);

#endif /* NK_ENGINE_MEMTABLE_H */
