// mamba2_grid.h: the per-thread bodies of the CUDA Mamba-2 kernels (kernels/cuda/mamba2.cu;
// the SSD scan's are in mamba2_grid_ssd.h and, around its batched GEMMs,
// mamba2_grid_ssd_gemm.h).
// Each body computes the output elements owned by one grid index `idx` of one stage: the
// index arithmetic and the loop over the reduction dimension, in a fixed order, so results
// are deterministic (no atomics). A __global__ kernel is a thin wrapper (KD_GRID_KERNEL of kernels/cuda/cuda_util.cuh) that
// bounds-checks idx and calls the body; tests/unit/test_mamba2_grid.c runs the same bodies
// in a host loop, stage by stage in launch order, and compares with the CPU backend.
// Plain C11 that also compiles under nvcc; bodies are KD_HD, no state, no allocation.
// Contracts are those of kd_mamba2_ops in kernels/ops.h; maths in docs/mamba2.md.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/mamba2_math.h"
#include "kernels/ops.h"

KD_HD static inline int kd_m2g_nchunks(int T, int Q) {
    return (T + Q - 1) / Q;
}
KD_HD static inline int kd_m2g_min(int a, int b) {
    return a < b ? a : b;
}

// ============================================================================ scratch layout
// Every piece of a scratch starts on a 256-byte boundary. kd_m2g_take hands out the next
// piece of `*p` (device or host memory: only pointer arithmetic happens here).
static inline size_t kd_m2g_round(size_t bytes) {
    return (bytes + 255) / 256 * 256;
}
static inline void *kd_m2g_take(char **p, size_t bytes) {
    void *r = *p;
    *p += kd_m2g_round(bytes);
    return r;
}

// ============================================================================ shared stages

// lr (B,T): the last document start <= t in row b, -1 when none. Grid: B (one thread walks
// its row; simple, O(T) per thread).
KD_HD static inline void kd_m2g_last_reset(size_t b, int *lr, const int32_t *seg, int T) {
    const int32_t *sg = seg ? seg + b * (size_t)T : 0;
    int l = -1;
    for (int t = 0; t < T; t++) {
        if (kd_m2_is_reset(sg, t)) l = t;
        lr[b * (size_t)T + t] = l;
    }
}

// One entry of a token-major (B,T,G,W) array, G heads or KV groups of W: idx -> (b, t, g, i)
// and its row r = b*T + t.
typedef struct { size_t r, b; int t, g, i; } kd_m2g_rowix;
KD_HD static inline kd_m2g_rowix kd_m2g_rowix_of(size_t idx, int W, int G, int T) {
    kd_m2g_rowix e;
    e.i = (int)(idx % (size_t)W);
    e.g = (int)(idx / (size_t)W % (size_t)G);
    e.r = idx / ((size_t)W * G);
    e.b = e.r / (size_t)T;
    e.t = (int)(e.r % (size_t)T);
    return e;
}

// dt (B,H,T) = softplus(dt_raw + dt_bias) and cum (B,H,T) = cumsum of dt*A restarting at
// every chunk of Q tokens (Q = T: over the whole row), in double. Grid: B*H*nc.
KD_HD static inline void kd_m2g_dt_cum(size_t idx, float *dt, double *cum, const kd_mamba2_in *in,
                                       int H, int Q, int nc) {
    const int c = (int)(idx % (size_t)nc), h = (int)(idx / (size_t)nc % (size_t)H);
    const size_t b = idx / ((size_t)nc * H);
    const int T = in->T, t0 = c * Q, q = kd_m2g_min(Q, T - t0);
    const float A = -expf(in->A_log[h]);
    const size_t o = (b * H + h) * (size_t)T + t0;
    double acc = 0.0;
    for (int i = 0; i < q; i++) {
        float raw = in->dt[(b * T + t0 + i) * (size_t)in->lddt + h] + in->dt_bias[h];
        dt[o + i] = kd_m2_softplus(raw);
        acc += (double)dt[o + i] * A;
        cum[o + i] = acc;
    }
}

// Parameter gradients: dD, dA_log, ddt_bias [h] += the sums over (b, c) of acc (B,H,nc,3),
// in that fixed order. Grid: H.
KD_HD static inline void kd_m2g_param_sum(size_t h, const double *acc, int B, int H, int nc,
                                          float *dD, float *dA_log, float *ddt_bias) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < nc; c++) {
            const double *a = acc + (((size_t)b * H + h) * nc + c) * 3;
            s0 += a[0], s1 += a[1], s2 += a[2];
        }
    dD[h] += (float)s0;
    dA_log[h] += (float)s1;
    ddt_bias[h] += (float)s2;
}

