// hash.h: the one non-cryptographic hash of kdtrain, 64-bit FNV-1a. Seeds derive from it
// (per-tensor init streams, the recipe and model hashes stored in checkpoints, the data
// split of synthetic tasks), so its values must never change. SHA-256 (sha256.h) is for
// file integrity.
#pragma once
#include <stddef.h>
#include <stdint.h>

// 64-bit FNV-1a of n bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t kd_fnv1a64(const void *data, size_t n);
// The same with another offset basis. The demo data's question split uses one that is not
// FNV's (1469598103934665603, the standard basis with its last digit lost); it stays, as
// changing it would change every synthesized file.
uint64_t kd_fnv1a64_basis(uint64_t basis, const void *data, size_t n);
