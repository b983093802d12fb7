// model_arg.h: the MODEL argument of `kdtrain generate` and `kdtrain export` (docs/cli.md):
// a checkpoint directory (step-*), a ckpt/ root (its newest valid checkpoint), RUN_DIR:STAGE
// (the stage's final checkpoint, or its newest valid one if unfinished), or a Hugging Face
// directory (config.json, no MANIFEST). One resolver so both commands accept the same forms.
#pragma once
#include "runtime/base/comm.h"
#include "runtime/model/model.h"

typedef struct {
    char path[4200]; // the checkpoint or HF directory that was loaded
    int hf;          // 1: path is a Hugging Face directory
} kd_model_source;

// Resolves spec to a checkpoint or HF directory (KD_EINPUT naming spec when it is neither).
int kd_model_arg_resolve(const char *spec, kd_model_source *src, kd_error *err);
// Collective over comm: resolve (agreed by all ranks), verify a checkpoint's digests when
// `verify`, and load the model on ops (no grads).
int kd_model_arg_load(kd_comm *comm, const char *spec, const kd_ops *ops, int verify,
                      kd_model **out, kd_model_source *src, kd_error *err);
