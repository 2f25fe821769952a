/*
 * kvsm.c - committed KV entries applied to the engine (see kvsm.h).
 */
#include "nokv/store/kvsm.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/util/coding.h"
#include "nokv/util/u64map.h"
#include "nokv/util/testbug.h"

#define KC_MAGIC 0x434bu /* "KC" */
#define KC_VERSION 1u
#define APPLIED_KEY_LEN (NK_KVSM_RESERVED_LEN + 8 + 8)
#define APPLIED_VAL_LEN 17

/* An applied entry whose hook waits for the engine to show its write. */
typedef struct applied_rec {
    uint64_t region_id;
    uint64_t index;
    bool write; /* an engine write is in flight for it */
} applied_rec;

struct nk_kvsm {
    nk_db *db;
    nk_batch batch;
    nk_kvsm_applied_fn hook;
    void *hook_ctx;
    nk_kvsm_failed_fn failed_hook;
    void *failed_ctx;
    uint64_t apply_errors;
    bool failed; /* the engine refused an applied write: stop (fail-stop) */
    /* The engine may queue a write behind a stall (db.h) and apply it later:
     * readers see it only then. Hooks fire in index order once the entry's
     * write (and every write before it) is visible, never earlier. */
    applied_rec *q;
    size_t q_head, q_len, q_cap;
    size_t q_writes; /* writes in flight (engine callbacks still to come) */
    bool dead;       /* freed by its owner while writes were in flight */
    /* Durability of applied state (nk_store_sm.durable_index): region id ->
     * malloc'd durable_rec. One engine WAL sync at a time covers every
     * region that asked before it started. */
    nk_u64map durable;
    bool syncing; /* an nk_db_sync callback is outstanding */
};

typedef struct durable_rec {
    uint64_t durable; /* applied index known to survive a power loss */
    uint64_t pending; /* index the running sync makes durable (0 = none) */
} durable_rec;

int nk_kvsm_new(nk_db *db, nk_kvsm **out)
{
    nk_kvsm *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NK_ENOMEM;
    }
    k->db = db;
    int rc = nk_batch_init(&k->batch);
    if (rc != NK_OK) {
        free(k);
        return rc;
    }
    nk_u64map_init(&k->durable);
    *out = k;
    return NK_OK;
}

static void kvsm_release(nk_kvsm *k)
{
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (nk_u64map_next(&k->durable, &pos, &key, &v)) {
        free(v);
    }
    nk_u64map_free(&k->durable);
    free(k->q);
    free(k);
}

void nk_kvsm_abandon(nk_kvsm *k)
{
    if (k == NULL) {
        return;
    }
    nk_batch_free(&k->batch);
    kvsm_release(k);
}

void nk_kvsm_free(nk_kvsm *k)
{
    if (k == NULL) {
        return;
    }
    nk_batch_free(&k->batch);
    k->hook = NULL;
    if (k->q_writes > 0 || k->syncing) {
        /* The engine still owes callbacks (it completes queued writes with
         * NK_ESTOPPED when it closes): the last one frees k. */
        k->dead = true;
        return;
    }
    kvsm_release(k);
}

static int q_push(nk_kvsm *k, uint64_t region_id, uint64_t index, bool write)
{
    if (k->q_len == k->q_cap) {
        size_t ncap = k->q_cap ? k->q_cap * 2 : 16;
        applied_rec *n = malloc(ncap * sizeof(*n));
        if (n == NULL) {
            return NK_ENOMEM;
        }
        for (size_t i = 0; i < k->q_len; i++) {
            n[i] = k->q[(k->q_head + i) % k->q_cap];
        }
        free(k->q);
        k->q = n;
        k->q_cap = ncap;
        k->q_head = 0;
    }
    k->q[(k->q_head + k->q_len) % k->q_cap] = (applied_rec){region_id, index, write};
    k->q_len++;
    k->q_writes += write;
    return NK_OK;
}

static applied_rec q_pop(nk_kvsm *k)
{
    applied_rec r = k->q[k->q_head];
    k->q_head = (k->q_head + 1) % k->q_cap;
    k->q_len--;
    k->q_writes -= r.write;
    return r;
}

