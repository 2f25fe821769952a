/* memtable.c - internal-key skiplist plus sequence bookkeeping. */
#include "nokv/engine/memtable.h"

#include <stdlib.h>

#include "nokv/engine/arena.h"
#include "nokv/util/err.h"

/* Keys up to this size are built on the stack for add/get. */
#define STACK_KEY 4096

struct nk_memtable {
    nk_arena arena;
    nk_skiplist list;
    uint64_t min_seq;
    uint64_t max_seq;
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
    *out = m;
    return NK_OK;
}

void nk_memtable_free(nk_memtable *m)
{
    if (m == NULL) {
        return;
    }
    nk_arena_free(&m->arena);
    free(m);
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
    int rc = nk_skiplist_insert2(&m->list, k, klen, val, vlen, val2, vlen2);
    free(heap);
    if (rc != NK_OK) {
        return rc;
    }
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
    return nk_arena_usage(&m->arena);
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
