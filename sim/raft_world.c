/*
 * raft_world.c - the `raft` workload's world: clients, nemesis and checkers
 * around the node app of sim/raft_node.c (contract in sim/raft_wl.h).
 *
 * Everything here is the outside observer; its state survives node crashes.
 *
 * Checkers (first violation halts the run):
 *   - election safety: at most one leader per term (every node is looked at
 *     after each of its callbacks);
 *   - log matching: two log writes of the same (index, term), on any nodes,
 *     carry the same data and the same previous term;
 *   - committed entries never change: every index any node reports committed
 *     has one term forever, and what nodes apply there matches it;
 *   - identical apply sequences: every replica applies the same entry at each
 *     index, with the same running hash of the history before it and the same
 *     state-machine hash after it (snapshots included);
 *   - durability of the node's own promises: after a restart, the log holds
 *     every byte a finished sync covered, and the hard state's term and vote
 *     did not go back (a vote never changes within a term);
 *   - linearizability of the client history (see check_linearizable);
 *   - liveness after `check mark`: a leader exists, every member applied all
 *     that was committed before the mark (and anything committed more than
 *     `within` ago), client operations complete within `within`, and at least
 *     `min` of them completed (`check progress min=N`).
 *
 * Clients: NK_SRAFT_MAX_CLIENTS at most, each with one operation at a time
 * (write of a unique value, or a ReadIndex read) on a small key set. A
 * client sends to the node it believes leads, follows redirects, retries on
 * a per-attempt timeout and gives up after an operation deadline: a write
 * that gave up has an unknown outcome. Retries reuse the request number, and
 * the state machine applies a request number once (client sessions, thesis
 * 6.3), so a retry never applies a write twice. The client network is not
 * partitioned (clients sit outside the cluster) but has latency.
 *
 * Nemesis and operations driven by the workload until `chaos-until` (or the
 * first `check mark`): leader-targeted faults (power loss, kill, isolation,
 * a one-way cut from part of the group followed by a crash: the thesis
 * figure 3.7 setup that a broken commit rule turns into lost commits),
 * membership changes (add learner, promote, remove voter or learner) and
 * leader transfers, all at seeded times.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/util/rand.h"
#include "nokv/util/grow.h"
#include "sim/check/lin.h"
#include "sim/check/raft.h"
#include "sim/raft_wl.h"
#include "sim/scenario.h"

enum wev_kind {
    EV_CLIENT_NEXT = 1, /* start the client's next operation */
    EV_REQUEST,         /* a request reaches a node */
    EV_REPLY,           /* a reply reaches a client */
    EV_ATTEMPT_TIMEOUT, /* the client's attempt timer */
    EV_RETRY,           /* the client retries after a short pause */
    EV_NEMESIS,
    EV_NEMESIS_CRASH, /* a delayed crash (power loss) */
    EV_NEMESIS_KILL,  /* a delayed kill (process death) */
    EV_RESTART,
    EV_HEAL_NODE,
    EV_CONF,
    EV_TRANSFER,
};

/* A world event: allocated per nk_sim_at, on a list so world_free can
 * release those that never fired (the run halted first). */
typedef struct wev {
    struct wev *prev, *next;
    nk_sraft_world *w;
    int kind;
    uint32_t node;
    uint32_t client;
    uint64_t seq;
    uint64_t attempt;
    nk_sraft_req rq;
    int status;
    uint64_t value;
    uint64_t lead;
} wev;

typedef struct hist_op {
    uint32_t client;
    uint32_t key;
    uint8_t op;
    bool done;      /* completed with a reply */
    bool gave_up;   /* no reply before the deadline (writes: unknown outcome) */
    uint64_t value; /* written value, or the value a read returned */
    uint64_t inv;
    uint64_t res;
} hist_op;

typedef struct client {
    uint32_t id;
    bool busy;    /* an operation is outstanding */
    bool waiting; /* the event that starts the next operation is pending */
    nk_sraft_req rq;
    uint32_t target;
    uint64_t deadline;
    size_t hist;
} client;

typedef struct node_obs {
    uint64_t seen_commit;
    uint64_t first_commit_term; /* term of its last leadership with a commit seen */
    int role;
    uint64_t term;
    bool promised;
    uint64_t p_seg, p_off;
    nk_raft_hard_state p_hs;
} node_obs;

typedef struct commit_sample {
    uint64_t at;
    uint64_t commit;
} commit_sample;

struct nk_sraft_world {
    nk_sim *s;
    nk_sim_result *res;
    uint32_t nodes;
    nk_sraft_opts o;
    uint64_t chaos_until;
    uint64_t op_timeout_ns;
    nk_sraft_cfg cfgs[NK_SRAFT_MAX_NODES + 1];
    bool begun;
    nk_rand crand; /* clients */
    nk_rand nrand; /* nemesis, conf changes, transfers */
    wev *events;

    nk_rcheck *chk; /* the raft invariants (sim/check/raft.h) */
    uint64_t max_commit;
    commit_sample *samples;
    size_t n_samples, cap_samples;
    node_obs obs[NK_SRAFT_MAX_NODES + 1];

    client clients[NK_SRAFT_MAX_CLIENTS];
    hist_op *hist;
    size_t n_hist, cap_hist;

    int ep_phase; /* figure-8 episode, see on_new_leader */
    uint32_t ep_x, ep_y;
    uint64_t ep_deadline;

    bool calm;
    bool chaos_over;
    bool marked;
    uint64_t mark_ns;
    uint64_t commit_at_mark;
    uint64_t done_at_mark;

    uint64_t st_elections, st_done, st_writes, st_reads, st_gave_up, st_installs;
    uint64_t st_recoveries, st_nemesis, st_conf, st_transfers, st_max_term, st_old_term_commits;
    uint64_t st_episodes, st_chaos_commit;
};

/* ------------------------------------------------------------- helpers --- */

static void oom(nk_sraft_world *w)
{
    nk_sim_fail(w->s, w->res, NK_SIM_CRASH, "raft workload: out of memory in the checker");
}

static void at(nk_sraft_world *w, uint64_t t, const char *label, wev *e);

static wev *ev_new(nk_sraft_world *w, int kind)
{
    wev *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        oom(w);
        return NULL;
    }
    e->w = w;
    e->kind = kind;
    e->next = w->events;
    if (w->events) {
        w->events->prev = e;
    }
    w->events = e;
    return e;
}

static void ev_free(nk_sraft_world *w, wev *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        w->events = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    }
    free(e);
}

static nk_sraft_node *app_of(nk_sraft_world *w, uint32_t node)
{
    return nk_sim_node_state(w->s, node);
}

static const nk_raft *raft_of(nk_sraft_world *w, uint32_t node)
{
    nk_sraft_node *a = app_of(w, node);
    return a ? nk_sraft_node_raft(a) : NULL;
}

