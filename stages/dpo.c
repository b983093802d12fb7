// dpo.c: stage `dpo`: preference optimisation (DPO sigmoid, IPO, hinge, SimPO, ORPO) on a
// preference dataset. Each pair is two rows (prompt+chosen, prompt+rejected); sequence
// log-probs are sums over completion tokens. The reference log-probs are computed once,
// before training, by the model at stage start (or dpo.reference.from) and cached in an
// HDF5 file (data/refcache.h) keyed by a fingerprint of (reference weights, dataset bytes,
// lengths), so the reference model is never held during training and resumes and later
// runs reuse them.
// Its recipe rules: reference.from names an earlier stage; max_prompt_len < max_len.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/prefs.h"
#include "data/refcache.h"
#include "data/sampler.h"
#include "runtime/base/log.h"
#include "runtime/base/signals.h"
#include "runtime/train/losses.h"
#include "runtime/store/model_io.h"
#include "runtime/base/sha256.h"
#include "stages/kind.h"

typedef struct {
    kd_prefs *prefs;
    uint64_t count;
    int T, max_len, max_prompt;
    uint64_t seed;
    int shuffle;
    double *ref;           // (count, 2): reference sums (chosen, rejected)
    kd_pref_config pc;
    int32_t *seq;          // scratch (rows*T): sequence index of each target, -1 if none
    float *logp, *dlogp;   // scratch (rows*T)
    float *dev_logp;       // backend (rows*T)
    int32_t *dev_targets;  // backend (rows*T)
    int cap_rows;
    const int32_t *fill_ids;  // the rank's batch buffer of the last fill
    uint64_t *fill_pair;      // pair index of each row of that batch
    int fill_cap;
} dpo_task;

// Row of one side of pair i: prompt (left-truncated to max_prompt) + completion (right-
// truncated to fit). ids/targets (T); seq (T) gets `seqid` on completion targets.
static int build_row(dpo_task *t, const int32_t *p, int np, const int32_t *c, int nc, int seqid, int pad,
                     int32_t *ids, int32_t *targets, float *w, int32_t *seq) {
    int lim = t->max_len < t->T ? t->max_len : t->T;
    if (np > t->max_prompt) p += np - t->max_prompt, np = t->max_prompt;
    if (np > lim - 1) p += np - (lim - 1), np = lim - 1;
    if (nc > lim - np) nc = lim - np;
    int L = np + nc, first = 1;
    for (int j = 0; j < t->T; j++) {
        int32_t tok = j < np ? p[j] : j < L ? c[j - np] : pad;
        ids[j] = tok;
        int tgt = j + 1 < L;
        targets[j] = tgt ? (j + 1 < np ? p[j + 1] : c[j + 1 - np]) : -1;
        int comp = tgt && j + 1 >= np;
        seq[j] = comp ? seqid : -1;
        w[j] = comp && first ? 1.0f : 0.0f;  // unused by the loss; marks the row as real
        if (comp) first = 0;
    }
    return nc;
}

static int dpo_fill_rows(dpo_task *t, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets, float *w,
                         int32_t *seq, kd_error *err) {
    for (int i = 0; i < n; i++) {
        uint64_t unit = pos[i] / 2;
        uint64_t pair = t->shuffle ? kd_sampler_window(t->seed, t->count, unit) : unit % t->count;
        int32_t *p = NULL, *c = NULL, *r = NULL;
        int np = 0, nc = 0, nr = 0;
        int rc = kd_prefs_read(t->prefs, pair, &p, &np, &c, &nc, &r, &nr, err);
        if (rc) return rc;
        int side = (int)(pos[i] % 2);
        int pad = kd_prefs_get_info(t->prefs)->pad_id;
        build_row(t, p, np, side ? r : c, side ? nr : nc, i, pad < 0 ? 0 : pad, ids + (size_t)i * T,
                  targets + (size_t)i * T, w + (size_t)i * T, seq + (size_t)i * T);
        free(p), free(c), free(r);
    }
    return KD_OK;
}

static int dpo_fill(void *ctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets, float *w,
                    int32_t *seg, int *used_seg, kd_error *err) {
    (void)seg;
    *used_seg = 0;
    dpo_task *t = ctx;
    if (n > t->fill_cap) {
        free(t->fill_pair);
        t->fill_pair = kd_malloc(sizeof(uint64_t) * (size_t)n);
        t->fill_cap = n;
    }
    t->fill_ids = ids;
    for (int i = 0; i < n; i++) {
        uint64_t unit = pos[i] / 2;
        t->fill_pair[i] = t->shuffle ? kd_sampler_window(t->seed, t->count, unit) : unit % t->count;
    }
    // the completion map is rebuilt per micro-batch in dpo_step from targets and weights
    int32_t *seq = kd_malloc(sizeof(int32_t) * (size_t)n * T);
    int rc = dpo_fill_rows(t, pos, n, T, ids, targets, w, seq, err);
    free(seq);
    return rc;
}

