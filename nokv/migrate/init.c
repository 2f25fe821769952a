/* init.c - promote a standalone workdir to a cluster seed (see init.h). */
#include "nokv/migrate/init.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db.h"
#include "nokv/engine/inspect.h"
#include "nokv/migrate/plan.h"
#include "nokv/migrate/seedsnap.h"
#include "nokv/proto/region.h"
#include "nokv/store/localmeta.h"
#include "nokv/store/raftlog.h"
#include "nokv/store/seed.h"
#include "nokv/store/workdir.h"
#include "nokv/util/smallfile.h"

typedef struct init_op {
    nk_rt *rt;
    char *dir;
    nk_init_args a;
    nk_init_done_fn done;
    void *arg;
    nk_workdir *wd;
    nk_db *db;
    nk_raftlog *log;
    nk_checkpoint cp; /* the checkpoint as last written or found */
    nk_region seed;
    nk_init_result res;
    nk_errbuf eb;
    int pending_rc;
} init_op;

static void keep_snapshot_result(init_op *op, nk_seedsnap *s);
static void step_catalog(init_op *op);
static void step_snapshot(init_op *op);
static void step_raft(init_op *op);
static void step_pointer(init_op *op);
static void step_final(init_op *op);

/* ------------------------------------------------------------ finishing --- */

static void complete(init_op *op, int rc)
{
    if (rc == NK_ECRASHED) {
        nk_workdir_abandon(op->wd);
    } else {
        nk_workdir_close(op->wd);
    }
    if (rc == NK_OK) {
        memset(&op->eb, 0, sizeof(op->eb));
    } else if (op->eb.msg[0] == '\0') {
        nk_errbuf_set(&op->eb, "migrate init: %s", nk_strerror(rc));
    }
    op->done(op->arg, rc, &op->res, op->eb.msg);
    free(op->dir);
    free(op);
}

typedef struct closing {
    init_op *op;
    int rc;
} closing;

static void db_closed_on_error(void *arg, int status)
{
    closing *c = arg;
    (void)status;
    init_op *op = c->op;
    int rc = c->rc;
    free(c);
    complete(op, rc);
}

static void finish(init_op *op, int rc)
{
    if (op->log != NULL) {
        nk_raftlog_close(op->log);
        op->log = NULL;
    }
    if (op->db != NULL) {
        nk_db *db = op->db;
        op->db = NULL;
        if (rc == NK_ECRASHED) {
            nk_db_abandon(db);
        } else {
            closing *c = malloc(sizeof(*c));
            if (c != NULL) {
                c->op = op;
                c->rc = rc;
                nk_db_close(db, db_closed_on_error, c);
                return;
            }
            nk_db_abandon(db);
        }
    }
    complete(op, rc);
}

/* Record `stage` unless the checkpoint is already past it, then pass the
 * stage's failpoint. */
static int reach(init_op *op, nk_stage stage)
{
    int rc = NK_OK;
    if (op->cp.stage < stage || op->cp.stage > NK_STAGE_SEEDED_FINALIZED) {
        nk_checkpoint cp;
        memset(&cp, 0, sizeof(cp));
        cp.stage = stage;
        cp.store_id = op->a.store_id;
        cp.region_id = op->a.region_id;
        cp.peer_id = op->a.peer_id;
        rc = nk_checkpoint_write(op->rt, op->dir, &cp, &op->eb);
        if (rc == NK_OK) {
            op->cp = cp;
        }
    }
    if (rc == NK_OK) {
        char fp[96];
        snprintf(fp, sizeof(fp), "migrate.init.%s", nk_stage_name(stage));
        rc = nk_failpoint(op->rt, fp);
        if (rc != NK_OK) {
            nk_errbuf_set(&op->eb, "migrate init: stopped at failpoint %s: %s", fp,
                          nk_strerror(rc));
        }
    }
    if (rc == NK_OK) {
        nk_log(op->rt, NK_LOG_INFO, "migrate init: %s: stage %s done", op->dir,
               nk_stage_name(stage));
    }
    return rc;
}

/* ------------------------------------------------------------ the parts --- */

static void seed_region(const nk_init_args *a, nk_region *r)
{
    nk_region_init_full(r, a->region_id);
    nk_region_peer p = {a->store_id, a->peer_id, NK_RAFT_VOTER};
    (void)nk_region_peer_set(r, &p);
}

