/*
 * migrate_cluster.c - the cluster side of `nokv migrate`: expand,
 * transfer-leader, remove-peer, and status/report --addr. Thin callers of
 * nokv/migrate/expand.h (the simulator's operator runs the same rollout)
 * and of the admin client; this file only parses flags, drives the loop
 * with nk_rt_run_once and prints. Exit codes as in migrate.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/client/admin_client.h"
#include "nokv/migrate/expand.h"

static int exit_for(int rc)
{
    switch (rc) {
    case NK_OK:
        return 0;
    case NK_EINVAL:
    case NK_EEXIST:
    case NK_EBUSY:
    case NK_ENOENT:
        return 3;
    case NK_ECONNREFUSED:
    case NK_ECLOSED:
    case NK_EAGAIN:
        return 4;
    case NK_ETIMEDOUT:
        return 5;
    case NK_EIO:
    case NK_ECORRUPT:
        return 6;
    default:
        return 1;
    }
}

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "expand") == 0) {
        fprintf(out, "usage: nokv migrate expand --addr LEADER --region R --target S:P@ADDR\n"
                     "                           [--target ...] [--wait] [--poll-interval D]\n"
                     "                           [--timeout D] [--workdir SEED_DIR]\n"
                     "\n"
                     "Grow region R onto each target store S as peer P, one after the other:\n"
                     "the leader's SST snapshot is streamed to the target, which verifies and\n"
                     "installs it before publishing; then the peer is added as a learner, waits\n"
                     "until it caught up, is promoted and verified. Progress goes to stderr.\n"
                     "Rerun the same command after an interruption: it resumes without ghost\n"
                     "peers. --workdir records the stages in MIGRATION_PROGRESS.json there.\n"
                     "--wait is the default (every target is verified before the next one).\n"
                     "Durations: 500ms, 2s, 1m (default poll 200ms, stage timeout 60s).\n");
    } else if (strcmp(cmd, "transfer-leader") == 0) {
        fprintf(out, "usage: nokv migrate transfer-leader --addr LEADER --region R --peer P\n"
                     "                                    [--peer-addr ADDR] [--workdir DIR]\n"
                     "\n"
                     "Move region R's leadership to voter P, then validate that the old leader\n"
                     "follows P (and, with --peer-addr, that P's store says it leads).\n");
    } else if (strcmp(cmd, "remove-peer") == 0) {
        fprintf(out,
                "usage: nokv migrate remove-peer --addr LEADER --region R --peer P\n"
                "                                [--peer-addr ADDR] [--force] [--workdir DIR]\n"
                "\n"
                "Remove peer P from region R (refused when the voters left would not be a\n"
                "caught-up quorum, or when P leads: transfer leadership first), then\n"
                "validate that the leader no longer lists it (and, with --peer-addr, that\n"
                "its store no longer hosts it).\n");
    } else {
        fprintf(out,
                "usage: nokv migrate %s --addr STORE --region R [--json]\n"
                "\n"
                "The cluster-aware view from one store: hosted, local peer, leader peer\n"
                "and store, membership with roles, applied index/term, epoch.\n",
                cmd);
    }
}

typedef struct cargs {
    const char *addr;
    uint64_t region, peer;
    const char *peer_addr;
    const char *workdir;
    bool json, force;
    uint64_t poll_ns, timeout_ns;
    nk_expand_target targets[NK_EXPAND_MAX_TARGETS];
    unsigned n_targets;
} cargs;

static int parse_dur(const char *v, uint64_t *out)
{
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v) {
        return -1;
    }
    uint64_t mul = NK_NSEC_PER_MSEC;
    if (strcmp(end, "s") == 0) {
        mul = NK_NSEC_PER_SEC;
    } else if (strcmp(end, "m") == 0) {
        mul = 60 * NK_NSEC_PER_SEC;
    } else if (strcmp(end, "ms") != 0 && *end != '\0') {
        return -1;
    }
    *out = (uint64_t)n * mul;
    return *out > 0 ? 0 : -1;
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || n == 0) {
        return -1;
    }
    *out = n;
    return 0;
}

/* 0 parsed, 1 help printed, -1 usage error (printed). */
static int parse(const char *cmd, int argc, char **argv, cargs *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, cmd);
            return 1;
        }
        if (strcmp(f, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp(f, "--force") == 0) {
            a->force = true;
            continue;
        }
        if (strcmp(f, "--wait") == 0) {
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "nokv migrate %s: %s needs a value (see --help)\n", cmd, f);
            return -1;
        }
        i++;
        int bad = 0;
        if (strcmp(f, "--addr") == 0) {
            a->addr = v;
        } else if (strcmp(f, "--region") == 0) {
            bad = parse_u64(v, &a->region);
        } else if (strcmp(f, "--peer") == 0) {
            bad = parse_u64(v, &a->peer);
        } else if (strcmp(f, "--peer-addr") == 0) {
            a->peer_addr = v;
        } else if (strcmp(f, "--workdir") == 0) {
            a->workdir = v;
        } else if (strcmp(f, "--poll-interval") == 0) {
            bad = parse_dur(v, &a->poll_ns);
        } else if (strcmp(f, "--timeout") == 0) {
            bad = parse_dur(v, &a->timeout_ns);
        } else if (strcmp(f, "--target") == 0) {
            if (a->n_targets == NK_EXPAND_MAX_TARGETS ||
                nk_expand_parse_target(v, &a->targets[a->n_targets]) != NK_OK) {
                fprintf(stderr,
                        "nokv migrate %s: --target '%s' is not STORE:PEER@HOST:PORT (at most "
                        "%u targets)\n",
                        cmd, v, NK_EXPAND_MAX_TARGETS);
                return -1;
            }
            a->n_targets++;
        } else {
            fprintf(stderr, "nokv migrate %s: unknown flag %s (see --help)\n", cmd, f);
            return -1;
        }
        if (bad != 0) {
            fprintf(stderr, "nokv migrate %s: %s '%s' is not valid (see --help)\n", cmd, f, v);
            return -1;
        }
    }
    bool need_peer = strcmp(cmd, "transfer-leader") == 0 || strcmp(cmd, "remove-peer") == 0;
    if (a->addr == NULL || a->region == 0 || (need_peer && a->peer == 0) ||
        (strcmp(cmd, "expand") == 0 && a->n_targets == 0)) {
        fprintf(stderr, "nokv migrate %s: --addr, --region%s are required (see --help)\n", cmd,
                need_peer                    ? " and --peer"
                : strcmp(cmd, "expand") == 0 ? " and --target"
                                             : "");
        return -1;
    }
    return 0;
}

