// load.c: a parsed tokenizer.json into a kd_tok: the BPE model (vocab, merges, options),
// normalizer, pre-tokenizer, decoder and added tokens. Whatever would change the ids and
// is not implemented is refused with the file and the JSON key that names it (KD_EINPUT);
// padding, truncation and post_processor are not read (ids come without added BOS/EOS).
#include <stdlib.h>
#include <string.h>

#include "data/tok/tok.h"
#include "data/tok/unicode.h"

#define MAX_ID (1 << 26) // ids beyond this are refused rather than allocated

// ---------------------------------------------------------------------------- JSON helpers
static const char *str_or_null(const kd_json *o, const char *key) {
    const kd_json *v = kd_json_get(o, key);
    return v && v->type == KD_JSON_STRING ? v->str : NULL;
}

static int flag(const kd_json *o, const char *key) {
    const kd_json *v = kd_json_get(o, key);
    return v && v->type == KD_JSON_BOOL && v->boolean;
}

static const char *type_of(const kd_json *o) {
    const char *t = str_or_null(o, "type");
    return t ? t : "(no type)";
}

// A one-character string (its code point), for Metaspace's replacement.
static int one_char(const kd_json *o, const char *key, uint32_t *cp) {
    const char *s = str_or_null(o, key);
    if (!s || !*s) return -1;
    size_t l = kd_utf8_next((const unsigned char *)s, strlen(s), cp);
    return s[l] || *cp == 0xFFFFFFFFu ? -1 : 0;
}

static kd_prepend prepend_scheme(const kd_json *o) {
    const char *p = str_or_null(o, "prepend_scheme");
    if (p)
        return !strcmp(p, "first")   ? KD_PREPEND_FIRST
               : !strcmp(p, "never") ? KD_PREPEND_NEVER
                                     : KD_PREPEND_ALWAYS;
    const kd_json *a = kd_json_get(o, "add_prefix_space"); // files before prepend_scheme
    return a && a->type == KD_JSON_BOOL && !a->boolean ? KD_PREPEND_NEVER : KD_PREPEND_ALWAYS;
}

// The String of a Replace/Split pattern ({"String": "..."}), or NULL.
static const char *pattern_string(const kd_json *o) {
    const kd_json *p = kd_json_get(o, "pattern");
    return p ? str_or_null(p, "String") : NULL;
}

// ---------------------------------------------------------------------------- pre-tokenizer
static int pretok_step(kd_tok *t, const kd_json *o, const char *where, const char *key,
                       kd_error *err) {
    const char *type = type_of(o);
    if (!strcmp(type, "Sequence")) {
        const kd_json *list = kd_json_get(o, "pretokenizers");
        if (!list || list->type != KD_JSON_ARRAY)
            return kd_fail(err, KD_EINPUT, "%s: %s.pretokenizers: expected an array", where, key);
        for (size_t i = 0; i < list->n; i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", key, i);
            if (pretok_step(t, &list->items[i], where, sub, err)) return err->code;
        }
        return KD_OK;
    }
    kd_pretok *p = &t->pre;
    if (p->n == KD_TOK_MAX_STEPS)
        return kd_fail(err, KD_EINPUT, "%s: %s: more than %d steps", where, key, KD_TOK_MAX_STEPS);
    if (p->byte_level)
        return kd_fail(
            err, KD_EINPUT,
            "%s: %s: a '%s' step after ByteLevel is not supported (ByteLevel must be last)", where,
            key, type);
    kd_pt_step *st = &p->step[p->n];
    *st = (kd_pt_step){0};
    if (!strcmp(type, "Split")) {
        const kd_json *pat = kd_json_get(o, "pattern");
        const char *re = pat ? str_or_null(pat, "Regex") : NULL, *beh = str_or_null(o, "behavior");
        if (!re)
            return kd_fail(err, KD_EINPUT,
                           "%s: %s.pattern: only a Regex pattern is supported in a Split", where,
                           key);
        if (kd_regex_lookup(re, &st->regex))
            return kd_fail(err, KD_EINPUT,
                           "%s: %s.pattern.Regex: unknown pattern '%s' (supported: the GPT-2, "
                           "Llama 3 and Qwen 2 "
                           "patterns; docs/tokenizers.md)",
                           where, key, re);
        if (!beh || strcmp(beh, "Isolated") || flag(o, "invert"))
            return kd_fail(
                err, KD_EINPUT,
                "%s: %s.behavior: only \"Isolated\" without invert is supported, found '%s'", where,
                key, beh ? beh : "(none)");
        st->kind = KD_PT_SPLIT;
    } else if (!strcmp(type, "ByteLevel")) {
        const kd_json *ur = kd_json_get(o, "use_regex");
        st->kind = KD_PT_BYTELEVEL, st->regex = KD_RE_GPT2;
        st->use_regex = !ur || ur->type != KD_JSON_BOOL || ur->boolean;
        st->add_prefix_space = flag(o, "add_prefix_space");
        p->byte_level = 1;
    } else if (!strcmp(type, "Metaspace")) {
        const kd_json *sp = kd_json_get(o, "split");
        st->kind = KD_PT_METASPACE, st->prepend = prepend_scheme(o);
        st->split = !sp || sp->type != KD_JSON_BOOL || sp->boolean;
        if (one_char(o, "replacement", &st->replacement))
            return kd_fail(err, KD_EINPUT, "%s: %s.replacement: expected a one-character string",
                           where, key);
    } else {
        return kd_fail(
            err, KD_EINPUT,
            "%s: %s.type: '%s' is not supported (supported: Split, ByteLevel, Metaspace, "
            "Sequence)",
            where, key, type);
    }
    p->n++;
    return KD_OK;
}

