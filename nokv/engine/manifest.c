/* manifest.c - version edit log, CURRENT swap, recovery (see manifest.h). */
#include "nokv/engine/manifest.h"
#include "nokv/util/names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/logfile.h"

#define CURRENT_MAGIC_WORD "nokv-current"
#define CURRENT_MAX 128u

struct nk_manifest {
    nk_rt *rt;
    char *dir;
    nk_manifest_options opts;
    int err;
    uint64_t number;
    nk_file *f;
    uint64_t size;
    uint64_t base_size; /* size right after the last open/rewrite */
    uint64_t next_lsn;
    nk_version_state state;
    nk_manifest_recovery rec;
    nk_buf scratch;
    nk_buf edit_buf;
};

void nk_manifest_options_default(nk_manifest_options *o)
{
    o->rewrite_threshold = NK_MANIFEST_DEFAULT_REWRITE;
    o->create_if_missing = true;
    o->test_bugs = 0;
}

static char *manifest_path(const char *dir, uint64_t number)
{
    char name[40];
    snprintf(name, sizeof name, "MANIFEST-%06" PRIu64, number);
    return nk_path_join(dir, name);
}

/* "MANIFEST-NNNNNN" -> number. */
static bool parse_manifest_name(const char *name, size_t len, uint64_t *number)
{
    return nk_name_number(name, len, "MANIFEST-", "", number);
}

static void fail(nk_manifest *m, int rc)
{
    if (m->err == NK_OK) {
        m->err = rc;
    }
}

/* ------------------------------------------------------------ CURRENT --- */

/* The CURRENT line for manifest `number` into buf; returns its length. */
static size_t current_encode(char *buf, size_t cap, uint64_t number)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%s %u MANIFEST-%06" PRIu64, CURRENT_MAGIC_WORD,
                     NK_MANIFEST_CURRENT_VERSION, number);
    uint64_t sum = XXH64(body, (size_t)n, 0);
    return (size_t)snprintf(buf, cap, "%s %016" PRIx64 "\n", body, sum);
}

static int parse_hex64(const char *p, size_t len, uint64_t *out)
{
    if (len != 16) {
        return NK_ECORRUPT;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return NK_ECORRUPT;
        }
        v = (v << 4) | d;
    }
    *out = v;
    return NK_OK;
}

/* Parse CURRENT's bytes. NK_OK, NK_ECORRUPT (*why), NK_ENOTSUP. */
static int current_decode(const char *buf, size_t len, uint64_t *number, const char **why)
{
    if (len == 0 || buf[len - 1] != '\n') {
        *why = "not a complete line";
        return NK_ECORRUPT;
    }
    len--;
    size_t sp = len;
    while (sp > 0 && buf[sp - 1] != ' ') {
        sp--;
    }
    uint64_t stored;
    if (sp == 0 || parse_hex64(buf + sp, len - sp, &stored) != NK_OK) {
        *why = "no checksum";
        return NK_ECORRUPT;
    }
    size_t blen = sp - 1;
    if (XXH64(buf, blen, 0) != stored) {
        *why = "checksum mismatch";
        return NK_ECORRUPT;
    }
    const size_t wl = strlen(CURRENT_MAGIC_WORD);
    if (blen < wl + 3 || memcmp(buf, CURRENT_MAGIC_WORD " ", wl + 1) != 0) {
        *why = "bad magic word";
        return NK_ECORRUPT;
    }
    size_t p = wl + 1;
    uint64_t version = 0;
    while (p < blen && buf[p] >= '0' && buf[p] <= '9' && version < 1000000) {
        version = version * 10 + (uint64_t)(buf[p++] - '0');
    }
    if (p >= blen || buf[p] != ' ') {
        *why = "bad version field";
        return NK_ECORRUPT;
    }
    if (version != NK_MANIFEST_CURRENT_VERSION) {
        *why = "format version not supported by this build";
        return NK_ENOTSUP;
    }
    p++;
    if (!parse_manifest_name(buf + p, blen - p, number)) {
        *why = "bad manifest name";
        return NK_ECORRUPT;
    }
    return NK_OK;
}

