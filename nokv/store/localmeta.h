/*
 * localmeta.h - a store's local truth: who it is and which regions it hosts.
 *
 * The coordinator routes by what stores report; it never creates a store's
 * truth. That truth is this file, <workdir>/LOCALMETA: the store id, every
 * region descriptor the store hosts (or hosted: tombstones are kept so a
 * removed peer never comes back as a ghost), each region's local state, and
 * the topology events applied locally but not yet acknowledged by the
 * coordinator (delivered when it is reachable again).
 *
 * A restart recovers every hosted peer from LOCALMETA plus the raft log
 * (raftlog.h); the applied index of each region lives with the data it
 * describes (in the engine, written in the same batch as the applied
 * entries), so applying never costs a second fsync and replay never applies
 * an entry twice or skips one.
 *
 * Format: one envelope (nokv/proto/wire.h, magic "LM", version 1): store_id,
 * cluster_id, n regions (nk_region codec, state u8, tomb_term uvar,
 * tomb_vote uvar, conf_index uvar), n pending events (sequence uvar, bytes), next_event_seq
 * (uvar: kept so an acknowledged sequence number is never handed out again
 * after a restart). Rewritten whole on every change: LOCALMETA.tmp,
 * sync, rename over LOCALMETA, dir sync. A file that fails to decode is
 * NK_ECORRUPT naming the file: never guessed at, never replaced silently.
 *
 * Failpoints: "localmeta.save.after_tmp", "localmeta.save.after_rename".
 */
#ifndef NK_STORE_LOCALMETA_H
#define NK_STORE_LOCALMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/proto/region.h"
#include "nokv/rt.h"

#define NK_LOCALMETA_FILE "LOCALMETA"
#define NK_LOCALMETA_MAX_REGIONS 4096u
#define NK_LOCALMETA_MAX_EVENTS 4096u
#define NK_LOCALMETA_MAX_EVENT_BYTES 65536u

typedef struct nk_localmeta_region {
    nk_region desc;
    uint8_t state; /* enum nk_region_state */
    /* TOMBSTONE only: the removed peer's last term and vote. If the same
     * peer id is added back later (a newer conf_version), the new replica
     * starts from this term and vote, so it can never vote twice in a term
     * its earlier incarnation voted in. Encoded as two uvars after state. */
    uint64_t tomb_term;
    uint64_t tomb_vote;
    /* Raft index of the newest membership change (or snapshot) the
     * descriptor reflects: replaying older entries after a restart must not
     * change it again (conf_version grows once per change, not per replay). */
    uint64_t conf_index;
} nk_localmeta_region;

typedef struct nk_localmeta_event {
    uint64_t seq;
    uint8_t *data; /* malloc-owned, an encoded coordinator report */
    size_t len;
} nk_localmeta_event;

typedef struct nk_localmeta {
    uint64_t store_id;   /* 0 until the store has an id */
    uint64_t cluster_id; /* 0 until known */
    size_t n_regions;
    nk_localmeta_region *regions; /* sorted by desc.id */
    size_t n_events;
    nk_localmeta_event *events; /* sorted by seq */
    uint64_t next_event_seq;
} nk_localmeta;

/* An empty catalog (no file yet). */
void nk_localmeta_init(nk_localmeta *m);
void nk_localmeta_free(nk_localmeta *m);

/* Load <workdir>/LOCALMETA. Absent file: NK_ENOENT and *m empty. */
int nk_localmeta_load(nk_rt *rt, const char *workdir, nk_localmeta *m, nk_errbuf *eb);
/* Rewrite it durably (see above). */
int nk_localmeta_save(nk_rt *rt, const char *workdir, const nk_localmeta *m, nk_errbuf *eb);
/* Is there a LOCALMETA (or a leftover .tmp) in workdir? (plan's catalog check) */
bool nk_localmeta_exists(nk_rt *rt, const char *workdir);

/* In-memory edits (save afterwards). put replaces by desc.id. */
int nk_localmeta_put(nk_localmeta *m, const nk_region *desc, uint8_t state);
nk_localmeta_region *nk_localmeta_find(nk_localmeta *m, uint64_t region_id);
int nk_localmeta_remove(nk_localmeta *m, uint64_t region_id);

/* Pending topology events (copy of data taken). ack drops seq <= upto. */
int nk_localmeta_event_add(nk_localmeta *m, const void *data, size_t len, uint64_t *seq);
void nk_localmeta_event_ack(nk_localmeta *m, uint64_t upto);
/* Drop the one event with this seq (reports are answered out of order);
 * NK_ENOENT when there is none. */
int nk_localmeta_event_remove(nk_localmeta *m, uint64_t seq);

/* Codec, for tests and `nokv stats`. */
int nk_localmeta_encode(const nk_localmeta *m, nk_buf *out);
int nk_localmeta_decode(const uint8_t *buf, size_t len, nk_localmeta *m, nk_errbuf *eb);

#endif /* NK_STORE_LOCALMETA_H */
