/*
 * test_migrate_checkpoint.c - MIGRATION_PROGRESS.json: the 12 stage names,
 * round trip, absence, corruption, crash safety of the write, the resume
 * hint table, and the UTC formatter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/migrate/checkpoint.h"
#include "sim/sim.h"

static nk_rt *g_rt;

static int app_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    g_rt = rt;
    *state = rt;
    return NK_OK;
}

static void app_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app app = {"checkpoint-test", app_start, app_stop};

static nk_sim *boot(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    nk_sim_add_node(s, "n1", &app, NULL, NULL);
    nk_sim_node_start(s, 1);
    assert_int_equal(nk_rt_dir_create(g_rt, "/w"), NK_OK);
    assert_int_equal(nk_rt_dir_sync(g_rt, "/"), NK_OK);
    return s;
}

static void test_stage_names_are_the_go_surface(void **state)
{
    (void)state;
    static const char *const want[] = {
        "mode-preparing-written",   "local-catalog-persisted", "seed-snapshot-exported",
        "raft-seed-initialized",    "seeded-finalized",        "expand-rollout-started",
        "expand-target-pending",    "expand-target-hosted",    "transfer-leader-started",
        "transfer-leader-finished", "remove-peer-started",     "remove-peer-finished",
    };
    assert_int_equal(sizeof(want) / sizeof(want[0]), 12);
    for (unsigned i = 0; i < 12; i++) {
        assert_string_equal(nk_stage_name((nk_stage)(i + 1)), want[i]);
        nk_stage st;
        assert_int_equal(nk_stage_parse(want[i], &st), NK_OK);
        assert_int_equal(st, i + 1);
    }
    nk_stage st;
    assert_int_equal(nk_stage_parse("", &st), NK_EINVAL);
    assert_int_equal(nk_stage_parse("seeded", &st), NK_EINVAL);
    assert_string_equal(nk_stage_name(NK_STAGE_NONE), "");
}

static void test_round_trip_absent_and_corrupt(void **state)
{
    (void)state;
    nk_sim *s = boot(1);
    nk_errbuf eb;
    nk_checkpoint cp, got;
    assert_int_equal(nk_checkpoint_read(g_rt, "/w", &got, &eb), NK_ENOENT);
    assert_int_equal(got.stage, NK_STAGE_NONE);

    memset(&cp, 0, sizeof(cp));
    assert_int_equal(nk_checkpoint_write(g_rt, "/w", &cp, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, "stage is required"));

    cp.stage = NK_STAGE_EXPAND_TARGET_HOSTED;
    cp.region_id = 1;
    cp.target_store_id = 2;
    cp.target_peer_id = 201;
    cp.completed_targets = 1;
    cp.total_targets = 2;
    assert_int_equal(nk_checkpoint_write(g_rt, "/w", &cp, &eb), NK_OK);
    assert_int_equal(strlen(cp.updated_at), 20);
    assert_int_equal(nk_checkpoint_read(g_rt, "/w", &got, &eb), NK_OK);
    assert_int_equal(got.stage, cp.stage);
    assert_int_equal(got.store_id, 0);
    assert_int_equal(got.region_id, 1);
    assert_int_equal(got.target_store_id, 2);
    assert_int_equal(got.target_peer_id, 201);
    assert_int_equal(got.completed_targets, 1);
    assert_int_equal(got.total_targets, 2);
    assert_string_equal(got.updated_at, cp.updated_at);

    /* the file is the documented JSON: keys sorted, ids omitted when 0 */
    nk_file *f = NULL;
    char buf[1024] = {0};
    size_t n = 0;
    assert_int_equal(nk_rt_file_open(g_rt, "/w/MIGRATION_PROGRESS.json", NK_OPEN_READ, &f), NK_OK);
    assert_int_equal(nk_rt_file_read_at(g_rt, f, 0, buf, sizeof(buf) - 1, &n), NK_OK);
    nk_rt_file_close(g_rt, f);
    assert_non_null(strstr(buf, "{\"completed_targets\":1,\"format\":1,\"region_id\":1,"
                                "\"stage\":\"expand-target-hosted\",\"target_peer_id\":201,"));
    assert_null(strstr(buf, "store_id\":0"));

    /* a hand edit of the stage is caught by the checksum */
    char *p = strstr(buf, "expand-target-hosted");
    memcpy(p, "expand-target-pendin", 20); /* same length, different text */
    assert_int_equal(
        nk_rt_file_open(g_rt, "/w/MIGRATION_PROGRESS.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f),
        NK_OK);
    assert_int_equal(nk_rt_file_write_at(g_rt, f, 0, buf, n), NK_OK);
    nk_rt_file_close(g_rt, f);
    assert_int_equal(nk_checkpoint_read(g_rt, "/w", &got, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "MIGRATION_PROGRESS.json"));
    assert_int_equal(got.stage, NK_STAGE_NONE);

    static const char *const bad[] = {
        "{nope",
        "[1]",
        "{\"format\":2,\"stage\":\"seeded-finalized\",\"updated_at\":\"x\",\"xxh64\":\"0\"}",
        "{\"format\":1,\"stage\":\"bogus\",\"updated_at\":\"x\",\"xxh64\":\"0\"}",
        "{\"format\":1,\"stage\":\"seeded-finalized\",\"updated_at\":\"x\",\"xxh64\":\"0\"}",
        "{\"format\":1,\"region_id\":-1,\"stage\":\"seeded-finalized\",\"updated_at\":\"x\","
        "\"xxh64\":\"0\"}",
        "{\"extra\":1,\"format\":1,\"stage\":\"seeded-finalized\",\"updated_at\":\"x\","
        "\"xxh64\":\"0\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            nk_rt_file_open(g_rt, "/w/MIGRATION_PROGRESS.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f),
            NK_OK);
        assert_int_equal(nk_rt_file_write_at(g_rt, f, 0, bad[i], strlen(bad[i])), NK_OK);
        nk_rt_file_close(g_rt, f);
        assert_int_equal(nk_checkpoint_read(g_rt, "/w", &got, &eb), NK_ECORRUPT);
    }
    nk_sim_free(s);
}