// ============================================================================ conv
// pre[t,c] = bias[c] + sum_{k<W} w[c,k] * inp[t-(W-1)+k, c] over taps inside t's document;
// out = silu(pre). Stages: fwd = last_reset (B), conv_fwd (B*T*CD), conv_state (B*CD*(W-1));
// bwd = last_reset (B), conv_grad (B*T*CD), conv_dinp (B*T*CD), conv_dw (CD*(W+1)).
typedef struct kd_m2g_conv {
    float *out, *conv_state;            // fwd: out (B,T,CD), conv_state (B,CD,W-1) or NULL
    float *dinp, *dw, *dbias;           // bwd: dinp (B,T,ld_dinp), dw (CD,W), dbias (CD)/NULL
    const float *inp, *w, *bias, *dout; // inp (B,T,ld_in), w (CD,W), bias (CD)/NULL,
                                        // dout (B,T,CD)
    const int32_t *seg;                 // (B,T) or NULL
    int *lr;                            // scratch (B,T)
    float *g;                           // scratch (B,T,CD): dout * silu'(pre)
    int ld_in, ld_dinp, B, T, CD, W;
} kd_m2g_conv;

static inline size_t kd_m2g_conv_scratch(int B, int T, int CD) {
    return kd_m2g_round((size_t)B * T * sizeof(int)) + kd_m2g_round((size_t)B * T * CD * 4);
}
static inline void kd_m2g_conv_bind(kd_m2g_conv *a, void *scratch) {
    char *p = (char *)scratch;
    a->lr = (int *)kd_m2g_take(&p, (size_t)a->B * a->T * sizeof(int));
    a->g = (float *)kd_m2g_take(&p, (size_t)a->B * a->T * a->CD * 4);
}

// pre of row r = b*T+t, channel c.
KD_HD static inline float kd_m2g_conv_pre(const kd_m2g_conv *a, size_t r, int c) {
    const int W = a->W, t = (int)(r % (size_t)a->T), start = a->lr[r] > 0 ? a->lr[r] : 0;
    const size_t row0 = r - (size_t)t; // row (b,0)
    float pre = a->bias ? a->bias[c] : 0.0f;
    for (int k = 0; k < W; k++) {
        int tt = t - (W - 1) + k;
        if (tt < start) continue;
        pre += a->w[(size_t)c * W + k] * a->inp[(row0 + tt) * (size_t)a->ld_in + c];
    }
    return pre;
}
KD_HD static inline void kd_m2g_conv_lr(size_t b, const kd_m2g_conv *a) {
    kd_m2g_last_reset(b, a->lr, a->seg, a->T);
}
KD_HD static inline void kd_m2g_conv_fwd(size_t idx, const kd_m2g_conv *a) {
    const size_t r = idx / (size_t)a->CD;
    const int c = (int)(idx % (size_t)a->CD);
    a->out[idx] = kd_m2_silu(kd_m2g_conv_pre(a, r, c));
}
// conv_state slot j of (b,c): input T-(W-1)+j if it lies in the row's last document.
KD_HD static inline void kd_m2g_conv_state(size_t idx, const kd_m2g_conv *a) {
    const int W1 = a->W - 1, T = a->T, j = (int)(idx % (size_t)W1);
    const int c = (int)(idx / (size_t)W1 % (size_t)a->CD);
    const size_t b = idx / ((size_t)W1 * a->CD);
    const int l = T > 0 ? a->lr[b * T + T - 1] : 0, start = l > 0 ? l : 0, tt = T - W1 + j;
    a->conv_state[idx] = tt >= start ? a->inp[(b * T + tt) * (size_t)a->ld_in + c] : 0.0f;
}
KD_HD static inline void kd_m2g_conv_grad(size_t idx, const kd_m2g_conv *a) {
    const size_t r = idx / (size_t)a->CD;
    const int c = (int)(idx % (size_t)a->CD);
    a->g[idx] = a->dout[idx] * kd_m2_dsilu(kd_m2g_conv_pre(a, r, c));
}
// dinp[tt,c] = sum over the outputs t in [tt, tt+W-1] whose conv sees tt of g[t,c]*w[c,k].
KD_HD static inline void kd_m2g_conv_dinp(size_t idx, const kd_m2g_conv *a) {
    const size_t r = idx / (size_t)a->CD;
    const int c = (int)(idx % (size_t)a->CD), W = a->W, T = a->T, tt = (int)(r % (size_t)T);
    const size_t row0 = r - (size_t)tt;
    float acc = 0.0f;
    for (int t = tt; t < T && t <= tt + W - 1; t++) {
        if (tt < a->lr[row0 + t]) break; // t (and every later t) is in a later document
        acc += a->g[(row0 + t) * a->CD + c] * a->w[(size_t)c * W + (tt - t + W - 1)];
    }
    a->dinp[r * (size_t)a->ld_dinp + c] = acc;
}
// dw[c,k] += sum_{b,t} g[t,c]*inp[t-(W-1)+k,c]; k == W is dbias[c] += sum g. Rows in order,
// double accumulator. Simple: one thread walks all B*T rows (no split-K yet).
KD_HD static inline void kd_m2g_conv_dw(size_t idx, const kd_m2g_conv *a) {
    const int W = a->W, T = a->T, k = (int)(idx % (size_t)(W + 1));
    const int c = (int)(idx / (size_t)(W + 1));
    double acc = 0.0;
    if (k == W) {
        if (!a->dbias) return;
        for (size_t r = 0; r < (size_t)a->B * T; r++) acc += a->g[r * a->CD + c];
        a->dbias[c] += (float)acc;
        return;
    }
    for (size_t r = 0; r < (size_t)a->B * T; r++) {
        const int t = (int)(r % (size_t)T), tt = t - (W - 1) + k;
        if (tt < 0 || tt < a->lr[r]) continue;
        acc += (double)a->g[r * a->CD + c] * a->inp[(r - t + tt) * (size_t)a->ld_in + c];
    }
    a->dw[(size_t)c * W + k] += (float)acc;
}

