// kd.c: stage `kd`: knowledge distillation of the model (student) from the recipe's
// teacher, as in "The Mamba in the Llama": optionally the teacher first writes
// pseudo-labels for a prompt set (rank-parallel, resumable; stages/pseudo_label.c); then
// the student trains on documents (prompt + teacher answer, loss_mask on the answer) with
//   loss = kl * tau^2 * D(p_teacher || p_student) + ce * CE(student, tokens)
// per target token (loss.normalize: the divergence term per row instead, as MambaInLlama's
// batchmean; docs/losses.md). With lmbda > 0 a seeded fraction of the steps trains on
// answers the student samples itself (on-policy, stages/kd_onpolicy.c). The teacher
// distribution comes from the teacher run online on each micro-batch (no activations
// kept, no gradients) or, when the data carries a cached
// top-K teacher (/topk_ids, /topk_logprobs) and kd.use_topk_cache, from that cache: then
// the teacher is not in memory while training. Held-out metrics use the full teacher.
// Its recipe rules: the stage reads pseudo_labels.prompts instead of data when it generates,
// and writes pseudo_labels.out (default STAGE_DIR/pseudo_labels.h5) for later stages.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/topk.h"
#include "runtime/base/log.h"
#include "runtime/train/losses.h"
#include "runtime/store/model_io.h"
#include "stages/pseudo_label.h"
#include "stages/kind.h"

typedef struct {
    kd_task inner;          // the document task (rows, masks)
    kd_doc_task *docs;
    kd_model *teacher;      // online teacher or NULL
    kd_topk *cache;         // cached teacher or NULL
    const char *path;       // the data file (messages)
    int K;
    const kd_kd_loss *loss;
    const kd_ops *ops;
    int V;
    // last fill (for the teacher forward and the cache rows of a micro-batch)
    const int32_t *last_ids, *last_seg;
    // backend scratch
    float *w_dev, *loss_dev, *ce_grad;
    float *wk_dev, *wk, *lrow;  // loss.normalize != token: divergence weights (device, host), row losses
    int G;                      // rows of the global batch (the batchmean / sequence divisor)
    int32_t *tg_dev, *ids_dev;
    float *lp_dev;
    int32_t *kid_dev;
    kd_scratch ws;          // the loss kernel's scratch
    kd_model *student;      // on-policy (lmbda > 0): the model that writes the answers
    float lmbda;
    kd_onpolicy_cfg oc;
    size_t cap;             // positions
    // host scratch for cached rows
    int32_t *kid;
    float *klp;
} kd_task_ctx;

enum { X_KL = 0, X_CE, X_TEACHER_CE };

// Frees the per-position buffers (device and host scratch); ensure reallocates them.
static void free_buffers(kd_task_ctx *c) {
    const kd_ops *o = c->ops;
    if (c->cap) {
        o->mem->free(o->ctx, c->w_dev), o->mem->free(o->ctx, c->loss_dev), o->mem->free(o->ctx, c->tg_dev);
        if (c->ce_grad) o->mem->free(o->ctx, c->ce_grad);
        if (c->lp_dev) o->mem->free(o->ctx, c->lp_dev), o->mem->free(o->ctx, c->kid_dev);
        o->mem->free(o->ctx, c->ws.p);
        if (c->wk_dev) o->mem->free(o->ctx, c->wk_dev);
    }
    free(c->kid), free(c->klp), free(c->wk), free(c->lrow);
    c->wk_dev = c->wk = c->lrow = NULL;
}

static void ensure(kd_task_ctx *c, size_t N) {
    if (N <= c->cap) return;
    free_buffers(c);
    const kd_ops *o = c->ops;
    c->w_dev = o->mem->alloc(o->ctx, N * sizeof(float));
    c->loss_dev = o->mem->alloc(o->ctx, N * sizeof(float));
    c->tg_dev = o->mem->alloc(o->ctx, N * sizeof(int32_t));
    c->ce_grad = c->loss->ce > 0 ? o->mem->alloc(o->ctx, N * (size_t)c->V * sizeof(float)) : NULL;
    c->lp_dev = c->K ? o->mem->alloc(o->ctx, N * (size_t)c->K * sizeof(float)) : NULL;
    c->kid_dev = c->K ? o->mem->alloc(o->ctx, N * (size_t)c->K * sizeof(int32_t)) : NULL;
    c->kid = c->K ? kd_malloc(N * (size_t)c->K * sizeof(int32_t)) : NULL;
    c->klp = c->K ? kd_malloc(N * (size_t)c->K * sizeof(float)) : NULL;
    c->ws.bytes = c->K ? o->losses->distill_topk_scratch(o->ctx, (int)N, c->V, c->K)
                       : o->losses->distill_full_scratch(o->ctx, (int)N, c->V);
    c->ws.p = o->mem->alloc(o->ctx, c->ws.bytes);
    if (c->loss->normalize != KD_NORM_TOKEN) {
        c->wk_dev = o->mem->alloc(o->ctx, N * sizeof(float));
        c->wk = kd_malloc(N * sizeof(float)), c->lrow = kd_malloc(N * sizeof(float));
    }
    c->cap = N;
}

