/*
 * commands.c - RESP command implementations over nk_kv_backend (see
 * commands.h for the semantics, the value envelope and SCAN cursors).
 */
#include "nokv/resp/commands.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/util/coding.h"
#include "nokv/util/u64map.h"

#define SCAN_DEFAULT_COUNT 10
#define SCAN_MAX_COUNT 100000
#define DEFAULT_CURSORS 4096
#define DEFAULT_CURSOR_BYTES (16u * 1024u * 1024u)
#define COMPAT_REDIS_VERSION "7.0.0"

typedef struct cursor_ent {
    uint64_t id;
    uint8_t *key;
    size_t klen;
} cursor_ent;

struct nk_resp_db {
    nk_rt *rt;
    nk_kv_backend *be;
    nk_resp_db_options opt;
    nk_resp_stats stats;
    uint64_t start_ns;
    char listen_addr[64];
    char run_id[41];
    /* scan cursors: FIFO ring + id index */
    cursor_ent *ring;
    size_t ring_cap;
    size_t ring_head;
    size_t ring_count;
    size_t ring_bytes;
    nk_u64map cursors;
    uint64_t cursor_tag;
    uint32_t cursor_seq;
    /* scratch */
    nk_resp_buf tmp;  /* copies of old values, encoded envelopes */
    nk_resp_buf tmp2; /* INFO text */
};

typedef struct cmd_def cmd_def;
typedef void (*cmd_fn)(nk_resp_db *db, nk_resp_call *c);

struct cmd_def {
    const char *name; /* lowercase */
    int arity;        /* > 0: exactly; < 0: at least -arity (Redis convention) */
    const char *flags;
    int first_key, last_key, step;
    const char *group;
    const char *summary;
    /* Argument docs for COMMAND DOCS: space separated; "?" prefix optional,
     * "..." suffix multiple, "TOKEN:name" a token with a value, an all-caps
     * word a pure token, "key" a key. */
    const char *args;
    cmd_fn fn;
};

/* ----------------------------------------------------------- helpers --- */

static bool arg_is(const nk_resp_arg *a, const char *lower)
{
    size_t n = strlen(lower);
    if (a->len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = a->ptr[i];
        if (c >= 'A' && c <= 'Z') {
            c = (uint8_t)(c - 'A' + 'a');
        }
        if (c != (uint8_t)lower[i]) {
            return false;
        }
    }
    return true;
}

static uint64_t now_ms(nk_resp_db *db)
{
    return nk_rt_wall(db->rt) / NK_NSEC_PER_MSEC;
}

static void reply_arity(nk_resp_call *c, const char *name)
{
    nk_resp_add_errorf(c->reply, "ERR wrong number of arguments for '%s' command", name);
}

static void reply_syntax(nk_resp_call *c)
{
    nk_resp_add_error(c->reply, "ERR syntax error");
}

static void reply_not_int(nk_resp_call *c)
{
    nk_resp_add_error(c->reply, "ERR value is not an integer or out of range");
}

static void reply_backend_error(nk_resp_call *c, const char *what, int rc)
{
    nk_resp_add_errorf(c->reply, "ERR %s failed: %s (%s)", what, nk_strerror(rc), nk_errname(rc));
}

void nk_resp_write_error(int status, char *buf, size_t len)
{
    snprintf(buf, len,
             "ERR write not confirmed durable: %s (%s); its effect may or may not persist",
             nk_strerror(status), nk_errname(status));
}

static bool arg_i64(const nk_resp_arg *a, int64_t *v)
{
    return nk_resp_parse_i64(a->ptr, a->len, v);
}

/* ---------------------------------------------------------- envelope --- */

size_t nk_resp_env_encode(uint8_t *hdr, bool has_expire, uint64_t expire_at_ms)
{
    hdr[0] = NK_RESP_ENV_VERSION;
    hdr[1] = has_expire ? NK_RESP_ENV_FLAG_EXPIRE : 0;
    if (!has_expire) {
        return 2;
    }
    nk_put_u64(hdr + 2, expire_at_ms);
    return 10;
}

int nk_resp_env_decode(const uint8_t *val, size_t len, bool *has_expire, uint64_t *expire_at_ms,
                       const uint8_t **user, size_t *user_len)
{
    if (len < 2 || val[0] != NK_RESP_ENV_VERSION || (val[1] & ~NK_RESP_ENV_FLAG_EXPIRE) != 0) {
        return NK_ECORRUPT;
    }
    size_t hdr = 2;
    *has_expire = (val[1] & NK_RESP_ENV_FLAG_EXPIRE) != 0;
    *expire_at_ms = 0;
    if (*has_expire) {
        if (len < 10) {
            return NK_ECORRUPT;
        }
        *expire_at_ms = nk_get_u64(val + 2);
        hdr = 10;
    }
    *user = val + hdr;
    *user_len = len - hdr;
    return NK_OK;
}

/* ------------------------------------------------------------ lookup --- */

enum { K_ABSENT = 0, K_LIVE, K_EXPIRED, K_CORRUPT };

typedef struct lookup {
    uint64_t now;
    int state;
    bool has_expire;
    uint64_t expire_at;
    nk_resp_buf *bulk_into; /* live: append the value as a bulk reply */
    nk_resp_buf *copy_into; /* live: append the raw user value */
} lookup;

static void lookup_visit(void *arg, const uint8_t *val, size_t len)
{
    lookup *l = arg;
    const uint8_t *user;
    size_t ulen;
    if (nk_resp_env_decode(val, len, &l->has_expire, &l->expire_at, &user, &ulen) != NK_OK) {
        l->state = K_CORRUPT;
        return;
    }
    if (l->has_expire && l->now > l->expire_at) {
        l->state = K_EXPIRED;
        return;
    }
    l->state = K_LIVE;
    if (l->bulk_into != NULL) {
        nk_resp_add_bulk(l->bulk_into, user, ulen);
    }
    if (l->copy_into != NULL) {
        nk_resp_buf_append(l->copy_into, user, ulen);
    }
}

/* Look `key` up; returns NK_OK (state in l->state) or a backend error. */
static int lookup_key(nk_resp_db *db, const nk_resp_arg *key, lookup *l)
{
    l->now = now_ms(db);
    l->state = K_ABSENT;
    l->has_expire = false;
    l->expire_at = 0;
    int rc = nk_kv_get(db->be, key->ptr, key->len, lookup_visit, l);
    if (rc == NK_ENOENT) {
        l->state = K_ABSENT;
        return NK_OK;
    }
    return rc;
}

/* Lazy expiry: remove a key a read found expired. Nothing waits for it. */
static void expire_key(nk_resp_db *db, const uint8_t *key, size_t klen)
{
    if (nk_kv_del(db->be, key, klen, NULL, NULL) == NK_OK) {
        db->stats.expired_keys++;
    }
}

static void reply_corrupt(nk_resp_call *c)
{
    nk_resp_add_error(c->reply, "ERR corrupted value envelope for this key");
}

/* Submit a batch; on success mark the call as waiting for done. Returns
 * false (with an error reply already appended) when the backend refused. */
