/*
 * test_engine_db.c - the storage engine end to end, on the simulator.
 *
 * The simulator runs the engine's background jobs (flush, compaction, WAL
 * sync) at seeded times and models power loss exactly (unsynced writes
 * dropped or torn), so these tests check recovery against real crash
 * behaviour, deterministically.
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

#include "nokv/engine/db.h"
#include "sim/disk.h"
#include "sim/sim.h"

/* ------------------------------------------------------------ harness --- */

static nk_rt *g_rt;

typedef struct env {
    nk_sim *s;
    nk_db *db;
    nk_db_options o;
} env;

static int app_start(nk_rt *rt, void *cfg, void **state)
{
    g_rt = rt;
    *state = cfg;
    return NK_OK;
}

/* Like every app in the simulator, free what the node owned when it dies:
 * before the simulator reaps the node's stale file handles. */
static void app_stop(void *state, bool crashed)
{
    env *e = state;
    if (crashed && e->db != NULL) {
        nk_db_abandon(e->db);
        e->db = NULL;
    }
}

static const nk_sim_app app = {"db-test", app_start, app_stop};

static void small_options(nk_db_options *o)
{
    nk_db_options_default(o);
    o->memtable_bytes = 32 * 1024; /* many flushes */
    o->target_file_bytes = 16 * 1024;
    o->level1_bytes = 64 * 1024;   /* many compactions */
    o->level_multiplier = 4;
    o->l0_compaction_trigger = 2;
    o->l0_slowdown = 6;
    o->l0_stop = 10;
    o->wal_segment_bytes = 16 * 1024;
    o->block_cache_bytes = 64 * 1024;
    o->sst.block_size = 1024;
}

static void run(env *e, uint64_t ms)
{
    nk_sim_run_until(e->s, nk_sim_now(e->s) + ms * NK_NSEC_PER_MSEC);
}

static int db_open(env *e)
{
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_open(g_rt, "/db", &e->o, &e->db, &eb);
    if (rc != NK_OK) {
        print_message("open: %s: %s\n", nk_errname(rc), eb.msg);
    }
    return rc;
}

static void env_init(env *e, uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    if (getenv("NOKV_TEST_TRACE") != NULL) {
        cfg.trace_out = stderr; /* debugging aid: every simulated event */
        cfg.log_level = NK_LOG_DEBUG;
    }
    e->s = nk_sim_new(&cfg);
    e->db = NULL;
    nk_sim_add_node(e->s, "n1", &app, e, NULL);
    nk_sim_node_start(e->s, 1);
    small_options(&e->o);
    assert_int_equal(db_open(e), NK_OK);
}

typedef struct closing {
    bool done;
    int rc;
} closing;

static void on_closed(void *arg, int rc)
{
    closing *c = arg;
    c->done = true;
    c->rc = rc;
}

static void db_close(env *e)
{
    closing c = {false, 0};
    nk_db_close(e->db, on_closed, &c);
    for (int i = 0; i < 1000 && !c.done; i++) {
        run(e, 10);
    }
    assert_true(c.done);
    e->db = NULL;
}

static void env_free(env *e)
{
    if (e->db != NULL) {
        db_close(e);
    }
    nk_sim_free(e->s);
}

typedef struct wstate {
    bool done;
    int rc;
} wstate;

static void on_written(void *arg, int rc)
{
    wstate *w = arg;
    w->done = true;
    w->rc = rc;
}

/* Write and wait for the completion (running the simulation). */
static int put_wait(env *e, const char *k, const char *v, bool sync)
{
    nk_batch b = {0};
    nk_batch_init(&b);
    if (v != NULL) {
        nk_batch_put(&b, k, strlen(k), v, strlen(v));
    } else {
        nk_batch_delete(&b, k, strlen(k));
    }
    wstate w = {false, 0};
    int rc = nk_db_write(e->db, &b, sync, on_written, &w);
    nk_batch_free(&b);
    if (rc != NK_OK) {
        return rc;
    }
    for (int i = 0; i < 10000 && !w.done; i++) {
        run(e, 1);
    }
    assert_true(w.done);
    return w.rc;
}

static int get(env *e, const char *k, char *out, size_t cap)
{
    nk_buf v = {0};
    nk_errbuf eb;
    int rc = nk_db_get(e->db, k, strlen(k), 0, &v, &eb);
    if (rc == NK_OK) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.data, n);
        out[n] = '\0';
    } else if (rc != NK_ENOENT) {
        print_message("get %s: %s: %s\n", k, nk_errname(rc), eb.msg);
    }
    nk_buf_free(&v);
    return rc;
}

