// run_read.h: what a run directory says about its run, read back for people (docs/observe.md):
// the stages of recipe.resolved.yaml, and for each its directory (DONE, checkpoints,
// metrics.jsonl, eval.json, attempts.jsonl: runtime/base/attempt.h); the launch that ran
// last is the newest attempts.jsonl line. Callers: `kdtrain status` (run_status.c),
// `kdtrain report` (report*.c), and run.c (kd_rd_eval_events, rank 0). Reading never fails on a damaged file: what could not be read is listed in
// the notes, so a report can say what is missing.
#pragma once
#include <stdint.h>

#include "runtime/base/common.h"
#include "runtime/config/recipe.h"

#define KD_RD_MAX_KEYS 32  // metric keys kept per stage
#define KD_RD_MAX_EVAL 64  // eval.json values kept per stage
#define KD_RD_MAX_NOTES 64

// A stage's metrics.jsonl: rows of (step, values); NaN where a row lacks a key or holds null.
typedef struct {
    int n_keys;
    char keys[KD_RD_MAX_KEYS][80];
    int n_rows, cap;
    int64_t *steps; // (n_rows)
    double *vals;   // (n_rows, KD_RD_MAX_KEYS)
    int bad_lines;  // lines that are not a JSON object with an integer "step"
    int first_bad;  // 1-based line number of the first of them
} kd_rd_metrics;

// The newest attempts.jsonl line of a stage (the machine that ran it last).
typedef struct {
    int n;              // attempts recorded (starts and restarts of the stage)
    double first_time;  // unix time of the first start
    double last_time;   // unix time of the newest start
    unsigned long long start_ticks; // of the newest start's process (attempt.h)
    char host[128], backend[32];
    int ranks, cpus, pid;
} kd_rd_attempts;

typedef struct {
    char name[KD_NAME_MAX], kind[32];
    char tag[KD_NAME_MAX + 8]; // NN-name: the directory under stages/
    char dir[KD_PATH_MAX * 2];
    int steps;                 // planned optimizer steps (0: not a training kind)
    int exists, done;          // directory present, DONE present
    int64_t done_step;
    double done_eval_loss;     // NaN when the stage has none
    char done_ckpt[KD_PATH_MAX * 2];
    double done_time;          // DONE's modification time (unix), 0 if none
    long latest_ckpt;          // newest step-N with a MANIFEST, -1 if none
    double last_write;         // newest modification time of metrics/events/DONE (unix), 0
    kd_rd_metrics m;
    int n_eval;                // eval.json: key = value
    char eval_keys[KD_RD_MAX_EVAL][80];
    double eval_vals[KD_RD_MAX_EVAL];
    kd_rd_attempts at;
} kd_rd_stage;

typedef struct {
    int pid, ranks;
    char host[128];
    unsigned long long start_ticks; // the process's start time in clock ticks since boot
    double started;                 // unix time
} kd_rd_process;

typedef struct {
    char dir[KD_PATH_MAX];
    char *recipe_text;  // recipe.resolved.yaml (NULL if unreadable)
    char run_name[KD_NAME_MAX];
    int n_stages;
    kd_rd_stage stages[KD_MAX_STAGES];
    int has_process;    // some stage has attempts.jsonl: proc is its newest line
    kd_rd_process proc;
    int n_notes;        // what is missing or damaged, one sentence each
    char notes[KD_RD_MAX_NOTES][512];
} kd_rd_run;

// Reads the run directory into *r (caller frees with kd_rd_free). KD_EINPUT if dir is not
// a run directory (neither recipe.resolved.yaml nor stages/); damaged parts become notes.
int kd_rd_load(kd_rd_run *r, const char *dir, kd_error *err);
void kd_rd_free(kd_rd_run *r);
// Newest step-N under stage_dir/ckpt with a MANIFEST (not hash-verified: `kdtrain ckpt
// verify` does that), -1 if none. Also used by `kdtrain status` of SLURM runs.
long kd_rd_latest_ckpt(const char *stage_dir);
// Index of key in a stage's metrics (-1 if absent).
int kd_rd_key(const kd_rd_metrics *m, const char *key);

// ----------------------------------------------------------------------------- writer, process

// A finished stage's eval.json as one TensorBoard event at its final step, appended to its
// event file: tags NAME/KEY for an eval stage (training=0), NAME/eval_KEY for a training
// stage's end-of-stage held-out values (the keys its periodic evaluation logs). Best effort.
void kd_rd_eval_events(const char *stage_dir, const char *name, int training, int64_t step);
// 1 if the process of p runs on this host and is the same process (pid and start time
// match), 0 if it is on this host and gone, -1 if it runs on another host (unknown).
int kd_rd_process_alive(const kd_rd_process *p);
