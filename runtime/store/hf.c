// hf.c: Hugging Face Llama directory import (hf.h): tensor names and loading the weights.
// The config is read by hf_config.c, exports are written by hf_export.c.
#include "runtime/store/hf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "runtime/store/hf_internal.h"
#include "runtime/store/safetensors.h"

// ----------------------------------------------------------------------------- names

// kdtrain name -> HF name. Mamba-2 mixers are stored under ".mamba." (MambaInLlama's
// attribute name), attention under ".self_attn.".
void kd_hf_name(const kd_model_config *c, const char *ours, char *hf, size_t n) {
    int l = -1, k = 0;
    if (sscanf(ours, "layers.%d.%n", &l, &k) == 1 && k > 0) {
        const char *rest = ours + k;
        if (strncmp(rest, "mixer.", 6) == 0)
            snprintf(hf, n, "model.layers.%d.%s.%s", l, c->mixer[l] == KD_MIXER_MAMBA2 ? "mamba" : "self_attn", rest + 6);
        else
            snprintf(hf, n, "model.layers.%d.%s", l, rest);
    } else if (strcmp(ours, "lm_head.weight") == 0) {
        snprintf(hf, n, "%s", ours);
    } else {
        snprintf(hf, n, "model.%s", ours);
    }
}

// ----------------------------------------------------------------------------- import

int kd_hf_load(const char *dir, const kd_ops *ops, int with_grads, kd_model **out, kd_error *err) {
    *out = NULL;
    kd_model_config c;
    int rc = kd_hf_config(dir, &c, err);
    if (rc) return rc;
    kd_safetensors *st = NULL;
    if ((rc = kd_safetensors_open(dir, &st, err))) return rc;
    kd_model *m = NULL;
    if ((rc = kd_model_create(&m, &c, ops, with_grads, err))) {
        kd_safetensors_close(st);
        return rc;
    }
    const kd_param_table *pt = kd_model_table(m);
    float *host = kd_malloc(pt->total * sizeof(float));
    char name[256];
    for (int i = 0; i < pt->n && !rc; i++) {
        const kd_param_info *p = &pt->t[i];
        kd_hf_name(&c, p->name, name, sizeof name);
        const kd_safetensors_tensor *t = kd_safetensors_find(st, name);
        if (!t) {
            rc = kd_fail(err, KD_EINPUT, "%s: tensor %s (kdtrain %s) is missing", dir, name, p->name);
            break;
        }
        if ((size_t)t->numel != p->numel) {
            rc = kd_fail(err, KD_EINPUT, "%s: tensor %s has %lld elements, the config needs %zu", dir, name,
                         (long long)t->numel, p->numel);
            break;
        }
        rc = kd_safetensors_read_f32(st, name, host + p->offset, p->numel, err);
    }
    kd_safetensors_close(st);
    if (!rc) ops->mem->upload(ops->ctx, kd_model_params(m), host, pt->total * sizeof(float));
    free(host);
    if (rc) {
        kd_model_free(m);
        return rc;
    }
    // the directory's tokenizer.json, when it ships one, is the model's tokenizer
    char tj[4200], abs[KD_MODEL_TOK_SPEC_MAX], fp[65];
    kd_error ignored = {0};
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    if (access(tj, R_OK) == 0 && kd_tokenizer_identify(dir, abs, sizeof abs, fp, &ignored) == KD_OK)
        kd_model_set_tokenizer(m, abs, fp);
    *out = m;
    return KD_OK;
}

