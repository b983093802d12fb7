// mamba2_mat.c: MOHAWK's materialised Mamba-2 mixing matrix and its backward.
//   M[b,h,t,s] = (C_t.B_s) * exp(sum_{k=s+1..t} dt_k*A_h) * dt_s   for s <= t (same doc)
//              + D_h on the diagonal;  0 for s > t
// so that the scan output (before gate and norm) is y_t = sum_s M[t,s] x_s per head.
// Cumulative sums of dt*A run over the whole sequence in double, so exp of differences
// keeps float accuracy even for long sequences.
// Scratch (kd_cpu_mamba2_mat_scratch): per thread, the per-token sums and the two (T,T)
// matrices of the backward; for the backward, the per-(b,h) double accumulators.
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/mamba2_math.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

// One thread's buffers: cum, dcum, ddt (T doubles each), dt (T floats), lr (T ints) and
// K, dK (T x T floats each; the backward only).
typedef struct {
    double *cum, *dcum, *ddt;
    float *dt;
    int *lr;
    float *K, *dK;
} mat_scratch;

static size_t mat_thread_bytes(int T) {
    return kd_cpu_round(3 * (size_t)T * sizeof(double)) + kd_cpu_round((size_t)T * sizeof(float)) +
           kd_cpu_round((size_t)T * sizeof(int)) + kd_cpu_round(2 * (size_t)T * T * sizeof(float));
}

// Thread th's buffers out of base (nthr * mat_thread_bytes(T) bytes).
static mat_scratch mat_bind(char *base, int nthr, int T) {
    KD_CPU_ASSERT(omp_get_num_threads() <= nthr);
    base += mat_thread_bytes(T) * (size_t)omp_get_thread_num();
    mat_scratch s;
    s.cum = (double *)base, s.dcum = s.cum + T, s.ddt = s.dcum + T;
    base += kd_cpu_round(3 * (size_t)T * sizeof(double));
    s.dt = (float *)base;
    base += kd_cpu_round((size_t)T * sizeof(float));
    s.lr = (int *)base;
    base += kd_cpu_round((size_t)T * sizeof(int));
    s.K = (float *)base, s.dK = s.K + (size_t)T * T;
    return s;
}

size_t kd_cpu_mamba2_mat_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T) {
    (void)ctx;
    return kd_cpu_round((size_t)B * d->H * 3 * sizeof(double)) +
           mat_thread_bytes(T) * (size_t)omp_get_max_threads();
}

// cum (T) and dt (T) of head h in row b, lr (T) the last doc start <= t (or -1).
static void mat_prep(double *cum, float *dt, int *lr, const kd_mamba2_in *in, int b, int h) {
    const int T = in->T;
    const float A = -expf(in->A_log[h]);
    const int32_t *sg = in->seg ? in->seg + (size_t)b * T : NULL;
    double acc = 0.0;
    int l = -1;
    for (int t = 0; t < T; t++) {
        dt[t] = kd_m2_softplus(in->dt[((size_t)b * T + t) * in->lddt + h] + in->dt_bias[h]);
        acc += (double)dt[t] * A;
        cum[t] = acc;
        if (kd_m2_is_reset(sg, t)) l = t;
        lr[t] = l;
    }
}

void kd_cpu_mamba2_mat_fwd(void *ctx, float *M, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                           kd_scratch ws) {
    // M is (B,H,T,T)
    (void)ctx;
    const int T = in->T, H = d->H, N = d->N, rep = H / d->n_kv, nthr = omp_get_max_threads();
    char *base = kd_cpu_take(&ws, mat_thread_bytes(T) * (size_t)nthr);
#pragma omp parallel
    {
        mat_scratch s = mat_bind(base, nthr, T);
        double *cum = s.cum;
        float *dt = s.dt;
        int *lr = s.lr;
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < in->B * H; bh++) {
            const int b = bh / H, h = bh % H, kv = h / rep;
            float *Mh = M + (size_t)bh * T * T;
            mat_prep(cum, dt, lr, in, b, h);
            const float *Cp = in->Cm + (size_t)b * T * in->ldc + (size_t)h * N;
            const float *Bp = in->Bm + (size_t)b * T * in->ldb + (size_t)kv * N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, N, 1.0f, Cp, in->ldc, Bp,
                        in->ldb, 0.0f, Mh, T);
            for (int t = 0; t < T; t++) {
                float *row = Mh + (size_t)t * T;
                for (int s = 0; s < T; s++)
                    row[s] = (s <= t && s >= lr[t]) ? row[s] * (float)exp(cum[t] - cum[s]) * dt[s]
                                                    : 0.0f;
                row[t] += in->D[h];
            }
        }
    }
}

