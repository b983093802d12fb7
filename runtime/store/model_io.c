// model_io.c: model config <-> checkpoint attributes, and loading models from checkpoints.
#include "runtime/store/model_io.h"

#include <stdlib.h>
#include <string.h>

static void put_int(kd_ckpt_attr *a, const char *name, int64_t v) {
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = KD_ATTR_INT;
    a->i = v;
}

static void put_float(kd_ckpt_attr *a, const char *name, double v) {
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = KD_ATTR_FLOAT;
    a->f = v;
}

void kd_model_layout_string(const kd_model_config *c, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < c->n_layers && k + 8 < n; l++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", l ? "," : "", kd_mixer_name(c->mixer[l]));
}

int kd_model_config_attrs(const kd_model_config *c, kd_ckpt_attr *a) {
    int n = 0;
    put_int(&a[n++], "vocab_size", c->vocab_size);
    put_int(&a[n++], "d_model", c->d_model);
    put_int(&a[n++], "n_layers", c->n_layers);
    put_int(&a[n++], "n_heads", c->n_heads);
    put_int(&a[n++], "n_kv_heads", c->n_kv_heads);
    put_int(&a[n++], "head_dim", c->head_dim);
    put_int(&a[n++], "ffn_dim", c->ffn_dim);
    put_float(&a[n++], "rope_theta", c->rope_theta);
    put_float(&a[n++], "norm_eps", c->norm_eps);
    put_int(&a[n++], "tie_embeddings", c->tie_embeddings);
    put_int(&a[n++], "d_state", c->d_state);
    put_int(&a[n++], "chunk_size", c->chunk_size);
    put_int(&a[n++], "conv_width", c->conv_width);
    if (c->rope.type != KD_ROPE_DEFAULT || c->max_pos > 0) {
        put_int(&a[n++], "rope_type", c->rope.type);
        put_float(&a[n++], "rope_factor", c->rope.factor);
        put_float(&a[n++], "rope_low_freq_factor", c->rope.low_freq_factor);
        put_float(&a[n++], "rope_high_freq_factor", c->rope.high_freq_factor);
        put_int(&a[n++], "rope_original_max_position_embeddings", c->rope.original_max_pos);
        put_int(&a[n++], "max_position_embeddings", c->max_pos);
    }
    memset(&a[n], 0, sizeof a[n]);
    snprintf(a[n].name, sizeof a[n].name, "layers");
    a[n].type = KD_ATTR_STRING;
    kd_model_layout_string(c, a[n].s, sizeof a[n].s);
    n++;
    return n;
}

static void put_str(kd_ckpt_attr *a, const char *name, const char *v) {
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = KD_ATTR_STRING;
    snprintf(a->s, sizeof a->s, "%s", v);
}

int kd_model_attrs(const kd_model *m, kd_ckpt_attr *a) {
    int n = kd_model_config_attrs(kd_model_cfg(m), a);
    if (kd_model_tokenizer_fp(m)[0]) {
        put_str(&a[n++], "tokenizer", kd_model_tokenizer(m));
        put_str(&a[n++], "tokenizer_fingerprint", kd_model_tokenizer_fp(m));
    }
    return n;
}

static const kd_ckpt_attr *find(const kd_ckpt_attr *a, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return &a[i];
    return NULL;
}

// The optional RoPE scaling attributes (absent: plain RoPE, max_position_embeddings 0).
static int rope_from_attrs(const char *dir, const kd_ckpt_attr *a, int n, kd_model_config *c, kd_error *err) {
    const kd_ckpt_attr *ty = find(a, n, "rope_type");
    if (!ty) return KD_OK;
    const char *fl[] = {"rope_factor", "rope_low_freq_factor", "rope_high_freq_factor"};
    float *fd[] = {&c->rope.factor, &c->rope.low_freq_factor, &c->rope.high_freq_factor};
    const kd_ckpt_attr *om = find(a, n, "rope_original_max_position_embeddings"),
                       *mp = find(a, n, "max_position_embeddings");
    if (ty->type != KD_ATTR_INT || ty->i < 0 || ty->i >= KD_ROPE_TYPES || !om || om->type != KD_ATTR_INT || !mp ||
        mp->type != KD_ATTR_INT)
        return kd_fail(err, KD_EINPUT, "%s/model.h5: attributes rope_type, rope_original_max_position_embeddings "
                       "and max_position_embeddings: expected integers (rope_type < %d)", dir, KD_ROPE_TYPES);
    for (int i = 0; i < 3; i++) {
        const kd_ckpt_attr *x = find(a, n, fl[i]);
        if (!x || x->type != KD_ATTR_FLOAT)
            return kd_fail(err, KD_EINPUT, "%s/model.h5: model attribute '%s' (float) is missing", dir, fl[i]);
        *fd[i] = (float)x->f;
    }
    c->rope.type = (kd_rope_type)ty->i;
    c->rope.original_max_pos = (int)om->i, c->max_pos = (int)mp->i;
    return KD_OK;
}

