// Forward logits, loss and every parameter gradient of the C model vs an independent
// PyTorch implementation (tests/reference/llama_ref.py, float64) for a small GQA config.
// Tolerance: 1e-4 relative (max |diff| / max |ref| per tensor). The C side is float32:
// its rounding (~1e-7 per op, accumulated over a few layers) stays well inside that.
#include <math.h>
#include <unistd.h>

#include "tests/unit/h5_test_util.h"
#include "tests/unit/test_model_util.h"

int main(void) {
    const char *src = getenv("KD_SOURCE_DIR");
    const char *py = getenv("KD_PYTHON") ? getenv("KD_PYTHON") : "/usr/bin/python3";
    if (!src) src = ".";
    kd_model_config c = tiny_config(3, 0);
    c.vocab_size = 50, c.d_model = 32, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.ffn_dim = 48;
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &c, kd_ops_cpu(), 1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    kd_model_init_random(m, 11, 0.1f);
    enum { B = 3, T = 9 };
    int32_t tokens[B * (T + 1)], ids[B * T], tg[B * T];
    float w[B * T];
    random_tokens(tokens, B * (T + 1), c.vocab_size, 5);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = tokens[b * (T + 1) + t];
            tg[b * T + t] = tokens[b * (T + 1) + t + 1];
            w[b * T + t] = (t == 2) ? 0.0f : 1.0f + 0.25f * (float)(b);
        }
    double loss = model_loss(m, ids, tg, w, B, T, 1);
    const kd_param_table *pt = kd_model_table(m);
    float *params = kd_model_params(m), *grads = kd_model_grads(m);

    char in[256], out[256], cmd[1024];
    snprintf(in, sizeof in, "/tmp/kd_llama_in_%d.h5", (int)getpid());
    snprintf(out, sizeof out, "/tmp/kd_llama_out_%d.h5", (int)getpid());
    hid_t f = H5Fcreate(in, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    h5t_attr_int(g, "vocab_size", c.vocab_size), h5t_attr_int(g, "d_model", c.d_model);
    h5t_attr_int(g, "n_layers", c.n_layers), h5t_attr_int(g, "n_heads", c.n_heads);
    h5t_attr_int(g, "n_kv_heads", c.n_kv_heads), h5t_attr_int(g, "head_dim", c.head_dim);
    h5t_attr_int(g, "ffn_dim", c.ffn_dim), h5t_attr_double(g, "rope_theta", c.rope_theta);
    h5t_attr_double(g, "norm_eps", c.norm_eps), h5t_attr_int(g, "tie_embeddings", c.tie_embeddings);
    H5Gclose(g);
    for (int i = 0; i < pt->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "params/%s", pt->t[i].name);
        hsize_t dims[4];
        for (int k = 0; k < pt->t[i].ndim; k++) dims[k] = (hsize_t)pt->t[i].shape[k];
        h5t_write(f, name, H5T_NATIVE_FLOAT, pt->t[i].ndim, dims, params + pt->t[i].offset);
    }
    hsize_t td[2] = {B, T + 1}, wd[2] = {B, T};
    h5t_write(f, "tokens", H5T_NATIVE_INT32, 2, td, tokens);
    h5t_write(f, "weights", H5T_NATIVE_FLOAT, 2, wd, w);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s/tests/reference/llama_ref.py %s %s", py, src, in, out);
    if (system(cmd) != 0) return fprintf(stderr, "reference failed: %s\n", cmd), 1;

    int ok = 1;
    f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    double *ref;
    h5t_read_f64(f, "loss", &ref);
    printf("loss: C %.9f torch %.9f\n", loss, ref[0]);
    ok &= fabs(loss - ref[0]) <= 1e-5 * fabs(ref[0]);
    free(ref);
    size_t n = h5t_read_f64(f, "logits", &ref);
    double maxrel, r;
    // logits were overwritten by dlogits in the loss head: recompute them
    kd_model_forward(m, ids, NULL, NULL, B, T, &err);
    r = rel_err_f(kd_model_logits(m), ref, n, &maxrel);
    printf("%-4s logits  rel %.2e  maxrel %.2e\n", maxrel <= 1e-4 ? "ok" : "FAIL", r, maxrel);
    ok &= maxrel <= 1e-4;
    free(ref);
    for (int i = 0; i < pt->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "grads/%s", pt->t[i].name);
        n = h5t_read_f64(f, name, &ref);
        if (n != pt->t[i].numel) return fprintf(stderr, "%s: size %zu != %zu\n", name, n, pt->t[i].numel), 1;
        r = rel_err_f(grads + pt->t[i].offset, ref, n, &maxrel);
        printf("%-4s %-44s rel %.2e  maxrel %.2e\n", maxrel <= 1e-4 ? "ok" : "FAIL", name, r, maxrel);
        ok &= maxrel <= 1e-4;
        free(ref);
    }
    H5Fclose(f);
    unlink(in), unlink(out);
    kd_model_free(m);
    printf(ok ? "C model matches PyTorch\n" : "MISMATCH\n");
    return ok ? 0 : 1;
}
