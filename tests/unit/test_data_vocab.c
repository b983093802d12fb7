// test_data_vocab.c: the tokenizer identity datasets record (data/vocab.h): a token and a
// preference dataset written with a non-byte identity give back its name, fingerprint
// and stop ids; byte-tokenizer files carry neither new attribute (so they stay
// byte-identical to files made before) and still read as the byte tokenizer with stop ids
// [eos_id]. Exact comparisons: everything here is integers and strings.
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "data/dataset.h"
#include "data/prefs.h"
#include "data/vocab.h"
#include "data/writer.h"
#include "check.h"

static char dir[256];

// 1 if the root of path has attribute name.
static int has_attr(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int r = f >= 0 && H5Aexists(f, name) > 0;
    if (f >= 0) H5Fclose(f);
    return r;
}

// A made-up BPE identity: 1000 ids, BOS 1, EOS 2, no PAD, a second stop id 7.
static void toy_vocab(kd_vocab *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "toy-bpe");
    for (int i = 0; i < 64; i++) v->fingerprint[i] = "0123456789abcdef"[i % 16];
    v->vocab_size = 1000, v->bos = 1, v->eos = 2, v->pad = -1;
    v->stop[0] = 2, v->stop[1] = 7, v->n_stop = 2;
}

static void check_info(const char *what, const char *name, const char *fp, int n_stop,
                       const int32_t *stop, const char *want_name, const kd_vocab *want) {
    CHECK(!strcmp(name, want_name), "%s: tokenizer '%s', expected '%s'", what, name, want_name);
    CHECK(!strcmp(fp, want->fingerprint), "%s: fingerprint '%s', expected '%s'", what, fp,
          want->fingerprint);
    CHECK(n_stop == want->n_stop, "%s: %d stop ids, expected %d", what, n_stop, want->n_stop);
    for (int i = 0; i < n_stop && i < want->n_stop; i++)
        CHECK(stop[i] == want->stop[i], "%s: stop_ids[%d] = %d, expected %d", what, i, stop[i],
              want->stop[i]);
}

static void tokens_file(const char *tag, const kd_vocab *v) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s.h5", dir, tag);
    kd_error err = {0};
    kd_dataset_writer *w = NULL;
    int32_t doc[4] = {v->bos, 100 % v->vocab_size, 200 % v->vocab_size, v->eos};
    int rc = kd_dataset_writer_open_vocab(&w, path, "tokens", v, 0, &err);
    if (rc == KD_OK) rc = kd_dataset_writer_add(w, doc, NULL, 4, &err);
    if (w) rc |= kd_dataset_writer_close(w, rc == KD_OK, &err);
    CHECK(rc == KD_OK, "%s: write: %s", tag, err.msg);
    int bytes = !strcmp(v->name, "bytes");
    CHECK(has_attr(path, "tokenizer_fingerprint") == !bytes, "%s: tokenizer_fingerprint %s", tag,
          bytes ? "written for the byte tokenizer" : "missing");
    CHECK(has_attr(path, "stop_ids") == !bytes, "%s: stop_ids %s", tag,
          bytes ? "written for the byte tokenizer" : "missing");
    kd_dataset *d = NULL;
    CHECK(kd_dataset_open(&d, path, &err) == KD_OK, "%s: open: %s", tag, err.msg);
    if (!d) return;
    const kd_dataset_info *in = kd_dataset_get_info(d);
    check_info(tag, in->tokenizer, in->fingerprint, in->n_stop, in->stop_ids, v->name, v);
    CHECK(in->eos_id == v->eos && in->bos_id == v->bos && in->pad_id == v->pad, "%s: ids %d %d %d",
          tag, in->bos_id, in->eos_id, in->pad_id);
    kd_vocab back;
    kd_dataset_info_vocab(in, &back);
    CHECK(!memcmp(back.stop, v->stop, sizeof back.stop) && back.n_stop == v->n_stop,
          "%s: kd_dataset_info_vocab lost the stop ids", tag);
    kd_dataset_close(d);
}

static void prefs_file(const char *tag, const kd_vocab *v) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s.h5", dir, tag);
    kd_error err = {0};
    kd_prefs_writer *w = NULL;
    int32_t p[2] = {v->bos, 5}, c[2] = {6, v->eos}, r[2] = {9, v->eos};
    int rc = kd_prefs_writer_open_vocab(&w, path, v, &err);
    if (rc == KD_OK) rc = kd_prefs_writer_add(w, p, 2, c, 2, r, 2, &err);
    if (w) rc |= kd_prefs_writer_close(w, rc == KD_OK, &err);
    CHECK(rc == KD_OK, "%s: write: %s", tag, err.msg);
    kd_prefs *q = NULL;
    CHECK(kd_prefs_open(&q, path, &err) == KD_OK, "%s: open: %s", tag, err.msg);
    if (!q) return;
    const kd_prefs_info *in = kd_prefs_get_info(q);
    check_info(tag, in->tokenizer, in->fingerprint, in->n_stop, in->stop_ids, v->name, v);
    kd_prefs_close(q);
}

// Stop ids: added once, eos first.
static void add_stop(void) {
    kd_vocab v;
    kd_vocab_bytes(&v);
    CHECK(kd_vocab_add_stop(&v, 257) == 0 && v.n_stop == 1, "eos added twice");
    CHECK(kd_vocab_add_stop(&v, 10) == 1 && v.n_stop == 2 && v.stop[1] == 10 && v.eos == 257,
          "second stop id: n %d, stop[1] %d, eos %d", v.n_stop, v.stop[1], v.eos);
    CHECK(strlen(kd_vocab_bytes_fingerprint()) == 64, "bytes fingerprint '%s'",
          kd_vocab_bytes_fingerprint());
}

int main(void) {
    if (check_tmpdir(dir, sizeof dir, "data_vocab")) return 1;
    kd_vocab toy, bytes;
    toy_vocab(&toy);
    kd_vocab_bytes(&bytes);
    tokens_file("toy_tokens", &toy);
    tokens_file("bytes_tokens", &bytes);
    prefs_file("toy_prefs", &toy);
    prefs_file("bytes_prefs", &bytes);
    add_stop();
    check_rmtree(dir);
    return check_done("test_data_vocab");
}
