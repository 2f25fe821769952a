/*
 * test_migrate_init.c - `migrate init` on the simulated runtime: the happy
 * path and every artifact it leaves, a crash at every stage's failpoint
 * followed by a rerun that resumes and ends seeded with every key intact,
 * idempotence on a seeded workdir (no byte changed), mismatched ids and
 * conflicting local state refused, and the standalone open refused after.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/migrate_sim.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/migrate/init.h"
#include "nokv/migrate/seedsnap.h"
#include "nokv/store/localmeta.h"
#include "nokv/engine/db.h"
#include "nokv/server/standalone.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/raftlog.h"
#include "nokv/store/store.h"
#include "nokv/store/seed.h"
#include "nokv/store/workdir.h"

#define NKEYS 300

typedef struct msim_init {
    bool done;
    int rc;
    nk_init_result r;
    char msg[512];
} msim_init;

static void on_init(void *arg, int rc, const nk_init_result *r, const char *msg)
{
    msim_init *w = arg;
    w->done = true;
    w->rc = rc;
    w->r = *r;
    snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
}

static int msim_run_init(nk_sim *s, const char *dir, uint64_t store, uint64_t region, uint64_t peer,
                         msim_init *w)
{
    memset(w, 0, sizeof(*w));
    nk_init_args a = {dir, store, region, peer};
    nk_migrate_init(msim_rt(), &a, on_init, w);
    for (int i = 0; i < 200000 && !w->done; i++) {
        msim_run(s, 1);
    }
    assert_true(w->done);
    return w->rc;
}

static void expect_seeded(nk_sim *s, const char *dir)
{
    nk_rt *rt = msim_rt();
    nk_errbuf eb;
    nk_mode_state ms;
    assert_int_equal(nk_mode_read(rt, dir, &ms, &eb), NK_OK);
    assert_int_equal(ms.mode, NK_MODE_SEEDED);
    assert_int_equal(ms.store_id, 1);
    assert_int_equal(ms.region_id, 7);
    assert_int_equal(ms.peer_id, 101);
    nk_checkpoint cp;
    assert_int_equal(nk_checkpoint_read(rt, dir, &cp, &eb), NK_OK);
    assert_int_equal(cp.stage, NK_STAGE_SEEDED_FINALIZED);
    assert_int_equal(nk_migrate_validate_seed(rt, dir, 1, 7, 101, &eb), NK_OK);
    /* the snapshot's files are the engine's own tables, shared by link */
    nk_seedsnap snap;
    assert_int_equal(nk_seedsnap_load(rt, dir, &snap, &eb), NK_OK);
    assert_true(snap.n_files > 0);
    assert_int_equal(nk_seedsnap_check_files(rt, dir, &snap, true, &eb), NK_OK);
    assert_int_equal(snap.raft_index, NK_SEED_RAFT_INDEX);
    nk_seedsnap_free(&snap);
    /* the raft log holds exactly the seed state */
    char rdir[256];
    snprintf(rdir, sizeof(rdir), "%s/raft", dir);
    nk_raftlog *log = NULL;
    assert_int_equal(nk_raftlog_open(rt, rdir, NULL, &log, &eb), NK_OK);
    nk_raftlog_region_state st;
    assert_int_equal(nk_raftlog_region(log, 7, &st), NK_OK);
    assert_true(st.has_snapshot);
    assert_int_equal(st.snap.index, 5);
    assert_int_equal(st.snap.term, 5);
    assert_int_equal(nk_raft_conf_role(&st.snap.conf, 101), NK_RAFT_VOTER);
    assert_int_equal(st.hs.term, 5);
    assert_int_equal(st.hs.vote, 0);
    assert_int_equal(st.hs.commit, 5);
    nk_raftlog_close(log);
    /* the engine still has every key */
    msim_check_keys(s, dir, NKEYS);
}