static void wait_idle(env *e, bool flush)
{
    wstate w = {false, 0};
    nk_db_wait_idle(e->db, flush, on_written, &w);
    for (int i = 0; i < 100000 && !w.done; i++) {
        run(e, 1);
    }
    assert_true(w.done);
    assert_int_equal(w.rc, NK_OK);
}

/* -------------------------------------------------------------- model --- */

#define NKEYS 400

typedef struct model {
    char val[NKEYS][48]; /* "" = absent */
} model;

static void key_of(int i, char *buf, size_t n) { snprintf(buf, n, "key%05d", i); }

static void check_model(env *e, const model *m)
{
    char k[32], v[64];
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, k, sizeof(k));
        int rc = get(e, k, v, sizeof(v));
        if (m->val[i][0] == '\0') {
            if (rc != NK_ENOENT) {
                fail_msg("key %s should be absent, got rc %s value %s", k, nk_errname(rc), v);
            }
        } else {
            if (rc != NK_OK || strcmp(v, m->val[i]) != 0) {
                fail_msg("key %s: want %s, got rc %s value %s", k, m->val[i], nk_errname(rc),
                         rc == NK_OK ? v : "");
            }
        }
    }
    /* forward and backward scans agree with the model */
    nk_db_iter *it = NULL;
    assert_int_equal(nk_db_iter_new(e->db, NULL, &it), NK_OK);
    int idx = 0;
    for (nk_db_iter_first(it); nk_db_iter_valid(it); nk_db_iter_next(it)) {
        while (idx < NKEYS && m->val[idx][0] == '\0') {
            idx++;
        }
        assert_true(idx < NKEYS);
        key_of(idx, k, sizeof(k));
        nk_slice ik = nk_db_iter_key(it), iv = nk_db_iter_value(it);
        assert_int_equal(ik.len, strlen(k));
        assert_memory_equal(ik.data, k, ik.len);
        assert_int_equal(iv.len, strlen(m->val[idx]));
        assert_memory_equal(iv.data, m->val[idx], iv.len);
        idx++;
    }
    assert_int_equal(nk_db_iter_status(it, NULL), NK_OK);
    while (idx < NKEYS && m->val[idx][0] == '\0') {
        idx++;
    }
    assert_int_equal(idx, NKEYS);
    int back = NKEYS - 1;
    for (nk_db_iter_last(it); nk_db_iter_valid(it); nk_db_iter_prev(it)) {
        while (back >= 0 && m->val[back][0] == '\0') {
            back--;
        }
        assert_true(back >= 0);
        key_of(back, k, sizeof(k));
        nk_slice ik = nk_db_iter_key(it);
        assert_memory_equal(ik.data, k, ik.len);
        back--;
    }
    nk_db_iter_free(it);
}

/* -------------------------------------------------------------- tests --- */

static void test_basic_put_get_delete_iterate(void **state)
{
    (void)state;
    env e;
    env_init(&e, 1);
    char v[64];
    assert_int_equal(get(&e, "a", v, sizeof(v)), NK_ENOENT);
    assert_int_equal(put_wait(&e, "a", "1", true), NK_OK);
    assert_int_equal(put_wait(&e, "b", "2", false), NK_OK);
    assert_int_equal(get(&e, "a", v, sizeof(v)), NK_OK);
    assert_string_equal(v, "1");
    uint64_t snap = nk_db_snapshot(e.db);
    assert_int_equal(put_wait(&e, "a", "3", true), NK_OK);
    assert_int_equal(put_wait(&e, "b", NULL, true), NK_OK);
    assert_int_equal(get(&e, "a", v, sizeof(v)), NK_OK);
    assert_string_equal(v, "3");
    assert_int_equal(get(&e, "b", v, sizeof(v)), NK_ENOENT);
    /* the snapshot still sees the old state */
    nk_buf old = {0};
    assert_int_equal(nk_db_get(e.db, "a", 1, snap, &old, NULL), NK_OK);
    assert_int_equal(old.len, 1);
    assert_int_equal(old.data[0], '1');
    assert_int_equal(nk_db_get(e.db, "b", 1, snap, &old, NULL), NK_OK);
    nk_buf_free(&old);
    nk_db_release_snapshot(e.db, snap);
    /* reopen: everything durable comes back */
    db_close(&e);
    assert_int_equal(db_open(&e), NK_OK);
    assert_int_equal(get(&e, "a", v, sizeof(v)), NK_OK);
    assert_string_equal(v, "3");
    assert_int_equal(get(&e, "b", v, sizeof(v)), NK_ENOENT);
    env_free(&e);
}

