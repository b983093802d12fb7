// bench_train.c: training-step throughput of kdtrain's model on the CPU backend, on the
// same configurations as tests/bench/torch_llama_bench.py (defaults: V=4096, d=384, 6
// layers, 6 heads / 2 KV heads of 64, SwiGLU 1024, seq 256, batch 8, AdamW, untied head).
// `--ssm-layers 0,2,4` makes those layers Mamba-2 (d_state = head_dim, chunk 64, conv 4).
// One step = zero grads, forward, cross-entropy, backward, the optimizer's work on one rank
// (gradient norm, AdamW with the clipping folded in, on the gradients in place). Prints tokens/s and ms per step
// split forward / backward / optimizer. Built with the tests, never run by ctest:
//   OMP_NUM_THREADS=2 ./build/tests/bench_train [--ssm-layers 0,2,4] [--steps 5]
// `--backend cuda` runs on the CUDA backend (exit 77 when none is usable); the steps are
// then timed to the device's completion (a 4-byte download after each phase waits for the
// stream). `--precision bf16` makes the backend's matmuls bf16 (run.precision; CUDA only,
// exit 77 elsewhere). `--peak-tflops X` is the peak the MFU line divides by (default 67:
// the fp32 non-tensor-core peak of an H100/H200 SXM; give the bf16 tensor-core peak, e.g.
// 989, for a bf16 run). The MFU line comes first, the classic `kdtrain:` line last (ab.sh
// reads the last line). MFU counts
// 6 * (non-embedding parameters + the LM head) per token plus 12 * layers_attn * T * d per
// token for attention scores, the usual estimate (PaLM appendix B).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model.h"
#include "runtime/train/optim.h"
#include "runtime/base/rng.h"
#include "bench_args.h"

// Waits for the backend's queued work (a synchronous 4-byte download).
static void bench_sync(const kd_ops *ops, const float *p) {
    float h;
    ops->mem->download(ops->ctx, &h, p, sizeof h);
}

