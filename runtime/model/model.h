// model.h: the one model type of kdtrain: a Llama decoder whose layers each use an
// attention or a Mamba-2 mixer (teacher and hybrid student alike). Owns the parameter table
// and buffers, random init, and forward/backward over the backend ops. Called by the
// trainer and the stages; knows nothing of recipes, data files or MPI.
// Invariants: params/grads are backend memory laid out by `table`; q,k,v (and gate,up) of
// a layer are adjacent so each pair/triple is one matmul.
#pragma once
#include <stdint.h>

#include "kernels/ops.h"
#include "runtime/base/common.h"
#include "runtime/model/params.h"
#include "runtime/model/rope.h"

#define KD_MODEL_MAX_LAYERS 256

typedef enum { KD_MIXER_ATTN = 0, KD_MIXER_MAMBA2 = 1 } kd_mixer_kind;
#define KD_MIXER_KINDS 2

// A mixer kind's name in checkpoints and exported configs: "attn", "mamba2" (the one table
// of them; "?" for a value that is not a kind).
const char *kd_mixer_name(kd_mixer_kind kind);
// Reads a mixer name at the start of s: sets *out and returns the name's length, or returns
// 0 when s does not start with one (a caller that wants the whole string checks s[len]).
size_t kd_mixer_parse(const char *s, kd_mixer_kind *out);

typedef struct {
    int vocab_size, d_model, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim;
    float rope_theta, norm_eps;
    int tie_embeddings;
    kd_mixer_kind mixer[KD_MODEL_MAX_LAYERS];
    int d_state, chunk_size, conv_width; // Mamba-2 layers
    kd_rope_scaling rope; // RoPE frequency scaling (rope.h); all zero = plain RoPE
    int max_pos;          // max_position_embeddings, 0 = unknown; dynamic RoPE stops there
} kd_model_config;

typedef struct kd_model kd_model;

// Validates shapes (heads divide, head_dim even, ...) and reports KD_EINPUT.
int kd_model_config_check(const kd_model_config *c, kd_error *err);
int kd_model_n_ssm(const kd_model_config *c);
// Number of parameters of a config (without building the model).
size_t kd_model_param_count(const kd_model_config *c);
// Bytes of the activation memory of a (B,T) micro-batch, the same count the model allocates
// (for `check` and resource limits; kernel scratch is not counted).
double kd_model_activation_bytes(const kd_model_config *c, int B, int T, int training);

int kd_model_create(kd_model **out, const kd_model_config *cfg, const kd_ops *ops, int with_grads,
                    kd_error *err);
void kd_model_free(kd_model *m);
// The tokenizer whose ids the model was trained on: spec ("bytes" or the absolute path of a
// Hugging Face tokenizer directory / tokenizer.json) and fingerprint (data/tokenizer.h);
// both "" when unknown. Not part of the computation: checkpoints record it (model.h5
// attributes), so a later recipe, `generate` or `export` of the checkpoint finds the
// tokenizer again. A spec of KD_MODEL_TOK_SPEC_MAX characters or more is not kept (only
// the fingerprint).
#define KD_MODEL_TOK_SPEC_MAX 256
void kd_model_set_tokenizer(kd_model *m, const char *spec, const char *fingerprint);
const char *kd_model_tokenizer(const kd_model *m);
const char *kd_model_tokenizer_fp(const kd_model *m);
const kd_model_config *kd_model_cfg(const kd_model *m);
const kd_param_table *kd_model_table(const kd_model *m);
const kd_ops *kd_model_ops(const kd_model *m);
float *kd_model_params(kd_model *m); // backend, table.total floats
float *kd_model_grads(kd_model *m);  // backend, or NULL without grads

// Seeded init (docs/design.md#init): every matrix N(0, std) except the residual output
// projections (o_proj, down_proj, out_proj) N(0, std/sqrt(2*n_layers)); norms 1; Mamba-2
// specific parameters as in MambaInLlama. Each tensor's stream is seeded by (seed, name).
void kd_model_init_random(kd_model *m, uint64_t seed, float std);

// Forward of a (B,T) batch of token ids (host memory). pos (B,T) positions and seg (B,T)
// document ids are optional (NULL positions: 0.. restarting at each document of seg;
// NULL seg: one document per row). Documents never see each other: attention masks them
// and Mamba-2 layers reset their state and conv history at each boundary. Activations are
// kept for backward when the model has grads. Logits (B,T,V) land in kd_model_logits().
int kd_model_forward(kd_model *m, const int32_t *ids, const int32_t *pos, const int32_t *seg, int B,
                     int T, kd_error *err);
float *kd_model_logits(kd_model *m); // backend (B,T,V) of the last forward

// Cross-entropy head on the last forward: returns sum_i w_i * CE_i (w = weights or 1,
// targets < 0 ignored). With want_grad, writes dscale * dCE/dlogits over the logits buffer.
double kd_model_ce_loss(kd_model *m, const int32_t *targets, const float *weights, float dscale,
                        int want_grad);
// Backward from the gradient in the logits buffer; ACCUMULATES into the grads.
void kd_model_backward(kd_model *m);
void kd_model_zero_grad(kd_model *m);
// Gradient readiness, for overlapping their reduction with the backward: while fn is set,
// kd_model_backward calls fn(ctx, lo) each time the grads [lo, total) are final for the
// pass (after the head and final norm, after each layer, lo = 0 at the end); fn NULL:
// none. On a device backend "final" means queued: what fn queues runs after them.
typedef void (*kd_grads_final_fn)(void *ctx, size_t lo);
void kd_model_on_grads_final(kd_model *m, kd_grads_final_fn fn, void *ctx);
// The offsets fn is called with, in that order (n_layers + 2 of them, the last 0).
int kd_model_grad_bounds(const kd_model *m, size_t *out);
// d loss / d (embedding output) of the last backward, backend (B,T,C) (tests, alignment).
const float *kd_model_dembed(const kd_model *m);

// Per-layer views of the last forward (backend memory, valid until the next forward):
// the mixer's input (after input_layernorm) and output (before the residual add), both
// (B,T,C).
const float *kd_model_mixer_input(const kd_model *m, int layer);
const float *kd_model_mixer_output(const kd_model *m, int layer);
// For an attention layer, its softmax probabilities in the last forward, recomputed into
// P (backend (B,NH,T,T): the forward keeps none), and 1; 0 for another mixer.
int kd_model_attn_probs(const kd_model *m, int layer, float *P);
