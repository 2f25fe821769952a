/*
 * store.c - the raftstore: lifecycle, the listener, the store-wide Ready
 * batch, requests and routing of incoming raft messages (see store.h).
 *
 * The batch (pump): every peer with a Ready stages its durable part into the
 * raft log; the log is written once; if any Ready must be durable before
 * its messages leave, one sync job runs, and only when it is done do those
 * peers send, apply and advance. Peers whose Ready needs no sync finish at
 * once. While the sync runs, ticks and messages keep feeding raft; their
 * effects form the next batch.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/logfile.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/store/store_int.h"
#include "nokv/util/assert.h"
#include "nokv/util/smallfile.h"

#define PUMP_ROUNDS 64

typedef struct store_sync {
    nk_store *s; /* NULL once the store is gone */
} store_sync;

typedef struct store_install {
    uint64_t region_id, index, term, lsn;
    uint64_t timer;
    nk_store_install_fn done;
    void *arg;
} store_install;

void nk_store_options_default(nk_store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->tick_ns = 100 * NK_NSEC_PER_MSEC;
    o->election_ticks = 10;
    o->heartbeat_ticks = 2;
    o->request_ttl_ns = 3 * NK_NSEC_PER_SEC;
    o->compact_every = 1000;
    o->compact_bytes = 32u << 20;
}

/* ------------------------------------------------------------ failures --- */

void nk_store_fail(nk_store *s, const char *what, int rc)
{
    if (s->failed) {
        return;
    }
    s->failed = true;
    nk_log(s->rt, NK_LOG_ERROR, "store %" PRIu64 ": %s failed: %s; the store stops serving",
           s->o.store_id, what, nk_errname(rc));
}

void nk_store_violation(nk_store *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nk_log(s->rt, NK_LOG_ERROR, "invariant broken: %s", msg);
    if (s->o.obs != NULL && s->o.obs->violation != NULL) {
        s->o.obs->violation(s->o.obs->ctx, s->o.store_id, msg);
    }
    s->failed = true;
}

/* --------------------------------------------------------------- peers --- */

nk_peer *nk_store_peer(const nk_store *s, uint64_t region_id)
{
    size_t lo = 0, hi = s->n_peers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->peers[mid]->region_id < region_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < s->n_peers && s->peers[lo]->region_id == region_id ? s->peers[lo] : NULL;
}

static int add_peer(nk_store *s, nk_peer *p)
{
    if (s->n_peers == s->cap_peers) {
        size_t ncap = s->cap_peers ? s->cap_peers * 2 : 8;
        nk_peer **n = realloc(s->peers, ncap * sizeof(*n));
        if (n == NULL) {
            return NK_ENOMEM;
        }
        s->peers = n;
        s->cap_peers = ncap;
    }
    size_t i = 0;
    while (i < s->n_peers && s->peers[i]->region_id < p->region_id) {
        i++;
    }
    memmove(&s->peers[i + 1], &s->peers[i], (s->n_peers - i) * sizeof(s->peers[0]));
    s->peers[i] = p;
    s->n_peers++;
    return NK_OK;
}

static void remove_peer_at(nk_store *s, size_t i)
{
    memmove(&s->peers[i], &s->peers[i + 1], (s->n_peers - i - 1) * sizeof(s->peers[0]));
    s->n_peers--;
}

int nk_store_save_meta(nk_store *s)
{
    nk_errbuf eb;
    int rc = nk_localmeta_save(s->rt, s->workdir, &s->meta, &eb);
    if (rc != NK_OK && rc != NK_ECRASHED) {
        nk_log(s->rt, NK_LOG_ERROR, "store %" PRIu64 ": saving LOCALMETA: %s", s->o.store_id,
               eb.msg);
    }
    return rc;
}

static void learn_home(nk_store *s, uint64_t peer_id, uint64_t store_id)
{
    for (size_t i = 0; i < s->n_homes; i++) {
        if (s->homes[i].peer_id == peer_id) {
            s->homes[i].store_id = store_id;
            return;
        }
    }
    if (s->n_homes == NK_STORE_MAX_HOMES) {
        memmove(&s->homes[0], &s->homes[1], (NK_STORE_MAX_HOMES - 1) * sizeof(s->homes[0]));
        s->n_homes--;
    }
    s->homes[s->n_homes++] = (nk_peer_home){peer_id, store_id};
}

uint64_t nk_store_home_of(const nk_store *s, const nk_peer *p, uint64_t peer_id)
{
    const nk_region_peer *rp = nk_region_peer_by_id(&p->desc, peer_id);
    if (rp != NULL) {
        return rp->store_id;
    }
    for (size_t i = 0; i < s->n_homes; i++) {
        if (s->homes[i].peer_id == peer_id) {
            return s->homes[i].store_id;
        }
    }
    return 0;
}

/* Our peer was removed by a committed membership change: keep a tombstone
 * (so stale traffic never revives it), destroy its raft state, stop it. */
static void tombstone(nk_store *s, size_t i)
{
    nk_peer *p = s->peers[i];
    int rc = nk_localmeta_put(&s->meta, &p->desc, NK_REGION_TOMBSTONE);
    nk_localmeta_region *lr = nk_localmeta_find(&s->meta, p->region_id);
    if (lr != NULL) {
        lr->tomb_term = p->hs.term;
        lr->tomb_vote = p->hs.vote;
        lr->conf_index = p->conf_index;
    }
    if (rc == NK_OK) {
        rc = nk_store_save_meta(s);
    }
    if (rc == NK_OK) {
        rc = nk_raftlog_stage_destroy(s->log, p->region_id);
    }
    if (rc != NK_OK) {
        nk_store_fail(s, "tombstoning a removed peer", rc);
        return;
    }
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": peer %" PRIu64
           " removed from the region; tombstoned at conf_version %" PRIu64,
           s->o.store_id, p->region_id, p->peer_id, p->desc.epoch.conf_version);
    if (s->o.sm.close_region != NULL) {
        s->o.sm.close_region(s->o.sm.ctx, p->region_id);
    }
    /* Payload files stay until the next open: the DESTROY record is not
     * durable yet, and until it is, a restart may still need them. */
    remove_peer_at(s, i);
    nk_peer_free(p, NK_EAGAIN);
}

/* --------------------------------------------------------------- batch --- */

static void pump(nk_store *s);

