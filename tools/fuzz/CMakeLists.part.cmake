# Fuzz targets (libFuzzer). Off by default and never needed by the normal
# build: configure with -DNOKV_FUZZ=ON -DCMAKE_C_COMPILER=clang.
#
#   cmake -S . -B build-fuzz -DNOKV_FUZZ=ON -DCMAKE_C_COMPILER=clang
#   cmake --build build-fuzz --target fuzz_resp
#   build-fuzz/fuzz_resp -max_total_time=60 corpus-dir/
option(NOKV_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(NOKV_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "NOKV_FUZZ=ON needs clang (CMAKE_C_COMPILER=clang); fuzz targets skipped")
  else()
    # The code under test is compiled into the target itself so it carries
    # the fuzzer's coverage instrumentation; the rest comes from libnokv.
    add_executable(fuzz_resp tools/fuzz/fuzz_resp.c nokv/resp/resp.c nokv/resp/commands.c
                             nokv/resp/membackend.c)
    target_compile_options(fuzz_resp PRIVATE -fsanitize=fuzzer,address,undefined
                                             -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_resp PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_resp PRIVATE nokv)
  endif()
endif()
