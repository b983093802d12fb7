// mlp.c: the SwiGLU activation of the Llama MLP (fused gate|up layout) and the token
// embedding lookup, forward and backward, on the CPU. OpenMP over rows; the embedding
// backward is split over column blocks so that repeated token ids never race.
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

// ============================================================================ SwiGLU

// One row of each: vectorised with kd_vsigmoid (KD_CPU_CLONES picks AVX-512/AVX2 code).
KD_CPU_CLONES static void swiglu_fwd_row(float *o, const float *g, const float *u, int F) {
#pragma omp simd
    for (int f = 0; f < F; f++) o[f] = g[f] * kd_vsigmoid(g[f]) * u[f];
}

KD_CPU_CLONES static void swiglu_bwd_row(float *dg, float *du, const float *dy, const float *g,
                                         const float *u, int F) {
#pragma omp simd
    for (int f = 0; f < F; f++) {
        float s = kd_vsigmoid(g[f]);
        float gf = g[f], uf = u[f], d = dy[f];
        dg[f] = d * uf * s * (1.0f + gf * (1.0f - s));
        du[f] = d * gf * s;
    }
}

// out is (N,F); gu is (N,2F) with gate in columns [0,F) and up in [F,2F).
void kd_cpu_swiglu_fwd(void *ctx, float *out, const float *gu, int N, int F) {
    (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)N * F > KD_CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        swiglu_fwd_row(out + (size_t)n * F, gu + (size_t)n * 2 * F, gu + (size_t)n * 2 * F + F, F);
}

// dgu (N,2F) is OVERWRITTEN: dgate = dout*up*silu'(gate), dup = dout*silu(gate).
void kd_cpu_swiglu_bwd(void *ctx, float *dgu, const float *dout, const float *gu, int N, int F) {
    (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)N * F > KD_CPU_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = gu + (size_t)n * 2 * F;
        float *dg = dgu + (size_t)n * 2 * F;
        swiglu_bwd_row(dg, dg + F, dout + (size_t)n * F, g, g + F, F);
    }
}

// ============================================================================ embedding

// out is (N,C), ids (N) in [0,V) (checked by the data layer), wte is (V,C).
void kd_cpu_embedding_fwd(void *ctx, float *out, const int32_t *ids, const float *wte, int N,
                          int C) {
    (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)N * C > KD_CPU_PAR_MIN)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, wte + (size_t)ids[n] * C, sizeof(float) * C);
}

// dwte (V,C) += scatter of dout (N,C) by ids (N). Threads own column blocks, so rows that
// repeat an id are summed by one thread, in order n = 0..N-1 (deterministic).
void kd_cpu_embedding_bwd(void *ctx, float *dwte, const float *dout, const int32_t *ids, int N,
                          int C) {
    (void)ctx;
    enum { CB = 64 };
    int nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C > KD_CPU_PAR_MIN)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        for (int n = 0; n < N; n++) {
            float *dst = dwte + (size_t)ids[n] * C;
            const float *src = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
