// test_mamba2_ref.c: the Mamba-2 layer (forward output, input gradient and every parameter
// gradient) against an independent float64 PyTorch implementation, with and without
// document boundaries: tests/reference/mamba2_ref.py (written from the formulas; ctest
// mamba2_layer_vs_torch), or, built with KD_REF_MINIMAL_SSD, tests/reference/mamba2_ssd_ref.py
// (the Mamba-2 paper's chunked SSD inside MambaInLlama's mixer structure; ctest
// mamba2_layer_vs_minimal_ssd). Tolerance norm-wise relative, 1e-4 (torch) and 1e-5 (minimal
// SSD): the C side is float32 (rounding ~1e-6 relative after the chunk sums and norms), the
// references are exact to ~1e-15; any formula difference is >> 1e-5.
#include "test_mamba2_util.h"

#include <unistd.h>

#ifdef KD_REF_MINIMAL_SSD
#define REF_SCRIPT "mamba2_ssd_ref.py"
#define REF_NAME "minimal SSD"
#define REF_TOL 1e-5
#else
#define REF_SCRIPT "mamba2_ref.py"
#define REF_NAME "torch"
#define REF_TOL 1e-4
#endif

static void write_f32(const char *dir, const char *name, const float *x, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fwrite(x, 4, n, f);
    fclose(f);
}

static int read_f32(const char *dir, const char *name, float *x, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        CHECK(0, "reference output %s missing", path);
        return -1;
    }
    size_t got = fread(x, 4, n, f);
    fclose(f);
    CHECK(got == n, "%s: expected %zu floats, found %zu", path, n, got);
    return got == n ? 0 : -1;
}

static void run(int with_seg) {
    kd_ops ops = test_ops();
    kd_mamba2_cfg cfg = {16, {4, 2, 8, 8, 4, 8}, 1e-5f};
    test_layer L;
    layer_init(&L, cfg);
    const int B = 2, T = 21, C = cfg.d_model;
    const size_t n = (size_t)B * T * C;
    float *inp = kd_malloc(n * 4), *out = kd_malloc(n * 4), *dout = kd_malloc(n * 4);
    float *dinp = kd_calloc(n, 4), *ref = kd_malloc((n > L.np ? n : L.np) * 4);
    fill(inp, n, -1.0f, 1.0f);
    fill(dout, n, -1.0f, 1.0f);
    int32_t *seg = with_seg ? make_seg(B, T) : NULL;
    float *abuf = kd_calloc(kd_mamba2_acts_floats(&cfg, B, T), 4);
    kd_mamba2_acts a;
    kd_mamba2_acts_bind(&a, abuf, &cfg, B, T);
    kd_scratch ws = host_scratch(kd_mamba2_scratch_bytes(&ops, &cfg, B, T));
    kd_mamba2_forward(&ops, &cfg, &L.p, &a, ws, out, inp, seg, B, T);
    kd_mamba2_backward(&ops, &cfg, &L.p, &L.g, &a, ws, dinp, dout, inp, seg, B, T);
    free(ws.p);

    char dir[256];
    CHECK(check_tmpdir(dir, sizeof dir, "mamba2_ref") == 0, "no scratch directory");
    char path[600];
    snprintf(path, sizeof path, "%s/dims.txt", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "C %d\nH %d\nn_kv %d\nP %d\nN %d\nW %d\nQ %d\nB %d\nT %d\neps %.9g\nhas_seg %d\n", C,
            cfg.k.H, cfg.k.n_kv, cfg.k.P, cfg.k.N, cfg.k.W, cfg.k.Q, B, T, (double)cfg.norm_eps,
            with_seg);
    fclose(f);
    write_f32(dir, "inp", inp, n);
    write_f32(dir, "dout", dout, n);
    if (seg) {
        snprintf(path, sizeof path, "%s/seg.i32", dir);
        f = fopen(path, "wb");
        fwrite(seg, 4, (size_t)B * T, f);
        fclose(f);
    }
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++)
        write_f32(dir, L.info[i].name + strlen("layers.0.mixer."), L.pbuf + L.info[i].offset,
                  L.info[i].numel);
    const char *py = getenv("KD_PYTHON") ? getenv("KD_PYTHON") : "/usr/bin/python3";
    const char *src = getenv("KD_SOURCE_DIR") ? getenv("KD_SOURCE_DIR") : ".";
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "%s %s/tests/reference/" REF_SCRIPT " %s", py, src, dir);
    int rc = system(cmd);
    CHECK(rc == 0, "reference script failed (rc %d): %s", rc, cmd);
    if (rc == 0) {
        const char *tag = with_seg ? " (seg)" : "";
        char what[128];
        if (!read_f32(dir, "out", ref, n)) {
            snprintf(what, sizeof what, "out vs " REF_NAME "%s", tag);
            check_close(what, out, ref, n, REF_TOL);
        }
        if (!read_f32(dir, "d_inp", ref, n)) {
            snprintf(what, sizeof what, "d_inp vs " REF_NAME "%s", tag);
            check_close(what, dinp, ref, n, REF_TOL);
        }
        for (int i = 0; i < KD_MAMBA2_NPARAMS; i++) {
            const char *pn = L.info[i].name + strlen("layers.0.mixer.");
            char nm[128];
            snprintf(nm, sizeof nm, "d_%s", pn);
            if (read_f32(dir, nm, ref, L.info[i].numel)) continue;
            snprintf(what, sizeof what, "%s vs " REF_NAME "%s", nm, tag);
            check_close(what, L.gbuf + L.info[i].offset, ref, L.info[i].numel, REF_TOL);
            if (getenv("KD_TEST_VERBOSE"))
                printf("  %-20s rel %.2g\n", nm,
                       rel_err(L.gbuf + L.info[i].offset, ref, L.info[i].numel));
        }
    }
    check_rmtree(dir);
    free(inp), free(out), free(dout), free(dinp), free(ref), free(seg), free(abuf);
    layer_free(&L);
}

int main(void) {
    run(0);
    run(1);
    return check_done("test_mamba2_ref");
}
