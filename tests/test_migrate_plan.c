/*
 * test_migrate_plan.c - `migrate plan` on the simulated runtime: eligible
 * workdirs get the exact next command, every blocker is reported, and not
 * one byte of the workdir changes (checked against a digest of every file).
 * Also the status/report view of a standalone and a preparing workdir.
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
#include "nokv/migrate/plan.h"
#include "nokv/migrate/status.h"
#include "nokv/store/localmeta.h"
#include "nokv/store/workdir.h"
#include "sim/disk.h"

static bool has_blocker(const nk_plan_result *r, const char *text)
{
    for (size_t i = 0; i < r->n_blockers; i++) {
        if (strstr(r->blockers[i], text) != NULL) {
            return true;
        }
    }
    return false;
}

/* plan, asserting it left every byte of dir as it was */
static void plan_ro(nk_rt *rt, const char *dir, nk_plan_result *r)
{
    nk_buf before = {0}, after = {0};
    msim_digest(rt, dir, &before);
    assert_int_equal(nk_migrate_plan(rt, dir, r), NK_OK);
    msim_digest(rt, dir, &after);
    assert_string_equal((char *)before.data, (char *)after.data);
    nk_buf_free(&before);
    nk_buf_free(&after);
}

static void test_eligible_and_read_only(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(1);
    nk_rt *rt = msim_rt();
    msim_fill(s, "/w", 200, 120);
    nk_plan_result *r = calloc(1, sizeof(*r));
    plan_ro(rt, "/w", r);
    assert_true(r->eligible);
    assert_int_equal(r->n_blockers, 0);
    assert_int_equal(r->mode, NK_MODE_STANDALONE);
    assert_true(r->table_files > 0);
    assert_true(r->wal_bytes > 0); /* the last 80 writes are only in the WAL */
    assert_string_equal(r->next, "nokv migrate init --workdir /w --store <store-id> --region "
                                 "<region-id> --peer <peer-id>");
    /* the JSON carries NoKV-Go's field names */
    json_t *j = nk_plan_json(r);
    assert_true(json_is_true(json_object_get(j, "eligible")));
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "standalone");
    assert_non_null(json_object_get(j, "local_catalog_regions"));
    assert_null(json_object_get(j, "blockers"));
    json_decref(j);
    /* a crash leaves nothing of plan behind either */
    nk_sim_node_crash(s, 1);
    nk_sim_node_start(s, 1);
    plan_ro(rt, "/w", r);
    assert_true(r->eligible);
    assert_int_equal(nk_migrate_plan(rt, "", r), NK_EINVAL);
    free(r);
    nk_sim_free(s);
}

static void test_blockers(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(2);
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    nk_plan_result *r = calloc(1, sizeof(*r));

    plan_ro(rt, "/", r); /* digest of an empty root: fine */
    assert_int_equal(nk_migrate_plan(rt, "/missing", r), NK_OK);
    assert_false(r->eligible);
    assert_true(has_blocker(r, "workdir not found: /missing"));
    assert_int_equal(r->next[0], '\0');

    assert_int_equal(nk_rt_dir_create(rt, "/empty"), NK_OK);
    plan_ro(rt, "/empty", r);
    assert_true(has_blocker(r, "manifest not found in /empty"));

    msim_fill(s, "/w", 50, 20);
    /* a running owner */
    nk_workdir *wd = NULL;
    assert_int_equal(nk_workdir_open(rt, "/w", NULL, &wd, &eb), NK_OK);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "is in use"));
    nk_workdir_close(wd);

    /* local catalog with a region */
    nk_localmeta m;
    nk_localmeta_init(&m);
    nk_region reg;
    nk_region_init_full(&reg, 3);
    nk_region_peer p = {1, 31, NK_RAFT_VOTER};
    nk_region_peer_set(&reg, &p);
    nk_localmeta_put(&m, &reg, NK_REGION_NORMAL);
    assert_int_equal(nk_localmeta_save(rt, "/w", &m, &eb), NK_OK);
    nk_localmeta_free(&m);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "local catalog already contains 1 region(s)"));
    assert_int_equal(r->local_catalog_regions, 1);
    assert_int_equal(nk_rt_remove(rt, "/w/LOCALMETA"), NK_OK);

    /* a raft log */
    assert_int_equal(nk_rt_dir_create(rt, "/w/raft"), NK_OK);
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(rt, "/w/raft/000001.rlog", NK_OPEN_WRITE | NK_OPEN_CREATE, &f),
                     NK_OK);
    nk_rt_file_close(rt, f);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "a raft log already exists"));
    assert_int_equal(nk_rt_remove(rt, "/w/raft/000001.rlog"), NK_OK);
    assert_int_equal(nk_rt_remove(rt, "/w/raft"), NK_OK);

    /* mode: preparing, then a damaged MODE.json */
    nk_mode_state prep = {NK_MODE_PREPARING, 1, 1, 101};
    assert_int_equal(nk_mode_write(rt, "/w", &prep, &eb), NK_OK);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "already in \"preparing\" mode"));
    assert_int_equal(nk_rt_file_open(rt, "/w/MODE.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f), NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "{}", 2), NK_OK);
    nk_rt_file_close(rt, f);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "MODE.json"));
    assert_int_equal(nk_rt_remove(rt, "/w/MODE.json"), NK_OK);

    /* a table the manifest lists is gone: the engine could not open */
    nk_names names = {0};
    assert_int_equal(nk_rt_dir_list(rt, "/w", &names), NK_OK);
    for (size_t i = 0; i < names.count; i++) {
        if (strstr(names.names[i], ".sst") != NULL) {
            char path[64];
            snprintf(path, sizeof(path), "/w/%s", names.names[i]);
            assert_int_equal(nk_rt_remove(rt, path), NK_OK);
            break;
        }
    }
    nk_names_free(&names);
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "engine recovery state is not coherent"));
    free(r);
    nk_sim_free(s);
}