/* Fire the hooks of the entries at the head that wait for no write. */
static void q_release(nk_kvsm *k)
{
    while (k->q_len > 0 && !k->q[k->q_head].write) {
        applied_rec r = q_pop(k);
        if (k->hook != NULL) {
            k->hook(k->hook_ctx, r.region_id, r.index);
        }
    }
}

void nk_kvsm_set_failed_hook(nk_kvsm *k, nk_kvsm_failed_fn fn, void *ctx)
{
    k->failed_hook = fn;
    k->failed_ctx = ctx;
}

void nk_kvsm_set_applied_hook(nk_kvsm *k, nk_kvsm_applied_fn fn, void *ctx)
{
    k->hook = fn;
    k->hook_ctx = ctx;
}

bool nk_kvsm_failed(const nk_kvsm *k)
{
    return k->failed;
}

bool nk_kvsm_reserved(const uint8_t *key, size_t klen)
{
    return klen >= NK_KVSM_RESERVED_LEN && memcmp(key, NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN) == 0;
}

/* "<reserved>applied\0\0" is spelled as the prefix, a tag and the region id
 * in big-endian, so all apply states sort together after every user key. */
static void applied_key(uint64_t region_id, uint8_t *out)
{
    memcpy(out, NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN);
    memcpy(out + NK_KVSM_RESERVED_LEN, "applied/", 8);
    for (int i = 0; i < 8; i++) {
        out[NK_KVSM_RESERVED_LEN + 8 + i] = (uint8_t)(region_id >> (56 - 8 * i));
    }
}

int nk_kvsm_encode(const nk_kv_write *ops, size_t n, uint64_t wall_ms, size_t max_bytes,
                   nk_buf *out)
{
    int rc = nk_wire_begin(out, KC_MAGIC, KC_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, wall_ms);
    rc = rc ? rc : nk_wire_put_uvar(out, n);
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        rc = nk_wire_put_u8(out, ops[i].del ? 1 : 0);
        rc = rc ? rc : nk_wire_put_bytes(out, ops[i].key, ops[i].key_len);
        rc = rc ? rc
                : nk_wire_put_bytes(out, ops[i].del ? NULL : ops[i].val,
                                    ops[i].del ? 0 : ops[i].val_len);
        if (rc == NK_OK && out->len > max_bytes) {
            rc = NK_ETOOBIG;
        }
    }
    rc = rc ? rc : nk_wire_end(out);
    if (rc == NK_OK && out->len > max_bytes) {
        rc = NK_ETOOBIG;
    }
    return rc;
}

int nk_kvsm_wipe_batch(nk_db *db, const nk_region *d, unsigned max, nk_batch *b, unsigned *n)
{
    nk_slice reserved = nk_slice_make(NK_KVSM_RESERVED, NK_KVSM_RESERVED_LEN);
    nk_db_iter_options io = {.lower = nk_slice_make(d->start, d->start_len),
                             .upper = nk_slice_make(d->end, d->end_len)};
    if (io.upper.len == 0 ||
        nk_bytes_cmp(io.upper.data, io.upper.len, reserved.data, reserved.len) > 0) {
        io.upper = reserved;
    }
    nk_batch_clear(b);
    *n = 0;
    nk_db_iter *it = NULL;
    int rc = nk_db_iter_new(db, &io, &it);
    if (rc != NK_OK) {
        return rc;
    }
    for (nk_db_iter_first(it); nk_db_iter_valid(it) && *n < max; nk_db_iter_next(it)) {
        nk_slice k = nk_db_iter_key(it);
        rc = nk_batch_delete(b, k.data, k.len);
        if (rc != NK_OK) {
            break;
        }
        (*n)++;
    }
    if (rc == NK_OK) {
        rc = nk_db_iter_status(it, NULL);
    }
    nk_db_iter_free(it);
    return rc;
}

