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
    EQ("CONFIG GET maxmemory-policy",
       "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n");
    EQ("CONFIG GET", "-ERR wrong number of arguments for 'config|get' command\r\n");
    EQ("CONFIG RESETSTAT", "+OK\r\n");
    r = run("INFO stats");
    assert_non_null(strstr(r, "total_commands_processed:1\r\n"));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
