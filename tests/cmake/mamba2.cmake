# Mamba-2 mixer tests (kernels/cpu/mamba2_*.c, runtime/mixer_mamba2.c).
kd_unit_test(mamba2_ssd_chunked_vs_sequential ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_ssd.c)
kd_unit_test(grad_mamba2_layer_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_grad.c)
kd_unit_test(mamba2_matrix_vs_scan_and_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_mat.c)
kd_unit_test(mamba2_layer_vs_torch ${CMAKE_SOURCE_DIR}/tests/unit/test_mamba2_ref.c LABELS reference)
set_property(TEST mamba2_layer_vs_torch APPEND PROPERTY ENVIRONMENT "KD_PYTHON=${KD_TEST_PYTHON}")
