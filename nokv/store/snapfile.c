/*
 * snapfile.c - snapshot payloads of volatile state machines.
 *
 * The payload raft carries in a snapshot message and the file the store
 * keeps in snap/ are the same envelope (nokv/proto/wire.h, magic "SN",
 * version 1): index uvar, term uvar, the region descriptor at that index
 * (nk_region codec: a replica that joins by snapshot learns the range and
 * which store hosts each peer from it), and the state machine's bytes.
 * Files are <snapdir>/<region>-<index>.snap, written atomically.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/store/store_int.h"
#include "nokv/util/smallfile.h"

#define SNAP_MAGIC 0x4e53u /* "SN" */
#define SNAP_VERSION 1u
#define SNAP_FILE_MAX (NK_FRAME_MAX - 4096u)

int nk_snapfile_encode(const nk_region *desc, uint64_t index, uint64_t term, const uint8_t *sm,
                       size_t sm_len, uint8_t **out, size_t *out_len)
{
    nk_buf b = {0};
    int rc = nk_wire_begin(&b, SNAP_MAGIC, SNAP_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(&b, index);
    rc = rc ? rc : nk_wire_put_uvar(&b, term);
    rc = rc ? rc : nk_region_put(&b, desc);
    rc = rc ? rc : nk_wire_put_bytes(&b, sm, sm_len);
    rc = rc ? rc : nk_wire_end(&b);
    if (rc == NK_OK && b.len > SNAP_FILE_MAX) {
        rc = NK_ETOOBIG;
    }
    if (rc != NK_OK) {
        free(b.data);
        return rc;
    }
    *out = b.data;
    *out_len = b.len;
    return NK_OK;
}

int nk_snapfile_decode(const uint8_t *buf, size_t len, nk_region *desc, uint64_t *index,
                       uint64_t *term, const uint8_t **sm, size_t *sm_len)
{
    nk_wire_rd rd;
    int rc = nk_wire_open(&rd, buf, len, SNAP_MAGIC, SNAP_VERSION, NULL);
    if (rc != NK_OK) {
        return rc;
    }
    *index = nk_wire_get_uvar(&rd);
    *term = nk_wire_get_uvar(&rd);
    rc = nk_region_get(&rd, desc);
    nk_slice s = nk_wire_get_bytes(&rd, SNAP_FILE_MAX);
    if (rc == NK_OK) {
        rc = nk_wire_close(&rd);
    }
    if (rc != NK_OK) {
        return NK_EPROTO;
    }
    *sm = s.data;
    *sm_len = s.len;
    return NK_OK;
}

static void snap_name(char *buf, size_t cap, uint64_t region_id, uint64_t index)
{
    snprintf(buf, cap, "%020" PRIu64 "-%020" PRIu64 ".snap", region_id, index);
}

int nk_snapfile_write(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t index,
                      const uint8_t *buf, size_t len)
{
    char name[64];
    snap_name(name, sizeof(name), region_id, index);
    return nk_smallfile_replace(rt, snapdir, name, buf, len, "store.snapfile", NULL);
}

int nk_snapfile_read(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t index,
                     uint8_t **buf, size_t *len)
{
    char name[64], path[1200];
    snap_name(name, sizeof(name), region_id, index);
    snprintf(path, sizeof(path), "%s/%s", snapdir, name);
    nk_buf b = {0};
    int rc = nk_smallfile_read(rt, path, SNAP_FILE_MAX, &b, NULL);
    if (rc != NK_OK) {
        free(b.data);
        return rc;
    }
    *buf = b.data;
    *len = b.len;
    return NK_OK;
}

void nk_snapfile_gc(nk_rt *rt, const char *snapdir, uint64_t region_id, uint64_t min_keep)
{
    nk_names names = {0};
    if (nk_rt_dir_list(rt, snapdir, &names) != NK_OK) {
        return;
    }
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%020" PRIu64 "-", region_id);
    size_t plen = strlen(prefix);
    bool removed = false;
    for (size_t i = 0; i < names.count; i++) {
        const char *n = names.names[i];
        if (strncmp(n, prefix, plen) != 0) {
            continue;
        }
        /* "<region>-<index>.snap" or a leftover "<...>.snap.tmp" */
        uint64_t index = 0;
        const char *q = n + plen;
        while (*q >= '0' && *q <= '9') {
            index = index * 10 + (uint64_t)(*q - '0');
            q++;
        }
        bool tmp = strcmp(q, ".snap") != 0;
        if (!tmp && index >= min_keep) {
            continue;
        }
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", snapdir, n);
        removed |= nk_rt_remove(rt, path) == NK_OK;
    }
    nk_names_free(&names);
    if (removed) {
        (void)nk_rt_dir_sync(rt, snapdir);
    }
}