static void test_init_happy_path_and_idempotent_rerun(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(1);
    nk_rt *rt = msim_rt();
    msim_fill(s, "/w", NKEYS, NKEYS / 2);
    msim_init w;
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_OK);
    assert_false(w.r.already_seeded);
    assert_int_equal(w.r.mode, NK_MODE_SEEDED);
    assert_true(w.r.snapshot_files > 0);
    assert_string_equal(w.r.snapshot_dir, "/w/seed-snapshot");
    expect_seeded(s, "/w");

    nk_localmeta m;
    nk_errbuf eb;
    assert_int_equal(nk_localmeta_load(rt, "/w", &m, &eb), NK_OK);
    assert_int_equal(m.store_id, 1);
    assert_int_equal(m.n_regions, 1);
    assert_int_equal(m.regions[0].desc.epoch.version, 1);
    assert_int_equal(m.regions[0].desc.epoch.conf_version, 1);
    assert_int_equal(m.regions[0].desc.start_len + m.regions[0].desc.end_len, 0);
    assert_int_equal(m.regions[0].desc.n_peers, 1);
    assert_int_equal(m.regions[0].desc.peers[0].peer_id, 101);
    nk_localmeta_free(&m);

    /* rerun with the same ids: success, not one byte changed */
    nk_buf before = {0}, after = {0};
    msim_digest(rt, "/w", &before);
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_OK);
    assert_true(w.r.already_seeded);
    msim_digest(rt, "/w", &after);
    assert_string_equal((char *)before.data, (char *)after.data);

    /* other ids: refused, nothing changed */
    assert_int_equal(msim_run_init(s, "/w", 2, 7, 101, &w), NK_EMODE);
    assert_non_null(strstr(w.msg, "already seeded for store=1 region=7 peer=101"));
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 102, &w), NK_EMODE);
    msim_digest(rt, "/w", &after);
    assert_string_equal((char *)before.data, (char *)after.data);

    /* a standalone open is refused now; serve accepts a seeded workdir */
    nk_workdir *wd = NULL;
    assert_int_equal(nk_workdir_open(rt, "/w", NULL, &wd, &eb), NK_EMODE);
    assert_non_null(strstr(eb.msg, "seeded"));
    nk_buf_free(&before);
    nk_buf_free(&after);
    nk_sim_free(s);
}

static void test_crash_at_every_stage_then_rerun(void **state)
{
    (void)state;
    static const char *const fps[] = {
        "migrate.init.mode-preparing-written",
        "migrate.init.local-catalog-persisted",
        "seedsnap.after_links",
        "migrate.init.seed-snapshot-exported",
        "migrate.init.raft-log-written",
        "migrate.init.raft-seed-initialized",
        "migrate.init.seeded-finalized",
        "localmeta.save.after_rename",
        "checkpoint.write.after_tmp",
        "mode.write.before_rename",
        "seedsnap.meta.after_tmp",
        "replay.write.after_rename",
    };
    for (size_t i = 0; i < sizeof(fps) / sizeof(fps[0]); i++) {
        for (uint64_t rep = 0; rep < 3; rep++) {
            nk_sim *s = msim_boot(100 + i * 3 + rep);
            nk_rt *rt = msim_rt();
            msim_fill(s, "/w", NKEYS, NKEYS / 3);
            /* two power losses (different outcomes for unsynced state) and a
             * process kill (the page cache survives) per point */
            nk_sim_failpoint_arm(s, 1, fps[i], rep < 2 ? NK_SIM_FP_CRASH : NK_SIM_FP_KILL, 1,
                                 (nk_ratio){0, 0});
            msim_init w;
            int rc = msim_run_init(s, "/w", 1, 7, 101, &w);
            uint64_t hits = 0, fired = 0;
            nk_sim_failpoint_stats(s, fps[i], &hits, &fired);
            assert_true(fired == 1);
            assert_int_equal(rc, NK_ECRASHED);
            nk_sim_node_start(s, 1);
            /* whatever survived, a standalone open must not succeed */
            nk_errbuf eb;
            nk_workdir *wd = NULL;
            int orc = nk_workdir_open(rt, "/w", NULL, &wd, &eb);
            if (orc == NK_OK) {
                /* only possible when the crash undid the very first mode write */
                nk_mode_state ms;
                assert_int_equal(nk_mode_read(rt, "/w", &ms, &eb), NK_OK);
                assert_int_equal(ms.mode, NK_MODE_STANDALONE);
                nk_workdir_close(wd);
            } else {
                assert_int_equal(orc, NK_EMODE);
            }
            /* neither does the standalone server (what `nokv serve` runs) */
            if (orc != NK_OK) {
                nk_standalone_config sc;
                memset(&sc, 0, sizeof(sc));
                sc.workdir = "/w";
                sc.addr = "127.0.0.1:6380";
                nk_db_options_default(&sc.db);
                nk_standalone *srv = NULL;
                memset(&eb, 0, sizeof(eb));
                assert_int_equal(nk_standalone_start(rt, &sc, &srv, &eb), NK_EMODE);
                nk_mode_state ms;
                nk_errbuf meb;
                assert_int_equal(nk_mode_read(rt, "/w", &ms, &meb), NK_OK);
                char want[32];
                snprintf(want, sizeof(want), "\"%s\"", nk_mode_name(ms.mode));
                assert_non_null(strstr(eb.msg, want));
                if (ms.mode == NK_MODE_PREPARING) {
                    assert_non_null(strstr(eb.msg, "nokv migrate init --workdir /w --store 1"));
                }
            }
            /* rerun: resumes (or starts over) and ends seeded */
            rc = msim_run_init(s, "/w", 1, 7, 101, &w);
            if (rc != NK_OK) {
                fail_msg("rerun after crash at %s: %s: %s", fps[i], nk_errname(rc), w.msg);
            }
            expect_seeded(s, "/w");
            nk_sim_free(s);
        }
    }
}

