# Observing a run (docs/observe.md): TensorBoard event files read by TensorBoard's own
# reader, `kdtrain status` of an mpirun launch, and `kdtrain report` rendered in headless
# Chromium.
kd_unit_test(tfevents_crc32c_and_records unit/test_tfevents.c)
kd_script_test(tensorboard_events_equal_metrics_across_kill report/tb_resume.sh
  LABELS "integration;mpi;fault" TIMEOUT 300)
kd_script_test(report_renders_plots_evals_and_damage report/report_render.sh
  LABELS "integration;mpi" TIMEOUT 600)
