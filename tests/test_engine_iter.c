/*
 * test_engine_iter.c - merging iterator and user-visible iterator against a
 * model: several memtables (and a table on the real runtime) holding
 * overlapping versions, random snapshots and bounds, random walks that mix
 * seeks and direction changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "net/rt_real.h"
#include "nokv/engine/dbiter.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/iter.h"
#include "nokv/engine/memtable.h"
#include "nokv/engine/sst.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

enum { MAX_SRC = 4 };

typedef struct op {
    uint8_t uk[4];
    size_t ul;
    uint64_t seq;
    nk_ktype type;
    uint32_t val;
    uint8_t ikey[16];
    size_t klen;
} op;

typedef struct world {
    op *ops; /* sorted by internal key, unique */
    size_t n;
    uint64_t max_seq;
    nk_memtable *mem[MAX_SRC];
    size_t nsrc;
} world;

static int op_cmp(const void *a, const void *b)
{
    const op *x = a, *y = b;
    return nk_ikey_cmp(x->ikey, x->klen, y->ikey, y->klen);
}

static void rand_ukey(nk_rand *r, uint8_t *k, size_t *len)
{
    *len = 1 + (size_t)nk_rand_below(r, 2);
    for (size_t i = 0; i < *len; i++) {
        k[i] = (uint8_t)('a' + nk_rand_below(r, 5));
    }
}

/* n writes spread over nsrc memtables. Sources are "newest first" like an
 * LSM, but overlap freely, and ~5% of writes are duplicated into a second
 * source (as after a flush that has not yet dropped its memtable). */
static void world_gen(world *w, nk_rand *r, size_t n, size_t nsrc)
{
    memset(w, 0, sizeof *w);
    w->ops = calloc(n, sizeof *w->ops);
    assert_non_null(w->ops);
    w->nsrc = nsrc;
    for (size_t s = 0; s < nsrc; s++) {
        nk_rand hr;
        nk_rand_seed(&hr, 1000 + s);
        assert_int_equal(nk_memtable_new(&hr, 0, &w->mem[s]), NK_OK);
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        op *o = &w->ops[i];
        rand_ukey(r, o->uk, &o->ul);
        o->seq = ++seq;
        o->type = nk_rand_chance(r, 1, 4) ? NK_KT_DELETE : NK_KT_PUT;
        o->val = o->type == NK_KT_PUT ? (uint32_t)nk_rand_next(r) : 0;
        o->klen = nk_ikey_encode(o->ikey, o->uk, o->ul, o->seq, o->type);
        size_t s = (size_t)nk_rand_below(r, nsrc);
        assert_int_equal(nk_memtable_add(w->mem[s], o->seq, o->type, o->uk, o->ul,
                                         (const uint8_t *)&o->val,
                                         o->type == NK_KT_PUT ? 4 : 0),
                         NK_OK);
        if (nsrc > 1 && nk_rand_chance(r, 1, 20)) {
            size_t s2 = (s + 1 + (size_t)nk_rand_below(r, nsrc - 1)) % nsrc;
            assert_int_equal(nk_memtable_add(w->mem[s2], o->seq, o->type, o->uk, o->ul,
                                             (const uint8_t *)&o->val,
                                             o->type == NK_KT_PUT ? 4 : 0),
                             NK_OK);
        }
    }
    w->n = n;
    w->max_seq = seq;
    qsort(w->ops, n, sizeof *w->ops, op_cmp);
}

static void world_free(world *w)
{
    for (size_t s = 0; s < w->nsrc; s++) {
        nk_memtable_free(w->mem[s]);
    }
    free(w->ops);
}

static nk_iter *merged(world *w, nk_iter *extra)
{
    nk_iter *kids[MAX_SRC + 1];
    size_t n = 0;
    for (size_t s = 0; s < w->nsrc; s++) {
        assert_int_equal(nk_iter_memtable(w->mem[s], &kids[n++]), NK_OK);
    }
    if (extra != NULL) {
        kids[n++] = extra;
    }
    nk_iter *m;
    assert_int_equal(nk_iter_merge(kids, n, &m), NK_OK);
    return m;
}

/* --------------------------------------------------------- merge only --- */

static void assert_op(const nk_iter *it, const op *o)
{
    assert_true(nk_iter_valid(it));
    nk_slice k = nk_iter_key(it);
    assert_int_equal(k.len, o->klen);
    assert_memory_equal(k.data, o->ikey, k.len);
    nk_slice v = nk_iter_value(it);
    if (o->type == NK_KT_PUT) {
        assert_int_equal(v.len, 4);
        assert_memory_equal(v.data, &o->val, 4);
    }
}

