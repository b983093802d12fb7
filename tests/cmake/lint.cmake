# Structural rules of the source tree (tests/lint/layers.py): layer includes, no include
# cycles, root-relative include paths, functions of at most 100 lines.
add_test(NAME lint_layers COMMAND ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/lint/layers.py ${CMAKE_SOURCE_DIR})
set_tests_properties(lint_layers PROPERTIES LABELS unit TIMEOUT 60)
