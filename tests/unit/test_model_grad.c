// Whole-model gradients vs central finite differences: for each parameter tensor, the
// directional derivative along a random unit direction supported on that tensor, and the
// gradient w.r.t. the embedding output (input hidden states) at one position; for a
// Transformer (tied and untied head) and a hybrid whose first layer is Mamba-2.
// Float32 forward, 4-point central stencil (8(L(h)-L(-h)) - (L(2h)-L(-2h)))/12h with
// h = 1e-2 along a unit direction: truncation O(h^4) is negligible and rounding is
// ~ 1e-7*|L|/h ~ 1e-5; we accept |fd - an| <= 2e-3*max(|an|,|fd|) + 2e-5.
#include "tests/unit/test_model_util.h"

static int check(const char *what, double an, double fd) {
    double tol = 2e-3 * fmax(fabs(an), fabs(fd)) + 2e-5;
    int ok = fabs(an - fd) <= tol;
    printf("%-4s %-48s analytic % .6e  fd % .6e  diff %.2e (tol %.2e)\n", ok ? "ok" : "FAIL", what, an, fd,
           fabs(an - fd), tol);
    return ok;
}

static int run(int tie, int hybrid) {
    kd_model_config c = tiny_config(2, tie);
    if (hybrid) c.mixer[0] = KD_MIXER_MAMBA2;  // layer 0 Mamba-2, layer 1 attention
    printf("--- tie_embeddings=%d, mamba layers=%d\n", tie, hybrid);
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &c, kd_ops_cpu(), 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 0;
    }
    kd_model_init_random(m, 7, 0.2f);  // larger std than training init: non-trivial gradients
    enum { B = 2, T = 7 };
    int32_t ids[B * T], tg[B * T];
    float w[B * T];
    random_tokens(ids, B * T, c.vocab_size, 1);
    random_tokens(tg, B * T, c.vocab_size, 2);
    tg[3] = -1;  // an ignored target
    for (int i = 0; i < B * T; i++) w[i] = 0.5f + 0.1f * (float)(i % 5);
    // token 36 exactly once, at position 5, for the embedding-output check
    for (int i = 0; i < B * T; i++) if (ids[i] == 36) ids[i] = 35;
    ids[5] = 36;

    const kd_param_table *pt = kd_model_table(m);
    size_t P = pt->total;
    float *p0 = malloc(P * sizeof(float)), *g = malloc(P * sizeof(float)), *pp = malloc(P * sizeof(float));
    memcpy(p0, kd_model_params(m), P * sizeof(float));
    model_loss(m, ids, tg, w, B, T, 1);
    memcpy(g, kd_model_grads(m), P * sizeof(float));
    float dembed[B * T * 24];
    memcpy(dembed, kd_model_dembed(m), sizeof dembed);

    int ok = 1;
    const float h = 1e-2f;
    kd_rng r;
    kd_rng_seed(&r, 3);
    for (int i = 0; i < pt->n; i++) {
        const kd_param_info *pi = &pt->t[i];
        double *d = malloc(pi->numel * sizeof(double)), nrm = 0, an = 0;
        for (size_t j = 0; j < pi->numel; j++) d[j] = kd_rng_normal(&r), nrm += d[j] * d[j];
        nrm = sqrt(nrm);
        for (size_t j = 0; j < pi->numel; j++) d[j] /= nrm, an += d[j] * g[pi->offset + j];
        double L[4];
        const float steps[4] = {h, -h, 2 * h, -2 * h};
        for (int q = 0; q < 4; q++) {
            memcpy(pp, p0, P * sizeof(float));
            for (size_t j = 0; j < pi->numel; j++) pp[pi->offset + j] += steps[q] * (float)d[j];
            memcpy(kd_model_params(m), pp, P * sizeof(float));
            L[q] = model_loss(m, ids, tg, w, B, T, 0);
        }
        ok &= check(pi->name, an, (8 * (L[0] - L[1]) - (L[2] - L[3])) / (12 * h));
        free(d);
    }
    // embedding output at position 5 == embedding row of token 36 (used once, untied only)
    if (!tie) {
        int e = kd_params_find(pt, "embed_tokens.weight");
        for (int k = 0; k < 3; k++) {
            double L[4];
            const float steps[4] = {h, -h, 2 * h, -2 * h};
            for (int q = 0; q < 4; q++) {
                memcpy(pp, p0, P * sizeof(float));
                pp[pt->t[e].offset + 36 * 24 + k] += steps[q];
                memcpy(kd_model_params(m), pp, P * sizeof(float));
                L[q] = model_loss(m, ids, tg, w, B, T, 0);
            }
            char what[64];
            snprintf(what, sizeof what, "d loss / d embed_out[pos 5][%d]", k);
            ok &= check(what, dembed[5 * 24 + k], (8 * (L[0] - L[1]) - (L[2] - L[3])) / (12 * h));
        }
    }
    free(p0), free(g), free(pp);
    kd_model_free(m);
    return ok;
}

int main(void) {
    int ok = run(0, 0);
    ok &= run(1, 0);
    ok &= run(0, 1);
    printf(ok ? "model gradients match finite differences\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