static void test_merge_model(void **state)
{
    (void)state;
    nk_rand r;
    nk_rand_seed(&r, 3);
    for (int round = 0; round < 10; round++) {
        world w;
        world_gen(&w, &r, 400, 1 + (size_t)nk_rand_below(&r, MAX_SRC));
        nk_iter *m = merged(&w, NULL);
        size_t i = 0;
        for (nk_iter_first(m); nk_iter_valid(m); nk_iter_next(m)) {
            assert_op(m, &w.ops[i++]); /* duplicates across sources appear once */
        }
        assert_int_equal(i, w.n);
        for (nk_iter_last(m); nk_iter_valid(m); nk_iter_prev(m)) {
            assert_op(m, &w.ops[--i]);
        }
        assert_int_equal(i, 0);
        /* random walk with direction switches */
        size_t pos = 0;
        nk_iter_first(m);
        for (int step = 0; step < 3000; step++) {
            unsigned what = (unsigned)nk_rand_below(&r, 10);
            if (what == 0) {
                op probe;
                rand_ukey(&r, probe.uk, &probe.ul);
                probe.klen = nk_ikey_encode(probe.ikey, probe.uk, probe.ul,
                                            nk_rand_below(&r, w.max_seq + 2), NK_KT_SEEK);
                size_t lo = 0, hi = w.n;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (op_cmp(&w.ops[mid], &probe) < 0) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                if (nk_rand_chance(&r, 1, 2)) {
                    nk_iter_seek(m, probe.ikey, probe.klen);
                    pos = lo;
                } else {
                    nk_iter_seek_for_prev(m, probe.ikey, probe.klen);
                    pos = (lo < w.n && op_cmp(&w.ops[lo], &probe) == 0) ? lo : lo - 1;
                }
            } else if (pos >= w.n) {
                assert_false(nk_iter_valid(m));
                if (nk_rand_chance(&r, 1, 2)) {
                    nk_iter_first(m);
                    pos = 0;
                } else {
                    nk_iter_last(m);
                    pos = w.n - 1;
                }
            } else if (what < 6) {
                nk_iter_next(m);
                pos++;
            } else {
                nk_iter_prev(m);
                pos--;
            }
            if (pos < w.n) {
                assert_op(m, &w.ops[pos]);
            } else {
                assert_false(nk_iter_valid(m));
            }
        }
        assert_int_equal(nk_iter_status(m, NULL), NK_OK);
        nk_iter_free(m);
        world_free(&w);
    }
}

/* ------------------------------------------------------------ db iter --- */

typedef struct vis {
    uint8_t uk[4];
    size_t ul;
    uint32_t val;
} vis;

/* Model view at snap within [lo, hi): newest version <= snap per key. */
static size_t visible(const world *w, uint64_t snap, const vis *lo, const vis *hi, vis *out)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n;) {
        size_t j = i;
        const op *newest = NULL;
        while (j < w->n && nk_bytes_cmp(w->ops[j].uk, w->ops[j].ul, w->ops[i].uk,
                                        w->ops[i].ul) == 0) {
            if (newest == NULL && w->ops[j].seq <= snap) {
                newest = &w->ops[j]; /* sorted by seq descending within a key */
            }
            j++;
        }
        const op *o = &w->ops[i];
        bool in = (lo == NULL || nk_bytes_cmp(o->uk, o->ul, lo->uk, lo->ul) >= 0) &&
                  (hi == NULL || nk_bytes_cmp(o->uk, o->ul, hi->uk, hi->ul) < 0);
        if (in && newest != NULL && newest->type == NK_KT_PUT) {
            memcpy(out[n].uk, o->uk, o->ul);
            out[n].ul = o->ul;
            out[n].val = newest->val;
            n++;
        }
        i = j;
    }
    return n;
}

static void assert_vis(const nk_dbiter *it, const vis *v)
{
    assert_true(nk_dbiter_valid(it));
    nk_slice k = nk_dbiter_key(it), val = nk_dbiter_value(it);
    assert_int_equal(k.len, v->ul);
    assert_memory_equal(k.data, v->uk, k.len);
    assert_int_equal(val.len, 4);
    assert_memory_equal(val.data, &v->val, 4);
}