int kd_model_config_from_ckpt(const char *dir, kd_model_config *c, kd_error *err) {
    kd_ckpt_attr a[32];
    int n = 0;
    int rc = kd_ckpt_read_attrs(dir, a, 32, &n, err);
    if (rc) return rc;
    memset(c, 0, sizeof *c);
    struct { const char *name; int *dst; } ints[] = {
        {"vocab_size", &c->vocab_size}, {"d_model", &c->d_model},     {"n_layers", &c->n_layers},
        {"n_heads", &c->n_heads},       {"n_kv_heads", &c->n_kv_heads}, {"head_dim", &c->head_dim},
        {"ffn_dim", &c->ffn_dim},       {"tie_embeddings", &c->tie_embeddings}, {"d_state", &c->d_state},
        {"chunk_size", &c->chunk_size}, {"conv_width", &c->conv_width}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const kd_ckpt_attr *x = find(a, n, ints[i].name);
        if (!x || x->type != KD_ATTR_INT)
            return kd_fail(err, KD_EINPUT, "%s/model.h5: model attribute '%s' (integer) is missing: not a kdtrain "
                           "model checkpoint", dir, ints[i].name);
        *ints[i].dst = (int)x->i;
    }
    const kd_ckpt_attr *th = find(a, n, "rope_theta"), *ep = find(a, n, "norm_eps"), *ly = find(a, n, "layers");
    if (!th || !ep || !ly || ly->type != KD_ATTR_STRING)
        return kd_fail(err, KD_EINPUT, "%s/model.h5: model attributes rope_theta, norm_eps and layers are required", dir);
    c->rope_theta = (float)th->f, c->norm_eps = (float)ep->f;
    if ((rc = rope_from_attrs(dir, a, n, c, err))) return rc;
    if (c->n_layers < 1 || c->n_layers > KD_MODEL_MAX_LAYERS)
        return kd_fail(err, KD_EINPUT, "%s/model.h5: n_layers %d out of range", dir, c->n_layers);
    const char *p = ly->s;
    for (int l = 0; l < c->n_layers; l++) {
        size_t len = kd_mixer_parse(p, &c->mixer[l]);
        if (len) p += len;
        else return kd_fail(err, KD_EINPUT, "%s/model.h5: attribute layers='%s' does not list %d mixers", dir, ly->s, c->n_layers);
        if (*p == ',') p++;
    }
    return kd_model_config_check(c, err);
}

int kd_model_load_weights(kd_comm *comm, kd_model *m, const char *dir, kd_error *err) {
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    int direct = ops->mem->host_visible; // host memory: read and written in place
    float *host = direct ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    int rc = kd_ckpt_load(comm, dir, pt, host, NULL, NULL, NULL, err);
    if (!rc && !direct) ops->mem->upload(ops->ctx, kd_model_params(m), host, pt->total * sizeof(float));
    if (!direct) free(host);
    return rc;
}

int kd_model_load(kd_comm *comm, const char *dir, const kd_ops *ops, int with_grads, kd_model **out,
                  kd_error *err) {
    *out = NULL;
    kd_model_config c;
    int rc = kd_model_config_from_ckpt(dir, &c, err);
    // every rank reads the attributes itself; agree before the collective load
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    kd_model *m = NULL;
    if ((rc = kd_model_create(&m, &c, ops, with_grads, err))) return rc;
    if ((rc = kd_model_load_weights(comm, m, dir, err))) {
        kd_model_free(m);
        return rc;
    }
    char spec[KD_CKPT_STR_MAX], fp[65];
    if (kd_ckpt_tokenizer(dir, spec, sizeof spec, fp, err) == KD_OK) kd_model_set_tokenizer(m, spec, fp);
    *out = m;
    return KD_OK;
}

int kd_model_save(kd_comm *comm, kd_model *m, const char *ckpt_root, int64_t step, int stage_index,
                  const char *stage_name, char *out, size_t out_len, kd_error *err) {
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    int na = kd_model_attrs(m, attrs);
    kd_train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.stage_index = stage_index;
    snprintf(ts.stage_name, sizeof ts.stage_name, "%s", stage_name);
    ts.step = step;
    ts.world_size = kd_comm_size(comm);
    snprintf(ts.recipe_hash, sizeof ts.recipe_hash, "0");
    snprintf(ts.model_hash, sizeof ts.model_hash, "0");
    int direct = ops->mem->host_visible; // host memory: read and written in place
    float *host = direct ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    if (!direct) ops->mem->download(ops->ctx, host, kd_model_params(m), pt->total * sizeof(float));
    int rc = kd_ckpt_save(comm, ckpt_root, step, pt, host, NULL, NULL, &ts, attrs, na, out,
                          out_len, err);
    if (!direct) free(host);
    return rc;
}

int kd_ckpt_tokenizer(const char *dir, char *spec, size_t n, char fp[65], kd_error *err) {
    kd_ckpt_attr a[32];
    int na = 0;
    spec[0] = fp[0] = '\0';
    int rc = kd_ckpt_read_attrs(dir, a, 32, &na, err);
    if (rc) return rc;
    const kd_ckpt_attr *s = find(a, na, "tokenizer"), *f = find(a, na, "tokenizer_fingerprint");
    if (!f || f->type != KD_ATTR_STRING || strlen(f->s) != 64) return KD_OK; // not recorded
    snprintf(fp, 65, "%s", f->s);
    if (s && s->type == KD_ATTR_STRING) snprintf(spec, n, "%s", s->s);
    return KD_OK;
}
