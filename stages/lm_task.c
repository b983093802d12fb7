// lm_task.c: next-token cross-entropy over windows of a token dataset, as a kd_task: the
// training task of `pretrain` and the held-out evaluation of every LM-style stage.
#include <stdlib.h>

#include "data/dataset.h"
#include "data/sampler.h"
#include "stages/stage.h"

struct kd_lm_task {
    kd_dataset *ds;
    uint64_t n_windows, seed;
    int shuffle, seq_len;
    int32_t *tokens;  // scratch (n, T+1)
    float *lw;        // scratch (n, T)
    int cap;
};

static int lm_fill(void *vctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets,
                   float *weights, int32_t *seg, int *used_seg, kd_error *err) {
    (void)seg;
    kd_lm_task *t = vctx;
    if (n > t->cap) {
        free(t->tokens);
        free(t->lw);
        t->tokens = kd_malloc(sizeof(int32_t) * (size_t)n * (T + 1));
        t->lw = kd_malloc(sizeof(float) * (size_t)n * T);
        t->cap = n;
    }
    uint64_t *idx = kd_malloc(sizeof(uint64_t) * (size_t)n);
    for (int i = 0; i < n; i++)
        idx[i] = t->shuffle ? kd_sampler_window(t->seed, t->n_windows, pos[i]) : pos[i] % t->n_windows;
    int rc = kd_dataset_read_windows(t->ds, idx, n, T, t->tokens, t->lw, err);
    free(idx);
    if (rc) return rc;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < T; j++) {
            ids[(size_t)i * T + j] = t->tokens[(size_t)i * (T + 1) + j];
            targets[(size_t)i * T + j] = t->tokens[(size_t)i * (T + 1) + j + 1];
            weights[(size_t)i * T + j] = t->lw[(size_t)i * T + j];
        }
    *used_seg = 0;
    return KD_OK;
}

int kd_lm_task_open(kd_lm_task **out, const char *path, int vocab_size, int seq_len, uint64_t seed,
                    int shuffle, kd_task *task, kd_error *err) {
    *out = NULL;
    kd_dataset *ds = NULL;
    int rc = kd_stage_open_tokens(&ds, path, vocab_size, err);
    if (rc) return rc;
    const kd_dataset_info *info = kd_dataset_get_info(ds);
    uint64_t nw = kd_dataset_n_windows(ds, seq_len);
    if (nw == 0) {
        kd_dataset_close(ds);
        return kd_fail(err, KD_EINPUT, "%s: seq_len %d is larger than the data (%llu tokens): need at least seq_len+1 tokens",
                       path, seq_len, (unsigned long long)info->n_tokens);
    }
    kd_lm_task *t = kd_calloc(1, sizeof *t);
    t->ds = ds, t->n_windows = nw, t->seed = seed, t->shuffle = shuffle, t->seq_len = seq_len;
    *task = (kd_task){.ctx = t, .fill = lm_fill, .loss = kd_stage_ce_loss, .n_extra = 0, .n_samples = nw};
    *out = t;
    return KD_OK;
}

void kd_lm_task_free(kd_lm_task *t) {
    if (!t) return;
    kd_dataset_close(t->ds);
    free(t->tokens);
    free(t->lw);
    free(t);
}
