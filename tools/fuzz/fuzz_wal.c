/*
 * fuzz_wal.c - libFuzzer target: WAL recovery (nk_wal_open) must survive
 * arbitrary segment files, and what it recovers must be stable.
 *
 * Input: byte 0 is a flag byte; the rest is cut into segment files, a new
 * segment starting at every occurrence of the WAL header magic ("nokv.wal")
 * after the first byte (so a concatenation of real segments splits back
 * into them). At most MAX_SEGS segments.
 *   bit 0  FIXUP: recompute the header checksum and every record checksum
 *          the harness can frame (logfile.h layout) before writing, so
 *          mutations reach the lsn / claim / torn-tail logic and the payload
 *          delivery instead of dying at a checksum
 *   bit 1  replay_from = 2 + (flags >> 4)  (else 0: replay everything)
 *   bit 2  name segments 1, 2, 3... (else take each header's number field
 *          when the headers give strictly increasing plausible numbers)
 *   bit 3  the replay callback fails (NK_EBUSY) at record (flags >> 4):
 *          nk_wal_open must return exactly that code
 * Files live on the simulator's in-memory disk (sim/sim.h): no real I/O.
 * Every replayed payload is also run through nk_batch_iterate, as the DB
 * does.
 *
 * Invariants checked (abort on violation):
 *   - results are NK_OK or NK_E* codes; NK_ECORRUPT / NK_ENOTSUP explain;
 *   - replayed lsns are contiguous and >= replay_from, and agree with
 *     nk_wal_recovery_info, nk_wal_last_lsn and nk_wal_durable_lsn (which
 *     are max(last recovered lsn, replay_from - 1));
 *   - after a successful open, an append + clean close, a second open
 *     succeeds without a torn tail and replays exactly the same records
 *     plus the appended one (recovery is idempotent and cuts durably).
 *
 * Seed corpus: NOKV_FUZZ_GEN=<dir> build-fuzz/fuzz_wal writes logs made by
 * the WAL itself (several segments, syncs, a clean close, an unclean end)
 * into <dir> and exits.
 *
 * NOKV_FUZZ_VERBOSE=1 prints what each open returned (triage, seed checks).
 *
 * Build: see tools/fuzz/CMakeLists.part.cmake (NOKV_FUZZ=ON, clang).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/batch.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/wal.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define F_FIXUP 0x01u
#define F_REPLAY_FROM 0x02u
#define F_SEQ_NAMES 0x04u
#define F_CB_FAIL 0x08u

#define MAX_SEGS 8u
#define WAL_DIR "/wal"

/* ------------------------------------------------------- sim harness --- */

#include "fuzz_sim.h"

static void check_rc(const char *what, int rc, const nk_errbuf *eb)
{
    if (rc > 0 || rc < NK_ERANGE) {
        fprintf(stderr, "fuzz_wal: %s: result %d is not an NK_E* code\n", what, rc);
        abort();
    }
    if ((rc == NK_ECORRUPT || rc == NK_ENOTSUP) && eb != NULL && eb->msg[0] == '\0') {
        fprintf(stderr, "fuzz_wal: %s: %s without a message\n", what, nk_errname(rc));
        abort();
    }
}

