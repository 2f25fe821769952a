/* test_engine_memtable.c - arena, skiplist and memtable, plus a model check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nokv/engine/arena.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/memtable.h"
#include "nokv/engine/skiplist.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

/* ------------------------------------------------------------- arena --- */

static void test_arena_alignment_and_usage(void **state)
{
    (void)state;
    nk_arena a;
    nk_arena_init(&a, 1024);
    assert_int_equal(nk_arena_usage(&a), 0);
    uint8_t *prev = NULL;
    size_t prev_n = 0;
    size_t handed = 0;
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(i % 37);
        uint8_t *p = nk_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % NK_ARENA_ALIGN, 0);
        memset(p, 0xab, n); /* ASan: every byte is ours */
        assert_true(p != prev || prev_n == 0); /* no overlap with the last one */
        prev = p;
        prev_n = n;
        handed += n;
    }
    assert_true(nk_arena_allocated(&a) >= handed);
    assert_true(nk_arena_usage(&a) >= nk_arena_allocated(&a));
    /* A big request gets its own block and leaves the current one alone. */
    size_t before = nk_arena_usage(&a);
    uint8_t *big = nk_arena_alloc(&a, 5000);
    assert_non_null(big);
    memset(big, 1, 5000);
    assert_true(nk_arena_usage(&a) >= before + 5000);
    assert_true(nk_arena_usage(&a) < before + 5000 + 128);
    nk_arena_free(&a);
    assert_int_equal(nk_arena_usage(&a), 0);
    assert_non_null(nk_arena_alloc(&a, 8)); /* reusable after free */
    nk_arena_free(&a);
}

/* ---------------------------------------------------------- skiplist --- */

