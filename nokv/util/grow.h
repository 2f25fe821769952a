/*
 * grow.h - room for one more element in a malloc'd array, written once.
 *
 * Arrays of plain structs (segments, file lists, edits) grow by doubling;
 * on NK_ENOMEM the array is left as it was, so a caller can fail cleanly.
 */
#ifndef NK_UTIL_GROW_H
#define NK_UTIL_GROW_H

#include <stdbool.h>
#include <stddef.h>

/* Make room for at least count + 1 elements of `size` bytes in *arr, whose
 * capacity is *cap elements. NK_OK or NK_ENOMEM (unchanged). */
int nk_grow(void **arr, size_t *cap, size_t count, size_t size);

/* For arrays indexed by position (a term, an index, a buffer): room for at
 * least `need` elements, the new ones zero-filled. false on out of memory
 * (unchanged). The simulator's checkers and the raft test harness had one
 * copy each. */
bool nk_grow_zeroed(void **arr, size_t *cap, size_t need, size_t size);

#endif /* NK_UTIL_GROW_H */
