/* migrate_sim.h - shared simulator scaffolding for the test_migrate* tests:
 * one node, a filled standalone workdir, running init to completion, and a
 * byte-level digest of a directory tree. */
#ifndef NK_TESTS_MIGRATE_SIM_H
#define NK_TESTS_MIGRATE_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "nokv/engine/slice.h"
#include "sim/sim.h"

nk_sim *msim_boot(uint64_t seed);
nk_rt *msim_rt(void);
void msim_run(nk_sim *s, uint64_t ms);

/* Create a standalone workdir with keys k00000.. (values v<i>), written
 * through the workdir layer and the engine; flush after `flushed` of them
 * (the rest stay in the WAL only), then close cleanly. */
void msim_fill(nk_sim *s, const char *dir, unsigned nkeys, unsigned flushed);

/* Put one key (value "x") into dir's engine; flush afterwards if asked. */
void msim_put(nk_sim *s, const char *dir, const void *key, size_t klen, bool flush);

/* Every key of msim_fill is readable with its value in dir's engine. */
void msim_check_keys(nk_sim *s, const char *dir, unsigned nkeys);

/* "path size xxh64\n" for every file under dir, sorted: equal digests mean
 * not a byte changed. */
void msim_digest(nk_rt *rt, const char *dir, nk_buf *out);

#endif
