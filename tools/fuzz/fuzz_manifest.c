/*
 * fuzz_manifest.c - libFuzzer target: the version edit decoder and manifest
 * recovery (nk_manifest_open over CURRENT + MANIFEST-<n>) must survive
 * arbitrary bytes, and what they accept must be consistent.
 *
 * Input: byte 0 is a flag byte, the rest depends on it.
 *   bit 1  EDIT: the rest is one encoded version edit: decode it; if it
 *          decodes, encode -> decode -> encode must be a fixed point, and
 *          applying it to an empty state must give a clean result; a state
 *          it applies to must round-trip through nk_vstate_snapshot.
 *   otherwise the rest is a manifest directory:
 *   bit 0  FIXUP: recompute the MANIFEST header and record checksums (and
 *          CURRENT's, when it comes from the input) the harness can frame
 *   bit 2  RAW CURRENT: the rest starts with CURRENT's text, up to and
 *          including its first '\n' (at most 200 bytes); else the harness
 *          writes a correct CURRENT naming MANIFEST-<n>
 *   bit 3  no CURRENT at all (the "interrupted creation" rules)
 *   bit 4  also leave a stale CURRENT.tmp and MANIFEST-<n-1> behind
 *   bit 5  open with create_if_missing
 *   The remaining bytes are MANIFEST-<n>; n is the header's number field
 *   when it is 1..999999, else 1.
 * Files live on the simulator's in-memory disk (sim/sim.h): no real I/O.
 *
 * Invariants checked after a successful open (abort on violation):
 *   - the recovered state rebuilds itself: its snapshot edit applies to an
 *     empty state and gives the same snapshot;
 *   - reopening gives the same state with nothing torn; after logging an
 *     edit and a rewrite, reopening gives the state with that edit applied.
 * Results are always NK_OK or NK_E* codes; NK_ECORRUPT / NK_ENOTSUP explain.
 *
 * Seed corpus: NOKV_FUZZ_GEN=<dir> build-fuzz/fuzz_manifest writes edits
 * and manifests made by the code itself into <dir> and exits.
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

#include "nokv/engine/ikey.h"
#include "nokv/engine/logfile.h"
#include "nokv/engine/manifest.h"
#include "nokv/engine/version_edit.h"
#include "nokv/rt.h"
#include "nokv/util/coding.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define F_FIXUP 0x01u
#define F_EDIT 0x02u
#define F_RAW_CURRENT 0x04u
#define F_NO_CURRENT 0x08u
#define F_STALE 0x10u
#define F_CREATE 0x20u

#define DB_DIR "/db"
#define CURRENT_RAW_MAX 200u

/* ------------------------------------------------------- sim harness --- */

#include "fuzz_sim.h"

static void check_rc(const char *what, int rc, const nk_errbuf *eb)
{
    if (rc > 0 || rc < NK_ERANGE) {
        fprintf(stderr, "fuzz_manifest: %s: result %d is not an NK_E* code\n", what, rc);
        abort();
    }
    if ((rc == NK_ECORRUPT || rc == NK_ENOTSUP) && eb != NULL && eb->msg[0] == '\0') {
        fprintf(stderr, "fuzz_manifest: %s: %s without a message\n", what, nk_errname(rc));
        abort();
    }
}

static void fail(const char *what, int rc, const nk_errbuf *eb)
{
    fprintf(stderr, "fuzz_manifest: %s: %s: %s\n", what, nk_errname(rc), eb ? eb->msg : "");
    abort();
}

/* The encoding of a state's snapshot edit: two states are equal when these
 * are (the snapshot lists every scalar and every file in level order). */
static void state_bytes(const nk_version_state *v, nk_buf *out)
{
    nk_version_edit e;
    if (nk_vstate_snapshot(v, &e) != NK_OK || nk_vedit_encode(&e, out) != NK_OK) {
        abort();
    }
    nk_vedit_free(&e);
}

