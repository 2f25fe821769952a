/*
 * coord_wl.c - the `coord` workload: the coordinator under crashes.
 *
 * Node n1 runs the production coordinator service (nokv/coord/service.h) on
 * its simulated disk; every other node runs what a store runs against it:
 * the production client and reporter (nokv/coord/client.h), heartbeating,
 * reporting one region whose conf_version grows over time (the store's own
 * truth, kept by the world as localmeta would keep it across the store's
 * crashes), asking for its region back, and allocating IDs and timestamps
 * without pause. Scenarios crash the coordinator (power loss: unsynced
 * writes dropped or torn), also at the fence and catalog failpoints, crash
 * stores, and partition and flap links.
 *
 * The checker fails the run when:
 *   - an ID or a timestamp is answered twice (any overlap between answered
 *     ranges, across all clients and all coordinator restarts);
 *   - routing goes back: GetRegion answers an older conf_version than one it
 *     answered before, forgets a region it has answered, or answers a
 *     conf_version the store never reported;
 *   - `check progress`: a live store has had no allocation answered since
 *     the previous check, its reporter still holds reports, or it does not
 *     see the coordinator as up (liveness after the faults healed).
 *
 * `option bug=reply-before-fence` plants the bug the first check must catch:
 * the coordinator answers before its fence is durable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coord/client.h"
#include "nokv/coord/service.h"
#include "sim/scenario.h"
#include "sim/workload.h"

#define CW_MAX_NODES 8
#define CW_COORD 1u

typedef struct cw_world cw_world;

typedef struct cw_cfg {
    cw_world *w;
    uint32_t node;
} cw_cfg;

typedef struct cw_range {
    uint64_t first, end; /* [first, end) */
    uint32_t node;
} cw_range;

typedef struct cw_ranges {
    cw_range *v; /* sorted by first, never overlapping */
    size_t n, cap;
} cw_ranges;

typedef struct cw_app cw_app;

struct cw_world {
    nk_sim *s;
    nk_sim_result *res;
    uint32_t nodes;
    uint64_t interval_ns;
    bool bug;
    cw_cfg cfgs[CW_MAX_NODES + 1];
    cw_ranges ids, tss;
    uint64_t reported_conf[CW_MAX_NODES + 1]; /* the store's truth */
    uint64_t seen_conf[CW_MAX_NODES + 1];     /* newest conf_version answered */
    uint64_t allocs[CW_MAX_NODES + 1];        /* answered allocations */
    uint64_t allocs_at_check[CW_MAX_NODES + 1];
    uint64_t failures, lookups;
    cw_app *apps[CW_MAX_NODES + 1]; /* running apps, for checks */
};

struct cw_app {
    nk_rt *rt;
    cw_world *w;
    uint32_t self;
    nk_coord_service *svc; /* n1 */
    nk_coord_client *client;
    nk_coord_reporter *rep;
    nk_rand rand;
    uint64_t timer, ticks;
    int allocs_out;
    bool query_out;
};

/* ------------------------------------------------------------ checker --- */

static void record_range(cw_world *w, cw_ranges *rs, const char *what, uint32_t node,
                         uint64_t first, uint64_t count)
{
    uint64_t end = first + count;
    size_t lo = 0, hi = rs->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->v[mid].first < first) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    const cw_range *clash = NULL;
    if (lo > 0 && rs->v[lo - 1].end > first) {
        clash = &rs->v[lo - 1];
    } else if (lo < rs->n && rs->v[lo].first < end) {
        clash = &rs->v[lo];
    }
    if (clash != NULL) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "alloc: %s [%" PRIu64 ", %" PRIu64 ") answered to n%u overlaps [%" PRIu64
                    ", %" PRIu64 ") answered to n%u",
                    what, first, end, node, clash->first, clash->end, clash->node);
        return;
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 1024;
        cw_range *v = realloc(rs->v, cap * sizeof(*v));
        if (v == NULL) {
            return;
        }
        rs->v = v;
        rs->cap = cap;
    }
    memmove(rs->v + lo + 1, rs->v + lo, (rs->n - lo) * sizeof(*rs->v));
    rs->v[lo] = (cw_range){first, end, node};
    rs->n++;
}

/* ---------------------------------------------------------------- app --- */

static void alloc_done(cw_app *a, bool tso, int status, const nk_coord_resp *resp)
{
    if (status == NK_ESTOPPED) {
        return; /* the app is going away */
    }
    a->allocs_out--;
    if (status != NK_OK) {
        a->w->failures++;
        return; /* the next tick tries again */
    }
    a->w->allocs[a->self]++;
    record_range(a->w, tso ? &a->w->tss : &a->w->ids, tso ? "timestamps" : "ids", a->self,
                 resp->first, resp->count);
}

