// decode.c: ids to text for a file-backed tokenizer: each id's token string, then the
// decoder chain of tokenizer.json (ByteLevel, Metaspace, Replace, ByteFallback, Fuse,
// Strip), each step turning a list of strings into another, as the `tokenizers` package
// decodes; no decoder joins the tokens with spaces.
#include <stdlib.h>
#include <string.h>

#include "data/tok/tok.h"
#include "data/tok/unicode.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; // U+FFFD

// Appends s[0..n) to out with each invalid UTF-8 sequence (a maximal invalid subpart)
// replaced by U+FFFD, as Rust's from_utf8_lossy does.
static void put_lossy(kd_bytes *out, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = kd_utf8_next(s + i, n - i, &cp);
        if (cp != 0xFFFFFFFFu) {
            kd_bytes_put(out, s + i, l);
            i += l;
            continue;
        }
        // the longest prefix of a valid sequence that starts here, then one U+FFFD
        unsigned c = s[i];
        size_t want = c >= 0xF0 && c <= 0xF4   ? 4
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xC2 && c <= 0xDF ? 2
                                               : 1;
        size_t k = 1;
        for (; k < want && i + k < n; k++) {
            unsigned d = s[i + k], lo = 0x80, hi = 0xBF;
            if (k == 1 && c == 0xE0) lo = 0xA0;
            if (k == 1 && c == 0xED) hi = 0x9F;
            if (k == 1 && c == 0xF0) lo = 0x90;
            if (k == 1 && c == 0xF4) hi = 0x8F;
            if (d < lo || d > hi) break;
        }
        kd_bytes_put(out, REPLACEMENT, 3);
        i += k;
    }
}

// ---------------------------------------------------------------------------- steps
static void piece(const kd_pieces *p, size_t i, const char **s, size_t *n) {
    *s = p->buf.s + p->off[i], *n = p->off[i + 1] - p->off[i];
}

static void dec_bytelevel(const kd_pieces *in, kd_pieces *out, kd_bytes *tmp) {
    tmp->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *s;
        size_t n, mark = tmp->n;
        piece(in, i, &s, &n);
        for (size_t j = 0; j < n;) {
            uint32_t cp;
            size_t l = kd_utf8_next((const unsigned char *)s + j, n - j, &cp);
            int b = cp == 0xFFFFFFFFu ? -1 : kd_bytelevel_byte(cp);
            if (b < 0) { // not all byte characters: the token's own bytes
                tmp->n = mark;
                kd_bytes_put(tmp, s, n);
                break;
            }
            char c = (char)b;
            kd_bytes_put(tmp, &c, 1);
            j += l;
        }
    }
    kd_bytes lossy = {0};
    put_lossy(&lossy, (const unsigned char *)tmp->s, tmp->n);
    kd_pieces_add(out, lossy.s, lossy.n);
    free(lossy.s);
}

static void dec_metaspace(const kd_dec_step *st, const kd_pieces *in, kd_pieces *out,
                          kd_bytes *tmp) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s;
        size_t n;
        piece(in, i, &s, &n);
        tmp->n = 0;
        for (size_t j = 0; j < n;) {
            uint32_t cp;
            size_t l = kd_utf8_next((const unsigned char *)s + j, n - j, &cp);
            if (cp != st->replacement)
                kd_bytes_put(tmp, s + j, l);
            else if (!(i == 0 && st->prepend))
                kd_bytes_put(tmp, " ", 1);
            j += l;
        }
        kd_pieces_add(out, tmp->s, tmp->n);
    }
}

static void dec_replace(const kd_dec_step *st, const kd_pieces *in, kd_pieces *out, kd_bytes *tmp) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s;
        size_t n;
        piece(in, i, &s, &n);
        tmp->n = 0;
        for (size_t j = 0; j < n;) {
            if (st->alen && j + st->alen <= n && !memcmp(s + j, st->a, st->alen)) {
                kd_bytes_put(tmp, st->b, st->blen);
                j += st->alen;
            } else {
                kd_bytes_put(tmp, s + j++, 1);
            }
        }
        kd_pieces_add(out, tmp->s, tmp->n);
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

