// safetensors.h: read and write the safetensors format (8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, raw data).
// Callers: the Hugging Face teacher loader and the student exporter. Invariants: every
// tensor listed by an open kd_safetensors has been checked against its file's size (offsets
// in bounds, not overlapping, byte count = numel x dtype size), so reads never run off a
// file; F32, F16 and BF16 read into float32; writes are F32 and atomic (tmp, fsync, rename).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/base/common.h"

#define KD_SAFETENSORS_MAX_DIMS 8
#define KD_SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20) // 100 MiB, as the format's spec

typedef struct {
    const char *name;
    char dtype[16]; // as spelled in the file: "F32", "F16", "BF16", "I64", ...
    int ndim;       // 0 for a scalar
    int64_t shape[KD_SAFETENSORS_MAX_DIMS];
    int64_t numel;       // product of shape (1 for a scalar)
    uint64_t begin, end; // byte range inside the file's data section
    int file;            // which shard holds it (0 for a single file)
} kd_safetensors_tensor;

typedef struct kd_safetensors kd_safetensors;

// Open one checkpoint: a .safetensors file, a sharded checkpoint's index
// (*.safetensors.index.json, {"weight_map": {name: shard file}}; shards are resolved next to
// it), or a directory holding model.safetensors.index.json or model.safetensors. All
// headers are read and validated now; errors name the offending file.
int kd_safetensors_open(const char *path, kd_safetensors **out, kd_error *err);
void kd_safetensors_close(kd_safetensors *st);

// Tensors in file order (shard by shard); i < kd_safetensors_count.
size_t kd_safetensors_count(const kd_safetensors *st);
const kd_safetensors_tensor *kd_safetensors_at(const kd_safetensors *st, size_t i);
// The tensor called name, or NULL.
const kd_safetensors_tensor *kd_safetensors_find(const kd_safetensors *st, const char *name);
// A "__metadata__" string value of the (first) file, or NULL.
const char *kd_safetensors_metadata(const kd_safetensors *st, const char *key);

// Read tensor `name` into dst (n floats, n must equal its numel), converting F16/BF16.
int kd_safetensors_read_f32(kd_safetensors *st, const char *name, float *dst, size_t n,
                            kd_error *err);

// One tensor to write: data is numel float32 values, row-major.
typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} kd_safetensors_entry;

// Write n F32 tensors and n_meta metadata pairs (meta[2k] = key, meta[2k+1] = value) to
// path atomically: the file appears complete under its name or not at all.
int kd_safetensors_write_f32(const char *path, const kd_safetensors_entry *t, size_t n,
                             const char *const *meta, size_t n_meta, kd_error *err);

// Half-precision conversions (exposed for tests and for other loaders).
float kd_f16_to_f32(uint16_t h);
float kd_bf16_to_f32(uint16_t h);
