// mamba2.cu: the CUDA kernels of the Mamba-2 mixer (kd_mamba2_ops; contracts in
// kernels/ops.h, maths in docs/mamba2.md): the causal conv1d + SiLU, the gated group
// RMSNorm and the MOHAWK mixing matrix here, the SSD scan and its reference in
// mamba2_ssd.cu. Every kernel is a thin wrapper over a per-thread body of
// kernels/mamba2_grid.h (launched here in the order tests/unit/test_mamba2_grid.c runs
// them on the host); every output element has one owner, so results are deterministic.
// All ops are asynchronous on the default stream. kd_cuda_mamba2() hands the sub-table to
// kernels/cuda/ops_cuda.cu.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/mamba2_grid.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/cuda_util.cuh"


// ============================================================================ conv

KD_GRID_KERNEL_OF(kd_m2g_conv_lr, kd_m2g_conv)
KD_GRID_KERNEL_OF(kd_m2g_conv_fwd, kd_m2g_conv)
KD_GRID_KERNEL_OF(kd_m2g_conv_state, kd_m2g_conv)
KD_GRID_KERNEL_OF(kd_m2g_conv_grad, kd_m2g_conv)
KD_GRID_KERNEL_OF(kd_m2g_conv_dinp, kd_m2g_conv)
KD_GRID_KERNEL_OF(kd_m2g_conv_dw, kd_m2g_conv)

static size_t cu_conv_scratch(void *ctx, int B, int T, int CD, int W) {
    (void)ctx, (void)W;
    return kd_m2g_conv_scratch(B, T, CD);
}

// out is (B,T,CD), inp is (B,T,ld_in) (columns [0,CD)), w is (CD,W), conv_state (B,CD,W-1).
static void cu_conv_fwd(void *ctx, float *out, float *conv_state, const float *inp, int ld_in,
                        const float *w, const float *bias, const int32_t *seg, int B, int T, int CD,
                        int W, kd_scratch ws) {
    (void)ctx;
    if (B <= 0 || T < 0 || CD <= 0) return; // T == 0 still zeroes conv_state
    KD_SCRATCH_CHECK(ws, kd_m2g_conv_scratch(B, T, CD));
    kd_m2g_conv a;
    memset(&a, 0, sizeof a);
    a.out = out, a.conv_state = conv_state, a.inp = inp, a.w = w, a.bias = bias, a.seg = seg;
    a.ld_in = ld_in, a.B = B, a.T = T, a.CD = CD, a.W = W;
    kd_m2g_conv_bind(&a, ws.p);
    KD_M2G_CONV_FWD_PLAN(KD_GRID_STAGE, a)
}

// dinp columns [0,CD) of (B,T,ld_dinp) overwritten; dw (CD,W), dbias (CD) accumulate.
static void cu_conv_bwd(void *ctx, float *dinp, int ld_dinp, float *dw, float *dbias,
                        const float *dout, const float *inp, int ld_in, const float *w,
                        const float *bias, const int32_t *seg, int B, int T, int CD, int W,
                        kd_scratch ws) {
    (void)ctx;
    if (B <= 0 || T <= 0 || CD <= 0) return;
    KD_SCRATCH_CHECK(ws, kd_m2g_conv_scratch(B, T, CD));
    kd_m2g_conv a;
    memset(&a, 0, sizeof a);
    a.dinp = dinp, a.dw = dw, a.dbias = dbias, a.dout = dout, a.inp = inp, a.w = w;
    a.bias = bias, a.seg = seg, a.ld_in = ld_in, a.ld_dinp = ld_dinp;
    a.B = B, a.T = T, a.CD = CD, a.W = W;
    kd_m2g_conv_bind(&a, ws.p);
    KD_M2G_CONV_BWD_PLAN(KD_GRID_STAGE, a)
}

// ============================================================================ gated norm

KD_GRID_KERNEL_OF(kd_m2g_gnorm_fwd, kd_m2g_gnorm)
KD_GRID_KERNEL_OF(kd_m2g_gnorm_bwd, kd_m2g_gnorm)
KD_GRID_KERNEL_OF(kd_m2g_gnorm_dw, kd_m2g_gnorm)

