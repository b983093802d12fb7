// run.c: the run orchestration (run.h): CLI options of run/check, validation, run
// directory, backend choice, model creation and the stage sequence.
#include "runtime/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include "data/dataset.h"
#include "data/prefs.h"
#include "runtime/hf.h"
#include "runtime/checkpoint.h"
#include "runtime/log.h"
#include "runtime/model.h"
#include "runtime/model_io.h"
#include "runtime/recipe.h"
#include "runtime/signals.h"
#include "runtime/slurm_env.h"
#include "stages/stage.h"

#define MAX_SETS 64

typedef struct {
    int check_only;
    const char *recipe;
    const char *sets[MAX_SETS];
    int n_sets;
    int ranks;     // check --ranks
    int quiet;
    kd_resume_mode resume;
    const char *resume_path;  // --resume PATH: the first stage to run continues from it
    const char *stage;  // --stage NAME: run only this stage
} run_opts;

static void usage(int check) {
    if (check)
        printf("usage: kdtrain check RECIPE [--set KEY=VALUE]... [--ranks N]\n"
               "  Validate a recipe, its data files and shapes without training; print a summary.\n"
               "  --set KEY=VALUE   override a recipe key (e.g. stages.pretrain.optim.lr=1e-4)\n"
               "  --ranks N         check batch divisibility for N ranks (default: the MPI world size)\n");
    else
        printf("usage: [mpirun -np N] kdtrain run RECIPE [--set KEY=VALUE]... [--quiet]\n"
               "  Run the recipe's stages in order on N data-parallel ranks.\n"
               "  --set KEY=VALUE   override a recipe key (e.g. stages.pretrain.steps=50)\n"
               "  --resume MODE     auto (default): continue each unfinished stage from its newest valid\n"
               "                    checkpoint; never: start unfinished stages over; force: resume even\n"
               "                    if the recipe's model or data changed since the checkpoint; PATH: the\n"
               "                    first unfinished stage continues from that checkpoint directory\n"
               "  --stage NAME      run only this stage (earlier stages must have finished)\n"
               "  --quiet           no settings table or progress lines\n"
               "exit status: 0 done, 2 bad input, 3 runtime failure (last checkpoint intact),\n"
               "             75 stopped by a signal or run.max_minutes after saving (requeue)\n");
}

static int parse_opts(int argc, char **argv, run_opts *o, kd_error *err) {
    memset(o, 0, sizeof *o);
    o->check_only = strcmp(argv[0], "check") == 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(o->check_only);
            return -1;
        } else if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--set needs KEY=VALUE");
            if (o->n_sets >= MAX_SETS) return kd_fail(err, KD_EINPUT, "at most %d --set options", MAX_SETS);
            o->sets[o->n_sets++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            if (o->n_sets >= MAX_SETS) return kd_fail(err, KD_EINPUT, "at most %d --set options", MAX_SETS);
            o->sets[o->n_sets++] = a + 6;
        } else if (strcmp(a, "--ranks") == 0 && o->check_only) {
            if (i + 1 >= argc || atoi(argv[i + 1]) < 1) return kd_fail(err, KD_EINPUT, "--ranks needs a positive integer");
            o->ranks = atoi(argv[++i]);
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--resume") == 0 && !o->check_only) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "auto") == 0) o->resume = KD_RESUME_AUTO;
            else if (strcmp(v, "never") == 0) o->resume = KD_RESUME_NEVER;
            else if (strcmp(v, "force") == 0) o->resume = KD_RESUME_FORCE;
            else if (v[0] && v[0] != '-') o->resume = KD_RESUME_AUTO, o->resume_path = v;
            else return kd_fail(err, KD_EINPUT, "--resume: expected auto, never, force or a checkpoint PATH, found '%s'", v);
        } else if (strcmp(a, "--stage") == 0 && !o->check_only) {
            if (i + 1 >= argc) return kd_fail(err, KD_EINPUT, "--stage needs a stage name");
            o->stage = argv[++i];
        } else if (a[0] == '-') {
            return kd_fail(err, KD_EINPUT, "%s: unknown option '%s' (see kdtrain %s --help)", argv[0], a, argv[0]);
        } else if (!o->recipe) {
            o->recipe = a;
        } else {
            return kd_fail(err, KD_EINPUT, "%s: unexpected argument '%s' (one recipe only)", argv[0], a);
        }
    }
    if (!o->recipe) return kd_fail(err, KD_EINPUT, "%s: missing RECIPE (see kdtrain %s --help)", argv[0], argv[0]);
    return KD_OK;
}

