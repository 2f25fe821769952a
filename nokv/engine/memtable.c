/*
 * memtable.c - internal-key skiplist plus sequence bookkeeping, and a hash
 * index of user keys for point reads.
 *
 * The skiplist gives order (iterators, flushes); a point read through it
 * costs a cache miss per node visited, about 30 for a few hundred thousand
 * entries, and a read of a key the memtable does not hold (most reads that
 * go on to the tables) pays the same. The index maps each user key to its
 * newest node: a read at the latest snapshot, or at any snapshot the newest
 * version is visible to, is one or two misses, and an absent key is one.
 * Reads at an older snapshot that the newest version is too new for fall
 * back to the skiplist. The index never changes what a read returns.
 */
#include "nokv/engine/memtable.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/arena.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"

/* Keys up to this size are built on the stack for add/get. */
#define STACK_KEY 4096

/* One index slot: the full hash (compared before touching the node, so a
 * probe past other keys costs no node miss) and the newest node of a key. */
typedef struct mslot {
    uint64_t hash;
    const nk_skipnode *node; /* NULL: empty */
} mslot;

#define INDEX_MIN_SLOTS 256u

struct nk_memtable {
    nk_arena arena;
    nk_skiplist list;
    uint64_t min_seq;
    uint64_t max_seq;
    mslot *idx;       /* open addressing, linear probing; cap a power of two */
    size_t idx_cap;
    size_t idx_count; /* distinct user keys */
    bool idx_off;     /* out of memory once: reads use the skiplist only */
};

int nk_memtable_new(const nk_rand *rng, size_t arena_block, nk_memtable **out)
{
    nk_memtable *m = malloc(sizeof *m);
    if (m == NULL) {
        return NK_ENOMEM;
    }
    nk_arena_init(&m->arena, arena_block);
    int rc = nk_skiplist_init(&m->list, &m->arena, nk_ikey_cmp, rng);
    if (rc != NK_OK) {
        nk_arena_free(&m->arena);
        free(m);
        return rc;
    }
    m->min_seq = 0;
    m->max_seq = 0;
    m->idx = NULL;
    m->idx_cap = 0;
    m->idx_count = 0;
    m->idx_off = false;
    *out = m;
    return NK_OK;
}

void nk_memtable_free(nk_memtable *m)
{
    if (m == NULL) {
        return;
    }
    nk_arena_free(&m->arena);
    free(m->idx);
    free(m);
}

static uint64_t key_hash(const uint8_t *ukey, size_t ulen)
{
    return XXH3_64bits(ulen ? ukey : NULL, ulen);
}

/* Sequence number of a node's internal key (its trailer). */
static uint64_t node_seq(const nk_skipnode *n)
{
    nk_slice k = nk_skipnode_key(n);
    return nk_get_u64(k.data + k.len - NK_IKEY_TRAILER) >> 8;
}

static bool node_has_ukey(const nk_skipnode *n, const uint8_t *ukey, size_t ulen)
{
    nk_slice k = nk_skipnode_key(n);
    return k.len - NK_IKEY_TRAILER == ulen && (ulen == 0 || memcmp(k.data, ukey, ulen) == 0);
}

/* The slot holding ukey, or the empty slot where it would go. */
static mslot *index_find(const nk_memtable *m, uint64_t h, const uint8_t *ukey, size_t ulen)
{
    size_t mask = m->idx_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        mslot *s = &m->idx[i];
        if (s->node == NULL || (s->hash == h && node_has_ukey(s->node, ukey, ulen))) {
            return s;
        }
    }
}

/* Double the table (or create it). The hashes are kept, so no key is read. */
static int index_grow(nk_memtable *m)
{
    size_t cap = m->idx_cap ? m->idx_cap * 2 : INDEX_MIN_SLOTS;
    mslot *t = calloc(cap, sizeof *t);
    if (t == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < m->idx_cap; i++) {
        const mslot *s = &m->idx[i];
        if (s->node != NULL) {
            size_t j = (size_t)s->hash & (cap - 1);
            while (t[j].node != NULL) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = *s;
        }
    }
    free(m->idx);
    m->idx = t;
    m->idx_cap = cap;
    return NK_OK;
}

/* Record n as ukey's node unless a newer version is indexed (replays and
 * ingests may add versions out of order). */
static void index_add(nk_memtable *m, const uint8_t *ukey, size_t ulen, uint64_t seq,
                      const nk_skipnode *n)
{
    if (m->idx_off) {
        return;
    }
    /* Load at most 3/4: linear probing stays short. */
    if ((m->idx_count + 1) * 4 > m->idx_cap * 3 && index_grow(m) != NK_OK) {
        /* The entry is in the skiplist already; without room to index it,
         * stop indexing so reads never trust an incomplete index. */
        m->idx_off = true;
        free(m->idx);
        m->idx = NULL;
        m->idx_cap = 0;
        return;
    }
    uint64_t h = key_hash(ukey, ulen);
    mslot *s = index_find(m, h, ukey, ulen);
    if (s->node == NULL) {
        s->hash = h;
        s->node = n;
        m->idx_count++;
    } else if (node_seq(s->node) < seq) {
        s->node = n;
    }
}

