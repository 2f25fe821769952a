/*
 * rt.c - dispatch from the nk_rt_* API to the backend's operations.
 *
 * Kept deliberately thin: argument checks that every backend would repeat
 * live here, policy lives in the backends.
 */
#include "nokv/rt.h"

#include <stdio.h>
#include <stdlib.h>

uint64_t nk_rt_now(nk_rt *rt) { return rt->ops->now(rt->impl); }
uint64_t nk_rt_wall(nk_rt *rt) { return rt->ops->wall(rt->impl); }

uint64_t nk_rt_timer_start(nk_rt *rt, uint64_t delay_ns, nk_timer_fn fn, void *arg)
{
    return rt->ops->timer_start(rt->impl, delay_ns, fn, arg);
}

int nk_rt_timer_cancel(nk_rt *rt, uint64_t timer_id)
{
    if (timer_id == 0) {
        return NK_ENOENT;
    }
    return rt->ops->timer_cancel(rt->impl, timer_id);
}

uint64_t nk_rt_seed(nk_rt *rt) { return rt->seed; }

void nk_rt_rand_stream(nk_rt *rt, const char *name, nk_rand *out)
{
    nk_rand_derive(out, rt->seed, name, rt->node_id);
}

int nk_rt_file_open(nk_rt *rt, const char *path, unsigned flags, nk_file **out)
{
    if (path == NULL || out == NULL) {
        return NK_EINVAL;
    }
    if ((flags & NK_OPEN_TRUNC) && !(flags & NK_OPEN_WRITE)) {
        return NK_EINVAL;
    }
    if ((flags & NK_OPEN_EXCL) && !(flags & NK_OPEN_CREATE)) {
        return NK_EINVAL;
    }
    return rt->ops->file_open(rt->impl, path, flags, out);
}

int nk_rt_file_read_at(nk_rt *rt, nk_file *f, uint64_t off, void *buf, size_t len,
                       size_t *nread)
{
    size_t dummy;
    return rt->ops->file_read_at(rt->impl, f, off, buf, len, nread ? nread : &dummy);
}

int nk_rt_file_write_at(nk_rt *rt, nk_file *f, uint64_t off, const void *buf, size_t len)
{
    return rt->ops->file_write_at(rt->impl, f, off, buf, len);
}

int nk_rt_file_append(nk_rt *rt, nk_file *f, const void *buf, size_t len)
{
    return rt->ops->file_append(rt->impl, f, buf, len);
}

int nk_rt_file_sync(nk_rt *rt, nk_file *f) { return rt->ops->file_sync(rt->impl, f); }

int nk_rt_file_size(nk_rt *rt, nk_file *f, uint64_t *size)
{
    return rt->ops->file_size(rt->impl, f, size);
}

int nk_rt_file_truncate(nk_rt *rt, nk_file *f, uint64_t size)
{
    return rt->ops->file_truncate(rt->impl, f, size);
}

int nk_rt_file_close(nk_rt *rt, nk_file *f)
{
    if (f == NULL) {
        return NK_OK;
    }
    return rt->ops->file_close(rt->impl, f);
}

int nk_rt_stat(nk_rt *rt, const char *path, nk_stat *st)
{
    return rt->ops->stat(rt->impl, path, st);
}

int nk_rt_dir_create(nk_rt *rt, const char *path) { return rt->ops->dir_create(rt->impl, path); }

int nk_rt_dir_list(nk_rt *rt, const char *path, nk_names *out)
{
    out->names = NULL;
    out->count = 0;
    return rt->ops->dir_list(rt->impl, path, out);
}

void nk_names_free(nk_names *names)
{
    if (names == NULL) {
        return;
    }
    for (size_t i = 0; i < names->count; i++) {
        free(names->names[i]);
    }
    free(names->names);
    names->names = NULL;
    names->count = 0;
}

int nk_rt_rename(nk_rt *rt, const char *from, const char *to)
{
    return rt->ops->rename(rt->impl, from, to);
}

int nk_rt_remove(nk_rt *rt, const char *path) { return rt->ops->remove(rt->impl, path); }

int nk_rt_link(nk_rt *rt, const char *from, const char *to)
{
    return rt->ops->link != NULL ? rt->ops->link(rt->impl, from, to) : NK_ENOTSUP;
}

