// mamba2_math.h: per-element maths of the Mamba-2 mixer shared by the CPU kernels
// (kernels/cpu/mamba2_*.c) and future CUDA kernels: activations and their derivatives,
// and the document-boundary rule. Everything is static inline and marked KD_HD, which is
// __host__ __device__ under nvcc and empty otherwise. No state, no allocation.
#pragma once
#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define KD_HD __host__ __device__
#else
#define KD_HD
#endif

KD_HD static inline float kd_m2_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

// softplus(x) = log(1+exp(x)), computed without overflow; PyTorch's threshold 20 is used
// so that large inputs pass through unchanged as in the reference implementation.
KD_HD static inline float kd_m2_softplus(float x) {
    if (x > 20.0f) return x;
    return log1pf(expf(x));
}
// d softplus / dx = sigmoid(x) (1 above the threshold, as in PyTorch).
KD_HD static inline float kd_m2_dsoftplus(float x) {
    return x > 20.0f ? 1.0f : kd_m2_sigmoid(x);
}

KD_HD static inline float kd_m2_silu(float x) {
    return x * kd_m2_sigmoid(x);
}
// d silu / dx = s + x*s*(1-s) with s = sigmoid(x).
KD_HD static inline float kd_m2_dsilu(float x) {
    float s = kd_m2_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

// A document starts at t where t > 0 and seg[t] != seg[t-1] (seg is one row, may be NULL).
KD_HD static inline int kd_m2_is_reset(const int32_t *seg, int t) {
    return seg != 0 && t > 0 && seg[t] != seg[t - 1];
}
