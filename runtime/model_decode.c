// model_decode.c: incremental decoding (model_decode.h). The layer loop mirrors
// kd_model_forward in model.c op for op (same kernels, same order of adds) so that decoded
// logits agree with a full forward up to the attention kernel's summation order; only the
// mixers differ: attention reads/writes the KV cache, Mamba-2 runs its recurrent step.
#include "runtime/model_decode.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/model_internal.h"

struct kd_decoder {
    kd_model *m;
    const kd_ops *ops;
    int max_batch, max_len, rows;   // rows = max(max_len, max_batch): height of the work buffers
    int *len;                       // host (max_batch): tokens held by each slot
    float *kv[KD_MODEL_MAX_LAYERS]; // attention layers: (max_batch, max_len, 2*NKV*HD)
    kd_mamba2_cache mc[KD_MODEL_MAX_LAYERS]; // Mamba-2 layers: states of max_batch slots
    float *mc_mem[KD_MODEL_MAX_LAYERS];
    kd_mamba2_cache pc; // one-slot cache a prefill fills before it is copied into its slot
    float *pc_mem;
    // work, backend memory
    float *x;                // (rows,C) residual stream
    float *ln;               // (rows,C) normed input of a sub-block
    float *rstd;             // (rows)
    float *mix;              // (rows,C) mixer or MLP output
    float *gu;               // (rows,2F)
    float *swi;              // (rows,F)
    float *mixmem;           // mixer activations (attention or Mamba-2) of one prefill or step
    float *logits;           // (max_batch,V)
    float *all;              // (max_len,V) prompt logits, allocated on first use
    int32_t *ids, *pos, *nk; // backend (rows)
    int32_t *h;              // host (rows) staging
};

static kd_attn_dims attn_dims(const kd_model_config *c) {
    kd_attn_dims d = {c->d_model, c->n_heads, c->n_kv_heads, c->head_dim, c->rope_theta};
    return d;
}

static int kv_width(const kd_model_config *c) {
    return 2 * c->n_kv_heads * c->head_dim;
}

// ----------------------------------------------------------------------------- lifecycle

int kd_decoder_create(kd_decoder **out, kd_model *m, int max_batch, int max_len, kd_error *err) {
    *out = NULL;
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    if (max_batch < 1 || max_len < 1)
        return kd_fail(err, KD_EINPUT,
                       "decoder: need max_batch >= 1 and max_len >= 1, found %d and %d", max_batch,
                       max_len);
    int n_ssm = kd_model_n_ssm(c), n_attn = c->n_layers - n_ssm;
    if (n_attn > 0 && !o->attention_decode)
        return kd_fail(err, KD_ERUNTIME,
                       "decoder: the %s backend has no attention_decode op (generation "
                       "of attention layers needs it; use backend: cpu)",
                       o->name);
    if (n_ssm > 0 && !o->mamba2_step)
        return kd_fail(err, KD_ERUNTIME,
                       "decoder: the %s backend has no mamba2_step op (generation of "
                       "Mamba-2 layers needs it; use backend: cpu)",
                       o->name);
    kd_decoder *d = kd_calloc(1, sizeof *d);
    d->m = m, d->ops = o;
    d->max_batch = max_batch, d->max_len = max_len;
    d->rows = max_len > max_batch ? max_len : max_batch;
    d->len = kd_calloc((size_t)max_batch, sizeof(int));
    size_t R = (size_t)d->rows, C = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    kd_attn_dims ad = attn_dims(c);
    size_t mix_floats = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t f;
        if (c->mixer[l] == KD_MIXER_ATTN) {
            d->kv[l] = o->alloc((size_t)max_batch * max_len * kv_width(c) * sizeof(float));
            size_t fp = kd_attn_act_floats(&ad, 1, max_len),
                   fs = kd_attn_act_floats(&ad, max_batch, 1);
            f = fp > fs ? fp : fs;
        } else {
            d->mc_mem[l] = o->alloc(kd_mamba2_cache_floats(&m->mcfg, max_batch) * sizeof(float));
            kd_mamba2_cache_bind(&d->mc[l], d->mc_mem[l], &m->mcfg, max_batch);
            f = kd_mamba2_acts_floats(&m->mcfg, 1, max_len);
        }
        if (f > mix_floats) mix_floats = f;
    }
    if (n_ssm > 0) {
        d->pc_mem = o->alloc(kd_mamba2_cache_floats(&m->mcfg, 1) * sizeof(float));
        kd_mamba2_cache_bind(&d->pc, d->pc_mem, &m->mcfg, 1);
    }
    d->x = o->alloc(R * C * sizeof(float));
    d->ln = o->alloc(R * C * sizeof(float));
    d->rstd = o->alloc(R * sizeof(float));
    d->mix = o->alloc(R * C * sizeof(float));
    d->gu = o->alloc(R * 2 * F * sizeof(float));
    d->swi = o->alloc(R * F * sizeof(float));
    d->mixmem = o->alloc(mix_floats * sizeof(float));
    d->logits = o->alloc((size_t)max_batch * V * sizeof(float));
    d->ids = o->alloc(R * sizeof(int32_t));
    d->pos = o->alloc(R * sizeof(int32_t));
    d->nk = o->alloc(R * sizeof(int32_t));
    d->h = kd_malloc(R * sizeof(int32_t));
    *out = d;
    return KD_OK;
}

