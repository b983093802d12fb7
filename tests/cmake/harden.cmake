# Hardening tests (docs/errors.md): the bad-input corpus, valgrind over every unit test,
# and (with -DKD_FUZZ=ON and clang) the libFuzzer harnesses of tests/fuzz/.

# Every case of tests/bad-inputs/cases.tsv: documented exit status and message, no signal
# death or hang, no sanitizer report, the work directory (with an earlier run) unchanged.
kd_script_test(bad_inputs_exit_2_with_message_and_no_writes bad-inputs/run.sh
  LABELS "integration;harden" TIMEOUT 900)

# valgrind memcheck over every test labelled unit (no invalid access, no definite or
# indirect leak; Open MPI and HDF5 keep "still reachable" globals, which are not errors).
# Deferred to the end of tests/, so that the unit tests of every area exist by then. Label
# valgrind only: tests/run.sh runs them as their own step. Skipped without valgrind or in
# sanitizer/fuzz builds (valgrind cannot run ASan binaries).
find_program(KD_VALGRIND valgrind)
function(kd_harden_add_valgrind_tests)
  get_property(tests DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY TESTS)
  foreach(t ${tests})
    get_test_property(${t} LABELS labels)
    if(NOT "unit" IN_LIST labels OR t MATCHES "valgrind" OR NOT TARGET ${t})
      continue()
    endif()
    add_test(NAME memcheck_${t} COMMAND ${KD_VALGRIND} -q --error-exitcode=97 --leak-check=full
      --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
      --suppressions=${CMAKE_SOURCE_DIR}/tests/sanitizers/valgrind.supp $<TARGET_FILE:${t}>)
    get_test_property(${t} ENVIRONMENT env)
    if(NOT env)
      set(env "")
    endif()
    # KD_MEMCHECK: a test may run its paths on less data under valgrind (~50x slower); one
    # OpenMP thread: valgrind serialises threads, and a second one spin-waits at barriers
    list(APPEND env KD_MEMCHECK=1 OMP_NUM_THREADS=1)
    set_tests_properties(memcheck_${t} PROPERTIES LABELS "valgrind" TIMEOUT 900
      ENVIRONMENT "${env}")
  endforeach()
endfunction()
if(KD_VALGRIND AND NOT KD_SANITIZE AND NOT KD_FUZZ)
  cmake_language(DEFER CALL kd_harden_add_valgrind_tests)
endif()

# libFuzzer harnesses (tests/fuzz/run.sh builds and runs them): configure with
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKD_FUZZ=ON -DKD_SANITIZE=ON -DKD_CUDA=off
# every layer library gets coverage instrumentation; each harness links libFuzzer's main.
option(KD_FUZZ "Build the libFuzzer harnesses of tests/fuzz (needs clang)" OFF)
if(KD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KD_FUZZ=ON needs clang (-DCMAKE_C_COMPILER=clang), found ${CMAKE_C_COMPILER_ID}")
  endif()
  get_property(layers GLOBAL PROPERTY KD_LAYERS)
  foreach(l ${layers})
    target_compile_options(${l} PRIVATE -fsanitize=fuzzer-no-link)
  endforeach()
  foreach(h json recipe dataset manifest safetensors)
    add_executable(fuzz_${h} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${h}.c)
    target_include_directories(fuzz_${h} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
    target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${h} PRIVATE kdcore)
  endforeach()
endif()
