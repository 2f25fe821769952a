/*
 * test_sim_sched.c - the simulator's scheduler, clocks, node lifecycle,
 * failpoints and jobs, driven through nokv/rt.h exactly as production code
 * would use them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/scenario.h"
#include "sim/sim.h"

/* A test app: start() runs a per-test hook with the node's runtime. */
typedef struct probe {
    nk_rt *rt;
    int fired[32];
    uint64_t fired_at[32];
    int nfired;
    int stops;
    int crashed_stops;
    int job_work;
    int job_done;
    int fp_rc;
} probe;

static probe g_probe[4];
static void (*g_boot)(nk_rt *rt, probe *p);

static int probe_start(nk_rt *rt, void *cfg, void **state)
{
    probe *p = cfg;
    p->rt = rt;
    if (g_boot != NULL) {
        g_boot(rt, p);
    }
    *state = p;
    return NK_OK;
}

static void probe_stop(void *state, bool crashed)
{
    probe *p = state;
    p->stops++;
    if (crashed) {
        p->crashed_stops++;
    }
}

static const nk_sim_app probe_app = {"probe", probe_start, probe_stop};

static nk_sim *sim_with(uint64_t seed, int nodes)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    assert_non_null(s);
    memset(g_probe, 0, sizeof(g_probe));
    for (int i = 0; i < nodes; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i + 1);
        assert_int_equal(nk_sim_add_node(s, name, &probe_app, &g_probe[i], NULL), NK_OK);
    }
    return s;
}

/* ---------------------------------------------------------------- timers --- */

typedef struct tmark {
    probe *p;
    int tag;
} tmark;

static tmark g_marks[32];

static void on_timer(void *arg)
{
    tmark *m = arg;
    m->p->fired_at[m->p->nfired] = nk_rt_now(m->p->rt);
    m->p->fired[m->p->nfired++] = m->tag;
}

static void boot_timers(nk_rt *rt, probe *p)
{
    /* Same deadline for tags 1..3: they must fire in start order. */
    for (int i = 0; i < 6; i++) {
        g_marks[i].p = p;
        g_marks[i].tag = i + 1;
    }
    nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, on_timer, &g_marks[0]);
    nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, on_timer, &g_marks[1]);
    nk_rt_timer_start(rt, 5 * NK_NSEC_PER_MSEC, on_timer, &g_marks[2]);
    nk_rt_timer_start(rt, 1 * NK_NSEC_PER_MSEC, on_timer, &g_marks[3]);
    uint64_t cancel_me = nk_rt_timer_start(rt, 2 * NK_NSEC_PER_MSEC, on_timer, &g_marks[4]);
    nk_rt_timer_start(rt, 9 * NK_NSEC_PER_MSEC, on_timer, &g_marks[5]);
    assert_int_equal(nk_rt_timer_cancel(rt, cancel_me), NK_OK);
    assert_int_equal(nk_rt_timer_cancel(rt, cancel_me), NK_ENOENT);
}

static void test_timers_order_by_deadline_then_sequence(void **state)
{
    (void)state;
    g_boot = boot_timers;
    nk_sim *s = sim_with(1, 1);
    uint64_t t0 = 0;
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    t0 = nk_rt_now(g_probe[0].rt);
    nk_sim_run_until(s, NK_NSEC_PER_SEC);
    assert_int_equal(g_probe[0].nfired, 5);
    int want[5] = {4, 1, 2, 3, 6};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g_probe[0].fired[i], want[i]);
    }
    /* Local time never runs behind the requested delay, whatever the drift. */
    assert_true(g_probe[0].fired_at[0] - t0 >= 1 * NK_NSEC_PER_MSEC);
    assert_true(g_probe[0].fired_at[1] - t0 >= 5 * NK_NSEC_PER_MSEC);
    assert_true(g_probe[0].fired_at[4] - t0 >= 9 * NK_NSEC_PER_MSEC);
    nk_sim_free(s);
    g_boot = NULL;
}

