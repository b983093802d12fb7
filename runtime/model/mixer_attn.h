// mixer_attn.h: the attention mixer of a decoder layer (GQA, RoPE, causal softmax) over the
// backend ops: forward/backward for training, prefill/step over a KV cache for decoding
// (the same four entry points as mixer_mamba2.h; kd_attn_mixer in mixer.h drives them).
// Called by the model (runtime/model/model.c, model_decode.c) through that table.
// Weights: wqkv is q_proj, k_proj, v_proj stacked ((NH+2*NKV)*HD, C); wo is (C, NH*HD).
// Keys are cached after RoPE, at their absolute positions.
#pragma once
#include "kernels/ops.h"

typedef struct {
    int C, NH, NKV, HD;
    const float *inv_freq; // backend (HD/2): RoPE inverse frequencies (the model's table)
} kd_attn_dims;

// Parameters of one layer (or their gradients: same struct, same shapes).
typedef struct {
    float *wqkv; // ((NH+2*NKV)*HD, C)
    float *wo;   // (C, NH*HD)
} kd_attn_params;

// Activations kept from forward for backward: O(T) per layer (the attention kernels keep
// no (T,T) probabilities; the backward recomputes them from lse).
typedef struct {
    float *qkv; // (B,T,(NH+2*NKV)*HD) after RoPE
    float *lse; // (B,NH,T) log-sum-exp of each query row's scores
    float *y;   // (B,T,NH*HD) attention output before o_proj
} kd_attn_acts;
size_t kd_attn_act_floats(const kd_attn_dims *d, int B, int T);
void kd_attn_acts_bind(kd_attn_acts *a, float *base, const kd_attn_dims *d, int B, int T);
// The backward's scratch: dqkv and dy, shaped like qkv and y.
typedef struct {
    float *dqkv, *dy;
} kd_attn_grads;
size_t kd_attn_bwd_floats(const kd_attn_dims *d, int B, int T);
void kd_attn_grads_bind(kd_attn_grads *s, float *base, const kd_attn_dims *d, int B, int T);
// Kernel scratch (bytes) of forward and backward on (B,T).
size_t kd_attn_scratch_bytes(const kd_ops *ops, const kd_attn_dims *d, int B, int T);

// inp (B,T,C) -> out (B,T,C) (overwritten). pos/seg are backend int buffers (B*T).
void kd_attn_forward(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p,
                     kd_attn_acts *a, kd_scratch ws, float *out, const float *inp,
                     const int32_t *pos, const int32_t *seg, int B, int T);
// dout (B,T,C) -> dinp (B,T,C) (OVERWRITTEN); g->wqkv, g->wo accumulated (g NULL: frozen).
// s is the backward scratch (kd_attn_bwd_floats floats); seg as given to the forward.
void kd_attn_backward(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p,
                      const kd_attn_params *g, const kd_attn_acts *a, kd_attn_grads *s,
                      kd_scratch ws, float *dinp, const float *dout, const float *inp,
                      const int32_t *pos, const int32_t *seg, int B, int T);
// The softmax probabilities P (B,NH,T,T) of the last forward on these acts (MOHAWK's
// matrix alignment): recomputed from qkv and lse into P.
void kd_attn_probs(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_acts *a, float *P,
                   const int32_t *seg, int B, int T);

// ---------------------------------------------------------------------------- decoding
// KV cache of `slots` sequences of up to `len` tokens: kv (slots,len,2*NKV*HD), each token
// holding its NKV key heads (after RoPE) then its NKV value heads.
typedef struct {
    float *kv;
    int slots, len;
} kd_attn_cache;
size_t kd_attn_cache_floats(const kd_attn_dims *d, int slots, int len);
void kd_attn_cache_bind(kd_attn_cache *c, float *base, const kd_attn_dims *d, int slots, int len);
// Work floats of a prefill of B prompts of T tokens or a step of B rows (the larger).
size_t kd_attn_work_floats(const kd_attn_dims *d, int B, int T);
// Kernel scratch (bytes) of a step of B rows over a cache of len tokens, or of the prefill
// of one prompt of len tokens (the larger).
size_t kd_attn_step_scratch_bytes(const kd_ops *ops, const kd_attn_dims *d, int B, int len);

// Forward of B prompts of T tokens (inp (B,T,C), pos (B,T), one document per row) whose
// keys and values go to slots [slot, slot+B) of c. out (B,T,C).
void kd_attn_prefill(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p, float *work,
                     kd_scratch ws, kd_attn_cache *c, int slot, float *out, const float *inp, const int32_t *pos,
                     int B, int T);
// T tokens per slot b < B, rows token-major (r = t*B + b): inp (T*B,C) at position pos[r],
// stored in cache slot n[r]-1 = pos[r], attending over the slot's first n[r] tokens (the
// earlier tokens of the same step included). out (T*B,C). work: kd_attn_work_floats(T*B, 1).
void kd_attn_step(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p, float *work,
                  kd_scratch ws, kd_attn_cache *c, float *out, const float *inp, const int32_t *pos,
                  const int32_t *n, int B, int T);
