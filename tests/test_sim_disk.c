/*
 * test_sim_disk.c - the simulated disk (sim/disk.h): rt.h file semantics,
 * the durability model (what survives a crash and what may not), faults,
 * and determinism of the durable image.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "nokv/rt.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"
#include "sim/disk.h"

/* ------------------------------------------------------------- helpers --- */

static nk_simdisk *new_disk(uint32_t sector, uint64_t seed)
{
    nk_rand r;
    nk_rand_derive(&r, seed, "disk", 1);
    nk_simdisk *d = nk_simdisk_new(sector, &r);
    assert_non_null(d);
    return d;
}

static void crash(nk_simdisk *d, uint64_t seed, const nk_simdisk_crash_policy *p,
                  nk_simdisk_crash_stats *cs)
{
    nk_rand r;
    nk_rand_derive(&r, seed, "crash", 1);
    nk_simdisk_crash(d, &r, p, cs);
}

/* Create (or replace) `path` with `len` bytes; optionally fsync it. */
static void put_file(nk_simdisk *d, const char *path, const void *data, size_t len, bool sync)
{
    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, data, len), NK_OK);
    if (sync) {
        assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
    }
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
}

/* Read the whole file into a malloc'd buffer; returns NK_* and sets *len. */
static int get_file(nk_simdisk *d, const char *path, uint8_t **out, size_t *len)
{
    /* Outputs defined on every path: the callers' asserts do not tell an
     * optimising compiler that a failure stops the test (gcc 12 -O2). */
    *out = NULL;
    *len = 0;
    nk_simfile *f;
    int rc = nk_simdisk_open(d, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t size;
    assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_OK);
    uint8_t *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    size_t n = 0;
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, (size_t)size + 1, &n), NK_OK);
    assert_int_equal(n, size);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    *out = buf;
    *len = n;
    return NK_OK;
}

static void assert_file(nk_simdisk *d, const char *path, const char *want)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(get_file(d, path, &buf, &len), NK_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    free(buf);
}

static bool exists(nk_simdisk *d, const char *path)
{
    nk_stat st;
    int rc = nk_simdisk_stat(d, path, &st);
    assert_true(rc == NK_OK || rc == NK_ENOENT);
    return rc == NK_OK;
}

/* A textual dump of the volatile view (paths sorted, with content hashes). */
static void dump_dir(nk_simdisk *d, const char *dir, char **out, size_t *len, size_t *cap)
{
    nk_names names;
    assert_int_equal(nk_simdisk_dir_list(d, dir, &names), NK_OK);
    for (size_t i = 0; i < names.count; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, names.names[i]);
        nk_stat st;
        assert_int_equal(nk_simdisk_stat(d, path, &st), NK_OK);
        char line[640];
        if (st.is_dir) {
            snprintf(line, sizeof(line), "d %s\n", path);
        } else {
            uint8_t *buf;
            size_t n;
            assert_int_equal(get_file(d, path, &buf, &n), NK_OK);
            snprintf(line, sizeof(line), "f %s %zu %016llx\n", path, n,
                     (unsigned long long)XXH3_64bits(buf, n));
            free(buf);
        }
        size_t l = strlen(line);
        if (*len + l + 1 > *cap) {
            *cap = (*len + l + 1) * 2;
            *out = realloc(*out, *cap);
            assert_non_null(*out);
        }
        memcpy(*out + *len, line, l + 1);
        *len += l;
        if (st.is_dir) {
            dump_dir(d, path, out, len, cap);
        }
    }
    nk_names_free(&names);
}

static char *dump(nk_simdisk *d)
{
    size_t len = 0, cap = 64;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    dump_dir(d, "/", &out, &len, &cap);
    return out;
}

/* ------------------------------------------------------ plain semantics --- */

