/*
 * disk.c - the simulated disk (contract in sim/disk.h).
 *
 * Representation
 *   - Every file and directory is an inode on one list kept in creation
 *     order: that list is the only order in which inodes are ever visited,
 *     so nothing depends on pointer values.
 *   - A file inode has two byte buffers, `vol` (what reads see) and `dur`
 *     (the durable content), plus the ordered list of data operations issued
 *     since the last sync. Invariant: vol == dur + pending ops applied in
 *     order. sync applies the ops to dur (cost proportional to the unsynced
 *     bytes, not the file size); a crash applies each op per the policy.
 *   - A directory inode has two sorted entry vectors, `vent` (volatile) and
 *     `dent` (durable). Entry changes are queued on one disk-wide list of
 *     directory operations in issue order; dir_sync applies the ones that
 *     touch that directory (plus what they depend on), a crash resolves all.
 *   - Inodes are reference counted by volatile links, durable links, open
 *     handles/locks and pending directory operations; an inode nobody refers
 *     to is freed by collect(), in list order.
 *
 * Out-of-memory aborts the process: this is simulator infrastructure, and a
 * half-applied operation would silently break the durability model.
 */
#include "sim/disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/util/coding.h"

/* ------------------------------------------------------------- helpers --- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    if (q == NULL) {
        fprintf(stderr, "sim/disk: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL) {
        fprintf(stderr, "sim/disk: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xrealloc(NULL, n);
    memcpy(p, s, n);
    return p;
}

static bool roll(nk_rand *r, nk_simdisk_ratio q)
{
    /* nk_rand_chance draws nothing for num == 0 or num >= den, so a policy of
     * "never" or "always" does not shift later draws. */
    return nk_rand_chance(r, q.num, q.den);
}

/* ------------------------------------------------------------- buffers --- */

typedef struct bytes {
    uint8_t *p;
    uint64_t size; /* logical size; bytes beyond it are never read */
    uint64_t cap;
} bytes;

static void bytes_reserve(bytes *b, uint64_t n)
{
    if (n <= b->cap) {
        return;
    }
    uint64_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < n) {
        cap *= 2;
    }
    b->p = xrealloc(b->p, (size_t)cap);
    b->cap = cap;
}

/* Set the size; growing fills with zeros (a hole reads as zeros). */
static void bytes_resize(bytes *b, uint64_t n)
{
    if (n > b->size) {
        bytes_reserve(b, n);
        memset(b->p + b->size, 0, (size_t)(n - b->size));
    }
    b->size = n;
}

static void bytes_write(bytes *b, uint64_t off, const void *src, uint64_t len)
{
    if (len == 0) {
        return;
    }
    if (off + len > b->size) {
        bytes_resize(b, off + len);
    }
    memcpy(b->p + off, src, (size_t)len);
}

static void bytes_copy(bytes *dst, const bytes *src)
{
    bytes_reserve(dst, src->size);
    if (src->size > 0) {
        memcpy(dst->p, src->p, (size_t)src->size);
    }
    dst->size = src->size;
}

/* -------------------------------------------------------------- inodes --- */

typedef struct inode inode;

typedef struct ent {
    char *name;
    inode *ino;
} ent;

typedef struct entvec {
    ent *v;
    size_t n, cap;
} entvec;

enum { DATA_WRITE, DATA_TRUNC };

typedef struct dataop {
    int kind;
    uint64_t off; /* DATA_WRITE: offset; DATA_TRUNC: the new size */
    uint64_t len;
    uint8_t *data;
} dataop;

struct inode {
    uint64_t id; /* creation sequence number */
    bool is_dir;
    inode *prev, *next;
    char *path; /* latest name, for observer events only */

    /* references: volatile links, durable links, handles + locks, dir ops */
    uint32_t nlink_vol, nlink_dur, nopen, nrefop;

    /* files */
    bytes vol, dur;
    dataop *ops;
    size_t nops, capops;

    /* directories */
    entvec vent, dent;
    bool locked;

    /* pending dir ops that name this directory (dir_sync's fast path) */
    uint32_t npend;

    /* scratch for dir_sync and crash */
    uint64_t bound;
    bool closed;
    bool mark;
};

enum { DIR_LINK, DIR_UNLINK, DIR_RENAME };

/* One pending directory operation. LINK sets dto/nto -> ino; UNLINK removes
 * dfrom/nfrom; RENAME does both, atomically. */
typedef struct dirop {
    uint64_t seq;
    int kind;
    inode *dfrom, *dto;
    char *nfrom, *nto;
    inode *ino;
    bool incl;
} dirop;

struct nk_simfile {
    nk_simfile *prev, *next;
    inode *ino; /* NULL once stale */
    unsigned flags;
};

struct nk_simlock {
    nk_simlock *prev, *next;
    inode *dir; /* NULL once stale */
};

struct nk_simdisk {
    uint32_t sector;
    uint8_t *scratch; /* one sector of garbage */
    nk_rand rng;      /* faults */
    nk_simdisk_faults faults;
    nk_simdisk_observer_fn obs;
    void *obs_ctx;

    inode *root;
    inode *head, *tail;
    uint64_t next_id;
    bool gc_needed;

    dirop *dops;
    size_t ndops, capdops;
    size_t ncross; /* pending ops between two different directories */
    uint64_t next_seq;

    nk_simfile *files; /* live and stale handles */
    nk_simlock *locks;

    uint64_t used;         /* sum of vol sizes of live files */
    uint64_t pending_data; /* data ops over all inodes */
    nk_simdisk_stats st;
};

const nk_simdisk_crash_policy nk_simdisk_crash_drop_all = {
    .write_apply = {0, 1},
    .write_torn = {0, 1},
    .sector_apply = {0, 1},
    .sector_garbage = {0, 1},
    .trunc_apply = {0, 1},
    .dirop_apply = {0, 1},
};

const nk_simdisk_crash_policy nk_simdisk_crash_keep_all = {
    .write_apply = {1, 1},
    .write_torn = {0, 1},
    .sector_apply = {1, 1},
    .sector_garbage = {0, 1},
    .trunc_apply = {1, 1},
    .dirop_apply = {1, 1},
};

