# The embedded API example (tools/examples/hello.c), built with the project.
add_executable(nokv_example ${CMAKE_CURRENT_SOURCE_DIR}/tools/examples/hello.c)
set_target_properties(nokv_example PROPERTIES OUTPUT_NAME nokv-example)
target_link_libraries(nokv_example PRIVATE nokv_posix nokv)
nokv_link_allocator(nokv_example)
