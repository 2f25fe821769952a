/* test_engine_ikey.c - internal key encoding, parsing and order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nokv/engine/ikey.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[64];
    const uint8_t uk[] = "hello";
    size_t n = nk_ikey_encode(buf, uk, 5, 12345, NK_KT_PUT);
    assert_int_equal(n, 5 + NK_IKEY_TRAILER);
    nk_ikey k;
    assert_int_equal(nk_ikey_parse(buf, n, &k), NK_OK);
    assert_int_equal(k.ukey.len, 5);
    assert_memory_equal(k.ukey.data, "hello", 5);
    assert_int_equal(k.seq, 12345);
    assert_int_equal(k.type, NK_KT_PUT);

    n = nk_ikey_encode(buf, uk, 0, NK_SEQ_MAX, NK_KT_DELETE);
    assert_int_equal(nk_ikey_parse(buf, n, &k), NK_OK);
    assert_int_equal(k.ukey.len, 0);
    assert_true(k.seq == NK_SEQ_MAX);
    assert_int_equal(k.type, NK_KT_DELETE);

    nk_buf b = {0};
    assert_int_equal(nk_ikey_append(&b, uk, 5, 7, NK_KT_DELETE), NK_OK);
    assert_int_equal(nk_ikey_parse(b.data, b.len, &k), NK_OK);
    assert_int_equal(k.seq, 7);
    assert_int_equal(k.type, NK_KT_DELETE);
    nk_buf_free(&b);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    uint8_t buf[16] = {0};
    nk_ikey k;
    assert_int_equal(nk_ikey_parse(buf, 7, &k), NK_ECORRUPT);
    nk_ikey_encode(buf, (const uint8_t *)"a", 1, 1, NK_KT_PUT);
    buf[1] = 0x7f; /* unknown type byte (low byte of the trailer) */
    assert_int_equal(nk_ikey_parse(buf, 9, &k), NK_ECORRUPT);
}

static int cmp_keys(const char *a, uint64_t sa, nk_ktype ta, const char *b, uint64_t sb,
                    nk_ktype tb)
{
    uint8_t x[64], y[64];
    size_t nx = nk_ikey_encode(x, (const uint8_t *)a, strlen(a), sa, ta);
    size_t ny = nk_ikey_encode(y, (const uint8_t *)b, strlen(b), sb, tb);
    return nk_ikey_cmp(x, nx, y, ny);
}

static void test_order(void **state)
{
    (void)state;
    /* user key ascending, bytewise, prefix first */
    assert_true(cmp_keys("a", 1, NK_KT_PUT, "b", 1, NK_KT_PUT) < 0);
    assert_true(cmp_keys("a", 1, NK_KT_PUT, "ab", 9, NK_KT_PUT) < 0);
    assert_true(cmp_keys("", 1, NK_KT_PUT, "a", 9, NK_KT_PUT) < 0);
    assert_true(cmp_keys("\xff", 1, NK_KT_PUT, "\x01", 9, NK_KT_PUT) > 0);
    /* same user key: newer seq first, regardless of type */
    assert_true(cmp_keys("k", 9, NK_KT_DELETE, "k", 3, NK_KT_PUT) < 0);
    assert_true(cmp_keys("k", 3, NK_KT_PUT, "k", 9, NK_KT_PUT) > 0);
    assert_int_equal(cmp_keys("k", 3, NK_KT_PUT, "k", 3, NK_KT_PUT), 0);
    /* the seek key at snapshot S sorts before every version <= S */
    assert_true(cmp_keys("k", 5, NK_KT_SEEK, "k", 5, NK_KT_DELETE) < 0);
    assert_true(cmp_keys("k", 5, NK_KT_SEEK, "k", 5, NK_KT_PUT) <= 0);
    assert_true(cmp_keys("k", 5, NK_KT_SEEK, "k", 6, NK_KT_PUT) > 0);
    /* key larger than 2^48 seq still ordered by seq (trailer is a full u64) */
    assert_true(cmp_keys("k", (UINT64_C(1) << 50), NK_KT_PUT, "k", 255, NK_KT_PUT) < 0);
}

/* Order against a model: sort random keys with nk_ikey_cmp and check the
 * sort is (user key asc, seq desc) pairwise. */
static void test_order_random(void **state)
{
    (void)state;
    nk_rand r;
    nk_rand_seed(&r, 42);
    for (int i = 0; i < 5000; i++) {
        uint8_t ua[4], ub[4], x[16], y[16];
        size_t la = nk_rand_below(&r, 4), lb = nk_rand_below(&r, 4);
        for (size_t j = 0; j < la; j++) {
            ua[j] = (uint8_t)nk_rand_below(&r, 3);
        }
        for (size_t j = 0; j < lb; j++) {
            ub[j] = (uint8_t)nk_rand_below(&r, 3);
        }
        uint64_t sa = nk_rand_below(&r, 1000), sb = nk_rand_below(&r, 1000);
        size_t nx = nk_ikey_encode(x, ua, la, sa, NK_KT_PUT);
        size_t ny = nk_ikey_encode(y, ub, lb, sb, NK_KT_PUT);
        int uc = nk_bytes_cmp(ua, la, ub, lb);
        int want = uc != 0 ? uc : (sa > sb ? -1 : (sa < sb ? 1 : 0));
        assert_int_equal(nk_ikey_cmp(x, nx, y, ny), want);
        assert_int_equal(nk_ikey_cmp(y, ny, x, nx), -want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_order_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
