/*
 * inspect.h - look at an engine workdir without changing a byte of it, and
 * list the live table files of an open engine.
 *
 * `nokv migrate plan` must be strictly read-only, so it cannot open the
 * engine (open cuts torn tails, removes orphans and stale manifests). This
 * reads the same structures the open would: CURRENT, the live manifest
 * (replayed into a version state with the logfile.h rule, via the read-only
 * nk_logscan_run), every table the state lists (present, expected size), and
 * the WAL segments (scanned the same way). What an open would repair is a
 * warning (a torn tail); what it would refuse is an error.
 *
 * nk_db_live_files lists the tables of the current version of an open db;
 * nk_db_tables_pin does the same and also pins that version, so no listed
 * file is deleted (by a compaction) until nk_db_tables_unpin: `migrate init`
 * links them into the seed snapshot. Tables are immutable, so links taken
 * while the version is pinned are a consistent point-in-time image.
 *
 * Both report each table's whole-file XXH64 when the manifest records it
 * (every table written by this build: flush, compaction and ingest outputs
 * record the hash their writer computed as the bytes went out), so a caller
 * needs no read of table data to checksum the image. Tables of an older
 * workdir have has_xxh64 false: the caller hashes those files itself.
 */
#ifndef NK_ENGINE_INSPECT_H
#define NK_ENGINE_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/db.h"
#include "nokv/rt.h"

#define NK_INSPECT_KEY_MAX 64u

typedef struct nk_db_file_info {
    uint64_t number; /* <workdir>/<number %06>.sst */
    uint32_t level;
    uint64_t size;
    bool has_xxh64; /* the manifest records the file's XXH64 */
    uint64_t xxh64; /* XXH64 (seed 0) of the whole file, when has_xxh64 */
    char name[32];  /* "<number %06>.sst" */
} nk_db_file_info;

typedef struct nk_db_inspect {
    bool has_current; /* false: not an engine workdir (no CURRENT) */
    uint64_t manifest_number;
    uint64_t last_sequence;
    uint64_t log_number;
    size_t n_files;
    nk_db_file_info *files; /* malloc'd, by level then manifest order */
    uint64_t table_bytes;
    uint64_t wal_segments;
    uint64_t wal_bytes;
    /* WAL records at or above the manifest's log number: what an open would
     * replay into the memtable (0 after a graceful stop that flushed). */
    uint64_t wal_unflushed;
    /* The largest user key in any table or WAL batch (deleted ones too),
     * first NK_INSPECT_KEY_MAX bytes: plan checks it against key ranges
     * reserved by the cluster mode. */
    bool has_keys;
    size_t max_key_len;
    uint8_t max_key[NK_INSPECT_KEY_MAX];
    bool manifest_torn; /* a torn manifest tail the next open will cut */
    bool wal_torn;      /* a torn WAL tail the next open will cut */
} nk_db_inspect;

/* NK_OK (r filled; !has_current when there is no CURRENT), NK_ECORRUPT /
 * NK_ENOTSUP / a file error with eb naming the file. Read-only. */
int nk_db_inspect_dir(nk_rt *rt, const char *dir, nk_db_inspect *r, nk_errbuf *eb);
void nk_db_inspect_free(nk_db_inspect *r);

/* The live tables of an open db (malloc'd *out, caller frees). */
int nk_db_live_files(nk_db *db, nk_db_file_info **out, size_t *n);

/* The live tables of a pinned version: every listed file stays on disk
 * until nk_db_tables_unpin, whatever compactions do meanwhile. */
typedef struct nk_db_tables {
    size_t n;
    nk_db_file_info *files; /* by level, then level order */
    uint64_t last_sequence; /* the engine's newest sequence when pinned */
    void *version;          /* the pinned version (engine-private) */
} nk_db_tables;

/* Pin the current version and list it. NK_OK or NK_ENOMEM (nothing
 * pinned). Loop thread only. */
int nk_db_tables_pin(nk_db *db, nk_db_tables *out);

/* Release the pin (and the list); required before nk_db_close. A NULL or
 * already released t is a no-op. Loop thread only. */
void nk_db_tables_unpin(nk_db *db, nk_db_tables *t);

/* "<dir>/<number %06>.sst" into buf. */
void nk_db_sst_path(const char *dir, uint64_t number, char *buf, size_t len);

#endif /* NK_ENGINE_INSPECT_H */
