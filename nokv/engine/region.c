/* region.c - key-range export as linked and copied tables, and install by
 * link (see region.h for the format and the guarantees). */
#include "nokv/engine/region.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "nokv/engine/db_impl.h"
#include "nokv/engine/iter.h"

#define META_MAX (64u << 20)
#define NAME_CAP 64

typedef enum { OP_EXPORT = 1, OP_INGEST } op_kind;

/* One file of a region directory: REGION.json's entry plus, once read, the
 * table's own properties (internal keys, for the manifest). */
typedef struct rfile {
    char name[NAME_CAP];
    uint32_t level;
    uint64_t size;
    uint64_t entries;
    uint64_t number; /* export: source table; ingest: the db number it gets */
    bool link;       /* export: hard-link it (else copy its in-range part) */
    uint64_t min_seq, max_seq;
    nk_buf ismallest, ilargest;
} rfile;

/* Parsed REGION.json. */
typedef struct region_meta {
    nk_buf start, end;
    uint64_t snapshot_seq;
    uint64_t max_seq;
    rfile *files;
    size_t nfiles;
} region_meta;

typedef struct region_op {
    struct region_op *next;
    op_kind kind;
    nk_db *db;
    nk_rt *rt;
    char dir[1024];    /* export target / ingest source */
    char db_dir[1024]; /* the db's own directory */
    nk_buf start, end;
    uint64_t seq;       /* export: snapshot; ingest: floor (link) or stamp (rewrite) */
    nk_version *pinned; /* export: the tables read */
    region_meta m;      /* export: what is written; ingest: what was read */
    /* ingest */
    bool rewrite;               /* the fallback */
    uint32_t *del_level;        /* the range's tables the edit deletes */
    uint64_t *del_number;
    size_t ndel;
    uint64_t next_number, end_number; /* reserved file numbers */
    rfile *outs;                /* rewrite: tables written */
    size_t nouts;
    size_t linked;              /* link: names created in the db */
    nk_sst_options sst;
    uint64_t target_bytes;
    nk_region_done_fn done;
    void *arg;
    int rc;
    nk_errbuf eb;
    nk_region_result res;
} region_op;

/* ---------------------------------------------------------------- helpers --- */

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static int hex_decode(const char *s, nk_buf *out)
{
    size_t n = strlen(s);
    if (n % 2 != 0) {
        return NK_ECORRUPT;
    }
    nk_buf_clear(out);
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_val(s[i]), lo = hex_val(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return NK_ECORRUPT;
        }
        if (nk_buf_append_u8(out, (uint8_t)(hi * 16 + lo)) != NK_OK) {
            return NK_ENOMEM;
        }
    }
    return NK_OK;
}

static json_t *hex_json(const nk_buf *b)
{
    char *h = malloc(2 * b->len + 1);
    if (h == NULL) {
        return NULL;
    }
    hex_encode(b->data, b->len, h);
    json_t *j = json_string(h);
    free(h);
    return j;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}


static bool below_end(const nk_buf *end, const uint8_t *k, size_t n)
{
    return end->len == 0 || nk_bytes_cmp(k, n, end->data, end->len) < 0;
}

static bool in_range(const nk_buf *start, const nk_buf *end, const uint8_t *k, size_t n)
{
    return (start->len == 0 || nk_bytes_cmp(k, n, start->data, start->len) >= 0) &&
           below_end(end, k, n);
}

static void rfiles_free(rfile *f, size_t n)
{
    for (size_t i = 0; f != NULL && i < n; i++) {
        nk_buf_free(&f[i].ismallest);
        nk_buf_free(&f[i].ilargest);
    }
    free(f);
}

static void meta_free(region_meta *m)
{
    nk_buf_free(&m->start);
    nk_buf_free(&m->end);
    rfiles_free(m->files, m->nfiles);
    memset(m, 0, sizeof(*m));
}

static void op_free(region_op *op)
{
    meta_free(&op->m);
    rfiles_free(op->outs, op->nouts);
    free(op->del_level);
    free(op->del_number);
    nk_buf_free(&op->start);
    nk_buf_free(&op->end);
    free(op);
}

static void op_unlink(nk_db *db, region_op *op)
{
    for (region_op **p = &db->region_ops; *p != NULL; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            return;
        }
    }
}

void nk_db_abandon_region_ops(nk_db *db)
{
    while (db->region_ops != NULL) {
        region_op *op = db->region_ops;
        db->region_ops = op->next;
        if (op->pinned != NULL) {
            nk_version_unref(op->pinned, nk_db_release_file, NULL);
        }
        op_free(op);
    }
}

/* Complete an operation on the loop thread. */
static void op_finish(region_op *op)
{
    nk_db *db = op->db;
    op_unlink(db, op);
    if (op->pinned != NULL) {
        nk_version_unref(op->pinned, nk_db_release_file, db);
        op->pinned = NULL;
    }
    if (op->kind == OP_EXPORT) {
        nk_db_release_snapshot(db, op->seq);
    }
    op->done(op->arg, op->rc, &op->res, &op->eb);
    op_free(op);
    if (db->closing) {
        nk_db_finish_close(db);
    }
}

/* Open a table file without the cache (jobs). */
static int open_table(nk_rt *rt, const char *path, nk_sst **out, nk_errbuf *eb)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot open: %s", path, nk_strerror(rc));
        return rc == NK_ENOENT ? NK_ECORRUPT : rc;
    }
    rc = nk_sst_open(rt, f, 0, path, NULL, out, eb);
    if (rc != NK_OK) {
        nk_rt_file_close(rt, f);
    }
    return rc;
}

/* ---------------------------------------------------------------- metadata --- */

