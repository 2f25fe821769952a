/*
 * admin.h - the store's admin service (NK_SERVICE_ADMIN connections).
 *
 * Serves the requests of nokv/proto/admin.h on the store's listener (the
 * cluster server registers it with nk_store_set_admin_service):
 *
 *   AddPeer {region, store, peer}   on the leader: proposes ADD_LEARNER;
 *                                   EXISTS when the store already hosts a
 *                                   peer of the region (or the peer id is
 *                                   taken);
 *   PromotePeer {region, peer}      learner -> voter;
 *   RemovePeer {region, peer}       refused (INVALID) when the peer is the
 *                                   leader, or when the voters that remain
 *                                   and are caught up are not a quorum of
 *                                   the new configuration, unless force;
 *   TransferLeader {region, peer}   to a voter;
 *   RegionRuntimeStatus {region}    what this store knows; an unknown region
 *                                   is an all-zero OK answer, not an error;
 *   StoreStatus                     store id, hosted regions, failed.
 * A request naming an epoch (non-zero) is refused with EPOCH_MISMATCH when
 * the region's epoch differs. Membership requests answer once the change is
 * proposed: the caller polls RegionRuntimeStatus to see it applied.
 *
 * Snapshots (engine data, Go-style install-before-publish):
 *   ExportRegionSnapshot on the leader: once every applied entry is
 *     visible in the engine (nk_kvsm_settled; BUSY until then), the region's
 *     descriptor, applied index and its term are taken, then nk_db_export_range
 *     links the range's tables (minus the store's reserved keys, kvsm.h)
 *     into snap/export-<region>-<session>/ from a background job; the
 *     answer carries the manifest (names and sizes: nothing is read). The
 *     caller pulls the files with ReadSnapshot (bounded chunks, each file
 *     in order: the store keeps it open and hashes it as it reads it, and
 *     the eof answer carries its XXH64) and frees them with
 *     ReleaseSnapshot (or by closing the connection).
 *   ImportRegionSnapshot on the target: chunks are appended in order into
 *     snap/import-<region>/ while XXH64 runs over the bytes as they are
 *     written; the chunk completing a file carries the sender's hash.
 *     FinishImport checks every size and checksum, syncs each file once, then
 *     installs (store.h: LOCALMETA APPLYING, engine ingest, raft reset at
 *     (index, term), LOCALMETA NORMAL + hosted). A failure before publish
 *     removes the ingested range again, so a retry starts clean; after a
 *     crash, nk_admin_service_new does that rollback for every region left
 *     APPLYING (imports are refused with BUSY until it is done).
 * Failpoints: snapshot.install.after_applying, snapshot.install.after_ingest
 * and (store.c) snapshot.install.before_publish.
 *
 * A malformed frame (bad envelope, unknown op or kind) closes that
 * connection only. One import at a time per store; exports are bounded by
 * NK_ADMIN_MAX_EXPORTS.
 */
#ifndef NK_STORE_ADMIN_H
#define NK_STORE_ADMIN_H

#include "nokv/engine/db.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/store.h"

#define NK_ADMIN_MAX_EXPORTS 4

typedef struct nk_admin_service nk_admin_service;

/* Create the service for store s over engine db (applied through kvsm; NULL
 * when nothing else writes the engine) in workdir, and start the rollback
 * of interrupted installs. Register it with nk_admin_service_desc. */
int nk_admin_service_new(nk_rt *rt, nk_store *s, nk_db *db, nk_kvsm *kvsm, const char *workdir,
                         nk_admin_service **out);
/* The same; unsafe_skip_install_rollback is TEST ONLY (the simulator's
 * planted bug, never set by `nokv serve`): regions left APPLYING are not
 * rolled back. */
int nk_admin_service_new_ex(nk_rt *rt, nk_store *s, nk_db *db, nk_kvsm *kvsm, const char *workdir,
                            bool unsafe_skip_install_rollback, nk_admin_service **out);
/* The nk_store_service to pass to nk_store_set_admin_service. */
nk_store_service nk_admin_service_desc(nk_admin_service *a);
/* Free (after nk_store_close, or after unregistering). Background jobs
 * that still run finish into a detached state and free themselves. */
void nk_admin_service_free(nk_admin_service *a);
/* Rollback of interrupted installs finished (tests). */
bool nk_admin_service_ready(const nk_admin_service *a);

/* Region snapshot bytes this store streamed out (export) and took in
 * (import), for metrics. */
typedef struct nk_admin_stats {
    uint64_t snapshot_bytes_sent;
    uint64_t snapshot_bytes_received;
} nk_admin_stats;
void nk_admin_stats_get(const nk_admin_service *a, nk_admin_stats *st);

#endif /* NK_STORE_ADMIN_H */