static void test_model_across_flush_compaction_reopen(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        env e;
        env_init(&e, seed);
        model m;
        memset(&m, 0, sizeof(m));
        nk_rand r;
        nk_rand_seed(&r, seed * 977);
        char k[32], v[48];
        uint64_t flushes = 0, compactions = 0;
        nk_db_stats st;
        for (int op = 0; op < 6000; op++) {
            int i = (int)nk_rand_below(&r, NKEYS);
            key_of(i, k, sizeof(k));
            if (nk_rand_chance(&r, 1, 5)) {
                assert_int_equal(put_wait(&e, k, NULL, nk_rand_chance(&r, 1, 8)), NK_OK);
                m.val[i][0] = '\0';
            } else {
                snprintf(v, sizeof(v), "v%d-%" PRIu64 "-%0*d", op, seed,
                         (int)nk_rand_below(&r, 30), 7);
                assert_int_equal(put_wait(&e, k, v, nk_rand_chance(&r, 1, 8)), NK_OK);
                snprintf(m.val[i], sizeof(m.val[i]), "%s", v);
            }
            if (op % 1500 == 1499) {
                check_model(&e, &m);
            }
            if (op % 2500 == 2499) {
                nk_db_get_stats(e.db, &st);
                flushes += st.flushes;
                compactions += st.compactions;
                db_close(&e);
                assert_int_equal(db_open(&e), NK_OK);
                check_model(&e, &m);
            }
        }
        wait_idle(&e, true);
        check_model(&e, &m);
        nk_db_get_stats(e.db, &st);
        flushes += st.flushes;
        compactions += st.compactions;
        assert_true(flushes > 5);
        assert_true(compactions > 2);
        assert_true(st.files[0] < e.o.l0_stop);
        if (seed == 1) {
            print_message("model test: %" PRIu64 " flushes, %" PRIu64 " compactions, L0..L3 files "
                          "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
                          flushes, compactions, st.files[0], st.files[1], st.files[2],
                          st.files[3]);
        }
        db_close(&e);
        assert_int_equal(db_open(&e), NK_OK);
        check_model(&e, &m);
        env_free(&e);
    }
}

/* Acknowledged-durable writes survive power loss; nothing wrong appears.
 * Completions may arrive long after the write (stalls, group commit), so
 * each write has its own record that its callback fills in. */
typedef struct wop {
    int key;
    int op;
    bool sync;
    bool done;
    int rc;
} wop;

static void on_op_done(void *arg, int rc)
{
    wop *w = arg;
    w->done = true;
    w->rc = rc;
}

#define CRASH_OPS 1500

