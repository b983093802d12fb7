// tokenizer.c: the byte tokenizer (ids 0..255 = bytes, then BOS, EOS, PAD).
#include "data/tokenizer.h"

#include <stdio.h>

size_t kd_tokenizer_bytes_encode(const char *text, size_t n, int32_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (int32_t)(unsigned char)text[i];
    return n;
}

const char *kd_tokenizer_bytes_piece(int32_t id, char buf[16]) {
    if (id == KD_TOK_BYTES_BOS)
        snprintf(buf, 16, "<bos>");
    else if (id == KD_TOK_BYTES_EOS)
        snprintf(buf, 16, "<eos>");
    else if (id == KD_TOK_BYTES_PAD)
        snprintf(buf, 16, "<pad>");
    else if (id < 0 || id > 255)
        snprintf(buf, 16, "<%d?>", (int)id);
    else if (id == '\n')
        snprintf(buf, 16, "\\n");
    else if (id == '\t')
        snprintf(buf, 16, "\\t");
    else if (id == '\\')
        snprintf(buf, 16, "\\\\");
    else if (id >= 32 && id < 127)
        snprintf(buf, 16, "%c", (char)id);
    else
        snprintf(buf, 16, "\\x%02x", (unsigned)id);
    return buf;
}

size_t kd_tokenizer_bytes_decode(const int32_t *ids, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] <= 255) out[k++] = (char)ids[i];
    return k;
}
