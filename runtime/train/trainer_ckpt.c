// trainer_ckpt.c: the trainer's checkpoints (trainer_internal.h): what a save stores (the
// parameters, this rank's AdamW moments, the progress and the recipe/model hashes) and how
// a resume restores it, refusing a checkpoint written for another model unless forced.
// Both run under the collective watchdog as one section (runtime/base/comm.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/log.h"
#include "runtime/train/trainer_internal.h"

static void hex64(uint64_t v, char out[65]) {
    snprintf(out, 65, "%016llx", (unsigned long long)v);
}

static void warn_cb(const char *msg) {
    kd_log_warn("%s", msg);
}

// Host views of backend buffers (a host-visible backend's buffers are host memory already).
static float *to_host(const kd_ops *ops, float *p, size_t n, float **tmp) {
    *tmp = NULL;
    if (ops->mem->host_visible) return p;
    *tmp = kd_malloc(n * sizeof(float));
    ops->mem->download(ops->ctx, *tmp, p, n * sizeof(float));
    return *tmp;
}

// The trainer state of state.json at progress pr.
static void fill_state(const kd_trainer *tr, const kd_progress *pr, kd_train_state *ts) {
    const kd_trainer_cfg *cfg = tr->cfg;
    memset(ts, 0, sizeof *ts);
    ts->stage_index = cfg->stage_index;
    snprintf(ts->stage_name, sizeof ts->stage_name, "%s", cfg->spec->name);
    ts->step = pr->step;
    ts->optim_step = tr->opt.t;
    ts->samples_consumed = (int64_t)pr->samples;
    ts->epoch = cfg->task.n_samples ? (int64_t)(pr->samples / cfg->task.n_samples) : 0;
    ts->world_size = kd_comm_size(cfg->comm);
    hex64(cfg->recipe_hash, ts->recipe_hash);
    hex64(cfg->model_hash, ts->model_hash);
    ts->bad_steps = pr->bad_steps;
    ts->n_extra = 1;
    snprintf(ts->extra[0].key, sizeof ts->extra[0].key, "skipped_total");
    snprintf(ts->extra[0].value, sizeof ts->extra[0].value, "%lld", (long long)pr->skipped_total);
}

int kd_trainer_save(kd_trainer *tr, const kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    kd_model *m = cfg->model;
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    kd_train_state ts;
    fill_state(tr, pr, &ts);
    size_t ns = tr->opt.hi - tr->opt.lo;
    float *tp, *tm, *tv;
    float *hp = to_host(ops, kd_model_params(m), pt->total, &tp);
    float *hm = to_host(ops, tr->opt.m, ns, &tm), *hv = to_host(ops, tr->opt.v, ns, &tv);
    char path[2048];
    double t0 = kd_now();
    kd_comm_watch_begin(cfg->comm, "checkpoint save");
    int rc = kd_ckpt_save(cfg->comm, tr->ckpt_root, pr->step, pt, hp, hm, hv, &ts, cfg->attrs,
                          cfg->n_attrs, path, sizeof path, err);
    kd_comm_watch_end(cfg->comm);
    free(tp), free(tm), free(tv);
    if (rc) {
        kd_error_prefix(err, "checkpoint at step %lld failed (the previous checkpoint is intact): ",
                        (long long)pr->step);
        return KD_ERUNTIME;
    }
    tr->last_saved = pr->step;
    if (cfg->final_ckpt) snprintf(cfg->final_ckpt, cfg->final_ckpt_len, "%s", path);
    if (kd_comm_rank(cfg->comm) == 0 && !cfg->quiet)
        kd_log_info("saved %s (%.2f s)", path, kd_now() - t0);
    kd_comm_watch_begin(cfg->comm, "checkpoint prune");
    rc = kd_ckpt_prune(cfg->comm, tr->ckpt_root, cfg->spec->checkpoint.keep, err);
    kd_comm_watch_end(cfg->comm);
    if (rc) kd_error_prefix(err, "pruning old checkpoints: ");
    return rc ? KD_ERUNTIME : KD_OK;
}

