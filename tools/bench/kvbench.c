/*
 * kvbench.c - one benchmark driver, several engines, identical workloads.
 *
 *   nokv-bench [--engine nokv] [--num N] [--reads N] [--seed S] [--db DIR]
 *              [--benchmarks fillseq,fillrandom,overwrite,readrandom,readmissing,
 *                           seekrandom,fillsync]
 *
 * Engines: nokv (nokv/nokv.h) always; rocksdb (rocksdb/c.h) when compiled with
 * -DKVBENCH_ROCKSDB; leveldb (leveldb/c.h) with -DKVBENCH_LEVELDB. The build
 * target `nokv-bench` is the nokv-only variant; tools/bench/run-peers.sh
 * builds all three and runs each engine in its own process.
 *
 * The workloads run in order in one process, like db_bench's --benchmarks
 * list: fillseq, fillrandom and fillsync start from an empty database; every
 * other workload runs on what the preceding ones left. Before a read
 * workload that follows writes, the engine is "settled" (memtable flushed,
 * no compaction due); that time is printed but is not part of any workload.
 *
 * Keys: index i (0 <= i < num) is stored under the 16-byte zero-padded
 * decimal of 2*i ("0000000000000042" for i = 21). readmissing looks up
 * 2*i+1, which sorts between two present keys, so only the bloom filters
 * (not table key ranges) can rule it out.
 * Values: 100 bytes, the first 50 random printable characters and the last
 * 50 a copy of them (compresses to about half, like db_bench's default
 * --compression_ratio 0.5), cut from a 1 MiB pool made from the seed.
 *
 * Every loop is bounded by an operation count or a deadline. Per-operation
 * latency comes from CLOCK_MONOTONIC around each call, binned in a
 * log-linear histogram (16 sub-buckets per power of two: < 6.25 % error).
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw */
#endif
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nokv/nokv.h"

#ifdef KVBENCH_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef KVBENCH_LEVELDB
#include <leveldb/c.h>
#endif

#define KEY_LEN 16
#define VALUE_LEN 100
#define POOL_CHUNKS 10486 /* 10486 * 100 bytes: about 1 MiB of values */
#define MEMTABLE_BYTES (64u << 20)
#define CACHE_BYTES (8u << 20)
#define BLOOM_BITS 10
#define BLOCK_SIZE 4096
#define BG_THREADS 2
#define SETTLE_TIMEOUT_SEC 1800.0
#define MAX_SEEK_NEXTS 1000

/* ---- settings shared by every engine ------------------------------------ */

typedef struct config {
    uint64_t num;
    uint64_t reads;
    uint64_t seed;
    unsigned seek_nexts;
    bool reuse_iter;
    bool keep;
    const char *engine;
    const char *benchmarks;
    char dir[4096]; /* the database lives in dir/db */
    char dbpath[4200];
} config;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "kvbench: %s: %s\n", what, detail ? detail : "(no detail)");
    exit(1);
}

/* ---- engine abstraction ------------------------------------------------- */

typedef struct engine {
    const char *name;
    const char *settings; /* one line: what this engine was configured with */
    void *(*open)(const char *dir);
    void (*close)(void *h);
    void (*put)(void *h, const char *k, size_t kl, const char *v, size_t vl, bool sync);
    /* true when found; *vlen = value length */
    bool (*get)(void *h, const char *k, size_t kl, size_t *vlen);
    void *(*iter_new)(void *h);
    void (*iter_free)(void *it);
    /* Seek to k and step `nexts` times: entries visited; adds their bytes. */
    unsigned (*seek_scan)(void *it, const char *k, size_t kl, unsigned nexts, uint64_t *bytes);
    void (*settle)(void *h, double deadline);
} engine;

/* nokv ---------------------------------------------------------------- */

static void *nokv_e_open(const char *dir)
{
    nokv_options o;
    nokv_options_init(&o);
    o.create_if_missing = true;
    o.memtable_bytes = MEMTABLE_BYTES;
    o.block_cache_bytes = CACHE_BYTES;
    o.bloom_bits_per_key = BLOOM_BITS;
    o.block_size = BLOCK_SIZE;
    o.compression = true; /* lz4 */
    o.background_threads = BG_THREADS;
    nokv *db = NULL;
    char err[NOKV_ERRMSG_SIZE];
    if (nokv_open(dir, &o, &db, err) != NOKV_OK) {
        die("nokv_open", err);
    }
    return db;
}

