/*
 * echo.c - the `echo` workload: durable, ordered message streams between
 * nodes, written only against nokv/rt.h, plus its checker.
 *
 * Every node A keeps one outgoing framed connection to every other node B and
 * streams numbered messages (seq 1, 2, 3, ...) with payloads derived from
 * (A, B, seq). B appends each in-order message to its log file and acks it
 * only after a group-commit sync (a background job) made it durable. On
 * (re)connect A says HELLO, B answers with its durable high-water mark, and A
 * resends from there, so the stream survives breaks, partitions and crashes.
 *
 * This exercises every part of the runtime (timers, framed connections,
 * files, sync, jobs, failpoints, logging) the way the store will, and it has
 * a checker that can fail:
 *   - durability: after a restart, B's recovered log holds every message it
 *     had acknowledged to A (an ack is a promise the message is durable);
 *   - order: B never sees a gap within one connection;
 *   - integrity: every payload is exactly the bytes A derived; a corrupt
 *     record in the log is reported, never silently used;
 *   - liveness: after the faults end, every pair keeps making progress.
 *
 * `option bug=ack-before-sync` makes B ack on append instead of after sync:
 * a deliberately broken variant the durability checker must catch.
 *
 * Log file /echo/log: records of 24 bytes, [u32 magic "ECHO"][u32 from]
 * [u64 seq][u64 xxh64 of the first 16 bytes]. A record that fails its check
 * ends recovery: it and everything after it were never synced (sync covers
 * whole prefixes of this append-only file), so the file is cut there.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "sim/scenario.h"
#include "sim/workload.h"

#define ECHO_MAX_NODES 16
#define ECHO_PORT 7000
#define ECHO_REC 24
#define ECHO_MAGIC 0x4f484345u /* "ECHO" little-endian */
#define ECHO_WINDOW 32         /* unacked messages in flight per stream */

enum { K_HELLO = 1, K_HWM = 2, K_DATA = 3, K_ACK = 4 };

typedef struct echo_world echo_world;

typedef struct echo_cfg {
    echo_world *w;
    uint32_t node;
} echo_cfg;

struct echo_world {
    nk_sim *s;
    nk_sim_result *res;
    uint32_t nodes;
    uint64_t interval_ns;
    unsigned burst;
    bool bug_ack_before_sync;
    echo_cfg cfgs[ECHO_MAX_NODES + 1];
    /* claims[a][b]: highest seq of a's stream that b acknowledged as durable,
     * as a learned it. The promise the durability check holds b to. */
    uint64_t claims[ECHO_MAX_NODES + 1][ECHO_MAX_NODES + 1];
    uint64_t mark[ECHO_MAX_NODES + 1][ECHO_MAX_NODES + 1];
    bool marked;
    uint64_t restarts_checked;
};

/* Sender side: our stream to one peer. */
typedef struct echo_out {
    struct echo_app *app;
    uint32_t peer;
    uint64_t conn; /* 0 when disconnected */
    bool streaming;
    uint64_t next_seq;
    uint64_t acked;
    uint64_t retry_timer;
} echo_out;

/* Receiver side: one accepted connection. */
typedef struct echo_in {
    uint64_t conn;
    uint32_t from; /* 0 until HELLO */
} echo_in;

typedef struct echo_app {
    nk_rt *rt;
    echo_cfg *cfg;
    echo_world *w;
    uint32_t self;
    nk_rand rand;
    uint64_t listener;
    nk_file *log;
    uint64_t log_size;
    echo_out out[ECHO_MAX_NODES + 1];
    echo_in in[4 * ECHO_MAX_NODES];
    uint64_t received[ECHO_MAX_NODES + 1]; /* appended to the log */
    uint64_t durable[ECHO_MAX_NODES + 1];  /* synced */
    bool sync_running;
    struct echo_sync *sync_job;
    uint64_t tick_timer;
    bool failed; /* a fatal local error: stop doing work */
} echo_app;

