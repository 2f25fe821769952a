/*
 * fsutil.c - small-file idioms over the runtime (see fsutil.h).
 */
#include "nokv/util/fsutil.h"

#include <stdio.h>
#include <stdlib.h>

int nk_fs_write_atomic(nk_rt *rt, const char *dir, const char *name, const void *data, size_t len,
                       const char *fp)
{
    char path[1024], tmp[1040], fpname[128];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        return NK_EINVAL;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc != NK_OK) {
        return rc;
    }
    rc = len > 0 ? nk_rt_file_write_at(rt, f, 0, data, len) : NK_OK;
    if (rc == NK_OK) {
        rc = nk_rt_file_sync(rt, f);
    }
    int crc = nk_rt_file_close(rt, f);
    if (rc == NK_OK) {
        rc = crc;
    }
    if (rc == NK_OK && fp != NULL) {
        snprintf(fpname, sizeof(fpname), "%s.after_tmp", fp);
        rc = nk_failpoint(rt, fpname);
    }
    if (rc == NK_OK) {
        rc = nk_rt_rename(rt, tmp, path);
    }
    if (rc == NK_OK && fp != NULL) {
        snprintf(fpname, sizeof(fpname), "%s.after_rename", fp);
        rc = nk_failpoint(rt, fpname);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(rt, dir);
    }
    return rc;
}

int nk_fs_read_all(nk_rt *rt, const char *path, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(rt, f, &size);
    if (rc == NK_OK && size > max) {
        rc = NK_ETOOBIG;
    }
    uint8_t *buf = NULL;
    size_t got = 0;
    if (rc == NK_OK) {
        buf = malloc(size > 0 ? (size_t)size : 1);
        rc = buf == NULL ? NK_ENOMEM : nk_rt_file_read_at(rt, f, 0, buf, (size_t)size, &got);
    }
    (void)nk_rt_file_close(rt, f);
    if (rc == NK_OK && got != size) {
        rc = NK_EIO; /* shrank while we read it: nothing here does that */
    }
    if (rc != NK_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return NK_OK;
}

int nk_fs_ensure_dir(nk_rt *rt, const char *path, const char *parent)
{
    nk_stat st;
    int rc = nk_rt_stat(rt, path, &st);
    if (rc == NK_OK) {
        return st.is_dir ? NK_OK : NK_ENOTDIR;
    }
    if (rc != NK_ENOENT) {
        return rc;
    }
    rc = nk_rt_dir_create(rt, path);
    if (rc != NK_OK && rc != NK_EEXIST) {
        return rc;
    }
    return nk_rt_dir_sync(rt, parent);
}
