/*
 * test_engine_manifest.c - version edits (nokv/engine/version_edit.h) and
 * the manifest (nokv/engine/manifest.h):
 *   - edit codec round trip; every truncation and every single-byte change
 *     of an encoding decodes to an error or a valid edit, never a crash;
 *     unknown ignorable tags are skipped, unknown required ones refused;
 *   - version state rules (sorting, deletes of missing files, duplicates,
 *     overlaps, moves between levels, all-or-nothing);
 *   - manifest create / edits / reopen / rewrite round trip on the simulator;
 *   - crash sweeps (4 x 100 seeds at the rewrite and edit failpoints, plus
 *     100 seeds of power loss between edits, chaos crash policy): recovery
 *     always yields exactly the acknowledged state, or that state plus the
 *     one edit in flight; never a mix, never nothing;
 *   - CURRENT naming a missing manifest, damaged CURRENT, CURRENT lost,
 *     interrupted creation, corrupt middle record (file + offset);
 *   - once on the real runtime in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/rt_real.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/version_edit.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "nokv/util/rand.h"
#include "sim/sim.h"

#define DBDIR "/db"

/* File `number`'s keys: user keys "k<number*10>" .. "k<number*10+5>", so
 * distinct files never overlap. */
static size_t key_of(uint64_t number, bool largest, uint8_t *out)
{
    char u[32];
    int n =
        snprintf(u, sizeof u, "k%012llu", (unsigned long long)(number * 10 + (largest ? 5 : 0)));
    return nk_ikey_encode(out, (const uint8_t *)u, (size_t)n, number, NK_KT_PUT);
}

static void add_file(nk_version_edit *e, uint32_t level, uint64_t number)
{
    uint8_t lo[48], hi[48];
    size_t ll = key_of(number, false, lo), hl = key_of(number, true, hi);
    assert_int_equal(
        nk_vedit_add_file(e, level, number, number * 100 + 7, lo, ll, hi, hl, number, number + 3),
        NK_OK);
}

/* ------------------------------------------------------------- codec --- */

static void build_edit(nk_version_edit *e)
{
    nk_vedit_init(e);
    nk_vedit_set_log_number(e, 77);
    nk_vedit_set_next_file_number(e, 1u << 20);
    nk_vedit_set_last_sequence(e, UINT64_C(1) << 50);
    add_file(e, 0, 5);
    add_file(e, 3, 300);
    assert_int_equal(nk_vedit_delete_file(e, 2, 9), NK_OK);
}

static void assert_edit_equal(const nk_version_edit *a, const nk_version_edit *b)
{
    assert_int_equal(a->has_log_number, b->has_log_number);
    assert_int_equal(a->has_next_file_number, b->has_next_file_number);
    assert_int_equal(a->has_last_sequence, b->has_last_sequence);
    assert_int_equal(a->log_number, b->log_number);
    assert_int_equal(a->next_file_number, b->next_file_number);
    assert_int_equal(a->last_sequence, b->last_sequence);
    assert_int_equal(a->nadded, b->nadded);
    assert_int_equal(a->ndeleted, b->ndeleted);
    for (size_t i = 0; i < a->nadded; i++) {
        const nk_vedit_add *x = &a->added[i], *y = &b->added[i];
        assert_int_equal(x->level, y->level);
        assert_int_equal(x->meta.number, y->meta.number);
        assert_int_equal(x->meta.size, y->meta.size);
        assert_int_equal(x->meta.smallest_seq, y->meta.smallest_seq);
        assert_int_equal(x->meta.largest_seq, y->meta.largest_seq);
        assert_int_equal(x->meta.smallest.len, y->meta.smallest.len);
        assert_memory_equal(x->meta.smallest.data, y->meta.smallest.data, x->meta.smallest.len);
        assert_int_equal(x->meta.largest.len, y->meta.largest.len);
        assert_memory_equal(x->meta.largest.data, y->meta.largest.data, x->meta.largest.len);
    }
    for (size_t i = 0; i < a->ndeleted; i++) {
        assert_int_equal(a->deleted[i].level, b->deleted[i].level);
        assert_int_equal(a->deleted[i].number, b->deleted[i].number);
    }
}

