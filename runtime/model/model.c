// model.c: the decoder model (model.h): mixer kinds, configuration, parameter table and
// count, lifecycle and random init. Activations, the block loop, forward and backward are
// in model_forward.c; per-mixer maths in mixer_attn.c / mixer_mamba2.c behind their
// kd_mixer_vt (mixer.h).
#include "runtime/model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/base/rng.h"
#include "runtime/model/mixer.h"
#include "runtime/model/model_internal.h"

// ----------------------------------------------------------------------------- mixer kinds

static const kd_mixer_vt *const k_mixers[KD_MIXER_KINDS] = {
    [KD_MIXER_ATTN] = &kd_attn_mixer,
    [KD_MIXER_MAMBA2] = &kd_mamba2_mixer,
};

const kd_mixer_vt *kd_mixer_vt_of(kd_mixer_kind kind) {
    KD_ASSERT((unsigned)kind < KD_MIXER_KINDS);
    return k_mixers[kind];
}

const char *kd_mixer_name(kd_mixer_kind kind) {
    return (unsigned)kind < KD_MIXER_KINDS ? k_mixers[kind]->name : "?";
}

size_t kd_mixer_parse(const char *s, kd_mixer_kind *out) {
    for (int k = 0; k < KD_MIXER_KINDS; k++) {
        size_t n = strlen(k_mixers[k]->name);
        if (strncmp(s, k_mixers[k]->name, n) == 0) {
            *out = (kd_mixer_kind)k;
            return n;
        }
    }
    return 0;
}

kd_mixer_cfgs kd_mixer_cfgs_of(const kd_model_config *c) {
    kd_mixer_cfgs m;
    memset(&m, 0, sizeof m);
    m.attn.C = c->d_model, m.attn.NH = c->n_heads, m.attn.NKV = c->n_kv_heads;
    m.attn.HD = c->head_dim; // inv_freq: the model's table, set by kd_model_create
    m.mamba.d_model = c->d_model;
    m.mamba.k.H = c->n_heads, m.mamba.k.n_kv = c->n_kv_heads, m.mamba.k.P = c->head_dim;
    m.mamba.k.N = c->d_state, m.mamba.k.W = c->conv_width, m.mamba.k.Q = c->chunk_size;
    m.mamba.norm_eps = c->norm_eps;
    return m;
}

const void *kd_mixer_cfg_of(const kd_mixer_cfgs *mc, kd_mixer_kind kind) {
    const void *by_kind[KD_MIXER_KINDS] = {
        [KD_MIXER_ATTN] = &mc->attn, [KD_MIXER_MAMBA2] = &mc->mamba};
    return by_kind[kind];
}

// ----------------------------------------------------------------------------- config

int kd_model_n_ssm(const kd_model_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += c->mixer[l] == KD_MIXER_MAMBA2;
    return n;
}

int kd_model_config_check(const kd_model_config *c, kd_error *err) {
    if (c->vocab_size < 2)
        return kd_fail(err, KD_EINPUT, "model: vocab_size must be >= 2, found %d", c->vocab_size);
    if (c->d_model < 1 || c->n_layers < 1 || c->n_layers > KD_MODEL_MAX_LAYERS)
        return kd_fail(err, KD_EINPUT,
                       "model: need d_model >= 1 and 1 <= n_layers <= %d, found %d and %d",
                       KD_MODEL_MAX_LAYERS, c->d_model, c->n_layers);
    if (c->n_heads < 1 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads != 0)
        return kd_fail(err, KD_EINPUT,
                       "model: n_heads (%d) must be a positive multiple of n_kv_heads (%d)",
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2 != 0)
        return kd_fail(err, KD_EINPUT,
                       "model: head_dim must be even (RoPE rotates pairs), found %d", c->head_dim);
    if (c->ffn_dim < 1)
        return kd_fail(err, KD_EINPUT, "model: ffn_dim must be >= 1, found %d", c->ffn_dim);
    if (c->max_pos < 0)
        return kd_fail(err, KD_EINPUT, "model.arch.max_position_embeddings: must be >= 0, found %d",
                       c->max_pos);
    if (c->rope.type == KD_ROPE_DYNAMIC && c->max_pos < 1)
        return kd_fail(err, KD_EINPUT,
                       "model.arch.max_position_embeddings: dynamic RoPE scaling needs it (dynamic "
                       "equals plain RoPE only up to that length)");
    int rc = kd_rope_check(&c->rope, c->max_pos, "model.arch.rope_", err);
    if (rc) return rc;
    if (kd_model_n_ssm(c) > 0) {
        if (c->d_state != c->head_dim)
            return kd_fail(err, KD_EINPUT,
                           "model.hybrid.d_state: must equal head_dim (%d) so B lines up with the "
                           "key heads it is initialised from, found %d",
                           c->head_dim, c->d_state);
        if (c->chunk_size < 1)
            return kd_fail(err, KD_EINPUT, "model.hybrid.chunk_size: must be >= 1, found %d",
                           c->chunk_size);
        if (c->conv_width < 1)
            return kd_fail(err, KD_EINPUT, "model.hybrid.conv_width: must be >= 1, found %d",
                           c->conv_width);
    }
    return KD_OK;
}

