/* version.c - immutable level snapshots with reference counting. */
#include "nokv/engine/version.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/ikey.h"

nk_table_meta *nk_table_meta_new(uint64_t number, uint64_t size, nk_slice smallest,
                               nk_slice largest, uint64_t min_seq, uint64_t max_seq)
{
    nk_table_meta *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->number = number;
    f->size = size;
    f->min_seq = min_seq;
    f->max_seq = max_seq;
    if (nk_buf_assign(&f->smallest, smallest.data, smallest.len) != NK_OK ||
        nk_buf_assign(&f->largest, largest.data, largest.len) != NK_OK) {
        nk_buf_free(&f->smallest);
        nk_buf_free(&f->largest);
        free(f);
        return NULL;
    }
    return f;
}

nk_version *nk_version_new_empty(void)
{
    nk_version *v = calloc(1, sizeof(*v));
    if (v != NULL) {
        v->refs = 1;
    }
    return v;
}

void nk_version_ref(nk_version *v) { v->refs++; }

void nk_version_unref(nk_version *v, nk_file_release_fn rel, void *arg)
{
    if (v == NULL || --v->refs > 0) {
        return;
    }
    for (int l = 0; l < NK_LEVELS; l++) {
        for (size_t i = 0; i < v->count[l]; i++) {
            nk_table_meta *f = v->files[l][i];
            if (--f->refs == 0) {
                rel(arg, f);
            }
        }
        free(v->files[l]);
    }
    free(v);
}

static int user_cmp(nk_slice a_ikey, nk_slice b_ikey)
{
    nk_slice a = nk_ikey_user(a_ikey.data, a_ikey.len);
    nk_slice b = nk_ikey_user(b_ikey.data, b_ikey.len);
    return nk_bytes_cmp(a.data, a.len, b.data, b.len);
}

static nk_slice buf_slice(const nk_buf *b) { return nk_slice_make(b->data, b->len); }

/* L0 by file number (older first); L1+ by smallest key. qsort needs a total
 * order for determinism: file numbers are unique, so they break ties. */
static int cmp_l0(const void *a, const void *b)
{
    const nk_table_meta *x = *(nk_table_meta *const *)a;
    const nk_table_meta *y = *(nk_table_meta *const *)b;
    return x->number < y->number ? -1 : x->number > y->number;
}

static int cmp_ln(const void *a, const void *b)
{
    const nk_table_meta *x = *(nk_table_meta *const *)a;
    const nk_table_meta *y = *(nk_table_meta *const *)b;
    int c = nk_ikey_cmp(x->smallest.data, x->smallest.len, y->smallest.data, y->smallest.len);
    if (c != 0) {
        return c;
    }
    return x->number < y->number ? -1 : x->number > y->number;
}

static bool in_list(const nk_version_change *c, size_t n, uint32_t level, uint64_t number)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].level == level && c[i].number == number) {
            return true;
        }
    }
    return false;
}

