// chat.c: chat templates (built-in and YAML), rendering with loss masks, the truncation
// policy, and the JSONL -> sft dataset converter behind `kdtrain data chat` (chat.h).
#include "data/chat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "data/jsonl.h"
#include "data/tokenizer.h"
#include "data/writer.h"

static const char *ROLE_NAMES[KD_CHAT_N_ROLES] = {"system", "user", "assistant"};

const char *kd_chat_role_name(kd_chat_role r) {
    return (unsigned)r < KD_CHAT_N_ROLES ? ROLE_NAMES[r] : "?";
}

// ============================================================================ templates

static kd_chat_template *template_new(const char *name) {
    kd_chat_template *t = kd_calloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->bos_id = KD_TOK_BYTES_BOS;
    t->eos_id = KD_TOK_BYTES_EOS;
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        t->header[r] = kd_strdup("");
        t->footer[r] = kd_strdup("");
    }
    return t;
}

static void set_str(char **dst, const char *s) {
    free(*dst);
    *dst = kd_strdup(s);
}

static void set_role(kd_chat_template *t, int r, const char *header, const char *footer) {
    t->has_role[r] = 1;
    set_str(&t->header[r], header);
    set_str(&t->footer[r], footer);
}

// "bytes": plain-byte headers; an assistant turn ends with EOS alone, so an exact-match
// answer is the bytes generated before EOS.
static kd_chat_template *builtin_bytes(void) {
    kd_chat_template *t = template_new("bytes");
    t->bos = t->eos = 1;
    set_role(t, KD_CHAT_SYSTEM, "<|system|>\n", "\n");
    set_role(t, KD_CHAT_USER, "<|user|>\n", "\n");
    set_role(t, KD_CHAT_ASSISTANT, "<|assistant|>\n", "");
    return t;
}

// "llama3": the Llama-3 chat strings. BOS stands for <|begin_of_text|>; with the byte
// tokenizer <|eot_id|> is plain bytes, so EOS follows it to give generation a stop id.
static kd_chat_template *builtin_llama3(void) {
    kd_chat_template *t = template_new("llama3");
    t->bos = t->eos = 1;
    char h[96];
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        snprintf(h, sizeof h, "<|start_header_id|>%s<|end_header_id|>\n\n", ROLE_NAMES[r]);
        set_role(t, r, h, "<|eot_id|>");
    }
    return t;
}

void kd_chat_template_free(kd_chat_template *t) {
    if (!t) return;
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        free(t->header[r]);
        free(t->footer[r]);
    }
    free(t);
}

// --- YAML template files

static int yfail(kd_error *err, const char *path, const yaml_node_t *n, const char *key,
                 const char *expected) {
    const char *found = n->type == YAML_SCALAR_NODE     ? (const char *)n->data.scalar.value
                        : n->type == YAML_MAPPING_NODE  ? "a mapping"
                        : n->type == YAML_SEQUENCE_NODE ? "a sequence"
                                                        : "nothing";
    return kd_fail(err, KD_EINPUT, "%s:%zu:%zu: %s: expected %s, found %s%s%s", path,
                   n->start_mark.line + 1, n->start_mark.column + 1, key, expected,
                   n->type == YAML_SCALAR_NODE ? "'" : "", found,
                   n->type == YAML_SCALAR_NODE ? "'" : "");
}

static int ybool(const char *path, const yaml_node_t *n, const char *key, int *v, kd_error *err) {
    const char *s = n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
    if (n->type == YAML_SCALAR_NODE && (!strcmp(s, "true") || !strcmp(s, "false"))) {
        *v = s[0] == 't';
        return KD_OK;
    }
    return yfail(err, path, n, key, "true or false");
}

