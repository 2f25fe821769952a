/* admin.c - the store's admin service (see admin.h). */
#include "nokv/store/admin.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "nokv/engine/batch.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/region.h"
#include "nokv/proto/admin.h"
#include "nokv/proto/kinds.h"
#include "nokv/store/kvsm.h"
#include "nokv/util/smallfile.h"

#define PATH_CAP 1200
#define WIPE_BATCH 1024
/* How long an export keeps the leader from compacting the log past it. */
#define NK_ADMIN_EXPORT_HOLD_NS (600ull * NK_NSEC_PER_SEC)

typedef struct export_sess {
    nk_admin_service *a; /* NULL once the service is gone */
    uint64_t id;
    uint64_t conn;   /* 0 once the connection closed */
    uint64_t req_id; /* the ExportRegionSnapshot to answer */
    bool ready;      /* files hashed, manifest valid */
    int rc;
    char err[NK_ADMIN_MSG_MAX];
    char dir[PATH_CAP];
    /* The file being sent: open once, hashed as its bytes are read for
     * sending (reads of a file come in order), so no byte is read twice. */
    uint32_t rfile;
    nk_file *rfh;
    XXH64_state_t *rhash;
    uint64_t rhashed; /* bytes of rfile hashed so far */
    nk_admin_manifest m;
} export_sess;

enum { IMP_RECEIVING = 1, IMP_INSTALLING = 2 };

typedef struct import_sess {
    nk_admin_service *a;
    uint64_t id;
    uint64_t conn;
    uint64_t req_id; /* FinishImport to answer */
    int phase;
    uint64_t peer_id;
    bool ingested;
    char dir[PATH_CAP];
    nk_file *files[NK_ADMIN_SNAP_MAX_FILES];
    uint64_t received[NK_ADMIN_SNAP_MAX_FILES];
    XXH64_state_t *hash[NK_ADMIN_SNAP_MAX_FILES];
    uint64_t digest[NK_ADMIN_SNAP_MAX_FILES]; /* ours, once the file is complete */
    uint64_t want[NK_ADMIN_SNAP_MAX_FILES];   /* the sender's, with its last chunk */
    uint64_t total;
    nk_admin_manifest m;
} import_sess;

typedef struct wipe {
    nk_admin_service *a;
    nk_region desc;
    nk_batch b;
    void (*done)(nk_admin_service *a, struct wipe *w, int rc);
} wipe;

struct nk_admin_service {
    nk_rt *rt;
    nk_store *s;
    nk_db *db;
    nk_kvsm *kvsm;
    char *workdir;
    char *snapdir;
    uint64_t next_session;
    export_sess *exports[NK_ADMIN_MAX_EXPORTS];
    import_sess *imp;
    wipe *wipe; /* rollback in progress */
    bool recovering;
    bool ingesting; /* an nk_db_ingest callback is outstanding */
    bool dead;      /* freed while ingesting: the callback frees it */
    nk_admin_req req;
    nk_admin_resp resp;
    nk_buf out;
    nk_admin_stats stats;
};

/* ------------------------------------------------------------ helpers --- */

static void remove_flat_dir(nk_rt *rt, const char *dir)
{
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) == NK_OK) {
        for (size_t i = 0; i < names.count; i++) {
            char p[PATH_CAP];
            if (nk_path_fmt(p, sizeof(p), dir, names.names[i]) == NK_OK) {
                (void)nk_rt_remove(rt, p);
            }
        }
        nk_names_free(&names);
    }
    (void)nk_rt_remove(rt, dir);
}

static nk_admin_resp *resp_begin(nk_admin_service *a, uint8_t op, uint64_t id)
{
    nk_admin_resp *p = &a->resp;
    memset(p, 0, offsetof(nk_admin_resp, manifest));
    p->manifest.n_files = 0;
    p->op = op;
    p->id = id;
    return p;
}

static void send_resp(nk_admin_service *a, uint64_t conn, const nk_admin_resp *p)
{
    if (conn == 0) {
        return;
    }
    int rc = nk_admin_resp_encode(p, &a->out);
    if (rc == NK_OK) {
        rc = nk_rt_send(a->rt, conn, NK_KIND_ADMIN_RESP, a->out.data, a->out.len);
    }
    if (rc != NK_OK && rc != NK_ECLOSED) {
        nk_log(a->rt, NK_LOG_WARN, "admin: cannot answer %s on conn %" PRIu64 ": %s",
               nk_admin_op_name(p->op), conn, nk_errname(rc));
    }
}

static void reply_status(nk_admin_service *a, uint64_t conn, uint8_t op, uint64_t id,
                         uint8_t status, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void reply_status(nk_admin_service *a, uint64_t conn, uint8_t op, uint64_t id,
                         uint8_t status, const char *fmt, ...)
{
    nk_admin_resp *p = resp_begin(a, op, id);
    p->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    send_resp(a, conn, p);
}

/* The leader of region (peer and its store), from this store's raft. */
static void leader_of(nk_admin_service *a, uint64_t region, uint64_t *peer, uint64_t *store)
{
    *peer = 0;
    *store = 0;
    const nk_raft *r = nk_store_raft(a->s, region);
    const nk_region *d = nk_store_region(a->s, region);
    if (r == NULL || d == NULL) {
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    *peer = st.lead;
    const nk_region_peer *rp = st.lead != 0 ? nk_region_peer_by_id(d, st.lead) : NULL;
    *store = rp != NULL ? rp->store_id : 0;
}

/* Common checks of a membership / leadership request on the leader:
 * region hosted here, leader here, epoch as named. NULL after replying. */
static const nk_region *leader_region(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = nk_store_region(a->s, q->region_id);
    const nk_raft *r = nk_store_raft(a->s, q->region_id);
    if (d == NULL || r == NULL) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_REGION_NOT_FOUND,
                     "store %" PRIu64 " does not host region %" PRIu64, nk_store_id(a->s),
                     q->region_id);
        return NULL;
    }
    nk_raft_status st;
    nk_raft_status_get(r, &st);
    if (st.role != NK_RAFT_LEADER) {
        nk_admin_resp *p = resp_begin(a, q->op, q->id);
        p->status = NK_ADMIN_NOT_LEADER;
        leader_of(a, q->region_id, &p->leader_peer, &p->leader_store);
        snprintf(p->msg, sizeof(p->msg),
                 "store %" PRIu64 " is not the leader of region %" PRIu64 " (leader: peer %" PRIu64
                 " on store %" PRIu64 "); send it to the leader",
                 nk_store_id(a->s), q->region_id, p->leader_peer, p->leader_store);
        send_resp(a, conn, p);
        return NULL;
    }
    if ((q->epoch.version != 0 || q->epoch.conf_version != 0) &&
        (q->epoch.version != d->epoch.version || q->epoch.conf_version != d->epoch.conf_version)) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_EPOCH_MISMATCH,
                     "region %" PRIu64 " is at epoch {%" PRIu64 ",%" PRIu64
                     "}, the request names {%" PRIu64 ",%" PRIu64 "}; re-read its status",
                     q->region_id, d->epoch.version, d->epoch.conf_version, q->epoch.version,
                     q->epoch.conf_version);
        return NULL;
    }
    return d;
}

