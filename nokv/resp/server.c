/*
 * server.c - RESP server on the runtime (see server.h).
 *
 * Per connection, replies wait in a FIFO of slots. A slot is either ready
 * (bytes to send; consecutive ready replies share one slot) or tied to a
 * write whose done has not fired. flush() sends ready slots from the head
 * and stops at the first waiting one. A waiting slot whose connection goes
 * away is detached (c == NULL) and parked on the server's orphan list until
 * its done frees it; when the server itself is freed, orphans forget the
 * server too, so a late done touches nothing but its own slot.
 */
#include "nokv/resp/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/util/u64map.h"

typedef struct conn conn;

typedef struct slot {
    struct slot *next;          /* connection FIFO */
    struct slot *oprev, *onext; /* orphan list */
    conn *c;                    /* NULL once detached */
    nk_resp_server *srv;        /* NULL once the server is freed */
    nk_resp_buf buf;
    bool write;   /* tied to a write, or to a read barrier */
    bool read;    /* the completion is a read barrier (backend.h) */
    bool fired;   /* its done ran */
    bool counted; /* counted in writes_pending */
    bool relay;   /* its reply comes from the upstream server (relay) */
    int status;
} slot;

struct conn {
    uint64_t id;
    nk_resp_server *srv;
    nk_resp_parser *parser;
    nk_resp_session *sess; /* client name, MULTI queue (commands.h) */
    slot *head, *tail;
    size_t held;     /* reply bytes in slots */
    bool in_process; /* inside process(): completions only mark slots */
    size_t inflight; /* slots waiting for a completion (write, barrier, relay) */
    bool stalled;    /* stopped parsing at the in-flight limit: resume on completions */
    bool closing;    /* close once the FIFO is empty; ignore input */
    /* Relay (backend.h route): requests go to `up`, a raw connection to the
     * server that holds the data, replies come back into up_in and fill the
     * relay slots in order. relaying = new requests are relayed; after an
     * upstream TRYAGAIN it stops and the connection routes afresh once the
     * relayed requests are answered. */
    uint64_t up;
    bool relaying;
    size_t up_pending; /* relayed requests not answered yet */
    nk_resp_buf up_in;
    char up_addr[128];
};

struct nk_resp_server {
    nk_rt *rt;
    nk_kv_backend *be;
    nk_resp_db *db;
    nk_resp_server_options opt;
    uint64_t listener;
    bool stopped;
    nk_u64map conns;
    nk_u64map ups; /* upstream connection id -> conn */
    slot *orphans;
    nk_resp_buf scratch; /* reply of the command being executed */
    slot *spare;         /* freed slots kept for reuse (next links them) */
    size_t nspare;
};

static void conn_destroy(conn *c, bool close_socket);
static void flush(conn *c);
static bool process(conn *c);

/* Requests of one connection waiting for a completion before the server
 * stops reading more of its pipeline. */
#define NK_RESP_MAX_INFLIGHT 1024
/* Every request takes a slot for the time it runs (and a write keeps it
 * until its done): reusing them saves a calloc and a free per request. */
#define SPARE_SLOTS 256
#define SPARE_BUF_MAX 4096 /* a spare keeps a reply buffer up to this size */

/* ------------------------------------------------------------ slots --- */

static slot *slot_new(conn *c)
{
    nk_resp_server *srv = c->srv;
    slot *s = srv->spare;
    if (s != NULL) {
        srv->spare = s->next;
        srv->nspare--;
        nk_resp_buf b = s->buf;
        nk_resp_buf_reset(&b);
        memset(s, 0, sizeof(*s));
        s->buf = b;
    } else {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            return NULL;
        }
        nk_resp_buf_init(&s->buf);
    }
    s->c = c;
    s->srv = srv;
    return s;
}

static void slot_free(slot *s)
{
    nk_resp_server *srv = s->srv;
    if (srv != NULL && srv->nspare < SPARE_SLOTS && s->buf.cap <= SPARE_BUF_MAX) {
        s->next = srv->spare;
        srv->spare = s;
        srv->nspare++;
        return;
    }
    nk_resp_buf_free(&s->buf);
    free(s);
}

