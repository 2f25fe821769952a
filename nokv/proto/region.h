/*
 * region.h - the region descriptor: the unit of replication and routing.
 *
 * A region is the key range [start, end) (an empty end means "to the end of
 * the key space"; the seed region of a migration is ["", "") ) replicated by
 * one raft group whose members are peers, each hosted by one store. Its epoch
 * says which descriptor is newer:
 *   - conf_version grows by one with every applied membership change;
 *   - version grows with every split or merge (the range changed).
 * A request carries the epoch it was routed with; a store refuses one whose
 * epoch differs from the region's current one (EPOCH_MISMATCH), so a stale
 * route never reads or writes the wrong range.
 *
 * Descriptors are plain values (fixed arrays, no pointers): copy them with =.
 * The same struct is the store's local truth (localmeta), what the
 * coordinator routes by, and what admin replies carry. The codec is an
 * envelope of nokv/proto/wire.h (magic "RG", version 1).
 */
#ifndef NK_PROTO_REGION_H
#define NK_PROTO_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/raft/raft.h"
#include "nokv/proto/wire.h"

/* Largest region boundary key. Split keys are chosen at or under it. */
#define NK_REGION_KEY_MAX 1024u
#define NK_REGION_MAX_PEERS NK_RAFT_MAX_MEMBERS

typedef enum nk_region_state {
    NK_REGION_NORMAL = 1,    /* hosted and serving */
    NK_REGION_APPLYING = 2,  /* a snapshot install is in progress */
    NK_REGION_TOMBSTONE = 3, /* the local peer was removed; never hosted again */
} nk_region_state;

typedef struct nk_region_epoch {
    uint64_t version;
    uint64_t conf_version;
} nk_region_epoch;

typedef struct nk_region_peer {
    uint64_t store_id;
    uint64_t peer_id; /* the raft node id, unique in the cluster */
    uint8_t role;     /* NK_RAFT_VOTER or NK_RAFT_LEARNER */
} nk_region_peer;

typedef struct nk_region {
    uint64_t id;
    uint32_t start_len, end_len;
    uint8_t start[NK_REGION_KEY_MAX];
    uint8_t end[NK_REGION_KEY_MAX];
    nk_region_epoch epoch;
    uint32_t n_peers;
    nk_region_peer peers[NK_REGION_MAX_PEERS]; /* sorted by peer_id */
} nk_region;

/* A full-range region with the given id and epoch {1,1} and no peers. */
void nk_region_init_full(nk_region *r, uint64_t id);

/* Set the range; NK_ETOOBIG when a boundary exceeds NK_REGION_KEY_MAX. */
int nk_region_set_range(nk_region *r, const void *start, size_t slen, const void *end, size_t elen);

/* Key k is inside [start, end). */
bool nk_region_contains(const nk_region *r, const void *key, size_t klen);

/* The peer with this id / hosted on this store, or NULL. */
const nk_region_peer *nk_region_peer_by_id(const nk_region *r, uint64_t peer_id);
const nk_region_peer *nk_region_peer_on_store(const nk_region *r, uint64_t store_id);

/* Add (or change the role of) a peer, keeping peers sorted by peer_id.
 * NK_ERANGE when full, NK_EEXIST when the store already hosts another peer of
 * this region. */
int nk_region_peer_set(nk_region *r, const nk_region_peer *p);
/* Remove by peer id; NK_ENOENT when absent. */
int nk_region_peer_remove(nk_region *r, uint64_t peer_id);

/* The raft configuration the peer list describes. */
void nk_region_conf(const nk_region *r, nk_raft_conf *conf);

/* Structural check: id != 0, start < end (unless end is empty), peers sorted
 * and unique by id and by store, roles valid. NK_OK or NK_EINVAL (eb says
 * what is wrong). */
int nk_region_validate(const nk_region *r, nk_errbuf *eb);

/* Codec: the body fields (for embedding in bigger messages) and a whole
 * standalone envelope. Decoders validate (nk_region_validate) what they read;
 * encoders refuse (NK_EINVAL) a descriptor that does not validate. */
int nk_region_put(nk_buf *b, const nk_region *r);
int nk_region_get(nk_wire_rd *rd, nk_region *r);
int nk_region_encode(const nk_region *r, nk_buf *out);
int nk_region_decode(const uint8_t *buf, size_t len, nk_region *r);

#endif /* NK_PROTO_REGION_H */
