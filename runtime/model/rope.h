// rope.h: RoPE frequency scaling of a model config (docs/formats.md#rope): the names of the
// scaling types, their checks, and the per-pair inverse-frequency table the rope kernels
// take (kernels/ops.h rope_fwd/bwd). Called by the model (its table at create), the HF
// import/export, checkpoints and the run. Plain RoPE (KD_ROPE_DEFAULT) builds the table with
// kd_rope_inv_freq, the expression the kernels used before the table existed, so its angles
// are bitwise unchanged.
#pragma once
#include "runtime/base/common.h"

// Values are stored in checkpoints and recipes (model.arch.rope_type): append only.
typedef enum {
    KD_ROPE_DEFAULT = 0, // theta^(-2i/HD)
    KD_ROPE_LINEAR = 1,  // default / factor (position interpolation)
    KD_ROPE_DYNAMIC = 2, // NTK: equals default up to max_position_embeddings (refused beyond)
    KD_ROPE_LLAMA3 = 3,  // Llama 3.1 / 3.2: wavelength-dependent factor, smooth in between
} kd_rope_type;
#define KD_ROPE_TYPES 4

// The scaling of a config: type and its parameters (unused ones are ignored).
typedef struct {
    kd_rope_type type;
    float factor;           // linear, dynamic, llama3
    float low_freq_factor;  // llama3
    float high_freq_factor; // llama3
    int original_max_pos;   // llama3: original_max_position_embeddings
} kd_rope_scaling;

// "default", "linear", "dynamic", "llama3" ("?" for a value out of range).
const char *kd_rope_type_name(kd_rope_type t);
// Type from its name (the Hugging Face rope_type spelling); -1 when unknown.
int kd_rope_type_parse(const char *s);
// KD_EINPUT naming the parameter (prefix + "factor", "low_freq_factor", ...: prefix is
// "model.arch.rope_" for recipes, "rope_scaling." for HF configs) when it is out of range,
// or max_position_embeddings when dynamic has none (max_pos < 1) to bound it.
int kd_rope_check(const kd_rope_scaling *s, int max_pos, const char *prefix, kd_error *err);
// inv_freq (HD/2) for pairs i < HD/2 of heads of size HD.
void kd_rope_table(const kd_rope_scaling *s, float theta, int HD, float *inv_freq);
