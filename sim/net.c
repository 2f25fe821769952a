/*
 * net.c - the simulated network: ordered connections between nodes.
 *
 * Model (FoundationDB-style stream model, not packets):
 *   - a connection has two directions; everything sent in one direction
 *     (accept, messages, close) is delivered in order, each item no earlier
 *     than now + latency and no earlier than the item before it;
 *   - latency per item: uniform in [lat_min, lat_max], with probability
 *     `tail` uniform in [tail_min, tail_max] (slow packets delay the rest of
 *     the stream, as TCP head-of-line blocking does);
 *   - a partitioned direction holds its items (TCP keeps retransmitting);
 *     they flow again, still in order, when the partition heals. Connects
 *     across a partition fail with NK_ETIMEDOUT after connect_timeout;
 *   - a break (flap, or a node going down) loses everything in flight and
 *     tells each surviving end on_close(NK_ECLOSED) after one latency;
 *   - connect to a node that is down, has no listener on the port, or is
 *     inside a refusal window fails with NK_ECONNREFUSED after a round trip.
 *
 * Addresses are "<node name>:<port>". A node listens on "<any host>:port".
 *
 * Connections are freed with the simulation, not earlier: queued events may
 * still point at them, and a run creates at most a few thousand.
 */
#include "sim/sim_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef enum msg_what {
    MSG_DATA = 1,
    MSG_ACCEPT,       /* dir 0: server side learns of the connection */
    MSG_CONNECTED,    /* dir 1: client's on_connect(NK_OK) */
    MSG_CLOSE,        /* orderly close from the other side */
    MSG_CONNECT_FAIL, /* client's on_connect(error); not ordered */
    MSG_BREAK,        /* connection broke; not ordered */
} msg_what;

typedef struct sim_conn sim_conn;

typedef struct sim_end {
    struct sim_conn *conn; /* the connection this end belongs to */
    int side;              /* 0: client (connector), 1: server */
    uint64_t id;           /* per-node id, 0 until the end exists */
    uint32_t node;
    uint32_t incarnation;
    nk_net_handlers h;
    void *ctx;
    bool open;
    bool connected;
} sim_end;

typedef struct sim_msg {
    struct sim_msg *next; /* held queue link */
    sim_conn *c;
    int dir; /* 0: client -> server, 1: server -> client */
    msg_what what;
    int status;
    uint8_t kind;
    size_t len;
    uint8_t data[];
} sim_msg;

struct sim_conn {
    sim_net *net;
    uint64_t gid;
    nk_conn_mode mode;
    uint16_t port;
    uint16_t client_port;
    sim_end end[2];
    bool broken;
    uint64_t last_at[2];
    size_t inflight[2];
    sim_msg *held_head[2];
    sim_msg *held_tail[2];
    sim_conn *all_next;
};

typedef struct sim_listener {
    uint64_t id;
    uint32_t node;
    uint32_t incarnation;
    uint16_t port;
    nk_net_handlers h;
    void *ctx;
    bool open;
} sim_listener;

struct sim_net {
    nk_sim *s;
    nk_rand rand;
    sim_conn *all;
    uint64_t next_gid;
    sim_listener *listeners;
    size_t listener_count;
    nk_u64map *ends; /* per node (index id-1): end id -> sim_end* */
    uint32_t ends_cap;
    bool *blocked; /* [from * cap + to] */
    uint64_t *refuse_until;
    uint32_t matrix_cap;
    uint16_t next_ephemeral;
};

static void deliver(void *arg);
static void msg_free(void *arg) { free(arg); }

sim_net *sim_net_new(nk_sim *s)
{
    sim_net *net = calloc(1, sizeof(*net));
    if (net == NULL) {
        return NULL;
    }
    net->s = s;
    nk_rand_derive(&net->rand, s->cfg.seed, "sim.net", 0);
    net->next_ephemeral = 40000;
    return net;
}