// ----------------------------------------------------------------------------- model config

static void model_config(const kd_model_spec *ms, kd_model_config *c) {
    memset(c, 0, sizeof *c);
    const kd_arch *a = &ms->arch;
    c->vocab_size = a->vocab_size, c->d_model = a->d_model, c->n_layers = a->n_layers;
    c->n_heads = a->n_heads, c->n_kv_heads = a->n_kv_heads, c->head_dim = a->head_dim;
    c->ffn_dim = a->ffn_dim, c->rope_theta = a->rope_theta, c->norm_eps = a->norm_eps;
    c->tie_embeddings = a->tie_embeddings;
    c->d_state = ms->hybrid.d_state > 0 ? ms->hybrid.d_state : a->head_dim;
    c->chunk_size = ms->hybrid.chunk_size, c->conv_width = ms->hybrid.conv_width;
    // a random start is a pure Transformer: model.hybrid is what `init` stages produce
}

// ----------------------------------------------------------------------------- validation

typedef int (*stage_fn)(kd_stage_ctx *, kd_error *);

static stage_fn stage_impl(kd_stage_kind k) {
    switch (k) {
    case KD_STAGE_PRETRAIN: return kd_stage_pretrain;
    case KD_STAGE_SFT: return kd_stage_sft;
    case KD_STAGE_DPO: return kd_stage_dpo;
    case KD_STAGE_KD: return kd_stage_kd;
    case KD_STAGE_EVAL: return kd_stage_eval;
    case KD_STAGE_GENERATE: return kd_stage_generate;
    case KD_STAGE_INIT: return kd_stage_init;
    case KD_STAGE_ALIGN: return kd_stage_align;
    default: return NULL;
    }
}

// windows: the stage reads windows of seq_len+1 tokens of the token stream (pretrain).
static int check_prefs(const char *path, const char *what, const kd_model_config *mc, uint64_t *count,
                       kd_error *err) {
    kd_prefs *p = NULL;
    int rc = kd_prefs_open(&p, path, err);
    if (rc) {
        kd_error_prefix(err, "%s: ", what);
        return rc;
    }
    if (kd_prefs_get_info(p)->vocab_size > mc->vocab_size)
        rc = kd_fail(err, KD_EINPUT, "%s: %s: dataset vocab_size %d is larger than the model's vocab_size %d", what,
                     path, kd_prefs_get_info(p)->vocab_size, mc->vocab_size);
    *count = kd_prefs_count(p);
    kd_prefs_close(p);
    return rc;
}

static int check_dataset(const char *path, const char *what, const kd_model_config *mc, int seq_len, int windows,
                         uint64_t *n_tokens, kd_error *err) {
    kd_dataset *ds = NULL;
    int rc = kd_dataset_open(&ds, path, err);
    if (rc) {
        kd_error_prefix(err, "%s: ", what);
        return rc;
    }
    const kd_dataset_info *info = kd_dataset_get_info(ds);
    if (info->vocab_size > mc->vocab_size)
        rc = kd_fail(err, KD_EINPUT, "%s: %s: dataset vocab_size %d is larger than the model's vocab_size %d",
                     what, path, info->vocab_size, mc->vocab_size);
    else if (windows && kd_dataset_n_windows(ds, seq_len) == 0)
        rc = kd_fail(err, KD_EINPUT, "%s: %s: seq_len %d is larger than the data (%llu tokens)", what, path,
                     seq_len, (unsigned long long)info->n_tokens);
    if (n_tokens) *n_tokens = info->n_tokens;
    kd_dataset_close(ds);
    return rc;
}

// Physical memory of this machine (the budget of one rank when checking sizes).
static double mem_limit_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (double)pages * (double)size : 64.0 * (1ull << 30);
}

