/*
 * main.c - nokv-sim: run a scenario under the deterministic simulator.
 *
 *   nokv-sim --seed N scenarios/NAME          one run, one result line
 *   nokv-sim --seeds A..B scenarios/NAME      a sweep, one process per seed
 *   nokv-sim --seed N --trace scenarios/NAME  print every event
 *   nokv-sim --seed N --determinism ...       run twice, compare trace hashes
 *   nokv-sim --shrink --seed N scenarios/NAME smallest --set list that still fails
 *
 * A sweep prints what its seeds covered (failpoints hit and fired, fault
 * classes that happened, armed failpoints that never fired) after its
 * summary line; --require-cover makes missing coverage an error (exit 14).
 *
 * Exit codes: 0 pass; 2 usage or scenario error; 10 safety violation;
 * 11 liveness violation; 12 crash of the code under test; 13 determinism
 * mismatch. A sweep exits with the code of its first failing seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "nokv/util/assert.h"
#include "sim/scenario.h"

enum {
    EXIT_PASS = 0,
    EXIT_USAGE = 2,
    EXIT_SAFETY = 10,
    EXIT_LIVENESS = 11,
    EXIT_CRASH = 12,
    EXIT_NONDETERMINISM = 13,
    EXIT_COVERAGE = 14,
};

static const char *g_path;
static uint64_t g_seed;
#define MAX_SETS 48
static const char *g_sets[MAX_SETS];
static int g_set_count;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nokv-sim [--seed N | --seeds A..B [-j N]] [--trace] [--determinism]\n"
            "                [--set key=value]... [--quiet] [--coverage]\n"
            "                [--require-cover NAME,...] [--shrink [--attempts N]] scenarios/NAME\n"
            "\n"
            "Runs a scenario (see docs/simulation.md) under the deterministic simulator and\n"
            "prints one line per run: PASS|FAIL scenario=NAME seed=N trace=HASH ...\n"
            "\n"
            "  --seed N          run one seed (default: a random seed, printed); N may be\n"
            "                    decimal, hex (0x1f, or up to 16 hex digits) or any word\n"
            "                    such as a commit hash, which is hashed to a seed\n"
            "  --seeds A..B      sweep seeds A through B, each in its own process\n"
            "  -j N              run up to N seeds of a sweep at once (default 1)\n"
            "  --trace           print every simulated event (with --seed)\n"
            "  --determinism     run the seed twice and require identical trace hashes;\n"
            "                    on a mismatch, name the first divergent event\n"
            "  --set key=value   override a workload option, e.g. --set bug=ack-before-sync\n"
            "  --quiet           in sweeps, print only failures and the summary\n"
            "  --coverage        with --seed: print the run's coverage (sweeps always do)\n"
            "  --require-cover L a sweep must cover every name of the comma-separated list:\n"
            "                    a marker (fault.power-loss), fp:NAME (a failpoint fired)\n"
            "                    or hit:NAME (a failpoint reached); else exit 14\n"
            "  --shrink          with --seed: search smaller profiles (--set knobs) that\n"
            "                    fail the same way; prints the smallest replay command\n"
            "  --attempts N      runs the shrinker may spend (default 40)\n"
            "\n"
            "exit codes: 0 pass, 2 usage, 10 safety, 11 liveness, 12 crash, 13 nondeterminism,\n"
            "            14 coverage missing (--require-cover)\n");
}

static int verdict_exit(nk_sim_verdict v)
{
    switch (v) {
    case NK_SIM_PASS:
        return EXIT_PASS;
    case NK_SIM_SAFETY:
        return EXIT_SAFETY;
    case NK_SIM_LIVENESS:
        return EXIT_LIVENESS;
    case NK_SIM_CRASH:
        return EXIT_CRASH;
    }
    return EXIT_CRASH;
}

static const char *verdict_name(nk_sim_verdict v)
{
    switch (v) {
    case NK_SIM_PASS:
        return "pass";
    case NK_SIM_SAFETY:
        return "safety";
    case NK_SIM_LIVENESS:
        return "liveness";
    case NK_SIM_CRASH:
        return "crash";
    }
    return "?";
}

static void print_replay(FILE *out, uint64_t seed)
{
    fprintf(out, "  replay: nokv-sim --seed %" PRIu64, seed);
    for (int i = 0; i < g_set_count; i++) {
        fprintf(out, " --set %s", g_sets[i]);
    }
    fprintf(out, " --trace %s\n", g_path);
    fprintf(out, "  (a seed replays exactly only with the same build of nokv-sim)\n");
}

/* The code under test aborted: still report the seed and how to replay. */
static void on_fatal_signal(int sig)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "FAIL scenario=%s seed=%" PRIu64 " class=crash signal=%d\n"
                     "  replay: nokv-sim --seed %" PRIu64 " --trace %s\n",
                     g_path, g_seed, sig, g_seed, g_path);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, (size_t)n);
        (void)w;
    }
    _exit(EXIT_CRASH);
}