int nk_version_apply(const nk_version *base, const nk_version_change *dels, size_t ndel,
                     const nk_version_change *adds, size_t nadd, nk_version **out,
                     nk_errbuf *eb)
{
    for (size_t i = 0; i < ndel; i++) {
        bool found = false;
        if (dels[i].level < NK_LEVELS) {
            for (size_t j = 0; j < base->count[dels[i].level]; j++) {
                found = found || base->files[dels[i].level][j]->number == dels[i].number;
            }
        }
        if (!found) {
            nk_errbuf_set(eb, "version edit deletes table %06" PRIu64 " at level %u, which is "
                              "not there",
                          dels[i].number, dels[i].level);
            return NK_ECORRUPT;
        }
    }
    for (size_t i = 0; i < nadd; i++) {
        if (adds[i].level >= NK_LEVELS || adds[i].file == NULL) {
            nk_errbuf_set(eb, "version edit adds a table at invalid level %u", adds[i].level);
            return NK_ECORRUPT;
        }
        for (int l = 0; l < NK_LEVELS; l++) {
            for (size_t j = 0; j < base->count[l]; j++) {
                if (base->files[l][j]->number == adds[i].file->number &&
                    !in_list(dels, ndel, (uint32_t)l, adds[i].file->number)) {
                    nk_errbuf_set(eb, "version edit adds table %06" PRIu64 " twice",
                                  adds[i].file->number);
                    return NK_ECORRUPT;
                }
            }
        }
    }
    nk_version *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return NK_ENOMEM;
    }
    v->refs = 1;
    for (int l = 0; l < NK_LEVELS; l++) {
        size_t cap = base->count[l];
        for (size_t i = 0; i < nadd; i++) {
            cap += adds[i].level == (uint32_t)l;
        }
        if (cap == 0) {
            continue;
        }
        v->files[l] = malloc(cap * sizeof(nk_table_meta *));
        if (v->files[l] == NULL) {
            for (int k = 0; k < l; k++) {
                free(v->files[k]);
            }
            free(v);
            return NK_ENOMEM;
        }
        for (size_t j = 0; j < base->count[l]; j++) {
            nk_table_meta *f = base->files[l][j];
            if (!in_list(dels, ndel, (uint32_t)l, f->number)) {
                v->files[l][v->count[l]++] = f;
            }
        }
        for (size_t i = 0; i < nadd; i++) {
            if (adds[i].level == (uint32_t)l) {
                v->files[l][v->count[l]++] = adds[i].file;
            }
        }
        qsort(v->files[l], v->count[l], sizeof(nk_table_meta *), l == 0 ? cmp_l0 : cmp_ln);
    }
    /* Only now, with nothing left to fail, take the references. */
    for (int l = 0; l < NK_LEVELS; l++) {
        for (size_t j = 0; j < v->count[l]; j++) {
            v->files[l][j]->refs++;
        }
    }
    /* A deleted file becomes deletable from disk unless the same edit adds
     * its number back (a trivial move to the next level keeps the file). */
    for (size_t i = 0; i < ndel; i++) {
        bool readded = false;
        for (size_t a = 0; a < nadd; a++) {
            readded = readded || adds[a].file->number == dels[i].number;
        }
        for (size_t j = 0; j < base->count[dels[i].level] && !readded; j++) {
            nk_table_meta *f = base->files[dels[i].level][j];
            if (f->number == dels[i].number) {
                f->obsolete = true;
            }
        }
    }
    *out = v;
    return NK_OK;
}

uint64_t nk_version_level_bytes(const nk_version *v, int level)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < v->count[level]; i++) {
        sum += v->files[level][i]->size;
    }
    return sum;
}

int nk_version_overlaps(const nk_version *v, int level, nk_slice lo, nk_slice hi,
                        nk_table_meta ***out, size_t *n)
{
    for (size_t i = 0; i < v->count[level]; i++) {
        nk_table_meta *f = v->files[level][i];
        nk_slice fs = nk_ikey_user(f->smallest.data, f->smallest.len);
        nk_slice fl = nk_ikey_user(f->largest.data, f->largest.len);
        if (hi.len > 0 && nk_bytes_cmp(fs.data, fs.len, hi.data, hi.len) > 0) {
            continue; /* file starts after the range */
        }
        if (lo.len > 0 && nk_bytes_cmp(fl.data, fl.len, lo.data, lo.len) < 0) {
            continue; /* file ends before the range */
        }
        nk_table_meta **grown = realloc(*out, (*n + 1) * sizeof(nk_table_meta *));
        if (grown == NULL) {
            return NK_ENOMEM;
        }
        *out = grown;
        (*out)[(*n)++] = f;
    }
    return NK_OK;
}

int nk_version_check(const nk_version *v, nk_errbuf *eb)
{
    for (int l = 1; l < NK_LEVELS; l++) {
        for (size_t i = 1; i < v->count[l]; i++) {
            nk_table_meta *a = v->files[l][i - 1];
            nk_table_meta *b = v->files[l][i];
            if (user_cmp(buf_slice(&a->largest), buf_slice(&b->smallest)) >= 0) {
                nk_errbuf_set(eb,
                              "level %d tables %06" PRIu64 " and %06" PRIu64 " overlap", l,
                              a->number, b->number);
                return NK_ECORRUPT;
            }
        }
    }
    return NK_OK;
}
