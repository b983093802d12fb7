// bench_kd.c: what distillation costs per training step on the CPU backend. Three step
// kinds on the same student (default: the bench model of docs/performance.md, V=4096,
// d=384, 6 layers, 6/2 heads of 64, SwiGLU 1024, seq 256, batch 8; `--ssm-layers 0,2,4`
// makes those layers Mamba-2):
//   ce     student-only: forward, cross-entropy, backward, AdamW (as bench_train);
//   online teacher forward (a Transformer of the bench config, no grads) + full-vocabulary
//          forward KL (distill_full) + the metrics the kd stage computes (teacher and
//          student CE), then backward and AdamW;
//   topk   the cached top-K teacher (distill_topk over K ids per token, as read from
//          /topk_ids, /topk_logprobs): no teacher forward at all.
// Prints ms/step and tokens/s per kind, and the teacher-forward share of the online step.
// Built with the tests, never run by ctest:
//   OMP_NUM_THREADS=2 ./build/tests/bench_kd [--ssm-layers 0,2,4] [--steps 3] [--topk 16]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model.h"
#include "runtime/train/optim.h"
#include "runtime/base/rng.h"
#include "bench_args.h"

enum { K_CE = 0, K_ONLINE, K_TOPK, N_KINDS };
static const char *KIND_NAME[N_KINDS] = {"ce", "online", "topk"};

