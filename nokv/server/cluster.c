/* cluster.c - distributed-mode server lifecycle (see cluster.h). */
#include "nokv/server/cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coord/client.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/resp/server.h"
#include "nokv/server/cluster_backend.h"
#include "nokv/server/metrics.h"
#include "nokv/store/admin.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/store.h"
#include "nokv/store/workdir.h"

#define SEED_REGION 1
#define SEED_INDEX 5
#define SEED_TERM 5

#define WATCH_NS (200 * NK_NSEC_PER_MSEC)     /* leader/epoch change detection */
#define REFRESH_NS (10 * NK_NSEC_PER_SEC)     /* periodic report of led regions */
#define LOOKUP_RETRY_NS (1 * NK_NSEC_PER_SEC) /* after a failed GetStore */
#define MAX_WATCHED 256
#define MAX_LOOKUPS 64

/* What was last reported for a region this store leads. */
typedef struct watched {
    uint64_t region_id;
    bool leader;
    uint64_t term;
    nk_region_epoch epoch;
    uint64_t refreshed_ns;
} watched;

/* A GetStore in flight (or failed recently) for a store we could not dial. */
typedef struct lookup {
    struct nk_cluster *c;
    uint64_t store_id;
    bool in_flight;
    uint64_t next_try_ns;
    uint64_t failures; /* in a row; the log says the first and every 30th */
} lookup;

struct nk_cluster {
    nk_rt *rt;
    nk_cluster_config cfg;
    nk_workdir *wd;
    nk_db *db;
    nk_kvsm *kvsm;
    nk_store *store;
    nk_admin_service *admin;
    nk_cluster_backend *backend;
    nk_resp_server *server;
    nk_status_server *status; /* --metrics-addr (cluster_status below) */
    nk_coord_client *coord;
    nk_coord_reporter *reporter;
    uint64_t watch_timer;
    bool coord_up;
    bool coord_seen; /* a heartbeat outcome was logged at least once */
    watched watch[MAX_WATCHED];
    size_t n_watch;
    lookup lookups[MAX_LOOKUPS];
    size_t n_lookups;
    bool stopping;
    bool stopped;
    uint64_t transfer_deadline; /* shutdown: leadership hand-over deadline */
    int exit_status;
    char redis_addr[64];
};

