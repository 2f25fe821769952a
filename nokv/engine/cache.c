/*
 * cache.c - hash table + LRU list.
 *
 * Entries are in the hash table while findable. Unpinned findable entries
 * sit on the LRU list (head = oldest); pinned ones are off the list, so
 * eviction only walks entries it may free. An entry dies when it is neither
 * findable nor pinned.
 */
#include "nokv/engine/cache.h"

#include <stdbool.h>
#include <stdlib.h>

#include "nokv/util/err.h"

struct nk_cache_handle {
    uint64_t file, off;
    void *value;
    nk_cache_deleter deleter;
    size_t charge;
    uint32_t refs;    /* handles out */
    bool in_table;    /* findable */
    nk_cache_handle *hnext;          /* hash chain */
    nk_cache_handle *prev, *next;    /* LRU list when in_table && refs == 0 */
};

struct nk_cache {
    size_t capacity;
    size_t usage;
    nk_cache_handle **buckets;
    size_t nbuckets; /* power of two */
    size_t entries;
    nk_cache_handle lru; /* sentinel: lru.next = oldest, lru.prev = newest */
    nk_cache_stats st;
};

static uint64_t key_hash(uint64_t file, uint64_t off)
{
    /* splitmix64 finaliser over both halves: values, never addresses. */
    uint64_t z = file * 0x9e3779b97f4a7c15ULL ^ off;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int nk_cache_new(size_t capacity_bytes, nk_cache **out)
{
    nk_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NK_ENOMEM;
    }
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return NK_ENOMEM;
    }
    c->capacity = capacity_bytes;
    c->lru.next = c->lru.prev = &c->lru;
    *out = c;
    return NK_OK;
}

static void lru_remove(nk_cache_handle *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void lru_append(nk_cache *c, nk_cache_handle *e)
{
    e->next = &c->lru;
    e->prev = c->lru.prev;
    e->prev->next = e;
    c->lru.prev = e;
}

static void destroy(nk_cache *c, nk_cache_handle *e)
{
    c->usage -= e->charge;
    if (e->deleter != NULL) {
        e->deleter(e->value);
    }
    free(e);
}

static nk_cache_handle **find_slot(nk_cache *c, uint64_t file, uint64_t off)
{
    nk_cache_handle **p = &c->buckets[key_hash(file, off) & (c->nbuckets - 1)];
    while (*p != NULL && ((*p)->file != file || (*p)->off != off)) {
        p = &(*p)->hnext;
    }
    return p;
}

/* Unlink a findable entry from the table (and the LRU list if there); free
 * it if unpinned. */
static void remove_entry(nk_cache *c, nk_cache_handle **slot)
{
    nk_cache_handle *e = *slot;
    *slot = e->hnext;
    e->hnext = NULL;
    e->in_table = false;
    c->entries--;
    if (e->refs == 0) {
        lru_remove(e);
        destroy(c, e);
    }
}

static void grow(nk_cache *c)
{
    size_t n = c->nbuckets * 2;
    nk_cache_handle **nb = calloc(n, sizeof *nb);
    if (nb == NULL) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < c->nbuckets; i++) {
        nk_cache_handle *e = c->buckets[i];
        while (e != NULL) {
            nk_cache_handle *next = e->hnext;
            size_t b = key_hash(e->file, e->off) & (n - 1);
            e->hnext = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
}

static void evict(nk_cache *c)
{
    while (c->usage > c->capacity && c->lru.next != &c->lru) {
        nk_cache_handle *e = c->lru.next;
        remove_entry(c, find_slot(c, e->file, e->off));
        c->st.evictions++;
    }
}

nk_cache_handle *nk_cache_lookup(nk_cache *c, uint64_t file, uint64_t off)
{
    nk_cache_handle *e = *find_slot(c, file, off);
    if (e == NULL) {
        c->st.misses++;
        return NULL;
    }
    c->st.hits++;
    if (e->refs == 0) {
        lru_remove(e);
    }
    e->refs++;
    return e;
}

int nk_cache_insert(nk_cache *c, uint64_t file, uint64_t off, void *value, size_t charge,
                    nk_cache_deleter deleter, nk_cache_handle **out)
{
    nk_cache_handle *e = calloc(1, sizeof *e);
    if (e == NULL) {
        if (deleter != NULL) {
            deleter(value);
        }
        return NK_ENOMEM;
    }
    e->file = file;
    e->off = off;
    e->value = value;
    e->deleter = deleter;
    e->charge = charge;
    nk_cache_handle **slot = find_slot(c, file, off);
    if (*slot != NULL) {
        remove_entry(c, slot); /* slot now holds the old entry's successor */
    }
    e->hnext = *slot;
    *slot = e;
    e->in_table = true;
    c->entries++;
    c->usage += charge;
    c->st.inserts++;
    if (out != NULL) {
        e->refs = 1;
        *out = e;
    } else {
        lru_append(c, e);
    }
    evict(c);
    if (c->entries > c->nbuckets) {
        grow(c);
    }
    return NK_OK;
}

void *nk_cache_value(const nk_cache_handle *h)
{
    return h->value;
}

void nk_cache_release(nk_cache *c, nk_cache_handle *h)
{
    if (--h->refs > 0) {
        return;
    }
    if (!h->in_table) {
        destroy(c, h);
        return;
    }
    lru_append(c, h);
    evict(c);
}

void nk_cache_erase_file(nk_cache *c, uint64_t file)
{
    /* Bucket order is fixed by the hash of values, so this is deterministic. */
    for (size_t i = 0; i < c->nbuckets; i++) {
        nk_cache_handle **p = &c->buckets[i];
        while (*p != NULL) {
            if ((*p)->file == file) {
                remove_entry(c, p);
            } else {
                p = &(*p)->hnext;
            }
        }
    }
}

nk_cache_stats nk_cache_get_stats(const nk_cache *c)
{
    nk_cache_stats s = c->st;
    s.usage = c->usage;
    s.entries = c->entries;
    return s;
}

size_t nk_cache_capacity(const nk_cache *c)
{
    return c->capacity;
}

void nk_cache_free(nk_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nbuckets; i++) {
        while (c->buckets[i] != NULL) {
            remove_entry(c, &c->buckets[i]);
        }
    }
    free(c->buckets);
    free(c);
}
