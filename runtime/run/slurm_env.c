// slurm_env.c: SLURM detection inside a job (slurm_env.h): reads SLURM_* variables,
// checks that MPI sees as many ranks as SLURM started tasks, and logs the job's identity.
#include "runtime/run/slurm_env.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/log.h"

// Integer environment variable: 1 if set and valid, 0 if unset, -1 if malformed.
static int env_int(const char *name, int *out, kd_error *err) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    // SLURM_*_TASKS may read "2(x4)" in some versions; only the leading number counts.
    if (end == s || errno || v < 0 || v > 1000000000L || (*end && *end != '(')) {
        kd_fail(err, KD_EINPUT, "environment %s: expected a non-negative integer, found '%s'", name,
                s);
        return -1;
    }
    *out = (int)v;
    return 1;
}

int kd_slurm_detect(kd_slurm_info *info, kd_error *err) {
    memset(info, 0, sizeof *info);
    info->procid = info->ntasks = info->localid = -1;
    const char *job = getenv("SLURM_JOB_ID");
    if (!job || !*job) return 0;
    info->in_job = 1;
    snprintf(info->job_id, sizeof info->job_id, "%s", job);
    const char *node = getenv("SLURMD_NODENAME");
    snprintf(info->nodename, sizeof info->nodename, "%s", node ? node : "?");
    info->by_mpirun = getenv("OMPI_MCA_orte_hnp_uri") != NULL;
    int rc = 0, n = -1;
    if (env_int("SLURM_PROCID", &info->procid, err) < 0) rc = -1;
    if (env_int("SLURM_LOCALID", &info->localid, err) < 0) rc = -1;
    if (env_int("SLURM_RESTART_COUNT", &info->restart_count, err) < 0) rc = -1;
    int have = env_int("SLURM_STEP_NUM_TASKS", &n, err);
    if (have == 0) have = env_int("SLURM_NTASKS", &n, err);
    if (have < 0) rc = -1;
    info->ntasks = have > 0 ? n : -1;
    return rc < 0 ? -KD_EINPUT : 1;
}

int kd_slurm_check(int world_size, kd_error *err) {
    kd_slurm_info si;
    int in = kd_slurm_detect(&si, err);
    if (in < 0) return KD_EINPUT;
    const char *skip = getenv("KD_SLURM_NO_CHECK");
    if (in == 0 || (skip && strcmp(skip, "1") == 0) || si.by_mpirun || si.ntasks < 0) return KD_OK;
    if (si.ntasks == world_size) return KD_OK;
    if (world_size == 1)
        return kd_fail(err, KD_EINPUT,
                       "SLURM job %s: the step has %d tasks (SLURM_NTASKS) but the MPI world has 1 "
                       "rank, so %d copies of rank 0 would train alone: start kdtrain with "
                       "`srun --mpi=pmix` (or mpirun) so MPI sees every task "
                       "(KD_SLURM_NO_CHECK=1 skips this check)",
                       si.job_id, si.ntasks, si.ntasks);
    return kd_fail(err, KD_EINPUT,
                   "SLURM job %s: the step has %d tasks (SLURM_NTASKS) but the MPI world has %d "
                   "ranks: start exactly one kdtrain per task with `srun --mpi=pmix` "
                   "(KD_SLURM_NO_CHECK=1 skips this check)",
                   si.job_id, si.ntasks, world_size);
}

void kd_slurm_log(void) {
    kd_slurm_info si;
    kd_error err = {0};
    int in = kd_slurm_detect(&si, &err);
    if (in == 0) return;
    if (in < 0) {
        kd_log_warn("slurm: %s", err.msg);
        return;
    }
    kd_log_info("slurm: job %s (restart %d), task %d of %d, local id %d, node %s%s", si.job_id,
                si.restart_count, si.procid, si.ntasks, si.localid, si.nodename,
                si.by_mpirun ? ", launched by mpirun" : "");
}
