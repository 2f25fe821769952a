/*
 * api.c - the blocking embedded API (nokv.h) over the asynchronous engine.
 *
 * Each handle owns a runtime made by nk_rt_default_new (a real runtime in
 * embedded mode: worker threads for background jobs, no signal capture).
 * A call that must wait (a durable write, a stalled write, close) pumps the
 * runtime with nk_rt_run_once until its completion fires, so background job
 * results are installed as a side effect of using the handle.
 */
#include "nokv/nokv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db.h"
#include "nokv/store/workdir.h"

struct nokv_batch {
    nk_batch b;
};

struct nokv {
    nk_rt *rt;
    nk_workdir *wd; /* the LOCK and the mode gate: standalone workdirs only */
    nk_db *db;
    unsigned reads_since_pump;
    struct nokv_batch one; /* reused by put/delete: no allocation per call */
};

struct nokv_iter {
    nk_db_iter *it;
};

#define WAIT_SLICE (100 * NK_NSEC_PER_MSEC)
#define READS_PER_PUMP 256

static void set_err(char *errmsg, int rc, const nk_errbuf *eb)
{
    if (errmsg == NULL) {
        return;
    }
    const char *detail = (eb != NULL && eb->msg[0] != '\0') ? eb->msg : nk_strerror(rc);
    snprintf(errmsg, NOKV_ERRMSG_SIZE, "%s", detail);
}

void nokv_options_init(nokv_options *o)
{
    memset(o, 0, sizeof(*o));
    nk_db_options d;
    nk_db_options_default(&d);
    o->create_if_missing = d.create_if_missing;
    o->memtable_bytes = d.memtable_bytes;
    o->block_cache_bytes = d.block_cache_bytes;
    o->bloom_bits_per_key = d.sst.bloom_bits_per_key;
    o->block_size = d.sst.block_size;
    o->compression = d.sst.compression != NK_COMP_NONE;
    o->background_threads = 2;
}

typedef struct waiter {
    bool done;
    int rc;
} waiter;

static void on_done(void *arg, int rc)
{
    waiter *w = arg;
    w->done = true;
    w->rc = rc;
}

/* Pump the runtime until w->done. */
static int wait_for(nokv *h, waiter *w)
{
    while (!w->done) {
        int rc = nk_rt_run_once(h->rt, WAIT_SLICE);
        if (rc != NK_OK) {
            return rc;
        }
    }
    return w->rc;
}

int nokv_open(const char *dir, const nokv_options *opts, nokv **out, char *errmsg)
{
    nokv_options o;
    if (opts == NULL) {
        nokv_options_init(&o);
        opts = &o;
    }
    nk_db_options d;
    nk_db_options_default(&d);
    d.create_if_missing = opts->create_if_missing;
    if (opts->memtable_bytes) {
        d.memtable_bytes = opts->memtable_bytes;
    }
    if (opts->block_cache_bytes) {
        d.block_cache_bytes = opts->block_cache_bytes;
    }
    if (opts->bloom_bits_per_key) {
        d.sst.bloom_bits_per_key = opts->bloom_bits_per_key;
    }
    if (opts->block_size) {
        d.sst.block_size = opts->block_size;
    }
    d.sst.compression = opts->compression ? NK_COMP_LZ4 : NK_COMP_NONE;

    nokv *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        set_err(errmsg, NK_ENOMEM, NULL);
        return NOKV_ENOMEM;
    }
    int rc = nk_rt_default_new(opts->background_threads, &h->rt);
    if (rc != NK_OK) {
        set_err(errmsg, rc, NULL);
        free(h);
        return rc;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_workdir_options wo = {0, opts->create_if_missing};
    rc = nk_workdir_open(h->rt, dir, &wo, &h->wd, &eb);
    if (rc == NK_OK) {
        rc = nk_db_open(h->rt, dir, &d, &h->db, &eb);
    }
    if (rc != NK_OK) {
        nk_workdir_close(h->wd);
        set_err(errmsg, rc, &eb);
        nk_rt_default_free(h->rt);
        free(h);
        return rc;
    }
    *out = h;
    return NOKV_OK;
}

