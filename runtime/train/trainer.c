// trainer.c: the step loop (trainer.h): the plan of a stage on this world, one optimizer
// step (this rank's slice of the global batch, micro-batches, gradient reduce-scatter, the
// optimizer's update, parameter all-gather), the loop around it, and the held-out
// evaluation. Checkpoints are in trainer_ckpt.c, logging in trainer_log.c, stop decisions
// and test hooks in trainer_stop.c (shared state: trainer_internal.h).
#include "runtime/train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/log.h"
#include "runtime/base/signals.h"
#include "runtime/train/trainer_internal.h"

// ----------------------------------------------------------------------------- setup

static void batch_alloc(kd_host_batch *b, size_t n) {
    b->ids = kd_malloc(n * sizeof(int32_t));
    b->targets = kd_malloc(n * sizeof(int32_t));
    b->seg = kd_malloc(n * sizeof(int32_t));
    b->weights = kd_malloc(n * sizeof(float));
}

static void batch_free(kd_host_batch *b) {
    free(b->ids);
    free(b->targets);
    free(b->seg);
    free(b->weights);
}

// The shape of the stage on this world; KD_EINPUT when the global batch does not split
// into whole micro-batches on every rank.
static int plan_stage(const kd_trainer_cfg *cfg, kd_train_plan *p, kd_error *err) {
    const kd_stage_spec *sp = cfg->spec;
    p->rank = kd_comm_rank(cfg->comm), p->world = kd_comm_size(cfg->comm);
    p->G = sp->batch.global, p->mb = sp->batch.micro, p->T = sp->batch.seq_len;
    if (p->G % (p->mb * p->world) != 0)
        return kd_fail(err, KD_EINPUT,
                       "stages.%s.batch: global (%d) must be divisible by micro (%d) x ranks (%d)",
                       sp->name, p->G, p->mb, p->world);
    p->per_rank = p->G / p->world, p->accum = p->per_rank / p->mb;
    kd_shard_range(kd_model_table(cfg->model)->total, p->world, p->rank, &p->lo, &p->hi);
    return KD_OK;
}

static void trainer_close(kd_trainer *tr) {
    free(tr->pos);
    batch_free(&tr->hb);
    kd_trainer_log_close(tr);
    kd_optim_free(&tr->opt);
    kd_grad_comm_free(&tr->gc);
}

// Plan, optimizer, resume (progress *pr may move forward), metrics and settings table,
// batch buffers. On failure everything is released.
static int trainer_open(kd_trainer *tr, const kd_trainer_cfg *cfg, kd_progress *pr, kd_error *err) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg;
    int rc = plan_stage(cfg, &tr->plan, err);
    if (rc) return rc;
    const kd_stage_spec *sp = cfg->spec;
    kd_model *m = cfg->model;
    kd_optim_init(&tr->opt, kd_model_ops(m), kd_model_table(m), &sp->optim, sp->steps, tr->plan.lo,
                  tr->plan.hi, (char(*)[128])sp->freeze, sp->n_freeze, &tr->n_frozen);
    tr->opt.t = (int)pr->step;
    kd_grad_comm_init(&tr->gc, cfg->comm, kd_model_ops(m), kd_model_table(m)->total);
    size_t bounds[KD_MODEL_MAX_LAYERS + 2];
    int nbounds = kd_model_grad_bounds(m, bounds);
    tr->overlap = kd_grad_comm_set_buckets(&tr->gc, bounds, nbounds,
                                           (size_t)(cfg->grad_bucket_mb * 1048576.0 / sizeof(float)));
    // one rank: the optimizer reads the model's gradients where they are (no copy per step)
    if (tr->plan.world == 1) kd_optim_use_grads(&tr->opt, kd_model_grads(m));
    tr->last_saved = -1;
    snprintf(tr->ckpt_root, sizeof tr->ckpt_root, "%s/ckpt", cfg->stage_dir);
    rc = kd_trainer_resume(tr, pr, err);
    if (!rc) rc = kd_trainer_log_open(tr, pr, err);
    if ((rc = kd_comm_agree(cfg->comm, rc, err))) { // metrics.jsonl is rank 0's alone
        trainer_close(tr);
        return rc;
    }
    batch_alloc(&tr->hb, (size_t)tr->plan.per_rank * tr->plan.T);
    tr->pos = kd_malloc(sizeof(uint64_t) * (size_t)tr->plan.per_rank);
    return KD_OK;
}

// ----------------------------------------------------------------------------- one step

// This rank's rows of the next global batch: positions [samples + rank*per_rank, +per_rank)
// of the global sample order. All ranks agree on the outcome.
static int fill_batch(kd_trainer *tr, const kd_progress *pr, int *used_seg, kd_error *err) {
    const kd_task *task = &tr->cfg->task;
    const kd_train_plan *p = &tr->plan;
    kd_host_batch *hb = &tr->hb;
    uint64_t base = pr->samples + (uint64_t)p->rank * (uint64_t)p->per_rank;
    for (int i = 0; i < p->per_rank; i++) tr->pos[i] = base + (uint64_t)i;
    *used_seg = 0;
    int rc = task->fill(task->ctx, tr->pos, p->per_rank, p->T, hb->ids, hb->targets, hb->weights,
                        hb->seg, used_seg, err);
    return kd_comm_agree(tr->cfg->comm, rc, err);
}