static void test_paths_and_errors(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 1);
    nk_stat st;
    nk_simfile *f;

    assert_int_equal(nk_simdisk_stat(d, "/", &st), NK_OK);
    assert_true(st.is_dir);
    assert_int_equal(nk_simdisk_dir_create(d, "/"), NK_EEXIST);
    assert_int_equal(nk_simdisk_dir_create(d, "a"), NK_OK); /* relative to "/" */
    assert_int_equal(nk_simdisk_dir_create(d, "/a/"), NK_EEXIST);
    assert_int_equal(nk_simdisk_dir_create(d, "//a//b//"), NK_OK);
    assert_int_equal(nk_simdisk_stat(d, "a/b", &st), NK_OK);
    assert_true(st.is_dir);

    assert_int_equal(nk_simdisk_open(d, "/a/b//f", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "xy", 2), NK_OK);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    assert_int_equal(nk_simdisk_stat(d, "a/b/f", &st), NK_OK);
    assert_false(st.is_dir);
    assert_int_equal(st.size, 2);

    /* bad paths */
    assert_int_equal(nk_simdisk_stat(d, "", &st), NK_EINVAL);
    assert_int_equal(nk_simdisk_stat(d, "/a/./b", &st), NK_EINVAL);
    assert_int_equal(nk_simdisk_stat(d, "/a/../a", &st), NK_EINVAL);
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(nk_simdisk_dir_create(d, longname), NK_EINVAL);

    /* missing / non-directory parents */
    assert_int_equal(nk_simdisk_stat(d, "/nope", &st), NK_ENOENT);
    assert_int_equal(nk_simdisk_open(d, "/nope/f", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_ENOENT);
    assert_int_equal(nk_simdisk_dir_create(d, "/nope/x"), NK_ENOENT);
    assert_int_equal(nk_simdisk_open(d, "/a/b/f/g", NK_OPEN_WRITE | NK_OPEN_CREATE, &f),
                     NK_ENOTDIR);
    assert_int_equal(nk_simdisk_stat(d, "/a/b/f/g", &st), NK_ENOTDIR);

    /* open flags */
    assert_int_equal(nk_simdisk_open(d, "/a/b/f", NK_OPEN_TRUNC, &f), NK_EINVAL);
    assert_int_equal(nk_simdisk_open(d, "/a/b/g", NK_OPEN_READ, &f), NK_ENOENT);
    assert_int_equal(
        nk_simdisk_open(d, "/a/b/f", NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f), NK_EEXIST);
    assert_int_equal(nk_simdisk_open(d, "/a", NK_OPEN_READ, &f), NK_EISDIR);
    assert_int_equal(nk_simdisk_open(d, "/", NK_OPEN_READ, &f), NK_EISDIR);
    assert_int_equal(nk_simdisk_dir_create(d, "/a/b/f"), NK_EEXIST);

    /* read-only handles cannot write */
    assert_int_equal(nk_simdisk_open(d, "/a/b/f", NK_OPEN_READ, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "z", 1), NK_EINVAL);
    assert_int_equal(nk_simdisk_append(d, f, "z", 1), NK_EINVAL);
    assert_int_equal(nk_simdisk_truncate(d, f, 0), NK_EINVAL);
    assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);

    /* remove, rename errors */
    assert_int_equal(nk_simdisk_remove(d, "/a"), NK_ENOTEMPTY);
    assert_int_equal(nk_simdisk_remove(d, "/"), NK_EBUSY);
    assert_int_equal(nk_simdisk_remove(d, "/a/zz"), NK_ENOENT);
    assert_int_equal(nk_simdisk_rename(d, "/a/b", "/a/c"), NK_ENOTSUP);
    assert_int_equal(nk_simdisk_rename(d, "/a/b/f", "/a/b"), NK_EISDIR);
    assert_int_equal(nk_simdisk_rename(d, "/a/b/missing", "/a/x"), NK_ENOENT);
    assert_int_equal(nk_simdisk_rename(d, "/a/b/f", "/nope/x"), NK_ENOENT);
    assert_int_equal(nk_simdisk_rename(d, "/a/b/f", "a//b/f/"), NK_OK); /* same file */
    assert_int_equal(nk_simdisk_dir_sync(d, "/a/b/f"), NK_ENOTDIR);
    assert_int_equal(nk_simdisk_dir_sync(d, "/q"), NK_ENOENT);
    nk_names names;
    assert_int_equal(nk_simdisk_dir_list(d, "/a/b/f", &names), NK_ENOTDIR);
    assert_int_equal(nk_simdisk_dir_list(d, "/q", &names), NK_ENOENT);

    assert_int_equal(nk_simdisk_remove(d, "/a/b/f"), NK_OK);
    assert_int_equal(nk_simdisk_remove(d, "/a/b"), NK_OK);
    assert_false(exists(d, "/a/b"));
    nk_simdisk_free(d);
}

static void test_read_write(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 2);
    nk_simfile *f;
    uint8_t buf[64];
    size_t n;
    uint64_t size;

    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "hello", 5), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, " world", 6), NK_OK);
    assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_OK);
    assert_int_equal(size, 11);
    assert_int_equal(nk_simdisk_read_at(d, f, 6, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(nk_simdisk_read_at(d, f, 100, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 0);

    /* a write past the end leaves a hole of zeros */
    assert_int_equal(nk_simdisk_write_at(d, f, 20, "!", 1), NK_OK);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 21);
    for (size_t i = 11; i < 20; i++) {
        assert_int_equal(buf[i], 0);
    }
    /* shrink then grow: the regrown part is zeros, not old bytes */
    assert_int_equal(nk_simdisk_truncate(d, f, 3), NK_OK);
    assert_int_equal(nk_simdisk_truncate(d, f, 8), NK_OK);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "hel\0\0\0\0\0", 8);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "", 0), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, NK_SIMDISK_FILE_MAX, "x", 1), NK_ETOOBIG);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);

    /* O_TRUNC empties it */
    assert_int_equal(nk_simdisk_open(d, "f", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f), NK_OK);
    assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_OK);
    assert_int_equal(size, 0);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    nk_simdisk_free(d);
}

static void test_dir_list_sorted(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 3);
    const char *names[] = {"zeta", "Alpha", "beta", "\xc3\xa9t\xc3\xa9", "a", "aa", "b-1", "B"};
    const size_t n = sizeof(names) / sizeof(names[0]);
    assert_int_equal(nk_simdisk_dir_create(d, "/d"), NK_OK);
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof(p), "/d/%s", names[i]);
        if (i % 2 == 0) {
            put_file(d, p, "x", 1, false);
        } else {
            assert_int_equal(nk_simdisk_dir_create(d, p), NK_OK);
        }
    }
    nk_names l;
    assert_int_equal(nk_simdisk_dir_list(d, "/d/", &l), NK_OK);
    assert_int_equal(l.count, n);
    for (size_t i = 1; i < l.count; i++) {
        assert_true(strcmp(l.names[i - 1], l.names[i]) < 0); /* bytewise */
    }
    assert_string_equal(l.names[0], "Alpha");
    assert_string_equal(l.names[l.count - 1], "\xc3\xa9t\xc3\xa9");
    nk_names_free(&l);

    nk_names empty;
    assert_int_equal(nk_simdisk_dir_list(d, "/d/aa", &empty), NK_OK);
    assert_int_equal(empty.count, 0);
    nk_names_free(&empty);
    nk_simdisk_free(d);
}