static void reply_proposed(nk_admin_service *a, uint64_t conn, const nk_admin_req *q, int rc,
                           const char *what)
{
    if (rc == NK_OK) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_OK, "%s proposed", what);
    } else if (rc == NK_EBUSY || rc == NK_EAGAIN) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_BUSY,
                     "%s: another change is in progress (%s); retry shortly", what, nk_errname(rc));
    } else if (rc == NK_EEXIST) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_EXISTS, "%s: the store already hosts a peer",
                     what);
    } else {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID, "%s refused by raft: %s", what,
                     nk_strerror(rc));
    }
}

/* -------------------------------------------------------- membership --- */

static void do_add_peer(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = leader_region(a, conn, q);
    if (d == NULL) {
        return;
    }
    if (q->store_id == 0 || q->peer_id == 0) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "AddPeer needs a store and a peer id");
        return;
    }
    const nk_region_peer *same = nk_region_peer_by_id(d, q->peer_id);
    if (same != NULL && same->store_id == q->store_id && q->addr[0] != '\0') {
        /* A rerun for a peer added through an earlier leader: this leader
         * may never have heard where that store is. */
        (void)nk_store_set_address(a->s, q->store_id, q->addr);
    }
    if (nk_region_peer_on_store(d, q->store_id) != NULL ||
        nk_region_peer_by_id(d, q->peer_id) != NULL) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_EXISTS,
                     "region %" PRIu64 " already has a peer on store %" PRIu64 " or a peer %" PRIu64
                     "; one peer per store, peer ids unique",
                     q->region_id, q->store_id, q->peer_id);
        return;
    }
    if (q->addr[0] != '\0') {
        /* The new store never dialled us: learn where it is first. */
        (void)nk_store_set_address(a->s, q->store_id, q->addr);
    }
    int rc =
        nk_store_conf_change(a->s, q->region_id, NK_RAFT_CC_ADD_LEARNER, q->peer_id, q->store_id);
    reply_proposed(a, conn, q, rc, "AddPeer (learner)");
}

static void do_promote(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = leader_region(a, conn, q);
    if (d == NULL) {
        return;
    }
    const nk_region_peer *rp = nk_region_peer_by_id(d, q->peer_id);
    if (rp == NULL || rp->role != NK_RAFT_LEARNER) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "peer %" PRIu64 " is not a learner of region %" PRIu64, q->peer_id,
                     q->region_id);
        return;
    }
    int rc = nk_store_conf_change(a->s, q->region_id, NK_RAFT_CC_PROMOTE, q->peer_id, 0);
    reply_proposed(a, conn, q, rc, "PromotePeer");
}

static void do_remove(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = leader_region(a, conn, q);
    if (d == NULL) {
        return;
    }
    const nk_region_peer *rp = nk_region_peer_by_id(d, q->peer_id);
    if (rp == NULL) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "peer %" PRIu64 " is not a member of region %" PRIu64, q->peer_id,
                     q->region_id);
        return;
    }
    nk_raft_status st;
    nk_raft_status_get(nk_store_raft(a->s, q->region_id), &st);
    if (!q->force && q->peer_id == st.id) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "peer %" PRIu64 " is the leader; transfer leadership first "
                     "(nokv migrate transfer-leader)",
                     q->peer_id);
        return;
    }
    if (!q->force && rp->role == NK_RAFT_VOTER) {
        uint32_t voters = 0, caught = 0;
        for (uint32_t i = 0; i < st.conf.n; i++) {
            const nk_raft_member *m = &st.conf.m[i];
            if (m->role != NK_RAFT_VOTER || m->id == q->peer_id) {
                continue;
            }
            voters++;
            uint64_t match = 0, next = 0;
            int pst = 0;
            if (m->id == st.id || (nk_raft_progress_get(nk_store_raft(a->s, q->region_id), m->id,
                                                        &match, &next, &pst) == NK_OK &&
                                   match >= st.commit)) {
                caught++;
            }
        }
        if (voters == 0) {
            reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                         "voter %" PRIu64 " is the last voter of region %" PRIu64
                         "; removing it would leave no quorum at all",
                         q->peer_id, q->region_id);
            return;
        }
        if (caught < voters / 2 + 1) {
            /* BUSY, not INVALID: a new leader learns its followers' match
             * indexes from their first answers, so this may pass soon. */
            reply_status(a, conn, q->op, q->id, NK_ADMIN_BUSY,
                         "removing voter %" PRIu64 " would leave %u voter(s), %u caught up: no "
                         "quorum; add and catch up a peer first, or pass --force",
                         q->peer_id, voters, caught);
            return;
        }
    }
    int rc = nk_store_conf_change(a->s, q->region_id, NK_RAFT_CC_REMOVE, q->peer_id, rp->store_id);
    reply_proposed(a, conn, q, rc, "RemovePeer");
}

