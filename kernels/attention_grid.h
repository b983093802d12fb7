// attention_grid.h: the per-thread bodies of the CUDA attention kernels
// (kernels/cuda/ops_cuda.cu): one body computes what one CUDA thread owns, given its index
// in the launch grid. They are plain C marked KD_HD, so the CPU runs the very same index
// arithmetic by looping over the grid (tests/unit/test_attention_grid.c compares that with
// the CPU backend). Memory-lean like the CPU kernels: the forward keeps only the row's
// log-sum-exp, the backward recomputes each probability from it. Simple first: a thread
// loops over keys reading global memory (no shared-memory tiles yet); every output element
// has one owner, so results do not depend on scheduling (no atomics).
// Layouts (kernels/ops.h): qkv (B,T,(NH+2*NKV)*HD), out (B,T,NH*HD), lse and D (B,NH,T),
// seg (B,T) or NULL.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/math.h"

typedef struct {
    int B, T, NH, NKV, HD;
} kd_attg_dims;

// Row stride of qkv.
KD_HD static inline int kd_attg_R(kd_attg_dims d) {
    return (d.NH + 2 * d.NKV) * d.HD;
}

// Key j is visible to query i of row b: causal and, with seg, the same document.
KD_HD static inline int kd_attg_visible(const int32_t *seg, kd_attg_dims d, int b, int i, int j) {
    return j <= i && (!seg || seg[(size_t)b * d.T + j] == seg[(size_t)b * d.T + i]);
}

// Scaled score of query head h at token i against key token j (kv head h/(NH/NKV)).
KD_HD static inline float kd_attg_score(const float *qkv, kd_attg_dims d, int b, int h, int i,
                                        int j) {
    const int R = kd_attg_R(d), G = d.NH / d.NKV;
    const float *q = qkv + ((size_t)b * d.T + i) * R + (size_t)h * d.HD;
    const float *k = qkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + h / G) * d.HD;
    float s = 0.0f;
    for (int e = 0; e < d.HD; e++) s += q[e] * k[e];
    return s / sqrtf((float)d.HD);
}

// Grid index t = (b*NH + h)*T + i of the row kernels -> (b, h, i).
KD_HD static inline void kd_attg_row(size_t t, kd_attg_dims d, int *b, int *h, int *i) {
    *i = (int)(t % (size_t)d.T);
    *h = (int)((t / (size_t)d.T) % (size_t)d.NH);
    *b = (int)(t / ((size_t)d.T * d.NH));
}

// Forward, grid B*NH*T: the row's log-sum-exp by an online pass over its visible keys,
// then out_i = sum_j exp(s_ij - lse_i) v_j.
KD_HD static inline void kd_attg_fwd_row(size_t t, float *out, float *lse, const float *qkv,
                                         const int32_t *seg, kd_attg_dims d) {
    int b, h, i;
    kd_attg_row(t, d, &b, &h, &i);
    const int R = kd_attg_R(d), G = d.NH / d.NKV;
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j <= i; j++) {
        if (!kd_attg_visible(seg, d, b, i, j)) continue;
        float s = kd_attg_score(qkv, d, b, h, i, j);
        if (s > m) {
            l = l * expf(m - s) + 1.0f;
            m = s;
        } else {
            l += expf(s - m);
        }
    }
    const float L = m + logf(l); // l >= 1: key i itself is visible
    lse[t] = L;
    float *o = out + ((size_t)b * d.T + i) * d.NH * d.HD + (size_t)h * d.HD;
    for (int e = 0; e < d.HD; e++) o[e] = 0.0f;
    for (int j = 0; j <= i; j++) {
        if (!kd_attg_visible(seg, d, b, i, j)) continue;
        const float p = expf(kd_attg_score(qkv, d, b, h, i, j) - L);
        const float *v = qkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + d.NKV + h / G) * d.HD;
        for (int e = 0; e < d.HD; e++) o[e] += p * v[e];
    }
}

// Backward, step 1, grid B*NH*T: D_i = dO_i . O_i.
KD_HD static inline void kd_attg_bwd_D(size_t t, float *D, const float *dout, const float *out,
                                       kd_attg_dims d) {
    int b, h, i;
    kd_attg_row(t, d, &b, &h, &i);
    const size_t off = ((size_t)b * d.T + i) * d.NH * d.HD + (size_t)h * d.HD;
    float s = 0.0f;
    for (int e = 0; e < d.HD; e++) s += dout[off + e] * out[off + e];
    D[t] = s;
}

