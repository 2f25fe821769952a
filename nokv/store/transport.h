/*
 * transport.h - raft messages between stores.
 *
 * Outgoing: one framed connection per destination store, opened on demand
 * to the address the resolver gives for that store id (never a simulator
 * node name or a static peer table), started with a HELLO for the raft
 * service, and re-dialled after a break with a jittered exponential backoff
 * (20 ms doubling to 2 s). A message with no usable connection, or for a
 * connection whose send queue is over the pending limit, is dropped: raft
 * retransmits what matters, and a stuck store must not eat our memory.
 * A dropped snapshot message is reported so raft retries it.
 *
 * Incoming: the store's listener hands accepted framed connections here.
 * The first frame must be a raft-service HELLO of the same cluster (when
 * both sides know their cluster id); anything else, and any frame that does
 * not decode, closes that connection only.
 */
#ifndef NK_STORE_TRANSPORT_H
#define NK_STORE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/proto/raftmsg.h"
#include "nokv/rt.h"

typedef struct nk_transport nk_transport;

typedef int (*nk_transport_resolve_fn)(void *ctx, uint64_t store_id, char *addr, size_t cap);
/* A decoded message for this store; m is owned by the callee during the call
 * only (the transport clears it afterwards). */
typedef void (*nk_transport_deliver_fn)(void *ctx, const nk_raftmsg_hdr *h, const nk_raft_msg *m);
/* A snapshot message to `to_peer` of region could not be sent. */
typedef void (*nk_transport_unreachable_fn)(void *ctx, uint64_t region_id, uint64_t to_peer);
/* A store said hello: where it can be dialled (its advertised address) and
 * where it serves clients (may be empty). */
typedef void (*nk_transport_learn_fn)(void *ctx, uint64_t store_id, const char *addr,
                                      const char *client_addr);

typedef struct nk_transport_options {
    uint64_t store_id;
    uint64_t cluster_id;
    const char *advertise_addr; /* sent in HELLO; may be NULL */
    const char *client_addr;    /* sent in HELLO (our RESP address); may be NULL */
    nk_transport_resolve_fn resolve;
    void *resolve_ctx;
    nk_transport_deliver_fn deliver;
    nk_transport_unreachable_fn unreachable;
    nk_transport_learn_fn learn; /* may be NULL */
    void *ctx;
    uint64_t pending_limit; /* bytes; default 4 MiB */
} nk_transport_options;

int nk_transport_new(nk_rt *rt, const nk_transport_options *o, nk_transport **out);
/* Close every connection (incoming and outgoing) and free. */
void nk_transport_free(nk_transport *t);

/* Send to h->to_store. NK_OK (queued), NK_EAGAIN (no connection now: backing
 * off or over the pending limit), NK_ENOENT (address unknown), or an
 * encoding error. */
int nk_transport_send(nk_transport *t, const nk_raftmsg_hdr *h, const nk_raft_msg *m);

/* The listener accepted a framed connection for the raft service (its
 * HELLO is the first frame the transport will see). */
void nk_transport_accept(nk_transport *t, uint64_t conn);
/* Handlers for accepted connections (the listener's nk_net_handlers forward
 * here for connections it handed over). Return false when conn is not one
 * of ours. */
bool nk_transport_on_message(nk_transport *t, uint64_t conn, uint8_t kind, const uint8_t *data,
                             size_t len);
bool nk_transport_on_close(nk_transport *t, uint64_t conn);
/* Is conn an accepted connection the transport still holds? */
bool nk_transport_has_conn(const nk_transport *t, uint64_t conn);

typedef struct nk_transport_stats {
    uint64_t sent, dropped, received, bad_frames, dials;
} nk_transport_stats;
void nk_transport_stats_get(const nk_transport *t, nk_transport_stats *st);

#endif /* NK_STORE_TRANSPORT_H */
