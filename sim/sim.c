/*
 * sim.c - the simulator's scheduler, node lifecycle, failpoints and trace.
 *
 * The scheduler is a binary min-heap of events ordered by (time, seq); seq
 * is a global counter, so two events at the same instant run in the order
 * they were scheduled and nothing depends on pointer values. Dispatching an
 * event advances global time to it (time only jumps forward).
 *
 * Events that belong to a node carry the node's incarnation; after a crash
 * or restart, the old incarnation's events are dropped unseen, which is how
 * "memory is lost" is modelled for timers, jobs and deliveries.
 */
#include "sim/sim_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim/disk.h"

#define RING_LINES 64

void nk_sim_config_default(nk_sim_config *cfg, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = seed;
    cfg->lat_min_ns = 200 * NK_NSEC_PER_USEC;
    cfg->lat_max_ns = 2 * NK_NSEC_PER_MSEC;
    cfg->tail = (nk_ratio){1, 100};
    cfg->tail_min_ns = 20 * NK_NSEC_PER_MSEC;
    cfg->tail_max_ns = 200 * NK_NSEC_PER_MSEC;
    cfg->connect_timeout_ns = 1 * NK_NSEC_PER_SEC;
    cfg->job_min_ns = 100 * NK_NSEC_PER_USEC;
    cfg->job_max_ns = 5 * NK_NSEC_PER_MSEC;
    cfg->drift_ppm_max = 200;
    cfg->sector_size = 512;
    cfg->crash_policy = nk_simdisk_crash_chaos;
    cfg->log_level = NK_LOG_INFO;
}

/* ------------------------------------------------------------ trace --- */

static void ring_push(nk_sim *s, const char *line, size_t len)
{
    char *slot = s->ring[s->ring_next];
    if (len > sizeof(s->ring[0]) - 1) {
        len = sizeof(s->ring[0]) - 1;
    }
    memcpy(slot, line, len); /* not strncpy: it pads all 160 bytes per line */
    slot[len] = '\0';
    s->ring_next = (s->ring_next + 1) % s->ring_cap;
    s->ring_total++;
}

/* Decimal digits of v, right-aligned in at least `width` (pad with `pad`),
 * written ending at `end`; returns the first byte. */
static char *put_dec(char *end, uint64_t v, int width, char pad)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v != 0);
    while (width-- > 0) {
        *--p = pad;
    }
    return p;
}

/* Every event passes here, so the line is built by hand: the same bytes as
 * "[%4" PRIu64 ".%09" PRIu64 "] %s\n" without a printf per event. */
static void trace_line(nk_sim *s, const char *body)
{
    char line[1200];
    char num[48];
    char *e = num + sizeof(num);
    char *frac = put_dec(e, s->now % NK_NSEC_PER_SEC, 9, '0');
    *--frac = '.';
    char *p = put_dec(frac, s->now / NK_NSEC_PER_SEC, 4, ' ');
    size_t n = 0;
    line[n++] = '[';
    memcpy(line + n, p, (size_t)(e - p));
    n += (size_t)(e - p);
    line[n++] = ']';
    line[n++] = ' ';
    size_t blen = strlen(body);
    if (blen > sizeof(line) - n - 2) {
        blen = sizeof(line) - n - 2;
    }
    memcpy(line + n, body, blen);
    n += blen;
    line[n] = '\n';
    /* The hash covers the time and the text, so any divergence in order,
     * timing or content changes it. */
    XXH3_64bits_update(s->hash, line, n + 1);
    ring_push(s, line, n);
    if (s->cfg.trace_out != NULL) {
        line[n] = '\0';
        fprintf(s->cfg.trace_out, "%s\n", line);
    }
}

void nk_sim_trace(nk_sim *s, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    trace_line(s, body);
}

void sim_trace_tb(nk_sim *s, const sim_tb *b)
{
    trace_line(s, b->buf);
}

/* "%s job.work %s %" PRIu64 (or job.done), once per job phase */
static void trace_job(nk_sim *s, const sim_node *n, const char *what, const char *name,
                      uint64_t id)
{
    sim_tb tb;
    tb.n = 0;
    sim_tb_str(&tb, n->name);
    sim_tb_str(&tb, what);
    sim_tb_str(&tb, name);
    sim_tb_str(&tb, " ");
    sim_tb_num(&tb, id, false);
    trace_line(s, tb.buf);
}

