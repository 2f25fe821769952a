/*
 * bugs.h - planted durability bugs, for proving the crash scenario can fail.
 *
 * Each bit makes the engine skip one fsync or directory sync its durability
 * protocol needs. Only the simulator's engine workload sets them (`nokv-sim
 * --set bug=NAME`, sim/engine_wl.c); tests/ctest/engine.cmake then requires
 * scenarios/engine_crash to FAIL within its CI seed range for each, so a
 * scenario that stops covering a step is noticed. Never set in production:
 * nk_db_options_default leaves them 0 and no CLI flag reaches them.
 */
#ifndef NK_ENGINE_BUGS_H
#define NK_ENGINE_BUGS_H

#define NK_BUG_MANIFEST_SYNC 0x1u    /* rewrite: new MANIFEST not fsynced before CURRENT names it */
#define NK_BUG_CURRENT_DIRSYNC 0x2u  /* rewrite: no directory sync after the CURRENT rename */
#define NK_BUG_WAL_OPEN_DIRSYNC 0x4u /* open: no directory sync after creating the new segment */
#define NK_BUG_WAL_REPAIR_SYNC 0x8u  /* recovery: torn tail cut without an fsync */
#define NK_BUG_TABLE_SYNC 0x10u      /* flush/compaction: tables not fsynced before the edit */

#endif /* NK_ENGINE_BUGS_H */
