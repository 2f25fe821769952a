/*
 * commands.c - RESP command implementations over nk_kv_backend (see
 * commands.h for the semantics, the value envelope and SCAN cursors).
 */
#include "nokv/resp/commands.h"

#include <inttypes.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/u64map.h"

#define SCAN_DEFAULT_COUNT 10
#define SCAN_MAX_COUNT 100000
#define SCAN_SEEK_MAX 100000 /* fingerprint search of a forgotten cursor */
#define SCAN_FP_SEED 0x6e6b7363u
#define CURSOR_MARK (UINT64_C(1) << 50)
#define DEFAULT_CURSORS 65536
#define DEFAULT_CURSOR_BYTES (16u * 1024u * 1024u)
#define DEFAULT_SWEEP_MS 100
#define DEFAULT_SWEEP_KEYS 1000
#define MAX_STRING (512u * 1024u * 1024u)   /* Redis proto-max-bulk-len */
#define MAX_TX_BYTES (512u * 1024u * 1024u) /* queued MULTI commands per session */
#define FLUSH_CHUNK 4096                    /* deletes per FLUSHDB batch */
#define WATCH_SLOTS 16384                   /* write generation slots (WATCH) */
#define MAX_WATCHED 1024                    /* watched keys per session */
#define COMPAT_REDIS_VERSION "7.0.0"

typedef struct cursor_ent {
    uint64_t id;
    uint8_t *key;
    size_t klen;
} cursor_ent;

/* One write of the running EXEC, not yet submitted (see commands.h). */
typedef struct ov_ent {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
    bool del;
} ov_ent;

/* One queued MULTI command: argv pointing into its own copy of the bytes. */
typedef struct tx_cmd {
    nk_resp_arg *argv;
    size_t argc;
} tx_cmd;

struct nk_resp_session {
    nk_resp_db *db;
    nk_resp_session *prev, *next; /* db's list, in id order (CLIENT LIST) */
    uint64_t id;
    char peer[64];
    char name[128];
    char lib_name[64];
    char lib_ver[64];
    uint64_t created_ns;
    bool in_multi;
    bool multi_dirty; /* a queued command failed its checks: EXECABORT */
    /* WATCH: the generation of each watched key's slot when watched */
    uint32_t watch_slot[MAX_WATCHED];
    uint32_t watch_gen[MAX_WATCHED];
    size_t nwatch;
    bool watching;
    bool watch_overflow;     /* more keys than MAX_WATCHED: EXEC fails */
    uint64_t watch_epoch;    /* flush_epoch when WATCH ran */
    uint64_t watch_deadline; /* earliest expiry among watched keys; 0 none */
    tx_cmd *q;
    size_t nq, qcap;
    size_t q_bytes;
};

#define MAX_COMMANDS 160 /* >= the command table (checked at the table) */
#define CMD_HASH_SLOTS 512u /* power of two, > 3 x MAX_COMMANDS */
#define CMD_NAME_MAX 32u  /* longer names are no command */

struct nk_resp_db {
    nk_rt *rt;
    nk_kv_backend *be;
    nk_resp_db_options opt;
    nk_resp_stats stats;
    uint64_t cmd_calls[MAX_COMMANDS];  /* per cmd_table entry */
    /* Command names by hash (find_cmd): index + 1 into cmd_table, 0 = empty.
     * A linear scan with strlen per entry cost ~600 instructions per request. */
    uint8_t cmd_hash[CMD_HASH_SLOTS];
    uint8_t cmd_len[MAX_COMMANDS];
    uint64_t cmd_errors[MAX_COMMANDS]; /* error replies per entry */
    uint64_t start_ns;
    char listen_addr[64];
    char run_id[41];
    /* remembered scan cursors: FIFO ring + id index */
    cursor_ent *ring;
    size_t ring_cap;
    size_t ring_head;
    size_t ring_count;
    size_t ring_bytes;
    nk_u64map cursors;
    /* sessions */
    nk_resp_session *own; /* for calls without a session */
    nk_resp_session *sess_head, *sess_tail;
    uint64_t next_client_id;
    /* EXEC overlay */
    bool tx;
    ov_ent *ov;
    size_t nov, ovcap;
    bool ov_oom;
    /* WATCH: write generations per key-hash slot, and for FLUSHDB */
    uint32_t gen[WATCH_SLOTS];
    uint64_t flush_epoch;
    /* expiry sweep */
    uint64_t sweep_timer;
    nk_resp_buf sweep_pos; /* next key to visit; empty = from the start */
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

#define TRYAGAIN_TEXT                                                                              \
    "TRYAGAIN this store does not lead the key's region (NK_EAGAIN); retry, or ask the leader"

static void reply_backend_error(nk_resp_call *c, const char *what, int rc)
{
    if (rc == NK_EAGAIN) {
        /* A replicated backend that does not lead the key's region. */
        nk_resp_add_errorf(c->reply,
                           "TRYAGAIN %s refused: this store does not lead the key's region; "
                           "retry on the leader",
                           what);
        return;
    }
    nk_resp_add_errorf(c->reply, "ERR %s failed: %s (%s)", what, nk_strerror(rc), nk_errname(rc));
}

void nk_resp_read_error(int status, char *buf, size_t len)
{
    if (status == NK_EAGAIN) {
        snprintf(buf, len, "%s", TRYAGAIN_TEXT);
        return;
    }
    snprintf(buf, len, "ERR read not confirmed: %s (%s); retry it", nk_strerror(status),
             nk_errname(status));
}

void nk_resp_write_error(int status, char *buf, size_t len)
{
    if (status == NK_EAGAIN) {
        snprintf(buf, len,
                 "TRYAGAIN write not confirmed: this store lost the lead (NK_EAGAIN); its effect "
                 "may or may not persist");
        return;
    }
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
    size_t ulen;            /* live: the user value's length */
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
    l->ulen = ulen;
    if (l->bulk_into != NULL) {
        nk_resp_add_bulk(l->bulk_into, user, ulen);
    }
    if (l->copy_into != NULL) {
        nk_resp_buf_append(l->copy_into, user, ulen);
    }
}

/* ------------------------------------------------- EXEC overlay --- */

static ov_ent *ov_find(nk_resp_db *db, const uint8_t *key, size_t klen)
{
    /* Linear: a transaction is a handful of keys; newest entry wins. */
    for (size_t i = db->nov; i-- > 0;) {
        ov_ent *e = &db->ov[i];
        if (e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0)) {
            return e;
        }
    }
    return NULL;
}

static bool ov_put(nk_resp_db *db, const nk_kv_write *w)
{
    uint8_t *val = NULL;
    if (!w->del) {
        val = malloc(w->val_len ? w->val_len : 1);
        if (val == NULL) {
            return false;
        }
        if (w->val_len > 0) {
            memcpy(val, w->val, w->val_len);
        }
    }
    ov_ent *e = ov_find(db, w->key, w->key_len);
    if (e == NULL) {
        if (db->nov == db->ovcap) {
            size_t cap = db->ovcap ? db->ovcap * 2 : 16;
            ov_ent *n = realloc(db->ov, cap * sizeof(*n));
            if (n == NULL) {
                free(val);
                return false;
            }
            db->ov = n;
            db->ovcap = cap;
        }
        uint8_t *key = malloc(w->key_len ? w->key_len : 1);
        if (key == NULL) {
            free(val);
            return false;
        }
        if (w->key_len > 0) {
            memcpy(key, w->key, w->key_len);
        }
        e = &db->ov[db->nov++];
        e->key = key;
        e->klen = w->key_len;
    } else {
        free(e->val);
    }
    e->val = val;
    e->vlen = w->del ? 0 : w->val_len;
    e->del = w->del;
    return true;
}

static void ov_clear(nk_resp_db *db)
{
    for (size_t i = 0; i < db->nov; i++) {
        free(db->ov[i].key);
        free(db->ov[i].val);
    }
    db->nov = 0;
    db->ov_oom = false;
}

/* Point read through the overlay while EXEC runs. */
static int db_get(nk_resp_db *db, const uint8_t *key, size_t klen, nk_kv_value_fn fn, void *arg)
{
    if (db->tx) {
        ov_ent *e = ov_find(db, key, klen);
        if (e != NULL) {
            if (e->del) {
                return NK_ENOENT;
            }
            fn(arg, e->val, e->vlen);
            return NK_OK;
        }
    }
    return nk_kv_get(db->be, key, klen, fn, arg);
}

/* Look `key` up; returns NK_OK (state in l->state) or a backend error. */
static int lookup_key(nk_resp_db *db, const nk_resp_arg *key, lookup *l)
{
    l->now = now_ms(db);
    l->state = K_ABSENT;
    l->has_expire = false;
    l->expire_at = 0;
    int rc = db_get(db, key->ptr, key->len, lookup_visit, l);
    if (rc == NK_ENOENT) {
        l->state = K_ABSENT;
        return NK_OK;
    }
    return rc;
}

static uint32_t watch_slot_of(const uint8_t *key, size_t klen)
{
    return (uint32_t)(XXH64(key, klen, 0) % WATCH_SLOTS);
}

/* Every write moves its key's generation, so WATCH sees it (a write to
 * another key of the same slot also aborts a watching EXEC: rare, and a
 * spurious abort is safe - the client retries). */
static void touch_key(nk_resp_db *db, const uint8_t *key, size_t klen)
{
    db->gen[watch_slot_of(key, klen)]++;
}