static char *meta_canonical(json_t *o)
{
    return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

static int write_meta(region_op *op)
{
    json_t *o = json_object();
    json_t *files = json_array();
    if (o == NULL || files == NULL) {
        json_decref(o);
        json_decref(files);
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < op->m.nfiles; i++) {
        const rfile *f = &op->m.files[i];
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(f->name));
        json_object_set_new(e, "level", json_integer((json_int_t)f->level));
        json_object_set_new(e, "size", json_integer((json_int_t)f->size));
        json_object_set_new(e, "entries", json_integer((json_int_t)f->entries));
        json_array_append_new(files, e);
    }
    json_object_set_new(o, "format", json_integer(NK_REGION_FORMAT));
    json_object_set_new(o, "snapshot_seq", json_integer((json_int_t)op->seq));
    json_object_set_new(o, "max_seq", json_integer((json_int_t)op->m.max_seq));
    json_object_set_new(o, "start", hex_json(&op->start));
    json_object_set_new(o, "end", hex_json(&op->end));
    json_object_set_new(o, "files", files);
    char *canon = meta_canonical(o);
    if (canon == NULL) {
        json_decref(o);
        return NK_ENOMEM;
    }
    char sum[17];
    snprintf(sum, sizeof(sum), "%016" PRIx64, (uint64_t)XXH64(canon, strlen(canon), 0));
    free(canon);
    json_object_set_new(o, "xxh64", json_string(sum));
    char *text = meta_canonical(o);
    json_decref(o);
    if (text == NULL) {
        return NK_ENOMEM;
    }
    char path[1100], tmp[1110];
    join(path, sizeof(path), op->dir, NK_REGION_META);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(op->rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc == NK_OK) {
        rc = nk_rt_file_write_at(op->rt, f, 0, text, strlen(text));
    }
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(op->rt, f);
    }
    if (f != NULL) {
        nk_rt_file_close(op->rt, f);
    }
    free(text);
    if (rc == NK_OK) {
        rc = nk_failpoint(op->rt, "region.export.before_meta");
    }
    if (rc == NK_OK) {
        rc = nk_rt_rename(op->rt, tmp, path);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(op->rt, op->dir);
    }
    if (rc != NK_OK && op->eb.msg[0] == '\0') {
        nk_errbuf_set(&op->eb, "writing %s: %s", path, nk_strerror(rc));
    }
    return rc;
}

static int parse_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return NK_ECORRUPT;
    }
    *out = (uint64_t)json_integer_value(v);
    return NK_OK;
}

static bool safe_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len >= NAME_CAP || n[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static int read_meta(nk_rt *rt, const char *dir, region_meta *m, nk_errbuf *eb)
{
    memset(m, 0, sizeof(*m));
    char path[1100];
    join(path, sizeof(path), dir, NK_REGION_META);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: %s (an export that did not finish has no metadata)", path,
                      nk_strerror(rc));
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(rt, f, &size);
    char *text = NULL;
    if (rc == NK_OK && size > META_MAX) {
        nk_errbuf_set(eb, "%s: %" PRIu64 " bytes, too large for region metadata", path, size);
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        text = malloc((size_t)size + 1);
        size_t got = 0;
        rc = text ? nk_rt_file_read_at(rt, f, 0, text, (size_t)size, &got) : NK_ENOMEM;
        if (rc == NK_OK && got != size) {
            rc = NK_EIO;
        }
    }
    nk_rt_file_close(rt, f);
    if (rc != NK_OK) {
        free(text);
        return rc;
    }
    json_error_t jerr;
    json_t *o = json_loadb(text, (size_t)size, 0, &jerr);
    free(text);
    if (o == NULL || !json_is_object(o)) {
        nk_errbuf_set(eb, "%s: not valid JSON", path);
        json_decref(o);
        return NK_ECORRUPT;
    }
    rc = NK_ECORRUPT;
    json_t *sum = json_object_get(o, "xxh64");
    char want[17] = "";
    if (json_is_string(sum)) {
        snprintf(want, sizeof(want), "%s", json_string_value(sum));
    }
    json_object_del(o, "xxh64");
    char *canon = meta_canonical(o);
    char got[17] = "";
    if (canon != NULL) {
        snprintf(got, sizeof(got), "%016" PRIx64, (uint64_t)XXH64(canon, strlen(canon), 0));
        free(canon);
    }
    json_t *files = json_object_get(o, "files");
    json_t *fmt = json_object_get(o, "format");
    if (strcmp(want, got) != 0) {
        nk_errbuf_set(eb, "%s: checksum mismatch: the metadata is damaged or was edited", path);
        goto out;
    }
    if (!json_is_integer(fmt) || json_integer_value(fmt) != NK_REGION_FORMAT) {
        nk_errbuf_set(eb, "%s: unsupported format (this build reads format %d)", path,
                      NK_REGION_FORMAT);
        goto out;
    }
    if (!json_is_array(files) || !json_is_string(json_object_get(o, "start")) ||
        !json_is_string(json_object_get(o, "end")) ||
        parse_u64(json_object_get(o, "snapshot_seq"), &m->snapshot_seq) != NK_OK ||
        parse_u64(json_object_get(o, "max_seq"), &m->max_seq) != NK_OK ||
        hex_decode(json_string_value(json_object_get(o, "start")), &m->start) != NK_OK ||
        hex_decode(json_string_value(json_object_get(o, "end")), &m->end) != NK_OK ||
        m->max_seq > NK_SEQ_MAX) {
        nk_errbuf_set(eb, "%s: missing or malformed fields", path);
        goto out;
    }
    m->nfiles = json_array_size(files);
    m->files = calloc(m->nfiles + 1, sizeof(rfile));
    if (m->files == NULL) {
        rc = NK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *e = json_array_get(files, i);
        json_t *name = json_object_get(e, "name");
        uint64_t level = 0;
        if (!json_is_string(name) || !safe_name(json_string_value(name)) ||
            parse_u64(json_object_get(e, "level"), &level) != NK_OK || level >= NK_LEVELS ||
            parse_u64(json_object_get(e, "size"), &m->files[i].size) != NK_OK ||
            parse_u64(json_object_get(e, "entries"), &m->files[i].entries) != NK_OK) {
            nk_errbuf_set(eb, "%s: file entry %zu is malformed", path, i);
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(m->files[k].name, json_string_value(name)) == 0) {
                nk_errbuf_set(eb, "%s: file %s is listed twice", path, m->files[k].name);
                goto out;
            }
        }
        snprintf(m->files[i].name, sizeof(m->files[i].name), "%s", json_string_value(name));
        m->files[i].level = (uint32_t)level;
    }
    rc = NK_OK;
out:
    json_decref(o);
    if (rc != NK_OK) {
        meta_free(m);
    }
    return rc;
}

