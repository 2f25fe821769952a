/*
 * coord.h - coordinator requests and responses (NK_KIND_COORD_REQ / _RESP).
 *
 * A connection to the coordinator opens with a HELLO naming NK_SERVICE_COORD
 * (hello.h); after it the dialer sends requests and the coordinator answers
 * each one exactly once with a response carrying the same request id. Answers
 * may come out of request order (a reply that waits for a durable write is
 * held while later ones that need none go out), so clients match by id.
 *
 * What the coordinator knows it LEARNED from stores: StoreHeartbeat registers
 * a store and its address and keeps it alive; RegionReport hands it a region
 * descriptor and its current leader. It never invents a region. Lookups
 * (GetRegionByKey, GetRegion, GetStore, ListStores, ListRegions) answer from
 * that learned state; AllocID and Tso hand out ranges of numbers that are
 * never repeated, not even by a coordinator restarted after a power loss.
 *
 * Envelopes (nokv/proto/wire.h), version 1:
 *   request  magic "RC": id uvar, op u8, then the op's fields (below);
 *   response magic "PC": id uvar, op u8, code u8, msg str, then, only when
 *            code is NK_COORD_OK, the op's result fields.
 *
 *   op                 request fields               result fields
 *   STORE_HEARTBEAT    store_id, addr, region_count, accepted u8,
 *                      leader_count, capacity,      need_full_report u8
 *                      available (uvar each)
 *   REGION_REPORT      report (see below)           accepted u8
 *   GET_REGION_BY_KEY  key bytes                    region info
 *   GET_REGION         region_id                    region info
 *   GET_STORE          store_id                     store info
 *   LIST_STORES        -                            n, n store infos
 *   LIST_REGIONS       start_key bytes, limit       n, n region infos, more u8
 *   ALLOC_ID / TSO     count                        first, count
 *
 *   report       = region (nk_region_put), leader_peer_id, leader_store_id,
 *                  term, applied_index
 *   region info  = report, leader_addr str
 *   store info   = store_id, addr, alive u8, heartbeat_age_ms, region_count,
 *                  leader_count, capacity, available
 *
 * Every variable-size field has a bound (the NK_COORD_*_MAX below); a frame
 * that exceeds one, has an unknown op or trailing bytes is NK_EPROTO, and the
 * coordinator closes that connection (only that one).
 *
 * A standalone report envelope (magic "CR") exists too, so a store can keep
 * reports the coordinator has not acknowledged yet in its own files
 * (localmeta's pending events) and replay them after a restart.
 */
#ifndef NK_PROTO_COORD_H
#define NK_PROTO_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/proto/hello.h"
#include "nokv/proto/region.h"

#define NK_COORD_ADDR_MAX NK_HELLO_ADDR_MAX
#define NK_COORD_KEY_MAX (64u * 1024u) /* a user key (engine NK_KEY_MAX) */
#define NK_COORD_MSG_MAX 256u          /* human text of a non-OK response */
#define NK_COORD_ALLOC_MAX 1000000u    /* ids or timestamps per request */
#define NK_COORD_LIST_MAX 1024u        /* regions per ListRegions page */
#define NK_COORD_LIST_DEFAULT 128u     /* page size when limit is 0 */
#define NK_COORD_MAX_STORES 4096u      /* stores in the registry */
#define NK_COORD_AGE_NEVER UINT64_MAX  /* no heartbeat since the coordinator started */

typedef enum nk_coord_op {
    NK_COORD_STORE_HEARTBEAT = 1,
    NK_COORD_REGION_REPORT = 2,
    NK_COORD_GET_REGION_BY_KEY = 3,
    NK_COORD_GET_REGION = 4,
    NK_COORD_GET_STORE = 5,
    NK_COORD_LIST_STORES = 6,
    NK_COORD_LIST_REGIONS = 7,
    NK_COORD_ALLOC_ID = 8,
    NK_COORD_TSO = 9,
} nk_coord_op;

/* Result codes carried in responses. Wire format: never renumber. */
typedef enum nk_coord_code {
    NK_COORD_OK = 0,
    NK_COORD_NOT_FOUND = 1, /* no such region / store / no region holds the key */
    NK_COORD_NOT_READY = 2, /* cannot answer now (e.g. its disk failed): retry later */
    NK_COORD_BUSY = 3,      /* overloaded or full: retry later, maybe elsewhere */
    NK_COORD_INVALID = 4,   /* the request makes no sense (store id 0, count too big) */
} nk_coord_code;

