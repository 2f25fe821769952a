/*
 * raft.c - node lifecycle, the step dispatcher (term rules), ticks,
 * proposals, and the Ready/advance output contract described in raft.h.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"
#include "nokv/util/assert.h"

/* ------------------------------------------------------------ helpers --- */

void nk_raft_entry_clear(nk_raft_entry *e)
{
    free(e->data);
    memset(e, 0, sizeof(*e));
}

void nk_raft_snapshot_clear(nk_raft_snapshot *s)
{
    free(s->data);
    memset(s, 0, sizeof(*s));
}

void nk_raft_msg_clear(nk_raft_msg *m)
{
    for (size_t k = 0; k < m->n_entries; k++) {
        nk_raft_entry_clear(&m->entries[k]);
    }
    free(m->entries);
    nk_raft_snapshot_clear(&m->snapshot);
    memset(m, 0, sizeof(*m));
}

const char *nk_raft_role_name(int role)
{
    switch (role) {
    case NK_RAFT_FOLLOWER:
        return "follower";
    case NK_RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case NK_RAFT_CANDIDATE:
        return "candidate";
    case NK_RAFT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}

const char *nk_raft_msg_type_name(int type)
{
    static const char *const names[] = {
        "none",      "append",         "append_resp", "vote",       "vote_resp",
        "prevote",   "prevote_resp",   "heartbeat",   "heartbeat_resp", "snapshot",
        "timeout_now", "read_index",   "read_index_resp",
    };
    if (type < 0 || type > NK_RAFT_MSG_TYPE_MAX) {
        return "unknown";
    }
    return names[type];
}

nk_raft_msg *nk_r_msg_new(nk_raft *r, uint8_t type, uint64_t to)
{
    if (r->n_msgs == r->cap_msgs) {
        size_t ncap = r->cap_msgs ? r->cap_msgs * 2 : 16;
        nk_raft_msg *n = realloc(r->msgs, ncap * sizeof(*n));
        if (!n) {
            return NULL; /* dropping a message is always safe in raft */
        }
        r->msgs = n;
        r->cap_msgs = ncap;
    }
    nk_raft_msg *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

uint32_t nk_r_quorum(const nk_raft *r)
{
    return nk_raft_conf_voters(&r->conf) / 2 + 1;
}

bool nk_r_promotable(const nk_raft *r)
{
    return nk_raft_conf_role(&r->conf, r->id) == NK_RAFT_VOTER;
}

nk_rprog *nk_r_prog(nk_raft *r, uint64_t id)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        if (r->prs[k].id == id) {
            return &r->prs[k];
        }
    }
    return NULL;
}

void nk_r_reset_randomized_timeout(nk_raft *r)
{
    uint32_t e = r->cfg.election_ticks;
    r->rand_timeout = e + (uint32_t)nk_rand_below(&r->rand, e);
}

/* ---------------------------------------------------------- lifecycle --- */

void nk_raft_config_default(nk_raft_config *cfg, uint64_t id, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->max_inflight_msgs = 64;
    cfg->max_inflight_bytes = 1 << 20;
    cfg->max_batch_bytes = 64 << 10;
    cfg->max_uncommitted_bytes = 0;
    cfg->prevote = true;
    cfg->check_quorum = true;
    cfg->max_mem_entries = 1024;
    cfg->max_mem_bytes = 1 << 20;
    nk_rand_derive(&cfg->rand, seed, "raft", id);
}

int nk_raft_new(const nk_raft_config *cfg, nk_raft **out)
{
    *out = NULL;
    if (!cfg || cfg->id == 0 || cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 ||
        cfg->heartbeat_ticks >= cfg->election_ticks || cfg->max_inflight_msgs == 0) {
        return NK_EINVAL;
    }
    if ((cfg->storage.term == NULL) != (cfg->storage.entries == NULL)) {
        return NK_EINVAL; /* a storage needs both callbacks */
    }
    nk_raft *r = calloc(1, sizeof(*r));
    if (!r) {
        return NK_ENOMEM;
    }
    r->cfg = *cfg;
    r->rand = cfg->rand;
    r->id = cfg->id;
    r->role = NK_RAFT_FOLLOWER;
    nk_rlog_init(&r->log, &cfg->storage);
    nk_r_reset_randomized_timeout(r);
    *out = r;
    return NK_OK;
}

