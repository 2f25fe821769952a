/* test_engine_blockfmt.c - block framing: compression choice, checksum
 * verification before decompression, and every single-byte corruption of a
 * framed block detected (never a wrong entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <xxhash.h>

#include "nokv/engine/block.h"
#include "nokv/engine/blockfmt.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"
#include "nokv/util/rand.h"

static void test_roundtrip_and_choice(void **state)
{
    (void)state;
    nk_rand r;
    nk_rand_seed(&r, 5);
    uint8_t compressible[4000], random[4000];
    for (size_t i = 0; i < sizeof compressible; i++) {
        compressible[i] = (uint8_t)("abcdefgh"[i % 8]);
    }
    nk_rand_bytes(&r, random, sizeof random);

    struct {
        const uint8_t *raw;
        size_t len;
        nk_compression want;
        uint8_t expect_type;
    } cases[] = {
        {compressible, sizeof compressible, NK_COMP_LZ4, NK_COMP_LZ4},
        {compressible, sizeof compressible, NK_COMP_NONE, NK_COMP_NONE},
        {random, sizeof random, NK_COMP_LZ4, NK_COMP_NONE}, /* would not pay */
        {random, 0, NK_COMP_LZ4, NK_COMP_NONE},             /* empty */
        {compressible, 7, NK_COMP_LZ4, NK_COMP_NONE},       /* tiny */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nk_buf out = {0};
        assert_int_equal(nk_buf_append(&out, "prefix", 6), NK_OK); /* encode appends */
        size_t framed;
        assert_int_equal(
            nk_blockfmt_encode(cases[c].raw, cases[c].len, cases[c].want, &out, &framed), NK_OK);
        assert_int_equal(out.len, 6 + framed);
        const uint8_t *f = out.data + 6;
        assert_int_equal(f[framed - NK_BLOCK_TRAILER], cases[c].expect_type);
        if (cases[c].expect_type == NK_COMP_LZ4) {
            assert_true(framed < cases[c].len / 4);
        } else {
            assert_int_equal(framed, cases[c].len + NK_BLOCK_TRAILER);
        }
        /* checksum = XXH64(payload | type), little-endian */
        assert_true(nk_get_u64(f + framed - 8) == XXH64(f, framed - 8, 0));
        nk_block_contents bc;
        assert_int_equal(nk_blockfmt_decode(f, framed, 100, &bc, NULL), NK_OK);
        assert_int_equal(bc.len, cases[c].len);
        if (bc.len) {
            assert_memory_equal(bc.data, cases[c].raw, bc.len);
        }
        assert_true((bc.owned != NULL) == (cases[c].expect_type == NK_COMP_LZ4));
        nk_block_contents_free(&bc);
        nk_buf_free(&out);
    }
    nk_buf out = {0};
    assert_int_equal(nk_blockfmt_encode(random, 10, (nk_compression)7, &out, NULL), NK_EINVAL);
    nk_buf_free(&out);
}

/* Build a realistic data block, frame it, then damage each byte in turn:
 * decode must report NK_ECORRUPT (or, if it were ever to succeed, the block
 * must read back exactly the original entries). */
static void flip_every_byte(nk_compression comp)
{
    nk_block_builder b;
    nk_block_builder_init(&b, 8);
    char k[32], v[32];
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        int kl = snprintf(k, sizeof k, "key/%05d", i * 3);
        int vl = snprintf(v, sizeof v, "value-%d-%d", i, i * i);
        assert_int_equal(nk_block_add(&b, (const uint8_t *)k, (size_t)kl, (const uint8_t *)v,
                                      (size_t)vl),
                         NK_OK);
    }
    nk_slice raw;
    assert_int_equal(nk_block_finish(&b, &raw), NK_OK);
    nk_buf framed = {0};
    assert_int_equal(nk_blockfmt_encode(raw.data, raw.len, comp, &framed, NULL), NK_OK);
    assert_int_equal(framed.data[framed.len - NK_BLOCK_TRAILER], comp);

    size_t detected = 0, intact = 0;
    for (size_t pos = 0; pos < framed.len; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t *m = malloc(framed.len);
            assert_non_null(m);
            memcpy(m, framed.data, framed.len);
            m[pos] ^= (uint8_t)(1u << bit);
            nk_block_contents bc;
            nk_errbuf eb;
            int rc = nk_blockfmt_decode(m, framed.len, 8192, &bc, &eb);
            if (rc == NK_ECORRUPT) {
                detected++;
                assert_non_null(strstr(eb.msg, "offset 8192"));
            } else {
                /* Only acceptable if every entry is exactly the original. */
                assert_int_equal(rc, NK_OK);
                nk_block blk;
                assert_int_equal(nk_block_open(&blk, bc.data, bc.len, NULL), NK_OK);
                nk_block_iter it;
                nk_block_iter_init(&it, &blk, nk_bytes_cmp);
                int i = 0;
                for (nk_block_iter_first(&it); nk_block_iter_valid(&it);
                     nk_block_iter_next(&it), i++) {
                    int kl = snprintf(k, sizeof k, "key/%05d", i * 3);
                    int vl = snprintf(v, sizeof v, "value-%d-%d", i, i * i);
                    assert_int_equal(nk_block_iter_key(&it).len, (size_t)kl);
                    assert_memory_equal(nk_block_iter_key(&it).data, k, (size_t)kl);
                    assert_int_equal(nk_block_iter_value(&it).len, (size_t)vl);
                    assert_memory_equal(nk_block_iter_value(&it).data, v, (size_t)vl);
                }
                assert_int_equal(i, N);
                nk_block_iter_free(&it);
                nk_block_contents_free(&bc);
                intact++;
            }
            free(m);
        }
    }
    printf("%s block of %zu framed bytes: %zu/%zu single-bit flips detected, %zu intact\n",
           comp == NK_COMP_LZ4 ? "lz4" : "raw", framed.len, detected, detected + intact,
           intact);
    /* A 64-bit checksum catches every single-bit flip. */
    assert_int_equal(intact, 0);

    /* Every truncation too. */
    for (size_t len = 0; len < framed.len; len++) {
        uint8_t *m = malloc(len ? len : 1);
        assert_non_null(m);
        memcpy(m, framed.data, len);
        nk_block_contents bc;
        assert_int_equal(nk_blockfmt_decode(m, len, 0, &bc, NULL), NK_ECORRUPT);
        free(m);
    }
    nk_buf_free(&framed);
    nk_block_builder_free(&b);
}

