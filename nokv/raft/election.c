/*
 * election.c - role transitions, elections, PreVote, CheckQuorum, ticks.
 *
 * Thesis 3.4 (leader election), 3.6.1 (election restriction: vote only for
 * an up-to-date log), 9.6 (PreVote: a disrupted node first asks whether it
 * could win before bumping its term), 6.2 / 4.2.3 (CheckQuorum: a leader
 * that cannot reach a quorum for an election timeout steps down).
 */
#include <string.h>

#include "nokv/raft/raft_int.h"

void nk_r_become_follower(nk_raft *r, uint64_t term, uint64_t lead)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role == NK_RAFT_LEADER) {
        nk_r_free_progress(r);
    }
    r->role = NK_RAFT_FOLLOWER;
    r->lead = lead;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->transferee = 0;
    r->transfer_elapsed = 0;
    r->n_votes = 0;
    r->uncommitted_bytes = 0;
    r->need_bcast = false;
    nk_r_reset_randomized_timeout(r);
    nk_r_read_reset(r);
}

void nk_r_become_leader(nk_raft *r)
{
    r->role = NK_RAFT_LEADER;
    r->lead = r->id;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->transferee = 0;
    r->n_votes = 0;
    r->uncommitted_bytes = 0;
    nk_r_free_progress(r);
    nk_rconf_sync_progress(r);
    nk_r_read_reset(r);
    /* Thesis 3.6.2 / 6.4: a new leader commits a no-op of its own term; only
     * then are earlier-term entries (and reads) known to be committed. */
    nk_r_append_local(r, NK_RAFT_ENTRY_NORMAL, NULL, 0);
    nk_r_bcast_append(r);
    r->need_bcast = false;
}

static void record_vote(nk_raft *r, uint64_t from, bool granted)
{
    for (uint32_t k = 0; k < r->n_votes; k++) {
        if (r->votes_from[k] == from) {
            return; /* first answer wins */
        }
    }
    if (r->n_votes < NK_RAFT_MAX_MEMBERS) {
        r->votes_from[r->n_votes] = from;
        r->votes_granted[r->n_votes] = granted;
        r->n_votes++;
    }
}

/* 1 = won, -1 = lost, 0 = pending. Only current voters count. */
static int tally(const nk_raft *r)
{
    uint32_t voters = nk_raft_conf_voters(&r->conf);
    uint32_t q = voters / 2 + 1;
    uint32_t yes = 0, no = 0;
    for (uint32_t k = 0; k < r->n_votes; k++) {
        if (nk_raft_conf_role(&r->conf, r->votes_from[k]) != NK_RAFT_VOTER) {
            continue;
        }
        if (r->votes_granted[k]) {
            yes++;
        } else {
            no++;
        }
    }
    if (yes >= q) {
        return 1;
    }
    if (no > voters - q) {
        return -1;
    }
    return 0;
}

void nk_r_campaign(nk_raft *r, bool pre, bool transfer)
{
    uint8_t type;
    uint64_t vterm;
    if (pre) {
        /* PreVote does not touch term or vote (thesis 9.6): a node that
         * cannot win must not disrupt anyone. */
        r->role = NK_RAFT_PRE_CANDIDATE;
        type = NK_RAFT_MSG_PREVOTE;
        vterm = r->term + 1;
    } else {
        r->role = NK_RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        type = NK_RAFT_MSG_VOTE;
        vterm = r->term;
    }
    r->lead = 0;
    r->election_elapsed = 0;
    r->transferee = 0;
    r->n_votes = 0;
    nk_r_reset_randomized_timeout(r);
    record_vote(r, r->id, true);
    if (tally(r) == 1) {
        if (pre) {
            nk_r_campaign(r, false, transfer);
        } else {
            nk_r_become_leader(r);
        }
        return;
    }
    for (uint32_t k = 0; k < r->conf.n; k++) {
        const nk_raft_member *mb = &r->conf.m[k];
        if (mb->role != NK_RAFT_VOTER || mb->id == r->id) {
            continue;
        }
        nk_raft_msg *m = nk_r_msg_new(r, type, mb->id);
        if (!m) {
            continue;
        }
        m->term = vterm;
        m->index = nk_rlog_last(&r->log);
        m->log_term = nk_rlog_last_term(&r->log);
        if (transfer) {
            m->flags |= NK_RAFT_MSGF_TRANSFER;
        }
    }
}

void nk_r_hup(nk_raft *r, bool transfer)
{
    if (r->role == NK_RAFT_LEADER || !nk_r_promotable(r)) {
        return;
    }
    nk_r_campaign(r, r->cfg.prevote && !transfer, transfer);
}

void nk_r_handle_vote_request(nk_raft *r, const nk_raft_msg *m)
{
    bool pre = m->type == NK_RAFT_MSG_PREVOTE;
    /* Figure 3.1: grant if we have not voted for someone else this term
     * (and know no leader), or for a pre-vote of a future term. */
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->lead == 0) ||
                    (pre && m->term > r->term);
    bool grant = can_vote && nk_rlog_up_to_date(&r->log, m->log_term, m->index);
    nk_raft_msg *o = nk_r_msg_new(r, pre ? NK_RAFT_MSG_PREVOTE_RESP : NK_RAFT_MSG_VOTE_RESP,
                                  m->from);
    if (grant) {
        if (o) {
            o->term = m->term; /* the term the (pre-)vote is for */
        }
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else if (o) {
        o->reject = true;
    }
}

void nk_r_handle_vote_response(nk_raft *r, const nk_raft_msg *m)
{
    record_vote(r, m->from, !m->reject);
    int res = tally(r);
    if (res == 1) {
        if (r->role == NK_RAFT_PRE_CANDIDATE) {
            nk_r_campaign(r, false, false);
        } else {
            nk_r_become_leader(r);
        }
    } else if (res == -1) {
        nk_r_become_follower(r, r->term, 0);
    }
}

void nk_r_tick_election(nk_raft *r)
{
    r->election_elapsed++;
    if (nk_r_promotable(r) && r->election_elapsed >= r->rand_timeout) {
        r->election_elapsed = 0;
        nk_r_hup(r, false);
    }
}

static bool quorum_active(const nk_raft *r)
{
    uint32_t act = 0;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        const nk_rprog *p = &r->prs[k];
        if (p->learner) {
            continue;
        }
        if (p->id == r->id || nk_rconf_recently_active(r, p)) {
            act++;
        }
    }
    return act >= nk_r_quorum(r);
}

void nk_r_tick_heartbeat(nk_raft *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum && !quorum_active(r)) {
            nk_r_become_follower(r, r->term, 0);
            return;
        }
    }
    if (r->transferee && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        /* Thesis 3.10: abort a transfer that did not finish within an
         * election timeout and resume accepting proposals. */
        r->transferee = 0;
        r->transfer_elapsed = 0;
    }
    for (uint32_t k = 0; k < r->n_prs; k++) {
        nk_rprog *p = &r->prs[k];
        if (p->state == NK_RAFT_PR_SNAPSHOT && ++p->snap_elapsed >= 2 * r->cfg.election_ticks) {
            /* No answer to the snapshot (lost message, crashed follower):
             * probe again, which resends a snapshot if still needed. */
            p->pending_snapshot = 0;
            nk_rprog_become_probe(p);
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        nk_r_bcast_heartbeat(r, r->read_round);
    }
}
