// mamba2_ssd.c: the chunked SSD scan of Mamba-2 (forward and exact backward) on the CPU.
// Per head h with dA_t = dt_t*A_h and chunk-local cumsum c_i = sum_{k<=i} dA_k:
//   y_i  = sum_{j<=i} (C_i.B_j) exp(c_i-c_j) dt_j x_j  +  exp(c_i) S.C_i  +  D x_i
//   S'   = exp(c_last) S + sum_j exp(c_last-c_j) dt_j x_j (x) B_j
// where S (P,N) is the state entering the chunk. Terms that cross a document start
// (kd_m2_is_reset) are masked to zero. The Q x Q and Q x P products run through sgemm.
// Threads: forward over (b,h); backward over (b,kv head) so that the heads sharing one
// kv slice of x and B accumulate their gradients without races.
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/cpu/vmath.h"
#include "kernels/mamba2_math.h"
#include "runtime/common.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// lr (T): for each t of row b, the last document start <= t, or -1 when none.
static void last_resets(int *lr, const int32_t *seg, int b, int T) {
    const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
    int l = -1;
    for (int t = 0; t < T; t++) {
        if (kd_m2_is_reset(sg, t)) l = t;
        lr[t] = l;
    }
}

// dt (q) and chunk-local cumsum of dt*A in double (q) for head h, tokens [t0,t0+q).
static void chunk_dt(float *dt, double *cum, const kd_mamba2_in *in, int b, int h, int t0, int q,
                     float A) {
    double acc = 0.0;
    for (int i = 0; i < q; i++) {
        float raw = in->dt[((size_t)b * in->T + t0 + i) * in->lddt + h] + in->dt_bias[h];
        dt[i] = kd_m2_softplus(raw);
        acc += (double)dt[i] * A;
        cum[i] = acc;
    }
}

// E (q,q): exp(c_i - c_j) for j <= i in the same document as i, else 0. The differences
// are taken in double and exponentiated with the vectorised kd_vexp (the q*q exps of a
// chunk were the largest scalar cost of the scan).
KD_CPU_CLONES static void chunk_decay(float *E, const double *cum, const int *lr, int t0, int q) {
    for (int i = 0; i < q; i++) {
        float *row = E + (size_t)i * q;
        const int j0 = lr[t0 + i] > t0 ? lr[t0 + i] - t0 : 0; // first key in i's document
        const double ci = cum[i];
        for (int j = 0; j < j0; j++) row[j] = 0.0f;
#pragma omp simd
        for (int j = j0; j <= i; j++) row[j] = kd_vexp((float)(ci - cum[j]));
        for (int j = i + 1; j < q; j++) row[j] = 0.0f;
    }
}

typedef struct {
    float *G, *E, *M, *dM, *T1, *T2, *U, *V, *dS, *dSin, *S, *dt;
    double *cum, *dcum, *ddt;
    int *lr;
} ssd_scratch;

static ssd_scratch scratch_new(const kd_mamba2_dims *d, int T) {
    int Q = d->Q, P = d->P, N = d->N;
    ssd_scratch s;
    size_t qq = (size_t)Q * Q, qp = (size_t)Q * P, qn = (size_t)Q * N, pn = (size_t)P * N;
    s.G = kd_malloc((4 * qq + 3 * qp + qn + 3 * pn + Q) * sizeof(float));
    s.E = s.G + qq;
    s.M = s.E + qq;
    s.dM = s.M + qq;
    s.T1 = s.dM + qq;
    s.T2 = s.T1 + qp;
    s.U = s.T2 + qp;
    s.V = s.U + qp;
    s.dS = s.V + qn;
    s.dSin = s.dS + pn;
    s.S = s.dSin + pn;
    s.dt = s.S + pn;
    s.cum = kd_malloc(3 * (size_t)Q * sizeof(double));
    s.dcum = s.cum + Q;
    s.ddt = s.dcum + Q;
    s.lr = kd_malloc((size_t)(T > 0 ? T : 1) * sizeof(int));
    return s;
}

static void scratch_free(ssd_scratch *s) {
    free(s->G);
    free(s->cum);
    free(s->lr);
}

// ============================================================================ forward

