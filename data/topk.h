// topk.h: the cached teacher of a kd dataset: /topk_ids uint32 [n,K] and /topk_logprobs
// float32 [n,K] beside /tokens (row j = the teacher's top-K next-token distribution after
// token j, log-softmax at temperature 1), plus /prompt_index uint64 [docs] (the prompt each
// document came from); docs/formats.md. Written by pseudo-labelling (stages/pseudo_label.c,
// through kd_topk_writer: topk_writer.c), read by the kd stage so it can distil without
// the teacher in memory. One reader or writer per thread.
#pragma once
#include <stdint.h>

#include "runtime/base/common.h"

typedef struct kd_topk kd_topk;

// 1 if path has the two datasets (quick probe, no validation), else 0.
int kd_topk_present(const char *path);
// Opens and checks shapes against n_tokens; K of the cache in *k.
int kd_topk_open(kd_topk **out, const char *path, uint64_t n_tokens, int *k, kd_error *err);
// Rows [start, start+n) into ids (n,K) and lp (n,K).
int kd_topk_read(kd_topk *t, uint64_t start, uint64_t n, int32_t *ids, float *lp, kd_error *err);
void kd_topk_close(kd_topk *t);

// ---------------------------------------------------------------------------- writer
// Adds /prompt_index (n_docs) and, with k > 0, /topk_ids and /topk_logprobs (n_tokens, k)
// to a kd dataset that kd_dataset_writer has committed (the file is reopened read-write).
// Documents are added in order, as many per call as the caller has. Like data/h5util.h,
// these return 0 or -1 and never print: the caller names the file in its own message.
typedef struct kd_topk_writer kd_topk_writer;

int kd_topk_writer_open(kd_topk_writer **out, const char *path, uint64_t n_docs,
                        uint64_t n_tokens, int k);
// The next n_docs documents: their prompt indices (n_docs) and their rows of top-K ids and
// log-probs (n_rows, k; NULL when k is 0). -1 past the sizes given to open, or on I/O.
int kd_topk_writer_add(kd_topk_writer *w, const uint64_t *prompt_index, uint64_t n_docs,
                       const int32_t *ids, const float *lp, uint64_t n_rows);
// Closes the file; -1 if it failed or if fewer documents or rows than announced were
// added. Always frees w (NULL is fine: -1).
int kd_topk_writer_close(kd_topk_writer *w);
// All of a file's /prompt_index and (k > 0) top-K arrays, in new buffers the caller frees:
// n_docs indices, n_rows rows of k. -1 (nothing allocated) when one is missing or the two
// top-K arrays disagree in size.
int kd_topk_read_all(const char *path, int k, uint64_t **prompt_index, uint64_t *n_docs,
                     int32_t **ids, float **lp, uint64_t *n_rows);
