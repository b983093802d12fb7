// test_data_roundtrip.c: what the writer stores, the reader gives back exactly: info,
// offsets, token ranges, pretraining windows and their loss weights (with and without a
// loss mask), across several gzip chunks; the writer's atomicity (abort and failed adds
// leave no file and no temporary) and the byte tokenizer. All comparisons are exact:
// tokens and masks are integers, and weights are 0.0f/1.0f.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "data/writer.h"
#include "check.h"

static char dir[256];

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// Number of entries in dir whose name contains ".tmp-" (leftover temporaries).
static int count_tmp(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

// Documents: lengths chosen so the stream spans 2+ chunks of 65536 tokens and has an
// empty document; token t of the stream is (t*7+3) % 259, mask is 1 on every 3rd token.
#define N_DOCS 5
static const size_t DOC_LEN[N_DOCS] = {10, 0, 70000, 1, 5000};

static void roundtrip(int with_mask) {
    char path[128];
    snprintf(path, sizeof path, "%s/rt%d.h5", dir, with_mask);
    kd_error err = {0};
    kd_dataset_writer *w;
    int rc = kd_dataset_writer_open(&w, path, "sft", 259, 256, 257, 258, with_mask, "bytes", &err);
    CHECK(rc == KD_OK, "writer_open rc=%d %s", rc, err.msg);
    if (rc) return;
    size_t total = 0;
    for (int i = 0; i < N_DOCS; i++) total += DOC_LEN[i];
    int32_t *stream = malloc(total * sizeof *stream);
    uint8_t *mstream = malloc(total);
    for (size_t t = 0; t < total; t++) {
        stream[t] = (int32_t)((t * 7 + 3) % 259);
        mstream[t] = t % 3 == 0;
    }
    size_t at = 0;
    for (int i = 0; i < N_DOCS; i++) {
        rc = kd_dataset_writer_add(w, stream + at, with_mask ? mstream + at : NULL, DOC_LEN[i],
                                   &err);
        CHECK(rc == KD_OK, "add doc %d rc=%d %s", i, rc, err.msg);
        at += DOC_LEN[i];
    }
    CHECK(!exists(path), "%s exists before commit", path);
    CHECK(count_tmp() == 1, "expected 1 temporary while writing, found %d", count_tmp());
    rc = kd_dataset_writer_close(w, 1, &err);
    CHECK(rc == KD_OK, "commit rc=%d %s", rc, err.msg);
    CHECK(count_tmp() == 0, "temporaries left after commit: %d", count_tmp());

    kd_dataset *d;
    rc = kd_dataset_open(&d, path, &err);
    CHECK(rc == KD_OK, "open rc=%d %s", rc, err.msg);
    if (rc) goto out;
    const kd_dataset_info *in = kd_dataset_get_info(d);
    CHECK(!strcmp(in->kind, "sft"), "kind '%s'", in->kind);
    CHECK(!strcmp(in->tokenizer, "bytes"), "tokenizer '%s'", in->tokenizer);
    CHECK(in->vocab_size == 259 && in->bos_id == 256 && in->eos_id == 257 && in->pad_id == 258,
          "ids %d %d %d %d", in->vocab_size, in->bos_id, in->eos_id, in->pad_id);
    CHECK(in->n_tokens == total, "n_tokens %llu vs %zu", (unsigned long long)in->n_tokens, total);
    CHECK(in->n_docs == N_DOCS, "n_docs %llu", (unsigned long long)in->n_docs);
    CHECK(in->has_loss_mask == with_mask, "has_loss_mask %d", in->has_loss_mask);
    const uint64_t *off = kd_dataset_offsets(d);
    size_t o = 0;
    for (int i = 0; i <= N_DOCS; i++) {
        CHECK(off[i] == o, "offsets[%d] = %llu, expected %zu", i, (unsigned long long)off[i], o);
        if (i < N_DOCS) o += DOC_LEN[i];
    }

    // whole stream back
    int32_t *back = malloc(total * sizeof *back);
    uint8_t *mback = malloc(total);
    rc = kd_dataset_read_tokens(d, 0, total, back, mback, &err);
    CHECK(rc == KD_OK, "read_tokens rc=%d %s", rc, err.msg);
    size_t bad = 0, first_bad = 0;
    for (size_t t = 0; t < total; t++)
        if (back[t] != stream[t] || mback[t] != (with_mask ? mstream[t] : 1)) {
            if (!bad) first_bad = t;
            bad++;
        }
    CHECK(bad == 0, "%zu tokens differ, first at %zu: %d/%u vs %d/%u", bad, first_bad,
          back[first_bad], mback[first_bad], stream[first_bad], mstream[first_bad]);

    // windows: count and content, including the last window and one across a chunk edge
    int L = 97;
    uint64_t nw = kd_dataset_n_windows(d, L);
    CHECK(nw == (total - 1) / L, "n_windows %llu, expected %zu", (unsigned long long)nw,
          (total - 1) / L);
    uint64_t idx[4] = {0, 65536 / 97, nw - 1, 3};
    int32_t *tok = malloc(4 * (L + 1) * sizeof *tok);
    float *lw = malloc(4 * L * sizeof *lw);
    rc = kd_dataset_read_windows(d, idx, 4, L, tok, lw, &err);
    CHECK(rc == KD_OK, "read_windows rc=%d %s", rc, err.msg);
    for (int i = 0; i < 4 && rc == KD_OK; i++) {
        size_t s = idx[i] * L;
        for (int j = 0; j <= L; j++)
            CHECK(tok[i * (L + 1) + j] == stream[s + j], "window %llu token %d: %d vs %d",
                  (unsigned long long)idx[i], j, tok[i * (L + 1) + j], stream[s + j]);
        for (int j = 0; j < L; j++) {
            float want = with_mask ? (float)mstream[s + j + 1] : 1.0f;
            CHECK(lw[i * L + j] == want, "window %llu weight %d: %g vs %g",
                  (unsigned long long)idx[i], j, lw[i * L + j], want);
        }
    }
    // an out-of-range window is a caller bug, reported not crashed on
    kd_error e2 = {0};
    uint64_t beyond = nw;
    rc = kd_dataset_read_windows(d, &beyond, 1, L, tok, NULL, &e2);
    CHECK(rc == KD_EINTERNAL && strstr(e2.msg, "window"), "beyond-range window: rc=%d '%s'", rc,
          e2.msg);
    free(tok);
    free(lw);
    free(back);
    free(mback);
    kd_dataset_close(d);
out:
    free(stream);
    free(mstream);
}

static void writer_failures(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/fail.h5", dir);
    kd_error err = {0};
    kd_dataset_writer *w;
    int32_t doc[3] = {1, 300, 2};

    // an id >= vocab is refused with its position; closing without commit removes the tmp
    CHECK(kd_dataset_writer_open(&w, path, "tokens", 259, 256, 257, 258, 0, "bytes", &err) == 0,
          "%s", err.msg);
    int rc = kd_dataset_writer_add(w, doc, NULL, 3, &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "token 1 = 300"), "rc=%d '%s'", rc, err.msg);
    kd_dataset_writer_close(w, 0, NULL);
    CHECK(!exists(path) && count_tmp() == 0, "abort left files (exists=%d tmp=%d)", exists(path),
          count_tmp());

    // commit with no tokens is refused and leaves nothing
    kd_error_clear(&err);
    CHECK(kd_dataset_writer_open(&w, path, "tokens", 259, 256, 257, 258, 0, "bytes", &err) == 0,
          "%s", err.msg);
    rc = kd_dataset_writer_close(w, 1, &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "no tokens"), "rc=%d '%s'", rc, err.msg);
    CHECK(!exists(path) && count_tmp() == 0, "empty commit left files");

    // bad arguments
    kd_error_clear(&err);
    rc = kd_dataset_writer_open(&w, path, "nonsense", 259, 256, 257, 258, 0, "bytes", &err);
    CHECK(rc == KD_EINPUT && w == NULL && strstr(err.msg, "nonsense"), "rc=%d '%s'", rc, err.msg);
    kd_error_clear(&err);
    rc = kd_dataset_writer_open(&w, path, "tokens", 259, 256, 259, 258, 0, "bytes", &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "special id 259"), "rc=%d '%s'", rc, err.msg);
    kd_error_clear(&err);
    snprintf(path, sizeof path, "%s/no/such/dir/x.h5", dir);
    rc = kd_dataset_writer_open(&w, path, "tokens", 259, 256, 257, 258, 0, "bytes", &err);
    CHECK(rc == KD_EINPUT && strstr(err.msg, "cannot write into directory"), "rc=%d '%s'", rc,
          err.msg);

    // committing over an existing dataset replaces it whole
    snprintf(path, sizeof path, "%s/rt0.h5", dir);
    kd_error_clear(&err);
    int32_t small[2] = {5, 6};
    CHECK(kd_dataset_writer_open(&w, path, "tokens", 259, 256, 257, 258, 0, "bytes", &err) == 0,
          "%s", err.msg);
    kd_dataset_writer_add(w, small, NULL, 2, &err);
    CHECK(kd_dataset_writer_close(w, 1, &err) == 0, "%s", err.msg);
    kd_dataset *d;
    rc = kd_dataset_open(&d, path, &err);
    CHECK(rc == 0 && kd_dataset_get_info(d)->n_tokens == 2, "replaced file: rc=%d n=%llu", rc,
          rc ? 0ull : (unsigned long long)kd_dataset_get_info(d)->n_tokens);
    kd_dataset_close(d);
}

