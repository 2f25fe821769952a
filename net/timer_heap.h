/*
 * timer_heap.h - pending timers of the real runtime, as a binary min-heap.
 *
 * Order is (deadline, id): the id is the start sequence (ids are handed out
 * in increasing order), so two timers with the same deadline fire in the
 * order they were started. Nothing is ever ordered by address. Cancel is by
 * id in O(log n) through an id -> entry map. Pure data structure: no clock,
 * the caller passes deadlines and "now" explicitly (which keeps it testable).
 * Not thread-safe (loop thread only).
 */
#ifndef NK_NET_TIMER_HEAP_H
#define NK_NET_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/idmap.h"
#include "nokv/rt.h"

typedef struct nk_timer_ent nk_timer_ent; /* private */

typedef struct nk_timer_heap {
    nk_timer_ent **items;
    size_t count;
    size_t cap;
    nk_idmap by_id;
} nk_timer_heap;

/* Add a timer (id non-zero, greater than every id added before). NK_OK,
 * NK_EINVAL or NK_ENOMEM. */
int nk_timer_heap_add(nk_timer_heap *h, uint64_t deadline, uint64_t id, nk_timer_fn fn, void *arg);

/* Remove a pending timer: NK_OK, or NK_ENOENT if not pending. *arg (if not
 * NULL) receives the argument the timer was started with. */
int nk_timer_heap_cancel(nk_timer_heap *h, uint64_t id, void **arg);

/* The earliest deadline, if any timer is pending. */
bool nk_timer_heap_next(const nk_timer_heap *h, uint64_t *deadline);

/*
 * Pop the first timer if its deadline is <= now and its id is <= max_id
 * (max_id lets the loop fire only the timers that existed when it started
 * firing, so a callback re-arming a zero-delay timer cannot starve I/O).
 * Returns true and fills fn/arg/id, or false.
 */
bool nk_timer_heap_pop_due(nk_timer_heap *h, uint64_t now, uint64_t max_id, nk_timer_fn *fn,
                           void **arg, uint64_t *id);

size_t nk_timer_heap_count(const nk_timer_heap *h);

/* Free every entry (callbacks are not run) and the heap itself. */
void nk_timer_heap_free(nk_timer_heap *h);

#endif /* NK_NET_TIMER_HEAP_H */
