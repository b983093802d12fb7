// synth_tasks.c: the chat task suite of `kdtrain data synth` (kd_data_synth_tasks in
// tools.h): short tasks with exact answers (addition, subtraction, copy, reverse, digit
// sort, key-value recall) as conversations, preference pairs (chosen = the right answer,
// rejected = a plausible wrong one), prompt-only data for teacher pseudo-labels, and
// held-out exact-match prompts and multiple-choice items. Questions are split by a hash of their text: training
// files only use questions with hash % 10 != 0 and held-out files (sft_val, prefs_val,
// eval_tasks) only the others, so no held-out question is ever trained on. Deterministic:
// our own RNG, one independent stream per file. To add a task, write one task_* function
// and add it to TASKS.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/chat.h"
#include "data/prefs.h"
#include "data/tokenizer.h"
#include "data/tools.h"
#include "data/synth_rng.h"
#include "data/writer.h"
#include "runtime/base/hash.h"


// ============================================================================ tasks
// Each fills q (the user's question), a (the exact answer) and wrong (a plausible wrong
// answer, always different from a). Buffers hold TXT bytes.

#define TXT 128

typedef struct {
    const char *name;
    void (*gen)(rng_t *r, char *q, char *a, char *wrong);
} task_t;

static void task_add(rng_t *r, char *q, char *a, char *wrong) {
    int x = rng_int(r, 100), y = rng_int(r, 100), s = x + y;
    snprintf(q, TXT, "What is %d+%d?", x, y);
    snprintf(a, TXT, "%d", s);
    snprintf(wrong, TXT, "%d", s == 0 || rng_int(r, 2) ? s + 1 : s - 1); // off by one
}

static void task_sub(rng_t *r, char *q, char *a, char *wrong) {
    int x = rng_int(r, 100), y = rng_int(r, 100);
    int hi = x > y ? x : y, lo = x > y ? y : x, d = hi - lo; // never negative
    snprintf(q, TXT, "What is %d-%d?", hi, lo);
    snprintf(a, TXT, "%d", d);
    snprintf(wrong, TXT, "%d", d == 0 || rng_int(r, 2) ? d + 1 : d - 1);
}

// A copy of s (n chars from alphabet [base, base+k)) with one change: two neighbouring
// different characters swapped, or, if all are equal, one character moved to the next
// letter of the alphabet.
static void perturb(rng_t *r, const char *s, int n, char base, int k, char *out) {
    memcpy(out, s, (size_t)n);
    out[n] = '\0';
    int start = rng_int(r, n > 1 ? n - 1 : 1);
    for (int j = 0; j < n - 1; j++) {
        int i = (start + j) % (n - 1);
        if (out[i] != out[i + 1]) {
            char t = out[i];
            out[i] = out[i + 1];
            out[i + 1] = t;
            return;
        }
    }
    out[0] = (char)(base + (out[0] - base + 1) % k);
}

static int rand_word(rng_t *r, char *s) {
    int n = 3 + rng_int(r, 4);
    for (int i = 0; i < n; i++) s[i] = (char)('a' + rng_int(r, 26));
    s[n] = '\0';
    return n;
}

static void task_copy(rng_t *r, char *q, char *a, char *wrong) {
    char s[8];
    int n = rand_word(r, s);
    snprintf(q, TXT, "Copy this: %s", s);
    snprintf(a, TXT, "%s", s);
    perturb(r, s, n, 'a', 26, wrong);
}

static void task_reverse(rng_t *r, char *q, char *a, char *wrong) {
    char s[8], rev[8];
    int n = rand_word(r, s);
    for (int i = 0; i < n; i++) rev[i] = s[n - 1 - i];
    rev[n] = '\0';
    snprintf(q, TXT, "Reverse this: %s", s);
    snprintf(a, TXT, "%s", rev);
    perturb(r, rev, n, 'a', 26, wrong);
}

// digits -> "d d d" text
static void join_digits(const char *d, int n, char *out) {
    for (int i = 0; i < n; i++) {
        out[2 * i] = d[i];
        out[2 * i + 1] = i + 1 < n ? ' ' : '\0';
    }
}

static void task_sort(rng_t *r, char *q, char *a, char *wrong) {
    char d[8] = {0}, sorted[8] = {0}, bad[8] = {0}, txt[16] = {0};
    int n = 3 + rng_int(r, 3);
    for (int i = 0; i < n; i++) d[i] = (char)('0' + rng_int(r, 10));
    memcpy(sorted, d, (size_t)n);
    for (int i = 1; i < n; i++) // insertion sort
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            char t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    join_digits(d, n, txt);
    snprintf(q, TXT, "Sort these digits: %s", txt);
    join_digits(sorted, n, a);
    perturb(r, sorted, n, '0', 10, bad);
    join_digits(bad, n, wrong);
}

