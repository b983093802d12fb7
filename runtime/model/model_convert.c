// model_convert.c: attention -> Mamba-2 conversion of a model (model_convert.h). Works on
// host copies of the parameter buffers: one download of the source, one upload of the
// result.
#include "runtime/model/model_convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model_internal.h"
#include "runtime/base/rng.h"

// ----------------------------------------------------------------------------- config

static int build_config(const kd_model_config *sc, const int *ssm, int n_ssm,
                        const kd_convert_opts *o, kd_model_config *c, kd_error *err) {
    *c = *sc;
    if (n_ssm < 1)
        return kd_fail(err, KD_EINPUT,
                       "hybrid.ssm_layers: expected at least one layer to turn into "
                       "Mamba-2, found none");
    int want[KD_MODEL_MAX_LAYERS] = {0};
    for (int k = 0; k < n_ssm; k++) {
        if (ssm[k] < 0 || ssm[k] >= sc->n_layers)
            return kd_fail(err, KD_EINPUT,
                           "hybrid.ssm_layers[%d]: expected a layer in [0, %d), found %d", k,
                           sc->n_layers, ssm[k]);
        want[ssm[k]] = 1;
    }
    int had_ssm = kd_model_n_ssm(sc) > 0;
    for (int l = 0; l < sc->n_layers; l++) {
        if (sc->mixer[l] == KD_MIXER_MAMBA2 && !want[l])
            return kd_fail(err, KD_EINPUT,
                           "hybrid.ssm_layers: layer %d is already Mamba-2 in the source "
                           "model and init cannot turn it back into attention; list it too",
                           l);
        c->mixer[l] = want[l] ? KD_MIXER_MAMBA2 : KD_MIXER_ATTN;
    }
    c->d_state = o->d_state > 0 ? o->d_state : sc->head_dim;
    c->chunk_size = o->chunk_size;
    c->conv_width = o->conv_width;
    if (had_ssm && (c->d_state != sc->d_state || c->conv_width != sc->conv_width))
        return kd_fail(err, KD_EINPUT,
                       "hybrid: the source model's Mamba-2 layers have d_state %d and "
                       "conv_width %d; the new layers must match, found %d and %d",
                       sc->d_state, sc->conv_width, c->d_state, c->conv_width);
    return kd_model_config_check(c, err);
}

// ----------------------------------------------------------------------------- new tensors

static void fill_uniform(float *w, size_t n, double bound, kd_rng *r) {
    for (size_t j = 0; j < n; j++) w[j] = (float)((2.0 * kd_rng_uniform(r) - 1.0) * bound);
}

// Source offset of layers.<l>.mixer.<what>.weight, which must exist with numel elements.
static const float *src_tensor(const kd_model *src, const float *host, int l, const char *what,
                               size_t numel) {
    char nm[KD_PARAM_NAME_MAX];
    snprintf(nm, sizeof nm, "layers.%d.mixer.%s.weight", l, what);
    int i = kd_params_find(&src->table, nm);
    KD_ASSERT(i >= 0 && src->table.t[i].numel == numel);
    return host + src->table.t[i].offset;
}

