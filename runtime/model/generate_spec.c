// generate_spec.c: speculative decoding (generate.h, docs/generate.md). Each round, for
// every busy slot: the draft takes its pending tokens and proposes d1..dK one step at a
// time (distributions q1..qK), the target runs [cur, d1..dK] through one kd_decoder_extend
// (distributions p0..pK), the host keeps d1..da by the rejection rule and adds one token x
// (from norm(max(0, p_a - q_{a+1})) after a rejection, from p_K when all are kept), and
// both decoders rewind to the last kept token (KV caches by length, Mamba-2 states from
// the decoders' history). Slots whose prompt is done take the next prompt at once.
// Invariant between rounds: the target holds every kept token but the last (cur); the
// draft holds every kept token but its pending ones ([x], or [dK, x] after a full accept).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/generate.h"
#include "runtime/model/model_decode.h"

#define KD_SPEC_MAX_DRAFT 64

typedef struct {
    kd_decoder *td, *dd; // target and draft decoders (same slots)
    const kd_gen_params *p;
    kd_gen_seq *seqs;
    int n, next, K, V, nb;
    int *seq_of;   // (nb) slot -> prompt, -1: idle
    kd_rng *rng;   // (nb) the stream of the prompt in each slot
    int32_t *pend; // (nb,2) the draft's pending tokens
    int *npend;    // (nb)
    int32_t *prop; // (nb,K) proposals d1..dK
    double *q;     // (nb,K,V) the draft distributions they were drawn from
    float *lg;     // host (nb*(K+1), V) logits of the last extend
    int32_t *ids;  // (nb,K+1) extend input
    int *len0;     // (nb) lengths before an extend
    int *idx;      // (V) sampling scratch
    double *prob;  // (V)
    double *pd;    // (V) the target's distribution
    kd_spec_stats st;
} spec;

static int is_greedy(const kd_gen_params *p) {
    return p->greedy || p->temperature <= 0.0f;
}

static int argmax(const float *x, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// The sampling distribution of logits as a dense (V) array (greedy: one-hot).
static void dense_dist(spec *S, const float *logits, double *out) {
    memset(out, 0, sizeof(double) * (size_t)S->V);
    int n = kd_gen_candidates(logits, S->V, S->p, S->idx, S->prob);
    for (int j = 0; j < n; j++) out[S->idx[j]] = S->prob[j];
}

// One draw from a dense distribution of total mass z (> 0).
static int32_t draw(const double *dist, int V, double z, kd_rng *rng) {
    double u = kd_rng_uniform(rng) * z, cum = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (dist[i] <= 0) continue;
        cum += dist[i];
        last = i;
        if (u < cum) return i;
    }
    return last; // u within rounding of z
}

// Downloads the logits of the last T-token extend of d (T*nb rows, token-major).
static void fetch_logits(spec *S, kd_decoder *d, kd_model *m, int T) {
    const kd_ops *o = kd_model_ops(m);
    o->mem->download(o->ctx, S->lg, kd_decoder_logits(d), sizeof(float) * (size_t)T * S->nb * S->V);
}

// Feeds ids (nb,T) to every slot of d in one extend, then returns each slot to its old
// length plus keep[b] tokens (idle slots keep 0: their rows are computed and forgotten).
static int extend_keep(spec *S, kd_decoder *d, int T, const int *keep, kd_error *err) {
    for (int b = 0; b < S->nb; b++) S->len0[b] = kd_decoder_len(d, b);
    int rc = kd_decoder_extend(d, S->ids, S->nb, T, err);
    for (int b = 0; b < S->nb && !rc; b++) rc = kd_decoder_rewind(d, b, S->len0[b] + keep[b], err);
    return rc;
}

// ----------------------------------------------------------------------------- admission