/* Open handles follow the inode, not the name. */
static void test_inode_semantics(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 4);
    nk_simfile *f;
    uint8_t buf[16];
    size_t n;

    assert_int_equal(nk_simdisk_open(d, "/a", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, "one", 3), NK_OK);
    assert_int_equal(nk_simdisk_rename(d, "/a", "/b"), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, "two", 3), NK_OK);
    assert_false(exists(d, "/a"));
    assert_file(d, "/b", "onetwo");

    /* removed while open: still readable and writable through the handle */
    assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
    assert_int_equal(nk_simdisk_remove(d, "/b"), NK_OK);
    assert_false(exists(d, "/b"));
    assert_int_equal(nk_simdisk_append(d, f, "3", 1), NK_OK);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "onetwo3", 7);

    /* the remove was never dir-synced: a crash that drops it brings /b back,
     * with its synced content only */
    crash(d, 1, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/b", "onetwo");
    assert_int_equal(nk_simdisk_close(d, f), NK_ECRASHED);

    /* rename over an existing file replaces it; the old inode stays open */
    nk_simfile *old;
    put_file(d, "/c", "cee", 3, false);
    assert_int_equal(nk_simdisk_open(d, "/c", NK_OPEN_READ, &old), NK_OK);
    assert_int_equal(nk_simdisk_rename(d, "/b", "/c"), NK_OK);
    assert_file(d, "/c", "onetwo");
    assert_int_equal(nk_simdisk_read_at(d, old, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "cee", 3);
    assert_int_equal(nk_simdisk_close(d, old), NK_OK);
    nk_simdisk_free(d);
}

/* ------------------------------------------------------------ durability --- */

static void test_unsynced_lost_synced_kept(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 5);
    nk_simfile *f;
    put_file(d, "/f", "AAAA", 4, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);

    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 1, "bb", 2), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, "CCCC", 4), NK_OK);
    assert_int_equal(nk_simdisk_truncate(d, f, 6), NK_OK);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK); /* close does not sync */
    assert_file(d, "/f", "AbbACC");

    nk_simdisk_crash_stats cs;
    crash(d, 1, &nk_simdisk_crash_drop_all, &cs);
    assert_file(d, "/f", "AAAA");
    assert_int_equal(cs.writes_dropped, 2);
    assert_int_equal(cs.truncs_dropped, 1);
    assert_int_equal(cs.writes_applied + cs.writes_torn + cs.truncs_applied, 0);

    /* the same writes, synced, survive any policy */
    for (uint64_t seed = 0; seed < 50; seed++) {
        assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
        assert_int_equal(nk_simdisk_write_at(d, f, 1, "bb", 2), NK_OK);
        assert_int_equal(nk_simdisk_append(d, f, "CCCC", 4), NK_OK);
        assert_int_equal(nk_simdisk_truncate(d, f, 6), NK_OK);
        assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
        assert_int_equal(nk_simdisk_close(d, f), NK_OK);
        crash(d, seed, &nk_simdisk_crash_chaos, NULL);
        assert_file(d, "/f", "AbbACC");
        put_file(d, "/f", "AAAA", 4, true); /* reset for the next round */
    }

    /* keep_all applies everything in order: the durable image equals the
     * volatile view */
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_truncate(d, f, 1), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, "xyz", 3), NK_OK);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    crash(d, 9, &nk_simdisk_crash_keep_all, &cs);
    assert_file(d, "/f", "Axyz");
    assert_int_equal(cs.truncs_applied, 1);
    assert_int_equal(cs.writes_applied, 1);
    nk_simdisk_free(d);
}