/* Read CURRENT: NK_OK, NK_ENOENT, NK_ECORRUPT/NK_ENOTSUP (eb), file error. */
static int current_read(nk_rt *rt, const char *dir, uint64_t *number, nk_errbuf *eb)
{
    char *path = nk_path_join(dir, "CURRENT");
    if (path == NULL) {
        return NK_ENOMEM;
    }
    nk_file *f = NULL;
    char buf[CURRENT_MAX + 1];
    size_t got = 0;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc == NK_OK) {
        rc = nk_rt_file_read_at(rt, f, 0, buf, sizeof buf, &got);
        (void)nk_rt_file_close(rt, f);
    }
    if (rc == NK_OK) {
        const char *why = NULL;
        rc = got > CURRENT_MAX ? NK_ECORRUPT : current_decode(buf, got, number, &why);
        if (rc != NK_OK) {
            nk_errbuf_set(eb,
                          "manifest: %s is damaged (%s); it should name the live MANIFEST-* "
                          "file: restore this node from a replica or a backup",
                          path, why != NULL ? why : "too long");
        }
    } else if (rc != NK_ENOENT) {
        nk_errbuf_set(eb, "manifest: reading %s failed: %s", path, nk_errdesc(rc));
    }
    free(path);
    return rc;
}

int nk_manifest_read_current(nk_rt *rt, const char *dir, uint64_t *number, nk_errbuf *eb)
{
    return current_read(rt, dir, number, eb);
}

/* Point CURRENT at manifest `number`, durably (steps 2-3 of a rewrite). */
static int current_write(nk_rt *rt, const char *dir, uint64_t number, unsigned bugs, bool *renamed,
                         nk_errbuf *eb)
{
    *renamed = false;
    char *tmp = nk_path_join(dir, "CURRENT.tmp");
    char *cur = nk_path_join(dir, "CURRENT");
    int rc = tmp != NULL && cur != NULL ? NK_OK : NK_ENOMEM;
    const char *step = "writing CURRENT.tmp";
    if (rc == NK_OK) {
        char line[CURRENT_MAX];
        size_t len = current_encode(line, sizeof line, number);
        nk_file *f = NULL;
        rc = nk_rt_file_open(rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
        if (rc == NK_OK) {
            rc = nk_rt_file_append(rt, f, line, len);
            if (rc == NK_OK) {
                rc = nk_rt_file_sync(rt, f);
            }
            (void)nk_rt_file_close(rt, f);
        }
    }
    if (rc == NK_OK) {
        step = "before renaming CURRENT.tmp";
        rc = nk_failpoint(rt, "manifest.current.before_rename");
    }
    if (rc == NK_OK) {
        step = "renaming CURRENT.tmp over CURRENT";
        *renamed = true; /* from here on the outcome is uncertain until synced */
        rc = nk_rt_rename(rt, tmp, cur);
    }
    if (rc == NK_OK) {
        step = "after renaming CURRENT.tmp";
        rc = nk_failpoint(rt, "manifest.current.after_rename");
    }
    if (rc == NK_OK && !(bugs & NK_BUG_CURRENT_DIRSYNC)) {
        step = "syncing the directory";
        rc = nk_rt_dir_sync(rt, dir);
    }
    if (rc == NK_OK) {
        /* CURRENT durably names the new file, which must be complete now. */
        step = "after syncing CURRENT";
        rc = nk_failpoint(rt, "manifest.rewrite.after_current_sync");
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "manifest: %s in %s failed: %s", step, dir, nk_errdesc(rc));
    }
    free(tmp);
    free(cur);
    return rc;
}

/* -------------------------------------------------------------- writing --- */

/* Create MANIFEST-<number> holding a snapshot of `state` as record 1, fsync
 * it, and return the open handle and size. */
