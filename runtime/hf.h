// hf.h: Hugging Face Llama directories (config.json + model.safetensors or a sharded
// model.safetensors.index.json) in and out. Import maps HF names (model.layers.3.self_attn.
// q_proj.weight) to kdtrain's (layers.3.mixer.q_proj.weight); export writes a student the
// same way, with Mamba-2 layers under model.layers.N.mamba.* and the layout in config.json
// ("kdtrain" block). Called by the run (model.from / teacher.from {hf: DIR}) and by
// `kdtrain export`. Every rank reads the files itself; nothing here is collective.
#pragma once
#include "runtime/comm.h"
#include "runtime/model.h"

// Model config from DIR/config.json (KD_EINPUT naming the file and key on problems, e.g.
// unsupported rope_scaling or hidden_act).
int kd_hf_config(const char *dir, kd_model_config *c, kd_error *err);
// Creates the model and loads every tensor (F32/F16/BF16 converted to fp32).
int kd_hf_load(const char *dir, const kd_ops *ops, int with_grads, kd_model **out, kd_error *err);
// Writes DIR/config.json and DIR/model.safetensors (fp32), atomically each.
int kd_hf_export(kd_model *m, const char *dir, kd_error *err);
// `kdtrain export CKPT_DIR --out DIR`; argv[0] is "export". Returns an exit status.
int kd_export_main(int argc, char **argv, kd_comm *comm);