/* turso#1845: fsync of the file is not enough for a new name. */
static void test_new_file_needs_dir_sync(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 6);
    assert_int_equal(nk_simdisk_dir_create(d, "/db"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);

    put_file(d, "/db/a", "data", 4, true); /* synced data, entry not synced */
    crash(d, 1, &nk_simdisk_crash_drop_all, NULL);
    assert_true(exists(d, "/db"));
    assert_false(exists(d, "/db/a"));

    put_file(d, "/db/a", "data", 4, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db"), NK_OK);
    crash(d, 2, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/db/a", "data");

    /* entry synced but data not: the file exists, its content is lost */
    put_file(d, "/db/b", "data", 4, false);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db"), NK_OK);
    crash(d, 3, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/db/b", "");

    /* syncing the child directory does not make the child itself durable */
    assert_int_equal(nk_simdisk_dir_create(d, "/db/sub"), NK_OK);
    put_file(d, "/db/sub/x", "x", 1, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db/sub"), NK_OK);
    crash(d, 4, &nk_simdisk_crash_drop_all, NULL);
    assert_false(exists(d, "/db/sub"));

    assert_int_equal(nk_simdisk_dir_create(d, "/db/sub"), NK_OK);
    put_file(d, "/db/sub/x", "x", 1, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db/sub"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db"), NK_OK);
    crash(d, 5, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/db/sub/x", "x");

    /* removes are pending too */
    assert_int_equal(nk_simdisk_remove(d, "/db/a"), NK_OK);
    crash(d, 6, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/db/a", "data");
    assert_int_equal(nk_simdisk_remove(d, "/db/a"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/db"), NK_OK);
    crash(d, 7, &nk_simdisk_crash_keep_all, NULL);
    assert_false(exists(d, "/db/a"));

    nk_simdisk_stats st;
    nk_simdisk_get_stats(d, &st);
    assert_int_equal(st.pending_ops, 0);
    assert_int_equal(st.crashes, 7);
    nk_simdisk_free(d);
}

/* The CURRENT-file pattern: write tmp, sync, rename over CURRENT. */
static void test_rename_atomic(void **state)
{
    (void)state;
    int saw_old = 0, saw_new = 0;
    for (uint64_t seed = 0; seed < 400; seed++) {
        nk_simdisk *d = new_disk(512, seed);
        put_file(d, "/CURRENT", "old", 3, true);
        assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
        put_file(d, "/CURRENT.tmp", "new", 3, true);
        if (seed % 2 == 0) {
            /* half the runs make tmp durable first; the rest leave its
             * creation pending behind the rename */
            assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
        }
        assert_int_equal(nk_simdisk_rename(d, "/CURRENT.tmp", "/CURRENT"), NK_OK);
        assert_file(d, "/CURRENT", "new");
        assert_false(exists(d, "/CURRENT.tmp"));

        crash(d, seed, &nk_simdisk_crash_chaos, NULL);
        uint8_t *buf;
        size_t len;
        assert_int_equal(get_file(d, "/CURRENT", &buf, &len), NK_OK); /* never missing */
        assert_int_equal(len, 3);
        if (memcmp(buf, "new", 3) == 0) {
            saw_new++;
            assert_false(exists(d, "/CURRENT.tmp")); /* moved, not copied */
        } else {
            assert_memory_equal(buf, "old", 3);
            saw_old++;
            if (seed % 2 == 0) {
                assert_file(d, "/CURRENT.tmp", "new");
            }
        }
        free(buf);
        nk_simdisk_free(d);
    }
    assert_true(saw_old > 0);
    assert_true(saw_new > 0);

    /* after dir_sync the rename is durable whatever the policy */
    nk_simdisk *d = new_disk(512, 1);
    put_file(d, "/CURRENT", "old", 3, true);
    put_file(d, "/tmp", "new", 3, true);
    assert_int_equal(nk_simdisk_rename(d, "/tmp", "/CURRENT"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
    crash(d, 1, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/CURRENT", "new");
    assert_false(exists(d, "/tmp"));
    nk_simdisk_free(d);
}

/* A cross-directory rename is one op: syncing either side makes both sides
 * durable, together with the earlier ops it depends on. */
static void test_cross_dir_rename(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 7);
    assert_int_equal(nk_simdisk_dir_create(d, "/a"), NK_OK);
    assert_int_equal(nk_simdisk_dir_create(d, "/b"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
    put_file(d, "/a/f", "F", 1, true); /* creation pending in /a */
    put_file(d, "/a/g", "G", 1, true); /* pending in /a, unrelated */
    assert_int_equal(nk_simdisk_rename(d, "/a/f", "/b/f"), NK_OK);
    put_file(d, "/a/h", "H", 1, true); /* later op in /a: not needed */
    assert_int_equal(nk_simdisk_dir_sync(d, "/b"), NK_OK);
    crash(d, 1, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/b/f", "F");
    assert_false(exists(d, "/a/f"));
    assert_file(d, "/a/g", "G"); /* earlier op of /a, flushed with the rename */
    assert_false(exists(d, "/a/h"));

    /* under random crashes the file is in exactly one of the two places */
    for (uint64_t seed = 0; seed < 200; seed++) {
        assert_int_equal(nk_simdisk_rename(d, "/b/f", "/a/f"), NK_OK);
        assert_int_equal(nk_simdisk_rename(d, "/a/f", "/b/f2"), NK_OK);
        crash(d, seed, &nk_simdisk_crash_chaos, NULL);
        int where = exists(d, "/b/f") + exists(d, "/a/f") + exists(d, "/b/f2");
        assert_int_equal(where, 1);
        if (exists(d, "/a/f")) {
            assert_int_equal(nk_simdisk_rename(d, "/a/f", "/b/f"), NK_OK);
        } else if (exists(d, "/b/f2")) {
            assert_int_equal(nk_simdisk_rename(d, "/b/f2", "/b/f"), NK_OK);
        }
        assert_int_equal(nk_simdisk_dir_sync(d, "/a"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/b"), NK_OK);
        assert_file(d, "/b/f", "F");
    }
    nk_simdisk_free(d);
}

/* Torn writes touch only the bytes of unsynced writes, at sector grain. */
static void test_torn_writes(void **state)
{
    (void)state;
    enum { SECTOR = 512, BASE = 8192, MAXLEN = 12288, NWRITES = 6 };
    static uint8_t base[BASE];
    uint64_t torn = 0, garbage = 0, applied = 0, dropped = 0;
    const nk_simdisk_crash_policy no_garbage = {
        .write_apply = {1, 4},
        .write_torn = {2, 3},
        .sector_apply = {1, 2},
        .sector_garbage = {0, 1},
        .trunc_apply = {1, 2},
        .dirop_apply = {1, 1},
    };

    for (uint64_t seed = 0; seed < 300; seed++) {
        bool chaos = seed % 2 == 0;
        nk_rand w;
        nk_rand_derive(&w, seed, "workload", 0);
        nk_rand_bytes(&w, base, BASE);
        nk_simdisk *d = new_disk(SECTOR, seed);
        put_file(d, "/f", base, BASE, true);
        assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);

        /* covered[i]: byte i was touched by some unsynced write */
        static bool covered[MAXLEN];
        memset(covered, 0, sizeof(covered));
        uint64_t off[NWRITES], len[NWRITES];
        static uint8_t data[NWRITES][2048];
        nk_simfile *f;
        assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
        for (int k = 0; k < NWRITES; k++) {
            len[k] = nk_rand_between(&w, 1, 2048);
            off[k] = nk_rand_below(&w, MAXLEN - len[k]);
            nk_rand_bytes(&w, data[k], len[k]);
            assert_int_equal(nk_simdisk_write_at(d, f, off[k], data[k], len[k]), NK_OK);
            for (uint64_t i = off[k]; i < off[k] + len[k]; i++) {
                covered[i] = true;
            }
        }
        assert_int_equal(nk_simdisk_close(d, f), NK_OK);

        nk_simdisk_crash_stats cs;
        crash(d, seed, chaos ? &nk_simdisk_crash_chaos : &no_garbage, &cs);
        torn += cs.writes_torn;
        garbage += cs.sectors_garbage;
        applied += cs.writes_applied;
        dropped += cs.writes_dropped;

        uint8_t *got;
        size_t n;
        assert_int_equal(get_file(d, "/f", &got, &n), NK_OK);
        assert_true(n >= BASE && n <= MAXLEN);
        for (size_t i = 0; i < n; i++) {
            if (!covered[i]) {
                /* synced bytes never change; holes read as zeros */
                assert_int_equal(got[i], i < BASE ? base[i] : 0);
            }
        }
        if (!chaos) {
            /* Without garbage, each sector piece of the *last* write over a
             * byte, if it landed, shows that write's bytes. Check a weaker,
             * exact property: every byte equals one of the values some
             * write (or the base, or a hole) could have left there. */
            for (size_t i = 0; i < n; i++) {
                bool ok = (i < BASE ? got[i] == base[i] : got[i] == 0);
                for (int k = 0; k < NWRITES && !ok; k++) {
                    ok = i >= off[k] && i < off[k] + len[k] && got[i] == data[k][i - off[k]];
                }
                assert_true(ok);
            }
            /* and sector pieces of a single write land whole or not at all:
             * a piece that shows one of write k's bytes where no other write
             * overlaps shows all of them */
            for (int k = 0; k < NWRITES; k++) {
                for (uint64_t s = off[k] / SECTOR; s * SECTOR < off[k] + len[k]; s++) {
                    uint64_t lo = s * SECTOR > off[k] ? s * SECTOR : off[k];
                    uint64_t hi =
                        (s + 1) * SECTOR < off[k] + len[k] ? (s + 1) * SECTOR : off[k] + len[k];
                    bool alone = true;
                    for (int j = 0; j < NWRITES; j++) {
                        if (j != k && off[j] < hi && off[j] + len[j] > lo) {
                            alone = false;
                        }
                    }
                    if (!alone || hi > n) {
                        continue;
                    }
                    bool landed = memcmp(got + lo, data[k] + (lo - off[k]), hi - lo) == 0;
                    bool old = true;
                    for (uint64_t i = lo; i < hi; i++) {
                        old = old && got[i] == (i < BASE ? base[i] : 0);
                    }
                    assert_true(landed || old);
                }
            }
        }
        free(got);
        nk_simdisk_free(d);
    }
    assert_true(torn > 0);
    assert_true(garbage > 0);
    assert_true(applied > 0);
    assert_true(dropped > 0);
}

static void test_truncate_crash(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 8);
    nk_simfile *f;
    put_file(d, "/f", "0123456789", 10, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_truncate(d, f, 4), NK_OK);
    crash(d, 1, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/f", "0123456789");
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_truncate(d, f, 4), NK_OK);
    crash(d, 2, &nk_simdisk_crash_keep_all, NULL);
    assert_file(d, "/f", "0123");
    nk_simdisk_free(d);
}

/* --------------------------------------------------------------- faults --- */

static void test_sync_failure(void **state)
{
    (void)state;
    int kept = 0, lost = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        nk_simdisk *d = new_disk(512, seed);
        put_file(d, "/f", "durable", 7, true);
        assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
        nk_simdisk_faults fl = {.sync_fail = {1, 1}};
        nk_simdisk_set_faults(d, &fl);

        nk_simfile *f;
        assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
        assert_int_equal(nk_simdisk_append(d, f, "+more", 5), NK_OK);
        assert_int_equal(nk_simdisk_file_sync(d, f), NK_EIO);
        uint64_t size;
        assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_OK);
        nk_simdisk_set_faults(d, NULL);
        if (size == 7) {
            /* dropped from the cache too: the volatile view reverted */
            lost++;
            assert_file(d, "/f", "durable");
            crash(d, seed, &nk_simdisk_crash_keep_all, NULL);
            assert_file(d, "/f", "durable");
        } else {
            /* still pending: a later sync may still make it durable */
            kept++;
            assert_int_equal(size, 12);
            assert_file(d, "/f", "durable+more");
            assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
            crash(d, seed, &nk_simdisk_crash_drop_all, NULL);
            assert_file(d, "/f", "durable+more");
        }
        nk_simdisk_stats st;
        nk_simdisk_get_stats(d, &st);
        assert_int_equal(st.sync_failures, 1);
        assert_int_equal(nk_simdisk_close(d, f), NK_ECRASHED);

        /* dir_sync failure leaves the entries pending */
        nk_simdisk_faults dfl = {.dir_sync_fail = {1, 1}};
        put_file(d, "/g", "g", 1, true);
        nk_simdisk_set_faults(d, &dfl);
        assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_EIO);
        nk_simdisk_set_faults(d, NULL);
        crash(d, seed, &nk_simdisk_crash_drop_all, NULL);
        assert_false(exists(d, "/g"));
        nk_simdisk_free(d);
    }
    assert_true(kept > 0);
    assert_true(lost > 0);
}

static void test_read_corruption(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 9);
    uint8_t data[1000], buf[1000];
    nk_rand w;
    nk_rand_seed(&w, 42);
    nk_rand_bytes(&w, data, sizeof(data));
    put_file(d, "/f", data, sizeof(data), true);

    nk_simdisk_faults fl = {.read_corrupt = {1, 1}};
    nk_simdisk_set_faults(d, &fl);
    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_READ, &f), NK_OK);
    for (int round = 0; round < 50; round++) {
        size_t n;
        assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
        assert_int_equal(n, sizeof(data));
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
            bits += __builtin_popcount((unsigned)(buf[i] ^ data[i]));
        }
        assert_int_equal(bits, 1); /* exactly one flipped bit in the copy */
    }
    /* an empty read has nothing to corrupt */
    size_t n;
    assert_int_equal(nk_simdisk_read_at(d, f, 5000, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 0);

    /* the stored data is intact: a clean re-read matches */
    nk_simdisk_set_faults(d, NULL);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_memory_equal(buf, data, sizeof(data));
    nk_simdisk_stats st;
    nk_simdisk_get_stats(d, &st);
    assert_int_equal(st.read_corruptions, 50);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    nk_simdisk_free(d);
}

static void test_enospc(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 10);
    static uint8_t blob[8000];
    memset(blob, 'x', sizeof(blob));
    nk_simdisk_faults fl = {.capacity = 10000};
    nk_simdisk_set_faults(d, &fl);

    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, "/a", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, blob, 8000), NK_OK);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);

    assert_int_equal(nk_simdisk_open(d, "/b", NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, blob, 3000), NK_ENOSPC);
    uint64_t size;
    assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_OK);
    assert_int_equal(size, 0); /* a failed write has no effect */
    assert_int_equal(nk_simdisk_append(d, f, blob, 2000), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, blob, 1), NK_ENOSPC);
    /* overwriting in place needs no new space */
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "yy", 2), NK_OK);

    /* removing a file frees its space (once no handle holds it) */
    nk_simfile *ha;
    assert_int_equal(nk_simdisk_open(d, "/a", NK_OPEN_READ, &ha), NK_OK);
    assert_int_equal(nk_simdisk_remove(d, "/a"), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, blob, 1000), NK_ENOSPC);
    assert_int_equal(nk_simdisk_close(d, ha), NK_OK);
    assert_int_equal(nk_simdisk_append(d, f, blob, 1000), NK_OK);

    nk_simdisk_stats st;
    nk_simdisk_get_stats(d, &st);
    assert_int_equal(st.enospc, 3);
    assert_int_equal(st.used_bytes, 3000);
    assert_int_equal(nk_simdisk_close(d, f), NK_OK);
    nk_simdisk_free(d);
}

