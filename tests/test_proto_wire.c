/*
 * test_proto_wire.c - the message envelope and field codec (nokv/proto/wire.h)
 * and the two messages built on it so far, the region descriptor
 * (region.h) and HELLO (hello.h):
 *   - round trips of every field type and both messages;
 *   - every truncation and every single flipped byte is refused, never
 *     decoded into a value;
 *   - wrong magic, unknown version, trailing bytes, oversize lengths, bad
 *     varints and strings with a NUL byte mark the reader bad;
 *   - region descriptors with unsorted or duplicate peers, two peers on one
 *     store, zero ids, bad roles, too many peers or an inverted range are
 *     refused by the decoder (and by the encoder, which must never put such
 *     a descriptor on the wire).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <xxhash.h>

#include "nokv/proto/hello.h"
#include "nokv/proto/kinds.h"
#include "nokv/proto/region.h"
#include "nokv/proto/wire.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"

#define MAGIC 0x5854u /* "TX": a test message */

/* ---------------------------------------------------------------- wire --- */

static void build_all_fields(nk_buf *b)
{
    assert_int_equal(nk_wire_begin(b, MAGIC, 2), NK_OK);
    assert_int_equal(nk_wire_put_u8(b, 0xab), NK_OK);
    assert_int_equal(nk_wire_put_u64(b, UINT64_C(0x0102030405060708)), NK_OK);
    const uint64_t vars[] = {0, 1, 127, 128, 16383, 16384, UINT64_C(1) << 35, UINT64_MAX};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        assert_int_equal(nk_wire_put_uvar(b, vars[i]), NK_OK);
    }
    assert_int_equal(nk_wire_put_bytes(b, "\x00\x01\x02", 3), NK_OK);
    assert_int_equal(nk_wire_put_bytes(b, NULL, 0), NK_OK);
    assert_int_equal(nk_wire_put_str(b, "127.0.0.1:20160"), NK_OK);
    assert_int_equal(nk_wire_put_str(b, ""), NK_OK);
    assert_int_equal(nk_wire_end(b), NK_OK);
}

/* Decode what build_all_fields wrote; NK_OK only when every field matched
 * and the body was consumed exactly. */
static int read_all_fields(const uint8_t *p, size_t len)
{
    nk_wire_rd rd;
    uint8_t version = 0;
    int rc = nk_wire_open(&rd, p, len, MAGIC, 3, &version);
    if (rc != NK_OK) {
        return rc;
    }
    assert_int_equal(version, 2);
    bool same = nk_wire_get_u8(&rd) == 0xab;
    same = same && nk_wire_get_u64(&rd) == UINT64_C(0x0102030405060708);
    const uint64_t vars[] = {0, 1, 127, 128, 16383, 16384, UINT64_C(1) << 35, UINT64_MAX};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        same = same && nk_wire_get_uvar(&rd) == vars[i];
    }
    nk_slice s = nk_wire_get_bytes(&rd, 16);
    same = same && s.len == 3 && memcmp(s.data, "\x00\x01\x02", 3) == 0;
    s = nk_wire_get_bytes(&rd, 16);
    same = same && s.len == 0;
    char str[32];
    nk_wire_get_str(&rd, str, sizeof str);
    same = same && strcmp(str, "127.0.0.1:20160") == 0;
    nk_wire_get_str(&rd, str, sizeof str);
    same = same && str[0] == 0;
    rc = nk_wire_close(&rd);
    assert_true(rc != NK_OK || same); /* a checksummed body never lies */
    return rc;
}

static void test_wire_round_trip(void **state)
{
    (void)state;
    nk_buf b = {0};
    build_all_fields(&b);
    /* magic, version, checksum placement */
    assert_int_equal(nk_get_u16(b.data), MAGIC);
    assert_int_equal(b.data[2], 2);
    assert_true(nk_get_u64(b.data + b.len - 8) == XXH64(b.data, b.len - 8, MAGIC));
    assert_int_equal(read_all_fields(b.data, b.len), NK_OK);
    /* a second message in the same buffer starts afresh */
    build_all_fields(&b);
    assert_int_equal(read_all_fields(b.data, b.len), NK_OK);
    nk_buf_free(&b);
    nk_buf e = {0};
    assert_int_equal(nk_wire_end(&e), NK_EINVAL); /* no header */
    nk_buf_free(&e);
}

