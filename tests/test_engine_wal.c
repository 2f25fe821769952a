/*
 * test_engine_wal.c - the write-ahead log (nokv/engine/wal.h) on the
 * simulator's crash-faithful disk and once on the real runtime:
 *   - round trip across many segment rotations;
 *   - group commit: N appends, one sync job; requests made while a job runs
 *     share the next job;
 *   - crash sweeps (300 seeds, 3 power losses or process kills each, chaos
 *     crash policy, crashes also at the WAL's failpoints): every lsn reported
 *     durable (or replayed by an earlier recovery) is
 *     replayed with its exact payload, replay never fails on a pure crash;
 *   - planted corruption in a synced record / header in the middle, and in
 *     the last record after a clean close: NK_ECORRUPT naming file + offset;
 *   - release_upto removes exactly the redundant segments; replay_from;
 *   - a failed fsync is fatal until reopened.
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
#include "nokv/engine/logfile.h"
#include "nokv/engine/wal.h"
#include "nokv/rt.h"
#include "nokv/util/rand.h"
#include "sim/sim.h"

#define WALDIR "/db/wal"

/* ------------------------------------------------------------ payloads --- */

/* The payload written for `lsn` by writer generation `gen`: deterministic,
 * so the model only remembers which generation wrote each lsn. */
static size_t payload_of(uint32_t gen, uint64_t lsn, uint8_t *out, size_t cap)
{
    nk_rand r;
    nk_rand_derive(&r, gen, "wal.payload", lsn);
    size_t len = (size_t)nk_rand_below(&r, 8) == 0 ? 0 : (size_t)nk_rand_below(&r, cap);
    nk_rand_bytes(&r, out, len);
    return len;
}

#define PAYLOAD_CAP 2000u

/* ----------------------------------------------------------- trivial app --- */

/* Tests that drive the WAL from the test body use an app that owns nothing. */
static nk_rt *g_rt;
static int idle_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    g_rt = rt;
    *state = rt;
    return NK_OK;
}
static void idle_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}
static const nk_sim_app idle_app = {"idle", idle_start, idle_stop};

static nk_sim *sim_one(uint64_t seed, nk_rt **rt)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    cfg.log_level = NK_LOG_ERROR;
    nk_sim *s = nk_sim_new(&cfg);
    assert_non_null(s);
    assert_int_equal(nk_sim_add_node(s, "n1", &idle_app, NULL, NULL), NK_OK);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    *rt = g_rt;
    /* The DB directory exists (the DB core creates it); the WAL makes its
     * own subdirectory. */
    assert_int_equal(nk_rt_dir_create(*rt, "/db"), NK_OK);
    assert_int_equal(nk_rt_dir_sync(*rt, "/"), NK_OK);
    return s;
}

/* Let every pending job finish. */
static void settle(nk_sim *s)
{
    nk_sim_run_until(s, nk_sim_now(s) + 50 * NK_NSEC_PER_MSEC);
}

/* Replay into a list of (lsn, payload) copies. */
typedef struct replayed {
    uint64_t *lsn;
    uint8_t **data;
    size_t *len;
    size_t n;
    size_t cap;
} replayed;

static int collect(void *arg, uint64_t lsn, const uint8_t *p, size_t len)
{
    replayed *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->lsn = realloc(r->lsn, r->cap * sizeof *r->lsn);
        r->data = realloc(r->data, r->cap * sizeof *r->data);
        r->len = realloc(r->len, r->cap * sizeof *r->len);
    }
    r->lsn[r->n] = lsn;
    r->data[r->n] = malloc(len + 1);
    memcpy(r->data[r->n], p, len);
    r->len[r->n] = len;
    r->n++;
    return NK_OK;
}

static void replayed_free(replayed *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->data[i]);
    }
    free(r->lsn);
    free(r->data);
    free(r->len);
    memset(r, 0, sizeof *r);
}

/* Check that replay holds exactly lsns [from, to] written by generation 1. */
static void check_replay(const replayed *r, uint64_t from, uint64_t to)
{
    assert_int_equal(r->n, to + 1 - from);
    uint8_t want[PAYLOAD_CAP];
    for (size_t i = 0; i < r->n; i++) {
        assert_int_equal(r->lsn[i], from + i);
        size_t len = payload_of(1, r->lsn[i], want, PAYLOAD_CAP);
        assert_int_equal(r->len[i], len);
        assert_memory_equal(r->data[i], want, len);
    }
}

