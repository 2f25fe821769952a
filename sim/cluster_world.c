/*
 * cluster_world.c - the `cluster` workload's world: RESP clients, the
 * leader-targeted nemesis and the checkers around the store app of
 * sim/cluster_node.c (contract in sim/cluster_wl.h).
 *
 * Clients live on their own simulated node ("client", added at time 0, never
 * faulted by the scenario) and talk to the stores' RESP ports over raw
 * simulated connections, byte for byte what redis-cli would send. Each
 * client runs one operation at a time: SET k v (v unique), GET k or
 * INCR ctr. A -TRYAGAIN, an error, a broken connection or no answer within
 * the attempt timeout ends the attempt; the client backs off and retries on
 * another store, a bounded number of times. Every attempt is its own entry
 * in the history (a retried SET writes a new unique value), because RESP has
 * no request ids: an attempt that ended without an answer may still apply
 * later, so it stays in the history with an open end:
 *   - "refused: this store does not lead" and a refused connect: no effect;
 *   - any other failure of a write (SET, INCR): unknown outcome;
 *   - a failed read: no effect.
 *
 * Checks (first violation halts the run):
 *   - at most one leader per term (every store is observed after each event
 *     that touched its raft, through the store observer);
 *   - linearizability per key of the SET/GET history (sim/check/lin.h),
 *     including the final reads that `check final` makes after the clients
 *     stopped: an acknowledged write lost by the cluster shows up there;
 *   - the INCR counter: acknowledged INCRs return distinct values in real-time
 *     order, and the final value lies between the acknowledged and the
 *     attempted counts;
 *   - replicas converge (`check converge`): every store's applied index
 *     reaches the leader's commit, and a hash of a full engine scan of the
 *     user keys is the same on every store at that index;
 *   - liveness after `check mark`: a leader, operations completing within
 *     `within` (`check progress min=N`), final reads and convergence within
 *     `within`;
 *   - every store restarts from its own disk (nk_cluster_start never fails
 *     after a crash) and no store reports a broken invariant.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/util/rand.h"
#include "nokv/util/grow.h"
#include "nokv/util/testbug.h"
#include "sim/check/lin.h"
#include "sim/check/raft.h"
#include "sim/cluster_wl.h"
#include "sim/coord_app.h"
#include "sim/scenario.h"

#define MAX_CLIENTS 8
#define MAX_KEYS 8
#define MAX_TRIES 12 /* attempts of one operation before it gives up */

enum { OP_SET = 1, OP_GET, OP_INCR, OP_GETCTR };

enum wev_kind {
    EV_BEGIN = 1,
    EV_NEMESIS,
    EV_CRASH,
    EV_RESTART,
    EV_HEAL_NODE,
    EV_CONVERGE,
};

typedef struct wev {
    struct wev *prev, *next;
    nk_csim_world *w;
    int kind;
    uint32_t node;
} wev;

typedef struct incr_rec {
    uint32_t client;
    bool done;
    uint64_t value;
    uint64_t inv, res;
} incr_rec;

typedef struct client {
    nk_csim_world *w;
    uint32_t id;
    uint32_t target; /* store the next attempt goes to */
    uint64_t conn;   /* 0 = none */
    uint8_t *rbuf;   /* reply bytes not parsed yet */
    size_t rlen, rcap;
    /* the operation */
    bool busy;     /* an operation is under way (maybe between attempts) */
    bool inflight; /* an attempt waits for its reply */
    int op;
    uint32_t key;
    uint32_t tries;
    uint64_t op_start; /* global ns, first attempt */
    uint64_t seq;      /* attempts sent: makes values unique */
    size_t rec;        /* history or incr record of the attempt */
    uint64_t timer;    /* attempt timeout or backoff */
    bool backoff;      /* the timer is a backoff */
    uint64_t think;    /* think time before the next operation */
    bool paused;       /* the `ops` budget is spent until `check mark` */
    /* final reads (client 0 once every client stopped) */
    bool final_reader;
    uint32_t final_next; /* next key; keys = the counter */
} client;

struct nk_csim_world {
    nk_sim *s;
    nk_sim_result *res;
    uint32_t stores;
    nk_csim_opts o;
    nk_csim_cfg cfgs[NK_CSIM_MAX_STORES + 1];
    nk_rand crand; /* clients */
    nk_rand nrand; /* nemesis */
    wev *events;
    bool begun;

    /* options */
    uint32_t n_clients, n_keys, incr_pct;
    uint32_t get_pct;     /* GETs among the non-INCR operations (the rest SET) */
    uint64_t ops_cap;     /* operations started before the mark (0 = no cap) */
    uint64_t ops_started; /* ...counted here */
    /* coordinator=on: a production coordinator on its own node ("coord",
     * never targeted by the scenario's node faults; `check coord ...`
     * crashes, stops and restarts it) and every store points at it */
    bool coord;
    uint32_t coord_node;
    nk_sim_coord_cfg coord_cfg;
    uint64_t attempt_timeout_ns, op_timeout_ns;
    bool nemesis;
    uint64_t nemesis_min_ns, nemesis_max_ns;
    uint64_t chaos_until;
    uint64_t within_ns;

    uint32_t members; /* stores clients use and convergence compares (bits) */
    uint32_t cnode;   /* the clients' node */
    nk_rt *crt;
    client clients[MAX_CLIENTS];

    nk_lin_op *hist;
    size_t n_hist, cap_hist;
    incr_rec *incrs;
    size_t n_incr, cap_incr;
    uint64_t incr_attempts;

    nk_rcheck *chk; /* election safety (sim/check/raft.h) */

    bool calm, marked, final_phase, final_done, have_final_ctr;
    uint64_t final_ctr;
    uint64_t mark_ns, done_at_mark, final_deadline;
    uint64_t conv_deadline, conv_gen;
    bool conv_running, conv_started, converged;
    uint64_t conv_applied[NK_CSIM_MAX_STORES + 1], conv_hash[NK_CSIM_MAX_STORES + 1];
    uint64_t conv_keys[NK_CSIM_MAX_STORES + 1];
    bool conv_have[NK_CSIM_MAX_STORES + 1];
    uint64_t conv_target;

    /* liveness after the mark: the slowest operation and any that gave up */
    uint64_t slow_ns;
    uint32_t slow_client;
    int slow_op;
    uint64_t gave_up_after_mark;
    uint64_t st_done, st_sets, st_gets, st_incrs, st_ambiguous, st_refused, st_gave_up;
    uint64_t st_nemesis, st_elections, st_max_term;
};

/* ------------------------------------------------------------- helpers --- */

static void oom(nk_csim_world *w)
{
    nk_sim_fail(w->s, w->res, NK_SIM_CRASH, "cluster workload: out of memory in the checker");
}

