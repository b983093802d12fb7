// decode.cu: the CUDA kernels of decoding (kd_decode_ops: attention over a KV cache, the
// Mamba-2 recurrent step; contracts in kernels/ops.h). Every kernel is a thin wrapper around
// a per-thread body of kernels/decode_grid.h (one thread per output element, a fixed loop
// order, no atomics: deterministic), so tests/unit/test_decode_grid.c checks the index
// maths on the host. Work per call is small (one token per row); the kernels are plain,
// not tuned. All ops are asynchronous on the default stream. kd_cuda_decode() hands the
// sub-table to kernels/cuda/ops_cuda.cu.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/decode_grid.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/cuda_util.cuh"


// ============================================================================ attention

KD_GRID_KERNEL_OF(kd_decg_attn_append, kd_decg_attn)
KD_GRID_KERNEL_OF(kd_decg_attn_scores, kd_decg_attn)
KD_GRID_KERNEL_OF(kd_decg_attn_out, kd_decg_attn)

static size_t cu_attention_scratch(void *ctx, int B, int Tmax, int NH) {
    (void)ctx;
    return kd_decg_attn_scratch(B, Tmax, NH);
}

// out is (B,NH*HD), kv is (B,Tmax,2*NKV*HD), qkv is (B,(NH+2*NKV)*HD), n is (B) on the device.
static void cu_attention(void *ctx, float *out, float *kv, const float *qkv, const int32_t *n,
                         int B, int Tmax, int NH, int NKV, int HD, kd_scratch ws) {
    (void)ctx;
    if (B <= 0 || NH <= 0 || HD <= 0) return;
    KD_SCRATCH_CHECK(ws, kd_decg_attn_scratch(B, Tmax, NH));
    kd_decg_attn a;
    memset(&a, 0, sizeof a);
    a.out = out, a.kv = kv, a.qkv = qkv, a.n = n, a.p = (float *)ws.p;
    a.B = B, a.Tmax = Tmax, a.NH = NH, a.NKV = NKV, a.HD = HD;
    KD_DECG_ATTN_PLAN(KD_GRID_STAGE, a)
}

// ============================================================================ Mamba-2 step

KD_GRID_KERNEL_OF(kd_decg_step_conv, kd_decg_step)
KD_GRID_KERNEL_OF(kd_decg_step_ssm, kd_decg_step)

static size_t cu_mamba2_step_scratch(void *ctx, const kd_mamba2_dims *d, int B) {
    (void)ctx;
    return kd_decg_step_scratch(d, B);
}

// y (B,H*P); conv_state (B,CD,W-1); ssm_state (B,H,P,N); xbc (B,ld_xbc); dt (B,lddt).
static void cu_mamba2_step(void *ctx, float *y, float *conv_state, float *ssm_state,
                           const float *xbc, int ld_xbc, const float *dt, int lddt,
                           const float *conv_w, const float *conv_b, const float *dt_bias,
                           const float *A_log, const float *D, const kd_mamba2_dims *d, int B,
                           kd_scratch ws) {
    (void)ctx;
    if (B <= 0) return;
    KD_SCRATCH_CHECK(ws, kd_decg_step_scratch(d, B));
    kd_decg_step s;
    memset(&s, 0, sizeof s);
    s.y = y, s.conv_state = conv_state, s.ssm_state = ssm_state, s.xbc = xbc, s.dt = dt;
    s.conv_w = conv_w, s.conv_b = conv_b, s.dt_bias = dt_bias, s.A_log = A_log, s.D = D;
    s.act = (float *)ws.p;
    s.ld_xbc = ld_xbc, s.lddt = lddt, s.B = B;
    s.H = d->H, s.n_kv = d->n_kv, s.P = d->P, s.N = d->N, s.W = d->W;
    KD_DECG_STEP_PLAN(KD_GRID_STAGE, s)
}

// ============================================================================ the table

static kd_decode_ops g_dec;

extern "C" const kd_decode_ops *kd_cuda_decode(void) {
    g_dec.attention_scratch = cu_attention_scratch;
    g_dec.attention = cu_attention;
    g_dec.mamba2_step_scratch = cu_mamba2_step_scratch;
    g_dec.mamba2_step = cu_mamba2_step;
    return &g_dec;
}
