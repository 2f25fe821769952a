/*
 * testbug.h - TEST ONLY planted bugs outside the engine, for proving that
 * the simulator's scenarios can fail (nokv/engine/bugs.h does the same for
 * the engine through its options).
 *
 * Each bit makes one production step skip or reorder what its protocol
 * needs. Only nokv-sim sets nk_testbugs (`--set bug=NAME`, parsed by the
 * workload before the first node boots; every seed runs in its own process),
 * and a ctest then requires the scenario to FAIL within its seed range
 * (tests/ctest/sim_bugs.cmake). The sites are far apart (a mode file, the
 * store's LOCALMETA codec, the state machine) and most hold no runtime
 * handle or options, so this is one process-wide word instead of a field
 * threaded through every config; it is never written in production (no CLI
 * flag reaches it) and is 0 in every unit test.
 */
#ifndef NK_UTIL_TESTBUG_H
#define NK_UTIL_TESTBUG_H

#include <stdbool.h>

#define NK_TESTBUG_MODE_NOSYNC 0x1u     /* mode.c: MODE.json.tmp renamed without its fsync */
#define NK_TESTBUG_PUBLISH_EARLY 0x2u   /* localmeta: an APPLYING install is saved as NORMAL */
#define NK_TESTBUG_REAPPLY 0x4u         /* kvsm: a reopened region forgets its applied index */
#define NK_TESTBUG_FORGET_TOMB 0x8u      /* localmeta: a tombstone is saved as NORMAL */

extern unsigned nk_testbugs;

static inline bool nk_testbug(unsigned bit)
{
    return (nk_testbugs & bit) != 0;
}

#endif /* NK_UTIL_TESTBUG_H */
