/* test_engine_block.c - block builder/reader: round trips, seeks, a model
 * check over random blocks, and malformed input (never out of bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nokv/engine/block.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

typedef struct kv {
    uint8_t k[24];
    size_t klen;
    uint8_t v[40];
    size_t vlen;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    return nk_bytes_cmp(x->k, x->klen, y->k, y->klen);
}

/* n unique random sorted entries; small alphabet -> long shared prefixes. */
static size_t gen_sorted(nk_rand *r, kv *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i].klen = (size_t)nk_rand_below(r, sizeof out[i].k + 1);
        for (size_t j = 0; j < out[i].klen; j++) {
            out[i].k[j] = (uint8_t)('a' + nk_rand_below(r, 3));
        }
        out[i].vlen = (size_t)nk_rand_below(r, sizeof out[i].v + 1);
        nk_rand_bytes(r, out[i].v, out[i].vlen);
    }
    qsort(out, n, sizeof *out, kv_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m == 0 || kv_cmp(&out[m - 1], &out[i]) != 0) {
            out[m++] = out[i];
        }
    }
    return m;
}

static void build(nk_block_builder *b, const kv *e, size_t n, nk_slice *out)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(nk_block_add(b, e[i].k, e[i].klen, e[i].v, e[i].vlen), NK_OK);
    }
    size_t est = nk_block_size_estimate(b);
    assert_int_equal(nk_block_finish(b, out), NK_OK);
    assert_int_equal(out->len, est);
}

static void assert_at(const nk_block_iter *it, const kv *e)
{
    assert_true(nk_block_iter_valid(it));
    nk_slice k = nk_block_iter_key(it), v = nk_block_iter_value(it);
    assert_int_equal(k.len, e->klen);
    assert_memory_equal(k.data, e->k, k.len);
    assert_int_equal(v.len, e->vlen);
    assert_memory_equal(v.data, e->v, v.len);
}

static void test_empty_and_single(void **state)
{
    (void)state;
    nk_block_builder b;
    nk_block_builder_init(&b, 0);
    nk_slice s;
    assert_int_equal(nk_block_finish(&b, &s), NK_OK);
    assert_int_equal(s.len, 4);
    nk_block blk;
    assert_int_equal(nk_block_open(&blk, s.data, s.len, NULL), NK_OK);
    nk_block_iter it;
    nk_block_iter_init(&it, &blk, nk_bytes_cmp);
    nk_block_iter_first(&it);
    assert_false(nk_block_iter_valid(&it));
    nk_block_iter_last(&it);
    assert_false(nk_block_iter_valid(&it));
    nk_block_iter_seek(&it, (const uint8_t *)"a", 1);
    assert_false(nk_block_iter_valid(&it));
    nk_block_iter_seek_for_prev(&it, (const uint8_t *)"a", 1);
    assert_false(nk_block_iter_valid(&it));
    assert_int_equal(nk_block_iter_status(&it), NK_OK);
    nk_block_iter_free(&it);

    /* add after finish is refused; reset makes the builder reusable */
    assert_int_equal(nk_block_add(&b, (const uint8_t *)"k", 1, NULL, 0), NK_EINVAL);
    nk_block_reset(&b);
    assert_int_equal(nk_block_add(&b, (const uint8_t *)"", 0, (const uint8_t *)"v", 1), NK_OK);
    assert_int_equal(nk_block_finish(&b, &s), NK_OK);
    assert_int_equal(nk_block_open(&blk, s.data, s.len, NULL), NK_OK);
    nk_block_iter_init(&it, &blk, nk_bytes_cmp);
    nk_block_iter_last(&it);
    assert_true(nk_block_iter_valid(&it));
    assert_int_equal(nk_block_iter_key(&it).len, 0);
    assert_int_equal(nk_block_iter_value(&it).len, 1);
    nk_block_iter_prev(&it);
    assert_false(nk_block_iter_valid(&it));
    nk_block_iter_seek(&it, (const uint8_t *)"", 0);
    assert_true(nk_block_iter_valid(&it));
    nk_block_iter_next(&it);
    assert_false(nk_block_iter_valid(&it));
    assert_int_equal(nk_block_iter_status(&it), NK_OK);
    nk_block_iter_free(&it);
    nk_block_builder_free(&b);
}