static void finish_synced(nk_store *s)
{
    uint64_t lsn = nk_raftlog_synced_lsn(s->log);
    for (size_t i = 0; i < s->n_peers; i++) {
        nk_peer *p = s->peers[i];
        if (s->o.obs != NULL && s->o.obs->synced != NULL) {
            s->o.obs->synced(s->o.obs->ctx, s->o.store_id, p->region_id, lsn, &p->hs);
        }
        if (p->rd_busy && p->rd_sync && !s->failed) {
            nk_peer_finish_ready(p);
        }
    }
}

static void sync_done(void *arg, int rc)
{
    store_sync *j = arg;
    nk_store *s = j->s;
    free(j);
    if (s == NULL) {
        return;
    }
    s->sync = NULL;
    s->syncing = false;
    if (rc != NK_OK) {
        nk_store_fail(s, "syncing the raft log", rc);
        return;
    }
    /* Everything written before the sync was submitted is durable now. */
    NK_ASSERT(nk_raftlog_synced_lsn(s->log) <= nk_raftlog_last_lsn(s->log));
    finish_synced(s);
    /* Segments whose records are all dead go now: the sync just made the
     * records that killed them durable. */
    unsigned removed = 0;
    rc = nk_raftlog_purge(s->log, &removed);
    if (rc != NK_OK && rc != NK_ECRASHED) {
        nk_log(s->rt, NK_LOG_WARN, "store %" PRIu64 ": raft log purge: %s", s->o.store_id,
               nk_errname(rc));
    }
    pump(s);
}

static int start_sync(nk_store *s)
{
    NK_ASSERT(!s->syncing); /* at most one batch sync in flight */
    store_sync *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->s = s;
    int rc = nk_raftlog_sync(s->log, sync_done, j);
    if (rc != NK_OK) {
        free(j);
        return rc;
    }
    s->sync = j;
    s->syncing = true;
    return NK_OK;
}

static void reap_removed(nk_store *s)
{
    for (size_t i = s->n_peers; i > 0; i--) {
        nk_peer *p = s->peers[i - 1];
        if (p->removed && !p->rd_busy && !s->failed) {
            tombstone(s, i - 1);
        }
    }
}

static void pump(nk_store *s)
{
    for (int round = 0; round < PUMP_ROUNDS; round++) {
        if (s->failed || s->syncing || s->closing) {
            return;
        }
        bool any = false, need_sync = false;
        for (size_t i = 0; i < s->n_peers && !s->failed; i++) {
            nk_peer *p = s->peers[i];
            if (p->failed || p->rd_busy || p->removed || !nk_raft_has_ready(p->raft)) {
                continue;
            }
            int rc = nk_raft_ready_get(p->raft, &p->rd);
            if (rc != NK_OK) {
                nk_store_fail(s, "taking a Ready", rc);
                return;
            }
            p->rd_busy = true;
            any = true;
            rc = nk_peer_stage_ready(p);
            if (rc != NK_OK) {
                nk_store_fail(s, "staging a Ready", rc);
                return;
            }
            p->rd_sync = p->rd.must_sync;
            need_sync |= p->rd_sync;
        }
        if (!any && !nk_raftlog_has_staged(s->log)) {
            break;
        }
        if (nk_raftlog_has_staged(s->log)) {
            int rc = nk_raftlog_write(s->log);
            if (rc != NK_OK) {
                nk_store_fail(s, "writing the raft log", rc);
                return;
            }
        }
        /* Readys that need no sync go on at once. */
        for (size_t i = 0; i < s->n_peers && !s->failed; i++) {
            nk_peer *p = s->peers[i];
            if (p->rd_busy && !p->rd_sync) {
                nk_peer_finish_ready(p);
            }
        }
        if (need_sync) {
            int rc = start_sync(s);
            if (rc != NK_OK) {
                nk_store_fail(s, "submitting the raft log sync", rc);
            }
            break;
        }
        reap_removed(s);
    }
    reap_removed(s);
    for (size_t i = 0; i < s->n_peers; i++) {
        nk_peer_observe(s->peers[i]);
    }
}

static void kick_fire(void *arg)
{
    nk_store *s = arg;
    s->kick_timer = 0;
    pump(s);
}

void nk_store_kick(nk_store *s)
{
    if (s->kick_timer == 0 && !s->failed && !s->closing) {
        s->kick_timer = nk_rt_timer_start(s->rt, 0, kick_fire, s);
    }
}

static void tick_fire(void *arg)
{
    nk_store *s = arg;
    s->tick_timer = 0;
    if (s->failed || s->closing) {
        return;
    }
    uint64_t now = nk_rt_now(s->rt);
    for (size_t i = 0; i < s->n_peers; i++) {
        nk_peer_tick(s->peers[i]);
        nk_peer_expire(s->peers[i], now, s->o.request_ttl_ns);
    }
    pump(s);
    if (!s->failed) {
        s->tick_timer = nk_rt_timer_start(s->rt, s->o.tick_ns, tick_fire, s);
    }
}

/* ---------------------------------------------------- incoming traffic --- */

static bool creates_replica(const nk_raft_msg *m)
{
    /* Only a leader's traffic may create a replica (never a vote request,
     * which any stale candidate can send). */
    return m->type == NK_RAFT_MSG_APPEND || m->type == NK_RAFT_MSG_HEARTBEAT ||
           m->type == NK_RAFT_MSG_SNAPSHOT;
}

static nk_peer *replica_for(nk_store *s, const nk_raftmsg_hdr *h, const nk_raft_msg *m)
{
    nk_peer *p = nk_store_peer(s, h->region_id);
    if (p != NULL) {
        return p->peer_id == m->to ? p : NULL;
    }
    if (!creates_replica(m)) {
        return NULL;
    }
    nk_localmeta_region *lr = nk_localmeta_find(&s->meta, h->region_id);
    nk_raft_hard_state start = {0};
    if (lr != NULL && lr->state == NK_REGION_TOMBSTONE) {
        /* A removed peer comes back only through a newer membership. */
        if (h->epoch.conf_version <= lr->desc.epoch.conf_version) {
            return NULL;
        }
        start.term = lr->tomb_term;
        start.vote = lr->tomb_vote;
    }
    /* Until a snapshot or a membership entry says more, the descriptor
     * only knows our own peer (so a restart finds it again); conf_version 0
     * lets any real descriptor replace it. */
    nk_region desc;
    nk_region_init_full(&desc, h->region_id);
    desc.epoch.version = h->epoch.version;
    desc.epoch.conf_version = 0;
    nk_region_peer self = {.store_id = s->o.store_id, .peer_id = m->to, .role = NK_RAFT_LEARNER};
    if (nk_region_peer_set(&desc, &self) != NK_OK ||
        nk_localmeta_put(&s->meta, &desc, NK_REGION_NORMAL) != NK_OK) {
        return NULL;
    }
    lr = nk_localmeta_find(&s->meta, h->region_id);
    lr->tomb_term = start.term; /* kept until the raft log has a hard state */
    lr->tomb_vote = start.vote;
    if (nk_store_save_meta(s) != NK_OK) {
        return NULL;
    }
    nk_peer *np = NULL;
    if (nk_peer_create(s, &desc, m->to, &start, &np) != NK_OK) {
        return NULL;
    }
    if (add_peer(s, np) != NK_OK) {
        nk_peer_free(np, NK_ESTOPPED);
        return NULL;
    }
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": created replica peer %" PRIu64
           " on a message from store %" PRIu64,
           s->o.store_id, h->region_id, m->to, h->from_store);
    return np;
}

