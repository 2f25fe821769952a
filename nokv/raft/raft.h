/*
 * raft.h - the NoKV-C consensus state machine (pure: no I/O, no clock, no OS).
 *
 * nk_raft is a deterministic state machine in the style of etcd's RawNode and
 * cowsql/raft's step API. Inputs are method calls: nk_raft_tick() (time, in
 * host-defined ticks), nk_raft_step() (a message from a peer), nk_raft_propose*,
 * nk_raft_transfer_leader(), nk_raft_read_index(), nk_raft_compact(). Outputs
 * are collected in an nk_raft_ready that the host drains and acknowledges with
 * nk_raft_advance(). Randomness (election jitter) comes only from the nk_rand
 * stream in the config, so one seed gives one behaviour.
 *
 * Features: leader election with randomized timeouts, PreVote, CheckQuorum
 * (leader steps down without a recent quorum; followers that hear a leader
 * ignore disruptive votes), log replication with batching and pipelining
 * (bounded in-flight messages and bytes per follower), fast backtracking with
 * (index, term) hints, commit only of current-term entries (Raft thesis 3.6.2),
 * snapshots (host-produced payload), learners and single-server membership
 * changes, leader transfer, ReadIndex linearizable reads, and (with a host
 * log storage) a bounded in-memory log tail with older entries read back.
 *
 * ------------------------------------------------------------------------
 * THE OUTPUT / ADVANCE CONTRACT
 * ------------------------------------------------------------------------
 * Loop:   while (nk_raft_has_ready(r)) {
 *             nk_raft_ready rd;
 *             nk_raft_ready_get(r, &rd);
 *             1. if rd.has_snapshot: durably store rd.snapshot (meta and
 *                payload) and install the payload into the state machine.
 *                This REPLACES the whole durable log: afterwards the log is
 *                empty and its next index is rd.snapshot.meta.index + 1.
 *                Installing must be idempotent (a crash may repeat it).
 *             2. durably append rd.entries: entry k replaces any durable entry
 *                with index >= rd.entries[0].index (truncate the tail first).
 *             3. if rd.has_hard_state: durably store rd.hs.
 *                Steps 1-3 must be durable (synced) before step 4.
 *             4. send rd.msgs (any order, any subset may be lost). Every
 *                message may depend on state of steps 1-3 (a vote, an append
 *                acknowledgement), which is why they come after the sync.
 *             5. apply rd.committed in order (after rd.snapshot, if any).
 *             6. serve rd.reads: a read with index i is linearizable once the
 *                state machine has applied index i.
 *             7. nk_raft_advance(r, &rd): raft marks the entries stable, the
 *                committed entries applied, and frees everything in rd.
 *                With a storage (nk_raft_storage) raft may now drop stable
 *                and applied entries from memory: from here on the host's
 *                storage must serve them until they are compacted away.
 *         }
 * Only one Ready may be outstanding: nk_raft_ready_get() returns NK_EBUSY
 * until nk_raft_advance(). Between the two the host MAY keep calling tick,
 * step and propose (e.g. while an asynchronous sync runs); their effects go
 * into the next Ready. The leader counts itself toward a commit quorum only
 * for entries acknowledged stable by nk_raft_advance().
 *
 * Ownership: everything inside an nk_raft_ready is owned by the ready (deep
 * copies) until nk_raft_advance() frees it. The host may keep a message past
 * advance by copying the struct and zeroing the slot in rd.msgs (it then
 * frees it with nk_raft_msg_clear()). Inputs (nk_raft_step's message,
 * nk_raft_restore's entries, proposal data) are only read: raft copies what
 * it keeps.
 *
 * Restart: after a crash the host rebuilds a node with nk_raft_new() and
 * nk_raft_restore() from the durable hard state, snapshot meta and entries,
 * plus the index its state machine has durably applied (>= snapshot index).
 *
 * ------------------------------------------------------------------------
 * MEMBERSHIP SCHEME: single-server changes, configuration-in-log
 * ------------------------------------------------------------------------
 * Raft thesis chapter 4.1-4.3. A configuration change entry carries the FULL
 * new configuration (voters and learners) plus the change that produced it.
 * Every node uses the latest configuration present in its log, committed or
 * not, from the moment it is appended (and reverts when a conflicting tail is
 * truncated). Changes add or remove one voter at a time, so any majority of
 * the old and of the new configuration overlap. A leader accepts a change
 * only when (a) the previous configuration entry is committed, (b) it has
 * committed an entry of its own term (Ongaro's fix for the single-server
 * change bug, raft-dev 2015), (c) no leader transfer is in progress, and
 * (d) the new configuration keeps a quorum: it has at least one voter and
 * the voters of the new configuration the leader heard from within the last
 * election timeout (itself included) form a majority of it. (d) is why a
 * new node should join as a learner, catch up, then be promoted. A leader
 * that removes itself keeps leading (without counting itself) until the
 * change commits, then steps down. Learners replicate but never vote, never
 * count toward commit, and never campaign.
 *
 * Snapshots: nk_raft_compact(index) tells raft the host holds a durable
 * snapshot of its state machine at `index` (<= applied); raft drops the log up
 * to it. A follower whose next entry is gone is sent an NK_RAFT_MSG_SNAPSHOT;
 * the leader fills its payload by calling cfg.snapshot_produce (which may
 * return a handle, e.g. an SST file list the transport streams). The follower
 * hands it to the host in rd.snapshot. A snapshot at or below the follower's
 * commit index is ignored, so delivery twice is harmless.
 *
 * Reads: nk_raft_read_index(ctx) (ReadIndex, thesis 6.4). Lease reads are not
 * offered: they would need a bound on clock drift this layer cannot check.
 * Read requests still pending when a leader steps down are dropped; the host
 * retries on a timeout.
 *
 * All functions return NK_OK or a negative NK_E* code (nokv/util/err.h).
 * Node ids are non-zero uint64; 0 means "none".
 */