static void nokv_e_close(void *h)
{
    if (nokv_close(h) != NOKV_OK) {
        die("nokv_close", "failed");
    }
}

static void nokv_e_put(void *h, const char *k, size_t kl, const char *v, size_t vl, bool sync)
{
    nokv_write_options w = {.sync = sync};
    char err[NOKV_ERRMSG_SIZE];
    if (nokv_put(h, k, kl, v, vl, &w, err) != NOKV_OK) {
        die("nokv_put", err);
    }
}

static bool nokv_e_get(void *h, const char *k, size_t kl, size_t *vlen)
{
    char *v = NULL;
    char err[NOKV_ERRMSG_SIZE];
    int rc = nokv_get(h, k, kl, &v, vlen, NULL, err);
    if (rc == NOKV_ENOTFOUND) {
        return false;
    }
    if (rc != NOKV_OK) {
        die("nokv_get", err);
    }
    nokv_free(v);
    return true;
}

static void *nokv_e_iter_new(void *h)
{
    nokv_iter *it = nokv_iter_new(h, NULL, NULL, 0, NULL, 0);
    if (it == NULL) {
        die("nokv_iter_new", "returned NULL");
    }
    return it;
}

static void nokv_e_iter_free(void *it)
{
    nokv_iter_free(it);
}

static unsigned nokv_e_seek_scan(void *it, const char *k, size_t kl, unsigned nexts,
                                 uint64_t *bytes)
{
    unsigned seen = 0;
    nokv_iter_seek(it, k, kl);
    for (unsigned i = 0; i <= nexts && nokv_iter_valid(it); i++) {
        size_t a, b;
        (void)nokv_iter_key(it, &a);
        (void)nokv_iter_value(it, &b);
        *bytes += a + b;
        seen++;
        if (i < nexts) {
            nokv_iter_next(it);
        }
    }
    char err[NOKV_ERRMSG_SIZE];
    if (nokv_iter_status(it, err) != NOKV_OK) {
        die("nokv iterator", err);
    }
    return seen;
}

static void nokv_e_settle(void *h, double deadline)
{
    (void)deadline; /* nokv_compact_wait is itself bounded by the work due */
    char err[NOKV_ERRMSG_SIZE];
    if (nokv_compact_wait(h, err) != NOKV_OK) {
        die("nokv_compact_wait", err);
    }
}

static const engine ENGINE_NOKV = {
    "nokv",
    "memtable 64 MiB, block cache 8 MiB, bloom 10 bits/key, block 4 KiB, lz4, "
    "2 background threads, sync=false writes (sync=true for fillsync)",
    nokv_e_open,
    nokv_e_close,
    nokv_e_put,
    nokv_e_get,
    nokv_e_iter_new,
    nokv_e_iter_free,
    nokv_e_seek_scan,
    nokv_e_settle,
};

/* rocksdb ------------------------------------------------------------- */
#ifdef KVBENCH_ROCKSDB
typedef struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *bbo;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo, *wo_sync;
    rocksdb_readoptions_t *ro;
} rdb;

static void *rocks_open(const char *dir)
{
    rdb *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        die("rocksdb", "out of memory");
    }
    r->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->opts, 1);
    /* write_buffer_size stays at RocksDB's default: peers run at their own
     * defaults plus the shared cache and bloom settings (issue 11). */
    rocksdb_options_set_compression(r->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_background_jobs(r->opts, BG_THREADS);
    r->bbo = rocksdb_block_based_options_create();
    r->cache = rocksdb_cache_create_lru(CACHE_BYTES);
    rocksdb_block_based_options_set_block_cache(r->bbo, r->cache);
    rocksdb_block_based_options_set_block_size(r->bbo, BLOCK_SIZE);
    /* the table options take ownership of the policy */
    rocksdb_block_based_options_set_filter_policy(
        r->bbo, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS));
    rocksdb_options_set_block_based_table_factory(r->opts, r->bbo);
    char *err = NULL;
    r->db = rocksdb_open(r->opts, dir, &err);
    if (err != NULL) {
        die("rocksdb_open", err);
    }
    r->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo, 0);
    r->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo_sync, 1);
    r->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(r->ro, 1);
    return r;
}

