# Kernel tests of the CPU backend (kernels/cpu/). Benchmarks are built, never run by ctest.
kd_unit_test(kernels_grad_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_kernels_fd.c LABELS unit TIMEOUT 120)

add_executable(bench_kernels ${CMAKE_SOURCE_DIR}/tests/bench/bench_kernels.c)
target_link_libraries(bench_kernels PRIVATE kdcore)
kd_unit_test(kernels_fwd_vs_naive ${CMAKE_SOURCE_DIR}/tests/unit/test_kernels_fwd.c LABELS unit TIMEOUT 120)
# The CUDA attention kernels' per-thread bodies (kernels/attention_grid.h) run on the CPU.
kd_unit_test(attention_grid_vs_cpu ${CMAKE_SOURCE_DIR}/tests/unit/test_attention_grid.c LABELS unit TIMEOUT 120)