static bool failed(const nk_csim_world *w)
{
    return w->res->verdict != NK_SIM_PASS;
}

static nk_csim_node *app_of(nk_csim_world *w, uint32_t node)
{
    return nk_sim_node_state(w->s, node);
}

static const nk_raft *raft_of(nk_csim_world *w, uint32_t node)
{
    nk_csim_node *a = app_of(w, node);
    return a ? nk_csim_node_raft(a) : NULL;
}

/* The live leader with the highest term, or 0. */
static uint32_t find_leader(nk_csim_world *w, nk_raft_status *out)
{
    uint32_t best = 0;
    uint64_t best_term = 0;
    memset(out, 0, sizeof(*out));
    for (uint32_t n = 1; n <= w->stores; n++) {
        const nk_raft *r = raft_of(w, n);
        if (r == NULL) {
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        if (st.role == NK_RAFT_LEADER && st.term > best_term) {
            best = n;
            best_term = st.term;
            *out = st;
        }
    }
    return best;
}

static bool chaos_on(nk_csim_world *w)
{
    return !w->calm && (w->chaos_until == 0 || nk_sim_now(w->s) < w->chaos_until);
}

static void at(nk_csim_world *w, uint64_t delay, const char *label, int kind, uint32_t node);

/* ------------------------------------------------------ node -> world --- */

const nk_csim_opts *nk_csim_world_opts(const nk_csim_world *w)
{
    return &w->o;
}

uint32_t nk_csim_world_stores(const nk_csim_world *w)
{
    return w->stores;
}

nk_csim_opts *nk_csim_world_opts_mut(nk_csim_world *w)
{
    return &w->o;
}

nk_rt *nk_csim_world_client_rt(nk_csim_world *w)
{
    return w->crt;
}

void nk_csim_world_set_members(nk_csim_world *w, uint32_t mask)
{
    w->members = mask;
    if (w->s != NULL) {
        nk_sim_trace(w->s, "cluster.members %#x", mask);
    }
}

uint32_t nk_csim_world_members(const nk_csim_world *w)
{
    return w->members;
}

static bool member(const nk_csim_world *w, uint32_t n)
{
    return (w->members >> n) & 1u;
}

/* The member store after `n` (round robin). */
static uint32_t next_member(const nk_csim_world *w, uint32_t n)
{
    for (uint32_t i = 0; i < w->stores; i++) {
        n = n % w->stores + 1;
        if (member(w, n)) {
            return n;
        }
    }
    return n;
}

void nk_csim_world_violation(nk_csim_world *w, uint32_t node, const char *what)
{
    nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "store n%u: %s", node, what);
}

void nk_csim_world_observe(nk_csim_world *w, uint32_t node, const nk_raft *r)
{
    if (failed(w)) {
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    if (st.term > w->st_max_term) {
        w->st_max_term = st.term;
    }
    if (st.role != NK_RAFT_LEADER) {
        return;
    }
    char why[256];
    bool first = false;
    if (!nk_rcheck_leader(w->chk, node, st.term, &first, why, sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
    } else if (first) {
        w->st_elections++;
        nk_sim_trace(w->s, "cluster.leader n%u term %" PRIu64, node, st.term);
    }
}

/* ------------------------------------------------------------- clients --- */

static void client_next(client *c);
static void client_attempt(client *c);

static uint64_t value_of(uint32_t client_id, uint64_t seq)
{
    return ((uint64_t)(client_id + 1) << 40) | seq;
}

/* "v<client>.<seq>" <-> value; 0 = not one of ours. */
static uint64_t parse_value(const uint8_t *p, size_t n)
{
    if (n < 4 || n > 40 || p[0] != 'v') {
        return 0;
    }
    uint64_t a = 0, b = 0;
    size_t i = 1;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        a = a * 10 + (uint64_t)(p[i] - '0');
    }
    if (i == 1 || i >= n || p[i] != '.') {
        return 0;
    }
    size_t j = ++i;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        b = b * 10 + (uint64_t)(p[i] - '0');
    }
    if (i != n || i == j || a >= MAX_CLIENTS || b == 0 || b >= (1ull << 40)) {
        return 0;
    }
    return value_of((uint32_t)a, b);
}

static bool parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

static void rbuf_append(client *c, const uint8_t *p, size_t n)
{
    if (!nk_grow_zeroed((void **)&c->rbuf, &c->rcap, c->rlen + n, 1)) {
        oom(c->w);
        return;
    }
    memcpy(c->rbuf + c->rlen, p, n);
    c->rlen += n;
}

static void add_bulk(uint8_t *b, size_t *len, const char *s)
{
    *len += (size_t)sprintf((char *)b + *len, "$%zu\r\n%s\r\n", strlen(s), s);
}

static const char *op_name(int op)
{
    return op == OP_SET ? "SET" : op == OP_GET ? "GET" : op == OP_INCR ? "INCR" : "GET(ctr)";
}

static void close_conn(client *c)
{
    if (c->conn != 0) {
        (void)nk_rt_close(c->w->crt, c->conn);
        c->conn = 0;
    }
    c->rlen = 0;
}

static void cancel_timer(client *c)
{
    if (c->timer != 0) {
        (void)nk_rt_timer_cancel(c->w->crt, c->timer);
        c->timer = 0;
    }
}

static void backoff_fire(void *arg);

/* The attempt ended without success. effect: the attempt may have applied. */
static void attempt_failed(client *c, bool maybe_applied, const char *why)
{
    nk_csim_world *w = c->w;
    c->inflight = false;
    cancel_timer(c);
    if (c->op == OP_SET) {
        if (maybe_applied) {
            w->st_ambiguous++;
        } else {
            /* No effect: a read of this value would be a phantom. */
            w->hist[c->rec].key = UINT32_MAX;
            w->st_refused++;
        }
    } else if (c->op == OP_INCR) {
        if (maybe_applied) {
            w->st_ambiguous++;
        } else {
            w->incr_attempts--;
            w->incrs[c->rec].client = UINT32_MAX; /* never counted */
            w->st_refused++;
        }
    } else if (c->op == OP_GET) {
        w->hist[c->rec].done = false; /* a read that failed had no effect */
    }
    nk_sim_trace(w->s, "cluster.client c%u %s try %u on n%u failed: %s%s", c->id, op_name(c->op),
                 c->tries, c->target, why, maybe_applied ? " (outcome unknown)" : "");
    /* the next store (round robin: the leader is among the next N tries;
     * replies name no leader), after a backoff that grows with the tries */
    c->target = next_member(w, c->target);
    uint64_t base = (uint64_t)5 << (c->tries < 5 ? c->tries : 5);
    uint64_t delay = (base + nk_rand_below(&w->crand, base)) * NK_NSEC_PER_MSEC;
    c->backoff = true;
    c->timer = nk_rt_timer_start(w->crt, delay, backoff_fire, c);
}