static nk_rt *runtime(const char *cmd)
{
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_WARN;
    rc.failpoints = getenv("NOKV_FAILPOINTS");
    nk_rt *rt = NULL;
    int err = nk_rt_real_new(&rc, &rt);
    if (err != NK_OK) {
        fprintf(stderr, "nokv migrate %s: cannot start the runtime: %s\n", cmd, nk_strerror(err));
        return NULL;
    }
    return rt;
}

typedef struct run_state {
    const char *cmd;
    nk_rt *rt;
    bool done;
    int rc;
    char msg[768];
    const char *last_stage;
    uint64_t last_print;
    uint64_t stream_start;
} run_state;

static void on_progress(void *ctx, const nk_rollout_progress *p)
{
    run_state *s = ctx;
    uint64_t now = nk_rt_now(s->rt);
    bool changed = s->last_stage == NULL || strcmp(s->last_stage, p->stage) != 0;
    if (changed && strcmp(p->stage, "snapshot-stream") == 0) {
        s->stream_start = now;
    }
    if (!changed && now - s->last_print < 500 * NK_NSEC_PER_MSEC &&
        !(p->bytes_total > 0 && p->bytes_sent == p->bytes_total)) {
        return;
    }
    s->last_stage = p->stage;
    s->last_print = now;
    if (strcmp(p->stage, "snapshot-stream") == 0 && p->bytes_total > 0) {
        double secs = (double)(now - s->stream_start) / 1e9;
        double rate = secs > 0 ? (double)p->bytes_sent / secs / 1048576.0 : 0;
        double eta = rate > 0 ? (double)(p->bytes_total - p->bytes_sent) / 1048576.0 / rate : 0;
        fprintf(stderr,
                "nokv migrate %s: [store %" PRIu64 " peer %" PRIu64 "] %s %" PRIu64 "/%" PRIu64
                " bytes (%.1f%%) %.1f MiB/s eta %.1fs\n",
                s->cmd, p->store_id, p->peer_id, p->stage, p->bytes_sent, p->bytes_total,
                100.0 * (double)p->bytes_sent / (double)p->bytes_total, rate, eta);
    } else if (changed) {
        if (p->store_id != 0) {
            fprintf(stderr, "nokv migrate %s: [store %" PRIu64 " peer %" PRIu64 "] %s\n", s->cmd,
                    p->store_id, p->peer_id, p->stage);
        } else {
            fprintf(stderr, "nokv migrate %s: [peer %" PRIu64 "] %s\n", s->cmd, p->peer_id,
                    p->stage);
        }
    }
}