static void test_edit_round_trip(void **state)
{
    (void)state;
    nk_version_edit e, d;
    build_edit(&e);
    nk_buf b = {0};
    assert_int_equal(nk_vedit_encode(&e, &b), NK_OK);
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_vedit_decode(b.data, b.len, &d, &eb), NK_OK);
    assert_edit_equal(&e, &d);
    nk_vedit_free(&d);

    /* An empty edit: just the version. */
    nk_version_edit empty;
    nk_vedit_init(&empty);
    nk_buf eb2 = {0};
    assert_int_equal(nk_vedit_encode(&empty, &eb2), NK_OK);
    assert_int_equal(eb2.len, 1);
    assert_int_equal(nk_vedit_decode(eb2.data, eb2.len, &d, &eb), NK_OK);
    assert_edit_equal(&empty, &d);
    nk_vedit_free(&d);
    nk_buf_free(&eb2);

    /* Every proper prefix: an error (the last field is cut) or, at a field
     * boundary, a valid shorter edit. Never a crash. */
    for (size_t cut = 0; cut < b.len; cut++) {
        int rc = nk_vedit_decode(b.data, cut, &d, &eb);
        assert_true(rc == NK_OK || rc == NK_ECORRUPT);
        nk_vedit_free(&d);
    }
    /* Every single-byte change: an error or some edit, never a crash. */
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (uint8_t)(1u << bit);
            int rc = nk_vedit_decode(b.data, b.len, &d, &eb);
            assert_true(rc == NK_OK || rc == NK_ECORRUPT || rc == NK_ENOTSUP);
            nk_vedit_free(&d);
            b.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    nk_vedit_free(&e);
    nk_buf_free(&b);
}

static void test_edit_unknown_tags(void **state)
{
    (void)state;
    nk_version_edit e, d;
    build_edit(&e);
    nk_buf b = {0};
    assert_int_equal(nk_vedit_encode(&e, &b), NK_OK);
    nk_errbuf eb = {{0}};
    /* A future optional field (ignorable bit): skipped. */
    size_t base = b.len;
    nk_buf_append_varint(&b, NK_VEDIT_TAG_IGNORABLE | 9);
    nk_buf_append_varint(&b, 3);
    nk_buf_append(&b, "abc", 3);
    assert_int_equal(nk_vedit_decode(b.data, b.len, &d, &eb), NK_OK);
    assert_edit_equal(&e, &d);
    nk_vedit_free(&d);
    /* A future required field: refused, not dropped. */
    b.len = base;
    nk_buf_append_varint(&b, 9);
    nk_buf_append_varint(&b, 1);
    nk_buf_append_u8(&b, 0);
    assert_int_equal(nk_vedit_decode(b.data, b.len, &d, &eb), NK_ENOTSUP);
    assert_non_null(strstr(eb.msg, "newer"));
    nk_vedit_free(&d);
    /* A scalar given twice: corrupt. */
    b.len = base;
    nk_buf_append_varint(&b, NK_VEDIT_LOG_NUMBER);
    nk_buf_append_varint(&b, 1);
    nk_buf_append_u8(&b, 5);
    assert_int_equal(nk_vedit_decode(b.data, b.len, &d, &eb), NK_ECORRUPT);
    nk_vedit_free(&d);
    /* A newer edit version: not supported. */
    uint8_t v2[1] = {2};
    assert_int_equal(nk_vedit_decode(v2, 1, &d, &eb), NK_ENOTSUP);
    nk_vedit_free(&d);
    nk_vedit_free(&e);
    nk_buf_free(&b);
}

/* ------------------------------------------------------- version state --- */

static void apply_ok(nk_version_state *v, nk_version_edit *e)
{
    nk_errbuf eb = {{0}};
    int rc = nk_vstate_apply(v, e, &eb);
    if (rc != NK_OK) {
        fail_msg("apply: %s: %s", nk_errname(rc), eb.msg);
    }
    nk_vedit_free(e);
}

static void apply_bad(nk_version_state *v, nk_version_edit *e, const char *want)
{
    nk_errbuf eb = {{0}};
    size_t before = nk_vstate_file_count(v);
    assert_int_equal(nk_vstate_apply(v, e, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, want));
    assert_int_equal(nk_vstate_file_count(v), before);
    nk_vedit_free(e);
}

