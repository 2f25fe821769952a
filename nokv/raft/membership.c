/*
 * membership.c - configurations: lookup, encoding, tracking the latest
 * configuration in the log, and validating single-server changes.
 *
 * Scheme (raft.h, thesis 4.1-4.3): each node uses the newest configuration
 * entry in its log, committed or not; one voter is added or removed at a
 * time; a leader proposes the next change only after the previous one is
 * committed and after it committed an entry of its own term.
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"
#include "nokv/util/assert.h"
#include "nokv/util/coding.h"

/* Version 1: [1][cc_type][cc_node][n][members]. Version 2 adds cc_ctx (the
 * host's context for the change, e.g. the store that hosts the new peer)
 * after cc_node. Both decode; version 2 is written. */
#define CONF_VERSION_1 1
#define CONF_VERSION 2

int nk_raft_conf_role(const nk_raft_conf *c, uint64_t id)
{
    for (uint32_t k = 0; k < c->n; k++) {
        if (c->m[k].id == id) {
            return c->m[k].role;
        }
    }
    return 0;
}

uint32_t nk_raft_conf_voters(const nk_raft_conf *c)
{
    uint32_t v = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        v += c->m[k].role == NK_RAFT_VOTER;
    }
    return v;
}

int nk_raft_conf_set(nk_raft_conf *c, uint64_t id, uint8_t role)
{
    if (id == 0 || (role != NK_RAFT_VOTER && role != NK_RAFT_LEARNER)) {
        return NK_EINVAL;
    }
    uint32_t k = 0;
    while (k < c->n && c->m[k].id < id) {
        k++;
    }
    if (k < c->n && c->m[k].id == id) {
        c->m[k].role = role;
        return NK_OK;
    }
    if (c->n >= NK_RAFT_MAX_MEMBERS) {
        return NK_ERANGE;
    }
    memmove(&c->m[k + 1], &c->m[k], (c->n - k) * sizeof(c->m[0]));
    c->m[k].id = id;
    c->m[k].role = role;
    c->n++;
    return NK_OK;
}

static void conf_remove(nk_raft_conf *c, uint64_t id)
{
    for (uint32_t k = 0; k < c->n; k++) {
        if (c->m[k].id == id) {
            memmove(&c->m[k], &c->m[k + 1], (c->n - k - 1) * sizeof(c->m[0]));
            c->n--;
            return;
        }
    }
}

int nk_rconf_encode(const nk_raft_conf *c, uint8_t cc_type, uint64_t cc_node, uint64_t cc_ctx,
                    uint8_t **out, size_t *len)
{
    size_t cap = 2 + NK_VARINT64_MAX * 3 + (size_t)c->n * (NK_VARINT64_MAX + 1);
    uint8_t *b = malloc(cap);
    if (!b) {
        return NK_ENOMEM;
    }
    size_t n = 0;
    b[n++] = CONF_VERSION;
    b[n++] = cc_type;
    n += nk_put_varint64(b + n, cc_node);
    n += nk_put_varint64(b + n, cc_ctx);
    n += nk_put_varint64(b + n, c->n);
    for (uint32_t k = 0; k < c->n; k++) {
        n += nk_put_varint64(b + n, c->m[k].id);
        b[n++] = c->m[k].role;
    }
    *out = b;
    *len = n;
    return NK_OK;
}

int nk_raft_conf_decode(const uint8_t *p, size_t len, nk_raft_conf *conf, uint8_t *cc_type,
                        uint64_t *cc_node)
{
    return nk_raft_conf_decode_ctx(p, len, conf, cc_type, cc_node, NULL);
}

