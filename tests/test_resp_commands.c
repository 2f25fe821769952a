/*
 * test_resp_commands.c - every RESP command against the in-memory backend,
 * with a fake runtime whose clock the test moves (expiry) and whose timers
 * the test fires (asynchronous write completions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/resp/commands.h"
#include "nokv/resp/membackend.h"
#include "nokv/rt.h"

/* ------------------------------------------------------- fake runtime --- */

#define MAX_TIMERS 4096

typedef struct ftimer {
    uint64_t id, deadline;
    nk_timer_fn fn;
    void *arg;
    bool live;
} ftimer;

static struct {
    uint64_t now;
    ftimer t[MAX_TIMERS];
    size_t n;
    uint64_t next_id;
} F;

#define WALL0 (UINT64_C(1767225600) * NK_NSEC_PER_SEC) /* 2026-01-01 */

static uint64_t f_now(void *impl)
{
    return F.now;
}
static uint64_t f_wall(void *impl)
{
    return WALL0 + F.now;
}

static uint64_t f_timer_start(void *impl, uint64_t delay, nk_timer_fn fn, void *arg)
{
    assert_true(F.n < MAX_TIMERS);
    ftimer *t = &F.t[F.n++];
    t->id = ++F.next_id;
    t->deadline = F.now + delay;
    t->fn = fn;
    t->arg = arg;
    t->live = true;
    return t->id;
}

static int f_timer_cancel(void *impl, uint64_t id)
{
    for (size_t i = 0; i < F.n; i++) {
        if (F.t[i].id == id && F.t[i].live) {
            F.t[i].live = false;
            return NK_OK;
        }
    }
    return NK_ENOENT;
}

static void f_log(void *impl, nk_log_level level, const char *msg)
{
    (void)level;
    (void)msg;
}

static const nk_rt_ops fake_ops = {
    .now = f_now,
    .wall = f_wall,
    .timer_start = f_timer_start,
    .timer_cancel = f_timer_cancel,
    .log = f_log,
};

static nk_rt fake_rt = {&fake_ops, NULL, 1, 7, NK_LOG_DEBUG};

/* Move the clock, firing due timers in (deadline, start) order. */
static void advance_ms(uint64_t ms)
{
    uint64_t target = F.now + ms * NK_NSEC_PER_MSEC;
    for (;;) {
        ftimer *best = NULL;
        for (size_t i = 0; i < F.n; i++) {
            ftimer *t = &F.t[i];
            if (t->live && t->deadline <= target &&
                (best == NULL || t->deadline < best->deadline ||
                 (t->deadline == best->deadline && t->id < best->id))) {
                best = t;
            }
        }
        if (best == NULL) {
            break;
        }
        best->live = false;
        F.now = best->deadline;
        best->fn(best->arg);
    }
    F.now = target;
    if (F.n > MAX_TIMERS / 2) {
        size_t k = 0;
        for (size_t i = 0; i < F.n; i++) {
            if (F.t[i].live) {
                F.t[k++] = F.t[i];
            }
        }
        F.n = k;
    }
}

/* --------------------------------------------------------- fixture --- */

typedef struct fx {
    nk_membackend *mb;
    nk_resp_db *db;
    nk_resp_buf out;
    int done_calls;
    int last_status;
    bool quit;
    bool read, wrote;
} fx;

static fx X;

static void setup_with(bool async, const nk_resp_db_options *dbo)
{
    memset(&F, 0, sizeof(F));
    memset(&X, 0, sizeof(X));
    nk_membackend_options o = {.rt = &fake_rt,
                               .async = async,
                               .done_min_ns = NK_NSEC_PER_MSEC,
                               .done_max_ns = 5 * NK_NSEC_PER_MSEC};
    assert_int_equal(nk_membackend_new(&o, &X.mb), NK_OK);
    assert_int_equal(nk_resp_db_new(&fake_rt, nk_membackend_backend(X.mb), dbo, &X.db), NK_OK);
    nk_resp_buf_init(&X.out);
}

static int setup(void **state)
{
    (void)state;
    setup_with(false, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nk_resp_db_free(X.db);
    nk_membackend_free(X.mb);
    nk_resp_buf_free(&X.out);
    return 0;
}

static void on_done(void *arg, int status)
{
    (void)arg;
    X.done_calls++;
    X.last_status = status;
}

/* Run one command given as argv; returns the reply (valid until the next). */
static const char *run_argv(const nk_resp_arg *argv, size_t argc)
{
    nk_resp_buf_reset(&X.out);
    nk_resp_call c = {.argv = argv, .argc = argc, .reply = &X.out, .done = on_done};
    nk_resp_db_exec(X.db, &c);
    X.quit = c.quit;
    X.read = c.read;
    X.wrote = c.wrote;
    nk_resp_buf_append(&X.out, "", 1);
    assert_false(X.out.oom);
    return (const char *)X.out.data;
}

/* Run a command written as space-separated words. */
static const char *run(const char *cmd)
{
    static char buf[4096];
    nk_resp_arg argv[64];
    size_t argc = 0;
    snprintf(buf, sizeof(buf), "%s", cmd);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        argv[argc].ptr = (const uint8_t *)w;
        argv[argc].len = strlen(w);
        argc++;
    }
    return run_argv(argv, argc);
}

#define EQ(cmd, want) assert_string_equal(run(cmd), want)

/* ----------------------------------------------------------- tests --- */

