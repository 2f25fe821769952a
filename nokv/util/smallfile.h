/*
 * smallfile.h - read and atomically replace small metadata files.
 *
 * Every piece of workdir metadata (LOCALMETA, MIGRATION_PROGRESS.json, the
 * seed snapshot manifest, ...) is a small file rewritten whole, and each must
 * survive a crash as either the old or the new version, never a torn mix.
 * The protocol, written once here (as LevelDB puts WriteStringToFile over its
 * Env): write <name>.tmp, sync it, rename it over <name>, sync the directory.
 * A crash before the rename leaves the old file (and a stale .tmp, which
 * readers ignore and the next replace truncates); after the dir sync the new
 * one is durable.
 *
 * Failpoints, named by the caller's prefix P: "P.after_tmp" (tmp synced, not
 * renamed), "P.after_rename" (renamed, directory not synced yet).
 */
#ifndef NK_UTIL_SMALLFILE_H
#define NK_UTIL_SMALLFILE_H

#include <stddef.h>

#include "nokv/engine/slice.h"
#include "nokv/rt.h"

/* "<dir>/<name>" into out; NK_ERANGE when it does not fit. */
int nk_path_fmt(char *out, size_t cap, const char *dir, const char *name);

/* Read the whole file into *out (cleared first). NK_ENOENT when absent;
 * NK_ETOOBIG (eb names the file) when larger than max_bytes. */
int nk_smallfile_read(nk_rt *rt, const char *path, size_t max_bytes, nk_buf *out, nk_errbuf *eb);

/* Durably replace <dir>/<name> with data (see above). fp_prefix may be NULL
 * (no failpoints). eb names the file and the step that failed. */
int nk_smallfile_replace(nk_rt *rt, const char *dir, const char *name, const void *data, size_t len,
                         const char *fp_prefix, nk_errbuf *eb);

/* Create directory `path` if missing and make its entry durable (sync of
 * `parent`). NK_OK when it exists already; NK_ENOTDIR when it is a file. */
int nk_dir_ensure(nk_rt *rt, const char *path, const char *parent);

#endif /* NK_UTIL_SMALLFILE_H */
