/* version_edit.c - version edit codec and the version state it builds. */
#include "nokv/util/grow.h"
#include "nokv/engine/version_edit.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/engine/ikey.h"
#include "nokv/util/coding.h"

/* ------------------------------------------------------------- edits --- */

void nk_vedit_init(nk_version_edit *e)
{
    memset(e, 0, sizeof *e);
}

static void meta_free(nk_file_meta *m)
{
    nk_buf_free(&m->smallest);
    nk_buf_free(&m->largest);
}

void nk_vedit_free(nk_version_edit *e)
{
    for (size_t i = 0; i < e->nadded; i++) {
        meta_free(&e->added[i].meta);
    }
    free(e->added);
    free(e->deleted);
    nk_vedit_init(e);
}

void nk_vedit_set_wal_segment(nk_version_edit *e, uint64_t v)
{
    e->has_wal_segment = true;
    e->wal_segment = v;
}

void nk_vedit_set_wal_durable(nk_version_edit *e, uint64_t v)
{
    e->has_wal_durable = true;
    e->wal_durable = v;
}

void nk_vedit_set_log_number(nk_version_edit *e, uint64_t v)
{
    e->has_log_number = true;
    e->log_number = v;
}

void nk_vedit_set_next_file_number(nk_version_edit *e, uint64_t v)
{
    e->has_next_file_number = true;
    e->next_file_number = v;
}

void nk_vedit_set_last_sequence(nk_version_edit *e, uint64_t v)
{
    e->has_last_sequence = true;
    e->last_sequence = v;
}

void nk_vedit_set_seq_floor(nk_version_edit *e, uint64_t v)
{
    e->has_seq_floor = true;
    e->seq_floor = v;
}

static int meta_copy(nk_file_meta *dst, const nk_file_meta *src)
{
    memset(dst, 0, sizeof *dst);
    dst->number = src->number;
    dst->size = src->size;
    dst->has_xxh64 = src->has_xxh64;
    dst->xxh64 = src->xxh64;
    dst->smallest_seq = src->smallest_seq;
    dst->largest_seq = src->largest_seq;
    if (nk_buf_assign(&dst->smallest, src->smallest.data, src->smallest.len) != NK_OK ||
        nk_buf_assign(&dst->largest, src->largest.data, src->largest.len) != NK_OK) {
        meta_free(dst);
        return NK_ENOMEM;
    }
    return NK_OK;
}

int nk_vedit_add_file(nk_version_edit *e, uint32_t level, uint64_t number, uint64_t size,
                      const uint8_t *smallest, size_t slen, const uint8_t *largest, size_t llen,
                      uint64_t smallest_seq, uint64_t largest_seq)
{
    if (nk_grow((void **)&e->added, &e->cap_added, e->nadded, sizeof *e->added) != NK_OK) {
        return NK_ENOMEM;
    }
    nk_vedit_add *a = &e->added[e->nadded];
    memset(a, 0, sizeof *a);
    a->level = level;
    a->meta.number = number;
    a->meta.size = size;
    a->meta.smallest_seq = smallest_seq;
    a->meta.largest_seq = largest_seq;
    if (nk_buf_assign(&a->meta.smallest, smallest, slen) != NK_OK ||
        nk_buf_assign(&a->meta.largest, largest, llen) != NK_OK) {
        meta_free(&a->meta);
        return NK_ENOMEM;
    }
    e->nadded++;
    return NK_OK;
}

int nk_vedit_delete_file(nk_version_edit *e, uint32_t level, uint64_t number)
{
    if (nk_grow((void **)&e->deleted, &e->cap_deleted, e->ndeleted, sizeof *e->deleted) != NK_OK) {
        return NK_ENOMEM;
    }
    e->deleted[e->ndeleted].level = level;
    e->deleted[e->ndeleted].number = number;
    e->ndeleted++;
    return NK_OK;
}

