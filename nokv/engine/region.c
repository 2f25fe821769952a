/* region.c - key-range export to verifiable SST files, and atomic ingest
 * (see region.h for the format and the guarantees). */
#include "nokv/engine/region.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "nokv/engine/db_impl.h"
#include "nokv/engine/iter.h"

#define HASH_CHUNK (1u << 20)
#define META_MAX (64u << 20)

typedef enum { OP_EXPORT = 1, OP_INGEST } op_kind;

typedef struct out_file {
    uint64_t number; /* ingest: db file number; export: 1, 2, ... */
    uint64_t size;
    uint64_t entries;
    uint64_t xxh;
    nk_buf smallest; /* user keys */
    nk_buf largest;
    nk_buf ismallest; /* internal keys (ingest: for the manifest) */
    nk_buf ilargest;
} out_file;

typedef struct region_op {
    struct region_op *next;
    op_kind kind;
    nk_db *db;
    nk_rt *rt;
    char dir[1024];    /* export target / ingest source */
    char db_dir[1024]; /* the db's own directory */
    nk_buf start, end;
    uint64_t seq;           /* export: snapshot; ingest: stamped seq */
    nk_version *pinned;     /* export: the tables read */
    uint64_t *inputs;       /* export: table numbers to read */
    size_t ninputs;
    uint64_t next_number, end_number; /* ingest: reserved file numbers */
    nk_sst_options sst;
    uint64_t target_bytes;
    out_file *outs;
    size_t nouts;
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

static bool key_below_end(const region_op *op, const uint8_t *k, size_t n)
{
    return op->end.len == 0 || nk_bytes_cmp(k, n, op->end.data, op->end.len) < 0;
}

static bool key_in_range(const region_op *op, const uint8_t *k, size_t n)
{
    return (op->start.len == 0 || nk_bytes_cmp(k, n, op->start.data, op->start.len) >= 0) &&
           key_below_end(op, k, n);
}

/* XXH64 of a file's bytes, read through the runtime. */
static int hash_file(nk_rt *rt, const char *path, uint64_t *size, uint64_t *out, nk_errbuf *eb)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot open: %s", path, nk_strerror(rc));
        return rc;
    }
    uint8_t *buf = malloc(HASH_CHUNK);
    XXH64_state_t *st = XXH64_createState();
    if (buf == NULL || st == NULL) {
        free(buf);
        XXH64_freeState(st);
        nk_rt_file_close(rt, f);
        return NK_ENOMEM;
    }
    XXH64_reset(st, 0);
    uint64_t off = 0;
    for (;;) {
        size_t got = 0;
        rc = nk_rt_file_read_at(rt, f, off, buf, HASH_CHUNK, &got);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "%s: read at %" PRIu64 ": %s", path, off, nk_strerror(rc));
            break;
        }
        XXH64_update(st, buf, got);
        off += got;
        if (got < HASH_CHUNK) {
            break;
        }
    }
    if (rc == NK_OK) {
        *size = off;
        *out = XXH64_digest(st);
    }
    free(buf);
    XXH64_freeState(st);
    nk_rt_file_close(rt, f);
    return rc;
}

