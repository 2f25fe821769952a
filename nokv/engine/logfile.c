/* logfile.c - record framing and the torn-tail / corruption scan. */
#include "nokv/engine/logfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/names.h"

void nk_logfile_hdr_encode(uint8_t *out, const nk_logfile_hdr *h)
{
    nk_put_u64(out, h->magic);
    nk_put_u32(out + 8, NK_LOGFILE_VERSION);
    nk_put_u32(out + 12, 0);
    nk_put_u64(out + 16, h->number);
    nk_put_u64(out + 24, h->first_lsn);
    nk_put_u64(out + 32, h->synced_upto);
    nk_put_u64(out + 40, XXH64(out, 40, 0));
}

void nk_logrec_encode_header(uint8_t *p, unsigned type, uint64_t lsn, uint64_t synced_upto,
                             size_t len)
{
    nk_put_u32(p, NK_LOGREC_MAGIC);
    p[4] = (uint8_t)type;
    p[5] = 0;
    nk_put_u16(p + 6, 0);
    nk_put_u32(p + 8, (uint32_t)len);
    nk_put_u64(p + 12, lsn);
    nk_put_u64(p + 20, synced_upto);
}

int nk_logrec_encode(nk_buf *b, unsigned type, uint64_t lsn, uint64_t synced_upto,
                     const void *payload, size_t len)
{
    if (len > NK_LOGREC_MAX_PAYLOAD) {
        return NK_ETOOBIG;
    }
    int rc = nk_buf_reserve(b, NK_LOGREC_OVERHEAD + len);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *p = b->data + b->len;
    nk_logrec_encode_header(p, type, lsn, synced_upto, len);
    if (len) {
        memcpy(p + NK_LOGREC_HDR_SIZE, payload, len);
    }
    nk_put_u64(p + NK_LOGREC_HDR_SIZE + len, XXH64(p, NK_LOGREC_HDR_SIZE + len, 0));
    b->len += NK_LOGREC_OVERHEAD + len;
    return NK_OK;
}

int nk_logfile_create(nk_rt *rt, const char *path, const nk_logfile_hdr *h,
                      const char *fp_after_create, nk_file **out)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_EXCL, &f);
    if (rc != NK_OK) {
        return rc;
    }
    if (fp_after_create != NULL) {
        rc = nk_failpoint(rt, fp_after_create);
    }
    if (rc == NK_OK) {
        uint8_t hdr[NK_LOGFILE_HDR_SIZE];
        nk_logfile_hdr_encode(hdr, h);
        rc = nk_rt_file_append(rt, f, hdr, sizeof hdr);
    }
    if (rc != NK_OK) {
        (void)nk_rt_file_close(rt, f);
        /* No debris: a file without a header (disk full, say) would be
         * read as damage by the next recovery. A crash here leaves it, and
         * recovery treats a headerless newest file as a torn tail. */
        (void)nk_rt_remove(rt, path);
        return rc;
    }
    *out = f;
    return NK_OK;
}

char *nk_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, dir, a);
    size_t n = a;
    if (a == 0 || dir[a - 1] != '/') {
        p[n++] = '/';
    }
    memcpy(p + n, name, b + 1);
    return p;
}

char *nk_path_parent(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        n--; /* trailing slashes */
    }
    while (n > 0 && path[n - 1] != '/') {
        n--;
    }
    while (n > 1 && path[n - 1] == '/') {
        n--;
    }
    const char *src = path;
    if (n == 0) {
        src = ".";
        n = 1;
    }
    char *p = malloc(n + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, src, n);
    p[n] = 0;
    return p;
}

/* ------------------------------------------------------ window reader --- */

/* Reads a file through one growable window so that recovery issues few large
 * reads instead of two per record. */
#define WINDOW_CHUNK (256u * 1024u)

typedef struct window {
    nk_rt *rt;
    nk_file *f;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t woff;
    size_t wlen;
} window;

