# Model tests: whole-model gradients vs finite differences, forward/backward vs an
# independent PyTorch implementation.
kd_unit_test(grad_model_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_model_grad.c LABELS unit TIMEOUT 120)
kd_unit_test(model_vs_torch ${CMAKE_SOURCE_DIR}/tests/unit/test_model_vs_torch.c LABELS reference TIMEOUT 300)
kd_unit_test(sft_packing_equals_unpacked ${CMAKE_SOURCE_DIR}/tests/unit/test_model_packing.c LABELS unit TIMEOUT 120)
kd_unit_test(hf_import_export_roundtrip ${CMAKE_SOURCE_DIR}/tests/unit/test_hf_import.c LABELS reference TIMEOUT 120)
# label mpi, not unit: it saves a checkpoint through MPI, whose plugins leak under valgrind
kd_unit_test(rope_scaling_roundtrip_and_grad ${CMAKE_SOURCE_DIR}/tests/unit/test_rope_scaling.c LABELS mpi)
