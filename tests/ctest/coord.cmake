# Real `nokv coordinator` process: start, restore, one owner per workdir, SIGTERM.
add_test(NAME integration_coordinator
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/coordinator.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_coordinator PROPERTIES LABELS integration TIMEOUT 120)
