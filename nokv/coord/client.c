/*
 * client.c - asynchronous coordinator client and store reporter (see client.h).
 */
#include "nokv/coord/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/util/u64map.h"

#define TIMEOUTS_BEFORE_RESET 2u
#define REPORTS_IN_FLIGHT 64u

typedef struct call {
    uint64_t id;
    uint8_t op;
    nk_coord_cb cb;
    void *arg;
    uint64_t timer;
    bool sent;      /* written to a connection */
    bool fail_fast; /* the timer reports NK_EAGAIN: nobody to send it to */
    nk_coord_client *c;
} call;

struct nk_coord_client {
    nk_rt *rt;
    char addr[NK_COORD_ADDR_MAX];
    nk_hello hello;
    uint64_t timeout_ns, backoff_min, backoff_max;
    size_t max_pending;
    nk_rand rnd;

    uint64_t conn; /* 0: no connection */
    uint64_t retry_timer;
    uint64_t backoff_ns; /* next delay */
    uint64_t next_id;
    unsigned timeouts_in_row;
    nk_u64map calls; /* id -> call */
    bool freeing;
    nk_coord_client_stats stats;
    nk_buf scratch;
    nk_coord_resp resp; /* decode target (large) */
};

static const nk_net_handlers handlers;

static void finish(nk_coord_client *c, call *k, int status, const nk_coord_resp *resp)
{
    nk_u64map_del(&c->calls, k->id);
    if (k->timer != 0) {
        (void)nk_rt_timer_cancel(c->rt, k->timer);
    }
    nk_coord_cb cb = k->cb;
    void *arg = k->arg;
    free(k);
    cb(arg, status, resp);
}

/* Complete every call matching `sent_only` with status. Ids are collected
 * first: callbacks may add calls while we go. */
static void fail_calls(nk_coord_client *c, bool sent_only, int status)
{
    size_t n = 0, pos = 0;
    uint64_t *ids = malloc((c->calls.count + 1) * sizeof(*ids));
    uint64_t key;
    void *val;
    if (ids == NULL) {
        return; /* their timers still fire: nothing hangs */
    }
    while (nk_u64map_next(&c->calls, &pos, &key, &val)) {
        if (!sent_only || ((call *)val)->sent) {
            ids[n++] = key;
        }
    }
    /* In id (= call) order, not the map's. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            uint64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        call *k = nk_u64map_get(&c->calls, ids[i]);
        if (k != NULL) {
            finish(c, k, status, NULL);
        }
    }
    free(ids);
}

static void retry_cb(void *arg);

static void connection_lost(nk_coord_client *c, int reason)
{
    c->conn = 0;
    c->stats.connected = false;
    c->stats.failures++;
    c->timeouts_in_row = 0;
    nk_log(c->rt, NK_LOG_DEBUG, "coord client: connection to %s lost (%s); retry in %" PRIu64 " ms",
           c->addr, nk_errname(reason), c->backoff_ns / NK_NSEC_PER_MSEC);
    uint64_t half = c->backoff_ns / 2;
    uint64_t delay = half + nk_rand_below(&c->rnd, half + 1);
    c->retry_timer = nk_rt_timer_start(c->rt, delay, retry_cb, c);
    c->backoff_ns = c->backoff_ns * 2 > c->backoff_max ? c->backoff_max : c->backoff_ns * 2;
    fail_calls(c, true, NK_EAGAIN);
}

static void start_connect(nk_coord_client *c)
{
    c->stats.connects++;
    uint64_t conn = 0;
    int rc = nk_rt_connect(c->rt, c->addr, NK_CONN_FRAMED, &handlers, c, &conn);
    if (rc != NK_OK) {
        connection_lost(c, rc);
        return;
    }
    c->conn = conn;
    c->stats.connected = true;
    /* Frames queued before the connect completes go out once it does. */
    if (nk_hello_encode(&c->hello, &c->scratch) == NK_OK) {
        (void)nk_rt_send(c->rt, conn, NK_KIND_HELLO, c->scratch.data, c->scratch.len);
    }
}

static void retry_cb(void *arg)
{
    nk_coord_client *c = arg;
    c->retry_timer = 0;
    if (!c->freeing && c->conn == 0) {
        start_connect(c);
    }
}

