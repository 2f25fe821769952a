/* admin_client.c - admin service client (see admin_client.h). */
#include "nokv/client/admin_client.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"

/* One call in flight; answers come in order, so the oldest is answered
 * first. */
typedef struct pending_call {
    uint64_t id;
    uint64_t timer;
    nk_admin_cb cb;
    void *arg;
} pending_call;

struct nk_admin_client {
    nk_rt *rt;
    char addr[128];
    uint64_t conn; /* 0 = not connected */
    uint64_t next_id;
    pending_call calls[NK_ADMIN_CLIENT_MAX_INFLIGHT]; /* ring, oldest at head */
    unsigned head, n;
    nk_buf out;
    /* sync wrapper */
    bool sync_done;
    int sync_rc;
    nk_admin_resp *sync_resp;
    nk_buf sync_data;
    nk_admin_resp *scratch;
};

/* Complete the oldest call. Its slot is freed before the callback runs, so
 * the callback may issue the next call at once. */
static void finish_head(nk_admin_client *c, int rc, const nk_admin_resp *resp)
{
    if (c->n == 0) {
        return;
    }
    pending_call pc = c->calls[c->head];
    c->head = (c->head + 1) % NK_ADMIN_CLIENT_MAX_INFLIGHT;
    c->n--;
    if (pc.timer != 0) {
        (void)nk_rt_timer_cancel(c->rt, pc.timer);
    }
    pc.cb(pc.arg, rc, resp);
}

/* Fail every call in flight (the connection is gone). Calls issued by the
 * callbacks meanwhile are not failed with them: they go on a new
 * connection. */
static void fail_all(nk_admin_client *c, int rc)
{
    unsigned n = c->n;
    while (n-- > 0 && c->n > 0) {
        finish_head(c, rc, NULL);
    }
}

static void drop_conn(nk_admin_client *c)
{
    if (c->conn != 0) {
        (void)nk_rt_close(c->rt, c->conn);
        c->conn = 0;
    }
}

static void on_connect(void *ctx, uint64_t conn, int status)
{
    nk_admin_client *c = ctx;
    if (status != NK_OK && conn == c->conn) {
        c->conn = 0;
        fail_all(c, NK_ECONNREFUSED);
    }
}

static void on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data, size_t len)
{
    nk_admin_client *c = ctx;
    if (conn != c->conn) {
        return;
    }
    int rc = kind == NK_KIND_ADMIN_RESP ? nk_admin_resp_decode(data, len, c->scratch) : NK_EPROTO;
    if (rc != NK_OK || c->n == 0 || c->scratch->id != c->calls[c->head].id) {
        nk_log(c->rt, NK_LOG_WARN, "admin client: unexpected or malformed answer from %s (%s)",
               c->addr, nk_errname(rc != NK_OK ? rc : NK_EPROTO));
        drop_conn(c);
        fail_all(c, NK_EPROTO);
        return;
    }
    finish_head(c, NK_OK, c->scratch);
}

static void on_close(void *ctx, uint64_t conn, int reason)
{
    nk_admin_client *c = ctx;
    (void)reason;
    if (conn == c->conn) {
        c->conn = 0;
        fail_all(c, NK_ECLOSED);
    }
}

static const nk_net_handlers handlers = {
    .on_connect = on_connect,
    .on_message = on_message,
    .on_close = on_close,
};

/* Any call's deadline: the connection goes (a late answer must not be
 * taken for a later request's), and with it every call in flight. */
static void on_timeout_client(void *arg)
{
    nk_admin_client *c = arg;
    drop_conn(c);
    fail_all(c, NK_ETIMEDOUT);
}

int nk_admin_client_new(nk_rt *rt, const char *addr, nk_admin_client **out)
{
    if (strlen(addr) >= sizeof(((nk_admin_client *)0)->addr)) {
        return NK_EINVAL;
    }
    nk_admin_client *c = calloc(1, sizeof(*c));
    nk_admin_resp *scratch = malloc(sizeof(*scratch));
    nk_admin_resp *sync = malloc(sizeof(*sync));
    if (c == NULL || scratch == NULL || sync == NULL) {
        free(c);
        free(scratch);
        free(sync);
        return NK_ENOMEM;
    }
    c->rt = rt;
    strcpy(c->addr, addr);
    c->scratch = scratch;
    c->sync_resp = sync;
    *out = c;
    return NK_OK;
}

void nk_admin_client_free(nk_admin_client *c)
{
    if (c == NULL) {
        return;
    }
    drop_conn(c);
    fail_all(c, NK_ESTOPPED);
    nk_buf_free(&c->out);
    nk_buf_free(&c->sync_data);
    free(c->scratch);
    free(c->sync_resp);
    free(c);
}

