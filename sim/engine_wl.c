/*
 * engine_wl.c - the `engine` workload: the storage engine under crashes.
 *
 * Each node runs the real engine (nokv/engine/db.h) on its simulated disk
 * and drives it from a timer: puts, deletes, multi-key batches (mostly
 * durable, some not) and reads, on a small key space with small memtables so
 * flushes and compactions run constantly. Scenarios crash nodes (power loss:
 * unsynced writes dropped or torn), kill them, and fire failpoints inside
 * flush, compaction, the manifest and the WAL.
 *
 * The checker knows every operation a node issued, in order (one writer per
 * node, so issue order is sequence order), and which were acknowledged
 * durable. It fails the run when:
 *   - recovery fails (the engine cannot reopen its own workdir);
 *   - a read, before or after a crash, returns a version of a key older than
 *     the newest version acknowledged durable before the read started
 *     (durability), or a value that no operation wrote (integrity: values
 *     are derived from their operation id and fully checked);
 *   - after a restart, a key holds data from an operation never issued.
 *
 * `option bug=skip-wal-sync` makes the node treat writes as durable without
 * waiting for the WAL sync (it acknowledges on apply): the planted bug the
 * durability check must catch. The other bug values plant one missing sync
 * inside the engine (nokv/engine/bugs.h, passed as test-only options):
 *   skip-manifest-sync     new MANIFEST not fsynced before CURRENT names it
 *   skip-current-dirsync   no directory sync after the CURRENT rename
 *   skip-wal-open-dirsync  no directory sync after open's new WAL segment
 *   skip-wal-repair-sync   torn WAL tail cut without an fsync
 *   skip-table-sync        flushed/compacted tables not fsynced
 * tests/ctest/engine.cmake requires the scenario to fail for each.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/db.h"
#include "sim/scenario.h"
#include "sim/workload.h"

#define EW_MAX_NODES 8
#define EW_KEYS 200
#define EW_MAX_OPS 200000

typedef struct ew_world ew_world;

typedef struct ew_cfg {
    ew_world *w;
    uint32_t node;
} ew_cfg;

/* One issued write operation touching one key. */
typedef struct ew_op {
    uint16_t key;
    bool del;
    bool acked;
} ew_op;

typedef struct ew_node_model {
    ew_op *ops;     /* index = op id (1-based; 0 unused) */
    uint32_t nops;
    /* per key: newest op acknowledged durable, newest op issued (0 = none);
     * after a restart both restart from what recovery showed */
    uint32_t acked[EW_KEYS];
    uint32_t floor_[EW_KEYS]; /* recovered op at the last restart (0 absent) */
    uint64_t acks;
    uint64_t restarts;
} ew_node_model;

struct ew_world {
    nk_sim *s;
    nk_sim_result *res;
    uint32_t nodes;
    uint64_t interval_ns;
    bool bug_skip_sync;
    unsigned engine_bugs; /* NK_BUG_* handed to every node's engine */
    ew_cfg cfgs[EW_MAX_NODES + 1];
    ew_node_model m[EW_MAX_NODES + 1];
    uint64_t reads_checked;
};

struct ew_wdone;

typedef struct ew_app {
    nk_rt *rt;
    ew_world *w;
    uint32_t self;
    nk_db *db;
    nk_rand rand;
    uint64_t timer;
    struct ew_wdone *live; /* completions not delivered yet */
} ew_app;

/* ------------------------------------------------------------ values --- */

static size_t value_of(uint32_t node, uint32_t op, uint8_t *buf)
{
    nk_rand r;
    nk_rand_derive(&r, node, "engine.value", op);
    size_t len = 12 + (size_t)nk_rand_below(&r, 180);
    /* first 8 bytes name the op so a reader can tell which write it sees */
    for (int i = 0; i < 4; i++) {
        buf[i] = (uint8_t)(op >> (8 * i));
        buf[4 + i] = (uint8_t)(node >> (8 * i));
    }
    nk_rand_bytes(&r, buf + 8, len - 8);
    return len;
}

static void key_of(int k, char *buf, size_t n) { snprintf(buf, n, "ek%04d", k); }

/* Decode and fully verify a value: the op it came from, or 0 if garbage. */
static uint32_t value_op(uint32_t node, const uint8_t *v, size_t len)
{
    if (len < 8) {
        return 0;
    }
    uint32_t op = 0, vn = 0;
    for (int i = 3; i >= 0; i--) {
        op = (op << 8) | v[i];
        vn = (vn << 8) | v[4 + i];
    }
    if (vn != node || op == 0) {
        return 0;
    }
    uint8_t want[200];
    size_t wl = value_of(node, op, want);
    return (wl == len && memcmp(want, v, len) == 0) ? op : 0;
}

