/* compaction_pick.c - compaction scores and file choice (see the header). */
#include "nokv/engine/compaction_pick.h"

uint64_t nk_level_target(const nk_db_options *o, int level)
{
    uint64_t t = o->level1_bytes;
    for (int l = 1; l < level; l++) {
        t *= o->level_multiplier;
    }
    return t;
}

int nk_pick_compaction_level(const nk_version *v, const nk_db_options *o)
{
    int best = -1;
    uint64_t best_num = 1, best_den = 1; /* a score must reach 1 */
    uint64_t num = v->count[0];
    uint64_t den = o->l0_compaction_trigger ? o->l0_compaction_trigger : 1;
    if (num * best_den >= best_num * den) {
        best = 0;
        best_num = num;
        best_den = den;
    }
    for (int l = 1; l < NK_LEVELS - 1; l++) {
        num = nk_version_level_bytes(v, l);
        den = nk_level_target(o, l);
        if (den == 0) {
            continue;
        }
        /* strictly greater than the best so far: ties keep the lower level */
        if ((best >= 0 && num * best_den > best_num * den) || (best < 0 && num >= den)) {
            best = l;
            best_num = num;
            best_den = den;
        }
    }
    return best;
}

size_t nk_pick_file_round_robin(const nk_version *v, int level, nk_slice after)
{
    if (after.len == 0) {
        return 0;
    }
    for (size_t i = 0; i < v->count[level]; i++) {
        nk_slice l = nk_ikey_user(v->files[level][i]->largest.data,
                                  v->files[level][i]->largest.len);
        if (nk_bytes_cmp(l.data, l.len, after.data, after.len) > 0) {
            return i;
        }
    }
    return 0; /* every file ends at or before `after`: start over */
}
