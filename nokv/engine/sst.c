/* sst.c - table builder, reader, point reads and two-level iterators. */
#include "nokv/engine/sst.h"

#include <stdlib.h>

#include <xxhash.h>

#include "nokv/engine/block.h"
#include "nokv/engine/bloom.h"
#include "nokv/engine/ikey.h"
#include "nokv/util/coding.h"

/* Output is buffered and written in chunks of at least this size. */
#define WRITE_CHUNK (64u * 1024u)

static const char P_DATA_BLOCKS[] = "nokv.data_blocks";
static const char P_DELETES[] = "nokv.deletes";
static const char P_ENTRIES[] = "nokv.entries";
static const char P_LARGEST[] = "nokv.largest";
static const char P_MAX_SEQ[] = "nokv.max_seq";
static const char P_MIN_SEQ[] = "nokv.min_seq";
static const char P_RAW_KEY[] = "nokv.raw_key_bytes";
static const char P_RAW_VALUE[] = "nokv.raw_value_bytes";
static const char P_SMALLEST[] = "nokv.smallest";

void nk_sst_options_default(nk_sst_options *o)
{
    o->block_size = 4096;
    o->restart_interval = NK_BLOCK_DEFAULT_RESTART_INTERVAL;
    o->bloom_bits_per_key = NK_BLOOM_DEFAULT_BITS_PER_KEY;
    o->compression = NK_COMP_LZ4;
}

void nk_sst_props_free(nk_sst_props *p)
{
    nk_buf_free(&p->smallest);
    nk_buf_free(&p->largest);
}

static int props_copy(nk_sst_props *dst, const nk_sst_props *src)
{
    *dst = *src;
    dst->smallest = (nk_buf){0};
    dst->largest = (nk_buf){0};
    int rc = nk_buf_assign(&dst->smallest, src->smallest.data, src->smallest.len);
    if (rc == NK_OK) {
        rc = nk_buf_assign(&dst->largest, src->largest.data, src->largest.len);
    }
    if (rc != NK_OK) {
        nk_sst_props_free(dst);
    }
    return rc;
}

/* ============================================================ builder === */

struct nk_sst_builder {
    nk_rt *rt;
    nk_file *f;
    nk_sst_options o;
    nk_block_builder data;
    nk_block_builder index;
    nk_bloom_builder bloom;
    nk_buf out;          /* framed bytes not yet written */
    uint64_t written;    /* bytes already in the file */
    nk_buf last_key;     /* last internal key added */
    nk_buf handle_tmp;
    nk_sst_props props;
    /* XXH64 of every byte handed to the file, in file order: the table's
     * whole-file checksum comes for free as it is written, so nobody has to
     * read the file back to learn it (the manifest records it). */
    XXH64_state_t *hash;
    uint64_t file_hash; /* the digest, set by finish */
    int err;             /* sticky failure */
    bool finished;
};

int nk_sst_builder_new(nk_rt *rt, nk_file *f, const nk_sst_options *o, nk_sst_builder **out)
{
    nk_sst_builder *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NK_ENOMEM;
    }
    b->rt = rt;
    b->f = f;
    if (o != NULL) {
        b->o = *o;
    } else {
        nk_sst_options_default(&b->o);
    }
    if (b->o.block_size == 0) {
        b->o.block_size = 4096;
    }
    nk_block_builder_init(&b->data, b->o.restart_interval);
    nk_block_builder_init(&b->index, 1);
    nk_bloom_builder_init(&b->bloom, b->o.bloom_bits_per_key);
    b->hash = XXH64_createState();
    if (b->hash == NULL) {
        nk_block_builder_free(&b->data);
        nk_block_builder_free(&b->index);
        nk_bloom_builder_free(&b->bloom);
        free(b);
        return NK_ENOMEM;
    }
    XXH64_reset(b->hash, 0);
    *out = b;
    return NK_OK;
}

void nk_sst_builder_free(nk_sst_builder *b)
{
    if (b == NULL) {
        return;
    }
    nk_block_builder_free(&b->data);
    nk_block_builder_free(&b->index);
    nk_bloom_builder_free(&b->bloom);
    nk_buf_free(&b->out);
    nk_buf_free(&b->last_key);
    nk_buf_free(&b->handle_tmp);
    nk_sst_props_free(&b->props);
    XXH64_freeState(b->hash);
    free(b);
}

static int flush_out(nk_sst_builder *b)
{
    if (b->out.len == 0) {
        return NK_OK;
    }
    int rc = nk_rt_file_write_at(b->rt, b->f, b->written, b->out.data, b->out.len);
    if (rc != NK_OK) {
        return rc;
    }
    /* Writes are sequential and never rewritten, so hashing each chunk once
     * it is in the file covers the file's bytes exactly. */
    XXH64_update(b->hash, b->out.data, b->out.len);
    b->written += b->out.len;
    nk_buf_clear(&b->out);
    return NK_OK;
}

