/*
 * test_engine_region.c - key-range export and atomic ingest, on the
 * simulator (in-memory disk, deterministic jobs, real crash semantics).
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

#include "nokv/engine/region.h"
#include "sim/sim.h"

typedef struct env {
    nk_sim *s;
    nk_rt *rt;
    nk_db *a; /* source */
    nk_db *b; /* target */
    nk_db_options o;
} env;

static int app_start(nk_rt *rt, void *cfg, void **state)
{
    env *e = cfg;
    e->rt = rt;
    *state = e;
    return NK_OK;
}

static void app_stop(void *state, bool crashed)
{
    env *e = state;
    if (crashed) {
        if (e->a) {
            nk_db_abandon(e->a);
        }
        if (e->b) {
            nk_db_abandon(e->b);
        }
        e->a = e->b = NULL;
    }
}

static const nk_sim_app app = {"region-test", app_start, app_stop};

static void run(env *e, uint64_t ms)
{
    nk_sim_run_until(e->s, nk_sim_now(e->s) + ms * NK_NSEC_PER_MSEC);
}

static nk_db *open_db(env *e, const char *dir)
{
    nk_db *db = NULL;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_open(e->rt, dir, &e->o, &db, &eb);
    if (rc != NK_OK) {
        fail_msg("open %s: %s", dir, eb.msg);
    }
    return db;
}

static void env_init(env *e, uint64_t seed)
{
    memset(e, 0, sizeof(*e));
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    e->s = nk_sim_new(&cfg);
    nk_sim_add_node(e->s, "n1", &app, e, NULL);
    nk_sim_node_start(e->s, 1);
    nk_db_options_default(&e->o);
    e->o.memtable_bytes = 32 * 1024;
    e->o.target_file_bytes = 16 * 1024;
    e->o.level1_bytes = 64 * 1024;
    e->o.l0_compaction_trigger = 2;
    e->o.sst.block_size = 1024;
    e->a = open_db(e, "/a");
    e->b = open_db(e, "/b");
}

typedef struct done_state {
    bool done;
    int rc;
    nk_region_result r;
    nk_errbuf eb;
} done_state;

static void on_done(void *arg, int rc)
{
    done_state *d = arg;
    d->done = true;
    d->rc = rc;
}

static void on_region(void *arg, int rc, const nk_region_result *r, const nk_errbuf *eb)
{
    done_state *d = arg;
    d->done = true;
    d->rc = rc;
    d->r = *r;
    d->eb = *eb;
}

static void wait_done(env *e, done_state *d)
{
    for (int i = 0; i < 100000 && !d->done; i++) {
        run(e, 1);
    }
    assert_true(d->done);
}

static void close_db(env *e, nk_db **db)
{
    done_state d = {0};
    nk_db_close(*db, on_done, &d);
    wait_done(e, &d);
    *db = NULL;
}

static void env_free(env *e)
{
    if (e->a) {
        close_db(e, &e->a);
    }
    if (e->b) {
        close_db(e, &e->b);
    }
    nk_sim_free(e->s);
}

static void put(env *e, nk_db *db, const char *k, const char *v)
{
    nk_batch b = {0};
    nk_batch_init(&b);
    if (v) {
        nk_batch_put(&b, k, strlen(k), v, strlen(v));
    } else {
        nk_batch_delete(&b, k, strlen(k));
    }
    done_state d = {0};
    assert_int_equal(nk_db_write(db, &b, true, on_done, &d), NK_OK);
    nk_batch_free(&b);
    wait_done(e, &d);
    assert_int_equal(d.rc, NK_OK);
}

/* Every key of db in [lo, hi), as "k=v;" text. */
static char *dump(nk_db *db, const char *lo, const char *hi)
{
    nk_db_iter_options io;
    memset(&io, 0, sizeof(io));
    io.lower = nk_slice_make(lo, lo ? strlen(lo) : 0);
    io.upper = nk_slice_make(hi, hi ? strlen(hi) : 0);
    nk_db_iter *it = NULL;
    assert_int_equal(nk_db_iter_new(db, &io, &it), NK_OK);
    nk_buf out = {0};
    for (nk_db_iter_first(it); nk_db_iter_valid(it); nk_db_iter_next(it)) {
        nk_slice k = nk_db_iter_key(it), v = nk_db_iter_value(it);
        nk_buf_append(&out, k.data, k.len);
        nk_buf_append(&out, "=", 1);
        nk_buf_append(&out, v.data, v.len);
        nk_buf_append(&out, ";", 1);
    }
    assert_int_equal(nk_db_iter_status(it, NULL), NK_OK);
    nk_db_iter_free(it);
    nk_buf_append(&out, "", 1);
    return (char *)out.data;
}