static void rocks_close(void *h)
{
    rdb *r = h;
    rocksdb_close(r->db);
    rocksdb_writeoptions_destroy(r->wo);
    rocksdb_writeoptions_destroy(r->wo_sync);
    rocksdb_readoptions_destroy(r->ro);
    rocksdb_options_destroy(r->opts);
    rocksdb_block_based_options_destroy(r->bbo);
    rocksdb_cache_destroy(r->cache);
    free(r);
}

static void rocks_put(void *h, const char *k, size_t kl, const char *v, size_t vl, bool sync)
{
    rdb *r = h;
    char *err = NULL;
    rocksdb_put(r->db, sync ? r->wo_sync : r->wo, k, kl, v, vl, &err);
    if (err != NULL) {
        die("rocksdb_put", err);
    }
}

static bool rocks_get(void *h, const char *k, size_t kl, size_t *vlen)
{
    rdb *r = h;
    char *err = NULL;
    char *v = rocksdb_get(r->db, r->ro, k, kl, vlen, &err);
    if (err != NULL) {
        die("rocksdb_get", err);
    }
    if (v == NULL) {
        return false;
    }
    rocksdb_free(v);
    return true;
}

static void *rocks_iter_new(void *h)
{
    rdb *r = h;
    return rocksdb_create_iterator(r->db, r->ro);
}

static void rocks_iter_free(void *it)
{
    rocksdb_iter_destroy(it);
}

static unsigned rocks_seek_scan(void *it, const char *k, size_t kl, unsigned nexts, uint64_t *bytes)
{
    unsigned seen = 0;
    rocksdb_iter_seek(it, k, kl);
    for (unsigned i = 0; i <= nexts && rocksdb_iter_valid(it); i++) {
        size_t a, b;
        (void)rocksdb_iter_key(it, &a);
        (void)rocksdb_iter_value(it, &b);
        *bytes += a + b;
        seen++;
        if (i < nexts) {
            rocksdb_iter_next(it);
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err != NULL) {
        die("rocksdb iterator", err);
    }
    return seen;
}

static uint64_t rocks_prop(rdb *r, const char *name)
{
    uint64_t v = 0;
    if (rocksdb_property_int(r->db, name, &v) != 0) {
        die("rocksdb_property_int", name);
    }
    return v;
}

static void rocks_settle(void *h, double deadline)
{
    rdb *r = h;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush(r->db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err != NULL) {
        die("rocksdb_flush", err);
    }
    while (now_sec() < deadline) {
        if (rocks_prop(r, "rocksdb.compaction-pending") == 0 &&
            rocks_prop(r, "rocksdb.num-running-compactions") == 0 &&
            rocks_prop(r, "rocksdb.num-running-flushes") == 0 &&
            rocks_prop(r, "rocksdb.mem-table-flush-pending") == 0) {
            return;
        }
        usleep(10000);
    }
    fprintf(stderr, "kvbench: rocksdb did not settle before the deadline\n");
}

static const engine ENGINE_ROCKSDB = {
    "rocksdb",
    "write_buffer_size default (64 MiB), LRU block cache 8 MiB, full bloom 10 bits/key, block "
    "4 KiB, lz4, max_background_jobs 2, verify_checksums, WriteOptions.sync=false (true for "
    "fillsync); other options default",
    rocks_open,
    rocks_close,
    rocks_put,
    rocks_get,
    rocks_iter_new,
    rocks_iter_free,
    rocks_seek_scan,
    rocks_settle,
};
#endif

/* leveldb ------------------------------------------------------------- */
#ifdef KVBENCH_LEVELDB
typedef struct ldb {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *fp;
    leveldb_writeoptions_t *wo, *wo_sync;
    leveldb_readoptions_t *ro;
} ldb;

static void *level_open(const char *dir)
{
    ldb *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        die("leveldb", "out of memory");
    }
    l->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(l->opts, 1);
    /* write_buffer_size stays at LevelDB's default (4 MiB): a 64 MiB buffer
     * slows its fills by about a third, a setting only we would choose. */
    l->cache = leveldb_cache_create_lru(CACHE_BYTES);
    leveldb_options_set_cache(l->opts, l->cache);
    l->fp = leveldb_filterpolicy_create_bloom(BLOOM_BITS);
    leveldb_options_set_filter_policy(l->opts, l->fp);
    leveldb_options_set_block_size(l->opts, BLOCK_SIZE);
    leveldb_options_set_compression(l->opts, leveldb_snappy_compression);
    char *err = NULL;
    l->db = leveldb_open(l->opts, dir, &err);
    if (err != NULL) {
        die("leveldb_open", err);
    }
    l->wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(l->wo, 0);
    l->wo_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(l->wo_sync, 1);
    l->ro = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(l->ro, 1);
    return l;
}

