/*
 * test_store_workdir.c - the workdir layer above the engine: one owner (the
 * LOCK), the mode gate with the stage and resume hint in its refusal, and an
 * engine that no longer knows about either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/engine/db.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/store/workdir.h"
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

static const nk_sim_app app = {"workdir-test", app_start, app_stop};

static nk_sim *boot(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    nk_sim_add_node(s, "n1", &app, NULL, NULL);
    nk_sim_node_start(s, 1);
    return s;
}

static void test_one_owner_at_a_time(void **state)
{
    (void)state;
    nk_sim *s = boot(1);
    nk_errbuf eb;
    nk_workdir *a = NULL, *b = NULL;
    nk_workdir_options no_create = {0, false};
    assert_int_equal(nk_workdir_open(g_rt, "/w", &no_create, &a, &eb), NK_ENOENT);
    assert_non_null(strstr(eb.msg, "/w does not exist"));
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &a, &eb), NK_OK);
    assert_string_equal(nk_workdir_path(a), "/w");
    assert_int_equal(nk_workdir_mode(a)->mode, NK_MODE_STANDALONE);
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &b, &eb), NK_EBUSY);
    assert_non_null(strstr(eb.msg, "in use"));
    assert_null(b);
    nk_workdir_close(a);
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &b, &eb), NK_OK);
    nk_workdir_close(b);
    /* the created directory itself is durable */
    nk_sim_node_crash(s, 1);
    nk_sim_node_start(s, 1);
    nk_stat st;
    assert_int_equal(nk_rt_stat(g_rt, "/w", &st), NK_OK);
    assert_true(st.is_dir);
    nk_sim_free(s);
}

static void test_preparing_refusal_names_stage_and_hint(void **state)
{
    (void)state;
    nk_sim *s = boot(2);
    nk_errbuf eb;
    nk_workdir *w = NULL;
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &w, &eb), NK_OK);
    nk_mode_state prep = {NK_MODE_PREPARING, 1, 1, 101};
    assert_int_equal(nk_workdir_set_mode(w, &prep, &eb), NK_OK);
    nk_checkpoint cp = {
        .stage = NK_STAGE_SEED_SNAPSHOT_EXPORTED, .store_id = 1, .region_id = 1, .peer_id = 101};
    assert_int_equal(nk_checkpoint_write(g_rt, "/w", &cp, &eb), NK_OK);
    nk_workdir_close(w);

    /* standalone open (the embedded API, plain serve) is refused ... */
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &w, &eb), NK_EMODE);
    assert_null(w);
    assert_non_null(strstr(eb.msg, "\"preparing\""));
    assert_non_null(strstr(eb.msg, "seed-snapshot-exported"));
    assert_non_null(strstr(eb.msg, "re-run nokv migrate init to continue after seed snapshot "
                                   "export"));
    assert_non_null(strstr(eb.msg, "nokv migrate init --workdir /w --store 1 --region 1 --peer "
                                   "101"));
    /* ... so is serve, which accepts seeded and cluster but never preparing */
    nk_workdir_options serve = {NK_WORKDIR_SERVE_MODES, false};
    assert_int_equal(nk_workdir_open(g_rt, "/w", &serve, &w, &eb), NK_EMODE);
    /* the refusal released the lock: migrate init can own it */
    nk_workdir_options init = {NK_MODE_BIT(NK_MODE_PREPARING), false};
    assert_int_equal(nk_workdir_open(g_rt, "/w", &init, &w, &eb), NK_OK);
    assert_int_equal(nk_workdir_mode(w)->peer_id, 101);
    nk_workdir_close(w);

    /* no checkpoint at all still gives a hint */
    assert_int_equal(nk_rt_remove(g_rt, "/w/" NK_CHECKPOINT_FILE), NK_OK);
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &w, &eb), NK_EMODE);
    assert_non_null(strstr(eb.msg, "none recorded"));
    assert_non_null(strstr(eb.msg, "re-run nokv migrate init"));
    nk_sim_free(s);
}

static void test_seeded_refused_standalone_accepted_by_serve(void **state)
{
    (void)state;
    nk_sim *s = boot(3);
    nk_errbuf eb;
    nk_workdir *w = NULL;
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &w, &eb), NK_OK);
    nk_mode_state seeded = {NK_MODE_SEEDED, 7, 1, 101};
    assert_int_equal(nk_workdir_set_mode(w, &seeded, &eb), NK_OK);
    nk_checkpoint cp = {.stage = NK_STAGE_SEEDED_FINALIZED, .store_id = 7};
    assert_int_equal(nk_checkpoint_write(g_rt, "/w", &cp, &eb), NK_OK);
    nk_workdir_close(w);
    assert_int_equal(nk_workdir_open(g_rt, "/w", NULL, &w, &eb), NK_EMODE);
    assert_non_null(strstr(eb.msg, "\"seeded\""));
    assert_non_null(strstr(eb.msg, "seeded-finalized"));
    assert_non_null(strstr(eb.msg, "--store-id 7 --coordinator-addr"));
    nk_workdir_options serve = {NK_WORKDIR_SERVE_MODES, false};
    assert_int_equal(nk_workdir_open(g_rt, "/w", &serve, &w, &eb), NK_OK);
    nk_workdir_close(w);

    /* a damaged MODE.json is corruption, never "standalone" */
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(g_rt, "/w/MODE.json", NK_OPEN_WRITE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_write_at(g_rt, f, 0, "{\"mode\":\"standalone\"}", 21), NK_OK);
    nk_rt_file_close(g_rt, f);
    assert_int_equal(nk_workdir_open(g_rt, "/w", &serve, &w, &eb), NK_ECORRUPT);
    nk_sim_free(s);
}

static void test_engine_knows_nothing_about_modes(void **state)
{
    (void)state;
    nk_sim *s = boot(4);
    nk_errbuf eb;
    nk_workdir *w = NULL;
    nk_workdir_options init = {NK_WORKDIR_ANY_MODE, true};
    assert_int_equal(nk_workdir_open(g_rt, "/w", &init, &w, &eb), NK_OK);
    nk_mode_state prep = {NK_MODE_PREPARING, 1, 1, 101};
    assert_int_equal(nk_workdir_set_mode(w, &prep, &eb), NK_OK);
    /* the owner (migrate init) opens the engine of a preparing workdir */
    nk_db_options o;
    nk_db_options_default(&o);
    nk_db *db = NULL;
    assert_int_equal(nk_db_open(g_rt, "/w", &o, &db, &eb), NK_OK);
    nk_db_abandon(db);
    nk_workdir_close(w);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_owner_at_a_time),
        cmocka_unit_test(test_preparing_refusal_names_stage_and_hint),
        cmocka_unit_test(test_seeded_refused_standalone_accepted_by_serve),
        cmocka_unit_test(test_engine_knows_nothing_about_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
