/*
 * resp.c - incremental RESP2 request parser and reply writer (see resp.h).
 *
 * The parser keeps every received byte of the request in progress in one
 * buffer and remembers how far it got (header parsed, arguments seen, where
 * the newline search stopped), so a request trickling in byte by byte costs
 * O(bytes), not O(bytes^2). Arguments are stored as offsets relative to the
 * request start because feed() may move the buffer; pointers are made only
 * when a complete request is handed out.
 */
#include "nokv/resp/resp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct arg_off {
    size_t off; /* relative to the request start */
    size_t len;
} arg_off;

struct nk_resp_parser {
    nk_resp_limits lim;
    uint8_t *buf;
    size_t cap;
    size_t len;   /* bytes held */
    size_t pos;   /* first byte not yet consumed by the parse */
    size_t req;   /* start of the multibulk request in progress */
    size_t scan;  /* a CR/LF search resumes here (absolute offset) */
    bool in_req;  /* a multibulk request is in progress */
    int64_t left; /* multibulk: arguments still to read; -1 before the header */
    int64_t bulk; /* multibulk: payload length of the next argument; -1 before "$n" */
    arg_off *args;
    size_t nargs;
    size_t args_cap;
    nk_resp_arg *argv;
    size_t argv_cap;
    int dead; /* 0, NK_EPROTO or NK_ENOMEM */
    char err[160];
};

void nk_resp_limits_default(nk_resp_limits *l)
{
    l->max_bulk_len = NK_RESP_DEFAULT_MAX_BULK;
    l->max_multibulk = NK_RESP_DEFAULT_MAX_MULTIBULK;
    l->max_inline = NK_RESP_DEFAULT_MAX_INLINE;
    l->max_request_bytes = NK_RESP_DEFAULT_MAX_REQUEST;
}

nk_resp_parser *nk_resp_parser_new(const nk_resp_limits *limits)
{
    nk_resp_parser *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    nk_resp_limits_default(&p->lim);
    if (limits != NULL) {
        if (limits->max_bulk_len != 0) {
            p->lim.max_bulk_len = limits->max_bulk_len;
        }
        if (limits->max_multibulk != 0) {
            p->lim.max_multibulk = limits->max_multibulk;
        }
        if (limits->max_inline != 0) {
            p->lim.max_inline = limits->max_inline;
        }
        if (limits->max_request_bytes != 0) {
            p->lim.max_request_bytes = limits->max_request_bytes;
        }
    }
    p->left = -1;
    p->bulk = -1;
    return p;
}

void nk_resp_parser_free(nk_resp_parser *p)
{
    if (p == NULL) {
        return;
    }
    free(p->buf);
    free(p->args);
    free(p->argv);
    free(p);
}

const char *nk_resp_parser_error(const nk_resp_parser *p)
{
    return p->dead ? p->err : "";
}

size_t nk_resp_parser_buffered(const nk_resp_parser *p)
{
    return p->len;
}

/* Buffers above this are released when emptied, so one huge request or
 * reply does not pin its size for the life of the connection. */
#define KEEP_CAP (1u << 20)

