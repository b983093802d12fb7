// attention.c: causal grouped-query softmax attention on the CPU, forward and backward.
// Work is split over (batch, head) with OpenMP; inside each unit the score and value
// products are single-threaded cblas_sgemm calls on row blocks of KD_ATT_TB queries, so a
// block only multiplies against the keys it can see (causality skips ~3/8 of the work at
// T=256). Threading: OpenBLAS is pinned to one thread for the duration of the parallel
// region (openblas_set_num_threads(1), restored afterwards) so that its own pool does not
// oversubscribe the cores the OpenMP team already occupies.
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"

#define KD_ATT_TB 64 // query rows per block

// Pins OpenBLAS to one thread; returns the previous count for openblas_set_num_threads.
static int att_blas_pin(void) {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return saved;
}

// In-place masked softmax of score row p (T) for query i: keys j > i and keys of another
// document (seg != NULL) get probability 0. Vectorised (kd_vexp, KD_CPU_CLONES); the
// document mask is applied as a multiply so the loops stay branch-free.
KD_CPU_CLONES static void att_softmax_row(float *p, int i, int T, const int32_t *seg) {
    float mx = -INFINITY;
    if (seg) {
        for (int j = 0; j <= i; j++)
            if (seg[j] == seg[i] && p[j] > mx) mx = p[j];
    } else {
        for (int j = 0; j <= i; j++) mx = p[j] > mx ? p[j] : mx;
    }
    float sum = 0.0f;
    if (seg) {
        const int32_t si = seg[i];
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= i; j++) {
            float e = kd_vexp(p[j] - mx) * (float)(seg[j] == si);
            p[j] = e;
            sum += e;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= i; j++) {
            float e = kd_vexp(p[j] - mx);
            p[j] = e;
            sum += e;
        }
    }
    float inv = 1.0f / sum; // sum >= 1: the key j == i is always visible
#pragma omp simd
    for (int j = 0; j <= i; j++) p[j] *= inv;
    for (int j = i + 1; j < T; j++) p[j] = 0.0f;
}

// Softmax backward of one row, in place on d (the incoming dP, keys [0,i]):
// d = scale * p * (d - sum_j p d); keys (i, n) are zeroed.
KD_CPU_CLONES static void att_softmax_bwd_row(float *d, const float *p, int i, int n, float scale) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j <= i; j++) dot += p[j] * d[j];
#pragma omp simd
    for (int j = 0; j <= i; j++) d[j] = scale * p[j] * (d[j] - dot);
    for (int j = i + 1; j < n; j++) d[j] = 0.0f;
}

// out is (B,T,NH*HD), att is (B,NH,T,T), qkv is (B,T,(NH+2*NKV)*HD), seg is (B,T) or NULL.
void kd_cpu_attention_fwd(void *ctx, float *out, float *att, const float *qkv, const int32_t *seg,
                          int B, int T, int NH, int NKV, int HD) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, OD = NH * HD, G = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    int saved = att_blas_pin();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const float *base = qkv + (size_t)b * T * R;
            const float *q = base + (size_t)h * HD;            // (T,HD) with row stride R
            const float *k = base + (size_t)(NH + h / G) * HD; // (T,HD) with row stride R
            const float *v = base + (size_t)(NH + NKV + h / G) * HD;
            float *P = att + ((size_t)b * NH + h) * T * T;        // (T,T)
            float *o = out + (size_t)b * T * OD + (size_t)h * HD; // (T,HD) row stride OD
            const int32_t *sg = seg ? seg + (size_t)b * T : NULL;
            for (int i0 = 0; i0 < T; i0 += KD_ATT_TB) {
                int i1 = i0 + KD_ATT_TB < T ? i0 + KD_ATT_TB : T, nq = i1 - i0;
                // scores of rows [i0,i1) against keys [0,i1): S = scale * Q K^T
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, i1, HD, scale,
                            q + (size_t)i0 * R, R, k, R, 0.0f, P + (size_t)i0 * T, T);
                for (int i = i0; i < i1; i++) att_softmax_row(P + (size_t)i * T, i, T, sg);
                // O = P V over the visible keys
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HD, i1, 1.0f,
                            P + (size_t)i0 * T, T, v, R, 0.0f, o + (size_t)i0 * OD, OD);
            }
        }
    }
    openblas_set_num_threads(saved);
}

// dout is (B,T,NH*HD); att (B,NH,T,T) from the forward; dqkv (B,T,(NH+2*NKV)*HD) is
// OVERWRITTEN; datt (B,NH,T,T) is scratch. Parallel over (batch, kv head) so that the G
// query heads sharing a kv head accumulate into its dK, dV from one thread (no races).
void kd_cpu_attention_bwd(void *ctx, float *dqkv, float *datt, const float *dout, const float *att,
                          const float *qkv, int B, int T, int NH, int NKV, int HD) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, OD = NH * HD, G = NH / NKV;
    const float scale = 1.0f / sqrtf((float)HD);
    int saved = att_blas_pin();
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < NKV; g++) {
            const float *base = qkv + (size_t)b * T * R;
            float *dbase = dqkv + (size_t)b * T * R;
            const float *k = base + (size_t)(NH + g) * HD, *v = base + (size_t)(NH + NKV + g) * HD;
            float *dk = dbase + (size_t)(NH + g) * HD, *dv = dbase + (size_t)(NH + NKV + g) * HD;
            for (int t = 0; t < T; t++) {
                memset(dk + (size_t)t * R, 0, sizeof(float) * HD);
                memset(dv + (size_t)t * R, 0, sizeof(float) * HD);
            }
            for (int h = g * G; h < (g + 1) * G; h++) {
                const float *q = base + (size_t)h * HD;
                float *dq = dbase + (size_t)h * HD;
                const float *P = att + ((size_t)b * NH + h) * T * T;
                float *dS = datt + ((size_t)b * NH + h) * T * T;
                const float *dO = dout + (size_t)b * T * OD + (size_t)h * HD;
                for (int i0 = 0; i0 < T; i0 += KD_ATT_TB) {
                    int i1 = i0 + KD_ATT_TB < T ? i0 + KD_ATT_TB : T, nq = i1 - i0;
                    // dP = dO V^T over visible keys [0,i1)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, i1, HD, 1.0f,
                                dO + (size_t)i0 * OD, OD, v, R, 0.0f, dS + (size_t)i0 * T, T);
                    // softmax bwd: dS = scale * P * (dP - sum_j P dP)
                    for (int i = i0; i < i1; i++)
                        att_softmax_bwd_row(dS + (size_t)i * T, P + (size_t)i * T, i, i1, scale);
                    // dQ = dS K (overwrites this head's q columns)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, HD, i1, 1.0f,
                                dS + (size_t)i0 * T, T, k, R, 0.0f, dq + (size_t)i0 * R, R);
                    // dK += dS^T Q ; dV += P^T dO (keys [0,i1))
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, HD, nq, 1.0f,
                                dS + (size_t)i0 * T, T, q + (size_t)i0 * R, R, 1.0f, dk, R);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, HD, nq, 1.0f,
                                P + (size_t)i0 * T, T, dO + (size_t)i0 * OD, OD, 1.0f, dv, R);
                }
            }
        }
    }
    openblas_set_num_threads(saved);
}
