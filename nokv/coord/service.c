/*
 * service.c - the coordinator service (see service.h).
 */
#include "nokv/coord/service.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/coord.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/proto/wire.h"
#include "nokv/util/u64map.h"

#define FENCE_MAGIC 0x4643u /* "CF" */
#define META_MAGIC 0x4d43u  /* "CM" */
#define FILE_VERSION 1u
#define META_MAX_BYTES (512u * 1024u * 1024u)
#define DEFER_MAX 65536u            /* replies waiting for a flush */
#define CONN_BACKLOG_MAX (8u << 20) /* unsent reply bytes before BUSY */
#define PATH_CAP 1024

enum need { NEED_NONE = 0, NEED_FENCE = 1, NEED_META = 2 };

typedef struct store_ent {
    uint64_t id;
    char addr[NK_COORD_ADDR_MAX];
    bool seen;        /* a heartbeat arrived since this process started */
    bool alive;       /* last liveness verdict, to log transitions once */
    uint64_t last_ns; /* node-local monotonic time of the last heartbeat */
    uint64_t region_count, leader_count, capacity, available;
} store_ent;

typedef struct region_ent {
    nk_coord_region_report r;
} region_ent;

typedef struct conn_st {
    uint64_t id;
    bool hello;
    uint64_t store_id; /* from the HELLO; 0 for CLI tools */
} conn_st;

typedef struct deferred {
    uint64_t conn, req_id;
    uint8_t op;
    uint8_t need;
    nk_buf payload;
} deferred;

typedef struct alloc_state {
    uint64_t next;    /* next number to hand out */
    uint64_t fence;   /* in memory: numbers below it may be handed out */
    uint64_t durable; /* on disk: numbers below it may have been handed out */
} alloc_state;

struct nk_coord_service {
    nk_rt *rt;
    char addr[NK_COORD_ADDR_MAX];
    char workdir[PATH_CAP];
    uint64_t window;
    uint64_t store_timeout_ns;
    bool bug_reply_before_fence;
    nk_dirlock *lock;
    uint64_t listener;
    bool listening;

    nk_u64map conns;    /* conn id -> conn_st */
    nk_u64map stores;   /* store id -> store_ent */
    nk_u64map regions;  /* region id -> region_ent */
    region_ent **index; /* sorted by start key; ranges never overlap */
    size_t n_index, cap_index;

    alloc_state ids, tss;
    bool fence_dirty, meta_dirty;
    deferred *defer;
    size_t n_defer, cap_defer;
    uint64_t flush_timer, sweep_timer;

    nk_coord_service_info info;
    nk_coord_service_stats stats;
    int status;
    bool stopping;
    nk_buf out;         /* scratch for encoding */
    nk_coord_req req;   /* the request being handled (large: region descriptors) */
    nk_coord_resp resp; /* its answer */
};

/* ------------------------------------------------------------- files --- */

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    snprintf(out, cap, "%s%s%s", dir, slash ? "" : "/", name);
}

