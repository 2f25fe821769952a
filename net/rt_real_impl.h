/*
 * rt_real_impl.h - internals shared by the files of the real runtime
 * (rt_real.c: loop, timers, jobs, signals, log, failpoints; tcp.c: network).
 * Not for use outside net/.
 *
 * Re-entrancy rules followed by every dispatch path:
 *   - an object (connection, listener) is looked up by id for every event;
 *     a closed one is removed from its id map at once, so stale events and
 *     stale ids find nothing;
 *   - its memory is parked on a "grave" list and freed only at the end of
 *     the loop iteration, so a dispatcher holding a pointer across a
 *     callback that closed the object still reads valid (dead-marked) memory;
 *   - after every callback the dispatcher re-checks the object's state and
 *     the stop flag before touching anything else.
 */
#ifndef NK_NET_RT_REAL_IMPL_H
#define NK_NET_RT_REAL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/idmap.h"
#include "net/rt_real.h"
#include "net/timer_heap.h"

/* epoll_event.data.u64 = tag << 56 | id */
#define NK_EV_TAG_SHIFT 56
#define NK_EV_ID_MASK ((1ull << NK_EV_TAG_SHIFT) - 1)
enum { NK_EV_LISTENER = 1, NK_EV_CONN = 2, NK_EV_JOBS = 3, NK_EV_SIGNAL = 4 };

typedef struct nk_real_conn nk_real_conn;
typedef struct nk_real_listener nk_real_listener;
typedef struct nk_real_job nk_real_job;

typedef struct nk_real_failpoint {
    char *name;
    bool crash; /* false: error */
} nk_real_failpoint;

typedef struct nk_real {
    nk_rt rt; /* public face; rt.impl points back here */

    int epfd;
    int jobfd; /* eventfd: workers -> loop */
    int sigfd;
    bool owns_signals;
        /* took SIGTERM/SIGINT (nk_rt_real_config.no_signals unset) */ /* signalfd for
                                                                          SIGTERM/SIGINT */

    bool running;
    bool stop_requested;
    bool freeing;

    /* timers */
    nk_timer_heap timers;
    uint64_t next_timer_id;

    /* network (tcp.c) */
    nk_idmap conns;
    nk_idmap listeners;
    uint64_t next_conn_id;
    uint64_t next_listener_id;
    nk_real_conn *grave_conns;
    nk_real_listener *grave_listeners;
    uint64_t *backlog; /* conns holding complete, undelivered frames */
    size_t backlog_len;
    size_t backlog_cap;
    uint64_t *wpend; /* conns with replies queued this iteration, not yet sent */
    size_t wpend_len;
    size_t wpend_cap;
    uint8_t *scratch; /* read buffer for raw chunks */

    /* jobs */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    nk_real_job *queue_head, *queue_tail; /* submitted, not started */
    nk_real_job *done_head, *done_tail;   /* work finished, done pending */
    bool job_shutdown;
    pthread_t *workers;
    unsigned nworkers;

    /* signals / shutdown */
    nk_shutdown_fn shutdown_fn;
    void *shutdown_arg;
    unsigned signals_seen;

    /* log: fd is stderr or the file; swapped under the log mutex on SIGHUP */
    int log_fd;
    char *log_path;
    nk_log_format log_format;
    bool log_prio;

    /* failpoints (immutable after new: safe from workers) */
    nk_real_failpoint *fps;
    size_t nfps;
} nk_real;

/* rt_real.c */
uint64_t nk_real_now(nk_real *r);
uint64_t nk_real_timer_start(nk_real *r, uint64_t delay_ns, nk_timer_fn fn, void *arg);
int nk_real_timer_cancel(nk_real *r, uint64_t id);
int nk_real_ep_add(nk_real *r, int fd, uint32_t events, unsigned tag, uint64_t id);
int nk_real_ep_mod(nk_real *r, int fd, uint32_t events, unsigned tag, uint64_t id);
void nk_real_ep_del(nk_real *r, int fd);

/* tcp.c */
int nk_real_listen(void *impl, const char *addr, const nk_net_handlers *h, void *ctx,
                   uint64_t *listener_id);
int nk_real_listener_addr(void *impl, uint64_t listener_id, char *buf, size_t len);
int nk_real_listener_close(void *impl, uint64_t listener_id);
int nk_real_connect(void *impl, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                    void *ctx, uint64_t *conn);
int nk_real_send(void *impl, uint64_t conn, uint8_t kind, const void *data, size_t len);
int nk_real_send_raw(void *impl, uint64_t conn, const void *data, size_t len);
size_t nk_real_conn_pending(void *impl, uint64_t conn);
int nk_real_close(void *impl, uint64_t conn);

/* Parse strict "a.b.c.d:port" into a network-order address and host-order
 * port. allow_port0: listeners may ask for any free port, connects may not. */
int nk_real_parse_addr(const char *addr, bool allow_port0, uint32_t *ip_be, uint16_t *port);

void nk_real_net_event(nk_real *r, unsigned tag, uint64_t id, uint32_t events);
/* Deliver frames parsed earlier but held back by a stop. */
void nk_real_net_backlog(nk_real *r);
/* Send what was queued during the iteration, one send(2) per connection,
 * before the loop sleeps; EPOLLOUT is armed only for what the socket did
 * not take. Returns true when a connection failed (its on_close ran and may
 * have started timers: the caller must not sleep on a stale timeout). */
bool nk_real_net_flush_writes(nk_real *r);
/* Free closed objects parked during this iteration. */
void nk_real_net_reap(nk_real *r);
/* Close and free everything (nk_rt_real_free). */
void nk_real_net_free_all(nk_real *r);

#endif /* NK_NET_RT_REAL_IMPL_H */
