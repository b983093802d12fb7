// cpu_mamba2.h: the CPU (OpenBLAS + OpenMP) kernels of the Mamba-2 mixer, the entries of
// the CPU backend's kd_mamba2_ops and of the Mamba-2 half of its kd_decode_ops
// (kernels/cpu/ops_cpu.c); tests may call them directly. Contracts (shapes, strides,
// overwrite vs accumulate, scratch) are those of the matching fields in kernels/ops.h.
// Threads: OpenMP over (batch, head) or (batch, kv head); sgemm inside chunks.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

// Number of SSD chunks for length T and chunk size Q (the last one may be short).
static inline int kd_mamba2_nchunks(int T, int Q) {
    return (T + Q - 1) / Q;
}

// mamba2_conv.c
size_t kd_cpu_mamba2_conv_scratch(void *ctx, int B, int T, int CD, int W);
void kd_cpu_mamba2_conv_fwd(void *ctx, float *out, float *conv_state, const float *inp, int ld_in,
                            const float *w, const float *bias, const int32_t *seg, int B, int T,
                            int CD, int W, kd_scratch ws);
void kd_cpu_mamba2_conv_bwd(void *ctx, float *dinp, int ld_dinp, float *dw, float *dbias,
                            const float *dout, const float *inp, int ld_in, const float *w,
                            const float *bias, const int32_t *seg, int B, int T, int CD, int W,
                            kd_scratch ws);

// mamba2_ssd.c (ssd_fwd, ssd_bwd) and mamba2_scan.c (scan_ref) share one size query
size_t kd_cpu_mamba2_ssd_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T);
void kd_cpu_mamba2_ssd_fwd(void *ctx, float *y, float *states, float *final_state,
                           const float *init_state, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                           kd_scratch ws);
void kd_cpu_mamba2_ssd_bwd(void *ctx, const kd_mamba2_grad *g, const float *dy, const float *states,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);
void kd_cpu_mamba2_scan_ref(void *ctx, float *y, float *final_state, const float *init_state,
                            const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);
// Per-thread bytes scan_ref needs (part of kd_cpu_mamba2_ssd_scratch).
size_t kd_cpu_mamba2_scan_thread_bytes(const kd_mamba2_dims *d);

// mamba2_norm.c
void kd_cpu_mamba2_gnorm_fwd(void *ctx, float *out, float *rstd, const float *y, const float *z,
                             int ldz, const float *w, int N, int D, int G, float eps);
void kd_cpu_mamba2_gnorm_bwd(void *ctx, float *dy, float *dz, int lddz, float *dw,
                             const float *dout, const float *y, const float *z, int ldz,
                             const float *w, const float *rstd, int N, int D, int G);

// mamba2_mat.c
size_t kd_cpu_mamba2_mat_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T);
void kd_cpu_mamba2_mat_fwd(void *ctx, float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                           kd_scratch ws);
void kd_cpu_mamba2_mat_bwd(void *ctx, const kd_mamba2_grad *g, const float *dM,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws);

// mamba2_scan.c: the decode step
size_t kd_cpu_mamba2_step_scratch(void *ctx, const kd_mamba2_dims *d, int B);
void kd_cpu_mamba2_step(void *ctx, float *y, float *conv_state, float *ssm_state, const float *xbc,
                        int ld_xbc, const float *dt, int lddt, const float *conv_w,
                        const float *conv_b, const float *dt_bias, const float *A_log,
                        const float *D, const kd_mamba2_dims *d, int B, kd_scratch ws);