void nk_vedit_set_file_xxh64(nk_version_edit *e, uint64_t xxh64)
{
    if (e->nadded > 0) {
        e->added[e->nadded - 1].meta.has_xxh64 = true;
        e->added[e->nadded - 1].meta.xxh64 = xxh64;
    }
}

/* ---------------------------------------------------------- encoding --- */

static int put_uvar_field(nk_buf *b, uint64_t tag, uint64_t v)
{
    int rc = nk_buf_append_varint(b, tag);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, nk_varint64_len(v));
    }
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, v);
    }
    return rc;
}

static int put_bytes_field(nk_buf *b, uint64_t tag, const uint8_t *p, size_t len)
{
    int rc = nk_buf_append_varint(b, tag);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(b, len);
    }
    if (rc == NK_OK) {
        rc = nk_buf_append(b, p, len);
    }
    return rc;
}

int nk_vedit_encode(const nk_version_edit *e, nk_buf *out)
{
    int rc = nk_buf_append_varint(out, NK_VEDIT_VERSION);
    if (rc == NK_OK && e->has_log_number) {
        rc = put_uvar_field(out, NK_VEDIT_LOG_NUMBER, e->log_number);
    }
    if (rc == NK_OK && e->has_next_file_number) {
        rc = put_uvar_field(out, NK_VEDIT_NEXT_FILE, e->next_file_number);
    }
    if (rc == NK_OK && e->has_last_sequence) {
        rc = put_uvar_field(out, NK_VEDIT_LAST_SEQ, e->last_sequence);
    }
    if (rc == NK_OK && e->has_seq_floor) {
        rc = put_uvar_field(out, NK_VEDIT_SEQ_FLOOR, e->seq_floor);
    }
    if (rc == NK_OK && e->has_wal_segment) {
        rc = put_uvar_field(out, NK_VEDIT_WAL_SEGMENT, e->wal_segment);
    }
    if (rc == NK_OK && e->has_wal_durable) {
        rc = put_uvar_field(out, NK_VEDIT_WAL_DURABLE, e->wal_durable);
    }
    if (rc == NK_OK && e->wal_reset) {
        rc = put_uvar_field(out, NK_VEDIT_WAL_RESET, 1);
    }
    nk_buf nested = {0};
    for (size_t i = 0; rc == NK_OK && i < e->ndeleted; i++) {
        nk_buf_clear(&nested);
        rc = put_uvar_field(&nested, 1, e->deleted[i].level);
        if (rc == NK_OK) {
            rc = put_uvar_field(&nested, 2, e->deleted[i].number);
        }
        if (rc == NK_OK) {
            rc = put_bytes_field(out, NK_VEDIT_DELETE_FILE, nested.data, nested.len);
        }
    }
    for (size_t i = 0; rc == NK_OK && i < e->nadded; i++) {
        const nk_vedit_add *a = &e->added[i];
        nk_buf_clear(&nested);
        rc = put_uvar_field(&nested, 1, a->level);
        if (rc == NK_OK) {
            rc = put_uvar_field(&nested, 2, a->meta.number);
        }
        if (rc == NK_OK) {
            rc = put_uvar_field(&nested, 3, a->meta.size);
        }
        if (rc == NK_OK) {
            rc = put_bytes_field(&nested, 4, a->meta.smallest.data, a->meta.smallest.len);
        }
        if (rc == NK_OK) {
            rc = put_bytes_field(&nested, 5, a->meta.largest.data, a->meta.largest.len);
        }
        if (rc == NK_OK) {
            rc = put_uvar_field(&nested, 6, a->meta.smallest_seq);
        }
        if (rc == NK_OK) {
            rc = put_uvar_field(&nested, 7, a->meta.largest_seq);
        }
        if (rc == NK_OK && a->meta.has_xxh64) {
            /* fixed width: a hash is uniformly spread, a varint would only
             * make it longer */
            uint8_t h[8];
            nk_put_u64(h, a->meta.xxh64);
            rc = put_bytes_field(&nested, NK_VEDIT_FILE_XXH64, h, sizeof h);
        }
        if (rc == NK_OK) {
            rc = put_bytes_field(out, NK_VEDIT_ADD_FILE, nested.data, nested.len);
        }
    }
    nk_buf_free(&nested);
    return rc;
}