static void link_tail(conn *c, slot *s)
{
    s->next = NULL;
    if (c->tail) {
        c->tail->next = s;
    } else {
        c->head = s;
    }
    c->tail = s;
}

/* Remove the tail slot (the one just linked). */
static void unlink_tail(conn *c, slot *s)
{
    if (c->head == s) {
        c->head = c->tail = NULL;
        return;
    }
    slot *p = c->head;
    while (p->next != s) {
        p = p->next;
    }
    p->next = NULL;
    c->tail = p;
}

static bool slot_ready(const slot *s)
{
    return !s->write || s->fired;
}

static void orphan_remove(nk_resp_server *srv, slot *s)
{
    if (s->oprev) {
        s->oprev->onext = s->onext;
    } else if (srv != NULL) {
        srv->orphans = s->onext;
    }
    if (s->onext) {
        s->onext->oprev = s->oprev;
    }
}

/* Durability completion of the write a slot is waiting for. */
static void slot_done(void *arg, int status)
{
    slot *s = arg;
    s->fired = true;
    s->status = status;
    if (s->c != NULL && s->c->inflight > 0) {
        s->c->inflight--;
    }
    nk_resp_server *srv = s->srv;
    if (srv != NULL) {
        nk_resp_stats *st = nk_resp_db_stats(srv->db);
        if (s->counted) {
            st->writes_pending--;
        }
        if (status != NK_OK && s->read) {
            nk_log(srv->rt, NK_LOG_INFO, "resp: read not confirmed: %s", nk_errname(status));
        } else if (status != NK_OK) {
            st->write_errors++;
            nk_log(srv->rt, NK_LOG_WARN, "resp: write not confirmed durable: %s",
                   nk_errname(status));
        }
    }
    if (s->c == NULL) {
        orphan_remove(srv, s);
        slot_free(s);
        return;
    }
    /* Inside process() the connection flushes when it is done; completing
     * here (possibly within another connection's request) is safe. */
    if (!s->c->in_process) {
        flush(s->c);
    }
}

/* --------------------------------------------------------- connection --- */

static void close_for_output_limit(conn *c)
{
    nk_resp_server *srv = c->srv;
    nk_resp_db_stats(srv->db)->output_limit_disconnects++;
    nk_log(srv->rt, NK_LOG_WARN,
           "resp: closing conn %llu: client output over %zu bytes (client not reading)",
           (unsigned long long)c->id, srv->opt.max_output_bytes);
    conn_destroy(c, true);
}

/* Send ready replies from the head; close when asked to and drained.
 * May destroy c. */
static void flush(conn *c)
{
    nk_resp_server *srv = c->srv;
    nk_resp_stats *st = nk_resp_db_stats(srv->db);
    while (c->head != NULL && slot_ready(c->head)) {
        slot *s = c->head;
        c->head = s->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        c->held -= s->buf.len;
        const uint8_t *data = s->buf.data;
        size_t len = s->buf.len;
        char err[256];
        if (s->write && s->status != NK_OK) {
            /* The reply promised success; durability (or, behind a read
             * barrier, whether the read was current) is unknown instead. */
            if (s->read) {
                nk_resp_read_error(s->status, err + 1, sizeof(err) - 3);
            } else {
                nk_resp_write_error(s->status, err + 1, sizeof(err) - 3);
            }
            err[0] = '-';
            size_t n = strlen(err);
            err[n] = '\r';
            err[n + 1] = '\n';
            data = (const uint8_t *)err;
            len = n + 2;
            st->error_replies++;
        }
        int rc = len ? nk_rt_send_raw(srv->rt, c->id, data, len) : NK_OK;
        slot_free(s);
        if (rc != NK_OK) {
            conn_destroy(c, true);
            return;
        }
        st->net_output_bytes += len;
    }
    if (c->closing && c->head == NULL) {
        conn_destroy(c, true);
        return;
    }
    if (c->stalled && !c->in_process && c->inflight < NK_RESP_MAX_INFLIGHT / 2) {
        (void)process(c); /* may destroy c: nothing after this */
    }
}

