// mamba2_ssd.c: the chunked SSD scan of Mamba-2 (forward and exact backward) on the CPU.
// Per head h with dA_t = dt_t*A_h and chunk-local cumsum c_i = sum_{k<=i} dA_k:
//   y_i  = sum_{j<=i} (C_i.B_j) exp(c_i-c_j) dt_j x_j  +  exp(c_i) S.C_i  +  D x_i
//   S'   = exp(c_last) S + sum_j exp(c_last-c_j) dt_j x_j (x) B_j
// where S (P,N) is the state entering the chunk. Terms that cross a document start
// (kd_m2_is_reset) are masked to zero. The Q x Q and Q x P products run through sgemm.
// Threads: forward over (b,h); backward over (b,kv head) so that the heads sharing one
// kv slice of x and B accumulate their gradients without races.
// Scratch (kd_cpu_mamba2_ssd_scratch): chunk buffers for each thread (ssd_scratch) and,
// for the backward, the per-(b,h) double accumulators of dD, dA_log and ddt_bias.
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/cpu/vmath.h"
#include "kernels/mamba2_math.h"

#include <cblas.h>
#include <math.h>
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

// One thread's buffers: Q x Q (G, E, M, dM), Q x P (T1, T2, U), Q x N (V), P x N (dS,
// dSin, S) and Q (dt) floats; Q doubles (cum, dcum, ddt); T ints (lr).
typedef struct {
    float *G, *E, *M, *dM, *T1, *T2, *U, *V, *dS, *dSin, *S, *dt;
    double *cum, *dcum, *ddt;
    int *lr;
} ssd_scratch;

static size_t ssd_float_count(const kd_mamba2_dims *d) {
    size_t Q = (size_t)d->Q, qq = Q * Q, qp = Q * d->P, qn = Q * d->N, pn = (size_t)d->P * d->N;
    return 4 * qq + 3 * qp + qn + 3 * pn + Q;
}

// Bytes of one thread's ssd_scratch (a multiple of 64).
static size_t ssd_thread_bytes(const kd_mamba2_dims *d, int T) {
    return kd_cpu_round(ssd_float_count(d) * sizeof(float)) +
           kd_cpu_round(3 * (size_t)d->Q * sizeof(double)) +
           kd_cpu_round((size_t)(T > 0 ? T : 1) * sizeof(int));
}

// Lays one thread's ssd_scratch out over base (ssd_thread_bytes(d, T) bytes, T >= 1 ints
// for lr at the end).
static ssd_scratch scratch_bind(char *base, const kd_mamba2_dims *d) {
    int Q = d->Q, P = d->P, N = d->N;
    ssd_scratch s;
    size_t qq = (size_t)Q * Q, qp = (size_t)Q * P, qn = (size_t)Q * N, pn = (size_t)P * N;
    s.G = (float *)base;
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
    base += kd_cpu_round(ssd_float_count(d) * sizeof(float));
    s.cum = (double *)base;
    s.dcum = s.cum + Q;
    s.ddt = s.dcum + Q;
    base += kd_cpu_round(3 * (size_t)Q * sizeof(double));
    s.lr = (int *)base;
    return s;
}

// The per-thread slices of a parallel region's scratch: nthr * per bytes from ws.
typedef struct {
    char *base;
    size_t per;
    int nthr;
} thread_slices;

static thread_slices slices_take(kd_scratch *ws, size_t per) {
    thread_slices t = {NULL, kd_cpu_round(per), omp_get_max_threads()};
    t.base = kd_cpu_take(ws, t.per * (size_t)t.nthr);
    return t;
}

// This thread's slice (called inside the parallel region).
static char *slice_mine(const thread_slices *t) {
    KD_CPU_ASSERT(omp_get_num_threads() <= t->nthr);
    return t->base + t->per * (size_t)omp_get_thread_num();
}

