/*
 * init.h - `nokv migrate init`: promote a standalone workdir to a
 * single-store cluster seed, offline, in checkpointed stages.
 *
 * Stages, each durable before its checkpoint (checkpoint.h) is written, and
 * each followed by the failpoint "migrate.init.<stage>":
 *   mode-preparing-written   MODE.json = preparing {store, region, peer}:
 *                            from here on no standalone open or serve
 *   local-catalog-persisted  LOCALMETA: store id, the full-range region with
 *                            epoch {1,1} and the single voter peer
 *   seed-snapshot-exported   the engine is opened (WAL replayed), flushed,
 *                            and its live tables hard-linked into
 *                            seed-snapshot/ with SNAPSHOT.json (seedsnap.h)
 *   raft-seed-initialized    the raft log <workdir>/raft holds, for the
 *                            region, SNAPSHOT(reset, NK_SEED_RAFT_INDEX/TERM,
 *                            conf {peer voter}) + HARDSTATE (seed.h), synced
 *                            [failpoint migrate.init.raft-log-written], then
 *                            the raft replay pointer RAFT_REPLAY.json
 *   seeded-finalized         MODE.json = seeded; then every artifact is
 *                            validated against the others (catalog, snapshot
 *                            metadata, raft state, pointer)
 * Every stage is "check, else do": a rerun after a crash anywhere re-checks
 * what is done and redoes the rest (resume); a rerun on a seeded workdir with
 * the same ids validates and changes nothing; other ids are refused
 * (NK_EMODE), as is a cluster workdir or conflicting local state.
 *
 * The workdir is owned (LOCK) for the whole run. Asynchronous because the
 * engine flush and the raft log sync are runtime jobs: done runs once, on
 * the loop thread, possibly before nk_migrate_init returns. The simulator's
 * operator and the CLI call this same function.
 */
#ifndef NK_MIGRATE_INIT_H
#define NK_MIGRATE_INIT_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/migrate/checkpoint.h"
#include "nokv/rt.h"

typedef struct nk_init_args {
    const char *workdir;
    uint64_t store_id;
    uint64_t region_id;
    uint64_t peer_id;
} nk_init_args;

typedef struct nk_init_result {
    char workdir[512];
    nk_mode mode;
    uint64_t store_id;
    uint64_t region_id;
    uint64_t peer_id;
    char snapshot_dir[1024];
    bool already_seeded;   /* the workdir was seeded with these ids: nothing changed */
    nk_stage resumed_from; /* checkpoint stage found at the start (NONE: fresh) */
    uint64_t snapshot_files;
    uint64_t snapshot_bytes;
    uint64_t last_sequence;
    uint64_t raft_index;
    uint64_t raft_term;
} nk_init_result;

/* rc: NK_OK, NK_EINVAL (bad arguments), NK_ENOENT (no workdir / no engine),
 * NK_EMODE (cluster workdir, mismatched ids), NK_EEXIST (conflicting local
 * state), NK_EBUSY (LOCK held), NK_ECORRUPT, an I/O error, or a failpoint's
 * code. msg says what failed and what to do. */
typedef void (*nk_init_done_fn)(void *arg, int rc, const nk_init_result *r, const char *msg);

void nk_migrate_init(nk_rt *rt, const nk_init_args *a, nk_init_done_fn done, void *arg);

/* Check that the artifacts of a seeded workdir agree (the final step of
 * init, and what status/report use for ready_for_serve). Read-only except
 * that it opens the raft log. NK_OK or NK_ECORRUPT / NK_ENOENT with eb. */
int nk_migrate_validate_seed(nk_rt *rt, const char *workdir, uint64_t store_id, uint64_t region_id,
                             uint64_t peer_id, nk_errbuf *eb);

#endif /* NK_MIGRATE_INIT_H */