size_t kd_model_param_count(const kd_model_config *c) {
    size_t C = (size_t)c->d_model, HD = (size_t)c->head_dim, NH = (size_t)c->n_heads,
           NKV = (size_t)c->n_kv_heads;
    size_t V = (size_t)c->vocab_size, F = (size_t)c->ffn_dim;
    size_t n = V * C + C + (c->tie_embeddings ? 0 : V * C);
    for (int l = 0; l < c->n_layers; l++) {
        n += 2 * C + 3 * F * C;
        if (c->mixer[l] == KD_MIXER_MAMBA2) {
            size_t di = NH * HD, dxb = NKV * HD, conv = di + 2 * dxb;
            n += (2 * di + 2 * dxb + NH) * C + conv * (size_t)c->conv_width + conv + 3 * NH + di +
                 C * di;
        } else {
            n += (NH + 2 * NKV) * HD * C + C * NH * HD;
        }
    }
    return n;
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
    int cap = 4 + c->n_layers * (4 + KD_MAMBA2_NPARAMS + 4); // generous: norms, mixer, MLP
    kd_param_table *pt = &m->table;
    pt->t = kd_calloc((size_t)cap, sizeof(kd_param_info));
    pt->n = 0;
    pt->total = 0;
    char nm[KD_PARAM_NAME_MAX];
    int C = c->d_model, HD = c->head_dim, F = c->ffn_dim;
    m->off_wte = add_param(pt, cap, "embed_tokens.weight", 1, 2, c->vocab_size, C, 0);
    for (int l = 0; l < c->n_layers; l++) {
        kd_layer_offsets *lo = &m->lo[l];
#define P(suffix, decay, nd, a, b, cc)                                                             \
    (snprintf(nm, sizeof nm, "layers.%d.%s", l, suffix),                                           \
     add_param(pt, cap, nm, decay, nd, a, b, cc))
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
                add_param(pt, cap, mi[k].name, mi[k].decay, mi[k].ndim, mi[k].shape[0],
                          mi[k].shape[1], mi[k].shape[2]);
        }
        lo->ln2 = P("post_attention_layernorm.weight", 0, 1, C, 0, 0);
        lo->wgu = P("mlp.gate_proj.weight", 1, 2, F, C, 0);
        P("mlp.up_proj.weight", 1, 2, F, C, 0);
        lo->wdown = P("mlp.down_proj.weight", 1, 2, C, F, 0);
#undef P
    }
    m->off_norm = add_param(pt, cap, "norm.weight", 0, 1, C, 0, 0);
    m->off_head = c->tie_embeddings
                      ? m->off_wte
                      : add_param(pt, cap, "lm_head.weight", 1, 2, c->vocab_size, C, 0);
}

// ----------------------------------------------------------------------------- lifecycle

// Points each layer's mixer at its configuration and parameter (and gradient) views.
static void bind_mixers(kd_model *m) {
    const kd_model_config *c = &m->cfg;
    kd_error err = {0};
    for (int l = 0; l < c->n_layers; l++) {
        kd_mixer *x = &m->mx[l];
        x->vt = kd_mixer_vt_of(c->mixer[l]);
        x->ops = m->ops;
        if (c->mixer[l] == KD_MIXER_MAMBA2) {
            KD_ASSERT(kd_mamba2_params_bind(&m->mp[l], m->params, &m->table, &m->mcfg, l, &err) ==
                      KD_OK);
            if (m->grads)
                KD_ASSERT(kd_mamba2_params_bind(&m->mg[l], m->grads, &m->table, &m->mcfg, l,
                                                &err) == KD_OK);
            x->cfg = &m->mcfg, x->p = &m->mp[l], x->g = m->grads ? &m->mg[l] : NULL;
        } else {
            const kd_layer_offsets *lo = &m->lo[l];
            m->ap[l].wqkv = m->params + lo->wqkv, m->ap[l].wo = m->params + lo->wo;
            if (m->grads) m->ag[l].wqkv = m->grads + lo->wqkv, m->ag[l].wo = m->grads + lo->wo;
            x->cfg = &m->ad, x->p = &m->ap[l], x->g = m->grads ? &m->ag[l] : NULL;
        }
    }
}

// KD_ERUNTIME when the backend lacks the kernels of one of the layers' mixers.
static int check_backend(const kd_model_config *c, const kd_ops *ops, kd_error *err) {
    for (int l = 0; l < c->n_layers; l++) {
        const kd_mixer_vt *vt = kd_mixer_vt_of(c->mixer[l]);
        if (!kd_ops_supports(ops, vt->cap))
            return kd_fail(err, KD_ERUNTIME,
                           "model: layer %d is %s, and the %s backend has no %s kernels (use "
                           "backend: cpu)",
                           l, vt->name, ops->name, kd_cap_name(vt->cap));
    }
    return KD_OK;
}

