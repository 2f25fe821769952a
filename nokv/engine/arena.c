/* arena.c - block-based bump allocation. */
#include "nokv/engine/arena.h"

#include <stdlib.h>

struct nk_arena_block {
    nk_arena_block *next;
    size_t size; /* usable bytes after the header */
    /* Keeps the payload that follows the header 16-byte aligned on every
     * ABI we build for, so the first allocation needs no padding. */
    _Alignas(16) uint8_t data[];
};

void nk_arena_init(nk_arena *a, size_t block_size)
{
    if (block_size == 0) {
        block_size = NK_ARENA_DEFAULT_BLOCK;
    }
    if (block_size < 256) {
        block_size = 256;
    }
    a->ptr = NULL;
    a->left = 0;
    a->block_size = block_size;
    a->blocks = NULL;
    a->usage = 0;
    a->allocated = 0;
}

static nk_arena_block *new_block(nk_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(nk_arena_block)) {
        return NULL;
    }
    nk_arena_block *b = malloc(sizeof(nk_arena_block) + size);
    if (b == NULL) {
        return NULL;
    }
    b->size = size;
    b->next = a->blocks;
    a->blocks = b;
    a->usage += sizeof(nk_arena_block) + size;
    return b;
}

void *nk_arena_alloc(nk_arena *a, size_t n)
{
    size_t pad = (size_t)(-(uintptr_t)a->ptr) & (NK_ARENA_ALIGN - 1);
    if (a->ptr != NULL && n <= a->left && pad <= a->left - n) {
        uint8_t *p = a->ptr + pad;
        a->ptr = p + n;
        a->left -= pad + n;
        a->allocated += pad + n;
        return p;
    }
    if (n > a->block_size / 4) {
        /* Dedicated block: keep the current block for later small requests. */
        size_t sz = n ? n : 1;
        nk_arena_block *b = new_block(a, sz);
        if (b == NULL) {
            return NULL;
        }
        a->allocated += n;
        return b->data;
    }
    nk_arena_block *b = new_block(a, a->block_size);
    if (b == NULL) {
        return NULL;
    }
    a->ptr = b->data + n;
    a->left = a->block_size - n;
    a->allocated += n;
    return b->data;
}

void nk_arena_free(nk_arena *a)
{
    nk_arena_block *b = a->blocks;
    while (b != NULL) {
        nk_arena_block *next = b->next;
        free(b);
        b = next;
    }
    nk_arena_init(a, a->block_size);
}