/* Append ready bytes behind everything queued. */
static bool queue_ready(conn *c, const uint8_t *data, size_t len)
{
    slot *t = c->tail;
    if (t == NULL || t->write) {
        t = slot_new(c);
        if (t == NULL) {
            return false;
        }
        link_tail(c, t);
    }
    nk_resp_buf_append(&t->buf, data, len);
    if (t->buf.oom) {
        return false;
    }
    c->held += len;
    return true;
}

static void queue_error(conn *c, const char *text)
{
    nk_resp_buf b;
    nk_resp_buf_init(&b);
    nk_resp_add_error(&b, text);
    if (!b.oom) {
        queue_ready(c, b.data, b.len);
    }
    nk_resp_buf_free(&b);
}

/* ------------------------------------------------------------ relay --- */

/* Length of the first complete RESP2 reply in p[0..n): 0 when incomplete,
 * -1 when it is not RESP. Bounded: arrays nest through a counter. */
static long reply_len(const uint8_t *p, size_t n)
{
    size_t pos = 0;
    uint64_t need = 1; /* replies still to read */
    while (need > 0) {
        if (pos >= n) {
            return 0;
        }
        uint8_t t = p[pos];
        const uint8_t *eol = memchr(p + pos, '\n', n - pos);
        if (eol == NULL) {
            return 0;
        }
        size_t line_end = (size_t)(eol - p) + 1;
        if (line_end < pos + 3 || p[line_end - 2] != '\r') {
            return -1;
        }
        long long v = 0;
        bool neg = false;
        if (t == '$' || t == '*') {
            size_t i = pos + 1;
            if (p[i] == '-') {
                neg = true;
                i++;
            }
            for (; i < line_end - 2; i++) {
                if (p[i] < '0' || p[i] > '9' || v > (1LL << 40)) {
                    return -1;
                }
                v = v * 10 + (p[i] - '0');
            }
        }
        need--;
        if (t == '+' || t == '-' || t == ':') {
            pos = line_end;
        } else if (t == '$') {
            pos = line_end;
            if (!neg) {
                if (n - pos < (size_t)v + 2) {
                    return 0;
                }
                pos += (size_t)v + 2;
            }
        } else if (t == '*') {
            pos = line_end;
            if (!neg) {
                need += (uint64_t)v;
            }
        } else {
            return -1;
        }
    }
    return (long)pos;
}

static void up_close(conn *c)
{
    if (c->up != 0) {
        (void)nk_u64map_del(&c->srv->ups, c->up);
        (void)nk_rt_close(c->srv->rt, c->up);
        c->up = 0;
    }
    c->relaying = false;
    nk_resp_buf_reset(&c->up_in);
}

/* The upstream is gone: every relayed request still waiting gets an error
 * (its effect on the far side is unknown), then the connection routes again. */
static void up_fail(conn *c, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof(msg),
             "-TRYAGAIN the request was relayed to the region leader at %s, which %s; "
             "its effect is unknown, retry\r\n",
             c->up_addr, why);
    for (slot *s = c->head; s != NULL; s = s->next) {
        if (s->relay && !s->fired) {
            nk_resp_buf_reset(&s->buf);
            nk_resp_buf_append(&s->buf, msg, strlen(msg));
            c->held += s->buf.len;
            s->fired = true;
            if (c->inflight > 0) {
                c->inflight--;
            }
        }
    }
    c->up_pending = 0;
    up_close(c);
    if (!c->in_process) {
        flush(c);
    }
}

static void up_on_connect(void *ctx, uint64_t id, int status)
{
    nk_resp_server *srv = ctx;
    conn *c = nk_u64map_get(&srv->ups, id);
    if (c != NULL && status != NK_OK) {
        c->up = 0; /* already dead: on_close will not come */
        (void)nk_u64map_del(&srv->ups, id);
        up_fail(c, "could not be reached");
    }
}