/* Write a small file atomically and durably: tmp, sync, rename, dir sync. */
static int write_atomic(nk_coord_service *s, const char *name, const nk_buf *b,
                        const char *failpoint)
{
    char path[PATH_CAP + 32], tmp[PATH_CAP + 40];
    join(path, sizeof(path), s->workdir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(s->rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc == NK_OK) {
        rc = nk_rt_file_write_at(s->rt, f, 0, b->data, b->len);
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(s->rt, f);
    }
    if (f != NULL) {
        nk_rt_file_close(s->rt, f);
    }
    if (rc == NK_OK) {
        rc = nk_failpoint(s->rt, failpoint);
    }
    if (rc == NK_OK) {
        rc = nk_rt_rename(s->rt, tmp, path);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(s->rt, s->workdir);
    }
    if (rc != NK_OK) {
        nk_log(s->rt, NK_LOG_ERROR, "coordinator: cannot write %s: %s", path, nk_strerror(rc));
    }
    return rc;
}

/* Read a whole file into b. NK_ENOENT when it does not exist. */
static int read_whole(nk_coord_service *s, const char *name, size_t max, nk_buf *b, nk_errbuf *eb)
{
    char path[PATH_CAP + 32];
    join(path, sizeof(path), s->workdir, name);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(s->rt, path, NK_OPEN_READ, &f);
    if (rc == NK_ENOENT) {
        return rc;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot open: %s", path, nk_strerror(rc));
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(s->rt, f, &size);
    if (rc == NK_OK && size > max) {
        nk_errbuf_set(eb, "%s: %" PRIu64 " bytes, more than a coordinator file can hold", path,
                      size);
        rc = NK_ECORRUPT;
    } else if (rc == NK_OK) {
        nk_buf_clear(b);
        rc = nk_buf_reserve(b, (size_t)size + 1);
        size_t got = 0;
        if (rc == NK_OK) {
            rc = nk_rt_file_read_at(s->rt, f, 0, b->data, (size_t)size, &got);
        }
        if (rc == NK_OK && got != size) {
            rc = NK_EIO;
        }
        if (rc == NK_OK) {
            b->len = got;
        } else {
            nk_errbuf_set(eb, "%s: cannot read: %s", path, nk_strerror(rc));
        }
    }
    nk_rt_file_close(s->rt, f);
    return rc;
}

static int write_fence(nk_coord_service *s)
{
    nk_buf b = {0};
    int rc = nk_wire_begin(&b, FENCE_MAGIC, FILE_VERSION);
    rc = rc ? rc : nk_wire_put_u64(&b, s->ids.fence);
    rc = rc ? rc : nk_wire_put_u64(&b, s->tss.fence);
    rc = rc ? rc : nk_wire_end(&b);
    rc = rc ? rc : write_atomic(s, NK_COORD_FENCE_FILE, &b, "coord.fence.before_rename");
    nk_buf_free(&b);
    s->stats.fence_writes++;
    return rc;
}

static int store_cmp(const void *a, const void *b)
{
    const store_ent *x = *(store_ent *const *)a, *y = *(store_ent *const *)b;
    return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

/* The stores sorted by id (the map's order is an implementation detail). */
static store_ent **sorted_stores(nk_coord_service *s, size_t *n)
{
    *n = 0;
    store_ent **v = malloc((s->stores.count + 1) * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->stores, &pos, &key, &val)) {
        v[(*n)++] = val;
    }
    qsort(v, *n, sizeof(*v), store_cmp);
    return v;
}

static int write_meta(nk_coord_service *s)
{
    size_t n = 0;
    store_ent **st = sorted_stores(s, &n);
    if (st == NULL) {
        return NK_ENOMEM;
    }
    nk_buf b = {0};
    int rc = nk_wire_begin(&b, META_MAGIC, FILE_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(&b, n);
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        rc = nk_wire_put_uvar(&b, st[i]->id);
        rc = rc ? rc : nk_wire_put_str(&b, st[i]->addr);
    }
    free(st);
    /* Key order, so the same catalog always gives the same bytes. */
    rc = rc ? rc : nk_wire_put_uvar(&b, s->n_index);
    for (size_t i = 0; rc == NK_OK && i < s->n_index; i++) {
        rc = nk_coord_report_put(&b, &s->index[i]->r);
    }
    rc = rc ? rc : nk_wire_end(&b);
    rc = rc ? rc : write_atomic(s, NK_COORD_META_FILE, &b, "coord.meta.before_rename");
    nk_buf_free(&b);
    s->stats.meta_writes++;
    return rc;
}

/* ------------------------------------------------------ range index --- */

static int start_cmp_key(const region_ent *e, const uint8_t *k, size_t kl)
{
    return nk_bytes_cmp(e->r.region.start, e->r.region.start_len, k, kl);
}

/* First index whose start is > key (strict) or >= key (!strict). */
static size_t index_bound(nk_coord_service *s, const uint8_t *k, size_t kl, bool strict)
{
    size_t lo = 0, hi = s->n_index;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = start_cmp_key(s->index[mid], k, kl);
        if (c < 0 || (strict && c == 0)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static region_ent *index_lookup(nk_coord_service *s, const uint8_t *k, size_t kl)
{
    size_t i = index_bound(s, k, kl, true);
    if (i == 0) {
        return NULL;
    }
    region_ent *e = s->index[i - 1];
    return nk_region_contains(&e->r.region, k, kl) ? e : NULL;
}

static int index_insert(nk_coord_service *s, region_ent *e)
{
    if (s->n_index == s->cap_index) {
        size_t cap = s->cap_index ? s->cap_index * 2 : 64;
        region_ent **v = realloc(s->index, cap * sizeof(*v));
        if (v == NULL) {
            return NK_ENOMEM;
        }
        s->index = v;
        s->cap_index = cap;
    }
    size_t i = index_bound(s, e->r.region.start, e->r.region.start_len, false);
    memmove(s->index + i + 1, s->index + i, (s->n_index - i) * sizeof(*s->index));
    s->index[i] = e;
    s->n_index++;
    return NK_OK;
}

static void index_remove(nk_coord_service *s, region_ent *e)
{
    size_t i = index_bound(s, e->r.region.start, e->r.region.start_len, false);
    if (i >= s->n_index || s->index[i] != e) {
        for (i = 0; i < s->n_index && s->index[i] != e; i++) {
        }
    }
    if (i < s->n_index) {
        memmove(s->index + i, s->index + i + 1, (s->n_index - i - 1) * sizeof(*s->index));
        s->n_index--;
    }
}

static bool ends_after(const nk_region *r, const uint8_t *k, size_t kl)
{
    return r->end_len == 0 || nk_bytes_cmp(r->end, r->end_len, k, kl) > 0;
}

/* Regions (other than `self`) whose range intersects r's. Caller frees. */
static region_ent **overlapping(nk_coord_service *s, const nk_region *r, uint64_t self, size_t *n)
{
    *n = 0;
    size_t i = index_bound(s, r->start, r->start_len, true);
    if (i > 0 && ends_after(&s->index[i - 1]->r.region, r->start, r->start_len)) {
        i--;
    }
    size_t j = i;
    while (j < s->n_index &&
           (r->end_len == 0 || start_cmp_key(s->index[j], r->end, r->end_len) < 0)) {
        j++;
    }
    region_ent **v = malloc((j - i + 1) * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    for (size_t k = i; k < j; k++) {
        if (s->index[k]->r.region.id != self) {
            v[(*n)++] = s->index[k];
        }
    }
    return v;
}

static bool same_descriptor(const nk_region *a, const nk_region *b)
{
    if (a->start_len != b->start_len || a->end_len != b->end_len || a->n_peers != b->n_peers ||
        memcmp(a->start, b->start, a->start_len) != 0 || memcmp(a->end, b->end, a->end_len) != 0) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_peers; i++) {
        if (a->peers[i].peer_id != b->peers[i].peer_id ||
            a->peers[i].store_id != b->peers[i].store_id || a->peers[i].role != b->peers[i].role) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------- learn state --- */

static void fill_store_info(nk_coord_service *s, const store_ent *e, nk_coord_store_info *si)
{
    uint64_t now = nk_rt_now(s->rt);
    memset(si, 0, sizeof(*si));
    si->store_id = e->id;
    snprintf(si->addr, sizeof(si->addr), "%s", e->addr);
    si->alive = e->seen && now - e->last_ns <= s->store_timeout_ns;
    si->heartbeat_age_ms = e->seen ? (now - e->last_ns) / NK_NSEC_PER_MSEC : NK_COORD_AGE_NEVER;
    si->region_count = e->region_count;
    si->leader_count = e->leader_count;
    si->capacity = e->capacity;
    si->available = e->available;
}

static void fill_region_info(nk_coord_service *s, const region_ent *e, nk_coord_region_info *ri)
{
    ri->r = e->r;
    ri->leader_addr[0] = '\0';
    if (e->r.leader_store_id != 0) {
        const store_ent *st = nk_u64map_get(&s->stores, e->r.leader_store_id);
        if (st != NULL) {
            snprintf(ri->leader_addr, sizeof(ri->leader_addr), "%s", st->addr);
        }
    }
}

static void on_heartbeat(nk_coord_service *s, const nk_coord_store_hb *hb, nk_coord_resp *p)
{
    if (hb->store_id == 0 || hb->addr[0] == '\0') {
        p->code = NK_COORD_INVALID;
        snprintf(p->msg, sizeof(p->msg), "heartbeat needs a store id and an address");
        return;
    }
    uint64_t now = nk_rt_now(s->rt);
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->stores, &pos, &key, &val)) {
        store_ent *o = val;
        if (o->id != hb->store_id && strcmp(o->addr, hb->addr) == 0 && o->seen &&
            now - o->last_ns <= s->store_timeout_ns) {
            p->accepted = false;
            snprintf(p->msg, sizeof(p->msg),
                     "address %s belongs to live store %" PRIu64 "; two stores cannot share it",
                     hb->addr, o->id);
            nk_log(s->rt, NK_LOG_WARN, "coordinator: store %" PRIu64 " refused: %s", hb->store_id,
                   p->msg);
            return;
        }
    }
    store_ent *e = nk_u64map_get(&s->stores, hb->store_id);
    if (e == NULL) {
        if (s->stores.count >= NK_COORD_MAX_STORES) {
            p->code = NK_COORD_BUSY;
            snprintf(p->msg, sizeof(p->msg), "store registry full (%u stores)",
                     NK_COORD_MAX_STORES);
            return;
        }
        e = calloc(1, sizeof(*e));
        if (e == NULL || nk_u64map_put(&s->stores, hb->store_id, e) != NK_OK) {
            free(e);
            p->code = NK_COORD_BUSY;
            snprintf(p->msg, sizeof(p->msg), "out of memory");
            return;
        }
        e->id = hb->store_id;
        snprintf(e->addr, sizeof(e->addr), "%s", hb->addr);
        s->meta_dirty = true;
        p->need_full_report = true; /* nothing it hosts can be trusted to be known */
        nk_log(s->rt, NK_LOG_INFO, "coordinator: store %" PRIu64 " joined at %s", e->id, e->addr);
    } else if (strcmp(e->addr, hb->addr) != 0) {
        nk_log(s->rt, NK_LOG_INFO, "coordinator: store %" PRIu64 " moved from %s to %s", e->id,
               e->addr, hb->addr);
        snprintf(e->addr, sizeof(e->addr), "%s", hb->addr);
        s->meta_dirty = true;
    }
    if (!e->alive) {
        nk_log(s->rt, NK_LOG_INFO,
               "coordinator: store %" PRIu64 " is alive (%" PRIu64 " regions, %" PRIu64 " leaders)",
               e->id, hb->region_count, hb->leader_count);
    }
    e->seen = true;
    e->alive = true;
    e->last_ns = now;
    e->region_count = hb->region_count;
    e->leader_count = hb->leader_count;
    e->capacity = hb->capacity;
    e->available = hb->available;
    p->accepted = true;
}

static void drop_region(nk_coord_service *s, region_ent *e)
{
    index_remove(s, e);
    nk_u64map_del(&s->regions, e->r.region.id);
    free(e);
}

static void on_report(nk_coord_service *s, const nk_coord_region_report *rep, nk_coord_resp *p)
{
    const nk_region *nr = &rep->region;
    region_ent *old = nk_u64map_get(&s->regions, nr->id);
    p->accepted = false;
    if (old != NULL) {
        const nk_region_epoch *oe = &old->r.region.epoch;
        if (nr->epoch.version < oe->version || nr->epoch.conf_version < oe->conf_version) {
            snprintf(p->msg, sizeof(p->msg),
                     "stale: region %" PRIu64 " epoch %" PRIu64 "/%" PRIu64
                     " is older than the known %" PRIu64 "/%" PRIu64,
                     nr->id, nr->epoch.version, nr->epoch.conf_version, oe->version,
                     oe->conf_version);
            return;
        }
        if (nr->epoch.version == oe->version && nr->epoch.conf_version == oe->conf_version) {
            if (!same_descriptor(nr, &old->r.region)) {
                snprintf(p->msg, sizeof(p->msg),
                         "conflict: region %" PRIu64 " epoch %" PRIu64 "/%" PRIu64
                         " already known with another range or peer list",
                         nr->id, oe->version, oe->conf_version);
                nk_log(s->rt, NK_LOG_WARN, "coordinator: %s", p->msg);
                return;
            }
            if (rep->term < old->r.term) {
                snprintf(p->msg, sizeof(p->msg),
                         "stale: leader term %" PRIu64 " is older than the known %" PRIu64,
                         rep->term, old->r.term);
                return;
            }
            /* Leadership is soft state: no durable write needed for it. */
            if (rep->leader_peer_id != old->r.leader_peer_id || rep->term != old->r.term) {
                nk_log(s->rt, NK_LOG_DEBUG,
                       "coordinator: region %" PRIu64 " leader peer %" PRIu64 " on store %" PRIu64
                       " (term %" PRIu64 ")",
                       nr->id, rep->leader_peer_id, rep->leader_store_id, rep->term);
            }
            old->r = *rep;
            p->accepted = true;
            return;
        }
    }
    size_t n = 0;
    region_ent **ov = overlapping(s, nr, nr->id, &n);
    if (ov == NULL) {
        p->code = NK_COORD_BUSY;
        snprintf(p->msg, sizeof(p->msg), "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (ov[i]->r.region.epoch.version >= nr->epoch.version) {
            snprintf(p->msg, sizeof(p->msg),
                     "stale: region %" PRIu64 " (version %" PRIu64 ") overlaps region %" PRIu64
                     " whose version %" PRIu64 " is not older",
                     nr->id, nr->epoch.version, ov[i]->r.region.id, ov[i]->r.region.epoch.version);
            free(ov);
            return;
        }
    }
    if (old == NULL && s->regions.count >= NK_COORD_MAX_REGIONS) {
        free(ov);
        p->code = NK_COORD_BUSY;
        snprintf(p->msg, sizeof(p->msg), "region catalog full (%u regions)", NK_COORD_MAX_REGIONS);
        return;
    }
    region_ent *e = old;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL || nk_u64map_put(&s->regions, nr->id, e) != NK_OK) {
            free(e);
            free(ov);
            p->code = NK_COORD_BUSY;
            snprintf(p->msg, sizeof(p->msg), "out of memory");
            return;
        }
    } else {
        index_remove(s, e);
    }
    for (size_t i = 0; i < n; i++) {
        nk_log(s->rt, NK_LOG_INFO,
               "coordinator: region %" PRIu64 " superseded by region %" PRIu64 " (version %" PRIu64
               ")",
               ov[i]->r.region.id, nr->id, nr->epoch.version);
        drop_region(s, ov[i]);
    }
    free(ov);
    e->r = *rep;
    if (index_insert(s, e) != NK_OK) {
        nk_u64map_del(&s->regions, nr->id);
        free(e);
        s->meta_dirty = true;
        p->code = NK_COORD_BUSY;
        snprintf(p->msg, sizeof(p->msg), "out of memory");
        return;
    }
    nk_log(s->rt, NK_LOG_INFO,
           "coordinator: region %" PRIu64 " %s: epoch %" PRIu64 "/%" PRIu64 ", %u peers, leader "
           "store %" PRIu64,
           nr->id, old ? "updated" : "learned", nr->epoch.version, nr->epoch.conf_version,
           nr->n_peers, rep->leader_store_id);
    s->meta_dirty = true;
    p->accepted = true;
}

/* Hand out [first, first+count). Returns whether the reply must wait for
 * the fence to be durable. */
static bool on_alloc(nk_coord_service *s, alloc_state *a, uint64_t count, nk_coord_resp *p)
{
    if (count == 0) {
        count = 1;
    }
    if (count > NK_COORD_ALLOC_MAX) {
        p->code = NK_COORD_INVALID;
        snprintf(p->msg, sizeof(p->msg), "count %" PRIu64 " is above the limit %u", count,
                 NK_COORD_ALLOC_MAX);
        return false;
    }
    if (a->next > UINT64_MAX - count - s->window) {
        p->code = NK_COORD_INVALID;
        snprintf(p->msg, sizeof(p->msg), "number space exhausted");
        return false;
    }
    if (a->next + count > a->fence) {
        a->fence = a->next + count + s->window;
        s->fence_dirty = true;
    }
    p->first = a->next;
    p->count = count;
    a->next += count;
    return a->next > a->durable && !s->bug_reply_before_fence;
}

/* ------------------------------------------------------------- flush --- */

static void send_error(nk_coord_service *s, uint64_t conn, uint64_t req_id, uint8_t op,
                       uint8_t code, const char *msg)
{
    nk_coord_resp p;
    memset(&p, 0, sizeof(p));
    p.id = req_id;
    p.op = op;
    p.code = code;
    snprintf(p.msg, sizeof(p.msg), "%s", msg);
    if (nk_coord_resp_encode(&p, &s->out) == NK_OK) {
        (void)nk_rt_send(s->rt, conn, NK_KIND_COORD_RESP, s->out.data, s->out.len);
    }
}

/* Write what is dirty, then release the replies that waited for it. */
static void flush_now(nk_coord_service *s)
{
    int frc = NK_OK, mrc = NK_OK;
    if (s->fence_dirty) {
        uint64_t idf = s->ids.fence, tsf = s->tss.fence;
        frc = write_fence(s);
        if (frc == NK_OK) {
            s->ids.durable = idf;
            s->tss.durable = tsf;
            s->fence_dirty = s->ids.fence != idf || s->tss.fence != tsf;
        }
    }
    if (s->meta_dirty) {
        mrc = write_meta(s);
        if (mrc == NK_OK) {
            s->meta_dirty = false;
        }
    }
    if (frc != NK_OK || mrc != NK_OK) {
        s->stats.persist_failures++;
        if (s->status == NK_OK) {
            s->status = frc != NK_OK ? frc : mrc;
        }
    }
    deferred *d = s->defer;
    size_t n = s->n_defer;
    s->defer = NULL;
    s->n_defer = s->cap_defer = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = d[i].need == NEED_FENCE ? frc : mrc;
        if (rc == NK_OK) {
            (void)nk_rt_send(s->rt, d[i].conn, NK_KIND_COORD_RESP, d[i].payload.data,
                             d[i].payload.len);
        } else {
            char msg[NK_COORD_MSG_MAX];
            snprintf(msg, sizeof(msg), "coordinator cannot persist its state (%s); retry later",
                     nk_strerror(rc));
            send_error(s, d[i].conn, d[i].req_id, d[i].op, NK_COORD_NOT_READY, msg);
        }
        nk_buf_free(&d[i].payload);
    }
    free(d);
}

static void flush_cb(void *arg)
{
    nk_coord_service *s = arg;
    s->flush_timer = 0;
    flush_now(s);
}

static void schedule_flush(nk_coord_service *s)
{
    if (s->flush_timer == 0) {
        /* Zero delay: everything that arrives in this loop iteration shares
         * one write and one fsync. */
        s->flush_timer = nk_rt_timer_start(s->rt, 0, flush_cb, s);
    }
}

static void defer_reply(nk_coord_service *s, uint64_t conn, const nk_coord_resp *p, uint8_t need)
{
    if (s->n_defer >= DEFER_MAX) {
        send_error(s, conn, p->id, p->op, NK_COORD_BUSY, "too many requests waiting for a flush");
        return;
    }
    if (s->n_defer == s->cap_defer) {
        size_t cap = s->cap_defer ? s->cap_defer * 2 : 16;
        deferred *v = realloc(s->defer, cap * sizeof(*v));
        if (v == NULL) {
            send_error(s, conn, p->id, p->op, NK_COORD_BUSY, "out of memory");
            return;
        }
        s->defer = v;
        s->cap_defer = cap;
    }
    deferred *d = &s->defer[s->n_defer];
    memset(d, 0, sizeof(*d));
    d->conn = conn;
    d->req_id = p->id;
    d->op = p->op;
    d->need = need;
    if (nk_buf_assign(&d->payload, s->out.data, s->out.len) != NK_OK) {
        send_error(s, conn, p->id, p->op, NK_COORD_BUSY, "out of memory");
        return;
    }
    s->n_defer++;
    schedule_flush(s);
}

/* ----------------------------------------------------------- requests --- */

static void list_regions(nk_coord_service *s, const nk_coord_req *q, nk_coord_resp *p)
{
    uint64_t limit = q->limit == 0 ? NK_COORD_LIST_DEFAULT : q->limit;
    if (limit > NK_COORD_LIST_MAX) {
        limit = NK_COORD_LIST_MAX;
    }
    size_t i = index_bound(s, q->key, q->key_len, false);
    size_t n = s->n_index - i < limit ? s->n_index - i : (size_t)limit;
    if (n > 0) {
        p->regions = calloc(n, sizeof(*p->regions));
        if (p->regions == NULL) {
            p->code = NK_COORD_BUSY;
            snprintf(p->msg, sizeof(p->msg), "out of memory");
            return;
        }
    }
    for (size_t k = 0; k < n; k++) {
        fill_region_info(s, s->index[i + k], &p->regions[k]);
    }
    p->n_regions = n;
    p->more = i + n < s->n_index;
}

static void list_stores(nk_coord_service *s, nk_coord_resp *p)
{
    size_t n = 0;
    store_ent **st = sorted_stores(s, &n);
    if (st == NULL || (n > 0 && (p->stores = calloc(n, sizeof(*p->stores))) == NULL)) {
        free(st);
        p->code = NK_COORD_BUSY;
        snprintf(p->msg, sizeof(p->msg), "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fill_store_info(s, st[i], &p->stores[i]);
    }
    p->n_stores = n;
    free(st);
}

static void handle(nk_coord_service *s, const conn_st *c, const nk_coord_req *q)
{
    uint64_t conn = c->id;
    nk_coord_resp *p = &s->resp;
    memset(p, 0, sizeof(*p));
    p->id = q->id;
    p->op = q->op;
    p->code = NK_COORD_OK;
    uint8_t need = NEED_NONE;
    s->stats.requests++;
    if (nk_rt_conn_pending(s->rt, conn) > CONN_BACKLOG_MAX) {
        send_error(s, conn, q->id, q->op, NK_COORD_BUSY,
                   "replies are piling up on this connection; read them first");
        return;
    }
    region_ent *e;
    store_ent *st;
    switch (q->op) {
    case NK_COORD_STORE_HEARTBEAT:
        if (c->store_id != 0 && c->store_id != q->hb.store_id) {
            /* A misconfigured store must not beat for another one. */
            p->code = NK_COORD_INVALID;
            snprintf(p->msg, sizeof(p->msg),
                     "heartbeat for store %" PRIu64 " on a connection that said HELLO as store "
                     "%" PRIu64,
                     q->hb.store_id, c->store_id);
            break;
        }
        on_heartbeat(s, &q->hb, p);
        need = s->meta_dirty ? NEED_META : NEED_NONE;
        break;
    case NK_COORD_REGION_REPORT:
        on_report(s, &q->report, p);
        need = s->meta_dirty ? NEED_META : NEED_NONE;
        break;
    case NK_COORD_GET_REGION_BY_KEY:
        e = index_lookup(s, q->key, q->key_len);
        if (e == NULL) {
            p->code = NK_COORD_NOT_FOUND;
            snprintf(p->msg, sizeof(p->msg), "no known region holds this key (%zu regions known)",
                     s->n_index);
        } else {
            fill_region_info(s, e, &p->region);
        }
        break;
    case NK_COORD_GET_REGION:
        e = nk_u64map_get(&s->regions, q->region_id);
        if (e == NULL) {
            p->code = NK_COORD_NOT_FOUND;
            snprintf(p->msg, sizeof(p->msg), "region %" PRIu64 " is not known", q->region_id);
        } else {
            fill_region_info(s, e, &p->region);
        }
        break;
    case NK_COORD_GET_STORE:
        st = q->store_id ? nk_u64map_get(&s->stores, q->store_id) : NULL;
        if (st == NULL) {
            p->code = NK_COORD_NOT_FOUND;
            snprintf(p->msg, sizeof(p->msg), "store %" PRIu64 " is not registered", q->store_id);
        } else {
            fill_store_info(s, st, &p->store);
        }
        break;
    case NK_COORD_LIST_STORES:
        list_stores(s, p);
        break;
    case NK_COORD_LIST_REGIONS:
        list_regions(s, q, p);
        break;

    case NK_COORD_ALLOC_ID:
        need = on_alloc(s, &s->ids, q->count, p) ? NEED_FENCE : NEED_NONE;
        break;
    case NK_COORD_TSO:
        need = on_alloc(s, &s->tss, q->count, p) ? NEED_FENCE : NEED_NONE;
        break;
    default:
        break;
    }
    /* What a lookup says must survive a crash: wait for the catalog write
     * that a report in this same loop iteration started. */
    if (s->meta_dirty && (q->op == NK_COORD_GET_REGION || q->op == NK_COORD_GET_REGION_BY_KEY ||
                          q->op == NK_COORD_LIST_REGIONS)) {
        need = NEED_META;
    }
    if (p->code != NK_COORD_OK) {
        need = NEED_NONE;
    }
    int rc = nk_coord_resp_encode(p, &s->out);
    nk_coord_resp_free(p);
    if (rc != NK_OK) {
        send_error(s, conn, q->id, q->op, NK_COORD_BUSY, "cannot encode the reply");
        return;
    }
    if (need != NEED_NONE) {
        defer_reply(s, conn, p, need);
    } else {
        (void)nk_rt_send(s->rt, conn, NK_KIND_COORD_RESP, s->out.data, s->out.len);
    }
}

/* ------------------------------------------------------------ network --- */

static void drop_conn(nk_coord_service *s, uint64_t id, bool close_it)
{
    conn_st *c = nk_u64map_del(&s->conns, id);
    if (close_it) {
        (void)nk_rt_close(s->rt, id);
    }
    free(c);
}

static void on_accept(void *ctx, uint64_t listener_id, uint64_t conn, const char *peer_addr)
{
    nk_coord_service *s = ctx;
    (void)listener_id;
    conn_st *c = calloc(1, sizeof(*c));
    if (s->stopping || c == NULL || nk_u64map_put(&s->conns, conn, c) != NK_OK) {
        free(c);
        (void)nk_rt_close(s->rt, conn);
        return;
    }
    c->id = conn;
    nk_log(s->rt, NK_LOG_DEBUG, "coordinator: connection %" PRIu64 " from %s", conn, peer_addr);
}

static void on_connect(void *ctx, uint64_t conn, int status)
{
    (void)ctx;
    (void)conn;
    (void)status;
}

static void bad_frame(nk_coord_service *s, conn_st *c, const char *what, int rc)
{
    s->stats.bad_frames++;
    nk_log(s->rt, NK_LOG_WARN,
           "coordinator: closing connection %" PRIu64 " (store %" PRIu64 "): %s (%s)", c->id,
           c->store_id, what, nk_errname(rc));
    drop_conn(s, c->id, true);
}

static void on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_coord_service *s = ctx;
    conn_st *c = nk_u64map_get(&s->conns, conn);
    if (c == NULL) {
        return;
    }
    if (!c->hello) {
        nk_hello h;
        int rc = kind == NK_KIND_HELLO ? nk_hello_decode(data, len, &h) : NK_EPROTO;
        if (rc != NK_OK || h.service != NK_SERVICE_COORD) {
            bad_frame(s, c, "first frame is not a coordinator HELLO", rc ? rc : NK_EPROTO);
            return;
        }
        c->hello = true;
        c->store_id = h.store_id;
        return;
    }
    if (kind != NK_KIND_COORD_REQ) {
        bad_frame(s, c, "frame kind is not a coordinator request", NK_EPROTO);
        return;
    }
    int rc = nk_coord_req_decode(data, len, &s->req);
    if (rc != NK_OK) {
        bad_frame(s, c, "malformed coordinator request", rc);
        return;
    }
    handle(s, c, &s->req);
}

static void on_close(void *ctx, uint64_t conn, int reason)
{
    nk_coord_service *s = ctx;
    (void)reason;
    drop_conn(s, conn, false);
}

static const nk_net_handlers handlers = {on_accept, on_connect, on_message, on_close};

/* ----------------------------------------------------------- liveness --- */

static void sweep_cb(void *arg)
{
    nk_coord_service *s = arg;
    s->sweep_timer = 0;
    if (s->stopping) {
        return;
    }
    uint64_t now = nk_rt_now(s->rt);
    size_t n = 0;
    store_ent **st = sorted_stores(s, &n);
    for (size_t i = 0; st != NULL && i < n; i++) {
        store_ent *e = st[i];
        if (e->alive && now - e->last_ns > s->store_timeout_ns) {
            e->alive = false;
            nk_log(s->rt, NK_LOG_WARN,
                   "coordinator: store %" PRIu64 " at %s is down: no heartbeat for %" PRIu64 " ms",
                   e->id, e->addr, (now - e->last_ns) / NK_NSEC_PER_MSEC);
        }
    }
    free(st);
    s->sweep_timer = nk_rt_timer_start(s->rt, s->store_timeout_ns / 2, sweep_cb, s);
}

/* ------------------------------------------------------------ recovery --- */

static int load_fence(nk_coord_service *s, nk_buf *b, bool *found, nk_errbuf *eb)
{
    *found = false;
    int rc = read_whole(s, NK_COORD_FENCE_FILE, 4096, b, eb);
    if (rc == NK_ENOENT) {
        return NK_OK;
    }
    if (rc != NK_OK) {
        return rc;
    }
    nk_wire_rd rd;
    rc = nk_wire_open(&rd, b->data, b->len, FENCE_MAGIC, FILE_VERSION, NULL);
    uint64_t idf = 0, tsf = 0;
    if (rc == NK_OK) {
        idf = nk_wire_get_u64(&rd);
        tsf = nk_wire_get_u64(&rd);
        rc = nk_wire_close(&rd);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb,
                      "%s/%s does not verify (%s): the allocator fences are unknown, so a "
                      "restart could hand out an ID or timestamp twice. Restore the file, or "
                      "move it away and restart with --id-start/--ts-start above every value "
                      "ever handed out",
                      s->workdir, NK_COORD_FENCE_FILE, nk_errname(rc));
        return NK_ECORRUPT;
    }
    *found = true;
    s->ids.fence = s->ids.durable = idf;
    s->tss.fence = s->tss.durable = tsf;
    return NK_OK;
}

