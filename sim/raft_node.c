/*
 * raft_node.c - the node app of the `raft` workload: a production raftstore
 * (nokv/store) on a simulated node, hosting region 1, with a small test
 * state machine plugged in.
 *
 * Everything that hosts raft (the store-wide durable log, the Ready batch
 * with one sync, transport with HELLO and backoff, membership from conf
 * entries, tombstones, snapshot payload files, recovery) is the store's
 * own code: this file only
 *   - adapts: the store's resolver maps store id N to "nN:7100", its
 *     observer hooks forward to the world's checkers, requests from the
 *     world become nk_store_propose / nk_store_read_index;
 *   - provides the test state machine: one register per key with
 *     client-session deduplication and a running chain hash of every
 *     applied entry (what the checkers compare across nodes);
 *   - seeds region 1 on the founders' first boot, as `nokv migrate init`
 *     seeds a real one (nk_store_seed_region at index/term 5).
 * Node n is store n and hosts peer n of region 1.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/rt.h"
#include "nokv/store/store.h"
#include "nokv/util/coding.h"
#include "sim/check/raft.h"
#include "sim/raft_wl.h"

#define SM_MAGIC 0x314d5352u /* "RSM1" */
#define REGION 1
#define SEED_INDEX 5
#define SEED_TERM 5

/* The replicated state machine: one register per key; last_seq makes a
 * retried write (same client, same seq) apply at most once. */
typedef struct sm_state {
    uint64_t applied;
    uint64_t chain; /* running hash of every applied entry (checker aid) */
    uint64_t val[NK_SRAFT_MAX_KEYS];
    uint64_t last_seq[NK_SRAFT_MAX_CLIENTS];
} sm_state;

struct nk_sraft_node {
    nk_rt *rt;
    nk_sraft_world *w;
    const nk_sraft_opts *o;
    uint32_t self;
    nk_rand rand;
    nk_store *store;
    bool failed;
    sm_state sm;
    nk_store_observer obs;
};

/* A request in flight inside the store: freed by its completion. */
typedef struct req_ctx {
    nk_sraft_node *a;
    nk_sraft_req rq;
} req_ctx;

/* ---------------------------------------------------------------- misc --- */

static void violation(nk_sraft_node *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(nk_sraft_node *a, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nk_sraft_world_violation(a->w, a->self, msg);
    a->failed = true;
}

static uint64_t entry_hash(const nk_raft_entry *e)
{
    return nk_rcheck_entry_hash(e);
}

static uint64_t chain_next(uint64_t chain, const nk_raft_entry *e)
{
    return nk_rcheck_chain(chain, e, 0x5241);
}

/* ------------------------------------------------------ state machine --- */

static uint64_t sm_hash(const sm_state *sm)
{
    uint8_t b[8 * (NK_SRAFT_MAX_KEYS + NK_SRAFT_MAX_CLIENTS)];
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++) {
        nk_put_u64(b + 8 * k, sm->val[k]);
    }
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++) {
        nk_put_u64(b + 8 * (NK_SRAFT_MAX_KEYS + c), sm->last_seq[c]);
    }
    return XXH64(b, sizeof(b), 0x534d);
}

#define SM_SIZE (4 + 8 + 8 + 4 + 8 * NK_SRAFT_MAX_KEYS + 4 + 8 * NK_SRAFT_MAX_CLIENTS + 8)

static uint8_t *sm_serialize(const sm_state *sm, size_t *len)
{
    uint8_t *b = malloc(SM_SIZE);
    if (b == NULL) {
        return NULL;
    }
    uint8_t *p = b;
    nk_put_u32(p, SM_MAGIC);
    nk_put_u64(p + 4, sm->applied);
    nk_put_u64(p + 12, sm->chain);
    p += 20;
    nk_put_u32(p, NK_SRAFT_MAX_KEYS);
    p += 4;
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++, p += 8) {
        nk_put_u64(p, sm->val[k]);
    }
    nk_put_u32(p, NK_SRAFT_MAX_CLIENTS);
    p += 4;
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++, p += 8) {
        nk_put_u64(p, sm->last_seq[c]);
    }
    nk_put_u64(p, XXH64(b, (size_t)(p - b), 0));
    *len = SM_SIZE;
    return b;
}

