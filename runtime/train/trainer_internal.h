// trainer_internal.h: what the files of the trainer share; not for use outside
// runtime/train/trainer*.c. trainer.c plans a stage and runs the step (batch, micro-batches,
// reduction, update); trainer_ckpt.c saves and resumes; trainer_log.c prints the settings
// table and progress lines and writes metrics.jsonl (periodic held-out evaluation too);
// trainer_stop.c takes the collective stop decisions and holds the test hooks.
// Invariant: every function that takes a decision several ranks must share (stop, save,
// fail) reaches it through a collective, so all ranks take the same branch.
#pragma once
#include <stdint.h>

#include "runtime/base/log.h"
#include "runtime/base/tfevents.h"
#include "runtime/train/grad_comm.h"
#include "runtime/train/optim.h"
#include "runtime/train/trainer.h"

// The shape of a stage on this world: fixed before the first step.
typedef struct {
    int rank, world;
    int G, mb, T;        // global batch (samples), micro-batch, sequence length
    int per_rank, accum; // samples per rank per step (G/world), micro-batches (per_rank/mb)
    size_t lo, hi;       // this rank's ZeRO-1 shard of the flat parameter buffer
} kd_train_plan;

// Host rows of one rank's batch: per_rank x T tokens.
typedef struct {
    int32_t *ids, *targets, *seg;
    float *weights;
} kd_host_batch;

// What one optimizer step measured (identical on every rank after the reductions).
typedef struct {
    double loss, gnorm;
    float lr;
    int finite; // the update was applied (loss and gradient norm finite)
    double extra[KD_TASK_MAX_EXTRA];
} kd_step_result;

// Timers, metrics.jsonl and the TensorBoard event file of rank 0 (f == NULL on the other
// ranks; events.f == NULL also when run.tensorboard is false).
typedef struct {
    kd_metrics metrics;
    kd_tfevents events;
    double t_start, t_log; // kd_now() at the start and at the last progress line
    int64_t step_log;      // step of the last progress line
} kd_train_log;

typedef struct {
    const kd_trainer_cfg *cfg;
    kd_train_plan plan;
    kd_optimizer opt;
    kd_grad_comm gc; // gradient reduce-scatter and parameter all-gather
    int overlap;     // the reduce-scatter runs in buckets during the backward (grad_bucket_mb)
    int n_frozen;
    char ckpt_root[2048]; // stage_dir/ckpt
    int64_t last_saved;   // step of the newest checkpoint written or resumed (-1: none)
    kd_host_batch hb;
    uint64_t *pos; // (per_rank) global sample positions of this rank's rows
    kd_train_log log;
} kd_trainer;

// trainer_ckpt.c: collective save of params, moments and progress at pr->step (prunes to
// checkpoint.keep); KD_ERUNTIME with the previous checkpoint intact on failure.
int kd_trainer_save(kd_trainer *tr, const kd_progress *pr, kd_error *err);
// trainer_ckpt.c: the newest valid checkpoint of the stage (or cfg->resume_path) into the
// model, the optimizer and *pr, when cfg->resume allows; KD_OK whether or not one was found.
int kd_trainer_resume(kd_trainer *tr, kd_progress *pr, kd_error *err);

// trainer_log.c: metrics.jsonl cut back to pr->step and opened (rank 0), settings table.
int kd_trainer_log_open(kd_trainer *tr, const kd_progress *pr, kd_error *err);
void kd_trainer_log_close(kd_trainer *tr);
// trainer_log.c: every log_every steps and at the last: metrics line and progress line.
void kd_trainer_log_step(kd_trainer *tr, const kd_progress *pr, const kd_step_result *res);
// trainer_log.c: held-out evaluation every eval_every steps (not at the last one).
int kd_trainer_periodic_eval(kd_trainer *tr, const kd_progress *pr, kd_error *err);

// trainer_stop.c: KD_ERUNTIME once max_bad_steps steps in a row were non-finite (the
// progress counters are identical on every rank, so all ranks stop together).
int kd_trainer_check_bad_steps(const kd_trainer *tr, const kd_progress *pr, kd_error *err);
// trainer_stop.c: at a step boundary: the periodic checkpoint, then the collective stop
// decision (a signal or the deadline on any rank: all save, KD_EREQUEUE).
int kd_trainer_step_boundary(kd_trainer *tr, const kd_progress *pr, kd_error *err);
// trainer_stop.c, test hooks (environment variables, docs/fault-tolerance.md).
void kd_trainer_test_step_delay(void);
void kd_trainer_trace_samples(int64_t step, int rank, int world, const uint64_t *pos, int n);
