// unicode.c: UTF-8 decoding and class lookup over the generated ranges (unicode.h).
#include "data/tok/unicode.h"

#include <pthread.h>

static int search(uint32_t cp) {
    int lo = 0, hi = kd_uni_nranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < kd_uni_ranges[mid].lo)
            hi = mid - 1;
        else if (cp > kd_uni_ranges[mid].hi)
            lo = mid + 1;
        else
            return kd_uni_ranges[mid].cls;
    }
    return 0;
}

// The classes of U+0000..U+FFFF, filled once: the binary search was a sixth of encoding.
static uint8_t bmp[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void fill_bmp(void) {
    for (uint32_t cp = 0; cp < 0x10000; cp++) bmp[cp] = (uint8_t)search(cp);
}

int kd_uni_class(uint32_t cp) {
    if (cp >= 0x10000) return search(cp);
    pthread_once(&bmp_once, fill_bmp);
    return bmp[cp];
}

size_t kd_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    *cp = 0xFFFFFFFFu;
    if (c < 0x80) return *cp = c, 1;
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 1;
    if (len > n) return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    *cp = v;
    return len;
}

size_t kd_utf8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) return o[0] = (unsigned char)cp, 1;
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6)), o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)),
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18)), o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