// out, y are (N,D); z rows of stride ldz; w (D); rstd (N,D/G).
static void cu_gnorm_fwd(void *ctx, float *out, float *rstd, const float *y, const float *z,
                         int ldz, const float *w, int N, int D, int G, float eps) {
    (void)ctx;
    if (N <= 0 || D <= 0) return;
    kd_m2g_gnorm a;
    memset(&a, 0, sizeof a);
    a.out = out, a.rstd = rstd, a.y = y, a.z = z, a.w = w;
    a.ldz = ldz, a.N = N, a.D = D, a.G = G, a.eps = eps;
    KD_M2G_GNORM_FWD_PLAN(KD_GRID_STAGE, a)
}

// dy (N,D), dz (N,lddz) overwritten; dw (D) accumulates.
static void cu_gnorm_bwd(void *ctx, float *dy, float *dz, int lddz, float *dw, const float *dout,
                         const float *y, const float *z, int ldz, const float *w, const float *rstd,
                         int N, int D, int G) {
    (void)ctx;
    if (N <= 0 || D <= 0) return;
    kd_m2g_gnorm a;
    memset(&a, 0, sizeof a);
    a.dy = dy, a.dz = dz, a.dw = dw, a.dout = dout, a.y = y, a.z = z, a.w = w, a.rstd_in = rstd;
    a.ldz = ldz, a.lddz = lddz, a.N = N, a.D = D, a.G = G;
    KD_M2G_GNORM_BWD_PLAN(KD_GRID_STAGE, a)
}

// ============================================================================ MOHAWK matrix

KD_GRID_KERNEL_OF(kd_m2g_mat_lr, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_dt_cum, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_fwd, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_rowcol, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_dC, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_dB, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_finish, kd_m2g_mat)
KD_GRID_KERNEL_OF(kd_m2g_mat_params, kd_m2g_mat)

static size_t cu_mat_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T) {
    (void)ctx;
    return kd_m2g_mat_scratch(d, B, T);
}

static kd_m2g_mat mat_args(const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    kd_m2g_mat a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    KD_SCRATCH_CHECK(ws, kd_m2g_mat_scratch(d, in->B, in->T));
    kd_m2g_mat_bind(&a, ws.p);
    return a;
}

// M is (B,H,T,T). Simple: one thread per element of M, N-term dot product each.
static void cu_mat_fwd(void *ctx, float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                       kd_scratch ws) {
    (void)ctx;
    if (!in->B || !in->T) return;
    kd_m2g_mat a = mat_args(in, d, ws);
    a.M = M;
    KD_M2G_MAT_FWD_PLAN(KD_GRID_STAGE, a)
}

// dM is (B,H,T,T); writes dB (kv slices), dC, ddt; accumulates ddt_bias, dA_log, dD.
// Simple: the row/column sums and dB, dC recompute exp and C.B per term (O(T) per thread).
static void cu_mat_bwd(void *ctx, const kd_mamba2_grad *g, const float *dM, const kd_mamba2_in *in,
                       const kd_mamba2_dims *d, kd_scratch ws) {
    (void)ctx;
    if (!in->B || !in->T) return;
    kd_m2g_mat a = mat_args(in, d, ws);
    a.dM = dM, a.g = *g;
    KD_M2G_MAT_BWD_PLAN(KD_GRID_STAGE, a)
}

// ============================================================================ table

extern "C" void kd_cuda_mamba2_fill_ssd(kd_mamba2_ops *t); // kernels/cuda/mamba2_ssd.cu

static kd_mamba2_ops g_m2;

extern "C" const kd_mamba2_ops *kd_cuda_mamba2(void) {
    g_m2.conv_scratch = cu_conv_scratch, g_m2.conv_fwd = cu_conv_fwd, g_m2.conv_bwd = cu_conv_bwd;
    g_m2.gnorm_fwd = cu_gnorm_fwd, g_m2.gnorm_bwd = cu_gnorm_bwd;
    g_m2.mat_scratch = cu_mat_scratch, g_m2.mat_fwd = cu_mat_fwd, g_m2.mat_bwd = cu_mat_bwd;
    kd_cuda_mamba2_fill_ssd(&g_m2); // ssd_scratch, ssd_fwd, ssd_bwd, scan_ref
    return &g_m2;
}
