/*
 * region.c - region descriptor helpers and codec (see region.h).
 */
#include "nokv/proto/region.h"

#include <string.h>

#define REGION_MAGIC 0x4752u /* "RG" */
#define REGION_VERSION 1u

void nk_region_init_full(nk_region *r, uint64_t id)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->epoch.version = 1;
    r->epoch.conf_version = 1;
}

int nk_region_set_range(nk_region *r, const void *start, size_t slen, const void *end, size_t elen)
{
    if (slen > NK_REGION_KEY_MAX || elen > NK_REGION_KEY_MAX) {
        return NK_ETOOBIG;
    }
    if (slen > 0) {
        memcpy(r->start, start, slen);
    }
    if (elen > 0) {
        memcpy(r->end, end, elen);
    }
    r->start_len = (uint32_t)slen;
    r->end_len = (uint32_t)elen;
    return NK_OK;
}

bool nk_region_contains(const nk_region *r, const void *key, size_t klen)
{
    if (nk_bytes_cmp(key, klen, r->start, r->start_len) < 0) {
        return false;
    }
    return r->end_len == 0 || nk_bytes_cmp(key, klen, r->end, r->end_len) < 0;
}

const nk_region_peer *nk_region_peer_by_id(const nk_region *r, uint64_t peer_id)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].peer_id == peer_id) {
            return &r->peers[i];
        }
    }
    return NULL;
}

const nk_region_peer *nk_region_peer_on_store(const nk_region *r, uint64_t store_id)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].store_id == store_id) {
            return &r->peers[i];
        }
    }
    return NULL;
}

int nk_region_peer_set(nk_region *r, const nk_region_peer *p)
{
    uint32_t i = 0;
    for (uint32_t k = 0; k < r->n_peers; k++) {
        if (r->peers[k].store_id == p->store_id && r->peers[k].peer_id != p->peer_id) {
            return NK_EEXIST;
        }
    }
    while (i < r->n_peers && r->peers[i].peer_id < p->peer_id) {
        i++;
    }
    if (i < r->n_peers && r->peers[i].peer_id == p->peer_id) {
        r->peers[i] = *p;
        return NK_OK;
    }
    if (r->n_peers >= NK_REGION_MAX_PEERS) {
        return NK_ERANGE;
    }
    memmove(&r->peers[i + 1], &r->peers[i], (r->n_peers - i) * sizeof(r->peers[0]));
    r->peers[i] = *p;
    r->n_peers++;
    return NK_OK;
}

int nk_region_peer_remove(nk_region *r, uint64_t peer_id)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].peer_id == peer_id) {
            memmove(&r->peers[i], &r->peers[i + 1], (r->n_peers - i - 1) * sizeof(r->peers[0]));
            r->n_peers--;
            return NK_OK;
        }
    }
    return NK_ENOENT;
}

void nk_region_conf(const nk_region *r, nk_raft_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    for (uint32_t i = 0; i < r->n_peers; i++) {
        (void)nk_raft_conf_set(conf, r->peers[i].peer_id, r->peers[i].role);
    }
}

