/*
 * store.h - the raftstore: one store hosts one raft peer per region.
 *
 * A store owns, inside its workdir:
 *   raft/       the store-wide raft log (raftlog.h): every region's entries,
 *               hard state and snapshot points, one fsync per batch;
 *   LOCALMETA   the hosted regions and their state (localmeta.h);
 *   snap/       durable snapshot payloads of volatile state machines
 *               (<region>-<index>.snap), see below; for the engine, the
 *               same name marks a snapshot whose data is still pending
 *               ("engine snapshots" below);
 * and a listener (raft service, HELLO-first framed connections) plus
 * outgoing connections to the stores its regions' peers live on
 * (transport.h), resolved from store ids by the caller's resolver.
 *
 * The Ready loop (raft.h contract) runs store-wide: every peer's pending
 * Ready is staged into the raft log, the batch is written and synced ONCE
 * by a background job, then each peer sends its messages, applies its
 * committed entries, serves its reads and advances. At most one batch is in
 * flight; the next is staged meanwhile.
 *
 * State machines plug in through nk_store_sm: the data plane (the engine,
 * durable by itself) or a test state machine in the simulator (volatile:
 * the store keeps its snapshot payloads in snap/ and replays the log after
 * them on restart). Every committed entry goes to sm->apply in index order,
 * exactly once per incarnation of the state machine.
 *
 * Membership: conf-change entries carry the store id of the changed peer
 * (nk_raft_propose_conf_change_ctx), so every replica updates the region
 * descriptor (peers, conf_version + 1) from the log itself and persists it
 * in LOCALMETA. A replica whose own peer is removed becomes a TOMBSTONE: its
 * raft state is destroyed, it stops, and stale traffic never revives it; a
 * later re-add of the same peer (a newer conf_version) starts a fresh
 * replica from the tombstone's term and vote.
 *
 * Threading: everything runs on the store's runtime loop. Calls below only
 * touch memory and schedule work (a zero-delay timer), so the simulator's
 * world may call them from outside the node's callbacks.
 */
#ifndef NK_STORE_STORE_H
#define NK_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/proto/region.h"
#include "nokv/raft/raft.h"
#include "nokv/rt.h"
#include "nokv/proto/hello.h"
#include "nokv/store/localmeta.h"
#include "nokv/store/raftlog.h"

typedef struct nk_store nk_store;

/* ------------------------------------------------------ state machine --- */

typedef struct nk_store_sm {
    void *ctx;
    /* true: the store keeps snapshot payloads durably and the state machine
     * is rebuilt at open from the latest one plus the log after it. */
    bool volatile_state;
    /* A region is hosted (store open, seed, created by a message). For a
     * volatile state machine, snap/len is the durable snapshot payload at
     * snap_index (NULL/0 when the region has none yet). Returns in *applied
     * the index the state machine reflects (volatile: snap_index). */
    int (*open_region)(void *ctx, uint64_t region_id, const uint8_t *snap, size_t len,
                       uint64_t snap_index, uint64_t *applied);
    /* Apply committed entry e (every type: normal with data, leader no-op,
     * conf change) in index order. *result goes to the proposer's callback. */
    int (*apply)(void *ctx, uint64_t region_id, const nk_raft_entry *e, uint64_t *result);
    /* Serialize the region's state at its applied index (malloc'd). */
    int (*snapshot)(void *ctx, uint64_t region_id, uint8_t **data, size_t *len);
    /* Replace the region's state with a snapshot payload at (index, term). */
    int (*install)(void *ctx, uint64_t region_id, const uint8_t *data, size_t len, uint64_t index,
                   uint64_t term);
    /* The region is no longer hosted (tombstone) or the store closes. */
    void (*close_region)(void *ctx, uint64_t region_id);
    /* Durable state machines only (may be NULL: their log is never
     * compacted). The highest applied index of the region whose state
     * survives a power loss; when that is below `want` (<= applied), start
     * making the state at `want` durable in the background, so that a later
     * call returns it. The store compacts the raft log only up to what this
     * returns: entries above it are what a restart re-applies. */
    uint64_t (*durable_index)(void *ctx, uint64_t region_id, uint64_t want);
} nk_store_sm;