/* Frame raw bytes into the output; *h gets where they land. */
static int emit_block(nk_sst_builder *b, nk_slice raw, nk_compression comp, nk_block_handle *h)
{
    size_t framed;
    h->off = b->written + b->out.len;
    int rc = nk_blockfmt_encode(raw.data, raw.len, comp, &b->out, &framed);
    if (rc != NK_OK) {
        return rc;
    }
    h->size = framed;
    if (b->out.len >= WRITE_CHUNK) {
        return flush_out(b);
    }
    return NK_OK;
}

static int flush_data_block(nk_sst_builder *b)
{
    if (nk_block_count(&b->data) == 0) {
        return NK_OK;
    }
    nk_slice raw;
    nk_block_handle h;
    int rc = nk_block_finish(&b->data, &raw);
    if (rc == NK_OK) {
        rc = emit_block(b, raw, b->o.compression, &h);
    }
    if (rc == NK_OK) {
        nk_buf_clear(&b->handle_tmp);
        rc = nk_block_handle_append(&b->handle_tmp, h);
    }
    if (rc == NK_OK) {
        /* The block's last key separates it from the next block. */
        rc = nk_block_add(&b->index, b->last_key.data, b->last_key.len, b->handle_tmp.data,
                          b->handle_tmp.len);
    }
    if (rc == NK_OK) {
        nk_block_reset(&b->data);
        b->props.data_blocks++;
    }
    return rc;
}

int nk_sst_builder_add(nk_sst_builder *b, const uint8_t *ikey, size_t klen, const uint8_t *val,
                       size_t vlen)
{
    if (b->err != NK_OK) {
        return b->err;
    }
    if (b->finished) {
        return NK_EINVAL;
    }
    nk_ikey ik;
    if (nk_ikey_parse(ikey, klen, &ik) != NK_OK) {
        return NK_EINVAL;
    }
    bool first = b->props.entries == 0;
    if (!first && nk_ikey_cmp(b->last_key.data, b->last_key.len, ikey, klen) >= 0) {
        return NK_EINVAL;
    }
    int rc = NK_OK;
    /* One bloom entry per user key, not per version. */
    if (first || nk_bytes_cmp(nk_ikey_user(b->last_key.data, b->last_key.len).data,
                              b->last_key.len - NK_IKEY_TRAILER, ik.ukey.data,
                              ik.ukey.len) != 0) {
        rc = nk_bloom_add(&b->bloom, ik.ukey.data, ik.ukey.len);
    }
    if (rc == NK_OK) {
        rc = nk_block_add(&b->data, ikey, klen, val, vlen);
    }
    if (rc == NK_OK) {
        rc = nk_buf_assign(&b->last_key, ikey, klen);
    }
    if (rc == NK_OK && first) {
        rc = nk_buf_assign(&b->props.smallest, ikey, klen);
    }
    if (rc != NK_OK) {
        b->err = rc;
        return rc;
    }
    nk_sst_props *p = &b->props;
    p->entries++;
    p->deletes += ik.type == NK_KT_DELETE;
    p->raw_key_bytes += klen;
    p->raw_value_bytes += vlen;
    if (first || ik.seq < p->min_seq) {
        p->min_seq = ik.seq;
    }
    if (first || ik.seq > p->max_seq) {
        p->max_seq = ik.seq;
    }
    if (nk_block_size_estimate(&b->data) >= b->o.block_size) {
        rc = flush_data_block(b);
        if (rc != NK_OK) {
            b->err = rc;
        }
    }
    return rc;
}

uint64_t nk_sst_builder_size(const nk_sst_builder *b)
{
    return b->written + b->out.len + nk_block_size_estimate(&b->data) +
           nk_block_size_estimate(&b->index) + NK_SST_FOOTER_SIZE;
}

uint64_t nk_sst_builder_entries(const nk_sst_builder *b)
{
    return b->props.entries;
}

static int prop_u64(nk_block_builder *pb, const char *name, uint64_t v)
{
    uint8_t tmp[NK_VARINT64_MAX];
    size_t n = nk_put_varint64(tmp, v);
    return nk_block_add(pb, (const uint8_t *)name, strlen(name), tmp, n);
}

