/* status.c - local migration status, report, and their rendering (see status.h). */
#include "nokv/migrate/status.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nokv/migrate/seedsnap.h"
#include "nokv/store/localmeta.h"

static void warn(nk_status_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(nk_status_result *r, const char *fmt, ...)
{
    if (r->n_warnings >= NK_STATUS_MAX_WARNINGS) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings++], NK_PLAN_ITEM_LEN, fmt, ap);
    va_end(ap);
}

int nk_migrate_status(nk_rt *rt, const char *workdir, nk_status_result *r, nk_errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->workdir, sizeof(r->workdir), "%s", workdir);
    nk_stat st;
    int rc = nk_rt_stat(rt, workdir, &st);
    if (rc != NK_OK || !st.is_dir) {
        nk_errbuf_set(eb, "workdir not found: %s", workdir);
        return NK_ENOENT;
    }
    nk_mode_state ms;
    rc = nk_mode_read(rt, workdir, &ms, eb);
    if (rc != NK_OK) {
        return rc;
    }
    r->mode = ms.mode;
    r->store_id = ms.store_id;
    r->region_id = ms.region_id;
    r->peer_id = ms.peer_id;
    nk_errbuf w;
    memset(&w, 0, sizeof(w));
    nk_localmeta m;
    rc = nk_localmeta_load(rt, workdir, &m, &w);
    if (rc == NK_OK) {
        r->local_catalog_regions = m.n_regions;
    } else if (rc != NK_ENOENT) {
        warn(r, "local catalog open failed: %s", w.msg);
    }
    nk_localmeta_free(&m);
    nk_seedsnap_dir(workdir, r->seed_snapshot_dir, sizeof(r->seed_snapshot_dir));
    nk_seedsnap s;
    rc = nk_seedsnap_load(rt, workdir, &s, &w);
    if (rc == NK_OK) {
        rc = nk_seedsnap_check_files(rt, workdir, &s, false, &w);
        r->seed_snapshot_present = rc == NK_OK;
        r->seed_snapshot_files = s.n_files;
        r->seed_snapshot_bytes = s.total_bytes;
        if (rc != NK_OK) {
            warn(r, "%s", w.msg);
        }
        nk_seedsnap_free(&s);
    } else if (rc != NK_ENOENT) {
        warn(r, "seed snapshot: %s", w.msg);
    }
    rc = nk_checkpoint_read(rt, workdir, &r->checkpoint, &w);
    if (rc == NK_OK) {
        r->has_checkpoint = true;
    } else if (rc != NK_ENOENT) {
        warn(r, "migration checkpoint unreadable: %s", w.msg);
    }
    nk_resume_hint(r->mode, r->has_checkpoint ? &r->checkpoint : NULL, r->resume_hint,
                   sizeof(r->resume_hint));
    switch (r->mode) {
    case NK_MODE_STANDALONE:
        snprintf(r->next, sizeof(r->next), "nokv migrate plan --workdir %s", workdir);
        break;
    case NK_MODE_PREPARING:
        snprintf(r->next, sizeof(r->next),
                 "nokv migrate init --workdir %s --store %" PRIu64 " --region %" PRIu64
                 " --peer %" PRIu64,
                 workdir, r->store_id, r->region_id, r->peer_id);
        break;
    case NK_MODE_SEEDED:
        snprintf(r->next, sizeof(r->next),
                 "nokv serve --workdir %s --store-id %" PRIu64 " --coordinator-addr <coordinator>",
                 workdir, r->store_id);
        break;
    case NK_MODE_CLUSTER:
        snprintf(r->next, sizeof(r->next),
                 "nokv migrate expand | nokv migrate transfer-leader | nokv migrate remove-peer");
        break;
    }
    return NK_OK;
}

static void step(nk_report_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(nk_report_result *r, const char *fmt, ...)
{
    if (r->n_next_steps >= NK_REPORT_MAX_STEPS) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->next_steps[r->n_next_steps++], NK_PLAN_ITEM_LEN, fmt, ap);
    va_end(ap);
}

