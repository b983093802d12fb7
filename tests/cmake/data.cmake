# Data layer tests (data/): reader/writer round trip, validation errors, sampler, and
# the `kdtrain data` tools through a tests-only driver (test_data_tool).
add_executable(test_data_tool ${CMAKE_SOURCE_DIR}/tests/unit/test_data_tool.c)
target_link_libraries(test_data_tool PRIVATE kdcore)