static void op_finished(client *c)
{
    nk_csim_world *w = c->w;
    if (w->marked && !w->final_phase && c->op_start >= w->mark_ns) {
        uint64_t took = nk_sim_now(w->s) - c->op_start;
        if (took > w->slow_ns) {
            w->slow_ns = took;
            w->slow_client = c->id;
            w->slow_op = c->op;
        }
    }
    c->busy = false;
    c->inflight = false;
    cancel_timer(c);
    client_next(c);
}

static void attempt_ok(client *c)
{
    nk_csim_world *w = c->w;
    uint64_t now = nk_sim_now(w->s);
    w->st_done++;
    if (c->op == OP_INCR) {
        w->incrs[c->rec].done = true;
        w->incrs[c->rec].res = now;
        w->st_incrs++;
    } else {
        w->hist[c->rec].done = true;
        w->hist[c->rec].res = now;
        if (c->op == OP_SET) {
            w->st_sets++;
        } else {
            w->st_gets++;
        }
    }
    uint64_t v = c->op == OP_INCR ? w->incrs[c->rec].value : w->hist[c->rec].value;
    nk_sim_trace(w->s, "cluster.client c%u %s ok on n%u: %#" PRIx64, c->id, op_name(c->op),
                 c->target, v);
    if (c->final_reader) {
        c->final_next++;
    }
    op_finished(c);
}

/* One complete reply: +simple, -error, :int, $bulk, $-1. */
static void on_reply(client *c, char type, const uint8_t *p, size_t n, bool null)
{
    nk_csim_world *w = c->w;
    if (!c->inflight) {
        return; /* nothing asked on this connection any more */
    }
    if (type == '-') {
        /* The command did not write: refused before proposing ("does not
         * lead", "<CMD> failed: ..."), not relayed to the leader at all
         * ("relaying ... failed"), or a command that wrote nothing failed
         * its read barrier ("read not confirmed", and the read-barrier
         * TRYAGAIN that says "does not lead"). A write that was proposed
         * and then not confirmed, or a relayed request whose relay broke
         * ("effect is unknown"), has an unknown outcome. */
        const char *t = (const char *)p;
        bool tryagain = n >= 8 && memcmp(p, "TRYAGAIN", 8) == 0;
        bool unknown = strstr(t, "write not confirmed") != NULL ||
                       strstr(t, "effect is unknown") != NULL; /* a relay that broke */
        bool refused =
            !unknown && ((tryagain && strstr(t, "does not lead") != NULL) ||
                         (tryagain && strstr(t, "relaying to the region leader "
                                                "failed") != NULL) ||
                         strstr(t, "read not confirmed") != NULL ||
                         (n >= 4 && memcmp(p, "ERR ", 4) == 0 && strstr(t, " failed: ") != NULL));
        char why[96];
        snprintf(why, sizeof(why), "-%.*s", (int)(n < 80 ? n : 80), t);
        if (!unknown && !refused) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "client c%u: %s on n%u got an unexpected error: %s", c->id, op_name(c->op),
                        c->target, why);
            return;
        }
        close_conn(c); /* a fresh connection on the next store */
        attempt_failed(c, !refused, why);
        return;
    }
    switch (c->op) {
    case OP_SET:
        if (type != '+' || n != 2 || memcmp(p, "OK", 2) != 0) {
            break;
        }
        attempt_ok(c);
        return;
    case OP_GET:
        if (type != '$') {
            break;
        }
        if (null) {
            w->hist[c->rec].value = 0;
        } else {
            uint64_t v = parse_value(p, n);
            if (v == 0) {
                nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                            "client c%u: GET k%u on n%u returned '%.*s', which no client wrote",
                            c->id, c->key, c->target, (int)(n < 60 ? n : 60), (const char *)p);
                return;
            }
            w->hist[c->rec].value = v;
        }
        attempt_ok(c);
        return;
    case OP_INCR: {
        uint64_t v;
        if (type != ':' || !parse_u64(p, n, &v)) {
            break;
        }
        w->incrs[c->rec].value = v;
        attempt_ok(c);
        return;
    }
    case OP_GETCTR: {
        uint64_t v = 0;
        if (type != '$' || (!null && !parse_u64(p, n, &v))) {
            break;
        }
        w->final_ctr = v;
        w->have_final_ctr = true;
        w->st_done++;
        c->final_next++;
        op_finished(c);
        return;
    }
    }
    nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "client c%u: %s on n%u got a malformed reply '%c%.*s'",
                c->id, op_name(c->op), c->target, type, (int)(n < 60 ? n : 60), (const char *)p);
}

