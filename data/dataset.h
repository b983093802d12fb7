// dataset.h: reading kdtrain token datasets (HDF5; format in docs/formats.md): /tokens
// uint32 [n], /offsets uint64 [docs+1], optional /loss_mask uint8 [n], and attributes.
// Each rank opens the file on its own (default sec2 driver, no MPI collective). Open
// validates everything a trainer relies on, so later reads only fail on I/O errors:
// every token id is in [0, vocab_size), offsets run 0..n non-decreasing, mask is 0/1.
// Callers: stages (pretrain, kd, sft, eval) through kd_dataset_read_windows, and the
// `kdtrain data inspect` tool. A kd_dataset is used by one thread at a time.
#pragma once
#include <stdint.h>

#include "data/tokenizer.h"
#include "data/vocab.h"
#include "runtime/base/common.h"

typedef struct kd_dataset kd_dataset; // opaque

typedef struct {
    char kind[16];                          // tokens | sft | preference | kd
    int vocab_size, bos_id, eos_id, pad_id; // special ids are in [0,vocab) or -1 (none)
    uint64_t n_tokens, n_docs;
    int has_loss_mask;
    char tokenizer[32]; // e.g. "bytes"
    char fingerprint[65]; // tokenizer_fingerprint, "" if unknown (data/vocab.h)
    int n_stop;           // stop_ids, default [eos_id] (none if eos_id is -1)
    int32_t stop_ids[KD_TOK_MAX_STOP];
} kd_dataset_info;

// Open and validate. Errors are KD_EINPUT with one line that starts with the path, e.g.
// "data/x.h5: /tokens[1234] = 300 >= vocab_size 259". *out is NULL on error.
int kd_dataset_open(kd_dataset **out, const char *path, kd_error *err);
const kd_dataset_info *kd_dataset_get_info(const kd_dataset *d);
// The tokenizer identity the dataset records (for writing data derived from it).
void kd_dataset_info_vocab(const kd_dataset_info *in, kd_vocab *v);
const char *kd_dataset_path(const kd_dataset *d);
void kd_dataset_close(kd_dataset *d); // NULL is fine

// Document boundaries: the offsets array (n_docs+1 entries, offsets[0]=0, last=n_tokens),
// held in memory since open. Document i is tokens [offsets[i], offsets[i+1]).
const uint64_t *kd_dataset_offsets(const kd_dataset *d);

// Pretraining samples: windows of seq_len+1 tokens at stride seq_len over the packed token
// stream (documents are already separated by EOS in it): floor((n_tokens-1)/seq_len).
// Window w covers tokens [w*seq_len, w*seq_len+seq_len].
uint64_t kd_dataset_n_windows(const kd_dataset *d, int seq_len);

// Read windows idx[0..n) (each < n_windows) into tokens (n, seq_len+1). If loss_w is not
// NULL it gets (n, seq_len): the weight of target j of window i (token j+1 of the window)
// = loss_mask of that token if the file has one, else 1. Reads only those windows.
int kd_dataset_read_windows(kd_dataset *d, const uint64_t *idx, int n, int seq_len, int32_t *tokens,
                            float *loss_w, kd_error *err);

// Read the token range [start, start+n) into tokens (n); mask (n) gets /loss_mask (or all
// 1 without one) when not NULL. For streaming scans and document access.
int kd_dataset_read_tokens(kd_dataset *d, uint64_t start, uint64_t n, int32_t *tokens,
                           uint8_t *mask, kd_error *err);
