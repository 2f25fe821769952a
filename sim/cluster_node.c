/*
 * cluster_node.c - the store app of the `cluster` workload: nk_cluster (the
 * code `nokv serve --store-id N --initial-cluster ...` runs) on a simulated
 * node. This file only adapts:
 *   - the configuration a real store gets from its flags: workdir /data,
 *     raft on nN:20170, RESP on nN:6380, an initial cluster of every store
 *     (store id = node id), small engine buffers;
 *   - the store observer, forwarded to the world's checkers;
 *   - the graceful stop (the shutdown handler runs nk_cluster_shutdown, which
 *     ends in nk_rt_stop) and the crash (abandon: nothing is flushed);
 *   - the convergence probe: a scan of the engine's user keys, hashed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/db.h"
#include "nokv/engine/slice.h"
#include "nokv/server/cluster.h"
#include "nokv/store/kvsm.h"
#include "nokv/util/coding.h"
#include "sim/cluster_wl.h"

struct nk_csim_node {
    nk_rt *rt;
    nk_csim_world *w;
    uint32_t self;
    nk_cluster *c;
    bool failed;
    bool stopping;
    nk_store_observer obs;
    uint64_t hash_gen;
    bool hash_pending;
    uint64_t recovered_commit; /* region 1's durable commit at open (clamped into the log) */
    void *alt;                 /* another app runs on the node (nk_csim_opts.alt) */
};

struct nk_store *nk_csim_node_store(const nk_csim_node *a)
{
    if (a->failed || a->stopping || a->c == NULL) {
        return NULL;
    }
    nk_store *st = nk_cluster_store(a->c);
    return st != NULL && !nk_store_failed(st) ? st : NULL;
}

static void ob_raft_changed(void *ctx, uint64_t store_id, uint64_t region_id, const nk_raft *r)
{
    nk_csim_node *a = ctx;
    (void)store_id;
    if (region_id == NK_CSIM_REGION) {
        nk_csim_world_observe(a->w, a->self, r);
    }
}

static void ob_recovered(void *ctx, uint64_t store_id, uint64_t region_id, uint64_t lsn,
                         const nk_raft_hard_state *hs, uint64_t snap_index, uint64_t last_index)
{
    nk_csim_node *a = ctx;
    (void)store_id, (void)lsn, (void)snap_index, (void)last_index;
    if (region_id == NK_CSIM_REGION) {
        a->recovered_commit = hs->commit;
    }
}

static void ob_violation(void *ctx, uint64_t store_id, const char *what)
{
    nk_csim_node *a = ctx;
    (void)store_id;
    a->failed = true;
    nk_csim_world_violation(a->w, a->self, what);
}

const nk_raft *nk_csim_node_raft(const nk_csim_node *a)
{
    if (a->failed || a->stopping || a->c == NULL) {
        return NULL;
    }
    nk_store *st = nk_cluster_store(a->c);
    if (st == NULL || nk_store_failed(st)) {
        return NULL;
    }
    return nk_store_raft(st, NK_CSIM_REGION);
}

uint64_t nk_csim_node_applied(const nk_csim_node *a)
{
    if (a->stopping || a->c == NULL || nk_cluster_store(a->c) == NULL) {
        return 0;
    }
    return nk_store_applied(nk_cluster_store(a->c), NK_CSIM_REGION);
}

bool nk_csim_node_failed(const nk_csim_node *a)
{
    return a->failed || (a->c != NULL && nk_cluster_store(a->c) != NULL &&
                         nk_store_failed(nk_cluster_store(a->c)));
}

/*
 * Exactly-once apply, checked as a store comes back: the kvsm writes its
 * applied index in the same engine batch as the entry's data, so whatever
 * index A the recovered engine records, the data up to A is there. Raft may
 * re-apply only what its durable log cannot prove committed: entries above
 * the recovered commit index C (its hard state is synced after the engine
 * may already hold the apply). Resuming below min(A, C) applies entries a
 * second time that the store knows are applied and committed. SET/INCR
 * entries carry absolute values, so such a replay converges again and no
 * client sees it, which is why it is checked here, from the inside.
 */
