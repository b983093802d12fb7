// stage_common.c: what every training stage sets up the same way for the trainer, and what
// the token-dataset tasks (lm_task.c, doc_task.c) share: opening the dataset, the CE loss.
#include <string.h>

#include "data/dataset.h"
#include "runtime/store/model_io.h"
#include "stages/kind.h"

void kd_stage_trainer_cfg(kd_stage_ctx *ctx, kd_trainer_cfg *tc, kd_ckpt_attr *attrs) {
    memset(tc, 0, sizeof *tc);
    tc->comm = ctx->comm;
    tc->model = ctx->model;
    tc->spec = ctx->spec;
    tc->stage_dir = ctx->stage_dir;
    tc->seed = ctx->recipe->run.seed;
    tc->quiet = ctx->quiet;
    tc->tensorboard = ctx->recipe->run.tensorboard;
    tc->stage_index = ctx->stage_index;
    tc->resume = ctx->resume;
    tc->resume_path = ctx->resume_path;
    tc->recipe_hash = ctx->recipe->hash;
    tc->model_hash = kd_stage_model_hash(ctx->recipe, ctx->stage_index);
    tc->n_attrs = kd_model_attrs(ctx->model, attrs);
    tc->attrs = attrs;
    tc->deadline = ctx->deadline;
    tc->grad_bucket_mb = ctx->recipe->run.grad_bucket_mb;
    tc->final_ckpt = ctx->final_ckpt;
    tc->final_ckpt_len = sizeof ctx->final_ckpt;
}

int kd_stage_open_tokens(kd_dataset **out, const char *path, int vocab_size, kd_error *err) {
    *out = NULL;
    kd_dataset *ds = NULL;
    int rc = kd_dataset_open(&ds, path, err);
    if (rc) return rc;
    int v = kd_dataset_get_info(ds)->vocab_size;
    if (v > vocab_size) {
        kd_dataset_close(ds);
        return kd_fail(err, KD_EINPUT,
                       "%s: dataset vocab_size %d is larger than the model's vocab_size %d", path,
                       v, vocab_size);
    }
    *out = ds;
    return KD_OK;
}

double kd_stage_ce_loss(void *ctx, kd_model *m, const int32_t *targets, const float *weights, int n,
                        int T, float dscale, int want_grad, double *extra) {
    (void)ctx, (void)n, (void)T, (void)extra;
    return kd_model_ce_loss(m, targets, weights, dscale, want_grad);
}
