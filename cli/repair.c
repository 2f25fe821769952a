/*
 * repair.c - `nokv repair --workdir D`: the explicit salvage path.
 *
 * A workdir whose WAL lost records the manifest says were durable (a removed
 * or truncated segment, damage under a durability claim) is refused by every
 * normal open. This command is the operator saying "keep what can be read":
 * it opens the engine with accept_data_loss, prints exactly what was given
 * up (WAL records, sequence numbers), lets the engine record the decision in
 * the manifest, and closes cleanly, so the next `nokv serve` opens normally.
 * The engine logs the same decision at WARN. Never done implicitly.
 *
 * Exit status: 0 repaired (or nothing to repair), 1 the workdir could not be
 * opened even so, 2 usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/store/workdir.h"
#include "nokv/engine/db.h"
#include "nokv/migrate/mode.h"

static void repair_usage(FILE *out)
{
    fprintf(out, "usage: nokv repair --workdir DIR\n"
                 "\n"
                 "Open a damaged standalone workdir ACCEPTING DATA LOSS: what the WAL still\n"
                 "holds is recovered, what it lost is reported (WAL records and sequence\n"
                 "numbers) and the decision is recorded, so the next `nokv serve` opens\n"
                 "normally. Run it only after `nokv serve` refused the workdir and the\n"
                 "missing files cannot be restored. Same as one start of\n"
                 "`nokv serve --accept-data-loss`.\n");
}

typedef struct close_wait {
    bool done;
    int rc;
} close_wait;

static void on_closed(void *arg, int rc)
{
    close_wait *c = arg;
    c->done = true;
    c->rc = rc;
}

void nk_cli_print_open_report(FILE *out, const char *workdir, const nk_db_open_report *r)
{
    fprintf(out,
            "%s: %" PRIu64 " tables, WAL: %" PRIu64 " segments, %" PRIu64
            " records replayed, last sequence %" PRIu64 "\n",
            workdir, r->tables, r->wal_segments, r->wal_replayed, r->last_seq);
    if (r->wal_torn) {
        fprintf(out, "  torn WAL tail cut (%" PRIu64 " bytes never confirmed durable)\n",
                r->wal_torn_bytes);
    }
    if (!r->data_lost) {
        fprintf(out, "  no durable data lost\n");
        return;
    }
    if (r->lost_lsn_to != 0) {
        fprintf(out, "  LOST: WAL records %" PRIu64 "..%" PRIu64 " (acknowledged as durable)\n",
                r->lost_lsn_from, r->lost_lsn_to);
    } else if (r->lost_lsn_from != 0) {
        fprintf(out,
                "  LOST: every WAL record from %" PRIu64
                " on (whole segments are gone; their count is unknown)\n",
                r->lost_lsn_from);
    }
    if (r->lost_seq_from != 0) {
        fprintf(out, "  LOST: sequence numbers %" PRIu64 "..%" PRIu64 "\n", r->lost_seq_from,
                r->lost_seq_to);
    }
}

int nk_cli_repair(int argc, char **argv)
{
    const char *workdir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            repair_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--workdir") == 0 && i + 1 < argc) {
            workdir = argv[++i];
        } else {
            fprintf(stderr, "nokv repair: unknown option '%s' (see nokv repair --help)\n", argv[i]);
            return 2;
        }
    }
    if (workdir == NULL) {
        fprintf(stderr, "nokv repair: --workdir DIR is required\n");
        return 2;
    }
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_WARN;
    rc.no_signals = true;
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv repair: cannot start the runtime: %s\n", nk_strerror(err));
        return 1;
    }
    nk_db_options o;
    nk_db_options_default(&o);
    o.create_if_missing = false;
    o.accept_data_loss = true;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    /* Only a standalone workdir, and only with its owner lock held. */
    nk_workdir_options wo = {NK_MODE_BIT(NK_MODE_STANDALONE), false};
    nk_workdir *wd = NULL;
    nk_db *db = NULL;
    err = nk_workdir_open(rt, workdir, &wo, &wd, &eb);
    if (err == NK_OK) {
        err = nk_db_open(rt, workdir, &o, &db, &eb);
    }
    if (err != NK_OK) {
        nk_workdir_close(wd);
        fprintf(stderr, "nokv repair: cannot open %s even accepting data loss: %s\n", workdir,
                eb.msg[0] ? eb.msg : nk_strerror(err));
        nk_rt_real_free(rt);
        return 1;
    }
    nk_cli_print_open_report(stdout, workdir, nk_db_open_report_get(db));
    close_wait cw = {false, NK_OK};
    nk_db_close(db, on_closed, &cw);
    for (int i = 0; i < 100000 && !cw.done; i++) {
        (void)nk_rt_run_once(rt, 10 * NK_NSEC_PER_MSEC);
    }
    nk_workdir_close(wd);
    nk_rt_real_free(rt);
    if (!cw.done || cw.rc != NK_OK) {
        fprintf(stderr, "nokv repair: closing %s failed: %s\n", workdir,
                cw.done ? nk_strerror(cw.rc) : "timed out");
        return 1;
    }
    printf("repaired: %s opens normally now\n", workdir);
    return 0;
}
