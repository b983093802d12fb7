// mamba2_conv.c: the causal depthwise conv1d + SiLU of the Mamba-2 mixer (forward,
// backward, and the conv history that a prefill hands to the recurrent step).
// Convention (PyTorch conv1d, padding W-1, first T outputs):
//   pre[t,c] = bias[c] + sum_{k<W} w[c,k] * inp[t-(W-1)+k, c],  out = silu(pre)
// where inputs before t=0 or before the start of t's document count as zero.
// Scratch (kd_cpu_mamba2_conv_scratch): the document starts (B,T) and the transposed
// weights (W,CD).
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/cpu/vmath.h"
#include "kernels/mamba2_math.h"

#include <string.h>

size_t kd_cpu_mamba2_conv_scratch(void *ctx, int B, int T, int CD, int W) {
    (void)ctx;
    return kd_cpu_round((size_t)B * T * sizeof(int)) + kd_cpu_round((size_t)W * CD * sizeof(float));
}

// st (B,T): index of the first token of the document that holds (b,t).
static int *doc_starts(kd_scratch *ws, const int32_t *seg, int B, int T) {
    int *st = kd_cpu_take(ws, (size_t)B * T * sizeof(int));
    for (int b = 0; b < B; b++) {
        const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
        int s = 0;
        for (int t = 0; t < T; t++) {
            if (kd_m2_is_reset(sg, t)) s = t;
            st[(size_t)b * T + t] = s;
        }
    }
    return st;
}

// Channels per block: a thread owns a block of channels (their dw, dbias and dinp columns)
// and walks the rows with the channel loop innermost, so memory is read row by row.
#define KD_CONV_CB 64

// wt (W,CD): w (CD,W) transposed, so that a tap's weights are contiguous over channels.
static float *transpose_w(kd_scratch *ws, const float *w, int CD, int W) {
    float *wt = kd_cpu_take(ws, (size_t)W * CD * sizeof(float));
    for (int c = 0; c < CD; c++)
        for (int k = 0; k < W; k++) wt[(size_t)k * CD + c] = w[(size_t)c * W + k];
    return wt;
}

// pre[c] (cb channels starting at c0) of row t: bias + sum_k w[c,k] * inp[t-(W-1)+k, c],
// taps before `start` (document start) skipped. rows points at inp row (b,0).
KD_CPU_CLONES static void conv_pre_block(float *pre, const float *rows, int ld, const float *wt,
                                         int CD, const float *bias, int t, int start, int c0,
                                         int cb, int W) {
#pragma omp simd
    for (int c = 0; c < cb; c++) pre[c] = bias ? bias[c0 + c] : 0.0f;
    for (int k = 0; k < W; k++) {
        int tt = t - (W - 1) + k;
        if (tt < start) continue;
        const float *x = rows + (size_t)tt * ld + c0;
#pragma omp simd
        for (int c = 0; c < cb; c++) pre[c] += wt[(size_t)k * CD + c0 + c] * x[c];
    }
}

KD_CPU_CLONES static void silu_block(float *o, const float *pre, int cb) {
#pragma omp simd
    for (int c = 0; c < cb; c++) o[c] = kd_vsilu(pre[c]);
}

void kd_cpu_mamba2_conv_fwd(void *ctx, float *out, float *conv_state, const float *inp, int ld_in,
                            const float *w, const float *bias, const int32_t *seg, int B, int T,
                            int CD, int W, kd_scratch ws) {
    // out is (B,T,CD), inp is (B,T,ld_in) using columns [0,CD), w is (CD,W), bias is (CD)
    (void)ctx;
    int *st = doc_starts(&ws, seg, B, T);
    float *wt = transpose_w(&ws, w, CD, W);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        const float *rows = inp + (size_t)b * T * ld_in;
        float *o = out + (size_t)r * CD;
        float pre[KD_CONV_CB];
        for (int c0 = 0; c0 < CD; c0 += KD_CONV_CB) {
            int cb = c0 + KD_CONV_CB < CD ? KD_CONV_CB : CD - c0;
            conv_pre_block(pre, rows, ld_in, wt, CD, bias, t, st[r], c0, cb, W);
            silu_block(o + c0, pre, cb);
        }
    }
    if (conv_state) {
        // conv_state (B,CD,W-1): slot j holds input T-(W-1)+j of the last document.
        for (int b = 0; b < B; b++) {
            int start = T > 0 ? st[(size_t)b * T + T - 1] : 0;
            for (int c = 0; c < CD; c++)
                for (int j = 0; j < W - 1; j++) {
                    int tt = T - (W - 1) + j;
                    conv_state[((size_t)b * CD + c) * (W - 1) + j] =
                        tt >= start ? inp[((size_t)b * T + tt) * ld_in + c] : 0.0f;
                }
        }
    }
}

