/*
 * swarm.c - swarm profiles (see swarm.h).
 *
 * Swarm testing (Groce et al.; TigerBeetle's options_swarm, FoundationDB's
 * randomized knobs): instead of one fixed mix of every fault, each seed
 * turns fault classes on or off and picks their rates, the cluster size,
 * the workload mix and the lifecycle. A run with fewer fault kinds reaches
 * deeper states of the ones that are on, and the sweep covers the mixes.
 *
 * Determinism: every knob is drawn, in a fixed order, from the seed's own
 * stream ("swarm.profile"), whether or not an override replaces it, so
 * overriding one knob never shifts another. The generated text goes
 * through the ordinary scenario parser; the run's own randomness (fault
 * times, targets, the simulator) then comes from the seed as in any file.
 */
#include "sim/swarm.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/util/rand.h"
#include "sim/sim.h"

enum { W_CLUSTER = 0, W_MIGRATION = 1 };
enum { U_SERVE = 0, U_EXPAND, U_TRANSFER, U_REMOVE };

typedef struct profile {
    uint32_t world, nodes, power;
    uint32_t crash, kill, stop, partition, oneway, flap;
    uint32_t nemesis, failpoints, fp_pool, disk_faults, drift;
    uint32_t coordinator, coord_outage;
    uint32_t clients, keys, incr, get, ops;
    uint32_t standalone, until, crash_init, interrupt;
} profile;

typedef struct knob {
    const char *key;
    size_t off;
    uint32_t lo, hi;
    const char *const *names; /* enum knobs: value names by index; NULL = number */
} knob;

static const char *const onoff[] = {"off", "on", NULL};
static const char *const worlds[] = {"cluster", "migration", NULL};
static const char *const powers[] = {"keep-all", "drop-all", "chaos", NULL};
static const char *const untils[] = {"serve", "expand", "transfer", "remove", NULL};
static const char *const interrupts[] = {"off", "crash", "kill", "break", NULL};
static const char *const pools[] = {"base", "wide", NULL};

#define K(name, field, lo, hi, names)                                                              \
    {                                                                                              \
        name, offsetof(profile, field), lo, hi, names                                              \
    }
/* The order here is the order of the profile string. */
static const knob knobs[] = {
    K("world", world, 0, 1, worlds),
    K("nodes", nodes, 3, 5, NULL),
    K("power", power, 0, 2, powers),
    K("crash", crash, 0, 8, NULL),
    K("kill", kill, 0, 8, NULL),
    K("stop", stop, 0, 4, NULL),
    K("partition", partition, 0, 8, NULL),
    K("oneway", oneway, 0, 8, NULL),
    K("flap", flap, 0, 8, NULL),
    K("nemesis", nemesis, 0, 1, onoff),
    K("failpoints", failpoints, 0, 10, NULL),
    K("fp-pool", fp_pool, 0, 1, pools),
    K("disk-faults", disk_faults, 0, 1, onoff),
    K("drift", drift, 0, 1000, NULL),
    K("coordinator", coordinator, 0, 1, onoff),
    K("coord-outage", coord_outage, 0, 4, NULL),
    K("clients", clients, 1, 8, NULL),
    K("keys", keys, 1, 8, NULL),
    K("incr", incr, 0, 100, NULL),
    K("get", get, 0, 100, NULL),
    K("ops", ops, 0, 100000, NULL),
    K("standalone", standalone, 0, 8000, NULL),
    K("until", until, 0, 3, untils),
    K("crash-init", crash_init, 0, 1, onoff),
    K("interrupt", interrupt, 0, 3, interrupts),
};
#undef K
#define N_KNOBS (sizeof(knobs) / sizeof(knobs[0]))

/* Crash failpoints the cluster stores hit often (raft log, WAL, flush,
 * manifest: the pool cluster_chaos arms by hand; compaction, LOCALMETA,
 * CURRENT and WAL rotation, which sweeps reached but nothing armed), one
 * hit each. */
