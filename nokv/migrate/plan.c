/* plan.c - the read-only preflight (see plan.h). */
#include "nokv/migrate/plan.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nokv/engine/inspect.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/migrate/seedsnap.h"
#include "nokv/store/kvsm.h"
#include "nokv/store/localmeta.h"
#include "nokv/store/seed.h"
#include "nokv/util/names.h"
#include "nokv/util/smallfile.h"

/* What init writes besides links: LOCALMETA, SNAPSHOT.json, the first raft
 * log segment and small JSON files. Generous on purpose. */
#define PLAN_BASE_BYTES (UINT64_C(8) << 20)
#define PLAN_PER_FILE_BYTES 256u

static void add(size_t *n, char (*items)[NK_PLAN_ITEM_LEN], const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(size_t *n, char (*items)[NK_PLAN_ITEM_LEN], const char *fmt, ...)
{
    if (*n >= NK_PLAN_MAX_ITEMS) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(items[*n], NK_PLAN_ITEM_LEN, fmt, ap);
    va_end(ap);
    (*n)++;
}

bool nk_migrate_has_raft_log(nk_rt *rt, const char *workdir)
{
    char dir[1024];
    nk_path_fmt(dir, sizeof(dir), workdir, NK_SEED_RAFT_DIR);
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) != NK_OK) {
        return false;
    }
    bool any = false;
    for (size_t i = 0; i < names.count && !any; i++) {
        uint64_t num;
        any = nk_name_number(names.names[i], strlen(names.names[i]), "", ".rlog", &num);
    }
    nk_names_free(&names);
    return any;
}

static void check_lock(nk_rt *rt, const char *workdir, nk_plan_result *r)
{
    bool held = false;
    int rc = nk_rt_dir_lock_held(rt, workdir, &held);
    if (rc != NK_OK) {
        add(&r->n_warnings, r->warnings, "cannot probe the workdir LOCK: %s", nk_strerror(rc));
    } else if (held) {
        add(&r->n_blockers, r->blockers,
            "workdir %s is in use (its LOCK is held): stop the server using it; standalone "
            "writes must stop before a migration",
            workdir);
    }
}

bool nk_inspect_has_reserved_keys(const nk_db_inspect *ins)
{
    /* The cluster mode keeps its own state from NK_KVSM_RESERVED on; user
     * data there would collide with it after promotion. */
    size_t pl = NK_KVSM_RESERVED_LEN;
    size_t n = ins->max_key_len < pl ? ins->max_key_len : pl;
    return ins->has_keys &&
           nk_bytes_cmp(ins->max_key, n, (const uint8_t *)NK_KVSM_RESERVED, pl) >= 0;
}

