// pretok.c: the pre-tokenizers of tokenizer.json: Split with one of the supported regexes
// (Isolated), ByteLevel (prefix space, GPT-2's regex) and Metaspace, run as a sequence over
// pieces of text. The regexes are matched by hand, alternative by alternative in the order
// the pattern lists them, with Oniguruma's classes (data/tok/unicode.h); an unknown pattern
// was refused when the file was read (kd_regex_lookup).
#include <string.h>

#include "data/tok/tok.h"
#include "data/tok/unicode.h"

// ---------------------------------------------------------------------------- patterns
// GPT-2's (ByteLevel's own), Llama 3's and Qwen 2's, exactly as tokenizer.json spells them.
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int kd_regex_lookup(const char *pattern, kd_regex_kind *kind) {
    if (!strcmp(pattern, RE_GPT2)) return *kind = KD_RE_GPT2, 0;
    if (!strcmp(pattern, RE_LLAMA3)) return *kind = KD_RE_LLAMA3, 0;
    if (!strcmp(pattern, RE_QWEN2)) return *kind = KD_RE_QWEN2, 0;
    return -1;
}

// ---------------------------------------------------------------------------- classes
#define CRLF 8 // \r or \n (also KD_UNI_S)
#define SLN (KD_UNI_S | KD_UNI_L | KD_UNI_N)

// ASCII classes without the table search: letters, digits, \t..\r and space.
static inline int ascii_class(unsigned c) {
    if ((c | 0x20) - 'a' < 26u) return KD_UNI_L;
    if (c - '0' < 10u) return KD_UNI_N;
    if (c == '\r' || c == '\n') return KD_UNI_S | CRLF;
    return c == ' ' || c - '\t' < 5u ? KD_UNI_S : 0;
}

// The class bits of the character at i; *len gets its length in bytes.
static inline int cls_at(const unsigned char *s, size_t n, size_t i, size_t *len) {
    unsigned c = s[i];
    if (c < 0x80) {
        *len = 1;
        return ascii_class(c);
    }
    uint32_t cp;
    *len = kd_utf8_next(s + i, n - i, &cp);
    return cp == 0xFFFFFFFFu ? 0 : kd_uni_class(cp);
}

// End of the run of characters from i whose class has (want = 1) or lacks (want = 0) a
// bit of mask.
static size_t run(const unsigned char *s, size_t n, size_t i, int mask, int want) {
    while (i < n) {
        size_t l;
        int c = cls_at(s, n, i, &l);
        if (((c & mask) != 0) != want) break;
        i += l;
    }
    return i;
}

// Length of a contraction 's 't 're 've 'm 'll 'd at i (0: none). icase: letters in any
// case, and U+017F (long s) for s, as Unicode case folding has it.
static size_t contraction(const unsigned char *s, size_t n, size_t i, int icase) {
    if (s[i] != '\'' || i + 1 >= n) return 0;
    unsigned c = s[i + 1], d = i + 2 < n ? s[i + 2] : 0;
    if (icase && c >= 'A' && c <= 'Z') c |= 0x20;
    if (icase && d >= 'A' && d <= 'Z') d |= 0x20;
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
    if (icase && c == 0xC5 && d == 0xBF) return 3;
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
    return 0;
}

// The whitespace alternatives from i (a whitespace character): \s*[\r\n]+ when crlf, then
// \s+(?!\S), then \s+.
static size_t match_space(const unsigned char *s, size_t n, size_t i, int crlf) {
    size_t j = i, last = i, nl = (size_t)-1;
    while (j < n) {
        size_t l;
        int c = cls_at(s, n, j, &l);
        if (!(c & KD_UNI_S)) break;
        if (c & CRLF) nl = j;
        last = j, j += l;
    }
    if (crlf && nl != (size_t)-1) return nl + 1;
    if (j == n || last == i) return j;
    return last; // give the last whitespace character to what follows
}