/* The live leader with the highest term, or 0. */
static uint32_t find_leader(nk_sraft_world *w, nk_raft_status *out)
{
    uint32_t best = 0;
    uint64_t best_term = 0;
    if (out) {
        /* Defined even when no node leads: callers test the return value,
         * but an optimising compiler cannot see that (gcc 12 -O2 warned). */
        memset(out, 0, sizeof(*out));
    }
    for (uint32_t n = 1; n <= w->nodes; n++) {
        const nk_raft *r = raft_of(w, n);
        if (r == NULL) {
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        if (st.role == NK_RAFT_LEADER && st.term > best_term) {
            best = n;
            best_term = st.term;
            if (out) {
                *out = st;
            }
        }
    }
    return best;
}

static bool chaos_on(nk_sraft_world *w)
{
    return !w->calm && (w->chaos_until == 0 || nk_sim_now(w->s) < w->chaos_until);
}

/* ------------------------------------------------------ node -> world --- */

const nk_sraft_opts *nk_sraft_world_opts(const nk_sraft_world *w)
{
    return &w->o;
}
uint32_t nk_sraft_world_nodes(const nk_sraft_world *w)
{
    return w->nodes;
}
nk_sim *nk_sraft_world_sim(const nk_sraft_world *w)
{
    return w->s;
}

void nk_sraft_world_violation(nk_sraft_world *w, uint32_t node, const char *what)
{
    (void)node;
    nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", what);
}

static void note_commit(nk_sraft_world *w, uint32_t node, uint64_t i, uint64_t term)
{
    char why[256];
    if (!nk_rcheck_committed(w->chk, node, i, term, why, sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
        return;
    }
    if (i > w->max_commit) {
        w->max_commit = i;
        if (nk_grow_zeroed((void **)&w->samples, &w->cap_samples, w->n_samples + 1, sizeof(*w->samples))) {
            w->samples[w->n_samples].at = nk_sim_now(w->s);
            w->samples[w->n_samples].commit = i;
            w->n_samples++;
        }
    }
}

static void at_after(nk_sraft_world *w, uint64_t delay, const char *label, int kind, uint32_t node);

/*
 * Leader deaths at the moments that matter (both variants face the same
 * schedule; only the observable events "n became leader" and "leader n
 * advanced its commit index for the first time in its term" drive it):
 *   - a new leader dying within milliseconds of its election leaves its own
 *     term's first entry on itself only;
 *   - a new leader dying right after its first commit leaves that commit
 *     known to itself only, and its next entries nowhere.
 * The figure-8 episode chains them (thesis figure 3.7): leader X builds a
 * private tail behind a one-way cut and dies; the next leader Y dies at
 * once, holding a newer-term entry at X's tail index; X returns and, under
 * a broken commit rule, "commits" its old-term tail by counting replicas;
 * it dies right after that first commit; Y returns with its newer last term,
 * wins, and overwrites what X called committed. The correct rule never
 * commits X's tail that way, so the same schedule is harmless.
 */
enum { EP_NONE = 0, EP_WAIT_Y = 1, EP_WAIT_COMMIT = 2 };

static void crash_soon(nk_sraft_world *w, uint32_t node, uint64_t after, uint64_t down)
{
    at_after(w, after, "raft.nemesis.crash", EV_NEMESIS_CRASH, node);
    at_after(w, after + down, "raft.nemesis.restart", EV_RESTART, node);
}

static void on_new_leader(nk_sraft_world *w, uint32_t node)
{
    if (!w->o.nemesis || !chaos_on(w)) {
        return;
    }
    if (w->ep_phase == EP_WAIT_Y && node != w->ep_x) {
        /* A kill, not a power loss: its first entry was written when it
         * took office and survives in the page cache, but the sync that
         * must precede sending it has not finished. */
        uint64_t after = nk_rand_between(&w->nrand, 0, 1000) * NK_NSEC_PER_USEC;
        nk_sim_trace(w->s, "raft.figure8 new leader n%u dies; n%u returns", node, w->ep_x);
        at_after(w, after, "raft.nemesis.kill", EV_NEMESIS_KILL, node);
        at_after(w, after + NK_NSEC_PER_MSEC, "raft.nemesis.restart", EV_RESTART, w->ep_x);
        w->ep_y = node;
        w->ep_phase = EP_WAIT_COMMIT;
        w->ep_deadline = nk_sim_now(w->s) + 2 * NK_NSEC_PER_SEC;
        return;
    }
    if (w->ep_phase != EP_NONE || w->o.fresh_leader_crash == 0 ||
        nk_rand_below(&w->nrand, 100) >= w->o.fresh_leader_crash) {
        return;
    }
    /* Half of them before the first entry of the new term can reach anyone. */
    uint64_t after = nk_rand_chance(&w->nrand, 1, 2)
                         ? nk_rand_between(&w->nrand, 0, 5000) * NK_NSEC_PER_USEC
                         : nk_rand_between(&w->nrand, 5, 40) * NK_NSEC_PER_MSEC;
    crash_soon(w, node, after, nk_rand_between(&w->nrand, 20, 400) * NK_NSEC_PER_MSEC);
}

static void on_first_commit(nk_sraft_world *w, uint32_t node)
{
    if (!w->o.nemesis || !chaos_on(w)) {
        return;
    }
    uint64_t after = nk_rand_between(&w->nrand, 0, 2000) * NK_NSEC_PER_USEC;
    if (w->ep_phase == EP_WAIT_COMMIT) {
        nk_sim_trace(w->s, "raft.figure8 leader n%u dies after its first commit; n%u returns", node,
                     w->ep_y);
        /* At once: what it sent after the commit is still on the wire and
         * dies with its connections. It stays down long enough for Y. */
        after = nk_rand_between(&w->nrand, 0, 300) * NK_NSEC_PER_USEC;
        uint64_t down = nk_rand_between(&w->nrand, 400, 900) * NK_NSEC_PER_MSEC;
        crash_soon(w, node, after, down);
        if (node != w->ep_x) {
            /* With five voters the peer that shared X's tail may have led;
             * X itself would then win next and legitimately commit the
             * tail, so it goes down as well. */
            crash_soon(w, w->ep_x, after, down);
        }
        at_after(w, after + nk_rand_between(&w->nrand, 1, 20) * NK_NSEC_PER_MSEC,
                 "raft.nemesis.restart", EV_RESTART, w->ep_y);
        w->ep_phase = EP_NONE;
        w->st_episodes++;
        return;
    }
    if (w->ep_phase != EP_NONE || w->o.commit_crash == 0 ||
        nk_rand_below(&w->nrand, 100) >= w->o.commit_crash) {
        return;
    }
    crash_soon(w, node, after, nk_rand_between(&w->nrand, 20, 400) * NK_NSEC_PER_MSEC);
}

void nk_sraft_world_observe(nk_sraft_world *w, uint32_t node, const nk_raft *r)
{
    if (r == NULL || w->res->verdict != NK_SIM_PASS) {
        return;
    }
    if (!w->chaos_over && !chaos_on(w)) {
        w->chaos_over = true;
        w->st_chaos_commit = w->max_commit; /* how much work the faults let through */
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    node_obs *ob = &w->obs[node];
    if (st.term > w->st_max_term) {
        w->st_max_term = st.term;
    }
    if (st.role == NK_RAFT_LEADER) {
        char why[256];
        bool first = false;
        if (!nk_rcheck_leader(w->chk, node, st.term, &first, why, sizeof(why))) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
            return;
        }
        if (first) {
            w->st_elections++;
            nk_sim_trace(w->s, "raft.leader n%u term %" PRIu64 " last %" PRIu64 " commit %" PRIu64,
                         node, st.term, st.last_index, st.commit);
            on_new_leader(w, node);
        }
    }
    if (ob->role == NK_RAFT_LEADER && st.role != NK_RAFT_LEADER) {
        nk_sim_trace(w->s, "raft.stepdown n%u term %" PRIu64 " -> %s term %" PRIu64, node, ob->term,
                     nk_raft_role_name(st.role), st.term);
    }
    ob->role = st.role;
    ob->term = st.term;
    if (st.commit > ob->seen_commit) {
        uint64_t from = ob->seen_commit + 1;
        if (from < st.first_index) {
            from = st.first_index; /* below: inside a snapshot, checked by chain */
        }
        for (uint64_t i = from; i <= st.commit && w->res->verdict == NK_SIM_PASS; i++) {
            uint64_t t = 0;
            if (nk_raft_term_at(r, i, &t) == NK_OK) {
                note_commit(w, node, i, t);
            }
        }
        bool first = st.role == NK_RAFT_LEADER && ob->first_commit_term != st.term;
        if (first) {
            ob->first_commit_term = st.term;
        }
        if (first) {
            on_first_commit(w, node);
        }
        uint64_t ct = 0;
        if (st.role == NK_RAFT_LEADER && nk_raft_term_at(r, st.commit, &ct) == NK_OK &&
            ct != st.term) {
            /* only the broken rule (bug=commit-prev-term) gets here */
            w->st_old_term_commits++;
            nk_sim_trace(w->s,
                         "raft.old-term-commit n%u term %" PRIu64 " commit %" PRIu64
                         " (entry term %" PRIu64 ")",
                         node, st.term, st.commit, ct);
        }
        ob->seen_commit = st.commit;
    }
}

void nk_sraft_world_persisted(nk_sraft_world *w, uint32_t node, const nk_raft_entry *e,
                              uint64_t prev_term)
{
    char why[256];
    if (!nk_rcheck_persisted(w->chk, node, e, prev_term, why, sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
    }
}

static void note_applied(nk_sraft_world *w, uint32_t node, uint64_t index, uint64_t term,
                         uint64_t ehash, uint64_t chain, uint64_t shash, const char *how)
{
    char why[256];
    if (!nk_rcheck_applied(w->chk, node, index, term, ehash, chain, shash, how, why,
                           sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
    }
}

void nk_sraft_world_applied(nk_sraft_world *w, uint32_t node, uint64_t index, uint64_t term,
                            uint64_t entry_hash, uint64_t chain, uint64_t state_hash)
{
    note_applied(w, node, index, term, entry_hash, chain, state_hash, "applied");
}

void nk_sraft_world_installed(nk_sraft_world *w, uint32_t node, uint64_t index, uint64_t term,
                              uint64_t chain, uint64_t state_hash)
{
    w->st_installs++;
    nk_sim_trace(w->s, "raft.install n%u snapshot %" PRIu64 "/%" PRIu64, node, index, term);
    note_applied(w, node, index, term, 0, chain, state_hash, "installed a snapshot at");
}

void nk_sraft_world_synced(nk_sraft_world *w, uint32_t node, uint64_t seg, uint64_t offset,
                           const nk_raft_hard_state *hs)
{
    node_obs *ob = &w->obs[node];
    if (ob->promised) {
        if (hs->term < ob->p_hs.term) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "n%u made term %" PRIu64 " durable after term %" PRIu64, node, hs->term,
                        ob->p_hs.term);
            return;
        }
        if (hs->term == ob->p_hs.term && ob->p_hs.vote != 0 && hs->vote != ob->p_hs.vote) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "n%u changed its durable vote in term %" PRIu64 " from n%" PRIu64
                        " to n%" PRIu64,
                        node, hs->term, ob->p_hs.vote, hs->vote);
            return;
        }
    }
    ob->promised = true;
    ob->p_seg = seg;
    ob->p_off = offset;
    ob->p_hs = *hs;
}

