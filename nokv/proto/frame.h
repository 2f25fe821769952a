/*
 * frame.h - the wire frame of framed connections (pure codec, no I/O).
 *
 * Every message between NoKV processes (raft, admin, snapshot streams) travels
 * as one frame: a fixed 20-byte header followed by `len` payload bytes.
 *
 *   offset size field     value
 *   ------ ---- --------- ----------------------------------------------------
 *        0    4 magic     0x89 'N' 'K' 'F'  (bytes 89 4E 4B 46)
 *        4    1 version   1
 *        5    1 kind      1..255 (0 is reserved for raw-stream chunks)
 *        6    2 reserved  0 (u16, little-endian)
 *        8    4 len       payload length in bytes (u32, little-endian)
 *       12    8 checksum  XXH3_64bits_withSeed(payload, len, seed)
 *                         (u64, little-endian), with
 *                         seed = ((uint64_t)kind << 32) | len
 *       20  len payload
 *
 * Why this shape:
 *   - The first byte 0x89 is not printable ASCII and never starts a RESP
 *     request, so a listener can tell a framed peer from a raw client by the
 *     first byte alone (same trick as the PNG signature).
 *   - kind and len are mixed into the checksum seed, so a flipped bit in the
 *     kind or length field fails verification even though the header itself
 *     is not hashed; magic, version and reserved are checked for exact values.
 *     Every header byte is therefore protected.
 *   - The header is validated (and the length bounded) before any payload is
 *     buffered, so a corrupt or hostile length never makes the reader
 *     allocate more than the configured maximum.
 *
 * All fields are encoded byte by byte (nokv/util/coding.h), never by copying
 * a struct. Version 1 is the only version; a receiver rejects any other.
 */
#ifndef NK_PROTO_FRAME_H
#define NK_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define NK_FRAME_HEADER_SIZE 20u
#define NK_FRAME_MAGIC0 0x89u /* the sniffing byte */
#define NK_FRAME_VERSION 1u

typedef struct nk_frame_header {
    uint8_t kind;      /* 1..255 */
    uint32_t len;      /* payload bytes */
    uint64_t checksum; /* as on the wire */
} nk_frame_header;

/* The checksum of a payload of `len` bytes sent with `kind` (see above). */
uint64_t nk_frame_checksum(uint8_t kind, const void *payload, uint32_t len);

/*
 * Write the 20-byte header for `payload` (len bytes, kind 1..255) into out.
 * The caller guarantees kind != 0 and len within its own limit; this function
 * only encodes.
 */
void nk_frame_encode_header(uint8_t out[NK_FRAME_HEADER_SIZE], uint8_t kind, const void *payload,
                            uint32_t len);

/*
 * Decode and validate a header. Returns NK_OK and fills *out, NK_EPROTO on a
 * bad magic, version, reserved field or kind 0, NK_ETOOBIG if len > max_len.
 * The checksum is not verified here (the payload has not arrived yet).
 */
int nk_frame_decode_header(const uint8_t in[NK_FRAME_HEADER_SIZE], uint32_t max_len,
                           nk_frame_header *out);

/* Verify a payload against a decoded header: NK_OK or NK_EPROTO on mismatch. */
int nk_frame_verify(const nk_frame_header *h, const void *payload);

#endif /* NK_PROTO_FRAME_H */