const char *nk_coord_op_name(uint8_t op);
const char *nk_coord_code_name(uint8_t code);

/* The NK_E* error a caller sees for a code: NK_OK, NK_ENOENT, NK_EAGAIN,
 * NK_EBUSY, NK_EINVAL (NK_EPROTO for an unknown code). */
int nk_coord_code_err(uint8_t code);

typedef struct nk_coord_store_hb {
    uint64_t store_id;
    char addr[NK_COORD_ADDR_MAX]; /* where the store serves raft/admin/RESP */
    uint64_t region_count, leader_count;
    uint64_t capacity, available; /* bytes */
} nk_coord_store_hb;

/* What a store knows about one region it hosts. `term` orders leader
 * changes inside one epoch (leadership does not bump the epoch). */
typedef struct nk_coord_region_report {
    nk_region region;
    uint64_t leader_peer_id; /* 0: no leader known */
    uint64_t leader_store_id;
    uint64_t term;
    uint64_t applied_index;
} nk_coord_region_report;

typedef struct nk_coord_region_info {
    nk_coord_region_report r;
    char leader_addr[NK_COORD_ADDR_MAX]; /* from the store registry; may be empty */
} nk_coord_region_info;

typedef struct nk_coord_store_info {
    uint64_t store_id;
    char addr[NK_COORD_ADDR_MAX];
    bool alive;
    uint64_t heartbeat_age_ms; /* NK_COORD_AGE_NEVER: none since the coordinator started */
    uint64_t region_count, leader_count, capacity, available;
} nk_coord_store_info;

/* A request. Only the fields of `op` are encoded. `key` is borrowed: from
 * the caller when encoding, from the frame buffer after decoding. */
typedef struct nk_coord_req {
    uint64_t id;
    uint8_t op;
    nk_coord_store_hb hb;          /* STORE_HEARTBEAT */
    nk_coord_region_report report; /* REGION_REPORT */
    const uint8_t *key;            /* GET_REGION_BY_KEY key, LIST_REGIONS start */
    size_t key_len;
    uint64_t region_id; /* GET_REGION */
    uint64_t store_id;  /* GET_STORE */
    uint64_t count;     /* ALLOC_ID, TSO (0 means 1) */
    uint64_t limit;     /* LIST_REGIONS (0 means NK_COORD_LIST_DEFAULT) */
} nk_coord_req;

/* A response. Lists are malloc-owned after decode: nk_coord_resp_free. */
typedef struct nk_coord_resp {
    uint64_t id;
    uint8_t op;
    uint8_t code; /* nk_coord_code */
    char msg[NK_COORD_MSG_MAX];
    bool accepted;               /* STORE_HEARTBEAT, REGION_REPORT */
    bool need_full_report;       /* STORE_HEARTBEAT: the coordinator did not know this
                                  * store; send a report for every hosted region */
    nk_coord_region_info region; /* GET_REGION_BY_KEY, GET_REGION */
    nk_coord_store_info store;   /* GET_STORE */
    size_t n_stores;
    nk_coord_store_info *stores; /* LIST_STORES, sorted by store id */
    size_t n_regions;
    nk_coord_region_info *regions; /* LIST_REGIONS, in key order */
    bool more;                     /* LIST_REGIONS: continue from the last end key */
    uint64_t first, count;         /* ALLOC_ID, TSO: [first, first + count) */
} nk_coord_resp;

/* Codecs. Decoders return NK_EPROTO (structure, bounds, unknown op/code) or
 * NK_ECORRUPT (checksum); a failed decode leaves nothing to free. */
int nk_coord_req_encode(const nk_coord_req *q, nk_buf *out);
int nk_coord_req_decode(const uint8_t *buf, size_t len, nk_coord_req *q);
int nk_coord_resp_encode(const nk_coord_resp *p, nk_buf *out);
int nk_coord_resp_decode(const uint8_t *buf, size_t len, nk_coord_resp *p);
void nk_coord_resp_free(nk_coord_resp *p);

/* Body codec of a report (for embedding) and a standalone envelope. */
int nk_coord_report_put(nk_buf *b, const nk_coord_region_report *r);
int nk_coord_report_get(nk_wire_rd *rd, nk_coord_region_report *r);
int nk_coord_report_encode(const nk_coord_region_report *r, nk_buf *out);
int nk_coord_report_decode(const uint8_t *buf, size_t len, nk_coord_region_report *r);

#endif /* NK_PROTO_COORD_H */