// The checkpoint to resume from, the same on every rank: cfg->resume_path (which must
// verify) or the stage's newest valid one. *found 0: start the stage from scratch.
static int pick_resume_dir(const kd_trainer *tr, char *dir, size_t n, int *found, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    int rank = kd_comm_rank(cfg->comm);
    *found = 0;
    if (cfg->resume_path && cfg->resume_path[0]) {
        char why[1024] = "";
        *found = rank == 0 ? kd_ckpt_verify(cfg->resume_path, why, sizeof why) : 0;
        kd_comm_bcast(cfg->comm, found, sizeof *found);
        if (!*found)
            return kd_fail(err, KD_EINPUT, "--resume %s: not a valid checkpoint (%s)",
                           cfg->resume_path, why);
        snprintf(dir, n, "%s", cfg->resume_path);
    } else if (rank == 0) {
        *found = kd_ckpt_find_latest(tr->ckpt_root, dir, n, warn_cb);
    }
    kd_comm_bcast(cfg->comm, found, sizeof *found);
    if (*found) kd_comm_bcast(cfg->comm, dir, n);
    return KD_OK;
}

// Parameters and moments of dir into the model and the optimizer; ts gets the progress.
// A checkpoint of another model (hash) is refused unless the resume is forced.
static int load_resume_dir(kd_trainer *tr, const char *dir, kd_train_state *ts, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    kd_model *m = cfg->model;
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    size_t ns = tr->opt.hi - tr->opt.lo;
    int direct = ops->mem->host_visible; // host memory: read and written in place
    float *hp = direct ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    float *hm = direct ? tr->opt.m : kd_malloc(ns * sizeof(float));
    float *hv = direct ? tr->opt.v : kd_malloc(ns * sizeof(float));
    kd_comm_watch_begin(cfg->comm, "checkpoint load");
    int rc = kd_ckpt_load(cfg->comm, dir, pt, hp, hm, hv, ts, err);
    kd_comm_watch_end(cfg->comm);
    char want[65];
    hex64(cfg->model_hash, want);
    if (!rc && strcmp(ts->model_hash, want) != 0 && cfg->resume != KD_RESUME_FORCE)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: written by a recipe whose model or data differ from this one (stage "
                     "'%s', model hash %s, now %s); rerun with --resume force to continue from it "
                     "anyway, or --resume never to start the stage over",
                     dir, cfg->spec->name, ts->model_hash, want);
    if (!rc && !direct) {
        ops->mem->upload(ops->ctx, kd_model_params(m), hp, pt->total * sizeof(float));
        ops->mem->upload(ops->ctx, tr->opt.m, hm, ns * sizeof(float));
        ops->mem->upload(ops->ctx, tr->opt.v, hv, ns * sizeof(float));
    }
    if (!direct) free(hp), free(hm), free(hv);
    return rc;
}

int kd_trainer_resume(kd_trainer *tr, kd_progress *pr, kd_error *err) {
    const kd_trainer_cfg *cfg = tr->cfg;
    if (cfg->resume == KD_RESUME_NEVER) return KD_OK;
    char dir[2048] = "";
    int found = 0;
    int rc = pick_resume_dir(tr, dir, sizeof dir, &found, err);
    if (rc || !found) return rc;
    kd_train_state ts;
    if ((rc = load_resume_dir(tr, dir, &ts, err))) return rc;
    pr->step = ts.step;
    pr->samples = (uint64_t)ts.samples_consumed;
    pr->bad_steps = (int)ts.bad_steps;
    for (int i = 0; i < ts.n_extra; i++)
        if (strcmp(ts.extra[i].key, "skipped_total") == 0)
            pr->skipped_total = atoll(ts.extra[i].value);
    tr->opt.t = (int)ts.optim_step;
    tr->last_saved = ts.step;
    if (cfg->final_ckpt) snprintf(cfg->final_ckpt, cfg->final_ckpt_len, "%s", dir);
    if (kd_comm_rank(cfg->comm) == 0)
        kd_log_info(
            "stage %s: resuming from %s (step %lld, %llu samples; saved by %d ranks, now %d)",
            cfg->spec->name, dir, (long long)ts.step, (unsigned long long)ts.samples_consumed,
            ts.world_size, kd_comm_size(cfg->comm));
    return KD_OK;
}
