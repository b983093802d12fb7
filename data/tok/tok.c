// tok.c: opening a file-backed tokenizer: where tokenizer.json is, its fingerprint (the
// SHA-256 of the file's bytes) and name (its directory's basename), the special ids from
// tokenizer_config.json, generation_config.json and config.json beside it, and freeing.
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tok/tok.h"
#include "runtime/base/fs.h"
#include "runtime/base/sha256.h"

void kd_tok_free(kd_tok *t) {
    if (!t) return;
    kd_bpe_free(t->bpe);
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].a), free(t->norm[i].b);
    for (int i = 0; i < t->n_dec; i++) free(t->dec[i].a), free(t->dec[i].b);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content), free(t->added[i].pat);
    free(t->added);
    for (int32_t i = 0; t->tok && i < t->vocab; i++) free(t->tok[i]);
    free(t->tok), free(t->tok_len), free(t->special);
    kd_pieces_free(&t->seg), kd_pieces_free(&t->words), kd_pieces_free(&t->tmp);
    free(t->norm_buf.s), free(t->scratch.s);
    free(t);
}

int32_t kd_tok_token_id(const kd_tok *t, const char *content) {
    size_t n = strlen(content);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, content, n)) return t->added[i].id;
    for (int32_t id = 0; id < t->vocab; id++)
        if (t->tok[id] && t->tok_len[id] == n && !memcmp(t->tok[id], content, n)) return id;
    return -1;
}

// ---------------------------------------------------------------------------- special ids
// A JSON file of dir, parsed, or NULL when it does not exist. A file that exists but does
// not parse is an error.
static int read_json(const char *dir, const char *file, kd_json **out, kd_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    *out = NULL;
    char *buf;
    size_t len;
    int e;
    kd_read_status st = kd_read_file(path, 0, &buf, &len, &e);
    if (st == KD_READ_EOPEN && e == ENOENT) return KD_OK;
    if (st != KD_READ_OK) return kd_fail(err, KD_EINPUT, "%s: cannot read: %s", file, strerror(e));
    int rc = kd_json_parse(buf, len, file, out, err);
    free(buf);
    return rc;
}

// The id of a token given as "content" or {"content": ...} (AddedToken), -1 when null.
static int token_field(const kd_tok *t, const kd_json *cfg, const char *key, const char *file,
                       int32_t *id, kd_error *err) {
    const kd_json *v = kd_json_get(cfg, key);
    if (v && v->type == KD_JSON_OBJECT) v = kd_json_get(v, "content");
    if (!v || v->type == KD_JSON_NULL) return KD_OK;
    if (v->type != KD_JSON_STRING)
        return kd_fail(err, KD_EINPUT, "%s: %s: expected a string or an AddedToken", file, key);
    *id = kd_tok_token_id(t, v->str);
    if (*id < 0)
        return kd_fail(err, KD_EINPUT, "%s: %s: '%s' is not a token of tokenizer.json", file, key,
                       v->str);
    return KD_OK;
}

// Appends the ids of an "x_token_id" (an int or a list of ints) to ids[*n].
static int id_field(const kd_tok *t, const kd_json *cfg, const char *key, const char *file,
                    int32_t *ids, int *n, kd_error *err) {
    const kd_json *v = kd_json_get(cfg, key);
    if (!v || v->type == KD_JSON_NULL) return KD_OK;
    size_t count = v->type == KD_JSON_ARRAY ? v->n : 1;
    for (size_t i = 0; i < count; i++) {
        const kd_json *x = v->type == KD_JSON_ARRAY ? &v->items[i] : v;
        if (x->type != KD_JSON_NUMBER || !x->is_int || x->integer < 0 || x->integer >= t->vocab)
            return kd_fail(err, KD_EINPUT, "%s: %s: expected an id in [0, %d) or a list of them",
                           file, key, (int)t->vocab);
        int dup = 0;
        for (int k = 0; k < *n; k++) dup |= ids[k] == (int32_t)x->integer;
        if (!dup && *n < KD_TOK_MAX_STOP) ids[(*n)++] = (int32_t)x->integer;
    }
    return KD_OK;
}

// The first id of key in generation_config.json, else in config.json (-1: neither).
static int config_id(const kd_tok *t, const kd_json *gc, const kd_json *cc, const char *key,
                     int32_t *id, kd_error *err) {
    int32_t ids[KD_TOK_MAX_STOP];
    int n = 0;
    if (gc && id_field(t, gc, key, "generation_config.json", ids, &n, err)) return err->code;
    if (!n && cc && id_field(t, cc, key, "config.json", ids, &n, err)) return err->code;
    if (n) *id = ids[0];
    return KD_OK;
}