// The loss normaliser of this step: the weight of every target of the global batch (one
// allreduce), or the number of units when the task counts samples_per_unit rows as one.
static double batch_weight(const kd_trainer *tr) {
    const kd_task *task = &tr->cfg->task;
    size_t ntok = (size_t)tr->plan.per_rank * tr->plan.T;
    double wlocal = 0;
    for (size_t i = 0; i < ntok; i++) wlocal += tr->hb.targets[i] >= 0 ? tr->hb.weights[i] : 0.0;
    return task->samples_per_unit > 0 ? (double)tr->plan.G / task->samples_per_unit
                                      : kd_comm_sum_f64(tr->cfg->comm, wlocal);
}

static void grads_final(void *gc, size_t lo) {
    kd_grad_comm_ready(gc, lo);
}

// Forward, loss head and backward of each micro-batch (or the task's own micro-step);
// gradients accumulate in the model, scaled by dscale. All ranks agree on the outcome.
static int micro_batches(kd_trainer *tr, int used_seg, float dscale, double *loss_sum,
                         double *extra, kd_error *err) {
    const kd_task *task = &tr->cfg->task;
    const kd_train_plan *p = &tr->plan;
    kd_host_batch *hb = &tr->hb;
    kd_model *m = tr->cfg->model;
    int mb = p->mb, T = p->T, rc = KD_OK;
    kd_model_zero_grad(m);
    if (tr->overlap) kd_grad_comm_begin(&tr->gc, kd_model_grads(m), tr->opt.gshard);
    for (int k = 0; k < p->accum && rc == KD_OK; k++) {
        size_t off = (size_t)k * mb * T;
        const int32_t *segp = used_seg ? hb->seg + off : NULL;
        // the last micro-batch's backward starts the gradient buckets as layers finish
        if (tr->overlap && k == p->accum - 1) kd_model_on_grads_final(m, grads_final, &tr->gc);
        if (task->step) {
            rc = task->step(task->ctx, m, hb->ids + off, hb->targets + off, hb->weights + off, segp,
                            mb, T, dscale, loss_sum, extra, err);
        } else {
            rc = kd_model_forward(m, hb->ids + off, NULL, segp, mb, T, err);
            if (!rc) {
                *loss_sum += task->loss(task->ctx, m, hb->targets + off, hb->weights + off, mb, T,
                                        dscale, 1, extra);
                kd_model_backward(m);
            }
        }
    }
    if (tr->overlap) { // every rank, failed or not, so that every rank starts every bucket
        kd_model_on_grads_final(m, NULL, NULL);
        kd_grad_comm_finish(&tr->gc);
    }
    return kd_comm_agree(tr->cfg->comm, rc, err);
}

// Gradients reduce-scattered into the optimizer's shard (unless the buckets did it during
// the backward, or one rank's optimizer reads them in place), the global loss and gradient norm,
// then the optimizer's update (learning rate and clipping are its own) and the parameter
// all-gather; a non-finite loss or norm skips the update on every rank alike.
static void reduce_and_update(kd_trainer *tr, kd_progress *pr, double loss_sum, double wtotal,
                              kd_step_result *res) {
    kd_comm *comm = tr->cfg->comm;
    kd_model *m = tr->cfg->model;
    double w = wtotal > 0 ? wtotal : 1;
    if (!tr->overlap && tr->plan.world > 1)
        kd_grad_comm_reduce_scatter(&tr->gc, kd_model_grads(m), tr->opt.gshard);
    double gn2 = kd_comm_sum_f64(comm, kd_optim_shard_sumsq(&tr->opt));
    res->loss = kd_comm_sum_f64(comm, loss_sum) / w;
    for (int x = 0; x < tr->cfg->task.n_extra; x++)
        res->extra[x] = kd_comm_sum_f64(comm, res->extra[x]) / w;
    res->gnorm = sqrt(gn2);
    res->lr = kd_optim_lr(&tr->opt, pr->step);
    res->finite = isfinite(res->gnorm) && isfinite(res->loss);
    if (res->finite) {
        kd_optim_step(&tr->opt, kd_model_params(m), pr->step, res->gnorm);
        kd_grad_comm_allgather(&tr->gc, kd_model_params(m));
        pr->bad_steps = 0;
    } else {
        pr->bad_steps++;
        pr->skipped_total++;
        if (tr->plan.rank == 0)
            kd_log_warn("step %lld: non-finite loss or gradient norm (loss %g, grad norm %g): "
                        "update skipped (%d in a row)",
                        (long long)pr->step + 1, res->loss, res->gnorm, pr->bad_steps);
    }
}

