/*
 * seedsnap.h - the seed snapshot of a promoted workdir, by hard links.
 *
 * `migrate init` records the engine's state at the seed raft index as a
 * snapshot: <workdir>/seed-snapshot/ holds a hard link (nk_rt_link) to every
 * live table file and SNAPSHOT.json listing each file with its size and
 * XXH64. Nothing is rewritten or read: the cost is metadata (the XXH64 is
 * the one the engine's manifest records for each table, taken by its writer;
 * only a table of an older workdir without one is read to hash it), not a
 * copy (NoKV-Go re-exported every entry into new
 * SSTs). Tables are immutable, so the links stay a consistent image while
 * the engine goes on compacting; the space they pin is released when the
 * directory is removed (after the cluster has replicated the region).
 *
 * SNAPSHOT.json (nokv/util/jsonfile.h format, so its own checksum covers the
 * list; written last, so a directory without a valid one is an incomplete
 * export that the next init redoes):
 *   {"created_at":"...","files":[{"level":0,"name":"000012.sst","size":N,
 *     "xxh64":"<16 hex>"}],"format":1,"last_sequence":S,"raft_index":5,
 *    "raft_term":5,"region":{"end":"","epoch_conf_version":1,
 *     "epoch_version":1,"id":1,"peers":[{"peer_id":101,"role":"voter",
 *     "store_id":1}],"start":""},"total_bytes":B,"xxh64":"<16 hex>"}
 * start/end are hex user keys. File names must be plain table names
 * (NNNNNN.sst): anything else (a path, "..") is refused as corrupt.
 *
 * Failpoints: "seedsnap.after_links" (links made, not yet synced; no
 * SNAPSHOT.json yet),
 * "seedsnap.meta.after_tmp", "seedsnap.meta.after_rename".
 */
#ifndef NK_MIGRATE_SEEDSNAP_H
#define NK_MIGRATE_SEEDSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/inspect.h"
#include "nokv/proto/region.h"
#include "nokv/rt.h"
#include "nokv/util/filehash.h" /* nk_file_xxh64 */

#define NK_SEEDSNAP_DIR "seed-snapshot"
#define NK_SEEDSNAP_META "SNAPSHOT.json"
#define NK_SEEDSNAP_FORMAT 1
#define NK_SEEDSNAP_MAX_FILES 1000000u

typedef struct nk_seedsnap_file {
    char name[32];
    uint32_t level;
    uint64_t size;
    uint64_t xxh64;
} nk_seedsnap_file;

typedef struct nk_seedsnap {
    nk_region region;
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t last_sequence;
    uint64_t total_bytes;
    size_t n_files;
    nk_seedsnap_file *files; /* malloc'd */
    char created_at[32];
} nk_seedsnap;

void nk_seedsnap_free(nk_seedsnap *s);

/* <workdir>/seed-snapshot into out. */
void nk_seedsnap_dir(const char *workdir, char *out, size_t cap);

/* Replace any earlier (complete or not) seed snapshot with links to `files`
 * (live tables of the engine in workdir, pinned by the caller), write
 * SNAPSHOT.json. A file's XXH64 is the one the engine records
 * (files[i].has_xxh64); only files without one are read and hashed.
 * out (may be NULL) receives what was written. */
int nk_seedsnap_export(nk_rt *rt, const char *workdir, const nk_region *region, uint64_t raft_index,
                       uint64_t raft_term, uint64_t last_sequence, const nk_db_file_info *files,
                       size_t n, nk_seedsnap *out, nk_errbuf *eb);

/* Load and verify SNAPSHOT.json. NK_ENOENT when there is none (or the
 * directory is missing); NK_ECORRUPT naming the file. */
int nk_seedsnap_load(nk_rt *rt, const char *workdir, nk_seedsnap *out, nk_errbuf *eb);

/* Every listed file is present with its size; with rehash, its XXH64 too.
 * NK_ECORRUPT naming the file otherwise. */
int nk_seedsnap_check_files(nk_rt *rt, const char *workdir, const nk_seedsnap *s, bool rehash,
                            nk_errbuf *eb);

/* Remove <workdir>/seed-snapshot and its files (durably). NK_OK if absent. */
int nk_seedsnap_remove(nk_rt *rt, const char *workdir, nk_errbuf *eb);

#endif /* NK_MIGRATE_SEEDSNAP_H */