static void test_flip_every_byte_lz4(void **state)
{
    (void)state;
    flip_every_byte(NK_COMP_LZ4);
}

static void test_flip_every_byte_raw(void **state)
{
    (void)state;
    flip_every_byte(NK_COMP_NONE);
}

/* Frame arbitrary payload bytes under a given type with a VALID checksum:
 * what a buggy or hostile writer could produce. */
static void frame_forged(nk_buf *out, const uint8_t *payload, size_t len, uint8_t type)
{
    nk_buf_clear(out);
    assert_int_equal(nk_buf_append(out, payload, len), NK_OK);
    assert_int_equal(nk_buf_append_u8(out, type), NK_OK);
    assert_int_equal(nk_buf_append_u64(out, XXH64(out->data, out->len, 0)), NK_OK);
}

static void test_checksum_before_decompress(void **state)
{
    (void)state;
    nk_buf f = {0};
    nk_block_contents bc;
    nk_errbuf eb;
    /* Garbage lz4 with a bad checksum: reported as a checksum failure, i.e.
     * LZ4 never saw it. */
    uint8_t junk[64];
    memset(junk, 0xee, sizeof junk);
    frame_forged(&f, junk, sizeof junk, NK_COMP_LZ4);
    f.data[3] ^= 1;
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 42, &bc, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "checksum mismatch"));
    assert_non_null(strstr(eb.msg, "offset 42"));
    /* Valid checksum, bad lz4 payloads: caught by the decoder, no overrun. */
    uint8_t p1[] = {0x80}; /* truncated length varint */
    frame_forged(&f, p1, sizeof p1, NK_COMP_LZ4);
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    uint8_t p2[] = {0x00, 0x10}; /* zero length */
    frame_forged(&f, p2, sizeof p2, NK_COMP_LZ4);
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    uint8_t p3[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x10}; /* 4 GiB claimed from 1 byte */
    frame_forged(&f, p3, sizeof p3, NK_COMP_LZ4);
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    uint8_t p4[] = {100, 0xf0, 1, 2, 3}; /* 100 bytes claimed, lz4 stream broken */
    frame_forged(&f, p4, sizeof p4, NK_COMP_LZ4);
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "lz4"));
    frame_forged(&f, junk, sizeof junk, 9); /* unknown type */
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "compression type 9"));
    /* Valid lz4 but length header disagrees with the stream. */
    nk_buf good = {0};
    uint8_t text[512];
    memset(text, 'a', sizeof text);
    assert_int_equal(nk_blockfmt_encode(text, sizeof text, NK_COMP_LZ4, &good, NULL), NK_OK);
    size_t plen = good.len - NK_BLOCK_TRAILER;
    uint8_t *payload = malloc(plen);
    assert_non_null(payload);
    memcpy(payload, good.data, plen);
    payload[0] = (uint8_t)(payload[0] + 1); /* 512 -> 513 in the varint's low byte */
    frame_forged(&f, payload, plen, NK_COMP_LZ4);
    assert_int_equal(nk_blockfmt_decode(f.data, f.len, 0, &bc, &eb), NK_ECORRUPT);
    free(payload);
    nk_buf_free(&good);
    nk_buf_free(&f);
}

static void test_handles(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_block_handle h = {UINT64_C(123456789012), 4096}, g;
    assert_int_equal(nk_block_handle_append(&b, h), NK_OK);
    assert_true(b.len <= NK_BLOCK_HANDLE_MAX);
    size_t used;
    assert_int_equal(nk_block_handle_decode(b.data, b.data + b.len, &g, &used), NK_OK);
    assert_int_equal(used, b.len);
    assert_true(g.off == h.off && g.size == h.size);
    for (size_t len = 0; len < b.len; len++) {
        assert_int_equal(nk_block_handle_decode(b.data, b.data + len, &g, &used), NK_ECORRUPT);
    }
    nk_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_choice),
        cmocka_unit_test(test_flip_every_byte_lz4),
        cmocka_unit_test(test_flip_every_byte_raw),
        cmocka_unit_test(test_checksum_before_decompress),
        cmocka_unit_test(test_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