static int write_snapshot(nk_manifest *m, uint64_t number, const nk_version_state *state,
                          nk_file **out, uint64_t *size, nk_errbuf *eb)
{
    char *path = manifest_path(m->dir, number);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    nk_version_edit snap;
    int rc = nk_vstate_snapshot(state, &snap);
    nk_buf_clear(&m->edit_buf);
    nk_buf_clear(&m->scratch);
    if (rc == NK_OK) {
        rc = nk_vedit_encode(&snap, &m->edit_buf);
    }
    nk_vedit_free(&snap);
    if (rc == NK_OK) {
        rc = nk_logrec_encode(&m->scratch, NK_LOGREC_DATA, 1, 0, m->edit_buf.data, m->edit_buf.len);
    }
    /* A leftover from an unfinished rewrite may hold this name: it was never
     * published, so it is replaced. */
    if (rc == NK_OK) {
        rc = nk_rt_remove(m->rt, path);
        rc = rc == NK_ENOENT ? NK_OK : rc;
    }
    nk_file *f = NULL;
    if (rc == NK_OK) {
        nk_logfile_hdr h = {NK_MANIFEST_FILE_MAGIC, number, 1, 0};
        rc = nk_logfile_create(m->rt, path, &h, NULL, &f);
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_append(m->rt, f, m->scratch.data, m->scratch.len);
        if (rc == NK_OK && !(m->opts.test_bugs & NK_BUG_MANIFEST_SYNC)) {
            rc = nk_rt_file_sync(m->rt, f);
        }
        if (rc != NK_OK) {
            (void)nk_rt_file_close(m->rt, f);
            (void)nk_rt_remove(m->rt, path);
        }
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "manifest: writing %s failed: %s", path, nk_errdesc(rc));
    } else {
        *out = f;
        *size = NK_LOGFILE_HDR_SIZE + m->scratch.len;
    }
    free(path);
    return rc;
}

/* Write MANIFEST-<number> with the current state and make CURRENT name it.
 * On success the manifest appends there. */
static int install(nk_manifest *m, uint64_t number, nk_errbuf *eb)
{
    nk_file *f = NULL;
    uint64_t size = 0;
    int rc = write_snapshot(m, number, &m->state, &f, &size, eb);
    if (rc != NK_OK) {
        return rc; /* CURRENT untouched: the old manifest stays valid */
    }
    rc = nk_failpoint(m->rt, "manifest.rewrite.after_write");
    bool renamed = false;
    if (rc == NK_OK) {
        rc = current_write(m->rt, m->dir, number, m->opts.test_bugs, &renamed, eb);
    } else {
        nk_errbuf_set(eb, "manifest: rewrite stopped after writing MANIFEST-%06" PRIu64 ": %s",
                      number, nk_errdesc(rc));
    }
    if (rc != NK_OK) {
        (void)nk_rt_file_close(m->rt, f);
        if (renamed || rc == NK_ECRASHED) {
            fail(m, rc); /* CURRENT may durably name either file */
        } else {
            char *path = manifest_path(m->dir, number);
            if (path != NULL) {
                (void)nk_rt_remove(m->rt, path);
            }
            free(path);
        }
        return rc;
    }
    uint64_t old = m->number;
    if (m->f != NULL) {
        (void)nk_rt_file_close(m->rt, m->f);
        char *path = manifest_path(m->dir, old);
        if (path != NULL) {
            (void)nk_rt_remove(m->rt, path); /* stale; open removes it if this is lost */
        }
        free(path);
    }
    m->f = f;
    m->number = number;
    m->size = size;
    m->base_size = size;
    m->next_lsn = 2;
    return NK_OK;
}

int nk_manifest_rewrite(nk_manifest *m, nk_errbuf *eb)
{
    if (m->err != NK_OK) {
        nk_errbuf_set(eb, "manifest: failed earlier (%s); reopen", nk_errname(m->err));
        return m->err;
    }
    int rc = install(m, m->number + 1, eb);
    if (rc == NK_OK) {
        nk_log(m->rt, NK_LOG_INFO,
               "manifest: rewrote into MANIFEST-%06" PRIu64 " (%" PRIu64 " bytes)", m->number,
               m->size);
    }
    return rc;
}

