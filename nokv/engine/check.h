/*
 * check.h - offline verification of a workdir (`nokv check`).
 *
 * Reads everything, changes nothing: no lock is taken, no file is created,
 * truncated, renamed or removed, so it can run on a copy, on a read-only
 * mount, or next to nothing at all (run it on a stopped server: a running
 * one may be rewriting the files it reads, and a torn WAL tail it reports
 * may simply be the live end of the log).
 *
 * What is verified, in order, each reported through `fn` as one line:
 *   - the manifest: CURRENT, the MANIFEST it names, every record checksum,
 *     every edit applies (as recovery would);
 *   - the WAL: every segment header and record checksum, lsn continuity, and
 *     the manifest's claims (the segments and lsns that must exist), as
 *     recovery would; a torn tail recovery would cut is a warning only;
 *   - every table the manifest lists: it exists, its size matches, the
 *     XXH64 of the whole file equals the one the manifest recorded when the
 *     table was written (tables of older builds record none: skipped), then
 *     footer, index, filter and properties blocks, and every data block
 *     checksum (read in full, decompressed, decoded); each table's damage
 *     is listed (a hash mismatch as corruption naming the file).
 * The verdict: NK_CHECK_OK, NK_CHECK_WARN (nothing durable is damaged, but
 * something recovery would tidy up, e.g. a torn WAL tail or orphan tables),
 * NK_CHECK_DAMAGED (data a normal open would refuse or a read would fail).
 */
#ifndef NK_ENGINE_CHECK_H
#define NK_ENGINE_CHECK_H

#include <stdint.h>

#include "nokv/rt.h"

typedef enum nk_check_level {
    NK_CHECK_OK = 0,
    NK_CHECK_WARN = 1,
    NK_CHECK_DAMAGED = 2,
} nk_check_level;

/* One finding: level and a line naming the file, the offset, what is wrong. */
typedef void (*nk_check_fn)(void *arg, nk_check_level level, const char *line);

typedef struct nk_check_summary {
    nk_check_level verdict;
    uint64_t tables;          /* tables listed by the manifest */
    uint64_t tables_damaged;
    uint64_t tables_hashed;   /* tables whose recorded whole-file XXH64 matched */
    uint64_t blocks;          /* data blocks read and verified (entries, as a proxy) */
    uint64_t entries;
    uint64_t wal_segments;
    uint64_t wal_records;
    uint64_t problems;        /* findings at WARN or DAMAGED */
} nk_check_summary;

/* Verify `workdir` (see above). Returns NK_OK when the check ran to the end
 * (the verdict is in *sum), or an error that stopped it (NK_ENOMEM). */
int nk_db_check(nk_rt *rt, const char *workdir, nk_check_fn fn, void *arg, nk_check_summary *sum);

#endif /* NK_ENGINE_CHECK_H */