static void check_resume(nk_csim_node *a)
{
    nk_store *st = nk_cluster_store(a->c);
    const nk_raft *r = st != NULL ? nk_store_raft(st, NK_CSIM_REGION) : NULL;
    uint64_t idx = 0, term = 0;
    if (r == NULL || nk_kvsm_applied(nk_cluster_kvsm(a->c), NK_CSIM_REGION, &idx, &term) != NK_OK) {
        return;
    }
    uint64_t bound = idx < a->recovered_commit ? idx : a->recovered_commit;
    nk_raft_status rs;
    nk_raft_status_get(r, &rs);
    if (rs.applied < bound) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "exactly-once apply: n%u reopened with entries up to %" PRIu64
                 " in its engine and commit %" PRIu64 " in its log, but raft resumes applying"
                 " after %" PRIu64 " (entries %" PRIu64 "..%" PRIu64 " apply twice)",
                 a->self, idx, a->recovered_commit, rs.applied, rs.applied + 1, bound);
        nk_csim_world_violation(a->w, a->self, msg);
    }
}

/* Hash every user key and value, in key order, as the engine holds them.
 * The label is the store's applied index only once every applied write is
 * visible in the engine (the kvsm is settled): the store counts an entry as
 * applied when it hands it to the engine, which may still hold it behind a
 * write stall, so two replicas at one store index can differ without any
 * fault (swarm seed 5 with the wide failpoint pool: a store slowed by a
 * stall per write reported 1398 while its engine showed index ~1286). An
 * unsettled replica answers 0, which the world treats as "not there yet". */
static void hash_scan(void *arg)
{
    nk_csim_node *a = arg;
    a->hash_pending = false;
    if (a->stopping || a->c == NULL || nk_cluster_db(a->c) == NULL) {
        return;
    }
    nk_db_iter_options io;
    memset(&io, 0, sizeof(io));
    io.upper = nk_slice_make(NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN);
    nk_db_iter *it = NULL;
    if (nk_db_iter_new(nk_cluster_db(a->c), &io, &it) != NK_OK) {
        return; /* crashed or out of memory: the world asks again */
    }
    XXH64_state_t *h = XXH64_createState();
    if (h == NULL) {
        nk_db_iter_free(it);
        return;
    }
    XXH64_reset(h, 0x434c);
    uint64_t keys = 0;
    for (nk_db_iter_first(it); nk_db_iter_valid(it); nk_db_iter_next(it)) {
        nk_slice k = nk_db_iter_key(it);
        nk_slice v = nk_db_iter_value(it);
        uint8_t lens[16];
        nk_put_u64(lens, k.len);
        nk_put_u64(lens + 8, v.len);
        XXH64_update(h, lens, sizeof(lens));
        XXH64_update(h, k.data, k.len);
        XXH64_update(h, v.data, v.len);
        keys++;
    }
    int rc = nk_db_iter_status(it, NULL);
    nk_db_iter_free(it);
    uint64_t digest = XXH64_digest(h);
    XXH64_freeState(h);
    if (rc == NK_OK) {
        const nk_kvsm *k = nk_cluster_kvsm(a->c);
        uint64_t applied = k != NULL && nk_kvsm_settled(k) ? nk_csim_node_applied(a) : 0;
        nk_csim_world_hash(a->w, a->self, a->hash_gen, applied, digest, keys);
    }
}

void nk_csim_node_request_hash(nk_csim_node *a, uint64_t gen)
{
    a->hash_gen = gen;
    if (!a->hash_pending && nk_rt_timer_start(a->rt, 0, hash_scan, a) != 0) {
        a->hash_pending = true;
    }
}

void nk_csim_db_options(const nk_csim_opts *o, nk_db_options *db)
{
    nk_db_options_default(db);
    if (o->small_engine) {
        db->memtable_bytes = 4 * 1024;
        db->target_file_bytes = 8 * 1024;
        db->level1_bytes = 32 * 1024;
        db->level_multiplier = 4;
        db->l0_compaction_trigger = 2;
        db->wal_segment_bytes = 8 * 1024;
        db->block_cache_bytes = 32 * 1024;
        db->sst.block_size = 512;
        db->manifest_rewrite_bytes = 8 * 1024;
    }
}