int nk_kvsm_applied(nk_kvsm *k, uint64_t region_id, uint64_t *index, uint64_t *term)
{
    uint8_t key[APPLIED_KEY_LEN];
    applied_key(region_id, key);
    *index = 0;
    *term = 0;
    nk_buf v = {0};
    int rc = nk_db_get(k->db, key, sizeof(key), UINT64_MAX, &v, NULL);
    if (rc == NK_ENOENT) {
        free(v.data);
        return NK_OK;
    }
    if (rc == NK_OK && (v.len != APPLIED_VAL_LEN || v.data[0] != 1)) {
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        *index = nk_get_u64(v.data + 1);
        *term = nk_get_u64(v.data + 9);
    }
    free(v.data);
    return rc;
}

/* ------------------------------------------------------ state machine --- */

static int sm_open_region(void *ctx, uint64_t region_id, const uint8_t *snap, size_t len,
                          uint64_t snap_index, uint64_t *applied)
{
    nk_kvsm *k = ctx;
    (void)snap;
    (void)len;
    uint64_t index = 0, term = 0;
    int rc = nk_kvsm_applied(k, region_id, &index, &term);
    if (rc != NK_OK) {
        return rc;
    }
    index = nk_testbug(NK_TESTBUG_REAPPLY) ? 0 : index; /* TEST ONLY switch, testbug.h */
    /* A seeded region's engine already holds the state at the seed index. */
    *applied = index > snap_index ? index : snap_index;
    return NK_OK;
}

static int apply_ops(nk_kvsm *k, const nk_raft_entry *e, nk_batch *b)
{
    nk_wire_rd rd;
    int rc = nk_wire_open(&rd, e->data, e->len, KC_MAGIC, KC_VERSION, NULL);
    if (rc != NK_OK) {
        return NK_ECORRUPT;
    }
    (void)nk_wire_get_uvar(&rd); /* wall_ms: for the command layer */
    uint64_t n = nk_wire_get_uvar(&rd);
    for (uint64_t i = 0; rc == NK_OK && i < n && !rd.bad; i++) {
        uint8_t del = nk_wire_get_u8(&rd);
        nk_slice key = nk_wire_get_bytes(&rd, NK_FRAME_MAX);
        nk_slice val = nk_wire_get_bytes(&rd, NK_FRAME_MAX);
        if (rd.bad) {
            break;
        }
        if (nk_kvsm_reserved(key.data, key.len)) {
            rc = NK_ECORRUPT; /* the proposer refuses these: never applied */
        } else if (del) {
            rc = nk_batch_delete(b, key.data, key.len);
        } else {
            rc = nk_batch_put(b, key.data, key.len, val.data, val.len);
        }
    }
    (void)k;
    if (rc == NK_OK && nk_wire_close(&rd) != NK_OK) {
        rc = NK_ECORRUPT;
    }
    return rc;
}

/* The engine applied (or failed) the oldest write in flight: it is visible
 * now, so its hook and those of the entries queued behind it may fire. The
 * engine completes writes in submission order (db.h). */
static void write_done(void *arg, int status)
{
    nk_kvsm *k = arg;
    applied_rec r = q_pop(k);
    if (k->dead) {
        if (k->q_writes == 0 && !k->syncing) {
            kvsm_release(k);
        }
        return;
    }
    if (status != NK_OK) {
        /* The engine refused a write it had queued (disk full, I/O): that
         * entry counts as applied in raft but its data is not here. Never
         * serve from this state: every later apply fails, which stops the
         * store (fail-stop); a restart re-applies from the raft log, whose
         * entries are durable, once the engine can write again. */
        k->apply_errors++;
        bool first = !k->failed;
        k->failed = true;
        if (first && k->failed_hook != NULL) {
            k->failed_hook(k->failed_ctx, status);
        }
    } else if (k->hook != NULL && !k->failed) {
        k->hook(k->hook_ctx, r.region_id, r.index);
    }
    q_release(k);
}