/* ----------------------------------------------------------- checking --- */

/* Check what a read returned for key k against the model. `op` is the op
 * whose value was read (0 = key absent). */
static void check_read(ew_world *w, uint32_t node, int k, uint32_t op, bool after_restart)
{
    ew_node_model *m = &w->m[node];
    uint32_t need = m->acked[k] > m->floor_[k] ? m->acked[k] : m->floor_[k];
    w->reads_checked++;
    if (op != 0) {
        if (op > m->nops || m->ops[op].key != k || m->ops[op].del) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                        "integrity: n%u key ek%04d holds the value of op %u, which never wrote "
                        "that key",
                        node, k, op);
            return;
        }
    }
    /* Absent is fine when the newest required version is a delete or none. */
    uint32_t seen = op;
    if (seen == 0) {
        if (need != 0 && !m->ops[need].del) {
            /* a later delete issued after `need` may explain it */
            bool later_delete = false;
            for (uint32_t o = need + 1; o <= m->nops && !later_delete; o++) {
                later_delete = m->ops[o].key == k && m->ops[o].del;
            }
            if (!later_delete) {
                nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                            "durability: n%u key ek%04d is missing%s, but op %u wrote it and "
                            "was acknowledged durable",
                            node, k, after_restart ? " after recovery" : "", need);
            }
        }
        return;
    }
    if (seen < need) {
        nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                    "durability: n%u key ek%04d shows op %u%s, older than op %u which was "
                    "acknowledged durable",
                    node, k, seen, after_restart ? " after recovery" : "", need);
    }
}

/* ------------------------------------------------------------- the app --- */

static void on_write_done(void *arg, int status);

/* A durable write waiting for its completion. A crash drops the callback,
 * so the app keeps them on a list and frees the rest in stop(). */
typedef struct ew_wdone {
    ew_app *a;
    uint32_t first_op;
    uint32_t nops;
    struct ew_wdone *prev, *next;
} ew_wdone;

static void issue_write(ew_app *a)
{
    ew_world *w = a->w;
    ew_node_model *m = &w->m[a->self];
    uint32_t n = nk_rand_chance(&a->rand, 1, 5) ? 1 + (uint32_t)nk_rand_below(&a->rand, 4) : 1;
    if (m->nops + n >= EW_MAX_OPS) {
        return;
    }
    bool sync = !nk_rand_chance(&a->rand, 1, 5);
    nk_batch b = {0};
    nk_batch_init(&b);
    uint32_t first = m->nops + 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t op = ++m->nops;
        int k = (int)nk_rand_below(&a->rand, EW_KEYS);
        char key[16];
        key_of(k, key, sizeof(key));
        bool del = nk_rand_chance(&a->rand, 1, 6);
        m->ops[op] = (ew_op){(uint16_t)k, del, false};
        if (del) {
            nk_batch_delete(&b, key, strlen(key));
        } else {
            uint8_t v[200];
            size_t vl = value_of(a->self, op, v);
            nk_batch_put(&b, key, strlen(key), v, vl);
        }
    }
    ew_wdone *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        nk_batch_free(&b);
        return;
    }
    d->a = a;
    d->first_op = first;
    d->nops = sync ? n : 0; /* a non-durable write promises nothing */
    d->next = a->live;
    if (a->live != NULL) {
        a->live->prev = d;
    }
    a->live = d;
    int rc = nk_db_write(a->db, &b, sync && !w->bug_skip_sync, on_write_done, d);
    nk_batch_free(&b);
    if (rc != NK_OK) {
        /* read-only after a background error, or closing: nothing acked */
        d->nops = 0;
        on_write_done(d, rc);
    }
}

static void on_write_done(void *arg, int status)
{
    ew_wdone *d = arg;
    ew_app *a = d->a;
    if (status == NK_OK) {
        ew_node_model *m = &a->w->m[a->self];
        for (uint32_t op = d->first_op; op < d->first_op + d->nops; op++) {
            m->ops[op].acked = true;
            int k = m->ops[op].key;
            if (op > m->acked[k]) {
                m->acked[k] = op;
            }
            m->acks++;
        }
    }
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        a->live = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    free(d);
}

