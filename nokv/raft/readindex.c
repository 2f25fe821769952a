/*
 * readindex.c - linearizable reads without writing to the log (thesis 6.4).
 *
 * The leader records its commit index as the read index, then confirms it
 * is still the leader by a round of heartbeats: once a quorum of voters
 * answered a heartbeat sent after the request, no newer leader could have
 * committed anything the read would miss. Requests are confirmed in order
 * (rounds are increasing, so a quorum for round k also covers rounds < k).
 * Reads forwarded by followers are answered with READ_INDEX_RESP.
 */
#include <stdlib.h>

#include "nokv/raft/raft_int.h"

int nk_r_push_read_state(nk_raft *r, uint64_t ctx, uint64_t index)
{
    if (r->n_read_states == r->cap_read_states) {
        size_t ncap = r->cap_read_states ? r->cap_read_states * 2 : 8;
        nk_raft_read_state *n = realloc(r->read_states, ncap * sizeof(*n));
        if (!n) {
            return NK_ENOMEM;
        }
        r->read_states = n;
        r->cap_read_states = ncap;
    }
    r->read_states[r->n_read_states].ctx = ctx;
    r->read_states[r->n_read_states].index = index;
    r->n_read_states++;
    return NK_OK;
}

static void release(nk_raft *r, const nk_rread *q)
{
    if (q->from == 0) {
        nk_r_push_read_state(r, q->ctx, q->index);
        return;
    }
    nk_raft_msg *m = nk_r_msg_new(r, NK_RAFT_MSG_READ_INDEX_RESP, q->from);
    if (m) {
        m->ctx = q->ctx;
        m->index = q->index;
    }
}

static bool confirmed(const nk_raft *r, uint64_t round)
{
    uint32_t acks = 0;
    for (uint32_t k = 0; k < r->n_prs; k++) {
        const nk_rprog *p = &r->prs[k];
        if (p->learner) {
            continue;
        }
        if (p->id == r->id || p->read_ack >= round) {
            acks++;
        }
    }
    return acks >= nk_r_quorum(r);
}

static void process(nk_raft *r)
{
    size_t done = 0;
    while (done < r->n_reads_q && confirmed(r, r->reads_q[done].round)) {
        release(r, &r->reads_q[done]);
        done++;
    }
    if (done) {
        for (size_t k = done; k < r->n_reads_q; k++) {
            r->reads_q[k - done] = r->reads_q[k];
        }
        r->n_reads_q -= done;
    }
}

int nk_r_read_request(nk_raft *r, uint64_t ctx, uint64_t from)
{
    /* Step 1 of 6.4: until the leader committed an entry of its term it does
     * not know the latest commit index. */
    if (nk_rlog_term0(&r->log, r->log.committed) != r->term) {
        return NK_EAGAIN;
    }
    if (r->n_reads_q == r->cap_reads_q) {
        size_t ncap = r->cap_reads_q ? r->cap_reads_q * 2 : 8;
        nk_rread *n = realloc(r->reads_q, ncap * sizeof(*n));
        if (!n) {
            return NK_ENOMEM;
        }
        r->reads_q = n;
        r->cap_reads_q = ncap;
    }
    nk_rread *q = &r->reads_q[r->n_reads_q++];
    q->ctx = ctx;
    q->index = r->log.committed;
    q->round = ++r->read_round;
    q->from = from;
    process(r); /* a single-voter group confirms at once */
    if (r->n_reads_q) {
        nk_r_bcast_heartbeat(r, r->read_round);
    }
    return NK_OK;
}

void nk_r_read_ack(nk_raft *r, uint64_t from, uint64_t round)
{
    nk_rprog *p = nk_r_prog(r, from);
    if (!p || round <= p->read_ack) {
        return;
    }
    p->read_ack = round;
    process(r);
}

void nk_r_read_reset(nk_raft *r)
{
    r->n_reads_q = 0;
}

void nk_r_handle_read_index(nk_raft *r, const nk_raft_msg *m)
{
    if (nk_r_read_request(r, m->ctx, m->from) != NK_OK) {
        nk_raft_msg *o = nk_r_msg_new(r, NK_RAFT_MSG_READ_INDEX_RESP, m->from);
        if (o) {
            o->reject = true;
            o->ctx = m->ctx;
        }
    }
}

void nk_r_handle_read_index_response(nk_raft *r, const nk_raft_msg *m)
{
    if (!m->reject) {
        nk_r_push_read_state(r, m->ctx, m->index);
    }
    /* A rejected read produces nothing: the host retries after a timeout. */
}

int nk_raft_read_index(nk_raft *r, uint64_t ctx)
{
    if (r->log.err != NK_OK) {
        return r->log.err;
    }
    if (r->role == NK_RAFT_LEADER) {
        return nk_r_read_request(r, ctx, 0);
    }
    if (r->lead == 0) {
        return NK_EAGAIN;
    }
    nk_raft_msg *m = nk_r_msg_new(r, NK_RAFT_MSG_READ_INDEX, r->lead);
    if (!m) {
        return NK_ENOMEM;
    }
    m->ctx = ctx;
    return NK_OK;
}
