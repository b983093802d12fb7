// mixer_attn.h: the attention mixer of a decoder layer (GQA, RoPE, causal softmax) as a
// forward/backward pair over the backend ops. Called by runtime/model.c only.
// Weights: wqkv is q_proj, k_proj, v_proj stacked ((NH+2*NKV)*HD, C); wo is (C, NH*HD).
#pragma once
#include "kernels/ops.h"

typedef struct {
    int C, NH, NKV, HD;
    float rope_theta;
} kd_attn_dims;

typedef struct {
    float *qkv;  // (B,T,(NH+2*NKV)*HD) after RoPE
    float *att;  // (B,NH,T,T) softmax probabilities
    float *y;    // (B,T,NH*HD) attention output before o_proj
} kd_attn_acts;

typedef struct {
    float *dqkv, *datt, *dy;  // same shapes as the acts; shared by all layers
} kd_attn_scratch;

size_t kd_attn_act_floats(const kd_attn_dims *d, int B, int T);
// Carve acts (or scratch: same sizes) out of `mem` (kd_attn_act_floats floats).
void kd_attn_bind(const kd_attn_dims *d, int B, int T, float *mem, kd_attn_acts *a);

// inp (B,T,C) -> out (B,T,C) (overwritten). pos/seg are backend int buffers (B*T).
void kd_attn_forward(const kd_ops *ops, const kd_attn_dims *d, const float *wqkv,
                     const float *wo, kd_attn_acts *a, const float *inp, const int32_t *pos,
                     const int32_t *seg, int B, int T, float *out);
// dout (B,T,C) -> dinp (B,T,C) (ACCUMULATED); dwqkv, dwo accumulated (NULL: frozen).
void kd_attn_backward(const kd_ops *ops, const kd_attn_dims *d, const float *wqkv,
                      const float *wo, float *dwqkv, float *dwo, const kd_attn_acts *a,
                      kd_attn_scratch *s, const float *inp, const int32_t *pos, int B, int T,
                      const float *dout, float *dinp);