/* An NK_ASSERT in the code under test broke: say which, then the trap
 * reaches on_fatal_signal with the seed and the replay command. */
static void on_assert(const char *file, int line, const char *expr)
{
    fprintf(stdout, "ASSERT %s:%d: %s\n", file, line, expr);
    fflush(stdout);
}

static void install_crash_handlers(void)
{
    nk_assert_set_handler(on_assert);
    signal(SIGTRAP, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
    signal(SIGILL, on_fatal_signal);
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end = NULL;
    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *v = x;
    return 0;
}

/* A seed: decimal, hex (0x..., or up to 16 hex digits with a letter), or any
 * other word such as a commit hash, which is hashed (XXH64) to a seed. */
static int parse_seed(const char *s, uint64_t *v, bool *hashed)
{
    *hashed = false;
    if (parse_u64(s, v) == 0) {
        return 0;
    }
    const char *h = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? s + 2 : s;
    size_t n = strlen(h);
    bool hex = n > 0 && n <= 16;
    for (size_t i = 0; hex && i < n; i++) {
        hex = (h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') ||
              (h[i] >= 'A' && h[i] <= 'F');
    }
    if (hex) {
        *v = strtoull(h, NULL, 16);
        return 0;
    }
    if (s[0] == '\0' || s[0] == '-') {
        return -1;
    }
    *v = XXH64(s, strlen(s), 0);
    *hashed = true;
    return 0;
}

/* Run one seed in this process and print its line. Returns the exit code. */
static FILE *g_cov_out; /* where a run writes its coverage records (NULL: nowhere) */

static int run_one_to(const nk_scenario *sc, uint64_t seed, FILE *trace, bool print_pass,
                      uint64_t *hash_out)
{
    g_seed = seed;
    nk_scenario_outcome o;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nk_scenario_run_cov(sc, seed, trace, stdout, g_cov_out, &o);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (hash_out != NULL) {
        *hash_out = o.trace_hash;
    }
    if (o.result.verdict == NK_SIM_PASS) {
        if (print_pass) {
            printf("PASS scenario=%s seed=%" PRIu64 " trace=%016" PRIx64 " events=%" PRIu64
                   " sim=%" PRIu64 ".%03" PRIu64 "s wall=%.2fs%s%s%s\n",
                   nk_scenario_name(sc), seed, o.trace_hash, o.events, o.sim_ns / NK_NSEC_PER_SEC,
                   (o.sim_ns % NK_NSEC_PER_SEC) / NK_NSEC_PER_MSEC, wall,
                   o.profile[0] ? " profile=[" : "", o.profile, o.profile[0] ? "]" : "");
        }
        fflush(stdout);
        return EXIT_PASS;
    }
    printf("FAIL scenario=%s seed=%" PRIu64 " trace=%016" PRIx64 " class=%s at=%" PRIu64
           ".%03" PRIu64 "s%s%s%s\n",
           nk_scenario_name(sc), seed, o.trace_hash, verdict_name(o.result.verdict),
           o.result.at_ns / NK_NSEC_PER_SEC, (o.result.at_ns % NK_NSEC_PER_SEC) / NK_NSEC_PER_MSEC,
           o.profile[0] ? " profile=[" : "", o.profile, o.profile[0] ? "]" : "");
    printf("  what: %s\n", o.result.what);
    print_replay(stdout, seed);
    fflush(stdout);
    return verdict_exit(o.result.verdict);
}

static int run_one(const nk_scenario *sc, uint64_t seed, bool trace, bool print_pass,
                   uint64_t *hash_out)
{
    return run_one_to(sc, seed, trace ? stdout : NULL, print_pass, hash_out);
}

/* Run one seed in a child process with its trace written to `path`; the
 * exit code is returned (the child's stdout is discarded). */
static int run_traced_to_file(const nk_scenario *sc, uint64_t seed, const char *path)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        return EXIT_CRASH;
    }
    if (pid == 0) {
        FILE *t = fopen(path, "w");
        if (freopen("/dev/null", "w", stdout) == NULL || t == NULL) {
            _exit(EXIT_CRASH);
        }
        int code = run_one_to(sc, seed, t, false, NULL);
        fclose(t);
        _exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CRASH;
}

/* Two runs of one seed disagreed: run it twice more with traces and name
 * the first event where they part. */
static void report_divergence(const nk_scenario *sc, uint64_t seed)
{
    char a[64], b[64];
    snprintf(a, sizeof(a), "/tmp/nokv-sim-%d-a.trace", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/nokv-sim-%d-b.trace", (int)getpid());
    (void)run_traced_to_file(sc, seed, a);
    (void)run_traced_to_file(sc, seed, b);
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    if (fa != NULL && fb != NULL) {
        char la[1024], lb[1024];
        unsigned long line = 0;
        bool diverged = false;
        for (;;) {
            char *ra = fgets(la, sizeof(la), fa);
            char *rb = fgets(lb, sizeof(lb), fb);
            line++;
            if (ra == NULL && rb == NULL) {
                break;
            }
            if (ra == NULL || rb == NULL || strcmp(la, lb) != 0) {
                printf("  first divergent event, trace line %lu:\n    run 1: %s    run 2: %s", line,
                       ra ? la : "(end of trace)\n", rb ? lb : "(end of trace)\n");
                diverged = true;
                break;
            }
        }
        if (!diverged) {
            printf("  two more traced runs agreed: the divergence is outside the trace (or "
                   "intermittent); compare --trace outputs of more runs\n");
        }
    }
    if (fa != NULL) {
        fclose(fa);
    }
    if (fb != NULL) {
        fclose(fb);
    }
    remove(a);
    remove(b);
}

/* Run one seed in a child process; the hash comes back through a pipe. */
static int run_forked(const nk_scenario *sc, uint64_t seed, bool print_pass, uint64_t *hash)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("nokv-sim: pipe");
        return EXIT_CRASH;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("nokv-sim: fork");
        return EXIT_CRASH;
    }
    if (pid == 0) {
        close(fds[0]);
        uint64_t h = 0;
        int code = run_one(sc, seed, false, print_pass, &h);
        ssize_t w = write(fds[1], &h, sizeof(h));
        (void)w;
        close(fds[1]);
        fflush(stdout);
        _exit(code);
    }
    close(fds[1]);
    uint64_t h = 0;
    ssize_t r = read(fds[0], &h, sizeof(h));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (hash != NULL) {
        *hash = r == (ssize_t)sizeof(h) ? h : 0;
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    printf("FAIL scenario=%s seed=%" PRIu64 " class=crash signal=%d\n", nk_scenario_name(sc),
           seed, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    print_replay(stdout, seed);
    return EXIT_CRASH;
}

/* ------------------------------------------------------------ coverage --- */

/* What a sweep covered, added up over its seeds from the records each
 * child writes (nk_sim_coverage_write) into a pipe. */
typedef struct cov_ent {
    bool fp;         /* a failpoint, else a marker */
    char name[64];
    uint64_t runs;   /* seeds where it was hit (fp) or counted (marker) */
    uint64_t count;  /* hits (fp) or marker count */
    uint64_t fired;  /* fp: fires, all seeds */
    uint64_t armed;  /* fp: seeds where it was armed */
    uint64_t armed_unfired; /* fp: seeds where it was armed and never fired */
} cov_ent;

typedef struct cov_table {
    cov_ent *e;
    size_t n, cap;
    uint64_t runs;
} cov_table;

static cov_ent *cov_get(cov_table *t, bool fp, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].fp == fp && strcmp(t->e[i].name, name) == 0) {
            return &t->e[i];
        }
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        cov_ent *ne = realloc(t->e, cap * sizeof(*ne));
        if (ne == NULL) {
            return NULL;
        }
        t->e = ne;
        t->cap = cap;
    }
    cov_ent *c = &t->e[t->n++];
    memset(c, 0, sizeof(*c));
    c->fp = fp;
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