// Appends token t to the prompt in slot b; 1 when its sequence is done.
static int commit(spec *S, int b, int32_t t) {
    kd_gen_seq *s = &S->seqs[S->seq_of[b]];
    s->tokens[s->n_prompt + s->n_gen++] = t;
    S->st.tokens++;
    return kd_gen_stops(S->p, t, s->n_gen, &s->stop_eos);
}

// Gives slot b the next prompt that is not done after its first token (which comes from
// the target's prefill logits, as in kd_generate), or leaves it idle.
static int admit(spec *S, kd_model *tm, int b, kd_error *err) {
    const kd_ops *o = kd_model_ops(tm);
    S->seq_of[b] = -1;
    while (S->next < S->n) {
        kd_gen_seq *s = &S->seqs[S->next];
        S->seq_of[b] = S->next++;
        kd_gen_seq_clear(s);
        s->tokens = kd_malloc(sizeof(int32_t) * ((size_t)s->n_prompt + S->p->max_new_tokens));
        memcpy(s->tokens, s->prompt, sizeof(int32_t) * (size_t)s->n_prompt);
        char key[48];
        snprintf(key, sizeof key, "gen/%llu", (unsigned long long)s->index);
        kd_rng_seed_str(&S->rng[b], S->p->seed, key);
        int rc = kd_decoder_prefill(S->td, b, s->prompt, s->n_prompt, NULL, err);
        if (!rc) rc = kd_decoder_prefill(S->dd, b, s->prompt, s->n_prompt, NULL, err);
        if (rc) return rc;
        o->mem->download(o->ctx, S->lg, kd_decoder_logits(S->td) + (size_t)b * S->V,
                         sizeof(float) * (size_t)S->V);
        kd_gen_mask_logits(S->lg, S->V, S->p, 0);
        int32_t t = kd_gen_sample(S->lg, S->V, S->p, &S->rng[b], S->idx, S->prob);
        S->pend[2 * b] = t, S->npend[b] = 1;
        if (!commit(S, b, t)) return KD_OK;
        S->seq_of[b] = -1;
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- a round

// The draft takes its pending tokens and proposes d1..dK per busy slot.
static int propose(spec *S, kd_model *dm, kd_error *err) {
    const int nb = S->nb, K = S->K, V = S->V;
    int T = 1, keep[nb];
    for (int b = 0; b < nb; b++)
        if (S->seq_of[b] >= 0 && S->npend[b] > T) T = S->npend[b];
    for (int b = 0; b < nb; b++) {
        int busy = S->seq_of[b] >= 0;
        keep[b] = busy ? S->npend[b] : 0;
        for (int t = 0; t < T; t++) // padded with the last pending token, then forgotten
            S->ids[b * T + t] = busy ? S->pend[2 * b + (t < keep[b] ? t : keep[b] - 1)] : 0;
    }
    int rc = extend_keep(S, S->dd, T, keep, err);
    for (int i = 0; i < K && !rc; i++) {
        fetch_logits(S, S->dd, dm, i == 0 ? T : 1);
        for (int b = 0; b < nb; b++) {
            keep[b] = 0;
            S->ids[b] = 0;
            if (S->seq_of[b] < 0) continue;
            const kd_gen_seq *s = &S->seqs[S->seq_of[b]];
            int row = i == 0 ? (S->npend[b] - 1) * nb + b : b;
            float *l = S->lg + (size_t)row * V;
            kd_gen_mask_logits(l, V, S->p, s->n_gen + i);
            double *q = S->q + ((size_t)b * K + i) * V;
            dense_dist(S, l, q);
            int32_t d = is_greedy(S->p) ? argmax(l, V) : draw(q, V, 1.0, &S->rng[b]);
            S->prop[b * K + i] = d;
            S->ids[b] = d, keep[b] = 1;
        }
        if (i + 1 < K) rc = extend_keep(S, S->dd, 1, keep, err);
    }
    return rc;
}

// The rejection rule on slot b: how many proposals it keeps (a) and the token after them.
static int accept(spec *S, int b, int Kb, int32_t *x) {
    const int nb = S->nb, K = S->K, V = S->V;
    const kd_gen_seq *s = &S->seqs[S->seq_of[b]];
    for (int i = 0; i <= Kb; i++) {
        float *l = S->lg + ((size_t)i * nb + b) * V; // p_i: after cur, d1..di
        kd_gen_mask_logits(l, V, S->p, s->n_gen + i);
        if (is_greedy(S->p)) { // one-hot p and q: keep d while it is the argmax
            *x = argmax(l, V);
            if (i == Kb || S->prop[b * K + i] != *x) return i;
            continue;
        }
        dense_dist(S, l, S->pd);
        if (i == Kb) {
            *x = draw(S->pd, V, 1.0, &S->rng[b]);
            return i;
        }
        int32_t d = S->prop[b * K + i];
        const double *q = S->q + ((size_t)b * K + i) * V;
        if (kd_rng_uniform(&S->rng[b]) * q[d] < S->pd[d]) continue; // u < min(1, p/q)
        double z = 0;
        for (int v = 0; v < V; v++) {
            S->pd[v] = S->pd[v] > q[v] ? S->pd[v] - q[v] : 0.0;
            z += S->pd[v];
        }
        if (!(z > 0)) dense_dist(S, l, S->pd), z = 1.0; // p == q: nothing to correct
        *x = draw(S->pd, V, z, &S->rng[b]);
        return i;
    }
    return Kb; // not reached
}

// One round: proposals, one target extend, acceptance, rewinds, refills.
static int round_once(spec *S, kd_model *tm, kd_model *dm, kd_error *err) {
    const int nb = S->nb, K = S->K;
    int rc = propose(S, dm, err), dlen[nb], keep[nb];
    for (int b = 0; b < nb; b++) {
        int busy = S->seq_of[b] >= 0;
        dlen[b] = kd_decoder_len(S->dd, b);
        keep[b] = K + 1; // rewound below, once the accepted count is known
        for (int t = 0; t <= K; t++) {
            const kd_gen_seq *s = busy ? &S->seqs[S->seq_of[b]] : NULL;
            S->ids[b * (K + 1) + t] = !busy ? 0
                                      : t   ? S->prop[b * K + t - 1]
                                            : s->tokens[s->n_prompt + s->n_gen - 1];
        }
    }
    if (!rc) rc = extend_keep(S, S->td, K + 1, keep, err);
    if (rc) return rc;
    fetch_logits(S, S->td, tm, K + 1);
    S->st.rounds++;
    for (int b = 0; b < nb && !rc; b++) {
        int tlen = kd_decoder_len(S->td, b) - (K + 1);
        if (S->seq_of[b] < 0) {
            rc = kd_decoder_rewind(S->td, b, tlen, err);
            continue;
        }
        kd_gen_seq *s = &S->seqs[S->seq_of[b]];
        int left = S->p->max_new_tokens - s->n_gen, Kb = K < left - 1 ? K : left - 1;
        int32_t x = 0;
        int a = accept(S, b, Kb, &x), done = 0;
        S->st.proposed += Kb, S->st.accepted += a;
        for (int i = 0; i < a && !done; i++) done = commit(S, b, S->prop[b * K + i]);
        if (!done) done = commit(S, b, x);
        rc = kd_decoder_rewind(S->td, b, tlen + a + 1, err);
        if (!rc) rc = kd_decoder_rewind(S->dd, b, dlen[b] - (K - 1) + (a < K ? a : K - 1), err);
        S->npend[b] = a == K ? 2 : 1;
        S->pend[2 * b] = a == K ? S->prop[b * K + K - 1] : x;
        S->pend[2 * b + 1] = x;
        if (!rc && done) rc = admit(S, tm, b, err);
    }
    return rc;
}

// ----------------------------------------------------------------------------- entry

static int check_spec(kd_model *tm, kd_model *dm, int K, kd_gen_seq *seqs, int n,
                      const kd_gen_params *p, int *max_prompt, kd_error *err) {
    int rc = kd_gen_params_check(p, err);
    if (rc) return rc;
    if (K < 1 || K > KD_SPEC_MAX_DRAFT)
        return kd_fail(err, KD_EINPUT, "draft_tokens: expected 1..%d, found %d", KD_SPEC_MAX_DRAFT,
                       K);
    if (kd_model_cfg(dm)->vocab_size != kd_model_cfg(tm)->vocab_size)
        return kd_fail(err, KD_EINPUT,
                       "draft model: vocab_size %d, expected the target's %d (the draft must "
                       "share the target's vocabulary)",
                       kd_model_cfg(dm)->vocab_size, kd_model_cfg(tm)->vocab_size);
    *max_prompt = 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i].n_prompt < 1)
            return kd_fail(err, KD_EINPUT, "prompt %llu is empty, expected at least one token",
                           (unsigned long long)seqs[i].index);
        if (seqs[i].n_prompt > *max_prompt) *max_prompt = seqs[i].n_prompt;
    }
    return KD_OK;
}