static void level_close(void *h)
{
    ldb *l = h;
    leveldb_close(l->db);
    leveldb_writeoptions_destroy(l->wo);
    leveldb_writeoptions_destroy(l->wo_sync);
    leveldb_readoptions_destroy(l->ro);
    leveldb_options_destroy(l->opts);
    leveldb_filterpolicy_destroy(l->fp);
    leveldb_cache_destroy(l->cache);
    free(l);
}

static void level_put(void *h, const char *k, size_t kl, const char *v, size_t vl, bool sync)
{
    ldb *l = h;
    char *err = NULL;
    leveldb_put(l->db, sync ? l->wo_sync : l->wo, k, kl, v, vl, &err);
    if (err != NULL) {
        die("leveldb_put", err);
    }
}

static bool level_get(void *h, const char *k, size_t kl, size_t *vlen)
{
    ldb *l = h;
    char *err = NULL;
    char *v = leveldb_get(l->db, l->ro, k, kl, vlen, &err);
    if (err != NULL) {
        die("leveldb_get", err);
    }
    if (v == NULL) {
        return false;
    }
    leveldb_free(v);
    return true;
}

static void *level_iter_new(void *h)
{
    ldb *l = h;
    return leveldb_create_iterator(l->db, l->ro);
}

static void level_iter_free(void *it)
{
    leveldb_iter_destroy(it);
}

static unsigned level_seek_scan(void *it, const char *k, size_t kl, unsigned nexts, uint64_t *bytes)
{
    unsigned seen = 0;
    leveldb_iter_seek(it, k, kl);
    for (unsigned i = 0; i <= nexts && leveldb_iter_valid(it); i++) {
        size_t a, b;
        (void)leveldb_iter_key(it, &a);
        (void)leveldb_iter_value(it, &b);
        *bytes += a + b;
        seen++;
        if (i < nexts) {
            leveldb_iter_next(it);
        }
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    if (err != NULL) {
        die("leveldb iterator", err);
    }
    return seen;
}

/* LevelDB has no "compaction pending" property: derive LevelDB's own
 * compaction scores (L0: files / 4; Ln: bytes / (10^n MiB)) from the
 * "leveldb.stats" table. Sizes there are rounded to whole MiB, so also stop
 * once the table has not changed for 3 s (no compaction is running). */
static bool level_needs_compaction(const char *stats)
{
    const char *p = strstr(stats, "--------");
    if (p == NULL) {
        return false;
    }
    p = strchr(p, '\n');
    for (unsigned line = 0; p != NULL && line < 16; line++) {
        int level = 0, files = 0;
        double size_mb = 0;
        if (sscanf(p + 1, "%d %d %lf", &level, &files, &size_mb) != 3) {
            break;
        }
        double limit = 10.0;
        for (int i = 1; i < level && i < 8; i++) {
            limit *= 10.0;
        }
        if ((level == 0 && files >= 4) || (level > 0 && size_mb > limit)) {
            return true;
        }
        p = strchr(p + 1, '\n');
    }
    return false;
}

static void level_settle(void *h, double deadline)
{
    ldb *l = h;
    /* A range beyond every key: flushes the memtable (LevelDB's CompactRange
     * always does) and compacts nothing. */
    leveldb_compact_range(l->db, "~", 1, "~", 1);
    char *prev = NULL;
    double since = now_sec();
    while (now_sec() < deadline) {
        char *s = leveldb_property_value(l->db, "leveldb.stats");
        if (s == NULL) {
            die("leveldb_property_value", "leveldb.stats unknown");
        }
        if (!level_needs_compaction(s)) {
            leveldb_free(s);
            break;
        }
        if (prev == NULL || strcmp(prev, s) != 0) {
            since = now_sec();
        } else if (now_sec() - since > 3.0) {
            leveldb_free(s);
            break;
        }
        if (prev != NULL) {
            leveldb_free(prev);
        }
        prev = s;
        usleep(10000);
    }
    if (prev != NULL) {
        leveldb_free(prev);
    }
}

static const engine ENGINE_LEVELDB = {
    "leveldb",
    "write_buffer_size default (4 MiB), LRU cache 8 MiB, bloom 10 bits/key, block 4 KiB, "
    "snappy, verify_checksums, WriteOptions.sync=false (true for fillsync); other options "
    "default",
    level_open,
    level_close,
    level_put,
    level_get,
    level_iter_new,
    level_iter_free,
    level_seek_scan,
    level_settle,
};
#endif

/* ---- keys, values, random streams --------------------------------------- */

/* splitmix64: tiny, seedable, good enough to pick keys */
static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    /* n <= 2^33 here: the modulo bias is below 2^-30 */
    return rnd_next(s) % n;
}

