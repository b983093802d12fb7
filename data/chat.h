// chat.h: chat templates, rendering conversations into token ids with a loss mask, the
// truncation policy, and `kdtrain data chat` (JSONL conversations -> kind "sft" dataset).
// Callers: data/pack.c, data/prefs.c, data/synth_tasks.c, and the sft/dpo/eval stages
// (to render prompts the same way the data was rendered). Invariants: ids come from the
// template's tokenizer (data/tokenizer.h; the byte tokenizer when none is given): header
// and footer strings are encoded with special tokens matched, message content as plain
// text; mask is 1 exactly on assistant content, the assistant footer and the EOS after it,
// and 0 on BOS, system/user turns and every header. Templates live in chat_template.c.
// Format: docs/formats.md, "Instruction and preference data".
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "data/vocab.h"
#include "runtime/base/common.h"
#include "runtime/base/json.h"

typedef enum { KD_CHAT_SYSTEM = 0, KD_CHAT_USER = 1, KD_CHAT_ASSISTANT = 2 } kd_chat_role;
#define KD_CHAT_N_ROLES 3

typedef struct {
    char name[128];                // "bytes", "llama3", "chatml", "mistral" or the YAML path
    int bos;                       // 1: a conversation starts with the BOS id
    int eos;                       // 1: each assistant turn ends with its footer then EOS
    int has_role[KD_CHAT_N_ROLES]; // 0: messages of that role are refused
    char *header[KD_CHAT_N_ROLES]; // owned, NUL-terminated, "" when absent
    char *footer[KD_CHAT_N_ROLES];
    kd_ids header_ids[KD_CHAT_N_ROLES]; // header / footer encoded by the tokenizer
    kd_ids footer_ids[KD_CHAT_N_ROLES];
    int32_t bos_id, eos_id; // the tokenizer's special ids
    const char *turn_end;   // the marker that ends a turn ("<|eot_id|>") or NULL
    int32_t turn_end_id;    // its id when it is one token of the tokenizer (a stop id), or -1
    const kd_tokenizer *tok; // encodes content (borrowed, or own_tok)
    kd_tokenizer *own_tok;   // the byte tokenizer when the load got none
} kd_chat_template;

// A built-in template or, when name is not one of them, a YAML file with keys bos, eos,
// system/user/assistant: {header, footer}, bound to tokenizer tok (borrowed: it must
// outlive the template; NULL = the byte tokenizer). Built-ins: bytes, llama3, chatml,
// mistral (docs/formats.md). With the byte tokenizer, markers such as <|eot_id|> are
// plain bytes and every template ends replies with EOS; with another tokenizer each
// "<|...|>" marker must be one of its tokens (else KD_EINPUT naming the marker), BOS/EOS
// are the tokenizer's. Errors (KD_EINPUT) name FILE:LINE:COL and the key. Free with
// kd_chat_template_free.
int kd_chat_template_load_tok(kd_chat_template **out, const char *name, const kd_tokenizer *tok,
                              kd_error *err);
// kd_chat_template_load_tok with the byte tokenizer.
int kd_chat_template_load(kd_chat_template **out, const char *name, kd_error *err);
void kd_chat_template_free(kd_chat_template *t); // NULL is fine
const char *kd_chat_role_name(kd_chat_role r);

typedef struct {
    kd_chat_role role;
    const char *content; // len bytes (UTF-8; may hold NUL bytes)
    size_t len;
} kd_chat_msg;

// A growing sequence of ids (n) with their loss mask (n).
typedef struct {
    int32_t *ids;
    uint8_t *mask;
    size_t n, cap;
} kd_chat_buf;
void kd_chat_buf_reset(kd_chat_buf *b);
void kd_chat_buf_free(kd_chat_buf *b);

// Append the rendering of msgs[0..n) to out: [BOS] then, per message, header + content +
// footer (+ EOS after assistant turns when t->eos). With gen_header=1 the assistant header
// follows (a prompt ready for generation). If last_start is not NULL it gets the index in
// out where the content of the last assistant message begins (out->n when none). Errors:
// KD_EINPUT when a role is not in the template.
int kd_chat_render(const kd_chat_template *t, const kd_chat_msg *msgs, int n, int gen_header,
                   kd_chat_buf *out, size_t *last_start, kd_error *err);

// Append one assistant completion: content + assistant footer (+ EOS), all with mask 1.
// Errors: the tokenizer's (KD_EINPUT).
int kd_chat_render_completion(const kd_chat_template *t, const char *content, size_t len,
                              kd_chat_buf *out, kd_error *err);

// Messages from a JSON array [{"role":..., "content":...}, ...]. msgs (n) point into the
// JSON tree, so it must outlive them; free *msgs. `where` is "FILE:LINE" and `key` the JSON
// key the array came from ("messages", "prompt"), both for messages like
// "f.jsonl:3: messages[1].role: expected one of system|user|assistant, found \"bot\"".
int kd_chat_parse_messages(const kd_json *arr, const char *where, const char *key,
                           kd_chat_msg **msgs, int *n, kd_error *err);

// The truncation policy shared by sft and preference data (docs/formats.md). b holds a
// prompt of *np tokens followed by completion tokens up to b->n. keep_head (0 or 1: the
// BOS) and protect_tail (the assistant header) prompt tokens are never dropped.
// 1. if max_prompt > 0 and the prompt is longer, its left side (after the head) is
//    dropped down to max_prompt; 2. if max_len > 0 and the whole is longer, first more of
//    the prompt's left side, down to its protected part, then the completion's right side.
// *prompt_cut / *completion_cut are set to 1 when that part lost tokens. KD_EINPUT when
// nothing of the completion would remain (message without a location: callers prefix).
int kd_chat_truncate(kd_chat_buf *b, size_t *np, size_t keep_head, size_t protect_tail,
                     size_t max_prompt, size_t max_len, int *prompt_cut, int *completion_cut,
                     kd_error *err);

// Counts printed in the tools' summary line.
typedef struct {
    uint64_t examples, tokens, target_tokens, prompt_truncated, completion_truncated;
} kd_chat_stats;

// `kdtrain data chat`: every JSONL line {"messages":[...]} becomes one document of a
// kind "sft" dataset at out, tokenized by the tokenizer spec (data/tokenizer.h; NULL =
// "bytes"), which the file records with its fingerprint and stop ids (the tokenizer's
// plus the template's turn_end_id). max_len 0 = no limit. On any error nothing
// is written at out (not even a temporary); messages are "FILE:LINE: expected ..., found
// ...". stats (may be NULL) gets the counts. prompts != 0 writes prompts only (the prompt
// set of pseudo_labels): each conversation rendered up to and including the assistant
// header of its final reply (the reply itself, when present, dropped), loss mask all 0;
// max_len then cuts the prompt from the left (after BOS).
int kd_chat_convert_jsonl(const char *jsonl, const char *out, const char *template_name,
                          const char *tokenizer, size_t max_len, int prompts,
                          kd_chat_stats *stats, kd_error *err);

// The identity a dataset rendered with t records (data/vocab.h): t's tokenizer, with the
// template's turn_end_id added to the stop ids.
void kd_chat_template_vocab(const kd_chat_template *t, kd_vocab *v);