void sim_trace_event(nk_sim *s, const char *what, uint32_t node, uint64_t a, uint64_t b)
{
    /* "%s %s %" PRIu64 " %" PRIu64 with the node's name, or "sim" */
    sim_tb tb;
    tb.n = 0; /* no initializer: it would zero all 1024 bytes per event */
    sim_tb_str(&tb, node != 0 ? s->nodes[node - 1]->name : "sim");
    sim_tb_str(&tb, " ");
    sim_tb_str(&tb, what);
    sim_tb_str(&tb, " ");
    sim_tb_num(&tb, a, false);
    sim_tb_str(&tb, " ");
    sim_tb_num(&tb, b, false);
    trace_line(s, tb.buf);
}

void nk_sim_trace_tail(nk_sim *s, FILE *out, unsigned n)
{
    unsigned have = s->ring_total < s->ring_cap ? (unsigned)s->ring_total : s->ring_cap;
    if (n > have) {
        n = have;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (s->ring_next + s->ring_cap - n + i) % s->ring_cap;
        fprintf(out, "  %s\n", s->ring[idx]);
    }
}

/* ------------------------------------------------------------- heap --- */

static bool ev_less(const sim_event *a, const sim_event *b)
{
    if (a->time != b->time) {
        return a->time < b->time;
    }
    return a->seq < b->seq;
}

static void heap_push(nk_sim *s, sim_event *ev)
{
    if (s->heap_len == s->heap_cap) {
        size_t ncap = s->heap_cap ? s->heap_cap * 2 : 256;
        sim_event **nh = realloc(s->heap, ncap * sizeof(*nh));
        if (nh == NULL) {
            abort(); /* the simulator cannot continue deterministically */
        }
        s->heap = nh;
        s->heap_cap = ncap;
    }
    size_t i = s->heap_len++;
    s->heap[i] = ev;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(s->heap[i], s->heap[p])) {
            break;
        }
        sim_event *t = s->heap[i];
        s->heap[i] = s->heap[p];
        s->heap[p] = t;
        i = p;
    }
}