static void task_kv(rng_t *r, char *q, char *a, char *wrong) {
    char keys[6] = {0};
    int vals[6] = {0}, n = 3 + rng_int(r, 3), len = 0;
    for (int i = 0; i < n; i++) {
        int dup;
        do { // distinct keys
            keys[i] = (char)('a' + rng_int(r, 26));
            dup = 0;
            for (int j = 0; j < i; j++) dup |= keys[j] == keys[i];
        } while (dup);
        vals[i] = rng_int(r, 10);
        len += snprintf(q + len, (size_t)(TXT - len), "%s%c=%d", i ? ", " : "", keys[i], vals[i]);
    }
    int k = rng_int(r, n), other = (k + 1 + rng_int(r, n - 1)) % n;
    snprintf(q + len, (size_t)(TXT - len), ". What is %c?", keys[k]);
    snprintf(a, TXT, "%d", vals[k]);
    // the value of another key (a recall mistake), or a near miss if it is the same
    snprintf(wrong, TXT, "%d", vals[other] != vals[k] ? vals[other] : (vals[k] + 1) % 10);
}

static const task_t TASKS[] = {{"add", task_add},         {"sub", task_sub},   {"copy", task_copy},
                               {"reverse", task_reverse}, {"sort", task_sort}, {"kv", task_kv}};
#define N_TASKS ((int)(sizeof TASKS / sizeof TASKS[0]))

static const char *SYSTEM_MSG = "You are a careful assistant. Answer with the result only.";

// The question split hashes each question with this offset basis (hash.h says why it is not
// FNV's own): one question in ten is held out.
#define SPLIT_BASIS 1469598103934665603ull

// One example from the held-out (held=1) or training side of the question split.
typedef struct {
    int task, system;
    char q[TXT], a[TXT], wrong[TXT];
} example_t;

static void draw(rng_t *r, int held, example_t *e) {
    do {
        e->task = rng_int(r, N_TASKS);
        TASKS[e->task].gen(r, e->q, e->a, e->wrong);
    } while ((kd_fnv1a64_basis(SPLIT_BASIS, e->q, strlen(e->q)) % 10 == 0) != held);
    e->system = rng_int(r, 4) == 0;
}

// ============================================================================ files

// An independent stream per file: the seed hashed with the file's number.
static rng_t stream(uint64_t seed, uint64_t k) {
    rng_t r = {seed ^ (k * 0xd1b54a32d192ed03ull)};
    rng_t s = {rng_next(&r)};
    return s;
}

// Text files appear atomically too: written as PATH.tmp-<pid>, renamed when complete.
static FILE *tmp_open(const char *path, char *tmp, size_t cap, kd_error *err) {
    snprintf(tmp, cap, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) kd_fail(err, KD_EINPUT, "%s: cannot create: %s", tmp, strerror(errno));
    return f;
}

static int tmp_commit(FILE *f, const char *tmp, const char *path, int bad, kd_error *err) {
    bad |= ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (!bad && rename(tmp, path) == 0) return KD_OK;
    unlink(tmp);
    return kd_fail(err, KD_ERUNTIME, "%s: write failed (disk full?)", path);
}

static void put_msg(FILE *f, const char *role, const char *content, int comma) {
    fprintf(f, "%s{\"role\": \"%s\", \"content\": ", comma ? ", " : "", role);
    kd_json_write_string(f, content);
    fputc('}', f);
}

// {"messages": [system?, user, assistant (, user, assistant)]}: one in ten conversations
// has a second exchange, so multi-turn masks are exercised.
static int write_sft_jsonl(const char *path, uint64_t seed, uint64_t n, int held, kd_error *err) {
    char tmp[4300];
    FILE *f = tmp_open(path, tmp, sizeof tmp, err);
    if (!f) return KD_EINPUT;
    rng_t r = stream(seed, 1 + (uint64_t)held);
    for (uint64_t i = 0; i < n; i++) {
        example_t e;
        draw(&r, held, &e);
        fputs("{\"messages\": [", f);
        if (e.system) put_msg(f, "system", SYSTEM_MSG, 0);
        put_msg(f, "user", e.q, e.system);
        put_msg(f, "assistant", e.a, 1);
        if (rng_int(&r, 10) == 0) {
            draw(&r, held, &e);
            put_msg(f, "user", e.q, 1);
            put_msg(f, "assistant", e.a, 1);
        }
        fputs("]}\n", f);
    }
    return tmp_commit(f, tmp, path, 0, err);
}

