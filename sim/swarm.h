/*
 * swarm.h - swarm profiles: the seed picks what a run looks like.
 *
 * A scenario file with a `swarm [knob=value...]` line (scenarios/swarm)
 * has no fixed workload: for each seed, nk_swarm_profile draws a profile
 * (cluster size, which fault classes are on and how often, workload mix,
 * which lifecycle steps run) from its own stream of the seed, then applies
 * the file's and --set's knob overrides on top, and nk_swarm_generate turns
 * the profile into ordinary scenario text for the cluster or migration
 * workload (parsed and run like any file). So a run is reproducible from
 * seed + overrides, and shrinking is just overriding knobs with smaller
 * values (nk_swarm_shrink_candidates).
 *
 * Knobs (docs/simulation.md, "Swarm"): world nodes power crash kill stop
 * partition oneway flap nemesis failpoints disk-faults drift coordinator
 * coord-outage clients keys incr get ops standalone until crash-init
 * interrupt.
 */
#ifndef NK_SIM_SWARM_H
#define NK_SIM_SWARM_H

#include <stddef.h>
#include <stdint.h>

/* NK_OK: `key` is a knob and `value` fits it; NK_EINVAL: a knob, bad value;
 * NK_ENOENT: not a knob (a workload option to pass through). */
int nk_swarm_check_knob(const char *key, const char *value);

/* The profile of `seed` with n overrides applied in order (last wins), as
 * "knob=value ..." with every knob (a --set list reproduces it). Returns
 * its weight: a size measure the shrinker minimises (faults, nodes, ops,
 * lifecycle steps). */
unsigned nk_swarm_profile(uint64_t seed, const char (*keys)[32], const char (*vals)[64], unsigned n,
                          char *buf, size_t len);

/* The scenario text of that profile (malloc'd, NUL-terminated) or NULL. */
char *nk_swarm_generate(uint64_t seed, const char (*keys)[32], const char (*vals)[64], unsigned n);

/* Overrides that make the profile smaller, most promising first, as
 * "knob=value" strings; returns how many were written (at most max). */
unsigned nk_swarm_shrink_candidates(uint64_t seed, const char (*keys)[32], const char (*vals)[64],
                                    unsigned n, char (*out)[96], unsigned max);

#endif /* NK_SIM_SWARM_H */