/* Point *out at n bytes at off (off + n <= size). */
static int win_get(window *w, uint64_t off, size_t n, const uint8_t **out)
{
    if (off >= w->woff && off + n <= w->woff + w->wlen) {
        *out = w->buf + (off - w->woff);
        return NK_OK;
    }
    size_t want = n > WINDOW_CHUNK ? n : WINDOW_CHUNK;
    if ((uint64_t)want > w->size - off) {
        want = (size_t)(w->size - off);
    }
    if (want > w->cap) {
        uint8_t *nb = realloc(w->buf, want);
        if (nb == NULL) {
            return NK_ENOMEM;
        }
        w->buf = nb;
        w->cap = want;
    }
    size_t got = 0;
    int rc = nk_rt_file_read_at(w->rt, w->f, off, w->buf, want, &got);
    w->woff = off;
    w->wlen = rc == NK_OK ? got : 0;
    if (rc != NK_OK) {
        return rc;
    }
    if (got < n) {
        return NK_EIO; /* the file shrank under us */
    }
    *out = w->buf;
    return NK_OK;
}

/* ------------------------------------------------------------ parsing --- */

typedef struct rec {
    unsigned type;
    uint32_t len;
    uint64_t lsn;
    uint64_t synced_upto;
    const uint8_t *payload;
} rec;

/* Validate the record at off without looking at its lsn. Returns NK_OK,
 * NK_ECORRUPT with a static reason in *why, or a read error. */
static int parse_rec(window *w, uint64_t off, rec *r, const char **why)
{
    const uint8_t *p;
    if (w->size - off < NK_LOGREC_OVERHEAD) {
        *why = "record header runs past the end of the file";
        return NK_ECORRUPT;
    }
    int rc = win_get(w, off, NK_LOGREC_HDR_SIZE, &p);
    if (rc != NK_OK) {
        return rc;
    }
    if (nk_get_u32(p) != NK_LOGREC_MAGIC) {
        *why = "bad record magic";
        return NK_ECORRUPT;
    }
    r->type = p[4];
    r->len = nk_get_u32(p + 8);
    r->lsn = nk_get_u64(p + 12);
    r->synced_upto = nk_get_u64(p + 20);
    if ((r->type != NK_LOGREC_DATA && r->type != NK_LOGREC_MARK) || p[5] != 0 ||
        nk_get_u16(p + 6) != 0) {
        *why = "unknown record type or flags";
        return NK_ECORRUPT;
    }
    if (r->len > NK_LOGREC_MAX_PAYLOAD || (uint64_t)r->len > w->size - off - NK_LOGREC_OVERHEAD) {
        *why = "record length runs past the end of the file";
        return NK_ECORRUPT;
    }
    size_t total = NK_LOGREC_OVERHEAD + r->len;
    rc = win_get(w, off, total, &p);
    if (rc != NK_OK) {
        return rc;
    }
    if (nk_get_u64(p + NK_LOGREC_HDR_SIZE + r->len) != XXH64(p, NK_LOGREC_HDR_SIZE + r->len, 0)) {
        *why = "record checksum mismatch";
        return NK_ECORRUPT;
    }
    if (r->type == NK_LOGREC_MARK && r->len != 0) {
        *why = "mark record with a payload";
        return NK_ECORRUPT;
    }
    r->payload = p + NK_LOGREC_HDR_SIZE;
    return NK_OK;
}

/* Validate a file header. NK_OK, NK_ECORRUPT (*why), NK_ENOTSUP, read error. */
static int parse_hdr(window *w, uint64_t magic, uint64_t number, nk_logfile_hdr *h,
                     const char **why)
{
    const uint8_t *p;
    if (w->size < NK_LOGFILE_HDR_SIZE) {
        *why = "file is shorter than its header";
        return NK_ECORRUPT;
    }
    int rc = win_get(w, 0, NK_LOGFILE_HDR_SIZE, &p);
    if (rc != NK_OK) {
        return rc;
    }
    if (nk_get_u64(p) != magic) {
        *why = "bad file magic";
        return NK_ECORRUPT;
    }
    if (nk_get_u64(p + 40) != XXH64(p, 40, 0)) {
        *why = "file header checksum mismatch";
        return NK_ECORRUPT;
    }
    if (nk_get_u32(p + 8) != NK_LOGFILE_VERSION) {
        *why = "file format version not supported by this build";
        return NK_ENOTSUP;
    }
    if (nk_get_u32(p + 12) != 0) {
        *why = "unknown header flags";
        return NK_ENOTSUP;
    }
    h->magic = magic;
    h->number = nk_get_u64(p + 16);
    h->first_lsn = nk_get_u64(p + 24);
    h->synced_upto = nk_get_u64(p + 32);
    if (h->number != number) {
        *why = "header number does not match the file name";
        return NK_ECORRUPT;
    }
    return NK_OK;
}

