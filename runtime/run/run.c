// run.c: running a recipe (run.h): validation of the recipe and its data against the
// model, the run directory, backend choice, model and teacher loading, and the stage
// sequence, each stage dispatched through the stage kind table (stages/kind.h).
#include "runtime/run/run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include "data/dataset.h"
#include "data/prefs.h"
#include "data/vocab.h"
#include "runtime/base/fs.h"
#include "runtime/store/hf.h"
#include "runtime/store/checkpoint.h"
#include "runtime/base/log.h"
#include "runtime/model/model.h"
#include "runtime/store/model_io.h"
#include "runtime/store/run_dir.h"
#include "runtime/config/recipe.h"
#include "runtime/base/signals.h"
#include "runtime/base/attempt.h"
#include "runtime/run/run_read.h"
#include "runtime/run/slurm_env.h"
#include "stages/kind.h"

// ----------------------------------------------------------------------------- model config

static void model_config(const kd_model_spec *ms, kd_model_config *c) {
    memset(c, 0, sizeof *c);
    const kd_arch *a = &ms->arch;
    c->vocab_size = a->vocab_size, c->d_model = a->d_model, c->n_layers = a->n_layers;
    c->n_heads = a->n_heads, c->n_kv_heads = a->n_kv_heads, c->head_dim = a->head_dim;
    c->ffn_dim = a->ffn_dim, c->rope_theta = a->rope_theta, c->norm_eps = a->norm_eps;
    c->tie_embeddings = a->tie_embeddings;
    c->rope = (kd_rope_scaling){.type = (kd_rope_type)a->rope_type, .factor = a->rope_factor,
                                .low_freq_factor = a->rope_low_freq_factor,
                                .high_freq_factor = a->rope_high_freq_factor,
                                .original_max_pos = a->rope_original_max_pos};
    c->max_pos = a->max_position_embeddings;
    c->d_state = ms->hybrid.d_state > 0 ? ms->hybrid.d_state : a->head_dim;
    c->chunk_size = ms->hybrid.chunk_size, c->conv_width = ms->hybrid.conv_width;
    // a random start is a pure Transformer: model.hybrid is what `init` stages produce
}

// ----------------------------------------------------------------------------- validation

// The tokenizers the recipe's models use, opened once by validate().
typedef struct {
    kd_tokenizer *model, *teacher; // teacher NULL without a teacher
    char model_spec[KD_PATH_MAX], teacher_spec[KD_PATH_MAX];
} run_vocab;

// Data must be tokenized by the model's tokenizer: equal fingerprints. A file that records
// none (made by another tool under a name other than "bytes") cannot be trusted either.
static int check_data_tokenizer(const char *what, const char *path, const char *name, const char *fp,
                                const run_vocab *rv, kd_error *err) {
    const char *mfp = kd_tokenizer_fingerprint(rv->model);
    if (fp[0] && strcmp(fp, mfp) == 0) return KD_OK;
    char d[160], m[160];
    kd_vocab_describe(name, fp, d, sizeof d);
    kd_vocab_describe(kd_tokenizer_name(rv->model), mfp, m, sizeof m);
    return kd_fail(err, KD_EINPUT, "%s: %s was tokenized by %s, the model uses tokenizer %s (model.tokenizer: %s): "
                   "re-make the data with --tokenizer %s or set model.tokenizer", what, path, d, m, rv->model_spec,
                   rv->model_spec);
}

// windows: the stage reads windows of seq_len+1 tokens of the token stream (pretrain).
static int check_prefs(const char *path, const char *what, const kd_model_config *mc, const run_vocab *rv,
                       uint64_t *count, kd_error *err) {
    kd_prefs *p = NULL;
    int rc = kd_prefs_open(&p, path, err);
    if (rc) {
        kd_error_prefix(err, "%s: ", what);
        return rc;
    }
    const kd_prefs_info *in = kd_prefs_get_info(p);
    if (in->vocab_size > mc->vocab_size)
        rc = kd_fail(err, KD_EINPUT, "%s: %s: dataset vocab_size %d is larger than the model's vocab_size %d", what,
                     path, in->vocab_size, mc->vocab_size);
    else
        rc = check_data_tokenizer(what, path, in->tokenizer, in->fingerprint, rv, err);
    *count = kd_prefs_count(p);
    kd_prefs_close(p);
    return rc;
}

