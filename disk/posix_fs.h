/*
 * posix_fs.h - the file and directory half of the real runtime (POSIX).
 *
 * These functions implement the file/directory operations of nokv/rt.h with
 * exactly the semantics documented there; net/rt_real.c forwards the runtime
 * ops here. They take no runtime argument: they keep no shared state, so
 * every function is safe to call from any thread (job workers included),
 * provided one nk_file is not closed while another thread still uses it.
 *
 * Contract details beyond rt.h:
 *   - Every descriptor is opened O_CLOEXEC; new files get mode 0644 and new
 *     directories 0755 (before umask).
 *   - read_at/write_at loop over EINTR and short transfers; read_at stops
 *     early only at end of file.
 *   - append writes at the size observed under a per-handle mutex, so
 *     concurrent appends through the same handle never overlap. (O_APPEND is
 *     not used: on Linux it would make pwrite ignore its offset.)
 *   - open of a directory fails with NK_EISDIR; EXCL without CREATE and TRUNC
 *     without WRITE are NK_EINVAL.
 *   - remove handles files (unlink) and empty directories (rmdir).
 *   - dir_lock takes flock(LOCK_EX|LOCK_NB) on `<dir>/LOCK` (created if
 *     missing, never deleted) and writes the owner pid into it for operators.
 *     flock locks belong to the open file description, so a second lock of
 *     the same dir fails with NK_EBUSY even inside one process, and the
 *     kernel drops the lock when the owner dies.
 *   - errno mapping (nk_posix_err): ENOENT, EEXIST, ENOSPC/EDQUOT, ENOTDIR,
 *     EISDIR, ENOTEMPTY, ENOMEM map to their NK_E* twin, EWOULDBLOCK to
 *     NK_EBUSY, everything else to NK_EIO.
 */
#ifndef NK_DISK_POSIX_FS_H
#define NK_DISK_POSIX_FS_H

#include <stddef.h>
#include <stdint.h>

#include "nokv/rt.h"

/* Map an errno value to an NK_E* code (see above). */
int nk_posix_err(int errnum);

int nk_posix_file_open(const char *path, unsigned flags, nk_file **out);
int nk_posix_file_read_at(nk_file *f, uint64_t off, void *buf, size_t len, size_t *nread);
int nk_posix_file_write_at(nk_file *f, uint64_t off, const void *buf, size_t len);
int nk_posix_file_append(nk_file *f, const void *buf, size_t len);
int nk_posix_file_sync(nk_file *f);
int nk_posix_file_size(nk_file *f, uint64_t *size);
int nk_posix_file_truncate(nk_file *f, uint64_t size);
int nk_posix_file_close(nk_file *f);

int nk_posix_stat(const char *path, nk_stat *st);
int nk_posix_dir_create(const char *path);
/* out must be empty on entry; on error it stays empty. */
int nk_posix_dir_list(const char *path, nk_names *out);
int nk_posix_rename(const char *from, const char *to);
int nk_posix_remove(const char *path);
int nk_posix_link(const char *from, const char *to);
int nk_posix_dir_lock_held(const char *dir, bool *held);
int nk_posix_fs_avail(const char *path, uint64_t *avail);
int nk_posix_dir_sync(const char *path);
int nk_posix_dir_lock(const char *dir, nk_dirlock **out);
void nk_posix_dir_unlock(nk_dirlock *lock);

#endif /* NK_DISK_POSIX_FS_H */
