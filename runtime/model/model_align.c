// model_align.c: MOHAWK per-layer losses on a student's Mamba-2 layer fed with the teacher's
// activations (model_align.h). Norms are accumulated in double; tensors are touched only
// through the backend ops, except the per-token hidden-state norms (one download of the
// (B,T,C) difference, one upload of its gradient).
#include "runtime/model/model_align.h"

#include <math.h>
#include <stdlib.h>

#include "runtime/model/model_internal.h"

struct kd_align_ws {
    const kd_ops *ops;
    size_t cap; // floats in mem
    float *mem; // backend: acts | out (N,C) | dinp (N,C) | M (B,H,T,T) | A (B,H,T,T)
    kd_mamba2_acts acts;
    float *out, *dinp, *M, *A;
    float *host; // host (N,C) for the per-token norms
    size_t host_cap;
    kd_scratch kws; // kernel scratch of the layer (and matrix) ops, kws.bytes its capacity
};

kd_align_ws *kd_align_ws_create(const kd_ops *ops) {
    kd_align_ws *ws = kd_calloc(1, sizeof *ws);
    ws->ops = ops;
    return ws;
}

void kd_align_ws_free(kd_align_ws *ws) {
    if (!ws) return;
    if (ws->mem) ws->ops->mem->free(ws->ops->ctx, ws->mem);
    if (ws->kws.p) ws->ops->mem->free(ws->ops->ctx, ws->kws.p);
    free(ws->host);
    free(ws);
}

// Binds the scratch for the teacher's current (B,T); the matrix only when with_matrix.
static void ws_prepare(kd_align_ws *ws, const kd_model *s, int B, int T, int with_matrix) {
    size_t N = (size_t)B * T, C = (size_t)s->cfg.d_model;
    size_t na = kd_mamba2_acts_floats(&s->mcfg, B, T);
    size_t nm = with_matrix ? (size_t)B * s->cfg.n_heads * T * T : 0;
    size_t need = na + 2 * N * C + 2 * nm;
    if (need > ws->cap) {
        if (ws->mem) ws->ops->mem->free(ws->ops->ctx, ws->mem);
        ws->mem = ws->ops->mem->alloc(ws->ops->ctx, need * sizeof(float));
        KD_ASSERT(ws->mem != NULL);
        ws->cap = need;
    }
    size_t kneed = with_matrix ? kd_mamba2_matrix_scratch_bytes(ws->ops, &s->mcfg, B, T)
                               : kd_mamba2_scratch_bytes(ws->ops, &s->mcfg, B, T);
    if (kneed > ws->kws.bytes) {
        if (ws->kws.p) ws->ops->mem->free(ws->ops->ctx, ws->kws.p);
        ws->kws.p = ws->ops->mem->alloc(ws->ops->ctx, kneed);
        KD_ASSERT(ws->kws.p != NULL);
        ws->kws.bytes = kneed;
    }
    kd_mamba2_acts_bind(&ws->acts, ws->mem, &s->mcfg, B, T);
    ws->out = ws->mem + na;
    ws->dinp = ws->out + N * C;
    ws->M = with_matrix ? ws->dinp + N * C : NULL;
    ws->A = with_matrix ? ws->M + nm : NULL;
}

int kd_model_align_check(const kd_model *s, const kd_model *t, int layer, kd_error *err) {
    const kd_model_config *a = &s->cfg, *b = &t->cfg;
    if (a->d_model != b->d_model || a->n_heads != b->n_heads || a->n_kv_heads != b->n_kv_heads ||
        a->head_dim != b->head_dim || a->n_layers != b->n_layers)
        return kd_fail(err, KD_EINPUT,
                       "align: the student (d_model %d, %d layers, heads %d/%d x %d) and the "
                       "teacher (d_model %d, %d layers, heads %d/%d x %d) must have the same shape",
                       a->d_model, a->n_layers, a->n_heads, a->n_kv_heads, a->head_dim, b->d_model,
                       b->n_layers, b->n_heads, b->n_kv_heads, b->head_dim);
    if (layer < 0 || layer >= a->n_layers)
        return kd_fail(err, KD_EINPUT, "align.layers: expected a layer in [0, %d), found %d",
                       a->n_layers, layer);
    if (a->mixer[layer] != KD_MIXER_MAMBA2)
        return kd_fail(err, KD_EINPUT,
                       "align.layers: layer %d of the student is attention, expected Mamba-2 "
                       "(put an init stage that converts it first)",
                       layer);
    if (b->mixer[layer] != KD_MIXER_ATTN)
        return kd_fail(err, KD_EINPUT,
                       "align.layers: layer %d of the teacher is Mamba-2, expected attention "
                       "(its attention matrix and output are the targets)",
                       layer);
    if (!s->grads) return kd_fail(err, KD_EINTERNAL, "align: the student has no gradient buffers");
    return KD_OK;
}

