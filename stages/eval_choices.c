// eval_choices.c: multiple-choice tasks of the eval stage, scored the way lm-eval scores
// its multiple_choice tasks (loglikelihood of each choice after the context):
//   - a JSONL line {"task": str, "context": str, "choices": [str, ...], "gold": int};
//   - context and choice are encoded as lm-eval's _encode_pair does: the context's trailing
//     whitespace moves to the front of the choice, whole = encode(context + choice),
//     context ids = encode(context), choice ids = whole[len(context ids):]; the model's BOS
//     goes first, special tokens written in the text are matched (rendered chat prompts);
//   - acc: the choice with the highest sum of log-probs is gold; acc_norm: the highest sum
//     divided by the choice's length in characters (UTF-8 code points); ties go to the
//     first choice.
// Results choices/<task>/acc|acc_norm and choices/all/acc|acc_norm; every item's log-probs
// and picks go to STAGE_DIR/choices-<file name> (one JSON line per item) for inspection.
// Rank r scores items r, r+W, ...; the log-probs are summed across ranks.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl.h"
#include "data/tokenizer.h"
#include "runtime/base/signals.h"
#include "stages/eval_internal.h"

#define MAX_CHOICES 26
#define MAX_TASKS 16

typedef struct {
    int task, gold, n;                 // n choices
    int32_t *ctx, *cont[MAX_CHOICES]; // this rank's items only (NULL elsewhere)
    int n_ctx, n_cont[MAX_CHOICES];
    int chars[MAX_CHOICES];            // code points of each choice
} item;

int kd_eval_is_choices(const char *path, int *yes, kd_error *err) {
    kd_jsonl *jl = NULL;
    kd_json *v = NULL;
    *yes = 0;
    int rc = kd_jsonl_open(&jl, path, err);
    if (!rc) rc = kd_jsonl_next(jl, &v, err);
    if (!rc && v) *yes = v->type == KD_JSON_OBJECT && kd_json_get(v, "choices") != NULL;
    kd_json_free(v);
    kd_jsonl_close(jl);
    return rc;
}