// The teacher must be loadable and share the student's vocabulary. A teacher taken from a
// stage of this recipe has the recipe's vocabulary by construction; a checkpoint or HF
// directory is read for its config only (nothing is loaded).
static int check_teacher(const kd_recipe *r, const kd_model_config *mc, kd_error *err) {
    if (!r->has_teacher) return KD_OK;
    const kd_from *f = &r->teacher.from;
    kd_model_config tc;
    int rc = KD_OK;
    if (f->kind == KD_FROM_RANDOM)
        return kd_fail(err, KD_EINPUT, "%s: teacher.from: {random: true} is not a teacher: name a stage, "
                       "checkpoint or hf directory", r->path);
    if (f->kind == KD_FROM_CHECKPOINT) rc = kd_model_config_from_ckpt(f->ref, &tc, err);
    else if (f->kind == KD_FROM_HF) rc = kd_hf_config(f->ref, &tc, err);
    else return KD_OK;
    if (rc) {
        kd_error_prefix(err, "%s: teacher.from: ", r->path);
        return rc;
    }
    if (tc.vocab_size != mc->vocab_size)
        return kd_fail(err, KD_EINPUT, "%s: teacher.from: %s has vocab_size %d, the student %d: teacher and student "
                       "must share the tokenizer", r->path, f->ref, tc.vocab_size, mc->vocab_size);
    return KD_OK;
}

