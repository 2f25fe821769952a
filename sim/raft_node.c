/*
 * raft_node.c - the node app of the `raft` workload: one nk_raft per node,
 * run on nokv/rt.h the way a server runs it.
 *
 *   - time: a periodic timer calls nk_raft_tick (node-local, drifting clock);
 *   - network: one listener per node and one outgoing framed connection per
 *     peer (kind 1 = an nk_raft_msg in the raft codec), reconnected with a
 *     backoff after a close or a refused connect; a message with no usable
 *     connection is dropped (raft retries);
 *   - storage: an append-only log segment of checksummed records plus a
 *     snapshot file, described below; a Ready's writes are made durable by a
 *     sync job before its messages go out (raft.h contract, step 4);
 *   - state machine: a register per key with client-session deduplication,
 *     snapshotted by compaction and shipped with snapshot_produce.
 *
 * On-disk layout (/raft):
 *   log.<seq>   the live segment: records [u32 magic "RLOG"][u8 type][u8 ver]
 *               [u16 0][u32 len][payload][u64 xxh64 of header+payload].
 *               HS    term, vote, commit
 *               SNAP  index, term, conf: the log restarts after a snapshot
 *               ENTRY an entry in the raft entry codec; an index at or below
 *                     the current last one truncates the tail first, so a
 *                     conflicting suffix is replaced without rewriting bytes.
 *               Each Ready appends [HS][ENTRY...] as one write: a hard state
 *               never sits behind entries of a newer term, and recovery
 *               clamps a commit index whose entries were lost with the tail.
 *   snap.<idx>  one record (type SNAPFILE): snapshot meta + state machine.
 *   *.tmp       a rewrite in progress; deleted by recovery.
 * A snapshot (local compaction or one received from the leader) rewrites
 * the log: snap.tmp -> sync -> rename snap.<idx>; then log.<seq+1>.tmp with
 * [HS][SNAP][kept entries] -> sync -> rename -> dir sync; older files go.
 * Recovery uses the highest complete segment, replays records up to the
 * first bad one (re-reading once, as a flipped bit on read is not a torn
 * write), cuts the rest (it was never synced: a sync covers the whole
 * prefix of this append-only file) and loads the snapshot the segment names.
 *
 * The state machine is volatile: after a restart raft re-delivers the
 * committed entries after the snapshot (applied = snapshot index).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "sim/raft_wl.h"

#define REC_MAGIC 0x474f4c52u /* "RLOG" */
#define REC_VER 1
#define REC_HDR 12
#define REC_TRAILER 8
#define REC_MAX_LEN (16u << 20)
enum { REC_HS = 1, REC_SNAP = 2, REC_ENTRY = 3, REC_SNAPFILE = 4 };

#define SM_MAGIC 0x314d5352u /* "RSM1" */
#define MSG_KIND_RAFT 1
#define MAX_PENDING 48
#define CONN_PENDING_LIMIT (4u << 20)
#define PENDING_TTL_NS (3 * NK_NSEC_PER_SEC)

/* The replicated state machine: one register per key; last_seq makes a
 * retried write (same client, same seq) apply at most once. */
typedef struct sm_state {
    uint64_t applied;
    uint64_t chain; /* running hash of every applied entry (checker aid) */
    uint64_t val[NK_SRAFT_MAX_KEYS];
    uint64_t last_seq[NK_SRAFT_MAX_CLIENTS];
} sm_state;

typedef struct peer_out {
    uint64_t conn;        /* 0 when none */
    uint64_t next_try_ns; /* node-local time before which we do not reconnect */
} peer_out;

typedef struct pend_write {
    bool used;
    nk_sraft_req rq;
    uint64_t index;
    uint64_t since;
} pend_write;

typedef struct pend_read {
    bool used;
    bool have_index;
    nk_sraft_req rq;
    uint64_t ctx;
    uint64_t index;
    uint64_t since;
} pend_read;

typedef struct sync_job {
    nk_sraft_node *app; /* NULL once the app is gone */
    nk_rt *rt;
    nk_file *f;
    int rc;
    uint64_t seg;
    uint64_t upto;
    nk_raft_hard_state hs;
} sync_job;

struct nk_sraft_node {
    nk_rt *rt;
    nk_sraft_world *w;
    const nk_sraft_opts *o;
    uint32_t self;
    uint32_t nodes;
    nk_rand rand;
    nk_raft *raft;
    bool failed;

    /* storage: the live segment and a mirror of what it holds */
    nk_file *seg;
    uint64_t seg_seq;
    uint64_t seg_size;
    nk_raft_hard_state hs; /* last hard state written */
    nk_raft_snapshot_meta snap;
    uint8_t *snap_data; /* serialized state machine at snap.index */
    size_t snap_len;
    nk_raft_entry *ents; /* ents[k].index == snap.index + 1 + k */
    size_t n_ents, cap_ents;

    /* Ready pipeline */
    bool rd_busy;
    nk_raft_ready rd;
    sync_job *sync;

    sm_state sm;

    uint64_t listener;
    peer_out out[NK_SRAFT_MAX_NODES + 1];
    uint64_t tick_timer;
    uint64_t kick_timer;

    pend_write pw[MAX_PENDING];
    pend_read pr[MAX_PENDING];
    uint64_t next_ctx;
};

/* ---------------------------------------------------------------- misc --- */

static void fatal(nk_sraft_node *a, const char *what, int rc)
{
    if (a->failed) {
        return;
    }
    a->failed = true;
    if (rc != NK_ECRASHED) {
        /* A failed sync leaves the file in an unknown state: acting on it
         * could break a promise, so the node stops (PostgreSQL's lesson). */
        nk_log(a->rt, NK_LOG_ERROR, "raft: %s: %s; stopping this node", what, nk_errname(rc));
        nk_rt_stop(a->rt);
    }
}

static void violation(nk_sraft_node *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(nk_sraft_node *a, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nk_sraft_world_violation(a->w, a->self, msg);
    a->failed = true;
}

static uint64_t entry_hash(const nk_raft_entry *e)
{
    return XXH64(e->data, e->len, (uint64_t)e->type + 1);
}

static uint64_t chain_next(uint64_t chain, const nk_raft_entry *e)
{
    uint8_t b[32];
    nk_put_u64(b, chain);
    nk_put_u64(b + 8, e->index);
    nk_put_u64(b + 16, e->term);
    nk_put_u64(b + 24, entry_hash(e));
    return XXH64(b, sizeof(b), 0x5241);
}

/* ------------------------------------------------------ state machine --- */

static uint64_t sm_hash(const sm_state *sm)
{
    uint8_t b[8 * (NK_SRAFT_MAX_KEYS + NK_SRAFT_MAX_CLIENTS)];
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++) {
        nk_put_u64(b + 8 * k, sm->val[k]);
    }
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++) {
        nk_put_u64(b + 8 * (NK_SRAFT_MAX_KEYS + c), sm->last_seq[c]);
    }
    return XXH64(b, sizeof(b), 0x534d);
}