/* ----------------------------------------------------------- observer --- */

/*
 * Hooks for checkers (the simulator's eyes); every field may be NULL and
 * production passes no observer at all. Hooks only record: they never call
 * back into the store.
 */
typedef struct nk_store_observer {
    void *ctx;
    /* After any event that touched the peer's raft. */
    void (*raft_changed)(void *ctx, uint64_t store_id, uint64_t region_id, const nk_raft *r);
    /* An entry was staged into the raft log; prev_term is the term of the
     * entry before it. */
    void (*persisted)(void *ctx, uint64_t store_id, uint64_t region_id, const nk_raft_entry *e,
                      uint64_t prev_term);
    /* A batch sync finished: everything up to lsn, and hs, are durable. */
    void (*synced)(void *ctx, uint64_t store_id, uint64_t region_id, uint64_t lsn,
                   const nk_raft_hard_state *hs);
    /* A region's peer was recovered at open from what the log holds. */
    void (*recovered)(void *ctx, uint64_t store_id, uint64_t region_id, uint64_t lsn,
                      const nk_raft_hard_state *hs, uint64_t snap_index, uint64_t last_index);
    /* A local invariant broke (the store also logs it and fails the peer). */
    void (*violation)(void *ctx, uint64_t store_id, const char *what);
} nk_store_observer;

/* ------------------------------------------------------------ options --- */

/* Address of a store ("host:port"): NK_OK, or NK_ENOENT when unknown. The
 * store first looks in its own address book (nk_store_set_address, and every
 * HELLO it receives), then asks this resolver (may be NULL). */
typedef int (*nk_store_resolve_fn)(void *ctx, uint64_t store_id, char *addr, size_t cap);

typedef struct nk_store_options {
    const char *workdir;
    uint64_t store_id;          /* non-zero */
    uint64_t cluster_id;        /* 0 = accept any */
    const char *listen_addr;    /* raft service; NULL = do not listen */
    const char *advertise_addr; /* sent in HELLO so peers learn it; NULL = none */
    const char *client_addr;    /* our RESP address, sent in HELLO; NULL = none */
    nk_store_resolve_fn resolve;
    void *resolve_ctx;
    nk_store_sm sm;
    const nk_store_observer *obs; /* NULL in production */

    uint64_t tick_ns;         /* raft tick; default 100 ms */
    uint32_t election_ticks;  /* default 10 */
    uint32_t heartbeat_ticks; /* default 2 */
    uint32_t max_inflight_msgs;
    uint64_t max_batch_bytes;    /* 0 = raft default */
    /* Log compaction policy: compact once this many entries, or this many
     * entry bytes, were applied since the last compaction point (0 = that
     * trigger is off; both 0 = never). A durable state machine compacts
     * only up to what sm.durable_index returns and, as leader, only up to
     * the committed index every member holds (the compact hint of
     * raftmsg.h that followers follow too): no member is ever left behind
     * the log, since durable state machines cannot be sent as snapshots. */
    uint32_t compact_every;
    uint64_t compact_bytes;
    /* Durable state machines with a fetcher (nk_store_set_fetcher): a
     * leader stops waiting for a member more than this many entries behind
     * its commit index; the log is compacted past it and it catches up by
     * an engine snapshot. 0 = always wait (the log grows while a member is
     * down). */
    uint64_t snapshot_lag;
    /* Bound of each raft node's in-memory log tail (stable and applied
     * entries beyond it are read back from the raft log); 0 = raft default
     * (1024 entries, 1 MiB). */
    uint64_t raft_mem_entries;
    uint64_t raft_mem_bytes;
    uint64_t request_ttl_ns;     /* pending proposals and reads expire; default 3 s */
    uint64_t conn_pending_limit; /* bytes queued per outgoing connection */
    nk_raftlog_options log;
    /* TEST ONLY: raft's deliberately broken commit rule (raft.h). */
    bool unsafe_commit_prev_term;
    /* Salt for the election jitter stream (the simulator passes the boot
     * time so each incarnation jitters differently). */
    uint64_t jitter_salt;
} nk_store_options;