static void test_vstate_rules(void **state)
{
    (void)state;
    nk_version_state v;
    nk_vstate_init(&v);
    nk_version_edit e;
    nk_vedit_init(&e);
    add_file(&e, 0, 9);
    add_file(&e, 0, 4);
    add_file(&e, 1, 30);
    add_file(&e, 1, 10);
    add_file(&e, 1, 20);
    nk_vedit_set_last_sequence(&e, 99);
    apply_ok(&v, &e);
    assert_int_equal(v.last_sequence, 99);
    /* L0 by number, L1 by smallest key */
    assert_int_equal(v.levels[0].files[0].number, 4);
    assert_int_equal(v.levels[0].files[1].number, 9);
    assert_int_equal(v.levels[1].files[0].number, 10);
    assert_int_equal(v.levels[1].files[1].number, 20);
    assert_int_equal(v.levels[1].files[2].number, 30);

    nk_vedit_init(&e);
    assert_int_equal(nk_vedit_delete_file(&e, 1, 4), NK_OK); /* 4 is at L0 */
    apply_bad(&v, &e, "not there");
    nk_vedit_init(&e);
    add_file(&e, 2, 9); /* 9 already at L0 */
    apply_bad(&v, &e, "already");
    nk_vedit_init(&e);
    add_file(&e, 2, 50);
    add_file(&e, 3, 50);
    apply_bad(&v, &e, "twice");
    /* overlap at L1: a file spanning 10's and 20's ranges */
    nk_vedit_init(&e);
    uint8_t lo[48], hi[48];
    size_t ll = key_of(10, false, lo), hl = key_of(20, true, hi);
    nk_vedit_add_file(&e, 1, 77, 1, lo, ll, hi, hl, 1, 1);
    apply_bad(&v, &e, "overlap");
    /* inverted range */
    nk_vedit_init(&e);
    nk_vedit_add_file(&e, 0, 78, 1, hi, hl, lo, ll, 1, 1);
    apply_bad(&v, &e, "invalid");
    /* a bad edit is all or nothing: valid delete + bad add changes nothing */
    nk_vedit_init(&e);
    nk_vedit_delete_file(&e, 0, 4);
    add_file(&e, 9, 79);
    apply_bad(&v, &e, "level");
    assert_int_equal(v.levels[0].count, 2);

    /* a move: delete at L1 and add at L2 in one edit (deletes first) */
    nk_vedit_init(&e);
    nk_vedit_delete_file(&e, 1, 20);
    add_file(&e, 2, 20);
    apply_ok(&v, &e);
    uint32_t level = 0;
    size_t idx = 0;
    assert_int_equal(nk_vstate_find(&v, 20, &level, &idx), NK_OK);
    assert_int_equal(level, 2);
    assert_int_equal(nk_vstate_find(&v, 21, &level, &idx), NK_ENOENT);

    /* snapshot rebuilds the same state */
    nk_version_edit snap;
    assert_int_equal(nk_vstate_snapshot(&v, &snap), NK_OK);
    nk_version_state w;
    nk_vstate_init(&w);
    apply_ok(&w, &snap);
    assert_int_equal(nk_vstate_file_count(&w), nk_vstate_file_count(&v));
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        assert_int_equal(w.levels[l].count, v.levels[l].count);
        for (size_t i = 0; i < v.levels[l].count; i++) {
            assert_int_equal(w.levels[l].files[i].number, v.levels[l].files[i].number);
        }
    }
    assert_int_equal(w.last_sequence, 99);
    nk_vstate_free(&w);
    nk_vstate_free(&v);
}

/* ------------------------------------------------------ sim plumbing --- */

static nk_rt *g_rt;
static int idle_start(nk_rt *rt, void *cfg, void **st)
{
    (void)cfg;
    g_rt = rt;
    *st = rt;
    return NK_OK;
}
static void idle_stop(void *st, bool crashed)
{
    (void)st;
    (void)crashed;
}
static const nk_sim_app idle_app = {"idle", idle_start, idle_stop};

static nk_sim *sim_one(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    cfg.log_level = NK_LOG_ERROR;
    nk_sim *s = nk_sim_new(&cfg);
    assert_non_null(s);
    assert_int_equal(nk_sim_add_node(s, "n1", &idle_app, NULL, NULL), NK_OK);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    return s;
}

static void restart(nk_sim *s)
{
    if (nk_sim_node_up(s, 1)) {
        nk_sim_node_crash(s, 1);
    }
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
}

static nk_manifest *open_ok(nk_rt *rt, uint64_t threshold)
{
    nk_manifest_options o;
    nk_manifest_options_default(&o);
    if (threshold != 0) {
        o.rewrite_threshold = threshold;
    }
    nk_manifest *m = NULL;
    nk_errbuf eb = {{0}};
    int rc = nk_manifest_open(rt, DBDIR, &o, &m, &eb);
    if (rc != NK_OK) {
        fail_msg("manifest open: %s: %s", nk_errname(rc), eb.msg);
    }
    return m;
}

