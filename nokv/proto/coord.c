/*
 * coord.c - coordinator request/response codec (see coord.h).
 */
#include "nokv/proto/coord.h"

#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/util/err.h"

#define REQ_MAGIC 0x4352u    /* "RC" */
#define RESP_MAGIC 0x4350u   /* "PC" */
#define REPORT_MAGIC 0x5243u /* "CR" */
#define COORD_VERSION 1u

const char *nk_coord_op_name(uint8_t op)
{
    switch (op) {
    case NK_COORD_STORE_HEARTBEAT:
        return "StoreHeartbeat";
    case NK_COORD_REGION_REPORT:
        return "RegionReport";
    case NK_COORD_GET_REGION_BY_KEY:
        return "GetRegionByKey";
    case NK_COORD_GET_REGION:
        return "GetRegion";
    case NK_COORD_GET_STORE:
        return "GetStore";
    case NK_COORD_LIST_STORES:
        return "ListStores";
    case NK_COORD_LIST_REGIONS:
        return "ListRegions";
    case NK_COORD_ALLOC_ID:
        return "AllocID";
    case NK_COORD_TSO:
        return "Tso";
    default:
        return "unknown";
    }
}

const char *nk_coord_code_name(uint8_t code)
{
    switch (code) {
    case NK_COORD_OK:
        return "ok";
    case NK_COORD_NOT_FOUND:
        return "not found";
    case NK_COORD_NOT_READY:
        return "not ready";
    case NK_COORD_BUSY:
        return "busy";
    case NK_COORD_INVALID:
        return "invalid request";
    default:
        return "unknown code";
    }
}

int nk_coord_code_err(uint8_t code)
{
    switch (code) {
    case NK_COORD_OK:
        return NK_OK;
    case NK_COORD_NOT_FOUND:
        return NK_ENOENT;
    case NK_COORD_NOT_READY:
        return NK_EAGAIN;
    case NK_COORD_BUSY:
        return NK_EBUSY;
    case NK_COORD_INVALID:
        return NK_EINVAL;
    default:
        return NK_EPROTO;
    }
}

static bool op_valid(uint64_t op)
{
    return op >= NK_COORD_STORE_HEARTBEAT && op <= NK_COORD_TSO;
}

/* ------------------------------------------------------------ report --- */

int nk_coord_report_put(nk_buf *b, const nk_coord_region_report *r)
{
    int rc = nk_region_put(b, &r->region);
    rc = rc ? rc : nk_wire_put_uvar(b, r->leader_peer_id);
    rc = rc ? rc : nk_wire_put_uvar(b, r->leader_store_id);
    rc = rc ? rc : nk_wire_put_uvar(b, r->term);
    return rc ? rc : nk_wire_put_uvar(b, r->applied_index);
}

int nk_coord_report_get(nk_wire_rd *rd, nk_coord_region_report *r)
{
    int rc = nk_region_get(rd, &r->region);
    r->leader_peer_id = nk_wire_get_uvar(rd);
    r->leader_store_id = nk_wire_get_uvar(rd);
    r->term = nk_wire_get_uvar(rd);
    r->applied_index = nk_wire_get_uvar(rd);
    if (rc != NK_OK || rd->bad) {
        rd->bad = true;
        return NK_EPROTO;
    }
    /* A named leader must be one of the region's peers on the named store. */
    if (r->leader_peer_id != 0) {
        const nk_region_peer *p = nk_region_peer_by_id(&r->region, r->leader_peer_id);
        if (p == NULL || p->store_id != r->leader_store_id) {
            rd->bad = true;
            return NK_EPROTO;
        }
    } else if (r->leader_store_id != 0) {
        rd->bad = true;
        return NK_EPROTO;
    }
    return NK_OK;
}

int nk_coord_report_encode(const nk_coord_region_report *r, nk_buf *out)
{
    int rc = nk_wire_begin(out, REPORT_MAGIC, COORD_VERSION);
    rc = rc ? rc : nk_coord_report_put(out, r);
    return rc ? rc : nk_wire_end(out);
}