static void test_crash_keeps_acknowledged_writes(void **state)
{
    (void)state;
    unsigned lost_unacked = 0, crashes_total = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        env e;
        env_init(&e, seed);
        wop *ops = calloc(CRASH_OPS, sizeof(*ops));
        int floor_op[NKEYS]; /* after a crash: the recovered op per key (-1 absent) */
        for (int x = 0; x < NKEYS; x++) {
            floor_op[x] = -1;
        }
        int epoch_start = 0; /* ops before it were settled by a crash check */
        nk_rand r;
        nk_rand_seed(&r, seed);
        char k[32], v[48];
        for (int op = 0; op < CRASH_OPS; op++) {
            int i = (int)nk_rand_below(&r, NKEYS);
            key_of(i, k, sizeof(k));
            snprintf(v, sizeof(v), "s%" PRIu64 "-%d", seed, op);
            ops[op] = (wop){i, op, nk_rand_chance(&r, 1, 2), false, 0};
            nk_batch b = {0};
            nk_batch_init(&b);
            nk_batch_put(&b, k, strlen(k), v, strlen(v));
            assert_int_equal(nk_db_write(e.db, &b, ops[op].sync, on_op_done, &ops[op]), NK_OK);
            nk_batch_free(&b);
            run(&e, nk_rand_below(&r, 3));
            if (!nk_rand_chance(&r, 1, 300) && op != CRASH_OPS - 1) {
                continue;
            }
            /* power loss, then recovery must hold every acknowledged write */
            nk_sim_node_crash(e.s, 1); /* app_stop abandons the db */
            assert_null(e.db);
            crashes_total++;
            int acked_op[NKEYS];
            int sent_op[NKEYS];
            for (int x = 0; x < NKEYS; x++) {
                acked_op[x] = floor_op[x];
                sent_op[x] = floor_op[x];
            }
            for (int o = epoch_start; o <= op; o++) {
                sent_op[ops[o].key] = o;
                if (ops[o].done && ops[o].rc == NK_OK && ops[o].sync) {
                    acked_op[ops[o].key] = o;
                }
                ops[o].done = true; /* the node is gone: no callback will come */
            }
            nk_sim_node_start(e.s, 1);
            assert_int_equal(db_open(&e), NK_OK);
            for (int x = 0; x < NKEYS; x++) {
                key_of(x, k, sizeof(k));
                char got[64];
                int rc = get(&e, k, got, sizeof(got));
                assert_true(rc == NK_OK || rc == NK_ENOENT);
                int g = -1;
                if (rc == NK_OK) {
                    /* never garbage: one of the values written to this key */
                    assert_true(strncmp(got, "s", 1) == 0);
                    g = atoi(strchr(got, '-') + 1);
                    assert_true(g >= 0 && g <= op && ops[g].key == x);
                }
                if (g < acked_op[x]) {
                    fail_msg("seed %" PRIu64 " crash at op %d: key %s acknowledged op %d but "
                             "recovered %d",
                             seed, op, k, acked_op[x], g);
                }
                lost_unacked += g < sent_op[x];
                floor_op[x] = g;
            }
            epoch_start = op + 1;
        }
        free(ops);
        env_free(&e);
    }
    print_message("crash test: %u crashes; %u keys lost unacknowledged writes (allowed)\n",
                  crashes_total, lost_unacked);
    assert_true(crashes_total >= 40);
}

/* Enough data to fill several levels: every key checked after compactions
 * that move, merge and drop versions and tombstones. */
static void test_deep_levels_model(void **state)
{
    (void)state;
    enum { KEYS = 6000, OPS = 40000 };
    env e;
    env_init(&e, 21);
    uint32_t *ver = calloc(KEYS, sizeof(uint32_t)); /* 0 = absent, else value version */
    nk_rand r;
    nk_rand_seed(&r, 2121);
    char k[32], v[160];
    uint64_t snap = 0;
    uint32_t *snap_ver = calloc(KEYS, sizeof(uint32_t));
    for (int op = 1; op <= OPS; op++) {
        int i = (int)nk_rand_below(&r, KEYS);
        snprintf(k, sizeof(k), "deep%06d", i);
        if (nk_rand_chance(&r, 1, 6)) {
            assert_int_equal(put_wait(&e, k, NULL, false), NK_OK);
            ver[i] = 0;
        } else {
            snprintf(v, sizeof(v), "%d-%0100d", op, i);
            assert_int_equal(put_wait(&e, k, v, false), NK_OK);
            ver[i] = (uint32_t)op;
        }
        if (op == OPS / 2) {
            /* a snapshot taken mid-way must keep seeing its versions */
            snap = nk_db_snapshot(e.db);
            memcpy(snap_ver, ver, KEYS * sizeof(uint32_t));
        }
    }
    wait_idle(&e, true);
    nk_db_stats st;
    nk_db_get_stats(e.db, &st);
    print_message("deep test: flushes %" PRIu64 " compactions %" PRIu64 " files L0..L4 %" PRIu64
                  "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
                  st.flushes, st.compactions, st.files[0], st.files[1], st.files[2], st.files[3],
                  st.files[4]);
    assert_true(st.files[2] > 0); /* data really reached level 2 */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < KEYS; i++) {
            snprintf(k, sizeof(k), "deep%06d", i);
            for (int which = 0; which < 2; which++) {
                uint32_t want = which == 0 ? ver[i] : snap_ver[i];
                nk_buf got = {0};
                int rc = nk_db_get(e.db, k, strlen(k), which == 0 ? 0 : snap, &got, NULL);
                if (want == 0) {
                    assert_int_equal(rc, NK_ENOENT);
                } else {
                    snprintf(v, sizeof(v), "%u-%0100d", want, i);
                    assert_int_equal(rc, NK_OK);
                    assert_int_equal(got.len, strlen(v));
                    assert_memory_equal(got.data, v, got.len);
                }
                nk_buf_free(&got);
            }
        }
        /* a full scan sees exactly the live keys, in order */
        nk_db_iter *it = NULL;
        assert_int_equal(nk_db_iter_new(e.db, NULL, &it), NK_OK);
        int expect = 0, seen = 0;
        for (nk_db_iter_first(it); nk_db_iter_valid(it); nk_db_iter_next(it)) {
            while (expect < KEYS && ver[expect] == 0) {
                expect++;
            }
            snprintf(k, sizeof(k), "deep%06d", expect);
            nk_slice ik = nk_db_iter_key(it);
            assert_int_equal(ik.len, strlen(k));
            assert_memory_equal(ik.data, k, ik.len);
            expect++;
            seen++;
        }
        assert_int_equal(nk_db_iter_status(it, NULL), NK_OK);
        int live = 0;
        for (int i = 0; i < KEYS; i++) {
            live += ver[i] != 0;
        }
        assert_int_equal(seen, live);
        nk_db_iter_free(it);
        if (pass == 0) {
            nk_db_release_snapshot(e.db, snap);
            snap = nk_db_snapshot(e.db); /* the second pass checks the reopened db */
            nk_db_release_snapshot(e.db, snap);
            memcpy(snap_ver, ver, KEYS * sizeof(uint32_t));
            db_close(&e);
            assert_int_equal(db_open(&e), NK_OK);
            snap = 0;
        }
    }
    free(ver);
    free(snap_ver);
    env_free(&e);
}

