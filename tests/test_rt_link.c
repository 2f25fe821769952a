/*
 * test_rt_link.c - nk_rt_link, the hard link, on both backends: the
 * simulated disk (shared inode, durability of the new entry only after a
 * dir sync, removal of one name keeps the data) and the real one (real
 * files under a fresh mkdtemp directory), plus nk_rt_fs_avail and the
 * side-effect-free lock probe nk_rt_dir_lock_held.
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
#include "nokv/rt.h"
#include "sim/disk.h"

/* ------------------------------------------------------------ sim disk --- */

static nk_simdisk *new_disk(uint64_t seed)
{
    nk_rand r;
    nk_rand_derive(&r, seed, "disk", 1);
    nk_simdisk *d = nk_simdisk_new(0, &r);
    assert_non_null(d);
    return d;
}

static void crash(nk_simdisk *d, uint64_t seed, const nk_simdisk_crash_policy *p)
{
    nk_rand r;
    nk_rand_derive(&r, seed, "crash", 1);
    nk_simdisk_crash(d, &r, p, NULL);
}

static void put(nk_simdisk *d, const char *path, const char *text)
{
    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, text, strlen(text)), NK_OK);
    assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
    nk_simdisk_close(d, f);
}

static void expect(nk_simdisk *d, const char *path, const char *text)
{
    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, path, NK_OPEN_READ, &f), NK_OK);
    char buf[128] = {0};
    size_t got = 0;
    assert_int_equal(nk_simdisk_read_at(d, f, 0, buf, sizeof(buf) - 1, &got), NK_OK);
    nk_simdisk_close(d, f);
    assert_string_equal(buf, text);
}

static bool exists(nk_simdisk *d, const char *path)
{
    nk_stat st;
    return nk_simdisk_stat(d, path, &st) == NK_OK;
}

