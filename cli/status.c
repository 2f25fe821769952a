/*
 * status.c - `nokv status --addr COORDINATOR [-o table|json]`: the cluster
 * as the coordinator sees it. Stores (address, alive/down, heartbeat age,
 * region and leader counts) from ListStores; regions (range, epoch, leader,
 * peers with their roles, term, applied index) from ListRegions, every page
 * in key order.
 *
 * The coordinator only knows what stores reported: a region shows the
 * leader that last reported it. Exit status: 0 when the coordinator
 * answered, 1 when it could not be asked (with what to check), 2 for a
 * usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/rt_real.h"
#include "nokv/coord/client.h"

typedef struct call {
    int done;
    int status;
    char msg[NK_COORD_MSG_MAX];
    nk_coord_resp resp; /* lists copied here; freed by the caller */
} call;

static void call_cb(void *arg, int status, const nk_coord_resp *resp)
{
    call *sc = arg;
    sc->done = 1;
    sc->status = status;
    if (resp == NULL) {
        return;
    }
    /* The lists belong to the client until we return: copy them. */
    sc->resp = *resp;
    sc->resp.stores = NULL;
    sc->resp.regions = NULL;
    sc->resp.n_stores = 0;
    sc->resp.n_regions = 0;
    snprintf(sc->msg, sizeof(sc->msg), "%s", resp->msg);
    if (resp->n_stores > 0) {
        sc->resp.stores = malloc(resp->n_stores * sizeof(*resp->stores));
        if (sc->resp.stores == NULL) {
            sc->status = NK_ENOMEM;
            return;
        }
        memcpy(sc->resp.stores, resp->stores, resp->n_stores * sizeof(*resp->stores));
        sc->resp.n_stores = resp->n_stores;
    }
    if (resp->n_regions > 0) {
        sc->resp.regions = malloc(resp->n_regions * sizeof(*resp->regions));
        if (sc->resp.regions == NULL) {
            sc->status = NK_ENOMEM;
            return;
        }
        memcpy(sc->resp.regions, resp->regions, resp->n_regions * sizeof(*resp->regions));
        sc->resp.n_regions = resp->n_regions;
    }
}

/* Send q and run the loop until it completes; the client's request timeout
 * (3 s) bounds the wait, the iteration cap is a second bound. */
static int call_wait(nk_rt *rt, nk_coord_client *c, nk_coord_req *q, call *sc)
{
    memset(sc, 0, sizeof(*sc));
    int rc = nk_coord_call(c, q, call_cb, sc);
    for (int i = 0; rc == NK_OK && i < 1000 && !sc->done; i++) {
        rc = nk_rt_run_once(rt, 10 * NK_NSEC_PER_MSEC);
    }
    if (rc != NK_OK) {
        return rc;
    }
    return sc->done ? sc->status : NK_ETIMEDOUT;
}

/* Keys as text, bytes outside printable ASCII as \xNN (json: a string
 * with the same escapes spelled \u00NN). */
static void put_key(const uint8_t *k, uint32_t len, bool json)
{
    if (json) {
        putchar('"');
    }
    if (len == 0 && !json) {
        printf("\"\"");
    }
    for (uint32_t i = 0; i < len; i++) {
        if (k[i] >= 0x21 && k[i] < 0x7f && k[i] != '\\' && k[i] != '"') {
            putchar(k[i]);
        } else if (json) {
            printf("\\u%04x", k[i]);
        } else {
            printf("\\x%02x", k[i]);
        }
    }
    if (json) {
        putchar('"');
    }
}

static const char *role_name(uint8_t role)
{
    return role == NK_RAFT_LEARNER ? "learner" : role == NK_RAFT_VOTER ? "voter" : "unknown";
}

