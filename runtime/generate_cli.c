// generate_cli.c: `kdtrain generate` (docs/generate.md): load a model from a checkpoint or
// a run's stage and complete prompts given as text (byte tokenizer) or as a prompts
// dataset, printing the completions or writing a `kd` dataset (through kd_pseudo_label,
// so --out is resumable and rank-parallel under mpirun). Returns the exit status.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "runtime/checkpoint.h"
#include "runtime/comm.h"
#include "runtime/generate.h"
#include "runtime/model_io.h"
#include "stages/pseudo_label.h"

#define MAX_PROMPTS 256

static const char *usage_text =
    "usage: kdtrain generate MODEL (--prompt TEXT)... | --prompts F.h5 [--out F.h5] [options]\n"
    "  MODEL is a checkpoint directory, a ckpt/ directory (newest valid checkpoint) or\n"
    "  RUN_DIR:STAGE (the stage's final checkpoint, or its newest valid one if unfinished).\n"
    "  --prompt TEXT         a text prompt (byte tokenizer, BOS prepended); repeatable\n"
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
    "  --quiet               no timing line on stderr\n"
    "exit status: 0 ok, 2 bad input, 3 runtime failure\n";

typedef struct {
    const char *model, *prompts_h5, *out;
    const char *text[MAX_PROMPTS];
    int n_text, top_k_logits, quiet;
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
    return kd_gen_params_check(&o->p, err);
}

// ----------------------------------------------------------------------------- model source

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// MODEL -> a checkpoint directory.
static int resolve_model(const char *spec, char *out, size_t n, kd_error *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/MANIFEST", spec);
    struct stat st;
    if (stat(tmp, &st) == 0) {
        snprintf(out, n, "%s", spec);
        return KD_OK;
    }
    if (is_dir(spec)) { // a ckpt/ root
        if (kd_ckpt_find_latest(spec, out, n, NULL)) return KD_OK;
        return kd_fail(err, KD_EINPUT,
                       "%s: neither a checkpoint (no MANIFEST) nor a directory holding a valid "
                       "step-* checkpoint",
                       spec);
    }
    const char *colon = strrchr(spec, ':');
    if (!colon)
        return kd_fail(err, KD_EINPUT, "%s: no such checkpoint directory (or RUN_DIR:STAGE)", spec);
    char run[4096], stages[4200];
    snprintf(run, sizeof run, "%.*s", (int)(colon - spec), spec);
    const char *stage = colon + 1;
    snprintf(stages, sizeof stages, "%s/stages", run);
    DIR *d = opendir(stages);
    if (!d)
        return kd_fail(err, KD_EINPUT, "%s: expected a run directory with stages/ in '%s'", run,
                       spec);
    char sdir[4500] = "";
    for (struct dirent *e; (e = readdir(d));) {
        const char *dash = strchr(e->d_name, '-');
        if (dash && !strcmp(dash + 1, stage))
            snprintf(sdir, sizeof sdir, "%s/%s", stages, e->d_name);
    }
    closedir(d);
    if (!sdir[0])
        return kd_fail(err, KD_EINPUT, "%s: run has no stage '%s' under %s", spec, stage, stages);
    snprintf(tmp, sizeof tmp, "%s/DONE", sdir);
    FILE *f = fopen(tmp, "r");
    char line[4200];
    if (f && fgets(line, sizeof line, f) && !strncmp(line, "checkpoint ", 11)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, n, "%s", line + 11);
        fclose(f);
        return KD_OK;
    }
    if (f) fclose(f);
    snprintf(tmp, sizeof tmp, "%s/ckpt", sdir);
    if (kd_ckpt_find_latest(tmp, out, n, NULL)) return KD_OK;
    return kd_fail(err, KD_EINPUT,
                   "%s: stage '%s' has neither finished nor a valid checkpoint in %s", spec, stage,
                   tmp);
}

// ----------------------------------------------------------------------------- printing

static void print_tokens(const int32_t *t, int n, int bytes) {
    if (bytes) {
        char *buf = kd_malloc((size_t)n + 1);
        size_t k = kd_tokenizer_bytes_decode(t, (size_t)n, buf);
        fwrite(buf, 1, k, stdout);
        free(buf);
    } else {
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", (int)t[i]);
    }
}