void nk_store_options_default(nk_store_options *o);

/* ---------------------------------------------------------- lifecycle --- */

/*
 * Open the store: load LOCALMETA, open and replay the raft log, rebuild a
 * peer for every hosted region, start listening and ticking. NK_ECORRUPT /
 * file errors with eb saying which file and what to do.
 */
int nk_store_open(nk_rt *rt, const nk_store_options *o, nk_store **out, nk_errbuf *eb);

/* Stop timers and connections and free everything; does not sync (a crash
 * and a graceful stop both end here). Pending requests get NK_ESTOPPED. */
void nk_store_close(nk_store *s);

/*
 * Create a region's initial raft state durably: LOCALMETA entry, the state
 * machine's (empty) snapshot payload when volatile, and raft log records
 * SNAPSHOT(reset) at (index, term) with desc's peers as the configuration
 * plus HARDSTATE{term, 0, index}; then host it. The seed of a migration and
 * the founders of a simulated cluster both start this way, so no replica
 * ever depends on raft's bootstrap entry. NK_EEXIST when the store hosts or
 * ever hosted the region (LOCALMETA knows it, tombstones included).
 * Synchronous: call before traffic (it syncs on the loop thread).
 */
int nk_store_seed_region(nk_store *s, const nk_region *desc, uint64_t index, uint64_t term,
                         nk_errbuf *eb);

/* ----------------------------------------------------------- requests --- */

/*
 * Completion of a request: rc NK_OK (applied; result from the state
 * machine), NK_EAGAIN (not leader, or the entry lost its place to another
 * leader's; leader_peer is a hint, 0 = unknown), NK_ETIMEDOUT, NK_ESTOPPED
 * (store closing: free only, do not call the store). Called exactly once
 * for every request that returned NK_OK.
 */
typedef void (*nk_store_done_fn)(void *arg, int rc, uint64_t result, uint64_t leader_peer);

/* Propose a command; NK_EAGAIN (not leader), NK_ENOENT (region not hosted),
 * NK_EBUSY (too many pending) are returned directly, without a callback. */
int nk_store_propose(nk_store *s, uint64_t region_id, const void *data, size_t len,
                     nk_store_done_fn done, void *arg);

/* A linearizable read (ReadIndex): done(NK_OK, applied index) runs once the
 * region's state machine has applied the read index, i.e. when a read of the
 * state machine (done inside the callback) is linearizable. Same direct
 * errors as propose. */
int nk_store_read_index(nk_store *s, uint64_t region_id, nk_store_done_fn done, void *arg);

/* Membership change of region_id on its leader (raft.h rules); peer_id lives
 * on store_id (for REMOVE and PROMOTE, store_id may be 0: looked up). */
int nk_store_conf_change(nk_store *s, uint64_t region_id, uint8_t cc_type, uint64_t peer_id,
                         uint64_t store_id);

int nk_store_transfer_leader(nk_store *s, uint64_t region_id, uint64_t peer_id);

/*
 * Services on the store's listener besides raft. A framed connection whose
 * HELLO names NK_SERVICE_ADMIN is handed to the admin service: on_open with
 * the HELLO, then every later frame, then on_close when it breaks (not when
 * the service closes it itself with nk_store_close_conn). Replies go out
 * with nk_rt_send on the same connection.
 */
typedef struct nk_store_service {
    void *ctx;
    void (*on_open)(void *ctx, uint64_t conn, const struct nk_hello *hello);
    void (*on_message)(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len);
    void (*on_close)(void *ctx, uint64_t conn);
} nk_store_service;
void nk_store_set_admin_service(nk_store *s, const nk_store_service *svc);
void nk_store_close_conn(nk_store *s, uint64_t conn);

/* Record where store_id can be dialled ("host:port"). */
int nk_store_set_address(nk_store *s, uint64_t store_id, const char *addr);
/* Where store_id serves clients (learned from its HELLO); NK_ENOENT when
 * unknown. */
int nk_store_client_address(nk_store *s, uint64_t store_id, char *buf, size_t cap);
/* The store hosting the region's current leader as this replica knows it
 * (0 when unknown or not hosted). */
