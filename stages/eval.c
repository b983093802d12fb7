// eval.c: stage `eval`: measures the model without training it.
//  - eval_data: held-out loss and perplexity (token stream datasets by windows, document
//    datasets by their loss mask);
//  - tasks: *.jsonl lines {"task", "prompt", "answer"} (data synth's eval_tasks.jsonl):
//    exact-match accuracy of greedy generation, per task; *.jsonl lines {"task",
//    "context", "choices", "gold"}: multiple-choice accuracy (eval_choices.c); *.h5 preference sets: how often
//    the model gives the chosen completion a higher log-prob than the rejected one, and
//    with `reference:` the implicit-reward accuracy and margin beta-free (log-ratio) as DPO
//    defines them.
// Results are printed as a table and written to STAGE_DIR/eval.json. Rank-parallel.
// Its recipe rule: eval_data or tasks (or both) must be given.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/jsonl.h"
#include "data/prefs.h"
#include "data/tokenizer.h"
#include "runtime/model/generate.h"
#include "runtime/base/log.h"
#include "runtime/base/signals.h"
#include "runtime/train/losses.h"
#include "runtime/store/model_io.h"
#include "stages/eval_internal.h"
#include "stages/kind.h"

typedef kd_eval_results results;
#define put kd_eval_put

void kd_eval_put(kd_eval_results *R, const char *key, double v) {
    if (R->n >= KD_EVAL_MAX_RESULTS) return;
    snprintf(R->r[R->n].key, sizeof R->r[R->n].key, "%s", key);
    R->r[R->n++].value = v;
}

// ----------------------------------------------------------------------------- held-out loss

static int eval_loss(kd_stage_ctx *ctx, results *R, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    kd_dataset *ds = NULL;
    int rc = kd_dataset_open(&ds, sp->eval_data, err);
    if (rc) return rc;
    int stream = strcmp(kd_dataset_get_info(ds)->kind, "tokens") == 0;
    kd_dataset_close(ds);
    kd_trainer_cfg tc;
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    kd_stage_trainer_cfg(ctx, &tc, attrs);
    int V = kd_model_cfg(ctx->model)->vocab_size, T = sp->batch.seq_len;
    kd_lm_task *lm = NULL;
    kd_doc_task *doc = NULL;
    rc = stream ? kd_lm_task_open(&lm, sp->eval_data, V, T, 0, 0, &tc.eval_task, err)
                : kd_doc_task_open(&doc, sp->eval_data, V, T, 0, 0, 0, 1, &tc.eval_task, err);
    double loss = NAN;
    if (!rc) rc = kd_trainer_evaluate(&tc, tc.eval_task.n_samples, &loss, NULL, err);
    kd_lm_task_free(lm);
    kd_doc_task_free(doc);
    if (rc) return rc;
    put(R, "heldout/loss", loss);
    put(R, "heldout/ppl", exp(loss));
    ctx->eval_loss = loss;
    return KD_OK;
}

// ----------------------------------------------------------------------------- exact match

#define MAX_TASK_NAMES 16

typedef struct {
    char name[KD_NAME_MAX];
} task_name;

// Strips trailing whitespace; returns the length.
static size_t rstrip(char *s, size_t n) {
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) s[--n] = '\0';
    return n;
}

// A task prompt: [BOS] + its ids. The prompt is a rendered chat text, so the markers in it
// (<|eot_id|>, ...) are matched as special tokens, as a tokenizer applied to a rendered
// template does. Returns the new array (n in *n) or NULL with err set.
static int32_t *encode_prompt(const kd_tokenizer *tok, const char *text, size_t len, int *n, kd_error *err) {
    kd_ids ids = {0};
    if (kd_tokenizer_bos(tok) >= 0) kd_ids_push(&ids, kd_tokenizer_bos(tok));
    if (kd_tokenizer_encode(tok, text, len, 1, &ids, err) != KD_OK || ids.n == 0) {
        if (ids.n == 0) kd_fail(err, KD_EINPUT, "an empty prompt (the tokenizer has no BOS)");
        kd_ids_free(&ids);
        return NULL;
    }
    *n = (int)ids.n;
    return ids.v;
}

// The text of a completion without its stop id and special tokens, trailing space
// stripped (caller frees).
static char *decode_answer(const kd_tokenizer *tok, const kd_gen_seq *s, kd_error *err) {
    int ng = s->n_gen - (s->stop_eos ? 1 : 0);
    kd_strbuf b = {0};
    kd_strbuf_printf(&b, "%s", "");
    if (kd_tokenizer_decode(tok, s->tokens + s->n_prompt, (size_t)(ng > 0 ? ng : 0), 1, &b, err)) {
        kd_strbuf_free(&b);
        return NULL;
    }
    rstrip(b.s, b.n);
    return b.s;
}

