// mixer_attn.c: the attention mixer (see mixer_attn.h): forward and backward, prefill and
// step over the KV cache, and its kd_mixer_vt (kd_attn_mixer). Only ops calls touch tensor
// memory.
#include "runtime/model/mixer_attn.h"

#include "runtime/model/mixer.h"

static size_t qkv_width(const kd_attn_dims *d) {
    return (size_t)(d->NH + 2 * d->NKV) * d->HD;
}

// Floats of one token's cache slot: NKV key heads then NKV value heads.
static size_t kv_width(const kd_attn_dims *d) {
    return 2 * (size_t)d->NKV * d->HD;
}

size_t kd_attn_act_floats(const kd_attn_dims *d, int B, int T) {
    size_t N = (size_t)B * T;
    return N * qkv_width(d) + (size_t)B * d->NH * T + N * d->NH * d->HD;
}

void kd_attn_acts_bind(kd_attn_acts *a, float *base, const kd_attn_dims *d, int B, int T) {
    size_t N = (size_t)B * T;
    a->qkv = base;
    a->lse = a->qkv + N * qkv_width(d);
    a->y = a->lse + (size_t)B * d->NH * T;
}

size_t kd_attn_bwd_floats(const kd_attn_dims *d, int B, int T) {
    return (size_t)B * T * (qkv_width(d) + (size_t)d->NH * d->HD);
}

void kd_attn_grads_bind(kd_attn_grads *s, float *base, const kd_attn_dims *d, int B, int T) {
    s->dqkv = base;
    s->dy = base + (size_t)B * T * qkv_width(d);
}

size_t kd_attn_scratch_bytes(const kd_ops *ops, const kd_attn_dims *d, int B, int T) {
    return ops->nn->attention_scratch(ops->ctx, B, T, d->NH, d->HD);
}

// ---------------------------------------------------------------------------- training

void kd_attn_forward(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p,
                     kd_attn_acts *a, kd_scratch ws, float *out, const float *inp,
                     const int32_t *pos, const int32_t *seg, int B, int T) {
    const kd_nn_ops *nn = ops->nn;
    int N = B * T, W = (int)qkv_width(d);
    nn->matmul_fwd(ops->ctx, a->qkv, inp, p->wqkv, N, d->C, W);                      // (N, W)
    nn->rope_fwd(ops->ctx, a->qkv, pos, N, d->NH + d->NKV, W, d->HD, d->inv_freq); // q, k
    nn->attention_fwd(ops->ctx, a->y, a->lse, a->qkv, seg, B, T, d->NH, d->NKV, d->HD, ws);
    nn->matmul_fwd(ops->ctx, out, a->y, p->wo, N, d->NH * d->HD, d->C);
}

void kd_attn_backward(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p,
                      const kd_attn_params *g, const kd_attn_acts *a, kd_attn_grads *s,
                      kd_scratch ws, float *dinp, const float *dout, const float *inp,
                      const int32_t *pos, const int32_t *seg, int B, int T) {
    const kd_nn_ops *nn = ops->nn;
    int N = B * T, W = (int)qkv_width(d), Y = d->NH * d->HD;
    nn->matmul_bwd(ops->ctx, s->dy, g ? g->wo : NULL, dout, a->y, p->wo, N, Y, d->C);
    nn->attention_bwd(ops->ctx, s->dqkv, s->dy, a->y, a->lse, a->qkv, seg, B, T, d->NH, d->NKV,
                      d->HD, ws);
    nn->rope_bwd(ops->ctx, s->dqkv, pos, N, d->NH + d->NKV, W, d->HD, d->inv_freq);
    nn->matmul_bwd(ops->ctx, dinp, g ? g->wqkv : NULL, s->dqkv, inp, p->wqkv, N, d->C, W);
}

void kd_attn_probs(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_acts *a, float *P,
                   const int32_t *seg, int B, int T) {
    ops->nn->attention_probs(ops->ctx, P, a->qkv, a->lse, seg, B, T, d->NH, d->NKV, d->HD);
}

// ---------------------------------------------------------------------------- decoding

size_t kd_attn_cache_floats(const kd_attn_dims *d, int slots, int len) {
    return (size_t)slots * len * kv_width(d);
}

void kd_attn_cache_bind(kd_attn_cache *c, float *base, const kd_attn_dims *d, int slots, int len) {
    (void)d;
    c->kv = base, c->slots = slots, c->len = len;
}

size_t kd_attn_work_floats(const kd_attn_dims *d, int B, int T) {
    size_t prefill = kd_attn_act_floats(d, B, T), step = kd_attn_act_floats(d, B, 1);
    return prefill > step ? prefill : step;
}

size_t kd_attn_step_scratch_bytes(const kd_ops *ops, const kd_attn_dims *d, int B, int len) {
    size_t step = ops->decode->attention_scratch(ops->ctx, B, len, d->NH),
           prefill = kd_attn_scratch_bytes(ops, d, 1, len);
    return step > prefill ? step : prefill;
}

void kd_attn_prefill(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p, float *work,
                     kd_scratch ws, kd_attn_cache *c, int slot, float *out, const float *inp,
                     const int32_t *pos, int B, int T) {
    kd_attn_acts a;
    kd_attn_acts_bind(&a, work, d, B, T);
    kd_attn_forward(ops, d, p, &a, ws, out, inp, pos, NULL, B, T);
    // keys (after RoPE) and values of every prompt token into its slot
    const size_t W = qkv_width(d), S = kv_width(d);
    for (int b = 0; b < B; b++) {
        float *dst = c->kv + (size_t)(slot + b) * c->len * S;
        for (int t = 0; t < T; t++)
            ops->mem->copy(ops->ctx, dst + (size_t)t * S,
                           a.qkv + ((size_t)b * T + t) * W + (size_t)d->NH * d->HD,
                           S * sizeof(float));
    }
}