static sim_event *heap_pop(nk_sim *s)
{
    if (s->heap_len == 0) {
        return NULL;
    }
    sim_event *top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < s->heap_len && ev_less(s->heap[l], s->heap[m])) {
            m = l;
        }
        if (r < s->heap_len && ev_less(s->heap[r], s->heap[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        sim_event *t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

sim_event *sim_event_new(nk_sim *s, uint64_t time, sim_ev_type type, sim_node *node)
{
    sim_event *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        abort();
    }
    ev->time = time < s->now ? s->now : time;
    ev->type = type;
    if (node != NULL) {
        ev->node = node->id;
        ev->incarnation = node->incarnation;
    }
    return ev;
}

void sim_schedule(nk_sim *s, sim_event *ev)
{
    ev->seq = ++s->seq;
    heap_push(s, ev);
}

static void event_drop(sim_event *ev)
{
    if (ev->free_fn != NULL) {
        ev->free_fn(ev->arg);
    }
    free(ev);
}

/* ------------------------------------------------------------ nodes --- */

/* Disk events join the trace, so the hash also covers what the disk did. */
static void disk_observer(void *ctx, const char *event, const char *path, uint64_t a,
                          uint64_t b)
{
    sim_node *n = ctx;
    /* "%s disk.%s %s %" PRIu64 " %" PRIu64 */
    sim_tb tb;
    tb.n = 0; /* no initializer: it would zero all 1024 bytes per event */
    sim_tb_str(&tb, n->name);
    sim_tb_str(&tb, " disk.");
    sim_tb_str(&tb, event);
    sim_tb_str(&tb, " ");
    sim_tb_str(&tb, path);
    sim_tb_str(&tb, " ");
    sim_tb_num(&tb, a, false);
    sim_tb_str(&tb, " ");
    sim_tb_num(&tb, b, false);
    trace_line(n->sim, tb.buf);
}

sim_node *sim_node_get(nk_sim *s, uint32_t id)
{
    if (id == 0 || id > s->node_count) {
        return NULL;
    }
    return s->nodes[id - 1];
}

bool sim_node_alive(sim_node *n)
{
    return n != NULL && n->state == SIM_NODE_UP;
}

uint64_t sim_node_local_now(sim_node *n)
{
    uint64_t elapsed = n->sim->now - n->base_global;
    __int128 scaled = (__int128)elapsed * (1000000 + n->drift_ppm) / 1000000;
    return n->base_local + (uint64_t)scaled;
}

uint64_t sim_node_global_deadline(sim_node *n, uint64_t delay_ns)
{
    /* A node whose clock runs fast (ppm > 0) sees its timers fire early in
     * global time; round up so a timer never fires before its local deadline. */
    unsigned __int128 num = (unsigned __int128)delay_ns * 1000000u;
    uint64_t den = (uint64_t)(1000000 + n->drift_ppm);
    uint64_t global_delay = (uint64_t)((num + den - 1) / den);
    return n->sim->now + global_delay;
}

nk_sim *nk_sim_new(const nk_sim_config *cfg)
{
    nk_sim *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->cfg = *cfg;
    s->hash = XXH3_createState();
    s->ring_cap = RING_LINES;
    s->ring = calloc(s->ring_cap, sizeof(s->ring[0]));
    if (s->hash == NULL || s->ring == NULL) {
        free(s->ring);
        XXH3_freeState(s->hash);
        free(s);
        return NULL;
    }
    XXH3_64bits_reset_withSeed(s->hash, cfg->seed);
    nk_rand_derive(&s->sched_rand, cfg->seed, "sim.sched", 0);
    s->net = sim_net_new(s);
    if (s->net == NULL) {
        free(s->ring);
        XXH3_freeState(s->hash);
        free(s);
        return NULL;
    }
    return s;
}

static void node_release(nk_sim *s, sim_node *n);

void nk_sim_free(nk_sim *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->node_count; i++) {
        sim_node *n = s->nodes[i];
        if (n->state != SIM_NODE_DOWN) {
            sim_node_crash_now(n, false);
        }
    }
    sim_event *ev;
    while ((ev = heap_pop(s)) != NULL) {
        event_drop(ev);
    }
    free(s->heap);
    for (uint32_t i = 0; i < s->node_count; i++) {
        node_release(s, s->nodes[i]);
    }
    free(s->nodes);
    sim_net_free(s->net);
    for (size_t i = 0; i < s->fp_count; i++) {
        free(s->fps[i].name);
    }
    free(s->fps);
    free(s->marks);
    free(s->fpnames);
    free(s->ring);
    XXH3_freeState(s->hash);
    free(s);
}

int nk_sim_add_node(nk_sim *s, const char *name, const nk_sim_app *app, void *cfg,
                    uint32_t *node_id)
{
    if (strlen(name) >= sizeof(((sim_node *)0)->name) || nk_sim_node_by_name(s, name) != 0) {
        return NK_EINVAL;
    }
    sim_node **nn = realloc(s->nodes, (s->node_count + 1) * sizeof(*nn));
    if (nn == NULL) {
        return NK_ENOMEM;
    }
    s->nodes = nn;
    sim_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NK_ENOMEM;
    }
    n->sim = s;
    n->id = s->node_count + 1;
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->app = app;
    n->app_cfg = cfg;
    n->state = SIM_NODE_DOWN;

    nk_rand r;
    nk_rand_derive(&r, s->cfg.seed, "sim.node", n->id);
    uint64_t span = 2ull * s->cfg.drift_ppm_max + 1;
    n->drift_ppm = (int32_t)nk_rand_below(&r, span) - (int32_t)s->cfg.drift_ppm_max;
    /* Different nodes start their monotonic clocks at different origins, as
     * separate machines do: nothing may compare raw times across nodes. */
    n->base_local = nk_rand_between(&r, 1, 1000) * NK_NSEC_PER_SEC;
    n->base_global = 0;
    nk_rand_derive(&n->fp_rand, s->cfg.seed, "sim.failpoint", n->id);

    nk_rand disk_rand;
    nk_rand_derive(&disk_rand, s->cfg.seed, "sim.disk", n->id);
    n->disk = nk_simdisk_new(s->cfg.sector_size, &disk_rand);
    if (n->disk == NULL) {
        free(n);
        return NK_ENOMEM;
    }
    nk_simdisk_set_observer(n->disk, disk_observer, n);
    nk_u64map_init(&n->timers);
    nk_u64map_init(&n->jobs);

    n->rt.ops = &nk_sim_rt_ops;
    n->rt.impl = n;
    n->rt.node_id = n->id;
    n->rt.seed = s->cfg.seed;
    n->rt.log_level = s->cfg.log_level;

    s->nodes[s->node_count++] = n;
    if (node_id != NULL) {
        *node_id = n->id;
    }
    return NK_OK;
}