void sim_net_free(sim_net *net)
{
    if (net == NULL) {
        return;
    }
    sim_conn *c = net->all;
    while (c != NULL) {
        sim_conn *next = c->all_next;
        for (int d = 0; d < 2; d++) {
            sim_msg *m = c->held_head[d];
            while (m != NULL) {
                sim_msg *mn = m->next;
                free(m);
                m = mn;
            }
        }
        free(c);
        c = next;
    }
    for (uint32_t i = 0; i < net->ends_cap; i++) {
        nk_u64map_free(&net->ends[i]);
    }
    free(net->ends);
    free(net->listeners);
    free(net->blocked);
    free(net->refuse_until);
    free(net);
}

/* Grow the per-node tables to cover every node added so far. */
static void ensure_nodes(sim_net *net)
{
    uint32_t n = net->s->node_count;
    if (n > net->ends_cap) {
        nk_u64map *ne = realloc(net->ends, n * sizeof(*ne));
        if (ne == NULL) {
            abort();
        }
        for (uint32_t i = net->ends_cap; i < n; i++) {
            nk_u64map_init(&ne[i]);
        }
        net->ends = ne;
        net->ends_cap = n;
    }
    if (n > net->matrix_cap) {
        bool *nb = calloc((size_t)n * n, sizeof(*nb));
        uint64_t *nr = calloc((size_t)n * n, sizeof(*nr));
        if (nb == NULL || nr == NULL) {
            abort();
        }
        for (uint32_t a = 0; a < net->matrix_cap; a++) {
            for (uint32_t b = 0; b < net->matrix_cap; b++) {
                nb[a * n + b] = net->blocked[a * net->matrix_cap + b];
                nr[a * n + b] = net->refuse_until[a * net->matrix_cap + b];
            }
        }
        free(net->blocked);
        free(net->refuse_until);
        net->blocked = nb;
        net->refuse_until = nr;
        net->matrix_cap = n;
    }
}

static bool *blocked_at(sim_net *net, uint32_t from, uint32_t to)
{
    ensure_nodes(net);
    return &net->blocked[(from - 1) * net->matrix_cap + (to - 1)];
}

static uint64_t *refuse_at(sim_net *net, uint32_t a, uint32_t b)
{
    ensure_nodes(net);
    uint32_t lo = a < b ? a : b;
    uint32_t hi = a < b ? b : a;
    return &net->refuse_until[(lo - 1) * net->matrix_cap + (hi - 1)];
}

static uint64_t latency(sim_net *net)
{
    const nk_sim_config *cfg = &net->s->cfg;
    if (cfg->tail.den != 0 && nk_rand_chance(&net->rand, cfg->tail.num, cfg->tail.den)) {
        return nk_rand_between(&net->rand, cfg->tail_min_ns, cfg->tail_max_ns);
    }
    return nk_rand_between(&net->rand, cfg->lat_min_ns, cfg->lat_max_ns);
}

static sim_node *node_of(sim_net *net, uint32_t id) { return sim_node_get(net->s, id); }

static sim_msg *msg_new(sim_conn *c, int dir, msg_what what, const void *data, size_t len)
{
    sim_msg *m = calloc(1, sizeof(*m) + len);
    if (m == NULL) {
        abort();
    }
    m->c = c;
    m->dir = dir;
    m->what = what;
    m->len = len;
    if (len > 0) {
        memcpy(m->data, data, len);
    }
    return m;
}

/* Schedule m to reach the receiving node at time t (bypassing ordering). */
static void schedule_at(sim_net *net, sim_msg *m, uint32_t to_node, uint64_t t)
{
    sim_node *n = node_of(net, to_node);
    sim_event *ev = sim_event_new(net->s, t, SIM_EV_NET, n);
    ev->node_fn = deliver;
    ev->arg = m;
    ev->free_fn = msg_free;
    ev->id = m->c->gid;
    sim_schedule(net->s, ev);
}

