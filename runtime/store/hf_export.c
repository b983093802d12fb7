// hf_export.c: a model as a Hugging Face directory a user can run (hf.h, docs/formats.md#
// hf-export): config.json with rope_scaling and the special token ids, model.safetensors,
// generation_config.json (the stop ids), tokenizer files copied from a tokenizer directory,
// and for hybrids mamba_config.json in MambaInLlama's MambaConfig layout. A hybrid's
// config.json names a model_type no stock transformers class knows and its safetensors
// carry format "kdtrain-hybrid", so neither AutoModelForCausalLM nor LlamaForCausalLM can
// load it as a plain Llama with its Mamba layers dropped; what loads it is listed in
// docs/hybrid.md.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/base/fs.h"
#include "runtime/store/hf.h"
#include "runtime/store/hf_internal.h"
#include "runtime/store/safetensors.h"

// ----------------------------------------------------------------------------- token ids

void kd_hf_ids_init(kd_hf_ids *ids) {
    memset(ids, 0, sizeof *ids);
    ids->bos = ids->pad = -1;
}

static int json_id(const kd_json *v, int *out) {
    if (!v || v->type != KD_JSON_NUMBER || !v->is_int || v->integer < 0 || v->integer > (1 << 30))
        return 0;
    *out = (int)v->integer;
    return 1;
}

// bos_token_id / eos_token_id (an id or a list) / pad_token_id of a config object.
static int ids_from_config(const kd_json *j, const char *path, kd_hf_ids *ids, kd_error *err) {
    const kd_json *e = kd_json_get(j, "eos_token_id");
    if (ids->bos < 0) json_id(kd_json_get(j, "bos_token_id"), &ids->bos);
    if (ids->pad < 0) json_id(kd_json_get(j, "pad_token_id"), &ids->pad);
    if (ids->n_eos || !e || e->type == KD_JSON_NULL) return KD_OK;
    size_t n = e->type == KD_JSON_ARRAY ? e->n : 1;
    if (n > KD_HF_MAX_EOS)
        return kd_fail(err, KD_EINPUT, "%s: eos_token_id: at most %d stop ids, found %zu", path,
                       KD_HF_MAX_EOS, n);
    for (size_t i = 0; i < n; i++)
        if (!json_id(e->type == KD_JSON_ARRAY ? &e->items[i] : e, &ids->eos[i]))
            return kd_fail(err, KD_EINPUT, "%s: eos_token_id: expected an id or a list of ids",
                           path);
    ids->n_eos = (int)n;
    return KD_OK;
}

// The id of special token `text` in tokenizer_config.json's added_tokens_decoder or
// tokenizer.json's added_tokens; -1 when neither has it.
static int token_id(const kd_json *tc, const kd_json *tj, const char *text) {
    const kd_json *dec = kd_json_get(tc, "added_tokens_decoder");
    for (size_t i = 0; dec && dec->type == KD_JSON_OBJECT && i < dec->n; i++) {
        const kd_json *c = kd_json_get(&dec->items[i], "content");
        if (c && c->type == KD_JSON_STRING && strcmp(c->str, text) == 0)
            return atoi(dec->items[i].key);
    }
    const kd_json *add = tj ? kd_json_get(tj, "added_tokens") : NULL;
    for (size_t i = 0; add && add->type == KD_JSON_ARRAY && i < add->n; i++) {
        const kd_json *c = kd_json_get(&add->items[i], "content");
        int id = -1;
        if (c && c->type == KD_JSON_STRING && strcmp(c->str, text) == 0 &&
            json_id(kd_json_get(&add->items[i], "id"), &id))
            return id;
    }
    return -1;
}

// bos_token / eos_token / pad_token of tokenizer_config.json ("<s>" or {"content": "<s>"}).
static void ids_from_tokenizer(const kd_json *tc, const kd_json *tj, kd_hf_ids *ids) {
    const char *keys[3] = {"bos_token", "eos_token", "pad_token"};
    for (int k = 0; k < 3; k++) {
        const kd_json *v = kd_json_get(tc, keys[k]);
        if (v && v->type == KD_JSON_OBJECT) v = kd_json_get(v, "content");
        int id = v && v->type == KD_JSON_STRING ? token_id(tc, tj, v->str) : -1;
        if (id < 0) continue;
        if (k == 0 && ids->bos < 0) ids->bos = id;
        if (k == 1 && !ids->n_eos) ids->eos[ids->n_eos++] = id;
        if (k == 2 && ids->pad < 0) ids->pad = id;
    }
}