static void on_shutdown(void *arg)
{
    nk_csim_node *a = arg;
    a->stopping = true;
    nk_cluster_shutdown(a->c); /* ends in nk_rt_stop once the engine closed */
}

static void node_stop(void *state, bool crashed);

static int node_start(nk_rt *rt, void *cfgp, void **state)
{
    nk_csim_cfg *cfg = cfgp;
    nk_csim_node *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->w = cfg->w;
    a->self = cfg->node;
    const nk_csim_opts *o = nk_csim_world_opts(a->w);
    *state = a;
    if (o->alt != NULL) {
        int arc = o->alt->start(o->alt->ctx, rt, a->self, &a->alt);
        if (arc != NK_ENOENT) {
            if (arc != NK_OK) {
                free(a);
                *state = NULL;
            }
            return arc;
        }
        a->alt = NULL;
    }
    a->obs = (nk_store_observer){.ctx = a,
                                 .raft_changed = ob_raft_changed,
                                 .recovered = ob_recovered,
                                 .violation = ob_violation};

    char addr[32], redis[32];
    snprintf(addr, sizeof(addr), "n%u:%d", a->self, NK_CSIM_RAFT_PORT);
    snprintf(redis, sizeof(redis), "n%u:%d", a->self, NK_CSIM_RESP_PORT);
    nk_cluster_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.workdir = "/data";
    cc.store_id = a->self;
    cc.addr = addr;
    cc.redis_addr = redis;
    cc.coordinator_addr = o->coordinator_addr;
    uint32_t stores = nk_csim_world_stores(a->w);
    for (uint32_t i = 1; !o->no_initial && i <= stores && i <= NK_CLUSTER_MAX_INITIAL; i++) {
        cc.initial[cc.n_initial].store_id = i;
        snprintf(cc.initial[cc.n_initial].addr, sizeof(cc.initial[0].addr), "n%u:%d", i,
                 NK_CSIM_RAFT_PORT);
        cc.n_initial++;
    }
    cc.tick_ns = o->tick_ns;
    nk_csim_db_options(o, &cc.db);
    cc.version = "sim";
    /* Small raft log segments and cache: rolls, purges and reads of evicted
     * entries from disk happen many times per run, under the faults. */
    cc.raftlog.segment_bytes = o->small_engine ? 8u << 10 : 0;
    cc.raftlog.cache_bytes = o->small_engine ? 16u << 10 : 0;
    cc.compact_every = o->compact_every;
    cc.snapshot_lag = o->snapshot_lag;
    cc.snapshot_chunk = o->small_engine ? 256 : 0; /* many chunks per file */
    cc.obs = &a->obs;
    cc.unsafe_ack_on_propose = o->bug_ack_on_propose;
    cc.unsafe_skip_install_rollback = o->bug_skip_install_rollback;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    *state = a;
    int rc = nk_cluster_start(rt, &cc, &a->c, &eb);
    if (rc != NK_OK) {
        a->c = NULL;
        if (rc != NK_ECRASHED) {
            /* A store must always come back from what its disk holds. */
            char msg[700];
            snprintf(msg, sizeof(msg), "n%u: nk_cluster_start failed: %s (%s)", a->self,
                     nk_errname(rc), eb.msg);
            nk_csim_world_violation(a->w, a->self, msg);
        }
        free(a);
        *state = NULL;
        return rc;
    }
    check_resume(a);
    nk_rt_set_shutdown_handler(rt, on_shutdown, a);
    return NK_OK;
}

static void node_stop(void *state, bool crashed)
{
    nk_csim_node *a = state;
    if (a == NULL) {
        return;
    }
    if (a->alt != NULL) {
        nk_csim_world_opts(a->w)->alt->stop(a->alt, crashed);
        free(a);
        return;
    }
    if (a->c != NULL) {
        if (crashed) {
            nk_cluster_abandon(a->c); /* no I/O works any more */
        } else {
            nk_cluster_free(a->c); /* after nk_cluster_shutdown: mostly freed already */
        }
    }
    free(a);
}

const nk_sim_app nk_csim_store_app = {
    .name = "cluster",
    .start = node_start,
    .stop = node_stop,
};
