/*
 * disk.h - the simulated disk: a deterministic in-memory file system for one
 * simulated node, with an exact durability model.
 *
 * sim/rt_sim.c implements the file half of nokv/rt.h on top of this module,
 * so every call here mirrors the rt.h call of the same name: same flags
 * (NK_OPEN_*), same result structs (nk_stat, nk_names), same error codes.
 *
 * Two views of the file system
 * ----------------------------
 *   - the *volatile* view (the page cache): what every read, stat and list
 *     sees. Every operation changes it immediately.
 *   - the *durable* image: what survives nk_simdisk_crash().
 *
 * Files are inodes; names are directory entries pointing at inodes. So an
 * open handle keeps working after its name is renamed or removed (POSIX
 * inode semantics), and a removed-but-open file keeps its data until the
 * last handle closes.
 *
 * What becomes durable, and when
 * ------------------------------
 *   - File data (write_at, append, truncate, NK_OPEN_TRUNC) is *pending* on
 *     its inode until nk_simdisk_file_sync() on any handle of that inode,
 *     which makes the inode's whole current content and size durable.
 *   - Directory entry changes (create, dir_create, rename, remove, link, and the
 *     LOCK file created by dir_lock) are *pending* in the directory that
 *     holds them until nk_simdisk_dir_sync() of that directory. A file whose
 *     data was synced but whose entry was never dir-synced vanishes on crash
 *     (turso#1845). A cross-directory rename is one operation pending in both
 *     directories; syncing either directory makes it durable, atomically on
 *     both sides, together with every earlier pending operation of both
 *     directories (so the durable image only ever shows states that existed).
 *
 * Crash (nk_simdisk_crash)
 * ------------------------
 * Every pending operation is resolved by the caller's seeded stream, in a
 * fixed order (files in creation order, each file's writes in issue order;
 * then directory operations in issue order):
 *   - a data write is applied whole, dropped, or torn: each file sector it
 *     covers is independently applied or not, and a sector piece that is not
 *     applied may instead be filled with garbage. Tearing and garbage only
 *     ever touch the bytes that write covered: bytes no unsynced write
 *     touched never change. A torn write that extends the file extends it to
 *     the end of its last surviving piece; holes read as zeros.
 *   - a truncate is applied or dropped.
 *   - a directory operation is applied or dropped; once one operation of a
 *     directory is dropped, every later operation touching that directory is
 *     dropped too, so each directory ends in a state it really had, and a
 *     rename is never half done (the name is old or new, never lost).
 * Then the volatile view becomes the durable image, every open handle and
 * lock becomes stale (any later use returns NK_ECRASHED and has no effect;
 * closing or unlocking a stale one only frees it), and all locks are free.
 * The disk itself stays usable: the restarted node opens new handles.
 *
 * Faults (nk_simdisk_set_faults), drawn from a stream the disk owns:
 *   - read corruption: one random bit of the *returned* buffer is flipped;
 *     the stored data is intact, so a checksum catches it and a re-read may
 *     succeed;
 *   - sync failure: file_sync returns NK_EIO and the file's unsynced data is
 *     then, with probability 1/2, dropped from the volatile view too
 *     (reverted to the durable content), else left pending: the state after
 *     a failed fsync is unknown (the PostgreSQL lesson);
 *   - dir_sync failure: NK_EIO, the directory's operations stay pending;
 *   - capacity: a write that would make the live volatile data (files that
 *     have a name or an open handle) exceed it fails with NK_ENOSPC and has
 *     no effect. Growing truncates are not checked (sparse).
 *
 * Paths are "/"-separated; a relative path is relative to "/"; empty
 * components ("a//b", trailing "/") are ignored. "." and "..", components
 * longer than NK_SIMDISK_NAME_MAX and the empty path are NK_EINVAL. "/"
 * always exists. Every component but the last must exist (NK_ENOENT) and be
 * a directory (NK_ENOTDIR). Renaming a directory is NK_ENOTSUP.
 *
 * Determinism: directory entries are kept sorted bytewise, inodes are
 * visited in creation order, every byte is initialised, and randomness comes
 * only from nk_rand streams. Same calls + same seeds -> same durable image,
 * same nk_simdisk_hash, same observer events.
 *
 * Not thread-safe: one disk belongs to one simulated node, driven by the
 * single simulator thread.
 */
#ifndef NK_SIM_DISK_H
#define NK_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/rt.h"
#include "nokv/util/rand.h"

typedef struct nk_simdisk nk_simdisk;
typedef struct nk_simfile nk_simfile; /* an open handle */
typedef struct nk_simlock nk_simlock; /* a held (or stale) directory lock */

