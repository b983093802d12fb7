# Model tests: whole-model gradients vs finite differences, forward/backward vs an
# independent PyTorch implementation.
kd_unit_test(grad_model_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_model_grad.c LABELS unit TIMEOUT 120)
kd_unit_test(model_vs_torch ${CMAKE_SOURCE_DIR}/tests/unit/test_model_vs_torch.c LABELS reference TIMEOUT 300)
kd_unit_test(sft_packing_equals_unpacked ${CMAKE_SOURCE_DIR}/tests/unit/test_model_packing.c LABELS unit TIMEOUT 120)
kd_unit_test(hf_import_export_roundtrip ${CMAKE_SOURCE_DIR}/tests/unit/test_hf_import.c LABELS reference TIMEOUT 120)
# label mpi, not unit: it saves a checkpoint through MPI, whose plugins leak under valgrind
kd_unit_test(rope_scaling_roundtrip_and_grad ${CMAKE_SOURCE_DIR}/tests/unit/test_rope_scaling.c LABELS mpi)

# The trainer's gradient/parameter collectives on every path (MPI, host-staged, backend
# collectives through an MPI stand-in, fallback), under mpirun with 1, 2 and 3 ranks.
add_executable(grad_comm_paths ${CMAKE_SOURCE_DIR}/tests/unit/test_grad_comm.c)
target_link_libraries(grad_comm_paths PRIVATE kdcore)
foreach(np 1 2 3)
  add_test(NAME grad_comm_paths_np${np} COMMAND timeout -k 10 120 ${KD_MPIRUN} ${KD_MPIRUN_FLAGS}
    -np ${np} $<TARGET_FILE:grad_comm_paths>)
  set_tests_properties(grad_comm_paths_np${np} PROPERTIES LABELS "mpi" TIMEOUT 150
    ENVIRONMENT "OMP_NUM_THREADS=1")
endforeach()
