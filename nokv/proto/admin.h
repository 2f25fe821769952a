/*
 * admin.h - the admin service protocol (operator / migrate CLI -> store).
 *
 * A connection opens with a HELLO naming NK_SERVICE_ADMIN; after it the
 * caller sends NK_KIND_ADMIN_REQ frames and the store answers each with one
 * NK_KIND_ADMIN_RESP frame carrying the same request id. Requests on one
 * connection are answered in order; a caller that wants parallelism opens
 * more connections.
 *
 * Envelopes (nokv/proto/wire.h): request magic "AQ", response magic "AP",
 * version 1. Body of a request:
 *   id uvar, op u8, region uvar, store uvar, peer uvar, force u8,
 *   epoch.version uvar, epoch.conf_version uvar (0/0 = do not check),
 *   then per op:
 *     ADD_PEER, SET_ADDRESS  addr str (the new store's raft address, so the
 *                        leader can dial it before it ever dialled us)
 *     SNAP_READ          session uvar, file uvar, offset uvar, max uvar
 *     SNAP_RELEASE       session uvar
 *     SNAP_IMPORT_BEGIN  manifest (below)
 *     SNAP_IMPORT_CHUNK  session uvar, file uvar, offset uvar, data bytes,
 *                        xxh64 u64 (the sender's XXH64 of the whole file,
 *                        meaningful on the chunk that completes it)
 *     SNAP_IMPORT_FINISH session uvar
 * Body of a response:
 *   id uvar, op u8, status u8, msg str, leader_peer uvar, leader_store uvar,
 *   then per op:
 *     REGION_STATUS  known u8, hosted u8, local_peer uvar, applied_index uvar,
 *                    applied_term uvar, raft_term uvar, commit uvar, role u8,
 *                    [region descriptor when known]
 *     STORE_STATUS   store uvar, regions uvar, failed u8
 *     SNAP_EXPORT    session uvar, manifest
 *     SNAP_READ      data bytes, eof u8, xxh64 u64 (with eof: XXH64 of the
 *                    whole file, hashed by the store as it read the bytes
 *                    for sending; reads of a file must then come in order)
 *     SNAP_IMPORT_*  session uvar, bytes_received uvar
 * Manifest: region descriptor, index uvar, term uvar, n uvar, n x (name str,
 * size uvar, xxh64 u64). An export's manifest carries xxh64 0: the store
 * hashes each file while it sends it (SNAP_READ eof), never in a pass of
 * its own.
 *
 * Bounds (a decoder refuses anything larger, before allocating): at most
 * NK_ADMIN_SNAP_MAX_FILES files, NK_ADMIN_CHUNK_MAX bytes per chunk, file
 * names of at most NK_ADMIN_NAME_MAX-1 bytes drawn from [A-Za-z0-9._-]
 * without a leading dot (so no name can leave the staging directory), and
 * messages of at most 256 bytes. Decoders return NK_EPROTO for any structural
 * problem (unknown op, bad name, oversized field), NK_ECORRUPT for a
 * checksum mismatch; the store closes the connection on either.
 *
 * Snapshot stream: the migrate client pulls (SNAP_EXPORT, then SNAP_READ in
 * order) from the leader and pushes (SNAP_IMPORT_BEGIN, CHUNK in order,
 * FINISH) to the target with up to NK_ADMIN_SNAP_WINDOW requests in flight
 * per connection (answers come in order). The window is the flow control
 * both ways: a chunk is read only while fewer than the window are read and
 * not yet acknowledged by the target, so a slow target stops the reads
 * and a slow leader stops the pushes, and no side buffers more than
 * window x chunk bytes.
 */
#ifndef NK_PROTO_ADMIN_H
#define NK_PROTO_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/region.h"

#define NK_ADMIN_VERSION 1u
#define NK_ADMIN_MSG_MAX 256u
#define NK_ADMIN_NAME_MAX 64u
#define NK_ADMIN_SNAP_MAX_FILES 512u
#define NK_ADMIN_CHUNK_MAX (8u * 1024u * 1024u) /* decoders refuse larger chunks */
/* What the migrate client asks for: 1 MiB chunks, 3 in flight. Larger
 * chunks measured slower, not faster: each frame then needs a connection
 * buffer of 8 MiB or more, which the allocator returns to the kernel when
 * the connection idles between chunks, so every chunk paid thousands of
 * page faults (costly on a virtualised host); at 1 MiB and 3 in flight
 * every buffer stays below that and is reused. */
#define NK_ADMIN_CHUNK_DEFAULT (1024u * 1024u)
#define NK_ADMIN_SNAP_WINDOW 3u /* chunks in flight */

