/*
 * names.h - numbered file names ("000042.sst", "MANIFEST-000007").
 *
 * Workdir files carry a decimal number between a fixed prefix and suffix.
 * Parsing is strict (digits only, no sign, no overflow) because a file that
 * merely looks similar must never be taken for one of ours.
 */
#ifndef NK_UTIL_NAMES_H
#define NK_UTIL_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when name[0..len) is prefix + 1..20 decimal digits + suffix; the
 * number goes to *out. */
bool nk_name_number(const char *name, size_t len, const char *prefix, const char *suffix,
                    uint64_t *out);

#endif /* NK_UTIL_NAMES_H */
