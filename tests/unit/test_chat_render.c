// test_chat_render.c: chat templates render hand-written conversations to exactly the
// token ids and loss mask docs/formats.md promises (built-in bytes, llama3, chatml and
// mistral with the byte tokenizer, and a YAML template file), YAML template errors name
// FILE:LINE:COL, and the truncation policy cuts exactly the documented tokens. Exact integer
// comparisons: no tolerance is needed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/chat.h"
#include "data/tokenizer.h"
#include "check.h"

// The expected sequence, built piece by piece: text (bytes) or a special id, with a mask.
typedef struct {
    int32_t ids[1024];
    uint8_t mask[1024];
    size_t n;
} seq;
static void text(seq *s, const char *t, int m) {
    for (; *t; t++) {
        s->ids[s->n] = (uint8_t)*t;
        s->mask[s->n++] = (uint8_t)m;
    }
}
static void special(seq *s, int32_t id, int m) {
    s->ids[s->n] = id;
    s->mask[s->n++] = (uint8_t)m;
}

static void compare(const char *what, const kd_chat_buf *b, const seq *want) {
    CHECK(b->n == want->n, "%s: %zu tokens, expected %zu", what, b->n, want->n);
    for (size_t i = 0; i < b->n && i < want->n; i++)
        if (b->ids[i] != want->ids[i] || b->mask[i] != want->mask[i]) {
            char g[16], w[16];
            CHECK(0, "%s: token %zu = %s (mask %d), expected %s (mask %d)", what, i,
                  kd_tokenizer_bytes_piece(b->ids[i], g), b->mask[i],
                  kd_tokenizer_bytes_piece(want->ids[i], w), want->mask[i]);
            return;
        }
}

static const kd_chat_msg CONV[] = {{KD_CHAT_SYSTEM, "Be brief.", 9},
                                   {KD_CHAT_USER, "2+2?", 4},
                                   {KD_CHAT_ASSISTANT, "4", 1},
                                   {KD_CHAT_USER, "and 3+3?", 8},
                                   {KD_CHAT_ASSISTANT, "6", 1}};

static void test_bytes(void) {
    kd_chat_template *t;
    kd_error err = {0};
    CHECK(kd_chat_template_load(&t, "bytes", &err) == KD_OK, "load bytes: %s", err.msg);
    kd_chat_buf b = {0};
    size_t last = 0;
    CHECK(kd_chat_render(t, CONV, 5, 0, &b, &last, &err) == KD_OK, "render: %s", err.msg);
    seq s = {0};
    special(&s, KD_TOK_BYTES_BOS, 0);
    text(&s, "<|system|>\nBe brief.\n<|user|>\n2+2?\n<|assistant|>\n", 0);
    text(&s, "4", 1);
    special(&s, KD_TOK_BYTES_EOS, 1);
    text(&s, "<|user|>\nand 3+3?\n<|assistant|>\n", 0);
    size_t want_last = s.n;
    text(&s, "6", 1);
    special(&s, KD_TOK_BYTES_EOS, 1);
    compare("bytes conversation", &b, &s);
    CHECK(last == want_last, "bytes: last assistant content at %zu, expected %zu", last, want_last);

    // a prompt for generation: up to and including the assistant header, mask all 0
    kd_chat_buf_reset(&b);
    CHECK(kd_chat_render(t, CONV + 1, 1, 1, &b, NULL, &err) == KD_OK, "render prompt");
    seq p = {0};
    special(&p, KD_TOK_BYTES_BOS, 0);
    text(&p, "<|user|>\n2+2?\n<|assistant|>\n", 0);
    compare("bytes generation prompt", &b, &p);
    kd_chat_buf_free(&b);
    kd_chat_template_free(t);
}

static void test_llama3(void) {
    kd_chat_template *t;
    kd_error err = {0};
    CHECK(kd_chat_template_load(&t, "llama3", &err) == KD_OK, "load llama3: %s", err.msg);
    kd_chat_buf b = {0};
    CHECK(kd_chat_render(t, CONV + 1, 2, 0, &b, NULL, &err) == KD_OK, "render: %s", err.msg);
    seq s = {0};
    special(&s, KD_TOK_BYTES_BOS, 0);
    text(&s, "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>", 0);
    text(&s, "<|start_header_id|>assistant<|end_header_id|>\n\n", 0);
    text(&s, "4<|eot_id|>", 1);
    special(&s, KD_TOK_BYTES_EOS, 1);
    compare("llama3 conversation", &b, &s);
    kd_chat_buf_free(&b);
    kd_chat_template_free(t);
}

