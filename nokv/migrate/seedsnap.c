/* seedsnap.c - the seed snapshot by hard links (see seedsnap.h). */
#include "nokv/migrate/seedsnap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/migrate/checkpoint.h"
#include "nokv/util/filehash.h"
#include "nokv/util/jsonfile.h"
#include "nokv/util/names.h"
#include "nokv/util/smallfile.h"

#define META_MAX_BYTES (64u << 20)

void nk_seedsnap_free(nk_seedsnap *s)
{
    free(s->files);
    memset(s, 0, sizeof(*s));
}

void nk_seedsnap_dir(const char *workdir, char *out, size_t cap)
{
    (void)nk_path_fmt(out, cap, workdir, NK_SEEDSNAP_DIR);
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t cap, uint32_t *len)
{
    size_t n = strlen(s);
    if (n % 2 != 0 || n / 2 > cap) {
        return NK_ECORRUPT;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                : 16u;
            if (d > 15) {
                return NK_ECORRUPT;
            }
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    *len = (uint32_t)(n / 2);
    return NK_OK;
}

static json_t *region_json(const nk_region *r)
{
    char *s = malloc(2 * NK_REGION_KEY_MAX + 1), *e = malloc(2 * NK_REGION_KEY_MAX + 1);
    json_t *peers = json_array();
    json_t *o = NULL;
    if (s != NULL && e != NULL && peers != NULL) {
        hex_of(r->start, r->start_len, s);
        hex_of(r->end, r->end_len, e);
        for (uint32_t i = 0; i < r->n_peers; i++) {
            json_array_append_new(
                peers, json_pack("{s:I,s:I,s:s}", "store_id", (json_int_t)r->peers[i].store_id,
                                 "peer_id", (json_int_t)r->peers[i].peer_id, "role",
                                 r->peers[i].role == NK_RAFT_VOTER ? "voter" : "learner"));
        }
        o = json_pack("{s:I,s:s,s:s,s:I,s:I,s:O}", "id", (json_int_t)r->id, "start", s, "end", e,
                      "epoch_version", (json_int_t)r->epoch.version, "epoch_conf_version",
                      (json_int_t)r->epoch.conf_version, "peers", peers);
    }
    json_decref(peers);
    free(s);
    free(e);
    return o;
}

static int region_from_json(const json_t *o, nk_region *r)
{
    memset(r, 0, sizeof(*r));
    const char *s = nk_json_str(o, "start"), *e = nk_json_str(o, "end");
    json_t *peers = json_object_get(o, "peers");
    if (!nk_json_u64(o, "id", &r->id) || s == NULL || e == NULL ||
        !nk_json_u64(o, "epoch_version", &r->epoch.version) ||
        !nk_json_u64(o, "epoch_conf_version", &r->epoch.conf_version) || !json_is_array(peers) ||
        json_array_size(peers) > NK_REGION_MAX_PEERS ||
        unhex(s, r->start, NK_REGION_KEY_MAX, &r->start_len) != NK_OK ||
        unhex(e, r->end, NK_REGION_KEY_MAX, &r->end_len) != NK_OK) {
        return NK_ECORRUPT;
    }
    for (size_t i = 0; i < json_array_size(peers); i++) {
        json_t *p = json_array_get(peers, i);
        const char *role = nk_json_str(p, "role");
        nk_region_peer rp = {0, 0, 0};
        if (!nk_json_u64(p, "store_id", &rp.store_id) || !nk_json_u64(p, "peer_id", &rp.peer_id) ||
            role == NULL) {
            return NK_ECORRUPT;
        }
        rp.role = strcmp(role, "voter") == 0     ? NK_RAFT_VOTER
                  : strcmp(role, "learner") == 0 ? NK_RAFT_LEARNER
                                                 : 0;
        r->peers[r->n_peers++] = rp;
    }
    return nk_region_validate(r, NULL) == NK_OK ? NK_OK : NK_ECORRUPT;
}

int nk_seedsnap_remove(nk_rt *rt, const char *workdir, nk_errbuf *eb)
{
    char dir[1024];
    nk_seedsnap_dir(workdir, dir, sizeof(dir));
    nk_names names = {0};
    int rc = nk_rt_dir_list(rt, dir, &names);
    if (rc == NK_ENOENT) {
        return NK_OK;
    }
    for (size_t i = 0; rc == NK_OK && i < names.count; i++) {
        char p[1100];
        rc = nk_path_fmt(p, sizeof(p), dir, names.names[i]);
        rc = rc ? rc : nk_rt_remove(rt, p);
    }
    nk_names_free(&names);
    rc = rc ? rc : nk_rt_remove(rt, dir);
    rc = rc ? rc : nk_rt_dir_sync(rt, workdir);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot remove the earlier seed snapshot %s: %s", dir, nk_strerror(rc));
    }
    return rc;
}