static void test_clocks_drift_but_stay_monotonic(void **state)
{
    (void)state;
    g_boot = NULL;
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, 42);
    cfg.drift_ppm_max = 50000; /* 5%: large enough to measure */
    nk_sim *s = nk_sim_new(&cfg);
    memset(g_probe, 0, sizeof(g_probe));
    nk_sim_add_node(s, "a", &probe_app, &g_probe[0], NULL);
    nk_sim_add_node(s, "b", &probe_app, &g_probe[1], NULL);
    nk_sim_node_start(s, 1);
    nk_sim_node_start(s, 2);
    uint64_t a0 = nk_rt_now(g_probe[0].rt), b0 = nk_rt_now(g_probe[1].rt);
    uint64_t prev_a = a0;
    for (int i = 1; i <= 100; i++) {
        nk_sim_run_until(s, (uint64_t)i * 10 * NK_NSEC_PER_MSEC);
        uint64_t a = nk_rt_now(g_probe[0].rt);
        assert_true(a >= prev_a);
        prev_a = a;
    }
    uint64_t da = nk_rt_now(g_probe[0].rt) - a0;
    uint64_t db = nk_rt_now(g_probe[1].rt) - b0;
    /* one second of global time, each node within its drift bound */
    assert_true(da >= 950 * NK_NSEC_PER_MSEC && da <= 1050 * NK_NSEC_PER_MSEC);
    assert_true(db >= 950 * NK_NSEC_PER_MSEC && db <= 1050 * NK_NSEC_PER_MSEC);
    assert_true(da != db); /* different nodes, different rates (seed 42) */
    nk_sim_free(s);
}

/* ------------------------------------------------------- crash and jobs --- */

static void job_work(void *arg)
{
    probe *p = arg;
    p->job_work++;
}

static void job_done(void *arg)
{
    probe *p = arg;
    p->job_done++;
}

static void boot_timer_and_job(nk_rt *rt, probe *p)
{
    g_marks[0].p = p;
    g_marks[0].tag = 7;
    nk_rt_timer_start(rt, 500 * NK_NSEC_PER_MSEC, on_timer, &g_marks[0]);
    assert_int_equal(nk_rt_job_submit(rt, "test", job_work, job_done, p), NK_OK);
}

static void test_crash_loses_timers_and_jobs(void **state)
{
    (void)state;
    g_boot = boot_timer_and_job;
    nk_sim *s = sim_with(3, 1);
    nk_sim_node_start(s, 1);
    nk_sim_node_crash(s, 1); /* before the job ran and the timer fired */
    assert_false(nk_sim_node_up(s, 1));
    assert_int_equal(g_probe[0].crashed_stops, 1);
    /* every runtime call of a dead node reports the crash */
    nk_file *f = NULL;
    assert_int_equal(nk_rt_file_open(g_probe[0].rt, "/x", NK_OPEN_WRITE | NK_OPEN_CREATE, &f),
                     NK_ECRASHED);
    nk_sim_run_until(s, 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_probe[0].nfired, 0);
    assert_int_equal(g_probe[0].job_work, 0);
    assert_int_equal(g_probe[0].job_done, 0);

    /* after a restart, the new incarnation's timer and job do run */
    assert_int_equal(nk_sim_node_start(s, 1), NK_OK);
    nk_sim_run_until(s, 4 * NK_NSEC_PER_SEC);
    assert_int_equal(g_probe[0].nfired, 1);
    assert_int_equal(g_probe[0].job_work, 1);
    assert_int_equal(g_probe[0].job_done, 1);
    nk_sim_free(s);
    g_boot = NULL;
}

static void fp_timer(void *arg)
{
    probe *p = arg;
    p->fp_rc = nk_failpoint(p->rt, "test.point");
    /* after a crash at the failpoint, nothing reaches the disk */
    nk_file *f = NULL;
    int rc = nk_rt_file_open(p->rt, "/after", NK_OPEN_WRITE | NK_OPEN_CREATE, &f);
    if (p->fp_rc == NK_ECRASHED) {
        assert_int_equal(rc, NK_ECRASHED);
    } else if (rc == NK_OK) {
        nk_rt_file_close(p->rt, f);
    }
}

static void boot_fp(nk_rt *rt, probe *p)
{
    nk_rt_timer_start(rt, 10 * NK_NSEC_PER_MSEC, fp_timer, p);
}

