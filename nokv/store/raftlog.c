/* raftlog.c - the store-wide raft log (see raftlog.h). */
#include "nokv/util/grow.h"
#include "nokv/store/raftlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/logfile.h"
#include "nokv/engine/slice.h"
#include "nokv/util/coding.h"
#include "nokv/util/u64map.h"

/* Record payload types (docs/formats.md). */
#define REC_ENTRIES 1u
#define REC_HARDSTATE 2u
#define REC_SNAPSHOT 3u
#define REC_DESTROY 4u

#define SNAP_FLAG_RESET 0x01u

/* Entries are split into records of about this many payload bytes, so that
 * reading one entry back reads a bounded record. */
#define ENTRIES_CHUNK (64u * 1024u)

/* Indexes above this are refused (staging) or corruption (replay), so that
 * index + 1 and first + n never wrap. Raft never gets near it. */
#define MAX_INDEX (UINT64_MAX >> 1)

#define DEFAULT_SEGMENT_BYTES (UINT64_C(64) << 20)
#define DEFAULT_CACHE_BYTES (UINT64_C(8) << 20)

/* Where one entry lives, and its cached data. */
typedef struct ent {
    uint64_t term;
    uint64_t seg;  /* number of the segment holding its record */
    uint64_t roff; /* offset of that record in the segment */
    uint32_t rlen; /* the record's payload length */
    uint32_t eoff; /* the entry encoding's offset inside the payload */
    uint32_t elen; /* its length */
    uint8_t type;
    bool cached;   /* data/dlen valid (dlen == 0 entries are always "cached") */
    uint64_t cseq; /* cache sequence of this copy; 0 when not in the FIFO */
    uint8_t *data;
    size_t dlen;
} ent;

typedef struct region {
    uint64_t id;
    bool has_hs;
    nk_raft_hard_state hs;
    bool has_snap;
    nk_raft_snapshot_meta snap;
    uint64_t first; /* index of e[0] */
    ent *e;
    size_t n;
    size_t cap;
} region;

typedef struct seg {
    uint64_t number;
    uint64_t first_lsn;
    uint64_t size;
    uint64_t live; /* entries held in the index that point into this segment */
} seg;

/* A cached entry, in insertion order; stale when the entry's cseq moved on. */
typedef struct cache_ref {
    uint64_t region_id;
    uint64_t index;
    uint64_t cseq;
} cache_ref;

/* What staging promised so far for a region, to validate the next stage call
 * against the state the log will have once the batch is applied. */
typedef struct proj {
    uint64_t floor; /* snapshot index (0 = none) */
    uint64_t last;  /* last entry index */
} proj;

typedef struct waiter {
    nk_raftlog_sync_fn fn;
    void *arg;
} waiter;

/* One sync job. `work` touches only rt, files, dir, status; the rest is the
 * loop thread's. */
typedef struct sync_job {
    nk_raftlog *l;
    nk_rt *rt;
    nk_file **files;
    size_t nfiles;
    size_t nclose; /* files[0..nclose) are retired handles this job closes */
    char *dir;     /* non-NULL: dir sync after the files */
    uint64_t target;
    int status;
    waiter *ws;
    size_t nws;
} sync_job;

struct nk_raftlog {
    nk_rt *rt;
    char *dir;
    nk_raftlog_options o;
    int err; /* sticky: a failed write or sync leaves the file state unknown */

    nk_u64map regions; /* id -> region* */

    seg *segs; /* oldest first; the last one is `cur` */
    size_t nsegs;
    size_t cap_segs;
    uint64_t next_number;
    nk_file *cur;
    bool cur_dirty;
    nk_file **retired;
    size_t nretired;
    size_t cap_retired;
    bool dir_dirty;

    uint64_t last_lsn;
    uint64_t durable_lsn;

    /* staged payloads, back to back */
    nk_buf stage;
    size_t *stage_len;
    size_t nstage;
    size_t cap_stage;
    nk_u64map proj; /* region id -> proj* for this batch */

    /* entry cache */
    cache_ref *fifo;
    size_t fifo_head;
    size_t fifo_len; /* refs in fifo[fifo_head .. fifo_head + fifo_len) */
    size_t fifo_cap;
    size_t cached_count; /* live refs */
    uint64_t cache_bytes;
    uint64_t cache_seq;

    sync_job *job;
    waiter *queued;
    size_t nqueued;
    size_t cap_queued;

    nk_buf wbuf;
    nk_buf scratch;
    nk_raftlog_stats stats;
};

/* ----------------------------------------------------------- helpers --- */

static char *seg_path(const char *dir, uint64_t number)
{
    char name[40];
    snprintf(name, sizeof name, "%06" PRIu64 ".rlog", number);
    return nk_path_join(dir, name);
}

static void fail(nk_raftlog *l, int rc)
{
    if (l->err == NK_OK) {
        l->err = rc;
    }
}

static seg *seg_find(nk_raftlog *l, uint64_t number)
{
    size_t lo = 0, hi = l->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->segs[mid].number < number) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < l->nsegs && l->segs[lo].number == number ? &l->segs[lo] : NULL;
}

static uint64_t region_last(const region *r)
{
    return r->first + r->n - 1;
}

static uint64_t region_floor(const region *r)
{
    return r->has_snap ? r->snap.index : 0;
}

/* ------------------------------------------------------------- cache --- */

static void uncache(nk_raftlog *l, ent *e)
{
    if (e->cseq != 0) {
        l->cache_bytes -= e->dlen;
        l->cached_count--;
        e->cseq = 0;
    }
    free(e->data);
    e->data = NULL;
    e->cached = false;
}

/* Drop an entry from the index: its segment holds one live entry less. */
static void ent_drop(nk_raftlog *l, ent *e)
{
    seg *s = seg_find(l, e->seg);
    if (s != NULL && s->live > 0) {
        s->live--;
    }
    uncache(l, e);
}

static ent *ent_at(nk_raftlog *l, uint64_t region_id, uint64_t index)
{
    region *r = nk_u64map_get(&l->regions, region_id);
    if (r == NULL || index < r->first || index > region_last(r)) {
        return NULL;
    }
    return &r->e[index - r->first];
}

/* Forget FIFO refs that no longer name a cached copy, once they dominate. */
static void fifo_compact(nk_raftlog *l)
{
    size_t w = 0;
    for (size_t i = 0; i < l->fifo_len; i++) {
        cache_ref c = l->fifo[l->fifo_head + i];
        ent *e = ent_at(l, c.region_id, c.index);
        if (e != NULL && e->cseq == c.cseq) {
            l->fifo[w++] = c;
        }
    }
    l->fifo_head = 0;
    l->fifo_len = w;
}

