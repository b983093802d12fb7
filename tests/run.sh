#!/usr/bin/env bash
# run.sh: build kdtrain and run the whole test suite (README's test command). A Release
# build runs every ctest; an ASan+UBSan build runs the unit and integration labels.
# KD_TEST_QUICK=1 skips the sanitizer build (for local iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" -LE "bench|slow"
if [ "${KD_TEST_QUICK:-0}" != 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKD_SANITIZE=ON -DKD_CUDA=off >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -L "unit"
fi
