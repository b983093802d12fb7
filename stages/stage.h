// stage.h: what a stage gets from the run and what it gives back. One file per stage kind
// under stages/ implements kd_stage_<kind>. Stages build a kd_task for the trainer and call
// it; they never touch MPI or file layout of the run directory beyond stage_dir.
#pragma once
#include "runtime/comm.h"
#include "runtime/model.h"
#include "runtime/recipe.h"
#include "runtime/trainer.h"

typedef struct {
    const kd_recipe *recipe;
    int stage_index;
    const kd_stage_spec *spec;
    kd_comm *comm;
    const kd_ops *ops;
    kd_model *model;      // the model this stage trains (in and out)
    kd_model *teacher;    // frozen teacher, or NULL
    const char *stage_dir;
    kd_progress *progress;
    int quiet;
    kd_resume_mode resume;
    double deadline;      // kd_now() after which training saves and stops (0: none)
    double eval_loss;     // out: held-out loss at the end (NAN if no eval_data)
    char final_ckpt[2 * KD_PATH_MAX];  // out: checkpoint holding the stage's output model
} kd_stage_ctx;

// Fills the trainer config fields every training stage shares (comm, model, spec, dirs,
// seed, resume, hashes, checkpoint attributes, deadline, final checkpoint out-path).
// attrs must have room for KD_MODEL_ATTRS entries and outlive the trainer call.
void kd_stage_trainer_cfg(kd_stage_ctx *ctx, kd_trainer_cfg *tc, kd_ckpt_attr *attrs);

int kd_stage_pretrain(kd_stage_ctx *ctx, kd_error *err);
// init: attention -> Mamba-2 conversion; replaces ctx->model with the new model.
int kd_stage_init(kd_stage_ctx *ctx, kd_error *err);
// align: MOHAWK matrix orientation / hidden-state alignment against ctx->teacher.
int kd_stage_align(kd_stage_ctx *ctx, kd_error *err);

// Shared by stages that train on token datasets: the CE task over windows of a dataset.
// ctx_out must be freed with kd_lm_task_free. shuffle=0 reads windows in order (eval).
typedef struct kd_lm_task kd_lm_task;
int kd_lm_task_open(kd_lm_task **out, const char *path, int vocab_size, int seq_len,
                    uint64_t seed, int shuffle, kd_task *task, kd_error *err);
void kd_lm_task_free(kd_lm_task *t);
