// trainer.c: the step loop (trainer.h).
#include "runtime/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <mpi.h>

#include "runtime/log.h"
#include "runtime/optim.h"
#include "runtime/signals.h"

typedef struct {
    int32_t *ids, *targets, *seg;
    float *weights;
} host_batch;

static void batch_alloc(host_batch *b, size_t n) {
    b->ids = kd_malloc(n * sizeof(int32_t));
    b->targets = kd_malloc(n * sizeof(int32_t));
    b->seg = kd_malloc(n * sizeof(int32_t));
    b->weights = kd_malloc(n * sizeof(float));
}

static void batch_free(host_batch *b) {
    free(b->ids);
    free(b->targets);
    free(b->seg);
    free(b->weights);
}

// ----------------------------------------------------------------------------- checkpoints

typedef struct {
    const kd_trainer_cfg *cfg;
    MPI_Comm mpi;
    kd_optimizer *opt;
    char root[2048];
    int64_t last_saved;
} ckpt_ctx;

static void hex64(uint64_t v, char out[65]) { snprintf(out, 65, "%016llx", (unsigned long long)v); }

static void warn_cb(const char *msg) { kd_log_warn("%s", msg); }

// Host views of backend buffers (the CPU backend's buffers are host memory already).
static float *to_host(const kd_ops *ops, float *p, size_t n, float **tmp) {
    *tmp = NULL;
    if (ops->kind == KD_BACKEND_CPU) return p;
    *tmp = kd_malloc(n * sizeof(float));
    ops->download(*tmp, p, n * sizeof(float));
    return *tmp;
}

static int save_ckpt(ckpt_ctx *c, const kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = c->cfg;
    kd_model *m = cfg->model;
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    kd_train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.stage_index = cfg->stage_index;
    snprintf(ts.stage_name, sizeof ts.stage_name, "%s", cfg->spec->name);
    ts.step = pr->step;
    ts.optim_step = c->opt->t;
    ts.samples_consumed = (int64_t)pr->samples;
    ts.epoch = cfg->task.n_samples ? (int64_t)(pr->samples / cfg->task.n_samples) : 0;
    ts.world_size = kd_comm_size(cfg->comm);
    hex64(cfg->recipe_hash, ts.recipe_hash);
    hex64(cfg->model_hash, ts.model_hash);
    ts.bad_steps = pr->bad_steps;
    ts.n_extra = 1;
    snprintf(ts.extra[0].key, sizeof ts.extra[0].key, "skipped_total");
    snprintf(ts.extra[0].value, sizeof ts.extra[0].value, "%lld", (long long)pr->skipped_total);
    size_t ns = c->opt->hi - c->opt->lo;
    float *tp, *tm, *tv;
    float *hp = to_host(ops, kd_model_params(m), pt->total, &tp);
    float *hm = to_host(ops, c->opt->m, ns, &tm), *hv = to_host(ops, c->opt->v, ns, &tv);
    char path[2048];
    double t0 = kd_now();
    kd_comm_watch_begin(cfg->comm, "checkpoint save");
    int rc = kd_ckpt_save(c->mpi, c->root, pr->step, pt, hp, hm, hv, &ts, cfg->attrs, cfg->n_attrs, path,
                          sizeof path, err);
    kd_comm_watch_end(cfg->comm);
    free(tp), free(tm), free(tv);
    if (rc) {
        kd_error_prefix(err, "checkpoint at step %lld failed (the previous checkpoint is intact): ",
                        (long long)pr->step);
        return KD_ERUNTIME;
    }
    c->last_saved = pr->step;
    if (cfg->final_ckpt) snprintf(cfg->final_ckpt, cfg->final_ckpt_len, "%s", path);
    if (kd_comm_rank(cfg->comm) == 0 && !cfg->quiet)
        kd_log_info("saved %s (%.2f s)", path, kd_now() - t0);
    kd_comm_watch_begin(cfg->comm, "checkpoint prune");
    rc = kd_ckpt_prune(c->mpi, c->root, cfg->spec->checkpoint.keep, err);
    kd_comm_watch_end(cfg->comm);
    if (rc) kd_error_prefix(err, "pruning old checkpoints: ");
    return rc ? KD_ERUNTIME : KD_OK;
}

