/*
 * replication.c - log replication (thesis 3.5), commitment (3.6.2),
 * heartbeats, snapshot sending/receiving (5.1) and flow control (10.2).
 *
 * Batching: proposals only mark the leader "needs broadcast"; appends are
 * built when the host collects output, so proposals made between two Readys
 * share messages. Pipelining: a follower in REPLICATE state gets appends back
 * to back, bounded by its in-flight window (messages and bytes) and each
 * message by max_batch_bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"

static void send_snapshot(nk_raft *r, nk_rprog *p)
{
    if (!r->cfg.snapshot_produce) {
        return;
    }
    nk_raft_snapshot_meta meta;
    meta.index = r->log.snap_index;
    meta.term = r->log.snap_term;
    meta.conf = r->base_conf;
    uint8_t *data = NULL;
    size_t len = 0;
    if (r->cfg.snapshot_produce(r->cfg.snapshot_ctx, p->id, &meta, &data, &len) != NK_OK) {
        return; /* not ready: the next heartbeat response retries */
    }
    nk_raft_msg *m = nk_r_msg_new(r, NK_RAFT_MSG_SNAPSHOT, p->id);
    if (!m) {
        free(data);
        return;
    }
    m->has_snapshot = true;
    m->snapshot.meta = meta;
    m->snapshot.data = len ? data : NULL;
    m->snapshot.len = len;
    if (!len) {
        free(data);
    }
    nk_rprog_become_snapshot(p, meta.index);
}

bool nk_r_send_append(nk_raft *r, nk_rprog *p, bool send_if_empty)
{
    if (p->id == r->id || nk_rprog_paused(p, r->cfg.max_inflight_bytes)) {
        return false;
    }
    uint64_t last = nk_rlog_last(&r->log);
    if (p->next > last + 1) {
        p->next = last + 1;
    }
    if (p->next == 0) {
        p->next = 1;
    }
    uint64_t prev = p->next - 1;
    uint64_t prev_term;
    int rc = nk_rlog_term(&r->log, prev, &prev_term);
    if (rc == NK_ENOENT) {
        /* The entries this follower needs are compacted away. */
        send_snapshot(r, p);
        return false;
    }
    if (rc != NK_OK) {
        return false; /* storage failed (recorded): send nothing from it */
    }
    nk_raft_entry *ents = NULL;
    size_t n = 0;
    /* A lagging follower's entries may be read back from storage: one
     * message's worth (max_batch_bytes) per call, bounded in flight by the
     * window, so catching up never loads the whole gap. */
    if (p->next <= last &&
        nk_rlog_slice(&r->log, p->next, last, r->cfg.max_batch_bytes, &ents, &n) != NK_OK) {
        return false;
    }
    if (n == 0 && !send_if_empty) {
        return false;
    }
    nk_raft_msg *m = nk_r_msg_new(r, NK_RAFT_MSG_APPEND, p->id);
    if (!m) {
        for (size_t k = 0; k < n; k++) {
            nk_raft_entry_clear(&ents[k]);
        }
        free(ents);
        return false;
    }
    m->index = prev;
    m->log_term = prev_term;
    m->entries = ents;
    m->n_entries = n;
    m->commit = r->log.committed;
    if (n > 0 && p->state == NK_RAFT_PR_REPLICATE) {
        uint64_t bytes = 0;
        for (size_t k = 0; k < n; k++) {
            bytes += ents[k].len;
        }
        p->next = ents[n - 1].index + 1; /* optimistic: pipelining */
        nk_rprog_infl_add(p, ents[n - 1].index, bytes);
    } else if (p->state == NK_RAFT_PR_PROBE) {
        p->probe_sent = true;
    }
    return n > 0;
}

static void send_more(nk_raft *r, nk_rprog *p)
{
    /* Stream while the window allows (bounded: each call sends >= 1 entry
     * and the window is finite). */
    while (p->state == NK_RAFT_PR_REPLICATE && nk_r_send_append(r, p, false)) {
    }
}

void nk_r_bcast_append(nk_raft *r)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        nk_rprog *p = &r->prs[k];
        if (p->id == r->id) {
            continue;
        }
        nk_r_send_append(r, p, true);
        send_more(r, p);
    }
}

void nk_r_bcast_heartbeat(nk_raft *r, uint64_t ctx)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        nk_rprog *p = &r->prs[k];
        if (p->id == r->id) {
            continue;
        }
        nk_raft_msg *m = nk_r_msg_new(r, NK_RAFT_MSG_HEARTBEAT, p->id);
        if (!m) {
            continue;
        }
        /* Never tell a follower to commit past what it is known to hold:
         * its log beyond match may still differ from ours. */
        m->commit = p->match < r->log.committed ? p->match : r->log.committed;
        m->ctx = ctx;
    }
}

