/*
 * tcp.c - IPv4 TCP for the real runtime: listeners, non-blocking connects,
 * framed and raw connections, per-connection write queues.
 *
 * Contract: nokv/rt.h (network section) plus the details in rt_real.h.
 * Re-entrancy rules: rt_real_impl.h. All of this runs on the loop thread.
 *
 * Connection states:
 *   CONNECTING - outgoing, waiting for the kernel (EPOLLOUT) or for a
 *                deferred result (a connect that finished inside connect(2)
 *                is reported from a zero-delay timer, never from inside
 *                nk_rt_connect, so the caller has its id first);
 *   OPEN       - reading and writing; an accepted connection has mode 0
 *                until its first byte decides framed (0x89) or raw;
 *   LINGER     - closed locally with bytes still queued: the id is dead for
 *                the API, the socket keeps flushing for up to 5 s;
 *   DEAD       - socket closed, memory parked on the grave list until the
 *                end of the loop iteration.
 */
/* accept4() is a GNU/Linux extension. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/rt_real_impl.h"
#include "nokv/proto/frame.h"

#define CONNECT_TIMEOUT_NS (5 * NK_NSEC_PER_SEC)
#define LINGER_TIMEOUT_NS (5 * NK_NSEC_PER_SEC)
#define ACCEPT_PAUSE_NS (100 * NK_NSEC_PER_MSEC)
#define ACCEPT_BATCH 64
#define READ_CHUNK (64u * 1024u)
#define READ_MAX (4u * 1024u * 1024u) /* one read into a large frame */
#define KEEP_BUF_MAX (1024u * 1024u)  /* larger idle buffers are released */

enum conn_state { CS_CONNECTING = 1, CS_OPEN, CS_LINGER, CS_DEAD };

struct nk_real_conn {
    nk_real *r;
    uint64_t id;
    int fd;
    enum conn_state state;
    int mode; /* 0 (accepted, not sniffed yet), NK_CONN_FRAMED, NK_CONN_RAW */
    nk_net_handlers h;
    void *ctx;

    uint8_t *rbuf; /* framed: bytes received, not yet delivered */
    size_t rlen;
    size_t rcap;

    uint8_t *wbuf; /* queued for the wire: [whead, wlen) */
    size_t whead;
    size_t wlen;
    size_t wcap;

    bool registered;   /* fd is in epoll */
    uint32_t events;   /* current epoll interest */
    uint64_t timer_id; /* connect timeout, deferred connect or linger */
    int deferred_status;
    bool in_backlog;
    bool in_wpend; /* listed in r->wpend: sent before the loop sleeps */
    nk_real_conn *grave_next;
};

struct nk_real_listener {
    nk_real *r;
    uint64_t id;
    int fd;
    nk_net_handlers h;
    void *ctx;
    char addr[32];
    bool closed;
    uint64_t timer_id; /* accept pause after EMFILE */
    nk_real_listener *grave_next;
};

/* -------------------------------------------------------------- helpers --- */

static int parse_u(const char **pp, unsigned max_digits, unsigned max_value, unsigned *out)
{
    const char *p = *pp;
    unsigned v = 0, nd = 0;
    while (*p >= '0' && *p <= '9') {
        if (++nd > max_digits) {
            return NK_EADDR;
        }
        v = v * 10 + (unsigned)(*p - '0');
        p++;
    }
    /* No empty fields and no leading zeros ("010" reads as octal elsewhere). */
    if (nd == 0 || (nd > 1 && **pp == '0') || v > max_value) {
        return NK_EADDR;
    }
    *pp = p;
    *out = v;
    return NK_OK;
}

int nk_real_parse_addr(const char *addr, bool allow_port0, uint32_t *ip_be, uint16_t *port)
{
    if (addr == NULL) {
        return NK_EADDR;
    }
    const char *p = addr;
    uint32_t ip = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v;
        if (parse_u(&p, 3, 255, &v) != NK_OK) {
            return NK_EADDR;
        }
        ip = (ip << 8) | v;
        if (*p != (i < 3 ? '.' : ':')) {
            return NK_EADDR;
        }
        p++;
    }
    unsigned pv;
    if (parse_u(&p, 5, 65535, &pv) != NK_OK || *p != '\0' || (pv == 0 && !allow_port0)) {
        return NK_EADDR;
    }
    *ip_be = htonl(ip);
    *port = (uint16_t)pv;
    return NK_OK;
}