// ---------------------------------------------------------------------------- normalizer
static int norm_step(kd_tok *t, const kd_json *o, const char *where, kd_error *err) {
    const char *type = type_of(o);
    if (!strcmp(type, "Sequence")) {
        const kd_json *list = kd_json_get(o, "normalizers");
        if (!list || list->type != KD_JSON_ARRAY)
            return kd_fail(err, KD_EINPUT, "%s: normalizer.normalizers: expected an array", where);
        for (size_t i = 0; i < list->n; i++)
            if (norm_step(t, &list->items[i], where, err)) return err->code;
        return KD_OK;
    }
    if (t->n_norm == KD_TOK_MAX_STEPS)
        return kd_fail(err, KD_EINPUT, "%s: normalizer: too many steps", where);
    kd_norm_step *st = &t->norm[t->n_norm];
    const char *a = NULL, *b = NULL;
    if (!strcmp(type, "Prepend")) {
        st->kind = KD_NORM_PREPEND, a = str_or_null(o, "prepend"), b = "";
    } else if (!strcmp(type, "Replace")) {
        st->kind = KD_NORM_REPLACE, a = pattern_string(o), b = str_or_null(o, "content");
    } else {
        return kd_fail(
            err, KD_EINPUT,
            "%s: normalizer.type: '%s' is not supported (supported: Prepend, Replace with a "
            "String pattern, Sequence of those, or null)",
            where, type);
    }
    if (!a || !b)
        return kd_fail(err, KD_EINPUT, "%s: normalizer: %s needs %s", where, type,
                       st->kind == KD_NORM_PREPEND ? "a 'prepend' string"
                                                   : "pattern.String and 'content'");
    st->a = kd_strdup(a), st->alen = strlen(a), st->b = kd_strdup(b), st->blen = strlen(b);
    t->n_norm++;
    return KD_OK;
}

// ---------------------------------------------------------------------------- decoder
static int int_field(const kd_json *o, const char *key, int dflt) {
    const kd_json *v = kd_json_get(o, key);
    return v && v->type == KD_JSON_NUMBER && v->is_int ? (int)v->integer : dflt;
}

