/* standalone.c - engine + RESP server lifecycle (see standalone.h). */
#include "nokv/server/standalone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/server/metrics.h"
#include "nokv/store/workdir.h"

struct nk_standalone {
    nk_rt *rt;
    nk_workdir *wd;
    nk_db *db;
    nk_db_backend *backend;
    nk_resp_server *server;
    nk_status_server *status; /* --metrics-addr; kept until the engine closed */
    nk_db_stats last_db;      /* engine counters as of shutdown (db is gone) */
    bool stopping;
    bool stopped;
    int exit_status;
    char addr[64];
};

static void start_failed_closed(void *arg, int status)
{
    (void)status;
    *(bool *)arg = true;
}

/* /metrics: engine and RESP families; /ready: serving until shutdown. */
static void status_metrics(void *ctx, nk_metrics *m)
{
    nk_standalone *s = ctx;
    if (s->db != NULL && !s->stopping) {
        nk_db_get_stats(s->db, &s->last_db);
    }
    nk_metrics_engine(m, &s->last_db);
    if (s->server != NULL) {
        nk_metrics_resp(m, nk_resp_db_stats(nk_resp_server_db(s->server)),
                        nk_resp_server_connections(s->server));
        nk_metrics_resp_commands(m, nk_resp_server_db(s->server));
    }
}

static bool status_ready(void *ctx, char *why, size_t len)
{
    nk_standalone *s = ctx;
    if (s->stopping) {
        snprintf(why, len, "draining: shutting down");
        return false;
    }
    return true;
}

static int start_status(nk_standalone *s, const nk_standalone_config *cfg, nk_errbuf *eb)
{
    nk_status_source src = {s, "standalone", cfg->version, status_metrics, status_ready};
    int rc = nk_status_server_start(s->rt, cfg->metrics_addr, &src, &s->status);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot listen on --metrics-addr %s: %s", cfg->metrics_addr,
                      nk_strerror(rc));
    }
    return rc;
}

int nk_standalone_start(nk_rt *rt, const nk_standalone_config *cfg, nk_standalone **out,
                        nk_errbuf *eb)
{
    nk_standalone *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NK_ENOMEM;
    }
    s->rt = rt;
    nk_workdir_options wo = {cfg->allowed_modes, cfg->db.create_if_missing};
    int rc = nk_workdir_open(rt, cfg->workdir, &wo, &s->wd, eb);
    if (rc == NK_OK) {
        rc = nk_db_open(rt, cfg->workdir, &cfg->db, &s->db, eb);
    }
    if (rc == NK_OK) {
        rc = nk_db_backend_new(rt, s->db, cfg->sync, cfg->group_interval_ns, &s->backend);
    }
    if (rc == NK_OK) {
        nk_resp_server_options so;
        memset(&so, 0, sizeof(so));
        so.db.sync_policy = nk_sync_policy_name(cfg->sync);
        so.db.version = cfg->version;
        so.limits.max_bulk_len = NK_SERVE_MAX_VALUE; /* agrees with the engine */
        rc = nk_resp_server_start(rt, cfg->addr, nk_db_backend_kv(s->backend), &so, &s->server);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot listen on %s: %s (is another server using the port?)",
                          cfg->addr, nk_strerror(rc));
        }
    }
    if (rc == NK_OK && cfg->metrics_addr != NULL) {
        rc = start_status(s, cfg, eb);
    }
    if (rc != NK_OK) {
        nk_resp_server_free(s->server);
        nk_db_backend_free(s->backend);
        if (s->db != NULL) {
            /* Close is asynchronous: it completes at once unless open
             * started a recovery flush. Outside a running loop (the real
             * runtime) pump until it is done; a simulated node is driven by
             * the scheduler instead (run_once says NK_ENOTSUP). */
            bool closed = false;
            nk_db_close(s->db, start_failed_closed, &closed);
            for (int i = 0; i < 600000 && !closed; i++) {
                if (nk_rt_run_once(rt, 100 * NK_NSEC_PER_MSEC) == NK_ENOTSUP) {
                    break;
                }
            }
        }
        nk_workdir_close(s->wd);
        free(s);
        return rc;
    }
    nk_resp_server_addr(s->server, s->addr, sizeof(s->addr));
    nk_log(rt, NK_LOG_INFO,
           "standalone server on %s, workdir %s, sync=%s; path: standalone (MODE.json says "
           "mode %s: no store, region or peer ids)",
           s->addr, cfg->workdir, nk_sync_policy_name(cfg->sync),
           nk_mode_name(nk_workdir_mode(s->wd)->mode));
    if (s->status != NULL) {
        char maddr[64] = "";
        (void)nk_status_server_addr(s->status, maddr, sizeof(maddr));
        nk_log(rt, NK_LOG_INFO, "metrics, health and readiness on http://%s/", maddr);
    }
    *out = s;
    return NK_OK;
}