static void up_on_message(void *ctx, uint64_t id, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_resp_server *srv = ctx;
    conn *c = nk_u64map_get(&srv->ups, id);
    if (c == NULL || kind != NK_FRAME_RAW) {
        return;
    }
    nk_resp_buf_append(&c->up_in, data, len);
    size_t off = 0;
    bool retry = false;
    while (c->up_pending > 0) {
        long n = reply_len(c->up_in.data + off, c->up_in.len - off);
        if (n < 0) {
            up_fail(c, "answered something that is not RESP");
            return;
        }
        if (n == 0) {
            break;
        }
        slot *s = c->head;
        while (s != NULL && (!s->relay || s->fired)) {
            s = s->next;
        }
        if (s == NULL) {
            break;
        }
        nk_resp_buf_reset(&s->buf);
        nk_resp_buf_append(&s->buf, c->up_in.data + off, (size_t)n);
        c->held += (size_t)n;
        retry |= n >= 9 && memcmp(c->up_in.data + off, "-TRYAGAIN", 9) == 0;
        s->fired = true;
        c->up_pending--;
        if (c->inflight > 0) {
            c->inflight--;
        }
        off += (size_t)n;
    }
    if (off > 0) {
        memmove(c->up_in.data, c->up_in.data + off, c->up_in.len - off);
        c->up_in.len -= off;
    }
    if (retry) {
        c->relaying = false; /* leadership moved: route afresh */
    }
    if (!c->relaying && c->up_pending == 0) {
        up_close(c);
    }
    flush(c);
}

static void up_on_close(void *ctx, uint64_t id, int reason)
{
    nk_resp_server *srv = ctx;
    (void)reason;
    conn *c = nk_u64map_get(&srv->ups, id);
    if (c != NULL) {
        c->up = 0;
        (void)nk_u64map_del(&srv->ups, id);
        up_fail(c, "closed the connection");
    }
}

static const nk_net_handlers up_handlers = {
    .on_connect = up_on_connect,
    .on_message = up_on_message,
    .on_close = up_on_close,
};

static bool is_cmd(const nk_resp_arg *a, const char *name)
{
    size_t n = strlen(name);
    if (a->len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = (char)a->ptr[i];
        if (ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 'a' + 'A');
        }
        if (ch != name[i]) {
            return false;
        }
    }
    return true;
}

/* Should this request be relayed? Opens the upstream when routing says so. */
static bool want_relay(conn *c, const nk_resp_arg *argv, size_t argc)
{
    nk_resp_server *srv = c->srv;
    if (srv->be->ops->route == NULL || argc == 0 || is_cmd(&argv[0], "QUIT")) {
        return false;
    }
    if (c->relaying) {
        return true;
    }
    if (c->up != 0 || nk_resp_session_busy(c->sess)) {
        return false; /* still draining an old upstream, or state lives here */
    }
    char addr[128];
    if (srv->be->ops->route(srv->be->impl, addr, sizeof(addr)) != NK_OK) {
        return false;
    }
    uint64_t id = 0;
    if (nk_rt_connect(srv->rt, addr, NK_CONN_RAW, &up_handlers, srv, &id) != NK_OK ||
        nk_u64map_put(&srv->ups, id, c) != NK_OK) {
        if (id != 0) {
            (void)nk_rt_close(srv->rt, id);
        }
        return false;
    }
    c->up = id;
    c->relaying = true;
    snprintf(c->up_addr, sizeof(c->up_addr), "%s", addr);
    nk_log(srv->rt, NK_LOG_DEBUG, "resp: conn %llu relayed to %s", (unsigned long long)c->id, addr);
    return true;
}

/* Relay one request: re-encode it as a multibulk and hold a slot for the
 * upstream's reply. */
static bool relay(conn *c, slot *s, const nk_resp_arg *argv, size_t argc)
{
    nk_resp_server *srv = c->srv;
    nk_resp_buf b;
    nk_resp_buf_init(&b);
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "*%zu\r\n", argc);
    nk_resp_buf_append(&b, hdr, (size_t)n);
    for (size_t i = 0; i < argc; i++) {
        n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", argv[i].len);
        nk_resp_buf_append(&b, hdr, (size_t)n);
        nk_resp_buf_append(&b, argv[i].ptr, argv[i].len);
        nk_resp_buf_append(&b, "\r\n", 2);
    }
    bool ok = !b.oom && nk_rt_send_raw(srv->rt, c->up, b.data, b.len) == NK_OK;
    nk_resp_buf_free(&b);
    if (!ok) {
        return false;
    }
    s->write = true;
    s->relay = true;
    c->up_pending++;
    c->inflight++;
    return true;
}