/* ------------------------------------------------------- handles, locks --- */

static void test_handles_stale_after_crash(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 11);
    nk_simfile *f, *leaked;
    uint8_t buf[4];
    size_t n = 99;
    uint64_t size;
    put_file(d, "/f", "abc", 3, true);
    assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_READ, &leaked), NK_OK);

    nk_simdisk_crash_stats cs;
    crash(d, 1, &nk_simdisk_crash_chaos, &cs);
    assert_int_equal(cs.handles_invalidated, 2);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_ECRASHED);
    assert_int_equal(n, 0);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "x", 1), NK_ECRASHED);
    assert_int_equal(nk_simdisk_append(d, f, "x", 1), NK_ECRASHED);
    assert_int_equal(nk_simdisk_file_sync(d, f), NK_ECRASHED);
    assert_int_equal(nk_simdisk_file_size(d, f, &size), NK_ECRASHED);
    assert_int_equal(nk_simdisk_truncate(d, f, 0), NK_ECRASHED);
    assert_int_equal(nk_simdisk_close(d, f), NK_ECRASHED);
    assert_file(d, "/f", "abc"); /* stale handles had no effect */

    /* the restarted node opens fresh handles; leftovers can be reaped */
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_READ, &f), NK_OK);
    nk_simdisk_reap_stale(d); /* frees `leaked`, not `f` */
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 3);

    /* process death (no power loss): handles go, the page cache stays */
    nk_simfile *w;
    assert_int_equal(nk_simdisk_open(d, "/f", NK_OPEN_WRITE, &w), NK_OK);
    assert_int_equal(nk_simdisk_append(d, w, "d", 1), NK_OK);
    nk_simdisk_kill(d);
    assert_int_equal(nk_simdisk_append(d, w, "e", 1), NK_ECRASHED);
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf), &n), NK_ECRASHED);
    assert_file(d, "/f", "abcd");
    crash(d, 2, &nk_simdisk_crash_drop_all, NULL);
    assert_file(d, "/f", "abc"); /* still unsynced, so a crash drops it */
    nk_simdisk_free(d);          /* frees the stale w and f */
}