static int eval_exact(kd_stage_ctx *ctx, const char *path, results *R, kd_error *err) {
    int rank = kd_comm_rank(ctx->comm), world = kd_comm_size(ctx->comm);
    kd_jsonl *jl = NULL;
    kd_tokenizer *tok = NULL;
    int rc = kd_recipe_open_tokenizer(ctx->recipe, 0, &tok, err);
    if (!rc) rc = kd_jsonl_open(&jl, path, err);
    if (rc) {
        if (tok) kd_tokenizer_free(tok);
        return rc;
    }
    // every rank parses the file; rank r generates lines r, r+W, ...
    task_name names[MAX_TASK_NAMES];
    int n_names = 0, cap = 0, n = 0;
    kd_gen_seq *seqs = NULL;
    char **answers = NULL;
    int *task_of = NULL;
    kd_json *v = NULL;
    while ((rc = kd_jsonl_next(jl, &v, err)) == KD_OK && v) {
        const kd_json *t = kd_json_get(v, "task"), *p = kd_json_get(v, "prompt"), *a = kd_json_get(v, "answer");
        if (!p || p->type != KD_JSON_STRING || !a || a->type != KD_JSON_STRING || !t || t->type != KD_JSON_STRING) {
            rc = kd_fail(err, KD_EINPUT, "%s:%ld: expected {\"task\": str, \"prompt\": str, \"answer\": str}", path,
                         kd_jsonl_line(jl));
            kd_json_free(v);
            break;
        }
        int ti = 0;
        while (ti < n_names && strcmp(names[ti].name, t->str) != 0) ti++;
        if (ti == n_names && n_names < MAX_TASK_NAMES) snprintf(names[n_names++].name, KD_NAME_MAX, "%s", t->str);
        if (ti >= MAX_TASK_NAMES) ti = MAX_TASK_NAMES - 1;
        if (n % world == rank) {
            if (n / world >= cap) {
                cap = cap ? 2 * cap : 64;
                seqs = kd_realloc(seqs, sizeof *seqs * (size_t)cap);
                answers = kd_realloc(answers, sizeof *answers * (size_t)cap);
                task_of = kd_realloc(task_of, sizeof *task_of * (size_t)cap);
            }
            int k = n / world, np = 0;
            memset(&seqs[k], 0, sizeof seqs[k]);
            // eval_tasks.jsonl prompts are rendered without BOS
            seqs[k].prompt = encode_prompt(tok, p->str, p->len, &np, err);
            seqs[k].n_prompt = np, seqs[k].index = (uint64_t)n;
            answers[k] = kd_strdup(a->str);
            task_of[k] = ti;
            if (!seqs[k].prompt) {
                kd_error_prefix(err, "%s:%ld: prompt: ", path, kd_jsonl_line(jl));
                rc = KD_EINPUT, n++;
                kd_json_free(v);
                break;
            }
        }
        n++;
        kd_json_free(v);
    }
    kd_jsonl_close(jl);
    int mine = n / world + (n % world > rank);
    kd_gen_params gp;
    kd_gen_params_default(&gp);
    gp.greedy = 1, gp.max_new_tokens = ctx->spec->eval.max_new_tokens;
    int32_t stop[KD_TOK_MAX_STOP];
    kd_gen_set_stops(&gp, stop, kd_tokenizer_stop_ids(tok, stop));
    gp.batch = ctx->spec->batch.micro;
    if (!rc && mine > 0) rc = kd_generate(ctx->model, seqs, mine, &gp, 0, err);
    double hits[MAX_TASK_NAMES + 1] = {0}, counts[MAX_TASK_NAMES + 1] = {0};
    for (int k = 0; !rc && k < mine; k++) {
        char *text = decode_answer(tok, &seqs[k], err);
        if (!text) {
            rc = KD_EINPUT;
            break;
        }
        int hit = strcmp(text, answers[k]) == 0;
        hits[task_of[k]] += hit, counts[task_of[k]] += 1;
        hits[MAX_TASK_NAMES] += hit, counts[MAX_TASK_NAMES] += 1;
        free(text);
    }
    for (int k = 0; k < mine; k++) {
        free((void *)seqs[k].prompt);
        free(answers[k]);
        kd_gen_seq_clear(&seqs[k]);
    }
    free(seqs), free(answers), free(task_of);
    kd_tokenizer_free(tok);
    if ((rc = kd_comm_agree(ctx->comm, rc, err))) return rc;
    kd_comm_allreduce_f64(ctx->comm, hits, MAX_TASK_NAMES + 1);
    kd_comm_allreduce_f64(ctx->comm, counts, MAX_TASK_NAMES + 1);
    char key[96];
    put(R, "exact_match/all", counts[MAX_TASK_NAMES] > 0 ? hits[MAX_TASK_NAMES] / counts[MAX_TASK_NAMES] : NAN);
    for (int i = 0; i < n_names; i++) {
        snprintf(key, sizeof key, "exact_match/%s", names[i].name);
        put(R, key, counts[i] > 0 ? hits[i] / counts[i] : NAN);
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- preferences

int kd_eval_completion_logps(kd_model *m, int32_t **prompts, const int *np, int32_t **comps, const int *nc, int n,
                            int T, double *sums, kd_error *err) {
    const kd_ops *o = kd_model_ops(m);
    size_t N = (size_t)n * T;
    int32_t *ids = kd_malloc(N * sizeof(int32_t)), *tg = kd_malloc(N * sizeof(int32_t)), *seq = kd_malloc(N * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        int p = np[i] < T - 1 ? np[i] : T - 1, c = nc[i] < T - p ? nc[i] : T - p, L = p + c;
        const int32_t *P = prompts[i] + (np[i] - p);  // prompt kept from the right
        for (int j = 0; j < T; j++) {
            size_t k = (size_t)i * T + j;
            ids[k] = j < p ? P[j] : j < L ? comps[i][j - p] : 0;
            tg[k] = j + 1 < L ? (j + 1 < p ? P[j + 1] : comps[i][j + 1 - p]) : -1;
            seq[k] = (j + 1 < L && j + 1 >= p) ? i : -1;
        }
    }
    int rc = kd_model_forward(m, ids, NULL, NULL, n, T, err);
    if (!rc) {
        int32_t *tg_dev = o->mem->alloc(o->ctx, N * sizeof(int32_t));
        float *lp_dev = o->mem->alloc(o->ctx, N * sizeof(float)), *lp = kd_malloc(N * sizeof(float));
        o->mem->upload(o->ctx, tg_dev, tg, N * sizeof(int32_t));
        o->losses->token_logp_fwd(o->ctx, lp_dev, kd_model_logits(m), tg_dev, (int)N, kd_model_cfg(m)->vocab_size);
        o->mem->download(o->ctx, lp, lp_dev, N * sizeof(float));
        kd_losses_segment_sum(sums, NULL, lp, seq, (int)N, n);
        o->mem->free(o->ctx, tg_dev), o->mem->free(o->ctx, lp_dev), free(lp);
    }
    free(ids), free(tg), free(seq);
    return rc;
}

static int eval_prefs(kd_stage_ctx *ctx, const char *path, kd_model *ref, results *R, kd_error *err) {
    int rank = kd_comm_rank(ctx->comm), world = kd_comm_size(ctx->comm), T = ctx->spec->batch.seq_len;
    kd_prefs *pf = NULL;
    int rc = kd_prefs_open(&pf, path, err);
    if (rc) return rc;
    uint64_t count = kd_prefs_count(pf);
    double acc[5] = {0};  // policy prefers chosen, reward accuracy, reward margin, pairs, -
    for (uint64_t i = (uint64_t)rank; i < count && !rc; i += (uint64_t)world) {
        int32_t *p = NULL, *c = NULL, *r = NULL;
        int np = 0, nc = 0, nr = 0;
        if (kd_signals_pending()) { // stop within a pair: the stage is rerun from its start
            rc = kd_fail(err, KD_EREQUEUE, "eval stopped by a signal; run the same command again");
            break;
        }
        if ((rc = kd_prefs_read(pf, i, &p, &np, &c, &nc, &r, &nr, err))) break;
        int32_t *P[2] = {p, p}, *C[2] = {c, r};
        int NP[2] = {np, np}, NC[2] = {nc, nr};
        double pol[2], rf[2] = {0, 0};
        rc = kd_eval_completion_logps(ctx->model, P, NP, C, NC, 2, T, pol, err);
        if (!rc && ref) rc = kd_eval_completion_logps(ref, P, NP, C, NC, 2, T, rf, err);
        if (!rc) {
            acc[0] += pol[0] > pol[1];
            double margin = (pol[0] - rf[0]) - (pol[1] - rf[1]);
            acc[1] += margin > 0, acc[2] += margin, acc[3] += 1;
        }
        free(p), free(c), free(r);
    }
    kd_prefs_close(pf);
    if ((rc = kd_comm_agree(ctx->comm, rc, err))) return rc;
    kd_comm_allreduce_f64(ctx->comm, acc, 5);
    double n = acc[3] > 0 ? acc[3] : 1;
    put(R, "prefs/chosen_preferred", acc[0] / n);
    if (ref) {
        put(R, "prefs/reward_accuracy", acc[1] / n);
        put(R, "prefs/logratio_margin", acc[2] / n);
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- stage

int kd_stage_eval(kd_stage_ctx *ctx, kd_error *err) {
    const kd_stage_spec *sp = ctx->spec;
    int rank = kd_comm_rank(ctx->comm);
    results R = {.n = 0};
    ctx->eval_loss = NAN;
    int rc = KD_OK;
    if (sp->eval_data[0]) rc = eval_loss(ctx, &R, err);
    kd_model *ref = NULL;
    if (!rc && sp->eval.has_reference) {
        char what[KD_NAME_MAX + 32];
        snprintf(what, sizeof what, "stages.%s.reference.from", sp->name);
        rc = ctx->load_frozen(ctx->run, &sp->eval.reference, what, &ref, err);
    }
    for (int i = 0; !rc && i < sp->eval.n_tasks; i++) {
        const char *t = sp->eval.tasks[i];
        int choices = 0;
        if (kd_str_endswith(t, ".jsonl")) {
            rc = kd_eval_is_choices(t, &choices, err);
            if (!rc) rc = choices ? kd_eval_choices(ctx, t, &R, err) : eval_exact(ctx, t, &R, err);
        } else if (kd_str_endswith(t, ".h5")) {
            rc = eval_prefs(ctx, t, ref, &R, err);
        } else {
            rc = kd_fail(err, KD_EINPUT, "stages.%s.tasks[%d]: '%s': expected a .jsonl task file (exact match "
                         "or multiple choice) or a .h5 preference set", sp->name, i, t);
        }
    }
    kd_model_free(ref);
    if (rc) return rc;
    // the model is unchanged: its checkpoint is the stage's output for later stages
    char root[2 * KD_PATH_MAX + 16];
    snprintf(root, sizeof root, "%s/ckpt", ctx->stage_dir);
    rc = kd_model_save(ctx->comm, ctx->model, root, 0, ctx->stage_index, sp->name, ctx->final_ckpt,
                       sizeof ctx->final_ckpt, err);
    if (rc || rank != 0) return rc;
    kd_log_table_begin("evaluation");
    for (int i = 0; i < R.n; i++) kd_log_kv(R.r[i].key, "%.6f", R.r[i].value);
    kd_log_table_end();
    char path[2 * KD_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/eval.json", ctx->stage_dir);
    FILE *f = fopen(path, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot write", path);
    fprintf(f, "{");
    for (int i = 0; i < R.n; i++)
        fprintf(f, "%s\"%s\": %.9g", i ? ", " : "", R.r[i].key, isfinite(R.r[i].value) ? R.r[i].value : 0.0);
    fprintf(f, "}\n");
    fclose(f);
    return KD_OK;
}

// ----------------------------------------------------------------------------- recipe rules

int kd_stage_eval_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err) {
    (void)mc;
    const kd_stage_spec *s = &r->stages[i];
    int rc = KD_OK;
    for (int k = 0; !rc && k < s->eval.n_tasks; k++) {
        const char *t = s->eval.tasks[k];
        if (kd_str_endswith(t, ".jsonl")) rc = kd_eval_check_tasks_file(t, err);
        else if (!kd_str_endswith(t, ".h5"))
            rc = kd_fail(err, KD_EINPUT, "'%s': expected a .jsonl task file (exact match or multiple choice) or a .h5 "
                         "preference set", t);
        if (rc) kd_error_prefix(err, "%s:%d: stages.%s.tasks[%d]: ", r->path, s->line, s->name, k);
    }
    return rc;
}

int kd_stage_eval_check(kd_recipe_checker *c, kd_recipe *r, int i) {
    const kd_stage_spec *s = &r->stages[i];
    char p[64];
    snprintf(p, sizeof p, "stages[%d]", i);
    if (!s->eval_data[0] && !s->eval.n_tasks)
        return kd_recipe_bad(c, p,
                             "missing required key 'eval_data' or 'tasks' (an eval stage needs "
                             "one)");
    return s->eval.has_reference ? kd_recipe_check_reference(c, &s->eval.reference, i) : KD_OK;
}
