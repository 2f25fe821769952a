/*
 * arena.h - bump allocator for memtables.
 *
 * Memory is taken from the system in blocks (default 64 KiB) and handed out
 * by bumping a pointer; nothing is freed individually, everything is freed at
 * once by nk_arena_free. This is what a memtable wants: many small,
 * immutable allocations that all die together when the table is flushed, and
 * an exact, cheap measure of memory held (nk_arena_usage) to decide when to
 * flush.
 *
 * Allocations are aligned to NK_ARENA_ALIGN (8), enough for pointers and
 * 64-bit integers. A request larger than a quarter of the block size gets a
 * dedicated block, so a big value never wastes the rest of a shared block.
 *
 * Not thread-safe: one writer. Memory handed out stays valid and unmoved until
 * nk_arena_free, so readers holding pointers need no coordination beyond the
 * handoff of the arena itself.
 */
#ifndef NK_ENGINE_ARENA_H
#define NK_ENGINE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#define NK_ARENA_ALIGN 8u
#define NK_ARENA_DEFAULT_BLOCK (64u * 1024u)

typedef struct nk_arena_block nk_arena_block;

typedef struct nk_arena {
    /* private */
    uint8_t *ptr;           /* next free byte in the current block */
    size_t left;            /* bytes left in the current block */
    size_t block_size;      /* size of regular blocks */
    nk_arena_block *blocks; /* every block, newest first */
    size_t usage;           /* bytes obtained from malloc, headers included */
    size_t allocated;       /* bytes handed out, alignment padding included */
} nk_arena;

/* block_size 0 selects NK_ARENA_DEFAULT_BLOCK; tiny sizes are raised to 256.
 * Allocates nothing yet. */
void nk_arena_init(nk_arena *a, size_t block_size);

/* n bytes, NK_ARENA_ALIGN-aligned, uninitialised; NULL when malloc fails (the
 * arena stays usable). n == 0 returns a valid non-NULL pointer. */
void *nk_arena_alloc(nk_arena *a, size_t n);

/* Bytes held from the system (what memory pressure decisions should use). */
static inline size_t nk_arena_usage(const nk_arena *a)
{
    return a->usage;
}

/* Bytes handed out to callers (includes alignment padding). */
static inline size_t nk_arena_allocated(const nk_arena *a)
{
    return a->allocated;
}

/* Release every block; the arena is then empty and reusable. */
void nk_arena_free(nk_arena *a);

#endif /* NK_ENGINE_ARENA_H */
