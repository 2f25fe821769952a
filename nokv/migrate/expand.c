/* expand.c - expand, transfer-leader and remove-peer (see expand.h). */
#include "nokv/migrate/expand.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/client/admin_client.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/proto/admin.h"

enum stage {
    X_LEADER_STATUS = 1,
    X_TARGET_STATUS,
    X_GHOST_REMOVE,
    X_GHOST_WAIT,
    X_DESTROY_EMPTY,
    X_EXPORT,
    X_IMPORT_BEGIN,
    X_READ,
    X_CHUNK,
    X_FINISH,
    X_RELEASE,
    X_ADD,
    X_WAIT_MEMBER,
    X_CATCHUP,
    X_PROMOTE,
    X_WAIT_VOTER,
    X_VERIFY,
    X_ANNOUNCE,
    T_STATUS,
    T_TRANSFER,
    T_WAIT,
    T_VERIFY,
    R_STATUS,
    R_REMOVE,
    R_WAIT,
    R_VERIFY,
    R_DESTROY,
};

static const char *stage_label(int s)
{
    switch (s) {
    case X_LEADER_STATUS:
    case T_STATUS:
    case R_STATUS:
        return "leader-status";
    case X_TARGET_STATUS:
        return "target-status";
    case X_GHOST_REMOVE:
    case X_GHOST_WAIT:
        return "remove-ghost-peer";
    case X_DESTROY_EMPTY:
        return "drop-empty-replica";
    case X_EXPORT:
        return "snapshot-export";
    case X_IMPORT_BEGIN:
    case X_READ:
    case X_CHUNK:
        return "snapshot-stream";
    case X_FINISH:
        return "snapshot-install";
    case X_RELEASE:
        return "snapshot-release";
    case X_ADD:
    case X_WAIT_MEMBER:
        return "add-learner";
    case X_CATCHUP:
        return "catch-up";
    case X_PROMOTE:
    case X_WAIT_VOTER:
        return "promote";
    case X_VERIFY:
        return "verify";
    case X_ANNOUNCE:
        return "announce-addresses";
    case T_TRANSFER:
    case T_WAIT:
        return "transfer-leader";
    case T_VERIFY:
        return "verify-new-leader";
    case R_REMOVE:
    case R_WAIT:
        return "remove-peer";
    case R_VERIFY:
        return "verify-removed";
    case R_DESTROY:
        return "tombstone-stale-replica";
    default:
        return "?";
    }
}

struct nk_rollout {
    nk_rt *rt;
    nk_rollout_options o;
    nk_rollout_done_fn done;
    void *arg;
    bool finished;
    nk_admin_client *lc; /* leader */
    nk_admin_client *tc; /* current target / peer store */
    int stage;
    uint64_t stage_start;
    uint64_t timer;
    unsigned ti;
    unsigned attempts;
    int rc;
    nk_admin_req *q;
    nk_admin_resp *r;
    nk_admin_manifest *mf;
    nk_region ldesc;
    uint64_t commit_goal;
    uint64_t exp_session, imp_session;
    uint32_t f;
    uint64_t off, sent, total;
    bool have_answer; /* rc / r hold an answer (or a failure) to handle */
    /* The snapshot stream: a window of chunks read from the leader and
     * pushed to the target (see stream_pump). */
    struct stream_chunk {
        uint32_t file;
        uint64_t off;
        uint32_t len;
        uint64_t xxh64; /* the leader's hash of the file, on its last chunk */
        nk_buf data;
    } reads[NK_EXPAND_MAX_WINDOW], held[NK_EXPAND_MAX_WINDOW], pushed[NK_EXPAND_MAX_WINDOW];
    unsigned n_reads, n_held, n_pushed; /* FIFOs, oldest at index 0 */
    uint32_t chunk_bytes;
    unsigned window;
    unsigned max_inflight; /* the most chunks ever between leader and target */
    uint64_t pump_timer;
    int stream_rc; /* first failure of the stream (NK_OK: none) */
    char stream_msg[400];
    /* Stores of the region whose address we know (the leader, the targets
     * done): each is told every other's, since a store learns addresses
     * only from the HELLOs of stores that dialled it. */
    nk_expand_target known[NK_EXPAND_MAX_TARGETS + 1];
    unsigned n_known, ann_dst, ann_src;
};

static void issue(nk_rollout *e);
static void stream_pump(nk_rollout *e);