typedef struct echo_sync {
    echo_app *app; /* NULL once the app is gone */
    nk_rt *rt;
    nk_file *f;
    int rc;
    uint64_t upto[ECHO_MAX_NODES + 1];
} echo_sync;

/* --------------------------------------------------------------- helpers --- */

static size_t payload_of(uint32_t from, uint32_t to, uint64_t seq, uint8_t *buf)
{
    nk_rand r;
    nk_rand_derive(&r, ((uint64_t)from << 32) | to, "echo.payload", seq);
    size_t len = 8 + (size_t)nk_rand_below(&r, 57);
    nk_rand_bytes(&r, buf, len);
    return len;
}

static void send_u64(echo_app *a, uint64_t conn, uint8_t kind, uint64_t v)
{
    uint8_t b[8];
    nk_put_u64(b, v);
    (void)nk_rt_send(a->rt, conn, kind, b, sizeof(b));
}

static void fatal(echo_app *a, const char *what, int rc)
{
    nk_log(a->rt, NK_LOG_ERROR, "echo: %s: %s; stopping this node", what, nk_errname(rc));
    a->failed = true;
    nk_rt_stop(a->rt);
}

/* --------------------------------------------------------------- sender --- */

static void out_connect(echo_out *o);

static void out_retry(void *arg)
{
    echo_out *o = arg;
    o->retry_timer = 0;
    out_connect(o);
}

static void out_schedule_retry(echo_out *o)
{
    echo_app *a = o->app;
    if (a->failed || o->retry_timer != 0) {
        return;
    }
    uint64_t delay = nk_rand_between(&a->rand, 50, 250) * NK_NSEC_PER_MSEC;
    o->retry_timer = nk_rt_timer_start(a->rt, delay, out_retry, o);
}

static void out_pump(echo_out *o)
{
    echo_app *a = o->app;
    if (o->conn == 0 || !o->streaming) {
        return;
    }
    uint8_t buf[8 + 64];
    for (unsigned i = 0; i < a->w->burst && o->next_seq <= o->acked + ECHO_WINDOW; i++) {
        nk_put_u64(buf, o->next_seq);
        size_t len = payload_of(a->self, o->peer, o->next_seq, buf + 8);
        if (nk_rt_send(a->rt, o->conn, K_DATA, buf, 8 + len) != NK_OK) {
            return;
        }
        o->next_seq++;
    }
}

static void record_claim(echo_app *a, uint32_t peer, uint64_t seq)
{
    uint64_t *c = &a->w->claims[a->self][peer];
    if (seq > *c) {
        *c = seq;
    }
}

static void out_on_connect(void *ctx, uint64_t conn, int status)
{
    echo_out *o = ctx;
    echo_app *a = o->app;
    if (status != NK_OK) {
        o->conn = 0;
        out_schedule_retry(o);
        return;
    }
    uint8_t b[4];
    nk_put_u32(b, a->self);
    (void)nk_rt_send(a->rt, conn, K_HELLO, b, sizeof(b));
}

static void out_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data,
                           size_t len)
{
    echo_out *o = ctx;
    echo_app *a = o->app;
    if (len != 8 || (kind != K_HWM && kind != K_ACK)) {
        nk_sim_fail(a->w->s, a->w->res, NK_SIM_SAFETY, "n%u got a malformed frame kind=%u len=%zu",
                    a->self, kind, len);
        return;
    }
    uint64_t v = nk_get_u64(data);
    if (kind == K_HWM) {
        /* The peer's durable mark: everything up to v is safe, resend after. */
        record_claim(a, o->peer, v);
        if (v > o->acked) {
            o->acked = v;
        }
        o->next_seq = v + 1;
        o->streaming = true;
    } else {
        record_claim(a, o->peer, v);
        if (v > o->acked) {
            o->acked = v;
        }
    }
    (void)conn;
    out_pump(o);
}

static void out_on_close(void *ctx, uint64_t conn, int reason)
{
    echo_out *o = ctx;
    (void)conn;
    (void)reason;
    o->conn = 0;
    o->streaming = false;
    out_schedule_retry(o);
}

