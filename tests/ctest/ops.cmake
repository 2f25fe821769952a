# Operator experience (issue 10): the --metrics-addr endpoint of real
# processes, scraped with curl and parsed as Prometheus text.
add_test(NAME integration_metrics
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/metrics.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_metrics PROPERTIES LABELS integration TIMEOUT 120)
