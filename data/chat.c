// chat.c: rendering conversations with loss masks, the truncation policy, and the JSONL ->
// sft dataset converter behind `kdtrain data chat` (chat.h; templates: chat_template.c).
#include "data/chat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonl.h"
#include "data/tokenizer.h"
#include "data/writer.h"

// ============================================================================ rendering

void kd_chat_buf_reset(kd_chat_buf *b) {
    b->n = 0;
}

void kd_chat_buf_free(kd_chat_buf *b) {
    free(b->ids);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

static void buf_reserve(kd_chat_buf *b, size_t more) {
    if (b->n + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more) cap *= 2;
    b->ids = kd_realloc(b->ids, cap * sizeof *b->ids);
    b->mask = kd_realloc(b->mask, cap);
    b->cap = cap;
}

// Message content: plain text (special tokens not matched), all with mask m.
static int put_text(kd_chat_buf *b, const kd_tokenizer *tok, const char *s, size_t n, uint8_t m,
                    kd_error *err) {
    kd_ids ids = {0};
    int rc = kd_tokenizer_encode(tok, s, n, 0, &ids, err);
    if (rc == KD_OK) {
        buf_reserve(b, ids.n);
        if (ids.n) memcpy(b->ids + b->n, ids.v, ids.n * sizeof *ids.v);
        memset(b->mask + b->n, m, ids.n);
        b->n += ids.n;
    }
    kd_ids_free(&ids);
    return rc;
}

static void put_ids(kd_chat_buf *b, const kd_ids *ids, uint8_t m) {
    buf_reserve(b, ids->n);
    if (ids->n) memcpy(b->ids + b->n, ids->v, ids->n * sizeof *ids->v);
    memset(b->mask + b->n, m, ids->n);
    b->n += ids->n;
}

static void put_id(kd_chat_buf *b, int32_t id, uint8_t m) {
    buf_reserve(b, 1);
    b->ids[b->n] = id;
    b->mask[b->n++] = m;
}

int kd_chat_render_completion(const kd_chat_template *t, const char *content, size_t len,
                              kd_chat_buf *out, kd_error *err) {
    int rc = put_text(out, t->tok, content, len, 1, err);
    if (rc) return rc;
    put_ids(out, &t->footer_ids[KD_CHAT_ASSISTANT], 1);
    if (t->eos) put_id(out, t->eos_id, 1);
    return KD_OK;
}

int kd_chat_render(const kd_chat_template *t, const kd_chat_msg *msgs, int n, int gen_header,
                   kd_chat_buf *out, size_t *last_start, kd_error *err) {
    size_t last = (size_t)-1;
    for (int i = 0; i < n; i++)
        if ((unsigned)msgs[i].role >= KD_CHAT_N_ROLES || !t->has_role[msgs[i].role])
            return kd_fail(err, KD_EINPUT, "messages[%d].role: template '%s' has no role '%s'", i,
                           t->name, kd_chat_role_name(msgs[i].role));
    if (t->bos) put_id(out, t->bos_id, 0);
    for (int i = 0; i < n; i++) {
        int r = msgs[i].role, rc;
        put_ids(out, &t->header_ids[r], 0);
        if (r == KD_CHAT_ASSISTANT) {
            last = out->n;
            rc = kd_chat_render_completion(t, msgs[i].content, msgs[i].len, out, err);
        } else {
            rc = put_text(out, t->tok, msgs[i].content, msgs[i].len, 0, err);
            put_ids(out, &t->footer_ids[r], 0);
        }
        if (rc) {
            kd_error_prefix(err, "messages[%d].content: ", i);
            return rc;
        }
    }
    if (gen_header) put_ids(out, &t->header_ids[KD_CHAT_ASSISTANT], 0);
    if (last_start) *last_start = last == (size_t)-1 ? out->n : last;
    return KD_OK;
}

// Message i of a messages array: an object with string "role" (a known role) and
// "content".
static int parse_one(const kd_json *o, const char *where, const char *key, size_t i, kd_chat_msg *m,
                     kd_error *err) {
    if (o->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT,
                       "%s: %s[%zu]: expected an object {\"role\", \"content\"}, found %s", where,
                       key, i, kd_json_type_name(o->type));
    const kd_json *role = kd_json_get(o, "role"), *content = kd_json_get(o, "content");
    if (!role || role->type != KD_JSON_STRING)
        return kd_fail(err, KD_EINPUT, "%s: %s[%zu].role: expected a string, found %s", where, key,
                       i, role ? kd_json_type_name(role->type) : "no \"role\" key");
    if (!content || content->type != KD_JSON_STRING)
        return kd_fail(err, KD_EINPUT, "%s: %s[%zu].content: expected a string, found %s", where,
                       key, i, content ? kd_json_type_name(content->type) : "no \"content\" key");
    for (int k = 0; k < KD_CHAT_N_ROLES; k++)
        if (strlen(kd_chat_role_name((kd_chat_role)k)) == role->len &&
            !strcmp(role->str, kd_chat_role_name((kd_chat_role)k))) {
            *m = (kd_chat_msg){(kd_chat_role)k, content->str, content->len};
            return KD_OK;
        }
    return kd_fail(err, KD_EINPUT,
                   "%s: %s[%zu].role: expected one of system|user|assistant, found \"%.40s\"",
                   where, key, i, role->str);
}

int kd_chat_parse_messages(const kd_json *arr, const char *where, const char *key,
                           kd_chat_msg **msgs, int *n, kd_error *err) {
    *msgs = NULL;
    *n = 0;
    if (arr->type != KD_JSON_ARRAY || arr->n == 0)
        return kd_fail(
            err, KD_EINPUT, "%s: %s: expected a non-empty array of messages, found %s", where, key,
            arr->type == KD_JSON_ARRAY ? "an empty array" : kd_json_type_name(arr->type));
    kd_chat_msg *m = kd_calloc(arr->n, sizeof *m);
    for (size_t i = 0; i < arr->n; i++) {
        int rc = parse_one(&arr->items[i], where, key, i, &m[i], err);
        if (rc) {
            free(m);
            return rc;
        }
    }
    *msgs = m;
    *n = (int)arr->n;
    return KD_OK;
}

// ============================================================================ truncation

// Remove k tokens of b starting at `at`.
static void buf_erase(kd_chat_buf *b, size_t at, size_t k) {
    memmove(b->ids + at, b->ids + at + k, (b->n - at - k) * sizeof *b->ids);
    memmove(b->mask + at, b->mask + at + k, b->n - at - k);
    b->n -= k;
}

int kd_chat_truncate(kd_chat_buf *b, size_t *np, size_t keep_head, size_t protect_tail,
                     size_t max_prompt, size_t max_len, int *prompt_cut, int *completion_cut,
                     kd_error *err) {
    *prompt_cut = *completion_cut = 0;
    size_t floor = keep_head + protect_tail; // the prompt never gets shorter than this
    if (floor > *np) floor = *np;
    if (max_prompt > 0 && *np > max_prompt) {
        if (max_prompt < floor)
            return kd_fail(err, KD_EINPUT,
                           "expected --max-prompt-len >= %zu (BOS and the assistant header), "
                           "found %zu",
                           floor, max_prompt);
        buf_erase(b, keep_head, *np - max_prompt);
        *np = max_prompt;
        *prompt_cut = 1;
    }
    if (max_len == 0 || b->n <= max_len) return KD_OK;
    size_t over = b->n - max_len, droppable = *np - floor;
    size_t k = over < droppable ? over : droppable;
    if (k) {
        buf_erase(b, keep_head, k);
        *np -= k;
        *prompt_cut = 1;
    }
    if (b->n <= max_len) return KD_OK;
    if (*np >= max_len)
        return kd_fail(err, KD_EINPUT,
                       "expected a prompt shorter than --max-len %zu so that some of the "
                       "completion remains, found a prompt of %zu tokens after truncation",
                       max_len, *np);
    b->n = max_len;
    *completion_cut = 1;
    return KD_OK;
}

// ============================================================================ JSONL -> sft

// Check one line's conversation and render it into b; *np = prompt tokens (before the
// last assistant content), *protect = that assistant turn's header length.
static int render_line(const kd_chat_template *t, const kd_json *v, const char *where,
                       int prompts, kd_chat_buf *b, size_t *np, size_t *protect, kd_error *err) {
    if (v->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: expected an object {\"messages\": [...]}, found %s",
                       where, kd_json_type_name(v->type));
    const kd_json *arr = kd_json_get(v, "messages");
    if (!arr) return kd_fail(err, KD_EINPUT, "%s: expected a key \"messages\", found none", where);
    kd_chat_msg *m;
    int n, rc = kd_chat_parse_messages(arr, where, "messages", &m, &n, err), n_asst = 0;
    if (rc == KD_OK && prompts) { // the prompt: everything before the final reply
        int n_use = m[n - 1].role == KD_CHAT_ASSISTANT ? n - 1 : n;
        if (n_use == 0)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: messages: expected a turn before the assistant reply, found only "
                         "the reply",
                         where);
        if (rc == KD_OK) {
            kd_chat_buf_reset(b);
            rc = kd_chat_render(t, m, n_use, 1, b, NULL, err);
            if (rc) kd_error_prefix(err, "%s: ", where);
            memset(b->mask, 0, b->n);
            *np = b->n;
        }
        n = 0; // nothing below applies
    }
    for (int i = 0; rc == KD_OK && i < n; i++) {
        if (m[i].role != KD_CHAT_ASSISTANT) continue;
        n_asst++;
        if (m[i].len == 0)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: messages[%d].content: expected a non-empty assistant reply, "
                         "found \"\"",
                         where, i);
    }
    if (rc == KD_OK && !prompts && n_asst == 0)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: messages: expected at least one assistant turn, found "
                     "none",
                     where);
    if (rc == KD_OK && !prompts && m[n - 1].role != KD_CHAT_ASSISTANT)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: messages[%d].role: expected the conversation to end "
                     "with an assistant turn, found \"%s\"",
                     where, n - 1, kd_chat_role_name(m[n - 1].role));
    if (rc == KD_OK && !prompts) {
        kd_chat_buf_reset(b);
        rc = kd_chat_render(t, m, n, 0, b, np, err);
        if (rc) kd_error_prefix(err, "%s: ", where);
    }
    *protect = t->header_ids[KD_CHAT_ASSISTANT].n;
    free(m);
    return rc;
}