static void fail(nk_rollout *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(nk_rollout *e, int rc, const char *fmt, ...)
{
    if (e->finished) {
        return;
    }
    e->finished = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->done(e->arg, rc, msg);
}

static void progress(nk_rollout *e)
{
    if (e->o.progress == NULL) {
        return;
    }
    nk_rollout_progress p = {.stage = stage_label(e->stage),
                             .target = e->ti,
                             .bytes_sent = e->sent,
                             .bytes_total = e->total,
                             .elapsed_ns = nk_rt_now(e->rt) - e->stage_start,
                             .inflight = e->n_reads + e->n_held + e->n_pushed};
    if (e->o.kind == NK_ROLLOUT_EXPAND && e->ti < e->o.n_targets) {
        p.store_id = e->o.targets[e->ti].store_id;
        p.peer_id = e->o.targets[e->ti].peer_id;
    } else {
        p.peer_id = e->o.peer_id;
    }
    e->o.progress(e->o.ctx, &p);
}

static void checkpoint(nk_rollout *e, nk_stage st, uint64_t completed)
{
    if (e->o.workdir == NULL) {
        return;
    }
    nk_checkpoint cp;
    memset(&cp, 0, sizeof(cp));
    cp.stage = st;
    cp.region_id = e->o.region_id;
    cp.completed_targets = completed;
    cp.total_targets = e->o.kind == NK_ROLLOUT_EXPAND ? e->o.n_targets : 0;
    if (e->o.kind == NK_ROLLOUT_EXPAND && e->ti < e->o.n_targets) {
        cp.target_store_id = e->o.targets[e->ti].store_id;
        cp.target_peer_id = e->o.targets[e->ti].peer_id;
    } else {
        cp.target_peer_id = e->o.peer_id;
    }
    nk_errbuf eb;
    if (nk_checkpoint_write(e->rt, e->o.workdir, &cp, &eb) != NK_OK) {
        nk_log(e->rt, NK_LOG_WARN, "migrate: checkpoint not written: %s", eb.msg);
    }
}

static void go(nk_rollout *e, int stage)
{
    if (stage != e->stage) {
        e->stage_start = nk_rt_now(e->rt);
        e->stage = stage;
        progress(e);
    }
    issue(e);
}

static void handle(nk_rollout *e);

/* Timers only: a request goes out, or an answer is handled, from a fresh
 * callback, never from inside the admin client's own. */
static void poll_fire(void *arg)
{
    nk_rollout *e = arg;
    e->timer = 0;
    if (e->finished) {
        return;
    }
    if (e->have_answer) {
        e->have_answer = false;
        handle(e);
    } else {
        issue(e);
    }
}

/* Ask again after poll_ns, unless the stage ran out of time. */
static void poll_later(nk_rollout *e, const char *waiting_for)
{
    if (nk_rt_now(e->rt) - e->stage_start > e->o.stage_timeout_ns) {
        fail(e, NK_ETIMEDOUT,
             "stage %s of region %" PRIu64 " did not finish within %" PRIu64
             " s (waiting for %s); check the stores' logs, then rerun the same command to resume",
             stage_label(e->stage), e->o.region_id, e->o.stage_timeout_ns / NK_NSEC_PER_SEC,
             waiting_for);
        return;
    }
    e->timer = nk_rt_timer_start(e->rt, e->o.poll_ns, poll_fire, e);
}

static const nk_expand_target *target(nk_rollout *e)
{
    return &e->o.targets[e->ti];
}

static void on_resp(void *arg, int rc, const nk_admin_resp *p)
{
    nk_rollout *e = arg;
    if (rc == NK_ESTOPPED || e->finished) {
        return;
    }
    e->rc = rc;
    if (rc == NK_OK) {
        memcpy(e->r, p, offsetof(nk_admin_resp, manifest));
        e->r->data = nk_slice_make(NULL, 0);
        if (p->op == NK_ADMIN_SNAP_EXPORT && p->status == NK_ADMIN_OK) {
            *e->mf = p->manifest;
        }
    }
    e->have_answer = true;
    e->timer = nk_rt_timer_start(e->rt, 0, poll_fire, e);
}

static void call(nk_rollout *e, nk_admin_client *c, uint8_t op, uint64_t timeout)
{
    e->q->op = op;
    e->q->region_id = e->o.region_id;
    int rc =
        nk_admin_client_call(c, e->q, timeout != 0 ? timeout : e->o.rpc_timeout_ns, on_resp, e);
    if (rc != NK_OK) {
        e->rc = rc;
        e->have_answer = true;
        e->timer = nk_rt_timer_start(e->rt, 0, poll_fire, e);
    }
}

static void req_reset(nk_rollout *e)
{
    memset(e->q, 0, offsetof(nk_admin_req, manifest));
    e->q->manifest.n_files = 0;
}

/* Send the current stage's request. */
static void issue(nk_rollout *e)
{
    if (e->finished) {
        return;
    }
    req_reset(e);
    const nk_expand_target *t = e->o.kind == NK_ROLLOUT_EXPAND ? target(e) : NULL;
    switch (e->stage) {
    case X_LEADER_STATUS:
    case X_GHOST_WAIT:
    case X_WAIT_MEMBER:
    case X_WAIT_VOTER:
    case T_STATUS:
    case T_WAIT:
    case R_STATUS:
    case R_WAIT:
        call(e, e->lc, NK_ADMIN_REGION_STATUS, 0);
        break;
    case X_TARGET_STATUS:
    case X_CATCHUP:
    case X_VERIFY:
    case T_VERIFY:
    case R_VERIFY:
        call(e, e->tc, NK_ADMIN_REGION_STATUS, 0);
        break;
    case X_GHOST_REMOVE:
        e->q->peer_id = t->peer_id;
        e->q->force = true;
        call(e, e->lc, NK_ADMIN_REMOVE_PEER, 0);
        break;
    case X_DESTROY_EMPTY:
        e->q->peer_id = t->peer_id;
        e->q->epoch = e->ldesc.epoch;
        call(e, e->tc, NK_ADMIN_DESTROY_PEER, 0);
        break;
    case X_EXPORT:
        call(e, e->lc, NK_ADMIN_SNAP_EXPORT, e->o.stage_timeout_ns);
        break;
    case X_IMPORT_BEGIN:
        e->q->store_id = t->store_id;
        e->q->peer_id = t->peer_id;
        e->q->manifest = *e->mf;
        call(e, e->tc, NK_ADMIN_SNAP_IMPORT_BEGIN, 0);
        break;
    case X_READ:
    case X_CHUNK:
        stream_pump(e);
        break;
    case X_FINISH:
        e->q->session = e->imp_session;
        call(e, e->tc, NK_ADMIN_SNAP_IMPORT_FINISH, e->o.stage_timeout_ns);
        break;
    case X_RELEASE:
        e->q->session = e->exp_session;
        call(e, e->lc, NK_ADMIN_SNAP_RELEASE, 0);
        break;
    case X_ADD:
        e->q->store_id = t->store_id;
        e->q->peer_id = t->peer_id;
        snprintf(e->q->addr, sizeof(e->q->addr), "%s", t->addr);
        call(e, e->lc, NK_ADMIN_ADD_PEER, 0);
        break;
    case X_PROMOTE:
        e->q->peer_id = t->peer_id;
        call(e, e->lc, NK_ADMIN_PROMOTE_PEER, 0);
        break;
    case X_ANNOUNCE:
        e->q->store_id = e->known[e->ann_src].store_id;
        snprintf(e->q->addr, sizeof(e->q->addr), "%s", e->known[e->ann_src].addr);
        call(e, e->tc, NK_ADMIN_SET_ADDRESS, 0);
        break;
    case T_TRANSFER:
        e->q->peer_id = e->o.peer_id;
        call(e, e->lc, NK_ADMIN_TRANSFER_LEADER, 0);
        break;
    case R_REMOVE:
        e->q->peer_id = e->o.peer_id;
        e->q->force = e->o.force;
        call(e, e->lc, NK_ADMIN_REMOVE_PEER, 0);
        break;
    case R_DESTROY:
        e->q->peer_id = e->o.peer_id;
        e->q->epoch = e->ldesc.epoch;
        call(e, e->tc, NK_ADMIN_DESTROY_PEER, 0);
        break;
    default:
        fail(e, NK_EINVAL, "internal: unknown stage %d", e->stage);
        break;
    }
}

/* ----------------------------------------------------------- handling --- */

static bool leads(const nk_admin_resp *r)
{
    return r->hosted && r->role == NK_RAFT_LEADER;
}

static void not_leader(nk_rollout *e)
{
    const nk_admin_resp *r = e->r;
    if (r->hosted && r->leader_peer == 0) {
        poll_later(e, "an election (no leader yet)");
        return;
    }
    fail(e, NK_EAGAIN,
         "%s does not lead region %" PRIu64 " (%s; leader: peer %" PRIu64 " on store %" PRIu64
         "); rerun with --addr of the leader's store",
         nk_admin_client_addr(e->lc), e->o.region_id,
         r->hosted ? "it follows" : (r->msg[0] ? r->msg : "not hosted"), r->leader_peer,
         r->leader_store);
}

/* ------------------------------------------------------------- stream --- */

/*
 * The stream keeps up to `window` chunks between the leader and the target:
 * reads in flight to the leader, chunks held here, and pushes in flight to
 * the target. A chunk is read only while fewer than `window` are between
 * the two, and pushed only while the target's connection has less than a
 * window of bytes queued: a slow target stops the reads (and so the
 * leader's disk and sends), a slow leader leaves the pushes idle, and this
 * process never holds more than window x chunk bytes. Answers come in
 * order on each connection, so the FIFOs match them to their requests.
 * The admin client's callbacks only record; the pump runs from a timer.
 */
static void pump_fire(void *arg)
{
    nk_rollout *e = arg;
    e->pump_timer = 0;
    if (!e->finished) {
        stream_pump(e);
    }
}

static void pump_soon(nk_rollout *e)
{
    if (e->pump_timer == 0 && !e->finished) {
        e->pump_timer = nk_rt_timer_start(e->rt, 0, pump_fire, e);
    }
}

static void stream_fail(nk_rollout *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void stream_fail(nk_rollout *e, int rc, const char *fmt, ...)
{
    if (e->stream_rc != NK_OK) {
        return;
    }
    e->stream_rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->stream_msg, sizeof(e->stream_msg), fmt, ap);
    va_end(ap);
    pump_soon(e);
}

static void fifo_pop(struct stream_chunk *q, unsigned *n)
{
    nk_buf_free(&q[0].data);
    memmove(&q[0], &q[1], (*n - 1) * sizeof(q[0]));
    (*n)--;
    memset(&q[*n], 0, sizeof(q[0]));
}

static void stream_reset(nk_rollout *e)
{
    while (e->n_reads > 0) {
        fifo_pop(e->reads, &e->n_reads);
    }
    while (e->n_held > 0) {
        fifo_pop(e->held, &e->n_held);
    }
    while (e->n_pushed > 0) {
        fifo_pop(e->pushed, &e->n_pushed);
    }
    e->stream_rc = NK_OK;
    e->stream_msg[0] = '\0';
}

static void on_pushed(void *arg, int rc, const nk_admin_resp *p);

/* May a chunk go to the target now? */
static bool push_ok(nk_rollout *e)
{
    return e->n_pushed < e->window &&
           nk_admin_client_pending_bytes(e->tc) < (size_t)e->window * e->chunk_bytes;
}

/* Send chunk c (bytes `data`) to the target; it joins the pushed FIFO. */
static int push_chunk(nk_rollout *e, const struct stream_chunk *c, nk_slice data)
{
    req_reset(e);
    e->q->op = NK_ADMIN_SNAP_IMPORT_CHUNK;
    e->q->region_id = e->o.region_id;
    e->q->session = e->imp_session;
    e->q->file = c->file;
    e->q->offset = c->off;
    e->q->data = data;
    e->q->xxh64 = c->xxh64;
    int rc = nk_admin_client_call(e->tc, e->q, e->o.rpc_timeout_ns, on_pushed, e);
    if (rc != NK_OK) {
        stream_fail(e, NK_ECONNREFUSED, "stage snapshot-stream: cannot send to %s: %s",
                    nk_admin_client_addr(e->tc), nk_strerror(rc));
        return rc;
    }
    struct stream_chunk sent = *c;
    memset(&sent.data, 0, sizeof(sent.data)); /* the request is encoded and queued */
    e->pushed[e->n_pushed++] = sent;
    return NK_OK;
}

static void on_read(void *arg, int rc, const nk_admin_resp *p)
{
    nk_rollout *e = arg;
    if (rc == NK_ESTOPPED || e->finished || e->n_reads == 0) {
        return;
    }
    struct stream_chunk c = e->reads[0];
    memset(&e->reads[0].data, 0, sizeof(e->reads[0].data));
    fifo_pop(e->reads, &e->n_reads);
    if (rc != NK_OK) {
        stream_fail(e, rc == NK_ETIMEDOUT ? NK_ETIMEDOUT : NK_ECONNREFUSED,
                    "stage snapshot-stream: the leader at %s did not answer a read (%s); check "
                    "that it runs, then rerun the same command",
                    nk_admin_client_addr(e->lc), nk_strerror(rc));
        return;
    }
    if (p->status != NK_ADMIN_OK || p->data.len != c.len ||
        p->eof != (c.off + c.len == e->mf->files[c.file].size)) {
        stream_fail(e, NK_EIO, "ReadSnapshot from %s: %s: %s; rerun to export again",
                    nk_admin_client_addr(e->lc), nk_admin_status_name(p->status),
                    p->status != NK_ADMIN_OK ? p->msg : "short or misplaced chunk");
        return;
    }
    c.xxh64 = p->eof ? p->xxh64 : 0;
    if (e->n_held == 0 && push_ok(e)) {
        /* Straight through: the chunk goes out from the frame it came in
         * (encoded into the request), with no copy held here. */
        (void)push_chunk(e, &c, p->data);
        pump_soon(e);
        return;
    }
    if (nk_buf_assign(&c.data, p->data.data, p->data.len) != NK_OK) {
        stream_fail(e, NK_ENOMEM, "out of memory buffering a snapshot chunk");
        return;
    }
    e->held[e->n_held++] = c;
    pump_soon(e);
}

static void on_pushed(void *arg, int rc, const nk_admin_resp *p)
{
    nk_rollout *e = arg;
    if (rc == NK_ESTOPPED || e->finished || e->n_pushed == 0) {
        return;
    }
    uint32_t len = e->pushed[0].len;
    fifo_pop(e->pushed, &e->n_pushed);
    if (rc != NK_OK) {
        stream_fail(e, rc == NK_ETIMEDOUT ? NK_ETIMEDOUT : NK_ECONNREFUSED,
                    "stage snapshot-stream: the target at %s did not answer a chunk (%s); check "
                    "that it runs, then rerun the same command",
                    nk_admin_client_addr(e->tc), nk_strerror(rc));
        return;
    }
    if (p->status != NK_ADMIN_OK) {
        stream_fail(e, NK_EIO, "ImportSnapshotChunk on %s: %s: %s; rerun to start over",
                    nk_admin_client_addr(e->tc), nk_admin_status_name(p->status), p->msg);
        return;
    }
    e->sent += len;
    progress(e);
    pump_soon(e);
}

static void stream_pump(nk_rollout *e)
{
    if (e->stream_rc != NK_OK) {
        int rc = e->stream_rc;
        fail(e, rc, "%s", e->stream_msg);
        return;
    }
    /* Push what is held while the target keeps up. */
    while (e->n_held > 0 && push_ok(e)) {
        struct stream_chunk *c = &e->held[0];
        if (push_chunk(e, c, nk_slice_make(c->data.data, c->data.len)) != NK_OK) {
            return;
        }
        fifo_pop(e->held, &e->n_held);
    }
    /* Read ahead while the window has room. */
    while (e->n_reads + e->n_held + e->n_pushed < e->window) {
        while (e->f < e->mf->n_files && e->off >= e->mf->files[e->f].size) {
            e->f++;
            e->off = 0;
        }
        if (e->f >= e->mf->n_files) {
            break;
        }
        uint64_t left = e->mf->files[e->f].size - e->off;
        uint32_t len = left < e->chunk_bytes ? (uint32_t)left : e->chunk_bytes;
        req_reset(e);
        e->q->op = NK_ADMIN_SNAP_READ;
        e->q->region_id = e->o.region_id;
        e->q->session = e->exp_session;
        e->q->file = e->f;
        e->q->offset = e->off;
        e->q->max_len = len;
        int rc = nk_admin_client_call(e->lc, e->q, e->o.rpc_timeout_ns, on_read, e);
        if (rc != NK_OK) {
            stream_fail(e, NK_ECONNREFUSED, "stage snapshot-stream: cannot send to %s: %s",
                        nk_admin_client_addr(e->lc), nk_strerror(rc));
            return;
        }
        e->reads[e->n_reads++] = (struct stream_chunk){e->f, e->off, len, 0, {0}};
        e->off += len;
    }
    unsigned inflight = e->n_reads + e->n_held + e->n_pushed;
    if (inflight > e->max_inflight) {
        e->max_inflight = inflight;
    }
    if (inflight == 0 && e->f >= e->mf->n_files) {
        go(e, X_FINISH);
    }
}

static void open_target(nk_rollout *e, const char *addr)
{
    nk_admin_client_free(e->tc);
    e->tc = NULL;
    if (nk_admin_client_new(e->rt, addr, &e->tc) != NK_OK) {
        fail(e, NK_ENOMEM, "out of memory");
    }
}

static void announce_next(nk_rollout *e);

static void target_done(nk_rollout *e)
{
    const nk_expand_target *t = target(e);
    nk_log(e->rt, NK_LOG_INFO,
           "migrate expand: region %" PRIu64 " peer %" PRIu64 " on store %" PRIu64
           " is a voter (conf_version %" PRIu64 ")",
           e->o.region_id, t->peer_id, t->store_id, e->ldesc.epoch.conf_version);
    checkpoint(e, NK_STAGE_EXPAND_TARGET_HOSTED, e->ti + 1);
    bool listed = false;
    for (unsigned k = 0; k < e->n_known; k++) {
        listed |= e->known[k].store_id == t->store_id;
    }
    if (!listed && e->n_known < NK_EXPAND_MAX_TARGETS + 1) {
        e->known[e->n_known++] = *t;
    }
    e->ann_dst = 0;
    e->ann_src = 0;
    e->stage = X_ANNOUNCE;
    e->stage_start = nk_rt_now(e->rt);
    announce_next(e);
}

/* The next (dst, src) pair with dst != src, or the next target. */
static void announce_next(nk_rollout *e)
{
    for (; e->ann_dst < e->n_known; e->ann_dst++, e->ann_src = 0) {
        while (e->ann_src < e->n_known && e->ann_src == e->ann_dst) {
            e->ann_src++;
        }
        if (e->ann_src < e->n_known) {
            const char *addr = e->known[e->ann_dst].addr;
            if (e->tc == NULL || strcmp(nk_admin_client_addr(e->tc), addr) != 0) {
                open_target(e, addr);
                if (e->finished) {
                    return;
                }
            }
            issue(e);
            return;
        }
    }
    e->ti++;
    if (e->ti == e->o.n_targets) {
        e->finished = true;
        e->done(e->arg, NK_OK, "");
        return;
    }
    go(e, X_LEADER_STATUS);
}

static void handle_expand(nk_rollout *e)
{
    const nk_admin_resp *r = e->r;
    const nk_expand_target *t = target(e);
    const nk_region_peer *lp = NULL;
    switch (e->stage) {
    case X_LEADER_STATUS:
        if (!leads(r)) {
            not_leader(e);
            return;
        }
        e->ldesc = r->desc;
        if (e->n_known == 0) {
            e->known[0].store_id = r->leader_store;
            snprintf(e->known[0].addr, sizeof(e->known[0].addr), "%s", e->o.leader_addr);
            e->n_known = 1;
        }
        open_target(e, t->addr);
        if (!e->finished) {
            go(e, X_TARGET_STATUS);
        }
        return;
    case X_TARGET_STATUS: {
        if (r->hosted && r->local_peer != t->peer_id) {
            fail(e, NK_EEXIST,
                 "store %" PRIu64 " (%s) hosts region %" PRIu64 " as peer %" PRIu64 ", not %" PRIu64
                 "; fix the --target",
                 t->store_id, t->addr, e->o.region_id, r->local_peer, t->peer_id);
            return;
        }
        if (!r->hosted && r->known && strstr(r->msg, "applying") != NULL) {
            poll_later(e, "the target to roll back an interrupted install");
            return;
        }
        lp = nk_region_peer_by_id(&e->ldesc, t->peer_id);
        const nk_region_peer *ls = nk_region_peer_on_store(&e->ldesc, t->store_id);
        if ((ls != NULL && ls->peer_id != t->peer_id) ||
            (lp != NULL && lp->store_id != t->store_id)) {
            fail(e, NK_EEXIST,
                 "the leader lists store %" PRIu64 " / peer %" PRIu64
                 " with another peer / store; fix the --target",
                 t->store_id, t->peer_id);
            return;
        }
        if (r->hosted && r->applied_index == 0) {
            /* A replica the leader's traffic created for a ghost learner: it
             * holds no data and can never catch up (the leader's log starts
             * after the seed). The leader drops the peer, then the target
             * tombstones the replica; a fresh snapshot follows. */
            if (e->attempts++ > 20) {
                fail(e, NK_ETIMEDOUT,
                     "store %" PRIu64 " keeps an empty replica of region %" PRIu64
                     "; restart it with an empty workdir and rerun",
                     t->store_id, e->o.region_id);
                return;
            }
            go(e, lp != NULL ? X_GHOST_REMOVE : X_DESTROY_EMPTY);
        } else if (r->hosted) {
            /* A listed peer goes through AddPeer again (EXISTS, then on to
             * catch-up or verify): the leader may have changed since the
             * peer was added, and AddPeer teaches it the target's address. */
            go(e, X_ADD);
        } else if (lp != NULL) {
            nk_log(e->rt, NK_LOG_WARN,
                   "migrate expand: the leader lists peer %" PRIu64 " but store %" PRIu64
                   " does not host it (an interrupted run); removing it",
                   t->peer_id, t->store_id);
            go(e, X_GHOST_REMOVE);
        } else {
            checkpoint(e, NK_STAGE_EXPAND_TARGET_PENDING, e->ti);
            go(e, X_EXPORT);
        }
        return;
    }
    case X_GHOST_REMOVE:
        if (r->status == NK_ADMIN_BUSY) {
            poll_later(e, "the leader to accept the removal");
        } else if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EINVAL, "removing ghost peer %" PRIu64 ": %s", t->peer_id, r->msg);
        } else {
            go(e, X_GHOST_WAIT);
        }
        return;
    case X_GHOST_WAIT:
        if (!leads(r)) {
            not_leader(e);
        } else if (nk_region_peer_by_id(&r->desc, t->peer_id) != NULL) {
            poll_later(e, "the ghost peer's removal to apply");
        } else {
            e->ldesc = r->desc;
            go(e, X_TARGET_STATUS); /* re-read the target: it may hold an empty replica */
        }
        return;
    case X_DESTROY_EMPTY:
        if (r->status != NK_ADMIN_OK && r->status != NK_ADMIN_REGION_NOT_FOUND) {
            fail(e, NK_EINVAL, "DestroyStalePeer on %s: %s: %s", t->addr,
                 nk_admin_status_name(r->status), r->msg);
            return;
        }
        e->stage = X_TARGET_STATUS; /* the tombstone is taken at the store's next pump */
        poll_later(e, "the target to drop the empty replica");
        return;
    case X_EXPORT:
        if (r->status == NK_ADMIN_BUSY) {
            poll_later(e, "the leader to accept an export");
            return;
        }
        if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EIO, "ExportRegionSnapshot on %s: %s: %s", nk_admin_client_addr(e->lc),
                 nk_admin_status_name(r->status), r->msg);
            return;
        }
        e->exp_session = r->session;
        e->total = 0;
        e->sent = 0;
        for (uint32_t i = 0; i < e->mf->n_files; i++) {
            e->total += e->mf->files[i].size;
        }
        go(e, X_IMPORT_BEGIN);
        return;
    case X_IMPORT_BEGIN:
        if (r->status == NK_ADMIN_BUSY) {
            poll_later(e, "the target to accept an import");
            return;
        }
        if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EIO, "ImportRegionSnapshot on %s: %s: %s", t->addr,
                 nk_admin_status_name(r->status), r->msg);
            return;
        }
        e->imp_session = r->session;
        e->f = 0;
        e->off = 0;
        stream_reset(e);
        go(e, X_READ);
        return;
    case X_READ:
    case X_CHUNK:
        fail(e, NK_EINVAL, "internal: a stream answer outside the stream");
        return;
    case X_FINISH:
        if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EIO, "FinishImport on %s: %s: %s", t->addr, nk_admin_status_name(r->status),
                 r->msg);
            return;
        }
        go(e, X_RELEASE);
        return;
    case X_RELEASE:
        go(e, X_ADD);
        return;
    case X_ADD:
        if (r->status == NK_ADMIN_BUSY || r->status == NK_ADMIN_NOT_LEADER) {
            poll_later(e, "the leader to accept AddPeer");
        } else if (r->status != NK_ADMIN_OK && r->status != NK_ADMIN_EXISTS) {
            fail(e, NK_EINVAL, "AddPeer: %s: %s", nk_admin_status_name(r->status), r->msg);
        } else {
            /* Tests interrupt the rollout here to leave a learner behind. */
            int frc = nk_failpoint(e->rt, "migrate.expand.after_add_learner");
            if (frc != NK_OK) {
                fail(e, frc, "interrupted after AddPeer (failpoint); rerun to resume");
                return;
            }
            go(e, X_WAIT_MEMBER);
        }
        return;
    case X_WAIT_MEMBER:
        if (!leads(r)) {
            poll_later(e, "a leader");
            return;
        }
        lp = nk_region_peer_by_id(&r->desc, t->peer_id);
        if (lp == NULL) {
            poll_later(e, "the learner to be listed by the leader");
            return;
        }
        e->ldesc = r->desc;
        e->commit_goal = r->commit;
        go(e, lp->role == NK_RAFT_VOTER ? X_VERIFY : X_CATCHUP);
        return;
    case X_CATCHUP:
        if (r->hosted && r->applied_index >= e->commit_goal) {
            go(e, X_PROMOTE);
        } else {
            poll_later(e, "the learner to catch up");
        }
        return;
    case X_PROMOTE:
        if (r->status == NK_ADMIN_BUSY || r->status == NK_ADMIN_NOT_LEADER) {
            poll_later(e, "the leader to accept PromotePeer");
        } else if (r->status != NK_ADMIN_OK && r->status != NK_ADMIN_INVALID) {
            fail(e, NK_EINVAL, "PromotePeer: %s: %s", nk_admin_status_name(r->status), r->msg);
        } else {
            go(e, X_WAIT_VOTER);
        }
        return;
    case X_WAIT_VOTER:
        lp = nk_region_peer_by_id(&r->desc, t->peer_id);
        if (leads(r) && lp != NULL && lp->role == NK_RAFT_VOTER) {
            e->ldesc = r->desc;
            go(e, X_VERIFY);
        } else if (leads(r) && lp != NULL &&
                   nk_rt_now(e->rt) - e->stage_start > 2 * NK_NSEC_PER_SEC && e->attempts++ < 3) {
            go(e, X_PROMOTE); /* the proposal may have been dropped */
        } else {
            poll_later(e, "the promotion to apply");
        }
        return;
    case X_VERIFY: {
        lp = r->hosted ? nk_region_peer_by_id(&r->desc, t->peer_id) : NULL;
        if (lp != NULL && lp->role == NK_RAFT_VOTER &&
            r->desc.epoch.conf_version >= e->ldesc.epoch.conf_version) {
            e->attempts = 0;
            target_done(e);
        } else {
            poll_later(e, "the target to apply its promotion");
        }
        return;
    }
    case X_ANNOUNCE:
        /* Best effort: a store that missed it learns the address from the
         * next HELLO, and the checks of later steps would catch the rest. */
        e->ann_src++;
        announce_next(e);
        return;
    default:
        fail(e, NK_EINVAL, "internal: stage %d", e->stage);
    }
}