static void do_transfer(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = leader_region(a, conn, q);
    if (d == NULL) {
        return;
    }
    const nk_region_peer *rp = nk_region_peer_by_id(d, q->peer_id);
    if (rp == NULL || rp->role != NK_RAFT_VOTER) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "peer %" PRIu64 " is not a voter of region %" PRIu64 "; only a voter can lead",
                     q->peer_id, q->region_id);
        return;
    }
    int rc = nk_store_transfer_leader(a->s, q->region_id, q->peer_id);
    reply_proposed(a, conn, q, rc, "TransferLeader");
}

static void do_region_status(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    nk_admin_resp *p = resp_begin(a, q->op, q->id);
    uint8_t state = 0;
    if (nk_store_region_meta(a->s, q->region_id, &p->desc, &state) == NK_OK) {
        p->known = true;
    }
    const nk_region *d = nk_store_region(a->s, q->region_id);
    const nk_raft *r = nk_store_raft(a->s, q->region_id);
    if (d != NULL && r != NULL) {
        p->hosted = true;
        p->desc = *d;
        nk_raft_status st;
        nk_raft_status_get(r, &st);
        p->local_peer = st.id;
        p->applied_index = nk_store_applied(a->s, q->region_id);
        if (nk_raft_term_at(r, p->applied_index, &p->applied_term) != NK_OK) {
            p->applied_term = 0;
        }
        p->raft_term = st.term;
        p->commit = st.commit;
        p->role = (uint8_t)st.role;
        leader_of(a, q->region_id, &p->leader_peer, &p->leader_store);
    } else if (p->known) {
        snprintf(p->msg, sizeof(p->msg), "region %" PRIu64 " is known in state %s, not hosted",
                 q->region_id,
                 state == NK_REGION_TOMBSTONE  ? "tombstone"
                 : state == NK_REGION_APPLYING ? "applying"
                                               : "normal");
    }
    send_resp(a, conn, p);
}

static void do_store_status(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    nk_admin_resp *p = resp_begin(a, q->op, q->id);
    p->store_id = nk_store_id(a->s);
    p->regions = nk_store_hosted_count(a->s);
    p->failed = nk_store_failed(a->s);
    send_resp(a, conn, p);
}

/* ------------------------------------------------------------- export --- */

static void export_free(export_sess *e, nk_rt *rt)
{
    if (e->rfh != NULL) {
        (void)nk_rt_file_close(rt, e->rfh);
    }
    XXH64_freeState(e->rhash);
    if (e->dir[0] != '\0') {
        remove_flat_dir(rt, e->dir);
    }
    free(e);
}

static void export_drop(nk_admin_service *a, size_t i)
{
    export_sess *e = a->exports[i];
    a->exports[i] = NULL;
    export_free(e, a->rt);
}

static void export_answer(export_sess *e)
{
    nk_admin_service *a = e->a;
    nk_admin_resp *p = resp_begin(a, NK_ADMIN_SNAP_EXPORT, e->req_id);
    p->session = e->id;
    if (e->rc != NK_OK) {
        p->status = e->rc == NK_ECORRUPT ? NK_ADMIN_CORRUPT : NK_ADMIN_INTERNAL;
        snprintf(p->msg, sizeof(p->msg), "export of the region failed: %.200s", e->err);
        send_resp(a, e->conn, p);
        for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
            if (a->exports[i] == e) {
                export_drop(a, i);
            }
        }
        return;
    }
    p->manifest = e->m;
    send_resp(a, e->conn, p);
    p->manifest.n_files = 0;
    if (e->conn == 0) {
        /* Released, or its connection closed, while it was exporting. */
        for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
            if (a->exports[i] == e) {
                export_drop(a, i);
            }
        }
    }
}

/* The manifest of an export: every file of its directory with its size.
 * Nothing is read: each file is hashed while it is sent (do_read). */
static int list_export(export_sess *e, nk_rt *rt)
{
    nk_names names = {0};
    int rc = nk_rt_dir_list(rt, e->dir, &names);
    if (rc == NK_OK && names.count > NK_ADMIN_SNAP_MAX_FILES) {
        rc = NK_ETOOBIG;
        snprintf(e->err, sizeof(e->err), "%zu files, more than %u", names.count,
                 NK_ADMIN_SNAP_MAX_FILES);
    }
    for (size_t i = 0; rc == NK_OK && i < names.count; i++) {
        nk_admin_file *f = &e->m.files[e->m.n_files];
        if (!nk_admin_name_ok(names.names[i])) {
            rc = NK_EINVAL;
            snprintf(e->err, sizeof(e->err), "unexpected file name %.64s", names.names[i]);
            break;
        }
        snprintf(f->name, sizeof(f->name), "%s", names.names[i]);
        char path[PATH_CAP];
        nk_stat st = {0};
        rc = nk_path_fmt(path, sizeof(path), e->dir, f->name);
        rc = rc ? rc : nk_rt_stat(rt, path, &st);
        if (rc != NK_OK) {
            snprintf(e->err, sizeof(e->err), "stat %.160s: %s", path, nk_strerror(rc));
            break;
        }
        f->size = st.size;
        f->xxh64 = 0; /* sent with the file's last chunk */
        e->m.n_files++;
    }
    nk_names_free(&names);
    return rc;
}

