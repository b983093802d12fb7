// loss.c: weighted token cross-entropy with ignored targets (t < 0) on the CPU, fused with
// its gradient. OpenMP over rows; log-sum-exp accumulated in double. The gradient may be
// written over the logits (dlogits == logits) because each row's softmax statistics are
// taken before that row is overwritten.
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "runtime/common.h"

// logits (N,V), targets (N), weights (N) or NULL (= 1). loss (N) gets
// w[i] * (logsumexp(logits_i) - logits_i[t_i]), 0 where t_i < 0. If dlogits (N,V) is not
// NULL it gets dscale * w[i] * (softmax(logits_i) - onehot(t_i)), and 0 on ignored rows.
void kd_cpu_cross_entropy(float *loss, float *dlogits, const float *logits, const int32_t *targets,
                          const float *weights, int N, int V, float dscale) {
    if (N <= 0 || V <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)N * V > KD_CPU_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * V;
        float *dx = dlogits ? dlogits + (size_t)i * V : NULL;
        int t = targets[i];
        KD_ASSERT(t < V); // token ids are validated against vocab_size when data is opened
        if (t < 0) {
            loss[i] = 0.0f;
            if (dx)
                for (int j = 0; j < V; j++) dx[j] = 0.0f;
            continue;
        }
        float w = weights ? weights[i] : 1.0f;
        float mx = x[0];
        for (int j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < V; j++) sum += (double)expf(x[j] - mx);
        // sum >= 1: the max element contributes exp(0)
        // cppcheck-suppress invalidFunctionArg
        double lse = (double)mx + log(sum);
        double xt = x[t];
        loss[i] = (float)((double)w * (lse - xt));
        if (dx) {
            float c = dscale * w;
            float inv = (float)(1.0 / sum);
            for (int j = 0; j < V; j++) dx[j] = c * expf(x[j] - mx) * inv;
            dx[t] -= c;
        }
    }
}