const nk_simdisk_crash_policy nk_simdisk_crash_chaos = {
    .write_apply = {1, 3},
    .write_torn = {1, 2},
    .sector_apply = {1, 2},
    .sector_garbage = {1, 4},
    .trunc_apply = {1, 2},
    .dirop_apply = {2, 3},
};

static void emit(nk_simdisk *d, const char *ev, const char *path, uint64_t a, uint64_t b)
{
    if (d->obs != NULL) {
        d->obs(d->obs_ctx, ev, path, a, b);
    }
}

static bool is_live(const inode *n)
{
    return n->nlink_vol > 0 || n->nopen > 0;
}

static bool unreferenced(const inode *n)
{
    return n->nlink_vol == 0 && n->nlink_dur == 0 && n->nopen == 0 && n->nrefop == 0;
}

/* Change the volatile link / open counts, keeping `used` (the capacity
 * accounting of live files) exact. */
static void vol_ref(nk_simdisk *d, inode *n, int dlink, int dopen)
{
    bool was = is_live(n);
    n->nlink_vol = (uint32_t)((int64_t)n->nlink_vol + dlink);
    n->nopen = (uint32_t)((int64_t)n->nopen + dopen);
    bool now = is_live(n);
    if (!n->is_dir && was != now) {
        if (now) {
            d->used += n->vol.size;
        } else {
            d->used -= n->vol.size;
        }
    }
    if (unreferenced(n)) {
        d->gc_needed = true;
    }
}

static void dur_ref(nk_simdisk *d, inode *n, int dlink)
{
    n->nlink_dur = (uint32_t)((int64_t)n->nlink_dur + dlink);
    if (unreferenced(n)) {
        d->gc_needed = true;
    }
}

/* Resize a file's volatile content, keeping `used` exact. */
static void vol_resize_acct(nk_simdisk *d, inode *n, uint64_t old_size)
{
    if (is_live(n)) {
        d->used = d->used - old_size + n->vol.size;
    }
}

static inode *inode_new(nk_simdisk *d, bool is_dir, const char *path)
{
    inode *n = xcalloc(1, sizeof(*n));
    n->id = d->next_id++;
    n->is_dir = is_dir;
    n->path = xstrdup(path);
    n->prev = d->tail;
    if (d->tail != NULL) {
        d->tail->next = n;
    } else {
        d->head = n;
    }
    d->tail = n;
    return n;
}

static void set_path(inode *n, const char *path)
{
    free(n->path);
    n->path = xstrdup(path);
}

static void entvec_free_names(entvec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i].name);
    }
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static void dataops_clear(nk_simdisk *d, inode *n)
{
    for (size_t i = 0; i < n->nops; i++) {
        free(n->ops[i].data);
    }
    d->pending_data -= n->nops;
    n->nops = 0;
}

/* Unlink from the inode list and free the memory; no reference bookkeeping. */
static void inode_destroy(nk_simdisk *d, inode *n)
{
    if (n->prev != NULL) {
        n->prev->next = n->next;
    } else {
        d->head = n->next;
    }
    if (n->next != NULL) {
        n->next->prev = n->prev;
    } else {
        d->tail = n->prev;
    }
    dataops_clear(d, n);
    free(n->ops);
    free(n->vol.p);
    free(n->dur.p);
    entvec_free_names(&n->vent);
    entvec_free_names(&n->dent);
    free(n->path);
    free(n);
}

/* Free every inode nobody refers to. Freeing a directory drops its entries'
 * references, which can free more, so repeat until a pass frees nothing. */
static void collect(nk_simdisk *d)
{
    while (d->gc_needed) {
        d->gc_needed = false;
        inode *n = d->head;
        while (n != NULL) {
            inode *next = n->next;
            if (n != d->root && unreferenced(n)) {
                for (size_t i = 0; i < n->vent.n; i++) {
                    vol_ref(d, n->vent.v[i].ino, -1, 0);
                }
                for (size_t i = 0; i < n->dent.n; i++) {
                    dur_ref(d, n->dent.v[i].ino, -1);
                }
                inode_destroy(d, n);
                /* `next` may have been released above but never destroyed:
                 * destruction only happens here, one inode at a time. */
            }
            n = next;
        }
    }
}

/* ------------------------------------------------------------- entries --- */

/* Index of `name` in v, or the insertion point with *found = false. */
static size_t ent_find(const entvec *v, const char *name, bool *found)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->v[mid].name, name); /* strcmp compares as unsigned char */
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static inode *ent_get(const entvec *v, const char *name)
{
    bool found;
    size_t i = ent_find(v, name, &found);
    return found ? v->v[i].ino : NULL;
}

/* Set name -> ino; returns the inode it replaced (or NULL). */
static inode *ent_set(entvec *v, const char *name, inode *ino)
{
    bool found;
    size_t i = ent_find(v, name, &found);
    if (found) {
        inode *old = v->v[i].ino;
        v->v[i].ino = ino;
        return old;
    }
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = xrealloc(v->v, v->cap * sizeof(ent));
    }
    memmove(&v->v[i + 1], &v->v[i], (v->n - i) * sizeof(ent));
    v->v[i].name = xstrdup(name);
    v->v[i].ino = ino;
    v->n++;
    return NULL;
}

/* Remove name; returns the inode it pointed to (or NULL). */
static inode *ent_del(entvec *v, const char *name)
{
    bool found;
    size_t i = ent_find(v, name, &found);
    if (!found) {
        return NULL;
    }
    inode *old = v->v[i].ino;
    free(v->v[i].name);
    memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(ent));
    v->n--;
    return old;
}

static void vol_set(nk_simdisk *d, inode *dir, const char *name, inode *ino)
{
    vol_ref(d, ino, +1, 0);
    inode *old = ent_set(&dir->vent, name, ino);
    if (old != NULL) {
        vol_ref(d, old, -1, 0);
    }
}

static void vol_del(nk_simdisk *d, inode *dir, const char *name)
{
    inode *old = ent_del(&dir->vent, name);
    if (old != NULL) {
        vol_ref(d, old, -1, 0);
    }
}

static void dur_set(nk_simdisk *d, inode *dir, const char *name, inode *ino)
{
    dur_ref(d, ino, +1);
    inode *old = ent_set(&dir->dent, name, ino);
    if (old != NULL) {
        dur_ref(d, old, -1);
    }
}