static void test_failpoints_error_and_crash(void **state)
{
    (void)state;
    g_boot = boot_fp;
    nk_sim *s = sim_with(5, 2);
    assert_int_equal(nk_sim_failpoint_arm(s, 1, "test.point", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0}),
                     NK_OK);
    assert_int_equal(nk_sim_failpoint_arm(s, 2, "test.point", NK_SIM_FP_CRASH, 1, (nk_ratio){0, 0}),
                     NK_OK);
    nk_sim_node_start(s, 1);
    nk_sim_node_start(s, 2);
    nk_sim_run_until(s, NK_NSEC_PER_SEC);
    assert_int_equal(g_probe[0].fp_rc, NK_EFAILPOINT);
    assert_true(nk_sim_node_up(s, 1));
    assert_int_equal(g_probe[1].fp_rc, NK_ECRASHED);
    assert_false(nk_sim_node_up(s, 2));
    assert_int_equal(g_probe[1].crashed_stops, 1);
    uint64_t hits = 0, fired = 0;
    nk_sim_failpoint_stats(s, "test.point", &hits, &fired);
    assert_int_equal(hits, 2);
    assert_int_equal(fired, 2);
    /* disarming stops an unlimited point */
    assert_int_equal(nk_sim_failpoint_arm(s, 1, "test.point", NK_SIM_FP_ERROR, 0, (nk_ratio){0, 0}),
                     NK_OK);
    assert_int_equal(nk_sim_failpoint_arm(s, 1, "test.point", NK_SIM_FP_OFF, 0, (nk_ratio){0, 0}),
                     NK_OK);
    assert_int_equal(nk_failpoint(g_probe[0].rt, "test.point"), NK_OK);
    /* count=1: after a restart the point is spent and passes */
    nk_sim_node_start(s, 2);
    nk_sim_run_until(s, 2 * NK_NSEC_PER_SEC);
    assert_int_equal(g_probe[1].fp_rc, NK_OK);
    assert_true(nk_sim_node_up(s, 2));
    nk_sim_free(s);
    g_boot = NULL;
}

/* -------------------------------------------------------- determinism --- */

static uint64_t run_echo(uint64_t seed)
{
    nk_errbuf eb;
    nk_scenario *sc = NULL;
    const char *text = "workload echo\n"
                       "nodes 3\n"
                       "duration 3s\n"
                       "option interval=5ms\n"
                       "at 500ms crash n2\n"
                       "at 900ms start n2\n"
                       "random partition count=2 window=1s..2s length=100ms..500ms\n"
                       "random flap count=1 window=1s..2s length=300ms..600ms\n";
    assert_int_equal(nk_scenario_parse("inline", text, &sc, &eb), NK_OK);
    nk_scenario_outcome o;
    nk_scenario_run(sc, seed, NULL, NULL, &o);
    assert_int_equal(o.result.verdict, NK_SIM_PASS);
    assert_true(o.events > 1000);
    nk_scenario_free(sc);
    return o.trace_hash;
}

static void test_same_seed_same_trace_different_seed_different(void **state)
{
    (void)state;
    uint64_t a1 = run_echo(11);
    uint64_t a2 = run_echo(11);
    assert_int_equal(a1, a2);
    uint64_t b = run_echo(12);
    uint64_t c = run_echo(13);
    assert_true(a1 != b);
    assert_true(b != c);
    assert_true(a1 != c);
}

static void test_scenario_parse_errors_name_the_line(void **state)
{
    (void)state;
    nk_errbuf eb;
    nk_scenario *sc = NULL;
    assert_int_equal(nk_scenario_parse("f", "workload echo\nnodes 2\nduration 1s\nat 1x crash n1\n",
                                       &sc, &eb),
                     NK_EINVAL);
    assert_non_null(strstr(eb.msg, "f:4:"));
    assert_int_equal(nk_scenario_parse("f", "workload nope\n", &sc, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, "unknown workload"));
    assert_int_equal(nk_scenario_parse("f", "workload echo\nnodes 2\nduration 1s\n"
                                            "option bug=typo\n",
                                       &sc, &eb),
                     NK_EINVAL);
    assert_non_null(strstr(eb.msg, "rejects option"));
    assert_int_equal(nk_scenario_parse("f", "workload echo\nnodes 2\n", &sc, &eb), NK_EINVAL);
    assert_non_null(strstr(eb.msg, "duration"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order_by_deadline_then_sequence),
        cmocka_unit_test(test_clocks_drift_but_stay_monotonic),
        cmocka_unit_test(test_crash_loses_timers_and_jobs),
        cmocka_unit_test(test_failpoints_error_and_crash),
        cmocka_unit_test(test_same_seed_same_trace_different_seed_different),
        cmocka_unit_test(test_scenario_parse_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