// Loads the newest valid checkpoint of the stage, if any. Returns KD_OK (resumed or not).
static int maybe_resume(ckpt_ctx *c, kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = c->cfg;
    if (cfg->resume == KD_RESUME_NEVER) return KD_OK;
    int rank = kd_comm_rank(cfg->comm);
    char dir[2048] = "";
    int found = 0;
    if (cfg->resume_path && cfg->resume_path[0]) {
        char why[1024] = "";
        found = rank == 0 ? kd_ckpt_verify(cfg->resume_path, why, sizeof why) : 0;
        kd_comm_bcast(cfg->comm, &found, sizeof found);
        if (!found) return kd_fail(err, KD_EINPUT, "--resume %s: not a valid checkpoint (%s)", cfg->resume_path, why);
        snprintf(dir, sizeof dir, "%s", cfg->resume_path);
    } else if (rank == 0) {
        found = kd_ckpt_find_latest(c->root, dir, sizeof dir, warn_cb);
    }
    kd_comm_bcast(cfg->comm, &found, sizeof found);
    if (!found) return KD_OK;
    kd_comm_bcast(cfg->comm, dir, sizeof dir);
    kd_model *m = cfg->model;
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    size_t ns = c->opt->hi - c->opt->lo;
    int cpu = ops->kind == KD_BACKEND_CPU;
    float *hp = cpu ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    float *hm = cpu ? c->opt->m : kd_malloc(ns * sizeof(float));
    float *hv = cpu ? c->opt->v : kd_malloc(ns * sizeof(float));
    kd_train_state ts;
    kd_comm_watch_begin(cfg->comm, "checkpoint load");
    int rc = kd_ckpt_load(c->mpi, dir, pt, hp, hm, hv, &ts, err);
    kd_comm_watch_end(cfg->comm);
    char want[65];
    hex64(cfg->model_hash, want);
    if (!rc && strcmp(ts.model_hash, want) != 0 && cfg->resume != KD_RESUME_FORCE)
        rc = kd_fail(err, KD_EINPUT, "%s: written by a recipe whose model or data differ from this one (stage '%s', "
                     "model hash %s, now %s); rerun with --resume force to continue from it anyway, or "
                     "--resume never to start the stage over", dir, cfg->spec->name, ts.model_hash, want);
    if (!rc && !cpu) {
        ops->upload(kd_model_params(m), hp, pt->total * sizeof(float));
        ops->upload(c->opt->m, hm, ns * sizeof(float));
        ops->upload(c->opt->v, hv, ns * sizeof(float));
    }
    if (!cpu) free(hp), free(hm), free(hv);
    if (rc) return rc;
    pr->step = ts.step;
    pr->samples = (uint64_t)ts.samples_consumed;
    pr->bad_steps = (int)ts.bad_steps;
    for (int i = 0; i < ts.n_extra; i++)
        if (strcmp(ts.extra[i].key, "skipped_total") == 0) pr->skipped_total = atoll(ts.extra[i].value);
    c->opt->t = (int)ts.optim_step;
    c->last_saved = ts.step;
    if (cfg->final_ckpt) snprintf(cfg->final_ckpt, cfg->final_ckpt_len, "%s", dir);
    if (rank == 0)
        kd_log_info("stage %s: resuming from %s (step %lld, %llu samples; saved by %d ranks, now %d)", cfg->spec->name,
                    dir, (long long)ts.step, (unsigned long long)ts.samples_consumed, ts.world_size,
                    kd_comm_size(cfg->comm));
    return KD_OK;
}

// ----------------------------------------------------------------------------- test hooks