static void print_table(const nk_coord_resp *stores, const nk_coord_region_info *regions,
                        size_t n_regions)
{
    printf("STORES %zu\n", stores->n_stores);
    printf("  %-8s %-24s %-6s %-12s %-8s %s\n", "STORE", "ADDRESS", "STATE", "HEARTBEAT", "REGIONS",
           "LEADERS");
    for (size_t i = 0; i < stores->n_stores; i++) {
        const nk_coord_store_info *st = &stores->stores[i];
        char age[32];
        if (st->heartbeat_age_ms == NK_COORD_AGE_NEVER) {
            snprintf(age, sizeof(age), "never");
        } else {
            snprintf(age, sizeof(age), "%" PRIu64 "ms ago", st->heartbeat_age_ms);
        }
        printf("  %-8" PRIu64 " %-24s %-6s %-12s %-8" PRIu64 " %" PRIu64 "\n", st->store_id,
               st->addr, st->alive ? "alive" : "down", age, st->region_count, st->leader_count);
    }
    printf("REGIONS %zu\n", n_regions);
    for (size_t i = 0; i < n_regions; i++) {
        const nk_coord_region_info *ri = &regions[i];
        const nk_region *r = &ri->r.region;
        printf("  region %" PRIu64 "  range [", r->id);
        put_key(r->start, r->start_len, false);
        printf(", ");
        put_key(r->end, r->end_len, false);
        printf(")  epoch %" PRIu64 "/%" PRIu64 "  term %" PRIu64 "  applied %" PRIu64 "\n",
               r->epoch.version, r->epoch.conf_version, ri->r.term, ri->r.applied_index);
        if (ri->r.leader_store_id != 0) {
            printf("    leader store %" PRIu64 " peer %" PRIu64 " %s\n", ri->r.leader_store_id,
                   ri->r.leader_peer_id, ri->leader_addr[0] ? ri->leader_addr : "-");
        } else {
            printf("    leader unknown\n");
        }
        for (uint32_t p = 0; p < r->n_peers; p++) {
            const nk_region_peer *pe = &r->peers[p];
            printf("    peer %" PRIu64 " on store %" PRIu64 "  %s%s\n", pe->peer_id, pe->store_id,
                   role_name(pe->role), pe->peer_id == ri->r.leader_peer_id ? "  leader" : "");
        }
    }
}

static void print_json(const char *addr, const nk_coord_resp *stores,
                       const nk_coord_region_info *regions, size_t n_regions)
{
    printf("{\"coordinator\":\"%s\",\"stores\":[", addr);
    for (size_t i = 0; i < stores->n_stores; i++) {
        const nk_coord_store_info *st = &stores->stores[i];
        printf("%s{\"store_id\":%" PRIu64 ",\"addr\":\"%s\",\"alive\":%s,\"heartbeat_age_ms\":",
               i ? "," : "", st->store_id, st->addr, st->alive ? "true" : "false");
        if (st->heartbeat_age_ms == NK_COORD_AGE_NEVER) {
            printf("null");
        } else {
            printf("%" PRIu64, st->heartbeat_age_ms);
        }
        printf(",\"region_count\":%" PRIu64 ",\"leader_count\":%" PRIu64 ",\"capacity\":%" PRIu64
               ",\"available\":%" PRIu64 "}",
               st->region_count, st->leader_count, st->capacity, st->available);
    }
    printf("],\"regions\":[");
    for (size_t i = 0; i < n_regions; i++) {
        const nk_coord_region_info *ri = &regions[i];
        const nk_region *r = &ri->r.region;
        printf("%s{\"region_id\":%" PRIu64 ",\"start\":", i ? "," : "", r->id);
        put_key(r->start, r->start_len, true);
        printf(",\"end\":");
        put_key(r->end, r->end_len, true);
        printf(",\"epoch\":{\"version\":%" PRIu64 ",\"conf_version\":%" PRIu64 "}"
               ",\"term\":%" PRIu64 ",\"applied_index\":%" PRIu64 ",\"leader_store_id\":%" PRIu64
               ",\"leader_peer_id\":%" PRIu64 ",\"leader_addr\":\"%s\",\"peers\":[",
               r->epoch.version, r->epoch.conf_version, ri->r.term, ri->r.applied_index,
               ri->r.leader_store_id, ri->r.leader_peer_id, ri->leader_addr);
        for (uint32_t p = 0; p < r->n_peers; p++) {
            const nk_region_peer *pe = &r->peers[p];
            printf("%s{\"peer_id\":%" PRIu64 ",\"store_id\":%" PRIu64 ",\"role\":\"%s\"}",
                   p ? "," : "", pe->peer_id, pe->store_id, role_name(pe->role));
        }
        printf("]}");
    }
    printf("]}\n");
}

static void usage(FILE *out)
{
    fprintf(out, "usage: nokv status --addr HOST:PORT [-o table|json]\n"
                 "\n"
                 "Print the cluster as the coordinator at HOST:PORT knows it: every store\n"
                 "(address, alive or down, heartbeat age, region and leader counts) and every\n"
                 "region (range, epoch, term, leader, peers with their roles), in key order.\n"
                 "\n"
                 "  --addr HOST:PORT   the coordinator (default 127.0.0.1:2379)\n"
                 "  -o table|json      output format (default table)\n");
}

