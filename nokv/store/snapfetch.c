/* snapfetch.c - refill a pending region's engine data from the leader (see snapfetch.h). */
#include "nokv/store/snapfetch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "nokv/client/admin_client.h"
#include "nokv/engine/batch.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/region.h"
#include "nokv/store/kvsm.h"
#include "nokv/util/assert.h"
#include "nokv/util/smallfile.h"

#define PATH_CAP 1200
#define WIPE_BATCH 1024
#define CALL_TIMEOUT_NS (10 * NK_NSEC_PER_SEC)
#define BACKOFF_MIN_NS (100 * NK_NSEC_PER_MSEC)
#define BACKOFF_MAX_NS (2 * NK_NSEC_PER_SEC)

enum phase {
    F_IDLE = 0,
    F_EXPORT,  /* ExportRegionSnapshot in flight */
    F_READ,    /* ReadSnapshot in flight */
    F_RELEASE, /* ReleaseSnapshot in flight */
    F_WIPE,    /* deleting the old range (engine write in flight) */
    F_INGEST,  /* nk_db_ingest in flight */
    F_BACKOFF, /* waiting to retry */
};

struct nk_snapfetch {
    nk_rt *rt;
    nk_store *s;
    nk_db *db;
    char *snapdir;
    int phase;
    nk_store_fetch req;
    nk_admin_client *cl;
    nk_admin_req q;
    nk_admin_manifest m; /* of the export being fetched */
    uint64_t session;
    uint32_t file;
    uint64_t off;
    uint64_t got; /* bytes received in this attempt */
    nk_file *fh;
    XXH64_state_t *h;
    char dir[PATH_CAP];
    nk_batch b;
    uint64_t timer;
    uint64_t backoff_ns;
    uint64_t started;
    uint32_t chunk; /* bytes per ReadSnapshot */
    bool db_busy; /* an engine callback is outstanding */
    bool dead;    /* freed while db_busy: the callback frees it */
    nk_snapfetch_stats st;
};

static void kick(void *ctx);

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

static void close_file(nk_snapfetch *f)
{
    if (f->fh != NULL) {
        (void)nk_rt_file_close(f->rt, f->fh);
        f->fh = NULL;
    }
}

static void release(nk_snapfetch *f)
{
    nk_admin_client_free(f->cl);
    f->cl = NULL;
    close_file(f);
    if (f->h != NULL) {
        XXH64_freeState(f->h);
        f->h = NULL;
    }
    nk_batch_free(&f->b);
    free(f->snapdir);
    free(f);
}

static void backoff_fire(void *arg)
{
    nk_snapfetch *f = arg;
    f->timer = 0;
    f->phase = F_IDLE;
    kick(f);
}

/* Give this attempt up: the engine is untouched unless the wipe began, and
 * then the region stays pending (the marker) and the next attempt redoes
 * everything. */
static void fail(nk_snapfetch *f, int rc, const char *what)
{
    nk_log(f->rt, NK_LOG_WARN,
           "snapfetch: region %" PRIu64 " snapshot %" PRIu64 " from store %" PRIu64
           ": %s failed (%s); retrying in %" PRIu64 " ms",
           f->req.region_id, f->req.index, f->req.from_store, what, nk_errname(rc),
           f->backoff_ns / NK_NSEC_PER_MSEC);
    f->st.failures++;
    close_file(f);
    if (f->dir[0] != '\0') {
        remove_flat_dir(f->rt, f->dir);
    }
    f->phase = F_BACKOFF;
    f->timer = nk_rt_timer_start(f->rt, f->backoff_ns, backoff_fire, f);
    f->backoff_ns = f->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : f->backoff_ns * 2;
}

/* A failpoint at `name`: true when this attempt must stop here (armed to
 * fail: retried like any failure; crashed: nothing may be touched). */
static bool failpoint(nk_snapfetch *f, const char *name)
{
    int rc = nk_failpoint(f->rt, name);
    if (rc == NK_OK) {
        return false;
    }
    if (rc != NK_ECRASHED) {
        fail(f, rc, name);
    }
    return true;
}

static void call(nk_snapfetch *f, int phase, nk_admin_cb cb)
{
    f->phase = phase;
    int rc = nk_admin_client_call(f->cl, &f->q, CALL_TIMEOUT_NS, cb, f);
    if (rc != NK_OK) {
        fail(f, rc, "sending an admin request");
    }
}

/* The region still waits for data at or below what we fetched. */
static bool still_wanted(nk_snapfetch *f)
{
    size_t n = nk_store_pending_fetches(f->s, NULL, 0);
    nk_store_fetch *cur = n > 0 ? malloc(n * sizeof(*cur)) : NULL;
    bool want = false;
    if (cur != NULL) {
        size_t m = nk_store_pending_fetches(f->s, cur, n);
        n = m < n ? m : n;
        for (size_t i = 0; i < n; i++) {
            if (cur[i].region_id == f->req.region_id) {
                want = cur[i].index <= f->m.index;
            }
        }
    }
    free(cur);
    return want;
}

