/*
 * codec.c - wire encoding of raft messages and log entries.
 *
 * Message frame (all integers little-endian or LEB128 varints):
 *   u16 magic 0x524e ("NR") | u8 version (1) | u8 type | u8 flags | u8 reject
 *   varint from, to, term, log_term, index, commit, hint_index, hint_term, ctx
 *   varint n_entries, then per entry: varint term, varint index, u8 type,
 *       varint len, len bytes
 *   u8 has_snapshot, then if set: varint index, varint term, varint n_members,
 *       per member varint id + u8 role, varint len, len bytes
 *   u64 XXH64 (seed 0) of every byte before it
 * Entry frame: u16 magic 0x454e ("NE") | u8 version | varint term, index |
 *   u8 type | varint len | bytes | u64 XXH64.
 * Decoders check bounds on every read: a short or inconsistent frame is
 * NK_EPROTO, a checksum mismatch NK_ECORRUPT.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/raft/raft_int.h"
#include "nokv/util/coding.h"

#define MSG_MAGIC 0x524e
#define ENTRY_MAGIC 0x454e
#define CODEC_VERSION 1
#define TRAILER 8

/* ------------------------------------------------------------ writer --- */

typedef struct wr {
    uint8_t *p;
    size_t n;
    size_t cap;
    bool overflow;
} wr;

static void w_bytes(wr *w, const void *src, size_t len)
{
    if (w->overflow || w->cap - w->n < len) {
        w->overflow = true;
        return;
    }
    if (len) {
        memcpy(w->p + w->n, src, len);
    }
    w->n += len;
}