static void fill(env *e, nk_db *db, int n)
{
    char k[32], v[64];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "k%05d", i);
        snprintf(v, sizeof(v), "v%05d-%0*d", i, 20 + i % 30, 0);
        put(e, db, k, v);
    }
    for (int i = 0; i < n; i += 7) { /* overwrites and deletes */
        snprintf(k, sizeof(k), "k%05d", i);
        put(e, db, k, i % 14 == 0 ? NULL : "again");
    }
}

static int do_export(env *e, const char *lo, const char *hi, const char *dir, done_state *d)
{
    memset(d, 0, sizeof(*d));
    int rc = nk_db_export_range(e->a, nk_slice_make(lo, lo ? strlen(lo) : 0),
                                nk_slice_make(hi, hi ? strlen(hi) : 0), dir, 4096, on_region, d);
    if (rc == NK_OK) {
        wait_done(e, d);
        rc = d->rc;
    }
    return rc;
}

static int do_ingest(env *e, const char *dir, done_state *d)
{
    memset(d, 0, sizeof(*d));
    int rc = nk_db_ingest(e->b, dir, on_region, d);
    if (rc == NK_OK) {
        wait_done(e, d);
        rc = d->rc;
    }
    return rc;
}

static void test_full_range_round_trip(void **state)
{
    (void)state;
    env e;
    env_init(&e, 1);
    fill(&e, e.a, 1500);
    done_state d;
    assert_int_equal(do_export(&e, NULL, NULL, "/snap", &d), NK_OK);
    assert_true(d.r.files > 3);
    nk_region_result vr;
    nk_errbuf eb;
    assert_int_equal(nk_region_verify(e.rt, "/snap", &vr, &eb), NK_OK);
    assert_int_equal(vr.entries, d.r.entries);
    put(&e, e.b, "zzz-outside", "kept"); /* data outside the range is fine... */
    /* ...but the full range includes it: refused */
    assert_int_equal(do_ingest(&e, "/snap", &d), NK_EEXIST);
    assert_non_null(strstr(d.eb.msg, "live keys"));
    put(&e, e.b, "zzz-outside", NULL);
    /* writes issued while the ingest runs are held, then applied after it */
    assert_int_equal(do_ingest(&e, "/snap", &d), NK_OK);
    char *src = dump(e.a, NULL, NULL);
    char *dst = dump(e.b, NULL, NULL);
    assert_string_equal(src, dst);
    free(src);
    free(dst);
    /* the ingested data survives a reopen and a compaction */
    close_db(&e, &e.b);
    e.b = open_db(&e, "/b");
    done_state idle = {0};
    nk_db_wait_idle(e.b, true, on_done, &idle);
    wait_done(&e, &idle);
    src = dump(e.a, NULL, NULL);
    dst = dump(e.b, NULL, NULL);
    assert_string_equal(src, dst);
    free(src);
    free(dst);
    env_free(&e);
}

static void test_subrange_and_snapshot(void **state)
{
    (void)state;
    env e;
    env_init(&e, 2);
    fill(&e, e.a, 600);
    done_state d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(nk_db_export_range(e.a, nk_slice_make("k00100", 6),
                                        nk_slice_make("k00300", 6), "/sub", 4096, on_region, &d),
                     NK_OK);
    /* a write after the call is not part of the snapshot */
    put(&e, e.a, "k00150", "after-the-snapshot");
    wait_done(&e, &d);
    assert_int_equal(d.rc, NK_OK);
    put(&e, e.b, "k00050", "outside-range-ok");
    assert_int_equal(do_ingest(&e, "/sub", &d), NK_OK);
    char *dst = dump(e.b, "k00100", "k00300");
    assert_null(strstr(dst, "after-the-snapshot"));
    assert_non_null(strstr(dst, "k00100="));
    assert_null(strstr(dst, "k00300="));
    free(dst);
    nk_buf v = {0};
    assert_int_equal(nk_db_get(e.b, "k00050", 6, 0, &v, NULL), NK_OK);
    nk_buf_free(&v);
    env_free(&e);
}