#define SM_SIZE (4 + 8 + 8 + 4 + 8 * NK_SRAFT_MAX_KEYS + 4 + 8 * NK_SRAFT_MAX_CLIENTS + 8)

static uint8_t *sm_serialize(const sm_state *sm, size_t *len)
{
    uint8_t *b = malloc(SM_SIZE);
    if (b == NULL) {
        return NULL;
    }
    uint8_t *p = b;
    nk_put_u32(p, SM_MAGIC);
    nk_put_u64(p + 4, sm->applied);
    nk_put_u64(p + 12, sm->chain);
    p += 20;
    nk_put_u32(p, NK_SRAFT_MAX_KEYS);
    p += 4;
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++, p += 8) {
        nk_put_u64(p, sm->val[k]);
    }
    nk_put_u32(p, NK_SRAFT_MAX_CLIENTS);
    p += 4;
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++, p += 8) {
        nk_put_u64(p, sm->last_seq[c]);
    }
    nk_put_u64(p, XXH64(b, (size_t)(p - b), 0));
    *len = SM_SIZE;
    return b;
}

static int sm_deserialize(const uint8_t *b, size_t len, sm_state *sm)
{
    if (len != SM_SIZE || nk_get_u32(b) != SM_MAGIC ||
        nk_get_u64(b + SM_SIZE - 8) != XXH64(b, SM_SIZE - 8, 0) ||
        nk_get_u32(b + 20) != NK_SRAFT_MAX_KEYS) {
        return NK_ECORRUPT;
    }
    memset(sm, 0, sizeof(*sm));
    sm->applied = nk_get_u64(b + 4);
    sm->chain = nk_get_u64(b + 12);
    const uint8_t *p = b + 24;
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++, p += 8) {
        sm->val[k] = nk_get_u64(p);
    }
    if (nk_get_u32(p) != NK_SRAFT_MAX_CLIENTS) {
        return NK_ECORRUPT;
    }
    p += 4;
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++, p += 8) {
        sm->last_seq[c] = nk_get_u64(p);
    }
    return NK_OK;
}

/* Write command: [u8 'W'][u8 client][u8 key][u8 0][u64 seq][u64 value]. */
#define CMD_LEN 20

static void cmd_encode(const nk_sraft_req *rq, uint8_t *b)
{
    b[0] = 'W';
    b[1] = (uint8_t)rq->client;
    b[2] = (uint8_t)rq->key;
    b[3] = 0;
    nk_put_u64(b + 4, rq->seq);
    nk_put_u64(b + 12, rq->value);
}

static bool cmd_decode(const nk_raft_entry *e, uint32_t *client, uint32_t *key, uint64_t *seq,
                       uint64_t *value)
{
    if (e->len != CMD_LEN || e->data[0] != 'W' || e->data[1] >= NK_SRAFT_MAX_CLIENTS ||
        e->data[2] >= NK_SRAFT_MAX_KEYS) {
        return false;
    }
    *client = e->data[1];
    *key = e->data[2];
    *seq = nk_get_u64(e->data + 4);
    *value = nk_get_u64(e->data + 12);
    return true;
}

/* ------------------------------------------------------------ records --- */

static size_t conf_size(const nk_raft_conf *c)
{
    return 4 + 9 * (size_t)c->n;
}

static uint8_t *meta_put(uint8_t *p, const nk_raft_snapshot_meta *m)
{
    nk_put_u64(p, m->index);
    nk_put_u64(p + 8, m->term);
    nk_put_u32(p + 16, m->conf.n);
    p += 20;
    for (uint32_t k = 0; k < m->conf.n; k++, p += 9) {
        nk_put_u64(p, m->conf.m[k].id);
        p[8] = m->conf.m[k].role;
    }
    return p;
}

/* Parse meta at p (len bytes available); returns bytes used or 0. */
static size_t meta_get(const uint8_t *p, size_t len, nk_raft_snapshot_meta *m)
{
    if (len < 20) {
        return 0;
    }
    memset(m, 0, sizeof(*m));
    m->index = nk_get_u64(p);
    m->term = nk_get_u64(p + 8);
    uint32_t n = nk_get_u32(p + 16);
    if (n > NK_RAFT_MAX_MEMBERS || len < 20 + 9 * (size_t)n) {
        return 0;
    }
    m->conf.n = n;
    for (uint32_t k = 0; k < n; k++) {
        m->conf.m[k].id = nk_get_u64(p + 20 + 9 * k);
        m->conf.m[k].role = p[20 + 9 * k + 8];
    }
    return 20 + 9 * (size_t)n;
}

/* A growable byte buffer of records for one write. */
typedef struct recbuf {
    uint8_t *b;
    size_t len, cap;
} recbuf;

static uint8_t *rec_begin(recbuf *rb, uint8_t type, size_t plen)
{
    size_t need = rb->len + REC_HDR + plen + REC_TRAILER;
    if (need > rb->cap) {
        size_t ncap = rb->cap ? rb->cap : 256;
        while (ncap < need) {
            ncap *= 2;
        }
        uint8_t *nb = realloc(rb->b, ncap);
        if (nb == NULL) {
            return NULL;
        }
        rb->b = nb;
        rb->cap = ncap;
    }
    uint8_t *h = rb->b + rb->len;
    nk_put_u32(h, REC_MAGIC);
    h[4] = type;
    h[5] = REC_VER;
    nk_put_u16(h + 6, 0);
    nk_put_u32(h + 8, (uint32_t)plen);
    return h + REC_HDR;
}

static void rec_end(recbuf *rb, size_t plen)
{
    uint8_t *h = rb->b + rb->len;
    nk_put_u64(h + REC_HDR + plen, XXH64(h, REC_HDR + plen, 0));
    rb->len += REC_HDR + plen + REC_TRAILER;
}

static int rec_hs(recbuf *rb, const nk_raft_hard_state *hs)
{
    uint8_t *p = rec_begin(rb, REC_HS, 24);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    nk_put_u64(p, hs->term);
    nk_put_u64(p + 8, hs->vote);
    nk_put_u64(p + 16, hs->commit);
    rec_end(rb, 24);
    return NK_OK;
}

static int rec_snap(recbuf *rb, const nk_raft_snapshot_meta *m)
{
    size_t plen = 16 + conf_size(&m->conf);
    uint8_t *p = rec_begin(rb, REC_SNAP, plen);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    meta_put(p, m);
    rec_end(rb, plen);
    return NK_OK;
}

static int rec_entry(recbuf *rb, const nk_raft_entry *e)
{
    size_t cap = nk_raft_entry_encoded_size(e);
    uint8_t *p = rec_begin(rb, REC_ENTRY, cap);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    size_t n = 0;
    int rc = nk_raft_entry_encode(e, p, cap, &n);
    if (rc != NK_OK) {
        return rc;
    }
    if (n != cap) {
        /* the header holds the exact length: rewrite it */
        nk_put_u32(rb->b + rb->len + 8, (uint32_t)n);
    }
    rec_end(rb, n);
    return NK_OK;
}

