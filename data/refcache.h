// refcache.h: the reference log-prob cache of the dpo stage (docs/formats.md): one HDF5
// file with /ref_logp float64 [count, 2] (row i: the reference model's completion log-prob
// sums of preference pair i, chosen then rejected) and a root attribute `fingerprint`, a
// 64-character hex string that names what the sums were computed from (the dpo stage
// hashes the reference weights, the dataset bytes and the lengths). A cache whose
// fingerprint or count differs is a miss and is rewritten.
#pragma once
#include <stdint.h>

#include "runtime/base/common.h"

// 1 and ref (count, 2) filled when path holds sums for exactly this fingerprint and count;
// 0 otherwise (no file, another fingerprint or size, unreadable): never an error.
int kd_refcache_read(const char *path, const char *fingerprint, uint64_t count, double *ref);
// Writes ref (count, 2) with the fingerprint as PATH.tmp-<pid>, renamed into place.
// KD_ERUNTIME naming path when it cannot.
int kd_refcache_write(const char *path, const char *fingerprint, uint64_t count, const double *ref,
                      kd_error *err);
