/*
 * peer.c - one region's replica on a store: its raft node, the durable part
 * of each Ready (staged into the store-wide raft log), applying committed
 * entries (membership changes update the region descriptor), pending
 * proposals and reads, and snapshots.
 *
 * Snapshots (volatile state machines): a local compaction serializes the
 * state machine at its applied index into snap/<region>-<index>.snap
 * (durable first), then tells raft and stages a COMPACT record; the payload
 * a leader sends is that file's envelope. Installing a received snapshot
 * writes the payload file first, then replaces the state machine, then the
 * descriptor in LOCALMETA, then stages the RESET record: a crash anywhere in
 * between leaves the old raft log state in force (the new file is garbage
 * that open removes), and raft delivers the snapshot again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/store/store_int.h"
#include "nokv/util/assert.h"

#define SD_MAGIC 0x4453u /* "SD": the state machine bytes of a durable snapshot */
#define SD_VERSION 1u

/* A durable state machine's raft snapshot payload: the snapfile envelope
 * (descriptor at the snapshot point) around "SD" {from_store, conf_index}:
 * the engine data itself is fetched out of band (store.h). */
static int durable_descriptor(nk_peer *p, const nk_raft_snapshot_meta *meta, uint8_t **data,
                              size_t *len)
{
    nk_store *s = p->s;
    if (s->fetch_fn == NULL) {
        return NK_EAGAIN; /* nobody here to serve the data: wait for the log */
    }
    nk_buf b = {0};
    int rc = nk_wire_begin(&b, SD_MAGIC, SD_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(&b, s->o.store_id);
    rc = rc ? rc : nk_wire_put_uvar(&b, p->conf_index);
    rc = rc ? rc : nk_wire_end(&b);
    if (rc == NK_OK) {
        rc = nk_snapfile_encode(&p->desc, meta->index, meta->term, b.data, b.len, data, len);
    }
    free(b.data);
    return rc;
}

static int durable_descriptor_decode(const uint8_t *sm, size_t len, uint64_t *from_store,
                                     uint64_t *conf_index)
{
    nk_wire_rd rd;
    int rc = nk_wire_open(&rd, sm, len, SD_MAGIC, SD_VERSION, NULL);
    if (rc != NK_OK) {
        return NK_ECORRUPT;
    }
    *from_store = nk_wire_get_uvar(&rd);
    *conf_index = nk_wire_get_uvar(&rd);
    return nk_wire_close(&rd) == NK_OK ? NK_OK : NK_ECORRUPT;
}

static int snapshot_produce(void *ctx, uint64_t to, const nk_raft_snapshot_meta *meta,
                            uint8_t **data, size_t *len)
{
    nk_peer *p = ctx;
    (void)to;
    if (!p->s->o.sm.volatile_state) {
        return durable_descriptor(p, meta, data, len);
    }
    if (p->snap_blob == NULL || meta->index != p->snap.index || meta->term != p->snap.term) {
        return NK_EAGAIN;
    }
    uint8_t *b = malloc(p->snap_len);
    if (b == NULL) {
        return NK_ENOMEM;
    }
    memcpy(b, p->snap_blob, p->snap_len);
    *data = b;
    *len = p->snap_len;
    return NK_OK;
}

/* The raft core's log storage is the store-wide raft log: raft keeps only
 * a bounded tail in memory and reads older entries back from it (verified
 * by checksum). Raft asks only for entries a finished batch wrote, which the
 * log serves whether or not its sync finished. */
static int storage_term(void *ctx, uint64_t index, uint64_t *term)
{
    nk_peer *p = ctx;
    return nk_raftlog_term(p->s->log, p->region_id, index, term);
}

static int storage_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                           nk_raft_entry **out, size_t *n)
{
    nk_peer *p = ctx;
    return nk_raftlog_entries_max(p->s->log, p->region_id, lo, hi, max_bytes, out, n);
}

static int raft_new(nk_peer *p)
{
    nk_store *s = p->s;
    nk_raft_config c;
    nk_raft_config_default(&c, p->peer_id, nk_rt_seed(s->rt));
    /* One jitter stream per replica and incarnation: the salt differs per
     * boot, so restarted replicas do not replay their old timeouts. */
    nk_rand_derive(&c.rand, nk_rt_seed(s->rt), "store.raft",
                   (p->peer_id << 20) ^ p->region_id ^ s->o.jitter_salt);
    c.election_ticks = s->o.election_ticks;
    c.heartbeat_ticks = s->o.heartbeat_ticks;
    if (s->o.max_inflight_msgs) {
        c.max_inflight_msgs = s->o.max_inflight_msgs;
    }
    if (s->o.max_batch_bytes) {
        c.max_batch_bytes = s->o.max_batch_bytes;
    }
    c.unsafe_commit_prev_term = s->o.unsafe_commit_prev_term;
    c.snapshot_produce = snapshot_produce;
    c.snapshot_ctx = p;
    c.storage.term = storage_term;
    c.storage.entries = storage_entries;
    c.storage.ctx = p;
    if (s->o.raft_mem_entries) {
        c.max_mem_entries = s->o.raft_mem_entries;
    }
    if (s->o.raft_mem_bytes) {
        c.max_mem_bytes = s->o.raft_mem_bytes;
    }
    return nk_raft_new(&c, &p->raft);
}