/* Send an ordered item in direction m->dir. */
static void dir_send(sim_net *net, sim_msg *m)
{
    sim_conn *c = m->c;
    int d = m->dir;
    uint32_t from = c->end[d].node;
    uint32_t to = c->end[1 - d].node;
    if (c->held_head[d] != NULL || *blocked_at(net, from, to)) {
        if (c->held_tail[d] != NULL) {
            c->held_tail[d]->next = m;
        } else {
            c->held_head[d] = m;
        }
        c->held_tail[d] = m;
        return;
    }
    uint64_t t = net->s->now + latency(net);
    if (t < c->last_at[d]) {
        t = c->last_at[d];
    }
    c->last_at[d] = t;
    schedule_at(net, m, to, t);
}

/* Release held items of c in every direction that is no longer blocked. */
static void flush_held(sim_net *net, sim_conn *c)
{
    for (int d = 0; d < 2; d++) {
        uint32_t from = c->end[d].node;
        uint32_t to = c->end[1 - d].node;
        if (c->held_head[d] == NULL || *blocked_at(net, from, to)) {
            continue;
        }
        sim_msg *m = c->held_head[d];
        c->held_head[d] = NULL;
        c->held_tail[d] = NULL;
        while (m != NULL) {
            sim_msg *next = m->next;
            m->next = NULL;
            if (c->broken) {
                free(m);
            } else {
                dir_send(net, m);
            }
            m = next;
        }
    }
}

static sim_end *end_lookup(sim_net *net, sim_node *n, uint64_t id)
{
    ensure_nodes(net);
    return nk_u64map_get(&net->ends[n->id - 1], id);
}

static void end_register(sim_net *net, sim_end *e)
{
    ensure_nodes(net);
    if (nk_u64map_put(&net->ends[e->node - 1], e->id, e) != NK_OK) {
        abort();
    }
}

static void end_unregister(sim_net *net, sim_end *e)
{
    if (e->id != 0) {
        nk_u64map_del(&net->ends[e->node - 1], e->id);
    }
    e->open = false;
}


/* Break c: in-flight data is lost; surviving ends learn after a latency. */
static void conn_break(sim_net *net, sim_conn *c, const char *why)
{
    if (c->broken) {
        return;
    }
    c->broken = true;
    nk_sim_trace(net->s, "net.break conn=%" PRIu64 " %s", c->gid, why);
    for (int d = 0; d < 2; d++) {
        sim_msg *m = c->held_head[d];
        while (m != NULL) {
            sim_msg *next = m->next;
            free(m);
            m = next;
        }
        c->held_head[d] = NULL;
        c->held_tail[d] = NULL;
        c->inflight[d] = 0;
    }
    for (int side = 0; side < 2; side++) {
        sim_end *e = &c->end[side];
        if (!e->open) {
            continue;
        }
        sim_msg *m;
        if (side == 0 && !e->connected) {
            m = msg_new(c, 1, MSG_CONNECT_FAIL, NULL, 0);
            m->status = NK_ECONNREFUSED;
        } else {
            m = msg_new(c, 1 - side, MSG_BREAK, NULL, 0);
            m->status = NK_ECLOSED;
        }
        schedule_at(net, m, e->node, net->s->now + latency(net));
    }
}

/* ------------------------------------------------------------ delivery --- */