static bool submit(nk_resp_db *db, nk_resp_call *c, const nk_kv_write *ops, size_t n)
{
    int rc = nk_kv_write_batch(db->be, ops, n, c->done, c->done_arg);
    if (rc == NK_ETOOBIG && db->be->max_write_bytes != 0) {
        nk_resp_add_errorf(c->reply,
                           "ERR request too large: a value may be at most %llu bytes and one "
                           "write (all keys and values of the command) at most %llu bytes",
                           (unsigned long long)db->be->max_value_bytes,
                           (unsigned long long)db->be->max_write_bytes);
        return false;
    }
    if (rc != NK_OK) {
        nk_resp_add_errorf(c->reply, "ERR write rejected: %s (%s)", nk_strerror(rc),
                           nk_errname(rc));
        return false;
    }
    c->wrote = true;
    db->stats.writes_submitted++;
    return true;
}

/* submit() for puts whose stored value is prefix[i] ‖ ops[i].val (prefix
 * NULL: plain submit). Only called when the backend has write_prefixed. */
static bool submit_prefixed(nk_resp_db *db, nk_resp_call *c, const nk_kv_write *ops,
                            const uint8_t *const *prefix, const size_t *prefix_len, size_t n)
{
    if (prefix == NULL) {
        return submit(db, c, ops, n);
    }
    int rc = db->be->write_prefixed(db->be->impl, ops, prefix, prefix_len, n, c->done,
                                         c->done_arg);
    if (rc == NK_ETOOBIG && db->be->max_write_bytes != 0) {
        nk_resp_add_errorf(c->reply,
                           "ERR request too large: a value may be at most %llu bytes and one "
                           "write (all keys and values of the command) at most %llu bytes",
                           (unsigned long long)db->be->max_value_bytes,
                           (unsigned long long)db->be->max_write_bytes);
        return false;
    }
    if (rc != NK_OK) {
        nk_resp_add_errorf(c->reply, "ERR write rejected: %s (%s)", nk_strerror(rc),
                           nk_errname(rc));
        return false;
    }
    c->wrote = true;
    db->stats.writes_submitted++;
    return true;
}

/* Encode envelope + value into db->tmp starting at its current length and
 * return the offset; pointers are taken only after all appends. */
static size_t encode_into(nk_resp_buf *b, bool has_expire, uint64_t expire_at, const uint8_t *v,
                          size_t vlen)
{
    size_t off = b->len;
    uint8_t hdr[NK_RESP_ENV_MAX_HDR];
    size_t h = nk_resp_env_encode(hdr, has_expire, expire_at);
    nk_resp_buf_append(b, hdr, h);
    nk_resp_buf_append(b, v, vlen);
    return off;
}

/* -------------------------------------------------------- connection --- */

static void cmd_ping(nk_resp_db *db, nk_resp_call *c)
{
    if (c->argc > 2) {
        reply_arity(c, "ping");
    } else if (c->argc == 2) {
        nk_resp_add_bulk(c->reply, c->argv[1].ptr, c->argv[1].len);
    } else {
        nk_resp_add_simple(c->reply, "PONG");
    }
}

static void cmd_echo(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_add_bulk(c->reply, c->argv[1].ptr, c->argv[1].len);
}

static void cmd_quit(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_add_simple(c->reply, "OK");
    c->quit = true;
}

static void cmd_select(nk_resp_db *db, nk_resp_call *c)
{
    int64_t idx;
    if (!arg_i64(&c->argv[1], &idx)) {
        reply_not_int(c);
    } else if (idx != 0) {
        nk_resp_add_error(c->reply, "ERR DB index is out of range");
    } else {
        nk_resp_add_simple(c->reply, "OK");
    }
}

/* ----------------------------------------------------------- strings --- */

static void cmd_get(nk_resp_db *db, nk_resp_call *c)
{
    lookup l = {.bulk_into = c->reply};
    int rc = lookup_key(db, &c->argv[1], &l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return;
    }
    switch (l.state) {
    case K_LIVE:
        db->stats.keyspace_hits++;
        break;
    case K_CORRUPT:
        reply_corrupt(c);
        break;
    case K_EXPIRED:
        expire_key(db, c->argv[1].ptr, c->argv[1].len);
        /* fall through */
    default:
        db->stats.keyspace_misses++;
        nk_resp_add_null(c->reply);
        break;
    }
}

static void cmd_mget(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_add_array(c->reply, c->argc - 1);
    for (size_t i = 1; i < c->argc; i++) {
        lookup l = {.bulk_into = c->reply};
        int rc = lookup_key(db, &c->argv[i], &l);
        if (rc == NK_OK && l.state == K_LIVE) {
            db->stats.keyspace_hits++;
            continue;
        }
        /* MGET never fails per key in Redis: unreadable keys read as nil. */
        if (rc == NK_OK && l.state == K_EXPIRED) {
            expire_key(db, c->argv[i].ptr, c->argv[i].len);
        }
        db->stats.keyspace_misses++;
        nk_resp_add_null(c->reply);
    }
}

enum {
    SET_NX = 1,
    SET_XX = 2,
    SET_GET = 4,
    SET_KEEPTTL = 8,
    SET_EX = 16,
    SET_PX = 32,
    SET_EXAT = 64,
    SET_PXAT = 128
};
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT | SET_KEEPTTL)