// Everything that can be checked before writing anything. Prints the summary if verbose.
static int validate(const kd_recipe *r, const kd_model_config *mc, int world, int verbose, kd_error *err) {
    int rc = kd_model_config_check(mc, err);
    if (!rc) rc = check_teacher(r, mc, err);
    if (rc) return rc;
    // parameters, gradients and this rank's AdamW moments: 4 bytes each, 2 + 2/world floats
    // per parameter (plus the reduced-gradient shard)
    double pbytes = (double)kd_model_param_count(mc) * 4.0 * (2.0 + 3.0 / world);
    double limit = mem_limit_bytes();
    if (pbytes > limit)
        return kd_fail(err, KD_EINPUT, "%s: model: %zu parameters need %.1f GiB per rank for weights, gradients and "
                       "optimizer state, more than this machine's %.1f GiB: make the model smaller", r->path,
                       kd_model_param_count(mc), pbytes / (1ull << 30), limit / (1ull << 30));
    if (verbose) {
        kd_log_table_begin("recipe");
        kd_log_kv("recipe", "%s", r->path);
        kd_log_kv("run", "%s -> %s", r->run.name, r->run.out_dir);
        kd_log_kv("ranks", "%d", world);
    }
    for (int i = 0; i < r->n_stages; i++) {
        const kd_stage_spec *s = &r->stages[i];
        char what[160];
        snprintf(what, sizeof what, "stages.%s.data", s->name);
        if (!stage_impl(s->kind))
            return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.kind: '%s' is not available in this build yet", r->path,
                           s->line, s->name, kd_stage_kind_name(s->kind));
        if (s->kind == KD_STAGE_GENERATE) {  // no training: only the prompts must be readable
            snprintf(what, sizeof what, "stages.%s.prompts", s->name);
            if ((rc = check_dataset(s->generate.prompts, what, mc, 1, 0, NULL, err))) return rc;
            continue;
        }
        if (s->kind == KD_STAGE_KD && s->kd.pseudo_labels.generate &&
            s->kd.pseudo_labels.top_k_logits > mc->vocab_size)
            return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.pseudo_labels.top_k_logits: expected at most "
                           "vocab_size (%d), found %d", r->path, s->line, s->name, mc->vocab_size,
                           s->kd.pseudo_labels.top_k_logits);
        if (s->kind == KD_STAGE_INIT) {  // no data, no batches: converts the model
            if (verbose) {
                char key[96];
                snprintf(key, sizeof key, "stage %d: %s", i, s->name);
                kd_log_kv(key, "init (attention -> Mamba-2)");
            }
            continue;
        }
        if (s->batch.global % (s->batch.micro * world) != 0)
            return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.batch: global (%d) must be divisible by micro (%d) x ranks (%d)",
                           r->path, s->line, s->name, s->batch.global, s->batch.micro, world);
        double act = kd_model_activation_bytes(mc, s->batch.micro, s->batch.seq_len, 1);
        if (act + pbytes > limit)
            return kd_fail(err, KD_EINPUT, "stages.%s.batch: micro %d x seq_len %d needs %.1f GiB of activations on top "
                           "of %.1f GiB of model state, more than this machine's %.1f GiB: lower batch.micro or "
                           "batch.seq_len", s->name, s->batch.micro, s->batch.seq_len, act / (1ull << 30),
                           pbytes / (1ull << 30), limit / (1ull << 30));
        uint64_t ntok = 0, neval = 0;
        // which files the stage reads: its data (a pseudo-label stage reads prompts first
        // and writes its data), eval_data; the recipe checked which are required
        const char *data = s->data;
        if (s->kind == KD_STAGE_KD && s->kd.pseudo_labels.generate) {
            data = s->kd.pseudo_labels.prompts;
            snprintf(what, sizeof what, "stages.%s.pseudo_labels.prompts", s->name);
        } else if (s->kind == KD_STAGE_GENERATE) {
            data = s->generate.prompts;
            snprintf(what, sizeof what, "stages.%s.prompts", s->name);
        }
        int win = s->kind == KD_STAGE_PRETRAIN, prefs = s->kind == KD_STAGE_DPO;
        // pseudo-labels that an earlier stage of this recipe writes are checked once they exist
        int produced = 0;
        for (int j = 0; j < i && data[0]; j++)
            produced |= r->stages[j].kind == KD_STAGE_KD && r->stages[j].kd.pseudo_labels.generate &&
                        strcmp(r->stages[j].kd.pseudo_labels.out, data) == 0 && access(data, R_OK) != 0;
        if (data[0] && !produced)
            rc = prefs ? check_prefs(data, what, mc, &ntok, err)
                       : check_dataset(data, what, mc, s->batch.seq_len, win, &ntok, err);
        if (!rc && s->eval_data[0]) {
            snprintf(what, sizeof what, "stages.%s.eval_data", s->name);
            rc = prefs ? check_prefs(s->eval_data, what, mc, &neval, err)
                       : check_dataset(s->eval_data, what, mc, s->batch.seq_len, win, &neval, err);
        }
        if (rc) return rc;
        if (verbose) {
            char key[96];
            snprintf(key, sizeof key, "stage %d: %s", i, s->name);
            kd_log_kv(key, "%s, %d steps x %d tokens = %.3g tokens (data %llu tokens)", kd_stage_kind_name(s->kind),
                      s->steps, s->batch.global * s->batch.seq_len,
                      (double)s->steps * s->batch.global * s->batch.seq_len, (unsigned long long)ntok);
        }
    }
    if (verbose) {
        kd_log_kv("model", "%d layers (%d Mamba-2), d_model %d, heads %d/%d x %d, ffn %d, vocab %d", mc->n_layers,
                  kd_model_n_ssm(mc), mc->d_model, mc->n_heads, mc->n_kv_heads, mc->head_dim, mc->ffn_dim,
                  mc->vocab_size);
        kd_log_table_end();
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- run

static int mkdir_p(const char *path, kd_error *err) {
    char tmp[KD_PATH_MAX * 2];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return kd_fail(err, KD_ERUNTIME, "%s: cannot create directory: %s", tmp, strerror(errno));
    return KD_OK;
}

static const kd_ops *pick_backend(const char *want, int rank) {
    char why[256] = "";
    if (strcmp(want, "cpu") != 0) {
        const kd_ops *cuda = kd_ops_cuda(why, sizeof why);
        int missing = cuda ? kd_ops_missing(cuda) : 0;
        if (cuda && missing == 0) return cuda;
        if (cuda) snprintf(why, sizeof why, "the CUDA backend does not implement %d ops yet (Mamba-2, decoding)", missing);
        if (rank == 0 && strcmp(want, "cuda") == 0) kd_log_warn("backend cuda unavailable (%s): using cpu", why);
        else if (rank == 0) kd_log_info("backend auto: %s; using cpu", why);
    }
    return kd_ops_cpu();
}

static int agree(kd_comm *comm, int rc, kd_error *err) {
    // Every rank takes the same branch: the worst status wins.
    double worst = kd_comm_max_f64(comm, (double)rc);
    if ((int)worst != KD_OK && rc == KD_OK) kd_fail(err, (int)worst, "another rank failed (see its message)");
    return (int)worst;
}

// DONE marker: "checkpoint PATH\nstep N\neval_loss X\n", written atomically by rank 0.
static int write_done(const char *dir, const char *ckpt, int64_t step, double eval_loss, kd_error *err) {
    char path[KD_PATH_MAX * 2 + 16], text[KD_PATH_MAX * 2 + 128];
    snprintf(path, sizeof path, "%s/DONE", dir);
    int n = snprintf(text, sizeof text, "checkpoint %s\nstep %lld\neval_loss %.9g\n", ckpt, (long long)step, eval_loss);
    return kd_write_file_atomic(path, text, (size_t)n, err);
}

// 1 and the final checkpoint path if the stage finished, else 0.
static int read_done(const char *dir, char *ckpt, size_t n) {
    char path[KD_PATH_MAX * 2 + 16], line[KD_PATH_MAX * 2 + 32];
    snprintf(path, sizeof path, "%s/DONE", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = 0;
    if (fgets(line, sizeof line, f) && strncmp(line, "checkpoint ", 11) == 0) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(ckpt, n, "%s", line + 11);
        ok = 1;
    }
    fclose(f);
    return ok;
}

typedef struct {
    const kd_recipe *r;
    const kd_model_config *mc;
    kd_comm *comm;
    const kd_ops *ops;
    const run_opts *o;
    kd_model *teacher;                                // loaded for the stages that need it
    char done_ckpt[KD_MAX_STAGES][KD_PATH_MAX * 2];  // final checkpoint of finished stages
} run_state;

static int load_teacher(run_state *st, int i, kd_model **teacher, kd_error *err);

// On-demand teacher for stages (collective): loads it once, keeps it until dropped.
static int get_teacher(void *run, kd_model **out, kd_error *err) {
    run_state *st = run;
    *out = NULL;
    if (!st->r->has_teacher) return kd_fail(err, KD_EINPUT, "%s: this stage needs a `teacher:` section", st->r->path);
    int rc = load_teacher(st, -1, &st->teacher, err);
    double worst = kd_comm_max_f64(st->comm, (double)rc);
    if (worst != 0) return rc ? rc : kd_fail(err, KD_ERUNTIME, "another rank could not load the teacher");
    *out = st->teacher;
    return KD_OK;
}

static const char *stage_output(void *run, const char *name) {
    run_state *st = run;
    int j = kd_recipe_stage_index(st->r, name);
    return j < 0 ? "" : st->done_ckpt[j];
}

static void drop_teacher(void *run) {
    run_state *st = run;
    kd_model_free(st->teacher);
    st->teacher = NULL;
}

// The model stage i starts from. *cur (the previous stage's model, or NULL) is reused when
// the source is the previous stage; otherwise a model is loaded or created.
static int stage_input(run_state *st, int i, kd_model **cur, kd_error *err) {
    const kd_recipe *r = st->r;
    kd_from src = kd_recipe_stage_source(r, i);
    if (src.kind == KD_FROM_STAGE) {
        int j = kd_recipe_stage_index(r, src.ref);
        if (j == i - 1 && *cur) return KD_OK;
        if (j < 0 || !st->done_ckpt[j][0])
            return kd_fail(err, KD_EINPUT, "stage '%s' starts from stage '%s', which has not finished (run it first)",
                           r->stages[i].name, src.ref);
        kd_model_free(*cur);
        *cur = NULL;
        return kd_model_load(st->comm, st->done_ckpt[j], st->ops, 1, cur, err);
    }
    kd_model_free(*cur);
    *cur = NULL;
    if (src.kind == KD_FROM_CHECKPOINT) return kd_model_load(st->comm, src.ref, st->ops, 1, cur, err);
    if (src.kind == KD_FROM_HF) return kd_hf_load(src.ref, st->ops, 1, cur, err);
    int rc = kd_model_create(cur, st->mc, st->ops, 1, err);
    if (!rc) kd_model_init_random(*cur, r->run.seed, r->model.arch.init_std);
    return rc;
}

static int load_teacher(run_state *st, int i, kd_model **teacher, kd_error *err) {
    const kd_recipe *r = st->r;
    if (*teacher || !r->has_teacher) return KD_OK;
    kd_stage_kind k = i < 0 ? KD_STAGE_KD : r->stages[i].kind;  // i < 0: on demand (kd stages)
    if (k != KD_STAGE_KD && k != KD_STAGE_ALIGN && k != KD_STAGE_INIT) return KD_OK;
    if (i >= 0 && k == KD_STAGE_KD) return KD_OK;  // kd loads it only when it needs it
    const kd_from *f = &r->teacher.from;
    if (f->kind == KD_FROM_STAGE) {
        int j = kd_recipe_stage_index(r, f->ref);
        if (j < 0 || !st->done_ckpt[j][0])
            return kd_fail(err, KD_EINPUT, "teacher: stage '%s' has not finished", f->ref);
        return kd_model_load(st->comm, st->done_ckpt[j], st->ops, 0, teacher, err);
    }
    if (f->kind == KD_FROM_CHECKPOINT) return kd_model_load(st->comm, f->ref, st->ops, 0, teacher, err);
    if (f->kind == KD_FROM_HF) return kd_hf_load(f->ref, st->ops, 0, teacher, err);
    return kd_fail(err, KD_EINPUT, "teacher.from: {random: true} is not a teacher: name a stage, checkpoint or hf directory");
}

// 1 if the file at path holds exactly text.
static int same_file_text(const char *path, const char *text) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = strlen(text), i = 0;
    int c, same = 1;
    while (same && (c = fgetc(f)) != EOF) same = i < n && (char)c == text[i++];
    fclose(f);
    return same && i == n;
}

