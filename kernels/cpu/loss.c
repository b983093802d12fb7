// loss.c: weighted token cross-entropy with ignored targets (t < 0) on the CPU, fused with
// its gradient. OpenMP over rows; log-sum-exp accumulated in double. The gradient may be
// written over the logits (dlogits == logits) because each row's softmax statistics are
// taken before that row is overwritten.
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/vmath.h"
#include "kernels/cpu/check.h"

// One row: x (V) logits, dx (V) or NULL (may alias x). Returns logsumexp(x) - x[t], and
// writes c*softmax(x) - c*onehot(t) into dx. Two passes over the row: the max, then the
// exponentials (into dx when wanted, so they are computed once) and their sum in double.
KD_CPU_CLONES static double ce_row(float *dx, const float *x, int t, int V, float c) {
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    const double xt = x[t]; // read before dx (which may alias x) is written
    double sum = 0.0;
    if (dx) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) {
            float e = kd_vexp(x[j] - mx);
            dx[j] = e;
            sum += (double)e;
        }
        const float k = (float)(c / sum);
#pragma omp simd
        for (int j = 0; j < V; j++) dx[j] *= k;
        dx[t] -= c;
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) sum += (double)kd_vexp(x[j] - mx);
    }
    // sum >= 1: the max element contributes exp(0)
    // cppcheck-suppress invalidFunctionArg
    return (double)mx + log(sum) - xt;
}

// logits (N,V), targets (N), weights (N) or NULL (= 1). loss (N) gets
// w[i] * (logsumexp(logits_i) - logits_i[t_i]), 0 where t_i < 0. If dlogits (N,V) is not
// NULL it gets dscale * w[i] * (softmax(logits_i) - onehot(t_i)), and 0 on ignored rows.
void kd_cpu_cross_entropy(void *ctx, float *loss, float *dlogits, const float *logits,
                          const int32_t *targets, const float *weights, int N, int V,
                          float dscale) {
    (void)ctx;
    if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)N * V > KD_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * V;
        float *dx = dlogits ? dlogits + (size_t)i * V : NULL;
        int t = targets[i];
        KD_CPU_ASSERT(t < V); // token ids are validated against vocab_size when data is opened
        if (t < 0) {
            loss[i] = 0.0f;
            if (dx)
                for (int j = 0; j < V; j++) dx[j] = 0.0f;
            continue;
        }
        float w = weights ? weights[i] : 1.0f;
        loss[i] = (float)((double)w * ce_row(dx, x, t, V, dscale * w));
    }
}
