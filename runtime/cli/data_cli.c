// data_cli.c: the `kdtrain data` command line (argument parsing, help, dispatch). The
// work is done by the data/ library: pack.c, inspect.c, synth.c, chat.c, prefs.c.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/chat.h"
#include "data/prefs.h"
#include "data/tokenizer.h"
#include "data/tools.h"
#include "runtime/cli/cli.h"

static const char *HELP_DATA =
    "usage: kdtrain data <pack|inspect|synth|chat|prefs> [options]   (each has --help)\n"
    "  pack     tokenize text files into a token dataset\n"
    "  chat     render JSONL conversations into an sft dataset (tokens + loss mask)\n"
    "  prefs    render JSONL preference pairs into a preference dataset\n"
    "  inspect  summarize a dataset: counts, special ids, mask coverage, entropy\n"
    "  synth    write deterministic demo corpora\n";
static const char *HELP_PACK =
    "usage: kdtrain data pack --text FILE... --out F.h5 [--eos-between] [--tokenizer SPEC]\n"
    "  SPEC is bytes (default: ids 0..255 bytes, BOS 256, EOS 257, PAD 258) or a Hugging\n"
    "  Face tokenizer directory / tokenizer.json. Each text file is one document\n"
    "  [BOS] + ids + EOS. With --eos-between, each paragraph (lines separated by\n"
    "  one or more blank lines) becomes its own document, so an EOS (and a BOS) falls\n"
    "  between paragraphs. Empty documents are skipped. F.h5 appears only when complete.\n";
static const char *HELP_INSPECT =
    "usage: kdtrain data inspect F.h5 [--first K]\n"
    "  Validate F.h5 and print kind, token and document counts, the tokenizer (name,\n"
    "  fingerprint, stop ids), vocab and special ids, loss mask coverage, the first K\n"
    "  tokens (default 32; decoded for the byte tokenizer) and the unigram entropy of the\n"
    "  tokens in nats and bits, as \"key: value\" lines. Preference datasets: per-part\n"
    "  counts (prompt, chosen, rejected) and the first example's ids.\n";
static const char *HELP_SYNTH =
    "usage: kdtrain data synth --out DIR [--seed S] [--tokens N] [--examples E]\n"
    "  Write DIR/pretrain.h5 (about N tokens, default 200000) and DIR/pretrain_val.h5\n"
    "  (N/10, at least 2000): templated sentences, arithmetic, key=value lookups, counting\n"
    "  copying and reversing, byte-tokenized. Same seed (default 1234) -> identical files.\n"
    "  Also the chat task suite (E examples, default 20000, at least 10): DIR/sft.h5 (E),\n"
    "  sft_val.h5 (E/10), prefs.h5 (E/2), prefs_val.h5 (E/10), prompts.h5 (E/2, at most\n"
    "  4000; prompts only, loss mask 0), eval_tasks.jsonl (E/10, at most 1000, held-out\n"
    "  prompts with answers), mc_tasks.jsonl (E/10, at most 300, held-out multiple-choice\n"
    "  items) and the JSONL sources sft.jsonl, sft_val.jsonl, prefs.jsonl, prefs_val.jsonl.\n";
static const char *HELP_CHAT =
    "usage: kdtrain data chat --jsonl F.jsonl --out F.h5 [--template NAME|FILE.yaml]\n"
    "                         [--max-len N] [--tokenizer SPEC] [--prompts]\n"
    "  Each line {\"messages\":[{\"role\":\"system|user|assistant\",\"content\":\"...\"},...]}\n"
    "  becomes one document of a kind \"sft\" dataset; the loss mask is 1 on assistant\n"
    "  content and end markers. Templates: bytes (default), llama3, chatml, mistral, or a\n"
    "  YAML file (keys bos, eos, system/user/assistant: {header, footer}; docs/formats.md).\n"
    "  --tokenizer SPEC: bytes (default) or a Hugging Face tokenizer directory; markers\n"
    "  such as <|eot_id|> are then single ids (refused if the tokenizer lacks one). --max-len N\n"
    "  (default 0 = no limit): the prompt loses its left side first, then the last reply\n"
    "  its right side; the summary line counts both.\n"
    "  --prompts: write prompts only (the prompt set of pseudo_labels.prompts): each\n"
    "  conversation up to the assistant header of its final reply (the reply, when\n"
    "  present, dropped), loss mask 0; --max-len cuts them from the left.\n";
