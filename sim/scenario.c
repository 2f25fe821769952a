/*
 * scenario.c - parse scenario files and run them under the simulator.
 *
 * Parsing is strict: an unknown word, a bad number or a node that does not
 * exist is an error naming the file and line, never a silent default. The
 * parsed scenario is immutable; each run derives everything random (random
 * fault times and targets, the simulator's own streams) from its seed.
 */
#include "sim/scenario.h"
#include "sim/swarm.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 16
#define MAX_OPTIONS 32

typedef enum step_kind {
    ST_START = 1,
    ST_CRASH,
    ST_KILL,
    ST_STOP,
    ST_PARTITION,
    ST_PARTITION_ONEWAY,
    ST_HEAL,
    ST_HEAL_ALL,
    ST_BREAK,
    ST_REFUSE,
    ST_FAILPOINT,
    ST_DISK_FAULTS,
    ST_CHECK,
} step_kind;

/* Node reference: a node id, or one of these. */
#define REF_ALL 0xffffffffu
#define REF_RANDOM 0xfffffffeu

typedef struct scn_step {
    uint64_t at;
    step_kind kind;
    uint32_t a, b;
    uint64_t until; /* ST_REFUSE */
    char fp_name[96];
    nk_sim_fp_action fp_action;
    uint32_t fp_count;
    nk_ratio fp_prob;
    nk_ratio read_corrupt, sync_fail;
    char check_name[32];
    char check_args[96];
    char text[160];
} scn_step;

typedef enum random_kind {
    RK_CRASH = 1,
    RK_KILL,
    RK_PARTITION,
    RK_PARTITION_ONEWAY,
    RK_FLAP,
} random_kind;

typedef struct scn_random {
    random_kind kind;
    uint32_t count;
    uint64_t win_lo, win_hi;
    uint64_t len_lo, len_hi; /* down time / partition length / flap length */
    char text[160];
} scn_random;

struct nk_scenario {
    char name[64];
    char file[256];
    const nk_sim_workload *wl;
    uint32_t nodes;
    uint64_t duration;
    char opt_key[MAX_OPTIONS][32];
    char opt_val[MAX_OPTIONS][64];
    unsigned opt_count;
    nk_sim_config base; /* seed filled per run */
    scn_step *steps;
    size_t step_count;
    scn_random *randoms;
    size_t random_count;
    /* `swarm` line: no fixed workload; each run generates its scenario
     * from the seed's profile (sim/swarm.h). opt_* then holds knob
     * overrides and pass-through workload options, in order. */
    bool swarm;
    /* Scenario-wide shrink knobs (--set sim.random=P, sim.scripted=off,
     * sim.failpoints=off): keep P% of each `random` line's count, skip the
     * scripted node/link/disk faults, skip failpoint arming. */
    uint32_t random_pct;
    bool no_scripted, no_failpoints;
};

const nk_sim_workload *nk_sim_workload_find(const char *name)
{
    if (strcmp(name, "echo") == 0) {
        return &nk_sim_workload_echo;
    }
    if (strcmp(name, "engine") == 0) {
        return &nk_sim_workload_engine;
    }
    if (strcmp(name, "raft") == 0) {
        return &nk_sim_workload_raft;
    }
    if (strcmp(name, "cluster") == 0) {
        return &nk_sim_workload_cluster;
    }
    if (strcmp(name, "coord") == 0) {
        return &nk_sim_workload_coord;
    }
    if (strcmp(name, "migration") == 0) {
        return &nk_sim_workload_migration;
    }
    return NULL;
}

void nk_sim_fail(nk_sim *s, nk_sim_result *res, nk_sim_verdict v, const char *fmt, ...)
{
    if (res->verdict != NK_SIM_PASS) {
        return; /* the first violation is the one to debug */
    }
    res->verdict = v;
    res->at_ns = nk_sim_now(s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->what, sizeof(res->what), fmt, ap);
    va_end(ap);
    nk_sim_trace(s, "VIOLATION %s", res->what);
    nk_sim_halt(s);
}

/* ------------------------------------------------------------ parsing --- */

int nk_sim_parse_duration(const char *text, uint64_t *ns)
{
    char *end = NULL;
    if (!isdigit((unsigned char)text[0])) {
        return NK_EINVAL;
    }
    unsigned long long v = strtoull(text, &end, 10);
    uint64_t mul;
    if (strcmp(end, "ns") == 0) {
        mul = 1;
    } else if (strcmp(end, "us") == 0) {
        mul = NK_NSEC_PER_USEC;
    } else if (strcmp(end, "ms") == 0) {
        mul = NK_NSEC_PER_MSEC;
    } else if (strcmp(end, "s") == 0) {
        mul = NK_NSEC_PER_SEC;
    } else if (strcmp(end, "m") == 0) {
        mul = 60 * NK_NSEC_PER_SEC;
    } else {
        return NK_EINVAL;
    }
    if (v > UINT64_MAX / mul) {
        return NK_ERANGE;
    }
    *ns = (uint64_t)v * mul;
    return NK_OK;
}

static int parse_range(const char *text, uint64_t *lo, uint64_t *hi)
{
    const char *dots = strstr(text, "..");
    if (dots == NULL) {
        int rc = nk_sim_parse_duration(text, lo);
        *hi = *lo;
        return rc;
    }
    char left[64];
    size_t n = (size_t)(dots - text);
    if (n == 0 || n >= sizeof(left)) {
        return NK_EINVAL;
    }
    memcpy(left, text, n);
    left[n] = '\0';
    if (nk_sim_parse_duration(left, lo) != NK_OK || nk_sim_parse_duration(dots + 2, hi) != NK_OK ||
        *hi < *lo) {
        return NK_EINVAL;
    }
    return NK_OK;
}

static int parse_ratio(const char *text, nk_ratio *r)
{
    char *end = NULL;
    if (!isdigit((unsigned char)text[0])) {
        return NK_EINVAL;
    }
    r->num = strtoull(text, &end, 10);
    if (*end != '/') {
        return NK_EINVAL;
    }
    const char *d = end + 1;
    if (!isdigit((unsigned char)d[0])) {
        return NK_EINVAL;
    }
    r->den = strtoull(d, &end, 10);
    if (*end != '\0' || r->den == 0) {
        return NK_EINVAL;
    }
    return NK_OK;
}