static int write_props(nk_sst_builder *b, nk_block_handle *h)
{
    const nk_sst_props *p = &b->props;
    nk_block_builder pb;
    nk_block_builder_init(&pb, 1);
    /* Names in bytewise order (a block's keys must be sorted). */
    int rc = prop_u64(&pb, P_DATA_BLOCKS, p->data_blocks);
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_DELETES, p->deletes);
    }
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_ENTRIES, p->entries);
    }
    if (rc == NK_OK) {
        rc = nk_block_add(&pb, (const uint8_t *)P_LARGEST, strlen(P_LARGEST), b->last_key.data,
                          b->last_key.len);
    }
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_MAX_SEQ, p->max_seq);
    }
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_MIN_SEQ, p->min_seq);
    }
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_RAW_KEY, p->raw_key_bytes);
    }
    if (rc == NK_OK) {
        rc = prop_u64(&pb, P_RAW_VALUE, p->raw_value_bytes);
    }
    if (rc == NK_OK) {
        rc = nk_block_add(&pb, (const uint8_t *)P_SMALLEST, strlen(P_SMALLEST),
                          p->smallest.data, p->smallest.len);
    }
    nk_slice raw;
    if (rc == NK_OK) {
        rc = nk_block_finish(&pb, &raw);
    }
    if (rc == NK_OK) {
        rc = emit_block(b, raw, NK_COMP_NONE, h);
    }
    nk_block_builder_free(&pb);
    return rc;
}

static void put_handle(uint8_t *p, nk_block_handle h)
{
    nk_put_u64(p, h.off);
    nk_put_u64(p + 8, h.size);
}

static int finish(nk_sst_builder *b, uint64_t *file_size)
{
    int rc = flush_data_block(b);
    if (rc != NK_OK) {
        return rc;
    }
    nk_block_handle fh, ph, ih;
    nk_buf filter = {0};
    rc = nk_bloom_finish(&b->bloom, &filter);
    if (rc == NK_OK) {
        /* Bloom bits are random-looking: compression would not pay. */
        rc = emit_block(b, nk_slice_make(filter.data, filter.len), NK_COMP_NONE, &fh);
    }
    nk_buf_free(&filter);
    if (rc == NK_OK) {
        rc = write_props(b, &ph);
    }
    nk_slice raw;
    if (rc == NK_OK) {
        rc = nk_block_finish(&b->index, &raw);
    }
    if (rc == NK_OK) {
        rc = emit_block(b, raw, b->o.compression, &ih);
    }
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t foot[NK_SST_FOOTER_SIZE];
    nk_put_u32(foot, NK_SST_FORMAT_VERSION);
    nk_put_u32(foot + 4, 0);
    put_handle(foot + 8, ih);
    put_handle(foot + 24, fh);
    put_handle(foot + 40, ph);
    nk_put_u64(foot + 56, XXH64(foot, 56, 0));
    nk_put_u64(foot + 64, NK_SST_MAGIC);
    rc = nk_buf_append(&b->out, foot, sizeof foot);
    if (rc == NK_OK) {
        rc = flush_out(b);
    }
    if (rc == NK_OK) {
        *file_size = b->written;
        b->file_hash = (uint64_t)XXH64_digest(b->hash);
    }
    return rc;
}

int nk_sst_builder_finish(nk_sst_builder *b, uint64_t *file_size, nk_sst_props *props)
{
    if (b->err != NK_OK) {
        return b->err;
    }
    if (b->finished) {
        return NK_EINVAL;
    }
    if (b->props.entries > 0) {
        int rc = nk_buf_assign(&b->props.largest, b->last_key.data, b->last_key.len);
        if (rc != NK_OK) {
            b->err = rc;
            return rc;
        }
    }
    uint64_t size = 0;
    int rc = finish(b, &size);
    if (rc == NK_OK && props != NULL) {
        rc = props_copy(props, &b->props);
    }
    if (rc != NK_OK) {
        b->err = rc;
        return rc;
    }
    b->finished = true;
    if (file_size != NULL) {
        *file_size = size;
    }
    return NK_OK;
}

uint64_t nk_sst_builder_file_xxh64(const nk_sst_builder *b)
{
    return b->finished ? b->file_hash : 0;
}

/* ============================================================= reader === */

/* A decoded, validated block and the memory it lives in. */
typedef struct cached_block {
    nk_block blk;
    uint8_t *mem;
} cached_block;

static void cached_block_free(void *p)
{
    cached_block *cb = p;
    if (cb != NULL) {
        free(cb->mem);
        free(cb);
    }
}

struct nk_sst {
    nk_rt *rt;
    nk_file *f;
    uint64_t number;
    char *name;
    nk_cache *cache;
    uint64_t size;
    uint64_t data_end; /* data blocks live in [0, data_end) */
    uint64_t meta_end; /* all blocks live in [0, meta_end): the footer follows */
    cached_block *index;
    cached_block *filter; /* raw bytes in filter->mem; blk unused */
    size_t filter_len;
    bool filter_ok;
    nk_sst_props props;
};