static void test_crash_during_write_keeps_old_or_new(void **state)
{
    (void)state;
    static const char *const fps[] = {"checkpoint.write.after_tmp",
                                      "checkpoint.write.after_rename"};
    for (int which = 0; which < 2; which++) {
        int saw_old = 0, saw_new = 0;
        for (uint64_t seed = 1; seed <= 20; seed++) {
            nk_sim *s = boot(seed * 7 + (uint64_t)which);
            nk_errbuf eb;
            nk_checkpoint a = {.stage = NK_STAGE_LOCAL_CATALOG_PERSISTED, .store_id = 1};
            nk_checkpoint b = {.stage = NK_STAGE_SEED_SNAPSHOT_EXPORTED, .store_id = 1};
            assert_int_equal(nk_checkpoint_write(g_rt, "/w", &a, &eb), NK_OK);
            nk_sim_failpoint_arm(s, 1, fps[which], NK_SIM_FP_CRASH, 1, (nk_ratio){0, 0});
            assert_int_equal(nk_checkpoint_write(g_rt, "/w", &b, &eb), NK_ECRASHED);
            nk_sim_node_start(s, 1);
            nk_checkpoint got;
            assert_int_equal(nk_checkpoint_read(g_rt, "/w", &got, &eb), NK_OK);
            assert_true(got.stage == a.stage || got.stage == b.stage);
            saw_old += got.stage == a.stage;
            saw_new += got.stage == b.stage;
            nk_sim_free(s);
        }
        assert_true(saw_old > 0);
        if (which == 0) {
            assert_int_equal(saw_new, 0);
        } else {
            assert_true(saw_new > 0);
        }
    }
}

