/*
 * commands.h - the RESP command table and its implementations.
 *
 * nk_resp_db executes one parsed request (argv) against an nk_kv_backend
 * and appends exactly one RESP2 reply to a buffer. It knows nothing about
 * connections: the server (server.h) owns ordering and I/O. Every call runs
 * on the loop thread.
 *
 * Commands (docs/commands.md has the table, with what is not supported):
 * connection  PING ECHO QUIT SELECT HELLO AUTH CLIENT (ID GETNAME SETNAME
 *             SETINFO INFO LIST NO-EVICT NO-TOUCH HELP)
 * strings     GET SET (NX XX GET EX PX EXAT PXAT KEEPTTL) SETNX SETEX PSETEX
 *             GETSET GETDEL GETEX MGET MSET APPEND STRLEN GETRANGE SETRANGE
 *             INCR DECR INCRBY DECRBY INCRBYFLOAT
 * keys        DEL UNLINK EXISTS TYPE RENAME RENAMENX KEYS SCAN EXPIRE PEXPIRE
 *             EXPIREAT PEXPIREAT PERSIST TTL PTTL
 * server      DBSIZE FLUSHDB FLUSHALL TIME INFO CONFIG (GET RESETSTAT HELP)
 *             COMMAND
 * transaction MULTI EXEC DISCARD WATCH UNWATCH
 * Error texts follow Redis 7 ("ERR syntax error", "ERR wrong number of
 * arguments for 'get' command", "ERR unknown command 'x', with args
 * beginning with: 'a' ", ...). Only RESP2 is spoken: HELLO and HELLO 2
 * answer the RESP2 (flat array) form of Redis' HELLO map; HELLO 3 answers
 * "NOPROTO unsupported protocol version", on which clients that try RESP3
 * first (go-redis v9) fall back to RESP2.
 *
 * Sessions: per-connection state (client id and name, library name and
 * version, the MULTI queue) lives in an nk_resp_session, which the server
 * creates per connection. A call with sess == NULL uses one session owned
 * by the db (tests, tools).
 *
 * MULTI/EXEC: commands after MULTI are checked (unknown command, arity) and
 * queued ("+QUEUED"); a failed check makes EXEC answer "EXECABORT ...", as
 * in Redis. EXEC runs the queue without interleaving (everything is on the
 * loop thread) and submits all writes of the transaction as ONE atomic
 * batch, so after a crash either all of them or none exist: while EXEC runs,
 * writes go to an overlay that the transaction's own reads see first. SCAN,
 * KEYS, DBSIZE, FLUSHDB and FLUSHALL are refused inside MULTI ("ERR Command
 * not allowed inside a transaction"), because they read the backend around
 * the overlay. WATCH makes the next EXEC answer a null array when a
 * watched key was written (by anyone), expired, or the keyspace flushed
 * since: every write bumps a generation counter of its key's slot (16384
 * slots by key hash), so a write to another key of the same slot aborts
 * too - spurious, rare and safe, clients retry.
 *
 * Expiry: lazily on read (below) and by a background sweep: every
 * sweep_interval_ms (default 100) the db visits the next sweep_keys
 * (default 1000) keys in key order, wrapping at the end, and deletes the
 * expired ones; when at least a quarter of a full step was expired, the next
 * step runs after 1 ms instead (Redis' active expiry does the same). So each
 * step is bounded, and an expired key that nobody reads is removed within
 * one pass over the keyspace.
 *
 * Writes: a command that writes calls nk_kv_write_batch with call->done /
 * call->done_arg, sets call->wrote, and appends the reply it will give on
 * success. The caller must hold that reply until done fires and replace it
 * with nk_resp_write_error() text if done reports an error. done may run
 * before nk_resp_db_exec returns (synchronous backends).
 *
 * Value envelope (stored in front of every user value; docs/formats.md):
 *
 *   offset size  field
 *   0      1     version, NK_RESP_ENV_VERSION (1)
 *   1      1     flags: bit 0 = has expiry; other bits must be 0
 *   2      8     expire-at, Unix time in ms, little-endian (only if bit 0)
 *   2|10   ...   the user value, unchanged
 *
 * A key whose expire-at is earlier than now (now > expire-at, as Redis)
 * reads as absent everywhere: GET/MGET nil, EXISTS 0, SET NX may create it,
 * SET XX may not, INCR starts from 0, SCAN skips it, TTL -2. Reads that meet
 * an expired key delete it in the background (fire-and-forget write), as
 * Redis' lazy expiry does. INCR/DECR/INCRBYFLOAT, APPEND and SETRANGE keep an
 * existing expiry; SET without KEEPTTL, GETSET and MSET clear it; RENAME
 * moves it with the value. Expiry uses nk_rt_wall (Unix time), because an
 * absolute deadline must survive restarts and EXAT/PXAT are wall-clock by
 * definition; a wall clock stepping backwards only extends lifetimes.
 * There is no per-value checksum: the engine's WAL records and SST blocks
 * are checksummed; an unknown version or flag bit reads as corruption
 * ("ERR corrupted value envelope") instead of being misinterpreted.
 *
 * SCAN cursors never expire: the cursor itself carries a resume position.
 * Clients parse cursors as unsigned 64-bit integers (redis-cli, go-redis)
 * or as JavaScript numbers (node-redis 4), so a cursor is a decimal number
 * below 2^51:
 *
 *   bit  50      1 (every cursor except 0 has it)
 *   bits 49..18  F: low 32 bits of XXH64(resume key, seed 0x6e6b7363)
 *   bits 17..16  L: length of P, 0..2
 *   bits 15..0   P: the first L bytes of the resume key, left-aligned
 *
 * The resume key is the first key of the next page. Resuming:
 *   1. exact: the db remembers recent cursors (a FIFO of 65536 entries /
 *      16 MiB by default) and resumes at the remembered key;
 *   2. otherwise (forgotten, or a restarted server): seek to P and visit at
 *      most 100000 keys looking for the first one whose fingerprint is F;
 *      resume there, or at P itself when none matches.
 * P is a prefix of the resume key and the fingerprint search stops at the
 * first match, so a resume never starts after the true position while the
 * resume key still exists: every key present for the whole iteration is
 * returned at least once (a resume from P repeats keys, as Redis may). The
 * one hole is a 32-bit fingerprint collision: a remembered entry recreated
 * for another key with the same P and F, or, when the resume key itself was
 * deleted, another key after it matching F (about one in 2^32 per key
 * visited by the search). Two scans whose resume keys share P and F share
 * one remembered entry holding the smaller key, which only repeats keys.
 * Keys are visited in bytewise order; keys written or deleted during the
 * iteration may or may not appear. COUNT (default 10, capped at 100000 per
 * call so one call cannot stall the loop) is the number of keys visited,
 * matching or not, as in Redis. Cursor 0 starts (and, returned, ends) an
 * iteration; anything that is not 0 or a well-formed cursor is
 * "ERR invalid cursor".
 */
