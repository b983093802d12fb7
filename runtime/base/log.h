// log.h: what a run tells people: the aligned settings table printed at start, one
// progress line per log interval, and metrics.jsonl (one JSON object per logged step).
// Only rank 0 calls these (the trainer checks); nothing here talks to MPI.
#pragma once
#include <stdio.h>

#include "runtime/base/common.h"

// Settings table: kd_log_kv("lr", "%g", lr) lines between kd_log_table_begin/end.
void kd_log_table_begin(const char *title);
void kd_log_kv(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kd_log_table_end(void);

// Informational message to stdout prefixed with "kdtrain: ".
void kd_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Warning to stderr prefixed with "kdtrain: warning: ".
void kd_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct {
    FILE *f;
    char path[1024];
} kd_metrics;

// Opens for append (a resumed stage continues its file). Returns KD_ERUNTIME on failure.
int kd_metrics_open(kd_metrics *m, const char *path, kd_error *err);
// One JSON line: keys[i] = vals[i]; "step" is written first as an integer.
void kd_metrics_write(kd_metrics *m, long step, const char *const *keys, const double *vals,
                      int n);
void kd_metrics_close(kd_metrics *m);
// Drop lines with step > last_step (used when a stage resumes from an older checkpoint
// so the file never holds steps twice).
int kd_metrics_truncate_after(const char *path, long last_step, kd_error *err);