static void deliver(void *ctx, const nk_raftmsg_hdr *h, const nk_raft_msg *m)
{
    nk_store *s = ctx;
    if (s->failed || s->closing) {
        return;
    }
    learn_home(s, m->from, h->from_store);
    nk_peer *p = replica_for(s, h, m);
    if (p == NULL || p->failed || p->removed) {
        return;
    }
    if (p->data_pending && m->type == NK_RAFT_MSG_TIMEOUT_NOW) {
        return; /* a replica without its engine data must not lead */
    }
    if (m->type == NK_RAFT_MSG_SNAPSHOT && !s->o.sm.volatile_state && p->snap.index == 0 &&
        p->applied == 0) {
        /* An empty replica (created by a message, never seeded or imported)
         * joins by an import (`nokv migrate expand` decides what becomes of
         * it), not by an engine snapshot: only a replica that held the
         * region's data catches up that way. The leader retries; harmless. */
        return;
    }
    int rc = nk_raft_step(p->raft, m);
    if (rc != NK_OK) {
        nk_log(s->rt, NK_LOG_DEBUG, "store %" PRIu64 " region %" PRIu64 ": step: %s", s->o.store_id,
               p->region_id, nk_errname(rc));
    }
    /* Only a leader's traffic carries a compact hint worth following (raftmsg.h). */
    if (creates_replica(m) && h->compact_hint > p->compact_hint) {
        p->compact_hint = h->compact_hint;
    }
    pump(s);
}

static int resolve_store(void *ctx, uint64_t store_id, char *addr, size_t cap);

static void fetch_fire(void *arg)
{
    nk_store *s = arg;
    s->fetch_timer = 0;
    if (s->fetch_fn != NULL && !s->failed && !s->closing) {
        s->fetch_fn(s->fetch_ctx);
    }
}

void nk_store_kick_fetcher(nk_store *s)
{
    if (s->fetch_fn != NULL && s->fetch_timer == 0 && !s->failed && !s->closing) {
        s->fetch_timer = nk_rt_timer_start(s->rt, 0, fetch_fire, s);
    }
}

void nk_store_set_fetcher(nk_store *s, nk_store_fetch_fn fn, void *ctx)
{
    s->fetch_fn = fn;
    s->fetch_ctx = ctx;
    if (fn == NULL && s->fetch_timer != 0) {
        nk_rt_timer_cancel(s->rt, s->fetch_timer);
        s->fetch_timer = 0;
    }
    if (fn != NULL) {
        nk_store_kick_fetcher(s); /* regions found pending at open */
    }
}

size_t nk_store_pending_fetches(const nk_store *s, nk_store_fetch *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_peers; i++) {
        const nk_peer *p = s->peers[i];
        if (!p->data_pending || p->failed) {
            continue;
        }
        if (n < cap) {
            nk_store_fetch *f = &out[n];
            memset(f, 0, sizeof(*f));
            f->region_id = p->region_id;
            f->index = p->snap.index;
            f->term = p->snap.term;
            uint64_t lead = nk_store_leader_store(s, p->region_id);
            f->from_store = lead != 0 ? lead : p->fetch_from;
            f->desc = p->desc;
        }
        n++;
    }
    return n;
}

int nk_store_data_installed(nk_store *s, uint64_t region_id, uint64_t index)
{
    nk_peer *p = nk_store_peer(s, region_id);
    if (p == NULL || s->failed) {
        return NK_ENOENT;
    }
    return nk_peer_data_installed(p, index);
}

int nk_store_address(nk_store *s, uint64_t store_id, char *addr, size_t cap)
{
    return resolve_store(s, store_id, addr, cap);
}

int nk_store_hold_log(nk_store *s, uint64_t region_id, uint64_t index, uint64_t hold_ns)
{
    nk_peer *p = nk_store_peer(s, region_id);
    if (p == NULL) {
        return NK_ENOENT;
    }
    p->hold_index = index;
    p->hold_until = nk_rt_now(s->rt) + hold_ns;
    return NK_OK;
}

static void unreachable(void *ctx, uint64_t region_id, uint64_t to_peer)
{
    nk_store *s = ctx;
    nk_peer *p = nk_store_peer(s, region_id);
    if (p != NULL && p->raft != NULL) {
        nk_raft_report_snapshot(p->raft, to_peer, false);
    }
}

static nk_addr_entry *book_entry(nk_store *s, uint64_t store_id, bool create)
{
    for (size_t i = 0; i < s->n_book; i++) {
        if (s->book[i].store_id == store_id) {
            return &s->book[i];
        }
    }
    if (!create || s->n_book == NK_STORE_MAX_BOOK) {
        return NULL;
    }
    nk_addr_entry *e = &s->book[s->n_book++];
    memset(e, 0, sizeof(*e));
    e->store_id = store_id;
    return e;
}

int nk_store_set_address(nk_store *s, uint64_t store_id, const char *addr)
{
    if (store_id == 0 || strlen(addr) >= sizeof(s->book[0].addr)) {
        return NK_EINVAL;
    }
    nk_addr_entry *e = book_entry(s, store_id, true);
    if (e == NULL) {
        return NK_ERANGE;
    }
    strcpy(e->addr, addr);
    return NK_OK;
}

int nk_store_client_address(nk_store *s, uint64_t store_id, char *buf, size_t cap)
{
    nk_addr_entry *e = book_entry(s, store_id, false);
    if (e == NULL || e->client_addr[0] == '\0' || strlen(e->client_addr) >= cap) {
        return NK_ENOENT;
    }
    strcpy(buf, e->client_addr);
    return NK_OK;
}

uint64_t nk_store_leader_store(const nk_store *s, uint64_t region_id)
{
    nk_peer *p = nk_store_peer(s, region_id);
    if (p == NULL || p->raft == NULL) {
        return 0;
    }
    nk_raft_status st;
    nk_raft_status_get(p->raft, &st);
    return st.lead != 0 ? nk_store_home_of(s, p, st.lead) : 0;
}

