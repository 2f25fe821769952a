/*
 * lin.h - linearizability of client histories, shared by the simulator's
 * workloads (raft, cluster). Pure code: no simulator, no runtime.
 *
 * Registers with unique written values, checked per key in O(n log n) with
 * the zone characterization of Gibbons and Korach (as used by Golab, Li and
 * Shah): every written value is unique, so each read names the write it saw.
 * Each value v has a cluster: its write plus the reads that returned it. Let
 * f(v) be the earliest completion in the cluster and s(v) the latest
 * invocation. If f < s the cluster spans the forward zone [f, s]; otherwise
 * it fits in the backward zone [s, f]. The history is linearizable iff
 *   - every read returns a written value whose write was invoked before the
 *     read completed;
 *   - no two forward zones overlap;
 *   - no backward zone lies strictly inside a forward zone.
 *
 * A write that did not complete (unknown outcome) has an open end; one that
 * nobody read is left out (allowed for an unknown outcome). Reads that did
 * not complete had no effect and are left out. Value 0 is the initial value
 * of every key: a write that completed at time 0 (a read of a missing key
 * returns 0).
 *
 * Counters (INCR with the new value in the reply): every acknowledged
 * increment returns a distinct value; if one completed before another was
 * invoked, it returned the smaller value; and a final read (after every
 * attempt ended) lies between the acknowledged and the attempted counts.
 */
#ifndef NK_SIM_CHECK_LIN_H
#define NK_SIM_CHECK_LIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nk_lin_op {
    uint32_t key;
    uint32_t client;
    bool write;
    bool done;      /* completed with a reply (a read's value is valid) */
    uint64_t value; /* written value (unique, never 0) or the value read */
    uint64_t inv;   /* invocation time */
    uint64_t res;   /* completion time (when done) */
} nk_lin_op;

/* Check keys 0..keys-1 of ops[0..n). true when linearizable; otherwise
 * false with the first violation explained in why. Out of memory: false,
 * with why saying so. */
bool nk_lin_check_registers(const nk_lin_op *ops, size_t n, uint32_t keys, char *why,
                            size_t why_len);

/* One acknowledged increment: the counter value it returned. */
typedef struct nk_lin_incr {
    uint32_t client;
    uint64_t value;
    uint64_t inv, res;
} nk_lin_incr;

/* Acknowledged increments acked[0..n) (reordered in place), attempts sent
 * (an upper bound on increments applied), and, when have_final, the value
 * read after all of them ended. */
bool nk_lin_check_counter(nk_lin_incr *acked, size_t n, uint64_t attempts, bool have_final,
                          uint64_t final_value, char *why, size_t why_len);

#endif /* NK_SIM_CHECK_LIN_H */
