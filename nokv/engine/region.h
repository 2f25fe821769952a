/*
 * region.h - export a key range as verifiable SST files, and ingest them.
 *
 * These are the data-plane primitives of migration: `migrate init` exports
 * the full range as the seed snapshot, `migrate expand` streams a region to
 * an empty store, which ingests it before the new peer is published.
 *
 * Export (nk_db_export_range): the newest visible version of every key in
 * [start, end) at the moment of the call, written as SST files (puts only,
 * sequence 0, sorted, disjoint) into a new directory, plus REGION.json:
 *     {"entries":N,"end":"<hex>","files":[{"entries":n,"largest":"<hex>",
 *       "name":"000001.sst","size":s,"smallest":"<hex>","xxh64":"<16 hex>"}],
 *      "format":1,"snapshot_seq":S,"start":"<hex>","xxh64":"<16 hex>"}
 * Keys are sorted; start/end/smallest/largest are user keys in hex (empty =
 * unbounded); each file's xxh64 is XXH64 (seed 0) of its bytes; the top-level
 * xxh64 covers the canonical JSON of everything else, so the snapshot is
 * verifiable end to end. Files are fsynced, then REGION.json is written
 * (temp + sync + rename + dir sync): a directory without a valid REGION.json
 * is an incomplete export, never mistaken for a complete one.
 * How: the memtable is flushed and the snapshot registered, then a job
 * merges the pinned tables (no cache, so it runs beside the loop thread).
 *
 * Ingest (nk_db_ingest): verify REGION.json, every file's checksum and every
 * entry (inside the range, sorted, puts only), then refuse (NK_EEXIST) if the
 * target already holds a live key in the range; otherwise rewrite the
 * entries into new tables stamped with one fresh sequence number (newer than
 * everything in the db, so point reads stay correct whatever older versions
 * or tombstones exist below) and publish all of them in ONE manifest edit.
 * All or nothing: a failure before the edit removes the new files; a crash
 * before it leaves orphans that the next open deletes. Writes are held (like
 * a stall) from the start of an ingest until it is published or rolled back,
 * and the memtable is flushed first, so the manifest's last_sequence stays
 * truthful. An ingest of a directory that fails verification reports which
 * file and why (NK_ECORRUPT).
 */
#ifndef NK_ENGINE_REGION_H
#define NK_ENGINE_REGION_H

#include "nokv/engine/db.h"

#define NK_REGION_META "REGION.json"
#define NK_REGION_FORMAT 1

typedef struct nk_region_result {
    uint64_t files;
    uint64_t entries;
    uint64_t bytes;
    uint64_t snapshot_seq; /* export: the read point; ingest: the stamped seq */
} nk_region_result;

typedef void (*nk_region_done_fn)(void *arg, int status, const nk_region_result *r,
                                  const nk_errbuf *eb);

/* Export [start, end) (empty slices = unbounded) into `dir` (created; must
 * not exist). target_file_bytes 0 = the db's target file size. Returns
 * NK_OK (done will be called) or an error (done not called). */
int nk_db_export_range(nk_db *db, nk_slice start, nk_slice end, const char *dir,
                       uint64_t target_file_bytes, nk_region_done_fn done, void *arg);

/* Ingest an export directory. Returns NK_OK (done will be called) or an
 * error (done not called). */
int nk_db_ingest(nk_db *db, const char *dir, nk_region_done_fn done, void *arg);

/* Synchronously check an export directory: metadata checksum and every
 * file's size and xxh64. Usable off the loop (jobs, tools). */
int nk_region_verify(nk_rt *rt, const char *dir, nk_region_result *r, nk_errbuf *eb);

#endif /* NK_ENGINE_REGION_H */