static void test_locks(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(512, 12);
    nk_simlock *l1, *l2;
    assert_int_equal(nk_simdisk_dir_create(d, "/w"), NK_OK);
    assert_int_equal(nk_simdisk_dir_lock(d, "/nope", &l1), NK_ENOENT);
    put_file(d, "/w/file", "", 0, false);
    assert_int_equal(nk_simdisk_dir_lock(d, "/w/file", &l1), NK_ENOTDIR);

    assert_int_equal(nk_simdisk_dir_lock(d, "/w", &l1), NK_OK);
    assert_true(exists(d, "/w/LOCK")); /* like the real backend */
    assert_int_equal(nk_simdisk_dir_lock(d, "w/", &l2), NK_EBUSY);
    nk_simdisk_dir_unlock(d, l1);
    assert_int_equal(nk_simdisk_dir_lock(d, "/w", &l2), NK_OK);

    /* a crash releases it; the stale lock object is harmless */
    crash(d, 1, &nk_simdisk_crash_keep_all, NULL);
    assert_int_equal(nk_simdisk_dir_lock(d, "/w", &l1), NK_OK);
    nk_simdisk_dir_unlock(d, l2); /* stale: must not release l1 */
    assert_int_equal(nk_simdisk_dir_lock(d, "/w", &l2), NK_EBUSY);

    /* so does process death */
    nk_simdisk_kill(d);
    assert_int_equal(nk_simdisk_dir_lock(d, "/w", &l2), NK_OK);
    nk_simdisk_dir_unlock(d, l1);
    nk_simdisk_dir_unlock(d, l2);

    /* the root can be locked too */
    assert_int_equal(nk_simdisk_dir_lock(d, "/", &l1), NK_OK);
    assert_true(exists(d, "/LOCK"));
    nk_simdisk_dir_unlock(d, l1);
    nk_simdisk_free(d);
}