static void make_key(char *out, uint64_t v)
{
    for (int i = KEY_LEN - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static char *make_value_pool(uint64_t seed)
{
    char *pool = malloc((size_t)POOL_CHUNKS * VALUE_LEN);
    if (pool == NULL) {
        die("value pool", "out of memory");
    }
    uint64_t s = seed ^ 0x76616c7565ull;
    for (size_t c = 0; c < POOL_CHUNKS; c++) {
        char *v = pool + c * VALUE_LEN;
        for (size_t i = 0; i < VALUE_LEN / 2; i++) {
            v[i] = (char)(' ' + rnd_below(&s, 95));
        }
        memcpy(v + VALUE_LEN / 2, v, VALUE_LEN - VALUE_LEN / 2);
    }
    return pool;
}

/* ---- latency histogram -------------------------------------------------- */

#define H_SUB_BITS 4
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS (64 * H_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t b[H_BUCKETS];
} hist;

static unsigned hist_bucket(uint64_t v)
{
    if (v < H_SUB) {
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= H_SUB_BITS */
    unsigned sub = (unsigned)(v >> (e - H_SUB_BITS)) & (H_SUB - 1);
    return (e - H_SUB_BITS + 1) * H_SUB + sub;
}

static void hist_bounds(unsigned b, uint64_t *lo, uint64_t *width)
{
    if (b < H_SUB) {
        *lo = b;
        *width = 1;
        return;
    }
    unsigned e = b / H_SUB + H_SUB_BITS - 1;
    uint64_t sub = b % H_SUB;
    *lo = (H_SUB + sub) << (e - H_SUB_BITS);
    *width = (uint64_t)1 << (e - H_SUB_BITS);
}

static void hist_add(hist *h, uint64_t ns)
{
    if (h->count == 0 || ns < h->min) {
        h->min = ns;
    }
    if (ns > h->max) {
        h->max = ns;
    }
    h->count++;
    h->b[hist_bucket(ns)]++;
}

/* The p-quantile in microseconds: middle of its bucket, clamped to min/max. */
static double hist_pct_us(const hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)(p * (double)h->count + 0.5);
    if (want < 1) {
        want = 1;
    }
    uint64_t seen = 0;
    for (unsigned b = 0; b < H_BUCKETS; b++) {
        seen += h->b[b];
        if (seen >= want) {
            uint64_t lo, w;
            hist_bounds(b, &lo, &w);
            double mid = (double)lo + (double)(w - 1) / 2.0;
            if (mid < (double)h->min) {
                mid = (double)h->min;
            }
            if (mid > (double)h->max) {
                mid = (double)h->max;
            }
            return mid / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

/* ---- directories -------------------------------------------------------- */

static uint64_t du_total;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "kvbench: remove %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0) {
        die("cannot remove", path);
    }
}

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        du_total += (uint64_t)st->st_size;
    }
    return 0;
}

static uint64_t du_bytes(const char *path)
{
    du_total = 0;
    if (nftw(path, du_one, 32, FTW_PHYS) != 0) {
        return 0;
    }
    return du_total;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* ---- workloads ---------------------------------------------------------- */

typedef enum wkind {
    W_FILLSEQ,
    W_FILLRANDOM,
    W_OVERWRITE,
    W_READRANDOM,
    W_READMISSING,
    W_SEEKRANDOM,
    W_FILLSYNC,
} wkind;

static const struct {
    const char *name;
    wkind kind;
    bool fresh; /* starts from an empty database */
    bool writes;
} WORKLOADS[] = {
    {"fillseq", W_FILLSEQ, true, true},           {"fillrandom", W_FILLRANDOM, true, true},
    {"overwrite", W_OVERWRITE, false, true},      {"readrandom", W_READRANDOM, false, false},
    {"readmissing", W_READMISSING, false, false}, {"seekrandom", W_SEEKRANDOM, false, false},
    {"fillsync", W_FILLSYNC, true, true},
};
#define N_WORKLOADS (sizeof(WORKLOADS) / sizeof(WORKLOADS[0]))

typedef struct bench {
    const config *cfg;
    const engine *eng;
    void *h;
    char *pool;
    uint32_t *perm; /* fillrandom order: a seeded permutation of [0, num) */
    hist hist;
} bench;

static void build_perm(bench *b)
{
    uint64_t n = b->cfg->num;
    b->perm = malloc(n * sizeof(uint32_t));
    if (b->perm == NULL) {
        die("permutation", "out of memory");
    }
    for (uint64_t i = 0; i < n; i++) {
        b->perm[i] = (uint32_t)i;
    }
    uint64_t s = b->cfg->seed ^ 0x7065726dull;
    for (uint64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t j = rnd_below(&s, i + 1);
        uint32_t t = b->perm[i];
        b->perm[i] = b->perm[j];
        b->perm[j] = t;
    }
}

/* noinline: callgrind can then count one workload alone
 * (--toggle-collect=run_workload --dump-after=run_workload). */
__attribute__((noinline)) static void run_workload(bench *b, unsigned w)
{
    const config *c = b->cfg;
    wkind kind = WORKLOADS[w].kind;
    uint64_t ops = c->num;
    if (kind == W_READRANDOM || kind == W_READMISSING || kind == W_SEEKRANDOM) {
        ops = c->reads;
    } else if (kind == W_FILLSYNC) {
        ops = c->num / 100 ? c->num / 100 : 1;
    }
    uint64_t rs = c->seed + 0x1000193ull * (w + 1); /* one stream per workload */
    memset(&b->hist, 0, sizeof(b->hist));
    uint64_t bytes = 0, found = 0, entries = 0;
    char key[KEY_LEN];
    void *shared_it = NULL;
    if (kind == W_SEEKRANDOM && c->reuse_iter) {
        shared_it = b->eng->iter_new(b->h);
    }

    double t_start = now_sec();
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t idx;
        switch (kind) {
        case W_FILLSEQ:
            idx = i;
            break;
        case W_FILLRANDOM:
            idx = b->perm[i];
            break;
        default:
            idx = rnd_below(&rs, c->num);
            break;
        }
        make_key(key, kind == W_READMISSING ? 2 * idx + 1 : 2 * idx);
        uint64_t t0 = now_ns();
        switch (kind) {
        case W_FILLSEQ:
        case W_FILLRANDOM:
        case W_OVERWRITE:
        case W_FILLSYNC: {
            const char *v = b->pool + (i % POOL_CHUNKS) * VALUE_LEN;
            b->eng->put(b->h, key, KEY_LEN, v, VALUE_LEN, kind == W_FILLSYNC);
            bytes += KEY_LEN + VALUE_LEN;
            break;
        }
        case W_READRANDOM:
        case W_READMISSING: {
            size_t vl = 0;
            if (b->eng->get(b->h, key, KEY_LEN, &vl)) {
                found++;
                bytes += KEY_LEN + vl;
            }
            break;
        }
        case W_SEEKRANDOM: {
            void *it = shared_it ? shared_it : b->eng->iter_new(b->h);
            unsigned n = b->eng->seek_scan(it, key, KEY_LEN, c->seek_nexts, &bytes);
            if (shared_it == NULL) {
                b->eng->iter_free(it);
            }
            entries += n;
            found += n > 0;
            break;
        }
        }
        hist_add(&b->hist, now_ns() - t0);
    }
    double secs = now_sec() - t_start;
    if (shared_it != NULL) {
        b->eng->iter_free(shared_it);
    }
    if (secs <= 0) {
        secs = 1e-9;
    }

    char notes[128] = "";
    if (kind == W_READRANDOM || kind == W_READMISSING) {
        snprintf(notes, sizeof(notes), "found=%" PRIu64 "/%" PRIu64, found, ops);
    } else if (kind == W_SEEKRANDOM) {
        snprintf(notes, sizeof(notes), "entries=%" PRIu64 "%s", entries,
                 c->reuse_iter ? " reused-iterator" : " iterator-per-seek");
    }
    printf("%-8s %-12s %10" PRIu64 " %12.0f %9.1f %9.2f %9.2f %9.1f  %s\n", b->eng->name,
           WORKLOADS[w].name, ops, (double)ops / secs, (double)bytes / secs / 1048576.0,
           hist_pct_us(&b->hist, 0.50), hist_pct_us(&b->hist, 0.99), peak_rss_mib(), notes);
    fflush(stdout);
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kvbench [--engine nokv|rocksdb|leveldb] [--num N] [--reads N] [--seed S]\n"
            "               [--seek-nexts K] [--reuse-iter] [--db DIR] [--keep]\n"
            "               [--benchmarks LIST]\n"
            "\n"
            "  --num N         keys written by fillseq/fillrandom/overwrite (default 1000000);\n"
            "                  fillsync writes N/100, each synced\n"
            "  --reads N       operations of readrandom/readmissing/seekrandom (default num)\n"
            "  --seed S        seed of every key order and of the values (default 301)\n"
            "  --seek-nexts K  nexts after each seek (default 10)\n"
            "  --reuse-iter    seekrandom reuses one iterator (default: one per seek)\n"
            "  --db DIR        work directory, must be absent or empty; the database is\n"
            "                  DIR/db and is removed at the end unless --keep\n"
            "                  (default: a fresh mkdtemp directory under $TMPDIR or /tmp)\n"
            "  --benchmarks L  comma-separated, run in order (default\n"
            "                  fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,"
            "fillsync)\n"
            "engines compiled in: nokv"
#ifdef KVBENCH_ROCKSDB
            " rocksdb"
#endif
#ifdef KVBENCH_LEVELDB
            " leveldb"
#endif
            "\n");
}