static void cmd_set(nk_resp_db *db, nk_resp_call *c)
{
    unsigned flags = 0;
    const nk_resp_arg *expire_arg = NULL;
    for (size_t i = 3; i < c->argc; i++) {
        const nk_resp_arg *a = &c->argv[i];
        bool has_next = i + 1 < c->argc;
        if (arg_is(a, "nx") && !(flags & (SET_NX | SET_XX))) {
            flags |= SET_NX;
        } else if (arg_is(a, "xx") && !(flags & (SET_NX | SET_XX))) {
            flags |= SET_XX;
        } else if (arg_is(a, "get") && !(flags & SET_GET)) {
            flags |= SET_GET;
        } else if (arg_is(a, "keepttl") && !(flags & SET_ANY_EXPIRE)) {
            flags |= SET_KEEPTTL;
        } else if (has_next && !(flags & SET_ANY_EXPIRE) &&
                   (arg_is(a, "ex") || arg_is(a, "px") || arg_is(a, "exat") || arg_is(a, "pxat"))) {
            flags |= arg_is(a, "ex")     ? SET_EX
                     : arg_is(a, "px")   ? SET_PX
                     : arg_is(a, "exat") ? SET_EXAT
                                         : SET_PXAT;
            expire_arg = &c->argv[++i];
        } else {
            reply_syntax(c);
            return;
        }
    }
    uint64_t now = now_ms(db);
    bool has_expire = false;
    uint64_t expire_at = 0;
    if (expire_arg != NULL) {
        int64_t v;
        if (!arg_i64(expire_arg, &v)) {
            reply_not_int(c);
            return;
        }
        bool bad = v <= 0;
        int64_t ms = v;
        if (!bad && (flags & (SET_EX | SET_EXAT))) {
            bad = v > INT64_MAX / 1000;
            ms = bad ? 0 : v * 1000;
        }
        if (!bad && (flags & (SET_EX | SET_PX))) {
            bad = (uint64_t)ms > (uint64_t)INT64_MAX - now;
            ms = (int64_t)((uint64_t)ms + now);
        }
        if (bad) {
            nk_resp_add_error(c->reply, "ERR invalid expire time in 'set' command");
            return;
        }
        has_expire = true;
        expire_at = (uint64_t)ms;
    }
    nk_resp_buf_reset(&db->tmp);
    lookup l = {.copy_into = (flags & SET_GET) ? &db->tmp : NULL};
    int rc = lookup_key(db, &c->argv[1], &l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return;
    }
    if (l.state == K_CORRUPT && (flags & (SET_GET | SET_KEEPTTL | SET_NX | SET_XX))) {
        reply_corrupt(c);
        return;
    }
    bool live = l.state == K_LIVE;
    size_t old_len = db->tmp.len;
    if (((flags & SET_NX) && live) || ((flags & SET_XX) && !live)) {
        if ((flags & SET_GET) && live) {
            nk_resp_add_bulk(c->reply, db->tmp.data, old_len);
        } else {
            nk_resp_add_null(c->reply);
        }
        return;
    }
    if ((flags & SET_KEEPTTL) && live && l.has_expire) {
        has_expire = true;
        expire_at = l.expire_at;
    }
    nk_kv_write w = {c->argv[1].ptr, c->argv[1].len, NULL, 0, false};
    uint8_t env_hdr[NK_RESP_ENV_MAX_HDR];
    size_t env_len = 0;
    if (has_expire && now > expire_at) {
        /* EXAT/PXAT in the past: the key is gone at once, as in Redis. */
        w.del = true;
        if (l.state == K_ABSENT) {
            if (flags & SET_GET) {
                nk_resp_add_null(c->reply);
            } else {
                nk_resp_add_simple(c->reply, "OK");
            }
            return;
        }
    } else if (db->be->write_prefixed != NULL) {
        /* The envelope goes in front of the argument where it lies: a
         * large value is not copied here. */
        env_len = nk_resp_env_encode(env_hdr, has_expire, expire_at);
        w.val = c->argv[2].ptr;
        w.val_len = c->argv[2].len;
    } else {
        size_t off = encode_into(&db->tmp, has_expire, expire_at, c->argv[2].ptr, c->argv[2].len);
        if (db->tmp.oom) {
            nk_resp_add_error(c->reply, "ERR out of memory");
            return;
        }
        w.val = db->tmp.data + off;
        w.val_len = db->tmp.len - off;
    }
    const uint8_t *env_ptr = env_hdr;
    if (!submit_prefixed(db, c, &w, env_len > 0 ? &env_ptr : NULL, &env_len, 1)) {
        return;
    }
    if (!(flags & SET_GET)) {
        nk_resp_add_simple(c->reply, "OK");
    } else if (live) {
        nk_resp_add_bulk(c->reply, db->tmp.data, old_len);
    } else {
        nk_resp_add_null(c->reply);
    }
}

static void cmd_mset(nk_resp_db *db, nk_resp_call *c)
{
    if ((c->argc - 1) % 2 != 0) {
        reply_arity(c, "mset");
        return;
    }
    size_t n = (c->argc - 1) / 2;
    nk_kv_write *ops = calloc(n, sizeof(*ops));
    size_t *offs = calloc(n, sizeof(*offs));
    if (ops == NULL || offs == NULL) {
        free(ops);
        free(offs);
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    nk_resp_buf_reset(&db->tmp);
    bool prefixed = db->be->write_prefixed != NULL;
    for (size_t i = 0; i < n && !prefixed; i++) {
        const nk_resp_arg *v = &c->argv[2 + 2 * i];
        offs[i] = encode_into(&db->tmp, false, 0, v->ptr, v->len);
    }
    if (prefixed) {
        /* Every value gets the same no-expiry envelope, put in front of the
         * argument where it lies (no copy of the values). */
        uint8_t env_hdr[NK_RESP_ENV_MAX_HDR];
        size_t env_len = nk_resp_env_encode(env_hdr, false, 0);
        const uint8_t **pre = calloc(n, sizeof(*pre));
        size_t *pre_len = calloc(n, sizeof(*pre_len));
        if (pre == NULL || pre_len == NULL) {
            nk_resp_add_error(c->reply, "ERR out of memory");
        } else {
            for (size_t i = 0; i < n; i++) {
                ops[i].key = c->argv[1 + 2 * i].ptr;
                ops[i].key_len = c->argv[1 + 2 * i].len;
                ops[i].val = c->argv[2 + 2 * i].ptr;
                ops[i].val_len = c->argv[2 + 2 * i].len;
                pre[i] = env_hdr;
                pre_len[i] = env_len;
            }
            if (submit_prefixed(db, c, ops, pre, pre_len, n)) {
                nk_resp_add_simple(c->reply, "OK");
            }
        }
        free(pre);
        free(pre_len);
    } else if (db->tmp.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t end = i + 1 < n ? offs[i + 1] : db->tmp.len;
            ops[i].key = c->argv[1 + 2 * i].ptr;
            ops[i].key_len = c->argv[1 + 2 * i].len;
            ops[i].val = db->tmp.data + offs[i];
            ops[i].val_len = end - offs[i];
        }
        /* One batch: MSET is atomic (all keys or none, one durability wait). */
        if (submit(db, c, ops, n)) {
            nk_resp_add_simple(c->reply, "OK");
        }
    }
    free(ops);
    free(offs);
}

static int cmp_arg(const void *a, const void *b)
{
    const nk_resp_arg *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (r != 0) {
        return r;
    }
    return x->len < y->len ? -1 : (x->len > y->len ? 1 : 0);
}

static void cmd_del(nk_resp_db *db, nk_resp_call *c)
{
    size_t n = c->argc - 1;
    nk_resp_arg *keys = malloc(n * sizeof(*keys));
    nk_kv_write *ops = calloc(n, sizeof(*ops));
    if (keys == NULL || ops == NULL) {
        free(keys);
        free(ops);
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    memcpy(keys, c->argv + 1, n * sizeof(*keys));
    /* "DEL k k" deletes k once and counts 1: dedupe by key bytes. */
    qsort(keys, n, sizeof(*keys), cmp_arg);
    size_t nops = 0;
    int64_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cmp_arg(&keys[i - 1], &keys[i]) == 0) {
            continue;
        }
        lookup l = {0};
        int rc = lookup_key(db, &keys[i], &l);
        if (rc != NK_OK) {
            reply_backend_error(c, "read", rc);
            free(keys);
            free(ops);
            return;
        }
        if (l.state == K_ABSENT) {
            continue;
        }
        if (l.state == K_LIVE) {
            removed++;
        }
        ops[nops].key = keys[i].ptr;
        ops[nops].key_len = keys[i].len;
        ops[nops].del = true;
        nops++;
    }
    if (nops == 0 || submit(db, c, ops, nops)) {
        nk_resp_add_int(c->reply, removed);
    }
    free(keys);
    free(ops);
}

static void cmd_exists(nk_resp_db *db, nk_resp_call *c)
{
    int64_t count = 0;
    for (size_t i = 1; i < c->argc; i++) {
        lookup l = {0};
        int rc = lookup_key(db, &c->argv[i], &l);
        if (rc != NK_OK) {
            reply_backend_error(c, "read", rc);
            return;
        }
        if (l.state == K_LIVE) {
            count++;
        }
    }
    nk_resp_add_int(c->reply, count);
}

