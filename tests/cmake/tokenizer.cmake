# Tokenizers (data/tok/, docs/tokenizers.md) and `kdtrain tokenize`.
# Hand-written tokenizer.json files: encoding worked out by hand, and every refused input
# exits 2 naming the file and key.
kd_script_test(tokenizer_errors_exit2 tokenizer/errors.sh LABELS unit TIMEOUT 120)

# Parity with the `tokenizers` package on 1 MiB of varied text, for byte-level (GPT-2,
# Llama 3, Qwen 2) and SentencePiece-style (Metaspace, Llama 2) BPE trained in the test.
add_test(NAME tokenizer_parity_hf COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${KD_PYDEPS}
  ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/tokenizer/parity.py)
set_tests_properties(tokenizer_parity_hf PROPERTIES LABELS reference TIMEOUT 900
  ENVIRONMENT "KD_BIN=$<TARGET_FILE:kdtrain>;RAYON_NUM_THREADS=2")

# The same encoders and decoders under valgrind, on a slice of the text (no invalid access,
# no leak): every variant, every mode. They run in tokenize_tool, `kdtrain tokenize` without
# the CUDA libraries that valgrind would read at every start.
add_executable(tokenize_tool unit/tokenize_tool.c ${CMAKE_SOURCE_DIR}/runtime/cli/tokenize_cli.c)
target_link_libraries(tokenize_tool PRIVATE kd_data)
target_include_directories(tokenize_tool PRIVATE ${CMAKE_SOURCE_DIR})
find_program(KD_VALGRIND valgrind)
if(KD_VALGRIND)
  add_test(NAME tokenizer_parity_valgrind COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${KD_PYDEPS}
    ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/tokenizer/parity.py --valgrind ${KD_VALGRIND})
  set_tests_properties(tokenizer_parity_valgrind PROPERTIES LABELS "reference;valgrind" TIMEOUT 1200
    ENVIRONMENT "KD_BIN=$<TARGET_FILE:tokenize_tool>;RAYON_NUM_THREADS=2")
endif()

# Encoding speed against `tokenizers`, single thread (tests/bench/bench_tokenize.py):
# prints MB/s, never a timed pass/fail (bench label, DISABLED). docs/performance.md:
#   KD_BIN=build/kdtrain PYTHONPATH=.pydeps /usr/bin/python3 tests/bench/bench_tokenize.py
add_test(NAME bench_tokenize COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${KD_PYDEPS}
  ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/bench/bench_tokenize.py)
set_tests_properties(bench_tokenize PROPERTIES LABELS bench DISABLED TRUE
  ENVIRONMENT "KD_BIN=$<TARGET_FILE:kdtrain>;RAYON_NUM_THREADS=1;TOKENIZERS_PARALLELISM=false")