static int dec_step(kd_tok *t, const kd_json *o, const char *where, kd_error *err) {
    const char *type = type_of(o);
    if (!strcmp(type, "Sequence")) {
        const kd_json *list = kd_json_get(o, "decoders");
        if (!list || list->type != KD_JSON_ARRAY)
            return kd_fail(err, KD_EINPUT, "%s: decoder.decoders: expected an array", where);
        for (size_t i = 0; i < list->n; i++)
            if (dec_step(t, &list->items[i], where, err)) return err->code;
        return KD_OK;
    }
    if (t->n_dec == KD_TOK_MAX_STEPS)
        return kd_fail(err, KD_EINPUT, "%s: decoder: too many steps", where);
    kd_dec_step *st = &t->dec[t->n_dec];
    *st = (kd_dec_step){0};
    const char *a = NULL, *b = NULL;
    if (!strcmp(type, "ByteLevel")) {
        st->kind = KD_DEC_BYTELEVEL;
    } else if (!strcmp(type, "Metaspace")) {
        st->kind = KD_DEC_METASPACE, st->prepend = prepend_scheme(o) != KD_PREPEND_NEVER;
        if (one_char(o, "replacement", &st->replacement))
            return kd_fail(err, KD_EINPUT,
                           "%s: decoder.replacement: expected a one-character string", where);
    } else if (!strcmp(type, "Replace")) {
        st->kind = KD_DEC_REPLACE, a = pattern_string(o), b = str_or_null(o, "content");
        if (!a || !b)
            return kd_fail(err, KD_EINPUT,
                           "%s: decoder: Replace needs pattern.String and 'content'", where);
    } else if (!strcmp(type, "ByteFallback")) {
        st->kind = KD_DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        st->kind = KD_DEC_FUSE;
    } else if (!strcmp(type, "Strip")) {
        st->kind = KD_DEC_STRIP, a = str_or_null(o, "content"), b = "";
        st->start = int_field(o, "start", 0), st->stop = int_field(o, "stop", 0);
        if (!a) return kd_fail(err, KD_EINPUT, "%s: decoder: Strip needs 'content'", where);
    } else {
        return kd_fail(err, KD_EINPUT,
                       "%s: decoder.type: '%s' is not supported (supported: ByteLevel, Metaspace, "
                       "Replace, ByteFallback, Fuse, Strip, Sequence)",
                       where, type);
    }
    if (a) st->a = kd_strdup(a), st->alen = strlen(a), st->b = kd_strdup(b), st->blen = strlen(b);
    t->n_dec++;
    return KD_OK;
}

// ---------------------------------------------------------------------------- vocabulary
// The id of a JSON number, or -1 when it is not an integer in [0, MAX_ID).
static int32_t id_of(const kd_json *v) {
    return v && v->type == KD_JSON_NUMBER && v->is_int && v->integer >= 0 && v->integer < MAX_ID
               ? (int32_t)v->integer
               : -1;
}

// The raw bytes a ByteLevel token string stands for; -1 if a character is not one of the
// 256 byte characters (such a token can never be formed from text).
static int bytelevel_key(const char *s, size_t n, kd_bytes *out) {
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += kd_utf8_next((const unsigned char *)s + i, n - i, &cp);
        int b = cp == 0xFFFFFFFFu ? -1 : kd_bytelevel_byte(cp);
        if (b < 0) return -1;
        char c = (char)b;
        kd_bytes_put(out, &c, 1);
    }
    return 0;
}

static void set_token(kd_tok *t, int32_t id, const char *s, size_t n) {
    free(t->tok[id]);
    t->tok[id] = kd_malloc(n + 1);
    memcpy(t->tok[id], s, n);
    t->tok[id][n] = '\0';
    t->tok_len[id] = n;
}

static int read_vocab(kd_tok *t, const kd_json *vocab, const char *where, kd_error *err) {
    kd_bytes key = {0};
    for (size_t i = 0; i < vocab->n; i++) {
        const kd_json *v = &vocab->items[i];
        int32_t id = id_of(v);
        if (id < 0 || id >= t->vocab) {
            free(key.s);
            return kd_fail(err, KD_EINPUT, "%s: model.vocab['%s']: expected an id in [0, %d)",
                           where, v->key, MAX_ID);
        }
        set_token(t, id, v->key, v->key_len);
        if (!t->pre.byte_level)
            kd_bpe_add_vocab(t->bpe, v->key, v->key_len, id);
        else if (!bytelevel_key(v->key, v->key_len, &key))
            kd_bpe_add_vocab(t->bpe, key.s, key.n, id);
    }
    free(key.s);
    return KD_OK;
}

