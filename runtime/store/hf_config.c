// hf_config.c: a Hugging Face config.json into a kd_model_config (hf.h). What it accepts is
// exactly what kdtrain computes the same way as transformers 4.44's LlamaForCausalLM:
// model_type llama, SiLU SwiGLU MLPs without biases, full-width RoPE with rope_scaling
// absent/null, default, linear, dynamic (as plain RoPE up to max_position_embeddings) or
// llama3. Every other setting that changes the computation is refused with its key named
// (docs/formats.md#hf-import), so no model loads silently wrong. kdtrain's own hybrid
// exports (model_type KD_HF_HYBRID_TYPE with a "kdtrain" block) load too.
#include <stdlib.h>
#include <string.h>

#include "runtime/base/fs.h"
#include "runtime/base/json.h"
#include "runtime/store/hf.h"
#include "runtime/store/hf_internal.h"

// ----------------------------------------------------------------------------- helpers

char *kd_hf_read_text(const char *path, kd_error *err) {
    char *buf = NULL;
    size_t len = 0;
    int e = 0;
    kd_read_status rs = kd_read_file(path, ((size_t)64 << 20) + 1, &buf, &len, &e);
    if (rs == KD_READ_EOPEN) kd_fail(err, KD_EINPUT, "%s: cannot open: %s", path, strerror(e));
    if (rs == KD_READ_EBIG) kd_fail(err, KD_EINPUT, "%s: not a config file (over 64 MiB)", path);
    if (rs == KD_READ_EIO) kd_fail(err, KD_EINPUT, "%s: cannot read: %s", path, strerror(e));
    return buf;
}

int kd_hf_parse_file(const char *path, kd_json **out, kd_error *err) {
    *out = NULL;
    char *buf = kd_hf_read_text(path, err);
    if (!buf) return KD_EINPUT;
    int rc = kd_json_parse(buf, strlen(buf), path, out, err);
    free(buf);
    if (!rc && (*out)->type != KD_JSON_OBJECT) {
        kd_json_free(*out);
        *out = NULL;
        rc = kd_fail(err, KD_EINPUT, "%s: expected a JSON object", path);
    }
    return rc;
}

static int get_int(const kd_json *cfg, const char *key, int def, int required, const char *path,
                   int *out, kd_error *err) {
    const kd_json *v = kd_json_get(cfg, key);
    if (!v || v->type == KD_JSON_NULL) {
        if (required)
            return kd_fail(err, KD_EINPUT, "%s: key '%s' (integer) is required", path, key);
        *out = def;
        return KD_OK;
    }
    if (v->type != KD_JSON_NUMBER || !v->is_int || v->integer < 0 || v->integer > (1 << 30))
        return kd_fail(err, KD_EINPUT, "%s: key '%s': expected a non-negative integer", path, key);
    *out = (int)v->integer;
    return KD_OK;
}

static double get_num(const kd_json *cfg, const char *key, double def) {
    const kd_json *v = kd_json_get(cfg, key);
    return v && v->type == KD_JSON_NUMBER ? v->number : def;
}

static int is_true(const kd_json *cfg, const char *key) {
    const kd_json *v = kd_json_get(cfg, key);
    return v && v->type == KD_JSON_BOOL && v->boolean;
}

// ----------------------------------------------------------------------------- refusals

// model_type and architectures: a Llama, or kdtrain's own hybrid (which needs its block).
static int check_identity(const kd_json *j, const char *path, kd_error *err) {
    const kd_json *mt = kd_json_get(j, "model_type"), *ar = kd_json_get(j, "architectures");
    int hybrid = mt && mt->type == KD_JSON_STRING && strcmp(mt->str, KD_HF_HYBRID_TYPE) == 0;
    if (hybrid && !kd_json_get(j, "kdtrain"))
        return kd_fail(err, KD_EINPUT,
                       "%s: model_type \"%s\" needs the \"kdtrain\" block of a kdtrain export",
                       path, KD_HF_HYBRID_TYPE);
    if (mt && !hybrid && (mt->type != KD_JSON_STRING || strcmp(mt->str, "llama") != 0))
        return kd_fail(err, KD_EINPUT,
                       "%s: model_type: only \"llama\" is supported (Qwen2, Mistral, ... compute "
                       "differently), "
                       "found %s%s%s",
                       path, mt->type == KD_JSON_STRING ? "\"" : "",
                       mt->type == KD_JSON_STRING ? mt->str : kd_json_type_name(mt->type),
                       mt->type == KD_JSON_STRING ? "\"" : "");
    if (!ar || ar->type == KD_JSON_NULL) return KD_OK;
    const char *want = hybrid ? KD_HF_HYBRID_ARCH : "LlamaForCausalLM";
    int ok = ar->type == KD_JSON_ARRAY && ar->n == 1 && ar->items[0].type == KD_JSON_STRING &&
             strcmp(ar->items[0].str, want) == 0;
    if (!ok)
        return kd_fail(err, KD_EINPUT, "%s: architectures: expected [\"%s\"]%s", path, want,
                       ar->type == KD_JSON_ARRAY && ar->n && ar->items[0].type == KD_JSON_STRING
                           ? ", found another"
                           : "");
    return KD_OK;
}