static void dur_del(nk_simdisk *d, inode *dir, const char *name)
{
    inode *old = ent_del(&dir->dent, name);
    if (old != NULL) {
        dur_ref(d, old, -1);
    }
}

/* ---------------------------------------------------------- dir ops --- */

/* Keep npend and ncross in step with the pending list (delta +1 or -1). */
static void dirop_count(nk_simdisk *d, const dirop *op, int delta)
{
    if (op->dfrom != NULL) {
        op->dfrom->npend += (uint32_t)delta;
    }
    if (op->dto != NULL && op->dto != op->dfrom) {
        op->dto->npend += (uint32_t)delta;
    }
    if (op->dfrom != NULL && op->dto != NULL && op->dfrom != op->dto) {
        d->ncross += (size_t)delta;
    }
}

static void dirop_push(nk_simdisk *d, int kind, inode *dfrom, const char *nfrom, inode *dto,
                       const char *nto, inode *ino)
{
    if (d->ndops == d->capdops) {
        d->capdops = d->capdops ? d->capdops * 2 : 16;
        d->dops = xrealloc(d->dops, d->capdops * sizeof(dirop));
    }
    dirop *op = &d->dops[d->ndops++];
    memset(op, 0, sizeof(*op));
    op->seq = d->next_seq++;
    op->kind = kind;
    op->dfrom = dfrom;
    op->dto = dto;
    op->nfrom = nfrom ? xstrdup(nfrom) : NULL;
    op->nto = nto ? xstrdup(nto) : NULL;
    op->ino = ino;
    /* The op keeps every inode it names alive until it is resolved. */
    ino->nrefop++;
    if (dfrom != NULL) {
        dfrom->nrefop++;
    }
    if (dto != NULL) {
        dto->nrefop++;
    }
    dirop_count(d, op, 1);
}

static void dirop_apply(nk_simdisk *d, const dirop *op)
{
    switch (op->kind) {
    case DIR_LINK:
        dur_set(d, op->dto, op->nto, op->ino);
        break;
    case DIR_UNLINK:
        dur_del(d, op->dfrom, op->nfrom);
        break;
    default: /* DIR_RENAME: link first so the inode never looks unreferenced */
        dur_set(d, op->dto, op->nto, op->ino);
        dur_del(d, op->dfrom, op->nfrom);
        break;
    }
}

static void dirop_release(nk_simdisk *d, dirop *op)
{
    dirop_count(d, op, -1);
    inode *ns[3] = {op->ino, op->dfrom, op->dto};
    for (int i = 0; i < 3; i++) {
        if (ns[i] != NULL) {
            ns[i]->nrefop--;
            if (unreferenced(ns[i])) {
                d->gc_needed = true;
            }
        }
    }
    free(op->nfrom);
    free(op->nto);
    op->nfrom = op->nto = NULL;
}

/* --------------------------------------------------------------- paths --- */

/*
 * Normalise `in` into "/a/b" form (root is "/"). NK_EINVAL for the empty
 * path, "." or "..", or an over-long component. Caller frees *out.
 */
static int norm_path(const char *in, char **out)
{
    if (in == NULL || in[0] == '\0') {
        return NK_EINVAL;
    }
    size_t n = strlen(in);
    char *p = xrealloc(NULL, n + 2);
    size_t w = 0;
    const char *s = in;
    while (*s != '\0') {
        while (*s == '/') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        const char *e = s;
        while (*e != '\0' && *e != '/') {
            e++;
        }
        size_t len = (size_t)(e - s);
        if (len > NK_SIMDISK_NAME_MAX || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.')) {
            free(p);
            return NK_EINVAL;
        }
        p[w++] = '/';
        memcpy(p + w, s, len);
        w += len;
        s = e;
    }
    if (w == 0) {
        p[w++] = '/';
    }
    p[w] = '\0';
    *out = p;
    return NK_OK;
}

/*
 * Walk the volatile tree to the directory holding the last component of the
 * normalised path np. *last points into np (the last name). For "/" returns
 * NK_OK with *parent = NULL.
 */
static int walk_parent(nk_simdisk *d, const char *np, inode **parent, const char **last)
{
    if (strcmp(np, "/") == 0) {
        *parent = NULL;
        *last = NULL;
        return NK_OK;
    }
    char comp[NK_SIMDISK_NAME_MAX + 1];
    inode *cur = d->root;
    const char *s = np + 1;
    for (;;) {
        const char *e = strchr(s, '/');
        if (e == NULL) {
            *parent = cur;
            *last = s;
            return NK_OK;
        }
        size_t len = (size_t)(e - s);
        memcpy(comp, s, len);
        comp[len] = '\0';
        inode *next = ent_get(&cur->vent, comp);
        if (next == NULL) {
            return NK_ENOENT;
        }
        if (!next->is_dir) {
            return NK_ENOTDIR;
        }
        cur = next;
        s = e + 1;
    }
}

/* Resolve a normalised path to its inode (volatile view). */
static int lookup(nk_simdisk *d, const char *np, inode **out)
{
    inode *parent;
    const char *last;
    int rc = walk_parent(d, np, &parent, &last);
    if (rc != NK_OK) {
        return rc;
    }
    if (parent == NULL) {
        *out = d->root;
        return NK_OK;
    }
    inode *n = ent_get(&parent->vent, last);
    if (n == NULL) {
        return NK_ENOENT;
    }
    *out = n;
    return NK_OK;
}

/* ------------------------------------------------------------ lifecycle --- */

nk_simdisk *nk_simdisk_new(uint32_t sector_size, const nk_rand *fault_rng)
{
    nk_simdisk *d = xcalloc(1, sizeof(*d));
    d->sector = sector_size ? sector_size : NK_SIMDISK_DEFAULT_SECTOR;
    d->scratch = xcalloc(1, d->sector);
    if (fault_rng != NULL) {
        d->rng = *fault_rng;
    } else {
        nk_rand_seed(&d->rng, 0);
    }
    d->next_id = 1;
    d->next_seq = 1;
    d->root = inode_new(d, true, "/");
    /* The root is always there, in both views. */
    d->root->nlink_vol = 1;
    d->root->nlink_dur = 1;
    return d;
}