typedef struct synced {
    int calls;
    int status;
    uint64_t durable;
} synced;

static void on_sync(void *arg, int status, uint64_t durable)
{
    synced *s = arg;
    s->calls++;
    s->status = status;
    s->durable = durable;
}

static void append_gen1(nk_wal *w, uint64_t count)
{
    uint8_t buf[PAYLOAD_CAP];
    for (uint64_t i = 0; i < count; i++) {
        uint64_t lsn = nk_wal_last_lsn(w) + 1, got = 0;
        size_t len = payload_of(1, lsn, buf, PAYLOAD_CAP);
        assert_int_equal(nk_wal_append(w, buf, len, &got), NK_OK);
        assert_int_equal(got, lsn);
    }
}

static size_t count_segments(nk_rt *rt)
{
    nk_names names = {0};
    assert_int_equal(nk_rt_dir_list(rt, WALDIR, &names), NK_OK);
    size_t n = 0;
    for (size_t i = 0; i < names.count; i++) {
        n += strstr(names.names[i], ".log") != NULL;
    }
    nk_names_free(&names);
    return n;
}

/* ------------------------------------------------------------ round trip --- */

static void test_round_trip_across_rotations(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(1, &rt);
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = 8192;
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, NULL, NULL, &w, &eb), NK_OK);
    assert_int_equal(nk_wal_last_lsn(w), 0);
    append_gen1(w, 400);
    synced sy = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &sy), NK_OK);
    assert_int_equal(sy.calls, 0); /* never called from inside sync_start */
    settle(s);
    assert_int_equal(sy.calls, 1);
    assert_int_equal(sy.status, NK_OK);
    assert_int_equal(sy.durable, 400);
    nk_wal_stats st;
    nk_wal_get_stats(w, &st);
    assert_true(st.rotations >= 40);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    size_t segs = count_segments(rt);
    assert_true(segs >= 41);

    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb), NK_OK);
    check_replay(&r, 1, 400);
    const nk_wal_recovery *rec = nk_wal_recovery_info(w);
    assert_false(rec->torn);
    assert_int_equal(rec->segments, segs);
    assert_int_equal(rec->records, 400);
    assert_int_equal(nk_wal_durable_lsn(w), 400);
    /* appends continue the lsn sequence in a fresh segment */
    append_gen1(w, 3);
    assert_int_equal(nk_wal_last_lsn(w), 403);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    replayed_free(&r);

    /* replay_from skips the prefix but still reads it */
    o.replay_from = 397;
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb), NK_OK);
    check_replay(&r, 397, 403);
    assert_int_equal(nk_wal_recovery_info(w)->records, 403);
    nk_wal_abandon(w);
    replayed_free(&r);
    nk_sim_free(s);
}

/* ---------------------------------------------------------- group commit --- */

static void test_group_commit(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(2, &rt);
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, NULL, NULL, &w, &eb), NK_OK);
    nk_simdisk_stats d0, d1;
    nk_simdisk_get_stats(nk_sim_node_disk(s, 1), &d0);

    /* N appends, one sync: one job, one fsync. */
    append_gen1(w, 100);
    synced a = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &a), NK_OK);
    assert_true(nk_wal_sync_pending(w));
    settle(s);
    nk_simdisk_get_stats(nk_sim_node_disk(s, 1), &d1);
    nk_wal_stats st;
    nk_wal_get_stats(w, &st);
    assert_int_equal(st.sync_jobs, 1);
    assert_int_equal(st.file_syncs, 1);
    assert_int_equal(d1.syncs - d0.syncs, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.durable, 100);
    assert_int_equal(nk_wal_durable_lsn(w), 100);

    /* While job B runs, 50 more appends and 5 requests: one more job. */
    append_gen1(w, 10);
    synced b = {0}, later[5];
    memset(later, 0, sizeof later);
    assert_int_equal(nk_wal_sync_start(w, on_sync, &b), NK_OK);
    append_gen1(w, 50);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(nk_wal_sync_start(w, on_sync, &later[i]), NK_OK);
    }
    nk_wal_get_stats(w, &st);
    assert_int_equal(st.sync_jobs, 2);
    settle(s);
    nk_wal_get_stats(w, &st);
    assert_int_equal(st.sync_jobs, 3);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, NK_OK);
    assert_true(b.durable >= 110);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(later[i].calls, 1);
        assert_int_equal(later[i].durable, 160);
    }
    /* Nothing new: the request still completes asynchronously. */
    synced idle = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &idle), NK_OK);
    assert_int_equal(idle.calls, 0);
    settle(s);
    assert_int_equal(idle.calls, 1);
    assert_int_equal(idle.durable, 160);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    nk_sim_free(s);
}

