/*
 * test_admin_proto.c - the admin protocol codec (nokv/proto/admin.h):
 *   - round trips of every request and response shape (manifest, chunk,
 *     region status with a descriptor);
 *   - every truncation and every flipped byte is refused;
 *   - a file name that could leave the staging directory ("../x", "a/b",
 *     ".hidden", "") is refused by the encoder and, when a hostile peer
 *     puts one on the wire anyway (valid checksum), by the decoder;
 *   - an oversized chunk or read length, too many files, an unknown op and
 *     a response status out of range are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <xxhash.h>

#include "nokv/proto/admin.h"
#include "nokv/proto/wire.h"
#include "nokv/util/coding.h"
#include "nokv/util/err.h"

#define REQ_MAGIC 0x5141u

static nk_admin_req *new_req(uint8_t op)
{
    nk_admin_req *q = calloc(1, sizeof(*q));
    assert_non_null(q);
    q->id = 77;
    q->op = op;
    q->region_id = 1;
    q->store_id = 2;
    q->peer_id = 102;
    return q;
}

static void fill_manifest(nk_admin_manifest *m)
{
    nk_region_init_full(&m->desc, 1);
    nk_region_peer p = {.store_id = 1, .peer_id = 101, .role = NK_RAFT_VOTER};
    assert_int_equal(nk_region_peer_set(&m->desc, &p), NK_OK);
    m->index = 6;
    m->term = 6;
    m->n_files = 2;
    strcpy(m->files[0].name, "000001.sst");
    m->files[0].size = 4096;
    m->files[0].xxh64 = 0x1122334455667788ull;
    strcpy(m->files[1].name, "REGION.json");
    m->files[1].size = 300;
    m->files[1].xxh64 = 42;
}

/* Recompute the envelope trailer after a test patched the body: what a
 * hostile but well-formed peer would send. */
static void reseal(nk_buf *b, uint16_t magic)
{
    uint64_t h = XXH64(b->data, b->len - 8, magic);
    nk_put_u64(b->data + b->len - 8, h);
}

static uint8_t *find(uint8_t *hay, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(hay + i, needle, k) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

static void test_request_round_trips(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_admin_req *q = new_req(NK_ADMIN_SNAP_IMPORT_BEGIN);
    nk_admin_req *d = calloc(1, sizeof(*d));
    fill_manifest(&q->manifest);
    assert_int_equal(nk_admin_req_encode(q, &b), NK_OK);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_OK);
    assert_int_equal(d->id, 77);
    assert_int_equal(d->op, NK_ADMIN_SNAP_IMPORT_BEGIN);
    assert_int_equal(d->peer_id, 102);
    assert_int_equal(d->manifest.n_files, 2);
    assert_string_equal(d->manifest.files[1].name, "REGION.json");
    assert_int_equal(d->manifest.files[0].xxh64, 0x1122334455667788ull);
    assert_int_equal(d->manifest.index, 6);
    assert_int_equal(d->manifest.desc.n_peers, 1);

    /* A chunk, an AddPeer with an address, a read. */
    uint8_t data[100];
    memset(data, 0xab, sizeof(data));
    nk_admin_req *c = new_req(NK_ADMIN_SNAP_IMPORT_CHUNK);
    c->session = 9;
    c->file = 1;
    c->offset = 4000;
    c->data = nk_slice_make(data, sizeof(data));
    assert_int_equal(nk_admin_req_encode(c, &b), NK_OK);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_OK);
    assert_int_equal(d->session, 9);
    assert_int_equal(d->file, 1);
    assert_int_equal(d->offset, 4000);
    assert_int_equal(d->data.len, 100);
    assert_memory_equal(d->data.data, data, 100);

    nk_admin_req *a = new_req(NK_ADMIN_ADD_PEER);
    strcpy(a->addr, "127.0.0.1:20171");
    a->epoch.version = 1;
    a->epoch.conf_version = 3;
    assert_int_equal(nk_admin_req_encode(a, &b), NK_OK);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_OK);
    assert_string_equal(d->addr, "127.0.0.1:20171");
    assert_int_equal(d->epoch.conf_version, 3);

    /* Every truncation and every flipped byte of the chunk is refused. */
    assert_int_equal(nk_admin_req_encode(c, &b), NK_OK);
    for (size_t n = 0; n < b.len; n++) {
        assert_int_not_equal(nk_admin_req_decode(b.data, n, d), NK_OK);
    }
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x40;
        int rc = nk_admin_req_decode(b.data, b.len, d);
        assert_true(rc == NK_EPROTO || rc == NK_ECORRUPT);
        b.data[i] ^= 0x40;
    }
    nk_buf_free(&b);
    free(q);
    free(d);
    free(c);
    free(a);
}