/* Add one run's records (text from the child). */
static void cov_add(cov_table *t, const char *text)
{
    t->runs++;
    const char *l = text;
    while (*l != '\0') {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[256];
        if (len < sizeof(line)) {
            memcpy(line, l, len);
            line[len] = '\0';
            char name[128];
            unsigned long long a = 0, b = 0, c = 0;
            if (sscanf(line, "fp %127s %llu %llu %llu", name, &a, &b, &c) == 4) {
                cov_ent *e = cov_get(t, true, name);
                if (e != NULL) {
                    e->runs += a > 0;
                    e->count += a;
                    e->fired += b;
                    e->armed += c != 0;
                    e->armed_unfired += c != 0 && b == 0;
                }
            } else if (sscanf(line, "mark %127s %llu", name, &a) == 2) {
                cov_ent *e = cov_get(t, false, name);
                if (e != NULL) {
                    e->runs += a > 0;
                    e->count += a;
                }
            }
        }
        l += len + (nl ? 1 : 0);
    }
}

static int cov_cmp(const void *a, const void *b)
{
    const cov_ent *x = a, *y = b;
    if (x->fp != y->fp) {
        return x->fp ? 1 : -1; /* markers first */
    }
    return strcmp(x->name, y->name); /* names are unique per kind: a total order */
}

