/*
 * ikey.h - internal keys: what the LSM actually sorts.
 *
 * An internal key is the user key followed by an 8-byte trailer:
 *
 *     internal key = user key bytes | trailer u64 little-endian
 *     trailer      = (seq << 8) | type
 *
 * seq is the engine-wide sequence number of the write (56 bits, 1-based;
 * 0 is reserved for "older than everything"); type says what the entry means.
 *
 * Ordering (nk_ikey_cmp): user key bytewise ascending, then trailer
 * descending, i.e. newer sequence numbers first. So for one user key the
 * newest version is met first by a forward scan, and a read at snapshot S is
 * a seek to nk_ikey(user key, S, NK_KT_SEEK): the first entry at or after it
 * with the same user key is the newest version visible at S.
 *
 * Types are part of the on-disk format: values are stable; add new types at
 * the end and raise NK_KT_SEEK to the largest one so seeks stay correct.
 */
#ifndef NK_ENGINE_IKEY_H
#define NK_ENGINE_IKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/engine/slice.h"

typedef enum nk_ktype {
    NK_KT_DELETE = 0, /* tombstone: the key is absent at this seq */
    NK_KT_PUT = 1,    /* value */
} nk_ktype;

/* The largest type: a lookup key built with it sorts before every entry of
 * the same user key and seq, so a seek never skips a visible version. */
#define NK_KT_SEEK NK_KT_PUT

#define NK_IKEY_TRAILER 8u
/* Largest usable sequence number (56 bits). Also the "see everything"
 * snapshot for reads. */
#define NK_SEQ_MAX ((UINT64_C(1) << 56) - 1)

static inline bool nk_ktype_valid(unsigned t)
{
    return t <= NK_KT_PUT;
}

static inline uint64_t nk_ikey_trailer(uint64_t seq, nk_ktype type)
{
    return (seq << 8) | (uint64_t)type;
}

/* Length of the internal key for a user key of ulen bytes. */
static inline size_t nk_ikey_len(size_t ulen)
{
    return ulen + NK_IKEY_TRAILER;
}

/* Write the internal key into dst (room for nk_ikey_len(ulen)); returns its
 * length. Requires seq <= NK_SEQ_MAX. */
size_t nk_ikey_encode(uint8_t *dst, const uint8_t *ukey, size_t ulen, uint64_t seq,
                      nk_ktype type);

/* Append the internal key to a buffer. NK_OK or NK_ENOMEM. */
int nk_ikey_append(nk_buf *b, const uint8_t *ukey, size_t ulen, uint64_t seq, nk_ktype type);

/* A decoded internal key; ukey borrows from the encoded bytes. */
typedef struct nk_ikey {
    nk_slice ukey;
    uint64_t seq;
    nk_ktype type;
} nk_ikey;

/* Decode. NK_ECORRUPT when shorter than the trailer or the type is unknown:
 * such a key never comes from this engine, so it is damage, not input. */
int nk_ikey_parse(const uint8_t *p, size_t len, nk_ikey *out);

/* The user key part (len must be >= NK_IKEY_TRAILER; check with parse first
 * for untrusted bytes). */
static inline nk_slice nk_ikey_user(const uint8_t *p, size_t len)
{
    return nk_slice_make(p, len - NK_IKEY_TRAILER);
}

/* Internal key order (see above). Both keys must be at least
 * NK_IKEY_TRAILER long; shorter inputs compare bytewise, so a damaged key
 * still yields a total order instead of undefined behaviour. */
int nk_ikey_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif /* NK_ENGINE_IKEY_H */
