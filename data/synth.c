// synth.c: deterministic synthetic demo corpora (`kdtrain data synth`). Text is drawn
// from small generators, one per task, each with structure a tiny model can learn in a
// few hundred steps (word order, arithmetic, key lookup, counting, copying, reversing), so
// its loss falls well below the unigram entropy. Same seed -> same bytes: only our own RNG is
// used, and the writer stores no timestamps. To add a task, write one gen_* function and
// add it to GENERATORS.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tokenizer.h"
#include "data/tools.h"
#include "data/synth_rng.h"
#include "data/writer.h"
#include "runtime/base/fs.h"


// ============================================================================ generators
// Each appends one line (ending in '\n') to buf at *len (capacity cap, always enough for
// one line: lines are < 256 bytes and the caller keeps that much room).

static const char *ADJ[] = {"red", "big", "small", "old", "quick", "lazy", "green", "happy"};
static const char *NOUN[] = {"cat", "dog", "fox", "bird", "girl", "boy", "king", "frog"};
static const char *VERB[] = {"sees", "likes", "finds", "helps", "chases", "meets"};
static const char *PLACE[] = {"park", "river", "house", "garden", "forest", "town"};

// "the big dog likes the red cat in the park."
static void gen_sentence(rng_t *r, char *buf, size_t *len, size_t cap) {
    *len += snprintf(buf + *len, cap - *len, "the %s %s %s the %s %s in the %s.\n", PICK(r, ADJ),
                     PICK(r, NOUN), PICK(r, VERB), PICK(r, ADJ), PICK(r, NOUN), PICK(r, PLACE));
}

// "12+7=19." or "15-4=11."
static void gen_arith(rng_t *r, char *buf, size_t *len, size_t cap) {
    int a = rng_int(r, 50), b = rng_int(r, 50);
    if (rng_int(r, 2))
        *len += snprintf(buf + *len, cap - *len, "%d+%d=%d.\n", a, b, a + b);
    else
        *len += snprintf(buf + *len, cap - *len, "%d-%d=%d.\n", a > b ? a : b, a > b ? b : a,
                         a > b ? a - b : b - a);
}

// "k=3 q=7 m=1; q? 7." : look up a key in the list just seen.
static void gen_keyvalue(rng_t *r, char *buf, size_t *len, size_t cap) {
    char keys[6] = {0};
    int vals[6] = {0}, n = 3 + rng_int(r, 4);
    for (int i = 0; i < n; i++) {
        char k;
        int dup;
        do { // distinct keys
            k = (char)('a' + rng_int(r, 26));
            dup = 0;
            for (int j = 0; j < i; j++) dup |= keys[j] == k;
        } while (dup);
        keys[i] = k;
        vals[i] = rng_int(r, 10);
        *len += snprintf(buf + *len, cap - *len, "%c=%d ", k, vals[i]);
    }
    int q = rng_int(r, n);
    buf[*len - 1] = ';';
    *len += snprintf(buf + *len, cap - *len, " %c? %d.\n", keys[q], vals[q]);
}

// "count 17 18 19 20 21."
static void gen_count(rng_t *r, char *buf, size_t *len, size_t cap) {
    int a = rng_int(r, 90), n = 4 + rng_int(r, 6);
    *len += snprintf(buf + *len, cap - *len, "count");
    for (int i = 0; i < n; i++) *len += snprintf(buf + *len, cap - *len, " %d", a + i);
    *len += snprintf(buf + *len, cap - *len, ".\n");
}

// "copy xkq: xkq." : repeat a random short string.
static void gen_copy(rng_t *r, char *buf, size_t *len, size_t cap) {
    char s[8];
    int n = 3 + rng_int(r, 4);
    for (int i = 0; i < n; i++) s[i] = (char)('a' + rng_int(r, 26));
    s[n] = '\0';
    *len += snprintf(buf + *len, cap - *len, "copy %s: %s.\n", s, s);
}

// "reverse xkq: qkx." : a random short string backwards.
static void gen_reverse(rng_t *r, char *buf, size_t *len, size_t cap) {
    char s[8], t[8];
    int n = 3 + rng_int(r, 4);
    for (int i = 0; i < n; i++) s[i] = (char)('a' + rng_int(r, 26));
    for (int i = 0; i < n; i++) t[i] = s[n - 1 - i];
    s[n] = t[n] = '\0';
    *len += snprintf(buf + *len, cap - *len, "reverse %s: %s.\n", s, t);
}

// Copying and reversing take a small model the longest to learn (they need attention that
// looks content up, which forms late): they are drawn twice as often as the other lines.
typedef void (*gen_fn)(rng_t *r, char *buf, size_t *len, size_t cap);
static const gen_fn GENERATORS[] = {gen_sentence, gen_arith,   gen_keyvalue, gen_count,
                                    gen_copy,     gen_copy,    gen_reverse,  gen_reverse};
#define N_GENERATORS ((int)(sizeof GENERATORS / sizeof GENERATORS[0]))

// ============================================================================ corpus

#define DOC_MAX_LINES 12
#define LINE_ROOM 256

// Documents of 4..12 lines from random generators, BOS + text + EOS, until >= n_tokens.
static int write_corpus(const char *path, uint64_t seed, uint64_t n_tokens, kd_error *err) {
    kd_dataset_writer *w;
    int rc = kd_dataset_writer_open(&w, path, "tokens", KD_TOK_BYTES_VOCAB, KD_TOK_BYTES_BOS,
                                    KD_TOK_BYTES_EOS, KD_TOK_BYTES_PAD, 0, KD_TOK_BYTES_NAME, err);
    if (rc) return rc;
    rng_t r = {seed};
    char text[DOC_MAX_LINES * LINE_ROOM];
    int32_t ids[DOC_MAX_LINES * LINE_ROOM + 2];
    while (rc == KD_OK && kd_dataset_writer_n_tokens(w) < n_tokens) {
        size_t len = 0;
        int lines = 4 + rng_int(&r, DOC_MAX_LINES - 3);
        for (int i = 0; i < lines; i++)
            GENERATORS[rng_int(&r, N_GENERATORS)](&r, text, &len, sizeof text);
        ids[0] = KD_TOK_BYTES_BOS;
        kd_tokenizer_bytes_encode(text, len, ids + 1);
        ids[len + 1] = KD_TOK_BYTES_EOS;
        rc = kd_dataset_writer_add(w, ids, NULL, len + 2, err);
    }
    int rc2 = kd_dataset_writer_close(w, rc == KD_OK, err);
    return rc ? rc : rc2;
}

int kd_data_synth(const char *dir, uint64_t seed, uint64_t n_tokens, kd_error *err) {
    if (n_tokens < 1000)
        return kd_fail(err, KD_EINPUT, "--tokens %llu: expected at least 1000",
                       (unsigned long long)n_tokens);
    int rc = kd_mkdir_p_or_fail(dir, 0777, KD_EINPUT, err);
    if (rc) return rc;
    char path[4200];
    uint64_t n_val = n_tokens / 10 > 2000 ? n_tokens / 10 : 2000;
    snprintf(path, sizeof path, "%s/pretrain.h5", dir);
    if ((rc = write_corpus(path, seed, n_tokens, err))) return rc;
    // the validation stream uses an independent key so it shares no documents by design
    snprintf(path, sizeof path, "%s/pretrain_val.h5", dir);
    return write_corpus(path, seed ^ 0x5eed5eed5eed5eedull, n_val, err);
}
