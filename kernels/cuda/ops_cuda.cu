// ops_cuda.cu: the first CUDA backend. Its kd_ops has the sub-tables memory (cudaMalloc,
// cudaMemcpy), vector arithmetic, nn (matmul through cuBLAS, row-major via the
// transposition trick: a row-major (M,N) matrix is a column-major (N,M) one; simple,
// correct kernels for everything else: one thread or one block per row, no tiling yet;
// attention is memory-lean, its per-thread bodies in kernels/attention_grid.h),
// losses (kernels/cuda/losses.cu), optim, mamba2 (mamba2*.cu) and decode (decode.cu). Every
// op is asynchronous on the default stream except the copies to and from the host and
// sumsq. The backend's state (cuBLAS handle, sumsq's partial sums) is its ctx. No kernel
// uses float atomics: every result is the same on every run.
// kd_cuda_ops_probe() is the entry point (called by kernels/backend.c); kd_cuda_blas() lends
// the cuBLAS handle to the ops of the other CUDA sources.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "kernels/attention_grid.h"
#include "kernels/math.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/cuda_util.cuh"

// The backend's state, handed to every op as ctx.
typedef struct kd_cuda_ctx {
    cublasHandle_t blas;
    double *dsum; // (KD_CUDA_MAX_GRID) per-block partial sums of sumsq, on the device
    int bf16;     // run.precision bf16: matmul operands rounded to bf16 (set_precision)
    __nv_bfloat16 *lp; // (lp_elems) the matmul operands in bf16, grown to the largest call
    size_t lp_elems;
} kd_cuda_ctx;

static kd_cuda_ctx *cuda_ctx(void *ctx) {
    return (kd_cuda_ctx *)ctx;
}
// The cuBLAS handle of the backend's ctx, for the ops of other CUDA sources (mamba2_ssd.cu).
extern "C" cublasHandle_t kd_cuda_blas(void *ctx) {
    return cuda_ctx(ctx)->blas;
}

static const int TPB = KD_CUDA_TPB; // threads per block
static unsigned nblocks(size_t n) {
    return (unsigned)((n + TPB - 1) / TPB);
}

__device__ double block_sum(double v) {
    return kd_block_reduce(v, kd_cuda_sum());
}
__device__ float block_max(float v) {
    return kd_block_reduce(v, kd_cuda_max());
}

// ============================================================================ memory

static void *cu_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 4) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky-free error so later calls are unaffected
        return NULL;
    }
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 4));
    return p;
}
static void cu_free(void *ctx, void *p) {
    (void)ctx;
    if (p) CUDA_CHECK(cudaFree(p));
}
static void cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
static void cu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes && dst != src)
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}
static void cu_zero(void *ctx, void *dst, size_t bytes) {
    (void)ctx;
    if (bytes) CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, 0));
}

// ============================================================================ elementwise

