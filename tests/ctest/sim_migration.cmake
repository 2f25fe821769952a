# The standalone -> seed -> cluster lifecycle under the simulator (workload
# `migration`, sim/migration_node.c + sim/migration_world.c over the cluster
# workload's clients and checkers; docs/simulation.md, section `migration`).
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})

# Same seed twice -> same trace hash (separate processes), per scenario.
foreach(sc migration_flow crash_mid_init interrupt_before_publish transport_flap
           removed_peer_restart)
  add_test(NAME sim_${sc}_determinism
           COMMAND ${NOKV_SIM} --seed 7 --determinism ${NOKV_SRC}/scenarios/${sc})
  set_tests_properties(sim_${sc}_determinism PROPERTIES LABELS sim TIMEOUT 300)
endforeach()

# Seed sweeps: every one must pass.
add_test(NAME sim_migration_flow_sweep
         COMMAND ${NOKV_SIM} --seeds 1..100 --quiet ${NOKV_SRC}/scenarios/migration_flow)
add_test(NAME sim_crash_mid_init_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 --quiet ${NOKV_SRC}/scenarios/crash_mid_init)
add_test(NAME sim_interrupt_before_publish_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 --quiet ${NOKV_SRC}/scenarios/interrupt_before_publish)
add_test(NAME sim_transport_flap_sweep
         COMMAND ${NOKV_SIM} --seeds 1..60 --quiet ${NOKV_SRC}/scenarios/transport_flap)
add_test(NAME sim_removed_peer_restart_sweep
         COMMAND ${NOKV_SIM} --seeds 1..40 --quiet ${NOKV_SRC}/scenarios/removed_peer_restart)
# The other ways to interrupt the install: a kill (disk kept) at a seeded
# install failpoint.
add_test(NAME sim_interrupt_kill_sweep
         COMMAND ${NOKV_SIM} --seeds 1..20 --quiet --set interrupt=kill --set interrupt-at=seed
                 ${NOKV_SRC}/scenarios/interrupt_before_publish)

# ...and a broken snapshot stream (the operator's links to the target break
# in snapshot-stream): nothing is hosted or known, the retry succeeds.
add_test(NAME sim_interrupt_break_sweep
         COMMAND ${NOKV_SIM} --seeds 1..20 --quiet --set interrupt=break
                 ${NOKV_SRC}/scenarios/interrupt_before_publish)

# The checkers can fail: with the test-only skip-install-rollback switch
# (nk_cluster_config.unsafe_skip_install_rollback) the restarted target keeps
# the APPLYING entry, and the recover step must report it (exit 10).
add_test(NAME sim_migration_bug_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 10 --grep "still knows region 1" --
                 ${NOKV_SIM} --seeds 1..10 --quiet --set bug=skip-install-rollback
                 ${NOKV_SRC}/scenarios/interrupt_before_publish)

# ...and the lifecycle's liveness check can fail: with a 1 ms bound the
# recover step cannot see the rollback in time (exit 11).
add_test(NAME sim_migration_liveness_caught
         COMMAND ${NOKV_SRC}/tests/expect_exit.sh 11 --grep "migration" --
                 ${NOKV_SIM} --seed 1 --set within=1ms
                 ${NOKV_SRC}/scenarios/interrupt_before_publish)

set_tests_properties(sim_migration_flow_sweep sim_crash_mid_init_sweep
                     sim_interrupt_before_publish_sweep sim_interrupt_kill_sweep sim_interrupt_break_sweep
                     sim_transport_flap_sweep sim_removed_peer_restart_sweep
                     sim_migration_bug_caught sim_migration_liveness_caught
                     PROPERTIES LABELS sim TIMEOUT 600)