static void finish_ok(nk_rollout *e, nk_stage st)
{
    checkpoint(e, st, 0);
    e->finished = true;
    e->done(e->arg, NK_OK, "");
}

static void handle_transfer(nk_rollout *e)
{
    const nk_admin_resp *r = e->r;
    switch (e->stage) {
    case T_STATUS: {
        if (!leads(r)) {
            not_leader(e);
            return;
        }
        const nk_region_peer *p = nk_region_peer_by_id(&r->desc, e->o.peer_id);
        if (p == NULL || p->role != NK_RAFT_VOTER) {
            fail(e, NK_EINVAL,
                 "peer %" PRIu64 " is not a voter of region %" PRIu64 "; expand to it first",
                 e->o.peer_id, e->o.region_id);
            return;
        }
        if (r->local_peer == e->o.peer_id) {
            finish_ok(e, NK_STAGE_TRANSFER_LEADER_FINISHED); /* leads already */
            return;
        }
        checkpoint(e, NK_STAGE_TRANSFER_LEADER_STARTED, 0);
        go(e, T_TRANSFER);
        return;
    }
    case T_TRANSFER:
        if (r->status == NK_ADMIN_BUSY) {
            poll_later(e, "the leader to accept the transfer");
        } else if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EINVAL, "TransferLeader: %s: %s", nk_admin_status_name(r->status), r->msg);
        } else {
            go(e, T_WAIT);
        }
        return;
    case T_WAIT:
        if (r->hosted && r->role != NK_RAFT_LEADER && r->leader_peer == e->o.peer_id) {
            if (e->o.peer_addr != NULL) {
                open_target(e, e->o.peer_addr);
                if (!e->finished) {
                    go(e, T_VERIFY);
                }
            } else {
                finish_ok(e, NK_STAGE_TRANSFER_LEADER_FINISHED);
            }
        } else if (leads(r) && nk_rt_now(e->rt) - e->stage_start > 3 * NK_NSEC_PER_SEC &&
                   e->attempts++ < 5) {
            go(e, T_TRANSFER); /* raft aborts a transfer after an election timeout */
        } else if (r->hosted && r->role != NK_RAFT_LEADER && r->leader_peer != 0 &&
                   r->leader_peer != e->o.peer_id) {
            /* Another peer won an election meanwhile: waiting cannot help. */
            fail(e, NK_EAGAIN,
                 "leadership of region %" PRIu64 " moved to peer %" PRIu64 " on store %" PRIu64
                 ", not to peer %" PRIu64 "; rerun with --addr of the leader's store",
                 e->o.region_id, r->leader_peer, r->leader_store, e->o.peer_id);
        } else {
            poll_later(e, "the new leader to be elected");
        }
        return;
    case T_VERIFY:
        if (leads(r) && r->local_peer == e->o.peer_id) {
            finish_ok(e, NK_STAGE_TRANSFER_LEADER_FINISHED);
        } else {
            poll_later(e, "the new leader's store to report leadership");
        }
        return;
    default:
        fail(e, NK_EINVAL, "internal: stage %d", e->stage);
    }
}

