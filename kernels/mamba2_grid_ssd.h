// mamba2_grid_ssd.h: the per-thread bodies of the CUDA chunked SSD scan
// (kernels/cuda/mamba2_ssd.cu): forward, backward and scan_ref, in the pattern of
// kernels/mamba2_grid.h (one grid index owns its outputs, fixed-order loops, no atomics;
// tests/unit/test_mamba2_grid.c runs them on the host against the CPU backend).
#pragma once
#include "kernels/mamba2_grid.h"

// ============================================================================ SSD
// The chunked scan (chunks of Q tokens, c_i = chunk-local cum, S_c the state entering chunk
// c, el_c = exp(c_last) unless the last token's document starts inside the chunk):
//   y_i   = sum_{j<=i, visible} (C_i.B_j) exp(c_i-c_j) dt_j x_j + [doc before t0] exp(c_i) S_c C_i
//           + D x_i
//   S_c+1 = el_c S_c + Sloc_c
//   Sloc_c = sum_{j visible to the last token} exp(c_last-c_j) dt_j x_j (x) B_j
// Stages: fwd = last_reset (B), dt_cum (B*H*nc), ssd_sloc (B*H*nc*P*N), ssd_pass
// (B*H*P*N: the only loop over chunks, P*N-parallel), ssd_out (B*T*H*P).
// bwd = last_reset, dt_cum, ssd_gout (B*H*nc*P*N), ssd_dpass (B*H*P*N, chunks in reverse),
// ssd_dx (B*T*n_kv*P), ssd_dB (B*T*n_kv*N), ssd_dC (B*T*H*N), ssd_tok (B*H*T), ssd_chunk
// (B*H*nc), param_sum (H). scan_ref: ssd_ref (B*H*P), one thread per state row.
// All simple: the (C_i.B_j) and (dy_i.x_j) products are recomputed per output element
// instead of being staged through shared memory or cuBLAS (later tuning).
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
} kd_m2g_ssd;