int nk_cluster_parse_initial(const char *spec, nk_cluster_config *cfg, nk_errbuf *eb)
{
    cfg->n_initial = 0;
    const char *p = spec;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char item[160];
        if (len == 0 || len >= sizeof(item) || cfg->n_initial == NK_CLUSTER_MAX_INITIAL) {
            nk_errbuf_set(eb, "--initial-cluster: expected up to %u items ID=HOST:PORT, got '%s'",
                          NK_CLUSTER_MAX_INITIAL, spec);
            return NK_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        uint64_t id = 0;
        const char *q = item;
        while (eq != NULL && q < eq && *q >= '0' && *q <= '9' && id < UINT64_MAX / 10) {
            id = id * 10 + (uint64_t)(*q++ - '0');
        }
        if (eq == NULL || q != eq || id == 0 || eq[1] == '\0' ||
            strlen(eq + 1) >= sizeof(cfg->initial[0].addr)) {
            nk_errbuf_set(eb, "--initial-cluster: '%s' is not STORE_ID=HOST:PORT", item);
            return NK_EINVAL;
        }
        for (unsigned k = 0; k < cfg->n_initial; k++) {
            if (cfg->initial[k].store_id == id) {
                nk_errbuf_set(eb, "--initial-cluster: store %" PRIu64 " is listed twice", id);
                return NK_EINVAL;
            }
        }
        cfg->initial[cfg->n_initial].store_id = id;
        strcpy(cfg->initial[cfg->n_initial].addr, eq + 1);
        cfg->n_initial++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return NK_OK;
}

static void closed_flag(void *arg, int status)
{
    (void)status;
    *(bool *)arg = true;
}

/* ------------------------------------------------- coordinator wiring --- */

/* Store addresses the address book does not know yet (a store added after
 * this one started, that never dialled us): answer "unknown" now and ask
 * the coordinator in the background; raft retransmits, and the next send
 * finds the answer in the store's address book. */
static void got_store(void *arg, int status, const nk_coord_resp *resp)
{
    lookup *lk = arg;
    lk->in_flight = false;
    if (status == NK_ESTOPPED) {
        return;
    }
    nk_cluster *c = lk->c;
    if (status == NK_OK && resp->store.addr[0] != '\0' && c->store != NULL &&
        nk_store_set_address(c->store, lk->store_id, resp->store.addr) == NK_OK) {
        nk_log(c->rt, NK_LOG_INFO, "store %" PRIu64 ": store %" PRIu64 " is at %s (coordinator)",
               c->cfg.store_id, lk->store_id, resp->store.addr);
        lk->failures = 0;
        return;
    }
    lk->next_try_ns = nk_rt_now(c->rt) + LOOKUP_RETRY_NS;
    nk_log(c->rt, lk->failures++ % 30 == 0 ? NK_LOG_WARN : NK_LOG_DEBUG,
           "store %" PRIu64 ": no address for store %" PRIu64 " from the coordinator (%s%s%s); "
           "retrying in 1 s",
           c->cfg.store_id, lk->store_id, nk_errname(status), resp != NULL ? ": " : "",
           resp != NULL ? resp->msg : "");
}

static int resolve_via_coord(void *ctx, uint64_t store_id, char *addr, size_t cap)
{
    nk_cluster *c = ctx;
    (void)addr;
    (void)cap;
    if (c->coord == NULL || c->stopping) {
        return NK_ENOENT;
    }
    lookup *lk = NULL;
    for (size_t i = 0; i < c->n_lookups && lk == NULL; i++) {
        if (c->lookups[i].store_id == store_id) {
            lk = &c->lookups[i];
        }
    }
    if (lk == NULL) {
        if (c->n_lookups == MAX_LOOKUPS) {
            return NK_ENOENT;
        }
        lk = &c->lookups[c->n_lookups++];
        memset(lk, 0, sizeof(*lk));
        lk->c = c;
        lk->store_id = store_id;
    }
    if (lk->in_flight || nk_rt_now(c->rt) < lk->next_try_ns) {
        return NK_ENOENT;
    }
    if (nk_coord_get_store(c->coord, store_id, got_store, lk) == NK_OK) {
        lk->in_flight = true;
        nk_log(c->rt, NK_LOG_INFO,
               "store %" PRIu64 ": address of store %" PRIu64 " unknown; asking the coordinator",
               c->cfg.store_id, store_id);
    } else {
        lk->next_try_ns = nk_rt_now(c->rt) + LOOKUP_RETRY_NS;
    }
    return NK_ENOENT;
}

/* The report this store would send for region_id; false when the region
 * is not hosted. *leader says whether this store leads it. */
static bool fill_report_ok(nk_cluster *c, uint64_t region_id, nk_coord_region_report *rep,
                           bool *leader)
{
    const nk_raft *r = nk_store_raft(c->store, region_id);
    const nk_region *desc = nk_store_region(c->store, region_id);
    if (r == NULL || desc == NULL) {
        return false;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    memset(rep, 0, sizeof(*rep));
    rep->region = *desc;
    rep->term = st.term;
    rep->applied_index = nk_store_applied(c->store, region_id);
    *leader = st.role == NK_RAFT_LEADER;
    if (*leader) {
        rep->leader_peer_id = st.id;
        rep->leader_store_id = c->cfg.store_id;
    }
    return true;
}

static bool epoch_le(const nk_region_epoch *a, const nk_region_epoch *b)
{
    return a->version <= b->version && a->conf_version <= b->conf_version;
}

/* Keep one durable pending report per region: the newest. Older events for
 * the region are dropped (the coordinator would refuse them anyway). */
static void persist_report(nk_cluster *c, const nk_coord_region_report *rep)
{
    nk_buf b = {0};
    int rc = nk_coord_report_encode(rep, &b);
    uint64_t seq = 0;
    if (rc == NK_OK) {
        rc = nk_store_event_add(c->store, b.data, b.len, &seq);
    }
    nk_buf_free(&b);
    if (rc != NK_OK) {
        nk_log(c->rt, NK_LOG_WARN,
               "store %" PRIu64 ": region %" PRIu64 ": cannot keep its report in LOCALMETA (%s); "
               "it is queued in memory only",
               c->cfg.store_id, rep->region.id, nk_strerror(rc));
        return;
    }
    size_t n = 0;
    const nk_localmeta_event *ev = nk_store_events(c->store, &n);
    for (size_t i = 0; i < n; i++) {
        nk_coord_region_report old;
        if (ev[i].seq != seq && nk_coord_report_decode(ev[i].data, ev[i].len, &old) == NK_OK &&
            old.region.id == rep->region.id) {
            (void)nk_store_event_remove(c->store, ev[i].seq);
            ev = nk_store_events(c->store, &n);
            i = (size_t)-1; /* the list moved: rescan */
        }
    }
}

static watched *watch_of(nk_cluster *c, uint64_t region_id)
{
    for (size_t i = 0; i < c->n_watch; i++) {
        if (c->watch[i].region_id == region_id) {
            return &c->watch[i];
        }
    }
    if (c->n_watch == MAX_WATCHED) {
        return NULL;
    }
    watched *w = &c->watch[c->n_watch++];
    memset(w, 0, sizeof(*w));
    w->region_id = region_id;
    return w;
}

static void log_coord_state(nk_cluster *c)
{
    nk_coord_reporter_status st;
    nk_coord_reporter_status_get(c->reporter, &st);
    if (st.heartbeats_ok + st.heartbeats_failed == 0) {
        return;
    }
    if (c->coord_seen && st.coordinator_up == c->coord_up) {
        return;
    }
    bool first = !c->coord_seen;
    c->coord_seen = true;
    c->coord_up = st.coordinator_up;
    if (st.coordinator_up) {
        nk_log(c->rt, NK_LOG_INFO,
               "store %" PRIu64 ": coordinator %s %s; %zu region report(s) queued for it",
               c->cfg.store_id, c->cfg.coordinator_addr, first ? "reached" : "reachable again",
               st.reports_queued);
    } else {
        nk_log(c->rt, NK_LOG_WARN,
               "store %" PRIu64 ": coordinator %s unreachable (%s); still serving hosted regions, "
               "%zu region report(s) kept until it returns",
               c->cfg.store_id, c->cfg.coordinator_addr, nk_errname(st.last_error),
               st.reports_queued);
    }
}

/* Every WATCH_NS: report regions whose leadership came here or whose epoch
 * changed while led here (durably, so a restart re-delivers them), and
 * refresh every REFRESH_NS the regions we lead (in memory: the next
 * refresh replaces a lost one). */
static void watch_regions(void *arg)
{
    nk_cluster *c = arg;
    c->watch_timer = 0;
    if (c->stopping || c->store == NULL) {
        return;
    }
    log_coord_state(c);
    uint64_t ids[MAX_WATCHED];
    size_t n = nk_store_region_ids(c->store, ids, MAX_WATCHED);
    uint64_t now = nk_rt_now(c->rt);
    for (size_t i = 0; i < n && i < MAX_WATCHED; i++) {
        nk_coord_region_report rep;
        bool leader = false;
        if (!fill_report_ok(c, ids[i], &rep, &leader)) {
            continue;
        }
        watched *w = watch_of(c, ids[i]);
        if (w == NULL) {
            continue;
        }
        bool changed = leader && (!w->leader || w->term != rep.term ||
                                  w->epoch.version != rep.region.epoch.version ||
                                  w->epoch.conf_version != rep.region.epoch.conf_version);
        bool refresh = leader && !changed && now - w->refreshed_ns >= REFRESH_NS;
        w->leader = leader;
        w->term = rep.term;
        w->epoch = rep.region.epoch;
        if (!changed && !refresh) {
            continue;
        }
        w->refreshed_ns = now;
        if (changed) {
            nk_log(c->rt, NK_LOG_INFO,
                   "store %" PRIu64 ": region %" PRIu64 " led here (term %" PRIu64
                   ", epoch %" PRIu64 "/%" PRIu64 ", %u peers): reporting to the coordinator",
                   c->cfg.store_id, ids[i], rep.term, rep.region.epoch.version,
                   rep.region.epoch.conf_version, rep.region.n_peers);
            persist_report(c, &rep);
        }
        if (nk_coord_reporter_report(c->reporter, &rep) != NK_OK) {
            nk_log(c->rt, NK_LOG_WARN,
                   "store %" PRIu64 ": region %" PRIu64 ": report queue full; next refresh "
                   "retries",
                   c->cfg.store_id, ids[i]);
        }
    }
    c->watch_timer = nk_rt_timer_start(c->rt, WATCH_NS, watch_regions, c);
}

static void hb_stats(void *arg, nk_coord_store_hb *hb)
{
    nk_cluster *c = arg;
    uint64_t ids[MAX_WATCHED];
    size_t n = nk_store_region_ids(c->store, ids, MAX_WATCHED);
    hb->region_count = n;
    hb->leader_count = 0;
    for (size_t i = 0; i < n && i < MAX_WATCHED; i++) {
        const nk_raft *r = nk_store_raft(c->store, ids[i]);
        nk_raft_status st;
        if (r != NULL) {
            nk_raft_status_get(r, &st);
            hb->leader_count += st.role == NK_RAFT_LEADER;
        }
    }
}

/* The coordinator did not know us (new or wiped): report what we lead. */
static void full_report(void *arg)
{
    nk_cluster *c = arg;
    uint64_t ids[MAX_WATCHED];
    size_t n = nk_store_region_ids(c->store, ids, MAX_WATCHED);
    nk_log(c->rt, NK_LOG_INFO,
           "store %" PRIu64 ": registered with coordinator %s; reporting the regions led here",
           c->cfg.store_id, c->cfg.coordinator_addr);
    for (size_t i = 0; i < n && i < MAX_WATCHED; i++) {
        nk_coord_region_report rep;
        bool leader = false;
        if (fill_report_ok(c, ids[i], &rep, &leader) && leader) {
            (void)nk_coord_reporter_report(c->reporter, &rep);
        }
    }
}

/* Answered for good: forget LOCALMETA's copies that this answer covers
 * (same region, epoch and term not newer than the answered report). */
static void delivered(void *arg, const nk_coord_region_report *rep, bool accepted)
{
    nk_cluster *c = arg;
    if (c->store == NULL) {
        return;
    }
    size_t n = 0;
    const nk_localmeta_event *ev = nk_store_events(c->store, &n);
    for (size_t i = 0; i < n; i++) {
        nk_coord_region_report old;
        if (nk_coord_report_decode(ev[i].data, ev[i].len, &old) == NK_OK &&
            old.region.id == rep->region.id && epoch_le(&old.region.epoch, &rep->region.epoch) &&
            old.term <= rep->term) {
            if (nk_store_event_remove(c->store, ev[i].seq) != NK_OK) {
                break; /* LOCALMETA not writable: it stays pending, re-sent after restart */
            }
            nk_log(c->rt, NK_LOG_INFO,
                   "store %" PRIu64 ": region %" PRIu64 " report (term %" PRIu64 ", epoch %" PRIu64
                   "/%" PRIu64 ") %s by the coordinator",
                   c->cfg.store_id, old.region.id, old.term, old.region.epoch.version,
                   old.region.epoch.conf_version, accepted ? "accepted" : "superseded");
            ev = nk_store_events(c->store, &n);
            i = (size_t)-1;
        }
    }
}

static int coord_start(nk_cluster *c, nk_errbuf *eb)
{
    nk_coord_client_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.addr = c->cfg.coordinator_addr;
    cc.store_id = c->cfg.store_id;
    cc.self_addr = c->cfg.addr;
    int rc = nk_coord_client_new(c->rt, &cc, &c->coord, eb);
    if (rc != NK_OK) {
        return rc;
    }
    nk_coord_reporter_config rc2;
    memset(&rc2, 0, sizeof(rc2));
    rc2.store_id = c->cfg.store_id;
    rc2.addr = c->cfg.addr;
    rc2.stats = hb_stats;
    rc2.full_report = full_report;
    rc2.delivered = delivered;
    rc2.arg = c;
    rc = nk_coord_reporter_new(c->rt, c->coord, &rc2, &c->reporter);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot start the coordinator reporter: %s", nk_strerror(rc));
        return rc;
    }
    /* Reports a previous incarnation could not deliver go out first. */
    size_t n = 0;
    const nk_localmeta_event *ev = nk_store_events(c->store, &n);
    size_t requeued = 0;
    for (size_t i = 0; i < n; i++) {
        nk_coord_region_report rep;
        if (nk_coord_report_decode(ev[i].data, ev[i].len, &rep) == NK_OK &&
            nk_coord_reporter_report(c->reporter, &rep) == NK_OK) {
            requeued++;
        }
    }
    nk_log(c->rt, NK_LOG_INFO,
           "store %" PRIu64 ": coordinator %s; %zu undelivered report(s) from LOCALMETA queued",
           c->cfg.store_id, c->cfg.coordinator_addr, requeued);
    c->watch_timer = nk_rt_timer_start(c->rt, WATCH_NS, watch_regions, c);
    return NK_OK;
}

/* Stop talking to the coordinator: callbacks in flight complete with
 * NK_ESTOPPED here, before the store goes away. */
static void coord_stop(nk_cluster *c)
{
    if (c->watch_timer != 0) {
        (void)nk_rt_timer_cancel(c->rt, c->watch_timer);
        c->watch_timer = 0;
    }
    nk_coord_reporter_free(c->reporter);
    c->reporter = NULL;
    nk_coord_client_free(c->coord);
    c->coord = NULL;
}

/* Undo a partial start; the loop is not running yet. */
static void start_cleanup(nk_cluster *c)
{
    nk_status_server_free(c->status);
    coord_stop(c);
    nk_resp_server_free(c->server);
    nk_store_close(c->store);
    nk_admin_service_free(c->admin);
    nk_cluster_backend_free(c->backend);
    if (c->db != NULL) {
        bool closed = false;
        nk_db_close(c->db, closed_flag, &closed);
        for (int i = 0; i < 600000 && !closed; i++) {
            if (nk_rt_run_once(c->rt, 100 * NK_NSEC_PER_MSEC) == NK_ENOTSUP) {
                break;
            }
        }
    }
    nk_kvsm_free(c->kvsm); /* after the engine: its queued writes complete into it */
    nk_workdir_close(c->wd);
    free(c);
}

/* A standalone-mode workdir may become a store only while it holds no
 * database: data gets in through `nokv migrate`, never by accident. */
static int check_new_store(nk_rt *rt, const char *workdir, nk_errbuf *eb)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/CURRENT", workdir);
    nk_stat st;
    if (nk_rt_stat(rt, path, &st) == NK_OK) {
        nk_errbuf_set(eb,
                      "%s holds a standalone database; promote it first with "
                      "`nokv migrate plan --workdir %s` then `nokv migrate init ...`, or serve it "
                      "standalone with `nokv serve --workdir %s`",
                      workdir, workdir, workdir);
        return NK_EMODE;
    }
    return NK_OK;
}

