# Real `nokv coordinator` process: start, restore, one owner per workdir, SIGTERM.
add_test(NAME integration_coordinator
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/coordinator.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_coordinator PROPERTIES LABELS integration TIMEOUT 120)

# The coordinator under the simulator (workload `coord`, sim/coord_wl.c).
add_test(NAME sim_coord_sweep
         COMMAND $<TARGET_FILE:nokv-sim> --seeds 1..200 --quiet
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/coord_crash)
add_test(NAME sim_coord_determinism
         COMMAND $<TARGET_FILE:nokv-sim> --seed 5 --determinism
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/coord_crash)
# The uniqueness checker can fail: answering before the fence is durable
# hands out a number twice after a power loss (exit 10, safety).
add_test(NAME sim_coord_bug_caught
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/expect_exit.sh 10 --grep "alloc:" --
                 $<TARGET_FILE:nokv-sim> --seeds 1..20 --quiet --set bug=reply-before-fence
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/coord_crash)
set_tests_properties(sim_coord_sweep sim_coord_determinism sim_coord_bug_caught
                     PROPERTIES LABELS sim TIMEOUT 600)
