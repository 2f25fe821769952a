/* lin.c - linearizability checkers for client histories (see lin.h). */
#include "sim/check/lin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct zone {
    uint64_t lo, hi;
    uint64_t value;
} zone;

typedef struct wref {
    uint64_t value;
    size_t op;
} wref;

static int zone_cmp(const void *a, const void *b)
{
    const zone *x = a, *y = b;
    if (x->lo != y->lo) {
        return x->lo < y->lo ? -1 : 1;
    }
    return x->hi < y->hi ? -1 : (x->hi > y->hi ? 1 : 0);
}

static int wref_cmp(const void *a, const void *b)
{
    const wref *x = a, *y = b;
    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }
    return x->op < y->op ? -1 : (x->op > y->op ? 1 : 0);
}

/* Index of the write of `value`, or SIZE_MAX. */
static size_t write_of(const wref *w, size_t nw, uint64_t value)
{
    size_t lo = 0, hi = nw;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w[mid].value < value) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < nw && w[lo].value == value ? w[lo].op : SIZE_MAX;
}

bool nk_lin_check_registers(const nk_lin_op *ops, size_t n, uint32_t keys, char *why,
                            size_t why_len)
{
    bool ok = false;
    /* cluster bounds, indexed by history position of the write; slot n is
     * the initial value of the key being checked */
    uint64_t *f = malloc((n + 1) * sizeof(uint64_t));
    uint64_t *s = malloc((n + 1) * sizeof(uint64_t));
    bool *read = calloc(n + 1, sizeof(bool));
    zone *fw = malloc((n + 1) * sizeof(zone));
    zone *bw = malloc((n + 1) * sizeof(zone));
    wref *wr = malloc((n + 1) * sizeof(wref));
    if (!f || !s || !read || !fw || !bw || !wr) {
        snprintf(why, why_len, "linearizability: out of memory in the checker");
        goto out;
    }
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].write) {
            wr[nw++] = (wref){ops[i].value, i};
        }
    }
    qsort(wr, nw, sizeof(*wr), wref_cmp);
    for (size_t k = 0; k < nw; k++) {
        if (wr[k].value == 0 || (k > 0 && wr[k].value == wr[k - 1].value)) {
            snprintf(why, why_len,
                     "linearizability: checker misuse: written value %#" PRIx64
                     " is 0 or not unique",
                     wr[k].value);
            goto out;
        }
    }
    for (uint32_t key = 0; key < keys; key++) {
        size_t init = n;
        f[init] = 0;
        s[init] = 0;
        read[init] = false;
        for (size_t i = 0; i < n; i++) {
            if (ops[i].key == key && ops[i].write) {
                f[i] = ops[i].done ? ops[i].res : UINT64_MAX;
                s[i] = ops[i].inv;
                read[i] = false;
            }
        }
        for (size_t i = 0; i < n; i++) {
            const nk_lin_op *h = &ops[i];
            if (h->key != key || h->write || !h->done) {
                continue;
            }
            size_t wi = init;
            if (h->value != 0) {
                wi = write_of(wr, nw, h->value);
                if (wi == SIZE_MAX || ops[wi].key != key) {
                    snprintf(why, why_len,
                             "linearizability: client %u read key %u = %#" PRIx64 " at %" PRIu64
                             "ns, a value never written to that key",
                             h->client, key, h->value, h->res);
                    goto out;
                }
                if (h->res < ops[wi].inv) {
                    snprintf(why, why_len,
                             "linearizability: client %u read key %u = %#" PRIx64
                             " (done at %" PRIu64 "ns) before that write was invoked "
                             "(%" PRIu64 "ns)",
                             h->client, key, h->value, h->res, ops[wi].inv);
                    goto out;
                }
            }
            read[wi] = true;
            if (h->res < f[wi]) {
                f[wi] = h->res;
            }
            if (h->inv > s[wi]) {
                s[wi] = h->inv;
            }
        }
        size_t nf = 0, nb = 0;
        for (size_t i = 0; i <= n; i++) {
            bool is_w = i == init || (ops[i].key == key && ops[i].write);
            if (!is_w) {
                continue;
            }
            uint64_t value = i == init ? 0 : ops[i].value;
            if (i != init && !ops[i].done && !read[i]) {
                continue; /* unknown outcome, unobserved: may not have happened */
            }
            if (f[i] < s[i]) {
                fw[nf++] = (zone){f[i], s[i], value};
            } else {
                bw[nb++] = (zone){s[i], f[i], value};
            }
        }
        qsort(fw, nf, sizeof(*fw), zone_cmp);
        for (size_t k = 1; k < nf; k++) {
            /* sorted by start: once they are pairwise disjoint so far, an
             * overlap with any earlier zone shows with the previous one */
            if (fw[k].lo < fw[k - 1].hi) {
                snprintf(why, why_len,
                         "linearizability: key %u: values %#" PRIx64 " and %#" PRIx64
                         " were each observed across overlapping spans [%" PRIu64 ", %" PRIu64
                         "] and [%" PRIu64 ", %" PRIu64 "] ns (one must precede the other)",
                         key, fw[k - 1].value, fw[k].value, fw[k - 1].lo, fw[k - 1].hi, fw[k].lo,
                         fw[k].hi);
                goto out;
            }
        }
        for (size_t k = 0; k < nb; k++) {
            /* the forward zone with the largest start below bw[k].lo */
            size_t lo = 0, hi = nf;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (fw[mid].lo < bw[k].lo) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if (lo > 0 && bw[k].hi < fw[lo - 1].hi) {
                snprintf(why, why_len,
                         "linearizability: key %u: value %#" PRIx64 " lived within [%" PRIu64
                         ", %" PRIu64 "] ns, inside the span [%" PRIu64 ", %" PRIu64
                         "] over which value %#" PRIx64 " was observed (a stale read)",
                         key, bw[k].value, bw[k].lo, bw[k].hi, fw[lo - 1].lo, fw[lo - 1].hi,
                         fw[lo - 1].value);
                goto out;
            }
        }
    }
    ok = true;