static const char *const fp_pool[] = {
    "raftlog.before_sync",        "raftlog.after_append",        "wal.append.before",
    "flush.after_table",          "manifest.edit.after_append",  "raftlog.after_roll",
    "compaction.after_tables",    "localmeta.save.after_tmp",    "manifest.current.before_rename",
    "wal.rotate.after_create",
};
#define FP_POOL (sizeof(fp_pool) / sizeof(fp_pool[0]))
/* fp-pool=base: the first six. `wide` adds the last four; their first
 * sweeps found two WAL recovery bugs, a plan inspector bug and a checker bug
 * (all fixed, seeds in scenarios/regressions/swarm.list). Half the runs
 * draw the wide pool. */
#define FP_POOL_BASE 6

static uint32_t *field(profile *p, const knob *k)
{
    return (uint32_t *)((char *)p + k->off);
}

static const knob *find_knob(const char *key)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        if (strcmp(knobs[i].key, key) == 0) {
            return &knobs[i];
        }
    }
    return NULL;
}

static int parse_value(const knob *k, const char *value, uint32_t *out)
{
    if (k->names != NULL) {
        for (uint32_t i = 0; k->names[i] != NULL; i++) {
            if (strcmp(k->names[i], value) == 0) {
                *out = i;
                return 0;
            }
        }
        return -1;
    }
    char *end = NULL;
    if (value[0] < '0' || value[0] > '9') {
        return -1;
    }
    unsigned long long v = strtoull(value, &end, 10);
    if (*end != '\0' || v < k->lo || v > k->hi) {
        return -1;
    }
    /* the cluster size is 3 or 5: an odd quorum either way */
    if (k->off == offsetof(profile, nodes) && v != 3 && v != 5) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int nk_swarm_check_knob(const char *key, const char *value)
{
    const knob *k = find_knob(key);
    if (k == NULL) {
        return NK_ENOENT;
    }
    uint32_t v;
    return parse_value(k, value, &v) == 0 ? NK_OK : NK_EINVAL;
}

static bool chance(nk_rand *r, uint64_t num, uint64_t den)
{
    return nk_rand_chance(r, num, den);
}

/* Draw every knob from the seed, then apply the overrides. */
static void draw(uint64_t seed, const char (*keys)[32], const char (*vals)[64], unsigned n,
                 profile *p)
{
    nk_rand r;
    nk_rand_derive(&r, seed, "swarm.profile", 0);
    memset(p, 0, sizeof(*p));
    /* Each class is on in about half the runs, so most runs combine a few
     * classes rather than all of them (swarm testing's point). */
    p->world = chance(&r, 2, 5) ? W_MIGRATION : W_CLUSTER;
    p->nodes = chance(&r, 3, 10) ? 5 : 3;
    uint64_t pw = nk_rand_below(&r, 4);
    p->power = pw == 0 ? 0 : pw == 1 ? 1 : 2;
    uint32_t on[6];
    for (int i = 0; i < 6; i++) {
        on[i] = chance(&r, 1, 2);
    }
    uint32_t cnt[6];
    cnt[0] = (uint32_t)nk_rand_between(&r, 1, 4);
    cnt[1] = (uint32_t)nk_rand_between(&r, 1, 2);
    cnt[2] = (uint32_t)nk_rand_between(&r, 1, 2);
    cnt[3] = (uint32_t)nk_rand_between(&r, 1, 3);
    cnt[4] = (uint32_t)nk_rand_between(&r, 1, 2);
    cnt[5] = (uint32_t)nk_rand_between(&r, 1, 2);
    p->crash = on[0] ? cnt[0] : 0;
    p->kill = on[1] ? cnt[1] : 0;
    p->stop = on[2] ? cnt[2] : 0;
    p->partition = on[3] ? cnt[3] : 0;
    p->oneway = on[4] ? cnt[4] : 0;
    p->flap = on[5] ? cnt[5] : 0;
    p->nemesis = chance(&r, 1, 2);
    uint32_t fps = (uint32_t)nk_rand_between(&r, 1, 4);
    p->failpoints = chance(&r, 1, 2) ? fps : 0;
    /* The pool comes from its own stream, added after the others were
     * fixed, so the seeds already in the corpus keep every other knob. */
    nk_rand rp;
    nk_rand_derive(&rp, seed, "swarm.fp-pool", 0);
    p->fp_pool = chance(&rp, 1, 2);
    /* fsync failures, in the cluster world only (the migration world's
     * clients cannot classify the standalone server's I/O error reply).
     * Off until a leader whose engine failed behind a stall fail-stopped
     * (swarm seed 114 with --set disk-faults=on, fixed in the kvsm). */
    bool disk = chance(&r, 1, 4);
    p->disk_faults = disk && p->world == W_CLUSTER;
    p->drift = (uint32_t)nk_rand_below(&r, 4) * 100;
    p->coordinator = chance(&r, 1, 2);
    uint32_t outages = (uint32_t)nk_rand_between(&r, 1, 2);
    p->coord_outage = p->coordinator && chance(&r, 1, 2) ? outages : 0;
    p->clients = (uint32_t)nk_rand_between(&r, 1, 8);
    p->keys = (uint32_t)nk_rand_between(&r, 1, 8);
    p->incr = (uint32_t)nk_rand_below(&r, 5) * 10;
    p->get = 20 + (uint32_t)nk_rand_below(&r, 7) * 10;
    uint32_t ops = (uint32_t)nk_rand_between(&r, 2, 8) * 25;
    p->ops = chance(&r, 1, 3) ? ops : 0;
    p->standalone = chance(&r, 1, 2) ? 2000 : 300;
    uint64_t u = nk_rand_below(&r, 6);
    p->until = u >= U_REMOVE ? U_REMOVE : (uint32_t)u;
    p->crash_init = chance(&r, 1, 4);
    uint64_t in = nk_rand_below(&r, 6);
    p->interrupt = in < 3 ? 0 : (uint32_t)(in - 2);
    for (unsigned i = 0; i < n; i++) {
        const knob *k = find_knob(keys[i]);
        uint32_t v;
        if (k != NULL && parse_value(k, vals[i], &v) == 0) {
            *field(p, k) = v;
        }
    }
    /* A migrated cluster runs with a coordinator, as docs/migration.md
     * deploys it (`nokv serve --store-id S --coordinator-addr ...`): its
     * stores have no --initial-cluster and keep each other's addresses in
     * no file, so without one, stores that all restarted never find each
     * other again (swarm seeds 30, 38, 47 before this rule). */
    if (p->world == W_MIGRATION) {
        p->coordinator = 1;
        /* The standalone server answers a failed fsync with "-ERR write
         * rejected: input/output error", which the shared clients cannot
         * classify (swarm seeds 108, 119): disk faults run in the cluster
         * world only. */
        p->disk_faults = 0;
    }
}

static unsigned weight(const profile *p)
{
    /* Roughly "how much happens": every fault, node, client and key counts
     * one, the nemesis and the lifecycle a few; an uncapped op stream
     * counts as 400 operations. */
    unsigned w = p->nodes + p->crash + p->kill + p->stop + p->partition + p->oneway + p->flap;
    w += p->nemesis * 4 + p->failpoints + p->disk_faults * 2 + p->coordinator + p->coord_outage;
    w += p->power + (p->drift > 0) + p->clients + p->keys;
    w += (p->ops == 0 ? 400 : p->ops) / 25;
    if (p->world == W_MIGRATION) {
        w += 2 + p->until + p->crash_init + (p->interrupt != 0) + (p->standalone > 300);
    }
    return w;
}

static void format(const profile *p, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KNOBS; i++) {
        const knob *k = &knobs[i];
        uint32_t v = *field((profile *)p, k);
        char val[32];
        if (k->names != NULL) {
            snprintf(val, sizeof(val), "%s", k->names[v]);
        } else {
            snprintf(val, sizeof(val), "%" PRIu32, v);
        }
        int wrote =
            snprintf(buf + used, used < len ? len - used : 0, "%s%s=%s", i ? " " : "", k->key, val);
        if (wrote < 0 || used + (size_t)wrote >= len) {
            break;
        }
        used += (size_t)wrote;
    }
}