/* /metrics: engine, RESP, store and raft families; /ready: every hosted
 * region has a leader, and the store is not draining. */
static void cluster_status_metrics(void *ctx, nk_metrics *m)
{
    nk_cluster *c = ctx;
    if (c->stopping) {
        return; /* the store and the engine are being closed */
    }
    nk_db_stats st;
    nk_db_get_stats(c->db, &st);
    nk_metrics_engine(m, &st);
    nk_metrics_resp(m, nk_resp_db_stats(nk_resp_server_db(c->server)),
                    nk_resp_server_connections(c->server));
    nk_metrics_resp_commands(m, nk_resp_server_db(c->server));
    nk_metrics_store(m, c->store);
    if (c->admin != NULL) {
        nk_admin_stats as;
        nk_admin_stats_get(c->admin, &as);
        nk_metrics_counter(m, "nokv_migration_snapshot_bytes_sent_total",
                           "Region snapshot bytes streamed out (migrate expand export).",
                           as.snapshot_bytes_sent);
        nk_metrics_counter(m, "nokv_migration_snapshot_bytes_received_total",
                           "Region snapshot bytes taken in (migrate expand import).",
                           as.snapshot_bytes_received);
    }
    nk_checkpoint cp;
    nk_errbuf ceb;
    nk_metrics_family(m, "nokv_migration_stage", "gauge",
                      "1 for the stage MIGRATION_PROGRESS.json records (absent: none).");
    if (nk_checkpoint_read(c->rt, c->cfg.workdir, &cp, &ceb) == NK_OK &&
        cp.stage != NK_STAGE_NONE) {
        char lab[96];
        snprintf(lab, sizeof(lab), "stage=\"%s\"", nk_stage_name(cp.stage));
        nk_metrics_sample(m, "nokv_migration_stage", lab, 1);
    }
}