enum nk_admin_op {
    NK_ADMIN_ADD_PEER = 1,        /* add {store, peer} to region as a learner */
    NK_ADMIN_PROMOTE_PEER = 2,    /* learner peer -> voter */
    NK_ADMIN_REMOVE_PEER = 3,     /* remove peer (force: even when quorum is at risk) */
    NK_ADMIN_TRANSFER_LEADER = 4, /* hand leadership of region to peer */
    NK_ADMIN_REGION_STATUS = 5,
    NK_ADMIN_STORE_STATUS = 6,
    NK_ADMIN_SNAP_EXPORT = 7, /* leader: export region at its applied index */
    NK_ADMIN_SNAP_READ = 8,   /* read a chunk of an exported file */
    NK_ADMIN_SNAP_RELEASE = 9,
    NK_ADMIN_SNAP_IMPORT_BEGIN = 10, /* target: start receiving a manifest's files */
    NK_ADMIN_SNAP_IMPORT_CHUNK = 11,
    NK_ADMIN_SNAP_IMPORT_FINISH = 12, /* verify, install, host */
    NK_ADMIN_SET_ADDRESS = 13,        /* store {store} is reachable at {addr} */
    NK_ADMIN_DESTROY_PEER = 14,       /* tombstone a removed peer that never learned it */
};
#define NK_ADMIN_OP_MAX 14

enum nk_admin_status {
    NK_ADMIN_OK = 0,
    NK_ADMIN_NOT_LEADER = 1, /* leader_peer / leader_store: the hint (0 = unknown) */
    NK_ADMIN_REGION_NOT_FOUND = 2,
    NK_ADMIN_EPOCH_MISMATCH = 3,
    NK_ADMIN_BUSY = 4,
    NK_ADMIN_INVALID = 5,
    NK_ADMIN_EXISTS = 6,   /* the store already hosts (or hosted) a peer of the region */
    NK_ADMIN_CORRUPT = 7,  /* a snapshot file failed its checksum */
    NK_ADMIN_INTERNAL = 8, /* a local error on the store: msg says which */
};
#define NK_ADMIN_STATUS_MAX 8

typedef struct nk_admin_file {
    char name[NK_ADMIN_NAME_MAX];
    uint64_t size;
    uint64_t xxh64; /* XXH64 seed 0 of the whole file */
} nk_admin_file;

typedef struct nk_admin_manifest {
    nk_region desc; /* the descriptor at index (the target's peer not in it) */
    uint64_t index, term;
    uint32_t n_files;
    nk_admin_file files[NK_ADMIN_SNAP_MAX_FILES];
} nk_admin_manifest;

typedef struct nk_admin_req {
    uint64_t id;
    uint8_t op;
    uint64_t region_id, store_id, peer_id;
    bool force;
    nk_region_epoch epoch;
    /* ADD_PEER: the new store's address ("" = known); SET_ADDRESS: the
     * address of store_id (a store learns addresses only from HELLOs of
     * stores that dialled it, so a new leader may not know its followers). */
    char addr[NK_HELLO_ADDR_MAX];
    uint64_t session;
    uint32_t file;
    uint64_t offset;
    uint32_t max_len;
    nk_slice data;              /* IMPORT_CHUNK: borrowed from the frame / caller */
    uint64_t xxh64;             /* IMPORT_CHUNK: the file's hash (on its last chunk) */
    nk_admin_manifest manifest; /* IMPORT_BEGIN */
} nk_admin_req;

typedef struct nk_admin_resp {
    uint64_t id;
    uint8_t op;
    uint8_t status;
    char msg[NK_ADMIN_MSG_MAX];
    uint64_t leader_peer, leader_store;
    /* REGION_STATUS */
    bool known, hosted;
    uint64_t local_peer;
    uint64_t applied_index, applied_term, raft_term, commit;
    uint8_t role; /* enum nk_raft_role of the local peer */
    nk_region desc;
    /* STORE_STATUS */
    uint64_t store_id, regions;
    bool failed;
    /* snapshots */
    uint64_t session;
    uint64_t bytes;
    bool eof;
    nk_slice data;              /* SNAP_READ: borrowed */
    uint64_t xxh64;             /* SNAP_READ with eof: the file's XXH64 as read */
    nk_admin_manifest manifest; /* SNAP_EXPORT */
} nk_admin_resp;

const char *nk_admin_op_name(uint8_t op);
const char *nk_admin_status_name(uint8_t status);

/* Is name a safe snapshot file name (see the bounds above)? */
bool nk_admin_name_ok(const char *name);

/* Encode (out cleared first). NK_EINVAL for an unknown op, a bad file name
 * or an oversized field: the encoder never produces what a decoder refuses. */
int nk_admin_req_encode(const nk_admin_req *q, nk_buf *out);
int nk_admin_resp_encode(const nk_admin_resp *p, nk_buf *out);
/* Decode; slices in q/p borrow from buf. NK_EPROTO / NK_ECORRUPT. */
int nk_admin_req_decode(const uint8_t *buf, size_t len, nk_admin_req *q);
int nk_admin_resp_decode(const uint8_t *buf, size_t len, nk_admin_resp *p);

#endif /* NK_PROTO_ADMIN_H */