/* --------------------------------------------------------- determinism --- */

typedef struct trace {
    XXH3_state_t *h;
    uint64_t events;
} trace;

static void observe(void *ctx, const char *event, const char *path, uint64_t a, uint64_t b)
{
    trace *t = ctx;
    XXH3_64bits_update(t->h, event, strlen(event) + 1);
    XXH3_64bits_update(t->h, path, strlen(path) + 1);
    uint64_t ab[2] = {a, b};
    XXH3_64bits_update(t->h, ab, sizeof(ab));
    t->events++;
}

/* A random workload with faults and crashes; returns the durable hash and
 * the observer trace hash. Also checks invariants that must hold whatever
 * the seed. */
static void run_workload(uint64_t seed, uint64_t *disk_hash, uint64_t *trace_hash)
{
    nk_simdisk *d = new_disk(512, seed);
    trace t = {XXH3_createState(), 0};
    assert_non_null(t.h);
    XXH3_64bits_reset(t.h);
    nk_simdisk_set_observer(d, observe, &t);
    nk_simdisk_faults fl = {.read_corrupt = {1, 20}, .sync_fail = {1, 20}, .capacity = 1 << 20};
    nk_simdisk_set_faults(d, &fl);

    nk_rand w, cr;
    nk_rand_derive(&w, seed, "workload", 0);
    nk_rand_derive(&cr, seed, "crash", 0);
    const char *dirs[] = {"/", "/d0", "/d1", "/d0/e"};
    nk_simfile *open[4] = {NULL, NULL, NULL, NULL};
    uint8_t data[700];

    for (int step = 0; step < 400; step++) {
        char p1[64], p2[64];
        const char *dir = dirs[nk_rand_below(&w, 4)];
        snprintf(p1, sizeof(p1), "%s/f%u", dir, (unsigned)nk_rand_below(&w, 4));
        snprintf(p2, sizeof(p2), "%s/f%u", dirs[nk_rand_below(&w, 4)],
                 (unsigned)nk_rand_below(&w, 4));
        unsigned slot = (unsigned)nk_rand_below(&w, 4);
        int rc;
        switch (nk_rand_below(&w, 12)) {
        case 0:
            rc = nk_simdisk_dir_create(d, dir);
            assert_true(rc == NK_OK || rc == NK_EEXIST || rc == NK_ENOENT);
            break;
        case 1:
        case 2:
            if (open[slot] == NULL) {
                rc = nk_simdisk_open(d, p1, NK_OPEN_WRITE | NK_OPEN_CREATE, &open[slot]);
                assert_true(rc == NK_OK || rc == NK_ENOENT);
            }
            break;
        case 3:
        case 4:
            if (open[slot] != NULL) {
                size_t len = (size_t)nk_rand_between(&w, 1, sizeof(data));
                nk_rand_bytes(&w, data, len);
                rc = nk_simdisk_append(d, open[slot], data, len);
                assert_true(rc == NK_OK || rc == NK_ENOSPC);
            }
            break;
        case 5:
            if (open[slot] != NULL) {
                rc = nk_simdisk_file_sync(d, open[slot]);
                assert_true(rc == NK_OK || rc == NK_EIO);
            }
            break;
        case 6:
            rc = nk_simdisk_dir_sync(d, dir);
            assert_true(rc == NK_OK || rc == NK_ENOENT);
            break;
        case 7:
            rc = nk_simdisk_rename(d, p1, p2);
            assert_true(rc == NK_OK || rc == NK_ENOENT);
            break;
        case 8:
            rc = nk_simdisk_remove(d, nk_rand_chance(&w, 1, 4) ? dir : p1);
            assert_true(rc == NK_OK || rc == NK_ENOENT || rc == NK_ENOTEMPTY || rc == NK_EBUSY);
            break;
        case 9:
            if (open[slot] != NULL) {
                uint64_t size;
                assert_int_equal(nk_simdisk_file_size(d, open[slot], &size), NK_OK);
                rc = nk_simdisk_truncate(d, open[slot], nk_rand_below(&w, size + 1));
                assert_int_equal(rc, NK_OK);
                uint8_t buf[64];
                size_t n;
                assert_int_equal(nk_simdisk_read_at(d, open[slot], 0, buf, sizeof(buf), &n), NK_OK);
            }
            break;
        case 10:
            if (open[slot] != NULL) {
                assert_int_equal(nk_simdisk_close(d, open[slot]), NK_OK);
                open[slot] = NULL;
            }
            break;
        default:
            if (nk_rand_chance(&w, 1, 4)) {
                nk_simdisk_crash(d, &cr, &nk_simdisk_crash_chaos, NULL);
                for (int i = 0; i < 4; i++) {
                    if (open[i] != NULL) {
                        assert_int_equal(nk_simdisk_close(d, open[i]), NK_ECRASHED);
                        open[i] = NULL;
                    }
                }
            }
            break;
        }
    }

    /* keep_all resolves every pending op as issued: the durable image must
     * then equal the volatile view exactly */
    nk_simdisk_set_faults(d, NULL);
    for (int i = 0; i < 4; i++) {
        if (open[i] != NULL) {
            assert_int_equal(nk_simdisk_close(d, open[i]), NK_OK);
        }
    }
    char *before = dump(d);
    nk_simdisk_crash(d, &cr, &nk_simdisk_crash_keep_all, NULL);
    char *after = dump(d);
    assert_string_equal(before, after);
    nk_simdisk_stats st;
    nk_simdisk_get_stats(d, &st);
    assert_int_equal(st.pending_ops, 0);
    free(before);
    free(after);

    *disk_hash = nk_simdisk_hash(d);
    *trace_hash = XXH3_64bits_digest(t.h);
    assert_true(t.events > 0);
    XXH3_freeState(t.h);
    nk_simdisk_free(d);
}

