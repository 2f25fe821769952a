/* names.c - strict parsing of numbered file names (see names.h). */
#include "nokv/util/names.h"

#include <string.h>

bool nk_name_number(const char *name, size_t len, const char *prefix, const char *suffix,
                    uint64_t *out)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (len <= pl + sl || len - pl - sl > 20 || memcmp(name, prefix, pl) != 0 ||
        memcmp(name + len - sl, suffix, sl) != 0) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = pl; i < len - sl; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}
