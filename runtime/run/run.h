// run.h: running a recipe: load and validate it and its data before anything is written
// (kd_run_check), then lay out the run directory, pick the backend and run the stages in
// order, skipping finished ones (kd_run_stages). Collective over comm: every rank calls
// them with the same options and gets the same status. The command line (`kdtrain run`,
// `kdtrain check`) is runtime/cli/run_cli.c.
#pragma once
#include "runtime/base/comm.h"
#include "runtime/train/trainer.h"

typedef struct {
    const char *recipe;           // the recipe file
    const char *const *sets;      // --set KEY=VALUE overrides (n_sets of them)
    int n_sets;
    int ranks;                    // kd_run_check: validate for this many ranks (0: the world)
    double mem_gib;               // kd_run_check: memory per rank to fit in (0: this machine's)
    int quiet;                    // no SLURM line, settings table or progress lines
    kd_resume_mode resume;        // kd_run_stages: how unfinished stages continue
    const char *resume_path;      // kd_run_stages: the first stage to run continues from it
    const char *stage;            // kd_run_stages: run only this stage (NULL: all)
} kd_run_opts;

// Inside a SLURM step, check the launch and log the job; load the recipe; check it, its
// data files, the teacher and the memory needed, for o->ranks ranks. Prints the summary
// table on rank 0 (always: it is what `kdtrain check` shows). KD_OK or the error.
int kd_run_check(kd_comm *comm, const kd_run_opts *o, kd_error *err);
// The same checks for the world size (summary unless o->quiet), then the stages. Returns
// KD_OK, KD_EINPUT, KD_ERUNTIME (last checkpoint intact) or KD_EREQUEUE (saved on a signal
// or run.max_minutes).
int kd_run_stages(kd_comm *comm, const kd_run_opts *o, kd_error *err);