#ifndef NK_RESP_COMMANDS_H
#define NK_RESP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/resp/backend.h"
#include "nokv/resp/resp.h"
#include "nokv/rt.h"

#define NK_RESP_ENV_VERSION 1u
#define NK_RESP_ENV_FLAG_EXPIRE 0x01u

/* Counters shown by INFO. The server updates the connection and network
 * ones; the db the rest. */
typedef struct nk_resp_stats {
    uint64_t connected_clients;
    uint64_t connections_received;
    uint64_t connections_rejected;     /* over max clients */
    uint64_t output_limit_disconnects; /* client stopped reading */
    uint64_t protocol_errors;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t commands_processed;
    uint64_t error_replies;
    uint64_t keyspace_hits;
    uint64_t keyspace_misses;
    uint64_t expired_keys;
    uint64_t expire_sweeps;        /* background expiry steps */
    uint64_t scan_cursor_searches; /* SCAN resumes of a forgotten cursor */
    uint64_t writes_submitted;
    uint64_t writes_pending;
    uint64_t write_errors;
} nk_resp_stats;

typedef struct nk_resp_db_options {
    const char *sync_policy;    /* "always" | "group" | "none" (INFO, CONFIG GET appendfsync) */
    const char *version;        /* NoKV version for INFO; NULL = "0.1.0-dev" */
    size_t scan_cursors;        /* remembered cursors (exact resume); 0 = 65536 */
    size_t scan_cursor_bytes;   /* their key bytes; 0 = 16 MiB */
    uint32_t max_clients;       /* shown by INFO / CONFIG GET maxclients */
    uint32_t sweep_interval_ms; /* expiry sweep period; 0 = 100 */
    uint32_t sweep_keys;        /* keys visited per sweep step; 0 = 1000 */
} nk_resp_db_options;

