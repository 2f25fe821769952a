/*
 * test_resp_parser.c - the RESP2 request parser and reply writer.
 *
 * The core property: however a byte stream is cut into chunks, the parser
 * yields the same requests and the same final state (waiting for more, or
 * the same protocol error). Every input below is checked whole, split at
 * every byte boundary, byte by byte and in seeded random chunks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/resp/resp.h"
#include "nokv/util/rand.h"

/* A transcript: every request as "[n]arg|arg|...\n" (bytes escaped), then
 * "EAGAIN" or "ERR <text>". */
typedef struct transcript {
    char *s;
    size_t len, cap;
} transcript;

static void t_add(transcript *t, const char *data, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->len, data, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void t_addf(transcript *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void t_addf(transcript *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    t_add(t, tmp, (size_t)n);
}

/* Drain every ready request into t; returns the status that stopped it. */
static int drain(nk_resp_parser *p, transcript *t)
{
    for (;;) {
        const nk_resp_arg *argv;
        size_t argc;
        int rc = nk_resp_parser_next(p, &argv, &argc);
        if (rc != NK_OK) {
            return rc;
        }
        assert_true(argc >= 1);
        t_addf(t, "[%zu]", argc);
        for (size_t i = 0; i < argc; i++) {
            for (size_t j = 0; j < argv[i].len; j++) {
                uint8_t c = argv[i].ptr[j];
                if (c >= 0x20 && c < 0x7f && c != '|' && c != '\\') {
                    t_add(t, (const char *)&c, 1);
                } else {
                    t_addf(t, "\\%02x", c);
                }
            }
            t_add(t, "|", 1);
        }
        t_add(t, "\n", 1);
    }
}

static void finish(nk_resp_parser *p, int rc, transcript *t)
{
    if (rc == NK_EAGAIN) {
        t_addf(t, "EAGAIN");
    } else {
        t_addf(t, "ERR %s", nk_resp_parser_error(p));
        /* the error is sticky */
        const nk_resp_arg *argv;
        size_t argc;
        assert_int_equal(nk_resp_parser_next(p, &argv, &argc), rc);
        assert_int_equal(nk_resp_parser_feed(p, "PING\r\n", 6), rc);
    }
}

/* Feed `in` cut at the given sorted cut points; return the transcript. */
static char *run_cuts(const nk_resp_limits *lim, const uint8_t *in, size_t n, const size_t *cuts,
                      size_t ncuts)
{
    nk_resp_parser *p = nk_resp_parser_new(lim);
    assert_non_null(p);
    transcript t = {0};
    t_add(&t, "", 0);
    size_t prev = 0;
    int rc = NK_EAGAIN;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = nk_resp_parser_feed(p, in + prev, end - prev);
        if (rc == NK_OK) {
            rc = drain(p, &t);
        }
        prev = end;
        if (rc != NK_EAGAIN) {
            break;
        }
    }
    finish(p, rc, &t);
    nk_resp_parser_free(p);
    return t.s;
}

/* The whole-input transcript must equal every chunking's transcript. */
static char *check_all_splits(const nk_resp_limits *lim, const void *data, size_t n)
{
    const uint8_t *in = data;
    char *whole = run_cuts(lim, in, n, NULL, 0);
    for (size_t cut = 1; cut < n; cut++) {
        char *s = run_cuts(lim, in, n, &cut, 1);
        if (strcmp(s, whole) != 0) {
            fail_msg("split at %zu differs:\n%s\nvs whole:\n%s", cut, s, whole);
        }
        free(s);
    }
    if (n <= 4096) {
        size_t *cuts = malloc((n ? n : 1) * sizeof(*cuts));
        for (size_t i = 1; i < n; i++) {
            cuts[i - 1] = i;
        }
        char *s = run_cuts(lim, in, n, cuts, n ? n - 1 : 0);
        assert_string_equal(s, whole);
        free(s);
        free(cuts);
    }
    nk_rand r;
    nk_rand_seed(&r, n);
    for (int round = 0; round < 20; round++) {
        size_t cuts[64];
        size_t k = 0, at = 0;
        while (k < 64 && n > 0) {
            at += 1 + nk_rand_below(&r, n / 8 + 2);
            if (at >= n) {
                break;
            }
            cuts[k++] = at;
        }
        char *s = run_cuts(lim, in, n, cuts, k);
        assert_string_equal(s, whole);
        free(s);
    }
    return whole;
}

static void expect(const nk_resp_limits *lim, const char *in, size_t n, const char *want)
{
    char *got = check_all_splits(lim, in, n);
    if (strcmp(got, want) != 0) {
        fail_msg("input %.*s\ngot:\n%s\nwant:\n%s", (int)(n > 200 ? 200 : n), in, got, want);
    }
    free(got);
}

#define EXPECT(in, want) expect(NULL, in, sizeof(in) - 1, want)

static void test_multibulk(void **state)
{
    (void)state;
    EXPECT("*1\r\n$4\r\nPING\r\n", "[1]PING|\nEAGAIN");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", "[3]SET|k||\nEAGAIN");
    /* binary payloads, CRLF inside a bulk, pipelining, empty requests */
    EXPECT("*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
           "[2]GET|a\\0d\\0ab|\n[1]PING|\nEAGAIN");
    EXPECT("*2\r\n$3\r\nGET\r\n$3\r\n\x00\xff\x01\r\n", "[2]GET|\\00\\ff\\01|\nEAGAIN");
    /* incomplete: waits */
    EXPECT("*2\r\n$3\r\nGET\r\n$5\r\nab", "EAGAIN");
    EXPECT("*2\r\n$3\r\nGET\r\n$5\r", "EAGAIN");
}

static void test_inline(void **state)
{
    (void)state;
    EXPECT("PING\r\n", "[1]PING|\nEAGAIN");
    EXPECT("PING\n", "[1]PING|\nEAGAIN");
    EXPECT("  set   k  v \r\nget k\n", "[3]set|k|v|\n[2]get|k|\nEAGAIN");
    EXPECT("\r\n\n   \r\nPING\r\n", "[1]PING|\nEAGAIN"); /* blank lines are skipped */
    EXPECT("set \"a b\" 'c\\'d' \"\\x41\\n\\t\\\\\\\"\" \"\"\r\n",
           "[5]set|a b|c'd|A\\0a\\09\\5c\"||\nEAGAIN");
    /* as in Redis, a quote may open inside a word */
    EXPECT("echo a\"b c\"\r\n", "[2]echo|ab c|\nEAGAIN");
    EXPECT("PING", "EAGAIN");
    /* mixing forms on one connection */
    EXPECT("PING\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n", "[1]PING|\n[1]PING|\n[2]ECHO|x|\nEAGAIN");
}

static void test_protocol_errors(void **state)
{
    (void)state;
    EXPECT("*abc\r\n", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*+1\r\n", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*01\r\n", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*1\rx", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*1048577\r\n", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*99999999999999999999999\r\n", "ERR ERR Protocol error: invalid multibulk length");
    EXPECT("*1\r\nx", "ERR ERR Protocol error: expected '$', got 'x'");
    EXPECT("*2\r\n$1\r\na\r\n:1\r\n", "ERR ERR Protocol error: expected '$', got ':'");
    EXPECT("*1\r\n$-1\r\n", "ERR ERR Protocol error: invalid bulk length");
    EXPECT("*1\r\n$x\r\n", "ERR ERR Protocol error: invalid bulk length");
    EXPECT("*1\r\n$536870913\r\n",
           "ERR ERR Protocol error: invalid bulk length: 536870913 bytes is over the limit of "
           "536870912 bytes per argument (proto-max-bulk-len)");
    EXPECT("*1\r\n$3\r\nabcXY", "ERR ERR Protocol error: expected CRLF after bulk");
    EXPECT("set \"abc\r\n", "ERR ERR Protocol error: unbalanced quotes in request");
    EXPECT("set \"a\"b\r\n", "ERR ERR Protocol error: unbalanced quotes in request");
    EXPECT("set 'a'b\r\n", "ERR ERR Protocol error: unbalanced quotes in request");
    /* requests before the error are still delivered */
    EXPECT("PING\r\n*1\r\n$2\r\nab\r\n*x\r\n",
           "[1]PING|\n[1]ab|\nERR ERR Protocol error: invalid multibulk length");
    /* a control byte in the echo of the bad byte cannot break the line */
    EXPECT("*1\r\n\r", "ERR ERR Protocol error: expected '$', got ' '");
}

static void test_limits(void **state)
{
    (void)state;
    /* inline longer than 64 KiB without a newline */
    size_t n = 64 * 1024 + 2;
    char *big = malloc(n + 64);
    memset(big, 'a', n);
    char *t = check_all_splits(NULL, big, n);
    assert_string_equal(t, "ERR ERR Protocol error: too big inline request");
    free(t);
    /* a header line without CR past the limit */
    big[0] = '*';
    memset(big + 1, '1', n - 1);
    t = check_all_splits(NULL, big, n);
    assert_string_equal(t, "ERR ERR Protocol error: too big mbulk count string");
    free(t);
    big = realloc(big, n + 64);
    memset(big + 5, '1', n + 59);
    memcpy(big, "*1\r\n$", 5);
    t = check_all_splits(NULL, big, n + 64);
    assert_string_equal(t, "ERR ERR Protocol error: too big bulk count string");
    free(t);
    free(big);

    nk_resp_limits lim = {
        .max_bulk_len = 16, .max_multibulk = 3, .max_inline = 10, .max_request_bytes = 40};
    expect(&lim, "*1\r\n$17\r\n", strlen("*1\r\n$17\r\n"),
           "ERR ERR Protocol error: invalid bulk length: 17 bytes is over the limit of 16 bytes "
           "per argument (proto-max-bulk-len)");
    expect(&lim, "*1\r\n$16\r\n0123456789abcdef\r\n", strlen("*1\r\n$16\r\n0123456789abcdef\r\n"),
           "[1]0123456789abcdef|\nEAGAIN");
    expect(&lim, "*4\r\n", strlen("*4\r\n"), "ERR ERR Protocol error: invalid multibulk length");
    expect(&lim, "abcdefghijk\r\n", strlen("abcdefghijk\r\n"),
           "ERR ERR Protocol error: too big inline request");
    expect(&lim, "abcdefghij\r\n", strlen("abcdefghij\r\n"), "[1]abcdefghij|\nEAGAIN");
    /* total request bytes: refused at the header that would overflow */
    expect(&lim, "*3\r\n$16\r\n0123456789abcdef\r\n$16\r\n",
           strlen("*3\r\n$16\r\n0123456789abcdef\r\n$16\r\n"),
           "ERR ERR Protocol error: request too big (query buffer limit)");
    /* a declared count with few arguments allocates nothing big and waits */
    expect(NULL, "*1048576\r\n$1\r\na\r\n", 17, "EAGAIN");
}

static void test_large_bulk_in_small_chunks(void **state)
{
    (void)state;
    size_t n = 4 * 1024 * 1024;
    char hdr[64];
    int h = snprintf(hdr, sizeof(hdr), "*2\r\n$3\r\nSET\r\n$%zu\r\n", n);
    uint8_t *in = malloc((size_t)h + n + 2);
    memcpy(in, hdr, (size_t)h);
    for (size_t i = 0; i < n; i++) {
        in[h + i] = (uint8_t)(i * 31);
    }
    memcpy(in + h + n, "\r\n", 2);
    nk_resp_parser *p = nk_resp_parser_new(NULL);
    const nk_resp_arg *argv;
    size_t argc;
    size_t total = (size_t)h + n + 2;
    for (size_t off = 0; off < total; off += 1000) {
        size_t len = total - off < 1000 ? total - off : 1000;
        assert_int_equal(nk_resp_parser_feed(p, in + off, len), NK_OK);
        int rc = nk_resp_parser_next(p, &argv, &argc);
        if (off + len < total) {
            assert_int_equal(rc, NK_EAGAIN);
        } else {
            assert_int_equal(rc, NK_OK);
            assert_int_equal(argc, 2);
            assert_int_equal(argv[1].len, n);
            assert_memory_equal(argv[1].ptr, in + h, n);
        }
    }
    assert_int_equal(nk_resp_parser_next(p, &argv, &argc), NK_EAGAIN);
    nk_resp_parser_free(p);
    free(in);
}

static void test_pipeline_of_many(void **state)
{
    (void)state;
    /* 10000 pipelined requests in one feed: all come out, in order */
    transcript in = {0};
    for (int i = 0; i < 10000; i++) {
        if (i % 2) {
            t_addf(&in, "*2\r\n$3\r\nGET\r\n$%d\r\nk%d\r\n",
                   i < 10     ? 2
                   : i < 100  ? 3
                   : i < 1000 ? 4
                              : 5,
                   i);
        } else {
            t_addf(&in, "GET k%d\r\n", i);
        }
    }
    nk_resp_parser *p = nk_resp_parser_new(NULL);
    assert_int_equal(nk_resp_parser_feed(p, in.s, in.len), NK_OK);
    for (int i = 0; i < 10000; i++) {
        const nk_resp_arg *argv;
        size_t argc;
        assert_int_equal(nk_resp_parser_next(p, &argv, &argc), NK_OK);
        char want[16];
        int wn = snprintf(want, sizeof(want), "k%d", i);
        assert_int_equal(argc, 2);
        assert_int_equal(argv[1].len, (size_t)wn);
        assert_memory_equal(argv[1].ptr, want, (size_t)wn);
    }
    const nk_resp_arg *argv;
    size_t argc;
    assert_int_equal(nk_resp_parser_next(p, &argv, &argc), NK_EAGAIN);
    /* buffer is compacted on the next feed */
    assert_int_equal(nk_resp_parser_feed(p, "PI", 2), NK_OK);
    assert_int_equal(nk_resp_parser_buffered(p), 2);
    nk_resp_parser_free(p);
    free(in.s);
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    /* Arbitrary bytes (biased towards protocol characters) either parse,
     * wait or fail cleanly - and identically under any chunking. */
    nk_rand r;
    nk_rand_seed(&r, 42);
    static const char alphabet[] = "*$\r\n0123456789-abc \"'\\x";
    for (int round = 0; round < 300; round++) {
        uint8_t in[96];
        size_t n = 1 + nk_rand_below(&r, sizeof(in));
        for (size_t i = 0; i < n; i++) {
            in[i] = nk_rand_chance(&r, 1, 8)
                        ? (uint8_t)nk_rand_below(&r, 256)
                        : (uint8_t)alphabet[nk_rand_below(&r, sizeof(alphabet) - 1)];
        }
        nk_resp_limits lim = {.max_bulk_len = 32, .max_inline = 40, .max_request_bytes = 64};
        free(check_all_splits(&lim, in, n));
    }
}

static void test_writer(void **state)
{
    (void)state;
    nk_resp_buf b;
    nk_resp_buf_init(&b);
    nk_resp_add_simple(&b, "OK");
    nk_resp_add_error(&b, "ERR bad\r\nthing");
    nk_resp_add_errorf(&b, "ERR n=%d", 5);
    nk_resp_add_int(&b, -42);
    nk_resp_add_int(&b, INT64_MIN);
    nk_resp_add_bulk(&b, "a\r\nb", 4);
    nk_resp_add_bulk(&b, "", 0);
    nk_resp_add_null(&b);
    nk_resp_add_array(&b, 2);
    nk_resp_add_bulk_str(&b, "x");
    nk_resp_add_array(&b, 0);
    const char *want = "+OK\r\n-ERR bad  thing\r\n-ERR n=5\r\n:-42\r\n:-9223372036854775808\r\n"
                       "$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*2\r\n$1\r\nx\r\n*0\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    assert_false(b.oom);
    nk_resp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    nk_resp_buf_free(&b);
}

static void test_parse_i64(void **state)
{
    (void)state;
    int64_t v;
    assert_true(nk_resp_parse_i64((const uint8_t *)"0", 1, &v) && v == 0);
    assert_true(nk_resp_parse_i64((const uint8_t *)"-12", 3, &v) && v == -12);
    assert_true(nk_resp_parse_i64((const uint8_t *)"9223372036854775807", 19, &v) &&
                v == INT64_MAX);
    assert_true(nk_resp_parse_i64((const uint8_t *)"-9223372036854775808", 20, &v) &&
                v == INT64_MIN);
    assert_false(nk_resp_parse_i64((const uint8_t *)"9223372036854775808", 19, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"-0", 2, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"01", 2, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)" 1", 2, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"+1", 2, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"1a", 2, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"", 0, &v));
    assert_false(nk_resp_parse_i64((const uint8_t *)"-", 1, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_large_bulk_in_small_chunks),
        cmocka_unit_test(test_pipeline_of_many),
        cmocka_unit_test(test_random_bytes_never_crash),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_parse_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
