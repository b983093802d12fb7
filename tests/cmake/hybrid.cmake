# Hybrid student tests: stage init (runtime/model_convert.c), stage align
# (runtime/model_align.c, stages/align.c) and the configs/hybrid.yaml pipeline.
kd_unit_test(init_mapping_exact_gqa ${CMAKE_SOURCE_DIR}/tests/unit/test_init_convert.c TIMEOUT 60)
kd_unit_test(align_losses_value_and_grad_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_align_layer.c TIMEOUT 60)