// One role's mapping {header: str, footer: str}; both optional (default "").
static int yrole(kd_chat_template *t, int r, yaml_document_t *doc, const char *path,
                 const yaml_node_t *m, kd_error *err) {
    char key[64];
    snprintf(key, sizeof key, "%s", ROLE_NAMES[r]);
    if (m->type != YAML_MAPPING_NODE)
        return yfail(err, path, m, key, "a mapping {header: \"...\", footer: \"...\"}");
    t->has_role[r] = 1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *ks = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        char kp[96];
        snprintf(kp, sizeof kp, "%s.%s", ROLE_NAMES[r], ks);
        int is_h = !strcmp(ks, "header");
        if (!is_h && strcmp(ks, "footer"))
            return yfail(err, path, k, ROLE_NAMES[r], "key header or footer");
        if (v->type != YAML_SCALAR_NODE) return yfail(err, path, v, kp, "a string");
        set_str(is_h ? &t->header[r] : &t->footer[r], (const char *)v->data.scalar.value);
    }
    return KD_OK;
}

static int load_yaml(kd_chat_template **out, const char *path, kd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return kd_fail(err, KD_EINPUT,
                       "%s: expected a built-in template (bytes|llama3) or a readable YAML "
                       "file, found neither: %s",
                       path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = KD_OK;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = kd_fail(err, KD_EINPUT, "%s:%zu:%zu: expected valid YAML, found %s", path,
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "a syntax error");
        yaml_parser_delete(&parser);
        fclose(f);
        return rc;
    }
    kd_chat_template *t = template_new(path);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = root ? yfail(err, path, root, "template",
                          "a mapping with bos, eos, system, user, "
                          "assistant")
                  : kd_fail(err, KD_EINPUT,
                            "%s: expected a template mapping, found an empty "
                            "file",
                            path);
    }
    int seen_bos = 0, seen_eos = 0;
    for (yaml_node_pair_t *p = rc ? NULL : root->data.mapping.pairs.start;
         p && rc == KD_OK && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        const char *ks = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        int r = -1;
        for (int i = 0; i < KD_CHAT_N_ROLES; i++)
            if (!strcmp(ks, ROLE_NAMES[i])) r = i;
        if (!strcmp(ks, "bos")) {
            rc = ybool(path, v, "bos", &t->bos, err);
            seen_bos = 1;
        } else if (!strcmp(ks, "eos")) {
            rc = ybool(path, v, "eos", &t->eos, err);
            seen_eos = 1;
        } else if (r >= 0) {
            rc = yrole(t, r, &doc, path, v, err);
        } else {
            rc = yfail(err, path, k, "template", "a key bos|eos|system|user|assistant");
        }
    }
    if (rc == KD_OK &&
        (!seen_bos || !seen_eos || !t->has_role[KD_CHAT_USER] || !t->has_role[KD_CHAT_ASSISTANT]))
        rc = kd_fail(err, KD_EINPUT, "%s: expected keys bos, eos, user and assistant, found no %s",
                     path,
                     !seen_bos                    ? "bos"
                     : !seen_eos                  ? "eos"
                     : !t->has_role[KD_CHAT_USER] ? "user"
                                                  : "assistant");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc) {
        kd_chat_template_free(t);
        return rc;
    }
    *out = t;
    return KD_OK;
}

int kd_chat_template_load(kd_chat_template **out, const char *name, kd_error *err) {
    *out = NULL;
    if (!name || !strcmp(name, "bytes")) {
        *out = builtin_bytes();
        return KD_OK;
    }
    if (!strcmp(name, "llama3")) {
        *out = builtin_llama3();
        return KD_OK;
    }
    return load_yaml(out, name, err);
}

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

static void put_bytes(kd_chat_buf *b, const char *s, size_t n, uint8_t m) {
    buf_reserve(b, n);
    kd_tokenizer_bytes_encode(s, n, b->ids + b->n);
    memset(b->mask + b->n, m, n);
    b->n += n;
}

static void put_id(kd_chat_buf *b, int32_t id, uint8_t m) {
    buf_reserve(b, 1);
    b->ids[b->n] = id;
    b->mask[b->n++] = m;
}

