/* blockfmt.c - block framing: LZ4 when it pays, XXH64 always. */
#include "nokv/engine/blockfmt.h"

#include <stdbool.h>
#include <stdlib.h>

#include <lz4.h>
#include <xxhash.h>

#include "nokv/util/coding.h"

/*
 * LZ4_compress_default initialises a 16 KiB hash table on the stack for
 * every block (a memset that cost more than compressing a 4 KiB block).
 * Each thread keeps one stream instead and resets it cheaply per block
 * (LZ4_resetStream_fast): with no dictionary, every block still compresses
 * on its own and decompresses with LZ4_decompress_safe. Thread-local
 * because the real runtime builds tables on its job threads.
 */
static LZ4_stream_t *lz4_stream(void)
{
    static _Thread_local LZ4_stream_t stream;
    static _Thread_local bool ready;
    if (!ready) {
        LZ4_initStream(&stream, sizeof(stream));
        ready = true;
    } else {
        LZ4_resetStream_fast(&stream);
    }
    return &stream;
}

int nk_blockfmt_encode(const uint8_t *raw, size_t len, nk_compression want, nk_buf *out,
                       size_t *framed_len)
{
    if (len > NK_BLOCK_MAX_RAW) {
        return NK_ETOOBIG;
    }
    if (want != NK_COMP_NONE && want != NK_COMP_LZ4) {
        return NK_EINVAL;
    }
    size_t start = out->len;
    uint8_t type = NK_COMP_NONE;
    if (want == NK_COMP_LZ4 && len > 0) {
        int bound = LZ4_compressBound((int)len);
        int rc = nk_buf_reserve(out, NK_VARINT64_MAX + (size_t)bound + NK_BLOCK_TRAILER);
        if (rc != NK_OK) {
            return rc;
        }
        size_t hdr = nk_put_varint64(out->data + start, len);
        int clen = LZ4_compress_fast_continue(lz4_stream(), (const char *)raw,
                                              (char *)out->data + start + hdr, (int)len, bound, 1);
        /* Keep it only when it saves at least 1/8. */
        if (clen > 0 && hdr + (size_t)clen <= len - len / 8) {
            out->len = start + hdr + (size_t)clen;
            type = NK_COMP_LZ4;
        }
    }
    if (type == NK_COMP_NONE) {
        int rc = nk_buf_reserve(out, len + NK_BLOCK_TRAILER);
        if (rc != NK_OK) {
            return rc;
        }
        if (len) {
            memcpy(out->data + start, raw, len);
        }
        out->len = start + len;
    }
    /* Room for the trailer was reserved above. */
    out->data[out->len++] = type;
    uint64_t sum = XXH64(out->data + start, out->len - start, 0);
    nk_put_u64(out->data + out->len, sum);
    out->len += 8;
    if (framed_len != NULL) {
        *framed_len = out->len - start;
    }
    return NK_OK;
}

int nk_blockfmt_decode(const uint8_t *in, size_t len, uint64_t file_off,
                       nk_block_contents *out, nk_errbuf *eb)
{
    out->data = NULL;
    out->len = 0;
    out->owned = NULL;
    unsigned long long off = (unsigned long long)file_off;
    if (len < NK_BLOCK_TRAILER) {
        nk_errbuf_set(eb, "block at offset %llu: %zu bytes is shorter than the %u-byte trailer",
                      off, len, NK_BLOCK_TRAILER);
        return NK_ECORRUPT;
    }
    size_t plen = len - NK_BLOCK_TRAILER;
    uint64_t stored = nk_get_u64(in + plen + 1);
    uint64_t actual = XXH64(in, plen + 1, 0);
    if (stored != actual) {
        nk_errbuf_set(eb,
                      "block at offset %llu (%zu bytes): checksum mismatch (stored %016llx, "
                      "computed %016llx)",
                      off, len, (unsigned long long)stored, (unsigned long long)actual);
        return NK_ECORRUPT;
    }
    uint8_t type = in[plen];
    if (type == NK_COMP_NONE) {
        out->data = in;
        out->len = plen;
        return NK_OK;
    }
    if (type != NK_COMP_LZ4) {
        nk_errbuf_set(eb, "block at offset %llu: unknown compression type %u (checksum ok: "
                          "written by a newer format?)",
                      off, type);
        return NK_ECORRUPT;
    }
    uint64_t rawlen;
    size_t hdr = nk_get_varint64(in, in + plen, &rawlen);
    if (hdr == 0 || rawlen == 0 || rawlen > NK_BLOCK_MAX_RAW ||
        rawlen > (uint64_t)(plen - hdr) * 255 + 16) { /* LZ4 cannot expand more */
        nk_errbuf_set(eb, "block at offset %llu: bad uncompressed length in lz4 header", off);
        return NK_ECORRUPT;
    }
    uint8_t *dst = malloc((size_t)rawlen);
    if (dst == NULL) {
        nk_errbuf_set(eb, "block at offset %llu: out of memory for %llu bytes", off,
                      (unsigned long long)rawlen);
        return NK_ENOMEM;
    }
    int n = LZ4_decompress_safe((const char *)in + hdr, (char *)dst, (int)(plen - hdr),
                                (int)rawlen);
    if (n < 0 || (uint64_t)n != rawlen) {
        free(dst);
        nk_errbuf_set(eb, "block at offset %llu: lz4 data does not decompress to %llu bytes",
                      off, (unsigned long long)rawlen);
        return NK_ECORRUPT;
    }
    out->data = dst;
    out->len = (size_t)rawlen;
    out->owned = dst;
    return NK_OK;
}

void nk_block_contents_free(nk_block_contents *c)
{
    free(c->owned);
    c->owned = NULL;
    c->data = NULL;
    c->len = 0;
}

int nk_block_handle_append(nk_buf *out, nk_block_handle h)
{
    int rc = nk_buf_append_varint(out, h.off);
    if (rc == NK_OK) {
        rc = nk_buf_append_varint(out, h.size);
    }
    return rc;
}

int nk_block_handle_decode(const uint8_t *p, const uint8_t *end, nk_block_handle *h,
                           size_t *used)
{
    size_t a = nk_get_varint64(p, end, &h->off);
    if (a == 0) {
        return NK_ECORRUPT;
    }
    size_t b = nk_get_varint64(p + a, end, &h->size);
    if (b == 0) {
        return NK_ECORRUPT;
    }
    *used = a + b;
    return NK_OK;
}