/* Records in two pieces, small (framed in a buffer) and large (streamed
 * from the caller's memory, checksum computed over the pieces), read back
 * whole after a reopen; an oversized record is refused without failing the
 * log (issue 12: one oversized SET used to disable every later write). */
static void test_two_piece_and_oversized_records(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(12, &rt);
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, NULL, NULL, &w, &eb), NK_OK);
    size_t big = 300 * 1024;
    uint8_t *body = malloc(big);
    assert_non_null(body);
    for (size_t i = 0; i < big; i++) {
        body[i] = (uint8_t)(i * 131u + 7u);
    }
    uint64_t lsn = 0;
    assert_int_equal(nk_wal_append2(w, "head", 4, body, 100, &lsn), NK_OK);
    assert_int_equal(lsn, 1);
    assert_int_equal(nk_wal_append2(w, "HEAD!", 5, body, big, &lsn), NK_OK);
    assert_int_equal(lsn, 2);
    /* Over the record limit: refused, nothing written, the log stays usable. */
    assert_int_equal(nk_wal_append2(w, body, NK_WAL_MAX_PAYLOAD, body, 1, &lsn), NK_ETOOBIG);
    assert_int_equal(nk_wal_status(w), NK_OK);
    assert_int_equal(nk_wal_append2(w, NULL, 0, body, 3, &lsn), NK_OK);
    assert_int_equal(lsn, 3);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);

    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, collect, &r, &w, &eb), NK_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.len[0], 104);
    assert_memory_equal(r.data[0], "head", 4);
    assert_memory_equal(r.data[0] + 4, body, 100);
    assert_int_equal(r.len[1], 5 + big);
    assert_memory_equal(r.data[1], "HEAD!", 5);
    assert_memory_equal(r.data[1] + 5, body, big);
    assert_int_equal(r.len[2], 3);
    assert_memory_equal(r.data[2], body, 3);
    replayed_free(&r);
    free(body);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    nk_sim_free(s);
}

/* A failed fsync is fatal: the callback learns it, appends are refused, and
 * a reopen recovers from what the disk kept. */
static void test_failed_sync_is_fatal(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(3, &rt);
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, NULL, NULL, &w, &eb), NK_OK);
    append_gen1(w, 10);
    synced a = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &a), NK_OK);
    settle(s);
    assert_int_equal(a.durable, 10);
    nk_sim_disk_faults(s, 1, (nk_ratio){0, 0}, (nk_ratio){1, 1});
    append_gen1(w, 5);
    synced b = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &b), NK_OK);
    settle(s);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, NK_EIO);
    assert_int_equal(b.durable, 10);
    assert_int_equal(nk_wal_status(w), NK_EIO);
    assert_int_equal(nk_wal_append(w, "x", 1, NULL), NK_EIO);
    assert_int_equal(nk_wal_sync_start(w, on_sync, &b), NK_EIO);
    assert_int_equal(nk_wal_close(w, &eb), NK_EIO);
    nk_sim_disk_faults(s, 1, (nk_ratio){0, 0}, (nk_ratio){0, 0});
    nk_sim_node_crash(s, 1);
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    rt = g_rt;
    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, collect, &r, &w, &eb), NK_OK);
    assert_true(r.n >= 10);
    check_replay(&r, 1, r.n);
    nk_wal_abandon(w);
    replayed_free(&r);
    nk_sim_free(s);
}

/* A failpoint error before the write leaves the WAL usable. */
static void test_append_failpoint_error(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(4, &rt);
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, NULL, NULL, &w, &eb), NK_OK);
    append_gen1(w, 2);
    nk_sim_failpoint_arm(s, 1, "wal.append.before", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    assert_int_equal(nk_wal_append(w, "x", 1, NULL), NK_EFAILPOINT);
    assert_int_equal(nk_wal_status(w), NK_OK);
    append_gen1(w, 2);
    assert_int_equal(nk_wal_last_lsn(w), 4);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, WALDIR, NULL, collect, &r, &w, &eb), NK_OK);
    check_replay(&r, 1, 4);
    nk_wal_abandon(w);
    replayed_free(&r);
    nk_sim_free(s);
}

