/*
 * raft_cluster.c - deterministic in-memory raft cluster with fault injection
 * and safety checkers (contract in raft_cluster.h).
 */
#include "helpers/raft_cluster.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/grow.h"
#include "nokv/util/rand.h"
#include "sim/check/raft.h"

typedef struct rc_msg {
    uint64_t at;
    uint64_t from;
    uint64_t to;
    uint8_t *buf;
    size_t len;
} rc_msg;

typedef struct rc_node {
    struct raftc *c;
    uint64_t id;
    nk_raft *r; /* NULL while down */
    uint32_t tick_units;
    uint32_t tick_phase;
    uint32_t group;
    uint32_t restarts;
    /* durable store */
    nk_raft_hard_state hs;
    nk_raft_snapshot_meta snap; /* snap.index == 0: none */
    uint64_t snap_chain;
    nk_raft_entry *ents; /* ents[k].index == snap.index + 1 + k */
    size_t n_ents;
    size_t cap_ents;
    /* volatile state machine */
    uint64_t applied;
    uint64_t chain;
    /* storage fault injection and counters */
    int storage_rc;
    uint64_t storage_reads;
    bool storage_failed; /* raft reported the injected error: node stopped */
    /* observation */
    uint64_t seen_commit;
    int last_role;
    uint64_t last_term;
} rc_node;

typedef struct rc_read {
    uint64_t ctx;
    uint64_t node;
    uint64_t min_index;
} rc_read;

struct raftc {
    raftc_opts o;
    nk_rand rng;
    bool chaos;
    uint64_t now;
    rc_node nodes[RAFTC_MAX_NODES];
    uint32_t n;
    rc_msg *net;
    size_t n_net;
    size_t cap_net;
    uint8_t drop_type;
    nk_rcheck *chk; /* the invariants (sim/check/raft.h) */
    uint64_t max_applied;
    rc_read *reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t next_ctx;
    uint64_t prop_counter;
    uint32_t storage_failures;
    raftc_stats st;
    bool failed;
    char err[768];
};

/* ------------------------------------------------------------- utils --- */

