# Real processes on 127.0.0.1: nokv serve driven by redis-cli, SIGKILL + restart.
add_test(NAME integration_serve_redis_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_redis_cli.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_redis_cli PROPERTIES LABELS integration TIMEOUT 300)

# Oversized requests are refused alone (issue 12, case 1).
add_test(NAME integration_serve_limits
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_limits.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_limits PROPERTIES LABELS integration TIMEOUT 300)