/* Execute every complete request buffered. Returns false if c was destroyed. */
static bool process(conn *c)
{
    nk_resp_server *srv = c->srv;
    nk_resp_stats *st = nk_resp_db_stats(srv->db);
    c->in_process = true;
    c->stalled = false;
    while (!c->closing) {
        if (c->inflight >= NK_RESP_MAX_INFLIGHT) {
            /* Backpressure: this client has enough requests waiting for
             * their completion; the rest stays in the parser's buffer until
             * some complete (flush resumes), instead of flooding the
             * backend with proposals it would refuse. */
            c->stalled = true;
            break;
        }
        const nk_resp_arg *argv;
        size_t argc;
        int rc = nk_resp_parser_next(c->parser, &argv, &argc);
        if (rc == NK_EAGAIN) {
            /* Every complete request ran and none keeps its argv: let the
             * parser drop consumed bytes now (and give back a huge buffer
             * at once, not when the client next sends something). */
            (void)nk_resp_parser_feed(c->parser, NULL, 0);
            break;
        }
        if (rc != NK_OK) {
            st->protocol_errors++;
            nk_log(srv->rt, NK_LOG_INFO, "resp: conn %llu: %s; closing", (unsigned long long)c->id,
                   nk_resp_parser_error(c->parser));
            queue_error(c, nk_resp_parser_error(c->parser));
            c->closing = true;
            break;
        }
        slot *s = slot_new(c);
        if (s == NULL) {
            c->in_process = false;
            conn_destroy(c, true);
            return false;
        }
        if (want_relay(c, argv, argc)) {
            link_tail(c, s);
            if (!relay(c, s, argv, argc)) {
                unlink_tail(c, s);
                slot_free(s);
                up_fail(c, "could not be written to");
                queue_error(c, "TRYAGAIN relaying to the region leader failed; retry");
            }
            continue;
        }
        s->write = true; /* until exec says otherwise; done may fire inside */
        link_tail(c, s);
        nk_resp_buf_reset(&srv->scratch);
        nk_resp_call call = {.argv = argv,
                             .argc = argc,
                             .sess = c->sess,
                             .reply = &srv->scratch,
                             .done = slot_done,
                             .done_arg = s};
        nk_resp_db_exec(srv->db, &call);
        bool ok = !srv->scratch.oom;
        if (!call.wrote && call.read && srv->be->ops->read_barrier != NULL) {
            /* A replicated backend: hold the reply of a command that read
             * keys until the read is known to be linearizable (backend.h),
             * exactly as a write's; commands that touch no key need none. */
            s->read = true;
            int brc = srv->be->ops->read_barrier(srv->be->impl, slot_done, s);
            if (brc != NK_OK) {
                /* Refused at once: the reply becomes nk_resp_read_error()
                 * text in flush(), in its place in the order. */
                s->fired = true;
                s->status = brc;
            }
            call.wrote = true; /* held like a write from here on */
        }
        if (call.wrote) {
            if (!s->fired && !s->read) {
                s->counted = true;
                st->writes_pending++;
            }
            if (!s->fired) {
                c->inflight++;
            }
            /* Hand the reply bytes to the slot without copying. */
            nk_resp_buf tmp = s->buf;
            s->buf = srv->scratch;
            srv->scratch = tmp;
            c->held += s->buf.len;
        } else {
            unlink_tail(c, s);
            slot_free(s);
            ok = ok && queue_ready(c, srv->scratch.data, srv->scratch.len);
        }
        if (!ok) {
            c->in_process = false;
            conn_destroy(c, true);
            return false;
        }
        if (call.quit) {
            c->closing = true;
        }
        /* Output the client has not taken yet: unsent bytes in the runtime
         * plus replies held here. One reply alone may exceed the limit (a
         * big GET); anything beyond that means the client is not keeping up. */
        size_t total = c->held + nk_rt_conn_pending(srv->rt, c->id);
        size_t this_reply = call.wrote ? s->buf.len : srv->scratch.len;
        if (total > srv->opt.max_output_bytes && total != this_reply) {
            c->in_process = false;
            close_for_output_limit(c);
            return false;
        }
    }
    c->in_process = false;
    flush(c);
    return true;
}

