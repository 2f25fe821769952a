/* assert.c - NK_ASSERT's failure path (see assert.h). */
#include "nokv/util/assert.h"

#include <stddef.h>

static nk_assert_handler_fn g_handler;

void nk_assert_set_handler(nk_assert_handler_fn fn)
{
    g_handler = fn;
}

_Noreturn void nk_assert_failed(const char *file, int line, const char *expr)
{
    if (g_handler != NULL) {
        g_handler(file, line, expr);
    }
    __builtin_trap();
}
