# Instruction and preference data (data/chat.c, data/prefs.c, data/jsonl.c,
# data/synth_tasks.c): rendering and masks, templates, truncation, the preference format,
# and the `kdtrain data chat|prefs|synth` command lines.
kd_unit_test(chat_render_mask_exact ${CMAKE_SOURCE_DIR}/tests/unit/test_chat_render.c
  LABELS unit TIMEOUT 60)
kd_unit_test(chat_prefs_roundtrip ${CMAKE_SOURCE_DIR}/tests/unit/test_chat_prefs.c
  LABELS unit TIMEOUT 60)

# The same binaries under valgrind: no invalid access, no definite/indirect leaks (HDF5's
# global state is "still reachable", not an error).
find_program(KD_VALGRIND valgrind)
if(KD_VALGRIND)
  foreach(t chat_render_mask_exact chat_prefs_roundtrip)
    add_test(NAME ${t}_valgrind COMMAND ${KD_VALGRIND} --quiet --leak-check=full
      --errors-for-leak-kinds=definite,indirect --error-exitcode=99 $<TARGET_FILE:${t}>)
    set_tests_properties(${t}_valgrind PROPERTIES LABELS "unit;valgrind" TIMEOUT 300)
  endforeach()
endif()

# Script tests drive `kdtrain data ...` ($KD_BIN).
foreach(s errors synth)
  kd_script_test(data_chat_${s} data_chat_${s}.sh LABELS integration TIMEOUT 120)
endforeach()

# h5py-written preference files, good and broken, through the reader.
kd_script_test(data_chat_h5py data_chat_h5py.sh LABELS integration TIMEOUT 120)
set_property(TEST data_chat_h5py APPEND PROPERTY ENVIRONMENT
  "KD_PREFS_PROBE=$<TARGET_FILE:chat_prefs_roundtrip>")