size_t kd_cpu_mamba2_ssd_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T) {
    (void)ctx;
    size_t chunked = kd_cpu_round((size_t)B * d->H * 3 * sizeof(double)) +
                     kd_cpu_per_thread(ssd_thread_bytes(d, T));
    size_t scan = kd_cpu_per_thread(kd_cpu_mamba2_scan_thread_bytes(d));
    return chunked > scan ? chunked : scan;
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

void kd_cpu_mamba2_ssd_fwd(void *ctx, float *y, float *states, float *final_state,
                           const float *init_state, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                           kd_scratch ws) {
    // y is (B,T,H,P); states (B,H,nc,P,N); final_state, init_state (B,H,P,N)
    (void)ctx;
    const int BH = in->B * d->H;
    thread_slices th = slices_take(&ws, ssd_thread_bytes(d, in->T));
#pragma omp parallel
    {
        ssd_scratch s = scratch_bind(slice_mine(&th), d);
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < BH; bh++)
            ssd_fwd_head(y, states, final_state, init_state, in, d, bh / d->H, bh % d->H, &s);
    }
}

// ============================================================================ backward

// One chunk of the backward: rows [t0,t0+q) of batch row b (r0 = b*T+t0), the slices of
// head h (C, dC, dy) and of its kv head (x, B, dx, dB), and S the state entering it.
typedef struct {
    int t0, q, ldy;
    size_t r0;
    const float *S, *xp, *Bp, *Cp, *dyp;
    float *dxp, *dBp, *dCp;
} bwd_chunk;

static bwd_chunk chunk_views(const kd_mamba2_grad *g, const float *dy, const float *states,
                             const kd_mamba2_in *in, const kd_mamba2_dims *d, int b, int h, int c) {
    const int T = in->T, P = d->P, N = d->N, Q = d->Q, kv = h / (d->H / d->n_kv);
    const int nc = kd_mamba2_nchunks(T, Q);
    bwd_chunk k;
    k.t0 = c * Q, k.q = T - k.t0 < Q ? T - k.t0 : Q, k.ldy = d->H * P;
    k.S = states + (((size_t)b * d->H + h) * nc + c) * (size_t)P * N;
    k.r0 = (size_t)b * T + k.t0;
    k.xp = in->x + k.r0 * in->ldx + (size_t)kv * P;
    k.Bp = in->Bm + k.r0 * in->ldb + (size_t)kv * N;
    k.Cp = in->Cm + k.r0 * in->ldc + (size_t)h * N;
    k.dyp = dy + k.r0 * k.ldy + (size_t)h * P;
    k.dxp = g->dx + k.r0 * g->ldx + (size_t)kv * P;
    k.dBp = g->dB + k.r0 * g->ldb + (size_t)kv * N;
    k.dCp = g->dC + k.r0 * g->ldc + (size_t)h * N;
    return k;
}

// The D x term (*dD += dy.x) and the intra-chunk product y = M x with M = G*E*dt_j,
// G = C B^T: dx, dB, dC of the chunk, and dcum, ddt of its tokens.
static void bwd_intra(const bwd_chunk *k, const kd_mamba2_grad *g, const kd_mamba2_in *in,
                      const kd_mamba2_dims *d, float Dh, ssd_scratch *s, double *dD) {
    const int q = k->q, P = d->P, N = d->N, ldy = k->ldy;
    for (int i = 0; i < q; i++)
        for (int p = 0; p < P; p++) {
            float gy = k->dyp[(size_t)i * ldy + p];
            *dD += (double)gy * k->xp[(size_t)i * in->ldx + p];
            k->dxp[(size_t)i * g->ldx + p] += Dh * gy;
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, q, N, 1.0f, k->Cp, in->ldc, k->Bp,
                in->ldb, 0.0f, s->G, q);
    for (int i = 0; i < q * q; i++) s->M[i] = s->G[i] * s->E[i] * s->dt[i % q];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, q, P, 1.0f, k->dyp, ldy, k->xp, in->ldx,
                0.0f, s->dM, q);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, P, q, 1.0f, s->M, q, k->dyp, ldy, 1.0f,
                k->dxp, g->ldx);
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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, q, 1.0f, s->dM, q, k->Bp, in->ldb,
                1.0f, k->dCp, g->ldc);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, q, N, q, 1.0f, s->dM, q, k->Cp, in->ldc,
                1.0f, k->dBp, g->ldb);
}

