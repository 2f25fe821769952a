/*
 * fuzz_resp.c - libFuzzer target: the RESP request parser and the command
 * layer on the in-memory backend must survive arbitrary bytes.
 *
 * Input: byte 0 picks the parser limits (small ones reach the limit paths
 * quickly), byte 1 seeds the chunking; the rest is the client byte stream,
 * fed in pseudo-random chunks of 1..64 bytes. Every complete request is
 * executed; the fake clock moves a little per request so expiry paths run.
 * Invariants checked on the way (abort on violation):
 *   - every request has argc >= 1 and every reply is a well-formed single
 *     RESP2 element (checked by a tiny reply reader);
 *   - after NK_EPROTO the parser stays dead.
 *
 * Build: see tools/fuzz/CMakeLists.part.cmake (NOKV_FUZZ=ON, clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/resp/commands.h"
#include "nokv/resp/membackend.h"
#include "nokv/resp/resp.h"
#include "nokv/rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t g_now;

static uint64_t f_now(void *impl)
{
    (void)impl;
    return g_now;
}

static uint64_t f_wall(void *impl)
{
    (void)impl;
    return UINT64_C(1767225600) * NK_NSEC_PER_SEC + g_now;
}

static void f_log(void *impl, nk_log_level level, const char *msg)
{
    (void)impl;
    (void)level;
    (void)msg;
}

/* The command layer starts its expiry-sweep timer; the fuzzer never fires
 * it (the sweep runs the same code paths as SCAN). */
static uint64_t f_timer_start(void *impl, uint64_t delay, nk_timer_fn fn, void *arg)
{
    (void)impl;
    (void)delay;
    (void)fn;
    (void)arg;
    return 1;
}

static int f_timer_cancel(void *impl, uint64_t id)
{
    (void)impl;
    (void)id;
    return NK_OK;
}

static const nk_rt_ops fake_ops = {.now = f_now,
                                   .wall = f_wall,
                                   .timer_start = f_timer_start,
                                   .timer_cancel = f_timer_cancel,
                                   .log = f_log};
static nk_rt fake_rt = {&fake_ops, NULL, 1, 1, NK_LOG_ERROR};

static void on_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

/* Length of one RESP2 reply element at p (0 = malformed or truncated). */
static size_t reply_len(const uint8_t *p, size_t n, int depth)
{
    if (n < 3 || depth > 8) {
        return 0;
    }
    const uint8_t *nl = memchr(p, '\n', n);
    if (nl == NULL || nl == p || nl[-1] != '\r') {
        return 0;
    }
    size_t line = (size_t)(nl - p) + 1;
    char type = (char)p[0];
    if (type == '+' || type == '-' || type == ':') {
        return line;
    }
    long long v = strtoll((const char *)p + 1, NULL, 10);
    if (type == '$') {
        if (v == -1) {
            return line;
        }
        if (v < 0 || (size_t)v + 2 > n - line) {
            return 0;
        }
        const uint8_t *end = p + line + v;
        return end[0] == '\r' && end[1] == '\n' ? line + (size_t)v + 2 : 0;
    }
    if (type == '*') {
        size_t off = line;
        for (long long i = 0; i < v; i++) {
            size_t e = reply_len(p + off, n - off, depth + 1);
            if (e == 0) {
                return 0;
            }
            off += e;
        }
        return off;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    nk_resp_limits lim = {0};
    if (data[0] & 1) {
        lim.max_bulk_len = 1 + (data[0] >> 1);
        lim.max_multibulk = 1 + (data[0] >> 4);
        lim.max_inline = 8 + (data[0] >> 2);
        lim.max_request_bytes = 64 + data[0];
    } else {
        lim.max_bulk_len = 1 << 20;
        lim.max_request_bytes = 4 << 20;
    }
    nk_rand chunks;
    nk_rand_seed(&chunks, data[1]);
    data += 2;
    size -= 2;

    g_now = 0;
    nk_membackend *mb;
    nk_membackend_options mo = {0};
    if (nk_membackend_new(&mo, &mb) != NK_OK) {
        abort();
    }
    nk_resp_db *db;
    nk_resp_db_options dbo = {.scan_cursors = 4};
    if (nk_resp_db_new(&fake_rt, nk_membackend_backend(mb), &dbo, &db) != NK_OK) {
        abort();
    }
    nk_resp_parser *p = nk_resp_parser_new(&lim);
    nk_resp_buf out;
    nk_resp_buf_init(&out);
    size_t off = 0;
    bool dead = false;
    while (off < size && !dead) {
        size_t n = 1 + (size_t)nk_rand_below(&chunks, 64);
        if (n > size - off) {
            n = size - off;
        }
        int rc = nk_resp_parser_feed(p, data + off, n);
        off += n;
        while (rc == NK_OK) {
            const nk_resp_arg *argv;
            size_t argc;
            rc = nk_resp_parser_next(p, &argv, &argc);
            if (rc != NK_OK) {
                break;
            }
            if (argc < 1) {
                abort();
            }
            nk_resp_buf_reset(&out);
            nk_resp_call call = {.argv = argv, .argc = argc, .reply = &out, .done = on_done};
            nk_resp_db_exec(db, &call);
            if (out.oom || reply_len(out.data, out.len, 0) != out.len) {
                abort();
            }
            g_now += (uint64_t)(argc * 7) * NK_NSEC_PER_MSEC;
            if (call.quit) {
                dead = true;
                break;
            }
        }
        if (rc == NK_EPROTO) {
            const nk_resp_arg *argv;
            size_t argc;
            const char *err = nk_resp_parser_error(p);
            if (strncmp(err, "ERR Protocol error: ", 20) != 0 ||
                nk_resp_parser_next(p, &argv, &argc) != NK_EPROTO) {
                abort();
            }
            dead = true;
        }
    }
    nk_resp_buf_free(&out);
    nk_resp_parser_free(p);
    nk_resp_db_free(db);
    nk_membackend_free(mb);
    return 0;
}
