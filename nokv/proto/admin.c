/* admin.c - admin service request/response codec (see admin.h). */
#include "nokv/proto/admin.h"

#include <stddef.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/util/err.h"

#define REQ_MAGIC 0x5141u  /* "AQ" */
#define RESP_MAGIC 0x5041u /* "AP" */

const char *nk_admin_op_name(uint8_t op)
{
    static const char *const names[] = {"unknown",
                                        "AddPeer",
                                        "PromotePeer",
                                        "RemovePeer",
                                        "TransferLeader",
                                        "RegionRuntimeStatus",
                                        "StoreStatus",
                                        "ExportRegionSnapshot",
                                        "ReadSnapshot",
                                        "ReleaseSnapshot",
                                        "ImportRegionSnapshot",
                                        "ImportSnapshotChunk",
                                        "FinishImport",
                                        "SetStoreAddress",
                                        "DestroyStalePeer"};
    return op <= NK_ADMIN_OP_MAX ? names[op] : names[0];
}

const char *nk_admin_status_name(uint8_t status)
{
    static const char *const names[] = {
        "OK",      "NOT_LEADER", "REGION_NOT_FOUND", "EPOCH_MISMATCH", "BUSY",
        "INVALID", "EXISTS",     "CORRUPT",          "INTERNAL"};
    return status <= NK_ADMIN_STATUS_MAX ? names[status] : "UNKNOWN";
}