static int check_dataset(const char *path, const char *what, const kd_model_config *mc, const run_vocab *rv,
                         int seq_len, int windows, uint64_t *n_tokens, kd_error *err) {
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
    else
        rc = check_data_tokenizer(what, path, info->tokenizer, info->fingerprint, rv, err);
    if (n_tokens) *n_tokens = info->n_tokens;
    kd_dataset_close(ds);
    return rc;
}

// Physical memory of this machine (the budget of one rank when checking sizes).
// Memory per rank that a recipe must fit in: --mem-gib when given (`check` for another
// machine, e.g. a GPU's), else this machine's physical memory.
static double mem_limit_bytes(const kd_run_opts *o) {
    if (o->mem_gib > 0) return o->mem_gib * (double)(1ull << 30);
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

// A dataset a stage reads, in the stage kind's format (windows of seq_len+1 tokens for
// KD_INPUT_WINDOWS); its token count in *n.
static int check_input(kd_input_format format, const char *path, const char *what,
                       const kd_model_config *mc, const run_vocab *rv, int seq_len, uint64_t *n, kd_error *err) {
    if (format == KD_INPUT_PREFS) return check_prefs(path, what, mc, rv, n, err);
    return check_dataset(path, what, mc, rv, seq_len, format == KD_INPUT_WINDOWS, n, err);
}

// An eval stage's preference task files (*.h5) hold ids too.
static int check_eval_tasks(const kd_stage_spec *s, const kd_model_config *mc, const run_vocab *rv,
                            kd_error *err) {
    int rc = KD_OK;
    for (int k = 0; !rc && s->kind == KD_STAGE_EVAL && k < s->eval.n_tasks; k++) {
        size_t n = strlen(s->eval.tasks[k]);
        if (n < 3 || strcmp(s->eval.tasks[k] + n - 3, ".h5") != 0) continue;
        char what[160];
        uint64_t count;
        snprintf(what, sizeof what, "stages.%s.tasks[%d]", s->name, k);
        rc = check_prefs(s->eval.tasks[k], what, mc, rv, &count, err);
    }
    return rc;
}

// 1 if an earlier stage than i writes `path` (pseudo-labels) and it does not exist yet: it
// is checked by the stage that reads it, once it exists.
static int produced_earlier(const kd_recipe *r, int i, const char *path) {
    int produced = 0;
    for (int j = 0; j < i; j++) {
        const kd_kind_row *row = kd_kind_get(r->stages[j].kind);
        const char *out = row && row->output ? row->output(&r->stages[j]) : NULL;
        produced |= out && strcmp(out, path) == 0 && access(path, R_OK) != 0;
    }
    return produced;
}

// Stage i: what its kind checks against the model, its batch shape and memory (pbytes of
// model state, limit per rank), and the files it reads. One summary line if verbose.
static int validate_stage(const kd_recipe *r, int i, const kd_model_config *mc, const run_vocab *rv,
                          int world, double pbytes, double limit, int verbose, kd_error *err) {
    const kd_stage_spec *s = &r->stages[i];
    const kd_kind_row *row = kd_kind_get(s->kind);
    if (!row)
        return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.kind: '%s' is not available in this build yet", r->path,
                       s->line, s->name, kd_stage_kind_name(s->kind));
    int rc = row->preflight ? row->preflight(r, i, mc, err) : KD_OK;
    if (rc) return rc;
    int batches = !(row->flags & KD_KIND_NO_BATCH);
    if (batches && mc->rope.type == KD_ROPE_DYNAMIC && s->batch.seq_len > mc->max_pos)
        return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.batch.seq_len: %d is longer than the model's "
                       "max_position_embeddings (%d), beyond which dynamic RoPE is not plain RoPE",
                       r->path, s->line, s->name, s->batch.seq_len, mc->max_pos);
    if (batches && s->batch.global % (s->batch.micro * world) != 0)
        return kd_fail(err, KD_EINPUT, "%s:%d: stages.%s.batch: global (%d) must be divisible by micro (%d) x ranks (%d)",
                       r->path, s->line, s->name, s->batch.global, s->batch.micro, world);
    double act = batches ? kd_model_activation_bytes(mc, s->batch.micro, s->batch.seq_len, 1) : 0;
    if (act + pbytes > limit)
        return kd_fail(err, KD_EINPUT, "stages.%s.batch: micro %d x seq_len %d needs %.1f GiB of activations on top "
                       "of %.1f GiB of model state, more than the %.1f GiB per rank: lower batch.micro or "
                       "batch.seq_len (check --mem-gib G checks for another machine)", s->name, s->batch.micro, s->batch.seq_len, act / (1ull << 30),
                       pbytes / (1ull << 30), limit / (1ull << 30));
    // the files the stage reads: its input (data, or what its kind reads instead) and
    // eval_data; the recipe load checked which are required
    const char *key = "data", *data = row->format == KD_INPUT_NONE ? "" : kd_kind_input(s, &key);
    char what[160];
    uint64_t ntok = 0, neval = 0;
    snprintf(what, sizeof what, "stages.%s.%s", s->name, key);
    if (data[0] && !produced_earlier(r, i, data))
        rc = check_input(row->format, data, what, mc, rv, s->batch.seq_len, &ntok, err);
    if (!rc && s->eval_data[0]) {
        snprintf(what, sizeof what, "stages.%s.eval_data", s->name);
        rc = check_input(row->format, s->eval_data, what, mc, rv, s->batch.seq_len, &neval, err);
    }
    if (!rc) rc = check_eval_tasks(s, mc, rv, err);
    if (rc || !verbose || (!batches && !row->summary)) return rc;
    char line[96];
    snprintf(line, sizeof line, "stage %d: %s", i, s->name);
    if (!batches)
        kd_log_kv(line, "%s", row->summary);
    else if (!(row->flags & KD_KIND_DATA)) // evaluates, trains nothing
        kd_log_kv(line, "%s, no training (held-out data %llu tokens)", kd_stage_kind_name(s->kind),
                  (unsigned long long)neval);
    else
        kd_log_kv(line, "%s, %d steps x %d tokens = %.3g tokens (data %llu %s)", kd_stage_kind_name(s->kind),
                  s->steps, s->batch.global * s->batch.seq_len,
                  (double)s->steps * s->batch.global * s->batch.seq_len, (unsigned long long)ntok,
                  row->format == KD_INPUT_PREFS ? "pairs" : "tokens");
    return KD_OK;
}

