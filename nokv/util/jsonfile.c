/* jsonfile.c - checksummed JSON metadata files (see jsonfile.h). */
#include "nokv/util/jsonfile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/slice.h"
#include "nokv/util/smallfile.h"

static int sum_of(json_t *obj, char out[17])
{
    char *canon = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL) {
        return NK_ENOMEM;
    }
    snprintf(out, 17, "%016" PRIx64, (uint64_t)XXH64(canon, strlen(canon), 0));
    free(canon);
    return NK_OK;
}

int nk_jsonfile_write(nk_rt *rt, const char *dir, const char *name, json_t *obj,
                      const char *fp_prefix, nk_errbuf *eb)
{
    char sum[17];
    int rc = sum_of(obj, sum);
    if (rc != NK_OK) {
        return rc;
    }
    json_t *full = json_deep_copy(obj);
    if (full == NULL || json_object_set_new(full, "xxh64", json_string(sum)) != 0) {
        json_decref(full);
        return NK_ENOMEM;
    }
    char *text = json_dumps(full, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(full);
    if (text == NULL) {
        return NK_ENOMEM;
    }
    size_t n = strlen(text);
    nk_buf b = {0};
    rc = nk_buf_append(&b, text, n);
    rc = rc ? rc : nk_buf_append_u8(&b, '\n');
    free(text);
    if (rc == NK_OK) {
        rc = nk_smallfile_replace(rt, dir, name, b.data, b.len, fp_prefix, eb);
    }
    nk_buf_free(&b);
    return rc;
}

int nk_jsonfile_read(nk_rt *rt, const char *path, size_t max_bytes, json_t **out, nk_errbuf *eb)
{
    *out = NULL;
    nk_buf b = {0};
    int rc = nk_smallfile_read(rt, path, max_bytes, &b, eb);
    if (rc != NK_OK) {
        nk_buf_free(&b);
        return rc == NK_ETOOBIG ? NK_ECORRUPT : rc;
    }
    json_error_t jerr;
    json_t *o = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
    nk_buf_free(&b);
    if (o == NULL || !json_is_object(o)) {
        nk_errbuf_set(eb, "%s: not a JSON object (%s)", path, o ? "wrong type" : jerr.text);
        json_decref(o);
        return NK_ECORRUPT;
    }
    json_t *sum = json_object_get(o, "xxh64");
    char want[17];
    char have[17] = {0};
    if (json_is_string(sum)) {
        snprintf(have, sizeof(have), "%s", json_string_value(sum));
    }
    json_object_del(o, "xxh64");
    rc = sum_of(o, want);
    if (rc == NK_OK && (have[0] == '\0' || strcmp(want, have) != 0)) {
        nk_errbuf_set(eb, "%s: %s (edited by hand or damaged); refusing to trust it", path,
                      have[0] ? "checksum mismatch" : "missing \"xxh64\" checksum");
        rc = NK_ECORRUPT;
    }
    if (rc != NK_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return NK_OK;
}

bool nk_json_u64(const json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

const char *nk_json_str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
