// MOHAWK per-layer losses (runtime/model/model_align.c) on a tiny teacher and its converted
// student (layers 0 and 2 Mamba-2, grouped-query heads), with and without documents (seg):
//  - the loss value equals a host recomputation in double from the matrices / outputs the
//    model exposes (tolerance 1e-5 relative: float32 inputs, double sums on both sides);
//  - gradients match central finite differences of the loss along a random unit direction
//    of each of the layer's mixer tensors (4-point stencil, h = 1e-2; float32 rounding of a
//    loss of O(10) gives ~1e-5 absolute: accept 2e-3 relative + 2e-5);
//  - a layer's loss only produces gradients in that layer's mixer tensors, and gradients
//    accumulate across calls (the trainer sums layers and micro-batches).
#include "runtime/model/model_align.h"
#include "runtime/model/model_convert.h"
#include "runtime/model/model_internal.h"
#include "tests/unit/test_model_util.h"
#include "check.h"

enum { B = 2, T = 9 };
static float g_w[B * T];

static double loss_of(kd_model *s, kd_model *t, int l, int matrix, int grad, kd_align_ws *ws) {
    return matrix ? kd_model_align_matrix(s, t, l, g_w, 0.25f, grad, ws)
                  : kd_model_align_hidden(s, t, l, g_w, 0.25f, grad, ws);
}

// Host reference of the loss from what the models expose after the call.
static double reference(kd_model *s, kd_model *t, int l, int matrix, const int32_t *seg) {
    const kd_model_config *c = kd_model_cfg(s);
    int H = c->n_heads, C = c->d_model;
    double ref = 0;
    kd_scratch ws = {NULL, kd_mamba2_matrix_scratch_bytes(s->ops, &s->mcfg, B, T)};
    ws.p = malloc(ws.bytes);
    if (matrix) { // recompute M through the layer's public matrix API
        float *mem = calloc(kd_mamba2_acts_floats(&s->mcfg, B, T), sizeof(float));
        float *out = malloc(sizeof(float) * B * T * C), *M = malloc(sizeof(float) * B * H * T * T);
        kd_mamba2_acts a;
        kd_mamba2_acts_bind(&a, mem, &s->mcfg, B, T);
        const int32_t *sg = seg ? t->seg : NULL;
        kd_mamba2_forward(s->ops, &s->mcfg, &s->mp[l], &a, ws, out, kd_model_mixer_input(t, l), sg,
                          B, T);
        kd_mamba2_matrix(s->ops, &s->mcfg, &s->mp[l], &a, ws, M, sg, B, T);
        float *A = malloc(sizeof(float) * B * H * T * T);
        if (!kd_model_attn_probs(t, l, A)) abort();
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                double ss = 0;
                for (size_t k = 0; k < (size_t)T * T; k++) {
                    size_t i = ((size_t)b * H + h) * T * T + k;
                    ss += ((double)M[i] - A[i]) * ((double)M[i] - A[i]);
                }
                ref += g_w[b] / H * sqrt(ss);
            }
        free(mem), free(out), free(M), free(A);
    } else {
        float *mem = calloc(kd_mamba2_acts_floats(&s->mcfg, B, T), sizeof(float));
        float *out = malloc(sizeof(float) * B * T * C);
        kd_mamba2_acts a;
        kd_mamba2_acts_bind(&a, mem, &s->mcfg, B, T);
        kd_mamba2_forward(s->ops, &s->mcfg, &s->mp[l], &a, ws, out, kd_model_mixer_input(t, l),
                          seg ? t->seg : NULL, B, T);
        const float *y = kd_model_mixer_output(t, l);
        for (int i = 0; i < B * T; i++) {
            double ss = 0;
            for (int k = 0; k < C; k++)
                ss += ((double)out[i * C + k] - y[i * C + k]) *
                      ((double)out[i * C + k] - y[i * C + k]);
            ref += g_w[i] * sqrt(ss);
        }
        free(mem), free(out);
    }
    free(ws.p);
    return ref;
}

