// submit.h: kdtrain on a SLURM cluster (docs/slurm.md). `kdtrain submit` writes one sbatch
// script per stage into RUN/slurm/, submits them as a chain (afterok, kill-on-invalid-dep)
// and records the job ids in RUN/slurm/jobs.tsv; `kdtrain status` and `kdtrain cancel`
// read that file back. Called by main.c; argv[0] is the subcommand name. Each returns an
// exit status (0 ok, 2 bad input, 3 a SLURM command failed). Needs no MPI.
#pragma once
#include <stddef.h>

int kd_submit_main(int argc, char **argv);
int kd_status_main(int argc, char **argv);
int kd_cancel_main(int argc, char **argv);

// ---- shared by runtime/submit.c and runtime/slurm_status.c (not for other modules)

// Run a shell command line and keep the first `cap`-1 bytes of its stdout in out (stderr
// goes to /dev/null unless the command redirects it). Returns the exit status, or -1 when
// the command could not be started.
int kd_slurm_capture(const char *cmdline, char *out, size_t cap);