__global__ void k_add(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}
__global__ void k_axpy(float *y, float a, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += a * x[i];
}
__global__ void k_scale(float *x, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}
// Block b's partial sum into part[b]; the host adds the partials in block order, so the
// result does not depend on which block finished first (no atomics).
__global__ void k_sumsq(double *part, const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

#define KD_CUDA_MAX_GRID 4096 // blocks of a grid-stride kernel
static unsigned grid_for(size_t n) {
    unsigned g = nblocks(n);
    return g < 1 ? 1 : (g > KD_CUDA_MAX_GRID ? KD_CUDA_MAX_GRID : g);
}
static void cu_add(void *ctx, float *out, const float *a, const float *b, size_t n) {
    (void)ctx;
    if (n) k_add<<<grid_for(n), TPB>>>(out, a, b, n);
}
static void cu_axpy(void *ctx, float *y, float a, const float *x, size_t n) {
    (void)ctx;
    if (n) k_axpy<<<grid_for(n), TPB>>>(y, a, x, n);
}
static void cu_scale(void *ctx, float *x, float s, size_t n) {
    (void)ctx;
    if (n) k_scale<<<grid_for(n), TPB>>>(x, s, n);
}
static double cu_sumsq(void *ctx, const float *x, size_t n) {
    if (!n) return 0.0;
    static double part[KD_CUDA_MAX_GRID];
    unsigned g = grid_for(n);
    k_sumsq<<<g, TPB>>>(cuda_ctx(ctx)->dsum, x, n);
    CUDA_CHECK(cudaMemcpy(part, cuda_ctx(ctx)->dsum, sizeof(double) * g, cudaMemcpyDeviceToHost));
    double h = 0.0;
    for (unsigned b = 0; b < g; b++) h += part[b];
    return h;
}

// ============================================================================ embedding

__global__ void k_embedding_fwd(float *out, const int32_t *ids, const float *wte, int N, int C) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    out[i] = wte[(size_t)ids[n] * C + c];
}
// One thread per column c, over the rows in order: a repeated id's gradients are summed
// in the same order on every run (atomics would not be), so a resumed run stays bitwise
// equal to an uninterrupted one. Neighbouring threads touch neighbouring columns.
__global__ void k_embedding_bwd(float *dwte, const float *dout, const int32_t *ids, int N, int C) {
    size_t c = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (c >= (size_t)C) return;
    for (int n = 0; n < N; n++) dwte[(size_t)ids[n] * C + c] += dout[(size_t)n * C + c];
}
static void cu_embedding_fwd(void *ctx, float *out, const int32_t *ids, const float *wte, int N,
                             int C) {
    (void)ctx;
    size_t n = (size_t)N * C;
    if (n) k_embedding_fwd<<<nblocks(n), TPB>>>(out, ids, wte, N, C);
}
static void cu_embedding_bwd(void *ctx, float *dwte, const float *dout, const int32_t *ids, int N,
                             int C) {
    (void)ctx;
    size_t n = (size_t)N * C;
    if (n) k_embedding_bwd<<<nblocks((size_t)C), TPB>>>(dwte, dout, ids, N, C);
}

// ============================================================================ matmul (cuBLAS)

// Row-major out (N,OC) = inp (N,C) w^T is column-major out^T (OC,N) = w (OC,C) inp^T:
// w is stored as column-major (C,OC) = w^T, hence op T; inp as column-major (C,N), op N.
// ---- bf16 products (run.precision bf16): the operands are rounded to bf16 into the ctx's
// workspace and multiplied on the tensor cores with fp32 accumulation into the fp32
// output (cublasGemmEx, CUBLAS_COMPUTE_32F). The fp32 parameters stay the master copy.
// The workspace is the one allocation an op makes: it grows to the largest product's
// operands on first use of that shape (the first step), never in steady state.

__global__ void k_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}


// The workspace with room for `elems` bf16 values.
static __nv_bfloat16 *lp_reserve(kd_cuda_ctx *c, size_t elems) {
    if (elems > c->lp_elems) {
        if (c->lp) CUDA_CHECK(cudaFree(c->lp));
        CUDA_CHECK(cudaMalloc((void **)&c->lp, elems * sizeof(__nv_bfloat16)));
        c->lp_elems = elems;
    }
    return c->lp;
}

// src (n floats) rounded into dst.
static const __nv_bfloat16 *to_bf16(__nv_bfloat16 *dst, const float *src, size_t n) {
    if (n) k_to_bf16<<<grid_for(n), TPB>>>(dst, src, n);
    return dst;
}

