/*
 * test_migrate_seedsnap.c - the seed snapshot by hard links: export shares
 * the engine's tables (no copy), SNAPSHOT.json round-trips, and a damaged
 * file, a wrong checksum, a path in a file name, a missing or truncated
 * file are all refused with the file named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/migrate_sim.h"
#include "nokv/engine/inspect.h"
#include "nokv/migrate/seedsnap.h"
#include "nokv/util/jsonfile.h"

static void export_w(nk_sim *s, nk_seedsnap *snap)
{
    nk_rt *rt = msim_rt();
    msim_fill(s, "/w", 120, 120);
    nk_db_inspect ins;
    nk_errbuf eb;
    assert_int_equal(nk_db_inspect_dir(rt, "/w", &ins, &eb), NK_OK);
    assert_true(ins.n_files > 0);
    nk_region r;
    nk_region_init_full(&r, 1);
    nk_region_peer p = {1, 101, NK_RAFT_VOTER};
    nk_region_peer_set(&r, &p);
    assert_int_equal(nk_seedsnap_export(rt, "/w", &r, 5, 5, ins.last_sequence, ins.files,
                                        ins.n_files, snap, &eb),
                     NK_OK);
    assert_int_equal(snap->n_files, ins.n_files);
    assert_int_equal(snap->total_bytes, ins.table_bytes);
    nk_db_inspect_free(&ins);
}

static void test_export_links_and_round_trip(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(1);
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    nk_seedsnap snap, got;
    export_w(s, &snap);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_OK);
    assert_int_equal(got.n_files, snap.n_files);
    assert_int_equal(got.raft_index, 5);
    assert_int_equal(got.region.peers[0].peer_id, 101);
    for (size_t i = 0; i < got.n_files; i++) {
        assert_string_equal(got.files[i].name, snap.files[i].name);
        assert_int_equal(got.files[i].xxh64, snap.files[i].xxh64);
    }
    assert_int_equal(nk_seedsnap_check_files(rt, "/w", &got, true, &eb), NK_OK);

    /* a link, not a copy: the engine's name and the snapshot's share data */
    char a[64], b[96];
    snprintf(a, sizeof(a), "/w/%s", got.files[0].name);
    snprintf(b, sizeof(b), "/w/seed-snapshot/%s", got.files[0].name);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, a, NK_OPEN_WRITE, &f), NK_OK);
    uint8_t x = 0;
    size_t n = 0;
    assert_int_equal(nk_rt_file_read_at(rt, f, 10, &x, 1, &n), NK_OK);
    x ^= 0xff;
    assert_int_equal(nk_rt_file_write_at(rt, f, 10, &x, 1), NK_OK);
    nk_rt_file_close(rt, f);
    /* ... so a damaged byte is caught by the checksum, with the file named */
    assert_int_equal(nk_seedsnap_check_files(rt, "/w", &got, false, &eb), NK_OK);
    assert_int_equal(nk_seedsnap_check_files(rt, "/w", &got, true, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, b));
    /* removing the engine's name keeps the snapshot's data */
    assert_int_equal(nk_rt_remove(rt, a), NK_OK);
    nk_stat st;
    assert_int_equal(nk_rt_stat(rt, b, &st), NK_OK);
    assert_int_equal(st.size, got.files[0].size);
    /* a missing snapshot file */
    assert_int_equal(nk_rt_remove(rt, b), NK_OK);
    assert_int_equal(nk_seedsnap_check_files(rt, "/w", &got, false, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "missing"));
    nk_seedsnap_free(&got);
    nk_seedsnap_free(&snap);
    nk_sim_free(s);
}

static void rewrite_meta(nk_rt *rt, json_t *o)
{
    nk_errbuf eb;
    assert_int_equal(nk_jsonfile_write(rt, "/w/seed-snapshot", "SNAPSHOT.json", o, NULL, &eb),
                     NK_OK);
}

static void test_bad_metadata_is_refused(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(2);
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    nk_seedsnap snap, got;
    export_w(s, &snap);
    json_t *o = NULL;
    assert_int_equal(nk_jsonfile_read(rt, "/w/seed-snapshot/SNAPSHOT.json", 1 << 20, &o, &eb),
                     NK_OK);

    /* path traversal in a file name, even with a valid checksum */
    static const char *const bad_names[] = {"../000001.sst", "/etc/passwd", "000001.sst/x", "x.sst",
                                            ""};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        json_t *c = json_deep_copy(o);
        json_t *f0 = json_array_get(json_object_get(c, "files"), 0);
        json_object_set_new(f0, "name", json_string(bad_names[i]));
        rewrite_meta(rt, c);
        json_decref(c);
        assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ECORRUPT);
        assert_non_null(strstr(eb.msg, "NNNNNN.sst"));
    }
    /* sizes that do not add up, an unknown format */
    json_t *c = json_deep_copy(o);
    json_object_set_new(c, "total_bytes", json_integer(1));
    rewrite_meta(rt, c);
    json_decref(c);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ECORRUPT);
    c = json_deep_copy(o);
    json_object_set_new(c, "format", json_integer(2));
    rewrite_meta(rt, c);
    json_decref(c);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ECORRUPT);

    /* a hand edit without the checksum; a truncated file */
    rewrite_meta(rt, o);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_OK);
    nk_seedsnap_free(&got);
    nk_buf raw = {0};
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, "/w/seed-snapshot/SNAPSHOT.json", NK_OPEN_WRITE, &f),
                     NK_OK);
    uint64_t size = 0;
    assert_int_equal(nk_rt_file_size(rt, f, &size), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 12, "9", 1), NK_OK);
    nk_rt_file_close(rt, f);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "SNAPSHOT.json"));
    assert_int_equal(nk_rt_file_open(rt, "/w/seed-snapshot/SNAPSHOT.json", NK_OPEN_WRITE, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_truncate(rt, f, size / 2), NK_OK);
    nk_rt_file_close(rt, f);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ECORRUPT);
    nk_buf_free(&raw);

    /* no SNAPSHOT.json at all: an incomplete export, not a corrupt one */
    assert_int_equal(nk_seedsnap_remove(rt, "/w", &eb), NK_OK);
    assert_int_equal(nk_seedsnap_load(rt, "/w", &got, &eb), NK_ENOENT);
    json_decref(o);
    nk_seedsnap_free(&snap);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_links_and_round_trip),
        cmocka_unit_test(test_bad_metadata_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
