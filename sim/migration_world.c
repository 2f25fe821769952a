/*
 * migration_world.c - the `migration` workload's world: the operator that
 * walks the lifecycle of docs/migration.md step by step, over the `cluster`
 * workload's world (its RESP clients keep writing through every step, and
 * its checkers judge the history: linearizability per key including the
 * final reads, the INCR counter, convergence of the member stores).
 *
 * Steps (`check migrate` starts them; each waits for the state the last
 * one left, with a bound):
 *   stop      graceful stop of the standalone server on n1;
 *   init      n1 boots `nokv migrate plan` (must be eligible) and
 *             `nokv migrate init --store 1 --region 1 --peer 101`; with
 *             crash-init=on a failpoint migrate.init.<stage> chosen by the
 *             seed crashes n1 (power loss) during the first run;
 *   probe     after such a crash: nk_standalone_start on the preparing
 *             workdir must be refused with NK_EMODE; then init is rerun
 *             and must resume;
 *   serve     n1 boots nk_cluster (store 1, no --initial-cluster): the seed;
 *             it must lead region 1;
 *   expand    nk_rollout EXPAND to store 2 (peer 102) and store 3 (peer 103),
 *             run from the clients' node like `nokv migrate expand`; with
 *             interrupt=crash|kill the first import into n2 dies at a
 *             snapshot.install failpoint; then:
 *   recover   n2 restarts; within `within` its store neither hosts nor
 *             knows region 1 (nk_store_region, nk_store_region_meta) and
 *             the leader's membership lists no peer on store 2 (no ghost);
 *             then expand is retried and must succeed;
 *   transfer  TRANSFER_LEADER to peer 102;
 *   remove    REMOVE_PEER 101 (from n2), then n1 must host nothing and the
 *             leader's membership is exactly stores 2 and 3;
 *   done      `check migrated` fails (liveness) unless the lifecycle got here.
 * Clients send to n1 only until expand finished, then to every member;
 * convergence compares only the members.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/migrate/expand.h"
#include "nokv/store/store.h"
#include "nokv/util/rand.h"
#include "sim/migration_wl.h"
#include "sim/scenario.h"

enum step {
    ST_IDLE = 0,
    ST_STOP,
    ST_INIT,
    ST_PROBE,
    ST_SERVE,
    ST_EXPAND,
    ST_RECOVER,
    ST_TRANSFER,
    ST_REMOVE,
    ST_DONE,
};

static const char *step_name(int s)
{
    static const char *names[] = {"idle",   "stop",    "init",     "probe",  "serve",
                                  "expand", "recover", "transfer", "remove", "done"};
    return s >= 0 && s <= ST_DONE ? names[s] : "?";
}

static const char *init_stages[] = {
    "migrate.init.mode-preparing-written", "migrate.init.local-catalog-persisted",
    "migrate.init.seed-snapshot-exported", "migrate.init.raft-log-written",
    "migrate.init.raft-seed-initialized",  "migrate.init.seeded-finalized",
};

static const char *install_points[] = {
    "snapshot.install.after_applying",
    "snapshot.install.after_ingest",
    "snapshot.install.before_publish",
};

#define INTR_BREAK 100 /* interrupt=break: the snapshot stream's connection breaks */

struct nk_msim_world {
    nk_csim_world *cw;
    nk_sim *s;
    nk_sim_result *res;
    uint32_t stores;
    nk_csim_alt alt;
    nk_msim_phase phase[NK_CSIM_MAX_STORES + 1];
    nk_rand rnd;
    bool rnd_ready;

    /* options */
    bool crash_init;
    int interrupt;       /* 0 off, NK_SIM_FP_CRASH, NK_SIM_FP_KILL, INTR_BREAK */
    bool broke;          /* INTR_BREAK: the stream was broken */
    int interrupt_point; /* index into install_points, -1 = seeded */
    uint64_t within_ns;
    int last_step;        /* until=: the lifecycle ends after this step (ST_REMOVE) */
    char incr[8];         /* the clients' INCR percentage once n1 is a seed */
    bool standalone_incr; /* INCR on the standalone server too (see below) */

