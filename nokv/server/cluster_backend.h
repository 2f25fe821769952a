/*
 * cluster_backend.h - the RESP storage interface (nokv/resp/backend.h) over
 * a raftstore region: what `nokv serve` answers clients with in
 * distributed mode.
 *
 * Commands run on the store that leads the key's region, against its local
 * engine, exactly as in standalone mode (same command code, same value
 * envelope); what changes is how their effects become durable and visible:
 *
 *   - write: the ops are proposed as one raft entry (kvsm.h); done fires
 *     once the entry is committed AND applied (NK_OK), or with the reason it
 *     was not (NK_EAGAIN: leadership lost, the entry may or may not commit
 *     later - the reply says so). Until it applies, the ops sit in an
 *     overlay that later reads on this store see first, so the backend.h
 *     rule "visible on submit" holds and read-modify-write commands (INCR,
 *     SET NX/XX, APPEND) queued behind each other see each other's effects.
 *     Entries of one leader commit in index order, so a write that read an
 *     overlay value commits only if what it read commits too.
 *   - read_barrier: a read-only command's reply is held until a ReadIndex
 *     round confirmed this store still leads and everything the read could
 *     have seen (applied state and overlay) is applied: a read never shows
 *     a value that was not committed, nor misses one acknowledged before it.
 *   - not the leader, or a new leader that has not applied an entry of its
 *     own term yet (committed entries of earlier terms may still be on
 *     their way to its engine): get/write/scan/barrier return NK_EAGAIN and the
 *     command layer answers "-TRYAGAIN ..." naming the leader's store when
 *     known (forwarding to the leader is future work).
 *
 * Keys in the reserved range (kvsm.h) are refused with NK_EINVAL.
 */
#ifndef NK_SERVER_CLUSTER_BACKEND_H
#define NK_SERVER_CLUSTER_BACKEND_H

#include "nokv/engine/db.h"
#include "nokv/resp/backend.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/store.h"

typedef struct nk_cluster_backend nk_cluster_backend;

/* Serve region_id of store `st` whose engine is db and state machine k.
 * max_entry_bytes bounds one proposal (0 = 16 MiB). */
int nk_cluster_backend_new(nk_rt *rt, nk_store *st, nk_kvsm *k, nk_db *db, uint64_t region_id,
                           size_t max_entry_bytes, nk_cluster_backend **out);
/* Barriers still waiting complete with NK_ESTOPPED. Order at shutdown: free
 * the RESP server, close the store (pending writes complete with
 * NK_ESTOPPED), then free this backend, the kvsm and the engine. */
void nk_cluster_backend_free(nk_cluster_backend *b);
nk_kv_backend *nk_cluster_backend_kv(nk_cluster_backend *b);

/* TEST ONLY: acknowledge writes as soon as they are proposed (before they
 * commit): the simulator's planted bug (nk_cluster_config). */
void nk_cluster_backend_set_unsafe_ack_on_propose(nk_cluster_backend *b, bool on);

#endif /* NK_SERVER_CLUSTER_BACKEND_H */
