/*
 * test_store_localmeta.c - LOCALMETA: codec round trip, absence, crash at
 * each failpoint of the save protocol (old or new, never torn), corruption
 * reported with the file name, tombstones kept across restarts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/store/localmeta.h"
#include "sim/sim.h"

static nk_rt *g_rt;

static int app_start(nk_rt *rt, void *cfg, void **state)
{
    (void)cfg;
    g_rt = rt;
    *state = rt;
    return NK_OK;
}

static void app_stop(void *state, bool crashed)
{
    (void)state;
    (void)crashed;
}

static const nk_sim_app app = {"localmeta-test", app_start, app_stop};

static nk_sim *boot(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    nk_sim_add_node(s, "n1", &app, NULL, NULL);
    nk_sim_node_start(s, 1);
    assert_int_equal(nk_rt_dir_create(g_rt, "/w"), NK_OK);
    assert_int_equal(nk_rt_dir_sync(g_rt, "/"), NK_OK);
    return s;
}

static void region(nk_region *r, uint64_t id, const char *start, const char *end,
                   uint64_t peer_base)
{
    nk_region_init_full(r, id);
    assert_int_equal(nk_region_set_range(r, start, strlen(start), end, strlen(end)), NK_OK);
    for (uint64_t s = 1; s <= 3; s++) {
        nk_region_peer p = {s, peer_base + s, s == 3 ? NK_RAFT_LEARNER : NK_RAFT_VOTER};
        assert_int_equal(nk_region_peer_set(r, &p), NK_OK);
    }
    r->epoch.conf_version = 4;
}

/* A catalog with `gen` folded into it so two generations differ. */
static void sample(nk_localmeta *m, uint64_t gen)
{
    nk_localmeta_init(m);
    m->store_id = 7;
    m->cluster_id = 0xc1u + gen;
    nk_region r;
    region(&r, 20, "m", "", 200);
    assert_int_equal(nk_localmeta_put(m, &r, NK_REGION_NORMAL), NK_OK);
    region(&r, 10, "", "m", 100);
    r.epoch.version = 2 + gen;
    assert_int_equal(nk_localmeta_put(m, &r, NK_REGION_NORMAL), NK_OK);
    region(&r, 30, "x", "y", 300);
    assert_int_equal(nk_localmeta_put(m, &r, NK_REGION_TOMBSTONE), NK_OK);
    nk_localmeta_region *t = nk_localmeta_find(m, 30);
    t->tomb_term = 9 + gen;
    t->tomb_vote = 301;
    uint64_t seq = 0;
    assert_int_equal(nk_localmeta_event_add(m, "report-a", 8, &seq), NK_OK);
    assert_int_equal(seq, 1);
    assert_int_equal(nk_localmeta_event_add(m, "report-b", 8, &seq), NK_OK);
    assert_int_equal(seq, 2);
}

static void assert_same(const nk_localmeta *a, const nk_localmeta *b)
{
    assert_int_equal(a->store_id, b->store_id);
    assert_int_equal(a->cluster_id, b->cluster_id);
    assert_int_equal(a->n_regions, b->n_regions);
    for (size_t i = 0; i < a->n_regions; i++) {
        assert_int_equal(a->regions[i].state, b->regions[i].state);
        assert_int_equal(a->regions[i].tomb_term, b->regions[i].tomb_term);
        assert_int_equal(a->regions[i].tomb_vote, b->regions[i].tomb_vote);
        const nk_region *x = &a->regions[i].desc, *y = &b->regions[i].desc;
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->start_len, y->start_len);
        assert_int_equal(x->end_len, y->end_len);
        assert_int_equal(memcmp(x->start, y->start, x->start_len), 0);
        assert_int_equal(memcmp(x->end, y->end, x->end_len), 0);
        assert_int_equal(x->epoch.version, y->epoch.version);
        assert_int_equal(x->epoch.conf_version, y->epoch.conf_version);
        assert_int_equal(x->n_peers, y->n_peers);
        for (uint32_t k = 0; k < x->n_peers; k++) {
            assert_int_equal(x->peers[k].store_id, y->peers[k].store_id);
            assert_int_equal(x->peers[k].peer_id, y->peers[k].peer_id);
            assert_int_equal(x->peers[k].role, y->peers[k].role);
        }
    }
    assert_int_equal(a->n_events, b->n_events);
    for (size_t i = 0; i < a->n_events; i++) {
        assert_int_equal(a->events[i].seq, b->events[i].seq);
        assert_int_equal(a->events[i].len, b->events[i].len);
        assert_memory_equal(a->events[i].data, b->events[i].data, a->events[i].len);
    }
    assert_int_equal(a->next_event_seq, b->next_event_seq);
}

