// test_generate_spec.c: speculative decoding (runtime/model/generate_spec.c) and the
// decoder's multi-token extend and rewind (model_decode.c).
// 1. rewind: a decoder that extends by K+1 tokens and rewinds to a kept prefix continues
//    within 1e-5 of one that only ever took the kept tokens one step at a time (not
//    bitwise: sgemm rounds a row differently for 5 rows than for 1, ~1e-7 here), and
//    within 1e-4 of a fresh prefill of the same tokens (the chunked SSD and the blocked
//    attention of a prefill sum in another order: ~1e-6 here). A stale state or cache
//    entry moves logits by > 1e-2.
// 2. greedy: kd_gen_speculative gives token for token what kd_generate gives, for
//    attention, hybrid and pure Mamba-2 targets, 12 prompts of 1..9 tokens, batch 3
//    (continuous batching), K in {1,2,4,8}, an EOS that stops rows early, and three drafts:
//    an unrelated model (most proposals rejected), a 1-layer model, the target itself (all
//    accepted).
// 3. sampling: the marginal of the 2nd and 3rd new tokens over 8000 seeded streams
//    (temperature 1, no top-k/top-p, V = 37) matches the target's exact marginal
//    (enumerated by prefills) by a chi-square test at p < 0.001 (critical value from the
//    Wilson-Hilferty approximation). Rules that drop the correction (always accepting, or
//    resampling from p instead of norm(max(0, p - q))) give chi-square values in the
//    hundreds here; the printed statistic shows the margin.
// Under valgrind (KD_MEMCHECK set by the memcheck tests) the same paths run on less: K in
// {2, 8} and 400 streams, whose statistic is printed but not judged (too few samples).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/generate.h"
#include "runtime/model/model_decode.h"
#include "unit/test_model_util.h"

#define NPROMPT 12
#define TOL 1e-4
#define TOL_STEP 1e-5

static kd_model *make_model(const kd_mixer_kind *layout, int n_layers, uint64_t seed) {
    kd_model_config c = tiny_config(n_layers, 0);
    for (int l = 0; l < n_layers; l++) c.mixer[l] = layout[l];
    kd_model *m = NULL;
    kd_error err = {0};
    if (kd_model_create(&m, &c, kd_ops_cpu(), 0, &err)) {
        fprintf(stderr, "create: %s\n", err.msg);
        exit(1);
    }
    kd_model_init_random(m, seed, 0.3f);
    return m;
}

static void die(const char *what, const kd_error *err) {
    fprintf(stderr, "%s: %s\n", what, err->msg);
    exit(1);
}

static void logits_row(kd_decoder *d, int row, int V, float *out) {
    const kd_ops *o = kd_ops_cpu();
    o->mem->download(o->ctx, out, kd_decoder_logits(d) + (size_t)row * V, sizeof(float) * V);
}

// ----------------------------------------------------------------------------- 1. rewind