static int load_meta(nk_coord_service *s, nk_buf *b, bool *found, nk_errbuf *eb)
{
    *found = false;
    int rc = read_whole(s, NK_COORD_META_FILE, META_MAX_BYTES, b, eb);
    if (rc == NK_ENOENT) {
        return NK_OK;
    }
    if (rc != NK_OK) {
        return rc;
    }
    nk_wire_rd rd;
    rc = nk_wire_open(&rd, b->data, b->len, META_MAGIC, FILE_VERSION, NULL);
    if (rc == NK_OK) {
        uint64_t n = nk_wire_get_uvar(&rd);
        if (n > NK_COORD_MAX_STORES) {
            rd.bad = true;
        }
        for (uint64_t i = 0; !rd.bad && i < n; i++) {
            store_ent *e = calloc(1, sizeof(*e));
            if (e == NULL) {
                return NK_ENOMEM;
            }
            e->id = nk_wire_get_uvar(&rd);
            nk_wire_get_str(&rd, e->addr, sizeof(e->addr));
            if (rd.bad || e->id == 0 || nk_u64map_get(&s->stores, e->id) != NULL ||
                nk_u64map_put(&s->stores, e->id, e) != NK_OK) {
                free(e);
                rd.bad = true;
            }
        }
        n = nk_wire_get_uvar(&rd);
        if (n > NK_COORD_MAX_REGIONS) {
            rd.bad = true;
        }
        for (uint64_t i = 0; !rd.bad && i < n; i++) {
            region_ent *e = calloc(1, sizeof(*e));
            if (e == NULL) {
                return NK_ENOMEM;
            }
            size_t nov = 1;
            region_ent **ov = NULL;
            if (nk_coord_report_get(&rd, &e->r) == NK_OK &&
                nk_u64map_get(&s->regions, e->r.region.id) == NULL &&
                (ov = overlapping(s, &e->r.region, 0, &nov)) != NULL && nov == 0 &&
                nk_u64map_put(&s->regions, e->r.region.id, e) == NK_OK) {
                if (index_insert(s, e) != NK_OK) {
                    nk_u64map_del(&s->regions, e->r.region.id);
                    free(e);
                    rd.bad = true;
                }
            } else {
                free(e);
                rd.bad = true;
            }
            free(ov);
        }
        rc = nk_wire_close(&rd);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb,
                      "%s/%s does not verify (%s): the store registry and region catalog "
                      "cannot be trusted. Restore the file, or move it away: stores re-report "
                      "their regions on their next heartbeat",
                      s->workdir, NK_COORD_META_FILE, nk_errname(rc));
        return NK_ECORRUPT;
    }
    *found = true;
    return NK_OK;
}