static void test_round_trip_and_edits(void **state)
{
    (void)state;
    nk_sim *s = boot(1);
    nk_errbuf eb;
    nk_localmeta m, got;
    assert_false(nk_localmeta_exists(g_rt, "/w"));
    assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_ENOENT);
    assert_int_equal(got.n_regions, 0);

    sample(&m, 0);
    /* sorted by id whatever the insertion order */
    assert_int_equal(m.regions[0].desc.id, 10);
    assert_int_equal(m.regions[2].desc.id, 30);
    assert_non_null(nk_localmeta_find(&m, 20));
    assert_null(nk_localmeta_find(&m, 15));
    assert_int_equal(nk_localmeta_save(g_rt, "/w", &m, &eb), NK_OK);
    assert_true(nk_localmeta_exists(g_rt, "/w"));
    assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_OK);
    assert_same(&m, &got);
    nk_localmeta_free(&got);

    /* ack drops the acknowledged events; the sequence never goes back */
    nk_localmeta_event_ack(&m, 1);
    assert_int_equal(m.n_events, 1);
    assert_int_equal(m.events[0].seq, 2);
    nk_localmeta_event_ack(&m, 2);
    assert_int_equal(m.n_events, 0);
    assert_int_equal(nk_localmeta_remove(&m, 20), NK_OK);
    assert_int_equal(nk_localmeta_remove(&m, 20), NK_ENOENT);
    assert_int_equal(nk_localmeta_save(g_rt, "/w", &m, &eb), NK_OK);
    assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_OK);
    assert_same(&m, &got);
    uint64_t seq = 0;
    assert_int_equal(nk_localmeta_event_add(&got, "c", 1, &seq), NK_OK);
    assert_int_equal(seq, 3);
    /* remove drops exactly one event, in any order (reports are answered
     * out of order) */
    assert_int_equal(nk_localmeta_event_add(&got, "d", 1, &seq), NK_OK);
    assert_int_equal(nk_localmeta_event_remove(&got, 4), NK_OK);
    assert_int_equal(nk_localmeta_event_remove(&got, 4), NK_ENOENT);
    assert_int_equal(got.n_events, 1);
    assert_int_equal(got.events[0].seq, 3);
    nk_localmeta_free(&got);

    /* a descriptor that does not validate is refused */
    nk_region bad;
    nk_region_init_full(&bad, 0);
    assert_int_equal(nk_localmeta_put(&m, &bad, NK_REGION_NORMAL), NK_EINVAL);
    nk_region_init_full(&bad, 5);
    assert_int_equal(nk_localmeta_put(&m, &bad, 9), NK_EINVAL);
    nk_localmeta_free(&m);
    nk_sim_free(s);
}

static void test_tombstone_survives_restart(void **state)
{
    (void)state;
    nk_sim *s = boot(2);
    nk_errbuf eb;
    nk_localmeta m;
    sample(&m, 0);
    assert_int_equal(nk_localmeta_save(g_rt, "/w", &m, &eb), NK_OK);
    nk_localmeta_free(&m);
    nk_sim_node_crash(s, 1);
    nk_sim_node_start(s, 1);
    assert_int_equal(nk_localmeta_load(g_rt, "/w", &m, &eb), NK_OK);
    nk_localmeta_region *t = nk_localmeta_find(&m, 30);
    assert_non_null(t);
    assert_int_equal(t->state, NK_REGION_TOMBSTONE);
    assert_int_equal(t->desc.n_peers, 3);
    assert_int_equal(t->tomb_term, 9);
    assert_int_equal(t->tomb_vote, 301);
    nk_localmeta_free(&m);
    nk_sim_free(s);
}

