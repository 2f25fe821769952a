/*
 * sim.h - the deterministic simulator: many nodes, one process, one seed.
 *
 * A simulation (nk_sim) owns:
 *   - a scheduler: one event queue ordered by (simulated time, sequence);
 *     time jumps straight to the next event; nothing runs concurrently;
 *   - nodes: each with its own nk_rt (the same interface the real runtime
 *     implements), a drifting clock, a simulated disk (sim/disk.h) and an
 *     "app" (the production code under test, booted through start/stop);
 *   - a simulated network of ordered connections with latency (fast
 *     majority, long tail), breaks, one-way and two-way partitions and
 *     connect refusal (sim/net.c);
 *   - faults: node crash (power loss: unsynced disk state resolved by the
 *     seed), kill (process death: disk untouched), graceful stop, restart,
 *     failpoints armed per node and name, disk read corruption / sync failure.
 *
 * Every dispatched event and every log line feeds a running xxhash, the
 * trace hash. Same seed and same binary => same trace hash: that is the
 * determinism contract CI checks. All randomness is drawn from named
 * streams derived from the seed (nk_rand_derive), so adding a consumer does
 * not perturb the others.
 *
 * Crash semantics for code under test: when a node crashes (for instance at
 * a failpoint, in the middle of its own callback), every later runtime call
 * of that node returns NK_ECRASHED and has no effect; once the current event
 * finishes, the simulator calls app->stop(state, true) so the app frees its
 * memory, then discards the node's timers, jobs and connections. An app must
 * therefore be able to free everything it owns, including the arguments of
 * jobs still in flight, from stop().
 */
#ifndef NK_SIM_H
#define NK_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nokv/rt.h"
#include "sim/disk.h"

typedef struct nk_sim nk_sim;

/* Production code under test, as the simulator boots it on a node. */
typedef struct nk_sim_app {
    const char *name;
    /* Boot on `rt` (first start or restart after a crash). `cfg` is the
     * scenario's per-node configuration. On success store the app state. */
    int (*start)(nk_rt *rt, void *cfg, void **state);
    /* Free everything. crashed: the node died (no I/O works any more);
     * otherwise the app asked to stop (nk_rt_stop) and may already be idle. */
    void (*stop)(void *state, bool crashed);
} nk_sim_app;

/* A probability as a rational: num/den; den == 0 means never. */
typedef struct nk_ratio {
    uint64_t num;
    uint64_t den;
} nk_ratio;

typedef struct nk_sim_config {
    uint64_t seed;
    FILE *trace_out; /* non-NULL: print every event (nokv-sim --trace) */

    /* Network latency per message: uniform in [lat_min, lat_max], except with
     * probability `tail` uniform in [tail_min, tail_max]. Order per
     * connection is preserved regardless. */
    uint64_t lat_min_ns, lat_max_ns;
    nk_ratio tail;
    uint64_t tail_min_ns, tail_max_ns;
    uint64_t connect_timeout_ns; /* connect across a partition fails after this */

    /* Background jobs: work runs uniformly in [job_min, job_max] after submit. */
    uint64_t job_min_ns, job_max_ns;

    /* Per-node clock drift, uniform in [-drift_ppm_max, +drift_ppm_max]. */
    uint32_t drift_ppm_max;

    /* Disk: sector size for torn writes, and how a power loss resolves each
     * unsynced operation (applied, dropped, torn; see sim/disk.h). */
    uint32_t sector_size;
    nk_simdisk_crash_policy crash_policy;

    nk_log_level log_level; /* node log lines below this are not traced */
} nk_sim_config;

/* Fill cfg with the defaults documented in docs/simulation.md. */
void nk_sim_config_default(nk_sim_config *cfg, uint64_t seed);

nk_sim *nk_sim_new(const nk_sim_config *cfg);

/* Crash-stops every node still running (apps get stop(crashed=true)) and frees. */
void nk_sim_free(nk_sim *s);

/* ------------------------------------------------------------- nodes --- */

/* Add a node named `name` ("n1"); it is down until nk_sim_node_start.
 * Node ids are 1-based in order of addition. `cfg` is passed to app->start. */
int nk_sim_add_node(nk_sim *s, const char *name, const nk_sim_app *app, void *cfg,
                    uint32_t *node_id);

uint32_t nk_sim_node_count(nk_sim *s);
uint32_t nk_sim_node_by_name(nk_sim *s, const char *name); /* 0 if unknown */
const char *nk_sim_node_name(nk_sim *s, uint32_t node);
bool nk_sim_node_up(nk_sim *s, uint32_t node);
void *nk_sim_node_state(nk_sim *s, uint32_t node); /* app state, NULL when down */
nk_rt *nk_sim_node_rt(nk_sim *s, uint32_t node);
struct nk_simdisk *nk_sim_node_disk(nk_sim *s, uint32_t node);

/* Boot (or reboot) a node that is down. Returns app->start's result. */
int nk_sim_node_start(nk_sim *s, uint32_t node);