static int parse_u32(const char *text, uint32_t *v)
{
    char *end = NULL;
    if (!isdigit((unsigned char)text[0])) {
        return NK_EINVAL;
    }
    unsigned long long x = strtoull(text, &end, 10);
    if (*end != '\0' || x > UINT32_MAX) {
        return NK_EINVAL;
    }
    *v = (uint32_t)x;
    return NK_OK;
}

typedef struct parser {
    nk_scenario *sc;
    const char *file;
    unsigned line;
    nk_errbuf *eb;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nk_errbuf_set(p->eb, "%s:%u: %s", p->file, p->line, msg);
    return NK_EINVAL;
}

/* Node reference "n3", "all" or "random". Nodes are named n1..nN. */
static int parse_node(parser *p, const char *w, uint32_t *out, bool allow_all, bool allow_random)
{
    if (strcmp(w, "all") == 0 && allow_all) {
        *out = REF_ALL;
        return NK_OK;
    }
    if (strcmp(w, "random") == 0 && allow_random) {
        *out = REF_RANDOM;
        return NK_OK;
    }
    uint32_t id;
    if (w[0] != 'n' || parse_u32(w + 1, &id) != NK_OK || id == 0 || id > p->sc->nodes) {
        return perr(p, "'%s' is not a node (nodes are n1..n%u%s%s)", w, p->sc->nodes,
                    allow_all ? ", all" : "", allow_random ? ", random" : "");
    }
    *out = id;
    return NK_OK;
}

/* key=value word: returns the value or NULL when `w` is not `key=...`. */
static const char *kv(const char *w, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(w, key, n) == 0 && w[n] == '=') {
        return w + n + 1;
    }
    return NULL;
}

static scn_step *add_step(parser *p, uint64_t at, step_kind kind, const char *text)
{
    nk_scenario *sc = p->sc;
    scn_step *ns = realloc(sc->steps, (sc->step_count + 1) * sizeof(*ns));
    if (ns == NULL) {
        return NULL;
    }
    sc->steps = ns;
    scn_step *st = &sc->steps[sc->step_count++];
    memset(st, 0, sizeof(*st));
    st->at = at;
    st->kind = kind;
    snprintf(st->text, sizeof(st->text), "%s", text);
    return st;
}

static int need_nodes(parser *p)
{
    if (p->sc->nodes == 0 || p->sc->wl == NULL) {
        return perr(p, "'workload' and 'nodes' must come before this line");
    }
    return NK_OK;
}

