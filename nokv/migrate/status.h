/*
 * status.h - `nokv migrate status` and `nokv migrate report`: the local
 * view of a workdir's migration, for operators and automation.
 *
 * status: mode and ids (MODE.json; an unreadable one is an error), the local
 * catalog, the seed snapshot, the checkpoint with its resume hint, and the
 * next command. Problems that do not stop the report (a damaged checkpoint,
 * an unreadable catalog) are warnings.
 * report: plan + status, folded into a stage (standalone-ready,
 * standalone-blocked, seed-preparing, seed-ready, cluster-active), a one-line
 * summary, the next steps, ready_for_init (standalone and plan eligible) and
 * ready_for_serve (seeded, store id set, seed snapshot present, catalog not
 * empty). Both only read. The cluster-aware half (--addr) belongs to the
 * distributed path and is not here yet.
 *
 * Rendering (JSON objects for --json, aligned "Key  value" text) lives here
 * too, so the CLI and the simulator's operator print the same thing. Field
 * names are NoKV-Go's; every JSON object carries "schema" ("nokv.migrate.
 * <command>/v1") so scripts can tell versions apart.
 */
#ifndef NK_MIGRATE_STATUS_H
#define NK_MIGRATE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nokv/engine/slice.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/migrate/init.h"
#include "nokv/migrate/plan.h"

#define NK_STATUS_MAX_WARNINGS 8
#define NK_REPORT_MAX_STEPS 4

typedef struct nk_status_result {
    char workdir[512];
    nk_mode mode;
    uint64_t store_id;
    uint64_t region_id;
    uint64_t peer_id;
    uint64_t local_catalog_regions;
    char seed_snapshot_dir[1024];
    bool seed_snapshot_present; /* a complete SNAPSHOT.json whose files are there */
    uint64_t seed_snapshot_files;
    uint64_t seed_snapshot_bytes;
    bool has_checkpoint;
    nk_checkpoint checkpoint;
    char resume_hint[256];
    char next[NK_PLAN_ITEM_LEN];
    size_t n_warnings;
    char warnings[NK_STATUS_MAX_WARNINGS][NK_PLAN_ITEM_LEN];
} nk_status_result;

typedef struct nk_report_result {
    char workdir[512];
    nk_mode mode;
    char stage[32];
    char summary[256];
    bool ready_for_init;
    bool ready_for_serve;
    size_t n_next_steps;
    char next_steps[NK_REPORT_MAX_STEPS][NK_PLAN_ITEM_LEN];
    char resume_hint[256];
    nk_plan_result plan;
    nk_status_result status;
} nk_report_result;

/* NK_OK; NK_ENOENT (no workdir) or NK_ECORRUPT (MODE.json) with eb. */
int nk_migrate_status(nk_rt *rt, const char *workdir, nk_status_result *r, nk_errbuf *eb);
int nk_migrate_report(nk_rt *rt, const char *workdir, nk_report_result *r, nk_errbuf *eb);

/* JSON objects (json_decref them) and text, appended to out. */
json_t *nk_plan_json(const nk_plan_result *r);
json_t *nk_status_json(const nk_status_result *r);
json_t *nk_report_json(const nk_report_result *r);
json_t *nk_init_json(const nk_init_result *r);
void nk_plan_text(const nk_plan_result *r, nk_buf *out);
void nk_status_text(const nk_status_result *r, nk_buf *out);
void nk_report_text(const nk_report_result *r, nk_buf *out);
void nk_init_text(const nk_init_result *r, nk_buf *out);

#endif /* NK_MIGRATE_STATUS_H */
