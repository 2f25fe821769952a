/*
 * sim_internal.h - structures shared by the simulator's own files
 * (sim.c scheduler + nodes, net.c network, rt_sim.c node runtime).
 * Not for use outside sim/.
 */
#ifndef NK_SIM_INTERNAL_H
#define NK_SIM_INTERNAL_H

#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "nokv/util/u64map.h"
#include "sim/sim.h"

struct nk_simdisk;

typedef enum sim_ev_type {
    SIM_EV_STEP = 1,   /* global scenario step: fn(s, arg) */
    SIM_EV_TIMER,      /* node timer */
    SIM_EV_JOB_WORK,   /* node job: run work */
    SIM_EV_JOB_DONE,   /* node job: run done */
    SIM_EV_NET,        /* network delivery (message, accept, connect, close) */
    SIM_EV_NODE_FN,    /* internal per-node callback (shutdown request) */
} sim_ev_type;

typedef struct sim_event {
    uint64_t time; /* global ns */
    uint64_t seq;  /* tie-break: order of scheduling */
    sim_ev_type type;
    uint32_t node;        /* 0 for global */
    uint32_t incarnation; /* node boot generation the event belongs to */
    uint64_t id;          /* timer id / job id / net id, for the trace */
    const char *label;
    nk_sim_fn step_fn;
    void (*node_fn)(void *arg);
    void *arg;
    void (*free_fn)(void *arg); /* releases arg if the event is dropped */
} sim_event;

typedef struct sim_timer {
    uint64_t id;
    nk_timer_fn fn;
    void *arg;
} sim_timer;

typedef struct sim_job {
    uint64_t id;
    const char *name;
    nk_job_fn work;
    nk_job_fn done;
    void *arg;
} sim_job;

typedef struct sim_failpoint {
    uint32_t node; /* 0 = all */
    char *name;
    nk_sim_fp_action action;
    uint32_t remaining; /* 0 = unlimited */
    bool limited;
    nk_ratio prob;
    uint64_t hits;
    uint64_t fired;
} sim_failpoint;

typedef struct sim_fpname {
    const char *name; /* the coverage or first armed record's copy; NULL = free slot */
    size_t cov;       /* index of the coverage record in fps; SIZE_MAX = none yet */
    bool armed;       /* a record with an action exists for this name */
} sim_fpname;

typedef enum sim_node_state {
    SIM_NODE_DOWN = 0,
    SIM_NODE_UP,
    SIM_NODE_DYING, /* crashed or stopping inside its own callback */
} sim_node_state;

typedef struct sim_node {
    nk_sim *sim;
    uint32_t id;
    char name[32];
    const nk_sim_app *app;
    void *app_cfg;
    void *app_state;
    nk_rt rt;
    sim_node_state state;
    bool crashed;       /* true while DYING from a crash (I/O is dead) */
    bool stop_requested; /* nk_rt_stop called */
    uint32_t incarnation;
    struct nk_simdisk *disk;

    /* clock: local = base_local + (global - base_global) * (1e6 + ppm) / 1e6 */
    int32_t drift_ppm;
    uint64_t base_local;
    uint64_t base_global;

    uint64_t next_id; /* timer/conn/listener/job ids of this node */
    nk_u64map timers; /* id -> sim_timer */
    nk_u64map jobs;   /* id -> sim_job */
    nk_shutdown_fn shutdown_fn;
    void *shutdown_arg;
    nk_rand fp_rand; /* failpoint probability draws */
} sim_node;

typedef struct sim_net sim_net;

struct nk_sim {
    nk_sim_config cfg;
    uint64_t now;
    uint64_t seq;
    uint64_t events;
    bool halted;
    XXH3_state_t *hash;

    sim_event **heap;
    size_t heap_len;
    size_t heap_cap;

    sim_node **nodes; /* index = id - 1 */
    uint32_t node_count;
    sim_node *current; /* node whose callback is running, or NULL */

    sim_net *net;
    nk_rand sched_rand;

    sim_failpoint *fps;
    size_t fp_count;
    /* name -> its coverage record and whether any record of it was armed:
     * every nk_failpoint() call looks here instead of scanning fps */
    struct sim_fpname *fpnames;
    size_t fpn_cap, fpn_count;

    /* coverage markers (nk_sim_cover), in order of first use */
    struct sim_mark {
        char name[48];
        uint64_t count;
    } *marks;
    size_t mark_count;

    /* ring of recent trace lines for failure reports */
    char (*ring)[160];
    unsigned ring_cap;
    unsigned ring_next;
    uint64_t ring_total;
};

/* scheduler (sim.c) */
sim_event *sim_event_new(nk_sim *s, uint64_t time, sim_ev_type type, sim_node *node);
void sim_schedule(nk_sim *s, sim_event *ev);
/*
 * A trace line built without printf, for the events every run emits by the
 * thousand (timers, disk operations, deliveries): the same text as the
 * format it replaces, so the trace and its hash are unchanged.
 */
typedef struct sim_tb {
    char buf[1024];
    size_t n;
} sim_tb;

static inline void sim_tb_str(sim_tb *b, const char *str)
{
    size_t len = strlen(str);
    if (len > sizeof(b->buf) - 1 - b->n) {
        len = sizeof(b->buf) - 1 - b->n;
    }
    memcpy(b->buf + b->n, str, len);
    b->n += len;
    b->buf[b->n] = '\0';
}

/* v in base 10, or base 16 zero-padded to 16 digits (PRIx64 with %016). */
static inline void sim_tb_num(sim_tb *b, uint64_t v, bool hex16)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp) - 1, *p = e;
    *e = '\0';
    if (hex16) {
        for (int i = 0; i < 16; i++, v >>= 4) {
            *--p = "0123456789abcdef"[v & 15];
        }
    } else {
        do {
            *--p = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
    }
    sim_tb_str(b, p);
}

/* Emit the built line (nk_sim_trace without the formatting). */
void sim_trace_tb(nk_sim *s, const sim_tb *b);

void sim_trace_event(nk_sim *s, const char *what, uint32_t node, uint64_t a, uint64_t b);
uint64_t sim_node_local_now(sim_node *n);
uint64_t sim_node_global_deadline(sim_node *n, uint64_t delay_ns);
sim_node *sim_node_get(nk_sim *s, uint32_t id);
bool sim_node_alive(sim_node *n); /* up and not dying */
void sim_node_crash_now(sim_node *n, bool power_loss);

/* network (net.c) */
sim_net *sim_net_new(nk_sim *s);
void sim_net_free(sim_net *net);
void sim_net_node_down(nk_sim *s, sim_node *n); /* drop listeners, break connections */
int sim_net_listen(sim_node *n, const char *addr, const nk_net_handlers *h, void *ctx,
                   uint64_t *listener_id);
int sim_net_listener_addr(sim_node *n, uint64_t listener_id, char *buf, size_t len);
int sim_net_listener_close(sim_node *n, uint64_t listener_id);
int sim_net_connect(sim_node *n, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                    void *ctx, uint64_t *conn);
int sim_net_send(sim_node *n, uint64_t conn, uint8_t kind, const void *data, size_t len);
size_t sim_net_pending(sim_node *n, uint64_t conn);
int sim_net_close(sim_node *n, uint64_t conn);

/* node runtime (rt_sim.c) */
extern const nk_rt_ops nk_sim_rt_ops;

#endif /* NK_SIM_INTERNAL_H */
