/*
 * filehash.h - the XXH64 of a whole file, read through the runtime.
 *
 * One implementation for everyone who must checksum a file's bytes after
 * the fact: `nokv check` verifying a table against the hash its manifest
 * records, the seed snapshot hashing tables of an older workdir whose
 * manifest records none, tests. Writers that can hash as they write do so
 * instead (nokv/engine/sst.h: nk_sst_builder_file_xxh64): reading a file
 * back costs as much as copying it.
 */
#ifndef NK_UTIL_FILEHASH_H
#define NK_UTIL_FILEHASH_H

#include <stdint.h>

#include "nokv/rt.h"

/* XXH64 (seed 0) and size of the whole file at path, reading it once in
 * 1 MiB chunks. NK_OK, NK_ENOMEM, or the open/read error. */
int nk_file_xxh64(nk_rt *rt, const char *path, uint64_t *hash, uint64_t *size);

#endif /* NK_UTIL_FILEHASH_H */