static void tr(raftc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr(raftc *c, const char *fmt, ...)
{
    if (!c->o.trace) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%6llu] ", (unsigned long long)c->now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void fail(raftc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(raftc *c, const char *fmt, ...)
{
    if (c->failed) {
        return;
    }
    c->failed = true;
    int k = snprintf(c->err, sizeof(c->err), "seed %llu t=%llu: ", (unsigned long long)c->o.seed,
                     (unsigned long long)c->now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, sizeof(c->err) - (size_t)k, fmt, ap);
    va_end(ap);
    tr(c, "VIOLATION %s", c->err);
}

static bool chance(raftc *c, uint32_t pm)
{
    return pm && nk_rand_chance(&c->rng, pm, 1000);
}

static rc_node *node_of(raftc *c, uint64_t id)
{
    if (id == 0 || id > c->n) {
        return NULL;
    }
    return &c->nodes[id - 1];
}

static uint64_t chain_next(uint64_t chain, const nk_raft_entry *e)
{
    return nk_rcheck_chain(chain, e, 7);
}

/* ---------------------------------------------------------- checkers --- */

/* The invariants live in sim/check/raft.c, shared with the simulator's
 * raft and cluster workloads; this harness only feeds them. */

/* Log Matching: same (index, term) => same content and same previous term. */
static void lm_check(raftc *c, uint64_t id, const nk_raft_entry *e, uint64_t prev)
{
    char why[512];
    if (!nk_rcheck_persisted(c->chk, id, e, prev, why, sizeof(why))) {
        fail(c, "%s", why);
    }
}

/* State machine safety: the same entry (and running hash) at each index. */
static void register_applied(raftc *c, uint64_t id, uint64_t index, uint64_t term, uint64_t chain)
{
    char why[512];
    if (!nk_rcheck_applied(c->chk, id, index, term, 0, chain, 0, "applied", why, sizeof(why))) {
        fail(c, "%s", why);
        return;
    }
    if (index > c->max_applied) {
        c->max_applied = index;
    }
}

/* Every index a node declares committed (its commit index) must hold the
 * same term everywhere, forever (State Machine Safety at commit time). */
static void register_commits(raftc *c, rc_node *n, const nk_raft_status *st)
{
    char why[512];
    for (uint64_t i = n->seen_commit + 1; i <= st->commit; i++) {
        uint64_t t;
        if (nk_raft_term_at(n->r, i, &t) != NK_OK) {
            continue; /* inside a snapshot: checked through the hash chain */
        }
        if (!nk_rcheck_committed(c->chk, n->id, i, t, why, sizeof(why))) {
            fail(c, "%s", why);
            return;
        }
    }
    if (st->commit > n->seen_commit) {
        n->seen_commit = st->commit;
    }
}

/* Leader Completeness (checked when a node becomes leader): it holds every
 * entry committed or applied anywhere so far; those were committed in
 * earlier terms. */
static void check_leader_completeness(raftc *c, rc_node *n, const nk_raft_status *st)
{
    uint64_t from = st->first_index > 1 ? st->first_index - 1 : 1;
    uint64_t to = nk_rcheck_max_index(c->chk);
    for (uint64_t i = from; i <= to; i++) {
        uint64_t want = nk_rcheck_known_term(c->chk, i);
        if (want == 0) {
            continue;
        }
        uint64_t t;
        if (nk_raft_term_at(n->r, i, &t) != NK_OK || t != want) {
            fail(c,
                 "leader completeness violated: new leader %llu (term %llu) lacks committed "
                 "index %llu of term %llu",
                 (unsigned long long)n->id, (unsigned long long)st->term, (unsigned long long)i,
                 (unsigned long long)want);
            return;
        }
    }
}

static void check_roles(raftc *c)
{
    char why[512];
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        if (!n->r) {
            n->last_role = NK_RAFT_FOLLOWER;
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(n->r, &st);
        register_commits(c, n, &st);
        if (st.role == NK_RAFT_LEADER) {
            if (!nk_rcheck_leader(c->chk, n->id, st.term, NULL, why, sizeof(why))) {
                fail(c, "%s", why);
                return;
            }
            if (n->last_role != NK_RAFT_LEADER || n->last_term != st.term) {
                c->st.elections++;
                tr(c, "node %llu becomes leader of term %llu (last %llu commit %llu)",
                   (unsigned long long)n->id, (unsigned long long)st.term,
                   (unsigned long long)st.last_index, (unsigned long long)st.commit);
                check_leader_completeness(c, n, &st);
            }
        }
        if (st.term > c->st.max_term) {
            c->st.max_term = st.term;
        }
        n->last_role = st.role;
        n->last_term = st.term;
    }
}

/* ------------------------------------------------------- node storage --- */

static void node_free_log(rc_node *n)
{
    for (size_t k = 0; k < n->n_ents; k++) {
        nk_raft_entry_clear(&n->ents[k]);
    }
    n->n_ents = 0;
}

static uint64_t durable_last(const rc_node *n)
{
    return n->snap.index + n->n_ents;
}

static uint64_t durable_term(const rc_node *n, uint64_t i)
{
    if (i == n->snap.index) {
        return n->snap.term;
    }
    if (i < n->snap.index || i > durable_last(n)) {
        return 0;
    }
    return n->ents[i - n->snap.index - 1].term;
}

static int produce_snapshot(void *ctx, uint64_t to, const nk_raft_snapshot_meta *meta,
                            uint8_t **data, size_t *len)
{
    rc_node *n = ctx;
    (void)to;
    if (meta->index != n->snap.index || meta->term != n->snap.term) {
        fail(n->c, "node %llu asked for snapshot %llu/%llu but stores %llu/%llu",
             (unsigned long long)n->id, (unsigned long long)meta->index,
             (unsigned long long)meta->term, (unsigned long long)n->snap.index,
             (unsigned long long)n->snap.term);
        return NK_EAGAIN;
    }
    uint8_t *b = malloc(16);
    if (!b) {
        return NK_ENOMEM;
    }
    nk_put_u64(b, n->snap.index);
    nk_put_u64(b + 8, n->snap_chain);
    *data = b;
    *len = 16;
    return NK_OK;
}

/* The storage over the modelled durable log: raft may ask only for what a
 * processed Ready made durable, which is exactly what n->ents holds. */
static int storage_term(void *ctx, uint64_t index, uint64_t *term)
{
    rc_node *n = ctx;
    n->storage_reads++;
    if (n->storage_rc != NK_OK) {
        return n->storage_rc;
    }
    if (index <= n->snap.index || index > durable_last(n)) {
        fail(n->c, "node %llu: raft asked storage for the term of %llu, durable log is (%llu, %llu]",
             (unsigned long long)n->id, (unsigned long long)index,
             (unsigned long long)n->snap.index, (unsigned long long)durable_last(n));
        return NK_ENOENT;
    }
    *term = n->ents[index - n->snap.index - 1].term;
    return NK_OK;
}

static int storage_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                           nk_raft_entry **out, size_t *cnt)
{
    rc_node *n = ctx;
    n->storage_reads++;
    if (n->storage_rc != NK_OK) {
        return n->storage_rc;
    }
    if (lo >= hi || lo <= n->snap.index || hi - 1 > durable_last(n)) {
        fail(n->c, "node %llu: raft asked storage for [%llu, %llu), durable log is (%llu, %llu]",
             (unsigned long long)n->id, (unsigned long long)lo, (unsigned long long)hi,
             (unsigned long long)n->snap.index, (unsigned long long)durable_last(n));
        return NK_ENOENT;
    }
    size_t k = 0;
    uint64_t bytes = 0;
    for (uint64_t i = lo; i < hi; i++, k++) {
        uint64_t len = n->ents[i - n->snap.index - 1].len;
        if (k > 0 && max_bytes && bytes + len > max_bytes) {
            break;
        }
        bytes += len;
    }
    nk_raft_entry *a = calloc(k, sizeof(*a));
    if (!a) {
        return NK_ENOMEM;
    }
    for (size_t j = 0; j < k; j++) {
        const nk_raft_entry *e = &n->ents[lo + j - n->snap.index - 1];
        a[j] = *e;
        a[j].data = NULL;
        if (e->len) {
            a[j].data = malloc(e->len);
            if (!a[j].data) {
                for (size_t x = 0; x < j; x++) {
                    nk_raft_entry_clear(&a[x]);
                }
                free(a);
                return NK_ENOMEM;
            }
            memcpy(a[j].data, e->data, e->len);
        }
    }
    *out = a;
    *cnt = k;
    return NK_OK;
}