static void ssd_fwd_head(float *y, float *states, float *final_state, const float *init_state,
                         const kd_mamba2_in *in, const kd_mamba2_dims *d, int b, int h,
                         ssd_scratch *s) {
    const int T = in->T, H = d->H, P = d->P, N = d->N, Q = d->Q;
    const int kv = h / (H / d->n_kv), nc = kd_mamba2_nchunks(T, Q), ldy = H * P;
    const float A = -expf(in->A_log[h]), Dh = in->D[h];
    const size_t pn = (size_t)P * N;
    float *S = s->S;
    if (init_state)
        memcpy(S, init_state + ((size_t)b * H + h) * pn, pn * sizeof(float));
    else
        memset(S, 0, pn * sizeof(float));
    last_resets(s->lr, in->seg, b, T);
    for (int c = 0; c < nc; c++) {
        const int t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
        if (states) memcpy(states + (((size_t)b * H + h) * nc + c) * pn, S, pn * sizeof(float));
        const size_t r0 = (size_t)b * T + t0;
        const float *xp = in->x + r0 * in->ldx + (size_t)kv * P;
        const float *Bp = in->Bm + r0 * in->ldb + (size_t)kv * N;
        const float *Cp = in->Cm + r0 * in->ldc + (size_t)h * N;
        float *yp = y + r0 * ldy + (size_t)h * P;
        chunk_dt(s->dt, s->cum, in, b, h, t0, q, A);
        chunk_decay(s->E, s->cum, s->lr, t0, q);
        // G (q,q) = C B^T; M = G * E * dt_j; y = M x
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, q, N, 1.0f, Cp, in->ldc, Bp,
                    in->ldb, 0.0f, s->G, q);
        for (int i = 0; i < q; i++)
            for (int j = 0; j < q; j++)
                s->M[i * q + j] = s->G[i * q + j] * s->E[i * q + j] * s->dt[j];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, P, q, 1.0f, s->M, q, xp, in->ldx,
                    0.0f, yp, ldy);
        // state contribution, only for tokens whose document began before t0
        if (s->lr[t0] < t0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, P, N, 1.0f, Cp, in->ldc, S, N,
                        0.0f, s->T1, P);
            for (int i = 0; i < q && s->lr[t0 + i] < t0; i++) {
                float e = (float)exp(s->cum[i]);
                for (int p = 0; p < P; p++) yp[(size_t)i * ldy + p] += e * s->T1[i * P + p];
            }
        }
        for (int i = 0; i < q; i++)
            for (int p = 0; p < P; p++) yp[(size_t)i * ldy + p] += Dh * xp[(size_t)i * in->ldx + p];
        // S = exp(c_last) S + (w x)^T B with w_j = exp(c_last - c_j) dt_j
        const int last = q - 1, lrl = s->lr[t0 + last];
        float el = lrl < t0 ? (float)exp(s->cum[last]) : 0.0f;
        for (int j = 0; j < q; j++) {
            float w = t0 + j >= lrl ? (float)exp(s->cum[last] - s->cum[j]) * s->dt[j] : 0.0f;
            for (int p = 0; p < P; p++) s->T2[j * P + p] = w * xp[(size_t)j * in->ldx + p];
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, q, 1.0f, s->T2, P, Bp, in->ldb,
                    el, S, N);
    }
    if (final_state) memcpy(final_state + ((size_t)b * H + h) * pn, S, pn * sizeof(float));
}

void kd_cpu_mamba2_ssd_fwd(float *y, float *states, float *final_state, const float *init_state,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d) {
    // y is (B,T,H,P); states (B,H,nc,P,N); final_state, init_state (B,H,P,N)
    const int BH = in->B * d->H;
#pragma omp parallel
    {
        ssd_scratch s = scratch_new(d, in->T);
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < BH; bh++)
            ssd_fwd_head(y, states, final_state, init_state, in, d, bh / d->H, bh % d->H, &s);
        scratch_free(&s);
    }
}

// ============================================================================ backward

