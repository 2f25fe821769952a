# Real processes on 127.0.0.1: nokv serve driven by redis-cli, SIGKILL + restart.
add_test(NAME integration_serve_redis_cli
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_redis_cli.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_redis_cli PROPERTIES LABELS integration TIMEOUT 300)
# Real client nobody here wrote: redis-py (python3-redis) against nokv serve.
add_test(NAME integration_serve_redis_py
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_redis_py.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_redis_py PROPERTIES LABELS integration TIMEOUT 300)
# Real processes: three `nokv serve --store-id` stores form a cluster; two
# leader SIGKILLs lose no acknowledged write.
add_test(NAME integration_cluster_3stores
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/cluster_3stores.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_cluster_3stores PROPERTIES LABELS integration TIMEOUT 300)

# Real processes: fill through serve + redis-cli, plan (no byte changed), init
# crash + resume, standalone serve refused while preparing/seeded.
add_test(NAME integration_migrate_local
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/migrate_local.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_migrate_local PROPERTIES LABELS integration TIMEOUT 300)

# Oversized requests are refused alone (issue 12, case 1).
add_test(NAME integration_serve_limits
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_limits.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_limits PROPERTIES LABELS integration TIMEOUT 300)

# A removed or truncated WAL segment is refused, repair/--accept-data-loss
# salvage it, nokv check reports it (issue 12, cases 2-4).
add_test(NAME integration_serve_wal_loss
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/serve_wal_loss.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_serve_wal_loss PROPERTIES LABELS integration TIMEOUT 300)

# Real processes: 100,000 keys through a standalone serve, plan, init, the
# seed as store 1, two empty stores, expand (snapshot stream, install before
# publish, learner, catch-up, promote), transfer-leader, remove-peer, every
# key read back through the new leader.
add_test(NAME integration_migrate_flow
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/migrate_flow.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_migrate_flow PROPERTIES LABELS integration TIMEOUT 300)

# Real processes: coordinator + 3 stores; the coordinator's SIGKILL and the
# restart of every store while it is down do not stop serving; `nokv status`
# shows the cluster once it returns.
add_test(NAME integration_cluster_coordinator
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/cluster_coordinator.sh
                 $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_cluster_coordinator PROPERTIES LABELS integration TIMEOUT 120)
# nokv stats: the offline view of stopped workdirs, read-only.
add_test(NAME integration_stats
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/stats.sh $<TARGET_FILE:nokv_cli>)
set_tests_properties(integration_stats PROPERTIES LABELS integration TIMEOUT 120)