static void incr_common(nk_resp_db *db, nk_resp_call *c, int64_t delta)
{
    nk_resp_buf_reset(&db->tmp);
    lookup l = {.copy_into = &db->tmp};
    int rc = lookup_key(db, &c->argv[1], &l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return;
    }
    if (l.state == K_CORRUPT) {
        reply_corrupt(c);
        return;
    }
    int64_t cur = 0;
    bool live = l.state == K_LIVE;
    if (live && !nk_resp_parse_i64(db->tmp.data, db->tmp.len, &cur)) {
        reply_not_int(c);
        return;
    }
    if ((delta > 0 && cur > INT64_MAX - delta) || (delta < 0 && cur < INT64_MIN - delta)) {
        nk_resp_add_error(c->reply, "ERR increment or decrement would overflow");
        return;
    }
    int64_t next = cur + delta;
    char text[24];
    int tn = snprintf(text, sizeof(text), "%" PRId64, next);
    /* Redis keeps the TTL of a key INCR modifies. */
    bool keep = live && l.has_expire;
    nk_resp_buf_reset(&db->tmp);
    size_t off =
        encode_into(&db->tmp, keep, keep ? l.expire_at : 0, (const uint8_t *)text, (size_t)tn);
    if (db->tmp.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    nk_kv_write w = {c->argv[1].ptr, c->argv[1].len, db->tmp.data + off, db->tmp.len - off, false};
    if (submit(db, c, &w, 1)) {
        nk_resp_add_int(c->reply, next);
    }
}

static void cmd_incr(nk_resp_db *db, nk_resp_call *c)
{
    incr_common(db, c, 1);
}

static void cmd_decr(nk_resp_db *db, nk_resp_call *c)
{
    incr_common(db, c, -1);
}

static void cmd_incrby(nk_resp_db *db, nk_resp_call *c)
{
    int64_t d;
    if (!arg_i64(&c->argv[2], &d)) {
        reply_not_int(c);
        return;
    }
    incr_common(db, c, d);
}

static void cmd_decrby(nk_resp_db *db, nk_resp_call *c)
{
    int64_t d;
    if (!arg_i64(&c->argv[2], &d)) {
        reply_not_int(c);
        return;
    }
    if (d == INT64_MIN) {
        nk_resp_add_error(c->reply, "ERR decrement would overflow");
        return;
    }
    incr_common(db, c, -d);
}

static void ttl_common(nk_resp_db *db, nk_resp_call *c, bool ms)
{
    lookup l = {0};
    int rc = lookup_key(db, &c->argv[1], &l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return;
    }
    if (l.state == K_CORRUPT) {
        reply_corrupt(c);
        return;
    }
    if (l.state != K_LIVE) {
        nk_resp_add_int(c->reply, -2);
        return;
    }
    if (!l.has_expire) {
        nk_resp_add_int(c->reply, -1);
        return;
    }
    uint64_t left = l.expire_at - l.now; /* live: expire_at >= now */
    nk_resp_add_int(c->reply, (int64_t)(ms ? left : (left + 500) / 1000));
}

static void cmd_ttl(nk_resp_db *db, nk_resp_call *c)
{
    ttl_common(db, c, false);
}

static void cmd_pttl(nk_resp_db *db, nk_resp_call *c)
{
    ttl_common(db, c, true);
}

static void cmd_type(nk_resp_db *db, nk_resp_call *c)
{
    lookup l = {0};
    int rc = lookup_key(db, &c->argv[1], &l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return;
    }
    nk_resp_add_simple(c->reply, l.state == K_LIVE ? "string" : "none");
}

/* -------------------------------------------------------------- glob --- */

/* Match one pattern element at pat[0..] against byte c; *used = its length. */
static bool glob_one(const uint8_t *pat, size_t plen, uint8_t c, size_t *used)
{
    if (pat[0] == '?') {
        *used = 1;
        return true;
    }
    if (pat[0] == '\\' && plen >= 2) {
        *used = 2;
        return pat[1] == c;
    }
    if (pat[0] != '[') {
        *used = 1;
        return pat[0] == c;
    }
    size_t i = 1;
    bool neg = false;
    if (i < plen && pat[i] == '^') {
        neg = true;
        i++;
    }
    bool match = false;
    /* Like Redis, a class without ']' runs to the end of the pattern. */
    while (i < plen && pat[i] != ']') {
        if (pat[i] == '\\' && i + 1 < plen) {
            match |= pat[i + 1] == c;
            i += 2;
        } else if (i + 2 < plen && pat[i + 1] == '-') {
            uint8_t lo = pat[i], hi = pat[i + 2];
            if (lo > hi) {
                uint8_t t = lo;
                lo = hi;
                hi = t;
            }
            match |= c >= lo && c <= hi;
            i += 3;
        } else {
            match |= pat[i] == c;
            i++;
        }
    }
    *used = i < plen ? i + 1 : i;
    return neg ? !match : match;
}

bool nk_resp_glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen)
{
    /* Iterative with one backtrack point per '*': O(plen * slen) worst case,
     * no recursion, so hostile patterns cannot blow the stack. */
    size_t p = 0, i = 0;
    size_t star_p = SIZE_MAX, star_i = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '*') {
            while (p < plen && pat[p] == '*') {
                p++;
            }
            if (p == plen) {
                return true;
            }
            star_p = p;
            star_i = i;
            continue;
        }
        size_t used;
        if (p < plen && glob_one(pat + p, plen - p, s[i], &used)) {
            p += used;
            i++;
            continue;
        }
        if (star_p == SIZE_MAX) {
            return false;
        }
        p = star_p;
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*') {
        p++;
    }
    return p == plen;
}

/* -------------------------------------------------------------- scan --- */

static void cursor_evict_oldest(nk_resp_db *db)
{
    cursor_ent *e = &db->ring[db->ring_head];
    nk_u64map_del(&db->cursors, e->id);
    db->ring_bytes -= e->klen;
    free(e->key);
    e->key = NULL;
    db->ring_head = (db->ring_head + 1) % db->ring_cap;
    db->ring_count--;
}

/* Remember `key` under a new cursor id; 0 when out of memory. */
static uint64_t cursor_new(nk_resp_db *db, const uint8_t *key, size_t klen)
{
    if (klen > db->opt.scan_cursor_bytes) {
        return 0;
    }
    while (db->ring_count > 0 &&
           (db->ring_count == db->ring_cap || db->ring_bytes + klen > db->opt.scan_cursor_bytes)) {
        cursor_evict_oldest(db);
    }
    uint8_t *copy = malloc(klen ? klen : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, key, klen);
    db->cursor_seq++;
    if (db->cursor_seq == 0) {
        db->cursor_seq = 1;
    }
    uint64_t id = db->cursor_tag | db->cursor_seq;
    cursor_ent *e = &db->ring[(db->ring_head + db->ring_count) % db->ring_cap];
    e->id = id;
    e->key = copy;
    e->klen = klen;
    if (nk_u64map_put(&db->cursors, id, e) != NK_OK) {
        free(copy);
        e->key = NULL;
        return 0;
    }
    db->ring_count++;
    db->ring_bytes += klen;
    return id;
}

