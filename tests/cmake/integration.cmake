# Integration tests: the kdtrain binary under mpirun on small recipes.
kd_script_test(train_np1_equals_np2 integration/tiny_ranks.sh LABELS "integration;mpi" TIMEOUT 600)
kd_script_test(grad_buckets_equal_one_reduce integration/grad_buckets.sh LABELS "integration;mpi" TIMEOUT 600)
kd_script_test(dpo_ref_cache_reused_and_invalidated integration/dpo_ref_cache.sh LABELS "integration;mpi" TIMEOUT 300)
kd_script_test(eval_every_logs_heldout integration/eval_every.sh LABELS "integration;mpi" TIMEOUT 300)
kd_script_test(check_refuses_teacher_vocab_mismatch integration/teacher_vocab_check.sh LABELS "integration" TIMEOUT 120)
kd_script_test(mambainllama_preset_checks_and_matches_source integration/mambainllama_preset.sh LABELS "integration" TIMEOUT 120)
kd_script_test(kd_onpolicy_deterministic_and_resumable integration/kd_onpolicy.sh LABELS "integration" TIMEOUT 300)