// KD_TRACE_SAMPLES=FILE: every rank appends "step S rank R world W: p0 p1 ..." (the global
// sample positions it fills for optimizer step S) to FILE, one write(2) per line with
// O_APPEND so lines of different ranks never interleave. Lets the fault tests prove that a
// resumed run (at any world size) consumes every position exactly once.
static void trace_samples(int64_t step, int rank, int world, const uint64_t *pos, int n) {
    const char *path = getenv("KD_TRACE_SAMPLES");
    if (!path || !*path) return;
    size_t cap = 64 + (size_t)n * 21, len = 0;
    char *line = kd_malloc(cap);
    len += (size_t)snprintf(line, cap, "step %lld rank %d world %d:", (long long)step, rank, world);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(line + len, cap - len, " %llu", (unsigned long long)pos[i]);
    line[len++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, len) != (ssize_t)len)
            kd_log_warn("KD_TRACE_SAMPLES: short write to %s", path);
        close(fd);
    }
    free(line);
}

// KD_TEST_STOP_AT_STEP=N: the last rank sends itself SIGUSR1 right after step N, so tests
// stop a run at a known step through the real signal path (one rank signalled, all agree).
static void test_stop_at(int64_t step, int rank, int world) {
    const char *v = getenv("KD_TEST_STOP_AT_STEP");
    if (v && *v && rank == world - 1 && step == atoll(v)) raise(SIGUSR1);
}

// KD_TEST_STEP_DELAY_MS=N: every rank sleeps N ms after each step, so fault tests can land
// a kill at a chosen step however fast the machine is. Timing only: results are unchanged.
static void test_step_delay(void) {
    const char *v = getenv("KD_TEST_STEP_DELAY_MS");
    if (v && *v && atoi(v) > 0) usleep((useconds_t)atoi(v) * 1000);
}

// ----------------------------------------------------------------------------- step loop

static void fmt_eta(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)s;
    snprintf(out, n, "%ldh%02ldm%02lds", t / 3600, (t / 60) % 60, t % 60);
}

// Held-out evaluation every spec->eval_every steps (not at the last step: the stage
// evaluates at its end). Rank 0 logs eval_loss and eval_<extra> for the eval task's named
// extras (a NULL name is not reported) into metrics.jsonl at this step.
static int periodic_eval(const kd_trainer_cfg *cfg, const kd_progress *pr, kd_metrics *metrics,
                         kd_error *err) {
    const kd_stage_spec *sp = cfg->spec;
    const kd_task *et = &cfg->eval_task;
    if (sp->eval_every <= 0 || !et->fill || pr->step % sp->eval_every || pr->step >= sp->steps)
        return KD_OK;
    double loss = 0, extra[KD_TASK_MAX_EXTRA] = {0};
    int rc = kd_trainer_evaluate(cfg, et->n_samples, &loss, extra, err);
    if (rc || kd_comm_rank(cfg->comm) != 0) return rc;
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
    kd_metrics_write(metrics, (long)pr->step, keys, vals, nk);
    if (!cfg->quiet) {
        printf("%s\n", line);
        fflush(stdout);
    }
    return KD_OK;
}