/* ------------------------------------------------------------- release --- */

static void test_release_upto(void **state)
{
    (void)state;
    nk_rt *rt;
    nk_sim *s = sim_one(5, &rt);
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = 4096;
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, NULL, NULL, &w, &eb), NK_OK);
    /* 1000-byte payloads: 3 records per segment, so segment k (1-based)
     * holds lsns 3k-2 .. 3k; 20 records fill segments 1..7. */
    uint8_t buf[1000];
    memset(buf, 7, sizeof buf);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(nk_wal_append(w, buf, sizeof buf, NULL), NK_OK);
    }
    nk_wal_stats st;
    nk_wal_get_stats(w, &st);
    assert_int_equal(st.live_segments, 7);
    assert_int_equal(st.current_segment, 7);
    uint64_t removed = 99;
    assert_int_equal(nk_wal_release_upto(w, 2, &removed, &eb), NK_OK);
    assert_int_equal(removed, 0); /* segment 1 still holds lsn 3 */
    assert_int_equal(nk_wal_release_upto(w, 7, &removed, &eb), NK_OK);
    assert_int_equal(removed, 2); /* segments 1 (1..3) and 2 (4..6) */
    assert_int_equal(count_segments(rt), 5);
    nk_stat sst;
    assert_int_equal(nk_rt_stat(rt, WALDIR "/000001.log", &sst), NK_ENOENT);
    assert_int_equal(nk_rt_stat(rt, WALDIR "/000003.log", &sst), NK_OK);
    assert_int_equal(nk_wal_release_upto(w, 1000, &removed, &eb), NK_OK);
    assert_int_equal(removed, 4); /* all but the current segment */
    assert_int_equal(count_segments(rt), 1);
    assert_int_equal(nk_rt_stat(rt, WALDIR "/000007.log", &sst), NK_OK);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);

    /* The log now starts at lsn 19; a caller needing lsn 19 is served. */
    o.replay_from = 19;
    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb), NK_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.lsn[0], 19);
    nk_wal_abandon(w);
    replayed_free(&r);
    /* A caller whose tables hold everything up to 21 (flushed, then the log
     * lost its unsynced tail): numbering continues at 22. */
    o.replay_from = 22;
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb), NK_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(nk_wal_last_lsn(w), 21);
    assert_int_equal(count_segments(rt), 1);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    /* A caller still needing lsn 5: those records are gone. */
    o.replay_from = 5;
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "missing"));
    replayed_free(&r);
    nk_sim_free(s);
}

/* ------------------------------------------------------------ corruption --- */

static void flip_byte(nk_rt *rt, const char *path, uint64_t off)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, path, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t b;
    size_t got = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, off, &b, 1, &got), NK_OK);
    assert_int_equal(got, 1);
    b ^= 0x20;
    assert_int_equal(nk_rt_file_write_at(rt, f, off, &b, 1), NK_OK);
    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);
    nk_rt_file_close(rt, f);
}

/* 8 segments of 3 records of 1300-byte payloads (1336 bytes framed: record
 * j of a segment starts at 48 + 1336 j); then damage one byte. */
#define PAY 1300u
#define REC 1336u
static void corrupt_case(uint64_t seed, bool close_cleanly, const char *path, uint64_t off,
                         int want_rc, const char *want_off)
{
    nk_rt *rt;
    nk_sim *s = sim_one(seed, &rt);
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = 4096;
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, WALDIR, &o, NULL, NULL, &w, &eb), NK_OK);
    uint8_t buf[PAY];
    for (int i = 0; i < 24; i++) {
        memset(buf, i, sizeof buf);
        assert_int_equal(nk_wal_append(w, buf, sizeof buf, NULL), NK_OK);
    }
    synced sy = {0};
    assert_int_equal(nk_wal_sync_start(w, on_sync, &sy), NK_OK);
    settle(s);
    assert_int_equal(sy.durable, 24);
    if (close_cleanly) {
        assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    } else {
        nk_wal_abandon(w);
    }
    flip_byte(rt, path, off);
    replayed r = {0};
    memset(&eb, 0, sizeof eb);
    int rc = nk_wal_open(rt, WALDIR, &o, collect, &r, &w, &eb);
    assert_int_equal(rc, want_rc);
    if (rc == NK_ECORRUPT) {
        assert_non_null(strstr(eb.msg, path));
        assert_non_null(strstr(eb.msg, want_off));
        /* only intact records before the damage were handed out */
        for (size_t i = 0; i < r.n; i++) {
            assert_int_equal(r.lsn[i], i + 1);
            assert_int_equal(r.data[i][0], (uint8_t)i);
        }
    } else {
        nk_wal_abandon(w);
    }
    replayed_free(&r);
    nk_sim_free(s);
}