static bool same_region(const nk_region *x, const nk_region *y)
{
    if (x->id != y->id || x->start_len != y->start_len || x->end_len != y->end_len ||
        memcmp(x->start, y->start, x->start_len) != 0 || memcmp(x->end, y->end, x->end_len) != 0 ||
        x->epoch.version != y->epoch.version || x->epoch.conf_version != y->epoch.conf_version ||
        x->n_peers != y->n_peers) {
        return false;
    }
    for (uint32_t i = 0; i < x->n_peers; i++) {
        if (x->peers[i].store_id != y->peers[i].store_id ||
            x->peers[i].peer_id != y->peers[i].peer_id || x->peers[i].role != y->peers[i].role) {
            return false;
        }
    }
    return true;
}

static void seed_conf(uint64_t peer_id, nk_raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    (void)nk_raft_conf_set(c, peer_id, NK_RAFT_VOTER);
}

/* The region's raft state is exactly the seed's. */
static bool raft_is_seed(const nk_raftlog_region_state *st, uint64_t peer_id)
{
    return st->has_snapshot && st->snap.index == NK_SEED_RAFT_INDEX &&
           st->snap.term == NK_SEED_RAFT_TERM && st->snap.conf.n == 1 &&
           nk_raft_conf_role(&st->snap.conf, peer_id) == NK_RAFT_VOTER && st->has_hard_state &&
           st->hs.term == NK_SEED_RAFT_TERM && st->hs.vote == 0 &&
           st->hs.commit == NK_SEED_RAFT_INDEX && st->last_index == NK_SEED_RAFT_INDEX;
}

/* The catalog may hold nothing, or exactly the seed region. */
static int catalog_conflict(const nk_localmeta *m, const nk_init_args *a, const nk_region *seed,
                            nk_errbuf *eb)
{
    if (m->store_id != 0 && m->store_id != a->store_id) {
        nk_errbuf_set(eb,
                      "migrate: local catalog %s belongs to store %" PRIu64 ", not store %" PRIu64
                      ": refusing to overwrite another store's truth",
                      NK_LOCALMETA_FILE, m->store_id, a->store_id);
        return NK_EEXIST;
    }
    for (size_t i = 0; i < m->n_regions; i++) {
        const nk_localmeta_region *r = &m->regions[i];
        if (r->desc.id != seed->id || !same_region(&r->desc, seed) ||
            r->state != NK_REGION_NORMAL) {
            nk_errbuf_set(eb,
                          "migrate: local catalog already contains conflicting region state "
                          "(region %" PRIu64 "); inspect %s before retrying",
                          r->desc.id, NK_LOCALMETA_FILE);
            return NK_EEXIST;
        }
    }
    return NK_OK;
}

