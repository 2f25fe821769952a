/*
 * wire.h - the envelope and field codec of every message in nokv/proto/.
 *
 * A message is encoded as
 *
 *     magic    u16   per message type (e.g. 0x4352 "RC" for a coordinator request)
 *     version  u8    per message type; a receiver rejects versions it does not know
 *     body     ...   fields written with the nk_wire_put_* calls below
 *     checksum u64   XXH64(magic .. end of body, seed = magic)
 *
 * and is carried as one frame (frame.h). The frame has its own checksum; the
 * envelope's exists so a payload that is well formed for the frame layer but
 * belongs to another message type, or was produced by a buggy encoder, is
 * refused before any field is trusted.
 *
 * The reader is bounds-checked: every get fails (and the reader stays failed)
 * past the end, on a varint that does not fit, or on a length above the
 * caller's bound, so a hostile frame can neither read out of bounds nor make
 * the decoder allocate more than the bound. Decoders return NK_EPROTO for any
 * structural problem and NK_ECORRUPT for a checksum mismatch.
 */
#ifndef NK_PROTO_WIRE_H
#define NK_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"

/* ------------------------------------------------------------- writer --- */

/* Start a message: clears b and writes magic + version. NK_OK / NK_ENOMEM. */
int nk_wire_begin(nk_buf *b, uint16_t magic, uint8_t version);
/* Append the checksum trailer. Call once, after the last field. */
int nk_wire_end(nk_buf *b);

int nk_wire_put_u8(nk_buf *b, uint8_t v);
int nk_wire_put_u64(nk_buf *b, uint64_t v);                  /* fixed 8 bytes, little-endian */
int nk_wire_put_uvar(nk_buf *b, uint64_t v);                 /* varint */
int nk_wire_put_bytes(nk_buf *b, const void *p, size_t len); /* varint len + bytes */
int nk_wire_put_str(nk_buf *b, const char *s);               /* as bytes, without the NUL */

/* ------------------------------------------------------------- reader --- */

typedef struct nk_wire_rd {
    const uint8_t *p;
    const uint8_t *end; /* end of the body (the trailer is excluded) */
    bool bad;           /* a get failed: every later get fails too */
} nk_wire_rd;

/*
 * Check the envelope of buf[0..len): magic, version <= max_version, checksum.
 * On NK_OK, *version holds the version and r reads the body. NK_EPROTO (too
 * short, wrong magic, unknown version) or NK_ECORRUPT (checksum).
 */
int nk_wire_open(nk_wire_rd *r, const uint8_t *buf, size_t len, uint16_t magic, uint8_t max_version,
                 uint8_t *version);

uint8_t nk_wire_get_u8(nk_wire_rd *r);
uint64_t nk_wire_get_u64(nk_wire_rd *r);
uint64_t nk_wire_get_uvar(nk_wire_rd *r);
/* A length-prefixed byte string of at most max_len bytes, borrowed from the
 * buffer (valid as long as it is). */
nk_slice nk_wire_get_bytes(nk_wire_rd *r, size_t max_len);
/* Copy a string of at most cap-1 bytes into out, NUL-terminated; a string
 * that holds a NUL byte or does not fit marks the reader bad. */
void nk_wire_get_str(nk_wire_rd *r, char *out, size_t cap);

/* NK_OK when every get succeeded and the body was consumed exactly (trailing
 * bytes are an error: an older decoder must not silently skip new fields of
 * the same version). NK_EPROTO otherwise. */
int nk_wire_close(const nk_wire_rd *r);

#endif /* NK_PROTO_WIRE_H */