static void node_config(raftc *c, rc_node *n, nk_raft_config *cfg)
{
    nk_raft_config_default(cfg, n->id, c->o.seed);
    nk_rand_derive(&cfg->rand, c->o.seed, "raftc.raft", n->id * 1000003ULL + n->restarts);
    cfg->election_ticks = c->o.election_ticks;
    cfg->heartbeat_ticks = c->o.heartbeat_ticks;
    cfg->max_inflight_msgs = c->o.max_inflight_msgs;
    cfg->max_inflight_bytes = c->o.max_inflight_bytes;
    cfg->max_batch_bytes = c->o.max_batch_bytes;
    cfg->max_uncommitted_bytes = c->o.max_uncommitted_bytes;
    cfg->prevote = c->o.prevote;
    cfg->check_quorum = c->o.check_quorum;
    cfg->unsafe_commit_prev_term = c->o.unsafe_commit_prev_term;
    cfg->snapshot_produce = produce_snapshot;
    cfg->snapshot_ctx = n;
    if (c->o.mem_entries) {
        cfg->storage.term = storage_term;
        cfg->storage.entries = storage_entries;
        cfg->storage.ctx = n;
        cfg->max_mem_entries = c->o.mem_entries;
        cfg->max_mem_bytes = c->o.mem_bytes;
    }
}

static void persist(raftc *c, rc_node *n, const nk_raft_ready *rd)
{
    if (rd->has_snapshot) {
        const nk_raft_snapshot *s = &rd->snapshot;
        if (s->len != 16 || nk_get_u64(s->data) != s->meta.index) {
            fail(c, "node %llu got a malformed snapshot payload", (unsigned long long)n->id);
            return;
        }
        uint64_t chain = nk_get_u64(s->data + 8);
        /* The snapshot's history must be the one everybody applied. */
        register_applied(c, n->id, s->meta.index, s->meta.term, chain);
        n->snap = s->meta;
        n->snap_chain = chain;
        node_free_log(n);
        n->applied = s->meta.index;
        n->chain = chain;
        c->st.snapshots_installed++;
        tr(c, "node %llu installs snapshot at %llu", (unsigned long long)n->id,
           (unsigned long long)s->meta.index);
    }
    if (rd->n_entries) {
        uint64_t first = rd->entries[0].index;
        if (first <= n->snap.index || first > durable_last(n) + 1) {
            fail(c, "node %llu: Ready entries start at %llu, durable log is [%llu, %llu]",
                 (unsigned long long)n->id, (unsigned long long)first,
                 (unsigned long long)n->snap.index, (unsigned long long)durable_last(n));
            return;
        }
        size_t keep = (size_t)(first - n->snap.index - 1);
        for (size_t k = keep; k < n->n_ents; k++) {
            nk_raft_entry_clear(&n->ents[k]);
        }
        n->n_ents = keep;
        if (!nk_grow_zeroed((void **)&n->ents, &n->cap_ents, keep + rd->n_entries, sizeof(*n->ents))) {
            fail(c, "oom");
            return;
        }
        for (size_t k = 0; k < rd->n_entries; k++) {
            const nk_raft_entry *e = &rd->entries[k];
            if (e->index != durable_last(n) + 1) {
                fail(c, "node %llu: non-contiguous Ready entries", (unsigned long long)n->id);
                return;
            }
            lm_check(c, n->id, e, durable_term(n, e->index - 1));
            nk_raft_entry *d = &n->ents[n->n_ents];
            *d = *e;
            d->data = NULL;
            if (e->len) {
                d->data = malloc(e->len);
                memcpy(d->data, e->data, e->len);
            }
            n->n_ents++;
        }
    }
    if (rd->has_hard_state) {
        if (rd->hs.term < n->hs.term) {
            fail(c, "node %llu: persisted term went back from %llu to %llu",
                 (unsigned long long)n->id, (unsigned long long)n->hs.term,
                 (unsigned long long)rd->hs.term);
        }
        if (rd->hs.term == n->hs.term && n->hs.vote != 0 && rd->hs.vote != n->hs.vote) {
            fail(c, "node %llu changed its vote in term %llu from %llu to %llu",
                 (unsigned long long)n->id, (unsigned long long)n->hs.term,
                 (unsigned long long)n->hs.vote, (unsigned long long)rd->hs.vote);
        }
        n->hs = rd->hs;
    }
    uint64_t lt = durable_term(n, durable_last(n));
    if (n->hs.commit > durable_last(n) || n->hs.term < lt) {
        fail(c, "node %llu: durable state inconsistent (commit %llu, last %llu, term %llu < %llu)",
             (unsigned long long)n->id, (unsigned long long)n->hs.commit,
             (unsigned long long)durable_last(n), (unsigned long long)n->hs.term,
             (unsigned long long)lt);
    }
}

