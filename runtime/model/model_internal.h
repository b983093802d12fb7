// model_internal.h: the layout of kd_model, shared only by the files that implement the
// model (model.c: parameters and lifecycle; model_forward.c: activations, the block loop,
// forward and backward; model_decode.c: incremental decoding; model_align.c: per-layer
// access for alignment). Everything else uses model.h. Invariant: layer l's mixer mx[l] points at
// ad/mcfg and at ap/ag or mp/mg.
#pragma once
#include "runtime/model/mixer.h"
#include "runtime/model/mixer_attn.h"
#include "runtime/model/mixer_mamba2.h"
#include "runtime/model/model.h"

typedef struct {
    // parameter offsets (floats) into params/grads (wqkv, wo: attention layers only)
    size_t ln1, wqkv, wo, ln2, wgu, wdown;
} kd_layer_offsets;

// The buffers of one decoder block (norm -> mixer -> residual -> norm -> MLP -> residual),
// (N,C) unless said otherwise. The forward keeps one set per layer for the backward (out is
// the next layer's in); the decoder reuses one set in place (mid and out are in, mlp is mix).
typedef struct {
    float *in;          // block input (the residual stream)
    float *ln1, *rstd1; // input_layernorm: (N,C), (N)
    float *mix;         // mixer output
    float *mid;         // in + mix
    float *ln2, *rstd2; // post_attention_layernorm: (N,C), (N)
    float *gu;          // (N,2F) gate | up
    float *swi;         // (N,F)
    float *mlp;         // down_proj output
    float *out;         // mid + mlp
} kd_block_bufs;

// One pass of the block loop: a layer's buffers and its mixer call. The model's forward and
// the decoder's prefill and step each define one (model.c, model_decode.c), embedding it as
// the first member of a struct that carries what their mixer calls need.
typedef struct kd_block_pass kd_block_pass;
struct kd_block_pass {
    kd_block_bufs (*bufs)(const kd_block_pass *pass, int l);
    // out (N,C) = layer l's mixer on inp (N,C)
    void (*mixer)(const kd_block_pass *pass, int l, float *out, const float *inp);
};

// Runs every layer's block on N rows of the residual stream (model_forward.c).
void kd_model_blocks(const kd_model *m, const kd_block_pass *pass, int N);

// The mixers' configurations derived from a model config (model.c); cfg_of gives a kind's,
// what that kind's kd_mixer.cfg points at.
typedef struct {
    kd_attn_dims attn;
    kd_mamba2_cfg mamba;
} kd_mixer_cfgs;
kd_mixer_cfgs kd_mixer_cfgs_of(const kd_model_config *c);
const void *kd_mixer_cfg_of(const kd_mixer_cfgs *mc, kd_mixer_kind kind);

// Frees the activation memory of the last (B,T) (model_forward.c).
void kd_model_free_acts(kd_model *m);

typedef struct {
    kd_block_bufs b; // b.out is the next layer's b.in (the last layer's: resid_final)
    float *mixer;    // the mixer's activations (its vt->act_floats)
} kd_layer_acts;

struct kd_model {
    kd_model_config cfg;
    char tok_spec[KD_MODEL_TOK_SPEC_MAX], tok_fp[65]; // kd_model_set_tokenizer ("" unknown)
    const kd_ops *ops;
    kd_param_table table;
    float *params, *grads;
    float *inv_freq; // backend (head_dim/2): the RoPE table of cfg.rope (rope.h)
    size_t off_wte, off_norm, off_head;
    kd_layer_offsets lo[KD_MODEL_MAX_LAYERS];
    kd_attn_dims ad;                          // shared by the attention layers
    kd_mamba2_cfg mcfg;                       // shared by the Mamba-2 layers
    kd_attn_params ap[KD_MODEL_MAX_LAYERS];   // attention parameter views
    kd_attn_params ag[KD_MODEL_MAX_LAYERS];   // and their gradients
    kd_mamba2_params mp[KD_MODEL_MAX_LAYERS]; // Mamba-2 parameter views
    kd_mamba2_params mg[KD_MODEL_MAX_LAYERS]; // and their gradients
    kd_mixer mx[KD_MODEL_MAX_LAYERS];         // each layer's mixer
    // activations for the current (B,T), one arena (act_mem) laid out by prepare()
    int B, T;
    float *act_mem;
    size_t act_floats;
    kd_scratch ws;            // the mixers' kernel scratch (shared by the layers)
    int32_t *ids, *pos, *seg; // backend (N)
    int has_seg;
    kd_layer_acts la[KD_MODEL_MAX_LAYERS];
    float *resid_final, *lnf, *rstdf, *logits;
    float *weights; // backend (N)
    float *losses;  // backend (N)
    // backward
    float *dres, *dtmp, *dgu, *dswi;
    float *mix_bwd;   // the mixers' backward scratch (shared by the layers)
    int32_t *targets; // backend (N)
    kd_grads_final_fn on_final; // kd_model_on_grads_final
    void *on_final_ctx;
};
