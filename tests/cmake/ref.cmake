# ref.cmake: tests of the independent PyTorch Llama reference and of the small I/O
# libraries it sits beside (JSON parser, safetensors reader/writer).
kd_unit_test(json_parse_strict ${CMAKE_SOURCE_DIR}/tests/unit/test_json.c)
kd_unit_test(safetensors_roundtrip_and_corrupt ${CMAKE_SOURCE_DIR}/tests/unit/test_safetensors.c)
# The same binary, given a directory, checks files a python script wrote by hand (struct +
# json + numpy; F32/F16/BF16, a sharded index) against the values numpy expects.
add_test(NAME safetensors_reads_python_written
  COMMAND bash -c "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; \"$0\" \"$1\" $d; \"$2\" $d"
          ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/reference/make_safetensors.py
          $<TARGET_FILE:safetensors_roundtrip_and_corrupt>)
set_tests_properties(safetensors_reads_python_written PROPERTIES LABELS "unit;reference" TIMEOUT 120)
# The float64 Llama reference proves itself: forward vs an independent numpy loop,
# gradients vs finite differences, packing and RoPE invariances, malformed input refused.
add_test(NAME llama_ref_selftest
  COMMAND ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/reference/llama_ref.py --selftest)
set_tests_properties(llama_ref_selftest PROPERTIES LABELS reference TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=1")
# Hugging Face fidelity (issue 13): a tiny Llama-3-style model made with transformers
# (rope_scaling llama3/linear/dynamic/default, tied embeddings, GQA, bf16): equal loss and
# greedy tokens; exports round-trip through transformers (ids, generation_config, tokenizer
# files); a hybrid export loads strictly in tests/reference/hybrid_loader.py with equal
# loss and is refused by transformers' Llama classes; bad configs exit 2 naming the key.
add_executable(hf_tool unit/hf_tool.c)
target_link_libraries(hf_tool PRIVATE kdcore)
target_include_directories(hf_tool PRIVATE ${CMAKE_SOURCE_DIR}/tests)
add_test(NAME hf_llama3_vs_transformers
  COMMAND bash -c "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; PYTHONPATH=\"$0\" \"$1\" \"$2\" $d"
          ${KD_PYDEPS} ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/reference/hf_llama3_test.py)
set_tests_properties(hf_llama3_vs_transformers PROPERTIES LABELS reference TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=2;KD_BIN=$<TARGET_FILE:kdtrain>;KD_HF_TOOL=$<TARGET_FILE:hf_tool>")
# configs/llama3-hybrid.yaml end to end on a tiny Llama-3-style model and BPE tokenizer made
# with transformers/tokenizers (tests/integration/llama3_hybrid.sh)
kd_script_test(llama3_hybrid_recipe_end_to_end integration/llama3_hybrid.sh LABELS "integration" TIMEOUT 900)
set_property(TEST llama3_hybrid_recipe_end_to_end APPEND PROPERTY ENVIRONMENT "KD_HF_TOOL=$<TARGET_FILE:hf_tool>")
# Multiple-choice eval tasks (stages/eval_choices.c) scored as lm-eval does, against
# transformers on an HF Llama with a BPE tokenizer: per-choice log-probs, acc, acc_norm.
add_test(NAME eval_choices_vs_transformers
  COMMAND bash -c "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; PYTHONPATH=\"$0\" \"$1\" \"$2\" $d"
          ${KD_PYDEPS} ${KD_TEST_PYTHON} ${CMAKE_SOURCE_DIR}/tests/reference/eval_choices_test.py)
set_tests_properties(eval_choices_vs_transformers PROPERTIES LABELS reference TIMEOUT 600
  ENVIRONMENT "OMP_NUM_THREADS=2;KD_BIN=$<TARGET_FILE:kdtrain>")
