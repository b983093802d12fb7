// trainer.h: the one step loop every training stage uses. Per optimizer step: this rank's
// slice of the global batch in micro-batches (exactly global/(micro*ranks) of them),
// forward, the stage's loss head, backward, gradient reduce-scatter, the optimizer's update
// of the shard (ZeRO-1; schedule and clipping are the optimizer's, optim.h), parameter
// all-gather, logging and checkpoints. The stage supplies a kd_task (how to fill samples
// and compute its loss); the trainer knows nothing of what the data means.
#pragma once
#include <stdint.h>

#include "runtime/store/checkpoint.h"
#include "runtime/base/comm.h"
#include "runtime/model/model.h"
#include "runtime/config/recipe.h"

#define KD_TASK_MAX_EXTRA 64  // per-layer losses of `align` stages

typedef struct {
    void *ctx;
    // Fill n samples at global positions pos[0..n) (each a (T) row): inputs ids, targets
    // (-1 = no loss) and per-target weights. seg (document ids) may be left NULL by passing
    // a NULL buffer; the trainer passes one and checks *used_seg.
    int (*fill)(void *ctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets,
                float *weights, int32_t *seg, int *used_seg, kd_error *err);
    // Loss head after the forward of a micro-batch: returns the weighted loss sum; with
    // want_grad writes dscale * dloss/dlogits into the logits buffer; adds extra metric
    // sums (same normalisation as the loss) into extra[0..n_extra).
    double (*loss)(void *ctx, kd_model *m, const int32_t *targets, const float *weights, int n,
                   int T, float dscale, int want_grad, double *extra);
    int n_extra;
    const char *extra_names[KD_TASK_MAX_EXTRA];
    uint64_t n_samples;   // samples per epoch (for the epoch counter and messages)
    // Loss normalisation: 0 (default) per target token (sum of weights of targets >= 0
    // over the global batch); k > 0: per group of k samples (e.g. 2 rows per preference
    // pair), i.e. the global batch counts global/k units whatever the weights.
    int samples_per_unit;
    // Optional: replaces forward + loss + backward of one micro-batch (e.g. per-layer
    // alignment, preference pairs). Must ACCUMULATE gradients into the model's grads
    // (scaled by dscale) and add the weighted loss sum to *loss_sum. Runs at most one
    // kd_model_backward, as its last model call (the gradient buckets start during it).
    int (*step)(void *ctx, kd_model *m, const int32_t *ids, const int32_t *targets,
                const float *weights, const int32_t *seg, int n, int T, float dscale,
                double *loss_sum, double *extra, kd_error *err);
} kd_task;

typedef enum { KD_RESUME_AUTO = 0, KD_RESUME_NEVER, KD_RESUME_FORCE } kd_resume_mode;

// Progress a checkpoint can restore.
typedef struct {
    int64_t step;              // optimizer steps done
    uint64_t samples;          // global samples consumed
    int bad_steps;             // consecutive non-finite steps
    int64_t skipped_total;
} kd_progress;

typedef struct {
    kd_comm *comm;
    kd_model *model;
    const kd_stage_spec *spec;
    kd_task task;
    kd_task eval_task;         // eval_task.fill == NULL: no held-out evaluation
    const char *stage_dir;     // run/stages/NN-name (checkpoints go to stage_dir/ckpt)
    uint64_t seed;
    int quiet;                 // tests: no progress lines
    int tensorboard;           // rank 0 also writes TensorBoard events (run.tensorboard)
    int stage_index;
    kd_resume_mode resume;     // look for this stage's newest valid checkpoint first
    const char *resume_path;   // or resume from exactly this checkpoint (must verify)
    uint64_t recipe_hash;      // of the whole resolved recipe (informational)
    uint64_t model_hash;       // what must match for a resume (kd_stage_model_hash)
    const kd_ckpt_attr *attrs; // model config stored on model.h5
    int n_attrs;
    double deadline;           // kd_now() after which the stage saves and stops (0: none)
    double grad_bucket_mb;     // gradient buckets reduced during the backward (0: after it)
    char *final_ckpt;          // out: path of the final checkpoint (may be NULL)
    size_t final_ckpt_len;
} kd_trainer_cfg;

// Runs the stage's steps, first resuming from the stage's newest valid checkpoint when
// cfg->resume allows (progress is then overwritten). Saves every spec->checkpoint.every
// steps and at the end (always: later stages start from it). Returns KD_OK when all steps
// are done; KD_EREQUEUE when a signal or the time budget stopped it after saving;
// KD_ERUNTIME when a checkpoint could not be written (the previous one stays valid).
int kd_trainer_run(const kd_trainer_cfg *cfg, kd_progress *progress, kd_error *err);
// Mean held-out loss of the eval task over `n_samples` samples (all ranks, no grads).
int kd_trainer_evaluate(const kd_trainer_cfg *cfg, uint64_t n_samples, double *mean_loss,
                        double *extra, kd_error *err);
