/* metrics.c - Prometheus families and the status endpoint (see metrics.h). */
#include "nokv/server/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coord/service.h"
#include "nokv/store/store.h"

/* Regions reported per scrape: a bound, so a scrape stays small. */
#define MAX_REGIONS 4096

/* ------------------------------------------------------- text writer --- */

void nk_metrics_family(nk_metrics *m, const char *name, const char *type, const char *help)
{
    nk_http_body_printf(m->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void nk_metrics_sample(nk_metrics *m, const char *name, const char *labels, uint64_t value)
{
    if (labels != NULL && labels[0] != '\0') {
        nk_http_body_printf(m->out, "%s{%s} %" PRIu64 "\n", name, labels, value);
    } else {
        nk_http_body_printf(m->out, "%s %" PRIu64 "\n", name, value);
    }
}

void nk_metrics_sample_f(nk_metrics *m, const char *name, const char *labels, double value)
{
    if (labels != NULL && labels[0] != '\0') {
        nk_http_body_printf(m->out, "%s{%s} %.3f\n", name, labels, value);
    } else {
        nk_http_body_printf(m->out, "%s %.3f\n", name, value);
    }
}

void nk_metrics_counter(nk_metrics *m, const char *name, const char *help, uint64_t value)
{
    nk_metrics_family(m, name, "counter", help);
    nk_metrics_sample(m, name, NULL, value);
}

void nk_metrics_gauge(nk_metrics *m, const char *name, const char *help, uint64_t value)
{
    nk_metrics_family(m, name, "gauge", help);
    nk_metrics_sample(m, name, NULL, value);
}

void nk_metrics_escape(const char *in, char *buf, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p != '\0' && o + 3 <= cap; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    if (cap > 0) {
        buf[o < cap ? o : cap - 1] = '\0';
    }
}

/* ---------------------------------------------------------- collectors --- */

void nk_metrics_engine(nk_metrics *m, const nk_db_stats *st)
{
    nk_metrics_counter(m, "nokv_engine_writes_total", "Write batches applied to the engine.",
                       st->writes);
    nk_metrics_counter(m, "nokv_engine_write_bytes_total",
                       "Bytes of keys and values written to the engine.", st->write_bytes);
    nk_metrics_counter(m, "nokv_engine_wal_syncs_total", "WAL fsyncs.", st->syncs);
    nk_metrics_counter(m, "nokv_engine_flushes_total", "Memtables flushed to level-0 tables.",
                       st->flushes);
    nk_metrics_counter(m, "nokv_engine_compactions_total", "Compactions finished.",
                       st->compactions);
    nk_metrics_counter(m, "nokv_engine_compaction_read_bytes_total",
                       "Table bytes read by compactions.", st->compaction_bytes_in);
    nk_metrics_counter(m, "nokv_engine_compaction_write_bytes_total",
                       "Table bytes written by compactions.", st->compaction_bytes_out);
    nk_metrics_family(m, "nokv_engine_stalls_total", "counter",
                      "Writes delayed (slowdown) or stopped (stop) by level-0 or memtable "
                      "pressure.");
    nk_metrics_sample(m, "nokv_engine_stalls_total", "kind=\"slowdown\"", st->stalls_slowdown);
    nk_metrics_sample(m, "nokv_engine_stalls_total", "kind=\"stop\"", st->stalls_stop);
    nk_metrics_counter(m, "nokv_engine_cache_hits_total", "Block cache hits.", st->cache_hits);
    nk_metrics_counter(m, "nokv_engine_cache_misses_total", "Block cache misses.",
                       st->cache_misses);
    nk_metrics_gauge(m, "nokv_engine_cache_bytes", "Bytes held by the block cache.",
                     st->cache_bytes);
    nk_metrics_gauge(m, "nokv_engine_memtable_bytes", "Bytes in the active memtable.",
                     st->memtable_bytes);
    nk_metrics_gauge(m, "nokv_engine_immutable_memtables", "Memtables waiting to be flushed.",
                     st->immutables);
    nk_metrics_family(m, "nokv_engine_level_files", "gauge", "Table files per LSM level.");
    char lab[32];
    for (int l = 0; l < 7; l++) {
        snprintf(lab, sizeof(lab), "level=\"%d\"", l);
        nk_metrics_sample(m, "nokv_engine_level_files", lab, st->files[l]);
    }
    nk_metrics_family(m, "nokv_engine_level_bytes", "gauge", "Table bytes per LSM level.");
    for (int l = 0; l < 7; l++) {
        snprintf(lab, sizeof(lab), "level=\"%d\"", l);
        nk_metrics_sample(m, "nokv_engine_level_bytes", lab, st->level_bytes[l]);
    }
    nk_metrics_gauge(m, "nokv_engine_last_sequence", "Last sequence number assigned.",
                     st->last_seq);
    nk_metrics_gauge(m, "nokv_engine_background_error", "1 when a background error stopped writes.",
                     st->background_error != 0);
    nk_metrics_gauge(m, "nokv_engine_disk_full", "1 while writes are refused for lack of space.",
                     st->nospace);
    nk_metrics_counter(m, "nokv_engine_disk_full_events_total", "Times the disk was found full.",
                       st->nospace_events);
}

void nk_metrics_resp_commands(nk_metrics *m, const nk_resp_db *db)
{
    const char *name;
    uint64_t calls, errors;
    nk_metrics_family(m, "nokv_resp_command_calls_total", "counter",
                      "Requests per Redis command (commands called at least once).");
    for (size_t i = 0; nk_resp_db_command_stats(db, i, &name, &calls, &errors); i++) {
        if (calls > 0) {
            char lab[64];
            snprintf(lab, sizeof(lab), "cmd=\"%s\"", name);
            nk_metrics_sample(m, "nokv_resp_command_calls_total", lab, calls);
        }
    }
    nk_metrics_family(m, "nokv_resp_command_errors_total", "counter",
                      "Error replies per Redis command (commands called at least once).");
    for (size_t i = 0; nk_resp_db_command_stats(db, i, &name, &calls, &errors); i++) {
        if (calls > 0) {
            char lab[64];
            snprintf(lab, sizeof(lab), "cmd=\"%s\"", name);
            nk_metrics_sample(m, "nokv_resp_command_errors_total", lab, errors);
        }
    }
}

void nk_metrics_resp(nk_metrics *m, const nk_resp_stats *st, size_t connections)
{
    nk_metrics_gauge(m, "nokv_resp_connections", "Open Redis-protocol client connections.",
                     connections);
    nk_metrics_counter(m, "nokv_resp_connections_received_total", "Client connections accepted.",
                       st->connections_received);
    nk_metrics_counter(m, "nokv_resp_connections_rejected_total",
                       "Client connections refused over the client limit.",
                       st->connections_rejected);
    nk_metrics_counter(m, "nokv_resp_output_limit_disconnects_total",
                       "Clients closed because they stopped reading replies.",
                       st->output_limit_disconnects);
    nk_metrics_counter(m, "nokv_resp_protocol_errors_total",
                       "Connections closed for malformed requests.", st->protocol_errors);
    nk_metrics_counter(m, "nokv_resp_commands_total", "Commands executed.", st->commands_processed);
    nk_metrics_counter(m, "nokv_resp_errors_total", "Error replies sent.", st->error_replies);
    nk_metrics_counter(m, "nokv_resp_net_input_bytes_total", "Bytes received from clients.",
                       st->net_input_bytes);
    nk_metrics_counter(m, "nokv_resp_net_output_bytes_total", "Bytes sent to clients.",
                       st->net_output_bytes);
    nk_metrics_family(m, "nokv_resp_keyspace_lookups_total", "counter",
                      "Key lookups that found (hit) or missed (miss) the key.");
    nk_metrics_sample(m, "nokv_resp_keyspace_lookups_total", "result=\"hit\"", st->keyspace_hits);
    nk_metrics_sample(m, "nokv_resp_keyspace_lookups_total", "result=\"miss\"",
                      st->keyspace_misses);
    nk_metrics_counter(m, "nokv_resp_expired_keys_total", "Keys removed because they expired.",
                       st->expired_keys);
    nk_metrics_counter(m, "nokv_resp_writes_total", "Writes submitted to the backend.",
                       st->writes_submitted);
    nk_metrics_gauge(m, "nokv_resp_writes_pending", "Writes waiting for durability.",
                     st->writes_pending);
    nk_metrics_counter(m, "nokv_resp_write_errors_total", "Writes that failed.", st->write_errors);
}

typedef struct region_view {
    uint64_t id;
    bool have_raft;
    nk_raft_status rs;
    uint64_t applied;
    const nk_region *desc;
} region_view;

static size_t collect_regions(const nk_store *s, region_view **out)
{
    static uint64_t ids[MAX_REGIONS]; /* loop thread only */
    size_t n = nk_store_region_ids(s, ids, MAX_REGIONS);
    if (n > MAX_REGIONS) {
        n = MAX_REGIONS;
    }
    region_view *v = n > 0 ? calloc(n, sizeof(*v)) : NULL;
    if (v == NULL) {
        *out = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].id = ids[i];
        const nk_raft *r = nk_store_raft(s, ids[i]);
        if (r != NULL) {
            v[i].have_raft = true;
            nk_raft_status_get(r, &v[i].rs);
        }
        v[i].applied = nk_store_applied(s, ids[i]);
        v[i].desc = nk_store_region(s, ids[i]);
    }
    *out = v;
    return n;
}

void nk_metrics_store(nk_metrics *m, const nk_store *s)
{
    region_view *v = NULL;
    size_t n = collect_regions(s, &v);
    size_t led = 0;
    for (size_t i = 0; i < n; i++) {
        led += v[i].have_raft && v[i].rs.role == NK_RAFT_LEADER;
    }
    nk_metrics_gauge(m, "nokv_store_id", "This store's id.", nk_store_id(s));
    nk_metrics_gauge(m, "nokv_store_failed", "1 when the store stopped on a local error.",
                     nk_store_failed(s));
    nk_metrics_gauge(m, "nokv_store_regions", "Regions hosted by this store.", n);
    nk_metrics_gauge(m, "nokv_store_regions_led", "Regions this store leads.", led);
    nk_metrics_gauge(m, "nokv_store_raft_log_sync_in_flight", "1 while a raft log batch sync runs.",
                     nk_store_busy(s));
    nk_store_stats ss;
    nk_store_stats_get(s, &ss);
    nk_metrics_counter(m, "nokv_raft_proposals_total", "Commands proposed by leader peers here.",
                       ss.proposals);
    nk_metrics_counter(m, "nokv_raft_leader_changes_total",
                       "Times a peer on this store became leader.", ss.leader_changes);
    nk_metrics_counter(m, "nokv_raft_entries_applied_total",
                       "Committed entries applied, every region.", ss.entries_applied);
    nk_metrics_counter(m, "nokv_raft_snapshots_sent_total", "Raft snapshot messages sent.",
                       ss.snapshots_sent);
    nk_metrics_counter(m, "nokv_raft_snapshots_installed_total", "Raft snapshots installed.",
                       ss.snapshots_installed);
    nk_metrics_counter(m, "nokv_raft_log_syncs_total",
                       "Store-wide raft log batch fsyncs (one per batch of Readys).",
                       ss.raft_log_syncs);
    nk_metrics_gauge(m, "nokv_raft_log_bytes", "Bytes in the raft log's segment files.",
                     ss.raft_log_bytes);
    static const struct {
        const char *name, *help;
        int field;
    } fams[] = {
        {"nokv_raft_term", "Current raft term of the region's peer.", 0},
        {"nokv_raft_is_leader", "1 when this peer leads the region.", 1},
        {"nokv_raft_leader_peer", "Peer id of the known leader (0 = none).", 2},
        {"nokv_raft_commit_index", "Highest log index known committed.", 3},
        {"nokv_raft_applied_index", "Highest log index applied to the state machine.", 4},
        {"nokv_raft_last_index", "Last log index held.", 5},
        {"nokv_raft_apply_lag", "Committed entries not yet applied.", 6},
        {"nokv_raft_voters", "Voters in the region's configuration.", 7},
        {"nokv_raft_learners", "Learners in the region's configuration.", 8},
        {"nokv_region_epoch_version", "Region epoch version (splits, merges).", 9},
        {"nokv_region_conf_version", "Region epoch conf version (membership changes).", 10},
    };
    /* The role as a state set: one series per role, 1 for the current one,
     * so an election changes values, never the set of series. */
    static const int roles[] = {NK_RAFT_FOLLOWER, NK_RAFT_PRE_CANDIDATE, NK_RAFT_CANDIDATE,
                                NK_RAFT_LEADER};
    nk_metrics_family(m, "nokv_raft_role", "gauge",
                      "1 for the role the region's peer has now (failed: no raft).");
    for (size_t i = 0; i < n; i++) {
        char lab[96];
        for (size_t k = 0; k < sizeof(roles) / sizeof(roles[0]); k++) {
            snprintf(lab, sizeof(lab), "region=\"%" PRIu64 "\",role=\"%s\"", v[i].id,
                     nk_raft_role_name(roles[k]));
            nk_metrics_sample(m, "nokv_raft_role", lab, v[i].have_raft && v[i].rs.role == roles[k]);
        }
        snprintf(lab, sizeof(lab), "region=\"%" PRIu64 "\",role=\"failed\"", v[i].id);
        nk_metrics_sample(m, "nokv_raft_role", lab, !v[i].have_raft);
    }
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        nk_metrics_family(m, fams[f].name, "gauge", fams[f].help);
        for (size_t i = 0; i < n; i++) {
            const region_view *r = &v[i];
            /* region only: a role label would start a new series at every
             * election */
            char lab[48];
            snprintf(lab, sizeof(lab), "region=\"%" PRIu64 "\"", r->id);
            uint64_t val = 0;
            uint32_t voters = 0, learners = 0;
            if (r->have_raft) {
                for (uint32_t k = 0; k < r->rs.conf.n; k++) {
                    voters += r->rs.conf.m[k].role == NK_RAFT_VOTER;
                    learners += r->rs.conf.m[k].role == NK_RAFT_LEARNER;
                }
            }
            switch (fams[f].field) {
            case 0:
                val = r->rs.term;
                break;
            case 1:
                val = r->have_raft && r->rs.role == NK_RAFT_LEADER;
                break;
            case 2:
                val = r->rs.lead;
                break;
            case 3:
                val = r->rs.commit;
                break;
            case 4:
                val = r->applied;
                break;
            case 5:
                val = r->rs.last_index;
                break;
            case 6:
                val = r->rs.commit > r->applied ? r->rs.commit - r->applied : 0;
                break;
            case 7:
                val = voters;
                break;
            case 8:
                val = learners;
                break;
            case 9:
                val = r->desc != NULL ? r->desc->epoch.version : 0;
                break;
            default:
                val = r->desc != NULL ? r->desc->epoch.conf_version : 0;
                break;
            }
            nk_metrics_sample(m, fams[f].name, lab, val);
        }
    }
    free(v);
}

