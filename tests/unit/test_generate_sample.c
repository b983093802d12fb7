// test_generate_sample.c: sampling and the generation loop (runtime/model/generate.c).
//  - top-k: 20000 draws never leave the k most likely tokens and match the renormalised
//    softmax within 0.02 per token (5 standard deviations of a frequency at 20000 draws);
//  - top-p: the candidate set is the shortest most-likely prefix whose mass (recomputed
//    here in double) reaches p, its probabilities are the renormalised softmax (1e-12:
//    both in double), and draws match them within 0.02;
//  - temperature -> 0 equals greedy: at T = 1e-5 every draw is the argmax wherever the top-2
//    gap exceeds 1e-3 (the runner-up then has probability < e^-100);
//  - seeded reproducibility: the same seed gives the same tokens whether prompts run
//    together, alone, or in another order and batch size; another seed changes them;
//  - EOS stops a sequence right after the EOS token;
//  - top-K log-probs of every position equal a full forward's log-softmax within 1e-4
//    (same reasoning as test_generate_decode: decode vs full forward rounding ~1e-6).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/generate.h"
#include "unit/test_model_util.h"
#include "check.h"

#define V 50
#define DRAWS 20000

static void random_logits(float *x, int n, uint64_t seed, float scale) {
    kd_rng r;
    kd_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) x[i] = scale * (float)kd_rng_normal(&r);
}

// ids sorted by logit, descending (lower id first on ties)
static void rank_ids(const float *x, int *order) {
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++)
            if (x[order[j]] > x[order[i]] || (x[order[j]] == x[order[i]] && order[j] < order[i])) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
}

static void test_top_k(void) {
    float x[V];
    random_logits(x, V, 7, 1.0f);
    int order[V], idx[V], counts[V] = {0};
    double prob[V];
    rank_ids(x, order);
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.top_p = 1.0f, p.top_k = 5;
    kd_rng rng;
    kd_rng_seed(&rng, 1);
    for (int i = 0; i < DRAWS; i++) {
        int t = kd_gen_sample(x, V, &p, &rng, idx, prob);
        int rank = 0;
        while (order[rank] != t) rank++;
        CHECK(rank < p.top_k, "top-k %d picked token %d of rank %d", p.top_k, t, rank);
        counts[t]++;
    }
    double z = 0, worst = 0;
    for (int r = 0; r < p.top_k; r++) z += exp(x[order[r]]);
    for (int r = 0; r < p.top_k; r++) {
        double want = exp(x[order[r]]) / z, got = (double)counts[order[r]] / DRAWS;
        worst = fmax(worst, fabs(want - got));
    }
    CHECK(worst < 0.02, "top-k frequencies off by %.4f (tol 0.02)", worst);
    printf("top_k: %d draws inside the top %d, max frequency error %.4f\n", DRAWS, p.top_k, worst);
}