int nk_migrate_validate_seed(nk_rt *rt, const char *workdir, uint64_t store_id, uint64_t region_id,
                             uint64_t peer_id, nk_errbuf *eb)
{
    nk_init_args a = {workdir, store_id, region_id, peer_id};
    nk_region seed;
    seed_region(&a, &seed);
    nk_errbuf inner;
    memset(&inner, 0, sizeof(inner));
    /* catalog */
    nk_localmeta m;
    int rc = nk_localmeta_load(rt, workdir, &m, &inner);
    if (rc == NK_OK) {
        nk_localmeta_region *r = nk_localmeta_find(&m, region_id);
        if (m.store_id != store_id || r == NULL || !same_region(&r->desc, &seed) ||
            r->state != NK_REGION_NORMAL) {
            nk_errbuf_set(&inner,
                          "%s does not hold store %" PRIu64 " with the seed region %" PRIu64
                          " (full range, epoch 1/1, voter %" PRIu64 ")",
                          NK_LOCALMETA_FILE, store_id, region_id, peer_id);
            rc = NK_ECORRUPT;
        }
    }
    nk_localmeta_free(&m);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "migrate: validate local catalog: %s", inner.msg);
        return rc;
    }
    /* snapshot metadata */
    nk_seedsnap s;
    rc = nk_seedsnap_load(rt, workdir, &s, &inner);
    if (rc == NK_OK && (!same_region(&s.region, &seed) || s.raft_index != NK_SEED_RAFT_INDEX ||
                        s.raft_term != NK_SEED_RAFT_TERM)) {
        nk_errbuf_set(&inner, "%s/%s describes another region or raft index", NK_SEEDSNAP_DIR,
                      NK_SEEDSNAP_META);
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        rc = nk_seedsnap_check_files(rt, workdir, &s, false, &inner);
    }
    nk_seedsnap_free(&s);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "migrate: validate seed snapshot: %s",
                      rc == NK_ENOENT ? "no complete seed snapshot" : inner.msg);
        return rc;
    }
    /* raft state */
    char rdir[1024];
    nk_path_fmt(rdir, sizeof(rdir), workdir, NK_SEED_RAFT_DIR);
    nk_raftlog *log = NULL;
    rc = nk_raftlog_open(rt, rdir, NULL, &log, &inner);
    if (rc == NK_OK) {
        nk_raftlog_region_state st;
        rc = nk_raftlog_region(log, region_id, &st);
        if (rc != NK_OK || !raft_is_seed(&st, peer_id)) {
            nk_errbuf_set(&inner,
                          "the raft log %s does not hold the seed state of region %" PRIu64
                          " (snapshot %u/%u, voter %" PRIu64 ")",
                          rdir, region_id, NK_SEED_RAFT_INDEX, NK_SEED_RAFT_TERM, peer_id);
            rc = NK_ECORRUPT;
        }
        nk_raftlog_close(log);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "migrate: validate raft state: %s", inner.msg);
        return rc;
    }
    /* replay pointer */
    nk_replay_pointer p;
    rc = nk_replay_pointer_read(rt, workdir, &p, &inner);
    if (rc == NK_OK && (p.region_id != region_id || p.applied_index != NK_SEED_RAFT_INDEX ||
                        p.applied_term != NK_SEED_RAFT_TERM)) {
        nk_errbuf_set(&inner, "%s points at region %" PRIu64 " index %" PRIu64, NK_REPLAY_FILE,
                      p.region_id, p.applied_index);
        rc = NK_ECORRUPT;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "migrate: validate raft replay pointer: %s",
                      rc == NK_ENOENT ? "missing" : inner.msg);
    }
    return rc;
}

/* -------------------------------------------------------------- stages --- */

