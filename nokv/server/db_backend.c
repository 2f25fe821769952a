/* db_backend.c - nk_kv_backend over nk_db (see db_backend.h). */
#include "nokv/server/db_backend.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/util/coding.h"

#define DEFAULT_GROUP_INTERVAL (10 * NK_NSEC_PER_MSEC)
#define SCRATCH_KEEP (1u << 20) /* read buffer kept between GETs */

struct nk_db_backend {
    nk_kv_backend kv;
    nk_rt *rt;
    nk_db *db;
    nk_sync_policy policy;
    uint64_t group_interval;
    uint64_t group_timer;
    uint64_t unsynced_writes; /* group policy: writes since the last sync */
    nk_buf scratch;
};

const char *nk_sync_policy_name(nk_sync_policy p)
{
    switch (p) {
    case NK_SYNC_ALWAYS:
        return "always";
    case NK_SYNC_GROUP:
        return "group";
    case NK_SYNC_NONE:
        return "none";
    }
    return "?";
}

int nk_sync_policy_parse(const char *s, nk_sync_policy *out)
{
    for (int p = NK_SYNC_ALWAYS; p <= NK_SYNC_NONE; p++) {
        if (strcmp(s, nk_sync_policy_name((nk_sync_policy)p)) == 0) {
            *out = (nk_sync_policy)p;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static int be_get(void *impl, const uint8_t *key, size_t key_len, nk_kv_value_fn fn, void *arg)
{
    nk_db_backend *b = impl;
    nk_errbuf eb;
    int rc = nk_db_get(b->db, key, key_len, 0, &b->scratch, &eb);
    if (rc == NK_OK) {
        fn(arg, b->scratch.data, b->scratch.len);
    } else if (rc != NK_ENOENT) {
        nk_log(b->rt, NK_LOG_ERROR, "engine read failed: %s", eb.msg);
    }
    if (b->scratch.cap > SCRATCH_KEEP) {
        nk_buf_free(&b->scratch); /* one huge GET must not pin its size */
    }
    return rc;
}

static void done_ignored(void *arg, int status)
{
    (void)arg;
    (void)status;
}

static int write_ops(nk_db_backend *b, const nk_kv_write *ops, const uint8_t *const *prefix,
                     const size_t *prefix_len, size_t n, nk_kv_done_fn done, void *arg)
{
    /* The engine reads keys and values where they are (no batch copy): a
     * large SET is held by the request buffer and the memtable, never more. */
    /* Small: clearing it is part of every SET (16 entries cost ~200
     * instructions); MSET of more keys allocates. */
    nk_db_op stack[4] = {0};
    nk_db_op *dops = n <= 4 ? stack : calloc(n, sizeof(*dops));
    if (dops == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&dops[i], 0, sizeof(dops[i]));
        dops[i].del = ops[i].del;
        dops[i].key = nk_slice_make(ops[i].key, ops[i].key_len);
        if (!ops[i].del) {
            if (prefix != NULL) {
                dops[i].val_head = nk_slice_make(prefix[i], prefix_len[i]);
            }
            dops[i].val = nk_slice_make(ops[i].val, ops[i].val_len);
        }
    }
    int rc = nk_db_write_ops(b->db, dops, n, b->policy == NK_SYNC_ALWAYS,
                             done != NULL ? done : done_ignored, arg);
    if (dops != stack) {
        free(dops);
    }
    if (rc == NK_OK) {
        b->unsynced_writes++;
    }
    return rc;
}

static int be_write(void *impl, const nk_kv_write *ops, size_t n, nk_kv_done_fn done, void *arg)
{
    return write_ops(impl, ops, NULL, NULL, n, done, arg);
}

static int be_write_prefixed(void *impl, const nk_kv_write *ops, const uint8_t *const *prefix,
                             const size_t *prefix_len, size_t n, nk_kv_done_fn done, void *arg)
{
    return write_ops(impl, ops, prefix, prefix_len, n, done, arg);
}

static int be_scan(void *impl, const uint8_t *start, size_t start_len, size_t limit,
                   nk_kv_scan_fn fn, void *arg)
{
    nk_db_backend *b = impl;
    nk_db_iter *it = NULL;
    int rc = nk_db_iter_new(b->db, NULL, &it);
    if (rc != NK_OK) {
        return rc;
    }
    if (start_len > 0) {
        nk_db_iter_seek(it, start, start_len);
    } else {
        nk_db_iter_first(it);
    }
    size_t seen = 0;
    while (nk_db_iter_valid(it) && (limit == 0 || seen < limit)) {
        nk_slice k = nk_db_iter_key(it), v = nk_db_iter_value(it);
        seen++;
        if (!fn(arg, k.data, k.len, v.data, v.len)) {
            break;
        }
        nk_db_iter_next(it);
    }
    nk_errbuf eb;
    rc = nk_db_iter_status(it, &eb);
    if (rc != NK_OK) {
        nk_log(b->rt, NK_LOG_ERROR, "engine scan failed: %s", eb.msg);
    }
    nk_db_iter_free(it);
    return rc;
}

static const nk_kv_backend_ops db_ops = {
    .get = be_get,
    .write = be_write,
    .scan = be_scan,
    .count = NULL, /* an LSM cannot count keys cheaply: DBSIZE scans */
};

static void group_done(void *arg, int status)
{
    nk_db_backend *b = arg;
    if (status != NK_OK) {
        nk_log(b->rt, NK_LOG_ERROR, "periodic WAL sync failed: %s", nk_strerror(status));
    }
}

static void group_tick(void *arg)
{
    nk_db_backend *b = arg;
    b->group_timer = 0;
    if (b->unsynced_writes > 0) {
        b->unsynced_writes = 0;
        (void)nk_db_sync(b->db, group_done, b);
    }
    b->group_timer = nk_rt_timer_start(b->rt, b->group_interval, group_tick, b);
}

int nk_db_backend_new(nk_rt *rt, nk_db *db, nk_sync_policy policy, uint64_t group_interval_ns,
                      nk_db_backend **out)
{
    nk_db_backend *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NK_ENOMEM;
    }
    b->kv.ops = &db_ops;
    b->kv.impl = b;
    b->kv.name = "lsm";
    b->kv.max_value_bytes = NK_SERVE_MAX_VALUE;
    b->kv.max_write_bytes = NK_BATCH_MAX_BYTES;
    b->kv.write_prefixed = be_write_prefixed;
    b->rt = rt;
    b->db = db;
    b->policy = policy;
    b->group_interval = group_interval_ns ? group_interval_ns : DEFAULT_GROUP_INTERVAL;
    if (policy == NK_SYNC_GROUP) {
        b->group_timer = nk_rt_timer_start(rt, b->group_interval, group_tick, b);
    }
    *out = b;
    return NK_OK;
}

nk_kv_backend *nk_db_backend_kv(nk_db_backend *b)
{
    return &b->kv;
}

void nk_db_backend_free(nk_db_backend *b)
{
    if (b == NULL) {
        return;
    }
    if (b->group_timer != 0) {
        nk_rt_timer_cancel(b->rt, b->group_timer);
    }
    nk_buf_free(&b->scratch);
    free(b);
}
