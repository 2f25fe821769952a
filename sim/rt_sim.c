/*
 * rt_sim.c - nokv/rt.h implemented for one simulated node.
 *
 * Every operation first checks that the node is alive: after a crash (even
 * one triggered inside the node's own callback) calls return NK_ECRASHED and
 * change nothing, so code under test unwinds through its normal error paths
 * while the outside world no longer sees it.
 */
#include "sim/sim_internal.h"

#include <inttypes.h>
#include <stdlib.h>

#include "sim/disk.h"

/* Simulated wall clock origin: 2026-01-01T00:00:00Z (display only). */
#define SIM_WALL_EPOCH_NS (1767225600ULL * NK_NSEC_PER_SEC)

int sim_failpoint_hit(sim_node *n, const char *name);

static sim_node *N(void *impl) { return impl; }

static bool alive(sim_node *n) { return n->state == SIM_NODE_UP && !n->crashed; }

#define REQUIRE_ALIVE(n)                                                                       \
    do {                                                                                       \
        if (!alive(n)) {                                                                       \
            return NK_ECRASHED;                                                                \
        }                                                                                      \
    } while (0)

static uint64_t op_now(void *impl) { return sim_node_local_now(N(impl)); }

static uint64_t op_wall(void *impl)
{
    return SIM_WALL_EPOCH_NS + N(impl)->sim->now;
}

static uint64_t op_timer_start(void *impl, uint64_t delay_ns, nk_timer_fn fn, void *arg)
{
    sim_node *n = N(impl);
    if (!alive(n) || n->stop_requested) {
        return 0;
    }
    sim_timer *t = malloc(sizeof(*t));
    if (t == NULL) {
        return 0;
    }
    t->id = ++n->next_id;
    t->fn = fn;
    t->arg = arg;
    if (nk_u64map_put(&n->timers, t->id, t) != NK_OK) {
        free(t);
        return 0;
    }
    sim_event *ev = sim_event_new(n->sim, sim_node_global_deadline(n, delay_ns), SIM_EV_TIMER, n);
    ev->id = t->id;
    sim_schedule(n->sim, ev);
    return t->id;
}

static int op_timer_cancel(void *impl, uint64_t id)
{
    sim_node *n = N(impl);
    sim_timer *t = nk_u64map_del(&n->timers, id);
    if (t == NULL) {
        return NK_ENOENT;
    }
    free(t); /* the queued event finds no timer and does nothing */
    return NK_OK;
}

/* ---------------------------------------------------------------- files --- */

static int op_file_open(void *impl, const char *path, unsigned flags, nk_file **out)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_open(n->disk, path, flags, (nk_simfile **)out);
}

static int op_file_read_at(void *impl, nk_file *f, uint64_t off, void *buf, size_t len,
                           size_t *nread)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_read_at(n->disk, (nk_simfile *)f, off, buf, len, nread);
}

static int op_file_write_at(void *impl, nk_file *f, uint64_t off, const void *buf, size_t len)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_write_at(n->disk, (nk_simfile *)f, off, buf, len);
}

static int op_file_append(void *impl, nk_file *f, const void *buf, size_t len)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_append(n->disk, (nk_simfile *)f, buf, len);
}

static int op_file_sync(void *impl, nk_file *f)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_file_sync(n->disk, (nk_simfile *)f);
}

static int op_file_size(void *impl, nk_file *f, uint64_t *size)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_file_size(n->disk, (nk_simfile *)f, size);
}

static int op_file_truncate(void *impl, nk_file *f, uint64_t size)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_truncate(n->disk, (nk_simfile *)f, size);
}

static int op_file_close(void *impl, nk_file *f)
{
    /* Always release the handle, even for a dead node: the app's stop()
     * frees its files this way. */
    sim_node *n = N(impl);
    int rc = nk_simdisk_close(n->disk, (nk_simfile *)f);
    return alive(n) ? rc : NK_ECRASHED;
}

static int op_stat(void *impl, const char *path, nk_stat *st)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_stat(n->disk, path, st);
}

static int op_dir_create(void *impl, const char *path)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_dir_create(n->disk, path);
}

static int op_dir_list(void *impl, const char *path, nk_names *out)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_dir_list(n->disk, path, out);
}

static int op_rename(void *impl, const char *from, const char *to)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_rename(n->disk, from, to);
}

static int op_link(void *impl, const char *from, const char *to)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_link(n->disk, from, to);
}

static int op_dir_lock_held(void *impl, const char *dir, bool *held)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_dir_lock_held(n->disk, dir, held);
}

static int op_fs_avail(void *impl, const char *path, uint64_t *avail)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_fs_avail(n->disk, path, avail);
}

static int op_remove(void *impl, const char *path)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_remove(n->disk, path);
}

static int op_dir_sync(void *impl, const char *path)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_dir_sync(n->disk, path);
}

