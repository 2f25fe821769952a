/* migrate_sim.c - see migrate_sim.h. */
#include "helpers/migrate_sim.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nokv/engine/db.h"
#include "nokv/migrate/seedsnap.h"
#include "nokv/store/workdir.h"

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

static const nk_sim_app app = {"migrate-test", app_start, app_stop};

nk_sim *msim_boot(uint64_t seed)
{
    nk_sim_config cfg;
    nk_sim_config_default(&cfg, seed);
    nk_sim *s = nk_sim_new(&cfg);
    nk_sim_add_node(s, "n1", &app, NULL, NULL);
    nk_sim_node_start(s, 1);
    return s;
}

nk_rt *msim_rt(void)
{
    return g_rt;
}

void msim_run(nk_sim *s, uint64_t ms)
{
    nk_sim_run_until(s, nk_sim_now(s) + ms * NK_NSEC_PER_MSEC);
}

typedef struct flag {
    bool done;
    int rc;
} flag;

static void on_flag(void *arg, int rc)
{
    flag *f = arg;
    f->done = true;
    f->rc = rc;
}

static void wait_flag(nk_sim *s, flag *f)
{
    for (int i = 0; i < 200000 && !f->done; i++) {
        msim_run(s, 1);
    }
    assert_true(f->done);
    assert_int_equal(f->rc, NK_OK);
}

static void small_options(nk_db_options *o)
{
    nk_db_options_default(o);
    o->memtable_bytes = 16 * 1024;
    o->target_file_bytes = 8 * 1024;
    o->l0_compaction_trigger = 2;
    o->sst.block_size = 1024;
}

void msim_fill(nk_sim *s, const char *dir, unsigned nkeys, unsigned flushed)
{
    nk_errbuf eb;
    nk_workdir *wd = NULL;
    assert_int_equal(nk_workdir_open(g_rt, dir, NULL, &wd, &eb), NK_OK);
    nk_db_options o;
    small_options(&o);
    nk_db *db = NULL;
    assert_int_equal(nk_db_open(g_rt, dir, &o, &db, &eb), NK_OK);
    nk_batch b;
    nk_batch_init(&b);
    for (unsigned i = 0; i < nkeys; i++) {
        char k[32], v[64];
        snprintf(k, sizeof(k), "k%05u", i);
        snprintf(v, sizeof(v), "v%u-%s", i, "payload-payload-payload");
        nk_batch_clear(&b);
        nk_batch_put(&b, k, strlen(k), v, strlen(v));
        flag f = {false, 0};
        assert_int_equal(nk_db_write(db, &b, true, on_flag, &f), NK_OK);
        wait_flag(s, &f);
        if (i + 1 == flushed) {
            flag ff = {false, 0};
            assert_int_equal(nk_db_flush(db, on_flag, &ff), NK_OK);
            wait_flag(s, &ff);
        }
    }
    nk_batch_free(&b);
    flag c = {false, 0};
    nk_db_close(db, on_flag, &c);
    wait_flag(s, &c);
    nk_workdir_close(wd);
}

void msim_put(nk_sim *s, const char *dir, const void *key, size_t klen, bool flush)
{
    nk_errbuf eb;
    nk_workdir *wd = NULL;
    assert_int_equal(nk_workdir_open(g_rt, dir, NULL, &wd, &eb), NK_OK);
    nk_db_options o;
    small_options(&o);
    nk_db *db = NULL;
    assert_int_equal(nk_db_open(g_rt, dir, &o, &db, &eb), NK_OK);
    nk_batch b;
    nk_batch_init(&b);
    nk_batch_put(&b, key, klen, "x", 1);
    flag f = {false, 0};
    assert_int_equal(nk_db_write(db, &b, true, on_flag, &f), NK_OK);
    wait_flag(s, &f);
    nk_batch_free(&b);
    if (flush) {
        flag ff = {false, 0};
        assert_int_equal(nk_db_flush(db, on_flag, &ff), NK_OK);
        wait_flag(s, &ff);
    }
    flag c = {false, 0};
    nk_db_close(db, on_flag, &c);
    wait_flag(s, &c);
    nk_workdir_close(wd);
}

void msim_check_keys(nk_sim *s, const char *dir, unsigned nkeys)
{
    (void)s;
    nk_errbuf eb;
    nk_db_options o;
    small_options(&o);
    o.create_if_missing = false;
    nk_db *db = NULL;
    assert_int_equal(nk_db_open(g_rt, dir, &o, &db, &eb), NK_OK);
    for (unsigned i = 0; i < nkeys; i++) {
        char k[32], v[64];
        snprintf(k, sizeof(k), "k%05u", i);
        snprintf(v, sizeof(v), "v%u-%s", i, "payload-payload-payload");
        nk_buf val = {0};
        assert_int_equal(nk_db_get(db, k, strlen(k), NK_SEQ_MAX, &val, &eb), NK_OK);
        assert_int_equal(val.len, strlen(v));
        assert_memory_equal(val.data, v, val.len);
        nk_buf_free(&val);
    }
    flag c = {false, 0};
    nk_db_close(db, on_flag, &c);
    wait_flag(s, &c);
}

static void digest_into(nk_rt *rt, const char *dir, nk_buf *out)
{
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) != NK_OK) {
        return;
    }
    for (size_t i = 0; i < names.count; i++) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, names.names[i]);
        nk_stat st;
        assert_int_equal(nk_rt_stat(rt, p, &st), NK_OK);
        if (st.is_dir) {
            char line[1100];
            snprintf(line, sizeof(line), "%s/\n", p);
            nk_buf_append(out, line, strlen(line));
            digest_into(rt, p, out);
            continue;
        }
        uint64_t h = 0, size = 0;
        assert_int_equal(nk_file_xxh64(rt, p, &h, &size), NK_OK);
        char line[1100];
        snprintf(line, sizeof(line), "%s %" PRIu64 " %016" PRIx64 "\n", p, size, h);
        nk_buf_append(out, line, strlen(line));
    }
    nk_names_free(&names);
}

void msim_digest(nk_rt *rt, const char *dir, nk_buf *out)
{
    nk_buf_clear(out);
    digest_into(rt, dir, out);
    nk_buf_append_u8(out, 0);
}