// One optimizer step; on success pr has moved one step (and G samples) forward.
static int train_step(kd_trainer *tr, kd_progress *pr, kd_step_result *res, kd_error *err) {
    const kd_train_plan *p = &tr->plan;
    kd_comm_set_step(tr->cfg->comm, (long)pr->step + 1);
    if (pr->step > 0) kd_trainer_test_step_delay();
    int used_seg = 0;
    int rc = fill_batch(tr, pr, &used_seg, err);
    if (rc) return rc;
    kd_trainer_trace_samples(pr->step + 1, p->rank, p->world, tr->pos, p->per_rank);
    double wtotal = batch_weight(tr);
    float dscale = wtotal > 0 ? (float)(1.0 / wtotal) : 0.0f;
    double loss_sum = 0;
    memset(res, 0, sizeof *res);
    if ((rc = micro_batches(tr, used_seg, dscale, &loss_sum, res->extra, err))) return rc;
    reduce_and_update(tr, pr, loss_sum, wtotal, res);
    pr->step++;
    pr->samples += (uint64_t)p->G;
    return KD_OK;
}

// ----------------------------------------------------------------------------- the loop

int kd_trainer_run(const kd_trainer_cfg *cfg, kd_progress *pr, kd_error *err) {
    kd_trainer tr;
    int rc = trainer_open(&tr, cfg, pr, err);
    if (rc) return rc;
    while (rc == KD_OK && pr->step < cfg->spec->steps) {
        kd_step_result res;
        if ((rc = train_step(&tr, pr, &res, err))) break;
        if ((rc = kd_trainer_check_bad_steps(&tr, pr, err))) break;
        kd_trainer_log_step(&tr, pr, &res);
        if ((rc = kd_trainer_periodic_eval(&tr, pr, err))) break;
        rc = kd_trainer_step_boundary(&tr, pr, err);
    }
    if (rc == KD_OK && tr.last_saved != pr->step) rc = kd_trainer_save(&tr, pr, err);
    trainer_close(&tr);
    return rc;
}

// ----------------------------------------------------------------------------- evaluation

int kd_trainer_evaluate(const kd_trainer_cfg *cfg, uint64_t n_samples, double *mean_loss,
                        double *extra_out, kd_error *err) {
    const kd_stage_spec *sp = cfg->spec;
    kd_comm *comm = cfg->comm;
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    int mb = sp->batch.micro, T = sp->batch.seq_len;
    size_t lo, hi;
    kd_shard_range(n_samples, world, rank, &lo, &hi);
    kd_host_batch hb;
    batch_alloc(&hb, (size_t)mb * T);
    uint64_t *pos = kd_malloc(sizeof(uint64_t) * (size_t)mb);
    double loss_sum = 0, wsum = 0, extra[KD_TASK_MAX_EXTRA] = {0};
    int rc = KD_OK;
    // every rank runs the same number of rounds so collectives stay matched; a failed
    // forward is agreed on at the next round (or after the last)
    size_t per = (n_samples + (size_t)world - 1) / (size_t)world;
    size_t rounds = (per + (size_t)mb - 1) / (size_t)mb;
    for (size_t r = 0; r < rounds; r++) {
        size_t a = lo + r * (size_t)mb;
        int n = a < hi ? (int)((hi - a) < (size_t)mb ? (hi - a) : (size_t)mb) : 0;
        for (int i = 0; i < mb; i++) pos[i] = (i < n) ? a + (size_t)i : lo; // padding rows
        int used_seg = 0;
        if (rc == KD_OK && (n > 0 || hi > lo))
            rc = cfg->eval_task.fill(cfg->eval_task.ctx, pos, mb, T, hb.ids, hb.targets, hb.weights,
                                     hb.seg, &used_seg, err);
        if (rc == KD_OK && kd_signals_pending()) // a stop signal ends an evaluation within a batch
            rc = kd_fail(err, KD_EREQUEUE, "evaluation stopped by a signal; run the same command again to resume");
        if ((rc = kd_comm_agree(comm, rc, err))) break;
        if (hi == lo) continue;
        for (size_t i = (size_t)n * T; i < (size_t)mb * T; i++) hb.weights[i] = 0; // padding
        for (size_t i = 0; i < (size_t)n * T; i++) wsum += hb.targets[i] >= 0 ? hb.weights[i] : 0;
        rc = kd_model_forward(cfg->model, hb.ids, NULL, used_seg ? hb.seg : NULL, mb, T, err);
        if (rc == KD_OK)
            loss_sum += cfg->eval_task.loss(cfg->eval_task.ctx, cfg->model, hb.targets, hb.weights,
                                            mb, T, 0.0f, 0, extra);
    }
    free(pos);
    batch_free(&hb);
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    double w = kd_comm_sum_f64(comm, wsum);
    *mean_loss = kd_comm_sum_f64(comm, loss_sum) / (w > 0 ? w : 1);
    for (int x = 0; x < cfg->eval_task.n_extra; x++) {
        double v = kd_comm_sum_f64(comm, extra[x]) / (w > 0 ? w : 1);
        if (extra_out) extra_out[x] = v;
    }
    return KD_OK;
}