bool nk_metrics_store_ready(const nk_store *s, char *why, size_t len)
{
    if (nk_store_failed(s)) {
        snprintf(why, len, "store %" PRIu64 " failed (see the log)", nk_store_id(s));
        return false;
    }
    region_view *v = NULL;
    size_t n = collect_regions(s, &v);
    bool ok = true;
    if (n == 0) {
        /* a joining store: nothing to serve until it is added as a peer */
        snprintf(why, len, "store %" PRIu64 " hosts no region yet (waiting to be added)",
                 nk_store_id(s));
        ok = false;
    }
    for (size_t i = 0; i < n && ok; i++) {
        if (!v[i].have_raft) {
            snprintf(why, len, "region %" PRIu64 " failed on this store", v[i].id);
            ok = false;
        } else if (v[i].rs.lead == 0) {
            snprintf(why, len, "region %" PRIu64 " has no leader (term %" PRIu64 ")", v[i].id,
                     v[i].rs.term);
            ok = false;
        }
    }
    free(v);
    return ok;
}

void nk_metrics_coord(nk_metrics *m, nk_coord_service *s)
{
    nk_coord_service_stats st;
    nk_coord_service_stats_get(s, &st);
    nk_metrics_gauge(m, "nokv_coord_stores", "Stores registered.", st.stores);
    nk_metrics_gauge(m, "nokv_coord_stores_alive", "Registered stores whose heartbeat is fresh.",
                     st.stores_alive);
    nk_metrics_gauge(m, "nokv_coord_regions", "Regions in the routing catalog.", st.regions);
    nk_metrics_gauge(m, "nokv_coord_connections", "Open client and store connections.", st.conns);
    nk_metrics_counter(m, "nokv_coord_requests_total", "Requests answered.", st.requests);
    nk_metrics_counter(m, "nokv_coord_bad_frames_total", "Malformed requests refused.",
                       st.bad_frames);
    nk_metrics_counter(m, "nokv_coord_fence_writes_total", "Allocator fence writes (fsynced).",
                       st.fence_writes);
    nk_metrics_counter(m, "nokv_coord_meta_writes_total", "Registry and catalog writes.",
                       st.meta_writes);
    nk_metrics_counter(m, "nokv_coord_persist_failures_total", "Failed state writes.",
                       st.persist_failures);
    nk_metrics_family(m, "nokv_coord_alloc_next", "gauge",
                      "Next number each allocator hands out (id: AllocID, ts: Tso).");
    nk_metrics_sample(m, "nokv_coord_alloc_next", "allocator=\"id\"", st.next_id);
    nk_metrics_sample(m, "nokv_coord_alloc_next", "allocator=\"ts\"", st.next_ts);
}