/* Check one listed table against the metadata: size, footer and blocks
 * that open reads, properties inside the range and at or below max_seq,
 * first and last entries as the properties say (that reads the first and
 * last data blocks). Fills the internal keys and sequence range. With
 * `full`, every entry is read and checked (nk_region_verify). */
static int check_table(nk_rt *rt, const char *dir, const region_meta *m, rfile *rf, bool full,
                       uint64_t *entries, nk_errbuf *eb)
{
    char path[1100];
    join(path, sizeof(path), dir, rf->name);
    nk_sst *t = NULL;
    int rc = open_table(rt, path, &t, eb);
    if (rc != NK_OK) {
        return rc;
    }
    const nk_sst_props *p = nk_sst_get_props(t);
    nk_slice su = nk_ikey_user(p->smallest.data, p->smallest.len);
    nk_slice lu = nk_ikey_user(p->largest.data, p->largest.len);
    if (nk_sst_file_size(t) != rf->size || p->entries != rf->entries || p->entries == 0 ||
        p->smallest.len < 8 || p->largest.len < 8 || p->max_seq > m->max_seq ||
        p->min_seq > p->max_seq || !in_range(&m->start, &m->end, su.data, su.len) ||
        !in_range(&m->start, &m->end, lu.data, lu.len)) {
        nk_errbuf_set(eb, "%s: size %" PRIu64 ", %" PRIu64 " entries, seq up to %" PRIu64
                          ": does not match the metadata (size %" PRIu64 ", %" PRIu64
                          " entries, inside the range, seq up to %" PRIu64 ")",
                      path, nk_sst_file_size(t), p->entries, p->max_seq, rf->size, rf->entries,
                      m->max_seq);
        nk_sst_close(t);
        return NK_ECORRUPT;
    }
    rc = nk_buf_assign(&rf->ismallest, p->smallest.data, p->smallest.len);
    rc = rc ? rc : nk_buf_assign(&rf->ilargest, p->largest.data, p->largest.len);
    rf->min_seq = p->min_seq;
    rf->max_seq = p->max_seq;
    nk_iter *it = NULL;
    rc = rc ? rc : nk_iter_sst(t, NK_SST_NO_CACHE, &it);
    if (rc == NK_OK) {
        uint64_t seen = 0;
        nk_buf prev = {0};
        nk_iter_first(it);
        if (!nk_iter_valid(it) ||
            nk_bytes_cmp(nk_iter_key(it).data, nk_iter_key(it).len, p->smallest.data,
                         p->smallest.len) != 0) {
            rc = NK_ECORRUPT;
        }
        while (rc == NK_OK && full && nk_iter_valid(it)) {
            nk_slice k = nk_iter_key(it);
            nk_ikey ik;
            if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK || ik.seq > m->max_seq ||
                !in_range(&m->start, &m->end, ik.ukey.data, ik.ukey.len) ||
                (seen > 0 && nk_ikey_cmp(prev.data, prev.len, k.data, k.len) >= 0)) {
                rc = NK_ECORRUPT;
                break;
            }
            rc = nk_buf_assign(&prev, k.data, k.len);
            seen++;
            nk_iter_next(it);
        }
        if (rc == NK_OK && !full) {
            nk_iter_last(it);
            if (!nk_iter_valid(it) ||
                nk_bytes_cmp(nk_iter_key(it).data, nk_iter_key(it).len, p->largest.data,
                             p->largest.len) != 0) {
                rc = NK_ECORRUPT;
            }
        }
        int irc = nk_iter_status(it, eb);
        if (irc != NK_OK) {
            rc = irc;
        } else if (rc == NK_ECORRUPT) {
            nk_errbuf_set(eb, "%s: entries do not match the table's properties or the range",
                          path);
        }
        if (rc == NK_OK && full && seen != p->entries) {
            nk_errbuf_set(eb, "%s: %" PRIu64 " entries, properties say %" PRIu64, path, seen,
                          p->entries);
            rc = NK_ECORRUPT;
        }
        if (entries != NULL) {
            *entries += full ? seen : p->entries;
        }
        nk_buf_free(&prev);
        nk_iter_free(it);
    }
    nk_sst_close(t);
    return rc;
}

/* Levels >= 1 of the set must be disjoint by user key, as in any version. */
static int check_disjoint(const region_meta *m, nk_errbuf *eb)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        for (size_t k = i + 1; k < m->nfiles; k++) {
            const rfile *a = &m->files[i], *b = &m->files[k];
            if (a->level == 0 || a->level != b->level) {
                continue;
            }
            nk_slice as = nk_ikey_user(a->ismallest.data, a->ismallest.len);
            nk_slice al = nk_ikey_user(a->ilargest.data, a->ilargest.len);
            nk_slice bs = nk_ikey_user(b->ismallest.data, b->ismallest.len);
            nk_slice bl = nk_ikey_user(b->ilargest.data, b->ilargest.len);
            if (nk_bytes_cmp(as.data, as.len, bl.data, bl.len) <= 0 &&
                nk_bytes_cmp(bs.data, bs.len, al.data, al.len) <= 0) {
                nk_errbuf_set(eb, "%s and %s overlap at level %u", a->name, b->name, a->level);
                return NK_ECORRUPT;
            }
        }
    }
    return NK_OK;
}

