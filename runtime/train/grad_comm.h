// grad_comm.h: the trainer's two data-parallel collectives on the model's flat buffers,
// wherever the backend keeps them: the gradient reduce-scatter into the optimizer's ZeRO-1
// shard and the parameter all-gather after the update. Chooses, once per stage:
// - host memory (CPU backend): MPI on the buffers themselves;
// - device memory with the backend's collectives (CUDA: NCCL, bootstrapped over MPI):
//   GPU to GPU;
// - device memory without them (or when their setup fails on any rank): staged through
//   host copies and MPI, with one log line saying so;
// - one rank: a device copy / nothing.
// Shards are those of kd_shard_range on every path, so checkpoints do not depend on it.
#pragma once
#include <stddef.h>

#include "kernels/ops.h"
#include "runtime/base/comm.h"

typedef enum { KD_GC_HOST, KD_GC_DEVICE, KD_GC_STAGED, KD_GC_SINGLE } kd_grad_comm_path;

typedef struct {
    kd_comm *comm;
    const kd_ops *ops;
    kd_grad_comm_path path;
    size_t total;
    size_t *counts, *displs; // (world) floats of each rank's shard
    void *dev;               // the backend's communicator (KD_GC_DEVICE)
    float *host;             // (total) host staging buffer (KD_GC_STAGED)
    float *host_shard;       // (this rank's shard) its reduced part (KD_GC_STAGED)
    // overlap with the backward (kd_grad_comm_set_buckets): nb buckets [blo[i], bhi[i]),
    // highest offsets first (the order the backward finishes them); `launched` of them
    // started in this step, each an MPI operation req[i] (KD_GC_HOST) or queued on the
    // backend's collectives (KD_GC_DEVICE)
    int nb, launched;
    size_t *blo, *bhi;
    size_t last_lo; // the last kd_grad_comm_ready offset of this step
    kd_comm_op **req;
    const float *full;
    float *shard;
} kd_grad_comm;

// Collective. Never fails: a device path that cannot be set up on every rank falls back
// to staging (logged).
void kd_grad_comm_init(kd_grad_comm *g, kd_comm *comm, const kd_ops *ops, size_t total);
void kd_grad_comm_free(kd_grad_comm *g);
// shard (this rank's range) = sum over ranks of full; both backend memory. Collective.
void kd_grad_comm_reduce_scatter(kd_grad_comm *g, const float *full, float *shard);
// Every rank's range of buf (backend memory) into every rank's buf. Collective.
void kd_grad_comm_allgather(kd_grad_comm *g, float *buf);
// Overlap: the step's reduce-scatter in buckets that start while the backward still runs.
// bounds (n, descending, the last 0) are offsets where a suffix [bound, total) of the
// gradients becomes final during the backward (after the head, after each layer); buckets
// are cut at them once at least bucket_floats have accumulated, so they are the same on
// every rank whatever the data. Only on the paths that can overlap (MPI on host memory,
// backend collectives with reduce_scatter_start) and world > 1; returns 1 when in use
// (else the plain kd_grad_comm_reduce_scatter stays the way).
int kd_grad_comm_set_buckets(kd_grad_comm *g, const size_t *bounds, int n, size_t bucket_floats);
// One step, with buckets: begin before the last backward of the step; ready(lo) as the
// backward finalises gradients [lo, total) (starts every bucket inside it and lets the
// started ones progress; a call with lo above an earlier one's is a second backward pass:
// refused, fatal); finish starts the buckets not started yet and waits for all, after
// which shard holds what kd_grad_comm_reduce_scatter would give. Every rank calls begin
// and finish every step, failed or not, so that every rank starts every bucket.
void kd_grad_comm_begin(kd_grad_comm *g, const float *full, float *shard);
void kd_grad_comm_ready(kd_grad_comm *g, size_t lo);
void kd_grad_comm_finish(kd_grad_comm *g);
// "mpi", "device" (the backend's collectives, NCCL on CUDA), "host-staged", "single"
const char *kd_grad_comm_name(const kd_grad_comm *g);