/* ------------------------------------------------------------ endpoint --- */

struct nk_status_server {
    nk_rt *rt;
    nk_status_source src;
    nk_http_server *http;
    uint64_t started_ns;
};

static void handle(void *ctx, const char *method, const char *path, nk_http_reply *r)
{
    nk_status_server *s = ctx;
    (void)method;
    if (strcmp(path, "/metrics") == 0) {
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        nk_metrics m = {&r->body};
        char v[96], role[32];
        nk_metrics_escape(s->src.version != NULL ? s->src.version : "unknown", v, sizeof(v));
        nk_metrics_escape(s->src.role != NULL ? s->src.role : "unknown", role, sizeof(role));
        char lab[160];
        snprintf(lab, sizeof(lab), "version=\"%s\",role=\"%s\"", v, role);
        nk_metrics_family(&m, "nokv_build_info", "gauge",
                          "Always 1; the labels say which build and role is running.");
        nk_metrics_sample(&m, "nokv_build_info", lab, 1);
        nk_metrics_family(&m, "nokv_uptime_seconds", "gauge",
                          "Seconds since the status endpoint started.");
        nk_metrics_sample_f(&m, "nokv_uptime_seconds", NULL,
                            (double)(nk_rt_now(s->rt) - s->started_ns) / 1e9);
        if (s->src.metrics != NULL) {
            s->src.metrics(s->src.ctx, &m);
        }
        return;
    }
    if (strcmp(path, "/health") == 0) {
        nk_http_body_append(&r->body, "ok\n", 3);
        return;
    }
    if (strcmp(path, "/ready") == 0) {
        char why[256] = "not ready";
        if (s->src.ready == NULL || s->src.ready(s->src.ctx, why, sizeof(why))) {
            nk_http_body_append(&r->body, "ready\n", 6);
        } else {
            r->status = 503;
            nk_http_body_printf(&r->body, "not ready: %s\n", why);
        }
        return;
    }
    r->status = 404;
    nk_http_body_append(&r->body, "not found: try /metrics, /health or /ready\n", 43);
}

int nk_status_server_start(nk_rt *rt, const char *addr, const nk_status_source *src,
                           nk_status_server **out)
{
    nk_status_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NK_ENOMEM;
    }
    s->rt = rt;
    s->src = *src;
    s->started_ns = nk_rt_now(rt);
    int rc = nk_http_server_start(rt, addr, NULL, handle, s, &s->http);
    if (rc != NK_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return NK_OK;
}

int nk_status_server_addr(nk_status_server *s, char *buf, size_t len)
{
    return nk_http_server_addr(s->http, buf, len);
}

void nk_status_server_free(nk_status_server *s)
{
    if (s == NULL) {
        return;
    }
    nk_http_server_free(s->http);
    free(s);
}