static void test_corrupt_middle_record(void **state)
{
    (void)state;
    /* segment 3 holds lsns 7..9; lsn 8's record starts at 48 + 1336 */
    corrupt_case(10, true, WALDIR "/000003.log", 48 + REC + 600, NK_ECORRUPT, "offset 1384");
    /* header bytes of a record (its length field) */
    corrupt_case(11, true, WALDIR "/000003.log", 48 + REC + 9, NK_ECORRUPT, "offset 1384");
    /* without a clean close, the MARK written after the sync exposes it */
    corrupt_case(12, false, WALDIR "/000003.log", 48 + REC + 600, NK_ECORRUPT, "offset 1384");
}

static void test_corrupt_segment_header(void **state)
{
    (void)state;
    corrupt_case(13, true, WALDIR "/000004.log", 20, NK_ECORRUPT, "offset 0");
}

static void test_corrupt_last_record_after_clean_close(void **state)
{
    (void)state;
    /* lsn 24 is the last record (segment 8, third record); only the close
     * MARK claims it, and that is enough. */
    corrupt_case(14, true, WALDIR "/000008.log", 48 + 2 * REC + 70, NK_ECORRUPT, "offset 2720");
}

/* ---------------------------------------------------------- crash sweep --- */

/* The model lives outside the node: it survives power loss. */
typedef struct model {
    uint32_t *gen; /* gen[lsn]: generation that wrote lsn */
    size_t cap;
    uint64_t acked;    /* highest lsn reported durable */
    uint64_t released; /* the "tables" hold every lsn <= released */
    uint32_t cur_gen;
    uint64_t opens;
    uint64_t torn;
    uint64_t discarded;
    uint64_t replay_checked;
    uint64_t max_last;
} model;

static model g_m;

static void model_set(uint64_t lsn, uint32_t gen)
{
    if (lsn >= g_m.cap) {
        size_t ncap = g_m.cap ? g_m.cap * 2 : 1024;
        while (ncap <= lsn) {
            ncap *= 2;
        }
        g_m.gen = realloc(g_m.gen, ncap * sizeof *g_m.gen);
        memset(g_m.gen + g_m.cap, 0, (ncap - g_m.cap) * sizeof *g_m.gen);
        g_m.cap = ncap;
    }
    g_m.gen[lsn] = gen;
}

typedef struct node {
    nk_rt *rt;
    nk_wal *w;
    nk_rand r;
    uint64_t expect; /* next lsn replay must deliver */
} node;

static int check_one(void *arg, uint64_t lsn, const uint8_t *p, size_t len)
{
    node *n = arg;
    assert_int_equal(lsn, n->expect);
    n->expect++;
    assert_true(lsn < g_m.cap && g_m.gen[lsn] != 0);
    uint8_t want[PAYLOAD_CAP];
    size_t wl = payload_of(g_m.gen[lsn], lsn, want, PAYLOAD_CAP);
    assert_int_equal(len, wl);
    assert_memory_equal(p, want, wl);
    g_m.replay_checked++;
    return NK_OK;
}

static void wl_sync_done(void *arg, int status, uint64_t durable)
{
    (void)arg;
    if (status == NK_OK && durable > g_m.acked) {
        g_m.acked = durable;
    }
}

