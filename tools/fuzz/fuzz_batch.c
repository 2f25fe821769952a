/*
 * fuzz_batch.c - libFuzzer target: the write batch decoder
 * (nk_batch_iterate, nk_batch_header) must survive arbitrary bytes.
 *
 * Input: an encoded batch, as it would sit in a WAL record payload.
 * Invariants checked (abort on violation):
 *   - results are NK_OK or NK_ECORRUPT (with a message); the callback's own
 *     code comes back unchanged when it stops the walk;
 *   - a batch that decodes is consistent: its header agrees, operations
 *     come with consecutive sequence numbers from the header's base, valid
 *     types, non-empty keys, no value on deletes, views inside the input;
 *   - re-encoding the operations with nk_batch_put / nk_batch_delete +
 *     nk_batch_set_seq gives a batch that decodes to the same operations
 *     and is never longer (the decoder accepts non-minimal varints, so the
 *     bytes may differ; keys over NK_KEY_MAX decode but cannot be re-added).
 *
 * Seed corpus: NOKV_FUZZ_GEN=<dir> build-fuzz/fuzz_batch writes a few
 * batches built with nk_batch_put/delete into <dir> and exits.
 *
 * Build: see tools/fuzz/CMakeLists.part.cmake (NOKV_FUZZ=ON, clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/engine/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

typedef struct op {
    nk_ktype type;
    nk_slice key, value;
} op;

#define MAX_OPS 4096u

typedef struct walk {
    const uint8_t *lo, *hi; /* the input: every view must lie inside */
    op *ops;                /* what was seen (first MAX_OPS), or NULL */
    bool compare;           /* check against ops instead of recording */
    uint64_t next_seq;
    uint32_t seen;
    uint32_t stop_at; /* return NK_EBUSY at this op (UINT32_MAX = never) */
    nk_batch rebuilt;
    bool rebuild_ok;
} walk;

static bool inside(const walk *w, nk_slice s)
{
    if (s.len == 0) {
        return true;
    }
    return s.data >= w->lo && s.data <= w->hi && s.len <= (size_t)(w->hi - s.data);
}