int nk_manifest_log_edit(nk_manifest *m, const nk_version_edit *e, nk_errbuf *eb)
{
    if (m->err != NK_OK) {
        nk_errbuf_set(eb, "manifest: failed earlier (%s); reopen", nk_errname(m->err));
        return m->err;
    }
    int rc = nk_vstate_check(&m->state, e, eb);
    if (rc != NK_OK) {
        nk_errbuf_wrap(eb, "manifest: edit rejected");
        return rc;
    }
    if (m->size >= m->opts.rewrite_threshold && m->size >= 2 * m->base_size) {
        rc = nk_manifest_rewrite(m, eb);
        if (rc != NK_OK) {
            return rc;
        }
    }
    nk_buf_clear(&m->edit_buf);
    nk_buf_clear(&m->scratch);
    rc = nk_vedit_encode(e, &m->edit_buf);
    if (rc == NK_OK) {
        rc = nk_logrec_encode(&m->scratch, NK_LOGREC_DATA, m->next_lsn, m->next_lsn - 1,
                              m->edit_buf.data, m->edit_buf.len);
    }
    if (rc != NK_OK) {
        return rc; /* nothing written */
    }
    rc = nk_rt_file_append(m->rt, m->f, m->scratch.data, m->scratch.len);
    if (rc == NK_ENOSPC && nk_rt_file_truncate(m->rt, m->f, m->size) == NK_OK) {
        /* Disk full: the partial record is cut off again, so the file holds
         * exactly the edits it held; the manifest stays usable. */
        nk_errbuf_set(eb, "manifest: appending an edit to MANIFEST-%06" PRIu64 ": %s",
                      m->number, nk_strerror(rc));
        return rc;
    }
    if (rc == NK_OK) {
        rc = nk_failpoint(m->rt, "manifest.edit.after_append");
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(m->rt, m->f);
    }
    if (rc == NK_OK) {
        rc = nk_vstate_apply(&m->state, e, eb);
    }
    if (rc != NK_OK) {
        /* The file may or may not hold the edit: unknown state. */
        fail(m, rc);
        nk_errbuf_set(eb,
                      "manifest: logging an edit to MANIFEST-%06" PRIu64 " failed: %s; "
                      "reopen to recover",
                      m->number, nk_errdesc(rc));
        return rc;
    }
    m->size += m->scratch.len;
    m->next_lsn++;
    return NK_OK;
}

/* ------------------------------------------------------------- replay --- */

typedef struct replay_ctx {
    nk_version_state *state;
    const char *path;
    nk_errbuf *eb;
} replay_ctx;

static int replay_edit(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                       const uint8_t *payload, size_t len)
{
    (void)file_idx;
    replay_ctx *c = arg;
    nk_version_edit e;
    int rc = nk_vedit_decode(payload, len, &e, c->eb);
    if (rc == NK_OK) {
        rc = nk_vstate_apply(c->state, &e, c->eb);
        if (rc == NK_EINVAL) {
            rc = NK_ECORRUPT; /* a durable edit that cannot apply is damage */
        }
    }
    nk_vedit_free(&e);
    if (rc != NK_OK && rc != NK_ENOMEM) {
        nk_errbuf_wrap(c->eb, "manifest: %s record at offset %" PRIu64 " (edit %" PRIu64 ")",
                       c->path, offset, lsn);
    }
    return rc;
}

/* Replay MANIFEST-<number> into `state`. min_durable 1: the file was
 * published (record 1 synced before CURRENT named it). */
