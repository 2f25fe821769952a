/* config.c - strict `key = value` configuration files (see config.h). */
#include "nokv/util/config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Parse one value at v[0..len) into a malloc'd string. */
static int parse_value(const char *v, size_t len, char **out, const char **why)
{
    char *s = malloc(len + 1);
    if (s == NULL) {
        return NK_ENOMEM;
    }
    size_t o = 0;
    if (len > 0 && v[0] == '"') {
        size_t i = 1;
        for (; i < len && v[i] != '"'; i++) {
            if (v[i] == '\\') {
                if (i + 1 >= len || (v[i + 1] != '"' && v[i + 1] != '\\')) {
                    *why = "only \\\" and \\\\ may be escaped in a quoted value";
                    free(s);
                    return NK_EINVAL;
                }
                i++;
            }
            s[o++] = v[i];
        }
        if (i >= len) {
            *why = "unterminated quoted value";
            free(s);
            return NK_EINVAL;
        }
        if (i + 1 != len) {
            *why = "text after the closing quote";
            free(s);
            return NK_EINVAL;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (is_blank(v[i])) {
                *why = "blank inside an unquoted value (quote it)";
                free(s);
                return NK_EINVAL;
            }
            if (v[i] == '#') {
                *why = "'#' in an unquoted value (comments take a whole line; quote the value "
                       "if it contains '#')";
                free(s);
                return NK_EINVAL;
            }
            if (v[i] == '"') {
                *why = "stray quote in the value";
                free(s);
                return NK_EINVAL;
            }
            s[o++] = v[i];
        }
    }
    if (o == 0) {
        *why = "empty value";
        free(s);
        return NK_EINVAL;
    }
    s[o] = '\0';
    *out = s;
    return NK_OK;
}

int nk_config_parse(const char *text, size_t len, const char *source, nk_config *out, nk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 0;
    unsigned line = 0;
    size_t pos = 0;
    int rc = NK_OK;
    const char *why = NULL;
    while (pos < len && rc == NK_OK) {
        line++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        if (ll > NK_CONFIG_LINE_MAX) {
            why = "line too long";
            rc = NK_EINVAL;
            break;
        }
        if (memchr(start, '\0', ll) != NULL) {
            why = "NUL byte";
            rc = NK_EINVAL;
            break;
        }
        size_t i = 0;
        while (i < ll && is_blank(start[i])) {
            i++;
        }
        if (i == ll || start[i] == '#') {
            continue;
        }
        size_t k0 = i;
        while (i < ll && is_key_char(start[i])) {
            i++;
        }
        size_t klen = i - k0;
        while (i < ll && is_blank(start[i])) {
            i++;
        }
        if (klen == 0 || i == ll || start[i] != '=') {
            why = "expected `key = value` (keys are lower-case flag names without --)";
            rc = NK_EINVAL;
            break;
        }
        if (klen >= NK_CONFIG_KEY_MAX) {
            why = "key too long";
            rc = NK_EINVAL;
            break;
        }
        i++;
        while (i < ll && is_blank(start[i])) {
            i++;
        }
        size_t vend = ll;
        while (vend > i && is_blank(start[vend - 1])) {
            vend--;
        }
        char key[NK_CONFIG_KEY_MAX];
        memcpy(key, start + k0, klen);
        key[klen] = '\0';
        if (nk_config_get(out, key) != NULL) {
            nk_errbuf_set(eb, "%s:%u: '%s' is set twice (first on line %u)", source, line, key,
                          nk_config_get(out, key)->line);
            nk_config_free(out);
            return NK_EINVAL;
        }
        char *value = NULL;
        rc = parse_value(start + i, vend - i, &value, &why);
        if (rc != NK_OK) {
            break;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            nk_config_entry *e = realloc(out->entries, ncap * sizeof(*e));
            if (e == NULL) {
                free(value);
                rc = NK_ENOMEM;
                break;
            }
            out->entries = e;
            cap = ncap;
        }
        nk_config_entry *e = &out->entries[out->n++];
        memcpy(e->key, key, klen + 1);
        e->value = value;
        e->line = line;
    }
    if (rc != NK_OK) {
        if (rc == NK_ENOMEM) {
            nk_errbuf_set(eb, "%s: out of memory", source);
        } else {
            nk_errbuf_set(eb, "%s:%u: %s", source, line, why);
        }
        nk_config_free(out);
    }
    return rc;
}

const nk_config_entry *nk_config_get(const nk_config *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->entries[i].key, key) == 0) {
            return &c->entries[i];
        }
    }
    return NULL;
}

void nk_config_free(nk_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].value);
    }
    free(c->entries);
    c->entries = NULL;
    c->n = 0;
}
