// stage.h: what a stage gets from the run and what it gives back. One file per stage kind
// under stages/ implements kd_stage_<kind> (declared with the kind table, stages/kind.h).
// Stages build a kd_task for the trainer and call it; they never touch MPI or file layout
// of the run directory beyond stage_dir.
#pragma once
#include "data/tokenizer.h"
#include "runtime/base/comm.h"
#include "runtime/model/model.h"
#include "runtime/config/recipe.h"
#include "runtime/train/trainer.h"

typedef struct {
    const kd_recipe *recipe;
    int stage_index;
    const kd_stage_spec *spec;
    kd_comm *comm;
    const kd_ops *ops;
    kd_model *model;      // the model this stage trains (in and out)
    kd_model *teacher;    // frozen teacher, or NULL
    const char *stage_dir;
    kd_progress *progress;
    int quiet;
    kd_resume_mode resume;
    const char *resume_path;  // --resume PATH: this stage continues from that checkpoint
    double deadline;      // kd_now() after which training saves and stops (0: none)
    double eval_loss;     // out: held-out loss at the end (NAN if no eval_data)
    char final_ckpt[2 * KD_PATH_MAX];  // out: checkpoint holding the stage's output model
    // The recipe's teacher on demand (collective; loaded once, kept until dropped): for
    // stages that need it only part of the time (kd: generation, online KD, evaluation).
    void *run;
    int (*get_teacher)(void *run, kd_model **out, kd_error *err);
    void (*drop_teacher)(void *run);
    // A frozen model from a `from` (a finished stage of this run, a checkpoint or an HF
    // directory; collective); what names the recipe key in errors.
    int (*load_frozen)(void *run, const kd_from *f, const char *what, kd_model **out,
                       kd_error *err);
} kd_stage_ctx;

// The tokenizer spec of the recipe's model (teacher 0) or teacher (teacher 1): the
// model.tokenizer / teacher.tokenizer key when set; else the from: Hugging Face directory
// when it holds tokenizer.json; else, for the teacher, the model's; else "bytes"
// (docs/recipe.md). Returns out.
const char *kd_recipe_tokenizer(const kd_recipe *r, int teacher, char *out, size_t n);
// Open it; errors are prefixed "RECIPE: model.tokenizer: " (or teacher.tokenizer).
int kd_recipe_open_tokenizer(const kd_recipe *r, int teacher, kd_tokenizer **out, kd_error *err);

// Fills the trainer config fields every training stage shares (comm, model, spec, dirs,
// seed, resume, hashes, checkpoint attributes, deadline, final checkpoint out-path).
// attrs must have room for KD_MODEL_ATTRS entries and outlive the trainer call.
void kd_stage_trainer_cfg(kd_stage_ctx *ctx, kd_trainer_cfg *tc, kd_ckpt_attr *attrs);

// Shared by stages that train on token datasets: the CE task over windows of a dataset.
// ctx_out must be freed with kd_lm_task_free. shuffle=0 reads windows in order (eval).
typedef struct kd_lm_task kd_lm_task;
int kd_lm_task_open(kd_lm_task **out, const char *path, int vocab_size, int seq_len,
                    uint64_t seed, int shuffle, kd_task *task, kd_error *err);
void kd_lm_task_free(kd_lm_task *t);

// Document task: next-token CE over documents of a dataset masked by its loss_mask
// (use_mask=0: every target of a document counts), rows of seq_len tokens packed first-fit
// (packing=1) or one document per row, documents kept apart by ids. Longer documents are
// truncated to seq_len (counted).
typedef struct kd_doc_task kd_doc_task;
int kd_doc_task_open(kd_doc_task **out, const char *path, int vocab_size, int seq_len,
                     uint64_t seed, int shuffle, int packing, int use_mask, kd_task *task,
                     kd_error *err);
uint64_t kd_doc_task_truncated(const kd_doc_task *t);
// Global token index (in the dataset) of each position of the rows starting at `ids`
// (a pointer into the buffer of the last fill), -1 for padding.
const int64_t *kd_doc_task_sources(const kd_doc_task *t, const int32_t *ids);
struct kd_dataset *kd_doc_task_dataset(kd_doc_task *t);
void kd_doc_task_free(kd_doc_task *t);

// What the LM and document tasks share (stages/stage_common.c): opening their dataset,
// refused with KD_EINPUT naming the file when its vocab_size exceeds the model's; and
// their kd_task loss, the model's weighted next-token CE (ctx, n, T, extra unused).
int kd_stage_open_tokens(struct kd_dataset **out, const char *path, int vocab_size, kd_error *err);
double kd_stage_ce_loss(void *ctx, kd_model *m, const int32_t *targets, const float *weights, int n,
                        int T, float dscale, int want_grad, double *extra);
