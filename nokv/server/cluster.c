/* cluster.c - distributed-mode server lifecycle (see cluster.h). */
#include "nokv/server/cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/resp/server.h"
#include "nokv/server/cluster_backend.h"
#include "nokv/store/admin.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/store.h"
#include "nokv/store/workdir.h"

#define SEED_REGION 1
#define SEED_INDEX 5
#define SEED_TERM 5

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
    bool stopping;
    bool stopped;
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

/* Undo a partial start; the loop is not running yet. */
static void start_cleanup(nk_cluster *c)
{
    nk_resp_server_free(c->server);
    nk_store_close(c->store);
    nk_admin_service_free(c->admin);
    nk_cluster_backend_free(c->backend);
    nk_kvsm_free(c->kvsm);
    if (c->db != NULL) {
        bool closed = false;
        nk_db_close(c->db, closed_flag, &closed);
        for (int i = 0; i < 600000 && !closed; i++) {
            if (nk_rt_run_once(c->rt, 100 * NK_NSEC_PER_MSEC) == NK_ENOTSUP) {
                break;
            }
        }
    }
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
        so.sm = nk_kvsm_sm(c->kvsm);
        so.compact_every = 0; /* engine snapshots (SST streams) come next */
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
        rc = nk_admin_service_new(rt, c->store, c->db, cfg->workdir, &c->admin);
        if (rc == NK_OK) {
            nk_store_service svc = nk_admin_service_desc(c->admin);
            nk_store_set_admin_service(c->store, &svc);
        }
    }
    if (rc == NK_OK && nk_store_region(c->store, SEED_REGION) == NULL) {
        /* A new, empty store: it serves the admin service and waits for a
         * region to arrive (`nokv migrate expand` imports one). */
        nk_log(rt, NK_LOG_INFO,
               "store %" PRIu64 " hosts no region yet: waiting for `nokv migrate expand` to "
               "import one (or found a cluster with --initial-cluster)",
               cfg->store_id);
    }
    if (rc == NK_OK) {
        rc = nk_cluster_backend_new(rt, c->store, c->kvsm, c->db, SEED_REGION, 0, &c->backend);
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
    if (rc != NK_OK) {
        start_cleanup(c);
        return rc;
    }
    nk_resp_server_addr(c->server, c->redis_addr, sizeof(c->redis_addr));
    nk_log(rt, NK_LOG_INFO,
           "store %" PRIu64 ": serving region %d; raft on %s, RESP on %s, workdir %s",
           cfg->store_id, SEED_REGION, cfg->addr, c->redis_addr, cfg->workdir);
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
    nk_workdir_close(c->wd);
    c->wd = NULL;
    c->stopped = true;
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
    nk_cluster_backend_free(c->backend);
    c->backend = NULL;
    nk_kvsm_free(c->kvsm);
    c->kvsm = NULL;
    nk_db_close(c->db, db_closed, c);
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
    nk_store_quiesce(c->store);
    close_store_when_idle(c);
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
    nk_resp_server_free(c->server);
    nk_store_close(c->store);
    nk_admin_service_free(c->admin);
    nk_cluster_backend_free(c->backend);
    nk_kvsm_free(c->kvsm);
    if (c->db != NULL) {
        nk_db_abandon(c->db);
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
