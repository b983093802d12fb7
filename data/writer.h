// writer.h: writing kdtrain token datasets (format in docs/formats.md) atomically: the
// file is written as PATH.tmp-<pid> and renamed into place only on commit, so a reader
// never sees a half-written dataset and a failed tool leaves nothing behind. Documents
// are appended one at a time and streamed to disk in chunks (memory stays bounded by
// the chunk size plus the offsets array). Files are byte-for-byte deterministic (no
// timestamps), so the same documents give the same file digest. Callers: `kdtrain data`
// tools (pack, synth) and stages that produce data (kd pseudo-labels).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/vocab.h"
#include "runtime/base/common.h"

typedef struct kd_dataset_writer kd_dataset_writer; // opaque

// kind: tokens|sft|preference|kd; special ids in [0,vocab) or -1 (none); with_mask adds
// /loss_mask. Errors: KD_EINPUT for bad arguments, KD_ERUNTIME if the file cannot be made.
int kd_dataset_writer_open(kd_dataset_writer **w, const char *path, const char *kind,
                           int vocab_size, int bos, int eos, int pad, int with_mask,
                           const char *tokenizer, kd_error *err);
// The same with the ids, name, fingerprint and stop ids of a tokenizer identity
// (data/vocab.h; the byte tokenizer's gives exactly the file kd_dataset_writer_open does).
int kd_dataset_writer_open_vocab(kd_dataset_writer **w, const char *path, const char *kind,
                                 const kd_vocab *v, int with_mask, kd_error *err);
// Append one document of n tokens (ids in [0, vocab)); mask (n, values 0/1) is required
// iff the writer has a mask, else must be NULL. On error the writer stays usable only
// for close(commit=0).
int kd_dataset_writer_add(kd_dataset_writer *w, const int32_t *tokens, const uint8_t *mask,
                          size_t n, kd_error *err);
uint64_t kd_dataset_writer_n_tokens(const kd_dataset_writer *w);
// commit=1: finish, fsync, rename into place (fails with KD_EINPUT if no token was added).
// commit=0: abort and remove the temporary file. Always frees w (NULL is fine).
int kd_dataset_writer_close(kd_dataset_writer *w, int commit, kd_error *err);