static void test_crash_at_each_failpoint_keeps_old_or_new(void **state)
{
    (void)state;
    static const char *const fps[] = {"localmeta.save.after_tmp", "localmeta.save.after_rename",
                                      NULL};
    for (int which = 0; which < 3; which++) {
        int saw_old = 0, saw_new = 0;
        for (uint64_t seed = 1; seed <= 24; seed++) {
            nk_sim *s = boot(seed * 31 + (uint64_t)which);
            nk_errbuf eb;
            nk_localmeta a, b, got;
            sample(&a, 0);
            sample(&b, 1);
            assert_int_equal(nk_localmeta_save(g_rt, "/w", &a, &eb), NK_OK);
            if (fps[which] != NULL) {
                nk_sim_failpoint_arm(s, 1, fps[which], NK_SIM_FP_CRASH, 1, (nk_ratio){0, 0});
                assert_int_equal(nk_localmeta_save(g_rt, "/w", &b, &eb), NK_ECRASHED);
            } else {
                assert_int_equal(nk_localmeta_save(g_rt, "/w", &b, &eb), NK_OK);
                nk_sim_node_crash(s, 1);
            }
            nk_sim_node_start(s, 1);
            assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_OK);
            bool is_new = got.cluster_id == b.cluster_id;
            assert_same(is_new ? &b : &a, &got);
            saw_old += !is_new;
            saw_new += is_new;
            nk_localmeta_free(&a);
            nk_localmeta_free(&b);
            nk_localmeta_free(&got);
            nk_sim_free(s);
        }
        if (which == 0) {
            assert_int_equal(saw_new, 0); /* not renamed: always the old one */
        } else if (which == 1) {
            assert_true(saw_old > 0 && saw_new > 0); /* rename pending: either */
        } else {
            assert_int_equal(saw_old, 0); /* returned NK_OK: durable */
        }
    }
}

static void rewrite(const char *path, const uint8_t *data, size_t len)
{
    nk_file *f = NULL;
    assert_int_equal(
        nk_rt_file_open(g_rt, path, NK_OPEN_WRITE | NK_OPEN_CREATE | NK_OPEN_TRUNC, &f), NK_OK);
    if (len > 0) {
        assert_int_equal(nk_rt_file_write_at(g_rt, f, 0, data, len), NK_OK);
    }
    nk_rt_file_close(g_rt, f);
}

static void test_corrupt_file_is_reported_with_its_name(void **state)
{
    (void)state;
    nk_sim *s = boot(3);
    nk_errbuf eb;
    nk_localmeta m, got;
    sample(&m, 0);
    nk_buf enc = {0};
    assert_int_equal(nk_localmeta_encode(&m, &enc), NK_OK);
    /* every single-byte flip, every truncation is refused */
    for (size_t i = 0; i < enc.len; i += 7) {
        enc.data[i] ^= 0x20;
        rewrite("/w/LOCALMETA", enc.data, enc.len);
        memset(&eb, 0, sizeof(eb));
        assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_ECORRUPT);
        assert_non_null(strstr(eb.msg, "/w/LOCALMETA"));
        assert_int_equal(got.n_regions, 0);
        enc.data[i] ^= 0x20;
    }
    for (size_t cut = 0; cut < enc.len; cut += 13) {
        rewrite("/w/LOCALMETA", enc.data, cut);
        assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_ECORRUPT);
        assert_non_null(strstr(eb.msg, "corrupt"));
    }
    /* decode directly: the message says what is wrong */
    assert_int_equal(nk_localmeta_decode(enc.data, enc.len, &got, &eb), NK_OK);
    assert_same(&m, &got);
    nk_localmeta_free(&got);
    enc.data[enc.len - 1] ^= 1;
    assert_int_equal(nk_localmeta_decode(enc.data, enc.len, &got, &eb), NK_ECORRUPT);
    assert_non_null(strstr(eb.msg, "checksum"));
    nk_buf_free(&enc);
    nk_localmeta_free(&m);
    nk_sim_free(s);
}

static void test_leftover_tmp_counts_as_existing(void **state)
{
    (void)state;
    nk_sim *s = boot(4);
    nk_errbuf eb;
    nk_localmeta m;
    sample(&m, 0);
    nk_sim_failpoint_arm(s, 1, "localmeta.save.after_tmp", NK_SIM_FP_ERROR, 1, (nk_ratio){0, 0});
    assert_int_equal(nk_localmeta_save(g_rt, "/w", &m, &eb), NK_EFAILPOINT);
    assert_non_null(strstr(eb.msg, "LOCALMETA"));
    /* the real file was never written, but plan must see the attempt */
    nk_localmeta got;
    assert_int_equal(nk_localmeta_load(g_rt, "/w", &got, &eb), NK_ENOENT);
    assert_true(nk_localmeta_exists(g_rt, "/w"));
    nk_localmeta_free(&m);
    nk_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_edits),
        cmocka_unit_test(test_tombstone_survives_restart),
        cmocka_unit_test(test_crash_at_each_failpoint_keeps_old_or_new),
        cmocka_unit_test(test_corrupt_file_is_reported_with_its_name),
        cmocka_unit_test(test_leftover_tmp_counts_as_existing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
