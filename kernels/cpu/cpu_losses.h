// cpu_losses.h: the CPU kernels of the distillation and preference losses, the entries of
// the CPU backend's kd_losses_ops (kernels/cpu/ops_cpu.c); tests may call them directly.
// Contracts (shapes, overwrite vs accumulate, aliasing, scratch) are those of the matching
// kd_losses_ops fields in kernels/ops.h; the maths is in docs/losses.md. Threads: OpenMP
// over rows; every per-row sum is accumulated in double.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

// kd_loss.c
size_t kd_cpu_distill_full_scratch(void *ctx, int N, int V);
void kd_cpu_distill_full(void *ctx, float *loss, float *dlogits, const float *s, const float *t,
                         const float *w, int N, int V, kd_divergence div, float beta, float tau,
                         float dscale, kd_scratch ws);
size_t kd_cpu_distill_topk_scratch(void *ctx, int N, int V, int K);
void kd_cpu_distill_topk(void *ctx, float *loss, float *dlogits, const float *s, const int32_t *ids,
                         const float *lp, const float *w, int N, int V, int K, kd_topk_mode mode,
                         float tau, float dscale, kd_scratch ws);

// pref_loss.c
void kd_cpu_token_logp_fwd(void *ctx, float *logp, const float *logits, const int32_t *targets,
                           int N, int V);
void kd_cpu_token_logp_bwd(void *ctx, float *dlogits, const float *dlogp, const float *logits,
                           const int32_t *targets, int N, int V);