static void deliver_data(sim_net *net, sim_conn *c, sim_end *e, sim_msg *m)
{
    c->inflight[m->dir] -= m->len <= c->inflight[m->dir] ? m->len : c->inflight[m->dir];
    /* "%s net.recv conn=%" PRIu64 " kind=%u len=%zu h=%016" PRIx64, without printf */
    sim_tb tb;
    tb.n = 0; /* no initializer: it would zero all 1024 bytes per event */
    sim_tb_str(&tb, node_of(net, e->node)->name);
    sim_tb_str(&tb, " net.recv conn=");
    sim_tb_num(&tb, c->gid, false);
    sim_tb_str(&tb, " kind=");
    sim_tb_num(&tb, m->kind, false);
    sim_tb_str(&tb, " len=");
    sim_tb_num(&tb, m->len, false);
    sim_tb_str(&tb, " h=");
    sim_tb_num(&tb, (uint64_t)XXH3_64bits(m->data, m->len), true);
    sim_trace_tb(net->s, &tb);
    if (c->mode == NK_CONN_RAW && m->len > 1 && nk_rand_chance(&net->rand, 1, 4)) {
        /* Raw streams have no message boundaries: split a chunk so parsers
         * meet partial input, as they would on a real socket. */
        size_t cut = (size_t)nk_rand_between(&net->rand, 1, m->len - 1);
        uint64_t id = e->id;
        uint32_t inc = e->incarnation;
        e->h.on_message(e->ctx, id, NK_FRAME_RAW, m->data, cut);
        /* the first piece may have closed the end or crashed the node */
        if (e->open && !c->broken && e->id == id && e->incarnation == inc &&
            sim_node_alive(node_of(net, e->node))) {
            e->h.on_message(e->ctx, id, NK_FRAME_RAW, m->data + cut, m->len - cut);
        }
        return;
    }
    e->h.on_message(e->ctx, e->id, m->kind, m->data, m->len);
}

static void deliver_accept(sim_net *net, sim_conn *c)
{
    sim_end *srv = &c->end[1];
    sim_node *n = node_of(net, srv->node);
    sim_listener *l = NULL;
    for (size_t i = 0; i < net->listener_count; i++) {
        sim_listener *cand = &net->listeners[i];
        if (cand->open && cand->node == n->id && cand->incarnation == n->incarnation &&
            cand->port == c->port) {
            l = cand;
            break;
        }
    }
    if (l == NULL) {
        /* nobody listens any more: the client sees a refusal */
        sim_msg *f = msg_new(c, 1, MSG_CONNECT_FAIL, NULL, 0);
        f->status = NK_ECONNREFUSED;
        schedule_at(net, f, c->end[0].node, net->s->now + latency(net));
        c->broken = true;
        return;
    }
    srv->id = ++n->next_id;
    srv->incarnation = n->incarnation;
    srv->h = l->h;
    srv->ctx = l->ctx;
    srv->open = true;
    srv->connected = true;
    end_register(net, srv);
    char peer[48];
    snprintf(peer, sizeof(peer), "%s:%u", node_of(net, c->end[0].node)->name, c->client_port);
    nk_sim_trace(net->s, "%s net.accept conn=%" PRIu64 " from %s", n->name, c->gid, peer);
    /* the client learns it is connected after the reply crosses back */
    dir_send(net, msg_new(c, 1, MSG_CONNECTED, NULL, 0));
    if (l->h.on_accept != NULL) {
        l->h.on_accept(l->ctx, l->id, srv->id, peer);
    }
}

static void deliver(void *arg)
{
    sim_msg *m = arg;
    sim_conn *c = m->c;
    sim_net *net = c->net;
    /* Items travelling in direction d are for end 1-d; failure notices name
     * their target end the same way (see conn_break). */
    int to = 1 - m->dir;
    sim_end *e = &c->end[to];
    sim_node *n = node_of(net, e->node);

    if (m->what == MSG_ACCEPT) {
        if (!c->broken) {
            deliver_accept(net, c);
        }
        free(m);
        return;
    }
    /* The end must still exist in the incarnation that created it. */
    if (!e->open || e->incarnation != n->incarnation || !sim_node_alive(n)) {
        free(m);
        return;
    }
    switch (m->what) {
    case MSG_DATA:
        if (!c->broken) {
            deliver_data(net, c, e, m);
        }
        break;
    case MSG_CONNECTED:
        if (!c->broken) {
            e->connected = true;
            nk_sim_trace(net->s, "%s net.connected conn=%" PRIu64, n->name, c->gid);
            if (e->h.on_connect != NULL) {
                e->h.on_connect(e->ctx, e->id, NK_OK);
            }
        }
        break;
    case MSG_CONNECT_FAIL: {
        uint64_t id = e->id;
        end_unregister(net, e);
        nk_sim_trace(net->s, "%s net.connect_fail conn=%" PRIu64 " %s", n->name, c->gid,
                     nk_errname(m->status));
        if (e->h.on_connect != NULL) {
            e->h.on_connect(e->ctx, id, m->status);
        }
        break;
    }
    case MSG_CLOSE:
    case MSG_BREAK: {
        if (m->what == MSG_CLOSE && c->broken) {
            break; /* the break notice will (or did) report it */
        }
        uint64_t id = e->id;
        end_unregister(net, e);
        int reason = m->what == MSG_BREAK ? m->status : NK_ECLOSED;
        nk_sim_trace(net->s, "%s net.closed conn=%" PRIu64 " %s", n->name, c->gid,
                     nk_errname(reason));
        if (e->h.on_close != NULL) {
            e->h.on_close(e->ctx, id, reason);
        }
        break;
    }
    default:
        break;
    }
    free(m);
}

