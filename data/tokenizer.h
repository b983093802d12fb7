// tokenizer.h: the byte tokenizer, kdtrain's built-in vocabulary. Ids 0..255 are the raw
// bytes; 256 = BOS, 257 = EOS, 258 = PAD; vocab_size = 259. Used by `kdtrain data pack`,
// `data synth`, `data inspect` and by generation to print text. Encoding is the identity
// on bytes, so any file round-trips exactly; decoding a special id gives a <tag>.
#pragma once
#include <stddef.h>
#include <stdint.h>

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