int nk_migrate_report(nk_rt *rt, const char *workdir, nk_report_result *r, nk_errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    int rc = nk_migrate_status(rt, workdir, &r->status, eb);
    if (rc != NK_OK) {
        return rc;
    }
    (void)nk_migrate_plan(rt, workdir, &r->plan);
    snprintf(r->workdir, sizeof(r->workdir), "%s", workdir);
    r->mode = r->status.mode;
    snprintf(r->resume_hint, sizeof(r->resume_hint), "%s", r->status.resume_hint);
    const nk_status_result *s = &r->status;
    r->ready_for_init = s->mode == NK_MODE_STANDALONE && r->plan.eligible;
    r->ready_for_serve = s->mode == NK_MODE_SEEDED && s->store_id != 0 &&
                         s->seed_snapshot_present && s->local_catalog_regions > 0;
    switch (s->mode) {
    case NK_MODE_STANDALONE:
        if (r->plan.eligible) {
            snprintf(r->stage, sizeof(r->stage), "standalone-ready");
            snprintf(r->summary, sizeof(r->summary),
                     "standalone workdir is eligible for promotion to a cluster seed");
            step(r,
                 "nokv migrate init --workdir %s --store <store> --region <region> --peer <peer>",
                 workdir);
        } else {
            snprintf(r->stage, sizeof(r->stage), "standalone-blocked");
            snprintf(r->summary, sizeof(r->summary),
                     "standalone workdir is not eligible for promotion yet (%zu blocker(s))",
                     r->plan.n_blockers);
            step(r, "fix blockers reported by nokv migrate plan before running migrate init");
        }
        break;
    case NK_MODE_PREPARING:
        snprintf(r->stage, sizeof(r->stage), "seed-preparing");
        snprintf(r->summary, sizeof(r->summary),
                 "promotion to a cluster seed is in progress or was interrupted (stage %s)",
                 s->has_checkpoint ? nk_stage_name(s->checkpoint.stage) : "none recorded");
        step(r, "nokv migrate status --workdir %s", workdir);
        step(r, "%s", s->next);
        break;
    case NK_MODE_SEEDED:
        snprintf(r->stage, sizeof(r->stage), "seed-ready");
        snprintf(r->summary, sizeof(r->summary),
                 "workdir is a single-store cluster seed (store %" PRIu64 ", region %" PRIu64
                 ", peer %" PRIu64 ")",
                 s->store_id, s->region_id, s->peer_id);
        step(r, "%s", s->next);
        step(r, "after boot, use nokv migrate expand to add more peers");
        break;
    case NK_MODE_CLUSTER:
        snprintf(r->stage, sizeof(r->stage), "cluster-active");
        snprintf(r->summary, sizeof(r->summary), "workdir serves through the distributed path");
        step(r, "nokv migrate expand --addr <leader-admin> --region <region> --target "
                "<store>:<peer>@<addr>");
        step(r, "nokv migrate transfer-leader --addr <leader-admin> --region <region> --peer "
                "<peer>");
        step(r, "nokv migrate remove-peer --addr <leader-admin> --region <region> --peer <peer>");
        break;
    }
    return NK_OK;
}

/* ------------------------------------------------------------ rendering --- */

static json_t *strings(const char (*items)[NK_PLAN_ITEM_LEN], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_string(items[i]));
    }
    return a;
}

static void set_u64(json_t *o, const char *k, uint64_t v, bool omit_zero)
{
    if (v != 0 || !omit_zero) {
        json_object_set_new(o, k, json_integer((json_int_t)v));
    }
}

static void set_str(json_t *o, const char *k, const char *v, bool omit_empty)
{
    if (v[0] != '\0' || !omit_empty) {
        json_object_set_new(o, k, json_string(v));
    }
}

json_t *nk_plan_json(const nk_plan_result *r)
{
    json_t *o = json_object();
    set_str(o, "schema", "nokv.migrate.plan/v1", false);
    set_str(o, "workdir", r->workdir, false);
    set_str(o, "mode", nk_mode_name(r->mode), false);
    json_object_set_new(o, "eligible", json_boolean(r->eligible));
    if (r->n_blockers > 0) {
        json_object_set_new(o, "blockers", strings(r->blockers, r->n_blockers));
    }
    if (r->n_warnings > 0) {
        json_object_set_new(o, "warnings", strings(r->warnings, r->n_warnings));
    }
    set_str(o, "next", r->next, true);
    set_u64(o, "local_catalog_regions", r->local_catalog_regions, false);
    set_u64(o, "table_files", r->table_files, false);
    set_u64(o, "table_bytes", r->table_bytes, false);
    set_u64(o, "wal_bytes", r->wal_bytes, false);
    set_u64(o, "last_sequence", r->last_sequence, false);
    set_u64(o, "free_bytes", r->free_bytes, false);
    set_u64(o, "required_bytes", r->required_bytes, false);
    return o;
}