static double sum_dev(kd_task_ctx *c, const float *dev, size_t N) {
    float *h = kd_malloc(N * sizeof(float));
    c->ops->mem->download(c->ops->ctx, h, dev, N * sizeof(float));
    double s = 0;
    for (size_t i = 0; i < N; i++) s += h[i];
    free(h);
    return s;
}

static int kd_fill(void *vctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets, float *w,
                   int32_t *seg, int *used_seg, kd_error *err) {
    kd_task_ctx *c = vctx;
    int rc = c->inner.fill(c->inner.ctx, pos, n, T, ids, targets, w, seg, used_seg, err);
    c->last_ids = ids, c->last_seg = seg;
    // the rank's rows start at global position step * G + rank * (G / ranks): pos[0] / G is the step
    if (!rc && n > 0 && kd_onpolicy_step(c->oc.seed, pos[0] / (uint64_t)c->G, c->lmbda))
        rc = kd_onpolicy_rows(c->student, &c->oc, pos, n, T, ids, targets, w, *used_seg ? seg : NULL, err);
    return rc;
}

// Cached top-K rows for the positions of the micro-batch starting at ids (host -> c->kid/klp).
static int load_cache_rows(kd_task_ctx *c, const int32_t *ids, size_t N, kd_error *err) {
    const int64_t *src = kd_doc_task_sources(c->docs, ids);
    size_t K = (size_t)c->K;
    for (size_t i = 0; i < N;) {
        if (src[i] < 0) {  // padding: any valid row (its weight is 0)
            for (size_t k = 0; k < K; k++) c->kid[i * K + k] = (int32_t)k, c->klp[i * K + k] = -30.0f;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < N && src[j] == src[j - 1] + 1) j++;
        int rc = kd_topk_read(c->cache, (uint64_t)src[i], j - i, c->kid + i * K, c->klp + i * K, err);
        // the loss kernels index the logits by these ids: in range and distinct, checked here
        char where[KD_PATH_MAX + 64];
        snprintf(where, sizeof where, "%s: /topk_ids, /topk_logprobs rows from %lld", c->path, (long long)src[i]);
        if (!rc) rc = kd_losses_check_topk(c->kid + i * K, c->klp + i * K, (int)(j - i), c->K, c->V, where, err);
        if (rc) return rc;
        i = j;
    }
    return KD_OK;
}