const char *nk_admin_client_addr(const nk_admin_client *c)
{
    return c->addr;
}

unsigned nk_admin_client_inflight(const nk_admin_client *c)
{
    return c->n;
}

size_t nk_admin_client_pending_bytes(const nk_admin_client *c)
{
    return c->conn != 0 ? nk_rt_conn_pending(c->rt, c->conn) : 0;
}

int nk_admin_client_call(nk_admin_client *c, nk_admin_req *q, uint64_t timeout_ns, nk_admin_cb cb,
                         void *arg)
{
    if (c->n == NK_ADMIN_CLIENT_MAX_INFLIGHT) {
        return NK_EBUSY;
    }
    q->id = ++c->next_id;
    int rc = nk_admin_req_encode(q, &c->out);
    if (rc != NK_OK) {
        return rc;
    }
    if (c->conn == 0) {
        uint64_t conn = 0;
        rc = nk_rt_connect(c->rt, c->addr, NK_CONN_FRAMED, &handlers, c, &conn);
        if (rc != NK_OK) {
            return rc;
        }
        c->conn = conn;
        nk_hello h = {.service = NK_SERVICE_ADMIN};
        nk_buf hb = {0};
        rc = nk_hello_encode(&h, &hb);
        rc = rc ? rc : nk_rt_send(c->rt, conn, NK_KIND_HELLO, hb.data, hb.len);
        nk_buf_free(&hb);
        if (rc != NK_OK) {
            drop_conn(c);
            return rc;
        }
    }
    rc = nk_rt_send(c->rt, c->conn, NK_KIND_ADMIN_REQ, c->out.data, c->out.len);
    if (rc != NK_OK) {
        drop_conn(c);
        fail_all(c, NK_ECLOSED); /* their answers would come on the dead connection */
        return rc;
    }
    pending_call *pc = &c->calls[(c->head + c->n) % NK_ADMIN_CLIENT_MAX_INFLIGHT];
    pc->id = q->id;
    pc->cb = cb;
    pc->arg = arg;
    pc->timer = 0;
    c->n++;
    /* One deadline per call; the oldest always expires first in effect,
     * since answers come in order. */
    pc->timer = nk_rt_timer_start(c->rt, timeout_ns != 0 ? timeout_ns : 5 * NK_NSEC_PER_SEC,
                                  on_timeout_client, c);
    return NK_OK;
}

static void sync_cb(void *arg, int rc, const nk_admin_resp *resp)
{
    nk_admin_client *c = arg;
    c->sync_done = true;
    c->sync_rc = rc;
    if (rc == NK_OK) {
        memcpy(c->sync_resp, resp, offsetof(nk_admin_resp, manifest));
        c->sync_resp->manifest.n_files = 0;
        if (resp->op == NK_ADMIN_SNAP_EXPORT && resp->status == NK_ADMIN_OK) {
            c->sync_resp->manifest = resp->manifest;
        }
        c->sync_resp->data = nk_slice_make(NULL, 0);
        if (resp->data.len > 0 &&
            nk_buf_assign(&c->sync_data, resp->data.data, resp->data.len) == NK_OK) {
            c->sync_resp->data = nk_slice_make(c->sync_data.data, c->sync_data.len);
        }
    }
}

int nk_admin_client_call_sync(nk_admin_client *c, nk_admin_req *q, uint64_t timeout_ns,
                              const nk_admin_resp **resp, nk_errbuf *eb)
{
    c->sync_done = false;
    int rc = nk_admin_client_call(c, q, timeout_ns, sync_cb, c);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "admin %s to %s: %s", nk_admin_op_name(q->op), c->addr, nk_strerror(rc));
        return rc;
    }
    /* Bounded: the call's own timer ends it at the latest. */
    while (!c->sync_done) {
        rc = nk_rt_run_once(c->rt, 100 * NK_NSEC_PER_MSEC);
        if (rc != NK_OK) {
            drop_conn(c);
            fail_all(c, rc);
            nk_errbuf_set(eb, "admin %s to %s: cannot drive the loop (%s)", nk_admin_op_name(q->op),
                          c->addr, nk_strerror(rc));
            return rc;
        }
    }
    if (c->sync_rc != NK_OK) {
        nk_errbuf_set(eb, "admin %s to %s: %s; is `nokv serve` running there?",
                      nk_admin_op_name(q->op), c->addr, nk_strerror(c->sync_rc));
        return c->sync_rc;
    }
    *resp = c->sync_resp;
    return NK_OK;
}
