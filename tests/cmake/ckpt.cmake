# Checkpoint format and `kdtrain ckpt` tests (runtime/store/checkpoint.c, runtime/base/sha256.c,
# runtime/cli/ckpt_cli.c). Labels: unit (no MPI), mpi (several ranks), fault (corruption, I/O
# errors).
find_program(KD_VALGRIND valgrind)

kd_unit_test(ckpt_sha256_fips_vectors unit/test_ckpt_sha256.c LABELS unit TIMEOUT 60)
if(KD_VALGRIND)
  add_test(NAME ckpt_sha256_valgrind_clean COMMAND ${KD_VALGRIND} --error-exitcode=9
    --leak-check=full --errors-for-leak-kinds=definite,indirect -q
    $<TARGET_FILE:ckpt_sha256_fips_vectors>)
  set_tests_properties(ckpt_sha256_valgrind_clean PROPERTIES LABELS unit TIMEOUT 120)
endif()

# tests-only driver used by the shell tests (`ckpt` CLI, save/check at any world size)
add_executable(test_ckpt_tool unit/test_ckpt_tool.c)
target_link_libraries(test_ckpt_tool PRIVATE kdcore)
target_include_directories(test_ckpt_tool PRIVATE ${CMAKE_SOURCE_DIR}/tests)

kd_unit_test(ckpt_verify_detects_corruption unit/test_ckpt_verify.c LABELS "unit;fault" TIMEOUT 60)
if(KD_VALGRIND)
  add_test(NAME ckpt_verify_valgrind_clean COMMAND ${KD_VALGRIND} --error-exitcode=9
    --leak-check=full --errors-for-leak-kinds=definite,indirect -q
    $<TARGET_FILE:ckpt_verify_detects_corruption>)
  set_tests_properties(ckpt_verify_valgrind_clean PROPERTIES LABELS unit TIMEOUT 120)
endif()

# MPI tests: save/load round trips on 1, 2 and 4 ranks (timeout -k: a stuck mpirun can
# ignore SIGTERM)
add_executable(test_ckpt_roundtrip unit/test_ckpt_roundtrip.c)
target_link_libraries(test_ckpt_roundtrip PRIVATE kdcore)
target_include_directories(test_ckpt_roundtrip PRIVATE ${CMAKE_SOURCE_DIR}/tests)
foreach(np 1 2 4)
  add_test(NAME ckpt_roundtrip_np${np} COMMAND timeout -k 10 120 ${KD_MPIRUN} ${KD_MPIRUN_FLAGS}
    -np ${np} $<TARGET_FILE:test_ckpt_roundtrip>)
  set_tests_properties(ckpt_roundtrip_np${np} PROPERTIES LABELS "mpi" TIMEOUT 150
    ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()

add_executable(test_ckpt_fault unit/test_ckpt_fault.c)
target_link_libraries(test_ckpt_fault PRIVATE kdcore)
target_include_directories(test_ckpt_fault PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME ckpt_failed_save_leaves_previous_intact COMMAND timeout -k 10 120 ${KD_MPIRUN}
  ${KD_MPIRUN_FLAGS} -np 2 $<TARGET_FILE:test_ckpt_fault>)
set_tests_properties(ckpt_failed_save_leaves_previous_intact PROPERTIES LABELS "mpi;fault"
  TIMEOUT 150 ENVIRONMENT "OMP_NUM_THREADS=1")

kd_script_test(ckpt_reshard_across_world_sizes ckpt_reshard.sh LABELS mpi TIMEOUT 300)
kd_script_test(ckpt_cli_list_verify_digest ckpt_cli.sh LABELS "mpi;fault" TIMEOUT 300)
