/*
 * sst.h - sorted string tables: immutable files of internal keys.
 *
 * File layout (all blocks framed by blockfmt.h: payload | type | XXH64):
 *
 *     data block*      block.h format, internal keys -> values, ~block_size
 *                      bytes each before compression
 *     filter block     bloom.h filter over the table's user keys (stored raw)
 *     props block      block.h format, name -> value, names sorted bytewise:
 *                        "nokv.data_blocks" "nokv.deletes" "nokv.entries"
 *                        "nokv.max_seq" "nokv.min_seq" "nokv.raw_key_bytes"
 *                        "nokv.raw_value_bytes"  (varints)
 *                        "nokv.largest" "nokv.smallest"  (internal keys)
 *                      readers ignore names they do not know, so properties
 *                      can be added without a format change
 *     index block      block.h format, restart interval 1: for each data
 *                      block, its last internal key -> its handle (varints)
 *     footer (72 B)    version u32 | flags u32 (0)
 *                      | index off u64 | index size u64
 *                      | filter off u64 | filter size u64
 *                      | props off u64 | props size u64
 *                      | checksum u64 = XXH64(the 56 bytes before it)
 *                      | magic u64 = NK_SST_MAGIC (bytes "nokv.sst")
 *
 * Everything is little-endian and written field by field. Block handle
 * sizes include the block trailer.
 *
 * Writing: nk_sst_builder writes to a file the caller created (empty) and
 * owns; it never syncs, renames or closes: the flush/compaction code runs
 * the durability protocol (sync file, rename into place, sync dir, then
 * record it in the manifest).
 *
 * Reading: an nk_sst is immutable after open. Reads through the block cache
 * (get, iterators without NK_SST_NO_CACHE) are loop-thread only, like the
 * cache; iterators with NK_SST_NO_CACHE touch no shared mutable state and
 * may run in background jobs concurrently with the loop thread.
 *
 * Corruption: every block is checksummed before use; any damage is reported
 * as NK_ECORRUPT with a message naming the table and the file offset of the
 * bad block (or the footer), never as a wrong value or a missing key.
 */
#ifndef NK_ENGINE_SST_H
#define NK_ENGINE_SST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/blockfmt.h"
#include "nokv/engine/cache.h"
#include "nokv/engine/memtable.h" /* nk_lookup */
#include "nokv/engine/slice.h"
#include "nokv/rt.h"

#define NK_SST_MAGIC UINT64_C(0x7473732e766b6f6e) /* "nokv.sst" as LE bytes */
#define NK_SST_FORMAT_VERSION 1u
#define NK_SST_FOOTER_SIZE 72u

typedef struct nk_sst_options {
    size_t block_size;           /* target raw data block size; default 4096 */
    unsigned restart_interval;   /* data blocks; default 16 */
    unsigned bloom_bits_per_key; /* default 10 */
    nk_compression compression;  /* data and index blocks; default NK_COMP_LZ4 */
} nk_sst_options;

/* Fill with the defaults above. */
void nk_sst_options_default(nk_sst_options *o);

/* What a table holds; smallest/largest are internal keys (empty when the
 * table is empty). */
typedef struct nk_sst_props {
    uint64_t entries;
    uint64_t deletes;
    uint64_t data_blocks;
    uint64_t raw_key_bytes;
    uint64_t raw_value_bytes;
    uint64_t min_seq;
    uint64_t max_seq;
    nk_buf smallest;
    nk_buf largest;
} nk_sst_props;

void nk_sst_props_free(nk_sst_props *p);

/* ------------------------------------------------------------ builder --- */

typedef struct nk_sst_builder nk_sst_builder;

/* Write a table into f (empty, opened for writing). o NULL = defaults.
 * NK_OK or NK_ENOMEM. */
int nk_sst_builder_new(nk_rt *rt, nk_file *f, const nk_sst_options *o, nk_sst_builder **out);

/*
 * Add an entry: ikey is an internal key (ikey.h), strictly greater than the
 * previous one in nk_ikey_cmp order. NK_OK; NK_EINVAL (malformed key, out of
 * order, or builder finished); NK_ENOMEM/NK_ETOOBIG; or a file error. After
 * a file or memory error the builder is failed: every later call returns
 * that error; abandon the file.
 */
int nk_sst_builder_add(nk_sst_builder *b, const uint8_t *ikey, size_t klen, const uint8_t *val,
                       size_t vlen);

/* Bytes the file would have if finished now (approximate until finish):
 * what a compaction compares against its target file size. */