// A changed recipe whose model no longer matches an unfinished stage's newest valid
// checkpoint would be refused by that stage's resume (trainer.c) after the run dir had
// already been rewritten; refuse it here, before anything in the run dir changes.
static int check_resumable(const kd_recipe *r, const run_opts *o, kd_error *err) {
    if (o->resume != KD_RESUME_AUTO) return KD_OK;
    for (int i = 0; i < r->n_stages; i++) {
        char dir[KD_PATH_MAX * 2], root[KD_PATH_MAX * 2 + 8], ck[KD_PATH_MAX * 2 + 64],
            done[KD_PATH_MAX * 2];
        kd_recipe_stage_dir(r, i, dir, sizeof dir);
        if (read_done(dir, done, sizeof done)) continue;
        snprintf(root, sizeof root, "%s/ckpt", dir);
        kd_train_state ts;
        if (!kd_ckpt_find_latest(root, ck, sizeof ck, NULL) || kd_ckpt_read_state(ck, &ts, NULL))
            continue;
        char want[32];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)kd_recipe_model_hash(r, i));
        if (strcmp(ts.model_hash, want) != 0)
            return kd_fail(
                err, KD_EINPUT,
                "%s: written by a recipe whose model or data differ from this one (stage '%s', "
                "model hash %s, now %s); nothing was changed in %s; rerun with --resume force to "
                "continue from it anyway, or --resume never to start the stage over",
                ck, r->stages[i].name, ts.model_hash, want, r->run.out_dir);
    }
    return KD_OK;
}

