/*
 * raftlog.h - the store-wide raft log: one log for every region a store hosts.
 *
 * Why one log: a store hosts many regions, and a Ready batch of all of them
 * must cost one fsync, not one per region (TiKV's raft engine, NoKV-Go's
 * shared WAL). Entries of different regions interleave in the same files.
 *
 * Files: <dir>/NNNNNN.rlog (6+ digits, nokv/util/names.h rules), each in the
 * checksummed record format of nokv/engine/logfile.h with header magic
 * NK_RAFTLOG_FILE_MAGIC. lsns are contiguous across the files, and the
 * logfile torn-tail / corruption rule applies unchanged: a synced record that
 * fails its checksum is NK_ECORRUPT with the file and offset, never a cut.
 *
 * Record payloads (all little-endian / varint, docs/formats.md):
 *   type u8, region_id uvar, then
 *   ENTRIES   n uvar, n x (len uvar, nk_raft_entry_encode bytes); the first
 *             entry's index may be <= the region's last index: the region's
 *             tail from that index on is replaced (raft's "truncate then
 *             append"), never rewritten in place.
 *   HARDSTATE term, vote, commit (uvar each)
 *   SNAPSHOT  flags u8 (bit 0 = RESET), index, term, conf (raft conf codec):
 *             the region's log now starts after `index`. COMPACT (no RESET)
 *             keeps entries above index; RESET (a received snapshot was
 *             installed) drops every entry of the region.
 *   DESTROY   the region's peer is gone from this store: forget it.
 * The newest HARDSTATE / SNAPSHOT record of a region wins.
 *
 * Segments roll at segment_bytes. The first records of every new segment
 * restate the current HARDSTATE and SNAPSHOT of every live region, so all
 * older segments hold nothing but entries; an older segment is purged (by
 * nk_raftlog_purge) once each of its entries is at or below its region's
 * snapshot index or belongs to a destroyed region.
 *
 * Memory: the log keeps per region an index (entry index -> file, offset,
 * term) and a bounded cache of recent entry bytes; entries outside the cache
 * are read back from their file (nk_raftlog_entries), verified by checksum.
 *
 * Writing is staged: the stage_* calls queue records in memory, nk_raftlog_write
 * appends everything staged as one write, nk_raftlog_sync makes it durable
 * (a job: the fsync runs off the loop thread). The store keeps at most one
 * write+sync in flight; staging for the next batch may go on meanwhile.
 * Reads (nk_raftlog_region, nk_raftlog_entries) see staged-and-written
 * records, synced or not.
 *
 * Failpoints: "raftlog.after_append", "raftlog.before_sync",
 * "raftlog.after_roll", "raftlog.purge.before_remove".
 */
#ifndef NK_STORE_RAFTLOG_H
#define NK_STORE_RAFTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/raft/raft.h"
#include "nokv/rt.h"

#define NK_RAFTLOG_FILE_MAGIC UINT64_C(0x4e4b52414654474c) /* "NKRAFTGL" */

typedef struct nk_raftlog nk_raftlog;

typedef struct nk_raftlog_options {
    uint64_t segment_bytes; /* roll threshold; 0 = 64 MiB */
    uint64_t cache_bytes;   /* entry bytes kept in memory per store; 0 = 8 MiB */
} nk_raftlog_options;

/* What the log holds for one region after open or after writes. */
typedef struct nk_raftlog_region_state {
    uint64_t region_id;
    bool has_hard_state;
    nk_raft_hard_state hs;
    bool has_snapshot;          /* a SNAPSHOT record exists */
    nk_raft_snapshot_meta snap; /* valid when has_snapshot */
    uint64_t first_index;       /* first entry held (snap.index + 1 or 1) */
    uint64_t last_index;        /* last entry held; first_index - 1 when none */
} nk_raftlog_region_state;

/*
 * Open (creating `dir` and a first segment when missing) and replay. A torn
 * tail is cut durably before returning. NK_ECORRUPT / NK_ENOTSUP with eb
 * naming the file and offset, or a file error.
 */
int nk_raftlog_open(nk_rt *rt, const char *dir, const nk_raftlog_options *o, nk_raftlog **out,
                    nk_errbuf *eb);