static void test_corrupt_table_is_reported(void **state)
{
    (void)state;
    env e;
    env_init(&e, 9);
    char k[32], v[64];
    for (int i = 0; i < 300; i++) {
        key_of(i, k, sizeof(k));
        snprintf(v, sizeof(v), "value-%d-xxxxxxxxxxxxxxxxxxxxxxxx", i);
        put_wait(&e, k, v, false);
    }
    wait_idle(&e, true);
    db_close(&e);
    /* flip one byte in the middle of the first table file */
    nk_names names;
    assert_int_equal(nk_rt_dir_list(g_rt, "/db", &names), NK_OK);
    char path[256] = "";
    for (size_t i = 0; i < names.count; i++) {
        if (strstr(names.names[i], ".sst") != NULL) {
            snprintf(path, sizeof(path), "/db/%s", names.names[i]);
            break;
        }
    }
    nk_names_free(&names);
    assert_true(path[0] != '\0');
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(g_rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t byte;
    size_t got;
    nk_rt_file_read_at(g_rt, f, 100, &byte, 1, &got);
    byte ^= 0x40;
    nk_rt_file_write_at(g_rt, f, 100, &byte, 1);
    nk_rt_file_sync(g_rt, f);
    nk_rt_file_close(g_rt, f);
    assert_int_equal(db_open(&e), NK_OK);
    int corrupt = 0, wrong = 0;
    for (int i = 0; i < 300; i++) {
        key_of(i, k, sizeof(k));
        nk_buf val = {0};
        nk_errbuf eb;
        int rc = nk_db_get(e.db, k, strlen(k), 0, &val, &eb);
        if (rc == NK_ECORRUPT) {
            corrupt++;
            assert_non_null(strstr(eb.msg, ".sst"));
        } else if (rc == NK_OK) {
            snprintf(v, sizeof(v), "value-%d-xxxxxxxxxxxxxxxxxxxxxxxx", i);
            wrong += val.len != strlen(v) || memcmp(val.data, v, val.len) != 0;
        } else {
            wrong++;
        }
        nk_buf_free(&val);
    }
    assert_true(corrupt > 0);
    assert_int_equal(wrong, 0);
    env_free(&e);
}

/* ------------------------------------------------- WAL completeness --- */

/* WAL segment paths, oldest first (at most cap). */
static size_t wal_segments(char paths[][64], size_t cap)
{
    nk_names names;
    assert_int_equal(nk_rt_dir_list(g_rt, "/db/wal", &names), NK_OK);
    size_t n = 0;
    for (size_t i = 0; i < names.count && n < cap; i++) {
        if (strstr(names.names[i], ".log") != NULL) {
            snprintf(paths[n++], 64, "/db/wal/%s", names.names[i]);
        }
    }
    nk_names_free(&names);
    return n;
}

static void truncate_file(const char *path, uint64_t keep_less)
{
    nk_file *f = NULL;
    uint64_t size = 0;
    assert_int_equal(nk_rt_file_open(g_rt, path, NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_rt_file_size(g_rt, f, &size), NK_OK);
    assert_true(size > keep_less);
    assert_int_equal(nk_rt_file_truncate(g_rt, f, size - keep_less), NK_OK);
    assert_int_equal(nk_rt_file_sync(g_rt, f), NK_OK);
    nk_rt_file_close(g_rt, f);
}

static int open_msg(env *e, char *msg, size_t cap)
{
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_open(g_rt, "/db", &e->o, &e->db, &eb);
    snprintf(msg, cap, "%s", eb.msg);
    return rc;
}

/* 200 acknowledged sync writes; the caller then damages the WAL. */
static void write_acked(env *e)
{
    e->o.memtable_bytes = 4u << 20; /* nothing flushed: all of it is in the WAL */
    e->o.wal_segment_bytes = 64u << 20;
    db_close(e);
    assert_int_equal(db_open(e), NK_OK);
    char k[32], v[64];
    for (int i = 0; i < 200; i++) {
        key_of(i, k, sizeof(k));
        snprintf(v, sizeof(v), "acked-%d", i);
        assert_int_equal(put_wait(e, k, v, true), NK_OK);
    }
}

/* Issue 12, cases 2 and 3: removing the WAL segment, or truncating it, used
 * to open with "recovered 0 records" / "torn tail ... never acknowledged"
 * and silently drop acknowledged writes. Now the manifest records which
 * segment and which lsns must exist, and the open is refused, naming the
 * file and what to do. */
static void test_removed_wal_segment_is_refused(void **state)
{
    (void)state;
    char msg[NK_ERRBUF_SIZE];
    /* after a crash (no clean close: the claim recorded at open decides) */
    env e;
    env_init(&e, 21);
    write_acked(&e);
    nk_sim_node_crash(e.s, 1);
    nk_sim_node_start(e.s, 1);
    char segs[8][64];
    size_t n = wal_segments(segs, 8);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(nk_rt_remove(g_rt, segs[i]), NK_OK);
    }
    assert_int_equal(open_msg(&e, msg, sizeof msg), NK_ECORRUPT);
    assert_non_null(strstr(msg, ".log is missing"));
    assert_non_null(strstr(msg, "--accept-data-loss"));
    assert_null(e.db);
    /* The explicit salvage opens, reports exactly what it gave up, and
     * records the decision: the next normal open succeeds. */
    e.o.accept_data_loss = true;
    assert_int_equal(db_open(&e), NK_OK);
    const nk_db_open_report *rep = nk_db_open_report_get(e.db);
    assert_true(rep->data_lost);
    assert_int_equal(rep->lost_lsn_from, 1);
    assert_int_equal(rep->lost_lsn_to, 0); /* the whole segment: no upper bound */
    char got[64];
    assert_int_equal(put_wait(&e, "after", "salvage", true), NK_OK);
    db_close(&e);
    e.o.accept_data_loss = false;
    assert_int_equal(db_open(&e), NK_OK);
    assert_false(nk_db_open_report_get(e.db)->data_lost);
    assert_int_equal(get(&e, "after", got, sizeof got), NK_OK);
    assert_string_equal(got, "salvage");
    env_free(&e);

    /* after a clean close, removing only the newest segment */
    env_init(&e, 22);
    write_acked(&e);
    db_close(&e);
    assert_int_equal(db_open(&e), NK_OK); /* a second segment, empty */
    db_close(&e);
    n = wal_segments(segs, 8);
    assert_true(n >= 2);
    assert_int_equal(nk_rt_remove(g_rt, segs[n - 1]), NK_OK);
    assert_int_equal(open_msg(&e, msg, sizeof msg), NK_ECORRUPT);
    assert_non_null(strstr(msg, segs[n - 1] + strlen("/db/wal/")));
    env_free(&e);
}

static void test_truncated_wal_is_refused(void **state)
{
    (void)state;
    char msg[NK_ERRBUF_SIZE];
    env e;
    /* after a power loss: the periodic claim (every second) covers what was
     * acknowledged more than a second before the crash */
    env_init(&e, 24);
    write_acked(&e);
    run(&e, 1500);
    nk_sim_node_crash(e.s, 1);
    nk_sim_node_start(e.s, 1);
    char csegs[8][64];
    size_t cn = wal_segments(csegs, 8);
    assert_true(cn >= 1);
    truncate_file(csegs[cn - 1], 200);
    assert_int_equal(open_msg(&e, msg, sizeof msg), NK_ECORRUPT);
    assert_non_null(strstr(msg, ".log"));
    env_free(&e);

    env_init(&e, 23);
    write_acked(&e);
    db_close(&e); /* the close claims every lsn in the manifest */
    char segs[8][64];
    size_t n = wal_segments(segs, 8);
    assert_true(n >= 1);
    /* cut the last records (and the close MARK): all were acknowledged */
    truncate_file(segs[n - 1], 200);
    assert_int_equal(open_msg(&e, msg, sizeof msg), NK_ECORRUPT);
    assert_non_null(strstr(msg, "were durable") != NULL ? strstr(msg, "were durable")
                                                        : strstr(msg, "as durable"));
    assert_non_null(strstr(msg, ".log"));
    assert_null(e.db);
    e.o.accept_data_loss = true;
    assert_int_equal(db_open(&e), NK_OK);
    const nk_db_open_report *rep = nk_db_open_report_get(e.db);
    assert_true(rep->data_lost);
    assert_true(rep->lost_lsn_from > 150 && rep->lost_lsn_from <= 200);
    assert_true(rep->lost_lsn_to >= 200);
    char k[32], got[64];
    key_of(0, k, sizeof k);
    assert_int_equal(get(&e, k, got, sizeof got), NK_OK); /* the prefix is kept */
    assert_string_equal(got, "acked-0");
    db_close(&e);
    e.o.accept_data_loss = false;
    assert_int_equal(db_open(&e), NK_OK);
    env_free(&e);
}

/* nk_db_write_ops: a large write is logged from the caller's pieces (value =
 * head ‖ val) and copied once into the memtable; it reads back whole, also
 * after a WAL replay, and an oversized one is refused alone. */
static void test_write_ops_gathered(void **state)
{
    (void)state;
    env e;
    env_init(&e, 41);
    e.o.memtable_bytes = 4u << 20;
    db_close(&e);
    assert_int_equal(db_open(&e), NK_OK);
    size_t big = 200 * 1024;
    uint8_t *val = malloc(big);
    assert_non_null(val);
    for (size_t i = 0; i < big; i++) {
        val[i] = (uint8_t)(i * 7u + 3u);
    }
    nk_db_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].key = nk_slice_make("big", 3);
    ops[0].val_head = nk_slice_make("HD", 2);
    ops[0].val = nk_slice_make(val, big);
    ops[1].key = nk_slice_make("small", 5);
    ops[1].val = nk_slice_make("s", 1);
    ops[2].key = nk_slice_make("gone", 4);
    ops[2].del = true;
    assert_int_equal(put_wait(&e, "gone", "x", true), NK_OK);
    wstate w = {false, 0};
    assert_int_equal(nk_db_write_ops(e.db, ops, 3, true, on_written, &w), NK_OK);
    for (int i = 0; i < 1000 && !w.done; i++) {
        run(&e, 1);
    }
    assert_true(w.done);
    assert_int_equal(w.rc, NK_OK);
    /* over the one-write limit: refused alone, nothing applied */
    nk_db_op huge[2];
    memset(huge, 0, sizeof huge);
    huge[0].key = nk_slice_make("h1", 2);
    huge[0].val = nk_slice_make(val, NK_VALUE_MAX); /* never read: refused by size */
    huge[1].key = nk_slice_make("h2", 2);
    huge[1].val = nk_slice_make(val, NK_VALUE_MAX);
    assert_int_equal(nk_db_write_ops(e.db, huge, 2, true, on_written, &w), NK_ETOOBIG);
    for (int round = 0; round < 2; round++) {
        nk_buf v = {0};
        nk_errbuf eb;
        assert_int_equal(nk_db_get(e.db, "big", 3, 0, &v, &eb), NK_OK);
        assert_int_equal(v.len, big + 2);
        assert_memory_equal(v.data, "HD", 2);
        assert_memory_equal(v.data + 2, val, big);
        nk_buf_free(&v);
        char got[8];
        assert_int_equal(get(&e, "small", got, sizeof got), NK_OK);
        assert_int_equal(get(&e, "gone", got, sizeof got), NK_ENOENT);
        assert_int_equal(get(&e, "h1", got, sizeof got), NK_ENOENT);
        /* power loss: the replayed record must be the same */
        nk_sim_node_crash(e.s, 1);
        nk_sim_node_start(e.s, 1);
        assert_int_equal(db_open(&e), NK_OK);
    }
    free(val);
    env_free(&e);
}