static void send_msgs(raftc *c, rc_node *n, nk_raft_ready *rd)
{
    for (size_t k = 0; k < rd->n_msgs; k++) {
        const nk_raft_msg *m = &rd->msgs[k];
        c->st.msgs_sent++;
        if (m->type == NK_RAFT_MSG_APPEND) {
            uint64_t b = 0;
            for (size_t j = 0; j < m->n_entries; j++) {
                b += m->entries[j].len;
            }
            if (b > c->st.max_append_bytes) {
                c->st.max_append_bytes = b;
            }
            if (m->n_entries > c->st.max_append_entries) {
                c->st.max_append_entries = m->n_entries;
            }
        }
        if (m->from != n->id || m->to == n->id || !node_of(c, m->to)) {
            fail(c, "node %llu emitted a bad message to %llu", (unsigned long long)n->id,
                 (unsigned long long)m->to);
            return;
        }
        if (c->chaos && chance(c, c->o.drop_pm)) {
            c->st.msgs_dropped++;
            continue;
        }
        size_t cap = nk_raft_msg_encoded_size(m);
        uint8_t *buf = malloc(cap);
        size_t len = 0;
        if (!buf || nk_raft_msg_encode(m, buf, cap, &len) != NK_OK) {
            free(buf);
            fail(c, "encode failed");
            return;
        }
        int copies = (c->chaos && chance(c, c->o.dup_pm)) ? 2 : 1;
        for (int d = 0; d < copies; d++) {
            if (!nk_grow_zeroed((void **)&c->net, &c->cap_net, c->n_net + 1, sizeof(*c->net))) {
                free(buf);
                fail(c, "oom");
                return;
            }
            rc_msg *q = &c->net[c->n_net++];
            q->at = c->now + nk_rand_between(&c->rng, c->o.delay_min, c->o.delay_max);
            q->from = m->from;
            q->to = m->to;
            q->len = len;
            if (d == 0) {
                q->buf = buf;
            } else {
                q->buf = malloc(len);
                memcpy(q->buf, buf, len);
            }
        }
    }
}

static void apply(raftc *c, rc_node *n, const nk_raft_ready *rd)
{
    for (size_t k = 0; k < rd->n_committed; k++) {
        const nk_raft_entry *e = &rd->committed[k];
        if (e->index != n->applied + 1) {
            fail(c, "node %llu applies index %llu after %llu", (unsigned long long)n->id,
                 (unsigned long long)e->index, (unsigned long long)n->applied);
            return;
        }
        n->chain = chain_next(n->chain, e);
        n->applied = e->index;
        register_applied(c, n->id, e->index, e->term, n->chain);
    }
    for (size_t k = 0; k < rd->n_reads; k++) {
        const nk_raft_read_state *rs = &rd->reads[k];
        for (size_t j = 0; j < c->n_reads; j++) {
            rc_read *q = &c->reads[j];
            if (q->ctx != rs->ctx) {
                continue;
            }
            if (q->node != n->id) {
                fail(c, "read %llu answered on node %llu, issued on %llu",
                     (unsigned long long)rs->ctx, (unsigned long long)n->id,
                     (unsigned long long)q->node);
            } else if (rs->index < q->min_index) {
                fail(c,
                     "stale read: read %llu on node %llu got index %llu but index %llu was "
                     "applied before it was issued",
                     (unsigned long long)rs->ctx, (unsigned long long)n->id,
                     (unsigned long long)rs->index, (unsigned long long)q->min_index);
            }
            c->st.reads_served++;
            c->reads[j] = c->reads[--c->n_reads];
            break;
        }
    }
}

