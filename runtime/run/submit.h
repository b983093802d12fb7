// submit.h: kdtrain on a SLURM cluster (docs/slurm.md). kd_submit writes one sbatch script
// per stage into RUN/slurm/, submits them as a chain (afterok, kill-on-invalid-dep) and
// records the job ids in RUN/slurm/jobs.tsv; kd_slurm_status and kd_slurm_cancel read that
// file back. Each returns KD_OK, KD_EINPUT (bad input) or KD_ERUNTIME (a SLURM command
// failed) and prints its results on stdout. Needs no MPI. The command lines (`kdtrain
// submit|status|cancel`) are runtime/cli/submit_cli.c.
#pragma once
#include <stddef.h>

#include "runtime/base/common.h"

typedef struct {
    const char *recipe;
    const char *const *sets;          // --set KEY=VALUE overrides (n_sets), passed to the jobs
    int n_sets;
    int nodes, ntasks_per_node, gpus_per_node;   // gpus 0: no --gpus-per-node line
    const char *partition, *time_limit, *account; // NULL: no such #SBATCH line
    const char *stages;               // comma list of stage names (NULL: all)
    int max_requeues;                 // self-requeues after preemption per stage
    int signal_secs;                  // USR1 this many seconds before the time limit
    const char *const *sbatch_args;   // extra #SBATCH lines (n_sbatch_args)
    int n_sbatch_args;
    int dry_run;                      // print the scripts; write and submit nothing
    const char *launcher;             // srun | mpirun
    const char *kdtrain;              // binary the scripts run (NULL: this one)
} kd_submit_opts;

// Load the recipe and submit its unfinished selected stages as a chain.
int kd_submit(const kd_submit_opts *o, kd_error *err);
// Per stage of the run directory: job ids, SLURM state, restarts, newest checkpoint, last
// loss, DONE marker, and a failed stage's error line from its log.
int kd_slurm_status(const char *run, kd_error *err);
// scancel every pending or running job of the run's chain (newest stage first).
int kd_slurm_cancel(const char *run, kd_error *err);

// ---- shared by runtime/run/submit.c and runtime/run/slurm_status.c (not for other modules)

// Run a shell command line and keep the first `cap`-1 bytes of its stdout in out (stderr
// goes to /dev/null unless the command redirects it). Returns the exit status, or -1 when
// the command could not be started.
int kd_slurm_capture(const char *cmdline, char *out, size_t cap);