// State -> output (y_i += e_i S C_i for tokens whose document began before t0): dC, dcum,
// and the state's gradient dSin (overwritten).
static void bwd_state_out(const bwd_chunk *k, const kd_mamba2_grad *g, const kd_mamba2_in *in,
                          const kd_mamba2_dims *d, ssd_scratch *s) {
    const int q = k->q, t0 = k->t0, P = d->P, N = d->N;
    memset(s->dSin, 0, (size_t)P * N * sizeof(float));
    if (s->lr[t0] >= t0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, P, N, 1.0f, k->Cp, in->ldc, k->S, N,
                0.0f, s->T1, P);
    for (int i = 0; i < q; i++) {
        float e = s->lr[t0 + i] < t0 ? (float)exp(s->cum[i]) : 0.0f;
        double dot = 0.0;
        for (int p = 0; p < P; p++) {
            float gy = k->dyp[(size_t)i * k->ldy + p];
            dot += (double)gy * s->T1[i * P + p];
            s->T2[i * P + p] = e * gy;
        }
        s->dcum[i] += e * dot;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, P, 1.0f, s->T2, P, k->S, N, 1.0f,
                k->dCp, g->ldc);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, q, 1.0f, s->T2, P, k->Cp, in->ldc,
                0.0f, s->dSin, N);
}

// State passing, S' = el S + sum_j f_j dt_j x_j (x) B_j with dS' = s->dS: dSin, dx, dB,
// ddt and dcum.
static void bwd_state_pass(const bwd_chunk *k, const kd_mamba2_grad *g, const kd_mamba2_in *in,
                           const kd_mamba2_dims *d, ssd_scratch *s) {
    const int q = k->q, t0 = k->t0, P = d->P, N = d->N;
    const size_t pn = (size_t)P * N;
    const int last = q - 1, lrl = s->lr[t0 + last];
    if (lrl < t0) {
        float el = (float)exp(s->cum[last]);
        double dot = 0.0;
        for (size_t i = 0; i < pn; i++) {
            dot += (double)s->dS[i] * k->S[i];
            s->dSin[i] += el * s->dS[i];
        }
        s->dcum[last] += el * dot;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, q, P, N, 1.0f, k->Bp, in->ldb, s->dS, N,
                0.0f, s->U, P);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, q, N, P, 1.0f, k->xp, in->ldx, s->dS, N,
                0.0f, s->V, N);
    for (int j = 0; j < q; j++) {
        if (t0 + j < lrl) continue;
        float f = (float)exp(s->cum[last] - s->cum[j]), w = f * s->dt[j];
        double xu = 0.0;
        for (int p = 0; p < P; p++) {
            xu += (double)k->xp[(size_t)j * in->ldx + p] * s->U[j * P + p];
            k->dxp[(size_t)j * g->ldx + p] += w * s->U[j * P + p];
        }
        for (int n = 0; n < N; n++) k->dBp[(size_t)j * g->ldb + n] += w * s->V[j * N + n];
        s->ddt[j] += f * xu;
        double df = f * s->dt[j] * xu;
        s->dcum[last] += df;
        s->dcum[j] -= df;
    }
}

// c_i = sum_{k<=i} dt_k A  ->  d(dt_k A) = sum_{i>=k} dc_i: writes ddt of head h (through
// the softplus) and accumulates *dA, *dbias.
static void bwd_dt(const bwd_chunk *k, const kd_mamba2_grad *g, const kd_mamba2_in *in, int h,
                   float A, ssd_scratch *s, double *dA, double *dbias) {
    double run = 0.0;
    for (int i = k->q - 1; i >= 0; i--) {
        run += s->dcum[i];
        *dA += run * s->dt[i];
        double gdt = s->ddt[i] + run * A;
        float raw = in->dt[(k->r0 + i) * in->lddt + h] + in->dt_bias[h];
        float graw = (float)(gdt * kd_m2_dsoftplus(raw));
        g->ddt[(k->r0 + i) * g->lddt + h] = graw;
        *dbias += graw;
    }
}

