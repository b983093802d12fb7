// test_chat_prefs.c: the preference format round-trips exactly (writer -> reader, every id
// and length), the writer refuses what the reader would refuse and leaves nothing behind
// on abort, the reader rejects wrong files naming the path, and the JSONL converter
// renders prompt/chosen/rejected as documented and counts truncations exactly.
// All comparisons are exact integers: no tolerance.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/prefs.h"
#include "data/tokenizer.h"
#include "data/writer.h"
#include "check.h"

static char dir[256];

static int n_files(void) { // entries in dir besides . and ..
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int same(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

static void test_roundtrip(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/rt.h5", dir);
    int32_t p0[] = {256, 10, 20}, c0[] = {1, 2, 3, 257}, r0[] = {4, 257};
    int32_t c1[] = {258}, r1[] = {5, 6, 7, 8, 9};
    int32_t p2[] = {0, 255, 256, 257, 258}, c2[] = {0}, r2[] = {255};
    const int32_t *P[3] = {p0, NULL, p2}, *C[3] = {c0, c1, c2}, *R[3] = {r0, r1, r2};
    int NP[3] = {3, 0, 5}, NC[3] = {4, 1, 1}, NR[3] = {2, 5, 1};
    kd_prefs_writer *w;
    kd_error e = {0};
    CHECK(kd_prefs_writer_open(&w, path, 259, 256, 257, 258, "bytes", &e) == KD_OK, "open: %s",
          e.msg);
    for (int i = 0; i < 3; i++)
        CHECK(kd_prefs_writer_add(w, P[i], (size_t)NP[i], C[i], (size_t)NC[i], R[i], (size_t)NR[i],
                                  &e) == KD_OK,
              "add %d: %s", i, e.msg);
    // refused: an empty completion and an id outside the vocabulary (the writer stays usable)
    CHECK(kd_prefs_writer_add(w, p0, 3, c0, 0, r0, 2, &e) == KD_EINPUT &&
              strstr(e.msg, "non-empty chosen"),
          "empty chosen: %s", e.msg);
    kd_error_clear(&e);
    int32_t bad[] = {259};
    CHECK(kd_prefs_writer_add(w, p0, 3, c0, 4, bad, 1, &e) == KD_EINPUT &&
              strstr(e.msg, "rejected token 0 = 259"),
          "bad id: %s", e.msg);
    kd_error_clear(&e);
    CHECK(kd_prefs_writer_count(w) == 3, "count %llu",
          (unsigned long long)kd_prefs_writer_count(w));
    CHECK(kd_prefs_writer_close(w, 1, &e) == KD_OK, "commit: %s", e.msg);
    CHECK(n_files() == 1, "%d files after commit, expected 1 (no temporary)", n_files());

    kd_prefs *p;
    CHECK(kd_prefs_open(&p, path, &e) == KD_OK, "reopen: %s", e.msg);
    if (!p) return;
    const kd_prefs_info *in = kd_prefs_get_info(p);
    CHECK(kd_prefs_count(p) == 3 && in->vocab_size == 259 && in->bos_id == 256 &&
              in->eos_id == 257 && in->pad_id == 258 && !strcmp(in->tokenizer, "bytes") &&
              in->n_tokens[0] == 8 && in->n_tokens[1] == 6 && in->n_tokens[2] == 8,
          "info: count %llu vocab %d ids %d/%d/%d tok '%s' n %llu/%llu/%llu",
          (unsigned long long)kd_prefs_count(p), in->vocab_size, in->bos_id, in->eos_id, in->pad_id,
          in->tokenizer, (unsigned long long)in->n_tokens[0], (unsigned long long)in->n_tokens[1],
          (unsigned long long)in->n_tokens[2]);
    for (int i = 2; i >= 0; i--) { // any order
        int32_t *a, *b, *c;
        int na, nb, nc;
        CHECK(kd_prefs_read(p, (uint64_t)i, &a, &na, &b, &nb, &c, &nc, &e) == KD_OK, "read %d: %s",
              i, e.msg);
        CHECK(same(a, na, P[i], NP[i]) && same(b, nb, C[i], NC[i]) && same(c, nc, R[i], NR[i]),
              "example %d: lengths %d/%d/%d, expected %d/%d/%d (or ids differ)", i, na, nb, nc,
              NP[i], NC[i], NR[i]);
        free(a);
        free(b);
        free(c);
    }
    kd_prefs_close(p);

    // the reader refuses other kinds and missing files, naming the path
    char sft[256];
    snprintf(sft, sizeof sft, "%s/sft.h5", dir);
    kd_dataset_writer *dw;
    int32_t ids[3] = {1, 2, 3};
    uint8_t m[3] = {0, 1, 1};
    kd_dataset_writer_open(&dw, sft, "sft", 259, 256, 257, 258, 1, "bytes", &e);
    kd_dataset_writer_add(dw, ids, m, 3, &e);
    CHECK(kd_dataset_writer_close(dw, 1, &e) == KD_OK, "sft file: %s", e.msg);
    p = NULL;
    CHECK(kd_prefs_open(&p, sft, &e) == KD_EINPUT && !p && !strncmp(e.msg, sft, strlen(sft)) &&
              strstr(e.msg, "kind: expected \"preference\", found \"sft\""),
          "sft as prefs: %s", e.msg);
    kd_error_clear(&e);
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nope.h5", dir);
    CHECK(kd_prefs_open(&p, missing, &e) == KD_EINPUT && strstr(e.msg, "nope.h5: cannot read"),
          "missing: %s", e.msg);
    unlink(sft);
    unlink(path);

    // abort and empty commit leave nothing
    kd_error_clear(&e);
    kd_prefs_writer_open(&w, path, 259, 256, 257, 258, "bytes", &e);
    kd_prefs_writer_add(w, p0, 3, c0, 4, r0, 2, &e);
    kd_prefs_writer_close(w, 0, &e);
    kd_prefs_writer_open(&w, path, 259, 256, 257, 258, "bytes", &e);
    CHECK(kd_prefs_writer_close(w, 1, &e) == KD_EINPUT, "empty commit must fail");
    CHECK(n_files() == 0, "%d files after abort/empty commit, expected 0", n_files());
}

// Expected ids of text (bytes) framed by optional BOS before / EOS after.
static int32_t *enc(const char *s, int bos, int eos, int *n) {
    size_t len = strlen(s);
    int32_t *v = kd_malloc((len + 2) * sizeof *v);
    int k = 0;
    if (bos) v[k++] = KD_TOK_BYTES_BOS;
    for (size_t i = 0; i < len; i++) v[k++] = (uint8_t)s[i];
    if (eos) v[k++] = KD_TOK_BYTES_EOS;
    *n = k;
    return v;
}

static void test_convert(void) {
    char jl[256], out[256];
    snprintf(jl, sizeof jl, "%s/p.jsonl", dir);
    snprintf(out, sizeof out, "%s/p.h5", dir);
    FILE *f = fopen(jl, "w");
    // line 1: string prompt; line 3 (after a blank line): messages prompt with a system
    // turn and messages completions; line 4: long prompt and long chosen, for truncation
    fputs("{\"prompt\": \"hello\", \"chosen\": \"abc\", \"rejected\": \"abd\"}\n\n"
          "{\"prompt\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", "
          "\"content\": \"q\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"yes\"}], "
          "\"rejected\": [{\"role\": \"assistant\", \"content\": \"no\"}]}\n"
          "{\"prompt\": \"0123456789012345678901234567890123456789\", \"chosen\": "
          "\"abcdefghijklmnopqrstuvwxyz0123456789\", \"rejected\": \"x\"}\n",
          f);
    fclose(f);
    kd_chat_stats st;
    kd_error e = {0};
    // max_len 60, max_prompt 30: line 4's prompt (1+9+40+1+14 = 65) is cut to 30, its
    // chosen (36+1) to 60-30 = 30.
    CHECK(kd_prefs_convert_jsonl(jl, out, "bytes", NULL, 60, 30, &st, &e) == KD_OK, "convert: %s", e.msg);
    // prompts: line 1 = 1+9+5+1+14 = 30 (fits); line 3 = 1+11+1+1+9+1+1+14 = 39 -> cut to
    // 30; line 4 = 65 -> cut to 30. Completions: only line 4's chosen (37 > 30).
    CHECK(st.examples == 3 && st.prompt_truncated == 2 && st.completion_truncated == 1,
          "stats: examples %llu prompt_truncated %llu completion_truncated %llu, expected 3/2/1",
          (unsigned long long)st.examples, (unsigned long long)st.prompt_truncated,
          (unsigned long long)st.completion_truncated);
    kd_prefs *p;
    CHECK(kd_prefs_open(&p, out, &e) == KD_OK, "open converted: %s", e.msg);
    if (!p) return;
    int32_t *a, *b, *c;
    int na, nb, nc, wn;
    kd_prefs_read(p, 0, &a, &na, &b, &nb, &c, &nc, &e);
    int32_t *w = enc("<|user|>\nhello\n<|assistant|>\n", 1, 0, &wn);
    CHECK(same(a, na, w, wn), "line 1 prompt: %d tokens, expected %d", na, wn);
    free(w);
    w = enc("abc", 0, 1, &wn);
    CHECK(same(b, nb, w, wn), "line 1 chosen: %d tokens, expected %d", nb, wn);
    free(w);
    w = enc("abd", 0, 1, &wn);
    CHECK(same(c, nc, w, wn), "line 1 rejected: %d tokens, expected %d", nc, wn);
    free(w);
    free(a), free(b), free(c);

    kd_prefs_read(p, 1, &a, &na, &b, &nb, &c, &nc, &e);
    // BOS kept, 9 tokens dropped from the left of "<|system|>\nS\n<|user|>\nq\n<|assistant|>\n"
    w = enc("<|system|>\nS\n<|user|>\nq\n<|assistant|>\n", 1, 0, &wn);
    CHECK(na == 30 && a[0] == KD_TOK_BYTES_BOS && !memcmp(a + 1, w + 10, 29 * sizeof *a),
          "line 3 prompt: %d tokens, expected BOS + the last 29 of %d", na, wn);
    free(w);
    w = enc("yes", 0, 1, &wn);
    CHECK(same(b, nb, w, wn), "line 3 chosen: %d tokens, expected %d", nb, wn);
    free(w);
    free(a), free(b), free(c);

    kd_prefs_read(p, 2, &a, &na, &b, &nb, &c, &nc, &e);
    w = enc("abcdefghijklmnopqrstuvwxyz0123456789", 0, 1, &wn);
    CHECK(na == 30 && nb == 30 && !memcmp(b, w, 30 * sizeof *b) && nc == 2,
          "line 4: prompt %d chosen %d rejected %d tokens, expected 30/30 (the first 30 of the "
          "reply)/2",
          na, nb, nc);
    free(w);
    free(a), free(b), free(c);
    kd_prefs_close(p);
    unlink(out);
    unlink(jl);
}

// With a path: open it and print "count C tokens P/C/R last_chosen ID..." or the error
// (exit 2): tests/data_chat_h5py.sh checks files h5py wrote by hand.
static int probe(const char *path) {
    kd_prefs *p;
    kd_error e = {0};
    if (kd_prefs_open(&p, path, &e)) {
        printf("error: %s\n", e.msg);
        return 2;
    }
    const kd_prefs_info *in = kd_prefs_get_info(p);
    uint64_t n = kd_prefs_count(p);
    printf("count %llu tokens %llu/%llu/%llu last_chosen", (unsigned long long)n,
           (unsigned long long)in->n_tokens[0], (unsigned long long)in->n_tokens[1],
           (unsigned long long)in->n_tokens[2]);
    int32_t *a, *b, *c;
    int na, nb, nc;
    if (kd_prefs_read(p, n - 1, &a, &na, &b, &nb, &c, &nc, &e) == KD_OK) {
        for (int i = 0; i < nb; i++) printf(" %d", (int)b[i]);
        free(a);
        free(b);
        free(c);
    }
    printf("\n");
    kd_prefs_close(p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2) return probe(argv[1]);
    if (check_tmpdir(dir, sizeof dir, "chat_prefs")) return 2;
    test_roundtrip();
    test_convert();
    check_rmtree(dir);
    return check_done("chat prefs");
}