int nk_region_verify(nk_rt *rt, const char *dir, nk_region_result *r, nk_errbuf *eb)
{
    region_meta m;
    int rc = read_meta(rt, dir, &m, eb);
    if (rc != NK_OK) {
        return rc;
    }
    if (r != NULL) {
        memset(r, 0, sizeof(*r));
        r->snapshot_seq = m.snapshot_seq;
    }
    uint64_t entries = 0;
    for (size_t i = 0; i < m.nfiles && rc == NK_OK; i++) {
        rc = check_table(rt, dir, &m, &m.files[i], true, &entries, eb);
        if (rc == NK_OK && r != NULL) {
            r->files++;
            r->bytes += m.files[i].size;
        }
    }
    rc = rc ? rc : check_disjoint(&m, eb);
    if (r != NULL) {
        r->entries = entries;
    }
    meta_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ export --- */

static void parent_of(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s", dir);
    char *slash = strrchr(out, '/');
    if (slash == NULL) {
        snprintf(out, cap, ".");
    } else if (slash == out) {
        out[1] = '\0';
    } else {
        *slash = '\0';
    }
}

/* Copy the in-range entries at or below the snapshot of source table rf
 * into dir/rf->name, keeping their internal keys. An empty result leaves
 * no file (rf->entries = 0). */
static int copy_part(region_op *op, rfile *rf)
{
    nk_rt *rt = op->rt;
    char src[1100], dst[1100];
    nk_db_table_path(op->db, rf->number, src, sizeof(src));
    join(dst, sizeof(dst), op->dir, rf->name);
    nk_sst *t = NULL;
    int rc = open_table(rt, src, &t, &op->eb);
    if (rc != NK_OK) {
        return rc;
    }
    nk_iter *it = NULL;
    nk_file *f = NULL;
    nk_sst_builder *b = NULL;
    nk_sst_props props;
    memset(&props, 0, sizeof(props));
    rc = nk_iter_sst(t, NK_SST_NO_CACHE, &it);
    if (rc == NK_OK) {
        if (op->start.len > 0) {
            nk_buf seek = {0};
            rc = nk_ikey_append(&seek, op->start.data, op->start.len, NK_SEQ_MAX, NK_KT_SEEK);
            if (rc == NK_OK) {
                nk_iter_seek(it, seek.data, seek.len);
            }
            nk_buf_free(&seek);
        } else {
            nk_iter_first(it);
        }
    }
    rf->entries = 0;
    while (rc == NK_OK && nk_iter_valid(it)) {
        nk_slice k = nk_iter_key(it);
        nk_ikey ik;
        if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK) {
            nk_errbuf_set(&op->eb, "%s: malformed internal key", src);
            rc = NK_ECORRUPT;
            break;
        }
        if (!below_end(&op->end, ik.ukey.data, ik.ukey.len)) {
            break;
        }
        if (ik.seq <= op->seq) { /* newer: written after the export began */
            if (b == NULL) {
                rc = nk_rt_file_open(rt, dst, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f);
                rc = rc ? rc : nk_sst_builder_new(rt, f, &op->sst, &b);
            }
            nk_slice v = nk_iter_value(it);
            rc = rc ? rc : nk_sst_builder_add(b, k.data, k.len, v.data, v.len);
            rf->entries++;
        }
        nk_iter_next(it);
    }
    if (rc == NK_OK && it != NULL) {
        rc = nk_iter_status(it, &op->eb);
    }
    if (rc == NK_OK && b != NULL) {
        rc = nk_sst_builder_finish(b, &rf->size, &props);
        rc = rc ? rc : nk_rt_file_sync(rt, f);
        rf->max_seq = props.max_seq;
        nk_sst_props_free(&props);
    }
    if (b != NULL) {
        nk_sst_builder_free(b);
    }
    if (f != NULL) {
        nk_rt_file_close(rt, f);
    }
    if (it != NULL) {
        nk_iter_free(it);
    }
    nk_sst_close(t);
    if (rc != NK_OK && op->eb.msg[0] == '\0') {
        nk_errbuf_set(&op->eb, "copying the range's part of %s: %s", src, nk_strerror(rc));
    }
    return rc;
}

static void export_work(void *arg)
{
    region_op *op = arg;
    nk_rt *rt = op->rt;
    op->rc = nk_rt_dir_create(rt, op->dir);
    if (op->rc == NK_EEXIST) {
        nk_errbuf_set(&op->eb, "export directory %s already exists", op->dir);
    }
    if (op->rc == NK_OK) {
        /* The directory's own entry must survive a power loss too. */
        char parent[1024];
        parent_of(op->dir, parent, sizeof(parent));
        op->rc = nk_rt_dir_sync(rt, parent);
    }
    size_t kept = 0;
    for (size_t i = 0; i < op->m.nfiles && op->rc == NK_OK; i++) {
        rfile *rf = &op->m.files[i];
        if (rf->link) {
            char src[1100], dst[1100];
            nk_db_table_path(op->db, rf->number, src, sizeof(src));
            join(dst, sizeof(dst), op->dir, rf->name);
            /* The table is immutable and pinned: a second name costs no
             * byte of data, and keeps it alive after a compaction. */
            op->rc = nk_rt_link(rt, src, dst);
            if (op->rc != NK_OK) {
                nk_errbuf_set(&op->eb, "linking %s to %s: %s", src, dst, nk_strerror(op->rc));
                break;
            }
            op->res.linked++;
            /* The entry count for REGION.json: the properties block only. */
            nk_sst *t = NULL;
            op->rc = open_table(rt, dst, &t, &op->eb);
            if (op->rc == NK_OK) {
                rf->entries = nk_sst_get_props(t)->entries;
                nk_sst_close(t);
            }
        } else {
            op->rc = copy_part(op, rf);
            if (op->rc == NK_OK && rf->entries == 0) {
                nk_buf_free(&rf->ismallest); /* nothing of this table inside the range */
                nk_buf_free(&rf->ilargest);
                continue;
            }
        }
        if (op->rc != NK_OK) {
            break;
        }
        if (rf->max_seq > op->m.max_seq) {
            op->m.max_seq = rf->max_seq;
        }
        op->res.files++;
        op->res.bytes += rf->size;
        op->res.entries += rf->entries;
        if (kept != i) {
            op->m.files[kept] = *rf;
            memset(rf, 0, sizeof(*rf));
        }
        kept++;
    }
    if (op->rc == NK_OK) {
        op->m.nfiles = kept; /* entries past `kept` own nothing now */
        op->rc = nk_rt_dir_sync(rt, op->dir);
    }
    if (op->rc == NK_OK) {
        op->rc = write_meta(op);
    }
    op->res.snapshot_seq = op->seq;
}

static void export_done(void *arg) { op_finish(arg); }

static int cmp_rfile_key(const void *a, const void *b)
{
    const rfile *x = a, *y = b;
    return nk_ikey_cmp(x->ismallest.data, x->ismallest.len, y->ismallest.data, y->ismallest.len);
}

