/*
 * fsutil.h - small-file idioms over the runtime (nokv/rt.h), written once.
 *
 * Like LevelDB's WriteStringToFile over its Env: the steps that make a small
 * file replace its old version atomically and durably, and a bounded
 * whole-file read, so modules holding small metadata files (LOCALMETA,
 * snapshot payloads, fences) do not each repeat them.
 */
#ifndef NK_UTIL_FSUTIL_H
#define NK_UTIL_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/rt.h"

/*
 * Replace <dir>/<name> with data: write <name>.tmp, sync it, rename it over
 * <name>, sync dir. A crash leaves the old or the new file, never a mix (a
 * leftover .tmp is garbage the owner may remove). `fp` (may be NULL) names a
 * failpoint prefix: "<fp>.after_tmp" (tmp synced, not renamed) and
 * "<fp>.after_rename" (renamed, dir not synced) are checked.
 */
int nk_fs_write_atomic(nk_rt *rt, const char *dir, const char *name, const void *data, size_t len,
                       const char *fp);

/* Read a whole file of at most max bytes into a malloc'd buffer (NK_ETOOBIG
 * above it; NK_ENOENT when absent). */
int nk_fs_read_all(nk_rt *rt, const char *path, size_t max, uint8_t **out, size_t *len);

/* Create directory `path` if missing and make its entry durable (sync of
 * its parent `parent`). NK_OK when it exists already. */
int nk_fs_ensure_dir(nk_rt *rt, const char *path, const char *parent);

#endif /* NK_UTIL_FSUTIL_H */
