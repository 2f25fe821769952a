/*
 * scenario.h - scenario files: parse once, run for any seed.
 *
 * The format is documented in docs/simulation.md. A scenario names a
 * workload, the number of nodes, simulator knobs (network, clock, disk),
 * timed fault steps, seeded random faults and timed checks. Running it for a
 * seed builds a fresh nk_sim, so runs never share state.
 */
#ifndef NK_SIM_SCENARIO_H
#define NK_SIM_SCENARIO_H

#include <stdio.h>

#include "sim/workload.h"

typedef struct nk_scenario nk_scenario;

/* Parse `path`. On error returns NK_EINVAL (or NK_ENOENT) and writes
 * "file:line: what is wrong" into eb. */
int nk_scenario_load(const char *path, nk_scenario **out, nk_errbuf *eb);

/* Parse scenario text (for tests); `name` labels errors. */
int nk_scenario_parse(const char *name, const char *text, nk_scenario **out, nk_errbuf *eb);

void nk_scenario_free(nk_scenario *sc);

const char *nk_scenario_name(const nk_scenario *sc);

/* Apply `key=value` as if the file had `option key=value` (nokv-sim --set). */
int nk_scenario_set_option(nk_scenario *sc, const char *kv, nk_errbuf *eb);

typedef struct nk_scenario_outcome {
    nk_sim_result result;
    uint64_t trace_hash;
    uint64_t events;
    uint64_t sim_ns;
    unsigned unfired_failpoints;
    char profile[512]; /* swarm scenarios: the run's profile ("knob=value ...") */
} nk_scenario_outcome;

/* Run the scenario for `seed`. trace_out non-NULL prints every event; on
 * failure the last events are printed to `report` (may be NULL). */
void nk_scenario_run(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                     nk_scenario_outcome *out);

/* The same, also writing the run's coverage records (nk_sim_coverage_write)
 * to `coverage` when it is not NULL. */
void nk_scenario_run_cov(const nk_scenario *sc, uint64_t seed, FILE *trace_out, FILE *report,
                         FILE *coverage, nk_scenario_outcome *out);

/* A swarm file (a `swarm` line instead of a workload). */
bool nk_scenario_is_swarm(const nk_scenario *sc);

/* The profile of `seed` with the scenario's overrides ("knob=value ...",
 * empty for other scenarios); returns its weight (0 for other scenarios). */
unsigned nk_scenario_profile(const nk_scenario *sc, uint64_t seed, char *buf, size_t len);

/* --set candidates that make a run of `seed` smaller (shrinking). */
unsigned nk_scenario_shrink_candidates(const nk_scenario *sc, uint64_t seed, char (*out)[96],
                                       unsigned max);

/* "10ms", "2s", "500us", "7ns", "1m" -> nanoseconds. */
int nk_sim_parse_duration(const char *text, uint64_t *ns);

#endif /* NK_SIM_SCENARIO_H */