static void wl_tick(void *arg)
{
    node *n = arg;
    int k = (int)nk_rand_between(&n->r, 1, 4);
    uint8_t buf[PAYLOAD_CAP];
    for (int i = 0; i < k; i++) {
        uint64_t lsn = nk_wal_last_lsn(n->w) + 1;
        size_t len = payload_of(g_m.cur_gen, lsn, buf, PAYLOAD_CAP);
        model_set(lsn, g_m.cur_gen); /* written (maybe) before it is durable */
        int rc = nk_wal_append(n->w, buf, len, NULL);
        if (rc == NK_ECRASHED) {
            return;
        }
        assert_int_equal(rc, NK_OK);
    }
    if (nk_rand_chance(&n->r, 1, 2)) {
        int rc = nk_wal_sync_start(n->w, wl_sync_done, NULL);
        if (rc == NK_ECRASHED) {
            return;
        }
        assert_int_equal(rc, NK_OK);
    }
    if (nk_rand_chance(&n->r, 1, 25)) {
        /* A flush made everything up to some point redundant (possibly
         * records not yet synced, as a DB flushing its memtable may). */
        uint64_t last = nk_wal_last_lsn(n->w);
        uint64_t upto = nk_rand_between(&n->r, g_m.released, last);
        g_m.released = upto;
        assert_int_equal(nk_wal_release_upto(n->w, upto, NULL, NULL), NK_OK);
    }
    nk_rt_timer_start(n->rt, nk_rand_between(&n->r, 50, 800) * NK_NSEC_PER_USEC, wl_tick, n);
}

static int wl_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    node *n = calloc(1, sizeof *n);
    n->rt = rt;
    nk_rt_rand_stream(rt, "wal.test", &n->r);
    nk_rand_next(&n->r);
    int rc = nk_rt_dir_create(rt, "/db");
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(rt, "/");
    }
    if (rc == NK_ECRASHED) {
        free(n);
        return rc;
    }
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = 8192;
    o.replay_from = g_m.released + 1;
    n->expect = o.replay_from;
    nk_errbuf eb = {{0}};
    rc = nk_wal_open(rt, WALDIR, &o, check_one, n, &n->w, &eb);
    if (rc == NK_ECRASHED) {
        free(n); /* crashed at a failpoint while opening */
        return rc;
    }
    if (rc != NK_OK) {
        fail_msg("replay failed after a pure crash: %s: %s", nk_errname(rc), eb.msg);
    }
    uint64_t last = nk_wal_last_lsn(n->w);
    /* Nothing acknowledged is lost. */
    assert_true(last >= g_m.acked);
    assert_true(last >= g_m.released);
    assert_int_equal(nk_wal_durable_lsn(n->w), last);
    assert_true(n->expect == last + 1 || (n->expect == o.replay_from && last < o.replay_from));
    const nk_wal_recovery *rec = nk_wal_recovery_info(n->w);
    g_m.torn += rec->torn;
    g_m.discarded += rec->discarded_bytes;
    g_m.opens++;
    if (last > g_m.max_last) {
        g_m.max_last = last;
    }
    /* Everything replayed is durable now; later lsns get new payloads. */
    g_m.acked = last;
    g_m.cur_gen++;
    nk_rt_timer_start(rt, 100 * NK_NSEC_PER_USEC, wl_tick, n);
    *state = n;
    return NK_OK;
}

static void wl_stop(void *state, bool crashed)
{
    node *n = state;
    if (crashed) {
        nk_wal_abandon(n->w);
    } else {
        assert_int_equal(nk_wal_close(n->w, NULL), NK_OK);
    }
    free(n);
}

static const nk_sim_app wl_app = {"walwl", wl_start, wl_stop};

static void sweep_seed(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    cfg.log_level = NK_LOG_ERROR;
    nk_sim *s = nk_sim_new(&cfg);
    assert_int_equal(nk_sim_add_node(s, "n1", &wl_app, NULL, NULL), NK_OK);
    free(g_m.gen);
    memset(&g_m, 0, sizeof g_m);
    g_m.cur_gen = (uint32_t)(seed << 4); /* distinct payloads per seed */
    nk_rand r;
    nk_sim_rand_stream(s, "test.crash", &r);
    /* Some seeds also crash at the WAL's own steps. */
    static const char *const fps[] = {"wal.sync.before", "wal.rotate.after_create",
                                      "wal.append.before"};
    if (seed % 3 == 0) {
        nk_sim_failpoint_arm(s, 1, fps[(seed / 3) % 3], NK_SIM_FP_CRASH, 1, (nk_ratio){1, 20});
    }
    for (int round = 0; round < 3; round++) {
        for (int tries = 0; !nk_sim_node_up(s, 1) && tries < 5; tries++) {
            int rc = nk_sim_node_start(s, 1);
            assert_true(rc == NK_OK || rc == NK_ECRASHED);
        }
        assert_true(nk_sim_node_up(s, 1));
        uint64_t until = nk_sim_now(s) + nk_rand_between(&r, 1, 60) * NK_NSEC_PER_MSEC;
        nk_sim_run_until(s, until);
        /* Mostly power loss; sometimes a process kill, where the page cache
         * (unsynced records) survives and recovery must make it durable. */
        if (nk_rand_chance(&r, 1, 4)) {
            nk_sim_node_kill(s, 1);
        } else {
            nk_sim_node_crash(s, 1); /* no-op if a failpoint already crashed it */
        }
    }
    for (int tries = 0; !nk_sim_node_up(s, 1) && tries < 5; tries++) {
        nk_sim_node_start(s, 1);
    }
    assert_true(nk_sim_node_up(s, 1));
    nk_sim_free(s);
}