static int fail(nk_resp_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(nk_resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    /* An error reply is one line: never let a client byte break it. */
    for (char *c = p->err; *c != '\0'; c++) {
        if (*c == '\r' || *c == '\n') {
            *c = ' ';
        }
    }
    p->dead = NK_EPROTO;
    return NK_EPROTO;
}

static int oom(nk_resp_parser *p)
{
    snprintf(p->err, sizeof(p->err), "ERR out of memory while reading the request");
    p->dead = NK_ENOMEM;
    return NK_ENOMEM;
}

int nk_resp_parser_feed(nk_resp_parser *p, const void *data, size_t len)
{
    if (p->dead) {
        return p->dead;
    }
    /* Drop what earlier requests consumed; keep the request in progress. */
    size_t base = p->in_req ? p->req : p->pos;
    if (base > 0) {
        memmove(p->buf, p->buf + base, p->len - base);
        p->len -= base;
        p->pos -= base;
        p->scan = p->scan > base ? p->scan - base : 0;
        if (p->in_req) {
            p->req -= base;
        }
    }
    if (p->len == 0 && p->cap > KEEP_CAP) {
        free(p->buf); /* a huge request was consumed: give its memory back */
        p->buf = NULL;
        p->cap = 0;
    }
    if (len == 0) {
        return NK_OK;
    }
    if (p->cap - p->len < len) {
        size_t need = p->len + len;
        if (need < p->len) {
            return oom(p);
        }
        size_t ncap = p->cap ? p->cap : 1024;
        while (ncap < need) {
            size_t next = ncap * 2;
            if (next < ncap) {
                ncap = need;
                break;
            }
            ncap = next;
        }
        uint8_t *nb = realloc(p->buf, ncap);
        if (nb == NULL) {
            return oom(p);
        }
        p->buf = nb;
        p->cap = ncap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return NK_OK;
}

bool nk_resp_parse_i64(const uint8_t *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    bool neg = false;
    size_t i = 0;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (n == 1) {
            return false;
        }
    }
    if (s[i] < '1' || s[i] > '9') {
        return false;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)v;
    }
    return true;
}

static bool add_arg(nk_resp_parser *p, size_t off, size_t len)
{
    if (p->nargs == p->args_cap) {
        /* Grow with what arrives, never to the declared count: "*1000000"
         * alone must not allocate 16 MB. */
        size_t ncap = p->args_cap ? p->args_cap * 2 : 8;
        arg_off *na = realloc(p->args, ncap * sizeof(*na));
        if (na == NULL) {
            return false;
        }
        p->args = na;
        p->args_cap = ncap;
    }
    p->args[p->nargs].off = off;
    p->args[p->nargs].len = len;
    p->nargs++;
    return true;
}

static int emit(nk_resp_parser *p, size_t req, const nk_resp_arg **argv, size_t *argc)
{
    if (p->argv_cap < p->nargs) {
        nk_resp_arg *na = realloc(p->argv, p->nargs * sizeof(*na));
        if (na == NULL) {
            return oom(p);
        }
        p->argv = na;
        p->argv_cap = p->nargs;
    }
    for (size_t i = 0; i < p->nargs; i++) {
        p->argv[i].ptr = p->buf + req + p->args[i].off;
        p->argv[i].len = p->args[i].len;
    }
    *argv = p->argv;
    *argc = p->nargs;
    return NK_OK;
}

/* Find the CR of a "*n" / "$n" header line starting at p->pos. Returns 1 and
 * *cr when the whole "...\r\n" is buffered, 0 when more bytes are needed,
 * or NK_EPROTO. */
static int header_line(nk_resp_parser *p, const char *what, size_t *cr)
{
    size_t from = p->scan > p->pos ? p->scan : p->pos;
    const uint8_t *hit = from < p->len ? memchr(p->buf + from, '\r', p->len - from) : NULL;
    if (hit == NULL) {
        p->scan = p->len;
        if (p->len - p->pos > p->lim.max_inline) {
            return fail(p, "ERR Protocol error: too big %s count string", what);
        }
        return 0;
    }
    size_t at = (size_t)(hit - p->buf);
    /* Same verdict whether or not the CR has arrived yet: the outcome must
     * not depend on how the stream was cut into chunks. */
    if (at - p->pos > p->lim.max_inline) {
        return fail(p, "ERR Protocol error: too big %s count string", what);
    }
    if (at + 1 >= p->len) {
        p->scan = at; /* look at this CR again once its LF may be here */
        return 0;
    }
    *cr = at;
    return 1;
}

/* The common header: "*n" / "$n" at p->pos, plain digits (no sign, no
 * leading zero, at most 18 of them) and its CRLF all buffered. Sets the
 * value and the offset after the LF. Anything else (negative, malformed,
 * incomplete) returns false and takes the general path, which gives the
 * same verdict on the same bytes; this one only skips a memchr and a
 * second pass over the digits. */