static void maybe_compact(raftc *c, rc_node *n)
{
    if (!c->o.compact_every || n->applied < n->snap.index + c->o.compact_every) {
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(n->r, &st);
    if (st.applied != n->applied) {
        fail(c, "node %llu: raft applied %llu, state machine %llu", (unsigned long long)n->id,
             (unsigned long long)st.applied, (unsigned long long)n->applied);
        return;
    }
    nk_raft_snapshot_meta meta;
    if (nk_raft_compact(n->r, n->applied, &meta) != NK_OK || meta.index != n->applied) {
        fail(c, "node %llu: compact at %llu failed", (unsigned long long)n->id,
             (unsigned long long)n->applied);
        return;
    }
    if (durable_last(n) < meta.index || durable_term(n, meta.index) != meta.term) {
        fail(c, "node %llu: compacting past its durable log", (unsigned long long)n->id);
        return;
    }
    size_t drop = (size_t)(meta.index - n->snap.index);
    for (size_t k = 0; k < drop; k++) {
        nk_raft_entry_clear(&n->ents[k]);
    }
    memmove(n->ents, n->ents + drop, (n->n_ents - drop) * sizeof(*n->ents));
    n->n_ents -= drop;
    n->snap = meta;
    n->snap_chain = n->chain;
}

/* A node whose storage failed: raft reported it, the host gives up on the
 * incarnation (like a crash; restart uses the durable state). */
static void node_stop_failed(raftc *c, rc_node *n)
{
    if (!n->storage_failed) {
        n->storage_failed = true;
        c->storage_failures++;
    }
    nk_raft_free(n->r);
    n->r = NULL;
    n->last_role = NK_RAFT_FOLLOWER;
}

static void process_ready(raftc *c, rc_node *n)
{
    for (int round = 0; round < 4 && n->r && nk_raft_has_ready(n->r); round++) {
        nk_raft_ready rd;
        int rc = nk_raft_ready_get(n->r, &rd);
        if (rc != NK_OK && n->storage_rc != NK_OK && rc == n->storage_rc) {
            /* The injected storage failure surfaced: the host stops the node. */
            tr(c, "node %llu stops on its storage error %s", (unsigned long long)n->id,
               nk_errname(rc));
            node_stop_failed(c, n);
            return;
        }
        if (rc != NK_OK) {
            fail(c, "node %llu: ready_get %s", (unsigned long long)n->id, nk_errname(rc));
            return;
        }
        persist(c, n, &rd);
        send_msgs(c, n, &rd);
        apply(c, n, &rd);
        nk_raft_advance(n->r, &rd);
        if (c->failed) {
            return;
        }
        maybe_compact(c, n);
    }
}

/* ------------------------------------------------------ crash/restart --- */

void raftc_crash(raftc *c, uint64_t id)
{
    rc_node *n = node_of(c, id);
    if (!n || !n->r) {
        return;
    }
    tr(c, "node %llu crashes", (unsigned long long)id);
    nk_raft_free(n->r);
    n->r = NULL;
    n->last_role = NK_RAFT_FOLLOWER;
    c->st.crashes++;
}

int raftc_restart(raftc *c, uint64_t id)
{
    rc_node *n = node_of(c, id);
    if (!n || n->r) {
        return NK_OK;
    }
    n->restarts++;
    nk_raft_config cfg;
    node_config(c, n, &cfg);
    int rc = nk_raft_new(&cfg, &n->r);
    if (rc != NK_OK) {
        return rc;
    }
    bool empty = n->hs.term == 0 && n->snap.index == 0 && n->n_ents == 0;
    if (!empty && c->o.mem_entries) {
        rc = nk_raft_restore_stored(n->r, &n->hs, n->snap.index ? &n->snap : NULL,
                                    durable_last(n), n->snap.index);
        if (rc != NK_OK && n->storage_rc != NK_OK) {
            node_stop_failed(c, n);
            return rc;
        }
    } else if (!empty) {
        rc = nk_raft_restore(n->r, &n->hs, n->snap.index ? &n->snap : NULL, n->ents, n->n_ents,
                             n->snap.index);
        if (rc != NK_OK) {
            fail(c, "node %llu: restore failed: %s", (unsigned long long)id, nk_errname(rc));
            nk_raft_free(n->r);
            n->r = NULL;
            return rc;
        }
    }
    n->applied = n->snap.index;
    n->chain = n->snap_chain;
    tr(c, "node %llu restarts (term %llu, snapshot %llu, log to %llu, commit %llu)",
       (unsigned long long)id, (unsigned long long)n->hs.term, (unsigned long long)n->snap.index,
       (unsigned long long)durable_last(n), (unsigned long long)n->hs.commit);
    return NK_OK;
}

/* ----------------------------------------------------------- network --- */

static void deliver_due(raftc *c)
{
    size_t w = 0;
    size_t n_now = c->n_net; /* messages sent during delivery wait a step */
    for (size_t k = 0; k < n_now; k++) {
        rc_msg q = c->net[k];
        if (q.at > c->now) {
            c->net[w++] = q;
            continue;
        }
        rc_node *from = node_of(c, q.from);
        rc_node *to = node_of(c, q.to);
        bool drop = !to || !to->r || from->group != to->group;
        nk_raft_msg m;
        if (!drop) {
            int rc = nk_raft_msg_decode(q.buf, q.len, &m);
            if (rc != NK_OK) {
                fail(c, "decode of an encoded message failed: %s", nk_errname(rc));
                free(q.buf);
                continue;
            }
            if (c->o.trace && c->now > c->o.trace_msgs_after) {
                tr(c, "  %llu -> %llu %s term %llu idx %llu lt %llu n %zu commit %llu rej %d hint %llu/%llu",
                   (unsigned long long)m.from, (unsigned long long)m.to,
                   nk_raft_msg_type_name(m.type), (unsigned long long)m.term,
                   (unsigned long long)m.index, (unsigned long long)m.log_term, m.n_entries,
                   (unsigned long long)m.commit, m.reject, (unsigned long long)m.hint_index,
                   (unsigned long long)m.hint_term);
            }
            if (c->drop_type && m.type == c->drop_type) {
                drop = true;
            } else {
                rc = nk_raft_step(to->r, &m);
                if (rc != NK_OK && to->storage_rc != NK_OK && rc == to->storage_rc) {
                    tr(c, "node %llu stops on its storage error %s", (unsigned long long)q.to,
                       nk_errname(rc));
                    node_stop_failed(c, to);
                    rc = NK_OK;
                }
                if (rc != NK_OK) {
                    fail(c, "node %llu rejected a %s: %s", (unsigned long long)q.to,
                         nk_raft_msg_type_name(m.type), nk_errname(rc));
                }
            }
            nk_raft_msg_clear(&m);
        }
        if (drop) {
            c->st.msgs_dropped++;
        }
        free(q.buf);
    }
    for (size_t k = n_now; k < c->n_net; k++) {
        c->net[w++] = c->net[k];
    }
    c->n_net = w;
}

/* ------------------------------------------------------------ public --- */

void raftc_opts_default(raftc_opts *o, uint64_t seed, uint32_t voters)
{
    memset(o, 0, sizeof(*o));
    o->seed = seed;
    o->voters = voters;
    o->election_ticks = 10;
    o->heartbeat_ticks = 2;
    o->max_inflight_msgs = 8;
    o->max_inflight_bytes = 1 << 20;
    o->max_batch_bytes = 4096;
    o->prevote = true;
    o->check_quorum = true;
    o->tick_units = 10;
    o->delay_min = 1;
    o->delay_max = 5;
    o->ready_pm = 1000;
    o->mem_entries = 8; /* storage on, tiny tail: every test exercises read-back */
}

void raftc_opts_chaos(raftc_opts *o)
{
    o->drift_units = 2;
    o->delay_min = 1;
    o->delay_max = 30;
    o->drop_pm = 60;
    o->dup_pm = 20;
    o->crash_pm = 3;
    o->restart_pm = 20;
    o->partition_pm = 3;
    o->heal_pm = 10;
    o->ready_pm = 500;
    o->compact_every = 25;
}

int raftc_new(const raftc_opts *o, raftc **out)
{
    *out = NULL;
    if (o->voters == 0 || o->voters + o->spares > RAFTC_MAX_NODES || o->tick_units == 0 ||
        o->delay_min > o->delay_max) {
        return NK_EINVAL;
    }
    raftc *c = calloc(1, sizeof(*c));
    if (!c) {
        return NK_ENOMEM;
    }
    c->chk = nk_rcheck_new();
    if (!c->chk) {
        free(c);
        return NK_ENOMEM;
    }
    c->o = *o;
    c->n = o->voters + o->spares;
    nk_rand_derive(&c->rng, o->seed, "raftc.faults", 0);
    c->chaos = o->drop_pm || o->dup_pm || o->crash_pm || o->partition_pm || o->leader_kill_pm || o->ready_pm < 1000;
    nk_raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (uint32_t k = 0; k < o->voters; k++) {
        nk_raft_conf_set(&conf, k + 1, NK_RAFT_VOTER);
    }
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        n->c = c;
        n->id = k + 1;
        uint32_t d = o->drift_units;
        n->tick_units = o->tick_units - (d < o->tick_units ? d : 0) +
                        (uint32_t)nk_rand_below(&c->rng, 2 * (uint64_t)d + 1);
        if (n->tick_units == 0) {
            n->tick_units = 1;
        }
        n->tick_phase = (uint32_t)nk_rand_below(&c->rng, n->tick_units);
        nk_raft_config cfg;
        node_config(c, n, &cfg);
        int rc = nk_raft_new(&cfg, &n->r);
        if (rc == NK_OK && k < o->voters) {
            rc = nk_raft_bootstrap(n->r, &conf);
        }
        if (rc != NK_OK) {
            raftc_free(c);
            return rc;
        }
        process_ready(c, n); /* persist the bootstrap entry */
    }
    *out = c;
    return NK_OK;
}

