// eval_internal.h: what the files of the eval stage share: the results table (printed and
// written to eval.json by eval.c), completion log-probs, and the multiple-choice tasks of
// eval_choices.c.
#pragma once
#include "stages/stage.h"

#define KD_EVAL_MAX_RESULTS 96

typedef struct {
    struct {
        char key[96];
        double value;
    } r[KD_EVAL_MAX_RESULTS];
    int n;
} kd_eval_results;

// Appends key = v (dropped when the table is full).
void kd_eval_put(kd_eval_results *R, const char *key, double v);

// Sum of log p(completion | prompt) of n rows under m, each row prompt + completion in one
// window of T tokens (the prompt loses its left side first, then the completion its
// right side). prompts[i] has np[i] ids, comps[i] nc[i] ids; sums (n) get the results.
int kd_eval_completion_logps(kd_model *m, int32_t **prompts, const int *np, int32_t **comps,
                             const int *nc, int n, int T, double *sums, kd_error *err);

// `check`: every line of a JSONL task file is an item of the kind its first line is
// (exact match or multiple choice), with the keys and types that kind needs; messages name
// FILE:LINE. Needs no model or tokenizer.
int kd_eval_check_tasks_file(const char *path, kd_error *err);
// *yes = 1 when the first line of the JSONL task file is a multiple-choice item (it has a
// "choices" key), 0 for exact-match lines.
int kd_eval_is_choices(const char *path, int *yes, kd_error *err);
// Multiple-choice accuracy of the JSONL file at path (eval_choices.c): results
// choices/<task>/acc and acc_norm, and choices/all/...; every item's scores are written to
// STAGE_DIR/choices-<file name>. Collective over the stage's ranks.
int kd_eval_choices(kd_stage_ctx *ctx, const char *path, kd_eval_results *R, kd_error *err);