static int replay(nk_rt *rt, const char *path, uint64_t number, uint64_t min_durable,
                  nk_version_state *state, nk_logscan_out *so, nk_errbuf *eb)
{
    replay_ctx ctx = {state, path, eb};
    const char *paths[1] = {path};
    uint64_t numbers[1] = {number};
    nk_logscan_in in = {
        .magic = NK_MANIFEST_FILE_MAGIC,
        .paths = paths,
        .numbers = numbers,
        .nfiles = 1,
        .start_lsn = 1,
        .max_first_lsn = 1,
        .min_durable = min_durable,
        .fn = replay_edit,
        .arg = &ctx,
        .what = "manifest",
    };
    memset(so, 0, sizeof *so);
    int rc = nk_logscan_run(rt, &in, so, eb);
    if (rc == NK_OK && so->records == 0 && min_durable > 0) {
        nk_errbuf_set(eb,
                      "manifest: %s has no snapshot record; restore this node from a "
                      "replica or a backup",
                      path);
        rc = NK_ECORRUPT;
    }
    return rc;
}

/* List MANIFEST-* numbers in dir (sorted ascending). */
static int list_manifests(nk_rt *rt, const char *dir, uint64_t **out, size_t *n, bool *has_tmp)
{
    nk_names names = {0};
    int rc = nk_rt_dir_list(rt, dir, &names);
    *out = NULL;
    *n = 0;
    *has_tmp = false;
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t *nums = calloc(names.count + 1, sizeof *nums);
    if (nums == NULL) {
        nk_names_free(&names);
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < names.count; i++) {
        uint64_t v;
        if (parse_manifest_name(names.names[i], strlen(names.names[i]), &v)) {
            size_t j = (*n)++;
            while (j > 0 && nums[j - 1] > v) {
                nums[j] = nums[j - 1];
                j--;
            }
            nums[j] = v;
        } else if (strcmp(names.names[i], "CURRENT.tmp") == 0) {
            *has_tmp = true;
        }
    }
    nk_names_free(&names);
    *out = nums;
    return NK_OK;
}

static int ensure_dir(nk_rt *rt, const char *dir, bool create, nk_errbuf *eb)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, dir, &st);
    if (rc == NK_OK) {
        if (!st.is_dir) {
            nk_errbuf_set(eb, "manifest: %s is not a directory", dir);
            return NK_ENOTDIR;
        }
        return NK_OK;
    }
    if (rc == NK_ENOENT && !create) {
        nk_errbuf_set(eb, "manifest: no database at %s", dir);
        return rc;
    }
    if (rc == NK_ENOENT) {
        rc = nk_rt_dir_create(rt, dir);
        if (rc == NK_OK) {
            char *parent = nk_path_parent(dir);
            rc = parent != NULL ? nk_rt_dir_sync(rt, parent) : NK_ENOMEM;
            free(parent);
        }
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "manifest: preparing directory %s failed: %s", dir, nk_errdesc(rc));
    }
    return rc;
}

/* No CURRENT. A new database, a redo of an interrupted creation, or damage. */
static int open_without_current(nk_manifest *m, const uint64_t *nums, size_t n, nk_errbuf *eb)
{
    if (n > 1 || (n == 1 && nums[0] != 1)) {
        nk_errbuf_set(eb,
                      "manifest: %s/CURRENT is missing but MANIFEST-%06" PRIu64
                      " exists: the database's root pointer was lost; restore CURRENT from a "
                      "backup or this node from a replica",
                      m->dir, nums[n - 1]);
        return NK_ECORRUPT;
    }
    if (n == 1) {
        /* Only the first manifest: creation may have stopped before CURRENT
         * was written. Safe to redo only if it holds nothing. */
        char *path = manifest_path(m->dir, 1);
        if (path == NULL) {
            return NK_ENOMEM;
        }
        nk_version_state st;
        nk_vstate_init(&st);
        nk_logscan_out so;
        nk_errbuf ignore;
        int rc = replay(m->rt, path, 1, 0, &st, &so, &ignore);
        bool empty = rc != NK_OK || (so.records <= 1 && nk_vstate_file_count(&st) == 0 &&
                                     st.log_number == 0 && st.last_sequence == 0);
        nk_vstate_free(&st);
        free(path);
        if (!empty) {
            nk_errbuf_set(eb,
                          "manifest: %s/CURRENT is missing but MANIFEST-000001 holds a "
                          "database: restore CURRENT from a backup or this node from a replica",
                          m->dir);
            return NK_ECORRUPT;
        }
    } else if (!m->opts.create_if_missing) {
        nk_errbuf_set(eb, "manifest: no database in %s", m->dir);
        return NK_ENOENT;
    }
    nk_vstate_free(&m->state);
    m->state.next_file_number = 1;
    m->rec.created = true;
    int rc = install(m, 1, eb);
    if (rc == NK_OK) {
        nk_log(m->rt, NK_LOG_INFO, "manifest: created a new database in %s", m->dir);
    }
    return rc;
}