// Backward of one head over all chunks (reverse order). Accumulates into the kv slices of
// dx, dB (zeroed by the caller) and writes dC, ddt of head h. acc[0..2] += dD, dA, ddt_bias.
static void ssd_bwd_head(const kd_mamba2_grad *g, const float *dy, const float *states,
                         const kd_mamba2_in *in, const kd_mamba2_dims *d, int b, int h,
                         ssd_scratch *s, double *acc) {
    const int T = in->T, H = d->H, P = d->P, N = d->N, Q = d->Q;
    const int kv = h / (H / d->n_kv), nc = kd_mamba2_nchunks(T, Q), ldy = H * P;
    const float A = -expf(in->A_log[h]), Dh = in->D[h];
    const size_t pn = (size_t)P * N;
    double dD = 0.0, dA = 0.0, dbias = 0.0;
    last_resets(s->lr, in->seg, b, T);
    memset(s->dS, 0, pn * sizeof(float)); // no gradient flows into the final state
    for (int c = nc - 1; c >= 0; c--) {
        const int t0 = c * Q, q = T - t0 < Q ? T - t0 : Q;
        const float *S = states + (((size_t)b * H + h) * nc + c) * pn;
        const size_t r0 = (size_t)b * T + t0;
        const float *xp = in->x + r0 * in->ldx + (size_t)kv * P;
        const float *Bp = in->Bm + r0 * in->ldb + (size_t)kv * N;
        const float *Cp = in->Cm + r0 * in->ldc + (size_t)h * N;
        const float *dyp = dy + r0 * ldy + (size_t)h * P;
        float *dxp = g->dx + r0 * g->ldx + (size_t)kv * P;
        float *dBp = g->dB + r0 * g->ldb + (size_t)kv * N;
        float *dCp = g->dC + r0 * g->ldc + (size_t)h * N;
        chunk_dt(s->dt, s->cum, in, b, h, t0, q, A);
        chunk_decay(s->E, s->cum, s->lr, t0, q);
        memset(s->dcum, 0, 2 * (size_t)Q * sizeof(double)); // dcum and ddt
        // D x term
        for (int i = 0; i < q; i++)
            for (int p = 0; p < P; p++) {
                float gy = dyp[(size_t)i * ldy + p];
                dD += (double)gy * xp[(size_t)i * in->ldx + p];
                dxp[(size_t)i * g->ldx + p] += Dh * gy;
            }
        // intra-chunk: y = M x with M = G*E*dt_j, G = C B^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, q, N, 1.0f, Cp, in->ldc, Bp,
                    in->ldb, 0.0f, s->G, q);
        for (int i = 0; i < q * q; i++) s->M[i] = s->G[i] * s->E[i] * s->dt[i % q];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, q, P, 1.0f, dyp, ldy, xp, in->ldx,
                    0.0f, s->dM, q);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, P, q, 1.0f, s->M, q, dyp, ldy, 1.0f,
                    dxp, g->ldx);
        for (int i = 0; i < q; i++)
            for (int j = 0; j <= i; j++) {
                float dm = s->dM[i * q + j], e = s->E[i * q + j];
                double R = (double)dm * s->M[i * q + j];
                s->dcum[i] += R;
                s->dcum[j] -= R;
                s->ddt[j] += (double)dm * s->G[i * q + j] * e;
                s->dM[i * q + j] = dm * e * s->dt[j]; // becomes dG
            }
        for (int i = 0; i < q; i++)
            for (int j = i + 1; j < q; j++) s->dM[i * q + j] = 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, q, 1.0f, s->dM, q, Bp, in->ldb,
                    1.0f, dCp, g->ldc);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, N, q, 1.0f, s->dM, q, Cp, in->ldc,
                    1.0f, dBp, g->ldb);
        // state -> output: y_i += e_i S C_i
        memset(s->dSin, 0, pn * sizeof(float));
        if (s->lr[t0] < t0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, P, N, 1.0f, Cp, in->ldc, S, N,
                        0.0f, s->T1, P);
            for (int i = 0; i < q; i++) {
                float e = s->lr[t0 + i] < t0 ? (float)exp(s->cum[i]) : 0.0f;
                double dot = 0.0;
                for (int p = 0; p < P; p++) {
                    float gy = dyp[(size_t)i * ldy + p];
                    dot += (double)gy * s->T1[i * P + p];
                    s->T2[i * P + p] = e * gy;
                }
                s->dcum[i] += e * dot;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, P, 1.0f, s->T2, P, S, N,
                        1.0f, dCp, g->ldc);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, q, 1.0f, s->T2, P, Cp,
                        in->ldc, 0.0f, s->dSin, N);
        }
        // state passing: S' = el S + sum_j f_j dt_j x_j (x) B_j, with dS' = s->dS
        const int last = q - 1, lrl = s->lr[t0 + last];
        if (lrl < t0) {
            float el = (float)exp(s->cum[last]);
            double dot = 0.0;
            for (size_t k = 0; k < pn; k++) {
                dot += (double)s->dS[k] * S[k];
                s->dSin[k] += el * s->dS[k];
            }
            s->dcum[last] += el * dot;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, P, N, 1.0f, Bp, in->ldb, s->dS, N,
                    0.0f, s->U, P);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, P, 1.0f, xp, in->ldx, s->dS, N,
                    0.0f, s->V, N);
        for (int j = 0; j < q; j++) {
            if (t0 + j < lrl) continue;
            float f = (float)exp(s->cum[last] - s->cum[j]), w = f * s->dt[j];
            double xu = 0.0;
            for (int p = 0; p < P; p++) {
                xu += (double)xp[(size_t)j * in->ldx + p] * s->U[j * P + p];
                dxp[(size_t)j * g->ldx + p] += w * s->U[j * P + p];
            }
            for (int n = 0; n < N; n++) dBp[(size_t)j * g->ldb + n] += w * s->V[j * N + n];
            s->ddt[j] += f * xu;
            double df = f * s->dt[j] * xu;
            s->dcum[last] += df;
            s->dcum[j] -= df;
        }
        // c_i = sum_{k<=i} dt_k A  ->  d(dt_k A) = sum_{i>=k} dc_i
        double run = 0.0;
        for (int k = q - 1; k >= 0; k--) {
            run += s->dcum[k];
            dA += run * s->dt[k];
            double gdt = s->ddt[k] + run * A;
            float raw = in->dt[(r0 + k) * in->lddt + h] + in->dt_bias[h];
            float graw = (float)(gdt * kd_m2_dsoftplus(raw));
            g->ddt[(r0 + k) * g->lddt + h] = graw;
            dbias += graw;
        }
        memcpy(s->dS, s->dSin, pn * sizeof(float));
    }
    acc[0] += dD;
    acc[1] += dA * A; // dA_log = dA * dA/dA_log = dA * A
    acc[2] += dbias;
}

