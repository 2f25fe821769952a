/*
 * kvsm.h - the data-plane state machine: committed KV entries applied to the
 * store's engine (the same nk_db, the same user keys as standalone mode).
 *
 * Entry format (a NORMAL raft entry, nokv/proto/wire.h envelope, magic "KC",
 * version 1): wall_ms uvar (the proposer's clock, so every replica applies
 * time-dependent commands identically), n uvar, n x (del u8, key bytes,
 * value bytes). The ops are an atomic batch: MSET, multi-key DEL and
 * MULTI/EXEC keep their all-or-nothing meaning across replicas.
 *
 * Apply = one engine write of the ops PLUS the region's apply state (index,
 * term) under a reserved key, in ONE batch, without fsync: the raft log was
 * already synced, so a committed write costs each replica exactly one fsync
 * (its raft log batch). After a crash the engine may have lost its unsynced
 * tail, but then it lost the apply state with it (same WAL record): the
 * store re-applies from the raft log after the recovered applied index,
 * never an entry twice, never one skipped. The raft log is compacted only up
 * to an applied index the engine has made durable: the state machine's
 * durable_index (nk_store_sm) runs one engine WAL sync (nk_db_sync) once no
 * applied write is queued behind a stall, and reports the index it covered.
 *
 * Engine snapshots (store.h) re-apply entries the installed data already
 * holds: that is harmless because every op puts or deletes a whole value.
 *
 * Reserved keys: everything from NK_KVSM_RESERVED (4 x 0xff then "nokv/")
 * on is the store's; the cluster RESP layer refuses user keys there and
 * region exports stop before it. `nokv migrate plan` reports standalone keys
 * in that range as a blocker.
 */
#ifndef NK_STORE_KVSM_H
#define NK_STORE_KVSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/db.h"
#include "nokv/resp/backend.h"
#include "nokv/store/store.h"

#define NK_KVSM_RESERVED "\xff\xff\xff\xffnokv/"
#define NK_KVSM_RESERVED_LEN 9u

typedef struct nk_kvsm nk_kvsm;

/* Called for every applied entry of a region, in index order, once readers
 * of the engine see its write: at once, or later when the engine queued the
 * write behind a stall. The cluster backend releases waiting replies and
 * drops its pending overlay from here. */
typedef void (*nk_kvsm_applied_fn)(void *ctx, uint64_t region_id, uint64_t index);

int nk_kvsm_new(nk_db *db, nk_kvsm **out);
void nk_kvsm_free(nk_kvsm *k);
/* Free at once: the engine was abandoned (nk_db_abandon), so none of its
 * callbacks will come (a crashed node). */
void nk_kvsm_abandon(nk_kvsm *k);
void nk_kvsm_set_applied_hook(nk_kvsm *k, nk_kvsm_applied_fn fn, void *ctx);

/* Called once, when the engine refuses an applied write it had queued
 * (disk full, a failed flush turning the engine read-only). The entry
 * counts as applied in raft but its data is not in the engine: the owner
 * must stop serving at once (nk_store_fail). Without this a leader whose
 * engine failed behind a stall kept leading a region nobody could use:
 * its hooks stop firing, so it answers every request TRYAGAIN while raft,
 * which is healthy, never hands the lead on (swarm seed 114, disk faults). */
typedef void (*nk_kvsm_failed_fn)(void *ctx, int status);
void nk_kvsm_set_failed_hook(nk_kvsm *k, nk_kvsm_failed_fn fn, void *ctx);

/* The nk_store_sm to pass in nk_store_options (durable, not volatile). */
nk_store_sm nk_kvsm_sm(nk_kvsm *k);

/* The engine refused an applied write: the state machine is behind its
 * raft log and must not serve; its next apply fails and stops the store. */
bool nk_kvsm_failed(const nk_kvsm *k);

/* Is key a reserved (store-internal) key? */
bool nk_kvsm_reserved(const uint8_t *key, size_t klen);

/* Encode a batch of ops as an entry (out is cleared first). NK_ETOOBIG when
 * over max_bytes. */
int nk_kvsm_encode(const nk_kv_write *ops, size_t n, uint64_t wall_ms, size_t max_bytes,
                   nk_buf *out);

/* No engine write of an applied entry is still queued (behind a stall):
 * every applied entry is visible to readers and exports now. A region
 * snapshot export taken at the applied index needs this. */
bool nk_kvsm_settled(const nk_kvsm *k);

/* Put into b (cleared first) deletes of the next `max` user keys of region
 * d's range; the reserved apply-state keys past the user range stay. *n is
 * how many. A range wipe writes each batch and repeats until *n is 0
 * (everything visible is deleted so far, so each step restarts at the range
 * start). Used by the admin import's wipe and the engine-snapshot fetch. */
int nk_kvsm_wipe_batch(nk_db *db, const nk_region *d, unsigned max, nk_batch *b, unsigned *n);

/* The durable apply state stored in the engine for region_id (0/0 when none). */
int nk_kvsm_applied(nk_kvsm *k, uint64_t region_id, uint64_t *index, uint64_t *term);

#endif /* NK_STORE_KVSM_H */
