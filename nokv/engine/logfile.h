/*
 * logfile.h - the checksummed record log shared by the WAL (wal.h) and the
 * manifest (manifest.h): file header, record framing, and the recovery scan
 * that tells a torn tail from corruption.
 *
 * File layout (little-endian, field by field):
 *
 *   header, NK_LOGFILE_HDR_SIZE = 48 bytes
 *     magic       u64  per kind: NK_WAL_FILE_MAGIC, NK_MANIFEST_FILE_MAGIC
 *     version     u32  NK_LOGFILE_VERSION; a newer one is NK_ENOTSUP
 *     flags       u32  0 (reserved)
 *     number      u64  the file's number; must equal the number in its name
 *     first_lsn   u64  lsn of the first record the file holds (or would hold)
 *     synced_upto u64  highest lsn known durable when the file was created
 *     checksum    u64  XXH64(the 40 bytes above, seed 0)
 *
 *   records, back to back, NK_LOGREC_OVERHEAD = 36 bytes + payload each
 *     magic       u32  NK_LOGREC_MAGIC
 *     type        u8   NK_LOGREC_DATA or NK_LOGREC_MARK
 *     flags       u8   0 (reserved)
 *     reserved    u16  0
 *     length      u32  payload bytes (<= NK_LOGREC_MAX_PAYLOAD)
 *     lsn         u64  DATA: exactly previous lsn + 1 (contiguous across the
 *                      files of one log); MARK: the previous lsn (a mark
 *                      takes no lsn of its own)
 *     synced_upto u64  highest lsn known durable when the record was written
 *     payload     length bytes (MARK: none)
 *     checksum    u64  XXH64(the 28 header bytes + payload, seed 0)
 *
 * A MARK record carries nothing but its synced_upto claim: the WAL writes one
 * on a clean close, after the final sync, so the whole log is then covered
 * by a durability claim (see the rule below).
 *
 * The torn-tail / corruption rule (nk_logscan_run)
 * ------------------------------------------------
 * A crash may drop, tear or garble any write issued after the last sync,
 * each write independently, so the bytes after the last durable point can be
 * anything: garbage, holes of zeros, and even intact records that follow a
 * lost one. Bytes that were durable never change in a crash.
 *
 * Records are read in order across the files. The first *bad* thing (short
 * header, wrong magic/version/number, bad checksum, impossible length, lsn
 * not contiguous) ends the strict read at position P = the lsn that was
 * expected there. Then:
 *
 *   - every byte after the bad spot (rest of that file, every later file) is
 *     searched for anything valid: a file header or a record whose checksum
 *     matches. Such a thing was written by us, and its synced_upto is a true
 *     statement ("lsns <= X had been synced when I was written").
 *   - if P <= max(synced_upto of every valid thing read before OR found
 *     after the bad spot, min_durable), the data at P had been made durable,
 *     and durable bytes do not change in a crash: this is CORRUPTION. The
 *     scan fails with NK_ECORRUPT naming the file and byte offset.
 *   - otherwise nothing ever claimed P durable: a TORN TAIL. The scan stops,
 *     reports the cut (file, offset) and the number of bytes after it, and
 *     the owner removes them durably before writing again.
 *
 * Why it is safe: a claim is only ever written after the sync that made it
 * true, so on a pure crash every lsn <= any surviving claim is intact and
 * the rule never fires falsely; a pure crash never fails recovery.
 *
 * What it guarantees: any damage at or below the highest durability claim
 * present anywhere in the log is reported, never cut. Damage to records that
 * no surviving claim covers (the last group synced with nothing written after
 * it, for instance by media corruption of a just-synced record) looks exactly
 * like a torn tail and is cut; owners narrow that window (the WAL's close
 * MARK, the header claim of each new file, the manifest's min_durable).
 * Payloads are only ever delivered from records whose checksum matched, in
 * lsn order, so a corrupted payload is never returned.
 */
#ifndef NK_ENGINE_LOGFILE_H
#define NK_ENGINE_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/rt.h"

#define NK_LOGFILE_VERSION 1u
#define NK_LOGFILE_HDR_SIZE 48u
#define NK_LOGREC_MAGIC UINT32_C(0x9e3b5a1d)
#define NK_LOGREC_HDR_SIZE 28u
#define NK_LOGREC_OVERHEAD 36u                    /* header + checksum */
#define NK_LOGREC_MAX_PAYLOAD (UINT32_C(1) << 27) /* 128 MiB */

#define NK_LOGREC_DATA 1u
#define NK_LOGREC_MARK 2u

typedef struct nk_logfile_hdr {
    uint64_t magic;
    uint64_t number;
    uint64_t first_lsn;
    uint64_t synced_upto;
} nk_logfile_hdr;

/* Encode a header (version NK_LOGFILE_VERSION) into out[48]. */
void nk_logfile_hdr_encode(uint8_t *out, const nk_logfile_hdr *h);

/* The 28 header bytes of a record whose payload is `len` bytes (the checksum
 * then covers them and the payload: XXH64 streamed over both gives the same
 * value as nk_logrec_encode, so a large payload can be written in place). */
void nk_logrec_encode_header(uint8_t *out, unsigned type, uint64_t lsn, uint64_t synced_upto,
                             size_t len);

/* Append one framed record to b. NK_OK, NK_ETOOBIG, NK_ENOMEM. */
int nk_logrec_encode(nk_buf *b, unsigned type, uint64_t lsn, uint64_t synced_upto,
                     const void *payload, size_t len);