static void hint(nk_mode mode, nk_stage st, const char *want)
{
    nk_checkpoint cp = {.stage = st,
                        .target_store_id = 3,
                        .target_peer_id = 301,
                        .completed_targets = 1,
                        .total_targets = 2};
    char out[256];
    nk_resume_hint(mode, st == NK_STAGE_NONE ? NULL : &cp, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_resume_hints(void **state)
{
    (void)state;
    const nk_mode P = NK_MODE_PREPARING, S = NK_MODE_SEEDED, C = NK_MODE_CLUSTER;
    hint(P, NK_STAGE_MODE_PREPARING_WRITTEN,
         "re-run nokv migrate init to continue after the mode gate was written");
    hint(P, NK_STAGE_LOCAL_CATALOG_PERSISTED,
         "re-run nokv migrate init to continue after local catalog persistence");
    hint(P, NK_STAGE_SEED_SNAPSHOT_EXPORTED,
         "re-run nokv migrate init to continue after seed snapshot export");
    hint(P, NK_STAGE_RAFT_SEED_INITIALIZED, "re-run nokv migrate init to finalize seeded mode");
    /* preparing without a checkpoint: only the gate is known to be written */
    hint(P, NK_STAGE_NONE, "re-run nokv migrate init to continue after the mode gate was written");
    hint(P, NK_STAGE_SEEDED_FINALIZED, "");
    hint(S, NK_STAGE_SEEDED_FINALIZED, "local standalone-to-seed promotion already completed");
    hint(C, NK_STAGE_EXPAND_ROLLOUT_STARTED,
         "re-run nokv migrate expand to continue the recorded rollout");
    hint(C, NK_STAGE_EXPAND_TARGET_PENDING,
         "re-run nokv migrate expand to continue peer rollout toward store=3 peer=301");
    hint(C, NK_STAGE_EXPAND_TARGET_HOSTED,
         "expand rollout has completed 1/2 target(s); continue with nokv migrate expand or the "
         "next membership step");
    hint(C, NK_STAGE_TRANSFER_LEADER_STARTED,
         "re-run nokv migrate transfer-leader to continue leadership movement toward peer=301");
    hint(C, NK_STAGE_TRANSFER_LEADER_FINISHED,
         "leader transfer toward peer=301 completed; continue with the next membership step");
    hint(C, NK_STAGE_REMOVE_PEER_STARTED,
         "re-run nokv migrate remove-peer to continue removal of peer=301");
    hint(S, NK_STAGE_REMOVE_PEER_FINISHED,
         "peer removal for peer=301 completed; continue with the next migration step");
    hint(S, NK_STAGE_RAFT_SEED_INITIALIZED, "");
    hint(NK_MODE_STANDALONE, NK_STAGE_SEEDED_FINALIZED, "");
    hint(NK_MODE_STANDALONE, NK_STAGE_NONE, "");
    hint(S, NK_STAGE_NONE, "");
}

static void test_utc_format(void **state)
{
    (void)state;
    char out[32];
    nk_format_utc(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    nk_format_utc(UINT64_C(951782400) * NK_NSEC_PER_SEC, out, sizeof(out));
    assert_string_equal(out, "2000-02-29T00:00:00Z"); /* leap day of a 400-year leap */
    nk_format_utc(UINT64_C(1796409599) * NK_NSEC_PER_SEC + 999, out, sizeof(out));
    assert_string_equal(out, "2026-12-04T18:39:59Z");
    nk_format_utc(UINT64_C(4107542400) * NK_NSEC_PER_SEC, out, sizeof(out));
    assert_string_equal(out, "2100-03-01T00:00:00Z"); /* 2100 is not a leap year */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_names_are_the_go_surface),
        cmocka_unit_test(test_round_trip_absent_and_corrupt),
        cmocka_unit_test(test_crash_during_write_keeps_old_or_new),
        cmocka_unit_test(test_resume_hints),
        cmocka_unit_test(test_utc_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