static void corrupt_first_sst(env *e, const char *dir)
{
    nk_names names;
    assert_int_equal(nk_rt_dir_list(e->rt, dir, &names), NK_OK);
    char path[256] = "";
    for (size_t i = 0; i < names.count; i++) {
        if (strstr(names.names[i], ".sst")) {
            snprintf(path, sizeof(path), "%s/%s", dir, names.names[i]);
            break;
        }
    }
    nk_names_free(&names);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(e->rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t byte = 0;
    size_t got = 0;
    nk_rt_file_read_at(e->rt, f, 10, &byte, 1, &got);
    byte ^= 1;
    nk_rt_file_write_at(e->rt, f, 10, &byte, 1);
    nk_rt_file_close(e->rt, f);
}

static void test_corrupt_snapshot_is_refused_and_rolled_back(void **state)
{
    (void)state;
    env e;
    env_init(&e, 3);
    fill(&e, e.a, 400);
    done_state d;
    assert_int_equal(do_export(&e, NULL, NULL, "/snap", &d), NK_OK);
    corrupt_first_sst(&e, "/snap");
    nk_errbuf eb;
    assert_int_equal(nk_region_verify(e.rt, "/snap", NULL, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "checksum mismatch"));
    assert_int_equal(do_ingest(&e, "/snap", &d), NK_ECORRUPT);
    char *dst = dump(e.b, NULL, NULL);
    assert_string_equal(dst, ""); /* nothing published */
    free(dst);
    put(&e, e.b, "after", "writes still work"); /* the hold was released */
    /* an export that never wrote its metadata is not an export */
    assert_int_equal(nk_rt_dir_create(e.rt, "/empty"), NK_OK);
    assert_int_equal(nk_region_verify(e.rt, "/empty", NULL, &eb), NK_ENOENT);
    env_free(&e);
}

static void test_crash_before_publish_is_all_or_nothing(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        env e;
        env_init(&e, 10 + seed);
        fill(&e, e.a, 300);
        done_state d;
        assert_int_equal(do_export(&e, NULL, NULL, "/snap", &d), NK_OK);
        nk_sim_failpoint_arm(e.s, 1, "region.ingest.before_publish", NK_SIM_FP_CRASH, 1,
                             (nk_ratio){0, 0});
        memset(&d, 0, sizeof(d));
        assert_int_equal(nk_db_ingest(e.b, "/snap", on_region, &d), NK_OK);
        for (int i = 0; i < 10000 && nk_sim_node_up(e.s, 1); i++) {
            run(&e, 1);
        }
        assert_false(nk_sim_node_up(e.s, 1)); /* crashed at the failpoint */
        nk_sim_node_start(e.s, 1);
        e.a = open_db(&e, "/a");
        e.b = open_db(&e, "/b");
        char *dst = dump(e.b, NULL, NULL);
        assert_string_equal(dst, ""); /* the crash published nothing */
        free(dst);
        /* and the ingest can simply be run again */
        assert_int_equal(do_ingest(&e, "/snap", &d), NK_OK);
        char *src = dump(e.a, NULL, NULL);
        dst = dump(e.b, NULL, NULL);
        assert_string_equal(src, dst);
        free(src);
        free(dst);
        env_free(&e);
    }
}


/* Flush everything of db into tables and let compactions finish. */
static void settle(env *e, nk_db *db)
{
    done_state idle = {0};
    nk_db_wait_idle(db, true, on_done, &idle);
    wait_done(e, &idle);
    assert_int_equal(idle.rc, NK_OK);
}

static uint64_t last_seq(nk_db *db)
{
    nk_db_stats st;
    nk_db_get_stats(db, &st);
    return st.last_seq;
}

static uint8_t byte_at(env *e, const char *path, uint64_t off)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(e->rt, path, NK_OPEN_READ, &f), NK_OK);
    uint8_t b = 0;
    size_t got = 0;
    assert_int_equal(nk_rt_file_read_at(e->rt, f, off, &b, 1, &got), NK_OK);
    assert_int_equal(got, 1);
    nk_rt_file_close(e->rt, f);
    return b;
}