// Settings of Llama-like configs that kdtrain does not compute: refused by name.
static int check_unsupported(const kd_json *j, const char *path, kd_error *err) {
    const kd_json *act = kd_json_get(j, "hidden_act");
    if (act && (act->type != KD_JSON_STRING || strcmp(act->str, "silu") != 0))
        return kd_fail(err, KD_EINPUT, "%s: hidden_act: only \"silu\" (SwiGLU) is supported", path);
    static const char *const biases[] = {"mlp_bias", "attention_bias", "qkv_bias", "bias",
                                         "use_bias"};
    for (size_t i = 0; i < sizeof biases / sizeof biases[0]; i++)
        if (is_true(j, biases[i]))
            return kd_fail(err, KD_EINPUT,
                           "%s: %s: true is not supported (kdtrain's projections have no biases)",
                           path, biases[i]);
    const kd_json *sw = kd_json_get(j, "sliding_window");
    if (sw && sw->type != KD_JSON_NULL && is_true(j, "use_sliding_window"))
        return kd_fail(err, KD_EINPUT,
                       "%s: sliding_window: windowed attention is not supported (kdtrain attends "
                       "over the whole causal prefix)",
                       path);
    const kd_json *pr = kd_json_get(j, "partial_rotary_factor");
    if (pr && pr->type != KD_JSON_NULL && !(pr->type == KD_JSON_NUMBER && pr->number == 1.0))
        return kd_fail(err, KD_EINPUT,
                       "%s: partial_rotary_factor: only 1 (RoPE over the whole head) is supported",
                       path);
    return KD_OK;
}

// ----------------------------------------------------------------------------- rope_scaling

static int rope_num(const kd_json *rs, const char *key, const char *path, double *out,
                    kd_error *err) {
    const kd_json *v = kd_json_get(rs, key);
    if (!v || v->type != KD_JSON_NUMBER)
        return kd_fail(err, KD_EINPUT, "%s: rope_scaling.%s: expected a number", path, key);
    *out = v->number;
    return KD_OK;
}

// Every member of rope_scaling must be one the type uses.
static int rope_keys(const kd_json *rs, kd_rope_type t, const char *path, kd_error *err) {
    static const char *const used[KD_ROPE_TYPES] = {
        [KD_ROPE_DEFAULT] = ",rope_type,type,",
        [KD_ROPE_LINEAR] = ",rope_type,type,factor,",
        [KD_ROPE_DYNAMIC] = ",rope_type,type,factor,",
        [KD_ROPE_LLAMA3] =
            ",rope_type,type,factor,low_freq_factor,high_freq_factor,original_max_position_embeddings,"};
    for (size_t i = 0; i < rs->n; i++) {
        char k[160];
        snprintf(k, sizeof k, ",%s,", rs->items[i].key);
        if (!strstr(used[t], k))
            return kd_fail(
                err, KD_EINPUT,
                "%s: rope_scaling.%s: not used by rope_type %s (kdtrain would ignore it)", path,
                rs->items[i].key, kd_rope_type_name(t));
    }
    return KD_OK;
}