static bool quick_count(const nk_resp_parser *p, int64_t *n, size_t *next)
{
    size_t first = p->pos + 1;
    size_t i = first;
    size_t end = p->len;
    int64_t v = 0;
    while (i < end && i < first + 18 && p->buf[i] >= '0' && p->buf[i] <= '9') {
        v = v * 10 + (p->buf[i] - '0');
        i++;
    }
    if (i == first || (p->buf[first] == '0' && i != first + 1) || i + 1 >= end ||
        p->buf[i] != '\r' || p->buf[i + 1] != '\n' || i - p->pos > p->lim.max_inline) {
        return false;
    }
    *n = v;
    *next = i + 2;
    return true;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_val(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Split buf[start, end) into arguments in place (unescaping never makes an
 * argument longer, so the write cursor never passes the read cursor).
 * Offsets are recorded relative to `start`. */
static int split_inline(nk_resp_parser *p, size_t start, size_t end)
{
    uint8_t *b = p->buf;
    size_t r = start;
    size_t w = start;
    p->nargs = 0;
    for (;;) {
        while (r < end && is_space(b[r])) {
            r++;
        }
        if (r == end) {
            return NK_OK;
        }
        size_t arg_start = w;
        int quote = 0; /* 0, '"' or '\'' */
        for (;;) {
            if (quote == '"') {
                if (r == end) {
                    return fail(p, "ERR Protocol error: unbalanced quotes in request");
                }
                uint8_t c = b[r];
                if (c == '\\' && r + 3 < end && b[r + 1] == 'x' && hex_val(b[r + 2]) >= 0 &&
                    hex_val(b[r + 3]) >= 0) {
                    b[w++] = (uint8_t)(hex_val(b[r + 2]) * 16 + hex_val(b[r + 3]));
                    r += 4;
                } else if (c == '\\' && r + 1 < end) {
                    uint8_t e = b[r + 1];
                    switch (e) {
                    case 'n':
                        e = '\n';
                        break;
                    case 'r':
                        e = '\r';
                        break;
                    case 't':
                        e = '\t';
                        break;
                    case 'b':
                        e = '\b';
                        break;
                    case 'a':
                        e = '\a';
                        break;
                    default:
                        break;
                    }
                    b[w++] = e;
                    r += 2;
                } else if (c == '"') {
                    if (r + 1 < end && !is_space(b[r + 1])) {
                        return fail(p, "ERR Protocol error: unbalanced quotes in request");
                    }
                    r++;
                    break;
                } else {
                    b[w++] = c;
                    r++;
                }
            } else if (quote == '\'') {
                if (r == end) {
                    return fail(p, "ERR Protocol error: unbalanced quotes in request");
                }
                uint8_t c = b[r];
                if (c == '\\' && r + 1 < end && b[r + 1] == '\'') {
                    b[w++] = '\'';
                    r += 2;
                } else if (c == '\'') {
                    if (r + 1 < end && !is_space(b[r + 1])) {
                        return fail(p, "ERR Protocol error: unbalanced quotes in request");
                    }
                    r++;
                    break;
                } else {
                    b[w++] = c;
                    r++;
                }
            } else {
                if (r == end || is_space(b[r])) {
                    break;
                }
                uint8_t c = b[r++];
                if (c == '"' || c == '\'') {
                    quote = c;
                } else {
                    b[w++] = c;
                }
            }
        }
        if (!add_arg(p, arg_start - start, w - arg_start)) {
            return oom(p);
        }
    }
}

/* Internal result of parse_inline: a blank line, which Redis skips silently. */
#define EMPTY_REQUEST (NK_EAGAIN - 1000)

static int parse_inline(nk_resp_parser *p, const nk_resp_arg **argv, size_t *argc)
{
    size_t from = p->scan > p->pos ? p->scan : p->pos;
    const uint8_t *hit = from < p->len ? memchr(p->buf + from, '\n', p->len - from) : NULL;
    if (hit == NULL) {
        p->scan = p->len;
        /* +1: the last byte may be the CR of a line that is exactly at the
         * limit, which the complete line would accept. */
        if (p->len - p->pos > p->lim.max_inline + 1) {
            return fail(p, "ERR Protocol error: too big inline request");
        }
        return NK_EAGAIN;
    }
    size_t nl = (size_t)(hit - p->buf);
    size_t end = nl;
    if (end > p->pos && p->buf[end - 1] == '\r') {
        end--;
    }
    if (end - p->pos > p->lim.max_inline) {
        return fail(p, "ERR Protocol error: too big inline request");
    }
    size_t start = p->pos;
    int rc = split_inline(p, start, end);
    if (rc != NK_OK) {
        return rc;
    }
    p->pos = nl + 1;
    p->scan = p->pos;
    if (p->nargs == 0) {
        return EMPTY_REQUEST;
    }
    return emit(p, start, argv, argc);
}

int nk_resp_parser_next(nk_resp_parser *p, const nk_resp_arg **argv, size_t *argc)
{
    if (p->dead) {
        return p->dead;
    }
    for (;;) {
        if (!p->in_req) {
            if (p->pos == p->len) {
                return NK_EAGAIN;
            }
            if (p->buf[p->pos] != '*') {
                int rc = parse_inline(p, argv, argc);
                if (rc == EMPTY_REQUEST) {
                    continue;
                }
                return rc;
            }
            p->in_req = true;
            p->req = p->pos;
            p->left = -1;
            p->bulk = -1;
            p->nargs = 0;
        }
        if (p->left < 0) {
            int64_t qn;
            size_t qnext;
            if (quick_count(p, &qn, &qnext) && qn > 0 && (uint64_t)qn <= p->lim.max_multibulk) {
                p->pos = qnext;
                p->scan = p->pos;
                p->left = qn;
                goto args;
            }
            size_t cr;
            int rc = header_line(p, "mbulk", &cr);
            if (rc <= 0) {
                return rc == 0 ? NK_EAGAIN : rc;
            }
            int64_t n;
            if (p->buf[cr + 1] != '\n' ||
                !nk_resp_parse_i64(p->buf + p->pos + 1, cr - p->pos - 1, &n) ||
                (n > 0 && (uint64_t)n > p->lim.max_multibulk)) {
                return fail(p, "ERR Protocol error: invalid multibulk length");
            }
            p->pos = cr + 2;
            p->scan = p->pos;
            if (n <= 0) {
                p->in_req = false; /* "*0" / "*-1": nothing to run, no reply */
                continue;
            }
            p->left = n;
        }
    args:
        while (p->left > 0) {
            if (p->bulk < 0) {
                if (p->pos == p->len) {
                    break;
                }
                if (p->buf[p->pos] != '$') {
                    return fail(p, "ERR Protocol error: expected '$', got '%c'", p->buf[p->pos]);
                }
                int64_t qn;
                size_t qnext;
                if (quick_count(p, &qn, &qnext) && (uint64_t)qn <= p->lim.max_bulk_len &&
                    (uint64_t)(qnext - p->req) + (uint64_t)qn + 2 <= p->lim.max_request_bytes) {
                    p->pos = qnext;
                    p->scan = p->pos;
                    p->bulk = qn;
                    goto payload;
                }
                size_t cr;
                int rc = header_line(p, "bulk", &cr);
                if (rc < 0) {
                    return rc;
                }
                if (rc == 0) {
                    break;
                }
                int64_t n;
                if (p->buf[cr + 1] != '\n' ||
                    !nk_resp_parse_i64(p->buf + p->pos + 1, cr - p->pos - 1, &n) || n < 0) {
                    return fail(p, "ERR Protocol error: invalid bulk length");
                }
                if ((uint64_t)n > p->lim.max_bulk_len) {
                    return fail(p,
                                "ERR Protocol error: invalid bulk length: %llu bytes is over the "
                                "limit of %llu bytes per argument (proto-max-bulk-len)",
                                (unsigned long long)n, (unsigned long long)p->lim.max_bulk_len);
                }
                p->pos = cr + 2;
                p->scan = p->pos;
                /* Refuse now what could never fit, before buffering it. */
                if ((uint64_t)(p->pos - p->req) + (uint64_t)n + 2 > p->lim.max_request_bytes) {
                    return fail(p, "ERR Protocol error: request too big (query buffer limit)");
                }
                p->bulk = n;
            }
        payload:
            if (p->len - p->pos < (size_t)p->bulk + 2) {
                break;
            }
            size_t end = p->pos + (size_t)p->bulk;
            if (p->buf[end] != '\r' || p->buf[end + 1] != '\n') {
                return fail(p, "ERR Protocol error: expected CRLF after bulk");
            }
            if (!add_arg(p, p->pos - p->req, (size_t)p->bulk)) {
                return oom(p);
            }
            p->pos = end + 2;
            p->scan = p->pos;
            p->bulk = -1;
            p->left--;
        }
        if (p->left > 0) {
            if ((uint64_t)(p->len - p->req) > p->lim.max_request_bytes) {
                return fail(p, "ERR Protocol error: request too big (query buffer limit)");
            }
            return NK_EAGAIN;
        }
        p->in_req = false;
        p->left = -1;
        return emit(p, p->req, argv, argc);
    }
}

/* ------------------------------------------------------------ writer --- */

void nk_resp_buf_init(nk_resp_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void nk_resp_buf_free(nk_resp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void nk_resp_buf_reset(nk_resp_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->cap > KEEP_CAP) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}

static bool reserve(nk_resp_buf *b, size_t extra)
{
    if (b->oom) {
        return false;
    }
    if (b->cap - b->len >= extra) {
        return true;
    }
    size_t need = b->len + extra;
    if (need < b->len) {
        b->oom = true;
        return false;
    }
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        size_t next = ncap * 2;
        if (next < ncap) {
            ncap = need;
            break;
        }
        ncap = next;
    }
    uint8_t *nd = realloc(b->data, ncap);
    if (nd == NULL) {
        b->oom = true;
        return false;
    }
    b->data = nd;
    b->cap = ncap;
    return true;
}

void nk_resp_buf_append(nk_resp_buf *b, const void *data, size_t len)
{
    if (len == 0 || !reserve(b, len)) {
        return;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void add_line(nk_resp_buf *b, char type, const char *text, size_t n)
{
    if (!reserve(b, n + 3)) {
        return;
    }
    b->data[b->len++] = (uint8_t)type;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        b->data[b->len++] = (uint8_t)(c == '\r' || c == '\n' ? ' ' : c);
    }
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void nk_resp_add_simple(nk_resp_buf *b, const char *text)
{
    add_line(b, '+', text, strlen(text));
}

void nk_resp_add_error(nk_resp_buf *b, const char *text)
{
    add_line(b, '-', text, strlen(text));
}

void nk_resp_add_errorf(nk_resp_buf *b, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        msg[0] = '\0';
    }
    add_line(b, '-', msg, strlen(msg));
}

static void add_count(nk_resp_buf *b, char type, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%c%lld\r\n", type, (long long)v);
    nk_resp_buf_append(b, tmp, (size_t)n);
}

void nk_resp_add_int(nk_resp_buf *b, int64_t v)
{
    add_count(b, ':', v);
}

void nk_resp_add_bulk(nk_resp_buf *b, const void *data, size_t len)
{
    if (!reserve(b, len + 32)) {
        return;
    }
    add_count(b, '$', (int64_t)len);
    nk_resp_buf_append(b, data, len);
    nk_resp_buf_append(b, "\r\n", 2);
}

void nk_resp_add_bulk_str(nk_resp_buf *b, const char *s)
{
    nk_resp_add_bulk(b, s, strlen(s));
}

void nk_resp_add_null(nk_resp_buf *b)
{
    nk_resp_buf_append(b, "$-1\r\n", 5);
}

void nk_resp_add_array(nk_resp_buf *b, size_t n)
{
    add_count(b, '*', (int64_t)n);
}
