// sampler.h: the deterministic, world-size-invariant sample order. The global order is a
// seeded permutation of [0, n_windows) per epoch (epoch = pos / n_windows; each epoch has
// its own permutation). It is a pure function of (seed, n_windows, global position) with
// O(1) memory, so any rank can compute any sample and the data position is one number
// (samples consumed), which makes resume work at any world size. Global batch g is
// positions [g*G, (g+1)*G); rank r of W takes kd_sampler_rank_slice of it. Callers:
// trainer / stages.
#pragma once
#include <stdint.h>

// The window index at global position pos (any pos >= 0). n_windows must be > 0.
uint64_t kd_sampler_window(uint64_t seed, uint64_t n_windows, uint64_t global_pos);

// Rank r's share of a global batch of G samples over W ranks: positions
// [first, first+count) relative to the batch start, first = floor(r*G/W),
// end = floor((r+1)*G/W). Shares are contiguous, disjoint, cover the batch, and differ
// in size by at most one.
void kd_sampler_rank_slice(uint64_t global_batch, int world, int rank, uint64_t *first,
                           uint64_t *count);
