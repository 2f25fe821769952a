/*
 * wire.c - message envelope and bounds-checked field codec (see wire.h).
 */
#include "nokv/proto/wire.h"

#include <string.h>

#include <xxhash.h>

#include "nokv/util/coding.h"
#include "nokv/util/err.h"

#define WIRE_HDR 3u
#define WIRE_TRAILER 8u

int nk_wire_begin(nk_buf *b, uint16_t magic, uint8_t version)
{
    uint8_t h[WIRE_HDR];
    nk_put_u16(h, magic);
    h[2] = version;
    nk_buf_clear(b);
    return nk_buf_append(b, h, sizeof(h));
}

int nk_wire_end(nk_buf *b)
{
    if (b->len < WIRE_HDR) {
        return NK_EINVAL;
    }
    uint16_t magic = nk_get_u16(b->data);
    return nk_buf_append_u64(b, XXH64(b->data, b->len, magic));
}

int nk_wire_put_u8(nk_buf *b, uint8_t v)
{
    return nk_buf_append_u8(b, v);
}
int nk_wire_put_u64(nk_buf *b, uint64_t v)
{
    return nk_buf_append_u64(b, v);
}
int nk_wire_put_uvar(nk_buf *b, uint64_t v)
{
    return nk_buf_append_varint(b, v);
}

int nk_wire_put_bytes(nk_buf *b, const void *p, size_t len)
{
    int rc = nk_buf_append_varint(b, len);
    return rc == NK_OK && len > 0 ? nk_buf_append(b, p, len) : rc;
}

int nk_wire_put_str(nk_buf *b, const char *s)
{
    return nk_wire_put_bytes(b, s, strlen(s));
}

int nk_wire_open(nk_wire_rd *r, const uint8_t *buf, size_t len, uint16_t magic, uint8_t max_version,
                 uint8_t *version)
{
    r->p = r->end = NULL;
    r->bad = true;
    if (len < WIRE_HDR + WIRE_TRAILER || nk_get_u16(buf) != magic) {
        return NK_EPROTO;
    }
    if (buf[2] == 0 || buf[2] > max_version) {
        return NK_EPROTO;
    }
    size_t body_end = len - WIRE_TRAILER;
    if (XXH64(buf, body_end, magic) != nk_get_u64(buf + body_end)) {
        return NK_ECORRUPT;
    }
    if (version != NULL) {
        *version = buf[2];
    }
    r->p = buf + WIRE_HDR;
    r->end = buf + body_end;
    r->bad = false;
    return NK_OK;
}

static bool need(nk_wire_rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

uint8_t nk_wire_get_u8(nk_wire_rd *r)
{
    if (!need(r, 1)) {
        return 0;
    }
    return *r->p++;
}

uint64_t nk_wire_get_u64(nk_wire_rd *r)
{
    if (!need(r, 8)) {
        return 0;
    }
    uint64_t v = nk_get_u64(r->p);
    r->p += 8;
    return v;
}

uint64_t nk_wire_get_uvar(nk_wire_rd *r)
{
    uint64_t v = 0;
    if (r->bad) {
        return 0;
    }
    size_t n = nk_get_varint64(r->p, r->end, &v);
    if (n == 0) {
        r->bad = true;
        return 0;
    }
    r->p += n;
    return v;
}

nk_slice nk_wire_get_bytes(nk_wire_rd *r, size_t max_len)
{
    nk_slice s = {NULL, 0};
    uint64_t len = nk_wire_get_uvar(r);
    if (r->bad || len > max_len || !need(r, (size_t)len)) {
        r->bad = true;
        return s;
    }
    s.data = r->p;
    s.len = (size_t)len;
    r->p += len;
    return s;
}

void nk_wire_get_str(nk_wire_rd *r, char *out, size_t cap)
{
    out[0] = '\0';
    if (cap == 0) {
        r->bad = true;
        return;
    }
    nk_slice s = nk_wire_get_bytes(r, cap - 1);
    if (r->bad) {
        return;
    }
    if (s.len > 0 && memchr(s.data, 0, s.len) != NULL) {
        r->bad = true;
        return;
    }
    if (s.len > 0) {
        memcpy(out, s.data, s.len);
    }
    out[s.len] = '\0';
}

int nk_wire_close(const nk_wire_rd *r)
{
    return (!r->bad && r->p == r->end) ? NK_OK : NK_EPROTO;
}