/* ----------------------------------------------------------- the scan --- */

typedef struct scan {
    nk_rt *rt;
    const nk_logscan_in *in;
    nk_logscan_out *out;
    nk_errbuf *eb;
    window w;
    /* strongest evidence so far, for the message */
    uint64_t claim;
    size_t claim_file;
    uint64_t claim_off;
    bool claim_seen;
} scan;

static void note_claim(scan *s, uint64_t claim, size_t file, uint64_t off)
{
    if (!s->claim_seen || claim > s->claim) {
        s->claim = claim;
        s->claim_file = file;
        s->claim_off = off;
        s->claim_seen = true;
    }
}

static void win_close(scan *s)
{
    if (s->w.f != NULL) {
        (void)nk_rt_file_close(s->rt, s->w.f);
        s->w.f = NULL;
    }
}

/* Open file i into the window. A missing file reads as empty. */
static int win_open(scan *s, size_t i)
{
    win_close(s);
    s->w.woff = 0;
    s->w.wlen = 0;
    s->w.size = 0;
    nk_file *f = NULL;
    int rc = nk_rt_file_open(s->rt, s->in->paths[i], NK_OPEN_READ, &f);
    if (rc == NK_ENOENT) {
        return NK_OK;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(s->eb, "%s: opening %s failed: %s", s->in->what, s->in->paths[i],
                      nk_errdesc(rc));
        return rc;
    }
    s->w.f = f;
    rc = nk_rt_file_size(s->rt, f, &s->w.size);
    if (rc != NK_OK) {
        nk_errbuf_set(s->eb, "%s: size of %s failed: %s", s->in->what, s->in->paths[i],
                      nk_errdesc(rc));
    }
    return rc;
}

static int read_err(scan *s, size_t i, uint64_t off, int rc)
{
    nk_errbuf_set(s->eb, "%s: reading %s at offset %llu failed: %s", s->in->what, s->in->paths[i],
                  (unsigned long long)off, nk_errdesc(rc));
    return rc;
}

/* Search [from, size) of the open file byte by byte for valid records and
 * note their claims. */
static int resync(scan *s, size_t i, uint64_t from)
{
    uint64_t off = from;
    while (off + NK_LOGREC_OVERHEAD <= s->w.size) {
        const uint8_t *p;
        int rc = win_get(&s->w, off, 4, &p);
        if (rc != NK_OK) {
            return read_err(s, i, off, rc);
        }
        if (nk_get_u32(p) != NK_LOGREC_MAGIC) {
            off++;
            continue;
        }
        rec r;
        const char *why = NULL;
        rc = parse_rec(&s->w, off, &r, &why);
        if (rc == NK_OK) {
            note_claim(s, r.synced_upto, i, off);
            off += NK_LOGREC_OVERHEAD + r.len;
        } else if (rc == NK_ECORRUPT) {
            off++;
        } else {
            return read_err(s, i, off, rc);
        }
    }
    return NK_OK;
}

