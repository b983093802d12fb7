// checkpoint.h: the on-disk checkpoint format (docs/checkpoints.md). A checkpoint is a
// directory ckpt/step-XXXXXXXX/ with model.h5, optim.h5 (optional), state.json and a
// MANIFEST written last; without a MANIFEST whose sizes and SHA-256 sums match, it does not
// exist. Called by the trainer (save, prune, find_latest, load), model loading
// ({checkpoint: path}) and `kdtrain ckpt`. Invariants: save and prune are collective over
// comm and return the same status on every rank; a failed save leaves no step-* directory
// and never touches earlier checkpoints; optimizer moments are stored full-shape, so a
// checkpoint loads at any world size.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/base/comm.h"
#include "runtime/base/common.h"
#include "runtime/model/params.h"

#ifndef KD_VERSION
#define KD_VERSION "unknown"
#endif

#define KD_CKPT_FORMAT 1 // MANIFEST header "kdtrain-checkpoint 1"
#define KD_CKPT_KEY_MAX 64
#define KD_CKPT_STR_MAX 256
#define KD_CKPT_EXTRA_MAX 32

// kd_shard_range (runtime/base/comm.h) defines which moments a rank owns.

// A model-config attribute stored on model.h5 (e.g. {"d_model", KD_ATTR_INT, .i = 128}).
typedef enum { KD_ATTR_INT = 0, KD_ATTR_FLOAT, KD_ATTR_STRING } kd_attr_type;
typedef struct {
    char name[KD_CKPT_KEY_MAX]; // must not start with "kdtrain_" (reserved)
    kd_attr_type type;
    int64_t i;               // KD_ATTR_INT
    double f;                // KD_ATTR_FLOAT
    char s[KD_CKPT_STR_MAX]; // KD_ATTR_STRING
} kd_ckpt_attr;

typedef struct {
    char key[KD_CKPT_KEY_MAX];
    char value[KD_CKPT_STR_MAX];
} kd_ckpt_kv;

// Trainer state, stored as state.json. `version` is filled from KD_VERSION on save and
// from the file on load; world_size is the world size of the run that saved.
typedef struct {
    int stage_index;
    char stage_name[KD_CKPT_KEY_MAX];
    int64_t step;             // optimizer steps taken in this stage
    int64_t optim_step;       // AdamW step count (bias correction); optim.h5 attr "step"
    int64_t samples_consumed; // global samples consumed (data position)
    int64_t epoch;
    uint64_t rng[4];
    int world_size;
    char recipe_hash[65];
    char model_hash[65];
    char version[32];
    int64_t bad_steps; // steps skipped for non-finite loss/grad
    int n_extra;
    kd_ckpt_kv extra[KD_CKPT_EXTRA_MAX]; // extensible key/value list (strings)
} kd_train_state;

// Collective. Writes ckpt_root/step-<step %08> (via ckpt_root/.tmp-step-<step>), creating
// ckpt_root if needed. params is the full buffer (identical on all ranks, pt->total floats);
// m_shard/v_shard hold this rank's kd_shard_range of the moments, or are NULL on all ranks
// for a weights-only checkpoint (no optim.h5). attrs go on model.h5. On success out_path
// (if not NULL) gets the final directory. Errors: KD_EINPUT (bad arguments), KD_ERUNTIME
// (I/O on any rank, message names the path and strerror); no step-* directory is left.
// An existing step-* directory of the same step is replaced atomically.
int kd_ckpt_save(kd_comm *comm, const char *ckpt_root, int64_t step, const kd_param_table *pt,
                 const float *params, const float *m_shard, const float *v_shard,
                 const kd_train_state *ts, const kd_ckpt_attr *attrs, int n_attrs, char *out_path,
                 size_t out_len, kd_error *err);

// Collective. Rank 0 keeps the newest `keep` valid checkpoints (keep < 1: keep all),
// deletes older valid ones and invalid step-* directories older than a valid one, never
// deletes when nothing is valid, removes leftover .tmp-* directories (reported on stderr).
// Validity here is the quick check (MANIFEST parses, sizes match); hashes are checked by
// verify/find_latest.
int kd_ckpt_prune(kd_comm *comm, const char *ckpt_root, int keep, kd_error *err);

// 1 valid / 0 invalid (why filled: "PATH: what is wrong"). Valid: MANIFEST present with a
// known header and "end" trailer, model.h5 and state.json listed, every listed file exists
// with the listed size and SHA-256.
int kd_ckpt_verify(const char *ckpt_dir, char *why, size_t why_len);

// Newest valid step-* under ckpt_root into out_dir: returns 1, or 0 if none. warn (may be
// NULL) gets "skipping PATH: why" for each newer invalid checkpoint and leftover .tmp-*.
int kd_ckpt_find_latest(const char *ckpt_root, char *out_dir, size_t out_len,
                        void (*warn)(const char *msg));

// Collective. Loads params (full, every rank) and this rank's kd_shard_range of m and v
// for comm's world size (m_shard/v_shard NULL: weights only), and the trainer state (ts may
// be NULL). Names and shapes must equal pt exactly: otherwise KD_EINPUT naming the first
// mismatch. Checks the MANIFEST and file sizes, not the hashes (use kd_ckpt_verify).
int kd_ckpt_load(kd_comm *comm, const char *ckpt_dir, const kd_param_table *pt, float *params,
                 float *m_shard, float *v_shard, kd_train_state *ts, kd_error *err);

// The caller's attributes of model.h5 (reserved kdtrain_* ones skipped), up to max, in the
// order they were saved; *n_out gets the count. KD_EINPUT if there are more than max.
int kd_ckpt_read_attrs(const char *ckpt_dir, kd_ckpt_attr *out, int max, int *n_out, kd_error *err);

// The parameter table stored in model.h5, in stored order (names, shapes, offsets packed
// in that order). Caller frees table->t with free(). Lets tools inspect a checkpoint alone.
int kd_ckpt_read_table(const char *ckpt_dir, kd_param_table *table, kd_error *err);

// SHA-256 over every parameter's float32 little-endian bytes, in stored (= save-time table)
// order. Equal digests mean equal weights in the same layout.
int kd_ckpt_digest(const char *ckpt_dir, char hex[65], kd_error *err);

// Trainer state from ckpt_dir/state.json alone.
int kd_ckpt_read_state(const char *ckpt_dir, kd_train_state *ts, kd_error *err);
