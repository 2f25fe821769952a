/*
 * checkpoint.h - the migration progress checkpoint (MIGRATION_PROGRESS.json).
 *
 * MODE.json says which mode a workdir is in; this file says how far the
 * current migration step got, so an interrupted `nokv migrate init` (or a
 * later expand / transfer-leader / remove-peer) is never just "stuck in
 * preparing": status, report and the workdir gate print the stage and a
 * resume hint saying exactly what to run next.
 *
 * Stages (the names are the operator surface of NoKV-Go, kept verbatim):
 *   init:     mode-preparing-written, local-catalog-persisted,
 *             seed-snapshot-exported, raft-seed-initialized, seeded-finalized
 *   expand:   expand-rollout-started, expand-target-pending,
 *             expand-target-hosted
 *   transfer: transfer-leader-started, transfer-leader-finished
 *   remove:   remove-peer-started, remove-peer-finished
 * A stage is recorded once the step it names is durable, so a rerun resumes
 * with the step after it (and re-validates the ones before).
 *
 * File (rewritten with nokv/util/smallfile.h: tmp + sync + rename + dir
 * sync; a crash leaves the old or the new file):
 *     {"completed_targets":1,"format":1,"region_id":1,"stage":"...",
 *      "updated_at":"2026-12-04T18:40:00Z","xxh64":"<16 hex digits>"}
 * Keys sorted; ids and counters omitted when 0; updated_at is the wall time
 * of the write (display only, second precision, UTC); xxh64 is XXH64 (seed 0)
 * of the compact, key-sorted JSON of every other field, as in MODE.json.
 * Unlike MODE.json, a damaged checkpoint never blocks anything: it is only
 * progress information (the mode gate and the artifacts themselves are the
 * truth), so readers report it as a warning.
 */
#ifndef NK_MIGRATE_CHECKPOINT_H
#define NK_MIGRATE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/migrate/mode.h"
#include "nokv/rt.h"

#define NK_CHECKPOINT_FILE "MIGRATION_PROGRESS.json"
#define NK_CHECKPOINT_FORMAT 1

typedef enum nk_stage {
    NK_STAGE_NONE = 0, /* no checkpoint */
    NK_STAGE_MODE_PREPARING_WRITTEN,
    NK_STAGE_LOCAL_CATALOG_PERSISTED,
    NK_STAGE_SEED_SNAPSHOT_EXPORTED,
    NK_STAGE_RAFT_SEED_INITIALIZED,
    NK_STAGE_SEEDED_FINALIZED,
    NK_STAGE_EXPAND_ROLLOUT_STARTED,
    NK_STAGE_EXPAND_TARGET_PENDING,
    NK_STAGE_EXPAND_TARGET_HOSTED,
    NK_STAGE_TRANSFER_LEADER_STARTED,
    NK_STAGE_TRANSFER_LEADER_FINISHED,
    NK_STAGE_REMOVE_PEER_STARTED,
    NK_STAGE_REMOVE_PEER_FINISHED,
} nk_stage;

#define NK_STAGE_COUNT 13 /* including NK_STAGE_NONE */

typedef struct nk_checkpoint {
    nk_stage stage;
    uint64_t store_id;
    uint64_t region_id;
    uint64_t peer_id;
    uint64_t target_store_id;
    uint64_t target_peer_id;
    uint64_t completed_targets;
    uint64_t total_targets;
    char updated_at[32]; /* RFC 3339 UTC, set by nk_checkpoint_write */
} nk_checkpoint;

/* "mode-preparing-written" etc.; "" for NK_STAGE_NONE. */
const char *nk_stage_name(nk_stage s);
/* NK_EINVAL for a name that is not one of the 12 stages. */
int nk_stage_parse(const char *name, nk_stage *out);

/* Read <workdir>/MIGRATION_PROGRESS.json. NK_ENOENT (cp zeroed) when there
 * is none; NK_ECORRUPT with eb saying why for a damaged one. */
int nk_checkpoint_read(nk_rt *rt, const char *workdir, nk_checkpoint *cp, nk_errbuf *eb);

/* Write it durably; sets cp->updated_at from the runtime's wall clock.
 * NK_EINVAL for NK_STAGE_NONE. Failpoints "checkpoint.write.after_tmp",
 * "checkpoint.write.after_rename". */
int nk_checkpoint_write(nk_rt *rt, const char *workdir, nk_checkpoint *cp, nk_errbuf *eb);

/*
 * The resume hint for a workdir in `mode` whose checkpoint is cp (NULL when
 * there is none): what to run next, or "" when nothing is in progress.
 * Same wording as NoKV-Go so its operators recognise it.
 */
void nk_resume_hint(nk_mode mode, const nk_checkpoint *cp, char *out, size_t cap);

/* RFC 3339 UTC ("2026-12-04T18:40:00Z") of a wall time in ns since the epoch.
 * Pure arithmetic (no libc time functions: nokv/ stays deterministic). */
void nk_format_utc(uint64_t wall_ns, char *out, size_t cap);

#endif /* NK_MIGRATE_CHECKPOINT_H */