static void test_ping_echo_unknown_arity(void **state)
{
    (void)state;
    EQ("PING", "+PONG\r\n");
    EQ("ping hello", "$5\r\nhello\r\n");
    EQ("PING a b", "-ERR wrong number of arguments for 'ping' command\r\n");
    EQ("ECHO x", "$1\r\nx\r\n");
    EQ("echo", "-ERR wrong number of arguments for 'echo' command\r\n");
    EQ("GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EQ("GET a b", "-ERR wrong number of arguments for 'get' command\r\n");
    EQ("FOO a b", "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    EQ("foo", "-ERR unknown command 'foo', with args beginning with: \r\n");
    /* hostile bytes in the echoed name cannot break the reply line */
    nk_resp_arg a[1] = {{(const uint8_t *)"x\r\ny", 4}};
    assert_string_equal(run_argv(a, 1),
                        "-ERR unknown command 'x??y', with args beginning with: \r\n");
    EQ("SELECT 0", "+OK\r\n");
    EQ("SELECT 1", "-ERR DB index is out of range\r\n");
    EQ("SELECT x", "-ERR value is not an integer or out of range\r\n");
    EQ("QUIT", "+OK\r\n");
    assert_true(X.quit);
    assert_true(nk_resp_db_stats(X.db)->error_replies >= 7);
}

static void test_get_set_options(void **state)
{
    (void)state;
    EQ("GET k", "$-1\r\n");
    EQ("SET k v", "+OK\r\n");
    EQ("GET k", "$1\r\nv\r\n");
    EQ("SET k v2 XX", "+OK\r\n");
    EQ("SET new v XX", "$-1\r\n");
    EQ("GET new", "$-1\r\n");
    EQ("SET k v NX", "$-1\r\n");
    EQ("SET k v3 NX GET", "$2\r\nv2\r\n"); /* NX not met: old value, unchanged */
    EQ("GET k", "$2\r\nv2\r\n");
    EQ("SET k v4 GET", "$2\r\nv2\r\n");
    EQ("SET fresh v GET", "$-1\r\n");
    EQ("GET fresh", "$1\r\nv\r\n");
    EQ("set k2 v nx", "+OK\r\n"); /* options are case-insensitive */
    const char *syntax[] = {"SET k v NX XX",        "SET k v EX",           "SET k v EX 10 PX 10",
                            "SET k v KEEPTTL EX 1", "SET k v EX 1 KEEPTTL", "SET k v FOO",
                            "SET k v GET GET",      "SET k v NX NX"};
    for (size_t i = 0; i < sizeof(syntax) / sizeof(syntax[0]); i++) {
        EQ(syntax[i], "-ERR syntax error\r\n");
    }
    EQ("SET k v EX abc", "-ERR value is not an integer or out of range\r\n");
    EQ("SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n");
    EQ("SET k v PX -5", "-ERR invalid expire time in 'set' command\r\n");
    EQ("SET k v EX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
    EQ("SET k v PX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
    EQ("GET k", "$2\r\nv4\r\n"); /* no failed SET changed anything */
    EQ("TYPE k", "+string\r\n");
    EQ("TYPE nope", "+none\r\n");
    /* binary-safe keys and values */
    nk_resp_arg a[3] = {
        {(const uint8_t *)"SET", 3}, {(const uint8_t *)"\0k", 2}, {(const uint8_t *)"\r\n\0", 3}};
    assert_string_equal(run_argv(a, 3), "+OK\r\n");
    a[0].ptr = (const uint8_t *)"GET";
    run_argv(a, 2);
    assert_memory_equal(X.out.data, "$3\r\n\r\n\0\r\n", 10);
}

static void test_expiry(void **state)
{
    (void)state;
    EQ("SET k v PX 100", "+OK\r\n");
    EQ("PTTL k", ":100\r\n");
    EQ("TTL k", ":0\r\n");
    advance_ms(100);
    EQ("GET k", "$1\r\nv\r\n"); /* expired only once now > expire-at */
    advance_ms(1);
    size_t before = nk_membackend_count(X.mb);
    EQ("GET k", "$-1\r\n");
    EQ("EXISTS k", ":0\r\n");
    EQ("TTL k", ":-2\r\n");
    assert_int_equal(nk_membackend_count(X.mb), before - 1); /* lazily deleted */
    assert_int_equal(nk_resp_db_stats(X.db)->expired_keys, 1);

    EQ("SET k v EX 10", "+OK\r\n");
    EQ("TTL k", ":10\r\n");
    advance_ms(2500);
    EQ("TTL k", ":8\r\n"); /* 7.5 s rounds to 8, as Redis */
    EQ("SET k v2 KEEPTTL", "+OK\r\n");
    EQ("PTTL k", ":7500\r\n");
    EQ("INCR n", ":1\r\n");
    EQ("SET n 5 PX 1000", "+OK\r\n");
    EQ("INCRBY n 3", ":8\r\n");
    EQ("PTTL n", ":1000\r\n"); /* INCR keeps the TTL */
    EQ("SET k v3", "+OK\r\n");
    EQ("TTL k", ":-1\r\n"); /* plain SET clears it */

    /* absolute deadlines; one in the past deletes the key */
    char cmd[128];
    uint64_t now_s = (WALL0 + F.now) / NK_NSEC_PER_SEC;
    snprintf(cmd, sizeof(cmd), "SET a v EXAT %llu", (unsigned long long)(now_s + 100));
    EQ(cmd, "+OK\r\n");
    assert_true(strcmp(run("TTL a"), ":100\r\n") == 0 || strcmp(run("TTL a"), ":99\r\n") == 0);
    snprintf(cmd, sizeof(cmd), "SET a v PXAT %llu",
             (unsigned long long)((WALL0 + F.now) / NK_NSEC_PER_MSEC - 1));
    EQ(cmd, "+OK\r\n");
    EQ("EXISTS a", ":0\r\n");
    snprintf(cmd, sizeof(cmd), "SET never v EXAT 1");
    EQ(cmd, "+OK\r\n");
    EQ("EXISTS never", ":0\r\n");

    /* NX / XX treat an expired key as absent; MSET clears TTLs */
    EQ("SET e old PX 10", "+OK\r\n");
    EQ("SET x old PX 10", "+OK\r\n");
    EQ("SET m old PX 10", "+OK\r\n");
    advance_ms(11);
    EQ("SET e new XX", "$-1\r\n");
    EQ("SET e new NX GET", "$-1\r\n");
    EQ("GET e", "$3\r\nnew\r\n");
    EQ("INCR x", ":1\r\n"); /* an expired counter restarts from 0 */
    EQ("TTL x", ":-1\r\n");
    EQ("MSET m 1", "+OK\r\n");
    EQ("TTL m", ":-1\r\n");
    EQ("DEL m", ":1\r\n");
}

static void test_incr_decr(void **state)
{
    (void)state;
    EQ("INCR c", ":1\r\n");
    EQ("INCRBY c 10", ":11\r\n");
    EQ("DECR c", ":10\r\n");
    EQ("DECRBY c 20", ":-10\r\n");
    EQ("GET c", "$3\r\n-10\r\n");
    EQ("INCRBY c abc", "-ERR value is not an integer or out of range\r\n");
    EQ("INCRBY c 1.5", "-ERR value is not an integer or out of range\r\n");
    EQ("SET s abc", "+OK\r\n");
    EQ("INCR s", "-ERR value is not an integer or out of range\r\n");
    EQ("SET s 01", "+OK\r\n");
    EQ("INCR s", "-ERR value is not an integer or out of range\r\n");
    EQ("SET s 12345678901234567890123", "+OK\r\n");
    EQ("INCR s", "-ERR value is not an integer or out of range\r\n");
    EQ("SET big 9223372036854775807", "+OK\r\n");
    EQ("INCR big", "-ERR increment or decrement would overflow\r\n");
    EQ("INCRBY big 0", ":9223372036854775807\r\n");
    EQ("SET small -9223372036854775808", "+OK\r\n");
    EQ("DECR small", "-ERR increment or decrement would overflow\r\n");
    EQ("INCRBY small -1", "-ERR increment or decrement would overflow\r\n");
    EQ("DECRBY c -9223372036854775808", "-ERR decrement would overflow\r\n");
    EQ("GET small", "$20\r\n-9223372036854775808\r\n");
    EQ("INCR", "-ERR wrong number of arguments for 'incr' command\r\n");
    EQ("INCRBY c", "-ERR wrong number of arguments for 'incrby' command\r\n");
}

static void test_multi_key(void **state)
{
    (void)state;
    EQ("MSET a 1 b 2 c 3", "+OK\r\n");
    EQ("MGET a b x c", "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n3\r\n");
    EQ("EXISTS a a x", ":2\r\n"); /* duplicates count each time, as Redis */
    EQ("DEL a a x b", ":2\r\n");  /* ... but are deleted once */
    EQ("DBSIZE", ":1\r\n");
    EQ("DEL a", ":0\r\n");
    EQ("MSET a", "-ERR wrong number of arguments for 'mset' command\r\n");
    EQ("MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n");
    EQ("MSET d 1 d 2", "+OK\r\n"); /* the later pair wins */
    EQ("GET d", "$1\r\n2\r\n");
    EQ("DEL", "-ERR wrong number of arguments for 'del' command\r\n");
    EQ("MGET", "-ERR wrong number of arguments for 'mget' command\r\n");
}

static void test_mset_is_one_atomic_batch(void **state)
{
    (void)state;
    uint64_t b0 = nk_membackend_batches(X.mb);
    EQ("MSET a 1 b 2 c 3", "+OK\r\n");
    assert_int_equal(nk_membackend_batches(X.mb), b0 + 1);
    assert_int_equal(X.done_calls, 1);
    /* a refused batch applies nothing */
    nk_membackend_fail_writes(X.mb, 1, NK_ENOSPC);
    assert_string_equal(run("MSET a 9 x 9 y 9"),
                        "-ERR write rejected: no space left on device (NK_ENOSPC)\r\n");
    EQ("MGET a x y", "*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n");
    assert_int_equal(X.done_calls, 1);
    /* multi-key DEL is one batch too */
    b0 = nk_membackend_batches(X.mb);
    EQ("DEL a b c", ":3\r\n");
    assert_int_equal(nk_membackend_batches(X.mb), b0 + 1);
    /* a completion failure is reported through done; the reply stays the
     * promise the server replaces (test_resp_server) */
    nk_membackend_fail_completions(X.mb, 1, NK_EIO);
    EQ("SET z 1", "+OK\r\n");
    assert_int_equal(X.last_status, NK_EIO);
    char text[256];
    nk_resp_write_error(NK_EIO, text, sizeof(text));
    assert_non_null(strstr(text, "ERR write not confirmed durable"));
}

static void test_async_completion(void **state)
{
    (void)state;
    teardown(NULL);
    setup_with(true, NULL);
    for (int i = 0; i < 50; i++) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "SET k%d v", i);
        EQ(cmd, "+OK\r\n");
    }
    /* visible on submit, durable later */
    EQ("GET k7", "$1\r\nv\r\n");
    assert_int_equal(X.done_calls, 0);
    assert_int_equal(nk_membackend_pending(X.mb), 50);
    advance_ms(10);
    assert_int_equal(X.done_calls, 50);
    assert_int_equal(nk_membackend_pending(X.mb), 0);
    /* freeing with writes in flight reports them stopped */
    EQ("SET late v", "+OK\r\n");
    nk_membackend_free(X.mb);
    assert_int_equal(X.done_calls, 51);
    assert_int_equal(X.last_status, NK_ESTOPPED);
    nk_resp_db_free(X.db);
    nk_resp_buf_free(&X.out);
    /* re-create for teardown */
    setup_with(false, NULL);
}

/* Parse a SCAN reply: returns the cursor, appends keys to `seen`. */
static uint64_t parse_scan(const char *r, char keys[][32], size_t *nkeys)
{
    unsigned long long cur;
    int n;
    assert_int_equal(sscanf(r, "*2\r\n$%*d\r\n%llu\r\n*%d\r\n", &cur, &n), 2);
    const char *p = strstr(r + 4, "\r\n*");
    p = strchr(p + 3, '\n') + 1;
    for (int i = 0; i < n; i++) {
        int len;
        assert_int_equal(sscanf(p, "$%d\r\n", &len), 1);
        p = strchr(p, '\n') + 1;
        assert_true(len < 32);
        memcpy(keys[*nkeys], p, (size_t)len);
        keys[*nkeys][len] = '\0';
        (*nkeys)++;
        p += len + 2;
    }
    return cur;
}

static void test_scan_full_coverage_with_concurrent_writes(void **state)
{
    (void)state;
    char cmd[96];
    for (int i = 0; i < 1000; i++) {
        snprintf(cmd, sizeof(cmd), "SET s%04d v", i * 2);
        EQ(cmd, "+OK\r\n");
    }
    EQ("SET exp v PX 5", "+OK\r\n");
    advance_ms(6);
    static char keys[4000][32];
    size_t nkeys = 0;
    uint64_t cur = 0;
    int calls = 0, added = 0;
    do {
        snprintf(cmd, sizeof(cmd), "SCAN %llu COUNT 7", (unsigned long long)cur);
        cur = parse_scan(run(cmd), keys, &nkeys);
        /* meanwhile: new keys (odd numbers) appear, some stable ones are
         * not touched, and extra keys come and go */
        snprintf(cmd, sizeof(cmd), "SET s%04d v", (calls * 37 % 1000) * 2 + 1);
        EQ(cmd, "+OK\r\n");
        added++;
        assert_true(++calls < 1000);
    } while (cur != 0);
    /* every stable key exactly once, nothing twice, the expired key never */
    for (int i = 0; i < 1000; i++) {
        char want[32];
        snprintf(want, sizeof(want), "s%04d", i * 2);
        int found = 0;
        for (size_t k = 0; k < nkeys; k++) {
            found += strcmp(keys[k], want) == 0;
        }
        assert_int_equal(found, 1);
    }
    for (size_t k = 1; k < nkeys; k++) {
        assert_true(strcmp(keys[k - 1], keys[k]) < 0); /* key order, no duplicates */
    }
    for (size_t k = 0; k < nkeys; k++) {
        assert_string_not_equal(keys[k], "exp");
    }
    assert_true(added > 100);
}

static void test_scan_options_and_cursors(void **state)
{
    (void)state;
    teardown(NULL);
    nk_resp_db_options o = {.scan_cursors = 2};
    setup_with(false, &o);
    EQ("MSET user:1 a user:2 b item:1 c user:3 d", "+OK\r\n");
    char keys[16][32];
    size_t n = 0;
    uint64_t cur = parse_scan(run("SCAN 0 MATCH user:* COUNT 100"), keys, &n);
    assert_int_equal(cur, 0);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0], "user:1");
    n = 0;
    parse_scan(run("SCAN 0 TYPE hash"), keys, &n);
    assert_int_equal(n, 0);
    n = 0;
    parse_scan(run("scan 0 type string"), keys, &n);
    assert_int_equal(n, 4);
    /* a page boundary: the cursor can be re-sent (idempotent retry) */
    n = 0;
    uint64_t c1 = parse_scan(run("SCAN 0 COUNT 2"), keys, &n);
    assert_true(c1 != 0 && c1 < (UINT64_C(1) << 51)); /* exact as a JavaScript number */
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "SCAN %llu COUNT 1", (unsigned long long)c1);
    n = 0;
    uint64_t c2 = parse_scan(run(cmd), keys, &n); /* page 1 was item:1 user:1 */
    assert_string_equal(keys[0], "user:2");
    n = 0;
    parse_scan(run(cmd), keys, &n);
    assert_string_equal(keys[0], "user:2");
    /* the table remembers two cursors: two more evict c1, which still
     * resumes at user:2, found again from its prefix and fingerprint */
    assert_true(c2 != 0);
    n = 0;
    parse_scan(run("SCAN 0 COUNT 3"), keys, &n);
    parse_scan(run("SCAN 0 COUNT 1"), keys, &n);
    uint64_t searches = nk_resp_db_stats(X.db)->scan_cursor_searches;
    n = 0;
    parse_scan(run(cmd), keys, &n);
    assert_string_equal(keys[0], "user:2");
    assert_int_equal(nk_resp_db_stats(X.db)->scan_cursor_searches, searches + 1);
    /* ...also once the resume key is gone: from its prefix "us" */
    EQ("DEL user:2", ":1\r\n");
    n = 0;
    parse_scan(run(cmd), keys, &n);
    assert_string_equal(keys[0], "user:1");
    EQ("SCAN abc", "-ERR invalid cursor\r\n");
    EQ("SCAN -1", "-ERR invalid cursor\r\n");
    EQ("SCAN 12345", "-ERR invalid cursor\r\n");
    EQ("SCAN 18446744073709551615", "-ERR invalid cursor\r\n");
    EQ("SCAN 18446744073709551616", "-ERR invalid cursor\r\n");
    EQ("SCAN 0 COUNT 0", "-ERR syntax error\r\n");
    EQ("SCAN 0 COUNT x", "-ERR value is not an integer or out of range\r\n");
    EQ("SCAN 0 MATCH", "-ERR syntax error\r\n");
    EQ("SCAN 0 FOO bar", "-ERR syntax error\r\n");
    /* empty database */
    EQ("DEL user:1 user:3 item:1", ":3\r\n");
    EQ("SCAN 0", "*2\r\n$1\r\n0\r\n*0\r\n");
    EQ("DBSIZE", ":0\r\n");
}

