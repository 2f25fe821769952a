/*
 * membackend.c - sorted-array in-memory backend (see membackend.h).
 *
 * Insert and delete are O(n) memmoves of pointers: fine for tests and demo
 * sizes (hundreds of thousands of keys), and trivially deterministic.
 */
#include "nokv/resp/membackend.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    size_t klen;
    size_t vlen;
    uint8_t data[]; /* key, then value */
} entry;

typedef struct pending {
    struct pending *prev, *next;
    nk_membackend *m;
    uint64_t timer;
    nk_kv_done_fn done;
    void *arg;
    int status;
} pending;

struct nk_membackend {
    nk_membackend_options opt;
    nk_kv_backend be;
    nk_rand rand;
    entry **e;
    size_t n;
    size_t cap;
    pending *head, *tail; /* submission order */
    size_t npending;
    uint64_t batches;
    unsigned fail_writes;
    int fail_writes_code;
    unsigned fail_done;
    int fail_done_code;
    uint64_t barriers;
    unsigned fail_barriers;
    int fail_barriers_code;
};

static int cmp_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* Index of the first entry with key >= k; *found when equal. */
static size_t lower_bound(const nk_membackend *m, const uint8_t *k, size_t klen, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(m->e[mid]->data, m->e[mid]->klen, k, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (found != NULL) {
        *found = lo < m->n && cmp_key(m->e[lo]->data, m->e[lo]->klen, k, klen) == 0;
    }
    return lo;
}

static int mb_get(void *impl, const uint8_t *key, size_t key_len, nk_kv_value_fn fn, void *arg)
{
    nk_membackend *m = impl;
    bool found;
    size_t i = lower_bound(m, key, key_len, &found);
    if (!found) {
        return NK_ENOENT;
    }
    fn(arg, m->e[i]->data + m->e[i]->klen, m->e[i]->vlen);
    return NK_OK;
}

static void unlink_pending(nk_membackend *m, pending *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        m->head = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    } else {
        m->tail = p->prev;
    }
    m->npending--;
}

static void pending_fire(void *arg)
{
    pending *p = arg;
    nk_membackend *m = p->m;
    unlink_pending(m, p);
    nk_kv_done_fn done = p->done;
    void *darg = p->arg;
    int status = p->status;
    free(p);
    done(darg, status);
}

static int mb_write(void *impl, const nk_kv_write *ops, size_t n, nk_kv_done_fn done, void *arg)
{
    nk_membackend *m = impl;
    if (n == 0) {
        return NK_EINVAL;
    }
    if (m->fail_writes > 0) {
        m->fail_writes--;
        return m->fail_writes_code;
    }
    /* Allocate everything first so the batch is all-or-nothing. */
    if (m->cap - m->n < n) {
        size_t ncap = m->cap ? m->cap : 64;
        while (ncap - m->n < n) {
            ncap *= 2;
        }
        entry **ne = realloc(m->e, ncap * sizeof(*ne));
        if (ne == NULL) {
            return NK_ENOMEM;
        }
        m->e = ne;
        m->cap = ncap;
    }
    entry **fresh = calloc(n, sizeof(*fresh));
    if (fresh == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].del) {
            continue;
        }
        fresh[i] = malloc(sizeof(entry) + ops[i].key_len + ops[i].val_len);
        if (fresh[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                free(fresh[j]);
            }
            free(fresh);
            return NK_ENOMEM;
        }
        fresh[i]->klen = ops[i].key_len;
        fresh[i]->vlen = ops[i].val_len;
        if (ops[i].key_len) {
            memcpy(fresh[i]->data, ops[i].key, ops[i].key_len);
        }
        if (ops[i].val_len) {
            memcpy(fresh[i]->data + ops[i].key_len, ops[i].val, ops[i].val_len);
        }
    }
    pending *p = NULL;
    if (done != NULL && m->opt.async) {
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
            for (size_t j = 0; j < n; j++) {
                free(fresh[j]);
            }
            free(fresh);
            return NK_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool found;
        size_t at = lower_bound(m, ops[i].key, ops[i].key_len, &found);
        if (ops[i].del) {
            if (found) {
                free(m->e[at]);
                memmove(m->e + at, m->e + at + 1, (m->n - at - 1) * sizeof(*m->e));
                m->n--;
            }
        } else if (found) {
            free(m->e[at]);
            m->e[at] = fresh[i];
        } else {
            memmove(m->e + at + 1, m->e + at, (m->n - at) * sizeof(*m->e));
            m->e[at] = fresh[i];
            m->n++;
        }
    }
    free(fresh);
    m->batches++;
    int status = NK_OK;
    if (m->fail_done > 0) {
        m->fail_done--;
        status = m->fail_done_code;
    }
    if (done == NULL) {
        return NK_OK;
    }
    if (p == NULL) {
        done(arg, status);
        return NK_OK;
    }
    p->m = m;
    p->done = done;
    p->arg = arg;
    p->status = status;
    p->prev = m->tail;
    if (m->tail) {
        m->tail->next = p;
    } else {
        m->head = p;
    }
    m->tail = p;
    m->npending++;
    uint64_t delay = nk_rand_between(&m->rand, m->opt.done_min_ns, m->opt.done_max_ns);
    p->timer = nk_rt_timer_start(m->opt.rt, delay, pending_fire, p);
    if (p->timer == 0) {
        /* The runtime is stopping: report it rather than never calling done. */
        p->status = NK_ESTOPPED;
        pending_fire(p);
    }
    return NK_OK;
}

