/* test_engine_cache.c - byte-bounded LRU block cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/engine/cache.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

static int live_values; /* values not yet passed to the deleter */

static void del_value(void *v)
{
    free(v);
    live_values--;
}

static void *val(uint64_t x)
{
    uint64_t *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = x;
    live_values++;
    return p;
}

static void put(nk_cache *c, uint64_t file, uint64_t off, size_t charge)
{
    assert_int_equal(
        nk_cache_insert(c, file, off, val(file * 1000 + off), charge, del_value, NULL), NK_OK);
}

static bool present(nk_cache *c, uint64_t file, uint64_t off)
{
    nk_cache_handle *h = nk_cache_lookup(c, file, off);
    if (h == NULL) {
        return false;
    }
    assert_int_equal(*(uint64_t *)nk_cache_value(h), file * 1000 + off);
    nk_cache_release(c, h);
    return true;
}

static void test_lru_order(void **state)
{
    (void)state;
    nk_cache *c;
    assert_int_equal(nk_cache_new(300, &c), NK_OK);
    put(c, 1, 0, 100);
    put(c, 1, 100, 100);
    put(c, 2, 0, 100);
    assert_int_equal(nk_cache_get_stats(c).usage, 300);
    assert_true(present(c, 1, 0)); /* now most recent: (1,100) is oldest */
    put(c, 3, 0, 100);             /* evicts exactly (1,100) */
    assert_false(present(c, 1, 100));
    assert_true(present(c, 1, 0));
    assert_true(present(c, 2, 0));
    assert_true(present(c, 3, 0));
    nk_cache_stats s = nk_cache_get_stats(c);
    assert_int_equal(s.evictions, 1);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.usage, 300);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits, 4);
    /* one entry bigger than everything: evicts all others and itself */
    put(c, 4, 0, 1000);
    assert_int_equal(nk_cache_get_stats(c).usage, 0);
    assert_int_equal(live_values, 0);
    nk_cache_free(c);
}

static void test_pinned_survive(void **state)
{
    (void)state;
    nk_cache *c;
    assert_int_equal(nk_cache_new(200, &c), NK_OK);
    nk_cache_handle *h;
    assert_int_equal(nk_cache_insert(c, 9, 0, val(9000), 150, del_value, &h), NK_OK);
    put(c, 9, 1, 150); /* over capacity: only the unpinned newcomer can go */
    assert_true(present(c, 9, 0));
    assert_false(present(c, 9, 1));
    /* replace a pinned entry: holder keeps the old value */
    assert_int_equal(nk_cache_insert(c, 9, 0, val(4242), 10, del_value, NULL), NK_OK);
    assert_int_equal(*(uint64_t *)nk_cache_value(h), 9000);
    assert_int_equal(live_values, 2);
    nk_cache_release(c, h); /* old one freed now */
    assert_int_equal(live_values, 1);
    nk_cache_handle *h2 = nk_cache_lookup(c, 9, 0);
    assert_non_null(h2);
    assert_int_equal(*(uint64_t *)nk_cache_value(h2), 4242);
    /* erase while held: gone for lookups, freed on release */
    nk_cache_erase_file(c, 9);
    assert_null(nk_cache_lookup(c, 9, 0));
    assert_int_equal(live_values, 1);
    nk_cache_release(c, h2);
    assert_int_equal(live_values, 0);
    assert_int_equal(nk_cache_get_stats(c).usage, 0);
    nk_cache_free(c);
}

static void test_erase_file(void **state)
{
    (void)state;
    nk_cache *c;
    assert_int_equal(nk_cache_new(1 << 20, &c), NK_OK);
    for (uint64_t f = 1; f <= 5; f++) {
        for (uint64_t off = 0; off < 200; off++) {
            put(c, f, off * 4096, 100);
        }
    }
    assert_int_equal(nk_cache_get_stats(c).entries, 1000);
    nk_cache_erase_file(c, 3);
    assert_int_equal(nk_cache_get_stats(c).entries, 800);
    assert_int_equal(live_values, 800);
    for (uint64_t off = 0; off < 200; off++) {
        assert_false(present(c, 3, off * 4096));
        assert_true(present(c, 2, off * 4096));
    }
    nk_cache_free(c);
    assert_int_equal(live_values, 0);
}

/* Against a model LRU (array ordered oldest -> newest): same contents after
 * every step, usage never above capacity (nothing is pinned here). */
static void test_model(void **state)
{
    (void)state;
    enum { CAP = 5000, MAXE = 512 };
    typedef struct {
        uint64_t f, o;
        size_t charge;
    } ment;
    ment m[MAXE];
    size_t n = 0, usage = 0;
    nk_cache *c;
    assert_int_equal(nk_cache_new(CAP, &c), NK_OK);
    nk_rand r;
    nk_rand_seed(&r, 11);
    for (int step = 0; step < 20000; step++) {
        uint64_t f = nk_rand_below(&r, 4), o = nk_rand_below(&r, 40);
        size_t at = n;
        for (size_t i = 0; i < n; i++) {
            if (m[i].f == f && m[i].o == o) {
                at = i;
            }
        }
        if (nk_rand_chance(&r, 1, 2)) { /* lookup */
            bool hit = present(c, f, o);
            assert_int_equal(hit, at < n);
            if (hit) { /* move to newest */
                ment e = m[at];
                memmove(&m[at], &m[at + 1], (n - at - 1) * sizeof m[0]);
                m[n - 1] = e;
            }
        } else { /* insert / replace */
            size_t charge = 1 + (size_t)nk_rand_below(&r, 600);
            put(c, f, o, charge);
            if (at < n) {
                usage -= m[at].charge;
                memmove(&m[at], &m[at + 1], (n - at - 1) * sizeof m[0]);
                n--;
            }
            m[n].f = f;
            m[n].o = o;
            m[n].charge = charge;
            n++;
            usage += charge;
            while (usage > CAP) {
                usage -= m[0].charge;
                memmove(&m[0], &m[1], (n - 1) * sizeof m[0]);
                n--;
            }
        }
        nk_cache_stats s = nk_cache_get_stats(c);
        assert_int_equal(s.usage, usage);
        assert_int_equal(s.entries, n);
        assert_true(s.usage <= CAP);
    }
    nk_cache_free(c);
    assert_int_equal(live_values, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_pinned_survive),
        cmocka_unit_test(test_erase_file),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