static bool cluster_status_ready(void *ctx, char *why, size_t len)
{
    nk_cluster *c = ctx;
    if (c->stopping) {
        snprintf(why, len, "draining: shutting down");
        return false;
    }
    return nk_metrics_store_ready(c->store, why, len);
}

static int cluster_status_start(nk_cluster *c, nk_errbuf *eb)
{
    nk_status_source src = {c, "store", c->cfg.version, cluster_status_metrics,
                            cluster_status_ready};
    int rc = nk_status_server_start(c->rt, c->cfg.metrics_addr, &src, &c->status);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot listen on --metrics-addr %s: %s", c->cfg.metrics_addr,
                      nk_strerror(rc));
    }
    return rc;
}

int nk_cluster_metrics_addr(nk_cluster *c, char *buf, size_t len)
{
    return c->status != NULL ? nk_status_server_addr(c->status, buf, len) : NK_ENOENT;
}

int nk_cluster_start(nk_rt *rt, const nk_cluster_config *cfg, nk_cluster **out, nk_errbuf *eb)
{
    nk_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NK_ENOMEM;
    }
    c->rt = rt;
    c->cfg = *cfg;
    nk_workdir_options wo = {NK_MODE_BIT(NK_MODE_STANDALONE) | NK_MODE_BIT(NK_MODE_SEEDED) |
                                 NK_MODE_BIT(NK_MODE_CLUSTER),
                             true};
    int rc = nk_workdir_open(rt, cfg->workdir, &wo, &c->wd, eb);
    const nk_mode_state *mode = rc == NK_OK ? nk_workdir_mode(c->wd) : NULL;
    nk_mode start_mode = mode != NULL ? mode->mode : NK_MODE_STANDALONE;
    if (rc == NK_OK && mode->mode == NK_MODE_STANDALONE) {
        rc = check_new_store(rt, cfg->workdir, eb);
    }
    if (rc == NK_OK && mode->store_id != 0 && mode->store_id != cfg->store_id) {
        nk_errbuf_set(eb,
                      "%s is store %" PRIu64 " (MODE.json), not store %" PRIu64
                      "; start it with --store-id %" PRIu64,
                      cfg->workdir, mode->store_id, cfg->store_id, mode->store_id);
        rc = NK_EINVAL;
    }
    if (rc == NK_OK) {
        rc = nk_db_open(rt, cfg->workdir, &cfg->db, &c->db, eb);
    }
    if (rc == NK_OK) {
        rc = nk_kvsm_new(c->db, &c->kvsm);
    }
    if (rc == NK_OK) {
        nk_store_options so;
        nk_store_options_default(&so);
        so.workdir = cfg->workdir;
        so.store_id = cfg->store_id;
        so.listen_addr = cfg->addr;
        so.advertise_addr = cfg->addr;
        so.client_addr = cfg->redis_addr; /* so other stores can relay to us */
        so.sm = nk_kvsm_sm(c->kvsm);
        if (cfg->coordinator_addr != NULL) {
            so.resolve = resolve_via_coord;
            so.resolve_ctx = c;
        }
        so.compact_every = 0; /* engine snapshots (SST streams) come next */
        so.obs = cfg->obs;
        so.log = cfg->raftlog;
        if (cfg->tick_ns != 0) {
            so.tick_ns = cfg->tick_ns;
        }
        rc = nk_store_open(rt, &so, &c->store, eb);
    }
    for (unsigned i = 0; rc == NK_OK && i < cfg->n_initial; i++) {
        if (cfg->initial[i].store_id != cfg->store_id) {
            rc = nk_store_set_address(c->store, cfg->initial[i].store_id, cfg->initial[i].addr);
        }
    }
    if (rc == NK_OK && cfg->n_initial > 0) {
        nk_region desc;
        nk_region_init_full(&desc, SEED_REGION);
        bool member = false;
        for (unsigned i = 0; rc == NK_OK && i < cfg->n_initial; i++) {
            nk_region_peer p = {.store_id = cfg->initial[i].store_id,
                                .peer_id = cfg->initial[i].store_id,
                                .role = NK_RAFT_VOTER};
            member |= p.store_id == cfg->store_id;
            rc = nk_region_peer_set(&desc, &p);
        }
        if (rc == NK_OK && !member) {
            nk_errbuf_set(eb, "--initial-cluster does not list this store (%" PRIu64 ")",
                          cfg->store_id);
            rc = NK_EINVAL;
        }
        if (rc == NK_OK) {
            rc = nk_store_seed_region(c->store, &desc, SEED_INDEX, SEED_TERM, eb);
            if (rc == NK_EEXIST) {
                rc = NK_OK; /* founded before: the store knows region 1 already */
            }
        }
    }
    if (rc == NK_OK) {
        rc = nk_admin_service_new_ex(rt, c->store, c->db, c->kvsm, cfg->workdir,
                                     cfg->unsafe_skip_install_rollback, &c->admin);
        if (rc == NK_OK) {
            nk_store_service svc = nk_admin_service_desc(c->admin);
            nk_store_set_admin_service(c->store, &svc);
        }
    }
    if (rc == NK_OK && cfg->coordinator_addr != NULL) {
        rc = coord_start(c, eb);
    }
    bool joining = false;
    if (rc == NK_OK && nk_store_region(c->store, SEED_REGION) == NULL) {
        /* A new store: it registers with the coordinator when there is one
         * (so the others can resolve its address) and gets its replica from
         * `nokv migrate expand` (an import through the admin service) or
         * when a leader adds a peer here. */
        joining = true;
    }
    if (rc == NK_OK) {
        rc = nk_cluster_backend_new(rt, c->store, c->kvsm, c->db, SEED_REGION, 0, &c->backend);
    }
    if (rc == NK_OK && cfg->unsafe_ack_on_propose) {
        nk_cluster_backend_set_unsafe_ack_on_propose(c->backend, true);
    }
    if (rc == NK_OK) {
        nk_resp_server_options ro;
        memset(&ro, 0, sizeof(ro));
        ro.db.sync_policy = "raft";
        ro.db.version = cfg->version;
        rc = nk_resp_server_start(rt, cfg->redis_addr, nk_cluster_backend_kv(c->backend), &ro,
                                  &c->server);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot listen on %s: %s", cfg->redis_addr, nk_strerror(rc));
        }
    }
    if (rc == NK_OK && mode->mode != NK_MODE_CLUSTER) {
        nk_mode_state ms = *mode;
        ms.mode = NK_MODE_CLUSTER;
        ms.store_id = cfg->store_id;
        if (ms.region_id == 0) {
            ms.region_id = SEED_REGION;
        }
        rc = nk_workdir_set_mode(c->wd, &ms, eb);
    }
    if (rc == NK_OK && cfg->metrics_addr != NULL) {
        rc = cluster_status_start(c, eb);
    }
    if (rc != NK_OK) {
        start_cleanup(c);
        return rc;
    }
    nk_resp_server_addr(c->server, c->redis_addr, sizeof(c->redis_addr));
    /* One line saying which start-up path the on-disk state chose, and why
     * (operators ask "did it join, found, or restart?"). */
    nk_log(rt, NK_LOG_INFO, "store %" PRIu64 ": path %s (workdir %s was mode %s%s)", cfg->store_id,
           start_mode == NK_MODE_CLUSTER  ? "restart"
           : start_mode == NK_MODE_SEEDED ? "first start of a migrated seed"
           : joining                      ? "join an existing cluster"
                                          : "found a new cluster",
           cfg->workdir, nk_mode_name(start_mode),
           start_mode == NK_MODE_CLUSTER  ? ": its LOCALMETA and raft log decide"
           : start_mode == NK_MODE_SEEDED ? ", written by `nokv migrate init`"
           : joining ? ", empty, no --initial-cluster: wait to be added as a peer"
                     : ", empty; --initial-cluster lists the founders");
    if (c->status != NULL) {
        char maddr[64] = "";
        (void)nk_status_server_addr(c->status, maddr, sizeof(maddr));
        nk_log(rt, NK_LOG_INFO, "metrics, health and readiness on http://%s/", maddr);
    }
    if (joining) {
        nk_log(rt, NK_LOG_INFO,
               "store %" PRIu64 ": new store, hosts no region yet (waiting for `nokv migrate "
               "expand` or to be added as a peer); "
               "raft on %s, RESP on %s, workdir %s",
               cfg->store_id, cfg->addr, c->redis_addr, cfg->workdir);
    } else {
        nk_log(rt, NK_LOG_INFO,
               "store %" PRIu64 ": serving region %d; raft on %s, RESP on %s, workdir %s",
               cfg->store_id, SEED_REGION, cfg->addr, c->redis_addr, cfg->workdir);
    }
    *out = c;
    return NK_OK;
}