void nk_sraft_world_recovered(nk_sraft_world *w, uint32_t node, uint64_t seg, uint64_t valid_offset,
                              const nk_raft_hard_state *hs, uint64_t snap_index,
                              uint64_t last_index)
{
    node_obs *ob = &w->obs[node];
    w->st_recoveries++;
    nk_sim_trace(w->s,
                 "raft.recover n%u segment %" PRIu64 " valid %" PRIu64 " term %" PRIu64
                 " vote %" PRIu64 " commit %" PRIu64 " snapshot %" PRIu64 " last %" PRIu64,
                 node, seg, valid_offset, hs->term, hs->vote, hs->commit, snap_index, last_index);
    if (ob->promised) {
        if (seg < ob->p_seg || (seg == ob->p_seg && valid_offset < ob->p_off)) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "durability: n%u synced segment %" PRIu64 " up to byte %" PRIu64
                        " but recovered segment %" PRIu64 " with %" PRIu64 " valid bytes",
                        node, ob->p_seg, ob->p_off, seg, valid_offset);
            return;
        }
        if (hs->term < ob->p_hs.term ||
            (hs->term == ob->p_hs.term && ob->p_hs.vote != 0 && hs->vote != ob->p_hs.vote)) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "durability: n%u synced term %" PRIu64 " vote %" PRIu64
                        " but recovered term %" PRIu64 " vote %" PRIu64,
                        node, ob->p_hs.term, ob->p_hs.vote, hs->term, hs->vote);
            return;
        }
    }
    ob->promised = true;
    ob->p_seg = seg;
    ob->p_off = valid_offset;
    ob->p_hs = *hs;
    ob->seen_commit = 0;
    ob->role = NK_RAFT_FOLLOWER;
}

/* -------------------------------------------------------------- events --- */

static void client_next(nk_sraft_world *w, client *c);
static void client_start(nk_sraft_world *w, client *c);
static void client_send(nk_sraft_world *w, client *c);
static void nemesis(nk_sraft_world *w);
static void conf_step(nk_sraft_world *w);
static void transfer_step(nk_sraft_world *w);

static uint64_t client_latency(nk_sraft_world *w)
{
    return nk_rand_between(&w->crand, 200, 2000) * NK_NSEC_PER_USEC;
}