/* ---------------------------------------------------------- handlers --- */

static void on_accept(void *ctx, uint64_t listener_id, uint64_t id, const char *peer)
{
    nk_resp_server *srv = ctx;
    nk_resp_stats *st = nk_resp_db_stats(srv->db);
    if (srv->stopped) {
        nk_rt_close(srv->rt, id);
        return;
    }
    if (srv->conns.count >= srv->opt.max_clients) {
        static const char msg[] = "-ERR max number of clients reached\r\n";
        st->connections_rejected++;
        nk_rt_send_raw(srv->rt, id, msg, sizeof(msg) - 1);
        nk_rt_close(srv->rt, id);
        return;
    }
    conn *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->parser = nk_resp_parser_new(&srv->opt.limits);
        nk_resp_buf_init(&c->up_in);
        if (nk_resp_session_new(srv->db, peer, &c->sess) != NK_OK) {
            c->sess = NULL;
        }
    }
    if (c == NULL || c->parser == NULL || c->sess == NULL ||
        nk_u64map_put(&srv->conns, id, c) != NK_OK) {
        if (c != NULL) {
            nk_resp_parser_free(c->parser);
            nk_resp_session_free(c->sess);
        }
        free(c);
        nk_rt_close(srv->rt, id);
        return;
    }
    c->id = id;
    c->srv = srv;
    st->connections_received++;
    st->connected_clients++;
    nk_log(srv->rt, NK_LOG_DEBUG, "resp: conn %llu from %s", (unsigned long long)id, peer);
}

static void on_connect(void *ctx, uint64_t id, int status)
{
    (void)ctx;
    (void)id;
    (void)status; /* the server never connects out */
}

static void on_message(void *ctx, uint64_t id, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_resp_server *srv = ctx;
    conn *c = nk_u64map_get(&srv->conns, id);
    if (c == NULL) {
        return;
    }
    if (kind != NK_FRAME_RAW) {
        nk_log(srv->rt, NK_LOG_INFO, "resp: conn %llu speaks NoKV frames, not RESP; closing",
               (unsigned long long)id);
        conn_destroy(c, true);
        return;
    }
    nk_resp_db_stats(srv->db)->net_input_bytes += len;
    if (c->closing) {
        return; /* after QUIT or a protocol error, input is ignored */
    }
    /* A dead parser refuses bytes; process() then reports its error. */
    nk_resp_parser_feed(c->parser, data, len);
    process(c);
}

static void on_close(void *ctx, uint64_t id, int reason)
{
    nk_resp_server *srv = ctx;
    conn *c = nk_u64map_get(&srv->conns, id);
    if (c == NULL) {
        return;
    }
    nk_log(srv->rt, NK_LOG_DEBUG, "resp: conn %llu closed: %s", (unsigned long long)id,
           nk_errname(reason));
    conn_destroy(c, false);
}

static const nk_net_handlers handlers = {on_accept, on_connect, on_message, on_close};

static void conn_destroy(conn *c, bool close_socket)
{
    nk_resp_server *srv = c->srv;
    nk_u64map_del(&srv->conns, c->id);
    nk_resp_stats *st = nk_resp_db_stats(srv->db);
    if (st->connected_clients > 0) {
        st->connected_clients--;
    }
    slot *s = c->head;
    while (s != NULL) {
        slot *next = s->next;
        if (s->write && !s->fired && !s->relay) {
            s->c = NULL;
            s->next = NULL;
            s->oprev = NULL;
            s->onext = srv->orphans;
            if (srv->orphans) {
                srv->orphans->oprev = s;
            }
            srv->orphans = s;
        } else {
            slot_free(s);
        }
        s = next;
    }
    if (close_socket) {
        nk_rt_close(srv->rt, c->id);
    }
    up_close(c);
    nk_resp_buf_free(&c->up_in);
    nk_resp_parser_free(c->parser);
    nk_resp_session_free(c->sess);
    free(c);
}