static void op_free(region_op *op)
{
    for (size_t i = 0; i < op->nouts; i++) {
        nk_buf_free(&op->outs[i].smallest);
        nk_buf_free(&op->outs[i].largest);
        nk_buf_free(&op->outs[i].ismallest);
        nk_buf_free(&op->outs[i].ilargest);
    }
    free(op->outs);
    free(op->inputs);
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

/* ------------------------------------------------------------ sst output --- */

typedef struct writer {
    region_op *op;
    nk_file *f;
    nk_sst_builder *b;
    out_file cur;
    char path[1100];
} writer;

static int writer_open(writer *w, uint64_t number, const char *dir)
{
    memset(&w->cur, 0, sizeof(w->cur));
    w->cur.number = number;
    snprintf(w->path, sizeof(w->path), "%s/%06" PRIu64 ".sst", dir, number);
    int rc = nk_rt_file_open(w->op->rt, w->path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL,
                             &w->f);
    if (rc != NK_OK) {
        nk_errbuf_set(&w->op->eb, "cannot create %s: %s", w->path, nk_strerror(rc));
        return rc;
    }
    rc = nk_sst_builder_new(w->op->rt, w->f, &w->op->sst, &w->b);
    if (rc != NK_OK) {
        nk_rt_file_close(w->op->rt, w->f);
        w->f = NULL;
    }
    return rc;
}

static int writer_add(writer *w, const uint8_t *ukey, size_t ulen, uint64_t seq,
                      const uint8_t *val, size_t vlen)
{
    nk_buf ik = {0};
    int rc = nk_ikey_append(&ik, ukey, ulen, seq, NK_KT_PUT);
    if (rc == NK_OK) {
        rc = nk_sst_builder_add(w->b, ik.data, ik.len, val, vlen);
    }
    if (rc == NK_OK && w->cur.entries == 0) {
        rc = nk_buf_assign(&w->cur.smallest, ukey, ulen);
        if (rc == NK_OK) {
            rc = nk_buf_assign(&w->cur.ismallest, ik.data, ik.len);
        }
    }
    if (rc == NK_OK) {
        rc = nk_buf_assign(&w->cur.largest, ukey, ulen);
        if (rc == NK_OK) {
            rc = nk_buf_assign(&w->cur.ilargest, ik.data, ik.len);
        }
        w->cur.entries++;
    }
    nk_buf_free(&ik);
    return rc;
}

/* Footer, fsync, close, hash the bytes as written; record the file. */
static int writer_finish(writer *w)
{
    region_op *op = w->op;
    uint64_t size = 0;
    int rc = nk_sst_builder_finish(w->b, &size, NULL);
    if (rc == NK_OK) {
        /* hashed as written: no read back */
        w->cur.size = size;
        w->cur.xxh = nk_sst_builder_file_xxh64(w->b);
    }
    nk_sst_builder_free(w->b);
    w->b = NULL;
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(op->rt, w->f);
    }
    nk_rt_file_close(op->rt, w->f);
    w->f = NULL;
    if (rc != NK_OK) {
        return rc;
    }
    out_file *grown = realloc(op->outs, (op->nouts + 1) * sizeof(*grown));
    if (grown == NULL) {
        return NK_ENOMEM;
    }
    op->outs = grown;
    op->outs[op->nouts++] = w->cur;
    memset(&w->cur, 0, sizeof(w->cur));
    op->res.files++;
    op->res.bytes += size;
    return NK_OK;
}

static void writer_abandon(writer *w)
{
    if (w->b != NULL) {
        nk_sst_builder_free(w->b);
        w->b = NULL;
    }
    if (w->f != NULL) {
        nk_rt_file_close(w->op->rt, w->f);
        w->f = NULL;
    }
    nk_buf_free(&w->cur.smallest);
    nk_buf_free(&w->cur.largest);
    nk_buf_free(&w->cur.ismallest);
    nk_buf_free(&w->cur.ilargest);
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
    for (size_t i = 0; i < op->nouts; i++) {
        out_file *f = &op->outs[i];
        char name[32], sum[17];
        snprintf(name, sizeof(name), "%06" PRIu64 ".sst", f->number);
        snprintf(sum, sizeof(sum), "%016" PRIx64, f->xxh);
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "size", json_integer((json_int_t)f->size));
        json_object_set_new(e, "entries", json_integer((json_int_t)f->entries));
        json_object_set_new(e, "xxh64", json_string(sum));
        json_object_set_new(e, "smallest", hex_json(&f->smallest));
        json_object_set_new(e, "largest", hex_json(&f->largest));
        json_array_append_new(files, e);
    }
    json_object_set_new(o, "format", json_integer(NK_REGION_FORMAT));
    json_object_set_new(o, "snapshot_seq", json_integer((json_int_t)op->seq));
    json_object_set_new(o, "entries", json_integer((json_int_t)op->res.entries));
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