static void client_retry_later(nk_sraft_world *w, client *c, uint64_t delay)
{
    wev *e = ev_new(w, EV_RETRY);
    if (e == NULL) {
        return;
    }
    e->client = c->id;
    e->seq = c->rq.seq;
    e->attempt = c->rq.attempt;
    at(w, nk_sim_now(w->s) + delay, "raft.client.retry", e);
}

static void client_reply(nk_sraft_world *w, const wev *e)
{
    client *c = &w->clients[e->rq.client];
    if (!c->busy || e->rq.seq != c->rq.seq) {
        return; /* a late answer to an operation already finished or abandoned */
    }
    if (e->status == NK_SRAFT_OK) {
        /* An OK from any attempt is the truth about this operation. */
        hist_op *h = &w->hist[c->hist];
        h->done = true;
        h->res = nk_sim_now(w->s);
        if (h->op == NK_SRAFT_OP_READ) {
            h->value = e->value;
            w->st_reads++;
        } else {
            w->st_writes++;
        }
        w->st_done++;
        c->busy = false;
        client_next(w, c);
        return;
    }
    if (e->rq.attempt != c->rq.attempt) {
        return; /* a stale refusal: the current attempt is elsewhere */
    }
    c->rq.attempt++; /* this attempt is over; its timer must not fire again */
    if (e->status == NK_SRAFT_REDIRECT && e->lead != 0 && e->lead <= w->nodes &&
        e->lead != e->node) {
        c->target = (uint32_t)e->lead;
        client_retry_later(w, c, nk_rand_between(&w->crand, 1, 5) * NK_NSEC_PER_MSEC);
    } else {
        c->target = 0;
        client_retry_later(w, c, nk_rand_between(&w->crand, 10, 40) * NK_NSEC_PER_MSEC);
    }
}

static void fire(nk_sim *s, void *arg)
{
    wev *e = arg;
    nk_sraft_world *w = e->w;
    (void)s;
    if (w->res->verdict == NK_SIM_PASS) {
        switch (e->kind) {
        case EV_CLIENT_NEXT:
            w->clients[e->client].waiting = false;
            client_start(w, &w->clients[e->client]);
            break;
        case EV_REQUEST: {
            nk_sraft_node *a = app_of(w, e->node);
            if (a != NULL) {
                nk_sraft_node_request(a, &e->rq);
            }
            break;
        }
        case EV_REPLY:
            client_reply(w, e);
            break;
        case EV_ATTEMPT_TIMEOUT:
        case EV_RETRY: {
            client *c = &w->clients[e->client];
            if (c->busy && c->rq.seq == e->seq && c->rq.attempt == e->attempt) {
                if (e->kind == EV_ATTEMPT_TIMEOUT) {
                    c->target = 0; /* try someone else */
                    c->rq.attempt++;
                }
                client_send(w, c);
            }
            break;
        }
        case EV_NEMESIS:
            nemesis(w);
            break;
        case EV_NEMESIS_CRASH:
            if (chaos_on(w) && nk_sim_node_up(w->s, e->node)) {
                nk_sim_trace(w->s, "raft.nemesis crash n%u", e->node);
                nk_sim_node_crash(w->s, e->node);
            }
            break;
        case EV_NEMESIS_KILL:
            if (chaos_on(w) && nk_sim_node_up(w->s, e->node)) {
                nk_sim_trace(w->s, "raft.nemesis kill n%u", e->node);
                nk_sim_node_kill(w->s, e->node);
            }
            break;
        case EV_RESTART:
            if (!nk_sim_node_up(w->s, e->node)) {
                nk_sim_node_start(w->s, e->node);
            }
            break;
        case EV_HEAL_NODE:
            for (uint32_t n = 1; n <= w->nodes; n++) {
                if (n != e->node) {
                    nk_sim_net_heal(w->s, e->node, n);
                }
            }
            break;
        case EV_CONF:
            conf_step(w);
            break;
        case EV_TRANSFER:
            transfer_step(w);
            break;
        }
    }
    ev_free(w, e);
}

static void at(nk_sraft_world *w, uint64_t t, const char *label, wev *e)
{
    nk_sim_at(w->s, t, label, fire, e);
}

static void at_after(nk_sraft_world *w, uint64_t delay, const char *label, int kind, uint32_t node)
{
    wev *e = ev_new(w, kind);
    if (e != NULL) {
        e->node = node;
        at(w, nk_sim_now(w->s) + delay, label, e);
    }
}

void nk_sraft_world_reply(nk_sraft_world *w, uint32_t node, const nk_sraft_req *rq, int status,
                          uint64_t value, uint64_t lead)
{
    wev *e = ev_new(w, EV_REPLY);
    if (e == NULL) {
        return;
    }
    e->node = node;
    e->rq = *rq;
    e->status = status;
    e->value = value;
    e->lead = lead;
    at(w, nk_sim_now(w->s) + client_latency(w), "raft.client.reply", e);
}

/* ------------------------------------------------------------- clients --- */

static void client_send(nk_sraft_world *w, client *c)
{
    uint64_t now = nk_sim_now(w->s);
    if (now >= c->deadline) {
        /* Give up. A write may or may not have happened: it stays in the
         * history with an open end. A read had no effect: forget it. */
        hist_op *h = &w->hist[c->hist];
        h->gave_up = true;
        w->st_gave_up++;
        c->busy = false;
        client_next(w, c);
        return;
    }
    if (c->target == 0) {
        c->target = 1 + (uint32_t)nk_rand_below(&w->crand, w->nodes);
    }
    wev *e = ev_new(w, EV_REQUEST);
    if (e == NULL) {
        return;
    }
    e->node = c->target;
    e->rq = c->rq;
    at(w, now + client_latency(w), "raft.client.request", e);
    wev *t = ev_new(w, EV_ATTEMPT_TIMEOUT);
    if (t == NULL) {
        return;
    }
    t->client = c->id;
    t->seq = c->rq.seq;
    t->attempt = c->rq.attempt;
    at(w, now + 300 * NK_NSEC_PER_MSEC, "raft.client.timeout", t);
}

static void client_start(nk_sraft_world *w, client *c)
{
    if (!nk_grow_zeroed((void **)&w->hist, &w->cap_hist, w->n_hist + 1, sizeof(*w->hist))) {
        oom(w);
        return;
    }
    c->rq.seq++;
    c->rq.attempt = 1;
    c->rq.client = c->id;
    c->rq.key = (uint32_t)nk_rand_below(&w->crand, w->o.keys);
    c->rq.op = nk_rand_chance(&w->crand, 1, 2) ? NK_SRAFT_OP_WRITE : NK_SRAFT_OP_READ;
    /* Unique per (client, seq) and never 0, the initial value. */
    c->rq.value = c->rq.op == NK_SRAFT_OP_WRITE ? ((uint64_t)(c->id + 1) << 40) | c->rq.seq : 0;
    c->busy = true;
    c->deadline = nk_sim_now(w->s) + w->op_timeout_ns;
    c->hist = w->n_hist++;
    hist_op *h = &w->hist[c->hist];
    memset(h, 0, sizeof(*h));
    h->client = c->id;
    h->key = c->rq.key;
    h->op = c->rq.op;
    h->value = c->rq.value;
    h->inv = nk_sim_now(w->s);
    h->res = UINT64_MAX;
    client_send(w, c);
}