int nk_seedsnap_export(nk_rt *rt, const char *workdir, const nk_region *region, uint64_t raft_index,
                       uint64_t raft_term, uint64_t last_sequence, const nk_db_file_info *files,
                       size_t n, nk_seedsnap *out, nk_errbuf *eb)
{
    char dir[1024];
    nk_seedsnap_dir(workdir, dir, sizeof(dir));
    int rc = nk_seedsnap_remove(rt, workdir, eb);
    if (rc != NK_OK) {
        return rc;
    }
    rc = nk_rt_dir_create(rt, dir);
    rc = rc ? rc : nk_rt_dir_sync(rt, workdir);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "cannot create %s: %s", dir, nk_strerror(rc));
        return rc;
    }
    nk_seedsnap s;
    memset(&s, 0, sizeof(s));
    s.region = *region;
    s.raft_index = raft_index;
    s.raft_term = raft_term;
    s.last_sequence = last_sequence;
    s.files = calloc(n + 1, sizeof(*s.files));
    if (s.files == NULL) {
        return NK_ENOMEM;
    }
    /* 1. links: metadata only */
    for (size_t i = 0; rc == NK_OK && i < n; i++) {
        char from[1100], to[1100];
        nk_db_sst_path(workdir, files[i].number, from, sizeof(from));
        nk_db_sst_path(dir, files[i].number, to, sizeof(to));
        rc = nk_rt_link(rt, from, to);
        if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot hard-link %s to %s: %s%s", from, to, nk_strerror(rc),
                          rc == NK_ENOTSUP ? " (the file system does not support hard links)" : "");
        }
        nk_seedsnap_file *f = &s.files[s.n_files++];
        snprintf(f->name, sizeof(f->name), "%06" PRIu64 ".sst", files[i].number);
        f->level = files[i].level;
        f->size = files[i].size;
        f->xxh64 = files[i].xxh64;
    }
    /* No directory sync for the links here: SNAPSHOT.json is renamed into
     * the same directory and that directory is synced after it, which makes
     * the links durable too. Until then a crash may lose links or the
     * metadata; either way the export is incomplete (the metadata is
     * absent, or lists a file that is missing) and the next init redoes it. */
    if (rc == NK_OK) {
        rc = nk_failpoint(rt, "seedsnap.after_links");
    }
    /* 2. the checksums: the engine's manifest records the XXH64 its writer
     * took as each table's bytes went out, so reading 1 GB back to learn
     * them again would cost as much as the copy the links avoid. Only a
     * table of an older workdir (no recorded hash) is read here. Either way
     * the link's size must be the recorded one (a stat: metadata only). */
    for (size_t i = 0; rc == NK_OK && i < s.n_files; i++) {
        char p[1100];
        nk_path_fmt(p, sizeof(p), dir, s.files[i].name);
        uint64_t size = 0;
        if (files[i].has_xxh64) {
            nk_stat st;
            rc = nk_rt_stat(rt, p, &st);
            size = st.size;
        } else {
            rc = nk_file_xxh64(rt, p, &s.files[i].xxh64, &size);
        }
        if (rc == NK_OK && size != s.files[i].size) {
            nk_errbuf_set(eb, "%s: %" PRIu64 " bytes, the engine records %" PRIu64, p, size,
                          s.files[i].size);
            rc = NK_ECORRUPT;
        } else if (rc != NK_OK) {
            nk_errbuf_set(eb, "cannot read %s to checksum it: %s", p, nk_strerror(rc));
        }
        s.total_bytes += size;
    }
    /* 3. the metadata, last */
    json_t *o = NULL;
    if (rc == NK_OK) {
        nk_format_utc(nk_rt_wall(rt), s.created_at, sizeof(s.created_at));
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < s.n_files; i++) {
            char h[17];
            snprintf(h, sizeof(h), "%016" PRIx64, s.files[i].xxh64);
            json_array_append_new(arr, json_pack("{s:s,s:i,s:I,s:s}", "name", s.files[i].name,
                                                 "level", (int)s.files[i].level, "size",
                                                 (json_int_t)s.files[i].size, "xxh64", h));
        }
        json_t *reg = region_json(region);
        if (arr != NULL && reg != NULL) {
            o = json_pack("{s:i,s:O,s:I,s:I,s:I,s:I,s:O,s:s}", "format", NK_SEEDSNAP_FORMAT,
                          "region", reg, "raft_index", (json_int_t)raft_index, "raft_term",
                          (json_int_t)raft_term, "last_sequence", (json_int_t)last_sequence,
                          "total_bytes", (json_int_t)s.total_bytes, "files", arr, "created_at",
                          s.created_at);
        }
        json_decref(arr);
        json_decref(reg);
        rc = o ? NK_OK : NK_ENOMEM;
    }
    if (rc == NK_OK) {
        rc = nk_jsonfile_write(rt, dir, NK_SEEDSNAP_META, o, "seedsnap.meta", eb);
    }
    json_decref(o);
    if (rc == NK_OK && out != NULL) {
        *out = s;
    } else {
        nk_seedsnap_free(&s);
    }
    return rc;
}