    int step;
    uint64_t step_start, deadline;
    bool poll_queued;
    /* init */
    char init_fp[64];
    unsigned init_runs, init_crashes;
    bool plan_wanted, plan_seen;
    bool init_reported;
    int init_rc;
    bool probe_reported;
    int probe_rc;
    char probe_msg[256];
    /* rollouts */
    nk_rollout *ro;
    bool ro_done;
    int ro_rc;
    char ro_msg[512];
    const char *ro_stage;
    unsigned expands;
    char intr_fp[64];
    bool intr_armed;
    uint64_t st_rollouts;
    /* the operator reruns a failed rollout (docs/migration.md: "rerun the
     * same command") up to `reruns` times */
    unsigned max_reruns, reruns;
    uint64_t stage_timeout_ns; /* each rollout wait (`nokv migrate --timeout`) */
    bool rerun_pending;
    int rerun_step;
    uint64_t rerun_at;
};

static bool failed(nk_msim_world *m)
{
    return m->res->verdict != NK_SIM_PASS;
}

static void fail(nk_msim_world *m, nk_sim_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(nk_msim_world *m, nk_sim_verdict v, const char *fmt, ...)
{
    char buf[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    nk_sim_fail(m->s, m->res, v, "migration %s: %s", step_name(m->step), buf);
}

static nk_csim_node *node_of(nk_msim_world *m, uint32_t n)
{
    /* While a node runs nk_cluster its state is the cluster app's. */
    if (!nk_sim_node_up(m->s, n) || m->phase[n] != NK_MSIM_CLUSTER) {
        return NULL;
    }
    return nk_sim_node_state(m->s, n);
}

static nk_store *store_of(nk_msim_world *m, uint32_t n)
{
    nk_csim_node *a = node_of(m, n);
    return a != NULL ? nk_csim_node_store(a) : NULL;
}

static bool leads(nk_msim_world *m, uint32_t n)
{
    nk_csim_node *a = node_of(m, n);
    const nk_raft *r = a != NULL ? nk_csim_node_raft(a) : NULL;
    if (r == NULL) {
        return false;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    return st.role == NK_RAFT_LEADER;
}

/* The live leader of region 1 with the highest term, or `fallback`. */
static uint32_t current_leader(nk_msim_world *m, uint32_t fallback)
{
    uint32_t best = 0;
    uint64_t term = 0;
    for (uint32_t n = 1; n <= m->stores; n++) {
        nk_csim_node *a = node_of(m, n);
        const nk_raft *r = a != NULL ? nk_csim_node_raft(a) : NULL;
        if (r == NULL) {
            continue;
        }
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        if (st.role == NK_RAFT_LEADER && st.term > term) {
            best = n;
            term = st.term;
        }
    }
    return best != 0 ? best : fallback;
}

/* ------------------------------------------------------ node -> world --- */

nk_msim_phase nk_msim_world_phase(nk_msim_world *m, uint32_t node)
{
    return node <= NK_CSIM_MAX_STORES ? m->phase[node] : NK_MSIM_CLUSTER;
}

const nk_csim_opts *nk_msim_world_opts(nk_msim_world *m)
{
    return nk_csim_world_opts(m->cw);
}

bool nk_msim_world_plan_wanted(nk_msim_world *m)
{
    return m->plan_wanted;
}

void nk_msim_world_plan_done(nk_msim_world *m, int rc, const nk_plan_result *r)
{
    m->plan_wanted = false;
    m->plan_seen = true;
    nk_sim_trace(m->s, "migration.plan rc=%s eligible=%d tables=%" PRIu64 " last_seq=%" PRIu64,
                 nk_errname(rc), r->eligible, r->table_files, r->last_sequence);
    if (rc != NK_OK || !r->eligible) {
        fail(m, NK_SIM_SAFETY, "plan of a cleanly stopped standalone workdir: %s, eligible=%d (%s)",
             nk_errname(rc), r->eligible, r->blockers[0]);
    }
}

void nk_msim_world_init_done(nk_msim_world *m, int rc, const nk_init_result *r, const char *msg)
{
    m->init_reported = true;
    m->init_rc = rc;
    nk_sim_trace(
        m->s, "migration.init rc=%s resumed_from=%s already_seeded=%d files=%" PRIu64 " msg=%s",
        nk_errname(rc), nk_stage_name(r != NULL ? r->resumed_from : NK_STAGE_NONE),
        r != NULL && r->already_seeded, r != NULL ? r->snapshot_files : 0, msg != NULL ? msg : "");
    if (rc != NK_OK) {
        fail(m, NK_SIM_SAFETY, "nk_migrate_init (run %u) failed: %s: %s", m->init_runs,
             nk_errname(rc), msg != NULL ? msg : "");
    } else if (m->init_crashes > 0 && r->resumed_from == NK_STAGE_NONE) {
        fail(m, NK_SIM_SAFETY, "init rerun after a crash at %s did not resume (no checkpoint)",
             m->init_fp);
    }
}

void nk_msim_world_probe_done(nk_msim_world *m, int rc, const char *msg)
{
    m->probe_reported = true;
    m->probe_rc = rc;
    snprintf(m->probe_msg, sizeof(m->probe_msg), "%s", msg != NULL ? msg : "");
    nk_sim_trace(m->s, "migration.probe standalone start rc=%s: %s", nk_errname(rc), m->probe_msg);
    if (rc != NK_EMODE) {
        fail(m, NK_SIM_SAFETY,
             "a workdir interrupted at %s (preparing) was opened by nk_standalone_start: %s "
             "(want NK_EMODE)",
             m->init_fp, nk_errname(rc));
    }
}

void nk_msim_world_violation(nk_msim_world *m, uint32_t node, const char *what)
{
    nk_sim_fail(m->s, m->res, NK_SIM_SAFETY, "n%u: %s", node, what);
}

/* --------------------------------------------------------- rollouts --- */

static void break_fire(nk_sim *s, void *arg)
{
    (void)arg;
    uint32_t cnode = nk_sim_node_by_name(s, "client");
    nk_sim_trace(s, "migration.interrupt break the operator's links to n2 mid-stream");
    nk_sim_net_break(s, cnode, 2);
}

static void ro_progress(void *ctx, const nk_rollout_progress *p)
{
    nk_msim_world *m = ctx;
    if (m->interrupt == INTR_BREAK && m->intr_armed && !m->broke &&
        strcmp(p->stage, "snapshot-stream") == 0) {
        m->broke = true; /* from a global event, not inside the node's callback */
        nk_sim_at(m->s, nk_sim_now(m->s), "migration.break", break_fire, m);
    }
    if (m->ro_stage != p->stage) {
        m->ro_stage = p->stage;
        nk_sim_trace(m->s, "migration.rollout stage %s store %" PRIu64 " peer %" PRIu64, p->stage,
                     p->store_id, p->peer_id);
    }
}

static void ro_done(void *arg, int rc, const char *msg)
{
    nk_msim_world *m = arg;
    m->ro_done = true;
    m->ro_rc = rc;
    snprintf(m->ro_msg, sizeof(m->ro_msg), "%s", msg != NULL ? msg : "");
    nk_sim_trace(m->s, "migration.rollout done rc=%s %s", nk_errname(rc), m->ro_msg);
}

static void addr_of(uint32_t n, char *buf, size_t len)
{
    snprintf(buf, len, "n%u:%d", n, NK_CSIM_RAFT_PORT);
}

static char leader_addr[32], peer_addr[32];

static void rollout(nk_msim_world *m, nk_rollout_kind kind, uint32_t leader, uint32_t peer_store)
{
    nk_rt *rt = nk_csim_world_client_rt(m->cw);
    if (rt == NULL) {
        fail(m, NK_SIM_CRASH, "the operator's node is not up");
        return;
    }
    nk_rollout_options o;
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    addr_of(leader, leader_addr, sizeof(leader_addr));
    o.leader_addr = leader_addr;
    o.region_id = NK_CSIM_REGION;
    if (kind == NK_ROLLOUT_EXPAND) {
        for (uint32_t n = 2; n <= m->stores && o.n_targets < NK_EXPAND_MAX_TARGETS; n++) {
            nk_expand_target *t = &o.targets[o.n_targets++];
            t->store_id = n;
            t->peer_id = NK_MSIM_SEED_PEER + n;
            addr_of(n, t->addr, sizeof(t->addr));
        }
    } else {
        o.peer_id = NK_MSIM_SEED_PEER + peer_store;
        addr_of(peer_store, peer_addr, sizeof(peer_addr));
        o.peer_addr = peer_addr;
    }
    o.poll_ns = 50 * NK_NSEC_PER_MSEC;
    o.stage_timeout_ns = m->stage_timeout_ns;
    o.rpc_timeout_ns = 2 * NK_NSEC_PER_SEC;
    o.progress = ro_progress;
    o.ctx = m;
    m->ro_done = false;
    m->ro_stage = NULL;
    m->st_rollouts++;
    int rc = nk_rollout_start(rt, &o, ro_done, m, &m->ro);
    if (rc != NK_OK) {
        m->ro = NULL;
        fail(m, NK_SIM_SAFETY, "nk_rollout_start: %s", nk_errname(rc));
    }
}

/* Take the finished rollout's result; false while it runs. */
static bool rollout_finished(nk_msim_world *m)
{
    if (m->ro == NULL || !m->ro_done) {
        return false;
    }
    nk_rollout_free(m->ro);
    m->ro = NULL;
    return true;
}

/* ------------------------------------------------------------ steps --- */

static void poll_soon(nk_msim_world *m, uint64_t delay);

/* The step after a finished `done`, or the end when until= stops there
 * (the swarm runs partial lifecycles: a seed that only serves, a cluster
 * that expanded but kept the seed). */
static int after(const nk_msim_world *m, int done, int next)
{
    return done >= m->last_step ? ST_DONE : next;
}

static void enter(nk_msim_world *m, int step)
{
    m->step = step;
    m->step_start = nk_sim_now(m->s);
    /* every step has a bound: init and the rollouts have their own */
    m->deadline = m->step_start + (step == ST_EXPAND    ? 30 * NK_NSEC_PER_SEC
                                   : step == ST_RECOVER ? m->within_ns
                                                        : 12 * NK_NSEC_PER_SEC);
    nk_sim_trace(m->s, "migration.step %s", step_name(step));
    char mark[32];
    snprintf(mark, sizeof(mark), "lifecycle.%s", step_name(step));
    nk_sim_cover(m->s, mark, 1); /* which steps a sweep ran, and how often */
    switch (step) {
    case ST_STOP:
        nk_sim_node_stop(m->s, 1);
        break;
    case ST_INIT:
        m->phase[1] = NK_MSIM_INIT;
        m->init_reported = false;
        m->init_runs++;
        if (m->crash_init && m->init_runs == 1) {
            uint64_t i = nk_rand_below(&m->rnd, sizeof(init_stages) / sizeof(init_stages[0]));
            snprintf(m->init_fp, sizeof(m->init_fp), "%s", init_stages[i]);
            nk_sim_trace(m->s, "migration.crash-init at %s", m->init_fp);
            nk_sim_failpoint_arm(m->s, 1, m->init_fp, NK_SIM_FP_CRASH, 1, (nk_ratio){1, 1});
        }
        nk_sim_node_start(m->s, 1);
        break;
    case ST_PROBE:
        m->phase[1] = NK_MSIM_PROBE;
        m->probe_reported = false;
        nk_sim_node_start(m->s, 1);
        break;
    case ST_SERVE:
        (void)nk_sim_workload_cluster.option(m->cw, "incr", m->incr);
        m->phase[1] = NK_MSIM_CLUSTER;
        nk_sim_node_start(m->s, 1);
        break;
    case ST_EXPAND:
        m->expands++;
        if (m->interrupt == INTR_BREAK && m->expands == 1) {
            m->intr_armed = true;
            snprintf(m->intr_fp, sizeof(m->intr_fp), "stream-break");
        } else if (m->interrupt != 0 && m->expands == 1) {
            int i = m->interrupt_point >= 0
                        ? m->interrupt_point
                        : (int)nk_rand_below(&m->rnd,
                                             sizeof(install_points) / sizeof(install_points[0]));
            snprintf(m->intr_fp, sizeof(m->intr_fp), "%s", install_points[i]);
            nk_sim_trace(m->s, "migration.interrupt %s n2 at %s",
                         m->interrupt == NK_SIM_FP_CRASH ? "crash" : "kill", m->intr_fp);
            nk_sim_failpoint_arm(m->s, 2, m->intr_fp, (nk_sim_fp_action)m->interrupt, 1,
                                 (nk_ratio){1, 1});
            m->intr_armed = true;
        }
        rollout(m, NK_ROLLOUT_EXPAND, current_leader(m, 1), 0);
        break;
    case ST_RECOVER:
        break;
    case ST_TRANSFER:
        rollout(m, NK_ROLLOUT_TRANSFER_LEADER, current_leader(m, 1), 2);
        break;
    case ST_REMOVE:
        /* clients leave the seed before it goes */
        nk_csim_world_set_members(m->cw, ((1u << m->stores) - 1u) << 1 & ~2u);
        rollout(m, NK_ROLLOUT_REMOVE_PEER, current_leader(m, 2), 1);
        break;
    case ST_DONE:
        nk_sim_trace(m->s, "migration.done in %u init run(s), %u expand(s), %" PRIu64 " rollouts",
                     m->init_runs, m->expands, m->st_rollouts);
        break;
    }
}

/* The target after an interrupted install: not hosted, not known, and no
 * ghost in the leader's membership. Returns NULL when clean, or why not. */
static const char *target_clean(nk_msim_world *m, char *why, size_t len)
{
    nk_store *t = store_of(m, 2);
    if (t == NULL) {
        snprintf(why, len, "n2's store is not serving");
        return why;
    }
    nk_region desc;
    uint8_t state = 0;
    if (nk_store_region(t, NK_CSIM_REGION) != NULL) {
        snprintf(why, len, "n2 hosts region 1");
        return why;
    }
    if (nk_store_region_meta(t, NK_CSIM_REGION, &desc, &state) != NK_ENOENT) {
        snprintf(why, len, "n2's LOCALMETA still knows region 1 (state %u)", state);
        return why;
    }
    nk_store *l = store_of(m, 1);
    const nk_region *lr = l != NULL ? nk_store_region(l, NK_CSIM_REGION) : NULL;
    if (lr == NULL) {
        snprintf(why, len, "the seed n1 does not host region 1");
        return why;
    }
    for (uint32_t i = 0; i < lr->n_peers; i++) {
        if (lr->peers[i].store_id == 2) {
            snprintf(why, len, "ghost peer: the leader lists peer %" PRIu64 " on store 2",
                     lr->peers[i].peer_id);
            return why;
        }
    }
    return NULL;
}

static void verify_final(nk_msim_world *m)
{
    nk_store *s1 = store_of(m, 1);
    if (s1 != NULL && nk_store_region(s1, NK_CSIM_REGION) != NULL) {
        fail(m, NK_SIM_SAFETY, "the removed seed n1 still hosts region 1");
        return;
    }
    /* any remaining store may lead (with 5 stores, n4 or n5 too: the
     * lifecycle waited forever for n2 or n3, swarm seed 175) */
    uint32_t lead = 0;
    for (uint32_t n = 2; n <= m->stores && lead == 0; n++) {
        lead = leads(m, n) ? n : 0;
    }
    if (lead == 0) {
        return; /* poll again */
    }
    const nk_region *r = nk_store_region(store_of(m, lead), NK_CSIM_REGION);
    uint32_t mask = 0;
    for (uint32_t i = 0; r != NULL && i < r->n_peers; i++) {
        if (r->peers[i].store_id > 0 && r->peers[i].store_id <= m->stores &&
            r->peers[i].role == NK_RAFT_VOTER) {
            mask |= 1u << r->peers[i].store_id;
        }
    }
    uint32_t want = ((1u << m->stores) - 1u) << 1 & ~2u;
    if (r == NULL || mask != want || r->n_peers != m->stores - 1) {
        fail(m, NK_SIM_SAFETY, "leader n%u's membership is %#x (%u peers), want voters %#x", lead,
             mask, r != NULL ? r->n_peers : 0, want);
        return;
    }
    /* the membership matches the hosting stores: no ghost */
    for (uint32_t n = 2; n <= m->stores; n++) {
        nk_store *s = store_of(m, n);
        if (s != NULL && nk_store_region(s, NK_CSIM_REGION) == NULL) {
            fail(m, NK_SIM_SAFETY, "the leader lists store %u, which does not host region 1", n);
            return;
        }
    }
    enter(m, ST_DONE);
}

/* A rollout failed: rerun `step` soon if reruns are left. */
static bool rerun(nk_msim_world *m, int step, const char *what)
{
    if (m->reruns >= m->max_reruns) {
        return false;
    }
    m->reruns++;
    m->rerun_pending = true;
    m->rerun_step = step;
    m->rerun_at = nk_sim_now(m->s) + 300 * NK_NSEC_PER_MSEC;
    nk_sim_trace(m->s, "migration.rerun %u/%u: %s failed (%s: %s); the operator reruns %s",
                 m->reruns, m->max_reruns, what, nk_errname(m->ro_rc), m->ro_msg, step_name(step));
    return true;
}

static void advance(nk_msim_world *m)
{
    uint64_t now = nk_sim_now(m->s);
    char why[160];
    if (m->step == ST_IDLE || m->step == ST_DONE) {
        return;
    }
    if (now > m->deadline) {
        const char *w = m->step == ST_RECOVER ? target_clean(m, why, sizeof(why)) : NULL;
        fail(m,
             m->step == ST_RECOVER && w != NULL && strstr(w, "serving") == NULL ? NK_SIM_SAFETY
                                                                                : NK_SIM_LIVENESS,
             "step did not finish within %" PRIu64 " ms%s%s",
             (m->deadline - m->step_start) / NK_NSEC_PER_MSEC, w ? ": " : "", w ? w : "");
        return;
    }
    if (m->rerun_pending) {
        if (now >= m->rerun_at) {
            m->rerun_pending = false;
            enter(m, m->rerun_step);
        }
        return;
    }
    switch (m->step) {
    case ST_STOP:
        if (!nk_sim_node_up(m->s, 1)) {
            m->plan_wanted = true;
            enter(m, ST_INIT);
        }
        break;
    case ST_INIT:
        if (m->init_reported) {
            if (!nk_sim_node_up(m->s, 1)) {
                enter(m, ST_SERVE);
            }
        } else if (!nk_sim_node_up(m->s, 1)) {
            /* crashed at the failpoint */
            m->init_crashes++;
            /* Each crash source fires once per arm: the scripted init crash
             * plus at most six failpoints a swarm profile arms (seed 59 of
             * the wide pool hit four). More than that is init not finishing. */
            if (m->init_crashes > 8) {
                fail(m, NK_SIM_LIVENESS, "init crashed %u times", m->init_crashes);
                return;
            }
            enter(m, ST_PROBE);
        }
        break;
    case ST_PROBE:
        if (m->probe_reported && !nk_sim_node_up(m->s, 1)) {
            enter(m, ST_INIT);
        }
        break;
    case ST_SERVE:
        if (leads(m, 1)) {
            enter(m, after(m, ST_SERVE, ST_EXPAND));
        }
        break;
    case ST_EXPAND:
        if (!rollout_finished(m)) {
            break;
        }
        if (m->ro_rc == NK_OK && m->intr_armed) {
            fail(m, NK_SIM_SAFETY, "expand succeeded although its interruption (%s) %s", m->intr_fp,
                 m->broke ? "broke the stream" : "never fired");
        } else if (m->ro_rc == NK_OK) {
            nk_csim_world_set_members(m->cw, ((1u << m->stores) - 1u) << 1);
            enter(m, after(m, ST_EXPAND, ST_TRANSFER));
        } else if (m->intr_armed) {
            uint64_t hits = 0, fired = m->broke;
            if (m->interrupt != INTR_BREAK) {
                nk_sim_failpoint_stats(m->s, m->intr_fp, &hits, &fired);
            }
            if (fired == 0) {
                /* Under other faults (the swarm) an expand may fail before
                 * it reaches the armed point; the rerun still meets it. */
                if (rerun(m, ST_EXPAND, "expand (interruption not reached yet)")) {
                    return;
                }
                fail(m, NK_SIM_SAFETY, "expand failed before %s fired: %s: %s", m->intr_fp,
                     nk_errname(m->ro_rc), m->ro_msg);
                return;
            }
            m->intr_armed = false;
            enter(m, ST_RECOVER);
        } else if (!rerun(m, ST_EXPAND, "expand")) {
            fail(m, NK_SIM_SAFETY, "expand failed: %s: %s", nk_errname(m->ro_rc), m->ro_msg);
        }
        break;
    case ST_RECOVER:
        if (!nk_sim_node_up(m->s, 2)) {
            if (now - m->step_start >= 100 * NK_NSEC_PER_MSEC) {
                nk_sim_node_start(m->s, 2);
            }
            break;
        }
        if (target_clean(m, why, sizeof(why)) == NULL) {
            nk_sim_trace(m->s, "migration.recover n2 neither hosts nor knows region 1; "
                               "no ghost peer; retrying expand");
            enter(m, ST_EXPAND);
        }
        break;
    case ST_TRANSFER:
        if (!rollout_finished(m)) {
            break;
        }
        if (m->ro_rc != NK_OK) {
            if (!rerun(m, ST_TRANSFER, "transfer-leader")) {
                fail(m, NK_SIM_SAFETY, "transfer-leader failed: %s: %s", nk_errname(m->ro_rc),
                     m->ro_msg);
            }
            return;
        }
        enter(m, after(m, ST_TRANSFER, ST_REMOVE));
        break;
    case ST_REMOVE:
        if (m->ro != NULL && !rollout_finished(m)) {
            break;
        }
        if (m->ro_rc != NK_OK) {
            /* the seed may lead again (a flap): transfer first */
            if (!rerun(m, leads(m, 1) ? ST_TRANSFER : ST_REMOVE, "remove-peer")) {
                fail(m, NK_SIM_SAFETY, "remove-peer failed: %s: %s", nk_errname(m->ro_rc),
                     m->ro_msg);
            }
            return;
        }
        verify_final(m);
        break;
    }
}

static void poll_fire(nk_sim *s, void *arg)
{
    nk_msim_world *m = arg;
    (void)s;
    m->poll_queued = false;
    if (failed(m) || m->step == ST_IDLE || m->step == ST_DONE) {
        return;
    }
    advance(m);
    if (!failed(m) && m->step != ST_DONE) {
        poll_soon(m, 20 * NK_NSEC_PER_MSEC);
    }
}

static void poll_soon(nk_msim_world *m, uint64_t delay)
{
    if (!m->poll_queued) {
        m->poll_queued = true;
        nk_sim_at(m->s, nk_sim_now(m->s) + delay, "migration.poll", poll_fire, m);
    }
}

/* ---------------------------------------------------------- workload --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes < 2 || nodes > NK_CSIM_MAX_STORES) {
        return NULL;
    }
    nk_msim_world *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->cw = nk_sim_workload_cluster.world_new(s, res, nodes);
    if (m->cw == NULL) {
        free(m);
        return NULL;
    }
    m->s = s;
    m->res = res;
    m->stores = nodes;
    m->interrupt_point = 2; /* before_publish */
    m->last_step = ST_REMOVE;
    m->within_ns = 3 * NK_NSEC_PER_SEC;
    m->stage_timeout_ns = 8 * NK_NSEC_PER_SEC;
    m->alt = (nk_csim_alt){.start = nk_msim_node_start, .stop = nk_msim_node_stop, .ctx = m};
    nk_csim_opts *o = nk_csim_world_opts_mut(m->cw);
    o->alt = &m->alt;
    o->no_initial = true;
    m->phase[1] = NK_MSIM_STANDALONE;
    /* INCR also while n1 serves standalone (standalone-incr=off turns it
     * off): this found that the engine hid writes queued behind a stall
     * from point reads, so two INCRs returned the same value (seed 1, fixed
     * in nk_db_get; docs/simulation.md, `migration`). */
    snprintf(m->incr, sizeof(m->incr), "20");
    m->standalone_incr = true;
    nk_csim_world_set_members(m->cw, 2u); /* clients write to the standalone n1 */
    return m;
}

static int world_option(void *wp, const char *key, const char *value)
{
    nk_msim_world *m = wp;
    if (strcmp(key, "crash-init") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
            return NK_EINVAL;
        }
        m->crash_init = strcmp(value, "on") == 0;
        return NK_OK;
    }
    if (strcmp(key, "interrupt") == 0) {
        if (strcmp(value, "crash") == 0) {
            m->interrupt = NK_SIM_FP_CRASH;
        } else if (strcmp(value, "kill") == 0) {
            m->interrupt = NK_SIM_FP_KILL;
        } else if (strcmp(value, "break") == 0) {
            m->interrupt = INTR_BREAK;
        } else if (strcmp(value, "off") == 0) {
            m->interrupt = 0;
        } else {
            return NK_EINVAL;
        }
        return NK_OK;
    }
    if (strcmp(key, "interrupt-at") == 0) {
        for (int i = 0; i < 3; i++) {
            if (strcmp(value, install_points[i] + strlen("snapshot.install.")) == 0) {
                m->interrupt_point = i;
                return NK_OK;
            }
        }
        if (strcmp(value, "seed") == 0) {
            m->interrupt_point = -1;
            return NK_OK;
        }
        return NK_EINVAL;
    }
    if (strcmp(key, "incr") == 0) {
        int rc = nk_sim_workload_cluster.option(m->cw, key, value);
        if (rc == NK_OK) {
            snprintf(m->incr, sizeof(m->incr), "%s", value);
            rc = nk_sim_workload_cluster.option(m->cw, key, m->standalone_incr ? value : "0");
        }
        return rc;
    }
    if (strcmp(key, "standalone-incr") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
            return NK_EINVAL;
        }
        m->standalone_incr = strcmp(value, "on") == 0;
        return nk_sim_workload_cluster.option(m->cw, "incr", m->standalone_incr ? m->incr : "0");
    }
    if (strcmp(key, "bug") == 0 && strcmp(value, "skip-install-rollback") == 0) {
        nk_csim_world_opts_mut(m->cw)->bug_skip_install_rollback = true;
        return NK_OK;
    }
    if (strcmp(key, "until") == 0) {
        static const struct {
            const char *name;
            int step;
        } ends[] = {{"serve", ST_SERVE},
                    {"expand", ST_EXPAND},
                    {"transfer", ST_TRANSFER},
                    {"remove", ST_REMOVE}};
        for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
            if (strcmp(value, ends[i].name) == 0) {
                m->last_step = ends[i].step;
                return NK_OK;
            }
        }
        return NK_EINVAL;
    }
    if (strcmp(key, "stage-timeout") == 0) {
        return nk_sim_parse_duration(value, &m->stage_timeout_ns);
    }
    if (strcmp(key, "reruns") == 0) {
        char *end = NULL;
        unsigned long v = strtoul(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end != '\0' || v > 100) {
            return NK_EINVAL;
        }
        m->max_reruns = (unsigned)v;
        return NK_OK;
    }
    if (strcmp(key, "within") == 0) {
        int rc = nk_sim_parse_duration(value, &m->within_ns);
        if (rc != NK_OK) {
            return rc;
        }
    }
    return nk_sim_workload_cluster.option(m->cw, key, value);
}

