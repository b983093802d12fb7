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
} kd_grad_comm;

// Collective. Never fails: a device path that cannot be set up on every rank falls back
// to staging (logged).
void kd_grad_comm_init(kd_grad_comm *g, kd_comm *comm, const kd_ops *ops, size_t total);
void kd_grad_comm_free(kd_grad_comm *g);
// shard (this rank's range) = sum over ranks of full; both backend memory. Collective.
void kd_grad_comm_reduce_scatter(kd_grad_comm *g, const float *full, float *shard);
// Every rank's range of buf (backend memory) into every rank's buf. Collective.
void kd_grad_comm_allgather(kd_grad_comm *g, float *buf);
// "mpi", "device" (the backend's collectives, NCCL on CUDA), "host-staged", "single"
const char *kd_grad_comm_name(const kd_grad_comm *g);