/* ---------------------------------------------------------- decoding --- */

/* A bounds-checked cursor over the edit bytes; offsets in messages are from
 * the start of the edit. */
typedef struct cursor {
    const uint8_t *base;
    const uint8_t *p;
    const uint8_t *end;
    nk_errbuf *eb;
} cursor;

static int bad(cursor *c, const char *what)
{
    nk_errbuf_set(c->eb, "version edit: %s at byte %zu", what, (size_t)(c->p - c->base));
    return NK_ECORRUPT;
}

static int get_varint(cursor *c, uint64_t *v, const char *what)
{
    size_t n = nk_get_varint64(c->p, c->end, v);
    if (n == 0) {
        return bad(c, what);
    }
    c->p += n;
    return NK_OK;
}

/* Read one field header and bound its value. */
static int get_field(cursor *c, uint64_t *tag, cursor *val)
{
    uint64_t len;
    int rc = get_varint(c, tag, "truncated or overlong field tag");
    if (rc == NK_OK) {
        rc = get_varint(c, &len, "truncated or overlong field length");
    }
    if (rc != NK_OK) {
        return rc;
    }
    if (len > (uint64_t)(c->end - c->p)) {
        return bad(c, "field length runs past the end");
    }
    *val = (cursor){c->base, c->p, c->p + len, c->eb};
    c->p += len;
    return NK_OK;
}

/* A varint that fills its value exactly. */
static int val_uvar(cursor *v, uint64_t *out)
{
    int rc = get_varint(v, out, "bad varint value");
    if (rc == NK_OK && v->p != v->end) {
        return bad(v, "varint value does not fill its field");
    }
    return rc;
}

static int unknown_tag(cursor *c, uint64_t tag, const char *where)
{
    if (tag & NK_VEDIT_TAG_IGNORABLE) {
        return NK_OK;
    }
    nk_errbuf_set(c->eb,
                  "version edit: unknown required %s tag %llu at byte %zu: written by a newer "
                  "version; open with a newer build",
                  where, (unsigned long long)tag, (size_t)(c->p - c->base));
    return NK_ENOTSUP;
}

static int level_ok(cursor *c, uint64_t level)
{
    if (level >= NK_NUM_LEVELS) {
        return bad(c, "level out of range");
    }
    return NK_OK;
}

static int decode_delete(cursor *c, nk_version_edit *e)
{
    uint64_t level = 0, number = 0;
    bool seen[3] = {false, false, false};
    while (c->p < c->end) {
        uint64_t tag;
        cursor v;
        int rc = get_field(c, &tag, &v);
        if (rc != NK_OK) {
            return rc;
        }
        if (tag == 1 || tag == 2) {
            if (seen[tag]) {
                return bad(&v, "repeated delete_file field");
            }
            seen[tag] = true;
            rc = val_uvar(&v, tag == 1 ? &level : &number);
        } else {
            rc = unknown_tag(&v, tag, "delete_file field");
        }
        if (rc != NK_OK) {
            return rc;
        }
    }
    if (!seen[1] || !seen[2]) {
        return bad(c, "delete_file without level or number");
    }
    int rc = level_ok(c, level);
    if (rc == NK_OK) {
        rc = nk_vedit_delete_file(e, (uint32_t)level, number);
    }
    return rc;
}

