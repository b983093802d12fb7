// mamba2_grid_ssd.h: the state of the CUDA chunked SSD scan (kernels/cuda/mamba2_ssd.cu) and
// the per-thread bodies that are not products: per-chunk dt and cumsum, the chunk recurrences
// (forward and reverse), the per-chunk dt gradient and parameter partials, and scan_ref.
// The products between them are batched GEMMs, and the elementwise bodies around those GEMMs
// and the launch plans that order everything are in mamba2_grid_ssd_gemm.h. Pattern of
// kernels/mamba2_grid.h: one grid index owns its outputs, fixed-order loops, no atomics;
// tests/unit/test_mamba2_grid.c runs them on the host against the CPU backend.
#pragma once
#include "kernels/mamba2_grid.h"

// ============================================================================ SSD
// The chunked scan (chunks of Q tokens, c_i = chunk-local cum, S_c the state entering chunk
// c, el_c = exp(c_last) unless the last token's document starts inside the chunk):
//   y_i   = sum_{j<=i, visible} (C_i.B_j) exp(c_i-c_j) dt_j x_j + [doc before t0] exp(c_i) S_c C_i
//           + D x_i
//   S_c+1 = el_c S_c + Sloc_c
//   Sloc_c = sum_{j visible to the last token} exp(c_last-c_j) dt_j x_j (x) B_j
// The scratch holds, besides the per-token and per-chunk values, the GEMM operands and
// results: qa, qb (B,H,nc,Q,Q) blocks (G or M, dy x^T or dG), tp, tq1, tq2 (B,H,T,P) and
// tn, tdb (B,H,T,N) per-head token rows, and the pointer arrays of one batched GEMM call
// (3 x B*H*nc pointers, reused by every call: the calls run in stream order).
typedef struct kd_m2g_ssd {
    kd_mamba2_in in;
    kd_mamba2_dims d;
    int nc;
    float *y, *states, *final_state; // fwd: states = the caller's or scratch sbuf
    const float *init_state;
    kd_mamba2_grad g;        // bwd
    const float *dy, *st;    // bwd: dy (B,T,H,P), st = the states of the forward
    int *lr;                 // (B,T)
    float *dt;               // (B,H,T)
    double *cum;             // (B,H,T) chunk-local
    float *cbuf;             // (B,H,nc,P,N): fwd Sloc, bwd Gout (state gradient from outputs)
    float *sbuf;             // (B,H,nc,P,N): fwd states when the caller passes NULL, bwd dS_out
    double *dcum, *ddt, *df; // (B,H,T) each: per-token gradient parts of the backward
    double *acc;             // (B,H,nc,3)
    double *ref;             // (B,H,P,N): scan_ref's double state
    float *qa, *qb;          // (B,H,nc,Q,Q) each
    float *tp, *tq1, *tq2;   // (B,H,T,P) each
    float *tn, *tdb;         // (B,H,T,N) each
    const float **pa, **pb;  // (B*H*nc) each: a batched GEMM's A and B block pointers
    float **pc;              // (B*H*nc): its C block pointers
} kd_m2g_ssd;