int nk_cluster_redis_addr(nk_cluster *c, char *buf, size_t len)
{
    return nk_resp_server_addr(c->server, buf, len);
}

static void db_closed(void *arg, int status)
{
    nk_cluster *c = arg;
    c->db = NULL;
    nk_kvsm_free(c->kvsm); /* the engine's last queued writes completed into it */
    c->kvsm = NULL;
    nk_workdir_close(c->wd);
    c->wd = NULL;
    c->stopped = true;
    nk_status_server_free(c->status); /* answered "draining" until now */
    c->status = NULL;
    if (status != NK_OK && c->exit_status == NK_OK) {
        c->exit_status = status;
    }
    nk_log(c->rt, status == NK_OK ? NK_LOG_INFO : NK_LOG_ERROR, "engine closed: %s",
           nk_strerror(status));
    nk_rt_stop(c->rt);
}

static void close_store_when_idle(void *arg)
{
    nk_cluster *c = arg;
    if (nk_store_busy(c->store)) {
        /* A raft log sync runs on a worker thread: let it finish first. */
        (void)nk_rt_timer_start(c->rt, 2 * NK_NSEC_PER_MSEC, close_store_when_idle, c);
        return;
    }
    nk_store_close(c->store);
    c->store = NULL;
    nk_admin_service_free(c->admin);
    c->admin = NULL;
    nk_db_stats ds;
    nk_db_get_stats(c->db, &ds);
    nk_log(c->rt, NK_LOG_INFO, "engine: writes=%" PRIu64 " wal syncs=%" PRIu64 " flushes=%" PRIu64,
           ds.writes, ds.syncs, ds.flushes);
    nk_cluster_backend_free(c->backend);
    c->backend = NULL;
    nk_kvsm_set_applied_hook(c->kvsm, NULL, NULL);
    nk_db_close(c->db, db_closed, c);
}

