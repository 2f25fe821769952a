/*
 * version.h - which tables make up the database, level by level.
 *
 * A version is an immutable snapshot of the LSM shape: for each level, the
 * list of table files. Level 0 holds flushed memtables in file-number order
 * (newer numbers are newer data; their key ranges may overlap). Levels 1..6
 * hold non-overlapping tables sorted by smallest key.
 *
 * Versions and file metadata are reference counted. A read or an iterator
 * pins the version it started on, so a compaction can install a new version
 * and the old tables stay readable until the last reader lets go; a table
 * file is deleted only when no version references it (nk_table_meta.refs).
 *
 * Single-threaded (loop thread): background jobs receive copies of what
 * they need (file numbers, key ranges), never a version.
 */
#ifndef NK_ENGINE_VERSION_H
#define NK_ENGINE_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "nokv/engine/sst.h"

#define NK_LEVELS 7

typedef struct nk_table_meta {
    uint64_t number;
    uint64_t size;
    bool has_xxh64;  /* the manifest records the file's XXH64 */
    uint64_t xxh64;  /* XXH64 of the whole file (version_edit.h tag 65) */
    nk_buf smallest; /* internal key */
    nk_buf largest;  /* internal key */
    uint64_t min_seq;
    uint64_t max_seq;
    uint32_t refs;        /* versions holding this file */
    bool being_compacted; /* an input of the running compaction */
    bool obsolete;        /* removed by an edit: delete the file at refs == 0 */
    nk_sst *table;        /* opened on first use (loop thread), NULL until then */
} nk_table_meta;

typedef struct nk_version {
    uint32_t refs;
    nk_table_meta **files[NK_LEVELS];
    size_t count[NK_LEVELS];
} nk_version;

/* A new file meta with refs = 0 (copies the keys). NULL on OOM. */
nk_table_meta *nk_table_meta_new(uint64_t number, uint64_t size, nk_slice smallest,
                               nk_slice largest, uint64_t min_seq, uint64_t max_seq);

/* Called when a file meta's refs reach 0 (the owner closes the table and,
 * for obsolete files, deletes the file). */
typedef void (*nk_file_release_fn)(void *arg, nk_table_meta *f);

/* An empty version with refs = 1. NULL on OOM. */
nk_version *nk_version_new_empty(void);

void nk_version_ref(nk_version *v);

/* Drop one reference; at zero, release every file (calling rel for files
 * whose refs drop to zero) and free the version. */
void nk_version_unref(nk_version *v, nk_file_release_fn rel, void *arg);

/* One change: remove (level, number) pairs, then add metas. */
typedef struct nk_version_change {
    uint32_t level;
    uint64_t number;    /* for deletes */
    nk_table_meta *file; /* for adds (the new version takes a reference) */
} nk_version_change;

/*
 * Build base + edit as a new version (refs = 1). Deleting a file that is not
 * in base, or adding a number that is already present, is NK_ECORRUPT (eb
 * says which): the manifest and the DB must agree on every file. Files that
 * are deleted get obsolete = true. NK_ENOMEM on OOM (base is unchanged).
 */
int nk_version_apply(const nk_version *base, const nk_version_change *dels, size_t ndel,
                     const nk_version_change *adds, size_t nadd, nk_version **out,
                     nk_errbuf *eb);

/* Total bytes in a level. */
uint64_t nk_version_level_bytes(const nk_version *v, int level);

/* Files of `level` whose user-key range intersects [lo, hi] (user keys;
 * empty slice = unbounded). Appends pointers (no references) to out. */
int nk_version_overlaps(const nk_version *v, int level, nk_slice lo, nk_slice hi,
                        nk_table_meta ***out, size_t *n);

/* Check the level invariants (L1+ sorted and disjoint). NK_ECORRUPT + eb. */
int nk_version_check(const nk_version *v, nk_errbuf *eb);

#endif /* NK_ENGINE_VERSION_H */
