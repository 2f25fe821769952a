/* raft.c - the raft safety invariants shared by every harness (raft.h). */
#include "sim/check/raft.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/grow.h"

/* What is known about one index: its committed term and first applier. */
typedef struct idx_rec {
    uint64_t cterm; /* term committed here (0 = not seen yet) */
    uint64_t cnode;
    bool applied;
    uint64_t anode;
    uint64_t aterm;
    uint64_t ahash; /* entry hash (0 when known only through a snapshot) */
    uint64_t chain;
    uint64_t shash;
} idx_rec;

/* One (index, term) seen in some log, for log matching. */
typedef struct lm_slot {
    uint64_t index; /* 0 = empty */
    uint64_t term;
    uint64_t hash;
    uint64_t prev;
} lm_slot;

struct nk_rcheck {
    uint64_t *lead_of_term;
    size_t cap_lot;
    idx_rec *idx;
    size_t cap_idx;
    uint64_t max_commit, max_index;
    lm_slot *lm;
    size_t cap_lm, n_lm;
};

static bool oom(char *why, size_t why_len)
{
    snprintf(why, why_len, "checker: out of memory");
    return false;
}

nk_rcheck *nk_rcheck_new(void)
{
    return calloc(1, sizeof(nk_rcheck));
}

void nk_rcheck_free(nk_rcheck *c)
{
    if (c != NULL) {
        free(c->lead_of_term);
        free(c->idx);
        free(c->lm);
        free(c);
    }
}

uint64_t nk_rcheck_entry_hash(const nk_raft_entry *e)
{
    return XXH64(e->data, e->len, (uint64_t)e->type + 1);
}

uint64_t nk_rcheck_chain(uint64_t chain, const nk_raft_entry *e, uint64_t seed)
{
    uint8_t b[32];
    nk_put_u64(b, chain);
    nk_put_u64(b + 8, e->index);
    nk_put_u64(b + 16, e->term);
    nk_put_u64(b + 24, nk_rcheck_entry_hash(e));
    return XXH64(b, sizeof(b), seed);
}

bool nk_rcheck_leader(nk_rcheck *c, uint64_t node, uint64_t term, bool *first, char *why,
                      size_t why_len)
{
    if (first != NULL) {
        *first = false;
    }
    if (!nk_grow_zeroed((void **)&c->lead_of_term, &c->cap_lot, term + 1, sizeof(uint64_t))) {
        return oom(why, why_len);
    }
    uint64_t *l = &c->lead_of_term[term];
    if (*l != 0 && *l != node) {
        snprintf(why, why_len,
                 "election safety: n%" PRIu64 " and n%" PRIu64 " both lead term %" PRIu64, *l, node,
                 term);
        return false;
    }
    if (*l == 0) {
        *l = node;
        if (first != NULL) {
            *first = true;
        }
    }
    return true;
}

