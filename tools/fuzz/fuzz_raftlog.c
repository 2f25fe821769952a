/*
 * fuzz_raftlog.c - libFuzzer target: raft log recovery (nk_raftlog_open) must
 * survive arbitrary segment files, and what it recovers must be consistent
 * and stable.
 *
 * Input: byte 0 is a flag byte; the rest is cut into segment files, a new
 * segment starting at every occurrence of the header magic (the file bytes of
 * NK_RAFTLOG_FILE_MAGIC) after the first byte. At most MAX_SEGS segments.
 *   bit 0  FIXUP: recompute the header checksum and every record checksum
 *          the harness can frame (logfile.h layout) before writing, so
 *          mutations reach the record decoder and the replay rules instead
 *          of dying at a checksum
 *   bit 1  name segments 1, 2, 3... (else each header's number field when
 *          the headers give strictly increasing plausible numbers)
 *   bit 2  a 64-byte entry cache, so every entry is read back from a file
 * Files live on the simulator's in-memory disk (sim/sim.h): no real I/O.
 *
 * Invariants checked (abort on violation):
 *   - results are NK_OK or NK_E* codes; NK_ECORRUPT / NK_ENOTSUP explain;
 *   - after a successful open every region is consistent: ids sorted, the
 *     log starts right after the snapshot, every held entry is readable
 *     (read back and verified when not cached) with the index's term;
 *   - one more entry, a sync and a reopen give back exactly the same state
 *     plus that entry (recovery is idempotent and cuts durably).
 *
 * Seed corpus: NOKV_FUZZ_GEN=<dir> build-fuzz/fuzz_raftlog writes logs made
 * by the raft log itself (regions, tail replacement, snapshots, a destroy,
 * several segments, clean and unsynced ends) into <dir> and exits.
 *
 * NOKV_FUZZ_VERBOSE=1 prints what each open returned.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nokv/engine/logfile.h"
#include "nokv/rt.h"
#include "nokv/store/raftlog.h"
#include "nokv/util/coding.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define F_FIXUP 0x01u
#define F_SEQ_NAMES 0x02u
#define F_TINY_CACHE 0x04u

#define MAX_SEGS 8u
#define LOG_DIR "/rlog"

#include "fuzz_sim.h"

static void check_rc(const char *what, int rc, const nk_errbuf *eb)
{
    if (rc > 0 || rc < NK_ERANGE) {
        fprintf(stderr, "fuzz_raftlog: %s: result %d is not an NK_E* code\n", what, rc);
        abort();
    }
    if ((rc == NK_ECORRUPT || rc == NK_ENOTSUP) && eb != NULL && eb->msg[0] == '\0') {
        fprintf(stderr, "fuzz_raftlog: %s: %s without a message\n", what, nk_errname(rc));
        abort();
    }
}

static void die(const char *what, uint64_t a, uint64_t b)
{
    fprintf(stderr, "fuzz_raftlog: %s (%" PRIu64 ", %" PRIu64 ")\n", what, a, b);
    abort();
}

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

/* A digest of everything the log reports, checking consistency on the way.
 * *last1 receives region 1's last index (0 when unknown). */
