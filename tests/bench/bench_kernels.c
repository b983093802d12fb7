// bench_kernels.c: throughput of the CPU backend's heavy kernels on the shapes of a small
// Llama (d=384, 6 heads / 2 KV heads of 64, SwiGLU 1024, vocab 4096, B=8, T=256).
// Built with the tests, never run by ctest: `./build/tests/bench_kernels [reps]`.
// Prints GFLOP/s per matmul shape (fwd, bwd) and attention fwd/bwd times.
#include <stdio.h>
#include <stdlib.h>

#include "kernels/ops.h"
#include "runtime/base/common.h"

static float *randt(const kd_ops *ops, size_t n) {
    float *h = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) h[i] = (float)((double)rand() / RAND_MAX - 0.5);
    float *d = ops->mem->alloc(ops->ctx, sizeof(float) * n);
    ops->mem->upload(ops->ctx, d, h, sizeof(float) * n);
    free(h);
    return d;
}

static void bench_matmul(const kd_ops *ops, const char *name, int N, int C, int OC, int reps) {
    float *inp = randt(ops, (size_t)N * C), *w = randt(ops, (size_t)OC * C);
    float *out = randt(ops, (size_t)N * OC), *dinp = randt(ops, (size_t)N * C);
    float *dw = randt(ops, (size_t)OC * C);
    ops->nn->matmul_fwd(ops->ctx, out, inp, w, N, C, OC); // warm-up
    double t0 = kd_now();
    for (int r = 0; r < reps; r++) ops->nn->matmul_fwd(ops->ctx, out, inp, w, N, C, OC);
    double tf = (kd_now() - t0) / reps;
    t0 = kd_now();
    for (int r = 0; r < reps; r++) ops->nn->matmul_bwd(ops->ctx, dinp, dw, out, inp, w, N, C, OC);
    double tb = (kd_now() - t0) / reps;
    double fl = 2.0 * N * C * OC;
    printf("matmul %-10s N=%5d C=%5d OC=%5d  fwd %7.2f ms %6.1f GFLOP/s   bwd %7.2f ms %6.1f "
           "GFLOP/s\n",
           name, N, C, OC, tf * 1e3, fl / tf * 1e-9, tb * 1e3, 2 * fl / tb * 1e-9);
    ops->mem->free(ops->ctx, inp), ops->mem->free(ops->ctx, w), ops->mem->free(ops->ctx, out),
        ops->mem->free(ops->ctx, dinp), ops->mem->free(ops->ctx, dw);
}

static void bench_attention(const kd_ops *ops, int B, int T, int NH, int NKV, int HD, int reps) {
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HD, nout = (size_t)B * T * NH * HD;
    size_t nlse = (size_t)B * NH * T;
    float *qkv = randt(ops, nqkv), *out = randt(ops, nout), *lse = randt(ops, nlse);
    float *dout = randt(ops, nout), *dqkv = randt(ops, nqkv);
    kd_scratch ws = {NULL, ops->nn->attention_scratch(ops->ctx, B, T, NH, HD)};
    ws.p = ops->mem->alloc(ops->ctx, ws.bytes);
    ops->nn->attention_fwd(ops->ctx, out, lse, qkv, NULL, B, T, NH, NKV, HD, ws);
    double t0 = kd_now();
    for (int r = 0; r < reps; r++)
        ops->nn->attention_fwd(ops->ctx, out, lse, qkv, NULL, B, T, NH, NKV, HD, ws);
    double tf = (kd_now() - t0) / reps;
    t0 = kd_now();
    for (int r = 0; r < reps; r++)
        ops->nn->attention_bwd(ops->ctx, dqkv, dout, out, lse, qkv, NULL, B, T, NH, NKV, HD, ws);
    double tb = (kd_now() - t0) / reps;
    // useful (causal) flops: QK^T and PV over the lower triangle; bwd does twice that
    double fl = 2.0 * 2.0 * B * NH * HD * (double)T * (T + 1) / 2;
    printf("attention B=%d T=%d NH=%d NKV=%d HD=%d  fwd %7.2f ms %6.1f GFLOP/s   bwd %7.2f ms "
           "%6.1f GFLOP/s (causal flops)\n",
           B, T, NH, NKV, HD, tf * 1e3, fl / tf * 1e-9, tb * 1e3, 2 * fl / tb * 1e-9);
    ops->mem->free(ops->ctx, lse), ops->mem->free(ops->ctx, dout), ops->mem->free(ops->ctx, ws.p);
    ops->mem->free(ops->ctx, qkv), ops->mem->free(ops->ctx, out), ops->mem->free(ops->ctx, dqkv);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const kd_ops *ops = kd_ops_cpu();
    int B = 8, T = 256, d = 384, F = 1024, V = 4096, NH = 6, NKV = 2, HD = 64, N = B * T;
    printf("kdtrain kernel bench (%s backend), small Llama: d=%d ffn=%d V=%d B=%d T=%d\n",
           ops->name, d, F, V, B, T);
    bench_matmul(ops, "qkv", N, d, (NH + 2 * NKV) * HD, reps);
    bench_matmul(ops, "o_proj", N, NH * HD, d, reps);
    bench_matmul(ops, "gate_up", N, d, 2 * F, reps);
    bench_matmul(ops, "down", N, F, d, reps);
    bench_matmul(ops, "lm_head", N, d, V, reps);
    bench_attention(ops, B, T, NH, NKV, HD, reps);
    return 0;
}