// Pending <0xNN> bytes become their text if valid UTF-8, else one U+FFFD per byte.
static void flush_bytes(kd_bytes *pend, kd_pieces *out) {
    int valid = 1;
    for (size_t j = 0; j < pend->n;) {
        uint32_t cp;
        j += kd_utf8_next((const unsigned char *)pend->s + j, pend->n - j, &cp);
        if (cp == 0xFFFFFFFFu) valid = 0;
    }
    if (valid)
        kd_pieces_add(out, pend->s, pend->n);
    else
        for (size_t j = 0; j < pend->n; j++) kd_pieces_add(out, REPLACEMENT, 3);
    pend->n = 0;
}

static void dec_bytefallback(const kd_pieces *in, kd_pieces *out, kd_bytes *pend) {
    pend->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *s;
        size_t n;
        piece(in, i, &s, &n);
        if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hexval(s[3]) >= 0 &&
            hexval(s[4]) >= 0) {
            char b = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            kd_bytes_put(pend, &b, 1);
            continue;
        }
        if (pend->n) flush_bytes(pend, out);
        kd_pieces_add(out, s, n);
    }
    if (pend->n) flush_bytes(pend, out);
}

static void dec_strip(const kd_dec_step *st, const kd_pieces *in, kd_pieces *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s;
        size_t n, a = 0, z;
        piece(in, i, &s, &n);
        z = n;
        for (int k = 0; k < st->start && a + st->alen <= z && !memcmp(s + a, st->a, st->alen); k++)
            a += st->alen;
        for (int k = 0;
             k < st->stop && z >= a + st->alen && !memcmp(s + z - st->alen, st->a, st->alen); k++)
            z -= st->alen;
        kd_pieces_add(out, s + a, z - a);
    }
}

static void dec_step(const kd_dec_step *st, const kd_pieces *in, kd_pieces *out, kd_bytes *tmp) {
    kd_pieces_reset(out);
    switch (st->kind) {
    case KD_DEC_BYTELEVEL:
        dec_bytelevel(in, out, tmp);
        return;
    case KD_DEC_METASPACE:
        dec_metaspace(st, in, out, tmp);
        return;
    case KD_DEC_REPLACE:
        dec_replace(st, in, out, tmp);
        return;
    case KD_DEC_BYTEFALLBACK:
        dec_bytefallback(in, out, tmp);
        return;
    case KD_DEC_STRIP:
        dec_strip(st, in, out);
        return;
    case KD_DEC_FUSE:
        kd_pieces_add(out, in->buf.s, in->buf.n);
        return;
    }
}

// ---------------------------------------------------------------------------- decode
void kd_tok_decode(kd_tok *t, const int32_t *ids, size_t n, int skip_special, kd_strbuf *out) {
    kd_pieces a = {0}, b = {0};
    kd_bytes tmp = {0};
    kd_pieces_reset(&a);
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab || !t->tok[id] || (skip_special && t->special[id])) continue;
        kd_pieces_add(&a, t->tok[id], t->tok_len[id]);
    }
    for (int k = 0; k < t->n_dec; k++) {
        dec_step(&t->dec[k], &a, &b, &tmp);
        kd_pieces s = a;
        a = b, b = s;
    }
    for (size_t i = 0; i < a.n; i++) {
        if (!t->has_decoder && i) kd_strbuf_put(out, " ", 1);
        kd_strbuf_put(out, a.buf.s + a.off[i], a.off[i + 1] - a.off[i]);
    }
    if (!out->s) kd_strbuf_put(out, "", 0);
    kd_pieces_free(&a), kd_pieces_free(&b), free(tmp.s);
}