static void do_read(ew_app *a)
{
    int k = (int)nk_rand_below(&a->rand, EW_KEYS);
    char key[16];
    key_of(k, key, sizeof(key));
    /* the acked version required is the one known before the read */
    nk_buf v = {0};
    nk_errbuf eb;
    int rc = nk_db_get(a->db, key, strlen(key), 0, &v, &eb);
    if (rc == NK_OK) {
        uint32_t op = value_op(a->self, v.data, v.len);
        if (op == 0) {
            nk_sim_fail(a->w->s, a->w->res, NK_SIM_SAFETY,
                        "integrity: n%u key %s returned a value no operation wrote (%zu bytes)",
                        a->self, key, v.len);
        } else {
            check_read(a->w, a->self, k, op, false);
        }
    } else if (rc == NK_ENOENT) {
        check_read(a->w, a->self, k, 0, false);
    } else if (rc == NK_ECORRUPT) {
        /* reported corruption is allowed only if the disk really corrupted
         * reads (scenarios with disk-faults); never a silent wrong value */
        nk_log(a->rt, NK_LOG_WARN, "engine: read reported corruption: %s", eb.msg);
    } else if (rc != NK_ECRASHED) {
        nk_log(a->rt, NK_LOG_WARN, "engine: read failed: %s", nk_strerror(rc));
    }
    nk_buf_free(&v);
}

/* Kept live so stop() can detach completions the runtime will drop. */
static void tick(void *arg)
{
    ew_app *a = arg;
    a->timer = 0;
    for (int i = 0; i < 4; i++) {
        if (nk_rand_chance(&a->rand, 2, 3)) {
            issue_write(a);
        } else {
            do_read(a);
        }
    }
    a->timer = nk_rt_timer_start(a->rt, a->w->interval_ns, tick, a);
}

/* After recovery: every key must hold a version at least as new as the last
 * acknowledged one; the recovered state becomes the new floor. */
static void verify_recovery(ew_app *a)
{
    ew_world *w = a->w;
    ew_node_model *m = &w->m[a->self];
    for (int k = 0; k < EW_KEYS; k++) {
        char key[16];
        key_of(k, key, sizeof(key));
        nk_buf v = {0};
        nk_errbuf eb;
        int rc = nk_db_get(a->db, key, strlen(key), 0, &v, &eb);
        uint32_t op = 0;
        if (rc == NK_OK) {
            op = value_op(a->self, v.data, v.len);
            if (op == 0) {
                nk_sim_fail(w->s, w->res, NK_SIM_SAFETY,
                            "integrity: after recovery n%u key %s holds a value no operation "
                            "wrote",
                            a->self, key);
            }
        } else if (rc != NK_ENOENT) {
            nk_sim_fail(w->s, w->res, NK_SIM_SAFETY, "recovery: n%u cannot read %s: %s",
                        a->self, key, eb.msg);
        }
        nk_buf_free(&v);
        if (w->res->verdict != NK_SIM_PASS) {
            return;
        }
        check_read(w, a->self, k, op, true);
        if (w->res->verdict != NK_SIM_PASS) {
            return;
        }
        /* The recovered version is the truth from now on. Ops newer than it
         * that were never acknowledged are gone; acknowledged ones were
         * checked above. A recovered delete keeps floor 0 for this key. */
        m->floor_[k] = op;
        m->acked[k] = op;
    }
    m->restarts++;
}

static void ew_stop(void *state, bool crashed);

static int ew_start(nk_rt *rt, void *cfgp, void **state)
{
    ew_cfg *cfg = cfgp;
    ew_app *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NK_ENOMEM;
    }
    a->rt = rt;
    a->w = cfg->w;
    a->self = cfg->node;
    nk_rt_rand_stream(rt, "engine.workload", &a->rand);
    nk_db_options o;
    nk_db_options_default(&o);
    o.memtable_bytes = 16 * 1024;
    o.target_file_bytes = 8 * 1024;
    o.level1_bytes = 32 * 1024;
    o.level_multiplier = 4;
    o.l0_compaction_trigger = 2;
    o.l0_slowdown = 4;
    o.l0_stop = 8;
    o.wal_segment_bytes = 8 * 1024;
    o.block_cache_bytes = 32 * 1024;
    o.sst.block_size = 512;
    o.manifest_rewrite_bytes = 8 * 1024;
    o.test_bugs = a->w->engine_bugs;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_db_open(rt, "/db", &o, &a->db, &eb);
    if (rc != NK_OK) {
        if (rc != NK_ECRASHED) {
            nk_sim_fail(a->w->s, a->w->res, NK_SIM_SAFETY, "recovery: n%u cannot open: %s: %s",
                        a->self, nk_errname(rc), eb.msg);
        }
        free(a);
        return rc;
    }
    *state = a;
    if (a->w->m[a->self].nops > 0) {
        verify_recovery(a);
    }
    a->timer = nk_rt_timer_start(rt, a->w->interval_ns, tick, a);
    return NK_OK;
}