// Prompt of 5 tokens, extend by 5 (= K+1 for K = 4), keep `keep` of them, then feed two
// more tokens; compare with stepping and with a fresh prefill.
static int check_rewind(const char *name, kd_model *m, int keep) {
    const int V = kd_model_cfg(m)->vocab_size, P = 5, T = 5;
    kd_error err = {0};
    int32_t seq[16];
    random_tokens(seq, P + T + 2, V, 7 + keep);
    kd_decoder *a = NULL, *b = NULL, *f = NULL;
    if (kd_decoder_create_ex(&a, m, 1, 16, T, 2 * T, &err)) die("create", &err);
    if (kd_decoder_create(&b, m, 1, 16, &err)) die("create", &err);
    if (kd_decoder_create(&f, m, 1, 16, &err)) die("create", &err);
    if (kd_decoder_prefill(a, 0, seq, P, NULL, &err)) die("prefill", &err);
    if (kd_decoder_prefill(b, 0, seq, P, NULL, &err)) die("prefill", &err);
    if (kd_decoder_extend(a, seq + P, 1, T, &err)) die("extend", &err);
    if (kd_decoder_rewind(a, 0, P + keep, &err)) die("rewind", &err);
    for (int i = 0; i < keep; i++)
        if (kd_decoder_step(b, seq + P + i, NULL, 1, &err)) die("step", &err);
    // the two tokens after the kept prefix (different from the forgotten ones)
    int32_t more[2] = {(seq[P + keep] + 1) % V, (seq[P + keep] + 5) % V};
    float la[64], lb[64], lf[64];
    double worst = 0, worst_step = 0;
    for (int i = 0; i < 2; i++) {
        if (kd_decoder_step(a, more + i, NULL, 1, &err)) die("step", &err);
        if (kd_decoder_step(b, more + i, NULL, 1, &err)) die("step", &err);
        int32_t full[16];
        memcpy(full, seq, sizeof(int32_t) * (size_t)(P + keep));
        memcpy(full + P + keep, more, sizeof(int32_t) * (size_t)(i + 1));
        if (kd_decoder_prefill(f, 0, full, P + keep + i + 1, NULL, &err)) die("prefill", &err);
        logits_row(a, 0, V, la), logits_row(b, 0, V, lb), logits_row(f, 0, V, lf);
        for (int v = 0; v < V; v++) {
            worst_step = fmax(worst_step, fabs((double)la[v] - lb[v]));
            worst = fmax(worst, fabs((double)la[v] - lf[v]));
        }
    }
    int fail = worst_step > TOL_STEP || worst > TOL;
    printf("rewind %-9s keep %d/%d: max |logit diff| vs stepping %.3g (tol %.0e), vs fresh "
           "prefill %.3g (tol %.0e) %s\n",
           name, keep, T, worst_step, TOL_STEP, worst, TOL, fail ? "FAIL" : "ok");
    kd_decoder_free(a), kd_decoder_free(b), kd_decoder_free(f);
    return fail;
}

// ----------------------------------------------------------------------------- 2. greedy

typedef struct {
    int32_t prompt[NPROMPT][9];
    kd_gen_seq s[NPROMPT];
} prompts;

static void make_prompts(prompts *P, int V) {
    memset(P, 0, sizeof *P);
    for (int i = 0; i < NPROMPT; i++) {
        int n = 1 + (i * 5) % 9;
        random_tokens(P->prompt[i], n, V, 300 + i);
        P->s[i].prompt = P->prompt[i], P->s[i].n_prompt = n, P->s[i].index = (uint64_t)i;
    }
}

static void clear_prompts(prompts *P) {
    for (int i = 0; i < NPROMPT; i++) kd_gen_seq_clear(&P->s[i]);
}

// A token that plain greedy decoding generates in about half of the rows: as EOS, it
// stops some rows early and not others.
static int pick_eos(kd_model *m, const kd_gen_params *p) {
    const int V = kd_model_cfg(m)->vocab_size;
    prompts P;
    make_prompts(&P, V);
    kd_error err = {0};
    if (kd_generate(m, P.s, NPROMPT, p, 0, &err)) die("generate", &err);
    int rows[64] = {0}, best = 0;
    for (int v = 0; v < V; v++)
        for (int i = 0; i < NPROMPT; i++)
            for (int j = 1; j < P.s[i].n_gen; j++)
                if (P.s[i].tokens[P.s[i].n_prompt + j] == v) {
                    rows[v]++;
                    break;
                }
    for (int v = 1; v < V; v++)
        if (abs(2 * rows[v] - NPROMPT) < abs(2 * rows[best] - NPROMPT)) best = v;
    clear_prompts(&P);
    return best;
}

