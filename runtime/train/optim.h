// optim.h: the update rule of a training stage: AdamW with ZeRO-1 sharding, the
// learning-rate schedule and gradient clipping. The optimizer owns all three: given the
// schedule position and the global gradient norm it picks the learning rate (warmup, then
// cosine, linear or constant; the recipe's optim block) and the clipping factor; the
// trainer only asks (kd_optim_lr, for its log). Each rank holds the moments m and v only
// for its shard [lo, hi) of the flat parameter buffer (kd_shard_range); the trainer
// reduce-scatters gradients into `gshard`, calls kd_optim_step, then all-gathers the
// parameters. Frozen tensors are neither updated nor counted in the gradient norm.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"
#include "runtime/config/recipe.h"
#include "runtime/model/params.h"

typedef struct {
    kd_optim spec;
    int total_steps;     // schedule length: the stage's optimizer steps
    size_t lo, hi;       // this rank's shard of the flat buffer
    float *m, *v;        // backend (hi-lo)
    float *gshard;       // backend (hi-lo): reduced gradient of the shard
    int gshard_owned;    // 0: gshard is the model's gradient buffer (kd_optim_use_grads)
    uint8_t *frozen;     // per tensor of the table
    int t;               // AdamW step count (1-based after the first update)
    const kd_ops *ops;
    const kd_param_table *pt;
} kd_optimizer;

// Returns the number of frozen tensors via *n_frozen; globs match parameter names.
void kd_optim_init(kd_optimizer *o, const kd_ops *ops, const kd_param_table *pt,
                   const kd_optim *spec, int total_steps, size_t lo, size_t hi,
                   char (*freeze)[128], int n_freeze, int *n_frozen);
void kd_optim_free(kd_optimizer *o);
// Learning rate of the update at schedule position `step` (0-based: the stage's optimizer
// steps before this one, skipped non-finite steps included).
float kd_optim_lr(const kd_optimizer *o, int64_t step);
// Sum of squares of the non-frozen part of the shard gradient (to allreduce).
double kd_optim_shard_sumsq(const kd_optimizer *o);
// One AdamW update of the shard of `params` (full buffer) at schedule position `step`:
// the gradient is scaled to norm spec.grad_clip when the global gradient norm `gnorm`
// (sqrt of the sum over ranks of kd_optim_shard_sumsq) exceeds it (inside the AdamW pass;
// gshard is not written). Returns the learning
// rate it used. Call only with a finite gnorm (the trainer skips the others).
float kd_optim_step(kd_optimizer *o, float *params, int64_t step, double gnorm);
// One rank owns the whole buffer: gshard becomes the model's gradient buffer itself (no
// reduce-scatter copy each step). Only when the shard is [0, total).
void kd_optim_use_grads(kd_optimizer *o, float *grads);
// Number of trainable parameters (not frozen).
size_t kd_optim_trainable(const kd_optimizer *o);
// The optimizer's rows of the settings table: lr and schedule, AdamW, gradient clipping.
void kd_optim_log_settings(const kd_optimizer *o);
