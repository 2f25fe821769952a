/*
 * assert.h - NK_ASSERT: invariants the code relies on, checked always.
 *
 * A storage system that goes on after one of its own invariants broke can
 * turn a bug into lost or wrong data; stopping is the safe answer (fail-stop,
 * as TigerBeetle does). NK_ASSERT(cond) therefore stays in every build: the
 * conditions are cheap. A failure calls the registered handler (the `nokv`
 * binary prints the file, line and condition; `nokv-sim` prints them with the
 * seed and its replay command) and then traps, which the simulator reports
 * as a crash verdict (exit 12) for that seed.
 *
 * Use it for what must hold whatever the input ("apply goes in index order",
 * "a staged Ready is consumed once"), never for input validation: bad input
 * gets an error code.
 */
#ifndef NK_UTIL_ASSERT_H
#define NK_UTIL_ASSERT_H

typedef void (*nk_assert_handler_fn)(const char *file, int line, const char *expr);

/* Set the process-wide handler (NULL: trap silently). Not thread-safe: set
 * it once at start-up. */
void nk_assert_set_handler(nk_assert_handler_fn fn);

_Noreturn void nk_assert_failed(const char *file, int line, const char *expr);

#define NK_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            nk_assert_failed(__FILE__, __LINE__, #cond);                                           \
        }                                                                                          \
    } while (0)

#endif /* NK_UTIL_ASSERT_H */