void kd_attn_step(const kd_ops *ops, const kd_attn_dims *d, const kd_attn_params *p, float *work,
                  kd_scratch ws, kd_attn_cache *c, float *out, const float *inp, const int32_t *pos,
                  const int32_t *n, int B, int T) {
    const kd_nn_ops *nn = ops->nn;
    int W = (int)qkv_width(d), Y = d->NH * d->HD, N = B * T;
    kd_attn_acts a; // qkv (N,W) and y (N,NH*HD) of this step
    kd_attn_acts_bind(&a, work, d, N, 1);
    nn->matmul_fwd(ops->ctx, a.qkv, inp, p->wqkv, N, d->C, W);
    nn->rope_fwd(ops->ctx, a.qkv, pos, N, d->NH + d->NKV, W, d->HD, d->inv_freq);
    // token t of every slot is stored before token t+1 attends to it
    for (int t = 0; t < T; t++)
        ops->decode->attention(ops->ctx, a.y + (size_t)t * B * Y, c->kv, a.qkv + (size_t)t * B * W,
                               n + (size_t)t * B, B, c->len, d->NH, d->NKV, d->HD, ws);
    nn->matmul_fwd(ops->ctx, out, a.y, p->wo, N, Y, d->C);
}

// ---------------------------------------------------------------------------- kd_mixer_vt

static size_t vt_act_floats(const void *cfg, int B, int T) {
    return kd_attn_act_floats(cfg, B, T);
}

static size_t vt_bwd_floats(const void *cfg, int B, int T) {
    return kd_attn_bwd_floats(cfg, B, T);
}

static size_t vt_scratch_bytes(const kd_ops *ops, const void *cfg, int B, int T) {
    return kd_attn_scratch_bytes(ops, cfg, B, T);
}

static size_t vt_cache_floats(const void *cfg, int slots, int len) {
    return kd_attn_cache_floats(cfg, slots, len);
}

// A prefill of one prompt of up to len tokens, or a step of up to `slots` rows.
static size_t vt_work_floats(const void *cfg, int slots, int len) {
    size_t prefill = kd_attn_work_floats(cfg, 1, len), step = kd_attn_work_floats(cfg, slots, 1);
    return prefill > step ? prefill : step;
}

static size_t vt_decode_scratch_bytes(const kd_ops *ops, const void *cfg, int slots, int len) {
    return kd_attn_step_scratch_bytes(ops, cfg, slots, len);
}

static void vt_forward(const kd_mixer *x, const kd_mixer_mem *mem, float *out, const float *inp,
                       const int32_t *pos, const int32_t *seg, int B, int T) {
    kd_attn_acts a;
    kd_attn_acts_bind(&a, mem->acts, x->cfg, B, T);
    kd_attn_forward(x->ops, x->cfg, x->p, &a, mem->ws, out, inp, pos, seg, B, T);
}

static void vt_backward(const kd_mixer *x, const kd_mixer_mem *mem, float *dinp, const float *dout,
                        const float *inp, const int32_t *pos, const int32_t *seg, int B, int T) {
    kd_attn_acts a;
    kd_attn_grads s;
    kd_attn_acts_bind(&a, mem->acts, x->cfg, B, T);
    kd_attn_grads_bind(&s, mem->bwd, x->cfg, B, T);
    kd_attn_backward(x->ops, x->cfg, x->p, x->g, &a, &s, mem->ws, dinp, dout, inp, pos, seg, B,
                     T);
}

static void vt_prefill(const kd_mixer *x, const kd_mixer_dec *dec, int slot, float *out,
                       const float *inp, const int32_t *pos, int T) {
    kd_attn_cache c;
    kd_attn_cache_bind(&c, dec->cache, x->cfg, dec->slots, dec->len);
    kd_attn_prefill(x->ops, x->cfg, x->p, dec->work, dec->ws, &c, slot, out, inp, pos, 1, T);
}

static void vt_step(const kd_mixer *x, const kd_mixer_dec *dec, float *out, const float *inp,
                    const int32_t *pos, const int32_t *n, int B, int T) {
    kd_attn_cache c;
    kd_attn_cache_bind(&c, dec->cache, x->cfg, dec->slots, dec->len);
    kd_attn_step(x->ops, x->cfg, x->p, dec->work, dec->ws, &c, out, inp, pos, n, B, T);
}

// The KV cache rolls back by the slot's length: entries past it are rewritten before any
// query reads them.
static size_t vt_state_floats(const void *cfg) {
    (void)cfg;
    return 0;
}

static void vt_history(const kd_mixer *x, const kd_mixer_dec *dec, int slot, int h, int restore) {
    (void)x, (void)dec, (void)slot, (void)h, (void)restore;
}

const kd_mixer_vt kd_attn_mixer = {
    .kind = KD_MIXER_ATTN,
    .name = "attn",
    .cap = KD_CAP_NN,
    .act_floats = vt_act_floats,
    .bwd_floats = vt_bwd_floats,
    .scratch_bytes = vt_scratch_bytes,
    .cache_floats = vt_cache_floats,
    .work_floats = vt_work_floats,
    .decode_scratch_bytes = vt_decode_scratch_bytes,
    .forward = vt_forward,
    .backward = vt_backward,
    .prefill = vt_prefill,
    .step = vt_step,
    .state_floats = vt_state_floats,
    .history = vt_history,
};