static json_t *checkpoint_json(const nk_checkpoint *c)
{
    json_t *o = json_object();
    set_str(o, "stage", nk_stage_name(c->stage), false);
    set_u64(o, "store_id", c->store_id, true);
    set_u64(o, "region_id", c->region_id, true);
    set_u64(o, "peer_id", c->peer_id, true);
    set_u64(o, "target_store_id", c->target_store_id, true);
    set_u64(o, "target_peer_id", c->target_peer_id, true);
    set_u64(o, "completed_targets", c->completed_targets, true);
    set_u64(o, "total_targets", c->total_targets, true);
    set_str(o, "updated_at", c->updated_at, false);
    return o;
}

json_t *nk_status_json(const nk_status_result *r)
{
    json_t *o = json_object();
    set_str(o, "schema", "nokv.migrate.status/v1", false);
    set_str(o, "workdir", r->workdir, false);
    set_str(o, "mode", nk_mode_name(r->mode), false);
    set_u64(o, "store_id", r->store_id, true);
    set_u64(o, "region_id", r->region_id, true);
    set_u64(o, "peer_id", r->peer_id, true);
    set_u64(o, "local_catalog_regions", r->local_catalog_regions, true);
    if (r->region_id != 0 || r->seed_snapshot_present) {
        set_str(o, "seed_snapshot_dir", r->seed_snapshot_dir, false);
        json_object_set_new(o, "seed_snapshot_present", json_boolean(r->seed_snapshot_present));
        set_u64(o, "seed_snapshot_files", r->seed_snapshot_files, true);
        set_u64(o, "seed_snapshot_bytes", r->seed_snapshot_bytes, true);
    }
    set_str(o, "next", r->next, true);
    set_str(o, "resume_hint", r->resume_hint, true);
    if (r->n_warnings > 0) {
        json_object_set_new(o, "warnings", strings(r->warnings, r->n_warnings));
    }
    if (r->has_checkpoint) {
        json_object_set_new(o, "checkpoint", checkpoint_json(&r->checkpoint));
    }
    return o;
}

json_t *nk_report_json(const nk_report_result *r)
{
    json_t *o = json_object();
    set_str(o, "schema", "nokv.migrate.report/v1", false);
    set_str(o, "workdir", r->workdir, false);
    set_str(o, "mode", nk_mode_name(r->mode), false);
    set_str(o, "stage", r->stage, false);
    set_str(o, "summary", r->summary, false);
    json_object_set_new(o, "ready_for_init", json_boolean(r->ready_for_init));
    json_object_set_new(o, "ready_for_serve", json_boolean(r->ready_for_serve));
    if (r->n_next_steps > 0) {
        json_object_set_new(o, "next_steps", strings(r->next_steps, r->n_next_steps));
    }
    set_str(o, "resume_hint", r->resume_hint, true);
    json_object_set_new(o, "plan", nk_plan_json(&r->plan));
    json_object_set_new(o, "status", nk_status_json(&r->status));
    return o;
}

json_t *nk_init_json(const nk_init_result *r)
{
    json_t *o = json_object();
    set_str(o, "schema", "nokv.migrate.init/v1", false);
    set_str(o, "workdir", r->workdir, false);
    set_str(o, "mode", nk_mode_name(r->mode), false);
    set_u64(o, "store_id", r->store_id, false);
    set_u64(o, "region_id", r->region_id, false);
    set_u64(o, "peer_id", r->peer_id, false);
    set_str(o, "snapshot_dir", r->snapshot_dir, false);
    json_object_set_new(o, "already_seeded", json_boolean(r->already_seeded));
    set_str(o, "resumed_from", nk_stage_name(r->resumed_from), true);
    set_u64(o, "snapshot_files", r->snapshot_files, false);
    set_u64(o, "snapshot_bytes", r->snapshot_bytes, false);
    set_u64(o, "last_sequence", r->last_sequence, false);
    return o;
}

