/* filehash.c - whole-file XXH64 through the runtime (see filehash.h). */
#include "nokv/util/filehash.h"

#include <stdlib.h>

#include <xxhash.h>

#define HASH_CHUNK (1u << 20)

int nk_file_xxh64(nk_rt *rt, const char *path, uint64_t *hash, uint64_t *size)
{
    nk_file *f = NULL;
    int rc = nk_rt_file_open(rt, path, NK_OPEN_READ, &f);
    if (rc != NK_OK) {
        return rc;
    }
    uint8_t *buf = malloc(HASH_CHUNK);
    XXH64_state_t *st = XXH64_createState();
    if (buf == NULL || st == NULL) {
        rc = NK_ENOMEM;
    } else {
        XXH64_reset(st, 0);
    }
    uint64_t off = 0;
    /* bounded: each turn consumes got > 0 bytes of a finite file */
    while (rc == NK_OK) {
        size_t got = 0;
        rc = nk_rt_file_read_at(rt, f, off, buf, HASH_CHUNK, &got);
        if (rc != NK_OK || got == 0) {
            break;
        }
        XXH64_update(st, buf, got);
        off += got;
    }
    if (rc == NK_OK) {
        *hash = (uint64_t)XXH64_digest(st);
        *size = off;
    }
    XXH64_freeState(st);
    free(buf);
    nk_rt_file_close(rt, f);
    return rc;
}