int nk_coord_report_decode(const uint8_t *buf, size_t len, nk_coord_region_report *r)
{
    nk_wire_rd rd;
    memset(r, 0, sizeof(*r));
    int rc = nk_wire_open(&rd, buf, len, REPORT_MAGIC, COORD_VERSION, NULL);
    rc = rc ? rc : nk_coord_report_get(&rd, r);
    return rc ? rc : nk_wire_close(&rd);
}

/* ----------------------------------------------------------- request --- */

int nk_coord_req_encode(const nk_coord_req *q, nk_buf *out)
{
    if (!op_valid(q->op)) {
        return NK_EINVAL;
    }
    int rc = nk_wire_begin(out, REQ_MAGIC, COORD_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, q->id);
    rc = rc ? rc : nk_wire_put_u8(out, q->op);
    if (rc != NK_OK) {
        return rc;
    }
    switch (q->op) {
    case NK_COORD_STORE_HEARTBEAT:
        rc = nk_wire_put_uvar(out, q->hb.store_id);
        rc = rc ? rc : nk_wire_put_str(out, q->hb.addr);
        rc = rc ? rc : nk_wire_put_uvar(out, q->hb.region_count);
        rc = rc ? rc : nk_wire_put_uvar(out, q->hb.leader_count);
        rc = rc ? rc : nk_wire_put_uvar(out, q->hb.capacity);
        rc = rc ? rc : nk_wire_put_uvar(out, q->hb.available);
        break;
    case NK_COORD_REGION_REPORT:
        rc = nk_coord_report_put(out, &q->report);
        break;
    case NK_COORD_GET_REGION_BY_KEY:
        if (q->key_len > NK_COORD_KEY_MAX) {
            return NK_ETOOBIG;
        }
        rc = nk_wire_put_bytes(out, q->key, q->key_len);
        break;
    case NK_COORD_GET_REGION:
        rc = nk_wire_put_uvar(out, q->region_id);
        break;
    case NK_COORD_GET_STORE:
        rc = nk_wire_put_uvar(out, q->store_id);
        break;
    case NK_COORD_LIST_STORES:
        break;
    case NK_COORD_LIST_REGIONS:
        if (q->key_len > NK_COORD_KEY_MAX) {
            return NK_ETOOBIG;
        }
        rc = nk_wire_put_bytes(out, q->key, q->key_len);
        rc = rc ? rc : nk_wire_put_uvar(out, q->limit);
        break;
    case NK_COORD_ALLOC_ID:
    case NK_COORD_TSO:
        rc = nk_wire_put_uvar(out, q->count);
        break;
    default:
        return NK_EINVAL;
    }
    return rc ? rc : nk_wire_end(out);
}

int nk_coord_req_decode(const uint8_t *buf, size_t len, nk_coord_req *q)
{
    nk_wire_rd rd;
    memset(q, 0, sizeof(*q));
    int rc = nk_wire_open(&rd, buf, len, REQ_MAGIC, COORD_VERSION, NULL);
    if (rc != NK_OK) {
        return rc;
    }
    q->id = nk_wire_get_uvar(&rd);
    q->op = nk_wire_get_u8(&rd);
    if (rd.bad || !op_valid(q->op)) {
        return NK_EPROTO;
    }
    nk_slice k;
    switch (q->op) {
    case NK_COORD_STORE_HEARTBEAT:
        q->hb.store_id = nk_wire_get_uvar(&rd);
        nk_wire_get_str(&rd, q->hb.addr, sizeof(q->hb.addr));
        q->hb.region_count = nk_wire_get_uvar(&rd);
        q->hb.leader_count = nk_wire_get_uvar(&rd);
        q->hb.capacity = nk_wire_get_uvar(&rd);
        q->hb.available = nk_wire_get_uvar(&rd);
        break;
    case NK_COORD_REGION_REPORT:
        (void)nk_coord_report_get(&rd, &q->report);
        break;
    case NK_COORD_GET_REGION_BY_KEY:
        k = nk_wire_get_bytes(&rd, NK_COORD_KEY_MAX);
        q->key = k.data;
        q->key_len = k.len;
        break;
    case NK_COORD_GET_REGION:
        q->region_id = nk_wire_get_uvar(&rd);
        break;
    case NK_COORD_GET_STORE:
        q->store_id = nk_wire_get_uvar(&rd);
        break;
    case NK_COORD_LIST_STORES:
        break;
    case NK_COORD_LIST_REGIONS:
        k = nk_wire_get_bytes(&rd, NK_COORD_KEY_MAX);
        q->key = k.data;
        q->key_len = k.len;
        q->limit = nk_wire_get_uvar(&rd);
        break;
    default: /* ALLOC_ID, TSO */
        q->count = nk_wire_get_uvar(&rd);
        break;
    }
    return nk_wire_close(&rd);
}

