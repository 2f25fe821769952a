# Scenario, determinism and lint checks, run by ctest next to the unit tests.
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})

add_test(NAME lint_determinism COMMAND ${NOKV_SRC}/tools/lint/determinism.sh)
add_test(NAME lint_selftest COMMAND ${NOKV_SRC}/tests/lint_selftest.sh)

# Same seed twice -> same trace hash (separate processes).
add_test(NAME sim_echo_determinism
         COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/echo_flap)
# A seed sweep of the harness scenario must pass.
add_test(NAME sim_echo_sweep
         COMMAND ${NOKV_SIM} --seeds 1..40 --quiet ${NOKV_SRC}/scenarios/echo_flap)
# The checkers can fail: a planted durability bug must be caught (safety = 10)...
add_test(NAME sim_echo_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "durability:" --
                 ${NOKV_SIM} --seeds 1..20 --quiet --set bug=ack-before-sync
                 ${NOKV_SRC}/scenarios/echo_flap)
# ...and a partition that never heals is a liveness failure (= 11).
add_test(NAME sim_echo_liveness_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 11 --grep "progress:" --
                 ${NOKV_SIM} --seed 3 ${NOKV_SRC}/tests/scenarios/echo_never_heals)
# A scenario error names the file, the line and the problem (usage = 2).
add_test(NAME sim_scenario_error
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 2 --grep "bad_syntax:4: 'n9' is not a node" --
                 ${NOKV_SIM} --seed 1 ${NOKV_SRC}/tests/scenarios/bad_syntax)
set_tests_properties(lint_determinism lint_selftest sim_echo_determinism sim_echo_sweep
                     sim_echo_bug_caught sim_echo_liveness_caught sim_scenario_error
                     PROPERTIES LABELS sim TIMEOUT 600)
# The regression corpus: every seed that once found a bug (scenarios/regressions/).
add_test(NAME sim_regressions
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tools/sim/regressions.sh $<TARGET_FILE:nokv-sim>
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios)
set_tests_properties(sim_regressions PROPERTIES LABELS sim TIMEOUT 300)