void kd_decoder_free(kd_decoder *d) {
    if (!d) return;
    const kd_ops *o = d->ops;
    for (int l = 0; l < d->m->cfg.n_layers; l++) {
        if (d->kv[l]) o->free(d->kv[l]);
        if (d->mc_mem[l]) o->free(d->mc_mem[l]);
    }
    float *bufs[] = {d->pc_mem, d->x,   d->ln,     d->rstd,   d->mix,
                     d->gu,     d->swi, d->mixmem, d->logits, d->all};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) o->free(bufs[i]);
    o->free(d->ids);
    o->free(d->pos);
    o->free(d->nk);
    free(d->h);
    free(d->len);
    free(d);
}

const float *kd_decoder_logits(const kd_decoder *d) {
    return d->logits;
}
int kd_decoder_len(const kd_decoder *d, int slot) {
    return d->len[slot];
}
int kd_decoder_max_len(const kd_decoder *d) {
    return d->max_len;
}
int kd_decoder_max_batch(const kd_decoder *d) {
    return d->max_batch;
}

// ----------------------------------------------------------------------------- shared blocks

// x (N,C) += MLP(rmsnorm(x)); the mixer output in mix has already been added.
static void mlp_block(kd_decoder *d, int l, int N) {
    const kd_model_config *c = &d->m->cfg;
    const kd_ops *o = d->ops;
    const float *P = d->m->params;
    const kd_layer_offsets *lo = &d->m->lo[l];
    int C = c->d_model, F = c->ffn_dim;
    o->rmsnorm_fwd(d->ln, d->rstd, d->x, P + lo->ln2, N, C, c->norm_eps);
    o->matmul_fwd(d->gu, d->ln, P + lo->wgu, N, C, 2 * F);
    o->swiglu_fwd(d->swi, d->gu, N, F);
    o->matmul_fwd(d->mix, d->swi, P + lo->wdown, N, F, C);
    o->add(d->x, d->x, d->mix, (size_t)N * C); // the model adds mlp + resid: same float sum
}

// Final norm of rows [first, first+N) of x and the LM head into out (N,V).
static void head(kd_decoder *d, int first, int N, float *out) {
    const kd_model_config *c = &d->m->cfg;
    const kd_ops *o = d->ops;
    const float *P = d->m->params;
    int C = c->d_model;
    o->rmsnorm_fwd(d->ln, d->rstd, d->x + (size_t)first * C, P + d->m->off_norm, N, C, c->norm_eps);
    o->matmul_fwd(out, d->ln, P + d->m->off_head, N, C, c->vocab_size);
}

static void upload_ints(kd_decoder *d, int32_t *dst, int n) {
    d->ops->upload(dst, d->h, (size_t)n * sizeof(int32_t));
}

// ----------------------------------------------------------------------------- prefill

int kd_decoder_prefill(kd_decoder *d, int slot, const int32_t *ids, int n, float *all_logits,
                       kd_error *err) {
    kd_model *m = d->m;
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = d->ops;
    const float *P = m->params;
    if (slot < 0 || slot >= d->max_batch)
        return kd_fail(err, KD_EINTERNAL, "decoder: slot %d outside [0,%d)", slot, d->max_batch);
    if (n < 1 || n > d->max_len)
        return kd_fail(err, KD_EINPUT, "decoder: prompt of %d tokens, expected 1..%d", n,
                       d->max_len);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return kd_fail(err, KD_EINPUT, "decoder: prompt token %d = %d, expected 0..%d", i,
                           (int)ids[i], c->vocab_size - 1);
    int C = c->d_model, W = (c->n_heads + 2 * c->n_kv_heads) * c->head_dim, S = kv_width(c);
    kd_attn_dims ad = attn_dims(c);
    o->upload(d->ids, ids, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) d->h[i] = i;
    upload_ints(d, d->pos, n);

    o->embedding_fwd(d->x, d->ids, P + m->off_wte, n, C);
    for (int l = 0; l < c->n_layers; l++) {
        const kd_layer_offsets *lo = &m->lo[l];
        o->rmsnorm_fwd(d->ln, d->rstd, d->x, P + lo->ln1, n, C, c->norm_eps);
        if (c->mixer[l] == KD_MIXER_ATTN) {
            kd_attn_acts a;
            kd_attn_bind(&ad, 1, n, d->mixmem, &a);
            kd_attn_forward(o, &ad, P + lo->wqkv, P + lo->wo, &a, d->ln, d->pos, NULL, 1, n,
                            d->mix);
            // keys (after RoPE) and values of every prompt token into the slot's cache
            float *dst = d->kv[l] + (size_t)slot * d->max_len * S;
            for (int t = 0; t < n; t++)
                o->copy(dst + (size_t)t * S,
                        a.qkv + (size_t)t * W + (size_t)c->n_heads * c->head_dim,
                        (size_t)S * sizeof(float));
        } else {
            kd_mamba2_acts a;
            kd_mamba2_acts_bind(&a, d->mixmem, &m->mcfg, 1, n);
            kd_mamba2_prefill(o, &m->mcfg, &m->mp[l], &a, &d->pc, d->mix, d->ln, 1, n);
            kd_mamba2_sizes ms = kd_mamba2_sizes_of(&m->mcfg);
            size_t conv = (size_t)ms.conv_dim * (m->mcfg.k.W - 1);
            size_t ssm = (size_t)m->mcfg.k.H * m->mcfg.k.P * m->mcfg.k.N;
            if (conv)
                o->copy(d->mc[l].conv_state + (size_t)slot * conv, d->pc.conv_state,
                        conv * sizeof(float));
            o->copy(d->mc[l].ssm_state + (size_t)slot * ssm, d->pc.ssm_state, ssm * sizeof(float));
        }
        o->add(d->x, d->x, d->mix, (size_t)n * C);
        mlp_block(d, l, n);
    }
    // the slot's next-token logits always come from a one-row head, so they do not depend
    // on whether all prompt logits were asked for
    if (all_logits) {
        if (!d->all) d->all = o->alloc((size_t)d->max_len * c->vocab_size * sizeof(float));
        head(d, 0, n, d->all);
        o->download(all_logits, d->all, (size_t)n * c->vocab_size * sizeof(float));
    }
    head(d, n - 1, 1, d->logits + (size_t)slot * c->vocab_size);
    d->len[slot] = n;
    return KD_OK;
}

