// recipe.h: the typed form of a YAML recipe (docs/recipe.md). kd_recipe_load parses with
// libyaml, applies --set overrides, fills defaults, validates, and reports the first
// problem as "FILE:LINE:COL: key.path: expected ..., found ...". The run, stages and
// trainer read only these structs, never YAML. Invariants after a successful load: every
// field holds its value or its documented default; stage names are unique and match
// [A-Za-z0-9_-]+; from.stage names an earlier stage; batch.global % batch.micro == 0; and
// whatever the kind rules passed to the load require (stages/kind.h: e.g. kd and align
// stages have a teacher). The keys, types and defaults are in runtime/config/recipe_schema.c.
#pragma once
#include "kernels/kinds.h"
#include "runtime/base/common.h"

#define KD_MAX_STAGES 32
#define KD_MAX_LAYERS 256
#define KD_MAX_GLOBS 16
#define KD_NAME_MAX 64
#define KD_PATH_MAX 1024
#define KD_MAX_TASKS 16

// Where model weights come from.
typedef enum {
    KD_FROM_RANDOM = 0,   // seeded random init from `arch`
    KD_FROM_STAGE,        // the final weights of an earlier stage of this recipe
    KD_FROM_CHECKPOINT,   // a kdtrain checkpoint directory
    KD_FROM_HF,           // a Hugging Face Llama directory (config.json + safetensors)
    KD_FROM_PREV,         // stages: the previous stage's output (first stage: model.from)
} kd_from_kind;

typedef struct {
    kd_from_kind kind;
    char ref[KD_PATH_MAX];  // stage name, checkpoint path or HF directory
} kd_from;

// Architecture of a Llama-style decoder (with optional Mamba-2 layers).
typedef struct {
    int vocab_size;      // default 259 (byte tokenizer: 256 bytes + BOS/EOS/PAD)
    int d_model;         // default 128
    int n_layers;        // default 4
    int n_heads;         // default 4
    int n_kv_heads;      // default = n_heads
    int head_dim;        // default d_model / n_heads
    int ffn_dim;         // default 4*d_model rounded... (documented)
    float rope_theta;    // default 10000
    float norm_eps;      // default 1e-5
    int tie_embeddings;  // default 0
    float init_std;      // default 0.02
    // RoPE scaling (docs/recipe.md): rope_type indexes kd_rope_type_names (runtime/model/rope.h
    // has the same order: default, linear, dynamic, llama3).
    int rope_type;                 // default 0 = plain RoPE
    float rope_factor;             // default 1
    float rope_low_freq_factor;    // default 1 (llama3)
    float rope_high_freq_factor;   // default 4 (llama3)
    int rope_original_max_pos;     // default 8192 (llama3)
    int max_position_embeddings;   // default 0 = unknown (dynamic needs it)
} kd_arch;

// Which layers are Mamba-2. YAML gives ssm_layers or attn_layers (its complement). When the
// arch is known at load (the model chain starts from random init) both lists are filled,
// sorted, and layers_by_attn = 0. Otherwise, if the layout was given as attn_layers,
// layers_by_attn = 1 and the run calls kd_hybrid_resolve once n_layers is known.
typedef struct {
    int n_ssm_layers;              // number of entries in ssm_layers (0: pure Transformer)
    int ssm_layers[KD_MAX_LAYERS]; // layer indices whose mixer is Mamba-2
    int n_attn_layers;             // complement of ssm_layers (filled when resolved)
    int attn_layers[KD_MAX_LAYERS];
    int layers_by_attn;            // 1: only attn_layers is known yet (see above)
    int d_state;                   // 0 = auto (head_dim)
    int chunk_size;                // default 64
    int conv_width;                // default 4
} kd_hybrid;

typedef struct {
    kd_from from;
    kd_arch arch;
    kd_hybrid hybrid;
    // Tokenizer spec ("bytes" or a Hugging Face tokenizer directory / tokenizer.json);
    // "" (default) = automatic: the from: HF directory's when it holds tokenizer.json,
    // else (teacher) the model's, else bytes. Resolved by stages (kd_recipe_tokenizer).
    char tokenizer[KD_PATH_MAX];
} kd_model_spec;