static void test_prefix_compression(void **state)
{
    (void)state;
    /* 100 keys sharing a 32-byte prefix: the block must be far smaller than
     * the raw keys, and restarts every 16 keys still store them in full. */
    nk_block_builder b;
    nk_block_builder_init(&b, 16);
    char key[64];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof key, "tenant/0000000001/table/orders/%06d", i);
        assert_int_equal(nk_block_add(&b, (const uint8_t *)key, (size_t)n, NULL, 0), NK_OK);
    }
    nk_slice s;
    assert_int_equal(nk_block_finish(&b, &s), NK_OK);
    assert_true(s.len < 100 * 37 / 3);
    nk_block blk;
    assert_int_equal(nk_block_open(&blk, s.data, s.len, NULL), NK_OK);
    assert_int_equal(blk.nrestarts, 7);
    nk_block_iter it;
    nk_block_iter_init(&it, &blk, nk_bytes_cmp);
    int i = 0;
    for (nk_block_iter_first(&it); nk_block_iter_valid(&it); nk_block_iter_next(&it)) {
        int n = snprintf(key, sizeof key, "tenant/0000000001/table/orders/%06d", i++);
        assert_int_equal(nk_block_iter_key(&it).len, (size_t)n);
        assert_memory_equal(nk_block_iter_key(&it).data, key, (size_t)n);
    }
    assert_int_equal(i, 100);
    /* seeks: exact, between, past the end, before the start */
    nk_block_iter_seek(&it, (const uint8_t *)"tenant/0000000001/table/orders/000050", 37);
    assert_memory_equal(nk_block_iter_key(&it).data, "tenant/0000000001/table/orders/000050", 37);
    nk_block_iter_seek(&it, (const uint8_t *)"tenant/0000000001/table/orders/0000505", 38);
    assert_memory_equal(nk_block_iter_key(&it).data, "tenant/0000000001/table/orders/000051", 37);
    nk_block_iter_seek_for_prev(&it, (const uint8_t *)"tenant/0000000001/table/orders/0000505", 38);
    assert_memory_equal(nk_block_iter_key(&it).data, "tenant/0000000001/table/orders/000050", 37);
    nk_block_iter_seek(&it, (const uint8_t *)"u", 1);
    assert_false(nk_block_iter_valid(&it));
    nk_block_iter_seek_for_prev(&it, (const uint8_t *)"u", 1);
    assert_memory_equal(nk_block_iter_key(&it).data, "tenant/0000000001/table/orders/000099", 37);
    nk_block_iter_seek(&it, (const uint8_t *)"a", 1);
    assert_memory_equal(nk_block_iter_key(&it).data, "tenant/0000000001/table/orders/000000", 37);
    nk_block_iter_seek_for_prev(&it, (const uint8_t *)"a", 1);
    assert_false(nk_block_iter_valid(&it));
    assert_int_equal(nk_block_iter_status(&it), NK_OK);
    nk_block_iter_free(&it);
    nk_block_builder_free(&b);
}

