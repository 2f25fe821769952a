/*
 * admin_client.h - client of a store's admin service (nokv/proto/admin.h).
 *
 * Asynchronous, over nokv/rt.h only, so the simulator's operator and the
 * CLI run the same code. A client keeps one framed connection to one store
 * (HELLO naming NK_SERVICE_ADMIN, then requests) and up to
 * NK_ADMIN_CLIENT_MAX_INFLIGHT requests in flight: the admin protocol
 * answers in order, so callbacks run in the order of the calls. The
 * snapshot stream pipelines a window of chunks this way; a caller that
 * wants the old rhythm simply waits for each answer.
 *
 * nk_admin_client_call returns at once; the callback runs exactly once,
 * later, on the loop thread, with:
 *   NK_OK          the store answered; resp is valid during the callback
 *                  (resp->status may still be an admin error: NOT_LEADER...);
 *   NK_ECONNREFUSED / NK_ECLOSED (resp NULL) the connect failed or the
 *                  connection broke with the request in flight;
 *   NK_ETIMEDOUT   (resp NULL) no answer in time: the connection is dropped
 *                  (a late answer can never be taken for the next request's);
 *   NK_ESTOPPED    (resp NULL) the client is being freed.
 * The next call after a failure reconnects. So no call ever hangs.
 *
 * nk_admin_client_call_sync is the blocking wrapper for the CLI: it drives
 * nk_rt_run_once until the answer or the deadline (never from inside a loop
 * callback; not in the simulator, where run_once is NK_ENOTSUP). It copies
 * the answer (and chunk data) into client-owned memory valid until the next
 * call.
 */
#ifndef NK_CLIENT_ADMIN_CLIENT_H
#define NK_CLIENT_ADMIN_CLIENT_H

#include <stdint.h>

#include "nokv/proto/admin.h"
#include "nokv/rt.h"

typedef struct nk_admin_client nk_admin_client;

typedef void (*nk_admin_cb)(void *arg, int rc, const nk_admin_resp *resp);

int nk_admin_client_new(nk_rt *rt, const char *addr, nk_admin_client **out);
/* Pending callback gets NK_ESTOPPED (before this returns). */
void nk_admin_client_free(nk_admin_client *c);
const char *nk_admin_client_addr(const nk_admin_client *c);
/* Calls in flight. */
unsigned nk_admin_client_inflight(const nk_admin_client *c);
/* Bytes queued on the connection and not yet on the wire (backpressure:
 * nk_rt_conn_pending). */
size_t nk_admin_client_pending_bytes(const nk_admin_client *c);

#define NK_ADMIN_CLIENT_MAX_INFLIGHT 16u

/* q->id is assigned by the client. NK_EBUSY when NK_ADMIN_CLIENT_MAX_INFLIGHT
 * calls are in flight. A call's timeout, a broken connection or a
 * malformed answer fails every call in flight (the next call reconnects).
 * The callback may issue new calls. */
int nk_admin_client_call(nk_admin_client *c, nk_admin_req *q, uint64_t timeout_ns, nk_admin_cb cb,
                         void *arg);

/* Blocking: NK_OK with *resp (valid until the next call) or the transport
 * error, with eb saying which store and what to do. An admin-level error is
 * NK_OK with resp->status set. */
int nk_admin_client_call_sync(nk_admin_client *c, nk_admin_req *q, uint64_t timeout_ns,
                              const nk_admin_resp **resp, nk_errbuf *eb);

#endif /* NK_CLIENT_ADMIN_CLIENT_H */