/* Power loss: unsynced disk state is resolved by the seed, memory is lost. */
void nk_sim_node_crash(nk_sim *s, uint32_t node);

/* Process death: memory lost, the disk keeps everything written so far. */
void nk_sim_node_kill(nk_sim *s, uint32_t node);

/* Graceful stop: runs the node's shutdown handler (or stops it at once). */
void nk_sim_node_stop(nk_sim *s, uint32_t node);

/* --------------------------------------------------------- scheduler --- */

typedef void (*nk_sim_fn)(nk_sim *s, void *arg);

/* Run fn(s, arg) at global simulated time t (not tied to a node). */
void nk_sim_at(nk_sim *s, uint64_t t_ns, const char *label, nk_sim_fn fn, void *arg);

/* Dispatch events in order until the next one is later than t_ns or the
 * simulation has been halted. Time ends at t_ns. Returns events dispatched. */
uint64_t nk_sim_run_until(nk_sim *s, uint64_t t_ns);

/* Stop dispatching (a checker found a violation). */
void nk_sim_halt(nk_sim *s);
bool nk_sim_halted(nk_sim *s);

uint64_t nk_sim_now(nk_sim *s); /* global simulated time, ns */
uint64_t nk_sim_events(nk_sim *s);
uint64_t nk_sim_trace_hash(nk_sim *s);
uint64_t nk_sim_seed(nk_sim *s);

/* Add a line to the trace (and the hash); printf-style. */
void nk_sim_trace(nk_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print the last `n` trace lines kept in memory (for failure reports). */
void nk_sim_trace_tail(nk_sim *s, FILE *out, unsigned n);

/* A named random stream of the simulator itself (faults, workload). */
void nk_sim_rand_stream(nk_sim *s, const char *name, nk_rand *out);

/* ----------------------------------------------------------- network --- */

/* Block delivery from a to b (and b to a unless oneway). Messages sent into a
 * blocked direction are held, as TCP would retransmit them, and delivered in
 * order after the heal; connects across a partition time out. */
void nk_sim_net_partition(nk_sim *s, uint32_t a, uint32_t b, bool oneway);
void nk_sim_net_heal(nk_sim *s, uint32_t a, uint32_t b);
void nk_sim_net_heal_all(nk_sim *s);
bool nk_sim_net_blocked(nk_sim *s, uint32_t from, uint32_t to);

/* Break every connection between a and b (both directions); in-flight data
 * is lost and both ends see on_close(NK_ECLOSED). b == 0: all of a's links. */
void nk_sim_net_break(nk_sim *s, uint32_t a, uint32_t b);

/* Refuse new connects between a and b until the time given (flap). */
void nk_sim_net_refuse_until(nk_sim *s, uint32_t a, uint32_t b, uint64_t until_ns);

/* --------------------------------------------------------- failpoints --- */

typedef enum nk_sim_fp_action {
    NK_SIM_FP_OFF = 0,
    NK_SIM_FP_ERROR = 1, /* nk_failpoint returns NK_EFAILPOINT */
    NK_SIM_FP_CRASH = 2, /* the node loses power at that point */
    NK_SIM_FP_KILL = 3,  /* the process dies at that point (disk kept) */
} nk_sim_fp_action;

/* Arm `name` on `node` (0 = every node): the next `count` hits (0 = all)
 * each fire with probability `prob` ({0,0} or {1,1} = always). */
int nk_sim_failpoint_arm(nk_sim *s, uint32_t node, const char *name, nk_sim_fp_action action,
                         uint32_t count, nk_ratio prob);

/* Hits and fires of a failpoint name across all nodes (for coverage). */
void nk_sim_failpoint_stats(nk_sim *s, const char *name, uint64_t *hits, uint64_t *fired);

/* Print armed failpoints that never fired (a fault that never fires looks
 * like a passing test). Returns how many. */
unsigned nk_sim_failpoint_report_unfired(nk_sim *s, FILE *out);

/* -------------------------------------------------------------- disk --- */

/* Read corruption (one flipped bit in returned data) and sync failure rates
 * for a node's disk (0 = every node). */
void nk_sim_disk_faults(nk_sim *s, uint32_t node, nk_ratio read_corrupt, nk_ratio sync_fail);

/* ----------------------------------------------------------- coverage --- */

/* Count `n` hits of a coverage marker (a fault class that really happened,
 * a rare path): the simulator marks its own faults ("fault.power-loss",
 * "fault.partition", "disk.write-torn", ...), workloads add theirs. A sweep
 * adds them up, so a fault class that never happened is visible instead of
 * looking like a pass. Markers never touch the trace hash. */
void nk_sim_cover(nk_sim *s, const char *name, uint64_t n);

/* This run's coverage, one record per line, in a fixed order:
 *   fp NAME HITS FIRED ARMED   (per failpoint name hit or armed; ARMED 1/0)
 *   mark NAME COUNT            (markers, with the disks' read corruptions
 *                               and sync failures added here) */
void nk_sim_coverage_write(nk_sim *s, FILE *out);

#endif /* NK_SIM_H */