static void export_done(void *arg, int status, const nk_region_result *r, const nk_errbuf *eb)
{
    export_sess *e = arg;
    if (e->a == NULL) {
        free(e); /* the service is gone; the directory goes at the next start */
        return;
    }
    e->rc = status;
    if (status != NK_OK) {
        snprintf(e->err, sizeof(e->err), "%.240s", eb != NULL ? eb->msg : nk_strerror(status));
        export_answer(e);
        return;
    }
    e->rc = list_export(e, e->a->rt);
    e->ready = e->rc == NK_OK;
    if (e->ready) {
        nk_log(e->a->rt, NK_LOG_INFO,
               "admin: region %" PRIu64 " exported at index %" PRIu64 " term %" PRIu64
               ": %u files, %" PRIu64 " bytes, %" PRIu64 " tables linked (session %" PRIu64 ")",
               e->m.desc.id, e->m.index, e->m.term, e->m.n_files, r != NULL ? r->bytes : 0,
               r != NULL ? r->linked : 0, e->id);
    }
    export_answer(e);
}

static void do_export(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_region *d = leader_region(a, conn, q);
    if (d == NULL) {
        return;
    }
    size_t slot = NK_ADMIN_MAX_EXPORTS;
    for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
        if (a->exports[i] == NULL) {
            slot = i;
            break;
        }
    }
    if (slot == NK_ADMIN_MAX_EXPORTS) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_BUSY,
                     "%u exports are open already; release one or retry later",
                     NK_ADMIN_MAX_EXPORTS);
        return;
    }
    if (a->kvsm != NULL && !nk_kvsm_settled(a->kvsm)) {
        /* An applied entry's engine write is still queued behind a stall:
         * an export now would miss it while claiming the applied index. */
        reply_status(a, conn, q->op, q->id, NK_ADMIN_BUSY,
                     "applied writes are still queued in the engine; retry shortly");
        return;
    }
    export_sess *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL, "out of memory");
        return;
    }
    e->a = a;
    e->id = ++a->next_session;
    e->conn = conn;
    e->req_id = q->id;
    e->m.desc = *d;
    e->m.index = nk_store_applied(a->s, q->region_id);
    if (nk_raft_term_at(nk_store_raft(a->s, q->region_id), e->m.index, &e->m.term) != NK_OK ||
        e->m.index == 0) {
        free(e);
        reply_status(a, conn, q->op, q->id, NK_ADMIN_BUSY,
                     "region %" PRIu64 " has no applied index with a known term yet; retry",
                     q->region_id);
        return;
    }
    char name[64];
    snprintf(name, sizeof(name), "export-%" PRIu64 "-%" PRIu64, q->region_id, e->id);
    (void)nk_path_fmt(e->dir, sizeof(e->dir), a->snapdir, name);
    remove_flat_dir(a->rt, e->dir); /* a leftover of an earlier incarnation */
    /* The store's reserved keys (apply state) never leave it. */
    nk_slice start = nk_slice_make(d->start, d->start_len);
    nk_slice end = nk_slice_make(d->end, d->end_len);
    nk_slice reserved = nk_slice_make(NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN);
    if (end.len == 0 || nk_bytes_cmp(end.data, end.len, reserved.data, reserved.len) > 0) {
        end = reserved;
    }
    /* The engine reflects exactly the applied entries right now (applies
     * are submitted on this thread), and the export reads at this moment. */
    int rc = nk_db_export_range(a->db, start, end, e->dir, 0, export_done, e);
    if (rc == NK_OK && !q->force) {
        /* The importer joins the log at index + 1 once it installed the
         * export: keep the log above it until then. (A raft catch-up,
         * flagged `force` by nokv/store/snapfetch.c, is a member already:
         * entries above its snapshot point are replicated to it anyway.) */
        (void)nk_store_hold_log(a->s, q->region_id, e->m.index, NK_ADMIN_EXPORT_HOLD_NS);
    }
    if (rc != NK_OK) {
        e->dir[0] = '\0';
        free(e);
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL, "starting the export: %s",
                     nk_strerror(rc));
        return;
    }
    a->exports[slot] = e;
}

static export_sess *find_export(nk_admin_service *a, uint64_t id, size_t *slot)
{
    for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
        if (a->exports[i] != NULL && a->exports[i]->id == id) {
            *slot = i;
            return a->exports[i];
        }
    }
    return NULL;
}

static void do_read(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    size_t slot = 0;
    export_sess *e = find_export(a, q->session, &slot);
    if (e == NULL || !e->ready || q->file >= e->m.n_files) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "no ready export session %" PRIu64 " with file %u; export again", q->session,
                     q->file);
        return;
    }
    const nk_admin_file *f = &e->m.files[q->file];
    if (q->offset > f->size) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "offset %" PRIu64 " is past the end of %s (%" PRIu64 " bytes)", q->offset,
                     f->name, f->size);
        return;
    }
    int rc = NK_OK;
    if (q->file != e->rfile || q->offset != e->rhashed || e->rhash == NULL) {
        if (q->offset != 0) {
            reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                         "read of %s at %" PRIu64 " does not follow the %" PRIu64
                         " bytes read: a file is hashed as it is sent, so it is read in order",
                         f->name, q->offset, q->file == e->rfile ? e->rhashed : 0);
            return;
        }
        /* A new file (or a file read again from its start). */
        if (e->rfh != NULL) {
            (void)nk_rt_file_close(a->rt, e->rfh);
            e->rfh = NULL;
        }
        if (e->rhash == NULL && (e->rhash = XXH64_createState()) == NULL) {
            rc = NK_ENOMEM;
        }
        e->rfile = q->file;
        e->rhashed = 0;
        if (rc == NK_OK) {
            XXH64_reset(e->rhash, 0);
        }
    }
    char path[PATH_CAP];
    if (rc == NK_OK && e->rfh == NULL) {
        rc = nk_path_fmt(path, sizeof(path), e->dir, f->name);
        rc = rc ? rc : nk_rt_file_open(a->rt, path, NK_OPEN_READ, &e->rfh);
    }
    size_t want = q->max_len == 0 ? NK_ADMIN_CHUNK_DEFAULT : q->max_len;
    if (want > f->size - q->offset) {
        want = (size_t)(f->size - q->offset);
    }
    uint8_t *buf = rc == NK_OK ? malloc(want > 0 ? want : 1) : NULL;
    size_t got = 0;
    if (rc == NK_OK && buf == NULL) {
        rc = NK_ENOMEM;
    }
    rc = rc ? rc : nk_rt_file_read_at(a->rt, e->rfh, q->offset, buf, want, &got);
    if (rc == NK_OK && got != want) {
        rc = NK_EIO;
    }
    if (rc != NK_OK) {
        free(buf);
        e->rhashed = UINT64_MAX; /* this file must be read again from its start */
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL, "reading %s: %s", f->name,
                     nk_strerror(rc));
        return;
    }
    XXH64_update(e->rhash, buf, got);
    e->rhashed += got;
    nk_admin_resp *p = resp_begin(a, q->op, q->id);
    p->data = nk_slice_make(buf, got);
    p->eof = q->offset + got == f->size;
    if (p->eof) {
        p->xxh64 = XXH64_digest(e->rhash);
        (void)nk_rt_file_close(a->rt, e->rfh);
        e->rfh = NULL;
    }
    send_resp(a, conn, p);
    a->stats.snapshot_bytes_sent += got;
    free(buf);
}

