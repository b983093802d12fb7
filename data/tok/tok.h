// tok.h: the file-backed tokenizer models behind data/tokenizer.h: a Hugging Face
// tokenizer.json read into a BPE model (bpe.c), a normalizer and a pre-tokenizer
// (pretok.c), added tokens (encode.c) and a decoder chain (decode.c); load.c builds it,
// specials.c reads the special ids. Caller: data/tokenizer_obj.c only. Invariants: a
// kd_tok is immutable after kd_tok_load except its scratch buffers and word cache, so
// one tokenizer is used by one thread at a time; encode gives the ids the `tokenizers`
// package gives for the same tokenizer.json (add_special_tokens=False).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "runtime/base/common.h"
#include "runtime/base/json.h"
#include "runtime/base/strbuf.h"

// ---------------------------------------------------------------------------- byte buffers
// A growing byte buffer (s is NULL until the first put; not NUL-terminated).
typedef struct {
    char *s;
    size_t n, cap;
} kd_bytes;
void kd_bytes_put(kd_bytes *b, const void *p, size_t n);
// Appends n raw bytes to a kd_strbuf (NUL bytes allowed, unlike kd_strbuf_printf).
void kd_strbuf_put(kd_strbuf *b, const void *p, size_t n);

// Pieces of text: piece i is buf.s[off[i] .. off[i+1]); n pieces use n+1 offsets.
typedef struct {
    kd_bytes buf;
    size_t *off;
    size_t n, cap;
} kd_pieces;
void kd_pieces_reset(kd_pieces *p);
void kd_pieces_add(kd_pieces *p, const void *s, size_t n); // appends one piece
void kd_pieces_free(kd_pieces *p);

// ---------------------------------------------------------------------------- pre-tokenizer
typedef enum { KD_RE_GPT2, KD_RE_LLAMA3, KD_RE_QWEN2 } kd_regex_kind;
typedef enum { KD_PT_SPLIT, KD_PT_BYTELEVEL, KD_PT_METASPACE } kd_pt_kind;
typedef enum { KD_PREPEND_NEVER, KD_PREPEND_ALWAYS, KD_PREPEND_FIRST } kd_prepend;

typedef struct {
    kd_pt_kind kind;
    kd_regex_kind regex;  // SPLIT; BYTELEVEL with use_regex (always GPT-2's)
    int use_regex;        // BYTELEVEL
    int add_prefix_space; // BYTELEVEL
    kd_prepend prepend;   // METASPACE
    int split;            // METASPACE
    uint32_t replacement; // METASPACE: the code point standing for ' ' ("▁", U+2581)
} kd_pt_step;

#define KD_TOK_MAX_STEPS 8
typedef struct {
    kd_pt_step step[KD_TOK_MAX_STEPS];
    int n;
    int byte_level; // 1 when the last step is ByteLevel: the BPE alphabet is raw bytes
} kd_pretok;

// Looks a Split/ByteLevel regex up among the supported patterns. Returns 0 and sets *kind,
// or -1 for an unknown pattern.
int kd_regex_lookup(const char *pattern, kd_regex_kind *kind);
// Splits one segment of normalized text into words. at_start: the segment begins the input
// (for Metaspace's prepend_scheme "first"). out is reset first; tmp and scratch are scratch.
void kd_pretok_run(const kd_pretok *p, const char *s, size_t n, int at_start, kd_pieces *out,
                   kd_pieces *tmp, kd_bytes *scratch);

// ---------------------------------------------------------------------------- normalizer
typedef enum { KD_NORM_PREPEND, KD_NORM_REPLACE } kd_norm_kind;
typedef struct {
    kd_norm_kind kind;
    char *a, *b; // PREPEND: a is prepended; REPLACE: every a becomes b
    size_t alen, blen;
} kd_norm_step;

// ---------------------------------------------------------------------------- decoder
typedef enum {
    KD_DEC_BYTELEVEL,
    KD_DEC_METASPACE,
    KD_DEC_REPLACE,
    KD_DEC_BYTEFALLBACK,
    KD_DEC_FUSE,
    KD_DEC_STRIP,
} kd_dec_kind;
typedef struct {
    kd_dec_kind kind;
    char *a, *b; // REPLACE: a -> b; STRIP: a is the character stripped
    size_t alen, blen;
    int start, stop;      // STRIP: how many to strip at each end
    uint32_t replacement; // METASPACE
    int prepend;          // METASPACE: prepend_scheme != never
} kd_dec_step;

