/*
 * test_real_disk.c - the file and directory operations of the real runtime
 * (disk/posix_fs.c through nokv/rt.h), on real files in a fresh mkdtemp
 * directory under /tmp that each test removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "disk/posix_fs.h"
#include "net/rt_real.h"
#include "nokv/rt.h"

typedef struct fixture {
    nk_rt *rt;
    char dir[64];
} fixture;

static void path_of(const fixture *fx, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", fx->dir, name);
}

/* Remove the tree under `path` through the runtime itself (depth-first). */
static void remove_tree(nk_rt *rt, const char *path)
{
    nk_stat st;
    if (nk_rt_stat(rt, path, &st) != NK_OK) {
        return;
    }
    if (st.is_dir) {
        nk_names names;
        if (nk_rt_dir_list(rt, path, &names) == NK_OK) {
            for (size_t i = 0; i < names.count; i++) {
                char child[512];
                snprintf(child, sizeof(child), "%s/%s", path, names.names[i]);
                remove_tree(rt, child);
            }
            nk_names_free(&names);
        }
    }
    (void)nk_rt_remove(rt, path);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL) {
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/nokv-test-disk-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
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
    remove_tree(fx->rt, fx->dir);
    nk_stat st;
    int gone = nk_rt_stat(fx->rt, fx->dir, &st) == NK_ENOENT;
    nk_rt_real_free(fx->rt);
    free(fx);
    return gone ? 0 : -1;
}

static void test_open_flags(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char p[256];
    path_of(fx, "a", p, sizeof(p));
    nk_file *f = NULL;

    /* Missing file without CREATE. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_READ, &f), NK_ENOENT);
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE, &f), NK_ENOENT);

    /* CREATE|EXCL creates once, then NK_EEXIST. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "hello", 5), NK_OK);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f),
                     NK_EEXIST);

    /* CREATE without EXCL opens the existing file, contents intact. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    uint64_t size = 0;
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 5);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);

    /* Read-only handles cannot write. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_READ, &f), NK_OK);
    assert_int_not_equal(nk_rt_file_write_at(rt, f, 0, "x", 1), NK_OK);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);

    /* TRUNC empties it; TRUNC needs WRITE; EXCL needs CREATE. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_READ | NK_OPEN_TRUNC, &f), NK_EINVAL);
    assert_int_equal(nk_posix_file_open(p, NK_OPEN_WRITE | NK_OPEN_EXCL, &f), NK_EINVAL);
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_TRUNC, &f), NK_OK);
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 0);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);

    /* A directory is not a file. */
    assert_int_equal(nk_rt_file_open(rt, fx->dir, NK_OPEN_READ, &f), NK_EISDIR);
    /* A path through a regular file. */
    char q[300];
    snprintf(q, sizeof(q), "%s/sub", p);
    assert_int_equal(nk_rt_file_open(rt, q, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_ENOTDIR);
}

static void test_read_write_append_truncate(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char p[256];
    path_of(fx, "data", p, sizeof(p));
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);

    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "0123456789", 10), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 2, "ab", 2), NK_OK);
    /* Writing past the end extends the file (with a hole of zeros). */
    assert_int_equal(nk_rt_file_write_at(rt, f, 20, "Z", 1), NK_OK);
    uint64_t size = 0;
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 21);

    char buf[64];
    size_t n = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, 0, buf, 10, &n), NK_OK);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "01ab456789", 10);
    assert_int_equal(nk_rt_file_read_at(rt, f, 10, buf, 11, &n), NK_OK);
    assert_int_equal(n, 11);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[10], 'Z');

    /* Short read only at end of file; reads past the end give 0 bytes. */
    assert_int_equal(nk_rt_file_read_at(rt, f, 15, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 6);
    assert_int_equal(nk_rt_file_read_at(rt, f, 1000, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 0);

    /* Append goes to the current end, wherever the last write was. */
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "X", 1), NK_OK);
    assert_int_equal(nk_rt_file_append(rt, f, "tail", 4), NK_OK);
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 25);
    assert_int_equal(nk_rt_file_read_at(rt, f, 21, buf, 4, &n), NK_OK);
    assert_memory_equal(buf, "tail", 4);

    assert_int_equal(nk_rt_file_sync(rt, f), NK_OK);

    /* Truncate shrinks, and a later append follows the new end. */
    assert_int_equal(nk_rt_file_truncate(rt, f, 4), NK_OK);
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 4);
    assert_int_equal(nk_rt_file_append(rt, f, "!", 1), NK_OK);
    assert_int_equal(nk_rt_file_read_at(rt, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "X1ab!", 5);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);

    /* Data survives close and reopen. */
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_READ, &f), NK_OK);
    assert_int_equal(nk_rt_file_read_at(rt, f, 0, buf, sizeof(buf), &n), NK_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "X1ab!", 5);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);

    nk_stat st;
    assert_int_equal(nk_rt_stat(rt, p, &st), NK_OK);
    assert_false(st.is_dir);
    assert_int_equal(st.size, 5);
}

