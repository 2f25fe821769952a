/*
 * kinds.h - the one registry of frame kinds (nokv/proto/frame.h `kind`).
 *
 * Every framed connection between NoKV processes starts with a HELLO frame
 * that names the service the connection is for; after it, only the kinds of
 * that service are valid on it. A kind that is unknown, or belongs to another
 * service, closes that connection (never the server).
 *
 * Numbers are wire format: never reuse or renumber one; add new kinds in the
 * free ranges. Each payload is an envelope (nokv/proto/wire.h) with its own
 * magic, version and checksum, so a frame that passes the frame checksum but
 * carries the wrong message is still rejected.
 */
#ifndef NK_PROTO_KINDS_H
#define NK_PROTO_KINDS_H

/* Services a HELLO can ask for. */
enum nk_service {
    NK_SERVICE_RAFT = 1,  /* store <-> store: raft messages, snapshot chunks */
    NK_SERVICE_ADMIN = 2, /* operator / migrate CLI -> store */
    NK_SERVICE_COORD = 3, /* store or CLI -> coordinator */
};

enum nk_frame_kind {
    NK_KIND_HELLO = 1, /* first frame of every framed connection */

    /* raft service: 10..29 */
    NK_KIND_RAFT_MSG = 10,   /* one region's raft message */
    NK_KIND_SNAP_CHUNK = 11, /* a bounded chunk of a snapshot file stream */
    NK_KIND_SNAP_ACK = 12,   /* receiver's flow-control / result */

    /* admin service: 30..59 (request kinds even, response = request + 1) */
    NK_KIND_ADMIN_REQ = 30,
    NK_KIND_ADMIN_RESP = 31,

    /* coordinator service: 60..89 */
    NK_KIND_COORD_REQ = 60,
    NK_KIND_COORD_RESP = 61,
};

#endif /* NK_PROTO_KINDS_H */