/* The caught-up voter to hand leadership to before stopping (0: none). */
static uint64_t transfer_target(nk_cluster *c)
{
    const nk_raft *r = nk_store_raft(c->store, SEED_REGION);
    if (r == NULL) {
        return 0;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    if (st.role != NK_RAFT_LEADER) {
        return 0;
    }
    uint64_t best = 0, best_match = 0;
    for (uint32_t k = 0; k < st.conf.n; k++) {
        const nk_raft_member *m = &st.conf.m[k];
        uint64_t match = 0, next = 0;
        int state = 0;
        if (m->id == st.id || m->role != NK_RAFT_VOTER ||
            nk_raft_progress_get(r, m->id, &match, &next, &state) != NK_OK) {
            continue;
        }
        if (best == 0 || match > best_match) {
            best = m->id;
            best_match = match;
        }
    }
    return best;
}

static void finish_shutdown(nk_cluster *c)
{
    coord_stop(c);
    nk_store_quiesce(c->store);
    close_store_when_idle(c);
}

/* Leadership is being handed over: wait (bounded) until it moved. */
static void transfer_wait(void *arg)
{
    nk_cluster *c = arg;
    const nk_raft *r = nk_store_raft(c->store, SEED_REGION);
    nk_raft_status st;
    bool leading = false;
    if (r != NULL) {
        nk_raft_status_get(r, &st);
        leading = st.role == NK_RAFT_LEADER;
    }
    uint64_t now = nk_rt_now(c->rt);
    if (leading && now < c->transfer_deadline) {
        (void)nk_rt_timer_start(c->rt, 10 * NK_NSEC_PER_MSEC, transfer_wait, c);
        return;
    }
    nk_log(c->rt, leading ? NK_LOG_WARN : NK_LOG_INFO,
           leading ? "shutdown: leadership did not move within 2 s; stopping anyway (the others "
                     "elect a leader after an election timeout)"
                   : "shutdown: leadership handed over");
    finish_shutdown(c);
}

void nk_cluster_shutdown(nk_cluster *c)
{
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    nk_log(c->rt, NK_LOG_INFO, "shutting down: closing connections, the store and the engine");
    nk_resp_server_free(c->server);
    c->server = NULL;
    /* A leader hands its regions to a caught-up voter first, so clients see
     * a leader change instead of an election timeout's worth of errors. */
    uint64_t target = transfer_target(c);
    if (target != 0 && nk_store_transfer_leader(c->store, SEED_REGION, target) == NK_OK) {
        nk_log(c->rt, NK_LOG_INFO, "shutdown: handing leadership of region %d to peer %" PRIu64,
               SEED_REGION, target);
        c->transfer_deadline = nk_rt_now(c->rt) + 2 * NK_NSEC_PER_SEC;
        (void)nk_rt_timer_start(c->rt, 10 * NK_NSEC_PER_MSEC, transfer_wait, c);
        return;
    }
    finish_shutdown(c);
}

int nk_cluster_exit_status(const nk_cluster *c)
{
    return c->stopped ? c->exit_status : NK_EAGAIN;
}

void nk_cluster_free(nk_cluster *c)
{
    if (c == NULL) {
        return;
    }
    nk_status_server_free(c->status);
    coord_stop(c);
    nk_resp_server_free(c->server);
    nk_store_close(c->store);
    nk_admin_service_free(c->admin);
    nk_cluster_backend_free(c->backend);
    if (c->db != NULL) {
        nk_db_abandon(c->db);
        nk_kvsm_abandon(c->kvsm); /* no engine callback will come any more */
    } else {
        nk_kvsm_free(c->kvsm);
    }
    nk_workdir_close(c->wd);
    free(c);
}

void nk_cluster_abandon(nk_cluster *c)
{
    nk_workdir *wd = c->wd;
    c->wd = NULL;
    nk_cluster_free(c);
    nk_workdir_abandon(wd);
}

nk_store *nk_cluster_store(nk_cluster *c)
{
    return c->store;
}

nk_db *nk_cluster_db(nk_cluster *c)
{
    return c->db;
}

nk_kvsm *nk_cluster_kvsm(nk_cluster *c)
{
    return c->kvsm;
}

nk_kv_backend *nk_cluster_kv(nk_cluster *c)
{
    return c->backend != NULL ? nk_cluster_backend_kv(c->backend) : NULL;
}