unsigned nk_swarm_profile(uint64_t seed, const char (*keys)[32], const char (*vals)[64], unsigned n,
                          char *buf, size_t len)
{
    profile p;
    draw(seed, keys, vals, n, &p);
    if (buf != NULL && len > 0) {
        format(&p, buf, len);
    }
    return weight(&p);
}

typedef struct text {
    char *b;
    size_t len, cap;
    bool oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom) {
        t->oom = true;
        return;
    }
    size_t need = t->len + (size_t)n + 2;
    if (need > t->cap) {
        size_t cap = need * 2;
        char *nb = realloc(t->b, cap);
        if (nb == NULL) {
            t->oom = true;
            return;
        }
        t->b = nb;
        t->cap = cap;
    }
    memcpy(t->b + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->b[t->len++] = '\n';
    t->b[t->len] = '\0';
}

char *nk_swarm_generate(uint64_t seed, const char (*keys)[32], const char (*vals)[64], unsigned n)
{
    profile p;
    draw(seed, keys, vals, n, &p);
    /* Fault placement draws from a second stream, so the profile string
     * alone (plus the seed) fixes everything. */
    nk_rand r;
    nk_rand_derive(&r, seed, "swarm.placement", 0);
    bool mig = p.world == W_MIGRATION;
    /* Timeline. cluster: faults 1..9 s, heal 10.5 s, mark 12 s (as
     * cluster_chaos). migration: the operator starts after the standalone
     * phase, faults 1..8 s, heal 9 s, lifecycle checked at 12 s. */
    uint64_t f_end = mig ? 8000 : 9000, off_at = mig ? 9000 : 10000;
    /* the lifecycle may still be rerunning when the faults end: it gets
     * 6 s more than cluster_chaos gives a founded cluster */
    uint64_t heal = mig ? 9000 : 10500, mark = mig ? 15000 : 12000;
    text t = {0};
    put(&t, "name swarm");
    put(&t, "workload %s", mig ? "migration" : "cluster");
    put(&t, "nodes %" PRIu32, p.nodes);
    put(&t, "duration %ds", mig ? 19 : 18);
    put(&t, "option clients=%" PRIu32, p.clients);
    put(&t, "option keys=%" PRIu32, p.keys);
    put(&t, "option incr=%" PRIu32, p.incr);
    put(&t, "option get=%" PRIu32, p.get);
    put(&t, "option ops=%" PRIu32, p.ops);
    put(&t, "option nemesis=%s", p.nemesis ? "leader" : "off");
    put(&t, "option nemesis-gap=400ms..1500ms");
    put(&t, "option chaos-until=%" PRIu64 "ms", off_at);
    put(&t, "option within=3s");
    put(&t, "option coordinator=%s", p.coordinator ? "on" : "off");
    if (mig) {
        put(&t, "option until=%s", untils[p.until]);
        put(&t, "option crash-init=%s", p.crash_init ? "on" : "off");
        put(&t, "option interrupt=%s", interrupts[p.interrupt]);
        /* faults during the rollouts: the operator reruns, as docs/migration.md
         * says, for as long as the faults last (40 x 300 ms > the window) */
        put(&t, "option reruns=40");
        put(&t, "option stage-timeout=3s");
    }
    put(&t, "net latency=200us..2ms tail=1/100:20ms..80ms connect-timeout=500ms");
    if (p.drift > 0) {
        put(&t, "clock drift=%" PRIu32 "ppm", p.drift);
    }
    put(&t, "disk sector=512 crash=%s", powers[p.power]);
    if (mig) {
        put(&t, "at %" PRIu32 "ms check migrate", p.standalone);
    }
    /* crash failpoints: distinct names from the pool, armed at seeded times */
    bool used[FP_POOL] = {false};
    size_t pool = p.fp_pool ? FP_POOL : FP_POOL_BASE;
    for (uint32_t i = 0; i < p.failpoints && i < pool; i++) {
        uint64_t k = nk_rand_below(&r, pool - i);
        size_t pick = 0;
        for (size_t j = 0; j < pool; j++) {
            if (!used[j] && k-- == 0) {
                pick = j;
                break;
            }
        }
        used[pick] = true;
        uint64_t when = nk_rand_between(&r, 1000, f_end - 1000);
        put(&t, "at %" PRIu64 "ms failpoint all %s %s count=1", when, fp_pool[pick],
            nk_rand_chance(&r, 1, 4) ? "kill" : "crash");
        put(&t, "at %" PRIu64 "ms failpoint all %s off", off_at, fp_pool[pick]);
    }
    if (p.crash > 0) {
        put(&t, "random crash count=%" PRIu32 " window=1s..%" PRIu64 "ms length=50ms..1s", p.crash,
            f_end);
    }
    if (p.kill > 0) {
        put(&t, "random kill count=%" PRIu32 " window=1s..%" PRIu64 "ms length=50ms..500ms", p.kill,
            f_end);
    }
    if (p.partition > 0) {
        put(&t, "random partition count=%" PRIu32 " window=1s..%" PRIu64 "ms length=100ms..1500ms",
            p.partition, f_end);
    }
    if (p.oneway > 0) {
        put(&t,
            "random partition-oneway count=%" PRIu32 " window=1s..%" PRIu64
            "ms length=100ms..1500ms",
            p.oneway, f_end);
    }
    if (p.flap > 0) {
        put(&t, "random flap count=%" PRIu32 " window=1s..%" PRIu64 "ms length=300ms..1500ms",
            p.flap, f_end);
    }
    for (uint32_t i = 0; i < p.stop; i++) {
        /* a graceful stop (the shutdown handler) and a restart */
        uint64_t when = nk_rand_between(&r, 1000, f_end - 1000);
        uint32_t node = 1 + (uint32_t)nk_rand_below(&r, p.nodes);
        put(&t, "at %" PRIu64 "ms stop n%" PRIu32, when, node);
        put(&t, "at %" PRIu64 "ms start n%" PRIu32, when + nk_rand_between(&r, 100, 800), node);
    }
    if (p.disk_faults) {
        /* Sync failures only: a store that sees one stops serving (fail
         * stop) and `check revive` restarts it. Read corruption is outside
         * the fault model here: a flipped bit in an SST footer read at start
         * makes the store refuse its workdir (seed 64), and a store has no
         * second local copy to repair from. */
        put(&t, "at 1s disk-faults all sync-fail=1/2000");
        put(&t, "at %" PRIu64 "ms disk-faults all sync-fail=0/1", f_end);
    }
    for (uint32_t i = 0; i < p.coord_outage && p.coordinator; i++) {
        uint64_t when = nk_rand_between(&r, 1000, f_end - 2000);
        uint64_t len = nk_rand_between(&r, 300, 3000);
        if (when + len > f_end) {
            len = f_end - when;
        }
        static const char *const how[] = {"crash", "kill", "stop"};
        put(&t, "at %" PRIu64 "ms check coord %s", when, how[nk_rand_below(&r, 3)]);
        put(&t, "at %" PRIu64 "ms check coord start", when + len);
    }
    /* Nodes a failpoint took down stay down until someone starts them. */
    put(&t, "at 5s start all");
    put(&t, "at 8s start all");
    put(&t, "at %" PRIu64 "ms heal all", heal);
    put(&t, "at %" PRIu64 "ms start all", heal);
    put(&t, "at %" PRIu64 "ms start all", heal + 1000);
    /* a store that stopped serving after a failed sync is restarted by its
     * supervisor (fail-stop is the design; staying down would be no bug) */
    put(&t, "at %" PRIu64 "ms check revive", heal);
    put(&t, "at %" PRIu64 "ms check revive", heal + 1000);
    if (p.coordinator) {
        put(&t, "at %" PRIu64 "ms check coord start", heal);
    }
    if (mig) {
        put(&t, "at %" PRIu64 "ms check migrated", mark);
    }
    put(&t, "at %" PRIu64 "ms check mark", mark);
    put(&t, "at %" PRIu64 "ms check progress min=10", mark + 1500);
    put(&t, "at %" PRIu64 "ms check final", mark + 1500);
    put(&t, "at %" PRIu64 "ms check converge", mark + 2500);
    if (t.oom) {
        free(t.b);
        return NULL;
    }
    return t.b;
}