static void export_idle(void *arg, int status)
{
    region_op *op = arg;
    nk_db *db = op->db;
    if (status != NK_OK) {
        op->rc = status;
        nk_errbuf_set(&op->eb, "flushing before the export failed: %s", nk_strerror(status));
        op_finish(op);
        return;
    }
    /* Pin the tables that hold everything up to the snapshot. */
    op->pinned = db->current;
    nk_version_ref(op->pinned);
    size_t total = 0;
    for (int l = 0; l < NK_LEVELS; l++) {
        total += op->pinned->count[l];
    }
    op->m.files = calloc(total + 1, sizeof(rfile));
    if (op->m.files == NULL) {
        op->rc = NK_ENOMEM;
        op_finish(op);
        return;
    }
    /* Read order: level 0 by file number (older first), then each deeper
     * level by key; the version keeps exactly that order. */
    for (int l = 0; l < NK_LEVELS; l++) {
        nk_table_meta **fs = NULL;
        size_t n = 0;
        nk_version_overlaps(op->pinned, l, nk_slice_make(op->start.data, op->start.len),
                            nk_slice_make(NULL, 0), &fs, &n);
        for (size_t i = 0; i < n; i++) {
            nk_slice s = nk_ikey_user(fs[i]->smallest.data, fs[i]->smallest.len);
            nk_slice g = nk_ikey_user(fs[i]->largest.data, fs[i]->largest.len);
            if (!below_end(&op->end, s.data, s.len)) {
                continue;
            }
            rfile *rf = &op->m.files[op->m.nfiles];
            rf->number = fs[i]->number;
            rf->level = (uint32_t)l;
            rf->size = fs[i]->size;
            rf->max_seq = fs[i]->max_seq;
            rf->link = in_range(&op->start, &op->end, s.data, s.len) &&
                       in_range(&op->start, &op->end, g.data, g.len) &&
                       fs[i]->max_seq <= op->seq;
            (void)nk_buf_assign(&rf->ismallest, fs[i]->smallest.data, fs[i]->smallest.len);
            op->m.nfiles++;
        }
        free(fs);
    }
    /* nk_version_overlaps keeps each level's order: L0 by number, deeper
     * levels by key. Sort deeper levels anyway (cheap, and the order is
     * the contract of REGION.json). */
    size_t l0 = 0;
    while (l0 < op->m.nfiles && op->m.files[l0].level == 0) {
        l0++;
    }
    for (size_t i = l0; i < op->m.nfiles;) {
        size_t k = i;
        while (k < op->m.nfiles && op->m.files[k].level == op->m.files[i].level) {
            k++;
        }
        qsort(&op->m.files[i], k - i, sizeof(rfile), cmp_rfile_key);
        i = k;
    }
    for (size_t i = 0; i < op->m.nfiles; i++) {
        snprintf(op->m.files[i].name, sizeof(op->m.files[i].name), "%06zu.sst", i + 1);
    }
    int rc = nk_rt_job_submit(db->rt, "engine.export", export_work, export_done, op);
    if (rc != NK_OK) {
        op->rc = rc;
        op_finish(op);
    }
}

static region_op *op_new(nk_db *db, op_kind kind, const char *dir, nk_region_done_fn done,
                         void *arg)
{
    region_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return NULL;
    }
    op->kind = kind;
    op->db = db;
    op->rt = db->rt;
    snprintf(op->dir, sizeof(op->dir), "%s", dir);
    snprintf(op->db_dir, sizeof(op->db_dir), "%s", db->dir);
    op->sst = db->o.sst;
    op->target_bytes = db->o.target_file_bytes;
    op->done = done;
    op->arg = arg;
    op->next = db->region_ops;
    db->region_ops = op;
    return op;
}

int nk_db_export_range(nk_db *db, nk_slice start, nk_slice end, const char *dir,
                       uint64_t target_file_bytes, nk_region_done_fn done, void *arg)
{
    (void)target_file_bytes;
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    if (end.len > 0 && start.len > 0 && nk_bytes_cmp(start.data, start.len, end.data, end.len) >= 0) {
        return NK_EINVAL;
    }
    region_op *op = op_new(db, OP_EXPORT, dir, done, arg);
    if (op == NULL) {
        return NK_ENOMEM;
    }
    if (nk_buf_assign(&op->start, start.data, start.len) != NK_OK ||
        nk_buf_assign(&op->end, end.data, end.len) != NK_OK) {
        op_unlink(db, op);
        op_free(op);
        return NK_ENOMEM;
    }
    /* The snapshot keeps compaction from dropping versions the export must
     * see; the flush puts everything up to it into tables. */
    op->seq = nk_db_snapshot(db);
    return nk_db_flush(db, export_idle, op);
}

/* ------------------------------------------------------------------ ingest --- */

static void remove_names(region_op *op, uint64_t from, uint64_t to)
{
    for (uint64_t n = from; n < to; n++) {
        char path[1100];
        nk_db_table_path(op->db, n, path, sizeof(path));
        (void)nk_rt_remove(op->rt, path);
    }
}

/* Job: read and check the metadata and every table (no manifest access). */
static void check_work(void *arg)
{
    region_op *op = arg;
    op->rc = read_meta(op->rt, op->dir, &op->m, &op->eb);
    for (size_t i = 0; op->rc == NK_OK && i < op->m.nfiles; i++) {
        op->rc = check_table(op->rt, op->dir, &op->m, &op->m.files[i], false, &op->res.entries,
                             &op->eb);
        op->res.bytes += op->m.files[i].size;
    }
    if (op->rc == NK_OK) {
        op->rc = check_disjoint(&op->m, &op->eb);
    }
}

/* One edit publishes every file: all or nothing. */
static int log_install(region_op *op, bool is_flush)
{
    size_t n = op->rewrite ? op->nouts : op->m.nfiles;
    const rfile *fs = op->rewrite ? op->outs : op->m.files;
    nk_db_edit_add *adds = calloc(n + 1, sizeof(*adds));
    if (adds == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        adds[i] = (nk_db_edit_add){fs[i].level,
                                   fs[i].number,
                                   fs[i].size,
                                   nk_slice_make(fs[i].ismallest.data, fs[i].ismallest.len),
                                   nk_slice_make(fs[i].ilargest.data, fs[i].ilargest.len),
                                   fs[i].min_seq,
                                   fs[i].max_seq,
                                   false, /* no recorded hash: verified whole at */
                                   0};    /* ingest, hashed on demand after */
    }
    nk_db_edit_desc d;
    memset(&d, 0, sizeof(d));
    d.next_file = op->end_number;
    d.add = adds;
    d.nadd = n;
    d.del_level = op->del_level;
    d.del_number = op->del_number;
    d.ndel = op->ndel;
    if (is_flush) {
        /* rewrite: memtable flushed and writes held, so every number up to
         * the stamp is in a table */
        d.is_flush = true;
        d.flushed_seq = op->seq;
        d.log_number = 0;
    } else {
        d.seq_floor = op->seq;
    }
    int rc = nk_failpoint(op->rt, "region.ingest.before_publish");
    rc = rc ? rc : nk_db_job_log_edit(op->db->manifest, &d, &op->eb);
    free(adds);
    return rc;
}

