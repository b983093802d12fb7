// hf.h: Hugging Face Llama directories (config.json + model.safetensors or a sharded
// model.safetensors.index.json) in and out. Import maps HF names (model.layers.3.self_attn.
// q_proj.weight) to kdtrain's (layers.3.mixer.q_proj.weight) and accepts only configs that
// kdtrain computes like transformers (hf_config.c); export writes a student the same way,
// with Mamba-2 layers under model.layers.N.mamba.*, the layout in config.json ("kdtrain"
// block), and what a user needs to run it (hf_export.c: special token ids,
// generation_config.json, tokenizer files, mamba_config.json for hybrids). Called by the run
// (model.from / teacher.from {hf: DIR}) and by `kdtrain export` / `generate`. Every rank reads
// the files itself; nothing here is collective.
#pragma once
#include "runtime/base/comm.h"
#include "runtime/model/model.h"

// model_type / architectures of a hybrid export: names no stock transformers class knows,
// so AutoModelForCausalLM refuses it instead of loading a Llama with random attention.
#define KD_HF_HYBRID_TYPE "llama_mamba2_hybrid"
#define KD_HF_HYBRID_ARCH "LlamaMamba2HybridForCausalLM"
#define KD_HF_MAX_EOS 8

// Model config from DIR/config.json (KD_EINPUT naming the file and key on problems, e.g.
// an unsupported rope_scaling type, mlp_bias, another model_type).
int kd_hf_config(const char *dir, kd_model_config *c, kd_error *err);
// Creates the model and loads every tensor (F32/F16/BF16 converted to fp32).
int kd_hf_load(const char *dir, const kd_ops *ops, int with_grads, kd_model **out, kd_error *err);

// Special token ids written to config.json and generation_config.json (-1 / 0: unknown).
typedef struct {
    int bos, pad;
    int eos[KD_HF_MAX_EOS], n_eos; // generation stops at any of them
} kd_hf_ids;
void kd_hf_ids_init(kd_hf_ids *ids); // all unknown
// Fills the ids still unknown from DIR: generation_config.json, then config.json, then
// tokenizer_config.json (token strings looked up in added_tokens_decoder or tokenizer.json's
// added_tokens). Absent files are skipped; malformed ones are KD_EINPUT.
int kd_hf_read_ids(const char *dir, kd_hf_ids *ids, kd_error *err);

typedef struct {
    const char *tokenizer_dir; // copy tokenizer.json, tokenizer_config.json, ... (NULL: none)
    const char *base;          // hybrids: config.json "_name_or_path" (MambaInLlama's loader
                               // builds the Llama it names, then loads our weights); NULL: none
    kd_hf_ids ids;
} kd_hf_export_opts;
// Writes DIR/config.json, DIR/model.safetensors (fp32) and DIR/generation_config.json, plus
// the tokenizer files and, for a hybrid, DIR/mamba_config.json; each atomically. Inputs
// are read before anything is written. o may be NULL (no ids, no tokenizer).
int kd_hf_export(kd_model *m, const char *dir, const kd_hf_export_opts *o, kd_error *err);