/* Read the record at off into *buf: NK_OK with *type and *plen, or
 * NK_ENOENT at a clean end / NK_ECORRUPT for a bad record (torn tail). */
static int rec_read(nk_sraft_node *a, nk_file *f, uint64_t off, uint64_t fsize, uint8_t **buf,
                    size_t *bufcap, uint8_t *type, size_t *plen)
{
    if (off == fsize) {
        return NK_ENOENT;
    }
    if (fsize - off < REC_HDR + REC_TRAILER) {
        return NK_ECORRUPT;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t h[REC_HDR];
        size_t got = 0;
        int rc = nk_rt_file_read_at(a->rt, f, off, h, REC_HDR, &got);
        if (rc != NK_OK) {
            return rc;
        }
        uint32_t len = nk_get_u32(h + 8);
        if (got != REC_HDR || nk_get_u32(h) != REC_MAGIC || h[5] != REC_VER || len > REC_MAX_LEN ||
            fsize - off < REC_HDR + (uint64_t)len + REC_TRAILER) {
            continue; /* maybe a read fault: look once more */
        }
        size_t total = REC_HDR + (size_t)len + REC_TRAILER;
        if (total > *bufcap) {
            uint8_t *nb = realloc(*buf, total);
            if (nb == NULL) {
                return NK_ENOMEM;
            }
            *buf = nb;
            *bufcap = total;
        }
        rc = nk_rt_file_read_at(a->rt, f, off, *buf, total, &got);
        if (rc != NK_OK) {
            return rc;
        }
        if (got != total || nk_get_u64(*buf + REC_HDR + len) != XXH64(*buf, REC_HDR + len, 0) ||
            memcmp(*buf, h, REC_HDR) != 0) {
            continue;
        }
        *type = (*buf)[4];
        *plen = len;
        return NK_OK;
    }
    return NK_ECORRUPT;
}

/* ------------------------------------------------------------- mirror --- */

static uint64_t mirror_last(const nk_sraft_node *a)
{
    return a->snap.index + a->n_ents;
}

static uint64_t mirror_term(const nk_sraft_node *a, uint64_t i)
{
    if (i == a->snap.index) {
        return a->snap.term;
    }
    if (i < a->snap.index || i > mirror_last(a)) {
        return 0;
    }
    return a->ents[i - a->snap.index - 1].term;
}

static void mirror_truncate(nk_sraft_node *a, uint64_t keep_last)
{
    while (a->n_ents > 0 && mirror_last(a) > keep_last) {
        nk_raft_entry_clear(&a->ents[--a->n_ents]);
    }
}

static int mirror_append(nk_sraft_node *a, const nk_raft_entry *e)
{
    if (a->n_ents == a->cap_ents) {
        size_t ncap = a->cap_ents ? a->cap_ents * 2 : 64;
        nk_raft_entry *n = realloc(a->ents, ncap * sizeof(*n));
        if (n == NULL) {
            return NK_ENOMEM;
        }
        a->ents = n;
        a->cap_ents = ncap;
    }
    nk_raft_entry *d = &a->ents[a->n_ents];
    *d = *e;
    d->data = NULL;
    if (e->len) {
        d->data = malloc(e->len);
        if (d->data == NULL) {
            return NK_ENOMEM;
        }
        memcpy(d->data, e->data, e->len);
    }
    a->n_ents++;
    return NK_OK;
}

/* Drop mirror entries at or below index (they are inside the snapshot). */
static void mirror_drop_prefix(nk_sraft_node *a, uint64_t index)
{
    size_t drop = 0;
    while (drop < a->n_ents && a->ents[drop].index <= index) {
        nk_raft_entry_clear(&a->ents[drop]);
        drop++;
    }
    memmove(a->ents, a->ents + drop, (a->n_ents - drop) * sizeof(*a->ents));
    a->n_ents -= drop;
}

/* ------------------------------------------------------------ storage --- */

static void seg_path(char *buf, size_t cap, uint64_t seq, bool tmp)
{
    snprintf(buf, cap, "/raft/log.%08" PRIu64 "%s", seq, tmp ? ".tmp" : "");
}

static void snap_path(char *buf, size_t cap, uint64_t index)
{
    snprintf(buf, cap, "/raft/snap.%016" PRIx64, index);
}

/* Write a whole file durably under `path` via path.tmp + rename. */
static int write_file_durably(nk_sraft_node *a, const char *path, const uint8_t *b, size_t len,
                              const char *fp_name)
{
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(a->rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_rt_file_append(a->rt, f, b, len);
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(a->rt, f);
    }
    nk_rt_file_close(a->rt, f);
    if (rc == NK_OK) {
        rc = nk_failpoint(a->rt, fp_name);
    }
    if (rc == NK_OK) {
        rc = nk_rt_rename(a->rt, tmp, path);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(a->rt, "/raft");
    }
    return rc;
}

/*
 * Replace the log by snapshot `meta` (payload b/len) followed by the mirror
 * entries after meta->index, with hard state hs first. Synchronous and
 * durable when it returns NK_OK; failpoints sit between the steps so a
 * scenario can crash the node halfway.
 */
static int rewrite(nk_sraft_node *a, const nk_raft_snapshot_meta *meta, const uint8_t *payload,
                   size_t plen, const nk_raft_hard_state *hs)
{
    char path[96];
    recbuf rb = {0};
    size_t mlen = 16 + conf_size(&meta->conf);
    uint8_t *p = rec_begin(&rb, REC_SNAPFILE, mlen + 4 + plen);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    p = meta_put(p, meta);
    nk_put_u32(p, (uint32_t)plen);
    memcpy(p + 4, payload, plen);
    rec_end(&rb, mlen + 4 + plen);
    snap_path(path, sizeof(path), meta->index);
    int rc = write_file_durably(a, path, rb.b, rb.len, "raft.snapshot.before_rename");
    if (rc != NK_OK) {
        free(rb.b);
        return rc;
    }
    rc = nk_failpoint(a->rt, "raft.rewrite.after_snapshot");
    if (rc != NK_OK) {
        free(rb.b);
        return rc;
    }
    /* The new segment: [HS][SNAP][entries after the snapshot]. */
    rb.len = 0;
    rc = rec_hs(&rb, hs);
    if (rc == NK_OK) {
        rc = rec_snap(&rb, meta);
    }
    for (size_t k = 0; rc == NK_OK && k < a->n_ents; k++) {
        if (a->ents[k].index > meta->index) {
            rc = rec_entry(&rb, &a->ents[k]);
        }
    }
    uint64_t seq = a->seg_seq + 1;
    if (rc == NK_OK) {
        seg_path(path, sizeof(path), seq, false);
        rc = write_file_durably(a, path, rb.b, rb.len, "raft.segment.before_rename");
    }
    size_t seg_len = rb.len;
    free(rb.b);
    if (rc != NK_OK) {
        return rc;
    }
    nk_file *nf = NULL;
    rc = nk_rt_file_open(a->rt, path, NK_OPEN_WRITE, &nf);
    if (rc != NK_OK) {
        return rc;
    }
    /* Switch over; the old files are garbage now (recovery would ignore
     * them too, so removing them needs no directory sync). */
    nk_rt_file_close(a->rt, a->seg);
    a->seg = nf;
    char old[96];
    seg_path(old, sizeof(old), a->seg_seq, false);
    nk_rt_remove(a->rt, old);
    if (a->snap.index != 0 && a->snap.index != meta->index) {
        snap_path(old, sizeof(old), a->snap.index);
        nk_rt_remove(a->rt, old);
    }
    a->seg_seq = seq;
    a->seg_size = seg_len;
    nk_sraft_world_synced(a->w, a->self, a->seg_seq, a->seg_size, hs);
    return NK_OK;
}

