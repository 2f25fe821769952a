/*
 * transport.c - raft messages between stores over framed connections
 * (see transport.h for the contract).
 */
#include "nokv/store/transport.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/util/u64map.h"

#define BACKOFF_MIN_NS (20 * NK_NSEC_PER_MSEC)
#define BACKOFF_MAX_NS (2 * NK_NSEC_PER_SEC)
#define DEFAULT_PENDING_LIMIT (4u << 20)

typedef struct out_conn {
    uint64_t store_id;
    uint64_t conn;        /* 0 when none */
    uint64_t next_try_ns; /* do not dial before this (node-local time) */
    uint64_t backoff_ns;  /* current backoff step */
} out_conn;

typedef struct in_conn {
    bool hello_ok;
} in_conn;

struct nk_transport {
    nk_rt *rt;
    nk_transport_options o;
    char addr[NK_HELLO_ADDR_MAX];
    char client_addr[NK_HELLO_ADDR_MAX];
    nk_rand rand;
    out_conn *outs;
    size_t n_outs, cap_outs;
    nk_u64map in; /* conn -> in_conn */
    nk_buf buf;   /* encoding scratch */
    nk_transport_stats st;
};

static void out_on_connect(void *ctx, uint64_t conn, int status);
static void out_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len);
static void out_on_close(void *ctx, uint64_t conn, int reason);

static const nk_net_handlers out_handlers = {
    .on_connect = out_on_connect,
    .on_message = out_on_message,
    .on_close = out_on_close,
};

int nk_transport_new(nk_rt *rt, const nk_transport_options *o, nk_transport **out)
{
    nk_transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NK_ENOMEM;
    }
    t->rt = rt;
    t->o = *o;
    if (t->o.pending_limit == 0) {
        t->o.pending_limit = DEFAULT_PENDING_LIMIT;
    }
    if (o->advertise_addr != NULL) {
        strncpy(t->addr, o->advertise_addr, sizeof(t->addr) - 1);
    }
    t->o.advertise_addr = t->addr;
    if (o->client_addr != NULL) {
        strncpy(t->client_addr, o->client_addr, sizeof(t->client_addr) - 1);
    }
    t->o.client_addr = t->client_addr;
    nk_rt_rand_stream(rt, "store.transport", &t->rand);
    nk_u64map_init(&t->in);
    *out = t;
    return NK_OK;
}

void nk_transport_free(nk_transport *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_outs; i++) {
        if (t->outs[i].conn != 0) {
            (void)nk_rt_close(t->rt, t->outs[i].conn);
        }
    }
    size_t pos = 0;
    uint64_t conn;
    void *v;
    while (nk_u64map_next(&t->in, &pos, &conn, &v)) {
        (void)nk_rt_close(t->rt, conn);
        free(v);
    }
    nk_u64map_free(&t->in);
    free(t->outs);
    free(t->buf.data);
    free(t);
}

/* ------------------------------------------------------------ outgoing --- */

static out_conn *out_for_store(nk_transport *t, uint64_t store_id)
{
    for (size_t i = 0; i < t->n_outs; i++) {
        if (t->outs[i].store_id == store_id) {
            return &t->outs[i];
        }
    }
    if (t->n_outs == t->cap_outs) {
        size_t ncap = t->cap_outs ? t->cap_outs * 2 : 8;
        out_conn *n = realloc(t->outs, ncap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        t->outs = n;
        t->cap_outs = ncap;
    }
    out_conn *o = &t->outs[t->n_outs++];
    memset(o, 0, sizeof(*o));
    o->store_id = store_id;
    return o;
}

static out_conn *out_by_conn(nk_transport *t, uint64_t conn)
{
    for (size_t i = 0; i < t->n_outs; i++) {
        if (t->outs[i].conn == conn) {
            return &t->outs[i];
        }
    }
    return NULL;
}

/* The connection broke or never came up: wait before dialling again, with
 * jitter so two stores do not retry in lockstep. */
static void backoff(nk_transport *t, out_conn *o)
{
    o->conn = 0;
    o->backoff_ns = o->backoff_ns == 0 ? BACKOFF_MIN_NS : o->backoff_ns * 2;
    if (o->backoff_ns > BACKOFF_MAX_NS) {
        o->backoff_ns = BACKOFF_MAX_NS;
    }
    uint64_t jitter = nk_rand_below(&t->rand, o->backoff_ns / 2 + 1);
    o->next_try_ns = nk_rt_now(t->rt) + o->backoff_ns / 2 + jitter;
}

static void out_on_connect(void *ctx, uint64_t conn, int status)
{
    nk_transport *t = ctx;
    out_conn *o = out_by_conn(t, conn);
    if (o == NULL) {
        return;
    }
    if (status != NK_OK) {
        backoff(t, o);
        return;
    }
    o->backoff_ns = 0; /* a good connection resets the backoff */
}

static void out_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    /* Nothing is expected back on a raft connection: replies travel on the
     * other store's own connection to us. */
    (void)ctx;
    (void)conn;
    (void)kind;
    (void)data;
    (void)len;
}

static void out_on_close(void *ctx, uint64_t conn, int reason)
{
    nk_transport *t = ctx;
    (void)reason;
    out_conn *o = out_by_conn(t, conn);
    if (o != NULL) {
        backoff(t, o);
    }
}