#define NK_SIMDISK_NAME_MAX 255u         /* bytes per path component */
#define NK_SIMDISK_FILE_MAX (1ull << 32) /* largest file: NK_ETOOBIG above */
#define NK_SIMDISK_DEFAULT_SECTOR 4096u

/* A probability num/den; {0, 0} (or num == 0) means never, num >= den always. */
typedef struct nk_simdisk_ratio {
    uint64_t num;
    uint64_t den;
} nk_simdisk_ratio;

/* How nk_simdisk_crash resolves pending operations. */
typedef struct nk_simdisk_crash_policy {
    nk_simdisk_ratio write_apply;    /* unsynced write applied whole */
    nk_simdisk_ratio write_torn;     /* if not applied whole: torn (else dropped) */
    nk_simdisk_ratio sector_apply;   /* torn write: each covered sector piece applied */
    nk_simdisk_ratio sector_garbage; /* torn write: a piece not applied is garbage */
    nk_simdisk_ratio trunc_apply;    /* pending truncate applied */
    nk_simdisk_ratio dirop_apply;    /* pending directory operation applied */
} nk_simdisk_crash_policy;

/* Ready-made policies: lose everything unsynced; keep everything; a mix of
 * all outcomes for randomized runs. */
extern const nk_simdisk_crash_policy nk_simdisk_crash_drop_all;
extern const nk_simdisk_crash_policy nk_simdisk_crash_keep_all;
extern const nk_simdisk_crash_policy nk_simdisk_crash_chaos;

/* What one crash did (for the trace). */
typedef struct nk_simdisk_crash_stats {
    uint64_t writes_applied;
    uint64_t writes_dropped;
    uint64_t writes_torn;
    uint64_t sectors_garbage; /* pieces of torn writes filled with garbage */
    uint64_t truncs_applied;
    uint64_t truncs_dropped;
    uint64_t dirops_applied;
    uint64_t dirops_dropped;
    uint64_t handles_invalidated; /* open handles and locks made stale */
} nk_simdisk_crash_stats;

/* Runtime faults. All-zero means none. */
typedef struct nk_simdisk_faults {
    nk_simdisk_ratio read_corrupt;  /* per read returning >= 1 byte */
    nk_simdisk_ratio sync_fail;     /* per file_sync */
    nk_simdisk_ratio dir_sync_fail; /* per dir_sync */
    uint64_t capacity;              /* bytes; 0 = unlimited */
} nk_simdisk_faults;

/* Running counters (cumulative since nk_simdisk_new). */
typedef struct nk_simdisk_stats {
    uint64_t reads;
    uint64_t writes; /* write_at + append calls that succeeded */
    uint64_t bytes_written;
    uint64_t syncs;
    uint64_t sync_failures;
    uint64_t dir_syncs;
    uint64_t dir_sync_failures;
    uint64_t read_corruptions;
    uint64_t enospc;
    uint64_t crashes;
    uint64_t used_bytes;  /* current live volatile bytes (what capacity checks) */
    uint64_t pending_ops; /* current pending data + directory operations */
} nk_simdisk_stats;

/*
 * Observer: called synchronously for notable disk events so the simulator can
 * fold them into its trace. Events and their arguments:
 *   "sync"            path, bytes made durable, pending ops flushed
 *   "sync.fail"       path, 1 if unsynced data was dropped else 0, 0
 *   "dir_sync"        dir path, directory ops made durable, 0
 *   "dir_sync.fail"   dir path, 0, 0
 *   "read.corrupt"    path, file offset of the flipped bit's byte, bit (0..7)
 *   "enospc"          path, bytes requested, bytes in use
 *   "crash.write.applied" / ".dropped" / ".torn"   path, offset, length
 *   "crash.trunc.applied" / "crash.trunc.dropped"  path, new size, 0
 *   "crash.dirop.applied" / "crash.dirop.dropped"  the entry the op creates
 *                     (link, rename target) or removes (unlink), op sequence
 *                     number, op kind (0 link, 1 unlink, 2 rename)
 *   "crash"           "/", ops resolved, handles and locks invalidated
 * `path` for file events is the file's latest name (creation or last rename);
 * it is only valid during the call.
 */
typedef void (*nk_simdisk_observer_fn)(void *ctx, const char *event, const char *path, uint64_t a,
                                       uint64_t b);

/* sector_size 0 means NK_SIMDISK_DEFAULT_SECTOR. fault_rng seeds the disk's
 * own fault stream (copied; NULL = seed 0). Out of memory anywhere in this
 * module aborts: a half-applied operation would break the model silently. */