/* Parse what arrived; returns false once the client closed the stream. */
static void parse_replies(client *c)
{
    size_t off = 0;
    while (off < c->rlen && !failed(c->w)) {
        uint8_t *p = c->rbuf + off;
        size_t left = c->rlen - off;
        uint8_t *cr = memchr(p, '\r', left);
        if (cr == NULL || (size_t)(cr - p) + 1 >= left) {
            break; /* the line is not complete */
        }
        size_t line = (size_t)(cr - p);
        if (cr[1] != '\n' || line == 0) {
            nk_sim_fail(c->w->s, c->w->res, NK_SIM_SAFETY, "client c%u: reply line without LF",
                        c->id);
            return;
        }
        char type = (char)p[0];
        if (type == '$') {
            uint64_t blen;
            bool null = line == 3 && memcmp(p + 1, "-1", 2) == 0;
            if (null) {
                off += line + 2;
                on_reply(c, '$', NULL, 0, true);
            } else if (!parse_u64(p + 1, line - 1, &blen) || blen > 1024) {
                nk_sim_fail(c->w->s, c->w->res, NK_SIM_SAFETY, "client c%u: bad bulk header",
                            c->id);
                return;
            } else if (left < line + 2 + blen + 2) {
                break;
            } else {
                uint8_t tmp[1024];
                memcpy(tmp, p + line + 2, blen);
                off += line + 2 + blen + 2;
                on_reply(c, '$', tmp, blen, false);
            }
        } else {
            uint8_t tmp[512];
            size_t n = line - 1 < sizeof(tmp) - 1 ? line - 1 : sizeof(tmp) - 1;
            memcpy(tmp, p + 1, n);
            tmp[n] = '\0';
            off += line + 2;
            on_reply(c, type, tmp, n, false);
        }
        if (c->conn == 0) {
            return; /* closed while handling the reply: the buffer is reset */
        }
    }
    if (off > 0 && c->rlen >= off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static client *client_of_conn(nk_csim_world *w, uint64_t conn)
{
    for (uint32_t i = 0; i < w->n_clients; i++) {
        if (w->clients[i].conn == conn && conn != 0) {
            return &w->clients[i];
        }
    }
    return NULL;
}

static void cl_on_connect(void *ctx, uint64_t conn, int status)
{
    nk_csim_world *w = ctx;
    client *c = client_of_conn(w, conn);
    if (c == NULL || status == NK_OK || failed(w)) {
        return;
    }
    c->conn = 0;
    c->rlen = 0;
    if (c->inflight) {
        /* Bytes sent before the connect completed travel with it: the
         * server may have accepted, run the command and died before the
         * client heard back, so a failed connect is an unknown outcome. */
        attempt_failed(c, true, nk_errname(status));
    }
}

static void cl_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_csim_world *w = ctx;
    client *c = client_of_conn(w, conn);
    (void)kind;
    if (c == NULL || failed(w)) {
        return;
    }
    rbuf_append(c, data, len);
    parse_replies(c);
}

static void cl_on_close(void *ctx, uint64_t conn, int reason)
{
    nk_csim_world *w = ctx;
    client *c = client_of_conn(w, conn);
    if (c == NULL || failed(w)) {
        return;
    }
    c->conn = 0;
    c->rlen = 0;
    if (c->inflight) {
        attempt_failed(c, true, nk_errname(reason));
    }
}

static const nk_net_handlers client_handlers = {
    .on_connect = cl_on_connect,
    .on_message = cl_on_message,
    .on_close = cl_on_close,
};

static void attempt_timeout(void *arg)
{
    client *c = arg;
    c->timer = 0;
    if (failed(c->w) || !c->inflight) {
        return;
    }
    close_conn(c); /* a late reply must not answer the next attempt */
    attempt_failed(c, true, "no answer");
}

static void backoff_fire(void *arg)
{
    client *c = arg;
    c->timer = 0;
    c->backoff = false;
    if (failed(c->w)) {
        return;
    }
    nk_csim_world *w = c->w;
    uint64_t now = nk_sim_now(w->s);
    uint64_t deadline = c->final_reader ? w->final_deadline : c->op_start + w->op_timeout_ns;
    if (c->final_reader && now >= deadline) {
        /* final reads ran out of time: check_final_done reports it */
        c->final_reader = false;
        c->busy = false;
        return;
    }
    if (c->tries >= MAX_TRIES && !c->final_reader) {
        w->st_gave_up++;
        w->gave_up_after_mark += w->marked && c->op_start >= w->mark_ns;
        op_finished(c);
        return;
    }
    if (now >= deadline || (w->final_phase && !c->final_reader)) {
        w->st_gave_up += !w->final_phase;
        w->gave_up_after_mark += !w->final_phase && w->marked && c->op_start >= w->mark_ns;
        op_finished(c);
        return;
    }
    client_attempt(c);
}

static void client_attempt(client *c)
{
    nk_csim_world *w = c->w;
    uint64_t now = nk_sim_now(w->s);
    if (!member(w, c->target)) {
        close_conn(c); /* the store left the cluster: no more traffic to it */
        c->target = next_member(w, c->target);
    }
    c->tries++;
    c->seq++;
    char key[16];
    if (c->op == OP_INCR || c->op == OP_GETCTR) {
        snprintf(key, sizeof(key), "ctr");
    } else {
        snprintf(key, sizeof(key), "k%u", c->key);
    }
    uint8_t req[160];
    size_t len = 0;
    char val[48] = "";
    if (c->op == OP_SET) {
        len += (size_t)sprintf((char *)req, "*3\r\n");
        add_bulk(req, &len, "SET");
        add_bulk(req, &len, key);
        snprintf(val, sizeof(val), "v%u.%" PRIu64, c->id, c->seq);
        add_bulk(req, &len, val);
    } else {
        len += (size_t)sprintf((char *)req, "*2\r\n");
        add_bulk(req, &len, c->op == OP_INCR ? "INCR" : "GET");
        add_bulk(req, &len, key);
    }
    if (c->op == OP_INCR) {
        if (!nk_grow_zeroed((void **)&w->incrs, &w->cap_incr, w->n_incr + 1, sizeof(*w->incrs))) {
            oom(w);
            return;
        }
        c->rec = w->n_incr++;
        w->incrs[c->rec] = (incr_rec){.client = c->id, .inv = now, .res = UINT64_MAX};
        w->incr_attempts++;
    } else if (c->op == OP_SET || c->op == OP_GET) {
        if (!nk_grow_zeroed((void **)&w->hist, &w->cap_hist, w->n_hist + 1, sizeof(*w->hist))) {
            oom(w);
            return;
        }
        c->rec = w->n_hist++;
        w->hist[c->rec] = (nk_lin_op){.key = c->key,
                                      .client = c->id,
                                      .write = c->op == OP_SET,
                                      .done = false,
                                      .value = c->op == OP_SET ? value_of(c->id, c->seq) : 0,
                                      .inv = now,
                                      .res = UINT64_MAX};
    }
    if (c->conn == 0) {
        char addr[32];
        snprintf(addr, sizeof(addr), "n%u:%d", c->target, NK_CSIM_RESP_PORT);
        int rc = nk_rt_connect(w->crt, addr, NK_CONN_RAW, &client_handlers, w, &c->conn);
        if (rc != NK_OK) {
            c->conn = 0;
            c->inflight = true;
            attempt_failed(c, false, nk_errname(rc));
            return;
        }
    }
    c->inflight = true;
    nk_sim_trace(w->s, "cluster.client c%u %s %s%s%s try %u -> n%u", c->id, op_name(c->op), key,
                 val[0] ? " " : "", val, c->tries, c->target);
    if (nk_rt_send_raw(w->crt, c->conn, req, len) != NK_OK) {
        close_conn(c);
        attempt_failed(c, false, "send refused");
        return;
    }
    c->backoff = false;
    c->timer = nk_rt_timer_start(w->crt, w->attempt_timeout_ns, attempt_timeout, c);
}

static bool all_idle(nk_csim_world *w)
{
    for (uint32_t i = 0; i < w->n_clients; i++) {
        if (w->clients[i].busy) {
            return false;
        }
    }
    return true;
}

static void start_op(client *c, int op, uint32_t key)
{
    c->busy = true;
    c->op = op;
    c->key = key;
    c->tries = 0;
    c->op_start = nk_sim_now(c->w->s);
    client_attempt(c);
}

static void think_fire(void *arg);

static void final_step(client *c)
{
    nk_csim_world *w = c->w;
    if (c->final_next < w->n_keys) {
        start_op(c, OP_GET, c->final_next);
    } else if (c->final_next == w->n_keys) {
        start_op(c, OP_GETCTR, 0);
    } else {
        c->final_reader = false;
        w->final_done = nk_sim_now(w->s) <= w->final_deadline;
        nk_sim_trace(w->s, "cluster.final reads done: counter %" PRIu64, w->final_ctr);
    }
}

static void client_next(client *c)
{
    nk_csim_world *w = c->w;
    if (failed(w)) {
        return;
    }
    if (w->final_phase) {
        if (c->final_reader) {
            final_step(c);
            return;
        }
        /* The last client to stop starts the final reads on client 0. */
        client *r = &w->clients[0];
        if (all_idle(w) && !w->final_done && !r->final_reader && r->final_next == 0) {
            r->final_reader = true;
            nk_sim_trace(w->s, "cluster.final reads start");
            final_step(r);
        }
        return;
    }
    if (c->think == 0) {
        c->think = nk_rt_timer_start(w->crt, nk_rand_between(&w->crand, 1, 20) * NK_NSEC_PER_MSEC,
                                     think_fire, c);
    }
}

static void think_fire(void *arg)
{
    client *c = arg;
    nk_csim_world *w = c->w;
    c->think = 0;
    if (failed(w) || c->busy) {
        return;
    }
    if (w->final_phase) {
        client_next(c);
        return;
    }
    if (w->ops_cap != 0 && !w->marked && w->ops_started >= w->ops_cap) {
        c->paused = true; /* check_mark resumes it: liveness is still measured */
        return;
    }
    w->ops_started++;
    uint64_t r = nk_rand_below(&w->crand, 100);
    uint32_t key = (uint32_t)nk_rand_below(&w->crand, w->n_keys);
    if (r < w->incr_pct) {
        start_op(c, OP_INCR, 0);
    } else {
        uint32_t sets = (100 - w->incr_pct) * (100 - w->get_pct) / 100;
        start_op(c, r < w->incr_pct + sets ? OP_SET : OP_GET, key);
    }
}

/* The clients' node: its app only hands its runtime to the world. */
static int cl_start(nk_rt *rt, void *cfg, void **state)
{
    nk_csim_world *w = cfg;
    w->crt = rt;
    *state = w;
    for (uint32_t i = 0; i < w->n_clients; i++) {
        client *c = &w->clients[i];
        c->w = w;
        c->id = i;
        c->target = next_member(w, i % w->stores);
        client_next(c);
    }
    return NK_OK;
}

static void cl_stop(void *state, bool crashed)
{
    nk_csim_world *w = state;
    (void)crashed;
    w->crt = NULL;
}

static const nk_sim_app client_app = {.name = "clients", .start = cl_start, .stop = cl_stop};

/* ------------------------------------------------------------- nemesis --- */

static void nemesis(nk_csim_world *w)
{
    if (!chaos_on(w)) {
        return;
    }
    nk_raft_status st;
    uint32_t lead = find_leader(w, &st);
    if (lead == 0) {
        at(w, 50 * NK_NSEC_PER_MSEC, "cluster.nemesis", EV_NEMESIS, 0);
        return;
    }
    w->st_nemesis++;
    nk_sim_cover(w->s, "fault.nemesis", 1);
    uint64_t down = nk_rand_between(&w->nrand, 10, 800) * NK_NSEC_PER_MSEC;
    uint64_t r = nk_rand_below(&w->nrand, 100);
    if (r < 35) {
        nk_sim_trace(w->s, "cluster.nemesis crash leader n%u", lead);
        nk_sim_node_crash(w->s, lead);
        at(w, down, "cluster.nemesis.restart", EV_RESTART, lead);
    } else if (r < 50) {
        nk_sim_trace(w->s, "cluster.nemesis kill leader n%u", lead);
        nk_sim_node_kill(w->s, lead);
        at(w, down, "cluster.nemesis.restart", EV_RESTART, lead);
    } else if (r < 75) {
        /* A deposed leader that still hears clients: its reads must not
         * be served, its writes must not be acknowledged. */
        nk_sim_trace(w->s, "cluster.nemesis isolate leader n%u from the stores", lead);
        for (uint32_t n = 1; n <= w->stores; n++) {
            if (n != lead) {
                nk_sim_net_partition(w->s, lead, n, false);
            }
        }
        at(w, nk_rand_between(&w->nrand, 100, 1500) * NK_NSEC_PER_MSEC, "cluster.nemesis.heal",
           EV_HEAL_NODE, lead);
    } else {
        /* Cut the leader's outgoing traffic to all but one peer, so new
         * entries reach a minority only, then crash it. */
        uint32_t keep = 1 + (uint32_t)nk_rand_below(&w->nrand, w->stores);
        for (uint32_t n = 1; n <= w->stores; n++) {
            if (n != lead && n != keep) {
                nk_sim_net_partition(w->s, lead, n, true);
            }
        }
        uint64_t after = nk_rand_between(&w->nrand, 20, 300) * NK_NSEC_PER_MSEC;
        nk_sim_trace(w->s, "cluster.nemesis one-way cut of leader n%u, crash in %" PRIu64 " ms",
                     lead, after / NK_NSEC_PER_MSEC);
        at(w, after, "cluster.nemesis.crash", EV_CRASH, lead);
        at(w, after + 1, "cluster.nemesis.heal", EV_HEAL_NODE, lead);
        at(w, after + down, "cluster.nemesis.restart", EV_RESTART, lead);
    }
    at(w, nk_rand_between(&w->nrand, w->nemesis_min_ns, w->nemesis_max_ns), "cluster.nemesis",
       EV_NEMESIS, 0);
}

/* --------------------------------------------------------- convergence --- */

static void converge_poll(nk_csim_world *w);

void nk_csim_world_hash(nk_csim_world *w, uint32_t node, uint64_t gen, uint64_t applied,
                        uint64_t hash, uint64_t keys)
{
    if (failed(w) || !w->conv_running || gen != w->conv_gen || node > w->stores) {
        return;
    }
    w->conv_have[node] = true;
    w->conv_applied[node] = applied;
    w->conv_hash[node] = hash;
    w->conv_keys[node] = keys;
    uint32_t first = next_member(w, 0);
    for (uint32_t n = 1; n <= w->stores; n++) {
        if (member(w, n) && !w->conv_have[n]) {
            return;
        }
    }
    /* every store answered: compare at one applied index */
    for (uint32_t n = 1; n <= w->stores; n++) {
        if (member(w, n) && w->conv_applied[n] != w->conv_target) {
            nk_sim_trace(w->s, "cluster.converge n%u applied %" PRIu64 " moved from %" PRIu64, n,
                         w->conv_applied[n], w->conv_target);
            at(w, 20 * NK_NSEC_PER_MSEC, "cluster.converge", EV_CONVERGE, 0);
            return;
        }
    }
    for (uint32_t n = 1; n <= w->stores; n++) {
        if (member(w, n) &&
            (w->conv_hash[n] != w->conv_hash[first] || w->conv_keys[n] != w->conv_keys[first])) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "replicas diverge: at applied index %" PRIu64 " n%u holds %" PRIu64
                        " keys (hash %016" PRIx64 ") but n%u holds %" PRIu64
                        " keys (hash %016" PRIx64 ")",
                        w->conv_target, first, w->conv_keys[first], w->conv_hash[first], n,
                        w->conv_keys[n], w->conv_hash[n]);
            return;
        }
    }
    w->conv_running = false;
    w->converged = nk_sim_now(w->s) <= w->conv_deadline;
    nk_sim_trace(w->s, "cluster.converged applied %" PRIu64 " keys %" PRIu64 " hash %016" PRIx64,
                 w->conv_target, w->conv_keys[first], w->conv_hash[first]);
}