/* Read and unframe the block at h, which must lie inside [0, limit). */
static int read_block(const nk_sst *t, nk_block_handle h, uint64_t limit, const char *what,
                      nk_block_contents *bc, uint8_t **mem, nk_errbuf *eb)
{
    if (h.size < NK_BLOCK_TRAILER || h.size > (uint64_t)NK_BLOCK_MAX_RAW + 64 ||
        h.off > limit || h.size > limit - h.off) {
        nk_errbuf_set(eb,
                      "sst %s: %s block handle (offset %llu, size %llu) is outside the "
                      "region that ends at offset %llu",
                      t->name, what, (unsigned long long)h.off, (unsigned long long)h.size,
                      (unsigned long long)limit);
        return NK_ECORRUPT;
    }
    uint8_t *buf = malloc((size_t)h.size);
    if (buf == NULL) {
        nk_errbuf_set(eb, "sst %s: out of memory reading %s block at offset %llu", t->name,
                      what, (unsigned long long)h.off);
        return NK_ENOMEM;
    }
    size_t nread = 0;
    int rc = nk_rt_file_read_at(t->rt, t->f, h.off, buf, (size_t)h.size, &nread);
    if (rc != NK_OK) {
        free(buf);
        nk_errbuf_set(eb, "sst %s: reading %s block at offset %llu failed: %s", t->name, what,
                      (unsigned long long)h.off, nk_strerror(rc));
        return rc;
    }
    if (nread != h.size) {
        free(buf);
        nk_errbuf_set(eb, "sst %s: %s block at offset %llu is truncated (read %zu of %llu bytes)",
                      t->name, what, (unsigned long long)h.off, nread,
                      (unsigned long long)h.size);
        return NK_ECORRUPT;
    }
    rc = nk_blockfmt_decode(buf, (size_t)h.size, h.off, bc, eb);
    if (rc != NK_OK) {
        free(buf);
        nk_errbuf_wrap(eb, "sst %s: %s", t->name, what);
        return rc;
    }
    if (bc->owned != NULL) {
        free(buf); /* decompressed copy is what we keep */
        *mem = bc->owned;
    } else {
        *mem = buf;
    }
    return NK_OK;
}

/* Read a block in block.h format and validate its restart array. */
static int load_block(const nk_sst *t, nk_block_handle h, uint64_t limit, const char *what,
                      cached_block **out, nk_errbuf *eb)
{
    cached_block *cb = calloc(1, sizeof *cb);
    if (cb == NULL) {
        return NK_ENOMEM;
    }
    nk_block_contents bc;
    int rc = read_block(t, h, limit, what, &bc, &cb->mem, eb);
    if (rc == NK_OK) {
        rc = nk_block_open(&cb->blk, bc.data, bc.len, eb);
        if (rc != NK_OK) {
            nk_errbuf_wrap(eb, "sst %s: %s block at offset %llu", t->name, what,
                           (unsigned long long)h.off);
        }
    }
    if (rc != NK_OK) {
        cached_block_free(cb);
        return rc;
    }
    *out = cb;
    return NK_OK;
}

/* A pinned data block: from the cache (ch set) or owned by the reader. */
typedef struct blockref {
    cached_block *cb;
    nk_cache_handle *ch;
} blockref;

static int get_data_block(const nk_sst *t, nk_block_handle h, bool use_cache, blockref *ref,
                          nk_errbuf *eb)
{
    ref->cb = NULL;
    ref->ch = NULL;
    bool cached = use_cache && t->cache != NULL;
    if (cached) {
        /* File numbers are never reused: (number, offset) names this block. */
        ref->ch = nk_cache_lookup(t->cache, t->number, h.off);
        if (ref->ch != NULL) {
            ref->cb = nk_cache_value(ref->ch);
            return NK_OK;
        }
    }
    cached_block *cb;
    int rc = load_block(t, h, t->data_end, "data", &cb, eb);
    if (rc != NK_OK) {
        return rc;
    }
    if (cached) {
        rc = nk_cache_insert(t->cache, t->number, h.off, cb, cb->blk.len + sizeof *cb,
                             cached_block_free, &ref->ch);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "sst %s: out of memory caching block at offset %llu", t->name,
                          (unsigned long long)h.off);
            return rc;
        }
    }
    ref->cb = cb;
    return NK_OK;
}

static void release_block(const nk_sst *t, blockref *ref)
{
    if (ref->ch != NULL) {
        nk_cache_release(t->cache, ref->ch);
    } else {
        cached_block_free(ref->cb);
    }
    ref->cb = NULL;
    ref->ch = NULL;
}

static nk_block_handle get_handle(const uint8_t *p)
{
    nk_block_handle h = {nk_get_u64(p), nk_get_u64(p + 8)};
    return h;
}