static void log_ok(nk_manifest *m, nk_version_edit *e)
{
    nk_errbuf eb = {{0}};
    int rc = nk_manifest_log_edit(m, e, &eb);
    if (rc != NK_OK) {
        fail_msg("log_edit: %s: %s", nk_errname(rc), eb.msg);
    }
    nk_vedit_free(e);
}

/* ------------------------------------------------------------- model --- */

/* The test's own picture of the state: which level each file number is at
 * (-1: absent), plus the counters. Keys and sizes are derived from the
 * number, so comparing levels and counters compares everything. */
#define MAXF 4096
typedef struct model {
    int8_t level[MAXF];
    uint64_t log_number;
    uint64_t next_file;
    uint64_t last_seq;
} model;

static void model_init(model *m)
{
    memset(m->level, -1, sizeof m->level);
    m->log_number = 0;
    m->next_file = 1;
    m->last_seq = 0;
}

static bool model_matches(const model *m, const nk_version_state *v)
{
    size_t n = 0;
    for (uint64_t f = 0; f < MAXF; f++) {
        if (m->level[f] < 0) {
            continue;
        }
        n++;
        uint32_t level;
        size_t idx;
        if (nk_vstate_find(v, f, &level, &idx) != NK_OK || level != (uint32_t)m->level[f]) {
            return false;
        }
        const nk_file_meta *fm = &v->levels[level].files[idx];
        uint8_t lo[48];
        size_t ll = key_of(f, false, lo);
        if (fm->size != f * 100 + 7 || fm->smallest.len != ll ||
            memcmp(fm->smallest.data, lo, ll) != 0 || fm->largest_seq != f + 3) {
            return false;
        }
    }
    return n == nk_vstate_file_count(v) && m->log_number == v->log_number &&
           m->last_seq == v->last_sequence && v->next_file_number >= m->next_file;
}

/* A random valid edit against model `cur`; `next` gets cur + edit. */
static void random_edit(nk_rand *r, const model *cur, model *next, nk_version_edit *e)
{
    *next = *cur;
    nk_vedit_init(e);
    int dels = (int)nk_rand_below(r, 3);
    for (int i = 0; i < dels; i++) {
        uint64_t f = nk_rand_below(r, cur->next_file);
        if (cur->level[f] >= 0 && next->level[f] == cur->level[f]) { /* untouched so far */
            uint32_t l = (uint32_t)next->level[f];
            nk_vedit_delete_file(e, l, f);
            next->level[f] = -1;
            if (nk_rand_chance(r, 1, 3) && l + 1 < NK_NUM_LEVELS) {
                add_file(e, l + 1, f); /* move down */
                next->level[f] = (int8_t)(l + 1);
            }
        }
    }
    int adds = (int)nk_rand_between(r, 1, 3);
    for (int i = 0; i < adds && next->next_file < MAXF; i++) {
        uint64_t f = next->next_file++;
        uint32_t l = (uint32_t)nk_rand_below(r, 4);
        add_file(e, l, f);
        next->level[f] = (int8_t)l;
    }
    nk_vedit_set_next_file_number(e, next->next_file);
    if (nk_rand_chance(r, 1, 2)) {
        next->last_seq += nk_rand_between(r, 1, 1000);
        next->log_number++;
        nk_vedit_set_last_sequence(e, next->last_seq);
        nk_vedit_set_log_number(e, next->log_number);
    }
}

/* ---------------------------------------------------------- basics --- */