static void dump_stores(nk_csim_world *w)
{
    for (uint32_t n = 1; n <= w->stores; n++) {
        const nk_raft *r = raft_of(w, n);
        if (r == NULL) {
            nk_sim_trace(w->s, "cluster.state n%u down or failed", n);
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        nk_sim_trace(w->s,
                     "cluster.state n%u %s term %" PRIu64 " lead %" PRIu64 " commit %" PRIu64
                     " applied %" PRIu64 " last %" PRIu64,
                     n, nk_raft_role_name(st.role), st.term, st.lead, st.commit,
                     nk_csim_node_applied(app_of(w, n)), st.last_index);
    }
}

static void converge_poll(nk_csim_world *w)
{
    if (failed(w) || !w->conv_running) {
        return;
    }
    if (nk_sim_now(w->s) >= w->conv_deadline) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "converge: the stores did not reach one applied index with the same data "
                    "within %" PRIu64 " ms",
                    w->within_ns / NK_NSEC_PER_MSEC);
        return;
    }
    nk_raft_status st;
    uint32_t lead = find_leader(w, &st);
    bool ready = lead != 0;
    for (uint32_t n = 1; ready && n <= w->stores; n++) {
        if (!member(w, n)) {
            continue;
        }
        nk_csim_node *a = app_of(w, n);
        ready = a != NULL && raft_of(w, n) != NULL && nk_csim_node_applied(a) == st.commit;
    }
    if (!ready) {
        at(w, 20 * NK_NSEC_PER_MSEC, "cluster.converge", EV_CONVERGE, 0);
        return;
    }
    w->conv_gen++;
    w->conv_target = st.commit;
    memset(w->conv_have, 0, sizeof(w->conv_have));
    for (uint32_t n = 1; n <= w->stores; n++) {
        if (member(w, n)) {
            nk_csim_node_request_hash(app_of(w, n), w->conv_gen);
        }
    }
    /* if a store dies before answering, poll again */
    at(w, 200 * NK_NSEC_PER_MSEC, "cluster.converge", EV_CONVERGE, 0);
}