int kd_trainer_run(const kd_trainer_cfg *cfg, kd_progress *pr, kd_error *err) {
    const kd_stage_spec *sp = cfg->spec;
    kd_comm *comm = cfg->comm;
    kd_model *m = cfg->model;
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    int G = sp->batch.global, mb = sp->batch.micro, T = sp->batch.seq_len;
    if (G % (mb * world) != 0)
        return kd_fail(err, KD_EINPUT, "stages.%s.batch: global (%d) must be divisible by micro (%d) x ranks (%d)",
                       sp->name, G, mb, world);
    int per_rank = G / world, accum = per_rank / mb;
    size_t lo, hi;
    kd_shard_range(pt->total, world, rank, &lo, &hi);
    kd_optimizer opt;
    int n_frozen = 0;
    kd_optim_init(&opt, ops, pt, &sp->optim, sp->steps, lo, hi, (char(*)[128])sp->freeze,
                  sp->n_freeze, &n_frozen);
    opt.t = (int)pr->step;
    ckpt_ctx ck = {.cfg = cfg, .mpi = *(MPI_Comm *)kd_comm_mpi(comm), .opt = &opt, .last_saved = -1};
    snprintf(ck.root, sizeof ck.root, "%s/ckpt", cfg->stage_dir);
    int rc0 = maybe_resume(&ck, pr, err);
    if (rc0) {
        kd_optim_free(&opt);
        return rc0;
    }

    kd_metrics metrics = {0};
    if (rank == 0) {
        char path[2048];
        snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->stage_dir);
        int rc = kd_metrics_truncate_after(path, (long)pr->step, err);
        if (!rc) rc = kd_metrics_open(&metrics, path, err);
        if (rc) {
            kd_optim_free(&opt);
            return rc;
        }
        if (!cfg->quiet) {
            kd_log_table_begin("training");
            kd_log_kv("stage", "%s (%s)", sp->name, kd_stage_kind_name(sp->kind));
            kd_log_kv("ranks", "%d", world);
            kd_log_kv("parameters", "%zu (%zu trainable, %d frozen tensors)", pt->total,
                      kd_optim_trainable(&opt), n_frozen);
            kd_log_kv("batch", "global %d, micro %d, seq_len %d, accum %d", G, mb, T, accum);
            kd_log_kv("tokens per step", "%d", G * T);
            kd_log_kv("steps", "%d (from %lld)", sp->steps, (long long)pr->step);
            kd_log_kv("samples per epoch", "%llu", (unsigned long long)cfg->task.n_samples);
            kd_log_kv("lr", "%g (%s, warmup %d, min ratio %g)", sp->optim.lr,
                      sp->optim.schedule == KD_SCHED_COSINE ? "cosine"
                      : sp->optim.schedule == KD_SCHED_LINEAR ? "linear" : "constant",
                      sp->optim.warmup, sp->optim.min_lr_ratio);
            kd_log_kv("adamw", "betas (%g, %g), eps %g, weight decay %g", sp->optim.beta1,
                      sp->optim.beta2, sp->optim.eps, sp->optim.weight_decay);
            kd_log_kv("grad clip", "%g", sp->optim.grad_clip);
            kd_log_kv("backend", "%s", ops->name);
            kd_log_table_end();
        }
    }

    size_t ntok = (size_t)per_rank * T;
    host_batch hb;
    batch_alloc(&hb, ntok);
    uint64_t *pos = kd_malloc(sizeof(uint64_t) * (size_t)per_rank);
    float *params = kd_model_params(m), *grads = kd_model_grads(m);
    int nx = cfg->task.n_extra;
    double t_start = kd_now(), t_log = t_start;
    int64_t step_log = pr->step;
    int rc = KD_OK;

    while (pr->step < sp->steps) {
        kd_comm_set_step(comm, (long)pr->step + 1);
        if (pr->step > 0) test_step_delay();
        // ---- this rank's slice of global batch: positions [samples + rank*per_rank, +per_rank)
        uint64_t base = pr->samples + (uint64_t)rank * (uint64_t)per_rank;
        for (int i = 0; i < per_rank; i++) pos[i] = base + (uint64_t)i;
        int used_seg = 0;
        rc = cfg->task.fill(cfg->task.ctx, pos, per_rank, T, hb.ids, hb.targets, hb.weights,
                            hb.seg, &used_seg, err);
        rc = kd_comm_any(comm, rc != KD_OK) ? (rc ? rc : KD_EINPUT) : KD_OK;
        if (rc) {
            if (err->code == KD_OK) kd_fail(err, KD_EINPUT, "another rank failed to read its batch (see its message)");
            break;
        }
        trace_samples(pr->step + 1, rank, world, pos, per_rank);
        double wlocal = 0;
        for (size_t i = 0; i < ntok; i++) wlocal += hb.targets[i] >= 0 ? hb.weights[i] : 0.0;
        double wtotal = cfg->task.samples_per_unit > 0 ? (double)G / cfg->task.samples_per_unit
                                                       : kd_comm_sum_f64(comm, wlocal);
        float dscale = wtotal > 0 ? (float)(1.0 / wtotal) : 0.0f;

        // ---- micro-batches
        kd_model_zero_grad(m);
        double loss_sum = 0, extra[KD_TASK_MAX_EXTRA] = {0};
        for (int k = 0; k < accum && rc == KD_OK; k++) {
            size_t off = (size_t)k * mb * T;
            const int32_t *segp = used_seg ? hb.seg + off : NULL;
            if (cfg->task.step) {
                rc = cfg->task.step(cfg->task.ctx, m, hb.ids + off, hb.targets + off, hb.weights + off, segp, mb,
                                    T, dscale, &loss_sum, extra, err);
                continue;
            }
            rc = kd_model_forward(m, hb.ids + off, NULL, segp, mb, T, err);
            if (rc) break;
            loss_sum += cfg->task.loss(cfg->task.ctx, m, hb.targets + off, hb.weights + off, mb, T,
                                       dscale, 1, extra);
            kd_model_backward(m);
        }
        if (kd_comm_any(comm, rc != KD_OK)) {
            if (!rc) rc = kd_fail(err, KD_ERUNTIME, "another rank failed its forward pass (see its message)");
            break;
        }

        // ---- reduce, clip, update (ZeRO-1)
        kd_comm_reduce_scatter_f32(comm, grads, opt.gshard, pt->total);
        double gn2 = kd_comm_sum_f64(comm, kd_optim_shard_sumsq(&opt));
        double loss = kd_comm_sum_f64(comm, loss_sum) / (wtotal > 0 ? wtotal : 1);
        for (int x = 0; x < nx; x++) extra[x] = kd_comm_sum_f64(comm, extra[x]) / (wtotal > 0 ? wtotal : 1);
        double gnorm = sqrt(gn2);
        float lr = kd_optim_lr(&sp->optim, (int)pr->step, sp->steps);
        int finite = isfinite(gnorm) && isfinite(loss);
        if (finite) {
            float clip = sp->optim.grad_clip;
            float gscale = (clip > 0 && gnorm > clip) ? (float)(clip / gnorm) : 1.0f;
            kd_optim_step(&opt, params, lr, gscale);
            kd_comm_allgather_f32(comm, params, pt->total);
            pr->bad_steps = 0;
        } else {
            pr->bad_steps++;
            pr->skipped_total++;
            if (rank == 0)
                kd_log_warn("step %lld: non-finite loss or gradient norm (loss %g, grad norm %g): update skipped (%d in a row)",
                            (long long)pr->step + 1, loss, gnorm, pr->bad_steps);
        }
        pr->step++;
        pr->samples += (uint64_t)G;
        if (pr->bad_steps >= sp->max_bad_steps) {
            rc = kd_fail(err, KD_ERUNTIME, "stage '%s': %d consecutive non-finite steps (max_bad_steps); stopping "
                         "with the last checkpoint intact (lower optim.lr or raise optim.grad_clip)",
                         sp->name, pr->bad_steps);
            break;
        }

        // ---- log
        int last = pr->step == sp->steps;
        if (rank == 0 && (pr->step % sp->log_every == 0 || last)) {
            double now = kd_now();
            double dt = now - t_log;
            double tps = dt > 0 ? (double)(pr->step - step_log) * G * T / dt : 0;
            double elapsed = now - t_start;
            double eta = tps > 0 ? (double)(sp->steps - pr->step) * G * T / tps : 0;
            const char *keys[4 + KD_TASK_MAX_EXTRA + 1] = {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"};
            double vals[4 + KD_TASK_MAX_EXTRA + 1] = {loss, lr, gnorm, tps, elapsed};
            for (int x = 0; x < nx; x++) keys[5 + x] = cfg->task.extra_names[x], vals[5 + x] = extra[x];
            kd_metrics_write(&metrics, (long)pr->step, keys, vals, 5 + nx);
            if (!cfg->quiet) {
                char etas[32];
                fmt_eta(eta, etas, sizeof etas);
                printf("%s step %6lld/%d | loss %.6f | lr %.3e | grad norm %.4f | %.0f tok/s | eta %s\n",
                       sp->name, (long long)pr->step, sp->steps, loss, lr, gnorm, tps, etas);
                fflush(stdout);
            }
            t_log = now;
            step_log = pr->step;
        }

        if ((rc = periodic_eval(cfg, pr, &metrics, err))) break;

        // ---- checkpoints and collective stop decisions
        if (sp->checkpoint.every > 0 && pr->step % sp->checkpoint.every == 0 && pr->step < sp->steps) {
            if ((rc = save_ckpt(&ck, pr, err))) break;
        }
        test_stop_at(pr->step, rank, world);
        int sig = kd_signals_pending();
        int stop = sig != 0 || (cfg->deadline > 0 && kd_now() > cfg->deadline);
        if (kd_comm_any(comm, stop) && pr->step < sp->steps) {
            if (ck.last_saved != pr->step && (rc = save_ckpt(&ck, pr, err))) break;
            rc = kd_fail(err, KD_EREQUEUE, "stage '%s' stopped at step %lld by %s; saved; run the same command again "
                         "to resume", sp->name, (long long)pr->step,
                         sig ? "a signal" : stop ? "run.max_minutes" : "another rank's signal");
            break;
        }
    }
    if (rc == KD_OK && ck.last_saved != pr->step) rc = save_ckpt(&ck, pr, err);
    free(pos);
    batch_free(&hb);
    kd_metrics_close(&metrics);
    kd_optim_free(&opt);
    return rc;
}

