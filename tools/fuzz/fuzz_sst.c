/*
 * fuzz_sst.c - libFuzzer target: the SST reader (nk_sst_open, gets,
 * iterators) must survive arbitrary file contents.
 *
 * Input: byte 0 is a flag byte, the rest is the table file.
 *   bit 0  FIXUP: before the file is written, recompute every checksum the
 *          harness can locate (the footer, the index/filter/props blocks
 *          the footer points at, and every data block the index points at).
 *          Without it nearly every mutation dies at a checksum; with it the
 *          mutations reach the block parser, LZ4, the bloom filter and the
 *          properties decoder.
 *   bit 1  open with a block cache
 *   bit 2  iterate with NK_SST_NO_CACHE
 *   bits 3-7  picks the snapshot used by the point reads
 * The file lives on the simulator's in-memory disk (sim/sim.h): no real I/O.
 *
 * Invariants checked (abort on violation): every result is NK_OK or a
 * negative NK_E* code; NK_ECORRUPT always comes with a message; an
 * iterator that stops has a clean status.
 *
 * Seed corpus: NOKV_FUZZ_GEN=<dir> build-fuzz/fuzz_sst writes a few valid
 * tables (made by nk_sst_builder) into <dir> and exits.
 *
 * NOKV_FUZZ_VERBOSE=1 prints what each open returned (triage, seed checks).
 *
 * Build: see tools/fuzz/CMakeLists.part.cmake (NOKV_FUZZ=ON, clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/block.h"
#include "nokv/engine/blockfmt.h"
#include "nokv/engine/cache.h"
#include "nokv/engine/ikey.h"
#include "nokv/engine/sst.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define F_FIXUP 0x01u
#define F_CACHE 0x02u
#define F_NOCACHE_ITER 0x04u

#define MAX_STEPS 100000u /* bound every iteration loop */
#define MAX_DATA_FIXUPS 4096u

/* ------------------------------------------------------- sim harness --- */

#include "fuzz_sim.h"

/* A result must be NK_OK or one of the NK_E* codes; corruption explains. */
static void check_rc(int rc, const nk_errbuf *eb)
{
    if (rc > 0 || rc < NK_ERANGE) {
        fprintf(stderr, "fuzz_sst: result %d is not an NK_E* code\n", rc);
        abort();
    }
    if (rc == NK_ECORRUPT && eb != NULL && eb->msg[0] == '\0') {
        fprintf(stderr, "fuzz_sst: NK_ECORRUPT without a message\n");
        abort();
    }
}

/* ------------------------------------------------------------ fixup --- */

/* Recompute the trailer checksum of the framed block [off, off + size). */
static void fix_block(uint8_t *f, size_t len, uint64_t off, uint64_t size)
{
    if (size < NK_BLOCK_TRAILER || off > len || size > len - off) {
        return;
    }
    size_t covered = (size_t)(size - 8);
    nk_put_u64(f + off + covered, XXH64(f + off, covered, 0));
}

static bool overlaps(uint64_t off, uint64_t size, uint64_t o2, uint64_t s2)
{
    return off < o2 + s2 && o2 < off + size;
}

static void fixup(uint8_t *f, size_t len)
{
    if (len < NK_SST_FOOTER_SIZE) {
        return;
    }
    uint8_t *ft = f + len - NK_SST_FOOTER_SIZE;
    uint64_t h[6];
    for (int i = 0; i < 6; i++) {
        h[i] = nk_get_u64(ft + 8 + 8 * i);
    }
    nk_put_u64(ft + 56, XXH64(ft, 56, 0));
    uint64_t body = len - NK_SST_FOOTER_SIZE;
    for (int i = 0; i < 3; i++) {
        if (h[2 * i] <= body && h[2 * i + 1] <= body - h[2 * i]) {
            fix_block(f, len, h[2 * i], h[2 * i + 1]);
        }
    }
    /* data blocks: walk the (now verifiable) index block */
    uint64_t ioff = h[0], isize = h[1];
    if (!(ioff <= body && isize <= body - ioff) || isize < NK_BLOCK_TRAILER) {
        return;
    }
    nk_block_contents c;
    if (nk_blockfmt_decode(f + ioff, (size_t)isize, ioff, &c, NULL) != NK_OK) {
        return;
    }
    nk_block blk;
    if (nk_block_open(&blk, c.data, c.len, NULL) == NK_OK) {
        nk_block_iter it;
        nk_block_iter_init(&it, &blk, nk_ikey_cmp);
        unsigned n = 0;
        for (nk_block_iter_first(&it); nk_block_iter_valid(&it) && n < MAX_DATA_FIXUPS;
             nk_block_iter_next(&it), n++) {
            nk_slice v = nk_block_iter_value(&it);
            nk_block_handle bh;
            size_t used;
            if (nk_block_handle_decode(v.data, v.data + v.len, &bh, &used) != NK_OK) {
                continue;
            }
            if (bh.off > body || bh.size > body - bh.off) {
                continue;
            }
            bool clash = false;
            for (int i = 0; i < 3; i++) {
                clash |= overlaps(bh.off, bh.size, h[2 * i], h[2 * i + 1]);
            }
            if (!clash) {
                fix_block(f, len, bh.off, bh.size);
            }
        }
        nk_block_iter_free(&it);
    }
    nk_block_contents_free(&c);
}