/* -------------------------------------------------------------- events --- */

static void fire(nk_sim *s, void *arg)
{
    wev *e = arg;
    nk_csim_world *w = e->w;
    (void)s;
    if (!failed(w)) {
        switch (e->kind) {
        case EV_BEGIN:
            if (nk_sim_add_node(w->s, "client", &client_app, w, &w->cnode) != NK_OK ||
                nk_sim_node_start(w->s, w->cnode) != NK_OK) {
                oom(w);
            }
            if (w->coord && (nk_sim_add_node(w->s, "coord", &nk_sim_coord_app, &w->coord_cfg,
                                             &w->coord_node) != NK_OK ||
                             nk_sim_node_start(w->s, w->coord_node) != NK_OK)) {
                oom(w);
            }
            if (w->nemesis) {
                at(w, nk_rand_between(&w->nrand, w->nemesis_min_ns, w->nemesis_max_ns),
                   "cluster.nemesis", EV_NEMESIS, 0);
            }
            break;
        case EV_NEMESIS:
            nemesis(w);
            break;
        case EV_CRASH:
            if (chaos_on(w) && nk_sim_node_up(w->s, e->node)) {
                nk_sim_trace(w->s, "cluster.nemesis crash n%u", e->node);
                nk_sim_node_crash(w->s, e->node);
            }
            break;
        case EV_RESTART:
            if (!nk_sim_node_up(w->s, e->node)) {
                nk_sim_node_start(w->s, e->node);
            }
            break;
        case EV_HEAL_NODE:
            for (uint32_t n = 1; n <= w->stores; n++) {
                if (n != e->node) {
                    nk_sim_net_heal(w->s, e->node, n);
                }
            }
            break;
        case EV_CONVERGE:
            converge_poll(w);
            break;
        }
    }
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

static void at(nk_csim_world *w, uint64_t delay, const char *label, int kind, uint32_t node)
{
    wev *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        oom(w);
        return;
    }
    e->w = w;
    e->kind = kind;
    e->node = node;
    e->next = w->events;
    if (w->events) {
        w->events->prev = e;
    }
    w->events = e;
    nk_sim_at(w->s, nk_sim_now(w->s) + delay, label, fire, e);
}

/* -------------------------------------------------------------- checks --- */

static void check_history(nk_csim_world *w)
{
    char why[512];
    if (!nk_lin_check_registers(w->hist, w->n_hist, w->n_keys, why, sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
        return;
    }
    nk_lin_incr *acked = malloc((w->n_incr + 1) * sizeof(*acked));
    if (acked == NULL) {
        oom(w);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < w->n_incr; i++) {
        if (w->incrs[i].done && w->incrs[i].client != UINT32_MAX) {
            acked[n++] = (nk_lin_incr){w->incrs[i].client, w->incrs[i].value, w->incrs[i].inv,
                                       w->incrs[i].res};
        }
    }
    if (!nk_lin_check_counter(acked, n, w->incr_attempts, w->have_final_ctr, w->final_ctr, why,
                              sizeof(why))) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "%s", why);
    }
    free(acked);
}

static void check_mark(nk_csim_world *w)
{
    w->calm = true;
    w->marked = true;
    w->mark_ns = nk_sim_now(w->s);
    w->done_at_mark = w->st_done;
    nk_sim_trace(w->s, "cluster.mark done %" PRIu64, w->st_done);
    for (uint32_t i = 0; i < w->n_clients; i++) {
        if (w->clients[i].paused) {
            w->clients[i].paused = false;
            client_next(&w->clients[i]);
        }
    }
}