int kd_chat_convert_jsonl(const char *jsonl, const char *out, const char *template_name,
                          const char *tokenizer, size_t max_len, int prompts,
                          kd_chat_stats *stats, kd_error *err) {
    kd_chat_stats st = {0};
    kd_tokenizer *tok = NULL;
    kd_chat_template *t = NULL;
    kd_vocab voc;
    kd_jsonl *r = NULL;
    kd_dataset_writer *w = NULL;
    kd_chat_buf b = {0};
    int rc = kd_tokenizer_open(&tok, tokenizer ? tokenizer : KD_TOK_BYTES_NAME, err);
    if (rc == KD_OK) rc = kd_chat_template_load_tok(&t, template_name, tok, err);
    if (rc == KD_OK) rc = kd_jsonl_open(&r, jsonl, err);
    if (rc == KD_OK) {
        kd_chat_template_vocab(t, &voc);
        rc = kd_dataset_writer_open_vocab(&w, out, "sft", &voc, 1, err);
    }
    while (rc == KD_OK) {
        kd_json *v = NULL;
        if ((rc = kd_jsonl_next(r, &v, err)) || !v) break;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", jsonl, kd_jsonl_line(r));
        size_t np = 0, protect = 0;
        int pc = 0, cc = 0;
        rc = render_line(t, v, where, prompts, &b, &np, &protect, err);
        kd_json_free(v);
        if (rc == KD_OK) { // a prompt loses its left side (after BOS) to fit max_len
            rc = kd_chat_truncate(&b, &np, (size_t)t->bos, protect, prompts ? max_len : 0,
                                  prompts ? 0 : max_len, &pc, &cc, err);
            if (rc) kd_error_prefix(err, "%s: ", where);
        }
        if (rc == KD_OK) rc = kd_dataset_writer_add(w, b.ids, b.mask, b.n, err);
        if (rc) break;
        st.examples++;
        st.tokens += b.n;
        for (size_t i = 0; i < b.n; i++) st.target_tokens += b.mask[i];
        st.prompt_truncated += (uint64_t)pc;
        st.completion_truncated += (uint64_t)cc;
    }
    if (rc == KD_OK && st.examples == 0)
        rc = kd_fail(err, KD_EINPUT, "%s:1: expected one JSON object per line, found an empty file",
                     jsonl);
    int rc2 = w ? kd_dataset_writer_close(w, rc == KD_OK, err) : KD_OK;
    kd_jsonl_close(r);
    kd_chat_template_free(t);
    if (tok) kd_tokenizer_free(tok);
    kd_chat_buf_free(&b);
    if (stats) *stats = st;
    return rc ? rc : rc2;
}
