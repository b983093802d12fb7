# GPU tests. The unit test runs the CUDA decode kernels' per-thread bodies
# (kernels/decode_grid.h) on the host against the CPU ops, so it needs no device.
kd_unit_test(decode_grid_bodies_vs_cpu ${CMAKE_SOURCE_DIR}/tests/unit/test_decode_grid.c LABELS unit TIMEOUT 120)

# gpu_parity (tests/gpu/parity.c): every op of every sub-table, CUDA against CPU. Without a
# device it exits 77; `--self` runs the CPU against itself so CI exercises the harness.
add_executable(gpu_parity ${CMAKE_SOURCE_DIR}/tests/gpu/parity.c ${CMAKE_SOURCE_DIR}/tests/gpu/parity_cases.c)
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

# The GPU suite (tests/gpu/run.sh, steps a-f: op parity, compute-sanitizer, recipe losses,
# kill -9 resume, 2-rank data parallel, throughput). Without a usable CUDA device it prints
# one "gpu: skipped: ..." line and exits 77, which ctest reports as skipped.
kd_script_test(gpu_suite_cuda_vs_cpu gpu/run.sh LABELS gpu TIMEOUT 3600)
set_tests_properties(gpu_suite_cuda_vs_cpu PROPERTIES SKIP_RETURN_CODE 77)
# The same commands with cpu in place of cuda at the same tiny sizes: proves the suite's
# plumbing (runs, overrides, metric and checkpoint comparisons, kill/resume) on any machine.
kd_script_test(gpu_suite_plumbing_cpu_vs_cpu gpu/run.sh LABELS integration TIMEOUT 600)
set_property(TEST gpu_suite_plumbing_cpu_vs_cpu APPEND PROPERTY ENVIRONMENT
  "KD_GPU_SELFTEST=cpu;KD_GPU_OUT=${CMAKE_BINARY_DIR}/gpu-results-selftest")
# ... and a sub-table missing from the table under test is reported and counted as a failure.
add_test(NAME gpu_parity_missing_subtable_fails COMMAND gpu_parity --self --quick --drop mamba2)
set_tests_properties(gpu_parity_missing_subtable_fails PROPERTIES LABELS unit TIMEOUT 120
  ENVIRONMENT "OMP_NUM_THREADS=2"
  PASS_REGULAR_EXPRESSION "SKIP mamba2: not in the cpu table.*gpu_parity: [0-9]+ passed, 1 failed or missing")