static nk_peer *peer_alloc(nk_store *s, const nk_region *desc, uint64_t peer_id)
{
    nk_peer *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->s = s;
    p->region_id = desc->id;
    p->peer_id = peer_id;
    p->desc = *desc;
    p->logged_role = -1; /* the first observation logs the role it starts in */
    nk_u64map_init(&p->writes);
    return p;
}

int nk_peer_create(nk_store *s, const nk_region *desc, uint64_t peer_id,
                   const nk_raft_hard_state *start_hs, nk_peer **out)
{
    nk_peer *p = peer_alloc(s, desc, peer_id);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    int rc = raft_new(p);
    uint64_t applied = 0;
    if (rc == NK_OK && s->o.sm.open_region != NULL) {
        rc = s->o.sm.open_region(s->o.sm.ctx, desc->id, NULL, 0, 0, &applied);
    }
    if (rc == NK_OK && start_hs != NULL && start_hs->term > 0) {
        nk_raft_hard_state hs = {.term = start_hs->term, .vote = start_hs->vote, .commit = 0};
        rc = nk_raft_restore(p->raft, &hs, NULL, NULL, 0, 0);
        p->hs = hs;
        if (rc == NK_OK) {
            rc = nk_raftlog_stage_hard_state(s->log, desc->id, &hs);
        }
    }
    if (rc != NK_OK) {
        nk_peer_free(p, NK_ESTOPPED);
        return rc;
    }
    *out = p;
    return NK_OK;
}

int nk_peer_recover(nk_store *s, const nk_region *desc, uint64_t peer_id, nk_peer **out,
                    nk_errbuf *eb)
{
    nk_peer *p = peer_alloc(s, desc, peer_id);
    if (p == NULL) {
        return NK_ENOMEM;
    }
    int rc = raft_new(p);
    nk_raftlog_region_state st;
    bool have = rc == NK_OK && nk_raftlog_region(s->log, desc->id, &st) == NK_OK;
    const uint8_t *sm = NULL;
    size_t sm_len = 0;
    if (rc == NK_OK && have && st.has_snapshot && s->o.sm.volatile_state) {
        rc = nk_snapfile_read(s->rt, s->snapdir, desc->id, st.snap.index, &p->snap_blob,
                              &p->snap_len);
        const nk_localmeta_region *tl = nk_localmeta_find(&s->meta, desc->id);
        if (rc == NK_ENOENT && tl != NULL && tl->tomb_term > 0) {
            /* A replica re-created after a tombstone, and the log still holds
             * the earlier incarnation (its DESTROY was not durable when we
             * crashed). A new incarnation writes a payload before any record
             * that names it, so a missing payload means this state is the old
             * one: drop it and start from the tombstone's term and vote. */
            nk_log(s->rt, NK_LOG_WARN,
                   "store %" PRIu64 " region %" PRIu64
                   ": dropping a removed incarnation's raft state (snapshot %" PRIu64 ")",
                   s->o.store_id, desc->id, st.snap.index);
            rc = nk_raftlog_stage_destroy(s->log, desc->id);
            have = false;
        }
        nk_region sdesc;
        uint64_t sidx = 0, sterm = 0;
        if (rc == NK_OK && have) {
            rc = nk_snapfile_decode(p->snap_blob, p->snap_len, &sdesc, &sidx, &sterm, &sm, &sm_len);
            if (rc == NK_OK && (sidx != st.snap.index || sterm != st.snap.term)) {
                rc = NK_ECORRUPT;
            }
        }
        if (rc != NK_OK) {
            nk_errbuf_set(eb,
                          "region %" PRIu64 ": snapshot payload %s/%020" PRIu64 "-%020" PRIu64
                          ".snap is missing or damaged (%s); the raft log needs it",
                          desc->id, s->snapdir, desc->id, st.snap.index, nk_errname(rc));
            rc = rc == NK_ENOENT ? NK_ECORRUPT : rc;
        }
    }
    if (rc == NK_OK && have && st.has_snapshot && !s->o.sm.volatile_state) {
        /* A marker at the log's snapshot point: the engine data of that
         * snapshot never arrived (or arrived in part): fetch it again. A
         * marker at another index belongs to a RESET that did not survive;
         * the data it would have replaced is intact. */
        int mrc = nk_snapfile_read(s->rt, s->snapdir, desc->id, st.snap.index, &p->snap_blob,
                                   &p->snap_len);
        nk_region sdesc;
        uint64_t sidx = 0, sterm = 0, conf_index = 0;
        if (mrc == NK_OK) {
            mrc = nk_snapfile_decode(p->snap_blob, p->snap_len, &sdesc, &sidx, &sterm, &sm, &sm_len);
            mrc = mrc ? mrc : durable_descriptor_decode(sm, sm_len, &p->fetch_from, &conf_index);
            sm = NULL;
            sm_len = 0;
            if (mrc != NK_OK || sidx != st.snap.index || sterm != st.snap.term) {
                nk_errbuf_set(eb,
                              "region %" PRIu64 ": engine snapshot marker %s/%020" PRIu64
                              "-%020" PRIu64 ".snap is damaged; remove the region's data and "
                              "that file to fetch it again",
                              desc->id, s->snapdir, desc->id, st.snap.index);
                rc = NK_ECORRUPT;
            }
            p->data_pending = rc == NK_OK;
        } else if (mrc == NK_ENOENT) {
            free(p->snap_blob);
            p->snap_blob = NULL;
            p->snap_len = 0;
            nk_snapfile_gc(s->rt, s->snapdir, desc->id, UINT64_MAX);
        } else {
            rc = mrc;
            nk_errbuf_set(eb, "region %" PRIu64 ": reading the engine snapshot marker: %s",
                          desc->id, nk_errname(mrc));
        }
    }
    uint64_t applied = 0;
    if (rc == NK_OK && s->o.sm.open_region != NULL) {
        rc = s->o.sm.open_region(s->o.sm.ctx, desc->id, sm, sm_len,
                                 have && st.has_snapshot ? st.snap.index : 0, &applied);
    }
    /* Entries stay in the raft log: raft reads back what it needs. */
    size_t n = have && st.last_index >= st.first_index ? (size_t)(st.last_index - st.first_index + 1)
                                                       : 0;
    const nk_localmeta_region *lr = nk_localmeta_find(&s->meta, desc->id);
    if (lr != NULL) {
        p->conf_index = lr->conf_index;
    }
    if (rc == NK_OK && !have && lr != NULL && lr->tomb_term > 0) {
        /* A replica re-created after a tombstone, with no raft state of its
         * own yet: it starts from its earlier incarnation's term and vote. */
        nk_raft_hard_state hs = {.term = lr->tomb_term, .vote = lr->tomb_vote};
        rc = nk_raft_restore(p->raft, &hs, NULL, NULL, 0, 0);
        p->hs = hs;
    }
    if (rc == NK_OK && have && (st.has_hard_state || st.has_snapshot || n > 0)) {
        nk_raft_hard_state hs = st.has_hard_state ? st.hs : (nk_raft_hard_state){0};
        uint64_t snap_index = st.has_snapshot ? st.snap.index : 0;
        /* A commit index whose entries were lost with an unsynced tail, or
         * below a snapshot point, is clamped into what the log holds. */
        if (hs.commit > st.last_index) {
            hs.commit = st.last_index;
        }
        if (hs.commit < snap_index) {
            hs.commit = snap_index;
        }
        if (applied > hs.commit) {
            applied = hs.commit;
        }
        if (applied < snap_index || p->data_pending) {
            applied = snap_index; /* pending: the engine range is garbage */
        }
        rc = nk_raft_restore_stored(p->raft, &hs, st.has_snapshot ? &st.snap : NULL,
                                    st.last_index, applied);
        if (rc != NK_OK) {
            nk_errbuf_set(eb,
                          "region %" PRIu64
                          ": raft rejected the recovered state or reading entries back failed"
                          " (%s): term %" PRIu64 " commit %" PRIu64 " snapshot %" PRIu64
                          " log %" PRIu64 "..%" PRIu64,
                          desc->id, nk_errname(rc), hs.term, hs.commit, snap_index,
                          st.first_index, st.last_index);
        }
        p->hs = hs;
        if (st.has_snapshot) {
            p->snap = st.snap;
        }
        p->applied = applied;
    }
    if (rc != NK_OK) {
        nk_peer_free(p, NK_ESTOPPED);
        return rc;
    }
    if (s->o.obs != NULL && s->o.obs->recovered != NULL) {
        s->o.obs->recovered(s->o.obs->ctx, s->o.store_id, desc->id, nk_raftlog_last_lsn(s->log),
                            &p->hs, p->snap.index, have ? st.last_index : 0);
    }
    *out = p;
    return NK_OK;
}

