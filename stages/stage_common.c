// stage_common.c: what every training stage sets up the same way for the trainer.
#include <string.h>

#include "runtime/model_io.h"
#include "stages/stage.h"

void kd_stage_trainer_cfg(kd_stage_ctx *ctx, kd_trainer_cfg *tc, kd_ckpt_attr *attrs) {
    memset(tc, 0, sizeof *tc);
    tc->comm = ctx->comm;
    tc->model = ctx->model;
    tc->spec = ctx->spec;
    tc->stage_dir = ctx->stage_dir;
    tc->seed = ctx->recipe->run.seed;
    tc->quiet = ctx->quiet;
    tc->stage_index = ctx->stage_index;
    tc->resume = ctx->resume;
    tc->recipe_hash = ctx->recipe->hash;
    tc->model_hash = kd_recipe_model_hash(ctx->recipe, ctx->stage_index);
    tc->n_attrs = kd_model_config_attrs(kd_model_cfg(ctx->model), attrs);
    tc->attrs = attrs;
    tc->deadline = ctx->deadline;
    tc->final_ckpt = ctx->final_ckpt;
    tc->final_ckpt_len = sizeof ctx->final_ckpt;
}