/* Decide at the first bad spot: file i, offset off, expected lsn p. */
static int decide(scan *s, size_t i, uint64_t off, uint64_t p, const char *why)
{
    const nk_logscan_in *in = s->in;
    nk_logscan_out *out = s->out;
    uint64_t bad_size = s->w.size;
    int rc = resync(s, i, off);
    uint64_t discarded = bad_size > off ? bad_size - off : 0;
    if (off == 0) {
        /* A header that is intact but does not continue the log still
         * carries a true claim. */
        nk_logfile_hdr h;
        const char *hwhy = NULL;
        if (rc == NK_OK && parse_hdr(&s->w, in->magic, in->numbers[i], &h, &hwhy) == NK_OK) {
            note_claim(s, h.synced_upto, i, 0);
        }
    }
    for (size_t j = i + 1; rc == NK_OK && j < in->nfiles; j++) {
        rc = win_open(s, j);
        if (rc != NK_OK) {
            break;
        }
        discarded += s->w.size;
        nk_logfile_hdr h;
        const char *hwhy = NULL;
        if (parse_hdr(&s->w, in->magic, in->numbers[j], &h, &hwhy) == NK_OK) {
            note_claim(s, h.synced_upto, j, 0);
        }
        rc = resync(s, j, 0);
    }
    if (rc != NK_OK) {
        return rc;
    }
    bool acked = p <= in->min_durable || (s->claim_seen && p <= s->claim);
    if (acked) {
        if (s->claim_seen && p <= s->claim) {
            nk_errbuf_set(s->eb,
                          "%s: corruption in %s at offset %llu (%s) where lsn %llu was expected, "
                          "but %s offset %llu records that lsns up to %llu were already durable; "
                          "the log is damaged before its durable end: restore this node from a "
                          "replica or a backup",
                          in->what, in->paths[i], (unsigned long long)off, why,
                          (unsigned long long)p, in->paths[s->claim_file],
                          (unsigned long long)s->claim_off, (unsigned long long)s->claim);
        } else {
            nk_errbuf_set(s->eb,
                          "%s: corruption in %s at offset %llu (%s) where lsn %llu was expected, "
                          "which was durable before this file was published; restore this node "
                          "from a replica or a backup",
                          in->what, in->paths[i], (unsigned long long)off, why,
                          (unsigned long long)p);
        }
        if (!in->salvage) {
            return NK_ECORRUPT;
        }
        /* Salvage (an operator's explicit decision): cut here like a torn
         * tail, and say loudly what is given up. */
        nk_log(s->rt, NK_LOG_WARN, "%s: salvage: accepting data loss: %s", in->what, s->eb->msg);
        out->salvaged = true;
        out->lost_from = p;
        out->lost_to = s->claim > in->min_durable ? s->claim : in->min_durable;
    }
    out->torn = true;
    out->cut_file = i;
    out->cut_offset = off;
    out->discarded = discarded;
    return NK_OK;
}

static int scan_files(scan *s)
{
    const nk_logscan_in *in = s->in;
    nk_logscan_out *out = s->out;
    uint64_t expect = in->start_lsn;
    for (size_t i = 0; i < in->nfiles; i++) {
        int rc = win_open(s, i);
        if (rc != NK_OK) {
            return rc;
        }
        if (out->file_size != NULL) {
            out->file_size[i] = s->w.size;
        }
        nk_logfile_hdr h;
        const char *why = NULL;
        rc = parse_hdr(&s->w, in->magic, in->numbers[i], &h, &why);
        if (rc == NK_ENOTSUP) {
            nk_errbuf_set(s->eb, "%s: %s: %s; open it with a newer build", in->what, in->paths[i],
                          why);
            return rc;
        }
        if (rc == NK_OK && i > 0 && h.first_lsn != expect) {
            rc = NK_ECORRUPT;
            why = "file does not continue the previous one (first lsn mismatch)";
        }
        if (rc == NK_OK && i == 0 && h.first_lsn == 0) {
            rc = NK_ECORRUPT;
            why = "first lsn 0";
        }
        if (rc == NK_ECORRUPT) {
            return decide(s, i, 0, expect, why);
        }
        if (rc != NK_OK) {
            return read_err(s, i, 0, rc);
        }
        if (i == 0) {
            if (in->max_first_lsn != 0 && h.first_lsn > in->max_first_lsn && in->salvage) {
                nk_log(s->rt, NK_LOG_WARN,
                       "%s: salvage: accepting data loss: %s starts at lsn %llu but lsn %llu "
                       "was still needed: lsns %llu..%llu are lost",
                       in->what, in->paths[i], (unsigned long long)h.first_lsn,
                       (unsigned long long)in->max_first_lsn, (unsigned long long)in->max_first_lsn,
                       (unsigned long long)h.first_lsn - 1);
                out->salvaged = true;
                out->lost_from = in->max_first_lsn;
                out->lost_to = h.first_lsn - 1;
            } else if (in->max_first_lsn != 0 && h.first_lsn > in->max_first_lsn) {
                nk_errbuf_set(s->eb,
                              "%s: %s starts at lsn %llu but lsn %llu is still needed: the "
                              "records in between are missing; restore this node from a "
                              "replica or a backup",
                              in->what, in->paths[i], (unsigned long long)h.first_lsn,
                              (unsigned long long)in->max_first_lsn);
                return NK_ECORRUPT;
            }
            expect = h.first_lsn;
            out->first_lsn = expect;
            out->last_lsn = expect - 1;
        }
        if (out->file_first_lsn != NULL) {
            out->file_first_lsn[i] = h.first_lsn;
        }
        note_claim(s, h.synced_upto, i, 0);
        uint64_t off = NK_LOGFILE_HDR_SIZE;
        while (off < s->w.size) {
            rec r;
            rc = parse_rec(&s->w, off, &r, &why);
            if (rc == NK_OK) {
                if (r.type == NK_LOGREC_DATA && r.lsn != expect) {
                    rc = NK_ECORRUPT;
                    why = "lsn not contiguous";
                } else if (r.type == NK_LOGREC_MARK && r.lsn != expect - 1) {
                    rc = NK_ECORRUPT;
                    why = "mark record lsn not contiguous";
                }
            }
            if (rc == NK_ECORRUPT) {
                return decide(s, i, off, expect, why);
            }
            if (rc != NK_OK) {
                return read_err(s, i, off, rc);
            }
            note_claim(s, r.synced_upto, i, off);
            if (r.type == NK_LOGREC_DATA) {
                rc = in->fn(in->arg, i, off, r.lsn, r.payload, r.len);
                if (rc != NK_OK) {
                    return rc;
                }
                out->records++;
                out->last_lsn = r.lsn;
                expect++;
            }
            off += NK_LOGREC_OVERHEAD + r.len;
        }
    }
    return NK_OK;
}