static void check_dbiter(world *w, nk_rand *r, nk_iter *(*make)(world *, void *), void *ctx)
{
    vis *view = calloc(w->n + 1, sizeof *view);
    assert_non_null(view);
    for (int cfg = 0; cfg < 40; cfg++) {
        uint64_t snap = nk_rand_below(r, w->max_seq + 2);
        vis lo, hi;
        rand_ukey(r, lo.uk, &lo.ul);
        rand_ukey(r, hi.uk, &hi.ul);
        bool use_lo = nk_rand_chance(r, 1, 2), use_hi = nk_rand_chance(r, 1, 2);
        size_t n = visible(w, snap, use_lo ? &lo : NULL, use_hi ? &hi : NULL, view);
        nk_dbiter_options o = {.snapshot = snap};
        if (use_lo) {
            o.lower = lo.uk;
            o.lower_len = lo.ul;
        }
        if (use_hi) {
            o.upper = hi.uk;
            o.upper_len = hi.ul;
        }
        nk_dbiter *it;
        assert_int_equal(nk_dbiter_new(make(w, ctx), &o, &it), NK_OK);
        size_t i = 0;
        for (nk_dbiter_first(it); nk_dbiter_valid(it); nk_dbiter_next(it)) {
            assert_true(i < n);
            assert_vis(it, &view[i++]);
        }
        assert_int_equal(i, n);
        for (nk_dbiter_last(it); nk_dbiter_valid(it); nk_dbiter_prev(it)) {
            assert_true(i > 0);
            assert_vis(it, &view[--i]);
        }
        assert_int_equal(i, 0);
        /* random walk */
        size_t pos = SIZE_MAX;
        for (int step = 0; step < 400; step++) {
            unsigned what = (unsigned)nk_rand_below(r, 10);
            if (what < 2 || pos >= n) {
                vis t;
                rand_ukey(r, t.uk, &t.ul);
                size_t lb = 0;
                while (lb < n && nk_bytes_cmp(view[lb].uk, view[lb].ul, t.uk, t.ul) < 0) {
                    lb++;
                }
                if (nk_rand_chance(r, 1, 2)) {
                    nk_dbiter_seek(it, t.uk, t.ul);
                    pos = lb;
                } else {
                    nk_dbiter_seek_for_prev(it, t.uk, t.ul);
                    bool exact = lb < n && nk_bytes_cmp(view[lb].uk, view[lb].ul, t.uk, t.ul) == 0;
                    pos = exact ? lb : lb - 1;
                }
            } else if (what < 6) {
                nk_dbiter_next(it);
                pos++;
            } else {
                nk_dbiter_prev(it);
                pos--;
            }
            if (pos < n) {
                assert_vis(it, &view[pos]);
            } else {
                assert_false(nk_dbiter_valid(it));
            }
        }
        assert_int_equal(nk_dbiter_status(it, NULL), NK_OK);
        nk_dbiter_free(it);
    }
    free(view);
}

static nk_iter *make_mem(world *w, void *ctx)
{
    (void)ctx;
    return merged(w, NULL);
}

static void test_dbiter_model(void **state)
{
    (void)state;
    nk_rand r;
    nk_rand_seed(&r, 17);
    for (int round = 0; round < 8; round++) {
        world w;
        world_gen(&w, &r, 300, 1 + (size_t)nk_rand_below(&r, MAX_SRC));
        check_dbiter(&w, &r, make_mem, NULL);
        world_free(&w);
    }
}