#ifndef NK_RAFT_RAFT_H
#define NK_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/util/err.h"
#include "nokv/util/rand.h"

/* Maximum number of members (voters + learners) of one group. */
#define NK_RAFT_MAX_MEMBERS 16

typedef struct nk_raft nk_raft;

enum nk_raft_role {
    NK_RAFT_FOLLOWER = 0,
    NK_RAFT_PRE_CANDIDATE = 1,
    NK_RAFT_CANDIDATE = 2,
    NK_RAFT_LEADER = 3,
};

/* ---------------------------------------------------------- membership --- */

enum nk_raft_member_role {
    NK_RAFT_VOTER = 1,
    NK_RAFT_LEARNER = 2,
};

typedef struct nk_raft_member {
    uint64_t id;
    uint8_t role; /* enum nk_raft_member_role */
} nk_raft_member;

/* A configuration: members sorted by id, no duplicates. */
typedef struct nk_raft_conf {
    uint32_t n;
    nk_raft_member m[NK_RAFT_MAX_MEMBERS];
} nk_raft_conf;

enum nk_raft_cc_type {
    NK_RAFT_CC_NONE = 0,        /* initial configuration (bootstrap) */
    NK_RAFT_CC_ADD_VOTER = 1,   /* id must not be a member */
    NK_RAFT_CC_ADD_LEARNER = 2, /* id must not be a member */
    NK_RAFT_CC_REMOVE = 3,      /* id must be a member (voter or learner) */
    NK_RAFT_CC_PROMOTE = 4,     /* id must be a learner; becomes a voter */
};

/* Role of id in conf: NK_RAFT_VOTER, NK_RAFT_LEARNER, or 0 when absent. */
int nk_raft_conf_role(const nk_raft_conf *c, uint64_t id);

/* Number of voters in conf. */
uint32_t nk_raft_conf_voters(const nk_raft_conf *c);

/* Add or change a member, keeping the array sorted. NK_ERANGE when full. */
int nk_raft_conf_set(nk_raft_conf *c, uint64_t id, uint8_t role);

/*
 * Decode the data of an NK_RAFT_ENTRY_CONF entry: the full new configuration
 * and the change that produced it (cc_type, cc_node may be NULL). NK_EPROTO or
 * NK_ECORRUPT on malformed input.
 */
int nk_raft_conf_decode(const uint8_t *p, size_t len, nk_raft_conf *conf, uint8_t *cc_type,
                        uint64_t *cc_node);
/* The same, also returning the change's host context (0 when none). */
int nk_raft_conf_decode_ctx(const uint8_t *p, size_t len, nk_raft_conf *conf, uint8_t *cc_type,
                            uint64_t *cc_node, uint64_t *cc_ctx);

/* ------------------------------------------------------ entries, state --- */

