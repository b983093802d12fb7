// model_decode.h: incremental decoding of a kd_model: prefill a prompt into a slot, then
// one token per step for a batch of slots. Attention layers keep a KV cache (keys stored
// after RoPE at their absolute positions), Mamba-2 layers keep (conv_state, ssm_state).
// Called by runtime/generate.c. Invariants: slot b holds len[b] tokens, 1 <= len <= max_len;
// a decoder never changes the model; prefills are per slot (B=1), so a slot's state does
// not depend on which other prompts share the batch.
#pragma once
#include <stdint.h>

#include "runtime/model.h"

typedef struct kd_decoder kd_decoder;

// Room for max_batch slots of up to max_len tokens (prompt + generated). KD_ERUNTIME if
// the backend lacks a decoding op (attention_decode, mamba2_step) the model needs.
int kd_decoder_create(kd_decoder **out, kd_model *m, int max_batch, int max_len, kd_error *err);
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

// Backend (max_batch, V) logits of the last prefill/step rows; copy rows with download.
const float *kd_decoder_logits(const kd_decoder *d);
// Tokens held by a slot.
int kd_decoder_len(const kd_decoder *d, int slot);
int kd_decoder_max_len(const kd_decoder *d);
int kd_decoder_max_batch(const kd_decoder *d);