int nk_cli_status(int argc, char **argv)
{
    const char *addr = "127.0.0.1:2379";
    bool json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "nokv status: %s needs a value (see nokv status --help)\n", a);
            return 2;
        }
        if (strcmp(a, "--addr") == 0) {
            addr = v;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (strcmp(v, "json") == 0) {
                json = true;
            } else if (strcmp(v, "table") != 0) {
                fprintf(stderr, "nokv status: -o wants table or json, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "nokv status: unknown option '%s' (see nokv status --help)\n", a);
            return 2;
        }
        i++;
    }
    nk_rt_real_config rc;
    memset(&rc, 0, sizeof(rc));
    rc.log_level = NK_LOG_ERROR;
    rc.no_signals = true;
    nk_rt *rt = NULL;
    if (nk_rt_real_new(&rc, &rt) != NK_OK) {
        fprintf(stderr, "nokv status: cannot start the runtime\n");
        return 1;
    }
    nk_coord_client_config cc;
    memset(&cc, 0, sizeof(cc));
    cc.addr = addr;
    nk_coord_client *c = NULL;
    nk_errbuf eb;
    memset(&eb, 0, sizeof(eb));
    if (nk_coord_client_new(rt, &cc, &c, &eb) != NK_OK) {
        fprintf(stderr, "nokv status: %s\n", eb.msg);
        nk_rt_real_free(rt);
        return 2;
    }
    static call sc;
    static nk_coord_req q;
    memset(&q, 0, sizeof(q));
    q.op = NK_COORD_LIST_STORES;
    int err = call_wait(rt, c, &q, &sc);
    nk_coord_resp stores = sc.resp;
    if (err != NK_OK) {
        memset(&stores, 0, sizeof(stores));
        nk_coord_resp_free(&sc.resp);
    }
    /* regions, one page at a time, in key order */
    static uint8_t next[NK_REGION_KEY_MAX];
    size_t next_len = 0, n_regions = 0;
    nk_coord_region_info *regions = NULL;
    bool more = err == NK_OK;
    for (int page = 0; more && page < 4096; page++) {
        memset(&q, 0, sizeof(q));
        q.op = NK_COORD_LIST_REGIONS;
        q.key = next;
        q.key_len = next_len;
        q.limit = NK_COORD_LIST_MAX;
        err = call_wait(rt, c, &q, &sc);
        if (err != NK_OK) {
            nk_coord_resp_free(&sc.resp);
            break;
        }
        nk_coord_region_info *grown =
            realloc(regions, (n_regions + sc.resp.n_regions + 1) * sizeof(*regions));
        if (grown == NULL) {
            err = NK_ENOMEM;
            nk_coord_resp_free(&sc.resp);
            break;
        }
        regions = grown;
        memcpy(regions + n_regions, sc.resp.regions, sc.resp.n_regions * sizeof(*regions));
        n_regions += sc.resp.n_regions;
        more = sc.resp.more && sc.resp.n_regions > 0;
        if (more) {
            const nk_region *last = &sc.resp.regions[sc.resp.n_regions - 1].r.region;
            more = last->end_len > 0;
            memcpy(next, last->end, last->end_len);
            next_len = last->end_len;
        }
        nk_coord_resp_free(&sc.resp);
    }
    nk_coord_client_free(c);
    nk_rt_real_free(rt);
    if (err == NK_OK) {
        if (json) {
            print_json(addr, &stores, regions, n_regions);
        } else {
            print_table(&stores, regions, n_regions);
        }
    }
    nk_coord_resp_free(&stores);
    free(regions);
    if (err != NK_OK) {
        if (sc.msg[0] != '\0') {
            fprintf(stderr, "nokv status: coordinator %s: %s\n", addr, sc.msg);
        } else if (err == NK_EAGAIN || err == NK_ETIMEDOUT) {
            fprintf(stderr,
                    "nokv status: no coordinator answers at %s (%s): is `nokv coordinator` "
                    "running there? A store's --addr is not enough: pass the address the "
                    "stores got as --coordinator-addr\n",
                    addr, nk_errname(err));
        } else {
            fprintf(stderr, "nokv status: coordinator %s: %s\n", addr, nk_strerror(err));
        }
        return 1;
    }
    return 0;
}
