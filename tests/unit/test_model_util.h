// test_model_util.h: small helpers shared by the model tests: a tiny config, random
// tokens, the mean CE loss of a batch, and relative-error reporting.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model.h"
#include "runtime/base/rng.h"

static inline kd_model_config tiny_config(int n_layers, int tie) {
    kd_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 37, c.d_model = 24, c.n_layers = n_layers, c.n_heads = 4, c.n_kv_heads = 2;
    c.head_dim = 6, c.ffn_dim = 40, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.tie_embeddings = tie;
    c.d_state = 6, c.chunk_size = 4, c.conv_width = 4;
    return c;
}

static inline void random_tokens(int32_t *t, int n, int V, uint64_t seed) {
    kd_rng r;
    kd_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(kd_rng_u64(&r) % (uint64_t)V);
}

// Mean weighted CE of ids->targets; with grad, the backward fills the model's grads.
static inline double model_loss(kd_model *m, const int32_t *ids, const int32_t *tg, const float *w,
                                int B, int T, int grad) {
    kd_error err = {0};
    if (kd_model_forward(m, ids, NULL, NULL, B, T, &err)) {
        fprintf(stderr, "forward failed: %s\n", err.msg);
        exit(1);
    }
    double wsum = 0;
    for (int i = 0; i < B * T; i++) wsum += tg[i] >= 0 ? (w ? w[i] : 1.0) : 0.0;
    double l = kd_model_ce_loss(m, tg, w, (float)(1.0 / wsum), grad);
    if (grad) {
        kd_model_zero_grad(m);
        kd_model_backward(m);
    }
    return l / wsum;
}