// Column-major C (m,n) = alpha op(A) op(B) + beta C with bf16 A, B and fp32 C.
static void gemm_bf16(kd_cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, const __nv_bfloat16 *A, int lda, const __nv_bfloat16 *B, int ldb,
                      float beta, float *C, int ldc) {
    const float one = 1.0f;
    BLAS_CHECK(cublasGemmEx(c->blas, ta, tb, m, n, k, &one, A, CUDA_R_16BF, lda, B, CUDA_R_16BF,
                            ldb, &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

static void matmul_fwd_bf16(kd_cuda_ctx *c, float *out, const float *inp, const float *w, int N,
                            int C, int OC) {
    size_t nw = (size_t)OC * C, ni = (size_t)N * C;
    __nv_bfloat16 *ws = lp_reserve(c, nw + ni);
    const __nv_bfloat16 *wb = to_bf16(ws, w, nw), *ib = to_bf16(ws + nw, inp, ni);
    gemm_bf16(c, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, wb, C, ib, C, 0.0f, out, OC);
}

static void matmul_bwd_bf16(kd_cuda_ctx *c, float *dinp, float *dw, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    size_t nw = (size_t)OC * C, ni = (size_t)N * C, nd = (size_t)N * OC;
    __nv_bfloat16 *ws = lp_reserve(c, nw + ni + nd);
    const __nv_bfloat16 *db = to_bf16(ws + nw + ni, dout, nd);
    if (dinp)
        gemm_bf16(c, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, to_bf16(ws, w, nw), C, db, OC, 0.0f, dinp,
                  C);
    if (dw)
        gemm_bf16(c, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, to_bf16(ws + nw, inp, ni), C, db, OC, 1.0f,
                  dw, C);
}

static int cu_set_precision(void *ctx, kd_precision p) {
    cuda_ctx(ctx)->bf16 = p == KD_PREC_BF16;
    return 0;
}

static void cu_matmul_fwd(void *ctx, float *out, const float *inp, const float *w, int N, int C,
                          int OC) {
    const float one = 1.0f, zero = 0.0f;
    if (N <= 0 || OC <= 0) return;
    if (cuda_ctx(ctx)->bf16) return matmul_fwd_bf16(cuda_ctx(ctx), out, inp, w, N, C, OC);
    BLAS_CHECK(cublasSgemm(cuda_ctx(ctx)->blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, inp,
                           C, &zero, out, OC));
}
// dinp^T (C,N) = w^T (C,OC) . dout^T (OC,N) ; dw^T (C,OC) += inp^T (C,N) . dout (N,OC).
static void cu_matmul_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, int N, int C, int OC) {
    const float one = 1.0f, zero = 0.0f;
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (cuda_ctx(ctx)->bf16) return matmul_bwd_bf16(cuda_ctx(ctx), dinp, dw, dout, inp, w, N, C, OC);
    if (dinp)
        BLAS_CHECK(cublasSgemm(cuda_ctx(ctx)->blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, w, C,
                               dout, OC, &zero, dinp, C));
    if (dw)
        BLAS_CHECK(cublasSgemm(cuda_ctx(ctx)->blas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp,
                               C, dout, OC, &one, dw, C));
}

// ============================================================================ RMSNorm

// One block per row.
__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int C,
                              float eps) {
    const float *x = inp + (size_t)blockIdx.x * C;
    float *y = out + (size_t)blockIdx.x * C;
    double ss = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)x[c] * x[c];
    ss = block_sum(ss);
    float r = (float)(1.0 / sqrt(ss / C + (double)eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = x[c] * r * w[c];
}
__global__ void k_rmsnorm_bwd_dinp(float *dinp, const float *dout, const float *inp, const float *w,
                                   const float *rstd, int C) {
    const float *x = inp + (size_t)blockIdx.x * C, *dy = dout + (size_t)blockIdx.x * C;
    float *dx = dinp + (size_t)blockIdx.x * C;
    float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)w[c] * dy[c] * x[c];
    dot = block_sum(dot);
    float k = (float)(dot * r * r * r / C);
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += r * w[c] * dy[c] - k * x[c];
}
// One thread per column, looping over rows.
__global__ void k_rmsnorm_bwd_dw(float *dw, const float *dout, const float *inp, const float *rstd,
                                 int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n];
    dw[c] += acc;
}
static void cu_rmsnorm_fwd(void *ctx, float *out, float *rstd, const float *inp, const float *w,
                           int N, int C, float eps) {
    (void)ctx;
    if (N > 0) k_rmsnorm_fwd<<<N, TPB>>>(out, rstd, inp, w, C, eps);
}
static void cu_rmsnorm_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                           const float *w, const float *rstd, int N, int C) {
    (void)ctx;
    if (N <= 0) return;
    if (dinp) k_rmsnorm_bwd_dinp<<<N, TPB>>>(dinp, dout, inp, w, rstd, C);
    if (dw) k_rmsnorm_bwd_dw<<<nblocks(C), TPB>>>(dw, dout, inp, rstd, N, C);
}

// ============================================================================ RoPE