static int parse_props(nk_sst *t, const nk_block *blk, nk_errbuf *eb)
{
    enum { F_ENTRIES = 1, F_MIN = 2, F_MAX = 4, F_SMALL = 8, F_LARGE = 16 };
    unsigned seen = 0;
    nk_sst_props *p = &t->props;
    nk_block_iter it;
    nk_block_iter_init(&it, blk, nk_bytes_cmp);
    int rc = NK_OK;
    for (nk_block_iter_first(&it); nk_block_iter_valid(&it) && rc == NK_OK;
         nk_block_iter_next(&it)) {
        nk_slice k = nk_block_iter_key(&it), v = nk_block_iter_value(&it);
        struct {
            const char *name;
            uint64_t *dst;
            unsigned flag;
        } nums[] = {
            {P_DATA_BLOCKS, &p->data_blocks, 0}, {P_DELETES, &p->deletes, 0},
            {P_ENTRIES, &p->entries, F_ENTRIES}, {P_MAX_SEQ, &p->max_seq, F_MAX},
            {P_MIN_SEQ, &p->min_seq, F_MIN},     {P_RAW_KEY, &p->raw_key_bytes, 0},
            {P_RAW_VALUE, &p->raw_value_bytes, 0},
        };
        bool known = false;
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            if (nk_bytes_cmp(k.data, k.len, (const uint8_t *)nums[i].name,
                             strlen(nums[i].name)) == 0) {
                known = true;
                if (nk_get_varint64(v.data, v.data + v.len, nums[i].dst) != v.len) {
                    nk_errbuf_set(eb, "sst %s: property %s is not a varint", t->name,
                                  nums[i].name);
                    rc = NK_ECORRUPT;
                }
                seen |= nums[i].flag;
            }
        }
        if (known) {
            continue;
        }
        nk_buf *dst = NULL;
        if (nk_bytes_cmp(k.data, k.len, (const uint8_t *)P_SMALLEST, strlen(P_SMALLEST)) == 0) {
            dst = &p->smallest;
            seen |= F_SMALL;
        } else if (nk_bytes_cmp(k.data, k.len, (const uint8_t *)P_LARGEST,
                                strlen(P_LARGEST)) == 0) {
            dst = &p->largest;
            seen |= F_LARGE;
        }
        if (dst != NULL) {
            rc = nk_buf_assign(dst, v.data, v.len);
        }
        /* unknown names: written by a newer builder, ignored */
    }
    if (rc == NK_OK && nk_block_iter_status(&it) != NK_OK) {
        rc = nk_block_iter_status(&it);
        nk_block_iter_error(&it, eb);
        nk_errbuf_wrap(eb, "sst %s: properties block", t->name);
    }
    nk_block_iter_free(&it);
    if (rc != NK_OK) {
        return rc;
    }
    unsigned need = F_ENTRIES | F_MIN | F_MAX | F_SMALL | F_LARGE;
    if ((seen & need) != need) {
        nk_errbuf_set(eb, "sst %s: properties block lacks required properties", t->name);
        return NK_ECORRUPT;
    }
    nk_ikey a, b;
    if (p->entries > 0 && (nk_ikey_parse(p->smallest.data, p->smallest.len, &a) != NK_OK ||
                           nk_ikey_parse(p->largest.data, p->largest.len, &b) != NK_OK ||
                           nk_ikey_cmp(p->smallest.data, p->smallest.len, p->largest.data,
                                       p->largest.len) > 0)) {
        nk_errbuf_set(eb, "sst %s: smallest/largest key properties are malformed", t->name);
        return NK_ECORRUPT;
    }
    return NK_OK;
}

void nk_sst_close(nk_sst *t)
{
    if (t == NULL) {
        return;
    }
    if (t->f != NULL) {
        (void)nk_rt_file_close(t->rt, t->f);
    }
    cached_block_free(t->index);
    cached_block_free(t->filter);
    nk_sst_props_free(&t->props);
    free(t->name);
    free(t);
}