int kd_trainer_evaluate(const kd_trainer_cfg *cfg, uint64_t n_samples, double *mean_loss,
                        double *extra_out, kd_error *err) {
    const kd_stage_spec *sp = cfg->spec;
    kd_comm *comm = cfg->comm;
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm);
    int mb = sp->batch.micro, T = sp->batch.seq_len;
    size_t lo, hi;
    kd_shard_range(n_samples, world, rank, &lo, &hi);
    host_batch hb;
    batch_alloc(&hb, (size_t)mb * T);
    uint64_t *pos = kd_malloc(sizeof(uint64_t) * (size_t)mb);
    double loss_sum = 0, wsum = 0, extra[KD_TASK_MAX_EXTRA] = {0};
    int rc = KD_OK;
    // every rank runs the same number of rounds so collectives stay matched
    size_t per = (n_samples + (size_t)world - 1) / (size_t)world;
    size_t rounds = (per + (size_t)mb - 1) / (size_t)mb;
    for (size_t r = 0; r < rounds; r++) {
        size_t a = lo + r * (size_t)mb;
        int n = a < hi ? (int)((hi - a) < (size_t)mb ? (hi - a) : (size_t)mb) : 0;
        for (int i = 0; i < mb; i++) pos[i] = (i < n) ? a + (size_t)i : lo;  // padding rows
        int used_seg = 0;
        if (n > 0 || hi > lo)
            rc = cfg->eval_task.fill(cfg->eval_task.ctx, pos, mb, T, hb.ids, hb.targets, hb.weights,
                                     hb.seg, &used_seg, err);
        if (kd_comm_any(comm, rc != KD_OK)) {
            if (!rc) rc = kd_fail(err, KD_EINPUT, "another rank failed to read its evaluation batch");
            break;
        }
        if (hi == lo) continue;
        for (size_t i = (size_t)n * T; i < (size_t)mb * T; i++) hb.weights[i] = 0;  // padding
        for (size_t i = 0; i < (size_t)n * T; i++) wsum += hb.targets[i] >= 0 ? hb.weights[i] : 0;
        rc = kd_model_forward(cfg->model, hb.ids, NULL, used_seg ? hb.seg : NULL, mb, T, err);
        if (rc) break;
        loss_sum += cfg->eval_task.loss(cfg->eval_task.ctx, cfg->model, hb.targets, hb.weights, mb, T,
                                        0.0f, 0, extra);
    }
    free(pos);
    batch_free(&hb);
    if (kd_comm_any(comm, rc != KD_OK)) return rc ? rc : KD_ERUNTIME;
    double w = kd_comm_sum_f64(comm, wsum);
    *mean_loss = kd_comm_sum_f64(comm, loss_sum) / (w > 0 ? w : 1);
    for (int x = 0; x < cfg->eval_task.n_extra; x++) {
        double v = kd_comm_sum_f64(comm, extra[x]) / (w > 0 ? w : 1);
        if (extra_out) extra_out[x] = v;
    }
    return KD_OK;
}