enum nk_raft_entry_type {
    NK_RAFT_ENTRY_NORMAL = 0, /* application command; empty data = leader no-op */
    NK_RAFT_ENTRY_CONF = 1,   /* configuration change, see nk_raft_conf_decode */
};

/* A log entry. `data` is malloc-owned by whoever holds the struct (NULL when len == 0). */
typedef struct nk_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum nk_raft_entry_type */
    uint8_t *data;
    size_t len;
} nk_raft_entry;

/* What must survive a crash besides the log: term, vote and commit index. */
typedef struct nk_raft_hard_state {
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
} nk_raft_hard_state;

/* Identity of a snapshot: the last index and term it covers and the
 * configuration at that index. */
typedef struct nk_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    nk_raft_conf conf;
} nk_raft_snapshot_meta;

/* A snapshot with its host-defined payload (malloc-owned, may be empty). */
typedef struct nk_raft_snapshot {
    nk_raft_snapshot_meta meta;
    uint8_t *data;
    size_t len;
} nk_raft_snapshot;

/* Free the data of an entry / snapshot and zero it. */
void nk_raft_entry_clear(nk_raft_entry *e);
void nk_raft_snapshot_clear(nk_raft_snapshot *s);

/* ------------------------------------------------------------ messages --- */

enum nk_raft_msg_type {
    NK_RAFT_MSG_NONE = 0,
    NK_RAFT_MSG_APPEND = 1,      /* index/log_term = previous entry; entries; commit */
    NK_RAFT_MSG_APPEND_RESP = 2, /* index = last matching index, or rejected prev index + hint */
    NK_RAFT_MSG_VOTE = 3,        /* index/log_term = candidate's last entry */
    NK_RAFT_MSG_VOTE_RESP = 4,   /* reject = denied */
    NK_RAFT_MSG_PREVOTE = 5,     /* term = candidate's term + 1 (not adopted) */
    NK_RAFT_MSG_PREVOTE_RESP = 6,
    NK_RAFT_MSG_HEARTBEAT = 7,      /* commit; ctx = read-index round */
    NK_RAFT_MSG_HEARTBEAT_RESP = 8, /* ctx echoed */
    NK_RAFT_MSG_SNAPSHOT = 9,       /* snapshot (meta + payload) */
    NK_RAFT_MSG_TIMEOUT_NOW = 10,   /* leader transfer: campaign now */
    NK_RAFT_MSG_READ_INDEX = 11,    /* follower -> leader, ctx = host request id */
    NK_RAFT_MSG_READ_INDEX_RESP = 12, /* index = read index; reject = failed */
    NK_RAFT_MSG_TYPE_MAX = 12,
};

/* Message flags. */
#define NK_RAFT_MSGF_TRANSFER 0x01 /* VOTE of a leader-transfer campaign: bypasses leases */

typedef struct nk_raft_msg {
    uint8_t type; /* enum nk_raft_msg_type */
    uint8_t flags;
    bool reject;
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;
    uint64_t index;
    uint64_t commit;
    uint64_t hint_index; /* APPEND_RESP reject: follower's probe hint */
    uint64_t hint_term;
    uint64_t ctx;
    nk_raft_entry *entries; /* malloc-owned array, each entry owns its data */
    size_t n_entries;
    bool has_snapshot;
    nk_raft_snapshot snapshot;
} nk_raft_msg;

/* Free everything a message owns and zero it. */
void nk_raft_msg_clear(nk_raft_msg *m);

/*
 * Wire codec. Frame: magic "NR" (u16 0x524e), version u8 (1), then the fields
 * as varints, entries, optional snapshot, and a trailing XXH64 checksum of
 * everything before it. nk_raft_msg_encode writes at most
 * nk_raft_msg_encoded_size(m) bytes and returns the count through *out_len.
 * nk_raft_msg_decode fills a zeroed *m (caller frees with nk_raft_msg_clear);
 * malformed input returns NK_EPROTO (bad structure or version) or
 * NK_ECORRUPT (checksum mismatch) and leaves *m cleared.
 */
size_t nk_raft_msg_encoded_size(const nk_raft_msg *m);
int nk_raft_msg_encode(const nk_raft_msg *m, uint8_t *buf, size_t cap, size_t *out_len);
int nk_raft_msg_decode(const uint8_t *buf, size_t len, nk_raft_msg *m);

