// model_io.c: model config <-> checkpoint attributes, and loading models from checkpoints.
#include "runtime/model_io.h"

#include <mpi.h>
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
        k += (size_t)snprintf(buf + k, n - k, "%s%s", l ? "," : "", c->mixer[l] == KD_MIXER_MAMBA2 ? "mamba2" : "attn");
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
    memset(&a[n], 0, sizeof a[n]);
    snprintf(a[n].name, sizeof a[n].name, "layers");
    a[n].type = KD_ATTR_STRING;
    kd_model_layout_string(c, a[n].s, sizeof a[n].s);
    n++;
    return n;
}

static const kd_ckpt_attr *find(const kd_ckpt_attr *a, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return &a[i];
    return NULL;
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
    if (c->n_layers < 1 || c->n_layers > KD_MODEL_MAX_LAYERS)
        return kd_fail(err, KD_EINPUT, "%s/model.h5: n_layers %d out of range", dir, c->n_layers);
    const char *p = ly->s;
    for (int l = 0; l < c->n_layers; l++) {
        if (strncmp(p, "mamba2", 6) == 0) c->mixer[l] = KD_MIXER_MAMBA2, p += 6;
        else if (strncmp(p, "attn", 4) == 0) c->mixer[l] = KD_MIXER_ATTN, p += 4;
        else return kd_fail(err, KD_EINPUT, "%s/model.h5: attribute layers='%s' does not list %d mixers", dir, ly->s, c->n_layers);
        if (*p == ',') p++;
    }
    return kd_model_config_check(c, err);
}

int kd_model_load_weights(kd_comm *comm, kd_model *m, const char *dir, kd_error *err) {
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    int cpu = ops->kind == KD_BACKEND_CPU;
    float *host = cpu ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    int rc = kd_ckpt_load(*(MPI_Comm *)kd_comm_mpi(comm), dir, pt, host, NULL, NULL, NULL, err);
    if (!rc && !cpu) ops->upload(kd_model_params(m), host, pt->total * sizeof(float));
    if (!cpu) free(host);
    return rc;
}

int kd_model_load(kd_comm *comm, const char *dir, const kd_ops *ops, int with_grads, kd_model **out,
                  kd_error *err) {
    *out = NULL;
    kd_model_config c;
    int rc = kd_model_config_from_ckpt(dir, &c, err);
    // every rank reads the attributes itself; agree before the collective load
    double worst = kd_comm_max_f64(comm, (double)rc);
    if (worst != 0) return rc ? rc : kd_fail(err, KD_EINPUT, "%s: another rank could not read the model config", dir);
    kd_model *m = NULL;
    if ((rc = kd_model_create(&m, &c, ops, with_grads, err))) return rc;
    if ((rc = kd_model_load_weights(comm, m, dir, err))) {
        kd_model_free(m);
        return rc;
    }
    *out = m;
    return KD_OK;
}

int kd_model_save(kd_comm *comm, kd_model *m, const char *ckpt_root, int64_t step, int stage_index,
                  const char *stage_name, char *out, size_t out_len, kd_error *err) {
    const kd_ops *ops = kd_model_ops(m);
    const kd_param_table *pt = kd_model_table(m);
    kd_ckpt_attr attrs[KD_MODEL_ATTRS];
    int na = kd_model_config_attrs(kd_model_cfg(m), attrs);
    kd_train_state ts;
    memset(&ts, 0, sizeof ts);
    ts.stage_index = stage_index;
    snprintf(ts.stage_name, sizeof ts.stage_name, "%s", stage_name);
    ts.step = step;
    ts.world_size = kd_comm_size(comm);
    snprintf(ts.recipe_hash, sizeof ts.recipe_hash, "0");
    snprintf(ts.model_hash, sizeof ts.model_hash, "0");
    int cpu = ops->kind == KD_BACKEND_CPU;
    float *host = cpu ? kd_model_params(m) : kd_malloc(pt->total * sizeof(float));
    if (!cpu) ops->download(host, kd_model_params(m), pt->total * sizeof(float));
    int rc = kd_ckpt_save(*(MPI_Comm *)kd_comm_mpi(comm), ckpt_root, step, pt, host, NULL, NULL, &ts, attrs, na, out,
                          out_len, err);
    if (!cpu) free(host);
    return rc;
}