int nk_sst_open(nk_rt *rt, nk_file *f, uint64_t number, const char *name, nk_cache *cache,
                nk_sst **out, nk_errbuf *eb)
{
    nk_sst *t = calloc(1, sizeof *t);
    size_t nlen = strlen(name);
    if (t == NULL || (t->name = malloc(nlen + 1)) == NULL) {
        free(t);
        return NK_ENOMEM;
    }
    memcpy(t->name, name, nlen + 1);
    t->rt = rt;
    t->number = number;
    t->cache = cache;
    int rc = nk_rt_file_size(rt, f, &t->size);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "sst %s: cannot get file size: %s", t->name, nk_strerror(rc));
        goto fail;
    }
    if (t->size < NK_SST_FOOTER_SIZE) {
        nk_errbuf_set(eb, "sst %s: file of %llu bytes is too short for the %u-byte footer",
                      t->name, (unsigned long long)t->size, NK_SST_FOOTER_SIZE);
        rc = NK_ECORRUPT;
        goto fail;
    }
    uint8_t foot[NK_SST_FOOTER_SIZE];
    uint64_t foot_off = t->size - NK_SST_FOOTER_SIZE;
    size_t nread = 0;
    rc = nk_rt_file_read_at(rt, f, foot_off, foot, sizeof foot, &nread);
    if (rc != NK_OK || nread != sizeof foot) {
        nk_errbuf_set(eb, "sst %s: reading the footer at offset %llu failed: %s", t->name,
                      (unsigned long long)foot_off, nk_strerror(rc ? rc : NK_EIO));
        rc = rc ? rc : NK_EIO;
        goto fail;
    }
    if (nk_get_u64(foot + 64) != NK_SST_MAGIC) {
        nk_errbuf_set(eb, "sst %s: bad magic %016llx at offset %llu (not a NoKV table, or "
                          "truncated)",
                      t->name, (unsigned long long)nk_get_u64(foot + 64),
                      (unsigned long long)(foot_off + 64));
        rc = NK_ECORRUPT;
        goto fail;
    }
    if (nk_get_u64(foot + 56) != XXH64(foot, 56, 0)) {
        nk_errbuf_set(eb, "sst %s: footer checksum mismatch (footer at offset %llu)", t->name,
                      (unsigned long long)foot_off);
        rc = NK_ECORRUPT;
        goto fail;
    }
    uint32_t version = nk_get_u32(foot);
    if (version != NK_SST_FORMAT_VERSION) {
        nk_errbuf_set(eb, "sst %s: format version %u is not supported by this build (%u)",
                      t->name, version, NK_SST_FORMAT_VERSION);
        rc = NK_ENOTSUP;
        goto fail;
    }
    nk_block_handle ih = get_handle(foot + 8), fh = get_handle(foot + 24),
                    ph = get_handle(foot + 40);
    t->meta_end = foot_off;
    t->data_end = fh.off;
    if (ph.off < t->data_end) {
        t->data_end = ph.off;
    }
    if (ih.off < t->data_end) {
        t->data_end = ih.off;
    }
    t->f = f; /* needed by the reads below; handed back on failure */
    rc = load_block(t, ih, t->meta_end, "index", &t->index, eb);
    if (rc != NK_OK) {
        goto fail;
    }
    cached_block *props;
    rc = load_block(t, ph, t->meta_end, "properties", &props, eb);
    if (rc != NK_OK) {
        goto fail;
    }
    rc = parse_props(t, &props->blk, eb);
    cached_block_free(props);
    if (rc != NK_OK) {
        goto fail;
    }
    nk_block_contents bc;
    t->filter = calloc(1, sizeof *t->filter);
    if (t->filter == NULL) {
        rc = NK_ENOMEM;
        goto fail;
    }
    rc = read_block(t, fh, t->meta_end, "filter", &bc, &t->filter->mem, eb);
    if (rc != NK_OK) {
        goto fail;
    }
    t->filter_len = bc.len;
    /* A filter that passed its checksum but is unusable came from a buggy
     * writer; reading without it is slower but still correct. */
    t->filter_ok = nk_bloom_check(bc.data, bc.len) == NK_OK;
    *out = t;
    return NK_OK;
fail:
    t->f = NULL; /* the caller keeps the file on failure */
    nk_sst_close(t);
    return rc;
}

const nk_sst_props *nk_sst_get_props(const nk_sst *t)
{
    return &t->props;
}

uint64_t nk_sst_file_size(const nk_sst *t)
{
    return t->size;
}

uint64_t nk_sst_number(const nk_sst *t)
{
    return t->number;
}

bool nk_sst_has_filter(const nk_sst *t)
{
    return t->filter_ok;
}

static int index_handle(const nk_sst *t, const nk_block_iter *ix, nk_block_handle *h,
                        nk_errbuf *eb)
{
    nk_slice v = nk_block_iter_value(ix);
    size_t used;
    if (nk_block_handle_decode(v.data, v.data + v.len, h, &used) != NK_OK || used != v.len) {
        nk_errbuf_set(eb, "sst %s: malformed block handle in index entry at index offset %zu",
                      t->name, ix->cur);
        return NK_ECORRUPT;
    }
    return NK_OK;
}

static int block_iter_fail(const nk_sst *t, const nk_block_iter *it, const char *what,
                           uint64_t off, nk_errbuf *eb)
{
    nk_block_iter_error(it, eb);
    nk_errbuf_wrap(eb, "sst %s: %s block at offset %llu", t->name, what,
                   (unsigned long long)off);
    return nk_block_iter_status(it);
}

