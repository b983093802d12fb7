// test_slurm_env.c: kd_slurm_check against hand-set SLURM_* environments: outside a job it
// passes; a world size equal to the step's tasks passes; "N copies of rank 0" (world 1,
// N tasks) and a plain mismatch are refused with a message naming both numbers; mpirun
// launches and KD_SLURM_NO_CHECK=1 are exempt; a malformed SLURM_NTASKS is an input error.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/run/slurm_env.h"

static int failures = 0;

static void clear_env(void) {
    const char *vars[] = {"SLURM_JOB_ID",          "SLURM_PROCID",      "SLURM_NTASKS",
                          "SLURM_STEP_NUM_TASKS",  "SLURM_LOCALID",     "SLURM_RESTART_COUNT",
                          "OMPI_MCA_orte_hnp_uri", "KD_SLURM_NO_CHECK", "SLURMD_NODENAME"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

// Expect kd_slurm_check(world) to return want and, when want != 0, a message containing
// every non-NULL needle.
static void expect(const char *what, int world, int want, const char *n1, const char *n2) {
    kd_error err = {0};
    int rc = kd_slurm_check(world, &err);
    int ok = rc == want;
    if (ok && want && n1 && !strstr(err.msg, n1)) ok = 0;
    if (ok && want && n2 && !strstr(err.msg, n2)) ok = 0;
    if (!ok) {
        printf("FAIL %s: world %d: rc %d (want %d), message '%s' (want '%s' and '%s')\n", what,
               world, rc, want, err.msg, n1 ? n1 : "", n2 ? n2 : "");
        failures++;
    } else {
        printf("ok   %s%s%s\n", what, want ? ": " : "", want ? err.msg : "");
    }
}

int main(void) {
    clear_env();
    expect("outside a job", 3, KD_OK, NULL, NULL);

    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_LOCALID", "0", 1);
    expect("world equals SLURM_NTASKS", 4, KD_OK, NULL, NULL);
    expect("4 copies of rank 0", 1, KD_EINPUT, "4 copies of rank 0", "srun --mpi=pmix");
    expect("world 2 of 4 tasks", 2, KD_EINPUT, "4 tasks", "2 ranks");

    // srun sets the step's own count; it wins over the job's.
    setenv("SLURM_STEP_NUM_TASKS", "2", 1);
    expect("step task count wins", 2, KD_OK, NULL, NULL);
    unsetenv("SLURM_STEP_NUM_TASKS");

    setenv("KD_SLURM_NO_CHECK", "1", 1);
    expect("KD_SLURM_NO_CHECK=1", 1, KD_OK, NULL, NULL);
    unsetenv("KD_SLURM_NO_CHECK");

    setenv("OMPI_MCA_orte_hnp_uri", "123.0;tcp://127.0.0.1:1", 1);
    expect("launched by mpirun", 2, KD_OK, NULL, NULL);
    unsetenv("OMPI_MCA_orte_hnp_uri");

    setenv("SLURM_NTASKS", "four", 1);
    expect("malformed SLURM_NTASKS", 4, KD_EINPUT, "SLURM_NTASKS", "'four'");
    setenv("SLURM_NTASKS", "4", 1);

    setenv("SLURM_RESTART_COUNT", "2", 1);
    kd_slurm_info si;
    kd_error err = {0};
    int in = kd_slurm_detect(&si, &err);
    if (in != 1 || si.restart_count != 2 || si.ntasks != 4 || strcmp(si.job_id, "4242") != 0) {
        printf("FAIL detect: in %d restart %d ntasks %d job '%s' (want 1, 2, 4, '4242')\n", in,
               si.restart_count, si.ntasks, si.job_id);
        failures++;
    }
    kd_slurm_log(); // must not crash; prints one line
    clear_env();
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
