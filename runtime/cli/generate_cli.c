// generate_cli.c: `kdtrain generate` (docs/generate.md): load a model (model_arg.h: a
// checkpoint, a run's stage or a Hugging Face directory) and complete prompts given as
// text (--tokenizer, bytes by default) or as a prompts
// dataset, printing the completions or writing a `kd` dataset (through kd_pseudo_label,
// so --out is resumable and rank-parallel under mpirun). Returns the exit status.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cli/cli.h"
#include "runtime/cli/model_arg.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "runtime/store/checkpoint.h"
#include "runtime/base/comm.h"
#include "runtime/model/generate.h"
#include "runtime/store/model_io.h"
#include "stages/pseudo_label.h"

#define MAX_PROMPTS 256

static const char *usage_text =
    "usage: kdtrain generate MODEL (--prompt TEXT)... | --prompts F.h5 [--out F.h5] [options]\n"
    "  MODEL is a checkpoint directory, a ckpt/ directory (newest valid checkpoint),\n"
    "  RUN_DIR:STAGE (the stage's final checkpoint, or its newest valid one if unfinished)\n"
    "  or a Hugging Face directory (config.json + safetensors).\n"
    "  --prompt TEXT         a text prompt (BOS prepended; special tokens written in it are\n"
    "                        matched); repeatable\n"
    "  --tokenizer SPEC      bytes or a Hugging Face tokenizer directory (default: the one\n"
    "                        MODEL records, else bytes): encodes --prompt, decodes the\n"
    "                        output, and its stop ids end generation; none: the bytes of\n"
    "                        --prompt are the ids, the output is printed as ids, no stop;\n"
    "                        a --prompts dataset must have been made with the same tokenizer\n"
    "  --prompts F.h5        a prompts dataset (each document is a prompt)\n"
    "  --out F.h5            write prompt+completion as a kd dataset (loss_mask on generated\n"
    "                        tokens) instead of printing; resumable, rank-parallel under mpirun\n"
    "  --max-new-tokens N    tokens generated per prompt (default 64)\n"
    "  --temperature T       sampling temperature, 0 = greedy (default 0.7)\n"
    "  --top-k K             sample among the K most likely tokens (default 0 = off)\n"
    "  --top-p P             nucleus sampling mass in (0,1] (default 0.95)\n"
    "  --greedy              always take the most likely token\n"
    "  --seed S              sampling seed; prompt i uses stream gen/<i> (default 1234)\n"
    "  --batch B             prompts decoded together (default 8)\n"
    "  --top-k-logits K      with --out: also store the model's top-K log-probs per token\n"
    "  --min-new-tokens N    EOS cannot be sampled before N new tokens (default 0)\n"
    "  --ignore-eos          EOS does not stop a prompt: each runs to --max-new-tokens\n"
    "  --draft DRAFT         speculative decoding: DRAFT (same vocabulary, any layout)\n"
    "                        proposes tokens that MODEL verifies (printing only, not --out)\n"
    "  --draft-tokens K      tokens the draft proposes per round, 1..64 (default 4)\n"
    "  --quiet               no timing line on stderr\n"
    "exit status: 0 ok, 2 bad input, 3 runtime failure\n";

typedef struct {
    const char *model, *prompts_h5, *out, *tokenizer, *draft; // tokenizer NULL: not given
    const char *text[MAX_PROMPTS];
    int n_text, top_k_logits, quiet, draft_tokens;
    kd_gen_params p;
} gen_opts;

static int num_arg(int argc, char **argv, int *i, double lo, double hi, double *v, kd_error *err) {
    const char *flag = argv[*i];
    if (*i + 1 >= argc) return kd_fail(err, KD_EINPUT, "%s: missing value", flag);
    char *end = NULL;
    *v = strtod(argv[++*i], &end);
    if (!end || *end || end == argv[*i] || !(*v >= lo && *v <= hi))
        return kd_fail(err, KD_EINPUT, "%s: expected a number in [%g, %g], found '%s'", flag, lo,
                       hi, argv[*i]);
    return KD_OK;
}