static bool at_or_below(const nk_pending *q, uint64_t index)
{
    return q->index <= index;
}

static bool expired(const nk_pending *q, uint64_t arg)
{
    const uint64_t *nt = (const uint64_t *)(uintptr_t)arg; /* {now, ttl} */
    return nt[0] - q->since > nt[1];
}

int nk_peer_persist_desc(nk_peer *p, uint8_t state)
{
    nk_store *s = p->s;
    int rc = nk_localmeta_put(&s->meta, &p->desc, state);
    if (rc != NK_OK) {
        return rc;
    }
    nk_localmeta_find(&s->meta, p->region_id)->conf_index = p->conf_index;
    return nk_store_save_meta(s);
}

/* Complete a pending read (reads live in a small fixed table). */
static void finish_read(nk_pending *q, int rc, uint64_t result, uint64_t lead)
{
    if (q->used) {
        q->used = false;
        q->done(q->arg, rc, result, lead);
    }
}

/* Complete and forget the proposal waiting at `index` (if any). */
static void finish_write(nk_peer *p, uint64_t index, int rc, uint64_t result, uint64_t lead)
{
    nk_pending *q = nk_u64map_del(&p->writes, index);
    if (q != NULL) {
        p->n_writes--;
        q->used = false;
        q->done(q->arg, rc, result, lead);
        free(q);
    }
}

/* Complete every waiting proposal accepted by `pick` (all when NULL). The
 * keys are collected first: callbacks may not run while the map is walked. */
