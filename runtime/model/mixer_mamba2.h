// mixer_mamba2.h: the Mamba-2 mixer layer (MambaInLlama layout) built only on kd_ops:
// in_proj -> conv1d+SiLU -> chunked SSD -> gated RMSNorm -> out_proj, its exact backward,
// prefill / recurrent step for decoding (the same four entry points as mixer_attn.h;
// kd_mamba2_mixer in mixer.h drives them) and MOHAWK's mixing matrix (alignment). Called
// by the model (runtime/model/model.c, model_decode.c, model_align.c). Invariants: d_state N ==
// head_dim P (x and B share the GQA repeat), H % n_kv == 0, 1 <= W <= 16; all pointers are backend
// memory. Backward OVERWRITES dinp and accumulates the parameter gradients (as matmul_bwd).
#pragma once
#include "kernels/ops.h"
#include "runtime/base/common.h"
#include "runtime/model/params.h"
#include "runtime/base/rng.h"

typedef struct {
    int d_model;      // C
    kd_mamba2_dims k; // H = n_heads, n_kv, P = head_dim, N = d_state, W = conv width, Q = chunk
    float norm_eps;   // eps of the gated RMSNorm
} kd_mamba2_cfg;

// Derived sizes: d_inner = H*P, d_xb = n_kv*P, conv_dim = 2*d_xb + d_inner,
// d_in_proj = 2*d_inner + 2*d_xb + H (rows [z | x | B | C | dt]).
typedef struct {
    int d_inner, d_xb, conv_dim, d_in_proj;
} kd_mamba2_sizes;

kd_mamba2_sizes kd_mamba2_sizes_of(const kd_mamba2_cfg *cfg);
// Checks the invariants above; fills err naming the offending field.
int kd_mamba2_check(const kd_mamba2_cfg *cfg, kd_error *err);

// Parameters of one layer (or their gradients: same struct, same shapes).
typedef struct {
    float *in_proj_w;  // (d_in_proj, C)
    float *conv_w;     // (conv_dim, 1, W)
    float *conv_b;     // (conv_dim)
    float *dt_bias;    // (H)
    float *A_log;      // (H)
    float *D;          // (H)
    float *norm_w;     // (d_inner)
    float *out_proj_w; // (C, d_inner)
} kd_mamba2_params;

#define KD_MAMBA2_NPARAMS 8
// Names ("layers.<layer>.mixer.in_proj.weight", ...), shapes and decay flags of the layer's
// parameters in the order of kd_mamba2_params; offsets are left 0 for the model to assign.
void kd_mamba2_param_infos(const kd_mamba2_cfg *cfg, int layer,
                           kd_param_info out[KD_MAMBA2_NPARAMS]);
// MambaInLlama's init of the new SSM parameters (rng: the tensor's own stream):
// dt_bias = softplus^-1(dt), dt = exp(U[log 1e-3, log 1e-1]) floored at 1e-4;
// A_log = log U[1, 16].
void kd_mamba2_init_dt_bias(float *w, size_t n, kd_rng *rng);
void kd_mamba2_init_A_log(float *w, size_t n, kd_rng *rng);
// Points p at the layer's tensors inside base (a buffer laid out by pt); checks names and
// element counts.
int kd_mamba2_params_bind(kd_mamba2_params *p, float *base, const kd_param_table *pt,
                          const kd_mamba2_cfg *cfg, int layer, kd_error *err);

// Activations kept from forward for backward, carved from one buffer of
// kd_mamba2_acts_floats() floats (an arena slice).
typedef struct {
    float *zxbcdt; // (B,T,d_in_proj) in_proj output
    float *xbc;    // (B,T,conv_dim) after conv + SiLU: [x | B | C]
    float *y;      // (B,T,d_inner) SSD output incl. D*x
    float *yn;     // (B,T,d_inner) gated-norm output (out_proj input)
    float *rstd;   // (B,T,H)
    float *states; // (B,H,nchunks,P,N) state entering each chunk
    // backward scratch (contents not kept between calls)
    float *dzxbcdt, *dxbc, *dy, *dyn;
} kd_mamba2_acts;
size_t kd_mamba2_acts_floats(const kd_mamba2_cfg *cfg, int B, int T);
void kd_mamba2_acts_bind(kd_mamba2_acts *a, float *base, const kd_mamba2_cfg *cfg, int B, int T);

