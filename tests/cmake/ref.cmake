# ref.cmake: tests of the independent PyTorch Llama reference and of the small I/O
# libraries it sits beside (JSON parser, safetensors reader/writer).
kd_unit_test(json_parse_strict ${CMAKE_SOURCE_DIR}/tests/unit/test_json.c)