static void ew_stop(void *state, bool crashed)
{
    ew_app *a = state;
    (void)crashed; /* a graceful stop in this workload ends like a kill */
    if (a->db != NULL) {
        nk_db_abandon(a->db); /* no callback of it will run any more */
    }
    while (a->live != NULL) {
        ew_wdone *d = a->live;
        a->live = d->next;
        free(d);
    }
    free(a);
}

static const nk_sim_app ew_app_def = {"engine", ew_start, ew_stop};

/* --------------------------------------------------------------- world --- */

static void *world_new(nk_sim *s, nk_sim_result *res, uint32_t nodes)
{
    if (nodes == 0 || nodes > EW_MAX_NODES) {
        return NULL;
    }
    ew_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->res = res;
    w->nodes = nodes;
    w->interval_ns = 2 * NK_NSEC_PER_MSEC;
    for (uint32_t i = 1; i <= nodes; i++) {
        w->cfgs[i] = (ew_cfg){w, i};
        if (s != NULL) {
            w->m[i].ops = calloc(EW_MAX_OPS + 1, sizeof(ew_op));
        }
    }
    return w;
}

static int world_option(void *wp, const char *key, const char *value)
{
    ew_world *w = wp;
    if (strcmp(key, "interval") == 0) {
        return nk_sim_parse_duration(value, &w->interval_ns);
    }
    if (strcmp(key, "bug") == 0) {
        if (strcmp(value, "skip-wal-sync") == 0) {
            w->bug_skip_sync = true;
            return NK_OK;
        }
        if (strcmp(value, "none") == 0) {
            w->bug_skip_sync = false;
            w->engine_bugs = 0;
            return NK_OK;
        }
        static const struct {
            const char *name;
            unsigned bit;
        } bugs[] = {
            {"skip-manifest-sync", NK_BUG_MANIFEST_SYNC},
            {"skip-current-dirsync", NK_BUG_CURRENT_DIRSYNC},
            {"skip-wal-open-dirsync", NK_BUG_WAL_OPEN_DIRSYNC},
            {"skip-wal-repair-sync", NK_BUG_WAL_REPAIR_SYNC},
            {"skip-table-sync", NK_BUG_TABLE_SYNC},
        };
        for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
            if (strcmp(value, bugs[i].name) == 0) {
                w->engine_bugs |= bugs[i].bit;
                return NK_OK;
            }
        }
    }
    return NK_EINVAL;
}

static void *world_node_cfg(void *wp, uint32_t node) { return &((ew_world *)wp)->cfgs[node]; }

static int world_check(void *wp, const char *name, const char *args)
{
    ew_world *w = wp;
    (void)args;
    if (strcmp(name, "acked") == 0) {
        /* liveness: every live node acknowledged durable writes */
        for (uint32_t n = 1; n <= w->nodes; n++) {
            if (nk_sim_node_up(w->s, n) && w->m[n].acks == 0) {
                nk_sim_fail(w->s, w->res, NK_SIM_LIVENESS,
                            "progress: n%u never acknowledged a durable write", n);
                return NK_OK;
            }
        }
        return NK_OK;
    }
    return NK_EINVAL;
}

static void world_finish(void *wp)
{
    ew_world *w = wp;
    uint64_t acks = 0, restarts = 0;
    for (uint32_t n = 1; n <= w->nodes; n++) {
        acks += w->m[n].acks;
        restarts += w->m[n].restarts;
    }
    nk_sim_trace(w->s, "engine.finish acks=%" PRIu64 " recoveries_checked=%" PRIu64
                       " reads_checked=%" PRIu64,
                 acks, restarts, w->reads_checked);
}

static void world_free(void *wp)
{
    ew_world *w = wp;
    for (uint32_t i = 1; i <= w->nodes; i++) {
        free(w->m[i].ops);
    }
    free(w);
}

const nk_sim_workload nk_sim_workload_engine = {
    .name = "engine",
    .app = &ew_app_def,
    .world_new = world_new,
    .option = world_option,
    .node_cfg = world_node_cfg,
    .check = world_check,
    .finish = world_finish,
    .world_free = world_free,
};