static void on_accept(void *ctx, uint64_t l, uint64_t conn, const char *peer)
{
    (void)ctx;
    (void)l;
    (void)conn;
    (void)peer;
}

static void on_connect(void *ctx, uint64_t conn, int status)
{
    nk_coord_client *c = ctx;
    if (conn != c->conn || status == NK_OK) {
        return;
    }
    connection_lost(c, status);
}

static void on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_coord_client *c = ctx;
    if (conn != c->conn) {
        return;
    }
    int rc = kind == NK_KIND_COORD_RESP ? nk_coord_resp_decode(data, len, &c->resp) : NK_EPROTO;
    if (rc != NK_OK) {
        nk_log(c->rt, NK_LOG_WARN, "coord client: bad frame from %s (kind %u, %s); reconnecting",
               c->addr, kind, nk_errname(rc));
        (void)nk_rt_close(c->rt, conn);
        connection_lost(c, rc);
        return;
    }
    c->backoff_ns = c->backoff_min; /* the service answers: it is really up */
    c->timeouts_in_row = 0;
    call *k = nk_u64map_get(&c->calls, c->resp.id);
    if (k != NULL && k->op == c->resp.op) {
        finish(c, k, nk_coord_code_err(c->resp.code), &c->resp);
    }
    nk_coord_resp_free(&c->resp);
}

static void on_close(void *ctx, uint64_t conn, int reason)
{
    nk_coord_client *c = ctx;
    if (conn == c->conn) {
        connection_lost(c, reason);
    }
}

static const nk_net_handlers handlers = {on_accept, on_connect, on_message, on_close};

static void call_timer_cb(void *arg)
{
    call *k = arg;
    nk_coord_client *c = k->c;
    k->timer = 0;
    bool counted = k->sent && !k->fail_fast;
    finish(c, k, k->fail_fast ? NK_EAGAIN : NK_ETIMEDOUT, NULL);
    if (counted && c->conn != 0 && ++c->timeouts_in_row >= TIMEOUTS_BEFORE_RESET) {
        /* Answers stopped without the connection breaking (a partition or a
         * stuck peer): start over. */
        uint64_t conn = c->conn;
        (void)nk_rt_close(c->rt, conn);
        connection_lost(c, NK_ETIMEDOUT);
    }
}

int nk_coord_client_new(nk_rt *rt, const nk_coord_client_config *cfg, nk_coord_client **out,
                        nk_errbuf *eb)
{
    *out = NULL;
    if (cfg->addr == NULL || cfg->addr[0] == '\0' || strlen(cfg->addr) >= NK_COORD_ADDR_MAX ||
        (cfg->self_addr != NULL && strlen(cfg->self_addr) >= NK_HELLO_ADDR_MAX)) {
        nk_errbuf_set(eb, "coordinator client: missing or too long address");
        return NK_EINVAL;
    }
    nk_coord_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NK_ENOMEM;
    }
    c->rt = rt;
    snprintf(c->addr, sizeof(c->addr), "%s", cfg->addr);
    c->hello.service = NK_SERVICE_COORD;
    c->hello.cluster_id = cfg->cluster_id;
    c->hello.store_id = cfg->store_id;
    snprintf(c->hello.addr, sizeof(c->hello.addr), "%s", cfg->self_addr ? cfg->self_addr : "");
    c->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : 3 * NK_NSEC_PER_SEC;
    c->backoff_min = cfg->backoff_min_ns ? cfg->backoff_min_ns : 50 * NK_NSEC_PER_MSEC;
    c->backoff_max = cfg->backoff_max_ns ? cfg->backoff_max_ns : 5 * NK_NSEC_PER_SEC;
    if (c->backoff_max < c->backoff_min) {
        c->backoff_max = c->backoff_min;
    }
    c->backoff_ns = c->backoff_min;
    c->max_pending = cfg->max_pending ? cfg->max_pending : 4096;
    nk_rt_rand_stream(rt, "coord.client", &c->rnd);
    nk_u64map_init(&c->calls);
    start_connect(c);
    *out = c;
    return NK_OK;
}

