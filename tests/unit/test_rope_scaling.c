// RoPE scaling travels with the model: a llama3 config survives a checkpoint (model.h5
// attributes) and an HF export (config.json rope_scaling) unchanged; a plain-RoPE
// checkpoint carries no scaling attributes (so it is written as before); the llama3 table
// keeps short wavelengths, divides long ones by the factor and blends in between; and a
// model with the scaled table has gradients that agree with finite differences.
#include <unistd.h>

#include "runtime/base/comm.h"
#include "runtime/store/hf.h"
#include "runtime/store/model_io.h"
#include "tests/unit/test_model_util.h"

static int same_rope(const kd_model_config *a, const kd_model_config *b) {
    return a->rope.type == b->rope.type && a->rope.factor == b->rope.factor &&
           a->rope.low_freq_factor == b->rope.low_freq_factor &&
           a->rope.high_freq_factor == b->rope.high_freq_factor &&
           a->rope.original_max_pos == b->rope.original_max_pos && a->max_pos == b->max_pos;
}

static kd_model_config llama3_config(void) {
    kd_model_config c = tiny_config(2, 1);
    c.head_dim = 16, c.d_model = 64, c.rope_theta = 500000.0f, c.max_pos = 131072;
    c.rope = (kd_rope_scaling){KD_ROPE_LLAMA3, 8.0f, 1.0f, 4.0f, 8192};
    return c;
}

// Pair i of HD=16, theta 5e5 has wavelength 2*pi*5e5^(i/8): i <= 3 under 2048 (kept),
// i = 4 (4443) between 2048 and 8192 (blended), i >= 5 over 8192 (divided by 8).
static int table_shape(void) {
    kd_model_config c = llama3_config();
    float plain[8], scaled[8];
    kd_rope_scaling none = {0};
    kd_rope_table(&none, c.rope_theta, 16, plain);
    kd_rope_table(&c.rope, c.rope_theta, 16, scaled);
    int ok = 1;
    for (int i = 0; i < 8; i++) {
        int want = i <= 3   ? scaled[i] == plain[i]
                   : i == 4 ? scaled[i] < plain[i] && scaled[i] > plain[i] / 8
                            : scaled[i] == plain[i] / 8.0f;
        if (!want) printf("FAIL pair %d: plain %g scaled %g\n", i, plain[i], scaled[i]), ok = 0;
    }
    printf("%s llama3 table: kept / blended / divided by wavelength\n", ok ? "ok  " : "FAIL");
    return ok;
}

static int roundtrips(kd_comm *comm, const char *tmp) {
    kd_error err = {0};
    kd_model_config c = llama3_config(), back;
    kd_model *m = NULL;
    if (kd_model_create(&m, &c, kd_ops_cpu(), 0, &err))
        return printf("FAIL create: %s\n", err.msg), 0;
    kd_model_init_random(m, 3, 0.05f);
    char root[300], out[512], hf[300];
    snprintf(root, sizeof root, "%s/ckpt", tmp);
    snprintf(hf, sizeof hf, "%s/hf", tmp);
    int ok = kd_model_save(comm, m, root, 1, 0, "t", out, sizeof out, &err) == 0 &&
             kd_model_config_from_ckpt(out, &back, &err) == 0 && same_rope(&c, &back);
    printf("%s llama3 scaling survives a checkpoint %s\n", ok ? "ok  " : "FAIL", err.msg);
    int ok2 = kd_hf_export(m, hf, NULL, &err) == 0 && kd_hf_config(hf, &back, &err) == 0 &&
              same_rope(&c, &back);
    printf("%s llama3 scaling survives an HF export %s\n", ok2 ? "ok  " : "FAIL", err.msg);
    kd_model_free(m);
    kd_model_config p = tiny_config(1, 0);
    kd_ckpt_attr a[KD_MODEL_ATTRS];
    int n = kd_model_config_attrs(&p, a), ok3 = 1;
    for (int i = 0; i < n; i++) // rope_theta is every config's; the scaling ones start rope_ too
        ok3 &=
            !strcmp(a[i].name, "rope_theta") || (strncmp(a[i].name, "rope_", 5) != 0 &&
                                                 strcmp(a[i].name, "max_position_embeddings") != 0);
    printf("%s plain RoPE: no scaling attributes (%d attributes)\n", ok3 ? "ok  " : "FAIL", n);
    return ok && ok2 && ok3;
}

// d loss / d q_proj through the scaled rotation vs central differences (double sums).
static int grads_fd(void) {
    kd_error err = {0};
    kd_model_config c = llama3_config();
    c.rope.original_max_pos = 64; // long wavelengths scaled even at these short lengths
    kd_model *m = NULL;
    if (kd_model_create(&m, &c, kd_ops_cpu(), 1, &err))
        return printf("FAIL create: %s\n", err.msg), 0;
    kd_model_init_random(m, 5, 0.1f);
    enum { B = 1, T = 12 };
    int32_t ids[B * T], tg[B * T];
    random_tokens(ids, B * T, c.vocab_size, 1);
    random_tokens(tg, B * T, c.vocab_size, 2);
    model_loss(m, ids, tg, NULL, B, T, 1);
    const kd_param_table *pt = kd_model_table(m);
    int q = kd_params_find(pt, "layers.0.mixer.q_proj.weight");
    float *w = kd_model_params(m) + pt->t[q].offset, *g = kd_model_grads(m) + pt->t[q].offset;
    double worst = 0;
    for (size_t j = 0; j < pt->t[q].numel; j += 97) { // a spread of entries
        float keep = w[j], h = 1e-2f;
        w[j] = keep + h;
        double lp = model_loss(m, ids, tg, NULL, B, T, 0);
        w[j] = keep - h;
        double lm = model_loss(m, ids, tg, NULL, B, T, 0);
        w[j] = keep;
        // the 1e-3 floor: fp32 losses (~4, rounding ~5e-7) over 2h give ~3e-5 of noise
        double fd = (lp - lm) / (2.0 * h), e = fabs(fd - g[j]) / (fabs(fd) + 1e-3);
        worst = e > worst ? e : worst;
    }
    kd_model_free(m);
    // fp32 forward, h = 1e-2: curvature and rounding leave a few 1e-3 relative
    int ok = worst < 2e-2;
    printf("%s scaled-RoPE gradient vs finite differences: worst rel %.2e (tolerance 2e-2)\n",
           ok ? "ok  " : "FAIL", worst);
    return ok;
}

int main(int argc, char **argv) {
    kd_comm *comm = NULL;
    kd_comm_init(&comm, &argc, &argv);
    char tmp[] = "/tmp/kd_rope_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    int ok = table_shape();
    ok &= roundtrips(comm, tmp);
    ok &= grads_fd();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) ok = 0;
    kd_comm_finalize(comm);
    return ok ? 0 : 1;
}