static void handle_remove(nk_rollout *e)
{
    const nk_admin_resp *r = e->r;
    switch (e->stage) {
    case R_STATUS:
        if (!leads(r)) {
            not_leader(e);
            return;
        }
        if (r->local_peer == e->o.peer_id) {
            fail(e, NK_EINVAL,
                 "peer %" PRIu64 " is the leader of region %" PRIu64
                 "; run `nokv migrate transfer-leader` first",
                 e->o.peer_id, e->o.region_id);
            return;
        }
        checkpoint(e, NK_STAGE_REMOVE_PEER_STARTED, 0);
        if (nk_region_peer_by_id(&r->desc, e->o.peer_id) == NULL) {
            go(e, R_WAIT); /* removed already: validate only */
            return;
        }
        go(e, R_REMOVE);
        return;
    case R_REMOVE:
        if (r->status == NK_ADMIN_BUSY) {
            poll_later(e, "the leader to accept the removal");
        } else if (r->status != NK_ADMIN_OK) {
            fail(e, NK_EINVAL, "RemovePeer: %s: %s", nk_admin_status_name(r->status), r->msg);
        } else {
            go(e, R_WAIT);
        }
        return;
    case R_WAIT:
        if (leads(r) && nk_region_peer_by_id(&r->desc, e->o.peer_id) == NULL) {
            e->ldesc = r->desc;
            if (e->o.peer_addr != NULL) {
                open_target(e, e->o.peer_addr);
                if (!e->finished) {
                    go(e, R_VERIFY);
                }
            } else {
                finish_ok(e, NK_STAGE_REMOVE_PEER_FINISHED);
            }
        } else if (r->hosted && r->role != NK_RAFT_LEADER && r->leader_peer != 0) {
            /* Another peer leads now: this store will not apply anything
             * by itself; the rerun goes to the leader (and validates only
             * if the removal committed). */
            fail(e, NK_EAGAIN,
                 "%s lost the lead of region %" PRIu64 " to peer %" PRIu64 " on store %" PRIu64
                 " before the removal of peer %" PRIu64
                 " applied; rerun with --addr of the leader's store",
                 nk_admin_client_addr(e->lc), e->o.region_id, r->leader_peer, r->leader_store,
                 e->o.peer_id);
        } else {
            poll_later(e, "the removal to apply on the leader");
        }
        return;
    case R_VERIFY:
        if (!r->hosted || r->local_peer != e->o.peer_id) {
            finish_ok(e, NK_STAGE_REMOVE_PEER_FINISHED);
        } else if (nk_rt_now(e->rt) - e->stage_start > NK_NSEC_PER_SEC && e->attempts++ < 3) {
            /* The leader stops replicating to a removed peer as soon as it
             * appends the change, so the peer may never apply it: tell its
             * store, with the leader's newer membership as the proof. */
            go(e, R_DESTROY);
        } else {
            poll_later(e, "the removed store to drop its replica");
        }
        return;
    case R_DESTROY:
        if (r->status != NK_ADMIN_OK && r->status != NK_ADMIN_REGION_NOT_FOUND) {
            fail(e, NK_EINVAL, "DestroyStalePeer on %s: %s: %s", nk_admin_client_addr(e->tc),
                 nk_admin_status_name(r->status), r->msg);
            return;
        }
        go(e, R_VERIFY);
        return;
    default:
        fail(e, NK_EINVAL, "internal: stage %d", e->stage);
    }
}

