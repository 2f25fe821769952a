/*
 * posix_fs.c - POSIX files and directories for the real runtime.
 * Contract in posix_fs.h.
 */
#include "disk/posix_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

struct nk_file {
    int fd;
    /* Serialises append (size + write) so two appends never land at the same
     * offset, and guards the cached size below. */
    pthread_mutex_t append_mu;
    /* The file's size as this handle knows it: read once with fstat, then
     * kept up to date by append, write_at and truncate. An fstat per append
     * cost a syscall plus an inode timestamp update per WAL record (about a
     * third of fill time in nokv-bench). rt.h: one writing handle per file. */
    bool size_known;
    uint64_t size;
};

struct nk_dirlock {
    int fd;
};

int nk_posix_err(int errnum)
{
    switch (errnum) {
    case 0:
        return NK_OK;
    case ENOENT:
        return NK_ENOENT;
    case EEXIST:
        return NK_EEXIST;
    case ENOSPC:
    case EDQUOT:
        return NK_ENOSPC;
    case ENOTDIR:
        return NK_ENOTDIR;
    case EISDIR:
        return NK_EISDIR;
    case ENOTEMPTY:
        return NK_ENOTEMPTY;
    case ENOMEM:
        return NK_ENOMEM;
    case EWOULDBLOCK:
        return NK_EBUSY;
    case EACCES:
        return NK_EACCES;
    case EROFS:
        return NK_EROFS;
    case EPERM:
        return NK_EPERM;
    case EMFILE:
    case ENFILE:
        return NK_EMFILE;
    case EFBIG:
        return NK_ETOOBIG;
    default:
        return NK_EIO;
    }
}

/* off_t is signed: offsets beyond its range cannot be expressed. */
static bool off_ok(uint64_t off, size_t len)
{
    return off <= (uint64_t)INT64_MAX && len <= (uint64_t)INT64_MAX - off;
}

int nk_posix_file_open(const char *path, unsigned flags, nk_file **out)
{
    if (path == NULL || out == NULL) {
        return NK_EINVAL;
    }
    *out = NULL;
    if ((flags & ~(NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL | NK_OPEN_TRUNC)) != 0 ||
        ((flags & NK_OPEN_EXCL) && !(flags & NK_OPEN_CREATE)) ||
        ((flags & NK_OPEN_TRUNC) && !(flags & NK_OPEN_WRITE))) {
        return NK_EINVAL;
    }
    int oflags = O_CLOEXEC | ((flags & NK_OPEN_WRITE) ? O_RDWR : O_RDONLY);
    if (flags & NK_OPEN_CREATE) {
        oflags |= O_CREAT;
    }
    if (flags & NK_OPEN_EXCL) {
        oflags |= O_EXCL;
    }
    if (flags & NK_OPEN_TRUNC) {
        oflags |= O_TRUNC;
    }
    nk_file *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NK_ENOMEM;
    }
    int fd;
    do {
        fd = open(path, oflags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int rc = nk_posix_err(errno);
        free(f);
        return rc;
    }
    /* A read-only open of a directory succeeds in POSIX; the runtime contract
     * says files only, so report it here rather than at the first read. */
    struct stat sb;
    int src = fstat(fd, &sb) != 0 ? nk_posix_err(errno) : NK_OK;
    if (src == NK_OK && S_ISDIR(sb.st_mode)) {
        src = NK_EISDIR;
    }
    if (src != NK_OK) {
        int rc = src;
        close(fd);
        free(f);
        return rc;
    }
    if (pthread_mutex_init(&f->append_mu, NULL) != 0) {
        close(fd);
        free(f);
        return NK_ENOMEM;
    }
    f->fd = fd;
    *out = f;
    return NK_OK;
}

int nk_posix_file_read_at(nk_file *f, uint64_t off, void *buf, size_t len, size_t *nread)
{
    *nread = 0;
    if (f == NULL || (len > 0 && buf == NULL) || !off_ok(off, len)) {
        return NK_EINVAL;
    }
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(f->fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            *nread = done;
            return nk_posix_err(errno);
        }
        if (n == 0) {
            break; /* end of file */
        }
        done += (size_t)n;
    }
    *nread = done;
    return NK_OK;
}

static int write_all_at(int fd, uint64_t off, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return nk_posix_err(errno);
        }
        if (n == 0) {
            return NK_EIO; /* no progress and no error: do not spin */
        }
        done += (size_t)n;
    }
    return NK_OK;
}

