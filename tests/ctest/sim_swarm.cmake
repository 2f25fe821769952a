# Swarm runs, the coordinator outage, shrinking and sweep coverage (issue 9;
# docs/simulation.md, "Swarm", "Shrinking", "Coverage"). NOKV_SIM and
# NOKV_SRC are set here too so this file stands alone. Budget: about 40 s of
# CPU together on the 2-core dev machine.
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})

# Same seed twice -> same trace hash (separate processes); seed 2 draws a
# 5-store cluster with a coordinator and failpoints, seed 14 the migration
# lifecycle with coordinator outages.
add_test(NAME sim_swarm_determinism
         COMMAND ${NOKV_SIM} --seed 14 --determinism ${NOKV_SRC}/scenarios/swarm)
add_test(NAME sim_coordinator_outage_determinism
         COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/coordinator_outage)

# Seed sweeps: every one must pass.
add_test(NAME sim_swarm_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 -j 2 --quiet ${NOKV_SRC}/scenarios/swarm)
add_test(NAME sim_coordinator_outage_sweep
         COMMAND ${NOKV_SIM} --seeds 1..20 -j 2 --quiet ${NOKV_SRC}/scenarios/coordinator_outage)

# Coverage: a small swarm sweep must make every listed fault class happen
# and fire (fp:) or reach (hit:) the listed failpoints, else exit 14.
add_test(NAME sim_swarm_coverage
         COMMAND ${NOKV_SIM} --seeds 101..124 -j 2 --quiet --require-cover
                 "fault.power-loss,fault.kill,fault.stop,fault.partition,fault.partition-oneway,fault.link-break,fault.connect-refused,fault.coord-outage,fault.nemesis,disk.write-dropped,disk.write-torn,lifecycle.init,lifecycle.expand,lifecycle.transfer,lifecycle.remove,fp:raftlog.before_sync,fp:raftlog.after_append,fp:wal.append.before,hit:snapshot.install.before_publish,hit:migrate.init.seeded-finalized"
                 ${NOKV_SRC}/scenarios/swarm)
# ...and a name nothing covers is reported missing (exit 14).
add_test(NAME sim_swarm_coverage_missing
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 14 --grep "COVERAGE MISSING: fp:no.such.point" --
                 ${NOKV_SIM} --seeds 1..2 --quiet --require-cover fault.power-loss,fp:no.such.point
                 ${NOKV_SRC}/scenarios/swarm)

# Shrinking: seed 7 with the planted ack-before-commit bug fails (safety);
# the shrinker must find a smaller profile whose replay command still fails
# the same way.
add_test(NAME sim_swarm_shrink
         COMMAND ${NOKV_SRC}/tests/sim_shrink_check.sh ${NOKV_SIM} ${NOKV_SRC}/scenarios/swarm 7 10
                 --set bug=ack-before-commit)

set_tests_properties(sim_swarm_determinism sim_coordinator_outage_determinism sim_swarm_sweep
                     sim_coordinator_outage_sweep sim_swarm_coverage sim_swarm_coverage_missing
                     sim_swarm_shrink PROPERTIES LABELS sim TIMEOUT 600)