/* ---------------------------------------------------------- response --- */

static int put_region_info(nk_buf *b, const nk_coord_region_info *ri)
{
    int rc = nk_coord_report_put(b, &ri->r);
    return rc ? rc : nk_wire_put_str(b, ri->leader_addr);
}

static void get_region_info(nk_wire_rd *rd, nk_coord_region_info *ri)
{
    (void)nk_coord_report_get(rd, &ri->r);
    nk_wire_get_str(rd, ri->leader_addr, sizeof(ri->leader_addr));
}

static int put_store_info(nk_buf *b, const nk_coord_store_info *si)
{
    int rc = nk_wire_put_uvar(b, si->store_id);
    rc = rc ? rc : nk_wire_put_str(b, si->addr);
    rc = rc ? rc : nk_wire_put_u8(b, si->alive ? 1 : 0);
    rc = rc ? rc : nk_wire_put_uvar(b, si->heartbeat_age_ms);
    rc = rc ? rc : nk_wire_put_uvar(b, si->region_count);
    rc = rc ? rc : nk_wire_put_uvar(b, si->leader_count);
    rc = rc ? rc : nk_wire_put_uvar(b, si->capacity);
    return rc ? rc : nk_wire_put_uvar(b, si->available);
}

static bool get_bool(nk_wire_rd *rd)
{
    uint8_t v = nk_wire_get_u8(rd);
    if (v > 1) {
        rd->bad = true;
    }
    return v == 1;
}

static void get_store_info(nk_wire_rd *rd, nk_coord_store_info *si)
{
    si->store_id = nk_wire_get_uvar(rd);
    nk_wire_get_str(rd, si->addr, sizeof(si->addr));
    si->alive = get_bool(rd);
    si->heartbeat_age_ms = nk_wire_get_uvar(rd);
    si->region_count = nk_wire_get_uvar(rd);
    si->leader_count = nk_wire_get_uvar(rd);
    si->capacity = nk_wire_get_uvar(rd);
    si->available = nk_wire_get_uvar(rd);
}

int nk_coord_resp_encode(const nk_coord_resp *p, nk_buf *out)
{
    if (!op_valid(p->op) || p->code > NK_COORD_INVALID) {
        return NK_EINVAL;
    }
    int rc = nk_wire_begin(out, RESP_MAGIC, COORD_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, p->id);
    rc = rc ? rc : nk_wire_put_u8(out, p->op);
    rc = rc ? rc : nk_wire_put_u8(out, p->code);
    rc = rc ? rc : nk_wire_put_bytes(out, p->msg, strnlen(p->msg, NK_COORD_MSG_MAX - 1));
    if (rc != NK_OK || p->code != NK_COORD_OK) {
        return rc ? rc : nk_wire_end(out);
    }
    switch (p->op) {
    case NK_COORD_STORE_HEARTBEAT:
        rc = nk_wire_put_u8(out, p->accepted ? 1 : 0);
        rc = rc ? rc : nk_wire_put_u8(out, p->need_full_report ? 1 : 0);
        break;
    case NK_COORD_REGION_REPORT:
        rc = nk_wire_put_u8(out, p->accepted ? 1 : 0);
        break;
    case NK_COORD_GET_REGION_BY_KEY:
    case NK_COORD_GET_REGION:
        rc = put_region_info(out, &p->region);
        break;
    case NK_COORD_GET_STORE:
        rc = put_store_info(out, &p->store);
        break;
    case NK_COORD_LIST_STORES:
        if (p->n_stores > NK_COORD_MAX_STORES) {
            return NK_ETOOBIG;
        }
        rc = nk_wire_put_uvar(out, p->n_stores);
        for (size_t i = 0; rc == NK_OK && i < p->n_stores; i++) {
            rc = put_store_info(out, &p->stores[i]);
        }
        break;
    case NK_COORD_LIST_REGIONS:
        if (p->n_regions > NK_COORD_LIST_MAX) {
            return NK_ETOOBIG;
        }
        rc = nk_wire_put_uvar(out, p->n_regions);
        for (size_t i = 0; rc == NK_OK && i < p->n_regions; i++) {
            rc = put_region_info(out, &p->regions[i]);
        }
        rc = rc ? rc : nk_wire_put_u8(out, p->more ? 1 : 0);
        break;
    default: /* ALLOC_ID, TSO */
        rc = nk_wire_put_uvar(out, p->first);
        rc = rc ? rc : nk_wire_put_uvar(out, p->count);
        break;
    }
    return rc ? rc : nk_wire_end(out);
}

