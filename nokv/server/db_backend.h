/*
 * db_backend.h - the storage engine as a RESP backend (nokv/resp/backend.h).
 *
 * Durability follows the server's --sync policy:
 *   always  every write's `done` fires once its WAL record is fsynced; many
 *           concurrent writes share one fsync (group commit). The default:
 *           an acknowledged write survives power loss.
 *   group   `done` fires when the write is in the WAL (page cache); a timer
 *           fsyncs the WAL every `group_interval` (default 10 ms), so a power
 *           loss loses at most that window. A process crash loses nothing.
 *   none    `done` fires when the write is in the WAL; the WAL is fsynced
 *           only when segments rotate, on flush and on shutdown. A process
 *           crash loses nothing; a power loss may lose recent writes.
 * Reads go straight to the engine; scans use an engine iterator.
 *
 * Limits: a value (RESP bulk) is at most NK_SERVE_MAX_VALUE bytes (127 MiB)
 * and one write - all keys and values of a SET, MSET or DEL together - at
 * most NK_BATCH_MAX_BYTES (128 MiB), because a write is one WAL record. A
 * write over them is refused alone (NK_ETOOBIG, nothing copied or logged);
 * the engine stays writable.
 */
#ifndef NK_SERVER_DB_BACKEND_H
#define NK_SERVER_DB_BACKEND_H

#include "nokv/engine/db.h"
#include "nokv/resp/backend.h"

/* The largest value `nokv serve` accepts: the RESP bulk limit. The engine's
 * NK_VALUE_MAX is 64 bytes more, room for the command layer's envelope. */
#define NK_SERVE_MAX_VALUE (127u * 1024u * 1024u)

typedef enum nk_sync_policy {
    NK_SYNC_ALWAYS = 0,
    NK_SYNC_GROUP = 1,
    NK_SYNC_NONE = 2,
} nk_sync_policy;

const char *nk_sync_policy_name(nk_sync_policy p);
int nk_sync_policy_parse(const char *s, nk_sync_policy *out);

typedef struct nk_db_backend nk_db_backend;

/* Wrap an open db (not owned). group_interval_ns 0 = 10 ms. */
int nk_db_backend_new(nk_rt *rt, nk_db *db, nk_sync_policy policy, uint64_t group_interval_ns,
                      nk_db_backend **out);

/* The nk_kv_backend view (valid while the backend lives). */
nk_kv_backend *nk_db_backend_kv(nk_db_backend *b);

/* Stop the group timer. Writes already submitted complete through the db. */
void nk_db_backend_free(nk_db_backend *b);

#endif /* NK_SERVER_DB_BACKEND_H */
