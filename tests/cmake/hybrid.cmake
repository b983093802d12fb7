# Hybrid student tests: stage init (runtime/model_convert.c), stage align
# (runtime/model_align.c, stages/align.c) and the configs/hybrid.yaml pipeline.
kd_unit_test(init_mapping_exact_gqa ${CMAKE_SOURCE_DIR}/tests/unit/test_init_convert.c TIMEOUT 60)
