// sft.c: stage `sft`: supervised fine-tuning on instruction data (an `sft` dataset: one
// conversation per document, loss_mask on assistant tokens): masked next-token CE,
// conversations packed several per row without cross-contamination (sft.packing, default)
// or one per row padded; loss normalised per target token.
#include <math.h>

#include "runtime/base/log.h"
#include "runtime/store/model_io.h"
#include "stages/kind.h"

int kd_stage_sft(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    const kd_model_config *mc = kd_model_cfg(ctx->model);
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_stage_trainer_cfg(ctx, &tc, attrs);
    int packing = sp->sft.packing;
    kd_doc_task *train = NULL, *eval = NULL;
    int rc = kd_doc_task_open(&train, sp->data, mc->vocab_size, sp->batch.seq_len, ctx->recipe->run.seed, 1,
                              packing, 1, &tc.task, err);
    if (!rc && sp->eval_data[0])
        rc = kd_doc_task_open(&eval, sp->eval_data, mc->vocab_size, sp->batch.seq_len, 0, 0, packing,
                              1, &tc.eval_task, err);
    if (!rc && kd_comm_rank(ctx->comm) == 0 && !ctx->quiet) {
        kd_log_info("sft: %llu rows of %d tokens (%s), %llu conversations truncated to seq_len",
                    (unsigned long long)tc.task.n_samples, sp->batch.seq_len, packing ? "packed" : "one per row",
                    (unsigned long long)kd_doc_task_truncated(train));
    }
    if (!rc) rc = kd_trainer_run(&tc, ctx->progress, err);
    ctx->eval_loss = NAN;
    if (!rc && eval) rc = kd_trainer_evaluate(&tc, tc.eval_task.n_samples, &ctx->eval_loss, NULL, err);
    kd_doc_task_free(train);
    kd_doc_task_free(eval);
    return rc;
}