static int parse(int argc, char **argv, gen_opts *o, kd_error *err) {
    memset(o, 0, sizeof *o);
    kd_gen_params_default(&o->p);
    o->draft_tokens = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v = 0;
        int rc = KD_OK;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (!strcmp(a, "--prompt")) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--prompt: missing TEXT");
            if (o->n_text >= MAX_PROMPTS)
                return kd_fail(err, KD_EINPUT, "--prompt: at most %d prompts", MAX_PROMPTS);
            o->text[o->n_text++] = argv[++i];
        } else if (!strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--tokenizer: missing SPEC");
            o->tokenizer = argv[++i];
        } else if (!strcmp(a, "--prompts") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "%s: missing file name", a);
            *(a[2] == 'p' ? &o->prompts_h5 : &o->out) = argv[++i];
        } else if (!strcmp(a, "--max-new-tokens") &&
                   !(rc = num_arg(argc, argv, &i, 1, 1 << 20, &v, err))) {
            o->p.max_new_tokens = (int)v;
        } else if (!strcmp(a, "--temperature") &&
                   !(rc = num_arg(argc, argv, &i, 0, 1e6, &v, err))) {
            o->p.temperature = (float)v;
        } else if (!strcmp(a, "--top-k") && !(rc = num_arg(argc, argv, &i, 0, 1 << 30, &v, err))) {
            o->p.top_k = (int)v;
        } else if (!strcmp(a, "--top-p") && !(rc = num_arg(argc, argv, &i, 1e-9, 1, &v, err))) {
            o->p.top_p = (float)v;
        } else if (!strcmp(a, "--seed") && !(rc = num_arg(argc, argv, &i, 0, 1.8e19, &v, err))) {
            o->p.seed = strtoull(argv[i], NULL, 10);
        } else if (!strcmp(a, "--batch") && !(rc = num_arg(argc, argv, &i, 1, 4096, &v, err))) {
            o->p.batch = (int)v;
        } else if (!strcmp(a, "--top-k-logits") &&
                   !(rc = num_arg(argc, argv, &i, 0, 1 << 16, &v, err))) {
            o->top_k_logits = (int)v;
        } else if (!strcmp(a, "--min-new-tokens") &&
                   !(rc = num_arg(argc, argv, &i, 0, 1 << 20, &v, err))) {
            o->p.min_new_tokens = (int)v;
        } else if (!strcmp(a, "--draft-tokens") &&
                   !(rc = num_arg(argc, argv, &i, 1, 64, &v, err))) {
            o->draft_tokens = (int)v;
        } else if (!strcmp(a, "--draft")) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--draft: missing DRAFT model");
            o->draft = argv[++i];
        } else if (!strcmp(a, "--ignore-eos")) {
            o->p.ignore_eos = 1;
        } else if (!strcmp(a, "--greedy")) {
            o->p.greedy = 1;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (rc) {
            return rc;
        } else if (a[0] == '-') {
            return kd_fail(err, KD_EINPUT,
                           "generate: unknown option '%s' (see kdtrain generate --help)", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return kd_fail(err, KD_EINPUT, "generate: unexpected argument '%s' (one MODEL only)",
                           a);
        }
        if (rc) return rc;
    }
    if (!o->model)
        return kd_fail(err, KD_EINPUT, "generate: missing MODEL (see kdtrain generate --help)");
    if (!o->n_text == !o->prompts_h5)
        return kd_fail(err, KD_EINPUT,
                       "generate: give either --prompt TEXT (repeatable) or --prompts F.h5");
    if (o->out && !o->prompts_h5) return kd_fail(err, KD_EINPUT, "--out: needs --prompts F.h5");
    if (o->top_k_logits && !o->out)
        return kd_fail(err, KD_EINPUT, "--top-k-logits: needs --out F.h5");
    if (o->draft && o->out)
        return kd_fail(err, KD_EINPUT, "--draft: not supported with --out (printing only)");
    return kd_gen_params_check(&o->p, err);
}

// ----------------------------------------------------------------------------- printing

// Text of ids (special tokens left out) with the tokenizer, else the ids themselves.
static int print_tokens(const kd_tokenizer *tok, const int32_t *t, int n, kd_error *err) {
    if (!tok) {
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", (int)t[i]);
        return KD_OK;
    }
    kd_strbuf b = {0};
    int rc = kd_tokenizer_decode(tok, t, (size_t)n, 1, &b, err);
    if (rc == KD_OK && b.n) fwrite(b.s, 1, b.n, stdout);
    kd_strbuf_free(&b);
    return rc;
}

// The tokenizer of the output: --tokenizer, else bytes when the model's vocabulary holds
// the byte tokenizer's (a smaller model prints ids and its text prompts are raw bytes).
static int open_tokenizer(const gen_opts *o, int V, kd_tokenizer **tok, kd_error *err) {
    *tok = NULL;
    if (!o->tokenizer && V < KD_TOK_BYTES_VOCAB) return KD_OK;
    if (o->tokenizer && !strcmp(o->tokenizer, "none")) return KD_OK; // raw ids
    int rc = kd_tokenizer_open(tok, o->tokenizer ? o->tokenizer : KD_TOK_BYTES_NAME, err);
    if (rc) return rc;
    if (kd_tokenizer_vocab_size(*tok) > V)
        rc = kd_fail(err, KD_EINPUT, "--tokenizer %s: vocab_size %d is larger than the model's %d",
                     o->tokenizer ? o->tokenizer : KD_TOK_BYTES_NAME, kd_tokenizer_vocab_size(*tok),
                     V);
    return rc;
}