// ----------------------------------------------------------------------------- step

int kd_decoder_step(kd_decoder *d, const int32_t *ids, const uint8_t *live, int B, kd_error *err) {
    kd_model *m = d->m;
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = d->ops;
    const float *P = m->params;
    if (B < 1 || B > d->max_batch)
        return kd_fail(err, KD_EINTERNAL, "decoder: step of %d rows, expected 1..%d", B,
                       d->max_batch);
    for (int b = 0; b < B; b++) {
        int on = !live || live[b];
        if (d->len[b] < 1)
            return kd_fail(err, KD_EINTERNAL, "decoder: slot %d stepped before any prefill", b);
        if (on && d->len[b] >= d->max_len)
            return kd_fail(err, KD_EINPUT, "decoder: slot %d is full (%d tokens)", b, d->max_len);
        if (ids[b] < 0 || ids[b] >= c->vocab_size)
            return kd_fail(err, KD_EINPUT, "decoder: token %d for slot %d, expected 0..%d",
                           (int)ids[b], b, c->vocab_size - 1);
    }
    int C = c->d_model, NH = c->n_heads, NKV = c->n_kv_heads, HD = c->head_dim;
    int W = (NH + 2 * NKV) * HD;
    kd_attn_dims ad = attn_dims(c);
    o->upload(d->ids, ids, (size_t)B * sizeof(int32_t));
    // a live row goes to slot len (RoPE angle = its absolute position); a dead row redoes
    // its last slot so that nothing is written past the cache
    for (int b = 0; b < B; b++) d->h[b] = (!live || live[b]) ? d->len[b] : d->len[b] - 1;
    upload_ints(d, d->pos, B);
    for (int b = 0; b < B; b++) d->h[b] += 1;
    upload_ints(d, d->nk, B);

    o->embedding_fwd(d->x, d->ids, P + m->off_wte, B, C);
    for (int l = 0; l < c->n_layers; l++) {
        const kd_layer_offsets *lo = &m->lo[l];
        o->rmsnorm_fwd(d->ln, d->rstd, d->x, P + lo->ln1, B, C, c->norm_eps);
        if (c->mixer[l] == KD_MIXER_ATTN) {
            kd_attn_acts a; // qkv (B,W) and y (B,NH*HD) of this step
            kd_attn_bind(&ad, B, 1, d->mixmem, &a);
            o->matmul_fwd(a.qkv, d->ln, P + lo->wqkv, B, C, W);
            o->rope_fwd(a.qkv, d->pos, B, NH + NKV, W, HD, c->rope_theta);
            o->attention_decode(a.y, d->kv[l], a.qkv, d->nk, B, d->max_len, NH, NKV, HD);
            o->matmul_fwd(d->mix, a.y, P + lo->wo, B, NH * HD, C);
        } else {
            kd_mamba2_step(o, &m->mcfg, &m->mp[l], &d->mc[l], d->mix, d->ln, B);
        }
        o->add(d->x, d->x, d->mix, (size_t)B * C);
        mlp_block(d, l, B);
    }
    head(d, 0, B, d->logits);
    for (int b = 0; b < B; b++)
        if (!live || live[b]) d->len[b]++;
    return KD_OK;
}
