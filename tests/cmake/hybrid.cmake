# Hybrid student tests: stage init (runtime/model/model_convert.c), stage align
# (runtime/model/model_align.c, stages/align.c) and the configs/hybrid.yaml pipeline.
kd_unit_test(init_mapping_exact_gqa ${CMAKE_SOURCE_DIR}/tests/unit/test_init_convert.c TIMEOUT 60)
kd_unit_test(align_losses_value_and_grad_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_align_layer.c TIMEOUT 60)
kd_script_test(align_matrix_hidden_lower_losses_mohawk_order hybrid/align_pipeline.sh
  LABELS "integration;mpi" TIMEOUT 600)
kd_script_test(hybrid_resume_bitwise_after_kill hybrid/resume_kill9.sh LABELS "integration;mpi;fault"
  TIMEOUT 600)