static void finish_writes_if(nk_peer *p, bool (*pick)(const nk_pending *q, uint64_t arg),
                             uint64_t arg, int rc, uint64_t lead)
{
    if (p->n_writes == 0) {
        return;
    }
    uint64_t *keys = malloc(p->n_writes * sizeof(*keys));
    size_t n = 0, pos = 0;
    uint64_t key;
    void *v;
    while (keys != NULL && nk_u64map_next(&p->writes, &pos, &key, &v)) {
        if (pick == NULL || pick(v, arg)) {
            keys[n++] = key;
        }
    }
    for (size_t i = 0; i < n; i++) {
        finish_write(p, keys[i], rc, 0, lead);
    }
    free(keys);
}

int nk_peer_add_write(nk_peer *p, uint64_t index, nk_pending *q)
{
    /* A proposal of an earlier term at the same index was overwritten: its
     * entry is gone for good. */
    finish_write(p, index, NK_EAGAIN, 0, 0);
    int rc = nk_u64map_put(&p->writes, index, q);
    if (rc == NK_OK) {
        p->n_writes++;
    }
    return rc;
}

static uint64_t leader_hint(const nk_peer *p)
{
    if (p->raft == NULL) {
        return 0;
    }
    nk_raft_status st;
    nk_raft_status_get(p->raft, &st);
    return st.lead;
}

void nk_peer_free(nk_peer *p, int pending_rc)
{
    if (p == NULL) {
        return;
    }
    uint64_t lead = leader_hint(p);
    finish_writes_if(p, NULL, 0, pending_rc, lead);
    nk_u64map_free(&p->writes);
    for (unsigned k = 0; k < NK_PEER_MAX_PENDING; k++) {
        finish_read(&p->reads[k], pending_rc, 0, lead);
    }
    if (p->rd_busy) {
        nk_raft_ready_clear(&p->rd);
    }
    nk_raft_free(p->raft);
    free(p->snap_blob);
    free(p);
}

/* --------------------------------------------------------- durability --- */

/* Step 1 for a received snapshot (see the file comment for the order). */
static int install_snapshot(nk_peer *p, const nk_raft_snapshot *snap)
{
    nk_store *s = p->s;
    nk_region desc;
    uint64_t index = 0, term = 0;
    const uint8_t *sm = NULL;
    size_t sm_len = 0;
    int rc = nk_snapfile_decode(snap->data, snap->len, &desc, &index, &term, &sm, &sm_len);
    if (rc != NK_OK || index != snap->meta.index || term != snap->meta.term ||
        desc.id != p->region_id) {
        nk_store_violation(s,
                           "store %" PRIu64 " region %" PRIu64
                           ": malformed snapshot payload for index %" PRIu64,
                           s->o.store_id, p->region_id, snap->meta.index);
        return NK_ECORRUPT;
    }
    uint64_t from_store = 0, conf_index = index;
    if (!s->o.sm.volatile_state) {
        rc = durable_descriptor_decode(sm, sm_len, &from_store, &conf_index);
        if (conf_index < index) {
            conf_index = index; /* no membership entry between the two */
        }
        if (rc != NK_OK) {
            nk_store_violation(s,
                               "store %" PRIu64 " region %" PRIu64
                               ": malformed engine snapshot descriptor for index %" PRIu64,
                               s->o.store_id, p->region_id, index);
            return NK_ECORRUPT;
        }
    }
    /* Volatile: the payload itself. Durable: the marker that the engine
     * range is garbage until the fetcher refilled it. Either is durable
     * before the RESET record that names it. */
    rc = nk_snapfile_write(s->rt, s->snapdir, p->region_id, index, snap->data, snap->len);
    if (rc != NK_OK) {
        return rc;
    }
    if (s->o.sm.volatile_state) {
        rc = s->o.sm.install(s->o.sm.ctx, p->region_id, sm, sm_len, index, term);
        if (rc != NK_OK) {
            return rc;
        }
    }
    /* The descriptor travels with the snapshot; keep whichever epoch is newer
     * (entries after the snapshot may already have changed it here). */
    /* The snapshot is newer than anything we applied (raft installs only
     * snapshots beyond our commit index), so its descriptor wins. */
    p->desc = desc;
    /* A durable snapshot's descriptor is the leader's current one: the
     * membership entries up to conf_index are in it already. */
    p->conf_index = conf_index;
    if (nk_region_peer_by_id(&p->desc, p->peer_id) == NULL) {
        /* The snapshot predates our own addition (its entry follows it in
         * the log): list ourselves so a restart still finds this replica;
         * the membership entries after the snapshot rebuild the list. */
        nk_region_peer self = {
            .store_id = s->o.store_id, .peer_id = p->peer_id, .role = NK_RAFT_LEARNER};
        rc = nk_region_peer_set(&p->desc, &self);
        if (rc != NK_OK) {
            nk_store_violation(s,
                               "store %" PRIu64 " region %" PRIu64
                               ": snapshot descriptor puts another peer on this store",
                               s->o.store_id, p->region_id);
            return NK_ECORRUPT;
        }
    }
    rc = nk_peer_persist_desc(p, NK_REGION_NORMAL);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *copy = malloc(snap->len);
    if (copy == NULL) {
        return NK_ENOMEM;
    }
    memcpy(copy, snap->data, snap->len);
    free(p->snap_blob);
    p->snap_blob = copy;
    p->snap_len = snap->len;
    p->snap = snap->meta;
    p->applied = index;
    p->bytes_since_snap = 0;
    if (!s->o.sm.volatile_state) {
        p->data_pending = true;
        p->fetch_from = from_store;
    }
    /* Writes waiting at or below the snapshot point lost track of their
     * entries: the client retries (its session makes a retry harmless). */
    uint64_t lead = leader_hint(p);
    finish_writes_if(p, at_or_below, index, NK_EAGAIN, lead);
    s->stats.snapshots_installed++;
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": installed snapshot %" PRIu64 "/%" PRIu64,
           s->o.store_id, p->region_id, index, term);
    return nk_raftlog_stage_snapshot(s->log, p->region_id, &snap->meta, true);
}

