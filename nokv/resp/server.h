/*
 * server.h - the RESP2 server: listener, connections, pipelining, ordering.
 *
 * nk_resp_server_start listens on `addr` through the runtime (rt.h; raw
 * connections), parses each connection's byte stream with nk_resp_parser,
 * executes requests with nk_resp_db in arrival order and writes replies with
 * nk_rt_send_raw. Everything runs on the loop thread.
 *
 * Ordering: requests of one connection execute immediately, one after the
 * other (a write is visible to the next request at once, backend.h), but
 * replies leave strictly in request order: a write's reply is held until
 * its durability `done` fires, and every later reply of that connection
 * waits behind it - so a client never sees an answer that depends on a
 * write before the write itself is acknowledged. Different connections
 * never wait for each other. With a backend that has a read barrier (a
 * replicated one, backend.h), the reply of a command that read keys and
 * wrote nothing (nk_resp_call.read) is held the same way until the barrier
 * confirms the read was current; a failed barrier replaces it with
 * nk_resp_read_error() text ("TRYAGAIN ..." when this store does not lead).
 *
 * Failure isolation: malformed RESP or a broken limit (resp.h) gets the
 * Redis error reply, then that connection is closed once its earlier
 * replies are out; other connections are untouched. A framed (NoKV wire)
 * client on this port is closed. A client that stops reading is closed
 * (Redis client-output-buffer-limit): when more output is due while the
 * bytes it has not taken yet exceed max_output_bytes, or when replies held
 * behind pending writes exceed it. A single large reply is always sent.
 * Over max_clients, a new connection gets "-ERR max number of clients
 * reached" and is closed.
 *
 * QUIT replies +OK, then the connection closes after its replies; input
 * after QUIT is ignored.
 *
 * Shutdown: nk_resp_server_stop closes the listener and every connection
 * (queued bytes are flushed best-effort by the runtime; replies still
 * waiting for a write are dropped). nk_resp_server_free also frees memory;
 * free the server before the backend. Writes still in flight keep a small
 * detached record that their done frees, so the backend may complete them
 * later (the backend.h contract says it will, at the latest when freed).
 */
#ifndef NK_RESP_SERVER_H
#define NK_RESP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/resp/backend.h"
#include "nokv/resp/commands.h"
#include "nokv/resp/resp.h"
#include "nokv/rt.h"

#define NK_RESP_DEFAULT_MAX_OUTPUT (64u * 1024u * 1024u)
#define NK_RESP_DEFAULT_MAX_CLIENTS 10000u

typedef struct nk_resp_server_options {
    nk_resp_limits limits;   /* request parser limits; zero fields = defaults */
    size_t max_output_bytes; /* per connection, see above; 0 = 64 MiB */
    uint32_t max_clients;    /* 0 = 10000 */
    nk_resp_db_options db;   /* sync policy (INFO), version, SCAN cursor table */
} nk_resp_server_options;

typedef struct nk_resp_server nk_resp_server;

/* Listen on addr ("127.0.0.1:6380"; port 0 = any free port) and serve `be`,
 * which must outlive the server. opt may be NULL. NK_OK, NK_EADDR (bind),
 * NK_ENOMEM, or the runtime's error. */
int nk_resp_server_start(nk_rt *rt, const char *addr, nk_kv_backend *be,
                         const nk_resp_server_options *opt, nk_resp_server **out);

/* The bound address ("127.0.0.1:41234"). */
int nk_resp_server_addr(nk_resp_server *s, char *buf, size_t len);

/* The command layer (for its statistics). */
nk_resp_db *nk_resp_server_db(nk_resp_server *s);

/* Open client connections. */
size_t nk_resp_server_connections(const nk_resp_server *s);

/* Close the listener and all connections. Idempotent. */
void nk_resp_server_stop(nk_resp_server *s);

/* Stop (if needed) and free. NULL is ignored. */
void nk_resp_server_free(nk_resp_server *s);

#endif /* NK_RESP_SERVER_H */
