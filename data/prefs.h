// prefs.h: preference datasets (kind "preference", docs/formats.md): groups /prompt,
// /chosen, /rejected, each with /tokens uint32 [n] and /offsets uint64 [count+1], aligned
// by index; root attributes as for token datasets. The writer (atomic: PATH.tmp-<pid>
// renamed on commit, deterministic bytes) is used by `kdtrain data prefs` and `data synth`;
// the reader by the DPO stage. kd_prefs_open validates everything (ids in the vocabulary,
// offsets, equal counts, non-empty completions), so reads fail only on I/O errors.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/chat.h"
#include "data/vocab.h"
#include "runtime/base/common.h"

// ---------------------------------------------------------------------------- writer
// Holds the data in memory until commit (4 bytes per token): preference sets are small.
typedef struct kd_prefs_writer kd_prefs_writer;

int kd_prefs_writer_open(kd_prefs_writer **w, const char *path, int vocab_size, int bos, int eos,
                         int pad, const char *tokenizer, kd_error *err);
// The same with a tokenizer identity (data/vocab.h): its ids, name, fingerprint, stop ids.
int kd_prefs_writer_open_vocab(kd_prefs_writer **w, const char *path, const kd_vocab *v,
                               kd_error *err);
// One example; chosen and rejected must be non-empty, every id in [0, vocab_size).
int kd_prefs_writer_add(kd_prefs_writer *w, const int32_t *prompt, size_t np, const int32_t *chosen,
                        size_t nc, const int32_t *rejected, size_t nr, kd_error *err);
uint64_t kd_prefs_writer_count(const kd_prefs_writer *w);
// commit=1 writes, fsyncs and renames into place (KD_EINPUT if empty); commit=0 leaves
// nothing. Always frees w (NULL is fine).
int kd_prefs_writer_close(kd_prefs_writer *w, int commit, kd_error *err);

// ---------------------------------------------------------------------------- reader
typedef struct kd_prefs kd_prefs; // opaque; used by one thread at a time

typedef struct {
    int vocab_size, bos_id, eos_id, pad_id;
    char tokenizer[32];
    char fingerprint[65]; // as kd_dataset_info (data/vocab.h)
    int n_stop;
    int32_t stop_ids[KD_TOK_MAX_STOP];
    uint64_t count;       // examples
    uint64_t n_tokens[3]; // prompt, chosen, rejected
} kd_prefs_info;

// Errors are KD_EINPUT with one line starting with the path, e.g.
// "p.h5: /chosen/tokens[12] = 300 >= vocab_size 259". *out is NULL on error.
int kd_prefs_open(kd_prefs **out, const char *path, kd_error *err);
uint64_t kd_prefs_count(const kd_prefs *p);
const kd_prefs_info *kd_prefs_get_info(const kd_prefs *p);
// Example i (< count): three arrays the caller frees; np >= 0 (a prompt may be empty),
// nc, nr >= 1.
int kd_prefs_read(kd_prefs *p, uint64_t i, int32_t **prompt, int *np, int32_t **chosen, int *nc,
                  int32_t **rejected, int *nr, kd_error *err);
void kd_prefs_close(kd_prefs *p); // NULL is fine

// ---------------------------------------------------------------------------- converter
// `kdtrain data prefs`: JSONL lines {"prompt": str|messages, "chosen": str|messages,
// "rejected": str|messages} -> preference dataset at out. The prompt is rendered up to
// and including the assistant header; chosen/rejected are assistant content + footer
// (+ EOS), tokenized by the tokenizer spec (NULL = "bytes"; recorded as in
// kd_chat_convert_jsonl). max_len 0 = no limit; max_prompt 0 = max_len/2 (but
// never less than BOS + assistant header). Truncation and counts as in
// docs/formats.md (stats.completion_truncated counts chosen and rejected separately).
// On any error nothing is written at out.
int kd_prefs_convert_jsonl(const char *jsonl, const char *out, const char *template_name,
                           const char *tokenizer, size_t max_len, size_t max_prompt,
                           kd_chat_stats *stats, kd_error *err);