static void tokenizer(void) {
    const char *s = "a\n\xff";
    int32_t ids[3];
    kd_tokenizer_bytes_encode(s, 3, ids);
    CHECK(ids[0] == 97 && ids[1] == 10 && ids[2] == 255, "ids %d %d %d", ids[0], ids[1], ids[2]);
    char buf[16], out[4];
    CHECK(!strcmp(kd_tokenizer_bytes_piece(256, buf), "<bos>"), "bos '%s'", buf);
    CHECK(!strcmp(kd_tokenizer_bytes_piece(257, buf), "<eos>"), "eos '%s'", buf);
    CHECK(!strcmp(kd_tokenizer_bytes_piece(10, buf), "\\n"), "newline '%s'", buf);
    CHECK(!strcmp(kd_tokenizer_bytes_piece(1, buf), "\\x01"), "ctrl '%s'", buf);
    CHECK(!strcmp(kd_tokenizer_bytes_piece(999, buf), "<999?>"), "oov '%s'", buf);
    int32_t mixed[4] = {256, 104, 105, 257};
    size_t k = kd_tokenizer_bytes_decode(mixed, 4, out);
    CHECK(k == 2 && out[0] == 'h' && out[1] == 'i', "decode k=%zu", k);
}

int main(void) {
    if (check_tmpdir(dir, sizeof dir, "data_rt")) return 1;
    roundtrip(1);
    roundtrip(0);
    writer_failures();
    tokenizer();
    check_rmtree(dir);
    return check_done("test_data_roundtrip");
}
