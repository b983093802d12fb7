#!/usr/bin/env bash
# tests/gpu/run.sh: the GPU suite. Checks the CUDA backend against the CPU backend, in order:
#   a. gpu_parity: every op of every sub-table, CUDA vs CPU, several shapes (tests/gpu/parity.c)
#   b. gpu_parity --quick under compute-sanitizer memcheck and racecheck (when installed)
#   c. configs/tiny.yaml and configs/hybrid.yaml (all its stages, shortened) trained on cpu
#      and on cuda: per-step losses within KD_GPU_LOSS_RTOL (compare_losses.py); tiny with
#      run.precision bf16 on cuda within KD_GPU_BF16_RTOL (3e-2) of the fp32 cpu run, and
#      its checkpoint trained on further on the cpu
#   d. a single-rank cuda run killed with SIGKILL after its step-10 checkpoint and started
#      again: final checkpoint digest (SHA-256 of the parameters) equal to an uninterrupted run
#   e. tiny.yaml on 2 ranks (mpirun -np 2) on cuda vs cpu: losses and final parameters; the
#      cuda run must have used the device collectives (NCCL); and on cuda with a gradient
#      bucket per layer overlapping the backward (run.grad_bucket_mb) vs without
#   f. throughput (tokens/s, MFU) of a 125M and a 1B Llama and their 50% hybrids on cuda (fp32;
#      the 1B ones in bf16 too):
#      printed and written to $KD_GPU_OUT/bench.txt, never pass/fail
# Prints one PASS/FAIL/SKIP line per step; exits 1 if any step failed. Without a usable CUDA
# device it prints one "gpu: skipped: ..." line and exits 77 (ctest reports it skipped).
# KD_GPU_SELFTEST=cpu runs c, d and e with cpu vs cpu at the same sizes, a and f in their
# CPU forms (gpu_parity --self --quick, a tiny bench): proves the plumbing on any machine.
# Environment (set by ctest; defaults for a hand run from the source tree): KD_SOURCE_DIR,
# KD_BUILD_DIR (default: the current directory if it holds kdtrain, else build), KD_BIN, KD_PYTHON, KD_MPIRUN, KD_MPIRUN_FLAGS; KD_GPU_OUT
# (default $KD_BUILD_DIR/gpu-results: logs and bench.txt), KD_GPU_STEPS (20),
# KD_GPU_LOSS_RTOL (1e-3), KD_GPU_BENCH_STEPS (3), KD_GPU_ONLY (the steps to run, default
# "a b c d e f"; the others print SKIP). Run by hand: bash tests/gpu/run.sh
set -euo pipefail