typedef struct scan_ctx {
    nk_resp_db *db;
    uint64_t now;
    size_t want; /* keys to visit in this page */
    size_t seen;
    const nk_resp_arg *match;
    bool type_ok;
    nk_resp_buf keys; /* matched keys, each as a bulk reply */
    size_t nkeys;
    nk_resp_buf expired; /* expired keys: u64 length + bytes */
    nk_resp_buf next;    /* the first key of the next page */
    bool more;
} scan_ctx;

static bool scan_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    scan_ctx *s = arg;
    if (s->seen == s->want) {
        nk_resp_buf_append(&s->next, key, klen);
        s->more = true;
        return false;
    }
    s->seen++;
    bool has_expire;
    uint64_t expire_at;
    const uint8_t *user;
    size_t ulen;
    if (nk_resp_env_decode(val, vlen, &has_expire, &expire_at, &user, &ulen) == NK_OK &&
        has_expire && s->now > expire_at) {
        uint8_t len8[8];
        nk_put_u64(len8, klen);
        nk_resp_buf_append(&s->expired, len8, 8);
        nk_resp_buf_append(&s->expired, key, klen);
        return true;
    }
    if (!s->type_ok) {
        return true;
    }
    if (s->match != NULL && !nk_resp_glob_match(s->match->ptr, s->match->len, key, klen)) {
        return true;
    }
    nk_resp_add_bulk(&s->keys, key, klen);
    s->nkeys++;
    return true;
}

static void cmd_scan(nk_resp_db *db, nk_resp_call *c)
{
    const nk_resp_arg *cur = &c->argv[1];
    uint64_t cursor = 0;
    for (size_t i = 0; i < cur->len; i++) {
        uint8_t d = cur->ptr[i];
        if (d < '0' || d > '9' || cursor > (UINT64_MAX - (d - '0')) / 10) {
            nk_resp_add_error(c->reply, "ERR invalid cursor");
            return;
        }
        cursor = cursor * 10 + (d - '0');
    }
    if (cur->len == 0) {
        nk_resp_add_error(c->reply, "ERR invalid cursor");
        return;
    }
    scan_ctx s = {.db = db, .now = now_ms(db), .want = SCAN_DEFAULT_COUNT, .type_ok = true};
    for (size_t i = 2; i < c->argc; i += 2) {
        if (i + 1 >= c->argc) {
            reply_syntax(c);
            return;
        }
        const nk_resp_arg *v = &c->argv[i + 1];
        if (arg_is(&c->argv[i], "count")) {
            int64_t n;
            if (!arg_i64(v, &n)) {
                reply_not_int(c);
                return;
            }
            if (n < 1) {
                reply_syntax(c);
                return;
            }
            s.want = n > SCAN_MAX_COUNT ? SCAN_MAX_COUNT : (size_t)n;
        } else if (arg_is(&c->argv[i], "match")) {
            s.match = v;
        } else if (arg_is(&c->argv[i], "type")) {
            s.type_ok = arg_is(v, "string");
        } else {
            reply_syntax(c);
            return;
        }
    }
    const uint8_t *start = NULL;
    size_t start_len = 0;
    if (cursor != 0) {
        cursor_ent *e = nk_u64map_get(&db->cursors, cursor);
        if (e == NULL) {
            nk_resp_add_error(c->reply, "ERR invalid cursor");
            return;
        }
        start = e->key;
        start_len = e->klen;
        /* An empty resume key would mean "from the start": it cannot occur,
         * because the empty key sorts first and never starts a later page. */
    }
    nk_resp_buf_init(&s.keys);
    nk_resp_buf_init(&s.expired);
    nk_resp_buf_init(&s.next);
    int rc = nk_kv_scan(db->be, start, start_len, s.want + 1, scan_visit, &s);
    if (rc != NK_OK) {
        reply_backend_error(c, "scan", rc);
    } else if (s.keys.oom || s.expired.oom || s.next.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
    } else {
        uint64_t next = 0;
        if (s.more) {
            next = cursor_new(db, s.next.data, s.next.len);
        }
        if (s.more && next == 0) {
            nk_resp_add_error(c->reply, "ERR out of memory (scan cursor)");
        } else {
            char num[24];
            snprintf(num, sizeof(num), "%" PRIu64, next);
            nk_resp_add_array(c->reply, 2);
            nk_resp_add_bulk_str(c->reply, num);
            nk_resp_add_array(c->reply, s.nkeys);
            nk_resp_buf_append(c->reply, s.keys.data, s.keys.len);
        }
        for (size_t off = 0; off + 8 <= s.expired.len;) {
            size_t klen = (size_t)nk_get_u64(s.expired.data + off);
            expire_key(db, s.expired.data + off + 8, klen);
            off += 8 + klen;
        }
    }
    nk_resp_buf_free(&s.keys);
    nk_resp_buf_free(&s.expired);
    nk_resp_buf_free(&s.next);
}

typedef struct count_ctx {
    uint64_t now;
    uint64_t n;
} count_ctx;

static bool count_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    count_ctx *cc = arg;
    bool has_expire;
    uint64_t at;
    const uint8_t *u;
    size_t ul;
    if (nk_resp_env_decode(val, vlen, &has_expire, &at, &u, &ul) == NK_OK && has_expire &&
        cc->now > at) {
        return true;
    }
    cc->n++;
    return true;
}

/* Keys in the store: the backend's cheap count when it has one (like Redis,
 * it may include keys that expired but were not removed yet), else a full
 * scan counting live keys. */
static int key_count(nk_resp_db *db, uint64_t *n)
{
    int rc = nk_kv_count(db->be, n);
    if (rc != NK_ENOTSUP) {
        return rc;
    }
    count_ctx cc = {now_ms(db), 0};
    rc = nk_kv_scan(db->be, NULL, 0, 0, count_visit, &cc);
    *n = cc.n;
    return rc;
}

static void cmd_dbsize(nk_resp_db *db, nk_resp_call *c)
{
    uint64_t n;
    int rc = key_count(db, &n);
    if (rc != NK_OK) {
        reply_backend_error(c, "count", rc);
        return;
    }
    nk_resp_add_int(c->reply, (int64_t)n);
}

/* ---------------------------------------------------- server / admin --- */

static void info_line(nk_resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void info_line(nk_resp_buf *b, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
    }
    nk_resp_buf_append(b, line, (size_t)n);
    nk_resp_buf_append(b, "\r\n", 2);
}

static const char *const info_sections[] = {"server", "clients", "persistence", "stats",
                                            "keyspace"};