// One merge, "A B" (the tokenizers 0.19 form) or ["A", "B"] (later versions).
static int read_merge(kd_tok *t, const kd_json *m, int32_t rank, const char *where, kd_error *err) {
    const char *a, *b;
    size_t alen, blen;
    const char *sp = m->type == KD_JSON_STRING ? strchr(m->str, ' ') : NULL;
    if (sp && !strchr(sp + 1, ' ')) {
        a = m->str, alen = (size_t)(sp - m->str), b = sp + 1, blen = m->len - alen - 1;
    } else if (m->type == KD_JSON_ARRAY && m->n == 2 && m->items[0].type == KD_JSON_STRING &&
               m->items[1].type == KD_JSON_STRING) {
        a = m->items[0].str, alen = m->items[0].len, b = m->items[1].str, blen = m->items[1].len;
    } else {
        return kd_fail(err, KD_EINPUT, "%s: model.merges[%d]: expected \"A B\" or [\"A\", \"B\"]",
                       where, (int)rank);
    }
    if (!t->pre.byte_level) {
        if (kd_bpe_add_merge(t->bpe, a, alen, b, blen, rank, err))
            return kd_error_prefix(err, "%s: ", where), err->code;
        return KD_OK;
    }
    kd_bytes ka = {0}, kb = {0};
    int rc = KD_OK;
    if (!bytelevel_key(a, alen, &ka) && !bytelevel_key(b, blen, &kb) &&
        kd_bpe_add_merge(t->bpe, ka.s, ka.n, kb.s, kb.n, rank, err)) {
        kd_fail(
            err, KD_EINPUT,
            "%s: model.merges[%d] ('%.*s %.*s'): a part or the merged token is not in model.vocab",
            where, (int)rank, (int)alen, a, (int)blen, b);
        rc = err->code;
    }
    free(ka.s), free(kb.s);
    return rc;
}

// ---------------------------------------------------------------------------- model
static int read_options(const kd_json *model, const char *where, kd_bpe_opts *o, kd_error *err) {
    const char *type = type_of(model);
    if (strcmp(type, "BPE"))
        return kd_fail(err, KD_EINPUT, "%s: model.type: '%s' is not supported (supported: BPE)",
                       where, type);
    const kd_json *drop = kd_json_get(model, "dropout");
    if (drop && drop->type == KD_JSON_NUMBER && drop->number != 0.0)
        return kd_fail(err, KD_EINPUT,
                       "%s: model.dropout: BPE dropout is not supported (expected null)", where);
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const char *v = str_or_null(model, keys[k]);
        if (v && *v)
            return kd_fail(err, KD_EINPUT, "%s: model.%s: '%s' is not supported (expected null)",
                           where, keys[k], v);
    }
    o->byte_fallback = flag(model, "byte_fallback");
    o->fuse_unk = flag(model, "fuse_unk");
    o->ignore_merges = flag(model, "ignore_merges");
    return KD_OK;
}

// The id the `tokenizers` package gives an added token when it loads the file: an earlier
// added token's or the vocabulary's id for the same content, else the next id after the
// vocabulary's n_vocab entries and the added tokens given new ids so far (*n_new).
static int32_t expected_id(const kd_tok *t, const char *s, size_t n, size_t n_vocab,
                           int32_t *n_new) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, s, n)) return t->added[i].id;
    int32_t id = -1;
    kd_bytes key = {0};
    if (!t->pre.byte_level)
        id = kd_bpe_lookup(t->bpe, s, n);
    else if (!bytelevel_key(s, n, &key))
        id = kd_bpe_lookup(t->bpe, key.s, key.n);
    free(key.s);
    return id >= 0 ? id : (int32_t)n_vocab + (*n_new)++;
}

static int read_added(kd_tok *t, const kd_json *list, size_t n_vocab, const char *where,
                      kd_error *err) {
    int32_t n_new = 0;
    t->added = kd_calloc(list->n ? list->n : 1, sizeof *t->added);
    for (size_t i = 0; i < list->n; i++) {
        const kd_json *a = &list->items[i];
        const kd_json *c = kd_json_get(a, "content");
        int32_t id = id_of(kd_json_get(a, "id"));
        if (!c || c->type != KD_JSON_STRING || !c->len || id < 0)
            return kd_fail(err, KD_EINPUT,
                           "%s: added_tokens[%zu]: expected a non-empty 'content' and an 'id'",
                           where, i);
        int32_t want = expected_id(t, c->str, c->len, n_vocab, &n_new);
        if (id != want)
            return kd_fail(
                err, KD_EINPUT,
                "%s: added_tokens[%zu].id: %d for '%s', but the tokenizers package would give "
                "it %d (model.vocab has %zu entries): an inconsistent file",
                where, i, (int)id, c->str, (int)want, n_vocab);
        const char *opts[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3; k++)
            if (flag(a, opts[k]))
                return kd_fail(err, KD_EINPUT,
                               "%s: added_tokens[%zu].%s: true is not supported ('%s')", where, i,
                               opts[k], c->str);
        kd_added *d = &t->added[t->n_added++];
        d->content = kd_malloc(c->len + 1);
        memcpy(d->content, c->str, c->len + 1);
        d->len = c->len, d->id = id, d->special = flag(a, "special");
        const kd_json *nz = kd_json_get(a, "normalized");
        d->normalized = nz && nz->type == KD_JSON_BOOL ? nz->boolean : !d->special;
    }
    return KD_OK;
}