// The teacher divergence of the micro-batch (student logits S, online teacher logits Tl or
// the cache); with want_grad its gradient overwrites S. *kl gets the per-token weighted sum
// (the `kl` metric, whatever loss.normalize says); *kl_loss the sum that enters the loss,
// scaled so the trainer's division by the step's target weight yields the recipe's
// normalisation (docs/losses.md). Held-out evaluation (no gradient) is always per token.
static int divergence_term(kd_task_ctx *c, float *S, const float *Tl, const int32_t *ids, const int32_t *targets,
                           const float *w, int n, int T, float dscale, int want_grad, double *kl, double *kl_loss,
                           kd_error *err) {
    const kd_ops *o = c->ops;
    const kd_kd_loss *L = c->loss;
    size_t N = (size_t)n * T;
    int V = c->V, renorm = want_grad && L->normalize != KD_NORM_TOKEN && dscale > 0;
    const float *wd = c->w_dev;
    float ks = dscale;  // the divergence's gradient scale before the kl weight
    if (renorm) {
        ks = kd_losses_kd_norm(L->normalize, targets, w, n, T, c->G, dscale, c->wk);
        o->mem->upload(o->ctx, c->wk_dev, c->wk, N * sizeof(float));
        wd = c->wk_dev;
    }
    if (c->cache) {
        int rc = load_cache_rows(c, ids, N, err);
        if (rc) return rc;
        o->mem->upload(o->ctx, c->kid_dev, c->kid, N * (size_t)c->K * sizeof(int32_t));
        o->mem->upload(o->ctx, c->lp_dev, c->klp, N * (size_t)c->K * sizeof(float));
        o->losses->distill_topk(o->ctx, c->loss_dev, want_grad ? S : NULL, S, c->kid_dev, c->lp_dev, wd, (int)N, V, c->K,
                        KD_TOPK_TAIL, L->temperature, ks * L->kl, c->ws);
    } else if (Tl) {
        o->losses->distill_full(o->ctx, c->loss_dev, want_grad ? S : NULL, S, Tl, wd, (int)N, V, L->divergence, L->beta,
                        L->temperature, ks * L->kl, c->ws);
    } else {  // CE only (kl 0): no teacher is loaded while training; the logits keep their CE gradient below
        if (want_grad) o->mem->zero(o->ctx, S, N * (size_t)V * sizeof(float));
        o->mem->zero(o->ctx, c->loss_dev, N * sizeof(float));
    }
    if (!renorm) {
        *kl = *kl_loss = sum_dev(c, c->loss_dev, N);
        return KD_OK;
    }
    // row losses are wk_i * D_i: the metric re-weights them by w_i / wk_i, the loss by
    // ks / dscale (the trainer divides it by the step's target weight, 1 / dscale)
    o->mem->download(o->ctx, c->lrow, c->loss_dev, N * sizeof(float));
    double s = 0, m = 0;
    for (size_t i = 0; i < N; i++) {
        s += c->lrow[i];
        if (c->wk[i] > 0) m += (double)c->lrow[i] * ((double)w[i] / c->wk[i]);
    }
    *kl = m, *kl_loss = s * ((double)ks / dscale);
    return KD_OK;
}

// Loss head on the student logits of the last forward (rows of the micro-batch at ids).
static int kd_head(kd_task_ctx *c, kd_model *m, const int32_t *ids, const int32_t *seg, const int32_t *targets,
                   const float *w, int n, int T, float dscale, int want_grad, double *loss_sum, double *extra,
                   kd_error *err) {
    const kd_ops *o = c->ops;
    size_t N = (size_t)n * T;
    int V = c->V;
    ensure(c, N);
    o->mem->upload(o->ctx, c->tg_dev, targets, N * sizeof(int32_t));
    o->mem->upload(o->ctx, c->w_dev, w, N * sizeof(float));
    float *S = kd_model_logits(m);
    const kd_kd_loss *L = c->loss;
    const float *Tl = NULL;
    if (c->teacher) {
        int rc = kd_model_forward(c->teacher, ids, NULL, seg, n, T, err);
        if (rc) return rc;
        Tl = kd_model_logits(c->teacher);
        o->nn->cross_entropy(o->ctx, c->loss_dev, NULL, Tl, c->tg_dev, c->w_dev, (int)N, V, 0.0f);
        extra[X_TEACHER_CE] += sum_dev(c, c->loss_dev, N);
    }
    // student CE (its gradient into ce_grad when it is part of the loss)
    int ce_grad = want_grad && L->ce > 0;
    o->nn->cross_entropy(o->ctx, c->loss_dev, ce_grad ? c->ce_grad : NULL, S, c->tg_dev, c->w_dev, (int)N, V, dscale * L->ce);
    double ce = sum_dev(c, c->loss_dev, N);
    extra[X_CE] += ce;
    // teacher divergence (its gradient overwrites the logits)
    double kl = 0, kl_loss = 0;
    int rc = divergence_term(c, S, Tl, ids, targets, w, n, T, dscale, want_grad, &kl, &kl_loss, err);
    if (rc) return rc;
    extra[X_KL] += kl;
    if (ce_grad) o->vec->axpy(o->ctx, S, 1.0f, c->ce_grad, N * (size_t)V);
    *loss_sum += L->kl * kl_loss + L->ce * ce;
    return KD_OK;
}

static int kd_step(void *vctx, kd_model *m, const int32_t *ids, const int32_t *targets, const float *w,
                   const int32_t *seg, int n, int T, float dscale, double *loss_sum, double *extra, kd_error *err) {
    kd_task_ctx *c = vctx;
    int rc = kd_model_forward(m, ids, NULL, seg, n, T, err);
    if (!rc) rc = kd_head(c, m, ids, seg, targets, w, n, T, dscale, 1, loss_sum, extra, err);
    if (!rc) kd_model_backward(m);
    return rc;
}

