// trainer_log.c: what the trainer tells people (trainer_internal.h): the settings table at
// the start of a stage, one progress line and one metrics.jsonl line every log_every
// steps, and the held-out evaluation every eval_every steps. Every metrics.jsonl line is
// also a TensorBoard event (tags STAGE/KEY, float32) when run.tensorboard is on. Rank 0
// writes; the other ranks only take part in the evaluation's collectives.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/base/attempt.h"
#include "runtime/train/trainer_internal.h"

// The settings table (rank 0, not quiet).
static void log_banner(const kd_trainer *tr, const kd_progress *pr) {
    const kd_trainer_cfg *cfg = tr->cfg;
    const kd_stage_spec *sp = cfg->spec;
    const kd_train_plan *p = &tr->plan;
    const kd_ops *ops = kd_model_ops(cfg->model);
    const kd_param_table *pt = kd_model_table(cfg->model);
    kd_log_table_begin("training");
    kd_log_kv("stage", "%s (%s)", sp->name, kd_stage_kind_name(sp->kind));
    kd_log_kv("ranks", "%d", p->world);
    kd_log_kv("parameters", "%zu (%zu trainable, %d frozen tensors)", pt->total,
              kd_optim_trainable(&tr->opt), tr->n_frozen);
    kd_log_kv("batch", "global %d, micro %d, seq_len %d, accum %d", p->G, p->mb, p->T, p->accum);
    kd_log_kv("tokens per step", "%d", p->G * p->T);
    kd_log_kv("steps", "%d (from %lld)", sp->steps, (long long)pr->step);
    kd_log_kv("samples per epoch", "%llu", (unsigned long long)cfg->task.n_samples);
    kd_optim_log_settings(&tr->opt);
    kd_log_kv("backend", "%s", ops->name);
    if (p->world > 1 && tr->overlap)
        kd_log_kv("collectives", "%s, gradients in %d buckets overlapping the backward",
                  kd_grad_comm_name(&tr->gc), tr->gc.nb);
    else if (p->world > 1)
        kd_log_kv("collectives", "%s", kd_grad_comm_name(&tr->gc));
    kd_log_table_end();
}

// The event file cut back to the resumed step like metrics.jsonl (a killed attempt logged
// steps past its last checkpoint: they are written again, and must not be plotted twice).
static int events_open(kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", tr->cfg->stage_dir, KD_TFEVENTS_FILE);
    int rc = kd_tfevents_truncate_after(path, pr->step, err);
    return rc ? rc : kd_tfevents_open(&tr->log.events, path, err);
}

// metrics.jsonl's line as one event: the same keys under STAGE/, the values as float32 of
// the decimal metrics.jsonl prints (%.9g), so both files say the same number: rounding the
// double straight to float32 differs from it by one ulp near ties.
static void events_write(kd_trainer *tr, int64_t step, const char *const *keys, const double *vals,
                         int n) {
    if (!tr->log.events.f) return;
    char names[5 + KD_TASK_MAX_EXTRA][160];
    const char *tags[5 + KD_TASK_MAX_EXTRA];
    float fv[5 + KD_TASK_MAX_EXTRA];
    for (int i = 0; i < n && i < 5 + KD_TASK_MAX_EXTRA; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", tr->cfg->spec->name, keys[i]);
        char num[40];
        snprintf(num, sizeof num, "%.9g", vals[i]);
        tags[i] = names[i], fv[i] = (float)strtod(num, NULL);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kd_tfevents_scalars(&tr->log.events, step, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec, tags,
                        fv, n < 5 + KD_TASK_MAX_EXTRA ? n : 5 + KD_TASK_MAX_EXTRA);
}

int kd_trainer_log_open(kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    memset(&tr->log, 0, sizeof tr->log);
    if (tr->plan.rank == 0) {
        char path[2048];
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->stage_dir);
        int rc = kd_metrics_truncate_after(path, (long)pr->step, err);
        if (!rc) rc = kd_metrics_open(&tr->log.metrics, path, err);
        if (!rc && cfg->tensorboard) rc = events_open(tr, pr, err);
        if (rc) return rc;
        kd_attempt_note(cfg->stage_dir, tr->plan.world, kd_model_ops(cfg->model)->name, 0); // for observers
        if (!cfg->quiet) log_banner(tr, pr);
    }
    tr->log.t_start = tr->log.t_log = kd_now();
    tr->log.step_log = pr->step;
    return KD_OK;
}