uint64_t nk_store_leader_store(const nk_store *s, uint64_t region_id);

/* ---------------------------------------------- pending topology events --- */

/*
 * Reports for the coordinator that must survive a restart live in
 * LOCALMETA's pending events (localmeta.h): opaque bytes to the store (the
 * server puts nk_coord_report_encode output there). add and remove rewrite
 * LOCALMETA durably before returning (synchronous, on the loop thread:
 * meant for topology changes, not for every write); on a failed save the
 * in-memory list is left as it was. The list is read with
 * nk_store_events (valid until the next add/remove).
 */
int nk_store_event_add(nk_store *s, const void *data, size_t len, uint64_t *seq);
int nk_store_event_remove(nk_store *s, uint64_t seq);
const nk_localmeta_event *nk_store_events(const nk_store *s, size_t *n);

/* --------------------------------------------------- snapshot install --- */

/*
 * Installing a region received as an engine snapshot (the admin service's
 * ImportRegionSnapshot), install-before-publish:
 *   begin   LOCALMETA entry for desc (which lists our own peer, as a
 *           learner) in state APPLYING, durably; NK_EEXIST when the store
 *           hosts or hosted the region, unless it is a tombstone older than
 *           desc's conf_version (a re-add: the tombstone's term and vote
 *           then bound the new hard state);
 *   ...     the caller ingests the data into the engine;
 *   finish  raft log SNAPSHOT(reset) at (index, term) with conf (the
 *           leader's configuration at index, without our peer) and
 *           HARDSTATE{term, 0, index}, synced; then the failpoint
 *           "snapshot.install.before_publish"; then LOCALMETA NORMAL and the
 *           peer hosted; done(arg, rc) on the loop (not called when the
 *           store closes first). One install at a time (NK_EBUSY).
 *   abort   forget an APPLYING entry (the caller removed its data first);
 *           one that replaced a tombstone becomes that tombstone again.
 * A region found APPLYING at open is not hosted and its raft state is
 * destroyed: nk_store_applying lists them so the caller can delete their
 * range from the engine and abort them; then a retry starts clean.
 */
typedef void (*nk_store_install_fn)(void *arg, int rc);
int nk_store_install_begin(nk_store *s, const nk_region *desc, nk_errbuf *eb);
int nk_store_install_finish(nk_store *s, uint64_t region_id, const nk_raft_conf *conf,
                            uint64_t index, uint64_t term, nk_store_install_fn done, void *arg);
int nk_store_install_abort(nk_store *s, uint64_t region_id);
/*
 * Tombstone our peer of region_id that its leader no longer lists: the
 * leader stops replicating to a removed peer as soon as it appends the
 * removal, so that peer may never apply it and would stay hosted as a stale
 * non-member. The caller (the admin service, on the operator's behalf) has
 * checked the leader's membership; conf_version is the leader's, and must be
 * newer than ours. NK_ENOENT when not hosted or another peer id, NK_EINVAL
 * when conf_version is not newer. The tombstone is taken at the next pump,
 * as for a removal applied from the log.
 */
int nk_store_destroy_stale_peer(nk_store *s, uint64_t region_id, uint64_t peer_id,
                                uint64_t conf_version);
/* Descriptors of the regions in state APPLYING (up to cap); the count. */
size_t nk_store_applying(const nk_store *s, nk_region *out, size_t cap);

/* ----------------------------------------------- engine snapshots (raft) --- */

/*
 * A durable state machine cannot travel inside raft: its raft snapshot
 * payload is a descriptor (the region at the snapshot point, the sending
 * store, the index its membership reflects), and the engine data follows
 * out of band. A follower whose raft installs such a snapshot at index C
 * first writes snap/<region>-<C>.snap (the descriptor: "the engine range is
 * garbage until refilled"), then the raft log RESET at C; after that sync
 * it applies nothing, is not ticked, and asks the fetcher. The fetcher
 * pulls an export of the region taken at an applied index A >= C (the
 * admin service of the leader), checks it, replaces the range in the
 * engine durably, then calls nk_store_data_installed: the marker goes, and
 * the entries raft committed after C are applied from the log. Those
 * entries up to A are already in the data; applying them again is harmless
 * because a KV entry only puts or deletes whole values (kvsm.h): from A on
 * the state is exact, and no replica serves from this one before (it
 * never leads while pending, and a leader serves only past its commit).
 * A restart with the marker present comes back pending and fetches again.
 */
