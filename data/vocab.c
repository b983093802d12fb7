// vocab.c: the tokenizer identity datasets record (vocab.h): fingerprint and stop-id
// attributes, written only where they say more than a pre-tokenizer byte dataset did.
#include "data/vocab.h"

#include <stdio.h>
#include <string.h>

#include "data/h5util.h"

const char *kd_vocab_bytes_fingerprint(void) {
    static char fp[65];
    if (!fp[0]) {
        kd_tokenizer *t = NULL;
        kd_error e = {0};
        if (kd_tokenizer_open(&t, KD_TOK_BYTES_NAME, &e) == KD_OK)
            snprintf(fp, sizeof fp, "%s", kd_tokenizer_fingerprint(t));
        kd_tokenizer_free(t);
    }
    return fp;
}

void kd_vocab_from_tokenizer(kd_vocab *v, const kd_tokenizer *t) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", kd_tokenizer_name(t));
    snprintf(v->fingerprint, sizeof v->fingerprint, "%s", kd_tokenizer_fingerprint(t));
    v->vocab_size = kd_tokenizer_vocab_size(t);
    v->bos = kd_tokenizer_bos(t);
    v->pad = kd_tokenizer_pad(t);
    v->n_stop = kd_tokenizer_stop_ids(t, v->stop);
    v->eos = v->n_stop > 0 ? v->stop[0] : -1;
}

void kd_vocab_bytes(kd_vocab *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", KD_TOK_BYTES_NAME);
    snprintf(v->fingerprint, sizeof v->fingerprint, "%s", kd_vocab_bytes_fingerprint());
    v->vocab_size = KD_TOK_BYTES_VOCAB, v->bos = KD_TOK_BYTES_BOS, v->pad = KD_TOK_BYTES_PAD;
    v->eos = v->stop[0] = KD_TOK_BYTES_EOS, v->n_stop = 1;
}

int kd_vocab_add_stop(kd_vocab *v, int32_t id) {
    for (int i = 0; i < v->n_stop; i++)
        if (v->stop[i] == id) return 0;
    if (id < 0 || v->n_stop >= KD_TOK_MAX_STOP) return 0;
    v->stop[v->n_stop++] = id;
    if (v->n_stop == 1) v->eos = id;
    return 1;
}

const char *kd_vocab_describe(const char *name, const char *fingerprint, char *buf, size_t cap) {
    if (fingerprint[0])
        snprintf(buf, cap, "'%s' (fingerprint %.12s)", name, fingerprint);
    else
        snprintf(buf, cap, "'%s' (no fingerprint recorded)", name);
    return buf;
}

// ----------------------------------------------------------------------------- attributes

static int write_ids_attr(hid_t obj, const char *name, const int32_t *ids, int n) {
    long long v[KD_TOK_MAX_STOP];
    for (int i = 0; i < n; i++) v[i] = ids[i];
    hsize_t dim = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, v) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int kd_vocab_write_attrs(hid_t obj, const kd_vocab *v) {
    int bytes = !strcmp(v->name, KD_TOK_BYTES_NAME) &&
                !strcmp(v->fingerprint, kd_vocab_bytes_fingerprint());
    if (!bytes && v->fingerprint[0] &&
        kd_h5_write_str_attr(obj, "tokenizer_fingerprint", v->fingerprint) < 0)
        return -1;
    int only_eos = v->n_stop == 0 || (v->n_stop == 1 && v->stop[0] == v->eos);
    if (!only_eos && write_ids_attr(obj, "stop_ids", v->stop, v->n_stop) < 0) return -1;
    return 0;
}

// n ids of a 1-D integer attribute (n <= cap). -1 if it is not one (or longer than cap).
static int read_ids_attr(hid_t a, long long *out, int cap) {
    hid_t s = H5Aget_space(a), ty = H5Aget_type(a);
    int rc = -1;
    if (s >= 0 && ty >= 0 && H5Tget_class(ty) == H5T_INTEGER &&
        H5Sget_simple_extent_ndims(s) == 1) {
        hsize_t dim = 0;
        H5Sget_simple_extent_dims(s, &dim, NULL);
        if (dim >= 1 && dim <= (hsize_t)cap && H5Aread(a, H5T_NATIVE_LLONG, out) >= 0)
            rc = (int)dim;
    }
    if (ty >= 0) H5Tclose(ty);
    if (s >= 0) H5Sclose(s);
    return rc;
}

static int is_hex64(const char *s) {
    if (strlen(s) != 64) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

int kd_vocab_read_attrs(hid_t obj, kd_vocab *v, const char *path, kd_error *err) {
    v->fingerprint[0] = '\0';
    if (H5Aexists(obj, "tokenizer_fingerprint") > 0) {
        char fp[128] = "";
        if (kd_h5_read_str_attr(obj, "tokenizer_fingerprint", fp, sizeof fp) < 0 || !is_hex64(fp))
            return kd_fail(err, KD_EINPUT,
                           "%s: attribute tokenizer_fingerprint: expected 64 lowercase hex "
                           "characters, found '%.70s'",
                           path, fp);
        snprintf(v->fingerprint, sizeof v->fingerprint, "%s", fp);
    } else if (!strcmp(v->name, KD_TOK_BYTES_NAME)) {
        snprintf(v->fingerprint, sizeof v->fingerprint, "%s", kd_vocab_bytes_fingerprint());
    }
    v->n_stop = 0;
    if (H5Aexists(obj, "stop_ids") <= 0) {
        if (v->eos >= 0) v->stop[v->n_stop++] = v->eos;
        return KD_OK;
    }
    long long ids[KD_TOK_MAX_STOP];
    hid_t a = H5Aopen(obj, "stop_ids", H5P_DEFAULT);
    int n = a >= 0 ? read_ids_attr(a, ids, KD_TOK_MAX_STOP) : -1;
    if (a >= 0) H5Aclose(a);
    if (n < 0)
        return kd_fail(
            err, KD_EINPUT,
            "%s: attribute stop_ids: expected 1..%d integers, found another shape or type", path,
            KD_TOK_MAX_STOP);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->vocab_size)
            return kd_fail(err, KD_EINPUT, "%s: attribute stop_ids[%d] = %lld, expected 0..%d",
                           path, i, ids[i], v->vocab_size - 1);
        v->stop[v->n_stop++] = (int32_t)ids[i];
    }
    return KD_OK;
}
