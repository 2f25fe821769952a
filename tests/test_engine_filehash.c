/*
 * test_engine_filehash.c - the whole-file XXH64 every table records in the
 * manifest (version_edit.h, add_file field 65), on the simulator:
 *
 *   - the version edit codec round-trips it, keeps "absent" absent, and
 *     refuses a malformed or repeated one;
 *   - flush and compaction outputs all record it, and it equals the XXH64
 *     of the file's bytes on disk;
 *   - it survives a reopen and manifest rewrites, and nk_db_tables_pin
 *     reports it from a pinned version whose files outlive a compaction;
 *   - `nokv check` (nk_db_check) verifies it: a damaged table is reported as
 *     corruption naming the file.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/engine/check.h"
#include "nokv/engine/db.h"
#include "nokv/engine/inspect.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/version_edit.h"
#include "nokv/util/filehash.h"
#include "sim/sim.h"

static nk_rt *g_rt;

typedef struct env {
    nk_sim *s;
    nk_db *db;
    nk_db_options o;
    nk_db_stats st; /* as of just before the close in build() */
} env;

static int app_start(nk_rt *rt, void *cfg, void **state)
{
    g_rt = rt;
    *state = cfg;
    return NK_OK;
}

static void app_stop(void *state, bool crashed)
{
    env *e = state;
    if (crashed && e->db != NULL) {
        nk_db_abandon(e->db);
        e->db = NULL;
    }
}

static const nk_sim_app app = {"filehash-test", app_start, app_stop};

typedef struct done_state {
    bool done;
    int rc;
} done_state;

static void on_done(void *arg, int rc)
{
    done_state *d = arg;
    d->done = true;
    d->rc = rc;
}

static void wait_for(env *e, done_state *d)
{
    for (int i = 0; i < 100000 && !d->done; i++) {
        nk_sim_run_until(e->s, nk_sim_now(e->s) + NK_NSEC_PER_MSEC);
    }
    assert_true(d->done);
    assert_int_equal(d->rc, NK_OK);
}

static void put(env *e, int i, int round)
{
    char k[32], v[96];
    snprintf(k, sizeof k, "key%05d", i);
    snprintf(v, sizeof v, "value-%05d-round-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i, round);
    nk_batch b;
    nk_batch_init(&b);
    nk_batch_put(&b, k, strlen(k), v, strlen(v));
    done_state d = {false, 0};
    assert_int_equal(nk_db_write(e->db, &b, false, on_done, &d), NK_OK);
    nk_batch_free(&b);
    wait_for(e, &d);
}

static void open_db(env *e)
{
    nk_errbuf eb;
    assert_int_equal(nk_db_open(g_rt, "/db", &e->o, &e->db, &eb), NK_OK);
}

static void close_db(env *e)
{
    done_state d = {false, 0};
    nk_db_close(e->db, on_done, &d);
    e->db = NULL;
    wait_for(e, &d);
}

static void idle(env *e)
{
    done_state d = {false, 0};
    nk_db_wait_idle(e->db, true, on_done, &d);
    wait_for(e, &d);
}

/* Many small flushes and compactions (overwrites in two rounds), then a
 * clean close. manifest_rewrite small forces manifest rewrites too. */
static void build(env *e, uint64_t seed, uint64_t manifest_rewrite)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    cfg.log_level = NK_LOG_ERROR;
    e->s = nk_sim_new(&cfg);
    e->db = NULL;
    nk_sim_add_node(e->s, "n1", &app, e, NULL);
    nk_sim_node_start(e->s, 1);
    nk_db_options_default(&e->o);
    e->o.memtable_bytes = 16 * 1024;
    e->o.target_file_bytes = 8 * 1024;
    e->o.level1_bytes = 32 * 1024;
    e->o.l0_compaction_trigger = 2;
    e->o.sst.block_size = 512;
    e->o.manifest_rewrite_bytes = manifest_rewrite;
    open_db(e);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 1500; i++) {
            put(e, (i * 7919) % 1500, round);
        }
    }
    idle(e);
    nk_db_get_stats(e->db, &e->st);
    close_db(e);
}