static int sm_deserialize(const uint8_t *b, size_t len, sm_state *sm)
{
    if (len != SM_SIZE || nk_get_u32(b) != SM_MAGIC ||
        nk_get_u64(b + SM_SIZE - 8) != XXH64(b, SM_SIZE - 8, 0) ||
        nk_get_u32(b + 20) != NK_SRAFT_MAX_KEYS) {
        return NK_ECORRUPT;
    }
    memset(sm, 0, sizeof(*sm));
    sm->applied = nk_get_u64(b + 4);
    sm->chain = nk_get_u64(b + 12);
    const uint8_t *p = b + 24;
    for (unsigned k = 0; k < NK_SRAFT_MAX_KEYS; k++, p += 8) {
        sm->val[k] = nk_get_u64(p);
    }
    if (nk_get_u32(p) != NK_SRAFT_MAX_CLIENTS) {
        return NK_ECORRUPT;
    }
    p += 4;
    for (unsigned c = 0; c < NK_SRAFT_MAX_CLIENTS; c++, p += 8) {
        sm->last_seq[c] = nk_get_u64(p);
    }
    return NK_OK;
}

/* Write command: [u8 'W'][u8 client][u8 key][u8 0][u64 seq][u64 value]. */
#define CMD_LEN 20

static void cmd_encode(const nk_sraft_req *rq, uint8_t *b)
{
    b[0] = 'W';
    b[1] = (uint8_t)rq->client;
    b[2] = (uint8_t)rq->key;
    b[3] = 0;
    nk_put_u64(b + 4, rq->seq);
    nk_put_u64(b + 12, rq->value);
}

static bool cmd_decode(const nk_raft_entry *e, uint32_t *client, uint32_t *key, uint64_t *seq,
                       uint64_t *value)
{
    if (e->len != CMD_LEN || e->data[0] != 'W' || e->data[1] >= NK_SRAFT_MAX_CLIENTS ||
        e->data[2] >= NK_SRAFT_MAX_KEYS) {
        return false;
    }
    *client = e->data[1];
    *key = e->data[2];
    *seq = nk_get_u64(e->data + 4);
    *value = nk_get_u64(e->data + 12);
    return true;
}

/* ------------------------------------------------ the store's state machine --- */

static int sm_open_region(void *ctx, uint64_t region_id, const uint8_t *snap, size_t len,
                          uint64_t snap_index, uint64_t *applied)
{
    nk_sraft_node *a = ctx;
    (void)region_id;
    memset(&a->sm, 0, sizeof(a->sm));
    if (snap != NULL && sm_deserialize(snap, len, &a->sm) != NK_OK) {
        violation(a, "n%u: snapshot payload at %" PRIu64 " does not decode", a->self, snap_index);
        return NK_ECORRUPT;
    }
    a->sm.applied = snap_index;
    *applied = snap_index;
    return NK_OK;
}

static int sm_apply(void *ctx, uint64_t region_id, const nk_raft_entry *e, uint64_t *result)
{
    nk_sraft_node *a = ctx;
    (void)region_id;
    *result = 0;
    if (e->index != a->sm.applied + 1) {
        violation(a, "n%u applies index %" PRIu64 " after %" PRIu64, a->self, e->index,
                  a->sm.applied);
        return NK_ECORRUPT;
    }
    if (e->type == NK_RAFT_ENTRY_NORMAL && e->len > 0) {
        uint32_t client = 0, key = 0;
        uint64_t seq = 0, value = 0;
        if (!cmd_decode(e, &client, &key, &seq, &value)) {
            violation(a, "n%u: committed entry %" PRIu64 " is not a valid command", a->self,
                      e->index);
            return NK_ECORRUPT;
        }
        if (seq > a->sm.last_seq[client]) {
            a->sm.val[key] = value;
            a->sm.last_seq[client] = seq;
        }
    }
    a->sm.applied = e->index;
    a->sm.chain = chain_next(a->sm.chain, e);
    nk_sraft_world_applied(a->w, a->self, e->index, e->term, entry_hash(e), a->sm.chain,
                           sm_hash(&a->sm));
    return NK_OK;
}

