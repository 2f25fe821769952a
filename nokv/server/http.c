/* http.c - the operator HTTP endpoint server (see http.h). */
#include "nokv/server/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/util/u64map.h"

#define DEFAULT_IDLE_NS (30 * NK_NSEC_PER_SEC)

typedef struct http_conn {
    uint64_t id;
    uint64_t last_ns; /* last byte received */
    size_t len;
    bool closing;
    char buf[NK_HTTP_MAX_REQUEST];
} http_conn;

struct nk_http_server {
    nk_rt *rt;
    nk_http_options o;
    nk_http_handler_fn fn;
    void *ctx;
    uint64_t listener;
    uint64_t sweep_timer;
    nk_u64map conns; /* conn id -> http_conn */
};

/* ---------------------------------------------------------------- body --- */

static bool body_reserve(nk_http_body *b, size_t extra)
{
    if (b->failed) {
        return false;
    }
    if (b->len + extra + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void nk_http_body_append(nk_http_body *b, const char *s, size_t len)
{
    if (!body_reserve(b, len)) {
        return;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void nk_http_body_printf(nk_http_body *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        nk_http_body_append(b, small, (size_t)n);
        return;
    }
    if (!body_reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ------------------------------------------------------------- replies --- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

static void send_reply(nk_http_server *s, http_conn *c, int status, const char *ctype,
                       const char *body, size_t body_len, bool head, bool keep)
{
    char hdr[320];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, reason(status), ctype, body_len, keep ? "keep-alive" : "close");
    (void)nk_rt_send_raw(s->rt, c->id, hdr, (size_t)n);
    if (!head && body_len > 0) {
        (void)nk_rt_send_raw(s->rt, c->id, body, body_len);
    }
}

static void conn_drop(nk_http_server *s, http_conn *c)
{
    nk_u64map_del(&s->conns, c->id);
    free(c);
}

static void conn_close(nk_http_server *s, http_conn *c)
{
    (void)nk_rt_close(s->rt, c->id); /* flushes what was queued */
    conn_drop(s, c);
}

/* An error reply, then close this connection only. */
static void fail(nk_http_server *s, http_conn *c, int status, const char *why)
{
    char body[160];
    int n = snprintf(body, sizeof(body), "%s\n", why);
    send_reply(s, c, status, "text/plain; charset=utf-8", body, (size_t)n, false, false);
    c->closing = true;
}

/* ------------------------------------------------------------- parsing --- */

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen) {
        return false;
    }
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (char)(y - 'A' + 'a');
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

/* Does the comma-separated header value contain token `tok`? */
static bool has_token(const char *v, size_t len, const char *tok)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t j = i;
        while (j < len && v[j] != ',' && v[j] != ' ' && v[j] != '\t') {
            j++;
        }
        if (j > i && ieq(v + i, j - i, tok)) {
            return true;
        }
        i = j;
    }
    return false;
}

/* Handle the request whose head is c->buf[0..head_len) (ending in CRLFCRLF).
 * Returns false when the connection must not read further. */
static bool handle_request(nk_http_server *s, http_conn *c, size_t head_len)
{
    char *p = c->buf;
    char *end = c->buf + head_len;
    char *eol = memchr(p, '\r', (size_t)(end - p));
    if (eol == NULL || eol + 1 >= end || eol[1] != '\n') {
        fail(s, c, 400, "malformed request line");
        return false;
    }
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == p || sp2 == sp1 + 1 || sp1[1] != '/') {
        fail(s, c, 400, "malformed request line");
        return false;
    }
    for (char *q = p; q < sp1; q++) {
        if (!is_tchar(*q)) {
            fail(s, c, 400, "malformed method");
            return false;
        }
    }
    for (char *q = sp1 + 1; q < sp2; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            fail(s, c, 400, "malformed request target");
            return false;
        }
    }
    size_t vlen = (size_t)(eol - sp2 - 1);
    bool v11;
    if (vlen == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0) {
        v11 = true;
    } else if (vlen == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0) {
        v11 = false;
    } else if (vlen >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0) {
        fail(s, c, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        return false;
    } else {
        fail(s, c, 400, "malformed HTTP version");
        return false;
    }
    bool keep = v11;
    /* headers */
    char *h = eol + 2;
    while (h < end - 2) {
        char *e = memchr(h, '\r', (size_t)(end - h));
        if (e == NULL || e + 1 >= end || e[1] != '\n') {
            fail(s, c, 400, "malformed header line");
            return false;
        }
        char *colon = memchr(h, ':', (size_t)(e - h));
        if (colon == NULL || colon == h) {
            fail(s, c, 400, "malformed header line");
            return false;
        }
        for (char *q = h; q < colon; q++) {
            if (!is_tchar(*q)) {
                fail(s, c, 400, "malformed header name");
                return false;
            }
        }
        char *v = colon + 1;
        while (v < e && (*v == ' ' || *v == '\t')) {
            v++;
        }
        size_t vl = (size_t)(e - v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
            vl--;
        }
        size_t nl = (size_t)(colon - h);
        if (ieq(h, nl, "connection")) {
            if (has_token(v, vl, "close")) {
                keep = false;
            } else if (has_token(v, vl, "keep-alive")) {
                keep = true;
            }
        } else if (ieq(h, nl, "transfer-encoding")) {
            fail(s, c, 400, "request bodies are not accepted");
            return false;
        } else if (ieq(h, nl, "content-length")) {
            bool zero = vl > 0;
            for (size_t i = 0; i < vl; i++) {
                zero &= v[i] == '0';
            }
            if (!zero) {
                fail(s, c, 400, "request bodies are not accepted");
                return false;
            }
        }
        h = e + 2;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    const char *method = p;
    char *target = sp1 + 1;
    char *query = strchr(target, '?');
    if (query != NULL) {
        *query = '\0';
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        fail(s, c, 405, "only GET and HEAD are served");
        return false;
    }
    nk_http_reply r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    s->fn(s->ctx, method, target, &r);
    if (r.body.failed) {
        free(r.body.data);
        memset(&r, 0, sizeof(r));
        r.status = 500;
        nk_http_body_append(&r.body, "out of memory\n", 14);
    }
    send_reply(s, c, r.status, r.content_type ? r.content_type : "text/plain; charset=utf-8",
               r.body.data, r.body.len, head, keep);
    free(r.body.data);
    if (!keep) {
        c->closing = true;
        return false;
    }
    return true;
}

/* Find the end of a request head (CRLF CRLF): its length, or 0. */
static size_t head_length(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            return i + 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- network --- */

static void on_accept(void *ctx, uint64_t listener_id, uint64_t conn, const char *peer_addr)
{
    nk_http_server *s = ctx;
    (void)listener_id;
    (void)peer_addr;
    http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || s->conns.count >= s->o.max_conns ||
        nk_u64map_put(&s->conns, conn, c) != NK_OK) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        (void)nk_rt_send_raw(s->rt, conn, busy, sizeof(busy) - 1);
        (void)nk_rt_close(s->rt, conn);
        free(c);
        return;
    }
    c->id = conn;
    c->last_ns = nk_rt_now(s->rt);
}

