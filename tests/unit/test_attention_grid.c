// test_attention_grid.c: the CUDA attention kernels' per-thread bodies
// (kernels/attention_grid.h) run on the CPU, each over its whole launch grid in launch
// order, against the CPU backend's memory-lean attention (forward out and lse, backward
// dqkv, probabilities). This is how the CUDA index arithmetic is checked on a machine
// without a GPU. Shapes: GQA and MHA, documents (seg), T past one 64-row query block.
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kernels/attention_grid.h"
#include "kernels/ops.h"
#include "test_kernels_util.h"

#define REL 2e-5

static const kd_ops *ops;

static double *to_double(const float *x, size_t n) {
    double *d = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void run_case(int B, int T, int NH, int NKV, int HD, int use_seg) {
    const kd_attg_dims d = {B, T, NH, NKV, HD};
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HD, nout = (size_t)B * T * NH * HD;
    size_t nlse = (size_t)B * NH * T, nP = nlse * T;
    float *qkv = rand_tensor(nqkv, 1), *dout = rand_tensor(nout, 1);
    int32_t *seg = NULL;
    if (use_seg) {
        seg = malloc(sizeof(int32_t) * B * T);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) seg[b * T + t] = (t * 4) / T + 7 * b;
    }
    // the CPU backend
    float *out = rand_tensor(nout, 1), *lse = rand_tensor(nlse, 1), *dqkv = rand_tensor(nqkv, 1);
    float *P = rand_tensor(nP, 1);
    kd_scratch ws = {NULL, ops->nn->attention_scratch(ops->ctx, B, T, NH, HD)};
    ws.p = malloc(ws.bytes ? ws.bytes : 1);
    ops->nn->attention_fwd(ops->ctx, out, lse, qkv, seg, B, T, NH, NKV, HD, ws);
    ops->nn->attention_bwd(ops->ctx, dqkv, dout, out, lse, qkv, seg, B, T, NH, NKV, HD, ws);
    ops->nn->attention_probs(ops->ctx, P, qkv, lse, seg, B, T, NH, NKV, HD);
    // the CUDA bodies, grid by grid (garbage-filled outputs: every element must be written)
    float *gout = rand_tensor(nout, 9), *glse = rand_tensor(nlse, 9), *gD = rand_tensor(nlse, 9);
    float *gdqkv = rand_tensor(nqkv, 9), *gP = rand_tensor(nP, 9);
    for (size_t t = 0; t < nlse; t++) kd_attg_fwd_row(t, gout, glse, qkv, seg, d);
    for (size_t t = 0; t < nlse; t++) kd_attg_bwd_D(t, gD, dout, gout, d);
    for (size_t t = 0; t < nlse; t++) kd_attg_bwd_q_row(t, gdqkv, dout, glse, gD, qkv, seg, d);
    for (size_t t = 0; t < (size_t)B * NKV * T; t++)
        kd_attg_bwd_kv_row(t, gdqkv, dout, glse, gD, qkv, seg, d);
    for (size_t t = 0; t < nP; t++) kd_attg_probs_elem(t, gP, qkv, glse, seg, d);

    char what[160];
    const char *names[] = {"out", "lse", "dqkv", "probs"};
    const float *got[] = {gout, glse, gdqkv, gP}, *want[] = {out, lse, dqkv, P};
    const size_t n[] = {nout, nlse, nqkv, nP};
    for (int k = 0; k < 4; k++) {
        double *ref = to_double(want[k], n[k]);
        snprintf(what, sizeof what, "grid attention %s vs CPU (B=%d T=%d NH=%d NKV=%d HD=%d seg=%d)",
                 names[k], B, T, NH, NKV, HD, use_seg);
        check_close(what, got[k], ref, n[k], REL);
        free(ref);
    }
    free(qkv), free(dout), free(seg), free(out), free(lse), free(dqkv), free(P), free(ws.p);
    free(gout), free(glse), free(gD), free(gdqkv), free(gP);
}

int main(void) {
    ops = kd_ops_cpu();
    run_case(2, 70, 4, 2, 8, 1);
    run_case(2, 70, 4, 2, 8, 0);
    run_case(1, 5, 1, 1, 4, 0);
    run_case(1, 130, 3, 1, 16, 1); // multi-query, three query blocks
    return check_done("test_attention_grid");
}