static void step_gate(init_op *op)
{
    nk_workdir_options wo = {NK_WORKDIR_ANY_MODE, false};
    int rc = nk_workdir_open(op->rt, op->dir, &wo, &op->wd, &op->eb);
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    const nk_mode_state *ms = nk_workdir_mode(op->wd);
    nk_errbuf ceb;
    if (nk_checkpoint_read(op->rt, op->dir, &op->cp, &ceb) != NK_OK) {
        memset(&op->cp, 0, sizeof(op->cp)); /* a damaged checkpoint is only progress info */
    }
    op->res.resumed_from = op->cp.stage;
    const nk_init_args *a = &op->a;
    switch (ms->mode) {
    case NK_MODE_CLUSTER:
        nk_errbuf_set(&op->eb,
                      "migrate: workdir %s is already in cluster mode; use nokv migrate "
                      "status/expand instead",
                      op->dir);
        finish(op, NK_EMODE);
        return;
    case NK_MODE_SEEDED:
        if (ms->store_id != a->store_id || ms->region_id != a->region_id ||
            ms->peer_id != a->peer_id) {
            nk_errbuf_set(
                &op->eb,
                "migrate: workdir already seeded for store=%" PRIu64 " region=%" PRIu64
                " peer=%" PRIu64 "; refusing store=%" PRIu64 " region=%" PRIu64 " peer=%" PRIu64,
                ms->store_id, ms->region_id, ms->peer_id, a->store_id, a->region_id, a->peer_id);
            finish(op, NK_EMODE);
            return;
        }
        rc = nk_migrate_validate_seed(op->rt, op->dir, a->store_id, a->region_id, a->peer_id,
                                      &op->eb);
        if (rc == NK_OK && op->cp.stage < NK_STAGE_SEEDED_FINALIZED) {
            /* crashed between the mode write and its checkpoint */
            rc = reach(op, NK_STAGE_SEEDED_FINALIZED);
        } else if (rc == NK_OK) {
            op->res.already_seeded = true;
        }
        if (rc == NK_OK) {
            op->res.mode = NK_MODE_SEEDED;
            nk_seedsnap s;
            nk_errbuf seb;
            if (nk_seedsnap_load(op->rt, op->dir, &s, &seb) == NK_OK) {
                keep_snapshot_result(op, &s);
            }
        }
        finish(op, rc);
        return;
    case NK_MODE_PREPARING:
        if ((ms->store_id != 0 && ms->store_id != a->store_id) ||
            (ms->region_id != 0 && ms->region_id != a->region_id) ||
            (ms->peer_id != 0 && ms->peer_id != a->peer_id)) {
            const char *what = ms->store_id != a->store_id     ? "store"
                               : ms->region_id != a->region_id ? "region"
                                                               : "peer";
            uint64_t want = what[0] == 's'   ? ms->store_id
                            : what[0] == 'r' ? ms->region_id
                                             : ms->peer_id;
            uint64_t got = what[0] == 's'   ? a->store_id
                           : what[0] == 'r' ? a->region_id
                                            : a->peer_id;
            nk_errbuf_set(&op->eb,
                          "migrate: preparing state %s mismatch want=%" PRIu64 " got=%" PRIu64
                          " (resume with the ids the interrupted init used: --store %" PRIu64
                          " --region %" PRIu64 " --peer %" PRIu64 ")",
                          what, want, got, ms->store_id, ms->region_id, ms->peer_id);
            finish(op, NK_EMODE);
            return;
        }
        nk_log(op->rt, NK_LOG_INFO, "migrate init: resuming %s after stage %s", op->dir,
               op->cp.stage ? nk_stage_name(op->cp.stage) : "(none recorded)");
        break;
    case NK_MODE_STANDALONE: {
        /* Refuse before touching anything when local state already conflicts. */
        nk_localmeta m;
        nk_errbuf leb;
        rc = nk_localmeta_load(op->rt, op->dir, &m, &leb);
        if (rc == NK_OK) {
            rc = catalog_conflict(&m, a, &op->seed, &op->eb);
        } else if (rc == NK_ENOENT) {
            rc = NK_OK;
        } else {
            nk_errbuf_set(&op->eb, "migrate: %s", leb.msg);
        }
        nk_localmeta_free(&m);
        nk_db_inspect ins;
        if (rc == NK_OK) {
            rc = nk_db_inspect_dir(op->rt, op->dir, &ins, &op->eb);
            if (rc == NK_OK && !ins.has_current) {
                nk_errbuf_set(&op->eb,
                              "migrate: %s holds no NoKV database (no CURRENT); run nokv "
                              "migrate plan --workdir %s",
                              op->dir, op->dir);
                rc = NK_ENOENT;
            }
            if (rc == NK_OK && nk_inspect_has_reserved_keys(&ins)) {
                nk_errbuf_set(&op->eb,
                              "migrate: %s holds keys in the range the cluster mode reserves "
                              "(4 bytes 0xff then \"nokv/\"); rename or delete them first (see "
                              "nokv migrate plan --workdir %s)",
                              op->dir, op->dir);
                rc = NK_EEXIST;
            }
            nk_db_inspect_free(&ins);
        }
        if (rc == NK_OK && nk_migrate_has_raft_log(op->rt, op->dir)) {
            nk_errbuf_set(&op->eb,
                          "migrate: a raft log already exists in %s/%s: this workdir already "
                          "hosted a store; refusing to promote it",
                          op->dir, NK_SEED_RAFT_DIR);
            rc = NK_EEXIST;
        }
        if (rc != NK_OK) {
            finish(op, rc);
            return;
        }
        /* A checkpoint left in a standalone workdir describes nothing. */
        memset(&op->cp, 0, sizeof(op->cp));
        nk_mode_state prep = {NK_MODE_PREPARING, a->store_id, a->region_id, a->peer_id};
        rc = nk_workdir_set_mode(op->wd, &prep, &op->eb);
        if (rc == NK_OK) {
            rc = reach(op, NK_STAGE_MODE_PREPARING_WRITTEN);
        }
        if (rc != NK_OK) {
            finish(op, rc);
            return;
        }
        break;
    }
    }
    op->res.mode = NK_MODE_PREPARING;
    step_catalog(op);
}