/* Entry codec for the host's log storage (same framing rules, own magic "NE"). */
size_t nk_raft_entry_encoded_size(const nk_raft_entry *e);
int nk_raft_entry_encode(const nk_raft_entry *e, uint8_t *buf, size_t cap, size_t *out_len);
int nk_raft_entry_decode(const uint8_t *buf, size_t len, nk_raft_entry *e);

/* --------------------------------------------------------------- ready --- */

typedef struct nk_raft_read_state {
    uint64_t ctx;   /* the host's request id given to nk_raft_read_index */
    uint64_t index; /* serve the read once applied >= index */
} nk_raft_read_state;

typedef struct nk_raft_ready {
    bool has_hard_state;
    nk_raft_hard_state hs;
    bool has_snapshot;
    nk_raft_snapshot snapshot;
    nk_raft_entry *entries; /* to append durably */
    size_t n_entries;
    nk_raft_entry *committed; /* to apply in order */
    size_t n_committed;
    nk_raft_msg *msgs; /* to send after steps 1-3 are durable */
    size_t n_msgs;
    nk_raft_read_state *reads;
    size_t n_reads;
    bool must_sync; /* true when entries, snapshot, term or vote changed */
} nk_raft_ready;

/* -------------------------------------------------------------- config --- */

/*
 * Produce the payload of the snapshot described by meta (the latest one the
 * host announced with nk_raft_compact) for follower `to`. On NK_OK, *data is
 * a malloc'd buffer (or NULL with *len 0) that raft takes over. NK_EAGAIN
 * means "not ready yet" (for example an export job still runs): raft retries
 * at the next heartbeat.
 */
typedef int (*nk_raft_snapshot_produce_fn)(void *ctx, uint64_t to,
                                           const nk_raft_snapshot_meta *meta, uint8_t **data,
                                           size_t *len);

/*
 * Host log storage (optional). Without it (term and entries NULL) raft keeps
 * every uncompacted entry in memory, as before. With it raft keeps only a
 * bounded tail in memory (cfg.max_mem_entries / max_mem_bytes) and reads
 * older entries back through these callbacks: when the leader sends to a
 * lagging follower (one message's worth, max_batch_bytes), when it needs a
 * term below the tail (log matching, conflict hints), and when committed
 * entries below the tail must be handed out for apply (after a restart).
 *
 * The contract: raft only asks for indices in (snapshot index, stable],
 * i.e. entries the host durably stored from a Ready and acknowledged with
 * nk_raft_advance (or passed to nk_raft_restore*), and never compacted away
 * by nk_raft_compact or a snapshot since. For those the host must answer:
 *   term(ctx, index, &term): the term of that entry; the snapshot index
 *     itself is never asked.
 *   entries(ctx, lo, hi, max_bytes, &out, &n): entries [lo, hi) (lo < hi) in
 *     index order, as a malloc'd array of entries that own their data (raft
 *     takes both over). Their data bytes sum to at most max_bytes, except
 *     that the first entry is always returned (max_bytes 0 = no limit); a
 *     shorter non-empty prefix is allowed.
 * Any error (NK_ECORRUPT for a record failing its checksum, an I/O error,
 * even NK_ENOENT: the host lost what it promised) is final for this node:
 * raft records the first one, decides nothing from the missing data, and
 * returns it from every later nk_raft_step / nk_raft_propose* /
 * nk_raft_ready_get (nk_raft_has_ready turns true so the host sees it);
 * nk_raft_storage_error() reads it. The host stops the replica.
 * The callbacks run synchronously inside raft calls (reads only: they must
 * not call back into this nk_raft).
 */
typedef struct nk_raft_storage {
    int (*term)(void *ctx, uint64_t index, uint64_t *term);
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes, nk_raft_entry **out,
                   size_t *n);
    void *ctx;
} nk_raft_storage;