// A checkpoint records the tokenizer its model was trained with: the recipe's model (or
// teacher) tokenizer must be that one.
static int check_recorded(const kd_recipe *r, int teacher, const kd_tokenizer *tok, const char *spec,
                          kd_error *err) {
    const kd_from *f = teacher ? &r->teacher.from : &r->model.from;
    char rspec[KD_CKPT_STR_MAX], rfp[65];
    if (f->kind != KD_FROM_CHECKPOINT) return KD_OK;
    int rc = kd_ckpt_tokenizer(f->ref, rspec, sizeof rspec, rfp, err);
    if (rc || !rfp[0] || strcmp(rfp, kd_tokenizer_fingerprint(tok)) == 0) return rc;
    const char *who = teacher ? "teacher" : "model", *slash = strrchr(rspec, '/');
    char a[160], b[160];
    return kd_fail(err, KD_EINPUT, "%s: %s.tokenizer: %s was trained with tokenizer %s (%s), the recipe gives %s "
                   "(%s): set %s.tokenizer to the checkpoint's tokenizer, or leave it out", r->path, who, f->ref,
                   kd_vocab_describe(slash ? slash + 1 : rspec[0] ? rspec : "unnamed", rfp, a, sizeof a),
                   rspec[0] ? rspec : "path not recorded",
                   kd_vocab_describe(kd_tokenizer_name(tok), kd_tokenizer_fingerprint(tok), b, sizeof b), spec, who);
}