static void learn_addr(void *ctx, uint64_t store_id, const char *addr, const char *client_addr)
{
    nk_store *s = ctx;
    if (store_id == s->o.store_id) {
        return;
    }
    (void)nk_store_set_address(s, store_id, addr);
    nk_addr_entry *e = book_entry(s, store_id, false);
    if (e != NULL && client_addr[0] != '\0' && strlen(client_addr) < sizeof(e->client_addr)) {
        strcpy(e->client_addr, client_addr);
    }
}

static int resolve_store(void *ctx, uint64_t store_id, char *addr, size_t cap)
{
    nk_store *s = ctx;
    for (size_t i = 0; i < s->n_book; i++) {
        if (s->book[i].store_id == store_id) {
            if (strlen(s->book[i].addr) >= cap) {
                return NK_ERANGE;
            }
            strcpy(addr, s->book[i].addr);
            return NK_OK;
        }
    }
    if (s->o.resolve == NULL) {
        return NK_ENOENT;
    }
    return s->o.resolve(s->o.resolve_ctx, store_id, addr, cap);
}

/* One listener serves every framed service: a connection belongs to the
 * service its HELLO names (raft: the transport; admin: the handler the
 * server registered), anything else is closed. */
enum { CONN_PENDING = 1, CONN_RAFT = 2, CONN_ADMIN = 3 };

static void l_on_accept(void *ctx, uint64_t listener, uint64_t conn, const char *peer)
{
    nk_store *s = ctx;
    (void)listener;
    (void)peer;
    if (nk_u64map_put(&s->conns, conn, (void *)(uintptr_t)CONN_PENDING) != NK_OK) {
        (void)nk_rt_close(s->rt, conn);
    }
}

static void l_drop(nk_store *s, uint64_t conn, const char *why)
{
    nk_log(s->rt, NK_LOG_WARN, "store %" PRIu64 ": conn %" PRIu64 ": %s; closing", s->o.store_id,
           conn, why);
    (void)nk_u64map_del(&s->conns, conn);
    (void)nk_rt_close(s->rt, conn);
}

static void l_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_store *s = ctx;
    uintptr_t st = (uintptr_t)nk_u64map_get(&s->conns, conn);
    if (st == CONN_PENDING) {
        nk_hello h;
        if (kind != NK_KIND_HELLO || nk_hello_decode(data, len, &h) != NK_OK) {
            l_drop(s, conn, "first frame is not a HELLO");
            return;
        }
        if (h.service == NK_SERVICE_RAFT) {
            st = CONN_RAFT;
            nk_transport_accept(s->tr, conn);
        } else if (h.service == NK_SERVICE_ADMIN && s->admin.on_open != NULL) {
            st = CONN_ADMIN;
        } else {
            l_drop(s, conn, "HELLO for a service this listener does not serve");
            return;
        }
        (void)nk_u64map_put(&s->conns, conn, (void *)st);
        if (st == CONN_ADMIN) {
            s->admin.on_open(s->admin.ctx, conn, &h);
            return;
        }
    }
    if (st == CONN_RAFT) {
        if (!nk_transport_on_message(s->tr, conn, kind, data, len)) {
            l_drop(s, conn, "unknown raft connection");
        } else if (nk_u64map_get(&s->conns, conn) != NULL && !nk_transport_has_conn(s->tr, conn)) {
            (void)nk_u64map_del(&s->conns, conn); /* the transport closed it */
        }
    } else if (st == CONN_ADMIN) {
        s->admin.on_message(s->admin.ctx, conn, kind, data, len);
    } else {
        l_drop(s, conn, "unknown connection");
    }
}

static void l_on_close(void *ctx, uint64_t conn, int reason)
{
    nk_store *s = ctx;
    (void)reason;
    uintptr_t st = (uintptr_t)nk_u64map_del(&s->conns, conn);
    if (st == CONN_RAFT) {
        (void)nk_transport_on_close(s->tr, conn);
    } else if (st == CONN_ADMIN && s->admin.on_close != NULL) {
        s->admin.on_close(s->admin.ctx, conn);
    }
}

void nk_store_set_admin_service(nk_store *s, const nk_store_service *svc)
{
    if (svc != NULL) {
        s->admin = *svc;
    } else {
        memset(&s->admin, 0, sizeof(s->admin));
    }
}

void nk_store_close_conn(nk_store *s, uint64_t conn)
{
    (void)nk_u64map_del(&s->conns, conn);
    (void)nk_rt_close(s->rt, conn);
}

static const nk_net_handlers listen_handlers = {
    .on_accept = l_on_accept,
    .on_message = l_on_message,
    .on_close = l_on_close,
};

/* ------------------------------------------------------------ lifecycle --- */

static int open_fail(nk_store *s, int rc)
{
    nk_store_close(s);
    return rc;
}