/* Job (exclusive slot): give every file its db name by a hard link, sync
 * the directory, log the edit. */
static void link_work(void *arg)
{
    region_op *op = arg;
    nk_rt *rt = op->rt;
    op->rc = NK_OK;
    for (size_t i = 0; i < op->m.nfiles && op->rc == NK_OK; i++) {
        char src[1100], dst[1100];
        join(src, sizeof(src), op->dir, op->m.files[i].name);
        nk_db_table_path(op->db, op->m.files[i].number, dst, sizeof(dst));
        op->rc = nk_rt_link(rt, src, dst);
        if (op->rc != NK_OK) {
            nk_errbuf_set(&op->eb, "linking %s into the db as %s: %s", src, dst,
                          nk_strerror(op->rc));
        } else {
            op->linked++;
        }
    }
    if (op->rc == NK_OK) {
        op->rc = nk_rt_dir_sync(rt, op->db_dir);
    }
    if (op->rc == NK_OK) {
        op->rc = log_install(op, false);
    }
    if (op->rc != NK_OK && op->rc != NK_ECRASHED) {
        remove_names(op, op->next_number, op->next_number + op->linked);
    }
}

/* Job (exclusive slot, writes held): the newest version of every key of
 * the set, as puts stamped op->seq, into level-0 tables. */
static void rewrite_work(void *arg)
{
    region_op *op = arg;
    nk_rt *rt = op->rt;
    size_t n = op->m.nfiles;
    nk_sst **tables = calloc(n + 1, sizeof(nk_sst *));
    nk_iter **kids = calloc(n + 1, sizeof(nk_iter *));
    nk_iter *merged = NULL;
    size_t nk = 0;
    op->rc = tables && kids ? NK_OK : NK_ENOMEM;
    for (size_t i = 0; i < n && op->rc == NK_OK; i++) {
        char path[1100];
        join(path, sizeof(path), op->dir, op->m.files[i].name);
        op->rc = open_table(rt, path, &tables[i], &op->eb);
        if (op->rc == NK_OK) {
            op->rc = nk_iter_sst(tables[i], NK_SST_NO_CACHE, &kids[nk]);
            nk += op->rc == NK_OK;
        }
    }
    if (op->rc == NK_OK) {
        op->rc = nk_iter_merge(kids, nk, &merged);
        nk = 0;
    }
    nk_file *f = NULL;
    nk_sst_builder *b = NULL;
    nk_buf last = {0}, ik = {0};
    bool have_last = false;
    if (op->rc == NK_OK) {
        nk_iter_first(merged);
    }
    /* Close the current output: footer, sync, record it. */
#define FINISH_OUT()                                                                          \
    do {                                                                                      \
        nk_sst_props pr;                                                                      \
        memset(&pr, 0, sizeof(pr));                                                           \
        rfile *o = &op->outs[op->nouts - 1];                                                  \
        op->rc = nk_sst_builder_finish(b, &o->size, &pr);                                     \
        op->rc = op->rc ? op->rc : nk_rt_file_sync(rt, f);                                    \
        if (op->rc == NK_OK) {                                                                \
            o->ismallest = pr.smallest;                                                       \
            o->ilargest = pr.largest;                                                         \
            memset(&pr.smallest, 0, sizeof(pr.smallest));                                    \
            memset(&pr.largest, 0, sizeof(pr.largest));                                       \
            o->min_seq = o->max_seq = op->seq;                                                \
            o->entries = pr.entries;                                                          \
        }                                                                                     \
        nk_sst_props_free(&pr);                                                               \
        nk_sst_builder_free(b);                                                               \
        b = NULL;                                                                             \
        nk_rt_file_close(rt, f);                                                              \
        f = NULL;                                                                             \
    } while (0)
    while (op->rc == NK_OK && nk_iter_valid(merged)) {
        nk_slice k = nk_iter_key(merged);
        nk_ikey pk;
        if (nk_ikey_parse(k.data, k.len, &pk) != NK_OK) {
            nk_errbuf_set(&op->eb, "ingest met a malformed internal key");
            op->rc = NK_ECORRUPT;
            break;
        }
        bool decided =
            have_last && nk_bytes_cmp(last.data, last.len, pk.ukey.data, pk.ukey.len) == 0;
        if (!decided) {
            op->rc = nk_buf_assign(&last, pk.ukey.data, pk.ukey.len);
            have_last = true;
            if (op->rc == NK_OK && pk.type == NK_KT_PUT) {
                if (b != NULL && nk_sst_builder_size(b) >= op->target_bytes) {
                    FINISH_OUT();
                }
                if (op->rc == NK_OK && b == NULL) {
                    if (op->next_number + op->nouts >= op->end_number) {
                        nk_errbuf_set(&op->eb, "ingest ran out of reserved file numbers");
                        op->rc = NK_ERANGE;
                        break;
                    }
                    rfile *grown = realloc(op->outs, (op->nouts + 1) * sizeof(*grown));
                    if (grown == NULL) {
                        op->rc = NK_ENOMEM;
                        break;
                    }
                    op->outs = grown;
                    rfile *o = &op->outs[op->nouts++];
                    memset(o, 0, sizeof(*o));
                    o->number = op->next_number + op->nouts - 1;
                    char path[1100];
                    nk_db_table_path(op->db, o->number, path, sizeof(path));
                    op->rc = nk_rt_file_open(rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL,
                                             &f);
                    op->rc = op->rc ? op->rc : nk_sst_builder_new(rt, f, &op->sst, &b);
                }
                nk_slice v = nk_iter_value(merged);
                nk_buf_clear(&ik);
                op->rc = op->rc ? op->rc
                                : nk_ikey_append(&ik, pk.ukey.data, pk.ukey.len, op->seq, NK_KT_PUT);
                op->rc = op->rc ? op->rc : nk_sst_builder_add(b, ik.data, ik.len, v.data, v.len);
            }
        }
        nk_iter_next(merged);
    }
    if (op->rc == NK_OK && merged != NULL) {
        op->rc = nk_iter_status(merged, &op->eb);
    }
    if (op->rc == NK_OK && b != NULL) {
        FINISH_OUT();
    }
#undef FINISH_OUT
    if (b != NULL) {
        nk_sst_builder_free(b);
    }
    if (f != NULL) {
        nk_rt_file_close(rt, f);
    }
    nk_buf_free(&last);
    nk_buf_free(&ik);
    if (merged != NULL) {
        nk_iter_free(merged);
    }
    for (size_t i = 0; i < nk; i++) {
        nk_iter_free(kids[i]);
    }
    for (size_t i = 0; tables != NULL && i < n; i++) {
        if (tables[i] != NULL) {
            nk_sst_close(tables[i]);
        }
    }
    free(tables);
    free(kids);
    op->res.entries = 0;
    for (size_t i = 0; i < op->nouts; i++) {
        op->res.entries += op->outs[i].entries;
    }
    if (op->rc == NK_OK) {
        op->rc = nk_rt_dir_sync(rt, op->db_dir);
    }
    if (op->rc == NK_OK && op->nouts > 0) {
        op->rc = log_install(op, true);
    }
    if (op->rc != NK_OK && op->rc != NK_ECRASHED) {
        remove_names(op, op->next_number, op->next_number + op->nouts);
    }
}

