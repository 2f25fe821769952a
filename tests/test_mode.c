/* test_mode.c - MODE.json: round trip, absence, corruption, the open gate,
 * and crash safety of the write protocol (on the simulated disk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/migrate/mode.h"
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

static const nk_sim_app app = {"mode-test", app_start, app_stop};

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

static void test_absent_means_standalone_and_round_trip(void **state)
{
    (void)state;
    nk_sim *s = boot(1);
    nk_errbuf eb;
    nk_mode_state st;
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_OK);
    assert_int_equal(st.mode, NK_MODE_STANDALONE);
    assert_int_equal(nk_mode_check(&st, 0, "/w", &eb), NK_OK);

    nk_mode_state w = {NK_MODE_SEEDED, 1, 1, 101};
    assert_int_equal(nk_mode_write(g_rt, "/w", &w, &eb), NK_OK);
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_OK);
    assert_int_equal(st.mode, NK_MODE_SEEDED);
    assert_int_equal(st.store_id, 1);
    assert_int_equal(st.region_id, 1);
    assert_int_equal(st.peer_id, 101);
    nk_sim_free(s);
}

static void test_gate_refuses_with_next_step(void **state)
{
    (void)state;
    nk_errbuf eb;
    nk_mode_state prep = {NK_MODE_PREPARING, 1, 1, 101};
    assert_int_equal(nk_mode_check(&prep, 0, "./data", &eb), NK_EMODE);
    assert_non_null(strstr(eb.msg, "\"preparing\""));
    assert_non_null(strstr(eb.msg, "nokv migrate status --workdir ./data"));
    nk_mode_state seeded = {NK_MODE_SEEDED, 7, 1, 101};
    assert_int_equal(nk_mode_check(&seeded, 0, "./data", &eb), NK_EMODE);
    assert_non_null(strstr(eb.msg, "--coordinator-addr"));
    /* serve accepts standalone, seeded and cluster, never preparing */
    unsigned serve = NK_MODE_BIT(NK_MODE_STANDALONE) | NK_MODE_BIT(NK_MODE_SEEDED) |
                     NK_MODE_BIT(NK_MODE_CLUSTER);
    assert_int_equal(nk_mode_check(&seeded, serve, "./data", &eb), NK_OK);
    assert_int_equal(nk_mode_check(&prep, serve, "./data", &eb), NK_EMODE);
}

static void write_raw(const char *text)
{
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(g_rt, "/w/MODE.json",
                                     NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f),
                     NK_OK);
    assert_int_equal(nk_rt_file_write_at(g_rt, f, 0, text, strlen(text)), NK_OK);
    nk_rt_file_close(g_rt, f);
}

static void test_corrupt_files_are_reported_not_guessed(void **state)
{
    (void)state;
    nk_sim *s = boot(2);
    nk_errbuf eb;
    nk_mode_state st;
    nk_mode_state w = {NK_MODE_PREPARING, 3, 0, 0};
    assert_int_equal(nk_mode_write(g_rt, "/w", &w, &eb), NK_OK);

    /* a hand edit that flips the mode back to standalone must not pass */
    nk_file *f = NULL;
    char buf[512] = {0};
    size_t got = 0;
    assert_int_equal(nk_rt_file_open(g_rt, "/w/MODE.json", NK_OPEN_READ, &f), NK_OK);
    nk_rt_file_read_at(g_rt, f, 0, buf, sizeof(buf) - 1, &got);
    nk_rt_file_close(g_rt, f);
    char *p = strstr(buf, "preparing");
    assert_non_null(p);
    char edited[600];
    snprintf(edited, sizeof(edited), "%.*sstandalone%s", (int)(p - buf), buf, p + 9);
    write_raw(edited);
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "checksum mismatch"));

    write_raw("{not json");
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "not valid JSON"));
    write_raw("{\"format\":1,\"mode\":\"bogus\",\"xxh64\":\"0\"}");
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "unknown migration mode \"bogus\""));
    write_raw("{\"format\":9,\"mode\":\"seeded\"}");
    assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "format"));
    nk_sim_free(s);
}

static void test_crash_during_write_keeps_old_or_new(void **state)
{
    (void)state;
    int saw_old = 0, saw_new = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        nk_sim *s = boot(seed);
        nk_errbuf eb;
        nk_mode_state a = {NK_MODE_PREPARING, 1, 1, 101};
        assert_int_equal(nk_mode_write(g_rt, "/w", &a, &eb), NK_OK);
        if (seed % 2 == 0) {
            /* crash between the temp file sync and the rename */
            nk_sim_failpoint_arm(s, 1, "mode.write.before_rename", NK_SIM_FP_CRASH, 1,
                                 (nk_ratio){0, 0});
        }
        nk_mode_state b = {NK_MODE_SEEDED, 1, 1, 101};
        int rc = nk_mode_write(g_rt, "/w", &b, &eb);
        if (seed % 2 == 1) {
            assert_int_equal(rc, NK_OK);
            /* renamed and dir-synced: a crash now must keep the new mode */
        }
        nk_sim_node_crash(s, 1);
        nk_sim_node_start(s, 1);
        nk_mode_state st;
        assert_int_equal(nk_mode_read(g_rt, "/w", &st, &eb), NK_OK);
        if (seed % 2 == 1) {
            assert_int_equal(st.mode, NK_MODE_SEEDED);
        }
        assert_true(st.mode == NK_MODE_PREPARING || st.mode == NK_MODE_SEEDED);
        saw_old += st.mode == NK_MODE_PREPARING;
        saw_new += st.mode == NK_MODE_SEEDED;
        nk_sim_free(s);
    }
    assert_true(saw_old > 0 && saw_new > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_means_standalone_and_round_trip),
        cmocka_unit_test(test_gate_refuses_with_next_step),
        cmocka_unit_test(test_corrupt_files_are_reported_not_guessed),
        cmocka_unit_test(test_crash_during_write_keeps_old_or_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
