// encode.c: text to ids for a file-backed tokenizer: added tokens matched first (those not
// normalized on the raw text, then the normalized ones on the normalized text; leftmost,
// then longest), the normalizer, the pre-tokenizer and BPE per word, in the order the
// `tokenizers` package applies them. Also the byte buffers and pieces of tok.h.
#include <stdlib.h>
#include <string.h>

#include "data/tok/tok.h"

// ---------------------------------------------------------------------------- buffers
void kd_bytes_put(kd_bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * b->cap + n + 64;
        b->s = kd_realloc(b->s, b->cap);
    }
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
}

void kd_strbuf_put(kd_strbuf *b, const void *p, size_t n) {
    if (!b->s || b->cap - b->n < n + 1) {
        b->cap = b->cap * 2 + n + 256;
        b->s = kd_realloc(b->s, b->cap);
    }
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void kd_pieces_reset(kd_pieces *p) {
    p->buf.n = 0, p->n = 0;
    if (!p->off) p->cap = 64, p->off = kd_malloc(p->cap * sizeof(size_t));
    p->off[0] = 0;
}

void kd_pieces_add(kd_pieces *p, const void *s, size_t n) {
    if (p->n + 2 > p->cap) {
        p->cap = 2 * p->cap + 64;
        p->off = kd_realloc(p->off, p->cap * sizeof(size_t));
    }
    kd_bytes_put(&p->buf, s, n);
    p->off[++p->n] = p->buf.n;
}

void kd_pieces_free(kd_pieces *p) {
    free(p->buf.s), free(p->off);
    *p = (kd_pieces){0};
}

// ---------------------------------------------------------------------------- added tokens
// The added token matching at s[i..n) (the longest; normalized selects the set), or NULL.
// special = 0 leaves special tokens to be encoded as text.
static const kd_added *added_at(const kd_tok *t, const char *s, size_t n, size_t i, int normalized,
                                int special) {
    const kd_added *best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const kd_added *a = &t->added[k];
        if (a->normalized != normalized || (a->special && !special) || !a->plen || a->plen > n - i)
            continue;
        if (a->pat[0] != s[i] || memcmp(a->pat, s + i, a->plen)) continue;
        if (!best || a->plen > best->plen) best = a;
    }
    return best;
}

// ---------------------------------------------------------------------------- normalizer
// Applies the normalizer steps to s[0..n); the result is in t->norm_buf (or s itself when
// there is no normalizer). Returns the text and sets *m to its length.
static const char *normalize(kd_tok *t, const char *s, size_t n, size_t *m) {
    if (!t->n_norm || !n) return *m = n, s;
    kd_bytes a = {0}, *out = &t->norm_buf;
    kd_bytes_put(&a, s, n);
    for (int k = 0; k < t->n_norm; k++) {
        const kd_norm_step *st = &t->norm[k];
        out->n = 0;
        if (st->kind == KD_NORM_PREPEND) {
            if (a.n) kd_bytes_put(out, st->a, st->alen);
            kd_bytes_put(out, a.s, a.n);
        } else {
            for (size_t i = 0; i < a.n;) {
                if (st->alen && i + st->alen <= a.n && !memcmp(a.s + i, st->a, st->alen)) {
                    kd_bytes_put(out, st->b, st->blen);
                    i += st->alen;
                } else {
                    kd_bytes_put(out, a.s + i++, 1);
                }
            }
        }
        a.n = 0;
        kd_bytes_put(&a, out->s, out->n);
    }
    free(a.s);
    *m = out->n;
    return out->s;
}

void kd_tok_added_patterns(kd_tok *t) {
    memset(t->added_first, 0, sizeof t->added_first);
    for (int k = 0; k < t->n_added; k++) {
        kd_added *a = &t->added[k];
        size_t n = a->len;
        const char *p = a->normalized ? normalize(t, a->content, a->len, &n) : a->content;
        free(a->pat);
        a->pat = kd_malloc(n + 1);
        memcpy(a->pat, p, n);
        a->pat[n] = '\0', a->plen = n;
        if (n) t->added_first[(unsigned char)p[0]] = 1;
    }
}

// ---------------------------------------------------------------------------- encode
static void encode_words(kd_tok *t, const char *s, size_t n, int at_start, kd_ids *out) {
    kd_pretok_run(&t->pre, s, n, at_start, &t->words, &t->tmp, &t->scratch);
    for (size_t i = 0; i < t->words.n; i++)
        kd_bpe_word(t->bpe, t->words.buf.s + t->words.off[i], t->words.off[i + 1] - t->words.off[i],
                    out);
}

// A span of raw text without non-normalized added tokens: normalize, match the normalized
// added tokens, pre-tokenize and encode the rest.
static void encode_span(kd_tok *t, const char *raw, size_t rn, int at_start, int special,
                        kd_ids *out) {
    size_t n;
    const char *s = normalize(t, raw, rn, &n);
    kd_pieces *seg = &t->seg; // s may live in norm_buf: copy before encode_words reuses it
    kd_pieces_reset(seg);
    kd_pieces_add(seg, s, n);
    s = seg->buf.s;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const kd_added *a =
            t->added_first[(unsigned char)s[i]] ? added_at(t, s, n, i, 1, special) : NULL;
        if (!a) continue;
        if (i > start) encode_words(t, s + start, i - start, at_start && start == 0, out);
        kd_ids_push(out, a->id);
        start = i + a->plen;
        i = start - 1;
    }
    if (n > start) encode_words(t, s + start, n - start, at_start && start == 0, out);
}

int kd_tok_encode(kd_tok *t, const char *text, size_t n, int special, kd_ids *out) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const kd_added *a =
            t->added_first[(unsigned char)text[i]] ? added_at(t, text, n, i, 0, special) : NULL;
        if (!a) continue;
        if (i > start) encode_span(t, text + start, i - start, start == 0, special, out);
        kd_ids_push(out, a->id);
        start = i + a->plen;
        i = start - 1;
    }
    if (n > start) encode_span(t, text + start, n - start, start == 0, special, out);
    return KD_OK;
}
