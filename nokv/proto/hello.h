/*
 * hello.h - the first frame of every framed connection (NK_KIND_HELLO).
 *
 * The dialer sends it before anything else; it names the service the
 * connection is for (enum nk_service in kinds.h) and who is calling. The
 * acceptor hands the connection to that service; a connection whose first
 * frame is not a valid HELLO, or that names an unknown service, is closed.
 * A store that receives a raft HELLO from a different cluster id (both
 * non-zero) closes the connection: two clusters never mix their raft traffic.
 *
 * Envelope: nokv/proto/wire.h, magic "HL", version 2:
 *   service u8, cluster_id uvar, store_id uvar (0 = not a store: CLI, test),
 *   addr str (the caller's advertised address, may be empty),
 *   client_addr str (version 2: where the caller serves clients (RESP), so a
 *   store that does not lead a region can forward a request to the one
 *   that does; may be empty). Version 1 frames decode with it empty.
 */
#ifndef NK_PROTO_HELLO_H
#define NK_PROTO_HELLO_H

#include <stdint.h>

#include "nokv/engine/slice.h"

#define NK_HELLO_ADDR_MAX 128u

typedef struct nk_hello {
    uint8_t service; /* enum nk_service */
    uint64_t cluster_id;
    uint64_t store_id;
    char addr[NK_HELLO_ADDR_MAX];
    char client_addr[NK_HELLO_ADDR_MAX];
} nk_hello;

/* NK_EINVAL for an unknown service or an addr without a NUL in the array. */
int nk_hello_encode(const nk_hello *h, nk_buf *out);
/* NK_EPROTO / NK_ECORRUPT on a malformed frame or an unknown service. */
int nk_hello_decode(const uint8_t *buf, size_t len, nk_hello *h);

#endif /* NK_PROTO_HELLO_H */
