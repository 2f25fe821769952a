/*
 * cluster_backend.c - RESP storage over a raftstore region (see
 * cluster_backend.h for the contract).
 *
 * The overlay is a small sorted array of the keys written by proposals that
 * have not applied yet (the newest op per key wins). It is emptied as
 * entries apply and, when a proposal fails, from the failed index on: a
 * failed entry means this leader's later entries of the same term fail too.
 */
#include "nokv/server/cluster_backend.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/engine/slice.h"

#define DEFAULT_MAX_ENTRY (16u << 20)
#define MAX_BARRIERS 4096u

typedef struct ov_ent {
    uint8_t *key;
    size_t klen;
    uint8_t *val; /* NULL with del */
    size_t vlen;
    bool del;
    uint64_t index; /* the proposal that wrote it */
    uint64_t term;  /* ... and the leader term it was proposed in */
} ov_ent;

typedef struct pending_write {
    nk_cluster_backend *b; /* NULL once the backend is gone */
    uint64_t index;
    uint64_t term;
    nk_kv_done_fn done;
    void *arg;
} pending_write;

typedef struct barrier {
    nk_cluster_backend *b;
    uint64_t target; /* applied must reach this too */
    nk_kv_done_fn done;
    void *arg;
    struct barrier *next; /* waiting list */
} barrier;

struct nk_cluster_backend {
    nk_rt *rt;
    nk_store *st;
    nk_kvsm *k;
    nk_db *db;
    uint64_t region_id;
    size_t max_entry;
    nk_kv_backend kv;
    ov_ent *ov;
    size_t n_ov, cap_ov;
    uint64_t last_proposed;
    uint64_t applied;
    barrier *waiting;    /* ReadIndex done, waiting for applied >= target */
    barrier *round;      /* members of the ReadIndex round in flight */
    barrier *next_round; /* created since: they wait for the next round */
    bool round_inflight;
    bool unsafe_ack_on_propose; /* TEST ONLY, see the header */
    uint64_t serving_term;      /* the term leading() last said yes in */
    nk_buf enc;
};

/* ------------------------------------------------------------- overlay --- */

static size_t ov_find(const nk_cluster_backend *b, const uint8_t *key, size_t klen, bool *found)
{
    size_t lo = 0, hi = b->n_ov;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = nk_bytes_cmp(b->ov[mid].key, b->ov[mid].klen, key, klen);
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < b->n_ov && nk_bytes_cmp(b->ov[lo].key, b->ov[lo].klen, key, klen) == 0;
    return lo;
}

static void ov_free_at(nk_cluster_backend *b, size_t i)
{
    free(b->ov[i].key);
    free(b->ov[i].val);
    memmove(&b->ov[i], &b->ov[i + 1], (b->n_ov - i - 1) * sizeof(b->ov[0]));
    b->n_ov--;
}

static int ov_put(nk_cluster_backend *b, const nk_kv_write *w, uint64_t index, uint64_t term)
{
    bool found;
    size_t i = ov_find(b, w->key, w->key_len, &found);
    uint8_t *val = NULL;
    if (!w->del) {
        val = malloc(w->val_len > 0 ? w->val_len : 1);
        if (val == NULL) {
            return NK_ENOMEM;
        }
        if (w->val_len > 0) {
            memcpy(val, w->val, w->val_len);
        }
    }
    if (found) {
        free(b->ov[i].val);
        b->ov[i].val = val;
        b->ov[i].vlen = w->del ? 0 : w->val_len;
        b->ov[i].del = w->del;
        b->ov[i].index = index;
        b->ov[i].term = term;
        return NK_OK;
    }
    if (b->n_ov == b->cap_ov) {
        size_t ncap = b->cap_ov ? b->cap_ov * 2 : 64;
        ov_ent *n = realloc(b->ov, ncap * sizeof(*n));
        if (n == NULL) {
            free(val);
            return NK_ENOMEM;
        }
        b->ov = n;
        b->cap_ov = ncap;
    }
    uint8_t *key = malloc(w->key_len > 0 ? w->key_len : 1);
    if (key == NULL) {
        free(val);
        return NK_ENOMEM;
    }
    memcpy(key, w->key, w->key_len);
    memmove(&b->ov[i + 1], &b->ov[i], (b->n_ov - i) * sizeof(b->ov[0]));
    b->ov[i] = (ov_ent){key, w->key_len, val, w->del ? 0 : w->val_len, w->del, index, term};
    b->n_ov++;
    return NK_OK;
}