static void step_catalog(init_op *op)
{
    nk_localmeta m;
    nk_errbuf leb;
    memset(&leb, 0, sizeof(leb));
    int rc = nk_localmeta_load(op->rt, op->dir, &m, &leb);
    bool save = rc == NK_ENOENT;
    if (rc == NK_ENOENT) {
        rc = NK_OK;
    } else if (rc != NK_OK) {
        nk_errbuf_set(&op->eb, "migrate: %s", leb.msg);
    }
    if (rc == NK_OK) {
        rc = catalog_conflict(&m, &op->a, &op->seed, &op->eb);
    }
    if (rc == NK_OK &&
        (m.store_id != op->a.store_id || nk_localmeta_find(&m, op->seed.id) == NULL)) {
        m.store_id = op->a.store_id;
        rc = nk_localmeta_put(&m, &op->seed, NK_REGION_NORMAL);
        save = true;
    }
    if (rc == NK_OK && save) {
        rc = nk_localmeta_save(op->rt, op->dir, &m, &op->eb);
    }
    nk_localmeta_free(&m);
    if (rc == NK_OK) {
        rc = reach(op, NK_STAGE_LOCAL_CATALOG_PERSISTED);
    }
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    step_snapshot(op);
}

/* The seed snapshot's counts go into the result; s is freed. */
static void keep_snapshot_result(init_op *op, nk_seedsnap *s)
{
    op->res.snapshot_files = s->n_files;
    op->res.snapshot_bytes = s->total_bytes;
    op->res.last_sequence = s->last_sequence;
    nk_seedsnap_free(s);
}

/* The export stage ended with rc: checkpoint it and go on, or stop. */
static void snapshot_exported(init_op *op, int rc)
{
    if (rc == NK_OK) {
        rc = reach(op, NK_STAGE_SEED_SNAPSHOT_EXPORTED);
    }
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    step_raft(op);
}

static void after_snapshot_closed(void *arg, int status)
{
    init_op *op = arg;
    if (status != NK_OK) {
        nk_errbuf_set(&op->eb, "migrate: closing the engine after the seed export failed: %s",
                      nk_strerror(status));
    }
    snapshot_exported(op, status);
}

/* Engine and raft log callbacks only record their result and start a timer:
 * the work after them (which may close the engine or the log, or crash the
 * node at a failpoint and free everything) runs from a fresh callback, never
 * with the engine's or the log's own frames still on the stack. */
static void defer(init_op *op, nk_timer_fn fn, int status)
{
    op->pending_rc = status;
    if (nk_rt_timer_start(op->rt, 0, fn, op) == 0) {
        /* only a crashed runtime refuses a timer: nothing may run any more */
        op->db = NULL;
        op->log = NULL;
        finish(op, NK_ECRASHED);
    }
}

static void export_now(void *arg)
{
    init_op *op = arg;
    int rc = op->pending_rc;
    nk_db_tables pin;
    memset(&pin, 0, sizeof(pin));
    if (rc != NK_OK) {
        nk_errbuf_set(&op->eb, "migrate: flushing the engine before the seed export failed: %s",
                      nk_strerror(rc));
    } else {
        rc = nk_db_tables_pin(op->db, &pin);
    }
    if (rc == NK_OK) {
        /* The pinned version keeps every listed table on disk while it is
         * linked; the list carries the XXH64 the manifest records for each,
         * so the export reads no table data. */
        nk_seedsnap s;
        rc = nk_seedsnap_export(op->rt, op->dir, &op->seed, NK_SEED_RAFT_INDEX, NK_SEED_RAFT_TERM,
                                pin.last_sequence, pin.files, pin.n, &s, &op->eb);
        if (rc == NK_OK) {
            keep_snapshot_result(op, &s);
        }
    }
    nk_db_tables_unpin(op->db, &pin);
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    nk_db *db = op->db;
    op->db = NULL;
    nk_db_close(db, after_snapshot_closed, op);
}

static void after_flush(void *arg, int status)
{
    defer(arg, export_now, status);
}

