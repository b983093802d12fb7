# Fault-tolerance tests (tests/fault/, docs/fault-tolerance.md): kill, corrupt, preempt,
# freeze, fill the disk, change the world size, and split the job over two network
# namespaces; every run resumes and must end where an uninterrupted run ends. Labels
# fault + mpi; each mpirun inside is bounded by `timeout -k 10`, each test by TIMEOUT.
foreach(t kill_resume_bitwise corrupt_ckpt_fallback preempt_signal_one_rank resume_other_world_size frozen_rank_watchdog ckpt_write_failure_stops_cleanly bad_recipe_leaves_run_dir)
  kd_script_test(${t} fault/${t}.sh LABELS "fault;mpi" TIMEOUT 240)
endforeach()
# two "hosts" in network namespaces: skipped (77) where namespaces cannot be created
kd_script_test(multihost_netns fault/multihost_netns.sh LABELS "fault;mpi" TIMEOUT 240)
set_tests_properties(multihost_netns PROPERTIES SKIP_RETURN_CODE 77)
# relocatable run dirs, disk full / read-only during pseudo-labels and the DPO cache (tmpfs
# mounts: skipped, 77, where they cannot be made)
kd_script_test(run_dir_relocatable fault/run_dir_relocatable.sh LABELS "fault;mpi" TIMEOUT 240)
kd_script_test(disk_full_pseudo_labels_refcache fault/disk_full_pseudo_labels_refcache.sh LABELS "fault;mpi" TIMEOUT 300)
set_tests_properties(disk_full_pseudo_labels_refcache PROPERTIES SKIP_RETURN_CODE 77)
# the reduced demo pipeline under random kills (docs/fault-tolerance.md): the short version
# alternates SIGKILL and stop signals; the long one is the 20-kill soak
kd_script_test(soak_demo_short fault/soak_demo.sh LABELS "fault;mpi" TIMEOUT 600)
set_property(TEST soak_demo_short APPEND PROPERTY ENVIRONMENT "KD_SOAK_MODE=mixed;KD_SOAK_KILLS=4")
kd_script_test(soak_demo_20_kills fault/soak_demo.sh LABELS "fault;mpi;slow" TIMEOUT 3600)
set_property(TEST soak_demo_20_kills APPEND PROPERTY ENVIRONMENT "KD_SOAK_KILLS=20")
# a stop signal (SIGTERM or SIGUSR1) at each of the 16 moments, so every stage kind is stopped
# once: every attempt exits 75 within 60 s and the run ends identical
kd_script_test(soak_demo_signals_every_stage fault/soak_demo.sh LABELS "fault;mpi;slow" TIMEOUT 3600)
set_property(TEST soak_demo_signals_every_stage APPEND PROPERTY ENVIRONMENT "KD_SOAK_MODE=signal;KD_SOAK_KILLS=16")
# launch/kdrun against a fake command (no MPI)
kd_script_test(kdrun_supervisor fault/kdrun_supervisor.sh LABELS fault TIMEOUT 60)