/* ------------------------------------------------------------- the API --- */

static int parse_addr(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hostlen) {
        return NK_EADDR;
    }
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p > 65535) {
        return NK_EADDR;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (uint16_t)p;
    return NK_OK;
}

int sim_net_listen(sim_node *n, const char *addr, const nk_net_handlers *h, void *ctx,
                   uint64_t *listener_id)
{
    sim_net *net = n->sim->net;
    char host[64];
    uint16_t port;
    int rc = parse_addr(addr, host, sizeof(host), &port);
    if (rc != NK_OK) {
        return rc;
    }
    /* A node may name itself, or any local/wildcard host, as on a machine. */
    if (strcmp(host, n->name) != 0 && strcmp(host, "127.0.0.1") != 0 &&
        strcmp(host, "0.0.0.0") != 0 && strcmp(host, "localhost") != 0) {
        return NK_EADDR;
    }
    if (port == 0) {
        port = net->next_ephemeral++;
    }
    for (size_t i = 0; i < net->listener_count; i++) {
        sim_listener *l = &net->listeners[i];
        if (l->open && l->node == n->id && l->port == port) {
            return NK_EADDR;
        }
    }
    sim_listener *nl = realloc(net->listeners, (net->listener_count + 1) * sizeof(*nl));
    if (nl == NULL) {
        return NK_ENOMEM;
    }
    net->listeners = nl;
    sim_listener *l = &net->listeners[net->listener_count++];
    memset(l, 0, sizeof(*l));
    l->id = ++n->next_id;
    l->node = n->id;
    l->incarnation = n->incarnation;
    l->port = port;
    l->h = *h;
    l->ctx = ctx;
    l->open = true;
    *listener_id = l->id;
    nk_sim_trace(n->sim, "%s net.listen port=%u", n->name, port);
    return NK_OK;
}

static sim_listener *listener_find(sim_net *net, sim_node *n, uint64_t id)
{
    for (size_t i = 0; i < net->listener_count; i++) {
        sim_listener *l = &net->listeners[i];
        if (l->open && l->node == n->id && l->id == id && l->incarnation == n->incarnation) {
            return l;
        }
    }
    return NULL;
}

int sim_net_listener_addr(sim_node *n, uint64_t listener_id, char *buf, size_t len)
{
    sim_listener *l = listener_find(n->sim->net, n, listener_id);
    if (l == NULL) {
        return NK_ENOENT;
    }
    int w = snprintf(buf, len, "%s:%u", n->name, l->port);
    return (w < 0 || (size_t)w >= len) ? NK_ERANGE : NK_OK;
}

int sim_net_listener_close(sim_node *n, uint64_t listener_id)
{
    sim_listener *l = listener_find(n->sim->net, n, listener_id);
    if (l == NULL) {
        return NK_ENOENT;
    }
    l->open = false;
    return NK_OK;
}