static void test_large_io(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char p[256];
    path_of(fx, "big", p, sizeof(p));
    size_t len = 3u * 1024u * 1024u + 17u;
    uint8_t *out = malloc(len), *in = malloc(len);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(i * 131u + (i >> 13));
    }
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_rt_file_append(rt, f, out, len), NK_OK);
    size_t n = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, 0, in, len, &n), NK_OK);
    assert_int_equal(n, len);
    assert_memory_equal(in, out, len);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
    free(out);
    free(in);
}

static void test_dirs_sorted_listing(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char p[256];
    /* Created out of order; bytewise order puts "B" < "a" < "a.b" < "ab". */
    const char *names[] = {"ab", "a", "B", "zz", "a.b", "000-x"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(fx, names[i], p, sizeof(p));
        nk_file *f = NULL;
        assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
        assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
    }
    path_of(fx, "sub", p, sizeof(p));
    assert_int_equal(nk_rt_dir_create(rt, p), NK_OK);
    assert_int_equal(nk_rt_dir_create(rt, p), NK_EEXIST);
    nk_stat st;
    assert_int_equal(nk_rt_stat(rt, p, &st), NK_OK);
    assert_true(st.is_dir);

    nk_names list;
    assert_int_equal(nk_rt_dir_list(rt, fx->dir, &list), NK_OK);
    const char *want[] = {"000-x", "B", "a", "a.b", "ab", "sub", "zz"};
    assert_int_equal(list.count, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < list.count; i++) {
        assert_string_equal(list.names[i], want[i]);
    }
    nk_names_free(&list);

    /* Empty directory: no "." or "..". */
    assert_int_equal(nk_rt_dir_list(rt, p, &list), NK_OK);
    assert_int_equal(list.count, 0);
    nk_names_free(&list);

    assert_int_equal(nk_rt_dir_sync(rt, fx->dir), NK_OK);
    assert_int_equal(nk_rt_dir_sync(rt, p), NK_OK);

    /* Error mapping. */
    path_of(fx, "missing", p, sizeof(p));
    assert_int_equal(nk_rt_dir_list(rt, p, &list), NK_ENOENT);
    assert_int_equal(list.count, 0);
    assert_int_equal(nk_rt_dir_sync(rt, p), NK_ENOENT);
    path_of(fx, "a", p, sizeof(p));
    assert_int_equal(nk_rt_dir_list(rt, p, &list), NK_ENOTDIR);
    assert_int_equal(nk_rt_dir_sync(rt, p), NK_ENOTDIR);
}

static void write_file(nk_rt *rt, const char *p, const char *s)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, s, strlen(s)), NK_OK);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
}

static void test_rename_remove(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char a[256], b[256], d[256], dd[300];
    path_of(fx, "CURRENT.tmp", a, sizeof(a));
    path_of(fx, "CURRENT", b, sizeof(b));
    write_file(rt, a, "new");
    write_file(rt, b, "old-contents");

    /* Rename replaces the target atomically. */
    assert_int_equal(nk_rt_rename(rt, a, b), NK_OK);
    nk_stat st;
    assert_int_equal(nk_rt_stat(rt, a, &st), NK_ENOENT);
    assert_int_equal(nk_rt_stat(rt, b, &st), NK_OK);
    assert_int_equal(st.size, 3);
    assert_int_equal(nk_rt_rename(rt, a, b), NK_ENOENT);
    assert_int_equal(nk_rt_dir_sync(rt, fx->dir), NK_OK);

    /* Remove a file; then an empty directory; a non-empty one refuses. */
    assert_int_equal(nk_rt_remove(rt, b), NK_OK);
    assert_int_equal(nk_rt_stat(rt, b, &st), NK_ENOENT);
    assert_int_equal(nk_rt_remove(rt, b), NK_ENOENT);

    path_of(fx, "d", d, sizeof(d));
    snprintf(dd, sizeof(dd), "%s/f", d);
    assert_int_equal(nk_rt_dir_create(rt, d), NK_OK);
    write_file(rt, dd, "x");
    assert_int_equal(nk_rt_remove(rt, d), NK_ENOTEMPTY);
    assert_int_equal(nk_rt_remove(rt, dd), NK_OK);
    assert_int_equal(nk_rt_remove(rt, d), NK_OK);
    assert_int_equal(nk_rt_stat(rt, d, &st), NK_ENOENT);

    /* Creating inside a missing directory. */
    assert_int_equal(nk_rt_dir_create(rt, dd), NK_ENOENT);
}