// {"prompt": str or messages (with a system turn), "chosen": ..., "rejected": ...}; a
// quarter of the completions use the messages form.
static int write_prefs_jsonl(const char *path, uint64_t seed, uint64_t n, int held, kd_error *err) {
    char tmp[4300];
    FILE *f = tmp_open(path, tmp, sizeof tmp, err);
    if (!f) return KD_EINPUT;
    rng_t r = stream(seed, 3 + (uint64_t)held);
    for (uint64_t i = 0; i < n; i++) {
        example_t e;
        draw(&r, held, &e);
        int as_msgs = rng_int(&r, 4) == 0;
        fputs("{\"prompt\": ", f);
        if (e.system) {
            fputc('[', f);
            put_msg(f, "system", SYSTEM_MSG, 0);
            put_msg(f, "user", e.q, 1);
            fputc(']', f);
        } else {
            kd_json_write_string(f, e.q);
        }
        const char *keys[2] = {"chosen", "rejected"}, *vals[2] = {e.a, e.wrong};
        for (int k = 0; k < 2; k++) {
            fprintf(f, ", \"%s\": ", keys[k]);
            if (as_msgs) {
                fputc('[', f);
                put_msg(f, "assistant", vals[k], 0);
                fputc(']', f);
            } else {
                kd_json_write_string(f, vals[k]);
            }
        }
        fputs("}\n", f);
    }
    return tmp_commit(f, tmp, path, 0, err);
}

// Render e's prompt (system?, user, assistant header) into b.
static int render_prompt(const kd_chat_template *t, const example_t *e, kd_chat_buf *b,
                         kd_error *err) {
    kd_chat_msg m[2] = {{KD_CHAT_SYSTEM, SYSTEM_MSG, strlen(SYSTEM_MSG)},
                        {KD_CHAT_USER, e->q, strlen(e->q)}};
    kd_chat_buf_reset(b);
    return kd_chat_render(t, m + !e->system, 1 + e->system, 1, b, NULL, err);
}

// prompts.h5: kind sft, prompts only (through the assistant header), loss mask all 0.
static int write_prompts(const char *path, const kd_chat_template *t, uint64_t seed, uint64_t n,
                         kd_error *err) {
    kd_dataset_writer *w;
    int rc = kd_dataset_writer_open(&w, path, "sft", KD_TOK_BYTES_VOCAB, KD_TOK_BYTES_BOS,
                                    KD_TOK_BYTES_EOS, KD_TOK_BYTES_PAD, 1, KD_TOK_BYTES_NAME, err);
    if (rc) return rc;
    rng_t r = stream(seed, 5);
    kd_chat_buf b = {0};
    for (uint64_t i = 0; rc == KD_OK && i < n; i++) {
        example_t e;
        draw(&r, 0, &e);
        if ((rc = render_prompt(t, &e, &b, err)) == KD_OK)
            rc = kd_dataset_writer_add(w, b.ids, b.mask, b.n, err);
    }
    kd_chat_buf_free(&b);
    int rc2 = kd_dataset_writer_close(w, rc == KD_OK, err);
    return rc ? rc : rc2;
}

// The wrong choices of a multiple-choice item: e's plausible wrong answer, then answers to
// other questions of the same task, all distinct (ch[0] is the answer).
#define MC_CHOICES 4
static void mc_choices(rng_t *r, const example_t *e, char ch[MC_CHOICES][TXT]) {
    char q[TXT], a[TXT], w[TXT];
    memcpy(ch[0], e->a, TXT), memcpy(ch[1], e->wrong, TXT);
    for (int k = 2; k < MC_CHOICES; k++) {
        int fresh = 0;
        for (int tries = 0; !fresh && tries < 64; tries++) {
            TASKS[e->task].gen(r, q, a, w);
            fresh = 1;
            for (int j = 0; j < k; j++) fresh &= strcmp(a, ch[j]) != 0;
        }
        if (!fresh) snprintf(a, TXT, "%s %d", e->a, k); // a tiny answer space: still wrong
        memcpy(ch[k], a, TXT);
    }
}