static const char *HELP_PREFS =
    "usage: kdtrain data prefs --jsonl F.jsonl --out F.h5 [--template NAME|FILE.yaml]\n"
    "                          [--max-len N] [--max-prompt-len M] [--tokenizer SPEC]\n"
    "  Each line {\"prompt\": str|messages, \"chosen\": str|messages, \"rejected\": ...}\n"
    "  becomes one example of a kind \"preference\" dataset: the prompt rendered up to the\n"
    "  assistant header, chosen/rejected = assistant content + end marker. The prompt is\n"
    "  cut from the left to M tokens (default N/2), completions from the right to N - prompt.\n"
    "  Templates and --tokenizer as for data chat.\n";

static int usage_error(const char *cmd, kd_error *err, const char *what, const char *arg) {
    return kd_fail(err, KD_EINPUT, "data %s: %s%s%s (see kdtrain data %s --help)", cmd, what,
                   arg ? " " : "", arg ? arg : "", cmd);
}

static int parse_u64(const char *s, uint64_t *v) {
    char *end;
    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = x;
    return 0;
}

static int cmd_pack(int argc, char **argv, kd_error *err) {
    const char **files = kd_calloc((size_t)argc, sizeof *files);
    const char *out = NULL, *tok = KD_TOK_BYTES_NAME;
    int nf = 0, para = 0, rc = KD_OK;
    for (int i = 1; rc == KD_OK && i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP_PACK, stdout);
            free(files);
            return -1;
        } else if (!strcmp(argv[i], "--text")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) files[nf++] = argv[++i];
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc)
                rc = usage_error("pack", err, "--out needs a file name", NULL);
            else
                out = argv[++i];
        } else if (!strcmp(argv[i], "--eos-between")) {
            para = 1;
        } else if (!strcmp(argv[i], "--tokenizer")) {
            if (i + 1 >= argc)
                rc = usage_error("pack", err, "--tokenizer needs a value (bytes or a directory)",
                                 NULL);
            else
                tok = argv[++i];
        } else {
            rc = usage_error("pack", err, "unknown argument", argv[i]);
        }
    }
    if (rc == KD_OK && nf == 0) rc = usage_error("pack", err, "expected --text FILE...", NULL);
    if (rc == KD_OK && !out) rc = usage_error("pack", err, "expected --out F.h5", NULL);
    if (rc == KD_OK) rc = kd_data_pack(files, nf, out, para, tok, err);
    if (rc == KD_OK) printf("packed %d file(s) into %s\n", nf, out);
    free(files);
    return rc;
}

static int cmd_inspect(int argc, char **argv, kd_error *err) {
    const char *path = NULL;
    uint64_t first = 32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP_INSPECT, stdout);
            return -1;
        } else if (!strcmp(argv[i], "--first")) {
            if (i + 1 >= argc || parse_u64(argv[++i], &first) || first > 256)
                return usage_error("inspect", err, "--first expects an integer 0..256, found",
                                   i < argc ? argv[i] : "nothing");
        } else if (argv[i][0] == '-') {
            return usage_error("inspect", err, "unknown option", argv[i]);
        } else if (path) {
            return usage_error("inspect", err,
                               "expected one dataset file, found another:", argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) return usage_error("inspect", err, "expected a dataset file F.h5", NULL);
    return kd_data_inspect(path, (int)first, stdout, err);
}

static int cmd_synth(int argc, char **argv, kd_error *err) {
    const char *dir = NULL;
    uint64_t seed = 1234, tokens = 200000, examples = 20000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(HELP_SYNTH, stdout);
            return -1;
        } else if (!strcmp(a, "--out") && v) {
            dir = v;
            i++;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "--tokens") || !strcmp(a, "--examples")) {
            uint64_t *dst = a[2] == 's' ? &seed : a[2] == 't' ? &tokens : &examples;
            if (parse_u64(v, dst)) {
                char what[64];
                snprintf(what, sizeof what, "%s expects a non-negative integer, found", a);
                return usage_error("synth", err, what, v ? v : "nothing");
            }
            i++;
        } else {
            return usage_error("synth", err,
                               !strcmp(a, "--out") ? "--out needs a directory" : "unknown argument",
                               !strcmp(a, "--out") ? NULL : a);
        }
    }
    if (!dir) return usage_error("synth", err, "expected --out DIR", NULL);
    if (examples < 10 || examples > 100000000)
        return kd_fail(err, KD_EINPUT, "data synth: --examples %llu, expected 10..100000000",
                       (unsigned long long)examples);
    int rc = kd_data_synth(dir, seed, tokens, err);
    if (rc == KD_OK) rc = kd_data_synth_tasks(dir, seed, examples, err);
    if (rc == KD_OK)
        printf("wrote %s/pretrain.h5 and %s/pretrain_val.h5, and the chat task suite "
               "(sft, sft_val, prefs, prefs_val, prompts, eval_tasks.jsonl, mc_tasks.jsonl)\n",
               dir, dir);
    return rc;
}

