// test_kernels_util.h: helpers shared by the kernel tests (tests/unit/test_kernels_*.c):
// a seeded RNG, random tensors, value checks that print the disagreeing values (counted by
// check.h; tests end with check_done), and the directional finite-difference check.
// Header-only (static functions); tests only.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static inline void rng_seed(uint64_t s) {
    g_rng = s * 0x9E3779B97F4A7C15ull + 1;
}
static inline uint32_t rng_u32(void) { // xorshift64*
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 32);
}
static inline float rng_uniform(void) {
    return (rng_u32() + 0.5f) / 4294967296.0f;
} // (0,1)
static inline float rng_normal(void) {
    float u1 = rng_uniform(), u2 = rng_uniform();
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}
static inline float *rand_tensor(size_t n, float scale) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal();
    return x;
}
static inline float *dup_tensor(const float *x, size_t n) {
    float *y = malloc(sizeof(float) * (n ? n : 1));
    memcpy(y, x, sizeof(float) * n);
    return y;
}

// Records one check; prints name and values when it fails.
static inline void check(int ok, const char *what, double got, double want, double tol) {
    check_count++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "FAIL %s: got %.9g want %.9g (|diff| %.3g > tol %.3g)\n", what, got, want,
                fabs(got - want), tol);
    }
}

// Compares got (n) with want (n): |got-want| <= rel * max(|want_i|, rms(want)). The rms
// floor keeps elements that cancel to ~0 from demanding an impossible relative accuracy.
static inline void check_close(const char *what, const float *got, const double *want, size_t n,
                               double rel) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += want[i] * want[i];
    double rms = n ? sqrt(ss / n) : 0.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = rel * fmax(fabs(want[i]), rms);
        if (!(fabs((double)got[i] - want[i]) <= tol)) {
            if (bad < 5) {
                char buf[160];
                snprintf(buf, sizeof buf, "%s[%zu]", what, i);
                check(0, buf, got[i], want[i], tol);
            }
            bad++;
        }
    }
    if (!bad)
        check(1, what, 0, 0, 0);
    else if (bad > 5)
        fprintf(stderr, "     ... %d elements of %s disagree\n", bad, what);
}

// Directional finite-difference check. loss(ctx) evaluates the scalar L in double from the
// current contents of x (n). grad (n) is the analytic dL/dx. For `ndir` random unit
// directions u: fd = (L(x+h u) - L(x-h u)) / 2h must match <grad,u> within
// rel*max(|fd|,|an|) + abs_tol. x is restored afterwards.
typedef double (*loss_fn)(void *ctx);
static inline void check_fd(const char *what, float *x, size_t n, const float *grad, loss_fn loss,
                            void *ctx, float h, int ndir, double rel, double abs_tol) {
    float *x0 = dup_tensor(x, n), *u = malloc(sizeof(float) * n);
    for (int d = 0; d < ndir; d++) {
        double nn = 0.0;
        for (size_t i = 0; i < n; i++) {
            u[i] = rng_normal();
            nn += (double)u[i] * u[i];
        }
        float inv = (float)(1.0 / sqrt(nn));
        for (size_t i = 0; i < n; i++) u[i] *= inv;
        // The analytic side uses the perturbation actually realised in float (x0 +- h u
        // rounds), so rounding of the inputs does not count against the kernel.
        double an = 0.0;
        for (size_t i = 0; i < n; i++) {
            float xp = x0[i] + h * u[i], xm = x0[i] - h * u[i];
            an += (double)grad[i] * ((double)xp - (double)xm) / (2.0 * h);
        }
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + h * u[i];
        double lp = loss(ctx);
        for (size_t i = 0; i < n; i++) x[i] = x0[i] - h * u[i];
        double lm = loss(ctx);
        memcpy(x, x0, sizeof(float) * n);
        double fd = (lp - lm) / (2.0 * h);
        double tol = rel * fmax(fabs(fd), fabs(an)) + abs_tol;
        char buf[160];
        snprintf(buf, sizeof buf, "%s: directional derivative %d (analytic vs finite diff)", what,
                 d);
        check(fabs(fd - an) <= tol, buf, an, fd, tol);
    }
    free(x0);
    free(u);
}