static void step_snapshot(init_op *op)
{
    nk_seedsnap s;
    nk_errbuf seb;
    memset(&seb, 0, sizeof(seb));
    int rc = nk_seedsnap_load(op->rt, op->dir, &s, &seb);
    if (rc == NK_OK && same_region(&s.region, &op->seed) && s.raft_index == NK_SEED_RAFT_INDEX &&
        s.raft_term == NK_SEED_RAFT_TERM &&
        nk_seedsnap_check_files(op->rt, op->dir, &s, false, &seb) == NK_OK) {
        /* done by an earlier run */
        keep_snapshot_result(op, &s);
        snapshot_exported(op, NK_OK);
        return;
    }
    nk_seedsnap_free(&s);
    /* After a graceful stop every write is in a table (the server flushes
     * before it exits), so there is nothing to replay: the manifest alone,
     * read without changing a byte, lists the tables with their sizes and
     * XXH64s, and init holds the LOCK, so nothing can retire one while it
     * is linked. Opening the engine would only cost its WAL segment, its
     * manifest records and their syncs. Anything an open would act on (WAL
     * records to replay, a torn tail to cut) takes the open path below. */
    nk_db_inspect ins;
    rc = nk_db_inspect_dir(op->rt, op->dir, &ins, &op->eb);
    if (rc != NK_OK || !ins.has_current) {
        if (rc == NK_OK) {
            nk_errbuf_set(&op->eb, "migrate: %s holds no NoKV database (no CURRENT)", op->dir);
            rc = NK_ENOENT;
        }
        nk_db_inspect_free(&ins);
        finish(op, rc);
        return;
    }
    if (ins.wal_unflushed == 0 && !ins.wal_torn && !ins.manifest_torn) {
        rc = nk_seedsnap_export(op->rt, op->dir, &op->seed, NK_SEED_RAFT_INDEX, NK_SEED_RAFT_TERM,
                                ins.last_sequence, ins.files, ins.n_files, &s, &op->eb);
        nk_db_inspect_free(&ins);
        if (rc == NK_OK) {
            keep_snapshot_result(op, &s);
        }
        snapshot_exported(op, rc);
        return;
    }
    nk_db_inspect_free(&ins);
    memset(&op->eb, 0, sizeof(op->eb));
    nk_db_options o;
    nk_db_options_default(&o);
    o.create_if_missing = false;
    /* Init reads no table: the manifest lists them with their sizes and
     * XXH64s, the gate already checked each is present at its size, and the
     * engine is closed right after the export. Opening ~100 tables (footer,
     * index, filter each) or waiting for a compaction would be most of
     * init's time. */
    o.lazy_table_open = true;
    o.no_compaction = true;
    rc = nk_db_open(op->rt, op->dir, &o, &op->db, &op->eb);
    if (rc == NK_OK) {
        rc = nk_db_flush(op->db, after_flush, op);
    }
    if (rc != NK_OK) {
        if (op->eb.msg[0] == '\0') {
            nk_errbuf_set(&op->eb, "migrate: opening the engine for the seed export failed: %s",
                          nk_strerror(rc));
        }
        finish(op, rc);
    }
}

static void raft_synced_now(void *arg)
{
    init_op *op = arg;
    int rc = op->pending_rc;
    nk_raftlog_close(op->log);
    op->log = NULL;
    if (rc != NK_OK) {
        nk_errbuf_set(&op->eb, "migrate: syncing the raft log failed: %s", nk_strerror(rc));
    } else {
        rc = nk_failpoint(op->rt, "migrate.init.raft-log-written");
    }
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    step_pointer(op);
}

static void after_raft_sync(void *arg, int status)
{
    defer(arg, raft_synced_now, status);
}

static void step_raft(init_op *op)
{
    char rdir[1024];
    nk_path_fmt(rdir, sizeof(rdir), op->dir, NK_SEED_RAFT_DIR);
    int rc = nk_raftlog_open(op->rt, rdir, NULL, &op->log, &op->eb);
    nk_raftlog_region_state st;
    int have = rc == NK_OK ? nk_raftlog_region(op->log, op->a.region_id, &st) : rc;
    if (rc == NK_OK && have == NK_OK && raft_is_seed(&st, op->a.peer_id)) {
        nk_raftlog_close(op->log);
        op->log = NULL;
        step_pointer(op);
        return;
    }
    if (rc == NK_OK && have == NK_OK &&
        (st.last_index > NK_SEED_RAFT_INDEX ||
         (st.has_hard_state && st.hs.term > NK_SEED_RAFT_TERM))) {
        /* Entries or terms past the seed: a raft group already ran here. */
        nk_errbuf_set(&op->eb,
                      "migrate: the raft log %s already holds region %" PRIu64 " past the seed "
                      "(last index %" PRIu64 "); refusing to reset it",
                      rdir, op->a.region_id, st.last_index);
        rc = NK_EEXIST;
    }
    if (rc == NK_OK) {
        nk_raft_snapshot_meta snap;
        memset(&snap, 0, sizeof(snap));
        snap.index = NK_SEED_RAFT_INDEX;
        snap.term = NK_SEED_RAFT_TERM;
        seed_conf(op->a.peer_id, &snap.conf);
        nk_raft_hard_state hs = {NK_SEED_RAFT_TERM, 0, NK_SEED_RAFT_INDEX};
        rc = nk_raftlog_stage_snapshot(op->log, op->a.region_id, &snap, true);
        rc = rc ? rc : nk_raftlog_stage_hard_state(op->log, op->a.region_id, &hs);
        rc = rc ? rc : nk_raftlog_write(op->log);
        rc = rc ? rc : nk_raftlog_sync(op->log, after_raft_sync, op);
        if (rc != NK_OK && op->eb.msg[0] == '\0') {
            nk_errbuf_set(&op->eb, "migrate: writing the seed raft state to %s failed: %s", rdir,
                          nk_strerror(rc));
        }
    }
    if (rc != NK_OK) {
        finish(op, rc);
    }
}

