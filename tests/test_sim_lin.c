/* test_sim_lin.c - the simulator's shared linearizability checkers
 * (sim/check/lin.h) accept linearizable histories and name the violation
 * in the others: checkers need tests of their own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/check/lin.h"

#define W(k, v, i, r) {.key = k, .client = 0, .write = true, .done = true, .value = v, .inv = i, .res = r}
#define WOPEN(k, v, i) {.key = k, .client = 0, .write = true, .done = false, .value = v, .inv = i}
#define R(k, v, i, r) {.key = k, .client = 1, .write = false, .done = true, .value = v, .inv = i, .res = r}

static void registers_ok(void **state)
{
    (void)state;
    char why[400] = "";
    nk_lin_op h[] = {
        R(0, 0, 1, 2),   W(0, 7, 3, 10), R(0, 7, 4, 5), /* read inside the write: ok */
        R(0, 7, 11, 12), W(1, 9, 1, 2),  R(1, 0, 1, 3), /* concurrent with the write */
        WOPEN(0, 8, 20), R(0, 8, 30, 31),               /* open write, seen later */
        WOPEN(1, 5, 40),                                /* open, never seen */
    };
    assert_true(nk_lin_check_registers(h, sizeof(h) / sizeof(h[0]), 2, why, sizeof(why)));
}

static void stale_read_caught(void **state)
{
    (void)state;
    char why[400] = "";
    nk_lin_op h[] = {W(0, 7, 1, 2), W(0, 8, 3, 4), R(0, 7, 5, 6)};
    assert_false(nk_lin_check_registers(h, 3, 1, why, sizeof(why)));
    assert_non_null(strstr(why, "key 0"));
}

static void lost_write_caught(void **state)
{
    (void)state;
    char why[400] = "";
    /* the acknowledged write is gone: a later read sees the initial value */
    nk_lin_op h[] = {W(0, 7, 1, 2), R(0, 0, 5, 6)};
    assert_false(nk_lin_check_registers(h, 2, 1, why, sizeof(why)));
}

static void phantom_read_caught(void **state)
{
    (void)state;
    char why[400] = "";
    nk_lin_op h[] = {W(0, 7, 1, 2), R(0, 99, 5, 6)};
    assert_false(nk_lin_check_registers(h, 2, 1, why, sizeof(why)));
    assert_non_null(strstr(why, "never written"));
    nk_lin_op early[] = {W(0, 7, 10, 20), R(0, 7, 1, 5)};
    assert_false(nk_lin_check_registers(early, 2, 1, why, sizeof(why)));
    assert_non_null(strstr(why, "before that write was invoked"));
}

static void counter_checks(void **state)
{
    (void)state;
    char why[400] = "";
    nk_lin_incr ok[] = {{0, 2, 5, 9}, {1, 1, 1, 3}, {0, 3, 10, 11}};
    assert_true(nk_lin_check_counter(ok, 3, 4, true, 4, why, sizeof(why)));
    nk_lin_incr dup[] = {{0, 1, 1, 3}, {1, 1, 2, 4}};
    assert_false(nk_lin_check_counter(dup, 2, 2, false, 0, why, sizeof(why)));
    /* 2 completed before 1 was invoked */
    nk_lin_incr order[] = {{0, 2, 1, 2}, {1, 1, 5, 6}};
    assert_false(nk_lin_check_counter(order, 2, 2, false, 0, why, sizeof(why)));
    nk_lin_incr two[] = {{0, 1, 1, 2}, {1, 2, 5, 6}};
    assert_false(nk_lin_check_counter(two, 2, 3, true, 1, why, sizeof(why))); /* lost */
    assert_false(nk_lin_check_counter(two, 2, 3, true, 4, why, sizeof(why))); /* too many */
    assert_true(nk_lin_check_counter(two, 2, 3, true, 3, why, sizeof(why)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registers_ok),        cmocka_unit_test(stale_read_caught),
        cmocka_unit_test(lost_write_caught),   cmocka_unit_test(phantom_read_caught),
        cmocka_unit_test(counter_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
