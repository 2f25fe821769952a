# The engine under simulated power loss (scenarios/engine_crash).
add_test(NAME sim_engine_crash_sweep
         COMMAND $<TARGET_FILE:nokv-sim> --seeds 1..40 --quiet
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/engine_crash)
add_test(NAME sim_engine_crash_determinism
         COMMAND $<TARGET_FILE:nokv-sim> --seed 3 --determinism
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/engine_crash)
# The durability checker can fail: acknowledging before the WAL sync is caught.
add_test(NAME sim_engine_bug_caught
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/expect_exit.sh 10 --grep "durability:" --
                 $<TARGET_FILE:nokv-sim> --seeds 1..10 --quiet --set bug=skip-wal-sync
                 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/engine_crash)
set_tests_properties(sim_engine_crash_sweep sim_engine_crash_determinism sim_engine_bug_caught
                     PROPERTIES LABELS sim TIMEOUT 600)
# Each missing sync of the engine's durability protocol, planted on purpose
# (nokv/engine/bugs.h), must make the crash scenario fail within 16 seeds:
# the scenario crashes between every pair of durability steps (issue 12).
foreach(bug skip-manifest-sync skip-current-dirsync skip-wal-open-dirsync skip-wal-repair-sync
            skip-table-sync)
    add_test(NAME sim_engine_planted_${bug}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/expect_exit.sh 10 --grep "FAIL scenario=" --
                     $<TARGET_FILE:nokv-sim> --seeds 1..16 --quiet --set bug=${bug}
                     ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/engine_crash)
    set_tests_properties(sim_engine_planted_${bug} PROPERTIES LABELS sim TIMEOUT 300)
endforeach()