int sim_net_connect(sim_node *n, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                    void *ctx, uint64_t *conn)
{
    sim_net *net = n->sim->net;
    char host[64];
    uint16_t port;
    int rc = parse_addr(addr, host, sizeof(host), &port);
    if (rc != NK_OK) {
        return rc;
    }
    uint32_t target = nk_sim_node_by_name(n->sim, host);
    if (target == 0) {
        return NK_EADDR; /* an unresolvable host name */
    }
    sim_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NK_ENOMEM;
    }
    c->net = net;
    c->gid = ++net->next_gid;
    c->mode = mode;
    c->port = port;
    c->client_port = net->next_ephemeral++;
    c->all_next = net->all;
    net->all = c;
    for (int side = 0; side < 2; side++) {
        c->end[side].conn = c;
        c->end[side].side = side;
    }
    sim_end *cl = &c->end[0];
    cl->id = ++n->next_id;
    cl->node = n->id;
    cl->incarnation = n->incarnation;
    cl->h = *h;
    cl->ctx = ctx;
    cl->open = true;
    c->end[1].node = target;
    end_register(net, cl);
    *conn = cl->id;
    nk_sim_trace(n->sim, "%s net.connect conn=%" PRIu64 " to %s", n->name, c->gid, addr);

    sim_node *tn = node_of(net, target);
    bool listening = false;
    for (size_t i = 0; i < net->listener_count; i++) {
        sim_listener *l = &net->listeners[i];
        if (l->open && l->node == target && l->port == port &&
            l->incarnation == tn->incarnation) {
            listening = true;
        }
    }
    if (*blocked_at(net, n->id, target) || *blocked_at(net, target, n->id)) {
        sim_msg *f = msg_new(c, 1, MSG_CONNECT_FAIL, NULL, 0);
        f->status = NK_ETIMEDOUT;
        c->broken = true;
        schedule_at(net, f, n->id, n->sim->now + n->sim->cfg.connect_timeout_ns);
        return NK_OK;
    }
    if (!sim_node_alive(tn) || !listening || *refuse_at(net, n->id, target) > n->sim->now) {
        sim_msg *f = msg_new(c, 1, MSG_CONNECT_FAIL, NULL, 0);
        f->status = NK_ECONNREFUSED;
        c->broken = true;
        schedule_at(net, f, n->id, n->sim->now + 2 * latency(net));
        return NK_OK;
    }
    dir_send(net, msg_new(c, 0, MSG_ACCEPT, NULL, 0));
    return NK_OK;
}

int sim_net_send(sim_node *n, uint64_t conn, uint8_t kind, const void *data, size_t len)
{
    sim_net *net = n->sim->net;
    sim_end *e = end_lookup(net, n, conn);
    if (e == NULL || !e->open) {
        return NK_ECLOSED;
    }
    sim_conn *c = e->conn;
    if (kind == NK_FRAME_RAW && c->mode != NK_CONN_RAW) {
        return NK_EINVAL;
    }
    if (kind != NK_FRAME_RAW && c->mode != NK_CONN_FRAMED) {
        return NK_EINVAL;
    }
    if (c->broken) {
        return NK_OK; /* lost; on_close is on its way, as with a real socket */
    }
    int d = e->side;
    sim_msg *m = msg_new(c, d, MSG_DATA, data, len);
    m->kind = kind;
    c->inflight[d] += len;
    dir_send(net, m);
    return NK_OK;
}

size_t sim_net_pending(sim_node *n, uint64_t conn)
{
    sim_end *e = end_lookup(n->sim->net, n, conn);
    if (e == NULL) {
        return 0;
    }
    sim_conn *c = e->conn;
    return c->inflight[e->side];
}

int sim_net_close(sim_node *n, uint64_t conn)
{
    sim_net *net = n->sim->net;
    sim_end *e = end_lookup(net, n, conn);
    if (e == NULL) {
        return NK_ENOENT;
    }
    sim_conn *c = e->conn;
    int d = e->side;
    bool was_connected = e->connected;
    end_unregister(net, e);
    nk_sim_trace(n->sim, "%s net.close conn=%" PRIu64, n->name, c->gid);
    if (c->broken) {
        return NK_OK;
    }
    /* Closing a connect in progress is fine: the server may still accept,
     * and then sees the close right after, in order. */
    (void)was_connected;
    dir_send(net, msg_new(c, d, MSG_CLOSE, NULL, 0));
    return NK_OK;
}