/* Lazy expiry: remove a key a read found expired. Nothing waits for it. */
static void expire_key(nk_resp_db *db, const uint8_t *key, size_t klen)
{
    if (nk_kv_del(db->be, key, klen, NULL, NULL) == NK_OK) {
        db->stats.expired_keys++;
        touch_key(db, key, klen);
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
    if (db->tx) {
        /* Inside EXEC: collected, submitted as one batch when EXEC ends. */
        for (size_t i = 0; i < n; i++) {
            if (!ov_put(db, &ops[i])) {
                db->ov_oom = true;
                nk_resp_add_error(c->reply, "ERR out of memory");
                return false;
            }
        }
        c->wrote = true;
        return true;
    }
    int rc = nk_kv_write_batch(db->be, ops, n, c->done, c->done_arg);
    if (rc == NK_ETOOBIG && db->be->max_write_bytes != 0) {
        nk_resp_add_errorf(c->reply,
                           "ERR request too large: a value may be at most %llu bytes and one "
                           "write (all keys and values of the command) at most %llu bytes",
                           (unsigned long long)db->be->max_value_bytes,
                           (unsigned long long)db->be->max_write_bytes);
        return false;
    }
    if (rc == NK_EAGAIN) {
        nk_resp_add_error(c->reply, TRYAGAIN_TEXT);
        return false;
    }
    if (rc != NK_OK) {
        nk_resp_add_errorf(c->reply, "ERR write rejected: %s (%s)", nk_strerror(rc),
                           nk_errname(rc));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        touch_key(db, ops[i].key, ops[i].key_len);
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
    if (db->tx) {
        /* Inside EXEC the writes are collected whole: build the enveloped
         * values (the copy the prefixed path avoids outside transactions). */
        nk_resp_buf vals;
        nk_resp_buf_init(&vals);
        size_t *offs = calloc(n + 1, sizeof(*offs));
        nk_kv_write *whole = calloc(n, sizeof(*whole));
        bool ok = offs != NULL && whole != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            offs[i] = vals.len;
            if (!ops[i].del) {
                nk_resp_buf_append(&vals, prefix[i], prefix_len[i]);
                nk_resp_buf_append(&vals, ops[i].val, ops[i].val_len);
            }
        }
        ok = ok && !vals.oom;
        if (ok) {
            offs[n] = vals.len;
            for (size_t i = 0; i < n; i++) {
                whole[i] = ops[i];
                if (!ops[i].del) {
                    whole[i].val = vals.data + offs[i];
                    whole[i].val_len = offs[i + 1] - offs[i];
                }
            }
            ok = submit(db, c, whole, n);
        } else {
            nk_resp_add_error(c->reply, "ERR out of memory");
        }
        free(offs);
        free(whole);
        nk_resp_buf_free(&vals);
        return ok;
    }
    int rc = db->be->write_prefixed(db->be->impl, ops, prefix, prefix_len, n, c->done, c->done_arg);
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
    for (size_t i = 0; i < n; i++) {
        touch_key(db, ops[i].key, ops[i].key_len);
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

static void set_core(nk_resp_db *db, nk_resp_call *c, unsigned flags, const nk_resp_arg *expire_arg,
                     const char *name, bool int_reply);

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
    set_core(db, c, flags, expire_arg, "set", false);
}

/* SET and its relatives. key = argv[1], value = the argument after the key
 * (argv[2], or argv[3] for SETEX/PSETEX). int_reply: SETNX's :1 / :0. */
static void set_core(nk_resp_db *db, nk_resp_call *c, unsigned flags, const nk_resp_arg *expire_arg,
                     const char *name, bool int_reply)
{
    const nk_resp_arg *value = expire_arg == &c->argv[2] ? &c->argv[3] : &c->argv[2];
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
            nk_resp_add_errorf(c->reply, "ERR invalid expire time in '%s' command", name);
            return;
        }
        has_expire = true;
        expire_at = (uint64_t)ms;
    }
    nk_resp_buf_reset(&db->tmp);
    lookup l = {.copy_into = (flags & SET_GET) ? &db->tmp : NULL, .state = K_ABSENT};
    /* Only NX/XX/GET/KEEPTTL and an expiry already past look at the old
     * value; a plain SET (or SET EX/PX in the future) writes blind. */
    bool need_old = (flags & (SET_GET | SET_KEEPTTL | SET_NX | SET_XX)) != 0 ||
                    (has_expire && now > expire_at);
    int rc = need_old ? lookup_key(db, &c->argv[1], &l) : NK_OK;
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
        if (int_reply) {
            nk_resp_add_int(c->reply, 0);
        } else if ((flags & SET_GET) && live) {
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
        w.val = value->ptr;
        w.val_len = value->len;
    } else {
        size_t off = encode_into(&db->tmp, has_expire, expire_at, value->ptr, value->len);
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
    if (int_reply) {
        nk_resp_add_int(c->reply, 1);
    } else if (!(flags & SET_GET)) {
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

/* ------------------------------------------------ more strings --- */

/* Store `v` under `key` with the given expiry (one write). The value is
 * encoded into a buffer of its own: v may point into db->tmp. */
static bool put_user(nk_resp_db *db, nk_resp_call *c, const nk_resp_arg *key, bool has_expire,
                     uint64_t expire_at, const uint8_t *v, size_t vlen)
{
    nk_resp_buf b;
    nk_resp_buf_init(&b);
    encode_into(&b, has_expire, expire_at, v, vlen);
    bool ok = false;
    if (b.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
    } else {
        nk_kv_write w = {key->ptr, key->len, b.data, b.len, false};
        ok = submit(db, c, &w, 1);
    }
    nk_resp_buf_free(&b);
    return ok;
}

static bool del_key(nk_resp_db *db, nk_resp_call *c, const nk_resp_arg *key)
{
    nk_kv_write w = {key->ptr, key->len, NULL, 0, true};
    return submit(db, c, &w, 1);
}

/* Read `key` for a command: the user value is copied into db->tmp. Returns
 * false with the error reply appended (backend error, corrupt envelope).
 * An expired key is removed and reads as absent. */
static bool read_value(nk_resp_db *db, nk_resp_call *c, const nk_resp_arg *key, lookup *l)
{
    nk_resp_buf_reset(&db->tmp);
    memset(l, 0, sizeof(*l));
    l->copy_into = &db->tmp;
    int rc = lookup_key(db, key, l);
    if (rc != NK_OK) {
        reply_backend_error(c, "read", rc);
        return false;
    }
    if (l->state == K_CORRUPT) {
        reply_corrupt(c);
        return false;
    }
    if (db->tmp.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
        return false;
    }
    if (l->state == K_EXPIRED) {
        expire_key(db, key->ptr, key->len);
        l->state = K_ABSENT;
    }
    return true;
}

static void reply_too_long(nk_resp_call *c)
{
    nk_resp_add_error(c->reply, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

static void cmd_setnx(nk_resp_db *db, nk_resp_call *c)
{
    set_core(db, c, SET_NX, NULL, "setnx", true);
}

static void cmd_setex(nk_resp_db *db, nk_resp_call *c)
{
    set_core(db, c, SET_EX, &c->argv[2], "setex", false);
}

static void cmd_psetex(nk_resp_db *db, nk_resp_call *c)
{
    set_core(db, c, SET_PX, &c->argv[2], "psetex", false);
}

static void cmd_getset(nk_resp_db *db, nk_resp_call *c)
{
    set_core(db, c, SET_GET, NULL, "getset", false);
}

static void cmd_getdel(nk_resp_db *db, nk_resp_call *c)
{
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    if (l.state != K_LIVE) {
        db->stats.keyspace_misses++;
        nk_resp_add_null(c->reply);
        return;
    }
    db->stats.keyspace_hits++;
    if (del_key(db, c, &c->argv[1])) {
        nk_resp_add_bulk(c->reply, db->tmp.data, db->tmp.len);
    }
}

/* An expire argument of GETEX (Redis getExpireMillisecondsOrReply). */
static bool expire_arg_ms(nk_resp_call *c, const nk_resp_arg *a, bool seconds, bool relative,
                          uint64_t now, const char *name, uint64_t *at)
{
    int64_t v;
    if (!arg_i64(a, &v)) {
        reply_not_int(c);
        return false;
    }
    bool bad = v <= 0 || (seconds && v > INT64_MAX / 1000);
    if (!bad && seconds) {
        v *= 1000;
    }
    if (!bad && relative) {
        bad = (uint64_t)v > (uint64_t)INT64_MAX - now;
        v = bad ? 0 : v + (int64_t)now;
    }
    if (bad) {
        nk_resp_add_errorf(c->reply, "ERR invalid expire time in '%s' command", name);
        return false;
    }
    *at = (uint64_t)v;
    return true;
}

static void cmd_getex(nk_resp_db *db, nk_resp_call *c)
{
    unsigned flags = 0;
    bool persist = false;
    const nk_resp_arg *ex = NULL;
    for (size_t i = 2; i < c->argc; i++) {
        const nk_resp_arg *a = &c->argv[i];
        bool has_next = i + 1 < c->argc;
        bool any = persist || (flags & (SET_EX | SET_PX | SET_EXAT | SET_PXAT));
        if (has_next && !any &&
            (arg_is(a, "ex") || arg_is(a, "px") || arg_is(a, "exat") || arg_is(a, "pxat"))) {
            flags |= arg_is(a, "ex")     ? SET_EX
                     : arg_is(a, "px")   ? SET_PX
                     : arg_is(a, "exat") ? SET_EXAT
                                         : SET_PXAT;
            ex = &c->argv[++i];
        } else if (arg_is(a, "persist") && !any) {
            persist = true;
        } else {
            reply_syntax(c);
            return;
        }
    }
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    if (l.state != K_LIVE) {
        db->stats.keyspace_misses++;
        nk_resp_add_null(c->reply);
        return;
    }
    db->stats.keyspace_hits++;
    bool ok = true;
    if (ex != NULL) {
        uint64_t at;
        if (!expire_arg_ms(c, ex, (flags & (SET_EX | SET_EXAT)) != 0,
                           (flags & (SET_EX | SET_PX)) != 0, l.now, "getex", &at)) {
            return;
        }
        if ((flags & (SET_EXAT | SET_PXAT)) && at <= l.now) {
            ok = del_key(db, c, &c->argv[1]); /* a deadline already passed */
        } else {
            ok = put_user(db, c, &c->argv[1], true, at, db->tmp.data, db->tmp.len);
        }
    } else if (persist && l.has_expire) {
        ok = put_user(db, c, &c->argv[1], false, 0, db->tmp.data, db->tmp.len);
    }
    if (ok) {
        nk_resp_add_bulk(c->reply, db->tmp.data, db->tmp.len);
    }
}

static void cmd_append(nk_resp_db *db, nk_resp_call *c)
{
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    const nk_resp_arg *add = &c->argv[2];
    bool live = l.state == K_LIVE;
    size_t old = live ? db->tmp.len : 0;
    if (old + add->len > MAX_STRING) {
        reply_too_long(c);
        return;
    }
    nk_resp_buf_reset(&db->tmp2);
    nk_resp_buf_append(&db->tmp2, db->tmp.data, old);
    nk_resp_buf_append(&db->tmp2, add->ptr, add->len);
    if (db->tmp2.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    /* APPEND modifies the string in place in Redis: the TTL stays. */
    if (put_user(db, c, &c->argv[1], live && l.has_expire, l.expire_at, db->tmp2.data,
                 db->tmp2.len)) {
        nk_resp_add_int(c->reply, (int64_t)db->tmp2.len);
    }
}

static void cmd_strlen(nk_resp_db *db, nk_resp_call *c)
{
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    nk_resp_add_int(c->reply, l.state == K_LIVE ? (int64_t)l.ulen : 0);
}

static void cmd_getrange(nk_resp_db *db, nk_resp_call *c)
{
    int64_t start, end;
    if (!arg_i64(&c->argv[2], &start) || !arg_i64(&c->argv[3], &end)) {
        reply_not_int(c);
        return;
    }
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    int64_t len = l.state == K_LIVE ? (int64_t)db->tmp.len : 0;
    /* Redis' index rules, including its quirks (GETRANGE k 0 -100 of a
     * short string returns the first byte). */
    if (start < 0 && end < 0 && start > end) {
        nk_resp_add_bulk(c->reply, "", 0);
        return;
    }
    if (start < 0) {
        start = len + start;
    }
    if (end < 0) {
        end = len + end;
    }
    if (start < 0) {
        start = 0;
    }
    if (end < 0) {
        end = 0;
    }
    if (end >= len) {
        end = len - 1;
    }
    if (len == 0 || start > end) {
        nk_resp_add_bulk(c->reply, "", 0);
    } else {
        nk_resp_add_bulk(c->reply, db->tmp.data + start, (size_t)(end - start + 1));
    }
}

static void cmd_setrange(nk_resp_db *db, nk_resp_call *c)
{
    int64_t off;
    if (!arg_i64(&c->argv[2], &off)) {
        reply_not_int(c);
        return;
    }
    if (off < 0) {
        nk_resp_add_error(c->reply, "ERR offset is out of range");
        return;
    }
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    const nk_resp_arg *v = &c->argv[3];
    bool live = l.state == K_LIVE;
    size_t old = live ? db->tmp.len : 0;
    if (v->len == 0) {
        nk_resp_add_int(c->reply, (int64_t)old); /* nothing to write */
        return;
    }
    if ((uint64_t)off + v->len > MAX_STRING) {
        reply_too_long(c);
        return;
    }
    size_t end = (size_t)off + v->len;
    size_t total = end > old ? end : old;
    uint8_t *buf = calloc(1, total);
    if (buf == NULL) {
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    if (old > 0) {
        memcpy(buf, db->tmp.data, old);
    }
    memcpy(buf + off, v->ptr, v->len);
    if (put_user(db, c, &c->argv[1], live && l.has_expire, l.expire_at, buf, total)) {
        nk_resp_add_int(c->reply, (int64_t)total);
    }
    free(buf);
}

/* Redis' string2ld: strtold over the whole string, no leading space, no
 * NaN, no overflow to infinity or underflow to zero. */
static bool parse_ld(const uint8_t *p, size_t n, long double *out)
{
    char buf[5120];
    if (n == 0 || n >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (buf[0] == ' ' || (buf[0] >= '\t' && buf[0] <= '\r')) {
        return false;
    }
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    if (*end != '\0' || isnan(v) ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0.0L))) {
        return false;
    }
    *out = v;
    return true;
}

static void cmd_incrbyfloat(nk_resp_db *db, nk_resp_call *c)
{
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    long double cur = 0, incr;
    bool live = l.state == K_LIVE;
    if ((live && !parse_ld(db->tmp.data, db->tmp.len, &cur)) ||
        !parse_ld(c->argv[2].ptr, c->argv[2].len, &incr)) {
        nk_resp_add_error(c->reply, "ERR value is not a valid float");
        return;
    }
    long double next = cur + incr;
    if (isnan(next) || isinf(next)) {
        nk_resp_add_error(c->reply, "ERR increment would produce NaN or Infinity");
        return;
    }
    /* Redis' LD_STR_HUMAN: 17 decimals, trailing zeros (and '.') cut. */
    char text[5200];
    int n = snprintf(text, sizeof(text), "%.17Lf", next);
    if (n <= 0 || (size_t)n >= sizeof(text)) {
        nk_resp_add_error(c->reply, "ERR value is not a valid float");
        return;
    }
    if (strchr(text, '.') != NULL) {
        while (text[n - 1] == '0') {
            n--;
        }
        if (text[n - 1] == '.') {
            n--;
        }
    }
    if (n == 2 && text[0] == '-' && text[1] == '0') {
        text[0] = '0';
        n = 1;
    }
    if (put_user(db, c, &c->argv[1], live && l.has_expire, l.expire_at, (const uint8_t *)text,
                 (size_t)n)) {
        nk_resp_add_bulk(c->reply, text, (size_t)n);
    }
}

/* ----------------------------------------------------- expiry ops --- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Redis expireGenericCommand). */
static void expire_generic(nk_resp_db *db, nk_resp_call *c, bool seconds, bool absolute,
                           const char *name)
{
    unsigned f = 0;
    for (size_t i = 3; i < c->argc; i++) {
        const nk_resp_arg *a = &c->argv[i];
        if (arg_is(a, "nx")) {
            f |= EXP_NX;
        } else if (arg_is(a, "xx")) {
            f |= EXP_XX;
        } else if (arg_is(a, "gt")) {
            f |= EXP_GT;
        } else if (arg_is(a, "lt")) {
            f |= EXP_LT;
        } else {
            char shown[129];
            size_t n = a->len < 128 ? a->len : 128;
            for (size_t k = 0; k < n; k++) {
                uint8_t ch = a->ptr[k];
                shown[k] = (char)(ch < 0x20 || ch == 0x7f ? '?' : ch);
            }
            shown[n] = '\0';
            nk_resp_add_errorf(c->reply, "ERR Unsupported option %s", shown);
            return;
        }
    }
    if ((f & EXP_NX) && (f & (EXP_XX | EXP_GT | EXP_LT))) {
        nk_resp_add_error(c->reply,
                          "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((f & EXP_GT) && (f & EXP_LT)) {
        nk_resp_add_error(c->reply, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    int64_t when;
    if (!arg_i64(&c->argv[2], &when)) {
        reply_not_int(c);
        return;
    }
    uint64_t now = now_ms(db);
    bool bad = false;
    if (seconds) {
        bad = when > INT64_MAX / 1000 || when < INT64_MIN / 1000;
        when = bad ? 0 : when * 1000;
    }
    if (!bad && !absolute) {
        bad = when > INT64_MAX - (int64_t)now;
        when = bad ? 0 : when + (int64_t)now;
    }
    if (bad) {
        nk_resp_add_errorf(c->reply, "ERR invalid expire time in '%s' command", name);
        return;
    }
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    if (l.state != K_LIVE) {
        nk_resp_add_int(c->reply, 0);
        return;
    }
    /* No TTL counts as an infinite one for GT and LT, as in Redis. */
    int64_t cur = (int64_t)l.expire_at;
    if (((f & EXP_NX) && l.has_expire) || ((f & EXP_XX) && !l.has_expire) ||
        ((f & EXP_GT) && (!l.has_expire || when <= cur)) ||
        ((f & EXP_LT) && l.has_expire && when >= cur)) {
        nk_resp_add_int(c->reply, 0);
        return;
    }
    bool ok = when <= (int64_t)now
                  ? del_key(db, c, &c->argv[1]) /* already due: the key goes at once */
                  : put_user(db, c, &c->argv[1], true, (uint64_t)when, db->tmp.data, db->tmp.len);
    if (ok) {
        nk_resp_add_int(c->reply, 1);
    }
}

static void cmd_expire(nk_resp_db *db, nk_resp_call *c)
{
    expire_generic(db, c, true, false, "expire");
}

static void cmd_pexpire(nk_resp_db *db, nk_resp_call *c)
{
    expire_generic(db, c, false, false, "pexpire");
}

static void cmd_expireat(nk_resp_db *db, nk_resp_call *c)
{
    expire_generic(db, c, true, true, "expireat");
}

static void cmd_pexpireat(nk_resp_db *db, nk_resp_call *c)
{
    expire_generic(db, c, false, true, "pexpireat");
}

static void cmd_persist(nk_resp_db *db, nk_resp_call *c)
{
    lookup l;
    if (!read_value(db, c, &c->argv[1], &l)) {
        return;
    }
    if (l.state != K_LIVE || !l.has_expire) {
        nk_resp_add_int(c->reply, 0);
        return;
    }
    if (put_user(db, c, &c->argv[1], false, 0, db->tmp.data, db->tmp.len)) {
        nk_resp_add_int(c->reply, 1);
    }
}

/* RENAME and RENAMENX: one batch (delete source, write destination), the
 * TTL moves with the value. */
static void rename_generic(nk_resp_db *db, nk_resp_call *c, bool nx)
{
    const nk_resp_arg *src = &c->argv[1], *dst = &c->argv[2];
    lookup l;
    if (!read_value(db, c, src, &l)) {
        return;
    }
    if (l.state != K_LIVE) {
        nk_resp_add_error(c->reply, "ERR no such key");
        return;
    }
    if (src->len == dst->len && memcmp(src->ptr, dst->ptr, src->len) == 0) {
        if (nx) {
            nk_resp_add_int(c->reply, 0);
        } else {
            nk_resp_add_simple(c->reply, "OK");
        }
        return;
    }
    if (nx) {
        lookup d = {0};
        int rc = lookup_key(db, dst, &d);
        if (rc != NK_OK) {
            reply_backend_error(c, "read", rc);
            return;
        }
        if (d.state == K_LIVE || d.state == K_CORRUPT) {
            nk_resp_add_int(c->reply, 0);
            return;
        }
    }
    nk_resp_buf b;
    nk_resp_buf_init(&b);
    encode_into(&b, l.has_expire, l.expire_at, db->tmp.data, db->tmp.len);
    if (b.oom) {
        nk_resp_buf_free(&b);
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    nk_kv_write w[2] = {{src->ptr, src->len, NULL, 0, true},
                        {dst->ptr, dst->len, b.data, b.len, false}};
    if (submit(db, c, w, 2)) {
        if (nx) {
            nk_resp_add_int(c->reply, 1);
        } else {
            nk_resp_add_simple(c->reply, "OK");
        }
    }
    nk_resp_buf_free(&b);
}

static void cmd_rename(nk_resp_db *db, nk_resp_call *c)
{
    rename_generic(db, c, false);
}

static void cmd_renamenx(nk_resp_db *db, nk_resp_call *c)
{
    rename_generic(db, c, true);
}

static void cmd_time(nk_resp_db *db, nk_resp_call *c)
{
    uint64_t us = nk_rt_wall(db->rt) / 1000;
    char sec[24], usec[24];
    snprintf(sec, sizeof(sec), "%" PRIu64, us / 1000000);
    snprintf(usec, sizeof(usec), "%" PRIu64, us % 1000000);
    nk_resp_add_array(c->reply, 2);
    nk_resp_add_bulk_str(c->reply, sec);
    nk_resp_add_bulk_str(c->reply, usec);
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

static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int r = n ? memcmp(a, b, n) : 0;
    if (r != 0) {
        return r;
    }
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static uint32_t key_fp(const uint8_t *key, size_t klen)
{
    return (uint32_t)XXH64(key, klen, SCAN_FP_SEED);
}

/* The cursor for resume key `key` (commands.h has the layout). */
static uint64_t cursor_of(const uint8_t *key, size_t klen)
{
    size_t l = klen < 2 ? klen : 2;
    uint64_t p = 0;
    for (size_t i = 0; i < 2; i++) {
        p = (p << 8) | (i < l ? key[i] : 0);
    }
    return CURSOR_MARK | ((uint64_t)key_fp(key, klen) << 18) | ((uint64_t)l << 16) | p;
}

static bool cursor_valid(uint64_t cur)
{
    if ((cur >> 50) != 1) {
        return false;
    }
    size_t l = (size_t)((cur >> 16) & 3);
    uint64_t p = cur & 0xffff;
    /* P is left-aligned, unused bytes zero: one spelling per position. */
    return l <= 2 && (l == 2 || (p & (0xffffu >> (8 * l))) == 0);
}

/* Remember `key` as the exact resume point of cursor_of(key). When another
 * scan already left the same cursor value for a different key, keep the
 * smaller one: both scans then resume at or before their true position. */
static void cursor_remember(nk_resp_db *db, uint64_t id, const uint8_t *key, size_t klen)
{
    if (klen > db->opt.scan_cursor_bytes) {
        return;
    }
    cursor_ent *old = nk_u64map_get(&db->cursors, id);
    if (old != NULL) {
        if (key_cmp(key, klen, old->key, old->klen) >= 0) {
            return;
        }
        uint8_t *copy = malloc(klen ? klen : 1);
        if (copy == NULL) {
            return;
        }
        if (klen > 0) {
            memcpy(copy, key, klen);
        }
        db->ring_bytes = db->ring_bytes - old->klen + klen;
        free(old->key);
        old->key = copy;
        old->klen = klen;
        return;
    }
    while (db->ring_count > 0 &&
           (db->ring_count == db->ring_cap || db->ring_bytes + klen > db->opt.scan_cursor_bytes)) {
        cursor_evict_oldest(db);
    }
    uint8_t *copy = malloc(klen ? klen : 1);
    if (copy == NULL) {
        return; /* not remembered: the resume takes the slower path */
    }
    if (klen > 0) {
        memcpy(copy, key, klen);
    }
    cursor_ent *e = &db->ring[(db->ring_head + db->ring_count) % db->ring_cap];
    e->id = id;
    e->key = copy;
    e->klen = klen;
    if (nk_u64map_put(&db->cursors, id, e) != NK_OK) {
        free(copy);
        e->key = NULL;
        return;
    }
    db->ring_count++;
    db->ring_bytes += klen;
}

/* Fingerprint search of a forgotten cursor. */
typedef struct seek_ctx {
    uint32_t fp;
    size_t seen;
    nk_resp_buf found;
    bool hit;
} seek_ctx;

static bool seek_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    seek_ctx *k = arg;
    k->seen++;
    if (key_fp(key, klen) == k->fp) {
        nk_resp_buf_append(&k->found, key, klen);
        k->hit = true;
        return false;
    }
    return true;
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
    if (s->want != 0 && s->seen == s->want) {
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

/* Lazily delete the keys a scan found expired. */
static void scan_expire(nk_resp_db *db, const nk_resp_buf *expired)
{
    for (size_t off = 0; off + 8 <= expired->len;) {
        size_t klen = (size_t)nk_get_u64(expired->data + off);
        expire_key(db, expired->data + off + 8, klen);
        off += 8 + klen;
    }
}

/* Where a cursor resumes: the remembered key, else the first key from P
 * whose fingerprint is F, else P. Result in *out (may be empty). */
static int cursor_resume(nk_resp_db *db, uint64_t cur, nk_resp_buf *out)
{
    cursor_ent *e = nk_u64map_get(&db->cursors, cur);
    if (e != NULL) {
        nk_resp_buf_append(out, e->key, e->klen);
        return NK_OK;
    }
    size_t l = (size_t)((cur >> 16) & 3);
    uint8_t p[2] = {(uint8_t)(cur >> 8), (uint8_t)cur};
    seek_ctx k = {.fp = (uint32_t)(cur >> 18)};
    nk_resp_buf_init(&k.found);
    int rc = nk_kv_scan(db->be, p, l, SCAN_SEEK_MAX, seek_visit, &k);
    db->stats.scan_cursor_searches++;
    if (rc == NK_OK) {
        if (k.hit) {
            nk_resp_buf_append(out, k.found.data, k.found.len);
        } else {
            nk_resp_buf_append(out, p, l);
        }
    }
    nk_resp_buf_free(&k.found);
    return rc;
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
    if (cur->len == 0 || (cursor != 0 && !cursor_valid(cursor))) {
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
    nk_resp_buf start;
    nk_resp_buf_init(&start);
    nk_resp_buf_init(&s.keys);
    nk_resp_buf_init(&s.expired);
    nk_resp_buf_init(&s.next);
    int rc = cursor != 0 ? cursor_resume(db, cursor, &start) : NK_OK;
    if (rc == NK_OK && !start.oom) {
        /* An empty resume key (cursor 0, or P of length 0) is the start. */
        rc = nk_kv_scan(db->be, start.data, start.len, s.want + 1, scan_visit, &s);
    }
    if (rc != NK_OK) {
        reply_backend_error(c, "scan", rc);
    } else if (start.oom || s.keys.oom || s.expired.oom || s.next.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
    } else {
        uint64_t next = 0;
        if (s.more) {
            next = cursor_of(s.next.data, s.next.len);
            cursor_remember(db, next, s.next.data, s.next.len);
        }
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu64, next);
        nk_resp_add_array(c->reply, 2);
        nk_resp_add_bulk_str(c->reply, num);
        nk_resp_add_array(c->reply, s.nkeys);
        nk_resp_buf_append(c->reply, s.keys.data, s.keys.len);
        scan_expire(db, &s.expired);
    }
    nk_resp_buf_free(&start);
    nk_resp_buf_free(&s.keys);
    nk_resp_buf_free(&s.expired);
    nk_resp_buf_free(&s.next);
}

/* KEYS pattern: one pass over every key, in key order (O(n), as in Redis). */
static void cmd_keys(nk_resp_db *db, nk_resp_call *c)
{
    scan_ctx s = {.db = db, .now = now_ms(db), .want = 0, .type_ok = true, .match = &c->argv[1]};
    nk_resp_buf_init(&s.keys);
    nk_resp_buf_init(&s.expired);
    nk_resp_buf_init(&s.next);
    if (c->argv[1].len == 1 && c->argv[1].ptr[0] == '*') {
        s.match = NULL;
    }
    int rc = nk_kv_scan(db->be, NULL, 0, 0, scan_visit, &s);
    if (rc != NK_OK) {
        reply_backend_error(c, "scan", rc);
    } else if (s.keys.oom || s.expired.oom) {
        nk_resp_add_error(c->reply, "ERR out of memory");
    } else {
        nk_resp_add_array(c->reply, s.nkeys);
        nk_resp_buf_append(c->reply, s.keys.data, s.keys.len);
        scan_expire(db, &s.expired);
    }
    nk_resp_buf_free(&s.keys);
    nk_resp_buf_free(&s.expired);
    nk_resp_buf_free(&s.next);
}

/* ------------------------------------------------------------ flush --- */

/* One durability completion for many batches: fires the call's done once
 * every batch completed, with the first error. */
typedef struct agg_done {
    nk_kv_done_fn done;
    void *arg;
    size_t pending; /* batches not done + 1 until sealed */
    int status;
} agg_done;

static void agg_fire(void *arg, int status)
{
    agg_done *g = arg;
    if (status != NK_OK && g->status == NK_OK) {
        g->status = status;
    }
    if (--g->pending == 0) {
        if (g->done != NULL) {
            g->done(g->arg, g->status);
        }
        free(g);
    }
}

typedef struct collect_ctx {
    nk_resp_buf keys; /* u64 length + bytes */
    size_t n;
    nk_resp_buf last;
} collect_ctx;

static bool collect_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen)
{
    collect_ctx *k = arg;
    uint8_t len8[8];
    nk_put_u64(len8, klen);
    nk_resp_buf_append(&k->keys, len8, 8);
    nk_resp_buf_append(&k->keys, key, klen);
    k->n++;
    nk_resp_buf_reset(&k->last);
    nk_resp_buf_append(&k->last, key, klen);
    return true;
}

/* FLUSHDB / FLUSHALL [ASYNC|SYNC]: delete every key, FLUSH_CHUNK keys per
 * batch (an engine batch has a size limit), all submitted in this call so
 * no other command sees a partly flushed keyspace; the reply waits for the
 * last batch to be durable. A crash in between can leave a prefix of the
 * keyspace deleted. */
static void cmd_flushdb(nk_resp_db *db, nk_resp_call *c)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !arg_is(&c->argv[1], "async") && !arg_is(&c->argv[1], "sync"))) {
        reply_syntax(c);
        return;
    }
    agg_done *g = calloc(1, sizeof(*g));
    nk_kv_write *ops = calloc(FLUSH_CHUNK, sizeof(*ops));
    if (g == NULL || ops == NULL) {
        free(g);
        free(ops);
        nk_resp_add_error(c->reply, "ERR out of memory");
        return;
    }
    g->done = c->done;
    g->arg = c->done_arg;
    g->pending = 1;
    collect_ctx k;
    nk_resp_buf_init(&k.keys);
    nk_resp_buf_init(&k.last);
    int rc = NK_OK;
    size_t batches = 0;
    for (;;) {
        nk_resp_buf_reset(&k.keys);
        k.n = 0;
        /* Resume at the last key deleted (gone at once: visible on submit)
         * rather than the start, so an LSM iterator does not walk every
         * tombstone of the earlier chunks again. */
        nk_resp_buf from;
        nk_resp_buf_init(&from);
        nk_resp_buf_append(&from, k.last.data, k.last.len);
        rc = from.oom ? NK_ENOMEM
                      : nk_kv_scan(db->be, from.data, from.len, FLUSH_CHUNK, collect_visit, &k);
        nk_resp_buf_free(&from);
        if (rc != NK_OK || k.n == 0) {
            break;
        }
        if (k.keys.oom) {
            rc = NK_ENOMEM;
            break;
        }
        size_t off = 0;
        for (size_t i = 0; i < k.n; i++) {
            size_t klen = (size_t)nk_get_u64(k.keys.data + off);
            ops[i].key = k.keys.data + off + 8;
            ops[i].key_len = klen;
            ops[i].del = true;
            off += 8 + klen;
        }
        g->pending++;
        rc = nk_kv_write_batch(db->be, ops, k.n, agg_fire, g);
        if (rc != NK_OK) {
            g->pending--;
            break;
        }
        batches++;
        db->stats.writes_submitted++;
    }
    nk_resp_buf_free(&k.keys);
    nk_resp_buf_free(&k.last);
    free(ops);
    db->flush_epoch++;
    if (rc != NK_OK) {
        reply_backend_error(c, batches ? "flush (partly done)" : "flush", rc);
    } else {
        nk_resp_add_simple(c->reply, "OK");
    }
    if (batches == 0) {
        free(g);
        return;
    }
    c->wrote = true;
    agg_fire(g, NK_OK); /* seal: done fires once the batches completed */
}

/* ------------------------------------------------------------ sweep --- */

typedef struct sweep_ctx {
    uint64_t now;
    size_t want, seen;
    nk_resp_buf expired; /* u64 length + bytes */
    size_t nexpired;
    nk_resp_buf next;
    bool more;
} sweep_ctx;

static bool sweep_visit(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    sweep_ctx *w = arg;
    if (w->seen == w->want) {
        nk_resp_buf_append(&w->next, key, klen);
        w->more = true;
        return false;
    }
    w->seen++;
    bool has_expire;
    uint64_t at;
    const uint8_t *u;
    size_t ul;
    if (nk_resp_env_decode(val, vlen, &has_expire, &at, &u, &ul) == NK_OK && has_expire &&
        w->now > at) {
        uint8_t len8[8];
        nk_put_u64(len8, klen);
        nk_resp_buf_append(&w->expired, len8, 8);
        nk_resp_buf_append(&w->expired, key, klen);
        w->nexpired++;
    }
    return true;
}

static void sweep_tick(void *arg)
{
    nk_resp_db *db = arg;
    db->sweep_timer = 0;
    sweep_ctx w = {.now = now_ms(db), .want = db->opt.sweep_keys};
    nk_resp_buf_init(&w.expired);
    nk_resp_buf_init(&w.next);
    int rc = nk_kv_scan(db->be, db->sweep_pos.data, db->sweep_pos.len, w.want + 1, sweep_visit, &w);
    uint64_t delay = (uint64_t)db->opt.sweep_interval_ms * NK_NSEC_PER_MSEC;
    if (rc == NK_OK && !w.expired.oom && !w.next.oom) {
        scan_expire(db, &w.expired);
        db->stats.expire_sweeps++;
        nk_resp_buf_reset(&db->sweep_pos);
        if (w.more) {
            nk_resp_buf_append(&db->sweep_pos, w.next.data, w.next.len);
        }
        if (db->sweep_pos.oom) {
            nk_resp_buf_reset(&db->sweep_pos);
        }
        /* Many expired keys in a full step: keep going soon. */
        if (w.more && w.nexpired * 4 >= w.seen) {
            delay = NK_NSEC_PER_MSEC;
        }
    }
    nk_resp_buf_free(&w.expired);
    nk_resp_buf_free(&w.next);
    db->sweep_timer = nk_rt_timer_start(db->rt, delay, sweep_tick, db);
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
        info_line(b, "scan_cursors_remembered:%zu", db->ring_count);
        info_line(b, "scan_cursor_searches:%" PRIu64, st->scan_cursor_searches);
        info_line(b, "expire_sweeps:%" PRIu64, st->expire_sweeps);
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
    if (arg_is(&c->argv[1], "help") && c->argc == 2) {
        const char *lines[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Prints this help.",
        };
        size_t n = sizeof(lines) / sizeof(lines[0]);
        nk_resp_add_array(c->reply, n);
        for (size_t i = 0; i < n; i++) {
            nk_resp_add_simple(c->reply, lines[i]);
        }
        return;
    }
    if (arg_is(&c->argv[1], "set")) {
        nk_resp_add_error(c->reply, "ERR CONFIG SET is not supported: NoKV's configuration is "
                                    "read-only at run time (see nokv serve --help)");
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
    char maxclients[16], bulk[16];
    snprintf(maxclients, sizeof(maxclients), "%u", db->opt.max_clients);
    snprintf(bulk, sizeof(bulk), "%u", MAX_STRING);
    bool durable = strcmp(db->opt.sync_policy, "none") != 0;
    /* Redis' names for the fsync policies. */
    const char *fsync = strcmp(db->opt.sync_policy, "always") == 0  ? "always"
                        : strcmp(db->opt.sync_policy, "group") == 0 ? "everysec"
                                                                    : "no";
    const char *port = strrchr(db->listen_addr, ':');
    char host[64];
    snprintf(host, sizeof(host), "%.*s",
             port ? (int)(port - db->listen_addr) : (int)strlen(db->listen_addr), db->listen_addr);
    /* A read-only view for tools and client libraries: redis-benchmark asks
     * for save and appendonly at start-up and aborts when CONFIG GET fails;
     * job queues and caches read maxmemory(-policy), databases, timeout. */
    const char *items[][2] = {
        {"appendfsync", fsync},
        {"appendonly", durable ? "yes" : "no"},
        {"bind", host},
        {"cluster-enabled", "no"},
        {"databases", "1"},
        {"hz", "10"},
        {"maxclients", maxclients},
        {"maxmemory", "0"},
        {"maxmemory-policy", "noeviction"},
        {"notify-keyspace-events", ""},
        {"port", port ? port + 1 : "0"},
        {"proto-max-bulk-len", bulk},
        {"save", ""},
        {"timeout", "0"},
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

/* ------------------------------------------------- connection state --- */

static nk_resp_session *sess_of(nk_resp_db *db, nk_resp_call *c)
{
    return c->sess != NULL ? c->sess : db->own;
}

/* Redis' rule for client names and library attributes: printable ASCII
 * without spaces, so CLIENT LIST stays parseable. */
static bool name_ok(const nk_resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '!' || a->ptr[i] > '~') {
            return false;
        }
    }
    return true;
}

static void copy_name(char *dst, size_t room, const nk_resp_arg *a)
{
    size_t n = a->len < room - 1 ? a->len : room - 1;
    if (n > 0) {
        memcpy(dst, a->ptr, n);
    }
    dst[n] = '\0';
}

static bool set_client_name(nk_resp_call *c, nk_resp_session *se, const nk_resp_arg *name)
{
    if (!name_ok(name)) {
        nk_resp_add_error(
            c->reply, "ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    copy_name(se->name, sizeof(se->name), name);
    return true;
}

/* AUTH without a configured password: Redis' default user has nopass, so
 * it accepts any password; other users do not exist. */
static bool auth_user(nk_resp_call *c, const nk_resp_arg *user)
{
    if (!arg_is(user, "default")) {
        nk_resp_add_error(c->reply,
                          "WRONGPASS invalid username-password pair or user is disabled.");
        return false;
    }
    return true;
}

static void cmd_auth(nk_resp_db *db, nk_resp_call *c)
{
    if (c->argc > 3) {
        reply_syntax(c);
    } else if (c->argc == 2) {
        nk_resp_add_error(c->reply,
                          "ERR AUTH <password> called without any password configured for the "
                          "default user. Are you sure your configuration is correct?");
    } else if (auth_user(c, &c->argv[1])) {
        nk_resp_add_simple(c->reply, "OK");
    }
}

static void cmd_hello(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    size_t i = 1;
    if (c->argc >= 2) {
        int64_t ver;
        if (!arg_i64(&c->argv[1], &ver)) {
            nk_resp_add_error(c->reply, "ERR Protocol version is not an integer or out of range");
            return;
        }
        /* RESP2 only: clients that ask for 3 first fall back on this error. */
        if (ver != 2) {
            nk_resp_add_error(c->reply, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const nk_resp_arg *name = NULL;
    for (; i < c->argc; i++) {
        size_t more = c->argc - 1 - i;
        if (arg_is(&c->argv[i], "auth") && more >= 2) {
            if (!auth_user(c, &c->argv[i + 1])) {
                return;
            }
            i += 2;
        } else if (arg_is(&c->argv[i], "setname") && more >= 1) {
            name = &c->argv[++i];
        } else {
            nk_resp_add_errorf(c->reply, "ERR Syntax error in HELLO option '%.*s'",
                               (int)(c->argv[i].len > 64 ? 64 : c->argv[i].len),
                               (const char *)c->argv[i].ptr);
            return;
        }
    }
    if (name != NULL && !set_client_name(c, se, name)) {
        return;
    }
    /* Redis' HELLO map, flattened as RESP2 does. */
    nk_resp_add_array(c->reply, 14);
    nk_resp_add_bulk_str(c->reply, "server");
    nk_resp_add_bulk_str(c->reply, "redis");
    nk_resp_add_bulk_str(c->reply, "version");
    nk_resp_add_bulk_str(c->reply, COMPAT_REDIS_VERSION);
    nk_resp_add_bulk_str(c->reply, "proto");
    nk_resp_add_int(c->reply, 2);
    nk_resp_add_bulk_str(c->reply, "id");
    nk_resp_add_int(c->reply, (int64_t)se->id);
    nk_resp_add_bulk_str(c->reply, "mode");
    nk_resp_add_bulk_str(c->reply, "standalone");
    nk_resp_add_bulk_str(c->reply, "role");
    nk_resp_add_bulk_str(c->reply, "master");
    nk_resp_add_bulk_str(c->reply, "modules");
    nk_resp_add_array(c->reply, 0);
}

static void client_line(nk_resp_db *db, nk_resp_buf *b, const nk_resp_session *se)
{
    uint64_t age = (nk_rt_now(db->rt) - se->created_ns) / NK_NSEC_PER_SEC;
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "id=%" PRIu64 " addr=%s laddr=%s name=%s age=%" PRIu64
                     " db=0 multi=%d lib-name=%s lib-ver=%s resp=2\n",
                     se->id, se->peer, db->listen_addr, se->name, age,
                     se->in_multi ? (int)se->nq : -1, se->lib_name, se->lib_ver);
    if (n > 0) {
        nk_resp_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

static void cmd_client(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    const nk_resp_arg *sub = &c->argv[1];
    if (arg_is(sub, "id") || arg_is(sub, "getname") || arg_is(sub, "info") || arg_is(sub, "list") ||
        arg_is(sub, "help")) {
        if (c->argc != 2 && !arg_is(sub, "list")) {
            char name[32];
            copy_name(name, sizeof(name), sub);
            for (char *q = name; *q; q++) {
                *q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
            }
            nk_resp_add_errorf(c->reply, "ERR wrong number of arguments for 'client|%s' command",
                               name);
            return;
        }
    }
    if (arg_is(sub, "id") && c->argc == 2) {
        nk_resp_add_int(c->reply, (int64_t)se->id);
    } else if (arg_is(sub, "getname") && c->argc == 2) {
        if (se->name[0] == '\0') {
            nk_resp_add_null(c->reply);
        } else {
            nk_resp_add_bulk_str(c->reply, se->name);
        }
    } else if (arg_is(sub, "setname")) {
        if (c->argc != 3) {
            reply_arity(c, "client|setname");
        } else if (set_client_name(c, se, &c->argv[2])) {
            nk_resp_add_simple(c->reply, "OK");
        }
    } else if (arg_is(sub, "setinfo")) {
        if (c->argc != 4) {
            reply_arity(c, "client|setinfo");
            return;
        }
        const nk_resp_arg *attr = &c->argv[2];
        bool lib_name = arg_is(attr, "lib-name");
        if (!lib_name && !arg_is(attr, "lib-ver")) {
            nk_resp_add_errorf(c->reply, "ERR Unrecognized option '%.*s'",
                               (int)(attr->len > 64 ? 64 : attr->len), (const char *)attr->ptr);
        } else if (!name_ok(&c->argv[3])) {
            nk_resp_add_errorf(c->reply,
                               "ERR %s cannot contain spaces, newlines or special characters.",
                               lib_name ? "lib-name" : "lib-ver");
        } else {
            if (lib_name) {
                copy_name(se->lib_name, sizeof(se->lib_name), &c->argv[3]);
            } else {
                copy_name(se->lib_ver, sizeof(se->lib_ver), &c->argv[3]);
            }
            nk_resp_add_simple(c->reply, "OK");
        }
    } else if (arg_is(sub, "info")) {
        nk_resp_buf_reset(&db->tmp2);
        client_line(db, &db->tmp2, se);
        nk_resp_add_bulk(c->reply, db->tmp2.data, db->tmp2.len);
    } else if (arg_is(sub, "list")) {
        nk_resp_buf_reset(&db->tmp2);
        for (const nk_resp_session *x = db->sess_head; x != NULL; x = x->next) {
            if (x != db->own) {
                client_line(db, &db->tmp2, x);
            }
        }
        nk_resp_add_bulk(c->reply, db->tmp2.data, db->tmp2.len);
    } else if ((arg_is(sub, "no-evict") || arg_is(sub, "no-touch")) && c->argc == 3 &&
               (arg_is(&c->argv[2], "on") || arg_is(&c->argv[2], "off"))) {
        nk_resp_add_simple(c->reply, "OK"); /* no eviction, no LRU here: nothing to change */
    } else if (arg_is(sub, "reply") && c->argc == 3 && arg_is(&c->argv[2], "on")) {
        nk_resp_add_simple(c->reply, "OK"); /* the only mode there is */
    } else if (arg_is(sub, "help")) {
        const char *lines[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST",
            "    Return information about client connections.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client library name or version.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Accepted; NoKV never evicts clients.",
            "NO-TOUCH (ON|OFF)",
            "    Accepted; NoKV keeps no access times.",
            "HELP",
            "    Prints this help.",
        };
        size_t n = sizeof(lines) / sizeof(lines[0]);
        nk_resp_add_array(c->reply, n);
        for (size_t i = 0; i < n; i++) {
            nk_resp_add_simple(c->reply, lines[i]);
        }
    } else {
        nk_resp_add_errorf(c->reply, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                           (int)(sub->len > 64 ? 64 : sub->len), (const char *)sub->ptr);
    }
}

/* ------------------------------------------------------ transactions --- */

static void tx_discard(nk_resp_session *se)
{
    for (size_t i = 0; i < se->nq; i++) {
        free(se->q[i].argv); /* argv and the bytes are one allocation */
    }
    se->nq = 0;
    se->q_bytes = 0;
    se->in_multi = false;
    se->multi_dirty = false;
}

/* Copy a request into the session's queue. */
static bool tx_queue(nk_resp_session *se, const nk_resp_arg *argv, size_t argc)
{
    size_t bytes = argc * sizeof(nk_resp_arg);
    for (size_t i = 0; i < argc; i++) {
        bytes += argv[i].len;
    }
    if (se->q_bytes + bytes > MAX_TX_BYTES) {
        return false;
    }
    if (se->nq == se->qcap) {
        size_t cap = se->qcap ? se->qcap * 2 : 8;
        tx_cmd *n = realloc(se->q, cap * sizeof(*n));
        if (n == NULL) {
            return false;
        }
        se->q = n;
        se->qcap = cap;
    }
    nk_resp_arg *copy = malloc(bytes ? bytes : 1);
    if (copy == NULL) {
        return false;
    }
    uint8_t *data = (uint8_t *)(copy + argc);
    for (size_t i = 0; i < argc; i++) {
        if (argv[i].len > 0) {
            memcpy(data, argv[i].ptr, argv[i].len);
        }
        copy[i].ptr = data;
        copy[i].len = argv[i].len;
        data += argv[i].len;
    }
    se->q[se->nq].argv = copy;
    se->q[se->nq].argc = argc;
    se->nq++;
    se->q_bytes += bytes;
    return true;
}

static void unwatch(nk_resp_session *se)
{
    se->nwatch = 0;
    se->watching = false;
    se->watch_overflow = false;
    se->watch_deadline = 0;
}

static bool watch_changed(nk_resp_db *db, const nk_resp_session *se)
{
    if (!se->watching) {
        return false;
    }
    if (se->watch_overflow || se->watch_epoch != db->flush_epoch ||
        (se->watch_deadline != 0 && now_ms(db) > se->watch_deadline)) {
        return true;
    }
    for (size_t i = 0; i < se->nwatch; i++) {
        if (db->gen[se->watch_slot[i]] != se->watch_gen[i]) {
            return true;
        }
    }
    return false;
}

static void cmd_watch(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    if (se->in_multi) {
        nk_resp_add_error(c->reply, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    if (!se->watching) {
        se->watching = true;
        se->watch_epoch = db->flush_epoch;
    }
    for (size_t i = 1; i < c->argc; i++) {
        lookup l = {0};
        int rc = lookup_key(db, &c->argv[i], &l);
        if (rc != NK_OK) {
            reply_backend_error(c, "read", rc);
            return;
        }
        /* A key that expires before EXEC counts as modified (Redis 7). */
        if (l.state == K_LIVE && l.has_expire &&
            (se->watch_deadline == 0 || l.expire_at < se->watch_deadline)) {
            se->watch_deadline = l.expire_at;
        }
        if (se->nwatch == MAX_WATCHED) {
            se->watch_overflow = true;
            continue;
        }
        uint32_t slot = watch_slot_of(c->argv[i].ptr, c->argv[i].len);
        se->watch_slot[se->nwatch] = slot;
        se->watch_gen[se->nwatch] = db->gen[slot];
        se->nwatch++;
    }
    nk_resp_add_simple(c->reply, "OK");
}

static void cmd_unwatch(nk_resp_db *db, nk_resp_call *c)
{
    unwatch(sess_of(db, c));
    nk_resp_add_simple(c->reply, "OK");
}

static void cmd_multi(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    if (se->in_multi) {
        nk_resp_add_error(c->reply, "ERR MULTI calls can not be nested");
        return;
    }
    se->in_multi = true;
    se->multi_dirty = false;
    nk_resp_add_simple(c->reply, "OK");
}

static void cmd_discard(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    if (!se->in_multi) {
        nk_resp_add_error(c->reply, "ERR DISCARD without MULTI");
        return;
    }
    tx_discard(se);
    unwatch(se);
    nk_resp_add_simple(c->reply, "OK");
}

static void dispatch(nk_resp_db *db, nk_resp_call *c);

static void cmd_exec(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    if (!se->in_multi) {
        nk_resp_add_error(c->reply, "ERR EXEC without MULTI");
        return;
    }
    if (se->multi_dirty) {
        tx_discard(se);
        unwatch(se);
        nk_resp_add_error(c->reply, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    bool changed = watch_changed(db, se);
    unwatch(se);
    if (changed) {
        /* A watched key was written (or expired): the transaction is not
         * run, as in Redis - the reply is a null array. */
        tx_discard(se);
        nk_resp_buf_append(c->reply, "*-1\r\n", 5);
        return;
    }
    size_t before = c->reply->len;
    bool read = false;
    se->in_multi = false;
    db->tx = true;
    nk_resp_add_array(c->reply, se->nq);
    for (size_t i = 0; i < se->nq; i++) {
        nk_resp_call sub = {
            .argv = se->q[i].argv, .argc = se->q[i].argc, .sess = se, .reply = c->reply};
        dispatch(db, &sub);
        read = read || sub.read || sub.wrote;
    }
    db->tx = false;
    tx_discard(se);
    if (db->ov_oom) {
        c->reply->len = before;
        nk_resp_add_error(c->reply, "ERR out of memory: the transaction was not applied");
    } else if (db->nov > 0) {
        nk_kv_write *ops = calloc(db->nov, sizeof(*ops));
        int rc = ops == NULL ? NK_ENOMEM : NK_OK;
        for (size_t i = 0; ops != NULL && i < db->nov; i++) {
            ops[i] = (nk_kv_write){db->ov[i].key, db->ov[i].klen, db->ov[i].val, db->ov[i].vlen,
                                   db->ov[i].del};
        }
        if (rc == NK_OK) {
            /* All writes of the transaction: one atomic batch. */
            rc = nk_kv_write_batch(db->be, ops, db->nov, c->done, c->done_arg);
        }
        for (size_t i = 0; rc == NK_OK && i < db->nov; i++) {
            touch_key(db, db->ov[i].key, db->ov[i].klen);
        }
        free(ops);
        if (rc != NK_OK) {
            c->reply->len = before;
            nk_resp_add_errorf(c->reply,
                               "ERR write rejected: %s (%s); the transaction was not applied",
                               nk_strerror(rc), nk_errname(rc));
        } else {
            c->wrote = true;
            db->stats.writes_submitted++;
        }
    } else {
        c->read = read; /* nothing written: hold the reply for its reads */
    }
    ov_clear(db);
}

static void cmd_command(nk_resp_db *db, nk_resp_call *c);

/* Sorted by name (COMMAND lists them in this order). */
static const cmd_def cmd_table[] = {
    {"append", 3, "write denyoom fast", 1, 1, 1, "string", "Append a value to a key", "key value",
     cmd_append},
    {"auth", -2, "noscript loading stale fast", 0, 0, 0, "connection",
     "Authenticate (no password is configured: user 'default' only)", "?username password",
     cmd_auth},
    {"client", -2, "admin noscript loading stale", 0, 0, 0, "connection",
     "Connection state: ID GETNAME SETNAME SETINFO INFO LIST", "subcommand ?arg...", cmd_client},
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
    {"discard", 1, "noscript loading stale fast", 0, 0, 0, "transactions",
     "Discard all commands issued after MULTI", "", cmd_discard},
    {"echo", 2, "fast", 0, 0, 0, "connection", "Return the given string", "message", cmd_echo},
    {"exec", 1, "noscript loading stale", 0, 0, 0, "transactions",
     "Execute all commands issued after MULTI (one atomic write batch)", "", cmd_exec},
    {"exists", -2, "readonly fast", 1, -1, 1, "generic", "Count the given keys that exist",
     "key...", cmd_exists},
    {"expire", -3, "write fast", 1, 1, 1, "generic", "Set a key's time to live in seconds",
     "key seconds:integer ?NX ?XX ?GT ?LT", cmd_expire},
    {"expireat", -3, "write fast", 1, 1, 1, "generic",
     "Set the expiration for a key as a UNIX timestamp",
     "key unix-time-seconds:integer ?NX ?XX ?GT ?LT", cmd_expireat},
    {"flushall", -1, "write", 0, 0, 0, "server", "Remove all keys (the only database)",
     "?ASYNC ?SYNC", cmd_flushdb},
    {"flushdb", -1, "write", 0, 0, 0, "server", "Remove all keys from the current database",
     "?ASYNC ?SYNC", cmd_flushdb},
    {"get", 2, "readonly fast", 1, 1, 1, "string", "Get the value of a key", "key", cmd_get},
    {"getdel", 2, "write fast", 1, 1, 1, "string", "Get the value of a key and delete the key",
     "key", cmd_getdel},
    {"getex", -2, "write fast", 1, 1, 1, "string",
     "Get the value of a key and optionally set its expiration",
     "key ?EX:seconds ?PX:milliseconds ?EXAT:unix-time-seconds ?PXAT:unix-time-milliseconds "
     "?PERSIST",
     cmd_getex},
    {"getrange", 4, "readonly", 1, 1, 1, "string", "Get a substring of the string stored at a key",
     "key start:integer end:integer", cmd_getrange},
    {"getset", 3, "write denyoom fast", 1, 1, 1, "string",
     "Set the string value of a key and return its old value", "key value", cmd_getset},
    {"hello", -1, "noscript loading stale fast", 0, 0, 0, "connection",
     "Handshake (RESP2 only: HELLO 3 answers NOPROTO)",
     "?protover:integer ?AUTH:username ?SETNAME:clientname", cmd_hello},
    {"incr", 2, "write denyoom fast", 1, 1, 1, "string", "Increment the integer value of a key",
     "key", cmd_incr},
    {"incrby", 3, "write denyoom fast", 1, 1, 1, "string",
     "Increment the integer value of a key by a number", "key increment:integer", cmd_incrby},
    {"incrbyfloat", 3, "write denyoom fast", 1, 1, 1, "string",
     "Increment the float value of a key by a number", "key increment", cmd_incrbyfloat},
    {"info", -1, "loading stale", 0, 0, 0, "server", "Server information and statistics",
     "?section...", cmd_info},
    {"keys", 2, "readonly", 0, 0, 0, "generic", "Find all keys matching the given pattern",
     "pattern", cmd_keys},
    {"mget", -2, "readonly fast", 1, -1, 1, "string", "Get the values of keys", "key...", cmd_mget},
    {"mset", -3, "write denyoom", 1, -1, 2, "string", "Set keys atomically (one batch)",
     "key value...", cmd_mset},
    {"multi", 1, "noscript loading stale fast", 0, 0, 0, "transactions",
     "Mark the start of a transaction block", "", cmd_multi},
    {"persist", 2, "write fast", 1, 1, 1, "generic", "Remove the expiration from a key", "key",
     cmd_persist},
    {"pexpire", -3, "write fast", 1, 1, 1, "generic", "Set a key's time to live in milliseconds",
     "key milliseconds:integer ?NX ?XX ?GT ?LT", cmd_pexpire},
    {"pexpireat", -3, "write fast", 1, 1, 1, "generic",
     "Set the expiration for a key as a UNIX timestamp in milliseconds",
     "key unix-time-milliseconds:integer ?NX ?XX ?GT ?LT", cmd_pexpireat},
    {"ping", -1, "fast", 0, 0, 0, "connection", "Ping the server", "?message", cmd_ping},
    {"psetex", 4, "write denyoom", 1, 1, 1, "string",
     "Set the value and expiration in milliseconds of a key", "key milliseconds:integer value",
     cmd_psetex},
    {"pttl", 2, "readonly fast", 1, 1, 1, "generic", "Time to live of a key in milliseconds", "key",
     cmd_pttl},
    {"quit", -1, "fast", 0, 0, 0, "connection", "Close the connection", "", cmd_quit},
    {"rename", 3, "write", 1, 2, 1, "generic", "Rename a key (one atomic batch)", "key newkey",
     cmd_rename},
    {"renamenx", 3, "write fast", 1, 2, 1, "generic",
     "Rename a key, only if the new key does not exist", "key newkey", cmd_renamenx},
    {"scan", -2, "readonly", 0, 0, 0, "generic", "Iterate over keys in key order",
     "cursor:integer ?MATCH:pattern ?COUNT:count ?TYPE:type", cmd_scan},
    {"select", 2, "loading stale fast", 0, 0, 0, "connection", "Select database 0 (the only one)",
     "index:integer", cmd_select},
    {"set", -3, "write denyoom", 1, 1, 1, "string", "Set the value of a key",
     "key value ?NX ?XX ?GET ?EX:seconds ?PX:milliseconds ?EXAT:unix-time-seconds "
     "?PXAT:unix-time-milliseconds ?KEEPTTL",
     cmd_set},
    {"setex", 4, "write denyoom", 1, 1, 1, "string", "Set the value and expiration of a key",
     "key seconds:integer value", cmd_setex},
    {"setnx", 3, "write denyoom fast", 1, 1, 1, "string",
     "Set the value of a key, only if the key does not exist", "key value", cmd_setnx},
    {"setrange", 4, "write denyoom", 1, 1, 1, "string",
     "Overwrite part of a string at key starting at the specified offset",
     "key offset:integer value", cmd_setrange},
    {"strlen", 2, "readonly fast", 1, 1, 1, "string", "Get the length of the value stored in a key",
     "key", cmd_strlen},
    {"time", 1, "loading stale fast", 0, 0, 0, "server", "Return the current server time", "",
     cmd_time},
    {"ttl", 2, "readonly fast", 1, 1, 1, "generic", "Time to live of a key in seconds", "key",
     cmd_ttl},
    {"type", 2, "readonly fast", 1, 1, 1, "generic", "Type of the value stored at a key", "key",
     cmd_type},
    {"unlink", -2, "write fast", 1, -1, 1, "generic", "Delete keys (one atomic batch)", "key...",
     cmd_del},
    {"unwatch", 1, "noscript loading stale fast", 0, 0, 0, "transactions",
     "Forget all watched keys", "", cmd_unwatch},
    {"watch", -2, "noscript loading stale fast", 1, -1, 1, "transactions",
     "Watch keys to make the next EXEC conditional", "key...", cmd_watch},
};

#define NCMDS (sizeof(cmd_table) / sizeof(cmd_table[0]))
_Static_assert(NCMDS <= MAX_COMMANDS, "raise MAX_COMMANDS");

bool nk_resp_db_command_stats(const nk_resp_db *db, size_t i, const char **name, uint64_t *calls,
                              uint64_t *errors)
{
    if (i >= NCMDS) {
        return false;
    }
    *name = cmd_table[i].name;
    *calls = db->cmd_calls[i];
    *errors = db->cmd_errors[i];
    return true;
}

_Static_assert(MAX_COMMANDS < 255, "cmd_hash holds index + 1 in a byte");

/* FNV-1a of the lower-cased name. */
static uint32_t cmd_name_hash(const uint8_t *lower, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ lower[i]) * 16777619u;
    }
    return h;
}

static void cmd_hash_build(nk_resp_db *db)
{
    for (size_t i = 0; i < NCMDS; i++) {
        size_t n = strlen(cmd_table[i].name);
        db->cmd_len[i] = (uint8_t)n;
        uint32_t h = cmd_name_hash((const uint8_t *)cmd_table[i].name, n);
        size_t j = h & (CMD_HASH_SLOTS - 1);
        while (db->cmd_hash[j] != 0) {
            j = (j + 1) & (CMD_HASH_SLOTS - 1);
        }
        db->cmd_hash[j] = (uint8_t)(i + 1);
    }
}

static const cmd_def *find_cmd(const nk_resp_db *db, const nk_resp_arg *name)
{
    if (name->len == 0 || name->len > CMD_NAME_MAX) {
        return NULL;
    }
    uint8_t lower[CMD_NAME_MAX];
    for (size_t i = 0; i < name->len; i++) {
        uint8_t ch = name->ptr[i];
        lower[i] = ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch - 'A' + 'a') : ch;
    }
    uint32_t h = cmd_name_hash(lower, name->len);
    for (size_t j = h & (CMD_HASH_SLOTS - 1);; j = (j + 1) & (CMD_HASH_SLOTS - 1)) {
        unsigned k = db->cmd_hash[j];
        if (k == 0) {
            return NULL;
        }
        const cmd_def *d = &cmd_table[k - 1];
        if (db->cmd_len[k - 1] == name->len && memcmp(d->name, lower, name->len) == 0) {
            return d;
        }
    }
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
            const cmd_def *d = find_cmd(db, &c->argv[i]);
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
            found += find_cmd(db, &c->argv[i]) != NULL;
        }
        nk_resp_add_array(b, found * 2);
        for (size_t i = 2; i < c->argc; i++) {
            const cmd_def *d = find_cmd(db, &c->argv[i]);
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

/* How a command behaves after MULTI. */
enum { TX_QUEUE = 0, TX_NOW, TX_DENY };

static int tx_mode(const cmd_def *d)
{
    if (d->fn == cmd_multi || d->fn == cmd_exec || d->fn == cmd_discard || d->fn == cmd_quit ||
        d->fn == cmd_watch) {
        return TX_NOW;
    }
    /* These read the backend around the EXEC overlay (commands.h). */
    if (d->fn == cmd_scan || d->fn == cmd_keys || d->fn == cmd_dbsize || d->fn == cmd_flushdb) {
        return TX_DENY;
    }
    return TX_QUEUE;
}

static bool arity_ok(const cmd_def *d, size_t argc)
{
    return (d->arity > 0 && argc == (size_t)d->arity) ||
           (d->arity < 0 && argc >= (size_t)-d->arity);
}

/* Run one command (also each queued command of EXEC). */
static void dispatch(nk_resp_db *db, nk_resp_call *c)
{
    size_t before = c->reply->len;
    c->wrote = false;
    c->read = false;
    c->quit = false;
    db->stats.commands_processed++;
    const cmd_def *d = find_cmd(db, &c->argv[0]);
    if (d == NULL) {
        reply_unknown(c);
    } else if (!arity_ok(d, c->argc)) {
        reply_arity(c, d->name);
    } else {
        d->fn(db, c);
        /* Key commands read (a SET NX that did not write read too), and so
         * do the keyspace walks; EXEC sets it from its queue. */
        if (d->first_key != 0 || d->fn == cmd_scan || d->fn == cmd_keys || d->fn == cmd_dbsize) {
            c->read = true;
        }
        if (c->wrote) {
            c->read = false; /* the write's done covers what it read */
        }
    }
    bool error = c->reply->len > before && c->reply->data[before] == '-';
    if (error) {
        db->stats.error_replies++;
    }
    if (d != NULL) {
        size_t i = (size_t)(d - cmd_table);
        db->cmd_calls[i]++;
        db->cmd_errors[i] += error;
    }
}

void nk_resp_db_exec(nk_resp_db *db, nk_resp_call *c)
{
    nk_resp_session *se = sess_of(db, c);
    if (!se->in_multi) {
        dispatch(db, c);
        return;
    }
    const cmd_def *d = find_cmd(db, &c->argv[0]);
    if (d != NULL && tx_mode(d) == TX_NOW) {
        dispatch(db, c);
        return;
    }
    c->wrote = false;
    c->quit = false;
    db->stats.commands_processed++;
    /* Checked now, run at EXEC; a failed check aborts the transaction. */
    if (d == NULL) {
        reply_unknown(c);
    } else if (!arity_ok(d, c->argc)) {
        reply_arity(c, d->name);
    } else if (tx_mode(d) == TX_DENY) {
        nk_resp_add_error(c->reply, "ERR Command not allowed inside a transaction");
    } else if (!tx_queue(se, c->argv, c->argc)) {
        nk_resp_add_error(c->reply, "ERR out of memory (transaction queue)");
    } else {
        nk_resp_add_simple(c->reply, "QUEUED");
        return;
    }
    se->multi_dirty = true;
    db->stats.error_replies++;
}

/* ------------------------------------------------------------ sessions --- */

int nk_resp_session_new(nk_resp_db *db, const char *peer, nk_resp_session **out)
{
    nk_resp_session *se = calloc(1, sizeof(*se));
    if (se == NULL) {
        return NK_ENOMEM;
    }
    se->db = db;
    se->id = ++db->next_client_id;
    se->created_ns = nk_rt_now(db->rt);
    snprintf(se->peer, sizeof(se->peer), "%s", peer ? peer : "-");
    se->prev = db->sess_tail;
    if (db->sess_tail != NULL) {
        db->sess_tail->next = se;
    } else {
        db->sess_head = se;
    }
    db->sess_tail = se;
    *out = se;
    return NK_OK;
}

void nk_resp_session_free(nk_resp_session *se)
{
    if (se == NULL) {
        return;
    }
    nk_resp_db *db = se->db;
    if (se->prev != NULL) {
        se->prev->next = se->next;
    } else {
        db->sess_head = se->next;
    }
    if (se->next != NULL) {
        se->next->prev = se->prev;
    } else {
        db->sess_tail = se->prev;
    }
    tx_discard(se);
    free(se->q);
    free(se);
}

uint64_t nk_resp_session_id(const nk_resp_session *se)
{
    return se->id;
}

bool nk_resp_session_busy(const nk_resp_session *se)
{
    return se->in_multi || se->nwatch > 0;
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
    cmd_hash_build(db);
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
    for (int i = 0; i < 40; i++) {
        db->run_id[i] = "0123456789abcdef"[nk_rand_below(&r, 16)];
    }
    db->run_id[40] = '\0';
    nk_resp_buf_init(&db->tmp);
    nk_resp_buf_init(&db->tmp2);
    nk_resp_buf_init(&db->sweep_pos);
    snprintf(db->listen_addr, sizeof(db->listen_addr), "-");
    if (nk_resp_session_new(db, "internal", &db->own) != NK_OK) {
        nk_resp_db_free(db);
        return NK_ENOMEM;
    }
    if (db->opt.sweep_interval_ms == 0) {
        db->opt.sweep_interval_ms = DEFAULT_SWEEP_MS;
    }
    if (db->opt.sweep_keys == 0) {
        db->opt.sweep_keys = DEFAULT_SWEEP_KEYS;
    }
    db->sweep_timer = nk_rt_timer_start(rt, (uint64_t)db->opt.sweep_interval_ms * NK_NSEC_PER_MSEC,
                                        sweep_tick, db);
    *out = db;
    return NK_OK;
}

void nk_resp_db_free(nk_resp_db *db)
{
    if (db == NULL) {
        return;
    }
    if (db->sweep_timer != 0) {
        nk_rt_timer_cancel(db->rt, db->sweep_timer);
    }
    /* Sessions normally go first (their connections close before the db);
     * whatever is left is released here. */
    while (db->sess_head != NULL) {
        nk_resp_session_free(db->sess_head);
    }
    while (db->ring_count > 0) {
        cursor_evict_oldest(db);
    }
    free(db->ring);
    nk_u64map_free(&db->cursors);
    ov_clear(db);
    free(db->ov);
    nk_resp_buf_free(&db->tmp);
    nk_resp_buf_free(&db->tmp2);
    nk_resp_buf_free(&db->sweep_pos);
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