static void evict(nk_raftlog *l)
{
    while (l->cache_bytes > l->o.cache_bytes && l->fifo_len > 0) {
        cache_ref c = l->fifo[l->fifo_head++];
        l->fifo_len--;
        ent *e = ent_at(l, c.region_id, c.index);
        if (e != NULL && e->cseq == c.cseq) {
            uncache(l, e);
        }
    }
    if (l->fifo_len == 0) {
        l->fifo_head = 0;
    }
}

/* Keep e's data (owned, dlen > 0) in the cache; frees it when it does not
 * fit or memory is short. */
static void cache_put(nk_raftlog *l, uint64_t region_id, uint64_t index, ent *e)
{
    if (e->dlen > l->o.cache_bytes) {
        free(e->data);
        e->data = NULL;
        e->cached = false;
        return;
    }
    if (l->fifo_len > 2 * l->cached_count + 64) {
        fifo_compact(l);
    }
    if (l->fifo_head + l->fifo_len == l->fifo_cap && l->fifo_head > 0) {
        memmove(l->fifo, l->fifo + l->fifo_head, l->fifo_len * sizeof *l->fifo);
        l->fifo_head = 0;
    }
    if (nk_grow((void **)&l->fifo, &l->fifo_cap, l->fifo_head + l->fifo_len, sizeof *l->fifo) !=
        NK_OK) {
        free(e->data);
        e->data = NULL;
        e->cached = false;
        return;
    }
    e->cseq = ++l->cache_seq;
    e->cached = true;
    l->fifo[l->fifo_head + l->fifo_len++] = (cache_ref){region_id, index, e->cseq};
    l->cache_bytes += e->dlen;
    l->cached_count++;
    evict(l);
}

/* ----------------------------------------------------------- regions --- */

static void region_drop_from(nk_raftlog *l, region *r, uint64_t index)
{
    while (r->n > 0 && region_last(r) >= index) {
        ent_drop(l, &r->e[--r->n]);
    }
}

/* Keep entries above index only; the log now starts at index + 1. */
static void region_compact(nk_raftlog *l, region *r, uint64_t index)
{
    if (r->n == 0 || index >= region_last(r)) {
        region_drop_from(l, r, 0);
        r->first = index + 1;
        return;
    }
    if (index < r->first) {
        return;
    }
    size_t k = (size_t)(index + 1 - r->first);
    for (size_t i = 0; i < k; i++) {
        ent_drop(l, &r->e[i]);
    }
    memmove(r->e, r->e + k, (r->n - k) * sizeof *r->e);
    r->n -= k;
    r->first = index + 1;
}

static void region_free(nk_raftlog *l, region *r)
{
    region_drop_from(l, r, 0);
    free(r->e);
    free(r);
}

static int region_get_or_new(nk_raftlog *l, uint64_t id, region **out)
{
    region *r = nk_u64map_get(&l->regions, id);
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) {
            return NK_ENOMEM;
        }
        r->id = id;
        r->first = 1;
        if (nk_u64map_put(&l->regions, id, r) != NK_OK) {
            free(r);
            return NK_ENOMEM;
        }
    }
    *out = r;
    return NK_OK;
}

/* ------------------------------------------------------ record codec --- */

typedef struct prd {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} prd;

static uint64_t p_var(prd *r)
{
    uint64_t v = 0;
    size_t n = r->bad ? 0 : nk_get_varint64(r->p, r->end, &v);
    if (n == 0) {
        r->bad = true;
        return 0;
    }
    r->p += n;
    return v;
}

