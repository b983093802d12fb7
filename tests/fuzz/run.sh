#!/usr/bin/env bash
# run.sh: build the libFuzzer harnesses (clang, ASan+UBSan, coverage) in build-fuzz/ and run
# each for a time budget. Exit 0 when no harness found a crash, leak, timeout or OOM.
#   tests/fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]   (default 45 s; all harnesses)
# Harnesses: json recipe dataset manifest safetensors. Seeds: tests/fuzz/seeds/<name>/
# (and, for recipe, every committed recipe). Each run starts from the seeds in a scratch
# corpus that is deleted afterwards; a finding is kept as build-fuzz/findings/<name>/crash-*
# (reproduce: build-fuzz/tests/fuzz_<name> FILE). Turn findings into bad-input cases
# (tests/bad-inputs/cases.tsv) once fixed. Longer local runs: docs/errors.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-45}
shift $(($# > 0 ? 1 : 0))
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(json recipe dataset manifest safetensors)
jobs=$(nproc)

probe=$(mktemp /tmp/kd_fuzz_probe_XXXXXX)
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
  clang -fsanitize=fuzzer,address -x c - -o "$probe" 2>/dev/null; then
  rm -f "$probe"
  echo "fuzz: clang cannot link -fsanitize=fuzzer: install libclang-rt-14-dev and libomp-14-dev"
  exit 1
fi
rm -f "$probe"
# clang warns on gcc-only flags and on vectorization hints it cannot honour; the project's
# -Werror turns those into errors, so the fuzz build silences exactly those two.
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DKD_FUZZ=ON -DKD_SANITIZE=ON -DKD_CUDA=off \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS=-Wno-unknown-warning-option -Wno-pass-failed" \
  >/dev/null || exit 1
cmake --build build-fuzz -j"$jobs" $(printf -- '--target fuzz_%s ' "${names[@]}") >/dev/null || {
  echo "fuzz: build failed (rerun: cmake --build build-fuzz)"; exit 1; }

export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
# allocator_may_return_null: a huge malloc returns NULL as it does in production (libhdf5
# handles that); kdtrain's own kd_malloc still aborts on NULL, which is then a finding.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fails=0
for name in "${names[@]}"; do
  scratch=$(mktemp -d /tmp/kd_fuzz_run_XXXXXX)
  mkdir -p "$scratch/corpus" "build-fuzz/findings/$name"
  seeds=("tests/fuzz/seeds/$name")
  [ "$name" = recipe ] && seeds+=(configs tests/recipes tests/bad-inputs/recipes)
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  # -timeout: one input taking 5 s (1000x a normal run) is a hang; -rss_limit_mb: 2 GiB is
  # an absurd need for these small inputs, so it is reported as a finding, not an OOM kill.
  # A finding whose stack is first inside libhdf5 itself (HDF5 1.10 loops on a corrupt
  # global heap and overreads some damaged object headers: docs/errors.md) is kept as a
  # known-hdf5-* finding and fuzzing resumes for the rest of the budget; any other
  # finding (kdtrain's own code) stops and fails the run.
  left=$secs rc=0 known=0
  : >"$scratch/log"
  while [ "$left" -gt 0 ]; do
    t0=$(date +%s)
    TMPDIR="$scratch" "build-fuzz/tests/fuzz_$name" "$scratch/corpus" "${seeds[@]}" "${dict[@]}" \
      -max_total_time="$left" -timeout=5 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/findings/$name/" >"$scratch/log1" 2>&1
    rc=$?
    cat "$scratch/log1" >>"$scratch/log"
    left=$((left - ($(date +%s) - t0)))
    [ $rc -eq 0 ] && break
    unit=$(sed -n 's/.*Test unit written to \([^ ]*\)$/\1/p' "$scratch/log1" | tail -1)
    # the first stack frame that is not libFuzzer, a sanitizer interceptor or libc; an
    # interceptor linked into the harness (e.g. "in strdup (.../fuzz_dataset+0x...)") has
    # no source line, unlike every frame of kdtrain's own code, which is built with -g
    first=$(grep -E '^ +#[0-9]+ ' "$scratch/log1" |
      grep -vE 'fuzzer::|__sanitizer|__interceptor_|__asan|libc\.so|libclang_rt| in (malloc|calloc|realloc) |\(/[^ ]*/fuzz_[a-z]+\+0x' |
      head -1)
    if [ -n "$unit" ] && [ -f "$unit" ] && [[ "$first" == *libhdf5* ]]; then
      known=$((known + 1))
      mv "$unit" "$(dirname "$unit")/known-hdf5-$(basename "$unit")"
      rc=0
      continue
    fi
    break
  done
  stats=$(awk '/^stat::number_of_executed_units/ {n += $2} /^stat::new_units_added/ {u += $2}
    END {printf "%d inputs run, %d new coverage units", n, u}' "$scratch/log")
  if [ $rc -eq 0 ]; then
    echo "fuzz $name: OK after ${secs}s ($stats$([ $known -gt 0 ] && echo "; $known finding(s) inside libhdf5 set aside"))"
  else
    fails=$((fails + 1))
    echo "fuzz $name: FAILED (exit $rc); findings in build-fuzz/findings/$name/"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|#[0-9]+ 0x' "$scratch/log" | head -30
  fi
  rm -rf "$scratch"
done
[ $fails -eq 0 ]