/* Build ikey into stack buffer when it fits, else the heap (*heap set). */
static uint8_t *build_ikey(uint8_t *stack, const uint8_t *ukey, size_t ulen, uint64_t seq,
                           nk_ktype type, uint8_t **heap, size_t *len)
{
    uint8_t *dst = stack;
    *heap = NULL;
    if (ulen > STACK_KEY - NK_IKEY_TRAILER) {
        if (ulen > SIZE_MAX - NK_IKEY_TRAILER) {
            return NULL;
        }
        *heap = malloc(nk_ikey_len(ulen));
        if (*heap == NULL) {
            return NULL;
        }
        dst = *heap;
    }
    *len = nk_ikey_encode(dst, ukey, ulen, seq, type);
    return dst;
}

int nk_memtable_add(nk_memtable *m, uint64_t seq, nk_ktype type, const uint8_t *ukey,
                    size_t ulen, const uint8_t *val, size_t vlen)
{
    return nk_memtable_add2(m, seq, type, ukey, ulen, val, vlen, NULL, 0);
}

int nk_memtable_add2(nk_memtable *m, uint64_t seq, nk_ktype type, const uint8_t *ukey,
                     size_t ulen, const uint8_t *val, size_t vlen, const uint8_t *val2,
                     size_t vlen2)
{
    if (seq > NK_SEQ_MAX || !nk_ktype_valid((unsigned)type)) {
        return NK_EINVAL;
    }
    if (type == NK_KT_DELETE) {
        vlen = 0;
        vlen2 = 0;
    }
    uint8_t stack[STACK_KEY];
    uint8_t *heap;
    size_t klen;
    const uint8_t *k = build_ikey(stack, ukey, ulen, seq, type, &heap, &klen);
    if (k == NULL) {
        return NK_ENOMEM;
    }
    const nk_skipnode *node;
    int rc = nk_skiplist_insert_node(&m->list, k, klen, val, vlen, val2, vlen2, &node);
    free(heap);
    if (rc != NK_OK) {
        return rc;
    }
    index_add(m, ukey, ulen, seq, node);
    if (m->list.count == 1 || seq < m->min_seq) {
        m->min_seq = seq;
    }
    if (seq > m->max_seq) {
        m->max_seq = seq;
    }
    return NK_OK;
}

int nk_memtable_get(const nk_memtable *m, const uint8_t *ukey, size_t ulen, uint64_t snap,
                    nk_lookup *res, nk_slice *val, uint64_t *seq_out)
{
    if (snap > NK_SEQ_MAX) {
        snap = NK_SEQ_MAX;
    }
    *res = NK_LOOKUP_MISS;
    if (!m->idx_off) {
        if (m->idx_cap == 0) {
            return NK_OK; /* nothing added yet */
        }
        const mslot *s = index_find(m, key_hash(ukey, ulen), ukey, ulen);
        if (s->node == NULL) {
            return NK_OK; /* no version of ukey here at all */
        }
        nk_slice found = nk_skipnode_key(s->node);
        uint64_t trailer = nk_get_u64(found.data + found.len - NK_IKEY_TRAILER);
        if ((trailer >> 8) <= snap) {
            /* The newest version is visible: it is the answer. */
            if (seq_out != NULL) {
                *seq_out = trailer >> 8;
            }
            if ((nk_ktype)(trailer & 0xff) == NK_KT_DELETE) {
                *res = NK_LOOKUP_DELETED;
            } else {
                *res = NK_LOOKUP_VALUE;
                *val = nk_skipnode_value(s->node);
            }
            return NK_OK;
        }
        /* An older snapshot: find its version in order. */
    }
    uint8_t stack[STACK_KEY];
    uint8_t *heap;
    size_t klen;
    const uint8_t *k = build_ikey(stack, ukey, ulen, snap, NK_KT_SEEK, &heap, &klen);
    if (k == NULL) {
        return NK_ENOMEM;
    }
    nk_skiplist_iter it;
    nk_skiplist_iter_init(&it, &m->list);
    nk_skiplist_iter_seek(&it, k, klen);
    free(heap);
    *res = NK_LOOKUP_MISS;
    if (!nk_skiplist_iter_valid(&it)) {
        return NK_OK;
    }
    nk_slice found = nk_skiplist_iter_key(&it);
    nk_ikey ik;
    /* Keys in the list were built by nk_memtable_add: always well formed. */
    (void)nk_ikey_parse(found.data, found.len, &ik);
    if (nk_bytes_cmp(ik.ukey.data, ik.ukey.len, ukey, ulen) != 0) {
        return NK_OK;
    }
    if (seq_out != NULL) {
        *seq_out = ik.seq;
    }
    if (ik.type == NK_KT_DELETE) {
        *res = NK_LOOKUP_DELETED;
    } else {
        *res = NK_LOOKUP_VALUE;
        *val = nk_skiplist_iter_value(&it);
    }
    return NK_OK;
}

size_t nk_memtable_usage(const nk_memtable *m)
{
    return nk_arena_usage(&m->arena) + m->idx_cap * sizeof(mslot);
}

size_t nk_memtable_count(const nk_memtable *m)
{
    return nk_skiplist_count(&m->list);
}

uint64_t nk_memtable_min_seq(const nk_memtable *m)
{
    return m->min_seq;
}

uint64_t nk_memtable_max_seq(const nk_memtable *m)
{
    return m->max_seq;
}

void nk_memtable_iter_init(nk_memtable_iter *it, const nk_memtable *m)
{
    nk_skiplist_iter_init(it, &m->list);
}
