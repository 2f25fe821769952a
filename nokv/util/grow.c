/* grow.c - see grow.h. */
#include "nokv/util/grow.h"

#include <stdlib.h>

#include "nokv/util/err.h"

int nk_grow(void **arr, size_t *cap, size_t count, size_t size)
{
    if (count < *cap) {
        return NK_OK;
    }
    size_t ncap = *cap ? *cap : 8;
    while (ncap <= count) {
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * size);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    *arr = p;
    *cap = ncap;
    return NK_OK;
}