// Parses DIR/name into *out when the file exists (NULL when it does not).
static int parse_optional(const char *dir, const char *name, kd_json **out, kd_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *out = NULL;
    if (access(path, F_OK) != 0) return KD_OK;
    return kd_hf_parse_file(path, out, err);
}

int kd_hf_read_ids(const char *dir, kd_hf_ids *ids, kd_error *err) {
    const char *cfgs[2] = {"generation_config.json", "config.json"};
    kd_json *j = NULL, *tj = NULL;
    int rc = KD_OK;
    for (int i = 0; i < 2 && !rc; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, cfgs[i]);
        rc = parse_optional(dir, cfgs[i], &j, err);
        if (!rc && j) rc = ids_from_config(j, path, ids, err);
        kd_json_free(j);
        j = NULL;
    }
    if (!rc) rc = parse_optional(dir, "tokenizer_config.json", &j, err);
    if (!rc && j && (ids->bos < 0 || !ids->n_eos || ids->pad < 0)) {
        rc = parse_optional(dir, "tokenizer.json", &tj, err);
        if (!rc) ids_from_tokenizer(j, tj, ids);
    }
    kd_json_free(j);
    kd_json_free(tj);
    return rc;
}

// ----------------------------------------------------------------------------- tokenizer files

#define N_TOK_FILES 4
static const char *const k_tok_files[N_TOK_FILES] = {"tokenizer.json", "tokenizer_config.json",
                                                     "special_tokens_map.json", "tokenizer.model"};

typedef struct {
    char *data[N_TOK_FILES];
    size_t len[N_TOK_FILES];
} tok_files;

// Reads the tokenizer files present in dir (at least one must be).
static int read_tok_files(const char *dir, tok_files *t, kd_error *err) {
    memset(t, 0, sizeof *t);
    int found = 0;
    for (int i = 0; i < N_TOK_FILES; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, k_tok_files[i]);
        if (access(path, F_OK) != 0) continue;
        int e = 0;
        if (kd_read_file(path, (size_t)1 << 30, &t->data[i], &t->len[i], &e) != KD_READ_OK)
            return kd_fail(err, KD_EINPUT, "%s: cannot read: %s", path, strerror(e));
        found++;
    }
    if (!found)
        return kd_fail(err, KD_EINPUT,
                       "--tokenizer %s: no tokenizer.json, tokenizer_config.json, "
                       "special_tokens_map.json or tokenizer.model there",
                       dir);
    return KD_OK;
}

static int write_tok_files(const tok_files *t, const char *dir, kd_error *err) {
    int rc = KD_OK;
    for (int i = 0; i < N_TOK_FILES && !rc; i++) {
        if (!t->data[i]) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, k_tok_files[i]);
        rc = kd_write_file_atomic(path, t->data[i], t->len[i], err);
    }
    return rc;
}

static void free_tok_files(tok_files *t) {
    for (int i = 0; i < N_TOK_FILES; i++) free(t->data[i]);
}

// ----------------------------------------------------------------------------- JSON files

// A float as JSON that Python reads back as a float ("8.0", not "8").
static void put_float(FILE *f, double v) {
    char b[64];
    snprintf(b, sizeof b, "%.9g", v);
    fprintf(f, "%s%s", b, strpbrk(b, ".eEn") ? "" : ".0");
}

static void put_ids(FILE *f, const kd_hf_ids *ids, const char *indent) {
    if (ids->bos >= 0) fprintf(f, "%s\"bos_token_id\": %d,\n", indent, ids->bos);
    if (ids->n_eos == 1) fprintf(f, "%s\"eos_token_id\": %d,\n", indent, ids->eos[0]);
    if (ids->n_eos > 1) { // several stop ids: a list (transformers stops at any)
        fprintf(f, "%s\"eos_token_id\": [", indent);
        for (int i = 0; i < ids->n_eos; i++) fprintf(f, "%s%d", i ? ", " : "", ids->eos[i]);
        fprintf(f, "],\n");
    }
    if (ids->pad >= 0) fprintf(f, "%s\"pad_token_id\": %d,\n", indent, ids->pad);
}