static void free_prs(nk_raft *r)
{
    for (uint32_t k = 0; k < r->n_prs; k++) {
        nk_rprog_free(&r->prs[k]);
    }
    r->n_prs = 0;
}

void nk_raft_free(nk_raft *r)
{
    if (!r) {
        return;
    }
    free_prs(r);
    nk_rlog_free(&r->log);
    for (size_t k = 0; k < r->n_msgs; k++) {
        nk_raft_msg_clear(&r->msgs[k]);
    }
    free(r->msgs);
    free(r->read_states);
    free(r->reads_q);
    free(r->chist);
    nk_raft_snapshot_clear(&r->pending_snapshot);
    free(r);
}

static bool node_empty(const nk_raft *r)
{
    return r->term == 0 && nk_rlog_last(&r->log) == 0 && r->conf.n == 0;
}

static int conf_valid(const nk_raft_conf *c)
{
    if (c->n > NK_RAFT_MAX_MEMBERS) {
        return NK_ERANGE;
    }
    for (uint32_t k = 0; k < c->n; k++) {
        if (c->m[k].id == 0 || (c->m[k].role != NK_RAFT_VOTER && c->m[k].role != NK_RAFT_LEARNER)) {
            return NK_EINVAL;
        }
        if (k > 0 && c->m[k - 1].id >= c->m[k].id) {
            return NK_EINVAL;
        }
    }
    return NK_OK;
}

int nk_raft_bootstrap(nk_raft *r, const nk_raft_conf *conf)
{
    if (!node_empty(r)) {
        return NK_EEXIST;
    }
    int rc = conf_valid(conf);
    if (rc != NK_OK) {
        return rc;
    }
    if (nk_raft_conf_voters(conf) == 0) {
        return NK_EINVAL;
    }
    uint8_t *data;
    size_t len;
    rc = nk_rconf_encode(conf, NK_RAFT_CC_NONE, 0, 0, &data, &len);
    if (rc != NK_OK) {
        return rc;
    }
    /* Entry 1 carries term 1 so every founder holds the identical entry; the
     * current term must never be below the last log term. */
    r->term = 1;
    rc = nk_rlog_append_owned(&r->log, 1, NK_RAFT_ENTRY_CONF, data, len);
    if (rc != NK_OK) {
        r->term = 0;
        return rc;
    }
    rc = nk_rconf_note_append(r, nk_rlog_at(&r->log, 1));
    if (rc != NK_OK) {
        nk_rlog_reset(&r->log, 0, 0);
        memset(&r->conf, 0, sizeof(r->conf));
        r->term = 0;
    }
    return rc;
}

static void restore_fail(nk_raft *r)
{
    nk_rlog_reset(&r->log, 0, 0);
    nk_rconf_clear_history(r);
    memset(&r->conf, 0, sizeof(r->conf));
    memset(&r->base_conf, 0, sizeof(r->base_conf));
    r->conf_index = 0;
}

/* The common end of both restores, once the log is in place. */
static int restore_finish(nk_raft *r, const nk_raft_hard_state *hs, uint64_t si, uint64_t applied)
{
    uint64_t last = nk_rlog_last(&r->log);
    uint64_t commit = hs ? hs->commit : 0;
    if (commit < si) {
        commit = si;
    }
    if (commit > last || (hs && hs->term < nk_rlog_last_term(&r->log))) {
        restore_fail(r);
        return NK_ECORRUPT;
    }
    if (applied < si) {
        applied = si;
    }
    if (applied > commit) {
        applied = commit;
    }
    r->log.stable = last;
    r->log.committed = commit;
    r->log.applied = applied;
    r->log.applying = applied;
    r->term = hs ? hs->term : 0;
    r->vote = hs ? hs->vote : 0;
    r->prev_hs.term = r->term;
    r->prev_hs.vote = r->vote;
    r->prev_hs.commit = commit;
    nk_rconf_recompute(r);
    r->role = NK_RAFT_FOLLOWER;
    r->lead = 0;
    nk_r_reset_randomized_timeout(r);
    nk_rlog_trim(&r->log, r->cfg.max_mem_entries, r->cfg.max_mem_bytes);
    return NK_OK;
}