static const nk_net_handlers out_handlers = {
    .on_connect = out_on_connect,
    .on_message = out_on_message,
    .on_close = out_on_close,
};

static void out_connect(echo_out *o)
{
    echo_app *a = o->app;
    if (a->failed || o->conn != 0) {
        return;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "%s:%d", nk_sim_node_name(a->w->s, o->peer), ECHO_PORT);
    uint64_t conn = 0;
    int rc = nk_rt_connect(a->rt, addr, NK_CONN_FRAMED, &out_handlers, o, &conn);
    if (rc != NK_OK) {
        out_schedule_retry(o);
        return;
    }
    o->conn = conn;
    o->streaming = false;
}

/* ------------------------------------------------------------- receiver --- */

static echo_in *in_find(echo_app *a, uint64_t conn)
{
    for (size_t i = 0; i < sizeof(a->in) / sizeof(a->in[0]); i++) {
        if (a->in[i].conn == conn) {
            return &a->in[i];
        }
    }
    return NULL;
}

static void sync_start(echo_app *a);

static void sync_work(void *arg)
{
    echo_sync *j = arg;
    j->rc = nk_failpoint(j->rt, "echo.sync.before");
    if (j->rc == NK_OK) {
        j->rc = nk_rt_file_sync(j->rt, j->f);
    }
}

static void ack_all(echo_app *a)
{
    for (size_t i = 0; i < sizeof(a->in) / sizeof(a->in[0]); i++) {
        echo_in *in = &a->in[i];
        if (in->conn != 0 && in->from != 0) {
            send_u64(a, in->conn, K_ACK, a->durable[in->from]);
        }
    }
}

static void sync_done(void *arg)
{
    echo_sync *j = arg;
    echo_app *a = j->app;
    if (a == NULL) {
        free(j); /* the app stopped while we ran */
        return;
    }
    a->sync_job = NULL;
    a->sync_running = false;
    int rc = j->rc;
    if (rc != NK_OK) {
        free(j);
        /* After a failed fsync the file's state is unknown: acking anything
         * now could be a lie, so this node gives up (PostgreSQL's lesson). */
        fatal(a, "log sync failed", rc);
        return;
    }
    for (uint32_t p = 1; p <= a->w->nodes; p++) {
        if (j->upto[p] > a->durable[p]) {
            a->durable[p] = j->upto[p];
        }
    }
    free(j);
    if (!a->w->bug_ack_before_sync) {
        ack_all(a);
    }
    sync_start(a);
}

/* Start a group commit if unsynced records exist and none is running. */
static void sync_start(echo_app *a)
{
    if (a->sync_running || a->failed) {
        return;
    }
    bool dirty = false;
    for (uint32_t p = 1; p <= a->w->nodes; p++) {
        dirty = dirty || a->received[p] > a->durable[p];
    }
    if (!dirty) {
        return;
    }
    echo_sync *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        fatal(a, "out of memory", NK_ENOMEM);
        return;
    }
    j->app = a;
    j->rt = a->rt;
    j->f = a->log;
    memcpy(j->upto, a->received, sizeof(j->upto));
    int rc = nk_rt_job_submit(a->rt, "echo.sync", sync_work, sync_done, j);
    if (rc != NK_OK) {
        free(j);
        return;
    }
    a->sync_running = true;
    a->sync_job = j;
}