static void on_done(void *arg, int rc, const char *msg)
{
    run_state *s = arg;
    s->done = true;
    s->rc = rc;
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

static int run_rollout(const char *cmd, cargs *a, nk_rollout_kind kind)
{
    nk_rt *rt = runtime(cmd);
    if (rt == NULL) {
        return 1;
    }
    nk_rollout_options o;
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    o.leader_addr = a->addr;
    o.region_id = a->region;
    memcpy(o.targets, a->targets, sizeof(o.targets));
    o.n_targets = a->n_targets;
    o.peer_id = a->peer;
    o.peer_addr = a->peer_addr;
    o.force = a->force;
    o.workdir = a->workdir;
    o.poll_ns = a->poll_ns;
    o.stage_timeout_ns = a->timeout_ns;
    run_state s = {.cmd = cmd, .rt = rt};
    o.progress = on_progress;
    o.ctx = &s;
    nk_rollout *r = NULL;
    uint64_t t0 = nk_rt_now(rt);
    int rc = nk_rollout_start(rt, &o, on_done, &s, &r);
    if (rc != NK_OK) {
        fprintf(stderr, "nokv migrate %s: cannot start: %s\n", cmd, nk_strerror(rc));
        nk_rt_real_free(rt);
        return exit_for(rc);
    }
    /* Bounded: every stage of the rollout has its own deadline. */
    while (!s.done) {
        rc = nk_rt_run_once(rt, 100 * NK_NSEC_PER_MSEC);
        if (rc != NK_OK) {
            s.rc = rc;
            snprintf(s.msg, sizeof(s.msg), "the event loop failed: %s", nk_strerror(rc));
            break;
        }
    }
    nk_rollout_free(r);
    double secs = (double)(nk_rt_now(rt) - t0) / 1e9;
    nk_rt_real_free(rt);
    if (s.rc != NK_OK) {
        fprintf(stderr, "nokv migrate %s: %s\n", cmd, s.msg);
        return exit_for(s.rc);
    }
    if (kind == NK_ROLLOUT_EXPAND) {
        printf("region %" PRIu64 " expanded to %u target(s) in %.1fs\n", a->region, a->n_targets,
               secs);
    } else if (kind == NK_ROLLOUT_TRANSFER_LEADER) {
        printf("region %" PRIu64 " is led by peer %" PRIu64 " (%.1fs)\n", a->region, a->peer, secs);
    } else {
        printf("peer %" PRIu64 " removed from region %" PRIu64 " (%.1fs)\n", a->peer, a->region,
               secs);
    }
    return 0;
}

static const char *role_name(uint8_t role)
{
    return role == NK_RAFT_VOTER ? "voter" : role == NK_RAFT_LEARNER ? "learner" : "?";
}

static int region_status(const char *cmd, cargs *a)
{
    nk_rt *rt = runtime(cmd);
    if (rt == NULL) {
        return 1;
    }
    nk_admin_client *c = NULL;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_admin_client_new(rt, a->addr, &c);
    nk_admin_req *q = calloc(1, sizeof(*q));
    const nk_admin_resp *r = NULL;
    if (rc == NK_OK && q == NULL) {
        rc = NK_ENOMEM;
    }
    if (rc == NK_OK) {
        q->op = NK_ADMIN_REGION_STATUS;
        q->region_id = a->region;
        rc = nk_admin_client_call_sync(c, q, 5 * NK_NSEC_PER_SEC, &r, &eb);
    }
    if (rc != NK_OK) {
        fprintf(stderr, "nokv migrate %s: %s\n", cmd, eb.msg[0] ? eb.msg : nk_strerror(rc));
        free(q);
        nk_admin_client_free(c);
        nk_rt_real_free(rt);
        return exit_for(rc);
    }
    const char *summary = !r->known    ? "region unknown to this store"
                          : !r->hosted ? "known but not hosted (tombstone or install pending)"
                          : r->role == NK_RAFT_LEADER ? "hosted; this store leads"
                                                      : "hosted; this store follows";
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "addr", json_string(a->addr));
        json_object_set_new(j, "region_id", json_integer((json_int_t)a->region));
        json_object_set_new(j, "known", json_boolean(r->known));
        json_object_set_new(j, "hosted", json_boolean(r->hosted));
        json_object_set_new(j, "local_peer_id", json_integer((json_int_t)r->local_peer));
        json_object_set_new(j, "leader_peer_id", json_integer((json_int_t)r->leader_peer));
        json_object_set_new(j, "leader_store_id", json_integer((json_int_t)r->leader_store));
        json_object_set_new(j, "role", json_string(nk_raft_role_name(r->role)));
        json_object_set_new(j, "applied_index", json_integer((json_int_t)r->applied_index));
        json_object_set_new(j, "applied_term", json_integer((json_int_t)r->applied_term));
        json_object_set_new(j, "commit_index", json_integer((json_int_t)r->commit));
        json_object_set_new(j, "epoch_version", json_integer((json_int_t)r->desc.epoch.version));
        json_object_set_new(j, "conf_version",
                            json_integer((json_int_t)r->desc.epoch.conf_version));
        json_t *peers = json_array();
        for (uint32_t i = 0; r->known && i < r->desc.n_peers; i++) {
            json_t *p = json_object();
            json_object_set_new(p, "peer_id", json_integer((json_int_t)r->desc.peers[i].peer_id));
            json_object_set_new(p, "store_id", json_integer((json_int_t)r->desc.peers[i].store_id));
            json_object_set_new(p, "role", json_string(role_name(r->desc.peers[i].role)));
            json_array_append_new(peers, p);
        }
        json_object_set_new(j, "membership", peers);
        if (strcmp(cmd, "report") == 0) {
            json_object_set_new(j, "summary", json_string(summary));
        }
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL) {
            printf("%s\n", s);
            free(s);
        }
        json_decref(j);
    } else {
        printf("store %s, region %" PRIu64 ": %s\n", a->addr, a->region, summary);
        if (r->hosted) {
            printf("  local peer      %" PRIu64 " (%s)\n", r->local_peer,
                   nk_raft_role_name(r->role));
            printf("  leader          peer %" PRIu64 " on store %" PRIu64 "\n", r->leader_peer,
                   r->leader_store);
            printf("  applied         index %" PRIu64 " term %" PRIu64 " (commit %" PRIu64 ")\n",
                   r->applied_index, r->applied_term, r->commit);
        }
        if (r->known) {
            printf("  epoch           version %" PRIu64 " conf_version %" PRIu64 "\n",
                   r->desc.epoch.version, r->desc.epoch.conf_version);
            for (uint32_t i = 0; i < r->desc.n_peers; i++) {
                printf("  member          peer %" PRIu64 " on store %" PRIu64 " (%s)\n",
                       r->desc.peers[i].peer_id, r->desc.peers[i].store_id,
                       role_name(r->desc.peers[i].role));
            }
        }
    }
    free(q);
    nk_admin_client_free(c);
    nk_rt_real_free(rt);
    return 0;
}

int nk_cli_migrate_cluster(const char *cmd, int argc, char **argv)
{
    cargs a;
    int p = parse(cmd, argc, argv, &a);
    if (p != 0) {
        return p > 0 ? 0 : 2;
    }
    if (strcmp(cmd, "expand") == 0) {
        return run_rollout(cmd, &a, NK_ROLLOUT_EXPAND);
    }
    if (strcmp(cmd, "transfer-leader") == 0) {
        return run_rollout(cmd, &a, NK_ROLLOUT_TRANSFER_LEADER);
    }
    if (strcmp(cmd, "remove-peer") == 0) {
        return run_rollout(cmd, &a, NK_ROLLOUT_REMOVE_PEER);
    }
    return region_status(cmd, &a);
}