uint64_t nk_sst_builder_size(const nk_sst_builder *b);
uint64_t nk_sst_builder_entries(const nk_sst_builder *b);

/* Write the remaining blocks and the footer. *file_size gets the final size;
 * props (may be NULL) gets a copy of the properties (free with
 * nk_sst_props_free). Does not sync. */
int nk_sst_builder_finish(nk_sst_builder *b, uint64_t *file_size, nk_sst_props *props);

/* XXH64 (seed 0) of the whole file as written, computed while the bytes
 * went out (no read back). Valid after a successful nk_sst_builder_finish
 * (0 before); equal to hashing the file's bytes from offset 0 to its end,
 * which is what the manifest records and `nokv check` verifies. */
uint64_t nk_sst_builder_file_xxh64(const nk_sst_builder *b);

/* Free the builder (finished or not); does not touch the file. */
void nk_sst_builder_free(nk_sst_builder *b);

/* ------------------------------------------------------------- reader --- */

typedef struct nk_sst nk_sst;

/*
 * Open a table: read and verify the footer, then the index, filter and
 * properties blocks (kept in memory for the table's life). `number` is the
 * table's file number (the cache key; unique for the life of the workdir),
 * `name` its path or file name for messages (copied). cache may be NULL.
 * On success the table owns f and closes it in nk_sst_close; on failure f
 * stays the caller's. NK_OK, NK_ECORRUPT (eb: what, where), NK_ENOTSUP (newer
 * format version), NK_ENOMEM, or a file error.
 */
int nk_sst_open(nk_rt *rt, nk_file *f, uint64_t number, const char *name, nk_cache *cache,
                nk_sst **out, nk_errbuf *eb);
void nk_sst_close(nk_sst *t);

const nk_sst_props *nk_sst_get_props(const nk_sst *t);
uint64_t nk_sst_file_size(const nk_sst *t);
uint64_t nk_sst_number(const nk_sst *t);
/* false when the filter block was unusable (damaged filter bytes with a good
 * checksum, i.e. a writer bug): the table is then read without it. */
bool nk_sst_has_filter(const nk_sst *t);

/*
 * Point read: the newest version of ukey with seq <= snap. The bloom filter
 * is consulted first, so most misses read no data block. For
 * NK_LOOKUP_VALUE the value is copied into *val (replacing its contents).
 * *seq_out (may be NULL) gets the version's seq. NK_OK, NK_ECORRUPT, NK_ENOMEM
 * or a file error (eb explains). Loop thread only (uses the cache).
 */
int nk_sst_get(nk_sst *t, const uint8_t *ukey, size_t ulen, uint64_t snap, nk_lookup *res,
               nk_buf *val, uint64_t *seq_out, nk_errbuf *eb);

/* ----------------------------------------------------------- iterator --- */

/* Iterator flags. */
#define NK_SST_NO_CACHE 0x1u /* read blocks directly: for background jobs */

typedef struct nk_sst_iter nk_sst_iter;

/* An iterator over every entry (internal keys, all versions). The table must
 * outlive it. NK_OK or NK_ENOMEM. Starts unpositioned. */
int nk_sst_iter_new(nk_sst *t, unsigned flags, nk_sst_iter **out);
void nk_sst_iter_free(nk_sst_iter *it);

bool nk_sst_iter_valid(const nk_sst_iter *it);
/* Requires valid; both stay valid until the iterator moves or is freed. */
nk_slice nk_sst_iter_key(const nk_sst_iter *it);
nk_slice nk_sst_iter_value(const nk_sst_iter *it);
void nk_sst_iter_first(nk_sst_iter *it);
void nk_sst_iter_last(nk_sst_iter *it);
void nk_sst_iter_next(nk_sst_iter *it);
void nk_sst_iter_prev(nk_sst_iter *it);
/* First entry >= ikey / last entry <= ikey (internal keys). */
void nk_sst_iter_seek(nk_sst_iter *it, const uint8_t *ikey, size_t klen);
void nk_sst_iter_seek_for_prev(nk_sst_iter *it, const uint8_t *ikey, size_t klen);
/* NK_OK, or the error that made the iterator invalid (sticky); eb (may be
 * NULL) gets the message with table name and offset. Check it whenever the
 * iterator becomes invalid: invalid + OK means end of table. */
int nk_sst_iter_status(const nk_sst_iter *it, nk_errbuf *eb);

#endif /* NK_ENGINE_SST_H */