int nk_raft_restore(nk_raft *r, const nk_raft_hard_state *hs, const nk_raft_snapshot_meta *snap,
                    const nk_raft_entry *ents, size_t n, uint64_t applied)
{
    if (!node_empty(r)) {
        return NK_EEXIST;
    }
    uint64_t si = snap ? snap->index : 0;
    uint64_t st = snap ? snap->term : 0;
    if (snap) {
        int rc = conf_valid(&snap->conf);
        if (rc != NK_OK) {
            return NK_ECORRUPT;
        }
        r->base_conf = snap->conf;
        r->conf = snap->conf;
    }
    nk_rlog_reset(&r->log, si, st);
    for (size_t k = 0; k < n; k++) {
        int rc = nk_rlog_append_copy(&r->log, &ents[k]);
        if (rc == NK_OK) {
            rc = nk_rconf_note_append(r, nk_rlog_at(&r->log, ents[k].index));
        }
        if (rc != NK_OK) {
            restore_fail(r);
            return rc == NK_EINVAL ? NK_ECORRUPT : rc;
        }
        if (ents[k].term < (k ? ents[k - 1].term : st)) {
            restore_fail(r);
            return NK_ECORRUPT;
        }
    }
    return restore_finish(r, hs, si, applied);
}

int nk_raft_restore_stored(nk_raft *r, const nk_raft_hard_state *hs,
                           const nk_raft_snapshot_meta *snap, uint64_t last_index,
                           uint64_t applied)
{
    if (!node_empty(r)) {
        return NK_EEXIST;
    }
    if (!nk_rlog_has_storage(&r->log)) {
        return NK_EINVAL;
    }
    uint64_t si = snap ? snap->index : 0;
    uint64_t st = snap ? snap->term : 0;
    if (last_index < si) {
        return NK_ECORRUPT;
    }
    if (snap) {
        if (conf_valid(&snap->conf) != NK_OK) {
            return NK_ECORRUPT;
        }
        r->base_conf = snap->conf;
        r->conf = snap->conf;
    }
    nk_rlog_reset(&r->log, si, st);
    /* Entries from `keep` on go to memory; the ones before are only scanned
     * for configuration entries. One chunk of max_batch_bytes at a time, so
     * a long log never sits in memory at once. */
    uint64_t keep = si + 1;
    uint64_t me = r->cfg.max_mem_entries;
    if (me && last_index - si > me) {
        keep = last_index - me + 1;
    }
    uint64_t prev_term = st;
    int rc = NK_OK;
    uint64_t i = si + 1;
    /* Bounded: every round consumes >= 1 index of (si, last_index]. */
    while (rc == NK_OK && i <= last_index) {
        nk_raft_entry *a = NULL;
        size_t na = 0;
        rc = r->cfg.storage.entries(r->cfg.storage.ctx, i, last_index + 1, r->cfg.max_batch_bytes,
                                    &a, &na);
        if (rc == NK_ENOENT) {
            rc = NK_ECORRUPT;
        }
        if (rc == NK_OK && (na == 0 || na > last_index - i + 1)) {
            rc = NK_ECORRUPT;
        }
        for (size_t k = 0; rc == NK_OK && k < na; k++) {
            nk_raft_entry *e = &a[k];
            if (e->index != i || e->term < prev_term) {
                rc = NK_ECORRUPT;
                break;
            }
            if (i < keep) {
                rc = nk_rconf_note_append(r, e);
            } else {
                if (i == keep) {
                    /* The in-memory tail starts here. */
                    r->log.mem_prev = i - 1;
                    r->log.mem_prev_term = prev_term;
                }
                rc = nk_rlog_append_copy(&r->log, e);
                if (rc == NK_OK) {
                    rc = nk_rconf_note_append(r, nk_rlog_at(&r->log, i));
                }
            }
            prev_term = e->term;
            i++;
        }
        for (size_t k = 0; k < na; k++) {
            nk_raft_entry_clear(&a[k]);
        }
        free(a);
    }
    if (rc != NK_OK) {
        if (rc != NK_ENOMEM && rc != NK_EINVAL && r->log.err == NK_OK) {
            r->log.err = rc;
        }
        int err = r->log.err;
        restore_fail(r);
        r->log.err = err;
        return rc == NK_EINVAL ? NK_ECORRUPT : rc;
    }
    return restore_finish(r, hs, si, applied);
}