static void test_refusals(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(7);
    nk_rt *rt = msim_rt();
    msim_init w;
    nk_errbuf eb;
    /* missing arguments and workdirs */
    assert_int_equal(msim_run_init(s, "/w", 0, 7, 101, &w), NK_EINVAL);
    assert_non_null(strstr(w.msg, "store id is required"));
    assert_int_equal(msim_run_init(s, "/nope", 1, 7, 101, &w), NK_ENOENT);
    /* an empty directory is no database */
    assert_int_equal(nk_rt_dir_create(rt, "/empty"), NK_OK);
    assert_int_equal(msim_run_init(s, "/empty", 1, 7, 101, &w), NK_ENOENT);
    assert_non_null(strstr(w.msg, "no NoKV database"));

    /* interrupted with some ids, resumed with others: refused */
    msim_fill(s, "/w", 50, 10);
    nk_sim_failpoint_arm(s, 1, "migrate.init.local-catalog-persisted", NK_SIM_FP_ERROR, 1,
                         (nk_ratio){0, 0});
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_EFAILPOINT);
    assert_int_equal(msim_run_init(s, "/w", 1, 8, 101, &w), NK_EMODE);
    assert_non_null(strstr(w.msg, "preparing state region mismatch want=7 got=8"));
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_OK);

    /* conflicting local catalog in a standalone workdir: refused before any change */
    msim_fill(s, "/x", 20, 5);
    nk_localmeta m;
    nk_localmeta_init(&m);
    nk_region r;
    nk_region_init_full(&r, 3);
    nk_region_peer p = {9, 903, NK_RAFT_VOTER};
    nk_region_peer_set(&r, &p);
    assert_int_equal(nk_localmeta_put(&m, &r, NK_REGION_NORMAL), NK_OK);
    assert_int_equal(nk_localmeta_save(rt, "/x", &m, &eb), NK_OK);
    nk_localmeta_free(&m);
    assert_int_equal(msim_run_init(s, "/x", 1, 7, 101, &w), NK_EEXIST);
    assert_non_null(strstr(w.msg, "conflicting region state"));
    nk_mode_state ms;
    assert_int_equal(nk_mode_read(rt, "/x", &ms, &eb), NK_OK);
    assert_int_equal(ms.mode, NK_MODE_STANDALONE);

    /* reserved keys or an existing raft log: refused before any change */
    msim_fill(s, "/y", 20, 5);
    msim_put(s, "/y", "\xff\xff\xff\xffnokv/x", 10, false);
    assert_int_equal(msim_run_init(s, "/y", 1, 7, 101, &w), NK_EEXIST);
    assert_non_null(strstr(w.msg, "reserves"));
    msim_fill(s, "/z", 20, 5);
    assert_int_equal(nk_rt_dir_create(rt, "/z/raft"), NK_OK);
    nk_file *rf = NULL;
    assert_int_equal(
        nk_rt_file_open(rt, "/z/raft/000001.rlog", NK_OPEN_WRITE | NK_OPEN_CREATE, &rf), NK_OK);
    nk_rt_file_close(rt, rf);
    assert_int_equal(msim_run_init(s, "/z", 1, 7, 101, &w), NK_EEXIST);
    assert_non_null(strstr(w.msg, "raft log already exists"));
    assert_int_equal(nk_mode_read(rt, "/z", &ms, &eb), NK_OK);
    assert_int_equal(ms.mode, NK_MODE_STANDALONE);

    /* a cluster workdir is refused */
    nk_mode_state cl = {NK_MODE_CLUSTER, 1, 0, 0};
    assert_int_equal(nk_mode_write(rt, "/w", &cl, &eb), NK_OK);
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_EMODE);
    assert_non_null(strstr(w.msg, "already in cluster mode"));
    nk_sim_free(s);
}

static int no_resolve(void *ctx, uint64_t store_id, char *addr, size_t cap)
{
    (void)ctx, (void)store_id, (void)addr, (void)cap;
    return NK_ENOENT;
}