// chatml with the byte tokenizer: markers are bytes, BOS first and EOS after each reply
// (a real tokenizer drops both: <|im_end|> is its stop id).
static void test_chatml(void) {
    kd_chat_template *t;
    kd_error err = {0};
    CHECK(kd_chat_template_load_tok(&t, "chatml", NULL, &err) == KD_OK, "load chatml: %s", err.msg);
    kd_chat_buf b = {0};
    size_t last = 0;
    CHECK(kd_chat_render(t, CONV, 3, 0, &b, &last, &err) == KD_OK, "render: %s", err.msg);
    seq s = {0};
    special(&s, KD_TOK_BYTES_BOS, 0);
    text(&s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n", 0);
    text(&s, "<|im_start|>assistant\n", 0);
    size_t want_last = s.n;
    text(&s, "4<|im_end|>\n", 1);
    special(&s, KD_TOK_BYTES_EOS, 1);
    compare("chatml conversation", &b, &s);
    CHECK(last == want_last, "chatml: last assistant content at %zu, expected %zu", last,
          want_last);
    CHECK(t->header_ids[KD_CHAT_ASSISTANT].n == strlen("<|im_start|>assistant\n"),
          "chatml: assistant header of %zu ids (the truncation's protected tail)",
          t->header_ids[KD_CHAT_ASSISTANT].n);
    kd_chat_buf_free(&b);
    kd_chat_template_free(t);
}

// mistral: <s>[INST] user [/INST]reply</s>, no system role.
static void test_mistral(void) {
    kd_chat_template *t;
    kd_error err = {0};
    CHECK(kd_chat_template_load(&t, "mistral", &err) == KD_OK, "load mistral: %s", err.msg);
    kd_chat_buf b = {0};
    CHECK(kd_chat_render(t, CONV + 1, 3, 1, &b, NULL, &err) == KD_OK, "render: %s", err.msg);
    seq s = {0};
    special(&s, KD_TOK_BYTES_BOS, 0);
    text(&s, "[INST] 2+2? [/INST]", 0);
    text(&s, "4", 1);
    special(&s, KD_TOK_BYTES_EOS, 1);
    text(&s, "[INST] and 3+3? [/INST]", 0);
    compare("mistral conversation with generation header", &b, &s);
    kd_chat_buf_reset(&b);
    kd_error e2 = {0};
    CHECK(kd_chat_render(t, CONV, 3, 0, &b, NULL, &e2) == KD_EINPUT &&
              strstr(e2.msg, "template 'mistral' has no role 'system'"),
          "mistral must refuse a system turn, got '%s'", e2.msg);
    kd_chat_buf_free(&b);
    kd_chat_template_free(t);
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

static void test_yaml(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/t.yaml", dir);
    write_file(path, "# a minimal template\n"
                     "bos: false\n"
                     "eos: true\n"
                     "user: {header: \"U: \", footer: \"\\n\"}\n"
                     "assistant:\n"
                     "  header: \"A: \"\n"
                     "  footer: \"\\n\"\n");
    kd_chat_template *t = NULL;
    kd_error err = {0};
    CHECK(kd_chat_template_load(&t, path, &err) == KD_OK, "load yaml: %s", err.msg);
    if (t) {
        kd_chat_buf b = {0};
        CHECK(kd_chat_render(t, CONV + 1, 2, 0, &b, NULL, &err) == KD_OK, "render: %s", err.msg);
        seq s = {0};
        text(&s, "U: 2+2?\nA: ", 0);
        text(&s, "4\n", 1);
        special(&s, KD_TOK_BYTES_EOS, 1);
        compare("yaml conversation", &b, &s);
        // no system role in this template: refused, naming the message
        kd_error e2 = {0};
        CHECK(kd_chat_render(t, CONV, 3, 0, &b, NULL, &e2) == KD_EINPUT,
              "system message with a template without one: rc=%d", e2.code);
        CHECK(strstr(e2.msg, "messages[0].role") && strstr(e2.msg, "no role 'system'"),
              "message: %s", e2.msg);
        kd_chat_buf_free(&b);
        kd_chat_template_free(t);
    }
    // errors: FILE:LINE:COL, the key, what was expected and what was found
    struct {
        const char *yaml, *want;
    } bad[] = {
        {"bos: true\neos: maybe\nuser: {}\nassistant: {}\n",
         ":2:6: eos: expected true or false, found 'maybe'"},
        {"bos: true\neos: true\nuser: {}\nassistant: {}\nbogus: 1\n",
         ":5:1: template: expected a key bos|eos|system|user|assistant, found 'bogus'"},
        {"bos: true\neos: true\nuser: {head: x}\nassistant: {}\n",
         ":3:8: user: expected key header or footer, found 'head'"},
        {"bos: true\neos: true\nuser: {}\n", ": expected keys bos, eos, user and assistant, "
                                             "found no assistant"},
        {"bos: true\neos: [true\n", ":3:1: expected valid YAML, found "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].yaml);
        kd_error e = {0};
        t = NULL;
        int rc = kd_chat_template_load(&t, path, &e);
        CHECK(rc == KD_EINPUT && !t, "bad yaml %zu: rc=%d", i, rc);
        CHECK(!strncmp(e.msg, path, strlen(path)) && strstr(e.msg, bad[i].want),
              "bad yaml %zu: message '%s', expected '%s%s...'", i, e.msg, path, bad[i].want);
        kd_chat_template_free(t);
    }
    unlink(path);
}

// b = prompt [BOS, 1..9] (10 tokens) + completion [100..104] (5 tokens)
static void fill(kd_chat_buf *b, size_t *np) {
    kd_chat_buf_reset(b);
    const int32_t ids[15] = {KD_TOK_BYTES_BOS, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 101, 102, 103, 104};
    for (int i = 0; i < 15; i++) {
        if (b->n == b->cap) {
            b->cap = 64;
            b->ids = kd_realloc(b->ids, 64 * sizeof *b->ids);
            b->mask = kd_realloc(b->mask, 64);
        }
        b->ids[b->n] = ids[i];
        b->mask[b->n++] = i >= 10;
    }
    *np = 10;
}

static void test_truncate(void) {
    kd_chat_buf b = {0};
    size_t np;
    int pc, cc;
    kd_error e = {0};
    // fits: nothing changes
    fill(&b, &np);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 0, 15, &pc, &cc, &e) == KD_OK && b.n == 15 && np == 10 &&
              !pc && !cc,
          "fits: n=%zu np=%zu pc=%d cc=%d", b.n, np, pc, cc);
    // 3 over: the prompt's left side loses 3 (after BOS): BOS 4 5 6 7 8 9 | 100..104
    fill(&b, &np);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 0, 12, &pc, &cc, &e) == KD_OK && b.n == 12 && np == 7 &&
              pc && !cc,
          "max_len 12: n=%zu np=%zu pc=%d cc=%d", b.n, np, pc, cc);
    CHECK(b.ids[0] == KD_TOK_BYTES_BOS && b.ids[1] == 4 && b.ids[6] == 9 && b.ids[7] == 100 &&
              b.mask[7] == 1 && b.mask[6] == 0,
          "max_len 12: ids %d %d %d %d", b.ids[0], b.ids[1], b.ids[6], b.ids[7]);
    // 7 over: the prompt drops to BOS + the protected 3, then the completion loses 1
    fill(&b, &np);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 0, 8, &pc, &cc, &e) == KD_OK && b.n == 8 && np == 4 &&
              pc && cc,
          "max_len 8: n=%zu np=%zu pc=%d cc=%d", b.n, np, pc, cc);
    CHECK(b.ids[1] == 7 && b.ids[4] == 100 && b.ids[7] == 103, "max_len 8: ids %d %d %d", b.ids[1],
          b.ids[4], b.ids[7]);
    // nothing of the completion would remain
    fill(&b, &np);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 0, 4, &pc, &cc, &e) == KD_EINPUT &&
              strstr(e.msg, "--max-len 4"),
          "max_len 4: rc=%d msg=%s", e.code, e.msg);
    // max_prompt 6: the prompt alone is cut from the left to BOS 5 6 7 8 9
    fill(&b, &np);
    kd_error_clear(&e);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 6, 0, &pc, &cc, &e) == KD_OK && np == 6 && b.n == 11 &&
              b.ids[1] == 5 && pc && !cc,
          "max_prompt 6: n=%zu np=%zu ids[1]=%d", b.n, np, b.ids[1]);
    fill(&b, &np);
    CHECK(kd_chat_truncate(&b, &np, 1, 3, 3, 0, &pc, &cc, &e) == KD_EINPUT,
          "max_prompt 3 < BOS + header must fail");
    kd_chat_buf_free(&b);
}

int main(void) {
    char dir[256];
    if (check_tmpdir(dir, sizeof dir, "chat_render")) return 2;
    test_bytes();
    test_chatml();
    test_mistral();
    test_llama3();
    test_yaml(dir);
    test_truncate();
    check_rmtree(dir);
    return check_done("chat render");
}