static int dial(nk_transport *t, out_conn *o)
{
    char addr[NK_HELLO_ADDR_MAX];
    int rc = t->o.resolve(t->o.resolve_ctx, o->store_id, addr, sizeof(addr));
    if (rc != NK_OK) {
        return NK_ENOENT;
    }
    uint64_t conn = 0;
    rc = nk_rt_connect(t->rt, addr, NK_CONN_FRAMED, &out_handlers, t, &conn);
    if (rc != NK_OK) {
        backoff(t, o);
        return NK_EAGAIN;
    }
    t->st.dials++;
    nk_hello h = {
        .service = NK_SERVICE_RAFT, .cluster_id = t->o.cluster_id, .store_id = t->o.store_id};
    memcpy(h.addr, t->addr, sizeof(h.addr));
    memcpy(h.client_addr, t->client_addr, sizeof(h.client_addr));
    rc = nk_hello_encode(&h, &t->buf);
    if (rc == NK_OK) {
        rc = nk_rt_send(t->rt, conn, NK_KIND_HELLO, t->buf.data, t->buf.len);
    }
    if (rc != NK_OK) {
        (void)nk_rt_close(t->rt, conn);
        backoff(t, o);
        return NK_EAGAIN;
    }
    o->conn = conn;
    return NK_OK;
}

int nk_transport_send(nk_transport *t, const nk_raftmsg_hdr *h, const nk_raft_msg *m)
{
    out_conn *o = out_for_store(t, h->to_store);
    if (o == NULL) {
        return NK_ENOMEM;
    }
    int rc = NK_OK;
    if (o->conn == 0) {
        rc = nk_rt_now(t->rt) < o->next_try_ns ? NK_EAGAIN : dial(t, o);
    }
    if (rc == NK_OK && nk_rt_conn_pending(t->rt, o->conn) > t->o.pending_limit) {
        rc = NK_EAGAIN;
    }
    if (rc == NK_OK) {
        rc = nk_raftmsg_encode(h, m, &t->buf);
    }
    if (rc == NK_OK) {
        rc = nk_rt_send(t->rt, o->conn, NK_KIND_RAFT_MSG, t->buf.data, t->buf.len);
        if (rc == NK_ECLOSED) {
            backoff(t, o);
        }
    }
    if (rc == NK_OK) {
        t->st.sent++;
        return NK_OK;
    }
    t->st.dropped++;
    if (m->type == NK_RAFT_MSG_SNAPSHOT && t->o.unreachable != NULL) {
        t->o.unreachable(t->o.ctx, h->region_id, m->to);
    }
    return rc;
}

/* ------------------------------------------------------------ incoming --- */

void nk_transport_accept(nk_transport *t, uint64_t conn)
{
    in_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || nk_u64map_put(&t->in, conn, c) != NK_OK) {
        free(c);
        (void)nk_rt_close(t->rt, conn);
    }
}

static void drop_in(nk_transport *t, uint64_t conn)
{
    free(nk_u64map_del(&t->in, conn));
    (void)nk_rt_close(t->rt, conn);
    t->st.bad_frames++;
}

bool nk_transport_on_message(nk_transport *t, uint64_t conn, uint8_t kind, const uint8_t *data,
                             size_t len)
{
    in_conn *c = nk_u64map_get(&t->in, conn);
    if (c == NULL) {
        return false;
    }
    if (!c->hello_ok) {
        nk_hello h;
        if (kind != NK_KIND_HELLO || nk_hello_decode(data, len, &h) != NK_OK ||
            h.service != NK_SERVICE_RAFT ||
            (h.cluster_id != 0 && t->o.cluster_id != 0 && h.cluster_id != t->o.cluster_id)) {
            nk_log(t->rt, NK_LOG_WARN, "transport: conn %llu: bad or foreign HELLO; closing",
                   (unsigned long long)conn);
            drop_in(t, conn);
            return true;
        }
        c->hello_ok = true;
        if (t->o.learn != NULL && h.store_id != 0 && h.addr[0] != '\0') {
            t->o.learn(t->o.ctx, h.store_id, h.addr, h.client_addr);
        }
        return true;
    }
    nk_raftmsg_hdr h;
    nk_raft_msg m;
    if (kind != NK_KIND_RAFT_MSG || nk_raftmsg_decode(data, len, &h, &m) != NK_OK) {
        nk_log(t->rt, NK_LOG_WARN,
               "transport: conn %llu: malformed raft frame (kind %u, %zu bytes); closing",
               (unsigned long long)conn, kind, len);
        drop_in(t, conn);
        return true;
    }
    if (h.to_store != t->o.store_id) {
        nk_log(t->rt, NK_LOG_WARN,
               "transport: message for store %llu arrived at store %llu; dropped",
               (unsigned long long)h.to_store, (unsigned long long)t->o.store_id);
        nk_raft_msg_clear(&m);
        return true;
    }
    t->st.received++;
    t->o.deliver(t->o.ctx, &h, &m);
    nk_raft_msg_clear(&m);
    return true;
}

bool nk_transport_on_close(nk_transport *t, uint64_t conn)
{
    in_conn *c = nk_u64map_del(&t->in, conn);
    free(c);
    return c != NULL;
}

bool nk_transport_has_conn(const nk_transport *t, uint64_t conn)
{
    return nk_u64map_get(&t->in, conn) != NULL;
}

void nk_transport_stats_get(const nk_transport *t, nk_transport_stats *st)
{
    *st = t->st;
}