// Highest id + 1 over model.vocab and added_tokens (ids out of range count as 0: refused
// when read).
static int32_t vocab_bound(const kd_json *vocab, const kd_json *added) {
    int32_t top = 0;
    for (size_t i = 0; i < vocab->n; i++)
        if (id_of(&vocab->items[i]) >= top) top = id_of(&vocab->items[i]) + 1;
    for (size_t i = 0; added && i < added->n; i++) {
        int32_t id = id_of(kd_json_get(&added->items[i], "id"));
        if (id >= top) top = id + 1;
    }
    return top;
}

static int read_model(kd_tok *t, const kd_json *model, const kd_json *added, const char *where,
                      kd_error *err) {
    kd_bpe_opts o = {.unk = -1};
    if (read_options(model, where, &o, err)) return err->code;
    const kd_json *vocab = kd_json_get(model, "vocab"), *merges = kd_json_get(model, "merges");
    if (!vocab || vocab->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: model.vocab: expected an object of token: id", where);
    if (!merges || merges->type != KD_JSON_ARRAY)
        return kd_fail(err, KD_EINPUT, "%s: model.merges: expected an array", where);
    o.byte_level = t->pre.byte_level;
    t->bpe = kd_bpe_new(o);
    t->vocab = vocab_bound(vocab, added);
    t->tok = kd_calloc((size_t)t->vocab + 1, sizeof *t->tok);
    t->tok_len = kd_calloc((size_t)t->vocab + 1, sizeof *t->tok_len);
    t->special = kd_calloc((size_t)t->vocab + 1, 1);
    if (read_vocab(t, vocab, where, err)) return err->code;
    for (size_t i = 0; i < merges->n; i++)
        if (read_merge(t, &merges->items[i], (int32_t)i, where, err)) return err->code;
    const char *unk = str_or_null(model, "unk_token");
    if (unk) {
        o.unk = kd_bpe_lookup(t->bpe, unk, strlen(unk));
        for (int32_t id = 0; o.unk < 0 && id < t->vocab; id++)
            if (t->tok[id] && !strcmp(t->tok[id], unk)) o.unk = id;
        if (o.unk < 0)
            return kd_fail(err, KD_EINPUT, "%s: model.unk_token: '%s' is not in model.vocab", where,
                           unk);
    }
    kd_bpe_ready(t->bpe, o.unk);
    return KD_OK;
}

// ---------------------------------------------------------------------------- the file
int kd_tok_from_json(kd_tok *t, const kd_json *root, const char *where, kd_error *err) {
    if (root->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: expected a JSON object", where);
    const kd_json *model = kd_json_get(root, "model"), *added = kd_json_get(root, "added_tokens");
    const kd_json *norm = kd_json_get(root, "normalizer"),
                  *pre = kd_json_get(root, "pre_tokenizer");
    const kd_json *dec = kd_json_get(root, "decoder");
    if (!model || model->type != KD_JSON_OBJECT)
        return kd_fail(err, KD_EINPUT, "%s: model: missing (expected the tokenizer's model object)",
                       where);
    if (added && added->type != KD_JSON_ARRAY && added->type != KD_JSON_NULL)
        return kd_fail(err, KD_EINPUT, "%s: added_tokens: expected an array", where);
    if (added && added->type == KD_JSON_NULL) added = NULL;
    if (norm && norm->type == KD_JSON_OBJECT && norm_step(t, norm, where, err)) return err->code;
    if (pre && pre->type == KD_JSON_OBJECT && pretok_step(t, pre, where, "pre_tokenizer", err))
        return err->code;
    if (dec && dec->type == KD_JSON_OBJECT) {
        t->has_decoder = 1;
        if (dec_step(t, dec, where, err)) return err->code;
    }
    if (read_model(t, model, added, where, err)) return err->code;
    if (added) {
        if (read_added(t, added, kd_json_get(model, "vocab")->n, where, err)) return err->code;
        for (int i = 0; i < t->n_added; i++) {
            kd_added *a = &t->added[i];
            set_token(t, a->id, a->content, a->len);
            t->special[a->id] = (uint8_t)a->special;
        }
        kd_tok_added_patterns(t);
    }
    return KD_OK;
}