int kd_model_create(kd_model **out, const kd_model_config *cfg, const kd_ops *ops, int with_grads,
                    kd_error *err) {
    *out = NULL;
    int rc = kd_model_config_check(cfg, err);
    if (!rc) rc = check_backend(cfg, ops, err);
    if (rc) return rc;
    kd_model *m = kd_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    kd_mixer_cfgs mc = kd_mixer_cfgs_of(cfg);
    m->ad = mc.attn, m->mcfg = mc.mamba;
    if (kd_model_n_ssm(cfg) > 0 && (rc = kd_mamba2_check(&m->mcfg, err))) {
        free(m);
        return rc;
    }
    build_table(m);
    m->params = ops->mem->alloc(ops->ctx, m->table.total * sizeof(float));
    if (with_grads) m->grads = ops->mem->alloc(ops->ctx, m->table.total * sizeof(float));
    size_t half = (size_t)cfg->head_dim / 2;
    m->inv_freq = ops->mem->alloc(ops->ctx, half * sizeof(float));
    if (!m->params || (with_grads && !m->grads) || !m->inv_freq) {
        size_t total = m->table.total;
        ops->mem->free(ops->ctx, m->params);
        ops->mem->free(ops->ctx, m->grads);
        ops->mem->free(ops->ctx, m->inv_freq);
        free(m->table.t);
        free(m);
        return kd_fail(err, KD_ERUNTIME, "model: cannot allocate %zu parameters on the %s backend",
                       total, ops->name);
    }
    float *table = kd_malloc(half * sizeof(float));
    kd_rope_table(&cfg->rope, cfg->rope_theta, cfg->head_dim, table);
    ops->mem->upload(ops->ctx, m->inv_freq, table, half * sizeof(float));
    free(table);
    m->ad.inv_freq = m->inv_freq;
    bind_mixers(m);
    *out = m;
    return KD_OK;
}

void kd_model_set_tokenizer(kd_model *m, const char *spec, const char *fingerprint) {
    size_t n = spec ? strlen(spec) : 0;
    snprintf(m->tok_spec, sizeof m->tok_spec, "%s", n < sizeof m->tok_spec ? spec : "");
    snprintf(m->tok_fp, sizeof m->tok_fp, "%s", fingerprint ? fingerprint : "");
}

const char *kd_model_tokenizer(const kd_model *m) { return m->tok_spec; }
const char *kd_model_tokenizer_fp(const kd_model *m) { return m->tok_fp; }

void kd_model_free(kd_model *m) {
    if (!m) return;
    kd_model_free_acts(m);
    m->ops->mem->free(m->ops->ctx, m->params);
    m->ops->mem->free(m->ops->ctx, m->grads);
    m->ops->mem->free(m->ops->ctx, m->inv_freq);
    free(m->table.t);
    free(m);
}

const kd_model_config *kd_model_cfg(const kd_model *m) {
    return &m->cfg;
}
const kd_param_table *kd_model_table(const kd_model *m) {
    return &m->table;
}
const kd_ops *kd_model_ops(const kd_model *m) {
    return m->ops;
}
float *kd_model_params(kd_model *m) {
    return m->params;
}
float *kd_model_grads(kd_model *m) {
    return m->grads;
}
float *kd_model_logits(kd_model *m) {
    return m->logits;
}
const float *kd_model_dembed(const kd_model *m) {
    return m->dres;
}

void kd_model_zero_grad(kd_model *m) {
    if (m->grads) m->ops->mem->zero(m->ops->ctx, m->grads, m->table.total * sizeof(float));
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
        if (kd_str_endswith(p->name, "norm.weight") ||
            kd_str_endswith(p->name, "layernorm.weight") || kd_str_endswith(p->name, "mixer.D")) {
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        } else if (kd_str_endswith(p->name, "mixer.dt_bias")) {
            kd_mamba2_init_dt_bias(w, p->numel, &rng);
        } else if (kd_str_endswith(p->name, "mixer.A_log")) {
            kd_mamba2_init_A_log(w, p->numel, &rng);
        } else if (kd_str_endswith(p->name, "conv1d.weight") ||
                   kd_str_endswith(p->name, "conv1d.bias")) {
            // PyTorch Conv1d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = width
            double b = 1.0 / sqrt((double)m->cfg.conv_width);
            for (size_t j = 0; j < p->numel; j++)
                w[j] = (float)((2.0 * kd_rng_uniform(&rng) - 1.0) * b);
        } else {
            float s = is_output_proj(p->name) ? out_std : std;
            for (size_t j = 0; j < p->numel; j++) w[j] = s * (float)kd_rng_normal(&rng);
        }
    }
    m->ops->mem->upload(m->ops->ctx, m->params, host, pt->total * sizeof(float));
    free(host);
}