static void info_section(nk_resp_db *db, nk_resp_buf *b, int which)
{
    nk_resp_stats *st = &db->stats;
    if (b->len > 0) {
        nk_resp_buf_append(b, "\r\n", 2);
    }
    switch (which) {
    case 0: {
        uint64_t up = (nk_rt_now(db->rt) - db->start_ns) / NK_NSEC_PER_SEC;
        const char *port = strrchr(db->listen_addr, ':');
        info_line(b, "# Server");
        /* The protocol level this server imitates; tools gate features on it. */
        info_line(b, "redis_version:%s", COMPAT_REDIS_VERSION);
        info_line(b, "nokv_version:%s", db->opt.version);
        info_line(b, "redis_mode:standalone");
        info_line(b, "arch_bits:%u", (unsigned)(sizeof(void *) * 8));
        info_line(b, "multiplexing_api:nk_rt");
        info_line(b, "run_id:%s", db->run_id);
        info_line(b, "tcp_port:%s", port ? port + 1 : "0");
        info_line(b, "uptime_in_seconds:%" PRIu64, up);
        info_line(b, "uptime_in_days:%" PRIu64, up / 86400);
        break;
    }
    case 1:
        info_line(b, "# Clients");
        info_line(b, "connected_clients:%" PRIu64, st->connected_clients);
        info_line(b, "maxclients:%u", db->opt.max_clients);
        break;
    case 2:
        info_line(b, "# Persistence");
        info_line(b, "loading:0");
        info_line(b, "backend:%s", db->be->name ? db->be->name : "unknown");
        info_line(b, "sync_policy:%s", db->opt.sync_policy);
        info_line(b, "writes_submitted:%" PRIu64, st->writes_submitted);
        info_line(b, "writes_pending:%" PRIu64, st->writes_pending);
        info_line(b, "write_errors:%" PRIu64, st->write_errors);
        break;
    case 3:
        info_line(b, "# Stats");
        info_line(b, "total_connections_received:%" PRIu64, st->connections_received);
        info_line(b, "total_commands_processed:%" PRIu64, st->commands_processed);
        info_line(b, "total_net_input_bytes:%" PRIu64, st->net_input_bytes);
        info_line(b, "total_net_output_bytes:%" PRIu64, st->net_output_bytes);
        info_line(b, "rejected_connections:%" PRIu64, st->connections_rejected);
        info_line(b, "expired_keys:%" PRIu64, st->expired_keys);
        info_line(b, "keyspace_hits:%" PRIu64, st->keyspace_hits);
        info_line(b, "keyspace_misses:%" PRIu64, st->keyspace_misses);
        info_line(b, "total_error_replies:%" PRIu64, st->error_replies);
        info_line(b, "total_protocol_errors:%" PRIu64, st->protocol_errors);
        info_line(b, "client_output_buffer_limit_disconnections:%" PRIu64,
                  st->output_limit_disconnects);
        info_line(b, "scan_cursors_active:%zu", db->ring_count);
        break;
    default: {
        uint64_t n = 0;
        info_line(b, "# Keyspace");
        if (key_count(db, &n) == NK_OK && n > 0) {
            info_line(b, "db0:keys=%" PRIu64, n);
        }
        break;
    }
    }
}

static void cmd_info(nk_resp_db *db, nk_resp_call *c)
{
    bool want[5] = {false, false, false, false, false};
    bool any = c->argc == 1;
    for (size_t i = 1; i < c->argc; i++) {
        const nk_resp_arg *a = &c->argv[i];
        if (arg_is(a, "all") || arg_is(a, "everything") || arg_is(a, "default")) {
            any = true;
        }
        for (int s = 0; s < 5; s++) {
            if (arg_is(a, info_sections[s])) {
                want[s] = true;
            }
        }
    }
    nk_resp_buf *b = &db->tmp2;
    nk_resp_buf_reset(b);
    for (int s = 0; s < 5; s++) {
        if (any || want[s]) {
            info_section(db, b, s);
        }
    }
    if (b->oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    nk_resp_add_bulk(c->reply, b->data, b->len);
}

static void cmd_config(nk_resp_db *db, nk_resp_call *c)
{
    if (arg_is(&c->argv[1], "resetstat") && c->argc == 2) {
        uint64_t connected = db->stats.connected_clients;
        uint64_t pending = db->stats.writes_pending;
        memset(&db->stats, 0, sizeof(db->stats));
        db->stats.connected_clients = connected;
        db->stats.writes_pending = pending;
        nk_resp_add_simple(c->reply, "OK");
        return;
    }
    if (!arg_is(&c->argv[1], "get")) {
        nk_resp_add_errorf(c->reply, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                           (int)(c->argv[1].len > 64 ? 64 : c->argv[1].len),
                           (const char *)c->argv[1].ptr);
        return;
    }
    if (c->argc < 3) {
        reply_arity(c, "config|get");
        return;
    }
    char maxclients[16];
    snprintf(maxclients, sizeof(maxclients), "%u", db->opt.max_clients);
    bool durable = strcmp(db->opt.sync_policy, "none") != 0;
    /* A read-only view for tools: redis-benchmark asks for save and
     * appendonly at start-up and aborts when CONFIG GET fails. */
    const char *items[][2] = {
        {"appendfsync", db->opt.sync_policy},
        {"appendonly", durable ? "yes" : "no"},
        {"databases", "1"},
        {"maxclients", maxclients},
        {"save", ""},
    };
    size_t n = sizeof(items) / sizeof(items[0]);
    bool hit[sizeof(items) / sizeof(items[0])] = {false};
    size_t nhit = 0;
    for (size_t i = 2; i < c->argc; i++) {
        for (size_t k = 0; k < n; k++) {
            if (!hit[k] && nk_resp_glob_match(c->argv[i].ptr, c->argv[i].len,
                                              (const uint8_t *)items[k][0], strlen(items[k][0]))) {
                hit[k] = true;
                nhit++;
            }
        }
    }
    nk_resp_add_array(c->reply, nhit * 2);
    for (size_t k = 0; k < n; k++) {
        if (hit[k]) {
            nk_resp_add_bulk_str(c->reply, items[k][0]);
            nk_resp_add_bulk_str(c->reply, items[k][1]);
        }
    }
}

static void cmd_command(nk_resp_db *db, nk_resp_call *c);

/* Sorted by name (COMMAND lists them in this order). */
static const cmd_def cmd_table[] = {
    {"command", -1, "loading stale", 0, 0, 0, "server", "Get details about server commands",
     "?subcommand ?name...", cmd_command},
    {"config", -2, "admin loading stale", 0, 0, 0, "server",
     "Read configuration parameters (GET only)", "subcommand ?parameter...", cmd_config},
    {"dbsize", 1, "readonly fast", 0, 0, 0, "server", "Return the number of keys", "", cmd_dbsize},
    {"decr", 2, "write denyoom fast", 1, 1, 1, "string", "Decrement the integer value of a key",
     "key", cmd_decr},
    {"decrby", 3, "write denyoom fast", 1, 1, 1, "string",
     "Decrement the integer value of a key by a number", "key decrement:integer", cmd_decrby},
    {"del", -2, "write", 1, -1, 1, "generic", "Delete keys (one atomic batch)", "key...", cmd_del},
    {"echo", 2, "fast", 0, 0, 0, "connection", "Return the given string", "message", cmd_echo},
    {"exists", -2, "readonly fast", 1, -1, 1, "generic", "Count the given keys that exist",
     "key...", cmd_exists},
    {"get", 2, "readonly fast", 1, 1, 1, "string", "Get the value of a key", "key", cmd_get},
    {"incr", 2, "write denyoom fast", 1, 1, 1, "string", "Increment the integer value of a key",
     "key", cmd_incr},
    {"incrby", 3, "write denyoom fast", 1, 1, 1, "string",
     "Increment the integer value of a key by a number", "key increment:integer", cmd_incrby},
    {"info", -1, "loading stale", 0, 0, 0, "server", "Server information and statistics",
     "?section...", cmd_info},
    {"mget", -2, "readonly fast", 1, -1, 1, "string", "Get the values of keys", "key...", cmd_mget},
    {"mset", -3, "write denyoom", 1, -1, 2, "string", "Set keys atomically (one batch)",
     "key value...", cmd_mset},
    {"ping", -1, "fast", 0, 0, 0, "connection", "Ping the server", "?message", cmd_ping},
    {"pttl", 2, "readonly fast", 1, 1, 1, "generic", "Time to live of a key in milliseconds", "key",
     cmd_pttl},
    {"quit", -1, "fast", 0, 0, 0, "connection", "Close the connection", "", cmd_quit},
    {"scan", -2, "readonly", 0, 0, 0, "generic", "Iterate over keys in key order",
     "cursor:integer ?MATCH:pattern ?COUNT:count ?TYPE:type", cmd_scan},
    {"select", 2, "loading stale fast", 0, 0, 0, "connection", "Select database 0 (the only one)",
     "index:integer", cmd_select},
    {"set", -3, "write denyoom", 1, 1, 1, "string", "Set the value of a key",
     "key value ?NX ?XX ?GET ?EX:seconds ?PX:milliseconds ?EXAT:unix-time-seconds "
     "?PXAT:unix-time-milliseconds ?KEEPTTL",
     cmd_set},
    {"ttl", 2, "readonly fast", 1, 1, 1, "generic", "Time to live of a key in seconds", "key",
     cmd_ttl},
    {"type", 2, "readonly fast", 1, 1, 1, "generic", "Type of the value stored at a key", "key",
     cmd_type},
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))