static void node_release(nk_sim *s, sim_node *n)
{
    (void)s;
    nk_u64map_free(&n->timers);
    nk_u64map_free(&n->jobs);
    nk_simdisk_free(n->disk);
    free(n);
}

uint32_t nk_sim_node_count(nk_sim *s) { return s->node_count; }

uint32_t nk_sim_node_by_name(nk_sim *s, const char *name)
{
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (strcmp(s->nodes[i]->name, name) == 0) {
            return i + 1;
        }
    }
    return 0;
}

const char *nk_sim_node_name(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    return n ? n->name : "?";
}

bool nk_sim_node_up(nk_sim *s, uint32_t node) { return sim_node_alive(sim_node_get(s, node)); }

void *nk_sim_node_state(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    return (n && n->state == SIM_NODE_UP) ? n->app_state : NULL;
}

nk_rt *nk_sim_node_rt(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    return n ? &n->rt : NULL;
}

struct nk_simdisk *nk_sim_node_disk(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    return n ? n->disk : NULL;
}

int nk_sim_node_start(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    if (n == NULL || n->state != SIM_NODE_DOWN) {
        return NK_EINVAL;
    }
    n->state = SIM_NODE_UP;
    n->crashed = false;
    n->stop_requested = false;
    n->shutdown_fn = NULL;
    n->shutdown_arg = NULL;
    sim_trace_event(s, "boot", n->id, n->incarnation, 0);
    sim_node *prev = s->current;
    s->current = n;
    int rc = n->app->start(&n->rt, n->app_cfg, &n->app_state);
    s->current = prev;
    if (rc != NK_OK) {
        nk_sim_trace(s, "%s boot failed: %s", n->name, nk_errname(rc));
        /* A failed boot leaves the node down; its partial state is gone. */
        n->app_state = NULL;
        sim_net_node_down(s, n);
        n->state = SIM_NODE_DOWN;
        n->incarnation++;
        return rc;
    }
    if (n->crashed || n->stop_requested) {
        /* died during boot (a failpoint); finish the job now */
        n->state = SIM_NODE_DYING;
    }
    if (n->state == SIM_NODE_DYING) {
        sim_node_crash_now(n, n->crashed);
    }
    return NK_OK;
}

/* Tear down a node whose memory is gone: app frees its state, the
 * incarnation changes so its queued events are dropped. */
static void node_finalize(nk_sim *s, sim_node *n)
{
    sim_node *prev = s->current;
    s->current = n;
    if (n->app_state != NULL) {
        n->app->stop(n->app_state, n->crashed);
    }
    s->current = prev;
    n->app_state = NULL;
    size_t pos = 0;
    uint64_t key;
    void *val;
    while (nk_u64map_next(&n->timers, &pos, &key, &val)) {
        free(val);
    }
    nk_u64map_free(&n->timers);
    pos = 0;
    while (nk_u64map_next(&n->jobs, &pos, &key, &val)) {
        free(val);
    }
    nk_u64map_free(&n->jobs);
    /* The app has closed what it could; anything it left open is stale. */
    nk_simdisk_reap_stale(n->disk);
    n->state = SIM_NODE_DOWN;
    n->incarnation++;
    n->shutdown_fn = NULL;
}