static void test_crash_sweep(void **state)
{
    (void)state;
    uint64_t torn = 0, opens = 0, checked = 0, discarded = 0, max_last = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        sweep_seed(seed);
        torn += g_m.torn;
        opens += g_m.opens;
        checked += g_m.replay_checked;
        discarded += g_m.discarded;
        max_last = g_m.max_last > max_last ? g_m.max_last : max_last;
    }
    free(g_m.gen);
    memset(&g_m, 0, sizeof g_m);
    print_message("crash sweep: 300 seeds, %llu opens, %llu torn tails cut (%llu bytes), "
                  "%llu replayed records checked, up to lsn %llu\n",
                  (unsigned long long)opens, (unsigned long long)torn,
                  (unsigned long long)discarded, (unsigned long long)checked,
                  (unsigned long long)max_last);
    /* The sweep must actually exercise torn tails. */
    assert_true(torn > 50);
    assert_true(checked > 10000);
}

/* ---------------------------------------------------------- real runtime --- */

static synced g_real;
static void real_sync_done(void *arg, int status, uint64_t durable)
{
    nk_rt *rt = arg;
    g_real.calls++;
    g_real.status = status;
    g_real.durable = durable;
    nk_rt_stop(rt);
}

static void rm_tree(nk_rt *rt, const char *dir)
{
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) == NK_OK) {
        for (size_t i = 0; i < names.count; i++) {
            char *p = nk_path_join(dir, names.names[i]);
            nk_stat st;
            if (nk_rt_stat(rt, p, &st) == NK_OK && st.is_dir) {
                rm_tree(rt, p);
            } else {
                nk_rt_remove(rt, p);
            }
            free(p);
        }
        nk_names_free(&names);
    }
    nk_rt_remove(rt, dir);
}

static void test_real_runtime(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/nokv-test-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char wal[96];
    snprintf(wal, sizeof wal, "%s/wal", dir);
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = 16384;
    nk_wal *w = NULL;
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_wal_open(rt, wal, &o, NULL, NULL, &w, &eb), NK_OK);
    append_gen1(w, 300);
    memset(&g_real, 0, sizeof g_real);
    assert_int_equal(nk_wal_sync_start(w, real_sync_done, rt), NK_OK);
    assert_int_equal(nk_rt_real_run(rt), NK_OK);
    assert_int_equal(g_real.calls, 1);
    assert_int_equal(g_real.status, NK_OK);
    assert_int_equal(g_real.durable, 300);
    uint64_t removed = 0;
    assert_int_equal(nk_wal_release_upto(w, 100, &removed, &eb), NK_OK);
    assert_true(removed > 0);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);

    o.replay_from = 101;
    replayed r = {0};
    assert_int_equal(nk_wal_open(rt, wal, &o, collect, &r, &w, &eb), NK_OK);
    assert_true(r.n == 200);
    check_replay(&r, 101, 300);
    assert_int_equal(nk_wal_close(w, &eb), NK_OK);
    replayed_free(&r);
    rm_tree(rt, dir);
    nk_rt_real_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_across_rotations),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_two_piece_and_oversized_records),
        cmocka_unit_test(test_failed_sync_is_fatal),
        cmocka_unit_test(test_append_failpoint_error),
        cmocka_unit_test(test_release_upto),
        cmocka_unit_test(test_corrupt_middle_record),
        cmocka_unit_test(test_corrupt_segment_header),
        cmocka_unit_test(test_corrupt_last_record_after_clean_close),
        cmocka_unit_test(test_crash_sweep),
        cmocka_unit_test(test_real_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
