/*
 * progress.c - the leader's view of one follower (thesis 3.5, 10.2.1).
 *
 * States (as in etcd's tracker):
 *   PROBE      next is a guess; send one append, then wait for an answer
 *              (or the next heartbeat response) before sending another.
 *   REPLICATE  next is known; stream appends optimistically (pipelining),
 *              bounded by the in-flight window (messages and bytes).
 *   SNAPSHOT   the entries the follower needs are compacted; a snapshot is
 *              on its way and nothing else is sent until it is acknowledged
 *              (or a timeout moves the follower back to PROBE).
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/raft/raft_int.h"

int nk_rprog_init(nk_rprog *p, uint64_t id, bool learner, uint32_t infl_cap)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->learner = learner;
    p->infl_cap = infl_cap ? infl_cap : 1;
    p->infl = calloc(p->infl_cap, sizeof(*p->infl));
    if (!p->infl) {
        return NK_ENOMEM;
    }
    p->next = 1;
    return NK_OK;
}

void nk_rprog_free(nk_rprog *p)
{
    free(p->infl);
    p->infl = NULL;
}

void nk_rprog_infl_reset(nk_rprog *p)
{
    p->infl_start = 0;
    p->infl_count = 0;
    p->infl_bytes = 0;
}

static void reset_state(nk_rprog *p, uint8_t state)
{
    p->probe_sent = false;
    p->pending_snapshot = 0;
    p->snap_elapsed = 0;
    p->stalled = 0;
    p->state = state;
    nk_rprog_infl_reset(p);
}

void nk_rprog_become_probe(nk_rprog *p)
{
    /* Coming back from a snapshot, the follower has at least the snapshot:
     * probe right after it (thesis 5.1). */
    if (p->state == NK_RAFT_PR_SNAPSHOT) {
        uint64_t ps = p->pending_snapshot;
        reset_state(p, NK_RAFT_PR_PROBE);
        p->next = (p->match + 1 > ps + 1) ? p->match + 1 : ps + 1;
    } else {
        reset_state(p, NK_RAFT_PR_PROBE);
        p->next = p->match + 1;
    }
}

void nk_rprog_become_replicate(nk_rprog *p)
{
    reset_state(p, NK_RAFT_PR_REPLICATE);
    p->next = p->match + 1;
}

void nk_rprog_become_snapshot(nk_rprog *p, uint64_t snap_index)
{
    reset_state(p, NK_RAFT_PR_SNAPSHOT);
    p->pending_snapshot = snap_index;
}

bool nk_rprog_maybe_update(nk_rprog *p, uint64_t n)
{
    bool updated = false;
    if (p->match < n) {
        p->match = n;
        updated = true;
        p->probe_sent = false;
    }
    if (p->next < n + 1) {
        p->next = n + 1;
    }
    return updated;
}

bool nk_rprog_maybe_decr(nk_rprog *p, uint64_t rejected, uint64_t probe)
{
    if (p->state == NK_RAFT_PR_REPLICATE) {
        /* A rejection at or below match is stale (reordered). Otherwise the
         * optimistic next was wrong: fall back to match + 1. */
        if (rejected <= p->match) {
            return false;
        }
        p->next = p->match + 1;
        return true;
    }
    /* PROBE/SNAPSHOT: only the answer to the probe we sent counts. */
    if (p->next == 0 || p->next - 1 != rejected) {
        return false;
    }
    uint64_t n = rejected < probe + 1 ? rejected : probe + 1;
    if (n < p->match + 1) {
        n = p->match + 1;
    }
    if (n < 1) {
        n = 1;
    }
    p->next = n;
    p->probe_sent = false;
    return true;
}

bool nk_rprog_paused(const nk_rprog *p, uint64_t max_bytes)
{
    switch (p->state) {
    case NK_RAFT_PR_PROBE:
        return p->probe_sent;
    case NK_RAFT_PR_REPLICATE:
        return p->infl_count >= p->infl_cap || (max_bytes && p->infl_bytes >= max_bytes);
    default:
        return true;
    }
}

void nk_rprog_infl_add(nk_rprog *p, uint64_t index, uint64_t bytes)
{
    if (p->infl_count >= p->infl_cap) {
        return; /* callers check paused first; never overflow the ring */
    }
    uint32_t slot = (p->infl_start + p->infl_count) % p->infl_cap;
    p->infl[slot].index = index;
    p->infl[slot].bytes = bytes;
    p->infl_count++;
    p->infl_bytes += bytes;
}

void nk_rprog_infl_free_to(nk_rprog *p, uint64_t index)
{
    while (p->infl_count > 0 && p->infl[p->infl_start].index <= index) {
        p->infl_bytes -= p->infl[p->infl_start].bytes;
        p->infl_start = (p->infl_start + 1) % p->infl_cap;
        p->infl_count--;
    }
}