static void *world_node_cfg(void *wp, uint32_t node)
{
    nk_msim_world *m = wp;
    if (!m->rnd_ready && m->s != NULL) {
        m->rnd_ready = true;
        nk_sim_rand_stream(m->s, "migration.operator", &m->rnd);
    }
    return nk_sim_workload_cluster.node_cfg(m->cw, node);
}

static int world_check(void *wp, const char *name, const char *args)
{
    nk_msim_world *m = wp;
    if (strcmp(name, "migrate") == 0) {
        if (m->step != ST_IDLE) {
            return NK_EINVAL;
        }
        enter(m, ST_STOP);
        poll_soon(m, 20 * NK_NSEC_PER_MSEC);
        return NK_OK;
    }
    if (strcmp(name, "dehosted") == 0) {
        /* the removed seed, restarted: stays dehosted, and no ghost */
        nk_store *s1 = store_of(m, 1);
        nk_region desc;
        uint8_t state = 0;
        uint32_t lead = current_leader(m, 0);
        const nk_region *lr = lead != 0 ? nk_store_region(store_of(m, lead), NK_CSIM_REGION) : NULL;
        if (m->step != ST_DONE || s1 == NULL || lr == NULL) {
            fail(m, NK_SIM_LIVENESS, "check dehosted: lifecycle at %s, n1 %s, leader n%u",
                 step_name(m->step), s1 != NULL ? "serving" : "not serving", lead);
        } else if (nk_store_region(s1, NK_CSIM_REGION) != NULL) {
            fail(m, NK_SIM_SAFETY, "the removed seed n1 hosts region 1 again after a restart");
        } else if (nk_store_region_meta(s1, NK_CSIM_REGION, &desc, &state) == NK_OK &&
                   state != NK_REGION_TOMBSTONE) {
            fail(m, NK_SIM_SAFETY, "the removed seed n1's LOCALMETA says region 1 is in state %u",
                 state);
        } else if (nk_region_peer_on_store(lr, 1) != NULL) {
            fail(m, NK_SIM_SAFETY, "ghost peer: leader n%u lists a peer on the removed store 1",
                 lead);
        } else {
            nk_sim_trace(m->s, "migration.dehosted n1 hosts nothing; leader n%u lists %u peers",
                         lead, lr->n_peers);
        }
        return NK_OK;
    }
    if (strcmp(name, "migrated") == 0) {
        if (m->step != ST_DONE && !failed(m)) {
            fail(m, NK_SIM_LIVENESS, "the lifecycle did not finish (at step %s for %" PRIu64 " ms)",
                 step_name(m->step), (nk_sim_now(m->s) - m->step_start) / NK_NSEC_PER_MSEC);
        }
        return NK_OK;
    }
    return nk_sim_workload_cluster.check(m->cw, name, args);
}

static void world_finish(void *wp)
{
    nk_msim_world *m = wp;
    nk_sim_workload_cluster.finish(m->cw);
    if (getenv("NOKV_SIM_MIGRATION_STATS") != NULL) {
        fprintf(stderr,
                "MIGRATIONSTATS step=%s init_runs=%u init_crash=%s expands=%u interrupt=%s "
                "rollouts=%" PRIu64 " reruns=%u\n",
                step_name(m->step), m->init_runs, m->init_fp[0] ? m->init_fp : "-", m->expands,
                m->intr_fp[0] ? m->intr_fp : "-", m->st_rollouts, m->reruns);
    }
}

static void world_free(void *wp)
{
    nk_msim_world *m = wp;
    if (m->ro != NULL) {
        nk_rollout_free(m->ro);
    }
    nk_sim_workload_cluster.world_free(m->cw);
    free(m);
}

const nk_sim_workload nk_sim_workload_migration = {
    .name = "migration",
    .app = &nk_csim_store_app,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
