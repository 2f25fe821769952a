/*
 * http.h - a tiny HTTP/1.1 server for operator endpoints (/metrics, /health,
 * /ready), over the runtime's raw connections (nokv/rt.h), so it runs the
 * same under `nokv serve` and under the simulator.
 *
 * Scope, on purpose small: GET and HEAD only, no request bodies, no chunked
 * encoding, no TLS. Keep-alive is honoured (HTTP/1.1 default, or
 * "Connection: keep-alive" on 1.0) so a Prometheus scraper can reuse its
 * connection; "Connection: close" closes after the reply.
 *
 * Failure isolation: a request whose head (request line + headers) exceeds
 * NK_HTTP_MAX_REQUEST bytes gets 431, a malformed one 400, a method other
 * than GET/HEAD 405, a body (Content-Length > 0 or Transfer-Encoding) 400;
 * each of these closes that connection only. Over max_conns, a new
 * connection gets 503 and is closed. A connection idle for idle_ns is
 * closed, so forgotten clients cannot pin memory.
 *
 * Everything runs on the loop thread; the handler is called once per
 * request and fills the reply synchronously.
 */
#ifndef NK_SERVER_HTTP_H
#define NK_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/rt.h"

#define NK_HTTP_MAX_REQUEST 8192u
#define NK_HTTP_DEFAULT_MAX_CONNS 64u

/* A growable byte buffer for reply bodies. On allocation failure it stops
 * growing and remembers it (failed): the server then answers 500. */
typedef struct nk_http_body {
    char *data;
    size_t len, cap;
    bool failed;
} nk_http_body;

void nk_http_body_append(nk_http_body *b, const char *s, size_t len);
void nk_http_body_printf(nk_http_body *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct nk_http_reply {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* default "text/plain; charset=utf-8" */
    nk_http_body body;
} nk_http_reply;

/* method is "GET" or "HEAD" (for HEAD the server sends no body); path is the
 * request target without the query string. An unknown path: set 404. */
typedef void (*nk_http_handler_fn)(void *ctx, const char *method, const char *path,
                                   nk_http_reply *reply);

typedef struct nk_http_options {
    uint32_t max_conns; /* 0 = NK_HTTP_DEFAULT_MAX_CONNS */
    uint64_t idle_ns;   /* 0 = 30 s */
} nk_http_options;

typedef struct nk_http_server nk_http_server;

/* Listen on addr ("127.0.0.1:9100"; port 0 = any). opt may be NULL.
 * NK_OK, NK_EADDR, NK_ENOMEM or the runtime's error. */
int nk_http_server_start(nk_rt *rt, const char *addr, const nk_http_options *opt,
                         nk_http_handler_fn fn, void *ctx, nk_http_server **out);

int nk_http_server_addr(nk_http_server *s, char *buf, size_t len);

/* Open connections (tests). */
size_t nk_http_server_connections(const nk_http_server *s);

/* Close the listener and every connection, free. NULL is ignored. */
void nk_http_server_free(nk_http_server *s);

#endif /* NK_SERVER_HTTP_H */