void nk_coord_resp_free(nk_coord_resp *p)
{
    free(p->stores);
    free(p->regions);
    p->stores = NULL;
    p->regions = NULL;
    p->n_stores = p->n_regions = 0;
}

int nk_coord_resp_decode(const uint8_t *buf, size_t len, nk_coord_resp *p)
{
    nk_wire_rd rd;
    memset(p, 0, sizeof(*p));
    int rc = nk_wire_open(&rd, buf, len, RESP_MAGIC, COORD_VERSION, NULL);
    if (rc != NK_OK) {
        return rc;
    }
    p->id = nk_wire_get_uvar(&rd);
    p->op = nk_wire_get_u8(&rd);
    p->code = nk_wire_get_u8(&rd);
    nk_wire_get_str(&rd, p->msg, sizeof(p->msg));
    if (rd.bad || !op_valid(p->op) || p->code > NK_COORD_INVALID) {
        return NK_EPROTO;
    }
    if (p->code != NK_COORD_OK) {
        return nk_wire_close(&rd);
    }
    uint64_t n;
    switch (p->op) {
    case NK_COORD_STORE_HEARTBEAT:
        p->accepted = get_bool(&rd);
        p->need_full_report = get_bool(&rd);
        break;
    case NK_COORD_REGION_REPORT:
        p->accepted = get_bool(&rd);
        break;
    case NK_COORD_GET_REGION_BY_KEY:
    case NK_COORD_GET_REGION:
        get_region_info(&rd, &p->region);
        break;
    case NK_COORD_GET_STORE:
        get_store_info(&rd, &p->store);
        break;
    case NK_COORD_LIST_STORES:
        n = nk_wire_get_uvar(&rd);
        /* Bound before allocating: a hostile count must not size the malloc. */
        if (rd.bad || n > NK_COORD_MAX_STORES || n > (uint64_t)(rd.end - rd.p)) {
            return NK_EPROTO;
        }
        if (n > 0) {
            p->stores = calloc((size_t)n, sizeof(*p->stores));
            if (p->stores == NULL) {
                return NK_ENOMEM;
            }
        }
        p->n_stores = (size_t)n;
        for (size_t i = 0; i < p->n_stores && !rd.bad; i++) {
            get_store_info(&rd, &p->stores[i]);
        }
        break;
    case NK_COORD_LIST_REGIONS:
        n = nk_wire_get_uvar(&rd);
        if (rd.bad || n > NK_COORD_LIST_MAX || n > (uint64_t)(rd.end - rd.p)) {
            return NK_EPROTO;
        }
        if (n > 0) {
            p->regions = calloc((size_t)n, sizeof(*p->regions));
            if (p->regions == NULL) {
                return NK_ENOMEM;
            }
        }
        p->n_regions = (size_t)n;
        for (size_t i = 0; i < p->n_regions && !rd.bad; i++) {
            get_region_info(&rd, &p->regions[i]);
        }
        p->more = get_bool(&rd);
        break;
    default: /* ALLOC_ID, TSO */
        p->first = nk_wire_get_uvar(&rd);
        p->count = nk_wire_get_uvar(&rd);
        if (!rd.bad &&
            (p->count == 0 || p->count > NK_COORD_ALLOC_MAX || p->first > UINT64_MAX - p->count)) {
            rd.bad = true;
        }
        break;
    }
    rc = nk_wire_close(&rd);
    if (rc != NK_OK) {
        nk_coord_resp_free(p);
    }
    return rc;
}