static uint64_t digest_log(nk_raftlog *l, uint64_t *last1)
{
    uint64_t d = 0;
    uint64_t *ids = NULL;
    size_t n = 0;
    *last1 = 0;
    if (nk_raftlog_regions(l, &ids, &n) != NK_OK) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ids[i] <= ids[i - 1]) {
            die("region ids not sorted", ids[i - 1], ids[i]);
        }
        nk_raftlog_region_state st;
        if (nk_raftlog_region(l, ids[i], &st) != NK_OK || st.region_id != ids[i]) {
            die("listed region unknown", ids[i], 0);
        }
        uint64_t floor = st.has_snapshot ? st.snap.index : 0;
        if (st.first_index != floor + 1 || st.last_index + 1 < st.first_index) {
            die("region range inconsistent", st.first_index, st.last_index);
        }
        if (ids[i] == 1) {
            *last1 = st.last_index;
        }
        uint64_t head[9] = {st.region_id,  st.has_hard_state, st.hs.term,
                            st.hs.vote,    st.hs.commit,      st.has_snapshot,
                            st.snap.index, st.snap.term,      st.last_index};
        d = XXH64(head, sizeof head, d);
        if (st.last_index < st.first_index) {
            continue;
        }
        nk_raft_entry *v = NULL;
        size_t cnt = 0;
        int rc = nk_raftlog_entries(l, ids[i], st.first_index, st.last_index + 1, &v, &cnt);
        if (rc != NK_OK || cnt != st.last_index + 1 - st.first_index) {
            die("held entries not readable", ids[i], (uint64_t)(int64_t)rc);
        }
        for (size_t k = 0; k < cnt; k++) {
            uint64_t t = 0;
            if (v[k].index != st.first_index + k ||
                nk_raftlog_term(l, ids[i], v[k].index, &t) != NK_OK || t != v[k].term) {
                die("entry does not match the index", ids[i], v[k].index);
            }
            uint64_t e[3] = {v[k].index, v[k].term, v[k].type};
            d = XXH64(e, sizeof e, d);
            d = XXH64(v[k].data, v[k].len, d);
            nk_raft_entry_clear(&v[k]);
        }
        free(v);
    }
    free(ids);
    return d;
}

static void sync_done(void *arg, int rc)
{
    *(int *)arg = rc;
}

