// test_mamba2_util.h: shared helpers of the Mamba-2 tests: a deterministic RNG, the CPU
// kd_ops table with the Mamba-2 kernels registered, a random layer, and comparison
// helpers that print the disagreeing values (through check.h's CHECK). Included by
// tests/unit/test_mamba2*.c and tests/bench/bench_mamba2.c only; everything is static.
#pragma once
#include "kernels/cpu/cpu_mamba2.h"
#include "runtime/model/mixer_mamba2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

// ---------------------------------------------------------------------------- RNG
static unsigned long long g_rng = 0x9E3779B97F4A7C15ull;
static inline float urand(void) { // uniform [0,1)
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 16777216.0));
}
static inline void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * urand();
}

// ---------------------------------------------------------------------------- backend
// The project's CPU table (its Mamba-2 kernels included).
static inline kd_ops test_ops(void) {
    return *kd_ops_cpu();
}

// Kernel scratch of `bytes` (the CPU backend's memory is host memory); free ws.p.
static inline kd_scratch host_scratch(size_t bytes) {
    kd_scratch ws = {kd_malloc(bytes ? bytes : 1), bytes};
    return ws;
}

// ---------------------------------------------------------------------------- comparison
// Norm-wise relative error ||a-b|| / max(||b||, tiny), in double.
static inline double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}
// Checks rel_err <= tol and prints the worst element when it fails.
static inline void check_close(const char *what, const float *a, const float *b, size_t n,
                               double tol) {
    double e = rel_err(a, b, n);
    if (e <= tol && e == e) return;
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > wd || d != d) wd = d, worst = i;
    }
    CHECK(0, "%s: relative error %.3g > %.1g (worst [%zu]: got %.9g, want %.9g)", what, e, tol,
          worst, a[worst], b[worst]);
}

// ---------------------------------------------------------------------------- a layer
typedef struct {
    kd_mamba2_cfg cfg;
    kd_mamba2_sizes s;
    float *pbuf, *gbuf; // parameters and gradients, laid out as kd_mamba2_param_infos
    size_t np;
    kd_mamba2_params p, g;
    kd_param_info info[KD_MAMBA2_NPARAMS];
} test_layer;

static inline void layer_point(kd_mamba2_params *p, float *base, const kd_param_info *info) {
    float **slot[KD_MAMBA2_NPARAMS] = {&p->in_proj_w, &p->conv_w, &p->conv_b, &p->dt_bias,
                                       &p->A_log,     &p->D,      &p->norm_w, &p->out_proj_w};
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++) *slot[i] = base + info[i].offset;
}

static inline void layer_init(test_layer *L, kd_mamba2_cfg cfg) {
    L->cfg = cfg;
    L->s = kd_mamba2_sizes_of(&cfg);
    kd_mamba2_param_infos(&cfg, 0, L->info);
    L->np = 0;
    for (int i = 0; i < KD_MAMBA2_NPARAMS; i++)
        L->info[i].offset = L->np, L->np += L->info[i].numel;
    L->pbuf = kd_calloc(L->np, sizeof(float));
    L->gbuf = kd_calloc(L->np, sizeof(float));
    layer_point(&L->p, L->pbuf, L->info);
    layer_point(&L->g, L->gbuf, L->info);
    const int H = cfg.k.H;
    const float sc = 1.0f / sqrtf((float)cfg.d_model), so = 1.0f / sqrtf((float)L->s.d_inner);
    fill(L->p.in_proj_w, L->info[0].numel, -sc, sc);
    fill(L->p.conv_w, L->info[1].numel, -0.6f, 0.6f);
    fill(L->p.conv_b, L->info[2].numel, -0.2f, 0.2f);
    fill(L->p.dt_bias, H, -2.0f, 0.5f); // dt around 0.1..1: decays matter within a chunk
    for (int h = 0; h < H; h++) L->p.A_log[h] = logf(1.0f + 3.0f * urand());
    fill(L->p.D, H, 0.5f, 1.5f);
    fill(L->p.norm_w, L->s.d_inner, 0.5f, 1.5f);
    fill(L->p.out_proj_w, L->info[7].numel, -so, so);
}

static inline void layer_free(test_layer *L) {
    free(L->pbuf);
    free(L->gbuf);
}

// Document ids (B,T) with a few boundaries per row (row b's first boundary at 3+b).
static inline int32_t *make_seg(int B, int T) {
    int32_t *seg = kd_malloc((size_t)B * T * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) seg[b * T + t] = 10 * b + (t >= 3 + b) + (t >= T / 2 + 1);
    return seg;
}
