// decode_grid.h: the per-thread bodies of the CUDA decode kernels (kernels/cuda/decode.cu,
// contracts of kd_decode_ops in kernels/ops.h). Each body computes the output elements owned
// by one grid index `idx` of one stage: index arithmetic plus the loop over the reduction
// dimension, in a fixed order, so results do not depend on scheduling (no atomics). A
// __global__ kernel is a thin wrapper (KD_GRID_KERNEL of kernels/cuda/cuda_util.cuh) that bounds-checks idx and calls the
// body; tests/unit/test_decode_grid.c runs the same bodies in a host loop, stage by stage in
// launch order, and compares with the CPU backend. Plain C11 that also compiles under nvcc;
// bodies are KD_HD, no state, no allocation.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/mamba2_math.h"
#include "kernels/ops.h"

// ============================================================================ attention
// Three stages, each a grid of its own:
//   append  grid B*2*NKV*HD: copy the new token's key and value heads into slot n[b]-1;
//   scores  grid B*NH:       p[b,h,j] = softmax_j(q.k_j / sqrt(HD)) over j < n[b], kept in
//                            the scratch (B,NH,Tmax);
//   out     grid B*NH*HD:    out[b,h,d] = sum_j p[b,h,j] v_j[d], j ascending.
// The stages must run in that order (separate launches): scores read the appended slot.
typedef struct kd_decg_attn {
    float *out;       // (B,NH*HD)
    float *kv;        // (B,Tmax,2*NKV*HD)
    const float *qkv; // (B,(NH+2*NKV)*HD)
    const int32_t *n; // (B)
    float *p;         // scratch (B,NH,Tmax): probabilities
    int B, Tmax, NH, NKV, HD;
} kd_decg_attn;

// Scratch bytes of the attention: the probabilities (B,NH,Tmax).
KD_HD static inline size_t kd_decg_attn_scratch(int B, int Tmax, int NH) {
    return sizeof(float) * (size_t)B * NH * Tmax;
}

// idx over (b, e) with e < 2*NKV*HD: kv[b, n[b]-1, e] = qkv[b, NH*HD + e].
KD_HD static inline void kd_decg_attn_append(size_t idx, const kd_decg_attn *a) {
    const size_t S = 2 * (size_t)a->NKV * a->HD, R = (size_t)(a->NH + 2 * a->NKV) * a->HD;
    const size_t b = idx / S, e = idx % S;
    const size_t slot = (size_t)a->n[b] - 1;
    a->kv[(b * a->Tmax + slot) * S + e] = a->qkv[b * R + (size_t)a->NH * a->HD + e];
}