/* Drop overlay entries written at or below `upto` (applied: the engine has
 * them) or, when term is non-zero, those of that term at or above `from`
 * (a failed proposal: the same leader's later entries of its term fail
 * too; entries of other terms are not affected). */
static void ov_drop(nk_cluster_backend *b, uint64_t upto, uint64_t from, uint64_t term)
{
    for (size_t i = b->n_ov; i > 0; i--) {
        const ov_ent *o = &b->ov[i - 1];
        if (o->index <= upto || (o->index >= from && (term == 0 || o->term == term))) {
            ov_free_at(b, i - 1);
        }
    }
}

/* Entries proposed in an earlier leadership that had not applied when this
 * store started serving a new term can never commit (the new term's first
 * entry sits below them or took their index): reads must not see them. */
static void ov_drop_other_terms(nk_cluster_backend *b, uint64_t term)
{
    for (size_t i = b->n_ov; i > 0; i--) {
        if (b->ov[i - 1].term != term) {
            ov_free_at(b, i - 1);
        }
    }
}

/* -------------------------------------------------------------- status --- */

/* This store leads the region AND the engine shows an entry of the
 * leader's own term: every entry of earlier terms is then applied, so local
 * reads and read-modify-writes (INCR...) see everything an earlier leader
 * acknowledged. A freshly elected leader may hold committed entries of the
 * previous term that it has not applied yet; it serves nothing until its
 * first entry (the no-op of its term) applied, as raft's ReadIndex demands. */
static bool leading(nk_cluster_backend *b)
{
    if (nk_kvsm_failed(b->k)) {
        return false; /* an applied write was lost: serve nothing from here */
    }
    const nk_raft *r = nk_store_raft(b->st, b->region_id);
    if (r == NULL) {
        return false;
    }
    nk_raft_status s;
    nk_raft_status_get(r, &s);
    uint64_t t = 0;
    if (s.role != NK_RAFT_LEADER || nk_raft_term_at(r, b->applied, &t) != NK_OK || t != s.term) {
        return false;
    }
    if (b->serving_term != s.term) {
        b->serving_term = s.term;
        ov_drop_other_terms(b, s.term);
    }
    return true;
}

static void release_barriers(nk_cluster_backend *b, int rc_all)
{
    barrier **pp = &b->waiting;
    while (*pp != NULL) {
        barrier *x = *pp;
        if (rc_all != NK_OK || b->applied >= x->target) {
            *pp = x->next;
            x->done(x->arg, rc_all);
            free(x);
        } else {
            pp = &x->next;
        }
    }
}

static void on_applied(void *ctx, uint64_t region_id, uint64_t index)
{
    nk_cluster_backend *b = ctx;
    if (region_id != b->region_id) {
        return;
    }
    b->applied = index;
    ov_drop(b, index, UINT64_MAX, 0);
    release_barriers(b, NK_OK);
}

/* ------------------------------------------------------------ kv ops --- */

static int be_get(void *impl, const uint8_t *key, size_t key_len, nk_kv_value_fn fn, void *arg)
{
    nk_cluster_backend *b = impl;
    if (!leading(b)) {
        return NK_EAGAIN;
    }
    if (nk_kvsm_reserved(key, key_len)) {
        return NK_ENOENT;
    }
    bool found;
    size_t i = ov_find(b, key, key_len, &found);
    if (found) {
        if (b->ov[i].del) {
            return NK_ENOENT;
        }
        fn(arg, b->ov[i].val, b->ov[i].vlen);
        return NK_OK;
    }
    nk_buf v = {0};
    int rc = nk_db_get(b->db, key, key_len, UINT64_MAX, &v, NULL);
    if (rc == NK_OK) {
        fn(arg, v.data, v.len);
    }
    free(v.data);
    return rc;
}

static void write_done(void *arg, int rc, uint64_t result, uint64_t leader_peer)
{
    pending_write *w = arg;
    (void)result;
    (void)leader_peer;
    nk_cluster_backend *b = w->b;
    if (b != NULL && rc != NK_OK && rc != NK_ESTOPPED) {
        ov_drop(b, 0, w->index, w->term);
    }
    w->done(w->arg, rc == NK_OK ? NK_OK : (rc == NK_ESTOPPED ? NK_ESTOPPED : NK_EAGAIN));
    free(w);
}