static void ingest_done(void *arg)
{
    region_op *op = arg;
    nk_db *db = op->db;
    bool held = op->rewrite;
    if (op->rewrite) {
        db->holding_writes = false;
    }
    size_t n = op->rewrite ? op->nouts : op->m.nfiles;
    rfile *fs = op->rewrite ? op->outs : op->m.files;
    if (op->rc == NK_OK && (n > 0 || op->ndel > 0)) {
        nk_version_change *adds = calloc(n + 1, sizeof(*adds));
        nk_version_change *dels = calloc(op->ndel + 1, sizeof(*dels));
        int rc = adds && dels ? NK_OK : NK_ENOMEM;
        size_t na = 0;
        for (size_t i = 0; i < op->ndel && rc == NK_OK; i++) {
            dels[i] = (nk_version_change){op->del_level[i], op->del_number[i], NULL};
        }
        for (size_t i = 0; i < n && rc == NK_OK; i++) {
            nk_table_meta *t = nk_table_meta_new(
                fs[i].number, fs[i].size, nk_slice_make(fs[i].ismallest.data, fs[i].ismallest.len),
                nk_slice_make(fs[i].ilargest.data, fs[i].ilargest.len), fs[i].min_seq,
                fs[i].max_seq);
            if (t == NULL) {
                rc = NK_ENOMEM;
            } else {
                adds[na++] = (nk_version_change){fs[i].level, 0, t};
            }
        }
        nk_version *nv = NULL;
        if (rc == NK_OK) {
            rc = nk_version_apply(db->current, dels, op->ndel, adds, na, &nv, &op->eb);
        }
        if (rc == NK_OK) {
            nk_version *old = db->current;
            db->current = nv;
            nk_version_unref(old, nk_db_release_file, db);
        } else {
            for (size_t i = 0; i < na; i++) {
                nk_db_release_file(NULL, adds[i].file);
            }
            /* the manifest already has the edit: the db must reopen */
            nk_db_set_bg_error(db, rc, &op->eb);
            op->rc = rc;
        }
        free(adds);
        free(dels);
    }
    if (op->rc == NK_OK) {
        if (op->rewrite) {
            db->last_seq = op->seq;
            db->persisted_seq = op->seq;
        } else {
            if (op->seq > db->seq_floor) {
                db->seq_floor = op->seq;
            }
            if (db->last_seq < op->seq) {
                /* Later writes shadow the ingested versions. When nothing
                 * waits in a memtable, every number up to it is in a table. */
                bool empty = db->nimm == 0 && nk_memtable_count(db->mem->m) == 0;
                db->last_seq = op->seq;
                if (empty) {
                    db->persisted_seq = op->seq;
                }
            }
        }
        db->st.last_seq = db->last_seq;
        op->res.files = n;
        op->res.linked = op->rewrite ? 0 : n;
    }
    op->res.snapshot_seq = op->seq;
    op_finish(op);
    if (held) {
        nk_db_process_pending(db); /* queued writes may go now */
    }
}

static void ingest_abandon(void *arg)
{
    region_op *op = arg;
    op_unlink(op->db, op);
    op_free(op);
}

static void ingest_fail(region_op *op, int rc)
{
    nk_db *db = op->db;
    bool held = op->rewrite;
    if (held) {
        db->holding_writes = false;
    }
    op->rc = rc;
    op_finish(op);
    if (held) {
        nk_db_process_pending(db);
    }
}

/* Reserve one db file number per output (link: the files; rewrite: a
 * bound on the tables it may cut). */
static void reserve(region_op *op, uint64_t n)
{
    nk_db *db = op->db;
    op->next_number = db->next_file;
    op->end_number = db->next_file + n;
    db->next_file = op->end_number;
}

/* Fallback, writes held and memtable flushed: refuse live keys in the
 * range, then rewrite in the exclusive slot. */
