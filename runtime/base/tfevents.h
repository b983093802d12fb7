// tfevents.h: TensorBoard event files written by hand (docs/observe.md): TFRecord framing
// (little-endian length, masked CRC-32C of the length, the record, masked CRC-32C of the
// record) around Event protobufs, the first holding file_version "brain.Event:2", the
// others a Summary of scalar values (tag, simple_value) at one step. Callers: the trainer's
// logging (rank 0 only). Invariant: every record is flushed whole, so a kill leaves at most
// one torn record at the end, which kd_tfevents_truncate_after drops with the steps that
// a resumed stage will write again.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "runtime/base/common.h"

// The name of a stage's event file (inside the stage directory). "tfevents" in the name is
// what TensorBoard looks for.
#define KD_TFEVENTS_FILE "events.out.tfevents.kdtrain"

typedef struct {
    FILE *f;
} kd_tfevents;

// Opens path for append; a new or empty file first gets the file_version event.
// KD_ERUNTIME if it cannot be opened or written.
int kd_tfevents_open(kd_tfevents *w, const char *path, kd_error *err);
// One Event at step: wall_time (seconds since the epoch) and n scalars tags[i] = vals[i]
// (float32, as TensorBoard stores them). A no-op when w->f is NULL.
void kd_tfevents_scalars(kd_tfevents *w, int64_t step, double wall_time, const char *const *tags,
                         const float *vals, int n);
void kd_tfevents_close(kd_tfevents *w);
// Rewrites path keeping the records up to the first torn or corrupt one whose Event step is
// <= last_step (atomically: temp file, fsync, rename). A missing file is fine.
int kd_tfevents_truncate_after(const char *path, int64_t last_step, kd_error *err);

// CRC-32C (Castagnoli) of n bytes, and TFRecord's mask of it (exposed for the unit test).
uint32_t kd_crc32c(const void *data, size_t n);
uint32_t kd_crc32c_masked(const void *data, size_t n);