// ============================================================================ gated norm
// g = y*silu(z); out = g*rstd*w with rstd over groups of G channels. Stages: fwd =
// gnorm_fwd (N*D/G); bwd = gnorm_bwd (N*D/G), gnorm_dw (D).
typedef struct kd_m2g_gnorm {
    float *out, *rstd;             // fwd: out (N,D), rstd (N,D/G)
    float *dy, *dz, *dw;           // bwd: dy (N,D), dz (N,lddz), dw (D)
    const float *y, *z, *w, *dout; // y (N,D), z (N,ldz), w (D), dout (N,D)
    const float *rstd_in;          // bwd: rstd from fwd
    int ldz, lddz, N, D, G;
    float eps;
} kd_m2g_gnorm;

// One (row, group): sum of g^2 in double, then the normalised outputs.
KD_HD static inline void kd_m2g_gnorm_fwd(size_t idx, const kd_m2g_gnorm *a) {
    const int ng = a->D / a->G, g0 = (int)(idx % (size_t)ng) * a->G;
    const size_t r = idx / (size_t)ng;
    const float *yr = a->y + r * a->D, *zr = a->z + r * (size_t)a->ldz;
    float *o = a->out + r * a->D;
    double ss = 0.0;
    for (int k = g0; k < g0 + a->G; k++) {
        float gv = yr[k] * kd_m2_silu(zr[k]);
        ss += (double)gv * gv;
    }
    const float rs = (float)(1.0 / sqrt(ss / a->G + a->eps));
    a->rstd[idx] = rs;
    for (int k = g0; k < g0 + a->G; k++) o[k] = yr[k] * kd_m2_silu(zr[k]) * rs * a->w[k];
}
// dy, dz of one (row, group).
KD_HD static inline void kd_m2g_gnorm_bwd(size_t idx, const kd_m2g_gnorm *a) {
    const int ng = a->D / a->G, g0 = (int)(idx % (size_t)ng) * a->G;
    const size_t r = idx / (size_t)ng;
    const float *yr = a->y + r * a->D, *zr = a->z + r * (size_t)a->ldz, *go = a->dout + r * a->D;
    const float rs = a->rstd_in[idx];
    double dot = 0.0; // sum_k (dout*w)_k g_k
    for (int k = g0; k < g0 + a->G; k++) dot += (double)go[k] * a->w[k] * yr[k] * kd_m2_silu(zr[k]);
    const float coef = (float)(dot * rs * rs * rs / a->G);
    for (int k = g0; k < g0 + a->G; k++) {
        float s = kd_m2_sigmoid(zr[k]), sz = zr[k] * s, gv = yr[k] * sz;
        float dg = go[k] * a->w[k] * rs - gv * coef;
        a->dy[r * a->D + k] = dg * sz;
        a->dz[r * (size_t)a->lddz + k] = dg * yr[k] * s * (1.0f + zr[k] * (1.0f - s));
    }
}
// dw[k] += sum_r dout*g*rstd, rows in order (simple: one thread walks all N rows).
KD_HD static inline void kd_m2g_gnorm_dw(size_t k, const kd_m2g_gnorm *a) {
    const int ng = a->D / a->G;
    double acc = 0.0;
    for (size_t r = 0; r < (size_t)a->N; r++)
        acc += (double)a->dout[r * a->D + k] * a->y[r * a->D + k] *
               kd_m2_silu(a->z[r * (size_t)a->ldz + k]) * a->rstd_in[r * ng + k / a->G];
    a->dw[k] += (float)acc;
}