static uint8_t p_u8(prd *r)
{
    if (r->bad || r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static int put_conf(nk_buf *b, const nk_raft_conf *c)
{
    int rc = nk_buf_append_varint(b, c->n);
    for (uint32_t k = 0; rc == NK_OK && k < c->n; k++) {
        rc = nk_buf_append_varint(b, c->m[k].id);
        if (rc == NK_OK) {
            rc = nk_buf_append_u8(b, c->m[k].role);
        }
    }
    return rc;
}

/* The same rules as the raft message codec: sorted, unique, valid roles. */
static bool get_conf(prd *r, nk_raft_conf *c)
{
    memset(c, 0, sizeof *c);
    uint64_t n = p_var(r);
    if (r->bad || n > NK_RAFT_MAX_MEMBERS) {
        return false;
    }
    for (uint64_t k = 0; k < n; k++) {
        c->m[k].id = p_var(r);
        c->m[k].role = p_u8(r);
        uint8_t role = c->m[k].role;
        if (r->bad || c->m[k].id == 0 || (role != NK_RAFT_VOTER && role != NK_RAFT_LEARNER) ||
            (k > 0 && c->m[k - 1].id >= c->m[k].id)) {
            return false;
        }
    }
    c->n = (uint32_t)n;
    return true;
}

/* ------------------------------------------------------------- apply --- */

/*
 * Apply one record payload (type, region, body) to the in-memory state. The
 * write path and replay share this function, so the state after a write is
 * exactly what the next open rebuilds. `replay` relaxes one rule: entries
 * may start beyond the region's last index when the records in between were
 * purged (they were dead), and open checks afterwards that what is held
 * starts right after the snapshot.
 */
typedef struct loc {
    uint64_t seg;
    uint64_t roff;
} loc;

static int apply_entries(nk_raftlog *l, region *r, prd *rd, const uint8_t *payload, uint32_t plen,
                         loc at, bool replay)
{
    uint64_t n = p_var(rd);
    if (rd->bad || n == 0) {
        return NK_ECORRUPT;
    }
    uint64_t prev = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t elen = p_var(rd);
        if (rd->bad || elen > (uint64_t)(rd->end - rd->p)) {
            return NK_ECORRUPT;
        }
        nk_raft_entry e;
        if (nk_raft_entry_decode(rd->p, (size_t)elen, &e) != NK_OK) {
            return NK_ECORRUPT;
        }
        uint32_t eoff = (uint32_t)(rd->p - payload);
        rd->p += elen;
        if (e.index == 0 || e.index > MAX_INDEX || (k > 0 && e.index != prev + 1)) {
            nk_raft_entry_clear(&e);
            return NK_ECORRUPT;
        }
        prev = e.index;
        uint64_t floor = region_floor(r);
        if (e.index <= floor) {
            nk_raft_entry_clear(&e); /* compacted away already (replay only) */
            if (!replay) {
                return NK_EINVAL;
            }
            continue;
        }
        if (r->n == 0) {
            if (e.index != floor + 1 && !replay) {
                nk_raft_entry_clear(&e);
                return NK_EINVAL;
            }
            r->first = e.index;
        } else if (e.index <= region_last(r)) {
            region_drop_from(l, r, e.index); /* truncate, then append */
        } else if (e.index > region_last(r) + 1) {
            if (!replay) {
                nk_raft_entry_clear(&e);
                return NK_EINVAL;
            }
            region_drop_from(l, r, 0);
        }
        if (r->n == 0) {
            r->first = e.index;
        }
        if (nk_grow((void **)&r->e, &r->cap, r->n, sizeof *r->e) != NK_OK) {
            nk_raft_entry_clear(&e);
            return NK_ENOMEM;
        }
        ent *x = &r->e[r->n++];
        *x = (ent){
            .term = e.term,
            .seg = at.seg,
            .roff = at.roff,
            .rlen = plen,
            .eoff = eoff,
            .elen = (uint32_t)elen,
            .type = e.type,
            .cached = true,
            .data = e.data,
            .dlen = e.len,
        };
        seg *s = seg_find(l, at.seg);
        if (s != NULL) {
            s->live++;
        }
        if (x->dlen > 0) {
            cache_put(l, r->id, e.index, x);
        }
    }
    return NK_OK;
}

static int apply_record(nk_raftlog *l, const uint8_t *payload, size_t len, loc at, bool replay)
{
    prd rd = {payload, payload + len, false};
    uint8_t type = p_u8(&rd);
    uint64_t id = p_var(&rd);
    if (rd.bad || id == 0) {
        return NK_ECORRUPT;
    }
    if (type < REC_ENTRIES || type > REC_DESTROY) {
        return NK_ENOTSUP;
    }
    if (type == REC_DESTROY) {
        region *r = nk_u64map_del(&l->regions, id);
        if (r != NULL) {
            region_free(l, r);
        }
        return rd.p == rd.end ? NK_OK : NK_ECORRUPT;
    }
    region *r = NULL;
    int rc = region_get_or_new(l, id, &r);
    if (rc != NK_OK) {
        return rc;
    }
    if (type == REC_ENTRIES) {
        rc = apply_entries(l, r, &rd, payload, (uint32_t)len, at, replay);
    } else if (type == REC_HARDSTATE) {
        nk_raft_hard_state hs;
        hs.term = p_var(&rd);
        hs.vote = p_var(&rd);
        hs.commit = p_var(&rd);
        if (rd.bad) {
            return NK_ECORRUPT;
        }
        r->has_hs = true;
        r->hs = hs;
    } else {
        uint8_t flags = p_u8(&rd);
        nk_raft_snapshot_meta m;
        memset(&m, 0, sizeof m);
        m.index = p_var(&rd);
        m.term = p_var(&rd);
        if (rd.bad || (flags & ~SNAP_FLAG_RESET) != 0 || m.index > MAX_INDEX ||
            !get_conf(&rd, &m.conf)) {
            return NK_ECORRUPT;
        }
        if (flags & SNAP_FLAG_RESET) {
            region_drop_from(l, r, 0);
            r->first = m.index + 1;
        } else {
            region_compact(l, r, m.index);
        }
        r->has_snap = true;
        r->snap = m;
    }
    if (rc == NK_OK && rd.p != rd.end) {
        rc = NK_ECORRUPT;
    }
    return rc;
}

/* ----------------------------------------------------------- staging --- */

static int stage_push(nk_raftlog *l, size_t len)
{
    int rc = nk_grow((void **)&l->stage_len, &l->cap_stage, l->nstage, sizeof *l->stage_len);
    if (rc == NK_OK) {
        l->stage_len[l->nstage++] = len;
    }
    return rc;
}

/* The region as the staged records leave it (creating the projection). */
static proj *proj_get(nk_raftlog *l, uint64_t id)
{
    proj *p = nk_u64map_get(&l->proj, id);
    if (p != NULL) {
        return p;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    region *r = nk_u64map_get(&l->regions, id);
    if (r != NULL) {
        p->floor = region_floor(r);
        p->last = r->n > 0 ? region_last(r) : p->floor;
    }
    if (nk_u64map_put(&l->proj, id, p) != NK_OK) {
        free(p);
        return NULL;
    }
    return p;
}

static void proj_clear(nk_raftlog *l)
{
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (nk_u64map_next(&l->proj, &pos, &key, &v)) {
        free(v);
    }
    nk_u64map_free(&l->proj);
    nk_u64map_init(&l->proj);
}

/* Undo a partly staged record: the buffer is cut back to `mark`. */
static int stage_abort(nk_raftlog *l, size_t mark, int rc)
{
    l->stage.len = mark;
    return rc;
}

static int stage_begin(nk_raftlog *l, unsigned type, uint64_t region_id)
{
    int rc = nk_buf_append_u8(&l->stage, (uint8_t)type);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(&l->stage, region_id);
    }
    return rc;
}

int nk_raftlog_stage_entries(nk_raftlog *l, uint64_t region_id, const nk_raft_entry *ents, size_t n)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (region_id == 0) {
        return NK_EINVAL;
    }
    if (n == 0) {
        return NK_OK;
    }
    proj *p = proj_get(l, region_id);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    uint64_t first = ents[0].index;
    if (first <= p->floor || first > p->last + 1 || first > MAX_INDEX ||
        n > MAX_INDEX - first + 1) {
        return NK_EINVAL; /* a gap, or below the snapshot */
    }
    for (size_t k = 0; k < n; k++) {
        if (ents[k].index != first + k || ents[k].type > NK_RAFT_ENTRY_CONF ||
            (ents[k].len > 0 && ents[k].data == NULL)) {
            return NK_EINVAL;
        }
    }
    size_t mark = l->stage.len, nmark = l->nstage;
    size_t k = 0;
    while (k < n) {
        /* One record per chunk: count its entries first (n uvar leads). */
        size_t cnt = 0, bytes = 0;
        while (k + cnt < n && (cnt == 0 || bytes < ENTRIES_CHUNK)) {
            bytes += nk_raft_entry_encoded_size(&ents[k + cnt]) + NK_VARINT64_MAX;
            cnt++;
        }
        size_t rstart = l->stage.len;
        int rc = stage_begin(l, REC_ENTRIES, region_id);
        if (rc == NK_OK) {
            rc = nk_buf_append_varint(&l->stage, cnt);
        }
        for (size_t j = 0; rc == NK_OK && j < cnt; j++) {
            const nk_raft_entry *e = &ents[k + j];
            size_t cap = nk_raft_entry_encoded_size(e), got = 0;
            nk_buf_clear(&l->scratch);
            rc = nk_buf_reserve(&l->scratch, cap);
            if (rc == NK_OK) {
                rc = nk_raft_entry_encode(e, l->scratch.data, cap, &got);
            }
            if (rc == NK_OK) {
                rc = nk_buf_append_varint(&l->stage, got);
            }
            if (rc == NK_OK) {
                rc = nk_buf_append(&l->stage, l->scratch.data, got);
            }
        }
        if (rc == NK_OK && l->stage.len - rstart > NK_LOGREC_MAX_PAYLOAD) {
            rc = NK_ETOOBIG;
        }
        if (rc == NK_OK) {
            rc = stage_push(l, l->stage.len - rstart);
        }
        if (rc != NK_OK) {
            l->nstage = nmark;
            return stage_abort(l, mark, rc);
        }
        k += cnt;
    }
    p->last = first + n - 1;
    return NK_OK;
}

