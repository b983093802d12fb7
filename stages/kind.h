// kind.h: the stage kind table. One row per stage kind (stages/kind.c) says everything the
// rest of kdtrain needs to know about a kind: the function that runs it, whether it needs
// the recipe's teacher and when it is loaded, which dataset it reads and in which format,
// and its own checks and model-hash contribution. The run (runtime/run/run.c) dispatches,
// validates inputs and loads teachers from the row; the recipe load and the model hash
// call the row's hooks.
//
// Layering: the recipe (runtime/config/) lies below the stages, so it cannot call this
// table. It keeps only what parsing needs (the kind enum and names in recipe.h, each key's
// allowed kinds in recipe_schema.c); everything else a kind requires is handed to the load
// as rules (kd_kind_rules, a kd_recipe_rules: dependency inversion), which the load calls at
// fixed points so that the first error reported does not depend on where a check is
// written. The model hash is computed here from the kind-independent part of the chain of
// stages plus each row's `hash` contribution.
//
// Adding a kind: its enum value and name (recipe.h, recipe_schema.c), its row in kind.c
// with its entry points declared below, its file stages/<kind>.c, schema rows for any new
// keys, and docs/recipe.md (docs/design.md, "Adding a stage kind").
#pragma once
#include "runtime/config/recipe_emit.h"
#include "stages/stage.h"

// What the run and the recipe load do about a kind (kd_kind_row.flags).
enum {
    KD_KIND_DATA = 1u << 0,         // trains on `data`: the key is required (unless `input`
                                    // names another file for this stage)
    KD_KIND_TEACHER = 1u << 1,      // the recipe must have a teacher, from an earlier stage
    KD_KIND_LOAD_TEACHER = 1u << 2, // the run loads the recipe's teacher (if there is one)
                                    // before the stage; others get it through
                                    // ctx->get_teacher when they need it (kd)
    KD_KIND_NO_BATCH = 1u << 3,     // no training batches: `check` skips the batch and memory
                                    // checks (init, generate)
};

// How the stage reads its input file and its eval_data (what `kdtrain check` opens).
typedef enum {
    KD_INPUT_NONE = 0, // reads no dataset (init)
    KD_INPUT_TOKENS,   // a token dataset, by document
    KD_INPUT_WINDOWS,  // a token dataset, as windows of seq_len+1 tokens (pretrain)
    KD_INPUT_PREFS,    // a preference dataset (dpo)
} kd_input_format;

// A row of the table (rows[kind] in kind.c).
typedef struct {
    int (*run)(kd_stage_ctx *ctx, kd_error *err);
    unsigned flags;
    kd_input_format format;
    // The file the stage reads first and its key under the stage (NULL: `data`, "data").
    const char *(*input)(const kd_stage_spec *s, const char **key);
    // A dataset the stage writes for later stages to read, or NULL.
    const char *(*output)(const kd_stage_spec *s);
    // Recipe load: the kind's own keys of stage i, after KD_KIND_DATA / KD_KIND_TEACHER
    // were checked; may fill their derived defaults. NULL: nothing to check.
    int (*check)(kd_recipe_checker *c, kd_recipe *r, int i);
    // Recipe load, once every stage was checked: what depends on other stages. NULL: none.
    int (*linked)(kd_recipe_checker *c, kd_recipe *r, int i);
    // `check`/`run` before anything is written: what depends on the model's shape. NULL: none.
    int (*preflight)(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err);
    // Appends what of the stage's own keys determines its output model to the model hash
    // text. NULL: nothing (the hash already covers data, batch shape and source).
    void (*hash)(kd_strbuf *b, const kd_recipe *r, int i);
    // The Mamba layout of the model the stage outputs, when the stage sets it. NULL: the
    // stage keeps its input's layout.
    const kd_hybrid *(*layout)(const kd_recipe *r, int i);
    // KD_KIND_NO_BATCH: the line `kdtrain check` prints for the stage (NULL: none).
    const char *summary;
} kd_kind_row;