/* Load snap.<index> and check it is the snapshot `meta` names. */
static int load_snapshot(nk_sraft_node *a, const nk_raft_snapshot_meta *meta)
{
    char path[96];
    snap_path(path, sizeof(path), meta->index);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(a->rt, path, NK_OPEN_READ, &f);
    if (rc == NK_ENOENT) {
        violation(a, "durability: n%u's log names snapshot %" PRIu64 " but %s is missing", a->self,
                  meta->index, path);
        return NK_ECORRUPT;
    }
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(a->rt, f, &size);
    uint8_t *buf = NULL;
    size_t cap = 0, plen = 0;
    uint8_t type = 0;
    if (rc == NK_OK) {
        rc = rec_read(a, f, 0, size, &buf, &cap, &type, &plen);
    }
    nk_rt_file_close(a->rt, f);
    if (rc == NK_ECORRUPT || rc == NK_ENOENT || (rc == NK_OK && type != REC_SNAPFILE)) {
        free(buf);
        violation(a, "durability: n%u snapshot file %s is corrupt (it was synced before use)",
                  a->self, path);
        return NK_ECORRUPT;
    }
    if (rc != NK_OK) {
        free(buf);
        return rc;
    }
    nk_raft_snapshot_meta m;
    const uint8_t *p = buf + REC_HDR;
    size_t used = meta_get(p, plen, &m);
    if (used == 0 || m.index != meta->index || m.term != meta->term || plen < used + 4 ||
        plen - used - 4 != nk_get_u32(p + used)) {
        free(buf);
        violation(a, "durability: n%u snapshot file %s does not match its log record", a->self,
                  path);
        return NK_ECORRUPT;
    }
    size_t dlen = plen - used - 4;
    uint8_t *data = malloc(dlen ? dlen : 1);
    if (data == NULL) {
        free(buf);
        return NK_ENOMEM;
    }
    memcpy(data, p + used + 4, dlen);
    free(buf);
    sm_state sm;
    if (sm_deserialize(data, dlen, &sm) != NK_OK || sm.applied != meta->index) {
        free(data);
        violation(a, "n%u snapshot %" PRIu64 " has a malformed state payload", a->self,
                  meta->index);
        return NK_ECORRUPT;
    }
    free(a->snap_data);
    a->snap_data = data;
    a->snap_len = dlen;
    a->sm = sm;
    return NK_OK;
}

static bool parse_seq(const char *name, const char *prefix, uint64_t *seq)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] < '0' || name[n] > '9') {
        return false;
    }
    char *end = NULL;
    unsigned long long v = strtoull(name + n, &end, 10);
    if (*end != '\0') {
        return false;
    }
    *seq = v;
    return true;
}

/* Replay the live segment into hs / snap / mirror; cut a torn tail. */
static int replay(nk_sraft_node *a)
{
    uint64_t size = 0;
    int rc = nk_rt_file_size(a->rt, a->seg, &size);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t off = 0;
    bool have_snap = false;
    for (;;) {
        uint8_t type = 0;
        size_t plen = 0;
        rc = rec_read(a, a->seg, off, size, &buf, &cap, &type, &plen);
        if (rc == NK_ENOENT || rc == NK_ECORRUPT) {
            rc = NK_OK;
            break;
        }
        if (rc != NK_OK) {
            free(buf);
            return rc;
        }
        const uint8_t *p = buf + REC_HDR;
        if (type == REC_HS && plen == 24) {
            a->hs.term = nk_get_u64(p);
            a->hs.vote = nk_get_u64(p + 8);
            a->hs.commit = nk_get_u64(p + 16);
        } else if (type == REC_SNAP) {
            nk_raft_snapshot_meta m;
            if (meta_get(p, plen, &m) == 0) {
                free(buf);
                violation(a, "n%u: malformed snapshot record at offset %" PRIu64, a->self, off);
                return NK_ECORRUPT;
            }
            mirror_truncate(a, 0);
            a->n_ents = 0;
            a->snap = m;
            have_snap = true;
        } else if (type == REC_ENTRY) {
            nk_raft_entry e;
            memset(&e, 0, sizeof(e));
            if (nk_raft_entry_decode(p, plen, &e) != NK_OK) {
                free(buf);
                violation(a, "n%u: undecodable entry record at offset %" PRIu64, a->self, off);
                return NK_ECORRUPT;
            }
            if (e.index <= a->snap.index || e.index > mirror_last(a) + 1) {
                violation(a,
                          "n%u: entry record %" PRIu64 " at offset %" PRIu64
                          " does not fit the log (snapshot %" PRIu64 ", last %" PRIu64 ")",
                          a->self, e.index, off, a->snap.index, mirror_last(a));
                nk_raft_entry_clear(&e);
                free(buf);
                return NK_ECORRUPT;
            }
            mirror_truncate(a, e.index - 1);
            rc = mirror_append(a, &e);
            nk_raft_entry_clear(&e);
            if (rc != NK_OK) {
                free(buf);
                return rc;
            }
        } else {
            free(buf);
            violation(a, "n%u: unknown record type %u at offset %" PRIu64, a->self, type, off);
            return NK_ECORRUPT;
        }
        off += REC_HDR + plen + REC_TRAILER;
    }
    free(buf);
    if (off != size) {
        nk_log(a->rt, NK_LOG_INFO,
               "raft: cutting torn log tail of segment %" PRIu64 " at %" PRIu64 " (size %" PRIu64
               ")",
               a->seg_seq, off, size);
        rc = nk_rt_file_truncate(a->rt, a->seg, off);
        if (rc != NK_OK) {
            return rc;
        }
    }
    /* Always sync: after a process death the page cache still holds writes
     * that were never synced. Acting on them (a vote, an append ack) and then
     * losing them to a power cut would break the promises raft relies on. */
    rc = nk_rt_file_sync(a->rt, a->seg);
    if (rc != NK_OK) {
        return rc;
    }
    a->seg_size = off;
    nk_sraft_world_recovered(a->w, a->self, a->seg_seq, off, &a->hs, a->snap.index, mirror_last(a));
    if (have_snap) {
        rc = load_snapshot(a, &a->snap);
    }
    return rc;
}