static void step_pointer(init_op *op)
{
    nk_replay_pointer want = {op->a.region_id, NK_SEED_RAFT_INDEX, NK_SEED_RAFT_TERM};
    nk_replay_pointer have;
    nk_errbuf peb;
    int rc = nk_replay_pointer_read(op->rt, op->dir, &have, &peb);
    if (rc != NK_OK || memcmp(&have, &want, sizeof(want)) != 0) {
        rc = nk_replay_pointer_write(op->rt, op->dir, &want, &op->eb);
    }
    if (rc == NK_OK) {
        rc = reach(op, NK_STAGE_RAFT_SEED_INITIALIZED);
    }
    if (rc != NK_OK) {
        finish(op, rc);
        return;
    }
    op->res.raft_index = NK_SEED_RAFT_INDEX;
    op->res.raft_term = NK_SEED_RAFT_TERM;
    step_final(op);
}

static void step_final(init_op *op)
{
    nk_mode_state seeded = {NK_MODE_SEEDED, op->a.store_id, op->a.region_id, op->a.peer_id};
    int rc = nk_workdir_set_mode(op->wd, &seeded, &op->eb);
    if (rc == NK_OK) {
        op->res.mode = NK_MODE_SEEDED;
        rc = reach(op, NK_STAGE_SEEDED_FINALIZED);
    }
    if (rc == NK_OK) {
        rc = nk_migrate_validate_seed(op->rt, op->dir, op->a.store_id, op->a.region_id,
                                      op->a.peer_id, &op->eb);
    }
    finish(op, rc);
}

void nk_migrate_init(nk_rt *rt, const nk_init_args *a, nk_init_done_fn done, void *arg)
{
    init_op *op = calloc(1, sizeof(*op));
    const char *missing = a->workdir == NULL || a->workdir[0] == '\0' ? "workdir"
                          : a->store_id == 0                          ? "store id"
                          : a->region_id == 0                         ? "region id"
                          : a->peer_id == 0                           ? "peer id"
                                                                      : NULL;
    if (op == NULL || missing != NULL) {
        nk_init_result r;
        memset(&r, 0, sizeof(r));
        char msg[128];
        snprintf(msg, sizeof(msg), "migrate: %s is required", missing ? missing : "memory");
        free(op);
        done(arg, op == NULL && missing == NULL ? NK_ENOMEM : NK_EINVAL, &r, msg);
        return;
    }
    op->rt = rt;
    op->dir = malloc(strlen(a->workdir) + 1);
    if (op->dir == NULL) {
        free(op);
        nk_init_result r;
        memset(&r, 0, sizeof(r));
        done(arg, NK_ENOMEM, &r, "migrate: out of memory");
        return;
    }
    memcpy(op->dir, a->workdir, strlen(a->workdir) + 1);
    op->a = *a;
    op->a.workdir = op->dir;
    op->done = done;
    op->arg = arg;
    seed_region(a, &op->seed);
    snprintf(op->res.workdir, sizeof(op->res.workdir), "%s", a->workdir);
    op->res.store_id = a->store_id;
    op->res.region_id = a->region_id;
    op->res.peer_id = a->peer_id;
    nk_seedsnap_dir(a->workdir, op->res.snapshot_dir, sizeof(op->res.snapshot_dir));
    step_gate(op);
}
