/*
 * raft_int.h - internals shared by the nk_raft implementation files.
 *
 * Not a public header: only the files in nokv/raft/ include it. Module prefixes:
 *   nk_rlog_   log.c          in-memory log (stable + unstable view)
 *   nk_rprog_  progress.c     per-follower replication progress, inflights
 *   nk_rconf_  membership.c   configuration tracking and change validation
 *   nk_r_      election.c, replication.c, readindex.c, raft.c: the protocol
 * Invariants kept by every function:
 *   - log.snap_index <= log.applied <= log.applying <= log.committed <= last
 *   - log.snap_index <= log.stable <= last index
 *   - log.snap_index <= log.mem_prev <= log.stable (memory holds every
 *     entry the host has not made durable)
 *   - prs[] is sorted by id and holds exactly the members of conf (leader)
 */
#ifndef NK_RAFT_RAFT_INT_H
#define NK_RAFT_RAFT_INT_H

#include "nokv/raft/raft.h"

/* ------------------------------------------------------------------ log --- */

/*
 * The log is (snap_index, last]. Memory holds the tail (mem_prev, last];
 * with a storage, (snap_index, mem_prev] lives only in the host's storage
 * (always within the durable prefix: mem_prev <= stable). Without a storage
 * mem_prev == snap_index.
 */
typedef struct nk_rlog {
    uint64_t snap_index; /* last index covered by the snapshot (0 = none) */
    uint64_t snap_term;
    uint64_t mem_prev;      /* index just below the in-memory tail (>= snap_index) */
    uint64_t mem_prev_term; /* its term (kept: log matching asks for it often) */
    nk_raft_entry *ents;    /* ents[head + k].index == mem_prev + 1 + k */
    size_t head;
    size_t len;
    size_t cap;
    uint64_t mem_bytes; /* data bytes of the in-memory entries */
    nk_raft_storage st; /* st.entries == NULL: no storage */
    int err;            /* first storage error (sticky, see nk_raft_storage) */
    uint64_t readbacks; /* entries read back from the storage */
    uint64_t stable;    /* last index the host acknowledged as durable */
    uint64_t committed; /* commit index */
    uint64_t applying;  /* last committed index handed out in a Ready */
    uint64_t applied;   /* last index acknowledged applied */
} nk_rlog;

void nk_rlog_init(nk_rlog *l, const nk_raft_storage *st);
void nk_rlog_free(nk_rlog *l);
bool nk_rlog_has_storage(const nk_rlog *l);
uint64_t nk_rlog_last(const nk_rlog *l);
uint64_t nk_rlog_last_term(const nk_rlog *l);
/* Term at i; NK_ENOENT if compacted (below snap_index) or beyond last. Below
 * the tail it asks the storage; a storage failure is recorded in l->err and
 * returned (never as NK_ENOENT, which keeps meaning "compacted"). */
int nk_rlog_term(nk_rlog *l, uint64_t i, uint64_t *t);
/* The same without recording a storage failure (for const status calls). */
int nk_rlog_term_peek(const nk_rlog *l, uint64_t i, uint64_t *t);
/* Term at i or 0 when unavailable. */
uint64_t nk_rlog_term0(nk_rlog *l, uint64_t i);
bool nk_rlog_match(nk_rlog *l, uint64_t i, uint64_t t);
/* The in-memory entry at i, NULL when not in memory. */
const nk_raft_entry *nk_rlog_at(const nk_rlog *l, uint64_t i);
/* Append a deep copy of e; e->index must be last + 1. */
int nk_rlog_append_copy(nk_rlog *l, const nk_raft_entry *e);
/* Append an entry taking ownership of data (freed on failure). */
int nk_rlog_append_owned(nk_rlog *l, uint64_t term, uint8_t type, uint8_t *data, size_t len);
/* Drop entries with index >= i (never at or below committed). May read the
 * term of i - 1 back from the storage: a failure is returned (and recorded). */
int nk_rlog_truncate_from(nk_rlog *l, uint64_t i);
/* Thesis 3.6.1: is (term, index) at least as up to date as our log? */
bool nk_rlog_up_to_date(const nk_rlog *l, uint64_t term, uint64_t index);
/* Largest j <= index whose term <= term (stops at the snapshot boundary, or
 * where the storage fails). */
uint64_t nk_rlog_find_conflict_by_term(nk_rlog *l, uint64_t index, uint64_t term);
/* Drop entries <= i (i must be in [snap_index, last]); storage failure
 * reading the term of i is returned. */