// Learning-rate schedules (runtime/train/optim.c computes them). kd_schedule_name gives
// the recipe's spelling, the one names table of recipe_schema.c.
typedef enum { KD_SCHED_COSINE = 0, KD_SCHED_LINEAR, KD_SCHED_CONSTANT } kd_schedule;
const char *kd_schedule_name(kd_schedule s);

typedef struct {
    float lr;             // default 3e-4
    float min_lr_ratio;   // default 0.1 (cosine/linear decay to lr*min_lr_ratio)
    int warmup;           // default 0 (steps)
    kd_schedule schedule; // default cosine
    float weight_decay;   // default 0.0
    float beta1, beta2;   // default 0.9, 0.95
    float eps;            // default 1e-8
    float grad_clip;      // default 1.0 (0 = off)
} kd_optim;

// ---------------------------------------------------------------- kind-specific blocks
typedef enum { KD_INIT_CONV_IDENTITY = 0, KD_INIT_CONV_DEFAULT } kd_init_conv;

typedef struct {
    kd_init_conv conv;             // conv1d of converted layers: identity (default) | default
} kd_init_spec;

typedef enum { KD_ALIGN_MATRIX = 0, KD_ALIGN_HIDDEN } kd_align_phase;

typedef struct {
    kd_align_phase phase;          // required: matrix (MOHAWK 1) | hidden (MOHAWK 2)
    int n_layers;                  // 0 = all SSM layers (filled at load when known)
    int layers[KD_MAX_LAYERS];
} kd_align_spec;

// kd_divergence (forward, reverse, jsd) is the loss kernels' enum (kernels/kinds.h).

// How the kd stage normalises its divergence term (docs/losses.md): per target token (TRL's
// GKD), per row of the global batch (MambaInLlama: torch kl_div 'batchmean'), or the mean
// over rows of each row's per-token mean. The CE term is always per target token.
typedef enum { KD_NORM_TOKEN = 0, KD_NORM_BATCHMEAN, KD_NORM_SEQUENCE } kd_kd_norm;

typedef struct {
    float kl;                  // weight of the teacher divergence term (default 1.0)
    float ce;                  // weight of the next-token CE term (default 0.0)
    float temperature;         // softmax temperature of both models (default 1.0)
    kd_divergence divergence;  // default forward (KL(teacher || student))
    float beta;                // JSD mixing weight (default 0.5)
    kd_kd_norm normalize;      // default token
} kd_kd_loss;

typedef struct {
    int generate;              // 1: sample completions from the teacher first (default 0)
    char prompts[KD_PATH_MAX]; // prompts dataset (required when generate)
    int max_new_tokens;        // default 64
    float temperature;         // default 0.7 (0 = greedy)
    float top_p;               // default 0.95
    int top_k;                 // default 0 (off)
    int top_k_logits;          // teacher logits cached per token (default 0 = online teacher)
    char out[KD_PATH_MAX];     // default STAGE_DIR/pseudo_labels.h5
} kd_pseudo_labels;

typedef struct {
    kd_kd_loss loss;
    int mask_prompt;           // default 1: no loss on prompt tokens
    int use_topk_cache;        // default 1: data with /topk_ids trains without the teacher
    kd_pseudo_labels pseudo_labels;
    float lmbda;               // on-policy (GKD): fraction of steps the student writes the answers (default 0)
    float onpolicy_temperature;   // their sampling temperature (default 0.9, TRL's GKD)
    int onpolicy_max_new_tokens;  // their length at most (default 128)
} kd_kd_spec;

typedef struct {
    int packing;               // default 1
} kd_sft_spec;

// kd_pref_type (sigmoid, ipo, hinge, simpo, orpo) is the loss's enum (kernels/kinds.h).

