// pseudo_label.h: teacher pseudo-labels: prompts dataset -> `kd` dataset of prompt +
// completion with loss_mask = 1 on generated tokens (docs/generate.md). Called by the
// generate stage and the kd stage. Collective over comm; rank-parallel (rank r generates
// parts r, r+W, ...); resumable: each part of KD_PL_PART_PROMPTS prompts is committed as
// its own file in work_dir, a restart (any world size) skips committed parts, and the
// output file appears atomically only when complete. Output document i is prompt i.
#pragma once
#include "runtime/base/comm.h"
#include "runtime/model/generate.h"
#include "runtime/model/model.h"

// Prompts per part file (env KD_PL_PART_PROMPTS overrides; a change regenerates parts).
#define KD_PL_PART_PROMPTS 64

// p->eos_id < 0 means: the prompts dataset's stop ids. A trailing EOS on a prompt is dropped
// (generation continues the text, not a new document). With top_k_logits K > 0 the output
// also has /topk_ids uint32 [n,K] and /topk_logprobs float32 [n,K] aligned with /tokens:
// row j is the teacher's distribution for predicting token j+1 (the last row of a document:
// after its last token). /prompt_index uint64 [docs] names each document's prompt.
// Returns KD_EREQUEUE (all ranks) when a stop signal arrived: committed parts are kept.
int kd_pseudo_label(kd_comm *comm, kd_model *teacher, const char *prompts_h5, const char *out_h5,
                    const kd_gen_params *p, const char *work_dir, int top_k_logits, kd_error *err);