static void do_release(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    size_t slot = 0;
    export_sess *e = find_export(a, q->session, &slot);
    if (e != NULL && (e->ready || e->rc != NK_OK)) {
        export_drop(a, slot);
    } else if (e != NULL) {
        e->conn = 0; /* still exporting: dropped when it finishes */
    }
    reply_status(a, conn, q->op, q->id, NK_ADMIN_OK, "released");
}

/* ------------------------------------------------------------- import --- */

static void import_close_files(import_sess *m, nk_rt *rt)
{
    for (uint32_t i = 0; i < NK_ADMIN_SNAP_MAX_FILES; i++) {
        if (m->files[i] != NULL) {
            (void)nk_rt_file_close(rt, m->files[i]);
            m->files[i] = NULL;
        }
        if (m->hash[i] != NULL) {
            XXH64_freeState(m->hash[i]);
            m->hash[i] = NULL;
        }
    }
}

static void import_end(nk_admin_service *a)
{
    import_sess *m = a->imp;
    a->imp = NULL;
    import_close_files(m, a->rt);
    remove_flat_dir(a->rt, m->dir);
    free(m);
}

static void do_import_begin(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    const nk_admin_manifest *mf = &q->manifest;
    uint64_t self = nk_store_id(a->s);
    if (a->recovering || a->imp != NULL) {
        reply_status(
            a, conn, q->op, q->id, NK_ADMIN_BUSY, "store %" PRIu64 " is %s; retry shortly", self,
            a->recovering ? "rolling back an interrupted install" : "receiving another snapshot");
        return;
    }
    nk_errbuf eb;
    if (mf->desc.id != q->region_id || q->peer_id == 0 || mf->index == 0 || mf->term == 0 ||
        nk_region_validate(&mf->desc, &eb) != NK_OK) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "ImportRegionSnapshot: the manifest must describe region %" PRIu64
                     " at a non-zero index and term, and name our peer id",
                     q->region_id);
        return;
    }
    nk_region known;
    uint8_t kstate = 0;
    bool tomb_ok = nk_store_region_meta(a->s, q->region_id, &known, &kstate) == NK_OK &&
                   kstate == NK_REGION_TOMBSTONE &&
                   mf->desc.epoch.conf_version > known.epoch.conf_version;
    if (nk_region_peer_on_store(&mf->desc, self) != NULL ||
        nk_region_peer_by_id(&mf->desc, q->peer_id) != NULL ||
        (nk_store_region_meta(a->s, q->region_id, NULL, NULL) == NK_OK && !tomb_ok)) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_EXISTS,
                     "store %" PRIu64 " hosts or hosted region %" PRIu64
                     " already, or peer %" PRIu64 " is taken; nothing to import",
                     self, q->region_id, q->peer_id);
        return;
    }
    import_sess *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL, "out of memory");
        return;
    }
    m->a = a;
    m->id = ++a->next_session;
    m->conn = conn;
    m->phase = IMP_RECEIVING;
    m->peer_id = q->peer_id;
    m->m = *mf;
    char name[64];
    snprintf(name, sizeof(name), "import-%" PRIu64, q->region_id);
    (void)nk_path_fmt(m->dir, sizeof(m->dir), a->snapdir, name);
    remove_flat_dir(a->rt, m->dir);
    int rc = nk_dir_ensure(a->rt, m->dir, a->snapdir);
    for (uint32_t i = 0; rc == NK_OK && i < mf->n_files; i++) {
        for (uint32_t k = 0; k < i; k++) {
            if (strcmp(mf->files[k].name, mf->files[i].name) == 0) {
                rc = NK_EINVAL;
            }
        }
        char path[PATH_CAP];
        rc = rc ? rc : nk_path_fmt(path, sizeof(path), m->dir, mf->files[i].name);
        rc = rc ? rc
                : nk_rt_file_open(a->rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL,
                                  &m->files[i]);
        m->hash[i] = rc == NK_OK ? XXH64_createState() : NULL;
        if (rc == NK_OK && m->hash[i] == NULL) {
            rc = NK_ENOMEM;
        }
        if (rc == NK_OK) {
            XXH64_reset(m->hash[i], 0);
        }
    }
    a->imp = m;
    if (rc != NK_OK) {
        import_end(a);
        reply_status(a, conn, q->op, q->id, rc == NK_EINVAL ? NK_ADMIN_INVALID : NK_ADMIN_INTERNAL,
                     "preparing the staging directory %s: %s", m->dir, nk_strerror(rc));
        return;
    }
    nk_admin_resp *p = resp_begin(a, q->op, q->id);
    p->session = m->id;
    send_resp(a, conn, p);
}

static import_sess *import_for(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    import_sess *m = a->imp;
    if (m == NULL || m->id != q->session || m->conn != conn || m->phase != IMP_RECEIVING) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "no import session %" PRIu64 " receiving on this connection; start again "
                     "with ImportRegionSnapshot",
                     q->session);
        return NULL;
    }
    return m;
}