static int ensure_workdir(nk_rt *rt, const char *dir, nk_errbuf *eb)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, dir, &st);
    if (rc == NK_OK && !st.is_dir) {
        nk_errbuf_set(eb, "%s exists and is not a directory", dir);
        return NK_ENOTDIR;
    }
    if (rc == NK_OK) {
        return NK_OK;
    }
    if (rc != NK_ENOENT) {
        nk_errbuf_set(eb, "%s: cannot stat: %s", dir, nk_strerror(rc));
        return rc;
    }
    rc = nk_rt_dir_create(rt, dir);
    if (rc == NK_OK) {
        char parent[PATH_CAP];
        snprintf(parent, sizeof(parent), "%s", dir);
        size_t l = strlen(parent);
        while (l > 1 && parent[l - 1] == '/') {
            parent[--l] = '\0';
        }
        char *slash = strrchr(parent, '/');
        if (slash == NULL) {
            snprintf(parent, sizeof(parent), ".");
        } else if (slash == parent) {
            parent[1] = '\0';
        } else {
            *slash = '\0';
        }
        rc = nk_rt_dir_sync(rt, parent);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot create the workdir: %s", dir, nk_strerror(rc));
    }
    return rc;
}

static void free_state(nk_coord_service *s)
{
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->stores, &pos, &key, &val)) {
        free(val);
    }
    pos = 0;
    while (nk_u64map_next(&s->regions, &pos, &key, &val)) {
        free(val);
    }
    pos = 0;
    while (nk_u64map_next(&s->conns, &pos, &key, &val)) {
        free(val);
    }
    nk_u64map_free(&s->stores);
    nk_u64map_free(&s->regions);
    nk_u64map_free(&s->conns);
    free(s->index);
    for (size_t i = 0; i < s->n_defer; i++) {
        nk_buf_free(&s->defer[i].payload);
    }
    free(s->defer);
    nk_buf_free(&s->out);
}