int nk_migrate_plan(nk_rt *rt, const char *workdir, nk_plan_result *r)
{
    memset(r, 0, sizeof(*r));
    if (workdir == NULL || workdir[0] == '\0') {
        return NK_EINVAL;
    }
    snprintf(r->workdir, sizeof(r->workdir), "%s", workdir);
    nk_stat st;
    int rc = nk_rt_stat(rt, workdir, &st);
    if (rc != NK_OK || !st.is_dir) {
        add(&r->n_blockers, r->blockers, "workdir not found: %s%s", workdir,
            rc == NK_OK       ? " (not a directory)"
            : rc == NK_ENOENT ? ""
                              : " (cannot stat it)");
        goto done;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_mode_state ms;
    rc = nk_mode_read(rt, workdir, &ms, &eb);
    if (rc != NK_OK) {
        add(&r->n_blockers, r->blockers, "%s", eb.msg);
    } else {
        r->mode = ms.mode;
        if (ms.mode != NK_MODE_STANDALONE) {
            add(&r->n_blockers, r->blockers,
                "workdir is already in \"%s\" mode (see nokv migrate status --workdir %s)",
                nk_mode_name(ms.mode), workdir);
        }
    }
    check_lock(rt, workdir, r);

    nk_db_inspect ins;
    memset(&eb, 0, sizeof(eb));
    rc = nk_db_inspect_dir(rt, workdir, &ins, &eb);
    if (rc != NK_OK) {
        add(&r->n_blockers, r->blockers, "engine recovery state is not coherent: %s", eb.msg);
    } else if (!ins.has_current) {
        add(&r->n_blockers, r->blockers,
            "manifest not found in %s (no CURRENT): not a NoKV database workdir", workdir);
    } else {
        r->table_files = ins.n_files;
        r->table_bytes = ins.table_bytes;
        r->wal_bytes = ins.wal_bytes;
        r->last_sequence = ins.last_sequence;
        if (nk_inspect_has_reserved_keys(&ins)) {
            add(&r->n_blockers, r->blockers,
                "the database holds keys at or above the range the cluster mode reserves "
                "(keys starting with 4 bytes 0xff then \"nokv/\"): rename or delete them "
                "before promoting");
        }
        if (ins.manifest_torn) {
            add(&r->n_warnings, r->warnings,
                "the manifest has a torn tail (an edit that was never acknowledged); init's "
                "engine open will cut it");
        }
        if (ins.wal_torn) {
            add(&r->n_warnings, r->warnings,
                "the WAL has a torn tail (writes that were never acknowledged); init's engine "
                "open will cut it");
        }
    }
    nk_db_inspect_free(&ins);

    if (nk_localmeta_exists(rt, workdir)) {
        nk_localmeta lm;
        memset(&eb, 0, sizeof(eb));
        rc = nk_localmeta_load(rt, workdir, &lm, &eb);
        if (rc == NK_OK) {
            r->local_catalog_regions = lm.n_regions;
            if (lm.n_regions > 0) {
                add(&r->n_blockers, r->blockers,
                    "local catalog already contains %zu region(s) (%s/%s)", lm.n_regions, workdir,
                    NK_LOCALMETA_FILE);
            } else {
                add(&r->n_warnings, r->warnings,
                    "an empty local catalog (%s) exists; init will fill it", NK_LOCALMETA_FILE);
            }
        } else if (rc == NK_ENOENT) {
            add(&r->n_warnings, r->warnings, "a leftover %s.tmp exists; init will replace it",
                NK_LOCALMETA_FILE);
        } else {
            add(&r->n_blockers, r->blockers, "local catalog open failed: %s", eb.msg);
        }
        nk_localmeta_free(&lm);
    }
    if (nk_migrate_has_raft_log(rt, workdir)) {
        add(&r->n_blockers, r->blockers,
            "a raft log already exists in %s/%s: this workdir already hosted a store", workdir,
            NK_SEED_RAFT_DIR);
    }
    char snapdir[1024];
    nk_seedsnap_dir(workdir, snapdir, sizeof(snapdir));
    if (r->mode == NK_MODE_STANDALONE && nk_rt_stat(rt, snapdir, &st) == NK_OK) {
        add(&r->n_warnings, r->warnings, "%s exists (an earlier attempt?); init will replace it",
            snapdir);
    }
    nk_checkpoint cp;
    if (r->mode == NK_MODE_STANDALONE && nk_checkpoint_read(rt, workdir, &cp, &eb) == NK_OK) {
        add(&r->n_warnings, r->warnings,
            "a migration checkpoint (%s, stage %s) exists in a standalone workdir",
            NK_CHECKPOINT_FILE, nk_stage_name(cp.stage));
    }

    r->required_bytes = PLAN_BASE_BYTES + r->table_files * PLAN_PER_FILE_BYTES;
    rc = nk_rt_fs_avail(rt, workdir, &r->free_bytes);
    if (rc != NK_OK) {
        r->free_bytes = 0;
        add(&r->n_warnings, r->warnings, "cannot tell the free space under %s (%s)", workdir,
            nk_strerror(rc));
    } else if (r->free_bytes < r->required_bytes) {
        add(&r->n_blockers, r->blockers,
            "only %" PRIu64 " bytes free under %s; init needs about %" PRIu64
            " (it links the tables instead of copying them)",
            r->free_bytes, workdir, r->required_bytes);
    }
done:
    r->eligible = r->n_blockers == 0;
    if (r->eligible) {
        snprintf(r->next, sizeof(r->next),
                 "nokv migrate init --workdir %s --store <store-id> --region <region-id> --peer "
                 "<peer-id>",
                 workdir);
    }
    return NK_OK;
}