static int open_with_current(nk_manifest *m, uint64_t number, nk_errbuf *eb)
{
    char *path = manifest_path(m->dir, number);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    nk_stat st;
    int rc = nk_rt_stat(m->rt, path, &st);
    if (rc == NK_ENOENT) {
        nk_errbuf_set(eb,
                      "manifest: %s/CURRENT names MANIFEST-%06" PRIu64
                      " but that file is missing; restore this node from a replica or a backup",
                      m->dir, number);
        free(path);
        return NK_ECORRUPT;
    }
    nk_logscan_out so;
    if (rc == NK_OK) {
        rc = replay(m->rt, path, number, 1, &m->state, &so, eb);
    } else {
        nk_errbuf_set(eb, "manifest: stat %s failed: %s", path, nk_errdesc(rc));
    }
    nk_file *f = NULL;
    if (rc == NK_OK) {
        rc = nk_rt_file_open(m->rt, path, NK_OPEN_WRITE, &f);
        if (rc == NK_OK && so.torn) {
            /* The last edit never completed its fsync: it was never
             * acknowledged. Cut it durably before appending after it. */
            rc = nk_rt_file_truncate(m->rt, f, so.cut_offset);
            if (rc == NK_OK) {
                rc = nk_rt_file_sync(m->rt, f);
            }
            nk_log(m->rt, NK_LOG_WARN,
                   "manifest: torn last record in %s at offset %" PRIu64 ": discarded %" PRIu64
                   " bytes",
                   path, so.cut_offset, so.discarded);
        }
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "manifest: reopening %s failed: %s", path, nk_errdesc(rc));
        }
    }
    if (rc == NK_OK) {
        uint64_t size = 0;
        rc = nk_rt_file_size(m->rt, f, &size);
        m->f = f;
        f = NULL;
        m->number = number;
        m->size = size;
        m->base_size = size;
        m->next_lsn = so.last_lsn + 1;
        m->rec.edits = so.records;
        m->rec.torn = so.torn;
        m->rec.torn_offset = so.torn ? so.cut_offset : 0;
        m->rec.discarded_bytes = so.discarded;
    }
    if (f != NULL) {
        (void)nk_rt_file_close(m->rt, f);
    }
    free(path);
    return rc;
}

/* Remove every MANIFEST-* but the live one, and CURRENT.tmp. */
static void remove_stale(nk_manifest *m, const uint64_t *nums, size_t n, bool has_tmp)
{
    for (size_t i = 0; i < n; i++) {
        if (nums[i] == m->number) {
            continue;
        }
        char *path = manifest_path(m->dir, nums[i]);
        if (path != NULL && nk_rt_remove(m->rt, path) == NK_OK) {
            m->rec.stale_removed++;
        }
        free(path);
    }
    if (has_tmp) {
        char *path = nk_path_join(m->dir, "CURRENT.tmp");
        if (path != NULL && nk_rt_remove(m->rt, path) == NK_OK) {
            m->rec.stale_removed++;
        }
        free(path);
    }
}