typedef struct nk_raft_config {
    uint64_t id;             /* this node, non-zero */
    uint32_t election_ticks; /* base election timeout; actual is random in [e, 2e) */
    uint32_t heartbeat_ticks; /* < election_ticks */
    uint32_t max_inflight_msgs;  /* per follower, >= 1 (pipelining window) */
    uint64_t max_inflight_bytes; /* per follower; 0 = unlimited */
    uint64_t max_batch_bytes;    /* entry bytes per append message (>= one entry) */
    uint64_t max_uncommitted_bytes; /* leader refuses proposals beyond; 0 = unlimited */
    bool prevote;
    bool check_quorum;
    nk_rand rand; /* election jitter stream, e.g. nk_rand_derive(seed, "raft", id) */
    nk_raft_snapshot_produce_fn snapshot_produce; /* required to send snapshots */
    void *snapshot_ctx;
    /* Log storage and the bound of the in-memory tail (see nk_raft_storage).
     * Only entries the host made durable (stable) and that are applied are
     * dropped from memory; unstable and unapplied ones always stay, so the
     * bound holds while the host keeps up with its Readys. 0 = unbounded.
     * max_mem_bytes counts entry data bytes. Defaults: 1024 entries, 1 MiB.
     * Without storage.entries nothing is dropped. */
    nk_raft_storage storage;
    uint64_t max_mem_entries;
    uint64_t max_mem_bytes;
    /*
     * TEST ONLY. Deliberately broken commit rule: the leader commits an index
     * as soon as a majority stores it, even when its term is older than the
     * current term (the unsafe rule of Raft thesis figure 3.7). Exists so the
     * chaos tests can prove they catch a safety bug. Never set in production.
     */
    bool unsafe_commit_prev_term;
} nk_raft_config;

/* Fill cfg with defaults for node id (election 10, heartbeat 1, 64 msgs,
 * 1 MiB in flight, 64 KiB batches, prevote and check_quorum on, no storage,
 * in-memory tail bound 1024 entries / 1 MiB once a storage is set). */
void nk_raft_config_default(nk_raft_config *cfg, uint64_t id, uint64_t seed);

/* ----------------------------------------------------------- lifecycle --- */

/* Create an empty node (no log, empty configuration). NK_EINVAL on bad config. */
int nk_raft_new(const nk_raft_config *cfg, nk_raft **out);
void nk_raft_free(nk_raft *r);

/*
 * Start a brand-new group: the node must be empty. Appends entry 1 (term 1,
 * NK_RAFT_ENTRY_CONF with `conf`) and sets term 1; both come out in the next
 * Ready. Every founding member must bootstrap with the same conf. Nodes that
 * join later stay empty and learn everything from the leader.
 */
int nk_raft_bootstrap(nk_raft *r, const nk_raft_conf *conf);

/*
 * Rebuild a node from durable state after a restart. snap may be NULL (no
 * snapshot). ents must be contiguous, starting at snap->index + 1 (or 1).
 * applied is the index the state machine already reflects (>= snap->index,
 * <= hs->commit). Must be called on an empty node.
 */
int nk_raft_restore(nk_raft *r, const nk_raft_hard_state *hs, const nk_raft_snapshot_meta *snap,
                    const nk_raft_entry *ents, size_t n, uint64_t applied);

/*
 * Restart with a storage (cfg.storage set): like nk_raft_restore, but the
 * entries (snap->index, last_index] are not passed in: raft reads them back
 * through the storage in max_batch_bytes chunks (to find configuration
 * entries) and keeps only the last max_mem_entries in memory. Storage errors
 * are returned (and recorded as in nk_raft_storage).
 */
int nk_raft_restore_stored(nk_raft *r, const nk_raft_hard_state *hs,
                           const nk_raft_snapshot_meta *snap, uint64_t last_index,
                           uint64_t applied);

/* The first storage error this node met (NK_OK when none): see nk_raft_storage. */
int nk_raft_storage_error(const nk_raft *r);

/* ------------------------------------------------------------- driving --- */

/* Advance logical time by one tick. */
void nk_raft_tick(nk_raft *r);

/* Feed a message from a peer (m->to must be this node). NK_EINVAL if not. */
int nk_raft_step(nk_raft *r, const nk_raft_msg *m);

/* Start an election now (as if the election timer fired). */
int nk_raft_campaign(nk_raft *r);

/*
 * Propose a command. Leader only: NK_EAGAIN when not leader (see
 * nk_raft_status().lead for a hint), NK_EBUSY during a leader transfer or when
 * uncommitted bytes exceed the limit. On NK_OK, index and term (either may be NULL) say
 * where the entry sits: it is committed if that index commits with that term.
 */
int nk_raft_propose(nk_raft *r, const void *data, size_t len, uint64_t *index, uint64_t *term);