static void noop_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

static int be_write(void *impl, const nk_kv_write *ops, size_t n, nk_kv_done_fn done, void *arg)
{
    nk_cluster_backend *b = impl;
    if (!leading(b)) {
        return NK_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        if (nk_kvsm_reserved(ops[i].key, ops[i].key_len)) {
            return NK_EINVAL;
        }
    }
    int rc = nk_kvsm_encode(ops, n, nk_rt_wall(b->rt) / NK_NSEC_PER_MSEC, b->max_entry, &b->enc);
    if (rc != NK_OK) {
        return rc;
    }
    pending_write *w = malloc(sizeof(*w));
    if (w == NULL) {
        return NK_ENOMEM;
    }
    *w = (pending_write){.b = b, .done = done != NULL ? done : noop_done, .arg = arg};
    rc = nk_store_propose(b->st, b->region_id, b->enc.data, b->enc.len, write_done, w);
    if (rc != NK_OK) {
        free(w);
        /* NK_EBUSY: raft refuses proposals while it transfers leadership
         * (the write was not proposed); the client retries on the new
         * leader, as for any store that does not lead. */
        return rc == NK_EBUSY ? NK_EAGAIN : rc;
    }
    const nk_raft *r = nk_store_raft(b->st, b->region_id);
    nk_raft_status s;
    nk_raft_status_get(r, &s);
    w->index = s.last_index; /* the proposal just appended is the last entry */
    w->term = s.term;
    b->last_proposed = s.last_index;
    if (b->unsafe_ack_on_propose) {
        /* The planted bug: the reply no longer waits for the commit. */
        w->done(w->arg, NK_OK);
        w->done = noop_done;
    }
    for (size_t i = 0; i < n; i++) {
        rc = ov_put(b, &ops[i], w->index, w->term);
        if (rc != NK_OK) {
            /* Out of memory with a proposal in flight: reads would miss it,
             * so stop serving reads from a partial overlay. */
            ov_drop(b, 0, 0, 0);
            return NK_OK;
        }
    }
    return NK_OK;
}

typedef struct scan_ctx {
    nk_cluster_backend *b;
    size_t oi; /* next overlay entry to merge */
} scan_ctx;

static int be_scan(void *impl, const uint8_t *start, size_t start_len, size_t limit,
                   nk_kv_scan_fn fn, void *arg)
{
    nk_cluster_backend *b = impl;
    if (!leading(b)) {
        return NK_EAGAIN;
    }
    nk_db_iter_options io = {0};
    io.upper = nk_slice_make(NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN);
    nk_db_iter *it = NULL;
    int rc = nk_db_iter_new(b->db, &io, &it);
    if (rc != NK_OK) {
        return rc;
    }
    if (start_len > 0) {
        nk_db_iter_seek(it, start, start_len);
    } else {
        nk_db_iter_first(it);
    }
    bool found;
    size_t oi = ov_find(b, start, start_len, &found);
    size_t seen = 0;
    bool more = true;
    /* Merge the engine's keys with the overlay's; the overlay wins a tie. */
    while (more && (limit == 0 || seen < limit)) {
        bool ev = nk_db_iter_valid(it);
        bool ov = oi < b->n_ov;
        if (!ev && !ov) {
            break;
        }
        nk_slice ek = ev ? nk_db_iter_key(it) : (nk_slice){NULL, 0};
        int c = !ev ? 1 : !ov ? -1 : nk_bytes_cmp(ek.data, ek.len, b->ov[oi].key, b->ov[oi].klen);
        if (c < 0) {
            nk_slice ev_val = nk_db_iter_value(it);
            seen++;
            more = fn(arg, ek.data, ek.len, ev_val.data, ev_val.len);
            nk_db_iter_next(it);
            continue;
        }
        const ov_ent *o = &b->ov[oi++];
        if (c == 0) {
            nk_db_iter_next(it);
        }
        if (o->del || nk_kvsm_reserved(o->key, o->klen)) {
            continue;
        }
        seen++;
        more = fn(arg, o->key, o->klen, o->val, o->vlen);
    }
    rc = nk_db_iter_status(it, NULL);
    nk_db_iter_free(it);
    return rc;
}