static bool same_bytes(const nk_buf *a, const nk_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The state must rebuild itself from its own snapshot. */
static void check_state(const nk_version_state *v)
{
    nk_version_edit e;
    nk_version_state fresh;
    nk_errbuf eb;
    nk_vstate_init(&fresh);
    if (nk_vstate_snapshot(v, &e) != NK_OK) {
        abort();
    }
    int rc = nk_vstate_apply(&fresh, &e, &eb);
    if (rc != NK_OK) {
        fail("a state's own snapshot does not apply to an empty state", rc, &eb);
    }
    nk_buf a = {0}, b = {0};
    state_bytes(v, &a);
    state_bytes(&fresh, &b);
    if (!same_bytes(&a, &b) || nk_vstate_file_count(v) != nk_vstate_file_count(&fresh)) {
        fprintf(stderr, "fuzz_manifest: snapshot round trip changed the state\n");
        abort();
    }
    nk_buf_free(&a);
    nk_buf_free(&b);
    nk_vedit_free(&e);
    nk_vstate_free(&fresh);
}

/* --------------------------------------------------------- edit mode --- */

static void fuzz_edit(const uint8_t *p, size_t len)
{
    nk_version_edit e;
    nk_errbuf eb;
    eb.msg[0] = '\0';
    int rc = nk_vedit_decode(p, len, &e, &eb);
    check_rc("decode", rc, &eb);
    if (rc != NK_OK) {
        nk_vedit_free(&e);
        return;
    }
    nk_buf enc1 = {0}, enc2 = {0};
    if (nk_vedit_encode(&e, &enc1) != NK_OK) {
        abort();
    }
    nk_version_edit e2;
    rc = nk_vedit_decode(enc1.data, enc1.len, &e2, &eb);
    if (rc != NK_OK) {
        fail("re-decoding an encoded edit", rc, &eb);
    }
    if (nk_vedit_encode(&e2, &enc2) != NK_OK || !same_bytes(&enc1, &enc2)) {
        fprintf(stderr, "fuzz_manifest: encode(decode(encode(e))) != encode(e)\n");
        abort();
    }
    nk_version_state v;
    nk_vstate_init(&v);
    eb.msg[0] = '\0';
    int crc = nk_vstate_check(&v, &e, &eb);
    check_rc("check", crc, &eb);
    rc = nk_vstate_apply(&v, &e, &eb);
    check_rc("apply", rc, &eb);
    if ((crc == NK_OK) != (rc == NK_OK) && rc != NK_ENOMEM) {
        fprintf(stderr, "fuzz_manifest: check says %s, apply says %s\n", nk_errname(crc),
                nk_errname(rc));
        abort();
    }
    if (rc == NK_OK) {
        check_state(&v);
        /* applying the same edit again must fail cleanly or be idempotent */
        check_rc("re-apply", nk_vstate_apply(&v, &e, &eb), &eb);
        for (uint32_t l = 0; l < NK_NUM_LEVELS; l++) {
            for (size_t i = 0; i < v.levels[l].count; i++) {
                uint32_t lv;
                size_t idx;
                if (nk_vstate_find(&v, v.levels[l].files[i].number, &lv, &idx) != NK_OK ||
                    lv != l || idx != i) {
                    fprintf(stderr, "fuzz_manifest: nk_vstate_find disagrees\n");
                    abort();
                }
            }
        }
    }
    nk_vstate_free(&v);
    nk_buf_free(&enc1);
    nk_buf_free(&enc2);
    nk_vedit_free(&e);
    nk_vedit_free(&e2);
}

/* ----------------------------------------------------- manifest mode --- */

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

/* CURRENT text: "<body> <16 hex>\n"; recompute the hex over the body. */
static void fixup_current(char *t, size_t len)
{
    if (len < 18 || t[len - 1] != '\n' || t[len - 18] != ' ') {
        return;
    }
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, XXH64(t, len - 18, 0));
    memcpy(t + len - 17, hex, 16);
}

static void write_file(const char *path, const void *p, size_t len)
{
    nk_file *f = NULL;
    if (nk_rt_file_open(g_rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f) != NK_OK ||
        (len && nk_rt_file_write_at(g_rt, f, 0, p, len) != NK_OK)) {
        abort();
    }
    nk_rt_file_close(g_rt, f);
}