static void test_dir_lock(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    nk_dirlock *l1 = NULL, *l2 = NULL;
    assert_int_equal(nk_rt_dir_lock(rt, fx->dir, &l1), NK_OK);
    assert_non_null(l1);
    /* flock is per open file description: a second owner is refused even
     * inside the same process. */
    assert_int_equal(nk_rt_dir_lock(rt, fx->dir, &l2), NK_EBUSY);
    assert_null(l2);
    nk_stat st;
    char p[256];
    path_of(fx, "LOCK", p, sizeof(p));
    assert_int_equal(nk_rt_stat(rt, p, &st), NK_OK);
    assert_true(st.size > 0); /* holds the owner pid */
    nk_rt_dir_unlock(rt, l1);
    assert_int_equal(nk_rt_dir_lock(rt, fx->dir, &l2), NK_OK);
    nk_rt_dir_unlock(rt, l2);

    path_of(fx, "nodir", p, sizeof(p));
    assert_int_equal(nk_rt_dir_lock(rt, p, &l1), NK_ENOENT);
}

/* File calls are safe from job workers: two jobs append to one handle at
 * the same time and no record is lost or overlapped. */
typedef struct append_job {
    nk_rt *rt;
    nk_file *f;
    char byte;
    int rc;
    int *dones;
} append_job;

#define APPENDS 500
#define RECORD 64

static void append_work(void *arg)
{
    append_job *j = arg;
    char rec[RECORD];
    memset(rec, j->byte, sizeof(rec));
    j->rc = NK_OK;
    for (int i = 0; i < APPENDS && j->rc == NK_OK; i++) {
        j->rc = nk_rt_file_append(j->rt, j->f, rec, sizeof(rec));
    }
}

static void append_done(void *arg)
{
    append_job *j = arg;
    if (++*j->dones == 2) {
        nk_rt_stop(j->rt);
    }
}

static bool g_guard_fired;
static void guard_cb(void *arg)
{
    g_guard_fired = true;
    nk_rt_stop(arg);
}

static void test_append_from_jobs(void **state)
{
    fixture *fx = *state;
    nk_rt *rt = fx->rt;
    char p[256];
    path_of(fx, "wal", p, sizeof(p));
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, p, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    int dones = 0;
    append_job j1 = {rt, f, 'a', -1, &dones}, j2 = {rt, f, 'b', -1, &dones};
    assert_int_equal(nk_rt_job_submit(rt, "append", append_work, append_done, &j1), NK_OK);
    assert_int_equal(nk_rt_job_submit(rt, "append", append_work, append_done, &j2), NK_OK);
    g_guard_fired = false;
    uint64_t guard = nk_rt_timer_start(rt, 20 * NK_NSEC_PER_SEC, guard_cb, rt);
    assert_int_equal(nk_rt_real_run(rt), NK_OK);
    assert_false(g_guard_fired);
    nk_rt_timer_cancel(rt, guard);
    assert_int_equal(dones, 2);
    assert_int_equal(j1.rc, NK_OK);
    assert_int_equal(j2.rc, NK_OK);

    uint64_t size = 0;
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(size, 2 * APPENDS * RECORD);
    /* Every record is whole: all 'a' or all 'b'. */
    char rec[RECORD];
    int na = 0, nb = 0;
    for (uint64_t off = 0; off < size; off += RECORD) {
        size_t n = 0;
        assert_int_equal(nk_rt_file_read_at(rt, f, off, rec, RECORD, &n), NK_OK);
        assert_int_equal(n, RECORD);
        for (int i = 1; i < RECORD; i++) {
            assert_int_equal(rec[i], rec[0]);
        }
        if (rec[0] == 'a') {
            na++;
        } else {
            assert_int_equal(rec[0], 'b');
            nb++;
        }
    }
    assert_int_equal(na, APPENDS);
    assert_int_equal(nb, APPENDS);
    assert_int_equal(nk_rt_file_close(rt, f), NK_OK);
}

static void test_errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(nk_posix_err(ENOENT), NK_ENOENT);
    assert_int_equal(nk_posix_err(EEXIST), NK_EEXIST);
    assert_int_equal(nk_posix_err(ENOSPC), NK_ENOSPC);
    assert_int_equal(nk_posix_err(ENOTDIR), NK_ENOTDIR);
    assert_int_equal(nk_posix_err(EISDIR), NK_EISDIR);
    assert_int_equal(nk_posix_err(ENOTEMPTY), NK_ENOTEMPTY);
    assert_int_equal(nk_posix_err(EIO), NK_EIO);
    /* Permission and read-only faults keep their cause: an operator must
     * see "permission denied", not an I/O error (issue 12). */
    assert_int_equal(nk_posix_err(EACCES), NK_EACCES);
    assert_int_equal(nk_posix_err(EROFS), NK_EROFS);
    assert_int_equal(nk_posix_err(EPERM), NK_EPERM);
    assert_int_equal(nk_posix_err(EMFILE), NK_EMFILE);
    assert_int_equal(nk_posix_err(ENFILE), NK_EMFILE);
    assert_string_equal(nk_strerror(NK_EACCES), "permission denied");
    assert_string_equal(nk_errname(NK_EROFS), "NK_EROFS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_append_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirs_sorted_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_from_jobs, setup, teardown),
        cmocka_unit_test(test_errno_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