/* at <time> <action> ... */
static int parse_at(parser *p, char **w, int nw, const char *text)
{
    if (need_nodes(p) != NK_OK) {
        return NK_EINVAL;
    }
    uint64_t at;
    if (nw < 3 || nk_sim_parse_duration(w[1], &at) != NK_OK) {
        return perr(p, "expected 'at <time> <action> ...' with a time like 1500ms");
    }
    const char *act = w[2];
    scn_step *st;
    if (strcmp(act, "crash") == 0 || strcmp(act, "kill") == 0 || strcmp(act, "stop") == 0 ||
        strcmp(act, "restart") == 0 || strcmp(act, "start") == 0) {
        step_kind k = act[0] == 'c' ? ST_CRASH : act[0] == 'k' ? ST_KILL
                      : strcmp(act, "stop") == 0 ? ST_STOP : ST_START;
        if (nw != 4) {
            return perr(p, "expected 'at <time> %s <node|all|random>'", act);
        }
        uint32_t a;
        if (parse_node(p, w[3], &a, true, true) != NK_OK) {
            return NK_EINVAL;
        }
        st = add_step(p, at, k, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        st->a = a;
        return NK_OK;
    }
    if (strcmp(act, "partition") == 0) {
        /* partition A B | partition A -> B */
        bool oneway = nw == 6 && strcmp(w[4], "->") == 0;
        if (!(nw == 5 || oneway)) {
            return perr(p, "expected 'at <time> partition <node> <node>' or "
                           "'at <time> partition <node> -> <node>'");
        }
        uint32_t a, b;
        if (parse_node(p, w[3], &a, false, true) != NK_OK ||
            parse_node(p, w[oneway ? 5 : 4], &b, false, true) != NK_OK) {
            return NK_EINVAL;
        }
        if (a == b && a != REF_RANDOM) {
            return perr(p, "a node cannot be partitioned from itself");
        }
        st = add_step(p, at, oneway ? ST_PARTITION_ONEWAY : ST_PARTITION, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        st->a = a;
        st->b = b;
        return NK_OK;
    }
    if (strcmp(act, "heal") == 0) {
        if (nw == 4 && strcmp(w[3], "all") == 0) {
            return add_step(p, at, ST_HEAL_ALL, text) ? NK_OK : NK_ENOMEM;
        }
        uint32_t a, b;
        if (nw != 5 || parse_node(p, w[3], &a, false, false) != NK_OK ||
            parse_node(p, w[4], &b, false, false) != NK_OK) {
            return perr(p, "expected 'at <time> heal all' or 'at <time> heal <node> <node>'");
        }
        st = add_step(p, at, ST_HEAL, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        st->a = a;
        st->b = b;
        return NK_OK;
    }
    if (strcmp(act, "flap") == 0) {
        /* flap A B for=D period=P: break the link every P during D, refusing
         * reconnects for the first half of each period. */
        uint32_t a, b;
        uint64_t len = 0, period = 0;
        if (nw != 7 || parse_node(p, w[3], &a, false, true) != NK_OK ||
            parse_node(p, w[4], &b, false, true) != NK_OK || !kv(w[5], "for") ||
            !kv(w[6], "period") || nk_sim_parse_duration(kv(w[5], "for"), &len) != NK_OK ||
            nk_sim_parse_duration(kv(w[6], "period"), &period) != NK_OK || period == 0) {
            return perr(p, "expected 'at <time> flap <node> <node> for=<duration> "
                           "period=<duration>'");
        }
        for (uint64_t t = at; t < at + len; t += period) {
            st = add_step(p, t, ST_BREAK, text);
            if (st == NULL) {
                return NK_ENOMEM;
            }
            st->a = a;
            st->b = b;
            st = add_step(p, t, ST_REFUSE, text);
            if (st == NULL) {
                return NK_ENOMEM;
            }
            st->a = a;
            st->b = b;
            st->until = t + period / 2;
        }
        return NK_OK;
    }
    if (strcmp(act, "failpoint") == 0) {
        /* failpoint <node|all> <name> <error|crash|kill|off> [count=N] [prob=a/b] */
        uint32_t a;
        if (nw < 6 || parse_node(p, w[3], &a, true, false) != NK_OK) {
            return perr(p, "expected 'at <time> failpoint <node|all> <name> "
                           "<error|crash|kill|off> [count=N] [prob=A/B]'");
        }
        st = add_step(p, at, ST_FAILPOINT, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        st->a = a;
        snprintf(st->fp_name, sizeof(st->fp_name), "%s", w[4]);
        const char *action = w[5];
        if (strcmp(action, "error") == 0) {
            st->fp_action = NK_SIM_FP_ERROR;
        } else if (strcmp(action, "crash") == 0) {
            st->fp_action = NK_SIM_FP_CRASH;
        } else if (strcmp(action, "kill") == 0) {
            st->fp_action = NK_SIM_FP_KILL;
        } else if (strcmp(action, "off") == 0) {
            st->fp_action = NK_SIM_FP_OFF;
        } else {
            return perr(p, "failpoint action '%s' is not error, crash, kill or off", action);
        }
        for (int i = 6; i < nw; i++) {
            if (kv(w[i], "count")) {
                if (parse_u32(kv(w[i], "count"), &st->fp_count) != NK_OK) {
                    return perr(p, "bad count '%s'", w[i]);
                }
            } else if (kv(w[i], "prob")) {
                if (parse_ratio(kv(w[i], "prob"), &st->fp_prob) != NK_OK) {
                    return perr(p, "bad probability '%s' (use prob=1/10)", w[i]);
                }
            } else {
                return perr(p, "unknown failpoint argument '%s'", w[i]);
            }
        }
        return NK_OK;
    }
    if (strcmp(act, "disk-faults") == 0) {
        uint32_t a;
        if (nw < 4 || parse_node(p, w[3], &a, true, false) != NK_OK) {
            return perr(p, "expected 'at <time> disk-faults <node|all> [read-corrupt=A/B] "
                           "[sync-fail=A/B]'");
        }
        st = add_step(p, at, ST_DISK_FAULTS, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        st->a = a;
        for (int i = 4; i < nw; i++) {
            if (kv(w[i], "read-corrupt")) {
                if (parse_ratio(kv(w[i], "read-corrupt"), &st->read_corrupt) != NK_OK) {
                    return perr(p, "bad ratio '%s'", w[i]);
                }
            } else if (kv(w[i], "sync-fail")) {
                if (parse_ratio(kv(w[i], "sync-fail"), &st->sync_fail) != NK_OK) {
                    return perr(p, "bad ratio '%s'", w[i]);
                }
            } else {
                return perr(p, "unknown disk-faults argument '%s'", w[i]);
            }
        }
        return NK_OK;
    }
    if (strcmp(act, "check") == 0) {
        if (nw < 4) {
            return perr(p, "expected 'at <time> check <name> [args]'");
        }
        st = add_step(p, at, ST_CHECK, text);
        if (st == NULL) {
            return NK_ENOMEM;
        }
        snprintf(st->check_name, sizeof(st->check_name), "%s", w[3]);
        st->check_args[0] = '\0';
        for (int i = 4; i < nw; i++) {
            size_t used = strlen(st->check_args);
            snprintf(st->check_args + used, sizeof(st->check_args) - used, "%s%s",
                     i > 4 ? " " : "", w[i]);
        }
        return NK_OK;
    }
    return perr(p, "unknown action '%s' (crash, kill, stop, restart, start, partition, heal, "
                   "flap, failpoint, disk-faults, check)",
                act);
}

/* random <crash|kill|partition|partition-oneway|flap> count=N window=A..B length=C..D */
static int parse_random(parser *p, char **w, int nw, const char *text)
{
    if (need_nodes(p) != NK_OK) {
        return NK_EINVAL;
    }
    scn_random r;
    memset(&r, 0, sizeof(r));
    if (nw < 2) {
        return perr(p, "expected 'random <kind> count=N window=A..B length=C..D'");
    }
    const char *k = w[1];
    if (strcmp(k, "crash") == 0) {
        r.kind = RK_CRASH;
    } else if (strcmp(k, "kill") == 0) {
        r.kind = RK_KILL;
    } else if (strcmp(k, "partition") == 0) {
        r.kind = RK_PARTITION;
    } else if (strcmp(k, "partition-oneway") == 0) {
        r.kind = RK_PARTITION_ONEWAY;
    } else if (strcmp(k, "flap") == 0) {
        r.kind = RK_FLAP;
    } else {
        return perr(p, "random fault '%s' is not crash, kill, partition, partition-oneway or flap",
                    k);
    }
    bool have_count = false, have_window = false, have_len = false;
    for (int i = 2; i < nw; i++) {
        if (kv(w[i], "count")) {
            have_count = parse_u32(kv(w[i], "count"), &r.count) == NK_OK;
        } else if (kv(w[i], "window")) {
            have_window = parse_range(kv(w[i], "window"), &r.win_lo, &r.win_hi) == NK_OK;
        } else if (kv(w[i], "length")) {
            have_len = parse_range(kv(w[i], "length"), &r.len_lo, &r.len_hi) == NK_OK;
        } else {
            return perr(p, "unknown argument '%s'", w[i]);
        }
    }
    if (!have_count || !have_window || !have_len) {
        return perr(p, "expected count=N window=A..B length=C..D (durations like 500ms)");
    }
    snprintf(r.text, sizeof(r.text), "%s", text);
    nk_scenario *sc = p->sc;
    scn_random *nr = realloc(sc->randoms, (sc->random_count + 1) * sizeof(*nr));
    if (nr == NULL) {
        return NK_ENOMEM;
    }
    sc->randoms = nr;
    sc->randoms[sc->random_count++] = r;
    return NK_OK;
}

static int parse_net(parser *p, char **w, int nw)
{
    nk_sim_config *c = &p->sc->base;
    for (int i = 1; i < nw; i++) {
        const char *v;
        if ((v = kv(w[i], "latency"))) {
            if (parse_range(v, &c->lat_min_ns, &c->lat_max_ns) != NK_OK) {
                return perr(p, "bad latency range '%s' (use latency=200us..2ms)", v);
            }
        } else if ((v = kv(w[i], "tail"))) {
            /* tail=1/100:20ms..200ms */
            const char *colon = strchr(v, ':');
            char ratio[32];
            if (colon == NULL || (size_t)(colon - v) >= sizeof(ratio)) {
                return perr(p, "bad tail '%s' (use tail=1/100:20ms..200ms)", v);
            }
            memcpy(ratio, v, (size_t)(colon - v));
            ratio[colon - v] = '\0';
            if (parse_ratio(ratio, &c->tail) != NK_OK ||
                parse_range(colon + 1, &c->tail_min_ns, &c->tail_max_ns) != NK_OK) {
                return perr(p, "bad tail '%s' (use tail=1/100:20ms..200ms)", v);
            }
        } else if ((v = kv(w[i], "connect-timeout"))) {
            if (nk_sim_parse_duration(v, &c->connect_timeout_ns) != NK_OK) {
                return perr(p, "bad connect-timeout '%s'", v);
            }
        } else {
            return perr(p, "unknown net setting '%s' (latency, tail, connect-timeout)", w[i]);
        }
    }
    return NK_OK;
}

static int parse_line(parser *p, char *line)
{
    /* the line, cut to fit, labels its steps in the trace */
    char text[160];
    size_t ll = strlen(line);
    if (ll >= sizeof(text)) {
        ll = sizeof(text) - 1;
    }
    memcpy(text, line, ll);
    text[ll] = '\0';
    char *hash = strchr(line, '#');
    if (hash != NULL) {
        *hash = '\0';
    }
    char *w[MAX_WORDS];
    int nw = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok != NULL; tok = strtok(NULL, " \t\r\n")) {
        if (nw == MAX_WORDS) {
            return perr(p, "too many words on one line (max %d)", MAX_WORDS);
        }
        w[nw++] = tok;
    }
    if (nw == 0) {
        return NK_OK;
    }
    /* trim the copy used as the step label */
    size_t tl = strlen(text);
    while (tl > 0 && (text[tl - 1] == '\n' || text[tl - 1] == '\r' || text[tl - 1] == ' ')) {
        text[--tl] = '\0';
    }
    nk_scenario *sc = p->sc;
    if (strcmp(w[0], "name") == 0 && nw == 2) {
        snprintf(sc->name, sizeof(sc->name), "%s", w[1]);
        return NK_OK;
    }
    if (strcmp(w[0], "workload") == 0 && nw == 2) {
        sc->wl = nk_sim_workload_find(w[1]);
        return sc->wl ? NK_OK : perr(p, "unknown workload '%s' (known: echo, engine, raft, coord)", w[1]);
    }
    if (strcmp(w[0], "nodes") == 0 && nw == 2) {
        if (parse_u32(w[1], &sc->nodes) != NK_OK || sc->nodes == 0 || sc->nodes > 64) {
            return perr(p, "nodes must be 1..64");
        }
        return NK_OK;
    }
    if (strcmp(w[0], "duration") == 0 && nw == 2) {
        return nk_sim_parse_duration(w[1], &sc->duration) == NK_OK
                   ? NK_OK
                   : perr(p, "bad duration '%s'", w[1]);
    }
    if (strcmp(w[0], "option") == 0 && nw == 2) {
        char *eq = strchr(w[1], '=');
        if (eq == NULL || sc->opt_count == MAX_OPTIONS) {
            return perr(p, "expected 'option key=value'");
        }
        *eq = '\0';
        snprintf(sc->opt_key[sc->opt_count], sizeof(sc->opt_key[0]), "%s", w[1]);
        snprintf(sc->opt_val[sc->opt_count], sizeof(sc->opt_val[0]), "%s", eq + 1);
        sc->opt_count++;
        return NK_OK;
    }
    if (strcmp(w[0], "net") == 0) {
        return parse_net(p, w, nw);
    }
    if (strcmp(w[0], "clock") == 0 && nw == 2 && kv(w[1], "drift")) {
        const char *v = kv(w[1], "drift");
        char *end = NULL;
        unsigned long ppm = strtoul(v, &end, 10);
        if (strcmp(end, "ppm") != 0 || ppm > 100000) {
            return perr(p, "expected clock drift=<N>ppm (N <= 100000)");
        }
        sc->base.drift_ppm_max = (uint32_t)ppm;
        return NK_OK;
    }
    if (strcmp(w[0], "disk") == 0) {
        for (int i = 1; i < nw; i++) {
            const char *v;
            if ((v = kv(w[i], "sector"))) {
                if (parse_u32(v, &sc->base.sector_size) != NK_OK || sc->base.sector_size == 0) {
                    return perr(p, "bad sector size '%s'", v);
                }
            } else if ((v = kv(w[i], "crash"))) {
                if (strcmp(v, "chaos") == 0) {
                    sc->base.crash_policy = nk_simdisk_crash_chaos;
                } else if (strcmp(v, "drop-all") == 0) {
                    sc->base.crash_policy = nk_simdisk_crash_drop_all;
                } else if (strcmp(v, "keep-all") == 0) {
                    sc->base.crash_policy = nk_simdisk_crash_keep_all;
                } else {
                    return perr(p, "disk crash policy '%s' is not chaos, drop-all or keep-all", v);
                }
            } else {
                return perr(p, "unknown disk setting '%s' (sector, crash)", w[i]);
            }
        }
        return NK_OK;
    }
    if (strcmp(w[0], "swarm") == 0) {
        /* swarm [knob=value...]: the file fixes these knobs, the seed the rest */
        if (sc->wl != NULL || sc->nodes != 0) {
            return perr(p, "'swarm' replaces 'workload' and 'nodes'; a file has one or the other");
        }
        sc->swarm = true;
        for (int i = 1; i < nw; i++) {
            const char *eq = strchr(w[i], '=');
            char key[32];
            size_t kl = eq ? (size_t)(eq - w[i]) : 0;
            if (eq == NULL || kl == 0 || kl >= sizeof(key) || sc->opt_count == MAX_OPTIONS) {
                return perr(p, "expected 'swarm [knob=value...]', got '%s'", w[i]);
            }
            memcpy(key, w[i], kl);
            key[kl] = '\0';
            if (nk_swarm_check_knob(key, eq + 1) != NK_OK) {
                return perr(p, "'%s' is not a swarm knob setting (docs/simulation.md, Swarm)", w[i]);
            }
            snprintf(sc->opt_key[sc->opt_count], sizeof(sc->opt_key[0]), "%s", key);
            snprintf(sc->opt_val[sc->opt_count], sizeof(sc->opt_val[0]), "%s", eq + 1);
            sc->opt_count++;
        }
        return NK_OK;
    }
    if (strcmp(w[0], "at") == 0) {
        return parse_at(p, w, nw, text);
    }
    if (strcmp(w[0], "random") == 0) {
        return parse_random(p, w, nw, text);
    }
    return perr(p, "cannot read '%s' (see docs/simulation.md for the format)", text);
}

int nk_scenario_parse(const char *name, const char *text, nk_scenario **out, nk_errbuf *eb)
{
    nk_scenario *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        return NK_ENOMEM;
    }
    nk_sim_config_default(&sc->base, 0);
    sc->random_pct = 100;
    snprintf(sc->file, sizeof(sc->file), "%s", name);
    parser p = {.sc = sc, .file = name, .line = 0, .eb = eb};
    const char *cur = text;
    int rc = NK_OK;
    while (*cur != '\0' && rc == NK_OK) {
        const char *nl = strchr(cur, '\n');
        size_t len = nl ? (size_t)(nl - cur) : strlen(cur);
        char line[512];
        p.line++;
        if (len >= sizeof(line)) {
            rc = perr(&p, "line too long");
            break;
        }
        memcpy(line, cur, len);
        line[len] = '\0';
        rc = parse_line(&p, line);
        cur += len + (nl ? 1 : 0);
    }
    if (rc == NK_OK && sc->swarm) {
        if (sc->step_count > 0 || sc->random_count > 0 || sc->duration != 0) {
            p.line = 0;
            rc = perr(&p, "a swarm file holds only 'name' and 'swarm' lines: the profile makes "
                          "the rest");
        }
    } else if (rc == NK_OK) {
        p.line = 0;
        if (sc->wl == NULL) {
            rc = perr(&p, "no 'workload' line");
        } else if (sc->nodes == 0) {
            rc = perr(&p, "no 'nodes' line");
        } else if (sc->duration == 0) {
            rc = perr(&p, "no 'duration' line");
        }
    }
    if (rc == NK_OK && sc->name[0] == '\0') {
        /* default name: the file's base name */
        const char *slash = strrchr(name, '/');
        snprintf(sc->name, sizeof(sc->name), "%s", slash ? slash + 1 : name);
    }
    if (rc == NK_OK && !sc->swarm) {
        /* Options are checked now against a throwaway world, so a typo fails
         * at load time, not in the middle of a sweep. */
        nk_sim_result res;
        memset(&res, 0, sizeof(res));
        void *w = sc->wl->world_new(NULL, &res, sc->nodes);
        if (w == NULL) {
            rc = perr(&p, "workload %s cannot run with %u nodes", sc->wl->name, sc->nodes);
        }
        for (unsigned i = 0; rc == NK_OK && i < sc->opt_count; i++) {
            if (sc->wl->option(w, sc->opt_key[i], sc->opt_val[i]) != NK_OK) {
                rc = perr(&p, "workload %s rejects option %s=%s", sc->wl->name, sc->opt_key[i],
                          sc->opt_val[i]);
            }
        }
        if (w != NULL) {
            sc->wl->world_free(w);
        }
    }
    if (rc != NK_OK) {
        nk_scenario_free(sc);
        return rc;
    }
    *out = sc;
    return NK_OK;
}

int nk_scenario_load(const char *path, nk_scenario **out, nk_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        nk_errbuf_set(eb, "%s: cannot open scenario file (does it exist?)", path);
        return NK_ENOENT;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NK_ENOMEM;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) {
        nk_errbuf_set(eb, "%s: empty scenario file", path);
        return NK_EINVAL;
    }
    buf[len] = '\0';
    int rc = nk_scenario_parse(path, buf, out, eb);
    free(buf);
    return rc;
}

void nk_scenario_free(nk_scenario *sc)
{
    if (sc == NULL) {
        return;
    }
    free(sc->steps);
    free(sc->randoms);
    free(sc);
}

const char *nk_scenario_name(const nk_scenario *sc) { return sc->name; }

int nk_scenario_set_option(nk_scenario *sc, const char *kvtext, nk_errbuf *eb)
{
    const char *eq = strchr(kvtext, '=');
    if (eq == NULL || eq == kvtext || sc->opt_count == MAX_OPTIONS) {
        nk_errbuf_set(eb, "--set expects key=value, got '%s'", kvtext);
        return NK_EINVAL;
    }
    size_t kl = (size_t)(eq - kvtext);
    if (kl >= sizeof(sc->opt_key[0])) {
        nk_errbuf_set(eb, "--set key too long");
        return NK_EINVAL;
    }
    char key[32];
    memcpy(key, kvtext, kl);
    key[kl] = '\0';
    const char *val = eq + 1;
    if (strncmp(key, "sim.", 4) == 0) {
        /* scenario-wide knobs (the shrinker's, valid for every scenario);
         * a swarm file passes them on to the scenario it generates */
        char *end = NULL;
        unsigned long pct = strtoul(val, &end, 10);
        bool onoff = strcmp(val, "on") == 0 || strcmp(val, "off") == 0;
        if (strcmp(key, "sim.random") == 0 && val[0] >= '0' && val[0] <= '9' && *end == '\0' &&
            pct <= 100) {
            sc->random_pct = (uint32_t)pct;
        } else if (strcmp(key, "sim.scripted") == 0 && onoff) {
            sc->no_scripted = strcmp(val, "off") == 0;
        } else if (strcmp(key, "sim.failpoints") == 0 && onoff) {
            sc->no_failpoints = strcmp(val, "off") == 0;
        } else {
            nk_errbuf_set(eb, "unknown or bad scenario knob '%s' (sim.random=0..100, "
                              "sim.scripted=on|off, sim.failpoints=on|off)", kvtext);
            return NK_EINVAL;
        }
        if (!sc->swarm) {
            return NK_OK;
        }
    }
    int rc;
    if (sc->swarm) {
        /* a knob, or an option for the workload the profile picks: the
         * migration workload passes what it does not know to the cluster
         * one, so the cluster workload judges pass-through options */
        rc = strncmp(key, "sim.", 4) == 0 ? NK_OK : nk_swarm_check_knob(key, val);
        if (rc == NK_ENOENT) {
            nk_sim_result res;
            memset(&res, 0, sizeof(res));
            void *w = nk_sim_workload_cluster.world_new(NULL, &res, 3);
            rc = w ? nk_sim_workload_cluster.option(w, key, val) : NK_EINVAL;
            if (w) {
                nk_sim_workload_cluster.world_free(w);
            }
        }
    } else {
        nk_sim_result res;
        memset(&res, 0, sizeof(res));
        void *w = sc->wl->world_new(NULL, &res, sc->nodes);
        rc = w ? sc->wl->option(w, key, val) : NK_EINVAL;
        if (w) {
            sc->wl->world_free(w);
        }
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "workload %s rejects option %s", sc->swarm ? "swarm" : sc->wl->name,
                      kvtext);
        return rc;
    }
    snprintf(sc->opt_key[sc->opt_count], sizeof(sc->opt_key[0]), "%s", key);
    snprintf(sc->opt_val[sc->opt_count], sizeof(sc->opt_val[0]), "%s", eq + 1);
    sc->opt_count++;
    return NK_OK;
}

/* ------------------------------------------------------------ running --- */

typedef struct run_ctx {
    const nk_scenario *sc;
    nk_sim *s;
    void *world;
    nk_sim_result *res;
    nk_rand rand; /* random targets and random faults */
    scn_step *extra; /* steps generated from `random` lines */
    size_t extra_count;
} run_ctx;

typedef struct step_ev {
    run_ctx *rc;
    const scn_step *st;
} step_ev;

/* A node chosen by the seed: among live nodes when `want_up`. */
static uint32_t pick_node(run_ctx *rc, bool want_up, uint32_t not)
{
    uint32_t cand[64];
    uint32_t n = 0;
    for (uint32_t i = 1; i <= rc->sc->nodes; i++) {
        if (i != not && (!want_up || nk_sim_node_up(rc->s, i))) {
            cand[n++] = i;
        }
    }
    return n == 0 ? 0 : cand[nk_rand_below(&rc->rand, n)];
}

typedef void (*node_action)(nk_sim *s, uint32_t node);

static void start_if_down(nk_sim *s, uint32_t node)
{
    if (!nk_sim_node_up(s, node)) {
        nk_sim_node_start(s, node);
    }
}

static void for_nodes(run_ctx *rc, uint32_t ref, bool want_up, node_action fn)
{
    if (ref == REF_ALL) {
        for (uint32_t i = 1; i <= rc->sc->nodes; i++) {
            fn(rc->s, i);
        }
        return;
    }
    if (ref == REF_RANDOM) {
        ref = pick_node(rc, want_up, 0);
        if (ref == 0) {
            return;
        }
    }
    fn(rc->s, ref);
}

static void exec_step(nk_sim *s, void *arg)
{
    step_ev *se = arg;
    run_ctx *rc = se->rc;
    const scn_step *st = se->st;
    uint32_t a = st->a;
    uint32_t b = st->b;
    switch (st->kind) {
    case ST_START:
        for_nodes(rc, a, false, start_if_down);
        break;
    case ST_CRASH:
        for_nodes(rc, a, true, nk_sim_node_crash);
        break;
    case ST_KILL:
        for_nodes(rc, a, true, nk_sim_node_kill);
        break;
    case ST_STOP:
        for_nodes(rc, a, true, nk_sim_node_stop);
        break;
    case ST_PARTITION:
    case ST_PARTITION_ONEWAY:
    case ST_HEAL:
    case ST_BREAK:
    case ST_REFUSE:
        if (a == REF_RANDOM) {
            a = pick_node(rc, false, 0);
        }
        if (b == REF_RANDOM) {
            b = pick_node(rc, false, a);
        }
        if (a == 0 || b == 0 || a == b) {
            break;
        }
        if (st->kind == ST_PARTITION || st->kind == ST_PARTITION_ONEWAY) {
            nk_sim_net_partition(s, a, b, st->kind == ST_PARTITION_ONEWAY);
        } else if (st->kind == ST_HEAL) {
            nk_sim_net_heal(s, a, b);
        } else if (st->kind == ST_BREAK) {
            nk_sim_net_break(s, a, b);
        } else {
            nk_sim_net_refuse_until(s, a, b, st->until);
        }
        break;
    case ST_HEAL_ALL:
        nk_sim_net_heal_all(s);
        break;
    case ST_FAILPOINT:
        nk_sim_failpoint_arm(s, a == REF_ALL ? 0 : a, st->fp_name, st->fp_action, st->fp_count,
                             st->fp_prob);
        break;
    case ST_DISK_FAULTS:
        nk_sim_disk_faults(s, a == REF_ALL ? 0 : a, st->read_corrupt, st->sync_fail);
        break;
    case ST_CHECK:
        if (rc->sc->wl->check(rc->world, st->check_name, st->check_args) != NK_OK) {
            nk_sim_fail(s, rc->res, NK_SIM_SAFETY, "workload %s has no check '%s'",
                        rc->sc->wl->name, st->check_name);
        }
        break;
    }
}

/* The shrink knobs sim.scripted=off / sim.failpoints=off drop these. */
static bool step_skipped(const nk_scenario *sc, const scn_step *st)
{
    switch (st->kind) {
    case ST_CRASH:
    case ST_KILL:
    case ST_STOP:
    case ST_PARTITION:
    case ST_PARTITION_ONEWAY:
    case ST_BREAK:
    case ST_REFUSE:
    case ST_DISK_FAULTS:
        return sc->no_scripted;
    case ST_FAILPOINT:
        return sc->no_failpoints;
    default:
        return false;
    }
}

static void schedule_step(run_ctx *rc, step_ev *evs, size_t i, const scn_step *st)
{
    if (step_skipped(rc->sc, st)) {
        return;
    }
    evs[i].rc = rc;
    evs[i].st = st;
    nk_sim_at(rc->s, st->at, st->text, exec_step, &evs[i]);
}

/* Expand `random` lines into concrete steps, all drawn from the seed. */
static int expand_randoms(run_ctx *rc)
{
    const nk_scenario *sc = rc->sc;
    size_t cap = 0;
    for (size_t i = 0; i < sc->random_count; i++) {
        cap += 2 * (size_t)sc->randoms[i].count;
    }
    if (cap == 0) {
        return NK_OK;
    }
    rc->extra = calloc(cap * 64, sizeof(*rc->extra)); /* flaps add several */
    if (rc->extra == NULL) {
        return NK_ENOMEM;
    }
    size_t limit = cap * 64;
    for (size_t i = 0; i < sc->random_count; i++) {
        const scn_random *r = &sc->randoms[i];
        uint32_t count = (uint32_t)((uint64_t)r->count * sc->random_pct / 100);
        for (uint32_t k = 0; k < count; k++) {
            uint64_t t = nk_rand_between(&rc->rand, r->win_lo, r->win_hi);
            uint64_t len = nk_rand_between(&rc->rand, r->len_lo, r->len_hi);
            uint32_t a = 1 + (uint32_t)nk_rand_below(&rc->rand, sc->nodes);
            uint32_t b = sc->nodes > 1 ? 1 + (uint32_t)nk_rand_below(&rc->rand, sc->nodes - 1) : 0;
            if (b >= a) {
                b++;
            }
            if (rc->extra_count + 2 > limit) {
                return NK_ERANGE;
            }
            scn_step *s1 = &rc->extra[rc->extra_count++];
            snprintf(s1->text, sizeof(s1->text), "%s", r->text);
            s1->at = t;
            s1->a = a;
            s1->b = b;
            switch (r->kind) {
            case RK_CRASH:
            case RK_KILL: {
                s1->kind = r->kind == RK_CRASH ? ST_CRASH : ST_KILL;
                scn_step *s2 = &rc->extra[rc->extra_count++];
                *s2 = *s1;
                s2->kind = ST_START;
                s2->at = t + len;
                break;
            }
            case RK_PARTITION:
            case RK_PARTITION_ONEWAY: {
                if (b == 0) {
                    rc->extra_count--;
                    break;
                }
                s1->kind = r->kind == RK_PARTITION ? ST_PARTITION : ST_PARTITION_ONEWAY;
                scn_step *s2 = &rc->extra[rc->extra_count++];
                *s2 = *s1;
                s2->kind = ST_HEAL;
                s2->at = t + len;
                break;
            }
            case RK_FLAP: {
                if (b == 0) {
                    rc->extra_count--;
                    break;
                }
                uint64_t period = nk_rand_between(&rc->rand, 100, 500) * NK_NSEC_PER_MSEC;
                s1->kind = ST_BREAK;
                for (uint64_t x = t + period; x < t + len && rc->extra_count + 2 <= limit;
                     x += period) {
                    scn_step *sb = &rc->extra[rc->extra_count++];
                    *sb = *s1;
                    sb->at = x;
                    scn_step *sr = &rc->extra[rc->extra_count++];
                    *sr = *s1;
                    sr->kind = ST_REFUSE;
                    sr->at = x;
                    sr->until = x + period / 2;
                }
                break;
            }
            }
        }
    }
    return NK_OK;
}

static void run_swarm(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                      FILE *coverage, nk_scenario_outcome *out);

void nk_scenario_run(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                     nk_scenario_outcome *out)
{
    nk_scenario_run_cov(sc, seed, trace_out, report, NULL, out);
}

void nk_scenario_run_cov(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                         FILE *coverage, nk_scenario_outcome *out)
{
    if (sc->swarm) {
        run_swarm(sc, seed, trace_out, report, coverage, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    nk_sim_config cfg = sc->base;
    cfg.seed = seed;
    cfg.trace_out = trace_out;
    nk_sim *s = nk_sim_new(&cfg);
    if (s == NULL) {
        out->result.verdict = NK_SIM_CRASH;
        snprintf(out->result.what, sizeof(out->result.what), "out of memory creating the sim");
        return;
    }
    run_ctx rc;
    memset(&rc, 0, sizeof(rc));
    rc.sc = sc;
    rc.s = s;
    rc.res = &out->result;
    nk_sim_rand_stream(s, "scenario", &rc.rand);
    rc.world = sc->wl->world_new(s, &out->result, sc->nodes);
    step_ev *evs = NULL;
    if (rc.world == NULL) {
        out->result.verdict = NK_SIM_CRASH;
        snprintf(out->result.what, sizeof(out->result.what), "workload setup failed");
        goto done;
    }
    for (unsigned i = 0; i < sc->opt_count; i++) {
        sc->wl->option(rc.world, sc->opt_key[i], sc->opt_val[i]);
    }
    nk_sim_trace(s, "scenario %s workload=%s nodes=%u seed=%" PRIu64, sc->name, sc->wl->name,
                 sc->nodes, seed);
    for (uint32_t i = 1; i <= sc->nodes; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%u", i);
        if (nk_sim_add_node(s, name, sc->wl->app, sc->wl->node_cfg(rc.world, i), NULL) != NK_OK) {
            out->result.verdict = NK_SIM_CRASH;
            snprintf(out->result.what, sizeof(out->result.what), "cannot add node %s", name);
            goto done;
        }
    }
    if (expand_randoms(&rc) != NK_OK) {
        out->result.verdict = NK_SIM_CRASH;
        snprintf(out->result.what, sizeof(out->result.what), "cannot expand random faults");
        goto done;
    }
    evs = calloc(sc->step_count + rc.extra_count + 1, sizeof(*evs));
    if (evs == NULL) {
        goto done;
    }
    /* Every node boots at t=0; steps follow in file order per instant. */
    for (uint32_t i = 1; i <= sc->nodes; i++) {
        nk_sim_node_start(s, i);
    }
    size_t k = 0;
    for (size_t i = 0; i < sc->step_count; i++) {
        schedule_step(&rc, evs, k++, &sc->steps[i]);
    }
    for (size_t i = 0; i < rc.extra_count; i++) {
        schedule_step(&rc, evs, k++, &rc.extra[i]);
    }
    nk_sim_run_until(s, sc->duration);
    if (out->result.verdict == NK_SIM_PASS) {
        sc->wl->finish(rc.world);
    }
    out->unfired_failpoints = nk_sim_failpoint_report_unfired(s, report ? report : stderr);
    if (coverage != NULL) {
        nk_sim_coverage_write(s, coverage);
    }
    if (out->result.verdict != NK_SIM_PASS && report != NULL) {
        fprintf(report, "  last events before the failure:\n");
        nk_sim_trace_tail(s, report, 20);
    }
done:
    out->trace_hash = nk_sim_trace_hash(s);
    out->events = nk_sim_events(s);
    out->sim_ns = nk_sim_now(s);
    nk_sim_free(s); /* apps first: they may still reference the world */
    if (rc.world != NULL) {
        sc->wl->world_free(rc.world);
    }
    free(evs);
    free(rc.extra);
}

/* A swarm run: the seed's profile becomes scenario text, parsed and run as
 * any file; the profile goes into the result line. */
static void run_swarm(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                      FILE *coverage, nk_scenario_outcome *out)
{
    char profile[sizeof(out->profile)];
    nk_swarm_profile(seed, (const char (*)[32])sc->opt_key, (const char (*)[64])sc->opt_val,
                     sc->opt_count, profile, sizeof(profile));
    char *text = nk_swarm_generate(seed, (const char (*)[32])sc->opt_key,
                                   (const char (*)[64])sc->opt_val, sc->opt_count);
    nk_scenario *gen = NULL;
    nk_errbuf eb = {{0}};
    int rc = text != NULL ? nk_scenario_parse("swarm(generated)", text, &gen, &eb) : NK_ENOMEM;
    for (unsigned i = 0; rc == NK_OK && i < sc->opt_count; i++) {
        if (nk_swarm_check_knob(sc->opt_key[i], sc->opt_val[i]) == NK_ENOENT) {
            char kvbuf[100];
            snprintf(kvbuf, sizeof(kvbuf), "%s=%s", sc->opt_key[i], sc->opt_val[i]);
            rc = nk_scenario_set_option(gen, kvbuf, &eb);
        }
    }
    if (rc != NK_OK) {
        memset(out, 0, sizeof(*out));
        out->result.verdict = NK_SIM_CRASH;
        snprintf(out->result.what, sizeof(out->result.what),
                 "swarm: the generated scenario does not load: %.400s", eb.msg);
        free(text);
        nk_scenario_free(gen);
        return;
    }
    snprintf(gen->name, sizeof(gen->name), "%s", sc->name);
    if (trace_out != NULL) {
        /* the generated file, for whoever reads the trace (not hashed) */
        fprintf(trace_out, "swarm profile: %s\n", profile);
        for (const char *l = text; *l != '\0';) {
            const char *nl = strchr(l, '\n');
            int len = nl ? (int)(nl - l) : (int)strlen(l);
            fprintf(trace_out, "swarm| %.*s\n", len, l);
            l += len + (nl ? 1 : 0);
        }
    }
    free(text);
    nk_scenario_run_cov(gen, seed, trace_out, report, coverage, out);
    snprintf(out->profile, sizeof(out->profile), "%s", profile);
    nk_scenario_free(gen);
}

bool nk_scenario_is_swarm(const nk_scenario *sc) { return sc->swarm; }

unsigned nk_scenario_profile(const nk_scenario *sc, uint64_t seed, char *buf, size_t len)
{
    if (!sc->swarm) {
        if (len > 0) {
            buf[0] = '\0';
        }
        return 0;
    }
    return nk_swarm_profile(seed, (const char (*)[32])sc->opt_key,
                            (const char (*)[64])sc->opt_val, sc->opt_count, buf, len);
}

unsigned nk_scenario_shrink_candidates(const nk_scenario *sc, uint64_t seed, char (*out)[96],
                                       unsigned max)
{
    unsigned k = 0;
    if (sc->swarm) {
        k = nk_swarm_shrink_candidates(seed, (const char (*)[32])sc->opt_key,
                                       (const char (*)[64])sc->opt_val, sc->opt_count, out, max);
    }
    /* Every scenario: fewer random faults, no scripted faults, no
     * failpoints, then less load where the workload takes it (a knob the
     * workload rejects is skipped by the caller). */
    static const char *const generic[] = {
        "sim.random=0", "sim.random=50", "sim.scripted=off", "sim.failpoints=off",
        "nemesis=off",  "clients=1",     "keys=1",
    };
    for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]) && k < max; i++) {
        bool have = false;
        for (unsigned j = 0; j < sc->opt_count && !have; j++) {
            char kvbuf[100];
            snprintf(kvbuf, sizeof(kvbuf), "%s=%s", sc->opt_key[j], sc->opt_val[j]);
            have = strcmp(kvbuf, generic[i]) == 0;
        }
        if ((strcmp(generic[i], "sim.random=0") == 0 && sc->random_pct == 0) ||
            (strcmp(generic[i], "sim.random=50") == 0 && sc->random_pct <= 50) ||
            (strcmp(generic[i], "sim.scripted=off") == 0 && sc->no_scripted) ||
            (strcmp(generic[i], "sim.failpoints=off") == 0 && sc->no_failpoints)) {
            have = true;
        }
        if (sc->swarm && strncmp(generic[i], "sim.", 4) != 0) {
            have = true; /* the swarm's own knobs cover load and the nemesis */
        }
        if (!have) {
            snprintf(out[k++], sizeof(out[0]), "%s", generic[i]);
        }
    }
    return k;
}