void sim_net_node_down(nk_sim *s, sim_node *n)
{
    sim_net *net = s->net;
    for (size_t i = 0; i < net->listener_count; i++) {
        if (net->listeners[i].node == n->id) {
            net->listeners[i].open = false;
        }
    }
    for (sim_conn *c = net->all; c != NULL; c = c->all_next) {
        bool involved = false;
        for (int side = 0; side < 2; side++) {
            sim_end *e = &c->end[side];
            if (e->node == n->id) {
                involved = true;
                if (e->open) {
                    end_unregister(net, e); /* a dead process gets no callbacks */
                }
            }
        }
        if (involved) {
            conn_break(net, c, "node down");
        }
    }
    ensure_nodes(net);
    nk_u64map_free(&net->ends[n->id - 1]);
}

/* -------------------------------------------------------- fault control --- */

void nk_sim_net_partition(nk_sim *s, uint32_t a, uint32_t b, bool oneway)
{
    if (sim_node_get(s, a) == NULL || sim_node_get(s, b) == NULL || a == b) {
        return;
    }
    nk_sim_cover(s, oneway ? "fault.partition-oneway" : "fault.partition", 1);
    *blocked_at(s->net, a, b) = true;
    if (!oneway) {
        *blocked_at(s->net, b, a) = true;
    }
    nk_sim_trace(s, "net.partition %s %s %s", nk_sim_node_name(s, a), oneway ? "->" : "<->",
                 nk_sim_node_name(s, b));
}

static void flush_all(nk_sim *s)
{
    for (sim_conn *c = s->net->all; c != NULL; c = c->all_next) {
        if (!c->broken) {
            flush_held(s->net, c);
        }
    }
}

void nk_sim_net_heal(nk_sim *s, uint32_t a, uint32_t b)
{
    if (sim_node_get(s, a) == NULL || sim_node_get(s, b) == NULL || a == b) {
        return;
    }
    *blocked_at(s->net, a, b) = false;
    *blocked_at(s->net, b, a) = false;
    nk_sim_trace(s, "net.heal %s %s", nk_sim_node_name(s, a), nk_sim_node_name(s, b));
    flush_all(s);
}

void nk_sim_net_heal_all(nk_sim *s)
{
    ensure_nodes(s->net);
    memset(s->net->blocked, 0, (size_t)s->net->matrix_cap * s->net->matrix_cap);
    nk_sim_trace(s, "net.heal_all");
    flush_all(s);
}

bool nk_sim_net_blocked(nk_sim *s, uint32_t from, uint32_t to)
{
    if (sim_node_get(s, from) == NULL || sim_node_get(s, to) == NULL || from == to) {
        return false;
    }
    return *blocked_at(s->net, from, to);
}

void nk_sim_net_break(nk_sim *s, uint32_t a, uint32_t b)
{
    nk_sim_cover(s, "fault.link-break", 1);
    for (sim_conn *c = s->net->all; c != NULL; c = c->all_next) {
        uint32_t x = c->end[0].node;
        uint32_t y = c->end[1].node;
        bool match = b == 0 ? (x == a || y == a) : ((x == a && y == b) || (x == b && y == a));
        if (match && !c->broken && (c->end[0].open || c->end[1].open)) {
            conn_break(s->net, c, "flap");
        }
    }
}

void nk_sim_net_refuse_until(nk_sim *s, uint32_t a, uint32_t b, uint64_t until_ns)
{
    if (sim_node_get(s, a) == NULL || sim_node_get(s, b) == NULL || a == b) {
        return;
    }
    nk_sim_cover(s, "fault.connect-refused", 1);
    *refuse_at(s->net, a, b) = until_ns;
}
