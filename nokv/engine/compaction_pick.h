/*
 * compaction_pick.h - which compaction runs next (pure functions of a
 * version and the options; the policy is described in docs/engine.md).
 *
 * Scores are fractions compared in integers: level 0 is file count /
 * l0_compaction_trigger, level n >= 1 is bytes / target(n). A level runs
 * when its score is >= 1; the highest score wins, ties go to the lower
 * level (keeping L0, which readers search file by file, small first). The
 * last level never compacts.
 */
#ifndef NK_ENGINE_COMPACTION_PICK_H
#define NK_ENGINE_COMPACTION_PICK_H

#include "nokv/engine/db.h"
#include "nokv/engine/version.h"

/* Byte target of level >= 1: level1_bytes * multiplier^(level-1). */
uint64_t nk_level_target(const nk_db_options *o, int level);

/* The level to compact, or -1 when no score reaches 1. */
int nk_pick_compaction_level(const nk_version *v, const nk_db_options *o);

/* Round robin inside a level >= 1: the first file whose largest user key is
 * after `after` (the end of the previous pick; empty = from the start),
 * wrapping to the first file. The level must not be empty. */
size_t nk_pick_file_round_robin(const nk_version *v, int level, nk_slice after);

#endif /* NK_ENGINE_COMPACTION_PICK_H */
