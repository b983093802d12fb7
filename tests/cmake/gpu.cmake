# GPU tests. The unit test runs the CUDA decode kernels' per-thread bodies
# (kernels/decode_grid.h) on the host against the CPU ops, so it needs no device.
kd_unit_test(decode_grid_bodies_vs_cpu ${CMAKE_SOURCE_DIR}/tests/unit/test_decode_grid.c LABELS unit TIMEOUT 120)

# gpu_parity (tests/gpu/parity.c): every op of every sub-table, CUDA against CPU. Without a
# device it exits 77; `--self` runs the CPU against itself so CI exercises the harness.
add_executable(gpu_parity ${CMAKE_SOURCE_DIR}/tests/gpu/parity.c)
target_link_libraries(gpu_parity PRIVATE kdcore)
target_include_directories(gpu_parity PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME gpu_parity_harness_cpu_vs_cpu COMMAND gpu_parity --self)
set_tests_properties(gpu_parity_harness_cpu_vs_cpu PROPERTIES LABELS unit TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=2")
# ... and every comparison of the harness can fail: with one element of each output shifted
# by 1% of its scale, every check must report FAIL (the program then exits 0).
add_test(NAME gpu_parity_harness_sees_errors COMMAND gpu_parity --self --quick --perturb)
set_tests_properties(gpu_parity_harness_sees_errors PROPERTIES LABELS unit TIMEOUT 120
  ENVIRONMENT "OMP_NUM_THREADS=2")
