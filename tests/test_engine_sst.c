/*
 * test_engine_sst.c - SST builder/reader on the real runtime (files in a
 * fresh mkdtemp directory under /tmp, removed at the end): round trips
 * against a model, seeks, snapshot gets, bloom skipping, the block cache,
 * and damaged files (every byte flipped: an error naming the table, or
 * exactly the original data; never a wrong value).
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
#include "nokv/engine/cache.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/sst.h"
#include "nokv/rt.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

typedef struct fixture {
    nk_rt *rt;
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL) {
        return -1;
    }
    snprintf(fx->dir, sizeof fx->dir, "/tmp/nokv-test-sst-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof fx->path, "%s/000001.sst", fx->dir);
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    if (nk_rt_real_new(&cfg, &fx->rt) != NK_OK) {
        rmdir(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    (void)nk_rt_remove(fx->rt, fx->path);
    (void)nk_rt_remove(fx->rt, fx->dir);
    nk_rt_real_free(fx->rt);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------- model --- */

typedef struct entry {
    uint8_t ikey[32];
    size_t klen;
    uint8_t *val;
    size_t vlen;
} entry;

typedef struct model {
    entry *e;
    size_t n;
    uint64_t max_seq;
} model;

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return nk_ikey_cmp(x->ikey, x->klen, y->ikey, y->klen);
}

static size_t ukey_of(uint64_t i, uint8_t *out)
{
    return (size_t)snprintf((char *)out, 20, "key%06llu", (unsigned long long)i);
}

/* n writes over `keys` distinct user keys (even-numbered: odd ones are
 * guaranteed absent), many versions and deletes, some values larger than a
 * block. */
static void model_gen(model *m, nk_rand *r, size_t n, uint64_t keys)
{
    m->e = calloc(n, sizeof *m->e);
    assert_non_null(m->e);
    m->n = n;
    uint64_t seq = 100;
    for (size_t i = 0; i < n; i++) {
        uint8_t uk[20];
        size_t ul = ukey_of(2 * nk_rand_below(r, keys), uk);
        seq += 1 + nk_rand_below(r, 2);
        nk_ktype t = nk_rand_chance(r, 1, 5) ? NK_KT_DELETE : NK_KT_PUT;
        m->e[i].klen = nk_ikey_encode(m->e[i].ikey, uk, ul, seq, t);
        if (t == NK_KT_PUT) {
            m->e[i].vlen = nk_rand_chance(r, 1, 50) ? 3000 + (size_t)nk_rand_below(r, 3000)
                                                      : (size_t)nk_rand_below(r, 64);
            m->e[i].val = malloc(m->e[i].vlen ? m->e[i].vlen : 1);
            assert_non_null(m->e[i].val);
            /* compressible-ish values so lz4 gets used */
            for (size_t j = 0; j < m->e[i].vlen; j++) {
                m->e[i].val[j] = (uint8_t)('a' + (j + i) % 7);
            }
        }
    }
    m->max_seq = seq;
    qsort(m->e, n, sizeof *m->e, entry_cmp);
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].val);
    }
    free(m->e);
}

