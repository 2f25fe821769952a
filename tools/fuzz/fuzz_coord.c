/*
 * fuzz_coord.c - libFuzzer target: the coordinator codecs (nokv/proto/coord.h)
 * must survive arbitrary message bodies.
 *
 * Input: byte 0 picks the message (request, response, standalone report);
 * the rest is its body. The target wraps the body in a valid envelope (magic,
 * version 1, checksum) so the fuzzer reaches the field decoders instead of
 * stopping at the checksum. Invariants checked (abort on violation):
 *   - decoders return NK_OK, NK_EPROTO or NK_ECORRUPT (NK_ENOMEM tolerated),
 *     and a failed response decode leaves no list to free;
 *   - what decodes re-encodes, the re-encoding decodes, and encoding is
 *     stable from then on (the decoder accepts non-minimal varints, so the
 *     first re-encoding may differ from the input; the second may not).
 *
 * Build: see tools/fuzz/CMakeLists.part.cmake (NOKV_FUZZ=ON, clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/coord.h"
#include "nokv/proto/wire.h"
#include "nokv/util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t magics[3] = {0x4352u, 0x4350u, 0x5243u}; /* RC, PC, CR */

static void check_rc(int rc)
{
    if (rc != NK_OK && rc != NK_EPROTO && rc != NK_ECORRUPT && rc != NK_ENOMEM) {
        fprintf(stderr, "fuzz_coord: unexpected result %d\n", rc);
        abort();
    }
}

static void same(const nk_buf *a, const nk_buf *b)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "fuzz_coord: encoding is not stable\n");
        abort();
    }
}

static nk_coord_req g_q;
static nk_coord_resp g_p;
static nk_coord_region_report g_r;

static int decode(unsigned kind, const nk_buf *in)
{
    memset(&g_p, 0, sizeof(g_p));
    switch (kind) {
    case 0:
        return nk_coord_req_decode(in->data, in->len, &g_q);
    case 1:
        return nk_coord_resp_decode(in->data, in->len, &g_p);
    default:
        return nk_coord_report_decode(in->data, in->len, &g_r);
    }
}

static int encode(unsigned kind, nk_buf *out)
{
    switch (kind) {
    case 0:
        return nk_coord_req_encode(&g_q, out);
    case 1:
        return nk_coord_resp_encode(&g_p, out);
    default:
        return nk_coord_report_encode(&g_r, out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned kind = data[0] % 3;
    nk_buf in = {0}, e1 = {0}, e2 = {0};
    if (nk_wire_begin(&in, magics[kind], 1) != NK_OK ||
        (size > 1 && nk_buf_append(&in, data + 1, size - 1) != NK_OK) ||
        nk_wire_end(&in) != NK_OK) {
        nk_buf_free(&in);
        return 0;
    }
    int rc = decode(kind, &in);
    check_rc(rc);
    if (rc != NK_OK) {
        if (kind == 1 && (g_p.stores != NULL || g_p.regions != NULL)) {
            fprintf(stderr, "fuzz_coord: a failed decode left lists behind\n");
            abort();
        }
        nk_buf_free(&in);
        return 0;
    }
    /* the key of a decoded request points into `in`: keep it alive */
    if (encode(kind, &e1) != NK_OK) {
        fprintf(stderr, "fuzz_coord: a decoded message does not re-encode\n");
        abort();
    }
    if (kind == 1) {
        nk_coord_resp_free(&g_p);
    }
    if (decode(kind, &e1) != NK_OK || encode(kind, &e2) != NK_OK) {
        fprintf(stderr, "fuzz_coord: a re-encoded message does not decode\n");
        abort();
    }
    same(&e1, &e2);
    if (kind == 1) {
        nk_coord_resp_free(&g_p);
    }
    nk_buf_free(&in);
    nk_buf_free(&e1);
    nk_buf_free(&e2);
    return 0;
}