static void cov_print(cov_table *t)
{
    qsort(t->e, t->n, sizeof(*t->e), cov_cmp);
    printf("COVERAGE runs=%" PRIu64 " (runs = seeds where it happened)\n", t->runs);
    for (size_t i = 0; i < t->n; i++) {
        const cov_ent *e = &t->e[i];
        if (!e->fp) {
            printf("  %-34s runs=%-5" PRIu64 " count=%" PRIu64 "\n", e->name, e->runs, e->count);
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const cov_ent *e = &t->e[i];
        if (e->fp) {
            printf("  fp %-31s runs=%-5" PRIu64 " hits=%-8" PRIu64 " fired=%" PRIu64
                   " armed-runs=%" PRIu64 "\n",
                   e->name, e->runs, e->count, e->fired, e->armed);
        }
    }
    unsigned never = 0, fps = 0;
    for (size_t i = 0; i < t->n; i++) {
        fps += t->e[i].fp;
    }
    for (size_t i = 0; i < t->n; i++) {
        const cov_ent *e = &t->e[i];
        if (e->fp && e->armed > 0 && e->fired == 0) {
            printf("  ARMED, NEVER FIRED: fp %s (armed in %" PRIu64 " runs, hit %" PRIu64
                   " times)\n",
                   e->name, e->armed, e->count);
            never++;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const cov_ent *e = &t->e[i];
        if (e->fp && e->fired > 0 && e->armed_unfired > 0) {
            printf("  armed but not fired in %" PRIu64 " of %" PRIu64 " runs: fp %s\n",
                   e->armed_unfired, e->armed, e->name);
        }
    }
    printf("COVERAGE %zu markers, %u failpoints, %u armed and never fired\n", t->n - fps, fps,
           never);
}

/* Every name of `list` covered? Prints the missing ones. */
static bool cov_require(cov_table *t, const char *list)
{
    bool ok = true;
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *name = strtok_r(buf, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        bool need_fire = strncmp(name, "fp:", 3) == 0;
        bool need_hit = strncmp(name, "hit:", 4) == 0;
        const char *n = need_fire ? name + 3 : need_hit ? name + 4 : name;
        bool have = false;
        for (size_t i = 0; i < t->n && !have; i++) {
            const cov_ent *e = &t->e[i];
            if (e->fp == (need_fire || need_hit) && strcmp(e->name, n) == 0) {
                have = need_fire ? e->fired > 0 : e->count > 0;
            }
        }
        if (!have) {
            printf("COVERAGE MISSING: %s\n", name);
            ok = false;
        }
    }
    return ok;
}

/* Read what a child wrote to its coverage pipe, until EOF. */
static char *read_all(int fd)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    for (;;) {
        if (b == NULL) {
            return NULL;
        }
        if (len + 1024 > cap) {
            cap *= 2;
            char *nb = realloc(b, cap);
            if (nb == NULL) {
                free(b);
                return NULL;
            }
            b = nb;
        }
        ssize_t r = read(fd, b + len, cap - len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    b[len] = '\0';
    return b;
}

/* In a child: write the run's coverage records to pipe fd `w`. */
static void child_cov_to(int w)
{
    g_cov_out = fdopen(w, "w");
}

static void child_cov_done(void)
{
    if (g_cov_out != NULL) {
        fclose(g_cov_out);
        g_cov_out = NULL;
    }
}

/* ------------------------------------------------------------- shrink --- */

/* One attempt: a fresh process loads the scenario, applies `sets` and runs
 * the seed quietly; returns its exit code; *faults = faults that happened
 * (fault.* markers plus failpoint fires), from its coverage. */
static int shrink_try(const char *path, uint64_t seed, char (*sets)[100], int n, uint64_t *faults)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return EXIT_CRASH;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return EXIT_CRASH;
    }
    if (pid == 0) {
        close(fds[0]);
        if (freopen("/dev/null", "w", stdout) == NULL) {
            _exit(EXIT_CRASH);
        }
        nk_errbuf eb = {{0}};
        nk_scenario *sc = NULL;
        if (nk_scenario_load(path, &sc, &eb) != NK_OK) {
            _exit(EXIT_USAGE);
        }
        for (int i = 0; i < n; i++) {
            if (nk_scenario_set_option(sc, sets[i], &eb) != NK_OK) {
                _exit(EXIT_USAGE);
            }
        }
        child_cov_to(fds[1]);
        int code = run_one(sc, seed, false, false, NULL);
        child_cov_done();
        _exit(code);
    }
    close(fds[1]);
    char *cov = read_all(fds[0]);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *faults = 0;
    if (cov != NULL) {
        cov_table t = {0};
        cov_add(&t, cov);
        for (size_t i = 0; i < t.n; i++) {
            if (t.e[i].fp) {
                *faults += t.e[i].fired;
            } else if (strncmp(t.e[i].name, "fault.", 6) == 0) {
                *faults += t.e[i].count;
            }
        }
        free(t.e);
        free(cov);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CRASH;
}

static void print_cmd(FILE *out, uint64_t seed, char (*sets)[100], int n, const char *path)
{
    fprintf(out, "nokv-sim --seed %" PRIu64, seed);
    for (int i = 0; i < n; i++) {
        fprintf(out, " --set %s", sets[i]);
    }
    fprintf(out, " %s", path);
}

/* Greedy shrinking: try each candidate knob (nk_scenario_shrink_candidates)
 * on top of what is accepted; keep it when the run still fails with the
 * same exit code (failure class); start over from the new profile; stop
 * when a whole pass keeps nothing or the attempts are spent. */
static int shrink(const char *path, uint64_t seed, int max_attempts)
{
    static char sets[MAX_SETS + 16][100];
    int n = 0;
    for (int i = 0; i < g_set_count; i++) {
        snprintf(sets[n++], sizeof(sets[0]), "%s", g_sets[i]);
    }
    uint64_t faults0 = 0;
    int code = shrink_try(path, seed, sets, n, &faults0);
    if (code == EXIT_PASS) {
        printf("SHRINK scenario=%s seed=%" PRIu64 ": the seed passes; nothing to shrink\n", path,
               seed);
        return EXIT_PASS;
    }
    if (code == EXIT_USAGE) {
        printf("SHRINK scenario=%s: the scenario or a --set does not load\n", path);
        return EXIT_USAGE;
    }
    nk_errbuf eb = {{0}};
    nk_scenario *sc = NULL;
    if (nk_scenario_load(path, &sc, &eb) != NK_OK) {
        return EXIT_USAGE;
    }
    for (int i = 0; i < n; i++) {
        (void)nk_scenario_set_option(sc, sets[i], &eb);
    }
    char prof[512];
    unsigned w0 = nk_scenario_profile(sc, seed, prof, sizeof(prof));
    printf("SHRINK scenario=%s seed=%" PRIu64 " exit=%d faults=%" PRIu64 " weight=%u%s%s%s\n",
           path, seed, code, faults0, w0, prof[0] ? " profile=[" : "", prof,
           prof[0] ? "]" : "");
    int attempts = 1;
    uint64_t faults = faults0;
    bool progress = true;
    /* a candidate that did not reproduce is not tried again: with a bounded
     * budget, new cuts are worth more than retries after other cuts */
    static char rejected[256][96];
    int n_rejected = 0;
    while (progress && attempts < max_attempts) {
        progress = false;
        char cands[64][96];
        unsigned nc = nk_scenario_shrink_candidates(sc, seed, cands, 64);
        for (unsigned c = 0; c < nc && attempts < max_attempts && n < MAX_SETS + 15; c++) {
            bool seen = false;
            for (int r = 0; r < n_rejected && !seen; r++) {
                seen = strcmp(rejected[r], cands[c]) == 0;
            }
            if (seen) {
                continue;
            }
            snprintf(sets[n], sizeof(sets[0]), "%.95s", cands[c]);
            uint64_t f = 0;
            int rc = shrink_try(path, seed, sets, n + 1, &f);
            attempts++;
            if (rc == EXIT_USAGE) {
                printf("  try --set %-22s not a knob of this scenario\n", cands[c]);
                continue;
            }
            printf("  try --set %-22s %s (exit %d, faults=%" PRIu64 ")\n", cands[c],
                   rc == code ? "still fails: kept" : "does not fail the same way", rc, f);
            if (rc != code && n_rejected < 256) {
                snprintf(rejected[n_rejected++], sizeof(rejected[0]), "%s", cands[c]);
            }
            if (rc == code) {
                /* the new value replaces an earlier one of the same key, so
                 * the replay command names each knob once */
                const char *eq = strchr(sets[n], '=');
                size_t kl = eq ? (size_t)(eq - sets[n]) + 1 : 0;
                int dup = -1;
                for (int i = 0; i < n && kl > 0; i++) {
                    if (strncmp(sets[i], sets[n], kl) == 0) {
                        dup = i;
                    }
                }
                if (dup >= 0) {
                    memmove(sets[dup], sets[dup + 1], (size_t)(n - dup) * sizeof(sets[0]));
                } else {
                    n++;
                }
                faults = f;
                nk_scenario_free(sc);
                sc = NULL;
                if (nk_scenario_load(path, &sc, &eb) != NK_OK) {
                    return EXIT_USAGE;
                }
                for (int i = 0; i < n; i++) {
                    (void)nk_scenario_set_option(sc, sets[i], &eb);
                }
                progress = true;
                break;
            }
        }
    }
    unsigned w1 = nk_scenario_profile(sc, seed, prof, sizeof(prof));
    nk_scenario_free(sc);
    printf("SHRUNK scenario=%s seed=%" PRIu64 " exit=%d attempts=%d sets=%d->%d faults=%" PRIu64
           "->%" PRIu64 " weight=%u->%u\n",
           path, seed, code, attempts, g_set_count, n, faults0, faults, w0, w1);
    printf("  replay: ");
    print_cmd(stdout, seed, sets, n, path);
    printf("\n");
    return code;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0, lo = 0, hi = 0;
    bool have_seed = false, sweep = false, trace = false, determinism = false, quiet = false;
    bool coverage = false, do_shrink = false;
    const char *require = NULL;
    int jobs = 1, attempts = 40;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            bool hashed = false;
            if (parse_seed(argv[++i], &seed, &hashed) != 0) {
                fprintf(stderr,
                        "nokv-sim: --seed wants a number, a hex string or a word (a commit "
                        "hash), got '%s'\n",
                        argv[i]);
                return EXIT_USAGE;
            }
            if (hashed) {
                fprintf(stderr, "nokv-sim: seed '%s' is %" PRIu64 "\n", argv[i], seed);
            }
            have_seed = true;
        } else if (strcmp(a, "-j") == 0 && i + 1 < argc) {
            uint64_t j = 0;
            if (parse_u64(argv[++i], &j) != 0 || j == 0 || j > 64) {
                fprintf(stderr, "nokv-sim: -j wants 1..64 parallel seeds, got '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
            jobs = (int)j;
        } else if (strcmp(a, "--seeds") == 0 && i + 1 < argc) {
            const char *r = argv[++i];
            const char *dots = strstr(r, "..");
            char left[32];
            if (dots == NULL || (size_t)(dots - r) >= sizeof(left)) {
                fprintf(stderr, "nokv-sim: --seeds wants A..B, got '%s'\n", r);
                return EXIT_USAGE;
            }
            memcpy(left, r, (size_t)(dots - r));
            left[dots - r] = '\0';
            if (parse_u64(left, &lo) != 0 || parse_u64(dots + 2, &hi) != 0 || hi < lo) {
                fprintf(stderr, "nokv-sim: --seeds wants A..B with A <= B, got '%s'\n", r);
                return EXIT_USAGE;
            }
            sweep = true;
        } else if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--determinism") == 0) {
            determinism = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--coverage") == 0) {
            coverage = true;
        } else if (strcmp(a, "--require-cover") == 0 && i + 1 < argc) {
            require = argv[++i];
        } else if (strcmp(a, "--shrink") == 0) {
            do_shrink = true;
        } else if (strcmp(a, "--attempts") == 0 && i + 1 < argc) {
            uint64_t v = 0;
            if (parse_u64(argv[++i], &v) != 0 || v == 0 || v > 10000) {
                fprintf(stderr, "nokv-sim: --attempts wants 1..10000, got '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
            attempts = (int)v;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            if (g_set_count == (int)(sizeof(g_sets) / sizeof(g_sets[0]))) {
                fprintf(stderr, "nokv-sim: too many --set options\n");
                return EXIT_USAGE;
            }
            g_sets[g_set_count++] = argv[++i];
            if (strlen(g_sets[g_set_count - 1]) >= 96) {
                fprintf(stderr, "nokv-sim: --set '%s' is too long\n", g_sets[g_set_count - 1]);
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return EXIT_PASS;
        } else if (a[0] == '-') {
            fprintf(stderr, "nokv-sim: unknown option '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else if (path == NULL) {
            path = a;
        } else {
            fprintf(stderr, "nokv-sim: one scenario at a time ('%s' and '%s')\n", path, a);
            return EXIT_USAGE;
        }
    }
    if (path == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (sweep && (have_seed || trace)) {
        fprintf(stderr, "nokv-sim: --seeds runs many seeds; use --seed N for --trace\n");
        return EXIT_USAGE;
    }
    if (do_shrink && (!have_seed || sweep || determinism)) {
        fprintf(stderr, "nokv-sim: --shrink wants one failing --seed N\n");
        return EXIT_USAGE;
    }
    if (require != NULL && !sweep) {
        fprintf(stderr, "nokv-sim: --require-cover goes with a sweep (--seeds A..B)\n");
        return EXIT_USAGE;
    }
    g_path = path;
    nk_errbuf eb = {{0}};
    nk_scenario *sc = NULL;
    if (nk_scenario_load(path, &sc, &eb) != NK_OK) {
        fprintf(stderr, "nokv-sim: %s\n", eb.msg);
        return EXIT_USAGE;
    }
    for (int i = 0; i < g_set_count; i++) {
        if (nk_scenario_set_option(sc, g_sets[i], &eb) != NK_OK) {
            fprintf(stderr, "nokv-sim: %s\n", eb.msg);
            nk_scenario_free(sc);
            return EXIT_USAGE;
        }
    }
    install_crash_handlers();

    if (do_shrink) {
        nk_scenario_free(sc);
        return shrink(path, seed, attempts);
    }

    int code = EXIT_PASS;
    if (sweep) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t pass = 0, fail = 0, counts[4] = {0};
        int first_fail = EXIT_PASS;
        uint64_t first_fail_seed = UINT64_MAX;
        /* Up to `jobs` seeds run at once, each in its own child (a seed's
         * outcome never depends on another's). The sweep's exit code is the
         * one of its lowest failing seed. */
        pid_t running[64];
        uint64_t running_seed[64];
        int running_cov[64]; /* read end of the child's coverage pipe */
        cov_table cov = {0};
        int n_running = 0;
        uint64_t next = lo;
        bool launched_all = false;
        while (!launched_all || n_running > 0) {
            while (!launched_all && n_running < jobs) {
                int fds[2];
                if (pipe(fds) != 0) {
                    perror("nokv-sim: pipe");
                    launched_all = true;
                    break;
                }
                fflush(stdout);
                pid_t pid = fork();
                if (pid < 0) {
                    perror("nokv-sim: fork");
                    close(fds[0]);
                    close(fds[1]);
                    launched_all = true;
                    break;
                }
                if (pid == 0) {
                    /* the siblings' pipes are not ours: close them, or a
                     * sibling's EOF would wait for this child */
                    for (int k = 0; k < n_running; k++) {
                        close(running_cov[k]);
                    }
                    close(fds[0]);
                    child_cov_to(fds[1]);
                    int c = run_one(sc, next, false, !quiet, NULL);
                    child_cov_done();
                    _exit(c);
                }
                close(fds[1]);
                running[n_running] = pid;
                running_seed[n_running] = next;
                running_cov[n_running] = fds[0];
                n_running++;
                if (next == hi) {
                    launched_all = true;
                } else {
                    next++;
                }
            }
            if (n_running == 0) {
                break;
            }
            int status = 0;
            pid_t done = waitpid(-1, &status, 0);
            int k = 0;
            while (k < n_running && running[k] != done) {
                k++;
            }
            if (k == n_running) {
                continue;
            }
            uint64_t s_done = running_seed[k];
            /* the child has exited: its records are all in the pipe (a
             * few KiB, well under the pipe's buffer, so it never blocked) */
            char *text = read_all(running_cov[k]);
            close(running_cov[k]);
            if (text != NULL) {
                cov_add(&cov, text);
                free(text);
            }
            running[k] = running[n_running - 1];
            running_seed[k] = running_seed[n_running - 1];
            running_cov[k] = running_cov[n_running - 1];
            n_running--;
            int c = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CRASH;
            if (!WIFEXITED(status)) {
                printf("FAIL scenario=%s seed=%" PRIu64 " class=crash signal=%d\n",
                       nk_scenario_name(sc), s_done, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
                print_replay(stdout, s_done);
            }
            if (c == EXIT_PASS) {
                pass++;
            } else {
                fail++;
                counts[c == EXIT_SAFETY ? 1 : c == EXIT_LIVENESS ? 2 : 3]++;
                if (s_done < first_fail_seed) {
                    first_fail_seed = s_done;
                    first_fail = c;
                }
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("SWEEP scenario=%s seeds=%" PRIu64 "..%" PRIu64 " pass=%" PRIu64 " fail=%" PRIu64
               " (safety=%" PRIu64 " liveness=%" PRIu64 " crash=%" PRIu64
               ") wall=%.2fs seeds/s=%.1f\n",
               nk_scenario_name(sc), lo, hi, pass, fail, counts[1], counts[2], counts[3], wall,
               wall > 0 ? (double)(pass + fail) / wall : 0.0);
        cov_print(&cov);
        code = first_fail;
        if (require != NULL && !cov_require(&cov, require) && code == EXIT_PASS) {
            code = EXIT_COVERAGE;
        }
        free(cov.e);
    } else {
        if (!have_seed) {
            FILE *ur = fopen("/dev/urandom", "rb");
            if (ur == NULL || fread(&seed, sizeof(seed), 1, ur) != 1) {
                seed = (uint64_t)time(NULL);
            }
            if (ur != NULL) {
                fclose(ur);
            }
            seed %= 1000000000ULL; /* short enough to retype */
            fprintf(stderr, "nokv-sim: no --seed given, using seed %" PRIu64 "\n", seed);
        }
        if (determinism) {
            uint64_t h1 = 0, h2 = 0;
            int c1 = run_forked(sc, seed, true, &h1);
            int c2 = run_forked(sc, seed, false, &h2);
            if (h1 != h2 || c1 != c2) {
                printf("FAIL scenario=%s seed=%" PRIu64 " class=nondeterminism trace=%016" PRIx64
                       " then %016" PRIx64 "\n",
                       nk_scenario_name(sc), seed, h1, h2);
                report_divergence(sc, seed);
                code = EXIT_NONDETERMINISM;
            } else {
                printf("DETERMINISTIC scenario=%s seed=%" PRIu64 " trace=%016" PRIx64
                       " (two runs)\n",
                       nk_scenario_name(sc), seed, h1);
                code = c1;
            }
        } else {
            /* --coverage: the run's records through a temporary file,
             * added up and printed like a sweep of one */
            FILE *tmp = coverage ? tmpfile() : NULL;
            g_cov_out = tmp;
            code = run_one(sc, seed, trace, true, NULL);
            g_cov_out = NULL;
            if (tmp != NULL) {
                cov_table t = {0};
                char line[256];
                char *all = calloc(1, 1);
                size_t alen = 0;
                rewind(tmp);
                while (all != NULL && fgets(line, sizeof(line), tmp) != NULL) {
                    size_t l = strlen(line);
                    char *na = realloc(all, alen + l + 1);
                    if (na == NULL) {
                        break;
                    }
                    all = na;
                    memcpy(all + alen, line, l + 1);
                    alen += l;
                }
                if (all != NULL) {
                    cov_add(&t, all);
                    cov_print(&t);
                }
                free(all);
                free(t.e);
                fclose(tmp);
            }
        }
    }
    nk_scenario_free(sc);
    return code;
}
