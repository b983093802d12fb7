// test_data_validate.c: kd_dataset_open rejects every malformed input with KD_EINPUT, a
// NULL handle, and one line that starts with the file path and names the problem:
// missing file, empty file, not HDF5, missing /tokens or /offsets, wrong dtype or rank,
// empty tokens, bad offsets (first != 0, decreasing, end != n), token ids out of range
// (also past the first 1 Mi-token scan block, with the exact documented message), loss
// mask of the wrong length or values, missing or bad attributes. A well-formed baseline
// built by the same helper must open, so each failure is caused by the one change made.
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "check.h"

static char dir[256];

// What to put in a test file; base() is a valid 8-token, 2-document dataset.
typedef struct {
    int tokens, offsets; // include the dataset?
    hid_t ttype;         // file type of /tokens
    int trank;           // 1 or 2
    long long tok[8];
    size_t n; // number of tokens (<= 8 unless big_bad_at is set)
    long long off[3];
    size_t m;
    int mask_len;      // -1: no /loss_mask
    int mask_val;      // value stored in every mask entry
    const char *kind;  // NULL: attribute missing
    int vocab;         // < 0: attribute missing
    size_t big_bad_at; // > 0: n = 1.2 Mi tokens of id 1, with id 300 at this index
} spec;

static spec base(void) {
    spec s = {
        1, 1,        H5T_STD_U32LE, 1, {256, 10, 20, 257, 256, 30, 40, 257}, 8, {0, 4, 8}, 3, -1,
        1, "tokens", 259,           0};
    return s;
}

static void put_i64(hid_t f, const char *name, long long v) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(s);
}

static void put_str(hid_t f, const char *name, const char *v) {
    hid_t s = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v)); // fixed length (the writer uses variable length)
    hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(s);
}

static void put_1d(hid_t f, const char *name, hid_t ftype, hid_t mtype, const void *buf, hsize_t n,
                   int rank) {
    hsize_t dims[2] = {rank == 2 ? n / 2 : n, 2};
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (n) H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(s);
}

static void make(const char *path, const spec *s) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    size_t n = s->big_bad_at ? (size_t)(1.2 * (1 << 20)) : s->n;
    long long *tok = malloc((n ? n : 1) * sizeof *tok);
    for (size_t i = 0; i < n; i++) tok[i] = s->big_bad_at ? 1 : s->tok[i];
    if (s->big_bad_at) tok[s->big_bad_at] = 300;
    long long off[3] = {s->off[0], s->off[1], s->off[2]};
    if (s->big_bad_at) off[1] = 4, off[2] = (long long)n;
    if (s->tokens) put_1d(f, "/tokens", s->ttype, H5T_NATIVE_LLONG, tok, n, s->trank);
    if (s->offsets) put_1d(f, "/offsets", H5T_STD_U64LE, H5T_NATIVE_LLONG, off, s->m, 1);
    if (s->mask_len >= 0) {
        uint8_t *m = malloc((size_t)s->mask_len + 1);
        memset(m, s->mask_val, (size_t)s->mask_len + 1);
        put_1d(f, "/loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, m, (hsize_t)s->mask_len, 1);
        free(m);
    }
    if (s->kind) put_str(f, "kind", s->kind);
    put_str(f, "tokenizer", "bytes");
    if (s->vocab >= 0) put_i64(f, "vocab_size", s->vocab);
    put_i64(f, "bos_id", 256);
    put_i64(f, "eos_id", 257);
    put_i64(f, "pad_id", 258);
    H5Fclose(f);
    free(tok);
}

// Open path and expect KD_EINPUT with a one-line message "path: ..." containing want.
static void expect_error(const char *what, const char *path, const char *want) {
    kd_error err = {0};
    kd_dataset *d = (kd_dataset *)&err; // must be reset to NULL
    int rc = kd_dataset_open(&d, path, &err);
    if (getenv("KD_TEST_VERBOSE")) printf("%-20s %s\n", what, err.msg);
    CHECK(rc == KD_EINPUT && err.code == KD_EINPUT, "%s: rc=%d, expected KD_EINPUT (%s)", what, rc,
          err.msg);
    CHECK(d == NULL, "%s: handle not NULL on error", what);
    CHECK(strncmp(err.msg, path, strlen(path)) == 0,
          "%s: message does not start with the path: "
          "'%s'",
          what, err.msg);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    CHECK(strchr(err.msg, '\n') == NULL, "%s: message is not one line: '%s'", what, err.msg);
    if (rc == KD_OK) kd_dataset_close(d);
}