/* Read barriers share ReadIndex rounds: every barrier created while a round
 * is in flight joins the next one (a round that started after the barrier
 * did, as linearizability needs), so one round serves a whole pipeline. */
static void start_round(nk_cluster_backend *b);

static void round_done(void *arg, int rc, uint64_t result, uint64_t leader_peer)
{
    nk_cluster_backend *b = arg;
    (void)result;
    (void)leader_peer;
    barrier *x = b->round;
    b->round = NULL;
    b->round_inflight = false;
    while (x != NULL) {
        barrier *next = x->next;
        if (rc != NK_OK) {
            x->done(x->arg, rc == NK_ESTOPPED ? NK_ESTOPPED : NK_EAGAIN);
            free(x);
        } else if (b->applied >= x->target) {
            x->done(x->arg, NK_OK);
            free(x);
        } else {
            x->next = b->waiting;
            b->waiting = x;
        }
        x = next;
    }
    if (b->next_round != NULL && rc != NK_ESTOPPED) {
        start_round(b);
    }
}

static void start_round(nk_cluster_backend *b)
{
    b->round = b->next_round;
    b->next_round = NULL;
    b->round_inflight = true;
    int rc = nk_store_read_index(b->st, b->region_id, round_done, b);
    if (rc != NK_OK) {
        round_done(b, rc, 0, 0);
    }
}

static int be_read_barrier(void *impl, nk_kv_done_fn done, void *arg)
{
    nk_cluster_backend *b = impl;
    if (!leading(b)) {
        return NK_EAGAIN;
    }
    barrier *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return NK_ENOMEM;
    }
    *x = (barrier){.b = b, .target = b->last_proposed, .done = done, .arg = arg};
    x->next = b->next_round;
    b->next_round = x;
    if (!b->round_inflight) {
        start_round(b);
    }
    return NK_OK;
}

/* Not the leader but the leader's store is known with its client address:
 * the RESP server relays there (backend.h route). */
static int be_route(void *impl, char *addr, size_t cap)
{
    nk_cluster_backend *b = impl;
    if (leading(b)) {
        return NK_ENOENT;
    }
    uint64_t store = nk_store_leader_store(b->st, b->region_id);
    if (store == 0 || store == nk_store_id(b->st)) {
        return NK_ENOENT;
    }
    return nk_store_client_address(b->st, store, addr, cap);
}

static const nk_kv_backend_ops cluster_ops = {
    .get = be_get,
    .write = be_write,
    .scan = be_scan,
    .count = NULL,
    .read_barrier = be_read_barrier,
    .route = be_route,
};

/* ------------------------------------------------------------ lifecycle --- */

int nk_cluster_backend_new(nk_rt *rt, nk_store *st, nk_kvsm *k, nk_db *db, uint64_t region_id,
                           size_t max_entry_bytes, nk_cluster_backend **out)
{
    nk_cluster_backend *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NK_ENOMEM;
    }
    b->rt = rt;
    b->st = st;
    b->k = k;
    b->db = db;
    b->region_id = region_id;
    b->max_entry = max_entry_bytes ? max_entry_bytes : DEFAULT_MAX_ENTRY;
    b->applied = nk_store_applied(st, region_id);
    b->kv = (nk_kv_backend){.ops = &cluster_ops, .impl = b, .name = "raft"};
    nk_kvsm_set_applied_hook(k, on_applied, b);
    *out = b;
    return NK_OK;
}

void nk_cluster_backend_free(nk_cluster_backend *b)
{
    if (b == NULL) {
        return;
    }
    nk_kvsm_set_applied_hook(b->k, NULL, NULL);
    release_barriers(b, NK_ESTOPPED);
    for (barrier *x = b->next_round; x != NULL;) {
        barrier *next = x->next;
        x->done(x->arg, NK_ESTOPPED);
        free(x);
        x = next;
    }
    b->next_round = NULL;
    ov_drop(b, 0, 0, 0);
    free(b->ov);
    free(b->enc.data);
    free(b);
}

void nk_cluster_backend_set_unsafe_ack_on_propose(nk_cluster_backend *b, bool on)
{
    b->unsafe_ack_on_propose = on;
}

nk_kv_backend *nk_cluster_backend_kv(nk_cluster_backend *b)
{
    return &b->kv;
}