static void test_top_p(void) {
    float x[V];
    random_logits(x, V, 9, 2.0f);
    int order[V], idx[V], counts[V] = {0};
    double prob[V];
    rank_ids(x, order);
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 0.8f, p.top_p = 0.7f, p.top_k = 0;
    // reference nucleus in double
    double full[V], z = 0;
    for (int r = 0; r < V; r++) z += full[r] = exp(x[order[r]] / (double)p.temperature);
    int keep = 0;
    double mass = 0;
    while (mass < 0.7 * z) mass += full[keep++];
    int n = kd_gen_candidates(x, V, &p, idx, prob);
    CHECK(n == keep, "top-p kept %d tokens, expected %d", n, keep);
    double before_last = (mass - full[keep - 1]) / z;
    CHECK(mass / z >= 0.7 && before_last < 0.7, "nucleus mass %.4f (without its last %.4f), p 0.7",
          mass / z, before_last);
    for (int j = 0; j < n && j < keep; j++) {
        CHECK(idx[j] == order[j], "candidate %d is %d, expected %d", j, idx[j], order[j]);
        CHECK(fabs(prob[j] - full[j] / mass) < 1e-12, "candidate %d prob %.6f, expected %.6f", j,
              prob[j], full[j] / mass);
    }
    kd_rng rng;
    kd_rng_seed(&rng, 2);
    for (int i = 0; i < DRAWS; i++) counts[kd_gen_sample(x, V, &p, &rng, idx, prob)]++;
    double worst = 0, outside = 0;
    for (int r = 0; r < V; r++) {
        double want = r < keep ? full[r] / mass : 0.0, got = (double)counts[order[r]] / DRAWS;
        worst = fmax(worst, fabs(want - got));
        if (r >= keep) outside += got;
    }
    CHECK(outside == 0, "top-p drew outside the nucleus with frequency %.4f", outside);
    CHECK(worst < 0.02, "top-p frequencies off by %.4f (tol 0.02)", worst);
    printf("top_p: nucleus of %d tokens, mass %.4f >= 0.7 > %.4f, max frequency error %.4f\n", keep,
           mass / z, before_last, worst);
}

static void test_cold_is_greedy(void) {
    kd_gen_params cold, greedy;
    kd_gen_params_default(&cold);
    cold.temperature = 1e-5f, cold.top_p = 1.0f;
    kd_gen_params_default(&greedy);
    greedy.greedy = 1;
    int idx[V], checked = 0;
    double prob[V];
    kd_rng rng;
    kd_rng_seed(&rng, 3);
    for (int row = 0; row < 2000; row++) {
        float x[V];
        random_logits(x, V, 1000 + row, 1.0f);
        int order[V];
        rank_ids(x, order);
        if (x[order[0]] - x[order[1]] <= 1e-3f) continue;
        int a = kd_gen_sample(x, V, &cold, &rng, idx, prob),
            g = kd_gen_sample(x, V, &greedy, &rng, idx, prob);
        CHECK(a == g && g == order[0], "row %d: T=1e-5 drew %d, greedy %d, argmax %d", row, a, g,
              order[0]);
        checked++;
    }
    CHECK(checked > 1500, "only %d rows had a top-2 gap > 1e-3", checked);
    printf("temperature 1e-5 == greedy on %d rows\n", checked);
}

// ----------------------------------------------------------------------------- with a model

#define NP 5
static const int plen[NP] = {1, 4, 2, 7, 3};
static int32_t prompts[NP][8];

static void setup_seqs(kd_gen_seq *s, const int *which, int n) {
    memset(s, 0, sizeof(kd_gen_seq) * (size_t)n);
    for (int i = 0; i < n; i++) {
        s[i].prompt = prompts[which[i]];
        s[i].n_prompt = plen[which[i]];
        s[i].index = (uint64_t)which[i];
    }
}

static void gen_or_die(kd_model *m, kd_gen_seq *s, int n, const kd_gen_params *p, int K) {
    kd_error err = {0};
    if (kd_generate(m, s, n, p, K, &err)) {
        fprintf(stderr, "kd_generate: %s\n", err.msg);
        exit(1);
    }
}

static int same_seq(const kd_gen_seq *a, const kd_gen_seq *b) {
    return a->n_gen == b->n_gen &&
           !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)(a->n_prompt + a->n_gen));
}

