# The distributed-mode server under the simulator (workload `cluster`,
# sim/cluster_node.c + sim/cluster_world.c; docs/simulation.md, section
# `cluster`). NOKV_SIM and NOKV_SRC are set here too so this file stands alone.
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})

# Same seed twice -> same trace hash (separate processes).
add_test(NAME sim_cluster_determinism
         COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/cluster_chaos)

# The smoke test and the fault sweep must pass.
add_test(NAME sim_cluster_basic
         COMMAND ${NOKV_SIM} --seeds 1..20 --quiet ${NOKV_SRC}/scenarios/cluster_basic)
add_test(NAME sim_cluster_sweep
         COMMAND ${NOKV_SIM} --seeds 1..150 --quiet ${NOKV_SRC}/scenarios/cluster_chaos)
add_test(NAME sim_cluster_hot_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 --quiet ${NOKV_SRC}/scenarios/cluster_chaos_hot)
add_test(NAME sim_cluster5_sweep
         COMMAND ${NOKV_SIM} --seeds 1..30 --quiet ${NOKV_SRC}/scenarios/cluster_chaos_5)

# The checkers can fail: with the test-only ack-before-commit switch (the
# cluster backend replies OK when a write is proposed, not once it applied)
# the sweep must report a safety violation (exit 10): a write acknowledged by
# a leader that died before replicating it is missing from later reads.
add_test(NAME sim_cluster_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "linearizability:" --
                 ${NOKV_SIM} --seeds 1..30 --quiet --set bug=ack-before-commit
                 ${NOKV_SRC}/scenarios/cluster_chaos)

# ...and the liveness checks can fail: no operation completes within an
# impossible bound of 1 ms (exit 11).
add_test(NAME sim_cluster_liveness_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 11 --grep "progress:" --
                 ${NOKV_SIM} --seed 1 --set within=1ms ${NOKV_SRC}/scenarios/cluster_chaos)

set_tests_properties(sim_cluster_determinism sim_cluster_basic sim_cluster_sweep sim_cluster_hot_sweep
                     sim_cluster5_sweep
                     sim_cluster_bug_caught sim_cluster_liveness_caught
                     PROPERTIES LABELS sim TIMEOUT 600)

# Power losses on every node, alone and all at once, with torn and dropped
# unsynced writes (issue 9: lost_unsynced_writes), and a store that is down
# for a long stretch and must catch up from the log (restarted_follower_recovery).
add_test(NAME sim_lost_unsynced_writes_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 --quiet ${NOKV_SRC}/scenarios/lost_unsynced_writes)
add_test(NAME sim_restarted_follower_sweep
         COMMAND ${NOKV_SIM} --seeds 1..40 --quiet ${NOKV_SRC}/scenarios/restarted_follower_recovery)
# ...where the planted ack-before-commit bug must be caught as well.
add_test(NAME sim_lost_unsynced_writes_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "FAIL scenario=" --
                 ${NOKV_SIM} --seeds 1..20 --quiet --set bug=ack-before-commit
                 ${NOKV_SRC}/scenarios/lost_unsynced_writes)
set_tests_properties(sim_lost_unsynced_writes_sweep sim_restarted_follower_sweep
                     sim_lost_unsynced_writes_bug_caught PROPERTIES LABELS sim TIMEOUT 600)
# The standalone `nokv serve` stack (nk_standalone + RESP clients) under
# power losses, kills, a graceful stop and crash failpoints (issue 9:
# standalone_serve).
add_test(NAME sim_standalone_serve_sweep
         COMMAND ${NOKV_SIM} --seeds 1..80 --quiet ${NOKV_SRC}/scenarios/standalone_serve)
set_tests_properties(sim_standalone_serve_sweep PROPERTIES LABELS sim TIMEOUT 300)
# A store cut off while the others compact their raft logs past it catches
# up by an engine snapshot (raft descriptor + SST stream, nokv/store/
# snapfetch.h), crashing at each step of the fetch once, with flapping links
# and a second store left behind later (scenarios/snapshot_catchup).
add_test(NAME sim_snapshot_catchup_sweep
         COMMAND ${NOKV_SIM} --seeds 1..30 --quiet ${NOKV_SRC}/scenarios/snapshot_catchup)
add_test(NAME sim_snapshot_catchup_determinism
         COMMAND ${NOKV_SIM} --seed 5 --determinism ${NOKV_SRC}/scenarios/snapshot_catchup)
set_tests_properties(sim_snapshot_catchup_sweep sim_snapshot_catchup_determinism
                     PROPERTIES LABELS sim TIMEOUT 300)