typedef struct nk_resp_db nk_resp_db;
typedef struct nk_resp_session nk_resp_session;

/* `rt` supplies the clock and the cursor-id random stream; `be` must
 * outlive the db. opt may be NULL. NK_OK or NK_ENOMEM. */
int nk_resp_db_new(nk_rt *rt, nk_kv_backend *be, const nk_resp_db_options *opt, nk_resp_db **out);
void nk_resp_db_free(nk_resp_db *db);

nk_resp_stats *nk_resp_db_stats(nk_resp_db *db);
/* Per-command counters: entry i of the command table (name, calls, error
 * replies); false past the last entry. */
bool nk_resp_db_command_stats(const nk_resp_db *db, size_t i, const char **name, uint64_t *calls,
                              uint64_t *errors);

/* The listening address shown by INFO (tcp_port). */
void nk_resp_db_set_listen_addr(nk_resp_db *db, const char *addr);

/* Per-connection state (see above). `peer` ("127.0.0.1:5000", may be NULL)
 * is shown by CLIENT INFO / LIST. Client ids count up from 1 per db. Free
 * every session before its db. NK_OK or NK_ENOMEM. */
int nk_resp_session_new(nk_resp_db *db, const char *peer, nk_resp_session **out);
void nk_resp_session_free(nk_resp_session *s);
uint64_t nk_resp_session_id(const nk_resp_session *s);
/* The session holds state a relay could not carry along (inside MULTI, or
 * keys WATCHed): its requests must run where the state is. */
bool nk_resp_session_busy(const nk_resp_session *s);

/* One request. */
typedef struct nk_resp_call {
    const nk_resp_arg *argv; /* in: argc >= 1 */
    size_t argc;
    nk_resp_session *sess; /* in: the connection's session; NULL = the db's own */
    nk_resp_buf *reply;    /* in: exactly one reply is appended */
    nk_kv_done_fn done;    /* in: completion for a write (may be NULL) */
    void *done_arg;
    bool wrote; /* out: a write was submitted with done/done_arg */
    bool read;  /* out: it read the keyspace and wrote nothing: with a
                   backend that has read_barrier, the server holds the
                   reply behind one (backend.h) */
    bool quit;  /* out: QUIT - close after this reply */
} nk_resp_call;

void nk_resp_db_exec(nk_resp_db *db, nk_resp_call *call);

/* The error reply (without '-' and CRLF) that replaces a write's reply when
 * its done reports `status`; nk_resp_read_error the same for a reply held
 * behind a read barrier. NK_EAGAIN (a replicated backend that does not
 * lead) is "TRYAGAIN ...", the code Redis Cluster clients retry on. */
void nk_resp_write_error(int status, char *buf, size_t len);
void nk_resp_read_error(int status, char *buf, size_t len);

/* Envelope helpers (exposed for tests and tools). encode writes at most
 * NK_RESP_ENV_MAX_HDR bytes of header into hdr and returns its length.
 * decode returns NK_OK (with *user / *user_len pointing into val) or
 * NK_ECORRUPT. */
#define NK_RESP_ENV_MAX_HDR 10
size_t nk_resp_env_encode(uint8_t *hdr, bool has_expire, uint64_t expire_at_ms);
int nk_resp_env_decode(const uint8_t *val, size_t len, bool *has_expire, uint64_t *expire_at_ms,
                       const uint8_t **user, size_t *user_len);

/* Redis-style glob match (* ? [abc] [^a] [a-z] \x), bytewise, case-sensitive. */
bool nk_resp_glob_match(const uint8_t *pat, size_t plen, const uint8_t *s, size_t slen);

#endif /* NK_RESP_COMMANDS_H */