void sim_node_crash_now(sim_node *n, bool power_loss)
{
    nk_sim *s = n->sim;
    if (n->state == SIM_NODE_DOWN) {
        return;
    }
    if (n->state == SIM_NODE_UP) {
        if (power_loss) {
            nk_rand r;
            nk_rand_derive(&r, s->cfg.seed, "sim.crash",
                           ((uint64_t)n->id << 32) | n->incarnation);
            nk_simdisk_crash_stats cs;
            memset(&cs, 0, sizeof(cs));
            nk_simdisk_crash(n->disk, &r, &s->cfg.crash_policy, &cs);
            nk_sim_cover(s, "fault.power-loss", 1);
            /* what the power loss really cost: a crash with nothing
             * pending tests less than one that tore a write */
            nk_sim_cover(s, "disk.write-dropped", cs.writes_dropped);
            nk_sim_cover(s, "disk.write-torn", cs.writes_torn);
            nk_sim_cover(s, "disk.dirop-dropped", cs.dirops_dropped);
        } else {
            nk_sim_cover(s, "fault.kill", 1);
            /* A dead process leaves its writes in the page cache: nothing is
             * lost, nothing new becomes durable, its handles are gone. */
            nk_simdisk_kill(n->disk);
        }
        sim_trace_event(s, power_loss ? "crash" : "kill", n->id, n->incarnation, 0);
        n->crashed = true;
        sim_net_node_down(s, n);
        n->state = SIM_NODE_DYING;
    }
    /* Inside the node's own callback we must not free its state under its
     * feet; the dispatcher finalizes when the callback returns. */
    if (s->current == n) {
        return;
    }
    node_finalize(s, n);
}

void nk_sim_node_crash(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    if (n != NULL && n->state == SIM_NODE_UP) {
        sim_node_crash_now(n, true);
    }
}

void nk_sim_node_kill(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    if (n != NULL && n->state == SIM_NODE_UP) {
        sim_node_crash_now(n, false);
    }
}

static void graceful_stop_done(nk_sim *s, sim_node *n)
{
    /* The app stopped itself: its files stay as written (process exit). */
    nk_simdisk_kill(n->disk);
    sim_trace_event(s, "stopped", n->id, n->incarnation, 0);
    sim_net_node_down(s, n);
    n->crashed = false;
    node_finalize(s, n);
}

static void run_shutdown(void *arg)
{
    sim_node *n = arg;
    if (n->shutdown_fn != NULL) {
        nk_shutdown_fn fn = n->shutdown_fn;
        n->shutdown_fn = NULL;
        fn(n->shutdown_arg);
    } else {
        n->stop_requested = true;
    }
}

void nk_sim_node_stop(nk_sim *s, uint32_t node)
{
    sim_node *n = sim_node_get(s, node);
    if (n == NULL || n->state != SIM_NODE_UP) {
        return;
    }
    nk_sim_cover(s, "fault.stop", 1);
    sim_event *ev = sim_event_new(s, s->now, SIM_EV_NODE_FN, n);
    ev->node_fn = run_shutdown;
    ev->arg = n;
    ev->label = "shutdown";
    sim_schedule(s, ev);
}

/* -------------------------------------------------------- dispatch --- */

static void dispatch_node_event(nk_sim *s, sim_event *ev, sim_node *n)
{
    s->current = n;
    switch (ev->type) {
    case SIM_EV_TIMER: {
        sim_timer *t = nk_u64map_del(&n->timers, ev->id);
        if (t != NULL) {
            sim_trace_event(s, "timer", n->id, t->id, 0);
            nk_timer_fn fn = t->fn;
            void *arg = t->arg;
            free(t);
            fn(arg);
        }
        break;
    }
    case SIM_EV_JOB_WORK: {
        sim_job *j = nk_u64map_get(&n->jobs, ev->id);
        if (j != NULL) {
            trace_job(s, n, " job.work ", j->name, j->id);
            j->work(j->arg);
            /* done runs shortly after work on the loop thread */
            sim_event *done = sim_event_new(
                s, s->now + nk_rand_between(&s->sched_rand, 0, 500 * NK_NSEC_PER_USEC),
                SIM_EV_JOB_DONE, n);
            done->id = j->id;
            done->label = "job.done";
            sim_schedule(s, done);
        }
        break;
    }
    case SIM_EV_JOB_DONE: {
        sim_job *j = nk_u64map_del(&n->jobs, ev->id);
        if (j != NULL) {
            trace_job(s, n, " job.done ", j->name, j->id);
            nk_job_fn done = j->done;
            void *arg = j->arg;
            free(j);
            done(arg);
        }
        break;
    }
    case SIM_EV_NET:
    case SIM_EV_NODE_FN:
        ev->node_fn(ev->arg);
        ev->free_fn = NULL; /* node_fn consumed arg */
        break;
    default:
        break;
    }
    s->current = NULL;
    if (n->state == SIM_NODE_DYING) {
        node_finalize(s, n);
    } else if (n->stop_requested && n->state == SIM_NODE_UP) {
        graceful_stop_done(s, n);
    }
}