/* -------------------------------------------------------------- ingest --- */

static void ingested(void *arg, int status, const nk_region_result *r, const nk_errbuf *eb)
{
    nk_snapfetch *f = arg;
    (void)r;
    f->db_busy = false;
    if (f->dead) {
        release(f);
        return;
    }
    if (status != NK_OK) {
        nk_log(f->rt, NK_LOG_WARN, "snapfetch: ingest of region %" PRIu64 ": %s",
               f->req.region_id, eb != NULL ? eb->msg : nk_strerror(status));
        fail(f, status, "ingest");
        return;
    }
    if (failpoint(f, "snapfetch.after_ingest")) {
        return;
    }
    /* The ingest is published in one synced manifest edit: the data is
     * durable, so the store may drop its marker now. */
    int rc = nk_store_data_installed(f->s, f->req.region_id, f->m.index);
    if (rc != NK_OK) {
        nk_log(f->rt, NK_LOG_WARN,
               "snapfetch: region %" PRIu64 " is no longer pending (%s); data at %" PRIu64
               " stays as ingested",
               f->req.region_id, nk_errname(rc), f->m.index);
    }
    uint64_t ns = nk_rt_now(f->rt) - f->started;
    f->st.installed++;
    f->st.last_bytes = f->got;
    f->st.last_ns = ns;
    nk_log(f->rt, NK_LOG_INFO,
           "snapfetch: region %" PRIu64 " installed from store %" PRIu64 " at index %" PRIu64
           " (snapshot %" PRIu64 "): %u files, %" PRIu64 " bytes in %" PRIu64 " ms",
           f->req.region_id, f->req.from_store, f->m.index, f->req.index, f->m.n_files, f->got,
           ns / NK_NSEC_PER_MSEC);
    remove_flat_dir(f->rt, f->dir);
    f->dir[0] = '\0';
    nk_admin_client_free(f->cl);
    f->cl = NULL;
    f->backoff_ns = BACKOFF_MIN_NS;
    f->phase = F_IDLE;
    kick(f); /* the next pending region, if any */
}

/* --------------------------------------------------------------- wipe --- */

static void wipe_step(nk_snapfetch *f);

static void wiped(void *arg, int status)
{
    nk_snapfetch *f = arg;
    f->db_busy = false;
    if (f->dead) {
        release(f);
        return;
    }
    if (status != NK_OK) {
        fail(f, status, "deleting the old range");
        return;
    }
    wipe_step(f);
}

/* Delete the next WIPE_BATCH keys of the range (everything visible so far
 * is deleted, so each step restarts at the range start), synced; then
 * ingest. */
static void wipe_step(nk_snapfetch *f)
{
    unsigned n = 0;
    int rc = nk_kvsm_wipe_batch(f->db, &f->req.desc, WIPE_BATCH, &f->b, &n);
    if (rc == NK_OK && n > 0) {
        f->db_busy = true;
        rc = nk_db_write(f->db, &f->b, true, wiped, f);
        if (rc == NK_OK) {
            return;
        }
        f->db_busy = false;
    }
    if (rc != NK_OK) {
        fail(f, rc, "deleting the old range");
        return;
    }
    if (failpoint(f, "snapfetch.before_ingest")) {
        return;
    }
    f->phase = F_INGEST;
    f->db_busy = true;
    rc = nk_db_ingest(f->db, f->dir, ingested, f);
    if (rc != NK_OK) {
        f->db_busy = false;
        fail(f, rc, "starting the ingest");
    }
}

/* --------------------------------------------------------------- pull --- */

static void on_release(void *arg, int rc, const nk_admin_resp *p)
{
    nk_snapfetch *f = arg;
    (void)p;
    if (rc == NK_ESTOPPED) {
        return; /* being freed */
    }
    /* The leader frees an unreleased export when our connection closes, so
     * a lost answer costs nothing. */
    if (!still_wanted(f)) {
        nk_log(f->rt, NK_LOG_INFO,
               "snapfetch: region %" PRIu64 " no longer needs the export at %" PRIu64,
               f->req.region_id, f->m.index);
        remove_flat_dir(f->rt, f->dir);
        f->dir[0] = '\0';
        f->phase = F_BACKOFF;
        f->timer = nk_rt_timer_start(f->rt, 0, backoff_fire, f);
        return;
    }
    f->phase = F_WIPE;
    wipe_step(f);
}

static void read_next(nk_snapfetch *f);

