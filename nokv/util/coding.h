/*
 * coding.h - explicit little-endian encoding of integers and varints.
 *
 * On-disk and wire structures are always encoded field by field through
 * these helpers, never by writing a C struct: no padding bytes, no host
 * byte order, no uninitialised memory reaches a file, a frame or a hash.
 */
#ifndef NK_UTIL_CODING_H
#define NK_UTIL_CODING_H

#include <stddef.h>
#include <stdint.h>

static inline void nk_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void nk_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void nk_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint16_t nk_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t nk_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t nk_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Maximum bytes of an encoded varint64. */
#define NK_VARINT64_MAX 10

/* Encode v as a LEB128 varint into p (room for NK_VARINT64_MAX); returns bytes written. */
static inline size_t nk_put_varint64(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/*
 * Decode a varint from [p, end). Returns bytes consumed, or 0 when the input
 * is truncated or longer than 10 bytes (a corrupt encoding).
 */
static inline size_t nk_get_varint64(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < NK_VARINT64_MAX && p + i < end; i++) {
        uint64_t b = p[i];
        if (i == 9 && b > 1) {
            return 0; /* would overflow 64 bits */
        }
        v |= (b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

static inline size_t nk_varint64_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

#endif /* NK_UTIL_CODING_H */