typedef struct {
    kd_pref_type type;         // default sigmoid
    float beta;                // default 0.1
    float label_smoothing;     // default 0.0
    float gamma;               // SimPO margin (default 0.5)
    float rpo_alpha;           // RPO: weight of the chosen NLL added to the loss (default 0 = off)
} kd_dpo_loss;

typedef struct {
    kd_dpo_loss loss;
    int max_len;               // default 256
    int max_prompt_len;        // default 128
    int has_reference;         // 0: reference = the model at stage start
    kd_from reference;         // reference.from
} kd_dpo_spec;

typedef struct {
    int n_tasks;               // 0: perplexity on eval_data only
    char tasks[KD_MAX_TASKS][KD_PATH_MAX];  // task files: *.jsonl exact match, *.h5 preferences
    int max_new_tokens;        // default 32
    int has_reference;         // preference sets: implicit reward vs this model
    kd_from reference;         // reference.from
} kd_eval_spec;

typedef struct {
    char prompts[KD_PATH_MAX]; // required
    int max_new_tokens;        // default 64
    float temperature;         // default 0.7 (0 = greedy)
    int top_k;                 // default 0 (off)
    float top_p;               // default 0.95
} kd_generate_spec;

typedef struct {
    int global;   // sequences per optimizer step, all ranks (default 8)
    int micro;    // sequences per forward/backward on one rank (default = global)
    int seq_len;  // tokens per sequence (default 64)
} kd_batch;

typedef struct {
    int every;    // steps between checkpoints (0 = only at end)
    int keep;     // newest checkpoints kept (>= 2, default 3)
    int at_end;   // default 1
} kd_ckpt_policy;

typedef enum {
    KD_STAGE_PRETRAIN = 0,
    KD_STAGE_INIT,
    KD_STAGE_ALIGN,
    KD_STAGE_KD,
    KD_STAGE_SFT,
    KD_STAGE_DPO,
    KD_STAGE_EVAL,
    KD_STAGE_GENERATE,
    KD_STAGE_KIND_COUNT, // not a kind: the number of kinds
} kd_stage_kind;

typedef struct {
    char name[KD_NAME_MAX];
    kd_stage_kind kind;
    char data[KD_PATH_MAX];       // training dataset (HDF5)
    char eval_data[KD_PATH_MAX];  // optional held-out dataset
    int steps;                    // optimizer steps (default 100)
    int log_every;                // default 10
    int eval_every;               // default 0 (only at end when eval_data set)
    kd_batch batch;
    kd_optim optim;
    kd_ckpt_policy checkpoint;
    int n_freeze;
    char freeze[KD_MAX_GLOBS][KD_NAME_MAX * 2];  // parameter-name globs to freeze
    int max_bad_steps;            // consecutive non-finite steps before abort (default 5)
    int line;                     // recipe line of this stage (for messages)
    kd_from from;                 // default KD_FROM_PREV
    int has_hybrid;               // init stages: own `hybrid:` block (else model.hybrid)
    kd_hybrid hybrid;
    // kind-specific blocks; only the one matching `kind` is meaningful
    kd_init_spec init;
    kd_align_spec align;
    kd_kd_spec kd;
    kd_sft_spec sft;
    kd_dpo_spec dpo;
    kd_eval_spec eval;
    kd_generate_spec generate;
} kd_stage_spec;

typedef struct {
    char name[KD_NAME_MAX];       // run.name (default: recipe file stem)
    char out_dir[KD_PATH_MAX];    // run.out_dir (default runs/NAME)
    uint64_t seed;                // run.seed (default 1234)
    char backend[16];             // auto|cpu|cuda (default auto)
    char precision[8];            // fp32|bf16 (default fp32): matmul arithmetic on CUDA
    float max_minutes;            // wall-time budget, 0 = none
    float collective_timeout_s;   // watchdog, default 600
    int tensorboard;              // run.tensorboard: event files per stage (default 1)
    float grad_bucket_mb;         // gradient buckets reduced during the backward (default 25, 0 off)
} kd_run_spec;

