// comm.h: the data-parallel world: MPI setup, the collectives the trainer needs (over
// backend buffers), collective agreement on flags, and checked MPI calls. The only
// module that includes mpi.h for training traffic; stages see kd_comm as opaque.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runtime/common.h"

typedef struct kd_comm kd_comm;

// MPI_Init (thread level FUNNELED) and world info. SLURM variables are logged by the run.
int kd_comm_init(kd_comm **out, int *argc, char ***argv);
void kd_comm_finalize(kd_comm *c);
int kd_comm_rank(const kd_comm *c);
int kd_comm_size(const kd_comm *c);
int kd_comm_local_rank(const kd_comm *c);
void *kd_comm_mpi(const kd_comm *c);  // the MPI_Comm (as void*: for checkpoint I/O only)

// In-place sum over ranks of n floats (host memory).
void kd_comm_allreduce_f32(kd_comm *c, float *buf, size_t n);
void kd_comm_allreduce_f64(kd_comm *c, double *buf, size_t n);
double kd_comm_sum_f64(kd_comm *c, double v);
double kd_comm_max_f64(kd_comm *c, double v);
// 1 if any rank passed a non-zero flag (every rank gets the same answer).
int kd_comm_any(kd_comm *c, int flag);
// Every rank gets rank 0's bytes.
void kd_comm_bcast(kd_comm *c, void *buf, size_t bytes);
void kd_comm_barrier(kd_comm *c);
// ZeRO-1 (shards as kd_shard_range in params.h): rank r receives the sum over ranks of full[lo_r, hi_r) into shard.
void kd_comm_reduce_scatter_f32(kd_comm *c, const float *full, float *shard, size_t total);
// Every rank's shard [lo_r, hi_r) of buf is gathered into every rank's buf.
void kd_comm_allgather_f32(kd_comm *c, float *buf, size_t total);
// Watchdog: a thread that ends this rank (so mpirun/srun tear the job down) when one of the
// collectives above has not completed within timeout_s; its message names the collective
// and the step set by kd_comm_set_step.
void kd_comm_start_watchdog(kd_comm *c, double timeout_s);
void kd_comm_set_step(kd_comm *c, long step);
// Put a section that calls MPI itself (a checkpoint save or load: runtime/checkpoint.c) under
// the same watchdog, so a rank frozen during it is detected too. The section must not call
// the collectives above (they end the watch); sections do not nest.
void kd_comm_watch_begin(kd_comm *c, const char *what);
void kd_comm_watch_end(kd_comm *c);
// Abort all ranks (collective failure paths); never returns.
_Noreturn void kd_comm_abort(kd_comm *c, int code);
