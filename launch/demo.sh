#!/usr/bin/env bash
# demo.sh: build kdtrain, generate the demo data and run configs/demo.yaml end to end on
# 2 CPU ranks. Re-running resumes or skips finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${KD_DEMO_RANKS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
build/kdtrain data synth --out data/demo
build/kdtrain check configs/demo.yaml --ranks "$ranks"
OMP_NUM_THREADS=1 launch/kdmpirun -np "$ranks" build/kdtrain run configs/demo.yaml "$@"
echo "demo: finished; results in runs/demo (metrics.jsonl and TensorBoard events per stage)"
echo "demo: report: $(build/kdtrain report runs/demo)   (tensorboard --logdir runs/demo)"
