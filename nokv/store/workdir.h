/*
 * workdir.h - who owns a workdir, and in which mode it may be opened.
 *
 * This layer sits above the engine (which knows nothing about modes or
 * locks) and below every opener: the embedded API, `nokv serve`, `nokv
 * migrate`, the simulator's apps. Opening a workdir:
 *   1. creates the directory when allowed (and syncs its parent, so the
 *      directory itself survives a crash);
 *   2. takes <dir>/LOCK (nk_rt_dir_lock): one owner at a time, so `migrate
 *      init` can never run under a live server and vice versa;
 *   3. reads MODE.json (nokv/migrate/mode.h) *under the lock* (the mode can
 *      only change while the lock is held) and checks it against the modes
 *      the caller allows. A refusal (NK_EMODE) names the mode, the migration
 *      stage recorded in MIGRATION_PROGRESS.json, its resume hint and the
 *      command to run: a half-migrated directory never reopens silently as a
 *      plain database.
 * The lock is held until nk_workdir_close (or the owner's death).
 */
#ifndef NK_STORE_WORKDIR_H
#define NK_STORE_WORKDIR_H

#include <stdbool.h>

#include "nokv/migrate/mode.h"
#include "nokv/rt.h"

typedef struct nk_workdir nk_workdir;

typedef struct nk_workdir_options {
    unsigned allowed_modes; /* NK_MODE_BIT mask; 0 = standalone only */
    bool create_if_missing;
} nk_workdir_options;

/* Modes `nokv serve` accepts: never preparing. */
#define NK_WORKDIR_SERVE_MODES                                                                     \
    (NK_MODE_BIT(NK_MODE_STANDALONE) | NK_MODE_BIT(NK_MODE_SEEDED) | NK_MODE_BIT(NK_MODE_CLUSTER))
#define NK_WORKDIR_ANY_MODE 0xfu

/* NK_OK; NK_ENOENT (missing and !create_if_missing), NK_EBUSY (LOCK held),
 * NK_EMODE, NK_ECORRUPT (MODE.json damaged) or an I/O error; eb explains. */
int nk_workdir_open(nk_rt *rt, const char *dir, const nk_workdir_options *o, nk_workdir **out,
                    nk_errbuf *eb);

/* Release the lock and free. NULL is a no-op. */
void nk_workdir_close(nk_workdir *w);

/* Free without unlocking: the simulated node crashed (its locks are gone). */
void nk_workdir_abandon(nk_workdir *w);

const char *nk_workdir_path(const nk_workdir *w);
const nk_mode_state *nk_workdir_mode(const nk_workdir *w);

/* Change the mode (MODE.json, durably); only an owner may. */
int nk_workdir_set_mode(nk_workdir *w, const nk_mode_state *st, nk_errbuf *eb);

/*
 * The refusal text for a workdir in st->mode that an open allowing `allowed`
 * may not use: the mode, the checkpoint stage and resume hint (read from
 * the workdir, best effort) and the command to run. NK_OK when allowed.
 */
int nk_workdir_check_mode(nk_rt *rt, const char *dir, const nk_mode_state *st, unsigned allowed,
                          nk_errbuf *eb);

#endif /* NK_STORE_WORKDIR_H */