void kd_trainer_log_close(kd_trainer *tr) {
    kd_metrics_close(&tr->log.metrics);
    kd_tfevents_close(&tr->log.events);
}

static void fmt_eta(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)s;
    snprintf(out, n, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
}

void kd_trainer_log_step(kd_trainer *tr, const kd_progress *pr, const kd_step_result *res) {
    const kd_trainer_cfg *cfg = tr->cfg;
    const kd_stage_spec *sp = cfg->spec;
    int last = pr->step == sp->steps, nx = cfg->task.n_extra;
    if (tr->plan.rank != 0 || (pr->step % sp->log_every != 0 && !last)) return;
    kd_train_log *lg = &tr->log;
    int G = tr->plan.G, T = tr->plan.T;
    double now = kd_now();
    double dt = now - lg->t_log;
    double tps = dt > 0 ? (double)(pr->step - lg->step_log) * G * T / dt : 0;
    double elapsed = now - lg->t_start;
    double eta = tps > 0 ? (double)(sp->steps - pr->step) * G * T / tps : 0;
    const char *keys[5 + KD_TASK_MAX_EXTRA] = {"loss", "lr", "grad_norm", "tokens_per_s",
                                               "elapsed_s"};
    double vals[5 + KD_TASK_MAX_EXTRA] = {res->loss, res->lr, res->gnorm, tps, elapsed};
    for (int x = 0; x < nx; x++)
        keys[5 + x] = cfg->task.extra_names[x], vals[5 + x] = res->extra[x];
    kd_metrics_write(&lg->metrics, (long)pr->step, keys, vals, 5 + nx);
    events_write(tr, pr->step, keys, vals, 5 + nx);
    if (!cfg->quiet) {
        char etas[32];
        fmt_eta(eta, etas, sizeof etas);
        printf("%s step %6lld/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | eta %s\n",
               sp->name, (long long)pr->step, sp->steps, res->loss, res->lr, res->gnorm, tps, etas);
        fflush(stdout);
    }
    lg->t_log = now;
    lg->step_log = pr->step;
}

// Held-out evaluation every spec->eval_every steps (not at the last step: the stage
// evaluates at its end). Rank 0 logs eval_loss and eval_<extra> for the eval task's named
// extras (a NULL name is not reported) into metrics.jsonl at this step.
int kd_trainer_periodic_eval(kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    const kd_stage_spec *sp = cfg->spec;
    const kd_task *et = &cfg->eval_task;
    if (sp->eval_every <= 0 || !et->fill || pr->step % sp->eval_every || pr->step >= sp->steps)
        return KD_OK;
    double loss = 0, extra[KD_TASK_MAX_EXTRA] = {0};
    int rc = kd_trainer_evaluate(cfg, et->n_samples, &loss, extra, err);
    if (rc || tr->plan.rank != 0) return rc;
    char names[KD_TASK_MAX_EXTRA][80];
    const char *keys[KD_TASK_MAX_EXTRA + 1] = {"eval_loss"};
    double vals[KD_TASK_MAX_EXTRA + 1] = {loss};
    int nk = 1;
    char line[512];
    int len = snprintf(line, sizeof line, "%s eval   %6lld/%d | held-out loss %.6f", sp->name,
                       (long long)pr->step, sp->steps, loss);
    for (int x = 0; x < et->n_extra; x++) {
        if (!et->extra_names[x]) continue;
        snprintf(names[x], sizeof names[x], "eval_%s", et->extra_names[x]);
        keys[nk] = names[x], vals[nk++] = extra[x];
        if (len < (int)sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len, " | %s %.6f", et->extra_names[x],
                            extra[x]);
    }
    kd_metrics_write(&tr->log.metrics, (long)pr->step, keys, vals, nk);
    events_write(tr, pr->step, keys, vals, nk);
    if (!cfg->quiet) {
        printf("%s\n", line);
        fflush(stdout);
    }
    return KD_OK;
}