int main(int argc, char **argv) {
    bench_args a = bench_args_default(2, 5);
    // this bench's own flags (--backend, --peak-tflops); the rest go to bench_parse_args
    const char *backend = "cpu", *precision = "fp32";
    double peak_tflops = 67.0;
    int nargs = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc)
            precision = argv[++i];
        else if (!strcmp(argv[i], "--peak-tflops") && i + 1 < argc)
            peak_tflops = atof(argv[++i]);
        else
            argv[nargs++] = argv[i];
    }
    if (bench_parse_args(nargs, argv, "bench_train [--backend cpu|cuda] [--precision fp32|bf16] [--peak-tflops X]",
                         BENCH_FLAG_CHUNK, &a))
        return 2;
    const kd_ops *ops = kd_ops_cpu();
    if (!strcmp(backend, "cuda")) {
        char why[256] = "";
        if (!(ops = kd_ops_cuda(why, sizeof why)))
            return printf("bench_train: skipped: %s\n", why), 77;
    } else if (strcmp(backend, "cpu") != 0) {
        return fprintf(stderr, "bench_train: --backend: '%s' is not cpu or cuda\n", backend), 2;
    }
    if (strcmp(precision, "fp32") != 0) {
        int bf16 = !strcmp(precision, "bf16");
        if (!bf16) return fprintf(stderr, "bench_train: --precision: '%s' is not fp32 or bf16\n", precision), 2;
        if (!ops->set_precision || ops->set_precision(ops->ctx, KD_PREC_BF16) != 0)
            return printf("bench_train: skipped: the %s backend has no bf16 products\n", ops->name), 77;
    }
    kd_model_config cfg;
    if (bench_model_config(&a, 1, &cfg)) return 2;
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &cfg, ops, 1, &err)) return fprintf(stderr, "%s\n", err.msg), 2;
    kd_model_init_random(m, 1234, 0.02f);
    const kd_param_table *pt = kd_model_table(m);
    kd_optim spec;
    memset(&spec, 0, sizeof spec);
    spec.lr = 1e-4f, spec.beta1 = 0.9f, spec.beta2 = 0.999f, spec.eps = 1e-8f;
    spec.weight_decay = 0.1f, spec.schedule = KD_SCHED_CONSTANT;
    spec.grad_clip = 1.0f; // the trainer's default
    kd_optimizer opt;
    kd_optim_init(&opt, ops, pt, &spec, a.warmup + a.steps, 0, pt->total, NULL, 0, NULL);
    kd_optim_use_grads(&opt, kd_model_grads(m)); // one rank: as the trainer does

    // random tokens, targets = next token (as the torch bench)
    const int B = a.batch, T = a.seq, N = B * T;
    int32_t *ids = kd_malloc((size_t)N * sizeof(int32_t)),
            *tg = kd_malloc((size_t)N * sizeof(int32_t));
    kd_rng rng;
    kd_rng_seed_str(&rng, 7, "bench");
    for (int b = 0; b < B; b++) {
        int32_t prev = (int32_t)(kd_rng_uniform(&rng) * a.vocab);
        for (int t = 0; t < T; t++) {
            int32_t next = (int32_t)(kd_rng_uniform(&rng) * a.vocab);
            ids[b * T + t] = prev, tg[b * T + t] = next, prev = next;
        }
    }

    double tf = 0, tb = 0, to = 0, loss = 0;
    double t_all = 0, t_best = 1e30; // best step: the least disturbed by a shared machine
    for (int s = 0; s < a.warmup + a.steps; s++) {
        double t0 = kd_now();
        kd_model_zero_grad(m);
        if (kd_model_forward(m, ids, NULL, NULL, B, T, &err))
            return fprintf(stderr, "%s\n", err.msg), 3;
        loss = kd_model_ce_loss(m, tg, NULL, 1.0f / N, 1) / N;
        double t1 = kd_now();
        kd_model_backward(m);
        bench_sync(ops, kd_model_grads(m));
        double t2 = kd_now();
        // what the trainer does on one rank: norm, AdamW on the gradients in place
        double gn2 = kd_optim_shard_sumsq(&opt);
        kd_optim_step(&opt, kd_model_params(m), s, sqrt(gn2)); // clips to spec.grad_clip
        bench_sync(ops, kd_model_params(m));
        double t3 = kd_now();
        if (s < a.warmup) continue;
        tf += t1 - t0, tb += t2 - t1, to += t3 - t2, t_all += t3 - t0;
        if (t3 - t0 < t_best) t_best = t3 - t0;
    }
    // MFU: model FLOPs per token / (tokens/s) over the peak
    int n_ssm = kd_model_n_ssm(&cfg);
    double n_flop_params = (double)pt->total - (double)a.vocab * a.d_model; // minus embedding
    double flop_tok = 6.0 * n_flop_params + 12.0 * (a.layers - n_ssm) * (double)T * a.d_model;
    double tps = N * a.steps / t_all;
    printf("bench_train: backend %s params %.1fM (%d of %d layers Mamba-2): %.0f tokens/s, "
           "%.3g model TFLOP/s, MFU %.2f%% of %.0f TFLOP/s\n",
           ops->name, pt->total / 1e6, n_ssm, a.layers, tps, flop_tok * tps / 1e12,
           100.0 * flop_tok * tps / (peak_tflops * 1e12), peak_tflops);
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("kdtrain: %.0f tokens/s (best step %.0f) (V=%d d=%d layers=%d heads=%d/%d hd=%d ffn=%d "
           "seq=%d batch=%d "
           "%s threads=%s ssm=[%s] chunk=%d params=%.2fM steps=%d %.0f ms/step: fwd+loss %.0f "
           "bwd %.0f optim %.0f; last loss %.4f)\n",
           N * a.steps / t_all, N / t_best, a.vocab, a.d_model, a.layers, a.heads, a.kv_heads,
           a.head_dim, a.ffn, T, B, precision, omp ? omp : "default", a.ssm, a.chunk, pt->total / 1e6, a.steps,
           t_all / a.steps * 1e3, tf / a.steps * 1e3, tb / a.steps * 1e3, to / a.steps * 1e3, loss);
    kd_optim_free(&opt);
    kd_model_free(m);
    free(ids), free(tg);
    return 0;
}