static void id_cb(void *arg, int status, const nk_coord_resp *resp)
{
    alloc_done(arg, false, status, resp);
}

static void ts_cb(void *arg, int status, const nk_coord_resp *resp)
{
    alloc_done(arg, true, status, resp);
}

static void lookup_cb(void *arg, int status, const nk_coord_resp *resp)
{
    cw_app *a = arg;
    if (status == NK_ESTOPPED) {
        return;
    }
    a->query_out = false;
    cw_world *w = a->w;
    uint32_t n = a->self;
    if (status == NK_ENOENT && w->seen_conf[n] > 0) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "routing: region %u was answered with conf_version %" PRIu64
                    " and is now unknown",
                    n, w->seen_conf[n]);
        return;
    }
    if (status != NK_OK) {
        return;
    }
    w->lookups++;
    uint64_t conf = resp->region.r.region.epoch.conf_version;
    if (conf < w->seen_conf[n]) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "routing: region %u went back to conf_version %" PRIu64 " after %" PRIu64
                    " was answered",
                    n, conf, w->seen_conf[n]);
        return;
    }
    if (conf > w->reported_conf[n]) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "routing: region %u answered with conf_version %" PRIu64
                    " that its store never reported (newest %" PRIu64 ")",
                    n, conf, w->reported_conf[n]);
        return;
    }
    w->seen_conf[n] = conf;
}

static void report_region(cw_app *a)
{
    cw_world *w = a->w;
    nk_coord_region_report rep;
    memset(&rep, 0, sizeof(rep));
    uint8_t start[2] = {'r', (uint8_t)a->self}, end[2] = {'r', (uint8_t)(a->self + 1)};
    nk_region_init_full(&rep.region, a->self);
    (void)nk_region_set_range(&rep.region, start, 2, end, 2);
    nk_region_peer p = {a->self, a->self * 100u + 1u, NK_RAFT_VOTER};
    (void)nk_region_peer_set(&rep.region, &p);
    rep.region.epoch.conf_version = w->reported_conf[a->self] + 1;
    rep.leader_peer_id = p.peer_id;
    rep.leader_store_id = a->self;
    rep.term = 1;
    if (nk_coord_reporter_report(a->rep, &rep) == NK_OK) {
        w->reported_conf[a->self] = rep.region.epoch.conf_version;
    }
}

static void tick(void *arg)
{
    cw_app *a = arg;
    a->timer = nk_rt_timer_start(a->rt, a->w->interval_ns, tick, a);
    a->ticks++;
    if (a->allocs_out < 2) {
        uint64_t count = 1 + nk_rand_below(&a->rand, 20);
        bool tso = nk_rand_chance(&a->rand, 1, 2);
        int rc = tso ? nk_coord_tso(a->client, count, ts_cb, a)
                     : nk_coord_alloc_id(a->client, count, id_cb, a);
        if (rc == NK_OK) {
            a->allocs_out++;
        }
    }
    if (a->ticks % 25 == 0) {
        report_region(a);
    }
    if (a->ticks % 10 == 0 && !a->query_out &&
        nk_coord_get_region(a->client, a->self, lookup_cb, a) == NK_OK) {
        a->query_out = true;
    }
}

static void coord_shutdown(void *arg)
{
    nk_coord_service_shutdown(arg);
}