static void table_path(uint64_t number, char *out, size_t cap)
{
    nk_db_sst_path("/db", number, out, cap);
}

/* Every table the manifest lists records a hash equal to its file's. */
static size_t expect_recorded(size_t *above_l0)
{
    nk_version_state vs;
    uint64_t number = 0;
    bool torn = false;
    nk_errbuf eb;
    assert_int_equal(nk_manifest_read(g_rt, "/db", &vs, &number, &torn, &eb), NK_OK);
    size_t n = 0;
    *above_l0 = 0;
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < vs.levels[l].count; i++) {
            const nk_file_meta *m = &vs.levels[l].files[i];
            char p[128];
            table_path(m->number, p, sizeof p);
            uint64_t h = 0, size = 0;
            assert_int_equal(nk_file_xxh64(g_rt, p, &h, &size), NK_OK);
            assert_true(m->has_xxh64);
            assert_int_equal(m->xxh64, h);
            assert_int_equal(m->size, size);
            n++;
            *above_l0 += l > 0;
        }
    }
    nk_vstate_free(&vs);
    return n;
}

/* ------------------------------------------------------------- tests --- */

static void test_edit_codec_round_trip(void **state)
{
    (void)state;
    uint8_t lo[16], hi[16];
    memcpy(lo, "aaaa\x01\x00\x00\x00\x00\x00\x00\x00", 12);
    memcpy(hi, "zzzz\x01\x00\x00\x00\x00\x00\x00\x00", 12);
    nk_version_edit e;
    nk_vedit_init(&e);
    assert_int_equal(nk_vedit_add_file(&e, 0, 7, 1234, lo, 12, hi, 12, 1, 1), NK_OK);
    nk_vedit_set_file_xxh64(&e, UINT64_C(0xfedcba9876543210));
    assert_int_equal(nk_vedit_add_file(&e, 0, 8, 99, lo, 12, hi, 12, 1, 1), NK_OK); /* none */
    nk_buf enc = {0};
    assert_int_equal(nk_vedit_encode(&e, &enc), NK_OK);
    nk_version_edit d;
    nk_errbuf eb;
    assert_int_equal(nk_vedit_decode(enc.data, enc.len, &d, &eb), NK_OK);
    assert_int_equal(d.nadded, 2);
    assert_true(d.added[0].meta.has_xxh64);
    assert_int_equal(d.added[0].meta.xxh64, UINT64_C(0xfedcba9876543210));
    assert_false(d.added[1].meta.has_xxh64);
    nk_vedit_free(&d);

    /* a snapshot of a state keeps it (what a manifest rewrite writes) */
    nk_version_state vs;
    nk_vstate_init(&vs);
    assert_int_equal(nk_vstate_apply(&vs, &e, &eb), NK_OK);
    nk_version_edit snap;
    assert_int_equal(nk_vstate_snapshot(&vs, &snap), NK_OK);
    uint32_t level;
    size_t idx;
    assert_int_equal(nk_vstate_find(&vs, 7, &level, &idx), NK_OK);
    assert_true(vs.levels[level].files[idx].has_xxh64);
    bool found = false;
    for (size_t i = 0; i < snap.nadded; i++) {
        if (snap.added[i].meta.number == 7) {
            found = true;
            assert_true(snap.added[i].meta.has_xxh64);
            assert_int_equal(snap.added[i].meta.xxh64, UINT64_C(0xfedcba9876543210));
        } else {
            assert_false(snap.added[i].meta.has_xxh64);
        }
    }
    assert_true(found);
    nk_vedit_free(&snap);
    nk_vstate_free(&vs);

    /* the field is 8 bytes exactly and given at most once */
    nk_buf bad = {0};
    nk_buf nested = {0};
    const uint8_t fields[] = {
        1, 1, 0,                                             /* level 0 */
        2, 1, 9,                                             /* number 9 */
        3, 1, 5,                                             /* size 5 */
    };
    for (int variant = 0; variant < 2; variant++) {
        nk_buf_clear(&bad);
        nk_buf_clear(&nested);
        nk_buf_append(&nested, fields, sizeof fields);
        nk_buf_append_u8(&nested, 4);
        nk_buf_append_u8(&nested, 12);
        nk_buf_append(&nested, lo, 12);
        nk_buf_append_u8(&nested, 5);
        nk_buf_append_u8(&nested, 12);
        nk_buf_append(&nested, hi, 12);
        const uint8_t seqs[] = {6, 1, 1, 7, 1, 1};
        nk_buf_append(&nested, seqs, sizeof seqs);
        const uint8_t h7[] = {NK_VEDIT_FILE_XXH64, 7, 1, 2, 3, 4, 5, 6, 7};
        const uint8_t h8[] = {NK_VEDIT_FILE_XXH64, 8, 1, 2, 3, 4, 5, 6, 7, 8};
        if (variant == 0) {
            nk_buf_append(&nested, h7, sizeof h7);
        } else {
            nk_buf_append(&nested, h8, sizeof h8);
            nk_buf_append(&nested, h8, sizeof h8);
        }
        nk_buf_append_varint(&bad, NK_VEDIT_VERSION);
        nk_buf_append_varint(&bad, NK_VEDIT_ADD_FILE);
        nk_buf_append_varint(&bad, nested.len);
        nk_buf_append(&bad, nested.data, nested.len);
        memset(&eb, 0, sizeof eb);
        assert_int_equal(nk_vedit_decode(bad.data, bad.len, &d, &eb), NK_ECORRUPT);
        assert_non_null(strstr(eb.msg, "file_xxh64"));
        nk_vedit_free(&d);
    }
    nk_buf_free(&bad);
    nk_buf_free(&nested);
    nk_buf_free(&enc);
    nk_vedit_free(&e);
}

