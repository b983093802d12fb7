// ops_cpu.c: the CPU backend's kd_ops and its sub-tables, plus the ops too small for a
// file of their own: memory (host memory, 64-byte aligned), vector arithmetic and AdamW.
// The kernels live in matmul.c, attention.c, norm.c, mlp.c, loss.c (nn), kd_loss.c and
// pref_loss.c (losses), mamba2_*.c (mamba2) and attention_decode.c, mamba2_scan.c (decode).
// The backend keeps no state: ctx is NULL and every op ignores it.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_losses.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/math.h"
#include "kernels/ops.h"

// ============================================================================ memory

// Zero-filled, 64-byte aligned (cache line / AVX-512 friendly). NULL when out of memory:
// the caller turns that into a kd_error naming the tensor.
static void *cpu_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    void *p = NULL;
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

static void cpu_free(void *ctx, void *p) {
    (void)ctx;
    free(p);
}

static void cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes && dst != src) memmove(dst, src, bytes);
}

static void cpu_zero(void *ctx, void *dst, size_t bytes) {
    (void)ctx;
    if (bytes) memset(dst, 0, bytes);
}

// ============================================================================ vector arithmetic

// out (n) = a (n) + b (n); out may alias a or b.
static void cpu_add(void *ctx, float *out, const float *a, const float *b, size_t n) {
    (void)ctx;
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// y (n) += a * x (n)
static void cpu_axpy(void *ctx, float *y, float a, const float *x, size_t n) {
    (void)ctx;
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

// x (n) *= s
static void cpu_scale(void *ctx, float *x, float s, size_t n) {
    (void)ctx;
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// sum of squares in double: used for gradient norms, where float accumulation over
// millions of elements would lose digits.
static double cpu_sumsq(void *ctx, const float *x, size_t n) {
    (void)ctx;
    double s = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

// ============================================================================ optimizer

// p, g, m, v are (n). Step t is 1-based; the bias corrections are computed in double.
static void cpu_adamw(void *ctx, float *p, const float *g, float *m, float *v, size_t n, float lr,
                      float b1, float b2, float eps, float wd, int t, float gscale) {
    (void)ctx;
    float bc1 = (float)(1.0 - pow((double)b1, (double)t));
    float bc2 = (float)(1.0 - pow((double)b2, (double)t));
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        kd_adamw_elem(&p[i], g[i] * gscale, &m[i], &v[i], lr, b1, b2, eps, wd, bc1, bc2);
}

// ============================================================================ the tables

static const kd_mem_ops cpu_mem = {
    .host_visible = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
};

static const kd_vec_ops cpu_vec = {
    .add = cpu_add,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
};

static const kd_nn_ops cpu_nn = {
    .embedding_fwd = kd_cpu_embedding_fwd,
    .embedding_bwd = kd_cpu_embedding_bwd,
    .matmul_fwd = kd_cpu_matmul_fwd,
    .matmul_bwd = kd_cpu_matmul_bwd,
    .rmsnorm_fwd = kd_cpu_rmsnorm_fwd,
    .rmsnorm_bwd = kd_cpu_rmsnorm_bwd,
    .rope_fwd = kd_cpu_rope_fwd,
    .rope_bwd = kd_cpu_rope_bwd,
    .attention_scratch = kd_cpu_attention_scratch,
    .attention_fwd = kd_cpu_attention_fwd,
    .attention_bwd = kd_cpu_attention_bwd,
    .attention_probs = kd_cpu_attention_probs,
    .swiglu_fwd = kd_cpu_swiglu_fwd,
    .swiglu_bwd = kd_cpu_swiglu_bwd,
    .cross_entropy = kd_cpu_cross_entropy,
};

static const kd_losses_ops cpu_losses = {
    .distill_full_scratch = kd_cpu_distill_full_scratch,
    .distill_full = kd_cpu_distill_full,
    .distill_topk_scratch = kd_cpu_distill_topk_scratch,
    .distill_topk = kd_cpu_distill_topk,
    .token_logp_fwd = kd_cpu_token_logp_fwd,
    .token_logp_bwd = kd_cpu_token_logp_bwd,
};

static const kd_optim_ops cpu_optim = {.adamw = cpu_adamw};

static const kd_mamba2_ops cpu_mamba2 = {
    .conv_scratch = kd_cpu_mamba2_conv_scratch,
    .conv_fwd = kd_cpu_mamba2_conv_fwd,
    .conv_bwd = kd_cpu_mamba2_conv_bwd,
    .ssd_scratch = kd_cpu_mamba2_ssd_scratch,
    .ssd_fwd = kd_cpu_mamba2_ssd_fwd,
    .ssd_bwd = kd_cpu_mamba2_ssd_bwd,
    .scan_ref = kd_cpu_mamba2_scan_ref,
    .gnorm_fwd = kd_cpu_mamba2_gnorm_fwd,
    .gnorm_bwd = kd_cpu_mamba2_gnorm_bwd,
    .mat_scratch = kd_cpu_mamba2_mat_scratch,
    .mat_fwd = kd_cpu_mamba2_mat_fwd,
    .mat_bwd = kd_cpu_mamba2_mat_bwd,
};

static const kd_decode_ops cpu_decode = {
    .attention_scratch = kd_cpu_attention_decode_scratch,
    .attention = kd_cpu_attention_decode,
    .mamba2_step_scratch = kd_cpu_mamba2_step_scratch,
    .mamba2_step = kd_cpu_mamba2_step,
};

static const kd_ops cpu_table = {
    .name = "cpu",
    .ctx = NULL,
    .mem = &cpu_mem,
    .vec = &cpu_vec,
    .nn = &cpu_nn,
    .losses = &cpu_losses,
    .optim = &cpu_optim,
    .mamba2 = &cpu_mamba2,
    .decode = &cpu_decode,
};

const kd_ops *kd_ops_cpu(void) {
    // one thread pool, OpenMP's (kernels/cpu/matmul.c); the first call happens before any
    // threads exist
    static int pinned = 0;
    if (!pinned) {
        kd_cpu_blas_single_thread();
        pinned = 1;
    }
    return &cpu_table;
}
