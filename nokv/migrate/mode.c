/* mode.c - MODE.json read/write/check (see mode.h). */
#include "nokv/migrate/mode.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "nokv/util/testbug.h"

#define MODE_MAX_BYTES 4096

static const char *const names[] = {"standalone", "preparing", "seeded", "cluster"};

const char *nk_mode_name(nk_mode m)
{
    return (unsigned)m < 4 ? names[m] : "unknown";
}

int nk_mode_parse(const char *name, nk_mode *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (nk_mode)i;
            return NK_OK;
        }
    }
    return NK_EINVAL;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    snprintf(out, cap, "%s%s%s", dir, slash ? "" : "/", name);
}

/* The object without the checksum, serialised canonically. Caller frees. */
static char *canonical(const nk_mode_state *st)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    json_object_set_new(o, "format", json_integer(NK_MODE_FORMAT));
    json_object_set_new(o, "mode", json_string(nk_mode_name(st->mode)));
    if (st->store_id != 0) {
        json_object_set_new(o, "store_id", json_integer((json_int_t)st->store_id));
    }
    if (st->region_id != 0) {
        json_object_set_new(o, "region_id", json_integer((json_int_t)st->region_id));
    }
    if (st->peer_id != 0) {
        json_object_set_new(o, "peer_id", json_integer((json_int_t)st->peer_id));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static int get_id(json_t *o, const char *key, uint64_t *out, nk_errbuf *eb, const char *path)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL) {
        return NK_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        nk_errbuf_set(eb, "%s: \"%s\" must be a positive integer", path, key);
        return NK_ECORRUPT;
    }
    *out = (uint64_t)json_integer_value(v);
    return NK_OK;
}

int nk_mode_read(nk_rt *rt, const char *workdir, nk_mode_state *st, nk_errbuf *eb)
{
    char path[1024];
    join(path, sizeof(path), workdir, NK_MODE_FILE);
    memset(st, 0, sizeof(*st));
    st->mode = NK_MODE_STANDALONE;
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc == NK_ENOENT) {
        return NK_OK; /* no mode file: a plain standalone workdir */
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot open: %s", path, nk_strerror(rc));
        return rc;
    }
    char buf[MODE_MAX_BYTES + 1];
    size_t got = 0;
    rc = nk_rt_file_read_at(rt, f, 0, buf, MODE_MAX_BYTES + 1, &got);
    nk_rt_file_close(rt, f);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot read: %s", path, nk_strerror(rc));
        return rc;
    }
    if (got > MODE_MAX_BYTES) {
        nk_errbuf_set(eb, "%s: larger than %d bytes; not a mode file", path, MODE_MAX_BYTES);
        return NK_ECORRUPT;
    }
    json_error_t jerr;
    json_t *o = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        nk_errbuf_set(eb, "%s: not valid JSON (line %d: %s)", path, o ? 0 : jerr.line,
                      o ? "not an object" : jerr.text);
        json_decref(o);
        return NK_ECORRUPT;
    }
    rc = NK_ECORRUPT;
    json_t *fmt = json_object_get(o, "format");
    json_t *mode = json_object_get(o, "mode");
    json_t *sum = json_object_get(o, "xxh64");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != NK_MODE_FORMAT) {
        nk_errbuf_set(eb, "%s: unsupported \"format\" (this build reads format %d)", path,
                      NK_MODE_FORMAT);
        goto out;
    }
    if (!json_is_string(mode) || nk_mode_parse(json_string_value(mode), &st->mode) != NK_OK) {
        nk_errbuf_set(eb, "%s: unknown migration mode %s%s%s", path, mode ? "\"" : "",
                      json_is_string(mode) ? json_string_value(mode) : "(missing)",
                      mode ? "\"" : "");
        goto out;
    }
    if (get_id(o, "store_id", &st->store_id, eb, path) != NK_OK ||
        get_id(o, "region_id", &st->region_id, eb, path) != NK_OK ||
        get_id(o, "peer_id", &st->peer_id, eb, path) != NK_OK) {
        goto out;
    }
    if (!json_is_string(sum)) {
        nk_errbuf_set(eb, "%s: missing \"xxh64\" checksum", path);
        goto out;
    }
    char *canon = canonical(st);
    if (canon == NULL) {
        rc = NK_ENOMEM;
        goto out;
    }
    char want[17];
    snprintf(want, sizeof(want), "%016" PRIx64, (uint64_t)XXH64(canon, strlen(canon), 0));
    free(canon);
    if (strcmp(want, json_string_value(sum)) != 0) {
        nk_errbuf_set(eb, "%s: checksum mismatch (file edited by hand or corrupt); "
                          "refusing to guess the workdir mode",
                      path);
        goto out;
    }
    /* Unknown extra keys would change the meaning silently: reject them. */
    size_t known = 3 + (st->store_id != 0) + (st->region_id != 0) + (st->peer_id != 0);
    if (json_object_size(o) != known) {
        nk_errbuf_set(eb, "%s: unexpected fields for format %d", path, NK_MODE_FORMAT);
        goto out;
    }
    rc = NK_OK;