static void test_wire_truncated_and_flipped(void **state)
{
    (void)state;
    nk_buf b = {0};
    build_all_fields(&b);
    uint8_t *copy = malloc(b.len);
    for (size_t n = 0; n < b.len; n++) {
        memcpy(copy, b.data, n);
        int rc = read_all_fields(copy, n);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
    }
    for (size_t i = 0; i < b.len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(copy, b.data, b.len);
            copy[i] ^= (uint8_t)(1u << bit);
            int rc = read_all_fields(copy, b.len);
            assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
            if (i >= 3) {
                assert_int_equal(rc, NK_ECORRUPT); /* body or checksum */
            }
        }
    }
    free(copy);
    nk_buf_free(&b);
}

static void test_wire_envelope_rejections(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_wire_rd rd;
    /* wrong magic, even with a valid checksum under its own seed */
    assert_int_equal(nk_wire_begin(&b, MAGIC + 1, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 5), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_EPROTO);
    assert_true(rd.bad);
    assert_int_equal(nk_wire_get_uvar(&rd), 0);
    assert_int_equal(nk_wire_close(&rd), NK_EPROTO);
    /* unknown (newer) version, and version 0 */
    assert_int_equal(nk_wire_begin(&b, MAGIC, 4), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 3, NULL), NK_EPROTO);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 4, NULL), NK_OK);
    assert_int_equal(nk_wire_close(&rd), NK_OK); /* an empty body */
    assert_int_equal(nk_wire_begin(&b, MAGIC, 0), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 3, NULL), NK_EPROTO);
    /* trailing bytes: a field the reader does not consume */
    assert_int_equal(nk_wire_begin(&b, MAGIC, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 7), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, 0), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    assert_int_equal(nk_wire_get_uvar(&rd), 7);
    assert_false(rd.bad);
    assert_int_equal(nk_wire_close(&rd), NK_EPROTO);
    /* reading past the end marks the reader bad, and it stays bad */
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    assert_int_equal(nk_wire_get_u64(&rd), 0);
    assert_true(rd.bad);
    assert_int_equal(nk_wire_get_u8(&rd), 0);
    assert_int_equal(nk_wire_close(&rd), NK_EPROTO);
    nk_buf_free(&b);
}

/* A body of raw bytes under a valid envelope. */
static void raw_message(nk_buf *b, const void *body, size_t len)
{
    assert_int_equal(nk_wire_begin(b, MAGIC, 1), NK_OK);
    assert_int_equal(nk_buf_append(b, body, len), NK_OK);
    assert_int_equal(nk_wire_end(b), NK_OK);
}