void nk_coord_client_free(nk_coord_client *c)
{
    if (c == NULL) {
        return;
    }
    c->freeing = true;
    if (c->retry_timer != 0) {
        (void)nk_rt_timer_cancel(c->rt, c->retry_timer);
    }
    if (c->conn != 0) {
        (void)nk_rt_close(c->rt, c->conn);
        c->conn = 0;
    }
    fail_calls(c, false, NK_ESTOPPED);
    nk_u64map_free(&c->calls);
    nk_buf_free(&c->scratch);
    free(c);
}

int nk_coord_call(nk_coord_client *c, nk_coord_req *req, nk_coord_cb cb, void *arg)
{
    if (c->freeing) {
        return NK_ESTOPPED;
    }
    if (c->calls.count >= c->max_pending) {
        return NK_EBUSY;
    }
    call *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NK_ENOMEM;
    }
    k->id = ++c->next_id;
    k->op = req->op;
    k->cb = cb;
    k->arg = arg;
    k->c = c;
    req->id = k->id;
    int rc = nk_coord_req_encode(req, &c->scratch);
    if (rc == NK_OK) {
        rc = nk_u64map_put(&c->calls, k->id, k);
    }
    if (rc != NK_OK) {
        free(k);
        return rc;
    }
    uint64_t delay = c->timeout_ns;
    if (c->conn != 0 &&
        nk_rt_send(c->rt, c->conn, NK_KIND_COORD_REQ, c->scratch.data, c->scratch.len) == NK_OK) {
        k->sent = true;
    } else {
        k->fail_fast = true; /* backing off: say so now rather than at the timeout */
        delay = 0;
    }
    k->timer = nk_rt_timer_start(c->rt, delay, call_timer_cb, k);
    if (k->timer == 0) {
        nk_u64map_del(&c->calls, k->id);
        free(k);
        return NK_ESTOPPED;
    }
    c->stats.pending = c->calls.count;
    return NK_OK;
}

int nk_coord_heartbeat(nk_coord_client *c, const nk_coord_store_hb *hb, nk_coord_cb cb, void *arg)
{
    nk_coord_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NK_ENOMEM;
    }
    q->op = NK_COORD_STORE_HEARTBEAT;
    q->hb = *hb;
    int rc = nk_coord_call(c, q, cb, arg);
    free(q);
    return rc;
}

int nk_coord_report_region(nk_coord_client *c, const nk_coord_region_report *r, nk_coord_cb cb,
                           void *arg)
{
    nk_coord_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NK_ENOMEM;
    }
    q->op = NK_COORD_REGION_REPORT;
    q->report = *r;
    int rc = nk_coord_call(c, q, cb, arg);
    free(q);
    return rc;
}

/* nk_coord_req embeds a region descriptor (a few KiB): keep it off the stack. */
static int simple_call(nk_coord_client *c, uint8_t op, uint64_t v, const void *key, size_t klen,
                       nk_coord_cb cb, void *arg)
{
    nk_coord_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NK_ENOMEM;
    }
    q->op = op;
    q->region_id = q->store_id = q->count = v;
    q->key = key;
    q->key_len = klen;
    int rc = nk_coord_call(c, q, cb, arg);
    free(q);
    return rc;
}

int nk_coord_get_region_by_key(nk_coord_client *c, const void *key, size_t klen, nk_coord_cb cb,
                               void *arg)
{
    return simple_call(c, NK_COORD_GET_REGION_BY_KEY, 0, key, klen, cb, arg);
}

int nk_coord_get_region(nk_coord_client *c, uint64_t region_id, nk_coord_cb cb, void *arg)
{
    return simple_call(c, NK_COORD_GET_REGION, region_id, NULL, 0, cb, arg);
}

int nk_coord_get_store(nk_coord_client *c, uint64_t store_id, nk_coord_cb cb, void *arg)
{
    return simple_call(c, NK_COORD_GET_STORE, store_id, NULL, 0, cb, arg);
}

int nk_coord_alloc_id(nk_coord_client *c, uint64_t count, nk_coord_cb cb, void *arg)
{
    return simple_call(c, NK_COORD_ALLOC_ID, count, NULL, 0, cb, arg);
}

int nk_coord_tso(nk_coord_client *c, uint64_t count, nk_coord_cb cb, void *arg)
{
    return simple_call(c, NK_COORD_TSO, count, NULL, 0, cb, arg);
}