int nk_raft_storage_error(const nk_raft *r)
{
    return r->log.err;
}

/* -------------------------------------------------------------- tick --- */

void nk_raft_tick(nk_raft *r)
{
    if (r->log.err != NK_OK) {
        return; /* a failed storage stops the node (see nk_raft_storage) */
    }
    r->ticks++;
    if (r->role == NK_RAFT_LEADER) {
        nk_r_tick_heartbeat(r);
    } else {
        nk_r_tick_election(r);
    }
    nk_rconf_maybe_step_down(r);
}

int nk_raft_campaign(nk_raft *r)
{
    if (r->role == NK_RAFT_LEADER) {
        return NK_OK;
    }
    if (!nk_r_promotable(r)) {
        return NK_EINVAL;
    }
    nk_r_hup(r, false);
    return NK_OK;
}

/* -------------------------------------------------------------- step --- */

static void reply_term(nk_raft *r, const nk_raft_msg *m, uint8_t type)
{
    nk_raft_msg *o = nk_r_msg_new(r, type, m->from);
    if (o) {
        o->reject = true;
        o->index = m->index;
    }
}

static int step(nk_raft *r, const nk_raft_msg *m);

int nk_raft_step(nk_raft *r, const nk_raft_msg *m)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    int rc = step(r, m);
    nk_rconf_maybe_step_down(r);
    /* A storage failure during the step wins over the step's own result:
     * the host must learn that this node stopped. */
    return r->log.err != NK_OK ? r->log.err : rc;
}