static int decode_add(cursor *c, nk_version_edit *e)
{
    uint64_t u[8] = {0};
    cursor keys[2] = {{0}, {0}};
    bool seen[8] = {false};
    bool has_xxh64 = false;
    uint64_t xxh64 = 0;
    while (c->p < c->end) {
        uint64_t tag;
        cursor v;
        int rc = get_field(c, &tag, &v);
        if (rc != NK_OK) {
            return rc;
        }
        if (tag >= 1 && tag <= 7) {
            if (seen[tag]) {
                return bad(&v, "repeated add_file field");
            }
            seen[tag] = true;
            if (tag == 4 || tag == 5) {
                keys[tag - 4] = v;
            } else {
                rc = val_uvar(&v, &u[tag]);
            }
        } else if (tag == NK_VEDIT_FILE_XXH64) {
            if (has_xxh64) {
                return bad(&v, "repeated add_file file_xxh64");
            }
            if (v.end - v.p != 8) {
                return bad(&v, "add_file file_xxh64 is not 8 bytes");
            }
            has_xxh64 = true;
            xxh64 = nk_get_u64(v.p);
        } else {
            rc = unknown_tag(&v, tag, "add_file field");
        }
        if (rc != NK_OK) {
            return rc;
        }
    }
    for (int t = 1; t <= 7; t++) {
        if (!seen[t]) {
            return bad(c, "add_file missing a required field");
        }
    }
    int rc = level_ok(c, u[1]);
    if (rc == NK_OK) {
        rc = nk_vedit_add_file(e, (uint32_t)u[1], u[2], u[3], keys[0].p,
                               (size_t)(keys[0].end - keys[0].p), keys[1].p,
                               (size_t)(keys[1].end - keys[1].p), u[6], u[7]);
    }
    if (rc == NK_OK && has_xxh64) {
        nk_vedit_set_file_xxh64(e, xxh64);
    }
    return rc;
}

int nk_vedit_decode(const uint8_t *p, size_t len, nk_version_edit *out, nk_errbuf *eb)
{
    nk_vedit_init(out);
    cursor c = {p, p, p + len, eb};
    uint64_t version;
    int rc = get_varint(&c, &version, "missing version");
    if (rc != NK_OK) {
        return rc;
    }
    if (version != NK_VEDIT_VERSION) {
        nk_errbuf_set(eb, "version edit: format version %llu not supported (this build: %u)",
                      (unsigned long long)version, NK_VEDIT_VERSION);
        return version > NK_VEDIT_VERSION ? NK_ENOTSUP : NK_ECORRUPT;
    }
    while (rc == NK_OK && c.p < c.end) {
        uint64_t tag;
        cursor v;
        rc = get_field(&c, &tag, &v);
        if (rc != NK_OK) {
            break;
        }
        switch (tag) {
        case NK_VEDIT_LOG_NUMBER:
            if (out->has_log_number) {
                return bad(&v, "repeated log_number");
            }
            out->has_log_number = true;
            rc = val_uvar(&v, &out->log_number);
            break;
        case NK_VEDIT_NEXT_FILE:
            if (out->has_next_file_number) {
                return bad(&v, "repeated next_file_number");
            }
            out->has_next_file_number = true;
            rc = val_uvar(&v, &out->next_file_number);
            break;
        case NK_VEDIT_LAST_SEQ:
            if (out->has_last_sequence) {
                return bad(&v, "repeated last_sequence");
            }
            out->has_last_sequence = true;
            rc = val_uvar(&v, &out->last_sequence);
            break;
        case NK_VEDIT_SEQ_FLOOR:
            if (out->has_seq_floor) {
                return bad(&v, "repeated seq_floor");
            }
            out->has_seq_floor = true;
            rc = val_uvar(&v, &out->seq_floor);
            break;
        case NK_VEDIT_WAL_SEGMENT:
            if (out->has_wal_segment) {
                return bad(&v, "repeated wal_segment");
            }
            out->has_wal_segment = true;
            rc = val_uvar(&v, &out->wal_segment);
            break;
        case NK_VEDIT_WAL_DURABLE:
            if (out->has_wal_durable) {
                return bad(&v, "repeated wal_durable");
            }
            out->has_wal_durable = true;
            rc = val_uvar(&v, &out->wal_durable);
            break;
        case NK_VEDIT_WAL_RESET: {
            uint64_t one = 0;
            if (out->wal_reset) {
                return bad(&v, "repeated wal_reset");
            }
            rc = val_uvar(&v, &one);
            out->wal_reset = rc == NK_OK && one == 1;
            if (rc == NK_OK && one != 1) {
                return bad(&v, "wal_reset must be 1");
            }
            break;
        }
        case NK_VEDIT_ADD_FILE:
            rc = decode_add(&v, out);
            break;
        case NK_VEDIT_DELETE_FILE:
            rc = decode_delete(&v, out);
            break;
        default:
            rc = unknown_tag(&v, tag, "edit");
            break;
        }
    }
    return rc;
}