int nk_sst_get(nk_sst *t, const uint8_t *ukey, size_t ulen, uint64_t snap, nk_lookup *res,
               nk_buf *val, uint64_t *seq_out, nk_errbuf *eb)
{
    *res = NK_LOOKUP_MISS;
    if (t->filter_ok && !nk_bloom_may_contain(t->filter->mem, t->filter_len, ukey, ulen)) {
        return NK_OK;
    }
    if (snap > NK_SEQ_MAX) {
        snap = NK_SEQ_MAX;
    }
    /* The lookup key lives on the stack unless the user key is long. */
    uint8_t lk_stack[128];
    nk_buf lookup = {0};
    int rc = NK_OK;
    if (ulen + NK_IKEY_TRAILER <= sizeof lk_stack) {
        lookup.data = lk_stack;
        lookup.len = nk_ikey_encode(lk_stack, ukey, ulen, snap, NK_KT_SEEK);
    } else if ((rc = nk_ikey_append(&lookup, ukey, ulen, snap, NK_KT_SEEK)) != NK_OK) {
        return rc;
    }
    nk_block_iter ix, dx;
    nk_block_iter_init(&ix, &t->index->blk, nk_ikey_cmp);
    nk_block_iter_init(&dx, NULL, nk_ikey_cmp);
    blockref ref = {0};
    nk_block_handle h = {0, 0};
    nk_block_iter_seek(&ix, lookup.data, lookup.len);
    if (!nk_block_iter_valid(&ix)) {
        if (nk_block_iter_status(&ix) != NK_OK) {
            rc = block_iter_fail(t, &ix, "index", 0, eb);
        }
        goto out; /* past the last key */
    }
    rc = index_handle(t, &ix, &h, eb);
    if (rc == NK_OK) {
        rc = get_data_block(t, h, true, &ref, eb);
    }
    if (rc != NK_OK) {
        goto out;
    }
    nk_block_iter_init(&dx, &ref.cb->blk, nk_ikey_cmp);
    nk_block_iter_seek(&dx, lookup.data, lookup.len);
    if (!nk_block_iter_valid(&dx)) {
        /* The index promised a key >= lookup in this block. */
        rc = nk_block_iter_status(&dx) != NK_OK
                 ? block_iter_fail(t, &dx, "data", h.off, eb)
                 : NK_ECORRUPT;
        if (nk_block_iter_status(&dx) == NK_OK) {
            nk_errbuf_set(eb, "sst %s: data block at offset %llu disagrees with the index",
                          t->name, (unsigned long long)h.off);
        }
        goto out;
    }
    nk_slice k = nk_block_iter_key(&dx);
    nk_ikey ik;
    if (nk_ikey_parse(k.data, k.len, &ik) != NK_OK) {
        nk_errbuf_set(eb, "sst %s: malformed internal key in data block at offset %llu",
                      t->name, (unsigned long long)h.off);
        rc = NK_ECORRUPT;
        goto out;
    }
    if (nk_bytes_cmp(ik.ukey.data, ik.ukey.len, ukey, ulen) != 0) {
        goto out;
    }
    if (seq_out != NULL) {
        *seq_out = ik.seq;
    }
    if (ik.type == NK_KT_DELETE) {
        *res = NK_LOOKUP_DELETED;
    } else {
        nk_slice v = nk_block_iter_value(&dx);
        rc = nk_buf_assign(val, v.data, v.len);
        if (rc == NK_OK) {
            *res = NK_LOOKUP_VALUE;
        }
    }
out:
    nk_block_iter_free(&dx);
    nk_block_iter_free(&ix);
    if (ref.cb != NULL) {
        release_block(t, &ref);
    }
    if (lookup.data != lk_stack) {
        nk_buf_free(&lookup);
    }
    return rc;
}

/* =========================================================== iterator === */

struct nk_sst_iter {
    nk_sst *t;
    bool use_cache;
    nk_block_iter ix;  /* over the index */
    nk_block_iter dx;  /* over the current data block */
    blockref ref;      /* pins the current data block */
    uint64_t block_off;
    int status;
    nk_errbuf err;
};

int nk_sst_iter_new(nk_sst *t, unsigned flags, nk_sst_iter **out)
{
    nk_sst_iter *it = calloc(1, sizeof *it);
    if (it == NULL) {
        return NK_ENOMEM;
    }
    it->t = t;
    it->use_cache = (flags & NK_SST_NO_CACHE) == 0;
    nk_block_iter_init(&it->ix, &t->index->blk, nk_ikey_cmp);
    nk_block_iter_init(&it->dx, NULL, nk_ikey_cmp);
    it->status = NK_OK;
    *out = it;
    return NK_OK;
}

static void drop_block(nk_sst_iter *it)
{
    nk_block_iter_free(&it->dx);
    nk_block_iter_init(&it->dx, NULL, nk_ikey_cmp);
    if (it->ref.cb != NULL) {
        release_block(it->t, &it->ref);
    }
}

void nk_sst_iter_free(nk_sst_iter *it)
{
    if (it == NULL) {
        return;
    }
    drop_block(it);
    nk_block_iter_free(&it->ix);
    free(it);
}