/* Parsed REGION.json. */
typedef struct meta_file {
    char name[64];
    uint64_t size;
    uint64_t entries;
    uint64_t xxh;
} meta_file;

typedef struct region_meta {
    nk_buf start, end;
    uint64_t snapshot_seq;
    uint64_t entries;
    meta_file *files;
    size_t nfiles;
} region_meta;

static void meta_free(region_meta *m)
{
    nk_buf_free(&m->start);
    nk_buf_free(&m->end);
    free(m->files);
    memset(m, 0, sizeof(*m));
}

static int parse_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return NK_ECORRUPT;
    }
    *out = (uint64_t)json_integer_value(v);
    return NK_OK;
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
    json_t *o = json_loadb(text, (size_t)size, JSON_REJECT_DUPLICATES, &jerr);
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
        parse_u64(json_object_get(o, "entries"), &m->entries) != NK_OK ||
        hex_decode(json_string_value(json_object_get(o, "start")), &m->start) != NK_OK ||
        hex_decode(json_string_value(json_object_get(o, "end")), &m->end) != NK_OK) {
        nk_errbuf_set(eb, "%s: missing or malformed fields", path);
        goto out;
    }
    m->nfiles = json_array_size(files);
    m->files = calloc(m->nfiles + 1, sizeof(meta_file));
    if (m->files == NULL) {
        rc = NK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *e = json_array_get(files, i);
        json_t *name = json_object_get(e, "name");
        json_t *x = json_object_get(e, "xxh64");
        if (!json_is_string(name) || strlen(json_string_value(name)) >= sizeof(m->files[i].name) ||
            strchr(json_string_value(name), '/') != NULL || !json_is_string(x) ||
            parse_u64(json_object_get(e, "size"), &m->files[i].size) != NK_OK ||
            parse_u64(json_object_get(e, "entries"), &m->files[i].entries) != NK_OK) {
            nk_errbuf_set(eb, "%s: file entry %zu is malformed", path, i);
            goto out;
        }
        snprintf(m->files[i].name, sizeof(m->files[i].name), "%s", json_string_value(name));
        char *end = NULL;
        m->files[i].xxh = strtoull(json_string_value(x), &end, 16);
        if (end == json_string_value(x) || *end != '\0') {
            nk_errbuf_set(eb, "%s: file %s has a malformed xxh64", path, m->files[i].name);
            goto out;
        }
    }
    rc = NK_OK;
out:
    json_decref(o);
    if (rc != NK_OK) {
        meta_free(m);
    }
    return rc;
}

