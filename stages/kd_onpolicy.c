// kd_onpolicy.c: on-policy distillation for the kd stage (TRL's GKD, "On-Policy
// Distillation of Language Models"): on a fraction lmbda of the optimizer steps the
// student writes the answers itself and the divergence to the teacher is taken on its own
// tokens. The choice of a step and every sampled token are functions of (run seed, step,
// global sample position) only, so a run is deterministic and a resumed run regenerates
// exactly the rows it would have seen. Called from the kd stage's fill (stages/kd.c), once
// per step for the rank's rows, so the trainer's loss normaliser counts the new targets.
#include <stdio.h>
#include <stdlib.h>

#include "runtime/base/rng.h"
#include "runtime/model/generate.h"
#include "stages/kind.h"

int kd_onpolicy_step(uint64_t seed, uint64_t step, float lmbda) {
    if (!(lmbda > 0.0f)) return 0;
    char key[48];
    snprintf(key, sizeof key, "kd/onpolicy/step/%llu", (unsigned long long)step);
    kd_rng r;
    kd_rng_seed_str(&r, seed, key);
    return kd_rng_uniform(&r) < (double)lmbda;
}

// Row r's prompt: its tokens up to and including the input of the first weighted target
// (-1 when the row has none).
static int prompt_end(const int32_t *targets, const float *w, int T) {
    for (int t = 0; t < T; t++)
        if (targets[t] >= 0 && w[t] > 0) return t;
    return -1;
}

int kd_onpolicy_rows(kd_model *student, const kd_onpolicy_cfg *oc, const uint64_t *pos, int n,
                     int T, int32_t *ids, int32_t *targets, float *w, int32_t *seg, kd_error *err) {
    kd_gen_seq *seqs = kd_calloc((size_t)n, sizeof *seqs);
    int *row = kd_malloc(sizeof(int) * (size_t)n), *t0 = kd_malloc(sizeof(int) * (size_t)n), k = 0;
    for (int r = 0; r < n; r++) {
        int e = prompt_end(targets + (size_t)r * T, w + (size_t)r * T, T);
        if (e < 0) continue; // nothing to answer: the row stays as it is
        seqs[k] = (kd_gen_seq){.prompt = ids + (size_t)r * T, .n_prompt = e + 1, .index = pos[r]};
        row[k] = r, t0[k++] = e;
    }
    kd_gen_params gp;
    kd_gen_params_default(&gp);
    gp.temperature = oc->temperature, gp.top_p = 1.0f, gp.top_k = 0,
    gp.greedy = oc->temperature == 0.0f;
    gp.seed = oc->seed ^ 0x6f6e706f6c696379ull, gp.eos_id = oc->eos_id, gp.batch = 1;
    // rows decode one batch each: the longest answer that still fits is T - t0 tokens
    int rc = KD_OK;
    for (int i = 0; i < k && !rc; i++) {
        gp.max_new_tokens = T - t0[i] < oc->max_new_tokens ? T - t0[i] : oc->max_new_tokens;
        rc = kd_generate(student, &seqs[i], 1, &gp, 0, err);
    }
    for (int i = 0; i < k && !rc; i++) {
        size_t o = (size_t)row[i] * T;
        int len = seqs[i].n_prompt + seqs[i].n_gen; // prompt + answer; inputs are its first len-1
        for (int t = 0; t < T; t++) {
            int live = t + 1 < len;
            ids[o + t] = live ? seqs[i].tokens[t] : ids[o + t];
            targets[o + t] = live ? seqs[i].tokens[t + 1] : -1;
            w[o + t] = live && t >= t0[i] ? 1.0f : 0.0f;
            if (seg) seg[o + t] = seg[o]; // one document per row
        }
    }
    for (int i = 0; i < k; i++) kd_gen_seq_clear(&seqs[i]);
    free(seqs), free(row), free(t0);
    return rc;
}