static void client_next(nk_sraft_world *w, client *c)
{
    if (c->busy || c->waiting) {
        return;
    }
    /* think time, then the next operation */
    wev *e = ev_new(w, EV_CLIENT_NEXT);
    if (e == NULL) {
        return;
    }
    e->client = c->id;
    c->waiting = true;
    at(w, nk_sim_now(w->s) + nk_rand_between(&w->crand, 1, 20) * NK_NSEC_PER_MSEC,
       "raft.client.next", e);
}

/* ------------------------------------------------------------- nemesis --- */

static void nemesis_schedule(nk_sraft_world *w, uint64_t delay)
{
    at_after(w, delay, "raft.nemesis", EV_NEMESIS, 0);
}

static void nemesis(nk_sraft_world *w)
{
    if (!chaos_on(w)) {
        return;
    }
    if (w->ep_phase != EP_NONE) {
        if (nk_sim_now(w->s) < w->ep_deadline) {
            nemesis_schedule(w, 50 * NK_NSEC_PER_MSEC);
            return;
        }
        nk_sim_trace(w->s, "raft.figure8 episode abandoned");
        at_after(w, 0, "raft.nemesis.restart", EV_RESTART, w->ep_x);
        if (w->ep_y != 0) {
            at_after(w, 0, "raft.nemesis.restart", EV_RESTART, w->ep_y);
        }
        w->ep_phase = EP_NONE;
    }
    uint32_t lead = find_leader(w, NULL);
    if (lead == 0) {
        nemesis_schedule(w, 50 * NK_NSEC_PER_MSEC);
        return;
    }
    w->st_nemesis++;
    uint64_t down = nk_rand_between(&w->nrand, 10, 800) * NK_NSEC_PER_MSEC;
    if (nk_rand_below(&w->nrand, 100) < w->o.figure8) {
        /* Cut X's outgoing traffic to all but a minority-minus-one of its
         * peers, let clients grow its tail, then crash it. */
        uint32_t keep = (w->o.voters - 1) / 2 - 1 + (w->o.voters < 3);
        uint32_t kept = 0;
        uint32_t start = 1 + (uint32_t)nk_rand_below(&w->nrand, w->nodes);
        for (uint32_t k = 0; k < w->nodes; k++) {
            uint32_t n = 1 + (start + k - 1) % w->nodes;
            if (n == lead) {
                continue;
            }
            if (kept < keep) {
                kept++;
                continue;
            }
            nk_sim_net_partition(w->s, lead, n, true);
        }
        uint64_t after = nk_rand_between(&w->nrand, 20, 120) * NK_NSEC_PER_MSEC;
        nk_sim_trace(
            w->s, "raft.figure8 episode: leader n%u cut (keeps %u peers), dies in %" PRIu64 " ms",
            lead, keep, after / NK_NSEC_PER_MSEC);
        at_after(w, after, "raft.nemesis.crash", EV_NEMESIS_CRASH, lead);
        at_after(w, after + 1, "raft.nemesis.heal", EV_HEAL_NODE, lead);
        /* safety net: X comes back even if no new leader shows up */
        at_after(w, after + 1500 * NK_NSEC_PER_MSEC, "raft.nemesis.restart", EV_RESTART, lead);
        w->ep_phase = EP_WAIT_Y;
        w->ep_x = lead;
        w->ep_y = 0;
        w->ep_deadline = nk_sim_now(w->s) + after + 2 * NK_NSEC_PER_SEC;
        nemesis_schedule(w, 50 * NK_NSEC_PER_MSEC);
        return;
    }
    uint64_t r = nk_rand_below(&w->nrand, 100);
    if (r < 35) {
        nk_sim_trace(w->s, "raft.nemesis crash leader n%u", lead);
        nk_sim_node_crash(w->s, lead);
        at_after(w, down, "raft.nemesis.restart", EV_RESTART, lead);
    } else if (r < 45) {
        nk_sim_trace(w->s, "raft.nemesis kill leader n%u", lead);
        nk_sim_node_kill(w->s, lead);
        at_after(w, down, "raft.nemesis.restart", EV_RESTART, lead);
    } else if (r < 65) {
        nk_sim_trace(w->s, "raft.nemesis isolate leader n%u", lead);
        for (uint32_t n = 1; n <= w->nodes; n++) {
            if (n != lead) {
                nk_sim_net_partition(w->s, lead, n, false);
            }
        }
        at_after(w, nk_rand_between(&w->nrand, 100, 1500) * NK_NSEC_PER_MSEC, "raft.nemesis.heal",
                 EV_HEAL_NODE, lead);
    } else {
        /* Cut the leader's outgoing traffic to all but one or two peers:
         * new entries reach a minority only; then the leader dies. A new
         * leader without those entries overwrites them, the old one comes
         * back... the figure 3.7 dance. */
        uint32_t keep = 1 + (uint32_t)nk_rand_below(&w->nrand, 2);
        uint32_t kept = 0;
        uint32_t start = 1 + (uint32_t)nk_rand_below(&w->nrand, w->nodes);
        for (uint32_t k = 0; k < w->nodes; k++) {
            uint32_t n = 1 + (start + k - 1) % w->nodes;
            if (n == lead) {
                continue;
            }
            if (kept < keep) {
                kept++;
                continue;
            }
            nk_sim_net_partition(w->s, lead, n, true);
        }
        nk_sim_trace(w->s, "raft.nemesis one-way cut of leader n%u (keeps %u peers)", lead, keep);
        uint64_t crash_after = nk_rand_between(&w->nrand, 20, 300) * NK_NSEC_PER_MSEC;
        at_after(w, crash_after, "raft.nemesis.crash", EV_NEMESIS_CRASH, lead);
        at_after(w, crash_after + 1, "raft.nemesis.heal", EV_HEAL_NODE, lead);
        at_after(w, crash_after + down, "raft.nemesis.restart", EV_RESTART, lead);
    }
    nemesis_schedule(w, nk_rand_between(&w->nrand, w->o.nemesis_min_ns, w->o.nemesis_max_ns));
}

/* One membership change on the leader: voters stay within [V, V+1] so the
 * group keeps its fault tolerance, yet every node cycles through learner,
 * voter and removed over a run. */