static inline size_t kd_m2g_ssd_scratch(const kd_mamba2_dims *d, int B, int T) {
    const int nc = kd_m2g_nchunks(T, d->Q);
    const size_t bt = (size_t)B * T, bht = bt * d->H, pn = (size_t)d->P * d->N;
    const size_t bh = (size_t)B * d->H;
    return kd_m2g_round(bt * sizeof(int)) + kd_m2g_round(bht * 4) +
           4 * kd_m2g_round(bht * sizeof(double)) + 2 * kd_m2g_round(bh * nc * pn * 4) +
           kd_m2g_round(bh * nc * 3 * sizeof(double)) + kd_m2g_round(bh * pn * sizeof(double));
}
// Sets nc and lays the scratch out (a->in, a->d set first).
static inline void kd_m2g_ssd_bind(kd_m2g_ssd *a, void *scratch) {
    char *p = (char *)scratch;
    a->nc = kd_m2g_nchunks(a->in.T, a->d.Q);
    const size_t bt = (size_t)a->in.B * a->in.T, bht = bt * a->d.H;
    const size_t bh = (size_t)a->in.B * a->d.H, pn = (size_t)a->d.P * a->d.N;
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
KD_HD static inline float kd_m2g_dot(const float *u, const float *v, int n) {
    float s = 0.0f;
    for (int k = 0; k < n; k++) s += u[k] * v[k];
    return s;
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
// M[i,j] = (C_i.B_j) exp(c_i-c_j) dt_j of chunk-local tokens j <= i (visibility checked by
// the caller); G = C_i.B_j is returned in *G.
KD_HD static inline float kd_m2g_Mij(const kd_m2g_ssd *a, size_t b, int h, kd_m2g_chunk k, int i,
                                     int j, float *G, float *E) {
    const int H = a->d.H, kv = h / (H / a->d.n_kv), T = a->in.T;
    const size_t o = (b * H + h) * (size_t)T + k.t0;
    *G = kd_m2g_dot(kd_m2g_C(a, b, k.t0 + i, h), kd_m2g_B(a, b, k.t0 + j, kv), a->d.N);
    *E = (float)exp(a->cum[o + i] - a->cum[o + j]);
    return *G * *E * a->dt[o + j];
}

// Sloc[b,h,c,p,n] = sum_j wpass_j x_j[p] B_j[n].
KD_HD static inline void kd_m2g_ssd_sloc(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, nc = a->nc;
    const int n = (int)(idx % (size_t)N), p = (int)(idx / N % P);
    const size_t bhc = idx / ((size_t)P * N), bh = bhc / nc, b = bh / H;
    const int c = (int)(bhc % (size_t)nc), kv = (int)(bh % (size_t)H) / (H / a->d.n_kv);
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    float acc = 0.0f;
    for (int j = 0; j < k.q; j++)
        acc += kd_m2g_wpass(a, bh, k, j) * kd_m2g_x(a, b, k.t0 + j, kv)[p] *
               kd_m2g_B(a, b, k.t0 + j, kv)[n];
    a->cbuf[idx] = acc;
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
// y[b,t,h,p]: intra-chunk sum, state term, D x.
KD_HD static inline void kd_m2g_ssd_out(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T, p = (int)(idx % (size_t)P);
    const int h = (int)(idx / P % H), kv = h / (H / a->d.n_kv);
    const size_t r = idx / ((size_t)P * H), b = r / T, bh = b * H + h;
    const int t = (int)(r % (size_t)T), c = t / a->d.Q;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const int i = t - k.t0, l = a->lr[r];
    float acc = 0.0f, G, E;
    for (int j = l > k.t0 ? l - k.t0 : 0; j <= i; j++)
        acc += kd_m2g_Mij(a, b, h, k, i, j, &G, &E) * kd_m2g_x(a, b, k.t0 + j, kv)[p];
    if (l < k.t0) {
        const float *S = a->states + ((bh * a->nc + c) * P + p) * (size_t)N;
        acc += (float)exp(a->cum[bh * T + t]) * kd_m2g_dot(S, kd_m2g_C(a, b, t, h), N);
    }
    a->y[idx] = acc + a->in.D[h] * kd_m2g_x(a, b, t, kv)[p];
}

// ---------------------------------------------------------------------------- SSD backward
// Gout[b,h,c,p,n] = sum_i e_i dy_i[p] C_i[n], e_i = exp(c_i) for tokens whose document
// began before the chunk: the gradient of S_c through the chunk's outputs.
KD_HD static inline void kd_m2g_ssd_gout(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, nc = a->nc, T = a->in.T;
    const int n = (int)(idx % (size_t)N), p = (int)(idx / N % P);
    const size_t bhc = idx / ((size_t)P * N), bh = bhc / nc, b = bh / H;
    const int c = (int)(bhc % (size_t)nc), h = (int)(bh % (size_t)H);
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    float acc = 0.0f;
    for (int i = 0; i < k.q && a->lr[b * T + k.t0 + i] < k.t0; i++)
        acc += (float)exp(a->cum[bh * T + k.t0 + i]) * kd_m2g_dy(a, b, k.t0 + i, h)[p] *
               kd_m2g_C(a, b, k.t0 + i, h)[n];
    a->cbuf[idx] = acc;
}
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
// dx[b,t,kv,p] = sum over the heads of kv: D dy + sum_{i>=j} M[i,j] dy_i + wpass_j (B_j.dS_out)[p].
KD_HD static inline void kd_m2g_ssd_dx(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T, nkv = a->d.n_kv, rep = H / nkv;
    const int p = (int)(idx % (size_t)P), kv = (int)(idx / P % nkv);
    const size_t r = idx / ((size_t)P * nkv), b = r / T;
    const int t = (int)(r % (size_t)T), c = t / a->d.Q;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const int j = t - k.t0;
    const float *Bj = kd_m2g_B(a, b, t, kv);
    float acc = 0.0f, G, E;
    for (int h = kv * rep; h < (kv + 1) * rep; h++) {
        const size_t bh = b * H + h;
        acc += a->in.D[h] * kd_m2g_dy(a, b, t, h)[p];
        for (int i = j; i < k.q && t >= a->lr[b * T + k.t0 + i]; i++)
            acc += kd_m2g_Mij(a, b, h, k, i, j, &G, &E) * kd_m2g_dy(a, b, k.t0 + i, h)[p];
        const float w = kd_m2g_wpass(a, bh, k, j);
        if (w != 0.0f)
            acc += w * kd_m2g_dot(Bj, a->sbuf + ((bh * a->nc + c) * P + p) * (size_t)N, N);
    }
    a->g.dx[r * (size_t)a->g.ldx + (size_t)kv * P + p] = acc;
}
// dB[b,t,kv,n] = sum over the heads of kv: sum_{i>=j} dG[i,j] C_i[n] + wpass_j (x_j.dS_out)[n],
// with dG[i,j] = (dy_i.x_j) exp(c_i-c_j) dt_j.
KD_HD static inline void kd_m2g_ssd_dB(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T, nkv = a->d.n_kv, rep = H / nkv;
    const int n = (int)(idx % (size_t)N), kv = (int)(idx / N % nkv);
    const size_t r = idx / ((size_t)N * nkv), b = r / T;
    const int t = (int)(r % (size_t)T), c = t / a->d.Q;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const int j = t - k.t0;
    const float *xj = kd_m2g_x(a, b, t, kv);
    float acc = 0.0f;
    for (int h = kv * rep; h < (kv + 1) * rep; h++) {
        const size_t bh = b * H + h, o = bh * T + k.t0;
        for (int i = j; i < k.q && t >= a->lr[b * T + k.t0 + i]; i++) {
            const float dM = kd_m2g_dot(kd_m2g_dy(a, b, k.t0 + i, h), xj, P);
            const float E = (float)exp(a->cum[o + i] - a->cum[o + j]);
            acc += dM * E * a->dt[o + j] * kd_m2g_C(a, b, k.t0 + i, h)[n];
        }
        const float w = kd_m2g_wpass(a, bh, k, j);
        if (w != 0.0f) {
            const float *dS = a->sbuf + (bh * a->nc + c) * (size_t)P * N;
            float v = 0.0f;
            for (int pp = 0; pp < P; pp++) v += xj[pp] * dS[(size_t)pp * N + n];
            acc += w * v;
        }
    }
    a->g.dB[r * (size_t)a->g.ldb + (size_t)kv * N + n] = acc;
}
// dC[b,t,h,n] = sum_{j<=i} dG[i,j] B_j[n] + e_i (dy_i . S_c)[n].
KD_HD static inline void kd_m2g_ssd_dC(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T;
    const int n = (int)(idx % (size_t)N), h = (int)(idx / N % H), kv = h / (H / a->d.n_kv);
    const size_t r = idx / ((size_t)N * H), b = r / T, bh = b * H + h, o0 = bh * T;
    const int t = (int)(r % (size_t)T), c = t / a->d.Q;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const int i = t - k.t0, l = a->lr[r];
    const float *dyi = kd_m2g_dy(a, b, t, h);
    float acc = 0.0f;
    for (int j = l > k.t0 ? l - k.t0 : 0; j <= i; j++) {
        const float dM = kd_m2g_dot(dyi, kd_m2g_x(a, b, k.t0 + j, kv), P);
        const float E = (float)exp(a->cum[o0 + t] - a->cum[o0 + k.t0 + j]);
        acc += dM * E * a->dt[o0 + k.t0 + j] * kd_m2g_B(a, b, k.t0 + j, kv)[n];
    }
    if (l < k.t0) {
        const float *S = a->st + (bh * a->nc + c) * (size_t)P * N;
        float v = 0.0f;
        for (int p = 0; p < P; p++) v += dyi[p] * S[(size_t)p * N + n];
        acc += (float)exp(a->cum[o0 + t]) * v;
    }
    a->g.dC[r * (size_t)a->g.ldc + (size_t)h * N + n] = acc;
}
// Token i of (b,h) in chunk c: its own part of dcum and ddt (double), and df_i, its share of
// the last token's dcum (added by ssd_chunk). With R[i,j] = (dy_i.x_j) M[i,j]:
//   dcum_i = sum_{j<=i} R[i,j] - sum_{i'>=i} R[i',i] + e_i dy_i.(S C_i) - df_i
//   ddt_i  = sum_{i'>=i} (dy_i'.x_i) G[i',i] E[i',i] + f_i xu_i,  df_i = f_i dt_i xu_i
// where f_i = exp(c_last-c_i), xu_i = x_i . dS_out . B_i (tokens that reach the chunk end).
KD_HD static inline void kd_m2g_ssd_tok(size_t idx, const kd_m2g_ssd *a) {
    const int P = a->d.P, N = a->d.N, H = a->d.H, T = a->in.T;
    const int t = (int)(idx % (size_t)T);
    const size_t bh = idx / T, b = bh / H;
    const int h = (int)(bh % (size_t)H), kv = h / (H / a->d.n_kv), c = t / a->d.Q;
    const kd_m2g_chunk k = kd_m2g_chunk_of(a, b, c);
    const int i = t - k.t0, l = a->lr[b * T + t];
    const float *dyi = kd_m2g_dy(a, b, t, h), *xi = kd_m2g_x(a, b, t, kv);
    double dcum = 0.0, ddt = 0.0, df = 0.0;
    float G, E;
    for (int j = l > k.t0 ? l - k.t0 : 0; j <= i; j++) {
        const float M = kd_m2g_Mij(a, b, h, k, i, j, &G, &E);
        dcum += (double)kd_m2g_dot(dyi, kd_m2g_x(a, b, k.t0 + j, kv), P) * M;
    }
    for (int i2 = i; i2 < k.q && t >= a->lr[b * T + k.t0 + i2]; i2++) {
        const float M = kd_m2g_Mij(a, b, h, k, i2, i, &G, &E);
        const float dM = kd_m2g_dot(kd_m2g_dy(a, b, k.t0 + i2, h), xi, P);
        dcum -= (double)dM * M;
        ddt += (double)dM * G * E;
    }
    if (l < k.t0) {
        const float *S = a->st + (bh * a->nc + c) * (size_t)P * N, *Ci = kd_m2g_C(a, b, t, h);
        double dot = 0.0;
        for (int p = 0; p < P; p++) dot += (double)dyi[p] * kd_m2g_dot(S + (size_t)p * N, Ci, N);
        dcum += (float)exp(a->cum[bh * T + t]) * dot;
    }
    if (t >= k.lrl) {
        const float *dS = a->sbuf + (bh * a->nc + c) * (size_t)P * N, *Bi = kd_m2g_B(a, b, t, kv);
        double xu = 0.0;
        for (int p = 0; p < P; p++) xu += (double)xi[p] * kd_m2g_dot(Bi, dS + (size_t)p * N, N);
        const float f = (float)exp(a->cum[bh * T + k.t0 + k.q - 1] - a->cum[bh * T + t]);
        ddt += f * xu;
        df = f * a->dt[bh * T + t] * xu;
        dcum -= df;
    }
    a->dcum[idx] = dcum, a->ddt[idx] = ddt, a->df[idx] = df;
}
// Chunk c of (b,h): the last token's dcum gets el_c <dS_out, S_c> + sum_j df_j; then the
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
// As in mamba2_grid.h: each op's stages in launch order, STAGE(body, grid size, a);
// kernels/cuda/mamba2_ssd.cu launches them, tests/unit/test_mamba2_grid.c runs them.
#define KD_M2G_SSD_PN(a) ((size_t)(a).d.P * (a).d.N)
#define KD_M2G_SSD_FWD_PLAN(STAGE, a)                                                          \
    STAGE(kd_m2g_ssd_lr, (size_t)(a).in.B, a)                                                  \
    STAGE(kd_m2g_ssd_dt_cum, (size_t)(a).in.B * (a).d.H * (a).nc, a)                           \
    STAGE(kd_m2g_ssd_sloc, (size_t)(a).in.B * (a).d.H * (a).nc * KD_M2G_SSD_PN(a), a)          \
    STAGE(kd_m2g_ssd_pass, (size_t)(a).in.B * (a).d.H * KD_M2G_SSD_PN(a), a)                   \
    STAGE(kd_m2g_ssd_out, (size_t)(a).in.B * (a).in.T * (a).d.H * (a).d.P, a)
#define KD_M2G_SSD_BWD_PLAN(STAGE, a)                                                          \
    STAGE(kd_m2g_ssd_lr, (size_t)(a).in.B, a)                                                  \
    STAGE(kd_m2g_ssd_dt_cum, (size_t)(a).in.B * (a).d.H * (a).nc, a)                           \
    STAGE(kd_m2g_ssd_gout, (size_t)(a).in.B * (a).d.H * (a).nc * KD_M2G_SSD_PN(a), a)          \
    STAGE(kd_m2g_ssd_dpass, (size_t)(a).in.B * (a).d.H * KD_M2G_SSD_PN(a), a)                  \
    STAGE(kd_m2g_ssd_dx, (size_t)(a).in.B * (a).in.T * (a).d.n_kv * (a).d.P, a)                \
    STAGE(kd_m2g_ssd_dB, (size_t)(a).in.B * (a).in.T * (a).d.n_kv * (a).d.N, a)                \
    STAGE(kd_m2g_ssd_dC, (size_t)(a).in.B * (a).in.T * (a).d.H * (a).d.N, a)                   \
    STAGE(kd_m2g_ssd_tok, (size_t)(a).in.B * (a).d.H * (a).in.T, a)                            \
    STAGE(kd_m2g_ssd_chunk, (size_t)(a).in.B * (a).d.H * (a).nc, a)                            \
    STAGE(kd_m2g_ssd_params, (size_t)(a).d.H, a)
#define KD_M2G_SCAN_REF_PLAN(STAGE, a) STAGE(kd_m2g_ssd_ref, (size_t)(a).in.B * (a).d.H * (a).d.P, a)