static uint64_t parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "kvbench: %s wants an integer in %" PRIu64 "..%" PRIu64 ", got '%s'\n",
                flag, lo, hi, v);
        exit(2);
    }
    return n;
}

static const engine *find_engine(const char *name)
{
    if (strcmp(name, "nokv") == 0) {
        return &ENGINE_NOKV;
    }
#ifdef KVBENCH_ROCKSDB
    if (strcmp(name, "rocksdb") == 0) {
        return &ENGINE_ROCKSDB;
    }
#endif
#ifdef KVBENCH_LEVELDB
    if (strcmp(name, "leveldb") == 0) {
        return &ENGINE_LEVELDB;
    }
#endif
    return NULL;
}

/* Parse the workload list into indexes into WORKLOADS. */
static unsigned parse_benchmarks(const char *list, unsigned *out, unsigned max)
{
    unsigned n = 0;
    const char *p = list;
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0) {
            unsigned w = 0;
            while (w < N_WORKLOADS &&
                   !(strlen(WORKLOADS[w].name) == len && strncmp(WORKLOADS[w].name, p, len) == 0)) {
                w++;
            }
            if (w == N_WORKLOADS) {
                fprintf(stderr, "kvbench: unknown workload '%.*s'\n", (int)len, p);
                exit(2);
            }
            if (n == max) {
                fprintf(stderr, "kvbench: at most %u workloads\n", max);
                exit(2);
            }
            out[n++] = w;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    config c;
    memset(&c, 0, sizeof(c));
    c.num = 1000000;
    c.seed = 301;
    c.seek_nexts = 10;
    c.engine = "nokv";
    c.benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,fillsync";
    bool reads_set = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--reuse-iter") == 0) {
            c.reuse_iter = true;
            continue;
        }
        if (strcmp(a, "--keep") == 0) {
            c.keep = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "kvbench: %s needs a value (see --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--engine") == 0) {
            c.engine = v;
        } else if (strcmp(a, "--num") == 0) {
            c.num = parse_u64(a, v, 1, 1u << 31); /* 2*i+1 must fit 16 digits; perm is u32 */
        } else if (strcmp(a, "--reads") == 0) {
            c.reads = parse_u64(a, v, 1, (uint64_t)1 << 40);
            reads_set = true;
        } else if (strcmp(a, "--seed") == 0) {
            c.seed = parse_u64(a, v, 0, UINT64_MAX);
        } else if (strcmp(a, "--seek-nexts") == 0) {
            c.seek_nexts = (unsigned)parse_u64(a, v, 0, MAX_SEEK_NEXTS);
        } else if (strcmp(a, "--db") == 0) {
            dir = v;
        } else if (strcmp(a, "--benchmarks") == 0) {
            c.benchmarks = v;
        } else {
            fprintf(stderr, "kvbench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!reads_set) {
        c.reads = c.num;
    }
    const engine *eng = find_engine(c.engine);
    if (eng == NULL) {
        fprintf(stderr, "kvbench: engine '%s' is not compiled in\n", c.engine);
        usage(stderr);
        return 2;
    }
    unsigned list[64];
    unsigned nlist = parse_benchmarks(c.benchmarks, list, 64);

    /* The work directory: created here, or absent/empty, so removing DIR/db
     * can never touch anything kvbench did not make. */
    bool made_dir = false;
    if (dir == NULL) {
        const char *tmp = getenv("TMPDIR");
        snprintf(c.dir, sizeof(c.dir), "%s/kvbench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(c.dir) == NULL) {
            die("mkdtemp", strerror(errno));
        }
        made_dir = true;
    } else {
        snprintf(c.dir, sizeof(c.dir), "%s", dir);
        if (mkdir(c.dir, 0755) != 0 && errno != EEXIST) {
            die(c.dir, strerror(errno));
        }
    }
    snprintf(c.dbpath, sizeof(c.dbpath), "%s/db", c.dir);
    struct stat st;
    if (lstat(c.dbpath, &st) == 0) {
        die("refusing to overwrite an existing database (remove it first)", c.dbpath);
    }

    printf("# kvbench engine=%s num=%" PRIu64 " reads=%" PRIu64 " seed=%" PRIu64
           " seek_nexts=%u db=%s\n",
           eng->name, c.num, c.reads, c.seed, c.seek_nexts, c.dbpath);
    printf("# keys: 16-byte zero-padded decimal of 2*i (missing keys 2*i+1); values: 100 bytes, "
           "50 random printable + the same 50 again\n");
    printf("# %s: %s\n", eng->name, eng->settings);
    printf("%-8s %-12s %10s %12s %9s %9s %9s %9s  %s\n", "engine", "workload", "ops", "ops/s",
           "MB/s", "p50_us", "p99_us", "rss_MiB", "notes");
    fflush(stdout);

    bench b;
    memset(&b, 0, sizeof(b));
    b.cfg = &c;
    b.eng = eng;
    b.pool = make_value_pool(c.seed);
    build_perm(&b);

    bool dirty = false; /* writes since the last settle */
    for (unsigned k = 0; k < nlist; k++) {
        unsigned w = list[k];
        if (WORKLOADS[w].fresh || b.h == NULL) {
            if (b.h != NULL) {
                eng->close(b.h);
                b.h = NULL;
            }
            rm_tree(c.dbpath);
            b.h = eng->open(c.dbpath);
            dirty = false;
        }
        if (!WORKLOADS[w].writes && dirty) {
            double t0 = now_sec();
            eng->settle(b.h, t0 + SETTLE_TIMEOUT_SEC);
            printf("# settle before %s: %.2f s (flush memtable, wait for compactions); "
                   "database %.1f MiB on disk\n",
                   WORKLOADS[w].name, now_sec() - t0, (double)du_bytes(c.dbpath) / 1048576.0);
            dirty = false;
        }
        run_workload(&b, w);
        dirty = dirty || WORKLOADS[w].writes;
    }
    if (b.h != NULL) {
        eng->close(b.h);
    }
    if (!c.keep) {
        rm_tree(c.dbpath);
        if (made_dir) {
            rmdir(c.dir);
        }
    }
    free(b.perm);
    free(b.pool);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_kib %ld\n", ru.ru_maxrss);
    printf("command:");
    for (int i = 0; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    printf("\n");
    return 0;
}
