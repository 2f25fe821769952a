/*
 * raft.h - the raft safety invariants, one copy for every harness: the
 * simulator's raft and cluster workloads (sim/raft_world.c,
 * sim/cluster_world.c) and the in-memory unit harness of tests/test_raft*.c
 * (tests/helpers/raft_cluster.c). Pure code: no simulator, no runtime; the
 * caller feeds it what it observes and reports a violation its own way.
 *
 * Invariants (Raft dissertation, figure 3.2):
 *   - election safety: at most one leader per term;
 *   - log matching: two logs holding an entry of the same index and term
 *     hold the same data there and the same previous term (so, by
 *     induction, the same prefix);
 *   - committed prefix agreement: an index committed anywhere keeps one
 *     term forever, and what nodes apply there matches it;
 *   - replica equality: every node applies the same entry at each index,
 *     with the same running hash of the history before it and (when the
 *     caller has one) the same state hash after it; snapshot installs
 *     count as applying their index.
 * Leader completeness is checked by the caller with nk_rcheck_known_term.
 *
 * Every check returns true when the invariant holds; false with the
 * violation (or "out of memory") in why.
 */
#ifndef NK_SIM_CHECK_RAFT_H
#define NK_SIM_CHECK_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/raft/raft.h"

typedef struct nk_rcheck nk_rcheck;

/* NULL when out of memory. */
nk_rcheck *nk_rcheck_new(void);
void nk_rcheck_free(nk_rcheck *c);

/* Content hash of an entry (data and type), and the running history hash
 * after applying e on top of chain (seed distinguishes harnesses, whose
 * chains are never compared with each other). */
uint64_t nk_rcheck_entry_hash(const nk_raft_entry *e);
uint64_t nk_rcheck_chain(uint64_t chain, const nk_raft_entry *e, uint64_t seed);

/* `node` is seen leading `term`. *first (may be NULL) is set when it is
 * the first leader observed for that term. */
bool nk_rcheck_leader(nk_rcheck *c, uint64_t node, uint64_t term, bool *first, char *why,
                      size_t why_len);

/* `node` wrote entry e to its log; prev_term is the term of the entry
 * before it. */
bool nk_rcheck_persisted(nk_rcheck *c, uint64_t node, const nk_raft_entry *e, uint64_t prev_term,
                         char *why, size_t why_len);

/* `node` declares index committed with term. */
bool nk_rcheck_committed(nk_rcheck *c, uint64_t node, uint64_t index, uint64_t term, char *why,
                         size_t why_len);

/* `node` applied index (term): entry_hash 0 when known only through a
 * snapshot, state_hash 0 when the harness has none; `how` words the
 * message ("applied", "installed a snapshot at"). */
bool nk_rcheck_applied(nk_rcheck *c, uint64_t node, uint64_t index, uint64_t term,
                       uint64_t entry_hash, uint64_t chain, uint64_t state_hash, const char *how,
                       char *why, size_t why_len);

/* The term known committed or applied at index (0: nothing seen there),
 * and the highest index committed / committed or applied anywhere. */
uint64_t nk_rcheck_known_term(const nk_rcheck *c, uint64_t index);
uint64_t nk_rcheck_max_commit(const nk_rcheck *c);
/* The chain of the entries applied at 1..index (every one applied
 * somewhere), 0 otherwise: two runs that applied the same sequence agree. */
uint64_t nk_rcheck_applied_chain(const nk_rcheck *c, uint64_t index);
uint64_t nk_rcheck_max_index(const nk_rcheck *c);

#endif /* NK_SIM_CHECK_RAFT_H */