// Backward of one channel block [c0,c0+cb) over the rows of batch row b: g = dout *
// silu'(pre); dinp[tt] += g[t]*w[k] for the taps, dw[k] += g[t]*inp[tt], dbias += g.
// dwc (16,KD_CONV_CB) and db (cb) are the block's double accumulators.
KD_CPU_CLONES static void conv_bwd_block(float *drows, int ld_d, double *dwc, double *db,
                                         const float *dout_b, int CD, const float *rows, int ld,
                                         const float *wt, const float *bias, const int *st, int T,
                                         int c0, int cb, int W) {
    float pre[KD_CONV_CB], g[KD_CONV_CB];
    for (int t = 0; t < T; t++) {
        conv_pre_block(pre, rows, ld, wt, CD, bias, t, st[t], c0, cb, W);
        const float *go = dout_b + (size_t)t * CD + c0;
#pragma omp simd
        for (int c = 0; c < cb; c++) {
            g[c] = go[c] * kd_vdsilu(pre[c]);
            db[c] += g[c];
        }
        for (int k = 0; k < W; k++) {
            int tt = t - (W - 1) + k;
            if (tt < st[t]) continue;
            const float *x = rows + (size_t)tt * ld + c0;
            float *dx = drows + (size_t)tt * ld_d + c0;
#pragma omp simd
            for (int c = 0; c < cb; c++) {
                dwc[k * KD_CONV_CB + c] += (double)g[c] * x[c];
                dx[c] += g[c] * wt[(size_t)k * CD + c0 + c];
            }
        }
    }
}

void kd_cpu_mamba2_conv_bwd(void *ctx, float *dinp, int ld_dinp, float *dw, float *dbias,
                            const float *dout, const float *inp, int ld_in, const float *w,
                            const float *bias, const int32_t *seg, int B, int T, int CD, int W,
                            kd_scratch ws) {
    // dinp columns [0,CD) of (B,T,ld_dinp) are overwritten; dw (CD,W), dbias (CD) accumulate.
    (void)ctx;
    int *st = doc_starts(&ws, seg, B, T);
    float *wt = transpose_w(&ws, w, CD, W);
    const int nblk = (CD + KD_CONV_CB - 1) / KD_CONV_CB;
    // Parallel over channel blocks: each block owns its dw/dbias entries and dinp columns,
    // so there are no races and the sums run in a fixed order (deterministic).
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        const int c0 = blk * KD_CONV_CB, cb = c0 + KD_CONV_CB < CD ? KD_CONV_CB : CD - c0;
        double db[KD_CONV_CB] = {0}, dwc[KD_CONV_CB * 16] = {0}; // W <= 16 is checked by the layer
        for (long r = 0; r < (long)B * T; r++)
            memset(dinp + (size_t)r * ld_dinp + c0, 0, cb * sizeof(float));
        for (int b = 0; b < B; b++)
            conv_bwd_block(dinp + (size_t)b * T * ld_dinp, ld_dinp, dwc, db,
                           dout + (size_t)b * T * CD, CD, inp + (size_t)b * T * ld_in, ld_in, wt,
                           bias, st + (size_t)b * T, T, c0, cb, W);
        for (int c = 0; c < cb; c++) {
            if (dbias) dbias[c0 + c] += (float)db[c];
            for (int k = 0; k < W; k++)
                dw[(size_t)(c0 + c) * W + k] += (float)dwc[k * KD_CONV_CB + c];
        }
    }
}