int nk_store_open(nk_rt *rt, const nk_store_options *o, nk_store **out, nk_errbuf *eb)
{
    *out = NULL;
    if (o->store_id == 0 || o->workdir == NULL || o->sm.apply == NULL || o->sm.install == NULL) {
        nk_errbuf_set(eb, "store: a store id, a workdir and a state machine are required");
        return NK_EINVAL;
    }
    nk_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NK_ENOMEM;
    }
    s->rt = rt;
    s->o = *o;
    if (s->o.tick_ns == 0) {
        s->o.tick_ns = 100 * NK_NSEC_PER_MSEC;
    }
    if (s->o.request_ttl_ns == 0) {
        s->o.request_ttl_ns = 3 * NK_NSEC_PER_SEC;
    }
    nk_localmeta_init(&s->meta);
    nk_u64map_init(&s->conns);
    s->workdir = strdup(o->workdir);
    s->raftdir = nk_path_join(o->workdir, "raft");
    s->snapdir = nk_path_join(o->workdir, "snap");
    if (s->workdir == NULL || s->raftdir == NULL || s->snapdir == NULL) {
        return open_fail(s, NK_ENOMEM);
    }
    char *parent = nk_path_parent(s->workdir);
    int rc = parent == NULL ? NK_ENOMEM : nk_dir_ensure(rt, s->workdir, parent);
    free(parent);
    if (rc == NK_OK) {
        rc = nk_dir_ensure(rt, s->snapdir, s->workdir);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "store: cannot create %s: %s", s->snapdir, nk_strerror(rc));
        return open_fail(s, rc);
    }
    rc = nk_localmeta_load(rt, s->workdir, &s->meta, eb);
    if (rc == NK_ENOENT) {
        nk_localmeta_init(&s->meta);
        rc = NK_OK;
    }
    if (rc != NK_OK) {
        return open_fail(s, rc);
    }
    if (s->meta.store_id != 0 && s->meta.store_id != o->store_id) {
        nk_errbuf_set(eb,
                      "store: %s belongs to store %" PRIu64 ", not store %" PRIu64
                      "; start it with --store-id %" PRIu64 " or use another workdir",
                      s->workdir, s->meta.store_id, o->store_id, s->meta.store_id);
        return open_fail(s, NK_EINVAL);
    }
    if (s->meta.store_id == 0) {
        s->meta.store_id = o->store_id;
        s->meta.cluster_id = o->cluster_id;
        rc = nk_store_save_meta(s);
        if (rc != NK_OK) {
            return open_fail(s, rc);
        }
    }
    rc = nk_raftlog_open(rt, s->raftdir, &o->log, &s->log, eb);
    if (rc != NK_OK) {
        return open_fail(s, rc);
    }
    nk_transport_options to = {.store_id = o->store_id,
                               .cluster_id = o->cluster_id,
                               .advertise_addr = o->advertise_addr,
                               .client_addr = o->client_addr,
                               .resolve = resolve_store,
                               .resolve_ctx = s,
                               .deliver = deliver,
                               .unreachable = unreachable,
                               .learn = learn_addr,
                               .ctx = s,
                               .pending_limit = o->conn_pending_limit};
    rc = nk_transport_new(rt, &to, &s->tr);
    if (rc != NK_OK) {
        return open_fail(s, rc);
    }
    /* Every hosted region gets its peer back; raft state of regions that
     * LOCALMETA does not host (tombstoned, or created and lost before
     * LOCALMETA said so) is destroyed. */
    for (size_t i = 0; i < s->meta.n_regions; i++) {
        const nk_localmeta_region *lr = &s->meta.regions[i];
        if (lr->state == NK_REGION_TOMBSTONE || lr->state == NK_REGION_APPLYING) {
            /* APPLYING: a snapshot install was interrupted before publish;
             * its raft state goes, the entry stays until the caller has
             * deleted the range (nk_store_applying / install_abort). */
            (void)nk_raftlog_stage_destroy(s->log, lr->desc.id);
            nk_snapfile_gc(rt, s->snapdir, lr->desc.id, UINT64_MAX);
            if (lr->state == NK_REGION_APPLYING) {
                nk_log(rt, NK_LOG_WARN,
                       "store %" PRIu64 " region %" PRIu64
                       ": snapshot install was interrupted before publish; rolling it back",
                       o->store_id, lr->desc.id);
            }
            continue;
        }
        const nk_region_peer *mine = nk_region_peer_on_store(&lr->desc, o->store_id);
        uint64_t peer_id = mine != NULL ? mine->peer_id : 0;
        nk_peer *p = NULL;
        if (peer_id == 0) {
            /* Created by a message before any membership reached us: the
             * peer id is only in the raft log's messages. Start empty and
             * wait for the leader again. */
            (void)nk_raftlog_stage_destroy(s->log, lr->desc.id);
            continue;
        }
        rc = nk_peer_recover(s, &lr->desc, peer_id, &p, eb);
        if (rc != NK_OK) {
            return open_fail(s, rc);
        }
        rc = add_peer(s, p);
        if (rc != NK_OK) {
            nk_peer_free(p, NK_ESTOPPED);
            return open_fail(s, rc);
        }
        nk_snapfile_gc(rt, s->snapdir, lr->desc.id, p->snap.index);
    }
    uint64_t *ids = NULL;
    size_t n = 0;
    if (nk_raftlog_regions(s->log, &ids, &n) == NK_OK) {
        for (size_t i = 0; i < n; i++) {
            if (nk_store_peer(s, ids[i]) == NULL) {
                (void)nk_raftlog_stage_destroy(s->log, ids[i]);
            }
        }
        free(ids);
    }
    if (o->listen_addr != NULL) {
        rc = nk_rt_listen(rt, o->listen_addr, &listen_handlers, s, &s->listener);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "store: cannot listen on %s: %s", o->listen_addr, nk_strerror(rc));
            return open_fail(s, rc);
        }
    }
    s->tick_timer = nk_rt_timer_start(rt, s->o.tick_ns, tick_fire, s);
    nk_log(rt, NK_LOG_INFO, "store %" PRIu64 ": open, %zu region(s) hosted", o->store_id,
           s->n_peers);
    *out = s;
    nk_store_kick(s);
    return NK_OK;
}

void nk_store_close(nk_store *s)
{
    if (s == NULL) {
        return;
    }
    if (s->log != NULL && !s->failed) {
        nk_raftlog_stats ls;
        nk_raftlog_stats_get(s->log, &ls);
        uint64_t applied = 0, raft_reads = 0;
        for (size_t i = 0; i < s->n_peers; i++) {
            applied += s->peers[i]->applied;
            if (s->peers[i]->raft != NULL) {
                nk_raft_status rs;
                nk_raft_status_get(s->peers[i]->raft, &rs);
                raft_reads += rs.readbacks;
            }
        }
        /* readbacks: entries decoded from files; raft readbacks: entries raft
         * asked back from the log (file or cache) beyond its memory tail. */
        nk_log(s->rt, NK_LOG_INFO,
               "store %" PRIu64 ": closing: raft log syncs=%" PRIu64 " segments=%" PRIu64
               " bytes=%" PRIu64 " readbacks=%" PRIu64 " raft readbacks=%" PRIu64
               ", applied index sum=%" PRIu64,
               s->o.store_id, ls.syncs, ls.segments, ls.bytes, ls.readbacks, raft_reads, applied);
    }
    s->closing = true;
    if (s->sync != NULL) {
        s->sync->s = NULL; /* the job's done frees it, or a crash drops it */
    }
    if (s->tick_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->tick_timer);
    }
    if (s->kick_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->kick_timer);
    }
    if (s->fetch_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->fetch_timer);
    }
    if (s->install != NULL) {
        (void)nk_rt_timer_cancel(s->rt, s->install->timer);
        free(s->install);
    }
    if (s->listener != 0) {
        (void)nk_rt_listener_close(s->rt, s->listener);
    }
    for (size_t i = 0; i < s->n_peers; i++) {
        if (s->o.sm.close_region != NULL) {
            s->o.sm.close_region(s->o.sm.ctx, s->peers[i]->region_id);
        }
        nk_peer_free(s->peers[i], NK_ESTOPPED);
    }
    free(s->peers);
    nk_transport_free(s->tr);
    size_t pos = 0;
    uint64_t conn;
    void *v;
    while (nk_u64map_next(&s->conns, &pos, &conn, &v)) {
        if ((uintptr_t)v != CONN_RAFT) { /* the transport closed its own */
            (void)nk_rt_close(s->rt, conn);
        }
    }
    nk_u64map_free(&s->conns);
    nk_raftlog_close(s->log);
    nk_localmeta_free(&s->meta);
    free(s->workdir);
    free(s->raftdir);
    free(s->snapdir);
    free(s);
}

