# Generation tests: incremental decoding vs full forward, sampling, the generate CLI and
# the resumable, rank-parallel pseudo-label generation (runtime/model/model_decode.c,
# runtime/model/generate.c, runtime/cli/generate_cli.c, stages/generate.c, stages/pseudo_label.c).
kd_unit_test(generate_decode_equals_full_forward ${CMAKE_SOURCE_DIR}/tests/unit/test_generate_decode.c TIMEOUT 120)
kd_unit_test(generate_sampling ${CMAKE_SOURCE_DIR}/tests/unit/test_generate_sample.c TIMEOUT 120)
kd_unit_test(generate_speculative_equals_plain ${CMAKE_SOURCE_DIR}/tests/unit/test_generate_spec.c TIMEOUT 300)
kd_script_test(pseudo_label_kill_resume gen/pseudo_label_kill_resume.sh LABELS "integration;mpi;fault" TIMEOUT 600)
kd_script_test(generate_cli_and_topk gen/generate_cli.sh LABELS "integration;mpi" TIMEOUT 300)
