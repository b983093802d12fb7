// cpu_mamba2.h: the CPU (OpenBLAS + OpenMP) kernels of the Mamba-2 mixer. The backend
// table (kernels/cpu/ops_cpu.c) calls kd_cpu_register_mamba2 to fill the "Mamba-2" fields
// of kd_ops; tests may call the kernels directly. Contracts (shapes, strides, overwrite vs
// accumulate) are those of the matching kd_ops fields in kernels/ops.h.
// Threads: OpenMP over (batch, head) or (batch, kv head); sgemm inside chunks.
#pragma once
#include "kernels/ops.h"

void kd_cpu_register_mamba2(kd_ops *ops);

// Number of SSD chunks for length T and chunk size Q (the last one may be short).
static inline int kd_mamba2_nchunks(int T, int Q) {
    return (T + Q - 1) / Q;
}

void kd_cpu_mamba2_conv_fwd(float *out, float *conv_state, const float *inp, int ld_in,
                            const float *w, const float *bias, const int32_t *seg, int B, int T,
                            int CD, int W);
void kd_cpu_mamba2_conv_bwd(float *dinp, int ld_dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, int ld_in, const float *w, const float *bias,
                            const int32_t *seg, int B, int T, int CD, int W);
void kd_cpu_mamba2_ssd_fwd(float *y, float *states, float *final_state, const float *init_state,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d);
void kd_cpu_mamba2_ssd_bwd(const kd_mamba2_grad *g, const float *dy, const float *states,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d);
void kd_cpu_mamba2_scan_ref(float *y, float *final_state, const float *init_state,
                            const kd_mamba2_in *in, const kd_mamba2_dims *d);
void kd_cpu_mamba2_gnorm_fwd(float *out, float *rstd, const float *y, const float *z, int ldz,
                             const float *w, int N, int D, int G, float eps);
void kd_cpu_mamba2_gnorm_bwd(float *dy, float *dz, int lddz, float *dw, const float *dout,
                             const float *y, const float *z, int ldz, const float *w,
                             const float *rstd, int N, int D, int G);
void kd_cpu_mamba2_step(float *y, float *conv_state, float *ssm_state, const float *xbc, int ld_xbc,
                        const float *dt, int lddt, const float *conv_w, const float *conv_b,
                        const float *dt_bias, const float *A_log, const float *D,
                        const kd_mamba2_dims *d, int B);
void kd_cpu_mamba2_mat_fwd(float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d);
void kd_cpu_mamba2_mat_bwd(const kd_mamba2_grad *g, const float *dM, const kd_mamba2_in *in,
                           const kd_mamba2_dims *d);
