// mamba2_scan.c: the plain token-by-token Mamba-2 recurrence (the reference the chunked
// SSD is tested against) and the one-token recurrent step used for generation.
//   h_t = exp(dt_t*A) h_{t-1} + dt_t x_t (x) B_t   (h is (P,N); h_{t-1} = 0 at a doc start)
//   y_t = h_t . C_t + D x_t
// Scratch: per thread, the (P,N) double state of scan_ref (sized with the SSD's query,
// kd_cpu_mamba2_ssd_scratch) or the CD activations of one row of the step.
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/mamba2_math.h"

#include <math.h>
#include <string.h>

size_t kd_cpu_mamba2_scan_thread_bytes(const kd_mamba2_dims *d) {
    return kd_cpu_round((size_t)d->P * d->N * sizeof(double));
}

void kd_cpu_mamba2_scan_ref(void *ctx, float *y, float *final_state, const float *init_state,
                            const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    // y is (B,T,H,P); final_state, init_state (B,H,P,N). The state is kept in double.
    (void)ctx;
    const int T = in->T, H = d->H, P = d->P, N = d->N, rep = H / d->n_kv;
    const size_t pn = (size_t)P * N, per = kd_cpu_mamba2_scan_thread_bytes(d);
    char *states = kd_cpu_take(&ws, per * (size_t)omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < in->B * H; bh++) {
        const int b = bh / H, h = bh % H, kv = h / rep;
        const float A = -expf(in->A_log[h]);
        const int32_t *sg = in->seg ? in->seg + (size_t)b * T : NULL;
        double *S = (double *)(states + per * (size_t)omp_get_thread_num());
        for (size_t k = 0; k < pn; k++) S[k] = init_state ? init_state[(size_t)bh * pn + k] : 0.0;
        for (int t = 0; t < T; t++) {
            const size_t r = (size_t)b * T + t;
            const float *x = in->x + r * in->ldx + (size_t)kv * P;
            const float *Bv = in->Bm + r * in->ldb + (size_t)kv * N;
            const float *Cv = in->Cm + r * in->ldc + (size_t)h * N;
            const double dt = kd_m2_softplus(in->dt[r * in->lddt + h] + in->dt_bias[h]);
            const double a = kd_m2_is_reset(sg, t) ? 0.0 : exp(dt * A);
            float *yo = y + r * H * P + (size_t)h * P;
            for (int p = 0; p < P; p++) {
                double acc = 0.0;
                for (int n = 0; n < N; n++) {
                    double v = a * S[p * N + n] + dt * x[p] * Bv[n];
                    S[p * N + n] = v;
                    acc += v * Cv[n];
                }
                yo[p] = (float)(acc + (double)in->D[h] * x[p]);
            }
        }
        if (final_state)
            for (size_t k = 0; k < pn; k++) final_state[(size_t)bh * pn + k] = (float)S[k];
    }
}

// CD = 2*n_kv*P + H*N activations per thread.
static size_t step_thread_bytes(const kd_mamba2_dims *d) {
    return kd_cpu_round((size_t)(2 * d->n_kv * d->P + d->H * d->N) * sizeof(float));
}

size_t kd_cpu_mamba2_step_scratch(void *ctx, const kd_mamba2_dims *d, int B) {
    (void)ctx, (void)B;
    return kd_cpu_per_thread(step_thread_bytes(d));
}

void kd_cpu_mamba2_step(void *ctx, float *y, float *conv_state, float *ssm_state, const float *xbc,
                        int ld_xbc, const float *dt, int lddt, const float *conv_w,
                        const float *conv_b, const float *dt_bias, const float *A_log,
                        const float *D, const kd_mamba2_dims *d, int B, kd_scratch ws) {
    // y (B,H*P); conv_state (B,CD,W-1); ssm_state (B,H,P,N); xbc (B,ld_xbc) = [x|B|C] raw
    (void)ctx;
    const int H = d->H, P = d->P, N = d->N, W = d->W, rep = H / d->n_kv;
    const int dxb = d->n_kv * P, CD = 2 * dxb + H * N;
    const size_t per = step_thread_bytes(d);
    char *acts = kd_cpu_take(&ws, per * (size_t)omp_get_max_threads());
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *act = (float *)(acts + per * (size_t)omp_get_thread_num()); // (CD)
        const float *in = xbc + (size_t)b * ld_xbc;
        for (int c = 0; c < CD; c++) {
            float *cs = conv_state + ((size_t)b * CD + c) * (W - 1);
            const float *wc = conv_w + (size_t)c * W;
            float pre = conv_b ? conv_b[c] : 0.0f;
            for (int k = 0; k < W - 1; k++) pre += wc[k] * cs[k];
            pre += wc[W - 1] * in[c];
            act[c] = kd_m2_silu(pre);
            for (int k = 0; k + 1 < W - 1; k++) cs[k] = cs[k + 1];
            if (W > 1) cs[W - 2] = in[c];
        }
        const float *x = act, *Bv = act + dxb, *Cv = act + 2 * dxb;
        for (int h = 0; h < H; h++) {
            const int kv = h / rep;
            const float A = -expf(A_log[h]);
            const float dth = kd_m2_softplus(dt[(size_t)b * lddt + h] + dt_bias[h]);
            const float a = expf(dth * A);
            float *S = ssm_state + ((size_t)b * H + h) * P * N;
            for (int p = 0; p < P; p++) {
                float xp = x[kv * P + p], acc = 0.0f;
                for (int n = 0; n < N; n++) {
                    float v = a * S[p * N + n] + dth * xp * Bv[kv * N + n];
                    S[p * N + n] = v;
                    acc += v * Cv[h * N + n];
                }
                y[(size_t)b * H * P + h * P + p] = acc + D[h] * xp;
            }
        }
    }
}