static void in_data(echo_app *a, echo_in *in, const uint8_t *data, size_t len)
{
    echo_world *w = a->w;
    if (in->from == 0 || len < 8) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "n%u: data before hello or short frame", a->self);
        return;
    }
    uint32_t from = in->from;
    uint64_t seq = nk_get_u64(data);
    if (seq <= a->received[from]) {
        return; /* a resend of something we already have */
    }
    if (seq != a->received[from] + 1) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "order: n%u received seq %" PRIu64 " from n%u, expected %" PRIu64
                    " (gap on an ordered connection)",
                    a->self, seq, from, a->received[from] + 1);
        return;
    }
    uint8_t want[64];
    size_t wlen = payload_of(from, a->self, seq, want);
    if (wlen != len - 8 || memcmp(want, data + 8, wlen) != 0) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "integrity: payload of n%u seq %" PRIu64 " differs at n%u", from, seq,
                    a->self);
        return;
    }
    uint8_t rec[ECHO_REC];
    nk_put_u32(rec, ECHO_MAGIC);
    nk_put_u32(rec + 4, from);
    nk_put_u64(rec + 8, seq);
    nk_put_u64(rec + 16, XXH64(rec, 16, 0));
    int rc = nk_rt_file_append(a->rt, a->log, rec, sizeof(rec));
    if (rc != NK_OK) {
        fatal(a, "log append failed", rc);
        return;
    }
    a->log_size += ECHO_REC;
    a->received[from] = seq;
    if (w->bug_ack_before_sync) {
        send_u64(a, in->conn, K_ACK, seq); /* the deliberate bug */
    }
    sync_start(a);
}

static void in_on_accept(void *ctx, uint64_t listener, uint64_t conn, const char *peer)
{
    echo_app *a = ctx;
    (void)listener;
    (void)peer;
    echo_in *slot = in_find(a, 0);
    if (slot == NULL) {
        nk_rt_close(a->rt, conn); /* out of slots: the peer will retry */
        return;
    }
    slot->conn = conn;
    slot->from = 0;
}

static void in_on_message(void *ctx, uint64_t conn, uint8_t kind, const uint8_t *data,
                          size_t len)
{
    echo_app *a = ctx;
    echo_in *in = in_find(a, conn);
    if (in == NULL) {
        return;
    }
    if (kind == K_HELLO && len == 4) {
        uint32_t from = nk_get_u32(data);
        if (from == 0 || from > a->w->nodes || from == a->self) {
            nk_rt_close(a->rt, conn);
            in->conn = 0;
            return;
        }
        /* A newer connection from the same sender supersedes older ones. */
        for (size_t i = 0; i < sizeof(a->in) / sizeof(a->in[0]); i++) {
            if (&a->in[i] != in && a->in[i].conn != 0 && a->in[i].from == from) {
                nk_rt_close(a->rt, a->in[i].conn);
                a->in[i].conn = 0;
            }
        }
        in->from = from;
        send_u64(a, conn, K_HWM, a->durable[from]);
        return;
    }
    if (kind == K_DATA) {
        in_data(a, in, data, len);
        return;
    }
    nk_sim_fail(a->w->s, a->w->res, NK_SIM_SAFETY, "n%u: unexpected frame kind %u", a->self,
                kind);
}

static void in_on_close(void *ctx, uint64_t conn, int reason)
{
    echo_app *a = ctx;
    (void)reason;
    echo_in *in = in_find(a, conn);
    if (in != NULL) {
        in->conn = 0;
        in->from = 0;
    }
}

static const nk_net_handlers in_handlers = {
    .on_accept = in_on_accept,
    .on_message = in_on_message,
    .on_close = in_on_close,
};

/* ------------------------------------------------------------- recovery --- */