static int recover(nk_sraft_node *a)
{
    int rc = nk_rt_dir_create(a->rt, "/raft");
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(a->rt, "/");
    } else if (rc == NK_EEXIST) {
        rc = NK_OK;
    }
    if (rc != NK_OK) {
        return rc;
    }
    nk_names names = {0};
    rc = nk_rt_dir_list(a->rt, "/raft", &names);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t best = 0;
    for (size_t i = 0; i < names.count; i++) {
        uint64_t seq;
        if (parse_seq(names.names[i], "log.", &seq) && seq > best) {
            best = seq;
        }
    }
    char path[96];
    if (best == 0) {
        a->seg_seq = 1;
        seg_path(path, sizeof(path), 1, false);
        rc = nk_rt_file_open(a->rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &a->seg);
        if (rc == NK_OK) {
            /* The name must be durable before any synced append counts. */
            rc = nk_rt_dir_sync(a->rt, "/raft");
        }
        if (rc == NK_OK) {
            nk_sraft_world_recovered(a->w, a->self, 1, 0, &a->hs, 0, 0);
        }
    } else {
        a->seg_seq = best;
        seg_path(path, sizeof(path), best, false);
        rc = nk_rt_file_open(a->rt, path, NK_OPEN_WRITE, &a->seg);
        if (rc == NK_OK) {
            rc = replay(a);
        }
    }
    /* Leftovers: temporaries, older segments, snapshots nobody names. */
    for (size_t i = 0; rc == NK_OK && i < names.count; i++) {
        const char *n = names.names[i];
        uint64_t v;
        bool garbage = strstr(n, ".tmp") != NULL || (parse_seq(n, "log.", &v) && v != a->seg_seq);
        if (strncmp(n, "snap.", 5) == 0 && strstr(n, ".tmp") == NULL) {
            v = strtoull(n + 5, NULL, 16);
            garbage = a->snap.index == 0 || v != a->snap.index;
        }
        if (garbage) {
            snprintf(path, sizeof(path), "/raft/%s", n);
            nk_rt_remove(a->rt, path);
        }
    }
    nk_names_free(&names);
    return rc;
}

/* ------------------------------------------------------------ network --- */

static void out_on_connect(void *ctx, uint64_t conn, int status);
static void out_on_close(void *ctx, uint64_t conn, int reason);
static void in_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len);

/* Outgoing connections share the app as ctx; the peer is found by id. */
static const nk_net_handlers out_handlers = {
    .on_connect = out_on_connect,
    .on_close = out_on_close,
    .on_message = in_on_message,
};

static peer_out *peer_by_conn(nk_sraft_node *a, uint64_t conn)
{
    for (uint32_t p = 1; p <= a->nodes; p++) {
        if (a->out[p].conn == conn) {
            return &a->out[p];
        }
    }
    return NULL;
}

static void backoff(nk_sraft_node *a, peer_out *o)
{
    o->conn = 0;
    o->next_try_ns = nk_rt_now(a->rt) + nk_rand_between(&a->rand, 20, 100) * NK_NSEC_PER_MSEC;
}

static void out_on_connect(void *ctx, uint64_t conn, int status)
{
    nk_sraft_node *a = ctx;
    peer_out *o = peer_by_conn(a, conn);
    if (o != NULL && status != NK_OK) {
        backoff(a, o);
    }
}

static void out_on_close(void *ctx, uint64_t conn, int reason)
{
    nk_sraft_node *a = ctx;
    (void)reason;
    peer_out *o = peer_by_conn(a, conn);
    if (o != NULL) {
        backoff(a, o);
    }
}

static void send_msg(nk_sraft_node *a, const nk_raft_msg *m)
{
    if (m->to == 0 || m->to > a->nodes || m->to == a->self) {
        violation(a, "n%u: raft addressed a message to node %" PRIu64, a->self, m->to);
        return;
    }
    peer_out *o = &a->out[m->to];
    if (o->conn == 0) {
        if (nk_rt_now(a->rt) < o->next_try_ns) {
            return; /* dropped: raft resends what matters */
        }
        char addr[64];
        snprintf(addr, sizeof(addr), "%s:%d",
                 nk_sim_node_name(nk_sraft_world_sim(a->w), (uint32_t)m->to), NK_SRAFT_PORT);
        uint64_t conn = 0;
        if (nk_rt_connect(a->rt, addr, NK_CONN_FRAMED, &out_handlers, a, &conn) != NK_OK) {
            backoff(a, o);
            return;
        }
        o->conn = conn;
    }
    if (nk_rt_conn_pending(a->rt, o->conn) > CONN_PENDING_LIMIT) {
        return; /* backpressure: a stuck peer must not eat our memory */
    }
    size_t cap = nk_raft_msg_encoded_size(m);
    uint8_t *buf = malloc(cap);
    size_t len = 0;
    if (buf == NULL || nk_raft_msg_encode(m, buf, cap, &len) != NK_OK) {
        free(buf);
        return;
    }
    int rc = nk_rt_send(a->rt, o->conn, MSG_KIND_RAFT, buf, len);
    free(buf);
    if (rc != NK_OK && m->type == NK_RAFT_MSG_SNAPSHOT) {
        nk_raft_report_snapshot(a->raft, m->to, false);
    }
}

/* ----------------------------------------------------- client requests --- */

static void reply(nk_sraft_node *a, const nk_sraft_req *rq, int status, uint64_t value)
{
    uint64_t lead = 0;
    if (a->raft != NULL) {
        nk_raft_status st;
        nk_raft_status_get(a->raft, &st);
        lead = st.lead;
    }
    nk_sraft_world_reply(a->w, a->self, rq, status, value, lead);
}

static void serve_reads(nk_sraft_node *a)
{
    for (unsigned k = 0; k < MAX_PENDING; k++) {
        pend_read *p = &a->pr[k];
        if (p->used && p->have_index && a->sm.applied >= p->index) {
            reply(a, &p->rq, NK_SRAFT_OK, a->sm.val[p->rq.key]);
            p->used = false;
        }
    }
}

static void expire_pending(nk_sraft_node *a)
{
    uint64_t now = nk_rt_now(a->rt);
    for (unsigned k = 0; k < MAX_PENDING; k++) {
        if (a->pw[k].used && now - a->pw[k].since > PENDING_TTL_NS) {
            a->pw[k].used = false;
        }
        /* Raft drops read requests when leadership changes: forget them;
         * the client retries on its own timeout. */
        if (a->pr[k].used && now - a->pr[k].since > PENDING_TTL_NS) {
            a->pr[k].used = false;
        }
    }
}

/* --------------------------------------------------------------- apply --- */

