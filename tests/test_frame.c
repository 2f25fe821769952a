/* test_frame.c - the wire frame codec (nokv/proto/frame.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/proto/frame.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"

static void test_roundtrip(void **state)
{
    (void)state;
    const char payload[] = "raft append entries";
    uint32_t len = (uint32_t)strlen(payload);
    uint8_t hdr[NK_FRAME_HEADER_SIZE];
    nk_frame_encode_header(hdr, 7, payload, len);

    /* The documented byte layout. */
    assert_int_equal(hdr[0], 0x89);
    assert_int_equal(hdr[1], 'N');
    assert_int_equal(hdr[2], 'K');
    assert_int_equal(hdr[3], 'F');
    assert_int_equal(hdr[4], 1);
    assert_int_equal(hdr[5], 7);
    assert_int_equal(nk_get_u16(hdr + 6), 0);
    assert_int_equal(nk_get_u32(hdr + 8), len);
    assert_true(nk_get_u64(hdr + 12) == nk_frame_checksum(7, payload, len));

    nk_frame_header h;
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    assert_int_equal(h.kind, 7);
    assert_int_equal(h.len, len);
    assert_int_equal(nk_frame_verify(&h, payload), NK_OK);

    /* Empty payload and the largest kind. */
    nk_frame_encode_header(hdr, 255, NULL, 0);
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    assert_int_equal(h.kind, 255);
    assert_int_equal(h.len, 0);
    assert_int_equal(nk_frame_verify(&h, NULL), NK_OK);
}

static void test_bad_magic_version_reserved(void **state)
{
    (void)state;
    uint8_t hdr[NK_FRAME_HEADER_SIZE];
    nk_frame_header h;
    for (int i = 0; i < 4; i++) {
        nk_frame_encode_header(hdr, 1, "x", 1);
        hdr[i] ^= 0x01;
        assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_EPROTO);
    }
    nk_frame_encode_header(hdr, 1, "x", 1);
    hdr[4] = 2; /* unknown version */
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_EPROTO);
    nk_frame_encode_header(hdr, 1, "x", 1);
    hdr[5] = 0; /* kind 0 is the raw-stream kind, never on the wire */
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_EPROTO);
    nk_frame_encode_header(hdr, 1, "x", 1);
    hdr[7] = 1; /* reserved must be zero */
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_EPROTO);
    /* A RESP request never looks like a frame. */
    memcpy(hdr, "*1\r\n$4\r\nPING\r\n\0\0\0\0\0\0", NK_FRAME_HEADER_SIZE);
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_EPROTO);
}

static void test_bad_checksum(void **state)
{
    (void)state;
    uint8_t payload[100];
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    uint8_t hdr[NK_FRAME_HEADER_SIZE];
    nk_frame_header h;

    /* A flipped payload bit. */
    nk_frame_encode_header(hdr, 3, payload, sizeof(payload));
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    payload[50] ^= 0x10;
    assert_int_equal(nk_frame_verify(&h, payload), NK_EPROTO);
    payload[50] ^= 0x10;
    assert_int_equal(nk_frame_verify(&h, payload), NK_OK);

    /* A flipped checksum bit. */
    hdr[19] ^= 0x80;
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    assert_int_equal(nk_frame_verify(&h, payload), NK_EPROTO);

    /* A changed kind is caught too: kind is part of the seed. */
    nk_frame_encode_header(hdr, 3, payload, sizeof(payload));
    hdr[5] = 4;
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    assert_int_equal(nk_frame_verify(&h, payload), NK_EPROTO);

    /* So is a shortened length (a prefix of the payload). */
    nk_frame_encode_header(hdr, 3, payload, sizeof(payload));
    nk_put_u32(hdr + 8, 99);
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_OK);
    assert_int_equal(nk_frame_verify(&h, payload), NK_EPROTO);
}

static void test_oversize(void **state)
{
    (void)state;
    uint8_t hdr[NK_FRAME_HEADER_SIZE];
    nk_frame_header h;
    nk_frame_encode_header(hdr, 1, NULL, 0);
    nk_put_u32(hdr + 8, 1001);
    assert_int_equal(nk_frame_decode_header(hdr, 1000, &h), NK_ETOOBIG);
    nk_put_u32(hdr + 8, 1000);
    assert_int_equal(nk_frame_decode_header(hdr, 1000, &h), NK_OK);
    nk_put_u32(hdr + 8, NK_FRAME_MAX + 1);
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_ETOOBIG);
    nk_put_u32(hdr + 8, UINT32_MAX);
    assert_int_equal(nk_frame_decode_header(hdr, NK_FRAME_MAX, &h), NK_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_magic_version_reserved),
        cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_oversize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