int nk_manifest_open(nk_rt *rt, const char *dir, const nk_manifest_options *o, nk_manifest **out,
                     nk_errbuf *eb)
{
    *out = NULL;
    nk_manifest *m = calloc(1, sizeof *m);
    if (m == NULL || (m->dir = strdup(dir)) == NULL) {
        free(m);
        return NK_ENOMEM;
    }
    m->rt = rt;
    nk_manifest_options_default(&m->opts);
    if (o != NULL) {
        m->opts = *o;
    }
    nk_vstate_init(&m->state);
    uint64_t *nums = NULL;
    size_t n = 0;
    bool has_tmp = false;
    uint64_t number = 0;
    int rc = ensure_dir(rt, dir, m->opts.create_if_missing, eb);
    if (rc == NK_OK) {
        rc = list_manifests(rt, dir, &nums, &n, &has_tmp);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "manifest: listing %s failed: %s", dir, nk_errdesc(rc));
        }
    }
    if (rc == NK_OK) {
        rc = current_read(rt, dir, &number, eb);
        if (rc == NK_ENOENT) {
            rc = open_without_current(m, nums, n, eb);
        } else if (rc == NK_OK) {
            rc = open_with_current(m, number, eb);
        }
    }
    if (rc == NK_OK) {
        remove_stale(m, nums, n, has_tmp);
        /* Never hand out a number a live table already has. */
        for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
            for (size_t i = 0; i < m->state.levels[l].count; i++) {
                uint64_t num = m->state.levels[l].files[i].number;
                if (num >= m->state.next_file_number) {
                    m->state.next_file_number = num + 1;
                }
            }
        }
        m->rec.number = m->number;
    }
    free(nums);
    if (rc != NK_OK) {
        nk_manifest_close(m);
        return rc;
    }
    *out = m;
    return NK_OK;
}

/* ----------------------------------------------------------- read-only --- */

int nk_manifest_read(nk_rt *rt, const char *dir, nk_version_state *state, uint64_t *number,
                     bool *torn, nk_errbuf *eb)
{
    nk_vstate_init(state);
    *torn = false;
    int rc = current_read(rt, dir, number, eb);
    if (rc == NK_ENOENT) {
        nk_errbuf_set(eb, "manifest: %s/CURRENT does not exist: not a database (or CURRENT was "
                          "lost)", dir);
        return NK_ENOENT;
    }
    if (rc != NK_OK) {
        return rc;
    }
    char *path = manifest_path(dir, *number);
    if (path == NULL) {
        return NK_ENOMEM;
    }
    nk_stat st;
    rc = nk_rt_stat(rt, path, &st);
    if (rc == NK_ENOENT) {
        nk_errbuf_set(eb, "manifest: %s/CURRENT names %s, which is missing", dir, path);
        rc = NK_ECORRUPT;
    } else if (rc != NK_OK) {
        nk_errbuf_set(eb, "manifest: stat %s failed: %s", path, nk_errdesc(rc));
    } else {
        nk_logscan_out so;
        rc = replay(rt, path, *number, 1, state, &so, eb);
        *torn = rc == NK_OK && so.torn;
    }
    free(path);
    return rc;
}

/* -------------------------------------------------------------- access --- */

const nk_version_state *nk_manifest_state(const nk_manifest *m)
{
    return &m->state;
}

const nk_manifest_recovery *nk_manifest_recovery_info(const nk_manifest *m)
{
    return &m->rec;
}

uint64_t nk_manifest_number(const nk_manifest *m)
{
    return m->number;
}

uint64_t nk_manifest_file_size(const nk_manifest *m)
{
    return m->size;
}

int nk_manifest_status(const nk_manifest *m)
{
    return m->err;
}

void nk_manifest_close(nk_manifest *m)
{
    if (m == NULL) {
        return;
    }
    if (m->f != NULL) {
        (void)nk_rt_file_close(m->rt, m->f);
    }
    nk_vstate_free(&m->state);
    nk_buf_free(&m->scratch);
    nk_buf_free(&m->edit_buf);
    free(m->dir);
    free(m);
}
