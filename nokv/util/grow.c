/* grow.c - see grow.h. */
#include "nokv/util/grow.h"

#include <stdlib.h>
#include <string.h>

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

bool nk_grow_zeroed(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return true;
    }
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * size);
    if (p == NULL) {
        return false;
    }
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return true;
}
