// hf.c: Hugging Face Llama directory import/export (hf.h).
#include "runtime/hf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/json.h"
#include "runtime/model_io.h"
#include "runtime/safetensors.h"

// ----------------------------------------------------------------------------- names

// kdtrain name -> HF name. Mamba-2 mixers are stored under ".mamba." (MambaInLlama's
// attribute name), attention under ".self_attn.".
static void to_hf(const kd_model_config *c, const char *ours, char *hf, size_t n) {
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

// ----------------------------------------------------------------------------- config

static char *slurp(const char *path, size_t *len, kd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kd_fail(err, KD_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (64 << 20)) {
        fclose(f);
        kd_fail(err, KD_EINPUT, "%s: not a config file (size %ld)", path, n);
        return NULL;
    }
    char *buf = kd_malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    *len = got;
    return buf;
}

static int get_int(const kd_json *cfg, const char *key, int def, int required, const char *path, int *out,
                   kd_error *err) {
    const kd_json *v = kd_json_get(cfg, key);
    if (!v || v->type == KD_JSON_NULL) {
        if (required) return kd_fail(err, KD_EINPUT, "%s: key '%s' (integer) is required", path, key);
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

int kd_hf_config(const char *dir, kd_model_config *c, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = 0;
    char *buf = slurp(path, &len, err);
    if (!buf) return KD_EINPUT;
    kd_json *j = NULL;
    int rc = kd_json_parse(buf, len, path, &j, err);
    free(buf);
    if (rc) return rc;
    memset(c, 0, sizeof *c);
    if (j->type != KD_JSON_OBJECT) rc = kd_fail(err, KD_EINPUT, "%s: expected a JSON object", path);
    if (!rc) rc = get_int(j, "vocab_size", 0, 1, path, &c->vocab_size, err);
    if (!rc) rc = get_int(j, "hidden_size", 0, 1, path, &c->d_model, err);
    if (!rc) rc = get_int(j, "num_hidden_layers", 0, 1, path, &c->n_layers, err);
    if (!rc) rc = get_int(j, "num_attention_heads", 0, 1, path, &c->n_heads, err);
    if (!rc) rc = get_int(j, "num_key_value_heads", c->n_heads, 0, path, &c->n_kv_heads, err);
    if (!rc) rc = get_int(j, "head_dim", c->n_heads ? c->d_model / c->n_heads : 0, 0, path, &c->head_dim, err);
    if (!rc) rc = get_int(j, "intermediate_size", 0, 1, path, &c->ffn_dim, err);
    if (!rc) {
        c->rope_theta = (float)get_num(j, "rope_theta", 10000.0);
        c->norm_eps = (float)get_num(j, "rms_norm_eps", 1e-6);
        const kd_json *tie = kd_json_get(j, "tie_word_embeddings");
        c->tie_embeddings = tie && tie->type == KD_JSON_BOOL && tie->boolean;
        const kd_json *act = kd_json_get(j, "hidden_act");
        const kd_json *rs = kd_json_get(j, "rope_scaling");
        const kd_json *ab = kd_json_get(j, "attention_bias");
        if (act && (act->type != KD_JSON_STRING || strcmp(act->str, "silu") != 0))
            rc = kd_fail(err, KD_EINPUT, "%s: hidden_act: only \"silu\" (SwiGLU) is supported", path);
        else if (rs && rs->type != KD_JSON_NULL)
            rc = kd_fail(err, KD_EINPUT, "%s: rope_scaling: not supported (only plain RoPE with rope_theta)", path);
        else if (ab && ab->type == KD_JSON_BOOL && ab->boolean)
            rc = kd_fail(err, KD_EINPUT, "%s: attention_bias: true is not supported", path);
    }
    c->d_state = c->head_dim, c->chunk_size = 64, c->conv_width = 4;
    const kd_json *kd = kd_json_get(j, "kdtrain");  // hybrid layout of an exported student
    if (!rc && kd && kd->type == KD_JSON_OBJECT) {
        int v = 0;
        if (!get_int(kd, "d_state", c->d_state, 0, path, &v, err)) c->d_state = v;
        if (!get_int(kd, "chunk_size", c->chunk_size, 0, path, &v, err)) c->chunk_size = v;
        if (!get_int(kd, "conv_width", c->conv_width, 0, path, &v, err)) c->conv_width = v;
        const kd_json *ly = kd_json_get(kd, "layers");
        if (ly && ly->type == KD_JSON_ARRAY) {
            if ((int)ly->n != c->n_layers)
                rc = kd_fail(err, KD_EINPUT, "%s: kdtrain.layers has %zu entries, num_hidden_layers is %d", path, ly->n,
                             c->n_layers);
            for (size_t i = 0; !rc && i < ly->n && i < KD_MODEL_MAX_LAYERS; i++) {
                const kd_json *e = kd_json_at(ly, i);
                if (e->type == KD_JSON_STRING && strcmp(e->str, "mamba2") == 0) c->mixer[i] = KD_MIXER_MAMBA2;
                else if (e->type == KD_JSON_STRING && strcmp(e->str, "attn") == 0) c->mixer[i] = KD_MIXER_ATTN;
                else rc = kd_fail(err, KD_EINPUT, "%s: kdtrain.layers[%zu]: expected \"attn\" or \"mamba2\"", path, i);
            }
        }
    }
    kd_json_free(j);
    if (!rc) {
        rc = kd_model_config_check(c, err);
        if (rc) kd_error_prefix(err, "%s: ", path);
    }
    return rc;
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
        to_hf(&c, p->name, name, sizeof name);
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
    if (!rc) ops->upload(kd_model_params(m), host, pt->total * sizeof(float));
    free(host);
    if (rc) {
        kd_model_free(m);
        return rc;
    }
    *out = m;
    return KD_OK;
}

// ----------------------------------------------------------------------------- export

static int write_config(const kd_model_config *c, const char *dir, kd_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s: out of memory", path);
    fprintf(f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n");
    fprintf(f, "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n", c->vocab_size,
            c->d_model, c->n_layers);
    fprintf(f, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->n_heads,
            c->n_kv_heads, c->head_dim);
    fprintf(f, "  \"intermediate_size\": %d,\n  \"hidden_act\": \"silu\",\n  \"rope_theta\": %.9g,\n", c->ffn_dim,
            c->rope_theta);
    fprintf(f, "  \"rms_norm_eps\": %.9g,\n  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"float32\",\n",
            c->norm_eps, c->tie_embeddings ? "true" : "false");
    fprintf(f, "  \"kdtrain\": {\"d_state\": %d, \"chunk_size\": %d, \"conv_width\": %d, \"layers\": [", c->d_state,
            c->chunk_size, c->conv_width);
    for (int l = 0; l < c->n_layers; l++)
        fprintf(f, "%s\"%s\"", l ? ", " : "", c->mixer[l] == KD_MIXER_MAMBA2 ? "mamba2" : "attn");
    fprintf(f, "]}\n}\n");
    fclose(f);
    int rc = kd_write_file_atomic(path, text, len, err);
    free(text);
    return rc;
}

int kd_hf_export(kd_model *m, const char *dir, kd_error *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", dir, strerror(errno));
    const kd_model_config *c = kd_model_cfg(m);
    const kd_param_table *pt = kd_model_table(m);
    const kd_ops *ops = kd_model_ops(m);
    float *host = kd_malloc(pt->total * sizeof(float));
    ops->download(host, kd_model_params(m), pt->total * sizeof(float));
    kd_safetensors_entry *e = kd_calloc((size_t)pt->n, sizeof *e);
    char (*names)[256] = kd_calloc((size_t)pt->n, 256);
    int64_t (*shapes)[4] = kd_calloc((size_t)pt->n, sizeof *shapes);
    for (int i = 0; i < pt->n; i++) {
        to_hf(c, pt->t[i].name, names[i], 256);
        for (int d = 0; d < pt->t[i].ndim; d++) shapes[i][d] = pt->t[i].shape[d];
        e[i] = (kd_safetensors_entry){.name = names[i], .ndim = pt->t[i].ndim, .shape = shapes[i],
                                      .data = host + pt->t[i].offset};
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    static const char producer[] = "kdtrain " KD_VERSION;
    const char *meta[] = {"format", "pt", "producer", producer};
    int rc = kd_safetensors_write_f32(path, e, (size_t)pt->n, meta, 2, err);
    if (!rc) rc = write_config(c, dir, err);
    free(e), free(names), free(shapes), free(host);
    return rc;
}

int kd_export_main(int argc, char **argv, kd_comm *comm) {
    const char *ckpt = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: kdtrain export CKPT_DIR --out DIR\n"
                   "  Write a checkpoint's model as a Hugging Face directory: config.json +\n"
                   "  model.safetensors (fp32). Mamba-2 layers are stored under model.layers.N.mamba.*\n"
                   "  and the layer layout in config.json's \"kdtrain\" block.\n");
            return KD_OK;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && !ckpt) {
            ckpt = argv[i];
        } else {
            fprintf(stderr, "kdtrain: error: export: unexpected argument '%s' (see kdtrain export --help)\n", argv[i]);
            return KD_EINPUT;
        }
    }
    if (!ckpt || !out) {
        fprintf(stderr, "kdtrain: error: export: need CKPT_DIR and --out DIR (see kdtrain export --help)\n");
        return KD_EINPUT;
    }
    kd_error err = {0};
    kd_model *m = NULL;
    char why[512];
    int rc = KD_OK;
    if (!kd_ckpt_verify(ckpt, why, sizeof why)) rc = kd_fail(&err, KD_EINPUT, "%s", why);
    if (!rc) rc = kd_model_load(comm, ckpt, kd_ops_cpu(), 0, &m, &err);
    if (!rc) rc = kd_hf_export(m, out, &err);
    kd_model_free(m);
    if (rc) {
        fprintf(stderr, "kdtrain: error: %s\n", err.msg);
        return rc;
    }
    printf("kdtrain: exported %s to %s\n", ckpt, out);
    return KD_OK;
}