nk_simdisk *nk_simdisk_new(uint32_t sector_size, const nk_rand *fault_rng);

/* Frees everything, including handles and locks the caller still holds. */
void nk_simdisk_free(nk_simdisk *d);

void nk_simdisk_set_faults(nk_simdisk *d, const nk_simdisk_faults *f);
void nk_simdisk_set_observer(nk_simdisk *d, nk_simdisk_observer_fn fn, void *ctx);
void nk_simdisk_get_stats(const nk_simdisk *d, nk_simdisk_stats *out);

/* ------------------------------------------------ rt.h file operations --- */

int nk_simdisk_open(nk_simdisk *d, const char *path, unsigned flags, nk_simfile **out);
int nk_simdisk_read_at(nk_simdisk *d, nk_simfile *f, uint64_t off, void *buf, size_t len,
                       size_t *nread);
int nk_simdisk_write_at(nk_simdisk *d, nk_simfile *f, uint64_t off, const void *buf, size_t len);
int nk_simdisk_append(nk_simdisk *d, nk_simfile *f, const void *buf, size_t len);
int nk_simdisk_file_sync(nk_simdisk *d, nk_simfile *f);
int nk_simdisk_file_size(nk_simdisk *d, nk_simfile *f, uint64_t *size);
int nk_simdisk_truncate(nk_simdisk *d, nk_simfile *f, uint64_t size);
/* Always frees the handle; NK_ECRASHED if it was stale. */
int nk_simdisk_close(nk_simdisk *d, nk_simfile *f);

int nk_simdisk_stat(nk_simdisk *d, const char *path, nk_stat *st);
int nk_simdisk_dir_create(nk_simdisk *d, const char *path);
/* Sorted bytewise; free with nk_names_free (malloc'd). */
int nk_simdisk_dir_list(nk_simdisk *d, const char *path, nk_names *out);
int nk_simdisk_rename(nk_simdisk *d, const char *from, const char *to);
int nk_simdisk_remove(nk_simdisk *d, const char *path);
/* A second name for a file (nk_rt_link): a pending LINK of the same inode in
 * the directory of `to`, durable after that directory's dir_sync. The inode
 * (data, size, pending writes) is shared, so a sync through either name
 * syncs it; it lives as long as any name or handle does. */
int nk_simdisk_link(nk_simdisk *d, const char *from, const char *to);
/* Is dir locked? Changes nothing (no LOCK file is created). */
int nk_simdisk_dir_lock_held(nk_simdisk *d, const char *dir, bool *held);
/* Capacity minus live data; UINT64_MAX without a capacity. NK_ENOENT when
 * path does not exist. */
int nk_simdisk_fs_avail(nk_simdisk *d, const char *path, uint64_t *avail);
int nk_simdisk_dir_sync(nk_simdisk *d, const char *path);

/* Lock directory `dir` (creating `<dir>/LOCK` if missing, like the real
 * backend). NK_EBUSY while anyone holds it; crashes release every lock. */
int nk_simdisk_dir_lock(nk_simdisk *d, const char *dir, nk_simlock **out);
/* Always frees the lock object; a stale one (from before a crash) has no effect. */
void nk_simdisk_dir_unlock(nk_simdisk *d, nk_simlock *lock);

/* ------------------------------------------------- simulator controls --- */

/* Resolve every pending operation with `r` and `p` (see the top of this
 * file), then restart the volatile view from the durable image. p NULL means
 * nk_simdisk_crash_chaos; stats may be NULL. */
void nk_simdisk_crash(nk_simdisk *d, nk_rand *r, const nk_simdisk_crash_policy *p,
                      nk_simdisk_crash_stats *stats);

/* Process death without power loss (kill -9): every handle goes stale and
 * every lock is released, but the page cache survives, so the volatile view
 * and all pending operations are untouched. */
void nk_simdisk_kill(nk_simdisk *d);

/* Free the stale handles and locks left over from earlier crashes. Only call
 * it once no code will touch those pointers again (e.g. after the crashed
 * node's memory was discarded); otherwise they are freed by close/unlock or
 * by nk_simdisk_free. */
void nk_simdisk_reap_stale(nk_simdisk *d);

/* xxh3-64 over the durable image: every path in sorted (depth-first,
 * bytewise) order with its type, size and content. Pure: no side effects. */
uint64_t nk_simdisk_hash(const nk_simdisk *d);

#endif /* NK_SIM_DISK_H */