/* Model check: random blocks against the sorted array they came from. */
static void test_model(void **state)
{
    (void)state;
    enum { MAXN = 400 };
    kv *e = malloc(MAXN * sizeof *e);
    assert_non_null(e);
    nk_rand r;
    nk_rand_seed(&r, 2024);
    nk_block_builder b;
    for (int round = 0; round < 60; round++) {
        size_t n = gen_sorted(&r, e, (size_t)nk_rand_below(&r, MAXN + 1));
        unsigned interval = (unsigned)nk_rand_between(&r, 1, 20);
        nk_block_builder_init(&b, interval);
        nk_slice s;
        build(&b, e, n, &s);
        nk_block blk;
        assert_int_equal(nk_block_open(&blk, s.data, s.len, NULL), NK_OK);
        nk_block_iter it;
        nk_block_iter_init(&it, &blk, nk_bytes_cmp);
        size_t i = 0;
        for (nk_block_iter_first(&it); nk_block_iter_valid(&it); nk_block_iter_next(&it)) {
            assert_at(&it, &e[i++]);
        }
        assert_int_equal(i, n);
        for (nk_block_iter_last(&it); nk_block_iter_valid(&it); nk_block_iter_prev(&it)) {
            assert_at(&it, &e[--i]);
        }
        assert_int_equal(i, 0);
        /* random seeks followed by a short random walk */
        for (int q = 0; q < 100; q++) {
            kv t;
            gen_sorted(&r, &t, 1);
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (kv_cmp(&e[mid], &t) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            size_t pos;
            if (nk_rand_chance(&r, 1, 2)) {
                nk_block_iter_seek(&it, t.k, t.klen);
                pos = lo;
            } else {
                nk_block_iter_seek_for_prev(&it, t.k, t.klen);
                pos = (lo < n && kv_cmp(&e[lo], &t) == 0) ? lo : lo - 1; /* may wrap */
            }
            for (int step = 0; step < 8; step++) {
                if (pos >= n) { /* includes (size_t)-1 */
                    assert_false(nk_block_iter_valid(&it));
                    break;
                }
                assert_at(&it, &e[pos]);
                if (nk_rand_chance(&r, 1, 2)) {
                    nk_block_iter_next(&it);
                    pos++;
                } else {
                    nk_block_iter_prev(&it);
                    pos--;
                }
            }
        }
        assert_int_equal(nk_block_iter_status(&it), NK_OK);
        nk_block_iter_free(&it);
        nk_block_builder_free(&b);
    }
    free(e);
}

/* Walk a possibly malformed block every way; the iterator must stay in
 * bounds (ASan), end in a bounded number of steps and report either OK or
 * NK_ECORRUPT. Returns the status seen. */
static int exercise(const uint8_t *data, size_t len)
{
    nk_block blk;
    if (nk_block_open(&blk, data, len, NULL) != NK_OK) {
        return NK_ECORRUPT;
    }
    int status = NK_OK;
    nk_block_iter it;
    nk_block_iter_init(&it, &blk, nk_bytes_cmp);
    size_t steps = 0;
    for (nk_block_iter_first(&it); nk_block_iter_valid(&it); nk_block_iter_next(&it)) {
        volatile uint8_t sink = 0;
        nk_slice k = nk_block_iter_key(&it), v = nk_block_iter_value(&it);
        for (size_t i = 0; i < k.len; i++) {
            sink ^= k.data[i];
        }
        for (size_t i = 0; i < v.len; i++) {
            sink ^= v.data[i];
        }
        (void)sink;
        assert_true(++steps <= len);
    }
    if (nk_block_iter_status(&it) != NK_OK) {
        status = nk_block_iter_status(&it);
    }
    nk_block_iter_free(&it);
    nk_block_iter_init(&it, &blk, nk_bytes_cmp);
    steps = 0;
    for (nk_block_iter_last(&it); nk_block_iter_valid(&it); nk_block_iter_prev(&it)) {
        assert_true(++steps <= len);
    }
    if (nk_block_iter_status(&it) != NK_OK) {
        status = nk_block_iter_status(&it);
    }
    nk_block_iter_free(&it);
    static const char *targets[] = {"", "a", "abc", "b", "zzzz"};
    for (size_t t = 0; t < 5; t++) {
        nk_block_iter_init(&it, &blk, nk_bytes_cmp);
        nk_block_iter_seek(&it, (const uint8_t *)targets[t], strlen(targets[t]));
        nk_block_iter_seek_for_prev(&it, (const uint8_t *)targets[t], strlen(targets[t]));
        if (nk_block_iter_status(&it) != NK_OK) {
            status = nk_block_iter_status(&it);
            nk_errbuf eb;
            nk_block_iter_error(&it, &eb);
            assert_non_null(strstr(eb.msg, "offset"));
        }
        nk_block_iter_free(&it);
    }
    assert_true(status == NK_OK || status == NK_ECORRUPT);
    return status;
}

static void test_malformed(void **state)
{
    (void)state;
    nk_rand r;
    nk_rand_seed(&r, 77);
    kv e[64];
    size_t n = gen_sorted(&r, e, 64);
    nk_block_builder b;
    nk_block_builder_init(&b, 4);
    nk_slice s;
    build(&b, e, n, &s);
    assert_int_equal(exercise(s.data, s.len), NK_OK);

    /* Exact-size heap copies so ASan sees any overread. */
    size_t corrupt = 0;
    for (size_t pos = 0; pos < s.len; pos++) {
        for (int variant = 0; variant < 3; variant++) {
            uint8_t *m = malloc(s.len);
            assert_non_null(m);
            memcpy(m, s.data, s.len);
            m[pos] = variant == 0 ? (uint8_t)(m[pos] ^ 0x01)
                                  : (variant == 1 ? (uint8_t)(m[pos] ^ 0x80) : 0xff);
            corrupt += exercise(m, s.len) == NK_ECORRUPT;
            free(m);
        }
    }
    /* Truncations at every length. */
    for (size_t len = 0; len < s.len; len++) {
        uint8_t *m = malloc(len ? len : 1);
        assert_non_null(m);
        memcpy(m, s.data, len);
        corrupt += exercise(m, len) == NK_ECORRUPT;
        free(m);
    }
    /* Random garbage of random sizes. */
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)nk_rand_below(&r, 200);
        uint8_t *m = malloc(len ? len : 1);
        assert_non_null(m);
        nk_rand_bytes(&r, m, len);
        if (len >= 4 && nk_rand_chance(&r, 1, 2)) {
            /* plausible restart count so decoding gets past open */
            uint32_t nr = (uint32_t)nk_rand_below(&r, 4);
            if (4 + 4 * (size_t)nr <= len) {
                m[len - 4] = (uint8_t)nr;
                m[len - 3] = m[len - 2] = m[len - 1] = 0;
                for (uint32_t j = 0; j < nr; j++) {
                    size_t at = len - 4 - 4 * (size_t)(nr - j);
                    uint32_t off = j == 0 ? 0 : (uint32_t)(j * 7);
                    m[at] = (uint8_t)off;
                    m[at + 1] = m[at + 2] = m[at + 3] = 0;
                }
            }
        }
        (void)exercise(m, len);
        free(m);
    }
    printf("malformed blocks: %zu of %zu mutations detected as corrupt by the raw reader\n",
           corrupt, s.len * 3 + s.len);
    assert_true(corrupt > 0);
    nk_block_builder_free(&b);
}

static void test_open_errors(void **state)
{
    (void)state;
    nk_block blk;
    nk_errbuf eb;
    uint8_t buf[16] = {0};
    assert_int_equal(nk_block_open(&blk, buf, 3, &eb), NK_ECORRUPT);
    buf[12] = 5; /* 5 restarts cannot fit in 16 bytes */
    assert_int_equal(nk_block_open(&blk, buf, 16, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "offset 12"));
    memset(buf, 0, sizeof buf);
    /* 0 restarts but entry bytes present */
    assert_int_equal(nk_block_open(&blk, buf, 8, &eb), NK_ECORRUPT);
    /* first restart not 0 */
    buf[4] = 1;
    buf[8] = 1;
    assert_int_equal(nk_block_open(&blk, buf, 12, &eb), NK_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_prefix_compression),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