static int visit(void *arg, uint64_t seq, nk_ktype type, nk_slice key, nk_slice value)
{
    walk *w = arg;
    if (w->seen == w->stop_at) {
        return NK_EBUSY;
    }
    if (w->compare) {
        const op *o = &w->ops[w->seen];
        if (seq != w->next_seq || o->type != type || o->key.len != key.len ||
            o->value.len != value.len || memcmp(o->key.data, key.data, key.len) != 0 ||
            (value.len && memcmp(o->value.data, value.data, value.len) != 0)) {
            fprintf(stderr, "fuzz_batch: re-encoded operation %u differs\n", w->seen);
            abort();
        }
        w->next_seq++;
        w->seen++;
        return NK_OK;
    }
    if (seq != w->next_seq || !nk_ktype_valid(type) || key.len == 0 || !inside(w, key) ||
        !inside(w, value) || (type == NK_KT_DELETE && value.len != 0)) {
        fprintf(stderr, "fuzz_batch: bad operation %u (seq %llu, type %d, klen %zu)\n", w->seen,
                (unsigned long long)seq, (int)type, key.len);
        abort();
    }
    volatile uint8_t sink = key.data[0] ^ key.data[key.len - 1];
    if (value.len) {
        sink ^= value.data[0] ^ value.data[value.len - 1];
    }
    (void)sink;
    if (w->ops != NULL && w->seen < MAX_OPS) {
        w->ops[w->seen] = (op){type, key, value};
    } else {
        w->rebuild_ok = false;
    }
    int rc = type == NK_KT_PUT ? nk_batch_put(&w->rebuilt, key.data, key.len, value.data, value.len)
                               : nk_batch_delete(&w->rebuilt, key.data, key.len);
    if (rc != NK_OK) {
        w->rebuild_ok = false; /* key over NK_KEY_MAX, or NK_ENOMEM */
    }
    w->next_seq++;
    w->seen++;
    return NK_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nk_errbuf eb;
    eb.msg[0] = '\0';
    uint64_t base = 0;
    uint32_t count = 0;
    int hrc = nk_batch_header(data, size, &base, &count);
    if (hrc != NK_OK && hrc != NK_ECORRUPT) {
        abort();
    }

    walk w = {
        .lo = data, .hi = data + size, .next_seq = base, .stop_at = UINT32_MAX, .rebuild_ok = true};
    w.ops = malloc(MAX_OPS * sizeof(op));
    if (w.ops == NULL || nk_batch_init(&w.rebuilt) != NK_OK) {
        free(w.ops);
        return 0;
    }
    int rc = nk_batch_iterate(data, size, visit, &w, &eb);
    if (rc != NK_OK && rc != NK_ECORRUPT) {
        fprintf(stderr, "fuzz_batch: unexpected result %d\n", rc);
        abort();
    }
    if (rc == NK_ECORRUPT && eb.msg[0] == '\0') {
        fprintf(stderr, "fuzz_batch: NK_ECORRUPT without a message\n");
        abort();
    }
    if (rc == NK_OK) {
        /* a decodable batch has a good header and exactly `count` ops */
        if (hrc != NK_OK || w.seen != count) {
            fprintf(stderr, "fuzz_batch: header rc %d, count %u, visited %u\n", hrc, count, w.seen);
            abort();
        }
        if (w.rebuild_ok) {
            nk_batch_set_seq(&w.rebuilt, base);
            nk_slice re = nk_batch_data(&w.rebuilt);
            walk wc = {.lo = re.data,
                       .hi = re.data + re.len,
                       .ops = w.ops,
                       .compare = true,
                       .next_seq = base,
                       .stop_at = UINT32_MAX};
            if (re.len > size || nk_batch_iterate(re.data, re.len, visit, &wc, &eb) != NK_OK ||
                wc.seen != count) {
                fprintf(stderr,
                        "fuzz_batch: re-encoding (%zu bytes of %zu) does not decode "
                        "to the same %u operations\n",
                        re.len, size, count);
                abort();
            }
        }
        /* a callback error stops the walk and comes back as is */
        if (count > 0) {
            walk w2 = {.lo = data,
                       .hi = data + size,
                       .next_seq = base,
                       .stop_at = count / 2,
                       .rebuild_ok = true};
            if (nk_batch_init(&w2.rebuilt) != NK_OK) {
                nk_batch_free(&w.rebuilt);
                free(w.ops);
                return 0;
            }
            if (nk_batch_iterate(data, size, visit, &w2, &eb) != NK_EBUSY) {
                abort();
            }
            nk_batch_free(&w2.rebuilt);
        }
    }
    nk_batch_free(&w.rebuilt);
    free(w.ops);
    return 0;
}

/* -------------------------------------------------- seed generation --- */

static void emit(const char *dir, const char *name, const nk_batch *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    nk_slice d = nk_batch_data(b);
    if (f == NULL || fwrite(d.data, 1, d.len, f) != d.len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("NOKV_FUZZ_GEN");
    if (dir == NULL) {
        return 0;
    }
    nk_batch b = {0};
    nk_batch_init(&b);
    emit(dir, "empty", &b);
    nk_batch_put(&b, "k", 1, "v", 1);
    nk_batch_set_seq(&b, 1);
    emit(dir, "one-put", &b);
    nk_batch_delete(&b, "gone", 4);
    nk_batch_put(&b, "empty-value", 11, "", 0);
    char big[300];
    memset(big, 'x', sizeof(big));
    nk_batch_put(&b, "long", 4, big, sizeof(big));
    nk_batch_set_seq(&b, 0x0102030405ull);
    emit(dir, "mixed", &b);
    nk_batch_free(&b);
    exit(0);
}
