/*
 * dbiter.h - what a user iterates: the newest visible value of each key.
 *
 * Wraps an internal-key iterator (usually nk_iter_merge over memtables and
 * tables) and presents, for snapshot S, each user key whose newest version
 * with seq <= S is a put, with that version's value, in user-key order.
 * Deleted keys and versions newer than S are skipped. Optional bounds
 * restrict the keys: lower inclusive, upper exclusive (bytewise).
 *
 * Both directions, switchable at any point: next() after prev() returns to
 * the key after the current one, and so on. seek(k) goes to the first
 * visible key >= k, seek_for_prev(k) to the last visible key <= k (both
 * clamped to the bounds).
 *
 * key()/value() stay valid until the iterator moves. Errors of the internal
 * iterator (corruption) end the iteration: valid() becomes false and
 * status() reports the error with its message; invalid + NK_OK means the end.
 */
#ifndef NK_ENGINE_DBITER_H
#define NK_ENGINE_DBITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/iter.h"
#include "nokv/engine/slice.h"
#include "nokv/util/err.h"

typedef struct nk_dbiter_options {
    uint64_t snapshot;    /* see versions with seq <= snapshot (NK_SEQ_MAX: all) */
    const uint8_t *lower; /* inclusive; NULL = unbounded (copied at creation) */
    size_t lower_len;
    const uint8_t *upper; /* exclusive; NULL = unbounded (copied at creation) */
    size_t upper_len;
} nk_dbiter_options;

typedef struct nk_dbiter nk_dbiter;

/* Takes ownership of `internal` (freed with the iterator, also on error).
 * NK_OK or NK_ENOMEM. Starts unpositioned. */
int nk_dbiter_new(nk_iter *internal, const nk_dbiter_options *o, nk_dbiter **out);
void nk_dbiter_free(nk_dbiter *it);

bool nk_dbiter_valid(const nk_dbiter *it);
nk_slice nk_dbiter_key(const nk_dbiter *it);   /* user key; requires valid */
nk_slice nk_dbiter_value(const nk_dbiter *it); /* requires valid */
void nk_dbiter_first(nk_dbiter *it);
void nk_dbiter_last(nk_dbiter *it);
void nk_dbiter_seek(nk_dbiter *it, const uint8_t *ukey, size_t len);
void nk_dbiter_seek_for_prev(nk_dbiter *it, const uint8_t *ukey, size_t len);
void nk_dbiter_next(nk_dbiter *it);
void nk_dbiter_prev(nk_dbiter *it);
int nk_dbiter_status(const nk_dbiter *it, nk_errbuf *eb);

#endif /* NK_ENGINE_DBITER_H */