/*
 * Propose a membership change (scheme above). NK_EAGAIN: not leader, previous
 * change not committed, or no entry of this term committed yet; NK_EBUSY:
 * transfer in progress; NK_EEXIST / NK_ENOENT / NK_EINVAL: the change does not
 * fit the configuration; NK_ERANGE: too many members; NK_EAGAIN also when the
 * new configuration would have no live quorum.
 */
int nk_raft_propose_conf_change(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t *index);
/* The same with a host context carried in the entry (the raftstore puts the
 * id of the store that hosts `node` there, so every replica learns where a
 * new peer lives from the log itself). Opaque to raft. */
int nk_raft_propose_conf_change_ctx(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t ctx,
                                    uint64_t *index);

/*
 * Hand leadership to voter `target` (thesis 3.10): the leader stops accepting
 * proposals, catches the target up, then sends it TIMEOUT_NOW so it campaigns
 * at once. Abandoned after one election timeout. NK_EAGAIN when not leader,
 * NK_EINVAL when target is not a voter (target == self is a no-op).
 */
int nk_raft_transfer_leader(nk_raft *r, uint64_t target);

/*
 * Request a linearizable read (ReadIndex). When the leader has confirmed with
 * a quorum that it still leads, a read state (ctx, index) appears in a Ready
 * of this node. On a follower the request is forwarded to the leader.
 * NK_EAGAIN when there is no known leader or the leader has not committed an
 * entry of its term yet (retry shortly).
 */
int nk_raft_read_index(nk_raft *r, uint64_t ctx);

/*
 * The host durably holds a snapshot of its state machine at `index`
 * (<= applied): raft drops log entries up to it. *meta (may be NULL) receives
 * the snapshot identity the host must store with it. NK_ERANGE if index is
 * beyond applied; compacting at or below the current start is a no-op.
 */
int nk_raft_compact(nk_raft *r, uint64_t index, nk_raft_snapshot_meta *meta);

/* Tell the leader a snapshot send to `to` failed (ok=false) or finished. */
void nk_raft_report_snapshot(nk_raft *r, uint64_t to, bool ok);

/* --------------------------------------------------------- ready/advance -- */

bool nk_raft_has_ready(nk_raft *r);

/* Take the pending output (see the contract above). NK_EBUSY if a previous
 * Ready has not been advanced. An empty ready is valid. */
int nk_raft_ready_get(nk_raft *r, nk_raft_ready *rd);

/* Acknowledge that the host did everything rd asked; frees rd. */
void nk_raft_advance(nk_raft *r, nk_raft_ready *rd);

/* Free a ready without acknowledging it (the host crashed or gives up). */
void nk_raft_ready_clear(nk_raft_ready *rd);

/* -------------------------------------------------------------- status --- */

typedef struct nk_raft_status {
    uint64_t id;
    int role; /* enum nk_raft_role */
    uint64_t term;
    uint64_t vote;
    uint64_t lead;
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index; /* first entry of the log (snapshot index + 1) */
    uint64_t last_index;
    uint64_t stable_index; /* last index acknowledged durable */
    uint64_t transferee;   /* leader transfer target, 0 if none */
    uint64_t conf_index;   /* index of the entry that set conf (0 = bootstrap/snapshot) */
    nk_raft_conf conf;
    /* Memory held by the log: the in-memory tail [mem_first_index, last_index]
     * (entries below it are read back from the storage), its entry count and
     * data bytes, and how many entries were read back so far. */
    uint64_t mem_first_index;
    uint64_t mem_entries;
    uint64_t mem_bytes;
    uint64_t readbacks;
} nk_raft_status;

void nk_raft_status_get(const nk_raft *r, nk_raft_status *st);

/* Term of the entry at index (the snapshot index included). NK_ENOENT when
 * the index is compacted away or beyond the last index; below the in-memory
 * tail it asks the storage (its error is returned, not recorded). */
int nk_raft_term_at(const nk_raft *r, uint64_t index, uint64_t *term);

/* Leader's view of a follower: NK_ENOENT if not leader or unknown peer. */
enum nk_raft_progress_state {
    NK_RAFT_PR_PROBE = 0,
    NK_RAFT_PR_REPLICATE = 1,
    NK_RAFT_PR_SNAPSHOT = 2,
};
int nk_raft_progress_get(const nk_raft *r, uint64_t id, uint64_t *match, uint64_t *next,
                         int *state);

const char *nk_raft_role_name(int role);
const char *nk_raft_msg_type_name(int type);

#endif /* NK_RAFT_RAFT_H */
