// mixer_attn.c: forward and backward of the attention mixer (see mixer_attn.h).
#include "runtime/mixer_attn.h"

static size_t qkv_width(const kd_attn_dims *d) { return (size_t)(d->NH + 2 * d->NKV) * d->HD; }

size_t kd_attn_act_floats(const kd_attn_dims *d, int B, int T) {
    size_t N = (size_t)B * T;
    return N * qkv_width(d) + (size_t)B * d->NH * T * T + N * d->NH * d->HD;
}

void kd_attn_bind(const kd_attn_dims *d, int B, int T, float *mem, kd_attn_acts *a) {
    size_t N = (size_t)B * T;
    a->qkv = mem;
    a->att = a->qkv + N * qkv_width(d);
    a->y = a->att + (size_t)B * d->NH * T * T;
}

void kd_attn_forward(const kd_ops *ops, const kd_attn_dims *d, const float *wqkv,
                     const float *wo, kd_attn_acts *a, const float *inp, const int32_t *pos,
                     const int32_t *seg, int B, int T, float *out) {
    int N = B * T, W = (int)qkv_width(d);
    ops->matmul_fwd(a->qkv, inp, wqkv, N, d->C, W);                       // (N, W)
    ops->rope_fwd(a->qkv, pos, N, d->NH + d->NKV, W, d->HD, d->rope_theta);  // q and k heads
    ops->attention_fwd(a->y, a->att, a->qkv, seg, B, T, d->NH, d->NKV, d->HD);
    ops->matmul_fwd(out, a->y, wo, N, d->NH * d->HD, d->C);
}

void kd_attn_backward(const kd_ops *ops, const kd_attn_dims *d, const float *wqkv,
                      const float *wo, float *dwqkv, float *dwo, const kd_attn_acts *a,
                      kd_attn_scratch *s, const float *inp, const int32_t *pos, int B, int T,
                      const float *dout, float *dinp) {
    int N = B * T, W = (int)qkv_width(d), Y = d->NH * d->HD;
    ops->zero(s->dy, (size_t)N * Y * sizeof(float));
    ops->matmul_bwd(s->dy, dwo, dout, a->y, wo, N, Y, d->C);
    ops->attention_bwd(s->dqkv, s->datt, s->dy, a->att, a->qkv, B, T, d->NH, d->NKV, d->HD);
    ops->rope_bwd(s->dqkv, pos, N, d->NH + d->NKV, W, d->HD, d->rope_theta);
    ops->matmul_bwd(dinp, dwqkv, s->dqkv, inp, wqkv, N, d->C, W);
}