static int check_greedy(const char *name, kd_model *target, kd_model *draft, const char *dname) {
    const int V = kd_model_cfg(target)->vocab_size, Ks[4] = {1, 2, 4, 8};
    const int memcheck = getenv("KD_MEMCHECK") != NULL;
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.greedy = 1, p.max_new_tokens = 20, p.batch = 3;
    p.eos_id = pick_eos(target, &p);
    kd_error err = {0};
    prompts ref, spec;
    make_prompts(&ref, V);
    if (kd_generate(target, ref.s, NPROMPT, &p, 0, &err)) die("generate", &err);
    int early = 0, fails = 0;
    for (int i = 0; i < NPROMPT; i++) early += ref.s[i].stop_eos;
    for (int k = 0; k < 4; k++) {
        if (memcheck && Ks[k] != 2 && Ks[k] != 8) continue;
        make_prompts(&spec, V);
        kd_spec_stats st;
        if (kd_gen_speculative(target, draft, Ks[k], spec.s, NPROMPT, &p, &st, &err))
            die("speculative", &err);
        int diff = 0;
        for (int i = 0; i < NPROMPT; i++) {
            const kd_gen_seq *a = &ref.s[i], *b = &spec.s[i];
            int same = a->n_gen == b->n_gen && a->stop_eos == b->stop_eos &&
                       !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (a->n_prompt + a->n_gen));
            if (!same && !diff)
                fprintf(stderr, "  prompt %d: plain %d tokens (eos %d), speculative %d (eos %d)\n",
                        i, a->n_gen, a->stop_eos, b->n_gen, b->stop_eos);
            diff += !same;
        }
        printf("greedy %-9s draft %-8s K=%d: %d/%d prompts differ, %d stopped at EOS, "
               "acceptance %ld/%ld, %ld rounds for %ld tokens %s\n",
               name, dname, Ks[k], diff, NPROMPT, early, st.accepted, st.proposed, st.rounds,
               st.tokens, diff ? "FAIL" : "ok");
        fails += diff != 0;
        clear_prompts(&spec);
    }
    if (early == 0 || early == NPROMPT) {
        printf("greedy %s: %d of %d rows stopped early, expected some but not all FAIL\n", name,
               early, NPROMPT);
        fails++;
    }
    clear_prompts(&ref);
    return fails;
}

// ----------------------------------------------------------------------------- 3. sampling

#define NSAMP 8000
#define PLEN 4

// Exact marginals of new tokens 2 and 3 under the target (temperature 1): m2 (V), m3 (V).
static void exact_marginals(kd_model *m, const int32_t *prompt, double *m2, double *m3) {
    const int V = kd_model_cfg(m)->vocab_size;
    kd_error err = {0};
    kd_decoder *d = NULL;
    if (kd_decoder_create(&d, m, 1, PLEN + 3, &err)) die("create", &err);
    float l[64];
    double p1[64], p2[64], p3[64];
    int32_t seq[PLEN + 3];
    memcpy(seq, prompt, sizeof(int32_t) * PLEN);
    memset(m2, 0, sizeof(double) * V), memset(m3, 0, sizeof(double) * V);
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.top_p = 1.0f;
    int idx[64];
    double prob[64];
#define DIST(out)                                                                                  \
    do {                                                                                           \
        logits_row(d, 0, V, l);                                                                    \
        int nc = kd_gen_candidates(l, V, &p, idx, prob);                                           \
        memset(out, 0, sizeof out);                                                                \
        for (int j = 0; j < nc; j++) out[idx[j]] = prob[j];                                        \
    } while (0)
    if (kd_decoder_prefill(d, 0, seq, PLEN, NULL, &err)) die("prefill", &err);
    DIST(p1);
    for (int a = 0; a < V; a++) {
        seq[PLEN] = a;
        if (kd_decoder_prefill(d, 0, seq, PLEN + 1, NULL, &err)) die("prefill", &err);
        DIST(p2);
        for (int b = 0; b < V; b++) {
            m2[b] += p1[a] * p2[b];
            seq[PLEN + 1] = b;
            if (kd_decoder_prefill(d, 0, seq, PLEN + 2, NULL, &err)) die("prefill", &err);
            DIST(p3);
            for (int c = 0; c < V; c++) m3[c] += p1[a] * p2[b] * p3[c];
        }
    }
#undef DIST
    kd_decoder_free(d);
}

// Pearson chi-square of counts against expected probabilities, cells with expectation < 5
// merged into one; df = cells - 1.
static double chi_square(const int *count, const double *prob, int V, int n, int *df) {
    double chi = 0, rest_e = 0, rest_o = 0;
    int cells = 0;
    for (int v = 0; v < V; v++) {
        double e = prob[v] * n;
        if (e < 5) {
            rest_e += e, rest_o += count[v];
            continue;
        }
        chi += (count[v] - e) * (count[v] - e) / e;
        cells++;
    }
    if (rest_e > 0) chi += (rest_o - rest_e) * (rest_o - rest_e) / rest_e, cells++;
    *df = cells - 1;
    return chi;
}