// The model's and the teacher's tokenizers (the teacher's must be the model's).
static int open_vocab(const kd_recipe *r, run_vocab *rv, kd_error *err) {
    kd_recipe_tokenizer(r, 0, rv->model_spec, sizeof rv->model_spec);
    int rc = kd_recipe_open_tokenizer(r, 0, &rv->model, err);
    if (!rc) rc = check_recorded(r, 0, rv->model, rv->model_spec, err);
    if (rc || !r->has_teacher) return rc;
    kd_recipe_tokenizer(r, 1, rv->teacher_spec, sizeof rv->teacher_spec);
    if ((rc = kd_recipe_open_tokenizer(r, 1, &rv->teacher, err))) return rc;
    if ((rc = check_recorded(r, 1, rv->teacher, rv->teacher_spec, err))) return rc;
    const char *tfp = kd_tokenizer_fingerprint(rv->teacher), *mfp = kd_tokenizer_fingerprint(rv->model);
    if (strcmp(tfp, mfp) == 0) return KD_OK;
    char t[160], m[160];
    return kd_fail(err, KD_EINPUT, "%s: teacher.tokenizer: the teacher uses tokenizer %s (%s), the model %s (%s): "
                   "teacher and student must share the tokenizer", r->path,
                   kd_vocab_describe(kd_tokenizer_name(rv->teacher), tfp, t, sizeof t), rv->teacher_spec,
                   kd_vocab_describe(kd_tokenizer_name(rv->model), mfp, m, sizeof m), rv->model_spec);
}

static void close_vocab(run_vocab *rv) {
    if (rv->model) kd_tokenizer_free(rv->model);
    if (rv->teacher) kd_tokenizer_free(rv->teacher);
}

static int validate_stages(const kd_recipe *r, const kd_model_config *mc, int world, double pbytes,
                           double limit, int verbose, kd_error *err) {
    run_vocab rv = {0};
    int rc = open_vocab(r, &rv, err);
    // a real tokenizer's ids must all be embeddings of the model (the byte tokenizer is
    // also used with small test vocabularies over raw ids)
    int32_t tv = rc ? 0 : kd_tokenizer_vocab_size(rv.model);
    if (!rc && strcmp(kd_tokenizer_name(rv.model), "bytes") != 0 && tv > mc->vocab_size)
        rc = kd_fail(err, KD_EINPUT, "%s: model.tokenizer: %s has %d ids, more than the model's vocab_size %d",
                     r->path, rv.model_spec, (int)tv, mc->vocab_size);
    if (!rc && verbose) kd_log_kv("tokenizer", "%s (%s)", kd_tokenizer_name(rv.model), rv.model_spec);
    for (int i = 0; !rc && i < r->n_stages; i++)
        rc = validate_stage(r, i, mc, &rv, world, pbytes, limit, verbose, err);
    close_vocab(&rv);
    return rc;
}

// Everything that can be checked before writing anything. Prints the summary if verbose.
static int validate(const kd_recipe *r, const kd_model_config *mc, int world, double limit, int verbose,
                    kd_error *err) {
    int rc = kd_model_config_check(mc, err);
    if (!rc) rc = check_teacher(r, mc, err);
    if (rc) return rc;
    if (strcmp(r->run.precision, "bf16") == 0 && strcmp(r->run.backend, "cpu") == 0)
        return kd_fail(err, KD_EINPUT, "%s: run.precision: bf16 is the CUDA backend's matmul arithmetic, "
                       "but run.backend is cpu (use fp32, or backend auto|cuda)", r->path);
    // parameters, gradients and this rank's AdamW moments: 4 bytes each, 2 + 2/world floats
    // per parameter (plus the reduced-gradient shard)
    double pbytes = (double)kd_model_param_count(mc) * 4.0 * (2.0 + 3.0 / world);
    if (pbytes > limit)
        return kd_fail(err, KD_EINPUT, "%s: model: %zu parameters need %.1f GiB per rank for weights, gradients and "
                       "optimizer state, more than the %.1f GiB per rank: make the model smaller (check "
                       "--mem-gib G checks for another machine)", r->path,
                       kd_model_param_count(mc), pbytes / (1ull << 30), limit / (1ull << 30));
    if (verbose) {
        kd_log_table_begin("recipe");
        kd_log_kv("recipe", "%s", r->path);
        kd_log_kv("run", "%s -> %s", r->run.name, r->run.out_dir);
        kd_log_kv("ranks", "%d", world);
    }
    if ((rc = validate_stages(r, mc, world, pbytes, limit, verbose, err))) return rc;
    if (verbose) {
        kd_log_kv("model", "%d layers (%d Mamba-2), d_model %d, heads %d/%d x %d, ffn %d, vocab %d", mc->n_layers,
                  kd_model_n_ssm(mc), mc->d_model, mc->n_heads, mc->n_kv_heads, mc->head_dim, mc->ffn_dim,
                  mc->vocab_size);
        kd_log_table_end();
    }
    return KD_OK;
}

// ----------------------------------------------------------------------------- run