void nk_simdisk_free(nk_simdisk *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->ndops; i++) {
        free(d->dops[i].nfrom);
        free(d->dops[i].nto);
    }
    free(d->dops);
    while (d->head != NULL) {
        inode_destroy(d, d->head);
    }
    while (d->files != NULL) {
        nk_simfile *f = d->files;
        d->files = f->next;
        free(f);
    }
    while (d->locks != NULL) {
        nk_simlock *l = d->locks;
        d->locks = l->next;
        free(l);
    }
    free(d->scratch);
    free(d);
}

void nk_simdisk_set_faults(nk_simdisk *d, const nk_simdisk_faults *f)
{
    if (f == NULL) {
        memset(&d->faults, 0, sizeof(d->faults));
    } else {
        d->faults = *f;
    }
}

void nk_simdisk_set_observer(nk_simdisk *d, nk_simdisk_observer_fn fn, void *ctx)
{
    d->obs = fn;
    d->obs_ctx = ctx;
}

void nk_simdisk_get_stats(const nk_simdisk *d, nk_simdisk_stats *out)
{
    *out = d->st;
    out->used_bytes = d->used;
    out->pending_ops = d->pending_data + d->ndops;
}

/* --------------------------------------------------------------- files --- */

static void file_link(nk_simdisk *d, nk_simfile *f)
{
    f->prev = NULL;
    f->next = d->files;
    if (d->files != NULL) {
        d->files->prev = f;
    }
    d->files = f;
}

static void file_unlink(nk_simdisk *d, nk_simfile *f)
{
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        d->files = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
}

static void dataop_push(nk_simdisk *d, inode *n, int kind, uint64_t off, const void *src,
                        uint64_t len)
{
    if (n->nops == n->capops) {
        n->capops = n->capops ? n->capops * 2 : 8;
        n->ops = xrealloc(n->ops, n->capops * sizeof(dataop));
    }
    dataop *op = &n->ops[n->nops++];
    op->kind = kind;
    op->off = off;
    op->len = len;
    op->data = NULL;
    if (kind == DATA_WRITE) {
        op->data = xrealloc(NULL, (size_t)len);
        memcpy(op->data, src, (size_t)len);
    }
    d->pending_data++;
}

int nk_simdisk_open(nk_simdisk *d, const char *path, unsigned flags, nk_simfile **out)
{
    if (d == NULL || out == NULL) {
        return NK_EINVAL;
    }
    *out = NULL;
    if ((flags & NK_OPEN_TRUNC) && !(flags & NK_OPEN_WRITE)) {
        return NK_EINVAL;
    }
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *parent;
    const char *last;
    rc = walk_parent(d, np, &parent, &last);
    if (rc != NK_OK) {
        goto done;
    }
    if (parent == NULL) {
        rc = NK_EISDIR;
        goto done;
    }
    inode *n = ent_get(&parent->vent, last);
    if (n != NULL) {
        if (n->is_dir) {
            rc = NK_EISDIR;
            goto done;
        }
        if ((flags & NK_OPEN_CREATE) && (flags & NK_OPEN_EXCL)) {
            rc = NK_EEXIST;
            goto done;
        }
    } else {
        if (!(flags & NK_OPEN_CREATE)) {
            rc = NK_ENOENT;
            goto done;
        }
        n = inode_new(d, false, np);
        dirop_push(d, DIR_LINK, NULL, NULL, parent, last, n);
        vol_set(d, parent, last, n);
    }
    /* O_TRUNC of an empty file changes nothing, so it adds no pending op. */
    if ((flags & NK_OPEN_TRUNC) && n->vol.size > 0) {
        uint64_t old = n->vol.size;
        bytes_resize(&n->vol, 0);
        vol_resize_acct(d, n, old);
        dataop_push(d, n, DATA_TRUNC, 0, NULL, 0);
    }
    nk_simfile *f = xcalloc(1, sizeof(*f));
    f->ino = n;
    f->flags = flags;
    vol_ref(d, n, 0, +1);
    file_link(d, f);
    *out = f;
done:
    free(np);
    return rc;
}

static int check_handle(nk_simdisk *d, nk_simfile *f)
{
    if (d == NULL || f == NULL) {
        return NK_EINVAL;
    }
    return f->ino == NULL ? NK_ECRASHED : NK_OK;
}

int nk_simdisk_read_at(nk_simdisk *d, nk_simfile *f, uint64_t off, void *buf, size_t len,
                       size_t *nread)
{
    int rc = check_handle(d, f);
    if (nread != NULL) {
        *nread = 0;
    }
    if (rc != NK_OK) {
        return rc;
    }
    if (buf == NULL && len > 0) {
        return NK_EINVAL;
    }
    inode *n = f->ino;
    size_t got = 0;
    if (off < n->vol.size) {
        uint64_t avail = n->vol.size - off;
        got = avail < len ? (size_t)avail : len;
        memcpy(buf, n->vol.p + off, got);
    }
    d->st.reads++;
    if (got > 0 && roll(&d->rng, d->faults.read_corrupt)) {
        /* Corrupt only the caller's copy: the medium is fine, the transfer
         * was not, so a checksum must catch it and a re-read may succeed. */
        uint64_t bit = nk_rand_below(&d->rng, (uint64_t)got * 8);
        ((uint8_t *)buf)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        d->st.read_corruptions++;
        emit(d, "read.corrupt", n->path, off + bit / 8, bit % 8);
    }
    if (nread != NULL) {
        *nread = got;
    }
    return NK_OK;
}

int nk_simdisk_write_at(nk_simdisk *d, nk_simfile *f, uint64_t off, const void *buf, size_t len)
{
    int rc = check_handle(d, f);
    if (rc != NK_OK) {
        return rc;
    }
    if (!(f->flags & NK_OPEN_WRITE) || (buf == NULL && len > 0)) {
        return NK_EINVAL;
    }
    if (len == 0) {
        return NK_OK;
    }
    if (off > NK_SIMDISK_FILE_MAX || len > NK_SIMDISK_FILE_MAX - off) {
        return NK_ETOOBIG;
    }
    inode *n = f->ino;
    uint64_t end = off + len;
    uint64_t grow = end > n->vol.size ? end - n->vol.size : 0;
    if (d->faults.capacity > 0 && grow > 0 && is_live(n) && d->used + grow > d->faults.capacity) {
        d->st.enospc++;
        emit(d, "enospc", n->path, grow, d->used);
        return NK_ENOSPC;
    }
    uint64_t old = n->vol.size;
    bytes_write(&n->vol, off, buf, len);
    vol_resize_acct(d, n, old);
    dataop_push(d, n, DATA_WRITE, off, buf, len);
    d->st.writes++;
    d->st.bytes_written += len;
    return NK_OK;
}

