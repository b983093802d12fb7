// recipe.h: the typed form of a YAML recipe (docs/recipe.md). kd_recipe_load parses with
// libyaml, applies --set overrides, fills defaults, validates, and reports the first
// problem as "FILE:LINE:COL: key.path: expected ..., found ...". The run, stages and
// trainer read only these structs, never YAML.
#pragma once
#include "runtime/common.h"

#define KD_MAX_STAGES 32
#define KD_MAX_LAYERS 256
#define KD_MAX_GLOBS 16
#define KD_NAME_MAX 64
#define KD_PATH_MAX 1024

// Where model weights come from.
typedef enum {
    KD_FROM_RANDOM = 0,   // seeded random init from `arch`
    KD_FROM_STAGE,        // the final weights of an earlier stage of this recipe
    KD_FROM_CHECKPOINT,   // a kdtrain checkpoint directory
    KD_FROM_HF,           // a Hugging Face Llama directory (config.json + safetensors)
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
} kd_arch;

typedef struct {
    int n_ssm_layers;              // number of entries in ssm_layers (0: pure Transformer)
    int ssm_layers[KD_MAX_LAYERS]; // layer indices whose mixer is Mamba-2
    int d_state;                   // 0 = auto (head_dim)
    int chunk_size;                // default 64
    int conv_width;                // default 4
} kd_hybrid;

typedef struct {
    kd_from from;
    kd_arch arch;
    kd_hybrid hybrid;
} kd_model_spec;

typedef enum { KD_SCHED_COSINE = 0, KD_SCHED_LINEAR, KD_SCHED_CONSTANT } kd_schedule;

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
} kd_stage_spec;

typedef struct {
    char name[KD_NAME_MAX];       // run.name (default: recipe file stem)
    char out_dir[KD_PATH_MAX];    // run.out_dir (default runs/NAME)
    uint64_t seed;                // run.seed (default 1234)
    char backend[16];             // auto|cpu|cuda (default auto)
    float max_minutes;            // wall-time budget, 0 = none
    float collective_timeout_s;   // watchdog, default 600
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

// Parse `path`, apply overrides ("stages.NAME.optim.lr=1e-4" or "stages[0].steps=5",
// "run.seed=7"), fill defaults and validate. Relative data paths are resolved against the
// current directory. Returns KD_OK or KD_EINPUT with err filled.
int kd_recipe_load(kd_recipe *r, const char *path, const char *const *overrides,
                   int n_overrides, kd_error *err);
void kd_recipe_free(kd_recipe *r);
// Index of the stage named `name`, or -1.
int kd_recipe_stage_index(const kd_recipe *r, const char *name);
const char *kd_stage_kind_name(kd_stage_kind k);
