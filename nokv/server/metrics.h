/*
 * metrics.h - the operator status endpoint: Prometheus metrics, liveness and
 * readiness over HTTP (http.h), for `--metrics-addr`.
 *
 *   GET /metrics  Prometheus text exposition format 0.0.4
 *                 (Content-Type: text/plain; version=0.0.4): one "# HELP"
 *                 and one "# TYPE" line per family, then its samples
 *                 `name{labels} value`; counters end in _total, sizes in
 *                 _bytes. Every family is emitted whole before the next.
 *   GET /health   200 "ok" while the process runs its loop (liveness).
 *   GET /ready    200 "ready" when serving; 503 with the reason otherwise
 *                 (draining, no leader for a hosted region, no region
 *                 hosted yet, store failed).
 *                 A server that is still recovering has not bound this port
 *                 yet (start-up is synchronous), so probes fail: not ready.
 *
 * The endpoint knows nothing about what it reports: the owner (standalone
 * server, cluster store, coordinator) passes an nk_status_source whose
 * callbacks write the families and decide readiness. The collectors below
 * turn the subsystems' counters into families, so every owner names the same
 * thing the same way.
 */
#ifndef NK_SERVER_METRICS_H
#define NK_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/db.h"
#include "nokv/resp/commands.h"
#include "nokv/rt.h"
#include "nokv/server/http.h"

typedef struct nk_store nk_store;
typedef struct nk_coord_service nk_coord_service;

/* ------------------------------------------------------- text writer --- */

typedef struct nk_metrics {
    nk_http_body *out;
} nk_metrics;

/* Start a family: "# HELP name help" and "# TYPE name type" (type is
 * "counter" or "gauge"). Call once per family, then its samples. */
void nk_metrics_family(nk_metrics *m, const char *name, const char *type, const char *help);

/* One sample. labels: NULL, or already formatted `k="v",k2="v2"` (values
 * escaped with nk_metrics_escape). */
void nk_metrics_sample(nk_metrics *m, const char *name, const char *labels, uint64_t value);
void nk_metrics_sample_f(nk_metrics *m, const char *name, const char *labels, double value);

/* Family with its single unlabelled sample. */
void nk_metrics_counter(nk_metrics *m, const char *name, const char *help, uint64_t value);
void nk_metrics_gauge(nk_metrics *m, const char *name, const char *help, uint64_t value);

/* Escape a label value (\ " newline) into buf; truncates, always terminates. */
void nk_metrics_escape(const char *in, char *buf, size_t cap);

/* ---------------------------------------------------------- collectors --- */

void nk_metrics_engine(nk_metrics *m, const nk_db_stats *st);
void nk_metrics_resp(nk_metrics *m, const nk_resp_stats *st, size_t connections);
/* Per-command calls and error replies (commands called at least once). */
void nk_metrics_resp_commands(nk_metrics *m, const nk_resp_db *db);
/* Raft and region families of every region the store hosts. */
void nk_metrics_store(nk_metrics *m, const nk_store *s);
void nk_metrics_coord(nk_metrics *m, nk_coord_service *s);

/* Readiness of a store: false with the reason when it failed, hosts no
 * region yet (a joining store), or a hosted region has no known leader. */
bool nk_metrics_store_ready(const nk_store *s, char *why, size_t len);

/* ------------------------------------------------------------ endpoint --- */

typedef struct nk_status_source {
    void *ctx;
    const char *role;    /* "standalone" | "store" | "coordinator" (a label) */
    const char *version; /* shown by nokv_build_info */
    /* Write the owner's families (the endpoint adds nokv_build_info and
     * nokv_uptime_seconds itself). */
    void (*metrics)(void *ctx, nk_metrics *m);
    /* true when ready; otherwise false and a one-line reason in why. */
    bool (*ready)(void *ctx, char *why, size_t len);
} nk_status_source;

typedef struct nk_status_server nk_status_server;

/* Listen on addr and serve the three paths. src is copied; its ctx must
 * outlive the server. NK_OK or the listen error. */
int nk_status_server_start(nk_rt *rt, const char *addr, const nk_status_source *src,
                           nk_status_server **out);
int nk_status_server_addr(nk_status_server *s, char *buf, size_t len);
void nk_status_server_free(nk_status_server *s);

#endif /* NK_SERVER_METRICS_H */
