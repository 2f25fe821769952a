/*
 * test_migrate_init_reads.c - what `migrate init` reads, counted through a
 * runtime that wraps the simulator's and counts every read of a table file:
 *
 *   - on a workdir whose manifest records each table's XXH64 (every table
 *     this build writes), init reads no byte of any table, yet
 *     SNAPSHOT.json lists for each file the XXH64 of its bytes; with WAL
 *     records to replay it opens the engine and flushes them, after a
 *     graceful stop (all flushed) it does not open the engine at all;
 *   - on an older workdir (no recorded hashes: the hashes are stripped from
 *     the manifest the way an older build would have written it) init still
 *     works, hashing the tables itself, and the engine and `nokv check`
 *     accept that workdir too.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/migrate_sim.h"
#include "nokv/engine/check.h"
#include "nokv/engine/db.h"
#include "nokv/engine/inspect.h"
#include "nokv/engine/manifest.h"
#include "nokv/migrate/init.h"
#include "nokv/migrate/seedsnap.h"

#define NKEYS 400

/* ------------------------------------------------- the counting runtime --- */

#define MAX_OPEN 512

static struct {
    nk_rt rt;           /* the simulator's, with ops replaced */
    nk_rt_ops ops;
    const nk_rt_ops *base;
    nk_file *sst[MAX_OPEN]; /* open handles of *.sst files */
    uint64_t sst_reads;
    uint64_t sst_bytes;
} C;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int c_open(void *impl, const char *path, unsigned flags, nk_file **out)
{
    int rc = C.base->file_open(impl, path, flags, out);
    if (rc == NK_OK && ends_with(path, ".sst")) {
        for (size_t i = 0; i < MAX_OPEN; i++) {
            if (C.sst[i] == NULL) {
                C.sst[i] = *out;
                break;
            }
        }
    }
    return rc;
}

static bool is_sst(nk_file *f)
{
    for (size_t i = 0; i < MAX_OPEN; i++) {
        if (C.sst[i] == f) {
            return true;
        }
    }
    return false;
}

static int c_read(void *impl, nk_file *f, uint64_t off, void *buf, size_t len, size_t *nread)
{
    int rc = C.base->file_read_at(impl, f, off, buf, len, nread);
    if (is_sst(f)) {
        C.sst_reads++;
        C.sst_bytes += rc == NK_OK ? *nread : 0;
    }
    return rc;
}

static int c_close(void *impl, nk_file *f)
{
    for (size_t i = 0; i < MAX_OPEN; i++) {
        if (C.sst[i] == f) {
            C.sst[i] = NULL;
        }
    }
    return C.base->file_close(impl, f);
}

static nk_rt *counting_rt(void)
{
    memset(&C, 0, sizeof(C));
    C.rt = *msim_rt();
    C.base = C.rt.ops;
    C.ops = *C.base;
    C.ops.file_open = c_open;
    C.ops.file_read_at = c_read;
    C.ops.file_close = c_close;
    C.rt.ops = &C.ops;
    return &C.rt;
}

/* ------------------------------------------------------------- helpers --- */

typedef struct init_wait {
    bool done;
    int rc;
    nk_init_result r;
    char msg[512];
} init_wait;

static void on_init(void *arg, int rc, const nk_init_result *r, const char *msg)
{
    init_wait *w = arg;
    w->done = true;
    w->rc = rc;
    w->r = *r;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
}

static int run_init(nk_sim *s, nk_rt *rt, const char *dir, init_wait *w)
{
    memset(w, 0, sizeof(*w));
    nk_init_args a = {dir, 1, 7, 101};
    nk_migrate_init(rt, &a, on_init, w);
    for (int i = 0; i < 200000 && !w->done; i++) {
        msim_run(s, 1);
    }
    assert_true(w->done);
    return w->rc;
}

/* The manifest as an older build wrote it: one edit re-adds every table
 * without its hash (deletes apply before adds within an edit), then a
 * rewrite leaves only a snapshot without any. */
