/*
 * version_edit.h - version edits (the manifest's records) and the version
 * state they build: which table files live at which level, plus the
 * engine-wide counters (log number, next file number, last sequence).
 *
 * Edit encoding (inside a checksummed manifest record, logfile.h):
 *
 *     edit  = version varint (NK_VEDIT_VERSION) | field*
 *     field = tag varint | length varint | value (length bytes)
 *
 *   tag 1 log_number        varint  WAL lsns below it are in tables
 *   tag 2 next_file_number  varint
 *   tag 3 last_sequence     varint
 *   tag 4 add_file          nested fields:
 *             1 level varint, 2 number varint, 3 size varint,
 *             4 smallest internal key (bytes), 5 largest internal key (bytes),
 *             6 smallest_seq varint, 7 largest_seq varint   (all required)
 *             65 file_xxh64 (ignorable): 8 bytes LE, XXH64 (seed 0) of
 *                the whole table file, taken by the writer as the bytes
 *                went out (sst.h). Absent in tables written before it
 *                existed (and after an older build rewrote the manifest):
 *                readers then hash the file when they need the value.
 *   tag 5 delete_file       nested fields: 1 level varint, 2 number varint
 *   tag 6 seq_floor         varint  sequence numbers up to it are taken: an
 *                                   ingest installed tables whose entries
 *                                   carry them (region.h), so the next write
 *                                   is numbered above it and a WAL replay may
 *                                   jump from below it to floor + 1. Only
 *                                   grows (the state keeps the maximum). Not
 *                                   ignorable: a reader that dropped it would
 *                                   number new writes below ingested data.
 *   tag 65 wal_segment      varint  (ignorable) a WAL segment whose creation
 *                                   was durable when the edit was written:
 *                                   the log must reach at least that segment
 *   tag 66 wal_durable      varint  (ignorable) a WAL lsn known durable when
 *                                   the edit was written: every lsn from
 *                                   log_number up to it must be in the WAL
 *   tag 67 wal_reset        varint 1 (ignorable) the two above replace the
 *                                   state's instead of raising it: written
 *                                   once, after an explicit salvage gave up
 *                                   the WAL records they covered
 *   Both only grow otherwise (the state keeps the maximum); recovery refuses
 *   a WAL that does not reach them (a removed, renamed or truncated segment).
 *
 * Every value carries its length, so a reader can step over a field it does
 * not know. Tags with bit NK_VEDIT_TAG_IGNORABLE (64) set are optional
 * additions an older reader may skip; an unknown tag without that bit is
 * something the reader must understand to be correct, so it is NK_ENOTSUP
 * ("written by a newer version"), never silently dropped. Same rule for the
 * nested fields. A scalar field given twice, a missing required nested
 * field, a varint that does not fill its value exactly, or anything running
 * past the end is NK_ECORRUPT: decoding is bounds-checked throughout.
 *
 * Version state invariants (checked by nk_vstate_apply, which is all or
 * nothing):
 *   - a file number appears at most once in the whole version;
 *   - a delete names a file present at that level; within an edit deletes
 *     apply before adds (so a file can move levels in one edit);
 *   - smallest <= largest (internal key order, ikey.h), keys >= 8 bytes,
 *     smallest_seq <= largest_seq, level < NK_NUM_LEVELS;
 *   - levels >= 1 hold non-overlapping files.
 * L0 files are sorted by file number (ascending: older first), levels >= 1
 * by smallest key.
 */
#ifndef NK_ENGINE_VERSION_EDIT_H
#define NK_ENGINE_VERSION_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/util/err.h"

#define NK_NUM_LEVELS 7u
#define NK_VEDIT_VERSION 1u
#define NK_VEDIT_TAG_IGNORABLE 64u

/* Top-level tags. */
#define NK_VEDIT_LOG_NUMBER 1u
#define NK_VEDIT_NEXT_FILE 2u
#define NK_VEDIT_LAST_SEQ 3u
#define NK_VEDIT_ADD_FILE 4u
#define NK_VEDIT_DELETE_FILE 5u
#define NK_VEDIT_SEQ_FLOOR 6u
#define NK_VEDIT_WAL_SEGMENT (NK_VEDIT_TAG_IGNORABLE | 1u)
#define NK_VEDIT_WAL_DURABLE (NK_VEDIT_TAG_IGNORABLE | 2u)
#define NK_VEDIT_WAL_RESET (NK_VEDIT_TAG_IGNORABLE | 3u)

/* Nested add_file field: the table's whole-file XXH64 (optional). */
#define NK_VEDIT_FILE_XXH64 (NK_VEDIT_TAG_IGNORABLE | 1u)

