/* smallfile.c - small metadata files over the runtime (see smallfile.h). */
#include "nokv/util/smallfile.h"

#include <stdio.h>
#include <string.h>

int nk_path_fmt(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(out, cap, "%s%s%s", dir, slash ? "" : "/", name);
    return n < 0 || (size_t)n >= cap ? NK_ERANGE : NK_OK;
}

int nk_smallfile_read(nk_rt *rt, const char *path, size_t max_bytes, nk_buf *out, nk_errbuf *eb)
{
    nk_buf_clear(out);
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc == NK_ENOENT) {
        return rc;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot open: %s", path, nk_strerror(rc));
        return rc;
    }
    uint64_t size = 0;
    rc = nk_rt_file_size(rt, f, &size);
    if (rc == NK_OK && size > max_bytes) {
        nk_errbuf_set(eb, "%s: %llu bytes, more than the %zu a file of this kind may hold", path,
                      (unsigned long long)size, max_bytes);
        rc = NK_ETOOBIG;
    }
    if (rc == NK_OK) {
        rc = nk_buf_reserve(out, (size_t)size + 1);
    }
    size_t got = 0;
    if (rc == NK_OK && size > 0) {
        rc = nk_rt_file_read_at(rt, f, 0, out->data, (size_t)size, &got);
        out->len = got;
    }
    nk_rt_file_close(rt, f);
    if (rc != NK_OK && rc != NK_ETOOBIG) {
        nk_errbuf_set(eb, "%s: cannot read: %s", path, nk_strerror(rc));
    }
    return rc;
}

int nk_smallfile_replace(nk_rt *rt, const char *dir, const char *name, const void *data, size_t len,
                         const char *fp_prefix, nk_errbuf *eb)
{
    char path[1024], tmp[1040], fp[160];
    if (nk_path_fmt(path, sizeof(path), dir, name) != NK_OK) {
        nk_errbuf_set(eb, "%s/%s: path too long", dir, name);
        return NK_ERANGE;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    const char *step = "create the temp file";
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc == NK_OK && len > 0) {
        step = "write the temp file";
        rc = nk_rt_file_write_at(rt, f, 0, data, len);
    }
    if (rc == NK_OK) {
        step = "sync the temp file";
        rc = nk_rt_file_sync(rt, f);
    }
    if (f != NULL) {
        nk_rt_file_close(rt, f);
    }
    if (rc == NK_OK && fp_prefix != NULL) {
        snprintf(fp, sizeof(fp), "%s.after_tmp", fp_prefix);
        step = fp;
        rc = nk_failpoint(rt, fp);
    }
    if (rc == NK_OK) {
        step = "rename the temp file into place";
        rc = nk_rt_rename(rt, tmp, path);
    }
    if (rc == NK_OK && fp_prefix != NULL) {
        snprintf(fp, sizeof(fp), "%s.after_rename", fp_prefix);
        step = fp;
        rc = nk_failpoint(rt, fp);
    }
    if (rc == NK_OK) {
        step = "sync the directory";
        rc = nk_rt_dir_sync(rt, dir);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb,
                      "%s: cannot %s: %s (the previous version, if any, is still in place "
                      "until the rename; retry the command)",
                      path, step, nk_strerror(rc));
    }
    return rc;
}

int nk_dir_ensure(nk_rt *rt, const char *path, const char *parent)
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