static bool gm(const char *p, const char *s)
{
    return nk_resp_glob_match((const uint8_t *)p, strlen(p), (const uint8_t *)s, strlen(s));
}

static void test_glob(void **state)
{
    (void)state;
    assert_true(gm("*", ""));
    assert_true(gm("*", "abc"));
    assert_true(gm("a*c", "abbbc"));
    assert_false(gm("a*c", "abbb"));
    assert_true(gm("h?llo", "hello"));
    assert_false(gm("h?llo", "hllo"));
    assert_true(gm("h[ae]llo", "hallo"));
    assert_false(gm("h[ae]llo", "hillo"));
    assert_true(gm("h[^e]llo", "hallo"));
    assert_false(gm("h[^e]llo", "hello"));
    assert_true(gm("h[a-c]llo", "hbllo"));
    assert_true(gm("h[c-a]llo", "hbllo"));
    assert_true(gm("h\\*llo", "h*llo"));
    assert_false(gm("h\\*llo", "hello"));
    assert_true(gm("*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab"));
    assert_false(gm("*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_true(gm("user:*:x", "user:12:x"));
    assert_true(gm("[abc", "b")); /* unterminated class runs to the end */
}

static void test_envelope_and_corruption(void **state)
{
    (void)state;
    uint8_t hdr[NK_RESP_ENV_MAX_HDR];
    assert_int_equal(nk_resp_env_encode(hdr, false, 0), 2);
    assert_int_equal(hdr[0], 1);
    assert_int_equal(hdr[1], 0);
    assert_int_equal(nk_resp_env_encode(hdr, true, 0x0102030405060708ull), 10);
    assert_int_equal(hdr[1], 1);
    assert_int_equal(hdr[2], 0x08); /* little-endian */
    uint8_t val[16];
    memcpy(val, hdr, 10);
    memcpy(val + 10, "abc", 3);
    bool has;
    uint64_t at;
    const uint8_t *u;
    size_t ul;
    assert_int_equal(nk_resp_env_decode(val, 13, &has, &at, &u, &ul), NK_OK);
    assert_true(has);
    assert_int_equal(at, 0x0102030405060708ull);
    assert_int_equal(ul, 3);
    assert_memory_equal(u, "abc", 3);
    assert_int_equal(nk_resp_env_decode(val, 9, &has, &at, &u, &ul), NK_ECORRUPT);
    val[1] = 3; /* unknown flag */
    assert_int_equal(nk_resp_env_decode(val, 13, &has, &at, &u, &ul), NK_ECORRUPT);
    val[0] = 2; /* unknown version */
    val[1] = 0;
    assert_int_equal(nk_resp_env_decode(val, 13, &has, &at, &u, &ul), NK_ECORRUPT);
    /* a value written without an envelope is reported, not misread */
    nk_kv_backend *be = nk_membackend_backend(X.mb);
    assert_int_equal(
        nk_kv_put(be, (const uint8_t *)"raw", 3, (const uint8_t *)"\x09zz", 3, NULL, NULL), NK_OK);
    EQ("GET raw", "-ERR corrupted value envelope for this key\r\n");
    EQ("INCR raw", "-ERR corrupted value envelope for this key\r\n");
    EQ("MGET raw", "*1\r\n$-1\r\n");
    EQ("SET raw fixed", "+OK\r\n"); /* a plain SET overwrites it */
    EQ("GET raw", "$5\r\nfixed\r\n");
}

static void test_info_command_config(void **state)
{
    (void)state;
    EQ("MSET a 1 b 2", "+OK\r\n");
    const char *r = run("INFO");
    assert_non_null(strstr(r, "# Server\r\nredis_version:"));
    assert_non_null(strstr(r, "# Clients\r\nconnected_clients:0"));
    assert_non_null(strstr(r, "sync_policy:none"));
    assert_non_null(strstr(r, "total_commands_processed:2"));
    assert_non_null(strstr(r, "# Keyspace\r\ndb0:keys=2"));
    r = run("INFO keyspace");
    assert_null(strstr(r, "# Server"));
    assert_non_null(strstr(r, "db0:keys=2"));
    EQ("INFO nosuchsection", "$0\r\n\r\n");
    char want[32];
    r = run("COMMAND COUNT");
    int ncmd = atoi(r + 1);
    assert_true(ncmd >= 20);
    r = run("COMMAND");
    snprintf(want, sizeof(want), "*%d\r\n*10\r\n", ncmd);
    assert_memory_equal(r, want, strlen(want));
    r = run("COMMAND DOCS");
    snprintf(want, sizeof(want), "*%d\r\n", ncmd * 2);
    assert_memory_equal(r, want, strlen(want));
    assert_non_null(strstr(r, "$7\r\nsummary\r\n"));
    r = run("COMMAND DOCS get nosuch");
    assert_memory_equal(r, "*2\r\n$3\r\nget\r\n", 13);
    r = run("COMMAND INFO get nosuch");
    assert_memory_equal(r, "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n", 22);
    assert_non_null(strstr(r, "$-1\r\n"));
    EQ("COMMAND FOO", "-ERR unknown subcommand or wrong number of arguments for 'FOO'. Try "
                      "COMMAND HELP.\r\n");
    EQ("CONFIG GET save", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    EQ("CONFIG GET appendonly", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    EQ("CONFIG GET nosuch", "*0\r\n");
    r = run("CONFIG GET *");
    assert_memory_equal(r, "*28\r\n", 5);
    EQ("CONFIG SET save x", "-ERR CONFIG SET is not supported: NoKV's configuration is read-only "
                            "at run time (see nokv serve --help)\r\n");
    EQ("CONFIG FOO", "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n");
    EQ("CONFIG GET maxmemory", "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    EQ("CONFIG GET databases", "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n");
    EQ("CONFIG GET appendfsync", "*2\r\n$11\r\nappendfsync\r\n$2\r\nno\r\n");
    EQ("CONFIG GET maxmemory-policy", "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n");
    EQ("CONFIG GET", "-ERR wrong number of arguments for 'config|get' command\r\n");
    EQ("CONFIG RESETSTAT", "+OK\r\n");
    r = run("INFO stats");
    assert_non_null(strstr(r, "total_commands_processed:1\r\n"));
}

/* -------------------------------------------- Redis compatibility --- */

/* Replies below were recorded from redis-server 7.0.15 with the same
 * commands (tools: redis-cli and a raw RESP client on 127.0.0.1). */

static void test_handshake(void **state)
{
    (void)state;
    const char *hello = run("HELLO");
    assert_memory_equal(hello,
                        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
                        "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:",
                        72);
    assert_non_null(strstr(hello, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster"
                                  "\r\n$7\r\nmodules\r\n*0\r\n"));
    assert_memory_equal(run("HELLO 2"), "*14\r\n", 5);
    EQ("HELLO 3", "-NOPROTO unsupported protocol version\r\n");
    EQ("HELLO 1", "-NOPROTO unsupported protocol version\r\n");
    EQ("HELLO abc", "-ERR Protocol version is not an integer or out of range\r\n");
    EQ("HELLO 2 auth", "-ERR Syntax error in HELLO option 'auth'\r\n");
    EQ("HELLO 2 foo", "-ERR Syntax error in HELLO option 'foo'\r\n");
    EQ("HELLO 2 AUTH alice pw",
       "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_memory_equal(run("HELLO 2 AUTH default pw SETNAME app"), "*14\r\n", 5);
    EQ("CLIENT GETNAME", "$3\r\napp\r\n");
    EQ("CLIENT SETNAME myname", "+OK\r\n");
    EQ("CLIENT GETNAME", "$6\r\nmyname\r\n");
    EQ("CLIENT SETNAME", "-ERR wrong number of arguments for 'client|setname' command\r\n");
    nk_resp_arg bad[3] = {{(const uint8_t *)"CLIENT", 6},
                          {(const uint8_t *)"SETNAME", 7},
                          {(const uint8_t *)"a b", 3}};
    assert_string_equal(
        run_argv(bad, 3),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    nk_resp_arg empty[3] = {
        {(const uint8_t *)"CLIENT", 6}, {(const uint8_t *)"SETNAME", 7}, {(const uint8_t *)"", 0}};
    assert_string_equal(run_argv(empty, 3), "+OK\r\n");
    EQ("CLIENT GETNAME", "$-1\r\n");
    EQ("CLIENT GETNAME x", "-ERR wrong number of arguments for 'client|getname' command\r\n");
    const char *id = run("CLIENT ID");
    assert_true(id[0] == ':' && atoi(id + 1) >= 1);
    EQ("CLIENT SETINFO LIB-NAME redis-py", "+OK\r\n");
    EQ("CLIENT SETINFO lib-ver 5.0.1", "+OK\r\n");
    EQ("CLIENT SETINFO foo bar", "-ERR Unrecognized option 'foo'\r\n");
    EQ("CLIENT SETINFO lib-name",
       "-ERR wrong number of arguments for 'client|setinfo' command\r\n");
    assert_non_null(strstr(run("CLIENT INFO"), "lib-name=redis-py lib-ver=5.0.1"));
    EQ("CLIENT NO-EVICT on", "+OK\r\n");
    EQ("CLIENT REPLY ON", "+OK\r\n");
    EQ("CLIENT FOO", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    EQ("CLIENT", "-ERR wrong number of arguments for 'client' command\r\n");
    EQ("AUTH pw", "-ERR AUTH <password> called without any password configured for the default "
                  "user. Are you sure your configuration is correct?\r\n");
    EQ("AUTH default pw", "+OK\r\n");
    EQ("AUTH u p x", "-ERR syntax error\r\n");
    EQ("SELECT 0", "+OK\r\n");
    EQ("SELECT 16", "-ERR DB index is out of range\r\n");
    /* sessions are per connection */
    nk_resp_session *a, *b;
    assert_int_equal(nk_resp_session_new(X.db, "127.0.0.1:1", &a), NK_OK);
    assert_int_equal(nk_resp_session_new(X.db, "127.0.0.1:2", &b), NK_OK);
    assert_true(nk_resp_session_id(b) == nk_resp_session_id(a) + 1);
    nk_resp_arg set[3] = {{(const uint8_t *)"CLIENT", 6},
                          {(const uint8_t *)"SETNAME", 7},
                          {(const uint8_t *)"first", 5}};
    nk_resp_buf_reset(&X.out);
    nk_resp_call c = {.argv = set, .argc = 3, .sess = a, .reply = &X.out};
    nk_resp_db_exec(X.db, &c);
    const char *list = run("CLIENT LIST");
    assert_non_null(strstr(list, "addr=127.0.0.1:1 laddr=- name=first"));
    assert_non_null(strstr(list, "addr=127.0.0.1:2 laddr=- name= "));
    nk_resp_session_free(a);
    nk_resp_session_free(b);
    assert_null(strstr(run("CLIENT LIST"), "name=first"));
}

static void test_more_strings(void **state)
{
    (void)state;
    EQ("SET k v", "+OK\r\n");
    EQ("SETNX k v2", ":0\r\n");
    EQ("SETNX new v", ":1\r\n");
    EQ("SETEX k 10 v", "+OK\r\n");
    EQ("TTL k", ":10\r\n");
    EQ("SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n");
    EQ("SETEX k -1 v", "-ERR invalid expire time in 'setex' command\r\n");
    EQ("SETEX k abc v", "-ERR value is not an integer or out of range\r\n");
    EQ("PSETEX k 0 v", "-ERR invalid expire time in 'psetex' command\r\n");
    EQ("PSETEX k 1500 v", "+OK\r\n");
    EQ("PTTL k", ":1500\r\n");
    EQ("GETSET k v3", "$1\r\nv\r\n");
    EQ("GETSET nokey2 x", "$-1\r\n");
    EQ("TTL k", ":-1\r\n"); /* GETSET clears the TTL */
    EQ("GETDEL k", "$2\r\nv3\r\n");
    EQ("GETDEL k", "$-1\r\n");
    EQ("SET k hello", "+OK\r\n");
    EQ("GETEX k", "$5\r\nhello\r\n");
    EQ("GETEX k ex 100", "$5\r\nhello\r\n");
    EQ("TTL k", ":100\r\n");
    EQ("GETEX k persist", "$5\r\nhello\r\n");
    EQ("TTL k", ":-1\r\n");
    EQ("GETEX k px 0", "-ERR invalid expire time in 'getex' command\r\n");
    EQ("GETEX k ex 10 px 10", "-ERR syntax error\r\n");
    EQ("GETEX nokey ex 10", "$-1\r\n");
    EQ("GETEX k foo", "-ERR syntax error\r\n");
    EQ("GETEX k exat 1", "$5\r\nhello\r\n");
    EQ("EXISTS k", ":0\r\n");
    EQ("APPEND k abc", ":3\r\n");
    EQ("APPEND k def", ":6\r\n");
    EQ("GET k", "$6\r\nabcdef\r\n");
    EQ("STRLEN k", ":6\r\n");
    EQ("STRLEN nokey", ":0\r\n");
    EQ("PEXPIRE k 5000", ":1\r\n");
    EQ("APPEND k g", ":7\r\n");
    EQ("PTTL k", ":5000\r\n"); /* APPEND keeps the TTL */
    EQ("SET s Hello_World", "+OK\r\n");
    EQ("GETRANGE s 0 4", "$5\r\nHello\r\n");
    EQ("GETRANGE s -5 -1", "$5\r\nWorld\r\n");
    EQ("GETRANGE s 5 2", "$0\r\n\r\n");
    EQ("GETRANGE s 100 200", "$0\r\n\r\n");
    EQ("GETRANGE s -100 3", "$4\r\nHell\r\n");
    EQ("GETRANGE s 0 -100", "$1\r\nH\r\n");
    EQ("GETRANGE nokey 0 10", "$0\r\n\r\n");
    EQ("GETRANGE s a b", "-ERR value is not an integer or out of range\r\n");
    EQ("SETRANGE s 6 Redis", ":11\r\n");
    EQ("GET s", "$11\r\nHello_Redis\r\n");
    EQ("SETRANGE s 14 X", ":15\r\n");
    run("GET s");
    assert_memory_equal(X.out.data, "$15\r\nHello_Redis\0\0\0X\r\n", 22);
    EQ("SETRANGE new2 2 ab", ":4\r\n");
    run("GET new2");
    assert_memory_equal(X.out.data, "$4\r\n\0\0ab\r\n", 10);
    EQ("SETRANGE s -1 x", "-ERR offset is out of range\r\n");
    nk_resp_arg sr[4] = {{(const uint8_t *)"SETRANGE", 8},
                         {(const uint8_t *)"empty", 5},
                         {(const uint8_t *)"0", 1},
                         {(const uint8_t *)"", 0}};
    assert_string_equal(run_argv(sr, 4), ":0\r\n");
    EQ("EXISTS empty", ":0\r\n");
    EQ("SETRANGE s 536870912 x",
       "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    /* INCRBYFLOAT: long double arithmetic printed as Redis does */
    EQ("INCRBYFLOAT f 10.5", "$4\r\n10.5\r\n");
    EQ("INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n");
    EQ("INCRBYFLOAT f -5", "$3\r\n5.6\r\n");
    EQ("INCRBYFLOAT f 5.0e3", "$22\r\n5005.60000000000000009\r\n");
    EQ("SET f 3.0", "+OK\r\n");
    EQ("INCRBYFLOAT f 2", "$1\r\n5\r\n");
    EQ("INCRBYFLOAT f 0x10", "$2\r\n21\r\n");
    EQ("INCRBYFLOAT f inf", "-ERR increment would produce NaN or Infinity\r\n");
    EQ("INCRBYFLOAT f nan", "-ERR value is not a valid float\r\n");
    EQ("INCRBYFLOAT f 1e5000", "-ERR value is not a valid float\r\n");
    EQ("SET f abc", "+OK\r\n");
    EQ("INCRBYFLOAT f 1", "-ERR value is not a valid float\r\n");
    EQ("SET z -0.0", "+OK\r\n");
    EQ("INCRBYFLOAT z 0", "$1\r\n0\r\n");
    EQ("SET i 10 PX 1000", "+OK\r\n");
    EQ("INCRBYFLOAT i 0.25", "$5\r\n10.25\r\n");
    EQ("PTTL i", ":1000\r\n"); /* keeps the TTL */
}

static void test_expire_commands(void **state)
{
    (void)state;
    EQ("SET k v", "+OK\r\n");
    EQ("EXPIRE k 100", ":1\r\n");
    EQ("TTL k", ":100\r\n");
    EQ("EXPIRE k 100 nx", ":0\r\n");
    EQ("EXPIRE k 200 xx", ":1\r\n");
    EQ("EXPIRE k 50 gt", ":0\r\n");
    EQ("EXPIRE k 50 lt", ":1\r\n");
    EQ("TTL k", ":50\r\n");
    EQ("EXPIRE k 100 nx xx",
       "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    EQ("EXPIRE k 100 gt lt", "-ERR GT and LT options at the same time are not compatible\r\n");
    EQ("EXPIRE k 100 foo", "-ERR Unsupported option foo\r\n");
    EQ("EXPIRE k abc", "-ERR value is not an integer or out of range\r\n");
    EQ("EXPIRE k 9223372036854775", "-ERR invalid expire time in 'expire' command\r\n");
    EQ("PEXPIRE k 9223372036854775807", "-ERR invalid expire time in 'pexpire' command\r\n");
    EQ("EXPIRE nokey 10", ":0\r\n");
    EQ("EXPIRE k", "-ERR wrong number of arguments for 'expire' command\r\n");
    EQ("EXPIRE k 0", ":1\r\n"); /* due now: deleted at once */
    EQ("EXISTS k", ":0\r\n");
    EQ("SET k v", "+OK\r\n");
    EQ("EXPIRE k -5", ":1\r\n");
    EQ("EXISTS k", ":0\r\n");
    EQ("SET k v", "+OK\r\n");
    EQ("PEXPIRE k 5000", ":1\r\n");
    EQ("PTTL k", ":5000\r\n");
    EQ("PERSIST k", ":1\r\n");
    EQ("PERSIST k", ":0\r\n");
    EQ("TTL k", ":-1\r\n");
    EQ("PERSIST nokey", ":0\r\n");
    EQ("EXPIRE k 100 gt", ":0\r\n"); /* no TTL is an infinite one */
    EQ("EXPIRE k 100 xx", ":0\r\n");
    EQ("EXPIRE k 100 lt", ":1\r\n");
    EQ("EXPIREAT k 1", ":1\r\n");
    EQ("EXISTS k", ":0\r\n");
    EQ("SET k v", "+OK\r\n");
    char cmd[96];
    uint64_t now_ms = (WALL0 + F.now) / NK_NSEC_PER_MSEC;
    snprintf(cmd, sizeof(cmd), "PEXPIREAT k %llu", (unsigned long long)(now_ms + 2500));
    EQ(cmd, ":1\r\n");
    EQ("PTTL k", ":2500\r\n");
    snprintf(cmd, sizeof(cmd), "EXPIREAT k %llu", (unsigned long long)(now_ms / 1000 + 10));
    EQ(cmd, ":1\r\n");
    EQ("PEXPIREAT k 9223372036854775807", ":1\r\n");
    EQ("TTL nokey", ":-2\r\n");
    EQ("PTTL nokey", ":-2\r\n");
    /* the key disappears after its deadline, on its own */
    EQ("SET gone v", "+OK\r\n");
    EQ("PEXPIRE gone 50", ":1\r\n");
    advance_ms(51);
    EQ("TTL gone", ":-2\r\n");
    EQ("GET gone", "$-1\r\n");
}

static void test_keyspace_commands(void **state)
{
    (void)state;
    EQ("SET a 1", "+OK\r\n");
    EQ("SET b 2", "+OK\r\n");
    EQ("RENAME a c", "+OK\r\n");
    EQ("GET c", "$1\r\n1\r\n");
    EQ("EXISTS a", ":0\r\n");
    EQ("RENAME nokey x", "-ERR no such key\r\n");
    EQ("RENAME c c", "+OK\r\n");
    EQ("RENAME c b", "+OK\r\n"); /* overwrites */
    EQ("GET b", "$1\r\n1\r\n");
    EQ("SET t 1 EX 100", "+OK\r\n");
    EQ("RENAME t t2", "+OK\r\n");
    EQ("TTL t2", ":100\r\n"); /* the TTL moves with the value */
    EQ("RENAMENX t2 b", ":0\r\n");
    EQ("RENAMENX t2 t3", ":1\r\n");
    EQ("RENAMENX nokey x", "-ERR no such key\r\n");
    EQ("UNLINK b t3 nokey", ":2\r\n");
    EQ("MSET k1 a k2 b x1 c", "+OK\r\n");
    EQ("SET k3 x PX 10", "+OK\r\n");
    advance_ms(11);
    EQ("KEYS k*", "*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n"); /* key order; k3 expired */
    EQ("KEYS *", "*3\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nx1\r\n");
    EQ("KEYS", "-ERR wrong number of arguments for 'keys' command\r\n");
    EQ("TYPE k1", "+string\r\n");
    EQ("TYPE nokey", "+none\r\n");
    const char *t = run("TIME");
    unsigned long long sec = 0, usec = 0;
    assert_int_equal(sscanf(t, "*2\r\n$10\r\n%llu\r\n$%*d\r\n%llu\r\n", &sec, &usec), 2);
    assert_int_equal(sec, (WALL0 + F.now) / NK_NSEC_PER_SEC);
    assert_true(usec < 1000000);
    EQ("TIME extra", "-ERR wrong number of arguments for 'time' command\r\n");
    EQ("FLUSHDB foo", "-ERR syntax error\r\n");
    EQ("FLUSHALL foo", "-ERR syntax error\r\n");
    char cmd[64];
    for (int i = 0; i < 10000; i++) { /* more than one flush batch */
        snprintf(cmd, sizeof(cmd), "SET f%05d v", i);
        EQ(cmd, "+OK\r\n");
    }
    uint64_t batches = nk_membackend_batches(X.mb);
    EQ("FLUSHDB", "+OK\r\n");
    assert_int_equal(nk_membackend_count(X.mb), 0);
    assert_int_equal(nk_membackend_batches(X.mb) - batches, 3); /* 4096 keys per batch */
    EQ("DBSIZE", ":0\r\n");
    EQ("FLUSHALL ASYNC", "+OK\r\n");
    EQ("SET a 1", "+OK\r\n");
    EQ("FLUSHALL SYNC", "+OK\r\n");
    EQ("DBSIZE", ":0\r\n");
}

static void test_flush_waits_for_every_batch(void **state)
{
    (void)state;
    teardown(NULL);
    setup_with(true, NULL);
    char cmd[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(cmd, sizeof(cmd), "SET f%05d v", i);
        EQ(cmd, "+OK\r\n");
        if (i % 1000 == 999) {
            advance_ms(10); /* complete them (bounded timer table) */
        }
    }
    X.done_calls = 0;
    EQ("FLUSHDB", "+OK\r\n");
    assert_int_equal(X.done_calls, 0);
    assert_int_equal(nk_membackend_pending(X.mb), 2);
    advance_ms(10);
    assert_int_equal(X.done_calls, 1); /* one completion for both batches */
    assert_int_equal(X.last_status, NK_OK);
}

static void test_multi_exec(void **state)
{
    (void)state;
    EQ("MULTI", "+OK\r\n");
    EQ("SET a 1", "+QUEUED\r\n");
    EQ("INCR a", "+QUEUED\r\n");
    EQ("GET a", "+QUEUED\r\n");
    assert_int_equal(nk_membackend_count(X.mb), 0); /* nothing ran yet */
    uint64_t batches = nk_membackend_batches(X.mb);
    EQ("EXEC", "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
    assert_int_equal(nk_membackend_batches(X.mb) - batches, 1); /* one atomic batch */
    EQ("EXEC", "-ERR EXEC without MULTI\r\n");
    EQ("DISCARD", "-ERR DISCARD without MULTI\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("MULTI", "-ERR MULTI calls can not be nested\r\n");
    EQ("SET a 5", "+QUEUED\r\n");
    EQ("DISCARD", "+OK\r\n");
    EQ("GET a", "$1\r\n2\r\n");
    /* a queue-time error aborts the whole transaction */
    EQ("MULTI", "+OK\r\n");
    EQ("SET a", "-ERR wrong number of arguments for 'set' command\r\n");
    EQ("INCR a", "+QUEUED\r\n");
    EQ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EQ("GET a", "$1\r\n2\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("foocmd", "-ERR unknown command 'foocmd', with args beginning with: \r\n");
    EQ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    /* a run-time error is that command's reply; the others still apply */
    EQ("MULTI", "+OK\r\n");
    EQ("SET a x", "+QUEUED\r\n");
    EQ("INCR a", "+QUEUED\r\n");
    EQ("SET b 2", "+QUEUED\r\n");
    EQ("DEL c", "+QUEUED\r\n");
    EQ("EXEC", "*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n:0\r\n");
    EQ("GET b", "$1\r\n2\r\n");
    /* reads inside see the transaction's own writes, deletes included */
    EQ("MULTI", "+OK\r\n");
    EQ("DEL b", "+QUEUED\r\n");
    EQ("EXISTS b", "+QUEUED\r\n");
    EQ("APPEND a y", "+QUEUED\r\n");
    EQ("RENAME a r", "+QUEUED\r\n");
    EQ("GET r", "+QUEUED\r\n");
    EQ("PING", "+QUEUED\r\n");
    EQ("EXEC", "*6\r\n:1\r\n:0\r\n:2\r\n+OK\r\n$2\r\nxy\r\n+PONG\r\n");
    EQ("EXISTS a b", ":0\r\n");
    EQ("GET r", "$2\r\nxy\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("EXEC", "*0\r\n");
    /* commands that read around the overlay are refused */
    EQ("MULTI", "+OK\r\n");
    EQ("SCAN 0", "-ERR Command not allowed inside a transaction\r\n");
    EQ("KEYS *", "-ERR Command not allowed inside a transaction\r\n");
    EQ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    /* a batch the backend refuses: nothing of the transaction applies */
    EQ("MULTI", "+OK\r\n");
    EQ("SET p 1", "+QUEUED\r\n");
    EQ("SET q 1", "+QUEUED\r\n");
    nk_membackend_fail_writes(X.mb, 1, NK_ETOOBIG);
    const char *r = run("EXEC");
    assert_non_null(strstr(r, "-ERR write rejected: "));
    assert_non_null(strstr(r, "the transaction was not applied\r\n"));
    EQ("EXISTS p q", ":0\r\n");
}

static void test_watch(void **state)
{
    (void)state;
    EQ("SET w 1", "+OK\r\n");
    EQ("WATCH w", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("WATCH w", "-ERR WATCH inside MULTI is not allowed\r\n");
    EQ("INCR w", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n:2\r\n"); /* untouched: runs */
    /* written by someone else (here: another session) after WATCH */
    nk_resp_session *other;
    assert_int_equal(nk_resp_session_new(X.db, NULL, &other), NK_OK);
    EQ("WATCH w", "+OK\r\n");
    nk_resp_arg set[3] = {
        {(const uint8_t *)"SET", 3}, {(const uint8_t *)"w", 1}, {(const uint8_t *)"2", 1}};
    nk_resp_buf_reset(&X.out);
    nk_resp_call c = {.argv = set, .argc = 3, .sess = other, .reply = &X.out};
    nk_resp_db_exec(X.db, &c);
    nk_resp_session_free(other);
    EQ("MULTI", "+OK\r\n");
    EQ("INCR w", "+QUEUED\r\n");
    EQ("EXEC", "*-1\r\n");
    EQ("GET w", "$1\r\n2\r\n");
    /* EXEC forgets the watches; UNWATCH too */
    EQ("MULTI", "+OK\r\n");
    EQ("INCR w", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n:3\r\n");
    EQ("WATCH w", "+OK\r\n");
    EQ("SET w 9", "+OK\r\n");
    EQ("UNWATCH", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("GET w", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n$1\r\n9\r\n");
    /* a watched key that expires counts as changed */
    EQ("SET e 1 PX 20", "+OK\r\n");
    EQ("WATCH e", "+OK\r\n");
    advance_ms(21);
    EQ("MULTI", "+OK\r\n");
    EQ("SET e 2", "+QUEUED\r\n");
    EQ("EXEC", "*-1\r\n");
    /* FLUSHDB touches every key */
    EQ("WATCH nothing", "+OK\r\n");
    EQ("FLUSHDB", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("EXEC", "*-1\r\n");
    /* an aborted EXEC forgets the watches too */
    EQ("WATCH w", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w", "-ERR wrong number of arguments for 'set' command\r\n");
    EQ("EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EQ("SET w 5", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR w", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n:6\r\n");
}

static void test_expire_sweep(void **state)
{
    (void)state;
    teardown(NULL);
    nk_resp_db_options o = {.sweep_interval_ms = 100, .sweep_keys = 50};
    setup_with(false, &o);
    char cmd[64];
    for (int i = 0; i < 300; i++) {
        snprintf(cmd, sizeof(cmd), i % 2 ? "SET k%03d v" : "SET k%03d v PX 500", i);
        EQ(cmd, "+OK\r\n");
    }
    assert_int_equal(nk_membackend_count(X.mb), 300);
    advance_ms(450);
    assert_int_equal(nk_membackend_count(X.mb), 300); /* nothing due yet */
    /* no reads at all: the sweep removes the 150 expired keys, 50 keys
     * visited per step (so at most 50 deletions per step) */
    advance_ms(151); /* past the deadline, one step at 600 ms */
    size_t after_one = nk_membackend_count(X.mb);
    assert_true(after_one < 300 && after_one >= 300 - 50);
    advance_ms(2000);
    assert_int_equal(nk_membackend_count(X.mb), 150);
    assert_int_equal(nk_resp_db_stats(X.db)->expired_keys, 150);
    assert_true(nk_resp_db_stats(X.db)->expire_sweeps > 6);
    EQ("DBSIZE", ":150\r\n");
}

/* Scan to the end from `cur`, collecting keys; returns the number of calls. */
static int scan_all(uint64_t cur, const char *count, char keys[][32], size_t *n, size_t max)
{
    char cmd[96];
    int calls = 0;
    do {
        assert_true(*n + 1000 < max);
        snprintf(cmd, sizeof(cmd), "SCAN %llu COUNT %s", (unsigned long long)cur, count);
        cur = parse_scan(run(cmd), keys, n);
        assert_true(++calls < 100000);
    } while (cur != 0);
    return calls;
}

static void scan_survives(size_t table)
{
    teardown(NULL);
    nk_resp_db_options o = {.scan_cursors = table};
    setup_with(false, &o);
    char cmd[96];
    for (int i = 0; i < 2000; i++) {
        snprintf(cmd, sizeof(cmd), "SET key:%05d v", i);
        EQ(cmd, "+OK\r\n");
    }
    static char keys[40000][32];
    size_t n = 0;
    uint64_t first = parse_scan(run("SCAN 0 COUNT 100"), keys, &n);
    assert_true(first != 0);
    /* 10,000 other SCANs, each leaving a cursor of its own */
    char tmp[16][32];
    uint64_t other = 0;
    for (int i = 0; i < 10000; i++) {
        size_t m = 0;
        snprintf(cmd, sizeof(cmd), "SCAN %llu COUNT 3", (unsigned long long)other);
        other = parse_scan(run(cmd), tmp, &m);
    }
    uint64_t searches = nk_resp_db_stats(X.db)->scan_cursor_searches;
    scan_all(first, "100", keys, &n, 40000);
    assert_int_equal(n, 2000); /* every key exactly once: the resume was exact */
    for (size_t k = 0; k < n; k++) {
        snprintf(cmd, sizeof(cmd), "key:%05zu", k);
        assert_string_equal(keys[k], cmd);
    }
    if (table != 0) {
        assert_int_equal(nk_resp_db_stats(X.db)->scan_cursor_searches, searches + 1);
    } else {
        assert_int_equal(nk_resp_db_stats(X.db)->scan_cursor_searches, searches);
    }
}

static void test_scan_cursor_survives_10000_scans(void **state)
{
    (void)state;
    scan_survives(0);  /* default table: still remembered */
    scan_survives(16); /* tiny table: forgotten, found again by prefix + fingerprint */
}

/* Forgotten cursors while keys come and go: every key present for the
 * whole scan is returned at least once, and the scan ends. */
static void test_scan_at_least_once_under_churn(void **state)
{
    (void)state;
    teardown(NULL);
    nk_resp_db_options o = {.scan_cursors = 1};
    setup_with(false, &o);
    char cmd[96];
    for (int i = 0; i < 1500; i++) {
        snprintf(cmd, sizeof(cmd), "SET s:%04d v", i * 2);
        EQ(cmd, "+OK\r\n");
    }
    static char keys[60000][32];
    size_t n = 0;
    uint64_t cur = 0;
    int calls = 0;
    char tmp[16][32];
    do {
        snprintf(cmd, sizeof(cmd), "SCAN %llu COUNT 13", (unsigned long long)cur);
        cur = parse_scan(run(cmd), keys, &n);
        /* churn: odd keys appear and vanish; even keys >= 2000 are deleted
         * (so some resume keys disappear); another scan evicts our cursor */
        snprintf(cmd, sizeof(cmd), "SET s:%04d v", (calls * 71 % 1500) * 2 + 1);
        EQ(cmd, "+OK\r\n");
        snprintf(cmd, sizeof(cmd), "DEL s:%04d", (calls * 37 % 1500) * 2 + 1);
        run(cmd);
        if (calls % 3 == 0) {
            snprintf(cmd, sizeof(cmd), "DEL s:%04d", 2000 + (calls % 500) * 2);
            run(cmd);
        }
        size_t m = 0;
        parse_scan(run("SCAN 0 COUNT 1"), tmp, &m);
        assert_true(n + 20 < 60000);
        assert_true(++calls < 5000);
    } while (cur != 0);
    for (int i = 0; i < 1000; i++) { /* s:0000 .. s:1998 are never deleted */
        char want[32];
        snprintf(want, sizeof(want), "s:%04d", i * 2);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++) {
            found = strcmp(keys[k], want) == 0;
        }
        assert_true(found);
    }
    assert_true(nk_resp_db_stats(X.db)->scan_cursor_searches > 50);
}

/* Which replies a replicated backend's read barrier must hold (backend.h):
 * those of commands that read keys and wrote nothing. */
static void test_read_flag(void **state)
{
    (void)state;
    struct {
        const char *cmd;
        bool read, wrote;
    } cases[] = {
        {"SET k v", false, true},    {"GET k", true, false},
        {"SET k v NX", true, false}, /* read, did not write */
        {"MGET k a", true, false},   {"EXISTS k", true, false},
        {"TTL k", true, false},      {"INCR n", false, true},
        {"DEL nope", true, false},   {"SCAN 0", true, false},
        {"KEYS *", true, false},     {"DBSIZE", true, false},
        {"PING", false, false},      {"ECHO x", false, false},
        {"CLIENT ID", false, false}, {"INFO server", false, false},
        {"MULTI", false, false},     {"GET k", false, false}, /* queued */
        {"EXEC", true, false},       {"MULTI", false, false},
        {"GET k", false, false},     {"SET k w", false, false},
        {"EXEC", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(cases[i].cmd);
        if (X.read != cases[i].read || X.wrote != cases[i].wrote) {
            fail_msg("%s: read=%d wrote=%d", cases[i].cmd, X.read, X.wrote);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_echo_unknown_arity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_set_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incr_decr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mset_is_one_atomic_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_completion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_full_coverage_with_concurrent_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scan_options_and_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_and_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_command_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyspace_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_waits_for_every_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_cursor_survives_10000_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_at_least_once_under_churn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