static size_t lm_pos(uint64_t index, uint64_t term, size_t cap)
{
    uint64_t h =
        index * 0x9e3779b97f4a7c15ULL ^ (term + 0x632be59bd9b4e019ULL) * 0xbf58476d1ce4e5b9ULL;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

bool nk_rcheck_persisted(nk_rcheck *c, uint64_t node, const nk_raft_entry *e, uint64_t prev_term,
                         char *why, size_t why_len)
{
    if (c->n_lm * 2 >= c->cap_lm) {
        size_t ncap = c->cap_lm ? c->cap_lm * 2 : 1024;
        lm_slot *n = calloc(ncap, sizeof(*n));
        if (n == NULL) {
            return oom(why, why_len);
        }
        for (size_t k = 0; k < c->cap_lm; k++) {
            if (c->lm[k].index != 0) {
                size_t p = lm_pos(c->lm[k].index, c->lm[k].term, ncap);
                while (n[p].index != 0) {
                    p = (p + 1) & (ncap - 1);
                }
                n[p] = c->lm[k];
            }
        }
        free(c->lm);
        c->lm = n;
        c->cap_lm = ncap;
    }
    uint64_t hash = nk_rcheck_entry_hash(e);
    size_t p = lm_pos(e->index, e->term, c->cap_lm);
    while (c->lm[p].index != 0) {
        lm_slot *s = &c->lm[p];
        if (s->index == e->index && s->term == e->term) {
            if (s->hash != hash || s->prev != prev_term) {
                snprintf(why, why_len,
                         "log matching: n%" PRIu64 " wrote index %" PRIu64 " term %" PRIu64
                         " with %s than another node's entry of the same index and term",
                         node, e->index, e->term,
                         s->hash != hash ? "other data" : "another previous term");
                return false;
            }
            return true;
        }
        p = (p + 1) & (c->cap_lm - 1);
    }
    c->lm[p] = (lm_slot){e->index, e->term, hash, prev_term};
    c->n_lm++;
    return true;
}

static idx_rec *idx_at(nk_rcheck *c, uint64_t i)
{
    if (!nk_grow_zeroed((void **)&c->idx, &c->cap_idx, i + 1, sizeof(*c->idx))) {
        return NULL;
    }
    if (i > c->max_index) {
        c->max_index = i;
    }
    return &c->idx[i];
}

bool nk_rcheck_committed(nk_rcheck *c, uint64_t node, uint64_t i, uint64_t term, char *why,
                         size_t why_len)
{
    idx_rec *x = idx_at(c, i);
    if (x == NULL) {
        return oom(why, why_len);
    }
    if (x->cterm == 0) {
        x->cterm = term;
        x->cnode = node;
    } else if (x->cterm != term) {
        snprintf(why, why_len,
                 "committed entry changed: n%" PRIu64 " committed index %" PRIu64
                 " with term %" PRIu64 ", n%" PRIu64 " had committed term %" PRIu64 " there",
                 node, i, term, x->cnode, x->cterm);
        return false;
    }
    if (x->applied && x->aterm != term) {
        snprintf(why, why_len,
                 "committed entry changed: n%" PRIu64 " committed index %" PRIu64
                 " with term %" PRIu64 ", n%" PRIu64 " applied term %" PRIu64 " there",
                 node, i, term, x->anode, x->aterm);
        return false;
    }
    if (i > c->max_commit) {
        c->max_commit = i;
    }
    return true;
}

bool nk_rcheck_applied(nk_rcheck *c, uint64_t node, uint64_t index, uint64_t term, uint64_t ehash,
                       uint64_t chain, uint64_t shash, const char *how, char *why, size_t why_len)
{
    idx_rec *x = idx_at(c, index);
    if (x == NULL) {
        return oom(why, why_len);
    }
    if (x->cterm != 0 && x->cterm != term) {
        snprintf(why, why_len,
                 "committed entry changed: n%" PRIu64 " %s index %" PRIu64 " with term %" PRIu64
                 ", n%" PRIu64 " had committed term %" PRIu64 " there",
                 node, how, index, term, x->cnode, x->cterm);
        return false;
    }
    if (!x->applied) {
        *x = (idx_rec){.cterm = x->cterm,
                       .cnode = x->cnode,
                       .applied = true,
                       .anode = node,
                       .aterm = term,
                       .ahash = ehash,
                       .chain = chain,
                       .shash = shash};
        return true;
    }
    if (x->aterm != term || (ehash && x->ahash && x->ahash != ehash) || x->chain != chain ||
        x->shash != shash) {
        snprintf(why, why_len,
                 "apply sequences differ: n%" PRIu64 " %s index %" PRIu64 " (term %" PRIu64
                 ") with %s than n%" PRIu64 " (term %" PRIu64 ")",
                 node, how, index, term,
                 x->aterm != term                           ? "another entry"
                 : x->chain != chain                        ? "another history before it"
                 : (ehash && x->ahash && x->ahash != ehash) ? "other data"
                                                            : "another resulting state",
                 x->anode, x->aterm);
        return false;
    }
    if (x->ahash == 0) {
        x->ahash = ehash;
    }
    return true;
}

uint64_t nk_rcheck_known_term(const nk_rcheck *c, uint64_t index)
{
    if (index >= c->cap_idx) {
        return 0;
    }
    const idx_rec *x = &c->idx[index];
    return x->cterm ? x->cterm : (x->applied ? x->aterm : 0);
}

uint64_t nk_rcheck_applied_chain(const nk_rcheck *c, uint64_t index)
{
    if (index == 0 || index >= c->cap_idx) {
        return 0;
    }
    for (uint64_t i = 1; i <= index; i++) {
        if (!c->idx[i].applied) {
            return 0;
        }
    }
    return c->idx[index].chain;
}

uint64_t nk_rcheck_max_commit(const nk_rcheck *c)
{
    return c->max_commit;
}

uint64_t nk_rcheck_max_index(const nk_rcheck *c)
{
    return c->max_index;
}