static int cmp_u32be(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return nk_bytes_cmp(a, alen, b, blen);
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_skiplist_basic(void **state)
{
    (void)state;
    nk_arena a;
    nk_arena_init(&a, 0);
    nk_rand r;
    nk_rand_seed(&r, 7);
    nk_skiplist sl;
    assert_int_equal(nk_skiplist_init(&sl, &a, cmp_u32be, &r), NK_OK);

    nk_skiplist_iter it;
    nk_skiplist_iter_init(&it, &sl);
    /* empty list: every positioning is invalid */
    nk_skiplist_iter_first(&it);
    assert_false(nk_skiplist_iter_valid(&it));
    nk_skiplist_iter_last(&it);
    assert_false(nk_skiplist_iter_valid(&it));
    uint8_t k[4];
    be32(k, 5);
    nk_skiplist_iter_seek(&it, k, 4);
    assert_false(nk_skiplist_iter_valid(&it));
    nk_skiplist_iter_seek_for_prev(&it, k, 4);
    assert_false(nk_skiplist_iter_valid(&it));

    /* insert even numbers 0..1998 in a scrambled order */
    nk_rand order;
    nk_rand_seed(&order, 99);
    uint32_t vals[1000];
    for (uint32_t i = 0; i < 1000; i++) {
        vals[i] = i * 2;
    }
    for (uint32_t i = 999; i > 0; i--) {
        uint32_t j = (uint32_t)nk_rand_below(&order, i + 1);
        uint32_t t = vals[i];
        vals[i] = vals[j];
        vals[j] = t;
    }
    for (int i = 0; i < 1000; i++) {
        be32(k, vals[i]);
        assert_int_equal(nk_skiplist_insert(&sl, k, 4, k, 4), NK_OK);
    }
    be32(k, 10);
    assert_int_equal(nk_skiplist_insert(&sl, k, 4, (const uint8_t *)"x", 1), NK_EEXIST);
    assert_int_equal(nk_skiplist_count(&sl), 1000);

    /* forward and reverse full scans */
    uint32_t expect = 0;
    for (nk_skiplist_iter_first(&it); nk_skiplist_iter_valid(&it); nk_skiplist_iter_next(&it)) {
        nk_slice key = nk_skiplist_iter_key(&it);
        nk_slice v = nk_skiplist_iter_value(&it);
        be32(k, expect);
        assert_int_equal(key.len, 4);
        assert_memory_equal(key.data, k, 4);
        assert_memory_equal(v.data, k, 4); /* duplicate insert did not overwrite */
        expect += 2;
    }
    assert_int_equal(expect, 2000);
    for (nk_skiplist_iter_last(&it); nk_skiplist_iter_valid(&it); nk_skiplist_iter_prev(&it)) {
        expect -= 2;
        be32(k, expect);
        assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    }
    assert_int_equal(expect, 0);

    /* seek: exact, between, before first, after last */
    be32(k, 100);
    nk_skiplist_iter_seek(&it, k, 4);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    be32(k, 101);
    nk_skiplist_iter_seek(&it, k, 4);
    be32(k, 102);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_prev(&it);
    be32(k, 100);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_seek(&it, (const uint8_t *)"", 0);
    be32(k, 0);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_prev(&it);
    assert_false(nk_skiplist_iter_valid(&it));
    be32(k, 1999);
    nk_skiplist_iter_seek(&it, k, 4);
    assert_false(nk_skiplist_iter_valid(&it));
    /* seek_for_prev */
    nk_skiplist_iter_seek_for_prev(&it, k, 4);
    be32(k, 1998);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_next(&it);
    assert_false(nk_skiplist_iter_valid(&it));
    be32(k, 101);
    nk_skiplist_iter_seek_for_prev(&it, k, 4);
    be32(k, 100);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_seek_for_prev(&it, k, 4);
    assert_memory_equal(nk_skiplist_iter_key(&it).data, k, 4);
    nk_skiplist_iter_seek_for_prev(&it, (const uint8_t *)"", 0);
    assert_false(nk_skiplist_iter_valid(&it));
    nk_arena_free(&a);
}

/* Same seed + same inserts = same node heights = same arena footprint;
 * a different seed almost surely differs. */
static size_t build_with_seed(uint64_t seed)
{
    nk_arena a;
    nk_arena_init(&a, 0);
    nk_rand r;
    nk_rand_seed(&r, seed);
    nk_skiplist sl;
    assert_int_equal(nk_skiplist_init(&sl, &a, cmp_u32be, &r), NK_OK);
    for (uint32_t i = 0; i < 2000; i++) {
        uint8_t k[4];
        be32(k, i);
        assert_int_equal(nk_skiplist_insert(&sl, k, 4, NULL, 0), NK_OK);
    }
    size_t n = nk_arena_allocated(&a);
    nk_arena_free(&a);
    return n;
}

static void test_skiplist_deterministic(void **state)
{
    (void)state;
    assert_int_equal(build_with_seed(1), build_with_seed(1));
    assert_int_not_equal(build_with_seed(1), build_with_seed(2));
}

/* ---------------------------------------------------------- memtable --- */

static nk_memtable *new_mt(uint64_t seed)
{
    nk_rand r;
    nk_rand_seed(&r, seed);
    nk_memtable *m;
    assert_int_equal(nk_memtable_new(&r, 4096, &m), NK_OK);
    return m;
}

static void put(nk_memtable *m, const char *k, uint64_t seq, const char *v)
{
    assert_int_equal(nk_memtable_add(m, seq, NK_KT_PUT, (const uint8_t *)k, strlen(k),
                                     (const uint8_t *)v, strlen(v)),
                     NK_OK);
}

static void del(nk_memtable *m, const char *k, uint64_t seq)
{
    assert_int_equal(
        nk_memtable_add(m, seq, NK_KT_DELETE, (const uint8_t *)k, strlen(k), NULL, 0), NK_OK);
}

/* Returns lookup result; for values checks against want. */
static nk_lookup get(nk_memtable *m, const char *k, uint64_t snap, const char *want)
{
    nk_lookup res;
    nk_slice v = {0};
    uint64_t seq = 0;
    assert_int_equal(
        nk_memtable_get(m, (const uint8_t *)k, strlen(k), snap, &res, &v, &seq), NK_OK);
    if (res == NK_LOOKUP_VALUE) {
        assert_non_null(want);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.data, want, v.len);
        assert_true(seq <= snap);
    }
    return res;
}