static inline size_t kd_m2g_ssd_scratch(const kd_mamba2_dims *d, int B, int T) {
    const int nc = kd_m2g_nchunks(T, d->Q);
    const size_t bt = (size_t)B * T, bht = bt * d->H, pn = (size_t)d->P * d->N;
    const size_t bh = (size_t)B * d->H, qq = (size_t)d->Q * d->Q;
    return kd_m2g_round(bt * sizeof(int)) + kd_m2g_round(bht * 4) +
           4 * kd_m2g_round(bht * sizeof(double)) + 2 * kd_m2g_round(bh * nc * pn * 4) +
           kd_m2g_round(bh * nc * 3 * sizeof(double)) + kd_m2g_round(bh * pn * sizeof(double)) +
           2 * kd_m2g_round(bh * nc * qq * 4) + 3 * kd_m2g_round(bht * d->P * 4) +
           2 * kd_m2g_round(bht * d->N * 4) + 3 * kd_m2g_round(bh * nc * sizeof(void *));
}
// Sets nc and lays the scratch out (a->in, a->d set first).
static inline void kd_m2g_ssd_bind(kd_m2g_ssd *a, void *scratch) {
    char *p = (char *)scratch;
    a->nc = kd_m2g_nchunks(a->in.T, a->d.Q);
    const size_t bt = (size_t)a->in.B * a->in.T, bht = bt * a->d.H;
    const size_t bh = (size_t)a->in.B * a->d.H, pn = (size_t)a->d.P * a->d.N;
    const size_t qq = (size_t)a->d.Q * a->d.Q;
    a->lr = (int *)kd_m2g_take(&p, bt * sizeof(int));
    a->dt = (float *)kd_m2g_take(&p, bht * 4);
    a->cum = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->dcum = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->ddt = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->df = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->cbuf = (float *)kd_m2g_take(&p, bh * a->nc * pn * 4);
    a->sbuf = (float *)kd_m2g_take(&p, bh * a->nc * pn * 4);
    a->acc = (double *)kd_m2g_take(&p, bh * a->nc * 3 * sizeof(double));
    a->ref = (double *)kd_m2g_take(&p, bh * pn * sizeof(double));
    a->qa = (float *)kd_m2g_take(&p, bh * a->nc * qq * 4);
    a->qb = (float *)kd_m2g_take(&p, bh * a->nc * qq * 4);
    a->tp = (float *)kd_m2g_take(&p, bht * a->d.P * 4);
    a->tq1 = (float *)kd_m2g_take(&p, bht * a->d.P * 4);
    a->tq2 = (float *)kd_m2g_take(&p, bht * a->d.P * 4);
    a->tn = (float *)kd_m2g_take(&p, bht * a->d.N * 4);
    a->tdb = (float *)kd_m2g_take(&p, bht * a->d.N * 4);
    a->pa = (const float **)kd_m2g_take(&p, bh * a->nc * sizeof(void *));
    a->pb = (const float **)kd_m2g_take(&p, bh * a->nc * sizeof(void *));
    a->pc = (float **)kd_m2g_take(&p, bh * a->nc * sizeof(void *));
}

KD_HD static inline void kd_m2g_ssd_lr(size_t b, const kd_m2g_ssd *a) {
    kd_m2g_last_reset(b, a->lr, a->in.seg, a->in.T);
}
KD_HD static inline void kd_m2g_ssd_dt_cum(size_t idx, const kd_m2g_ssd *a) {
    kd_m2g_dt_cum(idx, a->dt, a->cum, &a->in, a->d.H, a->d.Q, a->nc);
}
KD_HD static inline void kd_m2g_ssd_params(size_t h, const kd_m2g_ssd *a) {
    kd_m2g_param_sum(h, a->acc, a->in.B, a->d.H, a->nc, a->g.dD, a->g.dA_log, a->g.ddt_bias);
}

// Row pointers of token t (in row b) for head h and its kv head.
KD_HD static inline const float *kd_m2g_x(const kd_m2g_ssd *a, size_t b, int t, int kv) {
    return a->in.x + (b * a->in.T + t) * (size_t)a->in.ldx + (size_t)kv * a->d.P;
}
KD_HD static inline const float *kd_m2g_B(const kd_m2g_ssd *a, size_t b, int t, int kv) {
    return a->in.Bm + (b * a->in.T + t) * (size_t)a->in.ldb + (size_t)kv * a->d.N;
}
KD_HD static inline const float *kd_m2g_C(const kd_m2g_ssd *a, size_t b, int t, int h) {
    return a->in.Cm + (b * a->in.T + t) * (size_t)a->in.ldc + (size_t)h * a->d.N;
}
KD_HD static inline const float *kd_m2g_dy(const kd_m2g_ssd *a, size_t b, int t, int h) {
    return a->dy + (b * a->in.T + t) * (size_t)a->d.H * a->d.P + (size_t)h * a->d.P;
}