int nk_coord_service_start(nk_rt *rt, const nk_coord_service_config *cfg, nk_coord_service **out,
                           nk_errbuf *eb)
{
    *out = NULL;
    if (cfg->addr == NULL || cfg->workdir == NULL || cfg->workdir[0] == '\0' ||
        strlen(cfg->addr) >= NK_COORD_ADDR_MAX || strlen(cfg->workdir) >= PATH_CAP - 32) {
        nk_errbuf_set(eb, "coordinator needs a listen address and a workdir (at most %d bytes)",
                      PATH_CAP - 32);
        return NK_EINVAL;
    }
    nk_coord_service *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NK_ENOMEM;
    }
    s->rt = rt;
    snprintf(s->addr, sizeof(s->addr), "%s", cfg->addr);
    snprintf(s->workdir, sizeof(s->workdir), "%s", cfg->workdir);
    s->window = cfg->window ? cfg->window : 1000;
    if (s->window > (UINT64_C(1) << 32)) {
        s->window = UINT64_C(1) << 32; /* keeps next + count + window far from overflow */
    }
    s->store_timeout_ns = cfg->store_timeout_ns ? cfg->store_timeout_ns : 5 * NK_NSEC_PER_SEC;
    s->bug_reply_before_fence = cfg->test_reply_before_fence;
    uint64_t id_start = cfg->id_start ? cfg->id_start : 1;
    uint64_t ts_start = cfg->ts_start ? cfg->ts_start : 1;
    nk_u64map_init(&s->conns);
    nk_u64map_init(&s->stores);
    nk_u64map_init(&s->regions);

    nk_buf b = {0};
    bool have_fence = false, have_meta = false;
    int rc = ensure_workdir(rt, s->workdir, eb);
    if (rc == NK_OK) {
        rc = nk_rt_dir_lock(rt, s->workdir, &s->lock);
        if (rc != NK_OK) {
            s->lock = NULL;
            nk_errbuf_set(eb,
                          "%s: cannot lock the workdir (%s): is another coordinator "
                          "running on it?",
                          s->workdir, nk_strerror(rc));
        }
    }
    rc = rc ? rc : load_fence(s, &b, &have_fence, eb);
    rc = rc ? rc : load_meta(s, &b, &have_meta, eb);
    nk_buf_free(&b);
    if (rc == NK_OK && !have_fence && have_meta) {
        nk_errbuf_set(eb,
                      "%s has %s but no %s: the allocator fences are lost, so a restart could "
                      "hand out an ID or timestamp twice. Restore %s, or restart with "
                      "--id-start/--ts-start above every value ever handed out after moving "
                      "%s away",
                      s->workdir, NK_COORD_META_FILE, NK_COORD_FENCE_FILE, NK_COORD_FENCE_FILE,
                      NK_COORD_META_FILE);
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        s->ids.next = s->ids.fence > id_start ? s->ids.fence : id_start;
        s->tss.next = s->tss.fence > ts_start ? s->tss.fence : ts_start;
        s->info.fresh = !have_fence;
        if (!have_fence) {
            /* Initialise the workdir: fences first (a workdir with a catalog
             * but no fence file is refused above). */
            s->ids.fence = s->ids.durable = s->ids.next;
            s->tss.fence = s->tss.durable = s->tss.next;
            rc = write_fence(s);
            rc = rc ? rc : write_meta(s);
            if (rc != NK_OK) {
                nk_errbuf_set(eb, "%s: cannot initialise the coordinator files: %s", s->workdir,
                              nk_strerror(rc));
            }
        }
    }
    if (rc == NK_OK) {
        rc = nk_rt_listen(rt, s->addr, &handlers, s, &s->listener);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot listen on %s: %s", s->addr, nk_strerror(rc));
        } else {
            s->listening = true;
        }
    }
    if (rc != NK_OK) {
        if (s->lock != NULL) {
            nk_rt_dir_unlock(rt, s->lock);
        }
        free_state(s);
        free(s);
        return rc;
    }
    s->info.regions = s->n_index;
    s->info.stores = s->stores.count;
    s->info.next_id = s->ids.next;
    s->info.next_ts = s->tss.next;
    char bound[NK_COORD_ADDR_MAX] = "";
    (void)nk_rt_listener_addr(rt, s->listener, bound, sizeof(bound));
    nk_log(rt, NK_LOG_INFO,
           "coordinator: %s %s: restored %zu regions, %zu stores; allocator starts id=%" PRIu64
           " ts=%" PRIu64 "; listening on %s",
           s->info.fresh ? "initialised" : "recovered", s->workdir, s->info.regions, s->info.stores,
           s->ids.next, s->tss.next, bound);
    s->sweep_timer = nk_rt_timer_start(rt, s->store_timeout_ns / 2, sweep_cb, s);
    *out = s;
    return NK_OK;
}

