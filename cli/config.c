/*
 * config.c - `--config FILE` and `--check-config` for the serving commands.
 *
 * The file (nokv/util/config.h format) holds flags without their "--". Each
 * command lists the keys it accepts and their types; a key the command does
 * not know, or a value of the wrong type, is an error naming the file and
 * line. The settings are then turned into flags placed BEFORE the command
 * line's own, and since every command's parser lets a later flag override
 * an earlier one, the precedence is flags > file > defaults.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "nokv/util/config.h"

#define MAX_FILE_BYTES (1u << 20)

/* Keys every serving command accepts (cli/common.c handles them). */
// clang-format off
#define COMMON_KEYS                                          \
    {"log-level", NK_CLI_T_ENUM, "debug|info|warn|error"},   \
    {"log-format", NK_CLI_T_ENUM, "text|json"},              \
    {"log-file", NK_CLI_T_STRING, NULL},                     \
    {"shutdown-timeout", NK_CLI_T_UINT, NULL}
// clang-format on

const nk_cli_key nk_cli_serve_keys[] = {
    {"workdir", NK_CLI_T_STRING, NULL},
    {"addr", NK_CLI_T_ADDR, NULL},
    {"sync", NK_CLI_T_ENUM, "always|group|none"},
    {"memtable-mb", NK_CLI_T_MB, NULL},
    {"cache-mb", NK_CLI_T_MB, NULL},
    {"metrics-addr", NK_CLI_T_ADDR, NULL},
    {"accept-data-loss", NK_CLI_T_BOOL, NULL},
    COMMON_KEYS,
    {NULL, 0, NULL},
};

const nk_cli_key nk_cli_serve_cluster_keys[] = {
    {"store-id", NK_CLI_T_UINT, NULL},
    {"workdir", NK_CLI_T_STRING, NULL},
    {"addr", NK_CLI_T_ADDR, NULL},
    {"redis-addr", NK_CLI_T_ADDR, NULL},
    {"initial-cluster", NK_CLI_T_STRING, NULL},
    {"coordinator-addr", NK_CLI_T_ADDR, NULL},
    {"metrics-addr", NK_CLI_T_ADDR, NULL},
    COMMON_KEYS,
    {NULL, 0, NULL},
};

const nk_cli_key nk_cli_coordinator_keys[] = {
    {"workdir", NK_CLI_T_STRING, NULL},
    {"addr", NK_CLI_T_ADDR, NULL},
    {"id-start", NK_CLI_T_UINT, NULL},
    {"ts-start", NK_CLI_T_UINT, NULL},
    {"metrics-addr", NK_CLI_T_ADDR, NULL},
    COMMON_KEYS,
    {NULL, 0, NULL},
};

static struct {
    bool loaded;
    char *path;
    nk_config cfg;
    char **argv; /* the expanded argv and the strings it owns */
    char **owned;
    size_t n_owned;
    bool check_only;
} g;

static void release(void)
{
    nk_config_free(&g.cfg);
    for (size_t i = 0; i < g.n_owned; i++) {
        free(g.owned[i]);
    }
    free(g.owned);
    free(g.argv);
    free(g.path);
    memset(&g, 0, sizeof(g));
}

/* The value of --config in argv, or NULL. */
static const char *config_flag(int argc, char **argv)
{
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            return argv[i + 1];
        }
    }
    return NULL;
}

/* Read and parse the file once. 0, or 2 after printing the error. */
static int load(const char *cmd, const char *path, bool quiet)
{
    if (g.loaded) {
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (quiet) {
            return 2;
        }
        fprintf(stderr, "%s: cannot read --config %s: %s\n", cmd, path, strerror(errno));
        return 2;
    }
    char *buf = malloc(MAX_FILE_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, MAX_FILE_BYTES + 1, f) : 0;
    bool err = buf == NULL || ferror(f);
    fclose(f);
    if (quiet && (err || n > MAX_FILE_BYTES)) {
        free(buf);
        return 2;
    }
    if (err || n > MAX_FILE_BYTES) {
        fprintf(stderr, "%s: --config %s: %s\n", cmd, path,
                err ? "read failed" : "larger than 1 MiB");
        free(buf);
        return 2;
    }
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    int rc = nk_config_parse(buf, n, path, &g.cfg, &eb);
    free(buf);
    if (rc != NK_OK && quiet) {
        return 2;
    }
    if (rc != NK_OK) {
        fprintf(stderr, "%s: %s\n", cmd, eb.msg);
        return 2;
    }
    g.path = strdup(path);
    g.loaded = true;
    atexit(release);
    return 0;
}

bool nk_cli_config_has(int argc, char **argv, const char *key)
{
    char flag[NK_CONFIG_KEY_MAX + 3];
    snprintf(flag, sizeof(flag), "--%s", key);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            return true;
        }
    }
    const char *path = config_flag(argc, argv);
    if (path == NULL || load("nokv", path, true) != 0) {
        return false; /* the error is reported again by expand */
    }
    return nk_config_get(&g.cfg, key) != NULL;
}

static bool valid_uint(const char *v, unsigned long long max)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    return v[0] >= '0' && v[0] <= '9' && errno == 0 && *end == '\0' && n >= 1 && n <= max;
}

