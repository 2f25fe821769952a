# Fuzz targets (libFuzzer). Off by default and never needed by the normal
# build: configure with -DNOKV_FUZZ=ON -DCMAKE_C_COMPILER=clang.
#
#   cmake -S . -B build-fuzz -DNOKV_FUZZ=ON -DCMAKE_C_COMPILER=clang
#   cmake --build build-fuzz --target fuzz_resp
#   build-fuzz/fuzz_resp -max_total_time=60 corpus-dir/
#
# Or all of them at once: tools/fuzz/run.sh [seconds]. Targets:
#   fuzz_resp      RESP parser + command layer (in-memory backend)
#   fuzz_sst       SST reader: open, gets, iterators (simulated disk)
#   fuzz_wal       WAL recovery (nk_wal_open) over 1..n segment files
#   fuzz_manifest  version edit decoder + manifest open (CURRENT + MANIFEST)
#   fuzz_batch     write batch decoder (nk_batch_iterate)
#   fuzz_raftlog   raft log recovery (nk_raftlog_open) over 1..n segment files
#   fuzz_coord     coordinator request/response/report codecs (nokv/proto/coord.c)
# The engine targets write seed corpora with NOKV_FUZZ_GEN=<dir> <target>.
option(NOKV_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(NOKV_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "NOKV_FUZZ=ON needs clang (CMAKE_C_COMPILER=clang); fuzz targets skipped")
  else()
    set(NOKV_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                        -fno-omit-frame-pointer)
    # The code under test is compiled into the target itself so it carries
    # the fuzzer's coverage instrumentation (and the sanitizers); the rest
    # comes from libnokv (and the simulator, whose in-memory disk the engine
    # targets use so the fuzzer does no real I/O).
    function(nokv_fuzz_target name)
      add_executable(${name} tools/fuzz/${name}.c ${ARGN})
      target_compile_options(${name} PRIVATE ${NOKV_FUZZ_FLAGS})
      target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(${name} PRIVATE nokv_sim nokv)
    endfunction()

    nokv_fuzz_target(fuzz_resp nokv/resp/resp.c nokv/resp/commands.c nokv/resp/membackend.c)
    nokv_fuzz_target(fuzz_sst nokv/engine/sst.c nokv/engine/block.c nokv/engine/blockfmt.c
                              nokv/engine/bloom.c nokv/engine/cache.c nokv/engine/ikey.c)
    nokv_fuzz_target(fuzz_wal nokv/engine/wal.c nokv/engine/logfile.c nokv/engine/batch.c)
    nokv_fuzz_target(fuzz_manifest nokv/engine/manifest.c nokv/engine/logfile.c
                                   nokv/engine/version_edit.c nokv/engine/ikey.c)
    nokv_fuzz_target(fuzz_batch nokv/engine/batch.c)
    nokv_fuzz_target(fuzz_raftlog nokv/store/raftlog.c nokv/engine/logfile.c)
    nokv_fuzz_target(fuzz_coord nokv/proto/coord.c nokv/proto/region.c nokv/proto/wire.c)
  endif()
endif()