int nk_simdisk_append(nk_simdisk *d, nk_simfile *f, const void *buf, size_t len)
{
    int rc = check_handle(d, f);
    if (rc != NK_OK) {
        return rc;
    }
    return nk_simdisk_write_at(d, f, f->ino->vol.size, buf, len);
}

static void dataop_apply(bytes *b, const dataop *op)
{
    if (op->kind == DATA_WRITE) {
        bytes_write(b, op->off, op->data, op->len);
    } else {
        bytes_resize(b, op->off);
    }
}

int nk_simdisk_file_sync(nk_simdisk *d, nk_simfile *f)
{
    int rc = check_handle(d, f);
    if (rc != NK_OK) {
        return rc;
    }
    inode *n = f->ino;
    if (roll(&d->rng, d->faults.sync_fail)) {
        d->st.sync_failures++;
        bool drop = nk_rand_chance(&d->rng, 1, 2);
        if (drop) {
            /* The kernel may have thrown the dirty pages away: the unsynced
             * data is gone from the cache as well as from the disk. */
            uint64_t old = n->vol.size;
            bytes_copy(&n->vol, &n->dur);
            vol_resize_acct(d, n, old);
            dataops_clear(d, n);
        }
        emit(d, "sync.fail", n->path, drop ? 1 : 0, 0);
        return NK_EIO;
    }
    uint64_t nbytes = 0;
    size_t nops = n->nops;
    for (size_t i = 0; i < n->nops; i++) {
        dataop_apply(&n->dur, &n->ops[i]);
        nbytes += n->ops[i].len;
    }
    dataops_clear(d, n);
    d->st.syncs++;
    emit(d, "sync", n->path, nbytes, nops);
    return NK_OK;
}

int nk_simdisk_file_size(nk_simdisk *d, nk_simfile *f, uint64_t *size)
{
    int rc = check_handle(d, f);
    if (rc != NK_OK) {
        return rc;
    }
    if (size == NULL) {
        return NK_EINVAL;
    }
    *size = f->ino->vol.size;
    return NK_OK;
}

int nk_simdisk_truncate(nk_simdisk *d, nk_simfile *f, uint64_t size)
{
    int rc = check_handle(d, f);
    if (rc != NK_OK) {
        return rc;
    }
    if (!(f->flags & NK_OPEN_WRITE)) {
        return NK_EINVAL;
    }
    if (size > NK_SIMDISK_FILE_MAX) {
        return NK_ETOOBIG;
    }
    inode *n = f->ino;
    uint64_t old = n->vol.size;
    bytes_resize(&n->vol, size);
    vol_resize_acct(d, n, old);
    dataop_push(d, n, DATA_TRUNC, size, NULL, 0);
    return NK_OK;
}

int nk_simdisk_close(nk_simdisk *d, nk_simfile *f)
{
    if (d == NULL || f == NULL) {
        return NK_EINVAL;
    }
    int rc = NK_OK;
    if (f->ino == NULL) {
        rc = NK_ECRASHED;
    } else {
        vol_ref(d, f->ino, 0, -1);
    }
    file_unlink(d, f);
    free(f);
    collect(d);
    return rc;
}

/* ---------------------------------------------------------- namespace --- */

int nk_simdisk_stat(nk_simdisk *d, const char *path, nk_stat *st)
{
    if (d == NULL || st == NULL) {
        return NK_EINVAL;
    }
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *n;
    rc = lookup(d, np, &n);
    free(np);
    if (rc != NK_OK) {
        return rc;
    }
    st->is_dir = n->is_dir;
    st->size = n->is_dir ? 0 : n->vol.size;
    return NK_OK;
}

int nk_simdisk_dir_create(nk_simdisk *d, const char *path)
{
    if (d == NULL) {
        return NK_EINVAL;
    }
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *parent;
    const char *last;
    rc = walk_parent(d, np, &parent, &last);
    if (rc == NK_OK) {
        if (parent == NULL || ent_get(&parent->vent, last) != NULL) {
            rc = NK_EEXIST;
        } else {
            inode *n = inode_new(d, true, np);
            dirop_push(d, DIR_LINK, NULL, NULL, parent, last, n);
            vol_set(d, parent, last, n);
        }
    }
    free(np);
    return rc;
}

int nk_simdisk_dir_list(nk_simdisk *d, const char *path, nk_names *out)
{
    if (d == NULL || out == NULL) {
        return NK_EINVAL;
    }
    out->names = NULL;
    out->count = 0;
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *n;
    rc = lookup(d, np, &n);
    free(np);
    if (rc != NK_OK) {
        return rc;
    }
    if (!n->is_dir) {
        return NK_ENOTDIR;
    }
    if (n->vent.n > 0) {
        out->names = xcalloc(n->vent.n, sizeof(char *));
        for (size_t i = 0; i < n->vent.n; i++) {
            out->names[i] = xstrdup(n->vent.v[i].name); /* already sorted */
        }
        out->count = n->vent.n;
    }
    return NK_OK;
}

int nk_simdisk_rename(nk_simdisk *d, const char *from, const char *to)
{
    if (d == NULL) {
        return NK_EINVAL;
    }
    char *nf = NULL, *nt = NULL;
    int rc = norm_path(from, &nf);
    if (rc != NK_OK) {
        return rc;
    }
    rc = norm_path(to, &nt);
    if (rc != NK_OK) {
        free(nf);
        return rc;
    }
    inode *fdir, *tdir;
    const char *fname, *tname;
    rc = walk_parent(d, nf, &fdir, &fname);
    if (rc != NK_OK) {
        goto done;
    }
    if (fdir == NULL) {
        rc = NK_ENOTSUP; /* "/" is a directory */
        goto done;
    }
    inode *src = ent_get(&fdir->vent, fname);
    if (src == NULL) {
        rc = NK_ENOENT;
        goto done;
    }
    if (src->is_dir) {
        rc = NK_ENOTSUP; /* directory renames are not modelled */
        goto done;
    }
    rc = walk_parent(d, nt, &tdir, &tname);
    if (rc != NK_OK) {
        goto done;
    }
    if (tdir == NULL) {
        rc = NK_EISDIR;
        goto done;
    }
    inode *dst = ent_get(&tdir->vent, tname);
    if (dst != NULL && dst->is_dir) {
        rc = NK_EISDIR;
        goto done;
    }
    if (dst == src) {
        goto done; /* same file: POSIX says do nothing */
    }
    dirop_push(d, DIR_RENAME, fdir, fname, tdir, tname, src);
    vol_set(d, tdir, tname, src);
    vol_del(d, fdir, fname);
    set_path(src, nt);
done:
    free(nf);
    free(nt);
    collect(d);
    return rc;
}