static void put_rope(FILE *f, const kd_model_config *c) {
    const kd_rope_scaling *r = &c->rope;
    if (c->max_pos > 0) fprintf(f, "  \"max_position_embeddings\": %d,\n", c->max_pos);
    if (r->type == KD_ROPE_DEFAULT) {
        fprintf(f, "  \"rope_scaling\": null,\n");
        return;
    }
    fprintf(f,
            "  \"rope_scaling\": {\"rope_type\": \"%s\", \"factor\": ", kd_rope_type_name(r->type));
    put_float(f, r->factor);
    if (r->type == KD_ROPE_LLAMA3) {
        fprintf(f, ", \"low_freq_factor\": ");
        put_float(f, r->low_freq_factor);
        fprintf(f, ", \"high_freq_factor\": ");
        put_float(f, r->high_freq_factor);
        fprintf(f, ", \"original_max_position_embeddings\": %d", r->original_max_pos);
    }
    fprintf(f, "},\n");
}

// Closes the memory stream f (which sets *text and *len) and writes it to dir/name.
static int finish(FILE *f, char **text, size_t *len, const char *dir, const char *name,
                  kd_error *err) {
    fclose(f);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = kd_write_file_atomic(path, *text, *len, err);
    free(*text);
    return rc;
}

static int write_config(const kd_model_config *c, const kd_hf_export_opts *o, const char *dir,
                        kd_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s/config.json: out of memory", dir);
    int hybrid = kd_model_n_ssm(c) > 0;
    fprintf(f, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n",
            hybrid ? KD_HF_HYBRID_ARCH : "LlamaForCausalLM", hybrid ? KD_HF_HYBRID_TYPE : "llama");
    if (hybrid && o->base) {
        fprintf(f, "  \"_name_or_path\": ");
        kd_json_write_string(f, o->base);
        fprintf(f, ",\n");
    }
    fprintf(f, "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n",
            c->vocab_size, c->d_model, c->n_layers);
    fprintf(f,
            "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n",
            c->n_heads, c->n_kv_heads, c->head_dim);
    fprintf(f, "  \"intermediate_size\": %d,\n  \"hidden_act\": \"silu\",\n  \"rope_theta\": ",
            c->ffn_dim);
    put_float(f, c->rope_theta);
    fprintf(f, ",\n");
    put_rope(f, c);
    put_ids(f, &o->ids, "  ");
    fprintf(f,
            "  \"rms_norm_eps\": %.9g,\n  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": "
            "\"float32\",\n",
            c->norm_eps, c->tie_embeddings ? "true" : "false");
    fprintf(
        f, "  \"kdtrain\": {\"d_state\": %d, \"chunk_size\": %d, \"conv_width\": %d, \"layers\": [",
        c->d_state, c->chunk_size, c->conv_width);
    for (int l = 0; l < c->n_layers; l++)
        fprintf(f, "%s\"%s\"", l ? ", " : "", kd_mixer_name(c->mixer[l]));
    fprintf(f, "]}\n}\n");
    return finish(f, &text, &len, dir, "config.json", err);
}

static int write_generation_config(const kd_hf_ids *ids, const char *dir, kd_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s/generation_config.json: out of memory", dir);
    fprintf(f, "{\n");
    put_ids(f, ids, "  ");
    fprintf(f, "  \"_from_model_config\": false\n}\n");
    return finish(f, &text, &len, dir, "generation_config.json", err);
}

// MambaInLlama's MambaConfig (mamba2/hybrid_mamba_config.py): exactly its fields, since it
// is built as MambaConfig(**json). ssm_cfg holds the Mamba2 arguments kdtrain's layout
// fixes (docs/mamba2.md): one B/C group per head, conv before the GQA repeat, gated RMSNorm
// after the gate, per-head D, no in_proj bias, a conv bias.
static int write_mamba_config(const kd_model_config *c, const char *dir, kd_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return kd_fail(err, KD_ERUNTIME, "%s/mamba_config.json: out of memory", dir);
    fprintf(f, "{\n  \"d_model\": %d,\n", c->d_model);
    fprintf(f,
            "  \"ssm_cfg\": {\"expand\": 1, \"ngroups\": %d, \"d_state\": %d, \"d_conv\": %d, "
            "\"chunk_size\": %d, \"repeat_kv_before_conv\": false, \"rmsnorm\": true, "
            "\"norm_before_gate\": false, \"D_has_hdim\": false, \"bias\": false, \"conv_bias\": "
            "true},\n",
            c->n_heads, c->d_state, c->conv_width, c->chunk_size);
    fprintf(f, "  \"rms_norm_eps\": %.9g,\n  \"vocab_size\": %d,\n", c->norm_eps, c->vocab_size);
    fprintf(f, "  \"d_inner\": %d,\n  \"d_xb\": %d,\n", c->n_heads * c->head_dim,
            c->n_kv_heads * c->head_dim);
    fprintf(f, "  \"intermediate_size\": %d,\n  \"hidden_act\": \"silu\",\n  \"n_layer\": %d,\n",
            c->ffn_dim, c->n_layers);
    fprintf(f, "  \"attn_layers\": [");
    for (int l = 0, k = 0; l < c->n_layers; l++)
        if (c->mixer[l] == KD_MIXER_ATTN) fprintf(f, "%s%d", k++ ? ", " : "", l);
    fprintf(f, "]\n}\n");
    return finish(f, &text, &len, dir, "mamba_config.json", err);
}