static void test_sim_link_shares_the_inode(void **state)
{
    (void)state;
    nk_simdisk *d = new_disk(1);
    assert_int_equal(nk_simdisk_dir_create(d, "/a"), NK_OK);
    assert_int_equal(nk_simdisk_dir_create(d, "/b"), NK_OK);
    put(d, "/a/f", "hello");
    assert_int_equal(nk_simdisk_link(d, "/a/f", "/b/g"), NK_OK);
    expect(d, "/b/g", "hello");
    /* a write through one name is seen through the other */
    nk_simfile *f;
    assert_int_equal(nk_simdisk_open(d, "/b/g", NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_simdisk_write_at(d, f, 0, "J", 1), NK_OK);
    nk_simdisk_close(d, f);
    expect(d, "/a/f", "Jello");
    /* removing one name keeps the data for the other */
    assert_int_equal(nk_simdisk_remove(d, "/a/f"), NK_OK);
    expect(d, "/b/g", "Jello");
    /* errors */
    assert_int_equal(nk_simdisk_link(d, "/a/f", "/b/h"), NK_ENOENT);
    assert_int_equal(nk_simdisk_link(d, "/b/g", "/b/g"), NK_EEXIST);
    assert_int_equal(nk_simdisk_link(d, "/a", "/b/dir"), NK_EISDIR);
    assert_int_equal(nk_simdisk_link(d, "/b/g", "/nodir/x"), NK_ENOENT);
    /* the lock probe creates nothing */
    bool held = true;
    assert_int_equal(nk_simdisk_dir_lock_held(d, "/b", &held), NK_OK);
    assert_false(held);
    assert_false(exists(d, "/b/LOCK"));
    nk_simlock *lk = NULL;
    assert_int_equal(nk_simdisk_dir_lock(d, "/b", &lk), NK_OK);
    assert_int_equal(nk_simdisk_dir_lock_held(d, "/b", &held), NK_OK);
    assert_true(held);
    nk_simdisk_dir_unlock(d, lk);
    assert_int_equal(nk_simdisk_dir_lock_held(d, "/b", &held), NK_OK);
    assert_false(held);
    assert_int_equal(nk_simdisk_dir_lock_held(d, "/b/g", &held), NK_ENOTDIR);
    uint64_t avail = 0;
    assert_int_equal(nk_simdisk_fs_avail(d, "/b", &avail), NK_OK);
    assert_int_equal(avail, UINT64_MAX);
    assert_int_equal(nk_simdisk_fs_avail(d, "/zz", &avail), NK_ENOENT);
    nk_simdisk_free(d);
}

static void test_sim_link_durable_only_after_dir_sync(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        nk_simdisk *d = new_disk(seed);
        assert_int_equal(nk_simdisk_dir_create(d, "/a"), NK_OK);
        assert_int_equal(nk_simdisk_dir_create(d, "/b"), NK_OK);
        put(d, "/a/f", "data");
        assert_int_equal(nk_simdisk_dir_sync(d, "/"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/a"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/b"), NK_OK);
        /* not dir-synced: a crash that drops pending entries loses the link,
         * never the original */
        assert_int_equal(nk_simdisk_link(d, "/a/f", "/b/g"), NK_OK);
        crash(d, seed, &nk_simdisk_crash_drop_all);
        assert_false(exists(d, "/b/g"));
        expect(d, "/a/f", "data");
        /* dir-synced: it survives any crash, and so does the shared data */
        assert_int_equal(nk_simdisk_link(d, "/a/f", "/b/g"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/b"), NK_OK);
        assert_int_equal(nk_simdisk_remove(d, "/a/f"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/a"), NK_OK);
        crash(d, seed, &nk_simdisk_crash_chaos);
        assert_false(exists(d, "/a/f"));
        expect(d, "/b/g", "data");
        /* data synced through the second name is durable for the first */
        assert_int_equal(nk_simdisk_link(d, "/b/g", "/a/f"), NK_OK);
        assert_int_equal(nk_simdisk_dir_sync(d, "/a"), NK_OK);
        nk_simfile *f;
        assert_int_equal(nk_simdisk_open(d, "/b/g", NK_OPEN_WRITE, &f), NK_OK);
        assert_int_equal(nk_simdisk_write_at(d, f, 0, "DATA", 4), NK_OK);
        assert_int_equal(nk_simdisk_file_sync(d, f), NK_OK);
        nk_simdisk_close(d, f);
        crash(d, seed + 100, &nk_simdisk_crash_chaos);
        expect(d, "/a/f", "DATA");
        expect(d, "/b/g", "DATA");
        nk_simdisk_free(d);
    }
}

/* ----------------------------------------------------------- real disk --- */

static void test_real_link(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/nokv-test-link-XXXXXX");
    assert_non_null(mkdtemp(dir));
    nk_rt_real_config cfg = {.seed = 1, .seed_given = true, .log_level = NK_LOG_WARN};
    nk_rt *rt = NULL;
    assert_int_equal(nk_rt_real_new(&cfg, &rt), NK_OK);
    char a[128], b[128], sub[128];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(b, sizeof(b), "%s/sub/b", dir);
    assert_int_equal(nk_rt_dir_create(rt, sub), NK_OK);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, a, NK_OPEN_WRITE | NK_OPEN_CREATE, &f), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "hello", 5), NK_OK);
    nk_rt_file_close(rt, f);
    assert_int_equal(nk_rt_link(rt, a, b), NK_OK);
    assert_int_equal(nk_rt_dir_sync(rt, sub), NK_OK);
    assert_int_equal(nk_rt_link(rt, a, b), NK_EEXIST);
    assert_int_equal(nk_rt_link(rt, sub, a), NK_EEXIST);
    char c[128];
    snprintf(c, sizeof(c), "%s/c", dir);
    assert_int_equal(nk_rt_link(rt, sub, c), NK_EISDIR);
    snprintf(c, sizeof(c), "%s/missing", dir);
    assert_int_equal(nk_rt_link(rt, c, b), NK_ENOENT);
    /* shared data: write via b, read via a; remove a, b keeps it */
    assert_int_equal(nk_rt_file_open(rt, b, NK_OPEN_WRITE, &f), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "J", 1), NK_OK);
    nk_rt_file_close(rt, f);
    assert_int_equal(nk_rt_remove(rt, a), NK_OK);
    char buf[16] = {0};
    size_t got = 0;
    assert_int_equal(nk_rt_file_open(rt, b, NK_OPEN_READ, &f), NK_OK);
    assert_int_equal(nk_rt_file_read_at(rt, f, 0, buf, sizeof(buf) - 1, &got), NK_OK);
    nk_rt_file_close(rt, f);
    assert_string_equal(buf, "Jello");
    uint64_t avail = 0;
    assert_int_equal(nk_rt_fs_avail(rt, dir, &avail), NK_OK);
    assert_true(avail > 0);
    /* lock probe: no LOCK file is created, a held lock is seen */
    bool held = true;
    assert_int_equal(nk_rt_dir_lock_held(rt, sub, &held), NK_OK);
    assert_false(held);
    char lockp[160];
    snprintf(lockp, sizeof(lockp), "%s/LOCK", sub);
    nk_stat lst;
    assert_int_equal(nk_rt_stat(rt, lockp, &lst), NK_ENOENT);
    nk_dirlock *lk = NULL;
    assert_int_equal(nk_rt_dir_lock(rt, sub, &lk), NK_OK);
    assert_int_equal(nk_rt_dir_lock_held(rt, sub, &held), NK_OK);
    assert_true(held);
    nk_rt_dir_unlock(rt, lk);
    assert_int_equal(nk_rt_dir_lock_held(rt, sub, &held), NK_OK);
    assert_false(held);
    assert_int_equal(nk_rt_remove(rt, lockp), NK_OK);
    assert_int_equal(nk_rt_remove(rt, b), NK_OK);
    assert_int_equal(nk_rt_remove(rt, sub), NK_OK);
    assert_int_equal(nk_rt_remove(rt, dir), NK_OK);
    nk_rt_real_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_link_shares_the_inode),
        cmocka_unit_test(test_sim_link_durable_only_after_dir_sync),
        cmocka_unit_test(test_real_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