static void format_addr(const struct sockaddr_in *sa, char *buf, size_t len)
{
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip)) == NULL) {
        snprintf(ip, sizeof(ip), "?");
    }
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* A broken established connection is NK_ECLOSED (peer gone or network
 * break); anything unexpected is NK_EIO. */
static int io_err(int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case ENETRESET:
        return NK_ECLOSED;
    default:
        return NK_EIO;
    }
}

static int connect_err(int e)
{
    switch (e) {
    case ECONNREFUSED:
    case EHOSTUNREACH: /* nobody answers there: same remedy as refused */
    case ENETUNREACH:
        return NK_ECONNREFUSED;
    case ETIMEDOUT:
        return NK_ETIMEDOUT;
    default:
        return NK_EIO;
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    /* Raft and request/response traffic is latency-bound: no Nagle delay. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---------------------------------------------------------- connections --- */

static size_t pending_of(const nk_real_conn *c)
{
    return c->wlen - c->whead;
}

/* A connection the API may still use (CONNECTING or OPEN). */
static nk_real_conn *live_conn(nk_real *r, uint64_t id)
{
    nk_real_conn *c = nk_idmap_get(&r->conns, id);
    if (c == NULL || (c->state != CS_CONNECTING && c->state != CS_OPEN)) {
        return NULL;
    }
    return c;
}

static nk_real_conn *conn_new(nk_real *r, int fd, int mode, enum conn_state state,
                              const nk_net_handlers *h, void *ctx)
{
    nk_real_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->r = r;
    c->fd = fd;
    c->mode = mode;
    c->state = state;
    if (h != NULL) {
        c->h = *h;
    }
    c->ctx = ctx;
    c->id = ++r->next_conn_id;
    if (nk_idmap_put(&r->conns, c->id, c) != NK_OK) {
        free(c);
        return NULL;
    }
    return c;
}

/* Bring the epoll interest in line with the state and the write queue. */
static int update_events(nk_real_conn *c)
{
    uint32_t want = 0;
    switch (c->state) {
    case CS_CONNECTING:
        want = EPOLLOUT;
        break;
    case CS_OPEN:
        want = EPOLLIN | (pending_of(c) > 0 ? EPOLLOUT : 0u);
        break;
    case CS_LINGER:
        want = EPOLLOUT;
        break;
    case CS_DEAD:
        return NK_OK;
    }
    if (c->registered && c->events == want) {
        return NK_OK;
    }
    int rc = c->registered ? nk_real_ep_mod(c->r, c->fd, want, NK_EV_CONN, c->id)
                           : nk_real_ep_add(c->r, c->fd, want, NK_EV_CONN, c->id);
    if (rc == NK_OK) {
        c->registered = true;
        c->events = want;
    }
    return rc;
}

/* Close the socket without any callback; the id dies now, memory at reap. */
static void conn_kill(nk_real_conn *c)
{
    if (c->state == CS_DEAD) {
        return;
    }
    nk_real *r = c->r;
    nk_idmap_del(&r->conns, c->id);
    if (c->registered) {
        nk_real_ep_del(r, c->fd);
        c->registered = false;
    }
    close(c->fd);
    c->fd = -1;
    if (c->timer_id != 0) {
        nk_real_timer_cancel(r, c->timer_id);
        c->timer_id = 0;
    }
    c->state = CS_DEAD;
    c->grave_next = r->grave_conns;
    r->grave_conns = c;
}

/* The connection broke: kill it, then tell the owner why. */
static void conn_fail(nk_real_conn *c, int reason)
{
    if (c->state != CS_OPEN) {
        conn_kill(c);
        return;
    }
    nk_log(&c->r->rt, NK_LOG_DEBUG, "conn %" PRIu64 " closed: %s", c->id, nk_errname(reason));
    conn_kill(c);
    if (c->h.on_close != NULL) {
        c->h.on_close(c->ctx, c->id, reason);
    }
}

static void conn_free(nk_real_conn *c)
{
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

/* Append a and b to the write queue as one unit (all or nothing). */
static int wq_append(nk_real_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    size_t add = alen + blen;
    if (add == 0) {
        return NK_OK;
    }
    if (c->wcap - c->wlen < add && c->whead > 0) {
        memmove(c->wbuf, c->wbuf + c->whead, c->wlen - c->whead);
        c->wlen -= c->whead;
        c->whead = 0;
    }
    if (c->wcap - c->wlen < add) {
        size_t need = c->wlen + add;
        size_t ncap = c->wcap ? c->wcap : 4096;
        while (ncap < need) {
            ncap *= 2;
        }
        uint8_t *nb = realloc(c->wbuf, ncap);
        if (nb == NULL) {
            return NK_ENOMEM;
        }
        c->wbuf = nb;
        c->wcap = ncap;
    }
    if (alen > 0) {
        memcpy(c->wbuf + c->wlen, a, alen);
    }
    if (blen > 0) {
        memcpy(c->wbuf + c->wlen + alen, b, blen);
    }
    c->wlen += add;
    return NK_OK;
}

/* Write as much of the queue as the socket takes. NK_OK or a close reason. */
static int flush(nk_real_conn *c)
{
    while (c->whead < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->whead, c->wlen - c->whead, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return io_err(errno);
        }
        c->whead += (size_t)n;
    }
    if (c->whead == c->wlen) {
        c->whead = c->wlen = 0;
        if (c->wcap > KEEP_BUF_MAX) {
            free(c->wbuf);
            c->wbuf = NULL;
            c->wcap = 0;
        }
    }
    return NK_OK;
}

static void backlog_push(nk_real_conn *c)
{
    nk_real *r = c->r;
    if (c->in_backlog) {
        return;
    }
    if (r->backlog_len == r->backlog_cap) {
        size_t ncap = r->backlog_cap ? r->backlog_cap * 2 : 16;
        uint64_t *nb = realloc(r->backlog, ncap * sizeof(*nb));
        if (nb == NULL) {
            /* Cannot remember it: the frames wait for the next read event. */
            return;
        }
        r->backlog = nb;
        r->backlog_cap = ncap;
    }
    r->backlog[r->backlog_len++] = c->id;
    c->in_backlog = true;
}

/* Deliver every complete frame in rbuf; close on a bad one. */
static void parse_frames(nk_real_conn *c)
{
    nk_real *r = c->r;
    size_t pos = 0;
    while (c->state == CS_OPEN) {
        size_t avail = c->rlen - pos;
        if (avail < NK_FRAME_HEADER_SIZE) {
            break;
        }
        nk_frame_header fh;
        int rc = nk_frame_decode_header(c->rbuf + pos, NK_FRAME_MAX, &fh);
        if (rc != NK_OK) {
            nk_log(&r->rt, NK_LOG_WARN, "conn %" PRIu64 ": bad frame header (%s), closing it",
                   c->id, nk_errname(rc));
            conn_fail(c, rc);
            return;
        }
        if (avail - NK_FRAME_HEADER_SIZE < fh.len) {
            break;
        }
        const uint8_t *payload = c->rbuf + pos + NK_FRAME_HEADER_SIZE;
        if (nk_frame_verify(&fh, payload) != NK_OK) {
            nk_log(&r->rt, NK_LOG_WARN,
                   "conn %" PRIu64 ": frame checksum mismatch (kind %u, %" PRIu32
                   " bytes), closing it",
                   c->id, (unsigned)fh.kind, fh.len);
            conn_fail(c, NK_EPROTO);
            return;
        }
        if (r->stop_requested) {
            backlog_push(c); /* deliver on the next run */
            break;
        }
        pos += NK_FRAME_HEADER_SIZE + fh.len;
        if (c->h.on_message != NULL) {
            c->h.on_message(c->ctx, c->id, fh.kind, payload, fh.len);
        }
    }
    /* rbuf is only ever resized by reads, never inside a callback, so the
     * payload pointer handed out above stayed valid during the call. */
    if (c->state == CS_OPEN && pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
        if (c->rlen == 0 && c->rcap > KEEP_BUF_MAX) {
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
    }
}

static int rbuf_reserve(nk_real_conn *c, size_t room)
{
    if (c->rcap - c->rlen >= room) {
        return NK_OK;
    }
    size_t need = c->rlen + room;
    size_t ncap = c->rcap ? c->rcap : READ_CHUNK;
    while (ncap < need) {
        ncap *= 2;
    }
    /* Never more than the largest frame plus one read of slack (doubling
     * alone would reserve 128 MiB for a 64 MiB frame). */
    size_t limit = NK_FRAME_HEADER_SIZE + NK_FRAME_MAX + READ_CHUNK;
    if (ncap > limit && need <= limit) {
        ncap = limit;
    }
    uint8_t *nb = realloc(c->rbuf, ncap);
    if (nb == NULL) {
        return NK_ENOMEM;
    }
    c->rbuf = nb;
    c->rcap = ncap;
    return NK_OK;
}

/* One read(2) per readiness event (level-triggered: fair across sockets). */
static void conn_readable(nk_real_conn *c)
{
    nk_real *r = c->r;
    uint8_t *dst;
    size_t room;
    if (c->mode == NK_CONN_FRAMED) {
        room = READ_CHUNK;
        /* Inside a large frame, read up to its end in one go. */
        if (c->rlen >= NK_FRAME_HEADER_SIZE) {
            nk_frame_header fh;
            if (nk_frame_decode_header(c->rbuf, NK_FRAME_MAX, &fh) == NK_OK) {
                size_t need = NK_FRAME_HEADER_SIZE + (size_t)fh.len - c->rlen;
                if (need > room) {
                    room = need < READ_MAX ? need : READ_MAX;
                }
            }
        }
        if (rbuf_reserve(c, room) != NK_OK) {
            conn_fail(c, NK_EIO);
            return;
        }
        dst = c->rbuf + c->rlen;
    } else {
        room = READ_CHUNK;
        dst = r->scratch;
    }
    ssize_t n;
    do {
        n = read(c->fd, dst, room);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_fail(c, io_err(errno));
        }
        return;
    }
    if (n == 0) {
        conn_fail(c, NK_ECLOSED);
        return;
    }
    if (c->mode == 0) {
        /* First byte decides the protocol for the life of the connection. */
        c->mode = dst[0] == NK_FRAME_MAGIC0 ? NK_CONN_FRAMED : NK_CONN_RAW;
        if (c->mode == NK_CONN_FRAMED) {
            if (rbuf_reserve(c, (size_t)n) != NK_OK) {
                conn_fail(c, NK_EIO);
                return;
            }
            memcpy(c->rbuf + c->rlen, dst, (size_t)n);
        }
    }
    if (c->mode == NK_CONN_RAW) {
        if (c->h.on_message != NULL) {
            c->h.on_message(c->ctx, c->id, NK_FRAME_RAW, dst, (size_t)n);
        }
        return;
    }
    c->rlen += (size_t)n;
    parse_frames(c);
}

static void connected(nk_real_conn *c)
{
    if (c->timer_id != 0) {
        nk_real_timer_cancel(c->r, c->timer_id);
        c->timer_id = 0;
    }
    c->state = CS_OPEN;
    if (update_events(c) != NK_OK) {
        conn_kill(c);
        if (c->h.on_connect != NULL) {
            c->h.on_connect(c->ctx, c->id, NK_EIO);
        }
        return;
    }
    if (c->h.on_connect != NULL) {
        c->h.on_connect(c->ctx, c->id, NK_OK);
    }
}

static void connect_failed(nk_real_conn *c, int status)
{
    nk_log(&c->r->rt, NK_LOG_DEBUG, "conn %" PRIu64 ": connect failed: %s", c->id,
           nk_errname(status));
    conn_kill(c); /* the id is dead before on_connect reports the error */
    if (c->h.on_connect != NULL) {
        c->h.on_connect(c->ctx, c->id, status);
    }
}

static void connect_timeout_cb(void *arg)
{
    nk_real_conn *c = arg; /* valid: conn_kill cancels this timer */
    c->timer_id = 0;
    connect_failed(c, NK_ETIMEDOUT);
}

static void connect_deferred_cb(void *arg)
{
    nk_real_conn *c = arg;
    c->timer_id = 0;
    if (c->deferred_status == NK_OK) {
        connected(c);
    } else {
        connect_failed(c, c->deferred_status);
    }
}

static void linger_timeout_cb(void *arg)
{
    nk_real_conn *c = arg;
    c->timer_id = 0;
    nk_log(&c->r->rt, NK_LOG_DEBUG, "conn %" PRIu64 ": dropping %zu unsent bytes after close",
           c->id, pending_of(c));
    conn_kill(c);
}

static void conn_event(nk_real *r, uint64_t id, uint32_t events)
{
    nk_real_conn *c = nk_idmap_get(&r->conns, id);
    if (c == NULL) {
        return; /* closed earlier in this iteration */
    }
    switch (c->state) {
    case CS_CONNECTING: {
        if (!c->registered) {
            return; /* result is deferred to a timer */
        }
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
            err = errno;
        }
        if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) {
            err = ECONNREFUSED;
        }
        if (err != 0) {
            connect_failed(c, connect_err(err));
        } else {
            connected(c);
        }
        return;
    }
    case CS_OPEN:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
            conn_readable(c);
        }
        if (c->state == CS_OPEN && !r->stop_requested && (events & EPOLLOUT)) {
            int rc = flush(c);
            if (rc != NK_OK) {
                conn_fail(c, rc);
            } else if (update_events(c) != NK_OK) {
                conn_fail(c, NK_EIO);
            }
        }
        return;
    case CS_LINGER:
        if ((events & (EPOLLERR | EPOLLHUP)) || flush(c) != NK_OK) {
            conn_kill(c);
        } else if (pending_of(c) == 0) {
            (void)shutdown(c->fd, SHUT_WR);
            conn_kill(c);
        }
        return;
    case CS_DEAD:
        return;
    }
}

