/*
 * jsonfile.h - small checksummed JSON metadata files (the MODE.json style).
 *
 * An object is stored as its compact, key-sorted JSON with one more key,
 * "xxh64": XXH64 (seed 0, 16 lowercase hex digits) of the compact, key-sorted
 * JSON of every other key. Key order and formatting are canonical, so the
 * checksum can be recomputed from the parsed object, and a hand edit or a
 * damaged byte is refused instead of silently believed. Written through
 * nokv/util/smallfile.h (tmp + sync + rename + dir sync).
 */
#ifndef NK_UTIL_JSONFILE_H
#define NK_UTIL_JSONFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nokv/rt.h"

/* Write obj (which must not hold "xxh64") as <dir>/<name>. */
int nk_jsonfile_write(nk_rt *rt, const char *dir, const char *name, json_t *obj,
                      const char *fp_prefix, nk_errbuf *eb);

/* Read and verify <path>; *out is the object without "xxh64" (json_decref
 * it). NK_ENOENT when absent; NK_ECORRUPT (eb names the file and why). */
int nk_jsonfile_read(nk_rt *rt, const char *path, size_t max_bytes, json_t **out, nk_errbuf *eb);

/* Field helpers for readers: a positive integer / a string; false when the
 * key is missing or of another type. */
bool nk_json_u64(const json_t *o, const char *key, uint64_t *out);
const char *nk_json_str(const json_t *o, const char *key);

#endif /* NK_UTIL_JSONFILE_H */