static void ignore(void *arg, nk_check_level level, const char *line)
{
    (void)arg, (void)level, (void)line;
}

static void test_flush_and_compaction_outputs_record_it(void **state)
{
    (void)state;
    env e;
    build(&e, 11, 4u << 20);
    assert_true(e.st.flushes > 2);
    assert_true(e.st.compactions > 0);
    size_t above_l0 = 0;
    size_t n = expect_recorded(&above_l0);
    assert_true(n > 2);
    assert_true(above_l0 > 0); /* compaction outputs among them */
    nk_check_summary sum;
    assert_int_equal(nk_db_check(g_rt, "/db", ignore, NULL, &sum), NK_OK);
    assert_int_equal(sum.verdict, NK_CHECK_OK);
    assert_int_equal(sum.tables_hashed, n);
    nk_sim_free(e.s);
}

static void test_survives_reopen_and_rewrite_and_pin(void **state)
{
    (void)state;
    env e;
    build(&e, 12, 2048); /* rewrites the manifest many times */
    uint64_t number = 0;
    nk_errbuf eb;
    assert_int_equal(nk_manifest_read_current(g_rt, "/db", &number, &eb), NK_OK);
    assert_true(number > 1); /* rewritten at least once */
    size_t above_l0 = 0;
    size_t n = expect_recorded(&above_l0);

    /* reopen: the live version carries it, listed from a pin */
    open_db(&e);
    nk_db_tables pin;
    assert_int_equal(nk_db_tables_pin(e.db, &pin), NK_OK);
    assert_int_equal(pin.n, n);
    for (size_t i = 0; i < pin.n; i++) {
        char p[128];
        table_path(pin.files[i].number, p, sizeof p);
        assert_non_null(strstr(p, pin.files[i].name));
        uint64_t h = 0, size = 0;
        assert_int_equal(nk_file_xxh64(g_rt, p, &h, &size), NK_OK);
        assert_true(pin.files[i].has_xxh64);
        assert_int_equal(pin.files[i].xxh64, h);
        assert_int_equal(pin.files[i].size, size);
    }
    /* more writes and compactions while pinned: the pinned files stay */
    for (int i = 0; i < 1500; i++) {
        put(&e, i, 3);
    }
    idle(&e);
    for (size_t i = 0; i < pin.n; i++) {
        char p[128];
        table_path(pin.files[i].number, p, sizeof p);
        nk_stat st;
        assert_int_equal(nk_rt_stat(g_rt, p, &st), NK_OK);
        assert_int_equal(st.size, pin.files[i].size);
    }
    /* some of them were compacted away meanwhile: only the pin keeps them */
    nk_db_file_info *live = NULL;
    size_t nlive = 0;
    assert_int_equal(nk_db_live_files(e.db, &live, &nlive), NK_OK);
    uint64_t retired[256];
    size_t nretired = 0;
    for (size_t i = 0; i < pin.n && nretired < 256; i++) {
        bool still = false;
        for (size_t k = 0; k < nlive; k++) {
            still = still || live[k].number == pin.files[i].number;
        }
        if (!still) {
            retired[nretired++] = pin.files[i].number;
        }
    }
    free(live);
    assert_true(nretired > 0);
    nk_db_tables_unpin(e.db, &pin);
    nk_db_tables_unpin(e.db, &pin); /* a second release is a no-op */
    idle(&e);
    for (size_t i = 0; i < nretired; i++) {
        char p[128];
        table_path(retired[i], p, sizeof p);
        nk_stat st;
        assert_int_equal(nk_rt_stat(g_rt, p, &st), NK_ENOENT); /* released: deleted */
    }
    close_db(&e);
    (void)expect_recorded(&above_l0);
    nk_sim_free(e.s);
}

