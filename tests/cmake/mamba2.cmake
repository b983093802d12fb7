# Mamba-2 mixer tests (kernels/cpu/mamba2_*.c, runtime/model/mixer_mamba2.c).
kd_unit_test(mamba2_ssd_chunked_vs_sequential ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_ssd.c)
kd_unit_test(grad_mamba2_layer_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_grad.c)
kd_unit_test(mamba2_matrix_vs_scan_and_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_mat.c)
kd_unit_test(mamba2_layer_vs_torch ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_ref.c LABELS reference)
set_property(TEST mamba2_layer_vs_torch APPEND PROPERTY ENVIRONMENT "KD_PYTHON=${KD_TEST_PYTHON}")
# The same C side against the Mamba-2 paper's minimal chunked SSD (tests/reference/mamba2_ssd_ref.py)
kd_unit_test(mamba2_layer_vs_minimal_ssd ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_ref.c LABELS reference)
target_compile_definitions(mamba2_layer_vs_minimal_ssd PRIVATE KD_REF_MINIMAL_SSD=1)
set_property(TEST mamba2_layer_vs_minimal_ssd APPEND PROPERTY ENVIRONMENT "KD_PYTHON=${KD_TEST_PYTHON}")

# Benchmark: built with the tests, registered but DISABLED (run it by hand:
# build/tests/bench_mamba2 [reps]).
add_executable(bench_mamba2 ${CMAKE_SOURCE_DIR}/tests/bench/bench_mamba2.c)
target_link_libraries(bench_mamba2 PRIVATE kdcore)
target_include_directories(bench_mamba2 PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME bench_mamba2 COMMAND bench_mamba2)
set_tests_properties(bench_mamba2 PROPERTIES LABELS bench DISABLED TRUE)

# The per-thread bodies of the CUDA Mamba-2 kernels (kernels/mamba2_grid.h), run on the host
# over their grids, against the CPU ops: exercises the CUDA index maths without a device.
kd_unit_test(mamba2_grid_bodies_vs_cpu ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_grid.c LABELS unit TIMEOUT 120)
# The batched GEMM descriptor of the CUDA SSD (kernels/bgemm.h): block enumeration, and the
# row-major -> column-major (cuBLAS) translation run by naive host loops.
kd_unit_test(bgemm_colmajor_form_matches_rowmajor ${CMAKE_SOURCE_DIR}/tests/unit/test_bgemm.c)
