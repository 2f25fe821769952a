/*
 * snapfetch.h - the follower side of engine snapshots inside raft.
 *
 * A replica whose raft installed a snapshot of a durable state machine
 * (store.h, "engine snapshots") has no engine data for it yet. The fetcher
 * refills it, one region at a time (so one snapshot per follower at a time;
 * the leader bounds its exports with NK_ADMIN_MAX_EXPORTS):
 *
 *   1. ExportRegionSnapshot on the leader's admin service (flagged as a raft
 *      catch-up, `force`, so the leader does not hold its log for it). The
 *      export is taken at the leader's applied index A; one below the
 *      snapshot point is refused (retry: a new leader may not have applied
 *      that far yet).
 *   2. ReadSnapshot in bounded chunks (NK_SNAPFETCH_CHUNK), appended to
 *      snap/fetch-<region>/ while XXH64 runs over the bytes as they are
 *      written; each file's size and checksum must match the manifest, then
 *      the files and the directory are synced. Nothing in the engine has
 *      been touched so far: a failure or a broken stream removes the
 *      staging directory and retries later with backoff (100 ms doubling to
 *      2 s), from whichever store leads then.
 *   3. The region's range (store-reserved keys excluded) is deleted with
 *      synced batches, then nk_db_ingest publishes the files in one manifest
 *      edit. A crash in this step leaves the store's marker in place (the
 *      region stays pending) and the whole fetch runs again after restart.
 *   4. nk_store_data_installed(region, A): the marker goes, the entries
 *      committed since the snapshot point are applied from the raft log.
 *
 * Failpoints: snapfetch.mid_stream (after each chunk is written),
 * snapfetch.before_ingest (the old range is deleted), snapfetch.after_ingest
 * (the data is in, the marker not yet removed).
 *
 * Lifetime: free after nk_store_close; a running engine write or ingest
 * finishes into a detached state and frees it. After a simulated crash
 * (nk_db_abandon) use nk_snapfetch_abandon: no engine callback will come.
 */
#ifndef NK_STORE_SNAPFETCH_H
#define NK_STORE_SNAPFETCH_H

#include <stdint.h>

#include "nokv/engine/db.h"
#include "nokv/store/store.h"

#define NK_SNAPFETCH_CHUNK (256u * 1024u)

typedef struct nk_snapfetch nk_snapfetch;

int nk_snapfetch_new(nk_rt *rt, nk_store *s, nk_db *db, const char *workdir,
                     nk_snapfetch **out);
/* Bytes per ReadSnapshot (0 = NK_SNAPFETCH_CHUNK; at most
 * NK_ADMIN_CHUNK_MAX); the simulator streams tiny chunks. */
void nk_snapfetch_set_chunk(nk_snapfetch *f, uint32_t bytes);
/* Register with the store (nk_store_set_fetcher). */
void nk_snapfetch_attach(nk_snapfetch *f);
void nk_snapfetch_free(nk_snapfetch *f);
void nk_snapfetch_abandon(nk_snapfetch *f);

typedef struct nk_snapfetch_stats {
    uint64_t installed; /* snapshots whose data went in */
    uint64_t failures;  /* attempts that failed and were retried */
    uint64_t bytes;     /* snapshot bytes received */
    uint64_t last_bytes, last_ns; /* the last installed snapshot: size, time */
} nk_snapfetch_stats;
void nk_snapfetch_stats_get(const nk_snapfetch *f, nk_snapfetch_stats *st);

#endif /* NK_STORE_SNAPFETCH_H */
