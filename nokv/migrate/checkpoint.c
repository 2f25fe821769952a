/* checkpoint.c - MIGRATION_PROGRESS.json (see checkpoint.h). */
#include "nokv/migrate/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nokv/util/jsonfile.h"
#include "nokv/util/smallfile.h"

#define CKPT_MAX_BYTES 4096

static const char *const stage_names[NK_STAGE_COUNT] = {
    "",
    "mode-preparing-written",
    "local-catalog-persisted",
    "seed-snapshot-exported",
    "raft-seed-initialized",
    "seeded-finalized",
    "expand-rollout-started",
    "expand-target-pending",
    "expand-target-hosted",
    "transfer-leader-started",
    "transfer-leader-finished",
    "remove-peer-started",
    "remove-peer-finished",
};

const char *nk_stage_name(nk_stage s)
{
    return (unsigned)s < NK_STAGE_COUNT ? stage_names[s] : "";
}

int nk_stage_parse(const char *name, nk_stage *out)
{
    for (unsigned i = 1; i < NK_STAGE_COUNT; i++) {
        if (strcmp(name, stage_names[i]) == 0) {
            *out = (nk_stage)i;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

/* Civil date from days since 1970-01-01 (proleptic Gregorian), the usual
 * era-based arithmetic: 400-year eras of 146097 days. */
void nk_format_utc(uint64_t wall_ns, char *out, size_t cap)
{
    uint64_t secs = wall_ns / NK_NSEC_PER_SEC;
    int64_t days = (int64_t)(secs / 86400);
    unsigned sod = (unsigned)(secs % 86400);
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(out, cap, "%04d-%02d-%02dT%02u:%02u:%02uZ", (int)y, (int)m, (int)d, sod / 3600,
             (sod / 60) % 60, sod % 60);
}

typedef struct field {
    const char *key;
    size_t off;
} field;

static const field id_fields[] = {
    {"store_id", offsetof(nk_checkpoint, store_id)},
    {"region_id", offsetof(nk_checkpoint, region_id)},
    {"peer_id", offsetof(nk_checkpoint, peer_id)},
    {"target_store_id", offsetof(nk_checkpoint, target_store_id)},
    {"target_peer_id", offsetof(nk_checkpoint, target_peer_id)},
    {"completed_targets", offsetof(nk_checkpoint, completed_targets)},
    {"total_targets", offsetof(nk_checkpoint, total_targets)},
};
#define N_ID_FIELDS (sizeof(id_fields) / sizeof(id_fields[0]))

static uint64_t *id_at(nk_checkpoint *cp, size_t i)
{
    return (uint64_t *)((char *)cp + id_fields[i].off);
}

/* The object stored (without its "xxh64", which nk_jsonfile adds). */
static json_t *to_json(const nk_checkpoint *cp)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    json_object_set_new(o, "format", json_integer(NK_CHECKPOINT_FORMAT));
    json_object_set_new(o, "stage", json_string(nk_stage_name(cp->stage)));
    json_object_set_new(o, "updated_at", json_string(cp->updated_at));
    for (size_t i = 0; i < N_ID_FIELDS; i++) {
        uint64_t v = *id_at((nk_checkpoint *)cp, i);
        if (v != 0) {
            json_object_set_new(o, id_fields[i].key, json_integer((json_int_t)v));
        }
    }
    return o;
}

int nk_checkpoint_read(nk_rt *rt, const char *workdir, nk_checkpoint *cp, nk_errbuf *eb)
{
    memset(cp, 0, sizeof(*cp));
    char path[1024];
    if (nk_path_fmt(path, sizeof(path), workdir, NK_CHECKPOINT_FILE) != NK_OK) {
        nk_errbuf_set(eb, "%s: path too long", workdir);
        return NK_ERANGE;
    }
    json_t *o = NULL;
    int rc = nk_jsonfile_read(rt, path, CKPT_MAX_BYTES, &o, eb);
    if (rc != NK_OK) {
        return rc;
    }
    rc = NK_ECORRUPT;
    json_t *fmt = json_object_get(o, "format");
    json_t *stage = json_object_get(o, "stage");
    json_t *upd = json_object_get(o, "updated_at");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != NK_CHECKPOINT_FORMAT) {
        nk_errbuf_set(eb, "%s: unsupported \"format\" (this build reads format %d)", path,
                      NK_CHECKPOINT_FORMAT);
        goto out;
    }
    if (!json_is_string(stage) || nk_stage_parse(json_string_value(stage), &cp->stage) != NK_OK) {
        nk_errbuf_set(eb, "%s: unknown migration stage %s", path,
                      json_is_string(stage) ? json_string_value(stage) : "(missing)");
        goto out;
    }
    if (!json_is_string(upd) || strlen(json_string_value(upd)) >= sizeof(cp->updated_at)) {
        nk_errbuf_set(eb, "%s: missing or bad \"updated_at\"", path);
        goto out;
    }
    snprintf(cp->updated_at, sizeof(cp->updated_at), "%s", json_string_value(upd));
    size_t known = 3; /* format, stage, updated_at */
    for (size_t i = 0; i < N_ID_FIELDS; i++) {
        json_t *v = json_object_get(o, id_fields[i].key);
        if (v == NULL) {
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            nk_errbuf_set(eb, "%s: \"%s\" must be a positive integer", path, id_fields[i].key);
            goto out;
        }
        *id_at(cp, i) = (uint64_t)json_integer_value(v);
        known++;
    }
    if (json_object_size(o) != known) {
        nk_errbuf_set(eb, "%s: unexpected fields for format %d", path, NK_CHECKPOINT_FORMAT);
        goto out;
    }
    rc = NK_OK;
out:
    json_decref(o);
    if (rc != NK_OK) {
        memset(cp, 0, sizeof(*cp));
    }
    return rc;
}

int nk_checkpoint_write(nk_rt *rt, const char *workdir, nk_checkpoint *cp, nk_errbuf *eb)
{
    if (cp->stage == NK_STAGE_NONE || (unsigned)cp->stage >= NK_STAGE_COUNT) {
        nk_errbuf_set(eb, "write migration checkpoint: stage is required");
        return NK_EINVAL;
    }
    nk_format_utc(nk_rt_wall(rt), cp->updated_at, sizeof(cp->updated_at));
    json_t *o = to_json(cp);
    if (o == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_jsonfile_write(rt, workdir, NK_CHECKPOINT_FILE, o, "checkpoint.write", eb);
    json_decref(o);
    return rc;
}

void nk_resume_hint(nk_mode mode, const nk_checkpoint *cp, char *out, size_t cap)
{
    out[0] = '\0';
    if (cp == NULL || cp->stage == NK_STAGE_NONE) {
        if (mode == NK_MODE_PREPARING) {
            /* MODE.json says preparing but the first checkpoint never made
             * it to disk: the gate is the only completed step. */
            snprintf(out, cap,
                     "re-run nokv migrate init to continue after the mode gate was "
                     "written");
        }
        return;
    }
    unsigned long long sp = (unsigned long long)cp->target_store_id;
    unsigned long long pp = (unsigned long long)cp->target_peer_id;
    if (mode == NK_MODE_PREPARING) {
        switch (cp->stage) {
        case NK_STAGE_MODE_PREPARING_WRITTEN:
            snprintf(out, cap,
                     "re-run nokv migrate init to continue after the mode gate was "
                     "written");
            break;
        case NK_STAGE_LOCAL_CATALOG_PERSISTED:
            snprintf(out, cap,
                     "re-run nokv migrate init to continue after local catalog "
                     "persistence");
            break;
        case NK_STAGE_SEED_SNAPSHOT_EXPORTED:
            snprintf(out, cap,
                     "re-run nokv migrate init to continue after seed snapshot "
                     "export");
            break;
        case NK_STAGE_RAFT_SEED_INITIALIZED:
            snprintf(out, cap, "re-run nokv migrate init to finalize seeded mode");
            break;
        default:
            break;
        }
        return;
    }
    if (mode != NK_MODE_SEEDED && mode != NK_MODE_CLUSTER) {
        return;
    }
    switch (cp->stage) {
    case NK_STAGE_SEEDED_FINALIZED:
        snprintf(out, cap, "local standalone-to-seed promotion already completed");
        break;
    case NK_STAGE_EXPAND_ROLLOUT_STARTED:
        snprintf(out, cap, "re-run nokv migrate expand to continue the recorded rollout");
        break;
    case NK_STAGE_EXPAND_TARGET_PENDING:
        snprintf(out, cap,
                 "re-run nokv migrate expand to continue peer rollout toward store=%llu "
                 "peer=%llu",
                 sp, pp);
        break;
    case NK_STAGE_EXPAND_TARGET_HOSTED:
        snprintf(out, cap,
                 "expand rollout has completed %llu/%llu target(s); continue with nokv migrate "
                 "expand or the next membership step",
                 (unsigned long long)cp->completed_targets, (unsigned long long)cp->total_targets);
        break;
    case NK_STAGE_TRANSFER_LEADER_STARTED:
        snprintf(out, cap,
                 "re-run nokv migrate transfer-leader to continue leadership movement toward "
                 "peer=%llu",
                 pp);
        break;
    case NK_STAGE_TRANSFER_LEADER_FINISHED:
        snprintf(out, cap,
                 "leader transfer toward peer=%llu completed; continue with the next membership "
                 "step",
                 pp);
        break;
    case NK_STAGE_REMOVE_PEER_STARTED:
        snprintf(out, cap, "re-run nokv migrate remove-peer to continue removal of peer=%llu", pp);
        break;
    case NK_STAGE_REMOVE_PEER_FINISHED:
        snprintf(out, cap,
                 "peer removal for peer=%llu completed; continue with the next migration step", pp);
        break;
    default:
        break;
    }
}