/* ------------------------------------------------------ version state --- */

void nk_vstate_init(nk_version_state *v)
{
    memset(v, 0, sizeof *v);
}

void nk_vstate_free(nk_version_state *v)
{
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < v->levels[l].count; i++) {
            meta_free(&v->levels[l].files[i]);
        }
        free(v->levels[l].files);
    }
    nk_vstate_init(v);
}

size_t nk_vstate_file_count(const nk_version_state *v)
{
    size_t n = 0;
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        n += v->levels[l].count;
    }
    return n;
}

static int find_in_level(const nk_level_files *lf, uint64_t number, size_t *index)
{
    for (size_t i = 0; i < lf->count; i++) {
        if (lf->files[i].number == number) {
            *index = i;
            return NK_OK;
        }
    }
    return NK_ENOENT;
}

int nk_vstate_find(const nk_version_state *v, uint64_t number, uint32_t *level, size_t *index)
{
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        if (find_in_level(&v->levels[l], number, index) == NK_OK) {
            *level = l;
            return NK_OK;
        }
    }
    return NK_ENOENT;
}

/* Level order: L0 by number, others by smallest key (number breaks ties so
 * the order is total). */
static int meta_order(unsigned level, const nk_file_meta *a, const nk_file_meta *b)
{
    if (level > 0) {
        int c = nk_ikey_cmp(a->smallest.data, a->smallest.len, b->smallest.data, b->smallest.len);
        if (c != 0) {
            return c;
        }
    }
    return a->number < b->number ? -1 : (a->number > b->number ? 1 : 0);
}

static bool edit_deletes(const nk_version_edit *e, uint64_t number)
{
    for (size_t i = 0; i < e->ndeleted; i++) {
        if (e->deleted[i].number == number) {
            return true;
        }
    }
    return false;
}

static int cmp_by_key(const void *x, const void *y)
{
    return meta_order(1, *(const nk_file_meta *const *)x, *(const nk_file_meta *const *)y);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : (a > b ? 1 : 0);
}

/* Levels >= 1: the files left after e must not overlap. */
static int check_overlap(const nk_version_state *v, const nk_version_edit *e, unsigned level,
                         nk_errbuf *eb)
{
    const nk_level_files *lf = &v->levels[level];
    size_t n = 0;
    const nk_file_meta **all = malloc((lf->count + e->nadded + 1) * sizeof *all);
    if (all == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < lf->count; i++) {
        if (!edit_deletes(e, lf->files[i].number)) {
            all[n++] = &lf->files[i];
        }
    }
    for (size_t i = 0; i < e->nadded; i++) {
        if (e->added[i].level == level) {
            all[n++] = &e->added[i].meta;
        }
    }
    qsort(all, n, sizeof *all, cmp_by_key);
    int rc = NK_OK;
    for (size_t i = 1; i < n; i++) {
        const nk_file_meta *a = all[i - 1], *b = all[i];
        if (nk_ikey_cmp(a->largest.data, a->largest.len, b->smallest.data, b->smallest.len) >= 0) {
            nk_errbuf_set(eb, "files %llu and %llu overlap at level %u",
                          (unsigned long long)a->number, (unsigned long long)b->number, level);
            rc = NK_EINVAL;
            break;
        }
    }
    free(all);
    return rc;
}