int nk_rlog_compact(nk_rlog *l, uint64_t i);
/* Replace the whole log by a snapshot boundary. */
void nk_rlog_reset(nk_rlog *l, uint64_t snap_index, uint64_t snap_term);
/* Deep-copy entries [lo, hi] into a new array, stopping after max_bytes
 * (always at least one entry); entries below the tail are read back. *n
 * receives the count. */
int nk_rlog_slice(nk_rlog *l, uint64_t lo, uint64_t hi, uint64_t max_bytes, nk_raft_entry **out,
                  size_t *n);
/* With a storage: drop in-memory entries from the front while the tail is
 * over max_entries / max_bytes (0 = no bound), only entries both stable and
 * applied. */
void nk_rlog_trim(nk_rlog *l, uint64_t max_entries, uint64_t max_bytes);
int nk_rentry_copy(nk_raft_entry *dst, const nk_raft_entry *src);

/* ------------------------------------------------------------- progress --- */

typedef struct nk_rinflight {
    uint64_t index; /* last entry index of the in-flight append */
    uint64_t bytes;
} nk_rinflight;

typedef struct nk_rprog {
    uint64_t id;
    bool learner;
    uint8_t state; /* enum nk_raft_progress_state */
    bool probe_sent;
    uint64_t match;
    uint64_t next;
    uint64_t pending_snapshot; /* index of the snapshot being sent */
    uint32_t snap_elapsed;     /* ticks spent in SNAPSHOT state */
    uint64_t last_active;      /* leader tick counter when last heard from */
    uint64_t read_ack;         /* highest read-index round acknowledged */
    uint32_t stalled;          /* heartbeat answers without progress (REPLICATE) */
    nk_rinflight *infl;        /* ring of max_inflight_msgs */
    uint32_t infl_cap;
    uint32_t infl_start;
    uint32_t infl_count;
    uint64_t infl_bytes;
} nk_rprog;

int nk_rprog_init(nk_rprog *p, uint64_t id, bool learner, uint32_t infl_cap);
void nk_rprog_free(nk_rprog *p);
void nk_rprog_become_probe(nk_rprog *p);
void nk_rprog_become_replicate(nk_rprog *p);
void nk_rprog_become_snapshot(nk_rprog *p, uint64_t snap_index);
/* Acknowledged up to n: true when match moved. */
bool nk_rprog_maybe_update(nk_rprog *p, uint64_t n);
/* A reject of prev index `rejected` with probe target `probe`: true if applied. */
bool nk_rprog_maybe_decr(nk_rprog *p, uint64_t rejected, uint64_t probe);
bool nk_rprog_paused(const nk_rprog *p, uint64_t max_bytes);
void nk_rprog_infl_add(nk_rprog *p, uint64_t index, uint64_t bytes);
void nk_rprog_infl_free_to(nk_rprog *p, uint64_t index);
void nk_rprog_infl_reset(nk_rprog *p);

/* ------------------------------------------------------------ read index --- */

typedef struct nk_rread {
    uint64_t ctx;
    uint64_t index;
    uint64_t round; /* heartbeat round that must be acknowledged by a quorum */
    uint64_t from;  /* 0 = local request, else the follower that forwarded it */
} nk_rread;

/* ------------------------------------------------------------------ raft --- */

typedef struct nk_rconf_ent {
    uint64_t index;
    nk_raft_conf conf;
} nk_rconf_ent;

struct nk_raft {
    nk_raft_config cfg;
    nk_rand rand;
    uint64_t id;
    int role;
    uint64_t term;
    uint64_t vote;
    uint64_t lead;

    nk_rlog log;

    nk_raft_conf conf;      /* latest configuration in the log */
    uint64_t conf_index;    /* index of the entry that set it, 0 = base_conf */
    nk_raft_conf base_conf; /* configuration at log.snap_index */
    /* Every configuration entry in (snap_index, last], oldest first, so
     * membership never needs entries the in-memory tail dropped. */
    nk_rconf_ent *chist;
    size_t n_chist;
    size_t cap_chist;

    nk_rprog prs[NK_RAFT_MAX_MEMBERS]; /* leader only; sorted by id */
    uint32_t n_prs;

    /* election */
    uint64_t votes_from[NK_RAFT_MAX_MEMBERS];
    bool votes_granted[NK_RAFT_MAX_MEMBERS];
    uint32_t n_votes;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t rand_timeout;
    uint64_t ticks; /* monotonic tick counter (activity bookkeeping) */