static void do_import_chunk(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    import_sess *m = import_for(a, conn, q);
    if (m == NULL) {
        return;
    }
    if (q->file >= m->m.n_files || q->offset != m->received[q->file] ||
        m->received[q->file] + q->data.len > m->m.files[q->file].size) {
        const char *name = q->file < m->m.n_files ? m->m.files[q->file].name : "?";
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                     "chunk of file %u (%s) at offset %" PRIu64 " (+%zu) does not follow the "
                     "%" PRIu64 " bytes received or overruns the manifest size; import aborted",
                     q->file, name, q->offset, q->data.len,
                     q->file < m->m.n_files ? m->received[q->file] : 0);
        import_end(a);
        return;
    }
    int rc = nk_rt_file_append(a->rt, m->files[q->file], q->data.data, q->data.len);
    if (rc != NK_OK) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL,
                     "writing %s into the staging directory: %s; import aborted",
                     m->m.files[q->file].name, nk_strerror(rc));
        import_end(a);
        return;
    }
    XXH64_update(m->hash[q->file], q->data.data, q->data.len);
    m->received[q->file] += q->data.len;
    if (m->received[q->file] == m->m.files[q->file].size) {
        /* Complete: compare at FinishImport, with every other file. */
        m->digest[q->file] = XXH64_digest(m->hash[q->file]);
        m->want[q->file] = q->xxh64;
    }
    m->total += q->data.len;
    a->stats.snapshot_bytes_received += q->data.len;
    nk_admin_resp *p = resp_begin(a, q->op, q->id);
    p->session = m->id;
    p->bytes = m->total;
    send_resp(a, conn, p);
}

static void wipe_start(nk_admin_service *a, const nk_region *desc,
                       void (*done)(nk_admin_service *a, wipe *w, int rc));

static void install_reply(nk_admin_service *a, int rc, const char *what)
{
    import_sess *m = a->imp;
    nk_admin_resp *p = resp_begin(a, NK_ADMIN_SNAP_IMPORT_FINISH, m->req_id);
    p->session = m->id;
    p->bytes = m->total;
    if (rc != NK_OK) {
        p->status = rc == NK_ECORRUPT ? NK_ADMIN_CORRUPT
                    : rc == NK_EEXIST ? NK_ADMIN_EXISTS
                                      : NK_ADMIN_INTERNAL;
        snprintf(p->msg, sizeof(p->msg),
                 "install of region %" PRIu64 " failed at %s: %s; nothing was published, retry "
                 "the import",
                 m->m.desc.id, what, nk_strerror(rc));
        nk_log(a->rt, NK_LOG_WARN, "admin: %s", p->msg);
    } else {
        snprintf(p->msg, sizeof(p->msg),
                 "region %" PRIu64 " installed at index %" PRIu64 " and hosted by peer %" PRIu64,
                 m->m.desc.id, m->m.index, m->peer_id);
    }
    send_resp(a, m->conn, p);
    import_end(a);
}

static void rollback_done(nk_admin_service *a, wipe *w, int rc)
{
    (void)w;
    int rc2 = nk_store_install_abort(a->s, a->imp->m.desc.id);
    if (rc != NK_OK || (rc2 != NK_OK && rc2 != NK_ENOENT)) {
        nk_log(a->rt, NK_LOG_ERROR,
               "admin: rolling back region %" PRIu64 " failed (%s); restart the store to retry "
               "the rollback",
               a->imp->m.desc.id, nk_errname(rc != NK_OK ? rc : rc2));
    }
    install_reply(a, NK_EIO, "publish (rolled back)");
}

static void installed(void *arg, int rc)
{
    nk_admin_service *a = arg;
    if (a->imp == NULL) {
        return;
    }
    if (rc == NK_OK) {
        install_reply(a, NK_OK, "");
        return;
    }
    if (rc == NK_ECRASHED) {
        return;
    }
    /* Not published: take the ingested data out again, then the entry. */
    wipe_start(a, &a->imp->m.desc, rollback_done);
}

static void ingested(void *arg, int status, const nk_region_result *r, const nk_errbuf *eb)
{
    nk_admin_service *a = arg;
    (void)r;
    a->ingesting = false;
    if (a->dead) {
        a->dead = false;
        nk_admin_service_free(a);
        return;
    }
    if (a->imp == NULL) {
        return;
    }
    import_sess *m = a->imp;
    if (status != NK_OK) {
        nk_log(a->rt, NK_LOG_WARN, "admin: ingest of region %" PRIu64 ": %s", m->m.desc.id,
               eb != NULL ? eb->msg : nk_strerror(status));
        (void)nk_store_install_abort(a->s, m->m.desc.id);
        install_reply(a, status, "ingest");
        return;
    }
    m->ingested = true;
    int rc = nk_failpoint(a->rt, "snapshot.install.after_ingest");
    nk_raft_conf conf;
    nk_region_conf(&m->m.desc, &conf);
    if (rc == NK_OK) {
        rc =
            nk_store_install_finish(a->s, m->m.desc.id, &conf, m->m.index, m->m.term, installed, a);
    }
    if (rc != NK_OK) {
        installed(a, rc);
    }
}