/* A number listed twice in the edit's adds or deletes: NK_EINVAL. */
static int check_unique(const nk_version_edit *e, bool adds, nk_errbuf *eb)
{
    size_t n = adds ? e->nadded : e->ndeleted;
    if (n < 2) {
        return NK_OK;
    }
    uint64_t *nums = malloc(n * sizeof *nums);
    if (nums == NULL) {
        return NK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        nums[i] = adds ? e->added[i].meta.number : e->deleted[i].number;
    }
    qsort(nums, n, sizeof *nums, cmp_u64);
    int rc = NK_OK;
    for (size_t i = 1; i < n; i++) {
        if (nums[i] == nums[i - 1]) {
            nk_errbuf_set(eb, "edit %s file %llu twice", adds ? "adds" : "deletes",
                          (unsigned long long)nums[i]);
            rc = NK_EINVAL;
            break;
        }
    }
    free(nums);
    return rc;
}

int nk_vstate_check(const nk_version_state *v, const nk_version_edit *e, nk_errbuf *eb)
{
    int rc = check_unique(e, false, eb);
    if (rc == NK_OK) {
        rc = check_unique(e, true, eb);
    }
    if (rc != NK_OK) {
        return rc;
    }
    for (size_t i = 0; i < e->ndeleted; i++) {
        const nk_vedit_del *d = &e->deleted[i];
        size_t idx;
        if (d->level >= NK_NUM_LEVELS ||
            find_in_level(&v->levels[d->level], d->number, &idx) != NK_OK) {
            nk_errbuf_set(eb, "edit deletes file %llu at level %u, which is not there",
                          (unsigned long long)d->number, d->level);
            return NK_EINVAL;
        }
    }
    bool level_added[NK_NUM_LEVELS] = {false};
    for (size_t i = 0; i < e->nadded; i++) {
        const nk_vedit_add *a = &e->added[i];
        const nk_file_meta *m = &a->meta;
        uint32_t lv;
        size_t idx;
        if (a->level >= NK_NUM_LEVELS) {
            nk_errbuf_set(eb, "edit adds file %llu at level %u (max %u)",
                          (unsigned long long)m->number, a->level, NK_NUM_LEVELS - 1);
            return NK_EINVAL;
        }
        if (nk_vstate_find(v, m->number, &lv, &idx) == NK_OK && !edit_deletes(e, m->number)) {
            nk_errbuf_set(eb, "edit adds file %llu at level %u, but it is already at level %u",
                          (unsigned long long)m->number, a->level, lv);
            return NK_EINVAL;
        }
        if (m->smallest.len < NK_IKEY_TRAILER || m->largest.len < NK_IKEY_TRAILER ||
            nk_ikey_cmp(m->smallest.data, m->smallest.len, m->largest.data, m->largest.len) > 0 ||
            m->smallest_seq > m->largest_seq) {
            nk_errbuf_set(eb, "edit adds file %llu with an invalid key or sequence range",
                          (unsigned long long)m->number);
            return NK_EINVAL;
        }
        level_added[a->level] = true;
    }
    for (unsigned l = 1; l < NK_NUM_LEVELS; l++) {
        if (level_added[l]) {
            rc = check_overlap(v, e, l, eb);
            if (rc != NK_OK) {
                return rc;
            }
        }
    }
    return NK_OK;
}

