#!/usr/bin/env bash
# run.sh: build kdtrain and run the whole test suite (README's test command). In order:
#   1. Release build: every ctest except bench, slow and valgrind;
#   2. valgrind memcheck of every unit test (label valgrind, Release build);
#   3. ASan+UBSan build: the unit and integration labels (bad-input corpus included);
#   4. the libFuzzer harnesses, KD_FUZZ_SECONDS each (default 30; clang needed).
# KD_TEST_QUICK=1 runs step 1 only (for local iteration). docs/errors.md explains 2-4.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" -LE "bench|slow|valgrind"
if [ "${KD_TEST_QUICK:-0}" != 1 ]; then
  if command -v valgrind >/dev/null; then
    ctest --test-dir build --output-on-failure -j"$jobs" -L valgrind
  else
    echo "run.sh: valgrind not installed, memcheck step skipped"
  fi

  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKD_SANITIZE=ON -DKD_CUDA=off >/dev/null
  cmake --build build-asan -j"$jobs"
  # Open MPI, HDF5 and friends leak at exit by design: suppress leaks that pass through
  # them (tests/sanitizers/lsan.supp). Plugins stay loaded so their stacks symbolize;
  # use_tls=0: LSan's thread-local scan crashes on Open MPI's plugins with this glibc.
  export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
  export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0
  export LSAN_OPTIONS="use_tls=0:suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # *valgrind* tests of other areas cannot run ASan binaries
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit|integration" -E valgrind

  if command -v clang >/dev/null; then
    bash tests/fuzz/run.sh "${KD_FUZZ_SECONDS:-30}"
  else
    echo "run.sh: clang not installed, fuzz step skipped"
  fi
fi