void kd_cpu_mamba2_mat_bwd(void *ctx, const kd_mamba2_grad *g, const float *dM,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    // dM is (B,H,T,T); writes dB (kv slices), dC, ddt; accumulates ddt_bias, dA_log, dD
    (void)ctx;
    const int B = in->B, T = in->T, H = d->H, N = d->N, nkv = d->n_kv, rep = H / nkv;
    const int nthr = omp_get_max_threads();
    double *acc = kd_cpu_take(&ws, (size_t)B * H * 3 * sizeof(double)); // (B,H,3)
    memset(acc, 0, (size_t)B * H * 3 * sizeof(double));
    char *base = kd_cpu_take(&ws, mat_thread_bytes(T) * (size_t)nthr);
#pragma omp parallel
    {
        mat_scratch s = mat_bind(base, nthr, T);
        double *cum = s.cum, *dcum = s.dcum, *ddt = s.ddt;
        float *dt = s.dt, *K = s.K, *dK = s.dK;
        int *lr = s.lr;
#pragma omp for schedule(dynamic, 1)
        for (int bk = 0; bk < B * nkv; bk++) {
            const int b = bk / nkv, kv = bk % nkv;
            const float *Bp = in->Bm + (size_t)b * T * in->ldb + (size_t)kv * N;
            float *dBp = g->dB + (size_t)b * T * g->ldb + (size_t)kv * N;
            for (int t = 0; t < T; t++) memset(dBp + (size_t)t * g->ldb, 0, N * sizeof(float));
            for (int h = kv * rep; h < (kv + 1) * rep; h++) {
                const float A = -expf(in->A_log[h]);
                const float *Cp = in->Cm + (size_t)b * T * in->ldc + (size_t)h * N;
                float *dCp = g->dC + (size_t)b * T * g->ldc + (size_t)h * N;
                const float *dMh = dM + ((size_t)b * H + h) * T * T;
                double *a = acc + ((size_t)b * H + h) * 3;
                mat_prep(cum, dt, lr, in, b, h);
                memset(dcum, 0, 2 * (size_t)T * sizeof(double));
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, N, 1.0f, Cp, in->ldc, Bp,
                            in->ldb, 0.0f, K, T);
                for (int t = 0; t < T; t++) {
                    a[0] += dMh[(size_t)t * T + t];
                    for (int s = 0; s < T; s++) {
                        size_t ix = (size_t)t * T + s;
                        if (s > t || s < lr[t]) {
                            dK[ix] = 0.0f;
                            continue;
                        }
                        float e = (float)exp(cum[t] - cum[s]);
                        double ke = (double)dMh[ix] * K[ix] * e; // dM * K * E
                        ddt[s] += ke;
                        dcum[t] += ke * dt[s];
                        dcum[s] -= ke * dt[s];
                        dK[ix] = dMh[ix] * e * dt[s];
                    }
                }
                for (int t = 0; t < T; t++) memset(dCp + (size_t)t * g->ldc, 0, N * sizeof(float));
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, N, T, 1.0f, dK, T, Bp,
                            in->ldb, 0.0f, dCp, g->ldc);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, N, T, 1.0f, dK, T, Cp,
                            in->ldc, 1.0f, dBp, g->ldb);
                double run = 0.0;
                for (int k = T - 1; k >= 0; k--) {
                    run += dcum[k];
                    a[1] += run * dt[k] * A; // through A = -exp(A_log)
                    size_t r = (size_t)b * T + k;
                    float raw = in->dt[r * in->lddt + h] + in->dt_bias[h];
                    float graw = (float)((ddt[k] + run * A) * kd_m2_dsoftplus(raw));
                    g->ddt[r * g->lddt + h] = graw;
                    a[2] += graw;
                }
            }
        }
    }
    for (int h = 0; h < H; h++)
        for (int b = 0; b < B; b++) {
            g->dD[h] += (float)acc[((size_t)b * H + h) * 3 + 0];
            g->dA_log[h] += (float)acc[((size_t)b * H + h) * 3 + 1];
            g->ddt_bias[h] += (float)acc[((size_t)b * H + h) * 3 + 2];
        }
}
