/* skiplist.c - arena skiplist with a doubly linked bottom level. */
#include "nokv/engine/skiplist.h"

#include <string.h>

#include "nokv/util/err.h"

/*
 * Node layout in the arena, one allocation:
 *   header | next[height] | key bytes | value bytes
 * `prev` is the level-0 predecessor; NULL for the first node (the head
 * sentinel is never exposed as a position).
 */
struct nk_skipnode {
    uint32_t klen;
    uint32_t vlen;
    uint32_t height;
    nk_skipnode *prev;
    nk_skipnode *next[];
};

static inline const uint8_t *node_key(const nk_skipnode *n)
{
    return (const uint8_t *)&n->next[n->height];
}

static inline const uint8_t *node_val(const nk_skipnode *n)
{
    return node_key(n) + n->klen;
}

static nk_skipnode *node_new(nk_arena *a, uint32_t height, size_t klen, size_t vlen)
{
    size_t sz = sizeof(nk_skipnode) + sizeof(nk_skipnode *) * height + klen + vlen;
    nk_skipnode *n = nk_arena_alloc(a, sz);
    if (n == NULL) {
        return NULL;
    }
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    n->height = height;
    n->prev = NULL;
    for (uint32_t i = 0; i < height; i++) {
        n->next[i] = NULL;
    }
    return n;
}

int nk_skiplist_init(nk_skiplist *sl, nk_arena *arena, nk_key_cmp cmp, const nk_rand *rng)
{
    sl->arena = arena;
    sl->cmp = cmp;
    sl->head = node_new(arena, NK_SKIPLIST_MAX_HEIGHT, 0, 0);
    if (sl->head == NULL) {
        return NK_ENOMEM;
    }
    sl->tail = NULL;
    sl->height = 1;
    sl->count = 0;
    sl->rng = *rng;
    return NK_OK;
}

static uint32_t random_height(nk_skiplist *sl)
{
    /* P(height > h) = 4^-h: ~1.33 pointers per node, O(log n) search. */
    uint32_t h = 1;
    while (h < NK_SKIPLIST_MAX_HEIGHT && nk_rand_below(&sl->rng, 4) == 0) {
        h++;
    }
    return h;
}

static inline int node_cmp(const nk_skiplist *sl, const nk_skipnode *n, const uint8_t *key,
                           size_t klen)
{
    return sl->cmp(node_key(n), n->klen, key, klen);
}

/* Last node < key at every level (head where none); returns the first node
 * >= key (NULL if none). preds may be NULL. */
static nk_skipnode *find_ge(const nk_skiplist *sl, const uint8_t *key, size_t klen,
                            nk_skipnode **preds)
{
    nk_skipnode *x = sl->head;
    for (int lvl = sl->height - 1;; lvl--) {
        nk_skipnode *nx = x->next[lvl];
        while (nx != NULL && node_cmp(sl, nx, key, klen) < 0) {
            x = nx;
            nx = x->next[lvl];
        }
        if (preds != NULL) {
            preds[lvl] = x;
        }
        if (lvl == 0) {
            return nx;
        }
    }
}

int nk_skiplist_insert(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *val,
                       size_t vlen)
{
    return nk_skiplist_insert2(sl, key, klen, val, vlen, NULL, 0);
}

int nk_skiplist_insert2(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *v1,
                        size_t l1, const uint8_t *v2, size_t l2)
{
    const nk_skipnode *n;
    return nk_skiplist_insert_node(sl, key, klen, v1, l1, v2, l2, &n);
}

nk_slice nk_skipnode_key(const nk_skipnode *n)
{
    return nk_slice_make(node_key(n), n->klen);
}

nk_slice nk_skipnode_value(const nk_skipnode *n)
{
    return nk_slice_make(node_val(n), n->vlen);
}

int nk_skiplist_insert_node(nk_skiplist *sl, const uint8_t *key, size_t klen, const uint8_t *v1,
                            size_t l1, const uint8_t *v2, size_t l2, const nk_skipnode **node)
{
    *node = NULL;
    size_t vlen = l1 + l2;
    if (klen > UINT32_MAX || vlen > UINT32_MAX || vlen < l1) {
        return NK_ETOOBIG;
    }
    nk_skipnode *preds[NK_SKIPLIST_MAX_HEIGHT];
    nk_skipnode *ge = find_ge(sl, key, klen, preds);
    if (ge != NULL && node_cmp(sl, ge, key, klen) == 0) {
        return NK_EEXIST;
    }
    /* Draw the height only once the insert is certain to be attempted, so a
     * rejected duplicate does not shift the stream. */
    uint32_t h = random_height(sl);
    nk_skipnode *n = node_new(sl->arena, h, klen, vlen);
    if (n == NULL) {
        return NK_ENOMEM;
    }
    if (klen) {
        memcpy((uint8_t *)node_key(n), key, klen);
    }
    if (l1) {
        memcpy((uint8_t *)node_val(n), v1, l1);
    }
    if (l2) {
        memcpy((uint8_t *)node_val(n) + l1, v2, l2);
    }
    if ((int)h > sl->height) {
        for (int lvl = sl->height; lvl < (int)h; lvl++) {
            preds[lvl] = sl->head;
        }
        sl->height = (int)h;
    }
    for (uint32_t lvl = 0; lvl < h; lvl++) {
        n->next[lvl] = preds[lvl]->next[lvl];
        preds[lvl]->next[lvl] = n;
    }
    n->prev = preds[0] == sl->head ? NULL : preds[0];
    if (n->next[0] != NULL) {
        n->next[0]->prev = n;
    } else {
        sl->tail = n;
    }
    sl->count++;
    *node = n;
    return NK_OK;
}

void nk_skiplist_iter_init(nk_skiplist_iter *it, const nk_skiplist *sl)
{
    it->sl = sl;
    it->node = NULL;
}

bool nk_skiplist_iter_valid(const nk_skiplist_iter *it)
{
    return it->node != NULL;
}

nk_slice nk_skiplist_iter_key(const nk_skiplist_iter *it)
{
    return nk_slice_make(node_key(it->node), it->node->klen);
}

nk_slice nk_skiplist_iter_value(const nk_skiplist_iter *it)
{
    return nk_slice_make(node_val(it->node), it->node->vlen);
}

void nk_skiplist_iter_next(nk_skiplist_iter *it)
{
    it->node = it->node->next[0];
}

void nk_skiplist_iter_prev(nk_skiplist_iter *it)
{
    it->node = it->node->prev;
}

void nk_skiplist_iter_first(nk_skiplist_iter *it)
{
    it->node = it->sl->head->next[0];
}

void nk_skiplist_iter_last(nk_skiplist_iter *it)
{
    it->node = it->sl->tail;
}

void nk_skiplist_iter_seek(nk_skiplist_iter *it, const uint8_t *key, size_t klen)
{
    it->node = find_ge(it->sl, key, klen, NULL);
}

void nk_skiplist_iter_seek_for_prev(nk_skiplist_iter *it, const uint8_t *key, size_t klen)
{
    const nk_skipnode *n = find_ge(it->sl, key, klen, NULL);
    if (n == NULL) {
        it->node = it->sl->tail;
    } else if (node_cmp(it->sl, n, key, klen) == 0) {
        it->node = n;
    } else {
        it->node = n->prev;
    }
}