// ============================================================================ MOHAWK matrix
// M[b,h,t,s] = (C_t.B_s) exp(cum_t - cum_s) dt_s for lr[t] <= s <= t, + D on the diagonal.
// Stages: fwd = last_reset (B), dt_cum (B*H, Q = T), mat_fwd (B*H*T*T); bwd = last_reset,
// dt_cum, mat_rowcol (B*H*T), mat_dC (B*T*H*N), mat_dB (B*T*n_kv*N), mat_finish (B*H),
// param_sum (H, nc = 1).
typedef struct kd_m2g_mat {
    kd_mamba2_in in;
    kd_mamba2_dims d;
    float *M;        // fwd (B,H,T,T)
    const float *dM; // bwd (B,H,T,T)
    kd_mamba2_grad g;
    int *lr;                  // scratch (B,T)
    float *dt;                // scratch (B,H,T)
    double *cum, *dcum, *ddt; // scratch (B,H,T) each
    double *acc;              // scratch (B,H,1,3): dD, dA_log, ddt_bias per (b,h)
} kd_m2g_mat;

static inline size_t kd_m2g_mat_scratch(const kd_mamba2_dims *d, int B, int T) {
    const size_t bt = (size_t)B * T, bht = bt * d->H;
    return kd_m2g_round(bt * sizeof(int)) + kd_m2g_round(bht * 4) +
           3 * kd_m2g_round(bht * sizeof(double)) +
           kd_m2g_round((size_t)B * d->H * 3 * sizeof(double));
}
static inline void kd_m2g_mat_bind(kd_m2g_mat *a, void *scratch) {
    char *p = (char *)scratch;
    const size_t bt = (size_t)a->in.B * a->in.T, bht = bt * a->d.H;
    a->lr = (int *)kd_m2g_take(&p, bt * sizeof(int));
    a->dt = (float *)kd_m2g_take(&p, bht * 4);
    a->cum = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->dcum = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->ddt = (double *)kd_m2g_take(&p, bht * sizeof(double));
    a->acc = (double *)kd_m2g_take(&p, (size_t)a->in.B * a->d.H * 3 * sizeof(double));
}

