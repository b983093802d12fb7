// pref_loss.c: the device-side half of the preference losses on the CPU: per-token
// log-probabilities of the targets (token_logp_fwd) and their backward. The O(batch) loss
// maths over per-sequence sums is host code (runtime/train/losses.c).
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_losses.h"
#include "kernels/cpu/check.h"

// Row statistics of x (V): max and log-sum-exp, the sum in double.
static double row_lse(const float *x, int V, float *mx_out) {
    float mx = x[0];
    for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < V; j++) sum += exp((double)x[j] - (double)mx);
    *mx_out = mx;
    // sum >= 1: the max element contributes exp(0)
    // cppcheck-suppress invalidFunctionArg
    return (double)mx + log(sum);
}

// logits (N,V), targets (N): logp (N) = logits_i[t_i] - logsumexp(logits_i), 0 if t_i < 0.
void kd_cpu_token_logp_fwd(void *ctx, float *logp, const float *logits, const int32_t *targets,
                           int N, int V) {
    (void)ctx;
    if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)N * V > KD_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * V;
        int t = targets[i];
        KD_CPU_ASSERT(t < V); // token ids are validated against vocab_size when data is opened
        if (t < 0) {
            logp[i] = 0.0f;
            continue;
        }
        float mx;
        double lse = row_lse(x, V, &mx);
        logp[i] = (float)((double)x[t] - lse);
    }
}

// dlogp (N), logits (N,V): dlogits (N,V) = dlogp[i] * (onehot(t_i) - softmax(logits_i)),
// overwritten; may alias logits (the row's statistics are taken before it is written, and
// the write pass reads x[j] before writing dx[j]).
void kd_cpu_token_logp_bwd(void *ctx, float *dlogits, const float *dlogp, const float *logits,
                           const int32_t *targets, int N, int V) {
    (void)ctx;
    if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)N * V > KD_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * V;
        float *dx = dlogits + (size_t)i * V;
        int t = targets[i];
        KD_CPU_ASSERT(t < V);
        if (t < 0 || dlogp[i] == 0.0f) {
            for (int j = 0; j < V; j++) dx[j] = 0.0f;
            continue;
        }
        float mx;
        double lse = row_lse(x, V, &mx);
        double g = (double)dlogp[i];
        for (int j = 0; j < V; j++) {
            double p = exp((double)x[j] - lse);
            dx[j] = (float)(g * ((j == t ? 1.0 : 0.0) - p));
        }
    }
}
