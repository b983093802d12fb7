// mamba2_ssd.cu: the CUDA chunked SSD scan of Mamba-2 (ssd_fwd, ssd_bwd), its sequential
// reference (scan_ref) and their shared scratch query; kd_cuda_mamba2_fill_ssd() puts them in
// the table built by kernels/cuda/mamba2.cu. The maths follows the CPU's chunked scan
// (kernels/cpu/mamba2_ssd.c) product by product: the intra-chunk (Q x Q, Q x P, Q x N) and
// state (P x N) products are batched GEMMs over every (b, h, chunk) through
// cublasSgemmBatched on the backend's cuBLAS handle, and between them small grid kernels
// form the operands (masked M and dG, scaled rows), run the chunk recurrences and the
// per-token and per-chunk gradient parts. The order of both is the launch plan
// KD_M2G_SSD_{FWD,BWD}_GEMM_PLAN of kernels/mamba2_grid_ssd_gemm.h; every kernel is a thin
// wrapper over a body of that header or mamba2_grid_ssd.h, and every GEMM step a descriptor
// (kernels/bgemm.h) filled by a builder there: tests/unit/test_mamba2_grid.c runs the same
// plans on the host (GEMMs through naive loops, also in the column-major form given here)
// against the CPU backend. Deterministic: no atomics, one owner per output element, and
// cuBLAS gives the same bits on every run on the same GPU and library.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/mamba2_grid_ssd_gemm.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/cuda_util.cuh"

extern "C" cublasHandle_t kd_cuda_blas(void *ctx); // kernels/cuda/ops_cuda.cu

KD_GRID_KERNEL_OF(kd_m2g_ssd_lr, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dt_cum, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_xw, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_pass, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_mmat, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_yfin, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_edy, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dpass, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_gtok, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_chunk, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_params, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_mdg, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dxfin, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dBfin, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_ref, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_bgemm_ptrs, kd_bgemm)

// One GEMM step of a plan: for each part (full chunks, partial last chunk) the builder's
// descriptor, its block pointers written into the scratch's device pointer arrays by
// kd_bgemm_ptrs, then one cublasSgemmBatched in the column-major order of kd_bgemm_colmajor.
// The pointer arrays are reused by the next call: kernels and cuBLAS share the default stream.
static void cu_gemm(cublasHandle_t blas, kd_m2g_gemm_fn f, const kd_m2g_ssd *a) {
    for (int part = 0; part < 2; part++) {
        kd_bgemm g;
        f(&g, a, part);
        const size_t n = kd_bgemm_count(&g);
        if (!n) continue;
        KD_GRID_LAUNCH(kd_bgemm_ptrs_k, n, g);
        const kd_bgemm_cm c = kd_bgemm_colmajor(&g);
        if (!kd_bgemm_cm_valid(&c))
            kd_cuda_die(__FILE__, __LINE__, "ssd gemm", "a leading dimension below BLAS's rule");
        BLAS_CHECK(cublasSgemmBatched(blas, c.op1 ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      c.op2 ? CUBLAS_OP_T : CUBLAS_OP_N, c.m, c.n, c.k, &g.alpha,
                                      c.p1, c.ld1, c.p2, c.ld2, &g.beta, c.pc, c.ldc, (int)n));
    }
}
// A GEMM step of a launch plan (`blas` in scope).
#define CU_GEMM(f, a) cu_gemm(blas, f, &(a));

// One query for ssd_fwd, ssd_bwd and scan_ref (the layout of kd_m2g_ssd_bind).
static size_t cu_ssd_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T) {
    (void)ctx;
    return kd_m2g_ssd_scratch(d, B, T);
}

// The stage arguments with the scratch laid out (aborts on a short scratch: a caller bug).
static kd_m2g_ssd ssd_args(const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    kd_m2g_ssd a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    KD_SCRATCH_CHECK(ws, kd_m2g_ssd_scratch(d, in->B, in->T));
    kd_m2g_ssd_bind(&a, ws.p);
    return a;
}

// y is (B,T,H,P); states (B,H,nc,P,N) or NULL; final_state, init_state (B,H,P,N) or NULL.
static void cu_ssd_fwd(void *ctx, float *y, float *states, float *final_state,
                       const float *init_state, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                       kd_scratch ws) {
    if (!in->B) return; // T == 0 still sets final_state (= init_state or zeros)
    cublasHandle_t blas = kd_cuda_blas(ctx);
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    a.states = states ? states : a.sbuf;
    KD_M2G_SSD_FWD_GEMM_PLAN(KD_GRID_STAGE, CU_GEMM, a)
}

// dy (B,T,H,P), states from ssd_fwd. dx, dB, dC, ddt overwritten (kv slices of dx and dB
// summed over the heads that read them); ddt_bias, dA_log, dD accumulate.
static void cu_ssd_bwd(void *ctx, const kd_mamba2_grad *g, const float *dy, const float *states,
                       const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    if (!in->B || !in->T) return;
    cublasHandle_t blas = kd_cuda_blas(ctx);
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.g = *g, a.dy = dy, a.st = states;
    KD_M2G_SSD_BWD_GEMM_PLAN(KD_GRID_STAGE, CU_GEMM, a)
}

// The sequential reference: one thread per state row (b,h,p) walks the tokens in order.
static void cu_scan_ref(void *ctx, float *y, float *final_state, const float *init_state,
                        const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    (void)ctx;
    if (!in->B) return;
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    KD_M2G_SCAN_REF_PLAN(KD_GRID_STAGE, a)
}

extern "C" void kd_cuda_mamba2_fill_ssd(kd_mamba2_ops *t) {
    t->ssd_scratch = cu_ssd_scratch, t->ssd_fwd = cu_ssd_fwd, t->ssd_bwd = cu_ssd_bwd;
    t->scan_ref = cu_scan_ref;
}
