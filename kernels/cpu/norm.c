// norm.c: RMSNorm (forward, backward with weight gradient) and rotary position embedding
// (RoPE, Hugging Face "rotate_half" pairing) on the CPU. OpenMP over rows; the RMSNorm
// weight gradient is reduced over column blocks so no two threads write the same dw.
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/math.h"

// ============================================================================ RMSNorm

// out is (N,C), rstd is (N), inp is (N,C), w is (C).
// rstd[n] = 1/sqrt(mean(inp[n]^2) + eps); out = inp * rstd * w. Sum of squares in double.
void kd_cpu_rmsnorm_fwd(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N,
                        int C, float eps) {
    (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)N * C > KD_CPU_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float r = (float)(1.0 / sqrt(ss / C + (double)eps));
        rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * w[c];
    }
}

// dout, inp are (N,C), w is (C), rstd (N) from the forward.
// dinp += r*w*dout - r^3/C * x * sum_c(w*dout*x) ; dw += sum_n dout*x*r.
void kd_cpu_rmsnorm_bwd(void *ctx, float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int N, int C) {
    (void)ctx;
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > KD_CPU_PAR_MIN)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float r = rstd[n];
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * x[c];
            float k = (float)(dot * r * r * r / C);
            for (int c = 0; c < C; c++) dx[c] += r * w[c] * dy[c] - k * x[c];
        }
    }
    if (dw) {
        enum { CB = 64 }; // columns per block: a thread owns dw[c0, c0+CB)
        int nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C > KD_CPU_PAR_MIN)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
            float acc[CB] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float r = rstd[n];
                for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * x[c] * r;
            }
            for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
        }
    }
}

// ============================================================================ RoPE

// Rotates the first nrot heads (HD each) of every row of x (N, row_stride) by the angles
// pos[n] * inv_freq[i], pairing element i with i+HD/2. dir = +1 forward, -1 inverse (the
// backward of a rotation is the rotation by the opposite angle).
static void rope_apply(float *x, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                       const float *inv_freq, float dir) {
    enum { PB = 64 }; // pairs per block of precomputed cos/sin (no allocation, any HD)
    const int half = HD / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nrot * HD > KD_CPU_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * row_stride;
        float cs[PB] = {0}, sn[PB] = {0};
        for (int p0 = 0; p0 < half; p0 += PB) {
            int p1 = p0 + PB < half ? p0 + PB : half;
            for (int i = p0; i < p1; i++) {
                float ang = (float)pos[n] * inv_freq[i];
                cs[i - p0] = cosf(ang);
                sn[i - p0] = dir * sinf(ang);
            }
            for (int h = 0; h < nrot; h++) {
                float *a = row + (size_t)h * HD, *b = a + half;
                for (int i = p0; i < p1; i++) {
                    float x1 = a[i], x2 = b[i], c = cs[i - p0], s = sn[i - p0];
                    a[i] = x1 * c - x2 * s;
                    b[i] = x2 * c + x1 * s;
                }
            }
        }
    }
}

// x is (N,row_stride), pos is (N), inv_freq is (HD/2); in place.
void kd_cpu_rope_fwd(void *ctx, float *x, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq) {
    (void)ctx;
    rope_apply(x, pos, N, nrot, row_stride, HD, inv_freq, 1.0f);
}

// dx is (N,row_stride), pos is (N); in place: dx <- R(pos)^T dx.
void kd_cpu_rope_bwd(void *ctx, float *dx, const int32_t *pos, int N, int nrot, int row_stride,
                     int HD, const float *inv_freq) {
    (void)ctx;
    rope_apply(dx, pos, N, nrot, row_stride, HD, inv_freq, -1.0f);
}
