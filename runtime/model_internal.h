// model_internal.h: the layout of kd_model, shared only by the files that implement the
// model (model.c: parameters, forward, backward; model_decode.c: incremental decoding;
// model_align.c: per-layer access for alignment). Everything else uses model.h.
#pragma once
#include "runtime/mixer_attn.h"
#include "runtime/mixer_mamba2.h"
#include "runtime/model.h"


typedef struct {
    // parameter offsets (floats) into params/grads; -1 when absent
    size_t ln1, wqkv, wo, ln2, wgu, wdown;
} kd_layer_offsets;

typedef struct {
    float *resid_in;      // (N,C) block input (the residual stream)
    float *ln1, *rstd1;   // (N,C), (N)
    kd_attn_acts attn;    // attention layers
    kd_mamba2_acts mamba; // Mamba-2 layers
    float *mix_out;       // (N,C) mixer output
    float *resid_mid;     // (N,C) resid_in + mix_out
    float *ln2, *rstd2;   // (N,C), (N)
    float *gu;            // (N,2F)
    float *swi;           // (N,F)
} kd_layer_acts;

struct kd_model {
    kd_model_config cfg;
    const kd_ops *ops;
    kd_param_table table;
    float *params, *grads;
    size_t off_wte, off_norm, off_head;
    kd_layer_offsets lo[KD_MODEL_MAX_LAYERS];
    kd_mamba2_cfg mcfg;                            // shared by all Mamba-2 layers
    kd_mamba2_params mp[KD_MODEL_MAX_LAYERS];      // Mamba-2 parameter views
    kd_mamba2_params mg[KD_MODEL_MAX_LAYERS];      // and their gradients
    // activations for the current (B,T)
    int B, T, acts_training;
    float *act_mem;
    size_t act_floats;
    int32_t *ids, *pos, *seg;   // backend (N)
    int has_seg;
    kd_layer_acts la[KD_MODEL_MAX_LAYERS];
    float *resid_final, *lnf, *rstdf, *logits;
    // backward scratch
    float *dres, *dtmp, *dgu, *dswi;
    kd_attn_scratch attn_s;
    int32_t *targets;  // backend (N)
    float *weights;    // backend (N)
    float *losses;     // backend (N)
};
