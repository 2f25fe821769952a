/*
 * resp.h - RESP2 request parsing and reply writing (pure code, no runtime).
 *
 * Parser contract
 * ---------------
 * A parser turns the byte stream of one client connection into requests
 * (argv arrays). Bytes are fed in chunks of any size; a request may be split
 * at any byte, and one chunk may hold many pipelined requests. Two request
 * forms are accepted, chosen by the first byte of each request, as Redis does:
 *
 *   multibulk  "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n";
 *              n <= 0 is an empty request and is skipped without a reply;
 *   inline     one line ended by "\n" (an optional "\r" before it is
 *              dropped), split on whitespace; "double quoted" arguments know
 *              the escapes \n \r \t \b \a \\ \" \xHH, 'single quoted' ones
 *              only \'; a closing quote must be followed by whitespace or the
 *              end of the line. An empty line is skipped.
 *
 * Usage: nk_resp_parser_feed() one chunk, then call nk_resp_parser_next()
 * until it returns NK_EAGAIN (needs more bytes). NK_OK yields one request;
 * its argv points into the parser's buffer and stays valid until the next
 * feed() or free() (next() itself never moves memory, so a caller may hold
 * one request while asking for the next one - it should not need to).
 *
 * Errors: malformed input or a broken limit makes next() return NK_EPROTO
 * and nk_resp_parser_error() give the Redis-compatible reply text (without
 * the leading '-' and the CRLF), e.g. "ERR Protocol error: invalid bulk
 * length". The parser is then dead: every later call returns NK_EPROTO. The
 * caller replies with that text and closes the connection, as Redis does.
 * Out of memory is NK_ENOMEM (also sticky).
 *
 * Limits (nk_resp_limits; defaults in brackets, all configurable):
 *   max_bulk_len      [512 MiB]  one argument (Redis proto-max-bulk-len);
 *   max_multibulk     [1048576]  arguments per request;
 *   max_inline        [64 KiB]   one inline line, and one "*n"/"$n" header
 *                                line while it has no CR yet;
 *   max_request_bytes [1 GiB]    bytes buffered for one request (Redis
 *                                client-query-buffer-limit); a bulk header
 *                                whose declared size would exceed it fails
 *                                at once instead of after the bytes arrive.
 * Memory is proportional to what was actually received, never to a
 * declared count or length.
 *
 * Stricter than Redis in one place: the two bytes after a bulk payload must
 * be CRLF ("ERR Protocol error: expected CRLF after bulk"), so a client with
 * wrong lengths fails loudly instead of desynchronising.
 *
 * Writer contract
 * ---------------
 * nk_resp_buf is a growable byte buffer; the nk_resp_add_* functions append
 * one RESP2 reply element. Allocation failure is sticky in buf->oom (all
 * later appends are no-ops) so callers check once at the end.
 */
#ifndef NK_RESP_RESP_H
#define NK_RESP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/util/err.h"

/* ------------------------------------------------------------ parser --- */

#define NK_RESP_DEFAULT_MAX_BULK (512ull * 1024 * 1024)
#define NK_RESP_DEFAULT_MAX_MULTIBULK 1048576ull
#define NK_RESP_DEFAULT_MAX_INLINE (64u * 1024u)
#define NK_RESP_DEFAULT_MAX_REQUEST (1024ull * 1024 * 1024)

typedef struct nk_resp_limits {
    uint64_t max_bulk_len;      /* 0 = default */
    uint64_t max_multibulk;     /* 0 = default */
    size_t max_inline;          /* 0 = default */
    uint64_t max_request_bytes; /* 0 = default */
} nk_resp_limits;

/* Fill `l` with the defaults above. */
void nk_resp_limits_default(nk_resp_limits *l);

/* One argument of a request: bytes borrowed from the parser (see above). */
typedef struct nk_resp_arg {
    const uint8_t *ptr;
    size_t len;
} nk_resp_arg;

typedef struct nk_resp_parser nk_resp_parser;

/* Create a parser; limits may be NULL (defaults); zero fields mean default.
 * Returns NULL when out of memory. */
nk_resp_parser *nk_resp_parser_new(const nk_resp_limits *limits);
void nk_resp_parser_free(nk_resp_parser *p);

/* Append a chunk. NK_OK, NK_ENOMEM, or the sticky NK_EPROTO of a dead
 * parser (the bytes are then dropped). */
int nk_resp_parser_feed(nk_resp_parser *p, const void *data, size_t len);

/* Next complete request: NK_OK (argc >= 1), NK_EAGAIN, NK_EPROTO, NK_ENOMEM. */
int nk_resp_parser_next(nk_resp_parser *p, const nk_resp_arg **argv, size_t *argc);

/* The reply text for the NK_EPROTO state ("ERR Protocol error: ..."), or
 * "" while the parser is healthy. */
const char *nk_resp_parser_error(const nk_resp_parser *p);

/* Bytes held (parsed but unconsumed plus unparsed), for memory accounting. */
size_t nk_resp_parser_buffered(const nk_resp_parser *p);

/* Strict decimal int64 as Redis parses integers (string2ll): optional '-',
 * no '+', no leading zeros or spaces, at most 20 characters, no overflow. */
bool nk_resp_parse_i64(const uint8_t *s, size_t n, int64_t *out);

/* ------------------------------------------------------------ writer --- */

typedef struct nk_resp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom; /* an append failed; contents are incomplete */
} nk_resp_buf;

void nk_resp_buf_init(nk_resp_buf *b);
void nk_resp_buf_free(nk_resp_buf *b);
/* Forget the contents (keeps the allocation) and clear oom. */
void nk_resp_buf_reset(nk_resp_buf *b);
/* Append raw bytes. */
void nk_resp_buf_append(nk_resp_buf *b, const void *data, size_t len);

/* "+text\r\n". CR and LF in text are replaced by spaces (a status line
 * cannot contain them). */
void nk_resp_add_simple(nk_resp_buf *b, const char *text);
/* "-text\r\n"; text is the full error ("ERR syntax error", "WRONGTYPE ...");
 * CR/LF are replaced by spaces. */
void nk_resp_add_error(nk_resp_buf *b, const char *text);
void nk_resp_add_errorf(nk_resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ":v\r\n" */
void nk_resp_add_int(nk_resp_buf *b, int64_t v);
/* "$len\r\n<bytes>\r\n" */
void nk_resp_add_bulk(nk_resp_buf *b, const void *data, size_t len);
void nk_resp_add_bulk_str(nk_resp_buf *b, const char *s);
/* "$-1\r\n" (RESP2 null) */
void nk_resp_add_null(nk_resp_buf *b);
/* "*n\r\n" header; the caller appends n elements. */
void nk_resp_add_array(nk_resp_buf *b, size_t n);

#endif /* NK_RESP_RESP_H */