// Generate on this rank and print; prompts from text or the dataset.
static int generate_print(kd_model *m, const gen_opts *o, kd_error *err) {
    int V = kd_model_cfg(m)->vocab_size, bytes = V >= KD_TOK_BYTES_VOCAB, n = 0, rc = KD_OK;
    kd_dataset *ds = NULL;
    kd_gen_params p = o->p;
    kd_gen_seq *s = NULL;
    if (o->prompts_h5) {
        if ((rc = kd_dataset_open(&ds, o->prompts_h5, err))) return rc;
        const kd_dataset_info *in = kd_dataset_get_info(ds);
        const uint64_t *off = kd_dataset_offsets(ds);
        bytes = !strcmp(in->tokenizer, KD_TOK_BYTES_NAME);
        p.eos_id = in->eos_id;
        if (in->vocab_size > V)
            rc = kd_fail(err, KD_EINPUT, "%s: vocab_size %d is larger than the model's %d",
                         o->prompts_h5, in->vocab_size, V);
        n = (int)in->n_docs;
        s = kd_calloc((size_t)n + 1, sizeof *s);
        for (int i = 0; i < n && !rc; i++) {
            uint64_t len = off[i + 1] - off[i];
            int32_t *t = kd_malloc(sizeof(int32_t) * (len + 1));
            rc = kd_dataset_read_tokens(ds, off[i], len, t, NULL, err);
            if (len > 1 && p.eos_id >= 0 && t[len - 1] == p.eos_id) len--;
            s[i].prompt = t, s[i].n_prompt = (int)len, s[i].index = (uint64_t)i;
        }
        kd_dataset_close(ds);
    } else {
        n = o->n_text;
        s = kd_calloc((size_t)n, sizeof *s);
        p.eos_id = bytes ? KD_TOK_BYTES_EOS : -1;
        for (int i = 0; i < n; i++) {
            size_t len = strlen(o->text[i]);
            int32_t *t = kd_malloc(sizeof(int32_t) * (len + 1));
            t[0] = KD_TOK_BYTES_BOS;
            int nb = bytes ? 1 : 0; // BOS only with the byte vocabulary
            kd_tokenizer_bytes_encode(o->text[i], len, t + nb);
            for (size_t j = 0; j < len; j++)
                if (t[nb + j] >= V)
                    rc = kd_fail(err, KD_EINPUT,
                                 "--prompt: byte %d is outside the model's vocab (%d)", t[nb + j],
                                 V);
            s[i].prompt = t, s[i].n_prompt = (int)len + nb, s[i].index = (uint64_t)i;
        }
    }
    double t0 = kd_now();
    if (!rc) rc = kd_generate(m, s, n, &p, 0, err);
    double dt = kd_now() - t0;
    long total = 0;
    for (int i = 0; i < n && !rc; i++) {
        printf("=== %d: %d prompt + %d new tokens (%s)\n", i, s[i].n_prompt, s[i].n_gen,
               s[i].stop_eos ? "eos" : "length");
        print_tokens(s[i].tokens, s[i].n_prompt, bytes);
        if (!bytes) printf(" |");
        if (!bytes && s[i].n_gen) printf(" ");
        print_tokens(s[i].tokens + s[i].n_prompt, s[i].n_gen, bytes);
        printf("\n");
        total += s[i].n_gen;
    }
    if (!rc && !o->quiet)
        fprintf(
            stderr,
            "kdtrain generate: %ld new tokens for %d prompts in %.3f s (%.1f tokens/s, batch %d)\n",
            total, n, dt, dt > 0 ? total / dt : 0.0, p.batch < n ? p.batch : n);
    for (int i = 0; i < n; i++) {
        free((void *)s[i].prompt);
        kd_gen_seq_clear(&s[i]);
    }
    free(s);
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
    char ckpt[4200];
    kd_comm *comm = NULL;
    kd_comm_init(&comm, &argc, &argv);
    int rank = kd_comm_rank(comm);
    kd_model *m = NULL;
    rc = resolve_model(o.model, ckpt, sizeof ckpt, &err);
    rc = (int)kd_comm_max_f64(comm, (double)rc);
    if (!rc) rc = kd_model_load(comm, ckpt, kd_ops_cpu(), 0, &m, &err);
    if (!rc && o.out) {
        char work[4200];
        snprintf(work, sizeof work, "%s.parts", o.out);
        double t0 = kd_now();
        rc = kd_pseudo_label(comm, m, o.prompts_h5, o.out, &o.p, work, o.top_k_logits, &err);
        if (!rc && rank == 0 && !o.quiet)
            fprintf(stderr, "kdtrain generate: wrote %s in %.3f s\n", o.out, kd_now() - t0);
    } else if (!rc && rank == 0) {
        rc = generate_print(m, &o, &err);
    }
    if (rc && err.msg[0]) fprintf(stderr, "kdtrain generate: error: %s\n", err.msg);
    kd_model_free(m);
    fflush(stdout);
    fflush(stderr);
    rc = (int)kd_comm_max_f64(comm, (double)rc);
    kd_comm_finalize(comm);
    return rc;
}
