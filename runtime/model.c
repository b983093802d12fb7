// model.c: the decoder model (model.h): parameter table, random init, activation memory,
// forward and backward. Per-mixer math lives in mixer_attn.c / mixer_mamba2.c.
#include "runtime/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mixer_attn.h"
#include "runtime/mixer_mamba2.h"
#include "runtime/model_internal.h"
#include "runtime/rng.h"


// ----------------------------------------------------------------------------- config

int kd_model_n_ssm(const kd_model_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += c->mixer[l] == KD_MIXER_MAMBA2;
    return n;
}

int kd_model_config_check(const kd_model_config *c, kd_error *err) {
    if (c->vocab_size < 2) return kd_fail(err, KD_EINPUT, "model: vocab_size must be >= 2, found %d", c->vocab_size);
    if (c->d_model < 1 || c->n_layers < 1 || c->n_layers > KD_MODEL_MAX_LAYERS)
        return kd_fail(err, KD_EINPUT, "model: need d_model >= 1 and 1 <= n_layers <= %d, found %d and %d",
                       KD_MODEL_MAX_LAYERS, c->d_model, c->n_layers);
    if (c->n_heads < 1 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads != 0)
        return kd_fail(err, KD_EINPUT, "model: n_heads (%d) must be a positive multiple of n_kv_heads (%d)",
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2 != 0)
        return kd_fail(err, KD_EINPUT, "model: head_dim must be even (RoPE rotates pairs), found %d", c->head_dim);
    if (c->ffn_dim < 1) return kd_fail(err, KD_EINPUT, "model: ffn_dim must be >= 1, found %d", c->ffn_dim);
    if (kd_model_n_ssm(c) > 0) {
        if (c->d_state != c->head_dim)
            return kd_fail(err, KD_EINPUT, "model.hybrid.d_state: must equal head_dim (%d) so B lines up with the "
                           "key heads it is initialised from, found %d", c->head_dim, c->d_state);
        if (c->chunk_size < 1) return kd_fail(err, KD_EINPUT, "model.hybrid.chunk_size: must be >= 1, found %d", c->chunk_size);
        if (c->conv_width < 1) return kd_fail(err, KD_EINPUT, "model.hybrid.conv_width: must be >= 1, found %d", c->conv_width);
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- param table

static size_t add_param(kd_param_table *pt, int cap, const char *name, int decay, int ndim, int d0,
                        int d1, int d2) {
    KD_ASSERT(pt->n < cap);
    kd_param_info *p = &pt->t[pt->n++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0, p->shape[1] = d1, p->shape[2] = d2, p->shape[3] = 1;
    p->numel = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    p->offset = pt->total;
    p->decay = decay;
    pt->total += p->numel;
    return p->offset;
}

static void build_table(kd_model *m) {
    const kd_model_config *c = &m->cfg;
    int cap = 4 + c->n_layers * (4 + KD_MAMBA2_NPARAMS + 4);  // generous: norms, mixer, MLP
    kd_param_table *pt = &m->table;
    pt->t = kd_calloc((size_t)cap, sizeof(kd_param_info));
    pt->n = 0;
    pt->total = 0;
    char nm[KD_PARAM_NAME_MAX];
    int C = c->d_model, HD = c->head_dim, F = c->ffn_dim;
    m->off_wte = add_param(pt, cap, "embed_tokens.weight", 1, 2, c->vocab_size, C, 0);
    for (int l = 0; l < c->n_layers; l++) {
        kd_layer_offsets *lo = &m->lo[l];
#define P(suffix, decay, nd, a, b, cc) \
    (snprintf(nm, sizeof nm, "layers.%d.%s", l, suffix), add_param(pt, cap, nm, decay, nd, a, b, cc))
        lo->ln1 = P("input_layernorm.weight", 0, 1, C, 0, 0);
        if (c->mixer[l] == KD_MIXER_ATTN) {
            lo->wqkv = P("mixer.q_proj.weight", 1, 2, c->n_heads * HD, C, 0);
            P("mixer.k_proj.weight", 1, 2, c->n_kv_heads * HD, C, 0);
            P("mixer.v_proj.weight", 1, 2, c->n_kv_heads * HD, C, 0);
            lo->wo = P("mixer.o_proj.weight", 1, 2, C, c->n_heads * HD, 0);
        } else {
            kd_param_info mi[KD_MAMBA2_NPARAMS];
            kd_mamba2_param_infos(&m->mcfg, l, mi);
            for (int k = 0; k < KD_MAMBA2_NPARAMS; k++)
                add_param(pt, cap, mi[k].name, mi[k].decay, mi[k].ndim, mi[k].shape[0], mi[k].shape[1],
                          mi[k].shape[2]);
        }
        lo->ln2 = P("post_attention_layernorm.weight", 0, 1, C, 0, 0);
        lo->wgu = P("mlp.gate_proj.weight", 1, 2, F, C, 0);
        P("mlp.up_proj.weight", 1, 2, F, C, 0);
        lo->wdown = P("mlp.down_proj.weight", 1, 2, C, F, 0);
#undef P
    }
    m->off_norm = add_param(pt, cap, "norm.weight", 0, 1, C, 0, 0);
    m->off_head = c->tie_embeddings ? m->off_wte
                                    : add_param(pt, cap, "lm_head.weight", 1, 2, c->vocab_size, C, 0);
}

// ----------------------------------------------------------------------------- lifecycle

static kd_mamba2_cfg mamba_cfg(const kd_model_config *c) {
    kd_mamba2_cfg m;
    memset(&m, 0, sizeof m);
    m.d_model = c->d_model;
    m.k.H = c->n_heads, m.k.n_kv = c->n_kv_heads, m.k.P = c->head_dim, m.k.N = c->d_state;
    m.k.W = c->conv_width, m.k.Q = c->chunk_size;
    m.norm_eps = c->norm_eps;
    return m;
}

int kd_model_create(kd_model **out, const kd_model_config *cfg, const kd_ops *ops,
                    int with_grads, kd_error *err) {
    *out = NULL;
    int rc = kd_model_config_check(cfg, err);
    if (rc) return rc;
    kd_model *m = kd_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    m->mcfg = mamba_cfg(cfg);
    if (kd_model_n_ssm(cfg) > 0 && (rc = kd_mamba2_check(&m->mcfg, err))) {
        free(m);
        return rc;
    }
    build_table(m);
    m->params = ops->alloc(m->table.total * sizeof(float));
    if (with_grads) m->grads = ops->alloc(m->table.total * sizeof(float));
    if (!m->params || (with_grads && !m->grads)) {
        size_t total = m->table.total;
        if (m->params) ops->free(m->params);
        if (m->grads) ops->free(m->grads);
        free(m->table.t);
        free(m);
        return kd_fail(err, KD_ERUNTIME, "model: cannot allocate %zu parameters on the %s backend", total, ops->name);
    }
    for (int l = 0; l < cfg->n_layers; l++) {
        if (cfg->mixer[l] != KD_MIXER_MAMBA2) continue;
        KD_ASSERT(kd_mamba2_params_bind(&m->mp[l], m->params, &m->table, &m->mcfg, l, err) == KD_OK);
        if (with_grads) KD_ASSERT(kd_mamba2_params_bind(&m->mg[l], m->grads, &m->table, &m->mcfg, l, err) == KD_OK);
    }
    *out = m;
    return KD_OK;
}

static void free_acts(kd_model *m) {
    const kd_ops *o = m->ops;
    if (m->act_mem) o->free(m->act_mem);
    m->act_mem = NULL;
    if (m->ids) o->free(m->ids);
    if (m->pos) o->free(m->pos);
    if (m->seg) o->free(m->seg);
    if (m->targets) o->free(m->targets);
    m->act_mem = NULL;
    m->ids = m->pos = m->seg = m->targets = NULL;
    m->B = m->T = 0;
}

void kd_model_free(kd_model *m) {
    if (!m) return;
    free_acts(m);
    m->ops->free(m->params);
    if (m->grads) m->ops->free(m->grads);
    free(m->table.t);
    free(m);
}

const kd_model_config *kd_model_cfg(const kd_model *m) { return &m->cfg; }
const kd_param_table *kd_model_table(const kd_model *m) { return &m->table; }
const kd_ops *kd_model_ops(const kd_model *m) { return m->ops; }
float *kd_model_params(kd_model *m) { return m->params; }
float *kd_model_grads(kd_model *m) { return m->grads; }
float *kd_model_logits(kd_model *m) { return m->logits; }
const float *kd_model_dembed(const kd_model *m) { return m->dres; }

const float *kd_model_hidden(const kd_model *m, int layer) {
    return layer >= m->cfg.n_layers ? m->resid_final : m->la[layer].resid_in;
}

void kd_model_zero_grad(kd_model *m) {
    if (m->grads) m->ops->zero(m->grads, m->table.total * sizeof(float));
}

// ----------------------------------------------------------------------------- init

static int is_output_proj(const char *name) {
    return kd_str_endswith(name, "o_proj.weight") || kd_str_endswith(name, "down_proj.weight") ||
           kd_str_endswith(name, "out_proj.weight");
}

void kd_model_init_random(kd_model *m, uint64_t seed, float std) {
    const kd_param_table *pt = &m->table;
    float *host = kd_malloc(pt->total * sizeof(float));
    float out_std = std / sqrtf(2.0f * (float)m->cfg.n_layers);
    for (int i = 0; i < pt->n; i++) {
        const kd_param_info *p = &pt->t[i];
        float *w = host + p->offset;
        kd_rng rng;
        kd_rng_seed_str(&rng, seed, p->name);
        if (kd_str_endswith(p->name, "norm.weight") || kd_str_endswith(p->name, "layernorm.weight") ||
            kd_str_endswith(p->name, "mixer.D")) {
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        } else if (kd_str_endswith(p->name, "mixer.dt_bias")) {
            kd_mamba2_init_dt_bias(w, p->numel, &rng);
        } else if (kd_str_endswith(p->name, "mixer.A_log")) {
            kd_mamba2_init_A_log(w, p->numel, &rng);
        } else if (kd_str_endswith(p->name, "conv1d.weight") || kd_str_endswith(p->name, "conv1d.bias")) {
            // PyTorch Conv1d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = width
            double b = 1.0 / sqrt((double)m->cfg.conv_width);
            for (size_t j = 0; j < p->numel; j++) w[j] = (float)((2.0 * kd_rng_uniform(&rng) - 1.0) * b);
        } else {
            float s = is_output_proj(p->name) ? out_std : std;
            for (size_t j = 0; j < p->numel; j++) w[j] = s * (float)kd_rng_normal(&rng);
        }
    }
    m->ops->upload(m->params, host, pt->total * sizeof(float));
    free(host);
}

// ----------------------------------------------------------------------------- activations

static kd_attn_dims attn_dims(const kd_model_config *c) {
    kd_attn_dims d = {c->d_model, c->n_heads, c->n_kv_heads, c->head_dim, c->rope_theta};
    return d;
}

size_t kd_model_param_count(const kd_model_config *c) {
    size_t C = (size_t)c->d_model, HD = (size_t)c->head_dim, NH = (size_t)c->n_heads, NKV = (size_t)c->n_kv_heads;
    size_t V = (size_t)c->vocab_size, F = (size_t)c->ffn_dim;
    size_t n = V * C + C + (c->tie_embeddings ? 0 : V * C);
    for (int l = 0; l < c->n_layers; l++) {
        n += 2 * C + 3 * F * C;
        if (c->mixer[l] == KD_MIXER_MAMBA2) {
            size_t di = NH * HD, dxb = NKV * HD, conv = di + 2 * dxb;
            n += (2 * di + 2 * dxb + NH) * C + conv * (size_t)c->conv_width + conv + 3 * NH + di + C * di;
        } else {
            n += (NH + 2 * NKV) * HD * C + C * NH * HD;
        }
    }
    return n;
}

static size_t mixer_floats(const kd_model_config *c, int l, int B, int T) {
    if (c->mixer[l] == KD_MIXER_MAMBA2) {
        kd_mamba2_cfg mc = mamba_cfg(c);
        return kd_mamba2_acts_floats(&mc, B, T);
    }
    kd_attn_dims ad = attn_dims(c);
    return kd_attn_act_floats(&ad, B, T);
}

double kd_model_activation_bytes(const kd_model_config *c, int B, int T, int training) {
    double N = (double)B * T, C = c->d_model, F = c->ffn_dim;
    kd_attn_dims ad = attn_dims(c);
    double total = N * (2 * C + 1 + c->vocab_size);
    for (int l = 0; l < c->n_layers; l++) total += N * (5 * C + 2 + 3 * F) + (double)mixer_floats(c, l, B, T);
    if (training) total += N * (2 * C + 3 * F) + (double)kd_attn_act_floats(&ad, B, T);
    return total * 4.0;
}

static void prepare(kd_model *m, int B, int T) {
    if (m->B == B && m->T == T && m->act_mem) return;
    free_acts(m);
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    size_t N = (size_t)B * T, C = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    kd_attn_dims ad = attn_dims(c);
    size_t attn = kd_attn_act_floats(&ad, B, T);
    size_t total = 2 * N * C + N + N * V;
    for (int l = 0; l < c->n_layers; l++) total += 5 * N * C + 2 * N + 3 * N * F + mixer_floats(c, l, B, T);
    int training = m->grads != NULL;
    if (training) total += 2 * N * C + 3 * N * F + attn;
    total += 2 * N;  // weights, losses
    float *p = o->alloc(total * sizeof(float));
    m->act_mem = p;
    m->act_floats = total;
    for (int l = 0; l < c->n_layers; l++) {
        kd_layer_acts *a = &m->la[l];
        a->resid_in = p, p += N * C;
        a->ln1 = p, p += N * C;
        a->rstd1 = p, p += N;
        if (c->mixer[l] == KD_MIXER_MAMBA2) kd_mamba2_acts_bind(&a->mamba, p, &m->mcfg, B, T);
        else kd_attn_bind(&ad, B, T, p, &a->attn);
        p += mixer_floats(c, l, B, T);
        a->mix_out = p, p += N * C;
        a->resid_mid = p, p += N * C;
        a->ln2 = p, p += N * C;
        a->rstd2 = p, p += N;
        a->gu = p, p += 2 * N * F;
        a->swi = p, p += N * F;
    }
    m->resid_final = p, p += N * C;
    m->lnf = p, p += N * C;
    m->rstdf = p, p += N;
    m->logits = p, p += N * V;
    m->weights = p, p += N;
    m->losses = p, p += N;
    if (training) {
        m->dres = p, p += N * C;
        m->dtmp = p, p += N * C;
        m->dgu = p, p += 2 * N * F;
        m->dswi = p, p += N * F;
        kd_attn_acts s;
        kd_attn_bind(&ad, B, T, p, &s), p += attn;
        m->attn_s.dqkv = s.qkv, m->attn_s.datt = s.att, m->attn_s.dy = s.y;
    }
    KD_ASSERT((size_t)(p - m->act_mem) == total);
    m->ids = o->alloc(N * sizeof(int32_t));
    m->pos = o->alloc(N * sizeof(int32_t));
    m->seg = o->alloc(N * sizeof(int32_t));
    m->targets = o->alloc(N * sizeof(int32_t));
    m->B = B, m->T = T;
}

// ----------------------------------------------------------------------------- forward

int kd_model_forward(kd_model *m, const int32_t *ids, const int32_t *pos, const int32_t *seg,
                     int B, int T, kd_error *err) {
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    (void)err;
    prepare(m, B, T);
    int N = B * T, C = c->d_model, F = c->ffn_dim;
    o->upload(m->ids, ids, (size_t)N * sizeof(int32_t));
    if (pos) {
        o->upload(m->pos, pos, (size_t)N * sizeof(int32_t));
    } else {
        // default positions: 0.. within each row, restarting at every document boundary
        int32_t *hp = kd_malloc((size_t)N * sizeof(int32_t));
        for (int i = 0; i < N; i++) {
            int t = i % T;
            hp[i] = (t == 0 || (seg && seg[i] != seg[i - 1])) ? 0 : hp[i - 1] + 1;
        }
        o->upload(m->pos, hp, (size_t)N * sizeof(int32_t));
        free(hp);
    }
    m->has_seg = seg != NULL;
    if (seg) o->upload(m->seg, seg, (size_t)N * sizeof(int32_t));
    const int32_t *segp = seg ? m->seg : NULL;
    float *P = m->params;
    kd_attn_dims ad = attn_dims(c);

    o->embedding_fwd(m->la[0].resid_in, m->ids, P + m->off_wte, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        kd_layer_acts *a = &m->la[l];
        const kd_layer_offsets *lo = &m->lo[l];
        float *next = l + 1 < c->n_layers ? m->la[l + 1].resid_in : m->resid_final;
        o->rmsnorm_fwd(a->ln1, a->rstd1, a->resid_in, P + lo->ln1, N, C, c->norm_eps);
        if (c->mixer[l] == KD_MIXER_MAMBA2)
            kd_mamba2_forward(o, &m->mcfg, &m->mp[l], &a->mamba, a->mix_out, a->ln1, segp, B, T);
        else
            kd_attn_forward(o, &ad, P + lo->wqkv, P + lo->wo, &a->attn, a->ln1, m->pos, segp, B, T, a->mix_out);
        o->add(a->resid_mid, a->resid_in, a->mix_out, (size_t)N * C);
        o->rmsnorm_fwd(a->ln2, a->rstd2, a->resid_mid, P + lo->ln2, N, C, c->norm_eps);
        o->matmul_fwd(a->gu, a->ln2, P + lo->wgu, N, C, 2 * F);
        o->swiglu_fwd(a->swi, a->gu, N, F);
        o->matmul_fwd(next, a->swi, P + lo->wdown, N, F, C);
        o->add(next, next, a->resid_mid, (size_t)N * C);
    }
    o->rmsnorm_fwd(m->lnf, m->rstdf, m->resid_final, P + m->off_norm, N, C, c->norm_eps);
    o->matmul_fwd(m->logits, m->lnf, P + m->off_head, N, C, c->vocab_size);
    return KD_OK;
}

double kd_model_ce_loss(kd_model *m, const int32_t *targets, const float *weights, float dscale,
                        int want_grad) {
    const kd_ops *o = m->ops;
    int N = m->B * m->T;
    o->upload(m->targets, targets, (size_t)N * sizeof(int32_t));
    if (weights) o->upload(m->weights, weights, (size_t)N * sizeof(float));
    o->cross_entropy(m->losses, want_grad ? m->logits : NULL, m->logits, m->targets,
                     weights ? m->weights : NULL, N, m->cfg.vocab_size, dscale);
    float *h = kd_malloc((size_t)N * sizeof(float));
    o->download(h, m->losses, (size_t)N * sizeof(float));
    double s = 0;
    for (int i = 0; i < N; i++) s += h[i];
    free(h);
    return s;
}

// ----------------------------------------------------------------------------- backward

void kd_model_backward(kd_model *m) {
    const kd_model_config *c = &m->cfg;
    const kd_ops *o = m->ops;
    KD_ASSERT(m->grads != NULL);
    int B = m->B, T = m->T, N = B * T, C = c->d_model, F = c->ffn_dim;
    size_t NC = (size_t)N * C * sizeof(float);
    float *P = m->params, *G = m->grads;
    kd_attn_dims ad = attn_dims(c);

    o->zero(m->dres, NC);
    o->zero(m->dtmp, NC);
    o->matmul_bwd(m->dtmp, G + m->off_head, m->logits, m->lnf, P + m->off_head, N, C, c->vocab_size);
    o->rmsnorm_bwd(m->dres, G + m->off_norm, m->dtmp, m->resid_final, P + m->off_norm, m->rstdf, N, C);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        kd_layer_acts *a = &m->la[l];
        const kd_layer_offsets *lo = &m->lo[l];
        // MLP: resid_out = resid_mid + down(swiglu(gu(ln2(resid_mid))))
        o->zero(m->dswi, (size_t)N * F * sizeof(float));
        o->matmul_bwd(m->dswi, G + lo->wdown, m->dres, a->swi, P + lo->wdown, N, F, C);
        o->swiglu_bwd(m->dgu, m->dswi, a->gu, N, F);
        o->zero(m->dtmp, NC);
        o->matmul_bwd(m->dtmp, G + lo->wgu, m->dgu, a->ln2, P + lo->wgu, N, C, 2 * F);
        o->rmsnorm_bwd(m->dres, G + lo->ln2, m->dtmp, a->resid_mid, P + lo->ln2, a->rstd2, N, C);
        // mixer: resid_mid = resid_in + mixer(ln1(resid_in))
        o->zero(m->dtmp, NC);
        if (c->mixer[l] == KD_MIXER_MAMBA2)
            kd_mamba2_backward(o, &m->mcfg, &m->mp[l], &m->mg[l], &a->mamba, m->dtmp, m->dres, a->ln1,
                               m->has_seg ? m->seg : NULL, B, T);
        else
            kd_attn_backward(o, &ad, P + lo->wqkv, P + lo->wo, G + lo->wqkv, G + lo->wo, &a->attn,
                             &m->attn_s, a->ln1, m->pos, B, T, m->dres, m->dtmp);
        o->rmsnorm_bwd(m->dres, G + lo->ln1, m->dtmp, a->resid_in, P + lo->ln1, a->rstd1, N, C);
    }
    o->embedding_bwd(G + m->off_wte, m->dres, m->ids, N, C);
}

// ----------------------------------------------------------------------------- views

const float *kd_model_mixer_input(const kd_model *m, int layer) { return m->la[layer].ln1; }
const float *kd_model_mixer_output(const kd_model *m, int layer) { return m->la[layer].mix_out; }
const float *kd_model_attn_probs(const kd_model *m, int layer) {
    return m->cfg.mixer[layer] == KD_MIXER_ATTN ? m->la[layer].attn.att : NULL;
}
