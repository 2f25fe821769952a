/*
 * err.h - NoKV-C error codes.
 *
 * Every fallible function in libnokv returns an int: NK_OK (0) on success or
 * one of the negative NK_E* codes below. Codes are stable (they appear in
 * logs and traces); add new ones at the end of the table only.
 *
 * Human-readable context travels separately (see nk_errbuf): a code says
 * *what class* of failure happened, the message says where and what to do.
 */
#ifndef NK_UTIL_ERR_H
#define NK_UTIL_ERR_H

#include <stddef.h>

/* X-macro table: name, value, message. */
#define NK_ERR_TABLE(X)                                                        \
    X(NK_OK, 0, "ok")                                                          \
    X(NK_EIO, -1, "input/output error")                                        \
    X(NK_ENOENT, -2, "no such file or key")                                    \
    X(NK_EEXIST, -3, "already exists")                                         \
    X(NK_EINVAL, -4, "invalid argument")                                       \
    X(NK_ENOMEM, -5, "out of memory")                                          \
    X(NK_ECORRUPT, -6, "data corruption detected (checksum or format)")        \
    X(NK_EBUSY, -7, "resource busy (locked or in use)")                        \
    X(NK_ENOSPC, -8, "no space left on device")                                \
    X(NK_ECLOSED, -9, "connection closed")                                     \
    X(NK_ECONNREFUSED, -10, "connection refused")                              \
    X(NK_ETIMEDOUT, -11, "timed out")                                          \
    X(NK_ETOOBIG, -12, "message or value too large")                           \
    X(NK_EFAILPOINT, -13, "error injected by failpoint")                       \
    X(NK_ECRASHED, -14, "node crashed (simulated); operation has no effect")   \
    X(NK_ENOTSUP, -15, "operation not supported")                              \
    X(NK_EMODE, -16, "workdir mode does not allow this operation")             \
    X(NK_EAGAIN, -17, "try again later")                                       \
    X(NK_ENOTDIR, -18, "not a directory")                                      \
    X(NK_EISDIR, -19, "is a directory")                                        \
    X(NK_ENOTEMPTY, -20, "directory not empty")                                \
    X(NK_ESTOPPED, -21, "runtime is stopping")                                 \
    X(NK_EPROTO, -22, "protocol error (malformed frame or request)")           \
    X(NK_EADDR, -23, "address invalid or in use")                              \
    X(NK_ERANGE, -24, "value out of range")                                   \
    X(NK_EACCES, -25, "permission denied")                                     \
    X(NK_EROFS, -26, "read-only file system")                                  \
    X(NK_EPERM, -27, "operation not permitted")                                \
    X(NK_EMFILE, -28, "too many open files")

enum nk_err {
#define NK_ERR_ENUM(name, value, msg) name = value,
    NK_ERR_TABLE(NK_ERR_ENUM)
#undef NK_ERR_ENUM
};

/* Static description of a code; never NULL (unknown codes get a generic text). */
const char *nk_strerror(int code);

/* Both, for messages: "no space left on device (NK_ENOSPC)"; never NULL. */
const char *nk_errdesc(int code);

/* Symbolic name ("NK_ECORRUPT"); never NULL. */
const char *nk_errname(int code);

/*
 * A fixed-size buffer for the human part of an error: what failed, where
 * (file, offset, key), and what to do next. Functions that can explain
 * themselves take an `nk_errbuf *` (may be NULL when the caller does not care).
 */
#define NK_ERRBUF_SIZE 512
typedef struct nk_errbuf {
    char msg[NK_ERRBUF_SIZE];
} nk_errbuf;

/* Set the message (printf-style). No-op when eb is NULL. */
void nk_errbuf_set(nk_errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the existing message with context: "ctx: old message". */
void nk_errbuf_wrap(nk_errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* NK_UTIL_ERR_H */
