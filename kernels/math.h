// math.h: per-element math shared by the CPU kernels (kernels/cpu/*.c) and the CUDA
// kernels (kernels/cuda/*.cu). Every function is static inline and marked KD_HD, which is
// `__host__ __device__` under nvcc and empty in plain C, so one definition serves both.
// Invariant: float in, float out; no state, no allocation, no library calls beyond libm.
#pragma once
#include <math.h>

#if defined(__CUDACC__)
#define KD_HD __host__ __device__
#else
#define KD_HD
#endif

// sigmoid(x) = 1 / (1 + e^-x), written so that neither branch overflows.
static inline KD_HD float kd_sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

// silu(x) = x * sigmoid(x) (a.k.a. swish).
static inline KD_HD float kd_silu(float x) {
    return x * kd_sigmoid(x);
}

// d silu / dx = s + x*s*(1-s) with s = sigmoid(x).
static inline KD_HD float kd_dsilu(float x) {
    float s = kd_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

// softplus(x) = log(1 + e^x); linear above 20 where the correction is below float eps.
static inline KD_HD float kd_softplus(float x) {
    if (x > 20.0f) return x;
    return log1pf(expf(x));
}

// d softplus / dx = sigmoid(x).
static inline KD_HD float kd_dsoftplus(float x) {
    return kd_sigmoid(x);
}

// RoPE inverse frequency of pair i (0 <= i < HD/2): theta^(-2i/HD), computed in float the
// way the Hugging Face Llama code does, so that angles agree with its checkpoints. The
// model builds its inverse-frequency table (the rope kernels' input) from it.
static inline KD_HD float kd_rope_inv_freq(int i, int HD, float theta) {
    return 1.0f / powf(theta, (float)(2 * i) / (float)HD);
}

// One AdamW update of a single element (decoupled decay, bias-corrected). bc1 = 1-b1^t,
// bc2 = 1-b2^t are precomputed by the caller. Updates *p, *m, *v.
static inline KD_HD void kd_adamw_elem(float *p, float g, float *m, float *v, float lr, float b1,
                                       float b2, float eps, float wd, float bc1, float bc2) {
    float mm = b1 * *m + (1.0f - b1) * g;
    float vv = b2 * *v + (1.0f - b2) * g * g;
    *m = mm;
    *v = vv;
    float mhat = mm / bc1, vhat = vv / bc2;
    *p -= lr * (mhat / (sqrtf(vhat) + eps) + wd * *p);
}