static void ensure(dpo_task *t, const kd_ops *ops, int rows) {
    if (rows <= t->cap_rows) return;
    size_t N = (size_t)rows * t->T;
    free(t->seq), free(t->logp), free(t->dlogp);
    if (t->dev_logp) ops->mem->free(ops->ctx, t->dev_logp), ops->mem->free(ops->ctx, t->dev_targets);
    t->seq = kd_malloc(N * sizeof(int32_t));
    t->logp = kd_malloc(N * sizeof(float));
    t->dlogp = kd_malloc(N * sizeof(float));
    t->dev_logp = ops->mem->alloc(ops->ctx, N * sizeof(float));
    t->dev_targets = ops->mem->alloc(ops->ctx, N * sizeof(int32_t));
    t->cap_rows = rows;
}

// Completion-token sums of the rows of the last forward: sums (n), counts (n).
static void row_sums(dpo_task *t, kd_model *m, const int32_t *targets, const float *w, int n, double *sums,
                     int *counts) {
    const kd_ops *ops = kd_model_ops(m);
    int T = t->T, N = n * T;
    ensure(t, ops, n);
    // completion targets: from the first marked target to the end of the row's targets
    for (int i = 0; i < n; i++) {
        int on = 0;
        for (int j = 0; j < T; j++) {
            size_t k = (size_t)i * T + j;
            if (w[k] > 0) on = 1;
            t->seq[k] = on && targets[k] >= 0 ? i : -1;
        }
    }
    ops->mem->upload(ops->ctx, t->dev_targets, targets, (size_t)N * sizeof(int32_t));
    ops->losses->token_logp_fwd(ops->ctx, t->dev_logp, kd_model_logits(m), t->dev_targets, N, kd_model_cfg(m)->vocab_size);
    ops->mem->download(ops->ctx, t->logp, t->dev_logp, (size_t)N * sizeof(float));
    kd_losses_segment_sum(sums, counts, t->logp, t->seq, N, n);
}

static int dpo_step(void *ctx, kd_model *m, const int32_t *ids, const int32_t *targets, const float *w,
                    const int32_t *seg, int n, int T, float dscale, double *loss_sum, double *extra, kd_error *err) {
    (void)seg;
    dpo_task *t = ctx;
    const kd_ops *ops = kd_model_ops(m);
    int rc = kd_model_forward(m, ids, NULL, NULL, n, T, err);
    if (rc) return rc;
    double *sums = kd_malloc(sizeof(double) * (size_t)n), *dsums = kd_calloc((size_t)n, sizeof(double));
    int *counts = kd_malloc(sizeof(int) * (size_t)n);
    row_sums(t, m, targets, w, n, sums, counts);
    int np = n / 2;
    kd_pref_pair *pairs = kd_malloc(sizeof *pairs * (size_t)np);
    kd_pref_out *out = kd_malloc(sizeof *out * (size_t)np);
    // rows 2k (chosen) and 2k+1 (rejected) are one pair: the rank's slice and the
    // micro-batches start at even positions (checked at stage start)
    size_t row0 = (size_t)(ids - t->fill_ids) / (size_t)T;
    for (int k = 0; k < np; k++) {
        uint64_t pair = t->fill_pair[row0 + 2 * (size_t)k];
        pairs[k] = (kd_pref_pair){.logp_c = sums[2 * k], .logp_r = sums[2 * k + 1], .n_c = counts[2 * k],
                                  .n_r = counts[2 * k + 1], .ref_c = t->ref[2 * pair], .ref_r = t->ref[2 * pair + 1]};
    }
    kd_pref_metrics met;
    rc = kd_losses_pref(&t->pc, pairs, np, out, &met, err);
    if (!rc) {
        for (int k = 0; k < np; k++) {
            *loss_sum += out[k].loss;
            dsums[2 * k] = dscale * out[k].dlogp_c;
            dsums[2 * k + 1] = dscale * out[k].dlogp_r;
            extra[0] += out[k].reward_c;
            extra[1] += out[k].reward_r;
            extra[2] += out[k].reward_c > out[k].reward_r;
            extra[3] += out[k].reward_c - out[k].reward_r;
            extra[4] += pairs[k].logp_c;
            extra[5] += pairs[k].logp_r;
        }
        kd_losses_segment_scatter(t->dlogp, dsums, t->seq, n * T);
        ops->mem->upload(ops->ctx, t->dev_logp, t->dlogp, (size_t)n * T * sizeof(float));
        ops->losses->token_logp_bwd(ops->ctx, kd_model_logits(m), t->dev_logp, kd_model_logits(m), t->dev_targets, n * T,
                            kd_model_cfg(m)->vocab_size);
        kd_model_backward(m);
    }
    free(sums), free(dsums), free(counts), free(pairs), free(out);
    return rc;
}

