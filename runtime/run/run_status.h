// run_status.h: `kdtrain status RUN_DIR` for a run started with mpirun (docs/observe.md):
// the stage running, its step, last loss, ETA, newest checkpoint, and whether the process
// is alive (the newest STAGE/attempts.jsonl line: pid, host and process start time, checked
// with kill(pid, 0) and the start time on the same host; on another host it says it cannot
// tell and shows how long ago the run last wrote). SLURM runs (RUN/slurm/jobs.tsv) have kd_slurm_status (submit.h).
#pragma once
#include "runtime/base/common.h"

// Prints the status; KD_EINPUT if run_dir is not a run directory.
int kd_run_status(const char *run_dir, kd_error *err);