int nk_region_validate(const nk_region *r, nk_errbuf *eb)
{
    if (r->id == 0) {
        nk_errbuf_set(eb, "region id 0 is reserved");
        return NK_EINVAL;
    }
    if (r->start_len > NK_REGION_KEY_MAX || r->end_len > NK_REGION_KEY_MAX) {
        nk_errbuf_set(eb, "region %llu: boundary longer than %u bytes", (unsigned long long)r->id,
                      NK_REGION_KEY_MAX);
        return NK_EINVAL;
    }
    if (r->end_len > 0 && nk_bytes_cmp(r->start, r->start_len, r->end, r->end_len) >= 0) {
        nk_errbuf_set(eb, "region %llu: start key is not below end key", (unsigned long long)r->id);
        return NK_EINVAL;
    }
    if (r->n_peers > NK_REGION_MAX_PEERS) {
        nk_errbuf_set(eb, "region %llu: %u peers (at most %u)", (unsigned long long)r->id,
                      r->n_peers, NK_REGION_MAX_PEERS);
        return NK_EINVAL;
    }
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const nk_region_peer *p = &r->peers[i];
        if (p->peer_id == 0 || p->store_id == 0 ||
            (p->role != NK_RAFT_VOTER && p->role != NK_RAFT_LEARNER)) {
            nk_errbuf_set(eb, "region %llu: peer %u has a zero id or an unknown role",
                          (unsigned long long)r->id, i);
            return NK_EINVAL;
        }
        if (i > 0 && r->peers[i - 1].peer_id >= p->peer_id) {
            nk_errbuf_set(eb, "region %llu: peers not sorted by id", (unsigned long long)r->id);
            return NK_EINVAL;
        }
        for (uint32_t k = 0; k < i; k++) {
            if (r->peers[k].store_id == p->store_id) {
                nk_errbuf_set(eb, "region %llu: store %llu hosts two peers",
                              (unsigned long long)r->id, (unsigned long long)p->store_id);
                return NK_EINVAL;
            }
        }
    }
    return NK_OK;
}

int nk_region_put(nk_buf *b, const nk_region *r)
{
    /* Never put on the wire what every decoder refuses; this also bounds
     * the reads of start/end/peers by their arrays. */
    if (nk_region_validate(r, NULL) != NK_OK) {
        return NK_EINVAL;
    }
    int rc = nk_wire_put_uvar(b, r->id);
    rc = rc ? rc : nk_wire_put_bytes(b, r->start, r->start_len);
    rc = rc ? rc : nk_wire_put_bytes(b, r->end, r->end_len);
    rc = rc ? rc : nk_wire_put_uvar(b, r->epoch.version);
    rc = rc ? rc : nk_wire_put_uvar(b, r->epoch.conf_version);
    rc = rc ? rc : nk_wire_put_uvar(b, r->n_peers);
    for (uint32_t i = 0; rc == NK_OK && i < r->n_peers; i++) {
        rc = nk_wire_put_uvar(b, r->peers[i].store_id);
        rc = rc ? rc : nk_wire_put_uvar(b, r->peers[i].peer_id);
        rc = rc ? rc : nk_wire_put_u8(b, r->peers[i].role);
    }
    return rc;
}

int nk_region_get(nk_wire_rd *rd, nk_region *r)
{
    memset(r, 0, sizeof(*r));
    r->id = nk_wire_get_uvar(rd);
    nk_slice s = nk_wire_get_bytes(rd, NK_REGION_KEY_MAX);
    nk_slice e = nk_wire_get_bytes(rd, NK_REGION_KEY_MAX);
    r->epoch.version = nk_wire_get_uvar(rd);
    r->epoch.conf_version = nk_wire_get_uvar(rd);
    uint64_t n = nk_wire_get_uvar(rd);
    if (rd->bad || n > NK_REGION_MAX_PEERS) {
        rd->bad = true;
        return NK_EPROTO;
    }
    r->n_peers = (uint32_t)n;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        r->peers[i].store_id = nk_wire_get_uvar(rd);
        r->peers[i].peer_id = nk_wire_get_uvar(rd);
        r->peers[i].role = nk_wire_get_u8(rd);
    }
    if (rd->bad || nk_region_set_range(r, s.data, s.len, e.data, e.len) != NK_OK ||
        nk_region_validate(r, NULL) != NK_OK) {
        rd->bad = true;
        return NK_EPROTO;
    }
    return NK_OK;
}

int nk_region_encode(const nk_region *r, nk_buf *out)
{
    int rc = nk_wire_begin(out, REGION_MAGIC, REGION_VERSION);
    rc = rc ? rc : nk_region_put(out, r);
    return rc ? rc : nk_wire_end(out);
}

int nk_region_decode(const uint8_t *buf, size_t len, nk_region *r)
{
    nk_wire_rd rd;
    int rc = nk_wire_open(&rd, buf, len, REGION_MAGIC, REGION_VERSION, NULL);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_region_get(&rd, r);
    return rc ? rc : nk_wire_close(&rd);
}