/* Read the log, cut a torn tail, and check the durability promise. */
static int recover(echo_app *a)
{
    echo_world *w = a->w;
    int rc = nk_rt_dir_create(a->rt, "/echo");
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(a->rt, "/");
    } else if (rc == NK_EEXIST) {
        rc = NK_OK;
    }
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_rt_file_open(a->rt, "/echo/log", NK_OPEN_WRITE | NK_OPEN_CREATE, &a->log);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_rt_dir_sync(a->rt, "/echo");
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(a->rt, a->log, &size);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t off = 0;
    uint8_t rec[ECHO_REC];
    while (off + ECHO_REC <= size) {
        size_t got = 0;
        rc = nk_rt_file_read_at(a->rt, a->log, off, rec, ECHO_REC, &got);
        if (rc != NK_OK) {
            return rc;
        }
        if (got != ECHO_REC || nk_get_u32(rec) != ECHO_MAGIC ||
            nk_get_u64(rec + 16) != XXH64(rec, 16, 0)) {
            break; /* first bad record: the unsynced tail starts here */
        }
        uint32_t from = nk_get_u32(rec + 4);
        uint64_t seq = nk_get_u64(rec + 8);
        if (from == 0 || from > w->nodes || seq != a->received[from] + 1) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "integrity: n%u log record at offset %" PRIu64
                        " has from=%u seq=%" PRIu64 " (expected seq %" PRIu64 ")",
                        a->self, off, from, seq, from <= w->nodes ? a->received[from] + 1 : 0);
            return NK_ECORRUPT;
        }
        a->received[from] = seq;
        off += ECHO_REC;
    }
    if (off != size) {
        nk_log(a->rt, NK_LOG_INFO, "echo: cutting torn log tail at %" PRIu64 " (size %" PRIu64 ")",
               off, size);
        rc = nk_rt_file_truncate(a->rt, a->log, off);
        if (rc == NK_OK) {
            rc = nk_rt_file_sync(a->rt, a->log);
        }
        if (rc != NK_OK) {
            return rc;
        }
    }
    a->log_size = off;
    for (uint32_t p = 1; p <= w->nodes; p++) {
        a->durable[p] = a->received[p];
        /* The check that matters: nothing we promised is gone. */
        if (w->claims[p][a->self] > a->durable[p]) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "durability: n%u acknowledged seq %" PRIu64
                        " of n%u's stream as durable, but recovered only %" PRIu64,
                        a->self, w->claims[p][a->self], p, a->durable[p]);
            return NK_ECORRUPT;
        }
    }
    w->restarts_checked++;
    return NK_OK;
}

/* ------------------------------------------------------------ lifecycle --- */

static void tick(void *arg)
{
    echo_app *a = arg;
    a->tick_timer = 0;
    if (a->failed) {
        return;
    }
    for (uint32_t p = 1; p <= a->w->nodes; p++) {
        if (p != a->self) {
            out_pump(&a->out[p]);
        }
    }
    a->tick_timer = nk_rt_timer_start(a->rt, a->w->interval_ns, tick, a);
}

static void echo_shutdown(void *arg)
{
    echo_app *a = arg;
    nk_log(a->rt, NK_LOG_INFO, "echo: graceful stop");
    nk_rt_stop(a->rt);
}

static void echo_stop(void *state, bool crashed);

static int echo_start(nk_rt *rt, void *cfgp, void **state)
{
    echo_cfg *cfg = cfgp;
    echo_app *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->cfg = cfg;
    a->w = cfg->w;
    a->self = cfg->node;
    nk_rt_rand_stream(rt, "echo", &a->rand);
    *state = a;
    int rc = recover(a);
    if (rc != NK_OK) {
        echo_stop(a, false);
        *state = NULL;
        return rc;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "0.0.0.0:%d", ECHO_PORT);
    rc = nk_rt_listen(rt, addr, &in_handlers, a, &a->listener);
    if (rc != NK_OK) {
        echo_stop(a, false);
        *state = NULL;
        return rc;
    }
    nk_rt_set_shutdown_handler(rt, echo_shutdown, a);
    for (uint32_t p = 1; p <= a->w->nodes; p++) {
        if (p == a->self) {
            continue;
        }
        a->out[p].app = a;
        a->out[p].peer = p;
        a->out[p].next_seq = 1;
        out_connect(&a->out[p]);
    }
    nk_log(rt, NK_LOG_INFO, "echo: up, recovered %" PRIu64 " log bytes", a->log_size);
    a->tick_timer = nk_rt_timer_start(rt, a->w->interval_ns, tick, a);
    return NK_OK;
}

static void echo_stop(void *state, bool crashed)
{
    echo_app *a = state;
    (void)crashed;
    /* The simulator drops a stopped node's pending jobs, so the job record
     * is ours to free. (This workload only runs in the simulator.) */
    free(a->sync_job);
    if (a->log != NULL) {
        nk_rt_file_close(a->rt, a->log);
    }
    free(a);
}

