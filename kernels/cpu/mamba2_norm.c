// mamba2_norm.c: the gated group RMSNorm in front of Mamba-2's out_proj:
//   g = y * silu(z);  out = g * rstd * w,  rstd = 1/sqrt(mean_{group}(g^2) + eps)
// over consecutive groups of G channels (G = head_dim in the MambaInLlama layout).
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/mamba2_math.h"

#include <math.h>

void kd_cpu_mamba2_gnorm_fwd(float *out, float *rstd, const float *y, const float *z, int ldz,
                             const float *w, int N, int D, int G, float eps) {
    // out, y are (N,D); z rows of stride ldz; w (D); rstd (N,D/G)
    const int ng = D / G;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *yr = y + (size_t)r * D, *zr = z + (size_t)r * ldz;
        float *o = out + (size_t)r * D;
        for (int gi = 0; gi < ng; gi++) {
            double ss = 0.0;
            for (int k = gi * G; k < (gi + 1) * G; k++) {
                float gv = yr[k] * kd_m2_silu(zr[k]);
                o[k] = gv;
                ss += (double)gv * gv;
            }
            float rs = (float)(1.0 / sqrt(ss / G + eps));
            rstd[(size_t)r * ng + gi] = rs;
            for (int k = gi * G; k < (gi + 1) * G; k++) o[k] = o[k] * rs * w[k];
        }
    }
}

void kd_cpu_mamba2_gnorm_bwd(float *dy, float *dz, int lddz, float *dw, const float *dout,
                             const float *y, const float *z, int ldz, const float *w,
                             const float *rstd, int N, int D, int G) {
    // dy (N,D), dz (N,lddz) overwritten; dw (D) accumulates
    const int ng = D / G;
    // dw: parallel over channels so that each thread owns its entries.
#pragma omp parallel for schedule(static)
    for (int k = 0; k < D; k++) {
        double acc = 0.0;
        for (int r = 0; r < N; r++) {
            float gv = y[(size_t)r * D + k] * kd_m2_silu(z[(size_t)r * ldz + k]);
            acc += (double)dout[(size_t)r * D + k] * gv * rstd[(size_t)r * ng + k / G];
        }
        dw[k] += (float)acc;
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *yr = y + (size_t)r * D, *zr = z + (size_t)r * ldz;
        const float *go = dout + (size_t)r * D;
        for (int gi = 0; gi < ng; gi++) {
            const float rs = rstd[(size_t)r * ng + gi];
            double dot = 0.0; // sum_k (dout*w)_k g_k
            for (int k = gi * G; k < (gi + 1) * G; k++)
                dot += (double)go[k] * w[k] * yr[k] * kd_m2_silu(zr[k]);
            const float coef = (float)(dot * rs * rs * rs / G);
            for (int k = gi * G; k < (gi + 1) * G; k++) {
                float sz = kd_m2_silu(zr[k]), gv = yr[k] * sz;
                float dg = go[k] * w[k] * rs - gv * coef;
                dy[(size_t)r * D + k] = dg * sz;
                dz[(size_t)r * lddz + k] = dg * yr[k] * kd_m2_dsilu(zr[k]);
            }
        }
    }
}
