# Data layer tests (data/): reader/writer round trip, validation errors, sampler, and
# the `kdtrain data` tools through a tests-only driver (test_data_tool).
add_executable(test_data_tool ${CMAKE_SOURCE_DIR}/tests/unit/test_data_tool.c)
target_link_libraries(test_data_tool PRIVATE kdcore)

kd_unit_test(data_roundtrip ${CMAKE_SOURCE_DIR}/tests/unit/test_data_roundtrip.c)
kd_unit_test(data_validate ${CMAKE_SOURCE_DIR}/tests/unit/test_data_validate.c)
kd_unit_test(data_sampler ${CMAKE_SOURCE_DIR}/tests/unit/test_data_sampler.c)
kd_unit_test(dataset_tokenizer_identity_roundtrip ${CMAKE_SOURCE_DIR}/tests/unit/test_data_vocab.c)

# The same unit tests under valgrind: no invalid access and no definite/indirect leaks
# (HDF5 keeps some global state until exit; that "still reachable" memory is not an error).
find_program(KD_VALGRIND valgrind)
if(KD_VALGRIND)
  foreach(t data_roundtrip data_validate data_sampler)
    add_test(NAME ${t}_valgrind COMMAND ${KD_VALGRIND} --quiet --leak-check=full
      --errors-for-leak-kinds=definite,indirect --error-exitcode=99 $<TARGET_FILE:${t}>)
    set_tests_properties(${t}_valgrind PROPERTIES LABELS "unit;valgrind" TIMEOUT 300)
  endforeach()
endif()

# Script tests call `kdtrain data ...` ($KD_BIN; KD_DATA_TOOL may point elsewhere).
kd_script_test(data_cli data_cli.sh)
kd_script_test(data_h5py data_h5py.sh)
kd_script_test(data_synth_learnable data_synth_learnable.sh)
kd_script_test(check_refuses_data_of_another_tokenizer data_tokenizer_check.sh)
# Needs a Hugging Face tokenizer in the build: exit 77 (skipped) while only "bytes" opens.
kd_script_test(data_tools_hf_tokenizer_match_tokenizers tokenizer_hf_tools.sh)
set_tests_properties(data_tools_hf_tokenizer_match_tokenizers PROPERTIES SKIP_RETURN_CODE 77)

# Independent per-rank opens and rank slices under a real mpirun (2 and 3 ranks).
add_executable(data_mpi ${CMAKE_SOURCE_DIR}/tests/unit/test_data_mpi.c)
target_link_libraries(data_mpi PRIVATE kdcore)
foreach(np 2 3)
  add_test(NAME data_mpi_np${np} COMMAND timeout -k 10 120 ${KD_MPIRUN} ${KD_MPIRUN_FLAGS}
    -np ${np} $<TARGET_FILE:data_mpi>)
  set_tests_properties(data_mpi_np${np} PROPERTIES LABELS "mpi" TIMEOUT 150
    ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()
