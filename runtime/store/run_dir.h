// run_dir.h: what a run directory says about itself, kept relocatable. Each finished
// stage has RUN/stages/NN-name/DONE ("checkpoint PATH\nstep N\neval_loss X\n") whose PATH
// is relative to the run directory, so a run can be moved or copied and used from any
// working directory; references RUN_DIR:STAGE name a stage's final (or newest valid)
// checkpoint. Called by runtime/run/run.c (markers) and the CLI (generate, export).
// Invariant: every path returned here is usable from the current working directory.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/base/common.h"

// Rank 0: write stage_dir/DONE atomically, naming ckpt relative to run_dir when it lies
// under it (else as given). KD_OK or KD_ERUNTIME.
int kd_run_dir_write_done(const char *run_dir, const char *stage_dir, const char *ckpt,
                          int64_t step, double eval_loss, kd_error *err);

// 1 and the stage's final checkpoint, resolved against run_dir, in ckpt if stage_dir/DONE
// exists and names one; 0 otherwise. Markers of older versions (a path relative to the
// directory the run was started in) are resolved too.
int kd_run_dir_read_done(const char *run_dir, const char *stage_dir, char *ckpt, size_t n);

// A model reference -> a checkpoint directory: a checkpoint (holds MANIFEST), a ckpt/
// root (its newest valid step-*), or RUN_DIR:STAGE (the stage's DONE checkpoint, else its
// newest valid one). KD_OK, or KD_EINPUT with what was tried.
int kd_run_dir_resolve_model(const char *spec, char *out, size_t n, kd_error *err);