// Evaluation loss head (no gradient): the trainer did the student forward; the rows are
// those of the last fill.
static double kd_eval_loss(void *vctx, kd_model *m, const int32_t *targets, const float *w, int n, int T,
                           float dscale, int want_grad, double *extra) {
    (void)dscale, (void)want_grad;
    kd_task_ctx *c = vctx;
    double loss = 0;
    kd_error err = {0};
    if (kd_head(c, m, c->last_ids, c->last_seg, targets, w, n, T, 0.0f, 0, &loss, extra, &err))
        kd_log_warn("kd evaluation: %s", err.msg);
    return loss;
}

static void ctx_free(kd_task_ctx *c) {
    free_buffers(c);
    kd_topk_close(c->cache);
    kd_doc_task_free(c->docs);
    memset(c, 0, sizeof *c);
}

static int open_task(kd_task_ctx *c, const char *path, const kd_stage_ctx *ctx, int shuffle, int use_cache,
                     kd_task *task, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    c->ops = ctx->ops;
    c->path = path;
    c->V = kd_model_cfg(ctx->model)->vocab_size;
    c->loss = &sp->kd.loss;
    c->G = sp->batch.global;
    int rc = kd_doc_task_open(&c->docs, path, c->V, sp->batch.seq_len, ctx->recipe->run.seed, shuffle, 1,
                              sp->kd.mask_prompt, &c->inner, err);
    if (rc) return rc;
    if (use_cache) {
        uint64_t n = kd_dataset_get_info(kd_doc_task_dataset(c->docs))->n_tokens;
        if ((rc = kd_topk_open(&c->cache, path, n, &c->K, err))) return rc;
    }
    *task = (kd_task){.ctx = c, .fill = kd_fill, .step = kd_step, .loss = kd_eval_loss, .n_samples = c->inner.n_samples,
                      .n_extra = 3, .extra_names = {"kl", "student_ce", "teacher_ce"}};
    return KD_OK;
}

static int check_topk_divergence(const kd_recipe *r, const kd_stage_spec *s, kd_error *err);