int nk_logscan_run(nk_rt *rt, const nk_logscan_in *in, nk_logscan_out *out, nk_errbuf *eb)
{
    out->first_lsn = in->start_lsn;
    out->last_lsn = in->start_lsn - 1;
    out->max_claim = 0;
    out->records = 0;
    out->torn = false;
    out->cut_file = in->nfiles;
    out->cut_offset = 0;
    out->discarded = 0;
    out->salvaged = false;
    out->lost_from = 0;
    out->lost_to = 0;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (out->file_first_lsn != NULL) {
            out->file_first_lsn[i] = 0;
        }
        if (out->file_size != NULL) {
            out->file_size[i] = 0;
        }
    }
    scan s = {.rt = rt, .in = in, .out = out, .eb = eb};
    s.w.rt = rt;
    int rc = scan_files(&s);
    win_close(&s);
    free(s.w.buf);
    out->max_claim = s.claim_seen ? s.claim : 0;
    return rc;
}

/* ------------------------------------- segment directory housekeeping --- */

int nk_logdir_ensure(nk_rt *rt, const char *what, const char *dir, nk_errbuf *eb)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, dir, &st);
    if (rc == NK_OK) {
        if (!st.is_dir) {
            nk_errbuf_set(eb, "%s: %s is not a directory", what, dir);
            return NK_ENOTDIR;
        }
        return NK_OK;
    }
    if (rc != NK_ENOENT) {
        nk_errbuf_set(eb, "%s: stat %s failed: %s", what, dir, nk_errdesc(rc));
        return rc;
    }
    rc = nk_rt_dir_create(rt, dir);
    if (rc == NK_OK) {
        char *parent = nk_path_parent(dir);
        rc = parent != NULL ? nk_rt_dir_sync(rt, parent) : NK_ENOMEM;
        free(parent);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: creating directory %s failed: %s", what, dir, nk_errdesc(rc));
    }
    return rc;
}

static int logseg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const nk_logseg_file *)a)->number, y = ((const nk_logseg_file *)b)->number;
    return x < y ? -1 : (x > y ? 1 : 0);
}

