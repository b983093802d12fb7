// tokenizer.h: the byte tokenizer, kdtrain's built-in vocabulary. Ids 0..255 are the raw
// bytes; 256 = BOS, 257 = EOS, 258 = PAD; vocab_size = 259. Used by `kdtrain data pack`,
// `data synth`, `data inspect` and by generation to print text. Encoding is the identity
// on bytes, so any file round-trips exactly; decoding a special id gives a <tag>.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/base/common.h"
#include "runtime/base/strbuf.h"

#define KD_TOK_BYTES_BOS 256
#define KD_TOK_BYTES_EOS 257
#define KD_TOK_BYTES_PAD 258
#define KD_TOK_BYTES_VOCAB 259
#define KD_TOK_BYTES_NAME "bytes"

// Encode n bytes of text into ids (out has room for n). Returns n.
size_t kd_tokenizer_bytes_encode(const char *text, size_t n, int32_t *out);

// A printable form of one id for logs and `data inspect`: "a", "\n", "\x01", "<bos>",
// "<eos>", "<pad>", or "<id?>" for ids outside the vocabulary. buf holds >= 16 chars.
// Returns buf.
const char *kd_tokenizer_bytes_piece(int32_t id, char buf[16]);

// Decode ids to raw bytes, skipping special ids. out has room for n bytes. Returns the
// number of bytes written.
size_t kd_tokenizer_bytes_decode(const int32_t *ids, size_t n, char *out);

// ---------------------------------------------------------------------------------------
// Tokenizer objects: the one interface every tool that turns text into ids goes through
// (`data pack|chat|prefs --tokenizer`, eval tasks, `generate --prompt`, `kdtrain
// tokenize`). A spec is "bytes" (the built-in vocabulary above) or a Hugging Face
// tokenizer: a directory holding tokenizer.json (and optionally tokenizer_config.json /
// generation_config.json / config.json for the special ids), or the tokenizer.json path.
// Supported models: byte-level BPE (GPT-2 / Llama 3 / Qwen pre-tokenizer) and the
// SentencePiece-style BPE of Llama 2 / Mistral (byte fallback, "▁"); see data/tok/.
typedef struct kd_tokenizer kd_tokenizer;

// A growing array of ids (v is NULL until the first push; free with kd_ids_free).
typedef struct {
    int32_t *v;
    size_t n, cap;
} kd_ids;
void kd_ids_push(kd_ids *a, int32_t id);
void kd_ids_free(kd_ids *a);

#define KD_TOK_MAX_STOP 8

// Open the tokenizer named by spec. Errors name the file and what was wrong (exit
// status 2 for bad input). Free with kd_tokenizer_free.
int kd_tokenizer_open(kd_tokenizer **out, const char *spec, kd_error *err);
void kd_tokenizer_free(kd_tokenizer *t);
// The identity of spec without opening it: abs (n bytes) is "bytes" or spec's absolute
// path, fp its fingerprint (kd_tokenizer_fingerprint). What checkpoints record.
int kd_tokenizer_identify(const char *spec, char *abs, size_t n, char fp[65], kd_error *err);

// "bytes", or a short name of a file-backed tokenizer (its directory's basename).
const char *kd_tokenizer_name(const kd_tokenizer *t);
// 64 hex chars identifying the vocabulary: equal fingerprints encode text identically.
// For a Hugging Face tokenizer it is the SHA-256 of the bytes of tokenizer.json; for
// "bytes" the SHA-256 of a fixed description. Datasets record it; `check` compares it
// between data, model and teacher.
const char *kd_tokenizer_fingerprint(const kd_tokenizer *t);
// Highest id + 1 (added tokens included).
int32_t kd_tokenizer_vocab_size(const kd_tokenizer *t);
// Special ids, -1 where the tokenizer has none.
int32_t kd_tokenizer_bos(const kd_tokenizer *t);
int32_t kd_tokenizer_pad(const kd_tokenizer *t);
// The ids that end generation (eos first). Returns how many (<= KD_TOK_MAX_STOP).
int kd_tokenizer_stop_ids(const kd_tokenizer *t, int32_t out[KD_TOK_MAX_STOP]);
// The id of an added/special token given by its exact content ("<|eot_id|>"), or -1.
int32_t kd_tokenizer_token_id(const kd_tokenizer *t, const char *content);

// Append the ids of n bytes of UTF-8 text to out (no BOS added). special = 1 matches
// added tokens written in the text as single ids (as the `tokenizers` package does);
// special = 0 encodes them as plain text.
int kd_tokenizer_encode(const kd_tokenizer *t, const char *text, size_t n, int special, kd_ids *out,
                        kd_error *err);
// Append the text of ids to out; skip_special = 1 leaves out special tokens.
int kd_tokenizer_decode(const kd_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        kd_strbuf *out, kd_error *err);