static void strip_hashes(const char *dir)
{
    nk_rt *rt = msim_rt();
    nk_manifest_options mo;
    nk_manifest_options_default(&mo);
    mo.create_if_missing = false;
    nk_manifest *m = NULL;
    nk_errbuf eb;
    assert_int_equal(nk_manifest_open(rt, dir, &mo, &m, &eb), NK_OK);
    const nk_version_state *vs = nk_manifest_state(m);
    nk_version_edit e;
    nk_vedit_init(&e);
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < vs->levels[l].count; i++) {
            const nk_file_meta *f = &vs->levels[l].files[i];
            assert_int_equal(nk_vedit_delete_file(&e, l, f->number), NK_OK);
            assert_int_equal(nk_vedit_add_file(&e, l, f->number, f->size, f->smallest.data,
                                               f->smallest.len, f->largest.data, f->largest.len,
                                               f->smallest_seq, f->largest_seq),
                             NK_OK);
        }
    }
    assert_int_equal(nk_manifest_log_edit(m, &e, &eb), NK_OK);
    nk_vedit_free(&e);
    assert_int_equal(nk_manifest_rewrite(m, &eb), NK_OK);
    nk_manifest_close(m);
    nk_version_state st;
    uint64_t number = 0;
    bool torn = false;
    assert_int_equal(nk_manifest_read(rt, dir, &st, &number, &torn, &eb), NK_OK);
    assert_true(nk_vstate_file_count(&st) > 0);
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < st.levels[l].count; i++) {
            assert_false(st.levels[l].files[i].has_xxh64);
        }
    }
    nk_vstate_free(&st);
}

static void ignore(void *arg, nk_check_level level, const char *line)
{
    (void)arg, (void)level, (void)line;
}

/* SNAPSHOT.json's hash of each file is the hash of that file's bytes. */
static void expect_snapshot_hashes(const char *dir)
{
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    nk_seedsnap s;
    assert_int_equal(nk_seedsnap_load(rt, dir, &s, &eb), NK_OK);
    assert_true(s.n_files > 1);
    assert_int_equal(nk_seedsnap_check_files(rt, dir, &s, true, &eb), NK_OK);
    nk_seedsnap_free(&s);
    assert_int_equal(nk_migrate_validate_seed(rt, dir, 1, 7, 101, &eb), NK_OK);
}

/* --------------------------------------------------------------- tests --- */

/* Bytes of the live manifest: an engine open appends to it (WAL claims at
 * open and close), a read-only look does not. */
static uint64_t manifest_bytes(const char *dir)
{
    uint64_t number = 0;
    nk_errbuf eb;
    assert_int_equal(nk_manifest_read_current(msim_rt(), dir, &number, &eb), NK_OK);
    char p[256];
    snprintf(p, sizeof(p), "%s/MANIFEST-%06" PRIu64, dir, number);
    nk_stat st;
    assert_int_equal(nk_rt_stat(msim_rt(), p, &st), NK_OK);
    return st.size;
}

static void test_init_reads_no_table_bytes(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(41);
    /* part in tables, the rest only in the WAL: init opens the engine and
     * flushes it (the manifest grows) */
    msim_fill(s, "/w", NKEYS, NKEYS / 2);
    uint64_t mbytes = manifest_bytes("/w");
    nk_rt *rt = counting_rt();
    init_wait w;
    assert_int_equal(run_init(s, rt, "/w", &w), NK_OK);
    assert_true(w.r.snapshot_files > 1);
    assert_int_equal(C.sst_reads, 0);
    assert_int_equal(C.sst_bytes, 0);
    assert_true(manifest_bytes("/w") > mbytes);
    expect_snapshot_hashes("/w");
    msim_check_keys(s, "/w", NKEYS);

    /* everything flushed (a graceful stop): nothing to replay, so init lists
     * the tables from the manifest and never opens the engine */
    msim_fill(s, "/g", NKEYS, NKEYS);
    mbytes = manifest_bytes("/g");
    rt = counting_rt();
    assert_int_equal(run_init(s, rt, "/g", &w), NK_OK);
    assert_true(w.r.snapshot_files > 1);
    assert_int_equal(C.sst_reads, 0);
    assert_int_equal(manifest_bytes("/g"), mbytes);
    assert_int_equal(w.r.last_sequence, NKEYS);
    expect_snapshot_hashes("/g");
    msim_check_keys(s, "/g", NKEYS);
    nk_sim_free(s);
}

static void test_init_on_an_older_workdir_hashes_itself(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(42);
    msim_fill(s, "/w", NKEYS, NKEYS);
    strip_hashes("/w");
    /* the engine and check accept a manifest without hashes */
    nk_check_summary sum;
    assert_int_equal(nk_db_check(msim_rt(), "/w", ignore, NULL, &sum), NK_OK);
    assert_int_equal(sum.verdict, NK_CHECK_OK);
    assert_int_equal(sum.tables_hashed, 0);
    nk_rt *rt = counting_rt();
    init_wait w;
    assert_int_equal(run_init(s, rt, "/w", &w), NK_OK);
    assert_true(C.sst_bytes >= w.r.snapshot_bytes); /* each file read once, at least */
    expect_snapshot_hashes("/w");
    msim_check_keys(s, "/w", NKEYS);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_reads_no_table_bytes),
        cmocka_unit_test(test_init_on_an_older_workdir_hashes_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