void kd_cpu_mamba2_ssd_bwd(const kd_mamba2_grad *g, const float *dy, const float *states,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d) {
    // dy is (B,T,H,P); states from the forward (B,H,nc,P,N)
    const int B = in->B, T = in->T, H = d->H, nkv = d->n_kv, rep = H / nkv;
    double *acc = kd_calloc((size_t)B * H * 3, sizeof(double));
#pragma omp parallel
    {
        ssd_scratch s = scratch_new(d, T);
#pragma omp for schedule(dynamic, 1)
        for (int bk = 0; bk < B * nkv; bk++) {
            int b = bk / nkv, kv = bk % nkv;
            for (int t = 0; t < T; t++) {
                size_t r = (size_t)b * T + t;
                memset(g->dx + r * g->ldx + (size_t)kv * d->P, 0, d->P * sizeof(float));
                memset(g->dB + r * g->ldb + (size_t)kv * d->N, 0, d->N * sizeof(float));
                for (int h = kv * rep; h < (kv + 1) * rep; h++)
                    memset(g->dC + r * g->ldc + (size_t)h * d->N, 0, d->N * sizeof(float));
            }
            for (int h = kv * rep; h < (kv + 1) * rep; h++)
                ssd_bwd_head(g, dy, states, in, d, b, h, &s, acc + ((size_t)b * H + h) * 3);
        }
        scratch_free(&s);
    }
    for (int h = 0; h < H; h++) {
        double dD = 0, dA = 0, db = 0;
        for (int b = 0; b < B; b++) {
            dD += acc[((size_t)b * H + h) * 3 + 0];
            dA += acc[((size_t)b * H + h) * 3 + 1];
            db += acc[((size_t)b * H + h) * 3 + 2];
        }
        g->dD[h] += (float)dD;
        g->dA_log[h] += (float)dA;
        g->ddt_bias[h] += (float)db;
    }
    free(acc);
}