    /* leader transfer */
    uint64_t transferee;
    uint32_t transfer_elapsed;

    uint64_t uncommitted_bytes;
    bool need_bcast; /* proposals arrived: send appends when output is built */

    /* read index */
    nk_rread *reads_q;
    size_t n_reads_q;
    size_t cap_reads_q;
    uint64_t read_round;

    /* pending output */
    nk_raft_msg *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    nk_raft_read_state *read_states;
    size_t n_read_states;
    size_t cap_read_states;
    bool has_pending_snapshot;
    nk_raft_snapshot pending_snapshot;
    nk_raft_hard_state prev_hs; /* last hard state handed out */
    bool ready_outstanding;
    bool removed_step_down; /* leader's own removal committed: step down */
};

/* raft.c */
nk_raft_msg *nk_r_msg_new(nk_raft *r, uint8_t type, uint64_t to);
uint32_t nk_r_quorum(const nk_raft *r);
bool nk_r_promotable(const nk_raft *r);
nk_rprog *nk_r_prog(nk_raft *r, uint64_t id);
void nk_r_reset_randomized_timeout(nk_raft *r);
void nk_r_free_progress(nk_raft *r); /* drop the leader-only state */

/* election.c */
void nk_r_become_follower(nk_raft *r, uint64_t term, uint64_t lead);
void nk_r_become_leader(nk_raft *r);
void nk_r_hup(nk_raft *r, bool transfer);
void nk_r_campaign(nk_raft *r, bool pre, bool transfer);
void nk_r_handle_vote_request(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_vote_response(nk_raft *r, const nk_raft_msg *m);
void nk_r_tick_election(nk_raft *r);
void nk_r_tick_heartbeat(nk_raft *r);

/* replication.c */
bool nk_r_send_append(nk_raft *r, nk_rprog *p, bool send_if_empty);
void nk_r_bcast_append(nk_raft *r);
void nk_r_bcast_heartbeat(nk_raft *r, uint64_t ctx);
bool nk_r_maybe_commit(nk_raft *r);
void nk_r_commit_to(nk_raft *r, uint64_t commit);
void nk_r_handle_append(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_append_response(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_heartbeat(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_heartbeat_response(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_snapshot(nk_raft *r, const nk_raft_msg *m);
void nk_r_send_timeout_now(nk_raft *r, uint64_t to);
int nk_r_append_local(nk_raft *r, uint8_t type, uint8_t *data, size_t len);

/* membership.c */
int nk_rconf_encode(const nk_raft_conf *c, uint8_t cc_type, uint64_t cc_node, uint64_t cc_ctx,
                    uint8_t **out, size_t *len);
/* Track a newly appended entry (a configuration entry becomes the latest
 * configuration). NK_ENOMEM when the history cannot grow. */
int nk_rconf_note_append(nk_raft *r, const nk_raft_entry *e);
/* The latest configuration from the history (after truncation). */
void nk_rconf_recompute(nk_raft *r);
/* Forget history entries >= index (truncated tail) and recompute. */
void nk_rconf_truncate(nk_raft *r, uint64_t index);
/* The log is compacted to index: the configuration in force there becomes
 * base_conf, older history goes. */
void nk_rconf_compact(nk_raft *r, uint64_t index);
void nk_rconf_clear_history(nk_raft *r);
int nk_rconf_sync_progress(nk_raft *r);
void nk_rconf_on_commit(nk_raft *r);
void nk_rconf_maybe_step_down(nk_raft *r);
int nk_rconf_propose(nk_raft *r, uint8_t cc_type, uint64_t node, uint64_t ctx, uint64_t *index);
bool nk_rconf_recently_active(const nk_raft *r, const nk_rprog *p);

/* readindex.c */
int nk_r_read_request(nk_raft *r, uint64_t ctx, uint64_t from);
void nk_r_read_ack(nk_raft *r, uint64_t from, uint64_t round);
void nk_r_read_reset(nk_raft *r);
void nk_r_handle_read_index(nk_raft *r, const nk_raft_msg *m);
void nk_r_handle_read_index_response(nk_raft *r, const nk_raft_msg *m);
int nk_r_push_read_state(nk_raft *r, uint64_t ctx, uint64_t index);

#endif /* NK_RAFT_RAFT_INT_H */