static bool valid_addr(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v) {
        return false;
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5) {
        return false;
    }
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9') {
            return false;
        }
    }
    return atoi(p) <= 65535;
}

static bool valid_choice(const char *v, const char *choices)
{
    size_t vl = strlen(v);
    const char *p = choices;
    while (*p != '\0') {
        const char *bar = strchr(p, '|');
        size_t l = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0) {
            return true;
        }
        p += l + (bar != NULL ? 1 : 0);
    }
    return false;
}

/* 0 when e is a valid setting for keys, else print why and return 2. */
static int check_entry(const char *cmd, const nk_cli_key *keys, const nk_config_entry *e,
                       const nk_cli_key **out)
{
    const nk_cli_key *k = keys;
    while (k->key != NULL && strcmp(k->key, e->key) != 0) {
        k++;
    }
    if (k->key == NULL) {
        fprintf(stderr, "%s: %s:%u: unknown key '%s'; known keys:", cmd, g.path, e->line, e->key);
        for (const nk_cli_key *q = keys; q->key != NULL; q++) {
            fprintf(stderr, " %s", q->key);
        }
        fprintf(stderr, "\n");
        return 2;
    }
    const char *want = NULL;
    switch (k->type) {
    case NK_CLI_T_STRING:
        break;
    case NK_CLI_T_ADDR:
        want = valid_addr(e->value) ? NULL : "HOST:PORT";
        break;
    case NK_CLI_T_UINT:
        want = valid_uint(e->value, UINT64_MAX) ? NULL : "a positive integer";
        break;
    case NK_CLI_T_MB:
        want = valid_uint(e->value, 65536) ? NULL : "a size in MiB (1..65536)";
        break;
    case NK_CLI_T_ENUM:
        want = valid_choice(e->value, k->choices) ? NULL : k->choices;
        break;
    case NK_CLI_T_BOOL:
        want = valid_choice(e->value, "true|false") ? NULL : "true|false";
        break;
    }
    if (want != NULL) {
        fprintf(stderr, "%s: %s:%u: %s wants %s, got '%s'\n", cmd, g.path, e->line, e->key, want,
                e->value);
        return 2;
    }
    *out = k;
    return 0;
}

static char *own(const char *s)
{
    char *c = strdup(s);
    if (c != NULL) {
        g.owned[g.n_owned++] = c;
    }
    return c;
}

int nk_cli_config_expand(const char *cmd, const nk_cli_key *keys, int *argc, char ***argv)
{
    int in_argc = *argc;
    char **in = *argv;
    const char *path = config_flag(in_argc, in);
    for (int i = 0; i < in_argc; i++) {
        if (strcmp(in[i], "--help") == 0 || strcmp(in[i], "-h") == 0) {
            *argv = &in[i]; /* --help ignores everything else (GNU) */
            *argc = 1;
            return 0;
        }
    }
    for (int i = 0; i < in_argc; i++) {
        if (strcmp(in[i], "--config") == 0 && i + 1 >= in_argc) {
            fprintf(stderr, "%s: --config needs a file\n", cmd);
            return 2;
        }
        if (strcmp(in[i], "--check-config") == 0) {
            g.check_only = true;
        }
    }
    if (path == NULL && !g.check_only) {
        return 0;
    }
    if (path != NULL && load(cmd, path, false) != 0) {
        return 2;
    }
    if (path == NULL) {
        atexit(release);
    }
    size_t cap = (size_t)in_argc + 2 * g.cfg.n + 1;
    g.argv = calloc(cap, sizeof(char *));
    g.owned = calloc(2 * g.cfg.n + 1, sizeof(char *));
    if (g.argv == NULL || g.owned == NULL) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        return 2;
    }
    int n = 0;
    for (size_t i = 0; i < g.cfg.n; i++) {
        const nk_config_entry *e = &g.cfg.entries[i];
        const nk_cli_key *k = NULL;
        if (check_entry(cmd, keys, e, &k) != 0) {
            return 2;
        }
        char flag[NK_CONFIG_KEY_MAX + 3];
        snprintf(flag, sizeof(flag), "--%s", e->key);
        if (k->type == NK_CLI_T_BOOL) {
            if (strcmp(e->value, "true") == 0) {
                g.argv[n++] = own(flag);
            }
            continue;
        }
        g.argv[n++] = own(flag);
        g.argv[n++] = own(e->value);
        if (g.argv[n - 1] == NULL || g.argv[n - 2] == NULL) {
            fprintf(stderr, "%s: out of memory\n", cmd);
            return 2;
        }
    }
    for (int i = 0; i < in_argc; i++) {
        if (strcmp(in[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(in[i], "--check-config") == 0) {
            continue;
        }
        g.argv[n++] = in[i];
    }
    *argc = n;
    *argv = g.argv;
    return 0;
}

bool nk_cli_check_only(void)
{
    return g.check_only;
}

int nk_cli_config_ok(const char *cmd)
{
    if (g.path != NULL) {
        printf("%s: configuration is valid (flags and %s)\n", cmd, g.path);
    } else {
        printf("%s: configuration is valid (flags)\n", cmd);
    }
    return 0;
}