static int utf8_chars(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

// lm-eval's _encode_pair for one choice: [BOS] + ids(context) and the choice's own ids.
static int encode_pair(const kd_tokenizer *tok, const char *ctx, size_t nctx, const char *ch, size_t nch,
                       item *it, int k, kd_error *err) {
    size_t keep = nctx;
    while (keep > 0 && (ctx[keep - 1] == ' ' || ctx[keep - 1] == '\t' || ctx[keep - 1] == '\n' || ctx[keep - 1] == '\r'))
        keep--;
    kd_ids c = {0}, whole = {0};
    if (kd_tokenizer_bos(tok) >= 0) kd_ids_push(&c, kd_tokenizer_bos(tok));
    int rc = kd_tokenizer_encode(tok, ctx, keep, 1, &c, err);
    char *joined = kd_malloc(nctx + nch + 1);
    memcpy(joined, ctx, nctx), memcpy(joined + nctx, ch, nch);
    if (!rc && kd_tokenizer_bos(tok) >= 0) kd_ids_push(&whole, kd_tokenizer_bos(tok));
    if (!rc) rc = kd_tokenizer_encode(tok, joined, nctx + nch, 1, &whole, err);
    free(joined);
    if (!rc && whole.n <= c.n)
        rc = kd_fail(err, KD_EINPUT, "choices[%d]: encodes to no tokens after the context", k);
    if (!rc) {
        it->n_cont[k] = (int)(whole.n - c.n);
        it->cont[k] = kd_malloc(sizeof(int32_t) * (size_t)it->n_cont[k]);
        memcpy(it->cont[k], whole.v + c.n, sizeof(int32_t) * (size_t)it->n_cont[k]);
        if (!it->ctx) it->ctx = c.v, it->n_ctx = (int)c.n, c.v = NULL;
    }
    kd_ids_free(&c), kd_ids_free(&whole);
    return rc;
}

// One line into *it (mine: also its ids). Messages name the file and line.
static int parse_item(const kd_json *v, const char *where, int mine, const kd_tokenizer *tok, char names[][KD_NAME_MAX],
                      int *n_names, item *it, kd_error *err) {
    const kd_json *t = kd_json_get(v, "task"), *c = kd_json_get(v, "context"), *ch = kd_json_get(v, "choices"),
                  *g = kd_json_get(v, "gold");
    memset(it, 0, sizeof *it);
    if (v->type != KD_JSON_OBJECT || !t || t->type != KD_JSON_STRING || !c || c->type != KD_JSON_STRING || !ch ||
        ch->type != KD_JSON_ARRAY || !g || g->type != KD_JSON_NUMBER)
        return kd_fail(err, KD_EINPUT, "%s: expected {\"task\": str, \"context\": str, \"choices\": [str, ...], "
                       "\"gold\": int}", where);
    if (ch->n < 2 || ch->n > MAX_CHOICES)
        return kd_fail(err, KD_EINPUT, "%s: choices: expected 2..%d strings, found %zu", where, MAX_CHOICES, ch->n);
    if (!g->is_int || g->integer < 0 || g->integer >= (int64_t)ch->n)
        return kd_fail(err, KD_EINPUT, "%s: gold: expected an index in [0, %zu), found %g", where, ch->n, g->number);
    it->n = (int)ch->n, it->gold = (int)g->integer;
    int ti = 0;
    while (ti < *n_names && strcmp(names[ti], t->str) != 0) ti++;
    if (ti == *n_names && ti < MAX_TASKS) snprintf(names[(*n_names)++], KD_NAME_MAX, "%s", t->str);
    it->task = ti < MAX_TASKS ? ti : MAX_TASKS - 1;
    for (int k = 0; k < it->n; k++) {
        const kd_json *s = kd_json_at(ch, (size_t)k);
        if (s->type != KD_JSON_STRING || s->len == 0)
            return kd_fail(err, KD_EINPUT, "%s: choices[%d]: expected a non-empty string", where, k);
        it->chars[k] = utf8_chars(s->str, s->len);
        int rc = mine ? encode_pair(tok, c->str, c->len, s->str, s->len, it, k, err) : KD_OK;
        if (rc) {
            kd_error_prefix(err, "%s: ", where);
            return rc;
        }
    }
    return KD_OK;
}

static void item_free(item *it) {
    free(it->ctx);
    for (int k = 0; k < it->n; k++) free(it->cont[k]);
}

static int argmax(const double *s, int n) {
    int b = 0;
    for (int k = 1; k < n; k++)
        if (s[k] > s[b]) b = k;
    return b;
}

// Rank 0: one line per item with its scores.
static int write_items(kd_stage_ctx *ctx, const char *path, const item *it, int n, const double *lp,
                       char names[][KD_NAME_MAX], kd_error *err) {
    const char *base = strrchr(path, '/');
    char out[2 * KD_PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/choices-%s", ctx->stage_dir, base ? base + 1 : path);
    FILE *f = fopen(out, "w");
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: cannot write", out);
    for (int i = 0; i < n; i++) {
        const double *s = lp + (size_t)i * MAX_CHOICES;
        double norm[MAX_CHOICES];
        for (int k = 0; k < it[i].n; k++) norm[k] = s[k] / it[i].chars[k];
        fprintf(f, "{\"line\": %d, \"task\": ", i + 1);
        kd_json_write_string(f, names[it[i].task]);
        fprintf(f, ", \"gold\": %d, \"pred\": %d, \"pred_norm\": %d, \"logprobs\": [", it[i].gold,
                argmax(s, it[i].n), argmax(norm, it[i].n));
        for (int k = 0; k < it[i].n; k++) fprintf(f, "%s%.9g", k ? ", " : "", s[k]);
        fprintf(f, "]}\n");
    }
    if (fclose(f) != 0) return kd_fail(err, KD_ERUNTIME, "%s: write failed (disk full?)", out);
    return KD_OK;
}

int kd_eval_check_tasks_file(const char *path, kd_error *err) {
    kd_jsonl *jl = NULL;
    int rc = kd_jsonl_open(&jl, path, err), choices = -1, n = 0;
    char names[MAX_TASKS][KD_NAME_MAX];
    int n_names = 0;
    kd_json *v = NULL;
    while (!rc && (rc = kd_jsonl_next(jl, &v, err)) == KD_OK && v) {
        char where[KD_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%ld", path, kd_jsonl_line(jl));
        if (choices < 0) choices = v->type == KD_JSON_OBJECT && kd_json_get(v, "choices") != NULL;
        if (choices) {
            item it;
            rc = parse_item(v, where, 0, NULL, names, &n_names, &it, err);
        } else {
            const kd_json *t = kd_json_get(v, "task"), *p = kd_json_get(v, "prompt"), *a = kd_json_get(v, "answer");
            if (!t || t->type != KD_JSON_STRING || !p || p->type != KD_JSON_STRING || !a || a->type != KD_JSON_STRING)
                rc = kd_fail(err, KD_EINPUT, "%s: expected {\"task\": str, \"prompt\": str, \"answer\": str} (the "
                             "file's first line is an exact-match item)", where);
        }
        kd_json_free(v);
        n++;
    }
    kd_jsonl_close(jl);
    if (!rc && n == 0) rc = kd_fail(err, KD_EINPUT, "%s: no items", path);
    return rc;
}

int kd_eval_choices(kd_stage_ctx *ctx, const char *path, kd_eval_results *R, kd_error *err) {
    int rank = kd_comm_rank(ctx->comm), world = kd_comm_size(ctx->comm), T = ctx->spec->batch.seq_len;
    kd_tokenizer *tok = NULL;
    kd_jsonl *jl = NULL;
    int rc = kd_recipe_open_tokenizer(ctx->recipe, 0, &tok, err);
    if (!rc) rc = kd_jsonl_open(&jl, path, err);
    // every rank parses the file (the counts and names); rank r encodes items r, r+W, ...
    char names[MAX_TASKS][KD_NAME_MAX];
    int n_names = 0, n = 0, cap = 0;
    item *items = NULL;
    kd_json *v = NULL;
    while (!rc && (rc = kd_jsonl_next(jl, &v, err)) == KD_OK && v) {
        if (n == cap) items = kd_realloc(items, sizeof *items * (size_t)(cap = cap ? 2 * cap : 64));
        char where[KD_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%ld", path, kd_jsonl_line(jl));
        rc = parse_item(v, where, n % world == rank, tok, names, &n_names, &items[n], err);
        kd_json_free(v);
        if (rc) item_free(&items[n]); // partly filled
        else n++;
    }
    kd_jsonl_close(jl);
    if (!rc && n == 0) rc = kd_fail(err, KD_EINPUT, "%s: no items", path);
    double *lp = kd_calloc((size_t)(n > 0 ? n : 1) * MAX_CHOICES, sizeof(double));
    for (int i = rank; !rc && i < n; i += world) {
        if (kd_signals_pending()) { // the stage is rerun from its start
            rc = kd_fail(err, KD_EREQUEUE, "eval stopped by a signal; run the same command again");
            break;
        }
        int32_t *P[MAX_CHOICES];
        int NP[MAX_CHOICES];
        for (int k = 0; k < items[i].n; k++) P[k] = items[i].ctx, NP[k] = items[i].n_ctx;
        rc = kd_eval_completion_logps(ctx->model, P, NP, items[i].cont, items[i].n_cont, items[i].n, T,
                                      lp + (size_t)i * MAX_CHOICES, err);
    }
    if ((rc = kd_comm_agree(ctx->comm, rc, err)) == KD_OK) {
        kd_comm_allreduce_f64(ctx->comm, lp, (size_t)n * MAX_CHOICES);
        double acc[MAX_TASKS + 1][3] = {{0}}; // per task (and all): acc, acc_norm, count
        for (int i = 0; i < n; i++) {
            const double *s = lp + (size_t)i * MAX_CHOICES;
            double norm[MAX_CHOICES];
            for (int k = 0; k < items[i].n; k++) norm[k] = s[k] / items[i].chars[k];
            int hit = argmax(s, items[i].n) == items[i].gold, hitn = argmax(norm, items[i].n) == items[i].gold;
            for (int a = 0; a < 2; a++) {
                double *row = acc[a ? MAX_TASKS : items[i].task];
                row[0] += hit, row[1] += hitn, row[2] += 1;
            }
        }
        char key[96];
        for (int t = -1; t < n_names; t++) {
            const double *row = acc[t < 0 ? MAX_TASKS : t];
            snprintf(key, sizeof key, "choices/%s/acc", t < 0 ? "all" : names[t]);
            kd_eval_put(R, key, row[0] / row[2]);
            snprintf(key, sizeof key, "choices/%s/acc_norm", t < 0 ? "all" : names[t]);
            kd_eval_put(R, key, row[1] / row[2]);
        }
        if (rank == 0) rc = write_items(ctx, path, items, n, lp, names, err);
        rc = kd_comm_agree(ctx->comm, rc, err);
    }
    for (int i = 0; i < n; i++) item_free(&items[i]);
    free(items), free(lp);
    if (tok) kd_tokenizer_free(tok);
    return rc;
}
