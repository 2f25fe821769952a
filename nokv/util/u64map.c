/* u64map.c - open-addressing id map (see u64map.h). */
#include "nokv/util/u64map.h"

#include <stdlib.h>

#include "nokv/util/err.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    /* Fibonacci-style mixing; ids are dense sequence numbers. */
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    return (size_t)h & (cap - 1);
}

void nk_u64map_init(nk_u64map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void nk_u64map_free(nk_u64map *m)
{
    free(m->slots);
    nk_u64map_init(m);
}

static int grow(nk_u64map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    nk_u64map_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key != 0) {
            size_t j = slot_of(m->slots[i].key, ncap);
            while (ns[j].key != 0) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = m->slots[i];
        }
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return NK_OK;
}

int nk_u64map_put(nk_u64map *m, uint64_t key, void *value)
{
    if (key == 0) {
        return NK_EINVAL;
    }
    /* Keep the load factor under 3/4 so probe sequences stay short. */
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc != NK_OK) {
            return rc;
        }
    }
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != 0) {
        if (m->slots[i].key == key) {
            m->slots[i].value = value;
            return NK_OK;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->count++;
    return NK_OK;
}

void *nk_u64map_get(const nk_u64map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0) {
        return NULL;
    }
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != 0) {
        if (m->slots[i].key == key) {
            return m->slots[i].value;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void *nk_u64map_del(nk_u64map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0) {
            return NULL;
        }
        i = (i + 1) & mask;
    }
    void *value = m->slots[i].value;
    /* Backward-shift deletion: move later members of the probe run into the
     * hole so lookups never stop early at a false empty slot. */
    size_t hole = i;
    size_t j = (i + 1) & mask;
    while (m->slots[j].key != 0) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        /* Move j into the hole if its home is not in (hole, j] cyclically. */
        int between = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & mask;
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}

int nk_u64map_next(const nk_u64map *m, size_t *pos, uint64_t *key, void **value)
{
    while (*pos < m->cap) {
        size_t i = (*pos)++;
        if (m->slots[i].key != 0) {
            *key = m->slots[i].key;
            *value = m->slots[i].value;
            return 1;
        }
    }
    return 0;
}