// ----------------------------------------------------------------------------- reference

// Fingerprint of what the reference log-probs depend on: the reference weights, the
// dataset's bytes and the lengths.
static void fingerprint(kd_model *ref, const char *data, const dpo_task *t, char hex[65], kd_error *err) {
    const kd_param_table *pt = kd_model_table(ref);
    const kd_ops *ops = kd_model_ops(ref);
    float *host = kd_malloc(pt->total * sizeof(float));
    ops->mem->download(ops->ctx, host, kd_model_params(ref), pt->total * sizeof(float));
    kd_sha256 h;
    kd_sha256_init(&h);
    kd_sha256_update(&h, host, pt->total * sizeof(float));
    free(host);
    char fhex[65] = "";
    (void)err;
    uint64_t fsize = 0;
    if (kd_sha256_file(data, fhex, &fsize) != 0) snprintf(fhex, sizeof fhex, "unreadable");
    char lens[128];
    snprintf(lens, sizeof lens, "|%s|%d|%d|%d", fhex, t->max_len, t->max_prompt, t->T);
    kd_sha256_update(&h, lens, strlen(lens));
    uint8_t dig[32];
    kd_sha256_final(&h, dig);
    kd_sha256_hex(dig, hex);
}

// Sequence log-prob sums of every pair under `ref` (rank-parallel, all ranks get all).
static int compute_ref(dpo_task *t, kd_model *ref, kd_comm *comm, int mb, kd_error *err) {
    int rank = kd_comm_rank(comm), world = kd_comm_size(comm), T = t->T;
    uint64_t rows = 2 * t->count;
    int R = mb - mb % 2 < 2 ? 2 : mb - mb % 2;
    uint64_t per = (rows / 2 + (uint64_t)world - 1) / (uint64_t)world * 2;  // even rows per rank
    uint64_t lo = per * (uint64_t)rank, hi = lo + per < rows ? lo + per : rows;
    if (lo > rows) lo = rows;
    memset(t->ref, 0, sizeof(double) * rows);
    int32_t *ids = kd_malloc(sizeof(int32_t) * (size_t)R * T), *tg = kd_malloc(sizeof(int32_t) * (size_t)R * T);
    float *w = kd_malloc(sizeof(float) * (size_t)R * T);
    int32_t *seq = kd_malloc(sizeof(int32_t) * (size_t)R * T);
    uint64_t *pos = kd_malloc(sizeof(uint64_t) * (size_t)R);
    double *sums = kd_malloc(sizeof(double) * (size_t)R);
    int rc = KD_OK;
    int save_shuffle = t->shuffle;
    t->shuffle = 0;  // position 2i+s = pair i, side s
    for (uint64_t a = lo; a < hi && !rc; a += (uint64_t)R) {
        int n = (int)(hi - a < (uint64_t)R ? hi - a : (uint64_t)R);
        for (int i = 0; i < n; i++) pos[i] = a + (uint64_t)i;
        rc = dpo_fill_rows(t, pos, n, T, ids, tg, w, seq, err);
        if (!rc && kd_signals_pending()) // stop within a batch; nothing of the cache is kept
            rc = kd_fail(err, KD_EREQUEUE, "dpo: reference log-probs stopped by a signal; run the same command again");
        if (!rc) rc = kd_model_forward(ref, ids, NULL, NULL, n, T, err);
        if (rc) break;
        row_sums(t, ref, tg, w, n, sums, NULL);
        for (int i = 0; i < n; i++) t->ref[a + (uint64_t)i] = sums[i];
    }
    t->shuffle = save_shuffle;
    free(ids), free(tg), free(w), free(seq), free(pos), free(sums);
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    kd_comm_allreduce_f64(comm, t->ref, rows);
    return KD_OK;
}

// ----------------------------------------------------------------------------- stage