static void test_create_edit_reopen_rewrite(void **state)
{
    (void)state;
    nk_sim *s = sim_one(1);
    nk_manifest *m = open_ok(g_rt, 0);
    assert_true(nk_manifest_recovery_info(m)->created);
    assert_int_equal(nk_manifest_number(m), 1);
    assert_int_equal(nk_vstate_file_count(nk_manifest_state(m)), 0);
    nk_rand r;
    nk_rand_seed(&r, 1);
    model cur, next;
    model_init(&cur);
    for (int i = 0; i < 50; i++) {
        nk_version_edit e;
        random_edit(&r, &cur, &next, &e);
        log_ok(m, &e);
        cur = next;
        assert_true(model_matches(&cur, nk_manifest_state(m)));
    }
    /* An invalid edit is refused without touching the file. */
    uint64_t size = nk_manifest_file_size(m);
    nk_version_edit bad;
    nk_vedit_init(&bad);
    nk_vedit_delete_file(&bad, 0, 5000);
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_manifest_log_edit(m, &bad, &eb), NK_EINVAL);
    nk_vedit_free(&bad);
    assert_int_equal(nk_manifest_status(m), NK_OK);
    assert_int_equal(nk_manifest_file_size(m), size);
    nk_manifest_close(m);

    m = open_ok(g_rt, 0);
    assert_false(nk_manifest_recovery_info(m)->created);
    assert_int_equal(nk_manifest_recovery_info(m)->edits, 51);
    assert_true(model_matches(&cur, nk_manifest_state(m)));
    assert_int_equal(nk_manifest_rewrite(m, &eb), NK_OK);
    assert_int_equal(nk_manifest_number(m), 2);
    assert_true(nk_manifest_file_size(m) < size);
    nk_stat st;
    assert_int_equal(nk_rt_stat(g_rt, DBDIR "/MANIFEST-000001", &st), NK_ENOENT);
    nk_version_edit e;
    random_edit(&r, &cur, &next, &e);
    log_ok(m, &e);
    cur = next;
    nk_manifest_close(m);

    restart(s); /* power loss: everything acknowledged survives */
    m = open_ok(g_rt, 0);
    assert_int_equal(nk_manifest_number(m), 2);
    assert_int_equal(nk_manifest_recovery_info(m)->edits, 2);
    assert_true(model_matches(&cur, nk_manifest_state(m)));
    nk_manifest_close(m);

    /* automatic rewrites under a small threshold */
    m = open_ok(g_rt, 2048);
    for (int i = 0; i < 100; i++) {
        random_edit(&r, &cur, &next, &e);
        log_ok(m, &e);
        cur = next;
    }
    assert_true(nk_manifest_number(m) > 3);
    nk_manifest_close(m);
    restart(s);
    m = open_ok(g_rt, 2048);
    assert_true(model_matches(&cur, nk_manifest_state(m)));
    nk_manifest_close(m);
    nk_sim_free(s);
}

/* ----------------------------------------------------------- damage --- */

static void flip_byte(nk_rt *rt, const char *path, uint64_t off)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t b;
    size_t got = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, off, &b, 1, &got), NK_OK);
    b ^= 0x10;
    assert_int_equal(nk_rt_file_write_at(rt, f, off, &b, 1), NK_OK);
    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);
    nk_rt_file_close(rt, f);
}

/* Offset of record `k` (1-based) in a log file, walking the framing. */
static uint64_t record_offset(nk_rt *rt, const char *path, int k)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_READ, &f), NK_OK);
    uint64_t off = NK_LOGFILE_HDR_SIZE;
    for (int i = 1; i < k; i++) {
        uint8_t h[NK_LOGREC_HDR_SIZE];
        size_t got = 0;
        assert_int_equal(nk_rt_file_read_at(rt, f, off, h, sizeof h, &got), NK_OK);
        off += NK_LOGREC_OVERHEAD + nk_get_u32(h + 8);
    }
    nk_rt_file_close(rt, f);
    return off;
}

static int open_rc(nk_rt *rt, nk_errbuf *eb)
{
    nk_manifest *m = NULL;
    int rc = nk_manifest_open(rt, DBDIR, NULL, &m, eb);
    nk_manifest_close(m);
    return rc;
}

/* A manifest with 6 records (snapshot + 5 edits), closed. */
static void six_records(nk_rt *rt)
{
    nk_manifest *m = open_ok(rt, 0);
    for (uint64_t f = 1; f <= 5; f++) {
        nk_version_edit e;
        nk_vedit_init(&e);
        add_file(&e, 0, f);
        log_ok(m, &e);
    }
    nk_manifest_close(m);
}