// One thread per rotated pair (n, head, i); dir = +1 forward, -1 inverse. inv_freq (HD/2).
__global__ void k_rope(float *x, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                       const float *inv_freq, float dir) {
    int half = HD / 2;
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t >= (size_t)N * nrot * half) return;
    int i = (int)(t % half), h = (int)((t / half) % nrot);
    size_t n = t / ((size_t)half * nrot);
    float *a = x + n * row_stride + (size_t)h * HD;
    float ang = (float)pos[n] * inv_freq[i];
    float c = cosf(ang), s = dir * sinf(ang);
    float x1 = a[i], x2 = a[i + half];
    a[i] = x1 * c - x2 * s;
    a[i + half] = x2 * c + x1 * s;
}
static void cu_rope_fwd(void *ctx, float *x, const int32_t *pos, int N, int nrot, int row_stride,
                        int HD, const float *inv_freq) {
    (void)ctx;
    size_t n = (size_t)N * nrot * (HD / 2);
    if (n) k_rope<<<nblocks(n), TPB>>>(x, pos, N, nrot, row_stride, HD, inv_freq, 1.0f);
}
static void cu_rope_bwd(void *ctx, float *dx, const int32_t *pos, int N, int nrot, int row_stride,
                        int HD, const float *inv_freq) {
    (void)ctx;
    size_t n = (size_t)N * nrot * (HD / 2);
    if (n) k_rope<<<nblocks(n), TPB>>>(dx, pos, N, nrot, row_stride, HD, inv_freq, -1.0f);
}

// ============================================================================ attention
// Memory-lean attention: the bodies (one query row, one key row or one probability per
// thread) are in kernels/attention_grid.h, shared with the CPU tests.

__global__ void k_attention_fwd(float *out, float *lse, const float *qkv, const int32_t *seg,
                                kd_attg_dims d, size_t n) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t < n) kd_attg_fwd_row(t, out, lse, qkv, seg, d);
}
__global__ void k_attention_bwd_D(float *D, const float *dout, const float *out, kd_attg_dims d,
                                  size_t n) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t < n) kd_attg_bwd_D(t, D, dout, out, d);
}
__global__ void k_attention_bwd_q(float *dqkv, const float *dout, const float *lse, const float *D,
                                  const float *qkv, const int32_t *seg, kd_attg_dims d, size_t n) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t < n) kd_attg_bwd_q_row(t, dqkv, dout, lse, D, qkv, seg, d);
}
__global__ void k_attention_bwd_kv(float *dqkv, const float *dout, const float *lse,
                                   const float *D, const float *qkv, const int32_t *seg,
                                   kd_attg_dims d, size_t n) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t < n) kd_attg_bwd_kv_row(t, dqkv, dout, lse, D, qkv, seg, d);
}
__global__ void k_attention_probs(float *P, const float *qkv, const float *lse, const int32_t *seg,
                                  kd_attg_dims d, size_t n) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t < n) kd_attg_probs_elem(t, P, qkv, lse, seg, d);
}
// Scratch: D (B,NH,T) of the backward.
static size_t cu_attention_scratch(void *ctx, int B, int T, int NH, int HD) {
    (void)ctx, (void)HD;
    return sizeof(float) * (size_t)B * NH * T;
}
static void cu_attention_fwd(void *ctx, float *out, float *lse, const float *qkv,
                             const int32_t *seg, int B, int T, int NH, int NKV, int HD,
                             kd_scratch ws) {
    (void)ctx, (void)ws;
    kd_attg_dims d = {B, T, NH, NKV, HD};
    size_t n = (size_t)B * NH * T;
    if (n) k_attention_fwd<<<nblocks(n), TPB>>>(out, lse, qkv, seg, d, n);
}
static void cu_attention_bwd(void *ctx, float *dqkv, const float *dout, const float *out,
                             const float *lse, const float *qkv, const int32_t *seg, int B, int T,
                             int NH, int NKV, int HD, kd_scratch ws) {
    (void)ctx;
    kd_attg_dims d = {B, T, NH, NKV, HD};
    size_t nq = (size_t)B * NH * T, nkv = (size_t)B * NKV * T;
    if (!nq) return;
    float *D = (float *)ws.p; // (B,NH,T)
    k_attention_bwd_D<<<nblocks(nq), TPB>>>(D, dout, out, d, nq);
    k_attention_bwd_q<<<nblocks(nq), TPB>>>(dqkv, dout, lse, D, qkv, seg, d, nq);
    k_attention_bwd_kv<<<nblocks(nkv), TPB>>>(dqkv, dout, lse, D, qkv, seg, d, nkv);
}
static void cu_attention_probs(void *ctx, float *P, const float *qkv, const float *lse,
                               const int32_t *seg, int B, int T, int NH, int NKV, int HD) {
    (void)ctx;
    kd_attg_dims d = {B, T, NH, NKV, HD};
    size_t n = (size_t)B * NH * T * T;
    if (n) k_attention_probs<<<nblocks(n), TPB>>>(P, qkv, lse, seg, d, n);
}