int nk_raft_conf_decode_ctx(const uint8_t *p, size_t len, nk_raft_conf *conf, uint8_t *cc_type,
                            uint64_t *cc_node, uint64_t *cc_ctx)
{
    const uint8_t *end = p + len;
    memset(conf, 0, sizeof(*conf));
    if (len < 2 || (p[0] != CONF_VERSION && p[0] != CONF_VERSION_1)) {
        return NK_EPROTO;
    }
    bool has_ctx = p[0] == CONF_VERSION;
    uint8_t t = p[1];
    if (t > NK_RAFT_CC_PROMOTE) {
        return NK_EPROTO;
    }
    p += 2;
    uint64_t node, n;
    size_t c = nk_get_varint64(p, end, &node);
    if (!c) {
        return NK_EPROTO;
    }
    p += c;
    uint64_t ctx = 0;
    if (has_ctx) {
        c = nk_get_varint64(p, end, &ctx);
        if (!c) {
            return NK_EPROTO;
        }
        p += c;
    }
    c = nk_get_varint64(p, end, &n);
    if (!c || n > NK_RAFT_MAX_MEMBERS) {
        return NK_EPROTO;
    }
    p += c;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t id;
        c = nk_get_varint64(p, end, &id);
        if (!c || p + c >= end) {
            memset(conf, 0, sizeof(*conf));
            return NK_EPROTO;
        }
        p += c;
        uint8_t role = *p++;
        if (id == 0 || (role != NK_RAFT_VOTER && role != NK_RAFT_LEARNER) ||
            (k > 0 && conf->m[k - 1].id >= id)) {
            memset(conf, 0, sizeof(*conf));
            return NK_ECORRUPT;
        }
        conf->m[k].id = id;
        conf->m[k].role = role;
        conf->n = (uint32_t)(k + 1);
    }
    if (p != end) {
        memset(conf, 0, sizeof(*conf));
        return NK_EPROTO;
    }
    if (cc_type) {
        *cc_type = t;
    }
    if (cc_node) {
        *cc_node = node;
    }
    if (cc_ctx) {
        *cc_ctx = ctx;
    }
    return NK_OK;
}

bool nk_rconf_recently_active(const nk_raft *r, const nk_rprog *p)
{
    return p->id == r->id || r->ticks - p->last_active < r->cfg.election_ticks;
}

int nk_rconf_sync_progress(nk_raft *r)
{
    if (r->role != NK_RAFT_LEADER) {
        nk_r_free_progress(r);
        return NK_OK;
    }
    nk_rprog nprs[NK_RAFT_MAX_MEMBERS];
    uint32_t nn = 0;
    int rc = NK_OK;
    for (uint32_t k = 0; k < r->conf.n; k++) {
        const nk_raft_member *mb = &r->conf.m[k];
        bool learner = mb->role == NK_RAFT_LEARNER;
        nk_rprog *old = nk_r_prog(r, mb->id);
        if (old) {
            nprs[nn] = *old;
            nprs[nn].learner = learner;
            old->infl = NULL; /* moved */
            old->id = 0;
            nn++;
            continue;
        }
        if (nk_rprog_init(&nprs[nn], mb->id, learner, r->cfg.max_inflight_msgs) != NK_OK) {
            rc = NK_ENOMEM; /* member left untracked; it gets no appends */
            continue;
        }
        nprs[nn].next = nk_rlog_last(&r->log) + 1;
        /* New members get one election timeout of grace before they count
         * as unreachable for CheckQuorum. */
        nprs[nn].last_active = r->ticks;
        nn++;
    }
    nk_r_free_progress(r); /* frees only the progresses that were not moved */
    memcpy(r->prs, nprs, nn * sizeof(nprs[0]));
    r->n_prs = nn;
    return rc;
}

int nk_rconf_note_append(nk_raft *r, const nk_raft_entry *e)
{
    if (!e || e->type != NK_RAFT_ENTRY_CONF) {
        return NK_OK;
    }
    nk_raft_conf c;
    if (nk_raft_conf_decode(e->data, e->len, &c, NULL, NULL) != NK_OK) {
        return NK_OK; /* leaders only write valid configurations */
    }
    if (r->n_chist == r->cap_chist) {
        size_t ncap = r->cap_chist ? r->cap_chist * 2 : 4;
        nk_rconf_ent *n = realloc(r->chist, ncap * sizeof(*n));
        if (!n) {
            return NK_ENOMEM;
        }
        r->chist = n;
        r->cap_chist = ncap;
    }
    NK_ASSERT(r->n_chist == 0 || r->chist[r->n_chist - 1].index < e->index);
    r->chist[r->n_chist].index = e->index;
    r->chist[r->n_chist].conf = c;
    r->n_chist++;
    r->conf = c;
    r->conf_index = e->index;
    if (r->role == NK_RAFT_LEADER) {
        nk_rconf_sync_progress(r);
    }
    return NK_OK;
}

void nk_rconf_recompute(nk_raft *r)
{
    if (r->n_chist > 0) {
        r->conf = r->chist[r->n_chist - 1].conf;
        r->conf_index = r->chist[r->n_chist - 1].index;
    } else {
        r->conf = r->base_conf;
        r->conf_index = 0;
    }
    if (r->role == NK_RAFT_LEADER) {
        nk_rconf_sync_progress(r);
    }
}

void nk_rconf_truncate(nk_raft *r, uint64_t index)
{
    size_t n = r->n_chist;
    while (r->n_chist > 0 && r->chist[r->n_chist - 1].index >= index) {
        r->n_chist--;
    }
    if (n != r->n_chist) {
        nk_rconf_recompute(r); /* a configuration set by the dropped tail is undone */
    }
}