int nk_peer_stage_ready(nk_peer *p)
{
    nk_store *s = p->s;
    nk_raft_ready *rd = &p->rd;
    int rc = NK_OK;
    if (rd->has_snapshot) {
        rc = install_snapshot(p, &rd->snapshot);
    }
    if (rc == NK_OK && rd->n_entries > 0) {
        /* nk_raftlog_stage_entries refuses a gap or a start below the
         * snapshot (NK_EINVAL): raft handing us either is a bug we report. */
        if (s->o.obs != NULL && s->o.obs->persisted != NULL) {
            for (size_t k = 0; k < rd->n_entries; k++) {
                const nk_raft_entry *e = &rd->entries[k];
                uint64_t prev = 0;
                if (k > 0) {
                    prev = rd->entries[k - 1].term;
                } else if (nk_raftlog_term(s->log, p->region_id, e->index - 1, &prev) != NK_OK) {
                    prev = 0;
                }
                s->o.obs->persisted(s->o.obs->ctx, s->o.store_id, p->region_id, e, prev);
            }
        }
        rc = nk_raftlog_stage_entries(s->log, p->region_id, rd->entries, rd->n_entries);
        if (rc == NK_EINVAL) {
            nk_store_violation(s,
                               "store %" PRIu64 " region %" PRIu64 ": Ready entries from %" PRIu64
                               " do not continue the log (snapshot %" PRIu64 ")",
                               s->o.store_id, p->region_id, rd->entries[0].index, p->snap.index);
            return NK_ECORRUPT;
        }
    }
    if (rc == NK_OK && rd->has_hard_state) {
        rc = nk_raftlog_stage_hard_state(s->log, p->region_id, &rd->hs);
        if (rc == NK_OK) {
            p->hs = rd->hs;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ sending --- */

static void send_msg(nk_peer *p, const nk_raft_msg *m)
{
    nk_store *s = p->s;
    uint64_t to_store = nk_store_home_of(s, p, m->to);
    if (to_store == 0) {
        /* Nobody told us where that peer lives yet (the descriptor will):
         * dropped, raft retransmits. */
        if (m->type == NK_RAFT_MSG_SNAPSHOT) {
            nk_raft_report_snapshot(p->raft, m->to, false);
        }
        return;
    }
    if (m->type == NK_RAFT_MSG_SNAPSHOT) {
        s->stats.snapshots_sent++;
    }
    nk_raftmsg_hdr h = {.region_id = p->region_id,
                        .from_store = s->o.store_id,
                        .to_store = to_store,
                        .epoch = p->desc.epoch,
                        .compact_hint = nk_peer_compact_hint(p)};
    (void)nk_transport_send(s->tr, &h, m);
}

/* ------------------------------------------------------------- apply --- */

static void apply_conf(nk_peer *p, const nk_raft_entry *e)
{
    nk_store *s = p->s;
    if (e->index <= p->conf_index) {
        return; /* replayed after a restart: the descriptor has it already */
    }
    nk_raft_conf conf;
    uint8_t type = 0;
    uint64_t node = 0, store_id = 0;
    if (nk_raft_conf_decode_ctx(e->data, e->len, &conf, &type, &node, &store_id) != NK_OK) {
        nk_store_violation(s,
                           "store %" PRIu64 " region %" PRIu64 ": committed conf entry %" PRIu64
                           " does not decode",
                           s->o.store_id, p->region_id, e->index);
        return;
    }
    /* The entry holds the whole new membership: rebuild the peer list from
     * it, taking each member's store from the entry's context (the changed
     * peer), the previous descriptor, or what message headers taught us. */
    if ((type == NK_RAFT_CC_ADD_VOTER || type == NK_RAFT_CC_ADD_LEARNER) && store_id == 0) {
        nk_store_violation(s,
                           "store %" PRIu64 " region %" PRIu64 ": conf entry %" PRIu64
                           " adds peer %" PRIu64 " without its store",
                           s->o.store_id, p->region_id, e->index, node);
        return;
    }
    nk_region d = p->desc;
    d.n_peers = 0;
    for (uint32_t k = 0; k < conf.n; k++) {
        uint64_t id = conf.m[k].id;
        uint64_t home = id == node && store_id != 0 ? store_id : nk_store_home_of(s, p, id);
        if (home == 0) {
            nk_log(s->rt, NK_LOG_WARN,
                   "store %" PRIu64 " region %" PRIu64 ": member %" PRIu64
                   " has no known store yet",
                   s->o.store_id, p->region_id, id);
            continue;
        }
        nk_region_peer np = {.store_id = home, .peer_id = id, .role = conf.m[k].role};
        int rc = nk_region_peer_set(&d, &np);
        if (rc != NK_OK) {
            nk_store_violation(s,
                               "store %" PRIu64 " region %" PRIu64 ": conf entry %" PRIu64
                               " puts two peers on store %" PRIu64 " (%s)",
                               s->o.store_id, p->region_id, e->index, home, nk_errname(rc));
            return;
        }
    }
    /* The newest applied membership decides: a replica that installed an
     * old snapshot may apply its earlier incarnation's removal and then its
     * re-addition in the same batch. */
    p->removed = nk_region_peer_by_id(&d, p->peer_id) == NULL;
    int rc;
    d.epoch.conf_version++;
    p->desc = d;
    p->conf_index = e->index;
    if (!p->removed) {
        rc = nk_peer_persist_desc(p, NK_REGION_NORMAL);
        if (rc != NK_OK) {
            nk_store_fail(s, "persisting a membership change", rc);
        }
    }
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": membership change at %" PRIu64
           " (type %u, peer %" PRIu64 " on store %" PRIu64 "), conf_version %" PRIu64,
           s->o.store_id, p->region_id, e->index, type, node, store_id, d.epoch.conf_version);
}

static void apply_entry(nk_peer *p, const nk_raft_entry *e)
{
    nk_store *s = p->s;
    if (e->index != p->applied + 1) {
        nk_store_violation(
            s, "store %" PRIu64 " region %" PRIu64 " applies index %" PRIu64 " after %" PRIu64,
            s->o.store_id, p->region_id, e->index, p->applied);
        p->failed = true;
        return;
    }
    if (e->type == NK_RAFT_ENTRY_CONF) {
        apply_conf(p, e);
    }
    uint64_t result = 0;
    int rc = s->o.sm.apply(s->o.sm.ctx, p->region_id, e, &result);
    if (rc != NK_OK) {
        nk_store_fail(s, "applying a committed entry", rc);
        p->failed = true;
        return;
    }
    p->applied = e->index;
    p->bytes_since_snap += e->len;
    s->stats.entries_applied++;
    nk_pending *q = nk_u64map_get(&p->writes, e->index);
    if (q != NULL) {
        if (q->term == e->term) {
            finish_write(p, e->index, NK_OK, result, 0);
        } else {
            /* Another leader's entry took this index: our attempt is lost. */
            finish_write(p, e->index, NK_EAGAIN, 0, leader_hint(p));
        }
    }
}

static void serve_reads(nk_peer *p)
{
    for (unsigned k = 0; k < NK_PEER_MAX_PENDING; k++) {
        nk_pending *q = &p->reads[k];
        if (q->used && q->have_index && p->applied >= q->index) {
            finish_read(q, NK_OK, p->applied, 0);
        }
    }
}

/* --------------------------------------------------------- compaction --- */

uint64_t nk_peer_compact_hint(const nk_peer *p)
{
    if (p->raft == NULL || p->failed || p->data_pending) {
        return p->compact_hint;
    }
    nk_raft_status st;
    nk_raft_status_get(p->raft, &st);
    if (st.role != NK_RAFT_LEADER) {
        return p->compact_hint;
    }
    /* Committed entries are never truncated, and a member's match index is
     * what it acknowledged durable: up to min(commit, every match) every
     * member holds the log, now and after any crash. */
    uint64_t h = st.commit;
    /* A member more than snapshot_lag behind is left to an engine snapshot,
     * once this leader has led long enough to know every live member's
     * match (a new leader starts with none). */
    const nk_store *s = p->s;
    uint64_t lag = s->fetch_fn != NULL && !s->o.sm.volatile_state ? s->o.snapshot_lag : 0;
    uint64_t settle = 4ull * s->o.election_ticks * s->o.tick_ns;
    bool may_leave = lag != 0 && nk_rt_now(s->rt) - p->lead_since >= settle;
    for (uint32_t k = 0; k < st.conf.n; k++) {
        uint64_t id = st.conf.m[k].id;
        if (id == p->peer_id) {
            continue; /* the leader commits only what it holds stable */
        }
        uint64_t match = 0, next = 0;
        int state = 0;
        if (nk_raft_progress_get(p->raft, id, &match, &next, &state) != NK_OK) {
            match = 0;
        }
        if (may_leave && match + lag < st.commit) {
            continue;
        }
        if (match < h) {
            h = match;
        }
    }
    /* An earlier leader's hint stays true: it was true of every member then,
     * and members that joined since came in by an import at or above it. */
    return h > p->compact_hint ? h : p->compact_hint;
}

static bool compaction_due(const nk_peer *p, uint64_t upto)
{
    const nk_store_options *o = &p->s->o;
    return (o->compact_every != 0 && upto >= p->snap.index + o->compact_every) ||
           (o->compact_bytes != 0 && p->bytes_since_snap >= o->compact_bytes &&
            upto > p->snap.index);
}

/* The raft log of the region is no longer needed up to `index` (the state
 * machine holds it durably): tell raft, stage the COMPACT record. Segments
 * go once every region's snapshot point passed them (purge after a sync). */
static int compact_to(nk_peer *p, uint64_t index, uint64_t term, nk_raft_snapshot_meta *meta)
{
    nk_store *s = p->s;
    int rc = nk_raft_compact(p->raft, index, meta);
    if (rc == NK_OK && (meta->index != index || meta->term != term)) {
        nk_store_violation(s,
                           "store %" PRIu64 " region %" PRIu64 ": compact at %" PRIu64
                           " gave %" PRIu64 "/%" PRIu64 ", log says term %" PRIu64,
                           s->o.store_id, p->region_id, index, meta->index, meta->term, term);
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        rc = nk_raftlog_stage_snapshot(s->log, p->region_id, meta, false);
    }
    return rc;
}

/* Durable state machines (the engine): no payload to keep, but the point may
 * not pass what the engine holds durably (its applies are unsynced: after a
 * power loss the store re-applies from the log above the recovered apply
 * state), nor what any member or a pending import still needs from the log
 * (a durable state machine is never sent as a raft snapshot). */
static void maybe_compact_durable(nk_peer *p, const nk_raft_status *st)
{
    nk_store *s = p->s;
    if (s->o.sm.durable_index == NULL) {
        return;
    }
    uint64_t target = p->applied;
    uint64_t hint = nk_peer_compact_hint(p);
    if (hint < target) {
        target = hint;
    }
    if (p->hold_until != 0 && nk_rt_now(s->rt) < p->hold_until && p->hold_index < target) {
        target = p->hold_index;
    }
    if (target <= p->snap.index || !compaction_due(p, target) || st->first_index - 1 > target) {
        return;
    }
    /* Asking starts an engine WAL sync when needed; a later Ready compacts
     * with what it made durable. Asking again for the same target while
     * nothing moves costs nothing. */
    uint64_t durable = s->o.sm.durable_index(s->o.sm.ctx, p->region_id, target);
    if (durable < target) {
        target = durable;
    }
    uint64_t term = 0;
    if (target <= p->snap.index || nk_raftlog_term(s->log, p->region_id, target, &term) != NK_OK) {
        return;
    }
    NK_ASSERT(target <= p->applied);
    nk_raft_snapshot_meta meta;
    int rc = compact_to(p, target, term, &meta);
    if (rc != NK_OK) {
        nk_store_fail(s, "compacting the raft log", rc);
        return;
    }
    p->snap = meta;
    p->bytes_since_snap = 0;
    nk_log(s->rt, NK_LOG_DEBUG,
           "store %" PRIu64 " region %" PRIu64 ": raft log compacted to %" PRIu64 "/%" PRIu64
           " (applied %" PRIu64 ", hint %" PRIu64 ")",
           s->o.store_id, p->region_id, meta.index, meta.term, p->applied, hint);
}

static void maybe_compact(nk_peer *p)
{
    nk_store *s = p->s;
    if (p->failed || p->data_pending || (s->o.compact_every == 0 && s->o.compact_bytes == 0)) {
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(p->raft, &st);
    if (st.first_index - 1 > p->applied) {
        return; /* raft holds a leader's snapshot; its Ready installs it next */
    }
    if (!s->o.sm.volatile_state) {
        maybe_compact_durable(p, &st);
        return;
    }
    if (!compaction_due(p, p->applied)) {
        return;
    }
    uint64_t term = 0;
    if (nk_raftlog_term(s->log, p->region_id, p->applied, &term) != NK_OK) {
        return; /* applied entries not in our log yet (in an unwritten batch) */
    }
    uint8_t *sm = NULL, *blob = NULL;
    size_t sm_len = 0, blob_len = 0;
    int rc = s->o.sm.snapshot(s->o.sm.ctx, p->region_id, &sm, &sm_len);
    if (rc == NK_OK) {
        rc = nk_snapfile_encode(&p->desc, p->applied, term, sm, sm_len, &blob, &blob_len);
    }
    free(sm);
    if (rc == NK_OK) {
        rc = nk_snapfile_write(s->rt, s->snapdir, p->region_id, p->applied, blob, blob_len);
    }
    nk_raft_snapshot_meta meta;
    if (rc == NK_OK) {
        rc = compact_to(p, p->applied, term, &meta);
    }
    if (rc != NK_OK) {
        free(blob);
        nk_store_fail(s, "compacting the raft log", rc);
        return;
    }
    uint64_t old = p->snap.index;
    free(p->snap_blob);
    p->snap_blob = blob;
    p->snap_len = blob_len;
    p->snap = meta;
    p->bytes_since_snap = 0;
    /* The previous payload stays until the new COMPACT record is certainly
     * durable (it is written in the next batch): it goes at the compaction
     * after this one, or at open. */
    nk_snapfile_gc(s->rt, s->snapdir, p->region_id, old);
}

void nk_peer_finish_ready(nk_peer *p)
{
    NK_ASSERT(p->rd_busy); /* one Ready at a time, consumed once */
    nk_raft_ready *rd = &p->rd;
    for (size_t k = 0; k < rd->n_msgs && !p->failed; k++) {
        send_msg(p, &rd->msgs[k]);
    }
    /* Pending engine data: committed entries stay in the log and are
     * applied from there once the data is in (nk_peer_data_installed). */
    for (size_t k = 0; k < rd->n_committed && !p->failed && !p->data_pending; k++) {
        apply_entry(p, &rd->committed[k]);
    }
    for (size_t k = 0; k < rd->n_reads; k++) {
        for (unsigned j = 0; j < NK_PEER_MAX_PENDING; j++) {
            nk_pending *q = &p->reads[j];
            if (q->used && !q->have_index && q->ctx == rd->reads[k].ctx) {
                q->have_index = true;
                q->index = rd->reads[k].index;
            }
        }
    }
    if (p->failed) {
        return;
    }
    serve_reads(p);
    nk_raft_advance(p->raft, rd);
    p->rd_busy = false;
    p->rd_sync = false;
    if (p->data_pending) {
        nk_store_kick_fetcher(p->s);
    } else if (!p->removed) {
        maybe_compact(p);
    }
}

int nk_peer_data_installed(nk_peer *p, uint64_t index)
{
    nk_store *s = p->s;
    if (!p->data_pending) {
        return NK_ENOENT;
    }
    if (index < p->snap.index) {
        return NK_EINVAL;
    }
    /* The data is durable: the marker goes (durably), then what raft
     * committed since the snapshot point is applied from the log. */
    nk_snapfile_gc(s->rt, s->snapdir, p->region_id, UINT64_MAX);
    free(p->snap_blob);
    p->snap_blob = NULL;
    p->snap_len = 0;
    p->data_pending = false;
    nk_log(s->rt, NK_LOG_INFO,
           "store %" PRIu64 " region %" PRIu64 ": engine data of snapshot %" PRIu64
           " installed (export at %" PRIu64 ")",
           s->o.store_id, p->region_id, p->snap.index, index);
    nk_raft_status st;
    nk_raft_status_get(p->raft, &st);
    uint64_t upto = st.applied;
    /* Bounded: each round applies at least one entry of the gap. */
    while (p->applied < upto && !p->failed) {
        uint64_t lo = p->applied + 1;
        uint64_t hi = upto + 1 < lo + 256 ? upto + 1 : lo + 256;
        nk_raft_entry *ents = NULL;
        size_t n = 0;
        int rc = nk_raftlog_entries(s->log, p->region_id, lo, hi, &ents, &n);
        if (rc != NK_OK || n == 0) {
            nk_store_fail(s, "reading committed entries back after an engine snapshot",
                          rc != NK_OK ? rc : NK_ECORRUPT);
            p->failed = true;
            return rc != NK_OK ? rc : NK_ECORRUPT;
        }
        for (size_t k = 0; k < n; k++) {
            if (!p->failed) {
                apply_entry(p, &ents[k]);
            }
            nk_raft_entry_clear(&ents[k]);
        }
        free(ents);
    }
    serve_reads(p);
    nk_store_kick(s);
    return NK_OK;
}

/* ------------------------------------------------------------- timers --- */

void nk_peer_tick(nk_peer *p)
{
    if (p->data_pending) {
        /* No ticks: a replica without its data must never campaign. */
        nk_store_kick_fetcher(p->s);
        return;
    }
    if (!p->failed && p->raft != NULL) {
        nk_raft_tick(p->raft);
        /* A durable state machine's index becomes durable in the background:
         * look again now and then, even when no Ready comes (an idle region). */
        if (!p->rd_busy && !p->removed && !p->s->o.sm.volatile_state) {
            maybe_compact(p);
        }
    }
}

void nk_peer_expire(nk_peer *p, uint64_t now, uint64_t ttl)
{
    uint64_t deadline[2] = {now, ttl};
    finish_writes_if(p, expired, (uint64_t)(uintptr_t)deadline, NK_ETIMEDOUT, 0);
    /* Raft drops read requests when leadership changes: they end here. */
    for (unsigned k = 0; k < NK_PEER_MAX_PENDING; k++) {
        if (p->reads[k].used && now - p->reads[k].since > ttl) {
            finish_read(&p->reads[k], NK_ETIMEDOUT, 0, 0);
        }
    }
}

void nk_peer_observe(nk_peer *p)
{
    nk_store *s = p->s;
    if (!p->failed && p->raft != NULL) {
        nk_raft_status st;
        nk_raft_status_get(p->raft, &st);
        bool lead = st.role == NK_RAFT_LEADER;
        bool was = p->logged_role == NK_RAFT_LEADER;
        if (p->logged_role < 0 || lead != was || (lead && st.term != p->logged_term)) {
            nk_log(s->rt, NK_LOG_INFO,
                   "store %" PRIu64 " region %" PRIu64 ": peer %" PRIu64
                   " is now %s at term %" PRIu64,
                   s->o.store_id, p->region_id, p->peer_id, lead ? "leader" : "follower", st.term);
            if (lead && !was) {
                s->stats.leader_changes++;
                p->lead_since = nk_rt_now(s->rt);
            }
            p->logged_role = st.role;
            p->logged_term = st.term;
        }
    }
    if (s->o.obs != NULL && s->o.obs->raft_changed != NULL && !p->failed && p->raft != NULL) {
        s->o.obs->raft_changed(s->o.obs->ctx, s->o.store_id, p->region_id, p->raft);
    }
}