int kd_stage_kd(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    const kd_pseudo_labels *pl = &sp->kd.pseudo_labels;
    int rank = kd_comm_rank(ctx->comm);
    const char *data = sp->data;
    kd_model *teacher = NULL;
    int rc = KD_OK;

    // ---- 1. pseudo-labels (skipped when the published file already exists)
    if (pl->generate) {
        data = pl->out;
        int have = access(pl->out, R_OK) == 0;
        kd_comm_bcast(ctx->comm, &have, sizeof have);
        if (!have) {
            rc = ctx->get_teacher(ctx->run, &teacher, err);
            kd_gen_params gp;
            kd_gen_params_default(&gp);
            gp.max_new_tokens = pl->max_new_tokens, gp.temperature = pl->temperature, gp.top_k = pl->top_k;
            gp.top_p = pl->top_p, gp.seed = ctx->recipe->run.seed, gp.batch = sp->batch.micro;
            char work[2 * KD_PATH_MAX + 16];
            snprintf(work, sizeof work, "%s/pseudo_work", ctx->stage_dir);
            if (!rc) rc = kd_pseudo_label(ctx->comm, teacher, pl->prompts, pl->out, &gp, work, pl->top_k_logits, err);
            if (rc) return rc;
        } else if (rank == 0 && !ctx->quiet) {
            kd_log_info("kd: pseudo-labels already generated: %s", pl->out);
        }
    }

    // ---- 2. training: cached top-K teacher or online teacher
    int use_cache = sp->kd.use_topk_cache && kd_topk_present(data) && sp->kd.loss.kl > 0;
    if (use_cache && (rc = check_topk_divergence(ctx->recipe, sp, err))) return rc;
    if (use_cache && ctx->drop_teacher) ctx->drop_teacher(ctx->run);  // not held while training
    teacher = NULL;
    if (!use_cache && sp->kd.loss.kl > 0 && (rc = ctx->get_teacher(ctx->run, &teacher, err))) return rc;
    if (teacher && kd_model_cfg(teacher)->vocab_size != kd_model_cfg(ctx->model)->vocab_size)
        return kd_fail(err, KD_EINPUT, "kd: teacher vocab_size %d differs from the student's %d: they must share "
                       "the tokenizer", kd_model_cfg(teacher)->vocab_size, kd_model_cfg(ctx->model)->vocab_size);
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_stage_trainer_cfg(ctx, &tc, attrs);
    kd_task_ctx train, ev;
    memset(&train, 0, sizeof train);
    memset(&ev, 0, sizeof ev);
    train.teacher = use_cache ? NULL : teacher;
    rc = open_task(&train, data, ctx, 1, use_cache, &tc.task, err);
    if (!rc && sp->kd.lmbda > 0) {  // on-policy steps: the student answers the prompts
        train.student = ctx->model, train.lmbda = sp->kd.lmbda;
        train.oc = (kd_onpolicy_cfg){.seed = ctx->recipe->run.seed, .temperature = sp->kd.onpolicy_temperature,
                                     .max_new_tokens = sp->kd.onpolicy_max_new_tokens,
                                     .eos_id = kd_dataset_get_info(kd_doc_task_dataset(train.docs))->eos_id};
    }
    if (!rc && rank == 0 && !ctx->quiet)
        kd_log_info("kd: %llu rows from %s; teacher %s; loss %g*KL(T=%g) + %g*CE", (unsigned long long)tc.task.n_samples,
                    data, use_cache ? "from the top-K cache (not in memory)" : "online", sp->kd.loss.kl,
                    sp->kd.loss.temperature, sp->kd.loss.ce);
    // Periodic held-out evaluation (eval_every) against the full teacher: the online one, or
    // with kl 0 the teacher loaded for evaluation only. With the top-K cache the teacher is
    // not held while training, so those evaluations report the student CE alone.
    if (!rc && sp->eval_every > 0 && sp->eval_data[0]) {
        if (!use_cache && !teacher) rc = ctx->get_teacher(ctx->run, &teacher, err);
        ev.teacher = use_cache ? NULL : teacher;
        if (!rc) rc = open_task(&ev, sp->eval_data, ctx, 0, 0, &tc.eval_task, err);
        if (!rc && use_cache) tc.eval_task.extra_names[X_KL] = tc.eval_task.extra_names[X_TEACHER_CE] = NULL;
    }
    if (!rc) rc = kd_trainer_run(&tc, ctx->progress, err);
    ctx_free(&train);

    // ---- 3. held-out metrics against the full teacher
    ctx->eval_loss = NAN;
    if (!rc && sp->eval_data[0]) {
        if (!teacher || use_cache) rc = ctx->get_teacher(ctx->run, &teacher, err);
        if (!rc && ev.teacher != teacher) {  // (re)open with the full teacher
            ctx_free(&ev);
            ev.teacher = teacher;
            rc = open_task(&ev, sp->eval_data, ctx, 0, 0, &tc.eval_task, err);
        }
        double extra[KD_TASK_MAX_EXTRA] = {0}, loss = 0;
        if (!rc) rc = kd_trainer_evaluate(&tc, tc.eval_task.n_samples, &loss, extra, err);
        if (!rc) {
            ctx->eval_loss = extra[X_CE];
            if (rank == 0) {
                kd_log_info("kd: held-out: kl %.6f, student ce %.6f, teacher ce %.6f", extra[X_KL], extra[X_CE],
                            extra[X_TEACHER_CE]);
                char path[2 * KD_PATH_MAX + 16];
                snprintf(path, sizeof path, "%s/eval.json", ctx->stage_dir);
                FILE *f = fopen(path, "w");
                if (f) {
                    fprintf(f, "{\"kl\": %.9g, \"student_ce\": %.9g, \"teacher_ce\": %.9g}\n", extra[X_KL],
                            extra[X_CE], extra[X_TEACHER_CE]);
                    fclose(f);
                }
            }
        }
    }
    ctx_free(&ev);
    return rc;
}

// ----------------------------------------------------------------------------- recipe rules

const char *kd_stage_kd_input(const kd_stage_spec *s, const char **key) {
    *key = s->kd.pseudo_labels.generate ? "pseudo_labels.prompts" : "data";
    return s->kd.pseudo_labels.generate ? s->kd.pseudo_labels.prompts : s->data;
}

const char *kd_stage_kd_output(const kd_stage_spec *s) {
    return s->kd.pseudo_labels.generate ? s->kd.pseudo_labels.out : NULL;
}