int nk_rt_dir_lock_held(nk_rt *rt, const char *dir, bool *held)
{
    return rt->ops->dir_lock_held != NULL ? rt->ops->dir_lock_held(rt->impl, dir, held)
                                          : NK_ENOTSUP;
}

int nk_rt_fs_avail(nk_rt *rt, const char *path, uint64_t *avail)
{
    return rt->ops->fs_avail != NULL ? rt->ops->fs_avail(rt->impl, path, avail) : NK_ENOTSUP;
}
int nk_rt_dir_sync(nk_rt *rt, const char *path) { return rt->ops->dir_sync(rt->impl, path); }

int nk_rt_dir_lock(nk_rt *rt, const char *dir, nk_dirlock **out)
{
    return rt->ops->dir_lock(rt->impl, dir, out);
}

void nk_rt_dir_unlock(nk_rt *rt, nk_dirlock *lock)
{
    if (lock != NULL) {
        rt->ops->dir_unlock(rt->impl, lock);
    }
}

int nk_rt_listen(nk_rt *rt, const char *addr, const nk_net_handlers *h, void *ctx,
                 uint64_t *listener_id)
{
    return rt->ops->listen(rt->impl, addr, h, ctx, listener_id);
}

int nk_rt_listener_addr(nk_rt *rt, uint64_t listener_id, char *buf, size_t len)
{
    return rt->ops->listener_addr(rt->impl, listener_id, buf, len);
}

int nk_rt_listener_close(nk_rt *rt, uint64_t listener_id)
{
    return rt->ops->listener_close(rt->impl, listener_id);
}

int nk_rt_connect(nk_rt *rt, const char *addr, nk_conn_mode mode, const nk_net_handlers *h,
                  void *ctx, uint64_t *conn)
{
    if (mode != NK_CONN_FRAMED && mode != NK_CONN_RAW) {
        return NK_EINVAL;
    }
    return rt->ops->connect(rt->impl, addr, mode, h, ctx, conn);
}

int nk_rt_send(nk_rt *rt, uint64_t conn, uint8_t kind, const void *data, size_t len)
{
    if (kind == NK_FRAME_RAW) {
        return NK_EINVAL;
    }
    if (len > NK_FRAME_MAX) {
        return NK_ETOOBIG;
    }
    return rt->ops->send(rt->impl, conn, kind, data, len);
}

int nk_rt_send_raw(nk_rt *rt, uint64_t conn, const void *data, size_t len)
{
    return rt->ops->send_raw(rt->impl, conn, data, len);
}

size_t nk_rt_conn_pending(nk_rt *rt, uint64_t conn)
{
    return rt->ops->conn_pending(rt->impl, conn);
}

int nk_rt_close(nk_rt *rt, uint64_t conn) { return rt->ops->close(rt->impl, conn); }

int nk_rt_job_submit(nk_rt *rt, const char *name, nk_job_fn work, nk_job_fn done, void *arg)
{
    if (work == NULL || done == NULL) {
        return NK_EINVAL;
    }
    return rt->ops->job_submit(rt->impl, name, work, done, arg);
}

int nk_failpoint(nk_rt *rt, const char *name) { return rt->ops->failpoint(rt->impl, name); }

const char *nk_log_level_name(nk_log_level level)
{
    switch (level) {
    case NK_LOG_DEBUG:
        return "DEBUG";
    case NK_LOG_INFO:
        return "INFO";
    case NK_LOG_WARN:
        return "WARN";
    case NK_LOG_ERROR:
        return "ERROR";
    }
    return "?";
}

void nk_log(nk_rt *rt, nk_log_level level, const char *fmt, ...)
{
    if (level < rt->log_level) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rt->ops->log(rt->impl, level, msg);
}

uint32_t nk_rt_node_id(nk_rt *rt) { return rt->node_id; }

void nk_rt_set_shutdown_handler(nk_rt *rt, nk_shutdown_fn fn, void *arg)
{
    rt->ops->set_shutdown_handler(rt->impl, fn, arg);
}

void nk_rt_stop(nk_rt *rt) { rt->ops->stop(rt->impl); }

int nk_rt_run_once(nk_rt *rt, uint64_t timeout_ns)
{
    if (rt->ops->run_once == NULL) {
        return NK_ENOTSUP;
    }
    return rt->ops->run_once(rt->impl, timeout_ns);
}