// ---------------------------------------------------------------------------- BPE model
typedef struct kd_bpe kd_bpe;
typedef struct {
    int byte_level;    // units are raw bytes (vocab keys were mapped back from ByteLevel)
    int byte_fallback; // unknown characters become <0xNN> tokens
    int fuse_unk;      // consecutive unknown characters give one unk
    int ignore_merges; // a word found whole in the vocabulary is one token
    int32_t unk;       // unk id or -1 (unknown characters are then dropped)
} kd_bpe_opts;

kd_bpe *kd_bpe_new(kd_bpe_opts o);
void kd_bpe_free(kd_bpe *b);
// Vocabulary entry (key: raw bytes in byte-level mode, else the token's UTF-8).
void kd_bpe_add_vocab(kd_bpe *b, const char *key, size_t n, int32_t id);
// The id of a key, or -1.
int32_t kd_bpe_lookup(const kd_bpe *b, const char *key, size_t n);
// Merge of ranked pair (a, b) into the token a+b. KD_EINPUT when a, b or a+b is not in
// the vocabulary (err names the pair).
int kd_bpe_add_merge(kd_bpe *b, const char *a, size_t alen, const char *bb, size_t blen,
                     int32_t rank, kd_error *err);
// Finishes loading: the unk id (-1: none) and the <0xNN> table; call once after the
// vocabulary.
void kd_bpe_ready(kd_bpe *b, int32_t unk);
// Appends the ids of one pre-tokenized word.
void kd_bpe_word(kd_bpe *b, const char *w, size_t n, kd_ids *out);

// GPT-2's byte <-> character map of ByteLevel: the code point standing for each byte, and
// the byte of a code point (-1 if none).
uint32_t kd_bytelevel_char(uint8_t byte);
int kd_bytelevel_byte(uint32_t cp);

// ---------------------------------------------------------------------------- the model
typedef struct {
    char *content; // as tokenizer.json writes it
    size_t len;
    char *pat; // what is matched: content, normalized when `normalized` (Llama 2's "▁<tool>")
    size_t plen;
    int32_t id;
    int special, normalized;
} kd_added;

typedef struct kd_tok {
    kd_bpe *bpe;
    kd_pretok pre;
    kd_norm_step norm[KD_TOK_MAX_STEPS];
    int n_norm;
    kd_dec_step dec[KD_TOK_MAX_STEPS];
    int n_dec;
    int has_decoder;
    kd_added *added;
    int n_added;
    uint8_t added_first[256]; // 1 for each byte some added token starts with
    char **tok;               // id -> token string as tokenizer.json writes it (NULL for holes)
    size_t *tok_len;          // its length in bytes
    uint8_t *special;         // id -> 1 for a special added token
    int32_t vocab;            // highest id + 1
    char name[128], fingerprint[65];
    int32_t bos, pad, stop[KD_TOK_MAX_STOP];
    int n_stop;
    kd_pieces seg, words, tmp; // encode scratch
    kd_bytes norm_buf, scratch;
} kd_tok;

// Reads DIR/tokenizer.json (path: a directory or the file itself) and the special ids.
int kd_tok_load(const char *path, kd_tok **out, kd_error *err);
// The fingerprint alone (SHA-256 of tokenizer.json's bytes), without parsing the file.
int kd_tok_fingerprint(const char *path, char fp[65], kd_error *err);
void kd_tok_free(kd_tok *t);
// Reads the model/normalizer/pre_tokenizer/decoder/added_tokens of a parsed
// tokenizer.json into t (load.c); where names the file in messages.
int kd_tok_from_json(kd_tok *t, const kd_json *root, const char *where, kd_error *err);
// Fills bos/pad/stop from tokenizer_config.json, generation_config.json, config.json in
// dir (specials.c); missing files leave -1 / no stop ids.
int kd_tok_specials(kd_tok *t, const char *dir, kd_error *err);
int kd_tok_encode(kd_tok *t, const char *text, size_t n, int special, kd_ids *out);
// Sets each added token's pattern and the first-byte filter (after the normalizer is read).
void kd_tok_added_patterns(kd_tok *t);
void kd_tok_decode(kd_tok *t, const int32_t *ids, size_t n, int skip_special, kd_strbuf *out);
// The id of an added token or vocabulary entry with this exact content, or -1.
int32_t kd_tok_token_id(const kd_tok *t, const char *content);