static const kd_ops *pick_backend(const char *want, int rank) {
    char why[256] = "";
    if (strcmp(want, "cpu") != 0) {
        const kd_ops *cuda = kd_ops_cuda(why, sizeof why);
        char lacks[160] = "";
        int missing = cuda ? kd_ops_missing(cuda, lacks, sizeof lacks) : 0;
        if (cuda && missing == 0) return cuda;
        if (cuda) snprintf(why, sizeof why, "the CUDA backend does not implement %d ops yet (%s)", missing, lacks);
        if (rank == 0 && strcmp(want, "cuda") == 0) kd_log_warn("backend cuda unavailable (%s): using cpu", why);
        else if (rank == 0) kd_log_info("backend auto: %s; using cpu", why);
    }
    return kd_ops_cpu();
}

// run.precision on the chosen backend: bf16 where it has bf16 products, else fp32 with a
// line saying so (a GPU recipe run on a laptop computes in fp32; checkpoints are fp32
// either way, so runs move freely between the two).
static void apply_precision(const kd_ops *ops, const char *want, int rank) {
    kd_precision p = strcmp(want, "bf16") == 0 ? KD_PREC_BF16 : KD_PREC_FP32;
    int ok = ops->set_precision ? ops->set_precision(ops->ctx, p) == 0 : p == KD_PREC_FP32;
    if (!ok) {
        if (ops->set_precision) ops->set_precision(ops->ctx, KD_PREC_FP32);
        if (rank == 0)
            kd_log_warn("run.precision %s: the %s backend has no %s products; computing in fp32",
                        want, ops->name, want);
    } else if (rank == 0 && p != KD_PREC_FP32) {
        kd_log_info("precision: %s matmuls with fp32 accumulation, fp32 master weights", want);
    }
}

typedef struct {
    const kd_recipe *r;
    const kd_model_config *mc;
    kd_comm *comm;
    const kd_ops *ops;
    const kd_run_opts *o;
    kd_model *teacher;                                // loaded for the stages that need it
    char done_ckpt[KD_MAX_STAGES][KD_PATH_MAX * 2];  // final checkpoint of finished stages
    char tok_spec[KD_MODEL_TOK_SPEC_MAX], tok_fp[65]; // the model's tokenizer, recorded
} run_state;

static int load_teacher(run_state *st, int i, kd_model **teacher, kd_error *err);

// On-demand teacher for stages (collective): loads it once, keeps it until dropped.
static int get_teacher(void *run, kd_model **out, kd_error *err) {
    run_state *st = run;
    *out = NULL;
    if (!st->r->has_teacher) return kd_fail(err, KD_EINPUT, "%s: this stage needs a `teacher:` section", st->r->path);
    int rc = load_teacher(st, -1, &st->teacher, err);
    if ((rc = kd_comm_agree(st->comm, rc, err))) return rc;
    *out = st->teacher;
    return KD_OK;
}

// A frozen model (teacher, reference) from a recipe `from`; what names the key in errors.
static int load_frozen_from(run_state *st, const kd_from *f, const char *what, kd_model **out,
                            kd_error *err) {
    if (f->kind == KD_FROM_STAGE) {
        int j = kd_recipe_stage_index(st->r, f->ref);
        if (j < 0 || !st->done_ckpt[j][0])
            return kd_fail(err, KD_EINPUT, "%s: stage '%s' has not finished", what, f->ref);
        return kd_model_load(st->comm, st->done_ckpt[j], st->ops, 0, out, err);
    }
    if (f->kind == KD_FROM_CHECKPOINT) return kd_model_load(st->comm, f->ref, st->ops, 0, out, err);
    if (f->kind == KD_FROM_HF) return kd_hf_load(f->ref, st->ops, 0, out, err);
    return kd_fail(err, KD_EINPUT, "%s: {random: true} is not a trained model: name a stage, checkpoint "
                   "or hf directory", what);
}

static int load_frozen(void *run, const kd_from *f, const char *what, kd_model **out, kd_error *err) {
    return load_frozen_from(run, f, what, out, err);
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
    // i >= 0: before stage i, for the kinds the run loads it for; i < 0: a stage asked for it
    if (i >= 0 && !(kd_kind_get(r->stages[i].kind)->flags & KD_KIND_LOAD_TEACHER)) return KD_OK;
    return load_frozen_from(st, &r->teacher.from, "teacher.from", teacher, err);
}