/* Lower bound of an internal key in the model. */
static size_t model_lb(const model *m, const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (nk_ikey_cmp(m->e[mid].ikey, m->e[mid].klen, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static uint64_t write_table(fixture *fx, const model *m, const nk_sst_options *o,
                            nk_sst_props *props)
{
    nk_file *f;
    assert_int_equal(nk_rt_file_open(fx->rt, fx->path,
                                     NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    nk_sst_builder *b;
    assert_int_equal(nk_sst_builder_new(fx->rt, f, o, &b), NK_OK);
    for (size_t i = 0; i < m->n; i++) {
        assert_int_equal(nk_sst_builder_add(b, m->e[i].ikey, m->e[i].klen, m->e[i].val,
                                            m->e[i].vlen),
                         NK_OK);
    }
    uint64_t size;
    assert_int_equal(nk_sst_builder_finish(b, &size, props), NK_OK);
    nk_sst_builder_free(b);
    assert_int_equal(nk_rt_file_sync(fx->rt, f), NK_OK);
    assert_int_equal(nk_rt_file_close(fx->rt, f), NK_OK);
    return size;
}

static int open_table(fixture *fx, nk_cache *cache, nk_sst **t, nk_errbuf *eb)
{
    nk_file *f;
    assert_int_equal(nk_rt_file_open(fx->rt, fx->path, NK_OPEN_READ, &f), NK_OK);
    int rc = nk_sst_open(fx->rt, f, 1, "000001.sst", cache, t, eb);
    if (rc != NK_OK) {
        nk_rt_file_close(fx->rt, f);
    }
    return rc;
}

static void assert_entry(const nk_sst_iter *it, const entry *e)
{
    assert_true(nk_sst_iter_valid(it));
    nk_slice k = nk_sst_iter_key(it), v = nk_sst_iter_value(it);
    assert_int_equal(k.len, e->klen);
    assert_memory_equal(k.data, e->ikey, k.len);
    assert_int_equal(v.len, e->vlen);
    if (v.len) {
        assert_memory_equal(v.data, e->val, v.len);
    }
}

static void check_iter(nk_sst *t, const model *m, unsigned flags, nk_rand *r)
{
    nk_sst_iter *it;
    assert_int_equal(nk_sst_iter_new(t, flags, &it), NK_OK);
    size_t i = 0;
    for (nk_sst_iter_first(it); nk_sst_iter_valid(it); nk_sst_iter_next(it)) {
        assert_entry(it, &m->e[i++]);
    }
    assert_int_equal(nk_sst_iter_status(it, NULL), NK_OK);
    assert_int_equal(i, m->n);
    for (nk_sst_iter_last(it); nk_sst_iter_valid(it); nk_sst_iter_prev(it)) {
        assert_entry(it, &m->e[--i]);
    }
    assert_int_equal(i, 0);
    for (int q = 0; q < 300; q++) {
        uint8_t uk[20], probe[40];
        size_t ul = ukey_of(nk_rand_below(r, 2 * (m->n + 2)), uk);
        size_t pl = nk_ikey_encode(probe, uk, ul, nk_rand_below(r, m->max_seq + 2), NK_KT_SEEK);
        size_t lb = model_lb(m, probe, pl);
        size_t pos;
        if (nk_rand_chance(r, 1, 2)) {
            nk_sst_iter_seek(it, probe, pl);
            pos = lb;
        } else {
            nk_sst_iter_seek_for_prev(it, probe, pl);
            pos = lb - 1; /* last entry < probe (wraps to "none" when lb == 0) */
            if (lb < m->n && nk_ikey_cmp(m->e[lb].ikey, m->e[lb].klen, probe, pl) == 0) {
                pos = lb;
            }
        }
        for (int step = 0; step < 6; step++) {
            if (pos >= m->n) {
                assert_false(nk_sst_iter_valid(it));
                break;
            }
            assert_entry(it, &m->e[pos]);
            if (nk_rand_chance(r, 1, 2)) {
                nk_sst_iter_next(it);
                pos++;
            } else {
                nk_sst_iter_prev(it);
                pos--;
            }
        }
    }
    assert_int_equal(nk_sst_iter_status(it, NULL), NK_OK);
    nk_sst_iter_free(it);
}

/* Model answer for get(ukey, snap). */
static nk_lookup model_get(const model *m, const uint8_t *uk, size_t ul, uint64_t snap,
                           const entry **hit)
{
    uint8_t probe[40];
    size_t pl = nk_ikey_encode(probe, uk, ul, snap, NK_KT_SEEK);
    size_t lb = model_lb(m, probe, pl);
    if (lb == m->n) {
        return NK_LOOKUP_MISS;
    }
    nk_ikey ik;
    assert_int_equal(nk_ikey_parse(m->e[lb].ikey, m->e[lb].klen, &ik), NK_OK);
    if (nk_bytes_cmp(ik.ukey.data, ik.ukey.len, uk, ul) != 0) {
        return NK_LOOKUP_MISS;
    }
    *hit = &m->e[lb];
    return ik.type == NK_KT_PUT ? NK_LOOKUP_VALUE : NK_LOOKUP_DELETED;
}

static void check_gets(nk_sst *t, const model *m, uint64_t keys, nk_rand *r)
{
    nk_buf v = {0};
    for (int q = 0; q < 2000; q++) {
        uint8_t uk[20];
        size_t ul = ukey_of(nk_rand_below(r, 2 * keys), uk);
        uint64_t snap = nk_rand_below(r, m->max_seq + 2);
        const entry *hit = NULL;
        nk_lookup want = model_get(m, uk, ul, snap, &hit), res;
        uint64_t seq = 0;
        nk_errbuf eb;
        assert_int_equal(nk_sst_get(t, uk, ul, snap, &res, &v, &seq, &eb), NK_OK);
        assert_int_equal(res, want);
        if (res == NK_LOOKUP_VALUE) {
            assert_int_equal(v.len, hit->vlen);
            if (v.len) {
                assert_memory_equal(v.data, hit->val, v.len);
            }
        }
        if (res != NK_LOOKUP_MISS) {
            nk_ikey ik;
            assert_int_equal(nk_ikey_parse(hit->ikey, hit->klen, &ik), NK_OK);
            assert_int_equal(seq, ik.seq);
        }
    }
    nk_buf_free(&v);
}

/* -------------------------------------------------------------- tests --- */

static void test_roundtrip(void **state)
{
    fixture *fx = *state;
    nk_rand r;
    nk_rand_seed(&r, 31);
    model m;
    const uint64_t keys = 1500;
    model_gen(&m, &r, 4000, keys);
    nk_sst_options o;
    nk_sst_options_default(&o);
    o.block_size = 512; /* many blocks */
    nk_sst_props props = {0};
    uint64_t size = write_table(fx, &m, &o, &props);

    nk_cache *cache;
    assert_int_equal(nk_cache_new(64 * 1024, &cache), NK_OK);
    nk_sst *t;
    nk_errbuf eb;
    assert_int_equal(open_table(fx, cache, &t, &eb), NK_OK);
    const nk_sst_props *p = nk_sst_get_props(t);
    assert_int_equal(nk_sst_file_size(t), size);
    assert_int_equal(p->entries, m.n);
    assert_int_equal(props.entries, m.n);
    assert_true(p->data_blocks > 50);
    assert_int_equal(p->data_blocks, props.data_blocks);
    assert_int_equal(p->smallest.len, m.e[0].klen);
    assert_memory_equal(p->smallest.data, m.e[0].ikey, m.e[0].klen);
    assert_memory_equal(p->largest.data, m.e[m.n - 1].ikey, m.e[m.n - 1].klen);
    assert_int_equal(p->max_seq, m.max_seq);
    assert_int_equal(p->min_seq, props.min_seq);
    uint64_t deletes = 0, raw_k = 0, raw_v = 0;
    for (size_t i = 0; i < m.n; i++) {
        nk_ikey ik;
        assert_int_equal(nk_ikey_parse(m.e[i].ikey, m.e[i].klen, &ik), NK_OK);
        deletes += ik.type == NK_KT_DELETE;
        raw_k += m.e[i].klen;
        raw_v += m.e[i].vlen;
    }
    assert_int_equal(p->deletes, deletes);
    assert_int_equal(p->raw_key_bytes, raw_k);
    assert_int_equal(p->raw_value_bytes, raw_v);
    assert_true(nk_sst_has_filter(t));
    printf("sst: %zu entries, %llu data blocks, %llu bytes on disk for %llu raw bytes\n", m.n,
           (unsigned long long)p->data_blocks, (unsigned long long)size,
           (unsigned long long)(raw_k + raw_v));
    assert_true(size < raw_k + raw_v); /* lz4 + prefix compression pay */

    check_iter(t, &m, 0, &r);
    check_iter(t, &m, NK_SST_NO_CACHE, &r);
    check_gets(t, &m, keys, &r);
    nk_cache_stats cs = nk_cache_get_stats(cache);
    assert_true(cs.usage <= 64 * 1024);
    assert_true(cs.hits > 0 && cs.evictions > 0);

    /* Bloom: absent keys (odd numbers) almost never read a block. */
    nk_cache_stats before = nk_cache_get_stats(cache);
    nk_buf v = {0};
    for (uint64_t i = 0; i < keys; i++) {
        uint8_t uk[20];
        size_t ul = ukey_of(2 * i + 1, uk);
        nk_lookup res;
        assert_int_equal(nk_sst_get(t, uk, ul, NK_SEQ_MAX, &res, &v, NULL, NULL), NK_OK);
        assert_int_equal(res, NK_LOOKUP_MISS);
    }
    nk_cache_stats after = nk_cache_get_stats(cache);
    uint64_t reads = (after.hits + after.misses) - (before.hits + before.misses);
    printf("sst: %llu of %llu absent-key gets read a data block (bloom false positives)\n",
           (unsigned long long)reads, (unsigned long long)keys);
    assert_true(reads < keys / 50);
    nk_buf_free(&v);

    nk_sst_close(t);
    /* Without a cache everything still works. */
    assert_int_equal(open_table(fx, NULL, &t, &eb), NK_OK);
    check_gets(t, &m, keys, &r);
    check_iter(t, &m, 0, &r);
    nk_sst_close(t);
    nk_cache_free(cache);
    nk_sst_props_free(&props);
    model_free(&m);
}

static void test_empty_and_builder_errors(void **state)
{
    fixture *fx = *state;
    model m = {0};
    uint64_t size = write_table(fx, &m, NULL, NULL);
    assert_true(size > NK_SST_FOOTER_SIZE);
    nk_sst *t;
    assert_int_equal(open_table(fx, NULL, &t, NULL), NK_OK);
    assert_int_equal(nk_sst_get_props(t)->entries, 0);
    nk_lookup res;
    nk_buf v = {0};
    assert_int_equal(nk_sst_get(t, (const uint8_t *)"a", 1, 5, &res, &v, NULL, NULL), NK_OK);
    assert_int_equal(res, NK_LOOKUP_MISS);
    nk_sst_iter *it;
    assert_int_equal(nk_sst_iter_new(t, 0, &it), NK_OK);
    nk_sst_iter_first(it);
    assert_false(nk_sst_iter_valid(it));
    nk_sst_iter_last(it);
    assert_false(nk_sst_iter_valid(it));
    nk_sst_iter_seek_for_prev(it, (const uint8_t *)"a\0\0\0\0\0\0\0\0", 9);
    assert_false(nk_sst_iter_valid(it));
    assert_int_equal(nk_sst_iter_status(it, NULL), NK_OK);
    nk_sst_iter_free(it);
    nk_sst_close(t);

    /* out of order, duplicate and malformed keys are refused */
    nk_file *f;
    assert_int_equal(nk_rt_file_open(fx->rt, fx->path,
                                     NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    nk_sst_builder *b;
    assert_int_equal(nk_sst_builder_new(fx->rt, f, NULL, &b), NK_OK);
    uint8_t k1[16], k2[16];
    size_t l1 = nk_ikey_encode(k1, (const uint8_t *)"b", 1, 5, NK_KT_PUT);
    size_t l2 = nk_ikey_encode(k2, (const uint8_t *)"a", 1, 9, NK_KT_PUT);
    assert_int_equal(nk_sst_builder_add(b, k1, l1, NULL, 0), NK_OK);
    assert_int_equal(nk_sst_builder_add(b, k1, l1, NULL, 0), NK_EINVAL);
    assert_int_equal(nk_sst_builder_add(b, k2, l2, NULL, 0), NK_EINVAL);
    l2 = nk_ikey_encode(k2, (const uint8_t *)"b", 1, 6, NK_KT_PUT); /* newer sorts first */
    assert_int_equal(nk_sst_builder_add(b, k2, l2, NULL, 0), NK_EINVAL);
    assert_int_equal(nk_sst_builder_add(b, k1, 4, NULL, 0), NK_EINVAL);
    assert_int_equal(nk_sst_builder_entries(b), 1);
    assert_int_equal(nk_sst_builder_finish(b, NULL, NULL), NK_OK);
    assert_int_equal(nk_sst_builder_add(b, k1, l1, NULL, 0), NK_EINVAL);
    nk_sst_builder_free(b);
    nk_rt_file_close(fx->rt, f);
}

/* Build a small table, then flip every byte of the file in turn. Each time:
 * open fails with an error that names the table, or every read (full scans
 * both ways, gets of every key) returns the original data or an error. */
static void test_corruption(void **state)
{
    fixture *fx = *state;
    nk_rand r;
    nk_rand_seed(&r, 8);
    model m;
    model_gen(&m, &r, 120, 60);
    /* keep values small so the file is small */
    for (size_t i = 0; i < m.n; i++) {
        if (m.e[i].vlen > 16) {
            m.e[i].vlen = 16;
        }
    }
    nk_sst_options o;
    nk_sst_options_default(&o);
    o.block_size = 256;
    uint64_t size = write_table(fx, &m, &o, NULL);
    nk_file *wf;
    assert_int_equal(nk_rt_file_open(fx->rt, fx->path, NK_OPEN_WRITE, &wf), NK_OK);
    uint8_t *orig = malloc(size);
    assert_non_null(orig);
    size_t nread;
    assert_int_equal(nk_rt_file_read_at(fx->rt, wf, 0, orig, size, &nread), NK_OK);
    assert_int_equal(nread, size);

    size_t open_fail = 0, read_fail = 0, clean = 0;
    nk_buf v = {0};
    for (uint64_t pos = 0; pos < size; pos++) {
        uint8_t bad = orig[pos] ^ (uint8_t)(1u << (pos % 8));
        assert_int_equal(nk_rt_file_write_at(fx->rt, wf, pos, &bad, 1), NK_OK);
        nk_sst *t;
        nk_errbuf eb;
        int rc = open_table(fx, NULL, &t, &eb);
        if (rc != NK_OK) {
            assert_true(rc == NK_ECORRUPT || rc == NK_ENOTSUP);
            assert_non_null(strstr(eb.msg, "000001.sst"));
            open_fail++;
        } else {
            bool failed = false;
            nk_sst_iter *it;
            assert_int_equal(nk_sst_iter_new(t, 0, &it), NK_OK);
            size_t i = 0;
            for (nk_sst_iter_first(it); nk_sst_iter_valid(it); nk_sst_iter_next(it)) {
                assert_true(i < m.n);
                assert_entry(it, &m.e[i++]);
            }
            if (nk_sst_iter_status(it, &eb) != NK_OK) {
                assert_int_equal(nk_sst_iter_status(it, NULL), NK_ECORRUPT);
                assert_non_null(strstr(eb.msg, "000001.sst"));
                assert_non_null(strstr(eb.msg, "offset"));
                failed = true;
            } else {
                assert_int_equal(i, m.n);
            }
            nk_sst_iter_free(it);
            for (size_t k = 0; k < m.n; k++) {
                nk_ikey ik;
                assert_int_equal(nk_ikey_parse(m.e[k].ikey, m.e[k].klen, &ik), NK_OK);
                const entry *hit = NULL;
                nk_lookup want = model_get(&m, ik.ukey.data, ik.ukey.len, ik.seq, &hit), res;
                rc = nk_sst_get(t, ik.ukey.data, ik.ukey.len, ik.seq, &res, &v, NULL, &eb);
                if (rc != NK_OK) {
                    assert_int_equal(rc, NK_ECORRUPT);
                    assert_non_null(strstr(eb.msg, "000001.sst"));
                    failed = true;
                    continue;
                }
                /* Never a wrong answer: damage that slipped past every
                 * check (e.g. in the bloom bits) may only cost work. */
                assert_int_equal(res, want);
                if (res == NK_LOOKUP_VALUE) {
                    assert_int_equal(v.len, hit->vlen);
                    assert_memory_equal(v.data, hit->val, v.len);
                }
            }
            read_fail += failed;
            clean += !failed;
            nk_sst_close(t);
        }
        assert_int_equal(nk_rt_file_write_at(fx->rt, wf, pos, &orig[pos], 1), NK_OK);
    }
    printf("sst corruption: %llu byte flips: %zu refused at open, %zu reported on read, "
           "%zu harmless\n",
           (unsigned long long)size, open_fail, read_fail, clean);
    assert_int_equal(open_fail + read_fail + clean, size);

    /* Truncated files are refused at open. */
    for (uint64_t cut = 0; cut < size; cut += 1 + size / 40) {
        assert_int_equal(nk_rt_file_truncate(fx->rt, wf, cut), NK_OK);
        nk_sst *t;
        nk_errbuf eb;
        assert_int_equal(open_table(fx, NULL, &t, &eb), NK_ECORRUPT);
        assert_non_null(strstr(eb.msg, "000001.sst"));
    }
    nk_buf_free(&v);
    free(orig);
    nk_rt_file_close(fx->rt, wf);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_builder_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