static void apply_entry(nk_sraft_node *a, const nk_raft_entry *e)
{
    if (e->index != a->sm.applied + 1) {
        violation(a, "n%u applies index %" PRIu64 " after %" PRIu64, a->self, e->index,
                  a->sm.applied);
        return;
    }
    uint32_t client = 0, key = 0;
    uint64_t seq = 0, value = 0;
    bool is_cmd = false;
    if (e->type == NK_RAFT_ENTRY_NORMAL && e->len > 0) {
        if (!cmd_decode(e, &client, &key, &seq, &value)) {
            violation(a, "n%u: committed entry %" PRIu64 " is not a valid command", a->self,
                      e->index);
            return;
        }
        is_cmd = true;
        if (seq > a->sm.last_seq[client]) {
            a->sm.val[key] = value;
            a->sm.last_seq[client] = seq;
        }
    }
    a->sm.applied = e->index;
    a->sm.chain = chain_next(a->sm.chain, e);
    nk_sraft_world_applied(a->w, a->self, e->index, e->term, entry_hash(e), a->sm.chain,
                           sm_hash(&a->sm));
    for (unsigned k = 0; k < MAX_PENDING; k++) {
        pend_write *p = &a->pw[k];
        if (!p->used) {
            continue;
        }
        if (is_cmd && p->rq.client == client && p->rq.seq == seq) {
            reply(a, &p->rq, NK_SRAFT_OK, 0);
            p->used = false;
        } else if (p->index == e->index) {
            /* Our entry at this index was replaced: this attempt is lost
             * (another attempt of the same request may still apply). */
            reply(a, &p->rq, NK_SRAFT_RETRY, 0);
            p->used = false;
        }
    }
}

/* ------------------------------------------------------- ready pipeline --- */

static void pump(nk_sraft_node *a);

static int snapshot_produce(void *ctx, uint64_t to, const nk_raft_snapshot_meta *meta,
                            uint8_t **data, size_t *len)
{
    nk_sraft_node *a = ctx;
    (void)to;
    if (a->snap_data == NULL || meta->index != a->snap.index || meta->term != a->snap.term) {
        return NK_EAGAIN;
    }
    uint8_t *b = malloc(a->snap_len);
    if (b == NULL) {
        return NK_ENOMEM;
    }
    memcpy(b, a->snap_data, a->snap_len);
    *data = b;
    *len = a->snap_len;
    return NK_OK;
}

/* Step 1: a snapshot from the leader replaces log and state machine. */
static int install_snapshot(nk_sraft_node *a, const nk_raft_snapshot *s,
                            const nk_raft_hard_state *hs)
{
    sm_state sm;
    if (sm_deserialize(s->data, s->len, &sm) != NK_OK || sm.applied != s->meta.index) {
        violation(a, "n%u received a malformed snapshot payload for index %" PRIu64, a->self,
                  s->meta.index);
        return NK_ECORRUPT;
    }
    mirror_truncate(a, 0);
    a->n_ents = 0;
    int rc = rewrite(a, &s->meta, s->data, s->len, hs);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *copy = malloc(s->len);
    if (copy == NULL) {
        return NK_ENOMEM;
    }
    memcpy(copy, s->data, s->len);
    free(a->snap_data);
    a->snap_data = copy;
    a->snap_len = s->len;
    a->snap = s->meta;
    a->hs = *hs;
    a->sm = sm;
    nk_log(a->rt, NK_LOG_INFO, "raft: installed snapshot %" PRIu64 "/%" PRIu64, s->meta.index,
           s->meta.term);
    nk_sraft_world_installed(a->w, a->self, s->meta.index, s->meta.term, sm.chain, sm_hash(&sm));
    return NK_OK;
}

/* Steps 1-3 of the contract: write what the Ready asks. */
static int persist(nk_sraft_node *a, bool *wrote)
{
    nk_raft_ready *rd = &a->rd;
    *wrote = false;
    bool hs_done = false;
    int rc;
    if (rd->has_snapshot) {
        const nk_raft_hard_state *hs = rd->has_hard_state ? &rd->hs : &a->hs;
        rc = install_snapshot(a, &rd->snapshot, hs);
        if (rc != NK_OK) {
            return rc;
        }
        hs_done = true;
    }
    recbuf rb = {0};
    rc = NK_OK;
    if (rd->has_hard_state && !hs_done) {
        rc = rec_hs(&rb, &rd->hs);
    }
    if (rc == NK_OK && rd->n_entries > 0) {
        uint64_t first = rd->entries[0].index;
        if (first <= a->snap.index || first > mirror_last(a) + 1) {
            free(rb.b);
            violation(a,
                      "n%u: Ready entries start at %" PRIu64 " but the log is (%" PRIu64
                      ", %" PRIu64 "]",
                      a->self, first, a->snap.index, mirror_last(a));
            return NK_ECORRUPT;
        }
        mirror_truncate(a, first - 1);
        for (size_t k = 0; rc == NK_OK && k < rd->n_entries; k++) {
            const nk_raft_entry *e = &rd->entries[k];
            nk_sraft_world_persisted(a->w, a->self, e, mirror_term(a, e->index - 1));
            rc = rec_entry(&rb, e);
            if (rc == NK_OK) {
                rc = mirror_append(a, e);
            }
        }
    }
    if (rc == NK_OK && rb.len > 0) {
        rc = nk_rt_file_append(a->rt, a->seg, rb.b, rb.len);
        if (rc == NK_OK) {
            a->seg_size += rb.len;
            *wrote = true;
            if (rd->has_hard_state) {
                a->hs = rd->hs;
            }
        }
    }
    free(rb.b);
    return rc;
}

