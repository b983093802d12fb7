// optim.c: AdamW over the rank's shard, the learning-rate schedule, gradient clipping and
// freezing (optim.h).
#include "runtime/train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "runtime/base/log.h"

void kd_optim_init(kd_optimizer *o, const kd_ops *ops, const kd_param_table *pt,
                   const kd_optim *spec, int total_steps, size_t lo, size_t hi,
                   char (*freeze)[128], int n_freeze, int *n_frozen) {
    o->spec = *spec;
    o->total_steps = total_steps;
    o->lo = lo, o->hi = hi;
    o->ops = ops;
    o->pt = pt;
    o->t = 0;
    size_t n = hi - lo;
    o->m = ops->mem->alloc(ops->ctx, n * sizeof(float));
    o->v = ops->mem->alloc(ops->ctx, n * sizeof(float));
    o->gshard = ops->mem->alloc(ops->ctx, n * sizeof(float));
    o->gshard_owned = 1;
    o->frozen = kd_calloc((size_t)pt->n, 1);
    int nf = 0;
    for (int i = 0; i < pt->n; i++)
        for (int g = 0; g < n_freeze; g++)
            if (kd_glob_match(freeze[g], pt->t[i].name)) {
                o->frozen[i] = 1;
                nf++;
                break;
            }
    if (n_frozen) *n_frozen = nf;
}

void kd_optim_free(kd_optimizer *o) {
    if (!o->ops) return;
    o->ops->mem->free(o->ops->ctx, o->m);
    o->ops->mem->free(o->ops->ctx, o->v);
    if (o->gshard_owned) o->ops->mem->free(o->ops->ctx, o->gshard);
    free(o->frozen);
    o->ops = NULL;
}

// Linear warmup over spec.warmup steps, then decay from lr to lr*min_lr_ratio over the
// remaining steps (cosine or linear), or constant.
static float schedule_lr(const kd_optim *s, int step, int total) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->schedule == KD_SCHED_CONSTANT) return s->lr;
    int span = total - s->warmup;
    double frac = span > 1 ? (double)(step - s->warmup) / (double)(span - 1) : 1.0;
    if (frac > 1) frac = 1;
    double min_lr = s->lr * s->min_lr_ratio;
    double k = s->schedule == KD_SCHED_COSINE ? 0.5 * (1.0 + cos(M_PI * frac)) : 1.0 - frac;
    return (float)(min_lr + (s->lr - min_lr) * k);
}

float kd_optim_lr(const kd_optimizer *o, int64_t step) {
    return schedule_lr(&o->spec, (int)step, o->total_steps);
}

// Calls fn(i, a, b) for each tensor i intersecting the shard, with [a, b) the global range.
#define FOR_SHARD_TENSORS(o, body)                                                     \
    for (int i = 0; i < (o)->pt->n; i++) {                                             \
        const kd_param_info *p_ = &(o)->pt->t[i];                                      \
        size_t a = p_->offset > (o)->lo ? p_->offset : (o)->lo;                        \
        size_t b = p_->offset + p_->numel < (o)->hi ? p_->offset + p_->numel : (o)->hi; \
        if (a >= b || (o)->frozen[i]) continue;                                         \
        body                                                                           \
    }

double kd_optim_shard_sumsq(const kd_optimizer *o) {
    double s = 0;
    FOR_SHARD_TENSORS(o, { s += o->ops->vec->sumsq(o->ops->ctx, o->gshard + (a - o->lo), b - a); })
    return s;
}

float kd_optim_step(kd_optimizer *o, float *params, int64_t step, double gnorm) {
    float lr = kd_optim_lr(o, step), clip = o->spec.grad_clip;
    float gscale = (clip > 0 && gnorm > clip) ? (float)(clip / gnorm) : 1.0f;
    o->t++;
    FOR_SHARD_TENSORS(o, {
        float wd = p_->decay ? o->spec.weight_decay : 0.0f;
        size_t k = a - o->lo;
        o->ops->optim->adamw(o->ops->ctx, params + a, o->gshard + k, o->m + k, o->v + k, b - a, lr,
                             o->spec.beta1, o->spec.beta2, o->spec.eps, wd, o->t, gscale);
    })
    return lr;
}

void kd_optim_use_grads(kd_optimizer *o, float *grads) {
    KD_ASSERT(o->lo == 0 && o->hi == o->pt->total);
    if (o->gshard_owned) o->ops->mem->free(o->ops->ctx, o->gshard);
    o->gshard = grads, o->gshard_owned = 0;
}

size_t kd_optim_trainable(const kd_optimizer *o) {
    size_t n = 0;
    for (int i = 0; i < o->pt->n; i++)
        if (!o->frozen[i]) n += o->pt->t[i].numel;
    return n;
}

void kd_optim_log_settings(const kd_optimizer *o) {
    const kd_optim *s = &o->spec;
    kd_log_kv("lr", "%g (%s, warmup %d, min ratio %g)", s->lr, kd_schedule_name(s->schedule),
              s->warmup, s->min_lr_ratio);
    kd_log_kv("adamw", "betas (%g, %g), eps %g, weight decay %g", s->beta1, s->beta2, s->eps,
              s->weight_decay);
    kd_log_kv("grad clip", "%g", s->grad_clip);
}