SRC=${KD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${KD_BUILD_DIR:-}" ] && [ -x "$PWD/kdtrain" ]; then KD_BUILD_DIR=$PWD; fi # run from a build dir
BUILD=${KD_BUILD_DIR:-$SRC/build}
BIN=${KD_BIN:-$BUILD/kdtrain}
PARITY=$BUILD/tests/gpu_parity
BENCH=$BUILD/tests/bench_train
PY=${KD_PYTHON:-/usr/bin/python3}
MPIRUN=${KD_MPIRUN:-mpirun}
MPIFLAGS=${KD_MPIRUN_FLAGS:---allow-run-as-root --oversubscribe --mca btl_vader_single_copy_mechanism none}
STEPS=${KD_GPU_STEPS:-20}
RTOL=${KD_GPU_LOSS_RTOL:-1e-3}
BF16_RTOL=${KD_GPU_BF16_RTOL:-3e-2} # bf16 operands: ~3 significant digits per product
BENCH_STEPS=${KD_GPU_BENCH_STEPS:-3}
SELF=${KD_GPU_SELFTEST:-}
ONLY=" ${KD_GPU_ONLY:-a b c d e f} "
OUT=${KD_GPU_OUT:-$BUILD/gpu-results}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

for f in "$BIN" "$PARITY" "$BENCH"; do
    [ -x "$f" ] || { echo "gpu: $f not built (cmake --build $BUILD)"; exit 2; }
done

# ---------------------------------------------------------------------------- backend
if [ "$SELF" = cpu ]; then
    DUT=cpu
    echo "gpu: self-test: cpu against cpu (KD_GPU_SELFTEST=cpu), the plumbing of steps a-f"
elif [ -n "$SELF" ]; then
    echo "gpu: KD_GPU_SELFTEST='$SELF': only 'cpu' is known"; exit 2
else
    set +e
    probe=$("$PARITY" --probe 2>&1)
    rc=$?
    set -e
    if [ "$rc" = 77 ]; then
        echo "gpu: skipped: ${probe#gpu_parity: skipped: }"
        exit 77
    fi
    [ "$rc" = 0 ] || { echo "gpu: gpu_parity --probe failed (exit $rc): $probe"; exit 1; }
    DUT=cuda
    echo "gpu: ${probe#gpu_parity: }"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: device: /'
fi

mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/kdgpu.XXXXXX")
BG=
cleanup() {
    if [ -n "$BG" ]; then kill -9 "$BG" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
"$BIN" data synth --out "$W/data" >/dev/null
D=$W/data

# ---------------------------------------------------------------------------- helpers

# train NAME BACKEND NP RECIPE [ARGS...]: one fresh run into $W/NAME (log $W/NAME.log); the
# log must show that BACKEND was used (kdtrain falls back from cuda to cpu with a warning).
train() {
    local name=$1 backend=$2 np=$3 recipe=$4; shift 4
    local cmd=("$BIN" run "$recipe" --set "run.out_dir=$W/$name" --set "run.backend=$backend" --set run.precision=fp32 "$@")
    echo "  run $name: backend $backend, $np rank(s)"
    if [ "$np" = 1 ]; then
        timeout -k 10 600 "${cmd[@]}" >"$W/$name.log" 2>&1 || { tail -20 "$W/$name.log"; return 1; }
    else
        # shellcheck disable=SC2086
        timeout -k 10 600 $MPIRUN $MPIFLAGS -np "$np" "${cmd[@]}" >"$W/$name.log" 2>&1 ||
            { tail -20 "$W/$name.log"; return 1; }
    fi
    used_backend "$W/$name.log" "$backend"
}
# used_backend LOG WANT: the run's settings table names WANT as its backend
used_backend() {
    grep -Eq "^\| backend +$2 *\$" "$1" ||
        { echo "  $1: the run did not use backend $2:"; grep -E "backend" "$1" | head -3; return 1; }
}

# the tiny recipe, shortened: every step logged, checkpoints every 10
TINY=("$SRC/configs/tiny.yaml" --set "stages.pretrain.data=$D/pretrain.h5"
    --set "stages.pretrain.eval_data=$D/pretrain_val.h5" --set "stages.pretrain.steps=$STEPS"
    --set stages.pretrain.log_every=1 --set stages.pretrain.checkpoint.every=10)
# the hybrid recipe (teacher, init, matrix and hidden alignment, CE), every stage shortened
HYB=("$SRC/configs/hybrid.yaml")
for s in teacher matrix hidden ce; do
    n=$STEPS
    [ "$s" = matrix ] || [ "$s" = hidden ] && n=5
    HYB+=(--set "stages.$s.data=$D/pretrain.h5" --set "stages.$s.steps=$n" --set "stages.$s.log_every=1")
done
HYB+=(--set "stages.teacher.eval_data=$D/pretrain_val.h5" --set "stages.ce.eval_data=$D/pretrain_val.h5")

# same_losses REF GOT [RTOL]: every stage's metrics.jsonl of run GOT against run REF's
same_losses() {
    local m stage n=0 rtol=${3:-$RTOL}
    for m in "$W/$1"/stages/*/metrics.jsonl; do
        [ -e "$m" ] || continue
        stage=$(basename "$(dirname "$m")")
        echo "  stage $stage:"
        "$PY" "$SRC/tests/gpu/compare_losses.py" losses "$m" "$W/$2/stages/$stage/metrics.jsonl" "$rtol" |
            sed 's/^/    /'
        [ "${PIPESTATUS[0]}" = 0 ] || return 1
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || { echo "  $W/$1: no metrics.jsonl"; return 1; }
}
# final_ckpt RUN STAGE: the stage's final checkpoint (from DONE)
final_ckpt() { echo "$W/$1/$(sed -n '1s/^checkpoint //p' "$W/$1/stages/$2/DONE")"; }

# ---------------------------------------------------------------------------- the steps

step_a() {
    if [ "$DUT" = cpu ]; then "$PARITY" --self --quick; else "$PARITY"; fi | tee "$OUT/parity.txt"
    return "${PIPESTATUS[0]}"
}

step_b() {
    local cs=/usr/local/cuda/bin/compute-sanitizer
    [ "$DUT" = cuda ] || { echo "  self-test: no device to sanitize"; return 77; }
    [ -x "$cs" ] || cs=$(command -v compute-sanitizer || true)
    if [ -z "$cs" ] || [ ! -x "$cs" ]; then echo "  compute-sanitizer not installed"; return 77; fi
    echo "  $cs --tool memcheck gpu_parity --quick"
    "$cs" --tool memcheck --leak-check full --error-exitcode 1 "$PARITY" --quick >"$OUT/memcheck.txt" 2>&1 ||
        { tail -30 "$OUT/memcheck.txt"; return 1; }
    tail -1 "$OUT/memcheck.txt"
    # racecheck: shared-memory hazards of the block reductions (reduce.cuh): the ops built on
    # them (vec sumsq, rmsnorm, cross_entropy, the losses, gated norm) at the quick shapes
    local only
    for only in vec rmsnorm cross_entropy losses gnorm; do
        echo "  $cs --tool racecheck gpu_parity --quick --only $only"
        "$cs" --tool racecheck --error-exitcode 1 "$PARITY" --quick --only "$only" >>"$OUT/racecheck.txt" 2>&1 ||
            { tail -30 "$OUT/racecheck.txt"; return 1; }
    done
    tail -1 "$OUT/racecheck.txt"
}

step_c() {
    train tiny_ref cpu 1 "${TINY[@]}"
    train tiny_dut "$DUT" 1 "${TINY[@]}"
    same_losses tiny_ref tiny_dut
    train hybrid_ref cpu 1 "${HYB[@]}"
    train hybrid_dut "$DUT" 1 "${HYB[@]}"
    same_losses hybrid_ref hybrid_dut
    # run.precision bf16 (CUDA's tensor-core matmuls) against the fp32 CPU run: the same
    # curve within bf16's rounding; a bf16 checkpoint then resumes on the CPU
    if [ "$DUT" = cuda ]; then
        train tiny_bf16 cuda 1 "${TINY[@]}" --set run.precision=bf16
        grep -q "precision: bf16" "$W/tiny_bf16.log" || { echo "  the run did not use bf16"; return 1; }
        same_losses tiny_ref tiny_bf16 "$BF16_RTOL"
        train tiny_bf16_on_cpu cpu 1 "${TINY[@]}" --set stages.pretrain.steps=5 \
            --set "model.from.checkpoint=$(final_ckpt tiny_bf16 00-pretrain)"
    else
        echo "  self-test: bf16 needs a device (run.precision bf16 is refused with backend cpu)"
    fi
}

step_d() {
    # each step takes >= 50 ms so the kill lands mid-run on any machine
    export KD_TEST_STEP_DELAY_MS=50
    train straight "$DUT" 1 "${TINY[@]}"
    local cmd=("$BIN" run "${TINY[@]}" --set "run.out_dir=$W/killed" --set "run.backend=$DUT" --set run.precision=fp32)
    local m=$W/killed/stages/00-pretrain/metrics.jsonl ck=$W/killed/stages/00-pretrain/ckpt/step-00000010
    "${cmd[@]}" >"$W/killed.log" 2>&1 &
    BG=$!
    local last=0
    for _ in $(seq 1 1200); do
        last=$( { tail -n 1 "$m" 2>/dev/null || true; } | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
        [ -e "$ck/MANIFEST" ] && [ "${last:-0}" -ge 12 ] && break
        kill -0 "$BG" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$BG" 2>/dev/null || { echo "  the run ended before it could be killed"; return 1; }
    wait "$BG" 2>/dev/null || true
    BG=
    echo "  SIGKILL at step ${last:-?} (step-10 checkpoint saved)"
    [ ! -e "$W/killed/stages/00-pretrain/DONE" ] || { echo "  the run finished before the kill"; return 1; }
    "${cmd[@]}" >"$W/resumed.log" 2>&1 || { tail -20 "$W/resumed.log"; return 1; }
    used_backend "$W/resumed.log" "$DUT"
    grep -m1 -i "resum" "$W/resumed.log" | sed 's/^/  log: /' || { echo "  the restart did not resume"; return 1; }
    local da db
    da=$("$BIN" ckpt digest "$(final_ckpt straight 00-pretrain)" | awk '{print $1}')
    db=$("$BIN" ckpt digest "$(final_ckpt killed 00-pretrain)" | awk '{print $1}')
    echo "  digest uninterrupted: $da"
    echo "  digest killed+resumed: $db"
    if [ -z "$da" ] || [ "$da" != "$db" ]; then echo "  final checkpoint digests differ"; return 1; fi
}

step_e() {
    train dp2_ref cpu 2 "${TINY[@]}"
    train dp2_dut "$DUT" 2 "${TINY[@]}"
    if [ "$DUT" = cuda ]; then # gradients and parameters crossed GPU to GPU (NCCL)
        grep -E "^\| collectives +device" "$W/dp2_dut.log" ||
            { echo "  the 2-rank cuda run did not use the device collectives:"; grep collectives "$W/dp2_dut.log"; return 1; }
    fi
    same_losses dp2_ref dp2_dut
    # the reduce-scatter in a bucket per layer, started during the backward (on CUDA: NCCL
    # on its own stream): the same losses as one reduce-scatter after it
    train dp2_buckets "$DUT" 2 "${TINY[@]}" --set run.grad_bucket_mb=0.001
    grep -E "^\| collectives .*buckets overlapping the backward" "$W/dp2_buckets.log" ||
        { echo "  the bucketed run did not overlap:"; grep collectives "$W/dp2_buckets.log"; return 1; }
    same_losses dp2_dut dp2_buckets
    # parameters after STEPS AdamW steps: Adam divides by sqrt(v), so a weight whose gradient
    # is near zero can move by up to ~lr per step on one side only: atol 2e-3, rtol 1e-2
    "$PY" "$SRC/tests/gpu/compare_losses.py" params "$(final_ckpt dp2_ref 00-pretrain)" \
        "$(final_ckpt dp2_dut 00-pretrain)" 2e-3 1e-2 | sed 's/^/  /'
    return "${PIPESTATUS[0]}"
}

step_f() {
    local base=(--warmup 1 --steps "$BENCH_STEPS" --backend "$DUT") name args
    local configs=(
        "125M|--vocab 32000 --d-model 768 --layers 12 --heads 12 --kv-heads 4 --head-dim 64 --ffn 2048 --seq 1024 --batch 8"
        "125M-hybrid50|--vocab 32000 --d-model 768 --layers 12 --heads 12 --kv-heads 4 --head-dim 64 --ffn 2048 --seq 1024 --batch 8 --ssm-layers 0,2,4,6,8,10"
        "1B|--vocab 32000 --d-model 2048 --layers 22 --heads 32 --kv-heads 4 --head-dim 64 --ffn 5632 --seq 1024 --batch 4"
        "1B-hybrid50|--vocab 32000 --d-model 2048 --layers 22 --heads 32 --kv-heads 4 --head-dim 64 --ffn 5632 --seq 1024 --batch 4 --ssm-layers 0,2,4,6,8,10,12,14,16,18,20"
        "1B-bf16|--vocab 32000 --d-model 2048 --layers 22 --heads 32 --kv-heads 4 --head-dim 64 --ffn 5632 --seq 1024 --batch 4 --precision bf16 --peak-tflops 989"
        "1B-hybrid50-bf16|--vocab 32000 --d-model 2048 --layers 22 --heads 32 --kv-heads 4 --head-dim 64 --ffn 5632 --seq 1024 --batch 4 --ssm-layers 0,2,4,6,8,10,12,14,16,18,20 --precision bf16 --peak-tflops 989"
    )
    if [ "$DUT" = cpu ]; then # the plumbing only: the same command lines at a toy size
        configs=("toy|--vocab 512 --d-model 64 --layers 2 --heads 4 --kv-heads 2 --head-dim 16 --ffn 128 --seq 64 --batch 2"
            "toy-hybrid50|--vocab 512 --d-model 64 --layers 2 --heads 4 --kv-heads 2 --head-dim 16 --ffn 128 --seq 64 --batch 2 --ssm-layers 0")
    fi
    : >"$OUT/bench.txt"
    local c rc=0
    for c in "${configs[@]}"; do
        name=${c%%|*}
        read -r -a args <<<"${c#*|}"
        echo "  bench_train $name: ${args[*]} ${base[*]}"
        { echo "# $name: bench_train ${args[*]} ${base[*]}"; } >>"$OUT/bench.txt"
        if timeout -k 10 900 "$BENCH" "${args[@]}" "${base[@]}" >>"$OUT/bench.txt" 2>&1; then
            tail -2 "$OUT/bench.txt" | sed 's/^/    /'
        else
            echo "    bench_train $name exited $? (a crash, not a measurement):"
            tail -5 "$OUT/bench.txt" | sed 's/^/    /'
            rc=1
        fi
    done
    return $rc
}

FAILED=()
# run_step ID DESCRIPTION FUNCTION: runs it in a subshell with errexit; PASS, FAIL or SKIP (77)
run_step() {
    local id=$1 desc=$2 fn=$3 rc t0=$SECONDS
    echo "== $id. $desc"
    if [[ "$ONLY" != *" $id "* ]]; then echo "SKIP $id: $desc (not in KD_GPU_ONLY)"; return 0; fi
    set +e
    (set -euo pipefail; "$fn")
    rc=$?
    set -e
    if [ "$rc" = 0 ]; then
        echo "PASS $id: $desc ($((SECONDS - t0)) s)"
    elif [ "$rc" = 77 ]; then
        echo "SKIP $id: $desc"
    else
        echo "FAIL $id: $desc (exit $rc)"
        FAILED+=("$id")
    fi
}

run_step a "op parity, $DUT vs cpu (gpu_parity)" step_a
run_step b "compute-sanitizer memcheck + racecheck of gpu_parity --quick" step_b
run_step c "tiny and hybrid recipes, $STEPS steps, $DUT vs cpu losses (rtol $RTOL)" step_c
run_step d "SIGKILL + resume on $DUT bitwise equal to an uninterrupted run" step_d
run_step e "2-rank data parallel, $DUT vs cpu: losses and final parameters" step_e
run_step f "throughput on $DUT: 125M, 1B and their 50% hybrids (figures in $OUT/bench.txt)" step_f

if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "gpu: FAILED steps: ${FAILED[*]} (logs in $OUT)"
    exit 1
fi
echo "gpu: all steps passed ($DUT)"
