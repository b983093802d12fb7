// slurm_env.h: what kdtrain learns from SLURM when it runs inside a job (docs/slurm.md).
// runtime/run/run.c calls kd_slurm_check once after MPI is up (on every rank) and kd_slurm_log
// on rank 0. Outside a job (no SLURM_JOB_ID) both do nothing. The check only reads the
// environment; it never talks to slurmctld.
#pragma once
#include "runtime/base/common.h"

typedef struct {
    int in_job;        // SLURM_JOB_ID is set
    char job_id[32];   // SLURM_JOB_ID
    int procid;        // SLURM_PROCID (-1 when unset)
    int ntasks;        // tasks of this step: SLURM_STEP_NUM_TASKS, else SLURM_NTASKS (-1)
    int localid;       // SLURM_LOCALID (-1)
    int restart_count; // SLURM_RESTART_COUNT (0 when unset)
    int by_mpirun;     // started by mpirun inside the allocation (OMPI_MCA_orte_hnp_uri)
    char nodename[64]; // SLURMD_NODENAME
} kd_slurm_info;

// Fill info from the environment. Returns 1 inside a job, 0 outside; KD_EINPUT (negated:
// -KD_EINPUT) when a SLURM_* number is malformed, with err filled.
int kd_slurm_detect(kd_slurm_info *info, kd_error *err);

// KD_OK outside SLURM or when world_size equals the step's task count; KD_EINPUT with a
// one-line explanation otherwise (e.g. `srun` without --mpi=pmix starts N copies of rank
// 0). Skipped under mpirun (it sizes the world itself) and when KD_SLURM_NO_CHECK=1.
int kd_slurm_check(int world_size, kd_error *err);

// One "kdtrain: slurm: ..." line with job id, restart count, task ids and node.
void kd_slurm_log(void);