static void check_progress(nk_csim_world *w, uint64_t min)
{
    uint64_t now = nk_sim_now(w->s);
    nk_raft_status st;
    if (find_leader(w, &st) == 0) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "progress: no leader %" PRIu64 " ms after the mark",
                    (now - w->mark_ns) / NK_NSEC_PER_MSEC);
        return;
    }
    for (uint32_t i = 0; i < w->n_clients; i++) {
        client *c = &w->clients[i];
        if (c->busy && c->op_start >= w->mark_ns && c->op_start + w->within_ns <= now) {
            dump_stores(w);
            nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                        "progress: client c%u's %s started %" PRIu64
                        " ms after the mark is not done after %" PRIu64 " ms (%u tries)",
                        c->id, op_name(c->op), (c->op_start - w->mark_ns) / NK_NSEC_PER_MSEC,
                        (now - c->op_start) / NK_NSEC_PER_MSEC, c->tries);
            return;
        }
    }
    if (w->gave_up_after_mark > 0 || w->slow_ns > w->within_ns) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "progress: after the mark %" PRIu64 " operations gave up; the slowest (client "
                    "c%u's %s) took %" PRIu64 " ms, bound %" PRIu64 " ms",
                    w->gave_up_after_mark, w->slow_client, op_name(w->slow_op),
                    w->slow_ns / NK_NSEC_PER_MSEC, w->within_ns / NK_NSEC_PER_MSEC);
        return;
    }
    uint64_t done = w->st_done - w->done_at_mark;
    if (done < min) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "progress: %" PRIu64
                    " client operations completed since the mark, wanted %" PRIu64,
                    done, min);
    }
}

static void check_final(nk_csim_world *w)
{
    if (!w->marked) {
        check_mark(w);
    }
    w->final_phase = true;
    w->final_deadline = nk_sim_now(w->s) + w->within_ns;
    nk_sim_trace(w->s, "cluster.final: clients stop, then every key is read");
    client_next(&w->clients[0]); /* starts the reads if everyone is idle already */
}

static void check_final_done(nk_csim_world *w)
{
    if (!w->final_phase) {
        return;
    }
    if (!w->final_done) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "final reads: not done within %" PRIu64 " ms of `check final` (%u of %u read)",
                    w->within_ns / NK_NSEC_PER_MSEC, w->clients[0].final_next, w->n_keys + 1);
    }
}

static void check_converge_done(nk_csim_world *w)
{
    if (!w->conv_started) {
        return;
    }
    if (w->conv_running) {
        converge_poll(w); /* fails if past the deadline */
    }
    if (!failed(w) && !w->converged) {
        dump_stores(w);
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                    "converge: the stores did not reach one applied index with the same data "
                    "within %" PRIu64 " ms of `check converge`",
                    w->within_ns / NK_NSEC_PER_MSEC);
    }
}

