// tools.h: the work of the `kdtrain data` subcommands (pack, inspect, synth), whose
// command line is runtime/cli/data_cli.c. These functions do the work
// and never print except to the FILE they are given; output files appear atomically
// (see writer.h), so a failed tool leaves nothing half-written.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "runtime/base/common.h"

// Tokenize text files into a `tokens` dataset at out with the tokenizer spec (NULL =
// "bytes"; data/tokenizer.h). Each file is one document, or with paragraphs=1 each
// blank-line-separated paragraph is; a document is [BOS] + ids + EOS (no BOS when the
// tokenizer has none), and empty documents are skipped.
int kd_data_pack(const char *const *files, int n_files, const char *out, int paragraphs,
                 const char *tokenizer, kd_error *err);

// Print a summary of a dataset (kind, counts, ids, mask coverage, first tokens, unigram
// entropy, tokenizer name/fingerprint/stop ids) as "key: value" lines to f; token
// datasets and preference datasets (kind "preference") alike. first = how many leading tokens to
// show.
int kd_data_inspect(const char *path, int first, FILE *f, kd_error *err);

// Deterministic demo corpora in dir (created if missing): pretrain.h5 (~n_tokens tokens)
// and pretrain_val.h5 (n_tokens/10, at least 2000), kind `tokens`, byte tokenizer.
int kd_data_synth(const char *dir, uint64_t seed, uint64_t n_tokens, kd_error *err);

// The chat task suite in dir (data/synth_tasks.c): sft.h5 (n_examples conversations),
// sft_val.h5 (n/10), prefs.h5 (n/2), prefs_val.h5 (n/10), prompts.h5 (n/2, prompts only),
// eval_tasks.jsonl (n/10), mc_tasks.jsonl (n/10, at most 300) and the JSONL sources;
// docs/formats.md. dir must exist.
int kd_data_synth_tasks(const char *dir, uint64_t seed, uint64_t n_examples, kd_error *err);
