/*
 * seed.h - the raft identity of a standalone workdir promoted to a cluster
 * seed by `nokv migrate init`.
 *
 * A promoted workdir already holds data: the engine's tables are the state
 * machine of the seed region, as if every write so far had been a raft entry
 * applied at or below one index. That index is NK_SEED_RAFT_INDEX and its
 * term NK_SEED_RAFT_TERM. init writes, for the seed region, into the
 * store-wide raft log (<workdir>/raft, raftlog.h):
 *     SNAPSHOT (reset) index = NK_SEED_RAFT_INDEX, term = NK_SEED_RAFT_TERM,
 *              conf = {the seed peer: voter}
 *     HARDSTATE term = NK_SEED_RAFT_TERM, vote = 0, commit = NK_SEED_RAFT_INDEX
 * so the first leader (the seed peer electing itself) starts at term
 * NK_SEED_RAFT_TERM + 1 and appends at NK_SEED_RAFT_INDEX + 1, and a peer
 * added later that lacks the data is sent a snapshot instead of entries the
 * log never held. Why 5 and not 1: indexes 1..4 stay free below the seed,
 * so a raft implementation's own bootstrap entries (which start at 1) can
 * never be confused with the seed's state; any value > 0 works.
 *
 * The raft replay pointer (<workdir>/RAFT_REPLAY.json, the nokv/util/
 * jsonfile.h format) records, per seed region, the raft index and term the
 * engine's data already reflects: a store recovering the region replays raft
 * entries from applied_index + 1 only. For the seed it equals the snapshot
 * above; it is written after the raft log is durable and validated with it.
 *     {"applied_index":5,"applied_term":5,"format":1,"region_id":1,
 *      "xxh64":"<16 hex>"}
 */
#ifndef NK_STORE_SEED_H
#define NK_STORE_SEED_H

#include <stdint.h>

#include "nokv/rt.h"

#define NK_SEED_RAFT_INDEX 5u
#define NK_SEED_RAFT_TERM 5u

#define NK_SEED_RAFT_DIR "raft" /* the raft log directory inside the workdir */
#define NK_REPLAY_FILE "RAFT_REPLAY.json"
#define NK_REPLAY_FORMAT 1

typedef struct nk_replay_pointer {
    uint64_t region_id;
    uint64_t applied_index;
    uint64_t applied_term;
} nk_replay_pointer;

/* Durably (re)write the pointer. Failpoints "replay.write.after_tmp",
 * "replay.write.after_rename". */
int nk_replay_pointer_write(nk_rt *rt, const char *workdir, const nk_replay_pointer *p,
                            nk_errbuf *eb);
/* NK_ENOENT when absent; NK_ECORRUPT (eb names the file) when damaged. */
int nk_replay_pointer_read(nk_rt *rt, const char *workdir, nk_replay_pointer *p, nk_errbuf *eb);

#endif /* NK_STORE_SEED_H */