static void do_import_finish(nk_admin_service *a, uint64_t conn, const nk_admin_req *q)
{
    import_sess *m = import_for(a, conn, q);
    if (m == NULL) {
        return;
    }
    m->req_id = q->id;
    int rc = NK_OK;
    for (uint32_t i = 0; rc == NK_OK && i < m->m.n_files; i++) {
        const nk_admin_file *f = &m->m.files[i];
        if (f->size == 0) {
            m->digest[i] = m->want[i] = XXH64(NULL, 0, 0); /* no chunk carries it */
        }
        uint64_t h = m->received[i] == f->size ? m->digest[i] : XXH64_digest(m->hash[i]);
        if (m->received[i] != f->size || h != m->want[i]) {
            reply_status(a, conn, q->op, q->id, NK_ADMIN_CORRUPT,
                         "file %s: received %" PRIu64 " of %" PRIu64 " bytes, xxh64 %016" PRIx64
                         " (sender %016" PRIx64 "); import aborted, export again",
                         f->name, m->received[i], f->size, h, m->want[i]);
            import_end(a);
            return;
        }
        rc = nk_rt_file_sync(a->rt, m->files[i]);
    }
    rc = rc ? rc : nk_rt_dir_sync(a->rt, m->dir);
    if (rc != NK_OK) {
        reply_status(a, conn, q->op, q->id, NK_ADMIN_INTERNAL, "syncing %s: %s", m->dir,
                     nk_strerror(rc));
        import_end(a);
        return;
    }
    import_close_files(m, a->rt);
    m->phase = IMP_INSTALLING;
    nk_region local = m->m.desc;
    nk_region_peer self = {
        .store_id = nk_store_id(a->s), .peer_id = m->peer_id, .role = NK_RAFT_LEARNER};
    nk_errbuf eb;
    rc = nk_region_peer_set(&local, &self);
    rc = rc ? rc : nk_store_install_begin(a->s, &local, &eb);
    if (rc != NK_OK) {
        install_reply(a, rc, "LOCALMETA APPLYING");
        return;
    }
    rc = nk_failpoint(a->rt, "snapshot.install.after_applying");
    rc = rc ? rc : nk_db_ingest(a->db, m->dir, ingested, a);
    a->ingesting = rc == NK_OK;
    if (rc != NK_OK && rc != NK_ECRASHED) {
        (void)nk_store_install_abort(a->s, m->m.desc.id);
        install_reply(a, rc, "ingest start");
    }
}

/* -------------------------------------------------------------- wipe --- */

static void wipe_step(wipe *w);

static void wipe_written(void *arg, int status)
{
    wipe *w = arg;
    if (w->a == NULL) {
        nk_batch_free(&w->b);
        free(w);
        return;
    }
    if (status != NK_OK) {
        nk_admin_service *a = w->a;
        a->wipe = NULL;
        w->done(a, w, status);
        nk_batch_free(&w->b);
        free(w);
        return;
    }
    wipe_step(w);
}

/* Delete the next WIPE_BATCH keys of the range (everything visible is
 * deleted so far, so each step restarts at the range start). */
static void wipe_step(wipe *w)
{
    nk_admin_service *a = w->a;
    unsigned n = 0;
    int rc = nk_kvsm_wipe_batch(a->db, &w->desc, WIPE_BATCH, &w->b, &n);
    if (rc == NK_OK && n > 0) {
        rc = nk_db_write(a->db, &w->b, true, wipe_written, w);
        if (rc == NK_OK) {
            return;
        }
    }
    a->wipe = NULL;
    w->done(a, w, rc);
    nk_batch_free(&w->b);
    free(w);
}

static void wipe_start(nk_admin_service *a, const nk_region *desc,
                       void (*done)(nk_admin_service *a, wipe *w, int rc))
{
    wipe *w = calloc(1, sizeof(*w));
    if (w == NULL || nk_batch_init(&w->b) != NK_OK) {
        free(w);
        done(a, NULL, NK_ENOMEM);
        return;
    }
    w->a = a;
    w->desc = *desc;
    w->done = done;
    a->wipe = w;
    wipe_step(w);
}

/* Startup: every region left APPLYING by a crash gets its range deleted
 * and its entry removed, one after the other. */
static void recover_next(nk_admin_service *a);

static void recover_done(nk_admin_service *a, wipe *w, int rc)
{
    uint64_t id = w != NULL ? w->desc.id : 0;
    if (rc == NK_OK && w != NULL) {
        rc = nk_store_install_abort(a->s, id);
    }
    if (rc != NK_OK) {
        nk_log(a->rt, NK_LOG_ERROR,
               "admin: rollback of interrupted install of region %" PRIu64
               " failed (%s); imports stay refused, restart the store to retry",
               id, nk_errname(rc));
        return;
    }
    nk_log(a->rt, NK_LOG_INFO, "admin: interrupted install of region %" PRIu64 " rolled back", id);
    recover_next(a);
}

static void recover_next(nk_admin_service *a)
{
    nk_region desc;
    if (nk_store_applying(a->s, &desc, 1) == 0) {
        a->recovering = false;
        return;
    }
    char name[64];
    char dir[PATH_CAP];
    snprintf(name, sizeof(name), "import-%" PRIu64, desc.id);
    if (nk_path_fmt(dir, sizeof(dir), a->snapdir, name) == NK_OK) {
        remove_flat_dir(a->rt, dir);
    }
    wipe_start(a, &desc, recover_done);
}

/* ----------------------------------------------------------- service --- */

static void svc_open(void *ctx, uint64_t conn, const struct nk_hello *hello)
{
    (void)ctx;
    (void)conn;
    (void)hello;
}