int nk_store_seed_region(nk_store *s, const nk_region *desc, uint64_t index, uint64_t term,
                         nk_errbuf *eb)
{
    if (nk_store_peer(s, desc->id) != NULL || nk_localmeta_find(&s->meta, desc->id) != NULL) {
        return NK_EEXIST; /* hosted, or known before (a tombstone is never re-seeded) */
    }
    const nk_region_peer *mine = nk_region_peer_on_store(desc, s->o.store_id);
    int rc = nk_region_validate(desc, eb);
    if (rc != NK_OK) {
        return rc;
    }
    if (mine == NULL || index == 0 || term == 0) {
        nk_errbuf_set(
            eb, "seed: region %" PRIu64 " has no peer on store %" PRIu64 " or a zero index/term",
            desc->id, s->o.store_id);
        return NK_EINVAL;
    }
    nk_raft_snapshot_meta meta = {.index = index, .term = term};
    nk_region_conf(desc, &meta.conf);
    if (s->o.sm.volatile_state) {
        uint64_t applied = 0;
        uint8_t *sm = NULL, *blob = NULL;
        size_t sm_len = 0, blob_len = 0;
        rc = s->o.sm.open_region(s->o.sm.ctx, desc->id, NULL, 0, 0, &applied);
        rc = rc ? rc : s->o.sm.snapshot(s->o.sm.ctx, desc->id, &sm, &sm_len);
        rc = rc ? rc : nk_snapfile_encode(desc, index, term, sm, sm_len, &blob, &blob_len);
        free(sm);
        rc = rc ? rc : nk_snapfile_write(s->rt, s->snapdir, desc->id, index, blob, blob_len);
        free(blob);
        if (s->o.sm.close_region != NULL) {
            s->o.sm.close_region(s->o.sm.ctx, desc->id);
        }
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "seed: writing the initial snapshot payload: %s", nk_strerror(rc));
            return rc;
        }
    }
    nk_raft_hard_state hs = {.term = term, .vote = 0, .commit = index};
    rc = nk_raftlog_stage_snapshot(s->log, desc->id, &meta, true);
    rc = rc ? rc : nk_raftlog_stage_hard_state(s->log, desc->id, &hs);
    rc = rc ? rc : nk_raftlog_write(s->log);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "seed: writing the initial raft state: %s", nk_strerror(rc));
        return rc;
    }
    rc = nk_localmeta_put(&s->meta, desc, NK_REGION_NORMAL);
    if (rc == NK_OK) {
        nk_localmeta_find(&s->meta, desc->id)->conf_index = index;
    }
    rc = rc ? rc : nk_store_save_meta(s);
    nk_peer *p = NULL;
    rc = rc ? rc : nk_peer_recover(s, desc, mine->peer_id, &p, eb);
    if (rc == NK_OK) {
        rc = add_peer(s, p);
        if (rc != NK_OK) {
            nk_peer_free(p, NK_ESTOPPED);
        }
    }
    if (rc != NK_OK) {
        return rc;
    }
    /* Durable before anything else happens: the batch machinery waits for
     * this sync before it stages the next Ready. */
    if (!s->syncing) {
        rc = start_sync(s);
    }
    return rc;
}

/* ------------------------------------------------------------ requests --- */

static nk_pending *free_slot(nk_pending *q)
{
    for (unsigned k = 0; k < NK_PEER_MAX_PENDING; k++) {
        if (!q[k].used) {
            return &q[k];
        }
    }
    return NULL;
}

static nk_peer *live_peer(const nk_store *s, uint64_t region_id)
{
    nk_peer *p = nk_store_peer(s, region_id);
    if (p == NULL || p->failed || p->removed || s->failed || s->closing) {
        return NULL;
    }
    return p;
}

int nk_store_propose(nk_store *s, uint64_t region_id, const void *data, size_t len,
                     nk_store_done_fn done, void *arg)
{
    nk_peer *p = live_peer(s, region_id);
    if (p == NULL) {
        return NK_ENOENT;
    }
    if (p->n_writes >= NK_PEER_MAX_WRITES) {
        return NK_EBUSY;
    }
    nk_pending *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NK_ENOMEM;
    }
    uint64_t index = 0, term = 0;
    int rc = nk_raft_propose(p->raft, data, len, &index, &term);
    if (rc != NK_OK) {
        free(q);
        return rc;
    }
    *q = (nk_pending){.used = true,
                      .index = index,
                      .term = term,
                      .since = nk_rt_now(s->rt),
                      .done = done,
                      .arg = arg};
    s->stats.proposals++;
    rc = nk_peer_add_write(p, index, q);
    if (rc != NK_OK) {
        /* Proposed, but we cannot track it: the client learns nothing and
         * retries on its own timeout (the entry may still commit). */
        free(q);
        nk_store_kick(s);
        return NK_ENOMEM;
    }
    nk_store_kick(s);
    return NK_OK;
}

int nk_store_read_index(nk_store *s, uint64_t region_id, nk_store_done_fn done, void *arg)
{
    nk_peer *p = live_peer(s, region_id);
    if (p == NULL) {
        return NK_ENOENT;
    }
    nk_pending *q = free_slot(p->reads);
    if (q == NULL) {
        return NK_EBUSY;
    }
    uint64_t ctx = ++p->next_ctx;
    int rc = nk_raft_read_index(p->raft, ctx);
    if (rc != NK_OK) {
        return rc;
    }
    *q =
        (nk_pending){.used = true, .ctx = ctx, .since = nk_rt_now(s->rt), .done = done, .arg = arg};
    nk_store_kick(s);
    return NK_OK;
}

int nk_store_conf_change(nk_store *s, uint64_t region_id, uint8_t cc_type, uint64_t peer_id,
                         uint64_t store_id)
{
    nk_peer *p = live_peer(s, region_id);
    if (p == NULL) {
        return NK_ENOENT;
    }
    if (store_id == 0) {
        store_id = nk_store_home_of(s, p, peer_id);
    }
    if (store_id == 0) {
        return NK_EINVAL;
    }
    const nk_region_peer *there = nk_region_peer_on_store(&p->desc, store_id);
    if ((cc_type == NK_RAFT_CC_ADD_VOTER || cc_type == NK_RAFT_CC_ADD_LEARNER) && there != NULL) {
        return NK_EEXIST; /* one peer of a region per store */
    }
    int rc = nk_raft_propose_conf_change_ctx(p->raft, cc_type, peer_id, store_id, NULL);
    nk_store_kick(s);
    return rc;
}