static int open_file(nk_snapfetch *f)
{
    char path[PATH_CAP];
    int rc = nk_path_fmt(path, sizeof(path), f->dir, f->m.files[f->file].name);
    rc = rc ? rc
            : nk_rt_file_open(f->rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f->fh);
    if (rc == NK_OK) {
        XXH64_reset(f->h, 0);
        f->off = 0;
    }
    return rc;
}

static void on_read(void *arg, int rc, const nk_admin_resp *p)
{
    nk_snapfetch *f = arg;
    if (rc == NK_ESTOPPED) {
        return;
    }
    if (rc == NK_OK && p->status != NK_ADMIN_OK) {
        nk_log(f->rt, NK_LOG_WARN, "snapfetch: ReadSnapshot: %s", p->msg);
        rc = NK_EIO;
    }
    const nk_admin_file *af = &f->m.files[f->file];
    if (rc == NK_OK && (f->off + p->data.len > af->size || (p->data.len == 0 && !p->eof))) {
        rc = NK_EPROTO; /* overruns the manifest, or no progress */
    }
    if (rc == NK_OK && p->data.len > 0) {
        rc = nk_rt_file_append(f->rt, f->fh, p->data.data, p->data.len);
        XXH64_update(f->h, p->data.data, p->data.len);
        f->off += p->data.len;
        f->got += p->data.len;
        f->st.bytes += p->data.len;
    }
    if (rc != NK_OK) {
        fail(f, rc, "reading the snapshot stream");
        return;
    }
    if (failpoint(f, "snapfetch.mid_stream")) {
        return;
    }
    if (f->off == af->size && !p->eof) {
        /* The sender's hash comes with the eof answer (an export's manifest
         * carries none: the leader hashes each file as it reads it for
         * sending), so ask once more at the end of the file. */
        read_next(f);
        return;
    }
    if (f->off == af->size) {
        uint64_t h = XXH64_digest(f->h);
        uint64_t want = af->xxh64 != 0 ? af->xxh64 : p->xxh64;
        if (h != want) {
            nk_log(f->rt, NK_LOG_WARN,
                   "snapfetch: %s: xxh64 %016" PRIx64 ", the leader's %016" PRIx64, af->name, h,
                   want);
            fail(f, NK_ECORRUPT, "checking a snapshot file");
            return;
        }
        rc = nk_rt_file_sync(f->rt, f->fh);
        close_file(f);
        if (rc != NK_OK) {
            fail(f, rc, "syncing a snapshot file");
            return;
        }
        f->file++;
        if (f->file < f->m.n_files) {
            rc = open_file(f);
            if (rc != NK_OK) {
                fail(f, rc, "creating a snapshot file");
                return;
            }
        }
    } else if (p->eof) {
        fail(f, NK_EPROTO, "reading the snapshot stream (short file)");
        return;
    }
    read_next(f);
}

static void read_next(nk_snapfetch *f)
{
    if (f->file == f->m.n_files) {
        int rc = nk_rt_dir_sync(f->rt, f->dir);
        if (rc != NK_OK) {
            fail(f, rc, "syncing the staging directory");
            return;
        }
        memset(&f->q, 0, sizeof(f->q));
        f->q.op = NK_ADMIN_SNAP_RELEASE;
        f->q.region_id = f->req.region_id;
        f->q.session = f->session;
        call(f, F_RELEASE, on_release);
        return;
    }
    memset(&f->q, 0, sizeof(f->q));
    f->q.op = NK_ADMIN_SNAP_READ;
    f->q.region_id = f->req.region_id;
    f->q.session = f->session;
    f->q.file = f->file;
    f->q.offset = f->off;
    f->q.max_len = f->chunk;
    call(f, F_READ, on_read);
}

static void on_export(void *arg, int rc, const nk_admin_resp *p)
{
    nk_snapfetch *f = arg;
    if (rc == NK_ESTOPPED) {
        return;
    }
    if (rc == NK_OK && p->status != NK_ADMIN_OK) {
        nk_log(f->rt, NK_LOG_INFO, "snapfetch: region %" PRIu64 ": export on store %" PRIu64 ": %s",
               f->req.region_id, f->req.from_store, p->msg);
        rc = p->status == NK_ADMIN_BUSY ? NK_EAGAIN : NK_EIO;
    }
    if (rc == NK_OK &&
        (p->manifest.desc.id != f->req.region_id || p->manifest.n_files == 0 ||
         p->manifest.n_files > NK_ADMIN_SNAP_MAX_FILES || p->manifest.index < f->req.index)) {
        /* Below the snapshot point: a new leader that has not applied as
         * far yet; entries up to the point would be missing. Retry. */
        rc = NK_EAGAIN;
    }
    if (rc != NK_OK) {
        fail(f, rc, "exporting on the leader");
        return;
    }
    f->m = p->manifest;
    f->session = p->session;
    char name[64];
    snprintf(name, sizeof(name), "fetch-%" PRIu64, f->req.region_id);
    rc = nk_path_fmt(f->dir, sizeof(f->dir), f->snapdir, name);
    if (rc == NK_OK) {
        remove_flat_dir(f->rt, f->dir);
        rc = nk_dir_ensure(f->rt, f->dir, f->snapdir);
    }
    f->file = 0;
    rc = rc ? rc : open_file(f);
    if (rc != NK_OK) {
        fail(f, rc, "preparing the staging directory");
        return;
    }
    read_next(f);
}

