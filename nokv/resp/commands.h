/*
 * commands.h - the RESP command table and its implementations.
 *
 * nk_resp_db executes one parsed request (argv) against an nk_kv_backend
 * and appends exactly one RESP2 reply to a buffer. It knows nothing about
 * connections: the server (server.h) owns ordering and I/O. Every call runs
 * on the loop thread.
 *
 * Commands: PING [msg], ECHO, GET, SET key value [NX|XX] [GET]
 * [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], DEL, EXISTS, MGET, MSET, INCR, DECR,
 * INCRBY, DECRBY, TTL, PTTL, TYPE, SCAN cursor [MATCH p] [COUNT n]
 * [TYPE t], DBSIZE, INFO [section ...], COMMAND [COUNT|DOCS|INFO|LIST|
 * HELP], CONFIG GET (read-only view for tools), SELECT 0, QUIT.
 * Error texts follow Redis 7 ("ERR syntax error", "ERR wrong number of
 * arguments for 'get' command", "ERR unknown command 'x', with args
 * beginning with: 'a' ", ...).
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
 * Redis' lazy expiry does. INCR/DECR keep an existing expiry; SET without
 * KEEPTTL and MSET clear it. Expiry uses nk_rt_wall (Unix time), because an
 * absolute deadline must survive restarts and EXAT/PXAT are wall-clock by
 * definition; a wall clock stepping backwards only extends lifetimes.
 * There is no per-value checksum: the engine's WAL records and SST blocks
 * are checksummed; an unknown version or flag bit reads as corruption
 * ("ERR corrupted value envelope") instead of being misinterpreted.
 *
 * SCAN cursors: redis-cli --scan parses the cursor with strtoull, so
 * cursors are decimal numbers. Keys are visited in bytewise order; when a
 * page ends before the last key, the server remembers the next key under a
 * fresh cursor id in a bounded FIFO table (default 4096 cursors / 16 MiB of
 * keys; the oldest entry is evicted first) and returns that id. Cursor 0
 * starts (and, returned, ends) an iteration. A cursor can be re-sent (an
 * idempotent retry) until it is evicted; an unknown or evicted cursor is
 * "ERR invalid cursor" - the client restarts from 0. Cursor ids are
 * (20 random bits drawn at start-up << 32) | sequence, below 2^52 so every
 * client language parses them exactly, and a cursor from an earlier process
 * is almost surely rejected instead of resuming somewhere arbitrary.
 * Guarantee: a full iteration returns every key that exists (unexpired)
 * for its whole duration exactly once, in key order; keys written or
 * deleted meanwhile may or may not appear, never twice. COUNT (default 10,
 * capped at 100000 per call so one call cannot stall the loop) is the
 * number of keys visited, matching or not, as in Redis.
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
    uint64_t writes_submitted;
    uint64_t writes_pending;
    uint64_t write_errors;
} nk_resp_stats;

typedef struct nk_resp_db_options {
    const char *sync_policy;  /* "always" | "group" | "none" (INFO, CONFIG GET appendfsync) */
    const char *version;      /* NoKV version for INFO; NULL = "0.1.0-dev" */
    size_t scan_cursors;      /* cursor table entries; 0 = 4096 */
    size_t scan_cursor_bytes; /* cursor table key bytes; 0 = 16 MiB */
    uint32_t max_clients;     /* shown by INFO / CONFIG GET maxclients */
} nk_resp_db_options;

typedef struct nk_resp_db nk_resp_db;

/* `rt` supplies the clock and the cursor-id random stream; `be` must
 * outlive the db. opt may be NULL. NK_OK or NK_ENOMEM. */
int nk_resp_db_new(nk_rt *rt, nk_kv_backend *be, const nk_resp_db_options *opt, nk_resp_db **out);
void nk_resp_db_free(nk_resp_db *db);

nk_resp_stats *nk_resp_db_stats(nk_resp_db *db);

/* The listening address shown by INFO (tcp_port). */
void nk_resp_db_set_listen_addr(nk_resp_db *db, const char *addr);

/* One request. */
typedef struct nk_resp_call {
    const nk_resp_arg *argv; /* in: argc >= 1 */
    size_t argc;
    nk_resp_buf *reply; /* in: exactly one reply is appended */
    nk_kv_done_fn done; /* in: completion for a write (may be NULL) */
    void *done_arg;
    bool wrote; /* out: a write was submitted with done/done_arg */
    bool quit;  /* out: QUIT - close after this reply */
} nk_resp_call;

void nk_resp_db_exec(nk_resp_db *db, nk_resp_call *call);

/* The error reply (without '-' and CRLF) that replaces a write's reply when
 * its done reports `status`. */
void nk_resp_write_error(int status, char *buf, size_t len);

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
