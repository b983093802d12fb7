#!/usr/bin/env bash
# test_chain.sh: on a real slurmctld, `kdtrain submit` queues a 3-stage recipe as a chain of
# 2-task jobs; every stage runs, in recipe order (each job starts after the previous one
# ended), as one 2-rank MPI world; jobs.tsv and `kdtrain status` agree with SLURM.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/recipe.sh"
make_data
write_recipe "$work/chain.yaml" chain 6 alpha beta gamma
"$KD_BIN" submit chain.yaml --nodes 1 --ntasks-per-node 2 --kdtrain "$RUN_BIN" >submit.out 2>&1 ||
  { cat submit.out; fail "kdtrain submit exited $?"; }
cat submit.out
mapfile -t ids < <(grep -v '^#' runs/chain/slurm/jobs.tsv | cut -f2)
[ ${#ids[@]} -eq 3 ] || fail "jobs.tsv has ${#ids[@]} jobs, expected 3"
for k in 0 1 2; do
  [ -f "runs/chain/slurm/0$k-$(echo alpha beta gamma | cut -d' ' -f$((k + 1))).sbatch" ] || fail "script $k missing"
done
# The dependency is on the job itself, as SLURM sees it.
dep=$(job_field "${ids[1]}" Dependency)
case $dep in *afterok:${ids[0]}*) ;; *) fail "job ${ids[1]} dependency '$dep', expected afterok:${ids[0]}" ;; esac
for id in "${ids[@]}"; do
  st=$(wait_state "$id" 120 COMPLETED FAILED CANCELLED TIMEOUT) || fail "job $id still '$st' after 120 s"
  [ "$st" = COMPLETED ] || fail "job $id ended $st"
done
for s in 00-alpha 01-beta 02-gamma; do
  [ -f "runs/chain/stages/$s/DONE" ] || fail "no DONE marker for $s"
done
# Order: each job started at or after the previous one ended (SLURM's own times).
for k in 1 2; do
  prev_end=$(date -d "$(job_field "${ids[$((k - 1))]}" EndTime)" +%s)
  start=$(date -d "$(job_field "${ids[$k]}" StartTime)" +%s)
  [ "$start" -ge "$prev_end" ] || fail "job ${ids[$k]} started at $start before job ${ids[$((k - 1))]} ended at $prev_end"
done
# Each stage ran once, as one 2-rank MPI world (srun --mpi=pmix made both tasks one job).
for s in 00-alpha 01-beta 02-gamma; do
  grep -Eq '^\| ranks +2$' "runs/chain/slurm/$s.log" || fail "$s did not run on 2 ranks: $(grep ranks "runs/chain/slurm/$s.log")"
done
"$KD_BIN" status runs/chain >status.out || fail "kdtrain status exited $?"
cat status.out
n=$(grep -c ' COMPLETED .* yes$' status.out)
[ "$n" -eq 3 ] || fail "status shows $n completed+done stages, expected 3"
"$KD_BIN" cancel runs/chain | grep -q 'no pending or running job' || fail "cancel of a finished chain should cancel nothing"
echo "PASS: 3 stages ran in order as jobs ${ids[*]}"