static void on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_http_server *s = ctx;
    http_conn *c = nk_u64map_get(&s->conns, conn);
    if (c == NULL) {
        return;
    }
    if (kind != NK_FRAME_RAW) {
        conn_close(s, c); /* a NoKV framed client on the metrics port */
        return;
    }
    c->last_ns = nk_rt_now(s->rt);
    size_t off = 0;
    while (off < len && !c->closing) {
        size_t take = len - off;
        if (take > sizeof(c->buf) - c->len) {
            take = sizeof(c->buf) - c->len;
        }
        memcpy(c->buf + c->len, data + off, take);
        c->len += take;
        off += take;
        for (;;) {
            size_t hl = head_length(c->buf, c->len);
            if (hl == 0) {
                if (c->len == sizeof(c->buf)) {
                    fail(s, c, 431, "request head too large");
                }
                break;
            }
            if (!handle_request(s, c, hl)) {
                break;
            }
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
        }
    }
    if (c->closing) {
        conn_close(s, c);
    }
}

static void on_close(void *ctx, uint64_t conn, int reason_code)
{
    nk_http_server *s = ctx;
    (void)reason_code;
    http_conn *c = nk_u64map_get(&s->conns, conn);
    if (c != NULL) {
        conn_drop(s, c);
    }
}

static const nk_net_handlers http_handlers = {
    .on_accept = on_accept,
    .on_message = on_message,
    .on_close = on_close,
};

/* Close connections idle for longer than idle_ns. Ids are collected first:
 * the map must not change while it is iterated. */
static void sweep(void *arg)
{
    nk_http_server *s = arg;
    s->sweep_timer = 0;
    uint64_t now = nk_rt_now(s->rt);
    uint64_t stale[NK_HTTP_DEFAULT_MAX_CONNS];
    size_t n = 0, pos = 0;
    uint64_t key;
    void *val;
    while (n < NK_HTTP_DEFAULT_MAX_CONNS && nk_u64map_next(&s->conns, &pos, &key, &val)) {
        http_conn *c = val;
        if (now - c->last_ns >= s->o.idle_ns) {
            stale[n++] = key;
        }
    }
    for (size_t i = 0; i < n; i++) {
        http_conn *c = nk_u64map_get(&s->conns, stale[i]);
        if (c != NULL) {
            conn_close(s, c);
        }
    }
    s->sweep_timer = nk_rt_timer_start(s->rt, s->o.idle_ns / 4 + 1, sweep, s);
}

int nk_http_server_start(nk_rt *rt, const char *addr, const nk_http_options *opt,
                         nk_http_handler_fn fn, void *ctx, nk_http_server **out)
{
    nk_http_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NK_ENOMEM;
    }
    s->rt = rt;
    if (opt != NULL) {
        s->o = *opt;
    }
    if (s->o.max_conns == 0) {
        s->o.max_conns = NK_HTTP_DEFAULT_MAX_CONNS;
    }
    if (s->o.idle_ns == 0) {
        s->o.idle_ns = DEFAULT_IDLE_NS;
    }
    s->fn = fn;
    s->ctx = ctx;
    nk_u64map_init(&s->conns);
    int rc = nk_rt_listen(rt, addr, &http_handlers, s, &s->listener);
    if (rc != NK_OK) {
        nk_u64map_free(&s->conns);
        free(s);
        return rc;
    }
    s->sweep_timer = nk_rt_timer_start(rt, s->o.idle_ns / 4 + 1, sweep, s);
    *out = s;
    return NK_OK;
}

int nk_http_server_addr(nk_http_server *s, char *buf, size_t len)
{
    return nk_rt_listener_addr(s->rt, s->listener, buf, len);
}

size_t nk_http_server_connections(const nk_http_server *s)
{
    return s->conns.count;
}

void nk_http_server_free(nk_http_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->sweep_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->sweep_timer);
    }
    (void)nk_rt_listener_close(s->rt, s->listener);
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->conns, &pos, &key, &val)) {
        (void)nk_rt_close(s->rt, key);
        free(val);
    }
    nk_u64map_free(&s->conns);
    free(s);
}
