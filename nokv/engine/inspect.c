/* inspect.c - read-only workdir inspection, live table list (see inspect.h). */
#include "nokv/engine/inspect.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/batch.h"
#include "nokv/engine/db_impl.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/version_edit.h"
#include "nokv/engine/wal.h"
#include "nokv/util/names.h"

void nk_db_sst_path(const char *dir, uint64_t number, char *buf, size_t len)
{
    size_t dl = strlen(dir);
    snprintf(buf, len, "%s%s%06" PRIu64 ".sst", dir, dl > 0 && dir[dl - 1] == '/' ? "" : "/",
             number);
}

static void fill_info(nk_db_file_info *fi, uint64_t number, uint32_t level, uint64_t size,
                      bool has_xxh64, uint64_t xxh64)
{
    memset(fi, 0, sizeof(*fi));
    fi->number = number;
    fi->level = level;
    fi->size = size;
    fi->has_xxh64 = has_xxh64;
    fi->xxh64 = has_xxh64 ? xxh64 : 0;
    snprintf(fi->name, sizeof(fi->name), "%06" PRIu64 ".sst", number);
}

static void note_key(nk_db_inspect *r, const uint8_t *k, size_t len)
{
    size_t n = len < NK_INSPECT_KEY_MAX ? len : NK_INSPECT_KEY_MAX;
    if (!r->has_keys || nk_bytes_cmp(k, n, r->max_key, r->max_key_len) > 0) {
        memcpy(r->max_key, k, n);
        r->max_key_len = n;
        r->has_keys = true;
    }
}

static int note_batch_key(void *arg, uint64_t seq, nk_ktype type, nk_slice key, nk_slice value)
{
    (void)seq, (void)type, (void)value;
    note_key(arg, key.data, key.len);
    return NK_OK;
}

static int count_record(void *arg, size_t file_idx, uint64_t offset, uint64_t lsn,
                        const uint8_t *payload, size_t len)
{
    (void)file_idx, (void)offset;
    nk_db_inspect *r = arg;
    if (lsn >= r->log_number) {
        r->wal_unflushed++;
    }
    /* The open would refuse an undecodable batch; report it the same way. */
    return nk_batch_iterate(payload, len, note_batch_key, arg, NULL) == NK_OK ? NK_OK : NK_ECORRUPT;
}

static int scan_wal(nk_rt *rt, const char *dir, nk_db_inspect *r, nk_errbuf *eb)
{
    char *wdir = nk_path_join(dir, "wal");
    if (wdir == NULL) {
        return NK_ENOMEM;
    }
    nk_names names = {0};
    int rc = nk_rt_dir_list(rt, wdir, &names);
    if (rc == NK_ENOENT) {
        free(wdir);
        return NK_OK; /* a db that never wrote */
    }
    char **paths = NULL;
    uint64_t *numbers = NULL;
    size_t n = 0;
    if (rc == NK_OK) {
        paths = calloc(names.count + 1, sizeof(*paths));
        numbers = calloc(names.count + 1, sizeof(*numbers));
        rc = paths && numbers ? NK_OK : NK_ENOMEM;
    }
    for (size_t i = 0; rc == NK_OK && i < names.count; i++) {
        uint64_t num;
        if (!nk_name_number(names.names[i], strlen(names.names[i]), "", ".log", &num)) {
            continue;
        }
        paths[n] = nk_path_join(wdir, names.names[i]);
        numbers[n] = num;
        rc = paths[n] ? NK_OK : NK_ENOMEM;
        n++;
    }
    /* dir_list is sorted bytewise and the names are zero-padded: but a
     * number past 6 digits sorts differently, so order by number. */
    for (size_t i = 1; rc == NK_OK && i < n; i++) {
        for (size_t k = i; k > 0 && numbers[k - 1] > numbers[k]; k--) {
            uint64_t tn = numbers[k];
            numbers[k] = numbers[k - 1];
            numbers[k - 1] = tn;
            char *tp = paths[k];
            paths[k] = paths[k - 1];
            paths[k - 1] = tp;
        }
    }
    if (rc == NK_OK && n > 0) {
        uint64_t *sizes = calloc(n, sizeof(*sizes));
        nk_logscan_in in = {
            .magic = NK_WAL_FILE_MAGIC,
            .paths = (const char *const *)paths,
            .numbers = numbers,
            .nfiles = n,
            /* Where the open starts: damage only in records the tables
             * already hold is not damage the open would refuse (a torn new
             * segment beside a mark that claims only flushed lsns durable:
             * swarm seed 44 with the wide failpoint pool). */
            .start_lsn = r->log_number > 1 ? r->log_number : 1,
            .max_first_lsn = 0, /* the open itself judges released segments */
            .min_durable = 0,
            .fn = count_record,
            .arg = r,
            .what = "wal",
        };
        nk_logscan_out so;
        memset(&so, 0, sizeof(so));
        so.file_size = sizes;
        rc = sizes ? nk_logscan_run(rt, &in, &so, eb) : NK_ENOMEM;
        r->wal_torn = so.torn;
        r->wal_segments = n;
        for (size_t i = 0; sizes && i < n; i++) {
            r->wal_bytes += sizes[i];
        }
        free(sizes);
    }
    for (size_t i = 0; paths && i < n; i++) {
        free(paths[i]);
    }
    free(paths);
    free(numbers);
    nk_names_free(&names);
    free(wdir);
    return rc;
}

