#!/usr/bin/env bash
# test_fail.sh: a stage that fails for good (its dataset is garbage) ends FAILED, the stage
# that depends on it is CANCELLED by SLURM (kill-on-invalid-dep), not left pending, and
# `kdtrain status` names the failed stage with the error line of its log. Then
# `kdtrain cancel` ends a live chain without the running job requeueing itself.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/recipe.sh"
make_data
write_recipe "$work/bad.yaml" bad 3 alpha beta gamma
# kdtrain validates every stage's data before any stage runs, so alpha runs alone first;
# then beta's data is damaged and beta,gamma are submitted as a second chain (jobs.tsv
# gets the new rows).
"$KD_BIN" submit bad.yaml --stages alpha --nodes 1 --ntasks-per-node 2 --kdtrain "$RUN_BIN" || fail "submit exited $?"
id0=$(grep -v '^#' runs/bad/slurm/jobs.tsv | cut -f2)
st=$(wait_state "$id0" 120 COMPLETED FAILED CANCELLED) || fail "job $id0 still '$st'"
[ "$st" = COMPLETED ] || fail "alpha (job $id0) ended $st, expected COMPLETED"
head -c 4096 /dev/urandom >data/beta.h5   # bad data injected into the middle stage
"$KD_BIN" submit bad.yaml --nodes 1 --ntasks-per-node 2 --kdtrain "$RUN_BIN" >submit2.out || fail "submit exited $?"
grep -q 'stage 00-alpha is done' submit2.out || fail "resubmission did not skip the finished alpha: $(cat submit2.out)"
mapfile -t ids < <(grep -v '^#' runs/bad/slurm/jobs.tsv | cut -f2)
[ ${#ids[@]} -eq 3 ] || fail "jobs.tsv has ${#ids[@]} jobs, expected 3"
st=$(wait_state "${ids[1]}" 120 COMPLETED FAILED CANCELLED) || fail "job ${ids[1]} still '$st'"
[ "$st" = FAILED ] || fail "beta (job ${ids[1]}) ended $st, expected FAILED"
# The dependent job must be cancelled by SLURM within a scheduling pass or two.
st=$(wait_state "${ids[2]}" 30 CANCELLED COMPLETED FAILED) ||
  fail "gamma (job ${ids[2]}) is '$st' 30 s after its dependency failed, expected CANCELLED"
[ "$st" = CANCELLED ] || fail "gamma ended $st, expected CANCELLED"
[ ! -e runs/bad/stages/02-gamma/DONE ] || fail "gamma has a DONE marker"
"$KD_BIN" status runs/bad >status.out || fail "status exited $?"
cat status.out
grep -q '^01-beta .* FAILED ' status.out || fail "status does not show beta FAILED"
grep -q '^02-gamma .* CANCELLED ' status.out || fail "status does not show gamma CANCELLED"
err=$(grep -A1 '^01-beta ' status.out | tail -1)
case $err in *"kdtrain: error"*beta*) ;; *) fail "status error line for beta is '$err'" ;; esac

# kdtrain cancel on a live chain: the running job and its dependent end CANCELLED, and the
# running job is not requeued (TERM is not a preemption warning).
write_recipe "$work/live.yaml" live 200 one two
"$KD_BIN" submit live.yaml --nodes 1 --ntasks-per-node 2 --kdtrain "$RUN_BIN" >/dev/null || fail "submit exited $?"
mapfile -t lids < <(grep -v '^#' runs/live/slurm/jobs.tsv | cut -f2)
wait_state "${lids[0]}" 60 RUNNING >/dev/null || fail "job ${lids[0]} never ran"
"$KD_BIN" cancel runs/live | tee cancel.out || fail "kdtrain cancel exited $?"
grep -q '2 job(s) cancelled' cancel.out || fail "cancel did not cancel 2 jobs"
for id in "${lids[@]}"; do
  st=$(wait_state "$id" 30 CANCELLED) || fail "job $id is '$st' after kdtrain cancel"
done
sleep 2
[ "$(job_field "${lids[0]}" JobState)" = CANCELLED ] && [ "$(job_field "${lids[0]}" Restarts)" = 0 ] ||
  fail "cancelled job ${lids[0]} came back: $(job_field "${lids[0]}" JobState), restarts $(job_field "${lids[0]}" Restarts)"
echo "PASS: beta failed, gamma cancelled, status shows: $err"
