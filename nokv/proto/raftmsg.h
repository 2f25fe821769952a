/*
 * raftmsg.h - one region's raft message between stores (NK_KIND_RAFT_MSG).
 *
 * Raft messages address peers (raft node ids); stores route them. The
 * envelope says which region the message belongs to, which stores send and
 * receive it, and the sender's view of the region epoch, so a receiver can
 * refuse traffic for a region it tombstoned at a newer epoch and create a
 * replica only for a membership it has not yet seen.
 *
 * Envelope: nokv/proto/wire.h, magic "RM", version 1:
 *   region_id uvar, from_store uvar, to_store uvar,
 *   epoch.version uvar, epoch.conf_version uvar,
 *   msg bytes (nk_raft_msg_encode, itself checksummed).
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
} nk_raftmsg_hdr;

/* Encode header + message into out (cleared first). */
int nk_raftmsg_encode(const nk_raftmsg_hdr *h, const nk_raft_msg *m, nk_buf *out);
/* Decode into *h and a zeroed *m (free with nk_raft_msg_clear). NK_EPROTO /
 * NK_ECORRUPT on malformed input; *m is left cleared then. */
int nk_raftmsg_decode(const uint8_t *buf, size_t len, nk_raftmsg_hdr *h, nk_raft_msg *m);

#endif /* NK_PROTO_RAFTMSG_H */