unsigned nk_swarm_shrink_candidates(uint64_t seed, const char (*keys)[32], const char (*vals)[64],
                                    unsigned n, char (*out)[96], unsigned max)
{
    profile p;
    draw(seed, keys, vals, n, &p);
    unsigned k = 0;
#define CAND(...)                                                                                  \
    do {                                                                                           \
        if (k < max) {                                                                             \
            snprintf(out[k++], sizeof(out[0]), __VA_ARGS__);                                       \
        }                                                                                          \
    } while (0)
    /* Biggest cuts first: a simpler world, fewer nodes, no nemesis, then
     * each fault class off (or halved), then less load. */
    if (p.world == W_MIGRATION) {
        CAND("world=cluster");
    }
    if (p.nodes == 5) {
        CAND("nodes=3");
    }
    if (p.nemesis) {
        CAND("nemesis=off");
    }
    static const struct {
        const char *key;
        size_t off;
    } counts[] = {
        {"crash", offsetof(profile, crash)},
        {"kill", offsetof(profile, kill)},
        {"stop", offsetof(profile, stop)},
        {"partition", offsetof(profile, partition)},
        {"oneway", offsetof(profile, oneway)},
        {"flap", offsetof(profile, flap)},
        {"failpoints", offsetof(profile, failpoints)},
        {"coord-outage", offsetof(profile, coord_outage)},
    };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint32_t v = *(uint32_t *)((char *)&p + counts[i].off);
        if (v > 0) {
            CAND("%s=0", counts[i].key);
        }
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint32_t v = *(uint32_t *)((char *)&p + counts[i].off);
        if (v > 1) {
            CAND("%s=%" PRIu32, counts[i].key, v / 2);
        }
    }
    if (p.disk_faults) {
        CAND("disk-faults=off");
    }
    if (p.coordinator && p.coord_outage == 0 && p.world == W_CLUSTER) {
        CAND("coordinator=off");
    }
    if (p.world == W_MIGRATION) {
        if (p.interrupt != 0) {
            CAND("interrupt=off");
        }
        if (p.crash_init) {
            CAND("crash-init=off");
        }
        if (p.until > U_SERVE) {
            CAND("until=%s", untils[p.until - 1]);
        }
        if (p.standalone > 300) {
            CAND("standalone=300");
        }
    }
    if (p.power > 0) {
        CAND("power=%s", powers[p.power - 1]);
    }
    if (p.drift > 0) {
        CAND("drift=0");
    }
    if (p.ops == 0 || p.ops > 100) {
        CAND("ops=100");
    }
    if (p.ops == 0 || p.ops > 25) {
        CAND("ops=%" PRIu32, p.ops == 0 || p.ops > 100 ? 50 : p.ops / 2 < 25 ? 25 : p.ops / 2);
    }
    if (p.clients > 1) {
        CAND("clients=%" PRIu32, p.clients > 2 ? p.clients / 2 : 1);
    }
    if (p.keys > 1) {
        CAND("keys=%" PRIu32, p.keys > 2 ? p.keys / 2 : 1);
    }
#undef CAND
    return k;
}