static void conf_step(nk_sraft_world *w)
{
    if (!chaos_on(w)) {
        return;
    }
    nk_raft_status st;
    uint32_t lead = find_leader(w, &st);
    /* After a success wait a while; otherwise (no leader, or the leader
     * cannot take a change yet) try again soon. */
    bool ok = false;
    if (lead == 0) {
        at_after(w, nk_rand_between(&w->nrand, 30, 100) * NK_NSEC_PER_MSEC, "raft.conf", EV_CONF,
                 0);
        return;
    }
    uint64_t voters[NK_RAFT_MAX_MEMBERS], learners[NK_RAFT_MAX_MEMBERS], outs[NK_SRAFT_MAX_NODES];
    uint32_t nv = 0, nl = 0, no = 0;
    for (uint32_t k = 0; k < st.conf.n; k++) {
        if (st.conf.m[k].role == NK_RAFT_VOTER) {
            voters[nv++] = st.conf.m[k].id;
        } else {
            learners[nl++] = st.conf.m[k].id;
        }
    }
    for (uint32_t n = 1; n <= w->nodes; n++) {
        if (nk_raft_conf_role(&st.conf, n) == 0) {
            outs[no++] = n;
        }
    }
    uint8_t type = 0;
    uint64_t node = 0;
    if (nv > w->o.voters) {
        type = NK_RAFT_CC_REMOVE;
        node = voters[nk_rand_below(&w->nrand, nv)];
    } else if (nv < w->o.voters && nl > 0) {
        type = NK_RAFT_CC_PROMOTE;
        node = learners[nk_rand_below(&w->nrand, nl)];
    } else {
        uint64_t r = nk_rand_below(&w->nrand, 3);
        if (r == 0 && nl > 0) {
            type = NK_RAFT_CC_PROMOTE;
            node = learners[nk_rand_below(&w->nrand, nl)];
        } else if (r == 1 && no > 0) {
            type = NK_RAFT_CC_ADD_LEARNER;
            node = outs[nk_rand_below(&w->nrand, no)];
        } else if (nl > 0) {
            type = NK_RAFT_CC_REMOVE;
            node = learners[nk_rand_below(&w->nrand, nl)];
        } else if (no > 0) {
            type = NK_RAFT_CC_ADD_LEARNER;
            node = outs[nk_rand_below(&w->nrand, no)];
        }
    }
    if (type != 0) {
        int rc = nk_sraft_node_conf_change(app_of(w, lead), type, node);
        static const char *const names[] = {"none", "add-voter", "add-learner", "remove",
                                            "promote"};
        nk_sim_trace(w->s, "raft.conf leader n%u %s n%" PRIu64 ": %s", lead, names[type], node,
                     nk_errname(rc));
        ok = rc == NK_OK;
        w->st_conf += ok;
    }
    at_after(w,
             (ok ? nk_rand_between(&w->nrand, 200, 1500) : nk_rand_between(&w->nrand, 30, 100)) *
                 NK_NSEC_PER_MSEC,
             "raft.conf", EV_CONF, 0);
}

static void transfer_step(nk_sraft_world *w)
{
    if (!chaos_on(w)) {
        return;
    }
    nk_raft_status st;
    uint32_t lead = find_leader(w, &st);
    if (lead == 0) {
        at_after(w, nk_rand_between(&w->nrand, 30, 100) * NK_NSEC_PER_MSEC, "raft.transfer",
                 EV_TRANSFER, 0);
        return;
    }
    at_after(w, nk_rand_between(&w->nrand, 300, 2000) * NK_NSEC_PER_MSEC, "raft.transfer",
             EV_TRANSFER, 0);
    uint64_t cand[NK_RAFT_MAX_MEMBERS];
    uint32_t n = 0;
    for (uint32_t k = 0; k < st.conf.n; k++) {
        if (st.conf.m[k].role == NK_RAFT_VOTER && st.conf.m[k].id != lead) {
            cand[n++] = st.conf.m[k].id;
        }
    }
    if (n == 0) {
        return;
    }
    uint64_t to = cand[nk_rand_below(&w->nrand, n)];
    int rc = nk_sraft_node_transfer(app_of(w, lead), to);
    nk_sim_trace(w->s, "raft.transfer n%u -> n%" PRIu64 ": %s", lead, to, nk_errname(rc));
    if (rc == NK_OK) {
        w->st_transfers++;
    }
}

/* Called once the options are final (first node_cfg of a real run). */
static void world_begin(nk_sraft_world *w)
{
    w->begun = true;
    nk_sim_rand_stream(w->s, "raft.clients", &w->crand);
    nk_sim_rand_stream(w->s, "raft.nemesis", &w->nrand);
    for (uint32_t c = 0; c < w->o.clients; c++) {
        w->clients[c].id = c;
        wev *e = ev_new(w, EV_CLIENT_NEXT);
        if (e == NULL) {
            return;
        }
        e->client = c;
        w->clients[c].waiting = true;
        at(w, 100 * NK_NSEC_PER_MSEC + nk_rand_below(&w->crand, 50) * NK_NSEC_PER_MSEC,
           "raft.client.next", e);
    }
    if (w->o.nemesis) {
        wev *e = ev_new(w, EV_NEMESIS);
        if (e != NULL) {
            at(w, nk_rand_between(&w->nrand, w->o.nemesis_min_ns, w->o.nemesis_max_ns),
               "raft.nemesis", e);
        }
    }
    if (w->o.conf_changes) {
        wev *e = ev_new(w, EV_CONF);
        if (e != NULL) {
            at(w, nk_rand_between(&w->nrand, 500, 1500) * NK_NSEC_PER_MSEC, "raft.conf", e);
        }
    }
    if (w->o.transfers) {
        wev *e = ev_new(w, EV_TRANSFER);
        if (e != NULL) {
            at(w, nk_rand_between(&w->nrand, 500, 2000) * NK_NSEC_PER_MSEC, "raft.transfer", e);
        }
    }
}

/* ------------------------------------------------------ linearizability --- */

/* The client history, per key, through the shared checker (sim/check/lin.h).
 * Reads that gave up had no effect; writes that gave up stay open. */