// Prompts from a dataset: its stop ids end generation; a trailing stop id is dropped.
static int dataset_prompts(const gen_opts *o, int V, kd_tokenizer **tok, kd_gen_params *p,
                           kd_gen_seq **out, int *n_out, kd_error *err) {
    kd_dataset *ds = NULL;
    int rc = kd_dataset_open(&ds, o->prompts_h5, err);
    if (rc) return rc;
    const kd_dataset_info *in = kd_dataset_get_info(ds);
    const uint64_t *off = kd_dataset_offsets(ds);
    kd_gen_set_stops(p, in->stop_ids, in->n_stop);
    if (in->vocab_size > V)
        rc = kd_fail(err, KD_EINPUT, "%s: vocab_size %d is larger than the model's %d",
                     o->prompts_h5, in->vocab_size, V);
    else if (o->tokenizer && *tok && strcmp(in->fingerprint, kd_tokenizer_fingerprint(*tok)) != 0)
        rc = kd_fail(err, KD_EINPUT, "%s: made with tokenizer '%s', not the generating one %s ('%s')",
                     o->prompts_h5, in->tokenizer, o->tokenizer, kd_tokenizer_name(*tok));
    else if (!o->tokenizer && *tok && strcmp(in->tokenizer, KD_TOK_BYTES_NAME) != 0) {
        kd_tokenizer_free(*tok); // not byte text: print ids
        *tok = NULL;
    }
    int n = (int)in->n_docs;
    kd_gen_seq *s = kd_calloc((size_t)n + 1, sizeof *s);
    for (int i = 0; i < n && !rc; i++) {
        uint64_t len = off[i + 1] - off[i];
        int32_t *t = kd_malloc(sizeof(int32_t) * (len + 1));
        rc = kd_dataset_read_tokens(ds, off[i], len, t, NULL, err);
        if (len > 1 && kd_gen_is_stop(p, t[len - 1])) len--;
        s[i].prompt = t, s[i].n_prompt = (int)len, s[i].index = (uint64_t)i;
    }
    kd_dataset_close(ds);
    *out = s, *n_out = n;
    return rc;
}

// --prompt texts: [BOS] + ids with the tokenizer (its stop ids end generation), raw bytes
// and no stop without one.
static int text_prompts(const gen_opts *o, int V, const kd_tokenizer *tok, kd_gen_params *p,
                        kd_gen_seq **out, kd_error *err) {
    int rc = KD_OK, n = o->n_text;
    kd_gen_seq *s = kd_calloc((size_t)n, sizeof *s);
    int32_t stop[KD_TOK_MAX_STOP];
    kd_gen_set_stops(p, stop, tok ? kd_tokenizer_stop_ids(tok, stop) : 0);
    for (int i = 0; i < n; i++) {
        kd_ids ids = {0};
        size_t len = strlen(o->text[i]);
        if (tok && kd_tokenizer_bos(tok) >= 0) kd_ids_push(&ids, kd_tokenizer_bos(tok));
        if (tok && !rc) rc = kd_tokenizer_encode(tok, o->text[i], len, 1, &ids, err);
        for (size_t j = 0; !tok && j < len; j++)
            kd_ids_push(&ids, (int32_t)(unsigned char)o->text[i][j]);
        for (size_t j = 0; !rc && j < ids.n; j++)
            if (ids.v[j] >= V)
                rc = kd_fail(err, KD_EINPUT, "--prompt: id %d is outside the model's vocab (%d)",
                             ids.v[j], V);
        if (!rc && ids.n == 0) rc = kd_fail(err, KD_EINPUT, "--prompt %d: empty prompt", i + 1);
        s[i].prompt = ids.v, s[i].n_prompt = (int)ids.n, s[i].index = (uint64_t)i;
    }
    *out = s;
    return rc;
}