/* ----------------------------------------------------------- disk full --- */

static void set_capacity(env *e, uint64_t cap)
{
    nk_simdisk_faults f;
    memset(&f, 0, sizeof f);
    f.capacity = cap;
    nk_simdisk_set_faults(nk_sim_node_disk(e->s, 1), &f);
}

static uint64_t disk_used(env *e)
{
    nk_simdisk_stats st;
    nk_simdisk_get_stats(nk_sim_node_disk(e->s, 1), &st);
    return st.used_bytes;
}

/* Issue 12, case 5: after ENOSPC, writes stayed refused after space was
 * freed, until a restart. Now a full disk refuses writes with NK_ENOSPC
 * (each alone, the db healthy), background work retries with backoff, and
 * once space is freed writes succeed again by themselves. */
static void test_disk_full_recovers_by_itself(void **state)
{
    (void)state;
    env e;
    env_init(&e, 31);
    set_capacity(&e, disk_used(&e) + 96 * 1024);
    char k[32], v[200];
    int acked = 0, rc = NK_OK;
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "full%05d", i);
        snprintf(v, sizeof v, "%0180d", i);
        rc = put_wait(&e, k, v, true);
        if (rc != NK_OK) {
            break;
        }
        acked++;
    }
    assert_int_equal(rc, NK_ENOSPC);
    assert_true(acked > 10);
    /* still full: refused with the same clear cause, never a poisoned db */
    for (int i = 0; i < 5; i++) {
        run(&e, 20);
        assert_int_equal(put_wait(&e, "while-full", "x", true), NK_ENOSPC);
    }
    nk_db_stats st;
    nk_db_get_stats(e.db, &st);
    assert_int_equal(st.background_error, NK_OK);
    /* space freed: within a few retries writes succeed, no reopen */
    set_capacity(&e, 0);
    rc = NK_ENOSPC;
    for (int i = 0; i < 200 && rc != NK_OK; i++) {
        run(&e, 50);
        rc = put_wait(&e, "after-full", "ok", true);
    }
    assert_int_equal(rc, NK_OK);
    db_close(&e);
    assert_int_equal(db_open(&e), NK_OK);
    char got[256];
    for (int i = 0; i < acked; i++) {
        snprintf(k, sizeof k, "full%05d", i);
        snprintf(v, sizeof v, "%0180d", i);
        assert_int_equal(get(&e, k, got, sizeof got), NK_OK);
        assert_string_equal(got, v);
    }
    assert_int_equal(get(&e, "after-full", got, sizeof got), NK_OK);
    env_free(&e);
}