// ---------------------------------------------------------------------------- matchers
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
static size_t match_gpt2(const unsigned char *s, size_t n, size_t i) {
    size_t k = contraction(s, n, i, 0), l0, l;
    if (k) return i + k;
    int c0 = cls_at(s, n, i, &l0);
    size_t j = s[i] == ' ' ? i + 1 : i;
    if (j < n) {
        int c = cls_at(s, n, j, &l);
        if (c & KD_UNI_L) return run(s, n, j, KD_UNI_L, 1);
        if (c & KD_UNI_N) return run(s, n, j, KD_UNI_N, 1);
        if (!(c & SLN)) return run(s, n, j, SLN, 0);
    }
    if (c0 & KD_UNI_S) return match_space(s, n, i, 0);
    return i + l0;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+    (D = 3: Llama 3; D = 1: Qwen 2)
static size_t match_llama3(const unsigned char *s, size_t n, size_t i, int digits) {
    size_t k = contraction(s, n, i, 1), l0, l;
    if (k) return i + k;
    int c0 = cls_at(s, n, i, &l0);
    if (!(c0 & (KD_UNI_L | KD_UNI_N | CRLF)) && i + l0 < n && (cls_at(s, n, i + l0, &l) & KD_UNI_L))
        return run(s, n, i + l0, KD_UNI_L, 1);
    if (c0 & KD_UNI_L) return run(s, n, i, KD_UNI_L, 1);
    if (c0 & KD_UNI_N) {
        size_t j = i;
        for (int d = 0; d < digits && j < n && (cls_at(s, n, j, &l) & KD_UNI_N); d++) j += l;
        return j;
    }
    size_t j = s[i] == ' ' ? i + 1 : i;
    if (j < n && !(cls_at(s, n, j, &l) & SLN)) {
        j = run(s, n, j, SLN, 0);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    if (c0 & KD_UNI_S) return match_space(s, n, i, 1);
    return i + l0;
}

// Appends the matches of a regex over s[0..n) to out (they cover s: no gaps).
static void split_regex(kd_regex_kind re, const char *text, size_t n, kd_pieces *out) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        size_t e = re == KD_RE_GPT2 ? match_gpt2(s, n, i)
                                    : match_llama3(s, n, i, re == KD_RE_LLAMA3 ? 3 : 1);
        kd_pieces_add(out, text + i, e - i);
        i = e;
    }
}

// ---------------------------------------------------------------------------- steps
// Metaspace: spaces become the replacement character, which is prepended (per the scheme)
// unless the piece starts with it; with split, a piece starts at each replacement.
static void metaspace(const kd_pt_step *st, const char *s, size_t n, int first, kd_pieces *out,
                      kd_bytes *scratch) {
    char rep[4];
    size_t rl = kd_utf8_put(st->replacement, rep);
    scratch->n = 0;
    int prepend = st->prepend == KD_PREPEND_ALWAYS || (st->prepend == KD_PREPEND_FIRST && first);
    if (prepend && !(n && s[0] == ' ') && !(n >= rl && !memcmp(s, rep, rl)))
        kd_bytes_put(scratch, rep, rl);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            kd_bytes_put(scratch, rep, rl);
        else
            kd_bytes_put(scratch, s + i, 1);
    }
    const char *t = scratch->s;
    size_t m = scratch->n, start = 0;
    if (!st->split) {
        if (m) kd_pieces_add(out, t, m);
        return;
    }
    for (size_t i = 0; i + rl <= m; i++) {
        if (i > start && !memcmp(t + i, rep, rl)) {
            kd_pieces_add(out, t + start, i - start);
            start = i;
        }
    }
    if (m > start) kd_pieces_add(out, t + start, m - start);
}

static void run_step(const kd_pt_step *st, const char *s, size_t n, int first, kd_pieces *out,
                     kd_bytes *scratch) {
    switch (st->kind) {
    case KD_PT_SPLIT:
        split_regex(st->regex, s, n, out);
        return;
    case KD_PT_BYTELEVEL:
        if (st->add_prefix_space && !(n && s[0] == ' ')) {
            scratch->n = 0;
            kd_bytes_put(scratch, " ", 1);
            kd_bytes_put(scratch, s, n);
            s = scratch->s, n = scratch->n;
        }
        if (st->use_regex)
            split_regex(KD_RE_GPT2, s, n, out);
        else if (n)
            kd_pieces_add(out, s, n);
        return;
    case KD_PT_METASPACE:
        metaspace(st, s, n, first, out, scratch);
        return;
    }
}

void kd_pretok_run(const kd_pretok *p, const char *s, size_t n, int at_start, kd_pieces *out,
                   kd_pieces *tmp, kd_bytes *scratch) {
    kd_pieces_reset(out);
    if (n) kd_pieces_add(out, s, n);
    for (int k = 0; k < p->n; k++) {
        kd_pieces *in = out;
        kd_pieces_reset(tmp);
        for (size_t i = 0; i < in->n; i++)
            run_step(&p->step[k], in->buf.s + in->off[i], in->off[i + 1] - in->off[i],
                     at_start && i == 0, tmp, scratch);
        kd_pieces swap = *out;
        *out = *tmp, *tmp = swap;
    }
}
