// chat_template.c: chat templates: the built-in ones by name (bytes, llama3, chatml,
// mistral), the YAML form, and binding a template to a tokenizer (special ids, marker
// tokens as single ids, headers and footers encoded once). Rendering is data/chat.c.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/chat.h"
#include "runtime/base/yaml_tree.h"

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
    t->turn_end_id = -1;
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

// "llama3": the Llama 3 instruct format. BOS is <|begin_of_text|>; a turn ends with
// <|eot_id|>, which is the stop id of a real tokenizer. With the byte tokenizer the
// markers are plain bytes, so EOS follows <|eot_id|> to give generation a stop id.
static kd_chat_template *builtin_llama3(int bytes) {
    kd_chat_template *t = template_new("llama3");
    t->bos = 1, t->eos = bytes;
    t->turn_end = "<|eot_id|>";
    char h[96];
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        snprintf(h, sizeof h, "<|start_header_id|>%s<|end_header_id|>\n\n", ROLE_NAMES[r]);
        set_role(t, r, h, "<|eot_id|>");
    }
    return t;
}

// "chatml": <|im_start|>ROLE\n ... <|im_end|>\n (Qwen and others): no BOS with a real
// tokenizer, <|im_end|> ends a turn and generation. With bytes: BOS first, EOS after the
// assistant footer, as for every byte template.
static kd_chat_template *builtin_chatml(int bytes) {
    kd_chat_template *t = template_new("chatml");
    t->bos = bytes, t->eos = bytes;
    t->turn_end = "<|im_end|>";
    char h[64];
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        snprintf(h, sizeof h, "<|im_start|>%s\n", ROLE_NAMES[r]);
        set_role(t, r, h, "<|im_end|>\n");
    }
    return t;
}

// "mistral": <s>[INST] USER [/INST]ASSISTANT</s>[INST] ... (Mistral / Llama 2 instruct).
// No system role (refused like any role a template lacks). [INST] and [/INST] are single
// ids where the tokenizer has them as added tokens (Mistral v3), text otherwise.
static kd_chat_template *builtin_mistral(void) {
    kd_chat_template *t = template_new("mistral");
    t->bos = t->eos = 1;
    set_role(t, KD_CHAT_USER, "[INST] ", " [/INST]");
    set_role(t, KD_CHAT_ASSISTANT, "", "");
    return t;
}
void kd_chat_template_free(kd_chat_template *t) {
    if (!t) return;
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        free(t->header[r]);
        free(t->footer[r]);
        kd_ids_free(&t->header_ids[r]);
        kd_ids_free(&t->footer_ids[r]);
    }
    if (t->own_tok) kd_tokenizer_free(t->own_tok);
    free(t);
}

// --- YAML template files

// "PATH:LINE:COL: KEY: expected EXPECTED, found 'TEXT'" (a scalar) or "found a mapping".
static int yfail_at(kd_error *err, const char *path, int line, int col, const kd_yaml_node *n,
                    const char *found_key, const char *key, const char *expected) {
    const char *found = found_key                   ? found_key
                        : n->kind == KD_YAML_SCALAR ? n->text
                        : n->kind == KD_YAML_MAP    ? "a mapping"
                                                    : "a sequence";
    int quote = found_key || n->kind == KD_YAML_SCALAR;
    return kd_fail(err, KD_EINPUT, "%s:%d:%d: %s: expected %s, found %s%s%s", path, line, col, key,
                   expected, quote ? "'" : "", found, quote ? "'" : "");
}

// A node that is not what `key` expects.
static int yfail(kd_error *err, const char *path, const kd_yaml_node *n, const char *key,
                 const char *expected) {
    return yfail_at(err, path, n->line, n->col, n, NULL, key, expected);
}

// A map key that is not one of those expected under `key`.
static int yfail_key(kd_error *err, const char *path, const kd_yaml_pair *p, const char *key,
                     const char *expected) {
    return yfail_at(err, path, p->line, p->col, NULL, p->key, key, expected);
}

static int ybool(const char *path, const kd_yaml_node *n, const char *key, int *v, kd_error *err) {
    if (n->kind == KD_YAML_SCALAR && (!strcmp(n->text, "true") || !strcmp(n->text, "false"))) {
        *v = n->text[0] == 't';
        return KD_OK;
    }
    return yfail(err, path, n, key, "true or false");
}