/* A modelled read barrier (opt.read_barrier): completes like a write's
 * done, after a delay when async, or with an injected error. */
static int mb_read_barrier(void *impl, nk_kv_done_fn done, void *arg)
{
    nk_membackend *m = impl;
    m->barriers++;
    int status = NK_OK;
    if (m->fail_barriers > 0) {
        m->fail_barriers--;
        status = m->fail_barriers_code;
    }
    if (!m->opt.async) {
        done(arg, status);
        return NK_OK;
    }
    pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NK_ENOMEM;
    }
    p->m = m;
    p->done = done;
    p->arg = arg;
    p->status = status;
    p->prev = m->tail;
    if (m->tail) {
        m->tail->next = p;
    } else {
        m->head = p;
    }
    m->tail = p;
    m->npending++;
    uint64_t delay = nk_rand_between(&m->rand, m->opt.done_min_ns, m->opt.done_max_ns);
    p->timer = nk_rt_timer_start(m->opt.rt, delay, pending_fire, p);
    if (p->timer == 0) {
        p->status = NK_ESTOPPED;
        pending_fire(p);
    }
    return NK_OK;
}

static int mb_scan(void *impl, const uint8_t *start, size_t start_len, size_t limit,
                   nk_kv_scan_fn fn, void *arg)
{
    nk_membackend *m = impl;
    size_t i = start_len ? lower_bound(m, start, start_len, NULL) : 0;
    for (size_t seen = 0; i < m->n && (limit == 0 || seen < limit); i++, seen++) {
        entry *e = m->e[i];
        if (!fn(arg, e->data, e->klen, e->data + e->klen, e->vlen)) {
            break;
        }
    }
    return NK_OK;
}

static int mb_count(void *impl, uint64_t *n)
{
    nk_membackend *m = impl;
    *n = m->n;
    return NK_OK;
}

static const nk_kv_backend_ops mb_ops = {.get = mb_get,
                                         .write = mb_write,
                                         .scan = mb_scan,
                                         .count = mb_count};
static const nk_kv_backend_ops mb_ops_barrier = {.get = mb_get,
                                                 .write = mb_write,
                                                 .scan = mb_scan,
                                                 .count = mb_count,
                                                 .read_barrier = mb_read_barrier};

/* The optional prefixed write (backend.h), so the command tests exercise the
 * path `nokv serve` takes: the values are joined here and written as usual. */
static int mb_write_prefixed(void *impl, const nk_kv_write *ops, const uint8_t *const *prefix,
                             const size_t *prefix_len, size_t n, nk_kv_done_fn done, void *arg)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += ops[i].del ? 0 : prefix_len[i] + ops[i].val_len;
    }
    uint8_t *buf = malloc(total + 1);
    nk_kv_write *whole = calloc(n + 1, sizeof(*whole));
    if (buf == NULL || whole == NULL) {
        free(buf);
        free(whole);
        return NK_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        whole[i] = ops[i];
        if (!ops[i].del) {
            memcpy(buf + off, prefix[i], prefix_len[i]);
            if (ops[i].val_len > 0) {
                memcpy(buf + off + prefix_len[i], ops[i].val, ops[i].val_len);
            }
            whole[i].val = buf + off;
            whole[i].val_len = prefix_len[i] + ops[i].val_len;
            off += whole[i].val_len;
        }
    }
    int rc = mb_write(impl, whole, n, done, arg); /* copies keys and values */
    free(buf);
    free(whole);
    return rc;
}

int nk_membackend_new(const nk_membackend_options *opt, nk_membackend **out)
{
    nk_membackend_options o = {0};
    if (opt != NULL) {
        o = *opt;
    }
    if (o.async && (o.rt == NULL || o.done_min_ns > o.done_max_ns)) {
        return NK_EINVAL;
    }
    nk_membackend *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NK_ENOMEM;
    }
    m->opt = o;
    m->be.ops = o.read_barrier ? &mb_ops_barrier : &mb_ops;
    m->be.impl = m;
    m->be.name = "memory";
    m->be.write_prefixed = mb_write_prefixed;
    if (o.rt != NULL) {
        nk_rt_rand_stream(o.rt, "resp.membackend", &m->rand);
    } else {
        nk_rand_seed(&m->rand, 1);
    }
    *out = m;
    return NK_OK;
}

void nk_membackend_free(nk_membackend *m)
{
    if (m == NULL) {
        return;
    }
    while (m->head != NULL) {
        pending *p = m->head;
        nk_rt_timer_cancel(m->opt.rt, p->timer);
        p->status = NK_ESTOPPED;
        pending_fire(p);
    }
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i]);
    }
    free(m->e);
    free(m);
}

nk_kv_backend *nk_membackend_backend(nk_membackend *m)
{
    return &m->be;
}

size_t nk_membackend_pending(const nk_membackend *m)
{
    return m->npending;
}

size_t nk_membackend_count(const nk_membackend *m)
{
    return m->n;
}

uint64_t nk_membackend_batches(const nk_membackend *m)
{
    return m->batches;
}

void nk_membackend_fail_writes(nk_membackend *m, unsigned n, int code)
{
    m->fail_writes = n;
    m->fail_writes_code = code;
}

void nk_membackend_fail_completions(nk_membackend *m, unsigned n, int code)
{
    m->fail_done = n;
    m->fail_done_code = code;
}

uint64_t nk_membackend_barriers(const nk_membackend *m)
{
    return m->barriers;
}

void nk_membackend_fail_barriers(nk_membackend *m, unsigned n, int code)
{
    m->fail_barriers = n;
    m->fail_barriers_code = code;
}