static void test_reproducible(kd_model *m) {
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.top_p = 1.0f, p.max_new_tokens = 10, p.seed = 77, p.batch = 5;
    int all[NP] = {0, 1, 2, 3, 4}, rev[NP] = {4, 3, 2, 1, 0};
    kd_gen_seq a[NP], b[NP], c[NP], e[NP];
    setup_seqs(a, all, NP);
    gen_or_die(m, a, NP, &p, 0);
    setup_seqs(b, rev, NP);
    p.batch = 2;
    gen_or_die(m, b, NP, &p, 0);
    for (int i = 0; i < NP; i++) {
        setup_seqs(&c[i], &all[i], 1);
        p.batch = 1;
        gen_or_die(m, &c[i], 1, &p, 0);
    }
    int differs = 0;
    for (int i = 0; i < NP; i++) {
        CHECK(same_seq(&a[i], &b[NP - 1 - i]), "prompt %d: batch 5 vs reversed batch 2 differ", i);
        CHECK(same_seq(&a[i], &c[i]), "prompt %d: batch 5 vs alone differ", i);
        CHECK(a[i].n_gen == 10, "prompt %d: %d new tokens, expected 10 (no eos)", i, a[i].n_gen);
    }
    setup_seqs(e, all, NP);
    p.seed = 78, p.batch = 5;
    gen_or_die(m, e, NP, &p, 0);
    for (int i = 0; i < NP; i++) differs += !same_seq(&a[i], &e[i]);
    CHECK(differs > 0, "seed 77 and 78 gave identical completions for all %d prompts", NP);
    printf("reproducible: same tokens for batch 5, reversed batch 2 and alone; seed 78 changes %d "
           "of %d\n",
           differs, NP);
    for (int i = 0; i < NP; i++) {
        kd_gen_seq_clear(&a[i]), kd_gen_seq_clear(&b[i]), kd_gen_seq_clear(&c[i]),
            kd_gen_seq_clear(&e[i]);
    }
}

static void test_eos(kd_model *m) {
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.greedy = 1, p.max_new_tokens = 8;
    int which[1] = {3};
    kd_gen_seq s, t;
    setup_seqs(&s, which, 1);
    gen_or_die(m, &s, 1, &p, 0);
    const int32_t *gen = s.tokens + s.n_prompt;
    // stop at the first occurrence of the third generated token
    int stop = 0;
    while (gen[stop] != gen[2]) stop++;
    p.eos_id = gen[2];
    setup_seqs(&t, which, 1);
    gen_or_die(m, &t, 1, &p, 0);
    CHECK(t.n_gen == stop + 1 && t.stop_eos == 1,
          "eos %d: %d new tokens (stop_eos %d), expected %d", p.eos_id, t.n_gen, t.stop_eos,
          stop + 1);
    CHECK(!memcmp(t.tokens, s.tokens, sizeof(int32_t) * (size_t)(t.n_prompt + t.n_gen)),
          "eos run is not a prefix of the run without eos");
    printf("eos: stopped after %d tokens on eos %d\n", t.n_gen, p.eos_id);
    kd_gen_seq_clear(&s);
    kd_gen_seq_clear(&t);
}

static void test_topk_logprobs(kd_model *m) {
    const int K = 4, Vm = kd_model_cfg(m)->vocab_size;
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.max_new_tokens = 6, p.seed = 5, p.batch = 3;
    int which[3] = {0, 3, 1};
    kd_gen_seq s[3];
    setup_seqs(s, which, 3);
    gen_or_die(m, s, 3, &p, K);
    kd_error err = {0};
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        int L = s[i].n_prompt + s[i].n_gen;
        if (kd_model_forward(m, s[i].tokens, NULL, NULL, 1, L, &err)) {
            fprintf(stderr, "forward: %s\n", err.msg);
            exit(1);
        }
        float *lg = malloc(sizeof(float) * (size_t)L * Vm);
        kd_ops_cpu()->mem->download(kd_ops_cpu()->ctx, lg, kd_model_logits(m),
                                    sizeof(float) * (size_t)L * Vm);
        for (int j = 0; j < L; j++) {
            int32_t ids[4];
            float lp[4];
            kd_gen_topk_logprobs(lg + (size_t)j * Vm, Vm, K, ids, lp);
            for (int k = 0; k < K; k++) {
                double d = fabs((double)lp[k] - s[i].topk_logprobs[(size_t)j * K + k]);
                worst = fmax(worst, d);
                CHECK(ids[k] == s[i].topk_ids[(size_t)j * K + k] && d < 1e-4,
                      "seq %d row %d k %d: id %d lp %.6f, full forward id %d lp %.6f", i, j, k,
                      s[i].topk_ids[(size_t)j * K + k], s[i].topk_logprobs[(size_t)j * K + k],
                      ids[k], lp[k]);
            }
        }
        free(lg);
        kd_gen_seq_clear(&s[i]);
    }
    printf("top-%d log-probs of every row match the full forward, max diff %.3g (tol 1e-4)\n", K,
           worst);
}

