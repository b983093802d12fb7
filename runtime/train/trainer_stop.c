// trainer_stop.c: when the step loop stops (trainer_internal.h): too many non-finite steps,
// the periodic checkpoint, and the collective stop on a signal or the time budget (every
// rank's flag combined by one allreduce; all ranks save, then return KD_EREQUEUE). Also
// the test hooks that let the fault tests stop, slow down or trace a run through the real
// code paths (environment variables; docs/fault-tolerance.md).
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/base/signals.h"
#include "runtime/train/trainer_internal.h"

// ----------------------------------------------------------------------------- test hooks

// KD_TRACE_SAMPLES=FILE: every rank appends "step S rank R world W: p0 p1 ..." (the global
// sample positions it fills for optimizer step S) to FILE, one write(2) per line with
// O_APPEND so lines of different ranks never interleave. Lets the fault tests prove that a
// resumed run (at any world size) consumes every position exactly once.
void kd_trainer_trace_samples(int64_t step, int rank, int world, const uint64_t *pos, int n) {
    const char *path = getenv("KD_TRACE_SAMPLES");
    if (!path || !*path) return;
    size_t cap = 64 + (size_t)n * 21, len = 0;
    char *line = kd_malloc(cap);
    len += (size_t)snprintf(line, cap, "step %lld rank %d world %d:", (long long)step, rank, world);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(line + len, cap - len, " %llu", (unsigned long long)pos[i]);
    line[len++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, len) != (ssize_t)len)
            kd_log_warn("KD_TRACE_SAMPLES: short write to %s", path);
        close(fd);
    }
    free(line);
}

// KD_TEST_STOP_AT_STEP=N: the last rank sends itself SIGUSR1 right after step N, so tests
// stop a run at a known step through the real signal path (one rank signalled, all agree).
static void test_stop_at(int64_t step, int rank, int world) {
    const char *v = getenv("KD_TEST_STOP_AT_STEP");
    if (v && *v && rank == world - 1 && step == atoll(v)) raise(SIGUSR1);
}

// KD_TEST_STEP_DELAY_MS=N: every rank sleeps N ms after each step, so fault tests can land
// a kill at a chosen step however fast the machine is. Timing only: results are unchanged.
void kd_trainer_test_step_delay(void) {
    const char *v = getenv("KD_TEST_STEP_DELAY_MS");
    if (v && *v && atoi(v) > 0) usleep((useconds_t)atoi(v) * 1000);
}

// ----------------------------------------------------------------------------- decisions

int kd_trainer_check_bad_steps(const kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    const kd_stage_spec *sp = tr->cfg->spec;
    if (pr->bad_steps < sp->max_bad_steps) return KD_OK;
    return kd_fail(err, KD_ERUNTIME,
                   "stage '%s': %d consecutive non-finite steps (max_bad_steps); stopping with "
                   "the last checkpoint intact (lower optim.lr or raise optim.grad_clip)",
                   sp->name, pr->bad_steps);
}

int kd_trainer_step_boundary(kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    const kd_stage_spec *sp = cfg->spec;
    int rc;
    if (sp->checkpoint.every > 0 && pr->step % sp->checkpoint.every == 0 && pr->step < sp->steps)
        if ((rc = kd_trainer_save(tr, pr, err))) return rc;
    test_stop_at(pr->step, tr->plan.rank, tr->plan.world);
    int sig = kd_signals_pending();
    int stop = sig != 0 || (cfg->deadline > 0 && kd_now() > cfg->deadline);
    if (!kd_comm_any(cfg->comm, stop) || pr->step >= sp->steps) return KD_OK;
    if (tr->last_saved != pr->step && (rc = kd_trainer_save(tr, pr, err))) return rc;
    return kd_fail(err, KD_EREQUEUE,
                   "stage '%s' stopped at step %lld by %s; saved; run the same command again "
                   "to resume",
                   sp->name, (long long)pr->step,
                   sig    ? "a signal"
                   : stop ? "run.max_minutes"
                          : "another rank's signal");
}