static int verify_files(nk_rt *rt, const char *dir, const region_meta *m, nk_region_result *r,
                        nk_errbuf *eb)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        char path[1100];
        join(path, sizeof(path), dir, m->files[i].name);
        uint64_t size = 0, xxh = 0;
        int rc = hash_file(rt, path, &size, &xxh, eb);
        if (rc != NK_OK) {
            return rc == NK_ENOENT ? NK_ECORRUPT : rc;
        }
        if (size != m->files[i].size || xxh != m->files[i].xxh) {
            nk_errbuf_set(eb, "%s: checksum mismatch (size %" PRIu64 ", expected %" PRIu64
                              "): the snapshot file is damaged",
                          path, size, m->files[i].size);
            return NK_ECORRUPT;
        }
        if (r != NULL) {
            r->files++;
            r->bytes += size;
            r->entries += m->files[i].entries;
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
    rc = verify_files(rt, dir, &m, r, eb);
    meta_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ export --- */

static void export_work(void *arg)
{
    region_op *op = arg;
    nk_rt *rt = op->rt;
    nk_sst **tables = calloc(op->ninputs + 1, sizeof(nk_sst *));
    nk_iter **kids = calloc(op->ninputs + 1, sizeof(nk_iter *));
    nk_iter *merged = NULL;
    writer w = {.op = op};
    size_t nk = 0;
    uint64_t next_name = 1;
    nk_buf last = {0};
    bool have_last = false;
    op->rc = (tables && kids) ? nk_rt_dir_create(rt, op->dir) : NK_ENOMEM;
    if (op->rc == NK_EEXIST) {
        nk_errbuf_set(&op->eb, "export directory %s already exists", op->dir);
    }
    if (op->rc == NK_OK) {
        /* The directory's own entry must survive a power loss too. */
        char parent[1024];
        snprintf(parent, sizeof(parent), "%s", op->dir);
        char *slash = strrchr(parent, '/');
        if (slash == NULL) {
            snprintf(parent, sizeof(parent), ".");
        } else if (slash == parent) {
            parent[1] = '\0';
        } else {
            *slash = '\0';
        }
        op->rc = nk_rt_dir_sync(rt, parent);
    }
    for (size_t i = 0; i < op->ninputs && op->rc == NK_OK; i++) {
        char path[1100];
        snprintf(path, sizeof(path), "%s/%06" PRIu64 ".sst", op->db_dir, op->inputs[i]);
        nk_file *f = NULL;
        op->rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
        if (op->rc == NK_OK) {
            op->rc = nk_sst_open(rt, f, op->inputs[i], path, NULL, &tables[i], &op->eb);
            if (op->rc != NK_OK) {
                nk_rt_file_close(rt, f);
            }
        }
        if (op->rc == NK_OK) {
            op->rc = nk_iter_sst(tables[i], NK_SST_NO_CACHE, &kids[nk]);
            nk += op->rc == NK_OK;
        }
    }
    if (op->rc == NK_OK) {
        op->rc = nk_iter_merge(kids, nk, &merged);
        nk = 0;
    }
    if (op->rc == NK_OK) {
        if (op->start.len > 0) {
            nk_buf seek = {0};
            op->rc = nk_ikey_append(&seek, op->start.data, op->start.len, NK_SEQ_MAX, NK_KT_SEEK);
            if (op->rc == NK_OK) {
                nk_iter_seek(merged, seek.data, seek.len);
            }
            nk_buf_free(&seek);
        } else {
            nk_iter_first(merged);
        }
    }
    /* The newest version <= the snapshot decides each key: a put is
     * exported, a delete hides it; older versions are skipped. */
    while (op->rc == NK_OK && nk_iter_valid(merged)) {
        nk_slice k = nk_iter_key(merged);
        nk_ikey ik;
        if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK) {
            nk_errbuf_set(&op->eb, "export met a malformed internal key");
            op->rc = NK_ECORRUPT;
            break;
        }
        if (!key_below_end(op, ik.ukey.data, ik.ukey.len)) {
            break;
        }
        bool decided = have_last && nk_bytes_cmp(last.data, last.len, ik.ukey.data,
                                                 ik.ukey.len) == 0;
        if (!decided && ik.seq <= op->seq) {
            op->rc = nk_buf_assign(&last, ik.ukey.data, ik.ukey.len);
            have_last = true;
            if (op->rc == NK_OK && ik.type == NK_KT_PUT) {
                if (w.b != NULL && nk_sst_builder_size(w.b) >= op->target_bytes) {
                    op->rc = writer_finish(&w);
                }
                if (op->rc == NK_OK && w.b == NULL) {
                    op->rc = writer_open(&w, next_name++, op->dir);
                }
                nk_slice v = nk_iter_value(merged);
                if (op->rc == NK_OK) {
                    op->rc = writer_add(&w, ik.ukey.data, ik.ukey.len, 0, v.data, v.len);
                    op->res.entries++;
                }
            }
        }
        nk_iter_next(merged);
    }
    if (op->rc == NK_OK && merged != NULL) {
        op->rc = nk_iter_status(merged, &op->eb);
    }
    if (op->rc == NK_OK && w.b != NULL) {
        op->rc = writer_finish(&w);
    }
    writer_abandon(&w);
    if (merged != NULL) {
        nk_iter_free(merged);
    }
    for (size_t i = 0; i < nk; i++) {
        nk_iter_free(kids[i]);
    }
    for (size_t i = 0; tables != NULL && i < op->ninputs; i++) {
        if (tables[i] != NULL) {
            nk_sst_close(tables[i]);
        }
    }
    free(tables);
    free(kids);
    nk_buf_free(&last);
    if (op->rc == NK_OK) {
        op->rc = nk_rt_dir_sync(rt, op->dir);
    }
    if (op->rc == NK_OK) {
        op->rc = write_meta(op);
    }
    op->res.snapshot_seq = op->seq;
}