static void dispatch(nk_sim *s, sim_event *ev)
{
    s->events++;
    if (ev->type == SIM_EV_STEP) {
        nk_sim_trace(s, "step %s", ev->label ? ev->label : "?");
        ev->step_fn(s, ev->arg);
        return;
    }
    sim_node *n = sim_node_get(s, ev->node);
    if (n == NULL || n->state != SIM_NODE_UP || ev->incarnation != n->incarnation) {
        if (ev->free_fn != NULL) {
            ev->free_fn(ev->arg);
            ev->free_fn = NULL;
        }
        return;
    }
    dispatch_node_event(s, ev, n);
}

void nk_sim_at(nk_sim *s, uint64_t t_ns, const char *label, nk_sim_fn fn, void *arg)
{
    sim_event *ev = sim_event_new(s, t_ns, SIM_EV_STEP, NULL);
    ev->label = label;
    ev->step_fn = fn;
    ev->arg = arg;
    sim_schedule(s, ev);
}

uint64_t nk_sim_run_until(nk_sim *s, uint64_t t_ns)
{
    uint64_t n = 0;
    while (!s->halted && s->heap_len > 0 && s->heap[0]->time <= t_ns) {
        sim_event *ev = heap_pop(s);
        if (ev->time > s->now) {
            s->now = ev->time;
        }
        dispatch(s, ev);
        if (ev->free_fn != NULL) {
            ev->free_fn(ev->arg);
        }
        free(ev);
        n++;
    }
    if (!s->halted && s->now < t_ns) {
        s->now = t_ns;
    }
    return n;
}

void nk_sim_halt(nk_sim *s) { s->halted = true; }
bool nk_sim_halted(nk_sim *s) { return s->halted; }
uint64_t nk_sim_now(nk_sim *s) { return s->now; }
uint64_t nk_sim_events(nk_sim *s) { return s->events; }
uint64_t nk_sim_seed(nk_sim *s) { return s->cfg.seed; }

uint64_t nk_sim_trace_hash(nk_sim *s)
{
    return XXH3_64bits_digest(s->hash);
}

void nk_sim_rand_stream(nk_sim *s, const char *name, nk_rand *out)
{
    nk_rand_derive(out, s->cfg.seed, name, 0);
}

/* ------------------------------------------------------- failpoints --- */

static sim_failpoint *fp_add(nk_sim *s)
{
    sim_failpoint *nf = realloc(s->fps, (s->fp_count + 1) * sizeof(*nf));
    if (nf == NULL) {
        abort();
    }
    s->fps = nf;
    sim_failpoint *fp = &s->fps[s->fp_count++];
    memset(fp, 0, sizeof(*fp));
    return fp;
}

/* The slot of `name` in the name table (grown to keep it at most half
 * full), created empty when missing. Open addressing on a hash of the
 * text, so the order of anything observable never depends on it. */