// The chunk that holds token t: first token t0, length q, lrl = lr of its last token.
typedef struct {
    int t0, q, lrl;
} kd_m2g_chunk;
KD_HD static inline kd_m2g_chunk kd_m2g_chunk_of(const kd_m2g_ssd *a, size_t b, int c) {
    kd_m2g_chunk k;
    k.t0 = c * a->d.Q;
    k.q = kd_m2g_min(a->d.Q, a->in.T - k.t0);
    k.lrl = a->lr[b * a->in.T + k.t0 + k.q - 1];
    return k;
}
// exp(c_last - c_j) dt_j when token t0+j reaches the state leaving the chunk, else 0.
KD_HD static inline float kd_m2g_wpass(const kd_m2g_ssd *a, size_t bh, kd_m2g_chunk k, int j) {
    if (k.t0 + j < k.lrl) return 0.0f;
    const double *cum = a->cum + bh * a->in.T + k.t0;
    return (float)exp(cum[k.q - 1] - cum[j]) * a->dt[bh * a->in.T + k.t0 + j];
}
// el of chunk c: exp(c_last) when the state entering the chunk reaches its end, else 0.
KD_HD static inline float kd_m2g_el(const kd_m2g_ssd *a, size_t bh, kd_m2g_chunk k) {
    return k.lrl < k.t0 ? (float)exp(a->cum[bh * a->in.T + k.t0 + k.q - 1]) : 0.0f;
}
// State element (p,n) of (b,h) through the chunks: states[c] = S; S = el_c S + Sloc_c.
KD_HD static inline void kd_m2g_ssd_pass(size_t idx, const kd_m2g_ssd *a) {
    const size_t pn = (size_t)a->d.P * a->d.N, bh = idx / pn, e = idx % pn;
    const size_t b = bh / a->d.H;
    float S = a->init_state ? a->init_state[idx] : 0.0f;
    for (int c = 0; c < a->nc; c++) {
        const size_t o = (bh * a->nc + c) * pn + e;
        a->states[o] = S;
        S = kd_m2g_el(a, bh, kd_m2g_chunk_of(a, b, c)) * S + a->cbuf[o];
    }
    if (a->final_state) a->final_state[idx] = S;
}