typedef void (*nk_store_fetch_fn)(void *ctx);
void nk_store_set_fetcher(nk_store *s, nk_store_fetch_fn fn, void *ctx);

typedef struct nk_store_fetch {
    uint64_t region_id;
    uint64_t index, term; /* the raft snapshot point: the data must be at or after it */
    uint64_t from_store;  /* the leader that sent it, or the leader known now */
    nk_region desc;       /* range to replace */
} nk_store_fetch;
/* Regions whose engine data is pending, ascending, up to cap; the count. */
size_t nk_store_pending_fetches(const nk_store *s, nk_store_fetch *out, size_t cap);
/* The fetcher replaced the range with data at index (>= the snapshot
 * point) durably. NK_ENOENT when not pending, NK_EINVAL when index is below
 * the snapshot point. */
int nk_store_data_installed(nk_store *s, uint64_t region_id, uint64_t index);
/* Dial address of store_id (address book, then the resolver). */
int nk_store_address(nk_store *s, uint64_t store_id, char *addr, size_t cap);

/* ------------------------------------------------------------- status --- */

/* Ids of the hosted regions (not tombstoned), ascending, up to cap of them;
 * returns how many there are in all. */
size_t nk_store_region_ids(const nk_store *s, uint64_t *ids, size_t cap);

uint64_t nk_store_id(const nk_store *s);
/* The region's raft (NULL when not hosted or failed). */
const nk_raft *nk_store_raft(const nk_store *s, uint64_t region_id);
/* Applied index of the region's state machine (0 when not hosted). */
uint64_t nk_store_applied(const nk_store *s, uint64_t region_id);
/* The region's descriptor as this store knows it (NULL when not hosted). */
const nk_region *nk_store_region(const nk_store *s, uint64_t region_id);
/* A raft log sync is in flight: on the real runtime, close only once this
 * is false (the sync's worker thread still uses the log). */
bool nk_store_busy(const nk_store *s);
/* Stop ticking and taking new work, so that busy() soon becomes false. */
void nk_store_quiesce(nk_store *s);

/* What LOCALMETA says of a region: NK_OK with its descriptor and state
 * (enum nk_region_state), or NK_ENOENT. */
int nk_store_region_meta(const nk_store *s, uint64_t region_id, nk_region *desc, uint8_t *state);
/* Number of hosted regions. */
size_t nk_store_hosted_count(const nk_store *s);

/*
 * Keep region_id's raft log above `index` for hold_ns of store time (the
 * admin service's snapshot export: the replica that installs it joins the
 * log at index + 1 only after the import, so the leader must not compact
 * past it meanwhile). A later hold replaces an earlier one. NK_ENOENT when
 * not hosted.
 */
int nk_store_hold_log(nk_store *s, uint64_t region_id, uint64_t index, uint64_t hold_ns);

typedef struct nk_store_stats {
    uint64_t proposals;           /* commands accepted by a leader peer */
    uint64_t leader_changes;      /* times a peer here became leader */
    uint64_t entries_applied;     /* committed entries applied, every region */
    uint64_t snapshots_sent;      /* raft snapshot messages sent */
    uint64_t snapshots_installed; /* raft snapshots installed */
    uint64_t raft_log_syncs;      /* store-wide raft log batch syncs */
    uint64_t raft_log_bytes;      /* bytes in the raft log's segments */
} nk_store_stats;
void nk_store_stats_get(const nk_store *s, nk_store_stats *st);

/* The store failed (an unrecoverable local error: disk, invariant). */
bool nk_store_failed(const nk_store *s);

/* Fail-stop the store for a local error its owner found (`what` failed with
 * rc): it stops serving and stepping raft, so the other replicas elect a
 * leader; a restart recovers from LOCALMETA and the raft log. */
void nk_store_fail(nk_store *s, const char *what, int rc);

#endif /* NK_STORE_STORE_H */
