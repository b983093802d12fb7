#!/usr/bin/env bash
# attn_mem.sh: peak resident memory of one training step (forward + backward + optimizer)
# of bench_train's model at batch 1 and growing sequence length T, to show how activation
# memory scales with T (memory-lean attention: linearly). One process per T, since the
# peak (getrusage's maxrss, via /usr/bin/time) is a high-water mark. Measures and prints
# only; never a pass/fail test.
#   bash tests/bench/attn_mem.sh BUILD_DIR [T ...] [-- bench_train args]
#   e.g. bash tests/bench/attn_mem.sh build 1024 2048 4096 8192
set -euo pipefail
build=${1:?build dir}
shift
lens=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do lens+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#lens[@]} -gt 0 ] || lens=(1024 2048 4096 8192)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
prev_t="" prev_kib=""
printf '%6s %12s %18s %s\n' T "peak MiB" "MiB per 1k tokens" "(growth since the previous T)"
for t in "${lens[@]}"; do
  kib=$(/usr/bin/time -f '%M' "$build/tests/bench_train" --seq "$t" --batch 1 --warmup 0 \
        --steps 1 "$@" 2>&1 >/dev/null | tail -1)
  if [ -n "$prev_t" ]; then
    per=$(awk -v a="$prev_kib" -v b="$kib" -v s="$prev_t" -v e="$t" \
          'BEGIN { printf "%.1f", (b - a) / 1024 / ((e - s) / 1000) }')
  else
    per="-"
  fi
  printf '%6d %12.0f %18s\n' "$t" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" "$per"
  prev_t=$t prev_kib=$kib
done
