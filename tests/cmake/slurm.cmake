# SLURM support (runtime/run/submit.c, runtime/run/slurm_status.c, runtime/run/slurm_env.c).
# unit: the in-job checks and `kdtrain submit --dry-run` (no SLURM needed).
# slurm: tests on a real, private slurmctld+slurmd+munged started by tests/slurm/slurm_up.sh
# (root and the slurm-wlm + munge packages); they SKIP (exit 77) when it cannot start.
# They share one machine's CPUs, so they run one at a time (RESOURCE_LOCK).
kd_unit_test(slurm_env_check_world_vs_ntasks ${CMAKE_SOURCE_DIR}/tests/unit/test_slurm_env.c)
kd_script_test(slurm_submit_dry_run slurm/test_dry_run.sh LABELS unit TIMEOUT 60)

foreach(t chain_runs_stages_in_order:test_chain.sh:300
          failed_stage_cancels_dependents:test_fail.sh:300
          preempt_requeue_resume:test_preempt.sh:600)
  string(REPLACE ":" ";" parts ${t})
  list(GET parts 0 name)
  list(GET parts 1 script)
  list(GET parts 2 timeout)
  kd_script_test(slurm_${name} slurm/${script} LABELS slurm TIMEOUT ${timeout})
  set_tests_properties(slurm_${name} PROPERTIES SKIP_RETURN_CODE 77 RESOURCE_LOCK slurm)
endforeach()