out:
    json_decref(o);
    return rc;
}

int nk_mode_write(nk_rt *rt, const char *workdir, const nk_mode_state *st, nk_errbuf *eb)
{
    char path[1024], tmp[1040];
    join(path, sizeof(path), workdir, NK_MODE_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char *canon = canonical(st);
    if (canon == NULL) {
        return NK_ENOMEM;
    }
    /* Insert the checksum as the last key ("xxh64" sorts after the rest). */
    char sum[17];
    snprintf(sum, sizeof(sum), "%016" PRIx64, (uint64_t)XXH64(canon, strlen(canon), 0));
    size_t cl = strlen(canon);
    char out[MODE_MAX_BYTES];
    int n = snprintf(out, sizeof(out), "%.*s,\"xxh64\":\"%s\"}\n", (int)(cl - 1), canon, sum);
    free(canon);
    if (n < 0 || (size_t)n >= sizeof(out)) {
        return NK_ERANGE;
    }
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, tmp, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f);
    if (rc == NK_OK) {
        rc = nk_rt_file_write_at(rt, f, 0, out, (size_t)n);
    }
    if (rc == NK_OK && !nk_testbug(NK_TESTBUG_MODE_NOSYNC)) { /* TEST ONLY switch, testbug.h */
        rc = nk_rt_file_sync(rt, f);
    }
    if (f != NULL) {
        nk_rt_file_close(rt, f);
    }
    if (rc == NK_OK) {
        rc = nk_failpoint(rt, "mode.write.before_rename");
    }
    if (rc == NK_OK) {
        rc = nk_rt_rename(rt, tmp, path);
    }
    if (rc == NK_OK) {
        rc = nk_rt_dir_sync(rt, workdir);
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s: cannot write mode \"%s\": %s", path, nk_mode_name(st->mode),
                      nk_strerror(rc));
    }
    return rc;
}

int nk_mode_check(const nk_mode_state *st, unsigned allowed, const char *workdir, nk_errbuf *eb)
{
    if (allowed == 0) {
        allowed = NK_MODE_BIT(NK_MODE_STANDALONE);
    }
    if (allowed & NK_MODE_BIT(st->mode)) {
        return NK_OK;
    }
    switch (st->mode) {
    case NK_MODE_PREPARING:
        nk_errbuf_set(eb,
                      "workdir %s is in mode \"preparing\": a migration to cluster mode started "
                      "and did not finish, so it must not be opened as a standalone database. "
                      "Run 'nokv migrate status --workdir %s' to see where it stopped, then "
                      "re-run 'nokv migrate init' to resume",
                      workdir, workdir);
        break;
    case NK_MODE_SEEDED:
    case NK_MODE_CLUSTER:
        nk_errbuf_set(eb,
                      "workdir %s is in mode \"%s\": it belongs to a cluster (store %" PRIu64
                      "). Start it with 'nokv serve --workdir %s --coordinator-addr HOST:PORT'; "
                      "a standalone open would bypass replication",
                      workdir, nk_mode_name(st->mode), st->store_id, workdir);
        break;
    case NK_MODE_STANDALONE:
        nk_errbuf_set(eb,
                      "workdir %s is a standalone database; this command needs a promoted "
                      "workdir (run 'nokv migrate plan --workdir %s' first)",
                      workdir, workdir);
        break;
    }
    return NK_EMODE;
}
