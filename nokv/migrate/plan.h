/*
 * plan.h - `nokv migrate plan`: the read-only preflight of a promotion.
 *
 * Answers "can this standalone workdir be promoted now, and if not, why?"
 * without changing a byte of it (a test checks every file's bytes before and
 * after): it never takes a LOCK it would have to create, never opens the
 * engine (an open repairs), never writes a file. Checks, in order:
 *   1. the workdir exists and is a directory;
 *   2. MODE.json is readable and says standalone (anything else: already
 *      promoted or half-promoted; see `nokv migrate status`);
 *   3. no process holds the LOCK (writes must stop before a migration);
 *   4. the engine's recovery state is coherent (nokv/engine/inspect.h:
 *      CURRENT, the live manifest, every table it lists, the WAL); a torn
 *      tail the next open will cut is a warning, damage is a blocker;
 *   5. no LOCALMETA with regions, no raft log (<workdir>/raft): nothing of a
 *      store already lives here;
 *   6. enough free space for what init writes (it links the tables instead
 *      of copying them: metadata, a raft log segment, no data).
 * Each failed check adds a blocker; `next` is the exact command to run.
 */
#ifndef NK_MIGRATE_PLAN_H
#define NK_MIGRATE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/inspect.h"
#include "nokv/migrate/mode.h"
#include "nokv/rt.h"

#define NK_PLAN_MAX_ITEMS 12
#define NK_PLAN_ITEM_LEN 600

typedef struct nk_plan_result {
    char workdir[512];
    nk_mode mode;
    bool eligible;
    size_t n_blockers;
    char blockers[NK_PLAN_MAX_ITEMS][NK_PLAN_ITEM_LEN];
    size_t n_warnings;
    char warnings[NK_PLAN_MAX_ITEMS][NK_PLAN_ITEM_LEN];
    char next[NK_PLAN_ITEM_LEN];
    uint64_t local_catalog_regions;
    uint64_t table_files;
    uint64_t table_bytes;
    uint64_t wal_bytes;
    uint64_t last_sequence;
    uint64_t free_bytes;     /* 0 when unknown */
    uint64_t required_bytes; /* what init needs, roughly */
} nk_plan_result;

/* Helpers shared with init: a raft log (<workdir>/raft/NNNNNN.rlog) exists; the
 * inspected engine holds keys in the cluster mode's reserved range. */
bool nk_migrate_has_raft_log(nk_rt *rt, const char *workdir);
bool nk_inspect_has_reserved_keys(const nk_db_inspect *ins);

/* Always fills r (a failed check is a blocker, not an error); NK_EINVAL only
 * for an empty workdir argument. */
int nk_migrate_plan(nk_rt *rt, const char *workdir, nk_plan_result *r);

#endif /* NK_MIGRATE_PLAN_H */