// Backward of one head over all chunks (reverse order). Accumulates into the kv slices of
// dx, dB (zeroed by the caller) and writes dC, ddt of head h. acc[0..2] += dD, dA, ddt_bias.
static void ssd_bwd_head(const kd_mamba2_grad *g, const float *dy, const float *states,
                         const kd_mamba2_in *in, const kd_mamba2_dims *d, int b, int h,
                         ssd_scratch *s, double *acc) {
    const int T = in->T, Q = d->Q, nc = kd_mamba2_nchunks(T, Q);
    const float A = -expf(in->A_log[h]), Dh = in->D[h];
    const size_t pn = (size_t)d->P * d->N;
    double dD = 0.0, dA = 0.0, dbias = 0.0;
    last_resets(s->lr, in->seg, b, T);
    memset(s->dS, 0, pn * sizeof(float)); // no gradient flows into the final state
    for (int c = nc - 1; c >= 0; c--) {
        bwd_chunk k = chunk_views(g, dy, states, in, d, b, h, c);
        chunk_dt(s->dt, s->cum, in, b, h, k.t0, k.q, A);
        chunk_decay(s->E, s->cum, s->lr, k.t0, k.q);
        memset(s->dcum, 0, 2 * (size_t)Q * sizeof(double)); // dcum and ddt
        bwd_intra(&k, g, in, d, Dh, s, &dD);
        bwd_state_out(&k, g, in, d, s);
        bwd_state_pass(&k, g, in, d, s);
        bwd_dt(&k, g, in, h, A, s, &dA, &dbias);
        memcpy(s->dS, s->dSin, pn * sizeof(float));
    }
    acc[0] += dD;
    acc[1] += dA * A; // dA_log = dA * dA/dA_log = dA * A
    acc[2] += dbias;
}

// dx, dB (kv head kv of row b) and dC (its heads) zeroed before the heads accumulate.
static void zero_kv_grads(const kd_mamba2_grad *g, const kd_mamba2_dims *d, int T, int b, int kv) {
    const int rep = d->H / d->n_kv;
    for (int t = 0; t < T; t++) {
        size_t r = (size_t)b * T + t;
        memset(g->dx + r * g->ldx + (size_t)kv * d->P, 0, d->P * sizeof(float));
        memset(g->dB + r * g->ldb + (size_t)kv * d->N, 0, d->N * sizeof(float));
        for (int h = kv * rep; h < (kv + 1) * rep; h++)
            memset(g->dC + r * g->ldc + (size_t)h * d->N, 0, d->N * sizeof(float));
    }
}

void kd_cpu_mamba2_ssd_bwd(void *ctx, const kd_mamba2_grad *g, const float *dy, const float *states,
                           const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    // dy is (B,T,H,P); states from the forward (B,H,nc,P,N)
    (void)ctx;
    const int B = in->B, T = in->T, H = d->H, nkv = d->n_kv, rep = H / nkv;
    double *acc = kd_cpu_take(&ws, (size_t)B * H * 3 * sizeof(double)); // (B,H,3)
    memset(acc, 0, (size_t)B * H * 3 * sizeof(double));
    thread_slices th = slices_take(&ws, ssd_thread_bytes(d, T));
#pragma omp parallel
    {
        ssd_scratch s = scratch_bind(slice_mine(&th), d);
#pragma omp for schedule(dynamic, 1)
        for (int bk = 0; bk < B * nkv; bk++) {
            int b = bk / nkv, kv = bk % nkv;
            zero_kv_grads(g, d, T, b, kv);
            for (int h = kv * rep; h < (kv + 1) * rep; h++)
                ssd_bwd_head(g, dy, states, in, d, b, h, &s, acc + ((size_t)b * H + h) * 3);
        }
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
}