int nokv_close(nokv *h)
{
    if (h == NULL) {
        return NOKV_OK;
    }
    waiter w = {false, 0};
    nk_db_close(h->db, on_done, &w);
    int rc = wait_for(h, &w);
    nk_workdir_close(h->wd);
    nk_rt_default_free(h->rt);
    nk_batch_free(&h->one.b);
    free(h);
    return rc;
}

int nokv_write(nokv *h, nokv_batch *b, const nokv_write_options *wopts, char *errmsg)
{
    bool sync = wopts == NULL || wopts->sync;
    waiter w = {false, 0};
    int rc = nk_db_write(h->db, &b->b, sync, on_done, &w);
    if (rc == NK_OK && !w.done) {
        rc = wait_for(h, &w);
    } else if (rc == NK_OK) {
        rc = w.rc;
    }
    if (rc != NK_OK) {
        set_err(errmsg, rc, NULL);
    }
    return rc;
}

int nokv_put(nokv *h, const void *key, size_t klen, const void *val, size_t vlen,
             const nokv_write_options *wopts, char *errmsg)
{
    nk_batch_clear(&h->one.b);
    int rc = nk_batch_put(&h->one.b, key, klen, val, vlen);
    if (rc != NK_OK) {
        set_err(errmsg, rc, NULL);
        return rc;
    }
    return nokv_write(h, &h->one, wopts, errmsg);
}

int nokv_delete(nokv *h, const void *key, size_t klen, const nokv_write_options *wopts,
                char *errmsg)
{
    nk_batch_clear(&h->one.b);
    int rc = nk_batch_delete(&h->one.b, key, klen);
    if (rc != NK_OK) {
        set_err(errmsg, rc, NULL);
        return rc;
    }
    return nokv_write(h, &h->one, wopts, errmsg);
}

/* Reads never wait, but install finished background work now and then. */
static void maybe_pump(nokv *h)
{
    if (++h->reads_since_pump >= READS_PER_PUMP) {
        h->reads_since_pump = 0;
        (void)nk_rt_run_once(h->rt, 0);
    }
}

int nokv_get(nokv *h, const void *key, size_t klen, char **val, size_t *vlen,
             const nokv_read_options *ropts, char *errmsg)
{
    maybe_pump(h);
    nk_buf v = {0};
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_get(h->db, key, klen, ropts ? ropts->snapshot : 0, &v, &eb);
    if (rc == NK_OK) {
        /* hand out a buffer the caller frees with nokv_free (never NULL) */
        char *out = malloc(v.len ? v.len : 1);
        if (out == NULL) {
            nk_buf_free(&v);
            set_err(errmsg, NK_ENOMEM, NULL);
            return NOKV_ENOMEM;
        }
        if (v.len) {
            memcpy(out, v.data, v.len);
        }
        *val = out;
        *vlen = v.len;
    } else if (rc != NK_ENOENT) {
        set_err(errmsg, rc, &eb);
    }
    nk_buf_free(&v);
    return rc;
}

void nokv_free(void *p) { free(p); }

nokv_batch *nokv_batch_new(void)
{
    nokv_batch *b = calloc(1, sizeof(*b));
    if (b != NULL && nk_batch_init(&b->b) != NK_OK) {
        free(b);
        return NULL;
    }
    return b;
}

int nokv_batch_put(nokv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return nk_batch_put(&b->b, key, klen, val, vlen);
}

int nokv_batch_delete(nokv_batch *b, const void *key, size_t klen)
{
    return nk_batch_delete(&b->b, key, klen);
}

void nokv_batch_clear(nokv_batch *b) { nk_batch_clear(&b->b); }

void nokv_batch_free(nokv_batch *b)
{
    if (b != NULL) {
        nk_batch_free(&b->b);
        free(b);
    }
}

uint64_t nokv_snapshot(nokv *h) { return nk_db_snapshot(h->db); }
void nokv_release_snapshot(nokv *h, uint64_t snapshot) { nk_db_release_snapshot(h->db, snapshot); }

