// tools.h: the `kdtrain data` subcommands (pack, inspect, synth). kd_data_main parses the
// command line (argv[0] == "data") and returns an exit status (0 ok, 2 bad input, 3
// runtime); runtime/main.c dispatches to it. The library functions below do the work
// and never print except to the FILE they are given; output files appear atomically
// (see writer.h), so a failed tool leaves nothing half-written.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "runtime/common.h"

int kd_data_main(int argc, char **argv);

// Byte-tokenize text files into a `tokens` dataset at out. Each file is one document, or
// with paragraphs=1 each blank-line-separated paragraph is; a document is
// BOS + bytes + EOS, and empty documents are skipped.
int kd_data_pack(const char *const *files, int n_files, const char *out, int paragraphs,
                 kd_error *err);

// Print a summary of a dataset (kind, counts, ids, mask coverage, first tokens, unigram
// entropy) as "key: value" lines to f. first = how many leading tokens to show.
int kd_data_inspect(const char *path, int first, FILE *f, kd_error *err);

// Deterministic demo corpora in dir (created if missing): pretrain.h5 (~n_tokens tokens)
// and pretrain_val.h5 (n_tokens/10, at least 2000), kind `tokens`, byte tokenizer.
int kd_data_synth(const char *dir, uint64_t seed, uint64_t n_tokens, kd_error *err);

// The chat task suite in dir (data/synth_tasks.c): sft.h5 (n_examples conversations),
// sft_val.h5 (n/10), prefs.h5 (n/2), prefs_val.h5 (n/10), prompts.h5 (n/2, prompts only),
// eval_tasks.jsonl (n/10) and the JSONL sources; docs/formats.md. dir must exist.
int kd_data_synth_tasks(const char *dir, uint64_t seed, uint64_t n_examples, kd_error *err);
