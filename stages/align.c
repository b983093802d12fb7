// align.c: stage `align` (MOHAWK): trains the student's Mamba-2 layers to mimic the
// teacher's attention layers one by one on the teacher's own inputs. phase matrix matches
// the SSD mixing matrix to the attention probabilities (Frobenius norm), phase hidden the
// mixer output to the attention output (L2 over d_model). One teacher forward per
// micro-batch gives every layer's input and target; each layer's loss only involves that
// layer. Only the aligned layers' mixer tensors train: everything else is frozen. Batching,
// ZeRO-1, clipping, logging, checkpoints and resume are the trainer's (kd_task.step).
// Its recipe rule: align.layers defaults to, and must be among, the model's Mamba layers.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/log.h"
#include "runtime/model/model_align.h"
#include "runtime/store/model_io.h"
#include "stages/kind.h"

typedef struct {
    kd_task lm; // token windows of the stage's data (fill only)
    kd_model *teacher;
    kd_align_phase phase;
    int n_layers;
    int layers[KD_MAX_LAYERS];
    kd_align_ws *ws;
    float *w; // host weights of one micro-batch: (B) rows or (B,T) tokens
    size_t wcap;
    char names[KD_TASK_MAX_EXTRA][24];
} align_task;

// Every token of a window counts once: the loss is a mean over rows (matrix) or tokens.
static int align_fill(void *vctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets,
                      float *weights, int32_t *seg, int *used_seg, kd_error *err) {
    align_task *a = vctx;
    int rc = a->lm.fill(a->lm.ctx, pos, n, T, ids, targets, weights, seg, used_seg, err);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)n * T; i++) targets[i] = 0, weights[i] = 1.0f;
    return KD_OK;
}

static int align_step(void *vctx, kd_model *m, const int32_t *ids, const int32_t *targets,
                      const float *weights, const int32_t *seg, int n, int T, float dscale,
                      double *loss_sum, double *extra, kd_error *err) {
    align_task *a = vctx;
    int rc = kd_model_forward(a->teacher, ids, NULL, seg, n, T, err);
    if (rc) return rc;
    size_t N = (size_t)n * T, need = a->phase == KD_ALIGN_MATRIX ? (size_t)n : N;
    if (a->wcap < need) {
        free(a->w);
        a->w = kd_malloc(need * sizeof(float));
        a->wcap = need;
    }
    // row weight = its tokens' weight sum, so that loss/total weight = mean over rows
    if (a->phase == KD_ALIGN_MATRIX) {
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                s += targets[i] >= 0 ? weights[i] : 0.0f;
            }
            a->w[b] = (float)s;
        }
    } else {
        for (size_t i = 0; i < N; i++) a->w[i] = targets[i] >= 0 ? weights[i] : 0.0f;
    }
    for (int k = 0; k < a->n_layers; k++) {
        int l = a->layers[k];
        double v = a->phase == KD_ALIGN_MATRIX
                       ? kd_model_align_matrix(m, a->teacher, l, a->w, dscale, 1, a->ws)
                       : kd_model_align_hidden(m, a->teacher, l, a->w, dscale, 1, a->ws);
        *loss_sum += v;
        if (k < KD_TASK_MAX_EXTRA) extra[k] += v;
    }
    return KD_OK;
}

// Freeze globs: the stage's own, then everything but the aligned layers' mixer tensors.
static int freeze_all_but(kd_stage_spec *sp, const kd_model *m, const align_task *a,
                          kd_error *err) {
    static const char *const fixed[] = {"embed_tokens.*",
                                        "norm.weight",
                                        "lm_head.*",
                                        "layers.*.input_layernorm.*",
                                        "layers.*.post_attention_layernorm.*",
                                        "layers.*.mlp.*",
                                        "layers.*.mixer.?_proj.*"}; // attention q/k/v/o
    char extra[KD_MAX_LAYERS][KD_NAME_MAX];
    int nx = 0;
    const kd_model_config *c = kd_model_cfg(m);
    for (int l = 0; l < c->n_layers; l++) {
        int aligned = 0;
        for (int k = 0; k < a->n_layers; k++) aligned |= a->layers[k] == l;
        if (c->mixer[l] == KD_MIXER_MAMBA2 && !aligned)
            snprintf(extra[nx++], KD_NAME_MAX, "layers.%d.mixer.*", l);
    }
    int nf = (int)(sizeof fixed / sizeof fixed[0]);
    if (sp->n_freeze + nf + nx > KD_MAX_GLOBS)
        return kd_fail(
            err, KD_EINPUT,
            "stages.%s: freezing everything but the aligned layers needs %d "
            "freeze patterns (%d of the stage, %d Mamba-2 layers not aligned), at most %d are "
            "possible: align more layers or drop freeze entries",
            sp->name, sp->n_freeze + nf + nx, sp->n_freeze, nx, KD_MAX_GLOBS);
    for (int i = 0; i < nf; i++)
        snprintf(sp->freeze[sp->n_freeze++], sizeof sp->freeze[0], "%s", fixed[i]);
    for (int i = 0; i < nx; i++)
        snprintf(sp->freeze[sp->n_freeze++], sizeof sp->freeze[0], "%s", extra[i]);
    return KD_OK;
}