void kd_chat_render_completion(const kd_chat_template *t, const char *content, size_t len,
                               kd_chat_buf *out) {
    const char *f = t->footer[KD_CHAT_ASSISTANT];
    put_bytes(out, content, len, 1);
    put_bytes(out, f, strlen(f), 1);
    if (t->eos) put_id(out, t->eos_id, 1);
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
        int r = msgs[i].role;
        put_bytes(out, t->header[r], strlen(t->header[r]), 0);
        if (r == KD_CHAT_ASSISTANT) {
            last = out->n;
            kd_chat_render_completion(t, msgs[i].content, msgs[i].len, out);
        } else {
            put_bytes(out, msgs[i].content, msgs[i].len, 0);
            put_bytes(out, t->footer[r], strlen(t->footer[r]), 0);
        }
    }
    if (gen_header) {
        const char *h = t->header[KD_CHAT_ASSISTANT];
        put_bytes(out, h, strlen(h), 0);
    }
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
        if (strlen(ROLE_NAMES[k]) == role->len && !strcmp(role->str, ROLE_NAMES[k])) {
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
                       kd_chat_buf *b, size_t *np, size_t *protect, kd_error *err) {
    if (v->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: expected an object {\"messages\": [...]}, found %s",
                       where, kd_json_type_name(v->type));
    const kd_json *arr = kd_json_get(v, "messages");
    if (!arr) return kd_fail(err, KD_EINPUT, "%s: expected a key \"messages\", found none", where);
    kd_chat_msg *m;
    int n, rc = kd_chat_parse_messages(arr, where, "messages", &m, &n, err), n_asst = 0;
    for (int i = 0; rc == KD_OK && i < n; i++) {
        if (m[i].role != KD_CHAT_ASSISTANT) continue;
        n_asst++;
        if (m[i].len == 0)
            rc = kd_fail(err, KD_EINPUT,
                         "%s: messages[%d].content: expected a non-empty assistant reply, "
                         "found \"\"",
                         where, i);
    }
    if (rc == KD_OK && n_asst == 0)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: messages: expected at least one assistant turn, found "
                     "none",
                     where);
    if (rc == KD_OK && m[n - 1].role != KD_CHAT_ASSISTANT)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: messages[%d].role: expected the conversation to end "
                     "with an assistant turn, found \"%s\"",
                     where, n - 1, kd_chat_role_name(m[n - 1].role));
    if (rc == KD_OK) {
        kd_chat_buf_reset(b);
        rc = kd_chat_render(t, m, n, 0, b, np, err);
        if (rc) kd_error_prefix(err, "%s: ", where);
    }
    *protect = strlen(t->header[KD_CHAT_ASSISTANT]);
    free(m);
    return rc;
}

int kd_chat_convert_jsonl(const char *jsonl, const char *out, const char *template_name,
                          size_t max_len, kd_chat_stats *stats, kd_error *err) {
    kd_chat_stats st = {0};
    kd_chat_template *t = NULL;
    kd_jsonl *r = NULL;
    kd_dataset_writer *w = NULL;
    kd_chat_buf b = {0};
    int rc = kd_chat_template_load(&t, template_name, err);
    if (rc == KD_OK) rc = kd_jsonl_open(&r, jsonl, err);
    if (rc == KD_OK)
        rc = kd_dataset_writer_open(&w, out, "sft", KD_TOK_BYTES_VOCAB, KD_TOK_BYTES_BOS,
                                    KD_TOK_BYTES_EOS, KD_TOK_BYTES_PAD, 1, KD_TOK_BYTES_NAME, err);
    while (rc == KD_OK) {
        kd_json *v = NULL;
        if ((rc = kd_jsonl_next(r, &v, err)) || !v) break;
        char where[1100];
        snprintf(where, sizeof where, "%s:%ld", jsonl, kd_jsonl_line(r));
        size_t np = 0, protect = 0;
        int pc = 0, cc = 0;
        rc = render_line(t, v, where, &b, &np, &protect, err);
        kd_json_free(v);
        if (rc == KD_OK) {
            rc = kd_chat_truncate(&b, &np, (size_t)t->bos, protect, 0, max_len, &pc, &cc, err);
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
    kd_chat_buf_free(&b);
    if (stats) *stats = st;
    return rc ? rc : rc2;
}