void nk_rconf_compact(nk_raft *r, uint64_t index)
{
    size_t drop = 0;
    while (drop < r->n_chist && r->chist[drop].index <= index) {
        drop++;
    }
    if (drop > 0) {
        r->base_conf = r->chist[drop - 1].conf;
        memmove(r->chist, r->chist + drop, (r->n_chist - drop) * sizeof(*r->chist));
        r->n_chist -= drop;
    }
    if (r->conf_index <= index) {
        r->conf_index = 0;
    }
}

void nk_rconf_clear_history(nk_raft *r)
{
    r->n_chist = 0;
}

void nk_rconf_on_commit(nk_raft *r)
{
    if (r->role == NK_RAFT_LEADER && r->conf_index <= r->log.committed && !nk_r_promotable(r)) {
        /* Deferred to a safe point (callers may hold progress pointers). */
        r->removed_step_down = true;
    }
}

void nk_rconf_maybe_step_down(nk_raft *r)
{
    if (!r->removed_step_down) {
        return;
    }
    r->removed_step_down = false;
    if (r->role != NK_RAFT_LEADER || nk_r_promotable(r) || r->conf_index > r->log.committed) {
        return;
    }
    /* Thesis 4.2.2: a leader removed from the configuration steps down once
     * the change commits. Hand over at once to a caught-up voter so the
     * cluster does not wait for an election timeout. */
    uint64_t best = 0;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        const nk_rprog *p = &r->prs[k];
        if (!p->learner && p->id != r->id && p->match == nk_rlog_last(&r->log)) {
            best = p->id;
            break;
        }
    }
    if (best) {
        nk_r_send_timeout_now(r, best);
    }
    nk_r_become_follower(r, r->term, 0);
}

int nk_rconf_propose(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t ctx, uint64_t *index)
{
    if (r->role != NK_RAFT_LEADER) {
        return NK_EAGAIN;
    }
    if (r->transferee) {
        return NK_EBUSY;
    }
    if (r->conf_index > r->log.committed) {
        return NK_EAGAIN; /* one change at a time */
    }
    if (nk_rlog_term0(&r->log, r->log.committed) != r->term) {
        return NK_EAGAIN; /* no entry of this term committed yet */
    }
    if (node == 0) {
        return NK_EINVAL;
    }
    nk_raft_conf c = r->conf;
    int role = nk_raft_conf_role(&c, node);
    int rc;
    switch (cc_type) {
    case NK_RAFT_CC_ADD_VOTER:
    case NK_RAFT_CC_ADD_LEARNER:
        if (role) {
            return NK_EEXIST;
        }
        rc = nk_raft_conf_set(&c, node,
                              cc_type == NK_RAFT_CC_ADD_VOTER ? NK_RAFT_VOTER : NK_RAFT_LEARNER);
        if (rc != NK_OK) {
            return rc;
        }
        break;
    case NK_RAFT_CC_REMOVE:
        if (!role) {
            return NK_ENOENT;
        }
        conf_remove(&c, node);
        break;
    case NK_RAFT_CC_PROMOTE:
        if (role == NK_RAFT_VOTER) {
            return NK_EEXIST;
        }
        if (role != NK_RAFT_LEARNER) {
            return NK_ENOENT;
        }
        nk_raft_conf_set(&c, node, NK_RAFT_VOTER);
        break;
    default:
        return NK_EINVAL;
    }
    uint32_t voters = nk_raft_conf_voters(&c);
    if (voters == 0) {
        return NK_EINVAL; /* no quorum could ever form */
    }
    uint32_t active = 0;
    for (uint32_t k = 0; k < c.n; k++) {
        if (c.m[k].role != NK_RAFT_VOTER) {
            continue;
        }
        const nk_rprog *p = nk_r_prog(r, c.m[k].id);
        if (c.m[k].id == r->id || (p && nk_rconf_recently_active(r, p))) {
            active++;
        }
    }
    if (active < voters / 2 + 1) {
        return NK_EAGAIN; /* the new configuration would have no live quorum */
    }
    uint8_t *data;
    size_t len;
    rc = nk_rconf_encode(&c, cc_type, node, ctx, &data, &len);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_r_append_local(r, NK_RAFT_ENTRY_CONF, data, len);
    if (rc != NK_OK) {
        return rc;
    }
    if (index) {
        *index = nk_rlog_last(&r->log);
    }
    return NK_OK;
}