typedef struct proposal {
    bool done;
    int rc;
} proposal;

static void on_proposed(void *arg, int rc, uint64_t result, uint64_t leader)
{
    (void)result, (void)leader;
    proposal *p = arg;
    p->done = true;
    p->rc = rc;
}

static void on_closed(void *arg, int rc)
{
    (void)rc;
    *(bool *)arg = true;
}

/* The seed is a valid single-store cluster: the real raftstore opens it,
 * the lone voter elects itself after the seed term, the state machine starts
 * at the seed index (the engine's data), and a new write commits and applies
 * next to the migrated keys. */
static void test_seed_runs_under_the_raftstore(void **state)
{
    (void)state;
    nk_sim *s = msim_boot(9);
    nk_rt *rt = msim_rt();
    msim_fill(s, "/w", NKEYS, NKEYS / 2);
    msim_init w;
    assert_int_equal(msim_run_init(s, "/w", 1, 7, 101, &w), NK_OK);

    nk_errbuf eb;
    nk_workdir *wd = NULL;
    nk_workdir_options wo = {NK_WORKDIR_SERVE_MODES, false};
    assert_int_equal(nk_workdir_open(rt, "/w", &wo, &wd, &eb), NK_OK);
    nk_db_options o;
    nk_db_options_default(&o);
    o.create_if_missing = false;
    nk_db *db = NULL;
    assert_int_equal(nk_db_open(rt, "/w", &o, &db, &eb), NK_OK);
    nk_kvsm *sm = NULL;
    assert_int_equal(nk_kvsm_new(db, &sm), NK_OK);
    nk_store_options so;
    nk_store_options_default(&so);
    so.workdir = "/w";
    so.store_id = 1;
    so.resolve = no_resolve;
    so.sm = nk_kvsm_sm(sm);
    nk_store *st = NULL;
    if (nk_store_open(rt, &so, &st, &eb) != NK_OK) {
        fail_msg("store open on a seeded workdir: %s", eb.msg);
    }
    const nk_region *desc = nk_store_region(st, 7);
    assert_non_null(desc);
    assert_int_equal(desc->n_peers, 1);
    assert_int_equal(desc->peers[0].peer_id, 101);
    assert_true(nk_store_applied(st, 7) >= NK_SEED_RAFT_INDEX);

    static const uint8_t key[] = "after-migration";
    nk_kv_write op = {key, sizeof(key) - 1, (const uint8_t *)"yes", 3, false};
    nk_buf cmd = {0};
    assert_int_equal(nk_kvsm_encode(&op, 1, 0, 1 << 20, &cmd), NK_OK);
    proposal p = {false, 0};
    int rc = NK_EAGAIN;
    for (int i = 0; i < 600 && rc == NK_EAGAIN; i++) {
        msim_run(s, 10);
        rc = nk_store_propose(st, 7, cmd.data, cmd.len, on_proposed, &p);
    }
    assert_int_equal(rc, NK_OK);
    for (int i = 0; i < 10000 && !p.done; i++) {
        msim_run(s, 1);
    }
    assert_true(p.done);
    assert_int_equal(p.rc, NK_OK);
    const nk_raft *r = nk_store_raft(st, 7);
    assert_non_null(r);
    nk_raft_status rs;
    nk_raft_status_get(r, &rs);
    assert_true(rs.term > NK_SEED_RAFT_TERM);
    assert_true(nk_store_applied(st, 7) > NK_SEED_RAFT_INDEX);
    nk_buf v = {0};
    assert_int_equal(nk_db_get(db, key, sizeof(key) - 1, NK_SEQ_MAX, &v, &eb), NK_OK);
    assert_int_equal(v.len, 3);
    nk_buf_free(&v);
    assert_int_equal(nk_db_get(db, "k00007", 6, NK_SEQ_MAX, &v, &eb), NK_OK);
    nk_buf_free(&v);
    nk_buf_free(&cmd);

    nk_store_quiesce(st);
    for (int i = 0; i < 10000 && nk_store_busy(st); i++) {
        msim_run(s, 1);
    }
    nk_store_close(st);
    nk_kvsm_free(sm);
    bool closed = false;
    nk_db_close(db, on_closed, &closed);
    for (int i = 0; i < 10000 && !closed; i++) {
        msim_run(s, 1);
    }
    assert_true(closed);
    nk_workdir_close(wd);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_happy_path_and_idempotent_rerun),
        cmocka_unit_test(test_crash_at_every_stage_then_rerun),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_seed_runs_under_the_raftstore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