static int world_check(void *wp, const char *name, const char *args)
{
    nk_csim_world *w = wp;
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
    if (strcmp(name, "final") == 0) {
        check_final(w);
        return NK_OK;
    }
    if (strcmp(name, "converge") == 0) {
        w->calm = true;
        w->conv_running = true;
        w->conv_started = true;
        w->converged = false;
        w->conv_deadline = nk_sim_now(w->s) + w->within_ns;
        converge_poll(w);
        return NK_OK;
    }
    if (strcmp(name, "linearizable") == 0) {
        check_history(w);
        return NK_OK;
    }
    if (strcmp(name, "revive") == 0) {
        /* A store whose disk failed a sync stops serving and stays up (fail
         * stop: "data state unknown"); its supervisor restarts it. A kill
         * plus start is that restart: the disk keeps what it had. */
        for (uint32_t n = 1; n <= w->stores; n++) {
            nk_csim_node *a = app_of(w, n);
            if (a != NULL && nk_csim_node_failed(a)) {
                nk_sim_trace(w->s, "cluster.revive n%u (stopped serving)", n);
                nk_sim_node_kill(w->s, n);
                nk_sim_node_start(w->s, n);
            }
        }
        return NK_OK;
    }
    if (strcmp(name, "coord") == 0 && w->coord && args != NULL) {
        /* coordinator outage: the data plane must not notice */
        if (w->coord_node == 0) {
            return NK_OK; /* before the first event: nothing runs yet */
        }
        bool up = nk_sim_node_up(w->s, w->coord_node);
        if (strcmp(args, "crash") == 0 || strcmp(args, "kill") == 0 || strcmp(args, "stop") == 0) {
            if (up) {
                nk_sim_cover(w->s, "fault.coord-outage", 1);
                nk_sim_trace(w->s, "cluster.coord %s", args);
                if (args[0] == 'c') {
                    nk_sim_node_crash(w->s, w->coord_node);
                } else if (args[0] == 'k') {
                    nk_sim_node_kill(w->s, w->coord_node);
                } else {
                    nk_sim_node_stop(w->s, w->coord_node);
                }
            }
            return NK_OK;
        }
        if (strcmp(args, "start") == 0) {
            if (!up) {
                nk_sim_trace(w->s, "cluster.coord start");
                nk_sim_node_start(w->s, w->coord_node);
            }
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static void world_finish(void *wp)
{
    nk_csim_world *w = wp;
    check_final_done(w);
    if (!failed(w)) {
        check_converge_done(w);
    }
    if (!failed(w)) {
        check_history(w);
    }
    nk_sim_trace(w->s,
                 "cluster.finish elections=%" PRIu64 " max_term=%" PRIu64 " done=%" PRIu64
                 " sets=%" PRIu64 " gets=%" PRIu64 " incrs=%" PRIu64 "/%" PRIu64
                 " ambiguous=%" PRIu64 " refused=%" PRIu64 " gave_up=%" PRIu64 " nemesis=%" PRIu64
                 " counter=%" PRIu64,
                 w->st_elections, w->st_max_term, w->st_done, w->st_sets, w->st_gets, w->st_incrs,
                 w->incr_attempts, w->st_ambiguous, w->st_refused, w->st_gave_up, w->st_nemesis,
                 w->final_ctr);
    if (getenv("NOKV_SIM_CLUSTER_STATS") != NULL) {
        fprintf(stderr,
                "CLUSTERSTATS elections=%" PRIu64 " done=%" PRIu64 " sets=%" PRIu64 " gets=%" PRIu64
                " incrs=%" PRIu64 " incr_attempts=%" PRIu64 " ambiguous=%" PRIu64
                " refused=%" PRIu64 " gave_up=%" PRIu64 " nemesis=%" PRIu64 " converged=%d\n",
                w->st_elections, w->st_done, w->st_sets, w->st_gets, w->st_incrs, w->incr_attempts,
                w->st_ambiguous, w->st_refused, w->st_gave_up, w->st_nemesis, w->converged);
    }
}

/* -------------------------------------------------------------- options --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes < 1 || nodes > NK_CSIM_MAX_STORES) {
        return NULL;
    }
    nk_csim_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->res = res;
    w->stores = nodes;
    nk_testbugs = 0; /* planted only by a `bug=` option of this run */
    w->o.tick_ns = 20 * NK_NSEC_PER_MSEC;
    w->o.small_engine = true;
    /* Compact the raft log often, so compactions, the purges after them and
     * restarts from a compacted log run under the faults. */
    w->o.compact_every = 64;
    w->n_clients = 4;
    w->n_keys = 3;
    w->incr_pct = 20;
    w->get_pct = 50;
    w->coord_cfg.svc.addr = "coord:2379";
    w->coord_cfg.svc.workdir = "/coord";
    w->attempt_timeout_ns = 1 * NK_NSEC_PER_SEC;
    w->op_timeout_ns = 4 * NK_NSEC_PER_SEC;
    w->nemesis_min_ns = 500 * NK_NSEC_PER_MSEC;
    w->nemesis_max_ns = 2 * NK_NSEC_PER_SEC;
    w->within_ns = 3 * NK_NSEC_PER_SEC;
    w->members = ((1u << nodes) - 1u) << 1;
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

static int parse_range(const char *value, uint64_t *lo, uint64_t *hi)
{
    const char *dots = strstr(value, "..");
    char left[32];
    if (dots == NULL || (size_t)(dots - value) >= sizeof(left)) {
        return NK_EINVAL;
    }
    memcpy(left, value, (size_t)(dots - value));
    left[dots - value] = '\0';
    if (nk_sim_parse_duration(left, lo) != NK_OK || nk_sim_parse_duration(dots + 2, hi) != NK_OK ||
        *lo == 0 || *hi < *lo) {
        return NK_EINVAL;
    }
    return NK_OK;
}

static int world_option(void *wp, const char *key, const char *value)
{
    nk_csim_world *w = wp;
    if (strcmp(key, "tick") == 0) {
        uint64_t ns;
        if (nk_sim_parse_duration(value, &ns) != NK_OK || ns < NK_NSEC_PER_MSEC) {
            return NK_EINVAL;
        }
        w->o.tick_ns = ns;
        return NK_OK;
    }
    if (strcmp(key, "clients") == 0) {
        return parse_u32_range(value, 1, MAX_CLIENTS, &w->n_clients);
    }
    if (strcmp(key, "keys") == 0) {
        return parse_u32_range(value, 1, MAX_KEYS, &w->n_keys);
    }
    if (strcmp(key, "incr") == 0) {
        return parse_u32_range(value, 0, 100, &w->incr_pct);
    }
    if (strcmp(key, "get") == 0) {
        return parse_u32_range(value, 0, 100, &w->get_pct);
    }
    if (strcmp(key, "ops") == 0) {
        uint32_t v = 0;
        int rc = parse_u32_range(value, 0, 1000000, &v);
        w->ops_cap = v;
        return rc;
    }
    if (strcmp(key, "coordinator") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
            return NK_EINVAL;
        }
        w->coord = strcmp(value, "on") == 0;
        w->o.coordinator_addr = w->coord ? "coord:2379" : NULL;
        return NK_OK;
    }
    if (strcmp(key, "small-engine") == 0) {
        if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0) {
            w->o.small_engine = strcmp(value, "on") == 0;
            return NK_OK;
        }
        return NK_EINVAL;
    }
    if (strcmp(key, "compact-every") == 0) {
        return parse_u32_range(value, 1, 1000000, &w->o.compact_every);
    }
    if (strcmp(key, "snapshot-lag") == 0) {
        uint32_t lag = 0;
        int rc = parse_u32_range(value, 1, 100000000, &lag);
        w->o.snapshot_lag = lag;
        return rc;
    }
    if (strcmp(key, "attempt-timeout") == 0) {
        return nk_sim_parse_duration(value, &w->attempt_timeout_ns);
    }
    if (strcmp(key, "op-timeout") == 0) {
        return nk_sim_parse_duration(value, &w->op_timeout_ns);
    }
    if (strcmp(key, "nemesis") == 0) {
        if (strcmp(value, "leader") == 0 || strcmp(value, "on") == 0) {
            w->nemesis = true;
            return NK_OK;
        }
        if (strcmp(value, "off") == 0) {
            w->nemesis = false;
            return NK_OK;
        }
        return NK_EINVAL;
    }
    if (strcmp(key, "nemesis-gap") == 0) {
        return parse_range(value, &w->nemesis_min_ns, &w->nemesis_max_ns);
    }
    if (strcmp(key, "chaos-until") == 0) {
        return nk_sim_parse_duration(value, &w->chaos_until);
    }
    if (strcmp(key, "within") == 0) {
        return nk_sim_parse_duration(value, &w->within_ns);
    }
    if (strcmp(key, "bug") == 0) {
        if (strcmp(value, "ack-before-commit") == 0) {
            w->o.bug_ack_on_propose = true;
            return NK_OK;
        }
        if (strcmp(value, "none") == 0) {
            w->o.bug_ack_on_propose = false;
            nk_testbugs = 0;
            return NK_OK;
        }
        /* Process-wide planted bugs (nokv/util/testbug.h); this process
         * runs one seed, so the switch cannot leak into another run. */
        static const struct {
            const char *name;
            unsigned bit;
        } planted[] = {
            {"mode-nosync", NK_TESTBUG_MODE_NOSYNC},
            {"publish-before-install", NK_TESTBUG_PUBLISH_EARLY},
            {"reapply-after-restart", NK_TESTBUG_REAPPLY},
            {"forget-tombstone", NK_TESTBUG_FORGET_TOMB},
        };
        for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++) {
            if (strcmp(value, planted[i].name) == 0) {
                nk_testbugs |= planted[i].bit;
                return NK_OK;
            }
        }
    }
    return NK_EINVAL;
}

static void *world_node_cfg(void *wp, uint32_t node)
{
    nk_csim_world *w = wp;
    if (node == 0 || node > w->stores) {
        return NULL;
    }
    if (!w->begun && w->s != NULL) {
        /* The options are final: draw the streams, add the clients' node
         * once every store exists (the first event at time 0). */
        w->begun = true;
        nk_sim_rand_stream(w->s, "cluster.clients", &w->crand);
        nk_sim_rand_stream(w->s, "cluster.nemesis", &w->nrand);
        at(w, 0, "cluster.begin", EV_BEGIN, 0);
    }
    return &w->cfgs[node];
}

static void world_free(void *wp)
{
    nk_csim_world *w = wp;
    while (w->events != NULL) {
        wev *e = w->events;
        w->events = e->next;
        free(e);
    }
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        free(w->clients[i].rbuf);
    }
    free(w->hist);
    free(w->incrs);
    nk_rcheck_free(w->chk);
    free(w);
}

const nk_sim_workload nk_sim_workload_cluster = {
    .name = "cluster",
    .app = &nk_csim_store_app,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
