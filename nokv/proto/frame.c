/*
 * frame.c - encode/decode of the wire frame header (format in frame.h).
 */
#include "nokv/proto/frame.h"

#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/err.h"

static const uint8_t frame_magic[4] = {NK_FRAME_MAGIC0, 'N', 'K', 'F'};

uint64_t nk_frame_checksum(uint8_t kind, const void *payload, uint32_t len)
{
    /* kind and len go into the seed so the hash also covers those header
     * fields; see frame.h. XXH3 accepts NULL input when len == 0. */
    uint64_t seed = ((uint64_t)kind << 32) | (uint64_t)len;
    return XXH3_64bits_withSeed(len ? payload : NULL, len, seed);
}

void nk_frame_encode_header(uint8_t out[NK_FRAME_HEADER_SIZE], uint8_t kind, const void *payload,
                            uint32_t len)
{
    for (int i = 0; i < 4; i++) {
        out[i] = frame_magic[i];
    }
    out[4] = NK_FRAME_VERSION;
    out[5] = kind;
    nk_put_u16(out + 6, 0);
    nk_put_u32(out + 8, len);
    nk_put_u64(out + 12, nk_frame_checksum(kind, payload, len));
}

int nk_frame_decode_header(const uint8_t in[NK_FRAME_HEADER_SIZE], uint32_t max_len,
                           nk_frame_header *out)
{
    for (int i = 0; i < 4; i++) {
        if (in[i] != frame_magic[i]) {
            return NK_EPROTO;
        }
    }
    if (in[4] != NK_FRAME_VERSION || in[5] == 0 || nk_get_u16(in + 6) != 0) {
        return NK_EPROTO;
    }
    uint32_t len = nk_get_u32(in + 8);
    if (len > max_len) {
        return NK_ETOOBIG;
    }
    out->kind = in[5];
    out->len = len;
    out->checksum = nk_get_u64(in + 12);
    return NK_OK;
}

int nk_frame_verify(const nk_frame_header *h, const void *payload)
{
    return nk_frame_checksum(h->kind, payload, h->len) == h->checksum ? NK_OK : NK_EPROTO;
}