int nk_raftlog_stage_hard_state(nk_raftlog *l, uint64_t region_id, const nk_raft_hard_state *hs)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (region_id == 0) {
        return NK_EINVAL;
    }
    if (proj_get(l, region_id) == NULL) {
        return NK_ENOMEM;
    }
    size_t mark = l->stage.len;
    int rc = stage_begin(l, REC_HARDSTATE, region_id);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(&l->stage, hs->term);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(&l->stage, hs->vote);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(&l->stage, hs->commit);
    }
    if (rc == NK_OK) {
        rc = stage_push(l, l->stage.len - mark);
    }
    return rc == NK_OK ? NK_OK : stage_abort(l, mark, rc);
}

static int encode_snapshot(nk_buf *b, uint64_t region_id, const nk_raft_snapshot_meta *m,
                           bool reset)
{
    int rc = nk_buf_append_u8(b, REC_SNAPSHOT);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, region_id);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_u8(b, reset ? SNAP_FLAG_RESET : 0);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, m->index);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, m->term);
    }
    if (rc == NK_OK) {
        rc = put_conf(b, &m->conf);
    }
    return rc;
}

static bool conf_ok(const nk_raft_conf *c)
{
    if (c->n > NK_RAFT_MAX_MEMBERS) {
        return false;
    }
    for (uint32_t k = 0; k < c->n; k++) {
        uint8_t role = c->m[k].role;
        if (c->m[k].id == 0 || (role != NK_RAFT_VOTER && role != NK_RAFT_LEARNER) ||
            (k > 0 && c->m[k - 1].id >= c->m[k].id)) {
            return false;
        }
    }
    return true;
}

int nk_raftlog_stage_snapshot(nk_raftlog *l, uint64_t region_id, const nk_raft_snapshot_meta *m,
                              bool reset)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (region_id == 0 || m->index > MAX_INDEX || !conf_ok(&m->conf)) {
        return NK_EINVAL;
    }
    proj *p = proj_get(l, region_id);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    if (!reset && m->index < p->floor) {
        return NK_EINVAL; /* compacting below the current start */
    }
    size_t mark = l->stage.len;
    int rc = encode_snapshot(&l->stage, region_id, m, reset);
    if (rc == NK_OK) {
        rc = stage_push(l, l->stage.len - mark);
    }
    if (rc != NK_OK) {
        return stage_abort(l, mark, rc);
    }
    p->floor = m->index;
    if (reset || p->last < m->index) {
        p->last = m->index;
    }
    return NK_OK;
}

int nk_raftlog_stage_destroy(nk_raftlog *l, uint64_t region_id)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (region_id == 0) {
        return NK_EINVAL;
    }
    proj *p = proj_get(l, region_id);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    size_t mark = l->stage.len;
    int rc = stage_begin(l, REC_DESTROY, region_id);
    if (rc == NK_OK) {
        rc = stage_push(l, l->stage.len - mark);
    }
    if (rc != NK_OK) {
        return stage_abort(l, mark, rc);
    }
    p->floor = 0;
    p->last = 0;
    return NK_OK;
}

bool nk_raftlog_has_staged(const nk_raftlog *l)
{
    return l->nstage > 0;
}

/* ----------------------------------------------------------- writing --- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int sorted_ids(const nk_raftlog *l, uint64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (l->regions.count == 0) {
        return NK_OK;
    }
    uint64_t *v = malloc(l->regions.count * sizeof *v);
    if (v == NULL) {
        return NK_ENOMEM;
    }
    size_t pos = 0, k = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&l->regions, &pos, &key, &val)) {
        v[k++] = key;
    }
    qsort(v, k, sizeof *v, cmp_u64);
    *ids = v;
    *n = k;
    return NK_OK;
}

/* Frame one payload as the next record into wbuf. */
static int frame(nk_raftlog *l, const uint8_t *payload, size_t len)
{
    int rc =
        nk_logrec_encode(&l->wbuf, NK_LOGREC_DATA, l->last_lsn + 1, l->durable_lsn, payload, len);
    if (rc == NK_OK) {
        l->last_lsn++;
    }
    return rc;
}

/*
 * Start a new segment and put the restatement of every live region's hard
 * state and snapshot at the head of wbuf, so that every older segment holds
 * nothing the log still needs but entries. Any failure here is sticky: a
 * created segment without its restatement must never take records.
 */
static int roll(nk_raftlog *l)
{
    int rc = nk_grow((void **)&l->segs, &l->cap_segs, l->nsegs, sizeof *l->segs);
    if (rc == NK_OK) {
        rc = nk_grow((void **)&l->retired, &l->cap_retired, l->nretired, sizeof *l->retired);
    }
    uint64_t number = l->next_number;
    char *path = rc == NK_OK ? seg_path(l->dir, number) : NULL;
    if (rc == NK_OK && path == NULL) {
        rc = NK_ENOMEM;
    }
    nk_file *f = NULL;
    if (rc == NK_OK) {
        nk_logfile_hdr h = {NK_RAFTLOG_FILE_MAGIC, number, l->last_lsn + 1, l->durable_lsn};
        rc = nk_logfile_create(l->rt, path, &h, NULL, &f);
        if (rc != NK_OK) {
            nk_log(l->rt, NK_LOG_ERROR, "raftlog: creating %s failed: %s", path, nk_errname(rc));
        }
    }
    free(path);
    if (rc != NK_OK) {
        return rc;
    }
    l->next_number = number + 1;
    l->retired[l->nretired++] = l->cur;
    l->cur = f;
    l->segs[l->nsegs++] = (seg){number, l->last_lsn + 1, NK_LOGFILE_HDR_SIZE, 0};
    l->stats.bytes += NK_LOGFILE_HDR_SIZE;
    l->cur_dirty = true;
    l->dir_dirty = true;
    rc = nk_failpoint(l->rt, "raftlog.after_roll");
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t *ids = NULL;
    size_t n = 0;
    rc = sorted_ids(l, &ids, &n);
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        const region *r = nk_u64map_get(&l->regions, ids[i]);
        if (r->has_hs) {
            nk_buf_clear(&l->scratch);
            rc = nk_buf_append_u8(&l->scratch, REC_HARDSTATE);
            if (rc == NK_OK) {
                rc = nk_buf_append_varint(&l->scratch, r->id);
            }
            if (rc == NK_OK) {
                rc = nk_buf_append_varint(&l->scratch, r->hs.term);
            }
            if (rc == NK_OK) {
                rc = nk_buf_append_varint(&l->scratch, r->hs.vote);
            }
            if (rc == NK_OK) {
                rc = nk_buf_append_varint(&l->scratch, r->hs.commit);
            }
            if (rc == NK_OK) {
                rc = frame(l, l->scratch.data, l->scratch.len);
            }
        }
        if (rc == NK_OK && r->has_snap) {
            /* Always as COMPACT: every held entry is above the index. */
            nk_buf_clear(&l->scratch);
            rc = encode_snapshot(&l->scratch, r->id, &r->snap, false);
            if (rc == NK_OK) {
                rc = frame(l, l->scratch.data, l->scratch.len);
            }
        }
    }
    free(ids);
    l->stats.segments = l->nsegs;
    return rc;
}