static void test_response_round_trips(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_admin_resp *p = calloc(1, sizeof(*p));
    nk_admin_resp *d = calloc(1, sizeof(*d));
    p->id = 5;
    p->op = NK_ADMIN_REGION_STATUS;
    p->known = p->hosted = true;
    p->local_peer = 101;
    p->leader_peer = 101;
    p->leader_store = 1;
    p->applied_index = 12;
    p->applied_term = 6;
    p->role = 3;
    nk_region_init_full(&p->desc, 1);
    nk_region_peer rp = {.store_id = 1, .peer_id = 101, .role = NK_RAFT_VOTER};
    assert_int_equal(nk_region_peer_set(&p->desc, &rp), NK_OK);
    assert_int_equal(nk_admin_resp_encode(p, &b), NK_OK);
    assert_int_equal(nk_admin_resp_decode(b.data, b.len, d), NK_OK);
    assert_true(d->hosted && d->known);
    assert_int_equal(d->applied_index, 12);
    assert_int_equal(d->desc.peers[0].peer_id, 101);

    /* Unknown region: all-zero answer, still a valid message. */
    memset(p, 0, sizeof(*p));
    p->id = 6;
    p->op = NK_ADMIN_REGION_STATUS;
    assert_int_equal(nk_admin_resp_encode(p, &b), NK_OK);
    assert_int_equal(nk_admin_resp_decode(b.data, b.len, d), NK_OK);
    assert_false(d->known);
    assert_int_equal(d->desc.n_peers, 0);

    /* An error answer with a hint, and an export manifest. */
    p->status = NK_ADMIN_NOT_LEADER;
    p->leader_peer = 102;
    p->leader_store = 2;
    strcpy(p->msg, "not the leader");
    assert_int_equal(nk_admin_resp_encode(p, &b), NK_OK);
    assert_int_equal(nk_admin_resp_decode(b.data, b.len, d), NK_OK);
    assert_int_equal(d->status, NK_ADMIN_NOT_LEADER);
    assert_int_equal(d->leader_store, 2);
    assert_string_equal(d->msg, "not the leader");
    memset(p, 0, sizeof(*p));
    p->op = NK_ADMIN_SNAP_EXPORT;
    p->session = 3;
    fill_manifest(&p->manifest);
    assert_int_equal(nk_admin_resp_encode(p, &b), NK_OK);
    assert_int_equal(nk_admin_resp_decode(b.data, b.len, d), NK_OK);
    assert_int_equal(d->manifest.n_files, 2);
    assert_int_equal(d->session, 3);

    /* A status outside the table is refused on both sides. */
    p->status = NK_ADMIN_STATUS_MAX + 1;
    assert_int_equal(nk_admin_resp_encode(p, &b), NK_EINVAL);
    nk_buf_free(&b);
    free(p);
    free(d);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(nk_admin_name_ok("000001.sst"));
    assert_true(nk_admin_name_ok("REGION.json"));
    const char *bad[] = {"", "../x", "a/b", ".hidden", "..", "a\\b", "x y", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(nk_admin_name_ok(bad[i]));
    }
    char longname[NK_ADMIN_NAME_MAX + 1];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(nk_admin_name_ok(longname));

    /* The encoder refuses to send a traversal... */
    nk_buf b = {0};
    nk_admin_req *q = new_req(NK_ADMIN_SNAP_IMPORT_BEGIN);
    nk_admin_req *d = calloc(1, sizeof(*d));
    fill_manifest(&q->manifest);
    strcpy(q->manifest.files[0].name, "../LOCALMETA");
    assert_int_equal(nk_admin_req_encode(q, &b), NK_EINVAL);
    /* ... and the decoder refuses one a hostile peer sealed properly (the
     * patch keeps the length, the trailer is recomputed). */
    strcpy(q->manifest.files[0].name, "xxxxxxxxxxxx");
    assert_int_equal(nk_admin_req_encode(q, &b), NK_OK);
    uint8_t *at = find(b.data, b.len, "xxxxxxxxxxxx", 12);
    assert_non_null(at);
    memcpy(at, "../../LOCALM", 12);
    reseal(&b, REQ_MAGIC);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_EPROTO);
    nk_buf_free(&b);
    free(q);
    free(d);
}