// Wilson-Hilferty: the chi-square quantile at upper tail 0.001 (z = 3.090).
static double chi_crit(int df) {
    double k = df, a = 2.0 / (9.0 * k), z = 3.090;
    return k * pow(1 - a + z * sqrt(a), 3);
}

static int check_sampling(kd_model *target, kd_model *draft, int K) {
    const int V = kd_model_cfg(target)->vocab_size;
    int32_t prompt[PLEN];
    random_tokens(prompt, PLEN, V, 99);
    double m2[64], m3[64];
    exact_marginals(target, prompt, m2, m3);
    const int memcheck = getenv("KD_MEMCHECK") != NULL, nsamp = memcheck ? 400 : NSAMP;
    kd_gen_seq *s = calloc(nsamp, sizeof *s);
    for (int i = 0; i < nsamp; i++) s[i].prompt = prompt, s[i].n_prompt = PLEN, s[i].index = i;
    kd_gen_params p;
    kd_gen_params_default(&p);
    p.temperature = 1.0f, p.top_p = 1.0f, p.max_new_tokens = 3, p.batch = 16, p.seed = 5;
    kd_error err = {0};
    kd_spec_stats st;
    if (kd_gen_speculative(target, draft, K, s, nsamp, &p, &st, &err)) die("speculative", &err);
    int c2[64] = {0}, c3[64] = {0}, df2, df3;
    for (int i = 0; i < nsamp; i++) {
        c2[s[i].tokens[PLEN + 1]]++, c3[s[i].tokens[PLEN + 2]]++;
        kd_gen_seq_clear(&s[i]);
    }
    free(s);
    double x2 = chi_square(c2, m2, V, nsamp, &df2), x3 = chi_square(c3, m3, V, nsamp, &df3);
    int fail = !memcheck && (x2 > chi_crit(df2) || x3 > chi_crit(df3));
    printf("sampling K=%d: token 2 chi2 %.1f (df %d, limit %.1f), token 3 chi2 %.1f (df %d, "
           "limit %.1f), acceptance %ld/%ld %s\n",
           K, x2, df2, chi_crit(df2), x3, df3, chi_crit(df3), st.accepted, st.proposed,
           fail ? "FAIL" : memcheck ? "(memcheck run: not judged)" : "ok");
    return fail;
}

int main(void) {
    const kd_mixer_kind attn[3] = {KD_MIXER_ATTN, KD_MIXER_ATTN, KD_MIXER_ATTN};
    const kd_mixer_kind mamba[3] = {KD_MIXER_MAMBA2, KD_MIXER_MAMBA2, KD_MIXER_MAMBA2};
    const kd_mixer_kind hybrid[4] = {KD_MIXER_MAMBA2, KD_MIXER_ATTN, KD_MIXER_MAMBA2,
                                     KD_MIXER_ATTN};
    struct {
        const char *name;
        const kd_mixer_kind *layout;
        int n;
    } targets[3] = {{"attention", attn, 3}, {"hybrid", hybrid, 4}, {"mamba2", mamba, 3}};
    kd_model *other = make_model(hybrid, 2, 777), *small = make_model(mamba, 1, 42);
    int bad = 0;
    for (int t = 0; t < 3; t++) {
        kd_model *m = make_model(targets[t].layout, targets[t].n, 42);
        for (int keep = 1; keep <= 5; keep += 2) bad += check_rewind(targets[t].name, m, keep);
        bad += check_greedy(targets[t].name, m, other, "other");
        bad += check_greedy(targets[t].name, m, small, "1-layer");
        bad += check_greedy(targets[t].name, m, m, "self");
        kd_model_free(m);
    }
    kd_model *hyb = make_model(hybrid, 4, 42);
    bad += check_sampling(hyb, other, 2);
    kd_model_free(hyb);
    kd_model_free(other);
    kd_model_free(small);
    if (bad) return 1;
    printf("generate_speculative: OK\n");
    return 0;
}