bool nk_admin_name_ok(const char *name)
{
    size_t n = strnlen(name, NK_ADMIN_NAME_MAX);
    if (n == 0 || n >= NK_ADMIN_NAME_MAX || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int put_manifest(nk_buf *b, const nk_admin_manifest *m)
{
    if (m->n_files > NK_ADMIN_SNAP_MAX_FILES) {
        return NK_EINVAL;
    }
    int rc = nk_region_put(b, &m->desc);
    rc = rc ? rc : nk_wire_put_uvar(b, m->index);
    rc = rc ? rc : nk_wire_put_uvar(b, m->term);
    rc = rc ? rc : nk_wire_put_uvar(b, m->n_files);
    for (uint32_t i = 0; rc == NK_OK && i < m->n_files; i++) {
        if (!nk_admin_name_ok(m->files[i].name)) {
            return NK_EINVAL;
        }
        rc = nk_wire_put_str(b, m->files[i].name);
        rc = rc ? rc : nk_wire_put_uvar(b, m->files[i].size);
        rc = rc ? rc : nk_wire_put_u64(b, m->files[i].xxh64);
    }
    return rc;
}

static int get_manifest(nk_wire_rd *r, nk_admin_manifest *m)
{
    int rc = nk_region_get(r, &m->desc);
    if (rc != NK_OK) {
        return NK_EPROTO;
    }
    m->index = nk_wire_get_uvar(r);
    m->term = nk_wire_get_uvar(r);
    uint64_t n = nk_wire_get_uvar(r);
    if (r->bad || n > NK_ADMIN_SNAP_MAX_FILES) {
        return NK_EPROTO;
    }
    m->n_files = (uint32_t)n;
    for (uint32_t i = 0; i < m->n_files; i++) {
        nk_wire_get_str(r, m->files[i].name, sizeof(m->files[i].name));
        m->files[i].size = nk_wire_get_uvar(r);
        m->files[i].xxh64 = nk_wire_get_u64(r);
        if (r->bad || !nk_admin_name_ok(m->files[i].name)) {
            return NK_EPROTO;
        }
    }
    return NK_OK;
}

int nk_admin_req_encode(const nk_admin_req *q, nk_buf *out)
{
    if (q->op == 0 || q->op > NK_ADMIN_OP_MAX || q->data.len > NK_ADMIN_CHUNK_MAX ||
        q->max_len > NK_ADMIN_CHUNK_MAX) {
        return NK_EINVAL;
    }
    int rc = nk_wire_begin(out, REQ_MAGIC, NK_ADMIN_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, q->id);
    rc = rc ? rc : nk_wire_put_u8(out, q->op);
    rc = rc ? rc : nk_wire_put_uvar(out, q->region_id);
    rc = rc ? rc : nk_wire_put_uvar(out, q->store_id);
    rc = rc ? rc : nk_wire_put_uvar(out, q->peer_id);
    rc = rc ? rc : nk_wire_put_u8(out, q->force ? 1 : 0);
    rc = rc ? rc : nk_wire_put_uvar(out, q->epoch.version);
    rc = rc ? rc : nk_wire_put_uvar(out, q->epoch.conf_version);
    if (rc != NK_OK) {
        return rc;
    }
    switch (q->op) {
    case NK_ADMIN_ADD_PEER:
    case NK_ADMIN_SET_ADDRESS:
        if (strnlen(q->addr, sizeof(q->addr)) >= sizeof(q->addr)) {
            return NK_EINVAL;
        }
        rc = nk_wire_put_str(out, q->addr);
        break;
    case NK_ADMIN_SNAP_READ:
        rc = nk_wire_put_uvar(out, q->session);
        rc = rc ? rc : nk_wire_put_uvar(out, q->file);
        rc = rc ? rc : nk_wire_put_uvar(out, q->offset);
        rc = rc ? rc : nk_wire_put_uvar(out, q->max_len);
        break;
    case NK_ADMIN_SNAP_RELEASE:
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        rc = nk_wire_put_uvar(out, q->session);
        break;
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
        rc = put_manifest(out, &q->manifest);
        break;
    case NK_ADMIN_SNAP_IMPORT_CHUNK:
        rc = nk_wire_put_uvar(out, q->session);
        rc = rc ? rc : nk_wire_put_uvar(out, q->file);
        rc = rc ? rc : nk_wire_put_uvar(out, q->offset);
        rc = rc ? rc : nk_wire_put_bytes(out, q->data.data, q->data.len);
        rc = rc ? rc : nk_wire_put_u64(out, q->xxh64);
        break;
    default:
        break;
    }
    return rc ? rc : nk_wire_end(out);
}

int nk_admin_req_decode(const uint8_t *buf, size_t len, nk_admin_req *q)
{
    memset(q, 0, offsetof(nk_admin_req, manifest));
    q->manifest.n_files = 0;
    nk_wire_rd r;
    uint8_t ver = 0;
    int rc = nk_wire_open(&r, buf, len, REQ_MAGIC, NK_ADMIN_VERSION, &ver);
    if (rc != NK_OK) {
        return rc;
    }
    q->id = nk_wire_get_uvar(&r);
    q->op = nk_wire_get_u8(&r);
    q->region_id = nk_wire_get_uvar(&r);
    q->store_id = nk_wire_get_uvar(&r);
    q->peer_id = nk_wire_get_uvar(&r);
    uint8_t force = nk_wire_get_u8(&r);
    q->force = force == 1;
    q->epoch.version = nk_wire_get_uvar(&r);
    q->epoch.conf_version = nk_wire_get_uvar(&r);
    if (r.bad || q->op == 0 || q->op > NK_ADMIN_OP_MAX || force > 1) {
        return NK_EPROTO;
    }
    uint64_t file = 0, max = 0;
    switch (q->op) {
    case NK_ADMIN_ADD_PEER:
    case NK_ADMIN_SET_ADDRESS:
        nk_wire_get_str(&r, q->addr, sizeof(q->addr));
        break;
    case NK_ADMIN_SNAP_READ:
        q->session = nk_wire_get_uvar(&r);
        file = nk_wire_get_uvar(&r);
        q->offset = nk_wire_get_uvar(&r);
        max = nk_wire_get_uvar(&r);
        if (max > NK_ADMIN_CHUNK_MAX) {
            return NK_EPROTO;
        }
        break;
    case NK_ADMIN_SNAP_RELEASE:
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        q->session = nk_wire_get_uvar(&r);
        break;
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
        rc = get_manifest(&r, &q->manifest);
        if (rc != NK_OK) {
            return rc;
        }
        break;
    case NK_ADMIN_SNAP_IMPORT_CHUNK:
        q->session = nk_wire_get_uvar(&r);
        file = nk_wire_get_uvar(&r);
        q->offset = nk_wire_get_uvar(&r);
        q->data = nk_wire_get_bytes(&r, NK_ADMIN_CHUNK_MAX);
        q->xxh64 = nk_wire_get_u64(&r);
        break;
    default:
        break;
    }
    if (file >= NK_ADMIN_SNAP_MAX_FILES) {
        return NK_EPROTO;
    }
    q->file = (uint32_t)file;
    q->max_len = (uint32_t)max;
    return nk_wire_close(&r);
}

int nk_admin_resp_encode(const nk_admin_resp *p, nk_buf *out)
{
    if (p->op == 0 || p->op > NK_ADMIN_OP_MAX || p->status > NK_ADMIN_STATUS_MAX ||
        strnlen(p->msg, NK_ADMIN_MSG_MAX) >= NK_ADMIN_MSG_MAX || p->data.len > NK_ADMIN_CHUNK_MAX) {
        return NK_EINVAL;
    }
    int rc = nk_wire_begin(out, RESP_MAGIC, NK_ADMIN_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, p->id);
    rc = rc ? rc : nk_wire_put_u8(out, p->op);
    rc = rc ? rc : nk_wire_put_u8(out, p->status);
    rc = rc ? rc : nk_wire_put_str(out, p->msg);
    rc = rc ? rc : nk_wire_put_uvar(out, p->leader_peer);
    rc = rc ? rc : nk_wire_put_uvar(out, p->leader_store);
    if (rc != NK_OK) {
        return rc;
    }
    switch (p->op) {
    case NK_ADMIN_REGION_STATUS:
        rc = nk_wire_put_u8(out, p->known ? 1 : 0);
        rc = rc ? rc : nk_wire_put_u8(out, p->hosted ? 1 : 0);
        rc = rc ? rc : nk_wire_put_uvar(out, p->local_peer);
        rc = rc ? rc : nk_wire_put_uvar(out, p->applied_index);
        rc = rc ? rc : nk_wire_put_uvar(out, p->applied_term);
        rc = rc ? rc : nk_wire_put_uvar(out, p->raft_term);
        rc = rc ? rc : nk_wire_put_uvar(out, p->commit);
        rc = rc ? rc : nk_wire_put_u8(out, p->role);
        if (rc == NK_OK && p->known) {
            rc = nk_region_put(out, &p->desc);
        }
        break;
    case NK_ADMIN_STORE_STATUS:
        rc = nk_wire_put_uvar(out, p->store_id);
        rc = rc ? rc : nk_wire_put_uvar(out, p->regions);
        rc = rc ? rc : nk_wire_put_u8(out, p->failed ? 1 : 0);
        break;
    case NK_ADMIN_SNAP_EXPORT:
        rc = nk_wire_put_uvar(out, p->session);
        if (rc == NK_OK && p->status == NK_ADMIN_OK) {
            rc = put_manifest(out, &p->manifest);
        }
        break;
    case NK_ADMIN_SNAP_READ:
        rc = nk_wire_put_bytes(out, p->data.data, p->data.len);
        rc = rc ? rc : nk_wire_put_u8(out, p->eof ? 1 : 0);
        rc = rc ? rc : nk_wire_put_u64(out, p->xxh64);
        break;
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
    case NK_ADMIN_SNAP_IMPORT_CHUNK:
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        rc = nk_wire_put_uvar(out, p->session);
        rc = rc ? rc : nk_wire_put_uvar(out, p->bytes);
        break;
    default:
        break;
    }
    return rc ? rc : nk_wire_end(out);
}

int nk_admin_resp_decode(const uint8_t *buf, size_t len, nk_admin_resp *p)
{
    memset(p, 0, offsetof(nk_admin_resp, manifest));
    p->manifest.n_files = 0;
    nk_wire_rd r;
    uint8_t ver = 0;
    int rc = nk_wire_open(&r, buf, len, RESP_MAGIC, NK_ADMIN_VERSION, &ver);
    if (rc != NK_OK) {
        return rc;
    }
    p->id = nk_wire_get_uvar(&r);
    p->op = nk_wire_get_u8(&r);
    p->status = nk_wire_get_u8(&r);
    nk_wire_get_str(&r, p->msg, sizeof(p->msg));
    p->leader_peer = nk_wire_get_uvar(&r);
    p->leader_store = nk_wire_get_uvar(&r);
    if (r.bad || p->op == 0 || p->op > NK_ADMIN_OP_MAX || p->status > NK_ADMIN_STATUS_MAX) {
        return NK_EPROTO;
    }
    switch (p->op) {
    case NK_ADMIN_REGION_STATUS:
        p->known = nk_wire_get_u8(&r) != 0;
        p->hosted = nk_wire_get_u8(&r) != 0;
        p->local_peer = nk_wire_get_uvar(&r);
        p->applied_index = nk_wire_get_uvar(&r);
        p->applied_term = nk_wire_get_uvar(&r);
        p->raft_term = nk_wire_get_uvar(&r);
        p->commit = nk_wire_get_uvar(&r);
        p->role = nk_wire_get_u8(&r);
        if (!r.bad && p->known && nk_region_get(&r, &p->desc) != NK_OK) {
            return NK_EPROTO;
        }
        break;
    case NK_ADMIN_STORE_STATUS:
        p->store_id = nk_wire_get_uvar(&r);
        p->regions = nk_wire_get_uvar(&r);
        p->failed = nk_wire_get_u8(&r) != 0;
        break;
    case NK_ADMIN_SNAP_EXPORT:
        p->session = nk_wire_get_uvar(&r);
        if (!r.bad && p->status == NK_ADMIN_OK) {
            rc = get_manifest(&r, &p->manifest);
            if (rc != NK_OK) {
                return rc;
            }
        }
        break;
    case NK_ADMIN_SNAP_READ:
        p->data = nk_wire_get_bytes(&r, NK_ADMIN_CHUNK_MAX);
        p->eof = nk_wire_get_u8(&r) != 0;
        p->xxh64 = nk_wire_get_u64(&r);
        break;
    case NK_ADMIN_SNAP_IMPORT_BEGIN:
    case NK_ADMIN_SNAP_IMPORT_CHUNK:
    case NK_ADMIN_SNAP_IMPORT_FINISH:
        p->session = nk_wire_get_uvar(&r);
        p->bytes = nk_wire_get_uvar(&r);
        break;
    default:
        break;
    }
    return nk_wire_close(&r);
}