void nk_coord_client_stats_get(const nk_coord_client *c, nk_coord_client_stats *st)
{
    *st = c->stats;
    st->pending = c->calls.count;
    st->backoff_ns = c->backoff_ns;
}

/* ----------------------------------------------------------- reporter --- */

/* The argument of one reporter call. It outlives a freed reporter (r is set
 * to NULL then) because the client may still complete the call later. */
typedef struct token {
    nk_coord_reporter *r;
    uint64_t region_id; /* 0: the heartbeat */
    uint64_t seq;
} token;

typedef struct rep_ent {
    uint64_t seq;
    token *inflight;
    nk_coord_region_report rep;
} rep_ent;

struct nk_coord_reporter {
    nk_rt *rt;
    nk_coord_client *client;
    nk_coord_reporter_config cfg;
    char addr[NK_COORD_ADDR_MAX];
    uint64_t timer;
    token *hb_inflight;
    rep_ent **q; /* sorted by region id */
    size_t n, cap;
    size_t inflight;
    uint64_t next_seq;
    nk_coord_reporter_status st;
};

static size_t rep_pos(const nk_coord_reporter *r, uint64_t region_id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->q[mid]->rep.region.id < region_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void report_cb(void *arg, int status, const nk_coord_resp *resp);

static void deliver(nk_coord_reporter *r)
{
    for (size_t i = 0; i < r->n && r->st.coordinator_up && r->inflight < REPORTS_IN_FLIGHT; i++) {
        rep_ent *e = r->q[i];
        if (e->inflight != NULL) {
            continue;
        }
        token *t = calloc(1, sizeof(*t));
        if (t == NULL) {
            return;
        }
        t->r = r;
        t->region_id = e->rep.region.id;
        t->seq = e->seq;
        if (nk_coord_report_region(r->client, &e->rep, report_cb, t) != NK_OK) {
            free(t);
            return;
        }
        e->inflight = t;
        r->inflight++;
    }
}

static void report_cb(void *arg, int status, const nk_coord_resp *resp)
{
    token *t = arg;
    nk_coord_reporter *r = t->r;
    if (r == NULL) {
        free(t);
        return;
    }
    size_t i = rep_pos(r, t->region_id);
    rep_ent *e = i < r->n && r->q[i]->rep.region.id == t->region_id ? r->q[i] : NULL;
    if (e != NULL && e->inflight == t) {
        e->inflight = NULL;
        r->inflight--;
        /* Answered (accepted, or refused as stale: the coordinator knows
         * better): done, unless a newer report for the region came in. */
        bool answered = status == NK_OK || (resp != NULL && resp->code == NK_COORD_INVALID);
        if (answered) {
            r->st.reports_delivered++;
            if (resp != NULL && !resp->accepted && resp->code == NK_COORD_OK) {
                nk_log(r->rt, NK_LOG_DEBUG, "coord reporter: region %" PRIu64 " not accepted: %s",
                       t->region_id, resp->msg);
            }
        }
        if (answered && e->seq == t->seq) {
            memmove(r->q + i, r->q + i + 1, (r->n - i - 1) * sizeof(*r->q));
            r->n--;
            if (r->cfg.delivered != NULL) {
                r->cfg.delivered(r->cfg.arg, &e->rep, resp != NULL && resp->accepted);
            }
            free(e);
        }
    }
    free(t);
    if (status == NK_OK) {
        deliver(r);
    }
}

static void heartbeat_cb(void *arg, int status, const nk_coord_resp *resp)
{
    token *t = arg;
    nk_coord_reporter *r = t->r;
    free(t);
    if (r == NULL) {
        return;
    }
    r->hb_inflight = NULL;
    if (status == NK_OK) {
        if (!r->st.coordinator_up && r->st.heartbeats_failed > 0) {
            nk_log(r->rt, NK_LOG_INFO,
                   "coord reporter: coordinator is back after %" PRIu64
                   " failed heartbeats; %zu reports queued",
                   r->st.consecutive_failures, r->n);
        }
        if (!resp->accepted) {
            nk_log(r->rt, NK_LOG_WARN, "coord reporter: heartbeat not accepted: %s", resp->msg);
        }
        r->st.coordinator_up = true;
        r->st.heartbeats_ok++;
        r->st.consecutive_failures = 0;
        if (resp->need_full_report && r->cfg.full_report != NULL) {
            r->cfg.full_report(r->cfg.arg);
        }
        deliver(r);
        return;
    }
    if (r->st.coordinator_up || r->st.heartbeats_failed == 0) {
        nk_log(r->rt, NK_LOG_WARN,
               "coord reporter: heartbeat failed (%s); the store keeps serving, reports stay "
               "queued",
               nk_errname(status));
    }
    r->st.coordinator_up = false;
    r->st.heartbeats_failed++;
    r->st.consecutive_failures++;
    r->st.last_error = status;
}

static void tick_cb(void *arg)
{
    nk_coord_reporter *r = arg;
    r->timer = nk_rt_timer_start(r->rt, r->cfg.interval_ns, tick_cb, r);
    if (r->hb_inflight != NULL) {
        return; /* the previous one is still waiting for its timeout */
    }
    token *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return;
    }
    t->r = r;
    nk_coord_store_hb hb;
    memset(&hb, 0, sizeof(hb));
    if (r->cfg.stats != NULL) {
        r->cfg.stats(r->cfg.arg, &hb);
    }
    hb.store_id = r->cfg.store_id;
    snprintf(hb.addr, sizeof(hb.addr), "%s", r->addr);
    if (nk_coord_heartbeat(r->client, &hb, heartbeat_cb, t) != NK_OK) {
        free(t);
        return;
    }
    r->hb_inflight = t;
}

