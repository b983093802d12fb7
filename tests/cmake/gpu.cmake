# GPU tests. The unit test runs the CUDA decode kernels' per-thread bodies
# (kernels/decode_grid.h) on the host against the CPU ops, so it needs no device.
kd_unit_test(decode_grid_bodies_vs_cpu ${CMAKE_SOURCE_DIR}/tests/unit/test_decode_grid.c LABELS unit TIMEOUT 120)
