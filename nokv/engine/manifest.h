/*
 * manifest.h - the durable record of which table files make up the LSM, and
 * of the engine counters (log number, next file number, last sequence).
 *
 * Files in the DB directory:
 *
 *   MANIFEST-NNNNNN  a logfile.h log (magic NK_MANIFEST_FILE_MAGIC,
 *                    "nokv.mft") of version edits (version_edit.h), one per
 *                    record, lsns 1, 2, 3...; record 1 is always a full
 *                    snapshot of the state, the rest are deltas. Every
 *                    record is synced before the next is written, so each
 *                    record's synced_upto is its lsn - 1.
 *   CURRENT          names the live manifest, one text line:
 *                        "nokv-current 1 MANIFEST-000005 <xxh64 hex>\n"
 *                    (magic word, format version, file name, XXH64 of the
 *                    text before the last space as 16 lowercase hex digits).
 *   CURRENT.tmp      transient, while CURRENT is being replaced.
 *
 * Writing: nk_manifest_log_edit checks the edit against the state (invalid:
 * NK_EINVAL, nothing written), appends it, fsyncs the manifest and only then
 * applies it in memory and returns NK_OK. When the manifest has grown past
 * rewrite_threshold (and to twice its size after the last rewrite), the edit
 * first triggers a rewrite.
 *
 * Rewrite (crash-safe at every step):
 *   1. write MANIFEST-<n+1>: header + one snapshot edit of the whole state;
 *      fsync it                        [failpoint manifest.rewrite.after_write]
 *   2. write CURRENT.tmp naming it; fsync it
 *                                      [failpoint manifest.current.before_rename]
 *   3. rename CURRENT.tmp over CURRENT
 *                                      [failpoint manifest.current.after_rename]
 *      fsync the directory             [failpoint manifest.rewrite.after_current_sync]
 *   4. switch appends to MANIFEST-<n+1>; remove MANIFEST-<n>
 * Until the directory sync of step 3 CURRENT durably names the old, complete
 * manifest; after it, the new one. Both hold the same state, and no edit is
 * appended to either while the swap is uncertain, so recovery always finds
 * the old or the new state, never a mix. A failure before the rename leaves
 * the old manifest in use (the error is returned, the manifest stays
 * usable); a failure at or after the rename, or of any edit append/fsync,
 * is fatal: the durable state is unknown, so every later call returns that
 * error (nk_manifest_status) until reopened.
 *
 * Opening:
 *   - no CURRENT and no MANIFEST-* file: a new database (with
 *     create_if_missing; else NK_ENOENT): MANIFEST-000001 holding an empty
 *     snapshot is written and CURRENT made to name it, durably.
 *     No CURRENT but only a MANIFEST-000001 whose state is empty (or
 *     unreadable): an interrupted creation, redone. Any other manifest
 *     without CURRENT: NK_ECORRUPT (CURRENT was lost; nothing is guessed).
 *   - CURRENT damaged, or naming a manifest that does not exist: NK_ECORRUPT
 *     with a message naming the file.
 *   - the edits are replayed into the state with the logfile.h rule: a torn
 *     last record (never acknowledged: its fsync had not returned) is cut
 *     and the file truncated durably; damage anywhere a later record or the
 *     publication (record 1 is synced before CURRENT names the file) proves
 *     durable is NK_ECORRUPT naming the file and offset; so is an edit that
 *     does not apply (deleting a missing file, adding a duplicate, ...).
 *   - stale MANIFEST-* files and CURRENT.tmp are removed.
 *   - next_file_number is raised above every file number in the state.
 *
 * I/O is synchronous and uses only rt calls that are legal in a job's work
 * function; the object is not thread-safe (one caller at a time).
 */
#ifndef NK_ENGINE_MANIFEST_H
#define NK_ENGINE_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/engine/bugs.h"
#include "nokv/engine/version_edit.h"
#include "nokv/rt.h"

#define NK_MANIFEST_FILE_MAGIC UINT64_C(0x74666d2e766b6f6e) /* "nokv.mft" as LE bytes */
#define NK_MANIFEST_CURRENT_VERSION 1u
#define NK_MANIFEST_DEFAULT_REWRITE (UINT64_C(4) << 20)

typedef struct nk_manifest nk_manifest;

typedef struct nk_manifest_options {
    uint64_t rewrite_threshold; /* bytes; default 4 MiB */
    bool create_if_missing;     /* default true */
    unsigned test_bugs;         /* NK_BUG_* (bugs.h); 0 */
} nk_manifest_options;

void nk_manifest_options_default(nk_manifest_options *o);

/* What the last open found. */
typedef struct nk_manifest_recovery {
    bool created;         /* a new database was initialised */
    uint64_t number;      /* live manifest number */
    uint64_t edits;       /* records replayed (snapshot included) */
    bool torn;            /* a torn last record was cut */
    uint64_t torn_offset; /* where */
    uint64_t discarded_bytes;
    uint64_t stale_removed; /* stale MANIFEST-* / CURRENT.tmp files removed */
} nk_manifest_recovery;

/* Open or create the manifest of database directory `dir` (see above).
 * o NULL = defaults. NK_OK, NK_ECORRUPT / NK_ENOTSUP (eb: file, offset, what
 * to do), NK_ENOENT (no database and !create_if_missing), NK_ENOMEM, or a
 * file error. */
int nk_manifest_open(nk_rt *rt, const char *dir, const nk_manifest_options *o, nk_manifest **out,
                     nk_errbuf *eb);

/* The current state: L0 files by number, L>=1 by smallest key. Valid until
 * the next log_edit/rewrite/close. */
const nk_version_state *nk_manifest_state(const nk_manifest *m);
const nk_manifest_recovery *nk_manifest_recovery_info(const nk_manifest *m);

/* Make e durable, then apply it (see above). NK_OK, NK_EINVAL (e does not
 * apply; nothing written), NK_ENOMEM, or an I/O / failpoint error (fatal
 * unless it came from a rewrite before its rename). */
int nk_manifest_log_edit(nk_manifest *m, const nk_version_edit *e, nk_errbuf *eb);

/* Write the state into MANIFEST-<n+1> and swap CURRENT (see above). */
int nk_manifest_rewrite(nk_manifest *m, nk_errbuf *eb);

uint64_t nk_manifest_number(const nk_manifest *m);    /* live MANIFEST-<n> */
uint64_t nk_manifest_file_size(const nk_manifest *m); /* its size in bytes */
int nk_manifest_status(const nk_manifest *m);         /* NK_OK or the fatal error */

/* Read-only: the number of the manifest CURRENT names. NK_OK, NK_ENOENT (no
 * CURRENT), NK_ECORRUPT / NK_ENOTSUP (eb names the file), or a file error.
 * Changes nothing on disk (for `nokv migrate plan`, nokv/engine/inspect.h). */
int nk_manifest_read_current(nk_rt *rt, const char *dir, uint64_t *number, nk_errbuf *eb);

/* Read-only (nokv check): replay the manifest CURRENT names into *state
 * (initialised here; free it with nk_vstate_free) without changing anything
 * on disk: a torn last record is reported in *torn, not cut; nothing is
 * created or removed. Same errors as nk_manifest_open; NK_ENOENT when there
 * is no CURRENT. */
int nk_manifest_read(nk_rt *rt, const char *dir, nk_version_state *state, uint64_t *number,
                     bool *torn, nk_errbuf *eb);

/* Close the file and free (no I/O needed: every edit is already durable).
 * Also the crash path. NULL is ignored. */
void nk_manifest_close(nk_manifest *m);

#endif /* NK_ENGINE_MANIFEST_H */