static int step(nk_raft *r, const nk_raft_msg *m)
{
    if (!m || m->to != r->id || m->from == 0 || m->from == r->id || m->type == 0 ||
        m->type > NK_RAFT_MSG_TYPE_MAX) {
        return NK_EINVAL;
    }
    uint8_t t = m->type;
    bool from_leader = t == NK_RAFT_MSG_APPEND || t == NK_RAFT_MSG_HEARTBEAT ||
                       t == NK_RAFT_MSG_SNAPSHOT || t == NK_RAFT_MSG_TIMEOUT_NOW;

    if (m->term > r->term) {
        if (t == NK_RAFT_MSG_VOTE || t == NK_RAFT_MSG_PREVOTE) {
            /* Thesis 4.2.3: a node that heard from a live leader within the
             * minimum election timeout ignores votes, so removed or
             * partitioned nodes cannot depose a healthy leader. A transfer
             * campaign was asked for by that leader and bypasses this. */
            bool force = (m->flags & NK_RAFT_MSGF_TRANSFER) != 0;
            bool in_lease = r->cfg.check_quorum && r->lead != 0 &&
                            r->election_elapsed < r->cfg.election_ticks;
            if (!force && in_lease) {
                return NK_OK;
            }
        }
        if (t == NK_RAFT_MSG_PREVOTE || (t == NK_RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* A pre-vote never changes anyone's term (thesis 9.6): the
             * request carries term+1 only hypothetically. */
        } else {
            nk_r_become_follower(r, m->term, from_leader && t != NK_RAFT_MSG_TIMEOUT_NOW
                                                 ? m->from
                                                 : 0);
        }
    } else if (m->term < r->term) {
        if (t == NK_RAFT_MSG_APPEND || t == NK_RAFT_MSG_HEARTBEAT || t == NK_RAFT_MSG_SNAPSHOT) {
            /* A stale leader (e.g. healed from a partition). With PreVote
             * and CheckQuorum our term may never reach it through a vote, so
             * answer with our term to make it step down. */
            reply_term(r, m, NK_RAFT_MSG_APPEND_RESP);
        } else if (t == NK_RAFT_MSG_PREVOTE) {
            reply_term(r, m, NK_RAFT_MSG_PREVOTE_RESP);
        }
        return NK_OK;
    }

    switch (t) {
    case NK_RAFT_MSG_VOTE:
    case NK_RAFT_MSG_PREVOTE:
        nk_r_handle_vote_request(r, m);
        return NK_OK;
    default:
        break;
    }

    switch (r->role) {
    case NK_RAFT_LEADER:
        switch (t) {
        case NK_RAFT_MSG_APPEND_RESP:
            nk_r_handle_append_response(r, m);
            break;
        case NK_RAFT_MSG_HEARTBEAT_RESP:
            nk_r_handle_heartbeat_response(r, m);
            break;
        case NK_RAFT_MSG_READ_INDEX:
            nk_r_handle_read_index(r, m);
            break;
        default:
            break; /* stale responses, or messages for another role */
        }
        return NK_OK;
    case NK_RAFT_PRE_CANDIDATE:
    case NK_RAFT_CANDIDATE:
        if (t == NK_RAFT_MSG_APPEND || t == NK_RAFT_MSG_HEARTBEAT || t == NK_RAFT_MSG_SNAPSHOT) {
            /* A leader exists for this term (thesis 3.4): give up. */
            nk_r_become_follower(r, m->term, m->from);
            break; /* handled below as a follower */
        }
        if ((t == NK_RAFT_MSG_VOTE_RESP && r->role == NK_RAFT_CANDIDATE) ||
            (t == NK_RAFT_MSG_PREVOTE_RESP && r->role == NK_RAFT_PRE_CANDIDATE)) {
            nk_r_handle_vote_response(r, m);
        }
        return NK_OK;
    default:
        break;
    }

    /* follower */
    switch (t) {
    case NK_RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        r->lead = m->from;
        nk_r_handle_append(r, m);
        break;
    case NK_RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->lead = m->from;
        nk_r_handle_heartbeat(r, m);
        break;
    case NK_RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        r->lead = m->from;
        nk_r_handle_snapshot(r, m);
        break;
    case NK_RAFT_MSG_TIMEOUT_NOW:
        /* Leader transfer (thesis 3.10): campaign at once, skipping PreVote,
         * with the transfer flag so voters' leases do not block us. */
        if (nk_r_promotable(r)) {
            nk_r_hup(r, true);
        }
        break;
    case NK_RAFT_MSG_READ_INDEX_RESP:
        nk_r_handle_read_index_response(r, m);
        break;
    case NK_RAFT_MSG_READ_INDEX: {
        nk_raft_msg *o = nk_r_msg_new(r, NK_RAFT_MSG_READ_INDEX_RESP, m->from);
        if (o) {
            o->reject = true;
            o->ctx = m->ctx;
        }
        break;
    }
    default:
        break;
    }
    return NK_OK;
}

/* ----------------------------------------------------------- propose --- */

int nk_raft_propose(nk_raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    if (r->role != NK_RAFT_LEADER) {
        return NK_EAGAIN;
    }
    if (r->transferee) {
        return NK_EBUSY; /* thesis 3.10: stop accepting during a transfer */
    }
    uint64_t max = r->cfg.max_uncommitted_bytes;
    if (max && r->uncommitted_bytes > 0 && r->uncommitted_bytes + len > max) {
        return NK_EBUSY;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            return NK_ENOMEM;
        }
        memcpy(copy, data, len);
    }
    int rc = nk_r_append_local(r, NK_RAFT_ENTRY_NORMAL, copy, len);
    if (rc != NK_OK) {
        return rc;
    }
    r->uncommitted_bytes += len;
    if (index) {
        *index = nk_rlog_last(&r->log);
    }
    if (term) {
        *term = r->term;
    }
    return NK_OK;
}

int nk_raft_propose_conf_change(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t *index)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    return nk_rconf_propose(r, cc_type, node, 0, index);
}

int nk_raft_propose_conf_change_ctx(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t ctx,
                                    uint64_t *index)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    return nk_rconf_propose(r, cc_type, node, ctx, index);
}

int nk_raft_transfer_leader(nk_raft *r, uint64_t target)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    if (r->role != NK_RAFT_LEADER) {
        return NK_EAGAIN;
    }
    if (target == r->id) {
        return NK_OK;
    }
    if (nk_raft_conf_role(&r->conf, target) != NK_RAFT_VOTER) {
        return NK_EINVAL;
    }
    if (r->transferee == target) {
        return NK_OK;
    }
    r->transferee = target;
    r->transfer_elapsed = 0;
    nk_rprog *p = nk_r_prog(r, target);
    if (!p) {
        r->transferee = 0;
        return NK_EINVAL;
    }
    if (p->match == nk_rlog_last(&r->log)) {
        nk_r_send_timeout_now(r, target);
    } else {
        nk_r_send_append(r, p, false);
    }
    return NK_OK;
}