static int sm_snapshot(void *ctx, uint64_t region_id, uint8_t **data, size_t *len)
{
    nk_sraft_node *a = ctx;
    (void)region_id;
    *data = sm_serialize(&a->sm, len);
    return *data != NULL ? NK_OK : NK_ENOMEM;
}

static int sm_install(void *ctx, uint64_t region_id, const uint8_t *data, size_t len,
                      uint64_t index, uint64_t term)
{
    nk_sraft_node *a = ctx;
    (void)region_id;
    sm_state sm;
    if (sm_deserialize(data, len, &sm) != NK_OK) {
        violation(a, "n%u received a malformed snapshot payload for index %" PRIu64, a->self,
                  index);
        return NK_ECORRUPT;
    }
    sm.applied = index;
    a->sm = sm;
    nk_sraft_world_installed(a->w, a->self, index, term, sm.chain, sm_hash(&sm));
    return NK_OK;
}

/* --------------------------------------------------------- observer --- */

static void ob_raft_changed(void *ctx, uint64_t store_id, uint64_t region_id, const nk_raft *r)
{
    nk_sraft_node *a = ctx;
    (void)store_id;
    (void)region_id;
    nk_sraft_world_observe(a->w, a->self, r);
}

static void ob_persisted(void *ctx, uint64_t store_id, uint64_t region_id, const nk_raft_entry *e,
                         uint64_t prev_term)
{
    nk_sraft_node *a = ctx;
    (void)store_id;
    (void)region_id;
    nk_sraft_world_persisted(a->w, a->self, e, prev_term);
}

static void ob_synced(void *ctx, uint64_t store_id, uint64_t region_id, uint64_t lsn,
                      const nk_raft_hard_state *hs)
{
    nk_sraft_node *a = ctx;
    (void)store_id;
    (void)region_id;
    nk_sraft_world_synced(a->w, a->self, 0, lsn, hs);
}

static void ob_recovered(void *ctx, uint64_t store_id, uint64_t region_id, uint64_t lsn,
                         const nk_raft_hard_state *hs, uint64_t snap_index, uint64_t last_index)
{
    nk_sraft_node *a = ctx;
    (void)store_id;
    (void)region_id;
    nk_sraft_world_recovered(a->w, a->self, 0, lsn, hs, snap_index, last_index);
}

static void ob_violation(void *ctx, uint64_t store_id, const char *what)
{
    nk_sraft_node *a = ctx;
    (void)store_id;
    nk_sraft_world_violation(a->w, a->self, what);
    a->failed = true;
}

static int resolve(void *ctx, uint64_t store_id, char *addr, size_t cap)
{
    nk_sraft_node *a = ctx;
    if (store_id == 0 || store_id > nk_sraft_world_nodes(a->w)) {
        return NK_ENOENT;
    }
    snprintf(addr, cap, "%s:%d", nk_sim_node_name(nk_sraft_world_sim(a->w), (uint32_t)store_id),
             NK_SRAFT_PORT);
    return NK_OK;
}

/* ----------------------------------------------------- client requests --- */

static void reply(nk_sraft_node *a, const nk_sraft_req *rq, int status, uint64_t value,
                  uint64_t lead)
{
    nk_sraft_world_reply(a->w, a->self, rq, status, value, lead);
}