static void test_wire_field_rejections(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_wire_rd rd;
    /* a varint of 11 bytes, and one that overflows 64 bits */
    const uint8_t long_var[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0};
    raw_message(&b, long_var, sizeof long_var);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    (void)nk_wire_get_uvar(&rd);
    assert_true(rd.bad);
    const uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    raw_message(&b, over, sizeof over);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    (void)nk_wire_get_uvar(&rd);
    assert_true(rd.bad);
    /* a varint cut by the end of the body */
    const uint8_t cut[1] = {0x80};
    raw_message(&b, cut, sizeof cut);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    (void)nk_wire_get_uvar(&rd);
    assert_true(rd.bad);

    /* a length beyond the caller's bound, and beyond the body */
    assert_int_equal(nk_wire_begin(&b, MAGIC, 1), NK_OK);
    assert_int_equal(nk_wire_put_bytes(&b, "0123456789", 10), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    nk_slice s = nk_wire_get_bytes(&rd, 9);
    assert_true(rd.bad);
    assert_null(s.data);
    assert_int_equal(s.len, 0);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    s = nk_wire_get_bytes(&rd, 10);
    assert_false(rd.bad);
    assert_int_equal(nk_wire_close(&rd), NK_OK);
    const uint8_t huge[6] = {0xff, 0xff, 0xff, 0xff, 0x0f, 'x'}; /* 4 GiB claimed */
    raw_message(&b, huge, sizeof huge);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    s = nk_wire_get_bytes(&rd, SIZE_MAX);
    assert_true(rd.bad);
    assert_null(s.data);

    /* strings: a NUL inside, one that does not fit, cap 0 */
    const uint8_t nul[4] = {3, 'a', 0, 'b'};
    raw_message(&b, nul, sizeof nul);
    char out[8];
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    nk_wire_get_str(&rd, out, sizeof out);
    assert_true(rd.bad);
    assert_int_equal(out[0], 0);
    assert_int_equal(nk_wire_begin(&b, MAGIC, 1), NK_OK);
    assert_int_equal(nk_wire_put_str(&b, "12345678"), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    nk_wire_get_str(&rd, out, sizeof out); /* 8 bytes need cap 9 */
    assert_true(rd.bad);
    assert_int_equal(out[0], 0);
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    char big[9];
    nk_wire_get_str(&rd, big, sizeof big);
    assert_false(rd.bad);
    assert_string_equal(big, "12345678");
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    nk_wire_get_str(&rd, big, 0);
    assert_true(rd.bad);
    nk_buf_free(&b);
}

/* -------------------------------------------------------------- region --- */

static void sample_region(nk_region *r)
{
    nk_region_init_full(r, 42);
    assert_int_equal(nk_region_set_range(r, "b", 1, "m\x00z", 3), NK_OK);
    r->epoch.version = 7;
    r->epoch.conf_version = 300;
    nk_region_peer p3 = {30, 3, NK_RAFT_VOTER};
    nk_region_peer p1 = {10, 1, NK_RAFT_VOTER};
    nk_region_peer p2 = {20, 2, NK_RAFT_LEARNER};
    assert_int_equal(nk_region_peer_set(r, &p3), NK_OK);
    assert_int_equal(nk_region_peer_set(r, &p1), NK_OK);
    assert_int_equal(nk_region_peer_set(r, &p2), NK_OK);
}

static void assert_region_equal(const nk_region *a, const nk_region *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->start_len, b->start_len);
    assert_int_equal(a->end_len, b->end_len);
    assert_memory_equal(a->start, b->start, a->start_len);
    assert_memory_equal(a->end, b->end, a->end_len);
    assert_int_equal(a->epoch.version, b->epoch.version);
    assert_int_equal(a->epoch.conf_version, b->epoch.conf_version);
    assert_int_equal(a->n_peers, b->n_peers);
    for (uint32_t i = 0; i < a->n_peers; i++) {
        assert_int_equal(a->peers[i].store_id, b->peers[i].store_id);
        assert_int_equal(a->peers[i].peer_id, b->peers[i].peer_id);
        assert_int_equal(a->peers[i].role, b->peers[i].role);
    }
}

static void test_region_round_trip(void **state)
{
    (void)state;
    nk_region r, got;
    sample_region(&r);
    assert_int_equal(r.peers[0].peer_id, 1); /* peer_set keeps them sorted */
    assert_int_equal(r.peers[2].peer_id, 3);
    nk_buf b = {0};
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_OK);
    assert_region_equal(&r, &got);

    /* the seed region: full range, no peers; and a range of maximal keys */
    nk_region_init_full(&r, 1);
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_OK);
    assert_region_equal(&r, &got);
    assert_true(nk_region_contains(&got, "", 0));
    assert_true(nk_region_contains(&got, "\xff\xff", 2));
    uint8_t lo[NK_REGION_KEY_MAX], hi[NK_REGION_KEY_MAX];
    memset(lo, 0x11, sizeof lo);
    memset(hi, 0x22, sizeof hi);
    assert_int_equal(nk_region_set_range(&r, lo, sizeof lo, hi, sizeof hi), NK_OK);
    assert_int_equal(nk_region_set_range(&r, lo, sizeof lo + 1, hi, 1), NK_ETOOBIG);
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_OK);
    assert_region_equal(&r, &got);

    /* embedded in a bigger message, with fields around it */
    sample_region(&r);
    assert_int_equal(nk_wire_begin(&b, MAGIC, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 99), NK_OK);
    assert_int_equal(nk_region_put(&b, &r), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, 5), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    nk_wire_rd rd;
    assert_int_equal(nk_wire_open(&rd, b.data, b.len, MAGIC, 1, NULL), NK_OK);
    assert_int_equal(nk_wire_get_uvar(&rd), 99);
    assert_int_equal(nk_region_get(&rd, &got), NK_OK);
    assert_int_equal(nk_wire_get_u8(&rd), 5);
    assert_int_equal(nk_wire_close(&rd), NK_OK);
    assert_region_equal(&r, &got);
    nk_buf_free(&b);
}

