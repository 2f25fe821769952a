# Operator experience (issue 10): the --metrics-addr endpoint of real
# processes, scraped with curl and parsed as Prometheus text.
add_test(NAME integration_metrics
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/metrics.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_metrics PROPERTIES LABELS integration TIMEOUT 120)

# SIGHUP reopens --log-file, JSON log lines, SIGPIPE ignored, systemd
# READY=1 / STOPPING=1 through NOTIFY_SOCKET, graceful SIGTERM.
add_test(NAME integration_signals_logs
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/signals_logs.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_signals_logs PROPERTIES LABELS integration TIMEOUT 120)

# --config FILE (strict, line-numbered errors), precedence flags > file >
# defaults, --check-config exit 0/2.
add_test(NAME integration_config
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/config.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_config PROPERTIES LABELS integration TIMEOUT 120)

# cmake --install into a temp DESTDIR and a temp prefix: the files exist,
# pkg-config reads the installed nokv.pc, the installed binaries run and the
# embedded example builds from the installed header and library.
add_test(NAME integration_install
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/install.sh
                 ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
set_tests_properties(integration_install PROPERTIES LABELS integration TIMEOUT 300)