static void test_memtable_shadowing(void **state)
{
    (void)state;
    nk_memtable *m = new_mt(3);
    assert_int_equal(nk_memtable_count(m), 0);
    assert_int_equal(nk_memtable_min_seq(m), 0);
    put(m, "a", 10, "a10");
    put(m, "ab", 11, "ab11");
    put(m, "a", 12, "a12");
    del(m, "a", 14);
    put(m, "a", 16, "a16");
    put(m, "b", 5, "b5");

    assert_int_equal(get(m, "a", 9, NULL), NK_LOOKUP_MISS);
    assert_int_equal(get(m, "a", 10, "a10"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", 11, "a10"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", 12, "a12"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", 13, "a12"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", 14, NULL), NK_LOOKUP_DELETED);
    assert_int_equal(get(m, "a", 15, NULL), NK_LOOKUP_DELETED);
    assert_int_equal(get(m, "a", 16, "a16"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", NK_SEQ_MAX, "a16"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "a", UINT64_MAX, "a16"), NK_LOOKUP_VALUE); /* clamped */
    /* neighbours and prefixes never leak into each other */
    assert_int_equal(get(m, "", NK_SEQ_MAX, NULL), NK_LOOKUP_MISS);
    assert_int_equal(get(m, "aa", NK_SEQ_MAX, NULL), NK_LOOKUP_MISS);
    assert_int_equal(get(m, "ab", 10, NULL), NK_LOOKUP_MISS);
    assert_int_equal(get(m, "ab", 11, "ab11"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "b", 100, "b5"), NK_LOOKUP_VALUE);
    assert_int_equal(get(m, "c", 100, NULL), NK_LOOKUP_MISS);

    assert_int_equal(nk_memtable_count(m), 6);
    assert_int_equal(nk_memtable_min_seq(m), 5);
    assert_int_equal(nk_memtable_max_seq(m), 16);
    assert_true(nk_memtable_usage(m) > 0);

    /* reused (key, seq) and bad arguments change nothing */
    assert_int_equal(nk_memtable_add(m, 12, NK_KT_PUT, (const uint8_t *)"a", 1,
                                     (const uint8_t *)"zz", 2),
                     NK_EEXIST);
    assert_int_equal(get(m, "a", 12, "a12"), NK_LOOKUP_VALUE);
    assert_int_equal(
        nk_memtable_add(m, NK_SEQ_MAX + 1, NK_KT_PUT, (const uint8_t *)"a", 1, NULL, 0),
        NK_EINVAL);
    assert_int_equal(nk_memtable_add(m, 20, (nk_ktype)9, (const uint8_t *)"a", 1, NULL, 0),
                     NK_EINVAL);
    assert_int_equal(nk_memtable_count(m), 6);

    /* iteration: internal key order = (user key asc, seq desc) */
    const char *want_k[] = {"a", "a", "a", "a", "ab", "b"};
    const uint64_t want_s[] = {16, 14, 12, 10, 11, 5};
    nk_memtable_iter it;
    nk_memtable_iter_init(&it, m);
    int i = 0;
    for (nk_skiplist_iter_first(&it); nk_skiplist_iter_valid(&it); nk_skiplist_iter_next(&it)) {
        nk_slice k = nk_skiplist_iter_key(&it);
        nk_ikey ik;
        assert_int_equal(nk_ikey_parse(k.data, k.len, &ik), NK_OK);
        assert_int_equal(ik.ukey.len, strlen(want_k[i]));
        assert_memory_equal(ik.ukey.data, want_k[i], ik.ukey.len);
        assert_int_equal(ik.seq, want_s[i]);
        assert_int_equal(ik.type, want_s[i] == 14 ? NK_KT_DELETE : NK_KT_PUT);
        i++;
    }
    assert_int_equal(i, 6);
    nk_memtable_free(m);
}

static void test_memtable_big_key(void **state)
{
    (void)state;
    nk_memtable *m = new_mt(4);
    size_t n = 10000; /* larger than the on-stack key buffer */
    uint8_t *k = malloc(n);
    assert_non_null(k);
    memset(k, 'k', n);
    assert_int_equal(nk_memtable_add(m, 1, NK_KT_PUT, k, n, (const uint8_t *)"v", 1), NK_OK);
    nk_lookup res;
    nk_slice v;
    assert_int_equal(nk_memtable_get(m, k, n, 1, &res, &v, NULL), NK_OK);
    assert_int_equal(res, NK_LOOKUP_VALUE);
    assert_int_equal(v.len, 1);
    assert_int_equal(nk_memtable_get(m, k, n - 1, 1, &res, &v, NULL), NK_OK);
    assert_int_equal(res, NK_LOOKUP_MISS);
    free(k);
    nk_memtable_free(m);
}

/* ------------------------------------------------------- model check --- */

typedef struct model_entry {
    uint8_t ikey[16]; /* <= 4-byte user key + trailer */
    size_t klen;
    uint32_t val;
} model_entry;

static int model_cmp(const void *x, const void *y)
{
    const model_entry *a = x, *b = y;
    return nk_ikey_cmp(a->ikey, a->klen, b->ikey, b->klen);
}

static void rand_ukey(nk_rand *r, uint8_t *k, size_t *len)
{
    /* Small alphabet + short keys: many shared prefixes and many versions. */
    *len = (size_t)nk_rand_below(r, 4);
    for (size_t i = 0; i < *len; i++) {
        k[i] = (uint8_t)('a' + nk_rand_below(r, 3));
    }
}

static void check_entry(const nk_memtable_iter *it, const model_entry *e)
{
    assert_true(nk_skiplist_iter_valid(it));
    nk_slice k = nk_skiplist_iter_key(it);
    assert_int_equal(k.len, e->klen);
    assert_memory_equal(k.data, e->ikey, k.len);
    nk_ikey ik;
    assert_int_equal(nk_ikey_parse(k.data, k.len, &ik), NK_OK);
    nk_slice v = nk_skiplist_iter_value(it);
    if (ik.type == NK_KT_PUT) {
        assert_int_equal(v.len, 4);
        assert_memory_equal(v.data, &e->val, 4);
    } else {
        assert_int_equal(v.len, 0);
    }
}

static void run_model(uint64_t seed)
{
    nk_rand r;
    nk_rand_seed(&r, seed);
    nk_memtable *m = new_mt(seed);
    enum { N = 3000 };
    model_entry *model = calloc(N, sizeof *model);
    assert_non_null(model);
    size_t n = 0;
    uint64_t seq = 0;
    for (int i = 0; i < N; i++) {
        uint8_t uk[4];
        size_t ul;
        rand_ukey(&r, uk, &ul);
        nk_ktype t = nk_rand_chance(&r, 1, 4) ? NK_KT_DELETE : NK_KT_PUT;
        seq += 1 + nk_rand_below(&r, 3);
        uint32_t v = (uint32_t)nk_rand_next(&r);
        assert_int_equal(nk_memtable_add(m, seq, t, uk, ul, (const uint8_t *)&v, 4), NK_OK);
        model[n].klen = nk_ikey_encode(model[n].ikey, uk, ul, seq, t);
        model[n].val = v;
        n++;
    }
    qsort(model, n, sizeof *model, model_cmp);
    assert_int_equal(nk_memtable_count(m), n);

    nk_memtable_iter it;
    nk_memtable_iter_init(&it, m);
    size_t i = 0;
    for (nk_skiplist_iter_first(&it); nk_skiplist_iter_valid(&it); nk_skiplist_iter_next(&it)) {
        check_entry(&it, &model[i++]);
    }
    assert_int_equal(i, n);
    for (nk_skiplist_iter_last(&it); nk_skiplist_iter_valid(&it); nk_skiplist_iter_prev(&it)) {
        check_entry(&it, &model[--i]);
    }
    assert_int_equal(i, 0);

    /* Random snapshot gets: model answer = first entry with same user key
     * and seq <= snap, in sorted order. Random seeks = lower bound. */
    for (int q = 0; q < 2000; q++) {
        uint8_t uk[4];
        size_t ul;
        rand_ukey(&r, uk, &ul);
        uint64_t snap = nk_rand_below(&r, seq + 2);
        uint8_t probe[16];
        size_t pl = nk_ikey_encode(probe, uk, ul, snap, NK_KT_SEEK);
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (nk_ikey_cmp(model[mid].ikey, model[mid].klen, probe, pl) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        nk_lookup want = NK_LOOKUP_MISS;
        if (lo < n) {
            nk_ikey ik;
            assert_int_equal(nk_ikey_parse(model[lo].ikey, model[lo].klen, &ik), NK_OK);
            if (nk_bytes_cmp(ik.ukey.data, ik.ukey.len, uk, ul) == 0) {
                want = ik.type == NK_KT_PUT ? NK_LOOKUP_VALUE : NK_LOOKUP_DELETED;
            }
        }
        nk_lookup res;
        nk_slice v;
        assert_int_equal(nk_memtable_get(m, uk, ul, snap, &res, &v, NULL), NK_OK);
        assert_int_equal(res, want);
        if (res == NK_LOOKUP_VALUE) {
            assert_int_equal(v.len, 4);
            assert_memory_equal(v.data, &model[lo].val, 4);
        }
        nk_skiplist_iter_seek(&it, probe, pl);
        if (lo == n) {
            assert_false(nk_skiplist_iter_valid(&it));
        } else {
            check_entry(&it, &model[lo]);
        }
        /* seek_for_prev = last entry <= probe */
        nk_skiplist_iter_seek_for_prev(&it, probe, pl);
        if (lo < n && nk_ikey_cmp(model[lo].ikey, model[lo].klen, probe, pl) == 0) {
            check_entry(&it, &model[lo]);
        } else if (lo == 0) {
            assert_false(nk_skiplist_iter_valid(&it));
        } else {
            check_entry(&it, &model[lo - 1]);
        }
    }
    free(model);
    nk_memtable_free(m);
}

static void test_memtable_model(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        run_model(seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alignment_and_usage),
        cmocka_unit_test(test_skiplist_basic),
        cmocka_unit_test(test_skiplist_deterministic),
        cmocka_unit_test(test_memtable_shadowing),
        cmocka_unit_test(test_memtable_big_key),
        cmocka_unit_test(test_memtable_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