static void test_corrupt_middle_record(void **state)
{
    (void)state;
    nk_sim *s = sim_one(2);
    six_records(g_rt);
    uint64_t off = record_offset(g_rt, DBDIR "/MANIFEST-000001", 4);
    flip_byte(g_rt, DBDIR "/MANIFEST-000001", off + 30);
    nk_errbuf eb = {{0}};
    assert_int_equal(open_rc(g_rt, &eb), NK_ECORRUPT);
    char want[64];
    snprintf(want, sizeof want, "offset %llu", (unsigned long long)off);
    assert_non_null(strstr(eb.msg, "MANIFEST-000001"));
    assert_non_null(strstr(eb.msg, want));
    nk_sim_free(s);

    /* The snapshot record is durable before CURRENT names the file: damage
     * there is corruption even with nothing after it. */
    s = sim_one(3);
    nk_manifest *m = open_ok(g_rt, 0);
    nk_manifest_close(m);
    flip_byte(g_rt, DBDIR "/MANIFEST-000001", NK_LOGFILE_HDR_SIZE + 30);
    assert_int_equal(open_rc(g_rt, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "offset 48"));
    nk_sim_free(s);

    /* Damage to the last record looks exactly like a torn append: it is
     * cut (documented), and the manifest stays usable. */
    s = sim_one(4);
    six_records(g_rt);
    off = record_offset(g_rt, DBDIR "/MANIFEST-000001", 6);
    flip_byte(g_rt, DBDIR "/MANIFEST-000001", off + 30);
    m = open_ok(g_rt, 0);
    assert_true(nk_manifest_recovery_info(m)->torn);
    assert_int_equal(nk_manifest_recovery_info(m)->torn_offset, off);
    assert_int_equal(nk_vstate_file_count(nk_manifest_state(m)), 4);
    nk_version_edit e;
    nk_vedit_init(&e);
    add_file(&e, 0, 9);
    log_ok(m, &e);
    nk_manifest_close(m);
    m = open_ok(g_rt, 0);
    assert_false(nk_manifest_recovery_info(m)->torn);
    assert_int_equal(nk_vstate_file_count(nk_manifest_state(m)), 5);
    nk_manifest_close(m);
    nk_sim_free(s);
}

static void write_file(nk_rt *rt, const char *path, const void *data, size_t len)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_append(rt, f, data, len), NK_OK);
    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);
    nk_rt_file_close(rt, f);
}

static void test_current_problems(void **state)
{
    (void)state;
    nk_errbuf eb = {{0}};
    /* CURRENT names a manifest that is gone. */
    nk_sim *s = sim_one(5);
    nk_manifest *m = open_ok(g_rt, 0);
    assert_int_equal(nk_manifest_rewrite(m, &eb), NK_OK);
    nk_manifest_close(m);
    assert_int_equal(nk_rt_remove(g_rt, DBDIR "/MANIFEST-000002"), NK_OK);
    assert_int_equal(open_rc(g_rt, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "MANIFEST-000002"));
    assert_non_null(strstr(eb.msg, "missing"));

    /* CURRENT damaged (one byte changed: checksum). */
    write_file(g_rt, DBDIR "/CURRENT", "nokv-current 1 MANIFEST-000003 0000000000000000\n", 48);
    assert_int_equal(open_rc(g_rt, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "CURRENT"));
    assert_non_null(strstr(eb.msg, "checksum"));
    nk_sim_free(s);

    /* CURRENT lost while the database has content: never guessed. */
    s = sim_one(6);
    six_records(g_rt);
    assert_int_equal(nk_rt_remove(g_rt, DBDIR "/CURRENT"), NK_OK);
    assert_int_equal(open_rc(g_rt, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "CURRENT is missing"));
    nk_sim_free(s);

    /* Creation interrupted before CURRENT: redone. */
    s = sim_one(7);
    nk_sim_failpoint_arm(s, 1, "manifest.current.before_rename", NK_SIM_FP_ERROR, 1,
                         (nk_ratio){0, 0});
    nk_manifest_options o;
    nk_manifest_options_default(&o);
    assert_int_equal(nk_manifest_open(g_rt, DBDIR, &o, &m, &eb), NK_EFAILPOINT);
    m = open_ok(g_rt, 0);
    assert_true(nk_manifest_recovery_info(m)->created);
    nk_manifest_close(m);
    /* and with create_if_missing off, an empty dir is not a database */
    o.create_if_missing = false;
    assert_int_equal(nk_rt_dir_create(g_rt, "/other"), NK_OK);
    assert_int_equal(nk_manifest_open(g_rt, "/other", &o, &m, &eb), NK_ENOENT);
    nk_sim_free(s);
}