/* ------------------------------------------------------------ listeners --- */

static void listener_resume_cb(void *arg)
{
    nk_real_listener *l = arg; /* valid: listener_close cancels this timer */
    l->timer_id = 0;
    (void)nk_real_ep_mod(l->r, l->fd, EPOLLIN, NK_EV_LISTENER, l->id);
}

static void listener_event(nk_real *r, uint64_t id)
{
    nk_real_listener *l = nk_idmap_get(&r->listeners, id);
    if (l == NULL) {
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !l->closed && !r->stop_requested; i++) {
        struct sockaddr_in sa;
        socklen_t slen = sizeof(sa);
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: a level-triggered listener would spin,
                 * so stop watching it for a moment. */
                nk_log(&r->rt, NK_LOG_WARN, "listener %" PRIu64 ": accept: %s; pausing 100 ms",
                       l->id, strerror(errno));
                if (l->timer_id == 0 &&
                    nk_real_ep_mod(r, l->fd, 0, NK_EV_LISTENER, l->id) == NK_OK) {
                    l->timer_id = nk_real_timer_start(r, ACCEPT_PAUSE_NS, listener_resume_cb, l);
                }
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                nk_log(&r->rt, NK_LOG_WARN, "listener %" PRIu64 ": accept: %s", l->id,
                       strerror(errno));
            }
            return;
        }
        set_nodelay(fd);
        nk_real_conn *c = conn_new(r, fd, 0, CS_OPEN, &l->h, l->ctx);
        if (c == NULL) {
            close(fd);
            continue;
        }
        if (update_events(c) != NK_OK) {
            conn_kill(c);
            continue;
        }
        char peer[48];
        format_addr(&sa, peer, sizeof(peer));
        nk_log(&r->rt, NK_LOG_DEBUG, "listener %" PRIu64 ": accepted conn %" PRIu64 " from %s",
               l->id, c->id, peer);
        if (l->h.on_accept != NULL) {
            l->h.on_accept(l->ctx, l->id, c->id, peer);
        }
    }
}