static void die(const char *fmt, uint64_t a, uint64_t b)
{
    fprintf(stderr, "fuzz_wal: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    abort();
}

/* ------------------------------------------------------------ fixup --- */

/* Recompute the checksums of one logfile.h file in place. */
static void fixup_log(uint8_t *f, size_t len)
{
    if (len < NK_LOGFILE_HDR_SIZE) {
        return;
    }
    nk_put_u64(f + 40, XXH64(f, 40, 0));
    size_t off = NK_LOGFILE_HDR_SIZE;
    while (len - off >= NK_LOGREC_OVERHEAD) {
        uint32_t plen = nk_get_u32(f + off + 8);
        if (plen > len - off - NK_LOGREC_OVERHEAD) {
            return;
        }
        size_t covered = NK_LOGREC_HDR_SIZE + (size_t)plen;
        nk_put_u64(f + off + covered, XXH64(f + off, covered, 0));
        off += NK_LOGREC_OVERHEAD + plen;
    }
}

/* ------------------------------------------------------------ replay --- */

typedef struct replay {
    uint64_t replay_from;
    uint64_t first, last; /* lsns seen (first == 0: none) */
    uint64_t digest;      /* of (lsn, payload) in order */
    uint64_t fail_at;     /* 0 = never; else fail at the fail_at-th record */
    uint64_t calls;
} replay;

static int batch_visit(void *arg, uint64_t seq, nk_ktype type, nk_slice key, nk_slice value)
{
    (void)arg;
    (void)seq;
    (void)type;
    volatile uint8_t x = key.len ? key.data[key.len - 1] : 0;
    if (value.len) {
        x ^= value.data[value.len - 1];
    }
    (void)x;
    return NK_OK;
}

static int on_record(void *arg, uint64_t lsn, const uint8_t *payload, size_t len)
{
    replay *r = arg;
    r->calls++;
    if (r->fail_at != 0 && r->calls == r->fail_at) {
        return NK_EBUSY;
    }
    if (lsn < r->replay_from || lsn == 0 || (r->first != 0 && lsn != r->last + 1)) {
        die("replayed lsn %" PRIu64 " after %" PRIu64, lsn, r->last);
    }
    if (r->first == 0) {
        r->first = lsn;
    }
    r->last = lsn;
    uint64_t mix[2] = {lsn, XXH64(payload, len, lsn)};
    r->digest = XXH64(mix, sizeof(mix), r->digest);
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_batch_iterate(payload, len, batch_visit, NULL, &eb);
    if (rc != NK_OK && rc != NK_ECORRUPT) {
        die("batch decode returned %" PRIu64 "%" PRIu64, (uint64_t)(int64_t)rc, 0);
    }
    return NK_OK;
}

/* ----------------------------------------------------------- target --- */

static const uint8_t wal_magic[8] = {'n', 'o', 'k', 'v', '.', 'w', 'a', 'l'};

static void write_file(const char *path, const uint8_t *p, size_t len)
{
    nk_file *f = NULL;
    if (nk_rt_file_open(g_rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f) != NK_OK ||
        (len && nk_rt_file_write_at(g_rt, f, 0, p, len) != NK_OK)) {
        abort();
    }
    nk_rt_file_close(g_rt, f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    data++;
    size--;

    /* cut into segments at every header magic */
    size_t starts[MAX_SEGS + 1];
    size_t nseg = 0;
    starts[nseg++] = 0;
    for (size_t i = 1; i + sizeof(wal_magic) <= size && nseg < MAX_SEGS; i++) {
        if (data[i] == 'n' && memcmp(data + i, wal_magic, sizeof(wal_magic)) == 0) {
            starts[nseg++] = i;
        }
    }
    starts[nseg] = size;

    uint64_t numbers[MAX_SEGS];
    bool from_hdr = !(flags & F_SEQ_NAMES);
    for (size_t i = 0; i < nseg && from_hdr; i++) {
        size_t len = starts[i + 1] - starts[i];
        uint64_t n = len >= 24 ? nk_get_u64(data + starts[i] + 16) : 0;
        if (n == 0 || n > 999999999u || (i > 0 && n <= numbers[i - 1])) {
            from_hdr = false;
        }
        numbers[i] = n;
    }
    if (!from_hdr) {
        for (size_t i = 0; i < nseg; i++) {
            numbers[i] = i + 1;
        }
    }

    nk_sim *s = boot();
    if (nk_rt_dir_create(g_rt, WAL_DIR) != NK_OK) {
        abort();
    }
    for (size_t i = 0; i < nseg; i++) {
        size_t len = starts[i + 1] - starts[i];
        uint8_t *seg = malloc(len ? len : 1);
        if (seg == NULL) {
            nk_sim_free(s);
            return 0;
        }
        memcpy(seg, data + starts[i], len);
        if (flags & F_FIXUP) {
            fixup_log(seg, len);
        }
        char path[64];
        snprintf(path, sizeof(path), WAL_DIR "/%06" PRIu64 ".log", numbers[i]);
        write_file(path, seg, len);
        free(seg);
    }

    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = NK_WAL_MIN_SEGMENT_SIZE;
    if (flags & F_REPLAY_FROM) {
        o.replay_from = 2 + (flags >> 4);
    }
    replay r1 = {.replay_from = o.replay_from};
    if (flags & F_CB_FAIL) {
        r1.fail_at = 1 + (flags >> 4);
    }
    nk_wal *w = NULL;
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_wal_open(g_rt, WAL_DIR, &o, on_record, &r1, &w, &eb);
    if (g_verbose) {
        fprintf(stderr, "fuzz_wal: open: %s %s\n", nk_errname(rc), eb.msg);
    }
    check_rc("open", rc, &eb);
    if (r1.fail_at != 0 && r1.calls >= r1.fail_at && rc != NK_EBUSY) {
        die("callback failed at record %" PRIu64 " but open returned %" PRIu64, r1.fail_at,
            (uint64_t)(int64_t)rc);
    }
    if (rc != NK_OK) {
        nk_sim_free(s);
        return 0;
    }
    const nk_wal_recovery *ri = nk_wal_recovery_info(w);
    /* New records continue after the last recovered lsn, or after
     * replay_from - 1 when the log ends before it (wal.c: the caller's
     * tables already hold those lsns). */
    uint64_t last = ri->last_lsn;
    if (o.replay_from > 1 && last < o.replay_from - 1) {
        last = o.replay_from - 1;
    }
    if (nk_wal_last_lsn(w) != last || nk_wal_durable_lsn(w) != last ||
        (r1.first != 0 && r1.last != last) ||
        ri->replayed != (r1.first ? r1.last - r1.first + 1 : 0)) {
        fprintf(stderr,
                "fuzz_wal: recovery info: first %" PRIu64 " last %" PRIu64 " records %" PRIu64
                " replayed %" PRIu64 "; wal last %" PRIu64 " durable %" PRIu64
                "; callback saw %" PRIu64 "..%" PRIu64 "\n",
                ri->first_lsn, ri->last_lsn, ri->records, ri->replayed, nk_wal_last_lsn(w),
                nk_wal_durable_lsn(w), r1.first, r1.last);
        abort();
    }
    if (last >= NK_SEQ_MAX || last == UINT64_MAX) {
        /* no room for another record: stop here */
        nk_wal_abandon(w);
        nk_sim_free(s);
        return 0;
    }

    /* append one record, close cleanly, recover again */
    static const uint8_t extra[] = "fuzz-extra-record";
    uint64_t lsn = 0;
    rc = nk_wal_append(w, extra, sizeof(extra), &lsn);
    if (rc != NK_OK || lsn != last + 1) {
        die("append after recovery: rc %" PRIu64 ", lsn %" PRIu64, (uint64_t)(int64_t)rc, lsn);
    }
    eb.msg[0] = '\0';
    rc = nk_wal_close(w, &eb);
    if (rc != NK_OK) {
        fprintf(stderr, "fuzz_wal: close after recovery: %s: %s\n", nk_errname(rc), eb.msg);
        abort();
    }
    replay r2 = {.replay_from = o.replay_from};
    eb.msg[0] = '\0';
    rc = nk_wal_open(g_rt, WAL_DIR, &o, on_record, &r2, &w, &eb);
    if (rc != NK_OK) {
        fprintf(stderr, "fuzz_wal: second open after a clean close: %s: %s\n", nk_errname(rc),
                eb.msg);
        abort();
    }
    ri = nk_wal_recovery_info(w);
    bool extra_replayed = last + 1 >= o.replay_from;
    if (ri->torn || ri->last_lsn != last + 1 || (extra_replayed && r2.last != last + 1)) {
        die("second open: last lsn %" PRIu64 ", expected %" PRIu64, ri->last_lsn, last + 1);
    }
    /* the same records as the first time, then the extra one */
    uint64_t want = r1.digest;
    if (extra_replayed) {
        uint64_t mix[2] = {last + 1, XXH64(extra, sizeof(extra), last + 1)};
        want = XXH64(mix, sizeof(mix), r1.digest);
    }
    if (r2.digest != want || (r1.first != 0 && r2.first != r1.first)) {
        die("second open replayed different records (first %" PRIu64 " vs %" PRIu64 ")", r2.first,
            r1.first);
    }
    nk_wal_abandon(w);
    nk_sim_free(s);
    return 0;
}

/* -------------------------------------------------- seed generation --- */

static void sync_done(void *arg, int status, uint64_t durable)
{
    (void)durable;
    *(int *)arg = status;
}

static void append_batch(nk_wal *w, unsigned i, unsigned vlen)
{
    nk_batch b = {0};
    nk_batch_init(&b);
    char k[16], v[600];
    int kl = snprintf(k, sizeof(k), "k%05u", i);
    memset(v, 'a' + (int)(i % 26), vlen < sizeof(v) ? vlen : sizeof(v));
    nk_batch_put(&b, k, (size_t)kl, v, vlen < sizeof(v) ? vlen : sizeof(v));
    if (i % 4 == 3) {
        nk_batch_delete(&b, "old", 3);
    }
    nk_batch_set_seq(&b, 1000 + i * 2);
    nk_slice d = nk_batch_data(&b);
    if (nk_wal_append(w, d.data, d.len, NULL) != NK_OK) {
        abort();
    }
    nk_batch_free(&b);
}

/* Read every segment of WAL_DIR in order into one buffer after `flags`. */
static void emit(const char *dir, const char *name, unsigned flags)
{
    nk_names names;
    if (nk_rt_dir_list(g_rt, WAL_DIR, &names) != NK_OK) {
        abort();
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (out == NULL) {
        perror(path);
        exit(1);
    }
    fputc((int)flags, out);
    for (size_t i = 0; i < names.count; i++) {
        char p[128];
        snprintf(p, sizeof(p), WAL_DIR "/%s", names.names[i]);
        nk_file *f;
        uint64_t sz = 0;
        if (nk_rt_file_open(g_rt, p, NK_OPEN_READ, &f) != NK_OK ||
            nk_rt_file_size(g_rt, f, &sz) != NK_OK) {
            abort();
        }
        uint8_t *buf = malloc((size_t)sz + 1);
        size_t got = 0;
        nk_rt_file_read_at(g_rt, f, 0, buf, (size_t)sz, &got);
        fwrite(buf, 1, got, out);
        free(buf);
        nk_rt_file_close(g_rt, f);
    }
    fclose(out);
    nk_names_free(&names);
}

static void gen(const char *dir, const char *name, unsigned flags, unsigned records, unsigned vlen,
                bool clean_close)
{
    nk_sim *s = boot();
    nk_wal_options o;
    nk_wal_options_default(&o);
    o.segment_size = NK_WAL_MIN_SEGMENT_SIZE;
    nk_wal *w;
    nk_errbuf eb;
    if (nk_wal_open(g_rt, WAL_DIR, &o, NULL, NULL, &w, &eb) != NK_OK) {
        abort();
    }
    for (unsigned i = 0; i < records; i++) {
        append_batch(w, i, vlen);
        if (i % 3 == 2) { /* a sync now and then: records and marks carry claims */
            int st = 1;
            if (nk_wal_sync_start(w, sync_done, &st) != NK_OK) {
                abort();
            }
            for (int k = 0; k < 100 && st == 1; k++) {
                nk_sim_run_until(s, nk_sim_now(s) + 10 * NK_NSEC_PER_MSEC);
            }
            if (st != NK_OK) {
                abort();
            }
        }
    }
    if (clean_close) {
        if (nk_wal_close(w, &eb) != NK_OK) {
            abort();
        }
    } else {
        nk_wal_abandon(w);
    }
    emit(dir, name, flags);
    nk_sim_free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_verbose = getenv("NOKV_FUZZ_VERBOSE") != NULL;
    const char *dir = getenv("NOKV_FUZZ_GEN");
    if (dir == NULL) {
        return 0;
    }
    gen(dir, "empty-clean", F_FIXUP, 0, 0, true);
    gen(dir, "few-clean", F_FIXUP, 4, 10, true);
    gen(dir, "few-unclean", F_FIXUP | F_SEQ_NAMES, 5, 30, false);
    gen(dir, "segments", F_FIXUP | F_REPLAY_FROM | (2u << 4), 14, 500, true);
    gen(dir, "segments-unclean", 0, 12, 450, false);
    exit(0);
}