static void maybe_compact(nk_sraft_node *a)
{
    uint32_t every = a->o->compact_every;
    if (every == 0 || a->failed || a->sm.applied < a->snap.index + every) {
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(a->raft, &st);
    if (st.first_index - 1 > a->sm.applied) {
        return; /* raft took a leader's snapshot; its Ready installs it next */
    }
    size_t len = 0;
    uint8_t *payload = sm_serialize(&a->sm, &len);
    if (payload == NULL) {
        return;
    }
    nk_raft_snapshot_meta meta;
    int rc = nk_raft_compact(a->raft, a->sm.applied, &meta);
    if (rc != NK_OK || meta.index != a->sm.applied) {
        free(payload);
        violation(a, "n%u: compact at %" PRIu64 " failed (%s, meta %" PRIu64 ")", a->self,
                  a->sm.applied, nk_errname(rc), meta.index);
        return;
    }
    if (mirror_term(a, meta.index) != meta.term) {
        free(payload);
        violation(a, "n%u: compacting at %" PRIu64 " (term %" PRIu64 ") beyond its durable log",
                  a->self, meta.index, meta.term);
        return;
    }
    rc = rewrite(a, &meta, payload, len, &a->hs);
    if (rc != NK_OK) {
        free(payload);
        fatal(a, "log rewrite for compaction", rc);
        return;
    }
    mirror_drop_prefix(a, meta.index);
    free(a->snap_data);
    a->snap_data = payload;
    a->snap_len = len;
    a->snap = meta;
}

/* Steps 4-7, once steps 1-3 are durable. */
static void finish_ready(nk_sraft_node *a)
{
    nk_raft_ready *rd = &a->rd;
    for (size_t k = 0; k < rd->n_msgs && !a->failed; k++) {
        send_msg(a, &rd->msgs[k]);
    }
    for (size_t k = 0; k < rd->n_committed && !a->failed; k++) {
        apply_entry(a, &rd->committed[k]);
    }
    for (size_t k = 0; k < rd->n_reads; k++) {
        for (unsigned j = 0; j < MAX_PENDING; j++) {
            pend_read *p = &a->pr[j];
            if (p->used && !p->have_index && p->ctx == rd->reads[k].ctx) {
                p->have_index = true;
                p->index = rd->reads[k].index;
            }
        }
    }
    if (a->failed) {
        return;
    }
    serve_reads(a);
    nk_raft_advance(a->raft, rd);
    a->rd_busy = false;
    maybe_compact(a);
}

static void sync_work(void *arg)
{
    sync_job *j = arg;
    j->rc = nk_failpoint(j->rt, "raft.sync.before");
    if (j->rc == NK_OK) {
        j->rc = nk_rt_file_sync(j->rt, j->f);
    }
}

static void sync_done(void *arg)
{
    sync_job *j = arg;
    nk_sraft_node *a = j->app;
    if (a == NULL) {
        free(j);
        return;
    }
    a->sync = NULL;
    int rc = j->rc;
    if (rc == NK_OK) {
        nk_sraft_world_synced(a->w, a->self, j->seg, j->upto, &j->hs);
    }
    free(j);
    if (rc != NK_OK) {
        fatal(a, "log sync", rc);
        return;
    }
    finish_ready(a);
    pump(a);
    nk_sraft_world_observe(a->w, a->self, a->raft);
}

/* Drain Readys until one needs a sync (then the job continues the loop). */
static void pump(nk_sraft_node *a)
{
    for (int round = 0; round < 64; round++) {
        if (a->failed || a->rd_busy || a->raft == NULL || !nk_raft_has_ready(a->raft)) {
            return;
        }
        int rc = nk_raft_ready_get(a->raft, &a->rd);
        if (rc != NK_OK) {
            fatal(a, "ready_get", rc);
            return;
        }
        a->rd_busy = true;
        bool wrote = false;
        rc = persist(a, &wrote);
        if (rc != NK_OK) {
            fatal(a, "persisting a Ready", rc);
            return;
        }
        if (wrote && a->rd.must_sync) {
            sync_job *j = calloc(1, sizeof(*j));
            if (j == NULL) {
                fatal(a, "sync job", NK_ENOMEM);
                return;
            }
            j->app = a;
            j->rt = a->rt;
            j->f = a->seg;
            j->seg = a->seg_seq;
            j->upto = a->seg_size;
            j->hs = a->hs;
            rc = nk_rt_job_submit(a->rt, "raft.sync", sync_work, sync_done, j);
            if (rc != NK_OK) {
                free(j);
                fatal(a, "submitting the log sync", rc);
                return;
            }
            a->sync = j;
            return;
        }
        finish_ready(a);
    }
}

/* -------------------------------------------------------- net handlers --- */

static void in_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_sraft_node *a = ctx;
    (void)conn;
    if (a->failed || a->raft == NULL) {
        return;
    }
    nk_raft_msg m;
    memset(&m, 0, sizeof(m));
    if (kind != MSG_KIND_RAFT || nk_raft_msg_decode(data, len, &m) != NK_OK) {
        /* The frame layer checksums: a bad message here is a codec bug. */
        violation(a, "n%u received an undecodable raft frame (kind %u, %zu bytes)", a->self, kind,
                  len);
        return;
    }
    if (m.to != a->self) {
        nk_raft_msg_clear(&m);
        violation(a, "n%u received a raft message for node %" PRIu64, a->self, m.to);
        return;
    }
    int rc = nk_raft_step(a->raft, &m);
    nk_raft_msg_clear(&m);
    if (rc != NK_OK) {
        nk_log(a->rt, NK_LOG_WARN, "raft: step failed: %s", nk_errname(rc));
    }
    pump(a);
    nk_sraft_world_observe(a->w, a->self, a->raft);
}

static void in_on_accept(void *ctx, uint64_t listener, uint64_t conn, const char *peer)
{
    (void)ctx;
    (void)listener;
    (void)conn;
    (void)peer;
}

static void in_on_close(void *ctx, uint64_t conn, int reason)
{
    (void)ctx;
    (void)conn;
    (void)reason;
}

static const nk_net_handlers in_handlers = {
    .on_accept = in_on_accept,
    .on_message = in_on_message,
    .on_close = in_on_close,
};

/* ------------------------------------------------------------- timers --- */

static void tick(void *arg)
{
    nk_sraft_node *a = arg;
    a->tick_timer = 0;
    if (a->failed) {
        return;
    }
    nk_raft_tick(a->raft);
    expire_pending(a);
    pump(a);
    nk_sraft_world_observe(a->w, a->self, a->raft);
    if (!a->failed) {
        a->tick_timer = nk_rt_timer_start(a->rt, a->o->tick_ns, tick, a);
    }
}

static void kick(void *arg)
{
    nk_sraft_node *a = arg;
    a->kick_timer = 0;
    if (a->failed) {
        return;
    }
    pump(a);
    nk_sraft_world_observe(a->w, a->self, a->raft);
}

static void schedule_kick(nk_sraft_node *a)
{
    if (a->kick_timer == 0 && !a->failed) {
        a->kick_timer = nk_rt_timer_start(a->rt, 0, kick, a);
    }
}

/* ---------------------------------------------------- world -> node API --- */

void nk_sraft_node_request(nk_sraft_node *a, const nk_sraft_req *rq)
{
    if (a->failed || a->raft == NULL) {
        return; /* a dead server does not answer */
    }
    if (rq->op == NK_SRAFT_OP_WRITE) {
        if (a->sm.last_seq[rq->client] >= rq->seq) {
            /* Applied here already (an earlier attempt): committed. */
            reply(a, rq, NK_SRAFT_OK, 0);
            return;
        }
        unsigned slot = MAX_PENDING;
        for (unsigned k = 0; k < MAX_PENDING; k++) {
            if (!a->pw[k].used) {
                slot = k;
                break;
            }
        }
        uint8_t cmd[CMD_LEN];
        cmd_encode(rq, cmd);
        uint64_t index = 0;
        int rc = slot == MAX_PENDING ? NK_EBUSY
                                     : nk_raft_propose(a->raft, cmd, sizeof(cmd), &index, NULL);
        if (rc == NK_EAGAIN) {
            reply(a, rq, NK_SRAFT_REDIRECT, 0);
            return;
        }
        if (rc != NK_OK) {
            reply(a, rq, NK_SRAFT_RETRY, 0);
            return;
        }
        a->pw[slot] =
            (pend_write){.used = true, .rq = *rq, .index = index, .since = nk_rt_now(a->rt)};
    } else {
        unsigned slot = MAX_PENDING;
        for (unsigned k = 0; k < MAX_PENDING; k++) {
            if (!a->pr[k].used) {
                slot = k;
                break;
            }
        }
        uint64_t ctx = ++a->next_ctx;
        int rc = slot == MAX_PENDING ? NK_EBUSY : nk_raft_read_index(a->raft, ctx);
        if (rc != NK_OK) {
            reply(a, rq, rc == NK_EAGAIN ? NK_SRAFT_REDIRECT : NK_SRAFT_RETRY, 0);
            return;
        }
        a->pr[slot] = (pend_read){.used = true, .rq = *rq, .ctx = ctx, .since = nk_rt_now(a->rt)};
    }
    schedule_kick(a);
}