static int parse_rope(const kd_json *j, const char *path, kd_model_config *c, kd_error *err) {
    const kd_json *rs = kd_json_get(j, "rope_scaling");
    if (!rs || rs->type == KD_JSON_NULL) return KD_OK;
    if (rs->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: rope_scaling: expected null or an object", path);
    const kd_json *ty = kd_json_get(rs, "rope_type");
    if (!ty) ty = kd_json_get(rs, "type");
    int t = ty && ty->type == KD_JSON_STRING ? kd_rope_type_parse(ty->str) : -1;
    if (t < 0)
        return kd_fail(err, KD_EINPUT,
                       "%s: rope_scaling.rope_type: expected \"default\", \"linear\", \"dynamic\" "
                       "or \"llama3\", "
                       "found %s (yarn, longrope, ... are not supported)",
                       path, ty && ty->type == KD_JSON_STRING ? ty->str : "none");
    int rc = rope_keys(rs, (kd_rope_type)t, path, err);
    double f = 1, lo = 1, hi = 4, om = 0;
    if (!rc && t != KD_ROPE_DEFAULT) rc = rope_num(rs, "factor", path, &f, err);
    if (!rc && t == KD_ROPE_LLAMA3) rc = rope_num(rs, "low_freq_factor", path, &lo, err);
    if (!rc && t == KD_ROPE_LLAMA3) rc = rope_num(rs, "high_freq_factor", path, &hi, err);
    if (!rc && t == KD_ROPE_LLAMA3)
        rc = rope_num(rs, "original_max_position_embeddings", path, &om, err);
    if (rc) return rc;
    c->rope = (kd_rope_scaling){.type = (kd_rope_type)t,
                                .factor = (float)f,
                                .low_freq_factor = (float)lo,
                                .high_freq_factor = (float)hi,
                                .original_max_pos = (int)om};
    if (t == KD_ROPE_DYNAMIC && c->max_pos < 1)
        return kd_fail(err, KD_EINPUT,
                       "%s: max_position_embeddings: dynamic rope_scaling needs it (kdtrain "
                       "computes dynamic NTK only where it equals plain RoPE: up to that length)",
                       path);
    rc = kd_rope_check(&c->rope, c->max_pos, "rope_scaling.", err);
    if (rc) kd_error_prefix(err, "%s: ", path);
    return rc;
}

// ----------------------------------------------------------------------------- config

// The "kdtrain" block of an exported student: Mamba-2 sizes and the layer layout.
static int parse_kdtrain(const kd_json *kd, const char *path, kd_model_config *c, kd_error *err) {
    int v = 0, rc = KD_OK;
    if (!get_int(kd, "d_state", c->d_state, 0, path, &v, err)) c->d_state = v;
    if (!get_int(kd, "chunk_size", c->chunk_size, 0, path, &v, err)) c->chunk_size = v;
    if (!get_int(kd, "conv_width", c->conv_width, 0, path, &v, err)) c->conv_width = v;
    const kd_json *ly = kd_json_get(kd, "layers");
    if (!ly || ly->type != KD_JSON_ARRAY) return KD_OK;
    if ((int)ly->n != c->n_layers)
        return kd_fail(err, KD_EINPUT,
                       "%s: kdtrain.layers has %zu entries, num_hidden_layers is %d", path, ly->n,
                       c->n_layers);
    for (size_t i = 0; !rc && i < ly->n && i < KD_MODEL_MAX_LAYERS; i++) {
        const kd_json *e = kd_json_at(ly, i);
        kd_mixer_kind k;
        size_t len = e->type == KD_JSON_STRING ? kd_mixer_parse(e->str, &k) : 0;
        if (len && e->str[len] == '\0')
            c->mixer[i] = k;
        else
            rc = kd_fail(err, KD_EINPUT, "%s: kdtrain.layers[%zu]: expected \"attn\" or \"mamba2\"",
                         path, i);
    }
    return rc;
}

// own: a kdtrain export (its "kdtrain" block), whose head_dim may differ from
// hidden_size / num_attention_heads (kdtrain computes that; transformers 4.44 does not).
static int parse_sizes(const kd_json *j, const char *path, int own, kd_model_config *c,
                       kd_error *err) {
    int rc = get_int(j, "vocab_size", 0, 1, path, &c->vocab_size, err);
    if (!rc) rc = get_int(j, "hidden_size", 0, 1, path, &c->d_model, err);
    if (!rc) rc = get_int(j, "num_hidden_layers", 0, 1, path, &c->n_layers, err);
    if (!rc) rc = get_int(j, "num_attention_heads", 0, 1, path, &c->n_heads, err);
    if (!rc) rc = get_int(j, "num_key_value_heads", c->n_heads, 0, path, &c->n_kv_heads, err);
    if (!rc) rc = get_int(j, "intermediate_size", 0, 1, path, &c->ffn_dim, err);
    if (!rc) rc = get_int(j, "max_position_embeddings", 0, 0, path, &c->max_pos, err);
    if (rc) return rc;
    // transformers 4.44's Llama uses hidden_size / num_attention_heads: a head_dim that
    // differs would be a model it computes differently
    if (c->n_heads < 1 || (!own && c->d_model % c->n_heads != 0))
        return kd_fail(err, KD_EINPUT,
                       "%s: num_attention_heads: must divide hidden_size (%d), found %d", path,
                       c->d_model, c->n_heads);
    if ((rc = get_int(j, "head_dim", c->d_model / c->n_heads, 0, path, &c->head_dim, err)))
        return rc;
    if (!own && c->head_dim != c->d_model / c->n_heads)
        return kd_fail(
            err, KD_EINPUT,
            "%s: head_dim: %d is inconsistent with hidden_size / num_attention_heads = %d", path,
            c->head_dim, c->d_model / c->n_heads);
    c->rope_theta = (float)get_num(j, "rope_theta", 10000.0);
    c->norm_eps = (float)get_num(j, "rms_norm_eps", 1e-6);
    c->tie_embeddings = is_true(j, "tie_word_embeddings");
    return KD_OK;
}

int kd_hf_config(const char *dir, kd_model_config *c, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    kd_json *j = NULL;
    int rc = kd_hf_parse_file(path, &j, err);
    if (rc) return rc;
    memset(c, 0, sizeof *c);
    rc = check_identity(j, path, err);
    if (!rc) rc = check_unsupported(j, path, err);
    const kd_json *kd = kd_json_get(j, "kdtrain"); // hybrid layout of an exported student
    int own = kd && kd->type == KD_JSON_OBJECT;
    if (!rc) rc = parse_sizes(j, path, own, c, err);
    if (!rc) rc = parse_rope(j, path, c, err);
    c->d_state = c->head_dim, c->chunk_size = 64, c->conv_width = 4;
    if (!rc && own) rc = parse_kdtrain(kd, path, c, err);
    kd_json_free(j);
    if (!rc) {
        rc = kd_model_config_check(c, err);
        if (rc) kd_error_prefix(err, "%s: ", path);
    }
    return rc;
}
