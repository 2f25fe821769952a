/*
 * raftmsg.c - codec of the store-to-store raft message envelope (raftmsg.h).
 */
#include "nokv/proto/raftmsg.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/rt.h"

#define RAFTMSG_MAGIC 0x4d52u /* "RM" */
#define RAFTMSG_VERSION 2u

int nk_raftmsg_encode(const nk_raftmsg_hdr *h, const nk_raft_msg *m, nk_buf *out)
{
    size_t cap = nk_raft_msg_encoded_size(m);
    if (cap > NK_FRAME_MAX - 128) {
        return NK_ETOOBIG;
    }
    uint8_t *body = malloc(cap);
    if (body == NULL) {
        return NK_ENOMEM;
    }
    size_t used = 0;
    int rc = nk_raft_msg_encode(m, body, cap, &used);
    rc = rc ? rc : nk_wire_begin(out, RAFTMSG_MAGIC, RAFTMSG_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, h->region_id);
    rc = rc ? rc : nk_wire_put_uvar(out, h->from_store);
    rc = rc ? rc : nk_wire_put_uvar(out, h->to_store);
    rc = rc ? rc : nk_wire_put_uvar(out, h->epoch.version);
    rc = rc ? rc : nk_wire_put_uvar(out, h->epoch.conf_version);
    rc = rc ? rc : nk_wire_put_uvar(out, h->compact_hint);
    rc = rc ? rc : nk_wire_put_bytes(out, body, used);
    rc = rc ? rc : nk_wire_end(out);
    free(body);
    return rc;
}

int nk_raftmsg_decode(const uint8_t *buf, size_t len, nk_raftmsg_hdr *h, nk_raft_msg *m)
{
    nk_wire_rd rd;
    memset(h, 0, sizeof(*h));
    memset(m, 0, sizeof(*m));
    uint8_t version = 0;
    int rc = nk_wire_open(&rd, buf, len, RAFTMSG_MAGIC, RAFTMSG_VERSION, &version);
    if (rc != NK_OK) {
        return rc;
    }
    h->region_id = nk_wire_get_uvar(&rd);
    h->from_store = nk_wire_get_uvar(&rd);
    h->to_store = nk_wire_get_uvar(&rd);
    h->epoch.version = nk_wire_get_uvar(&rd);
    h->epoch.conf_version = nk_wire_get_uvar(&rd);
    if (version >= 2) {
        h->compact_hint = nk_wire_get_uvar(&rd);
    }
    nk_slice body = nk_wire_get_bytes(&rd, NK_FRAME_MAX);
    rc = nk_wire_close(&rd);
    if (rc != NK_OK || h->region_id == 0) {
        return NK_EPROTO;
    }
    return nk_raft_msg_decode(body.data, body.len, m);
}