int nk_posix_file_write_at(nk_file *f, uint64_t off, const void *buf, size_t len)
{
    if (f == NULL || (len > 0 && buf == NULL) || !off_ok(off, len)) {
        return NK_EINVAL;
    }
    int rc = write_all_at(f->fd, off, buf, len);
    pthread_mutex_lock(&f->append_mu);
    if (rc != NK_OK) {
        f->size_known = false; /* a short write may have grown the file */
    } else if (f->size_known && off + len > f->size) {
        f->size = off + len;
    }
    pthread_mutex_unlock(&f->append_mu);
    return rc;
}

int nk_posix_file_append(nk_file *f, const void *buf, size_t len)
{
    if (f == NULL || (len > 0 && buf == NULL)) {
        return NK_EINVAL;
    }
    pthread_mutex_lock(&f->append_mu);
    int rc = NK_OK;
    if (!f->size_known) {
        struct stat sb;
        if (fstat(f->fd, &sb) != 0) {
            rc = nk_posix_err(errno);
        } else {
            f->size = (uint64_t)sb.st_size;
            f->size_known = true;
        }
    }
    if (rc == NK_OK && !off_ok(f->size, len)) {
        rc = NK_EINVAL;
    }
    if (rc == NK_OK) {
        rc = write_all_at(f->fd, f->size, buf, len);
        if (rc == NK_OK) {
            f->size += len;
        } else {
            f->size_known = false; /* partial write: ask the file next time */
        }
    }
    pthread_mutex_unlock(&f->append_mu);
    return rc;
}

int nk_posix_file_sync(nk_file *f)
{
    if (f == NULL) {
        return NK_EINVAL;
    }
    int r;
    do {
        r = fdatasync(f->fd);
    } while (r != 0 && errno == EINTR);
    return r == 0 ? NK_OK : nk_posix_err(errno);
}

int nk_posix_file_size(nk_file *f, uint64_t *size)
{
    if (f == NULL || size == NULL) {
        return NK_EINVAL;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        return nk_posix_err(errno);
    }
    *size = (uint64_t)sb.st_size;
    return NK_OK;
}

int nk_posix_file_truncate(nk_file *f, uint64_t size)
{
    if (f == NULL || size > (uint64_t)INT64_MAX) {
        return NK_EINVAL;
    }
    pthread_mutex_lock(&f->append_mu); /* keep append's size+write atomic */
    int r;
    do {
        r = ftruncate(f->fd, (off_t)size);
    } while (r != 0 && errno == EINTR);
    int rc = r == 0 ? NK_OK : nk_posix_err(errno);
    if (rc == NK_OK) {
        f->size = size;
        f->size_known = true;
    } else {
        f->size_known = false;
    }
    pthread_mutex_unlock(&f->append_mu);
    return rc;
}

int nk_posix_file_close(nk_file *f)
{
    if (f == NULL) {
        return NK_OK;
    }
    /* Never retry close on EINTR: on Linux the descriptor is already gone and
     * a retry could close a descriptor another thread just opened. */
    int rc = close(f->fd) == 0 || errno == EINTR ? NK_OK : nk_posix_err(errno);
    pthread_mutex_destroy(&f->append_mu);
    free(f);
    return rc;
}

int nk_posix_stat(const char *path, nk_stat *st)
{
    if (path == NULL || st == NULL) {
        return NK_EINVAL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        return nk_posix_err(errno);
    }
    st->is_dir = S_ISDIR(sb.st_mode);
    st->size = (uint64_t)sb.st_size;
    return NK_OK;
}