int nk_raft_compact(nk_raft *r, uint64_t index, nk_raft_snapshot_meta *meta)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    if (index > r->log.applied) {
        return NK_ERANGE;
    }
    if (index > r->log.snap_index) {
        /* The term of index may come from storage (below the tail). */
        int rc = nk_rlog_compact(&r->log, index);
        if (rc != NK_OK) {
            return rc;
        }
        /* The configuration in force at `index` becomes the base. */
        nk_rconf_compact(r, index);
    }
    if (meta) {
        meta->index = r->log.snap_index;
        meta->term = r->log.snap_term;
        meta->conf = r->base_conf;
    }
    return NK_OK;
}

void nk_raft_report_snapshot(nk_raft *r, uint64_t to, bool ok)
{
    if (r->role != NK_RAFT_LEADER) {
        return;
    }
    nk_rprog *p = nk_r_prog(r, to);
    if (!p || p->state != NK_RAFT_PR_SNAPSHOT) {
        return;
    }
    if (!ok) {
        p->pending_snapshot = 0;
    }
    /* Wait for the follower's append response before streaming again. */
    nk_rprog_become_probe(p);
    p->probe_sent = true;
}

/* ------------------------------------------------------ ready/advance --- */

static void flush(nk_raft *r)
{
    if (r->need_bcast) {
        r->need_bcast = false;
        if (r->role == NK_RAFT_LEADER) {
            nk_r_bcast_append(r);
        }
    }
}

static nk_raft_hard_state cur_hs(const nk_raft *r)
{
    nk_raft_hard_state hs = {r->term, r->vote, r->log.committed};
    return hs;
}

static bool hs_equal(const nk_raft_hard_state *a, const nk_raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool nk_raft_has_ready(nk_raft *r)
{
    if (r->ready_outstanding) {
        return false;
    }
    if (r->log.err != NK_OK) {
        return true; /* ready_get reports it */
    }
    flush(r);
    nk_raft_hard_state hs = cur_hs(r);
    return r->n_msgs > 0 || r->n_read_states > 0 || r->has_pending_snapshot ||
           !hs_equal(&hs, &r->prev_hs) || r->log.stable < nk_rlog_last(&r->log) ||
           r->log.committed > r->log.applying;
}

int nk_raft_ready_get(nk_raft *r, nk_raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->ready_outstanding) {
        return NK_EBUSY;
    }
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    flush(r);
    if (r->log.err != NK_OK) {
        return r->log.err; /* building appends met a storage failure */
    }
    nk_raft_hard_state hs = cur_hs(r);
    if (!hs_equal(&hs, &r->prev_hs)) {
        rd->has_hard_state = true;
        rd->hs = hs;
        rd->must_sync = hs.term != r->prev_hs.term || hs.vote != r->prev_hs.vote;
    }
    /* Unstable entries are always in memory (mem_prev <= stable). */
    NK_ASSERT(r->log.mem_prev <= r->log.stable);
    int rc = nk_rlog_slice(&r->log, r->log.stable + 1, nk_rlog_last(&r->log), 0, &rd->entries,
                           &rd->n_entries);
    if (rc != NK_OK) {
        return rc;
    }
    /* Committed entries below the tail (after a restart) are read back, at
     * most max_mem_bytes per Ready; the rest follow in later Readys. */
    uint64_t cmax = r->log.applying + 1 <= r->log.mem_prev ? r->cfg.max_mem_bytes : 0;
    rc = nk_rlog_slice(&r->log, r->log.applying + 1, r->log.committed, cmax, &rd->committed,
                       &rd->n_committed);
    if (rc != NK_OK) {
        nk_raft_ready_clear(rd);
        return rc;
    }
    /* From here on nothing can fail: move the rest out of r. */
    r->prev_hs = hs;
    if (r->has_pending_snapshot) {
        rd->has_snapshot = true;
        rd->snapshot = r->pending_snapshot;
        memset(&r->pending_snapshot, 0, sizeof(r->pending_snapshot));
        r->has_pending_snapshot = false;
    }
    if (rd->n_entries || rd->has_snapshot) {
        rd->must_sync = true;
    }
    if (rd->n_committed) {
        r->log.applying = rd->committed[rd->n_committed - 1].index;
    }
    rd->msgs = r->msgs;
    rd->n_msgs = r->n_msgs;
    r->msgs = NULL;
    r->n_msgs = r->cap_msgs = 0;
    rd->reads = r->read_states;
    rd->n_reads = r->n_read_states;
    r->read_states = NULL;
    r->n_read_states = r->cap_read_states = 0;
    r->ready_outstanding = true;
    return NK_OK;
}