static void check_linearizable(nk_sraft_world *w)
{
    nk_lin_op *ops = malloc((w->n_hist + 1) * sizeof(*ops));
    if (ops == NULL) {
        oom(w);
        return;
    }
    for (size_t i = 0; i < w->n_hist; i++) {
        const hist_op *h = &w->hist[i];
        ops[i] = (nk_lin_op){.key = h->key,
                             .client = h->client,
                             .write = h->op == NK_SRAFT_OP_WRITE,
                             .done = h->done,
                             .value = h->value,
                             .inv = h->inv,
                             .res = h->res};
    }
    char why[400];
    if (!nk_lin_check_registers(ops, w->n_hist, w->o.keys, why, sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
    }
    free(ops);
}

/* -------------------------------------------------------------- checks --- */

static void check_mark(nk_sraft_world *w)
{
    w->calm = true;
    w->marked = true;
    w->mark_ns = nk_sim_now(w->s);
    w->commit_at_mark = w->max_commit;
    w->done_at_mark = w->st_done;
    nk_sim_trace(w->s, "raft.mark commit %" PRIu64 " done %" PRIu64, w->max_commit, w->st_done);
}

/* Every live node's raft state, into the trace (liveness failures). */
static void dump_nodes(nk_sraft_world *w)
{
    for (uint32_t n = 1; n <= w->nodes; n++) {
        const nk_raft *r = raft_of(w, n);
        if (r == NULL) {
            nk_sim_trace(w->s, "raft.state n%u down", n);
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        char conf[128];
        size_t used = 0;
        conf[0] = '\0';
        for (uint32_t k = 0; k < st.conf.n && used < sizeof(conf) - 8; k++) {
            used +=
                (size_t)snprintf(conf + used, sizeof(conf) - used, "%s%" PRIu64 "%s", k ? "," : "",
                                 st.conf.m[k].id, st.conf.m[k].role == NK_RAFT_VOTER ? "" : "L");
        }
        nk_sim_trace(w->s,
                     "raft.state n%u %s term %" PRIu64 " vote %" PRIu64 " lead %" PRIu64
                     " commit %" PRIu64 " applied %" PRIu64 " last %" PRIu64 " conf [%s]",
                     n, nk_raft_role_name(st.role), st.term, st.vote, st.lead, st.commit,
                     st.applied, st.last_index, conf);
    }
}

static void check_progress(nk_sraft_world *w, uint64_t min)
{
    dump_nodes(w);
    nk_sim *s = w->s;
    uint64_t now = nk_sim_now(s);
    nk_raft_status st;
    uint32_t lead = find_leader(w, &st);
    if (lead == 0) {
        nk_sim_fail(s, w->res, NK_SIM_LIVENESS, "progress: no leader %" PRIu64 " ms after the mark",
                    (now - w->mark_ns) / NK_NSEC_PER_MSEC);
        return;
    }
    /* Everything committed before the mark, or more than `within` ago,
     * must have been applied by every live member. */
    uint64_t want = w->commit_at_mark;
    for (size_t k = 0; k < w->n_samples; k++) {
        if (w->samples[k].at + w->o.within_ns <= now && w->samples[k].commit > want) {
            want = w->samples[k].commit;
        }
    }
    for (uint32_t k = 0; k < st.conf.n; k++) {
        uint32_t n = (uint32_t)st.conf.m[k].id;
        nk_sraft_node *a = app_of(w, n);
        if (a == NULL) {
            continue; /* down: the scenario did not restart it */
        }
        if (nk_sraft_node_applied(a) < want) {
            nk_sim_fail(s, w->res, NK_SIM_LIVENESS,
                        "progress: member n%u applied %" PRIu64 " but index %" PRIu64
                        " was committed before the mark or over %" PRIu64 " ms ago (leader n%u)",
                        n, nk_sraft_node_applied(a), want, w->o.within_ns / NK_NSEC_PER_MSEC, lead);
            return;
        }
    }
    for (size_t i = 0; i < w->n_hist; i++) {
        hist_op *h = &w->hist[i];
        if (h->inv < w->mark_ns) {
            continue;
        }
        if (h->gave_up || (!h->done && h->inv + w->o.within_ns <= now)) {
            nk_sim_fail(s, w->res, NK_SIM_LIVENESS,
                        "progress: client %u's %s of key %u invoked %" PRIu64
                        " ms after the mark did not complete within %" PRIu64 " ms",
                        h->client, h->op == NK_SRAFT_OP_WRITE ? "write" : "read", h->key,
                        (h->inv - w->mark_ns) / NK_NSEC_PER_MSEC,
                        w->o.within_ns / NK_NSEC_PER_MSEC);
            return;
        }
    }
    uint64_t done = w->st_done - w->done_at_mark;
    if (done < min) {
        nk_sim_fail(s, w->res, NK_SIM_LIVENESS,
                    "progress: %" PRIu64
                    " client operations completed since the mark, wanted %" PRIu64,
                    done, min);
        return;
    }
    nk_sim_trace(s, "raft.progress leader n%u term %" PRIu64 " applied>=%" PRIu64 " done %" PRIu64,
                 lead, st.term, want, done);
}

static int world_check(void *wp, const char *name, const char *args)
{
    nk_sraft_world *w = wp;
    if (strcmp(name, "mark") == 0) {
        check_mark(w);
        return NK_OK;
    }
    if (strcmp(name, "calm") == 0) {
        w->calm = true;
        return NK_OK;
    }
    if (strcmp(name, "progress") == 0) {
        uint64_t min = 1;
        if (args != NULL && strncmp(args, "min=", 4) == 0) {
            min = strtoull(args + 4, NULL, 10);
        }
        if (!w->marked) {
            check_mark(w);
        }
        check_progress(w, min);
        return NK_OK;
    }
    if (strcmp(name, "linearizable") == 0) {
        check_linearizable(w);
        return NK_OK;
    }
    return NK_EINVAL;
}

static void world_finish(void *wp)
{
    nk_sraft_world *w = wp;
    check_linearizable(w);
    uint64_t ambiguous = 0;
    for (size_t i = 0; i < w->n_hist; i++) {
        ambiguous += w->hist[i].op == NK_SRAFT_OP_WRITE && !w->hist[i].done;
    }
    nk_sim_trace(w->s,
                 "raft.finish elections=%" PRIu64 " max_term=%" PRIu64 " committed=%" PRIu64
                 " writes=%" PRIu64 " reads=%" PRIu64 " ambiguous_writes=%" PRIu64
                 " gave_up=%" PRIu64 " installs=%" PRIu64 " recoveries=%" PRIu64 " nemesis=%" PRIu64
                 " conf_changes=%" PRIu64 " transfers=%" PRIu64,
                 w->st_elections, w->st_max_term, w->max_commit, w->st_writes, w->st_reads,
                 ambiguous, w->st_gave_up, w->st_installs, w->st_recoveries, w->st_nemesis,
                 w->st_conf, w->st_transfers);
    if (getenv("NOKV_SIM_RAFT_STATS") != NULL) {
        /* for sweeps that report the fault mix (see docs/simulation.md) */
        fprintf(stderr,
                "RAFTSTATS elections=%" PRIu64 " committed=%" PRIu64 " writes=%" PRIu64
                " reads=%" PRIu64 " ambiguous=%" PRIu64 " installs=%" PRIu64 " recoveries=%" PRIu64
                " nemesis=%" PRIu64 " conf=%" PRIu64 " transfers=%" PRIu64
                " old_term_commits=%" PRIu64 " figure8=%" PRIu64 " chaos_commits=%" PRIu64 "\n",
                w->st_elections, w->max_commit, w->st_writes, w->st_reads, ambiguous,
                w->st_installs, w->st_recoveries, w->st_nemesis, w->st_conf, w->st_transfers,
                w->st_old_term_commits, w->st_episodes, w->st_chaos_commit);
    }
}

/* -------------------------------------------------------------- options --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes < 1 || nodes > NK_SRAFT_MAX_NODES) {
        return NULL;
    }
    nk_sraft_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->res = res;
    w->nodes = nodes;
    w->o.voters = nodes < 3 ? nodes : 3;
    w->o.learners = 0;
    w->o.tick_ns = 10 * NK_NSEC_PER_MSEC;
    w->o.election_ticks = 10;
    w->o.heartbeat_ticks = 2;
    w->o.compact_every = 40;
    w->o.clients = 3;
    w->o.keys = 3;
    w->o.conf_changes = false;
    w->o.transfers = false;
    w->o.nemesis = false;
    w->o.nemesis_min_ns = 300 * NK_NSEC_PER_MSEC;
    w->o.nemesis_max_ns = 1500 * NK_NSEC_PER_MSEC;
    w->o.within_ns = 3 * NK_NSEC_PER_SEC;
    w->o.fresh_leader_crash = 10;
    w->o.commit_crash = 10;
    w->o.figure8 = 40;
    w->op_timeout_ns = 2 * NK_NSEC_PER_SEC;
    for (uint32_t i = 1; i <= nodes; i++) {
        w->cfgs[i].w = w;
        w->cfgs[i].node = i;
    }
    w->chk = nk_rcheck_new();
    if (w->chk == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

static int parse_u32_range(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    if (v[0] < '0' || v[0] > '9') {
        return NK_EINVAL;
    }
    unsigned long x = strtoul(v, &end, 10);
    if (*end != '\0' || x < lo || x > hi) {
        return NK_EINVAL;
    }
    *out = (uint32_t)x;
    return NK_OK;
}

static int parse_onoff(const char *v, bool *out)
{
    if (strcmp(v, "on") == 0) {
        *out = true;
        return NK_OK;
    }
    if (strcmp(v, "off") == 0) {
        *out = false;
        return NK_OK;
    }
    return NK_EINVAL;
}

static int world_option(void *wp, const char *key, const char *value)
{
    nk_sraft_world *w = wp;
    nk_sraft_opts *o = &w->o;
    if (strcmp(key, "voters") == 0) {
        uint32_t v;
        if (parse_u32_range(value, 1, w->nodes, &v) != NK_OK || v + o->learners > w->nodes) {
            return NK_EINVAL;
        }
        o->voters = v;
        return NK_OK;
    }
    if (strcmp(key, "learners") == 0) {
        uint32_t v;
        if (parse_u32_range(value, 0, w->nodes, &v) != NK_OK || o->voters + v > w->nodes) {
            return NK_EINVAL;
        }
        o->learners = v;
        return NK_OK;
    }
    if (strcmp(key, "tick") == 0) {
        uint64_t ns;
        if (nk_sim_parse_duration(value, &ns) != NK_OK || ns < NK_NSEC_PER_MSEC) {
            return NK_EINVAL;
        }
        o->tick_ns = ns;
        return NK_OK;
    }
    if (strcmp(key, "election-ticks") == 0) {
        return parse_u32_range(value, 3, 1000, &o->election_ticks);
    }
    if (strcmp(key, "heartbeat-ticks") == 0) {
        return parse_u32_range(value, 1, 999, &o->heartbeat_ticks);
    }
    if (strcmp(key, "compact-every") == 0) {
        return parse_u32_range(value, 0, 1000000, &o->compact_every);
    }
    if (strcmp(key, "clients") == 0) {
        return parse_u32_range(value, 0, NK_SRAFT_MAX_CLIENTS, &o->clients);
    }
    if (strcmp(key, "keys") == 0) {
        return parse_u32_range(value, 1, NK_SRAFT_MAX_KEYS, &o->keys);
    }
    if (strcmp(key, "conf-changes") == 0) {
        return parse_onoff(value, &o->conf_changes);
    }
    if (strcmp(key, "transfers") == 0) {
        return parse_onoff(value, &o->transfers);
    }
    if (strcmp(key, "nemesis") == 0) {
        if (strcmp(value, "leader") == 0) {
            o->nemesis = true;
            return NK_OK;
        }
        return parse_onoff(value, &o->nemesis);
    }
    if (strcmp(key, "nemesis-gap") == 0) {
        const char *dots = strstr(value, "..");
        char left[32];
        if (dots == NULL || (size_t)(dots - value) >= sizeof(left)) {
            return NK_EINVAL;
        }
        memcpy(left, value, (size_t)(dots - value));
        left[dots - value] = '\0';
        uint64_t lo, hi;
        if (nk_sim_parse_duration(left, &lo) != NK_OK ||
            nk_sim_parse_duration(dots + 2, &hi) != NK_OK || lo == 0 || hi < lo) {
            return NK_EINVAL;
        }
        o->nemesis_min_ns = lo;
        o->nemesis_max_ns = hi;
        return NK_OK;
    }
    if (strcmp(key, "fresh-leader-crash") == 0) {
        return parse_u32_range(value, 0, 100, &o->fresh_leader_crash);
    }
    if (strcmp(key, "figure8") == 0) {
        return parse_u32_range(value, 0, 100, &o->figure8);
    }
    if (strcmp(key, "commit-crash") == 0) {
        return parse_u32_range(value, 0, 100, &o->commit_crash);
    }
    if (strcmp(key, "batch") == 0) {
        uint32_t v;
        if (parse_u32_range(value, 0, 1u << 20, &v) != NK_OK) {
            return NK_EINVAL;
        }
        o->batch_bytes = v;
        return NK_OK;
    }
    if (strcmp(key, "chaos-until") == 0) {
        return nk_sim_parse_duration(value, &w->chaos_until);
    }
    if (strcmp(key, "within") == 0) {
        return nk_sim_parse_duration(value, &o->within_ns);
    }
    if (strcmp(key, "op-timeout") == 0) {
        return nk_sim_parse_duration(value, &w->op_timeout_ns);
    }
    if (strcmp(key, "bug") == 0) {
        if (strcmp(value, "commit-prev-term") == 0) {
            o->bug_commit_prev_term = true;
            return NK_OK;
        }
        if (strcmp(value, "none") == 0) {
            o->bug_commit_prev_term = false;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static void *world_node_cfg(void *wp, uint32_t node)
{
    nk_sraft_world *w = wp;
    if (node > w->nodes) {
        return NULL;
    }
    if (!w->begun && w->s != NULL) {
        if (w->o.heartbeat_ticks >= w->o.election_ticks) {
            w->o.heartbeat_ticks = w->o.election_ticks - 1;
        }
        world_begin(w);
    }
    return &w->cfgs[node];
}

static void world_free(void *wp)
{
    nk_sraft_world *w = wp;
    while (w->events != NULL) {
        ev_free(w, w->events);
    }
    nk_rcheck_free(w->chk);
    free(w->samples);
    free(w->hist);
    free(w);
}

const nk_sim_workload nk_sim_workload_raft = {
    .name = "raft",
    .app = &nk_sraft_app,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
