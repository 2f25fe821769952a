/*
 * nokv.h - the embedded C API of NoKV-C.
 *
 * Open a database directory and read and write it from one thread, with
 * plain blocking calls:
 *
 *     nokv *db;
 *     char err[NOKV_ERRMSG_SIZE];
 *     if (nokv_open("./data", NULL, &db, err) != NOKV_OK) { puts(err); ... }
 *     nokv_put(db, "k", 1, "v", 1, NULL, err);
 *     char *val; size_t len;
 *     if (nokv_get(db, "k", 1, &val, &len, NULL, err) == NOKV_OK) { ...; nokv_free(val); }
 *     nokv_close(db);
 *
 * Semantics:
 *   - Keys are 1..65536 bytes, values 0..512 MiB, compared bytewise.
 *   - A write (put, delete, batch) is atomic. With nokv_write_options.sync
 *     (the default) it returns only once it is durable on disk; without,
 *     once it is in the write-ahead log (a process crash keeps it, a power
 *     loss may not).
 *   - Reads see every completed write; nokv_snapshot pins a point in time.
 *   - Corruption is reported (NOKV_ECORRUPT with the file and offset in the
 *     message), never returned as data.
 *   - One process owns a directory (NOKV_EBUSY otherwise). A directory that
 *     was promoted to a cluster (MODE.json) is refused with NOKV_EMODE and a
 *     message naming the mode and the command to run instead.
 *   - A handle is used by one thread at a time. Background flushes and
 *     compactions run on worker threads inside the library; their results
 *     are installed while you call into it.
 *
 * Errors: every function returns NOKV_OK (0) or a negative NOKV_E* code;
 * when errmsg is non-NULL it receives a one-line explanation (what failed,
 * where, what to do). Codes are the NK_E* values of nokv/util/err.h.
 */
#ifndef NOKV_H
#define NOKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NOKV_ERRMSG_SIZE 512

enum {
    NOKV_OK = 0,
    NOKV_EIO = -1,
    NOKV_ENOTFOUND = -2, /* key absent (NK_ENOENT) */
    NOKV_EINVAL = -4,
    NOKV_ENOMEM = -5,
    NOKV_ECORRUPT = -6,
    NOKV_EBUSY = -7,
    NOKV_EMODE = -16,
};

typedef struct nokv nokv;
typedef struct nokv_batch nokv_batch;
typedef struct nokv_iter nokv_iter;

typedef struct nokv_options {
    bool create_if_missing;        /* default true */
    size_t memtable_bytes;         /* default 64 MiB */
    size_t block_cache_bytes;      /* default 8 MiB */
    unsigned bloom_bits_per_key;   /* default 10 */
    size_t block_size;             /* default 4096 */
    bool compression;              /* lz4 blocks; default true */
    unsigned background_threads;   /* default 2 */
} nokv_options;

/* Fill with the defaults above. */
void nokv_options_init(nokv_options *o);

typedef struct nokv_write_options {
    bool sync; /* default true */
} nokv_write_options;

typedef struct nokv_read_options {
    uint64_t snapshot; /* 0 = latest */
} nokv_read_options;

/* opts may be NULL (defaults). */
int nokv_open(const char *dir, const nokv_options *opts, nokv **out, char *errmsg);

/* Sync the log, wait for background work, release the directory. */
int nokv_close(nokv *db);

/* wopts / ropts may be NULL (defaults). */
int nokv_put(nokv *db, const void *key, size_t klen, const void *val, size_t vlen,
             const nokv_write_options *wopts, char *errmsg);
int nokv_delete(nokv *db, const void *key, size_t klen, const nokv_write_options *wopts,
                char *errmsg);

/* NOKV_OK with a malloc'd copy in *val (free with nokv_free), or
 * NOKV_ENOTFOUND. */
int nokv_get(nokv *db, const void *key, size_t klen, char **val, size_t *vlen,
             const nokv_read_options *ropts, char *errmsg);
void nokv_free(void *p);

/* Batches: build, then apply atomically with nokv_write. */
nokv_batch *nokv_batch_new(void);
int nokv_batch_put(nokv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int nokv_batch_delete(nokv_batch *b, const void *key, size_t klen);
void nokv_batch_clear(nokv_batch *b);
void nokv_batch_free(nokv_batch *b);
int nokv_write(nokv *db, nokv_batch *b, const nokv_write_options *wopts, char *errmsg);

/* Snapshots. */
uint64_t nokv_snapshot(nokv *db);
void nokv_release_snapshot(nokv *db, uint64_t snapshot);

/* Iterators over [lower, upper) (NULL/0 = unbounded) at a snapshot. */
nokv_iter *nokv_iter_new(nokv *db, const nokv_read_options *ropts, const void *lower,
                         size_t lower_len, const void *upper, size_t upper_len);
void nokv_iter_free(nokv_iter *it);
bool nokv_iter_valid(const nokv_iter *it);
void nokv_iter_first(nokv_iter *it);
void nokv_iter_last(nokv_iter *it);
void nokv_iter_seek(nokv_iter *it, const void *key, size_t klen);
void nokv_iter_next(nokv_iter *it);
void nokv_iter_prev(nokv_iter *it);
const char *nokv_iter_key(const nokv_iter *it, size_t *len);   /* valid until it moves */
const char *nokv_iter_value(const nokv_iter *it, size_t *len); /* valid until it moves */
int nokv_iter_status(const nokv_iter *it, char *errmsg);

/* A human-readable multi-line statistics report (malloc'd; nokv_free). */
char *nokv_stats(nokv *db);

/* Wait until the memtable is flushed and no compaction is due (benchmarks,
 * tests). */
int nokv_compact_wait(nokv *db, char *errmsg);

#ifdef __cplusplus
}
#endif

#endif /* NOKV_H */
