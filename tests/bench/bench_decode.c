// bench_decode.c: decode speed (new tokens/s) of a Transformer, a 50% hybrid and a 100%
// Mamba-2 model of the same size, after a context of 1k, 4k and 16k tokens, at batch 1 and
// 8; then speculative vs plain greedy decoding of the hybrid at batch 1 with its
// acceptance rate. Random weights (speed does not depend on them). The context is not
// computed: each slot is prefilled with one token and then declared to hold `ctx` tokens
// (kd_decoder_bench_set_len; a step's cost depends on the length only, and computing 16k
// tokens of context per slot took longer than all the timed steps on the shared 2-core
// machine). Only the decode steps are timed. No pass/fail; not run by ctest by default
// (docs/performance.md "Decoding").
//   OMP_NUM_THREADS=1 ./build/tests/bench_decode
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/generate.h"
#include "runtime/model/model_decode.h"

#define CHUNK 128 // token ids staged per slot
#define STEPS 32

static kd_model *make(int n_ssm_every, int layers, uint64_t seed) {
    kd_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 4096, c.d_model = 256, c.n_layers = layers, c.n_heads = 4, c.n_kv_heads = 2;
    c.head_dim = 64, c.ffn_dim = 768, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    c.d_state = 64, c.chunk_size = 64, c.conv_width = 4;
    // n_ssm_every: 0 none, 1 every layer, 2 every other layer (odd ones)
    for (int l = 0; l < layers; l++)
        c.mixer[l] =
            n_ssm_every && (n_ssm_every == 1 || l % 2 == 1) ? KD_MIXER_MAMBA2 : KD_MIXER_ATTN;
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &c, kd_ops_cpu(), 0, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        exit(1);
    }
    kd_model_init_random(m, seed, 0.02f);
    return m;
}

static void check(int rc, const kd_error *err) {
    if (rc) {
        fprintf(stderr, "bench_decode: %s\n", err->msg);
        exit(1);
    }
}

// tokens/s of STEPS decode steps of B slots after a context of ctx tokens.
static double decode_rate(kd_model *m, int ctx, int B) {
    kd_error err = {0};
    kd_decoder *d = NULL;
    check(kd_decoder_create(&d, m, B, ctx + STEPS + 1, &err), &err);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * CHUNK);
    for (int i = 0; i < B * CHUNK; i++) ids[i] = (int32_t)((i * 7919) % 4096);
    for (int b = 0; b < B; b++) check(kd_decoder_prefill(d, b, ids, 1, NULL, &err), &err);
    for (int b = 0; b < B; b++) kd_decoder_bench_set_len(d, b, ctx);
    double t0 = kd_now();
    for (int s = 0; s < STEPS; s++) check(kd_decoder_step(d, ids + s, NULL, B, &err), &err);
    double dt = kd_now() - t0;
    kd_decoder_free(d);
    free(ids);
    return (double)STEPS * B / dt;
}

// Plain vs speculative greedy decoding of target at batch 1: prompt of 256 tokens, 128 new.
static void spec_row(kd_model *target, kd_model *draft, const char *dname, int K) {
    int32_t prompt[256];
    for (int i = 0; i < 256; i++) prompt[i] = (int32_t)((i * 131) % 4096);
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.greedy = 1, p.max_new_tokens = 128, p.batch = 1, p.ignore_eos = 1;
    kd_gen_seq s = {prompt, 256, 0, NULL, 0, 0, NULL, NULL};
    kd_error err = {0};
    double t0 = kd_now();
    check(kd_generate(target, &s, 1, &p, 0, &err), &err);
    double plain = kd_now() - t0;
    kd_gen_seq_clear(&s);
    kd_spec_stats st;
    t0 = kd_now();
    check(kd_gen_speculative(target, draft, K, &s, 1, &p, &st, &err), &err);
    double spec = kd_now() - t0;
    kd_gen_seq_clear(&s);
    printf("| %-22s | %d | %7.1f | %7.1f | %5.2fx | %5.1f%% |\n", dname, K, 128 / plain, 128 / spec,
           plain / spec, st.proposed ? 100.0 * st.accepted / st.proposed : 0.0);
}

int main(void) {
    const char *names[3] = {"Transformer", "hybrid 50%", "Mamba-2 100%"};
    const int every[3] = {0, 2, 1}, ctxs[3] = {1024, 4096, 16384};
    printf("model: V 4096, d_model 256, 4 layers, 4/2 heads of 64, SwiGLU 768, d_state 64\n");
    printf("| model | context | batch 1 tok/s | batch 8 tok/s |\n|---|---|---|---|\n");
    for (int k = 0; k < 3; k++) {
        kd_model *m = make(every[k], 4, 1);
        for (int c = 0; c < 3; c++) {
            double r1 = decode_rate(m, ctxs[c], 1);
            double r8 = decode_rate(m, ctxs[c], 8);
            printf("| %s | %d | %.1f | %.1f |\n", names[k], ctxs[c], r1, r8);
            fflush(stdout);
        }
        kd_model_free(m);
    }
    printf("\nspeculative vs plain greedy, hybrid 50%% target, batch 1, prompt 256, 128 new\n");
    printf("| draft | K | plain tok/s | spec tok/s | speed-up | acceptance |\n"
           "|---|---|---|---|---|---|\n");
    kd_model *target = make(2, 4, 1), *small = make(1, 1, 2);
    spec_row(target, target, "itself (100% accepted)", 4);
    spec_row(target, small, "1-layer Mamba-2, random", 4);
    kd_model_free(target);
    kd_model_free(small);
    return 0;
}
