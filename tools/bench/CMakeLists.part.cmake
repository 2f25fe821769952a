# nokv-bench: the benchmark driver (tools/bench/kvbench.c) with the nokv
# engine only. tools/bench/run-peers.sh builds the same source with RocksDB
# and LevelDB compiled in as well (-DKVBENCH_ROCKSDB -DKVBENCH_LEVELDB).
add_executable(nokv_bench ${CMAKE_CURRENT_SOURCE_DIR}/tools/bench/kvbench.c)
set_target_properties(nokv_bench PROPERTIES OUTPUT_NAME nokv-bench)
target_link_libraries(nokv_bench PRIVATE nokv_posix nokv)
nokv_link_allocator(nokv_bench)
