/*
 * idmap.c - open-addressing uint64 -> pointer map (contract in idmap.h).
 */
#include "net/idmap.h"

#include <stdbool.h>
#include <stdlib.h>

#include "nokv/util/err.h"

/* Ids are sequential, so spread them with a multiplicative mix (Fibonacci
 * hashing) before masking. */
static size_t slot_of(uint64_t id, size_t cap)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return (size_t)h & (cap - 1);
}

void *nk_idmap_get(const nk_idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0) {
        return NULL;
    }
    for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == id) {
            return m->vals[i];
        }
        if (m->keys[i] == 0) {
            return NULL;
        }
    }
}

static void insert_slot(uint64_t *keys, void **vals, size_t cap, uint64_t id, void *val)
{
    size_t i = slot_of(id, cap);
    while (keys[i] != 0 && keys[i] != id) {
        i = (i + 1) & (cap - 1);
    }
    keys[i] = id;
    vals[i] = val;
}

static int grow(nk_idmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    uint64_t *nk = calloc(ncap, sizeof(*nk));
    void **nv = calloc(ncap, sizeof(*nv));
    if (nk == NULL || nv == NULL) {
        free(nk);
        free(nv);
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != 0) {
            insert_slot(nk, nv, ncap, m->keys[i], m->vals[i]);
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return NK_OK;
}

int nk_idmap_put(nk_idmap *m, uint64_t id, void *val)
{
    if (id == 0 || val == NULL) {
        return NK_EINVAL;
    }
    /* Keep the load factor at or below 1/2: probes stay short. */
    if ((m->count + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc != NK_OK) {
            return rc;
        }
    }
    size_t i = slot_of(id, m->cap);
    while (m->keys[i] != 0 && m->keys[i] != id) {
        i = (i + 1) & (m->cap - 1);
    }
    if (m->keys[i] == 0) {
        m->count++;
    }
    m->keys[i] = id;
    m->vals[i] = val;
    return NK_OK;
}

void *nk_idmap_del(nk_idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = slot_of(id, m->cap);
    while (m->keys[i] != id) {
        if (m->keys[i] == 0) {
            return NULL;
        }
        i = (i + 1) & mask;
    }
    void *val = m->vals[i];
    /* Backward-shift: pull later members of the probe chain into the hole
     * so lookups never stop early at it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->vals[hole] = NULL;
    m->count--;
    return val;
}

int nk_idmap_values(const nk_idmap *m, void ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (m->count == 0) {
        return NK_OK;
    }
    void **v = malloc(m->count * sizeof(*v));
    if (v == NULL) {
        return NK_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != 0) {
            v[k++] = m->vals[i];
        }
    }
    *out = v;
    *n = k;
    return NK_OK;
}

void nk_idmap_free(nk_idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->count = 0;
}