static void export_done(void *arg) { op_finish(arg); }

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
    op->inputs = calloc(total + 1, sizeof(uint64_t));
    if (op->inputs == NULL) {
        op->rc = NK_ENOMEM;
        op_finish(op);
        return;
    }
    for (int l = 0; l < NK_LEVELS; l++) {
        nk_table_meta **fs = NULL;
        size_t n = 0;
        nk_version_overlaps(op->pinned, l, nk_slice_make(op->start.data, op->start.len),
                            nk_slice_make(NULL, 0), &fs, &n);
        for (size_t i = 0; i < n; i++) {
            nk_slice s = nk_ikey_user(fs[i]->smallest.data, fs[i]->smallest.len);
            if (key_below_end(op, s.data, s.len)) {
                op->inputs[op->ninputs++] = fs[i]->number;
            }
        }
        free(fs);
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
    if (target_file_bytes != 0) {
        op->target_bytes = target_file_bytes;
    }
    /* The snapshot keeps compaction from dropping versions the export must
     * see; the flush puts everything up to it into tables. */
    op->seq = nk_db_snapshot(db);
    return nk_db_flush(db, export_idle, op);
}

/* ------------------------------------------------------------------ ingest --- */

static void remove_outputs(region_op *op)
{
    for (size_t i = 0; i < op->nouts; i++) {
        char path[1100];
        snprintf(path, sizeof(path), "%s/%06" PRIu64 ".sst", op->db_dir, op->outs[i].number);
        nk_rt_remove(op->rt, path);
    }
}

