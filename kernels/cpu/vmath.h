// vmath.h: exp, sigmoid and SiLU for the CPU kernels' inner loops, written branch-free in
// plain float arithmetic so that the compiler vectorises a `#pragma omp simd` loop around
// them (a libm expf call per element cannot be vectorised). Used by kernels/cpu/*.c only.
// Accuracy: kd_vexp is within ~2e-7 relative of exp on [-87, 88], returns 0 below about
// -87.7 (where exp leaves the normal float range, -inf included) and exp(88) above 88
// (+inf included). NaN gives NaN, so a NaN logit still makes a NaN loss.
#pragma once
#include <stdint.h>

// KD_CPU_CLONES on a (non-inline) row function makes gcc compile it three times, for
// AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and the baseline, and pick one at load time:
// the build itself stays portable (no -march), but the loops below run 8-16 lanes wide
// instead of SSE2's 4 (measured: kd_vexp 0.35 ns/element with AVX-512 vs 1.8 for libm's
// expf or for the SSE2 build of the same loop).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define KD_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KD_CPU_CLONES
#endif

// Bit pattern of a float and back (a union: the compiler turns it into a register move).
typedef union {
    float f;
    int32_t i;
} kd_vbits;

// exp(x) = 2^n * exp(r), n = round(x/ln2), |r| <= ln2/2, exp(r) by its Taylor series to
// degree 7 (truncation error r^8/8! < 2e-8 relative at |r| = ln2/2).
// Written for the vectoriser: with gcc's default trapping maths, any float comparison
// becomes a branch (and gcc then folds the clamped cases to constants), which keeps the
// loop scalar. So x is clamped to [-104, 88] as an integer: flipping the magnitude bits of
// negative floats makes their bit patterns ordered like the values, and integer min/max
// are branch-free. NaN is carried through on the bits at the end.
static inline float kd_vexp(float x) {
    kd_vbits u = {x};
    int32_t key = u.i ^ ((u.i >> 31) & 0x7fffffff);      // ordered like x
    const int32_t lo = (int32_t)0xc2d00000 ^ 0x7fffffff; // key of -104.0f
    key = key < lo ? lo : key;
    key = key > 0x42b00000 ? 0x42b00000 : key; // 88.0f
    kd_vbits c;
    c.i = key ^ ((key >> 31) & 0x7fffffff);
    float xc = c.f;
    // round-to-nearest by adding and subtracting 1.5*2^23 (default rounding mode)
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145751953125f; // ln2 split in a high part exact in float
    r = r - n * 1.42860682030941723e-6f;   // and the low remainder
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ni = (int32_t)n, keep = ni >= -126; // below 2^-126 (x < ~-87.7): flush to 0
    ni = ni < -126 ? -126 : ni;
    kd_vbits scale, res;
    scale.i = (ni + 127) << 23; // 2^n, n in [-126, 127]
    res.f = p * scale.f * (float)keep;
    res.i |= -(int32_t)((u.i & 0x7fffffff) > 0x7f800000) & 0x7fc00000; // NaN in, NaN out
    return res.f;
}

// sigmoid(x) = 1/(1+e^-x), from e = exp(-|x|) <= 1 so nothing overflows: s = 1/(1+e) for
// x >= 0 and e*s for x < 0 (chosen on the sign bit, branch-free like kd_vexp).
static inline float kd_vsigmoid(float x) {
    kd_vbits u = {x}, negabs, s, es;
    negabs.i = u.i | (int32_t)0x80000000;
    float e = kd_vexp(negabs.f);
    s.f = 1.0f / (1.0f + e);
    es.f = e * s.f;
    int32_t neg = u.i >> 31; // -1 for x < 0 (and -0, where both forms agree), else 0
    s.i = (es.i & neg) | (s.i & ~neg);
    return s.f;
}

static inline float kd_vsilu(float x) {
    return x * kd_vsigmoid(x);
}

// d silu / dx = s + x*s*(1-s) with s = sigmoid(x).
static inline float kd_vdsilu(float x) {
    float s = kd_vsigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}