// idx over (b, h): the softmax of query head h of row b over its cache slots [0, n[b]).
KD_HD static inline void kd_decg_attn_scores(size_t idx, const kd_decg_attn *a) {
    const int NH = a->NH, HD = a->HD, G = a->NH / a->NKV;
    const size_t S = 2 * (size_t)a->NKV * HD, R = (size_t)(NH + 2 * a->NKV) * HD;
    const size_t b = idx / NH;
    const int h = (int)(idx % NH), g = h / G, L = a->n[b];
    const float *q = a->qkv + b * R + (size_t)h * HD;
    const float *k0 = a->kv + b * a->Tmax * S + (size_t)g * HD; // slot stride S
    float *p = a->p + idx * a->Tmax;
    const float scale = 1.0f / sqrtf((float)HD);
    float mx = -INFINITY;
    for (int j = 0; j < L; j++) {
        const float *k = k0 + (size_t)j * S;
        float s = 0.0f;
        for (int d = 0; d < HD; d++) s += q[d] * k[d];
        p[j] = s * scale;
        if (p[j] > mx) mx = p[j];
    }
    float sum = 0.0f;
    for (int j = 0; j < L; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    const float inv = 1.0f / sum; // sum >= 1: the maximum contributes exp(0)
    for (int j = 0; j < L; j++) p[j] *= inv;
}

// idx over (b, h, d): out[b, h*HD + d] = sum over j < n[b] of p[b,h,j] * v_j[d].
KD_HD static inline void kd_decg_attn_out(size_t idx, const kd_decg_attn *a) {
    const int NH = a->NH, HD = a->HD, G = a->NH / a->NKV;
    const size_t S = 2 * (size_t)a->NKV * HD;
    const int d = (int)(idx % HD), h = (int)(idx / HD % NH);
    const size_t b = idx / ((size_t)HD * NH);
    const int g = h / G, L = a->n[b];
    const float *v0 = a->kv + b * a->Tmax * S + (size_t)(a->NKV + g) * HD + d; // slot stride S
    const float *p = a->p + (b * NH + h) * a->Tmax;
    float acc = 0.0f;
    for (int j = 0; j < L; j++) acc += p[j] * v0[(size_t)j * S];
    a->out[b * NH * HD + (size_t)h * HD + d] = acc;
}

// ============================================================================ Mamba-2 step
// Two stages:
//   conv  grid B*CD: act[b,c] = silu(conv_b + conv over (conv_state, new input)), and the
//                    conv state shifts by one (each (b,c) owns its own W-1 history);
//   ssm   grid B*H*P: the state row S[b,h,p,:] advances one step and y[b,h,p] = S.C + D*x.
// act (B,CD) lives in the scratch.
typedef struct kd_decg_step {
    float *y;          // (B,H*P)
    float *conv_state; // (B,CD,W-1)
    float *ssm_state;  // (B,H,P,N)
    const float *xbc;  // (B,ld_xbc) raw [x|B|C]
    const float *dt;   // (B,lddt) raw
    const float *conv_w, *conv_b, *dt_bias, *A_log, *D;
    float *act; // scratch (B,CD): the post-conv [x|B|C]
    int ld_xbc, lddt, B, H, n_kv, P, N, W;
} kd_decg_step;

// Width of the conv'd columns: x (n_kv*P), B (n_kv*N), C (H*N). The CPU step uses
// 2*n_kv*P (P == N in the GQA layout); so does this, to stay bit-compatible with it.
KD_HD static inline int kd_decg_step_cd(const kd_decg_step *s) {
    return 2 * s->n_kv * s->P + s->H * s->N;
}
KD_HD static inline size_t kd_decg_step_scratch(const kd_mamba2_dims *d, int B) {
    return sizeof(float) * (size_t)B * (2 * d->n_kv * d->P + d->H * d->N);
}

// idx over (b, c): one channel of the causal conv and its state shift.
KD_HD static inline void kd_decg_step_conv(size_t idx, const kd_decg_step *s) {
    const int CD = kd_decg_step_cd(s), W = s->W;
    const size_t b = idx / CD;
    const int c = (int)(idx % CD);
    const float in = s->xbc[b * s->ld_xbc + c];
    float *cs = s->conv_state + idx * (W - 1);
    const float *wc = s->conv_w + (size_t)c * W;
    float pre = s->conv_b ? s->conv_b[c] : 0.0f;
    for (int k = 0; k < W - 1; k++) pre += wc[k] * cs[k];
    pre += wc[W - 1] * in;
    s->act[idx] = kd_m2_silu(pre);
    for (int k = 0; k + 1 < W - 1; k++) cs[k] = cs[k + 1];
    if (W > 1) cs[W - 2] = in;
}

// idx over (b, h, p): one row of the SSM state and one output.
KD_HD static inline void kd_decg_step_ssm(size_t idx, const kd_decg_step *s) {
    const int H = s->H, P = s->P, N = s->N, rep = s->H / s->n_kv;
    const int dxb = s->n_kv * P, CD = kd_decg_step_cd(s);
    const int p = (int)(idx % P), h = (int)(idx / P % H);
    const size_t b = idx / ((size_t)P * H);
    const int kv = h / rep;
    const float *act = s->act + b * CD;
    const float *Bv = act + dxb, *Cv = act + 2 * dxb;
    const float A = -expf(s->A_log[h]);
    const float dth = kd_m2_softplus(s->dt[b * s->lddt + h] + s->dt_bias[h]);
    const float a = expf(dth * A);
    float *S = s->ssm_state + idx * N; // ((b*H + h)*P + p)*N
    const float xp = act[kv * P + p];
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        float v = a * S[n] + dth * xp * Bv[kv * N + n];
        S[n] = v;
        acc += v * Cv[h * N + n];
    }
    s->y[idx] = acc + s->D[h] * xp;
}

// ---------------------------------------------------------------------------- launch plans
// Each op's stages in launch order, STAGE(body, grid size, a); kernels/cuda/decode.cu
// launches them, tests/unit/test_decode_grid.c runs them on the host.
#define KD_DECG_ATTN_PLAN(STAGE, a)                                                            \
    STAGE(kd_decg_attn_append, (size_t)(a).B * 2 * (a).NKV * (a).HD, a)                        \
    STAGE(kd_decg_attn_scores, (size_t)(a).B * (a).NH, a)                                      \
    STAGE(kd_decg_attn_out, (size_t)(a).B * (a).NH * (a).HD, a)
#define KD_DECG_STEP_PLAN(STAGE, a)                                                            \
    STAGE(kd_decg_step_conv, (size_t)(a).B * kd_decg_step_cd(&(a)), a)                         \
    STAGE(kd_decg_step_ssm, (size_t)(a).B * (a).H * (a).P, a)