static void test_reserved_keys_block(void **state)
{
    (void)state;
    for (int flush = 0; flush < 2; flush++) {
        nk_sim *s = msim_boot(10 + (uint64_t)flush);
        nk_rt *rt = msim_rt();
        msim_fill(s, "/w", 30, 10);
        /* just below the reserved range: fine */
        msim_put(s, "/w", "\xff\xff\xff\xff", 4, flush);
        nk_plan_result *r = calloc(1, sizeof(*r));
        plan_ro(rt, "/w", r);
        assert_true(r->eligible);
        /* inside it (in the WAL only, or in a table) */
        msim_put(s, "/w", "\xff\xff\xff\xffnokv/applied", 16, flush);
        plan_ro(rt, "/w", r);
        assert_false(r->eligible);
        assert_true(has_blocker(r, "reserves"));
        free(r);
        nk_sim_free(s);
    }
}

static void test_free_space_blocker(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(3);
    nk_rt *rt = msim_rt();
    msim_fill(s, "/w", 40, 20);
    nk_simdisk_faults f;
    memset(&f, 0, sizeof(f));
    f.capacity = 1u << 20; /* less than init's budget */
    nk_simdisk_set_faults(nk_sim_node_disk(s, 1), &f);
    nk_plan_result *r = calloc(1, sizeof(*r));
    plan_ro(rt, "/w", r);
    assert_true(has_blocker(r, "bytes free under /w"));
    assert_true(r->free_bytes < r->required_bytes);
    free(r);
    nk_sim_free(s);
}

static void test_status_and_report_local_view(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(4);
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    msim_fill(s, "/w", 40, 20);
    nk_report_result *rep = calloc(1, sizeof(*rep));
    assert_int_equal(nk_migrate_report(rt, "/w", rep, &eb), NK_OK);
    assert_string_equal(rep->stage, "standalone-ready");
    assert_true(rep->ready_for_init);
    assert_false(rep->ready_for_serve);
    assert_string_equal(rep->status.next, "nokv migrate plan --workdir /w");
    assert_non_null(strstr(rep->next_steps[0], "nokv migrate init --workdir /w"));

    /* interrupted init: preparing with a checkpoint */
    nk_mode_state prep = {NK_MODE_PREPARING, 1, 7, 101};
    assert_int_equal(nk_mode_write(rt, "/w", &prep, &eb), NK_OK);
    nk_checkpoint cp = {
        .stage = NK_STAGE_LOCAL_CATALOG_PERSISTED, .store_id = 1, .region_id = 7, .peer_id = 101};
    assert_int_equal(nk_checkpoint_write(rt, "/w", &cp, &eb), NK_OK);
    assert_int_equal(nk_migrate_report(rt, "/w", rep, &eb), NK_OK);
    assert_string_equal(rep->stage, "seed-preparing");
    assert_false(rep->ready_for_init);
    assert_string_equal(rep->resume_hint,
                        "re-run nokv migrate init to continue after local catalog persistence");
    assert_string_equal(rep->status.next,
                        "nokv migrate init --workdir /w --store 1 --region 7 --peer 101");
    json_t *j = nk_report_json(rep);
    assert_string_equal(json_string_value(json_object_get(j, "schema")), "nokv.migrate.report/v1");
    json_t *st = json_object_get(j, "status");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(st, "checkpoint"), "stage")),
        "local-catalog-persisted");
    assert_false(json_is_true(json_object_get(st, "seed_snapshot_present")));
    json_decref(j);
    nk_buf t = {0};
    nk_status_text(&rep->status, &t);
    nk_buf_append_u8(&t, 0);
    assert_non_null(strstr((char *)t.data, "Phase                local-catalog-persisted"));
    nk_buf_free(&t);

    /* a damaged checkpoint is a warning, a damaged MODE.json an error */
    nk_file *f = NULL;
    assert_int_equal(
        nk_rt_file_open(rt, "/w/MIGRATION_PROGRESS.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f),
        NK_OK);
    assert_int_equal(nk_rt_file_write_at(rt, f, 0, "{", 1), NK_OK);
    nk_rt_file_close(rt, f);
    nk_status_result *sr = calloc(1, sizeof(*sr));
    assert_int_equal(nk_migrate_status(rt, "/w", sr, &eb), NK_OK);
    assert_int_equal(sr->n_warnings, 1);
    assert_non_null(strstr(sr->warnings[0], "checkpoint unreadable"));
    assert_int_equal(nk_rt_file_open(rt, "/w/MODE.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f), NK_OK);
    nk_rt_file_close(rt, f);
    assert_int_equal(nk_migrate_status(rt, "/w", sr, &eb), NK_ECORRUPT);
    assert_int_equal(nk_migrate_status(rt, "/nope", sr, &eb), NK_ENOENT);
    free(sr);
    free(rep);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligible_and_read_only),
        cmocka_unit_test(test_blockers),
        cmocka_unit_test(test_reserved_keys_block),
        cmocka_unit_test(test_free_space_blocker),
        cmocka_unit_test(test_status_and_report_local_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