// One role's mapping {header: str, footer: str}; both optional (default "").
static int yrole(kd_chat_template *t, int r, const char *path, const kd_yaml_node *m,
                 kd_error *err) {
    if (m->kind != KD_YAML_MAP)
        return yfail(err, path, m, ROLE_NAMES[r], "a mapping {header: \"...\", footer: \"...\"}");
    t->has_role[r] = 1;
    for (int i = 0; i < m->n; i++) {
        const kd_yaml_pair *p = &m->pairs[i];
        char kp[96];
        snprintf(kp, sizeof kp, "%s.%s", ROLE_NAMES[r], p->key);
        int is_h = !strcmp(p->key, "header");
        if (!is_h && strcmp(p->key, "footer"))
            return yfail_key(err, path, p, ROLE_NAMES[r], "key header or footer");
        if (p->val->kind != KD_YAML_SCALAR) return yfail(err, path, p->val, kp, "a string");
        set_str(is_h ? &t->header[r] : &t->footer[r], p->val->text);
    }
    return KD_OK;
}

// yaml_tree words a syntax error "PATH:LINE:COL: YAML syntax error: PROBLEM[ CONTEXT]";
// template files have always said "PATH:LINE:COL: expected valid YAML, found PROBLEM"
// (libyaml's contexts all begin with "while ").
static void reword_syntax_error(kd_error *err) {
    const char *tag = ": YAML syntax error: ";
    char *at = strstr(err->msg, tag);
    if (!at) return;
    char problem[sizeof err->msg];
    snprintf(problem, sizeof problem, "%s", at + strlen(tag));
    char *ctx = strstr(problem, " while ");
    if (ctx) *ctx = '\0';
    if (!strcmp(problem, "unknown problem")) snprintf(problem, sizeof problem, "a syntax error");
    snprintf(at, sizeof err->msg - (size_t)(at - err->msg), ": expected valid YAML, found %s",
             problem);
}