static void w_u8(wr *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_var(wr *w, uint64_t v)
{
    uint8_t tmp[NK_VARINT64_MAX];
    size_t k = nk_put_varint64(tmp, v);
    w_bytes(w, tmp, k);
}

static void w_u16(wr *w, uint16_t v)
{
    uint8_t tmp[2];
    nk_put_u16(tmp, v);
    w_bytes(w, tmp, 2);
}

static int w_finish(wr *w, size_t *out_len)
{
    if (w->overflow) {
        return NK_ETOOBIG;
    }
    uint8_t tmp[8];
    nk_put_u64(tmp, XXH64(w->p, w->n, 0));
    w_bytes(w, tmp, 8);
    if (w->overflow) {
        return NK_ETOOBIG;
    }
    *out_len = w->n;
    return NK_OK;
}

/* ------------------------------------------------------------ reader --- */

typedef struct rd {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} rd;

static uint64_t r_var(rd *r)
{
    uint64_t v = 0;
    if (r->bad) {
        return 0;
    }
    size_t k = nk_get_varint64(r->p, r->end, &v);
    if (!k) {
        r->bad = true;
        return 0;
    }
    r->p += k;
    return v;
}

static uint8_t r_u8(rd *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

/* Copy len bytes into a new buffer (NULL for 0). */
static int r_blob(rd *r, uint64_t len, uint8_t **out)
{
    *out = NULL;
    if (r->bad || (uint64_t)(r->end - r->p) < len) {
        r->bad = true;
        return NK_EPROTO;
    }
    if (len) {
        *out = malloc((size_t)len);
        if (!*out) {
            return NK_ENOMEM;
        }
        memcpy(*out, r->p, (size_t)len);
        r->p += len;
    }
    return NK_OK;
}

/* Validate magic, checksum and version; set up a reader over the body. */
static int open_frame(const uint8_t *buf, size_t len, uint16_t magic, rd *r)
{
    if (!buf || len < 3 + TRAILER) {
        return NK_EPROTO;
    }
    if (nk_get_u16(buf) != magic) {
        return NK_EPROTO;
    }
    if (XXH64(buf, len - TRAILER, 0) != nk_get_u64(buf + len - TRAILER)) {
        return NK_ECORRUPT;
    }
    if (buf[2] != CODEC_VERSION) {
        return NK_EPROTO;
    }
    r->p = buf + 3;
    r->end = buf + len - TRAILER;
    r->bad = false;
    return NK_OK;
}

/* ------------------------------------------------------------- entry --- */

static size_t entry_body_size(const nk_raft_entry *e)
{
    return 3 * NK_VARINT64_MAX + 1 + e->len;
}

static void w_entry(wr *w, const nk_raft_entry *e)
{
    w_var(w, e->term);
    w_var(w, e->index);
    w_u8(w, e->type);
    w_var(w, e->len);
    w_bytes(w, e->data, e->len);
}

static int r_entry(rd *r, nk_raft_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->term = r_var(r);
    e->index = r_var(r);
    e->type = r_u8(r);
    uint64_t len = r_var(r);
    if (r->bad || e->type > NK_RAFT_ENTRY_CONF) {
        return NK_EPROTO;
    }
    int rc = r_blob(r, len, &e->data);
    if (rc != NK_OK) {
        return rc;
    }
    e->len = (size_t)len;
    return NK_OK;
}

size_t nk_raft_entry_encoded_size(const nk_raft_entry *e)
{
    return 3 + entry_body_size(e) + TRAILER;
}

int nk_raft_entry_encode(const nk_raft_entry *e, uint8_t *buf, size_t cap, size_t *out_len)
{
    wr w = {buf, 0, cap, false};
    w_u16(&w, ENTRY_MAGIC);
    w_u8(&w, CODEC_VERSION);
    w_entry(&w, e);
    return w_finish(&w, out_len);
}

int nk_raft_entry_decode(const uint8_t *buf, size_t len, nk_raft_entry *e)
{
    memset(e, 0, sizeof(*e));
    rd r;
    int rc = open_frame(buf, len, ENTRY_MAGIC, &r);
    if (rc != NK_OK) {
        return rc;
    }
    rc = r_entry(&r, e);
    if (rc == NK_OK && r.p != r.end) {
        rc = NK_EPROTO;
    }
    if (rc != NK_OK) {
        nk_raft_entry_clear(e);
    }
    return rc;
}

/* ----------------------------------------------------------- message --- */

size_t nk_raft_msg_encoded_size(const nk_raft_msg *m)
{
    size_t n = 6 + 10 * NK_VARINT64_MAX;
    for (size_t k = 0; k < m->n_entries; k++) {
        n += entry_body_size(&m->entries[k]);
    }
    n += 1;
    if (m->has_snapshot) {
        n += 4 * NK_VARINT64_MAX + (size_t)m->snapshot.meta.conf.n * (NK_VARINT64_MAX + 1) +
             m->snapshot.len;
    }
    return n + TRAILER;
}

int nk_raft_msg_encode(const nk_raft_msg *m, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (m->has_snapshot && m->snapshot.meta.conf.n > NK_RAFT_MAX_MEMBERS) {
        return NK_EINVAL;
    }
    wr w = {buf, 0, cap, false};
    w_u16(&w, MSG_MAGIC);
    w_u8(&w, CODEC_VERSION);
    w_u8(&w, m->type);
    w_u8(&w, m->flags);
    w_u8(&w, m->reject ? 1 : 0);
    w_var(&w, m->from);
    w_var(&w, m->to);
    w_var(&w, m->term);
    w_var(&w, m->log_term);
    w_var(&w, m->index);
    w_var(&w, m->commit);
    w_var(&w, m->hint_index);
    w_var(&w, m->hint_term);
    w_var(&w, m->ctx);
    w_var(&w, m->n_entries);
    for (size_t k = 0; k < m->n_entries; k++) {
        w_entry(&w, &m->entries[k]);
    }
    w_u8(&w, m->has_snapshot ? 1 : 0);
    if (m->has_snapshot) {
        const nk_raft_snapshot *s = &m->snapshot;
        w_var(&w, s->meta.index);
        w_var(&w, s->meta.term);
        w_var(&w, s->meta.conf.n);
        for (uint32_t k = 0; k < s->meta.conf.n; k++) {
            w_var(&w, s->meta.conf.m[k].id);
            w_u8(&w, s->meta.conf.m[k].role);
        }
        w_var(&w, s->len);
        w_bytes(&w, s->data, s->len);
    }
    return w_finish(&w, out_len);
}

static int decode_msg(rd *r, nk_raft_msg *m)
{
    m->type = r_u8(r);
    m->flags = r_u8(r);
    uint8_t rej = r_u8(r);
    if (r->bad || m->type == 0 || m->type > NK_RAFT_MSG_TYPE_MAX || rej > 1) {
        return NK_EPROTO;
    }
    m->reject = rej == 1;
    m->from = r_var(r);
    m->to = r_var(r);
    m->term = r_var(r);
    m->log_term = r_var(r);
    m->index = r_var(r);
    m->commit = r_var(r);
    m->hint_index = r_var(r);
    m->hint_term = r_var(r);
    m->ctx = r_var(r);
    uint64_t n = r_var(r);
    /* Each entry takes at least 4 bytes: reject counts the input cannot hold
     * before allocating for them. */
    if (r->bad || n > (uint64_t)(r->end - r->p) / 4) {
        return NK_EPROTO;
    }
    if (n) {
        m->entries = calloc((size_t)n, sizeof(*m->entries));
        if (!m->entries) {
            return NK_ENOMEM;
        }
    }
    for (uint64_t k = 0; k < n; k++) {
        int rc = r_entry(r, &m->entries[k]);
        m->n_entries = (size_t)k + 1;
        if (rc != NK_OK) {
            return rc;
        }
    }
    uint8_t hs = r_u8(r);
    if (r->bad || hs > 1) {
        return NK_EPROTO;
    }
    if (hs) {
        nk_raft_snapshot *s = &m->snapshot;
        m->has_snapshot = true;
        s->meta.index = r_var(r);
        s->meta.term = r_var(r);
        uint64_t cn = r_var(r);
        if (r->bad || cn > NK_RAFT_MAX_MEMBERS) {
            return NK_EPROTO;
        }
        for (uint64_t k = 0; k < cn; k++) {
            s->meta.conf.m[k].id = r_var(r);
            s->meta.conf.m[k].role = r_u8(r);
            if (r->bad) {
                return NK_EPROTO;
            }
            uint8_t role = s->meta.conf.m[k].role;
            if (s->meta.conf.m[k].id == 0 || (role != NK_RAFT_VOTER && role != NK_RAFT_LEARNER) ||
                (k > 0 && s->meta.conf.m[k - 1].id >= s->meta.conf.m[k].id)) {
                return NK_EPROTO;
            }
            s->meta.conf.n = (uint32_t)k + 1;
        }
        uint64_t len = r_var(r);
        int rc = r_blob(r, len, &s->data);
        if (rc != NK_OK) {
            return rc;
        }
        s->len = (size_t)len;
    }
    if (r->bad || r->p != r->end) {
        return NK_EPROTO;
    }
    return NK_OK;
}

int nk_raft_msg_decode(const uint8_t *buf, size_t len, nk_raft_msg *m)
{
    memset(m, 0, sizeof(*m));
    rd r;
    int rc = open_frame(buf, len, MSG_MAGIC, &r);
    if (rc != NK_OK) {
        return rc;
    }
    rc = decode_msg(&r, m);
    if (rc != NK_OK) {
        nk_raft_msg_clear(m);
    }
    return rc;
}