int kd_stage_kd_check(kd_recipe_checker *c, kd_recipe *r, int i) {
    kd_pseudo_labels *pl = &r->stages[i].kd.pseudo_labels;
    if (pl->generate && !pl->prompts[0]) {
        char q[64];
        snprintf(q, sizeof q, "stages[%d].pseudo_labels", i);
        return kd_recipe_bad(c, q, "missing required key 'prompts' (generate is true)");
    }
    const kd_kd_loss *L = &r->stages[i].kd.loss;
    if (pl->generate && pl->top_k_logits > 0 && r->stages[i].kd.use_topk_cache && L->kl > 0 &&
        L->divergence != KD_DIV_FORWARD_KL) {
        static const char *names[] = {"forward", "reverse", "jsd"};
        char q[64];
        snprintf(q, sizeof q, "stages[%d].loss.divergence", i);
        return kd_recipe_bad(c, q, "'%s' cannot be used with the cached top-K teacher that pseudo_labels.top_k_logits "
                             "writes (it gives forward KL only): set use_topk_cache: false to distil from the online "
                             "teacher, or divergence: forward", names[L->divergence]);
    }
    const kd_kd_spec *k = &r->stages[i].kd;
    char q[64];
    snprintf(q, sizeof q, "stages[%d].lmbda", i);
    if (k->lmbda > 0 && !(L->kl > 0))
        return kd_recipe_bad(c, q, "on-policy distillation (lmbda > 0) needs the teacher divergence: loss.kl > 0");
    if (k->lmbda > 0 && pl->generate && pl->top_k_logits > 0 && k->use_topk_cache)
        return kd_recipe_bad(c, q, "on-policy distillation needs the online teacher on the student's own tokens, "
                             "not the cached top-K of pseudo_labels.top_k_logits: set use_topk_cache: false");
    if (!pl->out[0]) {
        char dir[KD_PATH_MAX];
        kd_recipe_stage_dir(r, i, dir, sizeof dir);
        snprintf(pl->out, sizeof pl->out, "%s/pseudo_labels.h5", dir);
    }
    return KD_OK;
}

// The cached top-K path computes forward KL only (docs/losses.md section 2): a stage that
// would read a cache (its pseudo-labels keep top_k_logits, or its data carries one) with
// use_topk_cache on and another divergence is refused rather than silently distilled with
// forward KL.
static int check_topk_divergence(const kd_recipe *r, const kd_stage_spec *s, kd_error *err) {
    const kd_pseudo_labels *pl = &s->kd.pseudo_labels;
    int online = s->kd.loss.divergence != KD_DIV_FORWARD_KL || s->kd.lmbda > 0;  // needs the online teacher
    if (!s->kd.use_topk_cache || !(s->kd.loss.kl > 0) || !online) return KD_OK;
    const char *data = pl->generate ? pl->out : s->data;
    int cached = pl->generate ? pl->top_k_logits > 0 : (data[0] && access(data, R_OK) == 0 && kd_topk_present(data));
    if (!cached) return KD_OK;
    static const char *names[] = {"forward", "reverse", "jsd"};
    if (s->kd.loss.divergence == KD_DIV_FORWARD_KL)
        return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.lmbda: on-policy distillation needs the online teacher, "
                       "not the cached top-K teacher of %s: set use_topk_cache: false", r->path, s->line, s->name,
                       pl->generate ? "pseudo_labels.top_k_logits" : data);
    return kd_fail(err, KD_EINPUT,
                   "%s:%d: stages.%s.loss.divergence: '%s' cannot be used with the cached top-K teacher of %s "
                   "(it gives forward KL only): set use_topk_cache: false to distil from the online teacher, "
                   "or divergence: forward", r->path, s->line, s->name, names[s->kd.loss.divergence],
                   pl->generate ? "pseudo_labels.top_k_logits" : data);
}

int kd_stage_kd_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err) {
    const kd_stage_spec *s = &r->stages[i];
    int rc = check_topk_divergence(r, s, err);
    if (rc) return rc;
    if (s->kd.pseudo_labels.generate && s->kd.pseudo_labels.top_k_logits > mc->vocab_size)
        return kd_fail(err, KD_EINPUT,
                       "%s:%d: stages.%s.pseudo_labels.top_k_logits: expected at most "
                       "vocab_size (%d), found %d",
                       r->path, s->line, s->name, mc->vocab_size, s->kd.pseudo_labels.top_k_logits);
    return KD_OK;
}

void kd_stage_kd_hash(kd_strbuf *b, const kd_recipe *r, int i) {
    const kd_pseudo_labels *pl = &r->stages[i].kd.pseudo_labels;
    kd_strbuf_printf(b, "  pseudo_labels: %d ", pl->generate);
    kd_recipe_emit_str(b, pl->prompts);
    kd_recipe_emit_str(b, pl->out);
    kd_strbuf_printf(b, "\n");
}