void raftc_free(raftc *c)
{
    if (!c) {
        return;
    }
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        nk_raft_free(n->r);
        node_free_log(n);
        free(n->ents);
    }
    for (size_t k = 0; k < c->n_net; k++) {
        free(c->net[k].buf);
    }
    free(c->net);
    nk_rcheck_free(c->chk);
    free(c->reads);
    free(c);
}

void raftc_storage_fail(raftc *c, uint64_t id, int rc)
{
    rc_node *n = node_of(c, id);
    if (n) {
        n->storage_rc = rc;
        if (rc == NK_OK) {
            n->storage_failed = false;
        }
    }
}

uint32_t raftc_storage_failures(const raftc *c)
{
    return c->storage_failures;
}

uint64_t raftc_storage_reads(const raftc *c, uint64_t id)
{
    return id >= 1 && id <= c->n ? c->nodes[id - 1].storage_reads : 0;
}

uint64_t raftc_applied_digest(const raftc *c, uint64_t n)
{
    return nk_rcheck_applied_chain(c->chk, n); /* the chain hashes every entry up to n */
}

void raftc_set_chaos(raftc *c, bool on)
{
    c->chaos = on;
}

static uint32_t count_down(const raftc *c)
{
    uint32_t d = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        d += c->nodes[k].r == NULL;
    }
    return d;
}

static void random_faults(raftc *c)
{
    if (chance(c, c->o.crash_pm) && count_down(c) < c->n / 2) {
        raftc_crash(c, 1 + nk_rand_below(&c->rng, c->n));
    }
    if (chance(c, c->o.leader_kill_pm)) {
        /* Nemesis: depose a leader soon after it got elected, leaving
         * partially replicated tails behind (thesis figure 3.7 setups). */
        uint64_t lead = raftc_leader(c);
        if (lead && count_down(c) < c->n / 2) {
            raftc_crash(c, lead);
        } else if (lead) {
            for (uint32_t k = 0; k < c->n; k++) {
                c->nodes[k].group = (k + 1 == lead) ? 1 : 0;
            }
            tr(c, "partition: leader %llu isolated", (unsigned long long)lead);
        }
    }
    if (chance(c, c->o.restart_pm)) {
        uint64_t id = 1 + nk_rand_below(&c->rng, c->n);
        if (!c->nodes[id - 1].r) {
            raftc_restart(c, id);
        }
    }
    if (chance(c, c->o.partition_pm)) {
        if (nk_rand_chance(&c->rng, 1, 2)) {
            uint64_t id = 1 + nk_rand_below(&c->rng, c->n);
            for (uint32_t k = 0; k < c->n; k++) {
                c->nodes[k].group = (k + 1 == id) ? 1 : 0;
            }
            tr(c, "partition: node %llu isolated", (unsigned long long)id);
        } else {
            for (uint32_t k = 0; k < c->n; k++) {
                c->nodes[k].group = (uint32_t)nk_rand_below(&c->rng, 2);
            }
            tr(c, "partition: random split");
        }
    }
    if (chance(c, c->o.heal_pm)) {
        for (uint32_t k = 0; k < c->n; k++) {
            c->nodes[k].group = 0;
        }
    }
}

