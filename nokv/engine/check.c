/* check.c - offline verification of a workdir (see check.h). */
#include "nokv/engine/check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/logfile.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/sst.h"
#include "nokv/engine/wal.h"
#include "nokv/util/filehash.h"
#include "nokv/util/names.h"

typedef struct checker {
    nk_rt *rt;
    const char *dir;
    nk_check_fn fn;
    void *arg;
    nk_check_summary *sum;
} checker;

static void report(checker *c, nk_check_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(checker *c, nk_check_level level, const char *fmt, ...)
{
    char line[NK_ERRBUF_SIZE + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (level > c->sum->verdict) {
        c->sum->verdict = level;
    }
    if (level != NK_CHECK_OK) {
        c->sum->problems++;
    }
    c->fn(c->arg, level, line);
}

/* Every block of one table: open (footer, index, filter, props), then read
 * every entry, which reads and verifies every data block. */
static void check_table(checker *c, const nk_file_meta *m, unsigned level)
{
    char name[40];
    snprintf(name, sizeof name, "%06" PRIu64 ".sst", m->number);
    char *path = nk_path_join(c->dir, name);
    if (path == NULL) {
        return;
    }
    c->sum->tables++;
    nk_file *f = NULL;
    int rc = nk_rt_file_open(c->rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        report(c, NK_CHECK_DAMAGED, "table %s (L%u) listed in the manifest cannot be opened: %s",
               path, level, nk_strerror(rc));
        c->sum->tables_damaged++;
        free(path);
        return;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(c->rt, f, &size);
    if (rc == NK_OK && size != m->size) {
        report(c, NK_CHECK_DAMAGED,
               "table %s (L%u) is %" PRIu64 " bytes but the manifest recorded %" PRIu64
               " (truncated or replaced)",
               path, level, size, m->size);
        c->sum->tables_damaged++;
        nk_rt_file_close(c->rt, f);
        free(path);
        return;
    }
    if (m->has_xxh64) {
        /* The writer's hash of every byte: catches damage anywhere in the
         * file, also in bytes no block checksum covers (padding, a footer
         * field the reader would not look at) and bit rot that left a
         * block's own checksum intact by replacing the whole block. */
        uint64_t h = 0, hsize = 0;
        rc = nk_file_xxh64(c->rt, path, &h, &hsize);
        if (rc != NK_OK) {
            report(c, NK_CHECK_DAMAGED, "table %s (L%u) cannot be read: %s", path, level,
                   nk_strerror(rc));
            c->sum->tables_damaged++;
            nk_rt_file_close(c->rt, f);
            free(path);
            return;
        }
        if (h != m->xxh64 || hsize != m->size) {
            report(c, NK_CHECK_DAMAGED,
                   "table %s (L%u): corruption: whole-file checksum mismatch (XXH64 %016" PRIx64
                   ", the manifest recorded %016" PRIx64 " when the table was written)",
                   path, level, h, m->xxh64);
            c->sum->tables_damaged++;
            nk_rt_file_close(c->rt, f);
            free(path);
            return;
        }
        c->sum->tables_hashed++;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof eb);
    nk_sst *t = NULL;
    rc = nk_sst_open(c->rt, f, m->number, path, NULL, &t, &eb);
    if (rc != NK_OK) {
        report(c, NK_CHECK_DAMAGED, "table %s (L%u): %s", path, level,
               eb.msg[0] ? eb.msg : nk_strerror(rc));
        c->sum->tables_damaged++;
        nk_rt_file_close(c->rt, f);
        free(path);
        return;
    }
    nk_sst_iter *it = NULL;
    rc = nk_sst_iter_new(t, NK_SST_NO_CACHE, &it);
    uint64_t entries = 0;
    if (rc == NK_OK) {
        for (nk_sst_iter_first(it); nk_sst_iter_valid(it); nk_sst_iter_next(it)) {
            entries++;
        }
        rc = nk_sst_iter_status(it, &eb);
        nk_sst_iter_free(it);
    }
    const nk_sst_props *p = nk_sst_get_props(t);
    if (rc != NK_OK) {
        report(c, NK_CHECK_DAMAGED, "table %s (L%u): %s", path, level,
               eb.msg[0] ? eb.msg : nk_strerror(rc));
        c->sum->tables_damaged++;
    } else if (entries != p->entries) {
        report(c, NK_CHECK_DAMAGED,
               "table %s (L%u): %" PRIu64 " entries read but its properties say %" PRIu64, path,
               level, entries, p->entries);
        c->sum->tables_damaged++;
    }
    c->sum->entries += entries;
    c->sum->blocks += p->data_blocks;
    nk_sst_close(t);
    free(path);
}

static bool listed(const nk_version_state *vs, uint64_t number)
{
    uint32_t level;
    size_t index;
    return nk_vstate_find(vs, number, &level, &index) == NK_OK;
}

static void check_orphans(checker *c, const nk_version_state *vs)
{
    nk_names names;
    if (nk_rt_dir_list(c->rt, c->dir, &names) != NK_OK) {
        return;
    }
    for (size_t i = 0; i < names.count; i++) {
        uint64_t number = 0;
        if (nk_name_number(names.names[i], strlen(names.names[i]), "", ".sst", &number) &&
            !listed(vs, number)) {
            report(c, NK_CHECK_WARN,
                   "%s/%s is not in the manifest: left by an interrupted flush or compaction "
                   "(the next open deletes it)",
                   c->dir, names.names[i]);
        }
    }
    nk_names_free(&names);
}

int nk_db_check(nk_rt *rt, const char *workdir, nk_check_fn fn, void *arg, nk_check_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    checker c = {rt, workdir, fn, arg, sum};
    nk_version_state vs;
    uint64_t number = 0;
    bool torn = false;
    nk_errbuf eb;
    memset(&eb, 0, sizeof eb);
    int rc = nk_manifest_read(rt, workdir, &vs, &number, &torn, &eb);
    if (rc == NK_ENOMEM) {
        nk_vstate_free(&vs);
        return rc;
    }
    if (rc != NK_OK) {
        report(&c, NK_CHECK_DAMAGED, "%s", eb.msg[0] ? eb.msg : nk_strerror(rc));
        nk_vstate_free(&vs);
        return NK_OK; /* without a manifest nothing else can be judged */
    }
    report(&c, NK_CHECK_OK,
           "manifest MANIFEST-%06" PRIu64 ": %zu tables, last sequence %" PRIu64
           ", WAL from lsn %" PRIu64,
           number, nk_vstate_file_count(&vs), vs.last_sequence, vs.log_number);
    if (torn) {
        report(&c, NK_CHECK_WARN,
               "manifest MANIFEST-%06" PRIu64 ": torn last record (never acknowledged; the "
               "next open cuts it)",
               number);
    }

    char *wal = nk_path_join(workdir, "wal");
    if (wal == NULL) {
        nk_vstate_free(&vs);
        return NK_ENOMEM;
    }
    nk_wal_options wo;
    nk_wal_options_default(&wo);
    wo.replay_from = vs.log_number;
    wo.min_segment = vs.wal_segment;
    wo.min_durable = vs.wal_durable;
    nk_wal_recovery wr;
    nk_stat st;
    if (nk_rt_stat(rt, wal, &st) != NK_OK) {
        if (vs.wal_segment != 0) {
            report(&c, NK_CHECK_DAMAGED,
                   "wal: %s is missing, but the manifest records WAL segment %" PRIu64
                   " and lsns up to %" PRIu64 " as durable",
                   wal, vs.wal_segment, vs.wal_durable);
        }
    } else {
        memset(&eb, 0, sizeof eb);
        rc = nk_wal_check(rt, wal, &wo, &wr, &eb);
        sum->wal_segments = wr.segments;
        sum->wal_records = wr.records;
        if (rc == NK_ENOMEM) {
            free(wal);
            nk_vstate_free(&vs);
            return rc;
        }
        if (rc != NK_OK) {
            report(&c, NK_CHECK_DAMAGED, "%s", eb.msg[0] ? eb.msg : nk_strerror(rc));
        } else {
            report(&c, NK_CHECK_OK,
                   "wal %s: %" PRIu64 " segments, %" PRIu64 " records (lsn %" PRIu64
                   "..%" PRIu64 ")",
                   wal, wr.segments, wr.records, wr.first_lsn, wr.last_lsn);
            if (wr.torn) {
                report(&c, NK_CHECK_WARN,
                       "wal: torn tail in segment %06" PRIu64 " at offset %" PRIu64
                       ": %" PRIu64 " bytes no sync claim covers (the next open cuts them)",
                       wr.torn_segment, wr.torn_offset, wr.discarded_bytes);
            }
        }
    }
    free(wal);

    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < vs.levels[l].count; i++) {
            check_table(&c, &vs.levels[l].files[i], l);
        }
    }
    check_orphans(&c, &vs);
    report(&c, NK_CHECK_OK,
           "tables: %" PRIu64 " checked, %" PRIu64 " damaged, %" PRIu64 " entries in %" PRIu64
           " data blocks, %" PRIu64 " whole-file XXH64 as recorded",
           sum->tables, sum->tables_damaged, sum->entries, sum->blocks, sum->tables_hashed);
    nk_vstate_free(&vs);
    return NK_OK;
}
