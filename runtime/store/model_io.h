// model_io.h: a model's config as checkpoint attributes and back, and loading a model
// (config + weights) from a kdtrain checkpoint. Called by the run (stage inputs, teacher)
// and the trainer (attributes on every checkpoint). Collective where it says so.
#pragma once
#include "runtime/store/checkpoint.h"
#include "runtime/base/comm.h"
#include "runtime/model/model.h"

#define KD_MODEL_ATTRS 24

// Fills attrs (at least KD_MODEL_ATTRS entries) and returns how many. The RoPE scaling
// attributes (rope_type, rope_factor, ..., max_position_embeddings) are written only when
// the config has scaling or a max_position_embeddings, so plain-RoPE checkpoints are as
// before; a checkpoint without them reads back as plain RoPE.
int kd_model_config_attrs(const kd_model_config *c, kd_ckpt_attr *attrs);
// The config attributes plus the model's tokenizer identity ("tokenizer",
// "tokenizer_fingerprint", when known: kd_model_set_tokenizer). What checkpoints store.
int kd_model_attrs(const kd_model *m, kd_ckpt_attr *attrs);
// The tokenizer a checkpoint records: spec (up to n bytes) and fingerprint, both "" when it
// records none (checkpoints written before it was recorded). KD_OK, or the error reading
// its attributes.
int kd_ckpt_tokenizer(const char *ckpt_dir, char *spec, size_t n, char fp[65], kd_error *err);
// Rebuilds a config from a checkpoint's attributes (KD_EINPUT naming what is missing).
int kd_model_config_from_ckpt(const char *ckpt_dir, kd_model_config *c, kd_error *err);
// Collective: creates a model from ckpt_dir (config from its attributes) and loads the
// weights (no optimizer state).
int kd_model_load(kd_comm *comm, const char *ckpt_dir, const kd_ops *ops, int with_grads,
                  kd_model **out, kd_error *err);
// Collective: loads weights of ckpt_dir into an existing model of the same table.
int kd_model_load_weights(kd_comm *comm, kd_model *m, const char *ckpt_dir, kd_error *err);
// "attn,attn,mamba2,..." (n_layers entries) into buf.
void kd_model_layout_string(const kd_model_config *c, char *buf, size_t n);

// Collective: writes the model's weights as a weights-only checkpoint
// ckpt_root/step-<step> (used by stages that do not train, e.g. init). out gets the path.
int kd_model_save(kd_comm *comm, kd_model *m, const char *ckpt_root, int64_t step,
                  int stage_index, const char *stage_name, char *out, size_t out_len,
                  kd_error *err);
