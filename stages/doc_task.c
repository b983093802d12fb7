// doc_task.c: training on DOCUMENTS (conversations, pseudo-label sequences) rather than a
// token stream: next-token CE masked by the dataset's loss_mask. Rows of seq_len tokens
// hold one document each (padding) or several (packing, first fit in file order); within
// a row documents never see each other (document ids; positions restart). The global
// sample order is a seeded permutation of the rows per epoch. Used by sft and kd.
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/sampler.h"
#include "runtime/base/log.h"
#include "stages/stage.h"

typedef struct {
    uint64_t first_doc;  // documents [first_doc, first_doc + n_docs) fill the row
    uint32_t n_docs;
} row_plan;

struct kd_doc_task {
    kd_dataset *ds;
    const uint64_t *off;
    row_plan *rows;
    uint64_t n_rows, seed, truncated;
    int shuffle, seq_len, pad_id, use_mask;
    int32_t *tok;  // scratch (seq_len)
    uint8_t *msk;  // scratch (seq_len)
    // where each position of the last fill came from: global token index, -1 for padding
    const int32_t *fill_ids;
    int64_t *src;
    size_t src_cap;
};

static uint64_t doc_len(const kd_doc_task *t, uint64_t d, int T) {
    uint64_t n = t->off[d + 1] - t->off[d];
    return n > (uint64_t)T ? (uint64_t)T : n;
}

static void plan_rows(kd_doc_task *t, int packing) {
    uint64_t nd = kd_dataset_get_info(t->ds)->n_docs, cap = nd ? nd : 1;
    int T = t->seq_len;
    t->rows = kd_malloc(sizeof(row_plan) * cap);
    t->n_rows = 0;
    uint64_t used = (uint64_t)T + 1;  // forces a new row for the first document
    for (uint64_t d = 0; d < nd; d++) {
        uint64_t n = t->off[d + 1] - t->off[d];
        if (n < 2) continue;  // nothing to predict
        if (n > (uint64_t)T) t->truncated++;
        n = doc_len(t, d, T);
        if (!packing || used + n > (uint64_t)T || t->rows[t->n_rows - 1].first_doc + t->rows[t->n_rows - 1].n_docs != d) {
            t->rows[t->n_rows++] = (row_plan){.first_doc = d, .n_docs = 1};
            used = n;
        } else {
            t->rows[t->n_rows - 1].n_docs++;
            used += n;
        }
    }
}

static int doc_fill(void *vctx, const uint64_t *pos, int n, int T, int32_t *ids, int32_t *targets,
                    float *weights, int32_t *seg, int *used_seg, kd_error *err) {
    kd_doc_task *t = vctx;
    if ((size_t)n * T > t->src_cap) {
        free(t->src);
        t->src_cap = (size_t)n * T;
        t->src = kd_malloc(sizeof(int64_t) * t->src_cap);
    }
    t->fill_ids = ids;
    for (int i = 0; i < n; i++) {
        uint64_t r = t->shuffle ? kd_sampler_window(t->seed, t->n_rows, pos[i]) : pos[i] % t->n_rows;
        const row_plan *rp = &t->rows[r];
        int32_t *I = ids + (size_t)i * T, *G = targets + (size_t)i * T, *S = seg + (size_t)i * T;
        float *W = weights + (size_t)i * T;
        int p = 0;
        for (uint32_t k = 0; k < rp->n_docs; k++) {
            uint64_t d = rp->first_doc + k, len = doc_len(t, d, T);
            int rc = kd_dataset_read_tokens(t->ds, t->off[d], len, t->tok, t->msk, err);
            if (rc) return rc;
            for (uint64_t j = 0; j < len; j++, p++) {
                t->src[(size_t)i * T + p] = (int64_t)(t->off[d] + j);
                I[p] = t->tok[j];
                S[p] = (int32_t)k;
                int last = j + 1 == len;
                G[p] = last ? -1 : t->tok[j + 1];
                W[p] = last ? 0.0f : t->use_mask ? (float)t->msk[j + 1] : 1.0f;
            }
        }
        for (; p < T; p++) {
            t->src[(size_t)i * T + p] = -1;
            I[p] = t->pad_id, S[p] = (int32_t)rp->n_docs, G[p] = -1, W[p] = 0.0f;
        }
    }
    *used_seg = 1;
    return KD_OK;
}

int kd_doc_task_open(kd_doc_task **out, const char *path, int vocab_size, int seq_len, uint64_t seed,
                     int shuffle, int packing, int use_mask, kd_task *task, kd_error *err) {
    *out = NULL;
    kd_dataset *ds = NULL;
    int rc = kd_stage_open_tokens(&ds, path, vocab_size, err);
    if (rc) return rc;
    const kd_dataset_info *info = kd_dataset_get_info(ds);
    kd_doc_task *t = kd_calloc(1, sizeof *t);
    t->ds = ds, t->off = kd_dataset_offsets(ds), t->seed = seed, t->shuffle = shuffle, t->seq_len = seq_len;
    t->use_mask = use_mask;
    t->pad_id = info->pad_id >= 0 ? info->pad_id : 0;
    t->tok = kd_malloc(sizeof(int32_t) * (size_t)seq_len);
    t->msk = kd_malloc((size_t)seq_len);
    plan_rows(t, packing);
    if (t->n_rows == 0) {
        kd_doc_task_free(t);
        return kd_fail(err, KD_EINPUT, "%s: no document has 2 or more tokens: nothing to train on", path);
    }
    *task = (kd_task){.ctx = t, .fill = doc_fill, .loss = kd_stage_ce_loss, .n_samples = t->n_rows};
    *out = t;
    return KD_OK;
}

uint64_t kd_doc_task_truncated(const kd_doc_task *t) { return t->truncated; }

const int64_t *kd_doc_task_sources(const kd_doc_task *t, const int32_t *ids) {
    return t->src + (ids - t->fill_ids);
}

kd_dataset *kd_doc_task_dataset(kd_doc_task *t) { return t->ds; }

void kd_doc_task_free(kd_doc_task *t) {
    if (!t) return;
    kd_dataset_close(t->ds);
    free(t->rows);
    free(t->tok);
    free(t->msk);
    free(t->src);
    free(t);
}