/* A restart on a full disk is refused and leaves nothing behind (before: an
 * empty new WAL segment was left). */
static void test_open_while_full_leaves_no_debris(void **state)
{
    (void)state;
    env e;
    env_init(&e, 32);
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%03d", i);
        assert_int_equal(put_wait(&e, k, "v", true), NK_OK);
    }
    db_close(&e);
    char before[8][64], after[8][64];
    size_t nb = wal_segments(before, 8);
    uint64_t hash = nk_simdisk_hash(nk_sim_node_disk(e.s, 1));
    set_capacity(&e, disk_used(&e)); /* not one more byte */
    char msg[NK_ERRBUF_SIZE];
    assert_int_equal(open_msg(&e, msg, sizeof msg), NK_ENOSPC);
    print_message("open while full: %s\n", msg);
    assert_non_null(strstr(msg, "no space"));
    assert_null(e.db);
    size_t na = wal_segments(after, 8);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(after[i], before[i]);
    }
    assert_int_equal(nk_simdisk_hash(nk_sim_node_disk(e.s, 1)), hash);
    set_capacity(&e, 0);
    assert_int_equal(db_open(&e), NK_OK);
    char got[16];
    assert_int_equal(get(&e, "k049", got, sizeof got), NK_OK);
    env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_put_get_delete_iterate),
        cmocka_unit_test(test_model_across_flush_compaction_reopen),
        cmocka_unit_test(test_crash_keeps_acknowledged_writes),
        cmocka_unit_test(test_deep_levels_model),
        cmocka_unit_test(test_corrupt_table_is_reported),
        cmocka_unit_test(test_removed_wal_segment_is_refused),
        cmocka_unit_test(test_truncated_wal_is_refused),
        cmocka_unit_test(test_write_ops_gathered),
        cmocka_unit_test(test_disk_full_recovers_by_itself),
        cmocka_unit_test(test_open_while_full_leaves_no_debris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
