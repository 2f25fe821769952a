/*
 * client.h - asynchronous coordinator client, and the store's reporter.
 *
 * The client keeps one framed connection to the coordinator (HELLO first,
 * then requests, nokv/proto/coord.h). Every call returns at once; its
 * callback runs exactly once, later, on the loop thread (never from inside
 * the call), with:
 *   NK_OK              the coordinator answered with code OK; resp is valid;
 *   NK_ENOENT, NK_EAGAIN, NK_EBUSY, NK_EINVAL
 *                      it answered with NOT_FOUND / NOT_READY / BUSY /
 *                      INVALID; resp is valid (resp->msg says why);
 *   NK_EAGAIN          (resp NULL) it is unreachable: the connect failed,
 *                      the connection broke with the request in flight, or
 *                      the client is backing off after a failure;
 *   NK_ETIMEDOUT       (resp NULL) no answer within the request timeout;
 *   NK_ESTOPPED        (resp NULL) the client is being freed: release the
 *                      callback's argument, touch nothing else.
 * So no call ever hangs, whatever the coordinator or network does. A request
 * that failed with NK_EAGAIN/NK_ETIMEDOUT may or may not have been executed
 * (an AllocID range may be lost: numbers are skipped, never repeated).
 *
 * Reconnects: after a failure the client waits a backoff that doubles from
 * backoff_min to backoff_max (with seeded jitter), then reconnects; a valid
 * answer resets it. Two request timeouts in a row with no answer in between
 * drop the connection (a silent partition) and reconnect.
 *
 * The reporter (nk_coord_reporter) is what a store runs on top: a periodic
 * StoreHeartbeat, plus a queue of region reports that survives coordinator
 * outages. A report stays queued until the coordinator has answered it (a
 * newer report for the same region replaces a queued older one); queued
 * reports go out as soon as a heartbeat succeeds again. The store keeps
 * serving meanwhile: nothing here blocks, and nothing the store needs to
 * serve its hosted regions waits on the coordinator.
 *
 * Callbacks must not free the client or the reporter they came from.
 */
#ifndef NK_COORD_CLIENT_H
#define NK_COORD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/proto/coord.h"
#include "nokv/rt.h"

typedef struct nk_coord_client_config {
    const char *addr;                        /* coordinator address */
    uint64_t cluster_id;                     /* for the HELLO (0: unknown) */
    uint64_t store_id;                       /* for the HELLO (0: not a store) */
    const char *self_addr;                   /* for the HELLO; may be NULL */
    uint64_t timeout_ns;                     /* per request (0 = 3 s) */
    uint64_t backoff_min_ns, backoff_max_ns; /* 0 = 50 ms, 5 s */
    size_t max_pending;                      /* outstanding calls (0 = 4096); more is NK_EBUSY */
} nk_coord_client_config;

typedef struct nk_coord_client nk_coord_client;

typedef void (*nk_coord_cb)(void *arg, int status, const nk_coord_resp *resp);

/* Create and start connecting. NK_EINVAL for a missing or too long address. */
int nk_coord_client_new(nk_rt *rt, const nk_coord_client_config *cfg, nk_coord_client **out,
                        nk_errbuf *eb);

/* Fail every outstanding call with NK_ESTOPPED, close, free. */
void nk_coord_client_free(nk_coord_client *c);

/* Send `req`; req->id is overwritten with the id assigned here. NK_OK (cb
 * will run), NK_EBUSY (too many outstanding calls), NK_EINVAL/NK_ETOOBIG
 * (cannot encode), NK_ESTOPPED (the client is being freed). */
int nk_coord_call(nk_coord_client *c, nk_coord_req *req, nk_coord_cb cb, void *arg);

/* Convenience wrappers over nk_coord_call. */
int nk_coord_heartbeat(nk_coord_client *c, const nk_coord_store_hb *hb, nk_coord_cb cb, void *arg);
int nk_coord_report_region(nk_coord_client *c, const nk_coord_region_report *r, nk_coord_cb cb,
                           void *arg);
int nk_coord_get_region_by_key(nk_coord_client *c, const void *key, size_t klen, nk_coord_cb cb,
                               void *arg);
int nk_coord_get_region(nk_coord_client *c, uint64_t region_id, nk_coord_cb cb, void *arg);
int nk_coord_get_store(nk_coord_client *c, uint64_t store_id, nk_coord_cb cb, void *arg);
int nk_coord_alloc_id(nk_coord_client *c, uint64_t count, nk_coord_cb cb, void *arg);
int nk_coord_tso(nk_coord_client *c, uint64_t count, nk_coord_cb cb, void *arg);

typedef struct nk_coord_client_stats {
    bool connected;      /* a connection is up (or being set up) */
    uint64_t connects;   /* connection attempts */
    uint64_t failures;   /* connects that failed + connections that broke */
    size_t pending;      /* outstanding calls */
    uint64_t backoff_ns; /* the delay before the next reconnect */
} nk_coord_client_stats;

void nk_coord_client_stats_get(const nk_coord_client *c, nk_coord_client_stats *st);

/* ----------------------------------------------------------- reporter --- */

typedef struct nk_coord_reporter_config {
    uint64_t store_id;
    const char *addr;     /* the store's advertised address */
    uint64_t interval_ns; /* heartbeat period (0 = 1 s) */
    size_t max_reports;   /* queued region reports (0 = 4096); more is NK_EBUSY */
    /* Fill the load figures of a heartbeat (region/leader counts, capacity);
     * store_id and addr are already set. May be NULL. */
    void (*stats)(void *arg, nk_coord_store_hb *hb);
    /* The coordinator did not know this store (a new or wiped coordinator):
     * queue a report for every hosted region. May be NULL. */
    void (*full_report)(void *arg);
    /* A queued report was answered for good (accepted, or refused because
     * the coordinator knows something newer): the store may now drop its
     * durable copy (localmeta's pending event). May be NULL. */
    void (*delivered)(void *arg, const nk_coord_region_report *rep, bool accepted);
    void *arg;
} nk_coord_reporter_config;

typedef struct nk_coord_reporter nk_coord_reporter;

typedef struct nk_coord_reporter_status {
    bool coordinator_up; /* the last heartbeat was answered */
    uint64_t heartbeats_ok, heartbeats_failed;
    uint64_t consecutive_failures; /* heartbeats failed since the last success */
    uint64_t reports_delivered;    /* answered by the coordinator */
    size_t reports_queued;         /* waiting (including in flight) */
    int last_error;                /* of the last failed heartbeat */
} nk_coord_reporter_status;

/* Start heartbeating through `client`. The first beat goes out at once.
 * Free the reporter before the client, or both together (client then
 * reporter, with no loop iteration in between): in-flight calls are then
 * completed safely either way. */
int nk_coord_reporter_new(nk_rt *rt, nk_coord_client *client, const nk_coord_reporter_config *cfg,
                          nk_coord_reporter **out);
void nk_coord_reporter_free(nk_coord_reporter *r);

/* Queue a report (copied). NK_OK, NK_EBUSY when the queue is full. */
int nk_coord_reporter_report(nk_coord_reporter *r, const nk_coord_region_report *rep);

void nk_coord_reporter_status_get(const nk_coord_reporter *r, nk_coord_reporter_status *st);

#endif /* NK_COORD_CLIENT_H */
