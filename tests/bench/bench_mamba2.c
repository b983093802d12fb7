// bench_mamba2.c: forward+backward throughput (tokens/s) of one Mamba-2 mixer layer at
// sequence lengths 256, 1024, 4096 (demo dimensions: d_model 384, 6 heads, 2 kv heads,
// head_dim = d_state = 64, chunk 64). No pass/fail; not run by ctest by default. The
// attention layer column needs the CPU backend's attention ops and is reported as n/a
// until this benchmark is linked against kd_ops_cpu().
#include "../unit/test_mamba2_util.h"

int main(int argc, char **argv) {
    kd_ops ops = test_ops();
    kd_mamba2_cfg cfg = {384, {6, 2, 64, 64, 4, 64}, 1e-5f};
    test_layer L;
    layer_init(&L, cfg);
    const int lens[3] = {256, 1024, 4096};
    const int reps = argc > 1 ? atoi(argv[1]) : 2;
    printf("%-8s %-6s %14s %14s %14s\n", "seq", "batch", "mamba2 fwd t/s", "mamba2 f+b t/s",
           "attention");
    for (int li = 0; li < 3; li++) {
        const int T = lens[li], B = 1, C = cfg.d_model;
        const size_t n = (size_t)B * T * C;
        float *inp = kd_malloc(n * 4), *out = kd_malloc(n * 4), *dinp = kd_calloc(n, 4);
        fill(inp, n, -1.0f, 1.0f);
        float *abuf = kd_calloc(kd_mamba2_acts_floats(&cfg, B, T), 4);
        kd_mamba2_acts a;
        kd_mamba2_acts_bind(&a, abuf, &cfg, B, T);
        kd_mamba2_forward(&ops, &cfg, &L.p, &a, out, inp, NULL, B, T);  // warm-up
        double t0 = kd_now();
        for (int r = 0; r < reps; r++) kd_mamba2_forward(&ops, &cfg, &L.p, &a, out, inp, NULL, B, T);
        double tf = (kd_now() - t0) / reps;
        t0 = kd_now();
        for (int r = 0; r < reps; r++) {
            kd_mamba2_forward(&ops, &cfg, &L.p, &a, out, inp, NULL, B, T);
            kd_mamba2_backward(&ops, &cfg, &L.p, &L.g, &a, dinp, out, inp, NULL, B, T);
        }
        double tfb = (kd_now() - t0) / reps;
        printf("%-8d %-6d %14.0f %14.0f %14s\n", T, B, B * T / tf, B * T / tfb, "n/a");
        free(inp), free(out), free(dinp), free(abuf);
    }
    layer_free(&L);
    return 0;
}