static void rewrite_idle(void *arg, int status)
{
    region_op *op = arg;
    nk_db *db = op->db;
    if (status != NK_OK) {
        nk_errbuf_set(&op->eb, "flushing before the ingest failed: %s", nk_strerror(status));
        ingest_fail(op, status);
        return;
    }
    nk_db_iter *it = NULL;
    nk_db_iter_options io;
    memset(&io, 0, sizeof(io));
    io.lower = nk_slice_make(op->start.data, op->start.len);
    io.upper = nk_slice_make(op->end.data, op->end.len);
    int rc = nk_db_iter_new(db, &io, &it);
    if (rc == NK_OK) {
        nk_db_iter_first(it);
        if (nk_db_iter_valid(it)) {
            nk_errbuf_set(&op->eb, "ingest refused: the target already holds live keys in the "
                                   "snapshot's range, in tables it shares with other ranges "
                                   "(delete them first)");
            rc = NK_EEXIST;
        } else {
            rc = nk_db_iter_status(it, &op->eb);
        }
        nk_db_iter_free(it);
    }
    if (rc == NK_OK) {
        uint64_t bound = 8;
        for (size_t i = 0; i < op->m.nfiles; i++) {
            bound += 2 + op->m.files[i].size / (op->target_bytes ? op->target_bytes : 1);
        }
        reserve(op, bound);
        op->seq = db->last_seq + 1;
        rc = nk_db_run_exclusive(db, "engine.ingest", rewrite_work, ingest_done, ingest_abandon,
                                 op);
    }
    if (rc != NK_OK) {
        ingest_fail(op, rc);
    }
}

/* Does a memtable hold a key of the range (any version)? */
static bool mem_has_range(const nk_memtable *m, const region_op *op)
{
    if (nk_memtable_count(m) == 0) {
        return false;
    }
    nk_iter *it = NULL;
    if (nk_iter_memtable(m, &it) != NK_OK) {
        return true; /* on doubt, take the careful path */
    }
    bool found = false;
    if (op->start.len > 0) {
        nk_buf seek = {0};
        if (nk_ikey_append(&seek, op->start.data, op->start.len, NK_SEQ_MAX, NK_KT_SEEK) != NK_OK) {
            nk_buf_free(&seek);
            nk_iter_free(it);
            return true;
        }
        nk_iter_seek(it, seek.data, seek.len);
        nk_buf_free(&seek);
    } else {
        nk_iter_first(it);
    }
    if (nk_iter_valid(it)) {
        nk_slice u = nk_ikey_user(nk_iter_key(it).data, nk_iter_key(it).len);
        found = below_end(&op->end, u.data, u.len);
    }
    nk_iter_free(it);
    return found;
}

/* The job slot is free: choose the path from the engine's state now. */
static void ingest_slot(void *arg, int status)
{
    region_op *op = arg;
    nk_db *db = op->db;
    if (status != NK_OK) {
        nk_errbuf_set(&op->eb, "the engine cannot run the ingest: %s", nk_strerror(status));
        ingest_fail(op, status);
        return;
    }
    bool stale_mem = mem_has_range(db->mem->m, op);
    for (size_t i = 0; i < db->nimm && !stale_mem; i++) {
        stale_mem = mem_has_range(db->imm[i]->m, op);
    }
    /* The range's tables: wholly inside go with the edit; one that also
     * holds keys outside the range cannot, so the fallback decides. */
    size_t total = 0;
    for (int l = 0; l < NK_LEVELS; l++) {
        total += db->current->count[l];
    }
    op->del_level = calloc(total + 1, sizeof(uint32_t));
    op->del_number = calloc(total + 1, sizeof(uint64_t));
    if (op->del_level == NULL || op->del_number == NULL) {
        ingest_fail(op, NK_ENOMEM);
        return;
    }
    bool straddle = false;
    for (int l = 0; l < NK_LEVELS && !straddle; l++) {
        nk_table_meta **fs = NULL;
        size_t n = 0;
        nk_version_overlaps(db->current, l, nk_slice_make(op->start.data, op->start.len),
                            nk_slice_make(NULL, 0), &fs, &n);
        for (size_t i = 0; i < n; i++) {
            nk_slice s = nk_ikey_user(fs[i]->smallest.data, fs[i]->smallest.len);
            nk_slice g = nk_ikey_user(fs[i]->largest.data, fs[i]->largest.len);
            if (!below_end(&op->end, s.data, s.len)) {
                continue;
            }
            if (!in_range(&op->start, &op->end, s.data, s.len) ||
                !in_range(&op->start, &op->end, g.data, g.len)) {
                straddle = true;
                break;
            }
            op->del_level[op->ndel] = (uint32_t)l;
            op->del_number[op->ndel++] = fs[i]->number;
        }
        free(fs);
    }
    if (stale_mem || straddle) {
        nk_log(db->rt, NK_LOG_INFO,
               "engine: ingest of %s: the range shares %s with other data; rewriting it "
               "(writes held until published)",
               op->dir, stale_mem ? "a memtable" : "a table");
        op->ndel = 0;
        op->rewrite = true;
        db->holding_writes = true;
        nk_db_wait_idle(db, true, rewrite_idle, op);
        return;
    }
    reserve(op, op->m.nfiles);
    for (size_t i = 0; i < op->m.nfiles; i++) {
        op->m.files[i].number = op->next_number + i; /* list order keeps level 0's order */
    }
    op->seq = op->m.max_seq;
    int rc = nk_db_run_exclusive(db, "engine.ingest", link_work, ingest_done, ingest_abandon, op);
    if (rc != NK_OK) {
        ingest_fail(op, rc);
    }
}

static void check_done(void *arg)
{
    region_op *op = arg;
    nk_db *db = op->db;
    if (op->rc == NK_OK && (db->closing || db->bg_error != NK_OK)) {
        op->rc = db->closing ? NK_ESTOPPED : db->bg_error;
    }
    if (op->rc != NK_OK) {
        op_finish(op);
        return;
    }
    (void)nk_buf_assign(&op->start, op->m.start.data, op->m.start.len);
    (void)nk_buf_assign(&op->end, op->m.end.data, op->m.end.len);
    int rc = nk_db_when_slot_free(db, ingest_slot, op);
    if (rc != NK_OK) {
        op->rc = rc;
        op_finish(op);
    }
}

int nk_db_ingest(nk_db *db, const char *dir, nk_region_done_fn done, void *arg)
{
    if (db->closing) {
        return NK_ESTOPPED;
    }
    if (db->bg_error != NK_OK) {
        return db->bg_error;
    }
    for (region_op *o = db->region_ops; o != NULL; o = o->next) {
        if (o->kind == OP_INGEST) {
            return NK_EBUSY; /* one ingest at a time */
        }
    }
    region_op *op = op_new(db, OP_INGEST, dir, done, arg);
    if (op == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_rt_job_submit(db->rt, "engine.ingest.check", check_work, check_done, op);
    if (rc != NK_OK) {
        op_unlink(db, op);
        op_free(op);
    }
    return rc;
}