static void case_spec(const char *name, spec s, const char *want) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s.h5", dir, name);
    make(path, &s);
    expect_error(name, path, want);
}

int main(void) {
    if (check_tmpdir(dir, sizeof dir, "data_val")) return 1;
    char path[128];

    // the baseline opens (int32 tokens and a matching 0/1 mask are fine too)
    spec ok = base();
    ok.ttype = H5T_STD_I32LE;
    ok.mask_len = 8;
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    make(path, &ok);
    kd_error err = {0};
    kd_dataset *d = NULL;
    int rc = kd_dataset_open(&d, path, &err);
    CHECK(rc == KD_OK, "baseline rejected: %s", err.msg);
    if (d) {
        const kd_dataset_info *in = kd_dataset_get_info(d);
        CHECK(in->n_tokens == 8 && in->n_docs == 2 && in->has_loss_mask == 1,
              "baseline info n=%llu docs=%llu mask=%d", (unsigned long long)in->n_tokens,
              (unsigned long long)in->n_docs, in->has_loss_mask);
        CHECK(!strcmp(in->kind, "tokens") && !strcmp(in->tokenizer, "bytes"),
              "fixed-length strings read back as '%s' '%s'", in->kind, in->tokenizer);
        kd_dataset_close(d);
    }

    // files that are not datasets at all
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_error("missing file", path, "No such file");
    snprintf(path, sizeof path, "%s/empty.h5", dir);
    fclose(fopen(path, "w"));
    expect_error("empty file", path, "empty file (0 bytes)");
    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not an HDF5 file\n", f);
    fclose(f);
    expect_error("not HDF5", path, "not an HDF5 file");
    expect_error("directory", dir, "not a regular file");

    // a damaged file: the HDF5 signature is there, the rest is cut off
    snprintf(path, sizeof path, "%s/truncated.h5", dir);
    {
        char src[128];
        snprintf(src, sizeof src, "%s/ok.h5", dir);
        FILE *in = fopen(src, "rb"), *o = fopen(path, "wb");
        char buf[1200];
        size_t k = fread(buf, 1, sizeof buf, in);
        fwrite(buf, 1, k, o);
        fclose(in);
        fclose(o);
    }
    expect_error("truncated", path, ": ");

    spec s;
    s = base(), s.tokens = 0;
    case_spec("no_tokens", s, "/tokens is missing");
    s = base(), s.offsets = 0;
    case_spec("no_offsets", s, "/offsets is missing");
    s = base(), s.ttype = H5T_IEEE_F32LE;
    case_spec("float_tokens", s, "/tokens has a floating-point dtype");
    s = base(), s.trank = 2;
    case_spec("rank2_tokens", s, "/tokens has rank 2");
    s = base(), s.n = 0, s.off[1] = s.off[2] = 0;
    case_spec("empty_tokens", s, "/tokens is empty");
    s = base(), s.off[0] = 1;
    case_spec("offsets_start", s, "/offsets[0] = 1, expected 0");
    s = base(), s.off[1] = 9;
    case_spec("offsets_decreasing", s, "/offsets[2] = 8 < /offsets[1] = 9");
    s = base(), s.off[2] = 7;
    case_spec("offsets_end", s, "/offsets[2] = 7, expected the token count 8");
    s = base(), s.tok[3] = 300;
    case_spec("id_too_big", s, "/tokens[3] = 300 >= vocab_size 259");
    s = base(), s.ttype = H5T_STD_I32LE, s.tok[5] = -4;
    case_spec("id_negative", s, "/tokens[5] = -4 < 0");
    s = base(), s.big_bad_at = (1u << 20) + 5; // in the second scan block
    case_spec("id_too_big_late", s, "/tokens[1048581] = 300 >= vocab_size 259");
    s = base(), s.mask_len = 7;
    case_spec("mask_length", s, "/loss_mask has 7 entries, expected 8");
    s = base(), s.mask_len = 8, s.mask_val = 2;
    case_spec("mask_value", s, "/loss_mask[0] = 2, expected 0 or 1");
    s = base(), s.kind = NULL;
    case_spec("no_kind", s, "attribute 'kind' is missing");
    s = base(), s.kind = "images";
    case_spec("bad_kind", s, "kind = 'images'");
    s = base(), s.vocab = -1;
    case_spec("no_vocab", s, "attribute 'vocab_size' is missing");
    s = base(), s.vocab = 100; // then bos_id 256 is out of range
    case_spec("bos_outside_vocab", s, "bos_id = 256, expected -1..99");

    check_rmtree(dir);
    return check_done("test_data_validate");
}
