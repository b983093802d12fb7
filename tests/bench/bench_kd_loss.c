// bench_kd_loss.c: cost per logit of the CPU loss heads on their own: token cross-entropy,
// distill_full for each divergence and distill_topk for each mode, with gradients, over N
// rows of V logits (random, uniform in [-2, 2]). Built with the tests, never run by ctest:
//   OMP_NUM_THREADS=2 ./build/tests/bench_kd_loss [V] [N] [K]      (default 32000 256 16)
// Prints the best of 5 calls in ns per logit (docs/performance.md "Distillation").
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_losses.h"
#include "runtime/base/common.h"

enum { REPS = 5 };

typedef struct {
    int N, V, K;
    float *s, *t, *grad, *loss, *w, *lp;
    int32_t *ids, *tg;
    kd_scratch ws; // for both loss kernels
} bench;

static void report(const char *name, const bench *b, double best) {
    printf("  %-28s %7.2f ns/logit  (%.2f ms per call)\n", name, best * 1e9 / ((double)b->N * b->V),
           best * 1e3);
}

static void run_full(const bench *b, kd_divergence div, const char *name) {
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = kd_now();
        kd_cpu_distill_full(NULL, b->loss, b->grad, b->s, b->t, b->w, b->N, b->V, div, 0.5f, 1.0f,
                            1.0f / b->N, b->ws);
        double d = kd_now() - t0;
        best = d < best ? d : best;
    }
    report(name, b, best);
}

static void run_topk(const bench *b, kd_topk_mode mode, const char *name) {
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = kd_now();
        kd_cpu_distill_topk(NULL, b->loss, b->grad, b->s, b->ids, b->lp, b->w, b->N, b->V, b->K,
                            mode, 1.0f, 1.0f / b->N, b->ws);
        double d = kd_now() - t0;
        best = d < best ? d : best;
    }
    report(name, b, best);
}

int main(int argc, char **argv) {
    bench b = {.V = argc > 1 ? atoi(argv[1]) : 32000,
               .N = argc > 2 ? atoi(argv[2]) : 256,
               .K = argc > 3 ? atoi(argv[3]) : 16};
    if (b.V < 2 || b.N < 1 || b.K < 1 || b.K > b.V) {
        fprintf(stderr, "usage: bench_kd_loss [V >= 2] [N >= 1] [K in 1..V]\n");
        return 2;
    }
    size_t NV = (size_t)b.N * b.V, NK = (size_t)b.N * b.K;
    b.s = kd_malloc(NV * sizeof(float)), b.t = kd_malloc(NV * sizeof(float));
    b.grad = kd_malloc(NV * sizeof(float)), b.loss = kd_malloc((size_t)b.N * sizeof(float));
    b.w = kd_malloc((size_t)b.N * sizeof(float)), b.lp = kd_malloc(NK * sizeof(float));
    b.ids = kd_malloc(NK * sizeof(int32_t)), b.tg = kd_malloc((size_t)b.N * sizeof(int32_t));
    size_t full = kd_cpu_distill_full_scratch(NULL, b.N, b.V);
    size_t topk = kd_cpu_distill_topk_scratch(NULL, b.N, b.V, b.K);
    b.ws.bytes = full > topk ? full : topk;
    b.ws.p = kd_malloc(b.ws.bytes);
    srand(1);
    for (size_t i = 0; i < NV; i++) {
        b.s[i] = 4.0f * rand() / (float)RAND_MAX - 2.0f;
        b.t[i] = 4.0f * rand() / (float)RAND_MAX - 2.0f;
    }
    for (int i = 0; i < b.N; i++) {
        b.w[i] = 1.0f, b.tg[i] = i % b.V;
        for (int k = 0; k < b.K; k++) { // K distinct ids per row, decreasing log-probs
            b.ids[(size_t)i * b.K + k] = (int32_t)(((size_t)k * b.V / b.K + (size_t)i) % b.V);
            b.lp[(size_t)i * b.K + k] = -3.0f - 0.1f * (float)k;
        }
    }
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("bench_kd_loss: V=%d N=%d K=%d threads=%s, best of %d\n", b.V, b.N, b.K,
           omp ? omp : "default", REPS);
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = kd_now();
        kd_cpu_cross_entropy(NULL, b.loss, b.grad, b.s, b.tg, b.w, b.N, b.V, 1.0f / b.N);
        double d = kd_now() - t0;
        best = d < best ? d : best;
    }
    report("cross_entropy", &b, best);
    run_full(&b, KD_DIV_FORWARD_KL, "distill_full forward KL");
    run_full(&b, KD_DIV_REVERSE_KL, "distill_full reverse KL");
    run_full(&b, KD_DIV_JSD, "distill_full JSD(0.5)");
    run_topk(&b, KD_TOPK_TAIL, "distill_topk tail");
    run_topk(&b, KD_TOPK_RENORM, "distill_topk renorm");
    free(b.s), free(b.t), free(b.grad), free(b.loss), free(b.w), free(b.lp), free(b.ids),
        free(b.tg);
    free(b.ws.p);
    return 0;
}