int nk_store_transfer_leader(nk_store *s, uint64_t region_id, uint64_t peer_id)
{
    nk_peer *p = live_peer(s, region_id);
    if (p == NULL) {
        return NK_ENOENT;
    }
    int rc = nk_raft_transfer_leader(p->raft, peer_id);
    nk_store_kick(s);
    return rc;
}

/* -------------------------------------------------------------- status --- */

uint64_t nk_store_id(const nk_store *s)
{
    return s->o.store_id;
}

const nk_raft *nk_store_raft(const nk_store *s, uint64_t region_id)
{
    nk_peer *p = live_peer(s, region_id);
    return p != NULL ? p->raft : NULL;
}

uint64_t nk_store_applied(const nk_store *s, uint64_t region_id)
{
    nk_peer *p = nk_store_peer(s, region_id);
    return p != NULL ? p->applied : 0;
}

const nk_region *nk_store_region(const nk_store *s, uint64_t region_id)
{
    nk_peer *p = nk_store_peer(s, region_id);
    return p != NULL ? &p->desc : NULL;
}

void nk_store_stats_get(const nk_store *s, nk_store_stats *st)
{
    *st = s->stats;
    if (s->log != NULL) {
        nk_raftlog_stats ls;
        nk_raftlog_stats_get(s->log, &ls);
        st->raft_log_syncs = ls.syncs;
        st->raft_log_bytes = ls.bytes;
    }
}

bool nk_store_busy(const nk_store *s)
{
    return s->syncing;
}

void nk_store_quiesce(nk_store *s)
{
    s->closing = true;
    if (s->tick_timer != 0) {
        (void)nk_rt_timer_cancel(s->rt, s->tick_timer);
        s->tick_timer = 0;
    }
}

bool nk_store_failed(const nk_store *s)
{
    return s->failed;
}

int nk_store_event_add(nk_store *s, const void *data, size_t len, uint64_t *seq)
{
    uint64_t got = 0;
    int rc = nk_localmeta_event_add(&s->meta, data, len, &got);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_store_save_meta(s);
    if (rc != NK_OK) {
        /* Not durable: take it back so memory matches the file. The seq is
         * burnt, which is harmless (next_event_seq only grows). */
        (void)nk_localmeta_event_remove(&s->meta, got);
        return rc;
    }
    if (seq != NULL) {
        *seq = got;
    }
    return NK_OK;
}

int nk_store_event_remove(nk_store *s, uint64_t seq)
{
    size_t i = 0;
    while (i < s->meta.n_events && s->meta.events[i].seq != seq) {
        i++;
    }
    if (i == s->meta.n_events) {
        return NK_ENOENT;
    }
    /* Keep the bytes until the save succeeded, so a failed save can put the
     * event back where it was. */
    nk_localmeta_event keep = s->meta.events[i];
    memmove(s->meta.events + i, s->meta.events + i + 1,
            (s->meta.n_events - i - 1) * sizeof(*s->meta.events));
    s->meta.n_events--;
    int rc = nk_store_save_meta(s);
    if (rc != NK_OK) {
        memmove(s->meta.events + i + 1, s->meta.events + i,
                (s->meta.n_events - i) * sizeof(*s->meta.events));
        s->meta.events[i] = keep;
        s->meta.n_events++;
        return rc;
    }
    free(keep.data);
    return NK_OK;
}

const nk_localmeta_event *nk_store_events(const nk_store *s, size_t *n)
{
    *n = s->meta.n_events;
    return s->meta.events;
}

size_t nk_store_region_ids(const nk_store *s, uint64_t *ids, size_t cap)
{
    for (size_t i = 0; i < s->n_peers && i < cap; i++) {
        ids[i] = s->peers[i]->region_id;
    }
    return s->n_peers;
}

/* ---------------------------------------------------- snapshot install --- */

int nk_store_install_begin(nk_store *s, const nk_region *desc, nk_errbuf *eb)
{
    if (s->failed || s->closing) {
        nk_errbuf_set(eb, "store %" PRIu64 " is failed or closing", s->o.store_id);
        return NK_ESTOPPED;
    }
    const nk_localmeta_region *old = nk_localmeta_find(&s->meta, desc->id);
    /* A tombstone may be replaced by a newer membership (a re-add); its
     * term and vote stay with the entry and bound the new incarnation. */
    bool over_tomb = old != NULL && old->state == NK_REGION_TOMBSTONE &&
                     desc->epoch.conf_version > old->desc.epoch.conf_version;
    if (nk_store_peer(s, desc->id) != NULL || (old != NULL && !over_tomb)) {
        nk_errbuf_set(eb,
                      "store %" PRIu64 " hosts or hosted region %" PRIu64
                      " already (LOCALMETA); a store holds one peer of a region",
                      s->o.store_id, desc->id);
        return NK_EEXIST;
    }
    int rc = nk_region_validate(desc, eb);
    if (rc != NK_OK) {
        return rc;
    }
    if (nk_region_peer_on_store(desc, s->o.store_id) == NULL) {
        nk_errbuf_set(
            eb, "install: the descriptor of region %" PRIu64 " lists no peer on store %" PRIu64,
            desc->id, s->o.store_id);
        return NK_EINVAL;
    }
    nk_localmeta_region keep = over_tomb ? *old : (nk_localmeta_region){0};
    rc = nk_localmeta_put(&s->meta, desc, NK_REGION_APPLYING);
    rc = rc ? rc : nk_store_save_meta(s);
    if (rc != NK_OK && over_tomb) {
        (void)nk_localmeta_put(&s->meta, &keep.desc, NK_REGION_TOMBSTONE);
    } else if (rc != NK_OK) {
        (void)nk_localmeta_remove(&s->meta, desc->id);
        nk_errbuf_set(eb, "install: saving LOCALMETA (APPLYING): %s", nk_strerror(rc));
    }
    return rc;
}