// Continuous batching: with an EOS that stops some prompts early, a slot that frees up takes
// the next prompt mid-run. Tokens and top-K rows must equal each prompt decoded alone.
static void test_refill(kd_model *m) {
    const int K = 3;
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.top_p = 1.0f, p.max_new_tokens = 10, p.seed = 77, p.batch = NP;
    int all[NP] = {0, 1, 2, 3, 4}, rev[NP] = {4, 3, 2, 1, 0};
    kd_gen_seq a[NP], b[NP], c[NP];
    setup_seqs(a, all, NP);
    gen_or_die(m, a, NP, &p, 0);
    p.eos_id = a[1].tokens[a[1].n_prompt + 1]; // stops prompt 1 after 2 tokens at the latest
    setup_seqs(b, rev, NP);
    p.batch = 2;
    gen_or_die(m, b, NP, &p, K);
    int early = 0, full = 0;
    double worst = 0;
    for (int i = 0; i < NP; i++) {
        setup_seqs(&c[i], &all[i], 1);
        p.batch = 1;
        gen_or_die(m, &c[i], 1, &p, K);
        const kd_gen_seq *x = &b[NP - 1 - i], *y = &c[i];
        early += y->n_gen < p.max_new_tokens, full += y->n_gen == p.max_new_tokens;
        CHECK(same_seq(x, y), "prompt %d: batch 2 with refill (%d new) vs alone (%d new) differ", i,
              x->n_gen, y->n_gen);
        size_t rows = (size_t)(y->n_prompt + y->n_gen) * K;
        for (size_t r = 0; same_seq(x, y) && r < rows; r++) {
            double d = fabs((double)x->topk_logprobs[r] - y->topk_logprobs[r]);
            worst = fmax(worst, d);
            CHECK(x->topk_ids[r] == y->topk_ids[r] && d < 1e-5,
                  "prompt %d top-K entry %zu: id %d lp %.7f vs alone id %d lp %.7f", i, r,
                  x->topk_ids[r], x->topk_logprobs[r], y->topk_ids[r], y->topk_logprobs[r]);
        }
    }
    CHECK(early > 0 && full > 0,
          "eos %d should stop some prompts early and not others: %d early, %d full", p.eos_id,
          early, full);
    printf("refill: %d prompts stopped early, %d ran full; batch 2 equals alone (top-K max diff "
           "%.3g, tol 1e-5)\n",
           early, full, worst);
    for (int i = 0; i < NP; i++)
        kd_gen_seq_clear(&a[i]), kd_gen_seq_clear(&b[i]), kd_gen_seq_clear(&c[i]);
}

int main(void) {
    test_top_k();
    test_top_p();
    test_cold_is_greedy();
    kd_model_config c = tiny_config(4, 0);
    c.mixer[1] = KD_MIXER_MAMBA2;
    c.mixer[2] = KD_MIXER_MAMBA2;
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &c, kd_ops_cpu(), 0, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    kd_model_init_random(m, 3, 0.3f);
    for (int i = 0; i < NP; i++) random_tokens(prompts[i], plen[i], c.vocab_size, 500 + i);
    test_reproducible(m);
    test_eos(m);
    test_topk_logprobs(m);
    test_refill(m);
    kd_model_free(m);
    return check_done("generate_sampling");
}