typedef struct {
    char path[KD_PATH_MAX];       // the recipe file
    kd_run_spec run;
    kd_model_spec model;          // the model the stages train
    int has_teacher;
    kd_model_spec teacher;        // frozen teacher (kd, align, dpo reference)
    int n_stages;
    kd_stage_spec stages[KD_MAX_STAGES];
    char *resolved_yaml;          // canonical YAML of every key with its value (owned)
    uint64_t hash;                // hash of resolved_yaml
} kd_recipe;

// ---------------------------------------------------------------- kind rules
// This layer knows a stage kind by its name and by the keys it accepts (the schema). What a
// kind needs beyond that (a teacher, a dataset, its own keys' cross-checks and derived
// defaults) is decided one layer up, by the stage kind table (stages/kind.h), which hands
// its checks to kd_recipe_load as rules. The load calls them at fixed points so that which
// error is reported first does not depend on where a check is written.
typedef struct kd_recipe_checker kd_recipe_checker; // the load in progress (positions, error)

typedef struct {
    // Stage i, after its kind-independent keys passed (unique name, from, batch) and before
    // the held-out keys (eval_every) are checked. May fill derived defaults of its keys.
    int (*stage)(kd_recipe_checker *c, kd_recipe *r, int i);
    // Stage i again, once every stage has passed `stage` (checks that look at other stages).
    int (*linked)(kd_recipe_checker *c, kd_recipe *r, int i);
} kd_recipe_rules;

// For rules: fail with "FILE:LINE:COL: PATH: MESSAGE", at the position where PATH (or its
// nearest written parent) was written. Returns KD_EINPUT.
int kd_recipe_bad(kd_recipe_checker *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// For rules: if f names a stage, it must be one of stages [0, before); `why` names what
// refers to it ("this one", "stage kd (stages[6])"). KD_OK or KD_EINPUT.
int kd_recipe_check_from_stage(kd_recipe_checker *c, const kd_from *f, int before,
                               const char *path, const char *why);
// For rules: stage i's `reference.from` (dpo, eval) names a trained model: an earlier stage,
// a checkpoint or an HF directory, not {random: true}.
int kd_recipe_check_reference(kd_recipe_checker *c, const kd_from *f, int i);
// For rules: validate a hybrid block at `path`; resolve it when model.arch is known.
int kd_recipe_check_hybrid(kd_recipe_checker *c, kd_hybrid *h, const char *path);

// Parse `path`, apply overrides ("stages.NAME.optim.lr=1e-4" or "stages[0].steps=5",
// "run.seed=7"), fill defaults and validate, with the kind rules (NULL: none; the run
// passes the stage kind table's, &kd_kind_rules). Relative data paths are resolved against
// the current directory. Returns KD_OK or KD_EINPUT with err filled.
int kd_recipe_load(kd_recipe *r, const char *path, const char *const *overrides,
                   int n_overrides, const kd_recipe_rules *rules, kd_error *err);
void kd_recipe_free(kd_recipe *r);
// Index of the stage named `name`, or -1.
int kd_recipe_stage_index(const kd_recipe *r, const char *name);
const char *kd_stage_kind_name(kd_stage_kind k);

// Write r->resolved_yaml to `path` atomically (kd_write_file_atomic). KD_ERUNTIME on I/O.
int kd_recipe_write_resolved(const kd_recipe *r, const char *path, kd_error *err);
// Where stage `stage` starts: KD_FROM_PREV resolved to {STAGE, previous name} or, for the
// first stage, to model.from. Never returns KD_FROM_PREV.
kd_from kd_recipe_stage_source(const kd_recipe *r, int stage);
// The stage's directory: OUT_DIR/stages/NN-NAME with NN = stage index, two digits.
void kd_recipe_stage_dir(const kd_recipe *r, int stage, char *buf, size_t n);
// Check indices in [0, n_layers), no duplicates, then fill both ssm_layers and attn_layers
// (sorted) and clear layers_by_attn. `where` prefixes messages. KD_EINPUT on bad indices.
int kd_hybrid_resolve(kd_hybrid *h, int n_layers, const char *where, kd_error *err);
