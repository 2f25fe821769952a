/*
 * store_int.h - internals shared by the files of nokv/store (not public).
 *
 *   store.c     lifecycle, listener, store-wide Ready batch, requests
 *   peer.c      one region's replica: raft, apply, membership, snapshots
 *   snapfile.c  durable snapshot payloads of volatile state machines
 */
#ifndef NK_STORE_STORE_INT_H
#define NK_STORE_STORE_INT_H

#include "nokv/store/localmeta.h"
#include "nokv/store/raftlog.h"
#include "nokv/store/store.h"
#include "nokv/store/transport.h"
#include "nokv/util/u64map.h"

#define NK_PEER_MAX_PENDING 64   /* reads */
#define NK_PEER_MAX_WRITES 65536 /* proposals in flight per region */

typedef struct nk_peer nk_peer;

typedef struct nk_pending {
    bool used;
    bool have_index; /* reads: the read index arrived */
    uint64_t index;  /* writes: where the entry sits; reads: read index */
    uint64_t term;   /* writes: the term it was proposed in */
    uint64_t ctx;    /* reads: the ReadIndex request id */
    uint64_t since;  /* node-local time it was queued */
    nk_store_done_fn done;
    void *arg;
} nk_pending;

struct nk_peer {
    nk_store *s;
    uint64_t region_id;
    uint64_t peer_id;
    nk_region desc;      /* mirror of LOCALMETA */
    uint64_t conf_index; /* raft index desc reflects (LOCALMETA conf_index) */
    nk_raft *raft;
    bool failed;
    bool removed; /* our peer was removed: tombstone after this Ready */

    bool rd_busy;
    bool rd_sync; /* the Ready in rd waits for the batch sync */
    nk_raft_ready rd;

    uint64_t applied;
    int logged_role; /* role last logged (leadership changes are logged) */
    uint64_t logged_term;
    nk_raft_hard_state hs;      /* last hard state staged */
    nk_raft_snapshot_meta snap; /* last snapshot point staged */
    uint8_t *snap_blob;         /* volatile SM: envelope at snap.index */
    size_t snap_len;
    uint64_t bytes_since_snap; /* entry bytes applied since snap.index */
    uint64_t compact_hint;     /* highest hint a leader sent (raftmsg.h) */
    uint64_t hold_index;       /* nk_store_hold_log: keep the log above it */
    uint64_t hold_until;       /* ... until this node-local time */
    uint64_t lead_since;       /* node-local time this peer became leader */
    /* Engine snapshot (durable state machine): raft installed a snapshot at
     * snap.index, but the engine data for it is still to be fetched
     * (snapfetch.h). Until then nothing is applied, the raft node is not
     * ticked (it never campaigns), and snap/<region>-<index>.snap marks the
     * engine range as garbage across restarts. */
    bool data_pending;
    uint64_t fetch_from; /* store that sent the snapshot (a hint) */

    nk_u64map writes; /* raft index -> malloc'd nk_pending of the proposal there */
    size_t n_writes;
    nk_pending reads[NK_PEER_MAX_PENDING];
    uint64_t next_ctx;
};

/* A peer id -> store id binding learned from message headers, for peers the
 * region descriptor does not list yet. */
typedef struct nk_peer_home {
    uint64_t peer_id;
    uint64_t store_id;
} nk_peer_home;

#define NK_STORE_MAX_HOMES 64
#define NK_STORE_MAX_BOOK 256

typedef struct nk_addr_entry {
    uint64_t store_id;
    char addr[128];
    char client_addr[128]; /* its RESP address, "" when unknown */
} nk_addr_entry;

struct nk_store {
    nk_rt *rt;
    nk_store_options o;
    char *workdir;
    char *raftdir;
    char *snapdir;
    nk_raftlog *log;
    nk_localmeta meta;
    nk_transport *tr;
    nk_peer **peers; /* sorted by region id */
    size_t n_peers, cap_peers;
    nk_peer_home homes[NK_STORE_MAX_HOMES];
    size_t n_homes;
    nk_addr_entry book[NK_STORE_MAX_BOOK];
    size_t n_book;
    nk_u64map conns; /* accepted connections -> service (store.c) */
    nk_store_stats stats;
    nk_store_service admin;
    uint64_t listener;
    uint64_t tick_timer;
    uint64_t kick_timer;
    bool syncing;
    struct store_sync *sync;
    bool failed;
    bool closing;
    struct store_install *install; /* nk_store_install_finish in progress */
    nk_store_fetch_fn fetch_fn;     /* engine snapshot fetcher (nk_store_set_fetcher) */
    void *fetch_ctx;
    uint64_t fetch_timer; /* zero-delay timer that calls fetch_fn */
};

/* store.c */
void nk_store_violation(nk_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
nk_peer *nk_store_peer(const nk_store *s, uint64_t region_id);
int nk_store_save_meta(nk_store *s);
uint64_t nk_store_home_of(const nk_store *s, const nk_peer *p, uint64_t peer_id);
void nk_store_kick(nk_store *s);
/* Tell the fetcher (soon, from a timer) that some region's data is pending. */
void nk_store_kick_fetcher(nk_store *s);

/* peer.c */
/* Track the proposal at `index` (q malloc'd; the peer frees it). */
int nk_peer_add_write(nk_peer *p, uint64_t index, nk_pending *q);
/* Put p->desc (with p->conf_index) into LOCALMETA in `state` and save. */
int nk_peer_persist_desc(nk_peer *p, uint8_t state);
int nk_peer_create(nk_store *s, const nk_region *desc, uint64_t peer_id,
                   const nk_raft_hard_state *start_hs, nk_peer **out);
/* Rebuild from the raft log at open (or after seeding). */
int nk_peer_recover(nk_store *s, const nk_region *desc, uint64_t peer_id, nk_peer **out,
                    nk_errbuf *eb);
void nk_peer_free(nk_peer *p, int pending_rc);
/* Stage this Ready's durable part (snapshot install, entries, hard state). */
int nk_peer_stage_ready(nk_peer *p);
/* Steps 4-7: send, apply, reads, advance, maybe compact. */
void nk_peer_finish_ready(nk_peer *p);
void nk_peer_tick(nk_peer *p);
void nk_peer_expire(nk_peer *p, uint64_t now, uint64_t ttl);
void nk_peer_observe(nk_peer *p);
/* The compact hint this peer sends (leader: min of commit and every
 * member's match; others: the hint they got), raftmsg.h. */
uint64_t nk_peer_compact_hint(const nk_peer *p);
/* The engine data of a pending snapshot is in: drop the marker, apply what
 * raft committed meanwhile from the log. */
int nk_peer_data_installed(nk_peer *p, uint64_t index);

/* snapfile.c: <snapdir>/<region>-<index>.snap, an envelope holding the
 * region descriptor and the state machine payload. */
int nk_snapfile_encode(const nk_region *desc, uint64_t index, uint64_t term, const uint8_t *sm,
                       size_t sm_len, uint8_t **out, size_t *out_len);
int nk_snapfile_decode(const uint8_t *buf, size_t len, nk_region *desc, uint64_t *index,
                       uint64_t *term, const uint8_t **sm, size_t *sm_len);
int nk_snapfile_write(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t index,
                      const uint8_t *buf, size_t len);
int nk_snapfile_read(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t index,
                     uint8_t **buf, size_t *len);
/* Remove the region's payload files with an index below min_keep (and any
 * leftover .tmp); UINT64_MAX removes all of them. */
void nk_snapfile_gc(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t min_keep);

#endif /* NK_STORE_STORE_INT_H */