static void handle(nk_rollout *e)
{
    if (e->rc != NK_OK) {
        /* Transport failure: waits tolerate it (stores restart, leaders
         * move); a one-shot step reports it. */
        bool waiting = e->stage == X_GHOST_WAIT || e->stage == X_WAIT_MEMBER ||
                       e->stage == X_CATCHUP || e->stage == X_WAIT_VOTER || e->stage == X_VERIFY ||
                       e->stage == T_WAIT || e->stage == T_VERIFY || e->stage == R_WAIT ||
                       e->stage == R_VERIFY;
        if (waiting) {
            poll_later(e, "a reachable store");
            return;
        }
        const char *addr = (e->stage == X_TARGET_STATUS || e->stage == X_IMPORT_BEGIN ||
                            e->stage == X_CHUNK || e->stage == X_FINISH)
                               ? nk_admin_client_addr(e->tc)
                               : nk_admin_client_addr(e->lc);
        fail(e, e->rc == NK_ETIMEDOUT ? NK_ETIMEDOUT : NK_ECONNREFUSED,
             "stage %s: store at %s did not answer (%s); check that it runs, then rerun the same "
             "command to resume",
             stage_label(e->stage), addr, nk_strerror(e->rc));
        return;
    }
    if (e->r->status == NK_ADMIN_NOT_LEADER && e->stage != X_ADD && e->stage != X_PROMOTE) {
        not_leader(e);
        return;
    }
    switch (e->o.kind) {
    case NK_ROLLOUT_EXPAND:
        handle_expand(e);
        break;
    case NK_ROLLOUT_TRANSFER_LEADER:
        handle_transfer(e);
        break;
    case NK_ROLLOUT_REMOVE_PEER:
        handle_remove(e);
        break;
    }
}