static int reopen(nk_manifest **m, nk_errbuf *eb)
{
    nk_manifest_options o;
    nk_manifest_options_default(&o);
    o.create_if_missing = false;
    eb->msg[0] = '\0';
    return nk_manifest_open(g_rt, DB_DIR, &o, m, eb);
}

/* An edit that applies to v: bump the counters, add one L0 file. */
static void next_edit(const nk_version_state *v, nk_version_edit *e)
{
    nk_vedit_init(e);
    nk_vedit_set_last_sequence(e,
                               v->last_sequence < NK_SEQ_MAX ? v->last_sequence + 1 : NK_SEQ_MAX);
    uint64_t num = v->next_file_number;
    if (num < UINT64_MAX - 2) {
        uint8_t lo[16], hi[16];
        size_t ll = nk_ikey_encode(lo, (const uint8_t *)"a", 1, 5, NK_KT_PUT);
        size_t hl = nk_ikey_encode(hi, (const uint8_t *)"z", 1, 3, NK_KT_PUT);
        /* file numbers must be unique: pick one past every number in v */
        for (uint32_t l = 0; l < NK_NUM_LEVELS; l++) {
            for (size_t i = 0; i < v->levels[l].count; i++) {
                if (v->levels[l].files[i].number >= num &&
                    v->levels[l].files[i].number < UINT64_MAX - 2) {
                    num = v->levels[l].files[i].number + 1;
                }
            }
        }
        if (nk_vedit_add_file(e, 0, num, 1234, lo, ll, hi, hl, 3, 5) != NK_OK) {
            abort();
        }
        nk_vedit_set_next_file_number(e, num + 1);
    }
}