/* ------------------------------------------------------------- driver --- */

static void kick(void *ctx)
{
    nk_snapfetch *f = ctx;
    if (f->phase != F_IDLE || f->dead) {
        return; /* one snapshot at a time; the others wait their turn */
    }
    if (nk_store_pending_fetches(f->s, &f->req, 1) == 0) {
        return;
    }
    nk_admin_client_free(f->cl);
    f->cl = NULL;
    f->dir[0] = '\0';
    f->got = 0;
    f->started = nk_rt_now(f->rt);
    char addr[160];
    int rc = f->req.from_store == 0 || f->req.from_store == nk_store_id(f->s)
                 ? NK_ENOENT
                 : nk_store_address(f->s, f->req.from_store, addr, sizeof(addr));
    rc = rc ? rc : nk_admin_client_new(f->rt, addr, &f->cl);
    if (rc != NK_OK) {
        fail(f, rc, "finding the leader's address");
        return;
    }
    nk_log(f->rt, NK_LOG_INFO,
           "snapfetch: region %" PRIu64 " needs its engine data at >= %" PRIu64
           "; fetching from store %" PRIu64,
           f->req.region_id, f->req.index, f->req.from_store);
    memset(&f->q, 0, sizeof(f->q));
    f->q.op = NK_ADMIN_SNAP_EXPORT;
    f->q.region_id = f->req.region_id;
    f->q.force = true; /* a raft catch-up: the leader keeps no log hold for it */
    call(f, F_EXPORT, on_export);
}

int nk_snapfetch_new(nk_rt *rt, nk_store *s, nk_db *db, const char *workdir,
                     nk_snapfetch **out)
{
    nk_snapfetch *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NK_ENOMEM;
    }
    f->rt = rt;
    f->s = s;
    f->db = db;
    f->backoff_ns = BACKOFF_MIN_NS;
    f->chunk = NK_SNAPFETCH_CHUNK;
    f->snapdir = nk_path_join(workdir, "snap");
    f->h = XXH64_createState();
    int rc = f->snapdir == NULL || f->h == NULL ? NK_ENOMEM : nk_batch_init(&f->b);
    if (rc != NK_OK) {
        release(f);
        return rc;
    }
    /* A staging directory of an earlier incarnation is garbage. */
    nk_names names = {0};
    if (nk_rt_dir_list(rt, f->snapdir, &names) == NK_OK) {
        for (size_t i = 0; i < names.count; i++) {
            if (strncmp(names.names[i], "fetch-", 6) == 0) {
                char dir[PATH_CAP];
                if (nk_path_fmt(dir, sizeof(dir), f->snapdir, names.names[i]) == NK_OK) {
                    remove_flat_dir(rt, dir);
                }
            }
        }
        nk_names_free(&names);
    }
    *out = f;
    return NK_OK;
}

void nk_snapfetch_set_chunk(nk_snapfetch *f, uint32_t bytes)
{
    f->chunk = bytes == 0 ? NK_SNAPFETCH_CHUNK : bytes > NK_ADMIN_CHUNK_MAX ? NK_ADMIN_CHUNK_MAX : bytes;
}

void nk_snapfetch_attach(nk_snapfetch *f)
{
    nk_store_set_fetcher(f->s, kick, f);
}

void nk_snapfetch_free(nk_snapfetch *f)
{
    if (f == NULL) {
        return;
    }
    if (f->timer != 0) {
        (void)nk_rt_timer_cancel(f->rt, f->timer);
        f->timer = 0;
    }
    nk_admin_client_free(f->cl); /* its callback sees NK_ESTOPPED */
    f->cl = NULL;
    if (f->db_busy) {
        f->dead = true; /* the engine still owes a callback: it frees f */
        return;
    }
    release(f);
}

void nk_snapfetch_abandon(nk_snapfetch *f)
{
    if (f == NULL) {
        return;
    }
    f->db_busy = false; /* the engine was abandoned: no callback comes */
    nk_snapfetch_free(f);
}

void nk_snapfetch_stats_get(const nk_snapfetch *f, nk_snapfetch_stats *st)
{
    *st = f->st;
}
