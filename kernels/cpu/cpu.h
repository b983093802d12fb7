// cpu.h: internal declarations of the CPU backend's kernels, one group per file of
// kernels/cpu/, and the helpers with which a kernel lays out its caller's scratch. Only
// the backend (kernels/cpu/*.c) and the kernel tests include this; everyone else goes
// through kd_ops_cpu(). Semantics and shapes are those documented in kernels/ops.h; every
// kernel takes the backend ctx first (NULL: the CPU backend keeps no state) and ignores it.
// Threading rule of this backend: one thread pool, OpenMP's. OpenBLAS is set to one
// thread when the table is first handed out, and large products are split into row panels
// across the OpenMP team (matmul.c).
#pragma once
#include <omp.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/check.h"
#include "kernels/ops.h"

// Below this many elements an elementwise loop runs on one thread (fork cost dominates).
#define KD_CPU_PAR_MIN 16384

// ============================================================================ scratch

// Each piece of a kernel's scratch starts on a cache line.
static inline size_t kd_cpu_round(size_t bytes) {
    return (bytes + 63) / 64 * 64;
}

// Bytes of `per` bytes for every thread a parallel region may run (per rounded up).
static inline size_t kd_cpu_per_thread(size_t per) {
    return kd_cpu_round(per) * (size_t)omp_get_max_threads();
}

// The next `bytes` of ws, which advances past them (rounded up). A caller whose scratch is
// smaller than the kernel's *_scratch query asked for is a bug: abort with file:line.
static inline void *kd_cpu_take(kd_scratch *ws, size_t bytes) {
    size_t n = kd_cpu_round(bytes);
    KD_CPU_ASSERT(n <= ws->bytes && (n == 0 || ws->p != NULL));
    void *p = ws->p;
    ws->p = (char *)ws->p + n;
    ws->bytes -= n;
    return p;
}

// ============================================================================ kernels

// matmul.c
void kd_cpu_blas_single_thread(void); // called once by kd_ops_cpu()
void kd_cpu_matmul_fwd(void *ctx, float *out, const float *inp, const float *w, int N, int C,
                       int OC);
void kd_cpu_matmul_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int N, int C, int OC);

// attention.c
size_t kd_cpu_attention_scratch(void *ctx, int B, int T, int NH, int HD);
void kd_cpu_attention_fwd(void *ctx, float *out, float *lse, const float *qkv, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD, kd_scratch ws);
void kd_cpu_attention_bwd(void *ctx, float *dqkv, const float *dout, const float *out,
                          const float *lse, const float *qkv, const int32_t *seg, int B, int T,
                          int NH, int NKV, int HD, kd_scratch ws);
void kd_cpu_attention_probs(void *ctx, float *P, const float *qkv, const float *lse,
                            const int32_t *seg, int B, int T, int NH, int NKV, int HD);

// attention_decode.c
size_t kd_cpu_attention_decode_scratch(void *ctx, int B, int Tmax, int NH);
void kd_cpu_attention_decode(void *ctx, float *out, float *kv, const float *qkv, const int32_t *n,
                             int B, int Tmax, int NH, int NKV, int HD, kd_scratch ws);

// norm.c
void kd_cpu_rmsnorm_fwd(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N,
                        int C, float eps);
void kd_cpu_rmsnorm_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int N, int C);
void kd_cpu_rope_fwd(void *ctx, float *x, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq);
void kd_cpu_rope_bwd(void *ctx, float *dx, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq);

// mlp.c
void kd_cpu_swiglu_fwd(void *ctx, float *out, const float *gu, int N, int F);
void kd_cpu_swiglu_bwd(void *ctx, float *dgu, const float *dout, const float *gu, int N, int F);
void kd_cpu_embedding_fwd(void *ctx, float *out, const int32_t *ids, const float *wte, int N,
                          int C);
void kd_cpu_embedding_bwd(void *ctx, float *dwte, const float *dout, const int32_t *ids, int N,
                          int C);

// loss.c
void kd_cpu_cross_entropy(void *ctx, float *loss, float *dlogits, const float *logits,
                          const int32_t *targets, const float *weights, int N, int V, float dscale);
