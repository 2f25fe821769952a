/*
 * backend.h - the storage interface the RESP commands run against.
 *
 * A backend is an ordered map from byte-string keys to byte-string values
 * (bytewise key order, a proper prefix first). The storage engine implements
 * it for `nokv serve`; nokv/resp/membackend.h is an in-memory version for
 * tests, the simulator and fuzzing. Values are opaque here: the command
 * layer stores its own envelope in them (commands.h).
 *
 * Threading: every call and every callback happens on the node's loop
 * thread (rt.h), so a backend needs no locks against the server.
 *
 * Reads are synchronous and zero-copy: get and scan hand the bytes to a
 * visitor function, valid only during that call. A visitor must not call
 * back into the backend (no nested get/scan/write); it copies what it needs.
 *
 * Writes:
 *   - `write` applies a batch of puts and deletes atomically (all or none:
 *     MSET, multi-key DEL). Keys and values are copied before it returns;
 *     the caller may free its buffers right away.
 *   - Visible on submit: once write returns NK_OK, later get/scan calls see
 *     the batch, before it is durable. (Replies stay honest because the
 *     server releases replies per connection strictly in request order: a
 *     reply computed after a write is never sent before that write's own
 *     reply, which waits for `done`.)
 *   - `done(arg, status)` reports durability per the backend's sync policy
 *     (always / group / none): NK_OK once durable, or an error. It is called
 *     exactly once for every write that returned NK_OK - possibly before
 *     write returns (a synchronous backend), otherwise later from the loop
 *     (timer or job completion), in any order relative to other writes.
 *     `done` may be NULL (fire and forget). When write returns an error the
 *     batch was not applied and done is never called.
 *   - A failed `done` means the batch's durability is unknown; it stays
 *     visible. A backend whose log can no longer be trusted must fail every
 *     later call (fail-stop) rather than silently lose acknowledged data.
 *   - Shutdown: freeing a backend calls every outstanding done with
 *     NK_ESTOPPED before it returns, so callers can release their
 *     completion state. Owners free the server first, then the backend.
 *
 * Return codes: NK_OK, NK_ENOENT (get: no such key), NK_ENOTSUP (count: not
 * cheap), NK_ENOMEM, NK_ETOOBIG, NK_EIO, NK_ECORRUPT, NK_ECRASHED, ...
 */
#ifndef NK_RESP_BACKEND_H
#define NK_RESP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/util/err.h"

/* Durability completion of one write batch. */
typedef void (*nk_kv_done_fn)(void *arg, int status);

/* get: called once with the value when the key exists. */
typedef void (*nk_kv_value_fn)(void *arg, const uint8_t *val, size_t val_len);

/* scan: called per key in order; return false to stop. */
typedef bool (*nk_kv_scan_fn)(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                              size_t val_len);

/* One operation of a write batch. */
typedef struct nk_kv_write {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val; /* ignored when del */
    size_t val_len;
    bool del;
} nk_kv_write;

typedef struct nk_kv_backend_ops {
    /* Point read: fn(arg, value) once and NK_OK, or NK_ENOENT (fn not called). */
    int (*get)(void *impl, const uint8_t *key, size_t key_len, nk_kv_value_fn fn, void *arg);
    /* Atomic batch of n >= 1 operations; see the write contract above. A key
     * appearing twice in one batch: the later operation wins. */
    int (*write)(void *impl, const nk_kv_write *ops, size_t n, nk_kv_done_fn done, void *arg);
    /* Visit keys >= start (start_len 0: from the first key) in bytewise
     * order, at most `limit` of them (0: no limit), until fn returns false. */
    int (*scan)(void *impl, const uint8_t *start, size_t start_len, size_t limit, nk_kv_scan_fn fn,
                void *arg);
    /* Number of keys if cheap (may include keys the command layer considers
     * expired), else NK_ENOTSUP. May be NULL (= NK_ENOTSUP). */
    int (*count)(void *impl, uint64_t *n);
    /* Linearizable reads (may be NULL: every read is then final at once, as
     * in a standalone engine). Called by the server after a command that
     * read without writing; its reply is held until done(arg, status)
     * exactly like a write's, and an error status replaces it with an error
     * reply. A replicated backend confirms it still leads (ReadIndex) and
     * waits until everything the read may have seen is committed. */
    int (*read_barrier)(void *impl, nk_kv_done_fn done, void *arg);
    /* Relaying (may be NULL): when the data does not live here but at
     * another server that this backend knows, write that server's client
     * (RESP) address into addr and return NK_OK; the RESP server then relays
     * the connection's requests there and its replies back, in order.
     * NK_ENOENT: serve the request here. */
    int (*route)(void *impl, char *addr, size_t cap);
} nk_kv_backend_ops;

typedef struct nk_kv_backend {
    const nk_kv_backend_ops *ops;
    void *impl;
    const char *name; /* for INFO ("memory", "lsm") */
    /* Per-request limits, for the error a refused write gets (0 = none):
     * the largest value, and the most key + value bytes of one write. */
    uint64_t max_value_bytes;
    uint64_t max_write_bytes;
    /* Optional (NULL = absent; a zeroed struct has none): `write` where each put stores prefix[i] ‖
     * ops[i].val, so the command layer's small envelope goes in front of a
     * large value without copying the value next to it. */
    int (*write_prefixed)(void *impl, const nk_kv_write *ops, const uint8_t *const *prefix,
                          const size_t *prefix_len, size_t n, nk_kv_done_fn done, void *arg);
} nk_kv_backend;

static inline int nk_kv_get(nk_kv_backend *b, const uint8_t *key, size_t key_len, nk_kv_value_fn fn,
                            void *arg)
{
    return b->ops->get(b->impl, key, key_len, fn, arg);
}

static inline int nk_kv_write_batch(nk_kv_backend *b, const nk_kv_write *ops, size_t n,
                                    nk_kv_done_fn done, void *arg)
{
    return b->ops->write(b->impl, ops, n, done, arg);
}

/* One put: a batch of one. */
static inline int nk_kv_put(nk_kv_backend *b, const uint8_t *key, size_t key_len,
                            const uint8_t *val, size_t val_len, nk_kv_done_fn done, void *arg)
{
    nk_kv_write w = {key, key_len, val, val_len, false};
    return b->ops->write(b->impl, &w, 1, done, arg);
}

/* One delete (deleting a missing key is not an error). */
static inline int nk_kv_del(nk_kv_backend *b, const uint8_t *key, size_t key_len,
                            nk_kv_done_fn done, void *arg)
{
    nk_kv_write w = {key, key_len, NULL, 0, true};
    return b->ops->write(b->impl, &w, 1, done, arg);
}

static inline int nk_kv_scan(nk_kv_backend *b, const uint8_t *start, size_t start_len, size_t limit,
                             nk_kv_scan_fn fn, void *arg)
{
    return b->ops->scan(b->impl, start, start_len, limit, fn, arg);
}

static inline int nk_kv_count(nk_kv_backend *b, uint64_t *n)
{
    if (b->ops->count == NULL) {
        return NK_ENOTSUP;
    }
    return b->ops->count(b->impl, n);
}

#endif /* NK_RESP_BACKEND_H */