static void sync_now(nk_sim *s, nk_raftlog *l)
{
    int st = 1;
    if (nk_raftlog_sync(l, sync_done, &st) != NK_OK) {
        abort();
    }
    for (int k = 0; k < 100 && st == 1; k++) {
        nk_sim_run_until(s, nk_sim_now(s) + 10 * NK_NSEC_PER_MSEC);
    }
    if (st != NK_OK) {
        abort();
    }
}

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
    uint8_t magic[8];
    nk_put_u64(magic, NK_RAFTLOG_FILE_MAGIC);

    size_t starts[MAX_SEGS + 1];
    size_t nseg = 0;
    starts[nseg++] = 0;
    for (size_t i = 1; i + sizeof magic <= size && nseg < MAX_SEGS; i++) {
        if (data[i] == magic[0] && memcmp(data + i, magic, sizeof magic) == 0) {
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
    if (nk_rt_dir_create(g_rt, LOG_DIR) != NK_OK) {
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
        snprintf(path, sizeof path, LOG_DIR "/%06" PRIu64 ".rlog", numbers[i]);
        write_file(path, seg, len);
        free(seg);
    }

    nk_raftlog_options o = {4096, (flags & F_TINY_CACHE) ? 64 : 0};
    nk_raftlog *l = NULL;
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_raftlog_open(g_rt, LOG_DIR, &o, &l, &eb);
    if (g_verbose) {
        fprintf(stderr, "fuzz_raftlog: open: %s %s\n", nk_errname(rc), eb.msg);
    }
    check_rc("open", rc, &eb);
    if (rc != NK_OK) {
        nk_sim_free(s);
        return 0;
    }
    uint64_t last1 = 0;
    uint64_t d1 = digest_log(l, &last1);
    if (last1 >= UINT64_MAX - 1) {
        nk_raftlog_close(l);
        nk_sim_free(s);
        return 0;
    }
    /* One more entry on region 1, durably, then recover again. */
    static const uint8_t extra[] = "fuzz-extra-entry";
    nk_raft_entry e = {7, last1 + 1, NK_RAFT_ENTRY_NORMAL, (uint8_t *)extra, sizeof extra};
    nk_raftlog_region_state st;
    if (nk_raftlog_region(l, 1, &st) == NK_OK && st.last_index + 1 < st.first_index) {
        die("region 1 range", st.first_index, st.last_index);
    }
    if (nk_raftlog_region(l, 1, &st) != NK_OK) {
        e.index = 1;
    }
    rc = nk_raftlog_stage_entries(l, 1, &e, 1);
    if (rc == NK_OK) {
        rc = nk_raftlog_write(l);
    }
    if (rc != NK_OK) {
        die("writing after recovery", (uint64_t)(int64_t)rc, e.index);
    }
    uint64_t last_after = 0;
    uint64_t d2 = digest_log(l, &last_after);
    sync_now(s, l);
    nk_raftlog_close(l);
    eb.msg[0] = '\0';
    rc = nk_raftlog_open(g_rt, LOG_DIR, &o, &l, &eb);
    if (rc != NK_OK) {
        fprintf(stderr, "fuzz_raftlog: reopen after a synced write: %s: %s\n", nk_errname(rc),
                eb.msg);
        abort();
    }
    uint64_t last_again = 0;
    uint64_t d3 = digest_log(l, &last_again);
    if (d3 != d2 || last_again != e.index || d1 == d2) {
        die("reopen gave a different state", last_again, e.index);
    }
    nk_raftlog_close(l);
    nk_sim_free(s);
    return 0;
}

/* -------------------------------------------------- seed generation --- */

static void emit(const char *dir, const char *name, unsigned flags)
{
    nk_names names;
    if (nk_rt_dir_list(g_rt, LOG_DIR, &names) != NK_OK) {
        abort();
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    if (out == NULL) {
        perror(path);
        exit(1);
    }
    fputc((int)flags, out);
    for (size_t i = 0; i < names.count; i++) {
        char p[128];
        snprintf(p, sizeof p, LOG_DIR "/%s", names.names[i]);
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

static void stage_n(nk_raftlog *l, uint64_t region, uint64_t lo, uint64_t n, uint64_t term)
{
    uint8_t buf[200];
    nk_raft_entry e[16];
    for (uint64_t k = 0; k < n && k < 16; k++) {
        memset(buf, (int)(lo + k), sizeof buf);
        e[k] = (nk_raft_entry){term, lo + k, (lo + k) % 5 == 0, buf, (size_t)((lo + k) % 200)};
    }
    if (nk_raftlog_stage_entries(l, region, e, n < 16 ? n : 16) != NK_OK) {
        abort();
    }
}

static void gen(const char *dir, const char *name, unsigned flags, unsigned batches, bool synced)
{
    nk_sim *s = boot();
    nk_raftlog_options o = {4096, 0};
    nk_raftlog *l;
    nk_errbuf eb;
    if (nk_raftlog_open(g_rt, LOG_DIR, &o, &l, &eb) != NK_OK) {
        abort();
    }
    uint64_t last[4] = {0, 0, 0, 0};
    for (unsigned b = 0; b < batches; b++) {
        for (uint64_t r = 1; r <= 3; r++) {
            uint64_t lo = last[r] + 1;
            if (b % 4 == 3 && last[r] > 2) {
                lo = last[r] - 1; /* tail replacement */
            }
            stage_n(l, r, lo, 6, 1 + b / 4);
            last[r] = lo + 5;
            nk_raft_hard_state hs = {1 + b / 4, r, last[r] - 2};
            if (nk_raftlog_stage_hard_state(l, r, &hs) != NK_OK) {
                abort();
            }
        }
        if (b % 5 == 4) {
            nk_raft_snapshot_meta m;
            memset(&m, 0, sizeof m);
            m.index = last[2] - 3;
            m.term = 1 + b / 4;
            m.conf.n = 1;
            m.conf.m[0] = (nk_raft_member){2, NK_RAFT_VOTER};
            if (nk_raftlog_stage_snapshot(l, 2, &m, false) != NK_OK) {
                abort();
            }
        }
        if (b == 6 && nk_raftlog_stage_destroy(l, 3) == NK_OK) {
            last[3] = 0;
        }
        if (nk_raftlog_write(l) != NK_OK) {
            abort();
        }
        if (synced || b + 1 < batches) {
            sync_now(s, l);
        }
    }
    unsigned removed = 0;
    (void)nk_raftlog_purge(l, &removed);
    nk_raftlog_close(l);
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
    gen(dir, "empty", F_FIXUP, 0, true);
    gen(dir, "few", F_FIXUP, 3, true);
    gen(dir, "few-unsynced", F_FIXUP | F_TINY_CACHE, 4, false);
    gen(dir, "segments", F_FIXUP | F_SEQ_NAMES, 12, true);
    gen(dir, "segments-raw", F_TINY_CACHE, 10, false);
    exit(0);
}