// ============================================================================ SwiGLU

__global__ void k_swiglu_fwd(float *out, const float *gu, int N, int F) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t >= (size_t)N * F) return;
    size_t n = t / F, f = t % F;
    out[t] = kd_silu(gu[n * 2 * F + f]) * gu[n * 2 * F + F + f];
}
__global__ void k_swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int F) {
    size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (t >= (size_t)N * F) return;
    size_t n = t / F, f = t % F;
    float g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f], d = dout[t];
    dgu[n * 2 * F + f] = d * u * kd_dsilu(g);
    dgu[n * 2 * F + F + f] = d * kd_silu(g);
}
static void cu_swiglu_fwd(void *ctx, float *out, const float *gu, int N, int F) {
    (void)ctx;
    size_t n = (size_t)N * F;
    if (n) k_swiglu_fwd<<<nblocks(n), TPB>>>(out, gu, N, F);
}
static void cu_swiglu_bwd(void *ctx, float *dgu, const float *dout, const float *gu, int N, int F) {
    (void)ctx;
    size_t n = (size_t)N * F;
    if (n) k_swiglu_bwd<<<nblocks(n), TPB>>>(dgu, dout, gu, N, F);
}

// ============================================================================ cross entropy

// One block per row; dlogits may alias logits (statistics are taken before writing).
__global__ void k_cross_entropy(float *loss, float *dlogits, const float *logits,
                                const int32_t *targets, const float *weights, int V, float dscale) {
    size_t row = blockIdx.x;
    const float *x = logits + row * V;
    float *dx = dlogits ? dlogits + row * V : NULL;
    int t = targets[row];
    if (t < 0) {
        if (threadIdx.x == 0) loss[row] = 0.0f;
        if (dx)
            for (int j = threadIdx.x; j < V; j += blockDim.x) dx[j] = 0.0f;
        return;
    }
    float w = weights ? weights[row] : 1.0f;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, x[j]);
    mx = block_max(mx);
    double s = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += (double)expf(x[j] - mx);
    s = block_sum(s);
    float xt = x[t];
    __syncthreads(); // every thread has read x[t] before any dx write (aliasing)
    if (threadIdx.x == 0) loss[row] = (float)((double)w * ((double)mx + log(s) - (double)xt));
    if (dx) {
        float c = dscale * w, inv = (float)(1.0 / s);
        for (int j = threadIdx.x; j < V; j += blockDim.x)
            dx[j] = c * (expf(x[j] - mx) * inv - (j == t ? 1.0f : 0.0f));
    }
}
static void cu_cross_entropy(void *ctx, float *loss, float *dlogits, const float *logits,
                             const int32_t *targets, const float *weights, int N, int V,
                             float dscale) {
    (void)ctx;
    if (N > 0) k_cross_entropy<<<N, TPB>>>(loss, dlogits, logits, targets, weights, V, dscale);
}

// ============================================================================ AdamW

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                        float b2, float eps, float wd, float bc1, float bc2, float gscale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        kd_adamw_elem(&p[i], g[i] * gscale, &m[i], &v[i], lr, b1, b2, eps, wd, bc1, bc2);
}
static void cu_adamw(void *ctx, float *p, const float *g, float *m, float *v, size_t n, float lr,
                     float b1, float b2, float eps, float wd, int t, float gscale) {
    (void)ctx;
    float bc1 = (float)(1.0 - pow((double)b1, (double)t)),
          bc2 = (float)(1.0 - pow((double)b2, (double)t));
    if (n) k_adamw<<<grid_for(n), TPB>>>(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gscale);
}

