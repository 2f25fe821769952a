/* workdir.c - workdir lock and mode gate (see workdir.h). */
#include "nokv/store/workdir.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/migrate/checkpoint.h"

struct nk_workdir {
    nk_rt *rt;
    char *dir;
    nk_dirlock *lock;
    nk_mode_state mode;
};

static int parent_of(const char *dir, char *out, size_t cap)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    while (n > 0 && dir[n - 1] != '/') {
        n--;
    }
    if (n == 0) {
        snprintf(out, cap, ".");
        return NK_OK;
    }
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    if (n >= cap) {
        return NK_ERANGE;
    }
    memcpy(out, dir, n);
    out[n] = '\0';
    return NK_OK;
}

static int ensure_dir(nk_rt *rt, const char *dir, bool create, nk_errbuf *eb)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, dir, &st);
    if (rc == NK_OK && !st.is_dir) {
        nk_errbuf_set(eb, "workdir %s exists but is not a directory", dir);
        return NK_ENOTDIR;
    }
    if (rc == NK_OK) {
        return NK_OK;
    }
    if (rc != NK_ENOENT) {
        nk_errbuf_set(eb, "cannot stat workdir %s: %s", dir, nk_strerror(rc));
        return rc;
    }
    if (!create) {
        nk_errbuf_set(eb, "workdir %s does not exist (check --workdir)", dir);
        return NK_ENOENT;
    }
    rc = nk_rt_dir_create(rt, dir);
    if (rc == NK_OK || rc == NK_EEXIST) {
        char parent[1024];
        rc = parent_of(dir, parent, sizeof(parent));
        rc = rc ? rc : nk_rt_dir_sync(rt, parent);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb,
                      "cannot create workdir %s: %s (does its parent exist and is it "
                      "writable?)",
                      dir, nk_strerror(rc));
    }
    return rc;
}

int nk_workdir_check_mode(nk_rt *rt, const char *dir, const nk_mode_state *st, unsigned allowed,
                          nk_errbuf *eb)
{
    if (allowed == 0) {
        allowed = NK_MODE_BIT(NK_MODE_STANDALONE);
    }
    if (allowed & NK_MODE_BIT(st->mode)) {
        return NK_OK;
    }
    nk_checkpoint cp;
    nk_errbuf ceb;
    int crc = nk_checkpoint_read(rt, dir, &cp, &ceb);
    char hint[256];
    nk_resume_hint(st->mode, crc == NK_OK ? &cp : NULL, hint, sizeof(hint));
    const char *stage = crc == NK_OK       ? nk_stage_name(cp.stage)
                        : crc == NK_ENOENT ? "none recorded"
                                           : "unreadable checkpoint";
    unsigned long long s = (unsigned long long)st->store_id;
    unsigned long long r = (unsigned long long)st->region_id;
    unsigned long long p = (unsigned long long)st->peer_id;
    switch (st->mode) {
    case NK_MODE_PREPARING:
        nk_errbuf_set(eb,
                      "workdir %s is in mode \"preparing\" (stage %s): a migration did not "
                      "finish, so it may not be opened standalone or served. Hint: %s. "
                      "Inspect: nokv migrate status --workdir %s; resume: nokv migrate init "
                      "--workdir %s --store %llu --region %llu --peer %llu",
                      dir, stage, hint[0] ? hint : "re-run nokv migrate init", dir, dir, s, r, p);
        break;
    case NK_MODE_SEEDED:
    case NK_MODE_CLUSTER:
        nk_errbuf_set(eb,
                      "workdir %s is in mode \"%s\" (stage %s%s%s): it belongs to a cluster "
                      "(store %llu); a standalone open would bypass replication. Start it "
                      "with: nokv serve --workdir %s --store-id %llu --coordinator-addr "
                      "HOST:PORT",
                      dir, nk_mode_name(st->mode), stage, hint[0] ? "; " : "", hint, s, dir, s);
        break;
    case NK_MODE_STANDALONE:
        nk_errbuf_set(eb,
                      "workdir %s is a standalone database; this command needs a promoted "
                      "workdir (run 'nokv migrate plan --workdir %s' first)",
                      dir, dir);
        break;
    }
    return NK_EMODE;
}

int nk_workdir_open(nk_rt *rt, const char *dir, const nk_workdir_options *o, nk_workdir **out,
                    nk_errbuf *eb)
{
    *out = NULL;
    nk_workdir_options defaults = {0, true};
    if (o == NULL) {
        o = &defaults;
    }
    nk_workdir *w = calloc(1, sizeof(*w));
    size_t n = strlen(dir);
    if (w != NULL) {
        w->dir = malloc(n + 1);
    }
    if (w == NULL || w->dir == NULL) {
        free(w);
        return NK_ENOMEM;
    }
    memcpy(w->dir, dir, n + 1);
    w->rt = rt;
    int rc = ensure_dir(rt, dir, o->create_if_missing, eb);
    if (rc == NK_OK) {
        rc = nk_rt_dir_lock(rt, dir, &w->lock);
        if (rc == NK_EBUSY) {
            nk_errbuf_set(eb,
                          "workdir %s is in use by another process (its LOCK is held); stop "
                          "the server or the migrate command using it first",
                          dir);
        } else if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot lock workdir %s: %s", dir, nk_strerror(rc));
        }
    }
    if (rc == NK_OK) {
        rc = nk_mode_read(rt, dir, &w->mode, eb);
    }
    if (rc == NK_OK) {
        rc = nk_workdir_check_mode(rt, dir, &w->mode, o->allowed_modes, eb);
    }
    if (rc != NK_OK) {
        nk_workdir_close(w);
        return rc;
    }
    *out = w;
    return NK_OK;
}

void nk_workdir_close(nk_workdir *w)
{
    if (w == NULL) {
        return;
    }
    if (w->lock != NULL) {
        nk_rt_dir_unlock(w->rt, w->lock);
    }
    free(w->dir);
    free(w);
}

void nk_workdir_abandon(nk_workdir *w)
{
    if (w == NULL) {
        return;
    }
    /* The crashed node's locks died with it (the simulator has already freed
     * them): never touch the handle again. */
    free(w->dir);
    free(w);
}

const char *nk_workdir_path(const nk_workdir *w)
{
    return w->dir;
}

const nk_mode_state *nk_workdir_mode(const nk_workdir *w)
{
    return &w->mode;
}

int nk_workdir_set_mode(nk_workdir *w, const nk_mode_state *st, nk_errbuf *eb)
{
    int rc = nk_mode_write(w->rt, w->dir, st, eb);
    if (rc == NK_OK) {
        w->mode = *st;
    }
    return rc;
}