int nk_logseg_list(nk_rt *rt, const char *what, const char *dir, const char *suffix,
                   nk_logseg_file **out, size_t *count, nk_errbuf *eb)
{
    nk_logseg_file *files = NULL;
    size_t n = 0;
    nk_names names = {0};
    int rc = nk_rt_dir_list(rt, dir, &names);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: listing %s failed: %s", what, dir, nk_errdesc(rc));
    }
    if (rc == NK_OK && names.count > 0) {
        files = calloc(names.count, sizeof *files);
        if (files == NULL) {
            rc = NK_ENOMEM;
        }
    }
    for (size_t i = 0; rc == NK_OK && i < names.count; i++) {
        uint64_t number;
        if (!nk_name_number(names.names[i], strlen(names.names[i]), "", suffix, &number)) {
            continue; /* not ours */
        }
        files[n].number = number;
        files[n].path = nk_path_join(dir, names.names[i]);
        if (files[n++].path == NULL) {
            rc = NK_ENOMEM;
        }
    }
    nk_names_free(&names);
    if (rc == NK_OK && n > 1) { /* qsort(NULL, 0, ...) is undefined behaviour */
        qsort(files, n, sizeof *files, logseg_cmp);
    }
    *out = files;
    *count = n;
    return rc;
}

void nk_logseg_files_free(nk_logseg_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].path);
    }
    free(files);
}

int nk_logfile_read_hdr(nk_rt *rt, const char *path, uint64_t magic, nk_logfile_hdr *out)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t p[NK_LOGFILE_HDR_SIZE];
    size_t got = 0;
    rc = nk_rt_file_read_at(rt, f, 0, p, sizeof p, &got);
    (void)nk_rt_file_close(rt, f);
    if (rc != NK_OK) {
        return rc;
    }
    if (got < sizeof p || nk_get_u64(p) != magic || nk_get_u64(p + 40) != XXH64(p, 40, 0) ||
        nk_get_u32(p + 8) != NK_LOGFILE_VERSION || nk_get_u32(p + 12) != 0) {
        return NK_ECORRUPT;
    }
    out->magic = magic;
    out->number = nk_get_u64(p + 16);
    out->first_lsn = nk_get_u64(p + 24);
    out->synced_upto = nk_get_u64(p + 32);
    return NK_OK;
}

int nk_logfile_remove(nk_rt *rt, const char *what, const char *path, nk_errbuf *eb)
{
    int rc = nk_rt_remove(rt, path);
    if (rc == NK_ENOENT) {
        return NK_OK;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: removing %s failed: %s", what, path, nk_errdesc(rc));
    }
    return rc;
}

/* Open, optionally truncate, and fsync one segment. */
static int fix_segment(nk_rt *rt, const char *what, const char *path, bool truncate, uint64_t size,
                       const char *fp_after_cut, bool skip_cut_sync, nk_errbuf *eb)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_WRITE, &f);
    if (rc == NK_OK && truncate) {
        rc = nk_rt_file_truncate(rt, f, size);
        if (rc == NK_OK && fp_after_cut != NULL) {
            rc = nk_failpoint(rt, fp_after_cut);
        }
    }
    if (rc == NK_OK && !(truncate && skip_cut_sync)) {
        rc = nk_rt_file_sync(rt, f);
    }
    if (f != NULL) {
        (void)nk_rt_file_close(rt, f);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: making %s durable failed: %s", what, path, nk_errdesc(rc));
    }
    return rc;
}

int nk_logseg_cut_tail(nk_rt *rt, const char *what, const char *dir, const char *const *paths,
                       size_t n, size_t keep, bool torn, size_t cut_file, uint64_t cut_offset,
                       const char *fp_after_cut, bool skip_cut_sync, nk_errbuf *eb)
{
    int rc = NK_OK;
    for (size_t i = n; rc == NK_OK && i > keep; i--) {
        rc = nk_logfile_remove(rt, what, paths[i - 1], eb);
    }
    for (size_t i = 0; rc == NK_OK && i < keep; i++) {
        bool cut = torn && i == cut_file;
        rc = fix_segment(rt, what, paths[i], cut, cut_offset, fp_after_cut, skip_cut_sync, eb);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(rt, dir);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "%s: syncing directory %s failed: %s", what, dir, nk_errdesc(rc));
        }
    }
    return rc;
}