out:
    free(f);
    free(s);
    free(read);
    free(fw);
    free(bw);
    free(wr);
    return ok;
}

static int incr_cmp(const void *a, const void *b)
{
    const nk_lin_incr *x = a, *y = b;
    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }
    return x->inv < y->inv ? -1 : (x->inv > y->inv ? 1 : 0);
}

bool nk_lin_check_counter(nk_lin_incr *acked, size_t n, uint64_t attempts, bool have_final,
                          uint64_t final_value, char *why, size_t why_len)
{
    qsort(acked, n, sizeof(*acked), incr_cmp);
    for (size_t k = 0; k < n; k++) {
        if (acked[k].value == 0 || (k > 0 && acked[k].value == acked[k - 1].value)) {
            snprintf(why, why_len,
                     "counter: two acknowledged INCRs (clients %u and %u) both returned %" PRIu64
                     " (an increment was lost or applied on a stale state)",
                     k > 0 ? acked[k - 1].client : acked[k].client, acked[k].client,
                     acked[k].value);
            return false;
        }
        if (acked[k].value > attempts) {
            snprintf(why, why_len,
                     "counter: client %u's INCR returned %" PRIu64 " but only %" PRIu64
                     " increments were ever attempted",
                     acked[k].client, acked[k].value, attempts);
            return false;
        }
    }
    /* Real-time order: walking down from the largest value, every INCR that
     * returned more than x must have completed after x's was invoked. */
    uint64_t min_res = UINT64_MAX;
    size_t min_at = 0;
    for (size_t k = n; k > 0; k--) {
        const nk_lin_incr *x = &acked[k - 1];
        if (min_res < x->inv) {
            snprintf(why, why_len,
                     "counter: client %u's INCR returned %" PRIu64 " (invoked at %" PRIu64
                     "ns) after client %u's INCR had returned the larger %" PRIu64
                     " (done at %" PRIu64 "ns)",
                     x->client, x->value, x->inv, acked[min_at].client, acked[min_at].value,
                     min_res);
            return false;
        }
        if (x->res < min_res) {
            min_res = x->res;
            min_at = k - 1;
        }
    }
    if (have_final) {
        uint64_t top = n > 0 ? acked[n - 1].value : 0;
        if (final_value < n || final_value < top || final_value > attempts) {
            snprintf(why, why_len,
                     "counter: final value %" PRIu64 " but %zu INCRs were acknowledged (the "
                     "largest returned %" PRIu64 ") and %" PRIu64 " attempted",
                     final_value, n, top, attempts);
            return false;
        }
    }
    return true;
}
