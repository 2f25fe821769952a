/* test_engine_compaction_pick.c - scores, ties and round robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/engine/compaction_pick.h"
#include "nokv/engine/ikey.h"

static nk_table_meta *meta(uint64_t number, uint64_t size, const char *lo, const char *hi)
{
    uint8_t a[64], b[64];
    size_t al = nk_ikey_encode(a, (const uint8_t *)lo, strlen(lo), 5, NK_KT_PUT);
    size_t bl = nk_ikey_encode(b, (const uint8_t *)hi, strlen(hi), 5, NK_KT_PUT);
    return nk_table_meta_new(number, size, nk_slice_make(a, al), nk_slice_make(b, bl), 5, 5);
}

static void release(void *arg, nk_table_meta *f)
{
    (void)arg;
    nk_buf_free(&f->smallest);
    nk_buf_free(&f->largest);
    free(f);
}

/* A version with the given files: {level, number, size, lo, hi}. */
typedef struct spec {
    uint32_t level;
    uint64_t number;
    uint64_t size;
    const char *lo, *hi;
} spec;

static nk_version *build(const spec *s, size_t n)
{
    nk_version *empty = nk_version_new_empty();
    nk_version_change adds[32];
    for (size_t i = 0; i < n; i++) {
        adds[i] = (nk_version_change){s[i].level, 0, meta(s[i].number, s[i].size, s[i].lo, s[i].hi)};
    }
    nk_version *v = NULL;
    assert_int_equal(nk_version_apply(empty, NULL, 0, adds, n, &v, NULL), NK_OK);
    nk_version_unref(empty, release, NULL);
    return v;
}

static nk_db_options opts(void)
{
    nk_db_options o;
    nk_db_options_default(&o);
    o.l0_compaction_trigger = 4;
    o.level1_bytes = 1000;
    o.level_multiplier = 10;
    return o;
}

static void test_targets_grow_by_multiplier(void **state)
{
    (void)state;
    nk_db_options o = opts();
    assert_int_equal(nk_level_target(&o, 1), 1000);
    assert_int_equal(nk_level_target(&o, 2), 10000);
    assert_int_equal(nk_level_target(&o, 3), 100000);
}

static void test_nothing_due_below_score_one(void **state)
{
    (void)state;
    nk_db_options o = opts();
    spec s[] = {{0, 1, 10, "a", "z"}, {0, 2, 10, "a", "z"}, {0, 3, 10, "a", "z"},
                {1, 4, 999, "a", "m"}};
    nk_version *v = build(s, 4); /* L0 3/4, L1 999/1000 */
    assert_int_equal(nk_pick_compaction_level(v, &o), -1);
    nk_version_unref(v, release, NULL);
}

static void test_l0_trigger_and_highest_score_wins(void **state)
{
    (void)state;
    nk_db_options o = opts();
    spec s[] = {{0, 1, 10, "a", "z"}, {0, 2, 10, "a", "z"}, {0, 3, 10, "a", "z"},
                {0, 4, 10, "a", "z"}, {1, 5, 900, "a", "m"}};
    nk_version *v = build(s, 5); /* L0 4/4 = 1.0 */
    assert_int_equal(nk_pick_compaction_level(v, &o), 0);
    nk_version_unref(v, release, NULL);

    spec t[] = {{0, 1, 10, "a", "z"}, {0, 2, 10, "a", "z"}, {0, 3, 10, "a", "z"},
                {0, 4, 10, "a", "z"}, {1, 5, 1500, "a", "m"}, {2, 6, 9000, "a", "z"}};
    v = build(t, 6); /* L0 1.0, L1 1.5, L2 0.9: L1 */
    assert_int_equal(nk_pick_compaction_level(v, &o), 1);
    nk_version_unref(v, release, NULL);

    spec u[] = {{1, 5, 2000, "a", "m"}, {2, 6, 30000, "a", "z"}};
    v = build(u, 2); /* L1 2.0, L2 3.0: L2 */
    assert_int_equal(nk_pick_compaction_level(v, &o), 2);
    nk_version_unref(v, release, NULL);
}

static void test_ties_keep_the_lower_level(void **state)
{
    (void)state;
    nk_db_options o = opts();
    spec s[] = {{1, 5, 2000, "a", "m"}, {2, 6, 20000, "a", "z"}}; /* both 2.0 */
    nk_version *v = build(s, 2);
    assert_int_equal(nk_pick_compaction_level(v, &o), 1);
    nk_version_unref(v, release, NULL);
}

static void test_last_level_never_compacts(void **state)
{
    (void)state;
    nk_db_options o = opts();
    spec s[] = {{NK_LEVELS - 1, 9, UINT64_C(1) << 40, "a", "z"}};
    nk_version *v = build(s, 1);
    assert_int_equal(nk_pick_compaction_level(v, &o), -1);
    nk_version_unref(v, release, NULL);
}

static void test_round_robin_walks_the_level(void **state)
{
    (void)state;
    spec s[] = {{1, 1, 10, "a", "c"}, {1, 2, 10, "d", "f"}, {1, 3, 10, "g", "i"}};
    nk_version *v = build(s, 3);
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make(NULL, 0)), 0);
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make("c", 1)), 1);
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make("e", 1)), 1);
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make("f", 1)), 2);
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make("i", 1)), 0); /* wraps */
    assert_int_equal(nk_pick_file_round_robin(v, 1, nk_slice_make("zz", 2)), 0);
    nk_version_unref(v, release, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_grow_by_multiplier),
        cmocka_unit_test(test_nothing_due_below_score_one),
        cmocka_unit_test(test_l0_trigger_and_highest_score_wins),
        cmocka_unit_test(test_ties_keep_the_lower_level),
        cmocka_unit_test(test_last_level_never_compacts),
        cmocka_unit_test(test_round_robin_walks_the_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