static const cmd_def *find_cmd(const nk_resp_arg *name)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (arg_is(name, cmd_table[i].name)) {
            return &cmd_table[i];
        }
    }
    return NULL;
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        if (*s == ' ') {
            in = false;
        } else if (!in) {
            in = true;
            n++;
        }
    }
    return n;
}

static void add_flags_array(nk_resp_buf *b, const char *flags)
{
    nk_resp_add_array(b, count_words(flags));
    const char *p = flags;
    while (*p) {
        while (*p == ' ') {
            p++;
        }
        const char *e = p;
        while (*e && *e != ' ') {
            e++;
        }
        if (e > p) {
            char w[32];
            size_t n = (size_t)(e - p) < sizeof(w) - 1 ? (size_t)(e - p) : sizeof(w) - 1;
            memcpy(w, p, n);
            w[n] = '\0';
            nk_resp_add_simple(b, w);
        }
        p = e;
    }
}

static void add_command_info(nk_resp_buf *b, const cmd_def *d)
{
    nk_resp_add_array(b, 10);
    nk_resp_add_bulk_str(b, d->name);
    nk_resp_add_int(b, d->arity);
    add_flags_array(b, d->flags);
    nk_resp_add_int(b, d->first_key);
    nk_resp_add_int(b, d->last_key);
    nk_resp_add_int(b, d->step);
    nk_resp_add_array(b, 0); /* ACL categories */
    nk_resp_add_array(b, 0); /* tips */
    nk_resp_add_array(b, 0); /* key specs */
    nk_resp_add_array(b, 0); /* subcommands */
}

/* One argument doc map (flat RESP2 array) from a word of cmd_def.args. */
static void add_arg_doc(nk_resp_buf *b, const char *w, size_t n)
{
    bool optional = false, multiple = false;
    if (n > 0 && w[0] == '?') {
        optional = true;
        w++;
        n--;
    }
    if (n > 3 && memcmp(w + n - 3, "...", 3) == 0) {
        multiple = true;
        n -= 3;
    }
    const char *colon = memchr(w, ':', n);
    char name[64], token[32];
    const char *type;
    bool has_token = false;
    bool upper = n > 0 && w[0] >= 'A' && w[0] <= 'Z';
    if (colon != NULL) {
        size_t tn = (size_t)(colon - w);
        size_t nn = n - tn - 1;
        snprintf(token, sizeof(token), "%.*s", (int)tn, w);
        snprintf(name, sizeof(name), "%.*s", (int)nn, colon + 1);
        has_token = upper;
        type = strcmp(name, "pattern") == 0 ? "pattern"
               : (strcmp(name, "integer") == 0 || strcmp(name, "count") == 0 ||
                  strcmp(name, "seconds") == 0 || strcmp(name, "milliseconds") == 0)
                   ? "integer"
               : strncmp(name, "unix-time", 9) == 0 ? "unix-time"
                                                    : "string";
        if (!upper) {
            /* "cursor:integer": a plain argument with a type */
            snprintf(name, sizeof(name), "%.*s", (int)tn, w);
            type = "integer";
        }
    } else {
        snprintf(name, sizeof(name), "%.*s", (int)n, w);
        if (upper) {
            snprintf(token, sizeof(token), "%.*s", (int)n, w);
            has_token = true;
            type = "pure-token";
        } else {
            type = strcmp(name, "key") == 0 ? "key" : "string";
        }
    }
    size_t fields = 2 + (has_token ? 1 : 0) + ((optional || multiple) ? 1 : 0);
    nk_resp_add_array(b, fields * 2);
    nk_resp_add_bulk_str(b, "name");
    nk_resp_add_bulk_str(b, name);
    nk_resp_add_bulk_str(b, "type");
    nk_resp_add_bulk_str(b, type);
    if (has_token) {
        nk_resp_add_bulk_str(b, "token");
        nk_resp_add_bulk_str(b, token);
    }
    if (optional || multiple) {
        nk_resp_add_bulk_str(b, "flags");
        nk_resp_add_array(b, (optional ? 1u : 0u) + (multiple ? 1u : 0u));
        if (optional) {
            nk_resp_add_simple(b, "optional");
        }
        if (multiple) {
            nk_resp_add_simple(b, "multiple");
        }
    }
}

static void add_command_docs(nk_resp_buf *b, const cmd_def *d)
{
    nk_resp_add_bulk_str(b, d->name);
    nk_resp_add_array(b, 8);
    nk_resp_add_bulk_str(b, "summary");
    nk_resp_add_bulk_str(b, d->summary);
    nk_resp_add_bulk_str(b, "since");
    nk_resp_add_bulk_str(b, "0.1.0");
    nk_resp_add_bulk_str(b, "group");
    nk_resp_add_bulk_str(b, d->group);
    nk_resp_add_bulk_str(b, "arguments");
    nk_resp_add_array(b, count_words(d->args));
    const char *p = d->args;
    while (*p) {
        while (*p == ' ') {
            p++;
        }
        const char *e = p;
        while (*e && *e != ' ') {
            e++;
        }
        if (e > p) {
            add_arg_doc(b, p, (size_t)(e - p));
        }
        p = e;
    }
}