int nk_raftlog_write(nk_raftlog *l)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (l->nstage == 0) {
        return NK_OK;
    }
    uint64_t batch = 0;
    for (size_t i = 0; i < l->nstage; i++) {
        batch += NK_LOGREC_OVERHEAD + l->stage_len[i];
    }
    seg *cs = &l->segs[l->nsegs - 1];
    nk_buf_clear(&l->wbuf);
    uint64_t lsn0 = l->last_lsn;
    int rc = NK_OK;
    if (cs->size > NK_LOGFILE_HDR_SIZE && cs->size + batch > l->o.segment_bytes) {
        rc = roll(l);
        if (rc != NK_OK) {
            fail(l, rc);
            return rc;
        }
        cs = &l->segs[l->nsegs - 1];
    }
    size_t restated = l->wbuf.len;
    size_t off = 0;
    for (size_t i = 0; rc == NK_OK && i < l->nstage; i++) {
        rc = frame(l, l->stage.data + off, l->stage_len[i]);
        off += l->stage_len[i];
    }
    if (rc != NK_OK) {
        /* Nothing was appended yet: undo the lsns and keep the stage. A
         * restatement already framed is simply rebuilt next time. */
        l->last_lsn = lsn0;
        if (restated > 0) {
            fail(l, rc);
        }
        return rc;
    }
    uint64_t base = cs->size;
    rc = nk_rt_file_append(l->rt, l->cur, l->wbuf.data, l->wbuf.len);
    if (rc != NK_OK) {
        nk_log(l->rt, NK_LOG_ERROR, "raftlog: append to segment %06" PRIu64 " failed: %s",
               cs->number, nk_errname(rc));
        fail(l, rc); /* a partial write may be in the file */
        return rc;
    }
    cs->size += l->wbuf.len;
    l->cur_dirty = true;
    l->stats.bytes += l->wbuf.len;
    rc = nk_failpoint(l->rt, "raftlog.after_append");
    if (rc != NK_OK) {
        fail(l, rc); /* the records are in the file but not in memory */
        return rc;
    }
    /* Apply what was appended; the walk mirrors the framing above. */
    uint64_t roff = base + restated;
    off = 0;
    for (size_t i = 0; rc == NK_OK && i < l->nstage; i++) {
        loc at = {cs->number, roff};
        rc = apply_record(l, l->stage.data + off, l->stage_len[i], at, false);
        roff += NK_LOGREC_OVERHEAD + l->stage_len[i];
        off += l->stage_len[i];
    }
    nk_buf_clear(&l->stage);
    l->nstage = 0;
    proj_clear(l);
    if (rc != NK_OK) {
        /* Staging validated every record; only ENOMEM gets here. */
        fail(l, rc);
    }
    return rc;
}

/* -------------------------------------------------------------- sync --- */

static void job_free(nk_rt *rt, sync_job *j)
{
    for (size_t i = 0; i < j->nclose; i++) {
        (void)nk_rt_file_close(rt, j->files[i]);
    }
    free(j->files);
    free(j->dir);
    free(j->ws);
    free(j);
}

static void job_work(void *arg)
{
    sync_job *j = arg;
    int rc = nk_failpoint(j->rt, "raftlog.before_sync");
    for (size_t i = 0; rc == NK_OK && i < j->nfiles; i++) {
        rc = nk_rt_file_sync(j->rt, j->files[i]);
    }
    if (rc == NK_OK && j->dir != NULL) {
        rc = nk_rt_dir_sync(j->rt, j->dir);
    }
    j->status = rc;
}

static void job_done(void *arg);

static int submit(nk_raftlog *l)
{
    sync_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->l = l;
    j->rt = l->rt;
    j->target = l->last_lsn;
    j->files = malloc((l->nretired + 1) * sizeof *j->files);
    if (j->files == NULL || (l->dir_dirty && (j->dir = strdup(l->dir)) == NULL)) {
        free(j->files);
        free(j);
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < l->nretired; i++) {
        j->files[j->nfiles++] = l->retired[i];
    }
    j->nclose = j->nfiles;
    if (l->cur_dirty) {
        j->files[j->nfiles++] = l->cur;
    }
    int rc = nk_rt_job_submit(l->rt, "raftlog.sync", job_work, job_done, j);
    if (rc != NK_OK) {
        j->nclose = 0;
        job_free(l->rt, j);
        return rc;
    }
    j->ws = l->queued;
    j->nws = l->nqueued;
    l->queued = NULL;
    l->nqueued = 0;
    l->cap_queued = 0;
    l->nretired = 0;
    l->cur_dirty = false;
    l->dir_dirty = false;
    l->job = j;
    return NK_OK;
}

/* The claim that everything so far is durable, written (not synced) right
 * after the sync: without it, damage in the last synced batch would look
 * like a torn tail to the next open. */
static void append_mark(nk_raftlog *l)
{
    nk_buf_clear(&l->scratch);
    int rc = nk_logrec_encode(&l->scratch, NK_LOGREC_MARK, l->last_lsn, l->durable_lsn, NULL, 0);
    if (rc == NK_OK) {
        rc = nk_rt_file_append(l->rt, l->cur, l->scratch.data, l->scratch.len);
    }
    if (rc != NK_OK) {
        fail(l, rc);
        return;
    }
    l->segs[l->nsegs - 1].size += l->scratch.len;
    l->stats.bytes += l->scratch.len;
    l->cur_dirty = true;
}