static void ingest_work(void *arg)
{
    region_op *op = arg;
    nk_rt *rt = op->rt;
    region_meta m;
    op->rc = read_meta(rt, op->dir, &m, &op->eb);
    if (op->rc != NK_OK) {
        return;
    }
    op->rc = verify_files(rt, op->dir, &m, NULL, &op->eb);
    writer w = {.op = op};
    nk_buf prev = {0};
    bool have_prev = false;
    for (size_t i = 0; i < m.nfiles && op->rc == NK_OK; i++) {
        char path[1100];
        join(path, sizeof(path), op->dir, m.files[i].name);
        nk_file *f = NULL;
        nk_sst *t = NULL;
        nk_iter *it = NULL;
        op->rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
        if (op->rc == NK_OK) {
            op->rc = nk_sst_open(rt, f, 0, path, NULL, &t, &op->eb);
            if (op->rc != NK_OK) {
                nk_rt_file_close(rt, f);
            }
        }
        if (op->rc == NK_OK) {
            op->rc = nk_iter_sst(t, NK_SST_NO_CACHE, &it);
        }
        uint64_t seen = 0;
        if (op->rc == NK_OK && it != NULL) {
            nk_iter_first(it);
        }
        while (op->rc == NK_OK && it != NULL && nk_iter_valid(it)) {
            nk_slice k = nk_iter_key(it), v = nk_iter_value(it);
            nk_ikey ik;
            if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK || ik.type != NK_KT_PUT ||
                !key_in_range(op, ik.ukey.data, ik.ukey.len) ||
                (have_prev && nk_bytes_cmp(prev.data, prev.len, ik.ukey.data, ik.ukey.len) >= 0)) {
                nk_errbuf_set(&op->eb, "%s: entry %" PRIu64 " is not a sorted put inside the "
                                       "declared range",
                              path, seen);
                op->rc = NK_ECORRUPT;
                break;
            }
            if (w.b != NULL && nk_sst_builder_size(w.b) >= op->target_bytes) {
                op->rc = writer_finish(&w);
            }
            if (op->rc == NK_OK && w.b == NULL) {
                if (op->next_number >= op->end_number) {
                    nk_errbuf_set(&op->eb, "ingest ran out of reserved file numbers");
                    op->rc = NK_ERANGE;
                    break;
                }
                op->rc = writer_open(&w, op->next_number++, op->db_dir);
            }
            if (op->rc == NK_OK) {
                op->rc = writer_add(&w, ik.ukey.data, ik.ukey.len, op->seq, v.data, v.len);
            }
            if (op->rc == NK_OK) {
                op->rc = nk_buf_assign(&prev, ik.ukey.data, ik.ukey.len);
                have_prev = true;
                seen++;
                op->res.entries++;
            }
            nk_iter_next(it);
        }
        if (op->rc == NK_OK && it != NULL) {
            op->rc = nk_iter_status(it, &op->eb);
        }
        if (op->rc == NK_OK && seen != m.files[i].entries) {
            nk_errbuf_set(&op->eb, "%s: %" PRIu64 " entries, metadata says %" PRIu64, path, seen,
                          m.files[i].entries);
            op->rc = NK_ECORRUPT;
        }
        if (it != NULL) {
            nk_iter_free(it);
        }
        if (t != NULL) {
            nk_sst_close(t);
        }
    }
    if (op->rc == NK_OK && w.b != NULL) {
        op->rc = writer_finish(&w);
    }
    writer_abandon(&w);
    nk_buf_free(&prev);
    meta_free(&m);
    if (op->rc == NK_OK) {
        op->rc = nk_rt_dir_sync(rt, op->db_dir);
    }
    if (op->rc == NK_OK) {
        op->rc = nk_failpoint(rt, "region.ingest.before_publish");
    }
    if (op->rc == NK_OK && op->nouts > 0) {
        /* One edit publishes every file: all or nothing. */
        nk_db_edit_add *adds = calloc(op->nouts, sizeof(*adds));
        if (adds == NULL) {
            op->rc = NK_ENOMEM;
        } else {
            for (size_t i = 0; i < op->nouts; i++) {
                out_file *o = &op->outs[i];
                adds[i] = (nk_db_edit_add){0, o->number, o->size,
                                           nk_slice_make(o->ismallest.data, o->ismallest.len),
                                           nk_slice_make(o->ilargest.data, o->ilargest.len),
                                           op->seq, op->seq, true, o->xxh};
            }
            nk_db_edit_desc d;
            memset(&d, 0, sizeof(d));
            d.next_file = op->end_number;
            d.add = adds;
            d.nadd = op->nouts;
            d.is_flush = true; /* carries last_sequence = the stamped seq */
            d.flushed_seq = op->seq;
            d.log_number = 0;
            op->rc = nk_db_job_log_edit(op->db->manifest, &d, &op->eb);
            free(adds);
        }
    }
    if (op->rc != NK_OK && op->rc != NK_ECRASHED) {
        remove_outputs(op); /* roll back: nothing was published */
    }
}