int nk_simdisk_remove(nk_simdisk *d, const char *path)
{
    if (d == NULL) {
        return NK_EINVAL;
    }
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *parent;
    const char *last;
    rc = walk_parent(d, np, &parent, &last);
    if (rc == NK_OK) {
        inode *n = parent == NULL ? d->root : ent_get(&parent->vent, last);
        if (n == NULL) {
            rc = NK_ENOENT;
        } else if (n == d->root) {
            rc = NK_EBUSY;
        } else if (n->is_dir && n->vent.n > 0) {
            rc = NK_ENOTEMPTY;
        } else {
            dirop_push(d, DIR_UNLINK, parent, last, NULL, NULL, n);
            vol_del(d, parent, last);
        }
    }
    free(np);
    collect(d);
    return rc;
}

int nk_simdisk_link(nk_simdisk *d, const char *from, const char *to)
{
    if (d == NULL) {
        return NK_EINVAL;
    }
    char *nf = NULL, *nt = NULL;
    int rc = norm_path(from, &nf);
    if (rc != NK_OK) {
        return rc;
    }
    rc = norm_path(to, &nt);
    if (rc != NK_OK) {
        free(nf);
        return rc;
    }
    inode *src = NULL, *tdir;
    const char *tname;
    rc = lookup(d, nf, &src);
    if (rc == NK_OK && src->is_dir) {
        rc = NK_EISDIR; /* no hard links to directories, as on Linux */
    }
    if (rc == NK_OK) {
        rc = walk_parent(d, nt, &tdir, &tname);
    }
    if (rc == NK_OK && (tdir == NULL || ent_get(&tdir->vent, tname) != NULL)) {
        rc = NK_EEXIST;
    }
    if (rc == NK_OK) {
        dirop_push(d, DIR_LINK, NULL, NULL, tdir, tname, src);
        vol_set(d, tdir, tname, src);
    }
    free(nf);
    free(nt);
    return rc;
}

int nk_simdisk_dir_lock_held(nk_simdisk *d, const char *dir, bool *held)
{
    if (d == NULL || held == NULL) {
        return NK_EINVAL;
    }
    *held = false;
    char *np = NULL;
    int rc = norm_path(dir, &np);
    inode *n = NULL;
    if (rc == NK_OK) {
        rc = lookup(d, np, &n);
    }
    free(np);
    if (rc == NK_OK && !n->is_dir) {
        rc = NK_ENOTDIR;
    }
    if (rc == NK_OK) {
        *held = n->locked;
    }
    return rc;
}

int nk_simdisk_fs_avail(nk_simdisk *d, const char *path, uint64_t *avail)
{
    if (d == NULL || avail == NULL) {
        return NK_EINVAL;
    }
    char *np = NULL;
    int rc = norm_path(path, &np);
    inode *n = NULL;
    if (rc == NK_OK) {
        rc = lookup(d, np, &n);
    }
    free(np);
    if (rc != NK_OK) {
        return rc;
    }
    if (d->faults.capacity == 0) {
        *avail = UINT64_MAX;
    } else {
        *avail = d->used >= d->faults.capacity ? 0 : d->faults.capacity - d->used;
    }
    return NK_OK;
}