static void fuzz_manifest(unsigned flags, const uint8_t *p, size_t len)
{
    char current[CURRENT_RAW_MAX + 1];
    size_t clen = 0;
    if (flags & F_RAW_CURRENT) {
        const uint8_t *nl = memchr(p, '\n', len < CURRENT_RAW_MAX ? len : CURRENT_RAW_MAX);
        clen = nl ? (size_t)(nl - p) + 1 : (len < CURRENT_RAW_MAX ? len : CURRENT_RAW_MAX);
        memcpy(current, p, clen);
        p += clen;
        len -= clen;
        if (flags & F_FIXUP) {
            fixup_current(current, clen);
        }
    }
    uint64_t number = len >= 24 ? nk_get_u64(p + 16) : 0;
    if (number == 0 || number > 999999u) {
        number = 1;
    }
    if (!(flags & F_RAW_CURRENT)) {
        char body[64];
        int n = snprintf(body, sizeof(body), "nokv-current %u MANIFEST-%06" PRIu64,
                         NK_MANIFEST_CURRENT_VERSION, number);
        clen = (size_t)snprintf(current, sizeof(current), "%s %016" PRIx64 "\n", body,
                                XXH64(body, (size_t)n, 0));
    }
    uint8_t *mf = malloc(len ? len : 1);
    if (mf == NULL) {
        return;
    }
    if (len) {
        memcpy(mf, p, len);
    }
    if (flags & F_FIXUP) {
        fixup_log(mf, len);
    }

    nk_sim *s = boot();
    if (nk_rt_dir_create(g_rt, DB_DIR) != NK_OK) {
        abort();
    }
    char path[64];
    snprintf(path, sizeof(path), DB_DIR "/MANIFEST-%06" PRIu64, number);
    write_file(path, mf, len);
    free(mf);
    if (!(flags & F_NO_CURRENT)) {
        write_file(DB_DIR "/CURRENT", current, clen);
    }
    if ((flags & F_STALE) && number > 1) {
        snprintf(path, sizeof(path), DB_DIR "/MANIFEST-%06" PRIu64, number - 1);
        write_file(path, "stale", 5);
        write_file(DB_DIR "/CURRENT.tmp", current, clen / 2);
    }

    nk_manifest *m = NULL;
    nk_errbuf eb;
    nk_manifest_options o;
    nk_manifest_options_default(&o);
    o.create_if_missing = (flags & F_CREATE) != 0;
    eb.msg[0] = '\0';
    int rc = nk_manifest_open(g_rt, DB_DIR, &o, &m, &eb);
    if (g_verbose) {
        fprintf(stderr, "fuzz_manifest: open: %s %s\n", nk_errname(rc), eb.msg);
    }
    check_rc("open", rc, &eb);
    if (rc != NK_OK) {
        nk_sim_free(s);
        return;
    }
    const nk_version_state *v = nk_manifest_state(m);
    check_state(v);
    nk_buf before = {0}, after = {0};
    state_bytes(v, &before);
    nk_version_state expect;
    nk_vstate_init(&expect);
    nk_version_edit e0;
    if (nk_vstate_snapshot(v, &e0) != NK_OK || nk_vstate_apply(&expect, &e0, &eb) != NK_OK) {
        abort();
    }
    nk_vedit_free(&e0);
    nk_manifest_close(m);

    /* reopen: same state, nothing left to cut */
    rc = reopen(&m, &eb);
    if (rc != NK_OK) {
        fail("second open", rc, &eb);
    }
    state_bytes(nk_manifest_state(m), &after);
    if (!same_bytes(&before, &after) || nk_manifest_recovery_info(m)->torn) {
        fprintf(stderr, "fuzz_manifest: second open recovered a different state\n");
        abort();
    }

    /* log an edit, rewrite, reopen: the edit is there */
    nk_version_edit e;
    next_edit(nk_manifest_state(m), &e);
    eb.msg[0] = '\0';
    rc = nk_manifest_log_edit(m, &e, &eb);
    if (rc == NK_OK) {
        if (nk_vstate_apply(&expect, &e, &eb) != NK_OK) {
            fail("the manifest took an edit the state refuses", NK_EINVAL, &eb);
        }
        rc = nk_manifest_rewrite(m, &eb);
        if (rc != NK_OK) {
            fail("rewrite", rc, &eb);
        }
    } else if (rc != NK_EINVAL) {
        fail("log_edit", rc, &eb);
    }
    nk_vedit_free(&e);
    nk_manifest_close(m);
    rc = reopen(&m, &eb);
    if (rc != NK_OK) {
        fail("open after log_edit + rewrite", rc, &eb);
    }
    nk_buf_free(&before);
    nk_buf_free(&after);
    state_bytes(&expect, &before);
    state_bytes(nk_manifest_state(m), &after);
    if (!same_bytes(&before, &after)) {
        fprintf(stderr, "fuzz_manifest: state after log_edit + rewrite + reopen differs\n");
        abort();
    }
    nk_manifest_close(m);
    nk_buf_free(&before);
    nk_buf_free(&after);
    nk_vstate_free(&expect);
    nk_sim_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] & F_EDIT) {
        fuzz_edit(data + 1, size - 1);
    } else {
        fuzz_manifest(data[0], data + 1, size - 1);
    }
    return 0;
}

/* -------------------------------------------------- seed generation --- */

static FILE *open_out(const char *dir, const char *name, unsigned flags)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fputc((int)flags, f);
    return f;
}

static void add_l(nk_version_edit *e, uint32_t level, uint64_t num, const char *a, const char *b,
                  uint64_t s1, uint64_t s2)
{
    uint8_t lo[32], hi[32];
    size_t ll = nk_ikey_encode(lo, (const uint8_t *)a, strlen(a), s2, NK_KT_PUT);
    size_t hl = nk_ikey_encode(hi, (const uint8_t *)b, strlen(b), s1, NK_KT_DELETE);
    if (nk_vedit_add_file(e, level, num, 1000 + num, lo, ll, hi, hl, s1, s2) != NK_OK) {
        abort();
    }
}

