# Whole-model training benchmark (tests/bench/bench_train.c). Built with the tests and
# registered with the `bench` label but DISABLED: a benchmark measures and prints, it is
# never a timed pass/fail test. Run by hand (see docs/performance.md):
#   OMP_NUM_THREADS=2 ./build/tests/bench_train [--ssm-layers 0,2,4]
add_executable(bench_train ${CMAKE_SOURCE_DIR}/tests/bench/bench_train.c)
target_link_libraries(bench_train PRIVATE kdcore)
add_test(NAME bench_train COMMAND bench_train)
set_tests_properties(bench_train PROPERTIES LABELS bench DISABLED TRUE
  ENVIRONMENT "OMP_NUM_THREADS=2")
# Distillation step cost (tests/bench/bench_kd.c): student-only vs online-KD vs cached
# top-K step; same rules (bench label, DISABLED). docs/performance.md "Distillation":
#   OMP_NUM_THREADS=2 ./build/tests/bench_kd [--ssm-layers 0,2,4]
add_executable(bench_kd ${CMAKE_SOURCE_DIR}/tests/bench/bench_kd.c)
target_link_libraries(bench_kd PRIVATE kdcore)
add_test(NAME bench_kd COMMAND bench_kd)
set_tests_properties(bench_kd PROPERTIES LABELS bench DISABLED TRUE
  ENVIRONMENT "OMP_NUM_THREADS=2")
# The loss heads alone (tests/bench/bench_kd_loss.c), ns per logit; same rules:
#   OMP_NUM_THREADS=2 ./build/tests/bench_kd_loss [V] [N] [K]
add_executable(bench_kd_loss ${CMAKE_SOURCE_DIR}/tests/bench/bench_kd_loss.c)
target_link_libraries(bench_kd_loss PRIVATE kdcore)
add_test(NAME bench_kd_loss COMMAND bench_kd_loss)
set_tests_properties(bench_kd_loss PROPERTIES LABELS bench DISABLED TRUE
  ENVIRONMENT "OMP_NUM_THREADS=2")
# Decode speed (tests/bench/bench_decode.c): Transformer vs hybrid vs Mamba-2 at 1k/4k/16k
# context, batch 1 and 8, and speculative vs plain; same rules (bench label, DISABLED):
#   OMP_NUM_THREADS=1 ./build/tests/bench_decode
add_executable(bench_decode ${CMAKE_SOURCE_DIR}/tests/bench/bench_decode.c)
target_link_libraries(bench_decode PRIVATE kdcore)
add_test(NAME bench_decode COMMAND bench_decode)
set_tests_properties(bench_decode PROPERTIES LABELS bench DISABLED TRUE
  ENVIRONMENT "OMP_NUM_THREADS=2")