// Kernel scratch (bytes) of forward and backward for a (B,T) batch; ws below is at least
// that big (backend memory, shared by the layers: nothing in it is kept between calls).
size_t kd_mamba2_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int B, int T);

// out (B,T,C) = mixer(inp (B,T,C)); seg (B,T) document ids or NULL.
void kd_mamba2_forward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, kd_scratch ws, float *out, const float *inp,
                       const int32_t *seg, int B, int T);
// dinp (B,T,C) = d out/d inp . dout (overwritten); grads += parameter gradients. Needs a
// from forward.
void kd_mamba2_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                        const kd_mamba2_params *grads, kd_mamba2_acts *a, kd_scratch ws,
                        float *dinp, const float *dout, const float *inp, const int32_t *seg, int B,
                        int T);

// ---------------------------------------------------------------------------- decoding
// The recurrent state of `slots` sequences (it does not grow with their length).
typedef struct {
    float *conv_state; // (slots,conv_dim,W-1) last W-1 raw xBC inputs
    float *ssm_state;  // (slots,H,P,N)
    int slots;
} kd_mamba2_cache;
size_t kd_mamba2_cache_floats(const kd_mamba2_cfg *cfg, int slots);
void kd_mamba2_cache_bind(kd_mamba2_cache *c, float *base, const kd_mamba2_cfg *cfg, int slots);
// Work floats of a prefill of one prompt of up to len tokens (its activations) or a step of
// up to `slots` rows (the larger), and kernel scratch bytes of the same.
size_t kd_mamba2_work_floats(const kd_mamba2_cfg *cfg, int slots, int len);
size_t kd_mamba2_decode_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int slots,
                                      int len);
// Forward of B prompts of T tokens (no seg: one document per row) that leaves the final
// states of prompt b in slot slot+b of c (replacing what it held). ws:
// kd_mamba2_scratch_bytes(B, T).
void kd_mamba2_prefill(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                       kd_mamba2_acts *a, kd_scratch ws, kd_mamba2_cache *c, int slot, float *out,
                       const float *inp, int B, int T);
// Rollback history of `slots` sequences: buf (slots,len,kd_mamba2_state_floats); row (host,
// one per step row) the entry that receives the slot's state after that row, -1: none.
typedef struct {
    float *buf;
    int len;
    const int32_t *row;
} kd_mamba2_hist;
// T tokens per slot b < B, rows token-major (r = t*B + b): out (T*B,C) from inp (T*B,C);
// advances slots [0,B) of c by T tokens, one recurrent step per token, saving states into
// h (NULL: none). work: kd_mamba2_work_floats(T*B, 1) floats; ws:
// kd_mamba2_decode_scratch_bytes(B, 1).
void kd_mamba2_step(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                    float *work, kd_scratch ws, kd_mamba2_cache *c, float *out, const float *inp,
                    int B, int T, const kd_mamba2_hist *h);
// Floats of one slot's state (conv then SSM), and copying slot `slot` of c to (restore 0)
// or from (restore 1) hist, which holds that many floats.
size_t kd_mamba2_state_floats(const kd_mamba2_cfg *cfg);
void kd_mamba2_history(const kd_ops *ops, const kd_mamba2_cfg *cfg, kd_mamba2_cache *c, int slot,
                       float *hist, int restore);

// ---------------------------------------------------------------------------- MOHAWK
// M (B,H,T,T): the mixing matrix of the SSD given a forward's activations (a->zxbcdt, a->xbc):
// y_t = sum_s M[t,s] x_s per head, before gate and norm (see docs/mamba2.md).
// ws: kd_mamba2_matrix_scratch_bytes(B, T) (which also covers forward and backward).
size_t kd_mamba2_matrix_scratch_bytes(const kd_ops *ops, const kd_mamba2_cfg *cfg, int B, int T);
void kd_mamba2_matrix(const kd_ops *ops, const kd_mamba2_cfg *cfg, const kd_mamba2_params *p,
                      const kd_mamba2_acts *a, kd_scratch ws, float *M, const int32_t *seg, int B,
                      int T);
// Backward of kd_mamba2_matrix through conv and in_proj: dinp = ... (overwritten), grads += ...
void kd_mamba2_matrix_backward(const kd_ops *ops, const kd_mamba2_cfg *cfg,
                               const kd_mamba2_params *p, const kd_mamba2_params *grads,
                               kd_mamba2_acts *a, kd_scratch ws, float *dinp, const float *dM,
                               const float *inp, const int32_t *seg, int B, int T);