static void test_bounds(void **state)
{
    (void)state;
    nk_buf b = {0};
    nk_admin_req *q = new_req(NK_ADMIN_SNAP_IMPORT_CHUNK);
    nk_admin_req *d = calloc(1, sizeof(*d));
    uint8_t *big = calloc(1, NK_ADMIN_CHUNK_MAX + 1);
    q->data = nk_slice_make(big, NK_ADMIN_CHUNK_MAX + 1);
    assert_int_equal(nk_admin_req_encode(q, &b), NK_EINVAL);

    /* An oversized chunk built by hand (a hostile encoder). */
    assert_int_equal(nk_wire_begin(&b, REQ_MAGIC, NK_ADMIN_VERSION), NK_OK);
    nk_wire_put_uvar(&b, 1);
    nk_wire_put_u8(&b, NK_ADMIN_SNAP_IMPORT_CHUNK);
    for (int i = 0; i < 3; i++) {
        nk_wire_put_uvar(&b, 1);
    }
    nk_wire_put_u8(&b, 0);
    nk_wire_put_uvar(&b, 0);
    nk_wire_put_uvar(&b, 0);
    nk_wire_put_uvar(&b, 1); /* session */
    nk_wire_put_uvar(&b, 0); /* file */
    nk_wire_put_uvar(&b, 0); /* offset */
    nk_wire_put_bytes(&b, big, NK_ADMIN_CHUNK_MAX + 1);
    nk_wire_end(&b);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_EPROTO);

    /* Too many files, an unknown op, a read above the chunk bound. */
    nk_admin_req *m = new_req(NK_ADMIN_SNAP_IMPORT_BEGIN);
    fill_manifest(&m->manifest);
    m->manifest.n_files = NK_ADMIN_SNAP_MAX_FILES + 1;
    assert_int_equal(nk_admin_req_encode(m, &b), NK_EINVAL);
    q->op = NK_ADMIN_OP_MAX + 1;
    q->data = nk_slice_make(NULL, 0);
    assert_int_equal(nk_admin_req_encode(q, &b), NK_EINVAL);
    q->op = NK_ADMIN_SNAP_READ;
    q->max_len = NK_ADMIN_CHUNK_MAX + 1;
    assert_int_equal(nk_admin_req_encode(q, &b), NK_EINVAL);
    /* A valid frame of another message type is refused by its magic. */
    nk_region r;
    nk_region_init_full(&r, 1);
    assert_int_equal(nk_region_encode(&r, &b), NK_OK);
    assert_int_equal(nk_admin_req_decode(b.data, b.len, d), NK_EPROTO);
    nk_buf_free(&b);
    free(big);
    free(q);
    free(d);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trips),
        cmocka_unit_test(test_response_round_trips),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