static void set_byte(env *e, const char *path, uint64_t off, uint8_t b)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(e->rt, path, NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_rt_file_write_at(e->rt, f, off, &b, 1), NK_OK);
    nk_rt_file_close(e->rt, f);
}

/* Issue 8 item 9: the export of a range that holds whole tables links them:
 * the exported file IS the db's table (a write through one name is seen
 * through the other), nothing is copied, and the set still reads back as
 * the range. */
static void test_export_links_tables(void **state)
{
    (void)state;
    env e;
    env_init(&e, 4);
    fill(&e, e.a, 1500);
    settle(&e, e.a);
    done_state d;
    assert_int_equal(do_export(&e, NULL, NULL, "/snap", &d), NK_OK);
    assert_true(d.r.files >= 2);
    assert_int_equal(d.r.linked, d.r.files); /* every table linked, none rewritten */
    /* Find a db table with the same size as an exported file and prove
     * they share their data. */
    nk_names ex, db;
    assert_int_equal(nk_rt_dir_list(e.rt, "/snap", &ex), NK_OK);
    assert_int_equal(nk_rt_dir_list(e.rt, "/a", &db), NK_OK);
    int shared = 0;
    for (size_t i = 0; i < ex.count; i++) {
        if (strstr(ex.names[i], ".sst") == NULL) {
            continue;
        }
        char xp[256];
        snprintf(xp, sizeof(xp), "/snap/%s", ex.names[i]);
        nk_stat xs;
        assert_int_equal(nk_rt_stat(e.rt, xp, &xs), NK_OK);
        for (size_t k = 0; k < db.count; k++) {
            char dp[256];
            snprintf(dp, sizeof(dp), "/a/%s", db.names[k]);
            nk_stat ds;
            if (strstr(db.names[k], ".sst") == NULL || nk_rt_stat(e.rt, dp, &ds) != NK_OK ||
                ds.size != xs.size) {
                continue;
            }
            uint8_t orig = byte_at(&e, dp, 5);
            set_byte(&e, xp, 5, (uint8_t)(orig ^ 0x5a));
            bool same = byte_at(&e, dp, 5) == (uint8_t)(orig ^ 0x5a);
            set_byte(&e, xp, 5, orig);
            if (same) {
                shared++;
                break;
            }
        }
    }
    nk_names_free(&ex);
    nk_names_free(&db);
    assert_int_equal(shared, (int)d.r.files);
    nk_region_result vr;
    nk_errbuf eb;
    assert_int_equal(nk_region_verify(e.rt, "/snap", &vr, &eb), NK_OK);
    /* A subrange cuts tables: those are copied, the inner ones linked. */
    assert_int_equal(do_export(&e, "k00300", "k01200", "/sub", &d), NK_OK);
    assert_true(d.r.files > d.r.linked);
    assert_int_equal(do_ingest(&e, "/sub", &d), NK_OK);
    char *src = dump(e.a, "k00300", "k01200");
    char *dst = dump(e.b, NULL, NULL);
    assert_string_equal(src, dst);
    free(src);
    free(dst);
    env_free(&e);
}

/* A replica holding stale data for the range (in tables wholly inside it)
 * installs by link: its tables go in the same edit, keys the snapshot does
 * not have vanish, the engine's sequence is raised above the files', and a
 * later write shadows an ingested version, across a reopen with WAL replay
 * over the gap and a compaction. */