int nk_coord_service_addr(nk_coord_service *s, char *buf, size_t len)
{
    return nk_rt_listener_addr(s->rt, s->listener, buf, len);
}

void nk_coord_service_info_get(nk_coord_service *s, nk_coord_service_info *info)
{
    *info = s->info;
}

void nk_coord_service_stats_get(nk_coord_service *s, nk_coord_service_stats *st)
{
    *st = s->stats;
    st->conns = s->conns.count;
    st->stores = s->stores.count;
    st->regions = s->regions.count;
    st->stores_alive = 0;
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->stores, &pos, &key, &val)) {
        st->stores_alive += ((const store_ent *)val)->alive ? 1 : 0;
    }
    st->next_id = s->ids.next;
    st->next_ts = s->tss.next;
}

void nk_coord_service_shutdown(nk_coord_service *s)
{
    if (!s->stopping) {
        s->stopping = true;
        if (s->listening) {
            (void)nk_rt_listener_close(s->rt, s->listener);
            s->listening = false;
        }
        if (s->flush_timer != 0) {
            (void)nk_rt_timer_cancel(s->rt, s->flush_timer);
            s->flush_timer = 0;
        }
        if (s->sweep_timer != 0) {
            (void)nk_rt_timer_cancel(s->rt, s->sweep_timer);
            s->sweep_timer = 0;
        }
        /* Leaders learned since the last catalog write are worth keeping. */
        s->meta_dirty = true;
        flush_now(s);
        size_t pos = 0;
        uint64_t key;
        void *val;
        while (nk_u64map_next(&s->conns, &pos, &key, &val)) {
            (void)nk_rt_close(s->rt, key);
            free(val);
        }
        nk_u64map_free(&s->conns);
        nk_u64map_init(&s->conns);
        nk_log(s->rt, NK_LOG_INFO, "coordinator: stopped (next id=%" PRIu64 " ts=%" PRIu64 ")",
               s->ids.next, s->tss.next);
    }
    nk_rt_stop(s->rt);
}

int nk_coord_service_exit_status(const nk_coord_service *s)
{
    return s->status;
}

void nk_coord_service_free(nk_coord_service *s)
{
    if (s == NULL) {
        return;
    }
    if (s->flush_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->flush_timer);
    }
    if (s->sweep_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->sweep_timer);
    }
    if (s->listening) {
        (void)nk_rt_listener_close(s->rt, s->listener);
    }
    /* Accepted connections carry s as their context: close them so no
     * callback can reach freed memory (after a crash this is a no-op). */
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&s->conns, &pos, &key, &val)) {
        (void)nk_rt_close(s->rt, key);
    }
    if (s->lock != NULL) {
        nk_rt_dir_unlock(s->rt, s->lock);
    }
    free_state(s);
    free(s);
}