static void test_region_helpers(void **state)
{
    (void)state;
    nk_region r;
    sample_region(&r);
    assert_true(nk_region_contains(&r, "b", 1));
    assert_true(nk_region_contains(&r, "m", 1)); /* "m" < "m\0z" */
    assert_false(nk_region_contains(&r, "m\x00z", 3));
    assert_false(nk_region_contains(&r, "a", 1));
    assert_int_equal(nk_region_peer_on_store(&r, 20)->peer_id, 2);
    assert_null(nk_region_peer_on_store(&r, 40));
    assert_int_equal(nk_region_peer_by_id(&r, 3)->store_id, 30);
    /* a second peer on one store is refused; a role change is not */
    nk_region_peer dup = {20, 9, NK_RAFT_VOTER};
    assert_int_equal(nk_region_peer_set(&r, &dup), NK_EEXIST);
    nk_region_peer promote = {20, 2, NK_RAFT_VOTER};
    assert_int_equal(nk_region_peer_set(&r, &promote), NK_OK);
    assert_int_equal(r.n_peers, 3);
    nk_raft_conf c;
    nk_region_conf(&r, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(nk_raft_conf_voters(&c), 3);
    assert_int_equal(nk_region_peer_remove(&r, 2), NK_OK);
    assert_int_equal(nk_region_peer_remove(&r, 2), NK_ENOENT);
    assert_int_equal(r.n_peers, 2);
    assert_int_equal(r.peers[1].peer_id, 3);
    for (uint64_t i = 0; i < NK_REGION_MAX_PEERS - 2; i++) {
        nk_region_peer p = {100 + i, 100 + i, NK_RAFT_LEARNER};
        assert_int_equal(nk_region_peer_set(&r, &p), NK_OK);
    }
    nk_region_peer extra = {999, 999, NK_RAFT_LEARNER};
    assert_int_equal(nk_region_peer_set(&r, &extra), NK_ERANGE);
    nk_errbuf eb = {{0}};
    assert_int_equal(nk_region_validate(&r, &eb), NK_OK);
}

/* Write a region body by hand, bypassing the encoder's checks. */
typedef struct raw_peer {
    uint64_t store, peer;
    uint8_t role;
} raw_peer;

static void raw_region(nk_buf *b, uint64_t id, const char *start, const char *end, uint64_t n,
                       const raw_peer *p, size_t np, bool trailing)
{
    assert_int_equal(nk_wire_begin(b, 0x4752u, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(b, id), NK_OK);
    assert_int_equal(nk_wire_put_str(b, start), NK_OK);
    assert_int_equal(nk_wire_put_str(b, end), NK_OK);
    assert_int_equal(nk_wire_put_uvar(b, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(b, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(b, n), NK_OK);
    for (size_t i = 0; i < np; i++) {
        assert_int_equal(nk_wire_put_uvar(b, p[i].store), NK_OK);
        assert_int_equal(nk_wire_put_uvar(b, p[i].peer), NK_OK);
        assert_int_equal(nk_wire_put_u8(b, p[i].role), NK_OK);
    }
    if (trailing) {
        assert_int_equal(nk_wire_put_u8(b, 0), NK_OK);
    }
    assert_int_equal(nk_wire_end(b), NK_OK);
}

static void test_region_rejections(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_region got;
    const raw_peer ok[2] = {{10, 1, NK_RAFT_VOTER}, {20, 2, NK_RAFT_LEARNER}};
    raw_region(&b, 5, "a", "c", 2, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_OK); /* the control */
    assert_int_equal(got.n_peers, 2);

    const raw_peer unsorted[2] = {{20, 2, NK_RAFT_VOTER}, {10, 1, NK_RAFT_VOTER}};
    raw_region(&b, 5, "a", "c", 2, unsorted, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    const raw_peer dup_id[2] = {{10, 1, NK_RAFT_VOTER}, {20, 1, NK_RAFT_VOTER}};
    raw_region(&b, 5, "a", "c", 2, dup_id, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    const raw_peer dup_store[2] = {{10, 1, NK_RAFT_VOTER}, {10, 2, NK_RAFT_VOTER}};
    raw_region(&b, 5, "a", "c", 2, dup_store, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    const raw_peer zero[1] = {{10, 0, NK_RAFT_VOTER}};
    raw_region(&b, 5, "a", "c", 1, zero, 1, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    const raw_peer zero_store[1] = {{0, 1, NK_RAFT_VOTER}};
    raw_region(&b, 5, "a", "c", 1, zero_store, 1, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    const raw_peer bad_role[1] = {{10, 1, 7}};
    raw_region(&b, 5, "a", "c", 1, bad_role, 1, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    /* fewer peers than announced, more than allowed */
    raw_region(&b, 5, "a", "c", 3, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    raw_region(&b, 5, "a", "c", NK_REGION_MAX_PEERS + 1, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    /* id 0, start >= end, trailing bytes */
    raw_region(&b, 0, "a", "c", 2, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    raw_region(&b, 5, "c", "c", 2, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    raw_region(&b, 5, "d", "c", 2, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    raw_region(&b, 5, "d", "", 2, ok, 2, false); /* empty end: to the end of the key space */
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_OK);
    raw_region(&b, 5, "a", "c", 2, ok, 2, true);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    /* a boundary longer than NK_REGION_KEY_MAX */
    char *longkey = malloc(NK_REGION_KEY_MAX + 2);
    memset(longkey, 'k', NK_REGION_KEY_MAX + 1);
    longkey[NK_REGION_KEY_MAX + 1] = 0;
    raw_region(&b, 5, longkey, "", 2, ok, 2, false);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    free(longkey);

    /* the encoder refuses what the decoder would refuse */
    nk_region r;
    sample_region(&r);
    nk_region bad = r;
    bad.peers[0] = r.peers[1];
    bad.peers[1] = r.peers[0]; /* unsorted */
    assert_int_equal(nk_region_encode(&bad, &b), NK_EINVAL);
    bad = r;
    bad.n_peers = NK_REGION_MAX_PEERS + 1;
    assert_int_equal(nk_region_encode(&bad, &b), NK_EINVAL);
    bad = r;
    bad.start_len = NK_REGION_KEY_MAX + 1;
    assert_int_equal(nk_region_encode(&bad, &b), NK_EINVAL);
    bad = r;
    bad.id = 0;
    assert_int_equal(nk_region_encode(&bad, &b), NK_EINVAL);

    /* every truncation and flipped byte of a good encoding is refused;
     * another message's envelope is not a region */
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    uint8_t *copy = malloc(b.len);
    for (size_t n = 0; n < b.len; n++) {
        memcpy(copy, b.data, n);
        int rc = nk_region_decode(copy, n, &got);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
    }
    for (size_t i = 0; i < b.len; i++) {
        memcpy(copy, b.data, b.len);
        copy[i] ^= 0x40;
        int rc = nk_region_decode(copy, b.len, &got);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
    }
    free(copy);
    nk_hello h = {NK_SERVICE_RAFT, 1, 2, "x", ""};
    assert_int_equal(nk_hello_encode(&h, &b), NK_OK);
    assert_int_equal(nk_region_decode(b.data, b.len, &got), NK_EPROTO);
    nk_buf_free(&b);
}

/* --------------------------------------------------------------- hello --- */

static void test_hello(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_hello h = {NK_SERVICE_RAFT, 77, 3, "127.0.0.1:20160", "127.0.0.1:6380"}, got;
    assert_int_equal(nk_hello_encode(&h, &b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_OK);
    assert_int_equal(got.service, NK_SERVICE_RAFT);
    assert_int_equal(got.cluster_id, 77);
    assert_int_equal(got.store_id, 3);
    assert_string_equal(got.addr, "127.0.0.1:20160");
    assert_string_equal(got.client_addr, "127.0.0.1:6380");
    /* a CLI caller: no store, no address; and the longest address */
    nk_hello cli = {NK_SERVICE_COORD, 0, 0, "", ""};
    assert_int_equal(nk_hello_encode(&cli, &b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_OK);
    assert_int_equal(got.service, NK_SERVICE_COORD);
    assert_string_equal(got.addr, "");
    nk_hello full = {NK_SERVICE_ADMIN, 1, 1, "", ""};
    memset(full.addr, 'a', NK_HELLO_ADDR_MAX - 1);
    assert_int_equal(nk_hello_encode(&full, &b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_OK);
    assert_int_equal(strlen(got.addr), NK_HELLO_ADDR_MAX - 1);

    /* truncations and flipped bytes */
    assert_int_equal(nk_hello_encode(&h, &b), NK_OK);
    uint8_t *copy = malloc(b.len);
    for (size_t n = 0; n < b.len; n++) {
        memcpy(copy, b.data, n);
        int rc = nk_hello_decode(copy, n, &got);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
    }
    for (size_t i = 0; i < b.len; i++) {
        memcpy(copy, b.data, b.len);
        copy[i] ^= 0x01;
        int rc = nk_hello_decode(copy, b.len, &got);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
    }
    free(copy);

    /* a version 1 HELLO (no client address) still decodes */
    assert_int_equal(nk_wire_begin(&b, 0x4c48u, 1), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, NK_SERVICE_RAFT), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 5), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 6), NK_OK);
    assert_int_equal(nk_wire_put_str(&b, "h:1"), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_OK);
    assert_string_equal(got.addr, "h:1");
    assert_string_equal(got.client_addr, "");

    /* unknown services, on the wire and at the encoder */
    const uint8_t services[2] = {0, NK_SERVICE_COORD + 1};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(nk_wire_begin(&b, 0x4c48u, 1), NK_OK);
        assert_int_equal(nk_wire_put_u8(&b, services[i]), NK_OK);
        assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
        assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
        assert_int_equal(nk_wire_put_str(&b, ""), NK_OK);
        assert_int_equal(nk_wire_end(&b), NK_OK);
        assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_EPROTO);
        nk_hello bad = {services[i], 1, 1, "", ""};
        assert_int_equal(nk_hello_encode(&bad, &b), NK_EINVAL);
    }
    /* an address too long for the struct, or with no terminator */
    char addr[NK_HELLO_ADDR_MAX + 1];
    memset(addr, 'a', NK_HELLO_ADDR_MAX);
    addr[NK_HELLO_ADDR_MAX] = 0;
    assert_int_equal(nk_wire_begin(&b, 0x4c48u, 1), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, NK_SERVICE_RAFT), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_str(&b, addr), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_EPROTO);
    nk_hello unterminated = {NK_SERVICE_RAFT, 1, 1, "", ""};
    memset(unterminated.addr, 'a', NK_HELLO_ADDR_MAX);
    assert_int_equal(nk_hello_encode(&unterminated, &b), NK_EINVAL);
    /* trailing bytes, unknown version */
    assert_int_equal(nk_wire_begin(&b, 0x4c48u, 1), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, NK_SERVICE_RAFT), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_str(&b, ""), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, 0), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_EPROTO);
    assert_int_equal(nk_wire_begin(&b, 0x4c48u, 3), NK_OK);
    assert_int_equal(nk_wire_put_u8(&b, NK_SERVICE_RAFT), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_uvar(&b, 1), NK_OK);
    assert_int_equal(nk_wire_put_str(&b, ""), NK_OK);
    assert_int_equal(nk_wire_end(&b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_EPROTO);
    assert_int_equal(got.service, 0); /* a refused frame leaves nothing behind */
    assert_int_equal(got.cluster_id, 0);
    /* a region envelope is not a HELLO */
    nk_region r;
    nk_region_init_full(&r, 1);
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    assert_int_equal(nk_hello_decode(b.data, b.len, &got), NK_EPROTO);
    nk_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_wire_truncated_and_flipped),
        cmocka_unit_test(test_wire_envelope_rejections),
        cmocka_unit_test(test_wire_field_rejections),
        cmocka_unit_test(test_region_round_trip),
        cmocka_unit_test(test_region_helpers),
        cmocka_unit_test(test_region_rejections),
        cmocka_unit_test(test_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