int kd_tok_specials(kd_tok *t, const char *dir, kd_error *err) {
    kd_json *tc = NULL, *gc = NULL, *cc = NULL;
    int32_t eos = -1;
    t->bos = t->pad = -1, t->n_stop = 0;
    int rc = read_json(dir, "tokenizer_config.json", &tc, err);
    if (!rc) rc = read_json(dir, "generation_config.json", &gc, err);
    if (!rc) rc = read_json(dir, "config.json", &cc, err);
    if (!rc && tc) rc = token_field(t, tc, "bos_token", "tokenizer_config.json", &t->bos, err);
    if (!rc && tc) rc = token_field(t, tc, "eos_token", "tokenizer_config.json", &eos, err);
    if (!rc && tc) rc = token_field(t, tc, "pad_token", "tokenizer_config.json", &t->pad, err);
    if (!rc && eos >= 0) t->stop[t->n_stop++] = eos;
    // every eos id generation_config.json lists (Llama 3 instruct: 128001, 128009), else
    // config.json's
    if (!rc && gc && kd_json_get(gc, "eos_token_id"))
        rc = id_field(t, gc, "eos_token_id", "generation_config.json", t->stop, &t->n_stop, err);
    else if (!rc && cc)
        rc = id_field(t, cc, "eos_token_id", "config.json", t->stop, &t->n_stop, err);
    if (!rc && t->bos < 0) rc = config_id(t, gc, cc, "bos_token_id", &t->bos, err);
    if (!rc && t->pad < 0) rc = config_id(t, gc, cc, "pad_token_id", &t->pad, err);
    if (rc) kd_error_prefix(err, "%s/", dir);
    kd_json_free(tc), kd_json_free(gc), kd_json_free(cc);
    return rc;
}

// ---------------------------------------------------------------------------- open
// Splits a spec into the directory and the tokenizer.json path.
static void locate(const char *spec, char *dir, char *file) {
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, PATH_MAX, "%s", spec);
        snprintf(file, PATH_MAX, "%s/tokenizer.json", spec);
        return;
    }
    snprintf(file, PATH_MAX, "%s", spec);
    const char *slash = strrchr(spec, '/');
    if (!slash)
        snprintf(dir, PATH_MAX, ".");
    else
        snprintf(dir, PATH_MAX, "%.*s", slash == spec ? 1 : (int)(slash - spec), spec);
}

static void name_of(const char *dir, char *name, size_t n) {
    char real[PATH_MAX];
    const char *d = realpath(dir, real) ? real : dir;
    const char *base = strrchr(d, '/');
    snprintf(name, n, "%s", base && base[1] ? base + 1 : d);
}

// tokenizer.json's bytes and their SHA-256 (the fingerprint).
static int read_hashed(const char *file, char **buf, size_t *len, char fp[65], kd_error *err) {
    int e = 0;
    kd_read_status st = kd_read_file(file, KD_JSON_MAX_INPUT, buf, len, &e);
    if (st != KD_READ_OK)
        return kd_fail(
            err, KD_EINPUT,
            "%s: cannot read: %s (expected a Hugging Face tokenizer.json, or a directory "
            "holding one)",
            file, strerror(e ? e : EIO));
    kd_sha256 c;
    uint8_t d[32];
    kd_sha256_init(&c);
    kd_sha256_update(&c, *buf, *len);
    kd_sha256_final(&c, d);
    kd_sha256_hex(d, fp);
    return KD_OK;
}

int kd_tok_fingerprint(const char *spec, char fp[65], kd_error *err) {
    char dir[PATH_MAX], file[PATH_MAX], *buf;
    size_t len;
    locate(spec, dir, file);
    int rc = read_hashed(file, &buf, &len, fp, err);
    if (!rc) free(buf);
    return rc;
}

int kd_tok_load(const char *spec, kd_tok **out, kd_error *err) {
    char dir[PATH_MAX], file[PATH_MAX], fp[65];
    *out = NULL;
    locate(spec, dir, file);
    char *buf;
    size_t len;
    int rc0 = read_hashed(file, &buf, &len, fp, err);
    if (rc0) return rc0;
    kd_tok *t = kd_calloc(1, sizeof *t);
    memcpy(t->fingerprint, fp, sizeof fp);
    name_of(dir, t->name, sizeof t->name);
    kd_json *root = NULL;
    int rc = kd_json_parse(buf, len, file, &root, err);
    free(buf);
    if (!rc) rc = kd_tok_from_json(t, root, file, err);
    kd_json_free(root);
    if (!rc) rc = kd_tok_specials(t, dir, err);
    if (rc) {
        kd_tok_free(t);
        return rc;
    }
    kd_pieces_reset(&t->seg), kd_pieces_reset(&t->words), kd_pieces_reset(&t->tmp);
    *out = t;
    return KD_OK;
}