int raftc_step(raftc *c)
{
    if (c->failed) {
        return -1;
    }
    c->now++;
    c->st.steps++;
    if (c->chaos) {
        random_faults(c);
    }
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        if (n->r && (c->now + n->tick_phase) % n->tick_units == 0) {
            nk_raft_tick(n->r);
        }
    }
    deliver_due(c);
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        if (n->r && (!c->chaos || chance(c, c->o.ready_pm))) {
            process_ready(c, n);
        }
    }
    check_roles(c);
    return c->failed ? -1 : 0;
}

int raftc_steps(raftc *c, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        if (raftc_step(c) != 0) {
            return -1;
        }
    }
    return 0;
}

const char *raftc_error(const raftc *c)
{
    return c->failed ? c->err : "";
}

bool raftc_failed(const raftc *c)
{
    return c->failed;
}

nk_raft *raftc_node(raftc *c, uint64_t id)
{
    rc_node *n = node_of(c, id);
    return n ? n->r : NULL;
}

uint32_t raftc_size(const raftc *c)
{
    return c->n;
}

uint64_t raftc_leader(raftc *c)
{
    uint64_t best = 0, best_term = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        if (!n->r) {
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(n->r, &st);
        if (st.role == NK_RAFT_LEADER && st.term > best_term) {
            best = n->id;
            best_term = st.term;
        }
    }
    return best;
}

uint64_t raftc_applied(const raftc *c, uint64_t id)
{
    if (id == 0 || id > c->n) {
        return 0;
    }
    return c->nodes[id - 1].applied;
}

void raftc_set_group(raftc *c, uint64_t id, uint32_t g)
{
    rc_node *n = node_of(c, id);
    if (n) {
        n->group = g;
    }
}

void raftc_heal(raftc *c)
{
    for (uint32_t k = 0; k < c->n; k++) {
        c->nodes[k].group = 0;
        if (!c->nodes[k].r) {
            raftc_restart(c, k + 1);
        }
    }
    c->drop_type = 0;
}

void raftc_drop_type(raftc *c, uint8_t type)
{
    c->drop_type = type;
}

int raftc_propose(raftc *c, uint64_t id, const char *data, uint64_t *index)
{
    nk_raft *r = raftc_node(c, id);
    if (!r) {
        return NK_ECRASHED;
    }
    int rc = nk_raft_propose(r, data, strlen(data), index, NULL);
    if (rc == NK_OK) {
        c->st.proposals++;
    }
    return rc;
}

int raftc_read(raftc *c, uint64_t id)
{
    nk_raft *r = raftc_node(c, id);
    if (!r) {
        return NK_ECRASHED;
    }
    uint64_t ctx = ++c->next_ctx;
    int rc = nk_raft_read_index(r, ctx);
    if (rc != NK_OK) {
        return rc;
    }
    if (!nk_grow_zeroed((void **)&c->reads, &c->cap_reads, c->n_reads + 1, sizeof(*c->reads))) {
        return NK_ENOMEM;
    }
    rc_read *q = &c->reads[c->n_reads++];
    q->ctx = ctx;
    q->node = id;
    q->min_index = c->max_applied;
    return NK_OK;
}

bool raftc_run_until(raftc *c, bool (*pred)(raftc *, void *), void *arg, uint32_t max)
{
    for (uint32_t k = 0; k < max; k++) {
        if (pred(c, arg)) {
            return true;
        }
        if (raftc_step(c) != 0) {
            return false;
        }
    }
    return pred(c, arg);
}

static bool has_leader(raftc *c, void *arg)
{
    (void)arg;
    return raftc_leader(c) != 0;
}

bool raftc_elect(raftc *c, uint32_t max)
{
    return raftc_run_until(c, has_leader, NULL, max);
}

static bool all_applied(raftc *c, void *arg)
{
    uint64_t index = *(const uint64_t *)arg;
    uint64_t lead = raftc_leader(c);
    if (!lead) {
        return false;
    }
    nk_raft_status ls;
    nk_raft_status_get(raftc_node(c, lead), &ls);
    for (uint32_t k = 0; k < c->n; k++) {
        rc_node *n = &c->nodes[k];
        if (!nk_raft_conf_role(&ls.conf, n->id)) {
            continue;
        }
        if (!n->r || n->applied < index) {
            return false;
        }
    }
    return true;
}

bool raftc_wait_applied(raftc *c, uint64_t index, uint32_t max)
{
    return raftc_run_until(c, all_applied, &index, max);
}