// ============================================================================ tables and probe

extern "C" const kd_losses_ops *kd_cuda_losses(void); // kernels/cuda/losses.cu
extern "C" const kd_mamba2_ops *kd_cuda_mamba2(void); // kernels/cuda/mamba2.cu
extern "C" const kd_decode_ops *kd_cuda_decode(void); // kernels/cuda/decode.cu
extern "C" const kd_coll_ops *kd_cuda_coll(void);     // kernels/cuda/nccl.cu

static kd_cuda_ctx g_ctx;
static kd_mem_ops g_mem;
static kd_vec_ops g_vec;
static kd_nn_ops g_nn;
static kd_optim_ops g_optim;
static kd_ops g_table;
static int g_ready = 0;

// Fills the sub-tables (field by field: C++17 has no designated initialisers).
static void fill_tables(void) {
    g_mem.host_visible = 0;
    g_mem.alloc = cu_alloc, g_mem.free = cu_free, g_mem.upload = cu_upload;
    g_mem.download = cu_download, g_mem.copy = cu_copy, g_mem.zero = cu_zero;
    g_vec.add = cu_add, g_vec.axpy = cu_axpy, g_vec.scale = cu_scale, g_vec.sumsq = cu_sumsq;
    g_nn.embedding_fwd = cu_embedding_fwd, g_nn.embedding_bwd = cu_embedding_bwd;
    g_nn.matmul_fwd = cu_matmul_fwd, g_nn.matmul_bwd = cu_matmul_bwd;
    g_nn.rmsnorm_fwd = cu_rmsnorm_fwd, g_nn.rmsnorm_bwd = cu_rmsnorm_bwd;
    g_nn.rope_fwd = cu_rope_fwd, g_nn.rope_bwd = cu_rope_bwd;
    g_nn.attention_scratch = cu_attention_scratch;
    g_nn.attention_fwd = cu_attention_fwd, g_nn.attention_bwd = cu_attention_bwd;
    g_nn.attention_probs = cu_attention_probs;
    g_nn.swiglu_fwd = cu_swiglu_fwd, g_nn.swiglu_bwd = cu_swiglu_bwd;
    g_nn.cross_entropy = cu_cross_entropy;
    g_optim.adamw = cu_adamw;
    g_table.name = "cuda";
    g_table.ctx = &g_ctx;
    g_table.mem = &g_mem, g_table.vec = &g_vec, g_table.nn = &g_nn;
    g_table.losses = kd_cuda_losses(), g_table.optim = &g_optim;
    g_table.mamba2 = kd_cuda_mamba2(), g_table.decode = kd_cuda_decode();
    g_table.coll = kd_cuda_coll();
    g_table.set_precision = cu_set_precision;
}

// The table without a device (its ctx is not initialised): for asking what it holds
// (kd_ops_missing), never for calling an op.
extern "C" const kd_ops *kd_cuda_ops_table(void) {
    if (!g_ready) fill_tables();
    return &g_table;
}

extern "C" const kd_ops *kd_cuda_ops_probe(char *why, size_t why_len) {
    if (g_ready) return &g_table;
    int count = 0; // without a driver the call fails (error 35) and leaves count untouched
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        if (why && why_len)
            snprintf(why, why_len, "no usable CUDA device (cudaGetDeviceCount: %s, %d devices)",
                     e == cudaSuccess ? "ok" : cudaGetErrorString(e), count);
        cudaGetLastError();
        return NULL;
    }
    if (cublasCreate(&g_ctx.blas) != CUBLAS_STATUS_SUCCESS) {
        if (why && why_len) snprintf(why, why_len, "CUDA device found but cublasCreate failed");
        return NULL;
    }
    if (cudaMalloc((void **)&g_ctx.dsum, sizeof(double) * KD_CUDA_MAX_GRID) != cudaSuccess) {
        if (why && why_len)
            snprintf(why, why_len, "CUDA device found but a 32 KiB cudaMalloc failed");
        cublasDestroy(g_ctx.blas);
        return NULL;
    }
    fill_tables();
    g_ready = 1;
    return &g_table;
}