static int run_stages(const kd_recipe *r, const kd_model_config *mc, kd_comm *comm, const run_opts *o,
                      kd_error *err) {
    int rank = kd_comm_rank(comm);
    int rc = KD_OK;
    double deadline = r->run.max_minutes > 0 ? kd_now() + 60.0 * r->run.max_minutes : 0;
    kd_signals_install();
    kd_comm_start_watchdog(comm, r->run.collective_timeout_s);
    char path[KD_PATH_MAX * 2];
    if (rank == 0) {
        rc = mkdir_p(r->run.out_dir, err);
        snprintf(path, sizeof path, "%s/recipe.resolved.yaml", r->run.out_dir);
        if (!rc && !same_file_text(path, r->resolved_yaml)) {
            rc = check_resumable(r, o, err); // before the run dir's recipe is replaced
            if (!rc) rc = kd_recipe_write_resolved(r, path, err);
        }
    }
    if ((rc = agree(comm, rc, err))) return rc;
    run_state *st = kd_calloc(1, sizeof *st);
    st->r = r, st->mc = mc, st->comm = comm, st->o = o;
    st->ops = pick_backend(r->run.backend, rank);
    kd_model *model = NULL;
    int only = o->stage ? kd_recipe_stage_index(r, o->stage) : -1;
    int used_resume_path = 0;
    if (o->stage && only < 0) rc = kd_fail(err, KD_EINPUT, "--stage %s: no stage of that name in %s", o->stage, r->path);
    for (int i = 0; i < r->n_stages && rc == KD_OK; i++) {
        const kd_stage_spec *s = &r->stages[i];
        char dir[KD_PATH_MAX * 2];
        kd_recipe_stage_dir(r, i, dir, sizeof dir);
        if (read_done(dir, st->done_ckpt[i], sizeof st->done_ckpt[i])) {
            if (rank == 0 && !o->quiet && (only < 0 || only == i))
                kd_log_info("stage %d/%d: %s already finished (%s)", i + 1, r->n_stages, s->name, st->done_ckpt[i]);
            kd_model_free(model);
            model = NULL;
            continue;
        }
        if (only >= 0 && i != only) {
            if (i < only) {
                rc = kd_fail(err, KD_EINPUT, "--stage %s: earlier stage '%s' has not finished", o->stage, s->name);
            }
            continue;
        }
        if (rank == 0) rc = mkdir_p(dir, err);
        if ((rc = agree(comm, rc, err))) break;
        if (!rc) rc = stage_input(st, i, &model, err);
        if (!rc) rc = load_teacher(st, i, &st->teacher, err);
        if ((rc = agree(comm, rc, err))) break;
        kd_progress pr = {0};
        kd_stage_ctx ctx = {.recipe = r, .stage_index = i, .spec = s, .comm = comm, .ops = st->ops,
                            .model = model, .teacher = st->teacher, .stage_dir = dir, .progress = &pr,
                            .run = st, .get_teacher = get_teacher, .drop_teacher = drop_teacher,
                            .stage_output = stage_output,
                            .quiet = o->quiet, .resume = o->resume, .deadline = deadline,
                            .resume_path = used_resume_path ? NULL : o->resume_path};
        used_resume_path = 1;
        if (rank == 0 && !o->quiet) kd_log_info("stage %d/%d: %s (%s)", i + 1, r->n_stages, s->name, kd_stage_kind_name(s->kind));
        rc = stage_impl(s->kind)(&ctx, err);
        if (ctx.model != model) {  // the stage built a new model (init): it replaces the input
            kd_model_free(model);
            model = ctx.model;
        }
        rc = agree(comm, rc, err);
        if (rc) break;
        snprintf(st->done_ckpt[i], sizeof st->done_ckpt[i], "%s", ctx.final_ckpt);
        if (rank == 0) {
            if (!isnan(ctx.eval_loss) && !o->quiet) kd_log_info("stage %s: held-out loss %.6f", s->name, ctx.eval_loss);
            rc = write_done(dir, ctx.final_ckpt, pr.step, ctx.eval_loss, err);
        }
        rc = agree(comm, rc, err);
    }
    kd_model_free(model);
    kd_model_free(st->teacher);
    free(st);
    return rc;
}