// Generate on this rank and print; prompts from text or the dataset.
static int generate_print(kd_model *m, kd_model *draft, const gen_opts *given, kd_error *err) {
    int V = kd_model_cfg(m)->vocab_size, n = given->n_text;
    kd_tokenizer *tok = NULL;
    kd_gen_params p = given->p;
    kd_gen_seq *s = NULL;
    // no --tokenizer: the tokenizer the model records (its checkpoint, or its HF directory's
    // tokenizer.json), which must still be the file it was trained with
    gen_opts eff = *given;
    const gen_opts *o = &eff;
    if (!eff.tokenizer && kd_model_tokenizer(m)[0]) eff.tokenizer = kd_model_tokenizer(m);
    int rc = open_tokenizer(o, V, &tok, err);
    if (rc && !given->tokenizer && eff.tokenizer)
        kd_error_prefix(err, "%s: the tokenizer the model records (--tokenizer SPEC picks another, e.g. "
                        "bytes): ", given->model);
    if (!rc && !given->tokenizer && tok && kd_model_tokenizer_fp(m)[0] &&
        strcmp(kd_tokenizer_fingerprint(tok), kd_model_tokenizer_fp(m)) != 0)
        rc = kd_fail(err, KD_EINPUT,
                     "%s: the model records tokenizer %s with fingerprint %.16s..., the file there "
                     "now has %.16s...: pass --tokenizer SPEC",
                     given->model, eff.tokenizer, kd_model_tokenizer_fp(m),
                     kd_tokenizer_fingerprint(tok));
    if (!rc && o->prompts_h5)
        rc = dataset_prompts(o, V, &tok, &p, &s, &n, err);
    else if (!rc)
        rc = text_prompts(o, V, tok, &p, &s, err);
    double t0 = kd_now();
    kd_spec_stats st = {0};
    if (!rc && draft)
        rc = kd_gen_speculative(m, draft, o->draft_tokens, s, n, &p, &st, err);
    else if (!rc)
        rc = kd_generate(m, s, n, &p, 0, err);
    double dt = kd_now() - t0;
    long total = 0;
    for (int i = 0; i < n && !rc; i++) {
        printf("=== %d: %d prompt + %d new tokens (%s)\n", i, s[i].n_prompt, s[i].n_gen,
               s[i].stop_eos ? "eos" : "length");
        rc = print_tokens(tok, s[i].tokens, s[i].n_prompt, err);
        if (!tok) printf(" |");
        if (!tok && s[i].n_gen) printf(" ");
        if (!rc) rc = print_tokens(tok, s[i].tokens + s[i].n_prompt, s[i].n_gen, err);
        printf("\n");
        total += s[i].n_gen;
    }
    if (!rc && !o->quiet)
        fprintf(
            stderr,
            "kdtrain generate: %ld new tokens for %d prompts in %.3f s (%.1f tokens/s, batch %d)\n",
            total, n, dt, dt > 0 ? total / dt : 0.0, p.batch < n ? p.batch : n);
    if (!rc && !o->quiet && draft)
        fprintf(stderr,
                "kdtrain generate: speculative K=%d: %ld of %ld draft tokens accepted (%.1f%%), "
                "%.2f new tokens per target pass\n",
                o->draft_tokens, st.accepted, st.proposed,
                st.proposed ? 100.0 * st.accepted / st.proposed : 0.0,
                st.rounds ? (double)(st.tokens - n) / st.rounds : 0.0);
    for (int i = 0; s && i < n; i++) {
        free((void *)s[i].prompt);
        kd_gen_seq_clear(&s[i]);
    }
    free(s);
    if (tok) kd_tokenizer_free(tok);
    return rc;
}

int kd_generate_main(int argc, char **argv) {
    kd_error err = {0};
    gen_opts o;
    int rc = parse(argc, argv, &o, &err);
    if (rc == -1) return KD_OK;
    if (rc) {
        fprintf(stderr, "kdtrain generate: error: %s\n", err.msg);
        return rc;
    }
    kd_model_source src;
    kd_comm *comm = NULL;
    kd_comm_init(&comm, &argc, &argv);
    int rank = kd_comm_rank(comm);
    kd_model *m = NULL;
    rc = kd_model_arg_load(comm, o.model, kd_ops_cpu(), 0, &m, &src, &err);
    if (!rc && o.out) {
        char work[4200];
        snprintf(work, sizeof work, "%s.parts", o.out);
        double t0 = kd_now();
        rc = kd_pseudo_label(comm, m, o.prompts_h5, o.out, &o.p, work, o.top_k_logits, &err);
        if (!rc && rank == 0 && !o.quiet)
            fprintf(stderr, "kdtrain generate: wrote %s in %.3f s\n", o.out, kd_now() - t0);
    } else if (!rc) {
        kd_model *dm = NULL; // the draft, loaded by every rank (a collective)
        kd_model_source dsrc;
        if (o.draft) rc = kd_model_arg_load(comm, o.draft, kd_ops_cpu(), 0, &dm, &dsrc, &err);
        if (!rc && rank == 0) rc = generate_print(m, dm, &o, &err);
        kd_model_free(dm);
    }
    if (rc && err.msg[0]) fprintf(stderr, "kdtrain generate: error: %s\n", err.msg);
    kd_model_free(m);
    fflush(stdout);
    fflush(stderr);
    rc = (int)kd_comm_max_f64(comm, (double)rc);
    kd_comm_finalize(comm);
    return rc;
}