static int cw_start(nk_rt *rt, void *cfgp, void **state)
{
    cw_cfg *cfg = cfgp;
    cw_world *w = cfg->w;
    cw_app *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->w = w;
    a->self = cfg->node;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc;
    if (a->self == CW_COORD) {
        nk_coord_service_config sc;
        memset(&sc, 0, sizeof(sc));
        sc.addr = "n1:2379";
        sc.workdir = "/coord";
        sc.window = 50; /* small: fences move often, so crashes hit them */
        sc.test_reply_before_fence = w->bug;
        rc = nk_coord_service_start(rt, &sc, &a->svc, &eb);
        if (rc != NK_OK) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "coordinator: recovery failed: %s", eb.msg);
            free(a);
            return rc;
        }
        nk_rt_set_shutdown_handler(rt, coord_shutdown, a->svc);
    } else {
        char self_addr[32];
        snprintf(self_addr, sizeof(self_addr), "n%u:20170", a->self);
        nk_coord_client_config cc;
        memset(&cc, 0, sizeof(cc));
        cc.addr = "n1:2379";
        cc.store_id = a->self;
        cc.self_addr = self_addr;
        cc.timeout_ns = NK_NSEC_PER_SEC;
        cc.backoff_max_ns = NK_NSEC_PER_SEC;
        rc = nk_coord_client_new(rt, &cc, &a->client, &eb);
        nk_coord_reporter_config rcfg;
        memset(&rcfg, 0, sizeof(rcfg));
        rcfg.store_id = a->self;
        rcfg.addr = self_addr;
        rcfg.interval_ns = 500 * NK_NSEC_PER_MSEC;
        if (rc == NK_OK) {
            rc = nk_coord_reporter_new(rt, a->client, &rcfg, &a->rep);
        }
        if (rc != NK_OK) {
            nk_coord_client_free(a->client);
            free(a);
            return rc;
        }
        nk_rt_rand_stream(rt, "coord.workload", &a->rand);
        report_region(a); /* a restarted store re-reports what it hosts */
        a->timer = nk_rt_timer_start(rt, w->interval_ns, tick, a);
    }
    w->apps[a->self] = a;
    *state = a;
    return NK_OK;
}

static void cw_stop(void *state, bool crashed)
{
    cw_app *a = state;
    (void)crashed;
    if (a->w->apps[a->self] == a) {
        a->w->apps[a->self] = NULL;
    }
    if (a->timer != 0) {
        (void)nk_rt_timer_cancel(a->rt, a->timer);
    }
    nk_coord_reporter_free(a->rep);
    nk_coord_client_free(a->client);
    nk_coord_service_free(a->svc);
    free(a);
}

static const nk_sim_app cw_app_def = {"coord", cw_start, cw_stop};

/* --------------------------------------------------------------- world --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes < 2 || nodes > CW_MAX_NODES) {
        return NULL;
    }
    cw_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->res = res;
    w->nodes = nodes;
    w->interval_ns = 20 * NK_NSEC_PER_MSEC;
    for (uint32_t i = 1; i <= nodes; i++) {
        w->cfgs[i] = (cw_cfg){w, i};
    }
    return w;
}

static int world_option(void *wp, const char *key, const char *value)
{
    cw_world *w = wp;
    if (strcmp(key, "interval") == 0) {
        return nk_sim_parse_duration(value, &w->interval_ns);
    }
    if (strcmp(key, "bug") == 0) {
        if (strcmp(value, "reply-before-fence") == 0) {
            w->bug = true;
            return NK_OK;
        }
        if (strcmp(value, "none") == 0) {
            w->bug = false;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static void *world_node_cfg(void *wp, uint32_t node)
{
    return &((cw_world *)wp)->cfgs[node];
}

static int world_check(void *wp, const char *name, const char *args)
{
    cw_world *w = wp;
    (void)args;
    if (strcmp(name, "progress") != 0) {
        return NK_EINVAL;
    }
    if (!nk_sim_node_up(w->s, CW_COORD)) {
        nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS, "progress: the coordinator is down");
        return NK_OK;
    }
    for (uint32_t n = 2; n <= w->nodes; n++) {
        cw_app *a = w->apps[n];
        if (a == NULL) {
            continue;
        }
        nk_coord_reporter_status st;
        nk_coord_reporter_status_get(a->rep, &st);
        if (w->allocs[n] == w->allocs_at_check[n]) {
            nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                        "progress: n%u had no allocation answered since the last check", n);
            return NK_OK;
        }
        if (!st.coordinator_up || st.reports_queued > 1) {
            nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                        "progress: n%u reporter: coordinator_up=%d, %zu reports queued", n,
                        st.coordinator_up, st.reports_queued);
            return NK_OK;
        }
        w->allocs_at_check[n] = w->allocs[n];
    }
    return NK_OK;
}

static void world_finish(void *wp)
{
    cw_world *w = wp;
    uint64_t allocs = 0;
    for (uint32_t n = 2; n <= w->nodes; n++) {
        allocs += w->allocs[n];
    }
    nk_sim_trace(w->s,
                 "coord.finish allocs=%" PRIu64 " id_ranges=%zu ts_ranges=%zu lookups=%" PRIu64
                 " failed_calls=%" PRIu64,
                 allocs, w->ids.n, w->tss.n, w->lookups, w->failures);
}

static void world_free(void *wp)
{
    cw_world *w = wp;
    free(w->ids.v);
    free(w->tss.v);
    free(w);
}

const nk_sim_workload nk_sim_workload_coord = {
    .name = "coord",
    .app = &cw_app_def,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
