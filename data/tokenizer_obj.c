// tokenizer_obj.c: the kd_tokenizer object behind data/tokenizer.h: opening a spec,
// its identity (name, fingerprint, special ids) and encode/decode, dispatched to the
// byte vocabulary here or to a file-backed model (data/tok/).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tok/tok.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "runtime/base/sha256.h"

struct kd_tokenizer {
    kd_tok *tok; // NULL: the byte vocabulary
    char name[128];
    char fingerprint[65];
    int32_t vocab, bos, pad;
    int32_t stop[KD_TOK_MAX_STOP];
    int n_stop;
};

void kd_ids_push(kd_ids *a, int32_t id) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = kd_realloc(a->v, a->cap * sizeof(int32_t));
    }
    a->v[a->n++] = id;
}

void kd_ids_free(kd_ids *a) {
    free(a->v);
    *a = (kd_ids){0};
}

static void open_bytes(kd_tokenizer *t) {
    snprintf(t->name, sizeof t->name, "%s", KD_TOK_BYTES_NAME);
    static const char tag[] = "kdtrain byte tokenizer: ids 0..255 bytes, 256 bos, 257 eos, 258 pad";
    kd_sha256 c;
    uint8_t d[32];
    kd_sha256_init(&c);
    kd_sha256_update(&c, tag, sizeof tag - 1);
    kd_sha256_final(&c, d);
    kd_sha256_hex(d, t->fingerprint);
    t->vocab = KD_TOK_BYTES_VOCAB, t->bos = KD_TOK_BYTES_BOS, t->pad = KD_TOK_BYTES_PAD;
    t->stop[0] = KD_TOK_BYTES_EOS, t->n_stop = 1;
}

int kd_tokenizer_identify(const char *spec, char *abs, size_t n, char fp[65], kd_error *err) {
    if (strcmp(spec, KD_TOK_BYTES_NAME) == 0) {
        snprintf(abs, n, "%s", KD_TOK_BYTES_NAME);
        snprintf(fp, 65, "%s", kd_vocab_bytes_fingerprint());
        return KD_OK;
    }
    int rc = kd_tok_fingerprint(spec, fp, err);
    if (rc) return rc;
    char real[PATH_MAX];
    snprintf(abs, n, "%s", realpath(spec, real) ? real : spec);
    return KD_OK;
}

int kd_tokenizer_open(kd_tokenizer **out, const char *spec, kd_error *err) {
    *out = NULL;
    kd_tokenizer *t = kd_calloc(1, sizeof *t);
    if (strcmp(spec, KD_TOK_BYTES_NAME) == 0) {
        open_bytes(t);
        *out = t;
        return KD_OK;
    }
    int rc = kd_tok_load(spec, &t->tok, err);
    if (rc) {
        free(t);
        return rc;
    }
    kd_tok *k = t->tok;
    snprintf(t->name, sizeof t->name, "%s", k->name);
    memcpy(t->fingerprint, k->fingerprint, sizeof t->fingerprint);
    t->vocab = k->vocab, t->bos = k->bos, t->pad = k->pad, t->n_stop = k->n_stop;
    memcpy(t->stop, k->stop, sizeof t->stop);
    *out = t;
    return KD_OK;
}

void kd_tokenizer_free(kd_tokenizer *t) {
    if (!t) return;
    kd_tok_free(t->tok);
    free(t);
}

const char *kd_tokenizer_name(const kd_tokenizer *t) { return t->name; }
const char *kd_tokenizer_fingerprint(const kd_tokenizer *t) { return t->fingerprint; }
int32_t kd_tokenizer_vocab_size(const kd_tokenizer *t) { return t->vocab; }
int32_t kd_tokenizer_bos(const kd_tokenizer *t) { return t->bos; }
int32_t kd_tokenizer_pad(const kd_tokenizer *t) { return t->pad; }

int kd_tokenizer_stop_ids(const kd_tokenizer *t, int32_t out[KD_TOK_MAX_STOP]) {
    memcpy(out, t->stop, (size_t)t->n_stop * sizeof(int32_t));
    return t->n_stop;
}

int32_t kd_tokenizer_token_id(const kd_tokenizer *t, const char *content) {
    if (t->tok) return kd_tok_token_id(t->tok, content);
    if (!strcmp(content, "<bos>")) return KD_TOK_BYTES_BOS;
    if (!strcmp(content, "<eos>")) return KD_TOK_BYTES_EOS;
    if (!strcmp(content, "<pad>")) return KD_TOK_BYTES_PAD;
    return -1;
}

int kd_tokenizer_encode(const kd_tokenizer *t, const char *text, size_t n, int special, kd_ids *out,
                        kd_error *err) {
    (void)err;
    if (t->tok) return kd_tok_encode(t->tok, text, n, special, out);
    for (size_t i = 0; i < n; i++) kd_ids_push(out, (int32_t)(unsigned char)text[i]);
    return KD_OK;
}

int kd_tokenizer_decode(const kd_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                        kd_strbuf *out, kd_error *err) {
    (void)err;
    if (t->tok) {
        kd_tok_decode(t->tok, ids, n, skip_special, out);
        return KD_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= 0 && ids[i] <= 255) {
            kd_strbuf_printf(out, "%c", (char)ids[i]);
        } else if (!skip_special) {
            char buf[16];
            kd_strbuf_printf(out, "%s", kd_tokenizer_bytes_piece(ids[i], buf));
        }
    }
    return KD_OK;
}
