// mamba2_conv.c: the causal depthwise conv1d + SiLU of the Mamba-2 mixer (forward,
// backward, and the conv history that a prefill hands to the recurrent step).
// Convention (PyTorch conv1d, padding W-1, first T outputs):
//   pre[t,c] = bias[c] + sum_{k<W} w[c,k] * inp[t-(W-1)+k, c],  out = silu(pre)
// where inputs before t=0 or before the start of t's document count as zero.
#include "kernels/cpu/cpu_mamba2.h"
#include "kernels/mamba2_math.h"
#include "runtime/common.h"

#include <stdlib.h>
#include <string.h>

// start (B,T): index of the first token of the document that holds (b,t).
static int *doc_starts(const int32_t *seg, int B, int T) {
    int *st = kd_malloc((size_t)B * T * sizeof(int));
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

// pre-activation of channel c at (b,t); row points at inp row (b,0).
static inline float conv_pre(const float *rows, int ld, const float *wc, float bias, int t,
                             int start, int c, int W) {
    float acc = bias;
    for (int k = 0; k < W; k++) {
        int tt = t - (W - 1) + k;
        if (tt < start) continue;
        acc += wc[k] * rows[(size_t)tt * ld + c];
    }
    return acc;
}

void kd_cpu_mamba2_conv_fwd(float *out, float *conv_state, const float *inp, int ld_in,
                            const float *w, const float *bias, const int32_t *seg, int B, int T,
                            int CD, int W) {
    // out is (B,T,CD), inp is (B,T,ld_in) using columns [0,CD), w is (CD,W), bias is (CD)
    int *st = doc_starts(seg, B, T);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        const float *rows = inp + (size_t)b * T * ld_in;
        float *o = out + (size_t)r * CD;
        for (int c = 0; c < CD; c++) {
            float p =
                conv_pre(rows, ld_in, w + (size_t)c * W, bias ? bias[c] : 0.0f, t, st[r], c, W);
            o[c] = kd_m2_silu(p);
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
    free(st);
}

void kd_cpu_mamba2_conv_bwd(float *dinp, int ld_dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, int ld_in, const float *w, const float *bias,
                            const int32_t *seg, int B, int T, int CD, int W) {
    // dinp columns [0,CD) of (B,T,ld_dinp) are overwritten; dw (CD,W), dbias (CD) accumulate.
    int *st = doc_starts(seg, B, T);
    for (long r = 0; r < (long)B * T; r++)
        memset(dinp + (size_t)r * ld_dinp, 0, CD * sizeof(float));
        // Parallel over channels: each channel owns its dw/dbias entries and dinp column.
#pragma omp parallel for schedule(static)
    for (int c = 0; c < CD; c++) {
        const float *wc = w + (size_t)c * W;
        double db = 0.0;
        double dwc[16] = {0}; // W <= 16 is checked by the layer
        for (int b = 0; b < B; b++) {
            const float *rows = inp + (size_t)b * T * ld_in;
            float *drows = dinp + (size_t)b * T * ld_dinp;
            for (int t = 0; t < T; t++) {
                int start = st[(size_t)b * T + t];
                float p = conv_pre(rows, ld_in, wc, bias ? bias[c] : 0.0f, t, start, c, W);
                float g = dout[((size_t)b * T + t) * CD + c] * kd_m2_dsilu(p);
                db += g;
                for (int k = 0; k < W; k++) {
                    int tt = t - (W - 1) + k;
                    if (tt < start) continue;
                    dwc[k] += (double)g * rows[(size_t)tt * ld_in + c];
                    drows[(size_t)tt * ld_dinp + c] += g * wc[k];
                }
            }
        }
        if (dbias) dbias[c] += (float)db;
        for (int k = 0; k < W; k++) dw[(size_t)c * W + k] += (float)dwc[k];
    }
    free(st);
}
