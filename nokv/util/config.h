/*
 * config.h - the `nokv` configuration file format, parsed strictly.
 *
 * One setting per line, the key being a command-line flag without its "--":
 *
 *     # nokv serve settings
 *     workdir = /var/lib/nokv
 *     addr = 127.0.0.1:6380
 *     log-file = "/var/log/nokv/nokv.log"
 *
 *   - blank lines and lines whose first non-blank character is '#' are
 *     ignored; there are no trailing comments (a '#' in an unquoted value
 *     is an error: quote the value if it really contains one);
 *   - key: [a-z0-9-]+, then '=', then the value, blanks around each ignored;
 *   - value: unquoted (no blanks inside) or "double-quoted" (\" and \\ are
 *     the only escapes); never empty;
 *   - a key given twice, a line without '=', NUL bytes or a line longer than
 *     NK_CONFIG_LINE_MAX are errors.
 * Every error names the source and line ("nokv.conf:7: ...").
 *
 * Which keys exist and what values they take is the command's business
 * (cli/): this module only splits the text, so it stays pure and testable.
 */
#ifndef NK_UTIL_CONFIG_H
#define NK_UTIL_CONFIG_H

#include <stddef.h>

#include "nokv/util/err.h"

#define NK_CONFIG_LINE_MAX 4096
#define NK_CONFIG_KEY_MAX 64

typedef struct nk_config_entry {
    char key[NK_CONFIG_KEY_MAX];
    char *value;   /* malloc'd, unquoted */
    unsigned line; /* 1-based */
} nk_config_entry;

typedef struct nk_config {
    nk_config_entry *entries; /* in file order */
    size_t n;
} nk_config;

/* Parse text[0..len). `source` names it in errors. On error *out is empty
 * and eb says "source:line: what". NK_OK, NK_EINVAL or NK_ENOMEM. */
int nk_config_parse(const char *text, size_t len, const char *source, nk_config *out,
                    nk_errbuf *eb);

/* The entry for key, or NULL. */
const nk_config_entry *nk_config_get(const nk_config *c, const char *key);

void nk_config_free(nk_config *c);

#endif /* NK_UTIL_CONFIG_H */