static void spec_free(spec *S) {
    kd_decoder_free(S->td);
    kd_decoder_free(S->dd);
    free(S->seq_of), free(S->rng), free(S->pend), free(S->npend), free(S->prop);
    free(S->q), free(S->lg), free(S->ids), free(S->len0), free(S->idx), free(S->prob);
    free(S->pd);
}

int kd_gen_speculative(kd_model *tm, kd_model *dm, int K, kd_gen_seq *seqs, int n,
                       const kd_gen_params *p, kd_spec_stats *stats, kd_error *err) {
    int max_prompt = 0, rc = check_spec(tm, dm, K, seqs, n, p, &max_prompt, err);
    if (stats) memset(stats, 0, sizeof *stats);
    if (rc || n <= 0) return rc;
    spec S = {0};
    S.p = p, S.seqs = seqs, S.n = n, S.K = K, S.V = kd_model_cfg(tm)->vocab_size;
    S.nb = p->batch < n ? p->batch : n;
    // room for every kept token plus one extend past them; the history reaches back over
    // the K-1 draft steps and the K+1 tokens of the target's extend
    int max_len = max_prompt + p->max_new_tokens + K + 2, hist = 2 * K + 4;
    rc = kd_decoder_create_ex(&S.td, tm, S.nb, max_len, K + 1, hist, err);
    if (!rc) rc = kd_decoder_create_ex(&S.dd, dm, S.nb, max_len, 2, hist, err);
    size_t nb = (size_t)S.nb, V = (size_t)S.V;
    S.seq_of = kd_malloc(sizeof(int) * nb);
    S.rng = kd_malloc(sizeof(kd_rng) * nb);
    S.pend = kd_malloc(sizeof(int32_t) * 2 * nb);
    S.npend = kd_calloc(nb, sizeof(int));
    S.prop = kd_malloc(sizeof(int32_t) * nb * K);
    S.q = kd_malloc(sizeof(double) * nb * K * V);
    S.lg = kd_malloc(sizeof(float) * nb * (K + 1) * V);
    S.ids = kd_malloc(sizeof(int32_t) * nb * (K + 1));
    S.len0 = kd_malloc(sizeof(int) * nb);
    S.idx = kd_malloc(sizeof(int) * V);
    S.prob = kd_malloc(sizeof(double) * V);
    S.pd = kd_malloc(sizeof(double) * V);
    for (int b = 0; b < S.nb && !rc; b++) rc = admit(&S, tm, b, err);
    for (;;) {
        int busy = 0;
        for (int b = 0; b < S.nb; b++) busy |= S.seq_of[b] >= 0;
        if (rc || !busy) break;
        rc = round_once(&S, tm, dm, err);
    }
    if (stats) *stats = S.st;
    spec_free(&S);
    return rc;
}