static void run(kd_model *t, kd_model *s, int matrix, const int32_t *ids, const int32_t *seg) {
    const char *phase = matrix ? "matrix" : "hidden";
    printf("--- phase %s, documents %s\n", phase, seg ? "yes" : "no");
    kd_error err = {0};
    CHECK(kd_model_forward(t, ids, NULL, seg, B, T, &err) == KD_OK, "teacher forward: %s", err.msg);
    for (int i = 0; i < B * T; i++)
        g_w[i] = matrix ? (i < B ? (float)(T - i) : 0.0f) : 0.5f + 0.1f * (float)(i % 4);
    kd_align_ws *ws = kd_align_ws_create(kd_model_ops(s));
    const kd_param_table *pt = kd_model_table(s);
    size_t P = pt->total;
    const int l = 2;
    CHECK(kd_model_align_check(s, t, l, &err) == KD_OK, "check: %s", err.msg);
    CHECK(kd_model_align_check(s, t, 1, &err) == KD_EINPUT,
          "layer 1 is attention: expected an error");
    kd_model_zero_grad(s);
    double L0 = loss_of(s, t, l, matrix, 1, ws);
    double ref = reference(s, t, l, matrix, seg);
    printf("loss %.9g, host reference %.9g\n", L0, ref);
    CHECK(fabs(L0 - ref) <= 1e-5 * fabs(ref), "%s loss %.9g != reference %.9g", phase, L0, ref);
    float *g = malloc(P * sizeof(float)), *p0 = malloc(P * sizeof(float));
    memcpy(g, kd_model_grads(s), P * sizeof(float));
    memcpy(p0, kd_model_params(s), P * sizeof(float));
    // only layer l's mixer tensors get gradient
    char prefix[32];
    snprintf(prefix, sizeof prefix, "layers.%d.mixer.", l);
    for (int i = 0; i < pt->n; i++) {
        if (strncmp(pt->t[i].name, prefix, strlen(prefix)) == 0) continue;
        double ss = 0;
        for (size_t j = 0; j < pt->t[i].numel; j++)
            ss += (double)g[pt->t[i].offset + j] * g[pt->t[i].offset + j];
        CHECK(ss == 0.0, "%s got gradient (|g|^2 = %g) from layer %d's loss", pt->t[i].name, ss, l);
    }
    // accumulation: a second call doubles the gradient
    loss_of(s, t, l, matrix, 1, ws);
    double dmax = 0;
    for (size_t j = 0; j < P; j++) dmax = fmax(dmax, fabs(kd_model_grads(s)[j] - 2.0f * g[j]));
    CHECK(dmax <= 1e-5, "second call does not accumulate: max |g2 - 2 g1| = %g", dmax);
    // finite differences per mixer tensor
    kd_rng r;
    kd_rng_seed(&r, 17);
    const float h = 1e-2f;
    for (int i = 0; i < pt->n; i++) {
        const kd_param_info *pi = &pt->t[i];
        if (strncmp(pi->name, prefix, strlen(prefix)) != 0) continue;
        double *d = malloc(pi->numel * sizeof(double)), nrm = 0, an = 0;
        for (size_t j = 0; j < pi->numel; j++) d[j] = kd_rng_normal(&r), nrm += d[j] * d[j];
        nrm = sqrt(nrm);
        for (size_t j = 0; j < pi->numel; j++) d[j] /= nrm, an += d[j] * g[pi->offset + j];
        double Lq[4];
        const float st[4] = {h, -h, 2 * h, -2 * h};
        for (int q = 0; q < 4; q++) {
            memcpy(kd_model_params(s), p0, P * sizeof(float));
            for (size_t j = 0; j < pi->numel; j++)
                kd_model_params(s)[pi->offset + j] += st[q] * (float)d[j];
            Lq[q] = loss_of(s, t, l, matrix, 0, ws) * 0.25; // dscale 0.25 scales the gradient
        }
        memcpy(kd_model_params(s), p0, P * sizeof(float));
        double fd = (8 * (Lq[0] - Lq[1]) - (Lq[2] - Lq[3])) / (12 * h);
        double tol = 2e-3 * fmax(fabs(an), fabs(fd)) + 2e-5;
        int ok = fabs(an - fd) <= tol;
        printf("%-4s %-36s analytic % .6e  fd % .6e  diff %.2e (tol %.2e)\n", ok ? "ok" : "FAIL",
               pi->name, an, fd, fabs(an - fd), tol);
        CHECK(ok, "%s phase %s: gradient mismatch", pi->name, phase);
        free(d);
    }
    free(g), free(p0);
    kd_align_ws_free(ws);
}

int main(void) {
    kd_model_config c = tiny_config(3, 0);
    kd_model *t = NULL, *s = NULL;
    kd_error err = {0};
    if (kd_model_create(&t, &c, kd_ops_cpu(), 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    kd_model_init_random(t, 7, 0.3f);
    const int ssm[2] = {0, 2};
    // default conv: no structural zeros, so every conv weight gets a gradient to check
    kd_convert_opts o = {.seed = 3, .conv = KD_CONV_INIT_DEFAULT, .chunk_size = 4, .conv_width = 4};
    if (kd_model_convert(&s, t, ssm, 2, &o, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int32_t ids[B * T], seg[B * T];
    random_tokens(ids, B * T, c.vocab_size, 9);
    for (int i = 0; i < B * T; i++) seg[i] = (i % T) < 4 ? 0 : 1; // two documents per row
    for (int matrix = 1; matrix >= 0; matrix--) {
        run(t, s, matrix, ids, NULL);
        run(t, s, matrix, ids, seg);
    }
    kd_model_free(t);
    kd_model_free(s);
    return check_done("align losses");
}