// 1 if the file at path holds exactly text.
// A changed recipe whose model no longer matches an unfinished stage's newest valid
// checkpoint would be refused by that stage's resume (trainer.c) after the run dir had
// already been rewritten; refuse it here, before anything in the run dir changes.
static int check_resumable(const kd_recipe *r, const kd_run_opts *o, kd_error *err) {
    if (o->resume != KD_RESUME_AUTO) return KD_OK;
    for (int i = 0; i < r->n_stages; i++) {
        char dir[KD_PATH_MAX * 2], root[KD_PATH_MAX * 2 + 8], ck[KD_PATH_MAX * 2 + 64],
            done[KD_PATH_MAX * 2];
        kd_recipe_stage_dir(r, i, dir, sizeof dir);
        if (kd_run_dir_read_done(r->run.out_dir, dir, done, sizeof done)) continue;
        snprintf(root, sizeof root, "%s/ckpt", dir);
        kd_train_state ts;
        if (!kd_ckpt_find_latest(root, ck, sizeof ck, NULL) || kd_ckpt_read_state(ck, &ts, NULL))
            continue;
        char want[32];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)kd_stage_model_hash(r, i));
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

static int run_stages(const kd_recipe *r, const kd_model_config *mc, kd_comm *comm, const kd_run_opts *o,
                      kd_error *err) {
    int rank = kd_comm_rank(comm);
    int rc = KD_OK;
    double deadline = r->run.max_minutes > 0 ? kd_now() + 60.0 * r->run.max_minutes : 0;
    kd_signals_install();
    kd_comm_start_watchdog(comm, r->run.collective_timeout_s);
    char path[KD_PATH_MAX * 2];
    if (rank == 0) {
        rc = kd_mkdir_p_or_fail(r->run.out_dir, 0755, KD_ERUNTIME, err);
        snprintf(path, sizeof path, "%s/recipe.resolved.yaml", r->run.out_dir);
        if (!rc && !kd_file_equals(path, r->resolved_yaml, strlen(r->resolved_yaml))) {
            rc = check_resumable(r, o, err); // before the run dir's recipe is replaced
            if (!rc) rc = kd_recipe_write_resolved(r, path, err);
        }
    }
    if ((rc = kd_comm_agree(comm, rc, err))) return rc;
    run_state *st = kd_calloc(1, sizeof *st);
    st->r = r, st->mc = mc, st->comm = comm, st->o = o;
    st->ops = pick_backend(r->run.backend, rank);
    apply_precision(st->ops, r->run.precision, rank);
    // every checkpoint records the tokenizer its model's ids belong to (validated above)
    char spec[KD_PATH_MAX];
    kd_recipe_tokenizer(r, 0, spec, sizeof spec);
    if (!rc) rc = kd_tokenizer_identify(spec, st->tok_spec, sizeof st->tok_spec, st->tok_fp, err);
    kd_model *model = NULL;
    int only = o->stage ? kd_recipe_stage_index(r, o->stage) : -1;
    int used_resume_path = 0;
    if (o->stage && only < 0) rc = kd_fail(err, KD_EINPUT, "--stage %s: no stage of that name in %s", o->stage, r->path);
    for (int i = 0; i < r->n_stages && rc == KD_OK; i++) {
        const kd_stage_spec *s = &r->stages[i];
        char dir[KD_PATH_MAX * 2];
        kd_recipe_stage_dir(r, i, dir, sizeof dir);
        if (kd_run_dir_read_done(r->run.out_dir, dir, st->done_ckpt[i], sizeof st->done_ckpt[i])) {
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
        if (rank == 0) rc = kd_mkdir_p_or_fail(dir, 0755, KD_ERUNTIME, err);
        double t_start = kd_unix_now(); // attempts.jsonl of a stage that does not train
        if ((rc = kd_comm_agree(comm, rc, err))) break;
        if (!rc) rc = stage_input(st, i, &model, err);
        if (!rc) kd_model_set_tokenizer(model, st->tok_spec, st->tok_fp);
        if (!rc) rc = load_teacher(st, i, &st->teacher, err);
        if ((rc = kd_comm_agree(comm, rc, err))) break;
        kd_progress pr = {0};
        kd_stage_ctx ctx = {.recipe = r, .stage_index = i, .spec = s, .comm = comm, .ops = st->ops,
                            .model = model, .teacher = st->teacher, .stage_dir = dir, .progress = &pr,
                            .run = st, .get_teacher = get_teacher, .drop_teacher = drop_teacher,
                            .load_frozen = load_frozen,
                            .quiet = o->quiet, .resume = o->resume, .deadline = deadline,
                            .resume_path = used_resume_path ? NULL : o->resume_path};
        used_resume_path = 1;
        if (rank == 0 && !o->quiet) kd_log_info("stage %d/%d: %s (%s)", i + 1, r->n_stages, s->name, kd_stage_kind_name(s->kind));
        rc = kd_kind_get(s->kind)->run(&ctx, err);
        if (ctx.model != model) {  // the stage built a new model (init): it replaces the input
            kd_model_free(model);
            model = ctx.model;
        }
        rc = kd_comm_agree(comm, rc, err);
        if (rc) break;
        snprintf(st->done_ckpt[i], sizeof st->done_ckpt[i], "%s", ctx.final_ckpt);
        if (rank == 0) {
            if (!isnan(ctx.eval_loss) && !o->quiet) kd_log_info("stage %s: held-out loss %.6f", s->name, ctx.eval_loss);
            rc = kd_run_dir_write_done(r->run.out_dir, dir, ctx.final_ckpt, pr.step, ctx.eval_loss, err);
            if (!rc && r->run.tensorboard) kd_rd_eval_events(dir, s->name, s->kind != KD_STAGE_EVAL, pr.step);
            if (!rc && !kd_attempt_noted(dir)) kd_attempt_note(dir, kd_comm_size(comm), st->ops->name, t_start);
        }
        rc = kd_comm_agree(comm, rc, err);
        // a stop signal that came during a stage without steps (init, eval) or its last step
        if (!rc && i + 1 < r->n_stages && only < 0 && kd_comm_any(comm, kd_signals_pending() != 0))
            rc = kd_fail(err, KD_EREQUEUE, "stopped by a signal after stage '%s' finished; run the same command "
                         "again to continue", s->name);
    }
    kd_model_free(model);
    kd_model_free(st->teacher);
    free(st);
    return rc;
}

// ----------------------------------------------------------------------------- API

// The SLURM launch check, the recipe, the starting model's shape (the recipe's arch, or what
// the source directory says) and validate, agreed by all ranks.
static int prepare(kd_comm *comm, const kd_run_opts *o, int world, int verbose, kd_recipe *r,
                   kd_model_config *mc, kd_error *err) {
    int rank = kd_comm_rank(comm);
    // inside a SLURM step: log the job and refuse "N copies of rank 0" launches
    int rc = kd_slurm_check(kd_comm_size(comm), err);
    if (!rc && rank == 0 && !o->quiet) kd_slurm_log();
    if (!rc) rc = kd_recipe_load(r, o->recipe, o->sets, o->n_sets, &kd_kind_rules, err);
    if (!rc) {
        if (r->model.from.kind == KD_FROM_HF) rc = kd_hf_config(r->model.from.ref, mc, err);
        else if (r->model.from.kind == KD_FROM_CHECKPOINT) rc = kd_model_config_from_ckpt(r->model.from.ref, mc, err);
        else model_config(&r->model, mc);
        if (rc) kd_error_prefix(err, "%s: model.from: ", r->path);
    }
    if (!rc) rc = validate(r, mc, world, mem_limit_bytes(o), rank == 0 && verbose, err);
    return kd_comm_agree(comm, rc, err);
}

int kd_run_check(kd_comm *comm, const kd_run_opts *o, kd_error *err) {
    kd_recipe *r = kd_calloc(1, sizeof *r);  // large (hundreds of KiB): not on the stack
    kd_model_config mc;
    int rc = prepare(comm, o, o->ranks > 0 ? o->ranks : kd_comm_size(comm), 1, r, &mc, err);
    kd_recipe_free(r);
    free(r);
    return rc;
}

int kd_run_stages(kd_comm *comm, const kd_run_opts *o, kd_error *err) {
    kd_recipe *r = kd_calloc(1, sizeof *r);
    kd_model_config mc;
    int rc = prepare(comm, o, kd_comm_size(comm), !o->quiet, r, &mc, err);
    if (!rc) rc = run_stages(r, &mc, comm, o, err);
    kd_recipe_free(r);
    free(r);
    return rc;
}