static void line(nk_buf *out, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void line(nk_buf *out, const char *key, const char *fmt, ...)
{
    char v[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    char l[2200];
    int n = snprintf(l, sizeof(l), "%-20s %s\n", key, v);
    if (n > 0) {
        nk_buf_append(out, l, (size_t)n < sizeof(l) ? (size_t)n : sizeof(l) - 1);
    }
}

static void joined(nk_buf *out, const char *key, const char (*items)[NK_PLAN_ITEM_LEN], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        line(out, i == 0 ? key : "", "%s", items[i]);
    }
}

void nk_plan_text(const nk_plan_result *r, nk_buf *out)
{
    line(out, "Workdir", "%s", r->workdir);
    line(out, "Mode", "%s", nk_mode_name(r->mode));
    line(out, "Eligible", "%s", r->eligible ? "true" : "false");
    line(out, "LocalCatalogRegions", "%" PRIu64, r->local_catalog_regions);
    line(out, "Tables", "%" PRIu64 " file(s), %" PRIu64 " bytes; WAL %" PRIu64 " bytes",
         r->table_files, r->table_bytes, r->wal_bytes);
    line(out, "FreeSpace", "%" PRIu64 " bytes (init needs about %" PRIu64 ")", r->free_bytes,
         r->required_bytes);
    joined(out, "Blockers", r->blockers, r->n_blockers);
    joined(out, "Warnings", r->warnings, r->n_warnings);
    if (r->next[0]) {
        line(out, "Next", "%s", r->next);
    }
}

void nk_status_text(const nk_status_result *r, nk_buf *out)
{
    line(out, "Workdir", "%s", r->workdir);
    line(out, "Mode", "%s", nk_mode_name(r->mode));
    if (r->store_id) {
        line(out, "Store", "%" PRIu64, r->store_id);
    }
    if (r->region_id) {
        line(out, "Region", "%" PRIu64, r->region_id);
    }
    if (r->peer_id) {
        line(out, "Peer", "%" PRIu64, r->peer_id);
    }
    if (r->local_catalog_regions) {
        line(out, "Catalog", "%" PRIu64 " region(s)", r->local_catalog_regions);
    }
    if (r->region_id != 0 || r->seed_snapshot_present) {
        line(out, "SeedDir", "%s", r->seed_snapshot_dir);
        line(out, "Seeded", "%s", r->seed_snapshot_present ? "true" : "false");
    }
    joined(out, "Warnings", r->warnings, r->n_warnings);
    if (r->next[0]) {
        line(out, "Next", "%s", r->next);
    }
    if (r->resume_hint[0]) {
        line(out, "Resume", "%s", r->resume_hint);
    }
    if (r->has_checkpoint) {
        line(out, "Phase", "%s", nk_stage_name(r->checkpoint.stage));
        line(out, "Updated", "%s", r->checkpoint.updated_at);
    }
}

void nk_report_text(const nk_report_result *r, nk_buf *out)
{
    line(out, "Workdir", "%s", r->workdir);
    line(out, "Mode", "%s", nk_mode_name(r->mode));
    line(out, "Stage", "%s", r->stage);
    line(out, "Summary", "%s", r->summary);
    line(out, "ReadyForInit", "%s", r->ready_for_init ? "true" : "false");
    line(out, "ReadyForServe", "%s", r->ready_for_serve ? "true" : "false");
    if (r->resume_hint[0]) {
        line(out, "ResumeHint", "%s", r->resume_hint);
    }
    if (r->plan.n_blockers > 0) {
        joined(out, "Blockers", r->plan.blockers, r->plan.n_blockers);
    }
    if (r->n_next_steps > 0) {
        line(out, "NextSteps", "%s", "");
        for (size_t i = 0; i < r->n_next_steps; i++) {
            char l[NK_PLAN_ITEM_LEN + 8];
            int n = snprintf(l, sizeof(l), "  - %s\n", r->next_steps[i]);
            nk_buf_append(out, l, (size_t)n < sizeof(l) ? (size_t)n : sizeof(l) - 1);
        }
    }
}

void nk_init_text(const nk_init_result *r, nk_buf *out)
{
    line(out, "Workdir", "%s", r->workdir);
    line(out, "Mode", "%s", nk_mode_name(r->mode));
    line(out, "Store", "%" PRIu64, r->store_id);
    line(out, "Region", "%" PRIu64, r->region_id);
    line(out, "Peer", "%" PRIu64, r->peer_id);
    line(out, "SnapshotDir", "%s", r->snapshot_dir);
    line(out, "SnapshotFiles", "%" PRIu64 " (%" PRIu64 " bytes, hard-linked)", r->snapshot_files,
         r->snapshot_bytes);
    if (r->already_seeded) {
        line(out, "Result", "already seeded with these ids; nothing changed");
    } else if (r->resumed_from != NK_STAGE_NONE) {
        line(out, "Result", "resumed after stage %s", nk_stage_name(r->resumed_from));
    }
}