KD_HD static inline void kd_m2g_mat_lr(size_t b, const kd_m2g_mat *a) {
    kd_m2g_last_reset(b, a->lr, a->in.seg, a->in.T);
}
KD_HD static inline void kd_m2g_mat_dt_cum(size_t bh, const kd_m2g_mat *a) {
    kd_m2g_dt_cum(bh, a->dt, a->cum, &a->in, a->d.H, a->in.T, 1);
}
KD_HD static inline void kd_m2g_mat_params(size_t h, const kd_m2g_mat *a) {
    kd_m2g_param_sum(h, a->acc, a->in.B, a->d.H, 1, a->g.dD, a->g.dA_log, a->g.ddt_bias);
}
// K[t,s] = C_t . B_s of head h (float, N terms in order).
KD_HD static inline float kd_m2g_mat_K(const kd_m2g_mat *a, size_t b, int h, int t, int s) {
    const int N = a->d.N, kv = h / (a->d.H / a->d.n_kv), T = a->in.T;
    const float *Cv = a->in.Cm + (b * T + t) * (size_t)a->in.ldc + (size_t)h * N;
    const float *Bv = a->in.Bm + (b * T + s) * (size_t)a->in.ldb + (size_t)kv * N;
    float k = 0.0f;
    for (int n = 0; n < N; n++) k += Cv[n] * Bv[n];
    return k;
}
KD_HD static inline void kd_m2g_mat_fwd(size_t idx, const kd_m2g_mat *a) {
    const int T = a->in.T, H = a->d.H, s = (int)(idx % (size_t)T), t = (int)(idx / T % T);
    const size_t bh = idx / ((size_t)T * T), b = bh / H;
    const int h = (int)(bh % (size_t)H);
    const float *dt = a->dt + bh * T;
    const double *cum = a->cum + bh * T;
    float v = 0.0f;
    if (s <= t && s >= a->lr[b * T + t])
        v = kd_m2g_mat_K(a, b, h, t, s) * (float)exp(cum[t] - cum[s]) * dt[s];
    if (s == t) v += a->in.D[h];
    a->M[idx] = v;
}
// ke[t,s] = dM*K*exp(cum_t-cum_s) (double) for a visible (t,s).
KD_HD static inline double kd_m2g_mat_ke(const kd_m2g_mat *a, size_t bh, int t, int s) {
    const int T = a->in.T, H = a->d.H;
    const double *cum = a->cum + bh * T;
    const float e = (float)exp(cum[t] - cum[s]);
    return (double)a->dM[(bh * T + t) * T + s] *
           kd_m2g_mat_K(a, bh / H, (int)(bh % (size_t)H), t, s) * e;
}
// Token k of (b,h): dcum[k] = sum_s ke[k,s] dt_s - dt_k sum_t ke[t,k]; ddt[k] = sum_t ke[t,k].
KD_HD static inline void kd_m2g_mat_rowcol(size_t idx, const kd_m2g_mat *a) {
    const int T = a->in.T, k = (int)(idx % (size_t)T);
    const size_t bh = idx / T, b = bh / a->d.H;
    const float *dt = a->dt + bh * T;
    const int l = a->lr[b * T + k], s0 = l > 0 ? l : 0;
    double row = 0.0, col = 0.0;
    for (int s = s0; s <= k; s++) row += kd_m2g_mat_ke(a, bh, k, s) * dt[s];
    for (int t = k; t < T && k >= a->lr[b * T + t]; t++) col += kd_m2g_mat_ke(a, bh, t, k);
    a->dcum[idx] = row - col * dt[k];
    a->ddt[idx] = col;
}
// dK[t,s] = dM*exp(cum_t-cum_s)*dt_s for a visible (t,s).
KD_HD static inline float kd_m2g_mat_dK(const kd_m2g_mat *a, size_t bh, int t, int s) {
    const int T = a->in.T;
    const double *cum = a->cum + bh * T;
    return a->dM[(bh * T + t) * T + s] * (float)exp(cum[t] - cum[s]) * a->dt[bh * T + s];
}
// dC[b,t,h,n] = sum_s dK[t,s] B[s,n] (overwritten).
KD_HD static inline void kd_m2g_mat_dC(size_t idx, const kd_m2g_mat *a) {
    const int T = a->in.T, H = a->d.H, N = a->d.N;
    const kd_m2g_rowix e = kd_m2g_rowix_of(idx, N, H, T);
    const int n = e.i, h = e.g, kv = h / (H / a->d.n_kv), t = e.t;
    const size_t r = e.r, b = e.b, bh = b * H + h;
    const int l = a->lr[r], s0 = l > 0 ? l : 0;
    float acc = 0.0f;
    for (int s = s0; s <= t; s++)
        acc += kd_m2g_mat_dK(a, bh, t, s) * a->in.Bm[(b * T + s) * (size_t)a->in.ldb + kv * N + n];
    a->g.dC[r * (size_t)a->g.ldc + (size_t)h * N + n] = acc;
}
// dB[b,s,kv,n] = sum over the heads of kv and the t >= s that see s of dK[t,s] C[t,h,n].
KD_HD static inline void kd_m2g_mat_dB(size_t idx, const kd_m2g_mat *a) {
    const int T = a->in.T, H = a->d.H, N = a->d.N, nkv = a->d.n_kv, rep = H / nkv;
    const kd_m2g_rowix e = kd_m2g_rowix_of(idx, N, nkv, T);
    const int n = e.i, kv = e.g, s = e.t;
    const size_t r = e.r, b = e.b;
    float acc = 0.0f;
    for (int h = kv * rep; h < (kv + 1) * rep; h++)
        for (int t = s; t < T && s >= a->lr[b * T + t]; t++)
            acc += kd_m2g_mat_dK(a, b * H + h, t, s) *
                   a->in.Cm[(b * T + t) * (size_t)a->in.ldc + (size_t)h * N + n];
    a->g.dB[r * (size_t)a->g.ldb + (size_t)kv * N + n] = acc;
}
// (b,h): reverse cumsum of dcum -> ddt (through the softplus, overwritten) and acc[b,h] =
// (dD, dA_log, ddt_bias) of this row.
KD_HD static inline void kd_m2g_mat_finish(size_t bh, const kd_m2g_mat *a) {
    const int T = a->in.T, H = a->d.H, h = (int)(bh % (size_t)H);
    const size_t b = bh / H;
    const float A = -expf(a->in.A_log[h]);
    double dD = 0.0, dA = 0.0, db = 0.0, run = 0.0;
    for (int t = 0; t < T; t++) dD += a->dM[(bh * T + t) * T + t];
    for (int k = T - 1; k >= 0; k--) {
        run += a->dcum[bh * T + k];
        dA += run * a->dt[bh * T + k] * A;
        const size_t r = b * T + k;
        const float raw = a->in.dt[r * (size_t)a->in.lddt + h] + a->in.dt_bias[h];
        const float graw = (float)((a->ddt[bh * T + k] + run * A) * kd_m2_dsoftplus(raw));
        a->g.ddt[r * (size_t)a->g.lddt + h] = graw;
        db += graw;
    }
    a->acc[bh * 3 + 0] = dD, a->acc[bh * 3 + 1] = dA, a->acc[bh * 3 + 2] = db;
}

