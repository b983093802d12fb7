// mamba2_ssd.cu: the CUDA chunked SSD scan of Mamba-2 (ssd_fwd, ssd_bwd), its sequential
// reference (scan_ref) and their shared scratch query; kd_cuda_mamba2_fill_ssd() puts them in
// the table built by kernels/cuda/mamba2.cu. The stages follow the CPU's chunked structure
// (kernels/cpu/mamba2_ssd.c): per-chunk dt and cumsum, chunk-local states, the chunk
// recurrence (parallel over state elements), the outputs; the backward mirrors them. Every
// kernel is a thin wrapper over a body of kernels/mamba2_grid_ssd.h, launched by that
// header's launch plans (KD_M2G_SSD_*_PLAN), which tests/unit/test_mamba2_grid.c runs on
// the host; one owner per output element, no
// atomics, so results are deterministic. Simple, untuned: (C_i.B_j) and (dy_i.x_j) are
// recomputed per output element (no shared-memory tiles or batched GEMMs yet).
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/mamba2_grid_ssd.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/cuda_util.cuh"


KD_GRID_KERNEL_OF(kd_m2g_ssd_lr, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dt_cum, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_sloc, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_pass, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_out, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_gout, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dpass, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dx, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dB, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_dC, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_tok, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_chunk, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_params, kd_m2g_ssd)
KD_GRID_KERNEL_OF(kd_m2g_ssd_ref, kd_m2g_ssd)

// One query for ssd_fwd, ssd_bwd and scan_ref (the layout of kd_m2g_ssd_bind).
static size_t cu_ssd_scratch(void *ctx, const kd_mamba2_dims *d, int B, int T) {
    (void)ctx;
    return kd_m2g_ssd_scratch(d, B, T);
}

// The stage arguments with the scratch laid out (aborts on a short scratch: a caller bug).
static kd_m2g_ssd ssd_args(const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    kd_m2g_ssd a;
    memset(&a, 0, sizeof a);
    a.in = *in, a.d = *d;
    KD_SCRATCH_CHECK(ws, kd_m2g_ssd_scratch(d, in->B, in->T));
    kd_m2g_ssd_bind(&a, ws.p);
    return a;
}

// y is (B,T,H,P); states (B,H,nc,P,N) or NULL; final_state, init_state (B,H,P,N) or NULL.
static void cu_ssd_fwd(void *ctx, float *y, float *states, float *final_state,
                       const float *init_state, const kd_mamba2_in *in, const kd_mamba2_dims *d,
                       kd_scratch ws) {
    (void)ctx;
    if (!in->B) return; // T == 0 still sets final_state (= init_state or zeros)
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    a.states = states ? states : a.sbuf;
    KD_M2G_SSD_FWD_PLAN(KD_GRID_STAGE, a)
}

// dy (B,T,H,P), states from ssd_fwd. dx, dB, dC, ddt overwritten (kv slices of dx and dB
// summed over the heads that read them); ddt_bias, dA_log, dD accumulate.
static void cu_ssd_bwd(void *ctx, const kd_mamba2_grad *g, const float *dy, const float *states,
                       const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    (void)ctx;
    if (!in->B || !in->T) return;
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.g = *g, a.dy = dy, a.st = states;
    KD_M2G_SSD_BWD_PLAN(KD_GRID_STAGE, a)
}

// The sequential reference: one thread per state row (b,h,p) walks the tokens in order.
static void cu_scan_ref(void *ctx, float *y, float *final_state, const float *init_state,
                        const kd_mamba2_in *in, const kd_mamba2_dims *d, kd_scratch ws) {
    (void)ctx;
    if (!in->B) return;
    kd_m2g_ssd a = ssd_args(in, d, ws);
    a.y = y, a.final_state = final_state, a.init_state = init_state;
    KD_M2G_SCAN_REF_PLAN(KD_GRID_STAGE, a)
}

extern "C" void kd_cuda_mamba2_fill_ssd(kd_mamba2_ops *t) {
    t->ssd_scratch = cu_ssd_scratch, t->ssd_fwd = cu_ssd_fwd, t->ssd_bwd = cu_ssd_bwd;
    t->scan_ref = cu_scan_ref;
}