// The row of kind k, or NULL for a kind this build does not have.
const kd_kind_row *kd_kind_get(kd_stage_kind k);
// The file stage s reads first and its key (the row's `input`, else `data`).
const char *kd_kind_input(const kd_stage_spec *s, const char **key);
// The rules every recipe is loaded with: kd_recipe_load(..., &kd_kind_rules, err).
extern const kd_recipe_rules kd_kind_rules;
// The Mamba layout of the model during stage i (followed back through `from` to the stage
// that set it, or random init: none), or NULL when it is not known at load.
const kd_hybrid *kd_kind_layout_at(const kd_recipe *r, int i);

// 64-bit FNV-1a over only what determines stage `stage`'s model and data: arch, hybrid
// layouts, the from chain back to its origin, data paths, seq_len, global batch, seed, the
// teacher, and the rows' `hash` contributions. Resume compares it; a changed lr or
// log_every does not change it. Checkpoints store it: its value for a recipe must not change.
uint64_t kd_stage_model_hash(const kd_recipe *r, int stage);

// ---------------------------------------------------------------- the kinds' entry points
// stages/<kind>.c; the rows of kind.c name them.
int kd_stage_pretrain(kd_stage_ctx *ctx, kd_error *err);
// init: attention -> Mamba-2 conversion; replaces ctx->model with the new model.
int kd_stage_init(kd_stage_ctx *ctx, kd_error *err);
int kd_stage_init_check(kd_recipe_checker *c, kd_recipe *r, int i);
void kd_stage_init_hash(kd_strbuf *b, const kd_recipe *r, int i);
const kd_hybrid *kd_stage_init_layout(const kd_recipe *r, int i);
// Before anything runs: the layout fits the layers of the model the stage converts (mc's, or
// its own from: checkpoint / HF directory's), so a bad index fails at `check`, not hours in.
int kd_stage_init_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err);
// align: MOHAWK matrix orientation / hidden-state alignment against ctx->teacher.
int kd_stage_align(kd_stage_ctx *ctx, kd_error *err);
int kd_stage_align_linked(kd_recipe_checker *c, kd_recipe *r, int i);
int kd_stage_kd(kd_stage_ctx *ctx, kd_error *err);
const char *kd_stage_kd_input(const kd_stage_spec *s, const char **key);
const char *kd_stage_kd_output(const kd_stage_spec *s);
int kd_stage_kd_check(kd_recipe_checker *c, kd_recipe *r, int i);

// On-policy distillation of the kd stage (stages/kd_onpolicy.c, TRL's GKD).
typedef struct {
    uint64_t seed;      // the run seed
    float temperature;  // sampling temperature of the student's answers (0: greedy)
    int max_new_tokens; // answer length at most (also bounded by the row)
    int eos_id;         // an answer stops after it (-1: never)
} kd_onpolicy_cfg;
// 1 when optimizer step `step` (0-based) is on-policy: a uniform of the stream
// (seed, "kd/onpolicy/step/<step>") below lmbda; the same on every rank.
int kd_onpolicy_step(uint64_t seed, uint64_t step, float lmbda);
// Rewrites the n rows (T) of a fill: each row's prompt (its tokens up to the input of the
// first weighted target) is continued by `student`, sampling with its own stream per global
// sample position pos[r]; targets become the answer's tokens with weight 1 (0 before and
// after), seg one document per row (seg may be NULL). Rows without a target stay as they are.
int kd_onpolicy_rows(kd_model *student, const kd_onpolicy_cfg *oc, const uint64_t *pos, int n, int T,
                     int32_t *ids, int32_t *targets, float *w, int32_t *seg, kd_error *err);
int kd_stage_kd_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err);
void kd_stage_kd_hash(kd_strbuf *b, const kd_recipe *r, int i);
int kd_stage_sft(kd_stage_ctx *ctx, kd_error *err);
int kd_stage_dpo(kd_stage_ctx *ctx, kd_error *err);
int kd_stage_dpo_check(kd_recipe_checker *c, kd_recipe *r, int i);
int kd_stage_eval(kd_stage_ctx *ctx, kd_error *err);
int kd_stage_eval_check(kd_recipe_checker *c, kd_recipe *r, int i);
// Before anything runs: every .jsonl task file parses as exact-match or multiple-choice items.
int kd_stage_eval_preflight(const kd_recipe *r, int i, const kd_model_config *mc, kd_error *err);
int kd_stage_generate(kd_stage_ctx *ctx, kd_error *err);
const char *kd_stage_generate_input(const kd_stage_spec *s, const char **key);
