// init.c: stage `init`: turns the layers of the stage's hybrid layout (its own `hybrid:`
// block, else model.hybrid) into Mamba-2 initialised from their attention weights
// (runtime/model/model_convert.h), saves the new model as a weights-only checkpoint in the stage
// directory and hands it on as the stage's output. No data, no training, no teacher needed.
// Its recipe rules: the stage's own hybrid block; the layout and conv init enter the model hash.
#include <math.h>
#include <stdio.h>

#include "runtime/base/log.h"
#include "runtime/model/model_convert.h"
#include "runtime/store/hf.h"
#include "runtime/store/model_io.h"
#include "stages/kind.h"

int kd_stage_init(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    const kd_recipe *r = ctx->recipe;
    const kd_model_config *src = kd_model_cfg(ctx->model);
    kd_hybrid h = sp->has_hybrid ? sp->hybrid : r->model.hybrid;
    char where[KD_NAME_MAX + 32];
    snprintf(where, sizeof where, sp->has_hybrid ? "stages.%s.hybrid" : "model.hybrid", sp->name);
    int rc = kd_hybrid_resolve(&h, src->n_layers, where, err);
    if (rc) return rc;
    kd_convert_opts o = {.seed = r->run.seed,
                         .conv = sp->init.conv == KD_INIT_CONV_DEFAULT ? KD_CONV_INIT_DEFAULT
                                                                       : KD_CONV_INIT_IDENTITY,
                         .d_state = h.d_state,
                         .chunk_size = h.chunk_size,
                         .conv_width = h.conv_width};
    kd_model *out = NULL;
    rc = kd_model_convert(&out, ctx->model, h.ssm_layers, h.n_ssm_layers, &o, 1, err);
    if (rc) {
        kd_error_prefix(err, "stage '%s': ", sp->name);
        return rc;
    }
    char root[2 * KD_PATH_MAX + 8];
    snprintf(root, sizeof root, "%s/ckpt", ctx->stage_dir);
    rc = kd_model_save(ctx->comm, out, root, 0, ctx->stage_index, sp->name, ctx->final_ckpt,
                       sizeof ctx->final_ckpt, err);
    if (rc) {
        kd_model_free(out);
        return rc;
    }
    if (kd_comm_rank(ctx->comm) == 0 && !ctx->quiet) {
        char layout[KD_MODEL_MAX_LAYERS * 8];
        kd_model_layout_string(kd_model_cfg(out), layout, sizeof layout);
        kd_log_info("stage %s: %d of %d layers are Mamba-2 (%s; conv %s); saved %s", sp->name,
                    kd_model_n_ssm(kd_model_cfg(out)), src->n_layers, layout,
                    o.conv == KD_CONV_INIT_DEFAULT ? "default" : "identity", ctx->final_ckpt);
    }
    ctx->model = out; // the run frees the source model
    ctx->eval_loss = NAN;
    return KD_OK;
}

// ----------------------------------------------------------------------------- recipe rules

int kd_stage_init_check(kd_recipe_checker *c, kd_recipe *r, int i) {
    kd_stage_spec *s = &r->stages[i];
    if (!s->has_hybrid) return KD_OK;
    char q[64];
    snprintf(q, sizeof q, "stages[%d].hybrid", i);
    return kd_recipe_check_hybrid(c, &s->hybrid, q);
}

int kd_stage_init_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err) {
    const kd_stage_spec *s = &r->stages[i];
    kd_model_config own;
    int rc = KD_OK;
    if (s->from.kind == KD_FROM_CHECKPOINT) rc = kd_model_config_from_ckpt(s->from.ref, &own, err);
    else if (s->from.kind == KD_FROM_HF) rc = kd_hf_config(s->from.ref, &own, err);
    else own = *mc; // stages keep the layer count: the recipe's model has the source's
    char where[KD_NAME_MAX + 64];
    snprintf(where, sizeof where, "%s:%d: stages.%s.from", r->path, s->line, s->name);
    if (rc) {
        kd_error_prefix(err, "%s: ", where);
        return rc;
    }
    kd_hybrid h = *kd_stage_init_layout(r, i);
    snprintf(where, sizeof where, s->has_hybrid ? "%s:%d: stages.%s.hybrid" : "%s:%d: model.hybrid",
             r->path, s->line, s->name);
    return kd_hybrid_resolve(&h, own.n_layers, where, err);
}

const kd_hybrid *kd_stage_init_layout(const kd_recipe *r, int i) {
    const kd_stage_spec *s = &r->stages[i];
    return s->has_hybrid ? &s->hybrid : &r->model.hybrid;
}

void kd_stage_init_hash(kd_strbuf *b, const kd_recipe *r, int i) {
    kd_strbuf_printf(b, "  hybrid:\n");
    kd_recipe_emit_hybrid(b, kd_stage_init_layout(r, i), 4);
    // only a non-default conv init is hashed, so runs that never set it keep their hash
    if (r->stages[i].init.conv != KD_INIT_CONV_IDENTITY)
        kd_strbuf_printf(b, "  conv: %d\n", (int)r->stages[i].init.conv);
}