/* ------------------------------------------------------------ server --- */

int nk_resp_server_start(nk_rt *rt, const char *addr, nk_kv_backend *be,
                         const nk_resp_server_options *opt, nk_resp_server **out)
{
    nk_resp_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return NK_ENOMEM;
    }
    if (opt != NULL) {
        srv->opt = *opt;
    }
    if (srv->opt.max_output_bytes == 0) {
        srv->opt.max_output_bytes = NK_RESP_DEFAULT_MAX_OUTPUT;
    }
    if (srv->opt.max_clients == 0) {
        srv->opt.max_clients = NK_RESP_DEFAULT_MAX_CLIENTS;
    }
    srv->opt.db.max_clients = srv->opt.max_clients;
    srv->rt = rt;
    srv->be = be;
    nk_u64map_init(&srv->conns);
    nk_u64map_init(&srv->ups);
    nk_resp_buf_init(&srv->scratch);
    int rc = nk_resp_db_new(rt, be, &srv->opt.db, &srv->db);
    if (rc != NK_OK) {
        free(srv);
        return rc;
    }
    rc = nk_rt_listen(rt, addr, &handlers, srv, &srv->listener);
    if (rc != NK_OK) {
        nk_resp_db_free(srv->db);
        free(srv);
        return rc;
    }
    char bound[64];
    if (nk_rt_listener_addr(rt, srv->listener, bound, sizeof(bound)) == NK_OK) {
        nk_resp_db_set_listen_addr(srv->db, bound);
        nk_log(rt, NK_LOG_INFO, "resp: listening on %s (backend %s, sync %s)", bound,
               be->name ? be->name : "?",
               srv->opt.db.sync_policy ? srv->opt.db.sync_policy : "none");
    }
    *out = srv;
    return NK_OK;
}

int nk_resp_server_addr(nk_resp_server *s, char *buf, size_t len)
{
    return nk_rt_listener_addr(s->rt, s->listener, buf, len);
}

nk_resp_db *nk_resp_server_db(nk_resp_server *s)
{
    return s->db;
}

size_t nk_resp_server_connections(const nk_resp_server *s)
{
    return s->conns.count;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

void nk_resp_server_stop(nk_resp_server *s)
{
    if (s->stopped) {
        return;
    }
    s->stopped = true;
    nk_rt_listener_close(s->rt, s->listener);
    /* Collect ids first: destroying edits the map. Ascending id order keeps
     * the shutdown sequence deterministic. */
    size_t n = s->conns.count;
    uint64_t *ids = n ? malloc(n * sizeof(*ids)) : NULL;
    size_t k = 0, pos = 0;
    uint64_t id;
    void *v;
    while (ids != NULL && nk_u64map_next(&s->conns, &pos, &id, &v)) {
        ids[k++] = id;
    }
    if (k > 1) {
        qsort(ids, k, sizeof(*ids), cmp_u64);
    }
    for (size_t i = 0; i < k; i++) {
        conn *c = nk_u64map_get(&s->conns, ids[i]);
        if (c != NULL) {
            conn_destroy(c, true);
        }
    }
    free(ids);
    /* Out of memory for the id list: destroy whatever is first, repeatedly. */
    while (s->conns.count > 0) {
        pos = 0;
        if (!nk_u64map_next(&s->conns, &pos, &id, &v)) {
            break;
        }
        conn_destroy(v, true);
    }
    nk_log(s->rt, NK_LOG_INFO, "resp: server stopped");
}

void nk_resp_server_free(nk_resp_server *s)
{
    if (s == NULL) {
        return;
    }
    nk_resp_server_stop(s);
    for (slot *o = s->orphans; o != NULL; o = o->onext) {
        o->srv = NULL;
    }
    nk_u64map_free(&s->conns);
    nk_u64map_free(&s->ups);
    nk_resp_buf_free(&s->scratch);
    while (s->spare != NULL) {
        slot *sp = s->spare;
        s->spare = sp->next;
        nk_resp_buf_free(&sp->buf);
        free(sp);
    }
    nk_resp_db_free(s->db);
    free(s);
}
