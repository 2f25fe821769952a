/*
 * service.h - the coordinator: store registry, learned region routing, ID
 * allocator and timestamp oracle, as one app on a runtime.
 *
 * `nokv coordinator` runs it on the real runtime; the simulator boots the
 * same code on a simulated node. Protocol: nokv/proto/coord.h.
 *
 * State and where it lives (all in the workdir, which it locks):
 *   - COORD.fence: the allocator fences. Every ID below id_fence and every
 *     timestamp below ts_fence may already have been handed out. An answer
 *     to AllocID/Tso is sent only once the fence covering it is durable
 *     (tmp + sync + rename + dir sync), and fences move ahead in windows
 *     (cfg.window, default 1000), so most requests cost no I/O. A restart
 *     resumes at max(fence, --id-start / --ts-start): a number is never
 *     handed out twice, whatever was lost in a crash.
 *   - COORD.meta: the store registry (id, address) and the region catalog
 *     (descriptor, last known leader). A RegionReport that changes the
 *     catalog, or a heartbeat from a new store, is answered once the new
 *     catalog is durable, so `accepted` means "will survive a crash". Leader
 *     changes inside one epoch are soft state: kept in memory, written with
 *     the next catalog write (a lost one is re-learned from the next report).
 *   Both files are wire envelopes (magic, version, xxhash): a file that does
 *   not verify stops the start with NK_ECORRUPT naming it, never guessed at.
 *   Writes issued in the same loop iteration share one flush.
 *
 * Lookups (GetRegion, GetRegionByKey, ListRegions) also wait for a pending
 * catalog write, so nothing the coordinator ever said about routing is
 * taken back by a crash.
 *
 * Routing is learned: a report whose epoch is older than the known one is
 * not accepted; a descriptor replaces overlapping regions only when its
 * version is newer than each of theirs (a split or merge moved the range).
 * Liveness: a store is alive while its last heartbeat is younger than
 * cfg.store_timeout_ns; after a restart every store is dead until it beats.
 *
 * A connection must open with a HELLO for NK_SERVICE_COORD; any malformed or
 * unexpected frame closes that connection only.
 *
 * Failpoints: "coord.fence.before_rename", "coord.meta.before_rename".
 */
#ifndef NK_COORD_SERVICE_H
#define NK_COORD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/rt.h"

#define NK_COORD_FENCE_FILE "COORD.fence"
#define NK_COORD_META_FILE "COORD.meta"
#define NK_COORD_MAX_REGIONS 100000u

typedef struct nk_coord_service_config {
    const char *addr;          /* "127.0.0.1:2379" */
    const char *workdir;       /* created if missing */
    uint64_t id_start;         /* first ID of a fresh workdir, and a floor after restart (0 = 1) */
    uint64_t ts_start;         /* same for timestamps (0 = 1) */
    uint64_t window;           /* fence step (0 = 1000) */
    uint64_t store_timeout_ns; /* heartbeat age after which a store is dead (0 = 5 s) */
    /* A planted bug for the simulator's checker (`nokv-sim --set
     * bug=reply-before-fence scenarios/coord_crash`): answer AllocID/Tso
     * before the fence is durable. Never set it anywhere else. */
    bool test_reply_before_fence;
} nk_coord_service_config;

/* What start restored (for the start-up line of `nokv coordinator`). */
typedef struct nk_coord_service_info {
    size_t regions, stores;
    uint64_t next_id, next_ts;
    bool fresh; /* the workdir was initialised by this start */
} nk_coord_service_info;

/* Counters for tests and `nokv status`. */
typedef struct nk_coord_service_stats {
    uint64_t requests, bad_frames, fence_writes, meta_writes, persist_failures;
    size_t conns;
    /* live views (for /metrics): registry sizes, stores whose last liveness
     * verdict was alive, and the allocators' next numbers */
    size_t stores, stores_alive, regions;
    uint64_t next_id, next_ts;
} nk_coord_service_stats;

typedef struct nk_coord_service nk_coord_service;

/* Recover from the workdir and listen. On error nothing is left open. */
int nk_coord_service_start(nk_rt *rt, const nk_coord_service_config *cfg, nk_coord_service **out,
                           nk_errbuf *eb);

int nk_coord_service_addr(nk_coord_service *s, char *buf, size_t len);
void nk_coord_service_info_get(nk_coord_service *s, nk_coord_service_info *info);
void nk_coord_service_stats_get(nk_coord_service *s, nk_coord_service_stats *st);

/* Graceful stop (SIGTERM): stop listening, write pending state, close the
 * connections, then nk_rt_stop(). */
void nk_coord_service_shutdown(nk_coord_service *s);

/* NK_OK, or the first persistence error met (the exit status of the CLI). */
int nk_coord_service_exit_status(const nk_coord_service *s);

/* Release everything. Safe after a simulated crash (no I/O is needed). */
void nk_coord_service_free(nk_coord_service *s);

#endif /* NK_COORD_SERVICE_H */