// Runs the student's layer on the teacher's mixer input; leaves acts and ws->out.
static const float *student_layer_forward(kd_model *s, const kd_model *t, int l, kd_align_ws *ws,
                                          int with_matrix) {
    int B = t->B, T = t->T;
    ws_prepare(ws, s, B, T, with_matrix);
    const float *inp = kd_model_mixer_input(t, l);
    kd_mamba2_forward(s->ops, &s->mcfg, &s->mp[l], &ws->acts, ws->kws, ws->out, inp,
                      t->has_seg ? t->seg : NULL, B, T);
    return inp;
}

double kd_model_align_matrix(kd_model *s, const kd_model *t, int l, const float *row_w,
                             float dscale, int want_grad, kd_align_ws *ws) {
    const kd_ops *o = s->ops;
    int B = t->B, T = t->T, H = s->cfg.n_heads;
    const int32_t *seg = t->has_seg ? t->seg : NULL;
    const float *inp = student_layer_forward(s, t, l, ws, 1);
    size_t TT = (size_t)T * T, n = (size_t)B * H * TT;
    // M (B,H,T,T) <- M - A: both are causal (zero above the diagonal and across documents)
    kd_mamba2_matrix(o, &s->mcfg, &s->mp[l], &ws->acts, ws->kws, ws->M, seg, B, T);
    KD_ASSERT(kd_model_attn_probs(t, l, ws->A)); // kd_model_align_check: attention
    o->vec->axpy(o->ctx, ws->M, -1.0f, ws->A, n);
    double loss = 0;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            float *d = ws->M + ((size_t)b * H + h) * TT;
            double fro = sqrt(o->vec->sumsq(o->ctx, d, TT));
            loss += (double)row_w[b] / H * fro;
            // d||D||_F/dD = D/||D||_F; a zero difference has a zero subgradient
            if (want_grad)
                o->vec->scale(o->ctx, d, fro > 0 ? (float)(dscale * row_w[b] / H / fro) : 0.0f, TT);
        }
    }
    if (want_grad) {
        kd_mamba2_matrix_backward(o, &s->mcfg, &s->mp[l], &s->mg[l], &ws->acts, ws->kws, ws->dinp,
                                  ws->M, inp, seg, B, T);
    }
    return loss;
}

double kd_model_align_hidden(kd_model *s, const kd_model *t, int l, const float *tok_w,
                             float dscale, int want_grad, kd_align_ws *ws) {
    const kd_ops *o = s->ops;
    int B = t->B, T = t->T;
    size_t N = (size_t)B * T, C = (size_t)s->cfg.d_model;
    const float *inp = student_layer_forward(s, t, l, ws, 0);
    // out (N,C) <- y - a, then on the host: per-token norms and d||r||/dr = r/||r||
    o->vec->axpy(o->ctx, ws->out, -1.0f, kd_model_mixer_output(t, l), N * C);
    if (ws->host_cap < N * C) {
        free(ws->host);
        ws->host = kd_malloc(N * C * sizeof(float));
        ws->host_cap = N * C;
    }
    float *h = ws->host;
    o->mem->download(o->ctx, h, ws->out, N * C * sizeof(float));
    double loss = 0;
    for (size_t i = 0; i < N; i++) {
        float *r = h + i * C;
        double ss = 0;
        for (size_t c = 0; c < C; c++) ss += (double)r[c] * r[c];
        double nrm = sqrt(ss);
        loss += (double)tok_w[i] * nrm;
        float g = nrm > 0 ? (float)(dscale * tok_w[i] / nrm) : 0.0f;
        for (size_t c = 0; c < C; c++) r[c] *= g;
    }
    if (want_grad) {
        o->mem->upload(o->ctx, ws->out, h, N * C * sizeof(float));
        kd_mamba2_backward(o, &s->mcfg, &s->mp[l], &s->mg[l], &ws->acts, ws->kws, ws->dinp, ws->out,
                           inp, t->has_seg ? t->seg : NULL, B, T);
    }
    return loss;
}