/* Close handles and free memory. Does not sync. Not while a sync job's work
 * may still run (real runtime); after a simulated crash it is always fine. */
void nk_raftlog_close(nk_raftlog *l);

/* Sorted ids of the regions the log knows (not destroyed). *ids is malloc'd. */
int nk_raftlog_regions(const nk_raftlog *l, uint64_t **ids, size_t *n);

/* NK_ENOENT for a region the log does not know (or destroyed). */
int nk_raftlog_region(const nk_raftlog *l, uint64_t region_id, nk_raftlog_region_state *st);

/* Term of entry `index` of the region (the snapshot index included; index 0
 * of a region without a snapshot has term 0); NK_ENOENT when not held. */
int nk_raftlog_term(const nk_raftlog *l, uint64_t region_id, uint64_t index, uint64_t *term);

/*
 * Entries [lo, hi) of the region, deep copies in *out (caller frees each with
 * nk_raft_entry_clear, then the array). NK_ENOENT when any index in the range
 * is not held; NK_ECORRUPT when a read-back record fails its checksum.
 */
int nk_raftlog_entries(nk_raftlog *l, uint64_t region_id, uint64_t lo, uint64_t hi,
                       nk_raft_entry **out, size_t *n);
/* The same, stopping once the entries hold max_bytes (at least one entry is
 * returned; 0 = no limit), counted before reading: a lagging follower's
 * catch-up reads one message's worth at a time (nk_raft_storage). */
int nk_raftlog_entries_max(nk_raftlog *l, uint64_t region_id, uint64_t lo, uint64_t hi,
                           uint64_t max_bytes, nk_raft_entry **out, size_t *n);

/* Queue records for the next write (see the record list above). Checked
 * against the region as the records staged so far leave it: NK_EINVAL for
 * entries that are not consecutive, start below the snapshot or leave a gap
 * after the last index, a compaction below the current snapshot, a region id
 * 0 or a malformed conf. After a failed write or sync every call returns that
 * error until the log is reopened (the file state is unknown). */
int nk_raftlog_stage_entries(nk_raftlog *l, uint64_t region_id, const nk_raft_entry *ents,
                             size_t n);
int nk_raftlog_stage_hard_state(nk_raftlog *l, uint64_t region_id, const nk_raft_hard_state *hs);
int nk_raftlog_stage_snapshot(nk_raftlog *l, uint64_t region_id, const nk_raft_snapshot_meta *m,
                              bool reset);
int nk_raftlog_stage_destroy(nk_raftlog *l, uint64_t region_id);
bool nk_raftlog_has_staged(const nk_raftlog *l);

/* Append everything staged (rolling the segment first when it is full).
 * Nothing is durable yet. */
int nk_raftlog_write(nk_raftlog *l);

/* Make every write so far durable; done(arg, rc) runs on the loop thread.
 * With no new write since the last sync, done still runs (rc NK_OK). */
typedef void (*nk_raftlog_sync_fn)(void *arg, int rc);
int nk_raftlog_sync(nk_raftlog *l, nk_raftlog_sync_fn done, void *arg);

/* Remove segments that hold nothing live (see above), oldest first. *removed
 * (may be NULL) counts them. Durable (dir sync) before returning. Removes
 * nothing while any written record is not yet durable: the records that made
 * a segment dead must survive a crash first. */
int nk_raftlog_purge(nk_raftlog *l, unsigned *removed);

/* The lsn of the last record written (0 when none) and the highest lsn a
 * finished sync made durable. Observers use them as durability promises. */
uint64_t nk_raftlog_last_lsn(const nk_raftlog *l);
uint64_t nk_raftlog_synced_lsn(const nk_raftlog *l);

typedef struct nk_raftlog_stats {
    uint64_t segments;
    uint64_t bytes;
    uint64_t syncs;
    uint64_t cache_bytes;
    uint64_t readbacks; /* entries read back from files */
} nk_raftlog_stats;
void nk_raftlog_stats_get(const nk_raftlog *l, nk_raftlog_stats *s);

#endif /* NK_STORE_RAFTLOG_H */