static void svc_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_admin_service *a = ctx;
    nk_admin_req *q = &a->req;
    int rc = kind == NK_KIND_ADMIN_REQ ? nk_admin_req_decode(data, len, q) : NK_EPROTO;
    if (rc != NK_OK) {
        nk_log(a->rt, NK_LOG_WARN,
               "admin: conn %" PRIu64 ": malformed request (kind %u, %s); closing", conn, kind,
               nk_errname(rc));
        if (a->imp != NULL && a->imp->conn == conn && a->imp->phase == IMP_RECEIVING) {
            import_end(a);
        }
        nk_store_close_conn(a->s, conn);
        return;
    }
    switch (q->op) {
    case NK_ADMIN_ADD_PEER:
        do_add_peer(a, conn, q);
        break;
    case NK_ADMIN_PROMOTE_PEER:
        do_promote(a, conn, q);
        break;
    case NK_ADMIN_REMOVE_PEER:
        do_remove(a, conn, q);
        break;
    case NK_ADMIN_TRANSFER_LEADER:
        do_transfer(a, conn, q);
        break;
    case NK_ADMIN_REGION_STATUS:
        do_region_status(a, conn, q);
        break;
    case NK_ADMIN_STORE_STATUS:
        do_store_status(a, conn, q);
        break;
    case NK_ADMIN_DESTROY_PEER: {
        /* epoch: the leader's, whose membership no longer lists the peer. */
        int drc =
            nk_store_destroy_stale_peer(a->s, q->region_id, q->peer_id, q->epoch.conf_version);
        reply_status(a, conn, q->op, q->id,
                     drc == NK_OK       ? NK_ADMIN_OK
                     : drc == NK_ENOENT ? NK_ADMIN_REGION_NOT_FOUND
                                        : NK_ADMIN_EPOCH_MISMATCH,
                     "DestroyStalePeer of peer %" PRIu64 ": %s", q->peer_id,
                     drc == NK_OK       ? "tombstoned"
                     : drc == NK_ENOENT ? "not hosted here"
                                        : "our membership is not older than the one given");
        break;
    }
    case NK_ADMIN_SET_ADDRESS:
        if (q->store_id == 0 || q->addr[0] == '\0') {
            reply_status(a, conn, q->op, q->id, NK_ADMIN_INVALID,
                         "SetStoreAddress needs a store id and an address");
        } else if (q->store_id != nk_store_id(a->s)) {
            int src = nk_store_set_address(a->s, q->store_id, q->addr);
            reply_status(a, conn, q->op, q->id, src == NK_OK ? NK_ADMIN_OK : NK_ADMIN_BUSY, "%s",
                         src == NK_OK ? "recorded" : "address book full");
        } else {
            reply_status(a, conn, q->op, q->id, NK_ADMIN_OK, "that is this store");
        }
        break;
    case NK_ADMIN_SNAP_EXPORT:
        do_export(a, conn, q);
        break;
    case NK_ADMIN_SNAP_READ:
        do_read(a, conn, q);
        break;
    case NK_ADMIN_SNAP_RELEASE:
        do_release(a, conn, q);
        break;
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
        do_import_begin(a, conn, q);
        break;
    case NK_ADMIN_SNAP_IMPORT_CHUNK:
        do_import_chunk(a, conn, q);
        break;
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        do_import_finish(a, conn, q);
        break;
    default:
        break;
    }
}

static void svc_close(void *ctx, uint64_t conn)
{
    nk_admin_service *a = ctx;
    for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
        export_sess *e = a->exports[i];
        if (e != NULL && e->conn == conn) {
            if (e->ready || e->rc != NK_OK) {
                export_drop(a, i);
            } else {
                e->conn = 0;
            }
        }
    }
    if (a->imp != NULL && a->imp->conn == conn) {
        if (a->imp->phase == IMP_RECEIVING) {
            import_end(a);
        } else {
            a->imp->conn = 0; /* the install goes on; its answer is dropped */
        }
    }
}

int nk_admin_service_new(nk_rt *rt, nk_store *s, nk_db *db, nk_kvsm *kvsm, const char *workdir,
                         nk_admin_service **out)
{
    return nk_admin_service_new_ex(rt, s, db, kvsm, workdir, false, out);
}

int nk_admin_service_new_ex(nk_rt *rt, nk_store *s, nk_db *db, nk_kvsm *kvsm, const char *workdir,
                            bool unsafe_skip_install_rollback, nk_admin_service **out)
{
    nk_admin_service *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->s = s;
    a->db = db;
    a->kvsm = kvsm;
    a->workdir = strdup(workdir);
    a->snapdir = nk_path_join(workdir, "snap");
    if (a->workdir == NULL || a->snapdir == NULL) {
        nk_admin_service_free(a);
        return NK_ENOMEM;
    }
    /* Leftover export directories of an earlier incarnation go. */
    nk_names names = {0};
    if (nk_rt_dir_list(rt, a->snapdir, &names) == NK_OK) {
        for (size_t i = 0; i < names.count; i++) {
            if (strncmp(names.names[i], "export-", 7) == 0) {
                char dir[PATH_CAP];
                if (nk_path_fmt(dir, sizeof(dir), a->snapdir, names.names[i]) == NK_OK) {
                    remove_flat_dir(rt, dir);
                }
            }
        }
        nk_names_free(&names);
    }
    if (unsafe_skip_install_rollback) {
        /* TEST ONLY (the simulator's planted bug): an interrupted install
         * stays APPLYING, known to the store. */
        *out = a;
        return NK_OK;
    }
    a->recovering = true;
    recover_next(a);
    *out = a;
    return NK_OK;
}

nk_store_service nk_admin_service_desc(nk_admin_service *a)
{
    nk_store_service svc = {
        .ctx = a, .on_open = svc_open, .on_message = svc_message, .on_close = svc_close};
    return svc;
}

bool nk_admin_service_ready(const nk_admin_service *a)
{
    return !a->recovering;
}

void nk_admin_service_free(nk_admin_service *a)
{
    if (a == NULL) {
        return;
    }
    if (a->ingesting) {
        a->dead = true; /* the engine still owes us the ingest's answer */
        return;
    }
    for (size_t i = 0; i < NK_ADMIN_MAX_EXPORTS; i++) {
        export_sess *e = a->exports[i];
        if (e != NULL) {
            if (e->ready || e->rc != NK_OK) {
                export_free(e, a->rt);
            } else {
                e->a = NULL; /* its job or export callback frees it */
            }
        }
    }
    if (a->imp != NULL) {
        import_close_files(a->imp, a->rt);
        free(a->imp);
    }
    if (a->wipe != NULL) {
        a->wipe->a = NULL;
    }
    nk_buf_free(&a->out);
    free(a->workdir);
    free(a->snapdir);
    free(a);
}

void nk_admin_stats_get(const nk_admin_service *a, nk_admin_stats *st)
{
    *st = a->stats;
}