int nk_posix_dir_create(const char *path)
{
    if (path == NULL) {
        return NK_EINVAL;
    }
    return mkdir(path, 0755) == 0 ? NK_OK : nk_posix_err(errno);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int nk_posix_dir_list(const char *path, nk_names *out)
{
    if (path == NULL || out == NULL) {
        return NK_EINVAL;
    }
    out->names = NULL;
    out->count = 0;
    DIR *d = opendir(path);
    if (d == NULL) {
        return nk_posix_err(errno);
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = NK_OK;
    for (;;) {
        /* readdir is thread-safe on distinct DIR streams (glibc, POSIX 2024);
         * errno distinguishes the end of the directory from an error. */
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                rc = nk_posix_err(errno);
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL) {
                rc = NK_ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[count] = strdup(de->d_name);
        if (names[count] == NULL) {
            rc = NK_ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (rc != NK_OK) {
        for (size_t i = 0; i < count; i++) {
            free(names[i]);
        }
        free(names);
        return rc;
    }
    /* Bytewise order, independent of locale and of the file system's own
     * directory order, so every caller (and the simulator) agrees. */
    if (count > 1) {
        qsort(names, count, sizeof(*names), cmp_names);
    }
    out->names = names;
    out->count = count;
    return NK_OK;
}

int nk_posix_rename(const char *from, const char *to)
{
    if (from == NULL || to == NULL) {
        return NK_EINVAL;
    }
    return rename(from, to) == 0 ? NK_OK : nk_posix_err(errno);
}

int nk_posix_link(const char *from, const char *to)
{
    if (from == NULL || to == NULL) {
        return NK_EINVAL;
    }
    /* linkat without AT_SYMLINK_FOLLOW: link the entry itself, as link(2)
     * does on Linux. */
    if (linkat(AT_FDCWD, from, AT_FDCWD, to, 0) == 0) {
        return NK_OK;
    }
    int e = errno;
    if (e == EXDEV) {
        return NK_ENOTSUP;
    }
    if (e == EPERM) {
        struct stat st;
        if (stat(from, &st) == 0 && S_ISDIR(st.st_mode)) {
            return NK_EISDIR;
        }
    }
    return nk_posix_err(e);
}

int nk_posix_fs_avail(const char *path, uint64_t *avail)
{
    if (path == NULL || avail == NULL) {
        return NK_EINVAL;
    }
    struct statvfs sv;
    if (statvfs(path, &sv) != 0) {
        return nk_posix_err(errno);
    }
    *avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return NK_OK;
}

int nk_posix_remove(const char *path)
{
    if (path == NULL) {
        return NK_EINVAL;
    }
    if (unlink(path) == 0) {
        return NK_OK;
    }
    /* Linux reports EISDIR for unlink of a directory, POSIX allows EPERM. */
    if (errno == EISDIR || errno == EPERM) {
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (rmdir(path) == 0) {
                return NK_OK;
            }
            return errno == EEXIST ? NK_ENOTEMPTY : nk_posix_err(errno);
        }
        errno = EPERM;
    }
    return nk_posix_err(errno);
}

int nk_posix_dir_sync(const char *path)
{
    if (path == NULL) {
        return NK_EINVAL;
    }
    int fd;
    do {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return nk_posix_err(errno);
    }
    int r;
    do {
        r = fsync(fd);
    } while (r != 0 && errno == EINTR);
    int rc = r == 0 ? NK_OK : nk_posix_err(errno);
    close(fd);
    return rc;
}

int nk_posix_dir_lock(const char *dir, nk_dirlock **out)
{
    if (dir == NULL || out == NULL) {
        return NK_EINVAL;
    }
    *out = NULL;
    size_t n = strlen(dir);
    char *path = malloc(n + sizeof("/LOCK"));
    if (path == NULL) {
        return NK_ENOMEM;
    }
    memcpy(path, dir, n);
    memcpy(path + n, "/LOCK", sizeof("/LOCK"));
    nk_dirlock *lk = malloc(sizeof(*lk));
    if (lk == NULL) {
        free(path);
        return NK_ENOMEM;
    }
    int fd;
    do {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    free(path);
    if (fd < 0) {
        free(lk);
        return nk_posix_err(errno);
    }
    int r;
    do {
        r = flock(fd, LOCK_EX | LOCK_NB);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        int rc = errno == EWOULDBLOCK ? NK_EBUSY : nk_posix_err(errno);
        close(fd);
        free(lk);
        return rc;
    }
    /* Owner pid for humans ("who holds this workdir?"); best effort, the lock
     * itself is the flock, not the file contents. */
    char pid[32];
    int plen = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && plen > 0) {
        (void)write_all_at(fd, 0, pid, (size_t)plen);
    }
    lk->fd = fd;
    *out = lk;
    return NK_OK;
}

int nk_posix_dir_lock_held(const char *dir, bool *held)
{
    if (dir == NULL || held == NULL) {
        return NK_EINVAL;
    }
    *held = false;
    size_t n = strlen(dir);
    char *path = malloc(n + sizeof("/LOCK"));
    if (path == NULL) {
        return NK_ENOMEM;
    }
    memcpy(path, dir, n);
    memcpy(path + n, "/LOCK", sizeof("/LOCK"));
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    free(path);
    if (fd < 0) {
        return errno == ENOENT ? NK_OK : nk_posix_err(errno);
    }
    /* flock needs no write access: probe with a read-only descriptor, so
     * the file is neither created nor written. */
    int r;
    do {
        r = flock(fd, LOCK_EX | LOCK_NB);
    } while (r != 0 && errno == EINTR);
    int rc = NK_OK;
    if (r == 0) {
        (void)flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        *held = true;
    } else {
        rc = nk_posix_err(errno);
    }
    close(fd);
    return rc;
}

void nk_posix_dir_unlock(nk_dirlock *lock)
{
    if (lock == NULL) {
        return;
    }
    (void)flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock);
}
