#!/usr/bin/env bash
# ab.sh: interleaved A/B of two builds of one benchmark, for "did this change make it
# slower" questions on a shared machine. Runs A, B, A, B, ... ROUNDS times each, so that
# load changes hit both sides alike, and prints each run's line and the median of each
# side's tokens/s. Measures and prints only; never a pass/fail test.
#   bash tests/bench/ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [-- BENCH ARGS...]
#   e.g. bash tests/bench/ab.sh /tmp/old/build build 5 -- bench_train --ssm-layers 0,2,4
set -euo pipefail
a=${1:?old build dir} b=${2:?new build dir}
rounds=${3:-5}
shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" = "--" ] && shift
bench=${1:-bench_train}
shift $(( $# > 0 ? 1 : 0 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
declare -a ta tb
for ((i = 1; i <= rounds; i++)); do
  for side in A B; do
    dir=$a; [ $side = B ] && dir=$b
    line=$("$dir/tests/$bench" "$@" | tail -1)
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "$side round $i (load $load): $line"
    tps=$(grep -oE '[0-9.]+ tokens/s' <<<"$line" | head -1 | cut -d' ' -f1)
    if [ $side = A ]; then ta+=("$tps"); else tb+=("$tps"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "median tokens/s: A $(median "${ta[@]}")  B $(median "${tb[@]}")"