static uint64_t lead_of(nk_sraft_node *a)
{
    const nk_raft *r = a->store != NULL ? nk_store_raft(a->store, REGION) : NULL;
    if (r == NULL) {
        return 0;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    return st.lead;
}

static void write_done(void *arg, int rc, uint64_t result, uint64_t leader_peer)
{
    req_ctx *c = arg;
    (void)result;
    if (rc == NK_OK) {
        reply(c->a, &c->rq, NK_SRAFT_OK, 0, 0);
    } else if (rc == NK_EAGAIN) {
        reply(c->a, &c->rq, NK_SRAFT_RETRY, 0, leader_peer);
    }
    /* NK_ETIMEDOUT: silence (the client's own timer retries); NK_ESTOPPED:
     * the node is going away and a dead server does not answer. */
    free(c);
}

static void read_done(void *arg, int rc, uint64_t result, uint64_t leader_peer)
{
    req_ctx *c = arg;
    (void)result;
    if (rc == NK_OK) {
        reply(c->a, &c->rq, NK_SRAFT_OK, c->a->sm.val[c->rq.key], 0);
    } else if (rc == NK_EAGAIN) {
        reply(c->a, &c->rq, NK_SRAFT_REDIRECT, 0, leader_peer);
    }
    free(c);
}

void nk_sraft_node_request(nk_sraft_node *a, const nk_sraft_req *rq)
{
    if (a->failed || a->store == NULL || nk_store_failed(a->store)) {
        return; /* a dead server does not answer */
    }
    if (rq->op == NK_SRAFT_OP_WRITE && a->sm.last_seq[rq->client] >= rq->seq) {
        /* Applied here already (an earlier attempt): committed. */
        reply(a, rq, NK_SRAFT_OK, 0, 0);
        return;
    }
    req_ctx *c = malloc(sizeof(*c));
    if (c == NULL) {
        reply(a, rq, NK_SRAFT_RETRY, 0, 0);
        return;
    }
    c->a = a;
    c->rq = *rq;
    int rc;
    if (rq->op == NK_SRAFT_OP_WRITE) {
        uint8_t cmd[CMD_LEN];
        cmd_encode(rq, cmd);
        rc = nk_store_propose(a->store, REGION, cmd, sizeof(cmd), write_done, c);
    } else {
        rc = nk_store_read_index(a->store, REGION, read_done, c);
    }
    if (rc != NK_OK) {
        free(c);
        reply(a, rq, rc == NK_EAGAIN ? NK_SRAFT_REDIRECT : NK_SRAFT_RETRY, 0, lead_of(a));
    }
}

int nk_sraft_node_conf_change(nk_sraft_node *a, uint8_t cc_type, uint64_t node)
{
    if (a->failed || a->store == NULL) {
        return NK_ECRASHED;
    }
    return nk_store_conf_change(a->store, REGION, cc_type, node, node);
}

int nk_sraft_node_transfer(nk_sraft_node *a, uint64_t target)
{
    if (a->failed || a->store == NULL) {
        return NK_ECRASHED;
    }
    return nk_store_transfer_leader(a->store, REGION, target);
}

const nk_raft *nk_sraft_node_raft(const nk_sraft_node *a)
{
    if (a->failed || a->store == NULL || nk_store_failed(a->store)) {
        return NULL;
    }
    return nk_store_raft(a->store, REGION);
}

uint64_t nk_sraft_node_applied(const nk_sraft_node *a)
{
    return a->sm.applied;
}

/* ----------------------------------------------------------- lifecycle --- */

static void node_stop(void *state, bool crashed);

static void node_shutdown(void *arg)
{
    nk_sraft_node *a = arg;
    nk_log(a->rt, NK_LOG_INFO, "raft: graceful stop");
    nk_rt_stop(a->rt);
}

static int node_start(nk_rt *rt, void *cfgp, void **state)
{
    nk_sraft_cfg *cfg = cfgp;
    nk_sraft_node *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->w = cfg->w;
    a->o = nk_sraft_world_opts(a->w);
    a->self = cfg->node;
    nk_rt_rand_stream(rt, "sraft", &a->rand);
    *state = a;
    a->obs = (nk_store_observer){.ctx = a,
                                 .raft_changed = ob_raft_changed,
                                 .persisted = ob_persisted,
                                 .synced = ob_synced,
                                 .recovered = ob_recovered,
                                 .violation = ob_violation};
    char listen[32];
    snprintf(listen, sizeof(listen), "0.0.0.0:%d", NK_SRAFT_PORT);
    nk_store_options so;
    nk_store_options_default(&so);
    so.workdir = "/data";
    so.store_id = a->self;
    so.listen_addr = listen;
    so.resolve = resolve;
    so.resolve_ctx = a;
    so.sm = (nk_store_sm){.ctx = a,
                          .volatile_state = true,
                          .open_region = sm_open_region,
                          .apply = sm_apply,
                          .snapshot = sm_snapshot,
                          .install = sm_install};
    so.obs = &a->obs;
    so.tick_ns = a->o->tick_ns;
    so.election_ticks = a->o->election_ticks;
    so.heartbeat_ticks = a->o->heartbeat_ticks;
    so.max_inflight_msgs = 16;
    /* Small batches make followers acknowledge old-term entries one at a
     * time, the only way the commit rule for earlier terms matters. */
    static const uint64_t batches[] = {1, 1, 1, 4096};
    so.max_batch_bytes =
        a->o->batch_bytes ? a->o->batch_bytes : batches[nk_rand_below(&a->rand, 4)];
    so.compact_every = a->o->compact_every;
    /* A tiny in-memory raft log tail on most boots, so terms, catch-up and
     * apply after a restart go through read-back from the raft log under
     * the faults. Picked from the boot time, not the node's random stream,
     * so the rest of a seed's run stays as it was. */
    static const uint64_t mem_entries[] = {4, 16, 0};
    so.raft_mem_entries = mem_entries[(nk_rt_now(rt) / 1000 + a->self) % 3];
    so.unsafe_commit_prev_term = a->o->bug_commit_prev_term;
    so.jitter_salt = nk_rt_now(rt);
    so.conn_pending_limit = 4u << 20;
    /* Small segments, so rolls (with their restated hard states and
     * snapshots) and purges happen many times per run under the faults. */
    so.log.segment_bytes = 8u << 10;
    nk_errbuf eb = {{0}};
    int rc = nk_store_open(rt, &so, &a->store, &eb);
    if (rc != NK_OK) {
        if (rc != NK_ECRASHED) {
            violation(a, "n%u: store open failed: %s (%s)", a->self, nk_errname(rc), eb.msg);
        }
        goto fail;
    }
    uint32_t founders = a->o->voters + a->o->learners;
    if (a->self <= founders) {
        nk_region desc;
        nk_region_init_full(&desc, REGION);
        for (uint32_t i = 1; i <= founders; i++) {
            nk_region_peer p = {.store_id = i,
                                .peer_id = i,
                                .role = i <= a->o->voters ? NK_RAFT_VOTER : NK_RAFT_LEARNER};
            nk_region_peer_set(&desc, &p);
        }
        /* Only the first boot seeds: afterwards the store knows region 1
         * (hosted or tombstoned) and says NK_EEXIST. */
        rc = nk_store_seed_region(a->store, &desc, SEED_INDEX, SEED_TERM, &eb);
        if (rc == NK_EEXIST) {
            rc = NK_OK;
        }
        if (rc != NK_OK) {
            if (rc != NK_ECRASHED) {
                violation(a, "n%u: seeding region 1 failed: %s (%s)", a->self, nk_errname(rc),
                          eb.msg);
            }
            goto fail;
        }
    }
    nk_rt_set_shutdown_handler(rt, node_shutdown, a);
    return NK_OK;
fail:
    node_stop(a, false);
    *state = NULL;
    return rc == NK_OK ? NK_EIO : rc;
}

static void node_stop(void *state, bool crashed)
{
    nk_sraft_node *a = state;
    (void)crashed;
    if (a == NULL) {
        return;
    }
    nk_store_close(a->store);
    free(a);
}

const nk_sim_app nk_sraft_app = {
    .name = "raft",
    .start = node_start,
    .stop = node_stop,
};
