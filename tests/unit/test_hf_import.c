// Hugging Face import/export: a tiny Llama written in the HF layout by an independent
// script (F32 and BF16 tensors, HF names) loads with every tensor equal bit for bit to the
// script's values under kdtrain's names; exporting it and importing the export gives the
// same weights again; bad config.json values give one-line errors.
#include <unistd.h>

#include "runtime/store/hf.h"
#include "tests/unit/h5_test_util.h"
#include "tests/unit/test_model_util.h"

static int same_params(kd_model *m, hid_t expect) {
    const kd_param_table *pt = kd_model_table(m);
    const float *p = kd_model_params(m);
    int ok = 1;
    for (int i = 0; i < pt->n; i++) {
        char name[200];
        snprintf(name, sizeof name, "params/%s", pt->t[i].name);
        double *ref;
        size_t n = h5t_read_f64(expect, name, &ref);
        int same = n == pt->t[i].numel;
        for (size_t j = 0; same && j < n; j++) same = (double)p[pt->t[i].offset + j] == ref[j];
        if (!same) printf("FAIL %s differs\n", pt->t[i].name), ok = 0;
        free(ref);
    }
    return ok;
}

int main(void) {
    const char *src = getenv("KD_SOURCE_DIR") ? getenv("KD_SOURCE_DIR") : ".";
    const char *py = getenv("KD_PYTHON") ? getenv("KD_PYTHON") : "/usr/bin/python3";
    char dir[256], exp[256], dir2[256], cmd[1024];
    snprintf(dir, sizeof dir, "/tmp/kd_hf_%d", (int)getpid());
    snprintf(dir2, sizeof dir2, "/tmp/kd_hf_%d_export", (int)getpid());
    snprintf(exp, sizeof exp, "/tmp/kd_hf_%d.h5", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s %s/tests/reference/make_hf_llama.py %s %s", py, src, dir, exp);
    if (system(cmd) != 0) return fprintf(stderr, "cannot run %s\n", cmd), 1;
    kd_error err = {0};
    kd_model *m = NULL, *m2 = NULL;
    if (kd_hf_load(dir, kd_ops_cpu(), 0, &m, &err)) return fprintf(stderr, "load: %s\n", err.msg), 1;
    const kd_model_config *c = kd_model_cfg(m);
    int ok = c->vocab_size == 53 && c->d_model == 32 && c->n_kv_heads == 2 && c->head_dim == 8 &&
             c->rope_theta == 500000.0f && c->tie_embeddings == 0;
    printf("%s config read\n", ok ? "ok  " : "FAIL");
    hid_t f = H5Fopen(exp, H5F_ACC_RDONLY, H5P_DEFAULT);
    ok &= same_params(m, f);
    printf("%s imported weights equal the script's\n", ok ? "ok  " : "FAIL");
    if (kd_hf_export(m, dir2, NULL, &err)) return fprintf(stderr, "export: %s\n", err.msg), 1;
    if (kd_hf_load(dir2, kd_ops_cpu(), 0, &m2, &err)) return fprintf(stderr, "reload: %s\n", err.msg), 1;
    int ok2 = same_params(m2, f);
    printf("%s export -> import round trip\n", ok2 ? "ok  " : "FAIL");
    ok &= ok2;
    H5Fclose(f);
    kd_model_free(m), kd_model_free(m2);
    // an unsupported config is a clear error
    snprintf(cmd, sizeof cmd, "sed -i 's/\"rope_scaling\": null/\"rope_scaling\": {\"type\": \"llama3\"}/' %s/config.json", dir);
    if (system(cmd) != 0) return 1;
    kd_error_clear(&err);
    int rc = kd_hf_load(dir, kd_ops_cpu(), 0, &m, &err);
    int ok3 = rc == KD_EINPUT && strstr(err.msg, "rope_scaling") && strstr(err.msg, "config.json");
    printf("%s rejects rope_scaling: %s\n", ok3 ? "ok  " : "FAIL", err.msg);
    ok &= ok3;
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", dir, dir2, exp);
    if (system(cmd) != 0) return 1;
    return ok ? 0 : 1;
}