static void flip(const char *path, uint64_t off)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(g_rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t b;
    size_t got;
    assert_int_equal(nk_rt_file_read_at(g_rt, f, off, &b, 1, &got), NK_OK);
    assert_int_equal(got, 1);
    b ^= 0x01;
    assert_int_equal(nk_rt_file_write_at(g_rt, f, off, &b, 1), NK_OK);
    assert_int_equal(nk_rt_file_sync(g_rt, f), NK_OK);
    nk_rt_file_close(g_rt, f);
}

typedef struct findings {
    char text[4096];
} findings;

static void collect(void *arg, nk_check_level level, const char *line)
{
    findings *f = arg;
    if (level != NK_CHECK_OK) {
        size_t n = strlen(f->text);
        snprintf(f->text + n, sizeof f->text - n, "%s\n", line);
    }
}

static void test_check_reports_a_corrupted_table(void **state)
{
    (void)state;
    env e;
    build(&e, 13, 4u << 20);
    nk_version_state vs;
    uint64_t number = 0;
    bool torn = false;
    nk_errbuf eb;
    assert_int_equal(nk_manifest_read(g_rt, "/db", &vs, &number, &torn, &eb), NK_OK);
    const nk_file_meta *victim = NULL;
    for (unsigned l = 0; l < NK_NUM_LEVELS && victim == NULL; l++) {
        if (vs.levels[l].count > 0) {
            victim = &vs.levels[l].files[0];
        }
    }
    assert_non_null(victim);
    char p[128];
    table_path(victim->number, p, sizeof p);
    flip(p, victim->size / 2);
    findings f;
    memset(&f, 0, sizeof f);
    nk_check_summary sum;
    assert_int_equal(nk_db_check(g_rt, "/db", collect, &f, &sum), NK_OK);
    assert_int_equal(sum.verdict, NK_CHECK_DAMAGED);
    assert_int_equal(sum.tables_damaged, 1);
    assert_non_null(strstr(f.text, p));
    assert_non_null(strstr(f.text, "corruption: whole-file checksum mismatch"));
    nk_vstate_free(&vs);
    nk_sim_free(e.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_codec_round_trip),
        cmocka_unit_test(test_flush_and_compaction_outputs_record_it),
        cmocka_unit_test(test_survives_reopen_and_rewrite_and_pin),
        cmocka_unit_test(test_check_reports_a_corrupted_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