static int op_dir_lock(void *impl, const char *dir, nk_dirlock **out)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return nk_simdisk_dir_lock(n->disk, dir, (nk_simlock **)out);
}

static void op_dir_unlock(void *impl, nk_dirlock *lock)
{
    nk_simdisk_dir_unlock(N(impl)->disk, (nk_simlock *)lock);
}

/* -------------------------------------------------------------- network --- */

static int op_listen(void *impl, const char *addr, const nk_net_handlers *h, void *ctx,
                     uint64_t *listener_id)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_listen(n, addr, h, ctx, listener_id);
}

static int op_listener_addr(void *impl, uint64_t listener_id, char *buf, size_t len)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_listener_addr(n, listener_id, buf, len);
}

static int op_listener_close(void *impl, uint64_t listener_id)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_listener_close(n, listener_id);
}

static int op_connect(void *impl, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                      void *ctx, uint64_t *conn)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_connect(n, addr, mode, h, ctx, conn);
}

static int op_send(void *impl, uint64_t conn, uint8_t kind, const void *data, size_t len)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_send(n, conn, kind, data, len);
}

static int op_send_raw(void *impl, uint64_t conn, const void *data, size_t len)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_send(n, conn, NK_FRAME_RAW, data, len);
}

static size_t op_conn_pending(void *impl, uint64_t conn)
{
    sim_node *n = N(impl);
    return alive(n) ? sim_net_pending(n, conn) : 0;
}

static int op_close(void *impl, uint64_t conn)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_net_close(n, conn);
}

/* ----------------------------------------------------------------- jobs --- */

static int op_job_submit(void *impl, const char *name, nk_job_fn work, nk_job_fn done, void *arg)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    if (n->stop_requested) {
        return NK_ESTOPPED;
    }
    sim_job *j = malloc(sizeof(*j));
    if (j == NULL) {
        return NK_ENOMEM;
    }
    j->id = ++n->next_id;
    j->name = name ? name : "job";
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (nk_u64map_put(&n->jobs, j->id, j) != NK_OK) {
        free(j);
        return NK_ENOMEM;
    }
    nk_sim *s = n->sim;
    uint64_t t = s->now + nk_rand_between(&s->sched_rand, s->cfg.job_min_ns, s->cfg.job_max_ns);
    sim_event *ev = sim_event_new(s, t, SIM_EV_JOB_WORK, n);
    ev->id = j->id;
    sim_schedule(s, ev);
    return NK_OK;
}

/* ------------------------------------------------------ failpoints, log --- */

static int op_failpoint(void *impl, const char *name)
{
    sim_node *n = N(impl);
    REQUIRE_ALIVE(n);
    return sim_failpoint_hit(n, name);
}

static void op_log(void *impl, nk_log_level level, const char *msg)
{
    sim_node *n = N(impl);
    nk_sim_trace(n->sim, "%s log.%s %s", n->name, nk_log_level_name(level), msg);
}

static void op_set_shutdown_handler(void *impl, nk_shutdown_fn fn, void *arg)
{
    sim_node *n = N(impl);
    n->shutdown_fn = fn;
    n->shutdown_arg = arg;
}

static void op_stop(void *impl)
{
    sim_node *n = N(impl);
    if (n->state == SIM_NODE_UP) {
        n->stop_requested = true;
    }
}

/* Simulated nodes are driven by the scheduler, never pumped by callers. */
static int op_run_once(void *impl, uint64_t timeout_ns)
{
    (void)impl;
    (void)timeout_ns;
    return NK_ENOTSUP;
}

const nk_rt_ops nk_sim_rt_ops = {
    .now = op_now,
    .wall = op_wall,
    .timer_start = op_timer_start,
    .timer_cancel = op_timer_cancel,
    .file_open = op_file_open,
    .file_read_at = op_file_read_at,
    .file_write_at = op_file_write_at,
    .file_append = op_file_append,
    .file_sync = op_file_sync,
    .file_size = op_file_size,
    .file_truncate = op_file_truncate,
    .file_close = op_file_close,
    .stat = op_stat,
    .dir_create = op_dir_create,
    .dir_list = op_dir_list,
    .rename = op_rename,
    .remove = op_remove,
    .dir_sync = op_dir_sync,
    .dir_lock = op_dir_lock,
    .dir_unlock = op_dir_unlock,
    .link = op_link,
    .fs_avail = op_fs_avail,
    .dir_lock_held = op_dir_lock_held,
    .listen = op_listen,
    .listener_addr = op_listener_addr,
    .listener_close = op_listener_close,
    .connect = op_connect,
    .send = op_send,
    .send_raw = op_send_raw,
    .conn_pending = op_conn_pending,
    .close = op_close,
    .job_submit = op_job_submit,
    .failpoint = op_failpoint,
    .log = op_log,
    .set_shutdown_handler = op_set_shutdown_handler,
    .stop = op_stop,
    .run_once = op_run_once,
};