static int sm_apply(void *ctx, uint64_t region_id, const nk_raft_entry *e, uint64_t *result)
{
    nk_kvsm *k = ctx;
    *result = 0;
    if (k->failed) {
        return NK_EIO; /* an earlier write was lost (see write_done) */
    }
    if (e->type != NK_RAFT_ENTRY_NORMAL || e->len == 0) {
        /* No-ops and membership changes touch no user data; replaying them
         * after a restart is harmless, so they do not cost an engine write.
         * Their hook still waits for the writes before them. */
        if (k->q_len > 0) {
            return q_push(k, region_id, e->index, false);
        }
        if (k->hook != NULL) {
            k->hook(k->hook_ctx, region_id, e->index);
        }
        return NK_OK;
    }
    nk_batch_clear(&k->batch);
    int rc = apply_ops(k, e, &k->batch);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t key[APPLIED_KEY_LEN], val[APPLIED_VAL_LEN];
    applied_key(region_id, key);
    val[0] = 1;
    nk_put_u64(val + 1, e->index);
    nk_put_u64(val + 9, e->term);
    rc = nk_batch_put(&k->batch, key, sizeof(key), val, sizeof(val));
    if (rc == NK_OK) {
        rc = q_push(k, region_id, e->index, true);
    }
    if (rc == NK_OK) {
        /* done (write_done) may run inside the call when nothing stalls */
        rc = nk_db_write(k->db, &k->batch, false, write_done, k);
        if (rc != NK_OK) {
            k->q_len--; /* not submitted: drop the record just pushed */
            k->q_writes--;
        }
    }
    return rc;
}

static int sm_snapshot(void *ctx, uint64_t region_id, uint8_t **data, size_t *len)
{
    (void)ctx;
    (void)region_id;
    (void)data;
    (void)len;
    return NK_ENOTSUP; /* the engine's snapshots are SST exports (snapshot stream) */
}

static int sm_install(void *ctx, uint64_t region_id, const uint8_t *data, size_t len,
                      uint64_t index, uint64_t term)
{
    (void)ctx;
    (void)region_id;
    (void)data;
    (void)len;
    (void)index;
    (void)term;
    return NK_ENOTSUP;
}

/* The WAL sync finished: what each region asked for before it started is
 * durable now (the sync covered every write submitted until then). */
static void durable_synced(void *arg, int status)
{
    nk_kvsm *k = arg;
    k->syncing = false;
    if (k->dead) {
        if (k->q_writes == 0) {
            kvsm_release(k);
        }
        return;
    }
    size_t pos = 0;
    uint64_t key;
    void *v;
    while (nk_u64map_next(&k->durable, &pos, &key, &v)) {
        durable_rec *d = v;
        if (status == NK_OK && d->pending > d->durable) {
            d->durable = d->pending;
        }
        d->pending = 0; /* a failed sync promises nothing: asked again later */
    }
}

static uint64_t sm_durable_index(void *ctx, uint64_t region_id, uint64_t want)
{
    nk_kvsm *k = ctx;
    durable_rec *d = nk_u64map_get(&k->durable, region_id);
    if (d == NULL) {
        d = calloc(1, sizeof(*d));
        if (d == NULL || nk_u64map_put(&k->durable, region_id, d) != NK_OK) {
            free(d);
            return 0;
        }
    }
    if (d->durable >= want || k->syncing || k->failed) {
        return d->durable;
    }
    /* Every applied entry up to `want` was submitted to the engine on this
     * thread; once none is queued behind a stall, all of them are in the
     * WAL, and one WAL sync makes them (and their apply state) durable. */
    if (k->q_writes > 0) {
        return d->durable;
    }
    d->pending = want;
    k->syncing = true;
    int rc = nk_db_sync(k->db, durable_synced, k);
    if (rc != NK_OK) {
        k->syncing = false;
        d->pending = 0;
    }
    return d->durable; /* durable_synced may have run inside nk_db_sync */
}

nk_store_sm nk_kvsm_sm(nk_kvsm *k)
{
    nk_store_sm sm = {.ctx = k,
                      .volatile_state = false,
                      .open_region = sm_open_region,
                      .apply = sm_apply,
                      .snapshot = sm_snapshot,
                      .install = sm_install,
                      .durable_index = sm_durable_index};
    return sm;
}

bool nk_kvsm_settled(const nk_kvsm *k)
{
    return k->q_writes == 0;
}
