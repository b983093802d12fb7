// generate.c: sampling and the batched generation loop (generate.h). Sampling runs on the
// host over one downloaded row of logits per sequence; probabilities are in double.
#include "runtime/model/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model/model_decode.h"
#include "runtime/base/signals.h"

void kd_gen_params_default(kd_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_new_tokens = 64;
    p->temperature = 0.7f;
    p->top_k = 0;
    p->top_p = 0.95f;
    p->seed = 1234;
    p->eos_id = -1;
    p->batch = 8;
}

int kd_gen_params_check(const kd_gen_params *p, kd_error *err) {
    if (p->max_new_tokens < 1)
        return kd_fail(err, KD_EINPUT, "max_new_tokens: expected >= 1, found %d",
                       p->max_new_tokens);
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return kd_fail(err, KD_EINPUT, "temperature: expected a finite number >= 0, found %g",
                       (double)p->temperature);
    if (p->top_k < 0)
        return kd_fail(err, KD_EINPUT, "top_k: expected >= 0 (0 = off), found %d", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return kd_fail(err, KD_EINPUT, "top_p: expected a number in (0, 1], found %g",
                       (double)p->top_p);
    if (p->batch < 1) return kd_fail(err, KD_EINPUT, "batch: expected >= 1, found %d", p->batch);
    if (p->min_new_tokens < 0)
        return kd_fail(err, KD_EINPUT, "min_new_tokens: expected >= 0, found %d",
                       p->min_new_tokens);
    return KD_OK;
}

int kd_gen_is_stop(const kd_gen_params *p, int32_t t) {
    if (p->eos_id >= 0 && t == p->eos_id) return 1;
    for (int i = 0; i < p->n_more_stops; i++)
        if (t == p->more_stops[i]) return 1;
    return 0;
}

void kd_gen_set_stops(kd_gen_params *p, const int32_t *stop, int n) {
    p->eos_id = n > 0 ? stop[0] : -1;
    p->n_more_stops = 0;
    for (int i = 1; i < n && p->n_more_stops < KD_GEN_MAX_STOPS; i++)
        p->more_stops[p->n_more_stops++] = stop[i];
}

// ----------------------------------------------------------------------------- sampling

typedef struct {
    float v;
    int i;
} ranked;

// Larger value first; equal values: lower id first (a total order, so qsort is stable).
static int by_rank(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int argmax(const float *x, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int is_greedy(const kd_gen_params *p) {
    return p->greedy || p->temperature <= 0.0f;
}

int kd_gen_candidates(const float *logits, int V, const kd_gen_params *p, int *idx, double *prob) {
    if (is_greedy(p)) {
        idx[0] = argmax(logits, V);
        prob[0] = 1.0;
        return 1;
    }
    ranked *r = kd_malloc(sizeof(ranked) * (size_t)V);
    for (int i = 0; i < V; i++) r[i].v = logits[i], r[i].i = i;
    qsort(r, (size_t)V, sizeof *r, by_rank);
    int n = p->top_k > 0 && p->top_k < V ? p->top_k : V;
    double inv_t = 1.0 / (double)p->temperature, z = 0;
    for (int j = 0; j < n; j++) {
        idx[j] = r[j].i;
        prob[j] = exp(((double)r[j].v - (double)r[0].v) * inv_t); // <= 1, first is 1
        z += prob[j];
    }
    free(r);
    // nucleus: the shortest prefix whose mass reaches top_p (at least one token)
    if (p->top_p < 1.0f) {
        double cum = 0, want = (double)p->top_p * z;
        int keep = n;
        for (int j = 0; j < n; j++) {
            cum += prob[j];
            if (cum >= want) {
                keep = j + 1;
                break;
            }
        }
        n = keep;
        z = cum < want ? z : cum;
    }
    for (int j = 0; j < n; j++) prob[j] /= z;
    return n;
}

int32_t kd_gen_sample(const float *logits, int V, const kd_gen_params *p, kd_rng *rng, int *idx,
                      double *prob) {
    if (is_greedy(p)) return argmax(logits, V);
    int n = kd_gen_candidates(logits, V, p, idx, prob);
    double u = kd_rng_uniform(rng), cum = 0;
    for (int j = 0; j < n; j++) {
        cum += prob[j];
        if (u < cum) return idx[j];
    }
    return idx[n - 1]; // u within rounding of 1
}

void kd_gen_topk_logprobs(const float *logits, int V, int K, int32_t *ids, float *logprobs) {
    double mx = logits[argmax(logits, V)], z = 0;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    double lse = mx + log(z);
    ranked *r = kd_malloc(sizeof(ranked) * (size_t)V);
    for (int i = 0; i < V; i++) r[i].v = logits[i], r[i].i = i;
    qsort(r, (size_t)V, sizeof *r, by_rank);
    for (int k = 0; k < K; k++) {
        int j = k < V ? k : V - 1; // K > V: repeat the least likely token
        ids[k] = r[j].i;
        logprobs[k] = (float)((double)r[j].v - lse);
    }
    free(r);
}

void kd_gen_mask_logits(float *logits, int V, const kd_gen_params *p, int n_gen) {
    if (n_gen >= p->min_new_tokens) return;
    if (p->eos_id >= 0 && p->eos_id < V) logits[p->eos_id] = -INFINITY;
    for (int i = 0; i < p->n_more_stops; i++)
        if (p->more_stops[i] >= 0 && p->more_stops[i] < V) logits[p->more_stops[i]] = -INFINITY;
}

int kd_gen_stops(const kd_gen_params *p, int32_t t, int n_gen, int *stop_eos) {
    *stop_eos = !p->ignore_eos && kd_gen_is_stop(p, t);
    return *stop_eos || n_gen >= p->max_new_tokens;
}

// ----------------------------------------------------------------------------- generation

void kd_gen_seq_clear(kd_gen_seq *s) {
    free(s->tokens);
    free(s->topk_ids);
    free(s->topk_logprobs);
    s->tokens = s->topk_ids = NULL;
    s->topk_logprobs = NULL;
    s->n_gen = 0;
    s->stop_eos = 0;
}

// Slot state: sampling, then (with top-K) feeding its last token once more so that the
// distribution after the whole sequence is recorded, then done (free for the next prompt).
enum { ROW_SAMPLE = 0, ROW_FEED_LAST, ROW_DONE };

static void record_topk(kd_gen_seq *s, int row, const float *logits, int V, int K) {
    kd_gen_topk_logprobs(logits, V, K, s->topk_ids + (size_t)row * K,
                         s->topk_logprobs + (size_t)row * K);
}

// Work shared by the slots of one kd_generate call.
typedef struct {
    kd_decoder *d;
    const kd_gen_params *p;
    int V, K;
    float *all;  // (max prompt, V) prompt logits when K > 0
    kd_rng *rng; // (nb) the stream of the prompt in each slot
} gen_work;

// Puts prompt s into decoder slot b: fresh outputs, its own random stream, prefill (which
// leaves its next-token logits in the decoder's row b) and the prompt's top-K rows.
static int admit(gen_work *g, int b, kd_gen_seq *s, kd_error *err) {
    size_t cap = (size_t)s->n_prompt + g->p->max_new_tokens;
    int K = g->K, V = g->V;
    kd_gen_seq_clear(s);
    s->tokens = kd_malloc(sizeof(int32_t) * cap);
    memcpy(s->tokens, s->prompt, sizeof(int32_t) * (size_t)s->n_prompt);
    if (K > 0) {
        s->topk_ids = kd_malloc(sizeof(int32_t) * cap * K);
        s->topk_logprobs = kd_malloc(sizeof(float) * cap * K);
        g->all = kd_realloc(g->all, sizeof(float) * (size_t)s->n_prompt * V);
    }
    char key[48];
    snprintf(key, sizeof key, "gen/%llu", (unsigned long long)s->index);
    kd_rng_seed_str(&g->rng[b], g->p->seed, key);
    int rc = kd_decoder_prefill(g->d, b, s->prompt, s->n_prompt, K > 0 ? g->all : NULL, err);
    for (int j = 0; j + 1 < s->n_prompt && K > 0 && !rc; j++)
        record_topk(s, j, g->all + (size_t)j * V, V, K);
    return rc;
}

// Continuous batching over nb decoder slots: a slot whose sequence stops takes the next
// prompt at once (prefilled after the step, so its state is never stepped before its first
// token is sampled), so the batch stays full until the prompts run out. Per-prompt streams
// and per-prompt prefill keep each completion independent of which prompts share a step.
static int decode_all(kd_decoder *d, kd_model *m, kd_gen_seq *seqs, int n, int nb,
                      const kd_gen_params *p, int K, kd_error *err) {
    const kd_ops *o = kd_model_ops(m);
    gen_work g = {d, p, kd_model_cfg(m)->vocab_size, K, NULL, NULL};
    const int V = g.V;
    float *lg = kd_malloc(sizeof(float) * (size_t)nb * V);
    int *idx = kd_malloc(sizeof(int) * (size_t)V);
    double *prob = kd_malloc(sizeof(double) * (size_t)V);
    g.rng = kd_malloc(sizeof(kd_rng) * (size_t)nb);
    int *state = kd_calloc((size_t)nb, sizeof(int));
    int *seq_of = kd_malloc(sizeof(int) * (size_t)nb); // slot -> prompt, -1: idle for good
    int32_t *feed = kd_malloc(sizeof(int32_t) * (size_t)nb);
    uint8_t *live = kd_malloc((size_t)nb);
    int rc = KD_OK, next = 0;
    for (int b = 0; b < nb && !rc; b++) {
        seq_of[b] = next++;
        rc = admit(&g, b, &seqs[seq_of[b]], err);
    }
    while (!rc) {
        o->mem->download(o->ctx, lg, kd_decoder_logits(d), sizeof(float) * (size_t)nb * V);
        int any = 0;
        for (int b = 0; b < nb; b++) {
            live[b] = 0;
            if (seq_of[b] < 0) continue; // feed[b] keeps the slot's last token
            kd_gen_seq *s = &seqs[seq_of[b]];
            int n_fed = s->n_prompt + s->n_gen;
            if (state[b] == ROW_SAMPLE && K > 0)
                record_topk(s, n_fed - 1, lg + (size_t)b * V, V, K);
            if (state[b] == ROW_FEED_LAST) {
                record_topk(s, n_fed - 1, lg + (size_t)b * V, V, K);
                state[b] = ROW_DONE;
            }
            feed[b] = s->tokens[n_fed - 1];
            if (state[b] != ROW_SAMPLE) continue;
            kd_gen_mask_logits(lg + (size_t)b * V, V, p, s->n_gen);
            int32_t t = kd_gen_sample(lg + (size_t)b * V, V, p, &g.rng[b], idx, prob);
            s->tokens[n_fed] = t;
            s->n_gen++;
            if (kd_gen_stops(p, t, s->n_gen, &s->stop_eos)) {
                state[b] = K > 0 ? ROW_FEED_LAST : ROW_DONE;
                if (state[b] == ROW_DONE) continue;
            }
            feed[b] = t;
            live[b] = any = 1;
        }
        if (any && kd_signals_pending()) // a stop signal (kdtrain run) ends generation within a step
            rc = kd_fail(err, KD_EREQUEUE, "generation stopped by a signal; run the same command again to resume");
        if (any && !rc) rc = kd_decoder_step(d, feed, live, nb, err);
        // refill the slots whose sequence is done (their rows were idle in that step)
        int admitted = 0;
        for (int b = 0; b < nb && !rc; b++) {
            if (seq_of[b] < 0 || state[b] != ROW_DONE) continue;
            seq_of[b] = next < n ? next++ : -1;
            if (seq_of[b] < 0) continue;
            state[b] = ROW_SAMPLE;
            rc = admit(&g, b, &seqs[seq_of[b]], err);
            admitted = 1;
        }
        if (!any && !admitted) break;
    }
    free(lg);
    free(g.all);
    free(idx);
    free(prob);
    free(g.rng);
    free(state);
    free(seq_of);
    free(feed);
    free(live);
    return rc;
}

int kd_generate(kd_model *m, kd_gen_seq *seqs, int n, const kd_gen_params *p, int top_k_logits,
                kd_error *err) {
    int rc = kd_gen_params_check(p, err);
    if (rc) return rc;
    if (n <= 0) return KD_OK;
    int V = kd_model_cfg(m)->vocab_size;
    if (top_k_logits < 0 || top_k_logits > V) // more than V would repeat ids in a row
        return kd_fail(err, KD_EINPUT, "top_k_logits: expected 0..vocab_size (%d), found %d", V,
                       top_k_logits);
    int max_prompt = 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i].n_prompt < 1)
            return kd_fail(err, KD_EINPUT, "prompt %llu is empty, expected at least one token",
                           (unsigned long long)seqs[i].index);
        if (seqs[i].n_prompt > max_prompt) max_prompt = seqs[i].n_prompt;
    }
    int nb = p->batch < n ? p->batch : n;
    kd_decoder *d = NULL;
    if ((rc = kd_decoder_create(&d, m, nb, max_prompt + p->max_new_tokens, err))) return rc;
    rc = decode_all(d, m, seqs, n, nb, p, top_k_logits, err);
    kd_decoder_free(d);
    return rc;
}