static void job_done(void *arg)
{
    sync_job *j = arg;
    nk_raftlog *l = j->l;
    l->job = NULL;
    if (j->status == NK_OK) {
        l->stats.syncs++;
        bool advanced = j->target > l->durable_lsn;
        if (advanced) {
            l->durable_lsn = j->target;
        }
        if (l->err == NK_OK && advanced) {
            append_mark(l);
        }
    } else {
        nk_log(l->rt, NK_LOG_ERROR,
               "raftlog: sync of %s failed (%s); the log refuses writes until reopened", l->dir,
               nk_errname(j->status));
        fail(l, j->status);
    }
    waiter *late = NULL;
    size_t nlate = 0;
    if (l->nqueued > 0) {
        int rc = l->err != NK_OK ? l->err : submit(l);
        if (rc != NK_OK) {
            fail(l, rc);
            late = l->queued;
            nlate = l->nqueued;
            l->queued = NULL;
            l->nqueued = 0;
            l->cap_queued = 0;
        }
    }
    int status = j->status, err = l->err;
    waiter *ws = j->ws;
    size_t nws = j->nws;
    j->ws = NULL;
    job_free(l->rt, j);
    /* Callbacks may stage, write, sync or close: no log state is used after. */
    for (size_t i = 0; i < nws; i++) {
        ws[i].fn(ws[i].arg, status);
    }
    for (size_t i = 0; i < nlate; i++) {
        late[i].fn(late[i].arg, err);
    }
    free(ws);
    free(late);
}

int nk_raftlog_sync(nk_raftlog *l, nk_raftlog_sync_fn done, void *arg)
{
    if (l->err != NK_OK) {
        return l->err;
    }
    if (nk_grow((void **)&l->queued, &l->cap_queued, l->nqueued, sizeof *l->queued) != NK_OK) {
        return NK_ENOMEM;
    }
    l->queued[l->nqueued++] = (waiter){done, arg};
    if (l->job != NULL) {
        return NK_OK; /* joins the next job */
    }
    int rc = submit(l);
    if (rc != NK_OK) {
        l->nqueued--;
        if (rc != NK_ENOMEM) {
            fail(l, rc);
        }
    }
    return rc;
}

/* ------------------------------------------------------------- reads --- */

int nk_raftlog_regions(const nk_raftlog *l, uint64_t **ids, size_t *n)
{
    return sorted_ids(l, ids, n);
}

int nk_raftlog_region(const nk_raftlog *l, uint64_t region_id, nk_raftlog_region_state *st)
{
    const region *r = nk_u64map_get(&l->regions, region_id);
    if (r == NULL) {
        return NK_ENOENT;
    }
    memset(st, 0, sizeof *st);
    st->region_id = r->id;
    st->has_hard_state = r->has_hs;
    st->hs = r->hs;
    st->has_snapshot = r->has_snap;
    st->snap = r->snap;
    st->first_index = r->first;
    st->last_index = region_last(r);
    return NK_OK;
}

int nk_raftlog_term(const nk_raftlog *l, uint64_t region_id, uint64_t index, uint64_t *term)
{
    const region *r = nk_u64map_get(&l->regions, region_id);
    if (r == NULL) {
        return NK_ENOENT;
    }
    if (index == region_floor(r)) {
        *term = r->has_snap ? r->snap.term : 0;
        return NK_OK;
    }
    if (index < r->first || index > region_last(r)) {
        return NK_ENOENT;
    }
    *term = r->e[index - r->first].term;
    return NK_OK;
}

/* Read and verify the record holding x into l->scratch (payload at
 * scratch.data + NK_LOGREC_HDR_SIZE). */
static int read_record(nk_raftlog *l, const ent *x)
{
    size_t total = NK_LOGREC_OVERHEAD + (size_t)x->rlen;
    nk_buf_clear(&l->scratch);
    int rc = nk_buf_reserve(&l->scratch, total);
    if (rc != NK_OK) {
        return rc;
    }
    bool cur = x->seg == l->segs[l->nsegs - 1].number;
    nk_file *f = l->cur;
    char *path = seg_path(l->dir, x->seg);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    if (!cur) {
        rc = nk_rt_file_open(l->rt, path, NK_OPEN_READ, &f);
    }
    size_t got = 0;
    if (rc == NK_OK) {
        rc = nk_rt_file_read_at(l->rt, f, x->roff, l->scratch.data, total, &got);
        if (!cur) {
            (void)nk_rt_file_close(l->rt, f);
        }
    }
    const uint8_t *p = l->scratch.data;
    const char *why = NULL;
    if (rc != NK_OK) {
        why = nk_errname(rc);
    } else if (got < total) {
        why = "record runs past the end of the file";
    } else if (nk_get_u32(p) != NK_LOGREC_MAGIC || p[4] != NK_LOGREC_DATA ||
               nk_get_u32(p + 8) != x->rlen) {
        why = "record header does not match the index";
    } else if (nk_get_u64(p + NK_LOGREC_HDR_SIZE + x->rlen) !=
               XXH64(p, NK_LOGREC_HDR_SIZE + x->rlen, 0)) {
        why = "record checksum mismatch";
    }
    if (why != NULL) {
        if (rc == NK_OK || rc == NK_ENOENT) {
            rc = NK_ECORRUPT;
        }
        nk_log(l->rt, NK_LOG_ERROR,
               "raftlog: reading back an entry from %s at offset %" PRIu64
               " failed (%s); restore this store's replica from a peer",
               path, x->roff, why);
    }
    free(path);
    return rc;
}

int nk_raftlog_entries(nk_raftlog *l, uint64_t region_id, uint64_t lo, uint64_t hi,
                       nk_raft_entry **out, size_t *n)
{
    return nk_raftlog_entries_max(l, region_id, lo, hi, 0, out, n);
}