// Held-out items as JSONL, the prompt as the rendered prompt's text (special ids such as BOS
// are not text: the token ids are [BOS] + bytes of the prompt).
//   eval_tasks.jsonl (mc 0): {"task", "prompt", "answer"};
//   mc_tasks.jsonl (mc 1): multiple choice in lm-eval's form (stages/eval_choices.c):
//   {"task", "context": the prompt, "choices": the answer and three wrong ones, "gold": the
//   answer's place}.
static int write_eval(const char *path, const kd_chat_template *t, uint64_t seed, uint64_t n,
                      int mc, kd_error *err) {
    char tmp[4300];
    FILE *f = tmp_open(path, tmp, sizeof tmp, err);
    if (!f) return KD_EINPUT;
    rng_t r = stream(seed, mc ? 7 : 6);
    kd_chat_buf b = {0};
    char *text = NULL, ch[MC_CHOICES][TXT];
    int rc = KD_OK;
    for (uint64_t i = 0; rc == KD_OK && i < n; i++) {
        example_t e;
        draw(&r, 1, &e);
        if ((rc = render_prompt(t, &e, &b, err))) break;
        text = kd_realloc(text, b.n + 1);
        size_t len = kd_tokenizer_bytes_decode(b.ids, b.n, text);
        fprintf(f, "{\"task\": \"%s\", \"%s\": ", TASKS[e.task].name, mc ? "context" : "prompt");
        kd_json_write_stringn(f, text, len);
        if (!mc) {
            fputs(", \"answer\": ", f);
            kd_json_write_string(f, e.a);
            fputs("}\n", f);
            continue;
        }
        mc_choices(&r, &e, ch);
        int gold = rng_int(&r, MC_CHOICES);
        char a[TXT];
        memcpy(a, ch[gold], TXT), memcpy(ch[gold], ch[0], TXT), memcpy(ch[0], a, TXT);
        fputs(", \"choices\": [", f);
        for (int k = 0; k < MC_CHOICES; k++) {
            if (k) fputs(", ", f);
            kd_json_write_string(f, ch[k]);
        }
        fprintf(f, "], \"gold\": %d}\n", gold);
    }
    free(text);
    kd_chat_buf_free(&b);
    if (rc) {
        fclose(f);
        unlink(tmp);
        return rc;
    }
    return tmp_commit(f, tmp, path, 0, err);
}

int kd_data_synth_tasks(const char *dir, uint64_t seed, uint64_t n_examples, kd_error *err) {
    if (n_examples < 10 || n_examples > 100000000)
        return kd_fail(err, KD_EINPUT, "--examples %llu: expected 10..100000000",
                       (unsigned long long)n_examples);
    uint64_t n_val = n_examples / 10, n_half = n_examples / 2;
    // prompts and exact-match prompts are capped: generating answers for them is the
    // expensive part of a kd or eval stage, and these counts already measure well
    uint64_t n_prompts = n_half < 4000 ? n_half : 4000, n_eval = n_val < 1000 ? n_val : 1000;
    kd_chat_template *t = NULL;
    int rc = kd_chat_template_load(&t, "bytes", err);
    char p[4200], q[4200];
#define PATH(buf, name) snprintf(buf, sizeof buf, "%s/%s", dir, name)
    const char *sft[2][2] = {{"sft.jsonl", "sft.h5"}, {"sft_val.jsonl", "sft_val.h5"}};
    const char *prf[2][2] = {{"prefs.jsonl", "prefs.h5"}, {"prefs_val.jsonl", "prefs_val.h5"}};
    for (int held = 0; rc == KD_OK && held < 2; held++) {
        PATH(p, sft[held][0]);
        PATH(q, sft[held][1]);
        rc = write_sft_jsonl(p, seed, held ? n_val : n_examples, held, err);
        if (rc == KD_OK) rc = kd_chat_convert_jsonl(p, q, "bytes", NULL, 0, 0, NULL, err);
        PATH(p, prf[held][0]);
        PATH(q, prf[held][1]);
        if (rc == KD_OK) rc = write_prefs_jsonl(p, seed, held ? n_val : n_half, held, err);
        if (rc == KD_OK) rc = kd_prefs_convert_jsonl(p, q, "bytes", NULL, 0, 0, NULL, err);
    }
    PATH(p, "prompts.h5");
    if (rc == KD_OK) rc = write_prompts(p, t, seed, n_prompts, err);
    PATH(p, "eval_tasks.jsonl");
    if (rc == KD_OK) rc = write_eval(p, t, seed, n_eval, 0, err);
    PATH(p, "mc_tasks.jsonl");
    if (rc == KD_OK) rc = write_eval(p, t, seed, n_eval < 300 ? n_eval : 300, 1, err);
#undef PATH
    kd_chat_template_free(t);
    return rc;
}
