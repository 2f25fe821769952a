/*
 * raftmsg.h - one region's raft message between stores (NK_KIND_RAFT_MSG).
 *
 * Raft messages address peers (raft node ids); stores route them. The
 * envelope says which region the message belongs to, which stores send and
 * receive it, and the sender's view of the region epoch, so a receiver can
 * refuse traffic for a region it tombstoned at a newer epoch and create a
 * replica only for a membership it has not yet seen.
 *
 * Envelope: nokv/proto/wire.h, magic "RM", version 2:
 *   region_id uvar, from_store uvar, to_store uvar,
 *   epoch.version uvar, epoch.conf_version uvar,
 *   compact_hint uvar (version 2 only; 0 when decoding version 1),
 *   msg bytes (nk_raft_msg_encode, itself checksummed).
 *
 * compact_hint: the sender (a leader) saw every member of the region hold
 * the log up to this committed index, so a receiver may compact its own raft
 * log up to it without stranding any member that is behind (raft entries at
 * or below a committed index that every member acknowledged are durable on
 * every member and never truncated).
 */
#ifndef NK_PROTO_RAFTMSG_H
#define NK_PROTO_RAFTMSG_H

#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/proto/region.h"
#include "nokv/raft/raft.h"

typedef struct nk_raftmsg_hdr {
    uint64_t region_id;
    uint64_t from_store;
    uint64_t to_store;
    nk_region_epoch epoch;
    uint64_t compact_hint; /* see above; 0 = none */
} nk_raftmsg_hdr;

/* Encode header + message into out (cleared first). */
int nk_raftmsg_encode(const nk_raftmsg_hdr *h, const nk_raft_msg *m, nk_buf *out);
/* Decode into *h and a zeroed *m (free with nk_raft_msg_clear). NK_EPROTO /
 * NK_ECORRUPT on malformed input; *m is left cleared then. */
int nk_raftmsg_decode(const uint8_t *buf, size_t len, nk_raftmsg_hdr *h, nk_raft_msg *m);

#endif /* NK_PROTO_RAFTMSG_H */