// Fills tensor p (of converted layer l) in dst from the source attention layer or fresh.
static void convert_tensor(const kd_model *src, const float *sh, const kd_model *dst,
                           const kd_param_info *p, int l, const kd_convert_opts *o, float *w) {
    kd_mamba2_sizes s = kd_mamba2_sizes_of(&dst->mcfg);
    const kd_model_config *c = &dst->cfg;
    const size_t C = (size_t)c->d_model, H = (size_t)c->n_heads, W = (size_t)c->conv_width;
    kd_rng rng;
    kd_rng_seed_str(&rng, o->seed, p->name);
    if (kd_str_endswith(p->name, "mixer.in_proj.weight")) {
        // rows [z | x | B | C | dt]: z and dt fresh (nn.Linear default U(+-1/sqrt(C))),
        // x <- v_proj, B <- k_proj, C <- q_proj
        double bound = 1.0 / sqrt((double)C);
        size_t xb = (size_t)s.d_xb * C, di = (size_t)s.d_inner * C;
        fill_uniform(w, di, bound, &rng);
        memcpy(w + di, src_tensor(src, sh, l, "v_proj", xb), xb * sizeof(float));
        memcpy(w + di + xb, src_tensor(src, sh, l, "k_proj", xb), xb * sizeof(float));
        memcpy(w + di + 2 * xb, src_tensor(src, sh, l, "q_proj", di), di * sizeof(float));
        fill_uniform(w + 2 * di + 2 * xb, H * C, bound, &rng);
    } else if (kd_str_endswith(p->name, "mixer.out_proj.weight")) {
        memcpy(w, src_tensor(src, sh, l, "o_proj", p->numel), p->numel * sizeof(float));
    } else if (kd_str_endswith(p->name, "mixer.conv1d.weight")) {
        if (o->conv == KD_CONV_INIT_IDENTITY) {
            memset(w, 0, p->numel * sizeof(float));
            for (size_t ch = 0; ch < (size_t)s.conv_dim; ch++) w[ch * W + W - 1] = 1.0f;
        } else {
            fill_uniform(w, p->numel, 1.0 / sqrt((double)W), &rng);
        }
    } else if (kd_str_endswith(p->name, "mixer.conv1d.bias")) {
        if (o->conv == KD_CONV_INIT_IDENTITY)
            memset(w, 0, p->numel * sizeof(float));
        else
            fill_uniform(w, p->numel, 1.0 / sqrt((double)W), &rng);
    } else if (kd_str_endswith(p->name, "mixer.dt_bias")) {
        kd_mamba2_init_dt_bias(w, p->numel, &rng);
    } else if (kd_str_endswith(p->name, "mixer.A_log")) {
        kd_mamba2_init_A_log(w, p->numel, &rng);
    } else if (kd_str_endswith(p->name, "mixer.D") ||
               kd_str_endswith(p->name, "mixer.norm.weight")) {
        for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
    } else {
        KD_ASSERT(!"unexpected new tensor in a converted layer");
    }
}

// ----------------------------------------------------------------------------- convert

int kd_model_convert(kd_model **out, const kd_model *src, const int *ssm_layers, int n_ssm,
                     const kd_convert_opts *o, int with_grads, kd_error *err) {
    *out = NULL;
    kd_model_config c;
    int rc = build_config(&src->cfg, ssm_layers, n_ssm, o, &c, err);
    if (rc) return rc;
    kd_model *dst = NULL;
    if ((rc = kd_model_create(&dst, &c, src->ops, with_grads, err))) return rc;
    kd_model_set_tokenizer(dst, src->tok_spec, src->tok_fp); // the same ids
    const kd_ops *ops = src->ops;
    float *sh = kd_malloc(src->table.total * sizeof(float));
    float *dh = kd_malloc(dst->table.total * sizeof(float));
    ops->mem->download(ops->ctx, sh, src->params, src->table.total * sizeof(float));
    for (int i = 0; i < dst->table.n; i++) {
        const kd_param_info *p = &dst->table.t[i];
        int j = kd_params_find(&src->table, p->name);
        if (j >= 0 && src->table.t[j].numel == p->numel) { // unchanged tensor: exact copy
            memcpy(dh + p->offset, sh + src->table.t[j].offset, p->numel * sizeof(float));
            continue;
        }
        int l = -1;
        KD_ASSERT(sscanf(p->name, "layers.%d.", &l) == 1 && l >= 0 && l < c.n_layers);
        KD_ASSERT(src->cfg.mixer[l] == KD_MIXER_ATTN && c.mixer[l] == KD_MIXER_MAMBA2);
        convert_tensor(src, sh, dst, p, l, o, dh + p->offset);
    }
    ops->mem->upload(ops->ctx, dst->params, dh, dst->table.total * sizeof(float));
    free(sh);
    free(dh);
    *out = dst;
    return KD_OK;
}
