// attention_decode.c: the decoding form of causal GQA attention on the CPU (kd_ops
// attention_decode): one new token per row attends over that row's KV cache. Work per call
// is tiny next to a training step (B*NH dot products of length n[b]), so each (row, head)
// is one OpenMP unit of plain loops; no BLAS (a single query row gains nothing from it).
// Scratch: one row of Tmax scores per thread.
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

// Below this many score entries in total the loop runs on one thread.
#define KD_DEC_PAR_MIN 4096

size_t kd_cpu_attention_decode_scratch(void *ctx, int B, int Tmax, int NH) {
    (void)ctx, (void)B, (void)NH;
    return kd_cpu_per_thread(sizeof(float) * (size_t)Tmax);
}

// out is (B,NH*HD); kv is (B,Tmax,2*NKV*HD); qkv is (B,(NH+2*NKV)*HD); n is (B).
void kd_cpu_attention_decode(void *ctx, float *out, float *kv, const float *qkv, const int32_t *n,
                             int B, int Tmax, int NH, int NKV, int HD, kd_scratch ws) {
    (void)ctx;
    const int R = (NH + 2 * NKV) * HD, S = 2 * NKV * HD, G = NH / NKV;
    const size_t per = kd_cpu_round(sizeof(float) * (size_t)Tmax);
    char *rows = kd_cpu_take(&ws, per * (size_t)omp_get_max_threads());
    const float scale = 1.0f / sqrtf((float)HD);
    long work = 0;
    for (int b = 0; b < B; b++) {
        // append the new key and value heads (adjacent in qkv, as in the cache slot)
        memcpy(kv + ((size_t)b * Tmax + (n[b] - 1)) * S, qkv + (size_t)b * R + (size_t)NH * HD,
               sizeof(float) * S);
        work += (long)n[b] * NH;
    }
#pragma omp parallel for collapse(2) schedule(static) if (work >= KD_DEC_PAR_MIN)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            const int L = n[b], g = h / G;
            const float *q = qkv + (size_t)b * R + (size_t)h * HD;
            const float *k0 = kv + (size_t)b * Tmax * S + (size_t)g * HD;         // slot stride S
            const float *v0 = kv + (size_t)b * Tmax * S + (size_t)(NKV + g) * HD; // slot stride S
            float *o = out + (size_t)b * NH * HD + (size_t)h * HD;
            float *p = (float *)(rows + per * (size_t)omp_get_thread_num()); // (L <= Tmax)
            float mx = -INFINITY;
            for (int j = 0; j < L; j++) {
                const float *k = k0 + (size_t)j * S;
                float s = 0.0f;
                for (int d = 0; d < HD; d++) s += q[d] * k[d];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            float sum = 0.0f;
            for (int j = 0; j < L; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            const float inv = 1.0f / sum; // sum >= 1: the maximum contributes exp(0)
            for (int d = 0; d < HD; d++) o[d] = 0.0f;
            for (int j = 0; j < L; j++) {
                const float *v = v0 + (size_t)j * S, w = p[j] * inv;
                for (int d = 0; d < HD; d++) o[d] += w * v[d];
            }
        }
    }
}