int nk_seedsnap_load(nk_rt *rt, const char *workdir, nk_seedsnap *out, nk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    char dir[1024], path[1100];
    nk_seedsnap_dir(workdir, dir, sizeof(dir));
    nk_path_fmt(path, sizeof(path), dir, NK_SEEDSNAP_META);
    json_t *o = NULL;
    int rc = nk_jsonfile_read(rt, path, META_MAX_BYTES, &o, eb);
    if (rc == NK_ENOTDIR) {
        rc = NK_ENOENT;
    }
    if (rc != NK_OK) {
        return rc;
    }
    rc = NK_ECORRUPT;
    uint64_t fmt = 0;
    json_t *files = json_object_get(o, "files");
    const char *created = nk_json_str(o, "created_at");
    if (!nk_json_u64(o, "format", &fmt) || fmt != NK_SEEDSNAP_FORMAT) {
        nk_errbuf_set(eb, "%s: unsupported format (this build reads format %d)", path,
                      NK_SEEDSNAP_FORMAT);
        goto out;
    }
    if (region_from_json(json_object_get(o, "region"), &out->region) != NK_OK ||
        !nk_json_u64(o, "raft_index", &out->raft_index) ||
        !nk_json_u64(o, "raft_term", &out->raft_term) ||
        !nk_json_u64(o, "last_sequence", &out->last_sequence) ||
        !nk_json_u64(o, "total_bytes", &out->total_bytes) || !json_is_array(files) ||
        json_array_size(files) > NK_SEEDSNAP_MAX_FILES || created == NULL ||
        strlen(created) >= sizeof(out->created_at)) {
        nk_errbuf_set(eb, "%s: missing or malformed fields", path);
        goto out;
    }
    snprintf(out->created_at, sizeof(out->created_at), "%s", created);
    out->files = calloc(json_array_size(files) + 1, sizeof(*out->files));
    if (out->files == NULL) {
        rc = NK_ENOMEM;
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *f = json_array_get(files, i);
        nk_seedsnap_file *sf = &out->files[i];
        const char *name = nk_json_str(f, "name");
        const char *h = nk_json_str(f, "xxh64");
        uint64_t level = 0, num = 0;
        /* only plain table names: never a path out of the directory */
        if (name == NULL || strlen(name) >= sizeof(sf->name) ||
            !nk_name_number(name, strlen(name), "", ".sst", &num) ||
            !nk_json_u64(f, "level", &level) || level >= 64 || !nk_json_u64(f, "size", &sf->size) ||
            h == NULL || strlen(h) != 16) {
            nk_errbuf_set(eb, "%s: file entry #%zu is malformed (names must be NNNNNN.sst)", path,
                          i);
            goto out;
        }
        char *end = NULL;
        sf->xxh64 = strtoull(h, &end, 16);
        if (end == NULL || *end != '\0') {
            nk_errbuf_set(eb, "%s: file entry #%zu has a bad xxh64", path, i);
            goto out;
        }
        snprintf(sf->name, sizeof(sf->name), "%s", name);
        sf->level = (uint32_t)level;
        total += sf->size;
        out->n_files = i + 1;
    }
    if (total != out->total_bytes) {
        nk_errbuf_set(eb, "%s: total_bytes disagrees with the file list", path);
        goto out;
    }
    rc = NK_OK;
out:
    json_decref(o);
    if (rc != NK_OK) {
        nk_seedsnap_free(out);
    }
    return rc;
}

int nk_seedsnap_check_files(nk_rt *rt, const char *workdir, const nk_seedsnap *s, bool rehash,
                            nk_errbuf *eb)
{
    char dir[1024];
    nk_seedsnap_dir(workdir, dir, sizeof(dir));
    for (size_t i = 0; i < s->n_files; i++) {
        char p[1100];
        nk_path_fmt(p, sizeof(p), dir, s->files[i].name);
        nk_stat st;
        int rc = nk_rt_stat(rt, p, &st);
        if (rc != NK_OK || st.is_dir || st.size != s->files[i].size) {
            nk_errbuf_set(eb, "seed snapshot file %s is %s", p,
                          rc != NK_OK ? "missing" : "not the size SNAPSHOT.json records");
            return rc == NK_OK || rc == NK_ENOENT ? NK_ECORRUPT : rc;
        }
        if (rehash) {
            uint64_t h = 0, size = 0;
            rc = nk_file_xxh64(rt, p, &h, &size);
            if (rc != NK_OK) {
                nk_errbuf_set(eb, "cannot read %s: %s", p, nk_strerror(rc));
                return rc;
            }
            if (h != s->files[i].xxh64 || size != s->files[i].size) {
                nk_errbuf_set(eb, "seed snapshot file %s fails its xxh64 checksum", p);
                return NK_ECORRUPT;
            }
        }
    }
    return NK_OK;
}