int main(int argc, char **argv) {
    bench_args a = bench_args_default(1, 3);
    if (bench_parse_args(argc, argv, "bench_kd", BENCH_FLAG_TOPK, &a)) return 2;
    const kd_ops *o = kd_ops_cpu();
    kd_model_config tcfg, scfg;
    bench_model_config(&a, 0, &tcfg);
    if (bench_model_config(&a, 1, &scfg)) return 2;
    kd_model *st = NULL, *te = NULL;
    kd_error err = {0};
    if (kd_model_create(&st, &scfg, o, 1, &err) || kd_model_create(&te, &tcfg, o, 0, &err))
        return fprintf(stderr, "%s\n", err.msg), 2;
    kd_model_init_random(st, 1234, 0.02f);
    kd_model_init_random(te, 99, 0.02f);
    const kd_param_table *pt = kd_model_table(st);
    kd_optim spec;
    memset(&spec, 0, sizeof spec);
    spec.lr = 1e-4f, spec.beta1 = 0.9f, spec.beta2 = 0.95f, spec.eps = 1e-8f, spec.schedule = KD_SCHED_CONSTANT;
    spec.grad_clip = 1.0f;
    int total_steps = N_KINDS * (a.warmup + a.steps);
    kd_optimizer opt;
    kd_optim_init(&opt, o, pt, &spec, total_steps, 0, pt->total, NULL, 0, NULL);
    kd_optim_use_grads(&opt, kd_model_grads(st)); // one rank: as the trainer does

    // ids (B,T) random tokens, targets the next token; top-K rows (N,K) distinct ids with
    // log-probs of a peaked distribution (what a trained teacher's cache looks like).
    const int B = a.batch, T = a.seq, N = B * T, V = a.vocab, K = a.topk;
    int32_t *ids = kd_malloc((size_t)N * sizeof(int32_t)), *tg = kd_malloc((size_t)N * sizeof(int32_t));
    int32_t *kid = kd_malloc((size_t)N * K * sizeof(int32_t));
    float *klp = kd_malloc((size_t)N * K * sizeof(float)), *w = kd_malloc((size_t)N * sizeof(float));
    kd_rng rng;
    kd_rng_seed_str(&rng, 7, "bench_kd");
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)(kd_rng_uniform(&rng) * V);
        w[i] = 1.0f;
        int32_t first = (int32_t)(kd_rng_uniform(&rng) * V);
        for (int k = 0; k < K; k++) kid[(size_t)i * K + k] = (first + k * 7) % V;  // distinct: gcd(7, V) = 1
        for (int k = 0; k < K; k++) klp[(size_t)i * K + k] = -0.5f - 0.5f * (float)k;
    }
    for (int i = 0; i < N; i++) tg[i] = (i + 1) % T ? ids[i + 1] : -1;
    int32_t *tg_dev = o->mem->alloc(o->ctx, (size_t)N * sizeof(int32_t)), *kid_dev = o->mem->alloc(o->ctx, (size_t)N * K * sizeof(int32_t));
    float *w_dev = o->mem->alloc(o->ctx, (size_t)N * sizeof(float)), *loss_dev = o->mem->alloc(o->ctx, (size_t)N * sizeof(float));
    float *klp_dev = o->mem->alloc(o->ctx, (size_t)N * K * sizeof(float));
    o->mem->upload(o->ctx, tg_dev, tg, (size_t)N * sizeof(int32_t));
    o->mem->upload(o->ctx, w_dev, w, (size_t)N * sizeof(float));
    o->mem->upload(o->ctx, kid_dev, kid, (size_t)N * K * sizeof(int32_t));
    o->mem->upload(o->ctx, klp_dev, klp, (size_t)N * K * sizeof(float));
    size_t ws_full = o->losses->distill_full_scratch(o->ctx, N, V);
    size_t ws_topk = o->losses->distill_topk_scratch(o->ctx, N, V, K);
    kd_scratch ws = {NULL, ws_full > ws_topk ? ws_full : ws_topk};
    ws.p = o->mem->alloc(o->ctx, ws.bytes);

    double t_step[N_KINDS] = {0}, t_teacher = 0, t_loss[N_KINDS] = {0};
    const float dscale = 1.0f / (float)N;
    int s_global = 0;
    for (int kind = 0; kind < N_KINDS; kind++) {
        for (int s = 0; s < a.warmup + a.steps; s++, s_global++) {
            double t0 = kd_now();
            kd_model_zero_grad(st);
            if (kd_model_forward(st, ids, NULL, NULL, B, T, &err)) return fprintf(stderr, "%s\n", err.msg), 3;
            float *S = kd_model_logits(st);
            double t1 = kd_now(), tt = 0;
            if (kind == K_CE) {
                kd_model_ce_loss(st, tg, NULL, dscale, 1);
            } else if (kind == K_ONLINE) {
                double ta = kd_now();
                if (kd_model_forward(te, ids, NULL, NULL, B, T, &err)) return fprintf(stderr, "%s\n", err.msg), 3;
                tt = kd_now() - ta;
                // the kd stage's metrics: teacher CE and student CE (no gradient), then the KL
                o->nn->cross_entropy(o->ctx, loss_dev, NULL, kd_model_logits(te), tg_dev, w_dev, N, V, 0.0f);
                o->nn->cross_entropy(o->ctx, loss_dev, NULL, S, tg_dev, w_dev, N, V, 0.0f);
                o->losses->distill_full(o->ctx, loss_dev, S, S, kd_model_logits(te), w_dev, N, V, KD_DIV_FORWARD_KL, 0.5f, 1.0f,
                                dscale, ws);
            } else {
                o->nn->cross_entropy(o->ctx, loss_dev, NULL, S, tg_dev, w_dev, N, V, 0.0f);
                o->mem->upload(o->ctx, kid_dev, kid, (size_t)N * K * sizeof(int32_t));  // the cache rows arrive per step
                o->mem->upload(o->ctx, klp_dev, klp, (size_t)N * K * sizeof(float));
                o->losses->distill_topk(o->ctx, loss_dev, S, S, kid_dev, klp_dev, w_dev, N, V, K, KD_TOPK_TAIL, 1.0f, dscale, ws);
            }
            double t2 = kd_now();
            kd_model_backward(st);
            double gn = sqrt(kd_optim_shard_sumsq(&opt));
            kd_optim_step(&opt, kd_model_params(st), s_global, gn); // clips to grad_clip 1
            double t3 = kd_now();
            if (s < a.warmup) continue;
            t_step[kind] += t3 - t0, t_loss[kind] += t2 - t1 - tt;
            if (kind == K_ONLINE) t_teacher += tt;
        }
    }
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("bench_kd: V=%d d=%d layers=%d heads=%d/%d hd=%d ffn=%d seq=%d batch=%d student ssm=[%s] "
           "(%.2fM params) teacher attention (%.2fM params) threads=%s steps=%d\n",
           V, a.d_model, a.layers, a.heads, a.kv_heads, a.head_dim, a.ffn, T, B, a.ssm, pt->total / 1e6,
           kd_model_table(te)->total / 1e6, omp ? omp : "default", a.steps);
    for (int kind = 0; kind < N_KINDS; kind++) {
        double ms = t_step[kind] / a.steps * 1e3;
        printf("  %-6s %8.0f ms/step %8.0f tokens/s  (loss head %.0f ms", KIND_NAME[kind], ms,
               N / (t_step[kind] / a.steps), t_loss[kind] / a.steps * 1e3);
        if (kind == K_ONLINE) printf(", teacher forward %.0f ms", t_teacher / a.steps * 1e3);
        if (kind == K_TOPK) printf(", K=%d", K);
        printf(")\n");
    }
    printf("  online / ce = %.2fx, topk / ce = %.2fx\n", t_step[K_ONLINE] / t_step[K_CE],
           t_step[K_TOPK] / t_step[K_CE]);
    kd_optim_free(&opt);
    kd_model_free(st), kd_model_free(te);
    o->mem->free(o->ctx, tg_dev), o->mem->free(o->ctx, kid_dev), o->mem->free(o->ctx, w_dev), o->mem->free(o->ctx, loss_dev), o->mem->free(o->ctx, klp_dev);
    o->mem->free(o->ctx, ws.p);
    free(ids), free(tg), free(kid), free(klp), free(w);
    return 0;
}
