/*
 * stats.c - `nokv stats --workdir D [--json]`: an offline view of a stopped
 * workdir, changing nothing (no lock taken, no file written).
 *
 * Shows the mode (MODE.json), the migration checkpoint and its resume hint,
 * the engine (manifest, tables per level with sizes, WAL segments, torn
 * tails the next open would cut: nokv/engine/inspect.h), the store's
 * LOCALMETA (store id, regions with range, epoch, state and peers, pending
 * coordinator reports) and the raft log files.
 *
 * Exit status: 0 shown, 1 a file could not be read or is damaged (the
 * message says which), 2 usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/engine/inspect.h"
#include "nokv/migrate/checkpoint.h"
#include "nokv/migrate/mode.h"
#include "nokv/store/localmeta.h"

static void stats_usage(FILE *out)
{
    fprintf(out, "usage: nokv stats --workdir DIR [--json]\n"
                 "\n"
                 "Show what a stopped workdir holds, offline and read-only: mode, migration\n"
                 "checkpoint and resume hint, engine levels and sizes, WAL segments, the\n"
                 "store's LOCALMETA regions and the raft log files.\n"
                 "\n"
                 "exit status: 0 shown, 1 something could not be read (named), 2 usage error\n");
}

static void print_key(FILE *out, const uint8_t *k, uint32_t n)
{
    if (n == 0) {
        fputs("\"\"", out);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        bool plain = k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\';
        if (plain) {
            fputc(k[i], out);
        } else {
            fprintf(out, "\\x%02x", k[i]);
        }
    }
}

static const char *state_name(uint8_t s)
{
    return s == NK_REGION_NORMAL      ? "normal"
           : s == NK_REGION_APPLYING  ? "applying"
           : s == NK_REGION_TOMBSTONE ? "tombstone"
                                      : "?";
}

static void raft_files(nk_rt *rt, const char *workdir, uint64_t *n, uint64_t *bytes)
{
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/raft", workdir);
    *n = 0;
    *bytes = 0;
    nk_names names = {0};
    if (nk_rt_dir_list(rt, dir, &names) != NK_OK) {
        return;
    }
    for (size_t i = 0; i < names.count; i++) {
        size_t len = strlen(names.names[i]);
        if (len > 5 && strcmp(names.names[i] + len - 5, ".rlog") == 0) {
            char path[1400];
            nk_stat st;
            snprintf(path, sizeof(path), "%s/%s", dir, names.names[i]);
            if (nk_rt_stat(rt, path, &st) == NK_OK) {
                (*n)++;
                *bytes += st.size;
            }
        }
    }
    nk_names_free(&names);
}

int nk_cli_stats(int argc, char **argv)
{
    const char *workdir = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            stats_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--workdir") == 0 && i + 1 < argc) {
            workdir = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "nokv stats: unknown option '%s' (see nokv stats --help)\n", argv[i]);
            return 2;
        }
    }
    if (workdir == NULL) {
        fprintf(stderr, "nokv stats: --workdir DIR is required\n");
        return 2;
    }
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_ERROR;
    rc.no_signals = true;
    nk_rt *rt = NULL;
    if (nk_rt_real_new(&rc, &rt) != NK_OK) {
        fprintf(stderr, "nokv stats: cannot start the runtime\n");
        return 1;
    }
    int status = 0;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    nk_stat wst;
    if (nk_rt_stat(rt, workdir, &wst) != NK_OK || !wst.is_dir) {
        fprintf(stderr, "nokv stats: %s is not a directory (give the workdir of a server)\n",
                workdir);
        nk_rt_real_free(rt);
        return 1;
    }
    nk_mode_state ms;
    if (nk_mode_read(rt, workdir, &ms, &eb) != NK_OK) {
        fprintf(stderr, "nokv stats: MODE.json: %s\n", eb.msg);
        nk_rt_real_free(rt);
        return 1;
    }
    nk_checkpoint cp;
    bool have_cp = nk_checkpoint_read(rt, workdir, &cp, &eb) == NK_OK;
    char hint[512];
    nk_resume_hint(ms.mode, have_cp ? &cp : NULL, hint, sizeof(hint));
    nk_db_inspect di;
    memset(&di, 0, sizeof(di));
    int irc = nk_db_inspect_dir(rt, workdir, &di, &eb);
    if (irc != NK_OK) {
        fprintf(stderr, "nokv stats: engine: %s\n", eb.msg);
        status = 1;
    }
    uint64_t level_files[8] = {0}, level_bytes[8] = {0};
    for (size_t i = 0; irc == NK_OK && i < di.n_files; i++) {
        uint32_t l = di.files[i].level < 7 ? di.files[i].level : 7;
        level_files[l]++;
        level_bytes[l] += di.files[i].size;
    }
    nk_localmeta lm;
    nk_localmeta_init(&lm);
    int lrc = nk_localmeta_load(rt, workdir, &lm, &eb);
    if (lrc != NK_OK && lrc != NK_ENOENT) {
        fprintf(stderr, "nokv stats: LOCALMETA: %s\n", eb.msg);
        status = 1;
    }
    uint64_t rlog_n = 0, rlog_bytes = 0;
    raft_files(rt, workdir, &rlog_n, &rlog_bytes);

    if (json) {
        printf("{\"workdir\":\"%s\",\"mode\":\"%s\",\"store_id\":%" PRIu64 ",\"stage\":\"%s\","
               "\"resume_hint\":\"%s\",",
               workdir, nk_mode_name(ms.mode), ms.store_id, have_cp ? nk_stage_name(cp.stage) : "",
               hint);
        printf("\"engine\":{\"present\":%s,\"last_sequence\":%" PRIu64 ",\"table_bytes\":%" PRIu64
               ",\"wal_segments\":%" PRIu64 ",\"wal_bytes\":%" PRIu64
               ",\"wal_torn\":%s,\"manifest_torn\":%s,\"levels\":[",
               irc == NK_OK && di.has_current ? "true" : "false", di.last_sequence, di.table_bytes,
               di.wal_segments, di.wal_bytes, di.wal_torn ? "true" : "false",
               di.manifest_torn ? "true" : "false");
        for (int l = 0; l < 7; l++) {
            printf("%s{\"level\":%d,\"files\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", l ? "," : "", l,
                   level_files[l], level_bytes[l]);
        }
        printf("]},\"raft_log\":{\"segments\":%" PRIu64 ",\"bytes\":%" PRIu64 "},", rlog_n,
               rlog_bytes);
        printf("\"localmeta\":{\"present\":%s,\"store_id\":%" PRIu64
               ",\"pending_reports\":%zu,\"regions\":[",
               lrc == NK_OK ? "true" : "false", lm.store_id, lm.n_events);
        for (size_t i = 0; i < lm.n_regions; i++) {
            const nk_localmeta_region *r = &lm.regions[i];
            printf("%s{\"region_id\":%" PRIu64 ",\"state\":\"%s\",\"epoch\":{\"version\":%" PRIu64
                   ",\"conf_version\":%" PRIu64 "},\"peers\":[",
                   i ? "," : "", r->desc.id, state_name(r->state), r->desc.epoch.version,
                   r->desc.epoch.conf_version);
            for (uint32_t k = 0; k < r->desc.n_peers; k++) {
                const nk_region_peer *p = &r->desc.peers[k];
                printf("%s{\"peer_id\":%" PRIu64 ",\"store_id\":%" PRIu64 ",\"role\":\"%s\"}",
                       k ? "," : "", p->peer_id, p->store_id,
                       p->role == NK_RAFT_VOTER ? "voter" : "learner");
            }
            printf("]}");
        }
        printf("]}}\n");
    } else {
        printf("workdir      %s\n", workdir);
        printf("mode         %s", nk_mode_name(ms.mode));
        if (ms.store_id) {
            printf(" (store %" PRIu64 ", region %" PRIu64 ", peer %" PRIu64 ")", ms.store_id,
                   ms.region_id, ms.peer_id);
        }
        printf("\nmigration    %s\n", have_cp ? nk_stage_name(cp.stage) : "(no checkpoint)");
        if (hint[0]) {
            printf("next         %s\n", hint);
        }
        if (irc == NK_OK && di.has_current) {
            printf("engine       last sequence %" PRIu64 ", %zu tables, %" PRIu64
                   " table bytes, %" PRIu64 " WAL segments (%" PRIu64 " bytes)%s%s\n",
                   di.last_sequence, di.n_files, di.table_bytes, di.wal_segments, di.wal_bytes,
                   di.wal_torn ? ", torn WAL tail (the next open cuts it)" : "",
                   di.manifest_torn ? ", torn manifest tail" : "");
            for (int l = 0; l < 7; l++) {
                if (level_files[l]) {
                    printf("  L%d         %" PRIu64 " files, %" PRIu64 " bytes\n", l,
                           level_files[l], level_bytes[l]);
                }
            }
        } else if (irc == NK_OK) {
            printf("engine       (no database yet)\n");
        }
        if (rlog_n) {
            printf("raft log     %" PRIu64 " segments, %" PRIu64 " bytes\n", rlog_n, rlog_bytes);
        }
        if (lrc == NK_OK) {
            printf("localmeta    store %" PRIu64 ", %zu region(s), %zu report(s) pending\n",
                   lm.store_id, lm.n_regions, lm.n_events);
            for (size_t i = 0; i < lm.n_regions; i++) {
                const nk_localmeta_region *r = &lm.regions[i];
                printf("  region %" PRIu64 "  %s  epoch %" PRIu64 "/%" PRIu64 "  [", r->desc.id,
                       state_name(r->state), r->desc.epoch.version, r->desc.epoch.conf_version);
                print_key(stdout, r->desc.start, r->desc.start_len);
                printf(", ");
                print_key(stdout, r->desc.end, r->desc.end_len);
                printf(")  peers");
                for (uint32_t k = 0; k < r->desc.n_peers; k++) {
                    const nk_region_peer *p = &r->desc.peers[k];
                    printf(" %" PRIu64 "@store%" PRIu64 "%s", p->peer_id, p->store_id,
                           p->role == NK_RAFT_LEARNER ? "(learner)" : "");
                }
                printf("\n");
            }
        }
    }
    nk_localmeta_free(&lm);
    nk_db_inspect_free(&di);
    nk_rt_real_free(rt);
    return status;
}