// `data chat` and `data prefs` share their flags (prefs alone has --max-prompt-len).
static int cmd_chat_prefs(int argc, char **argv, int prefs, kd_error *err) {
    const char *cmd = prefs ? "prefs" : "chat", *jsonl = NULL, *out = NULL, *tmpl = "bytes";
    const char *tok = KD_TOK_BYTES_NAME;
    uint64_t max_len = 0, max_prompt = 0;
    int prompts = 0;
    for (int i = 1; i < argc; i += 2) {  // every option but --prompts takes a value
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!prefs && !strcmp(a, "--prompts")) {
            prompts = 1, i--;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(prefs ? HELP_PREFS : HELP_CHAT, stdout);
            return -1;
        }
        int is_len = !strcmp(a, "--max-len"), is_plen = prefs && !strcmp(a, "--max-prompt-len");
        if (!v && (is_len || is_plen || !strcmp(a, "--jsonl") || !strcmp(a, "--out") ||
                   !strcmp(a, "--template") || !strcmp(a, "--tokenizer")))
            return usage_error(cmd, err, a, "needs a value");
        if (!strcmp(a, "--jsonl"))
            jsonl = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--template"))
            tmpl = v;
        else if (!strcmp(a, "--tokenizer"))
            tok = v;
        else if (is_len || is_plen) {
            if (parse_u64(v, is_len ? &max_len : &max_prompt) ||
                (is_len ? max_len : max_prompt) > ((uint64_t)1 << 30))
                return usage_error(cmd, err,
                                   is_len ? "--max-len expects an integer 0..2^30, found"
                                          : "--max-prompt-len expects an integer "
                                            "0..2^30, found",
                                   v);
        } else
            return usage_error(cmd, err, "unknown argument", a);
    }
    if (!jsonl) return usage_error(cmd, err, "expected --jsonl F.jsonl", NULL);
    if (!out) return usage_error(cmd, err, "expected --out F.h5", NULL);
    kd_chat_stats st;
    int rc = prefs ? kd_prefs_convert_jsonl(jsonl, out, tmpl, tok, max_len, max_prompt, &st, err)
                   : kd_chat_convert_jsonl(jsonl, out, tmpl, tok, max_len, prompts, &st, err);
    if (rc == KD_OK)
        printf("%s: wrote %llu examples to %s (%llu tokens, %llu %s); truncated: %llu prompts "
               "from the left, %llu completions from the right\n",
               cmd, (unsigned long long)st.examples, out, (unsigned long long)st.tokens,
               (unsigned long long)st.target_tokens, prefs ? "completion tokens" : "target tokens",
               (unsigned long long)st.prompt_truncated,
               (unsigned long long)st.completion_truncated);
    return rc;
}

int kd_data_main(int argc, char **argv) {
    kd_error err = {0};
    if (argc < 2) {
        fprintf(stderr,
                "kdtrain data: expected a subcommand pack|inspect|synth|chat|prefs (see kdtrain "
                "data --help)\n");
        return KD_EINPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(HELP_DATA, stdout);
        return KD_OK;
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "pack"))
        rc = cmd_pack(argc - 1, argv + 1, &err);
    else if (!strcmp(cmd, "inspect"))
        rc = cmd_inspect(argc - 1, argv + 1, &err);
    else if (!strcmp(cmd, "synth"))
        rc = cmd_synth(argc - 1, argv + 1, &err);
    else if (!strcmp(cmd, "chat") || !strcmp(cmd, "prefs"))
        rc = cmd_chat_prefs(argc - 1, argv + 1, !strcmp(cmd, "prefs"), &err);
    else
        rc = kd_fail(&err, KD_EINPUT,
                     "data: unknown subcommand '%s', expected "
                     "pack|inspect|synth|chat|prefs",
                     cmd);
    if (rc == -1) return KD_OK; // --help was printed
    if (rc != KD_OK) {
        fprintf(stderr, "kdtrain: %s\n", err.msg);
        return rc == KD_EINPUT ? KD_EINPUT : KD_ERUNTIME;
    }
    return KD_OK;
}
