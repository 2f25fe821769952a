/* err.c - error code names, messages and the error-message buffer. */
#include "nokv/util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *nk_strerror(int code)
{
    switch (code) {
#define NK_ERR_MSG(name, value, msg)                                           \
    case value:                                                                \
        return msg;
        NK_ERR_TABLE(NK_ERR_MSG)
#undef NK_ERR_MSG
    default:
        return "unknown error";
    }
}

const char *nk_errdesc(int code)
{
    switch (code) {
#define NK_ERR_DESC(name, value, msg)                                          \
    case value:                                                                \
        return msg " (" #name ")";
        NK_ERR_TABLE(NK_ERR_DESC)
#undef NK_ERR_DESC
    default:
        return "unknown error (NK_E?)";
    }
}

const char *nk_errname(int code)
{
    switch (code) {
#define NK_ERR_NAME(name, value, msg)                                          \
    case value:                                                                \
        return #name;
        NK_ERR_TABLE(NK_ERR_NAME)
#undef NK_ERR_NAME
    default:
        return "NK_E?";
    }
}

void nk_errbuf_set(nk_errbuf *eb, const char *fmt, ...)
{
    if (eb == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
}

void nk_errbuf_wrap(nk_errbuf *eb, const char *fmt, ...)
{
    if (eb == NULL) {
        return;
    }
    char prefix[NK_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    /* Truncation is acceptable for a diagnostic; keep "prefix: old". */
    size_t plen = strlen(prefix);
    size_t olen = strnlen(eb->msg, sizeof(eb->msg) - 1);
    size_t cap = sizeof(eb->msg) - 1;
    if (plen + 2 >= cap) {
        memcpy(eb->msg, prefix, cap);
        eb->msg[cap] = '\0';
        return;
    }
    size_t keep = olen;
    if (plen + 2 + keep > cap) {
        keep = cap - plen - 2;
    }
    memmove(eb->msg + plen + 2, eb->msg, keep);
    memcpy(eb->msg, prefix, plen);
    eb->msg[plen] = ':';
    eb->msg[plen + 1] = ' ';
    eb->msg[plen + 2 + keep] = '\0';
}