/* ---------------------------------------------------------------- api --- */

int nk_rollout_start(nk_rt *rt, const nk_rollout_options *o, nk_rollout_done_fn done, void *arg,
                     nk_rollout **out)
{
    if (o->leader_addr == NULL || o->region_id == 0 ||
        (o->kind == NK_ROLLOUT_EXPAND &&
         (o->n_targets == 0 || o->n_targets > NK_EXPAND_MAX_TARGETS)) ||
        (o->kind != NK_ROLLOUT_EXPAND && o->peer_id == 0)) {
        return NK_EINVAL;
    }
    nk_rollout *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NK_ENOMEM;
    }
    e->rt = rt;
    e->o = *o;
    e->done = done;
    e->arg = arg;
    if (e->o.poll_ns == 0) {
        e->o.poll_ns = 200 * NK_NSEC_PER_MSEC;
    }
    if (e->o.stage_timeout_ns == 0) {
        e->o.stage_timeout_ns = 60 * NK_NSEC_PER_SEC;
    }
    if (e->o.rpc_timeout_ns == 0) {
        e->o.rpc_timeout_ns = 10 * NK_NSEC_PER_SEC;
    }
    e->chunk_bytes = o->chunk_bytes == 0 || o->chunk_bytes > NK_ADMIN_CHUNK_MAX
                         ? NK_ADMIN_CHUNK_DEFAULT
                         : o->chunk_bytes;
    e->window = o->window == 0 ? NK_ADMIN_SNAP_WINDOW
                : o->window > NK_EXPAND_MAX_WINDOW ? NK_EXPAND_MAX_WINDOW
                                                   : o->window;
    e->q = malloc(sizeof(*e->q));
    e->r = malloc(sizeof(*e->r));
    e->mf = malloc(sizeof(*e->mf));
    int rc = e->q == NULL || e->r == NULL || e->mf == NULL ? NK_ENOMEM : NK_OK;
    rc = rc ? rc : nk_admin_client_new(rt, o->leader_addr, &e->lc);
    if (rc != NK_OK) {
        nk_rollout_free(e);
        return rc;
    }
    memset(e->q, 0, sizeof(*e->q));
    if (o->kind == NK_ROLLOUT_EXPAND) {
        checkpoint(e, NK_STAGE_EXPAND_ROLLOUT_STARTED, 0);
    }
    int first = o->kind == NK_ROLLOUT_EXPAND            ? X_LEADER_STATUS
                : o->kind == NK_ROLLOUT_TRANSFER_LEADER ? T_STATUS
                                                        : R_STATUS;
    e->stage = first;
    e->stage_start = nk_rt_now(rt);
    e->timer = nk_rt_timer_start(rt, 0, poll_fire, e);
    *out = e;
    return NK_OK;
}