static void install_step(void *arg)
{
    nk_store *s = arg;
    store_install *in = s->install;
    in->timer = 0;
    if (s->failed) {
        s->install = NULL;
        in->done(in->arg, NK_EIO);
        free(in);
        return;
    }
    if (nk_raftlog_synced_lsn(s->log) < in->lsn) {
        int rc = s->syncing ? NK_OK : start_sync(s);
        in->timer = rc == NK_OK ? nk_rt_timer_start(s->rt, NK_NSEC_PER_MSEC, install_step, s) : 0;
        if (in->timer != 0) {
            return;
        }
        s->install = NULL;
        in->done(in->arg, rc != NK_OK ? rc : NK_ESTOPPED);
        free(in);
        return;
    }
    s->install = NULL;
    nk_localmeta_region *lr = nk_localmeta_find(&s->meta, in->region_id);
    int rc = nk_failpoint(s->rt, "snapshot.install.before_publish");
    if (rc == NK_OK && (lr == NULL || lr->state != NK_REGION_APPLYING)) {
        rc = NK_ENOENT;
    }
    nk_region desc;
    if (rc == NK_OK) {
        desc = lr->desc;
        lr->state = NK_REGION_NORMAL;
        lr->conf_index = in->index;
        rc = nk_store_save_meta(s);
        if (rc != NK_OK) {
            lr->state = NK_REGION_APPLYING;
        }
    }
    nk_peer *p = NULL;
    nk_errbuf eb;
    if (rc == NK_OK) {
        rc = nk_peer_recover(s, &desc, nk_region_peer_on_store(&desc, s->o.store_id)->peer_id, &p,
                             &eb);
        if (rc != NK_OK) {
            nk_store_fail(s, "hosting an installed region", rc);
        }
    }
    if (rc == NK_OK) {
        rc = add_peer(s, p);
        if (rc != NK_OK) {
            nk_peer_free(p, NK_ESTOPPED);
            nk_store_fail(s, "hosting an installed region", rc);
        }
    }
    if (rc == NK_OK) {
        nk_log(s->rt, NK_LOG_INFO,
               "store %" PRIu64 " region %" PRIu64 ": snapshot installed at index %" PRIu64
               " term %" PRIu64 "; peer %" PRIu64 " hosted",
               s->o.store_id, in->region_id, in->index, in->term, p->peer_id);
        nk_store_kick(s);
    }
    in->done(in->arg, rc);
    free(in);
}

int nk_store_install_finish(nk_store *s, uint64_t region_id, const nk_raft_conf *conf,
                            uint64_t index, uint64_t term, nk_store_install_fn done, void *arg)
{
    nk_localmeta_region *lr = nk_localmeta_find(&s->meta, region_id);
    if (lr == NULL || lr->state != NK_REGION_APPLYING || index == 0 || term == 0) {
        return NK_EINVAL;
    }
    if (s->install != NULL) {
        return NK_EBUSY;
    }
    if (s->failed || s->closing) {
        return NK_ESTOPPED;
    }
    store_install *in = calloc(1, sizeof(*in));
    if (in == NULL) {
        return NK_ENOMEM;
    }
    nk_raft_snapshot_meta meta = {.index = index, .term = term, .conf = *conf};
    nk_raft_hard_state hs = {.term = term, .vote = 0, .commit = index};
    if (lr->tomb_term >= term) {
        /* An earlier incarnation may have voted in this term or later. */
        hs.term = lr->tomb_term;
        hs.vote = lr->tomb_vote;
    }
    int rc = nk_raftlog_stage_snapshot(s->log, region_id, &meta, true);
    rc = rc ? rc : nk_raftlog_stage_hard_state(s->log, region_id, &hs);
    rc = rc ? rc : nk_raftlog_write(s->log);
    if (rc != NK_OK) {
        free(in);
        nk_store_fail(s, "writing an installed region's raft state", rc);
        return rc;
    }
    *in = (store_install){.region_id = region_id,
                          .index = index,
                          .term = term,
                          .lsn = nk_raftlog_last_lsn(s->log),
                          .done = done,
                          .arg = arg};
    s->install = in;
    in->timer = nk_rt_timer_start(s->rt, 0, install_step, s);
    if (in->timer == 0) {
        s->install = NULL;
        free(in);
        return NK_ESTOPPED;
    }
    return NK_OK;
}

int nk_store_install_abort(nk_store *s, uint64_t region_id)
{
    nk_localmeta_region *lr = nk_localmeta_find(&s->meta, region_id);
    if (lr == NULL || lr->state != NK_REGION_APPLYING) {
        return NK_ENOENT;
    }
    /* The raft state written by a finish that did not publish goes too. */
    if (nk_raftlog_region(s->log, region_id, &(nk_raftlog_region_state){0}) == NK_OK) {
        int rc = nk_raftlog_stage_destroy(s->log, region_id);
        rc = rc ? rc : nk_raftlog_write(s->log);
        if (rc != NK_OK) {
            return rc;
        }
    }
    int rc;
    if (lr->tomb_term > 0) {
        lr->state = NK_REGION_TOMBSTONE; /* keep the earlier incarnation's term and vote */
        rc = NK_OK;
    } else {
        rc = nk_localmeta_remove(&s->meta, region_id);
    }
    return rc ? rc : nk_store_save_meta(s);
}

size_t nk_store_applying(const nk_store *s, nk_region *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->meta.n_regions; i++) {
        if (s->meta.regions[i].state == NK_REGION_APPLYING) {
            if (n < cap) {
                out[n] = s->meta.regions[i].desc;
            }
            n++;
        }
    }
    return n;
}

int nk_store_region_meta(const nk_store *s, uint64_t region_id, nk_region *desc, uint8_t *state)
{
    const nk_localmeta_region *lr = nk_localmeta_find((nk_localmeta *)&s->meta, region_id);
    if (lr == NULL) {
        return NK_ENOENT;
    }
    if (desc != NULL) {
        *desc = lr->desc;
    }
    if (state != NULL) {
        *state = lr->state;
    }
    return NK_OK;
}

size_t nk_store_hosted_count(const nk_store *s)
{
    return s->n_peers;
}

int nk_store_destroy_stale_peer(nk_store *s, uint64_t region_id, uint64_t peer_id,
                                uint64_t conf_version)
{
    nk_peer *p = nk_store_peer(s, region_id);
    if (p == NULL || p->peer_id != peer_id || p->removed) {
        return NK_ENOENT;
    }
    if (conf_version <= p->desc.epoch.conf_version) {
        return NK_EINVAL;
    }
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": peer %" PRIu64
           " is not a member at conf_version %" PRIu64 " (ours %" PRIu64 "); tombstoning it",
           s->o.store_id, region_id, peer_id, conf_version, p->desc.epoch.conf_version);
    p->removed = true;
    nk_store_kick(s);
    return NK_OK;
}