/* One table file. Keys are internal keys (ikey.h), owned. */
typedef struct nk_file_meta {
    uint64_t number;
    uint64_t size;
    bool has_xxh64; /* false: not recorded (older writer) */
    uint64_t xxh64; /* XXH64 of the whole file when has_xxh64 */
    nk_buf smallest;
    nk_buf largest;
    uint64_t smallest_seq;
    uint64_t largest_seq;
} nk_file_meta;

typedef struct nk_vedit_add {
    uint32_t level;
    nk_file_meta meta;
} nk_vedit_add;

typedef struct nk_vedit_del {
    uint32_t level;
    uint64_t number;
} nk_vedit_del;

typedef struct nk_version_edit {
    bool has_log_number;
    bool has_next_file_number;
    bool has_last_sequence;
    bool has_seq_floor;
    bool has_wal_segment;
    bool has_wal_durable;
    bool wal_reset;
    uint64_t log_number;
    uint64_t next_file_number;
    uint64_t last_sequence;
    uint64_t seq_floor;
    uint64_t wal_segment;
    uint64_t wal_durable;
    nk_vedit_add *added;
    size_t nadded;
    size_t cap_added;
    nk_vedit_del *deleted;
    size_t ndeleted;
    size_t cap_deleted;
} nk_version_edit;

void nk_vedit_init(nk_version_edit *e);
void nk_vedit_free(nk_version_edit *e); /* leaves it initialised (empty) */

void nk_vedit_set_log_number(nk_version_edit *e, uint64_t v);
void nk_vedit_set_next_file_number(nk_version_edit *e, uint64_t v);
void nk_vedit_set_last_sequence(nk_version_edit *e, uint64_t v);
void nk_vedit_set_seq_floor(nk_version_edit *e, uint64_t v);
void nk_vedit_set_wal_segment(nk_version_edit *e, uint64_t v);
void nk_vedit_set_wal_durable(nk_version_edit *e, uint64_t v);

/* Record an added file (keys are copied). NK_OK or NK_ENOMEM. */
int nk_vedit_add_file(nk_version_edit *e, uint32_t level, uint64_t number, uint64_t size,
                      const uint8_t *smallest, size_t slen, const uint8_t *largest, size_t llen,
                      uint64_t smallest_seq, uint64_t largest_seq);
int nk_vedit_delete_file(nk_version_edit *e, uint32_t level, uint64_t number);

/* Record the whole-file XXH64 of the file nk_vedit_add_file added last (a
 * no-op when none was added). */
void nk_vedit_set_file_xxh64(nk_version_edit *e, uint64_t xxh64);

/* Append the encoding to out. NK_OK or NK_ENOMEM. */
int nk_vedit_encode(const nk_version_edit *e, nk_buf *out);

/* Decode into *out (initialised here; free it with nk_vedit_free even on
 * error). NK_OK, NK_ECORRUPT, NK_ENOTSUP or NK_ENOMEM; eb says what and the
 * byte offset inside the edit. */
int nk_vedit_decode(const uint8_t *p, size_t len, nk_version_edit *out, nk_errbuf *eb);

/* ------------------------------------------------------ version state --- */

typedef struct nk_level_files {
    nk_file_meta *files;
    size_t count;
    size_t cap;
} nk_level_files;

typedef struct nk_version_state {
    uint64_t log_number;
    uint64_t next_file_number;
    uint64_t last_sequence;
    uint64_t seq_floor;   /* 0 = no ingest ever raised it */
    uint64_t wal_segment; /* 0 = never recorded (older workdir) */
    uint64_t wal_durable;
    nk_level_files levels[NK_NUM_LEVELS];
} nk_version_state;

void nk_vstate_init(nk_version_state *v);
void nk_vstate_free(nk_version_state *v); /* leaves it initialised (empty) */

/* Would `e` apply cleanly? NK_OK or NK_EINVAL (eb: which file, why). */
int nk_vstate_check(const nk_version_state *v, const nk_version_edit *e, nk_errbuf *eb);

/* Check, then apply e: all or nothing. Scalars present in e replace the
 * state's. NK_OK, NK_EINVAL (invariant broken; v unchanged) or NK_ENOMEM
 * (v unchanged). */
int nk_vstate_apply(nk_version_state *v, const nk_version_edit *e, nk_errbuf *eb);

/* An edit that rebuilds v from an empty state (all scalars, every file as an
 * add, in level order). *out is initialised here. NK_OK or NK_ENOMEM. */
int nk_vstate_snapshot(const nk_version_state *v, nk_version_edit *out);

/* Total number of files. */
size_t nk_vstate_file_count(const nk_version_state *v);

/* Where file `number` lives: NK_OK with *level and *index, or NK_ENOENT. */
int nk_vstate_find(const nk_version_state *v, uint64_t number, uint32_t *level, size_t *index);

#endif /* NK_ENGINE_VERSION_EDIT_H */
