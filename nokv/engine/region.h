/*
 * region.h - export a key range as a set of SST files, and install them.
 *
 * These are the data-plane primitives of migration: `migrate expand`
 * streams a region to an empty store (nokv/store/admin.c), which installs
 * it before the new peer is published; raft snapshots do the same for a
 * follower that fell behind.
 *
 * Export (nk_db_export_range): the state of [start, end) at the moment of
 * the call, as the engine's own tables, into a new directory, plus
 * REGION.json (format 2):
 *     {"end":"<hex>","files":[{"entries":n,"level":l,"name":"000001.sst",
 *       "size":s}],"format":2,"max_seq":M,"snapshot_seq":S,"start":"<hex>",
 *      "xxh64":"<16 hex>"}
 * start/end are user keys in hex (empty = unbounded). Files are listed in
 * read order: level 0 oldest first, then levels 1..6 by key; each keeps its
 * level, and its entries keep their internal keys (every version, deletes
 * included, sequence numbers as in the source), so the set read as an LSM
 * gives exactly the range at the snapshot. The top-level xxh64 covers the
 * canonical JSON of everything else; the table files carry their own block
 * checksums, and whoever moves them hashes the bytes as it reads them
 * (nokv/store/admin.c), so the export never reads a linked table.
 * How: the snapshot is registered and the memtable flushed, then a job
 * HARD-LINKS every table wholly inside [start, end) whose entries are all
 * at or below the snapshot (no data read or written), and copies, keeping
 * internal keys, only the in-range entries at or below the snapshot of the
 * other tables it overlaps (a table straddling a range end, or one flushed
 * after the call). Files are synced, then REGION.json is written (temp +
 * sync + rename + dir sync): a directory without a valid REGION.json is an
 * incomplete export, never mistaken for a complete one.
 *
 * Ingest (nk_db_ingest): a background job checks REGION.json, each file's
 * size, footer, properties and first and last entries (inside the range, at
 * or below max_seq; levels >= 1 disjoint), then, as soon as the engine's
 * job slot is free (never waiting for the whole engine to go idle, never
 * holding writes):
 *   - install by link (the common case: nothing of the range in the
 *     memtables and every live table that overlaps the range lies wholly
 *     inside it): ONE manifest edit deletes the range's tables (stale data
 *     of a replica that fell behind) and adds the files, hard-linked into
 *     the db under fresh numbers, at their levels, and records the files'
 *     largest sequence number as the engine's sequence floor
 *     (version_edit.h): every later write is numbered above it, so it
 *     shadows the ingested versions, and WAL replay accepts the jump.
 *     Writes to other ranges go on throughout; writes to the range itself
 *     during an ingest are the caller's mistake (the store never makes them).
 *   - fallback (range data in a memtable, or a table straddling a range
 *     end, e.g. a store whose tables also hold keys of other regions):
 *     writes are held and the memtable flushed, it is refused (NK_EEXIST)
 *     if the target still has a live key in the range, otherwise the newest
 *     version of every key is rewritten as a put stamped with one fresh
 *     sequence number into level-0 tables, published in one edit.
 * All or nothing: a failure before the edit removes the new names; a crash
 * before it leaves orphans that the next open deletes. The source
 * directory is left as it was (the caller removes it). Damage is NK_ECORRUPT
 * with the file and the reason.
 */
#ifndef NK_ENGINE_REGION_H
#define NK_ENGINE_REGION_H

#include "nokv/engine/db.h"

#define NK_REGION_META "REGION.json"
#define NK_REGION_FORMAT 2

typedef struct nk_region_result {
    uint64_t files;
    uint64_t entries;
    uint64_t bytes;
    uint64_t snapshot_seq; /* export: the read point; ingest: the sequence floor or stamp */
    uint64_t linked;       /* export: tables linked (not rewritten); ingest: files installed by link */
} nk_region_result;

typedef void (*nk_region_done_fn)(void *arg, int status, const nk_region_result *r,
                                  const nk_errbuf *eb);

/* Export [start, end) (empty slices = unbounded) into `dir` (created; must
 * not exist). target_file_bytes: unused (kept for callers; tables keep the
 * source's sizes). Returns NK_OK (done will be called) or an error (done
 * not called). */
int nk_db_export_range(nk_db *db, nk_slice start, nk_slice end, const char *dir,
                       uint64_t target_file_bytes, nk_region_done_fn done, void *arg);

/* Install an export directory (see above). Returns NK_OK (done will be
 * called) or an error (done not called); NK_EBUSY while another ingest
 * runs. */
int nk_db_ingest(nk_db *db, const char *dir, nk_region_done_fn done, void *arg);

/* Synchronously check an export directory thoroughly: metadata checksum,
 * every file's size, and every entry of every table (block checksums,
 * inside the range, sorted). Reads everything; for tools and tests, usable
 * off the loop (jobs). r->entries counts the entries. */
int nk_region_verify(nk_rt *rt, const char *dir, nk_region_result *r, nk_errbuf *eb);

#endif /* NK_ENGINE_REGION_H */