/* A failed rewrite before the rename keeps the old manifest in use. */
static void test_rewrite_error_before_rename_is_recoverable(void **state)
{
    (void)state;
    nk_sim *s = sim_one(8);
    six_records(g_rt);
    nk_manifest *m = open_ok(g_rt, 0);
    nk_sim_failpoint_arm(s, 1, "manifest.rewrite.after_write", NK_SIM_FP_ERROR, 1,
                         (nk_ratio){0, 0});
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_manifest_rewrite(m, &eb), NK_EFAILPOINT);
    assert_int_equal(nk_manifest_status(m), NK_OK);
    assert_int_equal(nk_manifest_number(m), 1);
    nk_version_edit e;
    nk_vedit_init(&e);
    add_file(&e, 0, 6);
    log_ok(m, &e);
    nk_manifest_close(m);
    restart(s);
    m = open_ok(g_rt, 0);
    assert_int_equal(nk_vstate_file_count(nk_manifest_state(m)), 6);
    nk_manifest_close(m);
    nk_sim_free(s);
}

/* -------------------------------------------------------- crash sweep --- */

typedef struct sweep_stats {
    uint64_t runs;
    uint64_t crashed_in_flight;
    uint64_t recovered_with_inflight;
    uint64_t torn;
    uint64_t rewrites;
    uint64_t new_manifest; /* crashed in a rewrite, recovered from the new file */
} sweep_stats;

/* The edit loop runs inside a node callback, as production code does: a
 * crash at a failpoint then takes effect when the callback returns, and the
 * manifest (whose handles die with the node) is closed before that. */
typedef struct crash_ctx {
    uint64_t seed;
    const char *fp;
    nk_rand r;
    model acked;
    model next;
    bool inflight;
    uint64_t rewrites;
    uint64_t number; /* live manifest when the loop ended */
} crash_ctx;

static void crash_loop(void *arg)
{
    crash_ctx *c = arg;
    nk_manifest_options o;
    nk_manifest_options_default(&o);
    o.rewrite_threshold = 1024;
    nk_manifest *m = NULL;
    nk_errbuf oeb = {{0}};
    int orc = nk_manifest_open(g_rt, DBDIR, &o, &m, &oeb);
    if (orc == NK_ECRASHED) {
        /* crashed while creating the database: it must come back empty */
        c->next = c->acked;
        c->inflight = true;
        return;
    }
    if (orc != NK_OK) {
        fail_msg("manifest open: %s: %s", nk_errname(orc), oeb.msg);
    }
    int limit = (int)nk_rand_between(&c->r, 5, 80);
    for (int i = 0; i < 120; i++) {
        nk_version_edit e;
        random_edit(&c->r, &c->acked, &c->next, &e);
        nk_errbuf eb = {{0}};
        int rc = nk_manifest_log_edit(m, &e, &eb);
        nk_vedit_free(&e);
        if (rc == NK_ECRASHED) {
            c->inflight = true;
            break;
        }
        if (rc != NK_OK) {
            fail_msg("seed %llu: log_edit: %s: %s", (unsigned long long)c->seed, nk_errname(rc),
                     eb.msg);
        }
        c->acked = c->next;
        if (c->fp == NULL && i == limit) {
            break;
        }
    }
    c->rewrites = nk_manifest_number(m) - 1;
    c->number = nk_manifest_number(m);
    nk_manifest_close(m);
}

/*
 * One seed: edits with a tiny rewrite threshold (so rewrites are frequent),
 * a crash at failpoint `fp` (or, fp NULL, a power loss between edits), then
 * recovery must give exactly `acked` or `acked + in-flight edit`.
 */
static void crash_run(uint64_t seed, const char *fp, sweep_stats *ss)
{
    nk_sim *s = sim_one(seed);
    crash_ctx *c = calloc(1, sizeof *c);
    c->seed = seed;
    c->fp = fp;
    nk_rand_seed(&c->r, seed * 7919);
    model_init(&c->acked);
    if (fp != NULL) {
        nk_sim_failpoint_arm(s, 1, fp, NK_SIM_FP_CRASH, 1, (nk_ratio){1, 4});
    }
    nk_rt_timer_start(g_rt, NK_NSEC_PER_MSEC, crash_loop, c);
    nk_sim_run_until(s, nk_sim_now(s) + 10 * NK_NSEC_PER_MSEC);
    ss->rewrites += c->rewrites;
    if (c->inflight) {
        ss->crashed_in_flight++;
    }
    restart(s); /* the power loss (just a boot if a failpoint crashed it) */
    nk_manifest *m2 = open_ok(g_rt, 1024);
    const nk_version_state *v = nk_manifest_state(m2);
    bool is_acked = model_matches(&c->acked, v);
    bool is_next = c->inflight && model_matches(&c->next, v);
    if (!is_acked && !is_next) {
        fail_msg("seed %llu fp %s: recovered state is neither the acknowledged one nor that "
                 "plus the edit in flight",
                 (unsigned long long)seed, fp ? fp : "-");
    }
    ss->recovered_with_inflight += !is_acked && is_next;
    ss->new_manifest += c->inflight && c->number > 0 && nk_manifest_number(m2) > c->number;
    ss->torn += nk_manifest_recovery_info(m2)->torn;
    /* Life goes on after recovery: more edits, another reopen. */
    model cur = is_acked ? c->acked : c->next, next;
    for (int i = 0; i < 5; i++) {
        nk_version_edit e;
        random_edit(&c->r, &cur, &next, &e);
        log_ok(m2, &e);
        cur = next;
    }
    nk_manifest_close(m2);
    restart(s);
    m2 = open_ok(g_rt, 1024);
    assert_true(model_matches(&cur, nk_manifest_state(m2)));
    nk_manifest_close(m2);
    ss->runs++;
    free(c);
    nk_sim_free(s);
}