static void test_dbiter_small_cases(void **state)
{
    (void)state;
    nk_rand hr;
    nk_rand_seed(&hr, 1);
    nk_memtable *m;
    assert_int_equal(nk_memtable_new(&hr, 0, &m), NK_OK);
    /* a: put@1 del@3 put@5 ; b: del@2 ; c: put@4 put@6(newer than snap 5) */
    assert_int_equal(nk_memtable_add(m, 1, NK_KT_PUT, (const uint8_t *)"a", 1,
                                     (const uint8_t *)"a1", 2), NK_OK);
    assert_int_equal(nk_memtable_add(m, 2, NK_KT_DELETE, (const uint8_t *)"b", 1, NULL, 0),
                     NK_OK);
    assert_int_equal(nk_memtable_add(m, 3, NK_KT_DELETE, (const uint8_t *)"a", 1, NULL, 0),
                     NK_OK);
    assert_int_equal(nk_memtable_add(m, 4, NK_KT_PUT, (const uint8_t *)"c", 1,
                                     (const uint8_t *)"c4", 2), NK_OK);
    assert_int_equal(nk_memtable_add(m, 5, NK_KT_PUT, (const uint8_t *)"a", 1,
                                     (const uint8_t *)"a5", 2), NK_OK);
    assert_int_equal(nk_memtable_add(m, 6, NK_KT_PUT, (const uint8_t *)"c", 1,
                                     (const uint8_t *)"c6", 2), NK_OK);
    struct {
        uint64_t snap;
        const char *want; /* "key=value ..." forward */
    } cases[] = {
        {0, ""},
        {1, "a=a1"},
        {2, "a=a1"},
        {3, ""},
        {4, "c=c4"},
        {5, "a=a5 c=c4"},
        {6, "a=a5 c=c6"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nk_iter *in;
        assert_int_equal(nk_iter_memtable(m, &in), NK_OK);
        nk_dbiter_options o = {.snapshot = cases[c].snap};
        nk_dbiter *it;
        assert_int_equal(nk_dbiter_new(in, &o, &it), NK_OK);
        char got[64] = "", rev[64] = "";
        for (nk_dbiter_first(it); nk_dbiter_valid(it); nk_dbiter_next(it)) {
            size_t l = strlen(got);
            snprintf(got + l, sizeof got - l, "%s%.*s=%.*s", l ? " " : "",
                     (int)nk_dbiter_key(it).len, (const char *)nk_dbiter_key(it).data,
                     (int)nk_dbiter_value(it).len, (const char *)nk_dbiter_value(it).data);
        }
        assert_string_equal(got, cases[c].want);
        /* reverse gives the same set */
        for (nk_dbiter_last(it); nk_dbiter_valid(it); nk_dbiter_prev(it)) {
            char one[16];
            snprintf(one, sizeof one, "%.*s=%.*s", (int)nk_dbiter_key(it).len,
                     (const char *)nk_dbiter_key(it).data, (int)nk_dbiter_value(it).len,
                     (const char *)nk_dbiter_value(it).data);
            char tmp[96];
            snprintf(tmp, sizeof tmp, "%s%s%s", one, rev[0] ? " " : "", rev);
            snprintf(rev, sizeof rev, "%.63s", tmp);
        }
        assert_string_equal(rev, cases[c].want);
        nk_dbiter_free(it);
    }
    nk_memtable_free(m);
}

/* ------------------------------------------------- with a real table --- */

typedef struct sst_ctx {
    nk_sst *t;
} sst_ctx;

static nk_iter *make_mixed(world *w, void *ctx)
{
    nk_iter *ti;
    assert_int_equal(nk_iter_sst(((sst_ctx *)ctx)->t, 0, &ti), NK_OK);
    return merged(w, ti);
}

static void test_dbiter_with_table(void **state)
{
    (void)state;
    char dir[64] = "/tmp/nokv-test-iter-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/000007.sst", dir);
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    nk_rt *rt;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);

    nk_rand r;
    nk_rand_seed(&r, 99);
    world w;
    world_gen(&w, &r, 600, 3);
    /* Flush the oldest memtable (last source) into a table, as a flush job
     * would: iterate it in order into the builder. Keep the memtable in the
     * world too, so the table duplicates it (must be seen once). */
    nk_file *f;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC,
                                     &f),
                     NK_OK);
    nk_sst_options o;
    nk_sst_options_default(&o);
    o.block_size = 128;
    nk_sst_builder *b;
    assert_int_equal(nk_sst_builder_new(rt, f, &o, &b), NK_OK);
    nk_memtable_iter mi;
    nk_memtable_iter_init(&mi, w.mem[2]);
    for (nk_skiplist_iter_first(&mi); nk_skiplist_iter_valid(&mi); nk_skiplist_iter_next(&mi)) {
        nk_slice k = nk_skiplist_iter_key(&mi), v = nk_skiplist_iter_value(&mi);
        assert_int_equal(nk_sst_builder_add(b, k.data, k.len, v.data, v.len), NK_OK);
    }
    assert_int_equal(nk_sst_builder_finish(b, NULL, NULL), NK_OK);
    nk_sst_builder_free(b);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_READ, &f), NK_OK);
    sst_ctx ctx;
    nk_errbuf eb;
    assert_int_equal(nk_sst_open(rt, f, 7, "000007.sst", NULL, &ctx.t, &eb), NK_OK);

    check_dbiter(&w, &r, make_mixed, &ctx);
    /* and with the memtable gone, the table alone stands in for it */
    nk_memtable_free(w.mem[2]);
    w.nsrc = 2;
    check_dbiter(&w, &r, make_mixed, &ctx);

    nk_sst_close(ctx.t);
    world_free(&w);
    assert_int_equal(nk_rt_remove(rt, path), NK_OK);
    assert_int_equal(nk_rt_remove(rt, dir), NK_OK);
    nk_rt_real_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_model),
        cmocka_unit_test(test_dbiter_small_cases),
        cmocka_unit_test(test_dbiter_model),
        cmocka_unit_test(test_dbiter_with_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
