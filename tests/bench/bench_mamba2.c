// bench_mamba2.c: forward+backward throughput (tokens/s) of one Mamba-2 mixer layer at
// sequence lengths 256, 1024, 4096 (demo dimensions: d_model 384, 6 heads, 2 kv heads,
// head_dim = d_state = 64, chunk 64) against one GQA attention layer of the same shape
// (qkv matmul, causal softmax attention, out matmul; RoPE left out). No pass/fail; not run
// by ctest by default. Attention keeps (B,NH,T,T) probabilities: ~0.8 GB at T = 4096.
#include "../unit/test_mamba2_util.h"

// tokens/s of forward+backward of one attention layer (d_model C, NH heads, NKV kv heads).
static double bench_attention(const kd_ops *ops, int B, int T, int C, int NH, int NKV, int HD,
                              int reps) {
    const int QKV = (NH + 2 * NKV) * HD, BT = B * T;
    float *w_qkv = kd_malloc((size_t)QKV * C * 4), *w_o = kd_malloc((size_t)C * NH * HD * 4);
    float *dw_qkv = kd_calloc((size_t)QKV * C, 4), *dw_o = kd_calloc((size_t)C * NH * HD, 4);
    fill(w_qkv, (size_t)QKV * C, -0.05f, 0.05f);
    fill(w_o, (size_t)C * NH * HD, -0.05f, 0.05f);
    float *inp = kd_malloc((size_t)BT * C * 4), *out = kd_malloc((size_t)BT * C * 4);
    float *dinp = kd_calloc((size_t)BT * C, 4);
    fill(inp, (size_t)BT * C, -1.0f, 1.0f);
    float *qkv = kd_malloc((size_t)BT * QKV * 4), *dqkv = kd_malloc((size_t)BT * QKV * 4);
    float *ao = kd_malloc((size_t)BT * NH * HD * 4), *dao = kd_calloc((size_t)BT * NH * HD, 4);
    float *lse = kd_malloc((size_t)B * NH * T * 4);
    kd_scratch ws = {NULL, ops->nn->attention_scratch(ops->ctx, B, T, NH, HD)};
    ws.p = kd_malloc(ws.bytes ? ws.bytes : 1);
    double t0 = kd_now();
    for (int r = 0; r < reps; r++) {
        ops->nn->matmul_fwd(ops->ctx, qkv, inp, w_qkv, BT, C, QKV);
        ops->nn->attention_fwd(ops->ctx, ao, lse, qkv, NULL, B, T, NH, NKV, HD, ws);
        ops->nn->matmul_fwd(ops->ctx, out, ao, w_o, BT, NH * HD, C);
        memset(dao, 0, (size_t)BT * NH * HD * 4);
        ops->nn->matmul_bwd(ops->ctx, dao, dw_o, out, ao, w_o, BT, NH * HD, C);
        ops->nn->attention_bwd(ops->ctx, dqkv, dao, ao, lse, qkv, NULL, B, T, NH, NKV, HD, ws);
        ops->nn->matmul_bwd(ops->ctx, dinp, dw_qkv, dqkv, inp, w_qkv, BT, C, QKV);
    }
    double dt = (kd_now() - t0) / reps;
    free(w_qkv), free(w_o), free(dw_qkv), free(dw_o), free(inp), free(out), free(dinp);
    free(qkv), free(dqkv), free(ao), free(dao), free(lse), free(ws.p);
    return BT / dt;
}

int main(int argc, char **argv) {
    kd_ops ops = test_ops();
    kd_mamba2_cfg cfg = {384, {6, 2, 64, 64, 4, 64}, 1e-5f};
    test_layer L;
    layer_init(&L, cfg);
    const int lens[3] = {256, 1024, 4096};
    const int reps = argc > 1 ? atoi(argv[1]) : 2;
    printf("%-8s %-6s %14s %14s %14s\n", "seq", "batch", "mamba2 fwd t/s", "mamba2 f+b t/s",
           "attn f+b t/s");
    for (int li = 0; li < 3; li++) {
        const int T = lens[li], B = 1, C = cfg.d_model;
        const size_t n = (size_t)B * T * C;
        float *inp = kd_malloc(n * 4), *out = kd_malloc(n * 4), *dinp = kd_calloc(n, 4);
        fill(inp, n, -1.0f, 1.0f);
        float *abuf = kd_calloc(kd_mamba2_acts_floats(&cfg, B, T), 4);
        kd_mamba2_acts a;
        kd_mamba2_acts_bind(&a, abuf, &cfg, B, T);
        kd_scratch ws = host_scratch(kd_mamba2_scratch_bytes(&ops, &cfg, B, T));
        kd_mamba2_forward(&ops, &cfg, &L.p, &a, ws, out, inp, NULL, B, T); // warm-up
        double t0 = kd_now();
        for (int r = 0; r < reps; r++)
            kd_mamba2_forward(&ops, &cfg, &L.p, &a, ws, out, inp, NULL, B, T);
        double tf = (kd_now() - t0) / reps;
        t0 = kd_now();
        for (int r = 0; r < reps; r++) {
            kd_mamba2_forward(&ops, &cfg, &L.p, &a, ws, out, inp, NULL, B, T);
            kd_mamba2_backward(&ops, &cfg, &L.p, &L.g, &a, ws, dinp, out, inp, NULL, B, T);
        }
        double tfb = (kd_now() - t0) / reps;
        double ta = bench_attention(&ops, B, T, C, 6, 2, 64, reps);
        printf("%-8d %-6d %14.0f %14.0f %14.0f\n", T, B, B * T / tf, B * T / tfb, ta);
        free(inp), free(out), free(dinp), free(abuf), free(ws.p);
    }
    layer_free(&L);
    return 0;
}