// dS_ij / scale = P_ij (dP_ij - D_i), with P recomputed from lse and dP_ij = dO_i . v_j.
KD_HD static inline float kd_attg_dscore(const float *qkv, const float *dout, const float *lse,
                                         const float *D, kd_attg_dims d, int b, int h, int i,
                                         int j, float *p_out) {
    const int R = kd_attg_R(d), G = d.NH / d.NKV;
    const size_t r = ((size_t)b * d.NH + h) * d.T + i;
    const float p = expf(kd_attg_score(qkv, d, b, h, i, j) - lse[r]);
    const float *v = qkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + d.NKV + h / G) * d.HD;
    const float *dO = dout + ((size_t)b * d.T + i) * d.NH * d.HD + (size_t)h * d.HD;
    float dp = 0.0f;
    for (int e = 0; e < d.HD; e++) dp += dO[e] * v[e];
    *p_out = p;
    return p * (dp - D[r]);
}

// Backward, step 2, grid B*NH*T: dq_i = scale * sum_j dS_ij k_j (OVERWRITES the row).
KD_HD static inline void kd_attg_bwd_q_row(size_t t, float *dqkv, const float *dout,
                                           const float *lse, const float *D, const float *qkv,
                                           const int32_t *seg, kd_attg_dims d) {
    int b, h, i;
    kd_attg_row(t, d, &b, &h, &i);
    const int R = kd_attg_R(d), G = d.NH / d.NKV;
    const float scale = 1.0f / sqrtf((float)d.HD);
    float *dq = dqkv + ((size_t)b * d.T + i) * R + (size_t)h * d.HD;
    for (int e = 0; e < d.HD; e++) dq[e] = 0.0f;
    for (int j = 0; j <= i; j++) {
        if (!kd_attg_visible(seg, d, b, i, j)) continue;
        float p;
        const float ds = scale * kd_attg_dscore(qkv, dout, lse, D, d, b, h, i, j, &p);
        const float *k = qkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + h / G) * d.HD;
        for (int e = 0; e < d.HD; e++) dq[e] += ds * k[e];
    }
}

// Backward, step 3, grid B*NKV*T, t = (b*NKV + g)*T + j: key token j of kv head g gathers
// from every query head of its group and every query i >= j that sees it:
// dk_j = scale * sum dS_ij q_i, dv_j = sum P_ij dO_i (OVERWRITES both).
KD_HD static inline void kd_attg_bwd_kv_row(size_t t, float *dqkv, const float *dout,
                                            const float *lse, const float *D, const float *qkv,
                                            const int32_t *seg, kd_attg_dims d) {
    const int j = (int)(t % (size_t)d.T), g = (int)((t / (size_t)d.T) % (size_t)d.NKV);
    const int b = (int)(t / ((size_t)d.T * d.NKV));
    const int R = kd_attg_R(d), G = d.NH / d.NKV;
    const float scale = 1.0f / sqrtf((float)d.HD);
    float *dk = dqkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + g) * d.HD;
    float *dv = dqkv + ((size_t)b * d.T + j) * R + (size_t)(d.NH + d.NKV + g) * d.HD;
    for (int e = 0; e < d.HD; e++) dk[e] = 0.0f, dv[e] = 0.0f;
    for (int h = g * G; h < (g + 1) * G; h++) {
        for (int i = j; i < d.T; i++) {
            if (!kd_attg_visible(seg, d, b, i, j)) continue;
            float p;
            const float ds = scale * kd_attg_dscore(qkv, dout, lse, D, d, b, h, i, j, &p);
            const float *q = qkv + ((size_t)b * d.T + i) * R + (size_t)h * d.HD;
            const float *dO = dout + ((size_t)b * d.T + i) * d.NH * d.HD + (size_t)h * d.HD;
            for (int e = 0; e < d.HD; e++) dk[e] += ds * q[e], dv[e] += p * dO[e];
        }
    }
}

// Probabilities, grid B*NH*T*T, t = ((b*NH + h)*T + i)*T + j.
KD_HD static inline void kd_attg_probs_elem(size_t t, float *P, const float *qkv, const float *lse,
                                            const int32_t *seg, kd_attg_dims d) {
    const int j = (int)(t % (size_t)d.T);
    int b, h, i;
    kd_attg_row(t / (size_t)d.T, d, &b, &h, &i);
    P[t] = kd_attg_visible(seg, d, b, i, j)
               ? expf(kd_attg_score(qkv, d, b, h, i, j) - lse[t / (size_t)d.T])
               : 0.0f;
}