static void gen_edit(const char *dir)
{
    nk_version_edit e;
    nk_vedit_init(&e);
    nk_vedit_set_log_number(&e, 7);
    nk_vedit_set_next_file_number(&e, 20);
    nk_vedit_set_last_sequence(&e, 500);
    add_l(&e, 0, 11, "apple", "melon", 10, 40);
    add_l(&e, 1, 12, "a", "f", 1, 9);
    add_l(&e, 1, 13, "g", "k", 2, 8);
    nk_vedit_delete_file(&e, 2, 5);
    nk_buf b = {0};
    nk_vedit_encode(&e, &b);
    FILE *f = open_out(dir, "edit-full", F_EDIT);
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    nk_buf_free(&b);
    nk_vedit_free(&e);
    nk_vedit_init(&e);
    nk_vedit_set_last_sequence(&e, 3);
    nk_vedit_encode(&e, &b);
    f = open_out(dir, "edit-small", F_EDIT);
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    nk_buf_free(&b);
    nk_vedit_free(&e);
}

/* Build a database's manifest with the real code, then dump
 * [CURRENT text] + MANIFEST-<n> after the flag byte. */
static void gen_manifest(const char *dir, const char *name, unsigned flags, unsigned edits,
                         bool rewrite)
{
    nk_sim *s = boot();
    nk_rt_dir_create(g_rt, DB_DIR);
    nk_manifest *m;
    nk_errbuf eb;
    if (nk_manifest_open(g_rt, DB_DIR, NULL, &m, &eb) != NK_OK) {
        abort();
    }
    for (unsigned i = 0; i < edits; i++) {
        nk_version_edit e;
        nk_vedit_init(&e);
        nk_vedit_set_log_number(&e, 2 + i);
        nk_vedit_set_next_file_number(&e, 100 + 2 * i + 2);
        nk_vedit_set_last_sequence(&e, 1000 + 10 * i);
        char a[8], b[8];
        snprintf(a, sizeof(a), "k%02u", i * 2);
        snprintf(b, sizeof(b), "k%02u", i * 2 + 1);
        add_l(&e, i % 3 == 0 ? 0 : 1 + i % 2, 100 + 2 * i, a, b, 10 + i, 20 + i);
        if (i == 3) {
            nk_vedit_delete_file(&e, 0, 100);
        }
        if (nk_manifest_log_edit(m, &e, &eb) != NK_OK) {
            fprintf(stderr, "gen: %s\n", eb.msg);
            abort();
        }
        nk_vedit_free(&e);
        if (rewrite && i == edits / 2) {
            if (nk_manifest_rewrite(m, &eb) != NK_OK) {
                abort();
            }
        }
    }
    uint64_t number = nk_manifest_number(m);
    nk_manifest_close(m);
    FILE *out = open_out(dir, name, flags);
    char path[64];
    if (flags & F_RAW_CURRENT) {
        snprintf(path, sizeof(path), DB_DIR "/CURRENT");
    } else {
        snprintf(path, sizeof(path), DB_DIR "/MANIFEST-%06" PRIu64, number);
    }
    for (int pass = 0; pass < 2; pass++) {
        nk_file *f;
        uint64_t sz = 0;
        if (nk_rt_file_open(g_rt, path, NK_OPEN_READ, &f) != NK_OK ||
            nk_rt_file_size(g_rt, f, &sz) != NK_OK) {
            abort();
        }
        uint8_t *buf = malloc((size_t)sz + 1);
        size_t got = 0;
        nk_rt_file_read_at(g_rt, f, 0, buf, (size_t)sz, &got);
        fwrite(buf, 1, got, out);
        free(buf);
        nk_rt_file_close(g_rt, f);
        if (!(flags & F_RAW_CURRENT)) {
            break;
        }
        snprintf(path, sizeof(path), DB_DIR "/MANIFEST-%06" PRIu64, number);
        flags = 0;
    }
    fclose(out);
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
    gen_edit(dir);
    gen_manifest(dir, "fresh", F_FIXUP, 0, false);
    gen_manifest(dir, "edits", F_FIXUP, 6, false);
    gen_manifest(dir, "rewritten", F_FIXUP | F_STALE, 6, true);
    gen_manifest(dir, "raw-current", F_FIXUP | F_RAW_CURRENT, 3, true);
    gen_manifest(dir, "no-current", F_FIXUP | F_NO_CURRENT, 0, false);
    gen_manifest(dir, "no-fixup", 0, 2, false);
    exit(0);
}
