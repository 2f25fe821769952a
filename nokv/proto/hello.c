/*
 * hello.c - HELLO frame codec (see hello.h).
 */
#include "nokv/proto/hello.h"

#include <string.h>

#include "nokv/proto/kinds.h"
#include "nokv/proto/wire.h"
#include "nokv/util/err.h"

#define HELLO_MAGIC 0x4c48u /* "HL" */
#define HELLO_VERSION 2u

int nk_hello_encode(const nk_hello *h, nk_buf *out)
{
    /* What the decoder would refuse is a caller bug: say so here, not at
     * the far end of a connection. */
    if (h->service < NK_SERVICE_RAFT || h->service > NK_SERVICE_COORD ||
        memchr(h->addr, 0, sizeof(h->addr)) == NULL ||
        memchr(h->client_addr, 0, sizeof(h->client_addr)) == NULL) {
        return NK_EINVAL;
    }
    int rc = nk_wire_begin(out, HELLO_MAGIC, HELLO_VERSION);
    rc = rc ? rc : nk_wire_put_u8(out, h->service);
    rc = rc ? rc : nk_wire_put_uvar(out, h->cluster_id);
    rc = rc ? rc : nk_wire_put_uvar(out, h->store_id);
    rc = rc ? rc : nk_wire_put_str(out, h->addr);
    rc = rc ? rc : nk_wire_put_str(out, h->client_addr);
    return rc ? rc : nk_wire_end(out);
}

int nk_hello_decode(const uint8_t *buf, size_t len, nk_hello *h)
{
    nk_wire_rd rd;
    memset(h, 0, sizeof(*h));
    uint8_t version = 0;
    int rc = nk_wire_open(&rd, buf, len, HELLO_MAGIC, HELLO_VERSION, &version);
    if (rc != NK_OK) {
        return rc;
    }
    h->service = nk_wire_get_u8(&rd);
    h->cluster_id = nk_wire_get_uvar(&rd);
    h->store_id = nk_wire_get_uvar(&rd);
    nk_wire_get_str(&rd, h->addr, sizeof(h->addr));
    if (version >= 2) {
        nk_wire_get_str(&rd, h->client_addr, sizeof(h->client_addr));
    }
    rc = nk_wire_close(&rd);
    if (rc == NK_OK && (h->service < NK_SERVICE_RAFT || h->service > NK_SERVICE_COORD)) {
        rc = NK_EPROTO;
    }
    if (rc != NK_OK) {
        memset(h, 0, sizeof(*h)); /* nothing half-decoded is ever trusted */
    }
    return rc;
}
