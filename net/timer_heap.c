/*
 * timer_heap.c - binary min-heap of timers keyed by (deadline, id).
 * Contract in timer_heap.h.
 */
#include "net/timer_heap.h"

#include <stdlib.h>

struct nk_timer_ent {
    uint64_t deadline;
    uint64_t id;
    nk_timer_fn fn;
    void *arg;
    size_t index; /* current position in items[] */
};

static bool before(const nk_timer_ent *a, const nk_timer_ent *b)
{
    if (a->deadline != b->deadline) {
        return a->deadline < b->deadline;
    }
    return a->id < b->id;
}

static void place(nk_timer_heap *h, size_t i, nk_timer_ent *e)
{
    h->items[i] = e;
    e->index = i;
}

static void sift_up(nk_timer_heap *h, size_t i)
{
    nk_timer_ent *e = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(e, h->items[parent])) {
            break;
        }
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(nk_timer_heap *h, size_t i)
{
    nk_timer_ent *e = h->items[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->count) {
            break;
        }
        size_t c = l;
        if (l + 1 < h->count && before(h->items[l + 1], h->items[l])) {
            c = l + 1;
        }
        if (!before(h->items[c], e)) {
            break;
        }
        place(h, i, h->items[c]);
        i = c;
    }
    place(h, i, e);
}

int nk_timer_heap_add(nk_timer_heap *h, uint64_t deadline, uint64_t id, nk_timer_fn fn, void *arg)
{
    if (id == 0 || fn == NULL) {
        return NK_EINVAL;
    }
    if (h->count == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        nk_timer_ent **ni = realloc(h->items, ncap * sizeof(*ni));
        if (ni == NULL) {
            return NK_ENOMEM;
        }
        h->items = ni;
        h->cap = ncap;
    }
    nk_timer_ent *e = malloc(sizeof(*e));
    if (e == NULL) {
        return NK_ENOMEM;
    }
    e->deadline = deadline;
    e->id = id;
    e->fn = fn;
    e->arg = arg;
    int rc = nk_idmap_put(&h->by_id, id, e);
    if (rc != NK_OK) {
        free(e);
        return rc;
    }
    h->items[h->count] = e;
    e->index = h->count;
    h->count++;
    sift_up(h, e->index);
    return NK_OK;
}

/* Take entry e out of the heap (it stays allocated). */
static void unlink_ent(nk_timer_heap *h, nk_timer_ent *e)
{
    size_t i = e->index;
    h->count--;
    if (i != h->count) {
        place(h, i, h->items[h->count]);
        /* The moved entry may belong above or below its new position. */
        if (i > 0 && before(h->items[i], h->items[(i - 1) / 2])) {
            sift_up(h, i);
        } else {
            sift_down(h, i);
        }
    }
    nk_idmap_del(&h->by_id, e->id);
}

int nk_timer_heap_cancel(nk_timer_heap *h, uint64_t id, void **arg)
{
    nk_timer_ent *e = nk_idmap_get(&h->by_id, id);
    if (e == NULL) {
        return NK_ENOENT;
    }
    unlink_ent(h, e);
    if (arg != NULL) {
        *arg = e->arg;
    }
    free(e);
    return NK_OK;
}

bool nk_timer_heap_next(const nk_timer_heap *h, uint64_t *deadline)
{
    if (h->count == 0) {
        return false;
    }
    *deadline = h->items[0]->deadline;
    return true;
}

bool nk_timer_heap_pop_due(nk_timer_heap *h, uint64_t now, uint64_t max_id, nk_timer_fn *fn,
                           void **arg, uint64_t *id)
{
    if (h->count == 0) {
        return false;
    }
    nk_timer_ent *e = h->items[0];
    if (e->deadline > now || e->id > max_id) {
        /* Not due, or started during this round. In the second case no
         * older timer is still due: a timer started during the round has a
         * deadline >= the round's `now`, so an older due timer (deadline <=
         * now) would sort before it. */
        return false;
    }
    unlink_ent(h, e);
    *fn = e->fn;
    *arg = e->arg;
    *id = e->id;
    free(e);
    return true;
}

size_t nk_timer_heap_count(const nk_timer_heap *h)
{
    return h->count;
}

void nk_timer_heap_free(nk_timer_heap *h)
{
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i]);
    }
    free(h->items);
    h->items = NULL;
    h->count = 0;
    h->cap = 0;
    nk_idmap_free(&h->by_id);
}