int kd_stage_align(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *orig = ctx->spec;
    kd_model *m = ctx->model;
    const kd_model_config *mc = kd_model_cfg(m);
    ctx->eval_loss = NAN;
    if (!ctx->teacher)
        return kd_fail(err, KD_EINPUT,
                       "stages.%s: an align stage needs a teacher (teacher: {from: ...})",
                       orig->name);
    align_task *a = kd_calloc(1, sizeof *a);
    a->teacher = ctx->teacher;
    a->phase = orig->align.phase;
    if (orig->align.n_layers > 0) { // resolved at load, or listed
        a->n_layers = orig->align.n_layers;
        memcpy(a->layers, orig->align.layers, sizeof(int) * (size_t)a->n_layers);
    } else { // default: every Mamba-2 layer of the model
        for (int l = 0; l < mc->n_layers; l++)
            if (mc->mixer[l] == KD_MIXER_MAMBA2) a->layers[a->n_layers++] = l;
    }
    int rc = a->n_layers ? KD_OK
                         : kd_fail(err, KD_EINPUT,
                                   "stages.%s: the model has no Mamba-2 layer to align "
                                   "(put an init stage before it)",
                                   orig->name);
    for (int k = 0; k < a->n_layers && !rc; k++)
        rc = kd_model_align_check(m, ctx->teacher, a->layers[k], err);
    kd_stage_spec *sp = kd_malloc(sizeof *sp);
    *sp = *orig;
    if (!rc) rc = freeze_all_but(sp, m, a, err);
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_lm_task *lm = NULL;
    if (!rc) {
        kd_stage_trainer_cfg(ctx, &tc, attrs);
        tc.spec = sp;
        rc = kd_lm_task_open(&lm, sp->data, mc->vocab_size, sp->batch.seq_len,
                             ctx->recipe->run.seed, 1, &a->lm, err);
    }
    if (!rc) {
        a->ws = kd_align_ws_create(ctx->ops);
        int nx = a->n_layers < KD_TASK_MAX_EXTRA ? a->n_layers : KD_TASK_MAX_EXTRA;
        tc.task = (kd_task){.ctx = a,
                            .fill = align_fill,
                            .step = align_step,
                            .n_extra = nx,
                            .n_samples = a->lm.n_samples};
        for (int k = 0; k < nx; k++) {
            snprintf(a->names[k], sizeof a->names[k], "loss/layer%d", a->layers[k]);
            tc.task.extra_names[k] = a->names[k];
        }
        if (kd_comm_rank(ctx->comm) == 0 && !ctx->quiet)
            kd_log_info("stage %s: MOHAWK phase %s on %d layer(s)%s", sp->name,
                        a->phase == KD_ALIGN_MATRIX ? "matrix" : "hidden", a->n_layers,
                        nx < a->n_layers ? " (per-layer metrics for the first 64)" : "");
        rc = kd_trainer_run(&tc, ctx->progress, err);
    }
    kd_lm_task_free(lm);
    kd_align_ws_free(a->ws);
    free(a->w);
    free(a);
    free(sp);
    return rc;
}

// ----------------------------------------------------------------------------- recipe rules

static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

// align.layers: default all SSM layers; listed layers must be SSM layers (when known).
int kd_stage_align_linked(kd_recipe_checker *c, kd_recipe *r, int i) {
    kd_stage_spec *s = &r->stages[i];
    const kd_hybrid *h = kd_kind_layout_at(r, i);
    char p[64], q[96];
    snprintf(p, sizeof p, "stages[%d]", i);
    if (!h) return KD_OK;
    if (!h->n_ssm_layers)
        return kd_recipe_bad(c, p,
                             "an align stage needs Mamba layers, but the model has none here "
                             "(put an init stage before it)");
    if (!s->align.n_layers) {
        s->align.n_layers = h->n_ssm_layers;
        memcpy(s->align.layers, h->ssm_layers, (size_t)h->n_ssm_layers * sizeof(int));
        return KD_OK;
    }
    for (int k = 0; k < s->align.n_layers; k++) {
        int ok = 0;
        for (int m = 0; m < h->n_ssm_layers; m++) ok |= h->ssm_layers[m] == s->align.layers[k];
        if (!ok) {
            snprintf(q, sizeof q, "%s.layers[%d]", p, k);
            return kd_recipe_bad(c, q, "expected a Mamba layer of the model here, found %d",
                                 s->align.layers[k]);
        }
    }
    qsort(s->align.layers, (size_t)s->align.n_layers, sizeof(int), cmp_int);
    return KD_OK;
}