int nk_sraft_node_conf_change(nk_sraft_node *a, uint8_t cc_type, uint64_t node)
{
    if (a->failed || a->raft == NULL) {
        return NK_ECRASHED;
    }
    int rc = nk_raft_propose_conf_change(a->raft, cc_type, node, NULL);
    schedule_kick(a);
    return rc;
}

int nk_sraft_node_transfer(nk_sraft_node *a, uint64_t target)
{
    if (a->failed || a->raft == NULL) {
        return NK_ECRASHED;
    }
    int rc = nk_raft_transfer_leader(a->raft, target);
    schedule_kick(a);
    return rc;
}

const nk_raft *nk_sraft_node_raft(const nk_sraft_node *a)
{
    return a->failed ? NULL : a->raft;
}

uint64_t nk_sraft_node_applied(const nk_sraft_node *a)
{
    return a->sm.applied;
}

/* ----------------------------------------------------------- lifecycle --- */

static void node_stop(void *state, bool crashed);

static void node_shutdown(void *arg)
{
    nk_sraft_node *a = arg;
    nk_log(a->rt, NK_LOG_INFO, "raft: graceful stop");
    nk_rt_stop(a->rt);
}

static int node_start(nk_rt *rt, void *cfgp, void **state)
{
    nk_sraft_cfg *cfg = cfgp;
    nk_sraft_node *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->w = cfg->w;
    a->o = nk_sraft_world_opts(a->w);
    a->self = cfg->node;
    a->nodes = nk_sraft_world_nodes(a->w);
    nk_rt_rand_stream(rt, "sraft", &a->rand);
    *state = a;
    int rc = recover(a);
    if (rc != NK_OK) {
        goto fail;
    }
    nk_raft_config c;
    nk_raft_config_default(&c, a->self, nk_rt_seed(rt));
    /* A fresh jitter stream per boot: the local clock differs each time. */
    nk_rand_derive(&c.rand, nk_rt_seed(rt), "sraft.raft",
                   ((uint64_t)a->self << 48) ^ nk_rt_now(rt));
    c.election_ticks = a->o->election_ticks;
    c.heartbeat_ticks = a->o->heartbeat_ticks;
    c.max_inflight_msgs = 16;
    /* Small batches make followers acknowledge old-term entries one at a
     * time, the only way the commit rule for earlier terms matters. */
    static const uint64_t batches[] = {1, 1, 1, 4096};
    c.max_batch_bytes = a->o->batch_bytes ? a->o->batch_bytes : batches[nk_rand_below(&a->rand, 4)];
    c.unsafe_commit_prev_term = a->o->bug_commit_prev_term;
    c.snapshot_produce = snapshot_produce;
    c.snapshot_ctx = a;
    rc = nk_raft_new(&c, &a->raft);
    if (rc != NK_OK) {
        goto fail;
    }
    bool empty = a->hs.term == 0 && a->snap.index == 0 && a->n_ents == 0;
    uint32_t founders = a->o->voters + a->o->learners;
    if (empty && a->self <= founders) {
        nk_raft_conf conf;
        memset(&conf, 0, sizeof(conf));
        for (uint32_t i = 1; i <= founders; i++) {
            nk_raft_conf_set(&conf, i, i <= a->o->voters ? NK_RAFT_VOTER : NK_RAFT_LEARNER);
        }
        rc = nk_raft_bootstrap(a->raft, &conf);
    } else if (!empty) {
        nk_raft_hard_state hs = a->hs;
        if (hs.commit > mirror_last(a)) {
            hs.commit = mirror_last(a); /* the entries it covered were never synced */
        }
        if (hs.commit < a->snap.index) {
            hs.commit = a->snap.index;
        }
        rc = nk_raft_restore(a->raft, &hs, a->snap.index ? &a->snap : NULL, a->ents, a->n_ents,
                             a->snap.index);
        if (rc != NK_OK) {
            violation(a,
                      "n%u: nk_raft_restore rejected the recovered state: %s (term %" PRIu64
                      " commit %" PRIu64 " snapshot %" PRIu64 " last %" PRIu64 ")",
                      a->self, nk_errname(rc), hs.term, hs.commit, a->snap.index, mirror_last(a));
            goto fail;
        }
    }
    if (rc != NK_OK) {
        goto fail;
    }
    char addr[32];
    snprintf(addr, sizeof(addr), "0.0.0.0:%d", NK_SRAFT_PORT);
    rc = nk_rt_listen(rt, addr, &in_handlers, a, &a->listener);
    if (rc != NK_OK) {
        goto fail;
    }
    nk_rt_set_shutdown_handler(rt, node_shutdown, a);
    nk_log(rt, NK_LOG_INFO,
           "raft: up (segment %" PRIu64 ", term %" PRIu64 ", snapshot %" PRIu64 ", last %" PRIu64
           ")",
           a->seg_seq, a->hs.term, a->snap.index, mirror_last(a));
    a->tick_timer = nk_rt_timer_start(rt, nk_rand_between(&a->rand, 1, a->o->tick_ns), tick, a);
    pump(a);
    nk_sraft_world_observe(a->w, a->self, a->raft);
    return NK_OK;
fail:
    node_stop(a, false);
    *state = NULL;
    return rc == NK_OK ? NK_EIO : rc;
}

static void node_stop(void *state, bool crashed)
{
    nk_sraft_node *a = state;
    (void)crashed;
    if (a == NULL) {
        return;
    }
    /* The simulator drops a dead node's jobs: the record is ours to free. */
    free(a->sync);
    if (a->rd_busy) {
        nk_raft_ready_clear(&a->rd);
    }
    nk_raft_free(a->raft);
    if (a->seg != NULL) {
        nk_rt_file_close(a->rt, a->seg);
    }
    mirror_truncate(a, 0);
    free(a->ents);
    free(a->snap_data);
    free(a);
}

const nk_sim_app nk_sraft_app = {
    .name = "raft",
    .start = node_start,
    .stop = node_stop,
};