// ---------------------------------------------------------------------------- launch plans
// Each op's stages in launch order, as STAGE(body, grid size, a) with a the op's argument
// struct, bound. kernels/cuda/mamba2.cu launches them (KD_GRID_STAGE) and
// tests/unit/test_mamba2_grid.c runs them on the host, so the order and grid sizes the
// test checks are the GPU's. A stage of size 0 launches nothing.
#define KD_M2G_CONV_FWD_PLAN(STAGE, a)                                                         \
    STAGE(kd_m2g_conv_lr, (size_t)(a).B, a)                                                    \
    STAGE(kd_m2g_conv_fwd, (size_t)(a).B * (a).T * (a).CD, a)                                  \
    STAGE(kd_m2g_conv_state, (a).conv_state ? (size_t)(a).B * (a).CD * ((a).W - 1) : 0, a)
#define KD_M2G_CONV_BWD_PLAN(STAGE, a)                                                         \
    STAGE(kd_m2g_conv_lr, (size_t)(a).B, a)                                                    \
    STAGE(kd_m2g_conv_grad, (size_t)(a).B * (a).T * (a).CD, a)                                 \
    STAGE(kd_m2g_conv_dinp, (size_t)(a).B * (a).T * (a).CD, a)                                 \
    STAGE(kd_m2g_conv_dw, (size_t)(a).CD * ((a).W + 1), a)
#define KD_M2G_GNORM_FWD_PLAN(STAGE, a) STAGE(kd_m2g_gnorm_fwd, (size_t)(a).N * ((a).D / (a).G), a)
#define KD_M2G_GNORM_BWD_PLAN(STAGE, a)                                                        \
    STAGE(kd_m2g_gnorm_bwd, (size_t)(a).N * ((a).D / (a).G), a)                                \
    STAGE(kd_m2g_gnorm_dw, (size_t)(a).D, a)
#define KD_M2G_MAT_FWD_PLAN(STAGE, a)                                                          \
    STAGE(kd_m2g_mat_lr, (size_t)(a).in.B, a)                                                  \
    STAGE(kd_m2g_mat_dt_cum, (size_t)(a).in.B * (a).d.H, a)                                    \
    STAGE(kd_m2g_mat_fwd, (size_t)(a).in.B * (a).d.H * (a).in.T * (a).in.T, a)
#define KD_M2G_MAT_BWD_PLAN(STAGE, a)                                                          \
    STAGE(kd_m2g_mat_lr, (size_t)(a).in.B, a)                                                  \
    STAGE(kd_m2g_mat_dt_cum, (size_t)(a).in.B * (a).d.H, a)                                    \
    STAGE(kd_m2g_mat_rowcol, (size_t)(a).in.B * (a).d.H * (a).in.T, a)                         \
    STAGE(kd_m2g_mat_dC, (size_t)(a).in.B * (a).in.T * (a).d.H * (a).d.N, a)                   \
    STAGE(kd_m2g_mat_dB, (size_t)(a).in.B * (a).in.T * (a).d.n_kv * (a).d.N, a)                \
    STAGE(kd_m2g_mat_finish, (size_t)(a).in.B * (a).d.H, a)                                    \
    STAGE(kd_m2g_mat_params, (size_t)(a).d.H, a)