int nk_standalone_addr(nk_standalone *s, char *buf, size_t len)
{
    return nk_resp_server_addr(s->server, buf, len);
}

int nk_standalone_metrics_addr(nk_standalone *s, char *buf, size_t len)
{
    return s->status != NULL ? nk_status_server_addr(s->status, buf, len) : NK_ENOENT;
}

static void db_closed(void *arg, int status)
{
    nk_standalone *s = arg;
    s->db = NULL;
    /* Everything is synced: only now may another owner take the workdir. */
    nk_workdir_close(s->wd);
    s->wd = NULL;
    s->stopped = true;
    nk_status_server_free(s->status); /* answered "draining" until now */
    s->status = NULL;
    if (status != NK_OK && s->exit_status == NK_OK) {
        s->exit_status = status;
    }
    nk_log(s->rt, status == NK_OK ? NK_LOG_INFO : NK_LOG_ERROR, "engine closed: %s",
           nk_strerror(status));
    nk_rt_stop(s->rt);
}

static void close_now(void *arg)
{
    nk_standalone *s = arg;
    nk_db_close(s->db, db_closed, s);
}

static void flushed_then_close(void *arg, int status)
{
    nk_standalone *s = arg;
    if (status != NK_OK) {
        nk_log(s->rt, NK_LOG_WARN,
               "shutdown: flushing the memtable failed (%s); the WAL keeps the writes",
               nk_strerror(status));
    }
    /* Not from inside the flush's own call chain (done may run within
     * nk_db_flush): close on the next loop turn. */
    (void)nk_rt_timer_start(s->rt, 0, close_now, s); /* 0 only on a dead node: abandoned */
}

void nk_standalone_shutdown(nk_standalone *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    nk_log(s->rt, NK_LOG_INFO,
           "shutting down: closing connections, flushing and syncing the engine");
    nk_resp_server_stop(s->server);
    nk_resp_server_free(s->server);
    s->server = NULL;
    nk_db_backend_free(s->backend);
    s->backend = NULL;
    nk_db_get_stats(s->db, &s->last_db); /* /metrics shows these while closing */
    /* Flush the memtable first: the next open (or `nokv migrate init`) then
     * has no WAL to replay. A failed flush loses nothing (the WAL still holds
     * every write and close syncs it); the close goes ahead either way. */
    if (nk_db_flush(s->db, flushed_then_close, s) != NK_OK) {
        nk_db_close(s->db, db_closed, s);
    }
}

int nk_standalone_exit_status(const nk_standalone *s)
{
    return s->stopped ? s->exit_status : NK_EAGAIN;
}

void nk_standalone_free(nk_standalone *s)
{
    if (s == NULL) {
        return;
    }
    nk_status_server_free(s->status);
    if (s->server != NULL) {
        nk_resp_server_free(s->server);
    }
    nk_db_backend_free(s->backend);
    if (s->db != NULL) {
        nk_db_abandon(s->db); /* the loop is gone: nothing can finish a close */
    }
    nk_workdir_close(s->wd);
    free(s);
}

void nk_standalone_abandon(nk_standalone *s)
{
    nk_workdir *wd = s->wd;
    s->wd = NULL;
    nk_standalone_free(s);
    nk_workdir_abandon(wd);
}