int nk_coord_reporter_new(nk_rt *rt, nk_coord_client *client, const nk_coord_reporter_config *cfg,
                          nk_coord_reporter **out)
{
    *out = NULL;
    if (cfg->store_id == 0 || cfg->addr == NULL || cfg->addr[0] == '\0' ||
        strlen(cfg->addr) >= NK_COORD_ADDR_MAX) {
        return NK_EINVAL;
    }
    nk_coord_reporter *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NK_ENOMEM;
    }
    r->rt = rt;
    r->client = client;
    r->cfg = *cfg;
    snprintf(r->addr, sizeof(r->addr), "%s", cfg->addr);
    r->cfg.addr = r->addr;
    if (r->cfg.interval_ns == 0) {
        r->cfg.interval_ns = NK_NSEC_PER_SEC;
    }
    if (r->cfg.max_reports == 0) {
        r->cfg.max_reports = 4096;
    }
    r->timer = nk_rt_timer_start(rt, 0, tick_cb, r);
    *out = r;
    return NK_OK;
}

void nk_coord_reporter_free(nk_coord_reporter *r)
{
    if (r == NULL) {
        return;
    }
    if (r->timer != 0) {
        (void)nk_rt_timer_cancel(r->rt, r->timer);
    }
    if (r->hb_inflight != NULL) {
        r->hb_inflight->r = NULL;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->q[i]->inflight != NULL) {
            r->q[i]->inflight->r = NULL;
        }
        free(r->q[i]);
    }
    free(r->q);
    free(r);
}

int nk_coord_reporter_report(nk_coord_reporter *r, const nk_coord_region_report *rep)
{
    if (rep->region.id == 0) {
        return NK_EINVAL;
    }
    size_t i = rep_pos(r, rep->region.id);
    rep_ent *e = i < r->n && r->q[i]->rep.region.id == rep->region.id ? r->q[i] : NULL;
    if (e == NULL) {
        if (r->n >= r->cfg.max_reports) {
            return NK_EBUSY;
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            rep_ent **v = realloc(r->q, cap * sizeof(*v));
            if (v == NULL) {
                return NK_ENOMEM;
            }
            r->q = v;
            r->cap = cap;
        }
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            return NK_ENOMEM;
        }
        memmove(r->q + i + 1, r->q + i, (r->n - i) * sizeof(*r->q));
        r->q[i] = e;
        r->n++;
    }
    e->rep = *rep;
    e->seq = ++r->next_seq;
    deliver(r);
    return NK_OK;
}

void nk_coord_reporter_status_get(const nk_coord_reporter *r, nk_coord_reporter_status *st)
{
    *st = r->st;
    st->reports_queued = r->n;
}
