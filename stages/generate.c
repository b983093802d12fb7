// generate.c: stage `generate`: the stage's model completes every prompt of a prompts
// dataset into STAGE_DIR/generated.h5 (a `kd` dataset, loss_mask = 1 on generated tokens),
// rank-parallel and resumable through kd_pseudo_label. The model passes through unchanged:
// it is saved as the stage's checkpoint so that later stages can start from this one.
// Its input is `prompts` (a token dataset), not `data`.
#include <math.h>
#include <stdio.h>

#include "runtime/base/log.h"
#include "runtime/store/model_io.h"
#include "stages/pseudo_label.h"
#include "stages/kind.h"

int kd_stage_generate(kd_stage_ctx *ctx, kd_error *err) {
    const kd_generate_spec *g = &ctx->spec->generate;
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.max_new_tokens = g->max_new_tokens;
    p.temperature = g->temperature;
    p.top_k = g->top_k;
    p.top_p = g->top_p;
    p.seed = ctx->recipe->run.seed;
    p.eos_id = -1; // the prompts dataset's eos_id
    if (ctx->spec->batch.micro > 0) p.batch = ctx->spec->batch.micro;
    char out[2 * KD_PATH_MAX + 32], work[2 * KD_PATH_MAX + 32], ckpt[2 * KD_PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/generated.h5", ctx->stage_dir);
    snprintf(work, sizeof work, "%s/gen_parts", ctx->stage_dir);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", ctx->stage_dir);
    ctx->eval_loss = NAN;
    double t0 = kd_now();
    int rc = kd_pseudo_label(ctx->comm, ctx->model, g->prompts, out, &p, work, 0, err);
    if (rc) {
        kd_error_prefix(err, "stage '%s': ", ctx->spec->name);
        return rc;
    }
    if (kd_comm_rank(ctx->comm) == 0 && !ctx->quiet)
        kd_log_info("stage %s: wrote %s (%.1f s)", ctx->spec->name, out, kd_now() - t0);
    return kd_model_save(ctx->comm, ctx->model, ckpt, 0, ctx->stage_index, ctx->spec->name,
                         ctx->final_ckpt, sizeof ctx->final_ckpt, err);
}

const char *kd_stage_generate_input(const kd_stage_spec *s, const char **key) {
    *key = "prompts";
    return s->generate.prompts;
}
