// topk.h: the cached teacher of a kd dataset: /topk_ids uint32 [n,K] and /topk_logprobs
// float32 [n,K] beside /tokens (row j = the teacher's top-K next-token distribution after
// token j, log-softmax at temperature 1; docs/formats.md). Read by the kd stage so it can
// distil without the teacher in memory. One reader per thread.
#pragma once
#include <stdint.h>

#include "runtime/common.h"

typedef struct kd_topk kd_topk;

// 1 if path has the two datasets (quick probe, no validation), else 0.
int kd_topk_present(const char *path);
// Opens and checks shapes against n_tokens; K of the cache in *k.
int kd_topk_open(kd_topk **out, const char *path, uint64_t n_tokens, int *k, kd_error *err);
// Rows [start, start+n) into ids (n,K) and lp (n,K).
int kd_topk_read(kd_topk *t, uint64_t start, uint64_t n, int32_t *ids, float *lp, kd_error *err);
void kd_topk_close(kd_topk *t);