// ---------------------------------------------------------------------------- SSD backward
// dS_out[c] (gradient of the state leaving chunk c) for element (p,n) of (b,h), chunks in
// reverse: dS_out[nc-1] = 0 (the final state gets no gradient); dS_in[c] = Gout_c +
// el_c dS_out[c]; dS_out[c-1] = dS_in[c].
KD_HD static inline void kd_m2g_ssd_dpass(size_t idx, const kd_m2g_ssd *a) {
    const size_t pn = (size_t)a->d.P * a->d.N, bh = idx / pn, e = idx % pn;
    const size_t b = bh / a->d.H;
    float dS = 0.0f;
    for (int c = a->nc - 1; c >= 0; c--) {
        const size_t o = (bh * a->nc + c) * pn + e;
        a->sbuf[o] = dS;
        dS = a->cbuf[o] + kd_m2g_el(a, bh, kd_m2g_chunk_of(a, b, c)) * dS;
    }
}
// Chunk c of (b,h), after ssd_gtok (mamba2_grid_ssd_gemm.h) has filled dcum, ddt, df of its
// tokens: the last token's dcum gets el_c <dS_out, S_c> + sum_j df_j; then the
// reverse cumsum gives ddt (through the softplus, overwritten) and acc[b,h,c] = (dD,
// dA_log, ddt_bias) of the chunk.
KD_HD static inline void kd_m2g_ssd_chunk(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T, nc = a->nc;
    const int c = (int)(idx % (size_t)nc);
    const size_t bh = idx / nc, b = bh / H, pn = (size_t)P * N;
    const int h = (int)(bh % (size_t)H), kv = h / (H / a->d.n_kv);
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const float A = -expf(a->in.A_log[h]);
    double last = 0.0, dD = 0.0, dA = 0.0, db = 0.0, run = 0.0;
    if (k.lrl < k.t0) {
        const float *S = a->st + (bh * nc + c) * pn, *dS = a->sbuf + (bh * nc + c) * pn;
        double dot = 0.0;
        for (size_t e = 0; e < pn; e++) dot += (double)dS[e] * S[e];
        last += kd_m2g_el(a, bh, k) * dot;
    }
    for (int j = 0; j < k.q; j++) last += a->df[bh * T + k.t0 + j];
    for (int i = k.q - 1; i >= 0; i--) {
        const int t = k.t0 + i;
        const size_t r = b * T + t;
        run += a->dcum[bh * T + t] + (i == k.q - 1 ? last : 0.0);
        dA += run * a->dt[bh * T + t];
        const float raw = a->in.dt[r * (size_t)a->in.lddt + h] + a->in.dt_bias[h];
        const float graw = (float)((a->ddt[bh * T + t] + run * A) * kd_m2_dsoftplus(raw));
        a->g.ddt[r * (size_t)a->g.lddt + h] = graw;
        db += graw;
        const float *dyi = kd_m2g_dy(a, b, t, h), *xi = kd_m2g_x(a, b, t, kv);
        for (int p = 0; p < P; p++) dD += (double)dyi[p] * xi[p];
    }
    a->acc[idx * 3 + 0] = dD, a->acc[idx * 3 + 1] = dA * A, a->acc[idx * 3 + 2] = db;
}

// scan_ref: one thread per state row (b,h,p), tokens in order, the row kept in double.
KD_HD static inline void kd_m2g_ssd_ref(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T, p = (int)(idx % (size_t)P);
    const size_t bh = idx / P, b = bh / H;
    const int h = (int)(bh % (size_t)H), kv = h / (H / a->d.n_kv);
    const float A = -expf(a->in.A_log[h]);
    const int32_t *sg = a->in.seg ? a->in.seg + b * T : 0;
    double *S = a->ref + idx * N;
    for (int n = 0; n < N; n++) S[n] = a->init_state ? a->init_state[idx * N + n] : 0.0;
    for (int t = 0; t < T; t++) {
        const size_t r = b * T + t;
        const float x = kd_m2g_x(a, b, t, kv)[p];
        const float *Bv = kd_m2g_B(a, b, t, kv), *Cv = kd_m2g_C(a, b, t, h);
        const double dt = kd_m2_softplus(a->in.dt[r * (size_t)a->in.lddt + h] + a->in.dt_bias[h]);
        const double dec = kd_m2_is_reset(sg, t) ? 0.0 : exp(dt * A);
        double acc = 0.0;
        for (int n = 0; n < N; n++) {
            const double v = dec * S[n] + dt * x * Bv[n];
            S[n] = v;
            acc += v * Cv[n];
        }
        a->y[(r * H + h) * P + p] = (float)(acc + (double)a->in.D[h] * x);
    }
    if (a->final_state)
        for (int n = 0; n < N; n++) a->final_state[idx * N + n] = (float)S[n];
}

// ---------------------------------------------------------------------------- launch plans
// As in mamba2_grid.h: STAGE(body, grid size, a) per stage; kernels/cuda/mamba2_ssd.cu
// launches it, tests/unit/test_mamba2_grid.c runs it. The forward and backward plans are in
// mamba2_grid_ssd_gemm.h.
#define KD_M2G_SCAN_REF_PLAN(STAGE, a) STAGE(kd_m2g_ssd_ref, (size_t)(a).in.B * (a).d.H * (a).d.P, a)