int nk_simdisk_dir_sync(nk_simdisk *d, const char *path)
{
    if (d == NULL) {
        return NK_EINVAL;
    }
    char *np;
    int rc = norm_path(path, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *dir;
    rc = lookup(d, np, &dir);
    if (rc == NK_OK && !dir->is_dir) {
        rc = NK_ENOTDIR;
    }
    if (rc != NK_OK) {
        free(np);
        return rc;
    }
    if (roll(&d->rng, d->faults.dir_sync_fail)) {
        d->st.dir_sync_failures++;
        emit(d, "dir_sync.fail", np, 0, 0);
        free(np);
        return NK_EIO;
    }
    uint64_t applied = 0;
    if (d->ncross == 0) {
        /* No op ties two directories together: the closure below is just
         * the ops naming `dir`, applied in issue order, and there are
         * dir->npend of them. Ops of directories nobody syncs (removals
         * the engine never needs durable) pile up by the thousand, so this
         * path looks only at the tail that holds ours. Same result. */
        size_t want = dir->npend, lo = d->ndops;
        /* Its ops are mostly the newest: find the oldest from the end. */
        for (size_t seen = 0; lo > 0 && seen < want;) {
            lo--;
            seen += d->dops[lo].dfrom == dir || d->dops[lo].dto == dir;
        }
        size_t w = lo, i = lo;
        for (; i < d->ndops && want > 0; i++) {
            dirop *op = &d->dops[i];
            if (op->dfrom == dir || op->dto == dir) {
                dirop_apply(d, op);
                dirop_release(d, op);
                applied++;
                want--;
            } else {
                if (w != i) {
                    d->dops[w] = *op;
                }
                w++;
            }
        }
        if (w != i) {
            memmove(&d->dops[w], &d->dops[i], (d->ndops - i) * sizeof(dirop));
        }
        d->ndops = w + (d->ndops - i);
        goto done;
    }
    /*
     * Make durable every op touching `dir`, and, transitively, every earlier
     * op of any directory such an op touches (a cross-directory rename ties
     * the two directories' histories together). One backwards pass suffices:
     * an op is needed iff a directory it touches must be flushed up to at
     * least its sequence number, and needs only flow to earlier ops.
     */
    dir->bound = UINT64_MAX;
    for (size_t i = d->ndops; i-- > 0;) {
        dirop *op = &d->dops[i];
        inode *ds[2] = {op->dfrom, op->dto};
        op->incl = false;
        for (int k = 0; k < 2; k++) {
            if (ds[k] != NULL && ds[k]->bound >= op->seq) {
                op->incl = true;
            }
        }
        if (op->incl) {
            for (int k = 0; k < 2; k++) {
                if (ds[k] != NULL && ds[k]->bound < op->seq) {
                    ds[k]->bound = op->seq;
                }
            }
        }
    }
    dir->bound = 0;
    size_t w = 0;
    for (size_t i = 0; i < d->ndops; i++) {
        dirop *op = &d->dops[i];
        if (op->dfrom != NULL) {
            op->dfrom->bound = 0;
        }
        if (op->dto != NULL) {
            op->dto->bound = 0;
        }
        if (op->incl) {
            dirop_apply(d, op);
            dirop_release(d, op);
            applied++;
        } else {
            d->dops[w++] = *op;
        }
    }
    d->ndops = w;
done:
    d->st.dir_syncs++;
    emit(d, "dir_sync", np, applied, 0);
    free(np);
    collect(d);
    return NK_OK;
}

/* --------------------------------------------------------------- locks --- */

int nk_simdisk_dir_lock(nk_simdisk *d, const char *dir, nk_simlock **out)
{
    if (d == NULL || out == NULL) {
        return NK_EINVAL;
    }
    *out = NULL;
    char *np;
    int rc = norm_path(dir, &np);
    if (rc != NK_OK) {
        return rc;
    }
    inode *n;
    rc = lookup(d, np, &n);
    if (rc == NK_OK && !n->is_dir) {
        rc = NK_ENOTDIR;
    }
    if (rc == NK_OK && n->locked) {
        rc = NK_EBUSY;
    }
    if (rc == NK_OK) {
        inode *lf = ent_get(&n->vent, "LOCK");
        if (lf != NULL && lf->is_dir) {
            rc = NK_EISDIR;
        } else if (lf == NULL) {
            /* The real backend creates <dir>/LOCK; so do we, as an ordinary
             * (pending) directory entry, so listings agree. */
            size_t plen = strlen(np);
            char *lp = xrealloc(NULL, plen + 6);
            snprintf(lp, plen + 6, "%s%sLOCK", np, plen > 1 ? "/" : "");
            lf = inode_new(d, false, lp);
            free(lp);
            dirop_push(d, DIR_LINK, NULL, NULL, n, "LOCK", lf);
            vol_set(d, n, "LOCK", lf);
        }
    }
    if (rc == NK_OK) {
        nk_simlock *l = xcalloc(1, sizeof(*l));
        l->dir = n;
        n->locked = true;
        vol_ref(d, n, 0, +1);
        l->next = d->locks;
        if (d->locks != NULL) {
            d->locks->prev = l;
        }
        d->locks = l;
        *out = l;
    }
    free(np);
    return rc;
}

void nk_simdisk_dir_unlock(nk_simdisk *d, nk_simlock *l)
{
    if (d == NULL || l == NULL) {
        return;
    }
    if (l->dir != NULL) {
        l->dir->locked = false;
        vol_ref(d, l->dir, 0, -1);
    }
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        d->locks = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    free(l);
    collect(d);
}

/* --------------------------------------------------------------- crash --- */

static void crash_write(nk_simdisk *d, nk_rand *r, const nk_simdisk_crash_policy *p, inode *n,
                        const dataop *op, nk_simdisk_crash_stats *cs)
{
    if (roll(r, p->write_apply)) {
        bytes_write(&n->dur, op->off, op->data, op->len);
        cs->writes_applied++;
        emit(d, "crash.write.applied", n->path, op->off, op->len);
        return;
    }
    if (!roll(r, p->write_torn)) {
        cs->writes_dropped++;
        emit(d, "crash.write.dropped", n->path, op->off, op->len);
        return;
    }
    /* Torn: each sector the write covers landed or not on its own. Pieces
     * are clipped to the write's own bytes, so bytes outside it never change
     * (the device is assumed to write whole sectors from the cache's copy). */
    uint64_t ss = d->sector;
    uint64_t end = op->off + op->len;
    for (uint64_t s = op->off / ss; s * ss < end; s++) {
        uint64_t lo = s * ss > op->off ? s * ss : op->off;
        uint64_t hi = (s + 1) * ss < end ? (s + 1) * ss : end;
        if (roll(r, p->sector_apply)) {
            bytes_write(&n->dur, lo, op->data + (lo - op->off), hi - lo);
        } else if (roll(r, p->sector_garbage)) {
            nk_rand_bytes(r, d->scratch, hi - lo);
            bytes_write(&n->dur, lo, d->scratch, hi - lo);
            cs->sectors_garbage++;
        }
    }
    cs->writes_torn++;
    emit(d, "crash.write.torn", n->path, op->off, op->len);
}

/* "dir/name" of the entry an op creates (LINK, RENAME) or removes (UNLINK). */
static char *dirop_target(const dirop *op)
{
    const inode *dir = op->kind == DIR_UNLINK ? op->dfrom : op->dto;
    const char *name = op->kind == DIR_UNLINK ? op->nfrom : op->nto;
    size_t n = strlen(dir->path) + 1 + strlen(name) + 1;
    char *p = xrealloc(NULL, n);
    snprintf(p, n, "%s%s%s", dir->path, strcmp(dir->path, "/") == 0 ? "" : "/", name);
    return p;
}

static void mark_durable(inode *n)
{
    n->mark = true;
    for (size_t i = 0; i < n->dent.n; i++) {
        inode *c = n->dent.v[i].ino;
        c->nlink_dur++;
        if (!c->mark) {
            mark_durable(c);
        }
    }
}

/* Invalidate every handle and release every lock (crash or process death). */
static uint64_t drop_handles(nk_simdisk *d)
{
    uint64_t count = 0;
    for (nk_simfile *f = d->files; f != NULL; f = f->next) {
        if (f->ino != NULL) {
            vol_ref(d, f->ino, 0, -1);
            f->ino = NULL;
            count++;
        }
    }
    for (nk_simlock *l = d->locks; l != NULL; l = l->next) {
        if (l->dir != NULL) {
            l->dir->locked = false;
            vol_ref(d, l->dir, 0, -1);
            l->dir = NULL;
            count++;
        }
    }
    return count;
}

void nk_simdisk_crash(nk_simdisk *d, nk_rand *r, const nk_simdisk_crash_policy *p,
                      nk_simdisk_crash_stats *stats)
{
    nk_simdisk_crash_stats cs;
    memset(&cs, 0, sizeof(cs));
    if (p == NULL) {
        p = &nk_simdisk_crash_chaos;
    }

    /* 1. File data, files in creation order, ops in issue order. */
    for (inode *n = d->head; n != NULL; n = n->next) {
        for (size_t i = 0; i < n->nops; i++) {
            const dataop *op = &n->ops[i];
            if (op->kind == DATA_WRITE) {
                crash_write(d, r, p, n, op, &cs);
            } else if (roll(r, p->trunc_apply)) {
                bytes_resize(&n->dur, op->off);
                cs.truncs_applied++;
                emit(d, "crash.trunc.applied", n->path, op->off, 0);
            } else {
                cs.truncs_dropped++;
                emit(d, "crash.trunc.dropped", n->path, op->off, 0);
            }
        }
        dataops_clear(d, n);
    }

    /* 2. Directory ops in issue order. Dropping one closes every directory
     * it touches: later ops there depended on it, so they are dropped too. */
    for (size_t i = 0; i < d->ndops; i++) {
        dirop *op = &d->dops[i];
        bool blocked =
            (op->dfrom != NULL && op->dfrom->closed) || (op->dto != NULL && op->dto->closed);
        char *target = dirop_target(op);
        if (!blocked && roll(r, p->dirop_apply)) {
            dirop_apply(d, op);
            cs.dirops_applied++;
            emit(d, "crash.dirop.applied", target, op->seq, (uint64_t)op->kind);
        } else {
            if (op->dfrom != NULL) {
                op->dfrom->closed = true;
            }
            if (op->dto != NULL) {
                op->dto->closed = true;
            }
            cs.dirops_dropped++;
            emit(d, "crash.dirop.dropped", target, op->seq, (uint64_t)op->kind);
        }
        free(target);
    }
    for (size_t i = 0; i < d->ndops; i++) {
        dirop_count(d, &d->dops[i], -1);
        free(d->dops[i].nfrom);
        free(d->dops[i].nto);
    }
    d->ndops = 0;

    /* 3. Power is back: handles and locks are stale. */
    cs.handles_invalidated = drop_handles(d);

    /* 4. Keep what the durable tree reaches; the volatile view restarts
     * from it; reference counts are recomputed from scratch. */
    for (inode *n = d->head; n != NULL; n = n->next) {
        n->mark = false;
        n->closed = false;
        n->nlink_dur = 0;
    }
    mark_durable(d->root);
    d->root->nlink_dur = 1;
    d->used = 0;
    inode *n = d->head;
    while (n != NULL) {
        inode *next = n->next;
        if (!n->mark) {
            inode_destroy(d, n);
        } else {
            n->nlink_vol = n->nlink_dur;
            n->nopen = 0;
            n->nrefop = 0;
            n->locked = false;
            if (n->is_dir) {
                entvec_free_names(&n->vent);
                for (size_t i = 0; i < n->dent.n; i++) {
                    ent_set(&n->vent, n->dent.v[i].name, n->dent.v[i].ino);
                }
            } else {
                bytes_copy(&n->vol, &n->dur);
                d->used += n->vol.size;
            }
        }
        n = next;
    }
    d->gc_needed = false;
    d->st.crashes++;
    emit(d, "crash", "/",
         cs.writes_applied + cs.writes_dropped + cs.writes_torn + cs.truncs_applied +
             cs.truncs_dropped + cs.dirops_applied + cs.dirops_dropped,
         cs.handles_invalidated);
    if (stats != NULL) {
        *stats = cs;
    }
}

void nk_simdisk_kill(nk_simdisk *d)
{
    drop_handles(d);
    collect(d);
}

void nk_simdisk_reap_stale(nk_simdisk *d)
{
    nk_simfile *f = d->files;
    while (f != NULL) {
        nk_simfile *next = f->next;
        if (f->ino == NULL) {
            file_unlink(d, f);
            free(f);
        }
        f = next;
    }
    nk_simlock *l = d->locks;
    while (l != NULL) {
        nk_simlock *next = l->next;
        if (l->dir == NULL) {
            if (l->prev != NULL) {
                l->prev->next = l->next;
            } else {
                d->locks = l->next;
            }
            if (l->next != NULL) {
                l->next->prev = l->prev;
            }
            free(l);
        }
        l = next;
    }
}

/* ---------------------------------------------------------------- hash --- */

static void hash_dir(XXH3_state_t *h, const inode *dir, char **path, size_t *cap, size_t plen)
{
    for (size_t i = 0; i < dir->dent.n; i++) {
        const ent *e = &dir->dent.v[i];
        size_t nlen = strlen(e->name);
        size_t need = plen + 1 + nlen + 1;
        if (need > *cap) {
            *cap = need * 2;
            *path = xrealloc(*path, *cap);
        }
        (*path)[plen] = '/';
        memcpy(*path + plen + 1, e->name, nlen + 1);
        size_t len = plen + 1 + nlen;
        /* path, NUL, type, size, content: unambiguous framing */
        XXH3_64bits_update(h, *path, len + 1);
        uint8_t hdr[9];
        hdr[0] = e->ino->is_dir ? 'd' : 'f';
        nk_put_u64(hdr + 1, e->ino->is_dir ? 0 : e->ino->dur.size);
        XXH3_64bits_update(h, hdr, sizeof(hdr));
        if (e->ino->is_dir) {
            hash_dir(h, e->ino, path, cap, len);
        } else if (e->ino->dur.size > 0) {
            XXH3_64bits_update(h, e->ino->dur.p, (size_t)e->ino->dur.size);
        }
    }
}

uint64_t nk_simdisk_hash(const nk_simdisk *d)
{
    XXH3_state_t *h = XXH3_createState();
    if (h == NULL) {
        fprintf(stderr, "sim/disk: out of memory\n");
        abort();
    }
    XXH3_64bits_reset(h);
    size_t cap = 256;
    char *path = xrealloc(NULL, cap);
    path[0] = '\0';
    hash_dir(h, d->root, &path, &cap, 0);
    uint64_t v = XXH3_64bits_digest(h);
    free(path);
    XXH3_freeState(h);
    return v;
}