/* ------------------------------------------------------------- reads --- */

static void do_get(nk_sst *t, const uint8_t *ukey, size_t ulen, uint64_t snap)
{
    nk_lookup res = NK_LOOKUP_MISS;
    nk_buf val = {0};
    uint64_t seq = 0;
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_sst_get(t, ukey, ulen, snap, &res, &val, &seq, &eb);
    check_rc(rc, &eb);
    if (rc == NK_OK && res != NK_LOOKUP_MISS && res != NK_LOOKUP_VALUE &&
        res != NK_LOOKUP_DELETED) {
        abort();
    }
    nk_buf_free(&val);
}

static void iter_status(nk_sst_iter *it)
{
    nk_errbuf eb;
    eb.msg[0] = '\0';
    check_rc(nk_sst_iter_status(it, &eb), &eb);
}

/* Touch the bytes of the current entry so ASan sees any bad view. */
static uint8_t touch(nk_sst_iter *it)
{
    nk_slice k = nk_sst_iter_key(it), v = nk_sst_iter_value(it);
    uint8_t x = 0;
    for (size_t i = 0; i < k.len; i++) {
        x ^= k.data[i];
    }
    if (v.len) {
        x ^= v.data[0] ^ v.data[v.len - 1];
    }
    return x;
}

static void exercise(nk_sst *t, unsigned flags, uint64_t snap)
{
    const nk_sst_props *p = nk_sst_get_props(t);
    (void)nk_sst_file_size(t);
    (void)nk_sst_has_filter(t);

    /* user keys to probe: the table's bounds, a few seen while iterating */
    nk_buf probes[6];
    memset(probes, 0, sizeof(probes));
    size_t np = 0;
    if (p->smallest.len >= NK_IKEY_TRAILER) {
        nk_buf_assign(&probes[np++], p->smallest.data, p->smallest.len - NK_IKEY_TRAILER);
    }
    if (p->largest.len >= NK_IKEY_TRAILER) {
        nk_buf_assign(&probes[np++], p->largest.data, p->largest.len - NK_IKEY_TRAILER);
    }

    nk_sst_iter *it;
    if (nk_sst_iter_new(t, (flags & F_NOCACHE_ITER) ? NK_SST_NO_CACHE : 0, &it) != NK_OK) {
        abort();
    }
    volatile uint8_t sink = 0;
    unsigned steps = 0;
    for (nk_sst_iter_first(it); nk_sst_iter_valid(it) && steps < MAX_STEPS;
         nk_sst_iter_next(it), steps++) {
        sink ^= touch(it);
        nk_slice k = nk_sst_iter_key(it);
        if ((steps == 1 || steps == 7 || steps == 40) && np < 6 && k.len >= NK_IKEY_TRAILER) {
            nk_buf_assign(&probes[np++], k.data, k.len - NK_IKEY_TRAILER);
        }
    }
    iter_status(it);
    steps = 0;
    for (nk_sst_iter_last(it); nk_sst_iter_valid(it) && steps < MAX_STEPS;
         nk_sst_iter_prev(it), steps++) {
        sink ^= touch(it);
    }
    iter_status(it);

    for (size_t i = 0; i < np; i++) {
        const uint8_t *uk = probes[i].data ? probes[i].data : (const uint8_t *)"";
        do_get(t, uk, probes[i].len, NK_SEQ_MAX);
        do_get(t, uk, probes[i].len, snap);
        uint8_t ik[64 + NK_IKEY_TRAILER];
        size_t ul = probes[i].len > 64 ? 64 : probes[i].len;
        size_t kl = nk_ikey_encode(ik, uk, ul, snap, NK_KT_SEEK);
        nk_sst_iter_seek(it, ik, kl);
        if (nk_sst_iter_valid(it)) {
            sink ^= touch(it);
            nk_sst_iter_prev(it);
        }
        iter_status(it);
        nk_sst_iter_seek_for_prev(it, ik, kl);
        if (nk_sst_iter_valid(it)) {
            sink ^= touch(it);
            nk_sst_iter_next(it);
        }
        iter_status(it);
    }
    do_get(t, (const uint8_t *)"key000001", 9, snap);
    do_get(t, (const uint8_t *)"", 0, NK_SEQ_MAX);
    (void)sink;
    nk_sst_iter_free(it);
    for (size_t i = 0; i < np; i++) {
        nk_buf_free(&probes[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    uint64_t snap = flags >> 3 ? (uint64_t)(flags >> 3) * 37u : NK_SEQ_MAX;
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    if (file == NULL) {
        return 0;
    }
    if (len) {
        memcpy(file, data + 1, len);
    }
    if (flags & F_FIXUP) {
        fixup(file, len);
    }

    nk_sim *s = boot();
    nk_file *f = NULL;
    if (nk_rt_file_open(g_rt, "/000007.sst", NK_OPEN_WRITE | NK_OPEN_CREATE, &f) != NK_OK ||
        (len && nk_rt_file_write_at(g_rt, f, 0, file, len) != NK_OK)) {
        abort();
    }
    free(file);
    nk_cache *cache = NULL;
    if ((flags & F_CACHE) && nk_cache_new(64 * 1024, &cache) != NK_OK) {
        abort();
    }
    nk_sst *t = NULL;
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_sst_open(g_rt, f, 7, "000007.sst", cache, &t, &eb);
    if (g_verbose) {
        fprintf(stderr, "fuzz_sst: open: %s %s\n", nk_errname(rc), eb.msg);
    }
    check_rc(rc, &eb);
    if (rc == NK_OK) {
        exercise(t, flags, snap);
        nk_sst_close(t);
    } else {
        nk_rt_file_close(g_rt, f);
    }
    if (cache != NULL) {
        nk_cache_free(cache);
    }
    nk_sim_free(s);
    return 0;
}

/* -------------------------------------------------- seed generation --- */

static void gen_one(const char *dir, const char *name, unsigned flags, unsigned nkeys,
                    unsigned block_size, nk_compression comp, unsigned vlen)
{
    nk_sim *s = boot();
    nk_file *f = NULL;
    if (nk_rt_file_open(g_rt, "/t.sst", NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f) !=
        NK_OK) {
        abort();
    }
    nk_sst_options o;
    nk_sst_options_default(&o);
    o.block_size = block_size;
    o.compression = comp;
    o.restart_interval = 4;
    nk_sst_builder *b;
    if (nk_sst_builder_new(g_rt, f, &o, &b) != NK_OK) {
        abort();
    }
    for (unsigned i = 0; i < nkeys; i++) {
        char uk[16];
        int ul = snprintf(uk, sizeof(uk), "key%06u", i * 2);
        uint8_t ik[32];
        for (unsigned ver = 0; ver < 1 + (i % 3 == 0); ver++) {
            uint64_t seq = 100u + 2u * i + (ver ? 0u : 1u);
            nk_ktype kt = (i % 5 == 4 && ver == 0) ? NK_KT_DELETE : NK_KT_PUT;
            size_t kl = nk_ikey_encode(ik, (const uint8_t *)uk, (size_t)ul, seq, kt);
            char val[256];
            unsigned n = vlen < sizeof(val) ? vlen : sizeof(val);
            for (unsigned j = 0; j < n; j++) {
                val[j] = (char)('a' + (i + j) % 5);
            }
            if (nk_sst_builder_add(b, ik, kl, (const uint8_t *)val, kt == NK_KT_PUT ? n : 0) !=
                NK_OK) {
                abort();
            }
        }
    }
    uint64_t fsize = 0;
    if (nk_sst_builder_finish(b, &fsize, NULL) != NK_OK) {
        abort();
    }
    nk_sst_builder_free(b);
    uint8_t *buf = malloc((size_t)fsize + 1);
    size_t got = 0;
    buf[0] = (uint8_t)flags;
    if (nk_rt_file_read_at(g_rt, f, 0, buf + 1, (size_t)fsize, &got) != NK_OK || got != fsize) {
        abort();
    }
    nk_rt_file_close(g_rt, f);
    nk_sim_free(s);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (out == NULL || fwrite(buf, 1, (size_t)fsize + 1, out) != (size_t)fsize + 1) {
        perror(path);
        exit(1);
    }
    fclose(out);
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_verbose = getenv("NOKV_FUZZ_VERBOSE") != NULL;
    const char *dir = getenv("NOKV_FUZZ_GEN");
    if (dir == NULL) {
        return 0;
    }
    gen_one(dir, "empty", F_FIXUP, 0, 4096, NK_COMP_NONE, 0);
    gen_one(dir, "small-raw", F_FIXUP, 12, 128, NK_COMP_NONE, 6);
    gen_one(dir, "small-lz4", F_FIXUP | F_CACHE, 20, 256, NK_COMP_LZ4, 40);
    gen_one(dir, "one-block", 0, 8, 4096, NK_COMP_NONE, 3);
    gen_one(dir, "many-blocks", F_FIXUP | F_NOCACHE_ITER | (3u << 3), 60, 200, NK_COMP_LZ4, 20);
    exit(0);
}
