// pretrain.c: stage `pretrain`: next-token cross-entropy training of the model on a token
// dataset (the teacher of the demo, or continued pretraining of a hybrid).
#include <math.h>

#include "runtime/store/model_io.h"
#include "stages/kind.h"

int kd_stage_pretrain(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    const kd_model_config *mc = kd_model_cfg(ctx->model);
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_stage_trainer_cfg(ctx, &tc, attrs);
    kd_lm_task *train = NULL, *eval = NULL;
    int rc = kd_lm_task_open(&train, sp->data, mc->vocab_size, sp->batch.seq_len,
                             ctx->recipe->run.seed, 1, &tc.task, err);
    if (!rc && sp->eval_data[0])
        rc = kd_lm_task_open(&eval, sp->eval_data, mc->vocab_size, sp->batch.seq_len, 0, 0,
                             &tc.eval_task, err);
    if (!rc) rc = kd_trainer_run(&tc, ctx->progress, err);
    ctx->eval_loss = NAN;
    if (!rc && eval) rc = kd_trainer_evaluate(&tc, tc.eval_task.n_samples, &ctx->eval_loss, NULL, err);
    kd_lm_task_free(train);
    kd_lm_task_free(eval);
    return rc;
}