void nk_r_commit_to(nk_raft *r, uint64_t commit)
{
    uint64_t last = nk_rlog_last(&r->log);
    if (commit > last) {
        commit = last;
    }
    if (commit <= r->log.committed) {
        return;
    }
    if (r->role == NK_RAFT_LEADER) {
        for (uint64_t i = r->log.committed + 1; i <= commit; i++) {
            const nk_raft_entry *e = nk_rlog_at(&r->log, i);
            uint64_t len = e ? e->len : 0;
            r->uncommitted_bytes = r->uncommitted_bytes > len ? r->uncommitted_bytes - len : 0;
        }
    }
    r->log.committed = commit;
    nk_rconf_on_commit(r);
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

bool nk_r_maybe_commit(nk_raft *r)
{
    uint64_t m[NK_RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        const nk_rprog *p = &r->prs[k];
        if (p->learner) {
            continue;
        }
        /* The leader counts itself only for entries the host made durable
         * (thesis 10.2.1: write to disk in parallel with replication). */
        m[n++] = p->id == r->id ? r->log.stable : p->match;
    }
    if (n == 0) {
        return false;
    }
    qsort(m, n, sizeof(m[0]), cmp_desc);
    uint64_t idx = m[n / 2]; /* stored by at least n/2 + 1 voters */
    if (idx <= r->log.committed) {
        return false;
    }
    /* Thesis 3.6.2 / figure 3.7: only an entry of the current term is
     * committed by counting replicas; earlier ones commit indirectly. */
    if (!r->cfg.unsafe_commit_prev_term && nk_rlog_term0(&r->log, idx) != r->term) {
        return false;
    }
    nk_r_commit_to(r, idx);
    return true;
}

static void reply_append(nk_raft *r, const nk_raft_msg *m, uint64_t index)
{
    nk_raft_msg *o = nk_r_msg_new(r, NK_RAFT_MSG_APPEND_RESP, m->from);
    if (o) {
        o->index = index;
        o->commit = r->log.committed;
    }
}

void nk_r_handle_append(nk_raft *r, const nk_raft_msg *m)
{
    if (m->index < r->log.committed) {
        /* Already committed here: those entries match the leader's
         * (Leader Completeness), so report our commit index as matched. */
        reply_append(r, m, r->log.committed);
        return;
    }
    if (!nk_rlog_match(&r->log, m->index, m->log_term)) {
        /* Fast backtracking (thesis 5.4.2 style): hint the largest index
         * whose term is <= the leader's prev term, so the leader can skip
         * a whole conflicting term per round trip. */
        uint64_t hi = m->index < nk_rlog_last(&r->log) ? m->index : nk_rlog_last(&r->log);
        hi = nk_rlog_find_conflict_by_term(&r->log, hi, m->log_term);
        nk_raft_msg *o = nk_r_msg_new(r, NK_RAFT_MSG_APPEND_RESP, m->from);
        if (o) {
            o->reject = true;
            o->index = m->index;
            o->hint_index = hi;
            o->hint_term = nk_rlog_term0(&r->log, hi);
            o->commit = r->log.committed;
        }
        return;
    }
    uint64_t lastnew = m->index + m->n_entries;
    for (size_t k = 0; k < m->n_entries; k++) {
        const nk_raft_entry *e = &m->entries[k];
        if (e->index != m->index + 1 + k) {
            return; /* malformed: ignore the whole message */
        }
    }
    for (size_t k = 0; k < m->n_entries; k++) {
        const nk_raft_entry *e = &m->entries[k];
        if (nk_rlog_match(&r->log, e->index, e->term)) {
            continue;
        }
        if (e->index <= r->log.committed) {
            return; /* would rewrite a committed entry: never (safety) */
        }
        if (e->index <= nk_rlog_last(&r->log)) {
            /* Figure 3.1: delete the conflicting entry and all after it;
             * a configuration set by the dropped tail is undone. */
            if (nk_rlog_truncate_from(&r->log, e->index) != NK_OK) {
                return; /* storage failed (recorded): no ack */
            }
            nk_rconf_truncate(r, e->index);
        }
        for (size_t j = k; j < m->n_entries; j++) {
            if (nk_rlog_append_copy(&r->log, &m->entries[j]) != NK_OK) {
                return; /* out of memory: no ack; the leader retries */
            }
            if (nk_rconf_note_append(r, nk_rlog_at(&r->log, m->entries[j].index)) != NK_OK) {
                /* Untracked configuration: take the entry back, no ack. */
                (void)nk_rlog_truncate_from(&r->log, m->entries[j].index);
                return;
            }
        }
        break;
    }
    nk_r_commit_to(r, m->commit < lastnew ? m->commit : lastnew);
    reply_append(r, m, lastnew);
}

void nk_r_send_timeout_now(nk_raft *r, uint64_t to)
{
    nk_r_msg_new(r, NK_RAFT_MSG_TIMEOUT_NOW, to);
}

void nk_r_handle_append_response(nk_raft *r, const nk_raft_msg *m)
{
    nk_rprog *p = nk_r_prog(r, m->from);
    if (!p) {
        return;
    }
    p->last_active = r->ticks;
    if (m->reject) {
        uint64_t probe = m->hint_index;
        if (m->hint_term > 0) {
            probe = nk_rlog_find_conflict_by_term(&r->log, m->hint_index, m->hint_term);
        }
        if (nk_rprog_maybe_decr(p, m->index, probe)) {
            if (p->state == NK_RAFT_PR_REPLICATE) {
                nk_rprog_become_probe(p);
                if (p->next > probe + 1 && probe + 1 > p->match) {
                    p->next = probe + 1;
                }
            }
            nk_r_send_append(r, p, true);
        }
        return;
    }
    bool was_paused = nk_rprog_paused(p, r->cfg.max_inflight_bytes);
    bool updated = nk_rprog_maybe_update(p, m->index);
    if (updated) {
        p->stalled = 0;
    }
    if (updated || (p->match == m->index && p->state == NK_RAFT_PR_PROBE)) {
        if (p->state == NK_RAFT_PR_PROBE) {
            nk_rprog_become_replicate(p);
        } else if (p->state == NK_RAFT_PR_REPLICATE) {
            nk_rprog_infl_free_to(p, m->index);
        }
    }
    if (p->state == NK_RAFT_PR_SNAPSHOT && p->match >= p->pending_snapshot) {
        /* The follower holds the snapshot: resume normal replication. */
        nk_rprog_become_probe(p);
        nk_rprog_become_replicate(p);
    }
    if (nk_r_maybe_commit(r)) {
        nk_r_bcast_append(r); /* propagate the new commit index */
    } else if (was_paused) {
        nk_r_send_append(r, p, true); /* the follower may not know the commit yet */
    }
    send_more(r, p);
    if (r->role == NK_RAFT_LEADER && m->from == r->transferee &&
        p->match == nk_rlog_last(&r->log)) {
        nk_r_send_timeout_now(r, m->from);
    }
}

void nk_r_handle_heartbeat(nk_raft *r, const nk_raft_msg *m)
{
    nk_r_commit_to(r, m->commit);
    nk_raft_msg *o = nk_r_msg_new(r, NK_RAFT_MSG_HEARTBEAT_RESP, m->from);
    if (o) {
        o->ctx = m->ctx;
    }
}

void nk_r_handle_heartbeat_response(nk_raft *r, const nk_raft_msg *m)
{
    nk_rprog *p = nk_r_prog(r, m->from);
    if (!p) {
        return;
    }
    p->last_active = r->ticks;
    p->probe_sent = false;
    uint64_t last = nk_rlog_last(&r->log);
    if (p->state == NK_RAFT_PR_REPLICATE && p->match < last) {
        /* A live follower that made no progress for several heartbeats (or
         * whose window is full) has probably lost appends: probe again from
         * match + 1. A single heartbeat is not enough evidence because
         * appends may simply still be in flight. */
        if (++p->stalled >= 3 || p->infl_count >= p->infl_cap) {
            nk_rprog_become_probe(p);
            nk_r_send_append(r, p, true);
        }
    } else if (p->state == NK_RAFT_PR_PROBE) {
        nk_r_send_append(r, p, true);
    }
    nk_r_read_ack(r, m->from, m->ctx);
}

void nk_r_handle_snapshot(nk_raft *r, const nk_raft_msg *m)
{
    if (!m->has_snapshot) {
        return;
    }
    const nk_raft_snapshot_meta *meta = &m->snapshot.meta;
    if (meta->index <= r->log.committed) {
        /* Idempotent install: we already have (at least) this state. */
        reply_append(r, m, r->log.committed);
        return;
    }
    if (nk_rlog_match(&r->log, meta->index, meta->term)) {
        /* Our log already contains the snapshot's last entry: just
         * fast-forward the commit index (thesis 5.1: retain the suffix). */
        nk_r_commit_to(r, meta->index);
        reply_append(r, m, nk_rlog_last(&r->log));
        return;
    }
    if (r->log.err != NK_OK) {
        return; /* the term was unreadable: no decision from missing data */
    }
    uint8_t *data = NULL;
    if (m->snapshot.len) {
        data = malloc(m->snapshot.len);
        if (!data) {
            return;
        }
        memcpy(data, m->snapshot.data, m->snapshot.len);
    }
    nk_raft_snapshot_clear(&r->pending_snapshot);
    r->pending_snapshot.meta = *meta;
    r->pending_snapshot.data = data;
    r->pending_snapshot.len = m->snapshot.len;
    r->has_pending_snapshot = true;
    nk_rlog_reset(&r->log, meta->index, meta->term);
    nk_rconf_clear_history(r);
    r->base_conf = meta->conf;
    r->conf = meta->conf;
    r->conf_index = 0;
    reply_append(r, m, meta->index);
}

int nk_r_append_local(nk_raft *r, uint8_t type, uint8_t *data, size_t len)
{
    int rc = nk_rlog_append_owned(&r->log, r->term, type, data, len);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t last = nk_rlog_last(&r->log);
    rc = nk_rconf_note_append(r, nk_rlog_at(&r->log, last));
    if (rc != NK_OK) {
        (void)nk_rlog_truncate_from(&r->log, last); /* in memory: cannot fail */
        return rc;
    }
    r->need_bcast = true;
    return NK_OK;
}
