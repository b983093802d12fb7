// model_decode.h: incremental decoding of a kd_model: prefill a prompt into a slot, then
// one token per step for a batch of slots. Attention layers keep a KV cache (keys stored
// after RoPE at their absolute positions), Mamba-2 layers keep (conv_state, ssm_state).
// Called by runtime/model/generate.c. Invariants: slot b holds len[b] tokens, 1 <= len <= max_len;
// a decoder never changes the model; prefills are per slot (B=1), so a slot's state does
// not depend on which other prompts share the batch.
#pragma once
#include <stdint.h>

#include "runtime/model/model.h"

typedef struct kd_decoder kd_decoder;

// Room for max_batch slots of up to max_len tokens (prompt + generated). KD_ERUNTIME if
// the backend has no decoding kernels (kd_ops decode sub-table).
int kd_decoder_create(kd_decoder **out, kd_model *m, int max_batch, int max_len, kd_error *err);
// The same, for speculative decoding: slots also take up to max_step tokens at once
// (kd_decoder_extend), and with history > 0 each slot keeps the recurrent state after each
// of its last `history` positions, so that it can be rewound that far (kd_decoder_rewind).
int kd_decoder_create_ex(kd_decoder **out, kd_model *m, int max_batch, int max_len, int max_step,
                         int history, kd_error *err);
void kd_decoder_free(kd_decoder *d); // NULL is fine

// Fill slot `slot` with a prompt ids (n host tokens, 1 <= n <= max_len), replacing what it
// held. Row `slot` of the logits gets the next-token logits after the prompt. With
// all_logits != NULL it also gets (n,V) host floats: row j = logits after tokens 0..j.
int kd_decoder_prefill(kd_decoder *d, int slot, const int32_t *ids, int n, float *all_logits,
                       kd_error *err);

// Feed ids[b] (host) to slots b = 0..B-1 at position len[b]; rows of logits 0..B-1 get the
// next-token logits. live (B, host) or NULL (all live): a row with live[b] == 0 is computed
// but does not advance (its cache is left unusable until the next prefill of that slot).
// KD_EINPUT when a live slot is full (len == max_len).
int kd_decoder_step(kd_decoder *d, const int32_t *ids, const uint8_t *live, int B, kd_error *err);

// Feeds T tokens to each slot b < B in one pass of the model: ids (B,T) host (slot-major),
// token t at position len[b]+t; slot b then holds len[b]+T tokens. Row t*B+b of the
// logits (token-major) gets the next-token logits after token t of slot b: the computation
// of T kd_decoder_step calls (the same kernels per token; only the projections' sgemm may
// round a row differently for T*B rows than for B, ~1e-7). Needs 1 <= T <= max_step and
// len[b]+T <= max_len.
int kd_decoder_extend(kd_decoder *d, const int32_t *ids, int B, int T, kd_error *err);
// Returns slot `slot` to its first len tokens (1 <= len <= its length): KV caches just
// forget the later positions, recurrent states are restored from the history (exact, no
// recompute). KD_EINTERNAL when the history no longer holds that state.
int kd_decoder_rewind(kd_decoder *d, int slot, int len, kd_error *err);
int kd_decoder_len(const kd_decoder *d, int slot); // tokens slot holds
// Benchmarks only (tests/bench/bench_decode.c): declares that `slot` holds len tokens
// (1..max_len-1) without computing them; its cache keeps whatever it held (zeros after
// create). A step then costs what it costs after a real context of that length (no
// kernel branches on values), but its logits mean nothing.
void kd_decoder_bench_set_len(kd_decoder *d, int slot, int len);

// Backend logits of the last prefill/step/extend rows: (max_batch*max_step, V); copy rows
// with download.
const float *kd_decoder_logits(const kd_decoder *d);