static uint64_t random_member(raftc *c, const nk_raft_conf *conf, int role)
{
    uint64_t ids[NK_RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t k = 0; k < conf->n; k++) {
        if (!role || conf->m[k].role == role) {
            ids[n++] = conf->m[k].id;
        }
    }
    return n ? ids[nk_rand_below(&c->rng, n)] : 0;
}

static void random_conf_change(raftc *c, uint64_t lead)
{
    nk_raft *r = raftc_node(c, lead);
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    uint64_t outsiders[RAFTC_MAX_NODES];
    uint32_t n_out = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        if (!nk_raft_conf_role(&st.conf, k + 1)) {
            outsiders[n_out++] = k + 1;
        }
    }
    uint8_t type = (uint8_t)(1 + nk_rand_below(&c->rng, 4));
    uint64_t node = 0;
    switch (type) {
    case NK_RAFT_CC_ADD_VOTER:
    case NK_RAFT_CC_ADD_LEARNER:
        node = n_out ? outsiders[nk_rand_below(&c->rng, n_out)] : 0;
        break;
    case NK_RAFT_CC_PROMOTE:
        node = random_member(c, &st.conf, NK_RAFT_LEARNER);
        break;
    default:
        /* keep at least three voters around so chaos runs stay lively */
        if (nk_raft_conf_voters(&st.conf) <= 3) {
            node = random_member(c, &st.conf, NK_RAFT_LEARNER);
        } else {
            node = random_member(c, &st.conf, 0);
        }
        break;
    }
    if (!node) {
        return;
    }
    int rc = nk_raft_propose_conf_change(r, type, node, NULL);
    tr(c, "conf change %u node %llu on leader %llu: %s", type, (unsigned long long)node,
       (unsigned long long)lead, nk_errname(rc));
}

int raftc_run_workload(raftc *c, const raftc_workload *w, uint32_t steps)
{
    char buf[64];
    for (uint32_t s = 0; s < steps; s++) {
        /* Act on a random live node: a stale leader's proposals are part of
         * the test (they must never be applied if not committed). */
        uint64_t id = 1 + nk_rand_below(&c->rng, c->n);
        nk_raft *r = raftc_node(c, id);
        if (r && chance(c, w->propose_pm)) {
            snprintf(buf, sizeof(buf), "v%llu", (unsigned long long)++c->prop_counter);
            raftc_propose(c, id, buf, NULL);
        }
        if (r && chance(c, w->read_pm)) {
            raftc_read(c, id);
        }
        uint64_t lead = raftc_leader(c);
        if (lead && chance(c, w->conf_pm)) {
            random_conf_change(c, lead);
        }
        if (lead && chance(c, w->transfer_pm)) {
            nk_raft_status st;
            nk_raft_status_get(raftc_node(c, lead), &st);
            uint64_t to = random_member(c, &st.conf, NK_RAFT_VOTER);
            if (to) {
                nk_raft_transfer_leader(raftc_node(c, lead), to);
                tr(c, "transfer %llu -> %llu", (unsigned long long)lead, (unsigned long long)to);
            }
        }
        if (raftc_step(c) != 0) {
            return -1;
        }
    }
    return 0;
}

bool raftc_check_liveness(raftc *c, uint32_t max)
{
    raftc_heal(c);
    raftc_set_chaos(c, false);
    uint64_t index = 0;
    for (uint32_t k = 0; k < max && !c->failed; k++) {
        uint64_t lead = raftc_leader(c);
        if (lead && index == 0) {
            if (raftc_propose(c, lead, "liveness", &index) != NK_OK) {
                index = 0;
            }
        }
        if (index && all_applied(c, &index)) {
            return true;
        }
        /* A leader that lost its entry (deposed) makes us propose again. */
        if (index && lead) {
            uint64_t t;
            if (nk_raft_term_at(raftc_node(c, lead), index, &t) != NK_OK) {
                index = 0;
            }
        }
        raftc_step(c);
    }
    for (uint32_t k = 0; k < c->n && c->o.trace; k++) {
        rc_node *n = &c->nodes[k];
        if (!n->r) {
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(n->r, &st);
        tr(c, "node %llu: %s term %llu lead %llu commit %llu applied %llu last %llu conf_n %u voter %d",
           (unsigned long long)n->id, nk_raft_role_name(st.role), (unsigned long long)st.term,
           (unsigned long long)st.lead, (unsigned long long)st.commit,
           (unsigned long long)st.applied, (unsigned long long)st.last_index, st.conf.n,
           nk_raft_conf_role(&st.conf, n->id));
        for (uint32_t j = 0; j < st.conf.n && st.role == NK_RAFT_LEADER; j++) {
            uint64_t m = 0, nx = 0;
            int ps = 0;
            nk_raft_progress_get(n->r, st.conf.m[j].id, &m, &nx, &ps);
            tr(c, "  progress %llu: match %llu next %llu state %d", (unsigned long long)st.conf.m[j].id,
               (unsigned long long)m, (unsigned long long)nx, ps);
        }
    }
    if (!c->failed) {
        fail(c, "liveness: no leader applied a new proposal on all members within %u steps", max);
    }
    return false;
}

void raftc_stats_get(const raftc *c, raftc_stats *s)
{
    *s = c->st;
    s->max_committed = c->max_applied;
}