static bool iter_fail(nk_sst_iter *it, int rc)
{
    it->status = rc;
    drop_block(it);
    return false;
}

/* Make the data iterator cover the block the index points at. false when
 * the index is exhausted or on error (it->status). */
static bool load_current(nk_sst_iter *it)
{
    if (!nk_block_iter_valid(&it->ix)) {
        drop_block(it);
        if (nk_block_iter_status(&it->ix) != NK_OK) {
            return iter_fail(it, block_iter_fail(it->t, &it->ix, "index", 0, &it->err));
        }
        return false;
    }
    nk_block_handle h;
    int rc = index_handle(it->t, &it->ix, &h, &it->err);
    if (rc != NK_OK) {
        return iter_fail(it, rc);
    }
    if (it->ref.cb != NULL && it->block_off == h.off) {
        return true; /* already loaded; caller repositions dx */
    }
    drop_block(it);
    rc = get_data_block(it->t, h, it->use_cache, &it->ref, &it->err);
    if (rc != NK_OK) {
        return iter_fail(it, rc);
    }
    it->block_off = h.off;
    nk_block_iter_init(&it->dx, &it->ref.cb->blk, nk_ikey_cmp);
    return true;
}

/* After a data-level move: report block errors; when the block ran out,
 * continue in the next (forward) or previous (backward) non-empty block. */
static void settle(nk_sst_iter *it, bool forward)
{
    while (it->status == NK_OK && !nk_block_iter_valid(&it->dx)) {
        if (it->ref.cb != NULL && nk_block_iter_status(&it->dx) != NK_OK) {
            iter_fail(it, block_iter_fail(it->t, &it->dx, "data", it->block_off, &it->err));
            return;
        }
        if (it->ref.cb == NULL) {
            return;
        }
        if (forward) {
            nk_block_iter_next(&it->ix);
        } else {
            nk_block_iter_prev(&it->ix);
        }
        if (!load_current(it)) {
            return;
        }
        if (forward) {
            nk_block_iter_first(&it->dx);
        } else {
            nk_block_iter_last(&it->dx);
        }
    }
}

bool nk_sst_iter_valid(const nk_sst_iter *it)
{
    return it->status == NK_OK && it->ref.cb != NULL && nk_block_iter_valid(&it->dx);
}

nk_slice nk_sst_iter_key(const nk_sst_iter *it)
{
    return nk_block_iter_key(&it->dx);
}

nk_slice nk_sst_iter_value(const nk_sst_iter *it)
{
    return nk_block_iter_value(&it->dx);
}

void nk_sst_iter_first(nk_sst_iter *it)
{
    if (it->status != NK_OK) {
        return;
    }
    nk_block_iter_first(&it->ix);
    if (load_current(it)) {
        nk_block_iter_first(&it->dx);
        settle(it, true);
    }
}

void nk_sst_iter_last(nk_sst_iter *it)
{
    if (it->status != NK_OK) {
        return;
    }
    nk_block_iter_last(&it->ix);
    if (load_current(it)) {
        nk_block_iter_last(&it->dx);
        settle(it, false);
    }
}

void nk_sst_iter_next(nk_sst_iter *it)
{
    if (!nk_sst_iter_valid(it)) {
        return;
    }
    nk_block_iter_next(&it->dx);
    settle(it, true);
}

void nk_sst_iter_prev(nk_sst_iter *it)
{
    if (!nk_sst_iter_valid(it)) {
        return;
    }
    nk_block_iter_prev(&it->dx);
    settle(it, false);
}

void nk_sst_iter_seek(nk_sst_iter *it, const uint8_t *ikey, size_t klen)
{
    if (it->status != NK_OK) {
        return;
    }
    /* First block whose last key >= target holds the first entry >= target. */
    nk_block_iter_seek(&it->ix, ikey, klen);
    if (load_current(it)) {
        nk_block_iter_seek(&it->dx, ikey, klen);
        settle(it, true);
    }
}

void nk_sst_iter_seek_for_prev(nk_sst_iter *it, const uint8_t *ikey, size_t klen)
{
    if (it->status != NK_OK) {
        return;
    }
    nk_block_iter_seek(&it->ix, ikey, klen);
    if (!nk_block_iter_valid(&it->ix)) {
        if (nk_block_iter_status(&it->ix) != NK_OK) {
            (void)load_current(it); /* records the error */
            return;
        }
        nk_sst_iter_last(it); /* target is past every key */
        return;
    }
    if (load_current(it)) {
        nk_block_iter_seek_for_prev(&it->dx, ikey, klen);
        settle(it, false);
    }
}

int nk_sst_iter_status(const nk_sst_iter *it, nk_errbuf *eb)
{
    if (it->status != NK_OK && eb != NULL) {
        *eb = it->err;
    }
    return it->status;
}