int nk_db_inspect_dir(nk_rt *rt, const char *dir, nk_db_inspect *r, nk_errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    nk_version_state vs;
    int rc = nk_manifest_read(rt, dir, &vs, &r->manifest_number, &r->manifest_torn, eb);
    if (rc == NK_ENOENT) {
        nk_vstate_free(&vs);
        if (eb != NULL) {
            eb->msg[0] = '\0'; /* no CURRENT: not an engine workdir, no error */
        }
        return NK_OK;
    }
    r->has_current = true;
    if (rc == NK_OK) {
        r->last_sequence = vs.last_sequence;
        r->log_number = vs.log_number;
        size_t total = 0;
        for (uint32_t l = 0; l < NK_NUM_LEVELS; l++) {
            total += vs.levels[l].count;
        }
        r->files = calloc(total + 1, sizeof(*r->files));
        rc = r->files ? NK_OK : NK_ENOMEM;
        for (uint32_t l = 0; rc == NK_OK && l < NK_NUM_LEVELS; l++) {
            for (size_t i = 0; rc == NK_OK && i < vs.levels[l].count; i++) {
                const nk_file_meta *fm = &vs.levels[l].files[i];
                char path[1100];
                nk_db_sst_path(dir, fm->number, path, sizeof(path));
                nk_stat st;
                int src = nk_rt_stat(rt, path, &st);
                if (src != NK_OK || st.size != fm->size) {
                    nk_errbuf_set(eb,
                                  "table %s (level %u in the manifest) is %s; the engine "
                                  "cannot open this workdir",
                                  path, l,
                                  src != NK_OK ? "missing" : "not the size the manifest records");
                    rc = NK_ECORRUPT;
                    break;
                }
                nk_db_file_info *fi = &r->files[r->n_files++];
                fill_info(fi, fm->number, l, fm->size, fm->has_xxh64, fm->xxh64);
                nk_slice uk = nk_ikey_user(fm->largest.data, fm->largest.len);
                note_key(r, uk.data, uk.len);
                r->table_bytes += fm->size;
            }
        }
    }
    nk_vstate_free(&vs);
    if (rc == NK_OK) {
        rc = scan_wal(rt, dir, r, eb);
    }
    if (rc != NK_OK) {
        nk_db_inspect_free(r);
        r->has_current = true;
    }
    return rc;
}

void nk_db_inspect_free(nk_db_inspect *r)
{
    free(r->files);
    r->files = NULL;
    r->n_files = 0;
}

static int list_version(const nk_version *ver, nk_db_file_info **out, size_t *n)
{
    size_t total = 0;
    for (int l = 0; l < NK_LEVELS; l++) {
        total += ver->count[l];
    }
    nk_db_file_info *v = calloc(total + 1, sizeof(*v));
    if (v == NULL) {
        return NK_ENOMEM;
    }
    size_t k = 0;
    for (int l = 0; l < NK_LEVELS; l++) {
        for (size_t i = 0; i < ver->count[l]; i++) {
            const nk_table_meta *t = ver->files[l][i];
            fill_info(&v[k++], t->number, (uint32_t)l, t->size, t->has_xxh64, t->xxh64);
        }
    }
    *out = v;
    *n = k;
    return NK_OK;
}

int nk_db_live_files(nk_db *db, nk_db_file_info **out, size_t *n)
{
    return list_version(db->current, out, n);
}

int nk_db_tables_pin(nk_db *db, nk_db_tables *out)
{
    memset(out, 0, sizeof(*out));
    int rc = list_version(db->current, &out->files, &out->n);
    if (rc != NK_OK) {
        return rc;
    }
    /* A version reference keeps every file meta referenced, and a table file
     * is deleted only when its last reference goes (version.h). */
    nk_version_ref(db->current);
    out->version = db->current;
    out->last_sequence = db->last_seq;
    return NK_OK;
}

void nk_db_tables_unpin(nk_db *db, nk_db_tables *t)
{
    if (t == NULL) {
        return;
    }
    if (t->version != NULL) {
        nk_version_unref(t->version, nk_db_release_file, db);
    }
    free(t->files);
    memset(t, 0, sizeof(*t));
}
