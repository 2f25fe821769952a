# Planted bugs outside the engine (nokv/util/testbug.h, `--set bug=NAME`):
# each must make its scenario FAIL (safety, exit 10) with the named checker's
# message somewhere in the seed range, so a scenario or checker that stops
# covering the step is noticed. docs/simulation.md, "Planted bugs", says on
# which seeds each one is caught.
set(NOKV_SIM $<TARGET_FILE:nokv-sim>)
set(NOKV_SRC ${CMAKE_CURRENT_SOURCE_DIR})
set(NOKV_EXPECT ${NOKV_SRC}/tests/expect_exit.sh)

# MODE.json.tmp renamed without its fsync: a power loss during init leaves a
# torn or empty mode file, and the standalone probe gets something other than
# the "preparing" refusal.
add_test(NAME sim_bug_mode_nosync_caught
         COMMAND ${NOKV_EXPECT} 10 --grep "want NK_EMODE" --
                 ${NOKV_SIM} --seeds 1..12 --quiet --set bug=mode-nosync
                 ${NOKV_SRC}/scenarios/crash_mid_init)

# LOCALMETA says NORMAL from the install's begin: the target crashed before
# publish comes back hosting the region (a ghost the leader never added).
add_test(NAME sim_bug_publish_before_install_caught
         COMMAND ${NOKV_EXPECT} 10 --grep "n2 hosts region 1" --
                 ${NOKV_SIM} --seeds 1..4 --quiet --set bug=publish-before-install
                 ${NOKV_SRC}/scenarios/interrupt_before_publish)
add_test(NAME sim_bug_publish_before_install_unapplied_caught
         COMMAND ${NOKV_EXPECT} 10 --grep "n2 hosts region 1" --
                 ${NOKV_SIM} --seeds 1..4 --quiet --set bug=publish-before-install
                 --set interrupt-at=after_applying ${NOKV_SRC}/scenarios/interrupt_before_publish)

# A reopened region forgets the applied index its engine records, so raft
# replays entries the engine already holds (the exactly-once apply check in
# sim/cluster_node.c; the replayed SETs are idempotent, clients see nothing).
foreach(sc restarted_follower_recovery lost_unsynced_writes)
  add_test(NAME sim_bug_reapply_${sc}_caught
           COMMAND ${NOKV_EXPECT} 10 --grep "exactly-once apply" --
                   ${NOKV_SIM} --seeds 1..4 --quiet --set bug=reapply-after-restart
                   ${NOKV_SRC}/scenarios/${sc})
endforeach()

# A removed peer's tombstone reaches the disk as NORMAL: the restarted seed
# revives its peer of region 1.
add_test(NAME sim_bug_forget_tombstone_caught
         COMMAND ${NOKV_EXPECT} 10 --grep "hosts region 1 again" --
                 ${NOKV_SIM} --seeds 1..4 --quiet --set bug=forget-tombstone
                 ${NOKV_SRC}/scenarios/removed_peer_restart)

set_tests_properties(sim_bug_mode_nosync_caught sim_bug_publish_before_install_caught
                     sim_bug_publish_before_install_unapplied_caught
                     sim_bug_reapply_restarted_follower_recovery_caught
                     sim_bug_reapply_lost_unsynced_writes_caught sim_bug_forget_tombstone_caught
                     PROPERTIES LABELS sim TIMEOUT 300)