static void test_determinism(void **state)
{
    (void)state;
    uint64_t first_disk = 0, first_trace = 0;
    int distinct = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        uint64_t h1, t1, h2, t2;
        run_workload(seed, &h1, &t1);
        run_workload(seed, &h2, &t2);
        assert_true(h1 == h2); /* same seed, same durable image */
        assert_true(t1 == t2); /* and the same event trace */
        if (seed == 0) {
            first_disk = h1;
            first_trace = t1;
        } else if (h1 != first_disk) {
            distinct++;
        }
        assert_true(seed == 0 || t1 != first_trace);
    }
    assert_true(distinct > 20);

    /* the hash sees content, names and types */
    nk_simdisk *a = new_disk(512, 1), *b = new_disk(512, 1);
    uint64_t empty = nk_simdisk_hash(a);
    put_file(a, "/x", "1", 1, true);
    put_file(b, "/x", "2", 1, true);
    assert_int_equal(nk_simdisk_dir_sync(a, "/"), NK_OK);
    assert_int_equal(nk_simdisk_dir_sync(b, "/"), NK_OK);
    assert_true(nk_simdisk_hash(a) != nk_simdisk_hash(b));
    assert_true(nk_simdisk_hash(a) != empty);
    uint64_t ha = nk_simdisk_hash(a);
    put_file(a, "/y", "", 0, true); /* not dir-synced: not in the durable image */
    assert_true(nk_simdisk_hash(a) == ha);
    nk_simdisk_free(a);
    nk_simdisk_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_errors),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_dir_list_sorted),
        cmocka_unit_test(test_inode_semantics),
        cmocka_unit_test(test_unsynced_lost_synced_kept),
        cmocka_unit_test(test_new_file_needs_dir_sync),
        cmocka_unit_test(test_rename_atomic),
        cmocka_unit_test(test_cross_dir_rename),
        cmocka_unit_test(test_torn_writes),
        cmocka_unit_test(test_truncate_crash),
        cmocka_unit_test(test_sync_failure),
        cmocka_unit_test(test_read_corruption),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_handles_stale_after_crash),
        cmocka_unit_test(test_locks),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
