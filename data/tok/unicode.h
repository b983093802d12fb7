// unicode.h: UTF-8 decoding and the three character classes the pre-tokenizer regexes use
// (\p{L} letters, \p{N} numbers, \s whitespace as Oniguruma defines it). Callers:
// data/tok/pretok.c, data/tok/bpe.c. The ranges are generated (unicode_tables.c, by
// gen_unicode_tables.py); invalid UTF-8 bytes decode as one-byte characters of no class.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum { KD_UNI_L = 1, KD_UNI_N = 2, KD_UNI_S = 4 };

typedef struct {
    uint32_t lo, hi; // inclusive code point range
    uint8_t cls;     // one KD_UNI_* class
} kd_uni_range;

extern const kd_uni_range kd_uni_ranges[];
extern const int kd_uni_nranges;

// The class of a code point (0: none of L, N, S).
int kd_uni_class(uint32_t cp);

// Length in bytes (1..4) of the UTF-8 character at s (n >= 1 bytes left); *cp gets its code
// point, or 0xFFFFFFFF for an invalid or truncated sequence (then the length is 1).
size_t kd_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

// Appends the UTF-8 encoding of cp (< 0x110000) to out; returns the byte count (1..4).
size_t kd_utf8_put(uint32_t cp, char *out);