static void test_crash_sweep(void **state)
{
    (void)state;
    static const char *const fps[] = {
        "manifest.rewrite.after_write", "manifest.current.before_rename",
        "manifest.current.after_rename", "manifest.edit.after_append", NULL};
    for (int k = 0; k < 5; k++) {
        sweep_stats ss = {0};
        for (uint64_t seed = 1; seed <= 100; seed++) {
            crash_run(seed + 1000 * (uint64_t)k, fps[k], &ss);
        }
        print_message(
            "manifest crash sweep [%s]: %llu seeds, %llu crashed mid-edit, %llu "
            "recovered the in-flight edit, %llu torn tails, %llu rewrites, %llu from the new "
            "manifest\n",
            fps[k] ? fps[k] : "power loss between edits", (unsigned long long)ss.runs,
            (unsigned long long)ss.crashed_in_flight,
            (unsigned long long)ss.recovered_with_inflight, (unsigned long long)ss.torn,
            (unsigned long long)ss.rewrites, (unsigned long long)ss.new_manifest);
        if (fps[k] != NULL) {
            assert_true(ss.crashed_in_flight > 50); /* the failpoint really fired */
        }
        if (k == 2) {
            /* the pending rename went either way across seeds */
            assert_true(ss.new_manifest > 0 && ss.new_manifest < ss.crashed_in_flight);
        }
        if (k == 3) {
            assert_true(ss.torn > 0);
            assert_true(ss.recovered_with_inflight > 0);
        }
    }
}

/* ------------------------------------------------------- real runtime --- */

static void test_real_runtime(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/nokv-test-manifest-XXXXXX");
    assert_non_null(mkdtemp(dir));
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    nk_manifest *m = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_manifest_open(rt, dir, NULL, &m, &eb), NK_OK);
    nk_rand r;
    nk_rand_seed(&r, 9);
    model cur, next;
    model_init(&cur);
    for (int i = 0; i < 30; i++) {
        nk_version_edit e;
        random_edit(&r, &cur, &next, &e);
        log_ok(m, &e);
        cur = next;
    }
    assert_int_equal(nk_manifest_rewrite(m, &eb), NK_OK);
    nk_version_edit e;
    random_edit(&r, &cur, &next, &e);
    log_ok(m, &e);
    cur = next;
    nk_manifest_close(m);
    assert_int_equal(nk_manifest_open(rt, dir, NULL, &m, &eb), NK_OK);
    assert_int_equal(nk_manifest_number(m), 2);
    assert_true(model_matches(&cur, nk_manifest_state(m)));
    nk_manifest_close(m);
    char p[128];
    snprintf(p, sizeof p, "%s/CURRENT", dir);
    nk_rt_remove(rt, p);
    snprintf(p, sizeof p, "%s/MANIFEST-000002", dir);
    nk_rt_remove(rt, p);
    assert_int_equal(nk_rt_remove(rt, dir), NK_OK);
    nk_rt_real_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_round_trip),
        cmocka_unit_test(test_edit_unknown_tags),
        cmocka_unit_test(test_vstate_rules),
        cmocka_unit_test(test_create_edit_reopen_rewrite),
        cmocka_unit_test(test_corrupt_middle_record),
        cmocka_unit_test(test_current_problems),
        cmocka_unit_test(test_rewrite_error_before_rename_is_recoverable),
        cmocka_unit_test(test_crash_sweep),
        cmocka_unit_test(test_real_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