nokv_iter *nokv_iter_new(nokv *h, const nokv_read_options *ropts, const void *lower,
                         size_t lower_len, const void *upper, size_t upper_len)
{
    maybe_pump(h);
    nokv_iter *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return NULL;
    }
    nk_db_iter_options o;
    memset(&o, 0, sizeof(o));
    o.snapshot = ropts ? ropts->snapshot : 0;
    o.lower = nk_slice_make(lower, lower ? lower_len : 0);
    o.upper = nk_slice_make(upper, upper ? upper_len : 0);
    if (nk_db_iter_new(h->db, &o, &it->it) != NK_OK) {
        free(it);
        return NULL;
    }
    return it;
}

void nokv_iter_free(nokv_iter *it)
{
    if (it != NULL) {
        nk_db_iter_free(it->it);
        free(it);
    }
}

bool nokv_iter_valid(const nokv_iter *it) { return nk_db_iter_valid(it->it); }
void nokv_iter_first(nokv_iter *it) { nk_db_iter_first(it->it); }
void nokv_iter_last(nokv_iter *it) { nk_db_iter_last(it->it); }
void nokv_iter_seek(nokv_iter *it, const void *key, size_t klen)
{
    nk_db_iter_seek(it->it, key, klen);
}
void nokv_iter_next(nokv_iter *it) { nk_db_iter_next(it->it); }
void nokv_iter_prev(nokv_iter *it) { nk_db_iter_prev(it->it); }

const char *nokv_iter_key(const nokv_iter *it, size_t *len)
{
    nk_slice k = nk_db_iter_key(it->it);
    *len = k.len;
    return (const char *)k.data;
}

const char *nokv_iter_value(const nokv_iter *it, size_t *len)
{
    nk_slice v = nk_db_iter_value(it->it);
    *len = v.len;
    return (const char *)v.data;
}

int nokv_iter_status(const nokv_iter *it, char *errmsg)
{
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_iter_status(it->it, &eb);
    if (rc != NK_OK) {
        set_err(errmsg, rc, &eb);
    }
    return rc;
}

char *nokv_stats(nokv *h)
{
    nk_db_stats s;
    nk_db_get_stats(h->db, &s);
    char *out = malloc(2048);
    if (out == NULL) {
        return NULL;
    }
    int n = snprintf(out, 2048,
                     "last_seq %llu\nwrites %llu\nwrite_bytes %llu\nsyncs %llu\nflushes %llu\n"
                     "compactions %llu\ncompaction_bytes_in %llu\ncompaction_bytes_out %llu\n"
                     "stalls_slowdown %llu\nstalls_stop %llu\nmemtable_bytes %zu\n"
                     "immutables %u\ncache_bytes %zu\ncache_hits %llu\ncache_misses %llu\n",
                     (unsigned long long)s.last_seq, (unsigned long long)s.writes,
                     (unsigned long long)s.write_bytes, (unsigned long long)s.syncs,
                     (unsigned long long)s.flushes, (unsigned long long)s.compactions,
                     (unsigned long long)s.compaction_bytes_in,
                     (unsigned long long)s.compaction_bytes_out,
                     (unsigned long long)s.stalls_slowdown, (unsigned long long)s.stalls_stop,
                     s.memtable_bytes, s.immutables, s.cache_bytes,
                     (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses);
    for (int l = 0; l < 7 && n > 0 && n < 2000; l++) {
        n += snprintf(out + n, 2048 - (size_t)n, "level%d files %llu bytes %llu\n", l,
                      (unsigned long long)s.files[l], (unsigned long long)s.level_bytes[l]);
    }
    return out;
}

int nokv_compact_wait(nokv *h, char *errmsg)
{
    waiter w = {false, 0};
    nk_db_wait_idle(h->db, true, on_done, &w);
    int rc = wait_for(h, &w);
    if (rc != NK_OK) {
        set_err(errmsg, rc, NULL);
    }
    return rc;
}