// ----------------------------------------------------------------------------- export

// model.safetensors: every tensor under its HF name. A hybrid with tied embeddings also
// stores lm_head.weight (MambaInLlama loads its state dict strictly, and a tied PyTorch
// model lists both names).
static int write_weights(kd_model *m, const char *dir, kd_error *err) {
    const kd_model_config *c = kd_model_cfg(m);
    const kd_param_table *pt = kd_model_table(m);
    const kd_ops *ops = kd_model_ops(m);
    int hybrid = kd_model_n_ssm(c) > 0, extra = hybrid && c->tie_embeddings, n = pt->n;
    float *host = kd_malloc(pt->total * sizeof(float));
    ops->mem->download(ops->ctx, host, kd_model_params(m), pt->total * sizeof(float));
    kd_safetensors_entry *e = kd_calloc((size_t)n + 1, sizeof *e);
    char(*names)[256] = kd_calloc((size_t)n + 1, 256);
    int64_t(*shapes)[4] = kd_calloc((size_t)n + 1, sizeof *shapes);
    for (int i = 0; i < n; i++) {
        kd_hf_name(c, pt->t[i].name, names[i], 256);
        for (int d = 0; d < pt->t[i].ndim; d++) shapes[i][d] = pt->t[i].shape[d];
        e[i] = (kd_safetensors_entry){.name = names[i],
                                      .ndim = pt->t[i].ndim,
                                      .shape = shapes[i],
                                      .data = host + pt->t[i].offset};
    }
    if (extra) { // embed_tokens is the table's first tensor
        snprintf(names[n], 256, "lm_head.weight");
        e[n] = e[0], e[n].name = names[n];
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    static const char producer[] = "kdtrain " KD_VERSION;
    const char *meta[] = {"format", hybrid ? "kdtrain-hybrid" : "pt", "producer", producer};
    int rc = kd_safetensors_write_f32(path, e, (size_t)(n + extra), meta, 2, err);
    free(e), free(names), free(shapes), free(host);
    return rc;
}

int kd_hf_export(kd_model *m, const char *dir, const kd_hf_export_opts *o, kd_error *err) {
    kd_hf_export_opts none = {0};
    if (!o) kd_hf_ids_init(&none.ids), o = &none;
    const kd_model_config *c = kd_model_cfg(m);
    tok_files tok = {0};
    int rc = o->tokenizer_dir ? read_tok_files(o->tokenizer_dir, &tok, err) : KD_OK;
    for (int i = 0; !rc && i < o->ids.n_eos; i++)
        if (o->ids.eos[i] >= c->vocab_size)
            rc = kd_fail(err, KD_EINPUT, "eos id %d is outside the model's vocab (%d)",
                         o->ids.eos[i], c->vocab_size);
    if (!rc && (o->ids.bos >= c->vocab_size || o->ids.pad >= c->vocab_size))
        rc = kd_fail(err, KD_EINPUT, "bos id %d / pad id %d: outside the model's vocab (%d)",
                     o->ids.bos, o->ids.pad, c->vocab_size);
    if (!rc && mkdir(dir, 0755) != 0 && errno != EEXIST)
        rc = kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", dir, strerror(errno));
    if (!rc) rc = write_weights(m, dir, err);
    if (!rc) rc = write_config(c, o, dir, err);
    if (!rc) rc = write_generation_config(&o->ids, dir, err);
    if (!rc && kd_model_n_ssm(c) > 0) rc = write_mamba_config(c, dir, err);
    if (!rc && o->tokenizer_dir) rc = write_tok_files(&tok, dir, err);
    free_tok_files(&tok);
    return rc;
}