// The template's keys: bos, eos (both required), system, user, assistant (user and
// assistant required).
static int ytemplate(kd_chat_template *t, const char *path, const kd_yaml_node *root,
                     kd_error *err) {
    if (root->kind != KD_YAML_MAP)
        return yfail(err, path, root, "template",
                     "a mapping with bos, eos, system, user, assistant");
    int seen_bos = 0, seen_eos = 0, rc = KD_OK;
    for (int i = 0; i < root->n && rc == KD_OK; i++) {
        const kd_yaml_pair *p = &root->pairs[i];
        int r = -1;
        for (int k = 0; k < KD_CHAT_N_ROLES; k++)
            if (!strcmp(p->key, ROLE_NAMES[k])) r = k;
        if (!strcmp(p->key, "bos")) {
            rc = ybool(path, p->val, "bos", &t->bos, err);
            seen_bos = 1;
        } else if (!strcmp(p->key, "eos")) {
            rc = ybool(path, p->val, "eos", &t->eos, err);
            seen_eos = 1;
        } else if (r >= 0) {
            rc = yrole(t, r, path, p->val, err);
        } else {
            rc = yfail_key(err, path, p, "template", "a key bos|eos|system|user|assistant");
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
    return rc;
}

static int load_yaml(kd_chat_template **out, const char *path, kd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return kd_fail(
            err, KD_EINPUT,
            "%s: expected a built-in template (bytes|llama3|chatml|mistral) or a readable YAML "
            "file, found neither: %s",
            path, strerror(errno));
    kd_yaml_node *root = NULL;
    int rc = kd_yaml_parse_file(f, path, &root, err);
    fclose(f);
    if (rc) {
        reword_syntax_error(err);
        return rc;
    }
    kd_chat_template *t = template_new(path);
    if (!root)
        rc = kd_fail(err, KD_EINPUT, "%s: expected a template mapping, found an empty file", path);
    else
        rc = ytemplate(t, path, root, err);
    kd_yaml_free(root);
    if (rc) {
        kd_chat_template_free(t);
        return rc;
    }
    *out = t;
    return KD_OK;
}

// --- binding a template to a tokenizer

// Every "<|...|>" marker of the template's strings must be a token of a real tokenizer:
// encoded as text it would silently become several ids the model never saw as a marker.
static int check_markers(const kd_chat_template *t, const kd_tokenizer *tok, kd_error *err) {
    for (int r = 0; r < KD_CHAT_N_ROLES; r++)
        for (int k = 0; k < 2; k++) {
            const char *s = k ? t->footer[r] : t->header[r];
            for (const char *a = strstr(s, "<|"); a; a = strstr(a + 2, "<|")) {
                const char *b = strstr(a + 2, "|>");
                if (!b) break;
                char tokname[128];
                snprintf(tokname, sizeof tokname, "%.*s", (int)(b + 2 - a), a);
                if (kd_tokenizer_token_id(tok, tokname) < 0)
                    return kd_fail(err, KD_EINPUT,
                                   "template '%s' needs the special token '%s' (%s.%s), which "
                                   "tokenizer '%s' does not have",
                                   t->name, tokname, ROLE_NAMES[r], k ? "footer" : "header",
                                   kd_tokenizer_name(tok));
            }
        }
    return KD_OK;
}

// Special ids from the tokenizer, markers checked, headers and footers encoded (special
// tokens matched: "<|eot_id|>" is one id where the tokenizer has it).
static int bind(kd_chat_template *t, const kd_tokenizer *tok, int bytes, kd_error *err) {
    t->tok = tok;
    if (!bytes) {
        int32_t stop[KD_TOK_MAX_STOP];
        int ns = kd_tokenizer_stop_ids(tok, stop);
        t->bos_id = kd_tokenizer_bos(tok);
        t->eos_id = ns > 0 ? stop[0] : -1;
        if (t->bos && t->bos_id < 0)
            return kd_fail(err, KD_EINPUT,
                           "template '%s' starts with BOS, but tokenizer '%s' has no BOS id",
                           t->name, kd_tokenizer_name(tok));
        if (t->eos && t->eos_id < 0)
            return kd_fail(err, KD_EINPUT,
                           "template '%s' ends replies with EOS, but tokenizer '%s' has no EOS id",
                           t->name, kd_tokenizer_name(tok));
        int rc = check_markers(t, tok, err);
        if (rc) return rc;
        if (t->turn_end) t->turn_end_id = kd_tokenizer_token_id(tok, t->turn_end);
    }
    for (int r = 0; r < KD_CHAT_N_ROLES; r++) {
        int rc =
            kd_tokenizer_encode(tok, t->header[r], strlen(t->header[r]), 1, &t->header_ids[r], err);
        if (!rc)
            rc = kd_tokenizer_encode(tok, t->footer[r], strlen(t->footer[r]), 1, &t->footer_ids[r],
                                     err);
        if (rc) {
            kd_error_prefix(err, "template '%s': %s: ", t->name, ROLE_NAMES[r]);
            return rc;
        }
    }
    return KD_OK;
}

int kd_chat_template_load_tok(kd_chat_template **out, const char *name, const kd_tokenizer *tok,
                              kd_error *err) {
    *out = NULL;
    kd_tokenizer *own = NULL;
    if (!tok) {
        int rc = kd_tokenizer_open(&own, KD_TOK_BYTES_NAME, err);
        if (rc) return rc;
        tok = own;
    }
    int bytes = !strcmp(kd_tokenizer_name(tok), KD_TOK_BYTES_NAME), rc = KD_OK;
    kd_chat_template *t = NULL;
    if (!name || !strcmp(name, "bytes"))
        t = builtin_bytes();
    else if (!strcmp(name, "llama3"))
        t = builtin_llama3(bytes);
    else if (!strcmp(name, "chatml"))
        t = builtin_chatml(bytes);
    else if (!strcmp(name, "mistral"))
        t = builtin_mistral();
    else
        rc = load_yaml(&t, name, err);
    if (rc == KD_OK) {
        t->own_tok = own;
        own = NULL;
        rc = bind(t, tok, bytes, err);
    }
    if (own) kd_tokenizer_free(own);
    if (rc) {
        kd_chat_template_free(t);
        return rc;
    }
    *out = t;
    return KD_OK;
}

void kd_chat_template_vocab(const kd_chat_template *t, kd_vocab *v) {
    kd_vocab_from_tokenizer(v, t->tok);
    if (t->turn_end_id >= 0) kd_vocab_add_stop(v, t->turn_end_id);
}

int kd_chat_template_load(kd_chat_template **out, const char *name, kd_error *err) {
    return kd_chat_template_load_tok(out, name, NULL, err);
}
