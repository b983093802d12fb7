// cpu_losses.h: the CPU kernels of the distillation and preference losses. The backend
// table (kernels/cpu/ops_cpu.c) calls kd_cpu_register_losses once to fill the
// "distillation losses" fields of kd_ops; tests may call the kernels directly. Contracts
// (shapes, overwrite vs accumulate, aliasing) are those of the matching kd_ops fields in
// kernels/ops.h; the maths is in docs/losses.md. Threads: OpenMP over rows; every per-row
// sum is accumulated in double.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"

void kd_cpu_register_losses(kd_ops *ops);

// kd_loss.c
void kd_cpu_distill_full(float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale);
void kd_cpu_distill_topk(float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale);

// pref_loss.c
void kd_cpu_token_logp_fwd(float *logp, const float *logits, const int32_t *targets, int N, int V);
void kd_cpu_token_logp_bwd(float *dlogits, const float *dlogp, const float *logits,
                           const int32_t *targets, int N, int V);