/*
 * Create file `path` (must not exist: NK_EEXIST) and write its header. Does
 * not sync. On success *out is the open handle (read/write). `fp_after_create`
 * (may be NULL) is a failpoint checked right after the create, before the
 * header is written. On error the handle is closed.
 */
int nk_logfile_create(nk_rt *rt, const char *path, const nk_logfile_hdr *h,
                      const char *fp_after_create, nk_file **out);

/* ------------------------------------------------------ recovery scan --- */

/* A valid DATA record in order. `payload` is valid only during the call.
 * Return NK_OK to go on; anything else stops the scan with that code. */
typedef int (*nk_logscan_fn)(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                             const uint8_t *payload, size_t len);

typedef struct nk_logscan_in {
    uint64_t magic;           /* header magic of this kind of log */
    const char *const *paths; /* files in log order */
    const uint64_t *numbers;  /* the number in each file's name */
    size_t nfiles;
    /* The lsn expected first when the first file's header is unreadable. */
    uint64_t start_lsn;
    /* 0, or the largest first_lsn the first file may have: a larger one
     * means records the caller still needs are gone (NK_ECORRUPT). */
    uint64_t max_first_lsn;
    /* Lsns <= min_durable are durable whatever the claims say. */
    uint64_t min_durable;
    nk_logscan_fn fn;
    void *arg;
    const char *what; /* "wal", "manifest": for messages */
    /* Salvage (explicit operator choice, never a default): damage that a
     * claim covers is cut like a torn tail instead of failing, and a first
     * file starting after max_first_lsn is accepted; out->salvaged and
     * lost_from..lost_to say what was given up (also logged at WARN). */
    bool salvage;
} nk_logscan_in;

typedef struct nk_logscan_out {
    uint64_t first_lsn;  /* first file's first_lsn (start_lsn if unreadable) */
    uint64_t last_lsn;   /* last valid DATA lsn (first_lsn - 1 if none) */
    uint64_t max_claim;  /* largest synced_upto seen */
    uint64_t records;    /* DATA records delivered */
    bool torn;           /* a torn tail was found and must be cut */
    size_t cut_file;     /* index of the file with the cut (nfiles if none) */
    uint64_t cut_offset; /* first byte to discard in that file */
    uint64_t discarded;  /* bytes after the cut, this file and later ones */
    bool salvaged;       /* salvage gave up durable records */
    uint64_t lost_from;  /* their lsns (as far as the claims tell) */
    uint64_t lost_to;
    /* Per input file (caller-allocated, nfiles entries; may be NULL):
     * first_lsn from its header (0 when unreadable) and file size. */
    uint64_t *file_first_lsn;
    uint64_t *file_size;
} nk_logscan_out;

/*
 * Read the log (see the rule above). NK_OK (out->torn says whether a cut is
 * needed; nothing is modified on disk), NK_ECORRUPT or NK_ENOTSUP (eb: file,
 * offset, reason, what to do), NK_ENOMEM, a file error, or the callback's
 * code. Only file open/read/size/close calls are used.
 */
int nk_logscan_run(nk_rt *rt, const nk_logscan_in *in, nk_logscan_out *out, nk_errbuf *eb);

/* "<dir>/<name>" into a fresh malloc'd string (NULL on ENOMEM). */
char *nk_path_join(const char *dir, const char *name);

/* The directory holding `path` ("/a/b" -> "/a", "/a" -> "/", "a" -> ".");
 * malloc'd, NULL on ENOMEM. */
char *nk_path_parent(const char *path);

/* ------------------------------------- segment directory housekeeping --- */
/* Shared by the WAL and the raft log. `what` ("wal", "raftlog") prefixes
 * every message put in eb. */

/* One numbered segment file of a log directory. */
typedef struct nk_logseg_file {
    uint64_t number;
    char *path; /* malloc'd "<dir>/<name>" */
} nk_logseg_file;

/* Make sure directory `dir` exists, durably (its parent is synced after a
 * create). NK_ENOTDIR when it is something else. */
int nk_logdir_ensure(nk_rt *rt, const char *what, const char *dir, nk_errbuf *eb);

/* The files "<number><suffix>" in dir (others are skipped), numerically
 * sorted ("1000000.log" sorts after "999999.log"). *out is malloc'd: free
 * it with nk_logseg_files_free, also on error. */
int nk_logseg_list(nk_rt *rt, const char *what, const char *dir, const char *suffix,
                   nk_logseg_file **out, size_t *count, nk_errbuf *eb);
void nk_logseg_files_free(nk_logseg_file *files, size_t n);

/* Remove a file, tolerating its absence. */
/* Read and verify one file's header (magic, checksum, version) without
 * scanning its records. NK_ECORRUPT when it is not a valid header. */
int nk_logfile_read_hdr(nk_rt *rt, const char *path, uint64_t magic, nk_logfile_hdr *out);

int nk_logfile_remove(nk_rt *rt, const char *what, const char *path, nk_errbuf *eb);

/* Durably cut the tail that a recovery scan found torn: remove files
 * keep..n-1 (newest first, so a crash in between leaves a prefix), cut file
 * `cut_file` at `cut_offset` when `torn`, sync every kept file, then sync
 * `dir`. `fp_after_cut` (may be NULL) is a failpoint checked right after the
 * truncate; `skip_cut_sync` (a test-only injected bug) skips the sync of the
 * cut file. */
int nk_logseg_cut_tail(nk_rt *rt, const char *what, const char *dir, const char *const *paths,
                       size_t n, size_t keep, bool torn, size_t cut_file, uint64_t cut_offset,
                       const char *fp_after_cut, bool skip_cut_sync, nk_errbuf *eb);

#endif /* NK_ENGINE_LOGFILE_H */