int nk_raftlog_entries_max(nk_raftlog *l, uint64_t region_id, uint64_t lo, uint64_t hi,
                           uint64_t max_bytes, nk_raft_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    region *r = nk_u64map_get(&l->regions, region_id);
    if (r == NULL || lo > hi || (lo < hi && (lo < r->first || hi - 1 > region_last(r)))) {
        return NK_ENOENT;
    }
    if (lo == hi) {
        return NK_OK;
    }
    size_t cnt = (size_t)(hi - lo);
    if (max_bytes) {
        /* Cut the range by the index's sizes before reading anything: the
         * encoded length bounds the data length, cached entries know theirs. */
        uint64_t bytes = 0;
        size_t k = 0;
        for (; k < cnt; k++) {
            const ent *x = &r->e[lo + k - r->first];
            uint64_t len = x->cached ? x->dlen : x->elen;
            if (k > 0 && bytes + len > max_bytes) {
                break;
            }
            bytes += len;
        }
        cnt = k;
    }
    nk_raft_entry *v = calloc(cnt, sizeof *v);
    if (v == NULL) {
        return NK_ENOMEM;
    }
    int rc = NK_OK;
    uint64_t have_seg = 0, have_off = 0; /* the record in scratch, if any */
    bool have = false;
    size_t k = 0;
    for (; rc == NK_OK && k < cnt; k++) {
        const ent *x = &r->e[lo + k - r->first];
        nk_raft_entry *e = &v[k];
        e->index = lo + k;
        e->term = x->term;
        e->type = x->type;
        if (x->dlen == 0 && x->cached) {
            continue;
        }
        if (x->cached) {
            e->data = malloc(x->dlen);
            if (e->data == NULL) {
                rc = NK_ENOMEM;
                break;
            }
            memcpy(e->data, x->data, x->dlen);
            e->len = x->dlen;
            continue;
        }
        if (!have || have_seg != x->seg || have_off != x->roff) {
            have = false;
            rc = read_record(l, x);
            if (rc != NK_OK) {
                break;
            }
            have = true;
            have_seg = x->seg;
            have_off = x->roff;
        }
        nk_raft_entry d;
        const uint8_t *payload = l->scratch.data + NK_LOGREC_HDR_SIZE;
        if ((uint64_t)x->eoff + x->elen > x->rlen ||
            nk_raft_entry_decode(payload + x->eoff, x->elen, &d) != NK_OK) {
            rc = NK_ECORRUPT;
            break;
        }
        if (d.index != e->index || d.term != e->term || d.type != e->type) {
            nk_raft_entry_clear(&d);
            rc = NK_ECORRUPT;
            break;
        }
        e->data = d.data;
        e->len = d.len;
        l->stats.readbacks++;
    }
    if (rc != NK_OK) {
        for (size_t i = 0; i < cnt; i++) {
            nk_raft_entry_clear(&v[i]);
        }
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return NK_OK;
}

/* ------------------------------------------------------------- purge --- */

int nk_raftlog_purge(nk_raftlog *l, unsigned *removed)
{
    unsigned cnt = 0;
    if (removed != NULL) {
        *removed = 0;
    }
    if (l->err != NK_OK) {
        return l->err;
    }
    /* What makes an old segment dead (a snapshot, a destroy, a replacing
     * tail, the restatement in a newer segment) must be durable first:
     * otherwise a crash could bring back a log that needs the removed file. */
    if (l->durable_lsn < l->last_lsn || l->job != NULL || l->nretired > 0) {
        return NK_OK;
    }
    int rc = NK_OK;
    while (l->nsegs > 1 && l->segs[0].live == 0) {
        char *path = seg_path(l->dir, l->segs[0].number);
        if (path == NULL) {
            rc = NK_ENOMEM;
            break;
        }
        rc = nk_failpoint(l->rt, "raftlog.purge.before_remove");
        if (rc == NK_OK) {
            rc = nk_rt_remove(l->rt, path);
            if (rc == NK_ENOENT) {
                rc = NK_OK;
            }
        }
        if (rc != NK_OK) {
            nk_log(l->rt, NK_LOG_ERROR, "raftlog: removing %s failed: %s", path, nk_errname(rc));
            free(path);
            break;
        }
        free(path);
        /* One dir sync per removal: the survivors must always be a suffix
         * of the log (lsns contiguous), which a crash that kept a later
         * removal but not an earlier one would break. */
        rc = nk_rt_dir_sync(l->rt, l->dir);
        if (rc != NK_OK) {
            nk_log(l->rt, NK_LOG_ERROR, "raftlog: syncing directory %s failed: %s", l->dir,
                   nk_errname(rc));
        }
        l->stats.bytes -= l->segs[0].size;
        memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
        l->nsegs--;
        cnt++;
        if (rc != NK_OK) {
            break;
        }
    }
    l->stats.segments = l->nsegs;
    if (removed != NULL) {
        *removed = cnt;
    }
    return rc;
}

void nk_raftlog_stats_get(const nk_raftlog *l, nk_raftlog_stats *s)
{
    *s = l->stats;
    s->segments = l->nsegs;
    s->cache_bytes = l->cache_bytes;
}

/* ------------------------------------------------------- open, close --- */

static void log_free(nk_raftlog *l)
{
    if (l->job != NULL) {
        job_free(l->rt, l->job);
    }
    for (size_t i = 0; i < l->nretired; i++) {
        (void)nk_rt_file_close(l->rt, l->retired[i]);
    }
    if (l->cur != NULL) {
        (void)nk_rt_file_close(l->rt, l->cur);
    }
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (nk_u64map_next(&l->regions, &pos, &key, &v)) {
        region *r = v;
        for (size_t i = 0; i < r->n; i++) {
            free(r->e[i].data);
        }
        free(r->e);
        free(r);
    }
    nk_u64map_free(&l->regions);
    proj_clear(l);
    nk_u64map_free(&l->proj);
    free(l->segs);
    free(l->retired);
    free(l->stage_len);
    free(l->fifo);
    free(l->queued);
    free(l->dir);
    nk_buf_free(&l->stage);
    nk_buf_free(&l->wbuf);
    nk_buf_free(&l->scratch);
    free(l);
}

void nk_raftlog_close(nk_raftlog *l)
{
    if (l != NULL) {
        log_free(l);
    }
}

typedef struct replay_ctx {
    nk_raftlog *l;
    const uint64_t *numbers;
    const char *const *paths;
    nk_errbuf *eb;
} replay_ctx;

static int replay_one(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                      const uint8_t *payload, size_t len)
{
    (void)lsn;
    replay_ctx *c = arg;
    loc at = {c->numbers[file_idx], offset};
    int rc = apply_record(c->l, payload, len, at, true);
    if (rc == NK_ECORRUPT || rc == NK_EINVAL) {
        nk_errbuf_set(c->eb,
                      "raftlog: record at offset %" PRIu64 " of %s passes its checksum but its "
                      "payload is malformed; restore this store from its peers",
                      offset, c->paths[file_idx]);
        return NK_ECORRUPT;
    }
    if (rc == NK_ENOTSUP) {
        nk_errbuf_set(c->eb,
                      "raftlog: record at offset %" PRIu64 " of %s has a type this build does "
                      "not know; open it with a newer build",
                      offset, c->paths[file_idx]);
    }
    return rc;
}

/* After replay: every region's entries start right after its snapshot. */
static int check_regions(nk_raftlog *l, nk_errbuf *eb)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = sorted_ids(l, &ids, &n);
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        region *r = nk_u64map_get(&l->regions, ids[i]);
        uint64_t floor = region_floor(r);
        if (r->n == 0) {
            r->first = floor + 1;
        } else if (r->first != floor + 1) {
            nk_errbuf_set(eb,
                          "raftlog: region %" PRIu64 " in %s holds entries from %" PRIu64
                          " but its log starts at %" PRIu64
                          ": entries are missing (a segment was lost); restore this store "
                          "from its peers",
                          r->id, l->dir, r->first, floor + 1);
            rc = NK_ECORRUPT;
        }
    }
    free(ids);
    return rc;
}

