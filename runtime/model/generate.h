// generate.h: batched autoregressive generation on top of the decoder (model_decode.h):
// sampling (greedy, temperature, top-k, top-p), stop at EOS or max_new_tokens, and the
// teacher's top-K log-probs per position for cached-teacher KD. Called by `kdtrain
// generate` (generate_cli.c) and by pseudo-label generation (stages/pseudo_label.c).
// Invariant: prompt i draws from its own stream kd_rng_seed_str(seed, "gen/<index[i]>"),
// one uniform per sampled token, so its completion does not depend on batch composition.
#pragma once
#include <stdint.h>

#include "runtime/model/model.h"
#include "runtime/base/rng.h"

#define KD_GEN_MAX_STOPS 8

typedef struct {
    int max_new_tokens; // tokens generated at most per prompt (>= 1)
    float temperature;  // 0: greedy
    int top_k;          // keep the k most likely tokens (0: off)
    float top_p;        // keep the smallest most-likely set of mass >= top_p (1: off)
    int greedy;         // 1: argmax regardless of temperature
    uint64_t seed;
    int eos_id;         // generation of a prompt stops after this token (-1: never)
    int n_more_stops;                     // further ids that stop it too (a dataset's
    int32_t more_stops[KD_GEN_MAX_STOPS]; //   stop_ids besides eos, e.g. <|eot_id|>)
    int batch;          // prompts decoded together (>= 1)
    int min_new_tokens; // no stop id can be sampled before this many new tokens (0: off)
    int ignore_eos;     // 1: stop ids do not end a sequence (each runs to max_new_tokens)
} kd_gen_params;

// max_new_tokens 64, temperature 0.7, top_k 0, top_p 0.95, greedy 0, seed 1234, eos -1,
// no more stops, batch 8, min_new_tokens 0, ignore_eos 0.
void kd_gen_params_default(kd_gen_params *p);
// KD_EINPUT naming the bad field.
int kd_gen_params_check(const kd_gen_params *p, kd_error *err);
// 1 if generating token t ends a completion (t is eos_id or one of more_stops).
int kd_gen_is_stop(const kd_gen_params *p, int32_t t);
// Make eos_id and more_stops the n ids of stop (eos first; n 0: never stop early).
void kd_gen_set_stops(kd_gen_params *p, const int32_t *stop, int n);

// The tokens sampling may pick from logits (V): after temperature, top-k and top-p, in
// decreasing probability (equal logits: lower id first), probabilities renormalised to
// sum 1. idx (V) and prob (V) get the candidates; returns their count (>= 1). Greedy
// (greedy or temperature 0) gives the single argmax.
int kd_gen_candidates(const float *logits, int V, const kd_gen_params *p, int *idx, double *prob);
// One token: greedy takes the argmax and draws nothing; otherwise exactly one uniform of
// rng picks among kd_gen_candidates. idx/prob are scratch of V entries.
int32_t kd_gen_sample(const float *logits, int V, const kd_gen_params *p, kd_rng *rng, int *idx,
                      double *prob);
// The K largest log-softmax values of logits (V) (temperature 1) and their ids, largest
// first, equal values lower id first.
void kd_gen_topk_logprobs(const float *logits, int V, int K, int32_t *ids, float *logprobs);

// One prompt in, prompt + completion out.
typedef struct {
    const int32_t *prompt; // (n_prompt) in
    int n_prompt;          // >= 1
    uint64_t index;        // seeds the prompt's stream ("gen/<index>")
    int32_t *tokens;       // out (n_prompt + n_gen): prompt then completion (owned)
    int n_gen;             // out
    int stop_eos;          // out: 1 if the completion ends with eos_id or another stop id
    int32_t *topk_ids;     // out with top_k_logits K > 0: (n_prompt + n_gen, K); row j is
    float *topk_logprobs;  //   the model's distribution after tokens 0..j
} kd_gen_seq;

// Generates for seqs[0..n) on p->batch decoder slots (continuous batching: a slot whose
// sequence stops takes the next prompt). top_k_logits K > 0 fills the top-K arrays (costs
// one extra step per sequence for its last row). Frees nothing.
int kd_generate(kd_model *m, kd_gen_seq *seqs, int n, const kd_gen_params *p, int top_k_logits,
                kd_error *err);
void kd_gen_seq_clear(kd_gen_seq *s); // frees the out arrays

// The logits rules that do not depend on sampling: before min_new_tokens new tokens
// (n_gen of them so far), EOS and the other stop ids get -inf. logits (V) host, changed in
// place.
void kd_gen_mask_logits(float *logits, int V, const kd_gen_params *p, int n_gen);
// 1 when token t, the n_gen-th new token (1-based), ends its sequence.
int kd_gen_stops(const kd_gen_params *p, int32_t t, int n_gen, int *stop_eos);

// ----------------------------------------------------------------------------- speculative
// Speculative decoding (generate_spec.c, docs/generate.md): a draft model proposes K tokens
// per round, the target checks all of them in one forward (kd_decoder_extend) and keeps
// the longest prefix that the rejection rule accepts plus one token of its own, then both
// decoders rewind to the last kept token. Greedy output equals kd_generate's token for
// token; sampled output follows the target's distribution (not kd_generate's draws).
typedef struct {
    long rounds;   // target forwards after the prefills
    long proposed; // draft tokens offered to the target
    long accepted; // of which accepted
    long tokens;   // new tokens in all
} kd_spec_stats;

// Like kd_generate (no top-K logits) with draft proposing `draft_tokens` (1..64) tokens a
// round. The draft must have the target's vocabulary (KD_EINPUT otherwise). stats may be
// NULL.
int kd_gen_speculative(kd_model *target, kd_model *draft, int draft_tokens, kd_gen_seq *seqs, int n,
                       const kd_gen_params *p, kd_spec_stats *stats, kd_error *err);