static void cmd_command(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_buf *b = c->reply;
    if (c->argc == 1) {
        nk_resp_add_array(b, NCMDS);
        for (size_t i = 0; i < NCMDS; i++) {
            add_command_info(b, &cmd_table[i]);
        }
        return;
    }
    const nk_resp_arg *sub = &c->argv[1];
    if (arg_is(sub, "count") && c->argc == 2) {
        nk_resp_add_int(b, (int64_t)NCMDS);
    } else if (arg_is(sub, "list") && c->argc == 2) {
        nk_resp_add_array(b, NCMDS);
        for (size_t i = 0; i < NCMDS; i++) {
            nk_resp_add_bulk_str(b, cmd_table[i].name);
        }
    } else if (arg_is(sub, "info")) {
        if (c->argc == 2) {
            nk_resp_add_array(b, NCMDS);
            for (size_t i = 0; i < NCMDS; i++) {
                add_command_info(b, &cmd_table[i]);
            }
            return;
        }
        nk_resp_add_array(b, c->argc - 2);
        for (size_t i = 2; i < c->argc; i++) {
            const cmd_def *d = find_cmd(&c->argv[i]);
            if (d != NULL) {
                add_command_info(b, d);
            } else {
                nk_resp_add_null(b); /* RESP2 null for an unknown name, as Redis */
            }
        }
    } else if (arg_is(sub, "docs")) {
        if (c->argc == 2) {
            nk_resp_add_array(b, NCMDS * 2);
            for (size_t i = 0; i < NCMDS; i++) {
                add_command_docs(b, &cmd_table[i]);
            }
            return;
        }
        size_t found = 0;
        for (size_t i = 2; i < c->argc; i++) {
            found += find_cmd(&c->argv[i]) != NULL;
        }
        nk_resp_add_array(b, found * 2);
        for (size_t i = 2; i < c->argc; i++) {
            const cmd_def *d = find_cmd(&c->argv[i]);
            if (d != NULL) {
                add_command_docs(b, d);
            }
        }
    } else if (arg_is(sub, "help") && c->argc == 2) {
        const char *lines[] = {
            "COMMAND <subcommand> [<arg> ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands.",
            "DOCS [<command-name> ...]",
            "    Return documentary information about commands.",
            "INFO [<command-name> ...]",
            "    Return details about the given commands.",
            "LIST",
            "    Return the names of all commands.",
        };
        size_t n = sizeof(lines) / sizeof(lines[0]);
        nk_resp_add_array(b, n);
        for (size_t i = 0; i < n; i++) {
            nk_resp_add_simple(b, lines[i]);
        }
    } else {
        nk_resp_add_errorf(b,
                           "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                           "Try COMMAND HELP.",
                           (int)(sub->len > 64 ? 64 : sub->len), (const char *)sub->ptr);
    }
}

/* --------------------------------------------------------- dispatch --- */

/* Append `a` for an error message: at most `room` bytes, control bytes and
 * quotes shown as '?', so a hostile argument cannot break the reply line. */
static size_t quote_arg(char *out, size_t room, const nk_resp_arg *a)
{
    size_t n = a->len < room ? a->len : room;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = a->ptr[i];
        out[i] = (char)(ch < 0x20 || ch == 0x7f ? '?' : ch);
    }
    return n;
}

static void reply_unknown(nk_resp_call *c)
{
    /* Redis 7: "ERR unknown command 'foo', with args beginning with: 'a' 'b' " */
    char msg[512];
    size_t len = 0;
    len += (size_t)snprintf(msg, sizeof(msg), "ERR unknown command '");
    len += quote_arg(msg + len, 128, &c->argv[0]);
    len += (size_t)snprintf(msg + len, sizeof(msg) - len, "', with args beginning with: ");
    size_t args_start = len;
    for (size_t i = 1; i < c->argc && len - args_start < 128; i++) {
        size_t room = 128 - (len - args_start);
        msg[len++] = '\'';
        len += quote_arg(msg + len, room, &c->argv[i]);
        msg[len++] = '\'';
        msg[len++] = ' ';
    }
    msg[len] = '\0';
    nk_resp_add_error(c->reply, msg);
}

void nk_resp_db_exec(nk_resp_db *db, nk_resp_call *c)
{
    size_t before = c->reply->len;
    c->wrote = false;
    c->quit = false;
    db->stats.commands_processed++;
    const cmd_def *d = find_cmd(&c->argv[0]);
    if (d == NULL) {
        reply_unknown(c);
    } else if ((d->arity > 0 && c->argc != (size_t)d->arity) ||
               (d->arity < 0 && c->argc < (size_t)-d->arity)) {
        reply_arity(c, d->name);
    } else {
        d->fn(db, c);
    }
    if (c->reply->len > before && c->reply->data[before] == '-') {
        db->stats.error_replies++;
    }
}

/* ------------------------------------------------------------ db --- */

int nk_resp_db_new(nk_rt *rt, nk_kv_backend *be, const nk_resp_db_options *opt, nk_resp_db **out)
{
    nk_resp_db *db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return NK_ENOMEM;
    }
    if (opt != NULL) {
        db->opt = *opt;
    }
    if (db->opt.sync_policy == NULL) {
        db->opt.sync_policy = "none";
    }
    if (db->opt.version == NULL) {
        db->opt.version = "0.1.0-dev";
    }
    if (db->opt.scan_cursors == 0) {
        db->opt.scan_cursors = DEFAULT_CURSORS;
    }
    if (db->opt.scan_cursor_bytes == 0) {
        db->opt.scan_cursor_bytes = DEFAULT_CURSOR_BYTES;
    }
    if (db->opt.max_clients == 0) {
        db->opt.max_clients = 10000;
    }
    db->rt = rt;
    db->be = be;
    db->start_ns = nk_rt_now(rt);
    db->ring_cap = db->opt.scan_cursors;
    db->ring = calloc(db->ring_cap, sizeof(*db->ring));
    if (db->ring == NULL) {
        free(db);
        return NK_ENOMEM;
    }
    nk_u64map_init(&db->cursors);
    nk_rand r;
    nk_rt_rand_stream(rt, "resp.db", &r);
    /* 20 bits of tag << 32: ids stay below 2^52 (exact in a double). */
    db->cursor_tag = (nk_rand_below(&r, (1u << 20) - 1) + 1) << 32;
    for (int i = 0; i < 40; i++) {
        db->run_id[i] = "0123456789abcdef"[nk_rand_below(&r, 16)];
    }
    db->run_id[40] = '\0';
    nk_resp_buf_init(&db->tmp);
    nk_resp_buf_init(&db->tmp2);
    snprintf(db->listen_addr, sizeof(db->listen_addr), "-");
    *out = db;
    return NK_OK;
}

void nk_resp_db_free(nk_resp_db *db)
{
    if (db == NULL) {
        return;
    }
    while (db->ring_count > 0) {
        cursor_evict_oldest(db);
    }
    free(db->ring);
    nk_u64map_free(&db->cursors);
    nk_resp_buf_free(&db->tmp);
    nk_resp_buf_free(&db->tmp2);
    free(db);
}

nk_resp_stats *nk_resp_db_stats(nk_resp_db *db)
{
    return &db->stats;
}

void nk_resp_db_set_listen_addr(nk_resp_db *db, const char *addr)
{
    snprintf(db->listen_addr, sizeof(db->listen_addr), "%s", addr);
}