static int recover(nk_raftlog *l, nk_logseg_file *files, size_t n, nk_errbuf *eb)
{
    nk_rt *rt = l->rt;
    const char **paths = malloc((n + 1) * sizeof *paths);
    uint64_t *numbers = malloc((n + 1) * sizeof *numbers);
    uint64_t *firsts = malloc((n + 1) * sizeof *firsts);
    uint64_t *sizes = malloc((n + 1) * sizeof *sizes);
    int rc = NK_OK;
    if (paths == NULL || numbers == NULL || firsts == NULL || sizes == NULL ||
        nk_grow((void **)&l->segs, &l->cap_segs, n + 1, sizeof *l->segs) != NK_OK) {
        rc = NK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        paths[i] = files[i].path;
        numbers[i] = files[i].number;
        /* Filled before the scan: replay counts live entries per segment. */
        l->segs[i] = (seg){numbers[i], 0, 0, 0};
    }
    l->nsegs = n;
    replay_ctx ctx = {l, numbers, paths, eb};
    nk_logscan_in in = {
        .magic = NK_RAFTLOG_FILE_MAGIC,
        .paths = paths,
        .numbers = numbers,
        .nfiles = n,
        .start_lsn = 1,
        .max_first_lsn = 0,
        .min_durable = 0,
        .fn = replay_one,
        .arg = &ctx,
        .what = "raftlog",
    };
    nk_logscan_out so = {.file_first_lsn = firsts, .file_size = sizes};
    rc = nk_logscan_run(rt, &in, &so, eb);
    if (rc != NK_OK) {
        goto out;
    }
    size_t keep = n;
    if (so.torn) {
        keep = so.cut_file + (so.cut_offset >= NK_LOGFILE_HDR_SIZE ? 1 : 0);
    }
    rc = nk_logseg_cut_tail(rt, "raftlog", l->dir, paths, n, keep, so.torn, so.cut_file,
                            so.cut_offset, NULL, false, eb);
    if (rc != NK_OK) {
        goto out;
    }
    for (size_t i = 0; i < keep; i++) {
        bool cut = so.torn && i == so.cut_file;
        l->segs[i].first_lsn = firsts[i];
        l->segs[i].size = cut ? so.cut_offset : sizes[i];
    }
    l->nsegs = keep;
    l->last_lsn = so.last_lsn;
    l->durable_lsn = so.last_lsn;
    l->next_number = n > 0 ? numbers[n - 1] + 1 : 1;
    if (so.torn) {
        nk_log(rt, NK_LOG_WARN,
               "raftlog: torn tail in %s at offset %" PRIu64 " (lsn %" PRIu64
               " never synced): discarded %" PRIu64 " bytes",
               paths[so.cut_file], so.cut_offset, so.last_lsn + 1, so.discarded);
    }
    rc = check_regions(l, eb);
out:
    free(paths);
    free(numbers);
    free(firsts);
    free(sizes);
    return rc;
}

/* Make the last kept segment the current one, or create the first. */
static int open_current(nk_raftlog *l, nk_errbuf *eb)
{
    int rc;
    if (l->nsegs > 0) {
        char *path = seg_path(l->dir, l->segs[l->nsegs - 1].number);
        if (path == NULL) {
            return NK_ENOMEM;
        }
        rc = nk_rt_file_open(l->rt, path, NK_OPEN_WRITE, &l->cur);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "raftlog: opening %s failed: %s", path, nk_errname(rc));
        }
        free(path);
        return rc;
    }
    uint64_t number = l->next_number++;
    char *path = seg_path(l->dir, number);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    nk_logfile_hdr h = {NK_RAFTLOG_FILE_MAGIC, number, l->last_lsn + 1, l->durable_lsn};
    rc = nk_logfile_create(l->rt, path, &h, NULL, &l->cur);
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(l->rt, l->cur);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(l->rt, l->dir);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "raftlog: creating segment %s failed: %s", path, nk_errname(rc));
    } else {
        l->segs[l->nsegs++] = (seg){number, l->last_lsn + 1, NK_LOGFILE_HDR_SIZE, 0};
    }
    free(path);
    return rc;
}

int nk_raftlog_open(nk_rt *rt, const char *dir, const nk_raftlog_options *o, nk_raftlog **out,
                    nk_errbuf *eb)
{
    *out = NULL;
    nk_raftlog *l = calloc(1, sizeof *l);
    if (l == NULL || (l->dir = strdup(dir)) == NULL) {
        free(l);
        nk_errbuf_set(eb, "raftlog: out of memory opening %s", dir);
        return NK_ENOMEM;
    }
    l->rt = rt;
    if (o != NULL) {
        l->o = *o;
    }
    if (l->o.segment_bytes == 0) {
        l->o.segment_bytes = DEFAULT_SEGMENT_BYTES;
    }
    if (l->o.cache_bytes == 0) {
        l->o.cache_bytes = DEFAULT_CACHE_BYTES;
    }
    nk_u64map_init(&l->regions);
    nk_u64map_init(&l->proj);
    nk_logseg_file *files = NULL;
    size_t n = 0;
    int rc = nk_logdir_ensure(rt, "raftlog", dir, eb);
    if (rc == NK_OK) {
        rc = nk_logseg_list(rt, "raftlog", dir, ".rlog", &files, &n, eb);
    }
    if (rc == NK_OK) {
        rc = recover(l, files, n, eb);
    }
    nk_logseg_files_free(files, n);
    if (rc == NK_OK) {
        rc = open_current(l, eb);
    }
    if (rc == NK_ENOMEM) {
        nk_errbuf_set(eb, "raftlog: out of memory opening %s", dir);
    }
    if (rc != NK_OK) {
        log_free(l);
        return rc;
    }
    l->stats.segments = l->nsegs;
    for (size_t i = 0; i < l->nsegs; i++) {
        l->stats.bytes += l->segs[i].size;
    }
    nk_log(rt, NK_LOG_INFO, "raftlog: opened %s: %zu segments, %zu regions, lsn %" PRIu64, dir,
           l->nsegs, l->regions.count, l->last_lsn);
    *out = l;
    return NK_OK;
}

uint64_t nk_raftlog_last_lsn(const nk_raftlog *l)
{
    return l->last_lsn;
}

uint64_t nk_raftlog_synced_lsn(const nk_raftlog *l)
{
    return l->durable_lsn;
}
