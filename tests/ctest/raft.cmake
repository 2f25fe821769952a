# Raft under the simulator (workload `raft`, sim/raft_node.c + sim/raft_world.c;
# docs/simulation.md, section `raft`). NOKV_SIM and NOKV_SRC come from sim.cmake
# when it was included first; set them here too so this file stands alone.
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})

# Same seed twice -> same trace hash, for both group sizes.
add_test(NAME sim_raft_determinism
         COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/raft_chaos)
add_test(NAME sim_raft5_determinism
         COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/raft_chaos_5)

# The default sweep: 3 voters + learner + spare, and 5 voters + spare. Two
# tests so ctest -j2 runs them side by side.
add_test(NAME sim_raft_sweep
         COMMAND ${NOKV_SIM} --seeds 1..300 --quiet ${NOKV_SRC}/scenarios/raft_chaos)
add_test(NAME sim_raft5_sweep
         COMMAND ${NOKV_SIM} --seeds 1..200 --quiet ${NOKV_SRC}/scenarios/raft_chaos_5)

# The checkers can fail: with the test-only broken commit rule (a leader
# commits earlier-term entries by counting replicas, thesis figure 3.7) the
# same sweeps must report a safety violation (exit 10): a committed entry
# was later overwritten.
add_test(NAME sim_raft_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "committed entry changed" --
                 ${NOKV_SIM} --seeds 1..100 --quiet --set bug=commit-prev-term
                 ${NOKV_SRC}/scenarios/raft_chaos)
add_test(NAME sim_raft5_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "committed entry changed" --
                 ${NOKV_SIM} --seeds 1..100 --quiet --set bug=commit-prev-term
                 ${NOKV_SRC}/scenarios/raft_chaos_5)

# ...and the liveness check can fail: no client operation completes within
# an impossible bound of 1 ms (exit 11).
add_test(NAME sim_raft_liveness_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 11 --grep "progress:" --
                 ${NOKV_SIM} --seed 1 --set within=1ms ${NOKV_SRC}/scenarios/raft_chaos)

set_tests_properties(sim_raft_determinism sim_raft5_determinism sim_raft_sweep sim_raft5_sweep
                     sim_raft_bug_caught sim_raft5_bug_caught sim_raft_liveness_caught
                     PROPERTIES LABELS sim TIMEOUT 600)