int nk_vstate_apply(nk_version_state *v, const nk_version_edit *e, nk_errbuf *eb)
{
    int rc = nk_vstate_check(v, e, eb);
    if (rc != NK_OK) {
        return rc;
    }
    /* Everything that can fail (copies, capacity) happens before the first
     * change, so a failed apply leaves v as it was. */
    nk_file_meta *copies = NULL;
    if (e->nadded > 0) {
        copies = calloc(e->nadded, sizeof *copies);
        if (copies == NULL) {
            return NK_ENOMEM;
        }
    }
    size_t ncopied = 0;
    for (; ncopied < e->nadded; ncopied++) {
        if (meta_copy(&copies[ncopied], &e->added[ncopied].meta) != NK_OK) {
            rc = NK_ENOMEM;
            break;
        }
    }
    for (unsigned l = 0; rc == NK_OK && l < NK_NUM_LEVELS; l++) {
        size_t add = 0;
        for (size_t i = 0; i < e->nadded; i++) {
            add += e->added[i].level == l;
        }
        nk_level_files *lf = &v->levels[l];
        if (lf->count + add > lf->cap) {
            size_t ncap = lf->cap ? lf->cap : 8;
            while (ncap < lf->count + add) {
                ncap *= 2;
            }
            nk_file_meta *p = realloc(lf->files, ncap * sizeof *p);
            if (p == NULL) {
                rc = NK_ENOMEM;
                break;
            }
            lf->files = p;
            lf->cap = ncap;
        }
    }
    if (rc != NK_OK) {
        for (size_t i = 0; i < ncopied; i++) {
            meta_free(&copies[i]);
        }
        free(copies);
        nk_errbuf_set(eb, "out of memory applying a version edit");
        return rc;
    }
    for (size_t i = 0; i < e->ndeleted; i++) {
        nk_level_files *lf = &v->levels[e->deleted[i].level];
        size_t idx = 0;
        (void)find_in_level(lf, e->deleted[i].number, &idx); /* checked above */
        meta_free(&lf->files[idx]);
        memmove(&lf->files[idx], &lf->files[idx + 1], (lf->count - idx - 1) * sizeof *lf->files);
        lf->count--;
    }
    for (size_t i = 0; i < e->nadded; i++) {
        unsigned l = e->added[i].level;
        nk_level_files *lf = &v->levels[l];
        size_t pos = lf->count;
        while (pos > 0 && meta_order(l, &lf->files[pos - 1], &copies[i]) > 0) {
            pos--;
        }
        memmove(&lf->files[pos + 1], &lf->files[pos], (lf->count - pos) * sizeof *lf->files);
        lf->files[pos] = copies[i];
        lf->count++;
    }
    free(copies);
    if (e->has_log_number) {
        v->log_number = e->log_number;
    }
    if (e->has_next_file_number) {
        v->next_file_number = e->next_file_number;
    }
    if (e->has_last_sequence) {
        v->last_sequence = e->last_sequence;
    }
    if (e->has_seq_floor && e->seq_floor > v->seq_floor) {
        v->seq_floor = e->seq_floor;
    }
    /* Claims about the WAL only grow: an edit prepared before another one
     * was logged may carry an older claim. */
    if (e->has_wal_segment && (e->wal_reset || e->wal_segment > v->wal_segment)) {
        v->wal_segment = e->wal_segment;
    }
    if (e->has_wal_durable && (e->wal_reset || e->wal_durable > v->wal_durable)) {
        v->wal_durable = e->wal_durable;
    }
    return NK_OK;
}

int nk_vstate_snapshot(const nk_version_state *v, nk_version_edit *out)
{
    nk_vedit_init(out);
    nk_vedit_set_log_number(out, v->log_number);
    nk_vedit_set_next_file_number(out, v->next_file_number);
    nk_vedit_set_last_sequence(out, v->last_sequence);
    if (v->seq_floor != 0) {
        nk_vedit_set_seq_floor(out, v->seq_floor);
    }
    if (v->wal_segment != 0) {
        nk_vedit_set_wal_segment(out, v->wal_segment);
    }
    if (v->wal_durable != 0) {
        nk_vedit_set_wal_durable(out, v->wal_durable);
    }
    for (unsigned l = 0; l < NK_NUM_LEVELS; l++) {
        for (size_t i = 0; i < v->levels[l].count; i++) {
            const nk_file_meta *m = &v->levels[l].files[i];
            int rc =
                nk_vedit_add_file(out, l, m->number, m->size, m->smallest.data, m->smallest.len,
                                  m->largest.data, m->largest.len, m->smallest_seq, m->largest_seq);
            if (rc != NK_OK) {
                nk_vedit_free(out);
                return rc;
            }
            if (m->has_xxh64) {
                /* a rewrite keeps what the writers recorded */
                nk_vedit_set_file_xxh64(out, m->xxh64);
            }
        }
    }
    return NK_OK;
}
