// optim.h: AdamW with ZeRO-1 sharding, learning-rate schedules and gradient clipping.
// Each rank holds the moments m and v only for its shard [lo, hi) of the flat parameter
// buffer (kd_shard_range); the trainer reduce-scatters gradients into `gshard`, calls
// kd_optim_step, then all-gathers the parameters. Frozen tensors are neither updated nor
// counted in the gradient norm.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"
#include "runtime/params.h"
#include "runtime/recipe.h"

typedef struct {
    kd_optim spec;
    int total_steps;
    size_t lo, hi;       // this rank's shard of the flat buffer
    float *m, *v;        // backend (hi-lo)
    float *gshard;       // backend (hi-lo): reduced gradient of the shard
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
// Learning rate of update `step` (0-based).
float kd_optim_lr(const kd_optim *spec, int step, int total_steps);
// Sum of squares of the non-frozen part of the shard gradient (to allreduce).
double kd_optim_shard_sumsq(const kd_optimizer *o);
// One AdamW update of the shard of `params` (full buffer) with gradient gshard * gscale.
void kd_optim_step(kd_optimizer *o, float *params, float lr, float gscale);
// Number of trainable parameters (not frozen).
size_t kd_optim_trainable(const kd_optimizer *o);