static const nk_sim_app echo_app_def = {
    .name = "echo",
    .start = echo_start,
    .stop = echo_stop,
};

/* -------------------------------------------------------------- checker --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes < 2 || nodes > ECHO_MAX_NODES) {
        return NULL;
    }
    echo_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->res = res;
    w->nodes = nodes;
    w->interval_ns = 20 * NK_NSEC_PER_MSEC;
    w->burst = 4;
    for (uint32_t i = 1; i <= nodes; i++) {
        w->cfgs[i].w = w;
        w->cfgs[i].node = i;
    }
    return w;
}


static int world_option(void *wp, const char *key, const char *value)
{
    echo_world *w = wp;
    if (strcmp(key, "interval") == 0) {
        return nk_sim_parse_duration(value, &w->interval_ns);
    }
    if (strcmp(key, "burst") == 0) {
        char *end = NULL;
        unsigned long b = strtoul(value, &end, 10);
        if (*end != '\0' || b == 0 || b > 64) {
            return NK_EINVAL;
        }
        w->burst = (unsigned)b;
        return NK_OK;
    }
    if (strcmp(key, "bug") == 0) {
        if (strcmp(value, "ack-before-sync") == 0) {
            w->bug_ack_before_sync = true;
            return NK_OK;
        }
        if (strcmp(value, "none") == 0) {
            w->bug_ack_before_sync = false;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static void *world_node_cfg(void *wp, uint32_t node)
{
    echo_world *w = wp;
    return node <= w->nodes ? &w->cfgs[node] : NULL;
}

static void world_mark(echo_world *w)
{
    memcpy(w->mark, w->claims, sizeof(w->mark));
    w->marked = true;
}

/* Every ordered pair of live nodes made at least `min` acked progress since
 * the mark: faults have ended, so the streams must flow again. */
static void world_progress(echo_world *w, uint64_t min)
{
    for (uint32_t a = 1; a <= w->nodes; a++) {
        for (uint32_t b = 1; b <= w->nodes; b++) {
            if (a == b || !nk_sim_node_up(w->s, a) || !nk_sim_node_up(w->s, b)) {
                continue;
            }
            uint64_t got = w->claims[a][b] - (w->marked ? w->mark[a][b] : 0);
            if (got < min) {
                nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                            "progress: stream n%u -> n%u advanced %" PRIu64
                            " acked messages since the mark, wanted at least %" PRIu64,
                            a, b, got, min);
                return;
            }
        }
    }
}

static int world_check(void *wp, const char *name, const char *args)
{
    echo_world *w = wp;
    if (strcmp(name, "mark") == 0) {
        world_mark(w);
        return NK_OK;
    }
    if (strcmp(name, "progress") == 0) {
        uint64_t min = 1;
        if (args != NULL && strncmp(args, "min=", 4) == 0) {
            min = strtoull(args + 4, NULL, 10);
        }
        world_progress(w, min);
        return NK_OK;
    }
    return NK_EINVAL;
}

static void world_finish(void *wp)
{
    echo_world *w = wp;
    /* Live nodes: their in-memory durable marks must cover the claims too. */
    for (uint32_t b = 1; b <= w->nodes; b++) {
        echo_app *app = nk_sim_node_state(w->s, b);
        if (app == NULL) {
            continue;
        }
        for (uint32_t a = 1; a <= w->nodes; a++) {
            if (a != b && w->claims[a][b] > app->durable[a] && !w->bug_ack_before_sync) {
                nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                            "durability: n%u claims seq %" PRIu64 " of n%u durable but has %" PRIu64,
                            b, w->claims[a][b], a, app->durable[a]);
                return;
            }
        }
    }
    nk_sim_trace(w->s, "echo.finish recoveries_checked=%" PRIu64, w->restarts_checked);
}

static void world_free(void *wp) { free(wp); }

const nk_sim_workload nk_sim_workload_echo = {
    .name = "echo",
    .app = &echo_app_def,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
