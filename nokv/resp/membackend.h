/*
 * membackend.h - an in-memory nk_kv_backend for tests, the simulator and
 * fuzzing (and `nokv serve` until the engine lands).
 *
 * A sorted array of entries (bytewise key order), so it is deterministic and
 * needs no randomness. Writes apply at once (visible on submit, as
 * backend.h requires). Durability is only modelled: `done` runs either
 * synchronously inside write (async == false), or after a delay drawn
 * uniformly from [done_min_ns, done_max_ns] from the rt stream
 * "resp.membackend", so completions of different writes can arrive out of
 * order - exactly what the server's per-connection reply ordering must
 * survive. Faults can be injected per write (see below).
 *
 * nk_membackend_free calls every pending done with NK_ESTOPPED (backend.h
 * shutdown contract) and cancels their timers.
 */
#ifndef NK_RESP_MEMBACKEND_H
#define NK_RESP_MEMBACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/resp/backend.h"
#include "nokv/rt.h"

typedef struct nk_membackend nk_membackend;

typedef struct nk_membackend_options {
    nk_rt *rt;            /* required when async (timers, random stream) */
    bool async;           /* false: done runs inside write */
    uint64_t done_min_ns; /* async completion delay range */
    uint64_t done_max_ns;
    bool read_barrier; /* offer backend.h's read_barrier (models a replicated
                          backend); completes like a write's done */
} nk_membackend_options;

/* NK_OK, NK_EINVAL (async without rt, min > max) or NK_ENOMEM. */
int nk_membackend_new(const nk_membackend_options *opt, nk_membackend **out);
void nk_membackend_free(nk_membackend *m);

/* The backend interface; valid until nk_membackend_free. */
nk_kv_backend *nk_membackend_backend(nk_membackend *m);

/* Writes (and read barriers) whose done has not run yet. */
size_t nk_membackend_pending(const nk_membackend *m);
/* Keys stored. */
size_t nk_membackend_count(const nk_membackend *m);
/* Write batches applied so far. */
uint64_t nk_membackend_batches(const nk_membackend *m);

/* Fault injection: the next `n` writes fail at submission with `code`
 * (nothing applied, done not called). */
void nk_membackend_fail_writes(nk_membackend *m, unsigned n, int code);
/* The next `n` writes are applied but their done reports `code`. */
void nk_membackend_fail_completions(nk_membackend *m, unsigned n, int code);
/* Read barriers requested so far (opt.read_barrier). */
uint64_t nk_membackend_barriers(const nk_membackend *m);
/* The next `n` read barriers complete with `code`. */
void nk_membackend_fail_barriers(nk_membackend *m, unsigned n, int code);

#endif /* NK_RESP_MEMBACKEND_H */