static void test_ingest_by_link_replaces_stale_range(void **state)
{
    (void)state;
    env e;
    env_init(&e, 5);
    fill(&e, e.a, 900);
    settle(&e, e.a);
    /* b: an older, different state of the same range, all in tables */
    char k[32];
    for (int i = 0; i < 400; i++) {
        snprintf(k, sizeof(k), "k%05d", i * 3);
        put(&e, e.b, k, "stale");
    }
    put(&e, e.b, "k99999-only-stale", "gone after the install");
    settle(&e, e.b);
    uint64_t before = last_seq(e.b);
    done_state d;
    assert_int_equal(do_export(&e, "k", "l", "/snap", &d), NK_OK);
    uint64_t src_seq = last_seq(e.a);
    assert_true(src_seq > before); /* the source numbers run ahead of b's */
    assert_int_equal(do_ingest(&e, "/snap", &d), NK_OK);
    assert_int_equal(d.r.linked, d.r.files); /* installed by link, nothing rewritten */
    assert_true(d.r.snapshot_seq <= src_seq);
    assert_true(last_seq(e.b) >= d.r.snapshot_seq); /* raised above the files' seqnos */
    char *src = dump(e.a, NULL, NULL);
    char *dst = dump(e.b, NULL, NULL);
    assert_string_equal(src, dst);
    free(src);
    free(dst);
    /* a write after the install wins over the ingested version */
    put(&e, e.b, "k00001", "newer than the snapshot");
    put(&e, e.b, "m-outside", "x"); /* WAL records numbered above the floor */
    close_db(&e, &e.b);
    e.b = open_db(&e, "/b"); /* replays the WAL across the sequence gap */
    assert_true(last_seq(e.b) > d.r.snapshot_seq);
    settle(&e, e.b);
    nk_buf v = {0};
    assert_int_equal(nk_db_get(e.b, "k00001", 6, 0, &v, NULL), NK_OK);
    assert_int_equal(v.len, strlen("newer than the snapshot"));
    assert_memory_equal(v.data, "newer than the snapshot", v.len);
    assert_int_equal(nk_db_get(e.b, "k99999-only-stale", 17, 0, &v, NULL), NK_ENOENT);
    nk_buf_free(&v);
    /* and a write after the reopen is numbered above the floor too */
    put(&e, e.b, "k00002", "after reopen");
    settle(&e, e.b);
    nk_buf v2 = {0};
    assert_int_equal(nk_db_get(e.b, "k00002", 6, 0, &v2, NULL), NK_OK);
    assert_memory_equal(v2.data, "after reopen", v2.len);
    nk_buf_free(&v2);
    env_free(&e);
}

typedef struct writer_state {
    env *e;
    done_state *ingest;
    int issued, done_before, done_total;
} writer_state;

static void on_outside_write(void *arg, int rc)
{
    writer_state *w = arg;
    assert_int_equal(rc, NK_OK);
    w->done_total++;
    if (!w->ingest->done) {
        w->done_before++;
    }
}

/* Issue 7: an ingest does not hold writes to keys outside its range: they
 * are acknowledged while the ingest is still running. */
static void test_writes_outside_range_proceed_during_ingest(void **state)
{
    (void)state;
    env e;
    env_init(&e, 6);
    fill(&e, e.a, 1200);
    settle(&e, e.a);
    done_state d;
    assert_int_equal(do_export(&e, "k", "l", "/snap", &d), NK_OK);
    memset(&d, 0, sizeof(d));
    assert_int_equal(nk_db_ingest(e.b, "/snap", on_region, &d), NK_OK);
    writer_state w = {&e, &d, 0, 0, 0};
    char k[32];
    for (int i = 0; i < 100000 && !d.done; i++) {
        snprintf(k, sizeof(k), "z%06d", w.issued++);
        nk_batch b = {0};
        nk_batch_init(&b);
        nk_batch_put(&b, k, strlen(k), "v", 1);
        assert_int_equal(nk_db_write(e.b, &b, true, on_outside_write, &w), NK_OK);
        nk_batch_free(&b);
        run(&e, 1);
    }
    assert_true(d.done);
    assert_int_equal(d.rc, NK_OK);
    assert_true(w.done_before > 0); /* acknowledged while the ingest ran */
    for (int i = 0; i < 10000 && w.done_total < w.issued; i++) {
        run(&e, 1);
    }
    assert_int_equal(w.done_total, w.issued);
    char *src = dump(e.a, "k", "l");
    char *dst = dump(e.b, "k", "l");
    assert_string_equal(src, dst);
    free(src);
    free(dst);
    nk_buf v = {0};
    assert_int_equal(nk_db_get(e.b, "z000000", 7, 0, &v, NULL), NK_OK);
    nk_buf_free(&v);
    env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_range_round_trip),
        cmocka_unit_test(test_subrange_and_snapshot),
        cmocka_unit_test(test_corrupt_snapshot_is_refused_and_rolled_back),
        cmocka_unit_test(test_crash_before_publish_is_all_or_nothing),
        cmocka_unit_test(test_export_links_tables),
        cmocka_unit_test(test_ingest_by_link_replaces_stale_range),
        cmocka_unit_test(test_writes_outside_range_proceed_during_ingest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