int kd_run_main(int argc, char **argv, kd_comm *comm) {
    kd_error err = {0};
    run_opts o;
    int rank = kd_comm_rank(comm);
    int rc = parse_opts(argc, argv, &o, &err);
    if (rc == -1) return KD_OK;
    // inside a SLURM step: log the job and refuse "N copies of rank 0" launches
    if (!rc) rc = kd_slurm_check(kd_comm_size(comm), &err);
    if (!rc && rank == 0 && !o.quiet) kd_slurm_log();
    kd_recipe *r = kd_calloc(1, sizeof *r);  // large (hundreds of KiB): not on the stack
    if (!rc) rc = kd_recipe_load(r, o.recipe, o.sets, o.n_sets, &err);
    kd_model_config mc;
    if (!rc) {
        // the starting model's shape: the recipe's arch, or what the source directory says
        if (r->model.from.kind == KD_FROM_HF) rc = kd_hf_config(r->model.from.ref, &mc, &err);
        else if (r->model.from.kind == KD_FROM_CHECKPOINT) rc = kd_model_config_from_ckpt(r->model.from.ref, &mc, &err);
        else model_config(&r->model, &mc);
        if (rc) kd_error_prefix(&err, "%s: model.from: ", r->path);
    }
    if (!rc) {
        int world = o.check_only && o.ranks > 0 ? o.ranks : kd_comm_size(comm);
        rc = validate(r, &mc, world, rank == 0 && (o.check_only || !o.quiet), &err);
    }
    rc = agree(comm, rc, &err);
    if (!rc && o.check_only) {
        if (rank == 0) printf("kdtrain: %s: OK\n", o.recipe);
    } else if (!rc) {
        rc = run_stages(r, &mc, comm, &o, &err);
    }
    if (rc && rank == 0) fprintf(stderr, "kdtrain: error: %s\n", err.msg);
    kd_recipe_free(r);
    free(r);
    return rc;
}
