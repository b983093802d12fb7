# Recipe module tests (label unit): typed loading, defaults, overrides, round trip, and the
# exact text of every class of error.
kd_unit_test(recipe_load_defaults_overrides_roundtrip unit/test_recipe.c)
kd_unit_test(recipe_errors_name_line_col_and_key unit/test_recipe_errors.c)

# The same two programs under valgrind: every load path (good and each error) frees all it
# allocates. Skipped when valgrind is not installed.
find_program(KD_VALGRIND valgrind)
if(KD_VALGRIND)
  foreach(t recipe_load_defaults_overrides_roundtrip recipe_errors_name_line_col_and_key)
    add_test(NAME ${t}_valgrind COMMAND ${KD_VALGRIND} -q --leak-check=full --error-exitcode=1
      $<TARGET_FILE:${t}>)
    set_tests_properties(${t}_valgrind PROPERTIES LABELS unit TIMEOUT 120
      ENVIRONMENT "KD_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
endif()