void nk_rollout_free(nk_rollout *e)
{
    if (e == NULL) {
        return;
    }
    e->finished = true;
    if (e->timer != 0) {
        (void)nk_rt_timer_cancel(e->rt, e->timer);
    }
    if (e->pump_timer != 0) {
        (void)nk_rt_timer_cancel(e->rt, e->pump_timer);
    }
    nk_admin_client_free(e->lc);
    nk_admin_client_free(e->tc);
    stream_reset(e);
    free(e->q);
    free(e->r);
    free(e->mf);
    free(e);
}

static int parse_u64(const char **p, char stop, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9') {
        return NK_EINVAL;
    }
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            return NK_EINVAL;
        }
        v = v * 10 + (uint64_t)(*s++ - '0');
    }
    if (*s != stop || v == 0) {
        return NK_EINVAL;
    }
    *p = s + 1;
    *out = v;
    return NK_OK;
}

int nk_expand_parse_target(const char *s, nk_expand_target *t)
{
    memset(t, 0, sizeof(*t));
    const char *p = s;
    if (parse_u64(&p, ':', &t->store_id) != NK_OK || parse_u64(&p, '@', &t->peer_id) != NK_OK ||
        *p == '\0' || strlen(p) >= sizeof(t->addr) || strchr(p, ':') == NULL) {
        return NK_EINVAL;
    }
    strcpy(t->addr, p);
    return NK_OK;
}