static void ingest_done(void *arg)
{
    region_op *op = arg;
    nk_db *db = op->db;
    db->holding_writes = false;
    if (op->rc == NK_OK && op->nouts > 0) {
        nk_version_change *adds = calloc(op->nouts, sizeof(*adds));
        int rc = adds ? NK_OK : NK_ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < op->nouts && rc == NK_OK; i++) {
            out_file *o = &op->outs[i];
            nk_table_meta *t = nk_table_meta_new(
                o->number, o->size, nk_slice_make(o->ismallest.data, o->ismallest.len),
                nk_slice_make(o->ilargest.data, o->ilargest.len), op->seq, op->seq);
            if (t == NULL) {
                rc = NK_ENOMEM;
            } else {
                t->has_xxh64 = true;
                t->xxh64 = o->xxh;
                adds[n++] = (nk_version_change){0, 0, t};
            }
        }
        nk_version *nv = NULL;
        if (rc == NK_OK) {
            rc = nk_version_apply(db->current, NULL, 0, adds, n, &nv, &op->eb);
        }
        if (rc == NK_OK) {
            nk_version *old = db->current;
            db->current = nv;
            nk_version_unref(old, nk_db_release_file, db);
        } else {
            for (size_t i = 0; i < n; i++) {
                nk_db_release_file(NULL, adds[i].file);
            }
            /* the manifest already has the edit: the db must reopen */
            nk_db_set_bg_error(db, rc, &op->eb);
            op->rc = rc;
        }
        free(adds);
    }
    if (op->rc == NK_OK) {
        db->last_seq = op->seq;
        db->persisted_seq = op->seq;
        db->st.last_seq = op->seq;
    }
    op->res.snapshot_seq = op->seq;
    op_finish(op);
}

static void ingest_abandon(void *arg)
{
    region_op *op = arg;
    op_unlink(op->db, op);
    op_free(op);
}

static void ingest_fail(region_op *op, int rc)
{
    op->db->holding_writes = false;
    op->rc = rc;
    op_finish(op);
    /* queued writes may go now */
}

static void ingest_idle(void *arg, int status)
{
    region_op *op = arg;
    nk_db *db = op->db;
    if (status != NK_OK) {
        nk_errbuf_set(&op->eb, "flushing before the ingest failed: %s", nk_strerror(status));
        ingest_fail(op, status);
        nk_db_process_pending(db);
        return;
    }
    /* The range comes from the (not yet verified) metadata; the job checks
     * everything again before publishing. */
    region_meta m;
    int rc = read_meta(db->rt, op->dir, &m, &op->eb);
    if (rc == NK_OK) {
        nk_buf_assign(&op->start, m.start.data, m.start.len);
        nk_buf_assign(&op->end, m.end.data, m.end.len);
        /* Refuse when live data exists in the range. */
        nk_db_iter *it = NULL;
        nk_db_iter_options io;
        memset(&io, 0, sizeof(io));
        io.lower = nk_slice_make(m.start.data, m.start.len);
        io.upper = nk_slice_make(m.end.data, m.end.len);
        rc = nk_db_iter_new(db, &io, &it);
        if (rc == NK_OK) {
            nk_db_iter_first(it);
            if (nk_db_iter_valid(it)) {
                nk_errbuf_set(&op->eb, "ingest refused: the target already holds live keys in "
                                       "the snapshot's range (ingest needs an empty range)");
                rc = NK_EEXIST;
            } else {
                rc = nk_db_iter_status(it, &op->eb);
            }
            nk_db_iter_free(it);
        }
        size_t reserve = 8;
        for (size_t i = 0; i < m.nfiles; i++) {
            reserve += 2 + m.files[i].size / (op->target_bytes ? op->target_bytes : 1);
        }
        op->next_number = db->next_file;
        op->end_number = db->next_file + reserve;
        meta_free(&m);
    }
    if (rc == NK_OK) {
        db->next_file = op->end_number;
        op->seq = db->last_seq + 1;
        rc = nk_db_run_exclusive(db, "engine.ingest", ingest_work, ingest_done, ingest_abandon, op);
    }
    if (rc != NK_OK) {
        ingest_fail(op, rc);
        nk_db_process_pending(db);
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
    if (db->holding_writes) {
        return NK_EBUSY; /* one ingest at a time */
    }
    region_op *op = op_new(db, OP_INGEST, dir, done, arg);
    if (op == NULL) {
        return NK_ENOMEM;
    }
    /* Hold writes first, then flush: from here until publication every
     * sequence number below the stamp is in a table. */
    db->holding_writes = true;
    nk_db_wait_idle(db, true, ingest_idle, op);
    return NK_OK;
}