int nk_real_listen(void *impl, const char *addr, const nk_net_handlers *h, void *ctx,
                   uint64_t *listener_id)
{
    nk_real *r = impl;
    if (h == NULL || listener_id == NULL) {
        return NK_EINVAL;
    }
    if (r->freeing) {
        return NK_ESTOPPED;
    }
    uint32_t ip;
    uint16_t port;
    if (nk_real_parse_addr(addr, true, &ip, &port) != NK_OK) {
        nk_log(&r->rt, NK_LOG_WARN, "listen: bad address '%s' (want a.b.c.d:port)",
               addr ? addr : "(null)");
        return NK_EADDR;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NK_EIO;
    }
    int one = 1;
    /* Restart without waiting for TIME_WAIT sockets of the last run. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = ip;
    sa.sin_port = htons(port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        nk_log(&r->rt, NK_LOG_WARN, "listen: cannot bind %s: %s", addr, strerror(errno));
        close(fd);
        return NK_EADDR;
    }
    socklen_t slen = sizeof(sa);
    if (listen(fd, SOMAXCONN) != 0 || getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        nk_log(&r->rt, NK_LOG_WARN, "listen: %s: %s", addr, strerror(errno));
        close(fd);
        return NK_EIO;
    }
    nk_real_listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(fd);
        return NK_ENOMEM;
    }
    l->r = r;
    l->fd = fd;
    l->h = *h;
    l->ctx = ctx;
    format_addr(&sa, l->addr, sizeof(l->addr));
    l->id = ++r->next_listener_id;
    if (nk_idmap_put(&r->listeners, l->id, l) != NK_OK) {
        close(fd);
        free(l);
        return NK_ENOMEM;
    }
    if (nk_real_ep_add(r, fd, EPOLLIN, NK_EV_LISTENER, l->id) != NK_OK) {
        nk_idmap_del(&r->listeners, l->id);
        close(fd);
        free(l);
        return NK_EIO;
    }
    nk_log(&r->rt, NK_LOG_INFO, "listening on %s (listener %" PRIu64 ")", l->addr, l->id);
    *listener_id = l->id;
    return NK_OK;
}

int nk_real_listener_addr(void *impl, uint64_t listener_id, char *buf, size_t len)
{
    nk_real *r = impl;
    nk_real_listener *l = nk_idmap_get(&r->listeners, listener_id);
    if (l == NULL) {
        return NK_ENOENT;
    }
    if (buf == NULL || len <= strlen(l->addr)) {
        return NK_ERANGE;
    }
    memcpy(buf, l->addr, strlen(l->addr) + 1);
    return NK_OK;
}

int nk_real_listener_close(void *impl, uint64_t listener_id)
{
    nk_real *r = impl;
    nk_real_listener *l = nk_idmap_del(&r->listeners, listener_id);
    if (l == NULL) {
        return NK_ENOENT;
    }
    nk_real_ep_del(r, l->fd);
    close(l->fd);
    l->fd = -1;
    if (l->timer_id != 0) {
        nk_real_timer_cancel(r, l->timer_id);
        l->timer_id = 0;
    }
    l->closed = true;
    l->grave_next = r->grave_listeners;
    r->grave_listeners = l;
    return NK_OK;
}

/* ------------------------------------------------------ connect / send --- */

int nk_real_connect(void *impl, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                    void *ctx, uint64_t *conn)
{
    nk_real *r = impl;
    if (h == NULL || conn == NULL || (mode != NK_CONN_FRAMED && mode != NK_CONN_RAW)) {
        return NK_EINVAL;
    }
    if (r->freeing) {
        return NK_ESTOPPED;
    }
    uint32_t ip;
    uint16_t port;
    if (nk_real_parse_addr(addr, false, &ip, &port) != NK_OK) {
        nk_log(&r->rt, NK_LOG_WARN, "connect: bad address '%s' (want a.b.c.d:port, port > 0)",
               addr ? addr : "(null)");
        return NK_EADDR;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NK_EIO;
    }
    set_nodelay(fd);
    nk_real_conn *c = conn_new(r, fd, (int)mode, CS_CONNECTING, h, ctx);
    if (c == NULL) {
        close(fd);
        return NK_ENOMEM;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = ip;
    sa.sin_port = htons(port);
    int cr;
    do {
        cr = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (cr != 0 && errno == EINTR);
    if (cr != 0 && errno == EINPROGRESS) {
        if (update_events(c) != NK_OK) {
            conn_kill(c);
            return NK_EIO;
        }
        c->timer_id = nk_real_timer_start(r, CONNECT_TIMEOUT_NS, connect_timeout_cb, c);
    } else {
        /* Finished already (loopback can): report it from the loop, after
         * the caller has the id, never from inside this call. */
        c->deferred_status = cr == 0 ? NK_OK : connect_err(errno);
        c->timer_id = nk_real_timer_start(r, 0, connect_deferred_cb, c);
    }
    if (c->timer_id == 0) {
        conn_kill(c);
        return NK_ENOMEM;
    }
    *conn = c->id;
    return NK_OK;
}

/* Remember c for nk_real_net_flush_writes. False when out of memory. */
static bool wpend_push(nk_real_conn *c)
{
    nk_real *r = c->r;
    if (c->in_wpend) {
        return true;
    }
    if (r->wpend_len == r->wpend_cap) {
        size_t ncap = r->wpend_cap ? r->wpend_cap * 2 : 16;
        uint64_t *nb = realloc(r->wpend, ncap * sizeof(*nb));
        if (nb == NULL) {
            return false;
        }
        r->wpend = nb;
        r->wpend_cap = ncap;
    }
    r->wpend[r->wpend_len++] = c->id;
    c->in_wpend = true;
    return true;
}

static int queue_and_arm(nk_real_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    int rc = wq_append(c, a, alen, b, blen);
    if (rc != NK_OK) {
        return rc;
    }
    /* OPEN: sent when the loop is about to sleep, together with every other
     * reply queued in this iteration (a pipeline of N requests answered in
     * one turn is one send, and no epoll_ctl to arm and disarm EPOLLOUT);
     * already waiting for EPOLLOUT: that event sends it. CONNECTING: sent
     * once connected. */
    if (c->state == CS_OPEN && !(c->registered && (c->events & EPOLLOUT)) && !wpend_push(c) &&
        update_events(c) != NK_OK) {
        return NK_EIO;
    }
    return NK_OK;
}

int nk_real_send(void *impl, uint64_t conn, uint8_t kind, const void *data, size_t len)
{
    nk_real *r = impl;
    nk_real_conn *c = live_conn(r, conn);
    if (c == NULL) {
        return NK_ECLOSED;
    }
    if (kind == NK_FRAME_RAW || c->mode == NK_CONN_RAW || (len > 0 && data == NULL)) {
        return NK_EINVAL;
    }
    if (len > NK_FRAME_MAX) {
        return NK_ETOOBIG;
    }
    uint8_t hdr[NK_FRAME_HEADER_SIZE];
    nk_frame_encode_header(hdr, kind, data, (uint32_t)len);
    return queue_and_arm(c, hdr, sizeof(hdr), data, len);
}

int nk_real_send_raw(void *impl, uint64_t conn, const void *data, size_t len)
{
    nk_real *r = impl;
    nk_real_conn *c = live_conn(r, conn);
    if (c == NULL) {
        return NK_ECLOSED;
    }
    if (c->mode == NK_CONN_FRAMED || (len > 0 && data == NULL)) {
        return NK_EINVAL;
    }
    return queue_and_arm(c, data, len, NULL, 0);
}

size_t nk_real_conn_pending(void *impl, uint64_t conn)
{
    nk_real_conn *c = live_conn(impl, conn);
    return c == NULL ? 0 : pending_of(c);
}

int nk_real_close(void *impl, uint64_t conn)
{
    nk_real *r = impl;
    nk_real_conn *c = live_conn(r, conn);
    if (c == NULL) {
        return NK_ENOENT;
    }
    if (c->state == CS_OPEN && pending_of(c) > 0 && flush(c) == NK_OK && pending_of(c) > 0) {
        /* Keep flushing in the background, silently, for a bounded time. */
        if (c->timer_id != 0) {
            nk_real_timer_cancel(r, c->timer_id);
        }
        c->state = CS_LINGER;
        c->timer_id = nk_real_timer_start(r, LINGER_TIMEOUT_NS, linger_timeout_cb, c);
        if (c->timer_id != 0 && update_events(c) == NK_OK) {
            return NK_OK;
        }
    } else if (c->state == CS_OPEN && pending_of(c) == 0) {
        (void)shutdown(c->fd, SHUT_WR); /* orderly FIN */
    }
    conn_kill(c);
    return NK_OK;
}

/* ------------------------------------------------------ loop interface --- */

void nk_real_net_event(nk_real *r, unsigned tag, uint64_t id, uint32_t events)
{
    if (tag == NK_EV_LISTENER) {
        listener_event(r, id);
    } else if (tag == NK_EV_CONN) {
        conn_event(r, id, events);
    }
}

void nk_real_net_backlog(nk_real *r)
{
    while (r->backlog_len > 0 && !r->stop_requested) {
        uint64_t id = r->backlog[0];
        memmove(r->backlog, r->backlog + 1, (r->backlog_len - 1) * sizeof(*r->backlog));
        r->backlog_len--;
        nk_real_conn *c = nk_idmap_get(&r->conns, id);
        if (c != NULL) {
            c->in_backlog = false;
            if (c->state == CS_OPEN) {
                parse_frames(c);
            }
        }
    }
}

bool nk_real_net_flush_writes(nk_real *r)
{
    bool failed = false;
    /* Index loop: a failure callback may queue more (appended, sent here). */
    for (size_t i = 0; i < r->wpend_len; i++) {
        nk_real_conn *c = nk_idmap_get(&r->conns, r->wpend[i]);
        if (c == NULL) {
            continue;
        }
        c->in_wpend = false;
        if (c->state != CS_OPEN) {
            continue; /* linger and close do their own flushing */
        }
        int rc = flush(c);
        if (rc == NK_OK && update_events(c) != NK_OK) {
            rc = NK_EIO;
        }
        if (rc != NK_OK) {
            conn_fail(c, rc);
            failed = true;
        }
    }
    r->wpend_len = 0;
    return failed;
}

void nk_real_net_reap(nk_real *r)
{
    while (r->grave_conns != NULL) {
        nk_real_conn *c = r->grave_conns;
        r->grave_conns = c->grave_next;
        conn_free(c);
    }
    while (r->grave_listeners != NULL) {
        nk_real_listener *l = r->grave_listeners;
        r->grave_listeners = l->grave_next;
        free(l);
    }
}

void nk_real_net_free_all(nk_real *r)
{
    void **vals;
    size_t n;
    if (nk_idmap_values(&r->conns, &vals, &n) == NK_OK) {
        for (size_t i = 0; i < n; i++) {
            nk_real_conn *c = vals[i];
            close(c->fd);
            conn_free(c);
        }
        free(vals);
    }
    nk_idmap_free(&r->conns);
    if (nk_idmap_values(&r->listeners, &vals, &n) == NK_OK) {
        for (size_t i = 0; i < n; i++) {
            nk_real_listener *l = vals[i];
            close(l->fd);
            free(l);
        }
        free(vals);
    }
    nk_idmap_free(&r->listeners);
    nk_real_net_reap(r);
}