static sim_fpname *fpname_slot(nk_sim *s, const char *name)
{
    if (2 * (s->fpn_count + 1) > s->fpn_cap) {
        size_t ncap = s->fpn_cap ? 2 * s->fpn_cap : 64;
        sim_fpname *nt = calloc(ncap, sizeof(*nt));
        if (nt == NULL) {
            abort();
        }
        for (size_t i = 0; i < s->fpn_cap; i++) {
            if (s->fpnames[i].name != NULL) {
                size_t h = (size_t)XXH3_64bits(s->fpnames[i].name, strlen(s->fpnames[i].name));
                while (nt[h & (ncap - 1)].name != NULL) {
                    h++;
                }
                nt[h & (ncap - 1)] = s->fpnames[i];
            }
        }
        free(s->fpnames);
        s->fpnames = nt;
        s->fpn_cap = ncap;
    }
    size_t h = (size_t)XXH3_64bits(name, strlen(name));
    for (;; h++) {
        sim_fpname *e = &s->fpnames[h & (s->fpn_cap - 1)];
        if (e->name == NULL) {
            e->cov = SIZE_MAX;
            s->fpn_count++;
            return e; /* the caller sets e->name to a copy that lives in fps */
        }
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
}

int nk_sim_failpoint_arm(nk_sim *s, uint32_t node, const char *name, nk_sim_fp_action action,
                         uint32_t count, nk_ratio prob)
{
    if (name == NULL || name[0] == '\0' || (node != 0 && sim_node_get(s, node) == NULL)) {
        return NK_EINVAL;
    }
    if (action == NK_SIM_FP_OFF) {
        /* Disarm: every armed record of this name that applies to `node`
         * (all nodes when node is 0) stops firing; hit counts are kept. */
        for (size_t i = 0; i < s->fp_count; i++) {
            sim_failpoint *fp = &s->fps[i];
            if (fp->action != NK_SIM_FP_OFF && strcmp(fp->name, name) == 0 &&
                (node == 0 || fp->node == node)) {
                fp->limited = true;
                fp->remaining = 0;
            }
        }
        nk_sim_trace(s, "failpoint.disarm %s node=%u", name, node);
        return NK_OK;
    }
    sim_failpoint *fp = fp_add(s);
    fp->node = node;
    fp->name = strdup(name);
    sim_fpname *e = fpname_slot(s, name);
    if (e->name == NULL) {
        e->name = fp->name;
    }
    e->armed = true;
    fp->action = action;
    fp->remaining = count;
    fp->limited = count > 0;
    fp->prob = prob;
    nk_sim_trace(s, "failpoint.arm %s node=%u action=%d count=%u", name, node, (int)action,
                 count);
    return NK_OK;
}

/* Called through nk_failpoint() from the node runtime. */
int sim_failpoint_hit(sim_node *n, const char *name);
int sim_failpoint_hit(sim_node *n, const char *name)
{
    nk_sim *s = n->sim;
    /* Every name hit gets a coverage record (action OFF, node 0), created
     * before any pointer into the array is taken: fp_add may move it. */
    sim_fpname *e = fpname_slot(s, name);
    if (e->cov != SIZE_MAX) {
        s->fps[e->cov].hits++;
    } else {
        e->cov = s->fp_count;
        sim_failpoint *cov = fp_add(s);
        cov->name = strdup(name);
        cov->action = NK_SIM_FP_OFF;
        cov->hits = 1;
        if (e->name == NULL) {
            e->name = cov->name;
        }
    }
    if (!e->armed) {
        return NK_OK; /* the common case: nothing was ever armed here */
    }
    sim_failpoint *match = NULL;
    for (size_t i = 0; i < s->fp_count; i++) {
        sim_failpoint *fp = &s->fps[i];
        if (fp->action == NK_SIM_FP_OFF || strcmp(fp->name, name) != 0) {
            continue;
        }
        if (fp->node != 0 && fp->node != n->id) {
            continue;
        }
        fp->hits++;
        if (match == NULL && (!fp->limited || fp->remaining > 0)) {
            match = fp;
        }
    }
    if (match == NULL) {
        return NK_OK;
    }
    bool fire = match->prob.den == 0 ||
                nk_rand_chance(&n->fp_rand, match->prob.num, match->prob.den);
    if (!fire) {
        return NK_OK;
    }
    if (match->limited) {
        match->remaining--;
    }
    match->fired++;
    nk_sim_trace(s, "%s failpoint.fire %s action=%d", n->name, name, (int)match->action);
    switch (match->action) {
    case NK_SIM_FP_ERROR:
        return NK_EFAILPOINT;
    case NK_SIM_FP_CRASH:
        sim_node_crash_now(n, true);
        return NK_ECRASHED;
    case NK_SIM_FP_KILL:
        sim_node_crash_now(n, false);
        return NK_ECRASHED;
    default:
        return NK_OK;
    }
}

void nk_sim_failpoint_stats(nk_sim *s, const char *name, uint64_t *hits, uint64_t *fired)
{
    uint64_t h = 0;
    uint64_t f = 0;
    for (size_t i = 0; i < s->fp_count; i++) {
        if (strcmp(s->fps[i].name, name) == 0) {
            if (s->fps[i].action == NK_SIM_FP_OFF && s->fps[i].node == 0) {
                h = s->fps[i].hits; /* coverage record counts every hit once */
            }
            f += s->fps[i].fired;
        }
    }
    if (hits) {
        *hits = h;
    }
    if (fired) {
        *fired = f;
    }
}

unsigned nk_sim_failpoint_report_unfired(nk_sim *s, FILE *out)
{
    unsigned n = 0;
    for (size_t i = 0; i < s->fp_count; i++) {
        sim_failpoint *fp = &s->fps[i];
        if (fp->action != NK_SIM_FP_OFF && fp->fired == 0) {
            fprintf(out, "  armed failpoint never fired: %s (node %u, hits %" PRIu64 ")\n",
                    fp->name, fp->node, fp->hits);
            n++;
        }
    }
    return n;
}

void nk_sim_disk_faults(nk_sim *s, uint32_t node, nk_ratio read_corrupt, nk_ratio sync_fail)
{
    for (uint32_t i = 0; i < s->node_count; i++) {
        if (node != 0 && node != i + 1) {
            continue;
        }
        nk_simdisk_faults f;
        memset(&f, 0, sizeof(f));
        f.read_corrupt = (nk_simdisk_ratio){read_corrupt.num, read_corrupt.den};
        f.sync_fail = (nk_simdisk_ratio){sync_fail.num, sync_fail.den};
        nk_simdisk_set_faults(s->nodes[i]->disk, &f);
    }
}

/* ----------------------------------------------------------- coverage --- */

void nk_sim_cover(nk_sim *s, const char *name, uint64_t n)
{
    if (s == NULL || n == 0) {
        return;
    }
    for (size_t i = 0; i < s->mark_count; i++) {
        if (strcmp(s->marks[i].name, name) == 0) {
            s->marks[i].count += n;
            return;
        }
    }
    struct sim_mark *nm = realloc(s->marks, (s->mark_count + 1) * sizeof(*nm));
    if (nm == NULL) {
        return; /* coverage is best effort; the run itself is unaffected */
    }
    s->marks = nm;
    snprintf(s->marks[s->mark_count].name, sizeof(s->marks[0].name), "%s", name);
    s->marks[s->mark_count].count = n;
    s->mark_count++;
}

void nk_sim_coverage_write(nk_sim *s, FILE *out)
{
    /* One line per failpoint name: the coverage record (node 0, OFF) holds
     * every hit; armed records add their fires. Names in first-seen order
     * (deterministic: the order of the run's events). */
    for (size_t i = 0; i < s->fp_count; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            first = strcmp(s->fps[j].name, s->fps[i].name) != 0;
        }
        if (!first) {
            continue;
        }
        uint64_t hits = 0, fired = 0;
        bool armed = false;
        for (size_t j = i; j < s->fp_count; j++) {
            const sim_failpoint *fp = &s->fps[j];
            if (strcmp(fp->name, s->fps[i].name) != 0) {
                continue;
            }
            if (fp->action == NK_SIM_FP_OFF && fp->node == 0 && !fp->limited) {
                hits = fp->hits;
            } else {
                armed = true;
                fired += fp->fired;
            }
        }
        fprintf(out, "fp %s %" PRIu64 " %" PRIu64 " %d\n", s->fps[i].name, hits, fired, armed);
    }
    uint64_t corrupt = 0, syncfail = 0;
    for (uint32_t i = 0; i < s->node_count; i++) {
        nk_simdisk_stats st;
        nk_simdisk_get_stats(s->nodes[i]->disk, &st);
        corrupt += st.read_corruptions;
        syncfail += st.sync_failures + st.dir_sync_failures;
    }
    nk_sim_cover(s, "disk.read-corrupt", corrupt);
    nk_sim_cover(s, "disk.sync-fail", syncfail);
    for (size_t i = 0; i < s->mark_count; i++) {
        fprintf(out, "mark %s %" PRIu64 "\n", s->marks[i].name, s->marks[i].count);
    }
}