void nk_raft_ready_clear(nk_raft_ready *rd)
{
    for (size_t k = 0; k < rd->n_entries; k++) {
        nk_raft_entry_clear(&rd->entries[k]);
    }
    free(rd->entries);
    for (size_t k = 0; k < rd->n_committed; k++) {
        nk_raft_entry_clear(&rd->committed[k]);
    }
    free(rd->committed);
    for (size_t k = 0; k < rd->n_msgs; k++) {
        nk_raft_msg_clear(&rd->msgs[k]);
    }
    free(rd->msgs);
    free(rd->reads);
    nk_raft_snapshot_clear(&rd->snapshot);
    memset(rd, 0, sizeof(*rd));
}

void nk_raft_advance(nk_raft *r, nk_raft_ready *rd)
{
    /* Entries become stable only if the log still holds them: a step made
     * between ready and advance may have replaced the tail. By the Log
     * Matching property, a matching (index, term) covers the prefix too. */
    for (size_t k = rd->n_entries; k > 0; k--) {
        const nk_raft_entry *e = &rd->entries[k - 1];
        if (e->index <= r->log.snap_index) {
            break;
        }
        if (nk_rlog_match(&r->log, e->index, e->term)) {
            if (e->index > r->log.stable) {
                r->log.stable = e->index;
            }
            break;
        }
    }
    if (rd->n_committed) {
        uint64_t a = rd->committed[rd->n_committed - 1].index;
        if (a > r->log.applied) {
            r->log.applied = a;
        }
    }
    if (rd->has_snapshot && rd->snapshot.meta.index > r->log.applied) {
        r->log.applied = rd->snapshot.meta.index;
    }
    if (r->log.applied > r->log.applying) {
        r->log.applying = r->log.applied;
    }
    nk_raft_ready_clear(rd);
    r->ready_outstanding = false;
    if (r->role == NK_RAFT_LEADER && nk_r_maybe_commit(r)) {
        nk_r_bcast_append(r);
    }
    nk_rconf_maybe_step_down(r);
    /* Stable and applied entries beyond the memory bound now go. */
    nk_rlog_trim(&r->log, r->cfg.max_mem_entries, r->cfg.max_mem_bytes);
}

/* ------------------------------------------------------------ status --- */

void nk_raft_status_get(const nk_raft *r, nk_raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->lead = r->lead;
    st->commit = r->log.committed;
    st->applied = r->log.applied;
    st->first_index = r->log.snap_index + 1;
    st->last_index = nk_rlog_last(&r->log);
    st->stable_index = r->log.stable;
    st->transferee = r->transferee;
    st->conf_index = r->conf_index;
    st->conf = r->conf;
    st->mem_first_index = r->log.mem_prev + 1;
    st->mem_entries = r->log.len;
    st->mem_bytes = r->log.mem_bytes;
    st->readbacks = r->log.readbacks;
}

int nk_raft_term_at(const nk_raft *r, uint64_t index, uint64_t *term)
{
    return nk_rlog_term_peek(&r->log, index, term);
}

int nk_raft_progress_get(const nk_raft *r, uint64_t id, uint64_t *match, uint64_t *next,
                         int *state)
{
    if (r->role != NK_RAFT_LEADER) {
        return NK_ENOENT;
    }
    for (uint32_t k = 0; k < r->n_prs; k++) {
        if (r->prs[k].id == id) {
            if (match) {
                *match = id == r->id ? r->log.stable : r->prs[k].match;
            }
            if (next) {
                *next = r->prs[k].next;
            }
            if (state) {
                *state = r->prs[k].state;
            }
            return NK_OK;
        }
    }
    return NK_ENOENT;
}

void nk_r_free_progress(nk_raft *r)
{
    free_prs(r);
}
