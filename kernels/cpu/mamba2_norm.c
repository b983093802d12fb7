// mamba2_norm.c: the gated group RMSNorm in front of Mamba-2's out_proj:
//   g = y * silu(z);  out = g * rstd * w,  rstd = 1/sqrt(mean_{group}(g^2) + eps)
// over consecutive groups of G channels (G = head_dim in the MambaInLlama layout).
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/cpu/vmath.h"
#include "kernels/mamba2_math.h"

#include <math.h>

// One row (D channels in groups of G): out = g*rstd*w with g = y*silu(z).
KD_CPU_CLONES static void gnorm_fwd_row(float *o, float *rstd, const float *yr, const float *zr,
                                        const float *w, int D, int G, float eps) {
    for (int g0 = 0; g0 < D; g0 += G) {
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int k = g0; k < g0 + G; k++) {
            float gv = yr[k] * kd_vsilu(zr[k]);
            o[k] = gv;
            ss += (double)gv * gv;
        }
        float rs = (float)(1.0 / sqrt(ss / G + eps));
        rstd[g0 / G] = rs;
#pragma omp simd
        for (int k = g0; k < g0 + G; k++) o[k] = o[k] * rs * w[k];
    }
}

void kd_cpu_mamba2_gnorm_fwd(void *ctx, float *out, float *rstd, const float *y, const float *z,
                             int ldz, const float *w, int N, int D, int G, float eps) {
    (void)ctx;
    // out, y are (N,D); z rows of stride ldz; w (D); rstd (N,D/G)
    const int ng = D / G;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        gnorm_fwd_row(out + (size_t)r * D, rstd + (size_t)r * ng, y + (size_t)r * D,
                      z + (size_t)r * ldz, w, D, G, eps);
}

// dw over channels [c0,c0+cb) (cb <= 64): acc[c] = sum_r dout*g*rstd, rows walked in order.
KD_CPU_CLONES static void gnorm_dw_block(float *dw, const float *dout, const float *y,
                                         const float *z, int ldz, const float *rstd, int N, int D,
                                         int G, int c0, int cb) {
    const int ng = D / G;
    double acc[64] = {0};
    for (int r = 0; r < N; r++) {
        const float *go = dout + (size_t)r * D + c0, *yr = y + (size_t)r * D + c0;
        const float *zr = z + (size_t)r * ldz + c0, *rs = rstd + (size_t)r * ng;
#pragma omp simd
        for (int c = 0; c < cb; c++)
            acc[c] += (double)go[c] * yr[c] * kd_vsilu(zr[c]) * rs[(c0 + c) / G];
    }
    for (int c = 0; c < cb; c++) dw[c0 + c] += (float)acc[c];
}

// One row of dy, dz (see kd_cpu_mamba2_gnorm_bwd).
KD_CPU_CLONES static void gnorm_bwd_row(float *dyr, float *dzr, const float *go, const float *yr,
                                        const float *zr, const float *w, const float *rstd, int D,
                                        int G) {
    for (int g0 = 0; g0 < D; g0 += G) {
        const float rs = rstd[g0 / G];
        double dot = 0.0; // sum_k (dout*w)_k g_k
#pragma omp simd reduction(+ : dot)
        for (int k = g0; k < g0 + G; k++) dot += (double)go[k] * w[k] * yr[k] * kd_vsilu(zr[k]);
        const float coef = (float)(dot * rs * rs * rs / G);
#pragma omp simd
        for (int k = g0; k < g0 + G; k++) {
            float s = kd_vsigmoid(zr[k]), sz = zr[k] * s, gv = yr[k] * sz;
            float dg = go[k] * w[k] * rs - gv * coef;
            dyr[k] = dg * sz;
            dzr[k] = dg * yr[k] * s * (1.0f + zr[k] * (1.0f - s));
        }
    }
}

void kd_cpu_mamba2_gnorm_bwd(void *ctx, float *dy, float *dz, int lddz, float *dw,
                             const float *dout, const float *y, const float *z, int ldz,
                             const float *w, const float *rstd, int N, int D, int G) {
    (void)ctx;
    // dy (N,D), dz (N,lddz) overwritten; dw (D) accumulates
    const int ng = D / G;
    // dw: parallel over blocks of 64 channels so that each thread owns its entries (and the
    // row order of the sum is fixed); rows are read in 64-float runs, not column by column.
#pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < D; c0 += 64)
        gnorm_dw_block(dw, dout, y, z, ldz, rstd, N, D, G, c0, c0 + 64 < D ? 64 : D - c0);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        gnorm_bwd_row(dy + (size_t)r * D, dz + (size_t)r * lddz, dout + (size_t)r * D,
                      y + (size_t)r * D, z + (size_t)r * ldz, w, rstd + (size_t)r * ng, D, G);
}
