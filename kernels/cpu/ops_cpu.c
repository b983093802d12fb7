// ops_cpu.c: the CPU backend's kd_ops table, plus the ops too small for a file of their
// own: memory (host memory, 64-byte aligned), elementwise arithmetic and AdamW.
// The heavy kernels live in matmul.c, attention.c, norm.c, mlp.c and loss.c.
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/cpu/cpu_losses.h"
#include "kernels/math.h"
#include "kernels/ops.h"

// ============================================================================ memory

// Zero-filled, 64-byte aligned (cache line / AVX-512 friendly). NULL when out of memory:
// the caller turns that into a kd_error naming the tensor.
static void *cpu_alloc(size_t bytes) {
    void *p = NULL;
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

static void cpu_free(void *p) {
    free(p);
}

static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}

static void cpu_zero(void *dst, size_t bytes) {
    if (bytes) memset(dst, 0, bytes);
}

// ============================================================================ elementwise

// out (n) = a (n) + b (n); out may alias a or b.
static void cpu_add(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// y (n) += a * x (n)
static void cpu_axpy(float *y, float a, const float *x, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

// x (n) *= s
static void cpu_scale(float *x, float s, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// sum of squares in double: used for gradient norms, where float accumulation over
// millions of elements would lose digits.
static double cpu_sumsq(const float *x, size_t n) {
    double s = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

// ============================================================================ optimizer

// p, g, m, v are (n). Step t is 1-based; the bias corrections are computed in double.
static void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                      float b2, float eps, float wd, int t) {
    float bc1 = (float)(1.0 - pow((double)b1, (double)t));
    float bc2 = (float)(1.0 - pow((double)b2, (double)t));
#pragma omp parallel for simd schedule(static) if (n > KD_CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        kd_adamw_elem(&p[i], g[i], &m[i], &v[i], lr, b1, b2, eps, wd, bc1, bc2);
}

// ============================================================================ the table

static kd_ops cpu_table = {
    .name = "cpu",
    .kind = KD_BACKEND_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .add = cpu_add,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
    .embedding_fwd = kd_cpu_embedding_fwd,
    .embedding_bwd = kd_cpu_embedding_bwd,
    .matmul_fwd = kd_cpu_matmul_fwd,
    .matmul_bwd = kd_cpu_matmul_bwd,
    .rmsnorm_fwd = kd_cpu_rmsnorm_fwd,
    .rmsnorm_bwd = kd_cpu_rmsnorm_bwd,
    .rope_fwd = kd_cpu_rope_fwd,
    .rope_bwd = kd_cpu_rope_bwd,
    .attention_fwd = kd_cpu_attention_fwd,
    .attention_decode = kd_cpu_attention_decode,
    .attention_bwd = kd_cpu_attention_bwd,
    .swiglu_fwd = kd_cpu_swiglu_fwd,
    .swiglu_bwd = kd_cpu_swiglu_bwd,
    .cross_entropy = kd_cpu_cross_entropy,
    .adamw = cpu_adamw,
};

const kd_ops *kd_ops_cpu(void) {
    // Kernel families in their own files fill their slots once, before the table is handed
    // out (the first call happens before any threads exist).
    static int registered = 0;
    if (!registered) {
        kd_cpu_register_mamba2(&cpu_table);  // kernels/cpu/mamba2_*.c
        kd_cpu_register_losses(&cpu_table);  // kernels/cpu/kd_loss.c, pref_loss.c
        kd_cpu_blas_single_thread();  // one thread pool: OpenMP (kernels/cpu/matmul.c)
        registered = 1;
    }
    return &cpu_table;
}