int kd_stage_dpo(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    int rank = kd_comm_rank(ctx->comm);
    if (sp->batch.micro % 2 || (sp->batch.global / kd_comm_size(ctx->comm)) % 2)
        return kd_fail(err, KD_EINPUT, "stages.%s.batch: a preference pair is two rows (chosen, rejected): micro (%d) "
                       "and global/ranks must be even", sp->name, sp->batch.micro);
    dpo_task t;
    memset(&t, 0, sizeof t);
    int rc = kd_prefs_open(&t.prefs, sp->data, err);
    if (rc) return rc;
    t.count = kd_prefs_count(t.prefs);
    t.T = sp->batch.seq_len, t.max_len = sp->dpo.max_len, t.max_prompt = sp->dpo.max_prompt_len;
    t.seed = ctx->recipe->run.seed, t.shuffle = 1;
    t.pc = (kd_pref_config){.type = sp->dpo.loss.type, .beta = sp->dpo.loss.beta,
                            .label_smoothing = sp->dpo.loss.label_smoothing, .gamma = sp->dpo.loss.gamma,
                            .rpo_alpha = sp->dpo.loss.rpo_alpha};
    t.ref = kd_calloc(2 * t.count, sizeof(double));
    if (!rc) rc = kd_losses_check_pref(&t.pc, err);

    // ---- reference log-probs: cached by fingerprint, else computed once here
    kd_model *ref = ctx->model;
    if (!rc && sp->dpo.has_reference) {
        char what[KD_NAME_MAX + 32];
        snprintf(what, sizeof what, "stages.%s.reference.from", sp->name);
        rc = ctx->load_frozen(ctx->run, &sp->dpo.reference, what, &ref, err);
    }
    char fp[65] = "", cache[2 * KD_PATH_MAX + 32];
    snprintf(cache, sizeof cache, "%s/ref_logps.h5", ctx->stage_dir);
    if (!rc) {
        fingerprint(ref, sp->data, &t, fp, err);
        int hit = rank == 0 ? kd_refcache_read(cache, fp, t.count, t.ref) : 0;
        kd_comm_bcast(ctx->comm, &hit, sizeof hit);
        if (hit) {
            kd_comm_bcast(ctx->comm, t.ref, sizeof(double) * 2 * t.count);
            if (rank == 0) kd_log_info("dpo: reference log-probs: reusing cache %s (fingerprint %.16s)", cache, fp);
        } else {
            if (rank == 0) kd_log_info("dpo: reference log-probs: computing for %llu pairs (fingerprint %.16s)",
                                       (unsigned long long)t.count, fp);
            rc = compute_ref(&t, ref, ctx->comm, sp->batch.micro, err);
            if (!rc && rank == 0) rc = kd_refcache_write(cache, fp, t.count, t.ref, err);
            rc = kd_comm_agree(ctx->comm, rc, err);
        }
    }
    if (ref != ctx->model) kd_model_free(ref);

    // ---- training
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_stage_trainer_cfg(ctx, &tc, attrs);
    tc.task = (kd_task){.ctx = &t, .fill = dpo_fill, .step = dpo_step, .n_samples = 2 * t.count,
                        .samples_per_unit = 2, .n_extra = 6,
                        .extra_names = {"rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                        "rewards/margins", "logps/chosen", "logps/rejected"}};
    if (!rc) rc = kd_trainer_run(&tc, ctx->progress, err);
    ctx->eval_loss = NAN;
    kd_prefs_close(t.prefs);
    const kd_ops *ops = ctx->ops;
    if (t.dev_logp) ops->mem->free(ops->ctx, t.dev_logp), ops->mem->free(ops->ctx, t.dev_targets);
    free(t.seq), free(t.logp), free(t.dlogp), free(t.ref), free(t.fill_pair);
    return rc;
}

// ----------------------------------------------------------------------------- recipe rules

int kd_stage_dpo_check(kd_recipe_checker *c, kd_recipe *r, int i) {
    const kd_stage_spec *s = &r->stages[i];
    char q[64];
    int rc = s->dpo.has_reference ? kd_recipe_check_reference(c, &s->dpo.reference, i) : KD_OK;
    if (rc) return rc;
    if (s->dpo.max_prompt_len >= s->dpo.max_len) {
        snprintf(q, sizeof q, "stages[%d].max_prompt_len", i);
        return kd_recipe_bad(c, q, "expected less than max_len (%d), found %d", s->dpo.max_len,
                             s->dpo.max_prompt_len);
    }
    return KD_OK;
}
