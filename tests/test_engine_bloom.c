/* test_engine_bloom.c - bloom filter: no false negatives, measured FP rate,
 * serialised form, damaged filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <xxhash.h>

#include "nokv/engine/bloom.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"

#define KAT_XXH64 UINT64_C(0xfe076bd66b1fc3ff)

static size_t key_of(uint64_t i, uint8_t *buf)
{
    /* "user%012llu"-like keys: realistic, highly similar keys. */
    static const char prefix[] = "user";
    memcpy(buf, prefix, 4);
    for (int d = 15; d >= 4; d--) {
        buf[d] = (uint8_t)('0' + i % 10);
        i /= 10;
    }
    return 16;
}

/* Build a filter over keys [0, n) and measure false positives over keys
 * [n, 2n); returns FP per million. */
static uint64_t fp_ppm(unsigned bits_per_key, uint64_t n, size_t *filter_len)
{
    nk_bloom_builder b;
    nk_bloom_builder_init(&b, bits_per_key);
    uint8_t k[16];
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(nk_bloom_add(&b, k, key_of(i, k)), NK_OK);
    }
    nk_buf f = {0};
    assert_int_equal(nk_bloom_finish(&b, &f), NK_OK);
    assert_int_equal(nk_bloom_check(f.data, f.len), NK_OK);
    for (uint64_t i = 0; i < n; i++) {
        assert_true(nk_bloom_may_contain(f.data, f.len, k, key_of(i, k)));
    }
    uint64_t fp = 0;
    for (uint64_t i = n; i < 2 * n; i++) {
        fp += nk_bloom_may_contain(f.data, f.len, k, key_of(i, k));
    }
    *filter_len = f.len;
    nk_buf_free(&f);
    nk_bloom_builder_free(&b);
    return fp * 1000000 / n;
}

static void test_fp_rate(void **state)
{
    (void)state;
    size_t len5, len10, len20;
    uint64_t p5 = fp_ppm(5, 100000, &len5);
    uint64_t p10 = fp_ppm(10, 100000, &len10);
    uint64_t p20 = fp_ppm(20, 100000, &len20);
    printf("bloom FP rate over 100k absent keys: 5 bits/key %.3f%%, 10 bits/key %.3f%%, "
           "20 bits/key %.4f%%; 10 bits/key filter = %zu bytes\n",
           (double)p5 / 1e4, (double)p10 / 1e4, (double)p20 / 1e4, len10);
    assert_true(p10 < 20000); /* < 2% (theory: ~0.8%) */
    assert_true(p5 < 120000); /* theory: ~9% */
    assert_true(p20 < 1000);  /* theory: ~0.007% */
    assert_true(p20 < p10 && p10 < p5);
    assert_int_equal(len10, 100000 * 10 / 8 + 2);
}

static void test_small_and_empty(void **state)
{
    (void)state;
    nk_bloom_builder b;
    nk_bloom_builder_init(&b, 0);
    nk_buf f = {0};
    /* empty set: nothing may match */
    assert_int_equal(nk_bloom_finish(&b, &f), NK_OK);
    assert_int_equal(f.len, 8 + 2);
    assert_false(nk_bloom_may_contain(f.data, f.len, (const uint8_t *)"x", 1));
    nk_buf_clear(&f);
    /* one key, empty key, reuse after finish */
    assert_int_equal(nk_bloom_add(&b, (const uint8_t *)"hello", 5), NK_OK);
    assert_int_equal(nk_bloom_add(&b, (const uint8_t *)"", 0), NK_OK);
    assert_int_equal(nk_bloom_builder_count(&b), 2);
    assert_int_equal(nk_bloom_finish(&b, &f), NK_OK);
    assert_int_equal(nk_bloom_builder_count(&b), 0);
    assert_true(nk_bloom_may_contain(f.data, f.len, (const uint8_t *)"hello", 5));
    assert_true(nk_bloom_may_contain(f.data, f.len, (const uint8_t *)"", 0));
    assert_true(nk_bloom_may_contain_hash(f.data, f.len, nk_bloom_hash((const uint8_t *)"hello", 5)));
    nk_buf_free(&f);
    nk_bloom_builder_free(&b);
}

/* The serialised filter is a pure function of the keys: two builds agree
 * byte for byte (no pointer values, no uninitialised bytes). */
static void test_deterministic(void **state)
{
    (void)state;
    nk_buf f1 = {0}, f2 = {0};
    for (int round = 0; round < 2; round++) {
        nk_bloom_builder b;
        nk_bloom_builder_init(&b, 10);
        uint8_t k[16];
        for (uint64_t i = 0; i < 1000; i++) {
            assert_int_equal(nk_bloom_add(&b, k, key_of(i * 7, k)), NK_OK);
        }
        assert_int_equal(nk_bloom_finish(&b, round ? &f2 : &f1), NK_OK);
        nk_bloom_builder_free(&b);
    }
    assert_int_equal(f1.len, f2.len);
    assert_memory_equal(f1.data, f2.data, f1.len);
    /* Known answer: pins the on-disk format (hash, probes, layout) against
     * accidental change; a deliberate change bumps NK_BLOOM_SCHEME. */
    printf("bloom known-answer: k=%u len=%zu xxh64=%016llx\n", f1.data[f1.len - 2], f1.len,
           (unsigned long long)XXH64(f1.data, f1.len, 0));
    assert_int_equal(f1.data[f1.len - 2], 7);
    assert_int_equal(f1.len, 1252);
    assert_true(XXH64(f1.data, f1.len, 0) == KAT_XXH64);
    assert_int_equal(f1.data[f1.len - 1], NK_BLOOM_SCHEME);
    nk_buf_free(&f1);
    nk_buf_free(&f2);
}

static void test_damaged(void **state)
{
    (void)state;
    nk_bloom_builder b;
    nk_bloom_builder_init(&b, 10);
    assert_int_equal(nk_bloom_add(&b, (const uint8_t *)"k", 1), NK_OK);
    nk_buf f = {0};
    assert_int_equal(nk_bloom_finish(&b, &f), NK_OK);
    /* too short, unknown scheme, impossible k: unusable -> check fails and
     * every probe answers maybe (never a false negative) */
    assert_int_equal(nk_bloom_check(f.data, 2), NK_ECORRUPT);
    assert_true(nk_bloom_may_contain(f.data, 0, (const uint8_t *)"z", 1));
    f.data[f.len - 1] = 9;
    assert_int_equal(nk_bloom_check(f.data, f.len), NK_ECORRUPT);
    assert_true(nk_bloom_may_contain(f.data, f.len, (const uint8_t *)"z", 1));
    f.data[f.len - 1] = NK_BLOOM_SCHEME;
    f.data[f.len - 2] = 0;
    assert_int_equal(nk_bloom_check(f.data, f.len), NK_ECORRUPT);
    f.data[f.len - 2] = 31;
    assert_int_equal(nk_bloom_check(f.data, f.len), NK_ECORRUPT);
    assert_true(nk_bloom_may_contain(f.data, f.len, (const uint8_t *)"z", 1));
    nk_buf_free(&f);
    nk_bloom_builder_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp_rate),
        cmocka_unit_test(test_small_and_empty),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
